//! The state writer: the state file is rewritten (atomically) when the
//! supervisor's state changed, at once before a client hears anything, else
//! coalesced to at most one write per `STATE_COALESCE`; it is made durable
//! (fsync) once quiet. Works on the `StateWrite` and `StateSync` timer keys.
//!
//! A full disk must not lose a change a client was told of (a `stop` that
//! a crash then undid): beside the state file the writer keeps
//! `state.reserve`, blocks allocated for twice its size (at least 64 KiB);
//! a write that finds no room gives them back and is made again at once.
//! The reserve is made anew once a write works with room to spare.

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
    /// The size of `state.reserve` as allocated (0: none; see above).
    reserve: u64,
    /// The file system allocates no blocks ahead (no reserve is tried).
    no_reserve: bool,
}

/// The reserve's size: room for the state file written twice (a new copy
/// beside the old until the rename), at least this.
const RESERVE_MIN: u64 = 64 * 1024;

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
            reserve: 0,
            no_reserve: false,
        }
    }

    /// `state.reserve`, beside the state file.
    fn reserve_path(&self) -> PathBuf {
        let mut name = self.path.as_os_str().to_owned();
        name.push(".reserve");
        PathBuf::from(name)
    }

    /// Writes `snapshot`; on a full disk, once more after giving back the
    /// reserve's blocks. A write that worked makes the reserve again if it
    /// is not there (a failure to is tried again at the next write).
    fn write(&mut self, snapshot: &persist::SavedState) -> io::Result<()> {
        let mut saved = persist::save_state(&self.path, snapshot);
        let full = |r: &io::Result<()>| {
            r.as_ref()
                .is_err_and(|e| e.raw_os_error() == Some(nix::libc::ENOSPC))
        };
        if full(&saved) && std::fs::remove_file(self.reserve_path()).is_ok() {
            self.reserve = 0;
            log::warn!("the disk is full: the state file is written with its reserve's room");
            saved = persist::save_state(&self.path, snapshot);
        }
        if saved.is_ok() && !self.no_reserve {
            let len = std::fs::metadata(&self.path).map_or(0, |m| m.len());
            let want = len.saturating_mul(2).max(RESERVE_MIN);
            if self.reserve < want {
                self.make_reserve(want);
            }
        }
        saved
    }

    /// Allocates (or grows) the reserve to `len` bytes: blocks on the
    /// disk, not a sparse file. On a full disk it is tried again at the
    /// next write; where the file system cannot, never again.
    fn make_reserve(&mut self, len: u64) {
        let path = self.reserve_path();
        let made = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(0)))
            .and_then(|file| nix::fcntl::posix_fallocate(&file, 0, len as nix::libc::off_t));
        match made {
            Ok(()) => self.reserve = len,
            Err(e) => {
                let _ = std::fs::remove_file(&path);
                self.reserve = 0;
                // The file system cannot allocate ahead: not tried again.
                self.no_reserve |=
                    matches!(e, nix::errno::Errno::EOPNOTSUPP | nix::errno::Errno::ENOSYS);
            }
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
        let saved = self.write(&snapshot);
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
        self.write(&snapshot)
            .and_then(|()| persist::sync(&self.path))?;
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
