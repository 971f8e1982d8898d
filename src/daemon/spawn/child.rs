//! The child side of a service's spawn, from the clone to its exec: a new
//! session, stdin, the log, the sockets, the working directory, then the
//! unit's limits and identity ([`Work`]), the signal mask, the exec.
//!
//! The child is a clone that shares the daemon's memory (CLONE_VM: no copy
//! of the page tables, and none of the copy-on-write faults a fork leaves
//! behind) and runs on a stack of its own. On x86_64 it runs concurrently
//! with the daemon, which goes on to the next service while the kernel
//! execs this one; elsewhere the clone is a vfork (the daemon waits for the
//! exec, as posix_spawn does): the raw system calls that running beside the
//! daemon needs are written for x86_64 only, the one architecture where
//! they are tested (qemu-user cannot run such a clone).
//!
//! Running beside the daemon in the same memory, the child must write to
//! nothing of the daemon's: it reads its [`Plan`] (which the daemon keeps,
//! untouched, until the child's end of the report pipe closes, at its exec
//! or its exit), uses only its own stack, and makes raw system calls, not
//! libc's wrappers (those set `errno`, which is the daemon's, and some take
//! libc's locks). Its descriptor table and signal handlers are its own
//! copies (no CLONE_FILES, no CLONE_SIGHAND). A child that changes its
//! user or groups, or its OOM score, is a fork instead: see
//! [`Work::needs_own_memory`].
//!
//! In the daemon, children cloned during one pass of its loop are held at
//! a gate just before their exec until the pass ends
//! ([`hold_children`], [`release_children`]): a burst of starts is one
//! pass, and without the gate the daemon would share the CPUs with the
//! start-up of every service it has cloned so far (a dynamically linked
//! program spends ~0.5 ms there, in a VM mostly in `cpuid`), each spawn
//! slower than the last, the answer to `start` last of all. Held, the
//! clones cost the daemon ~60 us each, and the services start together,
//! after the answer. The loop releases them before it polls, unless the
//! pass answered a client and cloned more of them than there are CPUs: then
//! once that client has hung up, at most 50 ms later (`event_loop.rs`).
//! A wait for an exec releases them first.

use std::ffi::{c_char, c_int, c_long, c_void, CString};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use super::stack::Stack;
use nix::libc;
use nix::unistd::Pid;

/// What the child needs, owned: the daemon keeps it at the same place
/// (boxed) until the child has exec'd or exited.
pub struct Plan {
    pub path: CString,
    /// Where else the program may be, tried in order when `path` fails
    /// (a remembered place it moved away from).
    pub fallbacks: std::rc::Rc<[CString]>,
    /// Null-terminated; pointing into `argv_owned`.
    pub argv: Vec<*const c_char>,
    /// Only kept, for `argv`.
    #[allow(dead_code)]
    pub argv_owned: Vec<CString>,
    /// Null-terminated; pointing into `env_owned` and `base_env`.
    pub envp: Vec<*const c_char>,
    /// Only kept, for `envp`.
    #[allow(dead_code)]
    pub env_owned: Vec<CString>,
    /// The daemon's environment as the spawn cache turned it into C
    /// strings (shared, not copied); only kept, for `envp`.
    #[allow(dead_code)]
    pub base_env: std::rc::Rc<[(usize, CString)]>,
    pub cwd: CString,
    /// The service's log when it exists: opened by the daemon for
    /// appending, so `start` says when it cannot be; at or above
    /// `3 + fds.len()`, close-on-exec. None in container mode (stdout and
    /// stderr stay the daemon's) or when it is to be created:
    pub log: Option<RawFd>,
    /// A new log, created by the child for appending once let go: a
    /// hundred new files in one directory cost the daemon's loop ~50 ms.
    pub new_log: Option<CString>,
    /// Sockets to move to 3, 4, ...
    pub fds: Vec<RawFd>,
    /// The write end of the report pipe (close-on-exec).
    pub report: RawFd,
    /// Signals (bit n: signal n) to reset to the default disposition: the
    /// ones the daemon handles (their handlers would write to its signal
    /// pipe) or ignores (ignored signals survive exec).
    pub reset: u64,
    /// The open-files limit to put back (the daemon raised its own), before
    /// the unit's own limits.
    pub nofile: Option<[u64; 2]>,
    /// A unit's limits and identity, set after the working directory.
    pub work: Option<Box<Work>>,
    /// `NAME=` entries of `envp` the child completes with its own pid.
    pub pid_env: PidVars,
    /// The read end of the gate the child waits at, until end of file
    /// (which comes once the daemon closed the write end, and every held
    /// child its copy); set by [`launch`].
    pub gate: Option<RawFd>,
}

