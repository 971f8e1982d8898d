//! The wire contract between client and daemon (SPEC §8, §17): request and
//! reply types, [`PROTOCOL_VERSION`], length-prefixed bincode frames (their
//! encoding and decoding in `frame.rs`), and the stable envelope that lets
//! any later client hand a running daemon over.
//!
//! # Wire rules
//!
//! These rules never change; everything not named here may change with
//! [`PROTOCOL_VERSION`].
//!
//! 1. **Frame**: a `u32` little-endian length, then that many bytes of body.
//!    A request body over [`MAX_FRAME`] (1 MiB) is refused from its prefix.
//! 2. **Header**: every request and every reply body starts with the magic
//!    `DKNS` ([`MAGIC`]) and a protocol version (bincode 2 standard config:
//!    a varint `u32`). See [`header`].
//! 3. **Stable requests**: `kill`, `daemon-status` and the hand-over are sent
//!    with version [`STABLE`] (0), then a [`StableOp`] (varint 0 kill,
//!    1 daemon-status, 2 hand-over), then the service directory
//!    (`Option<String>`), and nothing else. Every daemon from protocol 2 on
//!    understands them, whatever version it speaks itself.
//! 4. **Versioned requests**: everything else is sent with the client's
//!    version, then `Option<PathBuf>` service directory and a [`Request`].
//!    A daemon of another version does not decode it: it refuses it with a
//!    stable reply that names its own version.
//! 5. **Replies**: the header carries the daemon's version, then one byte
//!    says the form of the rest: [`REPLY_CURRENT`] (1) a [`Response`], only
//!    ever sent for a versioned request of the daemon's own version (so it
//!    is free to change with the version), or [`REPLY_STABLE`] (0) a
//!    [`StableReply`], for everything else: stable requests, requests of
//!    another version, frames that do not decode.
//! 6. **Extending stable replies**: a [`StableReply`] variant only ever gains
//!    fields at its end, and readers ignore bytes after what they know, so
//!    adding a field breaks no older client. Variants are never reordered or
//!    removed, new ones are added last, and a daemon answers a stable
//!    request only with variants that existed when that request did. Types
//!    inside stable replies avoid enums that may grow (state names are
//!    strings there).
//!
//! Every request is answered by exactly one reply frame, after which the
//! daemon closes the connection.
//!
//! # Versions and the hand-over
//!
//! A client that gets a version refusal from an older daemon sends the
//! stable hand-over: the daemon writes its state file and exits, leaving
//! every service running; the client starts a daemon from its own binary,
//! which adopts them (same pids, restart counts kept), and retries its
//! request. A newer daemon is never handed to an older binary implicitly;
//! `diakonos daemon-upgrade` does that on request.
//!
//! Protocol 1 (before these rules) has no hand-over request: [`legacy`]
//! recognises such a daemon, and the client hands it over by the crash
//! path (SPEC §7) instead.

use std::io::{self, Read};
use std::path::PathBuf;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

mod frame;
pub mod legacy;

pub use frame::*;

/// Bump whenever a [`Request`] or [`Response`] changes shape. Stable
/// requests and replies keep their form across versions (module docs).
pub const PROTOCOL_VERSION: u32 = 4;
/// The version field of a stable request (never a real protocol version).
pub const STABLE: u32 = 0;
/// Tests only: makes a client and a daemon of this binary claim another
/// protocol version, to exercise a real version mismatch and hand-over.
pub const TEST_VERSION_ENV: &str = "DIAKONOS_TEST_PROTOCOL_VERSION";
/// A client that starts a daemon names here the descriptor (one end of a
/// socket pair) on which the daemon says, with one byte, that it listens;
/// the client waits for that instead of trying to connect on a timer.
pub const READY_FD_ENV: &str = "DIAKONOS_READY_FD";
/// A client that starts a daemon after a hand-over (SPEC §17) names here,
/// comma-separated, the descriptors the old daemon sent with its `Bye`:
/// its lock, its notify socket and its units' sockets (`daemon::handed`).
pub const HANDED_FDS_ENV: &str = "DIAKONOS_HANDED_FDS";
/// The largest request body the daemon accepts (SPEC §8).
pub const MAX_FRAME: usize = 1 << 20;
/// The largest reply body: a `list` of many thousand units is larger than
/// any request, and comes from the trusted side.
pub const MAX_REPLY: usize = 64 << 20;

