//! Socket abuse: hostile bytes, odd frames, slow and stuck clients, running out of fds.

use super::*;

// 1. Socket abuse.

/// One hostile payload: noise, or noise behind a plausible length, or noise
/// behind a plausible request header (never a Kill request, and never one
/// that names the daemon's own service directory).
fn garbage(rng: &mut Rng) -> Vec<u8> {
    let n = rng.below(4096);
    let noise = rng.bytes(n);
    match rng.below(4) {
        0 => noise,
        1 => {
            // A length that may or may not be met by what follows.
            let mut f = (rng.below(n + 16) as u32).to_le_bytes().to_vec();
            f.extend(noise);
            f
        }
        2 => {
            // service_dir = Some(noise): decodable or not, it is not ours.
            let mut body = protocol::header(PROTOCOL_VERSION);
            body.push(1);
            body.extend(noise);
            frame(&body)
        }
        _ => {
            // No service dir, a request variant 0..=8 (9 is Kill), then noise.
            let mut body = protocol::header(PROTOCOL_VERSION);
            body.push(0);
            body.push(rng.below(9) as u8);
            body.extend(noise);
            frame(&body)
        }
    }
}

/// Sends `payload` on a fresh connection, closes the write side, and checks
/// the daemon answers with at most one frame and hangs up.
fn throw(h: &Home, payload: &[u8]) -> Result<(), String> {
    let mut s = connect(h);
    // The daemon may refuse a frame and hang up before all of it is written.
    let _ = s.write_all(payload);
    let _ = s.shutdown(std::net::Shutdown::Write);
    reply_then_close(&mut s, Duration::from_secs(10)).map(drop)
}

#[test]
fn random_bytes_on_the_socket_never_hurt_the_daemon() {
    // 200 connections of random bytes one after another, then 20 at once: each ends in at most one reply and a close, and the daemon answers on.
    let h = Home::new("random_bytes_on_the_socket_never_hurt_the_daemon");
    h.unit("web", SLEEPER);
    let daemon = start_daemon(&h);
    let baseline = baseline_fds(&h, daemon);
    let seed = seed("random_bytes_on_the_socket_never_hurt_the_daemon");
    let mut rng = Rng::new(seed);
    for i in 0..200 {
        let payload = garbage(&mut rng);
        throw(&h, &payload).unwrap_or_else(|e| {
            panic!(
                "seed {seed}, connection {i} ({} bytes, starting {:?}): {e}",
                payload.len(),
                &payload[..payload.len().min(16)]
            )
        });
    }
    let payloads: Vec<Vec<u8>> = (0..20).map(|_| garbage(&mut rng)).collect();
    let gate = Barrier::new(payloads.len());
    std::thread::scope(|s| {
        let handles: Vec<_> = payloads
            .iter()
            .map(|p| {
                let (h, gate) = (&h, &gate);
                s.spawn(move || {
                    gate.wait();
                    throw(h, p)
                })
            })
            .collect();
        for (i, handle) in handles.into_iter().enumerate() {
            let result = handle.join().expect("a client thread panicked");
            result.unwrap_or_else(|e| panic!("seed {seed}, concurrent connection {i}: {e}"));
        }
    });
    fds_return_to(daemon, baseline, WAIT);
    healthy(&h, daemon, &["web"]);
}

#[test]
fn frame_lengths_at_and_beyond_the_limit_are_refused_cleanly() {
    // Lengths 0 and 1, exactly 1 MiB of junk, 1 MiB + 1 and 4 GiB - 1 each get one error reply and a close.
    let h = Home::new("frame_lengths_at_and_beyond_the_limit_are_refused_cleanly");
    h.unit("web", SLEEPER);
    let daemon = start_daemon(&h);
    let baseline = baseline_fds(&h, daemon);
    let timeout = Duration::from_secs(10);

    let mut s = connect(&h);
    s.write_all(&[0, 0, 0, 0]).expect("write");
    expect_error(reply_then_close(&mut s, timeout), "malformed", "length 0");

    let mut s = connect(&h);
    s.write_all(&[1, 0, 0, 0, b'D']).expect("write");
    expect_error(reply_then_close(&mut s, timeout), "malformed", "length 1");

    // Exactly the limit: accepted as a frame, refused as junk.
    let mut junk = frame(&vec![0xa5u8; MAX_FRAME as usize]);
    junk[4] = b'X';
    let mut s = connect(&h);
    s.write_all(&junk).expect("write 1 MiB");
    expect_error(reply_then_close(&mut s, timeout), "malformed", "1 MiB");

    // Over the limit: refused from the prefix alone, nothing else sent.
    for len in [MAX_FRAME + 1, u32::MAX] {
        let mut s = connect(&h);
        s.write_all(&len.to_le_bytes()).expect("write");
        expect_error(
            reply_then_close(&mut s, timeout),
            "limit",
            &format!("length {len}"),
        );
    }
    // Over the limit with a body streaming in: refused all the same.
    let mut s = connect(&h);
    let _ = s.write_all(&frame(&vec![7u8; MAX_FRAME as usize + 1]));
    expect_error(reply_then_close(&mut s, timeout), "limit", "1 MiB + 1 sent");

    fds_return_to(daemon, baseline, WAIT);
    healthy(&h, daemon, &["web"]);
}

