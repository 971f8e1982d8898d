//! Views: looking units up by name and what `list`, `status` and
//! `daemon-status` show of them.

use super::*;
use crate::daemon::service::AfterStop;
use crate::protocol::{NOT_LOADED, NO_LONGER_LOADS};

impl Supervisor {
    // --- queries --------------------------------------------------------

    pub(super) fn lookup(&self, names: &[String]) -> Result<Vec<ServiceId>, Response> {
        let mut ids = Vec::with_capacity(names.len());
        for name in names {
            match self.by_name.get(&self.entries, name) {
                Some(&id) => {
                    if !ids.contains(&id) {
                        ids.push(id);
                    }
                }
                None if self.new_on_disk.iter().any(|(n, _)| n == name) => {
                    return Err(Response::error(
                        format!(
                            "unit `{name}` is not loaded yet: its file was written after the daemon last read {}",
                            self.service_dir.display()
                        ),
                        Some("`diakonos reload` loads it"),
                    ))
                }
                None => {
                    // `web.service` for `web`: the name is what to give.
                    if let Some(stem) = name
                        .strip_suffix(".service")
                        .filter(|s| self.by_name.get(&self.entries, s).is_some())
                    {
                        return Err(Response::error(
                            format!("no unit named `{name}`: units are named without `.service`"),
                            Some(&format!("name it `{stem}`")),
                        ));
                    }
                    let names: Vec<&str> = self
                        .entries
                        .iter()
                        .filter(|e| !e.gone)
                        .map(|e| e.name.as_str())
                        .collect();
                    if let Some(near) = crate::unit::suggest(name, &names) {
                        return Err(Response::error(
                            format!("no unit named `{name}` in {}", self.service_dir.display()),
                            Some(&format!("did you mean `{near}`?")),
                        ));
                    }
                    return Err(Response::error(
                        format!("no unit named `{name}` in {}", self.service_dir.display()),
                        Some(&format!(
                            "`diakonos list` shows the units; a unit is a file {}/{name}.service (`diakonos run -- COMMAND` writes one)",
                            self.service_dir.display()
                        )),
                    ))
                }
            }
        }
        Ok(ids)
    }

    pub(super) fn lookup_valid(&self, names: &[String]) -> Result<Vec<ServiceId>, Response> {
        let ids = self.lookup(names)?;
        for &id in &ids {
            let e = &self.entries[id];
            if !e.runnable() {
                let error = e.error().unwrap_or_else(|| "does not load".to_owned());
                let first = crate::unit::headline(&error);
                return Err(Response::error(
                    format!("unit `{}` is invalid: {first}", e.name),
                    Some(&format!(
                        "fix it, then `diakonos verify {}` and `diakonos reload`",
                        e.name
                    )),
                ));
            }
        }
        Ok(ids)
    }

    /// The row of plain `list` ([`ListRow`]): the part of
    /// [`Supervisor::info`] that `list` shows, built without the rest.
    pub fn row(&self, id: ServiceId, now: Instant) -> ListRow {
        let e = &self.entries[id];
        let state = e.state_name();
        ListRow {
            name: e.name.clone(),
            state,
            pid: e.svc.pid().map(|p| p.as_raw() as u32),
            uptime_secs: e.svc.uptime(now).map(|d| d.as_secs()),
            restarts: e.svc.restarts,
            description: e
                .unit
                .as_ref()
                .map(|u| u.description.clone())
                .unwrap_or_default(),
            reason: self.reason(id, state),
            // An adopted process that runs an older file shows as an edit
            // not yet applied, until a new process runs the file.
            changed_on_disk: self.changed_on_disk.contains(&e.name)
                || (self.stale.contains_key(&e.name) && e.svc.state.is_active()),
            listening: self.listening(id),
            status_text: e
                .status_text()
                .filter(|_| e.svc.state.is_active())
                .map(str::to_owned),
            substate: e
                .reloading()
                .filter(|_| matches!(e.svc.state, State::Running { .. }))
                .map(|_| "reloading".to_owned()),
            health: e
                .health
                .as_ref()
                .and_then(|h| h.shown())
                .map(|v| v.as_str().to_owned()),
        }
    }

