//! The real operating system behind the supervisor's [`Sys`]: spawning
//! (through `spawn.rs`), signals, `/proc` reads, user look-ups. Beside
//! `spawn.rs`, below the supervisor's callers; nothing here calls up.

use std::path::Path;
use std::time::{Duration, Instant};

use nix::unistd::Pid;

use crate::daemon::driver::execs::Execs;
use crate::daemon::driver::listeners::Listeners;
use crate::daemon::logfile;
use crate::daemon::spawn::{self, SpawnCache, SpawnError, SpawnSpec};
use crate::daemon::supervisor::{Effect, Input, MainPidFound, Role, Started, Sys};
use crate::paths::Home;
use crate::procfs;
use crate::unit::Unit;

/// The real operating system behind [`Sys`].
pub struct RealSys {
    pub home: Home,
    /// The daemon's environment and the programs found on PATH, kept
    /// between spawns.
    pub spawn_cache: SpawnCache,
    /// The process spawned last and its start time, when the boot clock
    /// pinned it down (so `start_time` need not read `/proc`).
    last_spawn: Option<(Pid, u64)>,
    /// Container mode: services write to the daemon's stdout and stderr.
    pub inherit_stdio: bool,
    /// The sockets of `[socket]` units, held across their restarts.
    pub listeners: Listeners,
    /// Processes started (main, ExecStop, probes) whose exec outcome is
    /// still to come.
    pub execs: Execs,
}

impl RealSys {
    /// `registry`: the event loop's, for the exec pipes (None: each
    /// spawn waits for its exec).
    pub fn new(home: Home, registry: Option<mio::Registry>) -> RealSys {
        RealSys {
            home,
            spawn_cache: SpawnCache::default(),
            last_spawn: None,
            inherit_stdio: false,
            listeners: Listeners::default(),
            execs: Execs::new(registry),
        }
    }
}

impl Sys for RealSys {
    fn spawn_probe(&mut self, unit: &Unit, argv: &[String]) -> Result<Pid, SpawnError> {
        // Its own file, started empty: what it says is the probe's result
        // (read back when it is reaped), not lines in the service's log.
        let log = probe_log(&self.home, &unit.name);
        let _ = std::fs::remove_file(&log);
        let spawned = spawn::spawn(
            &SpawnSpec {
                argv,
                cwd: &unit.working_directory,
                env: &unit.environment,
                user: unit.user.as_deref(),
                log: &log,
                extra_env: &[],
                // A probe runs with the service's user, directory and
                // environment; limits and sockets are the service's own.
                limits: &crate::unit::Limits::default(),
                inherit_stdio: false,
                fds: &[],
                pid_vars: &[],
            },
            &mut self.spawn_cache,
        )?;
        // As a service's: its outcome comes as Input::ExecDone.
        self.execs.add(spawned.pid, spawned.exec);
        Ok(spawned.pid)
    }

