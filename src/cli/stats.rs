//! `stats` and `list --wide` (SPEC §12): per unit, its whole process groups
//! as `/proc` shows them, measured in the CLIENT on request (the daemon only
//! says which groups are whose; no periodic sampling, no idle cost). CPU%
//! comes from two real samples: the CPU time the group's processes gained
//! between them over the time between them.

use crate::hash::HashMap;
use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};

use crate::procfs;
use crate::protocol::UnitInfo;

/// Between the two samples of a one-shot `stats` or `list --wide` that
/// has no recent sample to measure from.
pub const INTERVAL: Duration = Duration::from_millis(250);

/// A kept sample is measured from once it is this old (shorter intervals
/// would make the CPU% coarse: ticks are 10 ms)...
pub const MIN_AGE: Duration = INTERVAL;
/// ...and until it is this old (an older one would average over too long).
pub const MAX_AGE: Duration = Duration::from_secs(10);

/// One process as a sample saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Proc {
    pub pgrp: i32,
    /// utime + stime, clock ticks.
    pub ticks: u64,
    pub threads: u64,
    pub rss_pages: u64,
    /// Open descriptors (None: not ours to look at).
    pub fds: Option<u64>,
}

/// The processes of some process groups at one moment (on the boot clock,
/// which `/proc` start times count on), keyed by pid and start time (a
/// reused pid is another process).
#[derive(Debug, Clone, Default)]
pub struct Sample {
    pub at: Option<Duration>,
    pub procs: HashMap<(i32, u64), Proc>,
}

/// Reads every process in `/proc` once and keeps the members of `groups`
/// (and their descendants, under their group: [`procfs::attribute`]):
/// one read of each `/proc/PID/stat` (parsed in place), one stat of each
/// member's `/proc/PID/fd`, one path buffer for all.
pub fn sample(groups: &BTreeSet<i32>) -> Sample {
    let mut out = Sample {
        at: procfs::boot_time(),
        procs: HashMap::default(),
    };
    if groups.is_empty() {
        return out;
    }
    let Ok(dir) = fs::read_dir("/proc") else {
        return out;
    };
    let mut path = String::with_capacity(32);
    let mut all = Vec::new();
    for entry in dir.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|s| s.parse().ok()) else {
            continue;
        };
        match procfs::stat_with(&mut path, pid) {
            Some(st) if !st.zombie => all.push(st),
            _ => {}
        }
    }
    // Descendants that left their group (setsid) count for its unit.
    let wanted: Vec<i32> = groups.iter().copied().collect();
    let owners = procfs::attribute(&all, &wanted, 0);
    for (st, owner) in all.into_iter().zip(owners) {
        let Some(group) = owner else { continue };
        let pid = st.pid;
        let fds = procfs::fd_count_with(&mut path, pid);
        out.procs.insert(
            (pid, st.start_time),
            Proc {
                pgrp: group,
                ticks: st.utime + st.stime,
                threads: st.threads,
                rss_pages: st.rss_pages,
                fds,
            },
        );
    }
    out
}

/// Whether CPU% over `now` can be measured from `earlier`: each process of
/// `now` is in it, or certainly started after it (so all of its CPU time
/// was gained since). A process of a group `earlier` did not look at that
/// is older than it is not, and neither is a sample from the future (a
/// reboot) or one without a time.
pub fn measurable(earlier: &Sample, now: &Sample, ticks_per_sec: u64) -> bool {
    let (Some(then), Some(at)) = (earlier.at, now.at) else {
        return false;
    };
    if then > at {
        return false;
    }
    // Start times are whole ticks, rounded down: a start tick at or past
    // the sample's time rounded up is certainly later.
    let tps = u128::from(ticks_per_sec.max(1));
    let after_tick = (then.as_nanos() * tps).div_ceil(1_000_000_000);
    now.procs
        .keys()
        .all(|key| earlier.procs.contains_key(key) || u128::from(key.1) >= after_tick)
}

