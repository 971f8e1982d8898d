//! The daemon: take the single-daemon lock, set up logging, the signal pipe
//! and the control socket, load the service directory, then hand over to the
//! event loop. (A client starts a detached daemon in `cli::client`.)

pub mod control;
mod drain;
pub mod driver;
pub mod event_loop;
pub mod handed;
pub mod logfile;
mod logger;
pub mod persist;
mod requests;
pub mod sd_notify;
pub mod service;
pub mod spawn;
mod startup;
pub mod supervisor;
pub mod system;
pub mod timers;

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};

use crate::error::Error;
use crate::paths::{self, Home};
use crate::unit;

/// What `diakonos daemon` needs to know.
pub struct DaemonOptions {
    pub home: Home,
    /// The directory the user named; None: the one the previous daemon of
    /// this home owned (from the state file), else `./services`.
    pub service_dir: Option<PathBuf>,
    /// `daemon --init` (or PID 1): the container entrypoint (SPEC §14).
    pub init: Option<InitOptions>,
    /// Keep this file current with `metrics` (SPEC §16).
    pub metrics_file: Option<PathBuf>,
}

/// `daemon --init [NAME...]`: a container's entrypoint (SPEC §14).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InitOptions {
    /// Units to start (besides the enabled ones).
    pub units: Vec<String>,
    /// `--exit-with UNIT`: exit with that unit's code once it ended.
    pub exit_with: Option<String>,
    /// `--exit-when never` (else all-done).
    pub never: bool,
    /// `--file-logs`: services write `HOME/logs/NAME.log` as usual, rather
    /// than the daemon's stdout/stderr.
    pub file_logs: bool,
}

/// Runs the daemon in the foreground until it is killed. Returns an error
/// (and starts nothing) when another daemon holds this home's lock.
pub fn run(opts: DaemonOptions) -> Result<(), Error> {
    let ready = take_ready_fd();
    let mut handed = handed::Handed::from_env();
    // Started by a hand-over (an upgrade): its state file is complete.
    let handed_over = !handed.is_empty();
    let mut kept = handed.raw_fds();
    kept.extend(ready.as_ref().map(std::os::fd::AsRawFd::as_raw_fd));
    spawn::close_inherited_fds(&kept);
    // A daemon started by a client inside a service inherits that unit's
    // tag; its other children (ExecStop, probes) must not carry it, or a
    // stop of that unit would take them for its escaped processes. Still
    // one thread here, so changing the environment races nothing.
    std::env::remove_var(spawn::TAG_UNIT);
    let home = opts.home;
    home.create()
        .map_err(|e| Error::failed(format!("cannot create {}: {e}", home.dir.display())))?;
    let (lock, new_lock) = take_lock(&home, &mut handed)?;
    // Nothing of this home can be running: no daemon made its lock file
    // before, and no service ever wrote a log (a deleted lock file alone
    // does not make a home new).
    let first_daemon = new_lock && dir_is_empty(&home.logs_dir());
    if opts.init.is_some() {
        init_logging_stderr();
    } else {
        init_logging(&home)?;
    }
    let (saved, warning) = persist::load_state(&home.state());
    let service_dir = opts
        .service_dir
        .or_else(|| saved.service_dir.clone())
        .unwrap_or_else(|| paths::absolute(Path::new("services")));
    log::info!(
        "diakonos {} daemon starting, pid {}, home {}, services in {}",
        env!("CARGO_PKG_VERSION"),
        std::process::id(),
        home.dir.display(),
        service_dir.display()
    );
    if let Some(w) = warning {
        log::warn!("{w}");
    }
    // Not holding any directory busy; every path we keep is absolute.
    let _ = std::env::set_current_dir("/");
    spawn::become_subreaper();
    spawn::raise_open_files_limit();

    let listener = bind_socket(&home.socket())?;
    if let Some(ready) = ready {
        // Clients can connect now; the one that started us stops waiting.
        let _ = std::os::unix::net::UnixStream::from(ready).write_all(b"!");
    }
    // Units the daemon before us ran keep their `[socket]` addresses: a
    // file added since that names one too is the one in error (as a reload
    // of that daemon would have had it), whatever the names' order.
    let holders: Vec<String> = saved.services.iter().map(|s| s.name.clone()).collect();
    let loaded = match unit::load_dir_keeping(&service_dir, &unit::hostname(), &holders) {
        Ok(loaded) => loaded,
        Err(e) => {
            log::warn!(
                "cannot read {}: {e}; starting with no units",
                service_dir.display()
            );
            unit::LoadedDir::default()
        }
    };
    let seed = u64::from(std::process::id()) ^ nanos_since_epoch();
    let sup = supervisor::Supervisor::new(loaded, service_dir, home.logs_dir(), seed);
    for w in &sup.warnings {
        log::warn!("{w}");
    }
    let control = control::Control::new(listener);
    let mut event_loop =
        event_loop::EventLoop::new(control, sup, home.clone(), opts.metrics_file, &mut handed)
            .map_err(|e| Error::failed(format!("cannot set up the event loop: {e}")))?;
    event_loop.lock_fd = Some(std::os::fd::AsRawFd::as_raw_fd(&*lock));
    if let Some(init) = &opts.init {
        event_loop.sys.inherit_stdio = !init.file_logs;
    }
    event_loop.restore(saved, first_daemon || handed_over, handed);
    let result = match opts.init {
        Some(init) => event_loop.run_init(init),
        None => event_loop.run().map(|()| 0).map_err(loop_failed),
    };
    control::Control::remove_socket(&home.socket());
    log::info!("daemon exiting");
    if event_loop.handed_over {
        // Not unlocked: the lock went to the next daemon with the `Bye`
        // (an flock belongs to the open file, whichever process holds it).
        std::mem::forget(lock);
    } else {
        // The lock goes with the process; clients wait for the pid to be gone.
        drop(lock);
    }
    let code = result?;
    if std::process::id() == 1 {
        final_sweep();
    }
    if code != 0 {
        std::process::exit(i32::from(code));
    }
    Ok(())
}

