//! One service's state machine (SPEC §4, §6): states, events, and the actions
//! a transition asks the event loop to carry out.
//!
//! PURE: it never reads the clock (time comes in as `now`), spawns, signals or
//! does I/O. Deadlines live inside the states; the supervisor arms the one
//! timer queue from [`Service::timer`] (the deadline and what it is for).
//! Every state change happens in [`Service::on_event`], adoption and counter
//! resets included; the table below is complete: a pair it does not list
//! is a bug (a warning in daemon.log, and a `debug_assert!`). Which *other* services hear about a change is
//! decided by the supervisor with `graph`; what a change does is decided here.
//!
//! | state                | event               | next state                          | actions                  |
//! |----------------------|---------------------|-------------------------------------|--------------------------|
//! | inactive/exited/failed | Start             | waiting (limits and the start-limit window reset) |            |
//! | restarting           | Start               | waiting (backoff cancelled)         |                          |
//! | waiting, starting, running, stopping | Start | unchanged; want up, over an earlier Stop or DepFailed (after a stop: waiting once it ends) |       |
//! | waiting              | DepsReady           | starting (spawn in flight)          | Spawn                    |
//! | waiting              | DepsReady, limit hit| failed "start limit hit"            |                          |
//! | waiting, restarting  | DepFailed(x)        | failed "dependency x failed"        |                          |
//! | waiting, restarting  | DepInvalid(x)       | failed "dependency x is invalid"    |                          |
//! | waiting, restarting  | Stop                | inactive                            |                          |
//! | starting (no pid)    | Spawned(pid)        | simple: running; others: starting   |                          |
//! | starting (no pid)    | SpawnFailed(e)      | failed "spawn failed: e"; short of descriptors, processes or memory: restarting per Restart (as a failed run) |  |
//! | starting, running (pid) | ExecFailed(e)    | as SpawnFailed(e), last exit 127 (up since its clone, it could not exec after all) |  |
//! | stopping (main)      | ExecFailed(e)       | as Exited(127): its exit is no one's, the main process is gone |  |
//! | starting (no pid)    | CannotStart(r)      | failed r (the unit cannot work as written) |                   |
//! | starting (oneshot)   | Exited(0)           | exited, or running w/ RemainAfterExit |                        |
//! | starting (forking)   | Exited(0)           | starting (finding the main pid); the main process's exit (awaiting its probe): as any exit | FindMainPid |
//! | starting (forking)   | MainPid(Ok/Err)     | running (with a Readiness probe that has not passed: starting, pid = main) / failed "cannot find the main process"; found after TimeoutStartSec: stopping, then restart/failed (start timeout) | |
//! | starting (notify)    | Ready               | running; with a Readiness probe that has not passed: unchanged, waits for it |  |
//! | starting (other types) | Ready             | unchanged (a READY=1 nobody waits for) |                       |
//! | starting (pid)       | ProbePassed         | simple, or its own readiness met (READY=1, main pid): running; else unchanged, noted |  |
//! | starting, running (pid) | StoppingItself   | unchanged; want down (sd_notify STOPPING=1: the exit that follows is not restarted) | |
//! | starting, running (pid) | MainPidChanged(p) | unchanged; p is the main process (sd_notify MAINPID=, checked by the supervisor) | |
//! | running (no pid)     | KeptGroup(g)        | unchanged; g is its group (what a RemainAfterExit oneshot left running outside its own: its stop signals it, the supervisor keeps the old group too) | |
//! | starting (deadline), stopping | ExtendTimeout(d) | unchanged; deadline at least now + d (sd_notify EXTEND_TIMEOUT_USEC) | |
//! | running (pid)        | WatchdogTimeout     | stopping (signal phase: WatchdogSignal is its signal, SIGKILL after TimeoutStopSec; no ExecStop), then restart per policy / failed "watchdog timeout" | KillGroup(WatchdogSignal) |
//! | running (pid)        | Unhealthy(r, stop)  | stopping, then restart per policy (counts as a failure) / failed r | SpawnStop or KillGroup |
//! | starting (notify)    | Exited(0)           | restarting (policy) / failed "exited before it sent READY=1" | KillGroup |
//! | starting (simple, Readiness probe) | Exited(0) | restarting (policy) / failed "exited with code 0" | KillGroup(SIGKILL) |
//! | starting, running    | Exited(bad)         | restarting (policy) / failed; failed "start limit hit" at once when the start limit will refuse the restart | KillGroup(SIGKILL) |
//! | running              | Exited(0)           | restarting (Restart=always) / exited| KillGroup(SIGKILL)       |
//! | running              | DeadWithLeftovers(g)| stopping (kill phase), then restarting (policy) / failed | KillGroup(g, SIGKILL) |
//! | starting (pid, deadline) | Timer (start timeout)| stopping, then restart/failed  | KillGroup(KillSignal)    |
//! | running (with pid)   | MemoryExceeded      | stopping, then restart/failed "memory limit: RSS X > Y" | SpawnStop or KillGroup |
//! | any other            | MemoryExceeded      | unchanged (a late verdict of the memory watch) |               |
//! | restarting           | Timer               | starting (or failed: start limit)   | Spawn                    |
//! | starting (pid), running | Stop / DepFailed(x) | stopping (a RemainAfterExit oneshot's too: GroupGone ends it once what it left outside its group is gone) | SpawnStop or KillGroup (KillSignal, then SIGCONT) |
//! | exited, failed, inactive | Stop            | inactive                            |                          |
//! | stopping             | StopCmdExited       | stopping (signal phase)             | KillGroup(KillSignal)    |
//! | stopping             | Timer (ExecStop)    | stopping (signal phase)             | KillGroup(KillSignal)    |
//! | stopping             | Timer (signal)      | stopping (kill phase)               | KillGroup(SIGKILL)       |
//! | stopping             | Stop                | stopping; a pending policy failure becomes inactive (want down) |  |
//! | stopping             | Timer (kill phase)  | failed "processes survived SIGKILL" (never inactive while any may live) | |
//! | stopping             | Exited / GroupGone  | once main, ExecStop and group are gone: inactive, failed, restarting, or waiting if started meanwhile | |
//! | inactive              | Adopt(pid, pgid, since, restarts, starting) | running, or starting when it was (a new daemon took it over; dead: Exited follows) | |
//! | inactive             | AdoptRestarting(until, restarts, failures) | restarting (a new daemon took over its wait) | |
//! | inactive             | AdoptEnded(r, stopped, exit, restarts) | failed r / inactive / exited (as an earlier daemon left it) |  |
//! | any                  | ResetCounters       | unchanged; restart count, failures and start window cleared |  |
//! | starting, running (pid) | AdoptStopping(phase, deadline) | stopping in that phase until that deadline (a new daemon took over the stop; nothing sent again) | |
//! | any                  | AdoptHistory(exit, reason, starts) | unchanged; last exit, start window (and, restarting, why) as the previous daemon had them |  |
//! | stopping             | StopCmdSpawned(pid) | stopping, ExecStop's pid known      |                          |
//! | any (late or twice)  | Timer not due / Exited / StopCmdExited / GroupGone / DepsReady / Ready / ProbePassed / StoppingItself / WatchdogTimeout / ExtendTimeout / Unhealthy / MainPidChanged / KeptGroup / ExecFailed | unchanged (logged at debug level) | |
//! | starting (no pid)    | Stop                | unchanged; want down: stopping (inactive) once Spawned / MainPid comes | |
//! | starting (no pid)    | DepFailed(x)        | unchanged; want down: stopping (failed "dependency x failed") once Spawned / MainPid comes | |
//! | inactive, exited, failed, stopping | DepFailed(x) | unchanged (down, or going down) | |
//! | any but waiting, restarting | DepInvalid(x) | unchanged (a late verdict of the start gate) |            |
//! | any pair not listed  | any                 | unchanged, with a warning in daemon.log and a `debug_assert!` |  |
//!
//! Every failed attempt (an exit the policy judges a failure, a start
//! timeout, a notify service ending before READY=1) adds one to
//! `failed_attempts`, and every scheduled restart records why in
//! `restart_reason`: a start job fails at the first failed attempt while the
//! restart policy carries on, and `status` says why a unit is restarting.

