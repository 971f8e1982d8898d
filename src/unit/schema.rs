//! The one key table: every unit key declared once, with its section, the
//! shape of its value, its default and a one-line meaning. Shape checks,
//! "did you mean", the defaults `build` applies and the README's key table
//! come from it (a test keeps the README's copy equal to [`markdown_table`]).
//! Also the systemd keys diakonos knows it does not take.

use crate::hash::HashMap;
use std::sync::OnceLock;
use std::time::Duration;

use toml::de::DeValue;

use super::{MAX_LOG_FILES, MAX_SECS};

/// What `"infinity"` means for a duration key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Infinity {
    /// Nothing: it is an error (a restart delay).
    Refused,
    /// Zero, which the key takes as "no limit" (TimeoutStartSec).
    Zero,
    /// The largest duration, about 31 years: "never" (TimeoutStopSec).
    Max,
}

impl Infinity {
    pub(super) fn duration(self) -> Option<Duration> {
        match self {
            Infinity::Refused => None,
            Infinity::Zero => Some(Duration::ZERO),
            Infinity::Max => Some(Duration::from_secs(MAX_SECS as u64)),
        }
    }
}

/// What a key's value must look like in TOML terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Str,
    StrList,
    /// A duration; what the string "infinity" means for this key.
    Secs(Infinity),
    /// An integer from 0 to the given maximum.
    Count(i64),
    Bool,
    Signal,
    /// An rlimit: an integer or a string (`"soft:hard"`, `"infinity"`, `"512M"`).
    Limit,
    /// A signed integer in the given range (Nice, OOMScoreAdjust).
    Int(i64, i64),
    /// A size in bytes: an integer or a string with a `K`/`M`/`G` suffix.
    Size,
    /// A string or an array of strings (EnvironmentFile).
    StrOrList,
}

impl Kind {
    pub(super) fn expected(self) -> &'static str {
        match self {
            Kind::Str => "a string",
            Kind::StrList => "an array of strings (like [\"a\", \"b\"])",
            Kind::Secs(_) => {
                "a number of seconds (like 5 or 0.5) or a time span (like \"1min 30s\")"
            }
            Kind::Count(_) => "a non-negative integer",
            Kind::Bool => "true or false",
            Kind::Signal => "a signal name (like \"SIGTERM\") or number",
            Kind::Limit => "a number or a string like \"1024:4096\", \"infinity\" or \"512M\"",
            Kind::Int(..) => "an integer",
            Kind::Size => "a number of bytes or a size like \"10M\"",
            Kind::StrOrList => "a string or an array of strings",
        }
    }

    pub(super) fn accepts(self, value: &DeValue<'_>) -> bool {
        match self {
            Kind::Str => value.is_str(),
            Kind::StrList => value.is_array(),
            Kind::Secs(_) => value.is_integer() || value.is_float() || value.is_str(),
            Kind::Count(_) => value.is_integer(),
            Kind::Bool => value.is_bool(),
            Kind::Signal => value.is_str() || value.is_integer(),
            Kind::Limit => value.is_str() || value.is_integer(),
            Kind::Int(..) => value.is_integer(),
            Kind::Size => value.is_integer() || value.is_str(),
            Kind::StrOrList => value.is_str() || value.is_array(),
        }
    }

    /// The accepted range, for "`Key` is X; expected ..." messages.
    pub(super) fn range(self) -> String {
        match self {
            Kind::Secs(_) => format!("a number of seconds from 0 to {MAX_SECS}"),
            Kind::Count(max) => format!("an integer from 0 to {max}"),
            Kind::Signal => SIGNAL_EXPECTED.to_string(),
            Kind::Int(min, max) => format!("an integer from {min} to {max}"),
            other => other.expected().to_string(),
        }
    }
}

/// Whether a number literal fits the types serde will read it into: i64
/// and finite f64 (`1e400` does not; `inf` is fine and range-checked later).
pub(super) fn number_fits(value: &DeValue<'_>) -> bool {
    match value {
        DeValue::Integer(n) => i64::from_str_radix(n.as_str(), n.radix()).is_ok(),
        DeValue::Float(f) => f
            .as_str()
            .parse::<f64>()
            .is_ok_and(|v| v.is_finite() || f.as_str().contains("inf")),
        _ => true,
    }
}