#[test]
fn a_valid_frame_with_trailing_garbage_gets_one_reply() {
    // Garbage after a valid frame, or inside its announced length, gets one reply and a close, never a crash.
    let h = Home::new("a_valid_frame_with_trailing_garbage_gets_one_reply");
    h.unit("web", SLEEPER);
    let daemon = start_daemon(&h);
    let baseline = baseline_fds(&h, daemon);
    let timeout = Duration::from_secs(10);

    // After the frame: the request is answered (or refused), the rest ignored.
    let mut bytes = list_frame();
    bytes.extend_from_slice(&[0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 5, 6, 7, 8]);
    bytes.extend_from_slice(&list_frame());
    let mut s = connect(&h);
    s.write_all(&bytes).expect("write");
    match reply_then_close(&mut s, timeout) {
        Ok(Some(reply @ Response::Units(_))) => assert_eq!(unit_names(&reply), ["web"]),
        Ok(Some(Response::Error { .. })) => {}
        other => panic!("frame + garbage: expected one reply, got {other:?}"),
    }

    // Inside the announced length: the body has bytes after the request.
    let mut body = list_frame()[4..].to_vec();
    body.extend_from_slice(&[9, 9, 9, 9, 9]);
    let mut s = connect(&h);
    s.write_all(&frame(&body)).expect("write");
    expect_error(reply_then_close(&mut s, timeout), "trailing", "padded body");

    fds_return_to(daemon, baseline, WAIT);
    healthy(&h, daemon, &["web"]);
}

#[test]
fn a_request_written_one_byte_at_a_time_is_answered() {
    // A List request dribbled in 1-byte writes with small gaps is still answered in full.
    let h = Home::new("a_request_written_one_byte_at_a_time_is_answered");
    h.unit("web", SLEEPER);
    let daemon = start_daemon(&h);
    let mut s = connect(&h);
    for b in list_frame() {
        s.write_all(&[b]).expect("write one byte");
        // The gap is the point of the test: every byte arrives on its own.
        std::thread::sleep(Duration::from_millis(15));
    }
    let body = read_frame(&mut s, Duration::from_secs(10)).expect("a reply");
    let reply = decode_reply(&body).expect("a decodable reply");
    assert_eq!(unit_names(&reply), ["web"]);
    healthy(&h, daemon, &["web"]);
}

#[test]
fn another_protocol_version_is_told_how_to_upgrade() {
    // Requests with the right magic but another version (1, 3, 999, u32::MAX) get an error naming both versions and `diakonos daemon-upgrade`, never `diakonos kill`.
    let h = Home::new("another_protocol_version_is_told_how_to_upgrade");
    h.unit("web", SLEEPER);
    let daemon = start_daemon(&h);
    for version in [PROTOCOL_VERSION - 1, PROTOCOL_VERSION + 1, 999, u32::MAX] {
        let mut body = protocol::header(version);
        // What a future request might carry after its version.
        body.extend_from_slice(&[0, 42, 1, 2, 3]);
        let mut s = connect(&h);
        s.write_all(&frame(&body)).expect("write");
        match reply_then_close(&mut s, Duration::from_secs(10)) {
            Ok(Some(Response::Error { message, hint })) => {
                let text = format!("{message} {}", hint.unwrap_or_default());
                assert!(text.contains("protocol version"), "v{version}: {text}");
                assert!(
                    text.contains(&format!("daemon speaks {PROTOCOL_VERSION}")),
                    "v{version}: {text}"
                );
                assert!(text.contains("daemon-upgrade"), "v{version}: {text}");
                assert!(!text.contains("diakonos kill"), "v{version}: {text}");
            }
            other => panic!("version {version}: expected an error, got {other:?}"),
        }
    }
    // The stable form (version 0) with an operation no version knows: refused as malformed.
    let mut body = protocol::header(protocol::STABLE);
    body.extend_from_slice(&[42, 0]);
    let mut s = connect(&h);
    s.write_all(&frame(&body)).expect("write");
    expect_error(
        reply_then_close(&mut s, Duration::from_secs(10)),
        "malformed",
        "unknown stable op",
    );
    healthy(&h, daemon, &["web"]);
}