/// As PID 1, at the very end: SIGTERM to every process left in the
/// container, 3 s for them to go (reaping), then SIGKILL (SPEC §14). As
/// PID 1 every process left is our child (orphans come to us), so waiting
/// for SIGCHLD with a deadline sees each one go; nothing polls on a tick.
fn final_sweep() {
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;
    let everyone = Pid::from_raw(-1);
    if kill(everyone, Signal::SIGTERM).is_err() {
        return; // Nobody left (ESRCH).
    }
    if !reap_until_none_left(std::time::Duration::from_secs(3)) {
        log::warn!("processes left 3 s after SIGTERM: sending SIGKILL");
        let _ = kill(everyone, Signal::SIGKILL);
        reap_until_none_left(std::time::Duration::from_secs(3));
    }
}

/// Reaps children as they exit until no process is left (true) or `limit`
/// passed (false), sleeping in `epoll_wait` on SIGCHLD in between.
fn reap_until_none_left(limit: std::time::Duration) -> bool {
    use nix::sys::signal::kill;
    use nix::unistd::Pid;
    let deadline = std::time::Instant::now() + limit;
    let none_left = || kill(Pid::from_raw(-1), None).is_err();
    let waiter = (|| -> std::io::Result<_> {
        let poll = mio::Poll::new()?;
        let mut sigchld = signal_hook_mio::v1_0::Signals::new([signal_hook::consts::SIGCHLD])?;
        poll.registry()
            .register(&mut sigchld, mio::Token(0), mio::Interest::READABLE)?;
        Ok((poll, sigchld))
    })();
    let Ok((mut poll, mut sigchld)) = waiter else {
        // No way to wait for SIGCHLD: one last reap, no waiting.
        spawn::reap_all();
        return none_left();
    };
    let mut events = mio::Events::with_capacity(4);
    loop {
        // Reap before each wait: an exit before the handler existed sent
        // its SIGCHLD to nobody.
        spawn::reap_all();
        if none_left() {
            return true;
        }
        let now = std::time::Instant::now();
        if now >= deadline {
            return false;
        }
        if let Err(e) = poll.poll(&mut events, Some(deadline - now)) {
            if e.kind() != std::io::ErrorKind::Interrupted {
                return none_left();
            }
        }
        sigchld.pending().for_each(drop);
    }
}

/// Container mode: the daemon's own messages go to stderr.
fn init_logging_stderr() {
    logger::init(Box::new(std::io::stderr()));
}

/// The error of an event loop that could not go on (its poll failed).
fn loop_failed(e: std::io::Error) -> Error {
    Error::failed(format!("event loop failed: {e}"))
}

fn nanos_since_epoch() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// Takes `daemon.lock` (flock) and writes our pid into it. The lock decides
/// which of many racing daemons lives; the others leave without touching
/// the socket. Also says whether the lock file was created just now: the
/// first daemon of a home, before which no service of this home can have
/// run (every daemon makes the file before it spawns anything).
fn take_lock(home: &Home, handed: &mut handed::Handed) -> Result<(Flock<File>, bool), Error> {
    let path = home.lock();
    // Handed over with the services (to one client alone), it has kept
    // other daemons out since the old one exited: ours now, without a gap.
    if let Some(fd) = handed.file(&path) {
        if let Ok(lock) = Flock::lock(File::from(fd), FlockArg::LockExclusiveNonblock) {
            write_pid(&lock);
            return Ok((lock, false));
        }
    }
    let open = |create_new: bool| {
        OpenOptions::new()
            .create(!create_new)
            .create_new(create_new)
            .truncate(false)
            .read(true)
            .write(true)
            .mode(0o600)
            .open(&path)
    };
    let (file, first) = match open(true) {
        Ok(file) => (Ok(file), true),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => (open(false), false),
        Err(e) => (Err(e), false),
    };
    let file = file.map_err(|e| Error::failed(format!("cannot open {}: {e}", path.display())))?;
    let lock = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(lock) => lock,
        Err((_, nix::errno::Errno::EWOULDBLOCK)) => {
            let pid = std::fs::read_to_string(&path).unwrap_or_default();
            return Err(Error::failed_hint(
                format!(
                    "a daemon is already running for {} (pid {})",
                    home.dir.display(),
                    pid.trim()
                ),
                "use `diakonos daemon-status`, or another --home for a second daemon",
            ));
        }
        Err((_, e)) => {
            return Err(Error::failed(format!(
                "cannot lock {}: {e}",
                path.display()
            )))
        }
    };
    write_pid(&lock);
    Ok((lock, first))
}

