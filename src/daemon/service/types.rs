//! The vocabulary of the state machine in [`super`]: states, events,
//! actions, why a service stopped, and the policy read from its unit.

use std::fmt;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use nix::unistd::Pid;

use crate::daemon::spawn::{MainPidError, SpawnError};
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
#[derive(Debug, Clone)]
#[cfg_attr(test, derive(PartialEq, Eq))]
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
    NoMainPid(Box<MainPidError>),
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
    /// A failure an earlier daemon recorded (its reason, as it said it).
    Earlier(String),
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
            Reason::Earlier(text) => f.write_str(text),
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
/// The reasons are boxed: inline they made every service's state (a
/// thousand in a daemon) 24 bytes larger, for the few that are stopping.
#[derive(Debug, Clone)]
#[cfg_attr(test, derive(PartialEq, Eq))]
pub enum AfterStop {
    Inactive,
    Failed(Box<Reason>),
    /// A failure the restart policy gets to judge (start timeout).
    Failure(Box<Reason>),
}

#[derive(Debug, Clone)]
#[cfg_attr(test, derive(PartialEq, Eq))]
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

#[derive(Debug, Clone)]
#[cfg_attr(test, derive(PartialEq, Eq))]
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
    /// The main process, up since its clone, could not exec after all
    /// (what the daemon could not check before the clone).
    ExecFailed(SpawnError),
    /// The unit cannot work as written (checked before spawning).
    CannotStart(Reason),
    /// The main process ended.
    Exited(ExitKind),
    /// The ExecStop process ended.
    StopCmdExited(ExitKind),
    /// Nothing is left of the process group, nor of processes that left
    /// it (setsid) carrying the unit's tag.
    GroupGone,
    /// A notify service sent READY=1.
    Ready,
    /// The `[health]` probe of a starting service passed (its first pass:
    /// with Readiness, the service is up once its own readiness is met too).
    ProbePassed,
    /// The service said STOPPING=1: it is going down on its own.
    StoppingItself,
    /// WatchdogSec passed without a WATCHDOG=1.
    WatchdogTimeout,
    /// EXTEND_TIMEOUT_USEC: the start or stop deadline is at least this far away.
    ExtendTimeout(Duration),
    /// sd_notify MAINPID=: this process (of the service's group) is the
    /// main process from now on.
    MainPidChanged(Pid),
    /// A RemainAfterExit oneshot's run left this process group running
    /// outside its own (a daemonized server): its group from now on.
    KeptGroup(Pid),
    /// The health probes judged it unhealthy: stop it, then fail
    /// (`stop: true`) or let the restart policy judge it.
    Unhealthy {
        reason: Reason,
        stop: bool,
    },
    /// A forking service's main process (pid, its process group), or why it
    /// could not be found.
    MainPid(Result<(Pid, Pid), Box<MainPidError>>),
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
        /// It was still starting: Some(its start deadline, if any).
        starting: Option<Option<Instant>>,
    },
    /// A new daemon takes over a unit that was waiting to be restarted:
    /// at `until`, with its restart count and failures in a row kept.
    AdoptRestarting {
        until: Instant,
        restarts: u32,
        failures: u32,
    },
    /// A new daemon takes over a unit an earlier one left `failed` (why:
    /// a [`Reason::Earlier`]), `inactive` (`stopped`: stopped by request)
    /// or else `exited`; its last exit and restart count kept.
    AdoptEnded {
        failed: Option<Reason>,
        stopped: bool,
        last_exit: Option<ExitKind>,
        restarts: u32,
    },
    /// A new daemon took over a process the previous one was stopping
    /// (after `Adopt`): its stop goes on where it was (`phase`, its
    /// deadline), no signal sent twice.
    AdoptStopping {
        phase: StopPhase,
        deadline: Instant,
    },
    /// Forget restart counters and the start-limit window (`restart`, or
    /// an explicit start after a failure).
    ResetCounters,
    /// A new daemon took the service over (after `Adopt*`): what the
    /// previous one knew of its past, its last exit, why it waits to
    /// restart, and the starts in its start-limit window.
    AdoptHistory {
        last_exit: Option<ExitKind>,
        restart_reason: Option<Reason>,
        starts: Vec<Instant>,
    },
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

