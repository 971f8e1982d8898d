//! Processes: spawning a service in its own session, signalling process
//! groups, reaping every child. The daemon's services, ExecStop commands and
//! probes are started here (the client also starts a daemon and signals one
//! on `kill`); the daemon's drivers hold the `unsafe` that their system calls
//! need, each block with why it is sound.

use crate::hash::HashMap;
use std::ffi::{CStr, CString, OsStr};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::Path;
use std::rc::Rc;

use nix::errno::Errno;
use nix::sys::resource::{getrlimit, Resource};
use nix::sys::signal::{killpg, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{Gid, Group, Pid, Uid, User};

use crate::daemon::service::ExitKind;
use crate::paths::DEFAULT_PATH;
use crate::procfs;
use crate::unit::Limits;

mod child;
pub use child::{held_children, hold_children, release_children};
pub use stack::trim_spare_stacks;
mod identity;
mod prepare;
mod scan;
mod stack;
pub use identity::*;
pub use prepare::SpawnCache;
use prepare::*;
pub use scan::*;

/// Everything needed to start one process of a service.
pub struct SpawnSpec<'a> {
    pub argv: &'a [String],
    pub cwd: &'a Path,
    pub env: &'a [(String, String)],
    pub user: Option<&'a str>,
    pub log: &'a Path,
    /// Extra variables set by the daemon (NOTIFY_SOCKET, ...).
    pub extra_env: &'a [(String, String)],
    /// Limits and identity to set in the child (SPEC §13).
    pub limits: &'a Limits,
    /// Container mode: stdout and stderr are the daemon's, not the log.
    pub inherit_stdio: bool,
    /// Sockets passed as fds 3, 4, ... (systemd's protocol). Each must be
    /// numbered at or above `3 + fds.len()` (the listeners keep theirs high)
    /// so moving one into place never overwrites another.
    pub fds: &'a [RawFd],
    /// Variables set to the service's own pid (`LISTEN_PID`,
    /// `WATCHDOG_PID`): written by the child, which alone knows it before
    /// its exec.
    pub pid_vars: &'a [&'a str],
}

/// A started process. The daemon does not wait for the child's exec:
/// `exec` is its outcome, still to come.
#[derive(Debug)]
pub struct Spawned {
    pub pid: Pid,
    pub exec: PendingExec,
}

/// Starts `spec.argv` in a new session (so its own process group), stdin
/// from /dev/null, stdout and stderr appended to the log file (the daemon's
/// own in container mode), with the unit's limits and identity. Errors
/// found before the clone are returned here; the exec's own outcome
/// (including a limit or identity the kernel refused) comes later, through
/// [`Spawned::exec`].
pub fn spawn(spec: &SpawnSpec<'_>, cache: &mut SpawnCache) -> Result<Spawned, SpawnError> {
    let Some((program, args)) = spec.argv.split_first() else {
        return Err(SpawnError::EmptyCommand);
    };
    check_before_clone(spec)?;
    let log = match spec.inherit_stdio {
        true => None,
        false => open_log(spec.log, spec.fds.len())?,
    };
    let identity = match spec.user {
        Some(name) => resolve_user(name).map_err(SpawnError::Setup)?,
        None => None,
    };
    let setup = if spec.limits.needs_child_work() {
        child_setup(spec.limits, identity.as_ref()).map_err(SpawnError::Setup)?
    } else {
        ChildSetup::default()
    };
    let work = child_work(setup, identity.as_ref());
    // A clone whose exec the daemon does not wait for (it starts the next
    // service while the kernel execs this one); the outcome comes through
    // the child's report pipe.
    clone_service(program, args, spec, identity.as_ref(), work, log, cache)
        .map_err(|e| describe_spawn_error(program, spec.cwd, &e))
}

