//! Processes: spawning a service in its own session, signalling process
//! groups, reaping every child. The only module that creates or signals
//! processes (and the only home of `unsafe`).

use std::collections::HashMap;
use std::ffi::{CStr, CString, OsStr};
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

use nix::errno::Errno;
use nix::sys::resource::{getrlimit, setrlimit, Resource};
use nix::sys::signal::{killpg, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{Gid, Group, Pid, Uid, User};

use crate::daemon::service::ExitKind;
use crate::paths::DEFAULT_PATH;
use crate::procfs;
use crate::unit::Limits;

/// Who a service runs as, resolved before forking (the child may not allocate).
#[derive(Debug, Clone)]
pub struct Identity {
    uid: Uid,
    gid: Gid,
    groups: Vec<Gid>,
    name: String,
    home: std::path::PathBuf,
}

/// Resolves `User=`: a clear error when it cannot be honoured.
/// A number is a uid, as in systemd: the user of that uid when the user
/// database has one, else that uid with the same number as its group, no
/// supplementary groups, `USER`/`LOGNAME` the number and `HOME` `/`.
pub fn resolve_user(name: &str) -> Result<Option<Identity>, String> {
    let numeric = name.parse::<u32>().ok().map(Uid::from_raw);
    let found = match numeric {
        Some(uid) => User::from_uid(uid),
        None => User::from_name(name),
    };
    let user = match (found, numeric) {
        (Ok(Some(u)), _) => u,
        (Ok(None), None) => return Err(format!("User={name}: no such user")),
        (Ok(None), Some(uid)) => {
            if uid == Uid::effective() {
                return Ok(None);
            }
            if !Uid::effective().is_root() {
                return Err(format!(
                    "User={name} needs the daemon to run as root (it runs as uid {}); remove User= or run the daemon as root",
                    Uid::effective()
                ));
            }
            let gid = Gid::from_raw(uid.as_raw());
            return Ok(Some(Identity {
                uid,
                gid,
                groups: vec![gid],
                name: name.to_owned(),
                home: std::path::PathBuf::from("/"),
            }));
        }
        (Err(e), _) => return Err(format!("User={name}: cannot look the user up: {e}")),
    };
    let me = Uid::effective();
    if user.uid == me {
        // Already that user: nothing to switch.
        return Ok(None);
    }
    if !me.is_root() {
        return Err(format!(
            "User={name} needs the daemon to run as root (it runs as uid {me}); remove User= or run the daemon as root"
        ));
    }
    let cname =
        std::ffi::CString::new(user.name.as_str()).map_err(|_| format!("User={name}: bad name"))?;
    let groups = nix::unistd::getgrouplist(&cname, user.gid).unwrap_or_else(|_| vec![user.gid]);
    Ok(Some(Identity {
        uid: user.uid,
        gid: user.gid,
        groups,
        name: user.name,
        home: user.dir,
    }))
}

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
    /// so moving one into place never overwrites another. When there are
    /// any, the program is started through [`listen_shim`], which sets
    /// `LISTEN_PID` to its own pid and execs the program in place.
    pub fds: &'a [RawFd],
}

/// What the child does before exec for a unit's limits and identity,
/// resolved and checked in the daemon before the fork (the child may not
/// allocate, and a value the daemon may not set fails the start here, with
/// the reason).
#[derive(Debug, Default)]
struct ChildSetup {
    rlimits: Vec<(Resource, u64, u64)>,
    nice: Option<i32>,
    oom_score_adj: Option<Vec<u8>>,
    umask: Option<u32>,
    /// Group= (overrides User's primary group).
    gid: Option<Gid>,
    /// SupplementaryGroups= (added to User's groups).
    groups: Vec<Gid>,
}

/// A group by name or number.
fn resolve_group(key: &str, name: &str) -> Result<Gid, String> {
    if let Ok(n) = name.parse::<u32>() {
        return Ok(Gid::from_raw(n));
    }
    match Group::from_name(name) {
        Ok(Some(g)) => Ok(g.gid),
        Ok(None) => Err(format!("{key}={name}: no such group")),
        Err(e) => Err(format!("{key}={name}: cannot look the group up: {e}")),
    }
}

