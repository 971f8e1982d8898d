//! The control socket: accepting clients, per-connection read and write
//! buffers, turning bytes into requests and replies into bytes.
//!
//! Every socket is non-blocking and drained until `WouldBlock`. A bad frame
//! gets an error reply and closes only its own connection; a client that
//! says nothing, or never reads, only holds its own bounded buffers.

use crate::hash::HashMap;
use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::path::Path;
use std::time::{Duration, Instant};

use mio::net::{UnixListener, UnixStream};
use mio::{Interest, Registry, Token};
use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};
use nix::unistd::Uid;

use crate::protocol::{self, EventRecord, FrameError, RequestFrame, Response, MAX_FRAME};

/// How much a client of `events` may leave unread for longer than
/// [`IO_TIMEOUT`] before it is dropped: one pass (a start of a thousand
/// units) may queue more at once, which a client that reads catches up on.
pub const EVENT_QUEUE_BYTES: usize = 64 * 1024;
/// A client of `events` with this much unread is dropped at once.
pub const EVENT_QUEUE_MAX: usize = 4 << 20;

/// The listening socket's token.
pub const LISTENER: Token = Token(0);
/// Tokens below this belong to the event loop's own sources.
pub const FIRST_CONN_TOKEN: usize = 16;
/// More simultaneous clients than this are turned away at accept.
pub const MAX_CONNS: usize = 4096;
/// A client must send its whole request within this long after connecting,
/// and read its reply within this long after it is ready.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);

struct Conn {
    token: Token,
    stream: UnixStream,
    rbuf: Vec<u8>,
    wbuf: Vec<u8>,
    wpos: usize,
    /// A request was read: further input is ignored.
    got_request: bool,
    /// Close as soon as `wbuf` is flushed.
    close_when_flushed: bool,
    /// Once flushed, stay open until the client hangs up (or
    /// [`Control::end_waits`]): services cloned for it wait for that.
    wait_for_client: bool,
    /// The reply goes out in the stable form (protocol wire rule 5): the
    /// request was stable, of another version, or did not decode.
    stable_reply: bool,
    writable_registered: bool,
    /// Follows `events` for these units (all when empty).
    subscription: Option<Vec<String>>,
    /// An `events` client with more than [`EVENT_QUEUE_BYTES`] unread: it
    /// has until its deadline to catch up.
    behind: bool,
}

pub struct Control {
    listener: UnixListener,
    conns: HashMap<usize, Conn>,
    /// Changes to the deadlines of connections that wait on their client
    /// (request or reply), for the loop's timer queue (`TimerKey::Conn`).
    /// None while a job works on the request: a start may take long.
    deadlines: Vec<(usize, Option<Instant>)>,
    /// The last accept failed (out of descriptors): try again soon.
    pub accept_blocked: bool,
    /// Accepts have been failing since the last success (warned once).
    accept_failing: bool,
    next: usize,
    my_uid: Uid,
    /// The protocol version this daemon speaks ([`protocol::version`]).
    version: u32,
    /// The size of the last `list` reply (the next one's first buffer).
    last_list_len: usize,
    /// Clients refused as one too many since the daemon started (logged
    /// at 1, 2, 4, 8, ...: a flood of them does not flood daemon.log).
    refused_busy: u64,
    /// Descriptors sent (SCM_RIGHTS) with every `Bye`: what a hand-over
    /// passes to the next daemon (`daemon::handed`).
    pub handing: Vec<std::os::fd::RawFd>,
    /// The lock, sent with the first `Bye` only: one client's daemon gets
    /// it (and holds it from our exit on, so no other daemon can start
    /// meanwhile); the daemons of other clients asking at once lose it.
    pub handing_lock: Option<std::os::fd::RawFd>,
}

/// What a readable connection produced.
pub enum Incoming {
    Request(usize, RequestFrame),
    Bad(usize, FrameError),
}

impl Control {
    pub fn new(listener: UnixListener) -> Control {
        Control {
            listener,
            conns: HashMap::default(),
            deadlines: Vec::new(),
            accept_blocked: false,
            accept_failing: false,
            next: FIRST_CONN_TOKEN,
            my_uid: Uid::effective(),
            version: protocol::version(),
            last_list_len: 0,
            refused_busy: 0,
            handing: Vec::new(),
            handing_lock: None,
        }
    }

