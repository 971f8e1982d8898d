//! Unit files: `NAME.service` TOML -> [`Unit`], strict validation with
//! file:line:column errors, and [`load_dir`] for a whole service directory.
//!
//! This module is pure with respect to processes: it reads files and returns
//! data. It never spawns, signals or touches the daemon's state. Cross-unit
//! checks (missing Requires, cycles) live in `daemon::deps`.

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::io::Read;
use std::ops::Range;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use nix::sys::signal::Signal;
use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use toml::de::{DeTable, DeValue};
use toml::Spanned;

/// How the daemon decides a service is up (SPEC §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceType {
    Simple,
    Oneshot,
    Forking,
    Notify,
}

/// When an exited service is started again (SPEC §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
    pub requires: Vec<String>,
    pub wants: Vec<String>,
    pub after: Vec<String>,
    /// 0 = never give up.
    pub start_limit_burst: u32,
    pub start_limit_interval: Duration,
    pub kind: ServiceType,
    /// argv, never empty.
    pub exec_start: Vec<String>,
    pub exec_stop: Option<Vec<String>>,
    pub restart: RestartPolicy,
    pub restart_sec: Duration,
    /// Always >= restart_sec (defaults to it).
    pub restart_max_delay: Duration,
    /// Zero = no start timeout.
    pub timeout_start: Duration,
    /// Zero = SIGKILL right after KillSignal.
    pub timeout_stop: Duration,
    pub kill_signal: Signal,
    /// Absolute.
    pub working_directory: PathBuf,
    pub environment: Vec<(String, String)>,
    pub user: Option<String>,
    pub remain_after_exit: bool,
    pub pid_file: Option<PathBuf>,
    /// Rotate the service log when it grows past this many bytes (0 = never).
    pub log_max_bytes: u64,
    /// How many rotated files (`NAME.log.1` ..) to keep.
    pub log_max_files: u32,
    /// Where values were written, and warnings; never part of `==`.
    pub source: Source,
}

/// What a unit file says beyond the definition: where some values were
/// written (for `verify`'s file:line:column) and warnings that stop nothing.
/// It never makes two units differ (`==` is always true), so a moved line or
/// a new comment is not a change that restarts a service on reload.
#[derive(Debug, Clone, Default)]
pub struct Source {
    /// Key name -> 1-based (line, column) of its value.
    pub places: Vec<(&'static str, (usize, usize))>,
    pub warnings: Vec<UnitError>,
}

impl PartialEq for Source {
    fn eq(&self, _: &Source) -> bool {
        true
    }
}

impl Source {
    /// Where the value of `key` was written, if it was.
    pub fn place(&self, key: &str) -> Option<(usize, usize)> {
        self.places.iter().find(|(k, _)| *k == key).map(|&(_, p)| p)
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

impl fmt::Display for UnitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path.display())?;
        if let Some((line, col)) = self.pos {
            write!(f, ":{line}:{col}")?;
        }
        write!(f, ": {}", self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
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

pub const DEFAULT_LOG_MAX_BYTES: u64 = 10 * 1024 * 1024;
pub const DEFAULT_LOG_MAX_FILES: u32 = 3;

/// The largest duration any `*Sec` key accepts, in seconds (about 31 years).
const MAX_SECS: i64 = 1_000_000_000;

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
    let mut root = match DeTable::parse(text) {
        Ok(root) => root,
        Err(err) => {
            cx.syntax(&err);
            return Err(cx.errors);
        }
    };

    // Check sections, keys and value types on the parsed document first, so
    // every unknown key and wrong type is reported, with its own position.
    // Entries that failed are removed, and serde then sees only what it can
    // take, which lets the value checks below report their errors too.
    let shape = check_shape(&mut cx, root.get_ref());
    let table = root.get_mut();
    for section in &shape.dropped_sections {
        table.remove(section.as_str());
    }
    for (section, key) in &shape.dropped_keys {
        if let Some(DeValue::Table(keys)) = table.get_mut(section.as_str()).map(Spanned::get_mut) {
            keys.remove(key.as_str());
        }
    }
    let raw = match RawFile::deserialize(toml::de::Deserializer::from(root)) {
        Ok(raw) => raw,
        Err(err) => {
            cx.serde(&err, &shape.values);
            return Err(cx.finish());
        }
    };
    match build(&mut cx, name, path, &raw, &shape, service_dir) {
        Some(unit) if cx.errors.is_empty() => Ok(unit),
        None if cx.errors.is_empty() => {
            // Not reachable: every `None` from `build` follows a recorded
            // error. Still, never hand back an empty error list.
            cx.at(0..0, "unit file could not be loaded".to_string(), None);
            Err(cx.errors)
        }
        _ => Err(cx.finish()),
    }
}

/// Loads every `*.service` in `dir` for the host named `hostname`.
pub fn load_dir(dir: &Path, hostname: &str) -> std::io::Result<LoadedDir> {
    let mut out = LoadedDir::default();
    // Unit name -> (file `NAME.service`, file `NAME@HOST.service` for this host).
    let mut found: BTreeMap<String, (Option<String>, Option<String>)> = BTreeMap::new();
    for entry in fs::read_dir(dir)? {
        let entry = match entry {
            Ok(entry) => entry,
            Err(err) => {
                out.warnings.push(format!(
                    "{}: cannot read a directory entry: {err}",
                    dir.display()
                ));
                continue;
            }
        };
        let os_name = entry.file_name();
        let Some(file_name) = os_name.to_str() else {
            if os_name.as_encoded_bytes().ends_with(b".service") {
                out.warnings.push(format!(
                    "{}: skipped: the file name is not valid UTF-8",
                    esc(&dir.join(&os_name).display().to_string())
                ));
            }
            continue;
        };
        let Some(stem) = file_name.strip_suffix(".service") else {
            continue;
        };
        // Hidden files are editor leftovers (`.#web.service`) or units put
        // aside on purpose; neither should show up as a unit.
        if stem.starts_with('.') {
            continue;
        }
        let (name, host_specific) = match stem.split_once('@') {
            None => (stem, false),
            Some((_, "")) => {
                out.warnings.push(format!(
                    "{}: skipped: no host name after `@` (expected NAME@HOST.service)",
                    esc(&dir.join(file_name).display().to_string())
                ));
                continue;
            }
            Some((name, host)) if host == hostname => (name, true),
            Some(_) => continue,
        };
        if name.is_empty() {
            out.warnings.push(format!(
                "{}: skipped: no unit name before `.service`",
                esc(&dir.join(file_name).display().to_string())
            ));
            continue;
        }
        let slot = found.entry(name.to_string()).or_default();
        if host_specific {
            slot.1 = Some(file_name.to_string());
        } else {
            slot.0 = Some(file_name.to_string());
        }
    }

    for (name, files) in found {
        let file = match files {
            (Some(generic), Some(specific)) => {
                out.warnings.push(format!(
                    "{}: using {specific} instead of {generic} on this host",
                    esc(&dir.join(&specific).display().to_string())
                ));
                specific
            }
            (None, Some(file)) | (Some(file), None) => file,
            (None, None) => continue,
        };
        let path = dir.join(&file);
        let result = if is_valid_name(&name) {
            load_file(&name, &path, dir)
        } else {
            Err(vec![UnitError {
                path,
                pos: None,
                message: format!(
                    "invalid unit name `{}`; expected letters, digits and `_.:-` only",
                    esc(&name)
                ),
                hint: Some("rename the file".to_string()),
            }])
        };
        out.units.insert(name, result);
    }
    Ok(out)
}

/// Whether `name` can name a unit: non-empty, only `[A-Za-z0-9_.:-]`.
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-'))
}

/// Reads and parses one unit file, turning every I/O or encoding problem
/// into a [`UnitError`] for this unit.
fn load_file(name: &str, path: &Path, dir: &Path) -> Result<Unit, Vec<UnitError>> {
    let error = |message: String, hint: Option<&str>| {
        vec![UnitError {
            path: path.to_path_buf(),
            pos: None,
            message,
            hint: hint.map(str::to_string),
        }]
    };
    let bytes = read_unit_file(path).map_err(|(message, hint)| error(message, hint))?;
    match String::from_utf8(bytes) {
        Ok(text) => parse(name, path, &text, dir),
        Err(err) => {
            let valid = err.utf8_error().valid_up_to();
            let bytes = err.as_bytes();
            let prefix = std::str::from_utf8(&bytes[..valid]).unwrap_or_default();
            Err(vec![UnitError {
                path: path.to_path_buf(),
                pos: Some(line_col(prefix, valid)),
                message: "unit file is not valid UTF-8; expected TOML text".to_string(),
                hint: Some("save the file as UTF-8".to_string()),
            }])
        }
    }
}

/// Reads a unit file without ever blocking or loading something huge: the
/// file is opened non-blocking (a FIFO named `x.service` must not hang the
/// daemon) and checked with fstat before reading.
fn read_unit_file(path: &Path) -> Result<Vec<u8>, (String, Option<&'static str>)> {
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK | nix::libc::O_NOCTTY)
        .open(path)
        .map_err(|err| open_error(path, &err))?;
    let meta = file
        .metadata()
        .map_err(|err| (format!("cannot read unit file: {err}"), None))?;
    if meta.is_dir() {
        return Err((
            "is a directory, expected a unit file".to_string(),
            Some("move the directory out of the service dir or rename it"),
        ));
    }
    if !meta.is_file() {
        return Err((
            "is not a regular file (a FIFO, socket or device?); expected a unit file".to_string(),
            None,
        ));
    }
    if meta.len() > MAX_UNIT_FILE_BYTES {
        return Err((
            format!(
                "unit file is {} bytes; expected at most {MAX_UNIT_FILE_BYTES}",
                meta.len()
            ),
            None,
        ));
    }
    let mut bytes = Vec::new();
    file.take(MAX_UNIT_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|err| (format!("cannot read unit file: {err}"), None))?;
    if bytes.len() as u64 > MAX_UNIT_FILE_BYTES {
        return Err((
            format!("unit file grew past {MAX_UNIT_FILE_BYTES} bytes while being read"),
            None,
        ));
    }
    Ok(bytes)
}

/// Explains why a unit file could not be opened, naming symlink trouble.
fn open_error(path: &Path, err: &std::io::Error) -> (String, Option<&'static str>) {
    let is_symlink = fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
    if is_symlink && err.raw_os_error() == Some(nix::libc::ELOOP) {
        return (
            "is a symlink loop; expected a unit file".to_string(),
            Some("fix or remove the symlink"),
        );
    }
    if is_symlink && err.kind() == std::io::ErrorKind::NotFound {
        let target = fs::read_link(path)
            .map(|t| format!(" to `{}`", t.display()))
            .unwrap_or_default();
        return (
            format!("is a dangling symlink{target}; expected a unit file"),
            Some("fix or remove the symlink"),
        );
    }
    (format!("cannot open unit file: {err}"), None)
}