/// The protocol version this process speaks: [`PROTOCOL_VERSION`], unless
/// [`TEST_VERSION_ENV`] names another (non-zero) one.
pub fn version() -> u32 {
    std::env::var(TEST_VERSION_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<u32>().ok())
        .filter(|&v| v != STABLE)
        .unwrap_or(PROTOCOL_VERSION)
}

/// bincode's standard config, with a decode limit so a lying length inside a
/// payload cannot make us allocate more than a frame's worth.
fn config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<MAX_FRAME>()
}

fn reply_config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<MAX_REPLY>()
}

/// Every request and reply body starts with these bytes, then the version:
/// together they tell "another diakonos version" apart from garbage.
pub const MAGIC: [u8; 4] = *b"DKNS";

/// The form byte of a reply carrying a [`StableReply`] (wire rule 5).
pub const REPLY_STABLE: u8 = 0;
/// The form byte of a reply carrying a [`Response`] of the daemon's version.
pub const REPLY_CURRENT: u8 = 1;

/// The first bytes of every body: [`MAGIC`], then `version` as a bincode varint.
pub fn header(version: u32) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    // Encoding a u32 into a Vec cannot fail.
    let _ = bincode::serde::encode_into_std_write(version, &mut out, config());
    out
}

/// A request as the client means it. On the wire it takes the stable or
/// the versioned form (module docs), see [`encode_request`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestFrame {
    pub magic: [u8; 4],
    /// The client's protocol version ([`STABLE`] once decoded from a
    /// stable request).
    pub version: u32,
    /// The service dir the user named (absolute), if any; the daemon refuses
    /// requests naming a different one than its own.
    pub service_dir: Option<PathBuf>,
    pub request: Request,
}

impl RequestFrame {
    /// A request of this process's protocol version.
    pub fn new(request: Request, service_dir: Option<PathBuf>) -> RequestFrame {
        RequestFrame {
            magic: MAGIC,
            version: version(),
            service_dir,
            request,
        }
    }
}

/// The requests of the stable form. NEVER reorder, remove or change these:
/// every later daemon decodes them (wire rule 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StableOp {
    Kill,
    DaemonStatus,
    HandOver,
}

/// The whole body of a stable request. NEVER change (wire rule 3).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct StableRequest {
    magic: [u8; 4],
    version: u32,
    op: StableOp,
    service_dir: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    List,
    Start(Vec<String>),
    Stop(Vec<String>),
    Restart(Vec<String>),
    Status(String),
    DaemonStatus,
    Reload,
    Enable(Vec<String>),
    Disable(Vec<String>),
    /// Stop every service, then exit.
    Kill,
    /// Write the state for a successor and exit, leaving every service
    /// running (SPEC §17).
    HandOver,
    /// Re-read just these units' files and apply them as `reload` would
    /// (added, changed, or dropped when the file is gone); nothing else
    /// is touched (SPEC §18: `run`, `delete`). A changed running unit is
    /// not restarted: the new definition takes over at its next start.
    Load(Vec<String>),
    /// Why a unit is not up (SPEC §12).
    Why(String),
    /// Answered (a `Job` reply) once every unit is in the condition, one
    /// waited on for `up` failed, or the timeout passed (SPEC §12).
    Wait {
        names: Vec<String>,
        until: WaitFor,
        timeout_ms: Option<u64>,
    },
    /// The `[timer]` units: schedule, last and next run.
    Timers,
    /// Stay connected and get a `Response::Event` per state change of these
    /// units (all when empty).
    Events(Vec<String>),
    /// What plain `list` shows, and nothing more ([`ListRow`]): a smaller
    /// reply than `List`'s, built, sent and decoded faster (SPEC §9).
    ListRows,
}

