//! Children and adopted processes: the signal pipe (SIGCHLD; SIGTERM,
//! SIGINT and SIGHUP come the same way), reaping, and a pidfd per adopted
//! process (or a start-time check, on a timer, where pidfds are missing).
//! Every exit becomes a `child_exited` input of the supervisor, after the
//! outcome of its exec if that was still awaited ([`Execs`](super::execs::Execs), in
//! [`RealSys`]), worked through before the exit.

use crate::hash::HashMap;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};
use nix::unistd::Pid;
use signal_hook::consts::{SIGCHLD, SIGHUP, SIGINT, SIGTERM};
use signal_hook_mio::v1_0::Signals;

use crate::daemon::service::ExitKind;
use crate::daemon::spawn;
use crate::daemon::supervisor::{Input, Supervisor};
use crate::daemon::system::RealSys;
use crate::graph::ServiceId;
use crate::procfs;

pub const SIGNALS: Token = Token(1);
/// Tokens of pidfds (adopted processes) start here, far above client tokens.
pub const FIRST_PIDFD_TOKEN: usize = 1 << 40;
/// Exits are held at most this long while execs are under way.
pub const EXITS_HELD_MAX: Duration = Duration::from_millis(50);
/// Without pidfds (kernels before 5.3), adopted processes are checked this often.
pub const ADOPTED_RECHECK: Duration = Duration::from_secs(1);

/// How one adopted process is watched.
enum Watch {
    Pidfd(OwnedFd),
    /// No pidfd support: identified by start time, checked on a timer.
    Polled(u64),
}

pub struct Children {
    signals: Signals,
    /// Adopted processes by token.
    watches: HashMap<usize, (Pid, Watch)>,
    next_watch: usize,
    /// Leftovers of stopping services (not our children) by token: pid,
    /// service, pidfd.
    leftovers: HashMap<usize, (Pid, ServiceId, OwnedFd)>,
    /// Pidfds that became readable in this pass.
    exited: Vec<usize>,
    /// A SIGCHLD came since the last reaping (reaping scans every child of
    /// the daemon in the kernel: with 1000 services that was a third of
    /// the CPU of a `list`, so it runs only when something may have ended).
    reap_due: bool,
    /// Reaped exits not yet handed over (execs were under way), oldest first.
    held: Vec<(Pid, ExitKind)>,
    held_since: Option<Instant>,
}

impl Children {
    pub fn new(registry: &Registry) -> io::Result<Children> {
        let mut signals = Signals::new([SIGCHLD, SIGTERM, SIGINT, SIGHUP])?;
        registry.register(&mut signals, SIGNALS, Interest::READABLE)?;
        Ok(Children {
            signals,
            watches: HashMap::default(),
            next_watch: FIRST_PIDFD_TOKEN,
            leftovers: HashMap::default(),
            exited: Vec::new(),
            // Children may have ended before the signal pipe existed.
            reap_due: true,
            held: Vec::new(),
            held_since: None,
        })
    }

    /// Whether `token` is one of ours.
    pub fn owns(token: Token) -> bool {
        token == SIGNALS || token.0 >= FIRST_PIDFD_TOKEN
    }

    /// Readiness of one of our tokens. SIGTERM and SIGINT stop every
    /// service; returns whether SIGHUP asked for a reload.
    pub fn on_ready(&mut self, token: Token, sup: &mut Supervisor, now: Instant) -> bool {
        if token != SIGNALS {
            self.exited.push(token.0);
            return false;
        }
        let mut reload = false;
        for sig in self.signals.pending() {
            match sig {
                SIGTERM | SIGINT => {
                    log::info!("got signal {sig}: stopping every service, then exiting");
                    sup.handle(Input::Terminate, now);
                }
                SIGHUP => reload = true,
                _ => self.reap_due = true, // SIGCHLD: `collect` reaps.
            }
        }
        reload
    }