// ---------------------------------------------------------------------------
// Raw TOML shape, as serde sees it after `check_shape` removed bad entries.

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    // systemd spells the sections `[Unit]` and `[Service]`; both are accepted
    // (`check_shape` refuses a file that has both spellings of one section).
    #[serde(alias = "Unit")]
    unit: Option<RawUnit>,
    #[serde(alias = "Service")]
    service: Option<RawService>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUnit {
    #[serde(rename = "Description")]
    description: Option<Spanned<String>>,
    #[serde(rename = "Requires")]
    requires: Option<Vec<Spanned<String>>>,
    #[serde(rename = "Wants")]
    wants: Option<Vec<Spanned<String>>>,
    #[serde(rename = "After")]
    after: Option<Vec<Spanned<String>>>,
    #[serde(rename = "StartLimitBurst")]
    start_limit_burst: Option<Spanned<i64>>,
    #[serde(rename = "StartLimitIntervalSec")]
    start_limit_interval_sec: Option<Spanned<Number>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawService {
    #[serde(rename = "Type")]
    kind: Option<Spanned<String>>,
    #[serde(rename = "ExecStart")]
    exec_start: Option<Spanned<String>>,
    #[serde(rename = "ExecStop")]
    exec_stop: Option<Spanned<String>>,
    #[serde(rename = "Restart")]
    restart: Option<Spanned<String>>,
    #[serde(rename = "RestartSec")]
    restart_sec: Option<Spanned<Number>>,
    #[serde(rename = "RestartMaxDelaySec")]
    restart_max_delay_sec: Option<Spanned<Number>>,
    #[serde(rename = "TimeoutStartSec")]
    timeout_start_sec: Option<Spanned<Number>>,
    #[serde(rename = "TimeoutStopSec")]
    timeout_stop_sec: Option<Spanned<Number>>,
    #[serde(rename = "KillSignal")]
    kill_signal: Option<Spanned<SignalValue>>,
    #[serde(rename = "WorkingDirectory")]
    working_directory: Option<Spanned<String>>,
    #[serde(rename = "Environment")]
    environment: Option<Vec<Spanned<String>>>,
    #[serde(rename = "User")]
    user: Option<Spanned<String>>,
    #[serde(rename = "RemainAfterExit")]
    remain_after_exit: Option<bool>,
    #[serde(rename = "PIDFile")]
    pid_file: Option<Spanned<String>>,
    #[serde(rename = "LogMaxBytes")]
    log_max_bytes: Option<Spanned<i64>>,
    #[serde(rename = "LogMaxFiles")]
    log_max_files: Option<Spanned<i64>>,
}

/// A duration as written: a TOML integer or float of seconds, or a systemd
/// time span string (`"1min 30s"`), kept apart so range checks can say what
/// was written.
#[derive(Debug, Clone)]
enum Number {
    Int(i64),
    Float(f64),
    Text(String),
}

impl<'de> Deserialize<'de> for Number {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Number;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number of seconds")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Number, E> {
                Ok(Number::Int(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Number, E> {
                Ok(i64::try_from(v).map_or(Number::Float(v as f64), Number::Int))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Number, E> {
                Ok(Number::Float(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Number, E> {
                Ok(Number::Text(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

/// KillSignal as written: a name or a number.
#[derive(Debug, Clone)]
enum SignalValue {
    Name(String),
    Number(i64),
}

impl<'de> Deserialize<'de> for SignalValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = SignalValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a signal name or number")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<SignalValue, E> {
                Ok(SignalValue::Number(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<SignalValue, E> {
                Ok(SignalValue::Number(i64::try_from(v).unwrap_or(i64::MAX)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<SignalValue, E> {
                Ok(SignalValue::Name(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

// ---------------------------------------------------------------------------
// Shape checks on the parsed document: sections, keys, value types.

/// What a key's value must look like in TOML terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Str,
    StrList,
    Secs,
    /// An integer from 0 to the given maximum.
    Count(i64),
    Bool,
    Signal,
}

impl Kind {
    fn expected(self) -> &'static str {
        match self {
            Kind::Str => "a string",
            Kind::StrList => "an array of strings (like [\"a\", \"b\"])",
            Kind::Secs => "a number of seconds (like 5 or 0.5) or a time span (like \"1min 30s\")",
            Kind::Count(_) => "a non-negative integer",
            Kind::Bool => "true or false",
            Kind::Signal => "a signal name (like \"SIGTERM\") or number",
        }
    }

    fn accepts(self, value: &DeValue<'_>) -> bool {
        match self {
            Kind::Str => value.is_str(),
            Kind::StrList => value.is_array(),
            Kind::Secs => value.is_integer() || value.is_float() || value.is_str(),
            Kind::Count(_) => value.is_integer(),
            Kind::Bool => value.is_bool(),
            Kind::Signal => value.is_str() || value.is_integer(),
        }
    }

    /// The accepted range, for "`Key` is X; expected ..." messages.
    fn range(self) -> String {
        match self {
            Kind::Secs => format!("a number of seconds from 0 to {MAX_SECS}"),
            Kind::Count(max) => format!("an integer from 0 to {max}"),
            Kind::Signal => SIGNAL_EXPECTED.to_string(),
            other => other.expected().to_string(),
        }
    }
}

/// Whether a number literal fits the types serde will read it into: i64
/// and finite f64 (`1e400` does not; `inf` is fine and range-checked later).
fn number_fits(value: &DeValue<'_>) -> bool {
    match value {
        DeValue::Integer(n) => i64::from_str_radix(n.as_str(), n.radix()).is_ok(),
        DeValue::Float(f) => f
            .as_str()
            .parse::<f64>()
            .is_ok_and(|v| v.is_finite() || f.as_str().contains("inf")),
        _ => true,
    }
}

const SIGNAL_EXPECTED: &str = "a signal name like \"SIGTERM\" or \"TERM\", or a number like 15";

const UNIT_KEYS: &[(&str, Kind)] = &[
    ("Description", Kind::Str),
    ("Requires", Kind::StrList),
    ("Wants", Kind::StrList),
    ("After", Kind::StrList),
    ("StartLimitBurst", Kind::Count(u32::MAX as i64)),
    ("StartLimitIntervalSec", Kind::Secs),
];

const SERVICE_KEYS: &[(&str, Kind)] = &[
    ("Type", Kind::Str),
    ("ExecStart", Kind::Str),
    ("ExecStop", Kind::Str),
    ("Restart", Kind::Str),
    ("RestartSec", Kind::Secs),
    ("RestartMaxDelaySec", Kind::Secs),
    ("TimeoutStartSec", Kind::Secs),
    ("TimeoutStopSec", Kind::Secs),
    ("KillSignal", Kind::Signal),
    ("WorkingDirectory", Kind::Str),
    ("Environment", Kind::StrList),
    ("User", Kind::Str),
    ("RemainAfterExit", Kind::Bool),
    ("PIDFile", Kind::Str),
    ("LogMaxBytes", Kind::Count(i64::MAX)),
    ("LogMaxFiles", Kind::Count(MAX_LOG_FILES)),
];

const SECTIONS: &[(&str, &[(&str, Kind)])] = &[("unit", UNIT_KEYS), ("service", SERVICE_KEYS)];

/// systemd keys people carry over, with why they are not accepted here.
const SYSTEMD_ONLY: &[(&str, &str)] = &[
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
        "EnvironmentFile",
        "list the variables in Environment instead",
    ),
    ("Group", "diakonos switches to User and that user's groups"),
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

/// What [`check_shape`] learned about the document.
#[derive(Debug, Default)]
struct Shape {
    /// Top-level entries to remove before deserializing.
    dropped_sections: Vec<String>,
    /// (section, key) entries to remove before deserializing.
    dropped_keys: Vec<(String, String)>,
    /// Spans of accepted values with a label, to place any later serde error.
    values: Vec<(String, Range<usize>)>,
    /// Where `[service]` is, when it is a table.
    service_span: Option<Range<usize>>,
    /// Whether `[service]` has an ExecStart key at all (even a bad one).
    has_exec_start: bool,
    /// Whether an error already pointed at a misspelled or misplaced
    /// [service] (then "missing [service]" would only repeat it).
    service_reported: bool,
}

fn check_shape(cx: &mut Ctx<'_>, root: &DeTable<'_>) -> Shape {
    let mut shape = Shape::default();
    let mut seen: Vec<(&str, &str)> = Vec::new();
    // In file order, so a repeated section is reported where it repeats.
    let mut entries: Vec<_> = root.iter().collect();
    entries.sort_by_key(|(key, _)| key.span().start);
    for (key, value) in entries {
        let section: &str = key.get_ref();
        let shown = esc(section);
        let found = canonical_section(section)
            .and_then(|canon| SECTIONS.iter().find(|(name, _)| *name == canon));
        let Some(&(canon, keys)) = found else {
            shape.dropped_sections.push(section.to_string());
            if value.get_ref().is_table() {
                let names: Vec<&str> = SECTIONS.iter().map(|(name, _)| *name).collect();
                shape.service_reported |= suggest(section, &names) == Some("service");
                unknown_section(cx, section, key.span());
            } else {
                let home = SECTIONS
                    .iter()
                    .find(|(_, keys)| keys.iter().any(|(k, _)| *k == section))
                    .map(|(name, _)| *name);
                shape.service_reported |= home == Some("service");
                let home = home.map(|name| format!("put it under [{name}]"));
                cx.at(
                    key.span(),
                    format!("key `{shown}` is outside any section; expected [unit] or [service]"),
                    home,
                );
            }
            continue;
        };
        let table = match value.get_ref() {
            DeValue::Table(table) => table,
            DeValue::Array(array) if array.iter().all(|v| v.get_ref().is_table()) => {
                shape.dropped_sections.push(section.to_string());
                cx.at(
                    key.span(),
                    format!("[[{section}]] makes a list of sections; expected one [{section}]"),
                    Some(format!("write [{section}] with single brackets")),
                );
                continue;
            }
            other => {
                shape.dropped_sections.push(section.to_string());
                cx.at(
                    key.span(),
                    format!(
                        "`{section}` must be a section ([{section}]), not {}",
                        article(other.type_str())
                    ),
                    None,
                );
                continue;
            }
        };
        if let Some((first, _)) = seen.iter().find(|(_, c)| *c == canon) {
            shape.dropped_sections.push(section.to_string());
            shape.service_reported |= canon == "service";
            cx.at(
                key.span(),
                format!("section [{shown}] repeats [{first}]; expected each section once"),
                Some(format!(
                    "merge the two into one [{first}] (the case of the name does not matter)"
                )),
            );
            continue;
        }
        seen.push((section, canon));
        if canon == "service" {
            shape.service_span = Some(key.span());
            shape.has_exec_start = table.get("ExecStart").is_some();
        }
        for (key, value) in table.iter() {
            let name: &str = key.get_ref();
            let Some(&(_, kind)) = keys.iter().find(|(k, _)| *k == name) else {
                shape
                    .dropped_keys
                    .push((section.to_string(), name.to_string()));
                unknown_key(cx, section, canon, keys, name, key.span());
                continue;
            };
            let label = format!("`{name}` in [{section}]");
            if !kind.accepts(value.get_ref()) {
                shape
                    .dropped_keys
                    .push((section.to_string(), name.to_string()));
                cx.at(
                    value.span(),
                    format!(
                        "{label} must be {}, not {}",
                        kind.expected(),
                        article(value.get_ref().type_str())
                    ),
                    (kind == Kind::StrList && value.get_ref().is_str())
                        .then(|| "write a one-element array: [\"...\"]".to_string()),
                );
                continue;
            }
            if !number_fits(value.get_ref()) {
                shape
                    .dropped_keys
                    .push((section.to_string(), name.to_string()));
                let literal = cx.literal(value.span(), "a number out of range");
                let message = format!("`{name}` is {literal}; expected {}", kind.range());
                cx.at(value.span(), message, None);
                continue;
            }
            if let (Kind::StrList, Some(items)) = (kind, value.get_ref().as_array()) {
                let mut ok = true;
                for (i, item) in items.iter().enumerate() {
                    if !item.get_ref().is_str() {
                        ok = false;
                        cx.at(
                            item.span(),
                            format!(
                                "{label} must be an array of strings; element {} is {}",
                                i + 1,
                                article(item.get_ref().type_str())
                            ),
                            None,
                        );
                    }
                }
                if !ok {
                    shape
                        .dropped_keys
                        .push((section.to_string(), name.to_string()));
                    continue;
                }
            }
            shape.values.push((label, value.span()));
        }
    }
    shape
}

fn unknown_section(cx: &mut Ctx<'_>, section: &str, span: Range<usize>) {
    let names: Vec<&str> = SECTIONS.iter().map(|(name, _)| *name).collect();
    let hint = if section.eq_ignore_ascii_case("install") {
        Some("diakonos has no [install] section; use `diakonos enable NAME`".to_string())
    } else {
        suggest(section, &names).map(|s| format!("did you mean [{s}]?"))
    };
    cx.at(
        span,
        format!(
            "unknown section [{}]; expected [unit] or [service]",
            esc(section)
        ),
        hint,
    );
}

/// `[unit]`/`[Unit]` and `[service]`/`[Service]` (systemd's spelling).
fn canonical_section(section: &str) -> Option<&'static str> {
    match section {
        "unit" | "Unit" => Some("unit"),
        "service" | "Service" => Some("service"),
        _ => None,
    }
}

fn unknown_key(
    cx: &mut Ctx<'_>,
    section: &str,
    canon: &str,
    keys: &[(&str, Kind)],
    name: &str,
    span: Range<usize>,
) {
    let section = esc(section);
    let names: Vec<&str> = keys.iter().map(|(k, _)| *k).collect();
    let elsewhere = SECTIONS
        .iter()
        .find(|(other, keys)| *other != canon && keys.iter().any(|(k, _)| *k == name))
        .map(|(other, _)| format!("`{name}` belongs in [{other}]"));
    // A known systemd key is not a typo: say so before any near miss.
    let systemd = SYSTEMD_ONLY
        .iter()
        .find(|(k, _)| *k == name)
        .map(|(_, why)| format!("`{name}` is a systemd key diakonos does not support; {why}"));
    let hint = elsewhere
        .or(systemd)
        .or_else(|| suggest(name, &names).map(|s| format!("did you mean `{s}`?")));
    cx.at(
        span,
        format!(
            "unknown key `{}` in [{section}]; expected one of: {}",
            esc(name),
            names.join(", ")
        ),
        hint,
    );
}

fn article(type_name: &str) -> String {
    match type_name.chars().next() {
        Some('a' | 'e' | 'i' | 'o' | 'u') => format!("an {type_name}"),
        _ => format!("a {type_name}"),
    }
}

// ---------------------------------------------------------------------------
// Value checks: from raw values to a [`Unit`].

fn build(
    cx: &mut Ctx<'_>,
    name: &str,
    path: &Path,
    raw: &RawFile,
    shape: &Shape,
    service_dir: &Path,
) -> Option<Unit> {
    let default_unit = RawUnit::default();
    let u = raw.unit.as_ref().unwrap_or(&default_unit);
    let default_service = RawService::default();
    let s = match &raw.service {
        Some(s) => s,
        None => {
            let dropped = shape
                .dropped_sections
                .iter()
                .any(|d| canonical_section(d) == Some("service"));
            if !shape.service_reported && !dropped {
                cx.errors.push(UnitError {
                    path: cx.path.to_path_buf(),
                    pos: None,
                    message: "missing [service] section with ExecStart".to_string(),
                    hint: Some("add [service] with ExecStart = \"program args\"".to_string()),
                });
            }
            &default_service
        }
    };

    let description = u
        .description
        .as_ref()
        .map(|d| d.get_ref().clone())
        .unwrap_or_default();
    let requires = unit_names(cx, "Requires", name, u.requires.as_deref());
    let wants = unit_names(cx, "Wants", name, u.wants.as_deref());
    let after = unit_names(cx, "After", name, u.after.as_deref());
    let start_limit_burst = count(
        cx,
        "StartLimitBurst",
        u.start_limit_burst.as_ref(),
        u32::MAX.into(),
        5,
    );
    let start_limit_interval = secs(
        cx,
        "StartLimitIntervalSec",
        u.start_limit_interval_sec.as_ref(),
        Duration::from_secs(10),
        // Every start counts against the burst, for ever.
        Some(Duration::from_secs(MAX_SECS as u64)),
    );

    let kind = choice(
        cx,
        "Type",
        s.kind.as_ref(),
        &[
            ("simple", ServiceType::Simple),
            ("oneshot", ServiceType::Oneshot),
            ("forking", ServiceType::Forking),
            ("notify", ServiceType::Notify),
        ],
        ServiceType::Simple,
    );
    let environment = environment(cx, s.environment.as_deref());
    let mut warnings = Vec::new();
    let exec_start = match &s.exec_start {
        Some(cmd) => command(cx, "ExecStart", cmd, &environment, &mut warnings),
        None => {
            if raw.service.is_some() && !shape.has_exec_start {
                let span = shape.service_span.clone().unwrap_or(0..0);
                cx.at(
                    span,
                    "missing ExecStart in [service]; expected the command to run".to_string(),
                    Some("add ExecStart = \"program args\"".to_string()),
                );
            }
            None
        }
    };
    let exec_stop = s
        .exec_stop
        .as_ref()
        .and_then(|cmd| command(cx, "ExecStop", cmd, &environment, &mut warnings));
    let restart = choice(
        cx,
        "Restart",
        s.restart.as_ref(),
        &[
            ("always", RestartPolicy::Always),
            ("on-failure", RestartPolicy::OnFailure),
            ("no", RestartPolicy::No),
        ],
        RestartPolicy::OnFailure,
    );
    let restart_sec = secs(
        cx,
        "RestartSec",
        s.restart_sec.as_ref(),
        Duration::from_secs(1),
        None,
    );
    // A cap below the first delay would make the backoff shrink; it is taken
    // to mean "no backoff" rather than rejected.
    let restart_max_delay = secs(
        cx,
        "RestartMaxDelaySec",
        s.restart_max_delay_sec.as_ref(),
        restart_sec,
        None,
    )
    .max(restart_sec);
    let timeout_start = secs(
        cx,
        "TimeoutStartSec",
        s.timeout_start_sec.as_ref(),
        Duration::from_secs(30),
        // Zero is "no start timeout".
        Some(Duration::ZERO),
    );
    let timeout_stop = secs(
        cx,
        "TimeoutStopSec",
        s.timeout_stop_sec.as_ref(),
        Duration::from_secs(10),
        // Never SIGKILL: about 31 years.
        Some(Duration::from_secs(MAX_SECS as u64)),
    );
    let kill_signal = match &s.kill_signal {
        Some(value) => kill_signal(cx, value).unwrap_or(Signal::SIGTERM),
        None => Signal::SIGTERM,
    };
    let working_directory = path_value(
        cx,
        "WorkingDirectory",
        s.working_directory.as_ref(),
        service_dir,
    )
    .unwrap_or_else(|| service_dir.to_path_buf());
    let user = s.user.as_ref().and_then(|user| {
        let text = user.get_ref();
        if text.is_empty() {
            cx.at(
                user.span(),
                "`User` is empty; expected a user name or id".to_string(),
                None,
            );
            None
        } else if text.contains('\0') {
            cx.at(
                user.span(),
                "`User` contains a NUL character".to_string(),
                None,
            );
            None
        } else {
            Some(text.clone())
        }
    });
    let remain_after_exit = s.remain_after_exit.unwrap_or(false);
    let pid_file = path_value(cx, "PIDFile", s.pid_file.as_ref(), service_dir);
    let log_max_bytes = count(
        cx,
        "LogMaxBytes",
        s.log_max_bytes.as_ref(),
        i64::MAX,
        DEFAULT_LOG_MAX_BYTES.try_into().unwrap_or(i64::MAX),
    );
    let log_max_files = count(
        cx,
        "LogMaxFiles",
        s.log_max_files.as_ref(),
        MAX_LOG_FILES,
        DEFAULT_LOG_MAX_FILES.into(),
    );

    let mut places = Vec::new();
    let mut place = |key: &'static str, span: Option<Range<usize>>| {
        if let Some(span) = span {
            places.push((key, line_col(cx.text, span.start)));
        }
    };
    place("Type", s.kind.as_ref().map(Spanned::span));
    place("ExecStart", s.exec_start.as_ref().map(Spanned::span));
    place("ExecStop", s.exec_stop.as_ref().map(Spanned::span));
    place("User", s.user.as_ref().map(Spanned::span));
    place(
        "WorkingDirectory",
        s.working_directory.as_ref().map(Spanned::span),
    );
    Some(Unit {
        name: name.to_string(),
        path: path.to_path_buf(),
        description,
        requires,
        wants,
        after,
        start_limit_burst: u32::try_from(start_limit_burst).ok()?,
        start_limit_interval,
        kind,
        exec_start: exec_start?,
        exec_stop,
        restart,
        restart_sec,
        restart_max_delay,
        timeout_start,
        timeout_stop,
        kill_signal,
        working_directory,
        environment,
        user,
        remain_after_exit,
        pid_file,
        log_max_bytes: u64::try_from(log_max_bytes).ok()?,
        log_max_files: u32::try_from(log_max_files).ok()?,
        source: Source { places, warnings },
    })
}

/// A `*Sec` value: finite, 0 ..= MAX_SECS seconds, as a number or a systemd
/// time span string. `infinity` is what the string `"infinity"` means for
/// this key, or None where it means nothing (a restart delay). Never panics.
fn secs(
    cx: &mut Ctx<'_>,
    key: &str,
    value: Option<&Spanned<Number>>,
    default: Duration,
    infinity: Option<Duration>,
) -> Duration {
    let Some(value) = value else {
        return default;
    };
    let from_f64 = |f: f64| {
        // `f` may be -0.0 here, which is zero seconds.
        (f.is_finite() && f >= 0.0 && f <= MAX_SECS as f64)
            .then(|| Duration::try_from_secs_f64(f.max(0.0)).ok())
            .flatten()
    };
    let parsed = match value.get_ref() {
        Number::Int(n) if (0..=MAX_SECS).contains(n) => {
            u64::try_from(*n).ok().map(Duration::from_secs)
        }
        Number::Int(_) => None,
        Number::Float(f) => from_f64(*f),
        Number::Text(text) if text.trim() == "infinity" => match infinity {
            Some(d) => Some(d),
            None => {
                cx.at(
                    value.span(),
                    format!("`{key}` cannot be \"infinity\"; expected a time span like \"5s\""),
                    None,
                );
                return default;
            }
        },
        Number::Text(text) => match parse_time_span(text) {
            Ok(f) => from_f64(f),
            Err(why) => {
                cx.at(
                    value.span(),
                    format!("`{key}` is \"{}\": {why}", esc(text)),
                    Some(TIME_SPAN_HINT.to_string()),
                );
                return default;
            }
        },
    };
    parsed.unwrap_or_else(|| {
        // Show the literal as written: `1e300` rather than 301 digits.
        let shown = match value.get_ref() {
            Number::Int(n) => cx.literal(value.span(), n),
            Number::Float(f) => cx.literal(value.span(), f),
            Number::Text(t) => format!("\"{}\"", esc(t)),
        };
        cx.at(
            value.span(),
            format!("`{key}` is {shown}; expected {}", Kind::Secs.range()),
            None,
        );
        default
    })
}

const TIME_SPAN_HINT: &str =
    "write seconds as a number (5, 0.5) or a span like \"500ms\", \"5s\", \"1min 30s\", \"2h\"";

/// Units of a systemd time span, in seconds. `m` is minutes and `M` months,
/// as in systemd.time(7).
const TIME_UNITS: &[(&[&str], f64)] = &[
    (&["ns", "nsec"], 1e-9),
    (&["us", "usec", "µs", "μs"], 1e-6),
    (&["ms", "msec"], 1e-3),
    (&["s", "sec", "second", "seconds"], 1.0),
    (&["m", "min", "minute", "minutes"], 60.0),
    (&["h", "hr", "hour", "hours"], 3600.0),
    (&["d", "day", "days"], 86_400.0),
    (&["w", "week", "weeks"], 604_800.0),
    (&["M", "month", "months"], 2_629_800.0),
    (&["y", "year", "years"], 31_557_600.0),
];

/// Parses a systemd time span (`"5s"`, `"1min 30s"`, `"500ms"`, `"1.5h"`,
/// a bare `"5"` is seconds) into seconds. Pure; `"infinity"` is the caller's.
pub fn parse_time_span(text: &str) -> Result<f64, String> {
    let mut rest = text.trim_start();
    if rest.is_empty() {
        return Err("empty; expected a time span".to_string());
    }
    let mut total = 0.0f64;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, after) = rest.split_at(digits);
        let n: f64 = match number.parse() {
            Ok(n) if !number.is_empty() && !number.starts_with('.') => n,
            _ => {
                let what = if rest.starts_with('-') {
                    "a negative time span".to_string()
                } else {
                    format!("expected a number at `{}`", esc(rest))
                };
                return Err(what);
            }
        };
        let after = after.trim_start();
        let unit_len = after
            .find(|c: char| !c.is_alphabetic())
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        let scale = if unit.is_empty() {
            1.0
        } else {
            match TIME_UNITS.iter().find(|(names, _)| names.contains(&unit)) {
                Some(&(_, scale)) => scale,
                None => {
                    let names: Vec<&str> = TIME_UNITS
                        .iter()
                        .flat_map(|(names, _)| names.iter().copied())
                        .collect();
                    let hint = suggest(unit, &names)
                        .map(|s| format!(" (did you mean `{s}`?)"))
                        .unwrap_or_default();
                    return Err(format!(
                        "unknown time unit `{}`; expected ms, s, min, h, d, ...{hint}",
                        esc(unit)
                    ));
                }
            }
        };
        total += n * scale;
        rest = after.trim_start();
    }
    Ok(total)
}

/// An integer count in 0 ..= max.
fn count(cx: &mut Ctx<'_>, key: &str, value: Option<&Spanned<i64>>, max: i64, default: i64) -> i64 {
    let Some(value) = value else {
        return default;
    };
    let n = *value.get_ref();
    if (0..=max).contains(&n) {
        n
    } else {
        let shown = cx.literal(value.span(), n);
        cx.at(
            value.span(),
            format!("`{key}` is {shown}; expected {}", Kind::Count(max).range()),
            None,
        );
        default
    }
}

/// A strict lowercase choice such as Type or Restart.
fn choice<T: Copy>(
    cx: &mut Ctx<'_>,
    key: &str,
    value: Option<&Spanned<String>>,
    options: &[(&str, T)],
    default: T,
) -> T {
    let Some(value) = value else {
        return default;
    };
    let text = value.get_ref().as_str();
    if let Some(&(_, v)) = options.iter().find(|(name, _)| *name == text) {
        return v;
    }
    let names: Vec<&str> = options.iter().map(|(name, _)| *name).collect();
    cx.at(
        value.span(),
        format!(
            "unknown {key} `{}`; expected one of: {}",
            esc(text),
            names.join(", ")
        ),
        suggest(text, &names).map(|s| format!("did you mean `{s}`?")),
    );
    default
}

/// ExecStart / ExecStop: split like a shell, but no shell is run; then
/// variables are expanded from `env` (see [`expand_vars`]). A variable that
/// `env` does not set is a warning in `warnings`.
fn command(
    cx: &mut Ctx<'_>,
    key: &str,
    value: &Spanned<String>,
    env: &[(String, String)],
    warnings: &mut Vec<UnitError>,
) -> Option<Vec<String>> {
    let argv = split_command(cx, key, value)?;
    let mut unset = Vec::new();
    let argv = expand_vars(&argv, env, &mut unset);
    for name in unset {
        warnings.push(UnitError {
            path: cx.path.to_path_buf(),
            pos: Some(line_col(cx.text, value.span().start)),
            message: format!(
                "`{key}` uses ${name}, which Environment does not set; it expands to nothing"
            ),
            hint: Some(format!(
                "add \"{name}=...\" to Environment, or write $$ for a literal $"
            )),
        });
    }
    if argv.first().is_none_or(String::is_empty) {
        cx.at(
            value.span(),
            format!("`{key}` has no program once its variables are expanded"),
            Some("set the variable in Environment, or name the program directly".to_string()),
        );
        return None;
    }
    Some(argv)
}

/// Expands variables in ExecStart/ExecStop words as systemd does: a word
/// that is exactly `$NAME` becomes the value split on whitespace (zero or
/// more words), `${NAME}` anywhere in a word becomes the value inside that
/// one word, and `$$` is a literal `$`. Anything else (`$NAME` inside a word,
/// `$(`, `$1`) stays as written, so a `sh -c` script keeps its own `$X`.
/// The program (the first word) is never split.
/// Only the unit's own Environment is consulted, never the daemon's
/// environment, so a unit expands the same whoever started the daemon; an
/// unset variable expands to nothing (its name is pushed to `unset`).
pub fn expand_vars(
    argv: &[String],
    env: &[(String, String)],
    unset: &mut Vec<String>,
) -> Vec<String> {
    let mut lookup = |name: &str| {
        let found = env
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone());
        if found.is_none() && !unset.iter().any(|u| u == name) {
            unset.push(name.to_string());
        }
        found.unwrap_or_default()
    };
    let mut out = Vec::with_capacity(argv.len());
    for (i, word) in argv.iter().enumerate() {
        if let Some(name) = word.strip_prefix('$').filter(|n| is_var_name(n)) {
            if i == 0 {
                // The program stays one word: splitting it would run one of
                // its arguments instead.
                out.push(lookup(name));
            } else {
                out.extend(lookup(name).split_whitespace().map(str::to_string));
            }
            continue;
        }
        let mut expanded = String::with_capacity(word.len());
        let mut rest = word.as_str();
        while let Some(at) = rest.find('$') {
            expanded.push_str(&rest[..at]);
            let after = &rest[at + 1..];
            if let Some(after) = after.strip_prefix('$') {
                expanded.push('$');
                rest = after;
            } else if let Some((name, after)) = after
                .strip_prefix('{')
                .and_then(|a| a.split_once('}'))
                .filter(|(name, _)| is_var_name(name))
            {
                expanded.push_str(&lookup(name));
                rest = after;
            } else {
                expanded.push('$');
                rest = after;
            }
        }
        expanded.push_str(rest);
        out.push(expanded);
    }
    out
}

/// A variable name: a letter or `_`, then letters, digits and `_`.
fn is_var_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn split_command(cx: &mut Ctx<'_>, key: &str, value: &Spanned<String>) -> Option<Vec<String>> {
    match shell_words::split(value.get_ref()) {
        Err(err) => {
            cx.at(
                value.span(),
                format!("`{key}` cannot be split into arguments: {err}"),
                Some("balance the quotes; escape a literal quote with \\".to_string()),
            );
            None
        }
        Ok(argv) if argv.is_empty() => {
            cx.at(
                value.span(),
                format!("`{key}` is empty; expected a command like \"worker --id 1\""),
                None,
            );
            None
        }
        Ok(argv) if argv.iter().any(|a| a.contains('\0')) => {
            cx.at(
                value.span(),
                format!("`{key}` contains a NUL character"),
                None,
            );
            None
        }
        Ok(argv) => Some(argv),
    }
}

fn kill_signal(cx: &mut Ctx<'_>, value: &Spanned<SignalValue>) -> Option<Signal> {
    let (found, shown) = match value.get_ref() {
        SignalValue::Number(n) => (
            i32::try_from(*n)
                .ok()
                .and_then(|n| Signal::try_from(n).ok()),
            n.to_string(),
        ),
        SignalValue::Name(name) => (parse_signal_name(name), format!("\"{}\"", esc(name))),
    };
    if found.is_none() {
        let names: Vec<&str> = Signal::iterator().map(Signal::as_str).collect();
        let hint = match value.get_ref() {
            SignalValue::Name(name) => {
                let full = if name.to_ascii_uppercase().starts_with("SIG") {
                    name.clone()
                } else {
                    format!("SIG{name}")
                };
                suggest(&full, &names).map(|s| format!("did you mean `{s}`?"))
            }
            SignalValue::Number(_) => None,
        };
        cx.at(
            value.span(),
            format!("unknown KillSignal {shown}; expected {SIGNAL_EXPECTED}"),
            hint,
        );
    }
    found
}

/// "SIGTERM", "TERM", "sigterm" or "15".
fn parse_signal_name(name: &str) -> Option<Signal> {
    if let Ok(n) = name.parse::<i32>() {
        return Signal::try_from(n).ok();
    }
    let upper = name.to_ascii_uppercase();
    let full = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    Signal::from_str(&full).ok()
}

fn path_value(
    cx: &mut Ctx<'_>,
    key: &str,
    value: Option<&Spanned<String>>,
    base: &Path,
) -> Option<PathBuf> {
    let value = value?;
    let text = value.get_ref();
    if text.is_empty() {
        cx.at(
            value.span(),
            format!("`{key}` is empty; expected a path"),
            None,
        );
        return None;
    }
    if text.contains('\0') {
        cx.at(
            value.span(),
            format!("`{key}` contains a NUL character"),
            None,
        );
        return None;
    }
    Some(base.join(text))
}

fn environment(cx: &mut Ctx<'_>, entries: Option<&[Spanned<String>]>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for entry in entries.unwrap_or_default() {
        let text = entry.get_ref();
        if text.contains('\0') {
            cx.at(
                entry.span(),
                "`Environment` entry contains a NUL character".to_string(),
                None,
            );
            continue;
        }
        match text.split_once('=') {
            Some((key, value)) if !key.is_empty() => out.push((key.to_string(), value.to_string())),
            _ => cx.at(
                entry.span(),
                format!(
                    "`Environment` entry \"{}\" is not KEY=VALUE with a non-empty KEY",
                    esc(text)
                ),
                Some("write entries like \"LOG_LEVEL=info\"".to_string()),
            ),
        }
    }
    out
}

/// Requires / Wants / After: checked names, duplicates dropped, order kept.
fn unit_names(
    cx: &mut Ctx<'_>,
    key: &str,
    own: &str,
    names: Option<&[Spanned<String>]>,
) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for item in names.unwrap_or_default() {
        let name = item.get_ref();
        if name.is_empty() {
            cx.at(
                item.span(),
                format!("empty unit name in `{key}`; expected a unit name"),
                None,
            );
        } else if name.contains('/') {
            cx.at(
                item.span(),
                format!(
                    "`{key}` entry `{}` is not a unit name: it contains `/`",
                    esc(name)
                ),
                Some("name a unit by its file name without `.service`".to_string()),
            );
        } else if name == own {
            cx.at(
                item.span(),
                format!("unit `{own}` cannot depend on itself"),
                Some(format!("remove `{own}` from {key}")),
            );
        } else if !out.contains(name) {
            out.push(name.clone());
        }
    }
    out
}

// ---------------------------------------------------------------------------
// Checks against this host, for `verify`: what `start` would fail on.

/// What `start` would fail on here, found without starting anything: a
/// missing WorkingDirectory, an unknown User, an ExecStart/ExecStop program
/// that is not there or not executable (looked up as spawning does: on the
/// service's PATH, relative paths against its WorkingDirectory), and
/// `Type = "notify"` with another user. Each error is placed at its value.
/// `path_env` is the PATH the service would get when its Environment sets
/// none (the daemon's). Reads the file system and the user database only.
pub fn check_host(unit: &Unit, path_env: &std::ffi::OsStr) -> Vec<UnitError> {
    let mut errors = Vec::new();
    let mut error = |key: &str, message: String, hint: &str| {
        errors.push(UnitError {
            path: unit.path.clone(),
            pos: unit.source.place(key),
            message,
            hint: Some(hint.to_string()),
        });
    };
    let cwd = &unit.working_directory;
    let cwd_ok = cwd.is_dir();
    if !cwd_ok {
        let what = if cwd.exists() {
            "is not a directory"
        } else {
            "does not exist"
        };
        error(
            "WorkingDirectory",
            format!(
                "WorkingDirectory {} {what}",
                esc_all(&cwd.display().to_string())
            ),
            "create the directory, or fix WorkingDirectory",
        );
    }
    if let Some(name) = &unit.user {
        match nix::unistd::User::from_name(name) {
            Ok(Some(user)) => {
                let me = nix::unistd::Uid::effective();
                if unit.kind == ServiceType::Notify && user.uid != me {
                    error(
                        "User",
                        format!(
                            "Type = \"notify\" cannot work with User = \"{}\": the notify socket is in the daemon's home (mode 0700), which {} cannot reach, so READY=1 never arrives and the start times out",
                            esc(name),
                            esc(name)
                        ),
                        "use Type = \"simple\" (or \"forking\" with PIDFile) for this service, or drop User",
                    );
                }
            }
            Ok(None) => error(
                "User",
                format!("unknown User `{}`: no such user on this host", esc(name)),
                "create the user, or fix User",
            ),
            Err(e) => error(
                "User",
                format!("cannot look up User `{}`: {e}", esc(name)),
                "check the user database (/etc/passwd, NSS)",
            ),
        }
    }
    let path = unit
        .environment
        .iter()
        .rev()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| std::ffi::OsString::from(v))
        .unwrap_or_else(|| path_env.to_owned());
    let commands = [
        ("ExecStart", Some(&unit.exec_start)),
        ("ExecStop", unit.exec_stop.as_ref()),
    ];
    for (key, argv) in commands {
        let Some(program) = argv.and_then(|a| a.first()) else {
            continue;
        };
        // A relative path cannot be checked without its directory.
        if program.contains('/') && !Path::new(program).is_absolute() && !cwd_ok {
            continue;
        }
        if let Err(why) = find_program(program, &path, cwd) {
            error(
                key,
                format!("`{key}` program {why}"),
                "install it, fix the path, or set PATH in Environment",
            );
        }
    }
    errors.sort_by_key(|e| (e.pos.is_none(), e.pos));
    errors
}

/// Finds `program` as spawning does: a name with a `/` is a path (relative to
/// `cwd`), any other is looked up on `path` (relative entries against `cwd`).
/// The error says what is wrong, for "`ExecStart` program ...".
fn find_program(program: &str, path: &std::ffi::OsStr, cwd: &Path) -> Result<PathBuf, String> {
    use std::os::unix::fs::PermissionsExt;
    let shown = esc(program);
    if program.contains('/') {
        let file = cwd.join(program);
        // Shown without `.` parts; looked up as written.
        let shown_file = esc_all(&crate::paths::absolute(&file).display().to_string());
        return match fs::metadata(&file) {
            Err(_) => Err(format!("{shown_file} does not exist")),
            Ok(meta) if meta.is_dir() => Err(format!("{shown_file} is a directory")),
            Ok(meta) if meta.permissions().mode() & 0o111 == 0 => {
                Err(format!("{shown_file} is not executable"))
            }
            Ok(_) => Ok(file),
        };
    }
    let mut not_executable = None;
    for dir in std::env::split_paths(path) {
        let candidate = cwd.join(dir).join(program);
        if let Ok(meta) = fs::metadata(&candidate) {
            if meta.is_file() && meta.permissions().mode() & 0o111 != 0 {
                return Ok(candidate);
            }
            if meta.is_file() && not_executable.is_none() {
                not_executable = Some(candidate);
            }
        }
    }
    match not_executable {
        Some(file) => Err(format!(
            "`{shown}` is not executable ({})",
            esc_all(&file.display().to_string())
        )),
        None => Err(format!(
            "`{shown}` not found in PATH ({})",
            esc_all(&path.to_string_lossy())
        )),
    }
}

// ---------------------------------------------------------------------------
// Errors with positions.

/// Collects the errors of one file and turns byte spans into line:column.
struct Ctx<'a> {
    path: &'a Path,
    text: &'a str,
    errors: Vec<UnitError>,
}

impl Ctx<'_> {
    fn at(&mut self, span: Range<usize>, message: String, hint: Option<String>) {
        self.errors.push(UnitError {
            path: self.path.to_path_buf(),
            pos: Some(line_col(self.text, span.start)),
            message,
            hint,
        });
    }

    /// A TOML syntax error: toml's Display draws a multi-line caret picture,
    /// so only its one-line message is kept and the position is ours.
    fn syntax(&mut self, err: &toml::de::Error) {
        let mut message = one_line(err.message());
        let span = err.span().unwrap_or(0..0);
        let mut hint = None;
        if message == "duplicate key" {
            let key = self
                .text
                .get(span.clone())
                .unwrap_or_default()
                .trim_matches(|c: char| {
                    c == '[' || c == ']' || c == '"' || c == '\'' || c.is_whitespace()
                });
            if !key.is_empty() {
                message = format!("duplicate key `{}`", esc(key));
            }
            hint = Some("each key and each section may appear only once".to_string());
        }
        self.at(span, format!("invalid TOML: {message}"), hint);
    }

    /// A serde error left after the shape checks (an integer too large for
    /// 64 bits, say); named after the key whose value holds its span.
    fn serde(&mut self, err: &toml::de::Error, values: &[(String, Range<usize>)]) {
        let message = one_line(err.message());
        let span = err.span();
        let label = span.as_ref().and_then(|span| {
            values
                .iter()
                .filter(|(_, v)| v.start <= span.start && span.end <= v.end)
                .min_by_key(|(_, v)| v.end - v.start)
                .map(|(label, _)| label.clone())
        });
        let message = match label {
            Some(label) => format!("invalid value for {label}: {message}"),
            None => format!("invalid unit file: {message}"),
        };
        match span {
            Some(span) => self.at(span, message, None),
            None => self.errors.push(UnitError {
                path: self.path.to_path_buf(),
                pos: None,
                message,
                hint: None,
            }),
        }
    }

    /// The source text of a value, for messages; `fallback` if the span is
    /// somehow not in the text.
    fn literal(&self, span: Range<usize>, fallback: impl fmt::Display) -> String {
        match self.text.get(span) {
            Some(text) if !text.trim().is_empty() => esc(text.trim()),
            _ => fallback.to_string(),
        }
    }

    /// The errors in file order (errors without a position last).
    fn finish(mut self) -> Vec<UnitError> {
        self.errors.sort_by_key(|e| (e.pos.is_none(), e.pos));
        self.errors
    }
}

/// User text for a one-line message: control characters (a newline in a
/// quoted key, say) are shown escaped.
/// Quotes a value from the file for a message: control characters escaped,
/// and clipped, so a huge bad value makes a short error.
fn esc(text: &str) -> String {
    const MAX_CHARS: usize = 60;
    if text.chars().count() > MAX_CHARS {
        let head: String = text.chars().take(MAX_CHARS).collect();
        return format!("{}…", esc(&head));
    }
    esc_all(text)
}

/// Like [`esc`] but never clipped: for paths, which must be shown whole.
fn esc_all(text: &str) -> String {
    text.chars()
        .flat_map(|c| {
            let escaped: Vec<char> = if c.is_control() {
                c.escape_default().collect()
            } else {
                vec![c]
            };
            escaped
        })
        .collect()
}

fn one_line(message: &str) -> String {
    message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

/// 1-based line and column (in characters) of byte `offset` in `text`.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.bytes().filter(|&b| b == b'\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    // A byte-order mark is invisible in editors; do not count it as a column.
    let col = before[line_start..]
        .trim_start_matches('\u{feff}')
        .chars()
        .count()
        + 1;
    (line, col)
}

/// The closest candidate to `word`, if it is close enough to be a typo.
pub fn suggest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let word_lower = word.to_lowercase();
    let limit = (word.chars().count() / 3).max(1);
    candidates
        .iter()
        .map(|c| (edit_distance(&word_lower, &c.to_lowercase()), *c))
        .filter(|&(d, _)| d <= limit)
        .min_by_key(|&(d, _)| d)
        .map(|(_, c)| c)
}

/// Optimal string alignment distance: insertions, deletions, substitutions
/// and swaps of two neighbours each cost 1 (`Restrat` is 1 from `Restart`).
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut rows = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in rows.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in rows[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut d = (rows[i - 1][j] + 1)
                .min(rows[i][j - 1] + 1)
                .min(rows[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d = d.min(rows[i - 2][j - 2] + 1);
            }
            rows[i][j] = d;
        }
    }
    rows[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    const DIR: &str = "/srv/units";

    fn parse_ok(text: &str) -> Unit {
        match parse(
            "web",
            Path::new("/srv/units/web.service"),
            text,
            Path::new(DIR),
        ) {
            Ok(unit) => unit,
            Err(errors) => panic!("expected {text:?} to parse, got {errors:#?}"),
        }
    }

    fn parse_err(text: &str) -> Vec<UnitError> {
        match parse(
            "web",
            Path::new("/srv/units/web.service"),
            text,
            Path::new(DIR),
        ) {
            Ok(unit) => panic!("expected {text:?} to fail, got {unit:#?}"),
            Err(errors) => {
                assert!(!errors.is_empty(), "an Err must carry at least one error");
                for e in &errors {
                    assert!(!e.message.contains('\n'), "message must be one line: {e:?}");
                }
                errors
            }
        }
    }

    /// The single error of a unit text that should have exactly one.
    fn one_err(text: &str) -> UnitError {
        let mut errors = parse_err(text);
        assert_eq!(errors.len(), 1, "expected one error, got {errors:#?}");
        errors.remove(0)
    }

    fn service(body: &str) -> String {
        format!("[service]\nExecStart = \"worker\"\n{body}\n")
    }

    #[test]
    fn defaults_applied_for_minimal_unit() {
        // A unit with only ExecStart gets every SPEC §3 default.
        let unit = parse_ok("[service]\nExecStart = \"worker --id 1\"\n");
        assert_eq!(
            unit,
            Unit {
                name: "web".into(),
                path: PathBuf::from("/srv/units/web.service"),
                description: String::new(),
                requires: vec![],
                wants: vec![],
                after: vec![],
                start_limit_burst: 5,
                start_limit_interval: Duration::from_secs(10),
                kind: ServiceType::Simple,
                exec_start: vec!["worker".into(), "--id".into(), "1".into()],
                exec_stop: None,
                restart: RestartPolicy::OnFailure,
                restart_sec: Duration::from_secs(1),
                restart_max_delay: Duration::from_secs(1),
                timeout_start: Duration::from_secs(30),
                timeout_stop: Duration::from_secs(10),
                kill_signal: Signal::SIGTERM,
                working_directory: PathBuf::from(DIR),
                environment: vec![],
                user: None,
                remain_after_exit: false,
                pid_file: None,
                log_max_bytes: DEFAULT_LOG_MAX_BYTES,
                log_max_files: DEFAULT_LOG_MAX_FILES,
                source: Source::default(),
            }
        );
    }

    #[test]
    fn every_key_is_parsed() {
        // Each key of SPEC §3 plus the two log keys lands in its field.
        let unit = parse_ok(
            r#"
[unit]
Description = "Worker service"
Requires = ["database"]
Wants = ["cache"]
After = ["database", "cache"]
StartLimitBurst = 0
StartLimitIntervalSec = 2.5

[service]
Type = "forking"
ExecStart = "worker --name 'a b' \"c d\""
ExecStop = "worker-ctl stop"
Restart = "always"
RestartSec = 0.5
RestartMaxDelaySec = 60
TimeoutStartSec = 0
TimeoutStopSec = 3
KillSignal = "INT"
WorkingDirectory = "app"
Environment = ["LOG_LEVEL=info", "EMPTY=", "EQ=a=b"]
User = "nobody"
RemainAfterExit = true
PIDFile = "/run/app.pid"
LogMaxBytes = 0
LogMaxFiles = 7
"#,
        );
        assert_eq!(unit.description, "Worker service");
        assert_eq!(unit.requires, ["database"]);
        assert_eq!(unit.wants, ["cache"]);
        assert_eq!(unit.after, ["database", "cache"]);
        assert_eq!(unit.start_limit_burst, 0);
        assert_eq!(unit.start_limit_interval, Duration::from_millis(2500));
        assert_eq!(unit.kind, ServiceType::Forking);
        assert_eq!(unit.exec_start, ["worker", "--name", "a b", "c d"]);
        assert_eq!(
            unit.exec_stop,
            Some(vec!["worker-ctl".into(), "stop".into()])
        );
        assert_eq!(unit.restart, RestartPolicy::Always);
        assert_eq!(unit.restart_sec, Duration::from_millis(500));
        assert_eq!(unit.restart_max_delay, Duration::from_secs(60));
        assert_eq!(unit.timeout_start, Duration::ZERO);
        assert_eq!(unit.timeout_stop, Duration::from_secs(3));
        assert_eq!(unit.kill_signal, Signal::SIGINT);
        assert_eq!(unit.working_directory, PathBuf::from("/srv/units/app"));
        assert_eq!(
            unit.environment,
            [
                ("LOG_LEVEL".to_string(), "info".to_string()),
                ("EMPTY".to_string(), String::new()),
                ("EQ".to_string(), "a=b".to_string()),
            ]
        );
        assert_eq!(unit.user.as_deref(), Some("nobody"));
        assert!(unit.remain_after_exit);
        assert_eq!(unit.pid_file, Some(PathBuf::from("/run/app.pid")));
        assert_eq!(unit.log_max_bytes, 0);
        assert_eq!(unit.log_max_files, 7);
    }

    #[test]
    fn relative_paths_resolve_against_the_service_dir() {
        // WorkingDirectory and PIDFile given relative are joined onto the service dir.
        let unit = parse_ok(&service(
            "WorkingDirectory = \"../app\"\nPIDFile = \"run/app.pid\"",
        ));
        assert_eq!(unit.working_directory, PathBuf::from("/srv/units/../app"));
        assert_eq!(unit.pid_file, Some(PathBuf::from("/srv/units/run/app.pid")));
        let unit = parse_ok(&service("WorkingDirectory = \"/opt\""));
        assert_eq!(unit.working_directory, PathBuf::from("/opt"));
    }

    #[test]
    fn syntax_error_has_position_and_one_line_message() {
        // A TOML syntax error keeps toml's message but not its caret drawing.
        let e = one_err("[service]\nExecStart = \"worker\n");
        assert_eq!(e.pos, Some((2, 20)));
        assert!(e.message.starts_with("invalid TOML: "), "{e:?}");
        let e = one_err("[service\nExecStart = \"x\"\n");
        assert_eq!(e.pos, Some((1, 9)));
    }

    #[test]
    fn duplicate_key_is_named() {
        // A repeated key is a syntax error that names the key and its second place.
        let e = one_err("[service]\nExecStart = \"a\"\nExecStart = \"b\"\n");
        assert_eq!(e.pos, Some((3, 1)));
        assert_eq!(e.message, "invalid TOML: duplicate key `ExecStart`");
    }

    #[test]
    fn unknown_key_suggests_near_miss() {
        // A typo'd key is placed at the key, lists the valid keys and suggests the near one.
        let e = one_err(&service("Restrat = \"always\""));
        assert_eq!(e.pos, Some((3, 1)));
        assert!(
            e.message.starts_with(
                "unknown key `Restrat` in [service]; expected one of: Type, ExecStart, ExecStop, Restart,"
            ),
            "{}",
            e.message
        );
        assert!(
            e.message.ends_with("LogMaxBytes, LogMaxFiles"),
            "{}",
            e.message
        );
        assert_eq!(e.hint.as_deref(), Some("did you mean `Restart`?"));
        assert_eq!(
            e.to_string(),
            format!(
                "/srv/units/web.service:3:1: {}\n  hint: did you mean `Restart`?",
                e.message
            )
        );
    }

    #[test]
    fn suggestions_cover_case_and_misplaced_keys_but_not_strangers() {
        // Case slips and keys of the other section get a hint; unrelated words get none.
        assert_eq!(
            one_err(&service("PidFile = \"x\"")).hint.as_deref(),
            Some("did you mean `PIDFile`?")
        );
        assert_eq!(
            one_err(&service("Requires = [\"db\"]")).hint.as_deref(),
            Some("`Requires` belongs in [unit]")
        );
        assert_eq!(one_err(&service("Frobnicate = 1")).hint, None);
        assert!(one_err(&service("ExecReload = \"x\""))
            .hint
            .is_some_and(|h| h.contains("systemd")));
        assert_eq!(
            suggest("Restartt", &["Restart", "RestartSec"]),
            Some("Restart")
        );
        assert_eq!(suggest("Exec", &["ExecStart", "ExecStop"]), None);
    }

    #[test]
    fn unknown_sections_and_stray_keys_are_errors() {
        // Sections other than [unit]/[service], and keys above any header, are rejected with a place;
        // a misspelled [service] is not reported a second time as missing.
        let e = one_err("[Servise]\nExecStart = \"x\"\n");
        assert_eq!(e.pos, Some((1, 2)));
        assert!(e.message.starts_with("unknown section [Servise]"), "{e:?}");
        assert_eq!(e.hint.as_deref(), Some("did you mean [service]?"));

        let errors = parse_err("[service]\nExecStart = \"x\"\n[install]\nWantedBy = \"x\"\n");
        assert_eq!(errors.len(), 1, "{errors:#?}");
        assert_eq!(errors[0].pos, Some((3, 2)));
        assert!(errors[0]
            .hint
            .as_deref()
            .is_some_and(|h| h.contains("enable")));

        let errors = parse_err("ExecStart = \"x\"\n[service]\nExecStart = \"y\"\n");
        assert_eq!(errors.len(), 1, "{errors:#?}");
        assert_eq!(errors[0].pos, Some((1, 1)));
        assert_eq!(errors[0].hint.as_deref(), Some("put it under [service]"));

        let e = one_err("[[service]]\nExecStart = \"x\"\n");
        assert!(e.message.contains("[[service]]"), "{e:?}");
    }

    #[test]
    fn wrong_types_are_placed_at_the_value() {
        // A value of the wrong TOML type names the key, what was expected and what was found.
        let e = one_err(&service("RestartSec = [5]"));
        assert_eq!(e.pos, Some((3, 14)));
        assert_eq!(
            e.message,
            "`RestartSec` in [service] must be a number of seconds (like 5 or 0.5) or a time span (like \"1min 30s\"), not an array"
        );
        let e = one_err("[unit]\nRequires = \"db\"\n[service]\nExecStart = \"x\"\n");
        assert_eq!(e.pos, Some((2, 12)));
        assert!(e.hint.is_some_and(|h| h.contains("[\"...\"]")));
        let e = one_err("[unit]\nAfter = [\"db\", 3]\n[service]\nExecStart = \"x\"\n");
        assert_eq!(e.pos, Some((2, 16)));
        assert!(e.message.contains("element 2 is an integer"), "{e:?}");
        let e = one_err("[service]\nExecStart = [\"worker\"]\n");
        assert_eq!(e.pos, Some((2, 13)));
        assert!(e.message.contains("not an array"), "{e:?}");
        let e = one_err(&service("RemainAfterExit = \"yes\""));
        assert!(e.message.contains("true or false"), "{e:?}");
    }

    #[test]
    fn bad_enum_values_list_valid_ones() {
        // Type and Restart are strict lowercase strings; a bad one lists the valid ones.
        let e = one_err(&service("Type = \"Simple\""));
        assert_eq!(e.pos, Some((3, 8)));
        assert_eq!(
            e.message,
            "unknown Type `Simple`; expected one of: simple, oneshot, forking, notify"
        );
        assert_eq!(e.hint.as_deref(), Some("did you mean `simple`?"));
        let e = one_err(&service("Restart = \"sometimes\""));
        assert_eq!(
            e.message,
            "unknown Restart `sometimes`; expected one of: always, on-failure, no"
        );
        let e = one_err(&service("Restart = \"on_failure\""));
        assert_eq!(e.hint.as_deref(), Some("did you mean `on-failure`?"));
    }

    #[test]
    fn duration_edge_cases() {
        // Durations take integers or fractions in 0..=1e9 seconds; everything else errors without panicking.
        let ok = |v: &str| parse_ok(&service(&format!("RestartSec = {v}"))).restart_sec;
        assert_eq!(ok("0"), Duration::ZERO);
        assert_eq!(ok("0.0"), Duration::ZERO);
        assert_eq!(ok("-0.0"), Duration::ZERO);
        assert_eq!(ok("0.25"), Duration::from_millis(250));
        assert_eq!(ok("1_000_000_000"), Duration::from_secs(1_000_000_000));
        assert_eq!(ok("1e9"), Duration::from_secs(1_000_000_000));
        for bad in [
            "-1",
            "-0.5",
            "1_000_000_001",
            "9223372036854775807",
            "-9223372036854775808",
            "1e300",
            "1e400",
            "inf",
            "+inf",
            "-inf",
            "nan",
            "-nan",
        ] {
            let e = one_err(&service(&format!("RestartSec = {bad}")));
            assert_eq!(e.pos, Some((3, 14)), "{bad}");
            assert!(
                e.message.starts_with("`RestartSec` is ")
                    && e.message
                        .ends_with("expected a number of seconds from 0 to 1000000000"),
                "{bad}: {e:?}"
            );
        }
    }

    #[test]
    fn integers_beyond_64_bits_error_without_panic() {
        // An integer literal too large for i64 is reported at its place.
        let e = one_err(&service("RestartSec = 99999999999999999999"));
        assert_eq!(e.pos, Some((3, 14)));
        assert_eq!(
            e.message,
            "`RestartSec` is 99999999999999999999; expected a number of seconds from 0 to 1000000000"
        );
        let e = one_err(&service("LogMaxBytes = 0xffffffffffffffff"));
        assert_eq!(e.pos, Some((3, 15)));
        assert!(e
            .message
            .starts_with("`LogMaxBytes` is 0xffffffffffffffff; expected an integer"));
        let e = one_err(&service("KillSignal = 99999999999999999999"));
        assert!(e.message.contains("a number like 15"), "{e:?}");
        // Other errors in the same file are still reported alongside.
        let errors = parse_err(&service(
            "RestartSec = 1e400
Type = \"x\"",
        ));
        assert_eq!(errors.len(), 2, "{errors:#?}");
    }

    #[test]
    fn restart_max_delay_defaults_to_and_never_undercuts_restart_sec() {
        // RestartMaxDelaySec defaults to RestartSec and is clamped up to it.
        let unit = parse_ok(&service("RestartSec = 5"));
        assert_eq!(unit.restart_max_delay, Duration::from_secs(5));
        let unit = parse_ok(&service("RestartSec = 5\nRestartMaxDelaySec = 2"));
        assert_eq!(unit.restart_max_delay, Duration::from_secs(5));
        let unit = parse_ok(&service("RestartSec = 5\nRestartMaxDelaySec = 20"));
        assert_eq!(unit.restart_max_delay, Duration::from_secs(20));
    }

    #[test]
    fn counts_are_range_checked() {
        // StartLimitBurst, LogMaxBytes and LogMaxFiles reject negative and oversized values.
        let e = one_err("[unit]\nStartLimitBurst = -1\n[service]\nExecStart = \"x\"\n");
        assert_eq!(e.pos, Some((2, 19)));
        assert_eq!(
            e.message,
            "`StartLimitBurst` is -1; expected an integer from 0 to 4294967295"
        );
        let e = one_err("[unit]\nStartLimitBurst = 4294967296\n[service]\nExecStart = \"x\"\n");
        assert!(e.message.contains("4294967296"), "{e:?}");
        one_err(&service("LogMaxBytes = -1"));
        one_err(&service("LogMaxFiles = 1001"));
        assert_eq!(parse_ok(&service("LogMaxFiles = 0")).log_max_files, 0);
        let big = parse_ok(&service("LogMaxBytes = 9223372036854775807"));
        assert_eq!(big.log_max_bytes, i64::MAX as u64);
    }

    #[test]
    fn kill_signal_accepts_names_and_numbers() {
        // KillSignal takes "SIGTERM", "TERM" or a number; unknown ones error with a suggestion.
        let sig = |v: &str| parse_ok(&service(&format!("KillSignal = {v}"))).kill_signal;
        assert_eq!(sig("\"SIGKILL\""), Signal::SIGKILL);
        assert_eq!(sig("\"HUP\""), Signal::SIGHUP);
        assert_eq!(sig("\"sigint\""), Signal::SIGINT);
        assert_eq!(sig("9"), Signal::SIGKILL);
        assert_eq!(sig("\"15\""), Signal::SIGTERM);
        let e = one_err(&service("KillSignal = \"SIGTREM\""));
        assert_eq!(e.pos, Some((3, 14)));
        assert!(
            e.message
                .starts_with("unknown KillSignal \"SIGTREM\"; expected"),
            "{e:?}"
        );
        assert_eq!(e.hint.as_deref(), Some("did you mean `SIGTERM`?"));
        for bad in ["0", "999", "-9", "9999999999999", "\"\""] {
            one_err(&service(&format!("KillSignal = {bad}")));
        }
    }

    #[test]
    fn exec_lines_are_split_without_a_shell() {
        // ExecStart/ExecStop split on quotes; empty lines and unbalanced quotes error at the value.
        let unit = parse_ok("[service]\nExecStart = '''sh -c \"echo hi; exit 1\"'''\n");
        assert_eq!(unit.exec_start, ["sh", "-c", "echo hi; exit 1"]);
        let e = one_err("[service]\nExecStart = \"  \"\n");
        assert_eq!(e.pos, Some((2, 13)));
        assert!(e.message.starts_with("`ExecStart` is empty"), "{e:?}");
        let e = one_err("[service]\nExecStart = \"worker 'oops\"\n");
        assert_eq!(e.pos, Some((2, 13)));
        assert!(e.message.contains("missing closing quote"), "{e:?}");
        let e = one_err(&service("ExecStop = \"\""));
        assert_eq!(e.pos, Some((3, 12)));
        let e = one_err("[service]\nExecStart = \"worker \\u0000\"\n");
        assert!(e.message.contains("NUL"), "{e:?}");
    }

    #[test]
    fn environment_entries_must_be_key_value() {
        // Each Environment entry needs KEY=VALUE with a non-empty key and no NUL.
        let errors = parse_err(&service(
            "Environment = [\"OK=1\", \"NOEQUALS\", \"=v\", \"A=\\u0000\"]",
        ));
        let places: Vec<_> = errors.iter().map(|e| e.pos).collect();
        assert_eq!(places, [Some((3, 24)), Some((3, 36)), Some((3, 42))]);
        assert!(errors[0].message.contains("\"NOEQUALS\" is not KEY=VALUE"));
        assert!(errors[2].message.contains("NUL"));
    }

    #[test]
    fn dependency_lists_are_checked_and_deduplicated() {
        // Requires/Wants/After drop duplicates in order and refuse empty, `/` and self names.
        let unit =
            parse_ok("[unit]\nAfter = [\"b\", \"a\", \"b\"]\n[service]\nExecStart = \"x\"\n");
        assert_eq!(unit.after, ["b", "a"]);
        let errors = parse_err(
            "[unit]\nRequires = [\"web\", \"\", \"a/b\"]\n[service]\nExecStart = \"x\"\n",
        );
        assert_eq!(errors.len(), 3, "{errors:#?}");
        assert_eq!(errors[0].pos, Some((2, 13)));
        assert_eq!(errors[0].message, "unit `web` cannot depend on itself");
        assert_eq!(errors[1].pos, Some((2, 20)));
        assert_eq!(errors[2].pos, Some((2, 24)));
    }

    #[test]
    fn empty_strings_for_user_and_paths_are_errors() {
        // User, WorkingDirectory and PIDFile must not be empty.
        let errors = parse_err(&service(
            "User = \"\"\nWorkingDirectory = \"\"\nPIDFile = \"\"",
        ));
        let lines: Vec<_> = errors.iter().map(|e| e.pos.map(|p| p.0)).collect();
        assert_eq!(lines, [Some(3), Some(4), Some(5)]);
    }

    #[test]
    fn nul_bytes_in_text_are_refused() {
        // Raw NUL bytes get a clear error at their place instead of a TOML message.
        let e = one_err("[service]\nExecStart = \"a\0b\"\n");
        assert_eq!(e.pos, Some((2, 15)));
        assert!(e.message.contains("NUL byte"), "{e:?}");
    }

    #[test]
    fn missing_service_or_exec_start() {
        // No [service] (or an empty file) and a [service] without ExecStart are both errors.
        for text in [
            "",
            "\n\n",
            "# just a comment\n",
            "[unit]\nDescription = \"x\"\n",
        ] {
            let e = one_err(text);
            assert_eq!(
                e.message, "missing [service] section with ExecStart",
                "{text:?}"
            );
            assert_eq!(e.pos, None);
        }
        let e = one_err("[unit]\n\n[service]\nType = \"oneshot\"\n");
        assert_eq!(e.pos, Some((3, 2)));
        assert!(
            e.message.starts_with("missing ExecStart in [service]"),
            "{e:?}"
        );
    }

    #[test]
    fn multiple_errors_are_reported_together_in_file_order() {
        // Unknown keys, wrong types and bad values in one file all come back at once, sorted by line.
        let errors = parse_err(
            "[unit]\nRequires = [\"web\"]\nStartLimitBurst = -2\n[service]\nType = \"daemon\"\nExecStart = \"x\"\nRestrat = \"no\"\nRestartSec = -1\nTimeoutStopSec = \"10 parsecs\"\nKillSignal = \"NOPE\"\n",
        );
        let lines: Vec<_> = errors.iter().map(|e| e.pos.map(|p| p.0)).collect();
        assert_eq!(
            lines,
            [
                Some(2),
                Some(3),
                Some(5),
                Some(7),
                Some(8),
                Some(9),
                Some(10)
            ],
            "{errors:#?}"
        );
    }

    #[test]
    fn user_text_in_messages_stays_on_one_line() {
        // Control characters from the file (quoted keys, values) are escaped in messages.
        let e = one_err(&service("\"Re\\nstart\" = 1"));
        assert!(e.message.starts_with("unknown key `Re\\nstart`"), "{e:?}");
        let e = one_err(&service("Type = \"a\\nb\""));
        assert!(e.message.starts_with("unknown Type `a\\nb`"), "{e:?}");
        let e = one_err(&service("Environment = [\"x\\ny\"]"));
        assert!(e.message.contains("x\\ny"), "{e:?}");
    }

    #[test]
    fn no_mangled_input_panics() {
        // Every prefix and many byte-mangled variants of a full unit parse or fail cleanly.
        let full = "[unit]\nDescription = \"é w\"\nRequires = [\"db\"]\nStartLimitIntervalSec = 2.5\n[service]\nExecStart = \"w 'a b'\"\nRestartSec = 1e3\nKillSignal = 9\nEnvironment = [\"A=1\"]\n";
        let check = |text: &str| {
            if let Err(errors) = parse("web", Path::new("web.service"), text, Path::new(DIR)) {
                assert!(!errors.is_empty(), "{text:?}");
                for e in errors {
                    assert!(
                        !e.message.contains('\n') && !e.message.is_empty(),
                        "{text:?}: {e:?}"
                    );
                }
            }
        };
        for (i, _) in full.char_indices() {
            check(&full[..i]);
        }
        const POOL: &[u8] = b"[]\"'=.,-+0e9_\n#\\ {}infa";
        let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
        for _ in 0..3000 {
            let mut bytes = full.as_bytes().to_vec();
            for _ in 0..3 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let at = (seed % bytes.len() as u64) as usize;
                bytes[at] = POOL[(seed >> 32) as usize % POOL.len()];
            }
            if let Ok(text) = std::str::from_utf8(&bytes) {
                check(text);
            }
        }
    }

    #[test]
    fn line_col_counts_characters() {
        // Columns count characters, not bytes, and ignore a leading byte-order mark.
        assert_eq!(line_col("abc", 0), (1, 1));
        assert_eq!(line_col("a\nbc", 3), (2, 2));
        assert_eq!(line_col("é = 1", 3), (1, 3));
        assert_eq!(line_col("é", 1), (1, 1));
        assert_eq!(line_col("x", 99), (1, 2));
        assert_eq!(line_col("\u{feff}[service]", 3), (1, 1));
        let e = one_err("\u{feff}[service]\nExecStart = \"\"\n");
        assert_eq!(e.pos, Some((2, 13)));
    }

    #[test]
    fn systemd_section_names_are_accepted() {
        // [Unit] and [Service] load like [unit] and [service]; both spellings of one section is an error.
        let unit = parse_ok(
            "[Unit]\nDescription = \"d\"\n[Service]\nExecStart = \"worker\"\nRestart = \"no\"\n",
        );
        assert_eq!(unit.description, "d");
        assert_eq!(unit.restart, RestartPolicy::No);
        let e = one_err("[service]\nExecStart = \"a\"\n[Service]\nRestart = \"no\"\n");
        assert_eq!(e.pos, Some((3, 2)));
        assert!(e.message.contains("[Service] repeats [service]"), "{e:?}");
        let e = one_err("[Service]\nExecStart = \"a\"\nRestrat = \"no\"\n");
        assert!(
            e.message.starts_with("unknown key `Restrat` in [Service]"),
            "{e:?}"
        );
        assert_eq!(e.hint.as_deref(), Some("did you mean `Restart`?"));
    }

    #[test]
    fn durations_take_systemd_time_spans() {
        // Every duration key takes "5s", "1min 30s", "500ms"; "infinity" only where it means something.
        let unit = parse_ok(&service(
            "RestartSec = \"500ms\"\nRestartMaxDelaySec = \"1min 30s\"\nTimeoutStartSec = \"infinity\"\nTimeoutStopSec = \"2h\"",
        ));
        assert_eq!(unit.restart_sec, Duration::from_millis(500));
        assert_eq!(unit.restart_max_delay, Duration::from_secs(90));
        assert_eq!(unit.timeout_start, Duration::ZERO);
        assert_eq!(unit.timeout_stop, Duration::from_secs(7200));
        let unit = parse_ok(&service(
            "TimeoutStopSec = \"infinity\"\nTimeoutStartSec = \"5\"",
        ));
        assert!(unit.timeout_stop >= Duration::from_secs(365 * 86_400));
        assert_eq!(unit.timeout_start, Duration::from_secs(5));
        let unit =
            parse_ok("[unit]\nStartLimitIntervalSec = \"1min\"\n[service]\nExecStart = \"x\"\n");
        assert_eq!(unit.start_limit_interval, Duration::from_secs(60));
        let e = one_err(&service("RestartSec = \"infinity\""));
        assert_eq!(e.pos, Some((3, 14)));
        assert!(e.message.contains("cannot be \"infinity\""), "{e:?}");
        let e = one_err(&service("RestartSec = \"5 secs\""));
        assert!(e.message.contains("unknown time unit `secs`"), "{e:?}");
        assert!(e.message.contains("did you mean `sec`"), "{e:?}");
        one_err(&service("RestartSec = \"-5s\""));
        one_err(&service("RestartSec = \"\""));
        one_err(&service("RestartSec = \"100y\""));
        one_err(&service("RestartSec = true"));
    }

    #[test]
    fn time_spans_parse_like_systemd() {
        // parse_time_span adds its parts; a bare number is seconds; `m` is minutes, `M` months.
        for (text, secs) in [
            ("5", 5.0),
            ("5s", 5.0),
            ("1min 30s", 90.0),
            ("1min30s", 90.0),
            ("500ms", 0.5),
            ("1.5h", 5400.0),
            ("2 m", 120.0),
            ("1d 2h", 93_600.0),
            ("  10 sec ", 10.0),
        ] {
            let got = parse_time_span(text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
            assert!((got - secs).abs() < 1e-9, "{text:?}: {got}");
        }
        for bad in ["", "s", "5 parsecs", "-1s", "1..2s", ".5s", "5s x"] {
            assert!(parse_time_span(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn exec_lines_expand_variables_from_environment_like_systemd() {
        // ${X} stays one word, a whole-word $X splits on whitespace, $$ is `$`, $X inside a word stays.
        let unit = parse_ok(concat!(
            "[service]\nExecStart = '''server ${ARGS} $ARGS --port=${PORT} $$HOME x$PORT $(y) $1'''\n",
            "ExecStop = \"ctl $EMPTY stop\"\n",
            "Environment = [\"ARGS=-a  -b\", \"PORT=80\", \"PORT=81\", \"EMPTY=\"]\n"
        ));
        assert_eq!(
            unit.exec_start,
            [
                "server",
                "-a  -b",
                "-a",
                "-b",
                "--port=81",
                "$HOME",
                "x$PORT",
                "$(y)",
                "$1"
            ]
        );
        assert_eq!(
            unit.exec_stop,
            Some(vec!["ctl".to_string(), "stop".to_string()])
        );
        assert!(
            unit.source.warnings.is_empty(),
            "{:?}",
            unit.source.warnings
        );
    }

    #[test]
    fn an_unset_variable_expands_to_nothing_with_a_warning() {
        // $X and ${X} that Environment does not set are empty (the daemon's environment is not read) and warned about once.
        let unit = parse_ok(&service("ExecStop = \"ctl $HOME ${HOME}x ${NOPE}\""));
        assert_eq!(
            unit.exec_stop,
            Some(vec!["ctl".to_string(), "x".to_string(), String::new()])
        );
        let w = &unit.source.warnings;
        assert_eq!(w.len(), 2, "{w:?}");
        assert_eq!(w[0].pos, Some((3, 12)));
        assert!(w[0].message.contains("$HOME"), "{w:?}");
        assert!(w[1].message.contains("$NOPE"), "{w:?}");
        let e = one_err("[service]\nExecStart = \"$BIN --x\"\n");
        assert!(e.message.contains("no program"), "{e:?}");
    }

    #[test]
    fn source_places_do_not_make_units_differ() {
        // A moved line changes where values were written, not the unit.
        let a = parse_ok("[service]\nExecStart = \"worker\"\n");
        let b = parse_ok("# moved\n\n[service]\nExecStart = \"worker\"\n");
        assert_eq!(a.source.place("ExecStart"), Some((2, 13)));
        assert_eq!(b.source.place("ExecStart"), Some((4, 13)));
        assert_eq!(a, b);
    }

    // -- load_dir ---------------------------------------------------------

    /// A scratch directory under the system temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(label: &str) -> TempDir {
            static COUNTER: AtomicUsize = AtomicUsize::new(0);
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let path = std::env::temp_dir()
                .join("diakonos-unit-tests")
                .join(format!("{label}-{}-{n}", std::process::id()));
            let _ = fs::remove_dir_all(&path);
            fs::create_dir_all(&path).expect("create temp dir");
            TempDir(path)
        }

        fn write(&self, name: &str, text: impl AsRef<[u8]>) {
            fs::write(self.0.join(name), text).expect("write test file");
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    const GOOD: &str = "[service]\nExecStart = \"worker\"\n";

    #[test]
    fn host_specific_files_load_only_on_their_host_and_win() {
        // NAME@HOST.service loads as NAME only on HOST, replaces NAME.service there, with a warning.
        let dir = TempDir::new("hosts");
        dir.write("web.service", GOOD);
        dir.write(
            "web@box1.service",
            "[service]\nExecStart = \"worker --box1\"\n",
        );
        dir.write("db@box2.service", GOOD);
        dir.write("cache.service", GOOD);
        dir.write("notes.txt", "not a unit");

        let on_box1 = load_dir(&dir.0, "box1").expect("load");
        assert_eq!(on_box1.units.keys().collect::<Vec<_>>(), ["cache", "web"]);
        let web = on_box1.units["web"].as_ref().expect("web loads");
        assert_eq!(web.exec_start, ["worker", "--box1"]);
        assert_eq!(web.path, dir.0.join("web@box1.service"));
        assert_eq!(web.working_directory, dir.0);
        assert_eq!(on_box1.warnings.len(), 1, "{:?}", on_box1.warnings);
        assert!(on_box1.warnings[0].contains("using web@box1.service instead of web.service"));

        let on_box2 = load_dir(&dir.0, "box2").expect("load");
        assert_eq!(
            on_box2.units.keys().collect::<Vec<_>>(),
            ["cache", "db", "web"]
        );
        let web = on_box2.units["web"].as_ref().expect("web loads");
        assert_eq!(web.exec_start, ["worker"]);
        assert!(on_box2.warnings.is_empty(), "{:?}", on_box2.warnings);
    }

    #[test]
    fn bad_entries_become_invalid_units_not_io_errors() {
        // A directory, a dangling symlink, a loop, a FIFO, bad UTF-8 and a bad name each fail only their unit.
        let dir = TempDir::new("bad-entries");
        dir.write("good.service", GOOD);
        fs::create_dir(dir.0.join("adir.service")).expect("mkdir");
        std::os::unix::fs::symlink(dir.0.join("nowhere"), dir.0.join("dangling.service"))
            .expect("symlink");
        std::os::unix::fs::symlink(dir.0.join("loop.service"), dir.0.join("loop.service"))
            .expect("symlink");
        nix::unistd::mkfifo(&dir.0.join("fifo.service"), nix::sys::stat::Mode::S_IRWXU)
            .expect("mkfifo");
        dir.write("latin1.service", b"[service]\nExecStart = \"caf\xe9\"\n");
        dir.write("my app.service", GOOD);
        dir.write("empty.service", "");

        let loaded = load_dir(&dir.0, "box").expect("load");
        let err = |name: &str| match &loaded.units[name] {
            Ok(unit) => panic!("{name} should be invalid, got {unit:?}"),
            Err(errors) => errors[0].clone(),
        };
        assert!(loaded.units["good"].is_ok());
        let e = err("adir");
        assert!(e.message.contains("is a directory"), "{e:?}");
        assert_eq!(e.path, dir.0.join("adir.service"));
        assert!(err("dangling").message.contains("dangling symlink"));
        assert!(err("loop").message.contains("symlink loop"));
        assert!(err("fifo").message.contains("not a regular file"));
        let e = err("latin1");
        assert!(e.message.contains("not valid UTF-8"), "{e:?}");
        assert_eq!(e.pos, Some((2, 17)));
        let e = err("my app");
        assert!(e.message.contains("invalid unit name `my app`"), "{e:?}");
        assert_eq!(
            err("empty").message,
            "missing [service] section with ExecStart"
        );
        assert_eq!(loaded.units.len(), 8);
    }

    #[test]
    fn odd_file_names_are_skipped_with_warnings() {
        // Hidden files are ignored; `.service`, `@HOST.service` and `NAME@.service` are warnings, not units.
        let dir = TempDir::new("odd-names");
        dir.write(".#web.service", GOOD);
        dir.write(".service", GOOD);
        dir.write("@box.service", GOOD);
        dir.write("web@.service", GOOD);
        dir.write("web.service.bak", GOOD);
        let loaded = load_dir(&dir.0, "box").expect("load");
        assert!(loaded.units.is_empty(), "{:?}", loaded.units);
        assert_eq!(loaded.warnings.len(), 3, "{:?}", loaded.warnings);
        let skipped_hidden = !loaded.warnings.iter().any(|w| w.contains(".#web"));
        assert!(skipped_hidden);
    }

    #[test]
    fn unreadable_directory_is_the_only_io_error() {
        // Only a service dir that cannot be read at all gives Err.
        let dir = TempDir::new("missing");
        assert!(load_dir(&dir.0.join("absent"), "box").is_err());
    }

    #[test]
    fn systemd_only_keys_are_named_as_such_not_as_typos() {
        // ExecStartPre is a systemd key, not a misspelt ExecStart.
        let errs = parse(
            "a",
            Path::new("/u/a.service"),
            "[service]\nExecStart = \"x\"\nExecStartPre = \"y\"\n",
            Path::new("/u"),
        )
        .unwrap_err();
        let hint = errs[0].hint.clone().unwrap_or_default();
        assert!(hint.contains("systemd key"), "{hint}");
        assert!(!hint.contains("did you mean"), "{hint}");
    }
}