impl Event {
    /// Its name, for a log line (not its `Debug` form, which would keep
    /// the `Debug` of every state and reason in the daemon).
    pub fn name(&self) -> &'static str {
        match self {
            Event::Adopt { .. } => "Adopt",
            Event::AdoptEnded { .. } => "AdoptEnded",
            Event::AdoptRestarting { .. } => "AdoptRestarting",
            Event::CannotStart { .. } => "CannotStart",
            Event::DeadWithLeftovers { .. } => "DeadWithLeftovers",
            Event::DepFailed { .. } => "DepFailed",
            Event::DepInvalid { .. } => "DepInvalid",
            Event::DepsReady => "DepsReady",
            Event::Exited { .. } => "Exited",
            Event::ExtendTimeout { .. } => "ExtendTimeout",
            Event::GroupGone => "GroupGone",
            Event::MainPid { .. } => "MainPid",
            Event::MainPidChanged { .. } => "MainPidChanged",
            Event::KeptGroup { .. } => "KeptGroup",
            Event::MemoryExceeded { .. } => "MemoryExceeded",
            Event::Ready => "Ready",
            Event::ProbePassed => "ProbePassed",
            Event::ResetCounters => "ResetCounters",
            Event::AdoptHistory { .. } => "AdoptHistory",
            Event::AdoptStopping { .. } => "AdoptStopping",
            Event::SpawnFailed { .. } => "SpawnFailed",
            Event::ExecFailed { .. } => "ExecFailed",
            Event::Spawned { .. } => "Spawned",
            Event::Start => "Start",
            Event::Stop => "Stop",
            Event::StopCmdExited { .. } => "StopCmdExited",
            Event::StopCmdSpawned { .. } => "StopCmdSpawned",
            Event::StoppingItself => "StoppingItself",
            Event::Timer => "Timer",
            Event::Unhealthy { .. } => "Unhealthy",
            Event::WatchdogTimeout => "WatchdogTimeout",
        }
    }
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

/// A duration in 8 bytes (a `Duration` takes 16): whole nanoseconds, which
/// hold a unit's durations exactly (at most 1e9 s; u64 goes to 584 years).
/// Longer ones saturate. A thousand policies hold five each: 40 KB less.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Hash)]
pub struct Span(u64);

impl Span {
    pub const ZERO: Span = Span(0);

    pub fn get(self) -> Duration {
        Duration::from_nanos(self.0)
    }
}

impl From<Duration> for Span {
    fn from(d: Duration) -> Span {
        Span(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
    }
}

/// The parts of a unit that the machine needs (copied so reload can swap
/// them). Services with the same one share it (see `Service::policy`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Policy {
    pub kind: ServiceType,
    pub restart: RestartPolicy,
    pub restart_sec: Span,
    pub restart_max_delay: Span,
    pub timeout_start: Span,
    pub timeout_stop: Span,
    pub kill_signal: Signal,
    pub has_exec_stop: bool,
    pub remain_after_exit: bool,
    pub start_limit_burst: u32,
    pub start_limit_interval: Span,
    /// The service stays `starting` until its first passing probe (after
    /// its own readiness: READY=1, the main pid found): `[health]`
    /// Readiness, for every type but oneshot.
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
            restart_sec: unit.restart_sec.into(),
            restart_max_delay: unit.restart_max_delay.into(),
            timeout_start: unit.timeout_start.into(),
            timeout_stop: unit.timeout_stop.into(),
            kill_signal: unit.kill_signal,
            has_exec_stop: unit.exec_stop.is_some(),
            remain_after_exit: unit.remain_after_exit,
            start_limit_burst: unit.start_limit_burst,
            start_limit_interval: unit.start_limit_interval.into(),
            probe_readiness: unit.kind != ServiceType::Oneshot
                && unit.health.as_ref().is_some_and(|h| h.readiness),
            watchdog_signal: unit.watchdog_signal,
        }
    }
}
