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
//! | inactive/exited/failed | Start             | waiting (limits reset)              |                          |
//! | restarting           | Start               | waiting (backoff cancelled)         |                          |
//! | waiting              | DepsReady           | starting (spawn in flight)          | Spawn                    |
//! | waiting              | DepsReady, limit hit| failed "start limit hit"            |                          |
//! | waiting, restarting  | DepFailed(x)        | failed "dependency x failed"        |                          |
//! | waiting, restarting  | Stop                | inactive                            |                          |
//! | starting (no pid)    | Spawned(pid)        | simple: running; others: starting   |                          |
//! | starting (no pid)    | SpawnFailed(e)      | failed "spawn failed: e"            |                          |
//! | starting (no pid)    | CannotStart(r)      | failed r (the unit cannot work as written) |                   |
//! | starting (oneshot)   | Exited(0)           | exited, or running w/ RemainAfterExit |                        |
//! | starting (forking)   | Exited(0)           | starting (finding the main pid)     | FindMainPid              |
//! | starting (forking)   | MainPid(Ok/Err)     | running / failed "cannot find the main process" |            |
//! | starting (notify)    | Ready               | running                             |                          |
//! | starting (simple, Readiness probe) | Ready  | running (first passing probe)       |                          |
//! | starting, running (pid) | StoppingItself   | unchanged; want down (sd_notify STOPPING=1: the exit that follows is not restarted) | |
//! | starting, running (pid) | MainPidChanged(p) | unchanged; p is the main process (sd_notify MAINPID=, checked by the supervisor) | |
//! | starting (deadline), stopping | ExtendTimeout(d) | unchanged; deadline at least now + d (sd_notify EXTEND_TIMEOUT_USEC) | |
//! | running (pid)        | WatchdogTimeout     | stopping (WatchdogSignal, then the normal escalation), then restart per policy / failed "watchdog timeout" | KillGroup(WatchdogSignal), SpawnStop or KillGroup |
//! | running (pid)        | Unhealthy(r, stop)  | stopping, then restart per policy (counts as a failure) / failed r | SpawnStop or KillGroup |
//! | starting (notify)    | Exited(0)           | restarting (policy) / failed "exited before it sent READY=1" | KillGroup |
//! | starting, running    | Exited(bad)         | restarting (policy) / failed        | KillGroup(SIGKILL)       |
//! | running              | Exited(0)           | restarting (Restart=always) / exited| KillGroup(SIGKILL)       |
//! | running (adopted)    | DeadWithLeftovers(g)| stopping (kill phase), then restarting (policy) / failed | KillGroup(g, SIGKILL) |
//! | starting (oneshot)   | Timer (start timeout)| stopping, then restart/failed      | KillGroup(KillSignal)    |
//! | running (with pid)   | MemoryExceeded      | stopping, then restart/failed "memory limit: RSS X > Y" | SpawnStop or KillGroup |
//! | any other            | MemoryExceeded      | unchanged (a late verdict of the memory watch) |               |
//! | restarting           | Timer               | starting (or failed: start limit)   | Spawn                    |
//! | starting, running    | Stop / DepFailed(x) | stopping                            | SpawnStop or KillGroup (KillSignal, then SIGCONT) |
//! | stopping             | StopCmdExited       | stopping (signal phase)             | KillGroup(KillSignal)    |
//! | stopping             | Timer (ExecStop)    | stopping (signal phase)             | KillGroup(KillSignal)    |
//! | stopping             | Timer (signal)      | stopping (kill phase)               | KillGroup(SIGKILL)       |
//! | stopping             | Stop                | stopping; a pending policy failure becomes inactive (want down) |  |
//! | stopping             | Timer (kill phase)  | failed "processes survived SIGKILL" (never inactive while any may live) | |
//! | stopping             | Exited / GroupGone  | once main, ExecStop and group are gone: inactive, failed, restarting, or waiting if started meanwhile | |
//! | inactive              | Adopt(pid, pgid, since, restarts) | running (a new daemon took it over; dead: Exited follows) | |
//! | any                  | ResetCounters       | unchanged; restart count, failures and start window cleared |  |
//! | stopping             | StopCmdSpawned(pid) | stopping, ExecStop's pid known      |                          |
//! | any (late or twice)  | Timer not due / Exited / StopCmdExited / GroupGone / DepsReady / Ready / StoppingItself / WatchdogTimeout / ExtendTimeout / Unhealthy / MainPidChanged | unchanged (logged at debug level) | |
//! | inactive, exited, failed, stopping, starting (no pid) | DepFailed(x) | unchanged (down, going down, or the stop follows the spawn) | |
//! | any but waiting, restarting | DepInvalid(x) | unchanged (a late verdict of the start gate) |            |
//! | any pair not listed  | any                 | unchanged, with a warning in daemon.log and a `debug_assert!` |  |
//!
//! Every failed attempt (an exit the policy judges a failure, a start
//! timeout, a notify service ending before READY=1) adds one to
//! `failed_attempts`, and every scheduled restart records why in
//! `restart_reason`: a start job fails at the first failed attempt while the
//! restart policy carries on, and `status` says why a unit is restarting.

use std::collections::VecDeque;
use std::fmt;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use nix::unistd::Pid;

use crate::daemon::spawn::SpawnError;
use crate::daemon::timers::ServiceTimer;
use crate::protocol::{LastExit, StateName};
use crate::unit::{RestartPolicy, ServiceType, Unit};

/// After SIGKILL, how long to wait for the process group before giving up on it.
pub const KILL_GRACE: Duration = Duration::from_secs(5);

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitKind {
    Code(i32),
    Signal(Signal),
    /// An adopted process: not our child, so its status is unknowable.
    Unknown,
}

impl ExitKind {
    pub fn success(self) -> bool {
        self == ExitKind::Code(0)
    }

    pub fn to_wire(self) -> LastExit {
        match self {
            ExitKind::Code(c) => LastExit::Code(c),
            ExitKind::Signal(s) => LastExit::Signal(s.as_str().to_owned()),
            ExitKind::Unknown => LastExit::Unknown(()),
        }
    }
}

impl fmt::Display for ExitKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExitKind::Code(c) => write!(f, "exited with code {c}"),
            ExitKind::Signal(s) => write!(f, "killed by {}", s.as_str()),
            ExitKind::Unknown => write!(f, "exited (status unknown: adopted process)"),
        }
    }
}

/// Why a service is `failed`: data, worded in one place ([`fmt::Display`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    Exit(ExitKind),
    /// Boxed: it is rare, and inline it made every service's state 48
    /// bytes larger.
    SpawnFailed(Box<SpawnError>),
    DepFailed(String),
    /// A required unit does not load (or has dependency errors).
    DepInvalid(String),
    StartLimitHit,
    StartTimeout,
    /// A notify service ended before it sent READY=1.
    NotReady,
    /// A forking service's main process could not be found.
    NoMainPid(String),
    /// A stop ended with processes still there after SIGKILL (what was left).
    Survived(String),
    /// MemoryMax: the group's RSS (bytes) stayed above the limit.
    MemoryLimit {
        rss: u64,
        max: u64,
    },
    /// WatchdogSec passed without a WATCHDOG=1.
    Watchdog,
    /// FailureThreshold probes failed in a row: (count, the last result).
    Unhealthy(u32, String),
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Exit(kind) => write!(f, "{kind}"),
            Reason::SpawnFailed(e) => write!(f, "spawn failed: {e}"),
            Reason::DepFailed(name) => write!(f, "dependency {name} failed"),
            Reason::DepInvalid(name) => {
                write!(
                    f,
                    "dependency {name} is invalid (see `diakonos status {name}`)"
                )
            }
            Reason::StartLimitHit => write!(f, "start limit hit"),
            Reason::StartTimeout => write!(f, "start timed out"),
            Reason::NotReady => write!(f, "exited before it sent READY=1"),
            Reason::NoMainPid(e) => write!(f, "cannot find the main process: {e}"),
            Reason::Watchdog => write!(f, "watchdog timeout"),
            Reason::Unhealthy(n, last) => {
                write!(f, "unhealthy: {n} failed probes in a row (last: {last})")
            }
            Reason::Survived(what) => write!(
                f,
                "stop failed: {what} survived SIGKILL (stuck in the kernel?); look with `ps -eo pid,pgid,stat,cmd`"
            ),
            Reason::MemoryLimit { rss, max } => write!(
                f,
                "memory limit: RSS {} > {}",
                crate::unit::format_bytes(*rss),
                crate::unit::format_bytes(*max)
            ),
        }
    }
}

