//! Finding processes: the main process of a forking service (one look per
//! pass, never a sleep), and the processes that carry a unit's tag (adoption
//! after a daemon crash, strays that left a unit's group).

use super::*;

/// Why a forking service's main process was not found: data; `Display`
/// is the line a user sees, with what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MainPidError {
    /// PIDFile's first line is not a pid (`line`: its first 60 characters).
    NotAPid { path: Box<Path>, line: Box<str> },
    /// PIDFile names a pid that is not running.
    NotRunning { path: Box<Path>, pid: i32 },
    /// PIDFile names a running process that is not the service's (not
    /// started under this daemon, or another unit's).
    NotOurs { path: Box<Path>, pid: i32 },
    /// The start command left no process.
    NoneLeft,
    /// The start command left this many processes (they were stopped).
    SeveralLeft(usize),
    /// The start command's process group is not known.
    NoGroup,
}

impl std::fmt::Display for MainPidError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MainPidError::NotAPid { path, line } => {
                write!(f, "PIDFile {} holds `{line}`, not a pid", path.display())
            }
            MainPidError::NotRunning { path, pid } => write!(
                f,
                "PIDFile {} names pid {pid}, which is not running",
                path.display()
            ),
            MainPidError::NotOurs { path, pid } => write!(
                f,
                "PIDFile {} names pid {pid}, which is not a process of this service (a stale file, or another program's); it was left alone",
                path.display()
            ),
            MainPidError::NoneLeft => write!(
                f,
                "no process was left after the start command exited; set PIDFile, or use Type = \"simple\" if it stays in the foreground"
            ),
            MainPidError::SeveralLeft(n) => write!(
                f,
                "{n} processes were left after the start command exited (they were stopped); set PIDFile"
            ),
            MainPidError::NoGroup => write!(f, "the start command's process group is unknown"),
        }
    }
}

/// A forking service's start command has left: one look for its main
/// process. `None` means "not settled yet, look again in a few ms"
/// ([`SCAN_EVERY`]); the search never sleeps. PIDFile is read first; else a
/// lone candidate in the start command's group (or a child of ours) that
/// is not `known` and not in `other_groups` counts once [`MainPidScan`]
/// says it settled. Past the cap, the candidates are killed and the search
/// fails with what to do.
pub fn scan_main_pid(
    unit_name: &str,
    pid_file: Option<&Path>,
    pgid: Pid,
    known: &[Pid],
    other_groups: &[Pid],
    scan: &mut MainPidScan,
    now: std::time::Instant,
) -> Option<Result<(Pid, Pid), MainPidError>> {
    let candidates = || main_pid_candidates(unit_name, pgid, known, other_groups);
    if let Some(path) = pid_file {
        match std::fs::read_to_string(path) {
            Ok(text) if !text.trim().is_empty() => {
                // The pid is the first line (postgres writes its data dir,
                // port and more below it; systemd reads the first line too).
                let first = text.lines().next().unwrap_or_default().trim();
                let found = match first.parse::<i32>() {
                    Err(_) => Err(MainPidError::NotAPid {
                        path: path.into(),
                        line: first.chars().take(60).collect::<String>().into(),
                    }),
                    Ok(pid)
                        if pid <= 0
                            || nix::sys::signal::kill(Pid::from_raw(pid), None).is_err() =>
                    {
                        Err(MainPidError::NotRunning {
                            path: path.into(),
                            pid,
                        })
                    }
                    Ok(pid) if !of_the_service(pid, unit_name, known, other_groups) => {
                        Err(MainPidError::NotOurs {
                            path: path.into(),
                            pid,
                        })
                    }
                    Ok(pid) => {
                        let pid = Pid::from_raw(pid);
                        let group = nix::unistd::getpgid(Some(pid)).unwrap_or(pid);
                        Ok((pid, group))
                    }
                };
                // A pid that is not (yet) the service's may be a stale
                // file's, which the daemon rewrites a moment after its
                // starter exited (as systemd, wait for it, a while).
                let stale = matches!(
                    found,
                    Err(MainPidError::NotRunning { .. } | MainPidError::NotOurs { .. })
                );
                if stale && scan.young(now) {
                    return None;
                }
                if found.is_err() {
                    // Whatever the start command left (a daemon in its own
                    // session, as pg_ctl leaves postgres) would otherwise
                    // run on unsupervised.
                    kill_candidates(&candidates());
                }
                return Some(found);
            }
            // Not written (yet): fall back to looking at the processes.
            _ => log::debug!("PIDFile {} is missing or empty", path.display()),
        }
    }
    let candidates = candidates();
    let lone = match candidates.as_slice() {
        [one] => Some((one.pid, one.resting)),
        _ => None,
    };
    match scan.judge(lone, now) {
        Verdict::Found => candidates
            .first()
            .map(|one| Ok((Pid::from_raw(one.pid), Pid::from_raw(one.pgrp)))),
        Verdict::Wait => None,
        Verdict::GiveUp => {
            kill_candidates(&candidates);
            Some(Err(match candidates.len() {
                0 => MainPidError::NoneLeft,
                n => MainPidError::SeveralLeft(n),
            }))
        }
    }
}

