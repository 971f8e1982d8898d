//! Unit files: `NAME.service` TOML -> [`Unit`], strict validation with
//! file:line:column errors, and [`load_dir`] for a whole service directory.
//!
//! This module is pure with respect to processes: it reads files and returns
//! data. It never spawns, signals or touches the daemon's state. Cross-unit
//! checks (missing Requires, cycles) live in [`crate::graph`].
//!
//! The seams: `schema` (the keys), `shape` (the document against the keys),
//! `build` (values to a [`Unit`]), `load` (a directory of files), `host`
//! (what `start` would fail on here, for `verify`), `diag` (positions,
//! messages, did-you-mean).

mod build;
mod diag;
mod host;
mod limits;
mod load;
mod schema;
mod shape;
mod socket;
#[cfg(test)]
mod tests;
mod timer;
mod values;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::signal::Signal;
use toml::de::DeTable;

pub(crate) use values::parse_signal_name;
pub use values::parse_time_span;
/// The key table as the importers read it (`import systemd`, `import pm2`).
pub mod keys {
    pub use super::schema::{find, systemd_only_reason, Section, ValueForm};
}
pub use diag::{esc_all, suggest};
pub use host::{check_host, check_host_as};
pub use limits::{
    format_bytes, parse_env_file, read_env_files, EnvFileError, Limits, Rlimit,
    INFINITY as RLIM_INFINITY, RLIMIT_KEYS,
};
pub use load::{hostname, is_valid_name, load_dir, load_dir_keeping, unit_file_name, FileName};
pub use socket::{Listen, ListenAddr, SocketSpec};
pub use timer::{next_elapse, offset_at, parse_cron, zone, TimerSpec};

use build::build;
use diag::Ctx;
use shape::check_shape;

/// How the daemon decides a service is up (SPEC §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ServiceType {
    Simple,
    Oneshot,
    Forking,
    Notify,
}

/// When an exited service is started again (SPEC §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RestartPolicy {
    Always,
    OnFailure,
    No,
}

/// A fully validated unit file. Every default of SPEC §3 is already applied.
#[derive(Debug, Clone, PartialEq)]
pub struct Unit {
    pub name: String,
    /// The file it was loaded from (absolute when the service dir is).
    pub path: PathBuf,
    pub description: String,
    pub requires: Few<String>,
    pub wants: Few<String>,
    pub after: Few<String>,
    /// 0 = never give up.
    pub start_limit_burst: u32,
    pub start_limit_interval: Duration,
    pub kind: ServiceType,
    /// argv, never empty.
    pub exec_start: Vec<String>,
    /// Boxed: few units set one (8 bytes instead of 24, see [`Few`]).
    #[allow(clippy::box_collection)]
    pub exec_stop: Option<Box<Vec<String>>>,
    pub restart: RestartPolicy,
    pub restart_sec: Duration,
    /// Always >= restart_sec (defaults to it).
    pub restart_max_delay: Duration,
    /// Zero = no start timeout.
    pub timeout_start: Duration,
    /// Zero = SIGKILL right after KillSignal.
    pub timeout_stop: Duration,
    pub kill_signal: Signal,
    /// Absolute. Shared: most units of a directory run in it, and a daemon
    /// keeps one copy (see the supervisor's `Shared`).
    pub working_directory: std::sync::Arc<Path>,
    pub environment: Few<(String, String)>,
    pub user: Option<String>,
    pub remain_after_exit: bool,
    pub pid_file: Option<PathBuf>,
    /// Rotate the service log when it grows past this many bytes (0 = never).
    pub log_max_bytes: u64,
    /// How many rotated files (`NAME.log.1` ..) to keep.
    pub log_max_files: u32,
    /// Limits and identity (SPEC §13); empty when the unit sets none (then
    /// no heap and 8 bytes instead of 152: most units set none).
    pub limits: Rare<Limits>,
    /// `[socket]`: what the daemon binds and passes (boxed: most units have none).
    pub socket: Option<Box<SocketSpec>>,
    /// `[timer]`: when the daemon starts it by itself (boxed: most have none).
    pub timer: Option<Box<TimerSpec>>,
    /// WatchPaths and the failure hooks (boxed: most units set none).
    pub triggers: Rare<Triggers>,
    /// Where values were written, and warnings; never part of `==`.
    pub source: Source,
    /// The file's text as it was loaded (FNV-1a); never part of `==`
    /// (a comment edit changes no definition). A new daemon tells by it
    /// whether an adopted process runs the file's definition.
    pub digest: Digest,
    /// Left out of `stop --all` and `restart --all` (SPEC §18).
    pub protected: bool,
    /// Units that may not run together with this one, either way (SPEC §18).
    pub conflicts: Few<String>,
    /// `[health]`, if any (boxed: most units have none).
    pub health: Option<Box<Health>>,
    /// WatchdogSec (zero: off).
    pub watchdog: Duration,
    pub watchdog_signal: Signal,
    /// NotifyAccess as written (None: not written, `group`).
    pub notify_access: Option<NotifyAccess>,
}