/// A description long enough that 400 of them make a list reply of about
/// 600 KiB, more than a Unix socket buffers.
fn big_units(h: &Home, n: usize) -> Vec<String> {
    let text = "d".repeat(1500);
    let mut names = Vec::new();
    for i in 0..n {
        let name = format!("big{i:03}");
        h.unit(
            &name,
            &format!("[unit]\nDescription = \"{text}\"\n[service]\nExecStart = \"sleep 1000\"\n"),
        );
        names.push(name);
    }
    names
}

#[test]
fn a_client_that_never_reads_its_reply_blocks_nobody() {
    // A client whose large list reply sits unread does not delay ten other `list`s; read late, its reply is still whole.
    let h = Home::new("a_client_that_never_reads_its_reply_blocks_nobody");
    let mut names = big_units(&h, 400);
    h.unit("web", SLEEPER);
    names.push("web".to_owned());
    let daemon = start_daemon(&h);
    let baseline = baseline_fds(&h, daemon);

    let mut lazy = connect(&h);
    lazy.write_all(&list_frame()).expect("write");
    // The unread reply is held: its connection is the one fd over. The
    // daemon keeps it for 10 s (IO_TIMEOUT in control.rs), then drops it.
    fds_become(daemon, baseline + 1, WAIT);
    let held = Instant::now();
    for i in 0..10 {
        let started = Instant::now();
        let list = h.json_list();
        assert_eq!(list.as_array().map(Vec::len), Some(names.len()), "list {i}");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "list {i} took {:?}",
            started.elapsed()
        );
    }
    if held.elapsed() < Duration::from_secs(8) {
        let body = read_frame(&mut lazy, Duration::from_secs(10)).expect("the late reply");
        let reply = decode_reply(&body).expect("a decodable reply");
        let mut want = names.clone();
        want.sort();
        assert_eq!(unit_names(&reply), want);
    } else {
        // A loaded box took so long over the ten lists that the reply may
        // have expired, as designed: then the daemon must have let it go.
        eprintln!("the ten lists took {:?}: not reading late", held.elapsed());
        let _ = read_to_close(&mut lazy, Duration::from_secs(10));
    }
    drop(lazy);
    fds_return_to(daemon, baseline, WAIT);
    healthy(&h, daemon, &names);
}

#[test]
fn idle_and_half_frame_connections_do_not_delay_list() {
    // 50 idle and 50 half-frame connections held open: `list` answers in well under the daemon's 10 s client timeout each, and the fds go when they close.
    let h = Home::new("idle_and_half_frame_connections_do_not_delay_list");
    h.unit("web", SLEEPER);
    let daemon = start_daemon(&h);
    let baseline = baseline_fds(&h, daemon);
    let idle: Vec<UnixStream> = (0..50).map(|_| connect(&h)).collect();
    let half: Vec<UnixStream> = (0..50)
        .map(|i| {
            let mut s = connect(&h);
            let cut = 1 + i % (list_frame().len() - 1);
            s.write_all(&list_frame()[..cut])
                .expect("write half a frame");
            s
        })
        .collect();
    fds_become(daemon, baseline + 100, WAIT);
    for i in 0..5 {
        let started = Instant::now();
        let out = h.ok(&["list"]);
        let took = started.elapsed();
        assert!(out.contains("web"), "{out}");
        // Blocked behind a connection would be the daemon's 10 s client
        // timeout; a loaded box alone can cost a client a second.
        assert!(took < Duration::from_secs(3), "list {i} took {took:?}");
    }
    drop(idle);
    drop(half);
    fds_return_to(daemon, baseline, WAIT);
    healthy(&h, daemon, &["web"]);
}

/// Starts the daemon through a client whose RLIMIT_NOFILE is `limit`, so
/// the daemon inherits it; returns the daemon's pid.
fn start_daemon_with_fd_limit(h: &Home, limit: u64) -> i32 {
    use std::os::unix::process::CommandExt;
    let mut cmd = h.command(&["list"]);
    // SAFETY: setrlimit is one async-signal-safe system call on plain values.
    unsafe {
        cmd.pre_exec(move || {
            nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE, limit, limit)
                .map_err(std::io::Error::from)
        });
    }
    let out = h.run(cmd);
    assert!(out.status.success(), "{}", stderr(&out));
    let daemon = h.daemon_pid().expect("daemon pid");
    let limits = fs::read_to_string(format!("/proc/{daemon}/limits")).unwrap_or_default();
    assert!(
        limits
            .lines()
            .any(|l| l.starts_with("Max open files") && l.contains(&format!(" {limit} "))),
        "the daemon did not inherit the fd limit:\n{limits}"
    );
    daemon
}