pub(super) const SIGNAL_EXPECTED: &str =
    "a signal name like \"SIGTERM\" or \"TERM\", or a number like 15";

/// A section of a unit file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Unit,
    Service,
    Socket,
    Timer,
    Health,
}

impl Section {
    pub const ALL: [Section; 5] = [
        Section::Unit,
        Section::Service,
        Section::Socket,
        Section::Timer,
        Section::Health,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Section::Unit => "unit",
            Section::Service => "service",
            Section::Socket => "socket",
            Section::Timer => "timer",
            Section::Health => "health",
        }
    }

    /// `[unit]`/`[Unit]` and `[service]`/`[Service]` (systemd's spelling).
    pub fn from_header(header: &str) -> Option<Section> {
        match header {
            "unit" | "Unit" => Some(Section::Unit),
            "service" | "Service" => Some(Section::Service),
            "socket" | "Socket" => Some(Section::Socket),
            "timer" | "Timer" => Some(Section::Timer),
            "health" | "Health" => Some(Section::Health),
            _ => None,
        }
    }
}

/// A key's default: a value written as in a unit file (which `build`
/// applies, so the table and the code cannot disagree), or words for a
/// default that is not a literal value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyDefault {
    Value(&'static str),
    Note(&'static str),
}

/// One unit key, declared once.
#[derive(Debug, Clone, Copy)]
pub struct Key {
    pub section: Section,
    pub name: &'static str,
    pub(super) kind: Kind,
    pub default: KeyDefault,
    /// What it means, one line (the README's key table shows it; read only
    /// by the test that keeps the README equal to [`markdown_table`]).
    #[allow(dead_code)]
    pub doc: &'static str,
}

const fn key(
    section: Section,
    name: &'static str,
    kind: Kind,
    default: KeyDefault,
    doc: &'static str,
) -> Key {
    Key {
        section,
        name,
        kind,
        default,
        doc,
    }
}

use KeyDefault::{Note, Value};
use Section::{Health as H, Service as S, Socket as K, Timer as T, Unit as U};

/// Every unit key. A new key is a row here, a field of `Unit` and its line
/// in `build`; shape checks, did-you-mean, defaults and the README's key
/// table follow from the row.
pub const KEYS: &[Key] = &[
    key(U, "Description", Kind::Str, Value("\"\""), "shown by `list` and `status`"),
    key(U, "Requires", Kind::StrList, Value("[]"), "pull in, start after, fail with it (see below)"),
    key(U, "Wants", Kind::StrList, Value("[]"), "pull in, start after; its failure is tolerated; a missing unit is a warning"),
    key(U, "After", Kind::StrList, Value("[]"), "start after these when they are starting too; ordering only"),
    key(U, "StartLimitBurst", Kind::Count(u32::MAX as i64), Value("5"), "more starts than this inside the interval: `failed`, \"start limit hit\"; 0 = no limit"),
    key(U, "StartLimitIntervalSec", Kind::Secs(Infinity::Max), Value("10"), "the window of the start limit; `\"infinity\"`: every start counts"),
    key(S, "Type", Kind::Str, Value("\"simple\""), "`simple`: up once spawned (its program, working directory and log checked first; with `User`, `Group` or `SupplementaryGroups`, once its exec is done). `oneshot`: up once it exited 0 (then `exited`, or `running` with RemainAfterExit). `forking`: up once the start command exited 0 and the main process is known (PIDFile, else the one process left in its group, else the one child the daemon inherited as subreaper). `notify`: up when the service sends `READY=1` to `$NOTIFY_SOCKET` (sd_notify)"),
    key(S, "ExecStart", Kind::Str, Note("required"), "the command, split like a shell (quotes, backslashes), with `${VAR}`, `$VAR` and `$$` expanded from Environment; no shell runs it, so write `sh -c '...'` for pipes and `&&`"),
    key(S, "ExecStop", Kind::Str, Note("none"), "runs (same user, directory, environment, log) before KillSignal is sent; variables as in ExecStart"),
    key(S, "Restart", Kind::Str, Value("\"on-failure\""), "`always`: after any exit. `on-failure`: after a non-zero exit or a death by signal. `no`: never"),
    key(S, "RestartSec", Kind::Secs(Infinity::Refused), Value("1"), "delay before a restart; fractions and time spans (`\"500ms\"`) allowed; 0 restarts at once"),
    key(S, "RestartMaxDelaySec", Kind::Secs(Infinity::Refused), Note("= RestartSec"), "above RestartSec: the delay doubles per consecutive failure up to this, minus up to 25% jitter; the backoff resets once the service stays up for this long"),
    key(S, "TimeoutStartSec", Kind::Secs(Infinity::Zero), Value("30"), "bounds `starting` (a oneshot's run); then it is stopped and judged by `Restart`; 0 or `\"infinity\"` = no limit"),
    key(S, "TimeoutStopSec", Kind::Secs(Infinity::Max), Value("10"), "then SIGKILL to the process group; 0 = SIGKILL right behind KillSignal; `\"infinity\"` = never SIGKILL"),
    key(S, "KillSignal", Kind::Signal, Value("\"SIGTERM\""), "`SIGINT`, `INT`, `2` ..."),
    key(S, "WorkingDirectory", Kind::Str, Note("the service dir"), "relative paths resolve against the service dir"),
    key(S, "Environment", Kind::StrList, Value("[]"), "`KEY=VALUE` entries, added to the daemon's environment"),
    key(S, "User", Kind::Str, Note("none"), "switch to this user (and its groups, HOME, USER, LOGNAME, SHELL) when the daemon runs as root; a clear error otherwise (unless it names the daemon's own user). A number is a uid; one with no passwd entry runs with gid = the same number, no supplementary groups, HOME=/, SHELL=/bin/sh, USER=LOGNAME=the number"),
    key(S, "RemainAfterExit", Kind::Bool, Value("false"), "oneshot: stay `running` after a successful exit"),
    key(S, "PIDFile", Kind::Str, Note("none"), "`forking`: the file the service writes its main pid to; relative paths resolve against the service dir"),
    key(S, "LogMaxBytes", Kind::Size, Value("10485760"), "diakonos extension: rotate the service log past this size: bytes, or `\"10M\"` (`K`/`M`/`G`, 1024-based); 0 or `\"infinity\"` = never (see Durability)"),
    key(S, "LogMaxFiles", Kind::Count(MAX_LOG_FILES), Value("3"), "diakonos extension: how many rotated files (`NAME.log.1` ...) to keep"),
    key(U, "Protected", Kind::Bool, Value("false"), "left out of `stop --all` and `restart --all`; it stops only when named (or by `kill`)"),
    key(U, "Conflicts", Kind::StrList, Value("[]"), "starting this unit stops these first, and starting one of them stops this one; a conflict with one of its own Requires/Wants is an error"),
    key(S, "LimitNOFILE", Kind::Limit, Note("the daemon's"), "open files: `N`, `\"soft:hard\"` or `\"infinity\"` (as many as may be had: fs.nr_open, or the daemon's own hard limit without CAP_SYS_RESOURCE); like every Limit* key, set in the child before exec; a number above the daemon's hard limit (without root) fails the start"),
    key(S, "LimitNPROC", Kind::Limit, Note("the daemon's"), "processes of the user"),
    key(S, "LimitCORE", Kind::Limit, Note("the daemon's"), "core file size; byte limits take `K`, `M`, `G`, `T` (1024-based; `\"1.5G\"` too)"),
    key(S, "LimitAS", Kind::Limit, Note("the daemon's"), "address space, bytes"),
    key(S, "LimitDATA", Kind::Limit, Note("the daemon's"), "data segment, bytes"),
    key(S, "LimitSTACK", Kind::Limit, Note("the daemon's"), "stack, bytes"),
    key(S, "LimitMEMLOCK", Kind::Limit, Note("the daemon's"), "locked memory, bytes"),
    key(S, "LimitFSIZE", Kind::Limit, Note("the daemon's"), "file size, bytes"),
    key(S, "LimitCPU", Kind::Limit, Note("the daemon's"), "CPU time, seconds, or a time span (`\"1min\"`)"),
    key(S, "LimitRTPRIO", Kind::Limit, Note("the daemon's"), "real-time priority"),
    key(S, "LimitNICE", Kind::Limit, Note("the daemon's"), "nice ceiling (20 - nice)"),
    key(S, "LimitSIGPENDING", Kind::Limit, Note("the daemon's"), "queued signals"),
    key(S, "LimitMSGQUEUE", Kind::Limit, Note("the daemon's"), "POSIX message queues, bytes"),
    key(S, "Nice", Kind::Int(-20, 19), Note("the daemon's"), "-20..19; below the daemon's needs root (else the start fails saying so)"),
    key(S, "OOMScoreAdjust", Kind::Int(-1000, 1000), Note("the daemon's"), "-1000..1000, written to `/proc/self/oom_score_adj` before exec; lowering it needs root"),
    key(S, "UMask", Kind::Str, Note("the daemon's"), "octal string, e.g. `\"0027\"`"),
    key(S, "Group", Kind::Str, Note("User's group"), "primary group (name or id); with User, or alone when the daemon runs as root"),
    key(S, "SupplementaryGroups", Kind::StrOrList, Note("User's groups"), "extra groups (names or ids; an array, or one string of names separated by spaces); needs root"),
    key(S, "EnvironmentFile", Kind::StrOrList, Note("none"), "files of `KEY=VALUE` lines (`#` comments, quotes, `export`) read at each start; a leading `-` makes one optional; Environment wins; relative paths resolve against the service dir"),
    key(S, "MemoryMax", Kind::Limit, Note("none"), "`\"200M\"` (bytes, `K`/`M`/`G`/`T`), or `\"50%\"` of the machine's memory: when the RSS of the service's processes (its groups, and descendants that left them) stays above it for 2 checks in a row, it is stopped and restarted per `Restart` with reason `memory limit: RSS X > Y`; `\"infinity\"` = no limit"),
    key(S, "MemoryCheckSec", Kind::Secs(Infinity::Refused), Value("5"), "how often MemoryMax is checked, only while the service runs (no wake-ups otherwise); at least 0.1"),
    key(S, "WatchPaths", Kind::StrList, Value("[]"), "files and directories (recursively, at most 10 000 watches; relative to WorkingDirectory) whose change restarts the running service"),
    key(S, "WatchDebounceSec", Kind::Secs(Infinity::Refused), Value("1"), "the quiet period after a change under WatchPaths before the one restart"),
    key(K, "ListenStream", Kind::StrList, Value("[]"), "stream sockets the daemon binds and passes from fd 3 (`LISTEN_FDS`): `\"127.0.0.1:8080\"`, `\"[::1]:8080\"` (IP literals only) or an absolute Unix socket path"),
    key(K, "ListenDatagram", Kind::StrList, Value("[]"), "datagram sockets, as ListenStream; passed after the stream sockets"),
    key(K, "FileDescriptorName", Kind::Str, Note("the unit name"), "the name of every socket of the unit in `LISTEN_FDNAMES`"),
    key(K, "SocketMode", Kind::Str, Value("\"0660\""), "octal permissions of the Unix sockets"),
    key(K, "Backlog", Kind::Count(65535), Value("128"), "listen() backlog of the stream sockets: connections waiting there during a restart are served by the new process"),
    key(K, "Activation", Kind::Str, Value("\"eager\""), "`eager`: bound when the unit first starts. `on-demand`: bound while the unit is enabled; the first connection starts it"),
    key(T, "OnCalendar", Kind::StrOrList, Note("none"), "a cron expression: 5 fields (`\"30 2 * * *\"`), 6 with seconds first (`\"*/10 * * * * *\"`), or `@hourly`, `@daily`, `@weekly`, `@monthly`, `@yearly`, or a list of them (the earliest elapse counts); the unit starts at each elapse while it is enabled"),
    key(T, "OnBootSec", Kind::Secs(Infinity::Refused), Note("none"), "start the enabled unit this long after the daemon starts (the first of the daemons that took over from each other: an upgrade or a crash does not fire it again)"),
    key(T, "OnUnitActiveSec", Kind::Secs(Infinity::Refused), Note("none"), "start the enabled unit again this long after it last started (by the timer or not; first: this long after it is armed)"),
    key(T, "TimeZone", Kind::Str, Value("\"local\""), "zone of OnCalendar: `local` (the system's), `UTC`, or an Area/City from the system's zone files"),
    key(T, "RandomizedDelaySec", Kind::Secs(Infinity::Refused), Note("none"), "a random delay up to this is added to each elapse (spreads many boxes' nightly jobs)"),
    key(T, "Overlap", Kind::Str, Value("\"skip\""), "an elapse while the unit still runs: `skip` it, or `restart` the unit"),
    key(T, "Persistent", Kind::Bool, Value("false"), "the last OnCalendar elapse is kept in the state file; one missed while the timer was not armed (no daemon ran, or the unit was disabled) runs the job once as soon as it is armed again"),
    key(U, "OnFailure", Kind::StrList, Value("[]"), "start these units when this one ends `failed` (no restart left), with `DIAKONOS_MONITOR_*` in their environment"),
    key(U, "OnRestart", Kind::StrList, Value("[]"), "start these units on each unexpected exit that will be restarted, with `DIAKONOS_MONITOR_*`"),
    key(U, "HookRateLimitSec", Kind::Secs(Infinity::Refused), Value("300"), "at most one hook start per (unit, OnFailure/OnRestart) in this window; a trigger while the hook still runs is skipped"),
    key(S, "WatchdogSec", Kind::Secs(Infinity::Zero), Value("0"), "once up, the service must send `WATCHDOG=1` to `$NOTIFY_SOCKET` at least this often (any Type; it gets `WATCHDOG_USEC` and `WATCHDOG_PID`), else it gets WatchdogSignal, is stopped and is restarted per `Restart` (\"watchdog timeout\"); 0 = off"),
    key(S, "WatchdogSignal", Kind::Signal, Value("\"SIGABRT\""), "sent to the process group when the watchdog runs out"),
    key(S, "NotifyAccess", Kind::Str, Value("\"group\""), "whose sd_notify messages count: `group` (the main process or any process of its group), `main`, `none`; written as `main` or `group` on a service of any Type, it gets `$NOTIFY_SOCKET` (for STATUS=, MAINPID=, ...; READY=1 counts only for notify)"),
    key(H, "Http", Kind::Str, Note("none"), "probe: `http://IP:PORT/PATH`; one `GET` (HTTP/1.1, `Connection: close`) judged on its status line; exactly one of Http, Tcp, Exec"),
    key(H, "Tcp", Kind::Str, Note("none"), "probe: `IP:PORT` (an IP literal or `localhost`: no name lookup); passes once a connection is accepted"),
    key(H, "Exec", Kind::Str, Note("none"), "probe: a command split like ExecStart, run with the service's user, directory and environment in its own process group; passes on exit 0"),
    key(H, "IntervalSec", Kind::Secs(Infinity::Refused), Value("10"), "between probes once healthy"),
    key(H, "TimeoutSec", Kind::Secs(Infinity::Refused), Value("5"), "a probe that takes longer fails (an Exec probe's group is killed)"),
    key(H, "StartPeriodSec", Kind::Secs(Infinity::Refused), Value("0"), "failures inside this window after the spawn do not count"),
    key(H, "StartIntervalSec", Kind::Secs(Infinity::Refused), Value("1"), "probe cadence until the first success"),
    key(H, "FailureThreshold", Kind::Count(u32::MAX as i64), Value("3"), "this many failed probes in a row: unhealthy"),
    key(H, "ExpectStatus", Kind::Str, Value("\"200-399\""), "Http: a status code (`\"204\"`) or a range (`\"200-299\"`)"),
    key(H, "OnUnhealthy", Kind::Str, Value("\"restart\""), "`restart`: stop and restart per `Restart` (a failure for the policy, backoff and start limit). `stop`: stop, leave `failed`. `mark`: only record it"),
    key(H, "Readiness", Kind::Bool, Value("true"), "the unit is up (for `start`, `wait` and dependents) only after its first passing probe, bounded by TimeoutStartSec"),
];

/// Where each key is in [`KEYS`], by name: checking and building one unit
/// looks keys up dozens of times, and scanning the table (comparing names
/// byte by byte) was a tenth of loading a unit.
fn index_of(name: &str) -> Option<usize> {
    static INDEX: OnceLock<HashMap<&'static str, usize>> = OnceLock::new();
    INDEX
        .get_or_init(|| KEYS.iter().enumerate().map(|(i, k)| (k.name, i)).collect())
        .get(name)
        .copied()
}

/// The key called `name`, in whichever section.
pub fn find(name: &str) -> Option<&'static Key> {
    index_of(name).map(|i| &KEYS[i])
}