/// The condition of `wait --for`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum WaitFor {
    Up,
    Running,
    Healthy,
    Exited,
    Inactive,
    Failed,
}

impl WaitFor {
    pub const ALL: [WaitFor; 6] = [
        WaitFor::Up,
        WaitFor::Running,
        WaitFor::Healthy,
        WaitFor::Exited,
        WaitFor::Inactive,
        WaitFor::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            WaitFor::Up => "up",
            WaitFor::Running => "running",
            WaitFor::Healthy => "healthy",
            WaitFor::Exited => "exited",
            WaitFor::Inactive => "inactive",
            WaitFor::Failed => "failed",
        }
    }

    /// Whether a failed unit can never meet it (it waits for the unit up).
    pub fn means_up(self) -> bool {
        matches!(self, WaitFor::Up | WaitFor::Running | WaitFor::Healthy)
    }
}

impl Request {
    /// The kind of request, for the daemon's log (see [`Response::kind`]).
    pub fn kind(&self) -> &'static str {
        match self {
            Request::List => "List",
            Request::Start(_) => "Start",
            Request::Stop(_) => "Stop",
            Request::Restart(_) => "Restart",
            Request::Status(_) => "Status",
            Request::DaemonStatus => "DaemonStatus",
            Request::Reload => "Reload",
            Request::Enable(_) => "Enable",
            Request::Disable(_) => "Disable",
            Request::Kill => "Kill",
            Request::HandOver => "HandOver",
            Request::Load(_) => "Load",
            Request::Why(_) => "Why",
            Request::Wait { .. } => "Wait",
            Request::Timers => "Timers",
            Request::Events(_) => "Events",
            Request::ListRows => "ListRows",
        }
    }

    /// Whether the daemon answers it at once (no job waits for services):
    /// a client may give up on a daemon that does not.
    pub fn answered_at_once(&self) -> bool {
        matches!(
            self,
            Request::List
                | Request::ListRows
                | Request::Status(_)
                | Request::DaemonStatus
                | Request::Why(_)
                | Request::Timers
                | Request::Reload
                | Request::Load(_)
                | Request::Enable(_)
                | Request::Disable(_)
        )
    }

    /// The stable form of this request, if it has one (wire rule 3).
    pub fn stable_op(&self) -> Option<StableOp> {
        match self {
            Request::Kill => Some(StableOp::Kill),
            Request::DaemonStatus => Some(StableOp::DaemonStatus),
            Request::HandOver => Some(StableOp::HandOver),
            _ => None,
        }
    }
}

impl From<StableOp> for Request {
    fn from(op: StableOp) -> Request {
        match op {
            StableOp::Kill => Request::Kill,
            StableOp::DaemonStatus => Request::DaemonStatus,
            StableOp::HandOver => Request::HandOver,
        }
    }
}

/// The states of SPEC §4, as they appear on the wire and in JSON.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum StateName {
    #[default]
    Inactive,
    Waiting,
    Starting,
    Running,
    Stopping,
    Restarting,
    Exited,
    Failed,
    Invalid,
}

impl StateName {
    pub fn as_str(self) -> &'static str {
        match self {
            StateName::Inactive => "inactive",
            StateName::Waiting => "waiting",
            StateName::Starting => "starting",
            StateName::Running => "running",
            StateName::Stopping => "stopping",
            StateName::Restarting => "restarting",
            StateName::Exited => "exited",
            StateName::Failed => "failed",
            StateName::Invalid => "invalid",
        }
    }
}