/// The processes a forking service's start command may have left: in its
/// group or children of ours (orphans come to the subreaper), not `known`
/// and not in `other_groups`; those tagged with this unit win over untagged
/// ones, and another unit's tree is never ours.
pub(super) fn main_pid_candidates(
    unit_name: &str,
    pgid: Pid,
    known: &[Pid],
    other_groups: &[Pid],
) -> Vec<procfs::Stat> {
    let me = std::process::id() as i32;
    let plausible: Vec<(procfs::Stat, Option<String>)> = procfs::processes()
        .into_iter()
        .filter(|p| {
            let ours = p.pgrp == pgid.as_raw() || p.ppid == me;
            ours && !known.contains(&Pid::from_raw(p.pid))
                && !other_groups.contains(&Pid::from_raw(p.pgrp))
        })
        .map(|p| {
            let unit = process_tag(p.pid).map(|(_, unit)| unit);
            (p, unit)
        })
        // Another unit's tree (started at the same moment) is not ours.
        .filter(|(_, unit)| unit.as_deref().is_none_or(|u| u == unit_name))
        .collect();
    // Its own tag (inherited by the whole tree) beats no tag.
    let tagged = plausible.iter().any(|(_, u)| u.is_some());
    plausible
        .into_iter()
        .filter(|(_, u)| !tagged || u.is_some())
        .map(|(p, _)| p)
        .collect()
}

/// Whether process `pid` may be unit `unit_name`'s main process: it
/// descends from this daemon (every process a service starts does: the
/// daemon is their subreaper), it is not another unit's main process nor
/// in another unit's group, and it is not tagged as another unit's. A
/// stale PIDFile's pid reused by some other program fails the first test.
fn of_the_service(pid: i32, unit_name: &str, known: &[Pid], other_groups: &[Pid]) -> bool {
    let me = std::process::id() as i32;
    let Some(stat) = procfs::stat(pid) else {
        return false;
    };
    if known.contains(&Pid::from_raw(pid)) || other_groups.contains(&Pid::from_raw(stat.pgrp)) {
        return false;
    }
    if process_tag(pid).is_some_and(|(_, unit)| unit != unit_name) {
        return false;
    }
    // Up the parents (a few: a service's tree is shallow), to us or init.
    let mut parent = stat.ppid;
    for _ in 0..64 {
        if parent == me {
            return true;
        }
        match procfs::stat(parent) {
            Some(p) if parent > 1 => parent = p.ppid,
            _ => return false,
        }
    }
    false
}

/// Kills what a failed forking start left, group and process.
pub(super) fn kill_candidates(candidates: &[procfs::Stat]) {
    for p in candidates {
        kill_group(Pid::from_raw(p.pgrp), Signal::SIGKILL, false);
        let _ = nix::sys::signal::kill(Pid::from_raw(p.pid), Signal::SIGKILL);
    }
}

/// How often a main-pid search looks again while it has not settled.
pub const SCAN_EVERY: std::time::Duration = std::time::Duration::from_millis(2);

/// Where a search for a forking service's main process stands: when it
/// began and which lone candidate has been seen since when.
///
/// PURE: the caller passes `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MainPidScan {
    started: std::time::Instant,
    seen: Option<(i32, std::time::Instant)>,
}

/// What one look at the candidates decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The lone candidate is the main process.
    Found,
    /// Look again in [`SCAN_EVERY`].
    Wait,
    /// The cap passed without a settled lone candidate.
    GiveUp,
}

impl MainPidScan {
    /// A lone candidate counts once it rests (S/I/T) this long ...
    const SETTLE: std::time::Duration = std::time::Duration::from_millis(20);
    /// ... or stays alone this long while running.
    const SETTLE_BUSY: std::time::Duration = std::time::Duration::from_millis(300);
    /// The search gives up after this long.
    const SETTLE_MAX: std::time::Duration = std::time::Duration::from_secs(1);

    /// Whether the search began less than its cap ago.
    pub fn young(&self, now: std::time::Instant) -> bool {
        now.saturating_duration_since(self.started) < Self::SETTLE_MAX
    }

    pub fn new(now: std::time::Instant) -> MainPidScan {
        MainPidScan {
            started: now,
            seen: None,
        }
    }

    /// One look: `lone` is the only candidate (pid, resting), if there is
    /// exactly one.
    pub fn judge(&mut self, lone: Option<(i32, bool)>, now: std::time::Instant) -> Verdict {
        if let Some((pid, resting)) = lone {
            match self.seen {
                Some((seen, since)) if seen == pid => {
                    // A lone process that is still running may be the
                    // middle of a double fork (between setsid and its
                    // second fork) on a busy box: it must rest (wait for
                    // something, as a started daemon does) or stay the
                    // only one for much longer before it counts as main.
                    let stable = now.saturating_duration_since(since);
                    if (stable >= Self::SETTLE && resting) || stable >= Self::SETTLE_BUSY {
                        return Verdict::Found;
                    }
                }
                _ => self.seen = Some((pid, now)),
            }
        } else {
            self.seen = None;
        }
        if now.saturating_duration_since(self.started) >= Self::SETTLE_MAX {
            Verdict::GiveUp
        } else {
            Verdict::Wait
        }
    }
}

