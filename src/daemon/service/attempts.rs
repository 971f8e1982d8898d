//! Starts and restarts of a service: the start limit (StartLimitBurst in
//! StartLimitIntervalSec), what a failed attempt leads to (a restart per
//! policy, or failed), and the backoff between restarts. Part of the state
//! machine in `service.rs`: its helpers, and what `why` and `status` read.

use super::*;

impl Service {
    /// Spawn if the start limit allows it.
    pub(super) fn begin_start(&mut self, now: Instant, actions: &mut Vec<Action>) -> State {
        let window = self.policy.start_limit_interval.get();
        let expired = self
            .starts
            .iter()
            .take_while(|&&t| now.saturating_duration_since(t) >= window)
            .count();
        self.starts.drain(..expired);
        let burst = self.policy.start_limit_burst as usize;
        if burst > 0 && self.starts.len() >= burst {
            return State::Failed(Reason::StartLimitHit);
        }
        if burst > 0 {
            self.starts.push(now);
        }
        actions.push(Action::Spawn);
        State::Starting {
            pid: None,
            deadline: None,
        }
    }

    /// The main process could not be started: a unit that cannot work as
    /// written fails; a daemon short of descriptors, processes or memory
    /// is a failed attempt that its Restart policy retries.
    pub(super) fn spawn_failed(&mut self, e: SpawnError, now: Instant) -> State {
        if e.is_transient() && self.dep_failed.is_none() {
            return self.after_failure(Reason::SpawnFailed(Box::new(e)), now);
        }
        self.dep_failed = None;
        State::Failed(Reason::SpawnFailed(Box::new(e)))
    }

    /// Restart per policy after a failure, or fail.
    pub(super) fn after_failure(&mut self, reason: Reason, now: Instant) -> State {
        self.failed_attempts += 1;
        let restart = matches!(
            self.policy.restart,
            RestartPolicy::Always | RestartPolicy::OnFailure
        );
        if restart && self.want == Want::Up {
            self.schedule_restart(reason, now)
        } else {
            State::Failed(reason)
        }
    }

    /// `restarting`, unless the start limit will refuse that restart when
    /// it is due: then `failed` at once (no restart is announced, and no
    /// OnRestart hook fires, for a restart that will not happen).
    pub(super) fn schedule_restart(&mut self, reason: Reason, now: Instant) -> State {
        let delay = self.backoff();
        let until = now + delay;
        let burst = self.policy.start_limit_burst as usize;
        if burst > 0 && self.starts_in_window(until) >= burst {
            return State::Failed(Reason::StartLimitHit);
        }
        self.failures = self.failures.saturating_add(1);
        self.restart_reason = Some(Box::new(reason));
        State::Restarting { until }
    }

    /// When a `restarting` service launches again.
    /// Starts inside the StartLimitIntervalSec window that ends at `now`
    /// (for `why`; read only, the window itself moves in `begin_start`).
    pub fn starts_in_window(&self, now: Instant) -> usize {
        let window = self.policy.start_limit_interval.get();
        self.starts
            .iter()
            .filter(|&&t| now.saturating_duration_since(t) < window)
            .count()
    }

    pub fn next_attempt(&self) -> Option<Instant> {
        match self.state {
            State::Restarting { until } => Some(until),
            _ => None,
        }
    }

    /// RestartSec, doubled per consecutive failure up to RestartMaxDelaySec,
    /// with up to 25% jitter below the doubled value (never below RestartSec).
    pub fn backoff(&mut self) -> Duration {
        let base = self.policy.restart_sec.get();
        let cap = self.policy.restart_max_delay.get();
        if cap <= base {
            return base;
        }
        let factor = 2f64.powi(self.failures.min(62) as i32);
        let doubled = base.as_secs_f64() * factor;
        let capped = doubled.min(cap.as_secs_f64());
        // xorshift64: deterministic for a given seed, so tests can pin it.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let unit = (self.rng >> 11) as f64 / (1u64 << 53) as f64;
        let jittered = capped * (1.0 - 0.25 * unit);
        Duration::from_secs_f64(jittered.max(base.as_secs_f64()))
    }
}
