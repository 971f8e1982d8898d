//! The state writer: the state file is rewritten (atomically) when the
//! supervisor's state changed, at once before a client hears anything, else
//! coalesced to at most one write per `STATE_COALESCE`; it is made durable
//! (fsync) once quiet. Works on the `StateWrite` and `StateSync` timer keys.

use std::io;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::daemon::persist;
use crate::daemon::supervisor::Supervisor;

/// Changes that no client waits on are written to the state file at most
/// this often (restart churn, long dependency chains); a pass that answers
/// a client writes at once.
const STATE_COALESCE: Duration = Duration::from_millis(50);
/// ... or, when a write takes long (thousands of units, a slow disk), this
/// many times what the last one took (at most STATE_COALESCE_MAX), so the
/// writes of a long start or a restart storm stay a small part of the
/// daemon's time.
const STATE_COST_FACTOR: u32 = 20;
const STATE_COALESCE_MAX: Duration = Duration::from_secs(1);
/// A state write is made durable (fsync) once the state has been quiet this
/// long, so no burst of starts waits on a journal commit full of new log
/// files; a daemon crash in between loses nothing (the rename is already
/// visible to every process), only a power loss can.
const STATE_SYNC_QUIET: Duration = Duration::from_secs(1);
/// ... and at the latest this long after the first unsynced write.
const STATE_SYNC_MAX: Duration = Duration::from_secs(5);

pub struct StateWriter {
    path: PathBuf,
    /// The last write failed (reported once until it works again).
    failed: bool,
    /// The state changed since it was last written.
    dirty: bool,
    /// Only probe results changed: written at the next write, or before a
    /// client hears anything, never on a timer of their own.
    probes: bool,
    /// Since when the state file was written but not yet synced to disk.
    unsynced_since: Option<Instant>,
    last_write: Option<Instant>,
    /// How long the last write took.
    cost: Duration,
}

impl StateWriter {
    pub fn new(path: PathBuf) -> StateWriter {
        StateWriter {
            path,
            failed: false,
            dirty: false,
            probes: false,
            unsynced_since: None,
            last_write: None,
            cost: Duration::ZERO,
        }
    }

    /// Writes the state file if it changed: at once when `force` (a client
    /// is about to hear something), else at most every STATE_COALESCE.
    /// Nothing a client is told is ever newer than the state file, so a new
    /// daemon can adopt whatever a client saw even if this one dies next.
    pub fn persist(&mut self, now: Instant, force: bool, sup: &mut Supervisor) {
        self.dirty |= sup.take_dirty();
        self.probes |= sup.take_probes_unsaved();
        let due = self.last_write.is_none_or(|t| now >= t + self.gap());
        if (self.dirty && (force || due)) || (self.probes && force) {
            self.save(now, sup);
        }
    }

    /// When the next coalesced write is due (the `StateWrite` key).
    pub fn write_due(&self, now: Instant) -> Option<Instant> {
        self.dirty
            .then(|| self.last_write.map_or(now, |t| t + self.gap()))
    }

    /// The least time between two writes no client waits on.
    fn gap(&self) -> Duration {
        (self.cost * STATE_COST_FACTOR).clamp(STATE_COALESCE, STATE_COALESCE_MAX)
    }

    /// When the written state should be synced to disk, if it needs to be
    /// (the `StateSync` key).
    pub fn sync_due(&self) -> Option<Instant> {
        let first = self.unsynced_since?;
        let quiet = self.last_write.map_or(first, |t| t + STATE_SYNC_QUIET);
        Some(quiet.min(first + STATE_SYNC_MAX))
    }

    /// Syncs if it is due by now.
    pub fn sync_if_due(&mut self, now: Instant) {
        if self.sync_due().is_some_and(|at| now >= at) {
            self.sync();
        }
    }

    /// Makes the last state write durable.
    pub fn sync(&mut self) {
        if self.unsynced_since.take().is_some() {
            if let Err(e) = persist::sync(&self.path) {
                log::warn!("cannot sync {}: {e}", self.path.display());
            }
        }
    }

    fn save(&mut self, now: Instant, sup: &Supervisor) {
        self.dirty = false;
        self.probes = false;
        self.last_write = Some(now);
        let began = Instant::now();
        let snapshot = sup.snapshot(now);
        let saved = persist::save_state(&self.path, &snapshot);
        self.cost = began.elapsed();
        match saved {
            Ok(()) => {
                self.unsynced_since.get_or_insert(now);
                if self.failed {
                    log::info!("state file written again");
                }
                self.failed = false;
            }
            Err(e) => {
                if !self.failed {
                    log::error!(
                        "cannot write {}: {e}; services keep running, but a new daemon could not adopt them",
                        self.path.display()
                    );
                }
                self.failed = true;
                // Try again in about a second (or with the next reply).
                self.dirty = true;
                self.last_write = Some(now + Duration::from_secs(1));
            }
        }
    }

    /// SPEC §17: writes and syncs the state for a successor, whatever the
    /// timers say. Returns how many services it holds.
    pub fn hand_over(&mut self, now: Instant, sup: &mut Supervisor) -> io::Result<usize> {
        let snapshot = sup.snapshot(now);
        persist::save_state(&self.path, &snapshot).and_then(|()| persist::sync(&self.path))?;
        sup.take_dirty();
        sup.take_probes_unsaved();
        self.dirty = false;
        self.probes = false;
        self.unsynced_since = None;
        Ok(snapshot.services.len())
    }

    /// The file the state is written to.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }
}
