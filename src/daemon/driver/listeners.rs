//! The sockets of `[socket]` units (SPEC §15): bound by the daemon at a
//! unit's first start and held across its restarts, so a restart refuses
//! no connection (clients wait in the backlog; the new process accepts
//! them). Handed to each start as fds 3, 4, ... (`SpawnSpec::fds`).
//!
//! The sockets stay blocking and close-on-exec here; the spawn's dup2 into
//! 3.. clears close-on-exec on the service's copies only. They are kept at
//! descriptor numbers of [`HIGH_FD`] and above so moving them into 3.. in
//! the child never overwrites one not yet moved.
//!
//! A unit's sockets are kept while the daemon runs and the unit keeps the
//! same `[socket]`; a changed `[socket]` (reload) closes the old ones at
//! the next start and binds the new ones.

use std::collections::HashMap;
use std::io;
use std::net::{TcpListener, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixDatagram, UnixListener};

use crate::unit::{Listen, ListenAddr, SocketSpec};

/// Held sockets are moved to descriptors from this number up.
const HIGH_FD: RawFd = 64;

#[derive(Default)]
pub struct Listeners {
    held: HashMap<String, Held>,
}

struct Held {
    spec: SocketSpec,
    fds: Vec<OwnedFd>,
}

impl Listeners {
    /// The descriptors to pass to a start of `unit`, bound now if they are
    /// not held yet (or `spec` changed). The error is one line for the user.
    pub fn fds_for(&mut self, unit: &str, spec: &SocketSpec) -> Result<Vec<RawFd>, String> {
        if self.held.get(unit).is_some_and(|h| h.spec != *spec) {
            // Closed before binding the new ones: they may share addresses.
            self.held.remove(unit);
        }
        if !self.held.contains_key(unit) {
            let mut fds = Vec::with_capacity(spec.listen.len());
            for l in &spec.listen {
                let fd = bind(l, spec).map_err(|e| describe(l, &e))?;
                fds.push(fd);
            }
            self.held.insert(
                unit.to_string(),
                Held {
                    spec: spec.clone(),
                    fds,
                },
            );
        }
        Ok(self
            .held
            .get(unit)
            .map(|h| h.fds.iter().map(AsRawFd::as_raw_fd).collect())
            .unwrap_or_default())
    }

    /// After a daemon crash: takes back the sockets an adopted service
    /// `pid` of `unit` was given (fds 3.. in it, copied with
    /// pidfd_getfd(2)), so its next restart gets the very same sockets and
    /// the connections waiting in them. Rebinding instead would fail while
    /// the service holds the address, and after it stopped would lose its
    /// backlog. Needs the right to ptrace the service (same user, or root);
    /// when a descriptor is gone or is not the socket the unit names,
    /// nothing is taken and the next start binds afresh.
    pub fn reclaim(&mut self, unit: &str, spec: &SocketSpec, pid: i32) -> Result<(), String> {
        // SAFETY: pidfd_open takes a pid and flags and returns a new
        // descriptor (or -1); it touches no memory of ours.
        let pidfd = unsafe { nix::libc::syscall(nix::libc::SYS_pidfd_open, pid, 0) };
        if pidfd < 0 {
            return Err(format!("pidfd_open({pid}): {}", io::Error::last_os_error()));
        }
        // SAFETY: `pidfd` was just returned to us and nothing else owns it.
        let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd as RawFd) };
        let mut fds = Vec::with_capacity(spec.listen.len());
        for (i, l) in spec.listen.iter().enumerate() {
            let target = 3 + i as RawFd;
            // SAFETY: pidfd_getfd takes two descriptors and flags and
            // returns a new close-on-exec descriptor (or -1).
            let fd = unsafe {
                nix::libc::syscall(nix::libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), target, 0)
            };
            if fd < 0 {
                return Err(format!(
                    "fd {target} of {pid}: {}",
                    io::Error::last_os_error()
                ));
            }
            // SAFETY: `fd` was just returned to us and nothing else owns it.
            let fd = unsafe { OwnedFd::from_raw_fd(fd as RawFd) };
            if !is_socket_of(&fd, l) {
                return Err(format!(
                    "fd {target} of {pid} is not the socket of {}",
                    l.addr
                ));
            }
            fds.push(high(fd).map_err(|e| e.to_string())?);
        }
        self.held.insert(
            unit.to_string(),
            Held {
                spec: spec.clone(),
                fds,
            },
        );
        Ok(())
    }

    /// Closes the sockets of units no longer loaded (or without `[socket]`).
    pub fn retain(&mut self, keep: impl Fn(&str) -> bool) {
        self.held.retain(|name, _| keep(name));
    }
}

