//! Descriptors one daemon hands to the next (SPEC §17). With its `Bye` the
//! old daemon sends (SCM_RIGHTS) its lock, its notify socket and the held
//! sockets of `[socket]` units; the client that asked passes them on to the
//! daemon it starts, named in [`HANDED_FDS_ENV`](crate::protocol::HANDED_FDS_ENV).
//! Nothing closes them in between, so for the whole hand-over the lock
//! stays taken (no other daemon can slip in), a READY=1 waits in the
//! notify socket and a connection waits in its socket's backlog.
//!
//! Each descriptor is recognised by what it is (the lock file, a socket's
//! type and address), never by its place in the list; what no one claims
//! is closed once the new daemon has restored its services.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

use crate::unit::{Listen, ListenAddr};

/// The descriptors a predecessor handed over, not claimed yet.
#[derive(Default)]
pub struct Handed {
    fds: Vec<OwnedFd>,
}

impl Handed {
    /// The descriptors named in the environment (and the name removed, so
    /// no service sees it). A number that is stdio, or not open, is passed
    /// over.
    pub fn from_env() -> Handed {
        let var = crate::protocol::HANDED_FDS_ENV;
        let named = std::env::var(var).unwrap_or_default();
        std::env::remove_var(var);
        let mut fds: Vec<OwnedFd> = Vec::new();
        for n in named.split(',').filter_map(|n| n.parse::<RawFd>().ok()) {
            // SAFETY: F_GETFD only reads a flag; on a number that is not an
            // open descriptor it fails (EBADF) and changes nothing.
            let open = n > 2 && unsafe { nix::libc::fcntl(n, nix::libc::F_GETFD) } >= 0;
            if open && fds.iter().all(|f| f.as_raw_fd() != n) {
                // Inherited without close-on-exec: no service may get it.
                // SAFETY: F_SETFD sets a flag of this open descriptor.
                unsafe { nix::libc::fcntl(n, nix::libc::F_SETFD, nix::libc::FD_CLOEXEC) };
                // SAFETY: the client that started us named this open
                // descriptor as handed to this process alone: nothing else
                // here owns or closes it.
                fds.push(unsafe { OwnedFd::from_raw_fd(n) });
            }
        }
        Handed { fds }
    }

    /// The descriptors' numbers.
    pub fn raw_fds(&self) -> Vec<RawFd> {
        self.fds.iter().map(AsRawFd::as_raw_fd).collect()
    }

    pub fn is_empty(&self) -> bool {
        self.fds.is_empty()
    }

    /// The first descriptor for which `is` holds, taken out of the list.
    pub fn take(&mut self, is: impl Fn(&OwnedFd) -> bool) -> Option<OwnedFd> {
        let i = self.fds.iter().position(is)?;
        Some(self.fds.swap_remove(i))
    }

    /// The socket of `l` (its type, bound to its address), if one was
    /// handed over.
    pub fn socket_of(&mut self, l: &Listen) -> Option<OwnedFd> {
        self.take(|fd| is_socket_of(fd, l))
    }

    /// The open file `path` (the lock file), if it was handed over.
    pub fn file(&mut self, path: &Path) -> Option<OwnedFd> {
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::metadata(path).ok()?;
        self.take(|fd| {
            nix::sys::stat::fstat(fd)
                .is_ok_and(|st| st.st_dev == meta.dev() && st.st_ino == meta.ino())
        })
    }
}

/// Whether `fd` is a socket of `l`'s type bound to `l`'s address.
pub fn is_socket_of(fd: &OwnedFd, l: &Listen) -> bool {
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
                std::net::UdpSocket::from(copy).local_addr()
            } else {
                std::net::TcpListener::from(copy).local_addr()
            };
            local.ok() == Some(*a)
        }
        ListenAddr::Unix(p) => {
            name.family() == Some(nix::sys::socket::AddressFamily::Unix)
                && name.as_unix_addr().and_then(|u| u.path()) == Some(p.as_path())
        }
    }
}