    /// Tells a client that is not taken why, best effort and never
    /// blocking, before its connection is closed.
    fn refuse(&self, stream: &mut UnixStream, why: String, hint: &str) {
        let refusal = Response::error(why, Some(hint));
        if let Ok(frame) = protocol::encode_reply(&refusal, self.version, true) {
            let _ = stream.write(&frame);
        }
    }

    /// Whether the client of `conn` is still connected.
    pub fn is_open(&self, conn: usize) -> bool {
        self.conns.contains_key(&conn)
    }

    /// The protocol version this daemon speaks.
    pub fn version(&self) -> u32 {
        self.version
    }

    pub fn listener(&mut self) -> &mut UnixListener {
        &mut self.listener
    }

    /// Accepts every pending client. Only our own user and root get in.
    /// Returns the new connections' tokens.
    pub fn accept_all(&mut self, registry: &Registry, now: Instant) -> Vec<usize> {
        self.accept_blocked = false;
        let mut accepted = Vec::new();
        loop {
            let (mut stream, _) = match self.listener.accept() {
                Ok(pair) => {
                    self.accept_failing = false;
                    pair
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.accept_failing = false;
                    return accepted;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // EMFILE and friends: the rest waits in the backlog. The
                    // listener is edge-triggered, so the loop retries soon
                    // (see `accept_blocked`) rather than on the next connect.
                    if self.accept_failing {
                        log::debug!("accept failed again: {e}");
                    } else {
                        log::warn!("accept failed: {e}; retrying every 100 ms");
                    }
                    self.accept_failing = true;
                    self.accept_blocked = true;
                    return accepted;
                }
            };
            match getsockopt(&stream.as_fd(), PeerCredentials) {
                Ok(cred) if cred.uid() == self.my_uid.as_raw() || cred.uid() == 0 => {}
                Ok(cred) => {
                    log::warn!(
                        "refused a client of uid {} (pid {}): only uid {} and root may connect",
                        cred.uid(),
                        cred.pid(),
                        self.my_uid
                    );
                    let why = format!(
                        "this daemon belongs to uid {}; uid {} may not use it",
                        self.my_uid,
                        cred.uid()
                    );
                    self.refuse(&mut stream, why, "use your own --home or DIAKONOS_HOME");
                    continue;
                }
                Err(e) => {
                    log::warn!("refused a client whose credentials cannot be read: {e}");
                    continue;
                }
            }
            if self.conns.len() >= MAX_CONNS {
                self.refused_busy += 1;
                if self.refused_busy.is_power_of_two() {
                    log::warn!(
                        "too many clients ({MAX_CONNS}); refused {} so far",
                        self.refused_busy
                    );
                }
                let why = format!("the daemon has too many clients ({MAX_CONNS}) connected");
                self.refuse(&mut stream, why, "try again once some have finished");
                continue;
            }
            let token = self.next;
            self.next += 1;
            if let Err(e) = registry.register(&mut stream, Token(token), Interest::READABLE) {
                log::warn!("cannot watch a client: {e}");
                continue;
            }
            self.deadlines.push((token, Some(now + IO_TIMEOUT)));
            self.conns.insert(
                token,
                Conn {
                    token: Token(token),
                    stream,
                    rbuf: Vec::new(),
                    wbuf: Vec::new(),
                    wpos: 0,
                    got_request: false,
                    close_when_flushed: false,
                    wait_for_client: false,
                    stable_reply: true,
                    writable_registered: false,
                    subscription: None,
                    behind: false,
                },
            );
            accepted.push(token);
        }
    }

