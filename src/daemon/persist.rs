//! What survives the daemon: `HOME/state` (what is supervised, so a new
//! daemon can adopt it) and `HOME/enabled` (what starts with every daemon).
//!
//! The state file is JSON, replaced atomically (temp file, rename) and then
//! made durable (fsync of the file and the directory). A file that does not parse is moved aside and
//! the daemon starts without it; one that is JSON but has a bad value loses only the record the
//! value is in (a copy of it as it was is kept). (Process identity lives in `procfs`.)

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub const STATE_VERSION: u32 = 1;

/// The whole state file.
///
/// Readers ignore fields they do not know (releases up to protocol 3 denied
/// them), so a file written by a newer daemon still loads after a downgrade;
/// fields added later are left out while they hold nothing, so such a file
/// also reads in those older releases, as long as it holds none of them (one
/// with `ended`, `starting`, `restart_at_ms`, `failures` or `watchdog_ms` is moved aside
/// there; those releases still adopt the services by their tags).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SavedState {
    pub version: u32,
    /// The service directory the daemon owned; a new daemon started without
    /// `--service-dir` takes it over.
    #[serde(default)]
    pub service_dir: Option<PathBuf>,
    pub services: Vec<SavedService>,
    /// `Persistent = true` timers, by unit name (SPEC §15). Left out when
    /// there is none, so such a file reads like an older one.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub timers: BTreeMap<String, SavedTimer>,
    /// Units that had ended (`failed` or `exited`): a new daemon shows them
    /// as they were, not `inactive`. Each has no process; `since_unix` is
    /// when it ended, and `failed`, `exit_code`, `exit_signal` say how.
    /// (The services' own record, so no second one is decoded.) Left out
    /// when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ended: Vec<SavedService>,
    /// The boot this was written in and when its daemons began: a daemon
    /// of the same boot that adopts the services carries on from it (a
    /// crash, an upgrade), so OnBootSec does not fire twice. Left out by
    /// `kill`: the next daemon starts afresh.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot: Option<SavedBoot>,
    /// Every `[timer]` unit's runs, by unit name (only meaningful with
    /// `boot`). Left out when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub runs: Runs,
}

/// Every `[timer]` unit's [`SavedRun`], by unit name. (A list: there are
/// few, and a map of its own cost the static binary ~9 KiB.)
pub type Runs = Vec<(String, SavedRun)>;

/// The boot a state was written in. In the file as one string, `ID
/// STARTED_MS` (as are the other small records below: a derived visitor
/// for each cost the static binary ~5 KiB; a string's is there already).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct SavedBoot {
    /// `/proc/sys/kernel/random/boot_id`.
    pub id: String,
    /// CLOCK_MONOTONIC ms when the first daemon (of the ones that handed
    /// over to each other) started: what OnBootSec counts from.
    pub started_ms: u64,
}

/// What a `[timer]` unit's timer did, kept across daemons of one boot.
/// In the file: `ARMED FIRED BOOT_DONE LAST_RUN` (`-` for none, 0/1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct SavedRun {
    /// When the timer was armed (enabled), in ms after
    /// [`SavedBoot::started_ms`]; None while it is not.
    pub armed_ms: Option<u64>,
    /// The last elapse, in ms after [`SavedBoot::started_ms`]
    /// (OnUnitActiveSec counts from it).
    pub fired_ms: Option<u64>,
    /// OnBootSec has elapsed.
    pub boot_done: bool,
    /// Unix ms of the last start by the timer (what `timers` shows).
    pub last_run_ms: Option<i64>,
}

/// What a `Persistent` timer keeps across daemons.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedTimer {
    /// Unix ms: calendar elapses up to here are accounted for (run, skipped
    /// by Overlap, or before the timer was first armed); a later one that
    /// has passed when the timer is armed again was missed.
    pub elapsed_ms: i64,
    /// Unix ms of the last start by the timer.
    #[serde(default)]
    pub last_run_ms: Option<i64>,
}

impl SavedState {
    /// Whether this state was written in another boot than `boot_id`
    /// (this one's): a state without a boot says nothing.
    pub fn from_another_boot(&self, boot_id: Option<&str>) -> bool {
        matches!((&self.boot, boot_id), (Some(b), Some(id)) if b.id != id)
    }

    /// For a state written in another boot: none of its processes can
    /// live (and a pid and start time of it may match one of this boot's).
    /// What was running, starting or waiting to restart starts again
    /// afresh, as at its first start: no restart counted, no start-limit
    /// history, nothing of its last run but its name. What was being
    /// stopped is stopped. Units that had ended stay as they ended.
    pub fn after_reboot(&mut self) {
        self.services.retain(|s| !s.stopping);
        for s in &mut self.services {
            *s = SavedService {
                name: std::mem::take(&mut s.name),
                ..SavedService::default()
            };
        }
    }
}