/// What makes the daemon act on a unit besides its own process: changes
/// under its WatchPaths, and its failure hooks. Few units set any of these,
/// so a unit keeps them in a box only when it does ([`Rare`]: 8 bytes
/// instead of 104, which with [`Source`]'s 24 took a unit from 608 to 488
/// bytes, one size class of musl's allocator less).
#[derive(Debug, Clone, PartialEq)]
pub struct Triggers {
    /// `WatchPaths`, absolute.
    pub watch_paths: Vec<PathBuf>,
    pub watch_debounce: Duration,
    /// Failure hooks: units started when this one fails / restarts.
    pub on_failure: Vec<String>,
    pub on_restart: Vec<String>,
    pub hook_rate_limit: Duration,
}

impl Default for Triggers {
    /// None set; the durations are the key table's defaults.
    fn default() -> Triggers {
        Triggers {
            watch_paths: Vec::new(),
            watch_debounce: schema::default_secs("WatchDebounceSec"),
            on_failure: Vec::new(),
            on_restart: Vec::new(),
            hook_rate_limit: schema::default_secs("HookRateLimitSec"),
        }
    }
}

impl Empty for Triggers {
    fn empty() -> &'static Triggers {
        static EMPTY: std::sync::OnceLock<Triggers> = std::sync::OnceLock::new();
        EMPTY.get_or_init(Triggers::default)
    }
}

/// A list most units leave empty (their dependencies, environment): a
/// [`Rare`] `Vec`, one pointer and no heap while empty. Five of them at 8
/// bytes instead of 24, and ExecStop boxed, took a unit from 480 to 384
/// bytes: musl's 400-byte size class instead of its 496 (~96 KiB less at
/// 1000 units).
pub type Few<T> = Rare<Vec<T>>;

impl<T: PartialEq + 'static> Empty for Vec<T> {
    fn empty() -> &'static Vec<T> {
        const { &Vec::new() }
    }
}

impl<'a, T: PartialEq + 'static> IntoIterator for &'a Few<T> {
    type Item = &'a T;
    type IntoIter = std::slice::Iter<'a, T>;

    fn into_iter(self) -> std::slice::Iter<'a, T> {
        self.iter()
    }
}

/// A section most units leave empty, kept in a box only when it is not:
/// reads as the section (`Deref`) either way, and is one pointer with no
/// heap when empty. A thousand units in the daemon are a thousand `Unit`s.
#[derive(Clone, Default)]
pub struct Rare<T>(Option<Box<T>>);

/// A type with a shared empty value, for [`Rare`].
pub trait Empty: Default + PartialEq + 'static {
    fn empty() -> &'static Self;
}

impl Empty for Limits {
    fn empty() -> &'static Limits {
        static EMPTY: std::sync::OnceLock<Limits> = std::sync::OnceLock::new();
        EMPTY.get_or_init(Limits::default)
    }
}

