//! `WatchPaths` (SPEC §15): while a unit with watched paths runs, one
//! inotify instance watches its files and directories (recursively, at
//! most [`MAX_WATCHES`] per unit); a change arms the unit's
//! [`TimerKey::WatchDebounce`] `WatchDebounceSec` later (each further change
//! moves it), and when it expires the running unit is restarted once.
//! Costs wake-ups only when a watched file changes.

use crate::hash::HashMap;
use std::collections::{BTreeMap, BTreeSet};
use std::os::fd::{AsFd, AsRawFd};
use std::path::{Path, PathBuf};
use std::time::Instant;

use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify, WatchDescriptor};

use crate::daemon::supervisor::Supervisor;
use crate::daemon::timers::TimerKey;
use crate::graph::ServiceId;
use crate::protocol::Request;

pub const WATCHES: Token = Token(5);
/// Watches per unit, at most (directories are watched recursively).
pub const MAX_WATCHES: usize = 10_000;

#[derive(Default)]
pub struct Watches {
    inotify: Option<Inotify>,
    /// Unit -> its watch descriptors.
    by_unit: BTreeMap<String, Vec<WatchDescriptor>>,
    /// Watch descriptor -> the units it is for (a path two units watch has one).
    by_wd: HashMap<WatchDescriptor, BTreeSet<String>>,
    /// Unit id -> name, for the debounce keys set.
    pending: HashMap<ServiceId, String>,
    /// Directories where a watched path that does not exist yet would
    /// appear, the unit waiting for it, and the name that appears.
    awaiting: Vec<(WatchDescriptor, String, std::ffi::OsString)>,
}

fn flags() -> AddWatchFlags {
    AddWatchFlags::IN_CLOSE_WRITE
        | AddWatchFlags::IN_MODIFY
        | AddWatchFlags::IN_CREATE
        | AddWatchFlags::IN_DELETE
        | AddWatchFlags::IN_MOVED_TO
        | AddWatchFlags::IN_MOVED_FROM
        | AddWatchFlags::IN_DELETE_SELF
        | AddWatchFlags::IN_MOVE_SELF
        | AddWatchFlags::IN_ATTRIB
}

impl Watches {
    /// Watches the paths of running units with `WatchPaths`; drops the
    /// watches of the others.
    pub fn sync(&mut self, sup: &Supervisor, registry: &Registry) {
        let mut want: BTreeMap<&str, &[PathBuf]> = BTreeMap::new();
        for &id in sup.with_watch_paths() {
            let e = &sup.entries()[id];
            if let Some(u) = e.unit.as_deref() {
                if !u.triggers.watch_paths.is_empty() && e.svc.state.is_active() {
                    want.insert(e.name.as_str(), &u.triggers.watch_paths);
                }
            }
        }
        if want.is_empty() && self.by_unit.is_empty() {
            return;
        }
        let gone: Vec<String> = self
            .by_unit
            .keys()
            .filter(|n| !want.contains_key(n.as_str()))
            .cloned()
            .collect();
        for name in gone {
            self.unwatch(&name);
        }
        for (name, paths) in want {
            if self.by_unit.contains_key(name) {
                continue;
            }
            if !self.watch_unit(name, paths, registry) {
                return;
            }
        }
    }

