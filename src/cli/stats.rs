//! `stats` and `list --wide` (SPEC §12): per unit, its whole process groups
//! as `/proc` shows them, measured in the CLIENT on request (the daemon only
//! says which groups are whose; no periodic sampling, no idle cost). CPU%
//! comes from two real samples: the CPU time the group's processes gained
//! between them over the time between them.

use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::procfs;
use crate::protocol::UnitInfo;

/// Between the two samples of a one-shot `stats` or `list --wide`.
pub const INTERVAL: Duration = Duration::from_millis(250);

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

/// The processes of some process groups at one moment, keyed by pid and
/// start time (a reused pid is another process).
#[derive(Debug, Clone, Default)]
pub struct Sample {
    pub at: Option<Instant>,
    pub procs: HashMap<(i32, u64), Proc>,
}

/// Reads every process in `/proc` once and keeps the members of `groups`.
pub fn sample(groups: &BTreeSet<i32>) -> Sample {
    let mut out = Sample {
        at: Some(Instant::now()),
        procs: HashMap::new(),
    };
    if groups.is_empty() {
        return out;
    }
    let Ok(dir) = fs::read_dir("/proc") else {
        return out;
    };
    for entry in dir.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
            continue;
        };
        let Some(st) = procfs::stat(pid) else {
            continue;
        };
        if st.zombie || !groups.contains(&st.pgrp) {
            continue;
        }
        let fds = fs::read_dir(format!("/proc/{pid}/fd"))
            .ok()
            .map(|d| d.count() as u64);
        out.procs.insert(
            (pid, st.start_time),
            Proc {
                pgrp: st.pgrp,
                ticks: st.utime + st.stime,
                threads: st.threads,
                rss_pages: st.rss_pages,
                fds,
            },
        );
    }
    out
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
    units
        .iter()
        .flat_map(|u| u.pgids.iter().map(|&g| g as i32))
        .collect()
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
        (Some(a), Some(b)) => b.saturating_duration_since(a),
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
/// once, after two samples [`INTERVAL`] apart; or with `watch`, every
/// `watch` until `q` or Ctrl-C, full screen on a terminal, else plain.
pub fn run(
    mut ask: impl FnMut() -> Result<Vec<UnitInfo>, crate::error::Error>,
    json_out: bool,
    watch: Option<Duration>,
) -> Result<(), crate::error::Error> {
    let (tps, page) = (procfs::ticks_per_sec(), procfs::page_size());
    let units = ask()?;
    let mut before = sample(&groups_of(&units));
    let Some(every) = watch else {
        std::thread::sleep(INTERVAL);
        let after = sample(&groups_of(&units));
        print(&compute(&units, &before, &after, tps, page), json_out);
        return Ok(());
    };
    let screen = std::io::stdout().is_terminal() && !json_out;
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
            print!(
                "\x1b[H\x1b[2J{}\n(every {:?}; q quits)",
                table(&rows),
                every
            );
            let _ = std::io::stdout().flush();
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
        println!("{}", Value::Array(v));
    } else {
        print!("{}", table(rows));
    }
    let _ = std::io::stdout().flush();
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
            print!("\x1b[?25l");
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
            println!("\x1b[?25h");
            // SAFETY: restores the attributes read in `new`.
            unsafe {
                libc::tcsetattr(0, libc::TCSANOW, &self.saved);
            }
        }
    }
}

/// `list --wide`: the `list` columns plus CPU% (of the group, over
/// [`INTERVAL`]) and MEM (RSS of the main process).
pub fn list_wide(units: &[UnitInfo], json_out: bool) {
    let (tps, page) = (procfs::ticks_per_sec(), procfs::page_size());
    let groups = groups_of(units);
    let before = sample(&groups);
    if !groups.is_empty() {
        std::thread::sleep(INTERVAL);
    }
    let after = sample(&groups);
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
        println!("{}", Value::Array(v));
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
    print!("{out}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::StateName;

    fn unit(name: &str, pid: Option<u32>, pgids: &[u32]) -> UnitInfo {
        UnitInfo {
            name: name.into(),
            state: if pid.is_some() {
                StateName::Running
            } else {
                StateName::Inactive
            },
            pid,
            uptime_secs: pid.map(|_| 5),
            restarts: 1,
            description: String::new(),
            last_exit: None,
            reason: None,
            next_attempt: None,
            protected: false,
            listening: None,
            changed_on_disk: false,
            health: None,
            health_failures: 0,
            status_text: None,
            probes: Vec::new(),
            hooks_skipped: 0,
            substate: None,
            pgids: pgids.to_vec(),
        }
    }

    fn proc(pgrp: i32, ticks: u64, rss_pages: u64) -> Proc {
        Proc {
            pgrp,
            ticks,
            threads: 2,
            rss_pages,
            fds: Some(4),
        }
    }

    #[test]
    fn group_numbers_and_cpu_percent_from_two_samples() {
        // web: main 10 (group 10) and a child 11; the child gained 50 ticks
        // in 1 s at 100 ticks/s (50%), a new process 12 its 25 ticks.
        let t0 = Instant::now();
        let before = Sample {
            at: Some(t0),
            procs: [((10, 1), proc(10, 100, 10)), ((11, 1), proc(10, 200, 5))].into(),
        };
        let after = Sample {
            at: Some(t0 + Duration::from_secs(1)),
            procs: [
                ((10, 1), proc(10, 100, 10)),
                ((11, 1), proc(10, 250, 5)),
                ((12, 9), proc(10, 25, 1)),
                ((99, 1), proc(99, 1000, 100)),
            ]
            .into(),
        };
        let units = [unit("web", Some(10), &[10]), unit("idle", None, &[])];
        let s = compute(&units, &before, &after, 100, 4096);
        assert_eq!(s[0].processes, Some(3));
        assert_eq!(s[0].rss_bytes, Some(10 * 4096));
        assert_eq!(s[0].group_rss_bytes, Some(16 * 4096));
        assert_eq!(s[0].cpu_seconds, Some(3.75));
        assert_eq!(s[0].cpu_percent, Some(75.0));
        assert_eq!((s[0].threads, s[0].fds), (Some(6), Some(12)));
        assert_eq!(s[1].processes, None);
        assert_eq!(s[1].cpu_percent, None);
        let j = to_json(&s[1]);
        assert!(j["pid"].is_null() && j["rss_bytes"].is_null(), "{j}");
        assert_eq!(j["restarts"], 1);
    }
}