/// Resolves and checks a unit's limits and identity against what the
/// daemon may set.
fn child_setup(limits: &Limits, identity: Option<&Identity>) -> Result<ChildSetup, String> {
    let root = Uid::effective().is_root();
    let mut setup = ChildSetup::default();
    for r in &limits.rlimits {
        let resource = r.resource();
        if !root {
            let (_, hard) = getrlimit(resource)
                .map_err(|e| format!("{}: cannot read the daemon's limit: {e}", r.name()))?;
            if r.hard > hard {
                let show = |n: u64| {
                    if n == crate::unit::RLIM_INFINITY {
                        "infinity".to_owned()
                    } else {
                        n.to_string()
                    }
                };
                return Err(format!(
                    "{}: hard limit {} is above the daemon's {}, which only root may raise; lower it or run the daemon as root",
                    r.name(),
                    show(r.hard),
                    show(hard)
                ));
            }
        }
        if resource == Resource::RLIMIT_NOFILE {
            let nr_open = std::fs::read_to_string("/proc/sys/fs/nr_open")
                .ok()
                .and_then(|t| t.trim().parse::<u64>().ok());
            if let Some(max) = nr_open.filter(|&max| r.hard > max) {
                return Err(format!(
                    "LimitNOFILE: hard limit {} is above the kernel's maximum {max} (fs.nr_open); lower it",
                    if r.hard == crate::unit::RLIM_INFINITY { "infinity".to_owned() } else { r.hard.to_string() }
                ));
            }
        }
        setup.rlimits.push((resource, r.soft, r.hard));
    }
    if let Some(nice) = limits.nice {
        if !root {
            // SAFETY: getpriority only reads the daemon's own nice value.
            let current = unsafe { nix::libc::getpriority(nix::libc::PRIO_PROCESS as _, 0) };
            let ceiling = getrlimit(Resource::RLIMIT_NICE).map_or(0, |(soft, _)| soft);
            let allowed = nice >= current || u64::try_from(20 - nice).is_ok_and(|n| n <= ceiling);
            if !allowed {
                return Err(format!(
                    "Nice={nice} is below the daemon's nice value {current}, which only root may do; raise it or run the daemon as root"
                ));
            }
        }
        setup.nice = Some(nice);
    }
    if let Some(adj) = limits.oom_score_adjust {
        if !root && adj < 0 {
            return Err(format!(
                "OOMScoreAdjust={adj}: a negative value needs root; use 0 or more, or run the daemon as root"
            ));
        }
        setup.oom_score_adj = Some(adj.to_string().into_bytes());
    }
    setup.umask = limits.umask;
    if let Some(name) = &limits.group {
        let gid = resolve_group("Group", name)?;
        let own = identity.is_none() && gid == Gid::effective();
        if !root && !own {
            return Err(format!(
                "Group={name} needs the daemon to run as root (it runs as gid {}); remove Group= or run the daemon as root",
                Gid::effective()
            ));
        }
        if !own {
            setup.gid = Some(gid);
        }
    }
    for name in &limits.supplementary_groups {
        let gid = resolve_group("SupplementaryGroups", name)?;
        if !root {
            return Err(format!(
                "SupplementaryGroups={name} needs the daemon to run as root; remove it or run the daemon as root"
            ));
        }
        setup.groups.push(gid);
    }
    Ok(setup)
}