/// Variables set to the child's own pid (`LISTEN_PID`, `WATCHDOG_PID`):
/// `NAME=` and room for the digits, which the child writes before its exec
/// (the pid is known only then). Each buffer belongs to this child's plan
/// alone, and the daemon reads none until the child is done with it, so
/// the child's write (through `Cell`, interior mutability) races nothing.
#[derive(Default)]
pub struct PidVars {
    vars: Vec<(usize, Box<[std::cell::Cell<u8>]>)>,
}

/// Room for a pid's digits and the NUL (pids are at most 2^22 on Linux).
const PID_ROOM: usize = 12;

impl PidVars {
    pub fn new(names: &[&str]) -> PidVars {
        let vars = names
            .iter()
            .map(|name| {
                let mut entry = Vec::with_capacity(name.len() + 1 + PID_ROOM);
                entry.extend_from_slice(name.as_bytes());
                entry.push(b'=');
                entry.resize(name.len() + 1 + PID_ROOM, 0);
                let cells: Box<[std::cell::Cell<u8>]> =
                    entry.into_iter().map(std::cell::Cell::new).collect();
                (name.len() + 1, cells)
            })
            .collect();
        PidVars { vars }
    }

    /// Whether `entry` (`K=V`) sets one of these variables (it gives way).
    pub fn names(&self, entry: &[u8]) -> bool {
        self.vars.iter().any(|(at, cells)| {
            entry.len() >= *at && cells[..*at].iter().zip(entry).all(|(c, b)| c.get() == *b)
        })
    }

    /// The entries, for `envp` (complete once the child wrote its pid).
    pub fn entries(&self) -> impl Iterator<Item = *const c_char> + '_ {
        self.vars
            .iter()
            .map(|(_, cells)| cells.as_ptr().cast::<c_char>())
    }

    #[cfg(test)]
    pub fn fill_for_test(&self, pid: u32) {
        self.fill(pid);
    }

    /// In the child: writes `pid` after each `NAME=`, NUL-terminated.
    fn fill(&self, pid: u32) {
        let mut digits = [0u8; PID_ROOM];
        let mut n = pid;
        let mut len = 0;
        // No indexing that could panic: this runs in the child.
        while let Some(d) = digits.get_mut(len).filter(|_| len < PID_ROOM - 1) {
            *d = b'0' + (n % 10) as u8;
            len += 1;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        for (at, cells) in &self.vars {
            let room = cells.get(*at..).unwrap_or_default();
            let written = digits.get(..len).unwrap_or_default();
            for (cell, digit) in room.iter().zip(written.iter().rev()) {
                cell.set(*digit);
            }
            if let Some(end) = room.get(len) {
                end.set(0);
            }
        }
    }
}