    /// Handles readiness of one client; returns what it asked, if anything.
    pub fn on_ready(
        &mut self,
        token: usize,
        readable: bool,
        writable: bool,
        registry: &Registry,
    ) -> Option<Incoming> {
        let mut incoming = None;
        let mut close = false;
        {
            let conn = self.conns.get_mut(&token)?;
            if writable {
                close |= flush(conn, registry);
                if conn.behind && unread(conn) <= EVENT_QUEUE_BYTES {
                    // Caught up.
                    conn.behind = false;
                    self.deadlines.push((token, None));
                }
            }
            if readable && !close {
                match read_available(conn) {
                    Ok(eof) => {
                        if !conn.got_request {
                            match protocol::take_frame(&mut conn.rbuf) {
                                Ok(Some(body)) => {
                                    conn.got_request = true;
                                    conn.rbuf = Vec::new();
                                    let decoded = protocol::decode_request(&body, self.version);
                                    if let Ok(frame) = &decoded {
                                        conn.stable_reply = frame.version != self.version;
                                    }
                                    incoming = Some(match decoded {
                                        Ok(frame) => Incoming::Request(token, frame),
                                        Err(e) => Incoming::Bad(token, e),
                                    });
                                }
                                Ok(None) => {}
                                Err(e) => {
                                    conn.got_request = true;
                                    conn.rbuf = Vec::new();
                                    incoming = Some(Incoming::Bad(token, e));
                                }
                            }
                        }
                        // The peer is gone: nothing we send can arrive.
                        if eof && incoming.is_none() {
                            close = true;
                        }
                    }
                    Err(_) => close = true,
                }
            }
        }
        if close {
            self.close(token, registry);
        } else if incoming.is_some() {
            // The request is in; the job may take as long as it takes.
            self.deadlines.push((token, None));
        }
        incoming
    }

    /// Queues `resp` on `token` and closes the connection once it is sent.
    pub fn reply(&mut self, token: usize, resp: &Response, registry: &Registry, now: Instant) {
        self.send(token, resp, false, registry, now);
    }

    /// Queues `resp` on `token`; once it is sent, the connection stays
    /// open until its client hangs up ([`Control::waiting_for_clients`]).
    pub fn reply_and_wait(
        &mut self,
        token: usize,
        resp: &Response,
        registry: &Registry,
        now: Instant,
    ) {
        self.send(token, resp, true, registry, now);
    }

    /// Whether a client answered with [`Control::reply_and_wait`] is
    /// still connected.
    pub fn waiting_for_clients(&self) -> bool {
        self.conns.values().any(|c| c.wait_for_client)
    }

    /// Waits no longer for the clients of [`Control::reply_and_wait`]:
    /// those that have their reply are closed.
    pub fn end_waits(&mut self, registry: &Registry) {
        let flushed: Vec<usize> = self
            .conns
            .values_mut()
            .filter(|c| c.wait_for_client)
            .filter_map(|c| {
                c.wait_for_client = false;
                (c.wpos >= c.wbuf.len()).then_some(c.token.0)
            })
            .collect();
        for token in flushed {
            self.close(token, registry);
        }
    }

    fn send(
        &mut self,
        token: usize,
        resp: &Response,
        wait: bool,
        registry: &Registry,
        now: Instant,
    ) {
        let Some(conn) = self.conns.get_mut(&token) else {
            return; // The client left before its job finished.
        };
        // A `list` reply is about as large as the last one.
        let listing = matches!(resp, Response::Units(_) | Response::Rows(_));
        let capacity = if listing { self.last_list_len } else { 0 };
        match protocol::encode_reply_sized(resp, self.version, conn.stable_reply, capacity) {
            // Moved, not copied: a `list` of 1000 units is a large frame.
            Ok(frame) if conn.wbuf.len() == conn.wpos => {
                if listing {
                    self.last_list_len = frame.len();
                }
                conn.wbuf = frame;
                conn.wpos = 0;
            }
            Ok(frame) => conn.wbuf.extend_from_slice(&frame),
            Err(e) => {
                log::warn!("cannot encode a reply: {e}");
                let fallback = Response::error(format!("reply too large to send: {e}"), None);
                if let Ok(frame) = protocol::encode_reply(&fallback, self.version, true) {
                    conn.wbuf.extend_from_slice(&frame);
                }
            }
        }
        conn.close_when_flushed = true;
        conn.wait_for_client |= wait;
        if matches!(resp, Response::Bye) && !self.handing.is_empty() {
            let mut fds = self.handing.clone();
            fds.extend(self.handing_lock.take());
            send_with_fds(conn, &fds);
        }
        if flush(conn, registry) {
            self.close(token, registry);
        } else {
            // A client that does not read its reply loses it.
            self.deadlines.push((token, Some(now + IO_TIMEOUT)));
        }
    }

