//! The daemon's one loop (its other waits are a container's last sweep,
//! after it, and the execs `driver/mod.rs` lists, each as long as the
//! kernel's exec): poll, route
//! readiness to the driver that owns the token, feed the supervisor,
//! drain. The clock is read once per pass; the poll timeout is the head of
//! the one timer queue ([`TimerKey`]), whose expired keys go to their
//! owners. Around it: start-up and container mode (`startup.rs`), the
//! drain of effects after each pass (`drain.rs`), requests about the
//! daemon itself (`requests.rs`).

use std::io;
use std::time::{Duration, Instant};

use mio::{Events, Poll, Token};

use crate::daemon::control::{self, Control, Incoming};
use crate::daemon::driver::activation::{self, UnitTimers};
use crate::daemon::driver::children::Children;
use crate::daemon::driver::execs::Execs;
use crate::daemon::driver::listeners::Listeners;
use crate::daemon::driver::logs::{self, Logs};
use crate::daemon::driver::metrics::MetricsWriter;
use crate::daemon::driver::notify::{self, Notify};
use crate::daemon::driver::probes::Probes;
use crate::daemon::driver::state::StateWriter;
use crate::daemon::driver::unitfiles::{self, UnitFiles};
use crate::daemon::driver::watches::{self, Watches};
use crate::daemon::handed::Handed;
use crate::daemon::spawn;
use crate::daemon::supervisor::{Input, Supervisor};
use crate::daemon::system::{self, RealSys};
use crate::daemon::timers::TimerKey;
use crate::paths::Home;
use crate::protocol::Request;

/// After an accept failed for lack of descriptors, it is retried this often.
pub(super) const ACCEPT_RETRY: Duration = Duration::from_millis(100);
/// Services held for the client of their answer wait at most this long
/// for it to hang up.
pub(super) const CLIENT_GONE_MAX: Duration = Duration::from_millis(50);

pub struct EventLoop {
    pub(super) poll: Poll,
    pub(super) children: Children,
    pub(super) notify: Notify,
    pub(super) probes: Probes,
    pub(super) logs: Logs,
    pub(super) unit_files: UnitFiles,
    pub(super) watches: Watches,
    pub(super) state: StateWriter,
    pub(super) metrics: MetricsWriter,
    pub(super) control: Control,
    pub(super) sup: Supervisor,
    pub(super) sys: RealSys,
    pub(super) started: Instant,
    /// More services cloned for one answer than this (the CPUs this daemon
    /// may run on) start up once its client has gone.
    pub(super) gate_width: usize,
    pub(super) unit_timers: UnitTimers,
    /// A hand-over was answered: the loop ends without touching a service.
    pub(super) handed_over: bool,
    /// A hand-over asked for while a oneshot or forking start was under
    /// way: the clients asking, answered once none is (or at the deadline).
    pub(super) handover_waiting: Vec<usize>,
    /// Container mode: the exit policy, and the exit code once decided.
    pub(super) init: Option<(crate::daemon::InitOptions, Option<u8>)>,
    /// The lock file's descriptor: a hand-over passes it on (`daemon::handed`).
    pub(super) lock_fd: Option<std::os::fd::RawFd>,
    /// A large job ended in this pass: its code pages go at its end.
    pub(super) forget_code: bool,
}

impl EventLoop {
    pub fn new(
        control: Control,
        sup: Supervisor,
        home: Home,
        metrics_file: Option<std::path::PathBuf>,
        handed: &mut Handed,
    ) -> io::Result<EventLoop> {
        let poll = Poll::new()?;
        let children = Children::new(poll.registry())?;
        let mut control = control;
        poll.registry().register(
            control.listener(),
            control::LISTENER,
            mio::Interest::READABLE,
        )?;
        let now = Instant::now();
        let sys = RealSys::new(home.clone(), Some(poll.registry().try_clone()?));
        Ok(EventLoop {
            children,
            notify: Notify::new(&home.notify_socket(), poll.registry(), handed),
            logs: Logs::new(home.clone(), poll.registry(), now),
            unit_files: UnitFiles::new(sup.service_dir(), poll.registry()),
            watches: Watches::default(),
            probes: Probes::default(),
            state: StateWriter::new(home.state()),
            metrics: MetricsWriter::new(metrics_file),
            poll,
            control,
            sup,
            sys,
            started: now,
            gate_width: crate::procfs::cpus(),
            unit_timers: UnitTimers::new(now),
            handed_over: false,
            handover_waiting: Vec::new(),
            init: None,
            lock_fd: None,
            forget_code: false,
        })
    }

