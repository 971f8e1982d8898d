//! Talking to the daemon: connect (starting a daemon when none answers),
//! send one request frame, read one reply frame. A daemon of an older
//! protocol version is handed over to a daemon of this binary first
//! (SPEC §17, see `protocol`'s wire rules); one of protocol 1, which has
//! no hand-over, is handed over by the crash path (see `legacy`). The
//! stream of `events` is in `events.rs`.

mod events;
mod legacy;

pub use events::events;

use std::fs::OpenOptions;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::cli::Global;
use crate::error::Error;
use crate::paths::{self, Home};
use crate::procfs;
use crate::protocol::{self, Request, RequestFrame, Response, MAX_REPLY, STABLE};

/// How long a freshly started daemon may take to answer.
const START_DEADLINE: Duration = Duration::from_secs(10);
/// How long one wait for a starting daemon's word lasts before its socket
/// is tried anyway.
const READY_SLICE: Duration = Duration::from_millis(20);
/// How long `kill` waits for the daemon process to be gone after it said bye.
const EXIT_DEADLINE: Duration = Duration::from_secs(30);

/// How often one request is retried after the daemon vanished under it:
/// several clients meeting a protocol-1 daemon at once each may see it
/// die (handed over by another) and then the new one start.
const MAX_DAEMON_DEATHS: u32 = 3;
/// How long a request the daemon answers at once may wait for its reply.
const REPLY_TIMEOUT: Duration = Duration::from_secs(10);
/// How much longer than its own timeout `wait` waits for the daemon's
/// answer (which the daemon gives at the timeout).
const WAIT_GRACE: Duration = Duration::from_secs(2);
/// How long a client on a machine with more than one CPU watches for a
/// reply the daemon answers at once before it sleeps on it (see
/// [`watch_for_reply`]).
const REPLY_WATCH: Duration = Duration::from_micros(200);

/// Sends `req` and returns the reply. With `autostart`, a daemon is started
/// when none answers; without it, that case is `Error::NotRunning`. An error
/// reply from the daemon becomes `Error::Failed`.
pub fn request(g: &Global, req: Request, autostart: bool) -> Result<Response, Error> {
    let (mut deaths, mut handed_over, mut waited) = (0, false, false);
    loop {
        match request_once(g, req.clone(), autostart, &mut Vec::new()) {
            // No socket answers (or the daemon handed over under a
            // question that starts none), but a daemon holds the lock: one
            // being handed over to, or starting. Asked again once it
            // answers.
            Err(Retry::Final(Error::NotRunning(_)) | Retry::DaemonDied(_))
                if !autostart && !waited && coming(g) =>
            {
                waited = true;
            }
            // A daemon that died after accepting us (kill -9 a moment ago,
            // or an old daemon another client is handing over): start a
            // fresh one and ask again, a few times. Every request is
            // idempotent.
            Err(Retry::DaemonDied(_)) if autostart && deaths < MAX_DAEMON_DEATHS => deaths += 1,
            // One that died under a question that starts none (`kill`,
            // `daemon-status` right after a kill -9): no daemon runs.
            Err(Retry::DaemonDied(_)) if !autostart => {
                let home = Home::resolve(g.home.clone()).map_err(Error::failed)?;
                return Err(Error::NotRunning(format!(
                    "no daemon is running for {} (it exited as we asked)",
                    home.dir.display()
                )));
            }
            // An older daemon: it hands its services over to one of ours,
            // then we ask again.
            Err(Retry::OtherVersion { daemon, .. })
                if !handed_over && daemon < protocol::version() =>
            {
                handed_over = true;
                if let Some(old) = hand_over(g)? {
                    errln!(
                        "diakonos: the daemon (pid {old}) spoke protocol {daemon}; \
                         its services were handed over to a daemon of this binary (protocol {})",
                        protocol::version()
                    );
                }
            }
            // A protocol-1 daemon: `kill` and `daemon-status` are asked in
            // its protocol; anything else hands it over first.
            Err(Retry::Legacy { daemon }) if !handed_over && daemon < protocol::version() => {
                handed_over = true;
                let home = Home::resolve(g.home.clone()).map_err(Error::failed)?;
                let served = match legacy::native(&req) {
                    Some(v1) => legacy::request(&home, v1)?,
                    None => {
                        legacy::hand_over(&home)?;
                        None
                    }
                };
                if let Some(resp) = served {
                    return Ok(resp);
                }
            }
            other => return other.map_err(Retry::into_error),
        }
    }
}