/// Where a stop is in its escalation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopPhase {
    /// ExecStop is running.
    ExecStop,
    /// KillSignal was sent to the group.
    Signalled,
    /// SIGKILL was sent to the group.
    Killed,
}

/// What a finished stop turns into (unless a Start arrived meanwhile).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AfterStop {
    Inactive,
    Failed(Reason),
    /// A failure the restart policy gets to judge (start timeout).
    Failure(Reason),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    Inactive,
    Waiting,
    /// `pid` is None while the spawn is in flight.
    Starting {
        pid: Option<Pid>,
        deadline: Option<Instant>,
    },
    /// `pid` is None for a oneshot that stays up with RemainAfterExit.
    Running {
        pid: Option<Pid>,
        since: Instant,
    },
    Stopping {
        main: Option<Pid>,
        stop_cmd: Option<Pid>,
        phase: StopPhase,
        deadline: Instant,
        then: AfterStop,
    },
    Restarting {
        until: Instant,
    },
    Exited,
    Failed(Reason),
}

impl State {
    pub fn name(&self) -> StateName {
        match self {
            State::Inactive => StateName::Inactive,
            State::Waiting => StateName::Waiting,
            State::Starting { .. } => StateName::Starting,
            State::Running { .. } => StateName::Running,
            State::Stopping { .. } => StateName::Stopping,
            State::Restarting { .. } => StateName::Restarting,
            State::Exited => StateName::Exited,
            State::Failed(_) => StateName::Failed,
        }
    }

    /// Whether the service holds or wants processes (anything but settled-down states).
    pub fn is_active(&self) -> bool {
        !matches!(self, State::Inactive | State::Exited | State::Failed(_))
    }

    /// Up for its dependents: running, or finished successfully.
    pub fn is_up(&self) -> bool {
        matches!(self, State::Running { .. } | State::Exited)
    }
}

/// What the user wants of the service; kept apart from what it is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    Up,
    Down,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Start requested (by a user or by a dependent pulling it in).
    Start,
    /// Stop requested; the supervisor sends it once dependents are down.
    Stop,
    DepsReady,
    /// A unit this one Requires failed (its name).
    DepFailed(String),
    /// A unit this one Requires cannot run: its file does not load.
    DepInvalid(String),
    Spawned(Pid),
    SpawnFailed(SpawnError),
    /// The unit cannot work as written (checked before spawning).
    CannotStart(Reason),
    /// The main process ended.
    Exited(ExitKind),
    /// The ExecStop process ended.
    StopCmdExited(ExitKind),
    /// Nothing is left of the process group, nor of processes that left
    /// it (setsid) carrying the unit's tag.
    GroupGone,
    /// A notify service sent READY=1, or a simple service gated by a
    /// Readiness probe passed its first probe.
    Ready,
    /// The service said STOPPING=1: it is going down on its own.
    StoppingItself,
    /// WatchdogSec passed without a WATCHDOG=1.
    WatchdogTimeout,
    /// EXTEND_TIMEOUT_USEC: the start or stop deadline is at least this far away.
    ExtendTimeout(Duration),
    /// sd_notify MAINPID=: this process (of the service's group) is the
    /// main process from now on.
    MainPidChanged(Pid),
    /// The health probes judged it unhealthy: stop it, then fail
    /// (`stop: true`) or let the restart policy judge it.
    Unhealthy {
        reason: Reason,
        stop: bool,
    },
    /// A forking service's main process (pid, its process group), or why it
    /// could not be found.
    MainPid(Result<(Pid, Pid), String>),
    /// The deadline of the current state passed.
    Timer,
    /// A new daemon takes the service over from the state file: running
    /// since `since`, main process `pid` (None: a RemainAfterExit oneshot
    /// that had finished), process group `pgid` (None when the pid is dead:
    /// a reused pid must never be signalled), restart count kept.
    Adopt {
        pid: Option<Pid>,
        pgid: Option<Pid>,
        since: Instant,
        restarts: u32,
    },
    /// Forget restart counters and the start-limit window (`restart`, or
    /// an explicit start after a failure).
    ResetCounters,
    /// The ExecStop process was spawned: its pid.
    StopCmdSpawned(Pid),
    /// A new daemon found the adopted main process dead, but its process
    /// group (this pgid) still has members: they are killed and waited for
    /// before the restart policy judges the death.
    DeadWithLeftovers(Pid),
    /// MemoryMax: the group's RSS (bytes) was above `max` twice in a row.
    MemoryExceeded {
        rss: u64,
        max: u64,
    },
}

/// Side effects for the event loop to carry out, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Run ExecStart in a new session; answer with Spawned or SpawnFailed.
    Spawn,
    /// Run ExecStop; its exit comes back as StopCmdExited. A failure to
    /// spawn it comes back as StopCmdExited too.
    SpawnStop,
    /// Signal a whole process group (the pgid is the pid of its leader).
    KillGroup { pgid: Pid, signal: Signal },
    /// Find a forking service's main process; answer with MainPid.
    FindMainPid,
}

/// The parts of a unit that the machine needs (copied so reload can swap them).
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    pub kind: ServiceType,
    pub restart: RestartPolicy,
    pub restart_sec: Duration,
    pub restart_max_delay: Duration,
    pub timeout_start: Duration,
    pub timeout_stop: Duration,
    pub kill_signal: Signal,
    pub has_exec_stop: bool,
    pub remain_after_exit: bool,
    pub start_limit_burst: u32,
    pub start_limit_interval: Duration,
    /// A simple service stays `starting` until its first passing probe.
    pub probe_readiness: bool,
    pub watchdog_signal: Signal,
}