/// Which earlier sample a one-shot measurement uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Base {
    /// This kept sample, as it is.
    Kept(usize),
    /// This kept sample, after waiting this long for it to be old enough.
    KeptAfter(usize, Duration),
    /// None fits: take two samples [`INTERVAL`] apart.
    Fresh,
}

/// Chooses what `now` is measured from among the `kept` samples: the
/// newest that is measurable and between [`MIN_AGE`] and [`MAX_AGE`] old;
/// else the oldest measurable one younger than that, waiting until it is
/// old enough; else two fresh samples. PURE.
pub fn choose_base(kept: &[Sample], now: &Sample, ticks_per_sec: u64) -> Base {
    let Some(at) = now.at else {
        return Base::Fresh;
    };
    let mut ripe: Option<(usize, Duration)> = None;
    let mut young: Option<(usize, Duration)> = None;
    for (i, k) in kept.iter().enumerate() {
        if !measurable(k, now, ticks_per_sec) {
            continue;
        }
        let Some(age) = k.at.map(|t| at.saturating_sub(t)) else {
            continue;
        };
        if age > MAX_AGE {
            continue;
        }
        if age >= MIN_AGE {
            if ripe.is_none_or(|(_, a)| age < a) {
                ripe = Some((i, age));
            }
        } else if young.is_none_or(|(_, a)| age > a) {
            young = Some((i, age));
        }
    }
    match (ripe, young) {
        (Some((i, _)), _) => Base::Kept(i),
        (None, Some((i, age))) => Base::KeptAfter(i, MIN_AGE - age),
        (None, None) => Base::Fresh,
    }
}

/// What is kept for the next one-shot measurement: the newest of `older`
/// that is old enough to measure from at the time of `now`, and the oldest
/// that is not yet (else `now`), which will be. So `stats` run again and
/// again, faster than [`MIN_AGE`], always finds a ripe one and never waits.
pub fn to_keep(older: Vec<Sample>, now: Sample) -> Vec<Sample> {
    let Some(at) = now.at else {
        return Vec::new();
    };
    let age = |s: &Sample| s.at.filter(|&t| t <= at).map(|t| at - t);
    let mut ripe: Option<Sample> = None;
    let mut young: Option<Sample> = None;
    for s in older {
        let Some(a) = age(&s) else { continue };
        if (MIN_AGE..=MAX_AGE).contains(&a) && ripe.as_ref().is_none_or(|r| s.at > r.at) {
            ripe = Some(s);
        } else if a < MIN_AGE && young.as_ref().is_none_or(|y| s.at < y.at) {
            young = Some(s);
        }
    }
    ripe.into_iter().chain(Some(young.unwrap_or(now))).collect()
}

/// The file format of the kept samples: a header line, then per sample an
/// `at NANOS` line (boot clock) and one `PID START TICKS` line per process.
const KEPT_HEADER: &str = "diakonos stats samples 1";

pub fn encode(samples: &[Sample]) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(64 + samples.len() * 4096);
    out.push_str(KEPT_HEADER);
    out.push('\n');
    for s in samples {
        let Some(at) = s.at else { continue };
        let _ = writeln!(out, "at {}", at.as_nanos());
        for ((pid, start), p) in &s.procs {
            let _ = writeln!(out, "{pid} {start} {}", p.ticks);
        }
    }
    out
}

/// The samples of a kept file; nothing when it is not one (a damaged file
/// costs one fresh measurement, no error).
pub fn decode(text: &str) -> Vec<Sample> {
    let mut lines = text.lines();
    if lines.next() != Some(KEPT_HEADER) {
        return Vec::new();
    }
    let mut out: Vec<Sample> = Vec::new();
    for line in lines {
        if let Some(ns) = line.strip_prefix("at ") {
            let Ok(ns) = ns.parse::<u64>() else {
                return Vec::new();
            };
            out.push(Sample {
                at: Some(Duration::from_nanos(ns)),
                procs: HashMap::default(),
            });
            continue;
        }
        let mut f = line.split(' ');
        let (Some(pid), Some(start), Some(ticks), None, Some(s)) =
            (f.next(), f.next(), f.next(), f.next(), out.last_mut())
        else {
            return Vec::new();
        };
        let (Ok(pid), Ok(start), Ok(ticks)) = (pid.parse(), start.parse(), ticks.parse()) else {
            return Vec::new();
        };
        s.procs.insert(
            (pid, start),
            Proc {
                pgrp: 0,
                ticks,
                threads: 0,
                rss_pages: 0,
                fds: None,
            },
        );
    }
    out
}