/// The child's part of [`ChildSetup`], after setsid and before the user
/// switch: only system calls on data prepared before the fork.
fn apply_in_child(setup: &ChildSetup) -> io::Result<()> {
    use nix::libc;
    for &(resource, soft, hard) in &setup.rlimits {
        setrlimit(resource, soft, hard).map_err(io::Error::from)?;
    }
    if let Some(nice) = setup.nice {
        // SAFETY: setpriority changes only this (child) process.
        if unsafe { libc::setpriority(libc::PRIO_PROCESS as _, 0, nice) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    if let Some(adj) = &setup.oom_score_adj {
        // SAFETY: open/write/close on a path and a buffer that outlive the
        // calls; the descriptor is closed on every path.
        unsafe {
            let fd = libc::open(
                c"/proc/self/oom_score_adj".as_ptr(),
                libc::O_WRONLY | libc::O_CLOEXEC,
            );
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            let n = libc::write(fd, adj.as_ptr().cast(), adj.len());
            let err = io::Error::last_os_error();
            libc::close(fd);
            if n < 0 {
                return Err(err);
            }
        }
    }
    if let Some(mask) = setup.umask {
        // SAFETY: umask only sets this process's file mode mask.
        unsafe {
            libc::umask(mask as libc::mode_t);
        }
    }
    Ok(())
}

/// The argument that makes `diakonos` the exec shim of [`listen_shim`].
pub const LISTEN_SHIM: &str = "__listen-shim";

/// `diakonos __listen-shim PROGRAM ARGV0 ARGS...`: sets `LISTEN_PID` to
/// this process's pid (which the program keeps: exec does not change it)
/// and execs PROGRAM (looked up on PATH when it has no `/`) with `argv[0]`
/// ARGV0. posix_spawn cannot set a variable to the child's own pid, and a
/// fork would lose its cheapness; one extra exec of this static binary is
/// the price, paid only by units with `[socket]`. Never returns.
pub fn listen_shim(mut args: impl Iterator<Item = std::ffi::OsString>) -> std::process::ExitCode {
    let (Some(program), Some(argv0)) = (args.next(), args.next()) else {
        eprintln!("diakonos: {LISTEN_SHIM} needs PROGRAM ARGV0 [ARGS...]; it is run by the daemon, not by hand");
        return std::process::ExitCode::from(2);
    };
    let err = Command::new(&program)
        .arg0(&argv0)
        .args(args)
        .env("LISTEN_PID", std::process::id().to_string())
        .exec();
    eprintln!(
        "diakonos: cannot execute {}: {err}",
        Path::new(&program).display()
    );
    std::process::ExitCode::from(127)
}

/// Opens a service log for appending (created 0640 if missing).
pub fn open_log(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o640)
        .open(path)
}

/// A started process. In the common case (no identity, limits or container
/// stdio) the daemon does not wait for the child's exec: `exec` is the
/// outcome still to come ([`PendingExec`]); else the exec already happened.
#[derive(Debug)]
pub struct Spawned {
    pub pid: Pid,
    pub exec: Option<PendingExec>,
}

impl Spawned {
    /// Waits for the exec (if it is still under way): the pid once it ran,
    /// else why it could not (the child has exited with 127 by then).
    pub fn wait(self) -> Result<Pid, SpawnError> {
        match self.exec {
            Some(exec) => exec.wait().map(|()| self.pid),
            None => Ok(self.pid),
        }
    }
}

/// Starts `spec.argv` in a new session (so its own process group), stdin
/// from /dev/null, stdout and stderr appended to the log file. Errors found
/// before the fork are returned here; in the common case the exec's own
/// outcome comes later, through [`Spawned::exec`].
pub fn spawn(spec: &SpawnSpec<'_>, cache: &mut SpawnCache) -> Result<Spawned, SpawnError> {
    let Some((program, args)) = spec.argv.split_first() else {
        return Err(SpawnError::EmptyCommand);
    };
    let identity = match spec.user {
        Some(name) => resolve_user(name).map_err(SpawnError::User)?,
        None => None,
    };
    let log_error = |e: io::Error| SpawnError::Log {
        path: spec.log.to_path_buf(),
        error: e.to_string(),
    };
    let log = if spec.inherit_stdio {
        None
    } else {
        Some(open_log(spec.log).map_err(log_error)?)
    };
    if let (Some(id), Some(_)) = (&identity, &log) {
        // The service writes its own log, so it must own it (best effort).
        let _ = nix::unistd::chown(spec.log, Some(id.uid), Some(id.gid));
    }
    let setup = if spec.limits.needs_child_work() {
        Some(child_setup(spec.limits, identity.as_ref()).map_err(SpawnError::Limits)?)
    } else {
        None
    };

    if let Some(log) = log
        .as_ref()
        .filter(|l| identity.is_none() && setup.is_none() && l.as_raw_fd() > 2)
    {
        // The common case: a plain fork whose exec the daemon does not wait
        // for (it starts the next service while the kernel execs this one);
        // the outcome comes through the child's error pipe.
        return fork_service(program, args, spec, log, cache)
            .map_err(|e| describe_spawn_error(program, spec.cwd, &e));
    }
    let (out, err) = match log {
        Some(log) => {
            let log2 = log.try_clone().map_err(log_error)?;
            (Stdio::from(log), Stdio::from(log2))
        }
        None => (Stdio::inherit(), Stdio::inherit()),
    };
    let mut cmd = if spec.fds.is_empty() {
        Command::new(program)
    } else {
        let mut shim = Command::new("/proc/self/exe");
        shim.args([LISTEN_SHIM, program, program]);
        shim
    };
    cmd.args(args)
        .current_dir(spec.cwd)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err);
    if std::env::var_os("PATH").is_none() {
        cmd.env("PATH", DEFAULT_PATH);
    }
    if let Some(id) = &identity {
        cmd.env("USER", &id.name)
            .env("LOGNAME", &id.name)
            .env("HOME", &id.home);
    }
    for (k, v) in spec.env.iter().chain(spec.extra_env) {
        cmd.env(k, v);
    }
    let mut identity_for_child = identity.clone();
    let setup = setup.unwrap_or_default();
    if let Some(id) = &mut identity_for_child {
        if let Some(gid) = setup.gid {
            id.gid = gid;
            if !id.groups.contains(&gid) {
                id.groups.push(gid);
            }
        }
        for gid in &setup.groups {
            if !id.groups.contains(gid) {
                id.groups.push(*gid);
            }
        }
    }
    let groups_only =
        (identity_for_child.is_none() && !setup.groups.is_empty()).then(|| setup.groups.clone());
    let gid_only = setup.gid.filter(|_| identity_for_child.is_none());
    let has_child_setup = spec.limits.needs_child_work();
    let fds = spec.fds.to_vec();
    // SAFETY: the closure runs in the forked child before exec. The daemon is
    // single-threaded, so no other thread can hold a lock the child would
    // need, and the closure only makes async-signal-safe system calls
    // (setsid, dup2, setrlimit, setpriority, open/write/close, umask,
    // setgroups, setgid, setuid) on data prepared before the fork.
    unsafe {
        cmd.pre_exec(move || {
            nix::unistd::setsid().map_err(io::Error::from)?;
            for (i, fd) in fds.iter().enumerate() {
                // dup2 clears close-on-exec on the new descriptor.
                if nix::libc::dup2(*fd, 3 + i as RawFd) < 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            apply_in_child(&setup)?;
            if let Some(groups) = &groups_only {
                nix::unistd::setgroups(groups).map_err(io::Error::from)?;
            }
            if let Some(gid) = gid_only {
                nix::unistd::setgid(gid).map_err(io::Error::from)?;
            }
            if let Some(id) = &identity_for_child {
                nix::unistd::setgroups(&id.groups).map_err(io::Error::from)?;
                nix::unistd::setgid(id.gid).map_err(io::Error::from)?;
                nix::unistd::setuid(id.uid).map_err(io::Error::from)?;
            }
            Ok(())
        });
    }
    match cmd.spawn() {
        // The Child handle is dropped without waiting: `reap_all` collects
        // every exit through SIGCHLD. std waited for the exec already.
        Ok(child) => Ok(Spawned {
            pid: Pid::from_raw(child.id() as i32),
            exec: None,
        }),
        Err(e) if has_child_setup && e.kind() == io::ErrorKind::PermissionDenied => {
            Err(SpawnError::Limits(format!(
                "cannot apply the unit's limits or identity: {e}; check Limit*, Nice, OOMScoreAdjust, Group and SupplementaryGroups"
            )))
        }
        Err(e) => Err(describe_spawn_error(program, spec.cwd, &e)),
    }
}

/// Spawn work that is the same every time, done once. The daemon's own
/// environment never changes while it runs, so it is turned into `K=V` C
/// strings on the first spawn and shared by every service. Where a program
/// was found on PATH is remembered per (program, PATH, working directory):
/// a thousand units running `sleep` look it up once. [`SpawnCache::forget_programs`]
/// (on reload) starts the lookups afresh, and a remembered path that no
/// longer works is looked up again before a spawn is reported as failed.
#[derive(Default)]
pub struct SpawnCache {
    /// The daemon's environment, PATH defaulted: (length of the name, `K=V`).
    base_env: Option<Vec<(usize, CString)>>,
    /// program -> [(PATH, working directory, where it was found, every
    /// place on that PATH it could be: tried by the child, in order, when
    /// the remembered one no longer works)].
    programs: HashMap<String, Vec<Found>>,
}

type Found = (Vec<u8>, std::path::PathBuf, CString, Vec<CString>);

impl SpawnCache {
    /// Forgets where programs were found (a reload may mean new programs).
    pub fn forget_programs(&mut self) {
        self.programs.clear();
    }

    fn base_env(&mut self) -> io::Result<&[(usize, CString)]> {
        if self.base_env.is_none() {
            let mut env = Vec::new();
            let mut has_path = false;
            for (k, v) in std::env::vars_os() {
                has_path |= k == "PATH";
                env.push(env_entry(k.as_bytes(), v.as_bytes())?);
            }
            if !has_path {
                env.push(env_entry(b"PATH", DEFAULT_PATH.as_bytes())?);
            }
            self.base_env = Some(env);
        }
        Ok(self.base_env.as_deref().unwrap_or_default())
    }

    /// Where `program` is, found (or remembered) in the service's PATH.
    fn resolve(&mut self, program: &str, path: &[u8], cwd: &Path) -> io::Result<CString> {
        if program.contains('/') {
            return cstring(cwd.join(program).into_os_string().into_vec());
        }
        if let Some(found) = self.remembered(program, path, cwd) {
            return Ok(found.0.clone());
        }
        let found = cstring(
            resolve_program(program, path, cwd)?
                .into_os_string()
                .into_vec(),
        )?;
        let candidates = std::env::split_paths(OsStr::from_bytes(path))
            .map(|dir| cstring(cwd.join(dir).join(program).into_os_string().into_vec()))
            .collect::<io::Result<_>>()?;
        self.programs.entry(program.to_owned()).or_default().push((
            path.to_vec(),
            cwd.to_path_buf(),
            found.clone(),
            candidates,
        ));
        Ok(found)
    }

    /// Where `program` was found before on this PATH from this directory,
    /// and every place it could be there.
    fn remembered(&self, program: &str, path: &[u8], cwd: &Path) -> Option<(&CString, &[CString])> {
        self.programs
            .get(program)?
            .iter()
            .find(|(p, dir, _, _)| p == path && dir == cwd)
            .map(|(_, _, found, all)| (found, all.as_slice()))
    }
}

/// `K=V` as a C string, with the length of `K`.
fn env_entry(k: &[u8], v: &[u8]) -> io::Result<(usize, CString)> {
    let mut kv = Vec::with_capacity(k.len() + 1 + v.len());
    kv.extend_from_slice(k);
    kv.push(b'=');
    kv.extend_from_slice(v);
    Ok((k.len(), cstring(kv)?))
}

/// The environment a service gets: the daemon's, PATH defaulted, then the
/// unit's Environment and the daemon's own additions, later entries winning.
/// The daemon's part is borrowed from `base`; `own` holds the rest.
fn service_envp<'e>(
    base: &'e [(usize, CString)],
    spec: &SpawnSpec<'_>,
    own: &'e mut Vec<CString>,
) -> io::Result<Vec<&'e CStr>> {
    let overrides: Vec<&(String, String)> = spec.env.iter().chain(spec.extra_env).collect();
    let overridden = |name: &[u8]| overrides.iter().any(|(k, _)| k.as_bytes() == name);
    for (i, (k, v)) in overrides.iter().enumerate() {
        // A later entry with the same name wins.
        if !overrides[i + 1..].iter().any(|(later, _)| later == k) {
            own.push(env_entry(k.as_bytes(), v.as_bytes())?.1);
        }
    }
    let mut envp: Vec<&CStr> = base
        .iter()
        .filter(|(len, kv)| !overridden(&kv.as_bytes()[..*len]))
        .map(|(_, kv)| kv.as_c_str())
        .collect();
    envp.extend(own.iter().map(CString::as_c_str));
    Ok(envp)
}