/// Waits until every fd number below `limit` is taken and the daemon has
/// logged failed accepts, and until that count stops moving; returns it.
fn exhausted(h: &Home, daemon: i32, limit: u32) -> usize {
    h.wait_until("the daemon to run out of fds", WAIT, || {
        fds_of(daemon).iter().filter(|&&fd| fd < limit).count() == limit as usize
            && accept_failures(h) > 0
    });
    let mut last = accept_failures(h);
    let mut same = 0;
    let deadline = Instant::now() + WAIT;
    while same < 10 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        let now = accept_failures(h);
        same = if now == last { same + 1 } else { 0 };
        last = now;
    }
    last
}

fn accept_failures(h: &Home) -> usize {
    fs::read_to_string(h.home.join("daemon.log"))
        .unwrap_or_default()
        .matches("accept failed")
        .count()
}

#[test]
fn running_out_of_fds_is_survived() {
    // With RLIMIT_NOFILE at 64, 100 idle clients exhaust the daemon's fds; it logs, lives, and serves again once they leave.
    let h = Home::new("running_out_of_fds_is_survived");
    h.unit("web", SLEEPER);
    let daemon = start_daemon_with_fd_limit(&h, 64);
    let baseline = baseline_fds(&h, daemon);
    let idle: Vec<UnixStream> = (0..100).map(|_| connect(&h)).collect();
    exhausted(&h, daemon, 64);
    drop(idle);
    fds_return_to(daemon, baseline, WAIT);
    // A new client's connection wakes the listener; the stale backlog of
    // closed clients is drained and this one is served.
    let started = Instant::now();
    h.ok(&["list"]);
    assert!(started.elapsed() < Duration::from_secs(5));
    fds_return_to(daemon, baseline, WAIT);
    healthy(&h, daemon, &["web"]);
}

#[test]
fn a_client_queued_while_fds_ran_out_is_served_once_they_free_up() {
    // A `list` that connects while the daemon is out of fds is answered once the idle clients holding them leave.
    let h = Home::new("a_client_queued_while_fds_ran_out_is_served_once_they_free_up");
    h.unit("web", SLEEPER);
    let daemon = start_daemon_with_fd_limit(&h, 64);
    let baseline = baseline_fds(&h, daemon);
    let idle: Vec<UnixStream> = (0..100).map(|_| connect(&h)).collect();
    exhausted(&h, daemon, 64);
    let mut waiting = h.command(&["list"]);
    waiting.stdout(Stdio::piped()).stderr(Stdio::piped());
    let waiting = waiting.spawn().expect("spawn a list");
    // Queued: connected (the backlog takes it) and blocked reading its reply.
    let list_pid = waiting.id();
    h.wait_until("the queued client to block on its reply", WAIT, || {
        fs::read_to_string(format!("/proc/{list_pid}/wchan"))
            .is_ok_and(|w| w.contains("unix_stream_read"))
    });
    drop(idle);
    fds_return_to(daemon, baseline, WAIT);
    let pid = waiting.id() as i32;
    let deadline = Instant::now() + Duration::from_secs(5);
    while alive(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let served = !alive(pid);
    if !served {
        kill9(pid);
    }
    let out = waiting.wait_with_output().expect("wait for the list");
    assert!(
        served,
        "the queued `list` was still waiting 5 s after the fds were free"
    );
    assert!(out.status.success(), "{}", stderr(&out));
    healthy(&h, daemon, &["web"]);
}

#[test]
fn reload_of_an_unreadable_service_dir_fails_clearly() {
    // When the service dir has vanished, `reload` exits 1 naming it, and the running units stay up.
    let h = Home::new("reload_of_an_unreadable_service_dir_fails_clearly");
    h.unit("web", SLEEPER);
    let daemon = start_daemon(&h);
    h.ok(&["start", "web"]);
    let web = h.pid("web");
    let aside = h.root.join("units.aside");
    fs::rename(&h.units, &aside).expect("move the service dir away");
    let out = h.cmd(&["reload"]);
    fs::rename(&aside, &h.units).expect("move it back");
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(stderr(&out).contains("units"), "{}", stderr(&out));
    assert!(!stdout(&out).contains(": :"), "{}", stdout(&out));
    assert_eq!(h.pid("web"), web);
    healthy(&h, daemon, &["web"]);
}