/// A one-shot measurement of `groups`: (the sample it is measured from,
/// the sample now). With a `kept` file (`HOME/stats.samples`), the last
/// `stats` run's sample is the first one when it fits ([`choose_base`]), so
/// a `stats` soon after another takes one look at `/proc` and does not
/// wait; otherwise it waits [`INTERVAL`] between two. Either way the
/// figure is CPU time really gained over real time between two samples.
pub fn once(groups: &BTreeSet<i32>, kept: Option<&Path>) -> (Sample, Sample) {
    let mut now = sample(groups);
    if groups.is_empty() {
        return (now.clone(), now);
    }
    let older = kept
        .and_then(|p| fs::read_to_string(p).ok())
        .map(|t| decode(&t))
        .unwrap_or_default();
    let (before, older) = match choose_base(&older, &now, procfs::ticks_per_sec()) {
        Base::Kept(i) => (older[i].clone(), older),
        Base::KeptAfter(i, wait) => {
            std::thread::sleep(wait);
            now = sample(groups);
            (older[i].clone(), older)
        }
        Base::Fresh => {
            std::thread::sleep(INTERVAL);
            let first = std::mem::replace(&mut now, sample(groups));
            (first.clone(), vec![first])
        }
    };
    if let Some(path) = kept {
        store(path, &to_keep(older, now.clone()));
    }
    (before, now)
}

/// Replaces the kept file (a temporary file renamed over it: a `stats`
/// running at the same time reads the old or the new one). Best effort:
/// the next run measures afresh when this fails.
fn store(path: &Path, samples: &[Sample]) {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".tmp.{}", std::process::id()));
    let tmp = PathBuf::from(tmp);
    let written = fs::write(&tmp, encode(samples)).and_then(|()| fs::rename(&tmp, path));
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
}

/// One unit's numbers (None where it runs nothing).
#[derive(Debug, Clone, PartialEq)]
pub struct UnitStats {
    pub name: String,
    pub state: String,
    pub pid: Option<u32>,
    pub processes: Option<u64>,
    pub rss_bytes: Option<u64>,
    pub group_rss_bytes: Option<u64>,
    pub cpu_seconds: Option<f64>,
    pub cpu_percent: Option<f64>,
    pub threads: Option<u64>,
    pub fds: Option<u64>,
    pub uptime_secs: Option<u64>,
    pub restarts: u32,
}

/// The process groups of `units`.
pub fn groups_of(units: &[UnitInfo]) -> BTreeSet<i32> {
    // Inserts, not a `collect` (which sorts: a sort more in the binary).
    let mut groups = BTreeSet::new();
    for u in units {
        groups.extend(u.pgids.iter().map(|&g| g as i32));
    }
    groups
}