fn describe(l: &Listen, e: &io::Error) -> String {
    let kind = if l.datagram {
        "ListenDatagram"
    } else {
        "ListenStream"
    };
    let next = match e.kind() {
        io::ErrorKind::AddrInUse => "; another program holds it: stop it or pick another address",
        io::ErrorKind::PermissionDenied => {
            "; a port below 1024 needs root, a Unix path a writable directory"
        }
        _ => "",
    };
    format!("cannot bind {kind} {}: {e}{next}", l.addr)
}

fn bind(l: &Listen, spec: &SocketSpec) -> io::Result<OwnedFd> {
    let fd: OwnedFd = match (&l.addr, l.datagram) {
        (ListenAddr::Tcp(a), false) => {
            let s = TcpListener::bind(a)?;
            relisten(s.as_raw_fd(), spec.backlog)?;
            s.into()
        }
        (ListenAddr::Tcp(a), true) => UdpSocket::bind(a)?.into(),
        (ListenAddr::Unix(p), datagram) => {
            // A socket file left by an earlier run is stale (the address
            // is one unit's alone); anything else there is not ours.
            if std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_socket()) {
                std::fs::remove_file(p)?;
            }
            let fd: OwnedFd = if datagram {
                UnixDatagram::bind(p)?.into()
            } else {
                let s = UnixListener::bind(p)?;
                relisten(s.as_raw_fd(), spec.backlog)?;
                s.into()
            };
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(spec.mode))?;
            fd
        }
    };
    high(fd)
}

/// Whether `fd` is a socket of `l`'s type bound to `l`'s address.
fn is_socket_of(fd: &OwnedFd, l: &Listen) -> bool {
    use nix::sys::socket::{
        getsockname, getsockopt, sockopt, SockType, SockaddrLike, SockaddrStorage,
    };
    let want = if l.datagram {
        SockType::Datagram
    } else {
        SockType::Stream
    };
    if getsockopt(fd, sockopt::SockType).ok() != Some(want) {
        return false;
    }
    let Ok(name) = getsockname::<SockaddrStorage>(fd.as_raw_fd()) else {
        return false;
    };
    match &l.addr {
        ListenAddr::Tcp(a) => {
            let Ok(copy) = fd.try_clone() else {
                return false;
            };
            let local = if l.datagram {
                UdpSocket::from(copy).local_addr()
            } else {
                TcpListener::from(copy).local_addr()
            };
            local.ok() == Some(*a)
        }
        ListenAddr::Unix(p) => {
            name.family() == Some(nix::sys::socket::AddressFamily::Unix)
                && name.as_unix_addr().and_then(|u| u.path()) == Some(p.as_path())
        }
    }
}

/// listen() again with the unit's backlog (std binds with 128).
fn relisten(fd: RawFd, backlog: i32) -> io::Result<()> {
    // SAFETY: `fd` is a bound socket owned by the caller for the call.
    if unsafe { nix::libc::listen(fd, backlog) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The same socket at a descriptor of [`HIGH_FD`] or above (close-on-exec).
fn high(fd: OwnedFd) -> io::Result<OwnedFd> {
    // SAFETY: F_DUPFD_CLOEXEC on a descriptor we own returns a new one that
    // nothing else owns; it is wrapped at once.
    let n = unsafe { nix::libc::fcntl(fd.as_raw_fd(), nix::libc::F_DUPFD_CLOEXEC, HIGH_FD) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    drop(fd);
    // SAFETY: `n` was just returned by fcntl and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(n) })
}