use std::time::{Duration, Instant};

use std::sync::Arc;

use nix::sys::signal::Signal;
use nix::unistd::Pid;

use crate::daemon::spawn::SpawnError;
use crate::daemon::timers::ServiceTimer;
use crate::unit::{RestartPolicy, ServiceType};

mod attempts;
mod stop;
mod types;
pub use types::*;

#[derive(Debug, Clone)]
pub struct Service {
    pub state: State,
    pub want: Want,
    /// Shared by the services whose units set the same values (in a
    /// daemon, through the supervisor's `Policies`): a pointer in each
    /// service, not 64 bytes.
    pub policy: Arc<Policy>,
    /// Automatic restarts since the last explicit start/restart.
    pub restarts: u32,
    pub last_exit: Option<ExitKind>,
    /// The process group of the last spawn, while it may have members.
    pub pgid: Option<Pid>,
    /// Failed attempts over the service's life (never reset): a job notes
    /// the count when it starts and fails when it grows.
    pub failed_attempts: u64,
    /// Why the last restart was scheduled (shown while `restarting`).
    /// (Boxed: 24 bytes less in every service, most of which never restart.)
    pub restart_reason: Option<Box<Reason>>,
    /// A required dependency failed while this service's spawn (or its main
    /// process's search) was under way: the stop that follows that news
    /// ends `failed` with this reason.
    dep_failed: Option<Box<Reason>>,
    /// Consecutive failures, for the exponential backoff.
    failures: u32,
    /// Start times inside the current StartLimitIntervalSec window.
    /// (A `Vec`: at most StartLimitBurst long, and 8 bytes smaller than
    /// a `VecDeque` in every service.)
    starts: Vec<Instant>,
    /// xorshift state for backoff jitter (seeded by the caller; never 0).
    rng: u64,
    /// This run's probe has passed (Readiness): reset at each spawn.
    probe_passed: bool,
    /// This run met its type's readiness (READY=1, main pid found) and
    /// waits, `starting`, for its first passing probe.
    awaits_probe: bool,
}