    /// After every wake-up: reap when a SIGCHLD came (one can stand for
    /// many exits: reap until none is left), or when an adopted process
    /// ended (it may be our child, whose SIGCHLD is still on its way: its
    /// real exit status beats "unknown"); then the adopted processes that
    /// ended. A SIGCHLD that comes after the flag is cleared wakes the
    /// loop again, so no exit waits.
    pub fn collect(
        &mut self,
        registry: &Registry,
        sup: &mut Supervisor,
        sys: &mut RealSys,
        now: Instant,
    ) {
        if self.reap_due || !self.exited.is_empty() || self.polling() {
            self.reap_due = false;
            for (pid, kind) in spawn::reap_all() {
                // Whether it ran at all comes before how it ended (below).
                sys.execs.finish(pid);
                // An Exec probe's words are its result.
                if let Some(unit) = sup.probe_of(pid) {
                    let said = crate::daemon::system::probe_output(&sys.home, &unit.name);
                    if let Some(text) = said {
                        sup.handle(Input::ProbeOutput(pid, text), now);
                    }
                }
                self.held.push((pid, kind));
                self.held_since.get_or_insert(now);
            }
        }
        // Exec outcomes (of the reaped, and those read meanwhile: a spawn
        // settles older execs) are worked through before any exit: a unit
        // whose exec worked is up (a start job waiting for it is answered)
        // before it ends, and an exit must not overtake why its exec failed.
        loop {
            let settled = sys.execs.take_done();
            if settled.is_empty() {
                break;
            }
            for input in settled {
                sup.handle(input, now);
            }
            sup.run(now, sys);
        }
        // Exits wait while execs are under way (at most EXITS_HELD_MAX):
        // a start of many units is answered once all of them run, as when
        // each spawn waited for its exec, not failed by one that exited
        // right after its exec while another was still exec'ing.
        let waited = self
            .held_since
            .is_some_and(|since| now >= since + EXITS_HELD_MAX);
        if sys.execs.is_empty() || waited {
            self.held_since = None;
            for (pid, kind) in std::mem::take(&mut self.held) {
                sup.handle(Input::ChildExited(pid, kind), now);
            }
        }
        // After reaping: a watched process that is also our child has
        // been reported with its real exit status already.
        for token in std::mem::take(&mut self.exited) {
            self.adopted_exit(token, registry, sup, now);
        }
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
            self.adopted_exit(token, registry, sup, now);
        }
    }

    /// When held exits must be handed over at the latest (the
    /// `ExitsHeld` key).
    pub fn held_deadline(&self) -> Option<Instant> {
        self.held_since.map(|since| since + EXITS_HELD_MAX)
    }

    /// Whether some adopted process is checked on a timer (no pidfd).
    pub fn polling(&self) -> bool {
        self.watches
            .values()
            .any(|(_, w)| matches!(w, Watch::Polled(_)))
    }

    /// Watches a process that may not be our child for its exit.
    pub fn watch(&mut self, pid: Pid, registry: &Registry, sup: &mut Supervisor, now: Instant) {
        let token = self.next_watch;
        self.next_watch += 1;
        let watch = match spawn::pidfd_open(pid) {
            Ok(fd) => {
                let fd_raw = fd.as_raw_fd();
                match registry.register(&mut SourceFd(&fd_raw), Token(token), Interest::READABLE) {
                    Ok(()) => Watch::Pidfd(fd),
                    Err(e) => {
                        log::warn!(
                            "cannot watch adopted process {pid}: {e}; checking it every second"
                        );
                        polled_watch(pid)
                    }
                }
            }
            Err(e) if e.raw_os_error() == Some(nix::libc::ESRCH) => {
                // Already gone between the check and now.
                sup.handle(Input::ChildExited(pid, ExitKind::Unknown), now);
                return;
            }
            Err(e) => {
                log::info!("no pidfd for adopted process {pid} ({e}); checking it every second");
                polled_watch(pid)
            }
        };
        self.watches.insert(token, (pid, watch));
    }

    /// Carries out `Effect::WatchLeftovers`: one look through `/proc` for
    /// the members of `groups`; each that is not our child (its end sends
    /// no SIGCHLD) gets a pidfd. Incomplete (the supervisor rechecks on a
    /// timer) when one cannot (no pidfd support), or when no member is found
    /// at all (it may have just ended); a zombie of another parent makes
    /// the supervisor look again after a recheck. (Out of line: kept out of
    /// the code every daemon runs, the layout's first part.)
    #[inline(never)]
    pub fn watch_leftovers(
        &mut self,
        id: ServiceId,
        groups: &[Pid],
        registry: &Registry,
        sup: &mut Supervisor,
        now: Instant,
    ) {
        let me = std::process::id() as i32;
        let mut complete = true;
        let mut zombies = false;
        let mut members = 0;
        let mut ended = false;
        for p in procfs::all_processes() {
            if !groups.contains(&Pid::from_raw(p.pgrp)) {
                continue;
            }
            members += 1;
            if p.ppid == me {
                continue; // Our child: SIGCHLD tells us.
            }
            if p.zombie {
                zombies = true; // Its parent has yet to reap it.
                continue;
            }
            let pid = Pid::from_raw(p.pid);
            if self.leftovers.values().any(|(q, _, _)| *q == pid) {
                continue;
            }
            let token = self.next_watch;
            match spawn::pidfd_open(pid) {
                Ok(fd) => {
                    let raw = fd.as_raw_fd();
                    if registry
                        .register(&mut SourceFd(&raw), Token(token), Interest::READABLE)
                        .is_ok()
                    {
                        self.next_watch += 1;
                        self.leftovers.insert(token, (pid, id, fd));
                    } else {
                        complete = false;
                    }
                }
                // Ended since the look: look again.
                Err(e) if e.raw_os_error() == Some(nix::libc::ESRCH) => ended = true,
                Err(_) => complete = false,
            }
        }
        log::debug!(
            "leftovers of {} group(s): {members} member(s), {} watched by pidfd, complete {complete}, zombies {zombies}",
            groups.len(),
            self.leftovers.len()
        );
        sup.handle(
            Input::LeftoversWatched {
                id,
                complete: complete && members > 0,
                zombies,
            },
            now,
        );
        if ended {
            sup.handle(Input::LeftoverExited(id), now);
        }
    }

    fn adopted_exit(
        &mut self,
        token: usize,
        registry: &Registry,
        sup: &mut Supervisor,
        now: Instant,
    ) {
        if let Some((pid, id, fd)) = self.leftovers.remove(&token) {
            let _ = registry.deregister(&mut SourceFd(&fd.as_raw_fd()));
            log::debug!("leftover process {pid} exited");
            sup.handle(Input::LeftoverExited(id), now);
        }
        if let Some((pid, watch)) = self.watches.remove(&token) {
            if let Watch::Pidfd(fd) = &watch {
                let _ = registry.deregister(&mut SourceFd(&fd.as_raw_fd()));
            }
            log::info!("adopted process {pid} exited");
            sup.handle(Input::ChildExited(pid, ExitKind::Unknown), now);
        }
    }
}

fn polled_watch(pid: Pid) -> Watch {
    Watch::Polled(procfs::start_time(pid.as_raw()).unwrap_or(0))
}
