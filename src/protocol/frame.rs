//! Frames on the wire: a 4-byte little-endian length, then a bincode body
//! (SPEC §8); encoding requests and replies (a stable reply for a client of
//! another version), taking frames out of a buffer, decoding them with
//! errors as data ([`FrameError`]).

use super::*;

/// Serialises `value` into a complete frame (length prefix included) whose
/// body may be at most `max` bytes.
pub fn encode_frame<T: Serialize>(value: &T, max: usize) -> io::Result<Vec<u8>> {
    encode_body(&[], value, max)
}

/// A frame whose body is `prefix` then `value`.
pub(super) fn encode_body<T: Serialize>(
    prefix: &[u8],
    value: &T,
    max: usize,
) -> io::Result<Vec<u8>> {
    encode_body_sized(prefix, value, max, 0)
}

fn encode_body_sized<T: Serialize>(
    prefix: &[u8],
    value: &T,
    max: usize,
    capacity: usize,
) -> io::Result<Vec<u8>> {
    let mut frame = Vec::with_capacity(capacity.clamp(64, MAX_REPLY + 64));
    frame.extend_from_slice(&[0u8; 4]);
    frame.extend_from_slice(prefix);
    bincode::serde::encode_into_std_write(value, &mut frame, reply_config()).map_err(|e| {
        // Not bincode's Display: it is its Debug form, kilobytes of code.
        let what = match e {
            bincode::error::EncodeError::Io { inner, .. } => return inner,
            _ => "a value has no encoding",
        };
        io::Error::new(io::ErrorKind::InvalidData, what)
    })?;
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

/// A request as a complete frame: the stable form for `kill`,
/// `daemon-status` and the hand-over, else the versioned form of
/// `frame.version` (wire rules 3 and 4).
pub fn encode_request(frame: &RequestFrame) -> io::Result<Vec<u8>> {
    match frame.request.stable_op() {
        Some(op) => encode_frame(
            &StableRequest {
                magic: MAGIC,
                version: STABLE,
                op,
                service_dir: frame.service_dir.clone(),
            },
            MAX_FRAME,
        ),
        None => encode_frame(frame, MAX_FRAME),
    }
}

/// A reply as a complete frame from a daemon of `version`: a [`Response`]
/// when `stable` is false (the request was of `version`), else its
/// [`StableReply`] form (wire rule 5).
pub fn encode_reply(resp: &Response, version: u32, stable: bool) -> io::Result<Vec<u8>> {
    encode_reply_sized(resp, version, stable, 0)
}

/// [`encode_reply`] into a buffer of `capacity` bytes from the start (the
/// daemon passes the size of its last reply: a large frame grown step by
/// step is one fresh mapping and copy per doubling).
pub fn encode_reply_sized(
    resp: &Response,
    version: u32,
    stable: bool,
    capacity: usize,
) -> io::Result<Vec<u8>> {
    let mut prefix = header(version);
    if stable {
        prefix.push(REPLY_STABLE);
        encode_body_sized(
            &prefix,
            &StableReply::from_response(resp),
            MAX_REPLY,
            capacity,
        )
    } else {
        prefix.push(REPLY_CURRENT);
        encode_body_sized(&prefix, resp, MAX_REPLY, capacity)
    }
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
            FrameError::Version(v) => write!(f, "protocol version mismatch: client speaks {v}"),
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

/// Decodes a request body for a daemon speaking `version`, telling a
/// version mismatch apart from garbage. A stable request decodes whatever
/// `version` is, with [`RequestFrame::version`] set to [`STABLE`].
pub fn decode_request(body: &[u8], version: u32) -> Result<RequestFrame, FrameError> {
    // A request of any version starts with the magic and its version number.
    let (magic, sent) = match bincode::serde::decode_from_slice::<([u8; 4], u32), _>(body, config())
    {
        Ok(((magic, sent), _)) => (magic, sent),
        Err(e) => return Err(FrameError::Malformed(plain(&e))),
    };
    if magic != MAGIC {
        return Err(FrameError::Malformed("not a diakonos request".into()));
    }
    if sent == STABLE {
        let stable: StableRequest = decode_whole(body)?;
        return Ok(RequestFrame {
            magic,
            version: STABLE,
            service_dir: stable.service_dir,
            request: stable.op.into(),
        });
    }
    if sent != version {
        return Err(FrameError::Version(sent));
    }
    decode_whole(body)
}

/// What is wrong with bytes that do not decode, in words (the decoder's
/// own text is its `Debug` form, which users should not see).
pub(super) fn plain(e: &bincode::error::DecodeError) -> String {
    use bincode::error::DecodeError as E;
    match e {
        E::UnexpectedEnd { additional } => format!("it ends {additional} bytes too early"),
        E::LimitExceeded => "it announces more than it may hold".into(),
        E::UnexpectedVariant { found, .. } => format!("unknown kind {found}"),
        E::Utf8 { .. } => "a text field is not UTF-8".into(),
        _ => "a field holds a value of the wrong kind".into(),
    }
}

/// Decodes exactly `body`: bytes left over are an error.
fn decode_whole<T: DeserializeOwned>(body: &[u8]) -> Result<T, FrameError> {
    match bincode::serde::decode_from_slice::<T, _>(body, config()) {
        Ok((value, used)) if used == body.len() => Ok(value),
        Ok((_, used)) => Err(FrameError::Malformed(format!(
            "{} trailing bytes",
            body.len() - used
        ))),
        Err(e) => Err(FrameError::Malformed(plain(&e))),
    }
}

/// A decoded reply and the protocol version of the daemon that sent it.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub version: u32,
    pub response: Response,
    /// The reply came in the stable form.
    pub stable: bool,
}

/// Decodes a reply body. Bytes after the known fields are ignored (wire
/// rule 6).
pub fn decode_reply(body: &[u8]) -> Result<Reply, FrameError> {
    let ((magic, version, form), used) =
        bincode::serde::decode_from_slice::<([u8; 4], u32, u8), _>(body, reply_config())
            .map_err(|e| FrameError::Malformed(plain(&e)))?;
    if magic != MAGIC {
        return Err(FrameError::Malformed(
            "not a diakonos reply of protocol 2 or later".into(),
        ));
    }
    let rest = &body[used..];
    let response = match form {
        REPLY_STABLE => bincode::serde::decode_from_slice::<StableReply, _>(rest, reply_config())
            .map(|(r, _)| r.into_response()),
        REPLY_CURRENT => {
            bincode::serde::decode_from_slice::<Response, _>(rest, reply_config()).map(|(r, _)| r)
        }
        other => return Err(FrameError::Malformed(format!("unknown reply form {other}"))),
    }
    .map_err(|e| FrameError::Malformed(plain(&e)))?;
    Ok(Reply {
        version,
        response,
        stable: form == REPLY_STABLE,
    })
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
