//! Durability: the snapshot the state writer saves, adoption of what a
//! previous daemon left (state file and tags), and the enabled set.

use super::*;
use crate::daemon::persist::SavedStop;
use crate::daemon::service::StopPhase;

impl Supervisor {
    // --- durability -----------------------------------------------------

    /// Whether something worth persisting changed since the last call.
    pub fn take_dirty(&mut self) -> bool {
        std::mem::take(&mut self.dirty)
    }

    /// Whether probe results came since the state was last taken (see
    /// `probes_unsaved`); clears it.
    pub fn take_probes_unsaved(&mut self) -> bool {
        std::mem::take(&mut self.probes_unsaved)
    }

    /// The monotonic time of wall-clock `unix_ms`, by the loop's reading.
    fn instant_of(&self, unix_ms: u64, now: Instant) -> Instant {
        let now_ms = self.wall_ms(now);
        if unix_ms >= now_ms {
            now + std::time::Duration::from_millis(unix_ms - now_ms)
        } else {
            now.checked_sub(std::time::Duration::from_millis(now_ms - unix_ms))
                .unwrap_or(now)
        }
    }

    /// The monotonic time of a saved past moment (Unix seconds; a later one
    /// is now), None before the monotonic clock began.
    fn since_of(&self, unix_secs: u64, now: Instant) -> Option<Instant> {
        let ago = (self.wall_ms(now) / 1000).saturating_sub(unix_secs);
        now.checked_sub(std::time::Duration::from_secs(ago))
    }

    /// What a new daemon needs to take over: every service wanted up.
    pub fn snapshot(&self, now: Instant) -> SavedState {
        let now_unix = self.wall_ms(now) / 1000;
        let services = self
            .entries
            .iter()
            // Wanted up, or still holding processes on their way down.
            .filter(|e| {
                e.svc.state.is_active() && (e.svc.want == Want::Up || e.svc.pid().is_some())
            })
            .map(|e| {
                let pid = e.svc.pid();
                SavedService {
                    name: e.name.clone(),
                    pid: pid.map(Pid::as_raw),
                    start_time: pid.and(e.start_time),
                    since_unix: e
                        .svc
                        .uptime(now)
                        .map(|up| now_unix.saturating_sub(up.as_secs())),
                    restarts: e.svc.restarts,
                    remain: matches!(e.svc.state, State::Running { pid: None, .. }),
                    stopping: e.svc.want == Want::Down,
                    pgid: e.svc.pgid.map(Pid::as_raw),
                    status_text: e.status_text().map(str::to_owned),
                    starting: match e.svc.state {
                        State::Starting {
                            pid: Some(_),
                            deadline,
                        } => Some(SavedStart {
                            deadline_ms: deadline.map(|d| self.wall_ms(d)),
                        }),
                        _ => None,
                    },
                    restart_at_ms: match e.svc.state {
                        State::Restarting { until } => Some(self.wall_ms(until)),
                        _ => None,
                    },
                    watchdog_ms: e.watchdog_set().map(|d| d.as_millis() as u64),
                    failures: e.svc.failures(),
                    probes: e
                        .health
                        .as_ref()
                        .map(|h| h.history.iter().cloned().collect())
                        .unwrap_or_default(),
                    exit_code: exit_fields(e.svc.last_exit).0,
                    exit_signal: exit_fields(e.svc.last_exit).1,
                    restart_reason: match e.svc.state {
                        State::Restarting { .. } => {
                            e.svc.restart_reason.as_ref().map(|r| r.to_string())
                        }
                        _ => None,
                    },
                    starts_ms: e
                        .svc
                        .start_window()
                        .iter()
                        .map(|&t| self.wall_ms(t))
                        .collect(),
                    health: e.health.as_ref().and_then(|h| h.saved()),
                    stop: match &e.svc.state {
                        State::Stopping {
                            phase, deadline, ..
                        } if e.svc.want == Want::Down => {
                            let phase = match phase {
                                StopPhase::Signalled => Some("signalled"),
                                StopPhase::Killed => Some("killed"),
                                StopPhase::ExecStop => None,
                            };
                            phase.map(|p| SavedStop {
                                phase: p.to_owned(),
                                deadline_ms: self.wall_ms(*deadline),
                            })
                        }
                        _ => None,
                    },
                    unit_digest: match self.stale.get(&e.name) {
                        Some(&d) => Some(d),
                        None => e.unit.as_ref().map(|u| u.digest.0),
                    },
                    ..SavedService::default()
                }
            })
            .collect();
        SavedState {
            version: persist::STATE_VERSION,
            service_dir: Some(self.service_dir.clone()),
            services,
            // Records of units that are still Persistent timers (a removed
            // unit's, or one that dropped Persistent, goes).
            // (A clone and `retain`: a `collect` into a map sorts, and
            // brings a sort of its own into the binary.)
            boot: self.boot.clone().filter(|_| !self.killing),
            runs: {
                let mut runs = self.timer_runs.clone();
                runs.retain(|(name, _)| {
                    self.by_name
                        .get(&self.entries, name)
                        .and_then(|&id| self.entries[id].unit.as_ref())
                        .is_some_and(|u| u.timer.is_some())
                });
                runs
            },
            timers: {
                let mut marks = self.timer_marks.clone();
                marks.retain(|name, _| {
                    self.by_name
                        .get(&self.entries, name)
                        .and_then(|&id| self.entries[id].unit.as_ref())
                        .and_then(|u| u.timer.as_deref())
                        .is_some_and(|t| t.persistent)
                });
                marks
            },
            ended: self
                .entries
                .iter()
                .filter_map(|e| {
                    let (failed, stopped) = match &e.svc.state {
                        State::Failed(r) => (Some(r.to_string()), false),
                        State::Exited => (None, false),
                        // Stopped, with a history worth keeping.
                        State::Inactive if e.svc.restarts > 0 || e.svc.last_exit.is_some() => {
                            (None, true)
                        }
                        _ => return None,
                    };
                    let (exit_code, exit_signal) = exit_fields(e.svc.last_exit);
                    Some(SavedService {
                        name: e.name.clone(),
                        failed,
                        stopping: stopped,
                        exit_code,
                        exit_signal,
                        restarts: e.svc.restarts,
                        since_unix: e.since.map(|t| self.wall_ms(t) / 1000),
                        ..SavedService::default()
                    })
                })
                .collect(),
        }
    }

