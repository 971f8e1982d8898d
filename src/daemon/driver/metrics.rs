//! The metrics file (`daemon --metrics-file PATH`, SPEC §16): rewritten
//! atomically (a temporary file renamed over it) when a unit's state
//! changed, at most once per [`MIN_INTERVAL`]. Works on the `MetricsWrite`
//! timer key, armed only while a change waits for its turn: no wake-up
//! while nothing changes.

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::daemon::driver::activation::UnitTimers;
use crate::daemon::supervisor::Supervisor;

/// The file is rewritten at most this often.
pub const MIN_INTERVAL: Duration = Duration::from_secs(1);

pub struct MetricsWriter {
    path: Option<PathBuf>,
    /// The supervisor's change count the file shows (None: not written yet).
    written: Option<u64>,
    last_write: Option<Instant>,
    /// The last write failed (reported once until it works again).
    failed: bool,
}

impl MetricsWriter {
    pub fn new(path: Option<PathBuf>) -> MetricsWriter {
        MetricsWriter {
            path,
            written: None,
            last_write: None,
            failed: false,
        }
    }

    fn stale(&self, sup: &Supervisor) -> bool {
        self.path.is_some() && self.written != Some(sup.changes())
    }

    /// Writes the file if a unit changed since and its turn came (`force`:
    /// now, as the daemon exits).
    pub fn update(&mut self, now: Instant, force: bool, sup: &Supervisor, timers: &UnitTimers) {
        if !self.stale(sup) {
            return;
        }
        let due = self.last_write.is_none_or(|t| now >= t + MIN_INTERVAL);
        if due || force {
            self.write(now, sup, timers);
        }
    }

    /// When the next write is due, if one waits (the `MetricsWrite` key).
    pub fn deadline(&self, sup: &Supervisor) -> Option<Instant> {
        if !self.stale(sup) {
            return None;
        }
        self.last_write.map(|t| t + MIN_INTERVAL)
    }

    fn write(&mut self, now: Instant, sup: &Supervisor, timers: &UnitTimers) {
        let Some(path) = &self.path else {
            return;
        };
        let fired = crate::metrics::last_triggers(&timers.rows(sup, now));
        let text = crate::metrics::render(&sup.unit_infos(now), &fired, env!("CARGO_PKG_VERSION"));
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(format!(".tmp.{}", std::process::id()));
        let tmp = PathBuf::from(tmp);
        let result = std::fs::File::create(&tmp)
            .and_then(|mut f| f.write_all(text.as_bytes()))
            .and_then(|()| std::fs::rename(&tmp, path));
        // Written or not, this change had its turn: a failure is retried
        // with the next change, not in a loop.
        self.written = Some(sup.changes());
        self.last_write = Some(now);
        match result {
            Ok(()) => self.failed = false,
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                if !self.failed {
                    log::warn!("cannot write the metrics file {}: {e}", path.display());
                }
                self.failed = true;
            }
        }
    }
}
