//! Network health probes (SPEC §10): a non-blocking connect, and for Http one
//! small `GET` judged on its status line. Each probe in flight owns one
//! token, `FIRST_PROBE_TOKEN + service id` (at most one probe per unit is
//! out). Timeouts are the supervisor's: it sends `Effect::ProbeCancel`.
//! Exec probes are children, started by the supervisor through `Sys`.

use crate::hash::HashMap;
use std::io::{self, Read, Write};
use std::time::Instant;

use mio::net::TcpStream;
use mio::{Interest, Registry, Token};

use crate::daemon::supervisor::{Input, Supervisor};
use crate::graph::ServiceId;
use crate::unit::Probe;

/// Tokens of probes: below the pidfds (2^40), far above client connections.
pub const FIRST_PROBE_TOKEN: usize = 1 << 38;
/// A status line longer than this is not one.
const MAX_STATUS_LINE: usize = 512;

enum Phase {
    Connecting,
    /// Http: the request, and how much of it is written.
    Writing(Vec<u8>, usize),
    /// Http: the start of the response.
    Reading(Vec<u8>),
}

struct Conn {
    gen: u64,
    stream: TcpStream,
    http: Option<(u16, u16)>,
    /// Http: the request to send once connected.
    request: Option<Vec<u8>>,
    phase: Phase,
}

#[derive(Default)]
pub struct Probes {
    conns: HashMap<ServiceId, Conn>,
}

impl Probes {
    pub fn owns(token: Token) -> bool {
        (FIRST_PROBE_TOKEN..FIRST_PROBE_TOKEN * 2).contains(&token.0)
    }

    /// Starts a probe; an answer that comes at once (cannot connect) is
    /// returned. (Out of line: kept out of the code every daemon runs, the
    /// layout's first part.)
    #[inline(never)]
    pub fn start(
        &mut self,
        id: ServiceId,
        gen: u64,
        probe: &Probe,
        expect: (u16, u16),
        registry: &Registry,
    ) -> Option<Input> {
        self.cancel(id, registry);
        let (addr, http) = match probe {
            Probe::Tcp(addr) => (*addr, None),
            Probe::Http { addr, host, path } => {
                let req = format!(
                    "GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: diakonos\r\nConnection: close\r\n\r\n"
                );
                (*addr, Some((expect, req.into_bytes())))
            }
            Probe::Exec(_) => return None,
        };
        let fail = |e: io::Error| Input::ProbeDone {
            id,
            gen,
            outcome: Err(format!("cannot connect to {addr}: {e}")),
        };
        let mut stream = match TcpStream::connect(addr) {
            Ok(s) => s,
            Err(e) => return Some(fail(e)),
        };
        let token = Token(FIRST_PROBE_TOKEN + id);
        if let Err(e) =
            registry.register(&mut stream, token, Interest::READABLE | Interest::WRITABLE)
        {
            return Some(fail(e));
        }
        let (http, request) = match http {
            Some((expect, req)) => (Some(expect), Some(req)),
            None => (None, None),
        };
        self.conns.insert(
            id,
            Conn {
                gen,
                stream,
                http,
                request,
                phase: Phase::Connecting,
            },
        );
        None
    }

    /// Drops the probe of `id`, if one is out.
    pub fn cancel(&mut self, id: ServiceId, registry: &Registry) {
        if let Some(mut c) = self.conns.remove(&id) {
            let _ = registry.deregister(&mut c.stream);
        }
    }

    /// Readiness of a probe's socket: moves it on, and feeds its result.
    pub fn on_ready(
        &mut self,
        token: Token,
        sup: &mut Supervisor,
        registry: &Registry,
        now: Instant,
    ) {
        let id = token.0 - FIRST_PROBE_TOKEN;
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        let Some(outcome) = advance(c) else {
            return;
        };
        let gen = c.gen;
        self.cancel(id, registry);
        sup.handle(Input::ProbeDone { id, gen, outcome }, now);
    }
}

/// Moves a probe as far as its socket allows: None while it waits.
fn advance(c: &mut Conn) -> Option<Result<String, String>> {
    loop {
        match &mut c.phase {
            Phase::Connecting => {
                match c.stream.take_error() {
                    Ok(Some(e)) | Err(e) => return Some(Err(format!("cannot connect: {e}"))),
                    Ok(None) => {}
                }
                match c.stream.peer_addr() {
                    Ok(_) => {}
                    Err(e)
                        if e.kind() == io::ErrorKind::NotConnected
                            || e.kind() == io::ErrorKind::WouldBlock =>
                    {
                        return None
                    }
                    Err(e) => return Some(Err(format!("cannot connect: {e}"))),
                }
                match c.request.take() {
                    Some(req) => c.phase = Phase::Writing(req, 0),
                    None => return Some(Ok("connected".to_owned())),
                }
            }
            Phase::Writing(req, at) => {
                while *at < req.len() {
                    match c.stream.write(&req[*at..]) {
                        Ok(0) => return Some(Err("connection closed while sending".to_owned())),
                        Ok(n) => *at += n,
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return None,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => return Some(Err(format!("cannot send the request: {e}"))),
                    }
                }
                c.phase = Phase::Reading(Vec::new());
            }
            Phase::Reading(buf) => {
                let mut chunk = [0u8; 256];
                let range = c.http.unwrap_or((200, 399));
                loop {
                    if let Some(verdict) = response(buf, false, range) {
                        return Some(verdict);
                    }
                    match c.stream.read(&mut chunk) {
                        Ok(0) => return response(buf, true, range),
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return None,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => return Some(Err(format!("cannot read the response: {e}"))),
                    }
                }
            }
        }
    }
}