/// The keys of one section, in table order.
pub fn keys_of(section: Section) -> impl Iterator<Item = &'static Key> {
    KEYS.iter().filter(move |k| k.section == section)
}

/// The default of a key whose default is a literal value, as text (quotes
/// of a string default removed). `Note` defaults are the caller's to apply.
fn default_text(name: &str) -> &'static str {
    match find(name).map(|k| k.default) {
        Some(Value(text)) => text.trim_matches('"'),
        other => {
            debug_assert!(false, "{name} has no literal default: {other:?}");
            ""
        }
    }
}

/// The table's default of a duration key (each parsed once, when the
/// first unit is loaded).
pub(super) fn default_secs(name: &str) -> Duration {
    static PARSED: OnceLock<Vec<Option<Duration>>> = OnceLock::new();
    let parsed = PARSED.get_or_init(|| {
        KEYS.iter()
            .map(|k| match (k.kind, k.default) {
                (Kind::Secs(_), Value(text)) => {
                    let secs = super::values::parse_time_span(text.trim_matches('"')).ok()?;
                    Duration::try_from_secs_f64(secs).ok()
                }
                _ => None,
            })
            .collect()
    });
    match index_of(name).and_then(|i| parsed[i]) {
        Some(secs) => secs,
        None => {
            debug_assert!(false, "{name} has no duration default");
            Duration::ZERO
        }
    }
}