    fn spawn(&mut self, unit: &Unit, role: Role) -> Result<Started, SpawnError> {
        let argv = match role {
            Role::Main => &unit.exec_start,
            Role::StopCmd => match &unit.exec_stop {
                Some(argv) => argv,
                None => return Err(SpawnError::NoExecStop),
            },
        };
        let log = self.home.service_log(&unit.name);
        if role == Role::Main {
            // Nothing of this unit writes its log now: renames, no copy.
            if let Err(e) =
                logfile::rotate_closed_if_needed(&log, unit.log_max_bytes, unit.log_max_files)
            {
                log::warn!("{}: cannot rotate {}: {e}", unit.name, log.display());
            }
        }
        let mut extra = Vec::new();
        if role == Role::Main {
            // Tags that let a new daemon find this process (spawn::find_tagged).
            extra.push((
                spawn::TAG_HOME.to_owned(),
                self.home.dir.to_string_lossy().into_owned(),
            ));
            extra.push((spawn::TAG_UNIT.to_owned(), unit.name.clone()));
        }
        if unit.gets_notify_socket() {
            extra.push((
                "NOTIFY_SOCKET".to_owned(),
                self.home.notify_socket().to_string_lossy().into_owned(),
            ));
        }
        // EnvironmentFile is read at each start; Environment wins (later
        // entries win in the spawn).
        let with_files;
        let env: &[(String, String)] = if unit.limits.environment_files.is_empty() {
            &unit.environment
        } else {
            let mut all = crate::unit::read_env_files(&unit.limits.environment_files)
                .map_err(SpawnError::EnvironmentFile)?;
            all.extend(unit.environment.iter().cloned());
            with_files = all;
            &with_files
        };
        let mut fds = Vec::new();
        if let (Role::Main, Some(socket)) = (role, &unit.socket) {
            fds = self
                .listeners
                .fds_for(&unit.name, socket)
                .map_err(SpawnError::Socket)?;
            extra.push(("LISTEN_FDS".to_owned(), fds.len().to_string()));
            let names = vec![socket.name.as_str(); fds.len()];
            extra.push(("LISTEN_FDNAMES".to_owned(), names.join(":")));
        }
        // LISTEN_PID and WATCHDOG_PID: the service's own pid, which the
        // child writes in before its exec.
        let mut pid_vars = Vec::new();
        if !fds.is_empty() {
            pid_vars.push("LISTEN_PID");
        }
        if role == Role::Main && !unit.watchdog.is_zero() {
            extra.push((
                "WATCHDOG_USEC".to_owned(),
                unit.watchdog.as_micros().to_string(),
            ));
            pid_vars.push("WATCHDOG_PID");
        }
        let before = spawn::boot_clock_ticks();
        let spawned = spawn::spawn(
            &SpawnSpec {
                argv,
                cwd: &unit.working_directory,
                env,
                limits: &unit.limits,
                inherit_stdio: self.inherit_stdio,
                user: unit.user.as_deref(),
                log: &log,
                extra_env: &extra,
                fds: &fds,
                pid_vars: &pid_vars,
            },
            &mut self.spawn_cache,
        );
        let after = spawn::boot_clock_ticks();
        self.last_spawn = match (&spawned, before) {
            (Ok(s), Some(tick)) if after == before => Some((s.pid, tick)),
            _ => None,
        };
        let spawned = spawned?;
        // Main process or ExecStop: the loop goes on while the kernel execs
        // it; the outcome comes as Input::ExecDone.
        self.execs.add(spawned.pid, spawned.exec);
        Ok(match unit.changes_identity() {
            true => Started::OnExec(spawned.pid),
            false => Started::Up(spawned.pid),
        })
    }

    fn group_rss(&mut self, groups: &[Pid]) -> Option<u64> {
        let groups: Vec<i32> = groups.iter().map(|g| g.as_raw()).collect();
        Some(procfs::group_rss(&groups))
    }

    fn age(&mut self, start_time: u64) -> Option<Duration> {
        procfs::age(start_time)
    }

    fn group_alive(&mut self, pgid: Pid) -> bool {
        spawn::group_alive(pgid)
    }

    fn process_groups(&mut self, pid: Pid) -> Option<(Pid, Pid)> {
        if self.execs.under_way(pid) {
            // A child before its exec (up since its clone) may not have
            // made its session yet: its group is still the daemon's, and
            // its own comes (pgid = pid) before it runs the program.
            return None;
        }
        procfs::stat(pid.as_raw())
            .filter(|s| !s.zombie)
            .map(|s| (Pid::from_raw(s.pgrp), Pid::from_raw(s.session)))
    }

    fn start_time(&mut self, pid: Pid) -> Option<u64> {
        if let Some((spawned, tick)) = self.last_spawn.take() {
            if spawned == pid {
                return Some(tick);
            }
        }
        procfs::start_time(pid.as_raw())
    }
}

/// The daemon's resident set size, from /proc/self/status.
pub fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Carries out [`Effect::ScanMainPid`]: one look (never a wait), and for
/// a process found, what the supervisor records of it. (Out of line: kept
/// out of the code every daemon runs, the layout's first part.)
#[inline(never)]
pub fn look_for_main_pid(effect: Effect, now: Instant) -> Option<Input> {
    let Effect::ScanMainPid {
        id,
        unit,
        pid_file,
        pgid,
        known,
        other_groups,
        mut scan,
    } = effect
    else {
        return None;
    };
    let outcome = spawn::scan_main_pid(
        &unit,
        pid_file.as_deref(),
        pgid,
        &known,
        &other_groups,
        &mut scan,
        now,
    )
    .map(|found| {
        found.map(|(pid, pgid)| {
            let stat = procfs::stat(pid.as_raw()).filter(|s| !s.zombie);
            MainPidFound {
                pid,
                pgid,
                start_time: procfs::start_time(pid.as_raw()),
                groups: stat.map(|s| (Pid::from_raw(s.pgrp), Pid::from_raw(s.session))),
            }
        })
    });
    Some(Input::MainPidScanned { id, scan, outcome })
}