/// The PATH a service runs with: its own, else the daemon's (defaulted).
fn service_path<'p>(base: &'p [(usize, CString)], spec: &'p SpawnSpec<'_>) -> &'p [u8] {
    if let Some((_, v)) = spec
        .env
        .iter()
        .chain(spec.extra_env)
        .rev()
        .find(|(k, _)| k == "PATH")
    {
        return v.as_bytes();
    }
    base.iter()
        .find(|(len, kv)| &kv.as_bytes()[..*len] == b"PATH")
        .map_or(DEFAULT_PATH.as_bytes(), |(len, kv)| {
            &kv.as_bytes()[len + 1..]
        })
}

/// Finds `program` the way a shell would, but in the *service's* PATH (the
/// one it will run with), relative paths against its working directory.
fn resolve_program(program: &str, path: &[u8], cwd: &Path) -> io::Result<std::path::PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    for dir in std::env::split_paths(OsStr::from_bytes(path)) {
        let candidate = cwd.join(dir).join(program);
        if let Ok(meta) = std::fs::metadata(&candidate) {
            if meta.is_file() && meta.permissions().mode() & 0o111 != 0 {
                return Ok(candidate);
            }
        }
    }
    Err(io::Error::from(io::ErrorKind::NotFound))
}

fn cstring(bytes: Vec<u8>) -> io::Result<CString> {
    CString::new(bytes).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "NUL byte in a command or variable",
        )
    })
}

