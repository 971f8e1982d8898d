//! A client of this binary meeting a daemon of protocol 1 (the release
//! before the stable envelope, see `protocol::legacy`). Such a daemon
//! understands no hand-over, and SIGTERM or SIGINT would make it stop every
//! service. What it does survive is the crash path (SPEC §7): after
//! SIGKILL its services keep running, and a new daemon adopts them from
//! the state file (plus the environment tag scan). So the hand-over is:
//!
//! 1. ask it for its status in protocol 1; it writes its state file, if
//!    anything changed, before it answers;
//! 2. make sure which process it is: the socket's peer credentials, the
//!    pid in `daemon.lock` and the pid it reports must agree, and its
//!    start time pins the process (the signal goes through a pidfd when
//!    the kernel has them, so a reused pid is never signalled);
//! 3. SIGKILL it, wait until it is gone, start a daemon of this binary,
//!    which adopts every service (same pids, restart counts kept).
//!
//! `kill` and `daemon-status` are served in protocol 1 directly.

use std::io::{ErrorKind, Write};
use std::os::fd::{AsRawFd, OwnedFd};

use nix::sys::signal::Signal;
use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};
use nix::unistd::{geteuid, Pid};

use super::{connect, start_daemon, wait_for_daemon_exit, Connect};
use crate::error::Error;
use crate::paths::Home;
use crate::procfs;
use crate::protocol::legacy::{self, V1Reply, V1Request, V1};
use crate::protocol::{self, Request, Response, MAX_REPLY};

/// The protocol-1 form of `req`, for the requests served without a
/// hand-over.
pub(super) fn native(req: &Request) -> Option<V1Request> {
    match req {
        Request::Kill => Some(V1Request::Kill),
        Request::DaemonStatus => Some(V1Request::DaemonStatus),
        _ => None,
    }
}

/// Sends `req` to the protocol-1 daemon and returns its reply in this
/// version's form; None when the daemon is no longer of protocol 1 (another
/// client handed it over meanwhile): ask again the usual way.
pub(super) fn request(home: &Home, req: V1Request) -> Result<Option<Response>, Error> {
    match exchange(home, req)? {
        None => Ok(None),
        Some((V1Reply::Daemon(info), _)) => Ok(Some(Response::Daemon(Box::new(info)))),
        Some((V1Reply::Bye, _)) => Ok(Some(Response::Bye)),
        Some((V1Reply::Error { message, hint }, _)) => Err(Error::Failed { message, hint }),
    }
}

/// Hands the protocol-1 daemon's services over to a daemon of this binary
/// (module docs). Returns the old daemon's pid; None when no daemon of
/// protocol 1 was running any more (none was, or another client handed it
/// over meanwhile), then at most that client's new daemon runs. Says what
/// happened on stderr.
pub(super) fn hand_over(home: &Home) -> Result<Option<i32>, Error> {
    let (reply, peer) = match exchange(home, V1Request::DaemonStatus) {
        Ok(Some(got)) => got,
        Err(Error::NotRunning(_)) => return Ok(None),
        // Handed over by another client meanwhile: make sure a daemon runs
        // (the one it started, or one that adopts what the old one left).
        Ok(None) => {
            start_daemon(home, None, &[])?;
            return Ok(None);
        }
        Err(e) => return Err(e),
    };
    let reported = match reply {
        V1Reply::Daemon(info) => info.pid as i32,
        V1Reply::Error { message, hint } => return Err(Error::Failed { message, hint }),
        V1Reply::Bye => return Err(super::unexpected(&Response::Bye)),
    };
    let Some(start) = procfs::start_time(peer) else {
        // Gone since it answered: another client is handing it over (or it
        // crashed); what it left is adopted by whichever daemon starts.
        start_daemon(home, None, &[])?;
        return Ok(None);
    };
    let locked: Option<i32> = std::fs::read_to_string(home.lock())
        .ok()
        .and_then(|s| s.trim().parse().ok());
    if peer != reported || locked != Some(peer) {
        return Err(Error::failed_hint(
            format!(
                "cannot tell which process is the protocol-1 daemon: its socket says pid {peer}, \
                 it says pid {reported}, {} says {}",
                home.lock().display(),
                locked.map_or("nothing".to_owned(), |p| p.to_string())
            ),
            "find the `diakonos daemon` process of this home and `kill -9` it (its services keep running), then retry",
        ));
    }
    sigkill(peer, start)?;
    wait_for_daemon_exit(Some((peer, start)))?;
    // No --service-dir: the new daemon takes over the old one's.
    start_daemon(home, None, &[])?;
    errln!(
        "diakonos: the daemon (pid {peer}) spoke protocol {V1}, which cannot hand over: it was \
         stopped with SIGKILL, which leaves services running, and its services were handed over \
         to a daemon of this binary (protocol {})",
        protocol::version()
    );
    Ok(Some(peer))
}