/// One service that was wanted up when the state was written.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SavedService {
    pub name: String,
    /// The main process, if one was running.
    pub pid: Option<i32>,
    /// Its start time in clock ticks since boot (field 22 of /proc/PID/stat).
    pub start_time: Option<u64>,
    /// Unix seconds when it started running (for uptime after adoption).
    pub since_unix: Option<u64>,
    pub restarts: u32,
    /// A oneshot that finished and stays "running" (RemainAfterExit).
    #[serde(default)]
    pub remain: bool,
    /// It was being stopped: a new daemon finishes the stop. (`ended`:
    /// it was stopped, `inactive` with a history: its last exit and
    /// restart count.)
    #[serde(default)]
    pub stopping: bool,
    /// The process group of a RemainAfterExit oneshot (its background
    /// processes), so a new daemon can still stop them.
    #[serde(default)]
    pub pgid: Option<i32>,
    /// The service's last sd_notify STATUS= (kept across a daemon crash).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_text: Option<String>,
    /// Its last health probes, oldest first (kept across a daemon crash).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub probes: Vec<crate::protocol::ProbeRecord>,
    /// It was still starting (not up yet): a new daemon takes it over as
    /// starting, with what was left of TimeoutStartSec.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starting: Option<SavedStart>,
    /// It was waiting to be restarted: when (Unix ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_at_ms: Option<u64>,
    /// The watchdog interval the service set with WATCHDOG_USEC= (ms),
    /// over its WatchdogSec.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watchdog_ms: Option<u64>,
    /// Consecutive failures, for the backoff of its next restart.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub failures: u32,
    /// (`ended` only) why it failed, as `status` said it; None: it exited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed: Option<String>,
    /// (`ended` only) how its last process ended: an exit code, or a
    /// signal's name (neither: unknown, or none ran).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_signal: Option<String>,
    /// (Services) why it waits to be restarted, as `status` said it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_reason: Option<String>,
    /// (Services) the starts in its StartLimitIntervalSec window (Unix ms).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub starts_ms: Vec<u64>,
    /// (Services) how far its stop had come (`stopping`): "signalled"
    /// (KillSignal sent) or "killed" (SIGKILL sent), and its deadline
    /// (Unix ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<SavedStop>,
    /// (Services) the digest of the unit file whose definition its process
    /// runs ([`crate::unit::Digest`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit_digest: Option<u64>,
    /// (Services) its health verdict, failed probes in a row, and whether
    /// a probe of this run passed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<SavedHealth>,
}

/// A stop under way when the state was written. In the file: `PHASE
/// DEADLINE_MS`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct SavedStop {
    pub phase: String,
    pub deadline_ms: u64,
}

/// A running service's health as the previous daemon judged it. In the
/// file: `VERDICT STREAK PASSED_ONCE`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct SavedHealth {
    /// `starting`, `healthy` or `unhealthy`.
    pub verdict: String,
    pub streak: u32,
    pub passed_once: bool,
}

/// The words of a record written as one string, read back one by one.
struct Words<'a>(std::str::SplitWhitespace<'a>);

impl<'a> Words<'a> {
    fn of(text: &'a str) -> Words<'a> {
        Words(text.split_whitespace())
    }

    fn word(&mut self) -> Result<&'a str, String> {
        self.0.next().ok_or_else(|| "a record is short".to_owned())
    }

    /// A number (every field is read as u64: one parser, not one a type).
    fn num(&mut self) -> Result<u64, String> {
        let w = self.word()?;
        w.parse().map_err(|_| format!("`{w}` is not a number"))
    }

    /// A number or `-` (none).
    fn opt(&mut self) -> Result<Option<u64>, String> {
        let w = self.word()?;
        match w {
            "-" => Ok(None),
            _ => w
                .parse()
                .map(Some)
                .map_err(|_| format!("`{w}` is not a number")),
        }
    }
}

fn opt_text<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

impl From<SavedBoot> for String {
    fn from(b: SavedBoot) -> String {
        format!("{} {}", b.id, b.started_ms)
    }
}

impl TryFrom<String> for SavedBoot {
    type Error = String;
    fn try_from(text: String) -> Result<SavedBoot, String> {
        let mut w = Words::of(&text);
        Ok(SavedBoot {
            id: w.word()?.to_owned(),
            started_ms: w.num()?,
        })
    }
}

