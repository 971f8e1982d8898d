//! The wire format: frames, the stable envelope's fixed bytes, versions and
//! malformed input.

use super::frame::encode_body;
use super::*;

fn request(r: Request) -> RequestFrame {
    RequestFrame {
        magic: MAGIC,
        version: PROTOCOL_VERSION,
        service_dir: Some(PathBuf::from("/srv/units")),
        request: r,
    }
}

fn body_of(mut frame: Vec<u8>) -> Vec<u8> {
    let body = take_frame(&mut frame).unwrap().unwrap();
    assert!(frame.is_empty());
    body
}

#[test]
fn request_round_trips_through_a_frame() {
    // A request encoded as a frame decodes to the same request.
    let req = request(Request::Start(vec!["web".into(), "db".into()]));
    let body = body_of(encode_request(&req).unwrap());
    assert_eq!(decode_request(&body, PROTOCOL_VERSION).unwrap(), req);
}

#[test]
fn partial_frames_wait_for_more_bytes() {
    // Every strict prefix of a frame is "not yet", never an error.
    let frame = encode_request(&request(Request::List)).unwrap();
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
    let mut buf = encode_request(&request(Request::List)).unwrap();
    buf.extend(encode_request(&request(Request::Kill)).unwrap());
    let a = take_frame(&mut buf).unwrap().unwrap();
    let b = take_frame(&mut buf).unwrap().unwrap();
    assert_eq!(
        decode_request(&a, PROTOCOL_VERSION).unwrap().request,
        Request::List
    );
    assert_eq!(
        decode_request(&b, PROTOCOL_VERSION).unwrap().request,
        Request::Kill
    );
}

#[test]
fn other_version_is_reported_as_version_mismatch() {
    // A versioned request from a newer client is a version error, not garbage.
    let mut req = request(Request::List);
    req.version = PROTOCOL_VERSION + 1;
    let body = body_of(encode_request(&req).unwrap());
    assert_eq!(
        decode_request(&body, PROTOCOL_VERSION),
        Err(FrameError::Version(PROTOCOL_VERSION + 1))
    );
}

#[test]
fn stable_requests_have_fixed_bytes() {
    // Kill, daemon-status and the hand-over are these exact bytes, forever (wire rule 3).
    let mut req = request(Request::Kill);
    req.service_dir = None;
    req.version = 77; // The sender's version does not matter.
    for (r, op) in [
        (Request::Kill, 0u8),
        (Request::DaemonStatus, 1),
        (Request::HandOver, 2),
    ] {
        req.request = r.clone();
        let frame = encode_request(&req).unwrap();
        assert_eq!(
            frame,
            [7, 0, 0, 0, b'D', b'K', b'N', b'S', 0, op, 0],
            "{r:?}"
        );
    }
    req.service_dir = Some(PathBuf::from("/u"));
    let frame = encode_request(&req).unwrap();
    assert_eq!(
        frame,
        [10, 0, 0, 0, b'D', b'K', b'N', b'S', 0, 2, 1, 2, b'/', b'u'],
    );
}

#[test]
fn stable_requests_decode_in_a_daemon_of_any_version() {
    // Every daemon version takes a stable request, service dir included.
    let req = request(Request::HandOver);
    let body = body_of(encode_request(&req).unwrap());
    for daemon in [1, PROTOCOL_VERSION, 99] {
        let got = decode_request(&body, daemon).unwrap();
        assert_eq!(got.request, Request::HandOver);
        assert_eq!(got.version, STABLE);
        assert_eq!(got.service_dir, req.service_dir);
    }
    // An op no version knows, or bytes after the body, are malformed.
    let bad = [b'D', b'K', b'N', b'S', 0, 9, 0];
    assert!(matches!(
        decode_request(&bad, 2),
        Err(FrameError::Malformed(_))
    ));
    let mut padded = body.clone();
    padded.push(0);
    assert!(matches!(
        decode_request(&padded, 2),
        Err(FrameError::Malformed(_))
    ));
}

#[test]
fn stable_replies_have_fixed_bytes() {
    // Bye and the error refusal are these exact bytes, forever (wire rules 5 and 6).
    let bye = encode_reply(&Response::Bye, 5, true).unwrap();
    assert_eq!(
        bye,
        [7, 0, 0, 0, b'D', b'K', b'N', b'S', 5, REPLY_STABLE, 0]
    );
    let err = encode_reply(&Response::error("no", None), 5, true).unwrap();
    assert_eq!(
        err,
        [
            11,
            0,
            0,
            0,
            b'D',
            b'K',
            b'N',
            b'S',
            5,
            REPLY_STABLE,
            1,
            2,
            b'n',
            b'o',
            0
        ]
    );
}