/// The table's default of a count key.
pub(super) fn default_count(name: &str) -> i64 {
    default_text(name).parse().unwrap_or(0)
}

/// The table's default of a string choice (Type, Restart, KillSignal).
pub(super) fn default_str(name: &str) -> &'static str {
    default_text(name)
}

/// The table's default of a boolean key.
pub(super) fn default_bool(name: &str) -> bool {
    default_text(name) == "true"
}

/// The README's key table (`| key | section | default | meaning |`), made
/// from [`KEYS`]; a test keeps the README's copy equal to it.
#[cfg(test)]
pub fn markdown_table() -> String {
    let mut out = String::from("| key | section | default | meaning |\n|---|---|---|---|\n");
    for k in KEYS {
        let default = match k.default {
            Value(text) => format!("`{text}`"),
            Note(text) => text.to_string(),
        };
        out.push_str(&format!(
            "| `{}` | {} | {default} | {} |\n",
            k.name,
            k.section.name(),
            k.doc
        ));
    }
    out
}

/// systemd keys people carry over, with why they are not accepted here.
pub(super) const SYSTEMD_ONLY: &[(&str, &str)] = &[
    (
        "ExecStartPre",
        "diakonos runs only ExecStart; wrap the steps in a script",
    ),
    (
        "ExecStartPost",
        "diakonos runs only ExecStart; wrap the steps in a script",
    ),
    (
        "ExecStopPost",
        "diakonos runs only ExecStop; wrap the steps in a script",
    ),
    (
        "ExecReload",
        "diakonos has no reload action; use `diakonos restart`",
    ),
    (
        "StandardOutput",
        "output always goes to the diakonos log of the unit",
    ),
    (
        "StandardError",
        "output always goes to the diakonos log of the unit",
    ),
    ("Before", "put an After on the other unit instead"),
    ("WantedBy", "use `diakonos enable NAME` instead"),
];

