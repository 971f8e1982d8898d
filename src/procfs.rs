//! Reading `/proc`: the one place that knows the layout of `/proc/PID/stat`,
//! and process identity (a pid plus its start time, so a reused pid is never
//! mistaken for the process we knew). Shared by the daemon (adoption,
//! forking services) and the client (has the old daemon exited?).
//! Read-only; signalling and spawning live in the daemon's `spawn`.

use std::fs;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

use nix::unistd::Pid;
use std::time::Duration;

/// The fields of `/proc/PID/stat` the daemon uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    pub pid: i32,
    pub zombie: bool,
    /// Asleep (S), idle (I) or stopped (T, t): waiting for something
    /// rather than on its way somewhere (R, D).
    pub resting: bool,
    pub ppid: i32,
    pub pgrp: i32,
    pub session: i32,
    /// Clock ticks since boot (field 22).
    pub start_time: u64,
    /// CPU time in user and kernel mode, clock ticks (fields 14, 15).
    pub utime: u64,
    pub stime: u64,
    /// Threads (field 20).
    pub threads: u64,
    /// Resident set size in pages (field 24).
    pub rss_pages: u64,
}

/// Parses a `/proc/PID/stat` line. The command name (field 2) may hold
/// spaces and parentheses, so fields are counted after the last `)`.
pub fn parse_stat(pid: i32, text: &str) -> Option<Stat> {
    let mut fields = text[text.rfind(')')? + 1..].split_whitespace();
    // After ')': field 3 (state) is index 0, so field N is index N - 3.
    let state = fields.next()?;
    let zombie = state == "Z";
    let resting = matches!(state, "S" | "I" | "T" | "t");
    let ppid = fields.next()?.parse().ok()?;
    let pgrp = fields.next()?.parse().ok()?;
    let session = fields.next()?.parse().ok()?;
    let utime = fields.nth(7)?.parse().ok()?;
    let stime = fields.next()?.parse().ok()?;
    let threads = fields.nth(4)?.parse().ok()?;
    let start_time = fields.nth(1)?.parse().ok()?;
    let rss_pages = fields.nth(1)?.parse::<i64>().ok()?.max(0) as u64;
    Some(Stat {
        pid,
        zombie,
        resting,
        ppid,
        pgrp,
        session,
        start_time,
        utime,
        stime,
        threads,
        rss_pages,
    })
}

/// Reads `/proc/PID/stat` with one read into a stack buffer (the daemon
/// does this once per spawn): the line is a few hundred bytes; a longer
/// one falls back to reading the whole file.
pub fn stat(pid: i32) -> Option<Stat> {
    stat_with(&mut String::new(), pid)
}

/// [`stat`] with a caller's buffer for the path, so a walk over every
/// process allocates nothing per process.
pub fn stat_with(path: &mut String, pid: i32) -> Option<Stat> {
    use std::fmt::Write;
    use std::io::Read;
    path.clear();
    let _ = write!(path, "/proc/{pid}/stat");
    let mut file = fs::File::open(path.as_str()).ok()?;
    let mut buf = [0u8; 1024];
    let n = loop {
        match file.read(&mut buf) {
            Ok(n) => break n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return None,
        }
    };
    if n < buf.len() {
        return parse_stat(pid, std::str::from_utf8(&buf[..n]).ok()?);
    }
    let mut text = String::from_utf8(buf.to_vec()).ok()?;
    file.read_to_string(&mut text).ok()?;
    parse_stat(pid, &text)
}

/// How many descriptors `pid` has open (None: not ours to look at).
/// Linux 6.2 and later give the count as the size of `/proc/PID/fd` (one
/// stat); older kernels say 0 there, and the directory is counted.
pub fn fd_count_with(path: &mut String, pid: i32) -> Option<u64> {
    use std::fmt::Write;
    path.clear();
    let _ = write!(path, "/proc/{pid}/fd");
    let size = fs::metadata(path.as_str()).ok()?.len();
    if size > 0 {
        return Some(size);
    }
    fs::read_dir(path.as_str()).ok().map(|d| d.count() as u64)
}

/// Every live (non-zombie) process.
pub fn processes() -> Vec<Stat> {
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .filter_map(stat)
        .filter(|s| !s.zombie)
        .collect()
}

/// Every process, zombies included.
pub fn all_processes() -> Vec<Stat> {
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .filter_map(stat)
        .collect()
}

