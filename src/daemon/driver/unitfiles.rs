//! The service directory: an inotify watch that notices a unit file
//! written, replaced or removed since it was loaded, so `list` and `status`
//! can say "changed on disk: run `diakonos reload`" (SPEC §15). Costs a
//! wake-up only when a file in the directory changes.

use std::os::fd::{AsFd, AsRawFd};
use std::path::Path;

use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};

use crate::daemon::supervisor::Supervisor;
use crate::unit::{unit_file_name, FileName};

pub const UNIT_FILES: Token = Token(4);

pub struct UnitFiles {
    inotify: Option<Inotify>,
    dir: std::path::PathBuf,
}

impl UnitFiles {
    /// Without inotify the flag is never set (logged once).
    pub fn new(dir: &Path, registry: &Registry) -> UnitFiles {
        let watch = || -> nix::Result<Inotify> {
            let inotify = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC)?;
            inotify.add_watch(
                dir,
                AddWatchFlags::IN_CLOSE_WRITE
                    | AddWatchFlags::IN_CREATE
                    | AddWatchFlags::IN_MOVED_TO
                    | AddWatchFlags::IN_MOVED_FROM
                    | AddWatchFlags::IN_DELETE,
            )?;
            Ok(inotify)
        };
        let inotify = match watch() {
            Ok(i) => {
                let fd = i.as_fd().as_raw_fd();
                match registry.register(&mut SourceFd(&fd), UNIT_FILES, Interest::READABLE) {
                    Ok(()) => Some(i),
                    Err(e) => {
                        log::warn!(
                            "cannot watch {}: {e}; `changed on disk` is not shown",
                            dir.display()
                        );
                        None
                    }
                }
            }
            Err(e) => {
                log::warn!(
                    "cannot watch {}: {e}; `changed on disk` is not shown",
                    dir.display()
                );
                None
            }
        };
        UnitFiles {
            inotify,
            dir: dir.to_path_buf(),
        }
    }

    /// What is wrong with the new unit `unit`'s file `file` read on its own
    /// (its dependencies are checked when a reload loads it); None: fine.
    fn new_unit_error(&self, unit: &str, file: &str) -> Option<String> {
        let path = self.dir.join(file);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) => return Some(format!("{}: {e}", path.display())),
        };
        let errors = crate::unit::parse(unit, &path, &text, &self.dir).err()?;
        // As a loaded unit's error reads (each with its hint).
        Some(crate::unit::errors_text(&errors))
    }

    /// Files changed: flags the units whose files they are.
    pub fn on_ready(&mut self, sup: &mut Supervisor) {
        let Some(inotify) = &self.inotify else { return };
        // Read again at each batch: the host may have been renamed.
        let mut host = None;
        while let Ok(events) = inotify.read_events() {
            if events.is_empty() {
                break;
            }
            for ev in events {
                let Some(name) = ev.name.as_ref().and_then(|n| n.to_str()) else {
                    continue;
                };
                if !name.contains(".service") {
                    continue;
                }
                // A created file is read at its close; a link (made whole,
                // never written) at its creation.
                if ev.mask.contains(AddWatchFlags::IN_CREATE)
                    && !self
                        .dir
                        .join(name)
                        .symlink_metadata()
                        .is_ok_and(|m| m.is_symlink())
                {
                    continue;
                }
                let host = host.get_or_insert_with(crate::unit::hostname);
                if let FileName::Unit { name: unit, .. } = unit_file_name(name, host) {
                    let gone = ev
                        .mask
                        .intersects(AddWatchFlags::IN_DELETE | AddWatchFlags::IN_MOVED_FROM);
                    // A new unit's file is read now, for `list` to show
                    // whether it will load (a loaded one's at the reload).
                    let present = match gone {
                        true => None,
                        false if sup.knows(unit) => Some(None),
                        false => Some(self.new_unit_error(unit, name)),
                    };
                    sup.mark_changed_on_disk(unit, present);
                }
            }
        }
    }
}