/// The environment variables that tag a service's main process with the
/// home and unit it belongs to, so a new daemon can find it even when the
/// state file is stale or lost.
pub const TAG_HOME: &str = "DIAKONOS_HOME";
pub const TAG_UNIT: &str = "DIAKONOS_UNIT";

/// A live process tagged as the main process of a unit of `home`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tagged {
    pub unit: String,
    pub pid: Pid,
    pub start_time: u64,
    /// It leads its own session, as a service's process is started. Else
    /// it is the earliest process left of a session whose leader is gone:
    /// what a forking service's start command left running.
    pub leader: bool,
}

/// The (home, unit) a process is tagged with, from its environment (readable
/// for our own processes only).
pub(super) fn process_tag(pid: i32) -> Option<(Vec<u8>, String)> {
    let environ = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
    let mut home = None;
    let mut unit = None;
    for var in environ.split(|&b| b == 0) {
        if let Some(value) = var.strip_prefix(format!("{TAG_HOME}=").as_bytes()) {
            home = Some(value.to_vec());
        } else if let Some(value) = var.strip_prefix(format!("{TAG_UNIT}=").as_bytes()) {
            unit = std::str::from_utf8(value).ok().map(str::to_owned);
        }
    }
    Some((home?, unit?))
}

/// Every session leader (each service is one), and the earliest process
/// of each session whose leader is gone (a forking service's main process),
/// whose environment tags it as belonging to `home`. Only our own
/// processes' environments are readable, which is exactly the set that
/// can be ours.
pub fn find_tagged(home: &Path) -> Vec<Tagged> {
    let want_home = home.as_os_str().as_encoded_bytes();
    let procs = procfs::processes();
    // /proc lists pids in order: a binary search finds a session's leader
    // (a look through all of them if the order were ever other).
    let sorted = procs.is_sorted_by_key(|p| p.pid);
    let live = |pid: i32| match sorted {
        true => procs.binary_search_by_key(&pid, |p| p.pid).is_ok(),
        false => procs.iter().any(|p| p.pid == pid),
    };
    // Per session with no leader, its earliest process (kept in `orphaned`
    // by session, in the order met).
    let mut orphaned: Vec<&procfs::Stat> = Vec::new();
    for p in procs.iter().filter(|p| !live(p.session)) {
        match orphaned.iter_mut().find(|o| o.session == p.session) {
            Some(o) if (p.start_time, p.pid) < (o.start_time, o.pid) => *o = p,
            Some(_) => {}
            None => orphaned.push(p),
        }
    }
    let leaders = procs.iter().filter(|p| p.session == p.pid);
    leaders
        .map(|p| (p, true))
        .chain(orphaned.into_iter().map(|p| (p, false)))
        .filter_map(|(p, leader)| {
            let (tag_home, unit) = process_tag(p.pid)?;
            (tag_home == want_home).then(|| Tagged {
                unit,
                pid: Pid::from_raw(p.pid),
                start_time: p.start_time,
                leader,
            })
        })
        .collect()
}

/// One look through `/proc` for processes of `home` tagged with one of
/// `units` (name, earliest start time, start time they must precede) that
/// are not `known` and not in `other_groups`: what a service left outside
/// its process group (setsid). Per unit, the process groups they are in.
/// The daemon's own process and group never count (a daemon started from
/// inside a service carries that service's tag).
pub fn find_strays(
    home: &Path,
    units: &[(&str, Option<u64>, Option<u64>)],
    known: &[Pid],
    other_groups: &[Pid],
) -> Vec<Vec<Pid>> {
    let want_home = home.as_os_str().as_encoded_bytes();
    let me = std::process::id() as i32;
    let my_group = nix::unistd::getpgrp().as_raw();
    let earliest = units.iter().map(|u| u.1.unwrap_or(0)).min();
    let mut found = vec![Vec::new(); units.len()];
    let Some(earliest) = earliest else {
        return found;
    };
    for p in procfs::processes() {
        let skip = p.pid == me
            || p.pgrp <= 1
            || p.pgrp == my_group
            || p.start_time < earliest
            || known.contains(&Pid::from_raw(p.pid))
            || other_groups.contains(&Pid::from_raw(p.pgrp));
        if skip {
            continue;
        }
        let in_run = |since: Option<u64>, until: Option<u64>| {
            p.start_time >= since.unwrap_or(0) && until.is_none_or(|until| p.start_time < until)
        };
        let which = match process_tag(p.pid) {
            Some((tag_home, unit)) if tag_home == want_home => units
                .iter()
                .position(|&(name, since, until)| name == unit && in_run(since, until)),
            // Another home's, or no tag: an orphan whose environment was
            // cleared or overwritten (redis, nginx write their titles over
            // it) cannot be told from another unit's (a daemon that a
            // running unit started), so it is left alone.
            _ => None,
        };
        if let Some(i) = which {
            let group = Pid::from_raw(p.pgrp);
            if !found[i].contains(&group) {
                found[i].push(group);
            }
        }
    }
    found
}