    /// `list` shows every unit file of the directory (SPEC §5): those
    /// written since the last load too, as `inactive` (or `invalid`, with
    /// what their file said), not loaded until a reload; in name order.
    pub(super) fn add_new_on_disk<T: HasName>(
        &self,
        rows: &mut Vec<T>,
        make: impl Fn(ListRow) -> T,
    ) {
        if self.new_on_disk.is_empty() {
            return;
        }
        for (name, error) in &self.new_on_disk {
            let (state, reason) = match error {
                Some(e) => (StateName::Invalid, format!("{NOT_LOADED}: {e}")),
                None => (
                    StateName::Inactive,
                    format!("{NOT_LOADED}: its file was written after the daemon last read the directory; `diakonos reload` loads it"),
                ),
            };
            // Rows are in name order: each goes in its place (no sort: a
            // sort costs kilobytes of code per row type).
            let at = rows.partition_point(|r| r.name() < name.as_str());
            rows.insert(
                at,
                make(ListRow {
                    name: name.clone(),
                    state,
                    pid: None,
                    uptime_secs: None,
                    restarts: 0,
                    description: String::new(),
                    reason: Some(reason),
                    changed_on_disk: true,
                    listening: None,
                    status_text: None,
                    substate: None,
                    health: None,
                }),
            );
        }
    }

    /// Why a unit is failed, restarting, invalid, or running an old
    /// definition, with its own ERRNO= word when it sent one.
    pub(super) fn reason(&self, id: ServiceId, state: StateName) -> Option<String> {
        let e = &self.entries[id];
        let reason = match (&e.svc.state, state) {
            (_, StateName::Invalid) => e.error(),
            (State::Failed(r), _) => Some(r.to_string()),
            // Why it is being stopped, when a failure stops it (unhealthy,
            // watchdog, memory, start timeout): `events` says so at once.
            (
                State::Stopping {
                    then: AfterStop::Failed(r) | AfterStop::Failure(r),
                    ..
                },
                _,
            ) => Some(r.to_string()),
            // Why it is waiting to launch again.
            (State::Restarting { .. }, _) => e.svc.restart_reason.as_ref().map(ToString::to_string),
            // Running on an old definition whose file was since broken.
            (s, _) if s.is_active() && !e.runnable() => e.error().map(|err| {
                format!("{NO_LONGER_LOADS} (still running the previous definition): {err}")
            }),
            _ => None,
        };
        // The service's own word on why (sd_notify ERRNO=).
        match (reason, e.errno()) {
            (Some(r), Some(n)) if matches!(state, StateName::Failed | StateName::Restarting) => {
                Some(format!(
                    "{r} (errno {n}: {})",
                    nix::errno::Errno::from_raw(n).desc()
                ))
            }
            (r, _) => r,
        }
    }

    /// Everything `list --json` and `status` show of a unit: the row of
    /// plain `list` ([`Supervisor::row`]) and the rest.
    pub fn info(&self, id: ServiceId, now: Instant) -> UnitInfo {
        let e = &self.entries[id];
        let row = self.row(id, now);
        UnitInfo {
            name: row.name,
            state: row.state,
            pid: row.pid,
            uptime_secs: row.uptime_secs,
            restarts: row.restarts,
            description: row.description,
            last_exit: e.svc.last_exit.map(ExitKind::to_wire),
            reason: row.reason,
            // Launches since the last explicit start: the first is attempt 1.
            next_attempt: e.svc.next_attempt().map(|at| NextAttempt {
                attempt: e.svc.restarts.saturating_add(2),
                in_ms: at.saturating_duration_since(now).as_millis() as u64,
            }),
            protected: e.unit.as_ref().is_some_and(|u| u.protected),
            pgids: {
                let mut g: Vec<u32> = e
                    .svc
                    .pgid
                    .iter()
                    .chain(&e.groups)
                    .map(|p| p.as_raw() as u32)
                    .collect();
                g.sort_unstable();
                g.dedup();
                g
            },
            listening: row.listening,
            changed_on_disk: row.changed_on_disk,
            health: row.health,
            health_failures: e.health.as_ref().map_or(0, |h| h.streak),
            status_text: row.status_text,
            probes: e
                .health
                .as_ref()
                .map(|h| h.history.iter().cloned().collect())
                .unwrap_or_default(),
            hooks_skipped: e.hooks.as_ref().map_or(0, |h| h.skipped),
            // The row names the sub-state; here it comes with how long.
            substate: row.substate.and_then(|word| {
                let since = e.reloading()?;
                Some((word, now.saturating_duration_since(since).as_secs()))
            }),
        }
    }