    /// The record of a `Persistent` timer, as the state file keeps it.
    pub fn timer_mark(&self, name: &str) -> Option<SavedTimer> {
        self.timer_marks.get(name).copied()
    }

    /// Sets the record of a `Persistent` timer (written with the state).
    pub fn set_timer_mark(&mut self, name: &str, mark: SavedTimer) {
        if self.timer_marks.get(name) != Some(&mark) {
            self.timer_marks.insert(name.to_string(), mark);
            self.dirty = true;
        }
    }

    /// The boot record and timer runs this daemon carries on from (the
    /// previous daemon's, of this boot) or starts with.
    pub fn set_boot(&mut self, boot: Option<SavedBoot>, runs: persist::Runs) {
        self.boot = boot;
        self.timer_runs = runs;
    }

    /// What the timer of unit `name` did (this boot; `last_run_ms` also
    /// from earlier ones).
    pub fn timer_run(&self, name: &str) -> Option<SavedRun> {
        self.timer_runs
            .iter()
            .find(|(n, _)| n == name)
            .map(|&(_, r)| r)
    }

    /// Records what the timer of unit `name` did (written with the state).
    pub fn set_timer_run(&mut self, name: &str, run: SavedRun) {
        match self.timer_runs.iter_mut().find(|(n, _)| n == name) {
            Some((_, r)) if *r == run => return,
            Some((_, r)) => *r = run,
            None => self.timer_runs.push((name.to_string(), run)),
        }
        self.dirty = true;
    }