impl<T: Empty> From<T> for Rare<T> {
    fn from(value: T) -> Rare<T> {
        Rare((value != T::default()).then(|| Box::new(value)))
    }
}

impl<T: Empty> std::ops::Deref for Rare<T> {
    type Target = T;

    fn deref(&self) -> &T {
        match &self.0 {
            Some(value) => value,
            None => T::empty(),
        }
    }
}

/// Written through, the section gets its box (then holds what is written).
impl<T: Empty> std::ops::DerefMut for Rare<T> {
    fn deref_mut(&mut self) -> &mut T {
        self.0.get_or_insert_with(Default::default)
    }
}

/// Equal by what they read as: an emptied box equals no box.
impl<T: Empty> PartialEq for Rare<T> {
    fn eq(&self, other: &Rare<T>) -> bool {
        **self == **other
    }
}

impl<T: Empty + fmt::Debug> fmt::Debug for Rare<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl Unit {
    /// Whose sd_notify messages count.
    pub fn notify_access(&self) -> NotifyAccess {
        self.notify_access.unwrap_or(NotifyAccess::Group)
    }

    /// Whether its processes run as another user or group (User=, Group=,
    /// SupplementaryGroups=): what they may run or enter is only known by
    /// trying, so such a service is up once its exec is done.
    pub fn changes_identity(&self) -> bool {
        self.user.is_some()
            || self.limits.group.is_some()
            || !self.limits.supplementary_groups.is_empty()
    }

    /// Whether the service gets `$NOTIFY_SOCKET`: Type notify, a watchdog,
    /// or NotifyAccess written as `main` or `group` (a simple service that
    /// sends STATUS=, say), as systemd does.
    pub fn gets_notify_socket(&self) -> bool {
        self.kind == ServiceType::Notify
            || !self.watchdog.is_zero()
            || matches!(
                self.notify_access,
                Some(NotifyAccess::Main | NotifyAccess::Group)
            )
    }
}

/// Whose sd_notify messages count (`NotifyAccess`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotifyAccess {
    Main,
    Group,
    None,
}

