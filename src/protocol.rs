//! The wire contract between client and daemon (SPEC §8): request and reply
//! types, [`PROTOCOL_VERSION`], and length-prefixed bincode frames.
//!
//! A frame is a `u32` little-endian length followed by a bincode 2 body
//! (standard config, serde). Lengths over [`MAX_FRAME`] are refused before
//! anything is allocated. Every request starts with the protocol version so a
//! daemon can answer a client of another version with a clear error instead
//! of a decode failure.

use std::io::{self, Read};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Bump whenever any type in this module changes shape.
pub const PROTOCOL_VERSION: u32 = 1;
/// The largest request body the daemon accepts (SPEC §8).
pub const MAX_FRAME: usize = 1 << 20;
/// The largest reply body: a `list` of many thousand units is larger than
/// any request, and comes from the trusted side.
pub const MAX_REPLY: usize = 64 << 20;

/// bincode's standard config, with a decode limit so a lying length inside a
/// payload cannot make us allocate more than a frame's worth.
fn config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<MAX_FRAME>()
}

fn reply_config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<MAX_REPLY>()
}

/// Every request body starts with these bytes, then the version: together
/// they tell "another diakonos version" apart from garbage.
pub const MAGIC: [u8; 4] = *b"DKNS";

/// What the client sends: magic and version first, always.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestFrame {
    pub magic: [u8; 4],
    pub version: u32,
    /// The service dir the user named (absolute), if any; the daemon refuses
    /// requests naming a different one than its own.
    pub service_dir: Option<PathBuf>,
    pub request: Request,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    List,
    Start(Vec<String>),
    Stop(Vec<String>),
    Restart(Vec<String>),
    Status(String),
    DaemonStatus,
    Reload,
    Enable(Vec<String>),
    Disable(Vec<String>),
    /// Stop every service, then exit.
    Kill,
}

/// The states of SPEC §4, as they appear on the wire and in JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StateName {
    Inactive,
    Waiting,
    Starting,
    Running,
    Stopping,
    Restarting,
    Exited,
    Failed,
    Invalid,
}

impl StateName {
    pub fn as_str(self) -> &'static str {
        match self {
            StateName::Inactive => "inactive",
            StateName::Waiting => "waiting",
            StateName::Starting => "starting",
            StateName::Running => "running",
            StateName::Stopping => "stopping",
            StateName::Restarting => "restarting",
            StateName::Exited => "exited",
            StateName::Failed => "failed",
            StateName::Invalid => "invalid",
        }
    }
}

/// How a process ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LastExit {
    Code(i32),
    /// Signal name, e.g. "SIGKILL".
    Signal(String),
    /// The process was adopted after a daemon restart and its status could not be known.
    Unknown(()),
}

/// One row of `list`, and the core of `status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnitInfo {
    pub name: String,
    pub state: StateName,
    pub pid: Option<u32>,
    pub uptime_secs: Option<u64>,
    pub restarts: u32,
    pub description: String,
    pub last_exit: Option<LastExit>,
    /// Why it is failed or invalid, or why it is restarting.
    pub reason: Option<String>,
    /// While `restarting`: the launch that comes next.
    pub next_attempt: Option<NextAttempt>,
}

/// The next launch of a `restarting` unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct NextAttempt {
    /// Launches since the last explicit start or restart, this one included
    /// (the explicit start is attempt 1).
    pub attempt: u32,
    /// How long until it, in milliseconds.
    pub in_ms: u64,
}

/// `status NAME`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnitStatus {
    pub info: UnitInfo,
    pub path: PathBuf,
    pub kind: String,
    pub enabled: bool,
    pub requires: Vec<String>,
    pub wants: Vec<String>,
    pub after: Vec<String>,
    pub required_by: Vec<String>,
    pub log_path: PathBuf,
}

/// `daemon-status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DaemonInfo {
    pub pid: u32,
    pub version: String,
    pub uptime_secs: u64,
    pub home: PathBuf,
    pub service_dir: PathBuf,
    /// Count per state, only states with at least one unit.
    pub units: Vec<(StateName, u32)>,
    pub rss_bytes: u64,
}

