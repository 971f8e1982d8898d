//! The sd_notify socket: datagrams from `Type = "notify"` services, with
//! the sender's credentials attached, become `notified` inputs.

use std::io;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::time::Instant;

use mio::net::UnixDatagram;
use mio::{Interest, Registry, Token};
use nix::sys::socket::{
    recvmsg, setsockopt, sockopt::PassCred, ControlMessageOwned, MsgFlags, UnixCredentials,
};
use nix::unistd::Pid;

use crate::daemon::handed::Handed;
use crate::daemon::supervisor::{Input, MainPidClaim, Supervisor};
use crate::paths::NOTIFY_RUN_DIR;
use crate::unit::{Listen, ListenAddr};

pub const NOTIFY: Token = Token(2);

pub struct Notify {
    /// None when it could not be bound: notify services then time out.
    sock: Option<UnixDatagram>,
}

impl Notify {
    /// Binds `path` (or takes the socket the daemon before us bound
    /// there) and watches it; on failure says so in the log and goes on
    /// without it.
    pub fn new(path: &Path, registry: &Registry, handed: &mut Handed) -> Notify {
        let listen = Listen {
            addr: ListenAddr::Unix(path.to_path_buf()),
            datagram: true,
        };
        let kept = handed.socket_of(&listen).map(|fd| {
            let sock = std::os::unix::net::UnixDatagram::from(fd);
            sock.set_nonblocking(true)
                .map(|()| UnixDatagram::from_std(sock))
        });
        let sock = match kept.unwrap_or_else(|| bind_notify(path)) {
            Ok(mut sock) => match registry.register(&mut sock, NOTIFY, Interest::READABLE) {
                Ok(()) => Some(sock),
                Err(e) => {
                    log::warn!(
                        "cannot watch the notify socket: {e}; Type=notify services will time out"
                    );
                    None
                }
            },
            Err(e) => {
                log::warn!(
                    "cannot bind {}: {e}; Type=notify services will time out",
                    path.display()
                );
                None
            }
        };
        Notify { sock }
    }

    /// The socket's descriptor, for a hand-over.
    pub fn fd(&self) -> Option<std::os::fd::RawFd> {
        self.sock.as_ref().map(AsRawFd::as_raw_fd)
    }

    /// Reads every pending datagram with its sender's credentials.
    pub fn on_ready(&mut self, sup: &mut Supervisor, now: Instant) {
        let Some(sock) = &self.sock else {
            return;
        };
        let mut buf = [0u8; 4096];
        loop {
            let mut cmsg = nix::cmsg_space!(UnixCredentials);
            let mut iov = [std::io::IoSliceMut::new(&mut buf)];
            let msg = match recvmsg::<()>(
                sock.as_raw_fd(),
                &mut iov,
                Some(&mut cmsg),
                MsgFlags::MSG_DONTWAIT,
            ) {
                Ok(msg) => msg,
                Err(nix::errno::Errno::EAGAIN) => return,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => {
                    log::warn!("notify socket: {e}");
                    return;
                }
            };
            let sender = msg.cmsgs().ok().and_then(|mut c| {
                c.find_map(|c| match c {
                    ControlMessageOwned::ScmCredentials(cred) => Some(Pid::from_raw(cred.pid())),
                    _ => None,
                })
            });
            let len = msg.bytes;
            let Some(sender) = sender else {
                continue; // No credentials: cannot tell who it is.
            };
            let text = String::from_utf8_lossy(&buf[..len]).into_owned();
            let group = nix::unistd::getpgid(Some(sender)).ok();
            // MAINPID=N: who that process is, read now (it may go soon).
            let main_pid = MainPidClaim::named_in(&text).map(|pid| MainPidClaim {
                pid,
                pgid: nix::unistd::getpgid(Some(pid)).ok(),
                start_time: crate::procfs::start_time(pid.as_raw()),
            });
            let monotonic = text
                .lines()
                .find_map(|l| l.trim_end_matches('\r').strip_prefix("MONOTONIC_USEC="))
                .and_then(|n| n.trim().parse::<u64>().ok())
                .and_then(instant_of_monotonic);
            sup.handle(
                Input::Notify {
                    sender,
                    group,
                    payload: text,
                    main_pid,
                    monotonic,
                },
                now,
            );
        }
    }
}

/// A CLOCK_MONOTONIC time in µs (sd_notify MONOTONIC_USEC=) as an
/// `Instant` (which is CLOCK_MONOTONIC on Linux); None for a time in the
/// future or before the clock began.
fn instant_of_monotonic(usec: u64) -> Option<Instant> {
    let mono_now = crate::procfs::monotonic_time()?;
    let age = mono_now.checked_sub(std::time::Duration::from_micros(usec))?;
    Instant::now().checked_sub(age)
}

/// The notify socket: datagrams with the sender's credentials attached.
/// Under [`NOTIFY_RUN_DIR`] (a root daemon) the directory is made 0755 and
/// must be a real directory of root's that no one else may write to, and
/// the socket is 0666 so services of any `User=` can send.
fn bind_notify(path: &Path) -> io::Result<UnixDatagram> {
    let shared = path.starts_with(NOTIFY_RUN_DIR);
    if shared {
        use std::os::unix::fs::{DirBuilderExt, MetadataExt};
        let mut dir = std::fs::DirBuilder::new();
        dir.recursive(true).mode(0o755);
        dir.create(NOTIFY_RUN_DIR)?;
        let meta = std::fs::symlink_metadata(NOTIFY_RUN_DIR)?;
        if !meta.is_dir() || meta.uid() != 0 || meta.mode() & 0o022 != 0 {
            return Err(io::Error::other(format!(
                "{NOTIFY_RUN_DIR} is not a directory of root's that only root may write to; remove it"
            )));
        }
    }
    let _ = std::fs::remove_file(path);
    let sock = UnixDatagram::bind(path)?;
    setsockopt(&sock, PassCred, &true).map_err(io::Error::from)?;
    if shared {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666))?;
    }
    Ok(sock)
}