/// The outcome of a child's exec, still to come: the read end of its
/// close-on-exec report pipe. End of file means the child is done with the
/// daemon's memory: it exec'd, or it wrote four bytes first (the errno of
/// what failed) and exited with 127. Until then it keeps the child's plan
/// and stack (`child::Launched`).
pub struct PendingExec {
    fd: OwnedFd,
    program: String,
    /// What the child reported so far ([`child::REPORT_LEN`] bytes when it
    /// failed: the step and the errno).
    report: Vec<u8>,
    /// Dropped only at end of file (leaked if the PendingExec goes first).
    launched: Option<child::Launched>,
}

impl std::fmt::Debug for PendingExec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingExec")
            .field("fd", &self.fd)
            .field("program", &self.program)
            .finish_non_exhaustive()
    }
}

impl Drop for PendingExec {
    fn drop(&mut self) {
        // The child may still run on them: never freed under it.
        if let Some(launched) = self.launched.take() {
            std::mem::forget(launched);
        }
    }
}

impl PendingExec {
    /// The pipe, for the event loop to wait on (readable at the outcome).
    pub fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// The outcome if it is there (never blocks).
    pub fn poll(&mut self) -> Option<Result<(), SpawnError>> {
        let mut buf = [0u8; child::REPORT_LEN];
        loop {
            // SAFETY: read into a buffer we own, of its length.
            let n =
                unsafe { nix::libc::read(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            match n {
                // The child is done with its plan and stack.
                0 => {
                    let outcome = self.outcome();
                    drop(self.launched.take());
                    return Some(outcome);
                }
                n if n > 0 => {
                    let n = usize::try_from(n).unwrap_or(0);
                    self.report.extend_from_slice(&buf[..n]);
                }
                _ => match io::Error::last_os_error() {
                    e if e.kind() == io::ErrorKind::Interrupted => continue,
                    e if e.kind() == io::ErrorKind::WouldBlock => return None,
                    e => {
                        return Some(Err(SpawnError::Exec {
                            program: self.program.clone(),
                            error: format!("cannot read the outcome of its exec: {e}"),
                        }))
                    }
                },
            }
        }
    }

    /// What the child's report says: nothing is an exec that happened.
    fn outcome(&self) -> Result<(), SpawnError> {
        let word = |at: usize| {
            self.report
                .get(at..at + 4)
                .and_then(|b| <[u8; 4]>::try_from(b).ok())
                .map(u32::from_ne_bytes)
        };
        if self.report.is_empty() {
            return Ok(());
        }
        let (Some(step), Some(errno)) = (word(0), word(4)) else {
            // A short write: the child died mid-report.
            return Err(SpawnError::Exec {
                program: self.program.clone(),
                error: "its exec failed (the report was cut short)".to_owned(),
            });
        };
        let e = io::Error::from_raw_os_error(errno as i32);
        // The paths are the plan's, still held: the child has just ended.
        let path = |c: Option<&CString>| {
            std::path::PathBuf::from(OsStr::from_bytes(c.map_or(&[][..], |c| c.as_bytes())))
        };
        let plan = self.launched.as_ref().map(child::Launched::plan);
        Err(match child::Step::from_u32(step & 0xff) {
            child::Step::Log => SpawnError::Log {
                path: path(plan.and_then(|p| p.new_log.as_ref())),
                error: e.to_string(),
            },
            child::Step::Cwd => {
                let dir = path(plan.map(|p| &p.cwd));
                match e.kind() {
                    io::ErrorKind::NotFound => SpawnError::NoWorkingDirectory(dir),
                    _ => SpawnError::WorkingDirectory {
                        dir,
                        error: e.to_string(),
                    },
                }
            }
            child::Step::Exec
                if errno as i32 == nix::libc::ENOENT
                    && plan.is_some_and(|p| path(Some(&p.path)).is_file()) =>
            {
                // The file is there (checked before the clone, and now).
                SpawnError::Exec {
                    program: self.program.clone(),
                    error: "cannot run it: the interpreter its `#!` line names (or the loader a binary needs) does not exist".to_owned(),
                }
            }
            child::Step::Exec
                if errno as i32 == nix::libc::EACCES
                    && plan
                        .is_some_and(|p| crate::paths::on_noexec_mount(&path(Some(&p.path)))) =>
            {
                SpawnError::Exec {
                    program: self.program.clone(),
                    error: "cannot run it: its file system is mounted noexec".to_owned(),
                }
            }
            child::Step::Setup | child::Step::Exec => {
                describe_spawn_error(&self.program, &path(plan.map(|p| &p.cwd)), &e)
            }
            child::Step::Limits | child::Step::Identity => SpawnError::Setup(SetupError::Refused {
                key: child::refused_key(step >> 8),
                errno: Errno::from_raw(errno as i32),
            }),
        })
    }

    /// Waits for the outcome (a moment: the child is exec'ing, or dead).
    pub fn wait(mut self) -> Result<(), SpawnError> {
        // A held child gets to its exec only once let go.
        child::release_children();
        loop {
            if let Some(outcome) = self.poll() {
                return outcome;
            }
            let mut pfd = nix::libc::pollfd {
                fd: self.fd.as_raw_fd(),
                events: nix::libc::POLLIN,
                revents: 0,
            };
            // SAFETY: poll on one pollfd we own; EINTR just loops.
            unsafe { nix::libc::poll(&mut pfd, 1, -1) };
        }
    }
}

/// Starts a service's process (see [`child`]): a new session, stdin from
/// /dev/null, stdout and stderr on the log, the working directory changed
/// in the child, an empty signal mask and every signal at its default
/// disposition (as under systemd). Returns at once; the exec's
/// outcome comes through the returned [`PendingExec`].
/// A clone sharing the daemon's memory rather than a fork: a fork copies
/// the daemon's page tables and leaves every page copy-on-write (~300 us
/// of the daemon's CPU per spawn); and rather than a vfork, whose daemon
/// waits for each exec in turn while the other core may sit idle. A child
/// that changes its user, groups or OOM score is a fork all the same
/// ([`child::Work::needs_own_memory`]).
fn clone_service(
    program: &str,
    args: &[String],
    spec: &SpawnSpec<'_>,
    identity: Option<&Identity>,
    work: Option<Box<child::Work>>,
    log: Option<OwnedFd>,
    cache: &mut SpawnCache,
) -> io::Result<Spawned> {
    let argv_owned: Vec<CString> = std::iter::once(program)
        .chain(args.iter().map(String::as_str))
        .map(|a| cstring(a.as_bytes().to_vec()))
        .collect::<io::Result<_>>()?;
    let cwd = cstring(spec.cwd.as_os_str().as_bytes().to_vec())?;
    // Kept by the plan: the child's environment points into it.
    let base_env = cache.base_env()?;
    let path_var = service_path(&base_env, spec).to_vec();
    // Found as root, where a service with User= may not run what root
    // may: it gets every place on its PATH, as execvp would try them.
    let (exe, fallbacks) = cache.locate(program, &path_var, spec.cwd, identity.is_some())?;
    let mut env_owned = Vec::new();
    let pid_env = child::PidVars::new(spec.pid_vars);
    let envp: Vec<*const nix::libc::c_char> =
        service_envp(&base_env, spec, identity, &mut env_owned)?
            .iter()
            .filter(|kv| !pid_env.names(kv.to_bytes()))
            .map(|a| a.as_ptr())
            .chain(pid_env.entries())
            .chain(std::iter::once(std::ptr::null()))
            .collect();
    let argv: Vec<*const nix::libc::c_char> = argv_owned
        .iter()
        .map(|a| a.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect();
    let (read, write) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC | nix::fcntl::OFlag::O_NONBLOCK)
            .map_err(io::Error::from)?;
    let write = above_sockets(write, spec.fds.len())?;
    let reset = *cache.reset.get_or_insert_with(child::signals_to_reset);
    let (pid, launched) = child::launch(child::Plan {
        path: exe,
        fallbacks,
        argv,
        argv_owned,
        envp,
        env_owned,
        base_env,
        cwd,
        log: log.as_ref().map(AsRawFd::as_raw_fd),
        new_log: match (&log, spec.inherit_stdio) {
            (None, false) => Some(cstring(spec.log.as_os_str().as_bytes().to_vec())?),
            _ => None,
        },
        fds: spec.fds.to_vec(),
        report: write.as_raw_fd(),
        reset,
        nofile: SERVICE_NOFILE.get().copied(),
        work,
        gate: None,
        pid_env,
    })?;
    // The child has its own copy of the descriptor table.
    drop(write);
    drop(log);
    Ok(Spawned {
        pid,
        exec: PendingExec {
            fd: read,
            program: program.to_owned(),
            report: Vec::new(),
            launched: Some(launched),
        },
    })
}

/// The child puts its stdio at 0, 1, 2 and the unit's sockets at 3, 4,
/// ...: its end of the report pipe must be none of those, or a `dup3`
/// would close it, and the daemon would take that for the exec while the
/// child still runs on its plan. Moved above them when it is (still
/// close-on-exec).
fn above_sockets(write: OwnedFd, sockets: usize) -> io::Result<OwnedFd> {
    let lowest = 3 + sockets as RawFd;
    if write.as_raw_fd() >= lowest {
        return Ok(write);
    }
    dup_at_least(write, lowest)
}

/// `fd` moved to the lowest free descriptor at or above `min`, close-on-exec.
pub fn dup_at_least(fd: OwnedFd, min: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: F_DUPFD_CLOEXEC on a descriptor we own returns a new one that
    // nothing else owns; it is wrapped at once.
    let n = unsafe { nix::libc::fcntl(fd.as_raw_fd(), nix::libc::F_DUPFD_CLOEXEC, min) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `n` was just returned by fcntl and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(n) })
}

/// The open-files limit the daemon was started with, when it raised its
/// own soft limit to the hard one: every child gets it back before its
/// exec (as systemd keeps services at a soft 1024), so a program that
/// closes or polls every descriptor up to its limit is not slowed down.
static SERVICE_NOFILE: std::sync::OnceLock<[u64; 2]> = std::sync::OnceLock::new();

/// Raises the daemon's soft limit of open files to its hard limit (at most
/// 2^20): it holds a pidfd per adopted service and a pipe per exec in
/// flight, and past the soft limit an adopted process would be checked on
/// a timer instead. Once, at start, before the first spawn.
pub fn raise_open_files_limit() {
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return;
    };
    let target = hard.min(1 << 20);
    if soft >= target {
        return;
    }
    match nix::sys::resource::setrlimit(Resource::RLIMIT_NOFILE, target, hard) {
        Ok(()) => {
            let _ = SERVICE_NOFILE.set([soft, hard]);
            log::info!("open files limit raised from {soft} to {target}; services keep {soft}");
        }
        Err(e) => log::warn!("cannot raise the open files limit from {soft} to {target}: {e}"),
    }
}