/// How a process ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LastExit {
    Code(i32),
    /// Signal name, e.g. "SIGKILL".
    Signal(String),
    /// The process was adopted after a daemon restart and its status could not be known.
    Unknown(()),
}

/// How the reason of a unit whose file is not loaded yet begins (`list`
/// shows every unit file, SPEC §5): `--all` leaves such units out.
pub const NOT_LOADED: &str = "not loaded yet";

/// How the reason of a running unit whose file was since broken begins.
pub const NO_LONGER_LOADS: &str = "the unit file no longer loads";

/// One row of `list`, and the core of `status`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UnitInfo {
    pub name: String,
    pub state: StateName,
    pub pid: Option<u32>,
    pub uptime_secs: Option<u64>,
    pub restarts: u32,
    pub description: String,
    pub last_exit: Option<LastExit>,
    /// Why it is failed or invalid, or why it is restarting.
    pub reason: Option<String>,
    /// While `restarting`: the launch that comes next.
    pub next_attempt: Option<NextAttempt>,
    /// `Protected = true`: left out of `stop --all` and `restart --all`.
    pub protected: bool,
    /// The process groups of its current run (for `stats`, read by the
    /// client from /proc); empty when nothing runs.
    pub pgids: Vec<u32>,
    /// An on-demand `[socket]` unit waiting for its first connection: the
    /// addresses it listens on.
    pub listening: Option<String>,
    /// The unit's file changed on disk since it was loaded.
    pub changed_on_disk: bool,
    /// `starting`, `healthy` or `unhealthy` while a unit with `[health]`
    /// runs; None otherwise.
    #[serde(default)]
    pub health: Option<String>,
    /// Failed probes in a row.
    #[serde(default)]
    pub health_failures: u32,
    /// The service's last sd_notify `STATUS=` while it runs.
    #[serde(default)]
    pub status_text: Option<String>,
    /// The last health probes, oldest first (as in [`UnitStatus`]).
    #[serde(default)]
    pub probes: Vec<ProbeRecord>,
    /// Hook triggers skipped (HookRateLimitSec, or the hook still ran).
    #[serde(default)]
    pub hooks_skipped: u32,
    /// The sub-state of a running unit: `reloading` (sd_notify RELOADING=1
    /// until READY=1), with for how long (seconds).
    #[serde(default)]
    pub substate: Option<(String, u64)>,
}

/// One health probe, as `status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeRecord {
    /// Unix seconds.
    pub time: u64,
    pub duration_ms: u64,
    pub ok: bool,
    /// The first line of what passed or why it failed (`HTTP 200`, `exit 1`).
    pub output: String,
}

/// The next launch of a `restarting` unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct NextAttempt {
    /// Launches since the last explicit start or restart, this one included
    /// (the explicit start is attempt 1).
    pub attempt: u32,
    /// How long until it, in milliseconds.
    pub in_ms: u64,
}

/// One row of `timers`: times as RFC 3339 strings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimerRow {
    pub name: String,
    pub schedule: String,
    pub last_run: Option<String>,
    pub last_result: Option<String>,
    pub next_run: Option<String>,
    pub left_secs: Option<f64>,
    /// Enabled (so armed); a disabled timer unit shows with no next run.
    pub armed: bool,
}

/// `status NAME`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnitStatus {
    pub info: UnitInfo,
    pub path: PathBuf,
    pub kind: String,
    pub enabled: bool,
    pub requires: Vec<String>,
    pub wants: Vec<String>,
    pub after: Vec<String>,
    pub required_by: Vec<String>,
    pub log_path: PathBuf,
    /// Units that may not run with it: its Conflicts and the units whose
    /// Conflicts name it (SPEC §18).
    pub conflicts: Vec<String>,
    /// The limits and identity the unit sets (SPEC §13), as `Key=value`.
    pub limits: Vec<String>,
    /// The last health probes, oldest first.
    #[serde(default)]
    pub probes: Vec<ProbeRecord>,
    /// WatchdogSec in milliseconds (0: none).
    #[serde(default)]
    pub watchdog_ms: u64,
    /// A `[timer]` unit's schedule, last and next run (as a `timers` row).
    #[serde(default)]
    pub timer: Option<TimerRow>,
}