    /// Starts watching the paths of unit `name`; false if inotify cannot
    /// be had. Out of line: kept out of the code every daemon runs (the
    /// layout's first part), as most have no WatchPaths.
    #[inline(never)]
    fn watch_unit(&mut self, name: &str, paths: &[PathBuf], registry: &Registry) -> bool {
        if self.inotify.is_none() {
            match Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC) {
                Ok(i) => {
                    let fd = i.as_fd().as_raw_fd();
                    if let Err(e) =
                        registry.register(&mut SourceFd(&fd), WATCHES, Interest::READABLE)
                    {
                        log::warn!("cannot watch WatchPaths: {e}");
                        return false;
                    }
                    self.inotify = Some(i);
                }
                Err(e) => {
                    log::warn!("cannot watch WatchPaths: {e}");
                    return false;
                }
            }
        }
        let mut wds = Vec::new();
        for p in paths {
            self.add_tree(name, p, &mut wds);
        }
        self.by_unit.insert(name.to_string(), wds);
        true
    }

    /// Watches `path` and, for a directory, everything under it.
    fn add_tree(&mut self, name: &str, path: &Path, wds: &mut Vec<WatchDescriptor>) {
        let Some(inotify) = &self.inotify else { return };
        let mut stack = vec![path.to_path_buf()];
        while let Some(p) = stack.pop() {
            if wds.len() >= MAX_WATCHES {
                log::warn!("{name}: WatchPaths covers more than {MAX_WATCHES} directories and files; the rest is not watched");
                return;
            }
            match inotify.add_watch(&p, flags()) {
                Ok(wd) => {
                    self.by_wd.entry(wd).or_default().insert(name.to_string());
                    wds.push(wd);
                }
                Err(nix::errno::Errno::ENOENT) if p == path => {
                    // Not there yet: the nearest directory above it that is
                    // is watched for its name; when it appears the unit
                    // restarts, which watches it.
                    let mut below = path;
                    while let Some(parent) = below.parent() {
                        if parent.is_dir() {
                            // Added to what the directory is watched for
                            // already (another unit's path), not replacing it.
                            let mask_add = AddWatchFlags::from_bits_retain(nix::libc::IN_MASK_ADD);
                            let only =
                                AddWatchFlags::IN_CREATE | AddWatchFlags::IN_MOVED_TO | mask_add;
                            if let (Some(part), Ok(wd)) =
                                (below.file_name(), inotify.add_watch(parent, only))
                            {
                                let waiting = (wd, name.to_string(), part.to_os_string());
                                self.awaiting.push(waiting);
                                wds.push(wd);
                                log::info!(
                                    "{name}: {} does not exist yet: watching {} for it",
                                    path.display(),
                                    parent.display()
                                );
                            }
                            break;
                        }
                        below = parent;
                    }
                    continue;
                }
                Err(e) => {
                    log::warn!("{name}: cannot watch {}: {e}", p.display());
                    continue;
                }
            }
            if let Ok(dir) = std::fs::read_dir(&p) {
                for entry in dir.flatten() {
                    if entry.file_type().is_ok_and(|t| t.is_dir()) {
                        stack.push(entry.path());
                    }
                }
            }
        }
    }

    fn unwatch(&mut self, name: &str) {
        let Some(wds) = self.by_unit.remove(name) else {
            return;
        };
        for wd in wds {
            if let Some(units) = self.by_wd.get_mut(&wd) {
                units.remove(name);
                if units.is_empty() {
                    self.by_wd.remove(&wd);
                }
            }
            self.awaiting
                .retain(|(w, unit, _)| *w != wd || unit != name);
            if !self.by_wd.contains_key(&wd) && !self.awaiting.iter().any(|(w, ..)| *w == wd) {
                if let Some(i) = &self.inotify {
                    let _ = i.rm_watch(wd);
                }
            }
        }
    }

    /// Changes: each unit concerned is restarted `WatchDebounceSec` after
    /// the last one.
    pub fn on_ready(&mut self, sup: &mut Supervisor, now: Instant) {
        let mut changed = BTreeSet::new();
        if let Some(inotify) = &self.inotify {
            while let Ok(events) = inotify.read_events() {
                if events.is_empty() {
                    break;
                }
                for ev in events {
                    if let Some(units) = self.by_wd.get(&ev.wd) {
                        changed.extend(units.iter().cloned());
                    }
                    // A path waited for appeared.
                    for (wd, unit, part) in &self.awaiting {
                        if *wd == ev.wd && ev.name.as_ref() == Some(part) {
                            changed.insert(unit.clone());
                        }
                    }
                }
            }
        }
        // A new subdirectory is a change: the restart watches it afresh.
        for name in changed {
            let Some(id) = sup.id_of(&name) else { continue };
            let Some(debounce) = sup.entries()[id]
                .unit
                .as_ref()
                .map(|u| u.triggers.watch_debounce)
            else {
                continue;
            };
            self.pending.insert(id, name);
            sup.timers()
                .set(TimerKey::WatchDebounce(id), Some(now + debounce));
        }
    }

    /// The quiet period of unit `id` ran out: restart it if it runs.
    pub fn due(&mut self, id: ServiceId, sup: &Supervisor) -> Option<Request> {
        let name = self.pending.remove(&id)?;
        let e = sup.entries().get(id)?;
        if e.name != name || !e.svc.state.is_active() {
            return None;
        }
        log::info!("{name}: a watched file changed: restarting it");
        // Its watches are set up again for the new process (new directories included).
        self.unwatch(&name);
        Some(Request::Restart(vec![name]))
    }
}
