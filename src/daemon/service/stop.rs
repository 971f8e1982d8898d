//! How a service goes down: KillSignal (or ExecStop) first, SIGKILL at
//! TimeoutStopSec, and what the stop ends in (inactive, failed, a restart
//! per policy, or waiting when a start came meanwhile). Part of the state
//! machine in `service.rs`: these are its helpers, called only from
//! [`Service::on_event`](super::Service::on_event).

use super::*;

impl Service {
    pub(super) fn kill_leftovers(&mut self, actions: &mut Vec<Action>) {
        if let Some(pgid) = self.pgid.take() {
            sigkill(actions, pgid);
        }
    }

    pub(super) fn begin_stop(
        &mut self,
        then: AfterStop,
        now: Instant,
        mut actions: Vec<Action>,
    ) -> Vec<Action> {
        let main = self.pid();
        let timeout = self.policy.timeout_stop.get();
        let (phase, deadline) = if self.policy.has_exec_stop {
            actions.push(Action::SpawnStop);
            (StopPhase::ExecStop, now + timeout)
        } else if timeout.is_zero() {
            // No grace at all: SIGKILL right behind KillSignal.
            self.signal_group(&mut actions);
            if let Some(pgid) = self.pgid {
                sigkill(&mut actions, pgid);
            }
            (StopPhase::Killed, now + KILL_GRACE)
        } else {
            self.signal_group(&mut actions);
            (StopPhase::Signalled, now + timeout)
        };
        // The ExecStop pid is filled in by `stop_cmd_spawned`.
        self.state = State::Stopping {
            main,
            stop_cmd: None,
            phase,
            deadline,
            then,
        };
        // With nothing left to signal (a RemainAfterExit oneshot whose
        // group is empty) the stop still waits for the supervisor's look
        // for what the run left outside its group (a daemonized server):
        // GroupGone ends it.
        actions
    }

    /// What follows a spawn (or a main-pid search) that news overtook: a
    /// stop ending `failed` when a required dependency failed meanwhile,
    /// inactive when a stop was asked, else nothing.
    pub(super) fn stop_after_spawn(&mut self) -> Option<AfterStop> {
        match self.dep_failed.take() {
            Some(reason) => Some(AfterStop::Failed(reason)),
            None => (self.want == Want::Down).then_some(AfterStop::Inactive),
        }
    }

    /// Sends KillSignal to the group, if there is one, then SIGCONT (as
    /// systemd does): a stopped (SIGSTOPped, hung) process acts on the
    /// signal at once instead of holding it pending until TimeoutStopSec.
    pub(super) fn signal_group(&self, actions: &mut Vec<Action>) -> Option<()> {
        let pgid = self.pgid?;
        let signal = self.policy.kill_signal;
        actions.push(Action::KillGroup { pgid, signal });
        if !matches!(signal, Signal::SIGKILL | Signal::SIGCONT) {
            actions.push(Action::KillGroup {
                pgid,
                signal: Signal::SIGCONT,
            });
        }
        Some(())
    }

    /// KillSignal sent (ExecStop done or cut off): the phase and deadline
    /// of the wait for the group to go.
    fn enter_signalled(&self, now: Instant, actions: &mut Vec<Action>) -> (StopPhase, Instant) {
        self.signal_group(actions);
        (StopPhase::Signalled, now + self.policy.timeout_stop.get())
    }

    pub(super) fn stopping(
        &mut self,
        ev: Event,
        now: Instant,
        mut actions: Vec<Action>,
    ) -> Vec<Action> {
        let State::Stopping {
            main,
            stop_cmd,
            phase,
            deadline,
            then,
        } = self.state.clone()
        else {
            return actions;
        };
        let (mut main, mut stop_cmd, mut phase, mut deadline) = (main, stop_cmd, phase, deadline);
        match ev {
            Event::Exited(kind) => {
                self.last_exit = Some(kind);
                main = None;
            }
            Event::StopCmdExited(_) => {
                stop_cmd = None;
                if phase == StopPhase::ExecStop {
                    (phase, deadline) = self.enter_signalled(now, &mut actions);
                }
            }
            Event::GroupGone => {
                self.pgid = None;
            }
            Event::Timer if now >= deadline => match phase {
                StopPhase::ExecStop => {
                    (phase, deadline) = self.enter_signalled(now, &mut actions);
                    if let Some(pid) = stop_cmd {
                        sigkill(&mut actions, pid);
                    }
                }
                StopPhase::Signalled => {
                    phase = StopPhase::Killed;
                    deadline = now + KILL_GRACE;
                    for pgid in [self.pgid, stop_cmd].into_iter().flatten() {
                        sigkill(&mut actions, pgid);
                    }
                }
                StopPhase::Killed => {
                    // Something outlived SIGKILL (a process stuck in the
                    // kernel): stop waiting, but never call that a clean stop.
                    let what = match (main, self.pgid) {
                        (Some(pid), _) => format!("main process {pid}"),
                        (None, Some(pgid)) => format!("process group {pgid}"),
                        (None, None) => "the ExecStop process".to_owned(),
                    };
                    log::warn!("{what} survived SIGKILL; no longer waiting for it");
                    self.pgid = None;
                    self.state = State::Failed(Reason::Survived(what));
                    return actions;
                }
            },
            _ => {}
        }
        self.state = State::Stopping {
            main,
            stop_cmd,
            phase,
            deadline,
            then,
        };
        if main.is_none() && stop_cmd.is_none() && self.pgid.is_none() {
            self.finish_stop(now);
        }
        actions
    }

    pub(super) fn finish_stop(&mut self, now: Instant) {
        let State::Stopping { then, .. } = &self.state else {
            return;
        };
        let then = then.clone();
        self.state = match then {
            AfterStop::Failed(r) => State::Failed(*r),
            _ if self.want == Want::Up => match then {
                AfterStop::Failure(r) => self.after_failure(*r, now),
                _ => State::Waiting,
            },
            AfterStop::Failure(r) => State::Failed(*r),
            AfterStop::Inactive => State::Inactive,
        };
    }
}

/// SIGKILL to the group `pgid`.
pub(super) fn sigkill(actions: &mut Vec<Action>, pgid: Pid) {
    actions.push(Action::KillGroup {
        pgid,
        signal: Signal::SIGKILL,
    });
}