/// What a unit's limits and identity make the child do between changing
/// its working directory and its exec, in this order; resolved and
/// checked by the daemon (`identity.rs`), which is what may fail there.
#[derive(Debug, Default)]
pub struct Work {
    /// The log's new owner (the service writes it as its user); best effort.
    pub log_owner: Option<(libc::uid_t, libc::gid_t)>,
    /// (resource, [soft, hard]), set with prlimit64.
    pub rlimits: Vec<(c_int, [u64; 2])>,
    pub nice: Option<c_int>,
    /// What to write to /proc/self/oom_score_adj.
    pub oom_score_adj: Option<Vec<u8>>,
    pub umask: Option<libc::mode_t>,
    /// setgroups, setgid, setuid (each only when set).
    pub groups: Option<Vec<libc::gid_t>>,
    pub gid: Option<libc::gid_t>,
    pub uid: Option<libc::uid_t>,
}

impl Work {
    /// Whether the child must not share the daemon's memory: a fork, not a
    /// clone that shares it (its page-table copy costs the daemon ~0.1-0.3
    /// ms). When a process's credentials change, the kernel makes its
    /// memory not dumpable: shared, the daemon's too, and a process of the
    /// new user could otherwise trace the child and write the daemon's
    /// memory through it. A write to `oom_score_adj` goes to every process
    /// that shares the writer's memory, the daemon (and through it every
    /// later service) included.
    pub fn needs_own_memory(&self) -> bool {
        self.changes_identity() || self.oom_score_adj.is_some()
    }

    /// Whether the child becomes another user or group.
    pub fn changes_identity(&self) -> bool {
        self.uid.is_some() || self.gid.is_some() || self.groups.is_some()
    }
}

/// A child under way: its plan and its stack, to be kept until the child
/// is done with them (its end of the report pipe closed).
pub struct Launched {
    plan: Box<Plan>,
    _stack: Stack,
}

impl Launched {
    /// What the child was given.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }
}

/// Clones the child that execs `plan`. Returns its pid and what must be
/// kept until its end of the report pipe closes.
pub fn launch(mut plan: Plan) -> io::Result<(Pid, Launched)> {
    let vfork = !RAW_SYSCALLS || vfork_asked();
    // A vfork's daemon waits for the exec: a held child would never get there.
    // Not held when its sockets would be moved over the gate.
    plan.gate = if vfork {
        None
    } else {
        gate(3 + plan.fds.len() as RawFd)?
    };
    let plan = Box::new(plan);
    let stack = Stack::new()?;
    let flags = if plan.work.as_ref().is_some_and(|w| w.needs_own_memory()) {
        // A fork: the child's memory is a copy (see Work::needs_own_memory).
        libc::SIGCHLD
    } else if !vfork {
        libc::CLONE_VM | libc::SIGCHLD
    } else {
        libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD
    };
    // SAFETY: the child runs `entry` on `stack` (a mapping of its own, with
    // a guard page below) with a pointer to the boxed plan, which is neither
    // moved nor freed while the child may use it: `Launched` keeps both, and
    // its owner keeps it until the child's end of the report pipe closed
    // (PendingExec leaks it if dropped before). The child makes only raw
    // system calls (see the module's opening comment), so running beside
    // the daemon in its memory it writes nothing of the daemon's. Every
    // signal is blocked around the clone, so no handler of the daemon runs
    // in the child before it reset them; the daemon's mask is restored at
    // once.
    let pid = unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::sigprocmask(libc::SIG_SETMASK, &all, &mut old);
        let arg = std::ptr::from_ref::<Plan>(&plan).cast_mut().cast();
        let mut pid = libc::clone(entry, stack.top(), flags, arg);
        let mut err = io::Error::last_os_error();
        if pid < 0 && err.raw_os_error() == Some(libc::EINVAL) && flags & libc::CLONE_VFORK == 0 {
            // Refused (qemu-user emulates CLONE_VM only for threads): a
            // vfork, which it turns into a fork, does the same work; the
            // gate opens first (its daemon waits for its exec).
            release_children();
            pid = libc::clone(entry, stack.top(), flags | libc::CLONE_VFORK, arg);
            err = io::Error::last_os_error();
        }
        libc::sigprocmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
        if pid < 0 {
            return Err(err);
        }
        pid
    };
    Ok((
        Pid::from_raw(pid),
        Launched {
            plan,
            _stack: stack,
        },
    ))
}

