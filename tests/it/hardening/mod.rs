//! Hardening (issue 5): hostile bytes on the control socket, crowds of
//! clients, fuzzed unit files and argument vectors, restart churn and write
//! errors, all against the real binary. Every test that has a daemon ends by
//! checking that it is the very process it started with and that it still
//! answers `list` correctly.
//!
//! Fuzz-style tests draw from a seeded xorshift generator. The seed is
//! printed (the harness shows it when a test fails) and
//! `DIAKONOS_FUZZ_SEED=N` replays a run.
//!
//! This module holds what the topics share; the tests are in its
//! submodules, one per topic.

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

/// Invalid UTF-8 sequences, for unit files and argument vectors.
const BAD_UTF8: &[&[u8]] = &[
    &[0xff],
    &[0xc3, 0x28],
    &[0xed, 0xa0, 0x80],
    &[0xf4, 0x90, 0x80, 0x80],
    &[0x80],
    &[0xe2, 0x82],
];

/// At most `n` characters of `text`, saying how long it really was.
fn clip(text: &str, n: usize) -> String {
    if text.chars().count() > n {
        let head: String = text.chars().take(n).collect();
        format!("{head}... ({} bytes)", text.len())
    } else {
        text.to_owned()
    }
}

mod arguments;
mod concurrency;
mod resources;
mod socket;
mod unit_files;
