//! The daemon's one loop and the only caller of `poll()`: poll, route
//! readiness to the driver that owns the token, feed the supervisor,
//! drain. The clock is read once per pass; the poll timeout is the head of
//! the one timer queue ([`TimerKey`]), whose expired keys go to their
//! owners. Daemon-level requests are in `requests.rs`.

use std::io;
use std::time::{Duration, Instant};

use mio::{Events, Poll, Token};

use crate::daemon::control::{self, Control, Incoming};
use crate::daemon::driver::activation::{self, UnitTimers};
use crate::daemon::driver::children::{self, Children};
use crate::daemon::driver::execs::Execs;
use crate::daemon::driver::listeners::Listeners;
use crate::daemon::driver::logs::{self, Logs};
use crate::daemon::driver::metrics::MetricsWriter;
use crate::daemon::driver::notify::{self, Notify};
use crate::daemon::driver::probes::Probes;
use crate::daemon::driver::state::StateWriter;
use crate::daemon::driver::unitfiles::{self, UnitFiles};
use crate::daemon::driver::watches::{self, Watches};
use crate::daemon::persist;
use crate::daemon::spawn;
use crate::daemon::supervisor::{Effect, Input, Supervisor};
use crate::daemon::system::{self, RealSys};
use crate::daemon::timers::TimerKey;
use crate::paths::Home;
use crate::protocol::Request;

/// After an accept failed for lack of descriptors, it is retried this often.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);

pub struct EventLoop {
    pub(super) poll: Poll,
    children: Children,
    notify: Notify,
    probes: Probes,
    logs: Logs,
    unit_files: UnitFiles,
    watches: Watches,
    pub(super) state: StateWriter,
    metrics: MetricsWriter,
    pub(super) control: Control,
    pub(super) sup: Supervisor,
    pub(super) sys: RealSys,
    pub(super) started: Instant,
    pub(super) unit_timers: UnitTimers,
    /// A hand-over was answered: the loop ends without touching a service.
    pub(super) handed_over: bool,
    /// Container mode: the exit policy, and the exit code once decided.
    init: Option<(crate::daemon::InitOptions, Option<u8>)>,
}