/// The gate of this pass, if children are held at all.
struct Gate {
    /// [`hold_children`] was called: the daemon's loop releases them.
    on: bool,
    /// The pipe of the current pass, made by its first spawn.
    pipe: Option<(OwnedFd, OwnedFd)>,
    /// Children cloned since the pipe was made.
    held: usize,
}

/// The gate's descriptors are at least this (sockets go to 3, 4, ...).
const GATE_FD: RawFd = 128;

thread_local! {
    static GATE: std::cell::RefCell<Gate> = const {
        std::cell::RefCell::new(Gate { on: false, pipe: None, held: 0 })
    };
}

/// From now on, children wait at a gate until [`release_children`]
/// (called by the daemon's loop at the end of each pass; nothing else
/// spawning needs to know). See the module's opening comment.
pub fn hold_children() {
    GATE.with(|g| g.borrow_mut().on = true);
}

/// Lets every held child go on to its exec (closes the gate's pipe).
pub fn release_children() {
    GATE.with(|g| {
        let mut g = g.borrow_mut();
        g.held = 0;
        drop(g.pipe.take());
    });
}

/// How many children wait at the gate (or went past it since it opened,
/// if it has not been released yet).
pub fn held_children() -> usize {
    GATE.with(|g| g.borrow().held)
}

/// The gate's read end for the next child: None when children are not
/// held, or when the read end is below `above` (where the child moves its
/// sockets). Both ends sit high.
fn gate(above: RawFd) -> io::Result<Option<RawFd>> {
    GATE.with(|g| {
        let mut g = g.borrow_mut();
        if !g.on {
            return Ok(None);
        }
        if g.pipe.is_none() {
            let (read, write) =
                nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(io::Error::from)?;
            g.pipe = Some((
                super::dup_at_least(read, GATE_FD)?,
                super::dup_at_least(write, GATE_FD)?,
            ));
        }
        let read = g
            .pipe
            .as_ref()
            .map(|(read, _)| read.as_raw_fd())
            .filter(|&read| read >= above);
        g.held += usize::from(read.is_some());
        Ok(read)
    })
}

/// `DIAKONOS_SPAWN_VFORK=1` in the daemon's environment makes every child a
/// vfork: valgrind (used by `benches/layout.sh`) cannot run a clone that
/// shares memory without being a thread, and aborts the daemon at once.
fn vfork_asked() -> bool {
    static ASKED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ASKED.get_or_init(|| std::env::var_os("DIAKONOS_SPAWN_VFORK").is_some_and(|v| v == "1"))
}

/// The child's entry point for `clone`.
extern "C" fn entry(plan: *mut c_void) -> c_int {
    // SAFETY: `launch` passes its boxed plan, kept alive and unchanged
    // until this child has exec'd or exited.
    unsafe { exec(&*plan.cast::<Plan>()) }
}

/// What the child was doing when it failed: the first half of its report
/// (the errno is the second).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Step {
    Setup = 0,
    /// Creating a new log.
    Log = 1,
    Exec = 2,
    /// Limit*, Nice, OOMScoreAdjust, UMask.
    Limits = 3,
    /// SupplementaryGroups, Group, User.
    Identity = 4,
    /// WorkingDirectory (entered as the unit's user).
    Cwd = 5,
}

impl Step {
    pub fn from_u32(n: u32) -> Step {
        match n {
            1 => Step::Log,
            2 => Step::Exec,
            3 => Step::Limits,
            4 => Step::Identity,
            5 => Step::Cwd,
            _ => Step::Setup,
        }
    }
}