/// How an importer writes a key's value (`import systemd`, `import pm2`),
/// read from the key's row so a key added to the table is imported too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueForm {
    Text,
    List,
    /// Seconds; whether `"infinity"` is accepted.
    Secs {
        infinity: bool,
    },
    Count,
    /// An integer that may be negative (its range is checked on load).
    Int,
    Bool,
    Signal,
}

impl Key {
    pub fn form(&self) -> ValueForm {
        match self.kind {
            Kind::Str => ValueForm::Text,
            Kind::StrList => ValueForm::List,
            // A string or a list: a list is written, which every such key takes.
            Kind::StrOrList => ValueForm::List,
            // "200M", "soft:hard", "infinity" or a number: written as text.
            Kind::Limit | Kind::Size => ValueForm::Text,
            Kind::Int(..) => ValueForm::Int,
            Kind::Secs(inf) => ValueForm::Secs {
                infinity: inf != Infinity::Refused,
            },
            Kind::Count(_) => ValueForm::Count,
            Kind::Bool => ValueForm::Bool,
            Kind::Signal => ValueForm::Signal,
        }
    }
}

/// Why diakonos does not take this systemd key, when it is one it knows.
pub fn systemd_only_reason(name: &str) -> Option<&'static str> {
    SYSTEMD_ONLY
        .iter()
        .find(|(k, _)| *k == name)
        .map(|&(_, why)| why)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BEGIN: &str = "<!-- key table: generated from src/unit/schema.rs -->\n";
    const END: &str = "<!-- end of key table -->";

    #[test]
    fn every_literal_default_reads_as_its_kind() {
        // A `Value` default is valid for its key, so `build` can apply it and the README shows what is applied.
        for k in KEYS {
            let Value(text) = k.default else { continue };
            let plain = text.trim_matches('"');
            let ok = match k.kind {
                Kind::Secs(_) => super::super::values::parse_time_span(plain).is_ok(),
                Kind::Count(max) => plain.parse::<i64>().is_ok_and(|n| (0..=max).contains(&n)),
                Kind::Bool => plain == "true" || plain == "false",
                Kind::Signal => super::super::values::parse_signal_name(plain).is_some(),
                Kind::Size => super::super::limits::parse_size(plain).is_ok(),
                Kind::Str => text.starts_with('"') && text.ends_with('"'),
                Kind::StrList => text == "[]",
                Kind::Limit | Kind::Int(..) | Kind::StrOrList => false,
            };
            assert!(
                ok,
                "{}: default {text:?} does not read as {:?}",
                k.name, k.kind
            );
        }
        assert_eq!(default_secs("TimeoutStartSec"), Duration::from_secs(30));
        assert_eq!(default_count("LogMaxBytes"), 10 * 1024 * 1024);
        assert_eq!(default_str("Type"), "simple");
    }

    #[test]
    fn each_key_is_declared_once_and_systemd_only_keys_are_not_keys() {
        // Key names are unique across sections, and no SYSTEMD_ONLY entry is also a key.
        for (i, k) in KEYS.iter().enumerate() {
            assert!(
                KEYS[i + 1..].iter().all(|o| o.name != k.name),
                "{} twice",
                k.name
            );
            assert!(!k.doc.contains('\n') && !k.doc.contains('|'), "{}", k.name);
        }
        for (name, _) in SYSTEMD_ONLY {
            assert!(find(name).is_none(), "{name} is a key and systemd-only");
        }
    }

    #[test]
    fn readme_key_table_is_generated_from_the_table() {
        // The README's key table is `markdown_table()`; DIAKONOS_BLESS=1 rewrites it.
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/README.md");
        let readme = std::fs::read_to_string(path).expect("read README.md");
        let (Some(a), Some(b)) = (readme.find(BEGIN), readme.find(END)) else {
            panic!("README.md has no key table markers ({BEGIN:?} ... {END:?})");
        };
        let current = &readme[a + BEGIN.len()..b];
        let wanted = markdown_table();
        if current != wanted && std::env::var_os("DIAKONOS_BLESS").is_some() {
            let updated = format!("{}{wanted}{}", &readme[..a + BEGIN.len()], &readme[b..]);
            std::fs::write(path, updated).expect("write README.md");
            return;
        }
        assert_eq!(
            current, wanted,
            "README.md's key table differs from src/unit/schema.rs; \
             run `DIAKONOS_BLESS=1 cargo test readme_key_table` to regenerate it"
        );
    }
}