/// The group of `groups` each of `procs` belongs to: its own process
/// group, else that of its nearest ancestor in one (a process that left
/// with setsid, as each postgres backend does, is still its service's);
/// None for the others. The walk up stops at `stop` (the daemon: the
/// services it started are not each other's) and at init.
///
/// PURE.
pub fn attribute(procs: &[Stat], groups: &[i32], stop: i32) -> Vec<Option<i32>> {
    // /proc lists pids in order: a binary search finds a parent, a scan
    // when the list is not in order (no map: code of its own in the binary).
    let index = |pid: i32| {
        procs
            .binary_search_by_key(&pid, |p| p.pid)
            .ok()
            .or_else(|| procs.iter().position(|p| p.pid == pid))
    };
    // None: not looked at yet; Some(owner) once known.
    let mut owner: Vec<Option<Option<i32>>> = vec![None; procs.len()];
    let mut path = Vec::new();
    for start in 0..procs.len() {
        let mut at = Some(start);
        let found = loop {
            let Some(i) = at else { break None };
            if let Some(known) = owner[i] {
                break known;
            }
            let p = &procs[i];
            if groups.contains(&p.pgrp) {
                break Some(p.pgrp);
            }
            path.push(i);
            // A loop in a racing snapshot ends the walk.
            if p.pid == stop || p.ppid <= 1 || path.len() > procs.len() {
                break None;
            }
            at = index(p.ppid);
        };
        if let Some(i) = at.filter(|&i| owner[i].is_none()) {
            owner[i] = Some(found);
        }
        for i in path.drain(..) {
            owner[i] = Some(found);
        }
    }
    owner.into_iter().map(Option::flatten).collect()
}

/// The resident memory (bytes) of every live process of these process
/// groups (with their descendants, see [`attribute`]), from
/// `/proc/PID/statm`.
pub fn group_rss(groups: &[i32]) -> u64 {
    // SAFETY: sysconf takes an integer and reads no memory of ours.
    let page = u64::try_from(unsafe { nix::libc::sysconf(nix::libc::_SC_PAGESIZE) })
        .ok()
        .filter(|&n| n > 0)
        .unwrap_or(4096);
    let procs = processes();
    let owners = attribute(&procs, groups, std::process::id() as i32);
    procs
        .into_iter()
        .zip(owners)
        .filter(|(_, owner)| owner.is_some())
        .filter_map(|(p, _)| {
            let text = fs::read_to_string(format!("/proc/{}/statm", p.pid)).ok()?;
            text.split_whitespace().nth(1)?.parse::<u64>().ok()
        })
        .fold(0u64, |sum, pages| {
            sum.saturating_add(pages.saturating_mul(page))
        })
}

#[cfg(test)]
mod attribute_tests {
    use super::{attribute, Stat};

    fn p(pid: i32, ppid: i32, pgrp: i32) -> Stat {
        Stat {
            pid,
            zombie: false,
            resting: true,
            ppid,
            pgrp,
            session: pgrp,
            start_time: 0,
            utime: 0,
            stime: 0,
            threads: 1,
            rss_pages: 1,
        }
    }

    #[test]
    fn a_descendant_that_left_its_group_is_its_services() {
        // postgres: the postmaster (group 10) forks backends that setsid (groups 21, 22), one with a child; the daemon (5) and an unrelated process stay out; the walk stops at the daemon.
        let procs = [
            p(5, 1, 5),
            p(10, 5, 10),
            p(21, 10, 21),
            p(22, 10, 22),
            p(23, 22, 23),
            p(30, 5, 30),
            p(40, 1, 40),
            p(41, 40, 41),
        ];
        let owners = attribute(&procs, &[10, 30], 5);
        assert_eq!(
            owners,
            [
                None,
                Some(10),
                Some(10),
                Some(10),
                Some(10),
                Some(30),
                None,
                None
            ]
        );
        // A loop in a racing snapshot ends.
        assert_eq!(attribute(&[p(7, 8, 7), p(8, 7, 8)], &[1], 0), [None, None]);
    }
}

/// The start time of a live (non-zombie) process, if it exists.
pub fn start_time(pid: i32) -> Option<u64> {
    stat(pid).filter(|s| !s.zombie).map(|s| s.start_time)
}

/// Whether `pid` is still the very process that started at `start_time`.
pub fn same_process(pid: i32, start_time_ticks: u64) -> bool {
    pid > 0 && start_time(pid) == Some(start_time_ticks)
}

/// The size of a memory page, the unit of `/proc/PID/stat`'s rss.
pub fn page_size() -> u64 {
    // SAFETY: sysconf takes an integer and reads no memory of ours.
    let n = unsafe { nix::libc::sysconf(nix::libc::_SC_PAGESIZE) };
    u64::try_from(n).ok().filter(|&n| n > 0).unwrap_or(4096)
}

/// Clock ticks per second, the unit of `/proc/PID/stat` times.
pub fn ticks_per_sec() -> u64 {
    // SAFETY: sysconf takes an integer and reads no memory of ours.
    let n = unsafe { nix::libc::sysconf(nix::libc::_SC_CLK_TCK) };
    u64::try_from(n).ok().filter(|&n| n > 0).unwrap_or(100)
}

/// The boot clock (CLOCK_BOOTTIME): the clock `/proc/PID/stat` start
/// times count on, so a time read from it can be compared with them and
/// kept in a file across processes.
pub fn boot_time() -> Option<Duration> {
    clock(nix::libc::CLOCK_BOOTTIME)
}