impl EventLoop {
    pub fn new(
        control: Control,
        sup: Supervisor,
        home: Home,
        metrics_file: Option<std::path::PathBuf>,
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
            notify: Notify::new(&home.notify_socket(), poll.registry()),
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
            unit_timers: UnitTimers::new(now),
            handed_over: false,
            init: None,
        })
    }

    /// Adopts what the previous daemon left (the state file) and starts the
    /// enabled units.
    pub fn restore(&mut self, saved: persist::SavedState) {
        let home = &self.sys.home;
        let enabled = persist::load_enabled(&home.enabled());
        let tagged = spawn::find_tagged(&home.dir);
        let now_unix = system::unix_now();
        let now = Instant::now();
        let adopted = self
            .sup
            .restore(saved, tagged, enabled, now, now_unix, &mut self.sys);
        for e in self.sup.entries() {
            let (Some(unit), Some(pid)) = (&e.unit, e.svc.pid()) else {
                continue;
            };
            if let Some(socket) = &unit.socket {
                if let Err(why) = self.sys.listeners.reclaim(&unit.name, socket, pid.as_raw()) {
                    log::warn!(
                        "{}: cannot take its sockets back ({why}); its next start binds them again",
                        unit.name
                    );
                }
            }
        }
        for pid in adopted {
            self.children
                .watch(pid, self.poll.registry(), &mut self.sup, now);
        }
    }

    /// Container mode (SPEC §14): starts the named units (the enabled ones
    /// were started by `restore`), runs until the exit policy or a signal
    /// stopped everything, and returns the exit code.
    pub fn run_init(&mut self, init: crate::daemon::InitOptions) -> io::Result<u8> {
        let mut names = init.units.clone();
        names.extend(init.exit_with.clone());
        for name in &names {
            if !self.sup.knows(name) {
                return Err(io::Error::other(format!(
                    "no unit named `{name}` in {}",
                    self.sup.service_dir().display()
                )));
            }
        }
        if !names.is_empty() {
            let start = crate::protocol::Request::Start(names);
            self.sup.handle(Input::Request(None, start), Instant::now());
        }
        self.init = Some((init, None));
        self.run()?;
        Ok(self.init.as_ref().and_then(|(_, code)| *code).unwrap_or(0))
    }

    /// Container mode: once the exit policy says so, stop everything (in
    /// reverse dependency order) with the code to exit with.
    fn check_exit_policy(&mut self, now: Instant) {
        let Some((init, code)) = &mut self.init else {
            return;
        };
        if code.is_some() || self.sup.exiting {
            return;
        }
        let decided = match &init.exit_with {
            Some(unit) => self.sup.ended_with(unit),
            None if init.never => None,
            None => self.sup.all_done(),
        };
        if let Some(exit) = decided {
            log::info!("exit policy met: stopping every service, then exiting with {exit}");
            *code = Some(exit);
            self.sup.handle(Input::Terminate, now);
            self.sup.run(now, &mut self.sys);
            self.after_pass(now);
        }
    }

    /// Runs until a kill (request or signal) has stopped every service, or
    /// a hand-over left them all to a successor.
    pub fn run(&mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(256);
        // Whatever start-up queued (adoption, enabled units) runs first.
        let now = Instant::now();
        self.sup.run(now, &mut self.sys);
        self.after_pass(now);
        loop {
            self.check_exit_policy(Instant::now());
            if self.sup.exiting && self.control.all_flushed() {
                self.state.sync();
                self.metrics
                    .update(Instant::now(), true, &self.sup, &self.unit_timers);
                // Every service is stopped: nobody will send to a root
                // daemon's notify socket in /run again.
                let notify = self.sys.home.notify_socket();
                if notify.starts_with(crate::paths::NOTIFY_RUN_DIR) {
                    let _ = std::fs::remove_file(notify);
                }
                return Ok(());
            }
            // Execs still under way are waited for by the loop from now on
            // (one that cannot be was waited for at once: fed, and worked
            // through in a pass that does not wait).
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

    /// Carries out the supervisor's effects, each by the driver of its kind
    /// (replies after the state file they may depend on), feeding back what
    /// answers come at once, then the state sync and the log check.
    fn after_pass(&mut self, now: Instant) {
        loop {
            let force = self.sup.replies_pending() || self.sup.exiting;
            self.state.persist(now, force, &mut self.sup);
            let mut fed = false;
            while let Some(effect) = self.sup.poll_effect() {
                let registry = self.poll.registry();
                match effect {
                    Effect::Signal { pgid, signal } => spawn::kill_group(pgid, signal),
                    Effect::Watch(pid) => self.children.watch(pid, registry, &mut self.sup, now),
                    Effect::Reply(conn, mut resp) => {
                        if let crate::protocol::Response::Status(s) = &mut resp {
                            // The timer driver knows the schedule's next run.
                            s.timer = self.unit_timers.row(&self.sup, &s.info.name, now);
                        }
                        self.control.reply(conn, &resp, registry, now)
                    }
                    Effect::LogIdle {
                        name,
                        max_bytes,
                        max_files,
                    } => self.logs.rotate_idle(&name, max_bytes, max_files),
                    Effect::Probe {
                        id,
                        gen,
                        probe,
                        expect,
                    } => {
                        if let Some(input) = self.probes.start(id, gen, &probe, expect, registry) {
                            self.sup.handle(input, now);
                            fed = true;
                        }
                    }
                    Effect::ProbeCancel { id } => self.probes.cancel(id, registry),
                    Effect::StateChanged(rec) => {
                        self.control.broadcast(&rec, registry, now);
                        self.sup.events_wanted = self.control.has_subscribers();
                    }
                    scan @ Effect::ScanMainPid { .. } => {
                        if let Some(input) = system::look_for_main_pid(scan, now) {
                            self.sup.handle(input, now);
                            fed = true;
                        }
                    }
                    Effect::WatchLeftovers { id, groups } => {
                        self.children
                            .watch_leftovers(id, &groups, registry, &mut self.sup, now);
                        fed = true;
                    }
                    scan @ Effect::ScanStrays { .. } => {
                        if let Some(input) = system::look_for_strays(scan, &self.sys.home.dir) {
                            self.sup.handle(input, now);
                            fed = true;
                        }
                    }
                }
            }
            // Exec outcomes read at once (past the cap on awaited execs).
            for input in self.sys.execs.take_done() {
                self.sup.handle(input, now);
                fed = true;
            }
            // What came back (a main pid found) is worked through at once.
            if !fed {
                break;
            }
            self.sup.run(now, &mut self.sys);
        }
        let sup = &self.sup;
        self.sys
            .listeners
            .sync_armed(self.poll.registry(), sup.armable(), |name| {
                sup.id_of(name)
                    .is_some_and(|id| sup.entries()[id].svc.state.is_active())
            });
        self.unit_timers
            .sync(&mut self.sup, self.poll.registry(), now);
        // A Persistent timer's record may have changed: a state write is due.
        self.state.persist(now, false, &mut self.sup);
        self.watches.sync(&self.sup, self.poll.registry());
        self.state.sync_if_due(now);
        self.logs.check_if_due(now, &self.sup);
        self.metrics
            .update(now, false, &self.sup, &self.unit_timers);
        self.arm_driver_timers(now);
    }

    /// Sets the deadlines of the drivers' keys in the one timer queue from
    /// what each driver is waiting for.
    fn arm_driver_timers(&mut self, now: Instant) {
        let timers = self.sup.timers();
        for (conn, at) in self.control.take_deadlines() {
            timers.set(TimerKey::Conn(conn), at);
        }
        if self.control.accept_blocked {
            timers.arm_if_idle(TimerKey::AcceptRetry, now + ACCEPT_RETRY);
        } else {
            timers.set(TimerKey::AcceptRetry, None);
        }
        if self.children.polling() {
            timers.arm_if_idle(TimerKey::AdoptedRecheck, now + children::ADOPTED_RECHECK);
        } else {
            timers.set(TimerKey::AdoptedRecheck, None);
        }
        timers.set(TimerKey::ExitsHeld, self.children.held_deadline());
        timers.set(TimerKey::LogCheck, self.logs.deadline());
        timers.set(TimerKey::StateWrite, self.state.write_due(now));
        timers.set(TimerKey::StateSync, self.state.sync_due());
        let metrics = self.metrics.deadline(&self.sup);
        self.sup.timers().set(TimerKey::MetricsWrite, metrics);
    }

    /// Routes the expired keys of drivers. Only a connection's needs its
    /// own handling; the others wake the loop, and the checks after every
    /// pass (accept, adopted processes, state, logs) see that they are due.
    fn route_due(&mut self) {
        let now = Instant::now();
        for key in self.sup.take_due() {
            match key {
                TimerKey::Conn(conn) => self.control.timed_out(conn, self.poll.registry()),
                TimerKey::WatchDebounce(id) => {
                    if let Some(req) = self.watches.due(id, &self.sup) {
                        self.sup.handle(Input::Request(None, req), now);
                    }
                }
                TimerKey::Activation(id) => {
                    if let Some(req) = self.unit_timers.fire(id, &mut self.sup, now) {
                        self.sup.handle(Input::Request(None, req), now);
                    }
                }
                _ => {}
            }
        }
    }

    fn on_reload_signal(&mut self) {
        log::info!("got SIGHUP: reloading {}", self.sup.service_dir().display());
        match self.reload() {
            Ok(report) => log::info!("reload: {report:?}"),
            Err(e) => log::warn!("reload: {e}; nothing changed"),
        }
    }
}