/// The outcome of a child's exec, still to come: the read end of its
/// close-on-exec error pipe. End of file means the exec happened; four
/// bytes are the errno of what failed (the child then exits with 127).
#[derive(Debug)]
pub struct PendingExec {
    fd: OwnedFd,
    program: String,
    cwd: std::path::PathBuf,
}

impl PendingExec {
    /// The pipe, for the event loop to wait on (readable at the outcome).
    pub fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// The outcome if it is there (never blocks).
    pub fn poll(&self) -> Option<Result<(), SpawnError>> {
        let mut buf = [0u8; 4];
        loop {
            // SAFETY: read into a buffer we own, of its length.
            let n =
                unsafe { nix::libc::read(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            return match n {
                0 => Some(Ok(())),
                4 => {
                    let e = io::Error::from_raw_os_error(i32::from_ne_bytes(buf));
                    Some(Err(describe_spawn_error(&self.program, &self.cwd, &e)))
                }
                n if n < 0 => match io::Error::last_os_error() {
                    e if e.kind() == io::ErrorKind::Interrupted => continue,
                    e if e.kind() == io::ErrorKind::WouldBlock => None,
                    e => Some(Err(SpawnError::Exec {
                        program: self.program.clone(),
                        error: format!("cannot read the outcome of its exec: {e}"),
                    })),
                },
                // A short write: the child died mid-report.
                _ => Some(Err(SpawnError::Exec {
                    program: self.program.clone(),
                    error: "its exec failed (the report was cut short)".to_owned(),
                })),
            };
        }
    }

    /// Waits for the outcome (a moment: the child is exec'ing, or dead).
    pub fn wait(self) -> Result<(), SpawnError> {
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

/// What the child of [`fork_service`] needs, prepared before the fork (the
/// child only makes system calls on it).
struct ChildPlan<'a> {
    path: &'a CStr,
    /// Where else the program may be, tried in order when `path` fails
    /// (a remembered place it moved away from).
    fallbacks: &'a [CString],
    argv: &'a [*const nix::libc::c_char],
    envp: &'a [*const nix::libc::c_char],
    cwd: &'a CStr,
    log: RawFd,
    fds: &'a [RawFd],
    report: RawFd,
}

/// Forks a service: a new session, stdin from /dev/null, stdout and stderr
/// on the log, the working directory changed in the child, an empty signal
/// mask and default dispositions for the signals the daemon handles and
/// for SIGPIPE (which it ignores; ignored signals survive exec). Returns at
/// once: the exec's outcome comes through the returned [`PendingExec`].
/// A plain fork rather than posix_spawn's vfork, whose caller sleeps until
/// the child has exec'd: starting a thousand services waited for each
/// child in turn, while the other core sat idle.
fn fork_service(
    program: &str,
    args: &[String],
    spec: &SpawnSpec<'_>,
    log: &File,
    cache: &mut SpawnCache,
) -> io::Result<Spawned> {
    let argv: Vec<CString> = std::iter::once(program)
        .chain(args.iter().map(String::as_str))
        .map(|a| cstring(a.as_bytes().to_vec()))
        .collect::<io::Result<_>>()?;
    let cwd = cstring(spec.cwd.as_os_str().as_bytes().to_vec())?;
    let path_var = service_path(cache.base_env()?, spec).to_vec();
    let remembered =
        !program.contains('/') && cache.remembered(program, &path_var, spec.cwd).is_some();
    let path = cache.resolve(program, &path_var, spec.cwd)?;
    let fallbacks: &[CString] = match remembered {
        true => cache
            .remembered(program, &path_var, spec.cwd)
            .map_or(&[], |(_, all)| all),
        false => &[],
    };
    let mut own = Vec::new();
    let envp = service_envp(
        cache.base_env.as_deref().unwrap_or_default(),
        spec,
        &mut own,
    )?;
    let shim_argv: Vec<CString>;
    let (exe, argv): (&CStr, &[CString]) = if spec.fds.is_empty() {
        (&path, &argv)
    } else {
        shim_argv = [
            c"diakonos".to_owned(),
            cstring(LISTEN_SHIM.into())?,
            path.clone(),
        ]
        .into_iter()
        .chain(argv.iter().cloned())
        .collect();
        (c"/proc/self/exe", &shim_argv)
    };
    let fallbacks = if spec.fds.is_empty() { fallbacks } else { &[] };
    let argv_ptrs: Vec<*const nix::libc::c_char> = argv
        .iter()
        .map(|a| a.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect();
    let envp_ptrs: Vec<*const nix::libc::c_char> = envp
        .iter()
        .map(|a| a.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect();
    let (read, write) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC | nix::fcntl::OFlag::O_NONBLOCK)
            .map_err(io::Error::from)?;
    let plan = ChildPlan {
        path: exe,
        fallbacks,
        argv: &argv_ptrs,
        envp: &envp_ptrs,
        cwd: &cwd,
        log: log.as_raw_fd(),
        fds: spec.fds,
        report: write.as_raw_fd(),
    };
    use nix::libc;
    // SAFETY: every signal is blocked around the fork, so no handler of the
    // daemon runs in the child before it reset the dispositions; the old
    // mask is restored in the parent at once. The daemon is single-threaded,
    // so the child inherits no lock held by another thread, and it only
    // makes system calls on `plan` (prepared above, its own copy) before it
    // execs or exits.
    let pid = unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::sigprocmask(libc::SIG_SETMASK, &all, &mut old);
        let pid = libc::fork();
        if pid == 0 {
            exec_child(&plan);
        }
        let err = io::Error::last_os_error();
        libc::sigprocmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
        if pid < 0 {
            return Err(err);
        }
        pid
    };
    drop(write);
    Ok(Spawned {
        pid: Pid::from_raw(pid),
        exec: Some(PendingExec {
            fd: read,
            program: program.to_owned(),
            cwd: spec.cwd.to_path_buf(),
        }),
    })
}

/// The child of [`fork_service`]: sets up and execs; on failure writes the
/// errno to the report pipe and exits with 127. Never returns.
///
/// # Safety
/// Only in the child of a fork of the single-threaded daemon, with every
/// signal blocked; `plan`'s pointers are valid (the child's copy).
unsafe fn exec_child(plan: &ChildPlan<'_>) -> ! {
    use nix::libc;
    let fail = |errno: i32| -> ! {
        let bytes = errno.to_ne_bytes();
        libc::write(plan.report, bytes.as_ptr().cast(), bytes.len());
        libc::_exit(127)
    };
    let errno = || {
        io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EIO)
    };
    // Handlers are the daemon's (they would write to its signal pipe):
    // back to default before anything is unblocked, as is SIGPIPE.
    for sig in 1..32 {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        let mut old: libc::sigaction = std::mem::zeroed();
        if libc::sigaction(sig, std::ptr::null(), &mut old) != 0 {
            continue;
        }
        if sig == libc::SIGPIPE
            || (old.sa_sigaction != libc::SIG_IGN && old.sa_sigaction != libc::SIG_DFL)
        {
            let mut dfl: libc::sigaction = std::mem::zeroed();
            dfl.sa_sigaction = libc::SIG_DFL;
            libc::sigaction(sig, &dfl, std::ptr::null_mut());
        }
    }
    if libc::setsid() < 0 {
        fail(errno());
    }
    let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY);
    if null < 0 {
        fail(errno());
    }
    if null != 0 {
        if libc::dup2(null, 0) < 0 {
            fail(errno());
        }
        libc::close(null);
    }
    // dup2 clears close-on-exec on the new descriptor.
    if libc::dup2(plan.log, 1) < 0 || libc::dup2(plan.log, 2) < 0 {
        fail(errno());
    }
    for (i, fd) in plan.fds.iter().enumerate() {
        if libc::dup2(*fd, 3 + i as RawFd) < 0 {
            fail(errno());
        }
    }
    if libc::chdir(plan.cwd.as_ptr()) < 0 {
        fail(errno());
    }
    let mut empty: libc::sigset_t = std::mem::zeroed();
    libc::sigemptyset(&mut empty);
    libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
    libc::execve(plan.path.as_ptr(), plan.argv.as_ptr(), plan.envp.as_ptr());
    let first = errno();
    if plan.fallbacks.is_empty()
        || !matches!(
            first,
            libc::ENOENT | libc::EACCES | libc::ENOEXEC | libc::ENOTDIR
        )
    {
        fail(first);
    }
    // The remembered place no longer works: the program is looked for
    // again along PATH, as when it was first found.
    for candidate in plan.fallbacks {
        libc::execve(candidate.as_ptr(), plan.argv.as_ptr(), plan.envp.as_ptr());
        match errno() {
            libc::ENOENT | libc::EACCES | libc::ENOTDIR => continue,
            other => fail(other),
        }
    }
    fail(libc::ENOENT)
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
    /// `User=` cannot be honoured (the text says why and what to do).
    User(String),
    /// The service's log cannot be opened.
    Log {
        path: std::path::PathBuf,
        error: String,
    },
    /// `WorkingDirectory` does not exist.
    NoWorkingDirectory(std::path::PathBuf),
    /// The program is not there (`in_path`: it was looked up on PATH).
    NotFound {
        program: String,
        in_path: bool,
    },
    PermissionDenied {
        program: String,
    },
    /// Any other failure to execute the program.
    Exec {
        program: String,
        error: String,
    },
    /// A limit, EnvironmentFile or identity setting cannot be applied (the
    /// text says why and what to do).
    Limits(String),
    /// A `[socket]` address cannot be bound (the text says why).
    Socket(String),
}

impl std::fmt::Display for SpawnError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SpawnError::EmptyCommand => write!(f, "empty command"),
            SpawnError::NoExecStop => write!(f, "no ExecStop"),
            SpawnError::User(why) => write!(f, "{why}"),
            SpawnError::Log { path, error } => {
                write!(f, "cannot open log {}: {error}", path.display())
            }
            SpawnError::NoWorkingDirectory(dir) => {
                write!(f, "WorkingDirectory {} does not exist", dir.display())
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
            SpawnError::Limits(why) => write!(f, "{why}"),
            SpawnError::Socket(why) => write!(f, "{why}"),
        }
    }
}