#[test]
fn a_field_appended_to_a_stable_reply_breaks_no_older_client() {
    // A newer daemon's DaemonInfo with one more field decodes here; the field is ignored.
    #[derive(Serialize)]
    struct NewerInfo {
        base: DaemonInfo,
        added: Vec<String>,
    }
    #[derive(Serialize)]
    enum NewerReply {
        #[allow(dead_code)]
        Bye {},
        #[allow(dead_code)]
        Error {
            message: String,
        },
        Daemon(NewerInfo),
    }
    let info = DaemonInfo {
        pid: 1,
        version: "9.9.9".into(),
        uptime_secs: 2,
        home: PathBuf::from("/h"),
        service_dir: PathBuf::from("/s"),
        units: vec![("some-future-state".into(), 3)],
        rss_bytes: 4,
        protocol: 9,
        services: Some(Box::new(ServiceEnv {
            path: "/bin".into(),
            uid: 0,
        })),
        output_to_daemon: false,
    };
    let newer = NewerReply::Daemon(NewerInfo {
        base: info.clone(),
        added: vec!["x".into(); 3],
    });
    let mut prefix = header(9);
    prefix.push(REPLY_STABLE);
    let body = body_of(encode_body(&prefix, &newer, MAX_REPLY).unwrap());
    let reply = decode_reply(&body).unwrap();
    assert_eq!(reply.version, 9);
    assert!(reply.stable);
    assert_eq!(reply.response, Response::Daemon(Box::new(info)));
}

#[test]
fn a_stable_reply_of_an_older_daemon_lacks_the_appended_fields() {
    // An older daemon's DaemonInfo ends before `services`: it reads as None.
    #[derive(Serialize)]
    struct OlderInfo {
        pid: u32,
        version: String,
        uptime_secs: u64,
        home: PathBuf,
        service_dir: PathBuf,
        units: Vec<(String, u32)>,
        rss_bytes: u64,
        protocol: u32,
    }
    #[derive(Serialize)]
    enum OlderReply {
        #[allow(dead_code)]
        Bye {},
        #[allow(dead_code)]
        Error {
            message: String,
        },
        Daemon(OlderInfo),
    }
    let older = OlderReply::Daemon(OlderInfo {
        pid: 1,
        version: "0.2.0".into(),
        uptime_secs: 2,
        home: PathBuf::from("/h"),
        service_dir: PathBuf::from("/s"),
        units: vec![],
        rss_bytes: 4,
        protocol: 2,
    });
    let mut prefix = header(2);
    prefix.push(REPLY_STABLE);
    let body = body_of(encode_body(&prefix, &older, MAX_REPLY).unwrap());
    let Response::Daemon(info) = decode_reply(&body).unwrap().response else {
        panic!("not a daemon-status reply");
    };
    assert_eq!((info.pid, info.protocol), (1, 2));
    assert_eq!(info.services, None);
}

#[test]
fn a_versioned_reply_says_its_form_and_version() {
    // A reply to a request of the daemon's own version carries a Response.
    let resp = Response::Job(vec![]);
    let body = body_of(encode_reply(&resp, PROTOCOL_VERSION, false).unwrap());
    let reply = decode_reply(&body).unwrap();
    assert_eq!(
        reply,
        Reply {
            version: PROTOCOL_VERSION,
            response: resp,
            stable: false
        }
    );
    // A reply without the magic (a daemon before protocol 2) is malformed.
    assert!(matches!(
        decode_reply(&[6, 1, 2]),
        Err(FrameError::Malformed(_))
    ));
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
        let _ = decode_request(&body, PROTOCOL_VERSION);
        let _ = decode_reply(&body);
    }
    assert!(matches!(
        decode_request(&[0xff; 8], PROTOCOL_VERSION),
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
        next_attempt: Some(NextAttempt {
            attempt: 3,
            in_ms: 1500,
        }),
        pgids: vec![42],
        ..UnitInfo::default()
    }]);
    let body = body_of(encode_reply(&resp, PROTOCOL_VERSION, false).unwrap());
    assert_eq!(decode_reply(&body).unwrap().response, resp);
}

#[test]
fn garbage_is_described_in_words_not_in_the_decoders_debug_form() {
    // What a client (or daemon.log) shows for bytes that are no request.
    for body in [&[][..], &[0xff; 64][..], &MAGIC[..]] {
        let Err(e) = decode_request(body, PROTOCOL_VERSION) else {
            panic!("{body:?} decoded");
        };
        let text = e.to_string();
        assert!(text.starts_with("malformed frame: "), "{text}");
        assert!(!text.contains('{') && !text.contains("::"), "{text}");
    }
}

#[test]
fn a_reload_report_is_one_line_of_words() {
    let mut r = ReloadReport::default();
    assert_eq!(r.summary(), "no change");
    r.added = vec!["a".into(), "b".into()];
    r.invalid = vec![("c".into(), "c.service:1:1: ...".into())];
    assert_eq!(r.summary(), "added a b; invalid c");
}