/// `daemon-status`, a stable reply: fields are only ever appended (wire
/// rule 6).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DaemonInfo {
    pub pid: u32,
    /// The daemon's diakonos version (`CARGO_PKG_VERSION`).
    pub version: String,
    pub uptime_secs: u64,
    pub home: PathBuf,
    pub service_dir: PathBuf,
    /// Count per state name (as [`StateName::as_str`]), only states with at
    /// least one unit. Strings, so a new state breaks no older client.
    pub units: Vec<(String, u32)>,
    pub rss_bytes: u64,
    /// The protocol version the daemon speaks.
    pub protocol: u32,
    /// What services of this daemon get (what `verify` checks against).
    /// None from an older daemon. Boxed: `Response` stays small.
    #[serde(default, deserialize_with = "absent_is_default")]
    pub services: Option<Box<ServiceEnv>>,
    /// Services write to the daemon's stdout and stderr (`daemon --init`
    /// without `--file-logs`): there are no log files. False from an
    /// older daemon.
    #[serde(default, deserialize_with = "absent_is_default")]
    pub output_to_daemon: bool,
}

/// What a daemon's services get, for `verify` (part of [`DaemonInfo`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceEnv {
    /// The PATH services get (the daemon's, or the default when it has none).
    pub path: String,
    /// The daemon's effective uid (services without User run as it).
    pub uid: u32,
}

/// A field appended to a stable reply (wire rule 6): the reply of an older
/// daemon ends before it, which bincode reports as an error at that field;
/// it reads as the default instead (nothing follows it to misread).
fn absent_is_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(T::deserialize(d).unwrap_or_default())
}

/// The outcome of one unit in a start/stop/restart/enable/disable job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobResult {
    pub name: String,
    pub ok: bool,
    pub state: StateName,
    /// On failure: why. On success: an optional remark ("already running").
    pub message: Option<String>,
}

/// What `reload` changed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReloadReport {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub changed: Vec<String>,
    /// Unit name and the error that stops its new file loading.
    pub invalid: Vec<(String, String)>,
}

impl ReloadReport {
    /// One line for a log: what changed, by kind (`no change` when nothing).
    pub fn summary(&self) -> String {
        let invalid: Vec<String> = self.invalid.iter().map(|(n, _)| n.clone()).collect();
        let parts: Vec<String> = [
            ("added", &self.added),
            ("removed", &self.removed),
            ("changed", &self.changed),
            ("invalid", &invalid),
        ]
        .into_iter()
        .filter(|(_, names)| !names.is_empty())
        .map(|(what, names)| format!("{what} {}", names.join(" ")))
        .collect();
        if parts.is_empty() {
            "no change".to_owned()
        } else {
            parts.join("; ")
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Response {
    Units(Vec<UnitInfo>),
    Status(Box<UnitStatus>),
    /// Boxed: the other replies stay small.
    Daemon(Box<DaemonInfo>),
    Job(Vec<JobResult>),
    Reloaded(ReloadReport),
    /// The daemon is exiting now that every service is stopped.
    Bye,
    /// The request could not be carried out; one line, plus an optional hint.
    Error {
        message: String,
        hint: Option<String>,
    },
    Why(WhyReport),
    Timers(Vec<TimerRow>),
    /// One state change, on an `Events` stream.
    Event(EventRecord),
    /// The rows of plain `list`.
    Rows(Vec<ListRow>),
}

/// One row of plain `list`: the columns it shows, and what fills its last
/// column (failure reason, changed file, listening sockets, STATUS=, or the
/// description). `list --json`, `--wide` and `stats` ask for [`UnitInfo`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ListRow {
    pub name: String,
    pub state: StateName,
    pub pid: Option<u32>,
    pub uptime_secs: Option<u64>,
    pub restarts: u32,
    pub description: String,
    pub reason: Option<String>,
    pub changed_on_disk: bool,
    pub listening: Option<String>,
    pub status_text: Option<String>,
    /// The sub-state (`reloading`) and health verdict beside the state.
    pub substate: Option<String>,
    pub health: Option<String>,
}

impl From<&UnitInfo> for ListRow {
    fn from(u: &UnitInfo) -> ListRow {
        ListRow {
            name: u.name.clone(),
            state: u.state,
            pid: u.pid,
            uptime_secs: u.uptime_secs,
            restarts: u.restarts,
            description: u.description.clone(),
            reason: u.reason.clone(),
            changed_on_disk: u.changed_on_disk,
            listening: u.listening.clone(),
            status_text: u.status_text.clone(),
            substate: u.substate.as_ref().map(|(s, _)| s.clone()),
            health: u.health.clone(),
        }
    }
}

/// `why NAME`: whether it is up, and one line per cause (indented per
/// dependency followed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WhyReport {
    pub up: bool,
    pub lines: Vec<String>,
}

/// A state change as `events` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventRecord {
    /// Unix time in milliseconds.
    pub time_ms: u64,
    pub unit: String,
    pub from: StateName,
    pub to: StateName,
    pub reason: Option<String>,
    pub pid: Option<u32>,
    pub last_exit: Option<LastExit>,
}

