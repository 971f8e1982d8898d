//! The daemon's one timer queue: at most one deadline per key, ordered by
//! time, keyed by what each deadline is for ([`TimerKey`]). The event loop
//! sleeps exactly until its head; an expired key is routed to whoever owns
//! it (the supervisor for services and group rechecks, a driver for the rest).
//!
//! PURE: the caller passes `now`; nothing here reads the clock.

use crate::hash::HashMap;
use std::collections::BTreeSet;
use std::hash::Hash;
use std::time::Instant;

use crate::graph::ServiceId;

/// What a service's deadline is for. A service has at most one state
/// deadline at a time (its state says which); other kinds may run beside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ServiceTimer {
    /// `RestartSec` of a restarting service ran out.
    Restart,
    /// `TimeoutStartSec` of a starting service (or a oneshot's run) ran out.
    StartTimeout,
    /// The current phase of a stop (ExecStop, signal, SIGKILL) ran out.
    Stop,
    /// Look again for a forking service's main process.
    MainPidScan,
    /// Check the RSS of a running service that sets MemoryMax.
    MemoryCheck,
    /// A health probe is due, or the one in flight timed out.
    Probe,
    /// WatchdogSec passed without a `WATCHDOG=1`.
    Watchdog,
}

/// What a deadline is for: every deadline of the daemon is one of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TimerKey {
    Service(ServiceId, ServiceTimer),
    /// A client connection that must send its request or read its reply.
    Conn(usize),
    /// Write the (changed) state file; writes are coalesced.
    StateWrite,
    /// Make the written state file durable (fsync).
    StateSync,
    /// Check the sizes of the service logs.
    LogCheck,
    /// A stopping service waits for processes that are not our children.
    GroupRecheck,
    /// Accept again after running out of descriptors.
    AcceptRetry,
    /// Check adopted processes that have no pidfd.
    AdoptedRecheck,
    /// The timeout of a `wait` request (numbered by the supervisor).
    Wait(u64),
    /// Rewrite the metrics file (changes are written at most once a second).
    MetricsWrite,
    /// The next elapse of a `[timer]` unit (`driver/activation.rs`).
    Activation(ServiceId),
    /// The quiet period after a change under a unit's `WatchPaths`.
    WatchDebounce(ServiceId),
    /// Reaped exits held while execs are under way must go out (`driver/children.rs`).
    ExitsHeld,
    /// A hand-over waits no longer for starts under way (`requests.rs`).
    HandOver,
    /// Look for what runs that ended left outside their groups.
    StrayLook,
    /// Services held for a client that has its answer go on to their exec
    /// even though it has not hung up yet (`event_loop.rs`).
    ClientGone,
    /// The daemon has answered no client for a while: the code that ran
    /// for them stops counting in its RSS (`system::forget_code_pages`).
    Trim,
}

#[derive(Debug)]
pub struct Timers<K: Ord + Copy + Hash> {
    queue: BTreeSet<(Instant, K)>,
    current: HashMap<K, Instant>,
}

impl<K: Ord + Copy + Hash> Default for Timers<K> {
    fn default() -> Self {
        Timers {
            queue: BTreeSet::new(),
            current: HashMap::default(),
        }
    }
}

impl<K: Ord + Copy + Hash> Timers<K> {
    /// Arms, moves or (with `None`) disarms the one timer of `key`.
    pub fn set(&mut self, key: K, deadline: Option<Instant>) {
        let old = match deadline {
            Some(at) => self.current.insert(key, at),
            None => self.current.remove(&key),
        };
        if old == deadline {
            return;
        }
        if let Some(old) = old {
            self.queue.remove(&(old, key));
        }
        if let Some(at) = deadline {
            self.queue.insert((at, key));
        }
    }

    /// When `key` is due, if it is armed.
    pub fn deadline(&self, key: K) -> Option<Instant> {
        self.current.get(&key).copied()
    }

    /// Arms `key` at `at` unless it is armed already (a recheck keeps its
    /// first deadline however often the condition is seen again).
    pub fn arm_if_idle(&mut self, key: K, at: Instant) {
        if !self.current.contains_key(&key) {
            self.set(key, Some(at));
        }
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        self.queue.first().map(|(at, _)| *at)
    }

    /// Removes and returns every key whose deadline is at or before `now`,
    /// earliest first.
    pub fn expired(&mut self, now: Instant) -> Vec<K> {
        let mut out = Vec::new();
        while let Some(&(at, key)) = self.queue.first() {
            if at > now {
                break;
            }
            self.queue.pop_first();
            self.current.remove(&key);
            out.push(key);
        }
        out
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.queue.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn nearest_deadline_comes_first() {
        // The queue reports its earliest deadline and expires in time order.
        let t0 = Instant::now();
        let mut t = Timers::default();
        t.set(1u32, Some(t0 + Duration::from_secs(5)));
        t.set(2, Some(t0 + Duration::from_secs(1)));
        assert_eq!(t.next_deadline(), Some(t0 + Duration::from_secs(1)));
        assert_eq!(t.expired(t0), Vec::<u32>::new());
        assert_eq!(t.expired(t0 + Duration::from_secs(10)), vec![2, 1]);
        assert_eq!(t.next_deadline(), None);
    }

    #[test]
    fn moving_a_timer_replaces_the_old_deadline() {
        // One key has at most one deadline: setting it again moves it.
        let t0 = Instant::now();
        let mut t = Timers::default();
        t.set(7u32, Some(t0 + Duration::from_secs(1)));
        t.set(7, Some(t0 + Duration::from_secs(9)));
        assert_eq!(t.len(), 1);
        assert!(t.expired(t0 + Duration::from_secs(2)).is_empty());
        t.set(7, None);
        assert_eq!(t.len(), 0);
        assert_eq!(t.next_deadline(), None);
    }

    #[test]
    fn arm_if_idle_keeps_the_first_deadline() {
        // A recheck armed while its condition holds is not pushed back by
        // seeing the condition again; once expired it can be armed anew.
        let t0 = Instant::now();
        let mut t = Timers::default();
        t.arm_if_idle(TimerKey::GroupRecheck, t0 + Duration::from_millis(20));
        t.arm_if_idle(TimerKey::GroupRecheck, t0 + Duration::from_millis(40));
        assert_eq!(
            t.deadline(TimerKey::GroupRecheck),
            Some(t0 + Duration::from_millis(20))
        );
        assert_eq!(
            t.expired(t0 + Duration::from_millis(20)),
            vec![TimerKey::GroupRecheck]
        );
        t.arm_if_idle(TimerKey::GroupRecheck, t0 + Duration::from_millis(40));
        assert_eq!(t.next_deadline(), Some(t0 + Duration::from_millis(40)));
    }
}