    /// Deadlines set or cleared since the last call, oldest first.
    /// The client `token` follows `events` of `names` (all when empty).
    pub fn subscribe(&mut self, token: usize, names: Vec<String>) {
        if let Some(conn) = self.conns.get_mut(&token) {
            conn.subscription = Some(names);
        }
    }

    pub fn has_subscribers(&self) -> bool {
        self.conns
            .values()
            .any(|c| c.subscription.is_some() && !c.close_when_flushed)
    }

    /// Queues a state change for every client that follows it (sent at
    /// the end of the pass, [`Control::send_events`]). A client with
    /// [`EVENT_QUEUE_MAX`] unread is sent one last line saying it was
    /// dropped, then closed: it never slows anyone.
    pub fn broadcast(&mut self, rec: &EventRecord, now: Instant) {
        let frame = match protocol::encode_reply(&Response::Event(rec.clone()), self.version, false)
        {
            Ok(f) => f,
            Err(e) => {
                log::warn!("cannot encode an event: {e}");
                return;
            }
        };
        let mut dropped = Vec::new();
        for (&token, conn) in self.conns.iter_mut() {
            let wants = match &conn.subscription {
                Some(names) => names.is_empty() || names.contains(&rec.unit),
                None => false,
            };
            if !wants || conn.close_when_flushed {
                continue;
            }
            if unread(conn) + frame.len() > EVENT_QUEUE_MAX {
                dropped.push(token);
            } else {
                conn.wbuf.extend_from_slice(&frame);
            }
        }
        for token in dropped {
            self.drop_follower(token, now);
        }
    }

    /// After a pass: the events it queued go out, one write per client;
    /// a client left with more than [`EVENT_QUEUE_BYTES`] unread has
    /// [`IO_TIMEOUT`] to catch up ([`Control::timed_out`] drops it).
    pub fn send_events(&mut self, registry: &Registry, now: Instant) {
        let mut to_close = Vec::new();
        for (&token, conn) in self.conns.iter_mut() {
            if conn.subscription.is_none() || unread(conn) == 0 {
                continue;
            }
            if flush(conn, registry) {
                to_close.push(token);
            } else if !conn.behind && !conn.close_when_flushed && unread(conn) > EVENT_QUEUE_BYTES {
                conn.behind = true;
                self.deadlines.push((token, Some(now + IO_TIMEOUT)));
            }
        }
        for token in to_close {
            self.close(token, registry);
        }
    }

    /// An `events` client that does not keep up: its last line says so,
    /// then it is closed (SPEC §11: nobody else is slowed).
    fn drop_follower(&mut self, token: usize, now: Instant) {
        let Some(conn) = self.conns.get_mut(&token) else {
            return;
        };
        let queued = unread(conn);
        log::warn!("client {token}: events: dropped, {queued} bytes unread");
        let last = Response::error(
            format!("events: dropped by the daemon: this client did not keep up ({queued} bytes unread)"),
            Some("read the stream as it comes; run `diakonos events` again"),
        );
        if let Ok(f) = protocol::encode_reply(&last, self.version, false) {
            conn.wbuf.extend_from_slice(&f);
        }
        conn.close_when_flushed = true;
        conn.behind = false;
        self.deadlines.push((token, Some(now + IO_TIMEOUT)));
    }

    pub fn take_deadlines(&mut self) -> Vec<(usize, Option<Instant>)> {
        std::mem::take(&mut self.deadlines)
    }

    /// The client of `token` took too long: closes its connection (an
    /// `events` client that did not catch up is told first).
    pub fn timed_out(&mut self, token: usize, registry: &Registry, now: Instant) {
        if self.conns.get(&token).is_some_and(|c| c.behind) {
            self.drop_follower(token, now);
            return;
        }
        log::debug!("client {token}: timed out");
        self.close(token, registry);
    }