/// Which key a `Limits` or `Identity` step was applying (the report's
/// first word above the step's byte): an rlimit's resource + 1, or one of
/// these. [`refused_key`] names it.
const WHAT_NICE: u32 = 64;
const WHAT_OOM: u32 = 65;
const WHAT_GROUPS: u32 = 66;
const WHAT_GID: u32 = 67;
const WHAT_UID: u32 = 68;

/// The unit key the child's report `what` stands for.
pub fn refused_key(what: u32) -> &'static str {
    match what {
        WHAT_NICE => "Nice",
        WHAT_OOM => "OOMScoreAdjust",
        WHAT_GROUPS => "SupplementaryGroups",
        WHAT_GID => "Group",
        WHAT_UID => "User",
        n => crate::unit::RLIMIT_KEYS
            .iter()
            .find(|(_, r, _)| *r as u32 + 1 == n)
            .map_or("Limit*", |(key, _, _)| key),
    }
}

/// The size of a child's report: the step (low byte) with what it was
/// applying (above), and the errno; native-endian.
pub const REPORT_LEN: usize = 8;

/// Sets up and execs; on failure writes the step and the errno to the
/// report pipe and exits with 127. Never returns.
///
/// # Safety
/// Only in the child of [`launch`], with every signal blocked.
unsafe fn exec(plan: &Plan) -> ! {
    let fail_at = |step: Step, what: u32, errno: i32| -> ! {
        let mut bytes = [0u8; REPORT_LEN];
        bytes[..4].copy_from_slice(&(step as u32 | what << 8).to_ne_bytes());
        bytes[4..].copy_from_slice(&errno.to_ne_bytes());
        sys(
            libc::SYS_write,
            [
                plan.report as usize,
                bytes.as_ptr() as usize,
                REPORT_LEN,
                0,
                0,
                0,
            ],
        );
        loop {
            // exit_group does not return.
            sys(libc::SYS_exit_group, [127, 0, 0, 0, 0, 0]);
        }
    };
    let fail = |errno: i32| -> ! { fail_at(Step::Exec, 0, errno) };
    let check = |ret: isize| -> isize {
        if ret < 0 {
            fail_at(Step::Setup, 0, -ret as i32)
        }
        ret
    };
    reset_signals(plan.reset);
    check(sys(libc::SYS_setsid, [0; 6]));
    let null = check(sys(
        libc::SYS_openat,
        [
            libc::AT_FDCWD as usize,
            c"/dev/null".as_ptr() as usize,
            libc::O_RDONLY as usize,
            0,
            0,
            0,
        ],
    ));
    if null != 0 {
        check(dup_to(null as RawFd, 0));
        sys(libc::SYS_close, [null as usize, 0, 0, 0, 0, 0]);
    }
    let use_log = |log: RawFd| {
        // dup3 (flags 0) gives descriptors without close-on-exec.
        check(dup_to(log, 1));
        check(dup_to(log, 2));
        if let Some((uid, gid)) = plan.work.as_ref().and_then(|w| w.log_owner) {
            sys(SYS_FCHOWN, [1, uid as usize, gid as usize, 0, 0, 0]);
        }
    };
    let create_log = |path: &CString| {
        let log = sys(
            libc::SYS_openat,
            [
                libc::AT_FDCWD as usize,
                path.as_ptr() as usize,
                (libc::O_WRONLY | libc::O_CREAT | libc::O_APPEND | libc::O_CLOEXEC) as usize,
                0o640,
                0,
                0,
            ],
        );
        if log < 0 {
            fail_at(Step::Log, 0, -log as i32);
        }
        use_log(log as RawFd);
        if log > 2 {
            sys(libc::SYS_close, [log as usize, 0, 0, 0, 0, 0]);
        }
    };
    // The daemon's copy (close-on-exec) goes at the exec, or at the gate.
    if let Some(log) = plan.log {
        use_log(log);
    }
    // Created after the gate, unless the child is to change its user (the
    // logs are the daemon's user's) or is not held.
    let create_after_gate =
        plan.gate.is_some() && !plan.work.as_ref().is_some_and(|w| w.changes_identity());
    if let (Some(path), false) = (&plan.new_log, create_after_gate) {
        create_log(path);
    }
    for (i, fd) in plan.fds.iter().enumerate() {
        check(dup_to(*fd, 3 + i as RawFd));
    }
    if let Some(limit) = &plan.nofile {
        let ret = prlimit(libc::RLIMIT_NOFILE as c_int, limit);
        if ret < 0 {
            fail_at(
                Step::Limits,
                libc::RLIMIT_NOFILE as c_int as u32 + 1,
                -ret as i32,
            );
        }
    }
    if let Some(work) = &plan.work {
        apply(work, |step, what, errno| fail_at(step, what, errno));
    }
    // As the unit's user (systemd does so too): a directory it may not
    // enter fails the start here, not every file access after it.
    let cd = sys(libc::SYS_chdir, [plan.cwd.as_ptr() as usize, 0, 0, 0, 0, 0]);
    if cd < 0 {
        fail_at(Step::Cwd, 0, -cd as i32);
    }
    if !plan.pid_env.vars.is_empty() {
        plan.pid_env.fill(sys(libc::SYS_getpid, [0; 6]) as u32);
    }
    if let Some(read) = plan.gate {
        // Held, set up as it will run (session, stdio, sockets, limits,
        // identity, directory), with none of the daemon's descriptors but
        // the two it still needs, until the daemon closes its end of the
        // gate: every other copy of the write end is a held child's, which
        // closes its own here.
        close_all_but(3 + plan.fds.len() as RawFd, [plan.report, read]);
        let mut byte = 0u8;
        while sys(
            libc::SYS_read,
            [read as usize, &raw mut byte as usize, 1, 0, 0, 0],
        ) > 0
        {}
        sys(libc::SYS_close, [read as usize, 0, 0, 0, 0, 0]);
    }
    if let (Some(path), true) = (&plan.new_log, create_after_gate) {
        create_log(path);
    }
    let empty = 0u64;
    sys(
        libc::SYS_rt_sigprocmask,
        [
            libc::SIG_SETMASK as usize,
            &raw const empty as usize,
            0,
            8,
            0,
            0,
        ],
    );
    let execve = |path: &CString| -> i32 {
        -sys(
            libc::SYS_execve,
            [
                path.as_ptr() as usize,
                plan.argv.as_ptr() as usize,
                plan.envp.as_ptr() as usize,
                0,
                0,
                0,
            ],
        ) as i32
    };
    let first = execve(&plan.path);
    if plan.fallbacks.is_empty()
        || !matches!(
            first,
            libc::ENOENT | libc::EACCES | libc::ENOEXEC | libc::ENOTDIR
        )
    {
        fail(first);
    }
    // The remembered place no longer works (or the daemon found it as
    // root, and this child runs as another user): the program is looked
    // for along PATH, as execvp does; a place it may not run is reported
    // when none works.
    let mut denied = first == libc::EACCES;
    for candidate in plan.fallbacks.iter() {
        match execve(candidate) {
            libc::EACCES => denied = true,
            libc::ENOENT | libc::ENOTDIR => {}
            other => fail(other),
        }
    }
    fail(if denied { libc::EACCES } else { libc::ENOENT })
}