#[cfg(test)]
mod spawn_path_tests {
    use super::*;

    fn spec<'a>(env: &'a [(String, String)], extra: &'a [(String, String)]) -> SpawnSpec<'a> {
        SpawnSpec {
            argv: &[],
            cwd: Path::new("/"),
            env,
            user: None,
            log: Path::new("/dev/null"),
            extra_env: extra,
            limits: &NO_LIMITS,
            inherit_stdio: false,
            fds: &[],
        }
    }

    static NO_LIMITS: Limits = Limits {
        rlimits: Vec::new(),
        nice: None,
        oom_score_adjust: None,
        umask: None,
        group: None,
        supplementary_groups: Vec::new(),
        environment_files: Vec::new(),
        memory_max: None,
        memory_check: None,
    };

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn unit_variables_replace_the_daemons_and_the_last_one_wins() {
        // The daemon's HOME and PATH give way to the unit's; a name given
        // twice keeps its last value, once.
        let base = vec![
            env_entry(b"HOME", b"/root").unwrap(),
            env_entry(b"PATH", b"/bin").unwrap(),
            env_entry(b"LANG", b"C").unwrap(),
        ];
        let env = pairs(&[("PATH", "/opt/bin"), ("A", "1"), ("A", "2")]);
        let extra = pairs(&[("HOME", "/srv")]);
        let spec = spec(&env, &extra);
        let mut own = Vec::new();
        let envp: Vec<&str> = service_envp(&base, &spec, &mut own)
            .unwrap()
            .into_iter()
            .map(|c| c.to_str().unwrap())
            .collect();
        assert_eq!(envp, ["LANG=C", "PATH=/opt/bin", "A=2", "HOME=/srv"]);
        assert_eq!(service_path(&base, &spec), b"/opt/bin");
        assert_eq!(service_path(&base, &self::spec(&[], &[])), b"/bin");
    }