    /// Takes over what a previous daemon supervised: live processes are
    /// adopted (same pid, restart count kept), dead ones go through their
    /// restart policy, services that had no process yet are started again.
    /// Then the enabled units are started. Returns the adopted processes,
    /// which are not our children: the caller watches them for exit.
    ///
    /// `tagged` are live processes that carry this home's tag (found by
    /// scanning /proc): they stand in for a unit whose saved process is gone
    /// or was never saved (a crash between a restart and the next state
    /// write, or a lost state file). They are never killed on that basis.
    pub fn restore(
        &mut self,
        saved: SavedState,
        tagged: Vec<Tagged>,
        enabled: BTreeSet<String>,
        now: Instant,
        sys: &mut dyn Sys,
    ) -> Vec<Pid> {
        let mut adopted = Vec::new();
        let mut to_start = Vec::new();
        self.timer_marks = saved.timers.clone();
        // Only a state file that names our own directory lets us stop a
        // process whose unit is gone (it was really removed from it).
        let same_dir = saved.service_dir.as_deref() == Some(self.service_dir.as_path());
        // Per unit, its tagged session leaders, earliest started first: a
        // service's own setsid children start after it.
        let mut by_unit: BTreeMap<String, Vec<Tagged>> = BTreeMap::new();
        for t in tagged {
            by_unit.entry(t.unit.clone()).or_default().push(t);
        }
        for list in by_unit.values_mut() {
            crate::order::by_num(list, |t| t.start_time);
        }
        let had_saved = !saved.services.is_empty() || !saved.ended.is_empty();
        let mut saved_pids = BTreeSet::new();
        for pid in saved.services.iter().filter_map(|s| s.pid) {
            saved_pids.insert(pid);
        }
        let mut saved_services = saved.services;
        // Units the state does not mention but whose tagged process lives:
        // the state was lost or is older than the process.
        for (unit, list) in &by_unit {
            if saved_services.iter().any(|s| &s.name == unit) {
                continue;
            }
            // A session leader first; else what a forking service left.
            let unsaved = || {
                list.iter()
                    .filter(|t| !saved_pids.contains(&t.pid.as_raw()))
            };
            if let Some(t) = unsaved().find(|t| t.leader).or_else(|| unsaved().next()) {
                saved_services.push(SavedService {
                    name: unit.clone(),
                    pid: Some(t.pid.as_raw()),
                    start_time: Some(t.start_time),
                    since_unix: None,
                    restarts: 0,
                    remain: false,
                    stopping: false,
                    pgid: None,
                    status_text: None,
                    probes: Vec::new(),
                    ..SavedService::default()
                });
            }
        }
        for mut s in saved_services {
            let mut alive_pid = match (s.pid, s.start_time) {
                (Some(pid), Some(st)) if sys.is_same_process(Pid::from_raw(pid), st) => {
                    Some(Pid::from_raw(pid))
                }
                _ => None,
            };
            if alive_pid.is_none() && !s.remain {
                // The saved process is gone; a newer one of the unit may live.
                // Only a session leader: what a dead main process left in
                // its session is its leftovers, not its successor.
                let newer = by_unit.get(&s.name).and_then(|list| {
                    list.iter()
                        .find(|t| t.leader && sys.is_same_process(t.pid, t.start_time))
                        .cloned()
                });
                if let Some(t) = newer {
                    log::info!("{}: found its process {} by its tag", s.name, t.pid);
                    alive_pid = Some(t.pid);
                    s.pid = Some(t.pid.as_raw());
                    s.start_time = Some(t.start_time);
                    // The saved time is the dead process's, not this one's.
                    s.since_unix = None;
                }
            }
            // A process known only by its tag is adopted or left alone, never stopped.
            let from_tag_only = alive_pid.is_some_and(|p| !saved_pids.contains(&p.as_raw()));
            let id = match self.by_name.get(&self.entries, &s.name) {
                Some(&id) if self.entries[id].runnable() => id,
                // A dependency of it no longer loads: it goes on running
                // on its own definition (it cannot start again until then).
                Some(&id) if alive_pid.is_some() && self.entries[id].load_error.is_none() => id,
                // Its file was edited and no longer loads (an upgrade or a
                // crash before the `reload` that would have said so): it
                // goes on running, never killed for a typo.
                Some(&id) if alive_pid.is_some() => {
                    let path = self.entries[id].path().to_path_buf();
                    let text = "[service]\nExecStart = \"true\"\nRestart = \"no\"\n";
                    match crate::unit::parse(&s.name, &path, text, &self.service_dir) {
                        Ok(stand_in) => {
                            log::warn!(
                                "{}: its unit file no longer loads; its process keeps running (stop it, or fix the file and reload)",
                                s.name
                            );
                            self.entries[id].run_on_stand_in(stand_in, &mut self.shared);
                            id
                        }
                        Err(_) => continue,
                    }
                }
                _ => {
                    // Its unit is gone or broken: nothing can supervise it.
                    // Stop it only if its file was really removed from our
                    // own directory; a daemon of another directory leaves
                    // other people's services alone.
                    match alive_pid {
                        Some(pid) if same_dir && !from_tag_only => {
                            log::warn!(
                                "{}: unit no longer loads; stopping its leftover process {pid}",
                                s.name
                            );
                            self.effects.push_back(Effect::Signal {
                                pgid: pid,
                                signal: Signal::SIGTERM,
                            });
                        }
                        Some(pid) => log::warn!(
                            "{}: process {pid} belongs to units in another directory; leaving it alone",
                            s.name
                        ),
                        None => {}
                    }
                    continue;
                }
            };
            // Up since the saved time; for a process found by its tag alone,
            // since it started (from /proc); else (or on a bogus saved time,
            // before the monotonic clock began) from now.
            let since = match (s.since_unix, alive_pid, s.start_time) {
                (Some(t), _, _) => self.since_of(t, now),
                (None, Some(_), Some(st)) => sys.age(st).and_then(|age| now.checked_sub(age)),
                _ => None,
            }
            .unwrap_or(now);
            // What the service last said and how its last probes went.
            self.entries[id].set_status_text(s.status_text.take());
            if let Some(ms) = s.watchdog_ms.filter(|&ms| ms > 0) {
                // Its watchdog (started once it is adopted up) keeps it.
                self.entries[id].set_watchdog_usec(std::time::Duration::from_millis(ms));
            }
            self.seed_probe_history(id, std::mem::take(&mut s.probes), now);
            // A start under way goes on, with what is left of its timeout
            // (never more than all of it: the wall clock may have jumped).
            let timeout = self.entries[id]
                .unit
                .as_ref()
                .map_or(std::time::Duration::ZERO, |u| u.timeout_start);
            let starting = s.starting.map(|st| {
                st.deadline_ms.map(|ms| {
                    let at = self.instant_of(ms, now);
                    if timeout.is_zero() {
                        at // EXTEND_TIMEOUT_USEC= past no limit at all
                    } else {
                        at.min(now + timeout)
                    }
                })
            });
            let e = &mut self.entries[id];
            match (s.pid, alive_pid) {
                (_, Some(pid)) => {
                    log::info!("{}: adopted running process {pid}", s.name);
                    // Its group as it is now: a main process named by
                    // MAINPID= is not the leader of the service's group.
                    let pgid = sys.process_groups(pid).map_or(pid, |(g, _)| g);
                    let e = &mut self.entries[id];
                    e.svc.on_event(
                        Event::Adopt {
                            pid: Some(pid),
                            pgid: Some(pgid),
                            since,
                            restarts: s.restarts,
                            starting,
                        },
                        now,
                    );
                    e.start_time = s.start_time;
                    self.pids.insert(pid, (id, Role::Main));
                    self.sync_state_timer(id);
                    self.arm_memory_check(id, now);
                    adopted.push(pid);
                    // Probes are re-armed for the adopted process, its
                    // verdict as the previous daemon had it.
                    self.follow_health(id, now);
                    if let Some(saved) = &s.health {
                        self.resume_health(id, saved, since, now);
                    }
                    // Its file was edited since it started, and no reload
                    // said so: it shows (as changed on disk) until the next
                    // reload restarts it or a new process runs the file.
                    let ran = match (s.unit_digest, &self.entries[id].unit) {
                        (Some(d), Some(u)) if self.entries[id].load_error.is_none() => {
                            Some(d).filter(|&d| d != u.digest.0)
                        }
                        _ => None,
                    };
                    if let Some(digest) = ran {
                        log::info!("{}: its unit file changed since it started; `reload` restarts it with the new definition", s.name);
                        self.stale.insert(s.name.clone(), digest);
                    }
                    self.follow_watchdog(id, now);
                    if s.stopping {
                        // The old daemon died (or handed over) in the middle
                        // of stopping it: the stop goes on where it was (a
                        // second KillSignal makes many programs skip their
                        // graceful exit), else from the start.
                        let timeout = self.entries[id]
                            .unit
                            .as_ref()
                            .map_or(std::time::Duration::ZERO, |u| u.timeout_stop);
                        let resumed = s.stop.as_ref().and_then(|st| {
                            let phase = match st.phase.as_str() {
                                "signalled" => StopPhase::Signalled,
                                "killed" => StopPhase::Killed,
                                _ => return None,
                            };
                            let at = self.instant_of(st.deadline_ms, now).min(now + timeout);
                            Some(Event::AdoptStopping {
                                phase,
                                deadline: at,
                            })
                        });
                        self.queue.push_back((id, resumed.unwrap_or(Event::Stop)));
                    }
                }
                (Some(pid), None) if s.stopping => {
                    if let Some(g) = leftover_group(pid, s.pgid, sys) {
                        log::info!("{}: killing what is left of process group {g}", s.name);
                        self.effects.push_back(Effect::Signal {
                            pgid: g,
                            signal: Signal::SIGKILL,
                        });
                    }
                }
                _ if s.stopping => {}
                (Some(pid), None) => {
                    log::info!("{}: process {pid} died while no daemon ran", s.name);
                    // Not inserted in `pids`: the pid may already be someone else's.
                    // Taken as running (whatever it was doing): its death,
                    // or the group it left, is worked through from there.
                    e.svc.on_event(
                        Event::Adopt {
                            pid: Some(Pid::from_raw(pid)),
                            pgid: None,
                            since,
                            restarts: s.restarts,
                            starting: None,
                        },
                        now,
                    );
                    let ev = match leftover_group(pid, s.pgid, sys) {
                        // Its workers outlived it: they go before it restarts.
                        Some(g) => {
                            log::info!(
                                "{}: process group {g} outlived its main process; killing it",
                                s.name
                            );
                            Event::DeadWithLeftovers(g)
                        }
                        None => Event::Exited(ExitKind::Unknown),
                    };
                    self.queue.push_back((id, ev));
                }
                (None, None) if s.remain => {
                    // Its background processes, if their group still lives.
                    let pgid = s.pgid.map(Pid::from_raw).filter(|&g| sys.group_alive(g));
                    e.svc.on_event(
                        Event::Adopt {
                            pid: None,
                            pgid,
                            since,
                            restarts: s.restarts,
                            starting: None,
                        },
                        now,
                    );
                }
                (None, None) => match s.restart_at_ms {
                    Some(at) => {
                        // Its restart stays where it was in its backoff
                        // (never further than its longest delay).
                        let longest = self.entries[id]
                            .unit
                            .as_ref()
                            .map_or(std::time::Duration::ZERO, |u| {
                                u.restart_sec.max(u.restart_max_delay)
                            });
                        let until = self.instant_of(at, now).min(now + longest);
                        self.entries[id].svc.on_event(
                            Event::AdoptRestarting {
                                until,
                                restarts: s.restarts,
                                failures: s.failures,
                            },
                            now,
                        );
                        self.entries[id].since = Some(now);
                        self.sync_state_timer(id);
                    }
                    None => to_start.push(id),
                },
            }
            let starts = s
                .starts_ms
                .iter()
                .map(|&ms| self.instant_of(ms, now))
                .filter(|&t| t <= now)
                .collect();
            self.entries[id].svc.on_event(
                Event::AdoptHistory {
                    last_exit: exit_of(s.exit_code, s.exit_signal.as_deref()),
                    restart_reason: s.restart_reason.take().map(Reason::Earlier),
                    starts,
                },
                now,
            );
        }
        // Units an earlier daemon left failed or exited (and none of the above).
        for end in saved.ended {
            let Some(&id) = self.by_name.get(&self.entries, &end.name) else {
                continue;
            };
            let e = &mut self.entries[id];
            if !matches!(e.svc.state, State::Inactive) || to_start.contains(&id) {
                continue;
            }
            e.svc.on_event(
                Event::AdoptEnded {
                    failed: end.failed.map(Reason::Earlier),
                    stopped: end.stopping,
                    last_exit: exit_of(end.exit_code, end.exit_signal.as_deref()),
                    restarts: end.restarts,
                },
                now,
            );
            let since = end.since_unix.and_then(|t| self.since_of(t, now));
            self.entries[id].since = since.or(Some(now));
        }
        for name in &enabled {
            match self.by_name.get(&self.entries, name) {
                // An on-demand `[socket]` unit waits for its first
                // connection, a `[timer]` unit for its timer.
                Some(&id) if self.entries[id].on_demand() || self.entries[id].has_timer() => {}
                Some(&id) if !self.entries[id].svc.state.is_active() => to_start.push(id),
                Some(_) => {}
                None => log::warn!(
                    "enabled unit `{name}` does not exist in {}",
                    self.service_dir.display()
                ),
            }
        }
        self.enabled = enabled;
        // Two enabled units that conflict: the first by name starts, the
        // other waits to be named (both would fight for ever).
        let mut i = 0;
        while i < to_start.len() {
            let id = to_start[i];
            let rival = to_start[..i]
                .iter()
                .copied()
                .find(|&o| self.graph.conflicts.get(id).is_some_and(|c| c.contains(&o)));
            match rival {
                Some(o) => {
                    log::warn!(
                        "enabled units `{}` and `{}` conflict: starting `{}` only",
                        self.entries[o].name,
                        self.entries[id].name,
                        self.entries[o].name
                    );
                    to_start.remove(i);
                }
                None => i += 1,
            }
        }
        if !to_start.is_empty() {
            self.start(&to_start, false, now);
            let baseline = self.baseline(&to_start);
            self.jobs.push(Job {
                conn: None,
                kind: JobKind::Start,
                ids: to_start,
                baseline,
            });
        }
        // Only a daemon that took something over has news for the state
        // file; a fresh one writes it with its first change.
        self.dirty = !adopted.is_empty() || had_saved;
        self.changes += 1;
        adopted
    }