/// The outcome of one unit in a start/stop/restart/enable/disable job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobResult {
    pub name: String,
    pub ok: bool,
    pub state: StateName,
    /// On failure: why. On success: an optional remark ("already running").
    pub message: Option<String>,
}

/// What `reload` changed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReloadReport {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub changed: Vec<String>,
    /// Unit name and the error that stops its new file loading.
    pub invalid: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Response {
    Units(Vec<UnitInfo>),
    Status(Box<UnitStatus>),
    Daemon(DaemonInfo),
    Job(Vec<JobResult>),
    Reloaded(ReloadReport),
    /// The daemon is exiting now that every service is stopped.
    Bye,
    /// The request could not be carried out; one line, plus an optional hint.
    Error {
        message: String,
        hint: Option<String>,
    },
}

impl Response {
    pub fn error(message: impl Into<String>, hint: Option<&str>) -> Response {
        Response::Error {
            message: message.into(),
            hint: hint.map(str::to_owned),
        }
    }
}

/// Serialises `value` into a complete frame (length prefix included) whose
/// body may be at most `max` bytes.
pub fn encode_frame<T: Serialize>(value: &T, max: usize) -> io::Result<Vec<u8>> {
    let mut frame = vec![0u8; 4];
    bincode::serde::encode_into_std_write(value, &mut frame, reply_config())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
    let len = frame.len() - 4;
    if len > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("frame of {len} bytes is over the {max}-byte limit"),
        ));
    }
    frame[..4].copy_from_slice(&(len as u32).to_le_bytes());
    Ok(frame)
}

/// Why bytes from a peer could not become a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// The length prefix announces more than [`MAX_FRAME`].
    TooLarge(u64),
    /// The body is not a valid message.
    Malformed(String),
    /// A well-formed request from a client speaking another protocol version.
    Version(u32),
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameError::TooLarge(n) => {
                write!(f, "frame of {n} bytes is over the {MAX_FRAME}-byte limit")
            }
            FrameError::Malformed(e) => write!(f, "malformed frame: {e}"),
            FrameError::Version(v) => write!(
                f,
                "protocol version mismatch: client speaks {v}, daemon speaks {PROTOCOL_VERSION}"
            ),
        }
    }
}

/// Takes one complete frame body off the front of `buf`, if it holds one.
/// `Ok(None)` means "wait for more bytes".
pub fn take_frame(buf: &mut Vec<u8>) -> Result<Option<Vec<u8>>, FrameError> {
    let Some(prefix) = buf.get(..4) else {
        return Ok(None);
    };
    let len = u32::from_le_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]) as usize;
    if len > MAX_FRAME {
        return Err(FrameError::TooLarge(len as u64));
    }
    if buf.len() < 4 + len {
        return Ok(None);
    }
    let body = buf[4..4 + len].to_vec();
    buf.drain(..4 + len);
    Ok(Some(body))
}

/// Decodes a request body, telling a version mismatch apart from garbage.
pub fn decode_request(body: &[u8]) -> Result<RequestFrame, FrameError> {
    // A request of any version starts with the magic and its version number.
    let (magic, version) =
        match bincode::serde::decode_from_slice::<([u8; 4], u32), _>(body, config()) {
            Ok(((magic, version), _)) => (magic, version),
            Err(e) => return Err(FrameError::Malformed(e.to_string())),
        };
    if magic != MAGIC {
        return Err(FrameError::Malformed("not a diakonos request".into()));
    }
    if version != PROTOCOL_VERSION {
        return Err(FrameError::Version(version));
    }
    match bincode::serde::decode_from_slice::<RequestFrame, _>(body, config()) {
        Ok((frame, used)) if used == body.len() => Ok(frame),
        Ok((_, used)) => Err(FrameError::Malformed(format!(
            "{} trailing bytes",
            body.len() - used
        ))),
        Err(e) => Err(FrameError::Malformed(e.to_string())),
    }
}

pub fn decode_response(body: &[u8]) -> Result<Response, FrameError> {
    bincode::serde::decode_from_slice::<Response, _>(body, reply_config())
        .map(|(r, _)| r)
        .map_err(|e| FrameError::Malformed(e.to_string()))
}