    #[test]
    fn the_boot_clock_tick_around_a_spawn_is_the_start_time_in_proc() {
        // When the tick before and after a spawn agree, /proc reports the
        // same start time (tried until a spawn falls inside one tick).
        for _ in 0..50 {
            let before = boot_clock_ticks().unwrap();
            let mut child = std::process::Command::new("sleep")
                .arg("5")
                .spawn()
                .unwrap();
            let after = boot_clock_ticks().unwrap();
            let proc = procfs::start_time(child.id() as i32);
            let _ = child.kill();
            let _ = child.wait();
            assert!(before <= after);
            if before == after {
                assert_eq!(proc, Some(before));
                return;
            }
        }
        panic!("no spawn fell inside one clock tick in 50 tries");
    }

    #[test]
    fn a_program_is_looked_up_once_per_path_and_directory() {
        // The second lookup is answered from memory, even after the file is
        // gone; forgetting looks again.
        let dir = std::env::temp_dir().join(format!("dk-spawn-cache-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let tool = dir.join("tool");
        std::fs::write(&tool, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&tool, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let path = dir.as_os_str().as_bytes();
        let mut cache = SpawnCache::default();
        let found = cache.resolve("tool", path, Path::new("/")).unwrap();
        assert_eq!(found.as_bytes(), tool.as_os_str().as_bytes());
        std::fs::remove_file(&tool).unwrap();
        assert_eq!(cache.resolve("tool", path, Path::new("/")).unwrap(), found);
        // Another PATH is another lookup.
        assert!(cache
            .resolve("tool", b"/nonexistent", Path::new("/"))
            .is_err());
        cache.forget_programs();
        assert!(cache.resolve("tool", path, Path::new("/")).is_err());
        // A path with a slash is taken as it is, against the directory.
        let rel = cache.resolve("./x", path, Path::new("/srv")).unwrap();
        assert_eq!(rel.as_bytes(), b"/srv/./x");
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// Sends `signal` to every process of the group; a group already gone is fine.
/// Never the daemon's own group, nor init's (a group read from a process
/// that left a service's session could be anything).
pub fn kill_group(pgid: Pid, signal: Signal) {
    if pgid.as_raw() <= 1 || pgid == nix::unistd::getpgrp() {
        log::warn!(
            "not sending {} to process group {pgid}: it is not a service's",
            signal.as_str()
        );
        return;
    }
    match killpg(pgid, signal) {
        Ok(()) | Err(Errno::ESRCH) => {}
        Err(e) => log::warn!(
            "cannot send {} to process group {pgid}: {e}",
            signal.as_str()
        ),
    }
}

/// Whether any process (zombies excepted once reaped) is left in the group.
pub fn group_alive(pgid: Pid) -> bool {
    !matches!(killpg(pgid, None), Err(Errno::ESRCH))
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

/// Marks every descriptor the daemon inherited (beyond stdio) close-on-exec,
/// so none of them reaches a service. Our own descriptors are opened that way.
pub fn cloexec_inherited_fds() {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return;
    };
    let fds: Vec<RawFd> = dir
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|&fd| fd > 2)
        .collect();
    for fd in fds {
        // SAFETY: fcntl(F_GETFD/F_SETFD) only reads and sets a flag of the
        // descriptor; on one that was closed meanwhile (the read_dir handle)
        // it fails with EBADF, which is harmless.
        unsafe {
            let flags = nix::libc::fcntl(fd, nix::libc::F_GETFD);
            if flags >= 0 {
                nix::libc::fcntl(fd, nix::libc::F_SETFD, flags | nix::libc::FD_CLOEXEC);
            }
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
) -> Option<Result<(Pid, Pid), String>> {
    let candidates = || main_pid_candidates(unit_name, pgid, known, other_groups);
    if let Some(path) = pid_file {
        match std::fs::read_to_string(path) {
            Ok(text) if !text.trim().is_empty() => {
                // The pid is the first line (postgres writes its data dir,
                // port and more below it; systemd reads the first line too).
                let first = text.lines().next().unwrap_or_default().trim();
                let found = match first.parse::<i32>() {
                    Err(_) => Err(format!(
                        "PIDFile {} holds `{}`, not a pid",
                        path.display(),
                        first.chars().take(60).collect::<String>()
                    )),
                    Ok(pid)
                        if pid <= 0
                            || nix::sys::signal::kill(Pid::from_raw(pid), None).is_err() =>
                    {
                        Err(format!(
                            "PIDFile {} names pid {pid}, which is not running",
                            path.display()
                        ))
                    }
                    Ok(pid) => {
                        let pid = Pid::from_raw(pid);
                        let group = nix::unistd::getpgid(Some(pid)).unwrap_or(pid);
                        Ok((pid, group))
                    }
                };
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
                0 => "no process was left after the start command exited; set PIDFile, or use Type = \"simple\" if it stays in the foreground".to_owned(),
                n => format!("{n} processes were left after the start command exited (they were stopped); set PIDFile"),
            }))
        }
    }
}

/// The processes a forking service's start command may have left: in its
/// group or children of ours (orphans come to the subreaper), not `known`
/// and not in `other_groups`; those tagged with this unit win over untagged
/// ones, and another unit's tree is never ours.
fn main_pid_candidates(
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

/// Kills what a failed forking start left, group and process.
fn kill_candidates(candidates: &[procfs::Stat]) {
    for p in candidates {
        kill_group(Pid::from_raw(p.pgrp), Signal::SIGKILL);
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
}

/// The (home, unit) a process is tagged with, from its environment (readable
/// for our own processes only).
fn process_tag(pid: i32) -> Option<(Vec<u8>, String)> {
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

/// Every session leader (each service is one) whose environment tags it as
/// belonging to `home`. Only our own processes' environments are readable,
/// which is exactly the set that can be ours.
pub fn find_tagged(home: &Path) -> Vec<Tagged> {
    let want_home = home.as_os_str().as_encoded_bytes();
    procfs::processes()
        .into_iter()
        .filter(|p| p.session == p.pid)
        .filter_map(|p| {
            let (tag_home, unit) = process_tag(p.pid)?;
            (tag_home == want_home).then(|| Tagged {
                unit,
                pid: Pid::from_raw(p.pid),
                start_time: p.start_time,
            })
        })
        .collect()
}

/// One look through `/proc` for processes of `home` tagged with one of
/// `units` (name, earliest start time) that are not `known` and not in
/// `other_groups`: what a service left outside its process group
/// (setsid). Per unit, the process groups they are in. The daemon's own
/// process and group never count (a daemon started from inside a service
/// carries that service's tag).
pub fn find_strays(
    home: &Path,
    units: &[(String, Option<u64>)],
    known: &[Pid],
    other_groups: &[Pid],
) -> Vec<Vec<Pid>> {
    let want_home = home.as_os_str().as_encoded_bytes();
    let me = std::process::id() as i32;
    let my_group = nix::unistd::getpgrp().as_raw();
    let earliest = units.iter().map(|(_, since)| since.unwrap_or(0)).min();
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
        let Some((tag_home, unit)) = process_tag(p.pid) else {
            continue;
        };
        if tag_home != want_home {
            continue;
        }
        let which = units
            .iter()
            .position(|(name, since)| *name == unit && p.start_time >= since.unwrap_or(0));
        if let Some(i) = which {
            let group = Pid::from_raw(p.pgrp);
            if !found[i].contains(&group) {
                found[i].push(group);
            }
        }
    }
    found
}

#[cfg(test)]
mod main_pid_scan_tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn a_resting_lone_candidate_counts_after_20ms() {
        // Seen alone and resting at 0 and again 20 ms later: found.
        let t0 = Instant::now();
        let mut scan = MainPidScan::new(t0);
        assert_eq!(scan.judge(Some((7, true)), t0), Verdict::Wait);
        assert_eq!(scan.judge(Some((7, true)), t0 + ms(10)), Verdict::Wait);
        assert_eq!(scan.judge(Some((7, true)), t0 + ms(20)), Verdict::Found);
    }

    #[test]
    fn a_running_lone_candidate_must_stay_alone_300ms() {
        // A lone process that keeps running may be the middle of a double
        // fork; a new candidate starts the clock again.
        let t0 = Instant::now();
        let mut scan = MainPidScan::new(t0);
        assert_eq!(scan.judge(Some((7, false)), t0), Verdict::Wait);
        assert_eq!(scan.judge(Some((7, false)), t0 + ms(200)), Verdict::Wait);
        assert_eq!(scan.judge(Some((8, false)), t0 + ms(250)), Verdict::Wait);
        assert_eq!(scan.judge(Some((8, false)), t0 + ms(500)), Verdict::Wait);
        assert_eq!(scan.judge(Some((8, false)), t0 + ms(550)), Verdict::Found);
    }

    #[test]
    fn no_lone_candidate_gives_up_after_one_second() {
        // None or several candidates never settle; the cap ends the search.
        let t0 = Instant::now();
        let mut scan = MainPidScan::new(t0);
        assert_eq!(scan.judge(None, t0 + ms(999)), Verdict::Wait);
        assert_eq!(scan.judge(Some((7, true)), t0 + ms(1000)), Verdict::GiveUp);
    }
}
