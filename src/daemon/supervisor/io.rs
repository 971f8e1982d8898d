//! What goes in and out of the supervisor: its inputs, its effects, the
//! quick system reads it may make ([`Sys`]), and what a spawn returns.

use super::*;

/// Which process of a service a pid is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Main,
    StopCmd,
}

/// What the supervisor asks of the world, in order ([`Supervisor::poll_effect`]);
/// the loop hands each to the driver of its kind. None of them has an
/// answer the supervisor waits for: what follows comes back as inputs.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Send `signal` to the process group `pgid`. A group named after a
    /// child whose exec is still under way may not exist yet (the child
    /// makes it just before its exec): the child itself gets the signal.
    Signal { pgid: Pid, signal: Signal },
    /// Watch a process that may not be our child for its exit
    /// (an `ChildExited` input follows).
    Watch(Pid),
    /// Answer a client.
    Reply(ConnId, Response),
    /// A unit went down (stopped, failed or exited): its log will not grow
    /// until the next start, so rotate it now if it is over its limit.
    LogIdle {
        name: String,
        max_bytes: u64,
        max_files: u32,
    },
    /// One look for the main process of a forking service whose start
    /// command (leader of `pgid`) exited; `known` pids and processes in
    /// `other_groups` are not it. Answered with `Input::MainPidScanned`.
    ScanMainPid {
        id: ServiceId,
        unit: String,
        pid_file: Option<PathBuf>,
        pgid: Pid,
        known: Vec<Pid>,
        other_groups: Vec<Pid>,
        scan: MainPidScan,
    },
    /// Run one network health probe of service `id` (answered with
    /// `Input::ProbeDone` carrying the same `gen`).
    Probe {
        id: ServiceId,
        gen: u64,
        probe: crate::unit::Probe,
        /// Http: the accepted status codes.
        expect: (u16, u16),
    },
    /// Drop the network probe of `id` that is out (timed out, or the run ended).
    ProbeCancel { id: ServiceId },
    /// A unit changed state (only while someone follows `events`).
    StateChanged(crate::protocol::EventRecord),
    /// One look through `/proc`, at the end of these stops (their process
    /// groups are empty), for processes that left them (setsid) but still
    /// carry the unit's tag. `known` pids and processes in `other_groups`
    /// are not strays. Answered with `Input::StraysScanned`.
    ScanStrays {
        units: Vec<StrayLook>,
        known: Vec<Pid>,
        other_groups: Vec<Pid>,
    },
    /// The main process of stopping service `id` is gone but these process
    /// groups are not: watch each member that is not our child (no SIGCHLD
    /// comes for it) with a pidfd. Answered with `Input::LeftoversWatched`;
    /// `Input::LeftoverExited` when one of them ends.
    WatchLeftovers { id: ServiceId, groups: Vec<Pid> },
}

/// How the supervisor learns that a stopping service's leftovers ended.
/// Most leftovers are our children and end at once (SIGCHLD wakes us), so
/// the first look waits for one recheck: a stop costs no `/proc` scan
/// unless something outlives its main process by that much.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) enum LeftoverWatch {
    /// Not looked at yet: rechecked on the timer, then looked at.
    #[default]
    Unwatched,
    /// To be looked at in this pass (after a recheck, or one of them ended).
    Due,
    /// [`Effect::WatchLeftovers`] is out.
    Asked,
    /// Every member that is not our child has a pidfd.
    Watched,
    /// Some could not be watched: the group is rechecked on a timer.
    Polled,
    /// A member is a zombie of another parent (soon reaped, and nothing
    /// tells us when): rechecked on the timer, then looked at again.
    Relook,
}

/// One unit of an [`Effect::ScanStrays`]: a stray carries its tag and
/// started no earlier than its main process (`since`, clock ticks since
/// boot, when known) and before `until` (a newer run's main process).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StrayLook {
    pub id: ServiceId,
    pub unit: String,
    pub since: Option<u64>,
    pub until: Option<u64>,
    pub after: StraysOf,
}

/// What a look for strays is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StraysOf {
    /// A stop whose groups are empty: it waits for the strays too.
    Stop,
    /// A run that ended on its own: its strays are killed.
    EndedRun,
    /// A RemainAfterExit oneshot's run: its strays are its service, kept
    /// with the unit for its stop.
    KeptRun,
}

/// A forking service's main process as a look found it, with what the
/// supervisor records of it (read by the driver, at once).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MainPidFound {
    pub pid: Pid,
    pub pgid: Pid,
    pub start_time: Option<u64>,
    /// Its process group and session.
    pub groups: Option<(Pid, Pid)>,
}

/// The process an sd_notify `MAINPID=N` names, read by the driver when
/// the datagram came: its process group (None: no such process) and start
/// time (to adopt it after a daemon crash).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MainPidClaim {
    pub pid: Pid,
    pub pgid: Option<Pid>,
    pub start_time: Option<u64>,
}