impl Policy {
    /// Every value from the built unit, which took its defaults from the key
    /// table (`unit::schema`): no default is written twice.
    pub fn from_unit(unit: &Unit) -> Policy {
        Policy {
            kind: unit.kind,
            restart: unit.restart,
            restart_sec: unit.restart_sec,
            restart_max_delay: unit.restart_max_delay,
            timeout_start: unit.timeout_start,
            timeout_stop: unit.timeout_stop,
            kill_signal: unit.kill_signal,
            has_exec_stop: unit.exec_stop.is_some(),
            remain_after_exit: unit.remain_after_exit,
            start_limit_burst: unit.start_limit_burst,
            start_limit_interval: unit.start_limit_interval,
            probe_readiness: unit.kind == ServiceType::Simple
                && unit.health.as_ref().is_some_and(|h| h.readiness),
            watchdog_signal: unit.watchdog_signal,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Service {
    pub state: State,
    pub want: Want,
    pub policy: Policy,
    /// Automatic restarts since the last explicit start/restart.
    pub restarts: u32,
    pub last_exit: Option<ExitKind>,
    /// The process group of the last spawn, while it may have members.
    pub pgid: Option<Pid>,
    /// Failed attempts over the service's life (never reset): a job notes
    /// the count when it starts and fails when it grows.
    pub failed_attempts: u64,
    /// Why the last restart was scheduled (shown while `restarting`).
    pub restart_reason: Option<Reason>,
    /// Consecutive failures, for the exponential backoff.
    failures: u32,
    /// Start times inside the current StartLimitIntervalSec window.
    starts: VecDeque<Instant>,
    /// xorshift state for backoff jitter (seeded by the caller; never 0).
    rng: u64,
}

impl Service {
    pub fn new(policy: Policy, seed: u64) -> Service {
        Service {
            state: State::Inactive,
            want: Want::Down,
            policy,
            restarts: 0,
            last_exit: None,
            pgid: None,
            failed_attempts: 0,
            restart_reason: None,
            failures: 0,
            starts: VecDeque::new(),
            rng: seed | 1,
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
                },
            ) => {
                self.want = Want::Up;
                self.pgid = pgid;
                self.restarts = restarts;
                State::Running { pid, since }
            }
            (_, Event::ResetCounters) => {
                self.restarts = 0;
                self.failures = 0;
                self.starts.clear();
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
                self.want = Want::Up;
                return actions;
            }
            (State::Waiting, Event::DepsReady) => self.begin_start(now, &mut actions),

            // --- spawning -------------------------------------------------
            (State::Starting { pid: None, .. }, Event::Spawned(pid)) => {
                self.pgid = Some(pid);
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
                        deadline: nonzero(self.policy.timeout_start).map(|t| now + t),
                    },
                };
                if self.want == Want::Down {
                    // A Stop arrived while the spawn was in flight.
                    self.state = started;
                    return self.begin_stop(AfterStop::Inactive, now, actions);
                }
                started
            }
            (State::Starting { pid: None, .. }, Event::SpawnFailed(e)) => {
                State::Failed(Reason::SpawnFailed(Box::new(e)))
            }
            (State::Starting { pid: None, .. }, Event::CannotStart(reason)) => {
                State::Failed(reason)
            }

            // --- the main process ends -------------------------------------
            (
                State::Starting {
                    pid: Some(_),
                    deadline,
                },
                Event::Exited(kind),
            ) if self.policy.kind == ServiceType::Forking && kind.success() => {
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
                    (ServiceType::Notify, true) => Reason::NotReady,
                    _ => Reason::Exit(kind),
                };
                self.after_failure(reason, now)
            }
            (State::Starting { pid: Some(pid), .. }, Event::Ready) => State::Running {
                pid: Some(*pid),
                since: now,
            },
            (State::Starting { pid: None, .. }, Event::MainPid(found)) => match found {
                Ok((pid, pgid)) => {
                    self.pgid = Some(pgid);
                    let running = State::Running {
                        pid: Some(pid),
                        since: now,
                    };
                    if self.want == Want::Down {
                        self.state = running;
                        return self.begin_stop(AfterStop::Inactive, now, actions);
                    }
                    running
                }
                Err(e) => {
                    self.kill_leftovers(&mut actions);
                    State::Failed(Reason::NoMainPid(e))
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
                    && now.saturating_duration_since(since) >= self.policy.restart_max_delay
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
                actions.push(Action::KillGroup {
                    pgid,
                    signal: Signal::SIGKILL,
                });
                State::Stopping {
                    main: None,
                    stop_cmd: None,
                    phase: StopPhase::Killed,
                    deadline: now + KILL_GRACE,
                    then: AfterStop::Failure(Reason::Exit(ExitKind::Unknown)),
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
                return self.begin_stop(AfterStop::Failure(Reason::StartTimeout), now, actions);
            }

            (State::Running { pid: Some(_), .. }, Event::MemoryExceeded { rss, max }) => {
                let reason = Reason::MemoryLimit { rss, max };
                return self.begin_stop(AfterStop::Failure(reason), now, actions);
            }
            (state, ev @ Event::MemoryExceeded { .. }) => {
                log::debug!("ignored late {ev:?} in state {state:?}");
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
                // Handled when Spawned arrives.
                self.want = Want::Down;
                return actions;
            }
            (State::Starting { .. } | State::Running { .. }, Event::Stop) => {
                self.want = Want::Down;
                return self.begin_stop(AfterStop::Inactive, now, actions);
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
                if let Some(pgid) = self.pgid {
                    actions.push(Action::KillGroup {
                        pgid,
                        signal: self.policy.watchdog_signal,
                    });
                }
                return self.begin_stop(AfterStop::Failure(Reason::Watchdog), now, actions);
            }
            (State::Running { pid: Some(_), .. }, Event::Unhealthy { reason, stop }) => {
                let then = if stop {
                    self.want = Want::Down;
                    AfterStop::Failed(reason)
                } else {
                    AfterStop::Failure(reason)
                };
                return self.begin_stop(then, now, actions);
            }
            (State::Starting { pid: Some(_), .. } | State::Running { .. }, Event::DepFailed(n)) => {
                return self.begin_stop(AfterStop::Failed(Reason::DepFailed(n)), now, actions);
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

            // --- legal no-ops: news that came late or twice ----------------
            (
                state,
                ev @ (Event::Timer
                | Event::Exited(_)
                | Event::StopCmdExited(_)
                | Event::GroupGone
                | Event::DepsReady
                | Event::Ready
                | Event::StoppingItself
                | Event::WatchdogTimeout
                | Event::ExtendTimeout(_)
                | Event::Unhealthy { .. }
                | Event::MainPidChanged(_)),
            ) => {
                log::debug!("ignored late or repeated {ev:?} in state {state:?}");
                return actions;
            }
            (
                state @ (State::Inactive
                | State::Exited
                | State::Failed(_)
                | State::Stopping { .. }
                | State::Starting { pid: None, .. }),
                ev @ Event::DepFailed(_),
            )
            | (state, ev @ Event::DepInvalid(_)) => {
                log::debug!("ignored late {ev:?} in state {state:?}");
                return actions;
            }

            (state, ev) => {
                log::warn!(
                    "BUG: event {ev:?} in state {state:?} is not in the transition table; ignored"
                );
                debug_assert!(false, "event {ev:?} in state {state:?} is not in the table");
                return actions;
            }
        };
        self.state = next;
        actions
    }

    /// Spawn if the start limit allows it.
    fn begin_start(&mut self, now: Instant, actions: &mut Vec<Action>) -> State {
        let window = self.policy.start_limit_interval;
        while let Some(first) = self.starts.front() {
            if now.saturating_duration_since(*first) >= window {
                self.starts.pop_front();
            } else {
                break;
            }
        }
        let burst = self.policy.start_limit_burst as usize;
        if burst > 0 && self.starts.len() >= burst {
            return State::Failed(Reason::StartLimitHit);
        }
        if burst > 0 {
            self.starts.push_back(now);
        }
        actions.push(Action::Spawn);
        State::Starting {
            pid: None,
            deadline: None,
        }
    }

    /// Restart per policy after a failure, or fail.
    fn after_failure(&mut self, reason: Reason, now: Instant) -> State {
        self.failed_attempts += 1;
        let restart = matches!(
            self.policy.restart,
            RestartPolicy::Always | RestartPolicy::OnFailure
        );
        if restart && self.want == Want::Up {
            self.schedule_restart(reason, now)
        } else {
            State::Failed(reason)
        }
    }

    fn schedule_restart(&mut self, reason: Reason, now: Instant) -> State {
        let delay = self.backoff();
        self.failures = self.failures.saturating_add(1);
        self.restart_reason = Some(reason);
        State::Restarting { until: now + delay }
    }

    /// When a `restarting` service launches again.
    /// Starts inside the StartLimitIntervalSec window that ends at `now`
    /// (for `why`; read only, the window itself moves in `begin_start`).
    pub fn starts_in_window(&self, now: Instant) -> usize {
        let window = self.policy.start_limit_interval;
        self.starts
            .iter()
            .filter(|&&t| now.saturating_duration_since(t) < window)
            .count()
    }

    pub fn next_attempt(&self) -> Option<Instant> {
        match self.state {
            State::Restarting { until } => Some(until),
            _ => None,
        }
    }

    /// RestartSec, doubled per consecutive failure up to RestartMaxDelaySec,
    /// with up to 25% jitter below the doubled value (never below RestartSec).
    pub fn backoff(&mut self) -> Duration {
        let base = self.policy.restart_sec;
        let cap = self.policy.restart_max_delay;
        if cap <= base {
            return base;
        }
        let factor = 2f64.powi(self.failures.min(62) as i32);
        let doubled = base.as_secs_f64() * factor;
        let capped = doubled.min(cap.as_secs_f64());
        // xorshift64: deterministic for a given seed, so tests can pin it.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let unit = (self.rng >> 11) as f64 / (1u64 << 53) as f64;
        let jittered = capped * (1.0 - 0.25 * unit);
        Duration::from_secs_f64(jittered.max(base.as_secs_f64()))
    }

    fn kill_leftovers(&mut self, actions: &mut Vec<Action>) {
        if let Some(pgid) = self.pgid.take() {
            actions.push(Action::KillGroup {
                pgid,
                signal: Signal::SIGKILL,
            });
        }
    }

    fn begin_stop(
        &mut self,
        then: AfterStop,
        now: Instant,
        mut actions: Vec<Action>,
    ) -> Vec<Action> {
        let main = self.pid();
        let timeout = self.policy.timeout_stop;
        let (phase, deadline) = if self.policy.has_exec_stop {
            actions.push(Action::SpawnStop);
            (StopPhase::ExecStop, now + timeout)
        } else if timeout.is_zero() {
            // No grace at all: SIGKILL right behind KillSignal.
            self.signal_group(&mut actions);
            if let Some(pgid) = self.pgid {
                actions.push(Action::KillGroup {
                    pgid,
                    signal: Signal::SIGKILL,
                });
            }
            (StopPhase::Killed, now + KILL_GRACE)
        } else {
            self.signal_group(&mut actions);
            (StopPhase::Signalled, now + timeout)
        };
        // The ExecStop pid is filled in by `stop_cmd_spawned`.
        self.state = State::Stopping {
            main,
            stop_cmd: None,
            phase,
            deadline,
            then,
        };
        if !self.policy.has_exec_stop && main.is_none() && self.pgid.is_none() {
            // Nothing to wait for (a RemainAfterExit oneshot with no leftovers).
            self.finish_stop(now);
        }
        actions
    }

    /// Sends KillSignal to the group, if there is one, then SIGCONT (as
    /// systemd does): a stopped (SIGSTOPped, hung) process acts on the
    /// signal at once instead of holding it pending until TimeoutStopSec.
    fn signal_group(&self, actions: &mut Vec<Action>) -> Option<()> {
        let pgid = self.pgid?;
        let signal = self.policy.kill_signal;
        actions.push(Action::KillGroup { pgid, signal });
        if !matches!(signal, Signal::SIGKILL | Signal::SIGCONT) {
            actions.push(Action::KillGroup {
                pgid,
                signal: Signal::SIGCONT,
            });
        }
        Some(())
    }

    fn stopping(&mut self, ev: Event, now: Instant, mut actions: Vec<Action>) -> Vec<Action> {
        let State::Stopping {
            main,
            stop_cmd,
            phase,
            deadline,
            then,
        } = self.state.clone()
        else {
            return actions;
        };
        let (mut main, mut stop_cmd, mut phase, mut deadline) = (main, stop_cmd, phase, deadline);
        let timeout = self.policy.timeout_stop;
        match ev {
            Event::Exited(kind) => {
                self.last_exit = Some(kind);
                main = None;
            }
            Event::StopCmdExited(_) => {
                stop_cmd = None;
                if phase == StopPhase::ExecStop {
                    phase = StopPhase::Signalled;
                    deadline = now + timeout;
                    self.signal_group(&mut actions);
                }
            }
            Event::GroupGone => {
                self.pgid = None;
            }
            Event::Timer if now >= deadline => match phase {
                StopPhase::ExecStop => {
                    phase = StopPhase::Signalled;
                    deadline = now + timeout;
                    self.signal_group(&mut actions);
                    if let Some(pid) = stop_cmd {
                        actions.push(Action::KillGroup {
                            pgid: pid,
                            signal: Signal::SIGKILL,
                        });
                    }
                }
                StopPhase::Signalled => {
                    phase = StopPhase::Killed;
                    deadline = now + KILL_GRACE;
                    for pgid in [self.pgid, stop_cmd].into_iter().flatten() {
                        actions.push(Action::KillGroup {
                            pgid,
                            signal: Signal::SIGKILL,
                        });
                    }
                }
                StopPhase::Killed => {
                    // Something outlived SIGKILL (a process stuck in the
                    // kernel): stop waiting, but never call that a clean stop.
                    let what = match (main, self.pgid) {
                        (Some(pid), _) => format!("main process {pid}"),
                        (None, Some(pgid)) => format!("process group {pgid}"),
                        (None, None) => "the ExecStop process".to_owned(),
                    };
                    log::warn!("{what} survived SIGKILL; no longer waiting for it");
                    self.pgid = None;
                    self.state = State::Failed(Reason::Survived(what));
                    return actions;
                }
            },
            _ => {}
        }
        self.state = State::Stopping {
            main,
            stop_cmd,
            phase,
            deadline,
            then,
        };
        if main.is_none() && stop_cmd.is_none() && self.pgid.is_none() {
            self.finish_stop(now);
        }
        actions
    }

    fn finish_stop(&mut self, now: Instant) {
        let State::Stopping { then, .. } = &self.state else {
            return;
        };
        let then = then.clone();
        self.state = match then {
            AfterStop::Failed(r) => State::Failed(r),
            _ if self.want == Want::Up => match then {
                AfterStop::Failure(r) => self.after_failure(r, now),
                _ => State::Waiting,
            },
            AfterStop::Failure(r) => State::Failed(r),
            AfterStop::Inactive => State::Inactive,
        };
    }
}

fn nonzero(d: Duration) -> Option<Duration> {
    (!d.is_zero()).then_some(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Policy {
        Policy {
            kind: ServiceType::Simple,
            restart: RestartPolicy::OnFailure,
            restart_sec: Duration::from_secs(1),
            restart_max_delay: Duration::from_secs(1),
            timeout_start: Duration::from_secs(30),
            timeout_stop: Duration::from_secs(10),
            kill_signal: Signal::SIGTERM,
            has_exec_stop: false,
            remain_after_exit: false,
            start_limit_burst: 5,
            start_limit_interval: Duration::from_secs(10),
            probe_readiness: false,
            watchdog_signal: Signal::SIGABRT,
        }
    }

    fn pid(n: i32) -> Pid {
        Pid::from_raw(n)
    }

    /// A service that is running with pid 100, started at `t0`.
    fn running(p: Policy, t0: Instant) -> Service {
        let mut svc = Service::new(p, 7);
        svc.on_event(Event::Start, t0);
        assert_eq!(svc.on_event(Event::DepsReady, t0), [Action::Spawn]);
        svc.on_event(Event::Spawned(pid(100)), t0);
        assert_eq!(svc.state.name(), StateName::Running);
        svc
    }

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    #[test]
    fn start_waits_for_deps_then_spawns() {
        // Start parks the service in waiting; DepsReady spawns it; Spawned makes a simple one running.
        let t0 = Instant::now();
        let mut svc = Service::new(policy(), 1);
        assert!(svc.on_event(Event::Start, t0).is_empty());
        assert_eq!(svc.state, State::Waiting);
        assert_eq!(svc.on_event(Event::DepsReady, t0), [Action::Spawn]);
        assert_eq!(svc.state.name(), StateName::Starting);
        svc.on_event(Event::Spawned(pid(5)), t0);
        assert_eq!(
            svc.state,
            State::Running {
                pid: Some(pid(5)),
                since: t0
            }
        );
        assert_eq!(svc.pgid, Some(pid(5)));
    }

    #[test]
    fn restart_policy_matrix() {
        // Which exits restart under each policy (SPEC §6), and where the others end.
        use RestartPolicy::*;
        let cases = [
            (Always, ExitKind::Code(0), StateName::Restarting),
            (Always, ExitKind::Code(1), StateName::Restarting),
            (OnFailure, ExitKind::Code(0), StateName::Exited),
            (OnFailure, ExitKind::Code(2), StateName::Restarting),
            (
                OnFailure,
                ExitKind::Signal(Signal::SIGKILL),
                StateName::Restarting,
            ),
            (No, ExitKind::Code(0), StateName::Exited),
            (No, ExitKind::Code(3), StateName::Failed),
            (No, ExitKind::Signal(Signal::SIGSEGV), StateName::Failed),
            (OnFailure, ExitKind::Unknown, StateName::Restarting),
        ];
        for (restart, exit, want) in cases {
            let t0 = Instant::now();
            let mut svc = running(
                Policy {
                    restart,
                    ..policy()
                },
                t0,
            );
            let actions = svc.on_event(Event::Exited(exit), t0 + secs(2.0));
            assert_eq!(svc.state.name(), want, "{restart:?} {exit:?}");
            assert_eq!(svc.last_exit, Some(exit));
            // Whatever is left of the group is killed.
            assert_eq!(
                actions,
                [Action::KillGroup {
                    pgid: pid(100),
                    signal: Signal::SIGKILL
                }]
            );
        }
    }

    #[test]
    fn failed_attempts_count_and_the_restart_reason_is_kept() {
        // Each failed attempt counts (a clean exit under Restart=always does not) and says why it restarts.
        let t0 = Instant::now();
        let mut svc = running(
            Policy {
                restart: RestartPolicy::Always,
                ..policy()
            },
            t0,
        );
        svc.on_event(Event::Exited(ExitKind::Code(0)), t0);
        assert_eq!(svc.failed_attempts, 0);
        assert_eq!(svc.restart_reason, Some(Reason::Exit(ExitKind::Code(0))));
        assert_eq!(svc.next_attempt(), Some(t0 + secs(1.0)));
        svc.on_event(Event::Timer, t0 + secs(1.0));
        svc.on_event(Event::Spawned(pid(101)), t0 + secs(1.0));
        svc.on_event(Event::Exited(ExitKind::Code(4)), t0 + secs(2.0));
        assert_eq!(svc.failed_attempts, 1);
        assert_eq!(svc.restart_reason, Some(Reason::Exit(ExitKind::Code(4))));
        assert_eq!(svc.last_exit, Some(ExitKind::Code(4)));
    }

    #[test]
    fn a_unit_that_cannot_work_fails_without_spawning() {
        // CannotStart in place of a spawn fails the service with that reason and no timer.
        let t0 = Instant::now();
        let mut svc = Service::new(policy(), 1);
        svc.on_event(Event::Start, t0);
        svc.on_event(Event::DepsReady, t0);
        let reason = Reason::NoMainPid("cannot work".into());
        assert!(svc
            .on_event(Event::CannotStart(reason.clone()), t0)
            .is_empty());
        assert_eq!(svc.state, State::Failed(reason));
        assert_eq!(svc.deadline(), None);
    }

    #[test]
    fn restart_waits_restart_sec_then_spawns_and_counts() {
        // The restart timer fires after RestartSec and counts one restart.
        let t0 = Instant::now();
        let mut svc = running(policy(), t0);
        svc.on_event(Event::Exited(ExitKind::Code(1)), t0);
        assert_eq!(svc.deadline(), Some(t0 + secs(1.0)));
        // A stray early timer does nothing.
        assert!(svc.on_event(Event::Timer, t0 + secs(0.5)).is_empty());
        assert_eq!(svc.on_event(Event::Timer, t0 + secs(1.0)), [Action::Spawn]);
        assert_eq!(svc.restarts, 1);
    }

    #[test]
    fn zero_restart_sec_restarts_at_once() {
        // RestartSec = 0 arms a deadline of now, so the same loop pass restarts.
        let t0 = Instant::now();
        let mut svc = running(
            Policy {
                restart_sec: Duration::ZERO,
                restart_max_delay: Duration::ZERO,
                ..policy()
            },
            t0,
        );
        svc.on_event(Event::Exited(ExitKind::Code(1)), t0);
        assert_eq!(svc.deadline(), Some(t0));
        assert_eq!(svc.on_event(Event::Timer, t0), [Action::Spawn]);
    }

    #[test]
    fn start_limit_hit_after_burst_starts() {
        // With StartLimitBurst = 3, the fourth start inside the interval fails the service.
        let t0 = Instant::now();
        let p = Policy {
            start_limit_burst: 3,
            restart_sec: Duration::ZERO,
            restart_max_delay: Duration::ZERO,
            ..policy()
        };
        let mut svc = running(p, t0); // start 1
        let mut t = t0;
        for n in 2..=3 {
            t += secs(0.1);
            svc.on_event(Event::Exited(ExitKind::Code(1)), t);
            assert_eq!(svc.on_event(Event::Timer, t), [Action::Spawn], "start {n}");
            svc.on_event(Event::Spawned(pid(100 + n)), t);
        }
        t += secs(0.1);
        svc.on_event(Event::Exited(ExitKind::Code(1)), t);
        assert!(svc.on_event(Event::Timer, t).is_empty());
        assert_eq!(svc.state, State::Failed(Reason::StartLimitHit));
        assert_eq!(Reason::StartLimitHit.to_string(), "start limit hit");
    }

    #[test]
    fn starts_outside_the_interval_do_not_count() {
        // Starts older than StartLimitIntervalSec fall out of the window.
        let t0 = Instant::now();
        let p = Policy {
            start_limit_burst: 2,
            start_limit_interval: secs(10.0),
            ..policy()
        };
        let mut svc = running(p, t0);
        let mut t = t0;
        for _ in 0..5 {
            t += secs(11.0);
            svc.on_event(Event::Exited(ExitKind::Code(1)), t);
            assert_eq!(svc.on_event(Event::Timer, t + secs(1.0)), [Action::Spawn]);
            svc.on_event(Event::Spawned(pid(200)), t + secs(1.0));
        }
        assert_eq!(svc.state.name(), StateName::Running);
    }

    #[test]
    fn zero_burst_never_gives_up() {
        // StartLimitBurst = 0 disables the start limit.
        let t0 = Instant::now();
        let p = Policy {
            start_limit_burst: 0,
            restart_sec: Duration::ZERO,
            restart_max_delay: Duration::ZERO,
            ..policy()
        };
        let mut svc = running(p, t0);
        for _ in 0..1000 {
            svc.on_event(Event::Exited(ExitKind::Code(1)), t0);
            assert_eq!(svc.on_event(Event::Timer, t0), [Action::Spawn]);
            svc.on_event(Event::Spawned(pid(300)), t0);
        }
        assert_eq!(svc.restarts, 1000);
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_with_jitter() {
        // Consecutive failures double the delay (minus up to 25% jitter) and never exceed the cap.
        let t0 = Instant::now();
        let p = Policy {
            restart_sec: secs(1.0),
            restart_max_delay: secs(8.0),
            ..policy()
        };
        let mut svc = running(p, t0);
        let mut t = t0;
        let mut delays = Vec::new();
        for _ in 0..6 {
            svc.on_event(Event::Exited(ExitKind::Code(1)), t);
            let until = svc.deadline().unwrap();
            delays.push(until - t);
            t = until;
            svc.on_event(Event::Timer, t);
            svc.on_event(Event::Spawned(pid(400)), t);
        }
        let expected = [1.0, 2.0, 4.0, 8.0, 8.0, 8.0];
        for (d, e) in delays.iter().zip(expected) {
            let d = d.as_secs_f64();
            assert!(
                d <= e + 1e-9 && d >= (e * 0.75).max(1.0) - 1e-9,
                "{delays:?}"
            );
        }
    }

    #[test]
    fn backoff_resets_after_staying_up_for_the_cap() {
        // A run that lasts RestartMaxDelaySec starts the backoff over at RestartSec.
        let t0 = Instant::now();
        let p = Policy {
            restart_sec: secs(1.0),
            restart_max_delay: secs(8.0),
            ..policy()
        };
        let mut svc = running(p, t0);
        let mut t = t0;
        for _ in 0..4 {
            svc.on_event(Event::Exited(ExitKind::Code(1)), t);
            t = svc.deadline().unwrap();
            svc.on_event(Event::Timer, t);
            svc.on_event(Event::Spawned(pid(500)), t);
        }
        t += secs(8.0);
        svc.on_event(Event::Exited(ExitKind::Code(1)), t);
        assert_eq!(svc.deadline(), Some(t + secs(1.0)));
    }

    #[test]
    fn stop_signals_the_group_then_kills_after_the_timeout() {
        // Stop sends KillSignal, SIGKILL at TimeoutStopSec, and ends inactive once all is gone.
        let t0 = Instant::now();
        let mut svc = running(
            Policy {
                kill_signal: Signal::SIGINT,
                ..policy()
            },
            t0,
        );
        assert_eq!(
            svc.on_event(Event::Stop, t0),
            [
                Action::KillGroup {
                    pgid: pid(100),
                    signal: Signal::SIGINT
                },
                Action::KillGroup {
                    pgid: pid(100),
                    signal: Signal::SIGCONT
                }
            ]
        );
        assert_eq!(svc.state.name(), StateName::Stopping);
        assert_eq!(svc.deadline(), Some(t0 + secs(10.0)));
        assert_eq!(
            svc.on_event(Event::Timer, t0 + secs(10.0)),
            [Action::KillGroup {
                pgid: pid(100),
                signal: Signal::SIGKILL
            }]
        );
        svc.on_event(
            Event::Exited(ExitKind::Signal(Signal::SIGKILL)),
            t0 + secs(10.1),
        );
        // The main process is gone; the group may not be yet.
        assert!(svc.awaiting_group());
        svc.on_event(Event::GroupGone, t0 + secs(10.1));
        assert_eq!(svc.state, State::Inactive);
        assert_eq!(svc.last_exit, Some(ExitKind::Signal(Signal::SIGKILL)));
    }

    #[test]
    fn a_group_that_survives_sigkill_ends_failed_not_inactive() {
        // When something outlives SIGKILL past the grace, the stop gives up as failed, never as a clean inactive.
        let t0 = Instant::now();
        let mut svc = running(policy(), t0);
        svc.on_event(Event::Stop, t0);
        svc.on_event(Event::Timer, t0 + secs(10.0));
        svc.on_event(Event::Exited(ExitKind::Code(0)), t0 + secs(10.1));
        assert!(svc.awaiting_group());
        svc.on_event(Event::Timer, t0 + secs(10.0) + KILL_GRACE);
        assert_eq!(
            svc.state,
            State::Failed(Reason::Survived("process group 100".into()))
        );
        let reason = Reason::Survived("process group 100".into()).to_string();
        assert!(reason.contains("survived SIGKILL"), "{reason}");
    }

    #[test]
    fn leftovers_of_a_dead_adopted_process_are_killed_before_the_restart() {
        // A new daemon that finds the main process dead but its group alive kills the group and restarts only once it is gone.
        let t0 = Instant::now();
        let mut svc = Service::new(policy(), 3);
        svc.on_event(
            Event::Adopt {
                pid: Some(pid(100)),
                pgid: None,
                since: t0,
                restarts: 0,
            },
            t0,
        );
        assert_eq!(
            svc.on_event(Event::DeadWithLeftovers(pid(100)), t0),
            [Action::KillGroup {
                pgid: pid(100),
                signal: Signal::SIGKILL
            }]
        );
        assert_eq!(svc.state.name(), StateName::Stopping);
        assert!(svc.awaiting_group());
        assert_eq!(svc.last_exit, Some(ExitKind::Unknown));
        svc.on_event(Event::GroupGone, t0 + secs(0.1));
        assert_eq!(svc.state.name(), StateName::Restarting);
        assert_eq!(
            svc.on_event(Event::Timer, t0 + secs(1.1)),
            [Action::Spawn],
            "restarted per policy once the group is gone"
        );
        assert_eq!(svc.restarts, 1);
    }

    #[test]
    fn exec_stop_runs_before_the_signal() {
        // With ExecStop, the stop command runs first; KillSignal follows when it exits.
        let t0 = Instant::now();
        let mut svc = running(
            Policy {
                has_exec_stop: true,
                ..policy()
            },
            t0,
        );
        assert_eq!(svc.on_event(Event::Stop, t0), [Action::SpawnStop]);
        svc.on_event(Event::StopCmdSpawned(pid(900)), t0);
        assert_eq!(svc.stop_cmd(), Some(pid(900)));
        assert_eq!(
            svc.on_event(Event::StopCmdExited(ExitKind::Code(0)), t0 + secs(0.2)),
            [
                Action::KillGroup {
                    pgid: pid(100),
                    signal: Signal::SIGTERM
                },
                Action::KillGroup {
                    pgid: pid(100),
                    signal: Signal::SIGCONT
                }
            ]
        );
        svc.on_event(
            Event::Exited(ExitKind::Signal(Signal::SIGTERM)),
            t0 + secs(0.3),
        );
        svc.on_event(Event::GroupGone, t0 + secs(0.3));
        assert_eq!(svc.state, State::Inactive);
    }

    #[test]
    fn exec_stop_that_hangs_is_killed_at_the_timeout() {
        // A stop command that outlives TimeoutStopSec is killed along with the signal to the service.
        let t0 = Instant::now();
        let mut svc = running(
            Policy {
                has_exec_stop: true,
                ..policy()
            },
            t0,
        );
        svc.on_event(Event::Stop, t0);
        svc.on_event(Event::StopCmdSpawned(pid(900)), t0);
        let actions = svc.on_event(Event::Timer, t0 + secs(10.0));
        assert_eq!(
            actions,
            [
                Action::KillGroup {
                    pgid: pid(100),
                    signal: Signal::SIGTERM
                },
                Action::KillGroup {
                    pgid: pid(100),
                    signal: Signal::SIGCONT
                },
                Action::KillGroup {
                    pgid: pid(900),
                    signal: Signal::SIGKILL
                },
            ]
        );
    }

    #[test]
    fn zero_stop_timeout_kills_at_once() {
        // TimeoutStopSec = 0 sends SIGKILL right behind KillSignal.
        let t0 = Instant::now();
        let mut svc = running(
            Policy {
                timeout_stop: Duration::ZERO,
                ..policy()
            },
            t0,
        );
        assert_eq!(
            svc.on_event(Event::Stop, t0),
            [
                Action::KillGroup {
                    pgid: pid(100),
                    signal: Signal::SIGTERM
                },
                Action::KillGroup {
                    pgid: pid(100),
                    signal: Signal::SIGCONT
                },
                Action::KillGroup {
                    pgid: pid(100),
                    signal: Signal::SIGKILL
                },
            ]
        );
    }

    #[test]
    fn stop_during_backoff_cancels_restart() {
        // A stop while waiting out RestartSec ends inactive with no timer left.
        let t0 = Instant::now();
        let mut svc = running(policy(), t0);
        svc.on_event(Event::Exited(ExitKind::Code(1)), t0);
        assert!(svc.on_event(Event::Stop, t0).is_empty());
        assert_eq!(svc.state, State::Inactive);
        assert_eq!(svc.deadline(), None);
    }

    #[test]
    fn exit_during_stop_is_not_restarted() {
        // The exit caused by our own signal never triggers the restart policy.
        let t0 = Instant::now();
        let mut svc = running(
            Policy {
                restart: RestartPolicy::Always,
                ..policy()
            },
            t0,
        );
        svc.on_event(Event::Stop, t0);
        svc.on_event(Event::Exited(ExitKind::Signal(Signal::SIGTERM)), t0);
        svc.on_event(Event::GroupGone, t0);
        assert_eq!(svc.state, State::Inactive);
    }

    #[test]
    fn dep_failed_stops_then_fails_with_the_reason() {
        // A running service whose required unit failed is stopped and ends failed naming it.
        let t0 = Instant::now();
        let mut svc = running(policy(), t0);
        let actions = svc.on_event(Event::DepFailed("db".into()), t0);
        assert_eq!(
            actions,
            [
                Action::KillGroup {
                    pgid: pid(100),
                    signal: Signal::SIGTERM
                },
                Action::KillGroup {
                    pgid: pid(100),
                    signal: Signal::SIGCONT
                }
            ]
        );
        svc.on_event(Event::Exited(ExitKind::Signal(Signal::SIGTERM)), t0);
        svc.on_event(Event::GroupGone, t0);
        assert_eq!(svc.state, State::Failed(Reason::DepFailed("db".into())));
        assert_eq!(
            Reason::DepFailed("db".into()).to_string(),
            "dependency db failed"
        );
    }

    #[test]
    fn dep_failed_while_waiting_fails_at_once() {
        // A waiting service whose required unit failed never spawns.
        let mut svc = Service::new(policy(), 1);
        let t0 = Instant::now();
        svc.on_event(Event::Start, t0);
        assert!(svc.on_event(Event::DepFailed("db".into()), t0).is_empty());
        assert_eq!(svc.state, State::Failed(Reason::DepFailed("db".into())));
    }

    #[test]
    fn start_during_stop_starts_again_afterwards() {
        // A start that arrives while stopping takes effect once the stop is done.
        let t0 = Instant::now();
        let mut svc = running(policy(), t0);
        svc.on_event(Event::Stop, t0);
        assert!(svc.on_event(Event::Start, t0).is_empty());
        svc.on_event(Event::Exited(ExitKind::Signal(Signal::SIGTERM)), t0);
        svc.on_event(Event::GroupGone, t0);
        assert_eq!(svc.state, State::Waiting);
    }

    #[test]
    fn stop_while_spawn_in_flight_stops_when_spawned() {
        // A Stop between Spawn and Spawned is honoured as soon as the pid is known.
        let t0 = Instant::now();
        let mut svc = Service::new(policy(), 1);
        svc.on_event(Event::Start, t0);
        svc.on_event(Event::DepsReady, t0);
        assert!(svc.on_event(Event::Stop, t0).is_empty());
        let actions = svc.on_event(Event::Spawned(pid(42)), t0);
        assert_eq!(
            actions,
            [
                Action::KillGroup {
                    pgid: pid(42),
                    signal: Signal::SIGTERM
                },
                Action::KillGroup {
                    pgid: pid(42),
                    signal: Signal::SIGCONT
                }
            ]
        );
        assert_eq!(svc.state.name(), StateName::Stopping);
    }

    #[test]
    fn spawn_failure_fails_without_restart() {
        // A command that cannot be executed fails at once with the reason.
        let t0 = Instant::now();
        let mut svc = Service::new(
            Policy {
                restart: RestartPolicy::Always,
                ..policy()
            },
            1,
        );
        svc.on_event(Event::Start, t0);
        svc.on_event(Event::DepsReady, t0);
        svc.on_event(
            Event::SpawnFailed(SpawnError::NotFound {
                program: "nope".into(),
                in_path: true,
            }),
            t0,
        );
        assert_eq!(svc.state.name(), StateName::Failed);
        assert_eq!(svc.deadline(), None);
    }

    #[test]
    fn oneshot_is_up_once_it_exits_zero() {
        // A oneshot stays starting while it runs and ends exited, or running with RemainAfterExit.
        for (remain, want) in [(false, StateName::Exited), (true, StateName::Running)] {
            let t0 = Instant::now();
            let p = Policy {
                kind: ServiceType::Oneshot,
                remain_after_exit: remain,
                ..policy()
            };
            let mut svc = Service::new(p, 1);
            svc.on_event(Event::Start, t0);
            svc.on_event(Event::DepsReady, t0);
            svc.on_event(Event::Spawned(pid(9)), t0);
            assert_eq!(svc.state.name(), StateName::Starting);
            assert_eq!(svc.deadline(), Some(t0 + secs(30.0)));
            svc.on_event(Event::Exited(ExitKind::Code(0)), t0 + secs(1.0));
            assert_eq!(svc.state.name(), want);
            assert_eq!(svc.pid(), None);
        }
    }

    #[test]
    fn remain_after_exit_oneshot_stops_without_processes() {
        // Stopping a RemainAfterExit oneshot whose process is gone needs no signal.
        let t0 = Instant::now();
        let p = Policy {
            kind: ServiceType::Oneshot,
            remain_after_exit: true,
            ..policy()
        };
        let mut svc = Service::new(p, 1);
        svc.on_event(Event::Start, t0);
        svc.on_event(Event::DepsReady, t0);
        svc.on_event(Event::Spawned(pid(9)), t0);
        svc.on_event(Event::Exited(ExitKind::Code(0)), t0);
        // The group may still hold background children: it is signalled.
        let actions = svc.on_event(Event::Stop, t0);
        assert_eq!(
            actions,
            [
                Action::KillGroup {
                    pgid: pid(9),
                    signal: Signal::SIGTERM
                },
                Action::KillGroup {
                    pgid: pid(9),
                    signal: Signal::SIGCONT
                }
            ]
        );
        svc.on_event(Event::GroupGone, t0);
        assert_eq!(svc.state, State::Inactive);
    }

    #[test]
    fn oneshot_start_timeout_kills_and_applies_the_policy() {
        // A oneshot running past TimeoutStartSec is stopped and then judged by Restart=.
        let t0 = Instant::now();
        let p = Policy {
            kind: ServiceType::Oneshot,
            restart: RestartPolicy::No,
            timeout_start: secs(2.0),
            ..policy()
        };
        let mut svc = Service::new(p, 1);
        svc.on_event(Event::Start, t0);
        svc.on_event(Event::DepsReady, t0);
        svc.on_event(Event::Spawned(pid(9)), t0);
        let actions = svc.on_event(Event::Timer, t0 + secs(2.0));
        assert_eq!(
            actions,
            [
                Action::KillGroup {
                    pgid: pid(9),
                    signal: Signal::SIGTERM
                },
                Action::KillGroup {
                    pgid: pid(9),
                    signal: Signal::SIGCONT
                }
            ]
        );
        svc.on_event(
            Event::Exited(ExitKind::Signal(Signal::SIGTERM)),
            t0 + secs(2.1),
        );
        svc.on_event(Event::GroupGone, t0 + secs(2.1));
        assert_eq!(svc.state, State::Failed(Reason::StartTimeout));
    }

    #[test]
    fn explicit_start_resets_a_failed_service() {
        // Starting a failed service clears the start-limit window so it can run again.
        let t0 = Instant::now();
        let p = Policy {
            start_limit_burst: 1,
            restart_sec: Duration::ZERO,
            restart_max_delay: Duration::ZERO,
            ..policy()
        };
        let mut svc = running(p, t0);
        svc.on_event(Event::Exited(ExitKind::Code(1)), t0);
        svc.on_event(Event::Timer, t0);
        assert_eq!(svc.state, State::Failed(Reason::StartLimitHit));
        svc.on_event(Event::Start, t0);
        assert_eq!(svc.on_event(Event::DepsReady, t0), [Action::Spawn]);
    }

    #[test]
    fn main_pid_changed_moves_the_main_process_and_keeps_the_state() {
        // MAINPID=: the new pid is the main one (same since, same group);
        // a late one after the service went down changes nothing.
        let t0 = Instant::now();
        let mut svc = running(policy(), t0);
        let t1 = t0 + secs(1.0);
        assert!(svc.on_event(Event::MainPidChanged(pid(101)), t1).is_empty());
        assert_eq!(
            svc.state,
            State::Running {
                pid: Some(pid(101)),
                since: t0
            }
        );
        assert_eq!(svc.pgid, Some(pid(100)));
        svc.on_event(Event::Exited(ExitKind::Signal(Signal::SIGKILL)), t1);
        assert_eq!(svc.state.name(), StateName::Restarting);
        let before = svc.state.clone();
        assert!(svc.on_event(Event::MainPidChanged(pid(102)), t1).is_empty());
        assert_eq!(svc.state, before);
    }

    #[test]
    fn stray_events_are_ignored() {
        // Events that make no sense in a state change nothing.
        let t0 = Instant::now();
        let mut svc = Service::new(policy(), 1);
        for ev in [
            Event::Timer,
            Event::GroupGone,
            Event::Exited(ExitKind::Code(0)),
            Event::Stop,
            Event::DepsReady,
        ] {
            assert!(svc.on_event(ev, t0).is_empty());
            assert_eq!(svc.state, State::Inactive);
        }
    }

    #[test]
    fn policy_takes_every_runtime_key_from_the_unit() {
        // Each key the machine obeys reaches Policy through the built Unit, so its default is the key table's alone.
        let unit = |unit_keys: &str, service_keys: &str| {
            let text =
                format!("[unit]\n{unit_keys}\n[service]\nExecStart = \"w\"\n{service_keys}\n");
            crate::unit::parse(
                "web",
                std::path::Path::new("/u/web.service"),
                &text,
                std::path::Path::new("/u"),
            )
            .unwrap_or_else(|e| panic!("{text}: {e:?}"))
        };
        let plain = unit("", "");
        let base = Policy::from_unit(&plain);
        assert_eq!(
            (base.restart_sec, base.restart_max_delay, base.timeout_start),
            (
                plain.restart_sec,
                plain.restart_max_delay,
                plain.timeout_start
            )
        );
        assert_eq!(
            (
                base.timeout_stop,
                base.start_limit_interval,
                base.start_limit_burst
            ),
            (
                plain.timeout_stop,
                plain.start_limit_interval,
                plain.start_limit_burst
            )
        );
        for (unit_keys, service_keys) in [
            ("StartLimitBurst = 7", ""),
            ("StartLimitIntervalSec = 7", ""),
            ("", "Type = \"oneshot\""),
            ("", "Restart = \"always\""),
            ("", "RestartSec = 7"),
            ("", "RestartMaxDelaySec = 9"),
            ("", "TimeoutStartSec = 7"),
            ("", "TimeoutStopSec = 7"),
            ("", "KillSignal = \"SIGINT\""),
            ("", "ExecStop = \"stop\""),
            ("", "RemainAfterExit = true"),
        ] {
            let policy = Policy::from_unit(&unit(unit_keys, service_keys));
            assert_ne!(
                policy, base,
                "{unit_keys}{service_keys} did not reach the policy"
            );
        }
    }

    #[test]
    fn late_or_repeated_news_is_a_listed_no_op() {
        // A second DepsReady or READY=1, a stray exit or a timer that is not
        // due change nothing and ask for nothing.
        let t0 = Instant::now();
        let mut svc = running(policy(), t0);
        let before = svc.state.clone();
        for ev in [
            Event::DepsReady,
            Event::Ready,
            Event::Timer,
            Event::GroupGone,
            Event::DepInvalid("db".into()),
        ] {
            assert!(svc.on_event(ev, t0).is_empty());
        }
        assert_eq!(svc.state, before);
    }

    #[test]
    fn adoption_and_counter_resets_are_events() {
        // A new daemon adopts through on_event (restart count kept), and a
        // reset clears the counters without touching the state.
        let t0 = Instant::now();
        let mut svc = Service::new(policy(), 3);
        let adopted = Event::Adopt {
            pid: Some(pid(100)),
            pgid: Some(pid(100)),
            since: t0,
            restarts: 4,
        };
        assert!(svc.on_event(adopted, t0).is_empty());
        assert_eq!(svc.pid(), Some(pid(100)));
        assert_eq!(svc.restarts, 4);
        svc.on_event(Event::ResetCounters, t0);
        assert_eq!(svc.restarts, 0);
        assert_eq!(svc.pid(), Some(pid(100)));
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "not in the table")]
    fn a_pair_the_table_does_not_list_trips_the_debug_assert() {
        // Spawned for a service that never asked to spawn is a bug.
        let mut svc = Service::new(policy(), 3);
        svc.on_event(Event::Spawned(pid(7)), Instant::now());
    }
}
