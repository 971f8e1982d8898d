//! The control socket from a misbehaving client's side: raw bytes on a
//! real Unix socket. The daemon must close bad connections, never stop
//! answering others, and never die (its pid must not change).

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use diakonos::protocol::{self, Request, RequestFrame, Response};

use crate::util::{read_to_close, Home};

/// Starts the daemon (one unit so `list` has something to say) and returns its pid.
fn up(h: &Home) -> i32 {
    h.unit("web", "[service]\nExecStart = \"sleep 1000\"\n");
    h.ok(&["list"]);
    h.daemon_pid().expect("daemon pid")
}

fn connect(h: &Home) -> UnixStream {
    UnixStream::connect(h.home.join("diakonos.sock")).expect("connect to the control socket")
}

/// `list` works and is answered by the same daemon as before.
fn still_answers(h: &Home, daemon: i32) {
    let out = h.ok(&["list"]);
    assert!(out.contains("web"), "{out}");
    assert_eq!(h.daemon_pid(), Some(daemon), "the daemon was replaced");
}

/// The connection is closed within 5 s, with at most one error frame before EOF.
fn assert_closed(stream: &mut UnixStream, what: &str) {
    let got = read_to_close(stream, Duration::from_secs(5))
        .unwrap_or_else(|| panic!("{what}: the daemon kept the connection open"));
    if !got.is_empty() {
        assert!(got.len() >= 4, "{what}: a partial frame: {got:?}");
        let len = u32::from_le_bytes([got[0], got[1], got[2], got[3]]) as usize;
        assert_eq!(got.len(), 4 + len, "{what}: not exactly one frame: {got:?}");
    }
}

#[test]
fn garbage_bytes_close_the_connection() {
    // Bytes that are not a frame get the connection closed; the daemon keeps answering.
    let h = Home::new("garbage_bytes_close_the_connection");
    let daemon = up(&h);
    let mut s = connect(&h);
    s.write_all(b"hello, this is not a frame at all\n")
        .expect("write");
    assert_closed(&mut s, "text");
    // A small length with an undecodable body.
    let mut s = connect(&h);
    s.write_all(&[8, 0, 0, 0, 0xff, 0xfe, 0xfd, 0xfc, 0xfb, 0xfa, 0xf9, 0xf8])
        .expect("write");
    assert_closed(&mut s, "bad body");
    still_answers(&h, daemon);
}

#[test]
fn a_4_gib_length_prefix_is_refused() {
    // A length prefix of 4 GiB is refused without allocating, and the connection closed.
    let h = Home::new("a_4_gib_length_prefix_is_refused");
    let daemon = up(&h);
    let mut s = connect(&h);
    s.write_all(&[0xff, 0xff, 0xff, 0xff]).expect("write");
    assert_closed(&mut s, "4 GiB prefix");
    let mut s = connect(&h);
    s.write_all(&((2u32 << 20).to_le_bytes())).expect("write");
    assert_closed(&mut s, "2 MiB prefix");
    still_answers(&h, daemon);
}

#[test]
fn a_silent_client_does_not_block_others() {
    // While a client is connected and says nothing, other commands are answered.
    let h = Home::new("a_silent_client_does_not_block_others");
    let daemon = up(&h);
    let silent = connect(&h);
    still_answers(&h, daemon);
    h.ok(&["start", "web"]);
    still_answers(&h, daemon);
    drop(silent);
    still_answers(&h, daemon);
}

#[test]
fn half_a_frame_does_not_block_others() {
    // A client that sends half a frame and goes quiet does not block other commands.
    let h = Home::new("half_a_frame_does_not_block_others");
    let daemon = up(&h);
    let mut half = connect(&h);
    half.write_all(&[100, 0, 0, 0, 1, 2, 3]).expect("write");
    let mut prefix_only = connect(&h);
    prefix_only.write_all(&[50, 0]).expect("write");
    still_answers(&h, daemon);
    drop(half);
    drop(prefix_only);
    still_answers(&h, daemon);
}