/// The monotonic clock (CLOCK_MONOTONIC, which `Instant` reads on Linux):
/// one per boot, the same for every process.
pub fn monotonic_time() -> Option<Duration> {
    clock(nix::libc::CLOCK_MONOTONIC)
}

fn clock(id: nix::libc::clockid_t) -> Option<Duration> {
    let mut ts = nix::libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into `ts`, which we own.
    let rc = unsafe { nix::libc::clock_gettime(id, &mut ts) };
    if rc != 0 || ts.tv_sec < 0 || ts.tv_nsec < 0 {
        return None;
    }
    Some(Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32))
}

/// This boot's id (`/proc/sys/kernel/random/boot_id`): a new one at each
/// boot, so a record can tell whether it was written in this one.
pub fn boot_id() -> Option<String> {
    let text = fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    Some(text.trim().to_owned()).filter(|id| !id.is_empty())
}

/// Seconds since boot, from `/proc/uptime` (the clock start times count on).
fn since_boot() -> Option<Duration> {
    let text = fs::read_to_string("/proc/uptime").ok()?;
    let secs: f64 = text.split_whitespace().next()?.parse().ok()?;
    Duration::try_from_secs_f64(secs).ok()
}

/// How long ago a process that started at `start_time_ticks` (field 22 of
/// its stat) started: for the uptime of a process adopted without a record
/// of when it started.
pub fn age(start_time_ticks: u64) -> Option<Duration> {
    let tps = ticks_per_sec();
    let started = Duration::from_secs(start_time_ticks / tps)
        + Duration::from_nanos((start_time_ticks % tps) * 1_000_000_000 / tps);
    since_boot()?.checked_sub(started)
}

/// A pidfd for `pid`: readable once the process has exited. The daemon watches
/// processes it adopted (not its children) this way and takes a service's
/// sockets back through one; the client uses one to signal a protocol-1
/// daemon without racing a reused pid, and to wait for a daemon to exit.
pub fn pidfd_open(pid: Pid) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open(2) takes two integers and shares no memory with us;
    // it returns a new descriptor (close-on-exec) or -1 with errno set.
    let fd = unsafe { nix::libc::syscall(nix::libc::SYS_pidfd_open, pid.as_raw(), 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just created this descriptor for us; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAT: &str = "4242 (my (odd) name) S 1 4242 4242 0 -1 4194560 150 0 0 0 0 0 0 0 20 0 1 0 987654 10000000 200 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0";

    #[test]
    fn fields_are_counted_after_the_last_paren() {
        // A command name with spaces and parentheses does not shift the fields.
        let s = parse_stat(4242, STAT).unwrap();
        assert_eq!(
            (s.ppid, s.pgrp, s.session, s.start_time),
            (1, 4242, 4242, 987_654)
        );
        assert_eq!((s.utime, s.stime, s.threads, s.rss_pages), (0, 0, 1, 200));
        let busy = STAT.replace(" 150 0 0 0 0 0 0 0 20 0 1 ", " 150 0 0 0 31 7 0 0 20 0 3 ");
        let b = parse_stat(4242, &busy).unwrap();
        assert_eq!((b.utime, b.stime, b.threads), (31, 7, 3));
        assert!(!s.zombie);
        assert_eq!(parse_stat(1, "garbage"), None);
        assert_eq!(parse_stat(1, &STAT[..STAT.find(" 987654").unwrap()]), None);
        assert_eq!(parse_stat(1, "1 (x) S 1"), None);
    }

    #[test]
    fn a_reused_pid_is_not_the_same_process() {
        // Our own pid matches its real start time, and no other start time.
        let me = std::process::id() as i32;
        let real = start_time(me).expect("own stat is readable");
        assert!(same_process(me, real));
        assert!(
            !same_process(me, real + 1),
            "a different start time means a different process"
        );
        assert!(!same_process(0, real));
        assert!(!same_process(i32::MAX, real));
    }

    #[test]
    fn age_of_a_process_comes_from_its_start_time() {
        // A start time of 0 is as old as the boot; our own process is younger than the test binary's run so far.
        let boot = age(0).expect("/proc/uptime is readable");
        assert!(boot > Duration::from_secs(1), "{boot:?}");
        let me = start_time(std::process::id() as i32).expect("own stat");
        let mine = age(me).expect("our start is before now");
        assert!(mine < boot, "{mine:?} vs {boot:?}");
        assert!(mine < Duration::from_secs(24 * 3600), "{mine:?}");
        assert_eq!(age(u64::MAX / 2), None, "a start in the future has no age");
    }
}

/// The CPUs this process may run on (at least 1).
pub fn cpus() -> usize {
    use nix::libc;
    // SAFETY: a zeroed cpu_set_t is a valid empty set, filled by the
    // kernel up to its size; CPU_COUNT only reads it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        match libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) {
            0 => usize::try_from(libc::CPU_COUNT(&set)).unwrap_or(1).max(1),
            _ => 1,
        }
    }
}
