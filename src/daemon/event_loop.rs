//! The daemon's one loop: a single `mio::Poll` over the control socket, its
//! clients and the signal pipe, sleeping until the nearest timer. The only
//! caller of `poll()`. Each pass reads the clock once, turns what happened
//! into supervisor inputs, lets the supervisor drain its queue, and sends
//! the replies that are ready.

use std::io;
use std::time::{Duration, Instant};

use mio::{Events, Interest, Poll, Token};
use nix::sys::signal::Signal;
use nix::unistd::Pid;
use signal_hook::consts::{SIGCHLD, SIGHUP, SIGINT, SIGTERM};
use signal_hook_mio::v1_0::Signals;

use crate::daemon::control::{Control, Incoming};
use crate::daemon::spawn::{self, SpawnSpec};
use crate::daemon::supervisor::{Role, Supervisor, Sys};
use crate::paths::Home;
use crate::protocol::{DaemonInfo, Request, RequestFrame, Response};
use crate::unit::Unit;

const LISTENER: Token = Token(0);
const SIGNALS: Token = Token(1);

/// The real operating system behind [`Sys`].
pub struct RealSys {
    pub home: Home,
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
        spawn::spawn(&SpawnSpec {
            argv,
            cwd: &unit.working_directory,
            env: &unit.environment,
            user: unit.user.as_deref(),
            log: &self.home.service_log(&unit.name),
            extra_env: &[],
        })
    }

    fn kill_group(&mut self, pgid: Pid, signal: Signal) {
        spawn::kill_group(pgid, signal);
    }

    fn group_alive(&mut self, pgid: Pid) -> bool {
        spawn::group_alive(pgid)
    }
}

pub struct EventLoop {
    pub poll: Poll,
    pub signals: Signals,
    pub control: Control,
    pub sup: Supervisor,
    pub sys: RealSys,
    pub started: Instant,
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
        Ok(EventLoop {
            poll,
            signals,
            control,
            sup,
            sys: RealSys { home },
            started: Instant::now(),
        })
    }

    /// Runs until a kill (request or signal) has stopped every service.
    pub fn run(&mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(256);
        // Whatever start-up queued (enabled units, adoption) runs first.
        self.sup.run(Instant::now(), &mut self.sys);
        loop {
            if self.sup.exiting && self.control.all_flushed() {
                return Ok(());
            }
            let timeout = self
                .sup
                .next_deadline()
                .map(|d| d.saturating_duration_since(Instant::now()))
                // Round up so we never wake a hair early and spin.
                .map(|d| d + Duration::from_micros(100));
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            let now = Instant::now();
            for ev in events.iter() {
                match ev.token() {
                    LISTENER => self.control.accept_all(self.poll.registry()),
                    SIGNALS => self.on_signals(),
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
                                self.on_request(conn, frame, now)
                            }
                            Some(Incoming::Bad(conn, err)) => {
                                self.control.reject(conn, &err, self.poll.registry())
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
            self.sup.timers_expired(now);
            self.sup.run(now, &mut self.sys);
            self.send_replies();
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
                    log::info!("got SIGHUP: reloading {}", self.sup.service_dir.display());
                    self.reload();
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
                    Some("omit --service-dir to use the daemon's, or use another --home for a second daemon"),
                );
                self.control.reply(conn, &resp, self.poll.registry());
                return;
            }
        }
        let resp = match frame.request {
            Request::DaemonStatus => Some(Response::Daemon(self.daemon_info(now))),
            Request::Reload => Some(Response::Reloaded(self.reload())),
            req => self.sup.request(Some(conn), req, now),
        };
        if let Some(resp) = resp {
            self.control.reply(conn, &resp, self.poll.registry());
        }
    }

    fn reload(&mut self) -> crate::protocol::ReloadReport {
        crate::protocol::ReloadReport::default()
    }

    fn send_replies(&mut self) {
        for (conn, resp) in self.sup.take_replies() {
            self.control.reply(conn, &resp, self.poll.registry());
        }
    }

    fn daemon_info(&self, now: Instant) -> DaemonInfo {
        DaemonInfo {
            pid: std::process::id(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            uptime_secs: now.saturating_duration_since(self.started).as_secs(),
            home: self.sys.home.dir.clone(),
            service_dir: self.sup.service_dir().to_path_buf(),
            units: self.sup.counts(),
            rss_bytes: rss_bytes().unwrap_or(0),
        }
    }
}

/// The daemon's resident set size, from /proc/self/status.
fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