#[test]
fn fifty_idle_connections_do_not_block_a_list() {
    // Fifty connected, idle clients do not keep `list` from being answered.
    let h = Home::new("fifty_idle_connections_do_not_block_a_list");
    let daemon = up(&h);
    let idle: Vec<UnixStream> = (0..50).map(|_| connect(&h)).collect();
    still_answers(&h, daemon);
    drop(idle);
    still_answers(&h, daemon);
}

#[test]
fn a_client_that_leaves_mid_job_does_not_hurt_the_daemon() {
    // A start whose client is gone before the reply still completes, and the daemon lives on.
    let h = Home::new("a_client_that_leaves_mid_job_does_not_hurt_the_daemon");
    h.unit(
        "slow",
        "[service]\nType = \"oneshot\"\nExecStart = \"sh -c 'sleep 0.3'\"\n",
    );
    let daemon = up(&h);
    // Kill the client while its start job is in flight.
    let mut child = std::process::Command::new(crate::util::BIN)
        .args(["--home", &h.home.display().to_string(), "start", "slow"])
        .current_dir(&h.root)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn a client");
    h.wait_until("slow to be starting", crate::util::WAIT, || {
        h.state("slow") != "inactive"
    });
    let _ = child.kill();
    let _ = child.wait();
    h.wait_state("slow", "exited");
    still_answers(&h, daemon);
}

#[test]
fn another_protocol_version_gets_a_clear_error() {
    // A request of another protocol version is answered with an error that names both versions and `diakonos daemon-upgrade`.
    let h = Home::new("another_protocol_version_gets_a_clear_error");
    let daemon = up(&h);
    let mut s = connect(&h);
    let frame = protocol::encode_request(&RequestFrame {
        magic: protocol::MAGIC,
        version: 999,
        service_dir: None,
        request: Request::List,
    })
    .expect("encode");
    s.write_all(&frame).expect("write");
    let mut got = read_to_close(&mut s, Duration::from_secs(5)).expect("closed after the reply");
    let body = protocol::take_frame(&mut got)
        .expect("a frame")
        .expect("a whole frame");
    assert!(got.is_empty(), "more than one frame: {got:?}");
    let reply = protocol::decode_reply(&body).expect("a stable reply");
    assert_eq!(reply.version, protocol::PROTOCOL_VERSION);
    match reply.response {
        Response::Error { message, hint } => {
            let text = format!("{message} {}", hint.unwrap_or_default());
            assert!(text.contains("protocol version"), "{text}");
            assert!(text.contains("client speaks 999"), "{text}");
            assert!(text.contains("daemon-upgrade"), "{text}");
        }
        other => panic!("expected an error, got {other:?}"),
    }
    still_answers(&h, daemon);
}

#[test]
fn another_user_is_refused_even_when_the_socket_is_reachable() {
    // Peer credentials decide: a client of another uid is turned away although file modes would let it in.
    assert!(
        nix::unistd::Uid::effective().is_root(),
        "this test needs root to run a client as another user (CI runs as root)"
    );
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    let h = Home::new("another_user_is_refused_even_when_the_socket_is_reachable");
    let daemon = up(&h);
    let nobody = nix::unistd::User::from_name("nobody")
        .expect("look up nobody")
        .expect("a user nobody");
    // Open the path up on purpose, so only the credential check stands.
    for dir in [h.root.parent().expect("parent"), &h.root, &h.home] {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    let sock = h.home.join("diakonos.sock");
    std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o666)).expect("chmod");
    let mut cmd = h.command(&["list"]);
    cmd.uid(nobody.uid.as_raw()).gid(nobody.gid.as_raw());
    let out = h.run(cmd);
    assert_eq!(
        out.status.code(),
        Some(1),
        "stdout:\n{}\nstderr:\n{}",
        crate::util::stdout(&out),
        crate::util::stderr(&out)
    );
    assert!(!crate::util::stdout(&out).contains("web"));
    let log = std::fs::read_to_string(h.home.join("daemon.log")).unwrap_or_default();
    assert!(
        log.contains(&format!("refused a client of uid {}", nobody.uid)),
        "{log}"
    );
    std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    still_answers(&h, daemon);
}

