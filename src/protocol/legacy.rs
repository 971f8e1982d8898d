//! Protocol 1, the wire form of the release before the stable envelope
//! (diakonos 0.1, commit `34c8f3e`): just enough of it to recognise such a
//! daemon, ask it for its status (which also makes it write its state
//! file) and `kill` it, so a client of this binary can hand it over (SPEC
//! §17) even though protocol 1 has no hand-over request.
//!
//! Protocol 1 frames are the same `u32` length prefix, but the bodies have
//! no envelope:
//!
//! - a request is `MAGIC`, the version (varint `1`), an
//!   `Option<PathBuf>` service dir and a `Request` (bincode 2 standard:
//!   the variant index as a varint, then its fields);
//! - a reply is a bare `Response`: its variant index, then its fields.
//!   Nothing in it says which version sent it.
//!
//! A protocol-1 daemon answers a request of any other version, whatever
//! it holds (a stable request of ours is "version 0"), with
//! `Response::Error` whose message is exactly `protocol version mismatch:
//! client speaks N, daemon speaks 1`. [`refusal`] recognises that reply and
//! nothing else, so garbage is never taken for an old daemon.

use std::path::PathBuf;

use serde::de::DeserializeOwned;
use serde::Deserialize;

use super::{DaemonInfo, FrameError, MAGIC, MAX_REPLY};

/// The protocol version this module speaks.
pub const V1: u32 = 1;

/// The protocol-1 requests this binary sends (their variant indices in
/// protocol 1's `Request`, which never changes now).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum V1Request {
    /// `daemon-status`. Answered only after the daemon wrote its state
    /// file (protocol 1 writes it, when changed, before every reply).
    DaemonStatus = 5,
    /// `kill`: stop every service, then exit.
    Kill = 9,
}

/// Protocol 1's `Response` variant indices that this module decodes.
const V1_DAEMON: u8 = 2;
const V1_BYE: u8 = 5;
const V1_ERROR: u8 = 6;

/// Protocol 1's state names, in the order of its `StateName` enum.
const V1_STATES: [&str; 9] = [
    "inactive",
    "waiting",
    "starting",
    "running",
    "stopping",
    "restarting",
    "exited",
    "failed",
    "invalid",
];

/// A protocol-1 request as a complete frame (no service dir: a protocol-1
/// daemon refuses one that differs from its own, and these requests do
/// not depend on it).
pub fn encode_request(req: V1Request) -> Vec<u8> {
    let mut body = MAGIC.to_vec();
    // Every varint here is below 251, so it is one byte (bincode standard).
    body.extend_from_slice(&[V1 as u8, 0, req as u8]);
    let mut frame = (body.len() as u32).to_le_bytes().to_vec();
    frame.extend_from_slice(&body);
    frame
}

/// A protocol-1 reply this binary understands.
#[derive(Debug, Clone, PartialEq)]
pub enum V1Reply {
    /// `daemon-status`, converted to this version's form (`protocol` 1).
    Daemon(DaemonInfo),
    /// The daemon is exiting.
    Bye,
    Error {
        message: String,
        hint: Option<String>,
    },
}

/// Protocol 1's `DaemonInfo`, field for field.
#[derive(Deserialize)]
struct V1DaemonInfo {
    pid: u32,
    version: String,
    uptime_secs: u64,
    home: PathBuf,
    service_dir: PathBuf,
    /// State as protocol 1's `StateName` variant index.
    units: Vec<(u32, u32)>,
    rss_bytes: u64,
}

/// Decodes a whole protocol-1 reply body; bytes left over, or a reply of a
/// kind this module does not know, are errors.
pub fn decode_reply(body: &[u8]) -> Result<V1Reply, FrameError> {
    let (&variant, rest) = body
        .split_first()
        .ok_or_else(|| FrameError::Malformed("empty reply".into()))?;
    match variant {
        V1_DAEMON => {
            let info: V1DaemonInfo = decode_whole(rest)?;
            let mut units = Vec::with_capacity(info.units.len());
            for (state, count) in info.units {
                let name = V1_STATES.get(state as usize).ok_or_else(|| {
                    FrameError::Malformed(format!("protocol 1 has no state {state}"))
                })?;
                units.push(((*name).to_owned(), count));
            }
            Ok(V1Reply::Daemon(DaemonInfo {
                pid: info.pid,
                version: info.version,
                uptime_secs: info.uptime_secs,
                home: info.home,
                service_dir: info.service_dir,
                units,
                rss_bytes: info.rss_bytes,
                protocol: V1,
                services: None,
                output_to_daemon: false,
            }))
        }
        V1_BYE if rest.is_empty() => Ok(V1Reply::Bye),
        V1_ERROR => {
            let (message, hint) = decode_whole(rest)?;
            Ok(V1Reply::Error { message, hint })
        }
        other => Err(FrameError::Malformed(format!(
            "not a protocol 1 reply this client knows (variant {other})"
        ))),
    }
}

/// The version a daemon of protocol 1 (or another envelope-less version)
/// names in its refusal of a request of another version, if `body` is
/// exactly such a refusal.
pub fn refusal(body: &[u8]) -> Option<u32> {
    let V1Reply::Error { message, .. } = decode_reply(body).ok()? else {
        return None;
    };
    let rest = message.strip_prefix("protocol version mismatch: client speaks ")?;
    let (client, daemon) = rest.split_once(", daemon speaks ")?;
    client.parse::<u32>().ok()?;
    daemon.parse::<u32>().ok().filter(|&v| v == V1)
}