/// Each unit's numbers from two samples (`before` earlier than `after`).
/// PURE apart from nothing: ticks per second and page size are arguments.
pub fn compute(
    units: &[UnitInfo],
    before: &Sample,
    after: &Sample,
    ticks_per_sec: u64,
    page: u64,
) -> Vec<UnitStats> {
    let elapsed = match (before.at, after.at) {
        (Some(a), Some(b)) => b.saturating_sub(a),
        _ => Duration::ZERO,
    };
    let tps = ticks_per_sec.max(1) as f64;
    units
        .iter()
        .map(|u| {
            let mut s = UnitStats {
                name: u.name.clone(),
                state: u.state.as_str().to_owned(),
                pid: u.pid,
                processes: None,
                rss_bytes: None,
                group_rss_bytes: None,
                cpu_seconds: None,
                cpu_percent: None,
                threads: None,
                fds: None,
                uptime_secs: u.uptime_secs,
                restarts: u.restarts,
            };
            if u.pgids.is_empty() && u.pid.is_none() {
                return s;
            }
            let groups: Vec<i32> = u.pgids.iter().map(|&g| g as i32).collect();
            let mine = |p: &Proc| groups.contains(&p.pgrp);
            let (mut n, mut rss, mut ticks, mut threads, mut fds, mut gained) =
                (0u64, 0u64, 0u64, 0u64, 0u64, 0u64);
            for (key, p) in after.procs.iter().filter(|(_, p)| mine(p)) {
                n += 1;
                rss += p.rss_pages * page;
                ticks += p.ticks;
                threads += p.threads;
                fds += p.fds.unwrap_or(0);
                // A process that was there before gained the difference; a
                // new one all of its time (it began after `before`).
                let earlier = before.procs.get(key).map_or(0, |b| b.ticks);
                gained += p.ticks.saturating_sub(earlier);
            }
            if n == 0 {
                // Its groups are empty (it is not running): nothing was
                // measured, so nothing is shown, never a made-up 0.
                return s;
            }
            s.processes = Some(n);
            s.group_rss_bytes = Some(rss);
            s.cpu_seconds = Some(ticks as f64 / tps);
            s.threads = Some(threads);
            s.fds = Some(fds);
            s.rss_bytes = u.pid.and_then(|pid| {
                after
                    .procs
                    .iter()
                    .find(|((p, _), _)| *p == pid as i32)
                    .map(|(_, p)| p.rss_pages * page)
            });
            if !elapsed.is_zero() {
                let pct = gained as f64 / tps / elapsed.as_secs_f64() * 100.0;
                s.cpu_percent = Some((pct * 10.0).round() / 10.0);
            }
            s
        })
        .collect()
}

pub fn to_json(s: &UnitStats) -> Value {
    json!({
        "name": s.name,
        "state": s.state,
        "pid": s.pid,
        "processes": s.processes,
        "rss_bytes": s.rss_bytes,
        "group_rss_bytes": s.group_rss_bytes,
        "cpu_seconds": s.cpu_seconds.map(|c| (c * 100.0).round() / 100.0),
        "cpu_percent": s.cpu_percent,
        "threads": s.threads,
        "fds": s.fds,
        "uptime_secs": s.uptime_secs,
        "restarts": s.restarts,
    })
}

/// `12.3 MiB`, `640 KiB`.
pub fn bytes(n: u64) -> String {
    const KIB: f64 = 1024.0;
    let f = n as f64;
    if f >= KIB * KIB * KIB {
        format!("{:.1} GiB", f / KIB / KIB / KIB)
    } else if f >= KIB * KIB {
        format!("{:.1} MiB", f / KIB / KIB)
    } else {
        format!("{} KiB", n / 1024)
    }
}

fn dash<T>(v: Option<T>, f: impl Fn(T) -> String) -> String {
    v.map(f).unwrap_or_else(|| "-".to_owned())
}

/// The `stats` table.
pub fn table(rows: &[UnitStats]) -> String {
    let w = rows.iter().map(|r| r.name.len()).max().unwrap_or(4).max(4);
    let mut out = format!(
        "{:<w$}  {:<10}  {:>7}  {:>5}  {:>6}  {:>9}  {:>10}  {:>10}  {:>7}  {:>5}  {:>8}  {:>8}\n",
        "NAME",
        "STATE",
        "PID",
        "PROCS",
        "CPU%",
        "CPU TIME",
        "MEM",
        "GROUP MEM",
        "THREADS",
        "FDS",
        "UPTIME",
        "RESTARTS"
    );
    for r in rows {
        out.push_str(&format!(
            "{:<w$}  {:<10}  {:>7}  {:>5}  {:>6}  {:>9}  {:>10}  {:>10}  {:>7}  {:>5}  {:>8}  {:>8}\n",
            r.name,
            r.state,
            dash(r.pid, |p| p.to_string()),
            dash(r.processes, |p| p.to_string()),
            dash(r.cpu_percent, |c| format!("{c:.1}")),
            dash(r.cpu_seconds, |c| format!("{c:.2}s")),
            dash(r.rss_bytes, bytes),
            dash(r.group_rss_bytes, bytes),
            dash(r.threads, |t| t.to_string()),
            dash(r.fds, |t| t.to_string()),
            dash(r.uptime_secs, |t| format!("{t}s")),
            r.restarts,
        ));
    }
    out
}