/// A reply every client from protocol 2 on can read (wire rules 5 and 6):
/// to stable requests, and to requests the daemon cannot take (another
/// version, a bad frame). Only ever append fields to a variant, and new
/// variants after the last.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum StableReply {
    /// The daemon is exiting: after `Kill` once every service is stopped;
    /// after `HandOver` at once, with every service left running.
    Bye {},
    /// The request could not be carried out; one line, plus an optional hint.
    Error {
        message: String,
        hint: Option<String>,
    },
    /// `daemon-status`.
    Daemon(DaemonInfo),
}

impl StableReply {
    /// The stable form of a reply; a reply that has none (never the answer
    /// to a stable request) becomes an error.
    pub fn from_response(resp: &Response) -> StableReply {
        match resp {
            Response::Bye => StableReply::Bye {},
            Response::Error { message, hint } => StableReply::Error {
                message: message.clone(),
                hint: hint.clone(),
            },
            Response::Daemon(info) => StableReply::Daemon((**info).clone()),
            other => StableReply::Error {
                message: format!(
                    "the daemon has no stable form for the reply {}",
                    other.kind()
                ),
                hint: None,
            },
        }
    }

    pub fn into_response(self) -> Response {
        match self {
            StableReply::Bye {} => Response::Bye,
            StableReply::Error { message, hint } => Response::Error { message, hint },
            StableReply::Daemon(info) => Response::Daemon(Box::new(info)),
        }
    }
}

impl Response {
    /// The kind of reply, for a message about one that was not expected
    /// (its whole Debug text would put every reply type's Debug in the
    /// binary, for a line no one reads past the kind).
    pub fn kind(&self) -> &'static str {
        match self {
            Response::Units(_) => "Units",
            Response::Status(_) => "Status",
            Response::Daemon(_) => "Daemon",
            Response::Job(_) => "Job",
            Response::Reloaded(_) => "Reloaded",
            Response::Bye => "Bye",
            Response::Error { .. } => "Error",
            Response::Why(_) => "Why",
            Response::Timers(_) => "Timers",
            Response::Event(_) => "Event",
            Response::Rows(_) => "Rows",
        }
    }

    pub fn error(message: impl Into<String>, hint: Option<&str>) -> Response {
        Response::Error {
            message: message.into(),
            hint: hint.map(str::to_owned),
        }
    }
}

#[cfg(test)]
mod tests;