/// What a health probe does (SPEC §10).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// One `GET path` to `addr` with `Host: host`.
    Http {
        addr: std::net::SocketAddr,
        host: String,
        path: String,
    },
    Tcp(std::net::SocketAddr),
    /// argv, run like ExecStart in its own process group.
    Exec(Vec<String>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnUnhealthy {
    Restart,
    Stop,
    Mark,
}

/// A unit's `[health]` section, every default from the key table.
#[derive(Debug, Clone, PartialEq)]
pub struct Health {
    pub probe: Probe,
    pub interval: Duration,
    pub timeout: Duration,
    pub start_period: Duration,
    pub start_interval: Duration,
    pub failure_threshold: u32,
    /// Accepted HTTP status codes, inclusive.
    pub expect_status: (u16, u16),
    pub on_unhealthy: OnUnhealthy,
    pub readiness: bool,
}

/// What a unit file says beyond the definition: where some values were
/// written (for `verify`'s file:line:column) and warnings that stop nothing.
/// It never makes two units differ (`==` is always true), so a moved line or
/// a new comment is not a change that restarts a service on reload.
///
/// The daemon keeps one per loaded unit and has no use for the places
/// (only `verify` points at them), so it drops them
/// ([`Source::forget_places`]): then, unless the unit has warnings, one
/// null pointer is left. It reads as its [`Notes`] (`unit.source.warnings`).
#[derive(Debug, Clone, Default)]
pub struct Source(Option<Box<Notes>>);

/// The contents of a [`Source`].
#[derive(Debug, Clone, Default)]
pub struct Notes {
    /// 1-based (line, column) of the value of each of `PLACED_KEYS`;
    /// (0, 0) where the key was not written (or the places were forgotten).
    places: [(u32, u32); PLACED_KEYS.len()],
    pub warnings: Vec<UnitError>,
}

/// What a [`Source`] without notes reads as.
static NO_NOTES: Notes = Notes {
    places: [(0, 0); PLACED_KEYS.len()],
    warnings: Vec::new(),
};

impl std::ops::Deref for Source {
    type Target = Notes;

    fn deref(&self) -> &Notes {
        self.0.as_deref().unwrap_or(&NO_NOTES)
    }
}

/// A digest of a unit file's text ([`Unit::digest`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct Digest(pub u64);

impl Digest {
    /// FNV-1a, 64 bits: a change to the file, not an adversary, is what
    /// it tells apart.
    pub fn of(bytes: &[u8]) -> Digest {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for &b in bytes {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        Digest(h)
    }
}

impl PartialEq for Digest {
    fn eq(&self, _: &Digest) -> bool {
        true
    }
}

/// The keys whose value's position is kept after loading (what `verify`'s
/// host checks point at).
pub(crate) const PLACED_KEYS: [&str; 7] = [
    "Type",
    "ExecStart",
    "ExecStop",
    "User",
    "Group",
    "SupplementaryGroups",
    "WorkingDirectory",
];

impl PartialEq for Source {
    fn eq(&self, _: &Source) -> bool {
        true
    }
}

impl Source {
    /// Where the value of `key` was written, if it was (and `key` is one of
    /// `PLACED_KEYS`).
    pub fn place(&self, key: &str) -> Option<(usize, usize)> {
        let i = PLACED_KEYS.iter().position(|k| *k == key)?;
        match self.places[i] {
            (0, _) => None,
            (line, col) => Some((line as usize, col as usize)),
        }
    }

    /// A unit's notes: its warnings, and where the values of `placed`
    /// (each one of `PLACED_KEYS`) were written. A position past
    /// `u32::MAX` (a 4 GiB line; unit files are at most 1 MiB) is clamped.
    fn new(
        warnings: Vec<UnitError>,
        placed: impl IntoIterator<Item = (&'static str, (usize, usize))>,
    ) -> Source {
        let mut notes = Notes {
            warnings,
            ..Notes::default()
        };
        for (key, (line, col)) in placed {
            if let Some(i) = PLACED_KEYS.iter().position(|k| *k == key) {
                let clamp = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
                notes.places[i] = (clamp(line), clamp(col));
            }
        }
        let empty = notes.warnings.is_empty() && notes.places == NO_NOTES.places;
        Source((!empty).then(|| Box::new(notes)))
    }

    /// Drops the places (a daemon's copy of a unit needs none of them): no
    /// box is left unless the unit has warnings.
    pub fn forget_places(&mut self) {
        if let Some(notes) = self.0.take() {
            *self = Source::new(notes.warnings, []);
        }
    }
}

/// One problem in one unit file, with its position when known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitError {
    pub path: PathBuf,
    /// 1-based line and column, when the problem has a place in the file.
    pub pos: Option<(usize, usize)>,
    pub message: String,
    pub hint: Option<String>,
}

impl UnitError {
    /// A sort key for file order: by line, then column; errors without a
    /// position last.
    pub(crate) fn file_order(&self) -> u64 {
        match self.pos {
            Some((line, col)) => {
                ((line.min(u32::MAX as usize - 1) as u64) << 32)
                    | (col.min(u32::MAX as usize) as u64)
            }
            None => u64::MAX,
        }
    }

    /// Where and what is wrong, without the hint (for a line that says
    /// what to do itself).
    pub fn summary(&self) -> String {
        let mut text = String::new();
        let _ = self.where_what(&mut text);
        text.truncate(headline(&text).len());
        text
    }

    /// `path[:line:col]: message`.
    fn where_what(&self, f: &mut impl fmt::Write) -> fmt::Result {
        // A file name may hold a newline: the error stays one line.
        write!(f, "{}", diag::esc_all(&self.path.display().to_string()))?;
        if let Some((line, col)) = self.pos {
            write!(f, ":{line}:{col}")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Every error of a unit file, one per line, as a loaded unit keeps them.
pub fn errors_text(errors: &[UnitError]) -> String {
    let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
    text.join("\n")
}

/// The first of a file's errors, without its hint (for a one-line report).
pub fn first_error(errors: &[UnitError]) -> String {
    errors.first().map(UnitError::summary).unwrap_or_default()
}

/// The first line of an error text without its `; hint: ...`: for places
/// that quote an error in a line of their own, with their own hint.
pub fn headline(text: &str) -> &str {
    let first = text.lines().next().unwrap_or_default();
    first.split("; hint: ").next().unwrap_or(first)
}

impl fmt::Display for UnitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.where_what(f)?;
        if let Some(hint) = &self.hint {
            // One line per problem, what to do included.
            write!(f, "; hint: {hint}")?;
        }
        Ok(())
    }
}

/// Everything found in a service directory.
#[derive(Debug, Default)]
pub struct LoadedDir {
    /// Unit name -> the unit, or the errors that stop it loading.
    pub units: BTreeMap<String, Result<Unit, Vec<UnitError>>>,
    /// Things worth telling the user that do not stop anything.
    pub warnings: Vec<String>,
}

/// The log rotation of a unit whose file sets neither LogMaxBytes nor
/// LogMaxFiles, from the key table: (bytes, files). `daemon.log` is rotated
/// the same way.
pub fn default_log_limits() -> (u64, u32) {
    let bytes = u64::try_from(schema::default_count("LogMaxBytes")).unwrap_or(0);
    let files = u32::try_from(schema::default_count("LogMaxFiles")).unwrap_or(0);
    (bytes, files)
}

/// The largest duration any `*Sec` key accepts, in seconds (about 31 years);
/// what `"infinity"` reads as where it means "never".
pub const MAX_SECS: i64 = 1_000_000_000;

/// The most rotated log files a unit may keep; more is surely a typo, and
/// rotation renames each of them.
const MAX_LOG_FILES: i64 = 1000;

/// Unit files larger than this are refused unread: a unit is a few hundred
/// bytes, and the daemon must not load a stray huge file into memory.
const MAX_UNIT_FILE_BYTES: u64 = 1024 * 1024;

/// Parses one unit file's text. `name` is the unit name (file stem without any
/// `@HOST`), `path` is used in errors, `service_dir` resolves a relative
/// WorkingDirectory and is the default one.
pub fn parse(
    name: &str,
    path: &Path,
    text: &str,
    service_dir: &Path,
) -> Result<Unit, Vec<UnitError>> {
    let mut cx = Ctx {
        path,
        text,
        errors: Vec::new(),
    };
    if let Some(at) = text.find('\0') {
        cx.at(
            at..at + 1,
            "unit file contains a NUL byte; expected TOML text".to_string(),
            Some("is this a binary file?".to_string()),
        );
        return Err(cx.errors);
    }
    let root = match DeTable::parse(text) {
        Ok(root) => root,
        Err(err) => {
            cx.syntax(&err);
            return Err(cx.errors);
        }
    };
    // Check sections, keys and value types against the key table first, so
    // every unknown key and wrong type is reported with its own position;
    // `build` then reads only the values that passed.
    let values = check_shape(&mut cx, root.get_ref());
    match build(&mut cx, name, path, &values, service_dir) {
        Some(mut unit) if cx.errors.is_empty() => {
            unit.digest = Digest::of(text.as_bytes());
            Ok(unit)
        }
        None if cx.errors.is_empty() => {
            // Not reachable: every `None` from `build` follows a recorded
            // error. Still, never hand back an empty error list.
            cx.at(0..0, "unit file could not be loaded".to_string(), None);
            Err(cx.errors)
        }
        _ => Err(cx.finish()),
    }
}