/// Asks the running daemon to hand over (SPEC §17): it writes its state and
/// exits, leaving every service running. Then starts a daemon of this
/// binary, which adopts them all. Returns the old daemon's pid, or None
/// when no daemon was running (then none is started).
pub fn hand_over(g: &Global) -> Result<Option<i32>, Error> {
    let home = Home::resolve(g.home.clone()).map_err(Error::failed)?;
    let old = daemon_identity(g);
    // The lock and sockets it sends with its `Bye` go to the new daemon.
    let mut handed = Vec::new();
    let mut answer = request_once(g, Request::HandOver, false, &mut handed);
    if matches!(answer, Err(Retry::Final(Error::NotRunning(_)))) && coming(g) {
        // Another client's hand-over is under way: this one goes to the
        // daemon it starts.
        answer = request_once(g, Request::HandOver, false, &mut handed);
    }
    match answer {
        Ok(Response::Bye) => {}
        Ok(other) => return Err(unexpected(&other)),
        Err(Retry::Final(Error::NotRunning(_))) => return Ok(None),
        // Gone before its answer arrived: what it left is adopted the same,
        // if it left anything (a `kill` at the same moment stops it all:
        // then no daemon is started).
        Err(Retry::DaemonDied(_)) if !services_left(g) => {
            wait_for_daemon_exit(old)?;
            return Ok(None);
        }
        Err(Retry::DaemonDied(_)) => {}
        Err(Retry::Legacy { .. }) => return legacy::hand_over(&home),
        Err(e) => return Err(e.into_error()),
    }
    wait_for_daemon_exit(old)?;
    // No --service-dir: the new daemon takes over the old one's.
    start_daemon(&home, None, &handed)?;
    Ok(old.map(|(pid, _)| pid))
}

