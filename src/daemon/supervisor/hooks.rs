//! Failure hooks (SPEC §11): `OnFailure` units start when a unit ends
//! `failed`, `OnRestart` units on each unexpected exit that will be
//! restarted, with `DIAKONOS_MONITOR_*` in their environment (given to
//! their next spawn only). `HookRateLimitSec` allows one hook start per
//! (unit, kind) per window; a trigger while the hook still runs is skipped.

use super::*;

/// Which hook list fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookKind {
    Failure,
    Restart,
}

/// Per unit: when each kind of hook last started, and how many triggers
/// were skipped.
#[derive(Debug, Clone, Default)]
pub struct HookRecord {
    last_failure: Option<Instant>,
    last_restart: Option<Instant>,
    pub skipped: u32,
}

/// `DIAKONOS_MONITOR_RESULT` of a reason.
fn result_of(reason: &Reason) -> &'static str {
    match reason {
        Reason::Exit(ExitKind::Signal(_)) => "signal",
        // Earlier: never a hook's (an earlier daemon's failure, shown again).
        Reason::Exit(_)
        | Reason::SpawnFailed(_)
        | Reason::NotReady
        | Reason::NoMainPid(_)
        | Reason::Earlier(_) => "exit-code",
        Reason::StartTimeout | Reason::Survived(_) => "timeout",
        Reason::Watchdog => "watchdog",
        Reason::Unhealthy(..) => "unhealthy",
        Reason::MemoryLimit { .. } => "memory",
        Reason::StartLimitHit => "start-limit",
        Reason::DepFailed(_) | Reason::DepInvalid(_) => "dependency",
    }
}

impl Supervisor {
    /// After a state change of `id` from `before`: fire its hooks if it
    /// just failed, or just scheduled a restart after an unexpected exit.
    pub(super) fn fire_hooks(&mut self, id: ServiceId, before: StateName, now: Instant) {
        let just = match (&self.entries[id].svc.state, before) {
            (State::Failed(_), b) => b != StateName::Failed,
            (State::Restarting { .. }, b) => b != StateName::Restarting,
            _ => false,
        };
        if just {
            self.fire_hooks_now(id, before, now);
        }
    }

    /// [`Supervisor::fire_hooks`] past its first check. Out of line: most
    /// state changes are neither, and this stays out of the code every
    /// daemon runs (the layout's first part).
    #[inline(never)]
    fn fire_hooks_now(&mut self, id: ServiceId, before: StateName, now: Instant) {
        let e = &self.entries[id];
        let (kind, reason) = match (&e.svc.state, before) {
            (State::Failed(r), b) if b != StateName::Failed => (HookKind::Failure, r.clone()),
            (State::Restarting { .. }, b) if b != StateName::Restarting => {
                match e.svc.restart_reason.as_deref() {
                    Some(r) => (HookKind::Restart, r.clone()),
                    None => return,
                }
            }
            _ => return,
        };
        let Some(unit) = e.unit.as_deref() else {
            return;
        };
        let hooks = match kind {
            HookKind::Failure => unit.triggers.on_failure.clone(),
            HookKind::Restart => unit.triggers.on_restart.clone(),
        };
        if hooks.is_empty() {
            return;
        }
        let window = unit.triggers.hook_rate_limit;
        let name = e.name.clone();
        let record = self.entries[id].hooks.get_or_insert_with(Box::default);
        let last = match kind {
            HookKind::Failure => &mut record.last_failure,
            HookKind::Restart => &mut record.last_restart,
        };
        if last.is_some_and(|t| now.saturating_duration_since(t) < window) {
            record.skipped = record.skipped.saturating_add(1);
            log::info!("{name}: hook skipped (HookRateLimitSec)");
            return;
        }
        // The text `status` shows (with the service's own ERRNO=).
        let shown = self
            .reason(id, self.entries[id].state_name())
            .unwrap_or_else(|| reason.to_string());
        let svc = &self.entries[id].svc;
        let mut env = vec![
            ("DIAKONOS_MONITOR_UNIT".to_owned(), name.clone()),
            (
                "DIAKONOS_MONITOR_RESULT".to_owned(),
                result_of(&reason).to_owned(),
            ),
            ("DIAKONOS_MONITOR_REASON".to_owned(), shown),
            (
                "DIAKONOS_MONITOR_RESTARTS".to_owned(),
                svc.restarts.to_string(),
            ),
        ];
        match svc.last_exit {
            Some(ExitKind::Code(c)) => {
                env.push(("DIAKONOS_MONITOR_EXIT_CODE".to_owned(), c.to_string()))
            }
            Some(ExitKind::Signal(s)) => {
                env.push(("DIAKONOS_MONITOR_SIGNAL".to_owned(), s.as_str().to_owned()))
            }
            _ => {}
        }
        let mut started = false;
        for hook in hooks {
            let Some(hid) = self.id_of(&hook) else {
                log::warn!("{name}: hook unit `{hook}` does not exist");
                continue;
            };
            if self.entries[hid].svc.state.is_active() {
                if let Some(r) = self.entries[id].hooks.as_mut() {
                    r.skipped = r.skipped.saturating_add(1);
                }
                log::info!("{name}: hook {hook} still runs; this trigger is skipped");
                continue;
            }
            log::info!("{name}: starting hook {hook} ({})", result_of(&reason));
            self.entries[hid].hook_env = Some(Box::new(env.clone()));
            self.start(&[hid], false, now);
            started = true;
        }
        if started {
            if let Some(r) = self.entries[id].hooks.as_mut() {
                match kind {
                    HookKind::Failure => r.last_failure = Some(now),
                    HookKind::Restart => r.last_restart = Some(now),
                }
            }
        }
    }
}
