//! The daemon's one loop and the only caller of `poll()`: poll, route
//! readiness to the driver that owns the token, feed the supervisor,
//! drain. The clock is read once per pass; the poll timeout is the head of
//! the one timer queue ([`TimerKey`]), whose expired keys go to their
//! owners. Daemon-level requests are in `requests.rs`.

use std::io;
use std::time::{Duration, Instant};

use mio::{Events, Poll, Token};

use crate::daemon::control::{self, Control, Incoming};
use crate::daemon::driver::children::{self, Children};
use crate::daemon::driver::logs::{self, Logs};
use crate::daemon::driver::notify::{self, Notify};
use crate::daemon::driver::probes::Probes;
use crate::daemon::driver::state::StateWriter;
use crate::daemon::persist;
use crate::daemon::spawn;
use crate::daemon::supervisor::{Effect, Input, Supervisor};
use crate::daemon::system::{self, RealSys};
use crate::daemon::timers::TimerKey;
use crate::paths::Home;

/// After an accept failed for lack of descriptors, it is retried this often.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);

pub struct EventLoop {
    pub(super) poll: Poll,
    children: Children,
    notify: Notify,
    probes: Probes,
    logs: Logs,
    pub(super) state: StateWriter,
    pub(super) control: Control,
    pub(super) sup: Supervisor,
    pub(super) sys: RealSys,
    pub(super) started: Instant,
    /// A hand-over was answered: the loop ends without touching a service.
    pub(super) handed_over: bool,
}

impl EventLoop {
    pub fn new(control: Control, sup: Supervisor, home: Home) -> io::Result<EventLoop> {
        let poll = Poll::new()?;
        let children = Children::new(poll.registry())?;
        let mut control = control;
        poll.registry().register(
            control.listener(),
            control::LISTENER,
            mio::Interest::READABLE,
        )?;
        let now = Instant::now();
        Ok(EventLoop {
            children,
            notify: Notify::new(&home.notify_socket(), poll.registry()),
            logs: Logs::new(home.clone(), poll.registry(), now),
            probes: Probes::default(),
            state: StateWriter::new(home.state()),
            poll,
            control,
            sup,
            sys: RealSys::new(home),
            started: now,
            handed_over: false,
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
        for pid in adopted {
            self.children
                .watch(pid, self.poll.registry(), &mut self.sup, now);
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
            if self.sup.exiting && self.control.all_flushed() {
                self.state.sync();
                // Every service is stopped: nobody will send to a root
                // daemon's notify socket in /run again.
                let notify = self.sys.home.notify_socket();
                if notify.starts_with(crate::paths::NOTIFY_RUN_DIR) {
                    let _ = std::fs::remove_file(notify);
                }
                return Ok(());
            }
            // Round up so we never wake a hair early and spin.
            let timeout = self
                .sup
                .poll_timeout()
                .map(|d| d.saturating_duration_since(Instant::now()) + Duration::from_micros(100));
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
                    control::LISTENER => self.control.accept_all(registry, now),
                    notify::NOTIFY => self.notify.on_ready(&mut self.sup, now),
                    logs::LOG_WRITES => self.logs.on_ready(now),
                    t if Probes::owns(t) => self.probes.on_ready(t, &mut self.sup, registry, now),
                    t if Children::owns(t) => {
                        if self.children.on_ready(t, &mut self.sup, now) {
                            self.on_reload_signal();
                        }
                    }
                    Token(t) => {
                        let readable = ev.is_readable() || ev.is_read_closed() || ev.is_error();
                        match self
                            .control
                            .on_ready(t, readable, ev.is_writable(), registry)
                        {
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
                                self.control.reject(conn, &err, registry, now)
                            }
                            None => {}
                        }
                    }
                }
            }
            self.children
                .collect(self.poll.registry(), &mut self.sup, now);
            if self.control.accept_blocked {
                self.control.accept_all(self.poll.registry(), now);
            }
            self.arm_driver_timers(now);
            self.sup.handle(Input::Tick, now);
            self.route_due();
            self.sup.run(now, &mut self.sys);
            self.route_due();
            self.after_pass(now);
        }
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
                    Effect::Reply(conn, resp) => self.control.reply(conn, &resp, registry, now),
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
                }
            }
            // What came back (a main pid found) is worked through at once.
            if !fed {
                break;
            }
            self.sup.run(now, &mut self.sys);
        }
        self.state.sync_if_due(now);
        self.logs.check_if_due(now, &self.sup);
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
        timers.set(TimerKey::LogCheck, self.logs.deadline());
        timers.set(TimerKey::StateWrite, self.state.write_due(now));
        timers.set(TimerKey::StateSync, self.state.sync_due());
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

    fn on_reload_signal(&mut self) {
        log::info!("got SIGHUP: reloading {}", self.sup.service_dir().display());
        match self.reload() {
            Ok(report) => log::info!("reload: {report:?}"),
            Err(e) => log::warn!("reload: {e}; nothing changed"),
        }
    }
}