    /// Replies with an error for a bad frame, then closes.
    pub fn reject(&mut self, token: usize, err: &FrameError, registry: &Registry, now: Instant) {
        let (message, hint) = match err {
            FrameError::Version(v) => (
                format!(
                    "protocol version mismatch: client speaks {v}, daemon speaks {}",
                    self.version
                ),
                Some(
                    "a newer diakonos client hands the services over to its own daemon by itself; \
                     `diakonos daemon-upgrade` does it on request",
                ),
            ),
            _ => (err.to_string(), None),
        };
        log::warn!("client {token}: {message}");
        self.reply(token, &Response::error(message, hint), registry, now);
    }

    pub fn close(&mut self, token: usize, registry: &Registry) {
        self.deadlines.push((token, None));
        if let Some(mut conn) = self.conns.remove(&token) {
            let _ = registry.deregister(&mut conn.stream);
        }
    }

    /// Whether every queued reply has been written.
    pub fn all_flushed(&self) -> bool {
        self.conns
            .values()
            .all(|c| !c.close_when_flushed || c.wpos >= c.wbuf.len())
    }

    pub fn remove_socket(path: &Path) {
        let _ = std::fs::remove_file(path);
    }
}

/// What `conn` has queued and not yet written.
fn unread(conn: &Conn) -> usize {
    conn.wbuf.len() - conn.wpos
}

/// Reads until WouldBlock. Returns whether the peer closed its end. Input
/// after the one request is read and dropped; a frame that would not fit is
/// left for `take_frame` to refuse from its length prefix.
fn read_available(conn: &mut Conn) -> io::Result<bool> {
    let mut chunk = [0u8; 4096];
    loop {
        match conn.stream.read(&mut chunk) {
            Ok(0) => return Ok(true),
            Ok(n) => {
                if !conn.got_request {
                    conn.rbuf.extend_from_slice(&chunk[..n]);
                    if conn.rbuf.len() >= 4 {
                        // Stop buffering once a whole frame (or a refusable
                        // prefix) is in; the length check happens there.
                        let len = u32::from_le_bytes([
                            conn.rbuf[0],
                            conn.rbuf[1],
                            conn.rbuf[2],
                            conn.rbuf[3],
                        ]) as usize;
                        if len > MAX_FRAME || conn.rbuf.len() >= 4 + len {
                            return Ok(false);
                        }
                    }
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Writes what it can. Returns true when the connection should close now.
/// Sends what `conn` has to write with `fds` attached to its first byte,
/// when nothing of it went out yet (else the descriptors are not sent).
/// Whatever the socket does not take now is left for [`flush`].
fn send_with_fds(conn: &mut Conn, fds: &[std::os::fd::RawFd]) {
    use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
    use std::os::fd::AsRawFd;
    if conn.wpos != 0 || conn.wbuf.is_empty() {
        return;
    }
    let iov = [io::IoSlice::new(&conn.wbuf)];
    let cmsg = [ControlMessage::ScmRights(fds)];
    let fd = conn.stream.as_raw_fd();
    match sendmsg::<()>(fd, &iov, &cmsg, MsgFlags::MSG_NOSIGNAL, None) {
        Ok(n) => conn.wpos = n,
        Err(e) => log::warn!("cannot pass the sockets and lock to the next daemon: {e}"),
    }
}

fn flush(conn: &mut Conn, registry: &Registry) -> bool {
    while conn.wpos < conn.wbuf.len() {
        match conn.stream.write(&conn.wbuf[conn.wpos..]) {
            Ok(0) => return true,
            Ok(n) => conn.wpos += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                // The client reads slowly (or never): wait for it to drain,
                // holding only this one reply.
                if !conn.writable_registered {
                    conn.writable_registered = true;
                    let interest = Interest::READABLE | Interest::WRITABLE;
                    if registry
                        .reregister(&mut conn.stream, conn.token, interest)
                        .is_err()
                    {
                        return true;
                    }
                }
                return false;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return true,
        }
    }
    conn.close_when_flushed && !conn.wait_for_client
}
