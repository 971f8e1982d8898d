//! Soak test, not run in CI: crashing units restart as fast as they can
//! while a crowd of clients lists, queries, starts, stops and restarts, and
//! a few throw garbage at the socket. At the end the daemon must be the same
//! process, with its fds back at the baseline, a flat RSS and no zombies.
//!
//! ```sh
//! DIAKONOS_SOAK_SECS=600 cargo test --release --test soak -- --nocapture
//! (`test = false` in Cargo.toml keeps it out of a plain `cargo test`.)
//! ```
//!
//! The duration defaults to 120 s.

#[allow(dead_code)]
#[path = "it/util.rs"]
mod util;

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use diakonos::protocol::{self, Request, RequestFrame, Response};
use util::{alive, children_of, fds_of, read_to_close, rss_kib, stderr, zombie_children, Home};

/// A `List` request of this protocol version, framed as the library does.
fn list_frame() -> Vec<u8> {
    protocol::encode_request(&RequestFrame::new(Request::List, None))
        .expect("encode a List request")
}

/// Crowd size: threads that each own one stable unit to start and stop.
const CLIENTS: usize = 4;

/// Allowed RSS growth between the end of the warm-up and the end (KiB).
const RSS_SLACK_KIB: u64 = 2048;

const CRASHERS: [(&str, &str); 4] = [
    (
        "crash-fast",
        "[unit]\nStartLimitBurst = 0\n[service]\nExecStart = \"false\"\nRestart = \"always\"\nRestartSec = 0\n",
    ),
    (
        "crash-code",
        "[unit]\nStartLimitBurst = 0\n[service]\nExecStart = \"sh -c 'echo out; echo err >&2; exit 3'\"\nRestart = \"on-failure\"\nRestartSec = 0\n",
    ),
    (
        "crash-signal",
        "[unit]\nStartLimitBurst = 0\n[service]\nExecStart = \"sh -c 'kill -9 $$$$'\"\nRestart = \"on-failure\"\nRestartSec = 0.005\n",
    ),
    (
        "crash-orphan",
        // Leaves an orphan the daemon (a subreaper) must reap too.
        "[unit]\nStartLimitBurst = 0\n[service]\nExecStart = \"sh -c '(sleep 0.01 &); exit 1'\"\nRestart = \"always\"\nRestartSec = 0.01\n",
    ),
];

/// Tiny xorshift PRNG for the client mix.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

#[derive(Default)]
struct Tally {
    ops: BTreeMap<&'static str, u64>,
    failures: Vec<String>,
}

fn soak_secs() -> u64 {
    std::env::var("DIAKONOS_SOAK_SECS")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(120)
}

fn restarts_of(h: &Home) -> BTreeMap<String, u64> {
    h.json_list()
        .as_array()
        .into_iter()
        .flatten()
        .map(|u| {
            (
                u["name"].as_str().unwrap_or_default().to_owned(),
                u["restarts"].as_u64().unwrap_or(0),
            )
        })
        .collect()
}

/// One client's work until `stop`: mostly reads, some start/stop/restart of
/// its own unit, now and then garbage or a raw request.
fn client(h: &Home, id: usize, stop: &AtomicBool, tally: &Mutex<Tally>) {
    let mine = format!("stable-{id}");
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ ((id as u64 + 1) * 0x1000_0001));
    let sock = h.home.join("diakonos.sock");
    while !stop.load(Ordering::Relaxed) {
        let (what, result): (&'static str, Result<(), String>) = match rng.below(10) {
            0..=2 => ("list", run(h, &["list", "--json"])),
            3 => (
                "status",
                run(h, &["status", CRASHERS[id % CRASHERS.len()].0]),
            ),
            4 => ("status", run(h, &["status", &mine])),
            5 => ("start", run(h, &["start", &mine])),
            6 => ("stop", run(h, &["stop", &mine])),
            7 => ("restart", run(h, &["restart", &mine])),
            8 => {
                let result = UnixStream::connect(&sock)
                    .map_err(|e| e.to_string())
                    .and_then(|mut s| {
                        let junk: Vec<u8> = (0..rng.below(2048)).map(|i| i as u8 ^ 0x5a).collect();
                        let _ = s.write_all(&junk);
                        let _ = s.shutdown(std::net::Shutdown::Write);
                        read_to_close(&mut s, Duration::from_secs(15))
                            .map(drop)
                            .ok_or_else(|| "garbage connection left open".to_owned())
                    });
                ("garbage", result)
            }
            _ => {
                let result = UnixStream::connect(&sock)
                    .map_err(|e| e.to_string())
                    .and_then(|mut s| {
                        s.write_all(&list_frame()).map_err(|e| e.to_string())?;
                        let mut got = read_to_close(&mut s, Duration::from_secs(15))
                            .ok_or("raw list left open")?;
                        let total = got.len();
                        let reply = protocol::take_frame(&mut got)
                            .ok()
                            .flatten()
                            .filter(|_| got.is_empty())
                            .and_then(|body| protocol::decode_reply(&body).ok());
                        match reply.map(|r| r.response) {
                            Some(Response::Units(_)) => Ok(()),
                            _ => Err(format!("raw list: bad reply of {total} bytes")),
                        }
                    });
                ("raw list", result)
            }
        };
        let mut t = tally.lock().expect("tally");
        *t.ops.entry(what).or_default() += 1;
        if let Err(e) = result {
            if t.failures.len() < 20 {
                t.failures.push(format!("client {id} {what}: {e}"));
            } else {
                t.failures.push(String::new());
            }
        }
    }
}

