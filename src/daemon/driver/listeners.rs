//! The sockets of `[socket]` units (SPEC §15): bound by the daemon at a
//! unit's first start and held across its restarts, so a restart refuses
//! no connection (clients wait in the backlog; the new process accepts
//! them). Handed to each start as fds 3, 4, ... (`SpawnSpec::fds`).
//!
//! The sockets stay blocking and close-on-exec here; the spawn's dup2 into
//! 3.. clears close-on-exec on the service's copies only. They are kept at
//! descriptor numbers of `HIGH_FD` and above so moving them into 3.. in
//! the child never overwrites one not yet moved.
//!
//! A unit's sockets are kept while the daemon runs and the unit keeps the
//! same `[socket]`; a changed `[socket]` (reload) closes the old ones at
//! the next start and binds the new ones.
//!
//! On-demand units: while one is enabled and down (inactive, or exited:
//! its process ended well) its sockets are
//! *armed* (registered with the poll for readability, one token per unit
//! from 2^39); a connection disarms them and the loop asks the supervisor
//! to start the unit, which then accepts it from the backlog. The armed set
//! is brought in line with [`Supervisor::armable`](crate::daemon::supervisor::Supervisor::armable)
//! after every pass. A unit that failed is not armed (its waiting clients
//! would start it again and again).

use crate::hash::HashMap;
use std::collections::{BTreeMap, BTreeSet};

use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};
use std::io;
use std::net::{TcpListener, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixDatagram, UnixListener};

use crate::daemon::handed::Handed;
use crate::unit::{Listen, ListenAddr, SocketSpec};

/// Held sockets are moved to descriptors from this number up.
const HIGH_FD: RawFd = 64;

/// Tokens of armed sockets start here (below the children's pidfds at 2^40).
const TOKENS: usize = 1 << 39;

#[derive(Default)]
pub struct Listeners {
    held: HashMap<String, Held>,
    /// On-demand units whose sockets are registered for a first
    /// connection: name -> token (one token for all of a unit's sockets).
    armed: BTreeMap<String, usize>,
    by_token: HashMap<usize, String>,
    next_token: usize,
    /// Units whose arming failed (logged once until they stop being armable).
    failed: BTreeSet<String>,
}

struct Held {
    spec: SocketSpec,
    fds: Vec<OwnedFd>,
}

impl Listeners {
    /// The units whose sockets are bound now, in name order: at a reload
    /// they keep their addresses against a unit file that names one too.
    pub fn holders(&self) -> Vec<String> {
        let mut names: Vec<String> = self.held.keys().cloned().collect();
        names.sort_unstable();
        names
    }