    /// What an armed on-demand unit listens on (see [`Supervisor::armable`]).
    fn listening(&self, id: ServiceId) -> Option<String> {
        let e = &self.entries[id];
        if !self.waits_for_a_connection(e) {
            return None;
        }
        let socket = e.unit.as_ref()?.socket.as_ref()?;
        let addrs: Vec<String> = socket.listen.iter().map(|l| l.addr.to_string()).collect();
        Some(addrs.join(", "))
    }

    pub(super) fn status(&self, id: ServiceId, now: Instant) -> UnitStatus {
        let e = &self.entries[id];
        let names = |ids: &[ServiceId]| -> Vec<String> {
            ids.iter().map(|&d| self.entries[d].name.clone()).collect()
        };
        let (requires, wants, after) = match &e.unit {
            Some(u) => (u.requires.to_vec(), u.wants.to_vec(), u.after.to_vec()),
            None => Default::default(),
        };
        UnitStatus {
            info: self.info(id, now),
            path: e.path().to_path_buf(),
            kind: match e.unit.as_ref().map(|u| u.kind) {
                Some(ServiceType::Simple) => "simple",
                Some(ServiceType::Oneshot) => "oneshot",
                Some(ServiceType::Forking) => "forking",
                Some(ServiceType::Notify) => "notify",
                None => "",
            }
            .to_owned(),
            enabled: self.enabled.contains(&e.name),
            requires,
            wants,
            after,
            required_by: names(&self.graph.required_by[id]),
            log_path: self.log_path(&e.name),
            conflicts: names(self.graph.conflicts.get(id).unwrap_or_default()),
            limits: e
                .unit
                .as_ref()
                .map(|u| u.limits.describe())
                .unwrap_or_default(),
            probes: e
                .health
                .as_ref()
                .map(|h| h.history.iter().cloned().collect())
                .unwrap_or_default(),
            watchdog_ms: e.unit.as_ref().map_or(0, |u| u.watchdog.as_millis() as u64),
            // Filled in by the timer driver on its way out.
            timer: None,
        }
    }

    pub fn counts(&self) -> Vec<(StateName, u32)> {
        let mut counts: BTreeMap<StateName, u32> = BTreeMap::new();
        for e in self.entries.iter().filter(|e| !e.gone) {
            *counts.entry(e.state_name()).or_default() += 1;
        }
        counts.into_iter().collect()
    }

    /// What `list` shows, every unit.
    pub fn unit_infos(&self, now: Instant) -> Vec<UnitInfo> {
        self.by_name
            .values()
            .map(|&id| self.info(id, now))
            .collect()
    }

    /// How many changes worth persisting happened (state, pid, reload,
    /// adoption): the metrics file is rewritten when this moved.
    pub fn changes(&self) -> u64 {
        self.changes
    }

    pub fn service_dir(&self) -> &Path {
        &self.service_dir
    }
}

/// A row of `list` by its unit's name (for [`Supervisor::add_new_on_disk`]).
pub(super) trait HasName {
    fn name(&self) -> &str;
}

impl HasName for UnitInfo {
    fn name(&self) -> &str {
        &self.name
    }
}

impl HasName for ListRow {
    fn name(&self) -> &str {
        &self.name
    }
}