    /// `enable`/`disable`: answered with the new set to persist.
    pub fn set_enabled(
        &mut self,
        names: &[String],
        on: bool,
    ) -> Result<(Response, BTreeSet<String>), Response> {
        // A name left enabled by a unit whose file was removed can still
        // be disabled (or it would come back enabled with its file).
        let (stale, names): (Vec<String>, Vec<String>) = names.iter().cloned().partition(|n| {
            !on && self.enabled.contains(n) && self.by_name.get(&self.entries, n).is_none()
        });
        let ids = self.lookup(&names)?;
        let mut results = Vec::new();
        for name in stale {
            self.enabled.remove(&name);
            results.push(JobResult {
                name,
                ok: true,
                state: StateName::Inactive,
                message: Some("disabled (its unit file is gone)".to_owned()),
            });
        }
        for id in ids {
            let e = &self.entries[id];
            let changed = if on {
                self.enabled.insert(e.name.clone())
            } else {
                self.enabled.remove(&e.name)
            };
            let message = match (on, changed) {
                (true, true) if e.on_demand() => {
                    "enabled: listens on its sockets and starts at the first connection"
                }
                (true, true) if e.has_timer() => "enabled: its timer is armed",
                (true, true) => "enabled: starts whenever a daemon starts",
                (true, false) => "already enabled",
                (false, true) if e.has_timer() => "disabled: its timer is stopped",
                (false, true) => "disabled",
                (false, false) => "was not enabled",
            };
            results.push(JobResult {
                name: e.name.clone(),
                ok: true,
                state: e.state_name(),
                message: Some(message.to_owned()),
            });
        }
        Ok((Response::Job(results), self.enabled.clone()))
    }
}

/// A last exit as the state file keeps it: (code, signal name).
fn exit_fields(exit: Option<ExitKind>) -> (Option<i32>, Option<String>) {
    match exit {
        Some(ExitKind::Code(c)) => (Some(c), None),
        Some(ExitKind::Signal(s)) => (None, Some(s.as_str().to_owned())),
        _ => (None, None),
    }
}

/// The last exit the state file's (code, signal name) describe.
fn exit_of(code: Option<i32>, signal: Option<&str>) -> Option<ExitKind> {
    match (code, signal) {
        (Some(c), _) => Some(ExitKind::Code(c)),
        (None, Some(name)) => crate::unit::parse_signal_name(name).map(ExitKind::Signal),
        (None, None) => None,
    }
}