/// Our pid, the lock file's whole content (from its start: a handed-over
/// lock's file offset is where the daemon before us left it).
fn write_pid(lock: &Flock<File>) {
    use std::os::unix::fs::FileExt;
    let _ = lock.set_len(0);
    let _ = lock.write_all_at(format!("{}\n", std::process::id()).as_bytes(), 0);
}

fn dir_is_empty(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_none())
}

/// A size or count from the environment, else `default`; a value that does
/// not parse is ignored, with a warning for the log.
fn env_limit<T: std::str::FromStr>(var: &str, default: T, warnings: &mut Vec<String>) -> T {
    match std::env::var(var) {
        Ok(v) => v.trim().parse().unwrap_or_else(|_| {
            warnings.push(format!(
                "ignoring {var}=`{}`: not a whole number",
                crate::unit::esc_all(&v)
            ));
            default
        }),
        Err(_) => default,
    }
}

fn init_logging(home: &Home) -> Result<(), Error> {
    let path = home.daemon_log();
    let mut warnings = Vec::new();
    // `daemon.log` is rotated like a service log that sets no limits: past
    // LogMaxBytes' default size (0 = never), keeping LogMaxFiles' default
    // count of old files (`daemon.log.1` ...), unless the environment says.
    let (default_bytes, default_files) = unit::default_log_limits();
    let max_bytes = env_limit(
        "DIAKONOS_DAEMON_LOG_MAX_BYTES",
        default_bytes,
        &mut warnings,
    );
    let max_files = env_limit(
        "DIAKONOS_DAEMON_LOG_MAX_FILES",
        default_files,
        &mut warnings,
    );
    let file = logfile::RotatingFile::open(&path, max_bytes, max_files)
        .map_err(|e| Error::failed(format!("cannot open {}: {e}", path.display())))?;
    // A second init (only possible in tests) is harmless.
    logger::init(Box::new(file));
    for w in warnings {
        log::warn!("{w}");
    }
    Ok(())
}

/// The descriptor a client that started this daemon waits on
/// ([`crate::protocol::READY_FD_ENV`]), taken out of the environment so
/// that no service inherits its name. Only a socket above stdio that our
/// parent made is taken: a stale variable must not make the daemon write
/// into some other file or socket it inherited.
fn take_ready_fd() -> Option<std::os::fd::OwnedFd> {
    use std::os::fd::{BorrowedFd, FromRawFd};
    let named = std::env::var(crate::protocol::READY_FD_ENV).ok();
    std::env::remove_var(crate::protocol::READY_FD_ENV);
    let fd: std::os::fd::RawFd = named?.parse().ok().filter(|&fd| fd > 2)?;
    // SAFETY: only borrowed for the getsockopt below, which fails
    // harmlessly (EBADF) on a descriptor that is not open.
    let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
    // A socket (anything else fails the query) made by the client that
    // started us: our parent.
    let peer =
        nix::sys::socket::getsockopt(&borrowed, nix::sys::socket::sockopt::PeerCredentials).ok()?;
    if peer.pid() != nix::unistd::getppid().as_raw() {
        return None;
    }
    // SAFETY: the descriptor is open (getsockopt worked) and was handed to this
    // process for this alone: nothing else here owns or closes it.
    Some(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) })
}

/// Binds the control socket with mode 0600. Only the lock holder gets here,
/// so a socket file left by a dead daemon is safe to remove.
fn bind_socket(path: &Path) -> Result<mio::net::UnixListener, Error> {
    let _ = std::fs::remove_file(path);
    // Create it 0600 from the start: no window where others could connect.
    let old = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o177));
    let listener = mio::net::UnixListener::bind(path);
    nix::sys::stat::umask(old);
    let listener =
        listener.map_err(|e| Error::failed(format!("cannot listen on {}: {e}", path.display())))?;
    let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
    Ok(listener)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lock_says_whether_it_is_the_first_daemon_of_its_home() {
        // The first daemon of a home skips the look through /proc for
        // services to adopt: only a lock file made just now may say so.
        let dir = std::env::temp_dir().join(format!("diakonos-lock-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let home = Home { dir: dir.clone() };
        home.create().unwrap();
        let (lock, first) = take_lock(&home, &mut handed::Handed::default()).unwrap();
        assert!(first, "a new home's lock file is made by its first daemon");
        let err = take_lock(&home, &mut handed::Handed::default()).unwrap_err();
        assert!(err.to_string().contains("already running"), "{err}");
        drop(lock);
        let (_lock, first) = take_lock(&home, &mut handed::Handed::default()).unwrap();
        assert!(!first, "a later daemon finds the lock file there");
        let pid = std::fs::read_to_string(home.lock()).unwrap();
        assert_eq!(pid.trim(), std::process::id().to_string());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