/// Closes every descriptor from `low` up but the two in `keep` (the
/// daemon's, which the exec would close anyway: close-on-exec). On a
/// kernel without close_range (before 5.9) they stay until the exec.
///
/// # Safety
/// Only in a child (it closes what the daemon's copy of the table holds).
unsafe fn close_all_but(low: RawFd, mut keep: [RawFd; 2]) {
    keep.sort_unstable();
    let mut from = low as usize;
    for k in keep {
        let k = k as usize;
        if k >= from {
            if k > from {
                sys(libc::SYS_close_range, [from, k - 1, 0, 0, 0, 0]);
            }
            from = k + 1;
        }
    }
    sys(libc::SYS_close_range, [from, u32::MAX as usize, 0, 0, 0, 0]);
}

/// A unit's limits, then its identity (see [`Work`]); `fail` does not return.
///
/// # Safety
/// Only in the child of [`launch`] (raw system calls on the plan's data).
unsafe fn apply(work: &Work, fail: impl Fn(Step, u32, i32)) {
    let at = |step: Step, what: u32, ret: isize| {
        if ret < 0 {
            fail(step, what, -ret as i32);
        }
    };
    for (resource, limit) in &work.rlimits {
        at(
            Step::Limits,
            *resource as u32 + 1,
            prlimit(*resource, limit),
        );
    }
    if let Some(nice) = work.nice {
        let ret = sys(
            libc::SYS_setpriority,
            [
                libc::PRIO_PROCESS as usize,
                0,
                nice as isize as usize,
                0,
                0,
                0,
            ],
        );
        at(Step::Limits, WHAT_NICE, ret);
    }
    if let Some(adj) = &work.oom_score_adj {
        let fd = sys(
            libc::SYS_openat,
            [
                libc::AT_FDCWD as usize,
                c"/proc/self/oom_score_adj".as_ptr() as usize,
                (libc::O_WRONLY | libc::O_CLOEXEC) as usize,
                0,
                0,
                0,
            ],
        );
        at(Step::Limits, WHAT_OOM, fd);
        let n = sys(
            libc::SYS_write,
            [fd as usize, adj.as_ptr() as usize, adj.len(), 0, 0, 0],
        );
        at(Step::Limits, WHAT_OOM, n);
        sys(libc::SYS_close, [fd as usize, 0, 0, 0, 0, 0]);
    }
    if let Some(mask) = work.umask {
        sys(libc::SYS_umask, [mask as usize, 0, 0, 0, 0, 0]);
    }
    // The kernel's calls change this process only (libc's would signal
    // every thread of the daemon to change them all).
    if let Some(groups) = &work.groups {
        let ret = sys(
            SYS_SETGROUPS,
            [groups.len(), groups.as_ptr() as usize, 0, 0, 0, 0],
        );
        at(Step::Identity, WHAT_GROUPS, ret);
    }
    if let Some(gid) = work.gid {
        at(
            Step::Identity,
            WHAT_GID,
            sys(SYS_SETGID, [gid as usize, 0, 0, 0, 0, 0]),
        );
    }
    if let Some(uid) = work.uid {
        at(
            Step::Identity,
            WHAT_UID,
            sys(SYS_SETUID, [uid as usize, 0, 0, 0, 0, 0]),
        );
    }
}