/// Blocking read of one frame body of at most `max` bytes (the client side;
/// replies may be larger than requests).
pub fn read_frame(r: &mut impl Read, max: usize) -> io::Result<Vec<u8>> {
    let mut prefix = [0u8; 4];
    r.read_exact(&mut prefix)?;
    let len = u32::from_le_bytes(prefix) as usize;
    if len > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            FrameError::TooLarge(len as u64).to_string(),
        ));
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body)?;
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(r: Request) -> RequestFrame {
        RequestFrame {
            magic: MAGIC,
            version: PROTOCOL_VERSION,
            service_dir: Some(PathBuf::from("/srv/units")),
            request: r,
        }
    }

    #[test]
    fn request_round_trips_through_a_frame() {
        // A request encoded as a frame decodes to the same request.
        let req = request(Request::Start(vec!["web".into(), "db".into()]));
        let mut buf = encode_frame(&req, MAX_FRAME).unwrap();
        let body = take_frame(&mut buf).unwrap().unwrap();
        assert!(buf.is_empty());
        assert_eq!(decode_request(&body).unwrap(), req);
    }

    #[test]
    fn partial_frames_wait_for_more_bytes() {
        // Every strict prefix of a frame is "not yet", never an error.
        let frame = encode_frame(&request(Request::List), MAX_FRAME).unwrap();
        for cut in 0..frame.len() {
            let mut buf = frame[..cut].to_vec();
            assert_eq!(take_frame(&mut buf), Ok(None), "cut at {cut}");
        }
    }

    #[test]
    fn oversized_length_is_refused_before_allocating() {
        // A 4 GiB length prefix is an error as soon as the prefix is in.
        let mut buf = vec![0xff, 0xff, 0xff, 0xff, 1, 2];
        assert_eq!(
            take_frame(&mut buf),
            Err(FrameError::TooLarge(u32::MAX as u64))
        );
    }

    #[test]
    fn two_frames_in_one_buffer_come_out_in_order() {
        // Bytes of several frames read at once are split correctly.
        let mut buf = encode_frame(&request(Request::List), MAX_FRAME).unwrap();
        buf.extend(encode_frame(&request(Request::Kill), MAX_FRAME).unwrap());
        let a = take_frame(&mut buf).unwrap().unwrap();
        let b = take_frame(&mut buf).unwrap().unwrap();
        assert_eq!(decode_request(&a).unwrap().request, Request::List);
        assert_eq!(decode_request(&b).unwrap().request, Request::Kill);
    }

    #[test]
    fn other_version_is_reported_as_version_mismatch() {
        // A request from a newer client is a version error, not garbage.
        let mut req = request(Request::List);
        req.version = PROTOCOL_VERSION + 1;
        let mut buf = encode_frame(&req, MAX_FRAME).unwrap();
        let body = take_frame(&mut buf).unwrap().unwrap();
        assert_eq!(
            decode_request(&body),
            Err(FrameError::Version(PROTOCOL_VERSION + 1))
        );
    }

    #[test]
    fn garbage_is_malformed_not_a_panic() {
        // Random bytes of many lengths decode to errors.
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for len in 0..512 {
            let body: Vec<u8> = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    seed as u8
                })
                .collect();
            let _ = decode_request(&body);
            let _ = decode_response(&body);
        }
        assert!(matches!(
            decode_request(&[0xff; 8]),
            Err(FrameError::Malformed(_))
        ));
    }

    #[test]
    fn responses_round_trip() {
        // Every response shape survives encoding.
        let resp = Response::Units(vec![UnitInfo {
            name: "web".into(),
            state: StateName::Running,
            pid: Some(42),
            uptime_secs: Some(3),
            restarts: 1,
            description: "d".into(),
            last_exit: Some(LastExit::Signal("SIGKILL".into())),
            reason: None,
            next_attempt: Some(NextAttempt {
                attempt: 3,
                in_ms: 1500,
            }),
        }]);
        let mut buf = encode_frame(&resp, MAX_REPLY).unwrap();
        let body = take_frame(&mut buf).unwrap().unwrap();
        assert_eq!(decode_response(&body).unwrap(), resp);
    }
}
