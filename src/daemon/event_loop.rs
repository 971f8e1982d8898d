//! The daemon's one loop: a single `mio::Poll` over the control socket, its
//! clients, the signal pipe and pidfds of adopted processes, sleeping until
//! the nearest timer. The only caller of `poll()`. Each pass reads the clock
//! once, turns what happened into supervisor inputs, lets the supervisor
//! drain its queue, sends the replies that are ready, and persists the state
//! if it changed.

use std::collections::HashMap;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mio::net::UnixDatagram;
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify, WatchDescriptor};
use nix::sys::signal::Signal;
use nix::sys::socket::{
    recvmsg, setsockopt, sockopt::PassCred, ControlMessageOwned, MsgFlags, UnixCredentials,
};
use nix::unistd::Pid;
use signal_hook::consts::{SIGCHLD, SIGHUP, SIGINT, SIGTERM};
use signal_hook_mio::v1_0::Signals;

use crate::daemon::control::{Control, Incoming};
use crate::daemon::logfile;
use crate::daemon::persist;
use crate::daemon::procfs;
use crate::daemon::service::ExitKind;
use crate::daemon::spawn::{self, SpawnCache, SpawnSpec};
use crate::daemon::supervisor::{Role, Supervisor, Sys};
use crate::daemon::timers::TimerKey;
use crate::paths::Home;
use crate::protocol::{DaemonInfo, ReloadReport, Request, RequestFrame, Response};
use crate::unit::{self, ServiceType, Unit};

const LISTENER: Token = Token(0);
const SIGNALS: Token = Token(1);
const NOTIFY: Token = Token(2);
const LOG_WRITES: Token = Token(3);
/// Tokens of pidfds (adopted processes) start here, far above client tokens.
const FIRST_PIDFD_TOKEN: usize = 1 << 40;

/// Changes that no client waits on are written to the state file at most
/// this often (restart churn, long dependency chains); a pass that answers
/// a client writes at once.
const STATE_COALESCE: Duration = Duration::from_millis(50);
/// A state write is made durable (fsync) once the state has been quiet this
/// long, so no burst of starts waits on a journal commit full of new log
/// files; a daemon crash in between loses nothing (the rename is already
/// visible to every process), only a power loss can.
const STATE_SYNC_QUIET: Duration = Duration::from_secs(1);
/// ... and at the latest this long after the first unsynced write.
const STATE_SYNC_MAX: Duration = Duration::from_secs(5);
/// After an accept failed for lack of descriptors, it is retried this often.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);
/// Without pidfds (kernels before 5.3), adopted processes are checked this often.
const ADOPTED_RECHECK: Duration = Duration::from_secs(1);
/// After a service writes its log, sizes are checked this much later (so a
/// chatty service costs one check per interval, and a quiet one none).
const LOG_CHECK_DELAY: Duration = Duration::from_secs(5);

/// The real operating system behind [`Sys`].
pub struct RealSys {
    pub home: Home,
    /// The daemon's environment and the programs found on PATH, kept
    /// between spawns.
    pub spawn_cache: SpawnCache,
    /// The process spawned last and its start time, when the boot clock
    /// pinned it down (so `start_time` need not read `/proc`).
    last_spawn: Option<(Pid, u64)>,
}

impl Sys for RealSys {
    fn spawn(&mut self, unit: &Unit, role: Role) -> Result<Pid, String> {
        let argv = match role {
            Role::Main => &unit.exec_start,
            Role::StopCmd => match &unit.exec_stop {
                Some(argv) => argv,
                None => return Err("no ExecStop".into()),
            },
        };
        let log = self.home.service_log(&unit.name);
        if role == Role::Main {
            // Nothing of this unit writes its log now: renames, no copy.
            if let Err(e) =
                logfile::rotate_closed_if_needed(&log, unit.log_max_bytes, unit.log_max_files)
            {
                log::warn!("{}: cannot rotate {}: {e}", unit.name, log.display());
            }
        }
        let mut extra = Vec::new();
        if role == Role::Main {
            // Tags that let a new daemon find this process (spawn::find_tagged).
            extra.push((
                spawn::TAG_HOME.to_owned(),
                self.home.dir.to_string_lossy().into_owned(),
            ));
            extra.push((spawn::TAG_UNIT.to_owned(), unit.name.clone()));
        }
        if unit.kind == ServiceType::Notify {
            extra.push((
                "NOTIFY_SOCKET".to_owned(),
                self.home.notify_socket().to_string_lossy().into_owned(),
            ));
        }
        let before = spawn::boot_clock_ticks();
        let spawned = spawn::spawn(
            &SpawnSpec {
                argv,
                cwd: &unit.working_directory,
                env: &unit.environment,
                user: unit.user.as_deref(),
                log: &log,
                extra_env: &extra,
            },
            &mut self.spawn_cache,
        );
        let after = spawn::boot_clock_ticks();
        self.last_spawn = match (&spawned, before) {
            (Ok(pid), Some(tick)) if after == before => Some((*pid, tick)),
            _ => None,
        };
        spawned
    }