/// Carries out [`Effect::ScanStrays`]: one look through `/proc`. (Out of
/// line, as [`look_for_main_pid`].)
#[inline(never)]
pub fn look_for_strays(effect: Effect, home: &Path) -> Option<Input> {
    let Effect::ScanStrays {
        units,
        known,
        other_groups,
    } = effect
    else {
        return None;
    };
    let looks: Vec<(&str, Option<u64>, Option<u64>)> = units
        .iter()
        .map(|u| (u.unit.as_str(), u.since, u.until))
        .collect();
    let groups = spawn::find_strays(home, &looks, &known, &other_groups);
    Some(Input::StraysScanned(
        units.into_iter().zip(groups).collect(),
    ))
}

pub use crate::utc::unix_now_ms;

/// Where an Exec probe of unit `name` writes (`logs/NAME.probe`).
pub fn probe_log(home: &Home, name: &str) -> std::path::PathBuf {
    home.logs_dir().join(format!("{name}.probe"))
}

/// The first line an Exec probe of `unit` wrote: at most 200 characters,
/// control characters escaped; None when it wrote nothing.
pub fn probe_output(home: &Home, name: &str) -> Option<String> {
    use std::io::Read;
    let mut head = [0u8; 512];
    let n = std::fs::File::open(probe_log(home, name))
        .and_then(|mut f| f.read(&mut head))
        .ok()?;
    let text = String::from_utf8_lossy(&head[..n]);
    let line = text.lines().map(str::trim).find(|l| !l.is_empty())?;
    let head: String = line.chars().take(200).collect();
    Some(crate::unit::esc_all(&head))
}

/// Tells the kernel this process no longer needs the pages of its own
/// code and constants it has mapped (MADV_DONTNEED on the binary's
/// read-only mappings), after start-up and after a large job: what ran
/// only for those (loading unit files, restoring a state file, a start of
/// a thousand units: up to ~0.5 MiB) stops counting in the daemon's RSS,
/// and what runs again comes back from the page cache at its first use (a
/// few page faults). Only mappings none of whose pages were ever written
/// (`Anonymous: 0 kB` in smaps) are dropped: a dynamically linked build's
/// relocated, then read-only, tables (RELRO) would lose their relocations.
/// Best effort.
pub fn forget_code_pages() {
    use std::os::unix::fs::MetadataExt;
    let Ok(exe) = std::fs::metadata("/proc/self/exe") else {
        return;
    };
    let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") else {
        return;
    };
    // The mapping being read: its range, if it is a candidate so far.
    let mut candidate: Option<(usize, usize)> = None;
    let forget = |range: Option<(usize, usize)>| {
        if let Some((start, end)) = range {
            // SAFETY: the range is one whole mapping of our own binary,
            // not writable and never written (no private copy of any of
            // its pages), so MADV_DONTNEED only drops page-table entries:
            // every later access faults the same bytes back from the file.
            unsafe {
                nix::libc::madvise(
                    start as *mut nix::libc::c_void,
                    end.saturating_sub(start),
                    nix::libc::MADV_DONTNEED,
                );
            }
        }
    };
    for line in smaps.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        match fields[..] {
            // A mapping's header: START-END PERMS OFFSET DEV INODE [PATH].
            [range, perms, _, _, inode, ..] if range.contains('-') => {
                candidate = None;
                let read_only = perms.starts_with('r') && perms.as_bytes().get(1) == Some(&b'-');
                if !read_only || inode.parse::<u64>().ok() != Some(exe.ino()) {
                    continue;
                }
                let Some((start, end)) = range.split_once('-') else {
                    continue;
                };
                if let (Ok(start), Ok(end)) = (
                    usize::from_str_radix(start, 16),
                    usize::from_str_radix(end, 16),
                ) {
                    candidate = Some((start, end));
                }
            }
            ["Anonymous:", kb, ..] => {
                if kb == "0" {
                    forget(candidate.take());
                } else {
                    candidate = None;
                }
            }
            _ => {}
        }
    }
}
