//! The drain at the end of every pass of the event loop: each effect the
//! supervisor handed out goes to the driver of its kind (signals to
//! `spawn`, replies and events to `control`, probes, pid watches, scans),
//! answers that come at once are fed back, and then the drivers that act
//! after a pass (state writer, logs, timers, watches, listeners, metrics)
//! catch up and put their deadlines into the one timer queue. Also the
//! routing of the drivers' expired timer keys (`route_due`).

use std::time::{Duration, Instant};

use crate::daemon::driver::children;
use crate::daemon::event_loop::{EventLoop, ACCEPT_RETRY, CLIENT_GONE_MAX};
use crate::daemon::spawn;
use crate::daemon::supervisor::{Effect, Input};
use crate::daemon::system;
use crate::daemon::timers::TimerKey;

/// A job of at least this many units is followed by
/// [`system::forget_code_pages`]: the start, stop and restart paths a
/// thousand units ran (~0.2 MiB of code) no longer count in the daemon's
/// RSS once done, and the loop's own code is back after a few faults.
const LARGE_JOB: usize = 64;

/// How long after its last answer to a client the daemon drops the pages
/// of the code it ran for them (`status`, `metrics`, `list --json`... each
/// brought some back for good: up to ~0.7 MiB at 1000 units). One wake-up
/// after a burst of commands, none while nothing asks.
const TRIM_AFTER: Duration = Duration::from_secs(2);

impl EventLoop {
    /// Carries out the supervisor's effects, each by the driver of its kind
    /// (replies after the state file they may depend on), feeding back what
    /// answers come at once, then the state sync and the log check.
    pub(super) fn after_pass(&mut self, now: Instant) {
        loop {
            let force = self.sup.replies_pending() || self.sup.exiting;
            self.state.persist(now, force, &mut self.sup);
            let mut fed = false;
            while let Some(effect) = self.sup.poll_effect() {
                let registry = self.poll.registry();
                match effect {
                    Effect::Signal { pgid, signal } => {
                        let leader_under_way = self.sys.execs.under_way(pgid);
                        spawn::kill_group(pgid, signal, leader_under_way)
                    }
                    Effect::Watch(pid) => self.children.watch(pid, registry, &mut self.sup, now),
                    Effect::Reply(conn, mut resp) => {
                        self.sup
                            .timers()
                            .set(TimerKey::Trim, Some(now + TRIM_AFTER));
                        if let crate::protocol::Response::Job(results) = &resp {
                            // A start, stop or restart of many units ran
                            // code that now idles (see the end of the pass).
                            self.forget_code |= results.len() >= LARGE_JOB;
                        }
                        if let crate::protocol::Response::Status(s) = &mut resp {
                            // The timer driver knows the schedule's next run.
                            s.timer = self.unit_timers.row(&self.sup, &s.info.name, now);
                        }
                        if spawn::held_children() > self.gate_width {
                            // Many services cloned for this answer: they
                            // start up once its client has gone (its exit
                            // would otherwise compete with all of them).
                            self.control.reply_and_wait(conn, &resp, registry, now);
                            self.sup
                                .timers()
                                .arm_if_idle(TimerKey::ClientGone, now + CLIENT_GONE_MAX);
                        } else {
                            self.control.reply(conn, &resp, registry, now);
                        }
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
                        self.control.broadcast(&rec, now);
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
                    Effect::ScanStrays { units, .. } => {
                        // What is known now: a pass since the look was
                        // asked may have started processes (a restart).
                        let scan = self.sup.stray_look_now(units);
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
        self.sys.listeners.sync_armed(
            self.poll.registry(),
            sup.armable(),
            |name| {
                sup.id_of(name)
                    .is_some_and(|id| sup.entries()[id].svc.state.is_active())
            },
            |name| {
                sup.id_of(name)
                    .and_then(|id| sup.entries()[id].unit.as_ref())
                    .is_some_and(|u| u.socket.is_some())
            },
        );
        self.unit_timers
            .sync(&mut self.sup, self.poll.registry(), now);
        // A Persistent timer's record may have changed: a state write is due.
        self.state.persist(now, false, &mut self.sup);
        self.watches.sync(&self.sup, self.poll.registry());
        self.state.sync_if_due(now);
        self.logs.check_if_due(now, &self.sup);
        self.metrics
            .update(now, false, &self.sup, &self.unit_timers);
        self.control.send_events(self.poll.registry(), now);
        self.arm_driver_timers(now);
        if std::mem::take(&mut self.forget_code) {
            system::forget_code_pages();
        }
    }

    /// Sets the deadlines of the drivers' keys in the one timer queue from
    /// what each driver is waiting for.
    pub(super) fn arm_driver_timers(&mut self, now: Instant) {
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
    pub(super) fn route_due(&mut self) {
        let now = Instant::now();
        for key in self.sup.take_due() {
            match key {
                TimerKey::Conn(conn) => self.control.timed_out(conn, self.poll.registry(), now),
                TimerKey::ClientGone => self.control.end_waits(self.poll.registry()),
                TimerKey::Trim => system::forget_code_pages(),
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
}