/// Measures `units` (asked again for each refresh by `ask`) and prints:
/// once ([`once`], measured from the sample `kept` holds when it fits); or
/// with `watch`, every `watch` until `q` or Ctrl-C, full screen on a
/// terminal, else plain.
pub fn run(
    mut ask: impl FnMut() -> Result<Vec<UnitInfo>, crate::error::Error>,
    json_out: bool,
    watch: Option<Duration>,
    kept: Option<&Path>,
) -> Result<(), crate::error::Error> {
    let (tps, page) = (procfs::ticks_per_sec(), procfs::page_size());
    let units = ask()?;
    let Some(every) = watch else {
        let (before, after) = once(&groups_of(&units), kept);
        print(&compute(&units, &before, &after, tps, page), json_out);
        return Ok(());
    };
    let mut before = sample(&groups_of(&units));
    let screen = crate::cli::output::is_terminal(1) && !json_out;
    let _keys = if screen { term::Keys::new() } else { None };
    let mut units = units;
    // The first table comes after a short interval, the others every `every`.
    let mut wait = INTERVAL.min(every);
    loop {
        let quit = match &_keys {
            Some(k) => k.wait(wait),
            None => {
                std::thread::sleep(wait);
                term::interrupted()
            }
        };
        wait = every;
        if quit {
            return Ok(());
        }
        let after = sample(&groups_of(&units));
        let rows = compute(&units, &before, &after, tps, page);
        if screen {
            out!(
                "\x1b[H\x1b[2J{}\n(every {}s; q quits)",
                table(&rows),
                every.as_secs_f64()
            );
        } else {
            print(&rows, json_out);
        }
        // The next refresh measures from this one, unless the groups
        // changed (a restart): then from a fresh sample of the new ones.
        let measured = groups_of(&units);
        units = ask()?;
        let now_groups = groups_of(&units);
        before = if now_groups == measured {
            after
        } else {
            sample(&now_groups)
        };
    }
}

fn print(rows: &[UnitStats], json_out: bool) {
    if json_out {
        let v: Vec<Value> = rows.iter().map(to_json).collect();
        outln!("{}", Value::Array(v));
    } else {
        out!("{}", table(rows));
    }
}

/// Keys on a terminal for `--watch`: `q` quits. The terminal goes into
/// non-canonical, no-echo mode while it runs and back when done (also on
/// Ctrl-C, which is caught while watching).
mod term {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    use nix::libc;

    static INTERRUPTED: AtomicBool = AtomicBool::new(false);

    extern "C" fn on_sigint(_: libc::c_int) {
        INTERRUPTED.store(true, Ordering::SeqCst);
    }

    pub fn interrupted() -> bool {
        INTERRUPTED.load(Ordering::SeqCst)
    }

    pub struct Keys {
        saved: libc::termios,
    }

    impl Keys {
        pub fn new() -> Option<Keys> {
            // SAFETY: termios is plain data; tcgetattr fills it or fails.
            let mut t: libc::termios = unsafe { std::mem::zeroed() };
            // SAFETY: fd 0 and a valid pointer to our termios.
            if unsafe { libc::tcgetattr(0, &mut t) } != 0 {
                return None;
            }
            let saved = t;
            t.c_lflag &= !(libc::ICANON | libc::ECHO);
            t.c_cc[libc::VMIN] = 0;
            t.c_cc[libc::VTIME] = 0;
            // SAFETY: as above; the handler only stores to an atomic
            // (async-signal-safe).
            unsafe {
                if libc::tcsetattr(0, libc::TCSANOW, &t) != 0 {
                    return None;
                }
                libc::signal(
                    libc::SIGINT,
                    on_sigint as extern "C" fn(libc::c_int) as libc::sighandler_t,
                );
            }
            // Hide the cursor while the table refreshes.
            out!("\x1b[?25l");
            Some(Keys { saved })
        }