impl MainPidClaim {
    /// The pid of a `MAINPID=N` line of a datagram, if there is one.
    pub fn named_in(payload: &str) -> Option<Pid> {
        payload
            .lines()
            .find_map(|l| l.trim_end_matches('\r').strip_prefix("MAINPID="))
            .and_then(|n| n.trim().parse::<i32>().ok())
            .filter(|&n| n > 0)
            .map(Pid::from_raw)
    }
}

/// What happened, for [`Supervisor::handle`].
#[derive(Debug)]
pub enum Input {
    /// A client's request about services (`None`: no one waits for it).
    Request(Option<ConnId>, Request),
    /// A child was reaped, or a watched process ended.
    ChildExited(Pid, ExitKind),
    /// The first line an Exec probe (pid) wrote, read by the children
    /// driver as it reaped it (before its `ChildExited`).
    ProbeOutput(Pid, String),
    /// An sd_notify datagram from `sender` in process group `group`.
    Notify {
        sender: Pid,
        group: Option<Pid>,
        payload: String,
        /// Its `MAINPID=` (if any), as the driver found that process.
        main_pid: Option<MainPidClaim>,
        /// Its `MONOTONIC_USEC=` (if any) as an instant of the daemon's clock.
        monotonic: Option<Instant>,
    },
    /// SIGTERM or SIGINT: stop every service, then exit.
    Terminate,
    /// The clock moved: deadlines at or before `now` are due.
    Tick,
    /// A look for a main process ([`Effect::ScanMainPid`]) ended: `None`
    /// not settled yet (look again), else found or failed.
    MainPidScanned {
        id: ServiceId,
        scan: MainPidScan,
        outcome: Option<Result<MainPidFound, MainPidError>>,
    },
    /// The exec of a main process or an ExecStop [`Sys::spawn`] cloned
    /// happened (Ok) or could not (the child exits with 127). Comes before
    /// its exit.
    ExecDone {
        pid: Pid,
        outcome: Result<(), SpawnError>,
    },
    /// A network probe ([`Effect::Probe`]) ended: Ok(what passed) or Err(why it failed).
    ProbeDone {
        id: ServiceId,
        gen: u64,
        outcome: Result<String, String>,
    },
    /// A look for strays ([`Effect::ScanStrays`]) ended: per unit, the
    /// process groups of the strays found (none: the stop is done).
    StraysScanned(Vec<(StrayLook, Vec<Pid>)>),
    /// [`Effect::WatchLeftovers`] was carried out: `complete` when every
    /// member that is not our child is watched by a pidfd; `zombies` when
    /// some member is a zombie another parent has yet to reap.
    LeftoversWatched {
        id: ServiceId,
        complete: bool,
        zombies: bool,
    },
    /// A leftover watched for service `id` ended.
    LeftoverExited(ServiceId),
}

/// A process [`Sys::spawn`] started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Started {
    /// Up now (SPEC §6: `simple` is up once spawned): what could keep it
    /// from running was checked before its clone; an exec that fails after
    /// all comes as [`Input::ExecDone`].
    Up(Pid),
    /// Up once its exec is done ([`Input::ExecDone`] says whether): it
    /// runs as another user, and what that user may run or enter is only
    /// known by trying.
    OnExec(Pid),
}

/// The operating system, as the supervisor uses it: starting processes and
/// quick reads of `/proc` that answer at once. Everything else is an
/// [`Effect`]; anything that takes time is an effect and a later input.
pub trait Sys {
    /// Starts ExecStart (Main) or ExecStop (StopCmd) of `unit`; its exec's
    /// outcome is still to come ([`Input::ExecDone`]). What can be checked
    /// before the clone (program, working directory, log) is, and fails here.
    fn spawn(&mut self, unit: &Unit, role: Role) -> Result<Started, SpawnError>;
    fn group_alive(&mut self, pgid: Pid) -> bool;
    /// The process group and session of a live process, read now; None for
    /// a child whose exec is under way (its own are not made yet).
    fn process_groups(&mut self, pid: Pid) -> Option<(Pid, Pid)>;
    /// The start time of a process (to recognise it after a daemon restart).
    fn start_time(&mut self, pid: Pid) -> Option<u64>;
    /// Whether `pid` is alive and still the process that started at `start_time`.
    fn is_same_process(&mut self, pid: Pid, start_time: u64) -> bool {
        self.start_time(pid) == Some(start_time)
    }
    /// The resident memory, in bytes, of every process in these process
    /// groups (MemoryMax); None when it cannot be read.
    fn group_rss(&mut self, _groups: &[Pid]) -> Option<u64> {
        None
    }
    /// How long ago a process with this start time started (the uptime of
    /// a process adopted with no record of when it started).
    fn age(&mut self, _start_time: u64) -> Option<std::time::Duration> {
        None
    }
    /// Starts an Exec health probe `argv` of `unit` (its user, directory,
    /// environment and log) in its own process group. Its exec may fail
    /// later: that comes as [`Input::ExecDone`] for the pid returned.
    fn spawn_probe(&mut self, _unit: &Unit, _argv: &[String]) -> Result<Pid, SpawnError> {
        Err(SpawnError::EmptyCommand)
    }
}