/// Whether a daemon is on its way (a hand-over's successor, or one
/// starting): none answers, but the lock is held. Waits (at most
/// START_DEADLINE) until its socket answers: true, or the lock is free.
fn coming(g: &Global) -> bool {
    let Ok(home) = Home::resolve(g.home.clone()) else {
        return false;
    };
    let deadline = Instant::now() + START_DEADLINE;
    while Instant::now() < deadline && lock_held(&home) {
        if connect(&home).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    false
}

/// Whether a daemon holds this home's lock (it runs, starts or is being
/// handed over to).
fn lock_held(home: &Home) -> bool {
    let Ok(file) = std::fs::File::open(home.lock()) else {
        return false;
    };
    let shared = nix::fcntl::FlockArg::LockSharedNonblock;
    matches!(
        nix::fcntl::Flock::lock(file, shared),
        Err((_, nix::errno::Errno::EWOULDBLOCK))
    )
}

/// A failed request, telling apart a daemon that vanished mid-request and
/// one that speaks another protocol version.
enum Retry {
    DaemonDied(Error),
    /// The daemon refused the request: it speaks protocol `daemon`.
    OtherVersion {
        daemon: u32,
        error: Error,
    },
    /// The daemon speaks protocol `daemon` (1), from before the stable
    /// envelope (`protocol::legacy`).
    Legacy {
        daemon: u32,
    },
    Final(Error),
}

impl Retry {
    fn into_error(self) -> Error {
        match self {
            Retry::DaemonDied(e) | Retry::Final(e) => e,
            Retry::OtherVersion { error, .. } => error,
            Retry::Legacy { daemon } => Error::failed_hint(
                format!(
                    "the daemon still speaks protocol {daemon} after a hand-over (this diakonos speaks {})",
                    protocol::version()
                ),
                "daemon.log in the diakonos home says why the new daemon did not take over",
            ),
        }
    }
}

impl From<Error> for Retry {
    fn from(e: Error) -> Retry {
        Retry::Final(e)
    }
}

/// Sends one request and reads its reply; descriptors the daemon sends
/// with a `Bye` (a hand-over) are put in `passed`.
fn request_once(
    g: &Global,
    req: Request,
    autostart: bool,
    passed: &mut Vec<OwnedFd>,
) -> Result<Response, Retry> {
    let home = Home::resolve(g.home.clone()).map_err(Error::failed)?;
    let (service_dir, named) = paths::service_dir(g.service_dir.clone());
    // `kill` and `daemon-status` need no directory on disk: the daemon's
    // own may be gone (it still says whether it is the one named).
    let home_level = !autostart && matches!(req, Request::Kill | Request::DaemonStatus);
    // A Unix socket's path holds at most 107 bytes: no daemon can listen
    // in a home deeper than that (so none runs there).
    let socket = home.socket();
    let long = socket.as_os_str().len();
    if long > paths::MAX_SOCKET_PATH {
        if home_level {
            return Err(Error::NotRunning(format!(
                "no daemon can run in {}: its socket path would be {long} bytes",
                home.dir.display()
            ))
            .into());
        }
        return Err(Error::failed_hint(
            format!(
                "the home {} is too deep for the daemon's socket ({long} bytes; a Unix socket's path holds at most 107)",
                home.dir.display()
            ),
            "pick a shorter --home or DIAKONOS_HOME",
        )
        .into());
    }
    if named && !home_level && !service_dir.is_dir() {
        return Err(Error::failed_hint(
            format!(
                "the service directory {} does not exist",
                service_dir.display()
            ),
            "check --service-dir or DIAKONOS_SERVICE_DIR",
        )
        .into());
    }
    let frame = RequestFrame::new(req, named.then(|| service_dir.clone()));
    let sent = match frame.request.stable_op() {
        Some(_) => STABLE,
        None => frame.version,
    };
    // Encode before connecting: a request that cannot be sent fails at once.
    let bytes = protocol::encode_request(&frame).map_err(|e| {
        if service_dir.to_str().is_none() {
            Error::failed_hint(
                format!(
                    "the service directory {} is not valid UTF-8",
                    service_dir.display()
                ),
                "rename the directory, or link to it from a UTF-8 path",
            )
        } else {
            Error::failed(format!("cannot encode the request: {e}"))
        }
    })?;
    let mut stream = match connect(&home) {
        Ok(s) => s,
        Err(Connect::NotRunning) if autostart => {
            if !named {
                refuse_missing_dir(&daemon_default_dir(&home, &service_dir))?;
            }
            start_daemon(&home, named.then_some(service_dir.as_path()), &[])?;
            connect(&home).map_err(|e| e.into_error(&home))?
        }
        Err(e) => return Err(e.into_error(&home).into()),
    };
    let broken = |e: io::Error| {
        Error::failed_hint(
            format!("lost the connection to the daemon: {e}"),
            format!("see {} for what happened", home.daemon_log().display()),
        )
    };
    // A daemon that refuses us says why and closes: our write may fail
    // while its answer is already waiting to be read.
    let at_once = frame.request.answered_at_once();
    // A stopped (SIGSTOP) or wedged daemon must not hang a script: a
    // request answered at once is given REPLY_TIMEOUT, a `wait` its own
    // timeout and a little more.
    let limit = match &frame.request {
        _ if at_once => Some(REPLY_TIMEOUT),
        Request::Wait {
            timeout_ms: Some(ms),
            ..
        } => Some(Duration::from_millis(*ms) + WAIT_GRACE),
        _ => None,
    };
    if limit.is_some() {
        let _ = stream.set_read_timeout(limit);
    }
    let written = std::io::Write::write_all(&mut stream, &bytes);
    if at_once && written.is_ok() {
        watch_for_reply(&stream);
    }
    let read = match frame.request {
        Request::HandOver => {
            peek_fds(&stream, passed);
            protocol::read_frame(&mut stream, MAX_REPLY)
        }
        _ => protocol::read_frame(&mut stream, MAX_REPLY),
    };
    let body = match read {
        Ok(body) => {
            keep_until_exit(stream);
            body
        }
        Err(e) if limit.is_some() && matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
            return Err(Retry::Final(Error::failed_hint(
                format!(
                    "the daemon did not answer in {} s",
                    limit.unwrap_or(REPLY_TIMEOUT).as_secs_f64()
                ),
                format!(
                    "is it stopped (`ps -o pid,stat -p $(cat {})` shows T)? `kill -CONT` resumes it, and it then still carries this request out; see {}",
                    home.dir.join("daemon.lock").display(),
                    home.daemon_log().display()
                ),
            )))
        }
        Err(e) => {
            let e = written.err().unwrap_or(e);
            let vanished = matches!(
                e.kind(),
                io::ErrorKind::ConnectionReset
                    | io::ErrorKind::UnexpectedEof
                    | io::ErrorKind::BrokenPipe
            );
            return Err(if vanished {
                Retry::DaemonDied(broken(e))
            } else {
                Retry::Final(broken(e))
            });
        }
    };
    let reply = match protocol::decode_reply(&body) {
        Ok(reply) => reply,
        Err(e) => {
            return Err(match protocol::legacy::refusal(&body) {
                Some(daemon) => Retry::Legacy { daemon },
                None => Retry::Final(Error::failed_hint(
                    format!("cannot understand the daemon's reply: {e}"),
                    format!(
                        "is {} a diakonos daemon's socket? see {}",
                        home.socket().display(),
                        home.daemon_log().display()
                    ),
                )),
            })
        }
    };
    if sent != STABLE && reply.version != frame.version {
        let error = if reply.version > frame.version {
            Error::failed_hint(
                format!(
                    "the daemon speaks protocol {}, newer than this diakonos (protocol {})",
                    reply.version, frame.version
                ),
                "use the newer diakonos binary, or `diakonos daemon-upgrade` to hand the services over to this one",
            )
        } else {
            Error::failed_hint(
                format!(
                    "the daemon still speaks protocol {} after a hand-over (this diakonos speaks {})",
                    reply.version, frame.version
                ),
                format!("see {}", home.daemon_log().display()),
            )
        };
        return Err(Retry::OtherVersion {
            daemon: reply.version,
            error,
        });
    }
    match reply.response {
        Response::Error { message, hint } => Err(Error::Failed { message, hint }.into()),
        resp => Ok(resp),
    }
}

