//! Service logs: an inotify watch on `logs/`, armed only while no size
//! check is due, so a chatty service costs one check per interval and a
//! quiet one none; the check rotates the logs that outgrew their limit
//! (copy-and-truncate: their services hold them open).

use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify, WatchDescriptor};

use crate::daemon::logfile;
use crate::daemon::supervisor::Supervisor;
use crate::paths::Home;

pub const LOG_WRITES: Token = Token(3);
/// After a service writes its log, sizes are checked this much later (so a
/// chatty service costs one check per interval, and a quiet one none) ...
const LOG_CHECK_DELAY: Duration = Duration::from_secs(5);
/// ... or sooner when a log grows fast enough to pass its limit by much
/// before then: half the time its growth at the last check would take to
/// reach the limit, but not sooner than this.
const LOG_CHECK_MIN: Duration = Duration::from_millis(250);
/// A log not looked at before is looked at again this soon, to learn how
/// fast it grows.
const LOG_CHECK_FIRST: Duration = Duration::from_secs(1);

pub struct Logs {
    home: Home,
    /// Watches the logs directory for writes while no size check is due.
    writes: Option<LogWatch>,
    /// When the sizes of the logs are checked next, once something wrote.
    next_check: Option<Instant>,
    /// How long after a write the next check comes (see LOG_CHECK_MIN).
    delay: Duration,
    /// Each limited log's size at the last check, when that was, and
    /// whether it had grown since the check before.
    sizes: crate::hash::HashMap<String, (u64, Instant, bool)>,
}

impl Logs {
    /// Without inotify, falls back to a check every LOG_CHECK_DELAY.
    pub fn new(home: Home, registry: &Registry, now: Instant) -> Logs {
        let writes = LogWatch::new(&home.logs_dir(), registry)
            .map_err(|e| {
                log::warn!(
                    "cannot watch {} ({e}); logs are checked every {}s",
                    home.logs_dir().display(),
                    LOG_CHECK_DELAY.as_secs()
                )
            })
            .ok();
        let next_check = writes.is_none().then_some(now + LOG_CHECK_DELAY);
        Logs {
            home,
            writes,
            next_check,
            delay: LOG_CHECK_FIRST,
            sizes: crate::hash::HashMap::default(),
        }
    }

    /// When the next size check is due (the `LogCheck` timer key).
    pub fn deadline(&self) -> Option<Instant> {
        self.next_check
    }

    /// A service wrote its log: check the sizes a little later, and stop
    /// listening until then (one wake-up per interval, however chatty).
    /// A log that was quiet (or is new) and now writes may be starting a
    /// burst: the check comes within LOG_CHECK_FIRST, so a service that
    /// suddenly writes 10 MB/s does not pass a 10 MiB limit five times
    /// over before it.
    pub fn on_ready(&mut self, now: Instant) {
        let mut delay = self.delay;
        if let Some(watch) = &mut self.writes {
            let sizes = &self.sizes;
            let woke = watch.disarm(|file| {
                let unit = file.strip_suffix(".log");
                unit.is_some_and(|u| sizes.get(u).is_none_or(|&(_, _, grew)| !grew))
            });
            if woke {
                delay = delay.min(LOG_CHECK_FIRST);
            }
        }
        if self.next_check.is_none() {
            self.next_check = Some(now + delay);
        }
    }

    /// A unit went down: its log will not grow until the next start, so it
    /// is rotated now if it is over its limit.
    pub fn rotate_idle(&mut self, name: &str, max_bytes: u64, max_files: u32) {
        rotate(name, &self.home.service_log(name), max_bytes, max_files);
    }

    /// Rotates the logs that outgrew their limit if a check is due, then
    /// listens for writes again.
    pub fn check_if_due(&mut self, now: Instant, sup: &Supervisor) {
        if self.next_check.is_none_or(|at| now < at) {
            return;
        }
        let mut delay = LOG_CHECK_DELAY;
        let mut sizes = crate::hash::HashMap::default();
        for (name, max, keep) in sup.log_limits() {
            let path = self.home.service_log(&name);
            let size = std::fs::metadata(&path).map_or(0, |m| m.len());
            let seen = self.sizes.get(&name);
            let grew = seen.is_some_and(|&(before, _, _)| size > before);
            if let Some(&(before, then, _)) = seen {
                let took = now.saturating_duration_since(then);
                delay = delay.min(next_look(before, size, took, max));
            }
            // Only a log over its limit is rotated (to empty: its service
            // keeps appending to the same file).
            let over = max > 0 && size > max;
            let size = if over && rotate(&name, &path, max, keep) {
                0
            } else {
                size
            };
            sizes.insert(name, (size, now, grew));
        }
        self.sizes = sizes;
        self.delay = delay;
        self.next_check = match &mut self.writes {
            Some(watch) => {
                watch.arm();
                None
            }
            None => Some(now + delay),
        };
    }
}