impl From<SavedRun> for String {
    fn from(r: SavedRun) -> String {
        format!(
            "{} {} {} {}",
            opt_text(r.armed_ms),
            opt_text(r.fired_ms),
            u8::from(r.boot_done),
            opt_text(r.last_run_ms)
        )
    }
}

impl TryFrom<String> for SavedRun {
    type Error = String;
    fn try_from(text: String) -> Result<SavedRun, String> {
        let mut w = Words::of(&text);
        Ok(SavedRun {
            armed_ms: w.opt()?,
            fired_ms: w.opt()?,
            boot_done: w.num()? == 1,
            last_run_ms: w.opt()?.and_then(|n| i64::try_from(n).ok()),
        })
    }
}

impl From<SavedStop> for String {
    fn from(s: SavedStop) -> String {
        format!("{} {}", s.phase, s.deadline_ms)
    }
}

impl TryFrom<String> for SavedStop {
    type Error = String;
    fn try_from(text: String) -> Result<SavedStop, String> {
        let mut w = Words::of(&text);
        Ok(SavedStop {
            phase: w.word()?.to_owned(),
            deadline_ms: w.num()?,
        })
    }
}

impl From<SavedHealth> for String {
    fn from(h: SavedHealth) -> String {
        format!("{} {} {}", h.verdict, h.streak, u8::from(h.passed_once))
    }
}

impl TryFrom<String> for SavedHealth {
    type Error = String;
    fn try_from(text: String) -> Result<SavedHealth, String> {
        let mut w = Words::of(&text);
        Ok(SavedHealth {
            verdict: w.word()?.to_owned(),
            streak: u32::try_from(w.num()?).unwrap_or(u32::MAX),
            passed_once: w.num()? == 1,
        })
    }
}

/// A start under way when the state was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedStart {
    /// TimeoutStartSec's deadline (Unix ms); None: no timeout.
    pub deadline_ms: Option<u64>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// Writes `bytes` to `path` atomically: a crash leaves the old or the new