/// What the start of a response read so far says, against the accepted
/// range of status codes: None to read on, else the verdict (always one
/// once `closed`, the server having closed the connection).
pub fn response(buf: &[u8], closed: bool, range: (u16, u16)) -> Option<Result<String, String>> {
    if let Some(line) = status_line(buf) {
        return Some(judge(&line, range));
    }
    if buf.len() > MAX_STATUS_LINE {
        return Some(Err("no HTTP status line".to_owned()));
    }
    if !closed {
        return None;
    }
    Some(match status_line_at_eof(buf) {
        Some(line) => judge(&line, range),
        None => Err("connection closed before a status line".to_owned()),
    })
}

fn status_line(buf: &[u8]) -> Option<String> {
    let end = buf.windows(2).position(|w| w == b"\r\n")?;
    Some(String::from_utf8_lossy(&buf[..end]).into_owned())
}

fn status_line_at_eof(buf: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(buf);
    let line = text.lines().next()?.trim().to_owned();
    (!line.is_empty()).then_some(line)
}

/// `HTTP/1.1 503 Service Unavailable` against the accepted range.
pub fn judge(line: &str, (lo, hi): (u16, u16)) -> Result<String, String> {
    let mut words = line.split_whitespace();
    let code = match (words.next(), words.next()) {
        // A status code is three digits (RFC 9112), not `4404`, `+200` or `99`.
        (Some(v), Some(code))
            if v.starts_with("HTTP/")
                && code.len() == 3
                && code.bytes().all(|b| b.is_ascii_digit()) =>
        {
            code.parse::<u16>().ok()
        }
        _ => None,
    };
    match code {
        Some(code) if (lo..=hi).contains(&code) => Ok(format!("HTTP {code:03}")),
        Some(code) => Err(format!("HTTP {code:03}")),
        None => Err(format!("not an HTTP status line: {}", printable(line))),
    }
}

/// The start of what a server sent, for one line of `status`: control
/// characters escaped (`\u{1b}`), about 60 characters at most.
fn printable(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if out.len() >= 60 {
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines_are_judged_against_the_range() {
        assert_eq!(judge("HTTP/1.1 200 OK", (200, 399)), Ok("HTTP 200".into()));
        assert_eq!(
            judge("HTTP/1.0 503 Busy", (200, 399)),
            Err("HTTP 503".into())
        );
        assert_eq!(judge("HTTP/1.1 204", (204, 204)), Ok("HTTP 204".into()));
        assert!(judge("SSH-2.0-OpenSSH", (200, 399)).is_err());
    }

    #[test]
    fn what_a_server_sent_is_shown_on_one_printable_line() {
        // Found by the http_status fuzz target: control characters of a non-HTTP
        // answer went raw into the verdict `status` shows (a \n split it).
        assert_eq!(
            response(b"SSH-2.0\x01\0\0\x0enSSH_9.2\r\n", false, (200, 399)),
            Some(Err(
                "not an HTTP status line: SSH-2.0\\u{1}\\u{0}\\u{0}\\u{e}nSSH_9.2".into()
            ))
        );
        assert_eq!(
            response(b"220 mail\nready\x1b[2J\r\n", false, (200, 399)),
            Some(Err(
                "not an HTTP status line: 220 mail\\nready\\u{1b}[2J".into()
            ))
        );
        let long = "\x07".repeat(100) + "\r\n";
        let text = response(long.as_bytes(), false, (200, 399)).expect("a verdict");
        assert!(text.unwrap_err().len() < 100);
    }

    #[test]
    fn a_status_code_is_three_digits() {
        // Found by the http_status fuzz target: `HTTP/2 4404` was judged as code 4404
        // (and `+200` as 200).
        for line in [
            "HTTP/2 4404 NotFound",
            "HTTP/1.1 +200 OK",
            "HTTP/1.1 99",
            "HTTP/1.1 0200",
        ] {
            assert_eq!(
                judge(line, (0, u16::MAX)),
                Err(format!("not an HTTP status line: {line}")),
                "{line}"
            );
        }
    }
}