    /// The descriptors to pass to a start of `unit`, bound now if they are
    /// not held yet (or `spec` changed). The error is one line for the user.
    pub fn fds_for(&mut self, unit: &str, spec: &SocketSpec) -> Result<Vec<RawFd>, BindError> {
        if self.held.get(unit).is_some_and(|h| h.spec != *spec) {
            // Closed before binding the new ones: they may share addresses.
            self.held.remove(unit);
        }
        if !self.held.contains_key(unit) {
            let mut fds = Vec::with_capacity(spec.listen.len());
            for l in &spec.listen {
                let fd = bind(l, spec).map_err(|e| BindError::new(l, &e))?;
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
        if self.held.get(unit).is_some_and(|h| h.spec == *spec) {
            return Ok(()); // Handed over by the daemon before us.
        }
        let pidfd = crate::procfs::pidfd_open(nix::unistd::Pid::from_raw(pid))
            .map_err(|e| format!("pidfd_open({pid}): {e}"))?;
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
            if !crate::daemon::handed::is_socket_of(&fd, l) {
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

    /// After a hand-over (SPEC §17): takes the sockets the daemon before
    /// us held, for every unit whose `[socket]` names them all, before
    /// anything starts (a bind of their addresses would fail while they are
    /// open). The backlog and mode are the unit's as it reads now.
    pub fn claim<'u>(
        &mut self,
        handed: &mut Handed,
        units: impl Iterator<Item = &'u crate::unit::Unit>,
    ) {
        for unit in units {
            let Some(spec) = &unit.socket else { continue };
            let mut fds = Vec::with_capacity(spec.listen.len());
            for l in &spec.listen {
                match handed.socket_of(l).map(|fd| ready(fd, l, spec)) {
                    Some(Ok(fd)) => fds.push(fd),
                    Some(Err(e)) => {
                        log::warn!("{}: cannot keep the socket of {}: {e}", unit.name, l.addr)
                    }
                    None => break,
                }
            }
            if fds.len() == spec.listen.len() {
                let held = Held {
                    spec: (**spec).clone(),
                    fds,
                };
                self.held.insert(unit.name.clone(), held);
            }
        }
    }

    /// Adds every held socket to `out`: what a hand-over passes on.
    pub fn push_fds(&self, out: &mut Vec<RawFd>) {
        for held in self.held.values() {
            out.extend(held.fds.iter().map(AsRawFd::as_raw_fd));
        }
    }

    pub fn owns(token: Token) -> bool {
        (TOKENS..TOKENS << 1).contains(&token.0)
    }

    /// Makes the armed set the `armable` units (on-demand, enabled,
    /// inactive): binds and registers what is new, deregisters what left.
    /// An on-demand unit that is neither armed nor running closes its
    /// sockets (it was disabled, or its file changed); so does any unit
    /// that is gone (removed by a reload, deleted) once it is down.
    pub fn sync_armed<'u>(
        &mut self,
        registry: &Registry,
        armable: impl Iterator<Item = &'u crate::unit::Unit>,
        is_active: impl Fn(&str) -> bool,
        has_socket: impl Fn(&str) -> bool,
    ) {
        let mut want = BTreeMap::new();
        for unit in armable {
            if let Some(socket) = &unit.socket {
                want.insert(unit.name.as_str(), &**socket);
            }
        }
        let gone: Vec<String> = self
            .armed
            .keys()
            .filter(|n| !want.contains_key(n.as_str()))
            .cloned()
            .collect();
        for name in gone {
            self.disarm(&name, registry);
        }
        // An on-demand unit neither armed nor running (disabled, or its
        // file changed) lets its sockets go; eager units keep theirs.
        self.held.retain(|name, held| {
            let wanted = match held.spec.on_demand {
                true => want.contains_key(name.as_str()),
                false => has_socket(name),
            };
            wanted || is_active(name)
        });
        self.failed.retain(|n| want.contains_key(n.as_str()));
        for (name, spec) in want {
            if self.armed.contains_key(name) || self.failed.contains(name) {
                continue;
            }
            self.arm(name, spec, registry);
        }
    }

    /// Binds (or takes the held sockets of) unit `name` and registers them.
    /// Out of line: kept out of the code every daemon runs (the layout's
    /// first part), as most have no `[socket]`.
    #[inline(never)]
    fn arm(&mut self, name: &str, spec: &SocketSpec, registry: &Registry) {
        let token = TOKENS + self.next_token;
        self.next_token = (self.next_token + 1) % TOKENS;
        let armed = self
            .fds_for(name, spec)
            .map_err(|e| e.to_string())
            .and_then(|fds| {
                fds.iter().try_for_each(|fd| {
                    registry
                        .register(&mut SourceFd(fd), Token(token), Interest::READABLE)
                        .map_err(|e| format!("cannot watch its socket: {e}"))
                })
            });
        match armed {
            Ok(()) => {
                self.armed.insert(name.to_string(), token);
                self.by_token.insert(token, name.to_string());
            }
            Err(why) => {
                log::warn!("{name}: cannot listen for its first connection: {why}");
                self.held.remove(name);
                self.failed.insert(name.to_string());
            }
        }
    }

    /// A connection is waiting on an armed unit's socket: disarms it and
    /// names the unit to start (the connection waits in the backlog).
    pub fn on_ready(&mut self, token: Token, registry: &Registry) -> Option<String> {
        let name = self.by_token.get(&token.0)?.clone();
        self.disarm(&name, registry);
        Some(name)
    }

    fn disarm(&mut self, name: &str, registry: &Registry) {
        if let Some(token) = self.armed.remove(name) {
            self.by_token.remove(&token);
            if let Some(held) = self.held.get(name) {
                for fd in &held.fds {
                    let _ = registry.deregister(&mut SourceFd(&fd.as_raw_fd()));
                }
            }
        }
    }
}

/// A `[socket]` address that could not be bound: data for callers;
/// `Display` is the line a user sees, with what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindError {
    /// ListenStream or ListenDatagram.
    pub key: &'static str,
    pub addr: String,
    pub kind: io::ErrorKind,
    pub error: String,
}

impl BindError {
    fn new(l: &Listen, e: &io::Error) -> BindError {
        BindError {
            key: if l.datagram {
                "ListenDatagram"
            } else {
                "ListenStream"
            },
            addr: l.addr.to_string(),
            kind: e.kind(),
            error: e.to_string(),
        }
    }
}

impl std::fmt::Display for BindError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let next = match self.kind {
            io::ErrorKind::AddrInUse => {
                "; another program holds it: stop it or pick another address"
            }
            io::ErrorKind::PermissionDenied => {
                "; a port below 1024 needs root, a Unix path a writable directory"
            }
            _ => "",
        };
        write!(
            f,
            "cannot bind {} {}: {}{next}",
            self.key, self.addr, self.error
        )
    }
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

/// A handed-over socket made the unit's as it reads now: its backlog, the
/// mode of its file, a descriptor of `HIGH_FD` or above.
fn ready(fd: OwnedFd, l: &Listen, spec: &SocketSpec) -> io::Result<OwnedFd> {
    match (&l.addr, l.datagram) {
        (ListenAddr::Tcp(_), false) => relisten(fd.as_raw_fd(), spec.backlog)?,
        (ListenAddr::Unix(p), datagram) => {
            if !datagram {
                relisten(fd.as_raw_fd(), spec.backlog)?;
            }
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(spec.mode))?;
        }
        (ListenAddr::Tcp(_), true) => {}
    }
    high(fd)
}

/// listen() again with the unit's backlog (std binds with 128).
fn relisten(fd: RawFd, backlog: i32) -> io::Result<()> {
    // SAFETY: `fd` is a bound socket owned by the caller for the call.
    if unsafe { nix::libc::listen(fd, backlog) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The same socket at a descriptor of `HIGH_FD` or above (close-on-exec).
fn high(fd: OwnedFd) -> io::Result<OwnedFd> {
    crate::daemon::spawn::dup_at_least(fd, HIGH_FD)
}