/// file, never half of one. With `sync`, the data is on disk before the
/// rename and the rename is on disk before returning (power loss); without
/// it, the replacement is atomic for every process at once (a daemon crash),
/// and [`sync`] can make it durable later.
pub fn write_atomic(path: &Path, bytes: &[u8], sync_now: bool) -> io::Result<()> {
    let tmp = tmp_path(path);
    let result = (|| {
        let mut f = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(bytes)?;
        if sync_now {
            f.sync_all()?;
        }
        fs::rename(&tmp, path)?;
        if sync_now {
            sync_dir(path)?;
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

fn sync_dir(path: &Path) -> io::Result<()> {
    match path.parent() {
        Some(dir) => File::open(dir)?.sync_all(),
        None => Ok(()),
    }
}

/// Makes an earlier unsynced [`write_atomic`] of `path` durable: the file's
/// data, then the directory entry.
pub fn sync(path: &Path) -> io::Result<()> {
    File::open(path)?.sync_all()?;
    sync_dir(path)
}

fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".tmp");
    PathBuf::from(name)
}

/// Replaces the state file atomically, without waiting for the disk: the
/// caller runs [`sync`] once the clients waiting on this pass have their
/// answers (an fsync can wait on a whole journal commit).
pub fn save_state(path: &Path, state: &SavedState) -> io::Result<()> {
    let bytes = serde_json::to_vec(state).map_err(io::Error::other)?;
    write_atomic(path, &bytes, false)
}

/// Reads the state file. A missing file is an empty state; a file that does
/// not parse is moved aside (`state.corrupt-UNIXTIME`) and reported.
pub fn load_state(path: &Path) -> (SavedState, Option<String>) {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return (SavedState::default(), None),
        Err(e) => {
            return (
                SavedState::default(),
                Some(format!(
                    "cannot read {}: {e}; starting without it",
                    path.display()
                )),
            )
        }
    };
    match parse_state(&bytes) {
        Ok(state) if state.version == STATE_VERSION => (state, None),
        Ok(state) => (
            SavedState::default(),
            Some(aside(path, &format!("it has version {}", state.version))),
        ),
        Err(e) => match salvage(&bytes) {
            Some((state, dropped)) => {
                let why = format!("{} unreadable: {e}", dropped.join(", "));
                let warning = keep_aside(path, &why);
                (state, Some(warning))
            }
            None => (SavedState::default(), Some(aside(path, &e.to_string()))),
        },
    }
}

/// The parts of a state file that read, when the whole does not: a record
/// that fails (`boot`, `runs`, `timers`, `service_dir`) is left out
/// whole, and so is each service or ended unit that fails, so one bad
/// value costs only what it is part of. Returns the state and what was left out, or
/// None when the file is no JSON object with this build's `version` (or
/// nothing had to be left out: the error was elsewhere).
fn salvage(bytes: &[u8]) -> Option<(SavedState, Vec<String>)> {
    use serde_json::{Map, Value};
    let Ok(Value::Object(mut top)) = serde_json::from_slice::<Value>(bytes) else {
        return None;
    };
    let version = top.get("version")?.clone();
    // Each part is tried on its own, in an otherwise empty state (the one
    // decoder, `parse_state`, for all of them).
    let reads = |key: &str, value: &Value| {
        let mut one = Map::new();
        one.insert("version".into(), version.clone());
        one.insert("services".into(), Value::Array(Vec::new()));
        one.insert(key.into(), value.clone());
        serde_json::to_vec(&Value::Object(one)).is_ok_and(|b| parse_state(&b).is_ok())
    };
    let mut dropped = Vec::new();
    for key in ["boot", "runs", "timers", "service_dir"] {
        if top.get(key).is_some_and(|v| !reads(key, v)) {
            top.remove(key);
            dropped.push(format!("`{key}`"));
        }
    }
    // The lists of units, one unit at a time.
    for (key, what) in [("services", "services"), ("ended", "ended units")] {
        match top.get_mut(key) {
            Some(Value::Array(list)) => {
                let before = list.len();
                list.retain(|one| reads(key, &Value::Array(vec![one.clone()])));
                if list.len() < before {
                    dropped.push(format!("{} of {before} {what}", before - list.len()));
                }
            }
            Some(_) if key == "services" => {
                top.insert(key.into(), Value::Array(Vec::new()));
                dropped.push(format!("`{key}`"));
            }
            Some(_) => {
                top.remove(key);
                dropped.push(format!("`{key}`"));
            }
            None => {}
        }
    }
    if dropped.is_empty() {
        return None;
    }
    let state = parse_state(&serde_json::to_vec(&Value::Object(top)).ok()?).ok()?;
    (state.version == STATE_VERSION).then_some((state, dropped))
}

/// The one decoder of the state file (out of line: two callers would
/// otherwise each carry a copy of it, ~7 KiB).
#[inline(never)]
fn parse_state(bytes: &[u8]) -> serde_json::Result<SavedState> {
    serde_json::from_slice(bytes)
}

/// The state file as it is, for a reader that is not the daemon (a client):
/// nothing moved aside, empty when it cannot be read.
pub fn peek_state(path: &Path) -> SavedState {
    fs::read(path)
        .ok()
        .and_then(|bytes| parse_state(&bytes).ok())
        .filter(|s| s.version == STATE_VERSION)
        .unwrap_or_default()
}

/// Where a state file that did not read is kept: `state.corrupt-UNIXTIME`.
fn corrupt_path(path: &Path) -> PathBuf {
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let mut target = path.as_os_str().to_owned();
    target.push(format!(".corrupt-{stamp}"));
    PathBuf::from(target)
}

/// For a state file read in part ([`salvage`]): a copy of it as it was is
/// kept beside it (the daemon's next write replaces the file).
fn keep_aside(path: &Path, why: &str) -> String {
    let target = corrupt_path(path);
    match fs::copy(path, &target) {
        Ok(_) => format!(
            "state file {}: left out what did not read ({why}) and kept the rest; the file as it was is in {}",
            path.display(),
            target.display()
        ),
        Err(e) => format!(
            "state file {}: left out what did not read ({why}) and kept the rest; cannot keep a copy of it: {e}",
            path.display()
        ),
    }
}

fn aside(path: &Path, why: &str) -> String {
    let target = corrupt_path(path);
    match fs::rename(path, &target) {
        Ok(()) => format!(
            "state file {} is unreadable ({why}); moved it to {} and started without it",
            path.display(),
            target.display()
        ),
        Err(e) => format!(
            "state file {} is unreadable ({why}) and cannot be moved aside: {e}",
            path.display()
        ),
    }
}

/// The enabled unit names, one per line.
pub fn load_enabled(path: &Path) -> BTreeSet<String> {
    fs::read_to_string(path)
        .map(|text| {
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

pub fn save_enabled(path: &Path, names: &BTreeSet<String>) -> io::Result<()> {
    let mut text = String::from(
        "# units started whenever a diakonos daemon starts (diakonos enable/disable)\n",
    );
    for name in names {
        text.push_str(name);
        text.push('\n');
    }
    write_atomic(path, text.as_bytes(), true)
}

#[cfg(test)]
mod tests;
