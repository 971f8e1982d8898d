//! `wait NAME... [--for STATE] [--timeout SEC]` (SPEC §12): a request the
//! supervisor answers once every named unit is in the condition, or one
//! waited on for `up` failed, or its deadline (a [`TimerKey::Wait`]) passed.
//! Looked at after every pass of [`Supervisor::run`]; no polling.

use super::*;
use crate::protocol::WaitFor;

/// A client waiting for units to reach a condition.
#[derive(Debug)]
pub(super) struct Waiter {
    /// Numbers its deadline's timer key.
    pub(super) n: u64,
    conn: Option<ConnId>,
    ids: Vec<ServiceId>,
    until: WaitFor,
    /// The timeout passed (its timer fired), with how long it was.
    expired: Option<std::time::Duration>,
    timeout: Option<std::time::Duration>,
}

impl Supervisor {
    pub(super) fn wait(
        &mut self,
        conn: Option<ConnId>,
        names: &[String],
        until: WaitFor,
        timeout_ms: Option<u64>,
        now: Instant,
    ) -> Option<Response> {
        let ids = match self.lookup(names) {
            Ok(ids) => ids,
            Err(resp) => return Some(resp),
        };
        self.next_wait += 1;
        let n = self.next_wait;
        let timeout = timeout_ms.map(std::time::Duration::from_millis);
        if let Some(t) = timeout {
            self.timers.set(TimerKey::Wait(n), Some(now + t));
        }
        self.waiters.push(Waiter {
            n,
            conn,
            ids,
            until,
            expired: None,
            timeout,
        });
        self.settle_waits();
        None
    }

    /// A wait's deadline passed.
    pub(super) fn wait_expired(&mut self, n: u64) {
        if let Some(w) = self.waiters.iter_mut().find(|w| w.n == n) {
            w.expired = w.timeout;
        }
    }

    /// Answers the waits that are decided.
    pub(super) fn settle_waits(&mut self) {
        let mut i = 0;
        while i < self.waiters.len() {
            let w = &self.waiters[i];
            let mut outcome = self.wait_outcome(w).map(Response::Job);
            // Nothing comes up while the daemon stops everything and exits.
            if outcome.is_none() && (self.exiting || (self.killing && w.until.means_up())) {
                outcome = Some(Response::error(
                    "the daemon is stopping every service and exiting",
                    Some("nothing comes up until a daemon runs again"),
                ));
            }
            match outcome {
                Some(resp) => {
                    let w = self.waiters.remove(i);
                    self.timers.set(TimerKey::Wait(w.n), None);
                    if let Some(conn) = w.conn {
                        self.effects.push_back(Effect::Reply(conn, resp));
                    }
                }
                None => i += 1,
            }
        }
    }

    /// Every unit's result once the wait is decided: all in the condition,
    /// one failed for good, or the timeout passed.
    fn wait_outcome(&self, w: &Waiter) -> Option<Vec<JobResult>> {
        let mut done = true;
        let mut failed = false;
        let mut results = Vec::with_capacity(w.ids.len());
        for &id in &w.ids {
            // Ids stay valid while anything refers to them; be safe anyway.
            let Some(e) = self.entries.get(id) else {
                continue;
            };
            let state = e.state_name();
            let holds = matches(w.until, e);
            let hopeless = !holds && w.until.means_up() && {
                matches!(e.svc.state, State::Failed(_))
                    || (!e.runnable() && !e.svc.state.is_active())
            };
            failed |= hopeless;
            done &= holds;
            let message = if holds {
                None
            } else if hopeless {
                Some(match &e.svc.state {
                    State::Failed(r) => format!("failed: {r}"),
                    _ => format!(
                        "invalid: {}",
                        e.error()
                            .unwrap_or_default()
                            .lines()
                            .next()
                            .unwrap_or_default()
                    ),
                })
            } else {
                Some(match w.expired {
                    Some(t) => format!(
                        "still {} after {}, not {}",
                        state.as_str(),
                        seconds(t),
                        w.until.as_str()
                    ),
                    None => String::new(),
                })
            };
            results.push(JobResult {
                name: e.name.clone(),
                ok: holds,
                state,
                message,
            });
        }
        (done || failed || w.expired.is_some()).then_some(results)
    }
}

/// Whether a unit meets the condition.
fn matches(until: WaitFor, e: &Entry) -> bool {
    let state = &e.svc.state;
    match until {
        WaitFor::Up => state.is_up(),
        // With `[health]`: up and its last probe passed; else up.
        WaitFor::Healthy => {
            let checked = e.unit.as_ref().is_some_and(|u| u.health.is_some());
            state.is_up()
                && (!checked
                    || e.health.as_ref().and_then(|h| h.shown()) == Some(health::Verdict::Healthy))
        }
        WaitFor::Running => matches!(state, State::Running { .. }),
        WaitFor::Exited => matches!(state, State::Exited),
        WaitFor::Inactive => matches!(state, State::Inactive),
        WaitFor::Failed => matches!(state, State::Failed(_)),
    }
}