fn decode_whole<T: DeserializeOwned>(body: &[u8]) -> Result<T, FrameError> {
    let config = bincode::config::standard().with_limit::<MAX_REPLY>();
    match bincode::serde::decode_from_slice::<T, _>(body, config) {
        Ok((value, used)) if used == body.len() => Ok(value),
        Ok((_, used)) => Err(FrameError::Malformed(format!(
            "{} trailing bytes",
            body.len() - used
        ))),
        Err(e) => Err(FrameError::Malformed(super::frame::plain(&e))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Serialize;

    /// Protocol 1's types as that release declared them (variant order
    /// matters), to produce the exact bytes such a daemon sends.
    #[derive(Serialize)]
    #[allow(dead_code)]
    enum Request {
        List,
        Start(Vec<String>),
        Stop(Vec<String>),
        Restart(Vec<String>),
        Status(String),
        DaemonStatus,
        Reload,
        Enable(Vec<String>),
        Disable(Vec<String>),
        Kill,
    }

    #[derive(Serialize)]
    struct RequestFrame {
        magic: [u8; 4],
        version: u32,
        service_dir: Option<PathBuf>,
        request: Request,
    }

    #[derive(Serialize)]
    #[allow(dead_code)]
    enum StateName {
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

    #[derive(Serialize)]
    struct DaemonInfo1 {
        pid: u32,
        version: String,
        uptime_secs: u64,
        home: PathBuf,
        service_dir: PathBuf,
        units: Vec<(StateName, u32)>,
        rss_bytes: u64,
    }

    #[derive(Serialize)]
    #[allow(dead_code)]
    enum Response {
        Units(Vec<()>),
        Status(()),
        Daemon(DaemonInfo1),
        Job(Vec<()>),
        Reloaded(()),
        Bye,
        Error {
            message: String,
            hint: Option<String>,
        },
    }

    fn body<T: Serialize>(value: &T) -> Vec<u8> {
        let mut frame = super::super::encode_frame(value, MAX_REPLY).unwrap();
        frame.drain(..4);
        frame
    }

    #[test]
    fn requests_are_protocol_1_frames() {
        // The requests we send are byte for byte what a protocol-1 client sent.
        for (ours, theirs) in [
            (V1Request::DaemonStatus, Request::DaemonStatus),
            (V1Request::Kill, Request::Kill),
        ] {
            let frame = super::super::encode_frame(
                &RequestFrame {
                    magic: MAGIC,
                    version: 1,
                    service_dir: None,
                    request: theirs,
                },
                MAX_REPLY,
            )
            .unwrap();
            assert_eq!(encode_request(ours), frame, "{ours:?}");
        }
    }

    #[test]
    fn the_version_refusal_of_a_protocol_1_daemon_is_recognised() {
        // A protocol-1 daemon's refusal names version 1; other errors, other versions, garbage and our own replies do not.
        let refusal_of = |message: &str| {
            refusal(&body(&Response::Error {
                message: message.into(),
                hint: Some(
                    "the daemon runs another diakonos version: run `diakonos kill`, then retry"
                        .into(),
                ),
            }))
        };
        assert_eq!(
            refusal_of("protocol version mismatch: client speaks 0, daemon speaks 1"),
            Some(1)
        );
        assert_eq!(
            refusal_of("protocol version mismatch: client speaks 2, daemon speaks 1"),
            Some(1)
        );
        assert_eq!(
            refusal_of("protocol version mismatch: client speaks 2, daemon speaks 7"),
            None
        );
        assert_eq!(refusal_of("the daemon manages /a, not /b"), None);
        let mut padded = body(&Response::Error {
            message: "protocol version mismatch: client speaks 0, daemon speaks 1".into(),
            hint: None,
        });
        assert_eq!(refusal(&padded), Some(1));
        padded.push(0);
        assert_eq!(refusal(&padded), None, "trailing bytes");
        assert_eq!(refusal(&[]), None);
        assert_eq!(refusal(&[V1_ERROR, 200]), None);
        let ours = super::super::encode_reply(&super::super::Response::Bye, 2, true).unwrap();
        assert_eq!(refusal(&ours[4..]), None);
    }

    #[test]
    fn daemon_status_and_bye_of_protocol_1_decode() {
        // A protocol-1 daemon-status becomes this version's DaemonInfo (protocol 1, state names); Bye is Bye.
        let reply = body(&Response::Daemon(DaemonInfo1 {
            pid: 42,
            version: "0.1.0".into(),
            uptime_secs: 7,
            home: PathBuf::from("/h"),
            service_dir: PathBuf::from("/s"),
            units: vec![(StateName::Running, 2), (StateName::Failed, 1)],
            rss_bytes: 1024,
        }));
        assert_eq!(
            decode_reply(&reply),
            Ok(V1Reply::Daemon(DaemonInfo {
                pid: 42,
                version: "0.1.0".into(),
                uptime_secs: 7,
                home: PathBuf::from("/h"),
                service_dir: PathBuf::from("/s"),
                units: vec![("running".into(), 2), ("failed".into(), 1)],
                rss_bytes: 1024,
                protocol: 1,
                services: None,
                output_to_daemon: false,
            }))
        );
        assert_eq!(decode_reply(&body(&Response::Bye)), Ok(V1Reply::Bye));
        assert!(decode_reply(&body(&Response::Units(vec![]))).is_err());
        let mut bad_state = reply.clone();
        // The body ends with the units [(3, 2), (7, 1)], then rss 1024 (varint: 251 and a u16).
        let at = bad_state.len() - 7;
        assert_eq!(bad_state[at], 3, "{bad_state:?}");
        bad_state[at] = 99;
        assert!(decode_reply(&bad_state).is_err());
    }
}