impl Service {
    /// The starts inside the current StartLimitIntervalSec window.
    pub fn start_window(&self) -> &[Instant] {
        &self.starts
    }

    pub fn new(policy: impl Into<Arc<Policy>>, seed: u64) -> Service {
        let policy = policy.into();
        // The start-limit history is allocated here, at load, for its
        // whole burst (at most 8): allocated at the first start, in a
        // burst of starts, each landed between the spawns' temporaries and
        // kept their freed pages resident (~110 KiB at 1000 units).
        let burst = policy.start_limit_burst.min(8) as usize;
        Service {
            state: State::Inactive,
            want: Want::Down,
            policy,
            restarts: 0,
            last_exit: None,
            pgid: None,
            failed_attempts: 0,
            restart_reason: None,
            dep_failed: None,
            failures: 0,
            starts: Vec::with_capacity(burst),
            rng: seed | 1,
            probe_passed: false,
            awaits_probe: false,
        }
    }

    /// The pid of the main process, if one is alive.
    pub fn pid(&self) -> Option<Pid> {
        match self.state {
            State::Starting { pid, .. } | State::Running { pid, .. } => pid,
            State::Stopping { main, .. } => main,
            _ => None,
        }
    }

    /// Failures in a row (for the backoff of the next restart).
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// The ExecStop process, if one is running.
    #[cfg(test)]
    pub fn stop_cmd(&self) -> Option<Pid> {
        match self.state {
            State::Stopping { stop_cmd, .. } => stop_cmd,
            _ => None,
        }
    }