/// Sets this process's limit of `resource` to [soft, hard] (prlimit64).
///
/// # Safety
/// A raw system call reading `limit`.
unsafe fn prlimit(resource: c_int, limit: &[u64; 2]) -> isize {
    sys(
        libc::SYS_prlimit64,
        [0, resource as usize, limit.as_ptr() as usize, 0, 0, 0],
    )
}

// The 32-bit ids' calls: on arm and x86 the plain ones take 16-bit ids.
#[cfg(not(any(target_arch = "arm", target_arch = "x86")))]
use libc::{
    SYS_fchown as SYS_FCHOWN, SYS_setgid as SYS_SETGID, SYS_setgroups as SYS_SETGROUPS,
    SYS_setuid as SYS_SETUID,
};
#[cfg(any(target_arch = "arm", target_arch = "x86"))]
use libc::{
    SYS_fchown32 as SYS_FCHOWN, SYS_setgid32 as SYS_SETGID, SYS_setgroups32 as SYS_SETGROUPS,
    SYS_setuid32 as SYS_SETUID,
};

/// `dup2(old, new)` as dup3, which every architecture has (a no-op when
/// they are the same descriptor, as dup2 is).
///
/// # Safety
/// A raw system call on descriptors.
unsafe fn dup_to(old: RawFd, new: RawFd) -> isize {
    if old == new {
        return new as isize;
    }
    sys(libc::SYS_dup3, [old as usize, new as usize, 0, 0, 0, 0])
}