    fn age(&mut self, start_time: u64) -> Option<Duration> {
        procfs::age(start_time)
    }

    fn unit_down(&mut self, unit: &Unit) {
        let log = self.home.service_log(&unit.name);
        match logfile::rotate_if_needed(&log, unit.log_max_bytes, unit.log_max_files) {
            Ok(true) => log::info!("{}: rotated {}", unit.name, log.display()),
            Ok(false) => {}
            Err(e) => log::warn!("{}: cannot rotate {}: {e}", unit.name, log.display()),
        }
    }

    fn scan_main_pid(
        &mut self,
        unit: &Unit,
        pgid: Pid,
        known: &[Pid],
        other_groups: &[Pid],
        scan: &mut spawn::MainPidScan,
        now: Instant,
    ) -> Option<Result<(Pid, Pid), String>> {
        spawn::scan_main_pid(
            &unit.name,
            unit.pid_file.as_deref(),
            pgid,
            known,
            other_groups,
            scan,
            now,
        )
    }

    fn kill_group(&mut self, pgid: Pid, signal: Signal) {
        spawn::kill_group(pgid, signal);
    }

    fn group_alive(&mut self, pgid: Pid) -> bool {
        spawn::group_alive(pgid)
    }

    fn process_groups(&mut self, pid: Pid) -> Option<(Pid, Pid)> {
        procfs::stat(pid.as_raw())
            .filter(|s| !s.zombie)
            .map(|s| (Pid::from_raw(s.pgrp), Pid::from_raw(s.session)))
    }

    fn start_time(&mut self, pid: Pid) -> Option<u64> {
        if let Some((spawned, tick)) = self.last_spawn.take() {
            if spawned == pid {
                return Some(tick);
            }
        }
        procfs::start_time(pid.as_raw())
    }

    fn is_other_user(&mut self, user: &str) -> bool {
        let uid = match user.parse::<u32>() {
            Ok(n) => Some(nix::unistd::Uid::from_raw(n)),
            Err(_) => nix::unistd::User::from_name(user)
                .ok()
                .flatten()
                .map(|u| u.uid),
        };
        uid.is_some_and(|uid| uid != nix::unistd::Uid::effective())
    }
}

/// How the loop watches one adopted process.
enum Watch {
    Pidfd(OwnedFd),
    /// No pidfd support: identified by start time, checked on a timer.
    Polled(u64),
}