/// The boot clock in the clock ticks of `/proc/PID/stat`'s start time
/// (CLOCK_BOOTTIME over the USER_HZ tick, rounded down as the kernel does).
/// Read just before and just after a spawn: when both give the same tick,
/// that tick is the new process's start time, and `/proc` need not be read.
pub fn boot_clock_ticks() -> Option<u64> {
    use nix::libc;
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into `ts`, which we own;
    // sysconf only reads a configuration value.
    let (rc, hz) = unsafe {
        (
            libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts),
            libc::sysconf(libc::_SC_CLK_TCK),
        )
    };
    if rc != 0 || hz <= 0 || ts.tv_sec < 0 || ts.tv_nsec < 0 {
        return None;
    }
    let ns = ts.tv_sec as u128 * 1_000_000_000 + ts.tv_nsec as u128;
    u64::try_from(ns / (1_000_000_000 / hz as u128)).ok()
}

fn describe_spawn_error(program: &str, cwd: &Path, e: &io::Error) -> SpawnError {
    let program = program.to_owned();
    if let Some(nix::libc::EMFILE | nix::libc::ENFILE | nix::libc::EAGAIN | nix::libc::ENOMEM) =
        e.raw_os_error()
    {
        return SpawnError::Resources {
            program,
            error: e.to_string(),
        };
    }
    match e.kind() {
        io::ErrorKind::NotFound if !cwd.is_dir() => SpawnError::NoWorkingDirectory(cwd.into()),
        io::ErrorKind::NotFound => SpawnError::NotFound {
            in_path: !program.contains('/'),
            program,
        },
        io::ErrorKind::PermissionDenied => SpawnError::PermissionDenied { program },
        _ => SpawnError::Exec {
            program,
            error: e.to_string(),
        },
    }
}