/// Whether [`sys`] is a raw system call here (else the child is a vfork
/// and uses libc's `syscall`, which is safe while the daemon waits).
const RAW_SYSCALLS: bool = cfg!(target_arch = "x86_64");

/// One system call; returns the kernel's result (`-errno` on failure).
///
/// # Safety
/// The caller passes arguments valid for system call `n`.
#[cfg(target_arch = "x86_64")]
unsafe fn sys(n: c_long, a: [usize; 6]) -> isize {
    let ret: isize;
    // SAFETY (of the asm): the x86_64 Linux system call convention; the
    // kernel clobbers rcx and r11 only, and uses no user stack.
    std::arch::asm!(
        "syscall",
        inlateout("rax") n as isize => ret,
        in("rdi") a[0],
        in("rsi") a[1],
        in("rdx") a[2],
        in("r10") a[3],
        in("r8") a[4],
        in("r9") a[5],
        lateout("rcx") _,
        lateout("r11") _,
        options(nostack),
    );
    ret
}

/// One system call through libc (the child is a vfork here: the daemon is
/// suspended, so `errno` is free to use); returns `-errno` on failure.
///
/// # Safety
/// The caller passes arguments valid for system call `n`.
#[cfg(not(target_arch = "x86_64"))]
unsafe fn sys(n: c_long, a: [usize; 6]) -> isize {
    let ret = libc::syscall(n, a[0], a[1], a[2], a[3], a[4], a[5]);
    if ret < 0 {
        -(io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EIO) as isize)
    } else {
        ret as isize
    }
}

/// Sets every signal in `mask` (from [`signals_to_reset`]) to its default
/// disposition, by raw system calls only: for a child between its clone or
/// fork and its exec, whichever way it was made (never the daemon: it
/// would lose its own handlers). Inlined into the clone's child, so it
/// runs on that child's small stack (`sys` adds one small frame at most).
/// Signal 64 (SIGRTMAX) is outside the mask and left as it is.
#[inline(always)]
pub(super) fn reset_signals(mask: u64) {
    // The kernel's struct sigaction with SIG_DFL, no flags, empty mask (the
    // same bytes on every architecture: handler, flags, restorer, mask).
    let dfl = [0usize; 4];
    for sig in 1..64 {
        if mask & (1 << sig) != 0 {
            // SAFETY: sets a disposition from a struct of ours that the
            // call only reads; a failure (none expected) leaves it as it was.
            unsafe {
                sys(
                    libc::SYS_rt_sigaction,
                    [sig, dfl.as_ptr() as usize, 0, 8, 0, 0],
                );
            }
        }
    }
}

/// The signals to reset in a child (see [`Plan::reset`]): every one whose
/// disposition in the daemon is not the default, handled or ignored (an
/// ignore the daemon inherited would otherwise survive the exec), so a
/// service starts with every disposition at its default, as under systemd.
/// Asked of the kernel directly: libc hides the signals it keeps for itself.
pub fn signals_to_reset() -> u64 {
    let mut mask = 0u64;
    for sig in 1..64usize {
        if sig == libc::SIGKILL as usize || sig == libc::SIGSTOP as usize {
            continue;
        }
        let mut old = [0usize; 4];
        // SAFETY: reads the kernel's struct sigaction for `sig` into a
        // buffer of ours large enough for it (handler, flags, restorer,
        // mask), changing nothing.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                sig,
                std::ptr::null::<c_void>(),
                old.as_mut_ptr(),
                8usize,
            )
        };
        // The handler comes first: 0 is SIG_DFL.
        if ret == 0 && old[0] != 0 {
            mask |= 1 << sig;
        }
    }
    mask
}