pub struct EventLoop {
    poll: Poll,
    signals: Signals,
    /// sd_notify datagrams from notify services.
    notify: Option<UnixDatagram>,
    control: Control,
    sup: Supervisor,
    sys: RealSys,
    started: Instant,
    /// Adopted processes by token.
    watches: HashMap<usize, (Pid, Watch)>,
    next_watch: usize,
    /// Watches the logs directory for writes while no size check is due.
    log_writes: Option<LogWatch>,
    /// When the sizes of the logs are checked next, once something wrote.
    next_log_check: Option<Instant>,
    /// The last state write failed (reported once until it works again).
    state_write_failed: bool,
    /// The state changed since it was last written.
    state_dirty: bool,
    /// Since when the state file was written but not yet synced to disk.
    state_unsynced_since: Option<Instant>,
    last_state_write: Option<Instant>,
    /// A hand-over was answered: the loop ends without touching a service.
    handed_over: bool,
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl EventLoop {
    pub fn new(control: Control, sup: Supervisor, home: Home) -> io::Result<EventLoop> {
        let poll = Poll::new()?;
        let mut signals = Signals::new([SIGCHLD, SIGTERM, SIGINT, SIGHUP])?;
        poll.registry()
            .register(&mut signals, SIGNALS, Interest::READABLE)?;
        let mut control = control;
        poll.registry()
            .register(control.listener(), LISTENER, Interest::READABLE)?;
        let notify = match bind_notify(&home.notify_socket()) {
            Ok(mut sock) => {
                match poll
                    .registry()
                    .register(&mut sock, NOTIFY, Interest::READABLE)
                {
                    Ok(()) => Some(sock),
                    Err(e) => {
                        log::warn!("cannot watch the notify socket: {e}; Type=notify services will time out");
                        None
                    }
                }
            }
            Err(e) => {
                log::warn!(
                    "cannot bind {}: {e}; Type=notify services will time out",
                    home.notify_socket().display()
                );
                None
            }
        };
        let log_writes = LogWatch::new(&home.logs_dir(), poll.registry())
            .map_err(|e| {
                log::warn!(
                    "cannot watch {} ({e}); logs are checked every {}s",
                    home.logs_dir().display(),
                    LOG_CHECK_DELAY.as_secs()
                )
            })
            .ok();
        let now = Instant::now();
        Ok(EventLoop {
            poll,
            signals,
            notify,
            control,
            sup,
            sys: RealSys {
                home,
                spawn_cache: SpawnCache::default(),
                last_spawn: None,
            },
            started: now,
            watches: HashMap::new(),
            next_watch: FIRST_PIDFD_TOKEN,
            // Without inotify, fall back to a check every LOG_CHECK_DELAY.
            next_log_check: if log_writes.is_some() {
                None
            } else {
                Some(now + LOG_CHECK_DELAY)
            },
            log_writes,
            state_write_failed: false,
            state_dirty: false,
            state_unsynced_since: None,
            last_state_write: None,
            handed_over: false,
        })
    }

    /// Adopts what the previous daemon left (the state file) and starts the
    /// enabled units.
    pub fn restore(&mut self, saved: persist::SavedState) {
        let home = &self.sys.home;
        let enabled = persist::load_enabled(&home.enabled());
        let tagged = spawn::find_tagged(&home.dir);
        let adopted = self.sup.restore(
            saved,
            tagged,
            enabled,
            Instant::now(),
            unix_now(),
            &mut self.sys,
        );
        for pid in adopted {
            self.watch(pid);
        }
    }

    fn watch(&mut self, pid: Pid) {
        let token = self.next_watch;
        self.next_watch += 1;
        let watch = match spawn::pidfd_open(pid) {
            Ok(fd) => {
                let fd_raw = fd.as_raw_fd();
                match self.poll.registry().register(
                    &mut SourceFd(&fd_raw),
                    Token(token),
                    Interest::READABLE,
                ) {
                    Ok(()) => Watch::Pidfd(fd),
                    Err(e) => {
                        log::warn!(
                            "cannot watch adopted process {pid}: {e}; checking it every second"
                        );
                        self.polled_watch(pid)
                    }
                }
            }
            Err(e) if e.raw_os_error() == Some(nix::libc::ESRCH) => {
                // Already gone between the check and now.
                self.sup.child_exited(pid, ExitKind::Unknown);
                return;
            }
            Err(e) => {
                log::info!("no pidfd for adopted process {pid} ({e}); checking it every second");
                self.polled_watch(pid)
            }
        };
        self.watches.insert(token, (pid, watch));
    }

    fn polled_watch(&mut self, pid: Pid) -> Watch {
        Watch::Polled(procfs::start_time(pid.as_raw()).unwrap_or(0))
    }

    /// Runs until a kill (request or signal) has stopped every service.
    pub fn run(&mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(256);
        // Whatever start-up queued (adoption, enabled units) runs first.
        let now = Instant::now();
        self.sup.run(now, &mut self.sys);
        self.after_pass(now);
        loop {
            if self.sup.exiting && self.control.all_flushed() {
                self.sync_state();
                return Ok(());
            }
            let timeout = self.timeout(Instant::now());
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            let now = Instant::now();
            let mut watched_exits = Vec::new();
            for ev in events.iter() {
                match ev.token() {
                    LISTENER => self.control.accept_all(self.poll.registry(), now),
                    SIGNALS => self.on_signals(),
                    NOTIFY => self.on_notify(),
                    LOG_WRITES => self.on_log_writes(now),
                    Token(t) if t >= FIRST_PIDFD_TOKEN => watched_exits.push(t),
                    Token(t) => {
                        let readable = ev.is_readable() || ev.is_read_closed() || ev.is_error();
                        let incoming = self.control.on_ready(
                            t,
                            readable,
                            ev.is_writable(),
                            self.poll.registry(),
                        );
                        match incoming {
                            Some(Incoming::Request(conn, frame)) => {
                                self.on_request(conn, frame, now);
                                if self.handed_over {
                                    // Nothing more may happen to a service:
                                    // the state file says how things are.
                                    log::info!("handed over: exiting, every service left running");
                                    return Ok(());
                                }
                            }
                            Some(Incoming::Bad(conn, err)) => {
                                self.control.reject(conn, &err, self.poll.registry(), now)
                            }
                            None => {}
                        }
                    }
                }
            }
            // Reap after every wake-up, whatever woke us: one SIGCHLD can
            // stand for many exits, and a coalesced one may come late.
            for (pid, kind) in spawn::reap_all() {
                self.sup.child_exited(pid, kind);
            }
            // After reaping: a watched process that is also our child has
            // been reported with its real exit status already.
            for token in watched_exits {
                self.on_adopted_exit(token);
            }
            self.check_polled_watches();
            if self.control.accept_blocked {
                self.control.accept_all(self.poll.registry(), now);
            }
            self.arm_driver_timers(now);
            self.sup.timers_expired(now);
            self.route_due();
            self.sup.run(now, &mut self.sys);
            self.route_due();
            self.after_pass(now);
        }
    }

    /// How long poll may sleep: until the head of the one timer queue, or forever.
    fn timeout(&self, now: Instant) -> Option<Duration> {
        // Round up so we never wake a hair early and spin.
        self.sup
            .poll_timeout()
            .map(|d| d.saturating_duration_since(now) + Duration::from_micros(100))
    }

    /// Sets the deadlines of the drivers' keys in the one timer queue from
    /// what each driver is waiting for.
    fn arm_driver_timers(&mut self, now: Instant) {
        let deadlines = self.control.take_deadlines();
        let polled = self
            .watches
            .values()
            .any(|(_, w)| matches!(w, Watch::Polled(_)));
        let write = self
            .state_dirty
            .then(|| self.last_state_write.map_or(now, |t| t + STATE_COALESCE));
        let sync = self.sync_due();
        let timers = self.sup.timers();
        for (conn, at) in deadlines {
            timers.set(TimerKey::Conn(conn), at);
        }
        if self.control.accept_blocked {
            timers.arm_if_idle(TimerKey::AcceptRetry, now + ACCEPT_RETRY);
        } else {
            timers.set(TimerKey::AcceptRetry, None);
        }
        if polled {
            timers.arm_if_idle(TimerKey::AdoptedRecheck, now + ADOPTED_RECHECK);
        } else {
            timers.set(TimerKey::AdoptedRecheck, None);
        }
        timers.set(TimerKey::LogCheck, self.next_log_check);
        timers.set(TimerKey::StateWrite, write);
        timers.set(TimerKey::StateSync, sync);
    }

    /// Routes the expired keys of drivers. Only a connection's needs its
    /// own handling; the others wake the loop, and the checks after every
    /// pass (accept, adopted processes, state, logs) see that they are due.
    fn route_due(&mut self) {
        for key in self.sup.take_due() {
            if let TimerKey::Conn(conn) = key {
                self.control.timed_out(conn, self.poll.registry());
            }
        }
    }

    /// Reads every pending sd_notify datagram with its sender's credentials.
    fn on_notify(&mut self) {
        let Some(sock) = &self.notify else {
            return;
        };
        let mut buf = [0u8; 4096];
        loop {
            let mut cmsg = nix::cmsg_space!(UnixCredentials);
            let mut iov = [std::io::IoSliceMut::new(&mut buf)];
            let msg = match recvmsg::<()>(
                sock.as_raw_fd(),
                &mut iov,
                Some(&mut cmsg),
                MsgFlags::MSG_DONTWAIT,
            ) {
                Ok(msg) => msg,
                Err(nix::errno::Errno::EAGAIN) => return,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => {
                    log::warn!("notify socket: {e}");
                    return;
                }
            };
            let sender = msg.cmsgs().ok().and_then(|mut c| {
                c.find_map(|c| match c {
                    ControlMessageOwned::ScmCredentials(cred) => Some(Pid::from_raw(cred.pid())),
                    _ => None,
                })
            });
            let len = msg.bytes;
            let Some(sender) = sender else {
                continue; // No credentials: cannot tell who it is.
            };
            let text = String::from_utf8_lossy(&buf[..len]).into_owned();
            let group = nix::unistd::getpgid(Some(sender)).ok();
            self.sup.notified(sender, group, &text);
        }
    }

    /// Replies, state file, log rotation: the work after every pass.
    fn after_pass(&mut self, now: Instant) {
        for pid in self.sup.take_to_watch() {
            self.watch(pid);
        }
        let replies = self.sup.take_replies();
        let force = !replies.is_empty() || self.sup.exiting;
        self.persist(now, force);
        for (conn, resp) in replies {
            self.control.reply(conn, &resp, self.poll.registry(), now);
        }
        if self.sync_due().is_some_and(|at| now >= at) {
            self.sync_state();
        }
        if self.next_log_check.is_some_and(|at| now >= at) {
            self.check_logs(now);
        }
        self.arm_driver_timers(now);
    }

    /// Writes the state file if it changed: at once when `force` (a client
    /// is about to hear something), else at most every STATE_COALESCE.
    /// Nothing a client is told is ever newer than the state file, so a new
    /// daemon can adopt whatever a client saw even if this one dies next.
    fn persist(&mut self, now: Instant, force: bool) {
        self.state_dirty |= self.sup.take_dirty();
        let due = self
            .last_state_write
            .is_none_or(|t| now >= t + STATE_COALESCE);
        if self.state_dirty && (force || due) {
            self.save_state(now);
        }
    }

    /// When the written state should be synced to disk, if it needs to be.
    fn sync_due(&self) -> Option<Instant> {
        let first = self.state_unsynced_since?;
        let quiet = self
            .last_state_write
            .map_or(first, |t| t + STATE_SYNC_QUIET);
        Some(quiet.min(first + STATE_SYNC_MAX))
    }

    /// Makes the last state write durable.
    fn sync_state(&mut self) {
        if self.state_unsynced_since.take().is_some() {
            if let Err(e) = persist::sync(&self.sys.home.state()) {
                log::warn!("cannot sync {}: {e}", self.sys.home.state().display());
            }
        }
    }

    fn save_state(&mut self, now: Instant) {
        self.state_dirty = false;
        self.last_state_write = Some(now);
        let snapshot = self.sup.snapshot(now, unix_now());
        match persist::save_state(&self.sys.home.state(), &snapshot) {
            Ok(()) => {
                self.state_unsynced_since.get_or_insert(now);
                if self.state_write_failed {
                    log::info!("state file written again");
                }
                self.state_write_failed = false;
            }
            Err(e) => {
                if !self.state_write_failed {
                    log::error!(
                        "cannot write {}: {e}; services keep running, but a new daemon could not adopt them",
                        self.sys.home.state().display()
                    );
                }
                self.state_write_failed = true;
                // Try again in about a second (or with the next reply).
                self.state_dirty = true;
                self.last_state_write = Some(now + Duration::from_secs(1));
            }
        }
    }

    /// A service wrote its log: check the sizes a little later, and stop
    /// listening until then (one wake-up per interval, however chatty).
    fn on_log_writes(&mut self, now: Instant) {
        if let Some(watch) = &mut self.log_writes {
            watch.disarm();
        }
        if self.next_log_check.is_none() {
            self.next_log_check = Some(now + LOG_CHECK_DELAY);
        }
    }

    /// Rotates the logs that outgrew their limit, then listens for writes again.
    fn check_logs(&mut self, now: Instant) {
        for (name, max, keep) in self.sup.log_limits() {
            let path = self.sys.home.service_log(&name);
            match logfile::rotate_if_needed(&path, max, keep) {
                Ok(true) => log::info!("{name}: rotated {}", path.display()),
                Ok(false) => {}
                Err(e) => log::warn!("{name}: cannot rotate {}: {e}", path.display()),
            }
        }
        self.next_log_check = match &mut self.log_writes {
            Some(watch) => {
                watch.arm();
                None
            }
            None => Some(now + LOG_CHECK_DELAY),
        };
    }

    fn on_adopted_exit(&mut self, token: usize) {
        if let Some((pid, watch)) = self.watches.remove(&token) {
            if let Watch::Pidfd(fd) = &watch {
                let _ = self
                    .poll
                    .registry()
                    .deregister(&mut SourceFd(&fd.as_raw_fd()));
            }
            log::info!("adopted process {pid} exited");
            self.sup.child_exited(pid, ExitKind::Unknown);
        }
    }

    fn check_polled_watches(&mut self) {
        let dead: Vec<usize> = self
            .watches
            .iter()
            .filter(|(_, (pid, w))| match w {
                Watch::Polled(start) => !procfs::same_process(pid.as_raw(), *start),
                Watch::Pidfd(_) => false,
            })
            .map(|(t, _)| *t)
            .collect();
        for token in dead {
            self.on_adopted_exit(token);
        }
    }

    fn on_signals(&mut self) {
        for sig in self.signals.pending() {
            match sig {
                SIGTERM | SIGINT => {
                    log::info!("got signal {sig}: stopping every service, then exiting");
                    if !self.sup.exiting {
                        self.sup.kill(None);
                    }
                }
                SIGHUP => {
                    log::info!("got SIGHUP: reloading {}", self.sup.service_dir().display());
                    match self.reload() {
                        Ok(report) => log::info!("reload: {report:?}"),
                        Err(e) => log::warn!("reload: {e}; nothing changed"),
                    }
                }
                _ => {} // SIGCHLD: reaping follows every wake-up.
            }
        }
    }

    fn on_request(&mut self, conn: usize, frame: RequestFrame, now: Instant) {
        log::debug!("client {conn}: {:?}", frame.request);
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
            Request::DaemonStatus => Some(Response::Daemon(self.daemon_info(now))),
            Request::Reload => Some(match self.reload() {
                Ok(report) => Response::Reloaded(report),
                Err(e) => Response::error(
                    format!("{e}; nothing changed"),
                    Some("restore the directory, or `diakonos kill` and start a daemon with another --service-dir"),
                ),
            }),
            Request::HandOver => Some(self.hand_over(now)),
            Request::Enable(names) => Some(self.set_enabled(&names, true)),
            Request::Disable(names) => Some(self.set_enabled(&names, false)),
            req => self.sup.request(Some(conn), req, now),
        };
        if let Some(resp) = resp {
            self.persist(now, true);
            self.control.reply(conn, &resp, self.poll.registry(), now);
        }
    }