/// Watches `stream` for up to [`REPLY_WATCH`] until its reply (or the
/// daemon's hang-up) is there to read, when this process may run on more
/// than one CPU. The daemon answers `list` or `status` within tens of
/// microseconds; a client asleep in `read` is woken only after the reply is
/// sent, which costs as much again (a halted CPU to wake, ~75 us in a VM:
/// benches/README.md). On one CPU the watch would keep the daemon from
/// running, so the client sleeps at once; past the bound it sleeps too (a
/// daemon that is busy, or stopped). The reading itself is left to
/// `read_frame`: this only peeks.
fn watch_for_reply(stream: &UnixStream) {
    if procfs::cpus() < 2 {
        return;
    }
    let fd = stream.as_raw_fd();
    let since = Instant::now();
    let mut byte = [0u8; 1];
    loop {
        // SAFETY: recv(2) on a descriptor we hold, into a one-byte buffer
        // of ours; MSG_PEEK leaves the byte in the socket, MSG_DONTWAIT
        // never blocks.
        let got = unsafe {
            nix::libc::recv(
                fd,
                byte.as_mut_ptr().cast(),
                1,
                nix::libc::MSG_PEEK | nix::libc::MSG_DONTWAIT,
            )
        };
        // A byte, the hang-up (0) or an error other than "nothing yet":
        // `read_frame` takes it from here.
        if got >= 0 || io::Error::last_os_error().kind() != io::ErrorKind::WouldBlock {
            return;
        }
        if since.elapsed() >= REPLY_WATCH {
            return;
        }
        // The daemon may have been woken onto this CPU: let it run.
        std::thread::yield_now();
    }
}