/// One protocol-1 request and its reply, with the pid of the process that
/// listens on the socket (its peer credentials). None when the daemon
/// answers in protocol 2 or later, or vanishes before it answers: it is not
/// of protocol 1 any more.
fn exchange(home: &Home, req: V1Request) -> Result<Option<(V1Reply, i32)>, Error> {
    let mut stream = connect(home).map_err(|e| e.into_error(home))?;
    let cred = getsockopt(&stream, PeerCredentials).map_err(|e| {
        Error::failed(format!(
            "cannot read the credentials of the daemon at {}: {e}",
            home.socket().display()
        ))
    })?;
    let me = geteuid().as_raw();
    if cred.uid() != me && me != 0 {
        return Err(Connect::Denied(std::io::Error::other(format!(
            "it runs as uid {}",
            cred.uid()
        )))
        .into_error(home));
    }
    let broken = |e: std::io::Error| {
        Error::failed_hint(
            format!("lost the connection to the protocol-{V1} daemon: {e}"),
            format!("see {} for what happened", home.daemon_log().display()),
        )
    };
    // A daemon killed meanwhile (another client is handing it over) is
    // not of protocol 1 any more either.
    let gone = |e: &std::io::Error| {
        matches!(
            e.kind(),
            ErrorKind::ConnectionReset | ErrorKind::UnexpectedEof | ErrorKind::BrokenPipe
        )
    };
    let written = stream.write_all(&legacy::encode_request(req));
    let body = match protocol::read_frame(&mut stream, MAX_REPLY) {
        Ok(body) => body,
        Err(e) => {
            let e = written.err().unwrap_or(e);
            return if gone(&e) { Ok(None) } else { Err(broken(e)) };
        }
    };
    match legacy::decode_reply(&body) {
        Ok(reply) => Ok(Some((reply, cred.pid()))),
        Err(_) if protocol::decode_reply(&body).is_ok() => Ok(None),
        Err(e) => Err(Error::failed_hint(
            format!("cannot understand the protocol-{V1} daemon's reply: {e}"),
            format!("see {}", home.daemon_log().display()),
        )),
    }
}

/// SIGKILLs `pid` if it is still the process that started at `start`.
fn sigkill(pid: i32, start: u64) -> Result<(), Error> {
    let failed = |e: std::io::Error| {
        Error::failed_hint(
            format!("cannot stop the protocol-{V1} daemon (pid {pid}): {e}"),
            format!("`kill -9 {pid}` (its services keep running), then retry"),
        )
    };
    match procfs::pidfd_open(Pid::from_raw(pid)) {
        // The pidfd holds this very process from here on: check it is the
        // one we identified, then signal through it.
        Ok(fd) => {
            if procfs::same_process(pid, start) {
                pidfd_send_sigkill(&fd).map_err(failed)?;
            }
            Ok(())
        }
        Err(e) if e.raw_os_error() == Some(nix::libc::ESRCH) => Ok(()),
        // No pidfds (before Linux 5.3): the start time check right before
        // the signal is what stands between us and a reused pid.
        Err(_) => {
            if procfs::same_process(pid, start) {
                nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL)
                    .map_err(|e| failed(e.into()))?;
            }
            Ok(())
        }
    }
}

fn pidfd_send_sigkill(fd: &OwnedFd) -> std::io::Result<()> {
    // SAFETY: pidfd_send_signal(2) takes a descriptor we own, a signal
    // number, a null siginfo pointer (allowed: the kernel fills in one as
    // for kill(2)) and zero flags; it shares no memory with us.
    let rc = unsafe {
        nix::libc::syscall(
            nix::libc::SYS_pidfd_send_signal,
            fd.as_raw_fd(),
            nix::libc::SIGKILL,
            std::ptr::null::<nix::libc::siginfo_t>(),
            0,
        )
    };
    match rc {
        0 => Ok(()),
        _ => match std::io::Error::last_os_error() {
            // Exited in between: it is gone, which is what we wanted.
            e if e.raw_os_error() == Some(nix::libc::ESRCH) => Ok(()),
            e => Err(e),
        },
    }
}
