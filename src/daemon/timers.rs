//! The timer queue: at most one deadline per key, ordered by time, so the
//! event loop can sleep exactly until the nearest one.
//!
//! PURE: the caller passes `now`; nothing here reads the clock.

use std::collections::{BTreeSet, HashMap};
use std::hash::Hash;
use std::time::Instant;

#[derive(Debug)]
pub struct Timers<K: Ord + Copy + Hash> {
    queue: BTreeSet<(Instant, K)>,
    current: HashMap<K, Instant>,
}

impl<K: Ord + Copy + Hash> Default for Timers<K> {
    fn default() -> Self {
        Timers {
            queue: BTreeSet::new(),
            current: HashMap::new(),
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
}