/// Why a process could not be started: data, so callers can tell the
/// cases apart; `Display` is the one line a user sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpawnError {
    /// The command line is empty.
    EmptyCommand,
    /// The unit has no ExecStop to run.
    NoExecStop,
    /// The unit's user, groups or limits cannot be honoured.
    Setup(SetupError),
    /// An EnvironmentFile cannot be read or parsed.
    EnvironmentFile(crate::unit::EnvFileError),
    /// The service's log cannot be opened.
    Log {
        path: std::path::PathBuf,
        error: String,
    },
    /// `WorkingDirectory` does not exist.
    NoWorkingDirectory(std::path::PathBuf),
    /// `WorkingDirectory` cannot be entered (by the unit's user).
    WorkingDirectory {
        dir: std::path::PathBuf,
        error: String,
    },
    /// The program is not there (`in_path`: it was looked up on PATH).
    NotFound {
        program: String,
        in_path: bool,
    },
    PermissionDenied {
        program: String,
    },
    /// The daemon (or the system) was short of descriptors, processes or
    /// memory: transient, retried per the unit's Restart.
    Resources {
        program: String,
        error: String,
    },
    /// Any other failure to execute the program.
    Exec {
        program: String,
        error: String,
    },
    /// A `[socket]` address cannot be bound.
    Socket(crate::daemon::driver::listeners::BindError),
}