        /// Waits up to `d` for `q` (true), or Ctrl-C (true); else false.
        pub fn wait(&self, d: Duration) -> bool {
            let end = std::time::Instant::now() + d;
            loop {
                if interrupted() {
                    return true;
                }
                let left = end.saturating_duration_since(std::time::Instant::now());
                if left.is_zero() {
                    return false;
                }
                let mut fds = libc::pollfd {
                    fd: 0,
                    events: libc::POLLIN,
                    revents: 0,
                };
                let ms = left.as_millis().min(i32::MAX as u128) as i32;
                // SAFETY: one valid pollfd, count 1.
                let n = unsafe { libc::poll(&mut fds, 1, ms.max(1)) };
                if n > 0 {
                    let mut buf = [0u8; 16];
                    // SAFETY: reads into our buffer, at most its length.
                    let got = unsafe { libc::read(0, buf.as_mut_ptr().cast(), buf.len()) };
                    if got == 0 {
                        // stdin closed: keep refreshing until Ctrl-C.
                        std::thread::sleep(left);
                        return interrupted();
                    }
                    if got > 0 && buf[..got as usize].iter().any(|&b| b == b'q' || b == b'Q') {
                        return true;
                    }
                }
            }
        }
    }

    impl Drop for Keys {
        fn drop(&mut self) {
            outln!("\x1b[?25h");
            // SAFETY: restores the attributes read in `new`.
            unsafe {
                libc::tcsetattr(0, libc::TCSANOW, &self.saved);
            }
        }
    }
}

/// `list --wide`: the `list` columns plus CPU% (of the group, measured
/// as a one-shot `stats` does: [`once`]) and MEM (RSS of the main process).
pub fn list_wide(units: &[UnitInfo], json_out: bool, kept: Option<&Path>) {
    let (tps, page) = (procfs::ticks_per_sec(), procfs::page_size());
    let (before, after) = once(&groups_of(units), kept);
    let rows = compute(units, &before, &after, tps, page);
    if json_out {
        let v: Vec<Value> = units
            .iter()
            .zip(&rows)
            .map(|(u, r)| {
                let mut j = crate::cli::render::unit_json(u);
                if let Some(o) = j.as_object_mut() {
                    o.insert("cpu_percent".into(), json!(r.cpu_percent));
                    o.insert("rss_bytes".into(), json!(r.rss_bytes));
                }
                j
            })
            .collect();
        outln!("{}", Value::Array(v));
        return;
    }
    let w = units.iter().map(|u| u.name.len()).max().unwrap_or(4).max(4);
    let mut out = format!(
        "{:<w$}  {:<10}  {:>7}  {:>8}  {:>8}  {:>6}  {:>10}  DESCRIPTION\n",
        "NAME", "STATE", "PID", "UPTIME", "RESTARTS", "CPU%", "MEM"
    );
    for (u, r) in units.iter().zip(&rows) {
        let desc = match (&u.reason, u.state) {
            (
                Some(reason),
                crate::protocol::StateName::Failed | crate::protocol::StateName::Invalid,
            ) => {
                format!("({})", reason.lines().next().unwrap_or_default())
            }
            _ => u.description.clone(),
        };
        let line = format!(
            "{:<w$}  {:<10}  {:>7}  {:>8}  {:>8}  {:>6}  {:>10}  {desc}",
            u.name,
            u.state.as_str(),
            dash(u.pid, |p| p.to_string()),
            dash(u.uptime_secs, |t| format!("{t}s")),
            u.restarts,
            dash(r.cpu_percent, |c| format!("{c:.1}")),
            dash(r.rss_bytes, bytes),
        );
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out!("{out}");
}

#[cfg(test)]
mod tests;
