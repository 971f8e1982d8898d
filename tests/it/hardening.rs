//! Hardening (issue 5): hostile bytes on the control socket, crowds of
//! clients, fuzzed unit files and argument vectors, restart churn and write
//! errors, all against the real binary. Every test that has a daemon ends by
//! checking that it is the very process it started with and that it still
//! answers `list` correctly.
//!
//! Fuzz-style tests draw from a seeded xorshift generator. The seed is
//! printed (the harness shows it when a test fails) and
//! `DIAKONOS_FUZZ_SEED=N` replays a run.

use std::ffi::OsString;
use std::fs;
use std::io::{Read, Write};
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::process::{Command, Output, Stdio};
use std::sync::Barrier;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use diakonos::protocol::{self, Request, RequestFrame, Response, PROTOCOL_VERSION};

use crate::util::{
    alive, children_of, fds_of, kill9, read_to_close, rss_kib, stderr, stdout, zombie_children,
    Home, BIN, WAIT,
};

// ---------------------------------------------------------------------------
// A small seeded PRNG (xorshift64*): no crates, reproducible from the seed.

struct Rng(u64);

impl Rng {
    /// Seeds through splitmix64, so nearby seeds give unrelated streams.
    fn new(seed: u64) -> Rng {
        let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        Rng(if z == 0 { 1 } else { z })
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n` (0 when `n` is 0).
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }

    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// The seed for one fuzz test: `DIAKONOS_FUZZ_SEED`, else the clock.
fn seed(test: &str) -> u64 {
    let seed = std::env::var("DIAKONOS_FUZZ_SEED")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
        });
    eprintln!("{test}: seed {seed} (replay with DIAKONOS_FUZZ_SEED={seed})");
    seed
}

// ---------------------------------------------------------------------------
// The daemon: start, health, fds.

/// Starts the daemon with whatever units are written and returns its pid.
fn start_daemon(h: &Home) -> i32 {
    h.ok(&["list"]);
    h.daemon_pid()
        .expect("the daemon wrote its pid into daemon.lock")
}

/// The daemon is still `daemon`, the only one of its home, and `list --json`
/// shows exactly `names`.
fn healthy<S: AsRef<str>>(h: &Home, daemon: i32, names: &[S]) {
    assert!(alive(daemon), "the daemon (pid {daemon}) is gone");
    let list = h.json_list();
    let mut got: Vec<&str> = list
        .as_array()
        .expect("list --json is an array")
        .iter()
        .map(|u| u["name"].as_str().expect("every unit has a name"))
        .collect();
    got.sort_unstable();
    let mut want: Vec<&str> = names.iter().map(AsRef::as_ref).collect();
    want.sort_unstable();
    assert!(got == want, "list --json names: got {got:?}, want {want:?}");
    assert_eq!(h.daemon_pid(), Some(daemon), "the daemon was replaced");
    assert_eq!(h.daemons(), [daemon], "exactly one daemon for this home");
}

/// What each fd of `pid` points to, for failure messages.
fn describe_fds(pid: i32) -> String {
    fds_of(pid)
        .iter()
        .map(|fd| {
            let target = fs::read_link(format!("/proc/{pid}/fd/{fd}"))
                .map(|t| t.display().to_string())
                .unwrap_or_else(|_| "?".to_owned());
            format!("{fd}->{target}")
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The daemon's fd count at rest. A client that just got its reply may
/// still be a connection in the daemon for a moment (the probe a starting
/// client drops, a close right after the last write), so first one more
/// request is answered and seen closed: everything before it is done.
fn baseline_fds(h: &Home, daemon: i32) -> usize {
    let mut s = connect(h);
    s.write_all(&list_frame()).expect("write");
    match reply_then_close(&mut s, Duration::from_secs(10)) {
        Ok(Some(Response::Units(_))) => {}
        other => panic!("the baseline list failed: {other:?}"),
    }
    drop(s);
    fds_of(daemon).len()
}

/// Waits until the daemon has no more than `baseline` fds open again.
fn fds_return_to(daemon: i32, baseline: usize, within: Duration) {
    wait_for_fds(daemon, within, &format!("at most {baseline}"), |n| {
        n <= baseline
    });
}

/// Waits until the daemon has exactly `count` fds open.
fn fds_become(daemon: i32, count: usize, within: Duration) {
    wait_for_fds(daemon, within, &format!("exactly {count}"), |n| n == count);
}

fn wait_for_fds(daemon: i32, within: Duration, want: &str, ok: impl Fn(usize) -> bool) {
    let deadline = Instant::now() + within;
    loop {
        let now = fds_of(daemon).len();
        if ok(now) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the daemon has {now} fds open, want {want}: {}",
            describe_fds(daemon)
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A directory on tmpfs that `units/` points to, removed on drop: creating
/// thousands of unit files on a disk-backed /tmp costs seconds.
struct FastUnits(Option<std::path::PathBuf>);

impl FastUnits {
    /// Moves `h.units` to /dev/shm when that is a writable tmpfs; else
    /// leaves it where it is.
    fn new(h: &Home) -> FastUnits {
        let shm = std::path::Path::new("/dev/shm");
        let dir = shm.join(format!(
            "diakonos-{}-{}",
            std::process::id(),
            h.root.file_name().and_then(|n| n.to_str()).unwrap_or("x")
        ));
        let _ = fs::remove_dir_all(&dir);
        if !shm.is_dir() || fs::create_dir(&dir).is_err() {
            return FastUnits(None);
        }
        if fs::remove_dir(&h.units).is_err() || symlink(&dir, &h.units).is_err() {
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&h.units).expect("recreate units/");
            return FastUnits(None);
        }
        FastUnits(Some(dir))
    }
}

impl Drop for FastUnits {
    fn drop(&mut self) {
        if let Some(dir) = &self.0 {
            let _ = fs::remove_dir_all(dir);
        }
    }
}

// ---------------------------------------------------------------------------
// Raw frames, encoded and decoded by the library (`diakonos::protocol`).

/// A `List` request as the client sends it.
fn list_frame() -> Vec<u8> {
    protocol::encode_request(&RequestFrame {
        magic: protocol::MAGIC,
        version: PROTOCOL_VERSION,
        service_dir: None,
        request: Request::List,
    })
    .expect("encode a list request")
}

/// The largest frame body the daemon accepts (1 MiB).
const MAX_FRAME: u32 = protocol::MAX_FRAME as u32;

fn connect(h: &Home) -> UnixStream {
    UnixStream::connect(h.home.join("diakonos.sock")).expect("connect to the control socket")
}

/// `body` behind its little-endian length.
fn frame(body: &[u8]) -> Vec<u8> {
    let mut f = (body.len() as u32).to_le_bytes().to_vec();
    f.extend_from_slice(body);
    f
}

/// Decodes a reply body (whatever its form) to the response it carries.
fn decode_reply(body: &[u8]) -> Result<Response, String> {
    protocol::decode_reply(body)
        .map(|r| r.response)
        .map_err(|e| e.to_string())
}

/// Reads one whole frame body, each read bounded by `timeout`.
fn read_frame(s: &mut UnixStream, timeout: Duration) -> Result<Vec<u8>, String> {
    s.set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    let mut prefix = [0u8; 4];
    s.read_exact(&mut prefix)
        .map_err(|e| format!("reading a reply's length: {e}"))?;
    let len = u32::from_le_bytes(prefix) as usize;
    if len > 64 << 20 {
        return Err(format!("a reply of {len} bytes"));
    }
    let mut body = vec![0u8; len];
    s.read_exact(&mut body)
        .map_err(|e| format!("reading a {len}-byte reply: {e}"))?;
    Ok(body)
}

/// Reads until the daemon hangs up: nothing, or exactly one decodable frame.
fn reply_then_close(s: &mut UnixStream, timeout: Duration) -> Result<Option<Response>, String> {
    let got = read_to_close(s, timeout)
        .ok_or_else(|| format!("the daemon kept the connection open for {timeout:?}"))?;
    if got.is_empty() {
        return Ok(None);
    }
    if got.len() < 4 {
        return Err(format!("a partial length prefix: {got:?}"));
    }
    let len = u32::from_le_bytes([got[0], got[1], got[2], got[3]]) as usize;
    if got.len() != 4 + len {
        return Err(format!(
            "not exactly one frame: announced {len}, got {} bytes",
            got.len() - 4
        ));
    }
    decode_reply(&got[4..]).map(Some)
}

/// The reply must be an error whose message contains `needle`.
fn expect_error(reply: Result<Option<Response>, String>, needle: &str, what: &str) {
    match reply {
        Ok(Some(Response::Error { message, .. })) if message.contains(needle) => {}
        other => panic!("{what}: expected an error mentioning `{needle}`, got {other:?}"),
    }
}

/// The names in a Units reply, sorted.
fn unit_names(reply: &Response) -> Vec<String> {
    match reply {
        Response::Units(rows) => {
            let mut names: Vec<String> = rows.iter().map(|r| r.name.clone()).collect();
            names.sort();
            names
        }
        other => panic!("expected a list of units, got {other:?}"),
    }
}

const SLEEPER: &str = "[service]\nExecStart = \"sleep 1000\"\n";

// ---------------------------------------------------------------------------
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

// ---------------------------------------------------------------------------
// 2. Concurrency.

#[test]
fn a_crowd_of_120_list_commands_all_get_complete_output() {
    // 120 `diakonos list` processes at once all exit 0 with every unit in their output.
    let h = Home::new("a_crowd_of_120_list_commands_all_get_complete_output");
    let names = ["alpha", "bravo", "charlie", "delta", "echo"];
    for n in names {
        h.unit(n, SLEEPER);
    }
    let daemon = start_daemon(&h);
    h.ok(&["start", "alpha"]);
    let gate = Barrier::new(120);
    let outputs: Vec<(bool, Output)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..120)
            .map(|i| {
                let (h, gate) = (&h, &gate);
                s.spawn(move || {
                    let json = i % 2 == 0;
                    let args: &[&str] = if json { &["list", "--json"] } else { &["list"] };
                    let cmd = h.command(args);
                    gate.wait();
                    (json, h.run(cmd))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|t| t.join().expect("a client thread panicked"))
            .collect()
    });
    for (i, (json, out)) in outputs.iter().enumerate() {
        assert!(
            out.status.success(),
            "client {i}: {}\n{}",
            out.status,
            stderr(out)
        );
        let text = stdout(out);
        if *json {
            let v: serde_json::Value = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("client {i}: not JSON ({e}): {text}"));
            assert_eq!(v.as_array().map(Vec::len), Some(5), "client {i}: {text}");
        }
        for n in names {
            assert!(text.contains(n), "client {i} is missing {n}: {text}");
        }
    }
    healthy(&h, daemon, &names);
}

#[test]
fn a_crowd_of_100_raw_clients_all_get_complete_replies() {
    // 100 raw connections send a hand-encoded List request at the same moment and each reads a whole, correct reply.
    let h = Home::new("a_crowd_of_100_raw_clients_all_get_complete_replies");
    let names = ["alpha", "bravo", "charlie"];
    for n in names {
        h.unit(n, SLEEPER);
    }
    let daemon = start_daemon(&h);
    let baseline = baseline_fds(&h, daemon);
    let gate = Barrier::new(100);
    let replies: Vec<Result<Response, String>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..100)
            .map(|_| {
                let (h, gate) = (&h, &gate);
                s.spawn(move || {
                    let mut s = connect(h);
                    gate.wait();
                    s.write_all(&list_frame()).map_err(|e| e.to_string())?;
                    let body = read_frame(&mut s, Duration::from_secs(20))?;
                    decode_reply(&body)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|t| t.join().expect("a client thread panicked"))
            .collect()
    });
    for (i, reply) in replies.iter().enumerate() {
        match reply {
            Ok(reply) => assert_eq!(unit_names(reply), names, "client {i}"),
            Err(e) => panic!("client {i}: {e}"),
        }
    }
    fds_return_to(daemon, baseline, WAIT);
    healthy(&h, daemon, &names);
}

#[test]
fn racing_start_stop_restart_jobs_leave_a_consistent_state() {
    // 40 concurrent start/stop/restart jobs on a unit and its dependent each exit 0 or 1, and afterwards every child of the daemon is a unit it lists.
    let h = Home::new("racing_start_stop_restart_jobs_leave_a_consistent_state");
    h.unit("web", SLEEPER);
    h.unit(
        "app",
        "[unit]\nRequires = [\"web\"]\n[service]\nExecStart = \"sleep 1000\"\n",
    );
    let daemon = start_daemon(&h);
    let seed = seed("racing_start_stop_restart_jobs_leave_a_consistent_state");
    let mut rng = Rng::new(seed);
    let jobs: Vec<[&str; 2]> = (0..40)
        .map(|_| {
            *rng.pick(&[
                ["start", "app"],
                ["start", "web"],
                ["stop", "web"],
                ["stop", "app"],
                ["restart", "web"],
                ["restart", "app"],
            ])
        })
        .collect();
    let gate = Barrier::new(jobs.len());
    let outs: Vec<Output> = std::thread::scope(|s| {
        let handles: Vec<_> = jobs
            .iter()
            .map(|job| {
                let (h, gate) = (&h, &gate);
                s.spawn(move || {
                    let cmd = h.command(job);
                    gate.wait();
                    h.run(cmd)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|t| t.join().expect("a client thread panicked"))
            .collect()
    });
    for (job, out) in jobs.iter().zip(&outs) {
        assert!(
            matches!(out.status.code(), Some(0 | 1)),
            "seed {seed}: {job:?}: {}\n{}",
            out.status,
            stderr(out)
        );
    }
    // Once the dust settles, what runs is exactly what is listed.
    h.wait_until("every unit to settle", WAIT, || {
        let list = h.json_list();
        let units = list.as_array().cloned().unwrap_or_default();
        let settled = units
            .iter()
            .all(|u| matches!(u["state"].as_str(), Some("running" | "inactive" | "failed")));
        let mut listed: Vec<i32> = units
            .iter()
            .filter_map(|u| u["pid"].as_i64().map(|p| p as i32))
            .collect();
        let mut running: Vec<i32> = children_of(daemon)
            .into_iter()
            .filter(|&(_, state)| state != 'Z')
            .map(|(pid, _)| pid)
            .collect();
        listed.sort_unstable();
        running.sort_unstable();
        settled && listed == running
    });
    healthy(&h, daemon, &["app", "web"]);
}

// ---------------------------------------------------------------------------
// 3. Unit files.

/// A unit using every key; its dependencies `dep` and `cache` exist.
const RICH_UNIT: &str = r#"[unit]
Description = "fuzz base"
Requires = ["dep"]
Wants = ["cache"]
After = ["dep", "cache"]
StartLimitBurst = 5
StartLimitIntervalSec = 10

[service]
Type = "simple"
ExecStart = "sleep 1000"
ExecStop = "true"
Restart = "on-failure"
RestartSec = 1
RestartMaxDelaySec = 60
TimeoutStartSec = 30
TimeoutStopSec = 10
KillSignal = "SIGTERM"
WorkingDirectory = "."
Environment = ["A=1", "B=two words"]
RemainAfterExit = false
"#;

const KEYS: &[&str] = &[
    "Description",
    "Requires",
    "Wants",
    "After",
    "StartLimitBurst",
    "StartLimitIntervalSec",
    "Type",
    "ExecStart",
    "ExecStop",
    "Restart",
    "RestartSec",
    "RestartMaxDelaySec",
    "TimeoutStartSec",
    "TimeoutStopSec",
    "KillSignal",
    "WorkingDirectory",
    "Environment",
    "User",
    "RemainAfterExit",
    "PIDFile",
    "Restrat",
    "execstart",
    "",
    "\"\"",
    "X",
    "a.b.c",
    "\"quoted key\"",
    "ÿ",
    "[service]",
    "ExecStart ",
];

const VALUES: &[&str] = &[
    "1",
    "\"x\"",
    "[]",
    "true",
    "{}",
    "[\"a\"]",
    "\"\"",
    "1979-05-27T07:32:00Z",
    "'literal'",
    "\"\"\"multi\nline\"\"\"",
    "[1, \"mixed\"]",
    "{ a = 1 }",
    "\"sleep\\u0000 1\"",
    "\"\\u001b[31mred\"",
    "\"nobody\"",
    "\"/\"",
    "\"SIGKILL\"",
    "0",
];

const HUGE: &[&str] = &[
    "1e300",
    "-1",
    "9999999999999999999999",
    "-9223372036854775808",
    "-9223372036854775809",
    "18446744073709551615",
    "18446744073709551616",
    "1e-300",
    "1e309",
    "nan",
    "inf",
    "-inf",
    "-0.0",
    "0",
    "0.0000000001",
    "1_000_000_000_000",
    "0x7fffffff",
    "0o777",
    "4294967296",
    "2147483648",
    "1000000000.5",
];

const NUMERIC_KEYS: &[&str] = &[
    "StartLimitBurst",
    "StartLimitIntervalSec",
    "RestartSec",
    "RestartMaxDelaySec",
    "TimeoutStartSec",
    "TimeoutStopSec",
    "KillSignal",
];

const BAD_UTF8: &[&[u8]] = &[
    &[0xff],
    &[0xc3, 0x28],
    &[0xed, 0xa0, 0x80],
    &[0xf4, 0x90, 0x80, 0x80],
    &[0x80],
    &[0xe2, 0x82],
];

/// Byte offsets where lines start.
fn line_starts(text: &[u8]) -> Vec<usize> {
    let mut starts = vec![0];
    starts.extend(
        text.iter()
            .enumerate()
            .filter(|(_, &b)| b == b'\n')
            .map(|(i, _)| i + 1)
            .filter(|&i| i < text.len()),
    );
    starts
}

/// The lines of `text`, each with its newline.
fn lines_of(text: &[u8]) -> Vec<Vec<u8>> {
    text.split_inclusive(|&b| b == b'\n')
        .map(<[u8]>::to_vec)
        .collect()
}

/// A line to insert that is very long in one way or another.
fn long_line(rng: &mut Rng) -> Vec<u8> {
    match rng.below(6) {
        0 => format!("Description = \"{}\"\n", "x".repeat(200_000)).into_bytes(),
        1 => format!("{} = 1\n", "K".repeat(20_000)).into_bytes(),
        2 => format!("ExecStart = \"{}\"\n", "a ".repeat(30_000)).into_bytes(),
        3 => {
            let names: Vec<String> = (0..5000).map(|i| format!("\"n{i}\"")).collect();
            format!("Requires = [{}]\n", names.join(", ")).into_bytes()
        }
        4 => {
            let env: Vec<String> = (0..10_000).map(|i| format!("\"E{i}=v\"")).collect();
            format!("Environment = [{}]\n", env.join(",")).into_bytes()
        }
        _ => format!("# {}\n", "#".repeat(500_000)).into_bytes(),
    }
}

/// Nested arrays or inline tables, deep enough to trouble a recursive parser.
fn deep_line(rng: &mut Rng) -> Vec<u8> {
    let depth = *rng.pick(&[64, 1_000, 100_000]);
    if rng.chance(50) {
        format!("X = {}{}\n", "[".repeat(depth), "]".repeat(depth)).into_bytes()
    } else {
        format!("X = {}1{}\n", "{ a = ".repeat(depth), " }".repeat(depth)).into_bytes()
    }
}

/// Applies one to three random edits to `base`; returns the text and what was done.
fn mutate(rng: &mut Rng, base: &[u8]) -> (Vec<u8>, Vec<&'static str>) {
    let mut text = base.to_vec();
    let mut done = Vec::new();
    for _ in 0..1 + rng.below(3) {
        let starts = line_starts(&text);
        let at_line = starts.get(rng.below(starts.len())).copied().unwrap_or(0);
        let pos = rng.below(text.len() + 1);
        match rng.below(14) {
            0 if !text.is_empty() => {
                let i = rng.below(text.len());
                text[i] = rng.next() as u8;
                done.push("flip a byte");
            }
            1 => {
                text.truncate(pos);
                done.push("truncate");
            }
            2 => {
                let mut lines = lines_of(&text);
                if !lines.is_empty() {
                    let i = rng.below(lines.len());
                    let copy = lines[i].clone();
                    lines.insert(i, copy);
                }
                text = lines.concat();
                done.push("duplicate a line");
            }
            3 => {
                let mut lines = lines_of(&text);
                if !lines.is_empty() {
                    let i = rng.below(lines.len());
                    lines.remove(i);
                }
                text = lines.concat();
                done.push("delete a line");
            }
            4 => {
                let line = format!("{} = {}\n", rng.pick(KEYS), rng.pick(VALUES));
                text.splice(at_line..at_line, line.into_bytes());
                done.push("insert a random key");
            }
            5 => {
                let key = rng.pick(NUMERIC_KEYS);
                let line = format!("{key} = {}\n", rng.pick(HUGE));
                let mut lines = lines_of(&text);
                let found = lines
                    .iter()
                    .position(|l| l.starts_with(format!("{key} =").as_bytes()));
                match found {
                    Some(i) => lines[i] = line.into_bytes(),
                    None => lines.push(line.into_bytes()),
                }
                text = lines.concat();
                done.push("a huge or odd number");
            }
            6 => {
                text.insert(pos, 0);
                done.push("a NUL byte");
            }
            7 => {
                let seq = rng.pick(BAD_UTF8);
                text.splice(pos..pos, seq.iter().copied());
                done.push("invalid UTF-8");
            }
            8 => {
                let line = long_line(rng);
                text.splice(at_line..at_line, line);
                done.push("a very long line");
            }
            9 => {
                let line = deep_line(rng);
                text.splice(at_line..at_line, line);
                done.push("deep nesting");
            }
            10 => {
                let header = *rng.pick(&[
                    "[servce]",
                    "[[service]]",
                    "[service.x]",
                    "[ service ]",
                    "[unit]",
                    "",
                    "[service",
                    "service]",
                    "[Service]",
                ]);
                let s = String::from_utf8_lossy(&text).replacen("[service]", header, 1);
                text = s.into_bytes();
                done.push("mangle a section header");
            }
            11 => {
                let key = *rng.pick(&["Type", "Restart", "KillSignal"]);
                let value = *rng.pick(&[
                    "\"\"",
                    "\"SIMPLE\"",
                    "\"forking\"",
                    "\"notify\"",
                    "\"oneshot\"",
                    "\"on-failure \"",
                    "\"ALWAYS\"",
                    "\"no\"",
                    "\"SIGKILLL\"",
                    "64",
                    "-9",
                    "\"0\"",
                ]);
                let mut lines = lines_of(&text);
                if let Some(i) = lines
                    .iter()
                    .position(|l| l.starts_with(format!("{key} =").as_bytes()))
                {
                    lines[i] = format!("{key} = {value}\n").into_bytes();
                }
                text = lines.concat();
                done.push("an odd enum value");
            }
            12 => {
                let mut lines = lines_of(&text);
                if lines.len() > 1 {
                    let (a, b) = (rng.below(lines.len()), rng.below(lines.len()));
                    lines.swap(a, b);
                }
                text = lines.concat();
                done.push("swap two lines");
            }
            _ => {
                let quote =
                    *rng.pick(&[&b"\""[..], b"'", b"\"\"\"", b"\\", b"[", b"]", b"=", b"\r"]);
                text.splice(pos..pos, quote.iter().copied());
                done.push("a stray quote or bracket");
            }
        }
    }
    (text, done)
}

/// `verify` exited 0 or 1, every stderr line is `diakonos: ...` or an
/// indented hint, no problem is printed twice, an exit 1 names `file` and
/// ends with the summary, and an exit 0 prints only warnings.
fn check_verify(out: &Output, file: &str) -> Result<(), String> {
    let err = stderr(out);
    let code = out.status.code();
    if !matches!(code, Some(0 | 1)) {
        return Err(format!("verify exited with {}\n{err}", out.status));
    }
    if err.contains("panicked") || err.contains("RUST_BACKTRACE") {
        return Err(format!("verify panicked:\n{err}"));
    }
    let mut seen = std::collections::HashSet::new();
    for line in err.lines() {
        if !(line.starts_with("diakonos: ") || line.starts_with("  ")) {
            return Err(format!("a stray stderr line {line:?}\n{err}"));
        }
        if line.starts_with("diakonos: ") && !seen.insert(line) {
            return Err(format!("printed twice: {line:?}\n{err}"));
        }
    }
    let errors: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("diakonos: ") && !l.starts_with("diakonos: warning: "))
        .collect();
    if code == Some(1) {
        let (summary, problems) = errors.split_last().ok_or("exit 1 with no error")?;
        if !summary.contains("have errors") {
            return Err(format!("no summary line last\n{err}"));
        }
        if problems.is_empty() || problems.iter().any(|l| !l.contains(file)) {
            return Err(format!(
                "exit 1, but the errors do not all name {file}\n{err}"
            ));
        }
    } else if !errors.is_empty() || !stdout(out).contains("valid") {
        return Err(format!(
            "exit 0 with errors, or without saying valid\n{err}{}",
            stdout(out)
        ));
    }
    Ok(())
}

/// At most `n` characters of `text`, saying how long it really was.
fn clip(text: &str, n: usize) -> String {
    if text.chars().count() > n {
        let head: String = text.chars().take(n).collect();
        format!("{head}... ({} bytes)", text.len())
    } else {
        text.to_owned()
    }
}

#[test]
fn fuzzed_unit_files_never_crash_verify_or_reload() {
    // 300 seeded mutations of a valid unit: `verify` exits 0 or 1 with clean `diakonos:` errors, and a daemon reloading them (ten at a time) stays up.
    let h = Home::new("fuzzed_unit_files_never_crash_verify_or_reload");
    let seed = seed("fuzzed_unit_files_never_crash_verify_or_reload");
    let mut rng = Rng::new(seed);
    let dir = h.root.join("fz");
    fs::create_dir_all(&dir).expect("mkdir");
    for d in [&dir, &h.units] {
        fs::write(d.join("dep.service"), SLEEPER).expect("write");
        fs::write(d.join("cache.service"), SLEEPER).expect("write");
    }
    let cases: Vec<(Vec<u8>, Vec<&str>)> = (0..300)
        .map(|_| mutate(&mut rng, RICH_UNIT.as_bytes()))
        .collect();
    let mut valid = 0;
    for (i, (text, done)) in cases.iter().enumerate() {
        fs::write(dir.join("fz.service"), text).expect("write the fuzzed unit");
        let out = h.cmd(&["--service-dir", "fz", "verify"]);
        if let Err(e) = check_verify(&out, "fz.service") {
            panic!(
                "seed {seed}, case {i} ({done:?}): {e}\nunit file:\n{}",
                clip(&String::from_utf8_lossy(text), 600)
            );
        }
        valid += usize::from(out.status.success());
    }
    eprintln!("{valid} of {} mutations still verified", cases.len());

    // The daemon: ten fuzzed files per reload, next to a running unit.
    h.unit("web", SLEEPER);
    let daemon = start_daemon(&h);
    h.ok(&["start", "web"]);
    let web = h.pid("web");
    for (batch, chunk) in cases.chunks(10).enumerate() {
        for (j, (text, _)) in chunk.iter().enumerate() {
            fs::write(h.units.join(format!("fz{j}.service")), text).expect("write");
        }
        let out = h.cmd(&["reload"]);
        assert!(
            matches!(out.status.code(), Some(0 | 1)),
            "seed {seed}, reload of batch {batch}: {}\n{}",
            out.status,
            stderr(&out)
        );
        assert!(
            alive(daemon),
            "seed {seed}: the daemon died reloading batch {batch} (cases {}..{})",
            batch * 10,
            batch * 10 + chunk.len()
        );
    }
    assert_eq!(h.pid("web"), web, "reload touched an unchanged unit");
    let mut names = vec!["cache", "dep", "web"];
    let fz: Vec<String> = (0..10).map(|j| format!("fz{j}")).collect();
    names.extend(fz.iter().map(String::as_str));
    healthy(&h, daemon, &names);
}

#[test]
fn ten_thousand_unit_files_verify_and_list() {
    // A service dir of 10 000 unit files verifies, and `list --json` has 10 000 entries.
    let h = Home::new("ten_thousand_unit_files_verify_and_list");
    let _fast = FastUnits::new(&h);
    let names: Vec<String> = (0..10_000).map(|i| format!("u{i:05}")).collect();
    for n in &names {
        h.unit(n, "[service]\nExecStart = \"true\"\n");
    }
    let out = h.ok(&["verify"]);
    assert!(out.contains("10000 unit(s)"), "{out}");
    let daemon = start_daemon(&h);
    healthy(&h, daemon, &names);
}

#[test]
fn a_2000_deep_requires_chain_verifies_and_starts() {
    // c0000 <- c0001 <- ... <- c1999 by Requires: verify is happy and `start c1999` brings up all 2 000.
    let h = Home::new("a_2000_deep_requires_chain_verifies_and_starts");
    let _fast = FastUnits::new(&h);
    let names: Vec<String> = (0..2000).map(|i| format!("c{i:04}")).collect();
    h.unit(&names[0], SLEEPER);
    for w in names.windows(2) {
        h.unit(
            &w[1],
            &format!(
                "[unit]\nRequires = [\"{}\"]\n[service]\nExecStart = \"sleep 1000\"\n",
                w[0]
            ),
        );
    }
    let out = h.ok(&["verify"]);
    assert!(out.contains("2000 unit(s)"), "{out}");
    let daemon = start_daemon(&h);
    h.ok(&["start", "c1999"]);
    let list = h.json_list();
    let units = list.as_array().expect("an array");
    assert_eq!(units.len(), 2000);
    let down: Vec<&serde_json::Value> = units.iter().filter(|u| u["state"] != "running").collect();
    assert!(down.is_empty(), "not running: {down:?}");
    healthy(&h, daemon, &names);
    // Stopping 2 000 units one link at a time is slow in a debug build (see
    // the report); the harness kills the process groups instead.
    kill9(daemon);
}

#[test]
fn odd_unit_files_each_get_one_clear_error() {
    // Self-dependency, an empty file, a directory, an unreadable file, symlink loops and dangling links, a FIFO, NULs, bad UTF-8, huge numbers, deep nesting: one clear error each, and a daemon that lists them as invalid.
    let h = Home::new("odd_unit_files_each_get_one_clear_error");
    let units = &h.units;
    h.unit("good", SLEEPER);
    h.unit(
        "selfish",
        "[unit]\nRequires = [\"selfish\"]\n[service]\nExecStart = \"true\"\n",
    );
    h.unit("empty", "");
    fs::create_dir(units.join("dir.service")).expect("mkdir");
    symlink("loop.service", units.join("loop.service")).expect("symlink");
    symlink("ping.service", units.join("pong.service")).expect("symlink");
    symlink("pong.service", units.join("ping.service")).expect("symlink");
    symlink("nowhere.txt", units.join("dangling.service")).expect("symlink");
    nix::unistd::mkfifo(
        &units.join("fifo.service"),
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )
    .expect("mkfifo");
    fs::write(
        units.join("nul.service"),
        b"[service]\nExecStart = \"sle\0ep 1\"\n",
    )
    .expect("write");
    fs::write(
        units.join("utf8.service"),
        b"[service]\nExecStart = \"sleep \xff\xfe 1\"\n",
    )
    .expect("write");
    h.unit("escnul", "[service]\nExecStart = \"sleep\\u0000 1\"\n");
    h.unit(
        "hugesec",
        "[service]\nExecStart = \"true\"\nRestartSec = 1e300\n",
    );
    h.unit(
        "negsec",
        "[service]\nExecStart = \"true\"\nRestartSec = -1\n",
    );
    h.unit(
        "hugeburst",
        "[unit]\nStartLimitBurst = 9999999999999999999999\n[service]\nExecStart = \"true\"\n",
    );
    h.unit(
        "deep",
        &format!(
            "[service]\nExecStart = \"true\"\nX = {}{}\n",
            "[".repeat(100_000),
            "]".repeat(100_000)
        ),
    );
    fs::write(units.join("toobig.service"), vec![b'#'; 2 << 20]).expect("write");
    h.unit("bad name!", SLEEPER);
    let root = nix::unistd::Uid::effective().is_root();
    h.unit("locked", SLEEPER);
    fs::set_permissions(
        units.join("locked.service"),
        fs::Permissions::from_mode(0o000),
    )
    .expect("chmod 000");
    // (file stem, what its one error says)
    let mut expected = vec![
        ("selfish", "itself"),
        ("empty", "service"),
        ("dir", "directory"),
        ("loop", "symlink loop"),
        ("ping", "symlink loop"),
        ("pong", "symlink loop"),
        ("dangling", "dangling symlink"),
        ("fifo", "not a regular file"),
        ("nul", "NUL"),
        ("utf8", "UTF-8"),
        ("escnul", "NUL"),
        ("hugesec", "RestartSec"),
        ("negsec", "RestartSec"),
        ("hugeburst", "StartLimitBurst"),
        ("deep", "recurs"),
        ("toobig", "at most"),
        ("bad name!", "invalid unit name"),
    ];
    if !root {
        // Root reads a mode-000 file anyway.
        expected.push(("locked", "ermission"));
    }
    let verify = |h: &Home| {
        let out = h.cmd(&["verify"]);
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        stderr(&out)
    };
    let err = verify(&h);
    for (stem, says) in &expected {
        let path = format!("{}/{stem}.service", units.display());
        let lines: Vec<&str> = err
            .lines()
            .filter(|l| l.starts_with(&format!("diakonos: {path}")))
            .collect();
        assert_eq!(lines.len(), 1, "{stem}: want one error line\n{err}");
        assert!(
            lines[0].contains(says),
            "{stem}: want `{says}` in {:?}",
            lines[0]
        );
    }
    assert!(!err.contains("good.service"), "{err}");
    assert!(!err.contains("panicked"), "{err}");

    // The daemon: every odd one is invalid with a reason, good one starts.
    let daemon = start_daemon(&h);
    h.ok(&["start", "good"]);
    let list = h.json_list();
    for (stem, says) in &expected {
        let u = list
            .as_array()
            .and_then(|a| a.iter().find(|u| u["name"] == *stem));
        if let Some(u) = u {
            assert_eq!(u["state"], "invalid", "{stem}: {u}");
            let reason = u["reason"].as_str().unwrap_or_default();
            assert!(reason.contains(says), "{stem}: reason {reason:?}");
        } else {
            // Names the daemon cannot address (`bad name!`) may be left out.
            assert_eq!(*stem, "bad name!", "{stem} missing from {list}");
        }
    }
    let status = h.status_json("selfish");
    assert!(status.to_string().contains("itself"), "{status}");
    let mut names: Vec<String> = list
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|u| u["name"].as_str().map(str::to_owned))
        .collect();
    names.sort();
    assert!(names.contains(&"good".to_owned()));
    assert_eq!(h.state("good"), "running");
    // The daemon survives a reload of the same mess (which fails, naming the invalid units).
    h.fails(1, &["reload"]);
    healthy(&h, daemon, &names);
}

#[test]
fn a_list_of_more_than_a_mebibyte_still_works() {
    // 1 100 units with 1 000-byte descriptions make a list reply of about 1.1 MiB; `list` must still show them all.
    let h = Home::new("a_list_of_more_than_a_mebibyte_still_works");
    let text = "d".repeat(1000);
    let names: Vec<String> = (0..1100).map(|i| format!("u{i:04}")).collect();
    for n in &names {
        h.unit(
            n,
            &format!("[unit]\nDescription = \"{text}\"\n[service]\nExecStart = \"true\"\n"),
        );
    }
    let daemon = start_daemon(&h);
    healthy(&h, daemon, &names);
    h.ok(&["list"]);
}

#[test]
fn units_with_huge_bad_values_do_not_break_list() {
    // Two unit files whose bad Type values are 600 KB each still leave `list` showing every unit (SPEC 3: a bad unit never breaks the daemon).
    let h = Home::new("units_with_huge_bad_values_do_not_break_list");
    let huge = "y".repeat(600_000);
    for n in ["bad1", "bad2"] {
        h.unit(
            n,
            &format!("[service]\nExecStart = \"true\"\nType = \"{huge}\"\n"),
        );
    }
    h.unit("web", SLEEPER);
    let daemon = start_daemon(&h);
    h.ok(&["start", "web"]);
    assert_eq!(h.state("bad1"), "invalid");
    healthy(&h, daemon, &["bad1", "bad2", "web"]);
}

#[test]
fn unit_errors_quote_long_values_briefly() {
    // A 100 000-character bad Type value or key name gets an error line of under 1 000 characters.
    let h = Home::new("unit_errors_quote_long_values_briefly");
    let long = "y".repeat(100_000);
    h.unit(
        "longtype",
        &format!("[service]\nExecStart = \"true\"\nType = \"{long}\"\n"),
    );
    h.unit(
        "longkey",
        &format!("[service]\nExecStart = \"true\"\n{long} = 1\n"),
    );
    let out = h.cmd(&["verify"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    let longest = err.lines().map(str::len).max().unwrap_or(0);
    assert!(longest < 1000, "an error line of {longest} bytes");
}

// ---------------------------------------------------------------------------
// 4. Command-line arguments.

/// A bit of an argument vector: one or more words that belong together.
fn cli_atom(rng: &mut Rng, h: &Home) -> Vec<OsString> {
    let afile = h.root.join("a-file").into_os_string();
    let home = h.home.clone().into_os_string();
    let os = |s: &str| OsString::from(s);
    let numbers = [
        "0",
        "-1",
        "5",
        "18446744073709551615",
        "18446744073709551616",
        "99999999999999999999999999",
        "1e300",
        "NaN",
        "",
        " 3",
    ];
    match rng.below(12) {
        0 => vec![os(rng.pick::<&str>(&[
            "--json",
            "--no-color",
            "--no-colour",
            "-h",
            "--help",
            "-V",
            "--version",
            "--detach",
            "--bogus",
            "-x",
            "-",
            "--",
            "---",
            "--json=1",
            "-nfoo",
            "-Vh",
            "--help=me",
        ]))],
        1 => vec![
            os(rng.pick::<&str>(&["-n", "--lines"])),
            os(rng.pick::<&str>(&numbers)),
        ],
        2 => vec![os(rng.pick::<&str>(&numbers))],
        3 => vec![
            os("--service-dir"),
            rng.pick(&[
                os("units"),
                os(""),
                os("/nonexistent/dir"),
                os("/dev/null"),
                os("units/../units"),
                os(&"d".repeat(5000)),
            ])
            .clone(),
        ],
        // --home only with values that cannot make a second daemon.
        4 => vec![os("--home"), rng.pick(&[afile, home]).clone()],
        5 => vec![OsString::from_vec(rng.pick(BAD_UTF8).to_vec())],
        6 => vec![os(&"n".repeat(rng.pick(&[300, 5000, 100_000]).to_owned()))],
        _ => vec![os(rng.pick::<&str>(&[
            "web",
            "nosuch",
            "",
            "../../etc/passwd",
            "a b",
            "web.service",
            "é",
            "web@host",
            "list",
            "verify",
            "status",
            "logs",
            "help",
            "statsu",
            "LIST",
        ]))],
    }
}

/// A random command line; mostly commands that need no daemon. Half are
/// well-formed commands with odd values, half are word soup.
fn cli_args(rng: &mut Rng, h: &Home) -> Vec<OsString> {
    if rng.chance(50) {
        well_formed(rng, h)
    } else {
        soup(rng, h)
    }
}

/// A command in a valid shape, with odd names and numbers, and global
/// options before or after it.
fn well_formed(rng: &mut Rng, h: &Home) -> Vec<OsString> {
    let long = "n".repeat(5000);
    let names = [
        "web",
        "web",
        "nosuch",
        "",
        "a b",
        "é",
        "../x",
        "-",
        long.as_str(),
    ];
    let name = |rng: &mut Rng| OsString::from(*rng.pick(&names));
    let mut words: Vec<Vec<OsString>> = Vec::new();
    let cmd: Vec<OsString> = match rng.below(10) {
        0..=2 => {
            let mut v = vec![OsString::from("verify")];
            for _ in 0..rng.below(3) {
                v.push(name(rng));
            }
            v
        }
        3 | 4 => vec![OsString::from("daemon-status")],
        5 => {
            let mut v = vec![OsString::from("logs"), name(rng)];
            if rng.chance(50) {
                v.push(OsString::from("-n"));
                v.push(OsString::from(*rng.pick(&[
                    "0",
                    "1",
                    "18446744073709551615",
                    "99999999999999999999",
                    "-1",
                ])));
            }
            v
        }
        6 => vec![OsString::from(*rng.pick(&["help", "--help", "-V", "-h"]))],
        7 => vec![OsString::from("status"), name(rng)],
        8 => vec![OsString::from("list")],
        _ => {
            let cmd = *rng.pick(&[
                "start", "stop", "restart", "enable", "disable", "reload", "kill",
            ]);
            let mut v = vec![OsString::from(cmd)];
            if !matches!(cmd, "reload" | "kill") {
                v.push(name(rng));
            }
            v
        }
    };
    let json_ok = ["list", "status", "daemon-status"]
        .iter()
        .any(|c| cmd[0] == *c);
    words.push(cmd);
    if json_ok && rng.chance(40) {
        words.push(vec![OsString::from("--json")]);
    }
    if rng.chance(30) {
        let extra = match rng.below(3) {
            0 => vec![OsString::from("--no-color")],
            1 => vec![OsString::from("--service-dir"), OsString::from("units")],
            _ => vec![OsString::from("--home"), h.root.join("a-file").into()],
        };
        let at = rng.below(words.len() + 1);
        words.insert(at, extra);
    }
    words.concat()
}

/// Random atoms around a random command word.
fn soup(rng: &mut Rng, h: &Home) -> Vec<OsString> {
    let command = *rng.pick(&[
        "verify",
        "daemon-status",
        "logs",
        "help",
        "frobnicate",
        "",
        "statsu",
        "list",
        "status",
        "start",
        "stop",
        "restart",
        "reload",
        "enable",
        "disable",
        "kill",
    ]);
    let mut words: Vec<Vec<OsString>> = (0..rng.below(5)).map(|_| cli_atom(rng, h)).collect();
    if rng.chance(85) {
        let at = rng.below(words.len() + 1);
        words.insert(at, vec![OsString::from(command)]);
    }
    // A flag that takes a value, last and without one.
    if rng.chance(5) {
        words.push(vec![OsString::from(*rng.pick(&[
            "--home",
            "--service-dir",
            "-n",
        ]))]);
    }
    words.concat()
}

#[test]
fn random_argument_vectors_never_panic_the_client() {
    // 300 seeded argument vectors (commands, flags, garbage, huge numbers, empty and non-UTF-8 words) exit 0, 1, 2 or 3: never a panic or a signal.
    let h = Home::new("random_argument_vectors_never_panic_the_client");
    let seed = seed("random_argument_vectors_never_panic_the_client");
    let mut rng = Rng::new(seed);
    h.unit("web", SLEEPER);
    fs::write(h.root.join("a-file"), "not a directory").expect("write");
    let mut codes = std::collections::BTreeMap::new();
    for i in 0..300 {
        let args = cli_args(&mut rng, &h);
        // `daemon` (foreground) and `logs -f` run until killed: not here.
        assert!(!args
            .iter()
            .any(|a| a == "daemon" || a == "-f" || a == "--follow"));
        let mut cmd = Command::new(BIN);
        cmd.arg("--home")
            .arg(&h.home)
            .args(&args)
            .current_dir(&h.root)
            .env_remove("DIAKONOS_HOME")
            .env_remove("DIAKONOS_SERVICE_DIR")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null());
        let out = h.run_within(cmd, Duration::from_secs(30));
        let shown: Vec<String> = args
            .iter()
            .map(|a| clip(&a.to_string_lossy(), 40))
            .collect();
        assert!(
            matches!(out.status.code(), Some(0..=3)),
            "seed {seed}, vector {i} {shown:?}: {}\n{}",
            out.status,
            stderr(&out)
        );
        *codes.entry(out.status.code()).or_insert(0) += 1;
        assert!(
            !stderr(&out).contains("panicked"),
            "seed {seed}, vector {i} {shown:?}:\n{}",
            stderr(&out)
        );
    }
    eprintln!("exit codes: {codes:?}");
    // At most one daemon came of it, and if there is one it answers.
    let daemons = h.daemons();
    assert!(daemons.len() <= 1, "seed {seed}: daemons {daemons:?}");
    if let [daemon] = daemons[..] {
        assert_eq!(h.daemon_pid(), Some(daemon));
        let out = h.bare(&["--home", h.home.to_str().expect("utf-8"), "list"]);
        assert!(out.status.success(), "{}", stderr(&out));
    }
}

#[test]
fn a_non_utf8_service_dir_fails_at_once() {
    // A --service-dir that is not UTF-8 gets an answer at once, not after the daemon's 10 s client timeout.
    let h = Home::new("a_non_utf8_service_dir_fails_at_once");
    h.unit("web", SLEEPER);
    let daemon = start_daemon(&h);
    let mut cmd = Command::new(BIN);
    cmd.arg("--home")
        .arg(&h.home)
        .arg("--service-dir")
        .arg(OsString::from_vec(b"units-\xff".to_vec()))
        .arg("list")
        .current_dir(&h.root)
        .stdin(Stdio::null());
    let started = Instant::now();
    let out = h.run_within(cmd, Duration::from_secs(30));
    let took = started.elapsed();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        took < Duration::from_secs(5),
        "took {took:?}: {}",
        stderr(&out)
    );
    healthy(&h, daemon, &["web"]);
}

// ---------------------------------------------------------------------------
// 5. Resource hygiene under churn.

#[test]
fn two_thousand_restarts_leave_no_zombies_fds_or_memory() {
    // `false` restarted 2 000 times (RestartSec 0, no start limit): no zombie lingers, fds return to baseline, RSS stays flat.
    let h = Home::new("two_thousand_restarts_leave_no_zombies_fds_or_memory");
    h.unit(
        "churn",
        "[unit]\nStartLimitBurst = 0\n[service]\nExecStart = \"false\"\nRestart = \"always\"\nRestartSec = 0\n",
    );
    let daemon = start_daemon(&h);
    let baseline = baseline_fds(&h, daemon);
    h.ok(&["start", "churn"]);
    let restarts = || h.unit_json("churn")["restarts"].as_u64().unwrap_or(0);
    let watch = Duration::from_secs(60);
    // Zombies come and go between an exit and its reaping; none may stay.
    let check_zombies = || {
        let zombies = zombie_children(daemon);
        if !zombies.is_empty() {
            h.wait_until("transient zombies to be reaped", WAIT, || {
                zombie_children(daemon).iter().all(|z| !zombies.contains(z))
            });
        }
    };
    h.wait_until("500 restarts", watch, || {
        check_zombies();
        restarts() >= 500
    });
    let rss_500 = rss_kib(daemon).expect("daemon RSS");
    h.wait_until("2000 restarts", watch, || {
        check_zombies();
        restarts() >= 2000
    });
    let rss_2000 = rss_kib(daemon).expect("daemon RSS");
    assert!(
        rss_2000 < rss_500 + 1024,
        "RSS grew from {rss_500} KiB at 500 restarts to {rss_2000} KiB at 2000"
    );
    h.ok(&["stop", "churn"]);
    h.wait_until("no zombie children of the daemon", WAIT, || {
        zombie_children(daemon).is_empty()
    });
    assert!(
        children_of(daemon).is_empty(),
        "children left: {:?}",
        children_of(daemon)
    );
    fds_return_to(daemon, baseline, WAIT);
    eprintln!("RSS {rss_500} KiB at 500 restarts, {rss_2000} KiB at 2000");
    healthy(&h, daemon, &["churn"]);
}

// ---------------------------------------------------------------------------
// 6. Write errors.

#[test]
fn an_unwritable_state_file_is_reported_and_survived() {
    // With a directory squatting on HOME/state.tmp the daemon logs the failure and keeps supervising; once it is gone, state is written again.
    let h = Home::new("an_unwritable_state_file_is_reported_and_survived");
    h.unit(
        "svc",
        "[unit]\nStartLimitBurst = 0\n[service]\nExecStart = \"sleep 1000\"\nRestart = \"always\"\nRestartSec = 0\n",
    );
    h.unit("other", SLEEPER);
    let daemon = start_daemon(&h);
    let obstacle = h.home.join("state.tmp");
    fs::create_dir(&obstacle).expect("mkdir state.tmp");
    fs::write(obstacle.join("keep"), "so the directory is not empty").expect("write");
    h.ok(&["start", "svc"]);
    let log = || fs::read_to_string(h.home.join("daemon.log")).unwrap_or_default();
    h.wait_until("daemon.log to report the failed state write", WAIT, || {
        log()
            .lines()
            .any(|l| l.contains("cannot write") && l.contains("state"))
    });
    // Still supervising: a killed service comes back.
    let first = h.pid("svc");
    kill9(first);
    h.wait_until("svc to be restarted", WAIT, || {
        let u = h.unit_json("svc");
        u["state"] == "running" && u["pid"].as_i64().is_some_and(|p| p as i32 != first)
    });
    let state = h.home.join("state");
    assert!(
        !fs::read_to_string(&state)
            .unwrap_or_default()
            .contains("other"),
        "`other` is in the state file before it started"
    );
    fs::remove_dir_all(&obstacle).expect("remove the obstacle");
    h.ok(&["start", "other"]);
    h.wait_until("the state file to be written again", WAIT, || {
        let text = fs::read_to_string(&state).unwrap_or_default();
        text.contains("\"other\"") && text.contains("\"svc\"")
    });
    assert!(!obstacle.exists(), "a stale state.tmp is left");
    healthy(&h, daemon, &["other", "svc"]);
}

#[test]
fn a_full_disk_under_the_logs_is_survived() {
    // With daemon.log and a service's log on /dev/full (every write fails with ENOSPC), the daemon keeps working.
    let h = Home::new("a_full_disk_under_the_logs_is_survived");
    assert!(
        std::path::Path::new("/dev/full").exists(),
        "this test needs /dev/full (every Linux has it)"
    );
    h.unit(
        "noisy",
        "[unit]\nStartLimitBurst = 0\n[service]\nExecStart = \"sh -c 'echo hello; echo oops >&2; exec sleep 1000'\"\nRestart = \"always\"\nRestartSec = 0\n",
    );
    fs::create_dir_all(h.home.join("logs")).expect("mkdir logs");
    fs::set_permissions(&h.home, fs::Permissions::from_mode(0o700)).expect("chmod");
    symlink("/dev/full", h.home.join("daemon.log")).expect("symlink daemon.log");
    symlink("/dev/full", h.home.join("logs/noisy.log")).expect("symlink noisy.log");
    let daemon = start_daemon(&h);
    h.ok(&["start", "noisy"]);
    let first = h.pid("noisy");
    kill9(first);
    h.wait_until("noisy to be restarted", WAIT, || {
        let u = h.unit_json("noisy");
        u["state"] == "running" && u["pid"].as_i64().is_some_and(|p| p as i32 != first)
    });
    // Things the daemon logs about: a bad frame, a reload, a status.
    let mut s = connect(&h);
    s.write_all(&[0xff, 0xff, 0xff, 0xff]).expect("write");
    let _ = reply_then_close(&mut s, Duration::from_secs(10));
    h.ok(&["reload"]);
    h.ok(&["status", "noisy"]);
    let _ = h.cmd(&["logs", "noisy"]);
    healthy(&h, daemon, &["noisy"]);
}

// ---------------------------------------------------------------------------
// 7. Close-on-exec.

/// The `flags:` of /proc/PID/fdinfo/FD (octal).
fn fd_flags(pid: i32, fd: u32) -> Option<u32> {
    let info = fs::read_to_string(format!("/proc/{pid}/fdinfo/{fd}")).ok()?;
    let line = info.lines().find(|l| l.starts_with("flags:"))?;
    u32::from_str_radix(line.split_whitespace().nth(1)?, 8).ok()
}

#[test]
fn every_daemon_fd_above_stderr_is_close_on_exec() {
    // Every fd the daemon holds above 2 (lock, log, sockets, epoll, signal pipe, client connections, pidfds of adopted services, an inherited fd) has O_CLOEXEC.
    const O_CLOEXEC: u32 = 0o2000000;
    let h = Home::new("every_daemon_fd_above_stderr_is_close_on_exec");
    h.unit("web", SLEEPER);
    h.unit(
        "ready",
        "[service]\nType = \"notify\"\nExecStart = \"sh -c 'exec sleep 1000'\"\nTimeoutStartSec = 30\n",
    );
    // A first daemon starts a service and dies; the next one adopts it
    // (a pidfd) and inherits fd 42 from the client that starts it.
    h.ok(&["start", "web"]);
    let first = h.daemon_pid().expect("daemon pid");
    kill9(first);
    h.wait_until("the first daemon to die", WAIT, || !alive(first));
    let stray = fs::File::create(h.root.join("stray")).expect("create a file");
    let out = h.cmd_fds(&["list"], Some(&stray));
    assert!(out.status.success(), "{}", stderr(&out));
    let daemon = h.daemon_pid().expect("daemon pid");
    assert_ne!(daemon, first);
    // A notify service waiting to be ready, and clients in every stage.
    let mut starter = h.command(&["start", "ready"]);
    starter.stdout(Stdio::null()).stderr(Stdio::null());
    let mut starter = starter.spawn().expect("spawn a start");
    let idle = connect(&h);
    let mut half = connect(&h);
    half.write_all(&list_frame()[..5]).expect("write");
    h.wait_until("ready to be starting", WAIT, || {
        h.state("ready") == "starting"
    });
    let fds = fds_of(daemon);
    assert!(fds.contains(&42), "the daemon did not inherit fd 42");
    let mut missing = Vec::new();
    for &fd in fds.iter().filter(|&&fd| fd > 2) {
        match fd_flags(daemon, fd) {
            Some(flags) if flags & O_CLOEXEC != 0 => {}
            Some(flags) => missing.push(format!("{fd} (flags {flags:o})")),
            None => {} // Closed between the listing and the read.
        }
    }
    assert!(
        missing.is_empty(),
        "fds without O_CLOEXEC: {missing:?}\n{}",
        describe_fds(daemon)
    );
    drop(idle);
    drop(half);
    let _ = starter.kill();
    let _ = starter.wait();
    h.ok(&["stop", "ready"]);
    healthy(&h, daemon, &["ready", "web"]);
    assert_eq!(h.state("web"), "running");
}