impl SpawnError {
    /// Whether another attempt may well work (the daemon was short of
    /// resources), as opposed to a unit that cannot start as written.
    pub fn is_transient(&self) -> bool {
        matches!(self, SpawnError::Resources { .. })
    }
}

impl std::fmt::Display for SpawnError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SpawnError::EmptyCommand => write!(f, "empty command"),
            SpawnError::NoExecStop => write!(f, "no ExecStop"),
            SpawnError::Setup(e) => write!(f, "{e}"),
            SpawnError::EnvironmentFile(e) => write!(f, "{e}"),
            SpawnError::Log { path, error } => {
                write!(f, "cannot open log {}: {error}", path.display())
            }
            SpawnError::NoWorkingDirectory(dir) => {
                write!(f, "WorkingDirectory {} does not exist", dir.display())
            }
            SpawnError::WorkingDirectory { dir, error } => {
                write!(
                    f,
                    "cannot enter WorkingDirectory {}: {error}",
                    dir.display()
                )
            }
            SpawnError::NotFound {
                program,
                in_path: true,
            } => write!(f, "`{program}` not found in PATH"),
            SpawnError::NotFound { program, .. } => write!(f, "`{program}` not found"),
            SpawnError::PermissionDenied { program } => {
                write!(f, "`{program}`: permission denied")
            }
            SpawnError::Exec { program, error } => write!(f, "`{program}`: {error}"),
            SpawnError::Resources { program, error } => {
                write!(
                    f,
                    "`{program}`: {error} (short of resources: retried per Restart)"
                )
            }
            SpawnError::Socket(e) => write!(f, "{e}"),
        }
    }
}

#[cfg(test)]
mod spawn_path_tests;