fn run(h: &Home, args: &[&str]) -> Result<(), String> {
    let out = h.cmd(args);
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("{}: {}", out.status, stderr(&out).trim()))
    }
}

#[test]
fn soak_restart_churn_and_a_crowd_of_clients() {
    // Restart churn plus a crowd of clients for minutes: same daemon, fds back at baseline, flat RSS, no zombies.
    let secs = soak_secs();
    let h = Home::new("soak");
    for (name, unit) in CRASHERS {
        h.unit(name, unit);
    }
    for id in 0..CLIENTS {
        h.unit(
            &format!("stable-{id}"),
            "[service]\nExecStart = \"sleep 100000\"\n",
        );
    }
    h.ok(&["list"]);
    let daemon = h.daemon_pid().expect("daemon pid");
    // One answered request first: the starting client's probe is gone then.
    h.ok(&["list"]);
    let fd_baseline = fds_of(daemon).len();
    let rss_start = rss_kib(daemon).unwrap_or(0);
    let names: Vec<&str> = CRASHERS.iter().map(|(n, _)| *n).collect();
    let mut start = vec!["start"];
    start.extend(&names);
    // A crasher may be between launches when `start` looks: not an error.
    let _ = h.cmd(&start);

    let began = Instant::now();
    let end = began + Duration::from_secs(secs);
    let warm_at = began + Duration::from_secs((secs / 10).max(5).min(secs));
    let stop = AtomicBool::new(false);
    let tally = Mutex::new(Tally::default());
    let peak_fds = AtomicU64::new(0);
    let mut rss_warm = None;
    let mut rss_peak = rss_start;
    let mut lingering: Vec<i32> = Vec::new();
    let mut max_transient = 0;
    std::thread::scope(|s| {
        for id in 0..CLIENTS {
            let (h, stop, tally) = (&h, &stop, &tally);
            s.spawn(move || client(h, id, stop, tally));
        }
        let mut last_zombies: Vec<i32> = Vec::new();
        while Instant::now() < end {
            std::thread::sleep(Duration::from_millis(500));
            if !alive(daemon) {
                break;
            }
            let fds = fds_of(daemon).len() as u64;
            peak_fds.fetch_max(fds, Ordering::Relaxed);
            let rss = rss_kib(daemon).unwrap_or(0);
            rss_peak = rss_peak.max(rss);
            if rss_warm.is_none() && Instant::now() >= warm_at {
                rss_warm = Some(rss);
            }
            // A zombie seen twice, 500 ms apart, is not being reaped.
            let zombies = zombie_children(daemon);
            max_transient = max_transient.max(zombies.len());
            lingering.extend(zombies.iter().filter(|z| last_zombies.contains(z)));
            last_zombies = zombies;
        }
        stop.store(true, Ordering::Relaxed);
    });
    let elapsed = began.elapsed();
    assert!(alive(daemon), "the daemon died during the soak");
    let restarts = restarts_of(&h);
    let rss_end = rss_kib(daemon).unwrap_or(0);

    // Wind down: stop everything, then the daemon must be back at rest.
    let mut all = vec!["stop"];
    all.extend(&names);
    let stables: Vec<String> = (0..CLIENTS).map(|i| format!("stable-{i}")).collect();
    all.extend(stables.iter().map(String::as_str));
    h.ok(&all);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !children_of(daemon).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let left = children_of(daemon);
    h.ok(&["list"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while fds_of(daemon).len() > fd_baseline && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let fds_end = fds_of(daemon).len();

    let t = tally.lock().expect("tally");
    let total_ops: u64 = t.ops.values().sum();
    let total_restarts: u64 = restarts.values().sum();
    let rss_warm = rss_warm.unwrap_or(rss_start);
    println!(
        "soak: {:.0} s, daemon pid {daemon} throughout",
        elapsed.as_secs_f64()
    );
    println!(
        "  restarts: {total_restarts} ({:.0}/s): {}",
        total_restarts as f64 / elapsed.as_secs_f64(),
        restarts
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(u, n)| format!("{u} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "  client ops: {total_ops} ({}), failures {}",
        t.ops
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", "),
        t.failures.len()
    );
    println!(
        "  fds: baseline {fd_baseline}, peak {}, after stopping all {fds_end}",
        peak_fds.load(Ordering::Relaxed)
    );
    println!(
        "  RSS: start {rss_start} KiB, after warm-up {rss_warm} KiB, peak {rss_peak} KiB, end {rss_end} KiB"
    );
    println!(
        "  zombies: at most {max_transient} at a sample, lingering {lingering:?}; children left after stop: {left:?}"
    );
    for f in t.failures.iter().filter(|f| !f.is_empty()) {
        println!("  failure: {f}");
    }

    assert_eq!(h.daemon_pid(), Some(daemon), "the daemon was replaced");
    assert!(t.failures.is_empty(), "client failures: {:?}", t.failures);
    assert!(lingering.is_empty(), "zombies not reaped: {lingering:?}");
    assert!(
        left.is_empty(),
        "children left after stopping all: {left:?}"
    );
    assert!(
        fds_end <= fd_baseline,
        "fds: baseline {fd_baseline}, end {fds_end}"
    );
    assert!(
        rss_end <= rss_warm + RSS_SLACK_KIB,
        "RSS grew from {rss_warm} KiB after warm-up to {rss_end} KiB"
    );
    assert!(total_restarts > 0, "nothing restarted");
}