    /// When the current state wants a Timer event.
    pub fn deadline(&self) -> Option<Instant> {
        match self.state {
            State::Starting { deadline, .. } => deadline,
            State::Stopping { deadline, .. } => Some(deadline),
            State::Restarting { until } => Some(until),
            _ => None,
        }
    }

    /// The current state's deadline and what it is for (its timer key).
    pub fn timer(&self) -> Option<(ServiceTimer, Instant)> {
        let kind = match self.state {
            // With no process to stop (a spawn in flight, or a forking
            // unit's main process still being looked for) the start
            // timeout is checked when that news comes; a timer due now
            // that changed nothing would fire again at once, for ever.
            State::Starting { pid: None, .. } => return None,
            State::Starting { .. } => ServiceTimer::StartTimeout,
            State::Stopping { .. } => ServiceTimer::Stop,
            State::Restarting { .. } => ServiceTimer::Restart,
            _ => return None,
        };
        self.deadline().map(|at| (kind, at))
    }

    /// Main process and ExecStop are gone but the group may not be: the
    /// supervisor checks the group and sends GroupGone.
    pub fn awaiting_group(&self) -> bool {
        matches!(
            self.state,
            State::Stopping {
                main: None,
                stop_cmd: None,
                ..
            }
        )
    }

    pub fn uptime(&self, now: Instant) -> Option<Duration> {
        match self.state {
            State::Running { since, .. } => Some(now.saturating_duration_since(since)),
            _ => None,
        }
    }