/// Sends `signal` to every process of the group; a group already gone is fine.
/// Never the daemon's own group, nor init's (a group read from a process
/// that left a service's session could be anything).
///
/// `leader_under_way`: `pgid` is a child of ours whose exec is still under
/// way, so it may not have made its group yet (setsid, just before the
/// exec); then, with no such group, the child itself gets the signal.
pub fn kill_group(pgid: Pid, signal: Signal, leader_under_way: bool) {
    if pgid.as_raw() <= 1 || pgid == nix::unistd::getpgrp() {
        log::warn!(
            "not sending {} to process group {pgid}: it is not a service's",
            signal.as_str()
        );
        return;
    }
    match killpg(pgid, signal) {
        Err(Errno::ESRCH) if leader_under_way => {
            // Not reaped (its exec is awaited), so the pid is still it.
            let _ = nix::sys::signal::kill(pgid, signal);
        }
        Ok(()) | Err(Errno::ESRCH) => {}
        Err(e) => log::warn!(
            "cannot send {} to process group {pgid}: {e}",
            signal.as_str()
        ),
    }
}

/// Whether a process that runs (or a zombie of ours, reaped soon) is left
/// in the group.
pub fn group_alive(pgid: Pid) -> bool {
    if matches!(killpg(pgid, None), Err(Errno::ESRCH)) {
        return false;
    }
    // A leader still running (the common case while a stop is under way)
    // answers without a look through all of /proc.
    if procfs::stat(pgid.as_raw()).is_some_and(|s| !s.zombie) {
        return true;
    }
    // Members are left: they may all be dead, zombies another process has
    // yet to reap (an adopted service's, whose parent is init, which may
    // reap late or never). Those run nothing: the group is gone. Ours are
    // reaped at the next SIGCHLD; without /proc, it is alive.
    let me = std::process::id() as i32;
    let members: Vec<procfs::Stat> = procfs::all_processes()
        .into_iter()
        .filter(|p| p.pgrp == pgid.as_raw())
        .collect();
    members.is_empty() || members.iter().any(|p| !p.zombie || p.ppid == me)
}

/// Collects every exited child without blocking: (pid, how it ended).
pub fn reap_all() -> Vec<(Pid, ExitKind)> {
    let mut out = Vec::new();
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, code)) => out.push((pid, ExitKind::Code(code))),
            Ok(WaitStatus::Signaled(pid, sig, _)) => out.push((pid, ExitKind::Signal(sig))),
            Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => break,
            Ok(_) => continue,
            Err(Errno::EINTR) => continue,
            Err(e) => {
                log::warn!("waitpid failed: {e}");
                break;
            }
        }
    }
    out
}

/// Makes the daemon the reaper of its services' orphans, so it sees the last
/// member of a process group die.
pub fn become_subreaper() {
    if let Err(e) = nix::sys::prctl::set_child_subreaper(true) {
        log::warn!("cannot become a child subreaper: {e}");
    }
}

/// (Moved to `procfs`, which the client shares.)
pub use crate::procfs::pidfd_open;

/// Closes every descriptor the daemon inherited beyond stdio, but those
/// `kept` (the starting client's ready socket, what a hand-over passed):
/// a launcher's lock, terminal or pipe must not stay open for the daemon's
/// whole life (a cron script's `flock` would never be released, a reader
/// waiting for the end of a pipe would wait for ever), nor reach a service.
pub fn close_inherited_fds(kept: &[RawFd]) {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return;
    };
    let fds: Vec<RawFd> = dir
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|&fd| fd > 2 && !kept.contains(&fd))
        .collect();
    for fd in fds {
        // SAFETY: this runs before the daemon opens anything: no object in
        // this process owns these descriptors (those taken over as owned
        // are in `kept`). The read_dir handle's number, listed too, is
        // closed already: close fails with EBADF, which is harmless.
        unsafe {
            nix::libc::close(fd);
        }
    }
}

#[cfg(test)]
mod main_pid_scan_tests;