    /// Runs until a kill (request or signal) has stopped every service, or
    /// a hand-over left them all to a successor.
    pub fn run(&mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(256);
        // Services cloned in a pass exec once it ends (spawn/child.rs).
        spawn::hold_children();
        // Whatever start-up queued (adoption, enabled units) runs first.
        let now = Instant::now();
        self.sup.run(now, &mut self.sys);
        self.after_pass(now);
        system::forget_code_pages();
        loop {
            self.check_exit_policy(Instant::now());
            if self.sup.exiting && self.control.all_flushed() {
                self.finish();
                return Ok(());
            }
            // Services cloned in the pass go on to their exec, unless many
            // were cloned for a client that has not hung up yet: its exit
            // would compete with all their start-ups (at most
            // CLIENT_GONE_MAX). Execs still under way are waited for by the
            // loop from now on (one that cannot be was waited for at once:
            // fed, and worked through in a pass that does not wait).
            // (Nothing to do, and no connection or timer looked at, when
            // no child is held: most turns of the loop.)
            if spawn::held_children() > 0 && !self.control.waiting_for_clients() {
                spawn::release_children();
                self.sup.timers().set(TimerKey::ClientGone, None);
            }
            let settled = self.sys.execs.arm();
            let none_settled = settled.is_empty();
            let now = Instant::now();
            for input in settled {
                self.sup.handle(input, now);
            }
            // Round up so we never wake a hair early and spin.
            let timeout = match none_settled {
                true => self.sup.poll_timeout().map(|d| {
                    d.saturating_duration_since(Instant::now()) + Duration::from_micros(100)
                }),
                false => Some(Duration::ZERO),
            };
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            let now = Instant::now();
            self.sup.set_wall_clock(now, system::unix_now_ms());
            for ev in events.iter() {
                let registry = self.poll.registry();
                match ev.token() {
                    control::LISTENER => {
                        // A client sends its request right after connecting:
                        // it is usually in already, so it is read now rather
                        // than after another wait.
                        for t in self.control.accept_all(registry, now) {
                            if self.on_client(t, true, false, now) {
                                return Ok(());
                            }
                        }
                    }
                    notify::NOTIFY => self.notify.on_ready(&mut self.sup, now),
                    logs::LOG_WRITES => self.logs.on_ready(now),
                    unitfiles::UNIT_FILES => self.unit_files.on_ready(&mut self.sup),
                    watches::WATCHES => self.watches.on_ready(&mut self.sup, now),
                    activation::CLOCK_SET => self.unit_timers.on_clock_set(),
                    t if Listeners::owns(t) => {
                        if let Some(name) = self.sys.listeners.on_ready(t, registry) {
                            log::info!("{name}: first connection on its socket: starting it");
                            self.sup
                                .handle(Input::Request(None, Request::Start(vec![name])), now);
                        }
                    }
                    t if Probes::owns(t) => self.probes.on_ready(t, &mut self.sup, registry, now),
                    t if Execs::owns(t) => {
                        // Worked through at once: a unit whose exec worked
                        // is up before an exit reaped later in this pass.
                        if let Some(input) = self.sys.execs.on_ready(t) {
                            self.sup.handle(input, now);
                            self.sup.run(now, &mut self.sys);
                        }
                    }
                    t if Children::owns(t) => {
                        if self.children.on_ready(t, &mut self.sup, now) {
                            self.on_reload_signal();
                        }
                    }
                    Token(t) => {
                        let readable = ev.is_readable() || ev.is_read_closed() || ev.is_error();
                        if self.on_client(t, readable, ev.is_writable(), now) {
                            return Ok(());
                        }
                    }
                }
            }
            self.children
                .collect(self.poll.registry(), &mut self.sup, &mut self.sys, now);
            if self.control.accept_blocked {
                for t in self.control.accept_all(self.poll.registry(), now) {
                    if self.on_client(t, true, false, now) {
                        return Ok(());
                    }
                }
            }
            self.arm_driver_timers(now);
            self.sup.handle(Input::Tick, now);
            self.route_due();
            self.sup.run(now, &mut self.sys);
            self.route_due();
            self.after_pass(now);
            if !self.handover_waiting.is_empty() && self.hand_over_if_ready(now) {
                return Ok(());
            }
        }
    }

    /// Readiness of a client's connection: reads its request and feeds it
    /// to the supervisor, or refuses it. True when the request handed the
    /// services over to another daemon, which ends this one.
    fn on_client(&mut self, token: usize, readable: bool, writable: bool, now: Instant) -> bool {
        let registry = self.poll.registry();
        match self.control.on_ready(token, readable, writable, registry) {
            Some(Incoming::Request(conn, frame)) => {
                self.on_request(conn, frame, now);
                if self.handed_over {
                    // Nothing more may happen to a service: the state file
                    // says how things are.
                    log::info!("handed over: exiting, every service left running");
                    return true;
                }
            }
            Some(Incoming::Bad(conn, err)) => self.control.reject(conn, &err, registry, now),
            None => {}
        }
        false
    }

    fn on_reload_signal(&mut self) {
        log::info!("got SIGHUP: reloading {}", self.sup.service_dir().display());
        match self.reload() {
            Ok(report) => log::info!("reload: {}", report.summary()),
            Err(e) => log::warn!("reload: {e}; nothing changed"),
        }
    }
}
