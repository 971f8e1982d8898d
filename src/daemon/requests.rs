//! Requests about the daemon itself rather than its services: status,
//! reload, enable and disable, the hand-over to a successor (SPEC §17);
//! the rest go to the supervisor. Part of the event loop (it owns the
//! pieces these touch), kept apart so the loop stays a page.

use std::time::Instant;

use crate::daemon::event_loop::EventLoop;
use crate::daemon::persist;
use crate::daemon::supervisor::Input;
use crate::daemon::system;
use crate::daemon::timers::TimerKey;
use crate::protocol::{DaemonInfo, ReloadReport, Request, RequestFrame, Response};
use crate::unit;

/// How long a hand-over waits for oneshot or forking starts under way.
const HAND_OVER_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

impl EventLoop {
    pub(super) fn on_request(&mut self, conn: usize, frame: RequestFrame, now: Instant) {
        log::debug!("client {conn}: {}", frame.request.kind());
        if let Some(dir) = &frame.service_dir {
            if dir != self.sup.service_dir() {
                let resp = Response::error(
                    format!(
                        "the daemon manages {}, not {}",
                        self.sup.service_dir().display(),
                        dir.display()
                    ),
                    Some("omit --service-dir to use the daemon's; to switch, `diakonos kill` (stops its services) and run the command again, or use another --home for a second daemon"),
                );
                self.control.reply(conn, &resp, self.poll.registry(), now);
                return;
            }
        }
        let resp = match frame.request {
            Request::DaemonStatus => Some(Response::Daemon(Box::new(self.daemon_info(now)))),
            Request::Reload => Some(match self.reload() {
                Ok(report) => Response::Reloaded(report),
                Err(e) => Response::error(
                    format!("{e}; nothing changed"),
                    Some("restore the directory, or `diakonos kill` and start a daemon with another --service-dir"),
                ),
            }),
            Request::HandOver => self.hand_over_when_ready(conn, now),
            Request::Load(names) => Some(match self.reload_units(&names) {
                Ok(report) => Response::Reloaded(report),
                Err(e) => Response::error(format!("{e}; nothing changed"), None),
            }),
            Request::Timers => Some(Response::Timers(self.unit_timers.rows(&self.sup, now))),
            Request::Enable(names) => Some(self.set_enabled(&names, true)),
            Request::Disable(names) => Some(self.set_enabled(&names, false)),
            Request::Events(names) => {
                // A unit file written since the load is followed as `start`
                // would load it.
                self.load_new_units(&names);
                match names.iter().find(|n| self.sup.id_of(n).is_none()) {
                    Some(n) => Some(Response::error(
                        format!("no unit named `{n}`"),
                        Some("see `diakonos list`"),
                    )),
                    None => {
                        self.control.subscribe(conn, names);
                        self.sup.events_wanted = true;
                        None
                    }
                }
            }
            req @ (Request::Start(_) | Request::Restart(_)) => {
                if let Request::Start(names) | Request::Restart(names) = &req {
                    self.load_new_units(names);
                }
                self.sup.handle(Input::Request(Some(conn), req), now);
                None
            }
            req => {
                // Its answer comes out of the supervisor as a Reply effect.
                self.sup.handle(Input::Request(Some(conn), req), now);
                None
            }
        };
        if let Some(resp) = resp {
            self.state.persist(now, true, &mut self.sup);
            self.control.reply(conn, &resp, self.poll.registry(), now);
        }
    }

    /// SPEC §17: writes (and syncs) the state for a successor and says
    /// bye; the loop then ends at once, leaving every service running.
    /// A oneshot or forking start under way is judged by its exit status,
    /// which only its parent learns: the hand-over waits for it (at most
    /// HAND_OVER_WAIT), so a successor does not find it and judge it
    /// without one. The answer, when there is one now.
    fn hand_over_when_ready(&mut self, conn: usize, now: Instant) -> Option<Response> {
        if !self.handover_waiting.is_empty() {
            // Several clients may meet an older daemon at once: all are
            // answered when the hand-over happens.
            self.handover_waiting.push(conn);
            return None;
        }
        let n = self.sup.starts_judged_by_exit();
        if n == 0 {
            return Some(self.hand_over(now));
        }
        log::info!("hand-over: waiting for {n} oneshot/forking start(s) under way");
        self.handover_waiting.push(conn);
        self.sup
            .timers()
            .set(TimerKey::HandOver, Some(now + HAND_OVER_WAIT));
        None
    }

    /// The waiting hand-over, once nothing holds it (or its time is up).
    /// True when the daemon handed over and the loop ends.
    pub(super) fn hand_over_if_ready(&mut self, now: Instant) -> bool {
        // No successor without a client to start it: a hand-over whose
        // clients all left (Ctrl-C) is called off.
        let control = &self.control;
        self.handover_waiting.retain(|&c| control.is_open(c));
        if self.handover_waiting.is_empty() {
            log::info!("hand-over called off: its client left");
            self.sup.timers().set(TimerKey::HandOver, None);
            return false;
        }
        let due = self
            .sup
            .timers()
            .deadline(TimerKey::HandOver)
            .is_none_or(|t| now >= t);
        if self.sup.starts_judged_by_exit() > 0 && !due {
            return false;
        }
        self.sup.timers().set(TimerKey::HandOver, None);
        let resp = self.hand_over(now);
        for conn in std::mem::take(&mut self.handover_waiting) {
            self.control.reply(conn, &resp, self.poll.registry(), now);
        }
        if self.handed_over {
            log::info!("handed over: exiting, every service left running");
        }
        self.handed_over
    }