    /// The one place where the state changes. `self.state` is assigned once.
    pub fn on_event(&mut self, ev: Event, now: Instant) -> Vec<Action> {
        let mut actions = Vec::new();
        let next = match (&self.state, ev) {
            // --- a new daemon takes over, counters -------------------------
            (
                State::Inactive,
                Event::Adopt {
                    pid,
                    pgid,
                    since,
                    restarts,
                    starting,
                },
            ) => {
                self.want = Want::Up;
                self.pgid = pgid;
                self.restarts = restarts;
                match starting {
                    Some(deadline) if pid.is_some() => State::Starting { pid, deadline },
                    _ => State::Running { pid, since },
                }
            }
            (
                State::Inactive,
                Event::AdoptRestarting {
                    until,
                    restarts,
                    failures,
                },
            ) => {
                self.want = Want::Up;
                self.restarts = restarts;
                self.failures = failures;
                State::Restarting { until }
            }
            (
                State::Inactive,
                Event::AdoptEnded {
                    failed,
                    stopped,
                    last_exit,
                    restarts,
                },
            ) => {
                self.last_exit = last_exit;
                self.restarts = restarts;
                match (failed, stopped) {
                    (Some(r), _) => State::Failed(r),
                    (None, true) => State::Inactive,
                    (None, false) => State::Exited,
                }
            }
            (_, Event::ResetCounters) => {
                self.restarts = 0;
                self.failures = 0;
                self.starts.clear();
                return actions;
            }
            (
                state,
                Event::AdoptHistory {
                    last_exit,
                    restart_reason,
                    mut starts,
                },
            ) => {
                self.last_exit = last_exit.or(self.last_exit);
                if matches!(state, State::Restarting { .. }) && restart_reason.is_some() {
                    self.restart_reason = restart_reason.map(Box::new);
                }
                let burst = self.policy.start_limit_burst as usize;
                starts.drain(..starts.len().saturating_sub(burst));
                self.starts = starts;
                return actions;
            }
            (State::Stopping { .. }, Event::StopCmdSpawned(pid)) => {
                if let State::Stopping { stop_cmd, .. } = &mut self.state {
                    *stop_cmd = Some(pid);
                }
                return actions;
            }

            // --- start requests -------------------------------------------
            (State::Inactive | State::Exited | State::Failed(_), Event::Start) => {
                self.want = Want::Up;
                self.failures = 0;
                self.starts.clear();
                State::Waiting
            }
            (State::Restarting { .. }, Event::Start) => {
                self.want = Want::Up;
                self.starts.clear();
                State::Waiting
            }
            (State::Stopping { .. }, Event::Start) => {
                // Finish the stop, then start again (see `finish_stop`).
                self.want = Want::Up;
                return actions;
            }
            (_, Event::Start) => {
                // Over whatever came before (a stop, a dependency's
                // failure during a spawn): the latest request wins.
                self.want = Want::Up;
                self.dep_failed = None;
                return actions;
            }
            (State::Waiting, Event::DepsReady) => self.begin_start(now, &mut actions),

            // --- spawning -------------------------------------------------
            (State::Starting { pid: None, .. }, Event::Spawned(pid)) => {
                self.pgid = Some(pid);
                self.probe_passed = false;
                self.awaits_probe = false;
                let started = match self.policy.kind {
                    ServiceType::Simple if !self.policy.probe_readiness => State::Running {
                        pid: Some(pid),
                        since: now,
                    },
                    // Up once it exits 0, forks off its main process, or says READY=1.
                    ServiceType::Simple
                    | ServiceType::Oneshot
                    | ServiceType::Forking
                    | ServiceType::Notify => State::Starting {
                        pid: Some(pid),
                        deadline: nonzero(self.policy.timeout_start.get()).map(|t| now + t),
                    },
                };
                if let Some(then) = self.stop_after_spawn() {
                    // A Stop or a dependency's failure arrived meanwhile.
                    self.state = started;
                    return self.begin_stop(then, now, actions);
                }
                started
            }
            // The daemon was short of descriptors, processes or memory: a
            // failed attempt that its Restart policy retries, not a unit
            // that cannot work.
            (State::Starting { pid: None, .. }, Event::SpawnFailed(e)) => self.spawn_failed(e, now),
            (
                State::Starting { pid: Some(_), .. } | State::Running { pid: Some(_), .. },
                Event::ExecFailed(e),
            ) => {
                // Its process ended with 127 (an exit no one else hears).
                self.last_exit = Some(ExitKind::Code(127));
                self.spawn_failed(e, now)
            }
            (State::Starting { pid: None, .. }, Event::CannotStart(reason)) => {
                self.dep_failed = None;
                State::Failed(reason)
            }

            // --- the main process ends -------------------------------------
            (
                State::Starting {
                    pid: Some(_),
                    deadline,
                },
                Event::Exited(kind),
            ) if self.policy.kind == ServiceType::Forking
                && kind.success()
                && !self.awaits_probe =>
            {
                // The starter forked off the real service and left.
                actions.push(Action::FindMainPid);
                State::Starting {
                    pid: None,
                    deadline: *deadline,
                }
            }
            (State::Starting { pid: Some(_), .. }, Event::Exited(kind))
                if self.policy.kind != ServiceType::Oneshot =>
            {
                self.last_exit = Some(kind);
                self.kill_leftovers(&mut actions);
                let reason = match (self.policy.kind, kind.success()) {
                    (ServiceType::Notify, true) if !self.awaits_probe => Reason::NotReady,
                    _ => Reason::Exit(kind),
                };
                self.after_failure(reason, now)
            }
            // Only a unit that waits for it: a forking or oneshot unit with a
            // WatchdogSec has a notify socket too, and its READY=1 must not
            // skip the main-pid search or the wait for the exit.
            (State::Starting { pid: Some(pid), .. }, Event::Ready)
                if self.policy.kind == ServiceType::Notify =>
            {
                if self.policy.probe_readiness && !self.probe_passed {
                    // Up once its probe passes too (SPEC §10).
                    self.awaits_probe = true;
                    return actions;
                }
                State::Running {
                    pid: Some(*pid),
                    since: now,
                }
            }
            (State::Starting { pid: Some(pid), .. }, Event::ProbePassed) => {
                self.probe_passed = true;
                if self.policy.kind != ServiceType::Simple && !self.awaits_probe {
                    // READY=1 or the main pid is still to come.
                    return actions;
                }
                State::Running {
                    pid: Some(*pid),
                    since: now,
                }
            }
            (
                State::Starting {
                    pid: None,
                    deadline,
                },
                Event::MainPid(found),
            ) => match found {
                Ok((pid, pgid)) => {
                    self.pgid = Some(pgid);
                    let timed_out = deadline.is_some_and(|d| now >= d);
                    let running = match self.policy.probe_readiness && !self.probe_passed {
                        // Up once its probe passes too (SPEC §10); an
                        // exit now is the main process's, not the starter's.
                        true => {
                            self.awaits_probe = true;
                            State::Starting {
                                pid: Some(pid),
                                deadline: *deadline,
                            }
                        }
                        false => State::Running {
                            pid: Some(pid),
                            since: now,
                        },
                    };
                    // Found after TimeoutStartSec: stopped, as a start that
                    // timed out (its timer waited for this).
                    let then = self.stop_after_spawn().or_else(|| {
                        timed_out.then(|| AfterStop::Failure(Box::new(Reason::StartTimeout)))
                    });
                    if let Some(then) = then {
                        self.state = running;
                        return self.begin_stop(then, now, actions);
                    }
                    running
                }
                Err(e) => {
                    self.kill_leftovers(&mut actions);
                    match self.dep_failed.take() {
                        Some(reason) => State::Failed(*reason),
                        None => State::Failed(Reason::NoMainPid(e)),
                    }
                }
            },
            (State::Starting { pid: Some(_), .. }, Event::Exited(kind)) => {
                self.last_exit = Some(kind);
                if kind.success() {
                    self.failures = 0;
                    if self.policy.remain_after_exit {
                        State::Running {
                            pid: None,
                            since: now,
                        }
                    } else {
                        self.kill_leftovers(&mut actions);
                        State::Exited
                    }
                } else {
                    self.kill_leftovers(&mut actions);
                    self.after_failure(Reason::Exit(kind), now)
                }
            }
            (
                State::Running {
                    pid: Some(_),
                    since,
                },
                Event::Exited(kind),
            ) => {
                let since = *since;
                self.last_exit = Some(kind);
                self.kill_leftovers(&mut actions);
                if self.policy.restart_max_delay > self.policy.restart_sec
                    && now.saturating_duration_since(since) >= self.policy.restart_max_delay.get()
                {
                    // It stayed up for the whole cap: the backoff starts over.
                    self.failures = 0;
                }
                let restart = match self.policy.restart {
                    RestartPolicy::Always => true,
                    RestartPolicy::OnFailure => !kind.success(),
                    RestartPolicy::No => false,
                };
                if !kind.success() {
                    self.failed_attempts += 1;
                }
                if restart && self.want == Want::Up {
                    self.schedule_restart(Reason::Exit(kind), now)
                } else if kind.success() {
                    self.failures = 0;
                    State::Exited
                } else {
                    State::Failed(Reason::Exit(kind))
                }
            }

            (State::Running { pid: Some(_), .. }, Event::DeadWithLeftovers(pgid)) => {
                // Its exit status is unknowable, so it counts as a failure.
                self.last_exit = Some(ExitKind::Unknown);
                self.pgid = Some(pgid);
                stop::sigkill(&mut actions, pgid);
                State::Stopping {
                    main: None,
                    stop_cmd: None,
                    phase: StopPhase::Killed,
                    deadline: now + KILL_GRACE,
                    then: AfterStop::Failure(Box::new(Reason::Exit(ExitKind::Unknown))),
                }
            }

            // --- timers ---------------------------------------------------
            (State::Restarting { until }, Event::Timer) if now >= *until => {
                let next = self.begin_start(now, &mut actions);
                if !actions.is_empty() {
                    // Only a relaunch that happens counts as a restart.
                    self.restarts = self.restarts.saturating_add(1);
                }
                next
            }
            (
                State::Starting {
                    pid: Some(_),
                    deadline: Some(d),
                },
                Event::Timer,
            ) if now >= *d => {
                return self.begin_stop(
                    AfterStop::Failure(Box::new(Reason::StartTimeout)),
                    now,
                    actions,
                );
            }

            (State::Running { pid: Some(_), .. }, Event::MemoryExceeded { rss, max }) => {
                let reason = Reason::MemoryLimit { rss, max };
                return self.begin_stop(AfterStop::Failure(Box::new(reason)), now, actions);
            }
            (state, ev @ Event::MemoryExceeded { .. }) => {
                log::debug!(
                    "ignored late {} in state {}",
                    ev.name(),
                    state.name().as_str()
                );
                return actions;
            }

            // --- stop requests and failed dependencies ---------------------
            (State::Waiting | State::Restarting { .. }, Event::Stop) => {
                self.want = Want::Down;
                State::Inactive
            }
            (State::Waiting | State::Restarting { .. }, Event::DepFailed(name)) => {
                State::Failed(Reason::DepFailed(name))
            }
            (State::Waiting | State::Restarting { .. }, Event::DepInvalid(name)) => {
                State::Failed(Reason::DepInvalid(name))
            }
            (State::Starting { pid: None, .. }, Event::Stop) => {
                // Handled when Spawned (or the main pid) arrives; an explicit
                // stop ends inactive, whatever failed meanwhile.
                self.want = Want::Down;
                self.dep_failed = None;
                return actions;
            }
            (State::Starting { pid: None, .. }, Event::DepFailed(name)) => {
                // Handled when Spawned (or the main pid) arrives.
                self.want = Want::Down;
                self.dep_failed = Some(Box::new(Reason::DepFailed(name)));
                return actions;
            }
            (State::Starting { .. } | State::Running { .. }, Event::Stop) => {
                self.want = Want::Down;
                return self.begin_stop(AfterStop::Inactive, now, actions);
            }
            (
                State::Starting { pid: Some(pid), .. } | State::Running { pid: Some(pid), .. },
                Event::AdoptStopping { phase, deadline },
            ) => {
                self.want = Want::Down;
                State::Stopping {
                    main: Some(*pid),
                    stop_cmd: None,
                    phase,
                    deadline,
                    then: AfterStop::Inactive,
                }
            }
            (
                State::Starting { pid: Some(_), .. } | State::Running { pid: Some(_), .. },
                Event::StoppingItself,
            ) => {
                self.want = Want::Down;
                return actions;
            }
            (
                State::Starting { pid: Some(_), .. } | State::Running { pid: Some(_), .. },
                Event::MainPidChanged(new),
            ) => {
                match &mut self.state {
                    State::Starting { pid, .. } | State::Running { pid, .. } => *pid = Some(new),
                    _ => {}
                }
                return actions;
            }
            (State::Running { pid: None, .. }, Event::KeptGroup(g)) => {
                self.pgid = Some(g);
                return actions;
            }
            (
                State::Starting {
                    deadline: Some(_), ..
                }
                | State::Stopping { .. },
                Event::ExtendTimeout(d),
            ) => {
                match &mut self.state {
                    State::Starting {
                        deadline: Some(at), ..
                    }
                    | State::Stopping { deadline: at, .. } => *at = (*at).max(now + d),
                    _ => {}
                }
                return actions;
            }
            (State::Running { pid: Some(_), .. }, Event::WatchdogTimeout) => {
                // As systemd does: WatchdogSignal is the stop's signal (a
                // SIGABRT handler gets TimeoutStopSec to write its dump, not
                // a KillSignal on its heels), then SIGKILL.
                let timeout = self.policy.timeout_stop.get();
                let (phase, deadline) = if timeout.is_zero() {
                    (StopPhase::Killed, now + KILL_GRACE)
                } else {
                    (StopPhase::Signalled, now + timeout)
                };
                if let Some(pgid) = self.pgid {
                    actions.push(Action::KillGroup {
                        pgid,
                        signal: self.policy.watchdog_signal,
                    });
                    if timeout.is_zero() {
                        stop::sigkill(&mut actions, pgid);
                    }
                }
                self.state = State::Stopping {
                    main: self.pid(),
                    stop_cmd: None,
                    phase,
                    deadline,
                    then: AfterStop::Failure(Box::new(Reason::Watchdog)),
                };
                return actions;
            }
            (State::Running { pid: Some(_), .. }, Event::Unhealthy { reason, stop }) => {
                let then = if stop {
                    self.want = Want::Down;
                    AfterStop::Failed(Box::new(reason))
                } else {
                    AfterStop::Failure(Box::new(reason))
                };
                return self.begin_stop(then, now, actions);
            }
            (State::Starting { pid: Some(_), .. } | State::Running { .. }, Event::DepFailed(n)) => {
                let reason = Box::new(Reason::DepFailed(n));
                return self.begin_stop(AfterStop::Failed(reason), now, actions);
            }
            (State::Failed(_) | State::Exited, Event::Stop) => {
                self.want = Want::Down;
                State::Inactive
            }
            (State::Stopping { .. } | State::Inactive, Event::Stop) => {
                self.want = Want::Down;
                // An explicit stop overrides a pending judgement of the
                // restart policy (a start timeout, leftovers of a dead main
                // being killed): the stop ends `inactive`, as every stop does.
                if let State::Stopping { then, .. } = &mut self.state {
                    if matches!(then, AfterStop::Failure(_)) {
                        *then = AfterStop::Inactive;
                    }
                }
                return actions;
            }

            // --- stop escalation ------------------------------------------
            (
                State::Stopping { .. },
                ev @ (Event::Exited(_) | Event::StopCmdExited(_) | Event::GroupGone | Event::Timer),
            ) => {
                return self.stopping(ev, now, actions);
            }
            // The main process's exec failed before the stop was heard: it
            // exits with 127, an exit that is no one's (the supervisor let
            // go of its pid with this news); that is the main process gone.
            (State::Stopping { main: Some(_), .. }, Event::ExecFailed(_)) => {
                return self.stopping(Event::Exited(ExitKind::Code(127)), now, actions);
            }

            // --- legal no-ops: news that came late or twice ----------------
            (
                state,
                ev @ (Event::Timer
                | Event::Exited(_)
                | Event::StopCmdExited(_)
                | Event::GroupGone
                | Event::DepsReady
                | Event::Ready
                | Event::ProbePassed
                | Event::StoppingItself
                | Event::WatchdogTimeout
                | Event::ExtendTimeout(_)
                | Event::Unhealthy { .. }
                | Event::MainPidChanged(_)
                | Event::KeptGroup(_)
                | Event::ExecFailed(_)),
            ) => {
                log::debug!(
                    "ignored late or repeated {} in state {}",
                    ev.name(),
                    state.name().as_str()
                );
                return actions;
            }
            (
                state @ (State::Inactive
                | State::Exited
                | State::Failed(_)
                | State::Stopping { .. }),
                ev @ Event::DepFailed(_),
            )
            | (state, ev @ Event::DepInvalid(_)) => {
                log::debug!(
                    "ignored late {} in state {}",
                    ev.name(),
                    state.name().as_str()
                );
                return actions;
            }

            (state, ev) => {
                let (ev, state) = (ev.name(), state.name().as_str());
                log::warn!(
                    "BUG: event {ev} in state {state} is not in the transition table; ignored"
                );
                debug_assert!(false, "event {ev} in state {state} is not in the table");
                return actions;
            }
        };
        self.state = next;
        actions
    }
}

fn nonzero(d: Duration) -> Option<Duration> {
    (!d.is_zero()).then_some(d)
}

#[cfg(test)]
mod tests;