/// The connection of the last request answered (a static, not a thread
/// local: nothing to register for the exit, which closes it).
static ANSWERED: std::sync::Mutex<Option<UnixStream>> = std::sync::Mutex::new(None);

/// Keeps the connection of an answered request open until the next
/// request or this process's exit (closing the one before): services that
/// a large `start` cloned wait at the daemon's gate until their client has
/// gone, so their start-up does not compete with its exit (README,
/// "Decisions").
fn keep_until_exit(stream: UnixStream) {
    let mut kept = ANSWERED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    *kept = Some(stream);
}

/// Takes the descriptors that come with the next bytes of `stream`
/// (SCM_RIGHTS, a hand-over's `Bye`) without reading them: a peek gets
/// copies of them, close-on-exec and never at 0-2; the read that follows
/// drops the originals. Nothing when the reply carries none.
fn peek_fds(stream: &UnixStream, passed: &mut Vec<OwnedFd>) {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 253]);
    let mut byte = [0u8; 1];
    let mut iov = [io::IoSliceMut::new(&mut byte)];
    let flags = MsgFlags::MSG_CMSG_CLOEXEC | MsgFlags::MSG_PEEK;
    let Ok(msg) = recvmsg::<()>(stream.as_raw_fd(), &mut iov, Some(&mut cmsg), flags) else {
        return;
    };
    let Ok(cmsgs) = msg.cmsgs() else { return };
    for c in cmsgs {
        if let ControlMessageOwned::ScmRights(fds) = c {
            for fd in fds {
                // SAFETY: the kernel just installed this descriptor in our
                // table for us: nothing else owns it.
                let fd = unsafe { OwnedFd::from_raw_fd(fd) };
                // At 0-2 it would become the daemon's stdio.
                match fd.as_raw_fd() {
                    0..=2 => passed.extend(fd.try_clone().ok()),
                    _ => passed.push(fd),
                }
            }
        }
    }
}

/// The directory a daemon started now without `--service-dir` takes: the
/// one the last daemon of this home owned (from the state file, so a daemon
/// after a crash takes over its services), else `default` (`./services`).
pub fn daemon_default_dir(home: &Home, default: &Path) -> PathBuf {
    std::fs::read(home.state())
        .ok()
        .and_then(|b| serde_json::from_slice::<StateDir>(&b).ok())
        .and_then(|s| s.service_dir)
        .unwrap_or_else(|| default.to_path_buf())
}

/// The one field of the daemon's state file (`HOME/state`, JSON) a client
/// reads; the others are the daemon's business and are skipped.
#[derive(serde::Deserialize)]
struct StateDir {
    #[serde(default)]
    service_dir: Option<PathBuf>,
}

/// No daemon is started on a service directory that does not exist: it
/// would own it until `kill`, and every later `--service-dir` is refused.
pub fn refuse_missing_dir(dir: &Path) -> Result<(), Error> {
    if dir.is_dir() {
        return Ok(());
    }
    Err(Error::failed_hint(
        format!(
            "the service directory {} does not exist; no daemon was started",
            dir.display()
        ),
        "create it, or name yours with --service-dir DIR (or DIAKONOS_SERVICE_DIR)",
    ))
}

enum Connect {
    NotRunning,
    Denied(io::Error),
    Other(io::Error),
}

impl Connect {
    fn into_error(self, home: &Home) -> Error {
        let sock = home.socket();
        match self {
            Connect::NotRunning => {
                Error::NotRunning(format!("no daemon is running for {}", home.dir.display()))
            }
            Connect::Denied(e) => Error::failed_hint(
                format!("cannot reach the daemon at {}: {e}", sock.display()),
                "the daemon belongs to another user; use your own --home or DIAKONOS_HOME",
            ),
            Connect::Other(e) => Error::failed_hint(
                format!("cannot reach the daemon at {}: {e}", sock.display()),
                format!("see {}", home.daemon_log().display()),
            ),
        }
    }
}