    fn hand_over(&mut self, now: Instant) -> Response {
        if self.sup.exiting || self.sup.is_killing() {
            return Response::error(
                "the daemon is stopping every service and exiting",
                Some("wait for it to finish, then run the command again"),
            );
        }
        // No exec may be in flight: the successor adopts what ran.
        for input in self.sys.execs.finish_all() {
            self.sup.handle(input, now);
        }
        self.sup.run(now, &mut self.sys);
        match self.state.hand_over(now, &mut self.sup) {
            Ok(n) => {
                log::info!("handing over {n} service(s) to a new daemon");
                self.handed_over = true;
                self.control.handing = self.handing();
                self.control.handing_lock = self.lock_fd;
                Response::Bye
            }
            Err(e) => Response::error(
                format!(
                    "cannot write {}: {e}; the daemon keeps running",
                    self.state.path().display()
                ),
                Some("check the free space and permissions of the home directory, then retry"),
            ),
        }
    }

    /// What goes to the next daemon with the `Bye` (`daemon::handed`):
    /// the notify socket and every held `[socket]` socket; at most what one
    /// message carries with the lock (the rest are bound again by the next).
    fn handing(&self) -> Vec<std::os::fd::RawFd> {
        /// SCM_MAX_FD: the most descriptors one message carries, less the lock.
        const MAX_FDS: usize = 252;
        let mut fds = Vec::new();
        fds.extend(self.notify.fd());
        self.sys.listeners.push_fds(&mut fds);
        if fds.len() > MAX_FDS {
            log::warn!(
                "hand-over: {} held sockets do not fit in the message; the next daemon binds them again",
                fds.len() - MAX_FDS
            );
            fds.truncate(MAX_FDS);
        }
        fds
    }

    fn set_enabled(&mut self, names: &[String], on: bool) -> Response {
        match self.sup.set_enabled(names, on) {
            Ok((resp, set)) => match persist::save_enabled(&self.sys.home.enabled(), &set) {
                Ok(()) => resp,
                Err(e) => Response::error(
                    format!("cannot write {}: {e}", self.sys.home.enabled().display()),
                    Some("check the free space and permissions of the home directory"),
                ),
            },
            Err(resp) => resp,
        }
    }

    /// `Load`: re-reads the directory, applies only the units named.
    /// A `start` (or `restart`, `events`) that names units not loaded yet (files written since the
    /// last read, as systemd loads a new unit on demand): the new files of
    /// the directory are loaded first, these and any other (a new unit's
    /// new dependency), as `reload` would add them; loaded units, changed
    /// or not, are left alone. A name with no file stays unknown.
    fn load_new_units(&mut self, names: &[String]) {
        let unknown: Vec<&String> = names
            .iter()
            .filter(|n| self.sup.id_of(n).is_none())
            .collect();
        let mut scope = self.sup.new_on_disk_names();
        // Only a name with a file (noticed, or written a moment ago) is
        // worth reading the directory for: not a mistyped one.
        let dir = self.sup.service_dir();
        let has_file =
            |n: &&String| scope.contains(*n) || dir.join(format!("{n}.service")).exists();
        if !unknown.iter().any(has_file) {
            return;
        }
        scope.extend(unknown.into_iter().cloned());
        match self.reload_units(&scope) {
            Ok(report) if !report.added.is_empty() => {
                log::info!("loaded for a start: {}", report.added.join(", "))
            }
            Ok(_) => {}
            Err(e) => log::warn!("{e}"),
        }
    }

    fn reload_units(&mut self, names: &[String]) -> Result<ReloadReport, String> {
        let loaded = self.read_dir()?;
        Ok(self.sup.reload_scoped(loaded, Some(names)))
    }

    pub(super) fn reload(&mut self) -> Result<ReloadReport, String> {
        let loaded = self.read_dir()?;
        let report = self.sup.reload(loaded);
        for w in &self.sup.warnings {
            log::warn!("{w}");
        }
        // Parsing every unit file again brought the loader's code back.
        crate::daemon::system::forget_code_pages();
        Ok(report)
    }

    /// The service directory read afresh for a reload: the units whose
    /// sockets are bound keep their addresses, and programs are looked up
    /// again (they may have been installed or moved).
    fn read_dir(&mut self) -> Result<unit::LoadedDir, String> {
        let dir = self.sup.service_dir().to_path_buf();
        let holders = self.sys.listeners.holders();
        let loaded = unit::load_dir_keeping(&dir, &unit::hostname(), &holders)
            .map_err(|e| format!("cannot read the service directory {}: {e}", dir.display()))?;
        self.sys.spawn_cache.forget_programs();
        Ok(loaded)
    }

    fn daemon_info(&self, now: Instant) -> DaemonInfo {
        DaemonInfo {
            pid: std::process::id(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            uptime_secs: now.saturating_duration_since(self.started).as_secs(),
            home: self.sys.home.dir.clone(),
            service_dir: self.sup.service_dir().to_path_buf(),
            units: self
                .sup
                .counts()
                .into_iter()
                .map(|(state, n)| (state.as_str().to_owned(), n))
                .collect(),
            rss_bytes: system::rss_bytes().unwrap_or(0),
            protocol: self.control.version(),
            services: Some(Box::new(crate::protocol::ServiceEnv {
                // As spawning does: the default only when it has none.
                path: std::env::var_os("PATH").map_or_else(
                    || crate::paths::DEFAULT_PATH.to_owned(),
                    |p| p.to_string_lossy().into_owned(),
                ),
                uid: nix::unistd::Uid::effective().as_raw(),
            })),
            output_to_daemon: self.sys.inherit_stdio,
        }
    }
}