#[test]
fn one_client_too_many_is_told_so_and_daemon_log_is_not_flooded() {
    // Past the daemon's 4096 connections, a new client gets one clear
    // line; the refusals are logged at 1, 2, 4, ... only; once the idle
    // ones go, clients are served again. (The idle connections are held by
    // a python3 process, so this test's own descriptor limit is left alone.)
    let h = Home::new("one_client_too_many_is_told_so");
    h.unit("web", "[service]\nExecStart = \"sleep 1000\"\n");
    h.ok(&["list"]);
    let sock = h.home.join("diakonos.sock");
    let script = "import resource, socket, sys\n\
                  _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)\n\
                  resource.setrlimit(resource.RLIMIT_NOFILE, (min(8192, hard), hard))\n\
                  held = []\n\
                  for _ in range(4200):\n    \
                  c = socket.socket(socket.AF_UNIX); c.connect(sys.argv[1]); held.append(c)\n\
                  print('held', flush=True)\n\
                  sys.stdin.read()\n";
    let mut holder = std::process::Command::new("python3");
    holder
        .args(["-c", script])
        .arg(&sock)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped());
    let mut holder = crate::util::Background(holder.spawn().expect("python3"));
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(holder.0.stdout.take().expect("stdout")),
        &mut line,
    )
    .expect("read");
    assert_eq!(
        line.trim(),
        "held",
        "the holder could not connect 4200 times"
    );
    let out = h.cmd(&["list"]);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("too many clients (4096)"), "{err}");
    drop(holder);
    h.wait_until("list to be served again", crate::util::WAIT, || {
        h.cmd(&["list"]).status.success()
    });
    let log = std::fs::read_to_string(h.home.join("daemon.log")).unwrap_or_default();
    let lines = log.matches("too many clients").count();
    assert!((1..=10).contains(&lines), "{lines} lines:\n{log}");
}

#[test]
fn a_large_start_waits_for_its_client_to_go_but_only_a_moment() {
    // More units than CPUs started by one request: once answered, their processes wait (cloned, before their exec) until the client has hung up, so its exit does not compete with all their start-ups; a client that stays holds them only a moment (50 ms): the daemon then closes and they run.
    let h = Home::new("a_large_start_waits_for_its_client_to_go_but_only_a_moment");
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let names: Vec<String> = (0..cpus + 2).map(|i| format!("s{i}")).collect();
    for name in &names {
        h.unit(name, "[service]\nExecStart = \"sleep 1000\"\n");
    }
    h.ok(&["list"]);
    let frame = protocol::encode_request(&RequestFrame::new(Request::Start(names.clone()), None))
        .expect("encode");
    let mut s = connect(&h);
    let sent = std::time::Instant::now();
    s.write_all(&frame).expect("write");
    // We never hang up: the daemon closes.
    let mut got = read_to_close(&mut s, Duration::from_secs(5))
        .expect("the daemon closed the connection while we stayed");
    let waited = sent.elapsed();
    let body = protocol::take_frame(&mut got)
        .expect("a frame")
        .expect("a whole frame");
    let reply = protocol::decode_reply(&body).expect("a reply");
    assert!(
        !matches!(reply.response, Response::Error { .. }),
        "{:?}",
        reply.response
    );
    assert!(
        waited >= Duration::from_millis(50),
        "closed {waited:?} after the request: the daemon did not wait for its client"
    );
    // And every service runs its program while we still hold our end.
    for name in &names {
        h.exec_pid(name);
    }
    drop(s);
}