/// Rotates `path` (unit `name`'s log) if it is over `max`, keeping `keep`
/// old files; says so in the daemon's log. Whether it rotated.
fn rotate(name: &str, path: &Path, max: u64, keep: u32) -> bool {
    match logfile::rotate_if_needed(path, max, keep) {
        Ok(rotated) => {
            if rotated {
                log::info!("{name}: rotated {}", path.display());
            }
            rotated
        }
        Err(e) => {
            log::warn!("{name}: cannot rotate {}: {e}", path.display());
            false
        }
    }
}

/// When to look at a log again that grew from `before` to `size` bytes in
/// `took`, with a limit of `max` (0 = none): half the time that growth
/// would take to reach the limit, within LOG_CHECK_MIN..LOG_CHECK_DELAY.
fn next_look(before: u64, size: u64, took: Duration, max: u64) -> Duration {
    if max == 0 || size <= before || took.is_zero() {
        return LOG_CHECK_DELAY;
    }
    let rate = (size - before) as f64 / took.as_secs_f64();
    let left = max.saturating_sub(size) as f64;
    Duration::from_secs_f64((left / rate / 2.0).min(LOG_CHECK_DELAY.as_secs_f64()))
        .clamp(LOG_CHECK_MIN, LOG_CHECK_DELAY)
}

/// An inotify watch on the logs directory that is armed only while no size
/// check is pending.
struct LogWatch {
    inotify: Inotify,
    dir: PathBuf,
    watch: Option<WatchDescriptor>,
}

impl LogWatch {
    fn new(dir: &Path, registry: &Registry) -> io::Result<LogWatch> {
        let inotify = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC)?;
        let fd = inotify.as_fd().as_raw_fd();
        registry.register(&mut SourceFd(&fd), LOG_WRITES, Interest::READABLE)?;
        let mut watch = LogWatch {
            inotify,
            dir: dir.to_path_buf(),
            watch: None,
        };
        watch.arm();
        Ok(watch)
    }

    fn arm(&mut self) {
        if self.watch.is_none() {
            match self.inotify.add_watch(&self.dir, AddWatchFlags::IN_MODIFY) {
                Ok(wd) => self.watch = Some(wd),
                Err(e) => log::warn!("cannot watch {}: {e}", self.dir.display()),
            }
        }
    }

    /// Stops listening and drains what was already reported: whether one
    /// of the files written is `such` a file (by name).
    fn disarm(&mut self, such: impl Fn(&str) -> bool) -> bool {
        if let Some(wd) = self.watch.take() {
            let _ = self.inotify.rm_watch(wd);
        }
        let mut found = false;
        while let Ok(events) = self.inotify.read_events() {
            if events.is_empty() {
                break;
            }
            found |= events
                .iter()
                .any(|e| e.name.as_ref().and_then(|n| n.to_str()).is_some_and(&such));
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_that_grows_fast_is_looked_at_sooner() {
        let s = Duration::from_secs;
        // Quiet, shrunk (rotated) or unlimited: the usual delay.
        assert_eq!(next_look(100, 100, s(5), 1 << 20), LOG_CHECK_DELAY);
        assert_eq!(next_look(900, 100, s(5), 1 << 20), LOG_CHECK_DELAY);
        assert_eq!(next_look(0, 1 << 30, s(5), 0), LOG_CHECK_DELAY);
        // 1 MB/s with 4 MB to go: in 2 s.
        assert_eq!(next_look(1_000_000, 6_000_000, s(5), 10_000_000), s(2));
        // Far faster than the limit: as soon as allowed.
        assert_eq!(next_look(0, 50_000_000, s(1), 1 << 20), LOG_CHECK_MIN);
        // Slow growth, far from the limit: no sooner than usual.
        assert_eq!(next_look(0, 1000, s(5), 10 << 20), LOG_CHECK_DELAY);
    }
}