    /// SPEC §17: writes (and syncs) the state for a successor and says
    /// bye; the loop then ends at once, leaving every service running.
    fn hand_over(&mut self, now: Instant) -> Response {
        if self.sup.exiting || self.sup.is_killing() {
            return Response::error(
                "the daemon is stopping every service and exiting",
                Some("wait for it to finish, then run the command again"),
            );
        }
        let path = self.sys.home.state();
        let snapshot = self.sup.snapshot(now, unix_now());
        match persist::save_state(&path, &snapshot).and_then(|()| persist::sync(&path)) {
            Ok(()) => {
                log::info!(
                    "handing over {} service(s) to a new daemon",
                    snapshot.services.len()
                );
                self.sup.take_dirty();
                self.state_dirty = false;
                self.state_unsynced_since = None;
                self.handed_over = true;
                Response::Bye
            }
            Err(e) => Response::error(
                format!(
                    "cannot write {}: {e}; the daemon keeps running",
                    path.display()
                ),
                Some("check the free space and permissions of the home directory, then retry"),
            ),
        }
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

    fn reload(&mut self) -> Result<ReloadReport, String> {
        let dir = self.sup.service_dir().to_path_buf();
        let loaded = unit::load_dir(&dir, &hostname())
            .map_err(|e| format!("cannot read the service directory {}: {e}", dir.display()))?;
        // Programs may have been installed or moved: find them afresh.
        self.sys.spawn_cache.forget_programs();
        let report = self.sup.reload(loaded);
        for w in &self.sup.warnings {
            log::warn!("{w}");
        }
        Ok(report)
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
            rss_bytes: rss_bytes().unwrap_or(0),
            protocol: self.control.version(),
        }
    }
}

/// An inotify watch on the logs directory that is armed only while no size
/// check is pending.
struct LogWatch {
    inotify: Inotify,
    dir: std::path::PathBuf,
    watch: Option<WatchDescriptor>,
}

impl LogWatch {
    fn new(dir: &std::path::Path, registry: &mio::Registry) -> io::Result<LogWatch> {
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

    /// Stops listening and drains what was already reported.
    fn disarm(&mut self) {
        if let Some(wd) = self.watch.take() {
            let _ = self.inotify.rm_watch(wd);
        }
        while let Ok(events) = self.inotify.read_events() {
            if events.is_empty() {
                break;
            }
        }
    }
}

/// The notify socket: datagrams with the sender's credentials attached.
fn bind_notify(path: &std::path::Path) -> io::Result<UnixDatagram> {
    let _ = std::fs::remove_file(path);
    let sock = UnixDatagram::bind(path)?;
    setsockopt(&sock, PassCred, &true).map_err(io::Error::from)?;
    Ok(sock)
}

pub fn hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_default()
}

/// The daemon's resident set size, from /proc/self/status.
fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