fn connect(home: &Home) -> Result<UnixStream, Connect> {
    match UnixStream::connect(home.socket()) {
        Ok(s) => Ok(s),
        Err(e) => Err(match e.kind() {
            // No socket there, or no home yet (a file where it would be:
            // starting the daemon then says what is wrong with it).
            io::ErrorKind::NotFound
            | io::ErrorKind::ConnectionRefused
            | io::ErrorKind::NotADirectory => Connect::NotRunning,
            io::ErrorKind::PermissionDenied => Connect::Denied(e),
            _ => Connect::Other(e),
        }),
    }
}

/// Starts a detached daemon and waits until its socket answers. Racing
/// callers are fine: the lock lets one daemon live, and every caller waits
/// for that one.
pub fn start_daemon(
    home: &Home,
    service_dir: Option<&Path>,
    handed: &[OwnedFd],
) -> Result<(), Error> {
    if connect(home).is_ok() {
        return Ok(());
    }
    let (mut child, ready) = spawn_detached(home, service_dir, handed).map_err(|e| {
        Error::failed_hint(
            format!("cannot start the daemon for {}: {e}", home.dir.display()),
            "the home must be a directory you may create and write; pick another with --home or DIAKONOS_HOME",
        )
    })?;
    let deadline = Instant::now() + START_DEADLINE;
    // The daemon says when it listens (a byte), or its end closes when it
    // exits before that (another daemon won the lock, or it failed). A
    // daemon that says nothing (a binary from before the word) is tried
    // between short waits for it.
    let mut ready = ready;
    let _ = ready.set_read_timeout(Some(READY_SLICE));
    let mut word = false;
    let mut exited = false;
    loop {
        if !word {
            match io::Read::read(&mut ready, &mut [0u8; 1]) {
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) => {}
                _ => word = true,
            }
        }
        if connect(home).is_ok() {
            // Reap a daemon that lost the lock race (its exit is expected).
            let _ = child.try_wait();
            return Ok(());
        }
        if !exited {
            if let Ok(Some(_)) = child.try_wait() {
                // It exited: most likely another daemon won the lock and is
                // about to listen. Keep waiting for the socket.
                exited = true;
            }
        }
        if Instant::now() >= deadline {
            return Err(Error::failed_hint(
                format!(
                    "the daemon did not start within {}s",
                    START_DEADLINE.as_secs()
                ),
                format!("see {}", home.daemon_log().display()),
            ));
        }
        if word {
            // Ours said its word and still no answer: the winner of the
            // lock gives us none, so its socket is tried again shortly.
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

/// Starts `diakonos daemon` in the background: a new session, stdin from
/// /dev/null, stdout and stderr appended to `daemon.log`, so the daemon and
/// its services never belong to the caller's terminal. Also returns our
/// end of the socket pair on which the daemon says that it listens
/// ([`protocol::READY_FD_ENV`]). The descriptors `handed` over by an old
/// daemon are the new one's ([`protocol::HANDED_FDS_ENV`]).
pub fn spawn_detached(
    home: &Home,
    service_dir: Option<&Path>,
    handed: &[OwnedFd],
) -> io::Result<(Child, UnixStream)> {
    home.create()?;
    let exe = std::env::current_exe()?;
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(home.daemon_log())?;
    let log2 = log.try_clone()?;
    // Both ends close on exec; the daemon's is made inheritable in the child.
    let (ours, theirs) = UnixStream::pair()?;
    // Never 0-2 (a client started with stdio closed): those become the
    // daemon's stdio. A duplicate lands at 3 or above.
    let theirs = match theirs.as_raw_fd() {
        0..=2 => theirs.try_clone()?,
        _ => theirs,
    };
    let theirs_fd = theirs.as_raw_fd();
    let mut inherited: Vec<RawFd> = handed.iter().map(AsRawFd::as_raw_fd).collect();
    inherited.push(theirs_fd);
    let mut cmd = Command::new(exe);
    if !handed.is_empty() {
        let named: Vec<String> = handed.iter().map(|fd| fd.as_raw_fd().to_string()).collect();
        cmd.env(protocol::HANDED_FDS_ENV, named.join(","));
    }
    cmd.arg("--home").arg(&home.dir);
    if let Some(dir) = service_dir {
        cmd.arg("--service-dir").arg(dir);
    }
    // The daemon resolves its default service dir itself (it may take over
    // the one of a daemon that crashed); it must not see ours by environment.
    cmd.env_remove("DIAKONOS_SERVICE_DIR")
        .env(protocol::READY_FD_ENV, theirs_fd.to_string())
        .arg("daemon")
        .stdin(Stdio::null())
        .stdout(Stdio::from(log))
        .stderr(Stdio::from(log2));
    // SAFETY: runs in the forked child before exec; setsid and fcntl are
    // single async-signal-safe system calls, and the closure only reads
    // descriptor numbers moved into it (no allocation, no lock).
    unsafe {
        cmd.pre_exec(move || {
            nix::unistd::setsid().map_err(io::Error::from)?;
            for &fd in &inherited {
                if nix::libc::fcntl(fd, nix::libc::F_SETFD, 0) < 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    let child = cmd.spawn()?;
    // Only the daemon holds its end now: its exit closes it.
    drop(theirs);
    Ok((child, ours))
}

/// The running daemon's pid and start time (from its lock file and /proc).
pub fn daemon_identity(g: &Global) -> Option<(i32, u64)> {
    let home = Home::resolve(g.home.clone()).ok()?;
    let pid: i32 = std::fs::read_to_string(home.lock())
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let start = procfs::start_time(pid)?;
    Some((pid, start))
}

/// Whether the state file of this home names a service process that is
/// still alive (a daemon died and none adopted it yet).
pub fn services_left(g: &Global) -> bool {
    let Ok(home) = Home::resolve(g.home.clone()) else {
        return false;
    };
    let state = crate::daemon::persist::peek_state(&home.state());
    state.services.iter().any(|s| match (s.pid, s.start_time) {
        (Some(pid), Some(start)) => procfs::same_process(pid, start),
        _ => false,
    })
}

/// After a kill was acknowledged, waits until the daemon process is gone
/// (or only a zombie), so `kill` returns only when the daemon has exited.
pub fn wait_for_daemon_exit(daemon: Option<(i32, u64)>) -> Result<(), Error> {
    let Some((pid, start)) = daemon else {
        return Ok(());
    };
    let deadline = Instant::now() + EXIT_DEADLINE;
    // Its pidfd becomes readable when it exits (kernels from 5.3); without
    // one, a look every 2 ms. Each wait is bounded, and the identity is
    // checked again after it, so a reused pid can only cost one slice.
    let pidfd = procfs::pidfd_open(nix::unistd::Pid::from_raw(pid)).ok();
    while procfs::same_process(pid, start) {
        let now = Instant::now();
        if now >= deadline {
            return Err(Error::failed(format!(
                "the daemon (pid {pid}) said goodbye but is still running after {}s",
                EXIT_DEADLINE.as_secs()
            )));
        }
        match &pidfd {
            Some(fd) => wait_readable(fd, (deadline - now).min(EXIT_SLICE)),
            None => std::thread::sleep(Duration::from_millis(2)),
        }
    }
    Ok(())
}

/// The longest single wait on a daemon's pidfd before its identity is
/// checked again.
const EXIT_SLICE: Duration = Duration::from_millis(100);

/// Waits at most `limit` for `fd` to become readable (a pidfd: its
/// process exited). Returns early on a signal or an error; the caller
/// checks what it waits for again either way.
fn wait_readable(fd: &std::os::fd::OwnedFd, limit: Duration) {
    let mut pfd = nix::libc::pollfd {
        fd: fd.as_raw_fd(),
        events: nix::libc::POLLIN,
        revents: 0,
    };
    let ms = i32::try_from(limit.as_millis()).unwrap_or(i32::MAX).max(1);
    // SAFETY: one pollfd of ours, valid for the call; poll only writes its
    // `revents`.
    unsafe {
        nix::libc::poll(&mut pfd, 1, ms);
    }
}

pub fn unexpected(resp: &Response) -> Error {
    Error::failed_hint(
        format!("unexpected reply from the daemon: {}", resp.kind()),
        "the daemon may be another diakonos version: `diakonos daemon-upgrade` replaces it with this binary's, keeping every service",
    )
}
