//! `events` (SPEC §11): a stream of state changes on the control socket; a
//! client that does not read is dropped with a last line, and the daemon
//! goes on answering everyone else.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::util::*;

/// A `diakonos events` child, killed (by pid) and reaped when dropped.
struct Follower(Child);

impl Drop for Follower {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `diakonos events --json w` running, its stdout's lines coming through
/// the receiver (stderr: `stderr`).
fn follow_json(h: &Home, stderr: Stdio) -> (Follower, mpsc::Receiver<String>) {
    follow_json_of(h, "w", stderr)
}

/// `diakonos events --json UNIT`, as [`follow_json`].
fn follow_json_of(h: &Home, unit: &str, stderr: Stdio) -> (Follower, mpsc::Receiver<String>) {
    let mut cmd = h.command(&["events", "--json", unit]);
    cmd.stdout(Stdio::piped()).stderr(stderr);
    let mut f = Follower(cmd.spawn().expect("run diakonos events"));
    let rx = lines_of(&mut f);
    (f, rx)
}

/// The lines of `f`'s stdout, as they come.
fn lines_of(f: &mut Follower) -> mpsc::Receiver<String> {
    let stdout = f.0.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

/// Waits until the follower `rx` hears of a change: `w` is restarted
/// until its new process comes through (a change before the subscription
/// is unseen, and lines still queued from earlier ones do not count).
fn subscribed(h: &Home, rx: &mpsc::Receiver<String>) {
    let deadline = Instant::now() + WAIT;
    loop {
        assert!(Instant::now() < deadline, "no event");
        h.ok(&["restart", "w"]);
        let pid = h.pid("w");
        let until = Instant::now() + Duration::from_millis(200);
        while let Ok(line) = rx.recv_timeout(until.saturating_duration_since(Instant::now())) {
            let event: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
            if event["pid"] == pid {
                return;
            }
        }
    }
}

/// Waits for `events` to end: its exit code and what it said on stderr.
fn ended(f: &mut Follower) -> (Option<i32>, String) {
    let mut status = None;
    let deadline = Instant::now() + WAIT;
    while status.is_none() {
        assert!(Instant::now() < deadline, "events did not end");
        status = f.0.try_wait().expect("try_wait");
        if status.is_none() {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let mut err = String::new();
    if let Some(mut e) = f.0.stderr.take() {
        e.read_to_string(&mut err).expect("read stderr");
    }
    (status.and_then(|s| s.code()), err)
}

#[test]
fn events_stream_state_changes_as_json_lines() {
    let h = Home::new("events_json");
    h.unit(
        "w",
        "[service]\nExecStart = \"sh -c 'exit 3'\"\nRestart = \"no\"\n",
    );
    h.unit("other", "[service]\nExecStart = \"sleep 1000\"\n");
    h.ok(&["list"]); // the daemon runs
    let (_f, rx) = follow_json(&h, Stdio::null());
    // The stream is open once the first change arrives; start `other` and
    // `w` until it does (a start before the subscription is not seen).
    let deadline = Instant::now() + WAIT;
    let mut lines: Vec<serde_json::Value> = Vec::new();
    h.ok(&["start", "other"]);
    while !lines.iter().any(|l| l["to"] == "failed") {
        assert!(Instant::now() < deadline, "no failed event: {lines:?}");
        if lines.is_empty() {
            h.ok(&["start", "w"]);
        }
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
            lines.push(serde_json::from_str(&line).expect("a JSON line"));
        }
    }
    assert!(lines.iter().all(|l| l["unit"] == "w"), "{lines:?}");
    let failed = lines.iter().find(|l| l["to"] == "failed").expect("failed");
    assert_eq!(failed["from"], "running", "{failed}");
    assert_eq!(failed["reason"], "exited with code 3", "{failed}");
    assert_eq!(
        failed["last_exit"],
        serde_json::json!({"code": 3}),
        "{failed}"
    );
    // RFC 3339, UTC, with milliseconds: 2026-11-29T07:45:01.123Z.
    let time = failed["time"].as_str().unwrap_or_default();
    let b = time.as_bytes();
    assert!(
        b.len() == 24
            && time.ends_with('Z')
            && b[4] == b'-'
            && b[10] == b'T'
            && b[19] == b'.'
            && time[..4].parse::<u32>().is_ok_and(|y| y >= 2024),
        "{failed}"
    );
}

#[test]
fn a_client_that_does_not_read_is_dropped_with_a_last_line() {
    // A flapping unit floods the stream; `events` with its stdout never read
    // stops reading the socket, is dropped with a last line on stderr, and
    // the daemon answers others all along.
    let h = Home::new("events_slow");
    h.unit(
        "flap",
        "[unit]\nStartLimitBurst = 0\n[service]\nExecStart = \"true\"\nRestart = \"always\"\nRestartSec = 0\n",
    );
    h.ok(&["list"]);
    let mut cmd = h.command(&["events"]);
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut f = Follower(cmd.spawn().expect("run diakonos events"));
    h.ok(&["start", "flap"]);
    let mut stderr = f.0.stderr.take().expect("stderr");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        let _ = tx.send(text);
    });
    let log = h.home.join("daemon.log");
    h.wait_until(
        "the daemon to drop the slow client",
        Duration::from_secs(60),
        || {
            let started = Instant::now();
            h.ok(&["list"]);
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "the daemon is slowed"
            );
            std::fs::read_to_string(&log).is_ok_and(|t| t.contains("events: dropped"))
        },
    );
    h.ok(&["stop", "flap"]);
    // Now it reads: what was queued, then the last line.
    let mut stdout = f.0.stdout.take().expect("stdout");
    let (otx, orx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut out = String::new();
        let _ = stdout.read_to_string(&mut out);
        let _ = otx.send(out);
    });
    let text = rx.recv_timeout(WAIT).expect("events ended");
    let out = orx.recv_timeout(WAIT).expect("stdout closed");
    assert!(out.contains("flap"), "nothing was streamed");
    assert!(
        text.contains("events: dropped by the daemon: this client did not keep up"),
        "{text}"
    );
}

#[test]
fn the_stream_goes_on_across_a_daemon_upgrade_and_ends_with_an_error_at_kill() {
    // "stays connected" (SPEC §11): a hand-over to a new daemon does not end
    // it (the new daemon's changes come through); a daemon that stops and
    // has no successor ends it with an error, not a silent exit 0.
    let h = Home::new("events_across_upgrade");
    h.unit("w", "[service]\nExecStart = \"sleep 1000\"\n");
    h.ok(&["list"]);
    let old = h.daemon_pid().expect("a daemon");
    let (mut f, rx) = follow_json(&h, Stdio::piped());
    // Subscribed once a change comes through (start/stop until one does).
    subscribed(&h, &rx);
    h.ok(&["daemon-upgrade"]);
    h.wait_until("a new daemon", WAIT, || {
        h.daemon_pid().is_some_and(|p| p != old)
    });
    // Following the new daemon once a change comes through (the stream
    // reconnects a moment after the old daemon is gone).
    subscribed(&h, &rx);
    while rx.try_recv().is_ok() {}
    h.ok(&["stop", "w"]);
    let line = rx.recv_timeout(WAIT).expect("an event from the new daemon");
    let event: serde_json::Value = serde_json::from_str(&line).expect("a JSON line");
    assert_eq!(event["unit"], "w", "{event}");
    h.ok(&["kill"]);
    let (code, err) = ended(&mut f);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("the daemon was replaced"), "{err}");
    assert!(err.contains("the daemon stopped"), "{err}");
}

#[test]
fn events_after_a_daemon_crash_with_no_successor_say_it_stopped_and_nothing_else() {
    // kill -9 of the daemon and no command after it: `events` ends with exit 1 saying the daemon stopped, never that it was replaced.
    let h = Home::new("events_crash_no_successor");
    h.unit("w", "[service]\nExecStart = \"sleep 1000\"\n");
    h.ok(&["start", "w"]);
    let (mut f, rx) = follow_json(&h, Stdio::piped());
    subscribed(&h, &rx);
    let daemon = h.daemon_pid().expect("a daemon");
    crate::util::kill9(daemon);
    let (code, err) = ended(&mut f);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("the daemon stopped"), "{err}");
    assert!(!err.contains("replaced"), "{err}");
}

#[test]
fn a_stop_for_a_failure_says_why_as_it_begins() {
    // Over MemoryMax: the `running -> stopping` event already carries the reason, not only the `stopping -> restarting` one after it.
    let h = Home::new("events_stop_reason");
    h.unit(
        "w",
        &format!(
            "[service]\nMemoryMax = \"20M\"\nMemoryCheckSec = 0.2\nRestartSec = 300\nExecStart = {}\n",
            crate::util::sh("exec python3 -c 'import time; b = b\"x\" * (64 << 20); time.sleep(300)'")
        ),
    );
    let (_f, rx) = follow_json(&h, Stdio::null());
    // Subscribed: the first run's changes come through (restarted until one does).
    subscribed(&h, &rx);
    let deadline = Instant::now() + WAIT;
    let stopping = loop {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("the stop for its memory");
        let event: serde_json::Value = serde_json::from_str(&line).expect("a JSON line");
        if event["from"] == "running" && event["to"] == "stopping" {
            break event;
        }
    };
    let reason = stopping["reason"].as_str().unwrap_or_default();
    assert!(reason.starts_with("memory limit: RSS "), "{stopping}");
}

/// A home with `w` running and `diakonos events w` following it, its
/// stdout and stderr piped.
fn following_w(test: &str) -> (Home, Follower) {
    let h = Home::new(test);
    h.unit("w", "[service]\nExecStart = \"sleep 1000\"\n");
    h.ok(&["start", "w"]);
    let mut cmd = h.command(&["events", "w"]);
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let f = Follower(cmd.spawn().expect("run diakonos events"));
    (h, f)
}

#[test]
fn events_ends_when_its_reader_goes_away() {
    // `diakonos events | head -1`: once the pipe's reader is gone, the next event ends the client (exit 0), as `logs -f` does, instead of writing into a broken pipe until the daemon stops.
    let (h, mut f) = following_w("events_reader_gone");
    let stdout = f.0.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        // Reads one line, then drops the pipe's read end (as `head -1`).
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let deadline = Instant::now() + WAIT;
    while rx.try_recv().is_err() {
        assert!(Instant::now() < deadline, "no event line");
        h.ok(&["restart", "w"]);
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut status = None;
    while status.is_none() {
        assert!(Instant::now() < deadline, "events went on with no reader");
        h.ok(&["restart", "w"]);
        status = f.0.try_wait().expect("try_wait");
    }
    assert_eq!(status.and_then(|s| s.code()), Some(0));
}

#[test]
fn events_ends_when_its_reader_goes_away_even_with_no_event_to_come() {
    // `diakonos events | true` on an idle daemon: the reader is gone before any event, and none comes; the client ends (exit 0) all the same.
    let (_home, mut f) = following_w("events_reader_gone_idle");
    drop(f.0.stdout.take());
    let (code, err) = ended(&mut f);
    assert_eq!(code, Some(0), "{err}");
}

#[test]
fn events_follows_a_unit_whose_file_was_written_after_the_load() {
    // As `start` does, `events NAME` loads a unit file written since the daemon read the directory, and follows it.
    let h = Home::new("events_new_file");
    h.unit("w", "[service]\nExecStart = \"sleep 1000\"\n");
    h.ok(&["list"]);
    h.unit("fresh", "[service]\nExecStart = \"sleep 1000\"\n");
    h.wait_until("fresh listed, not loaded yet", WAIT, || {
        h.json_list()
            .as_array()
            .is_some_and(|a| a.iter().any(|u| u["name"] == "fresh"))
    });
    let (mut f, rx) = follow_json_of(&h, "fresh", Stdio::piped());
    // Not refused: still following a while later, before anything else loads `fresh`.
    h.stays("events following fresh", Duration::from_millis(700), || {
        f.0.try_wait().is_ok_and(|s| s.is_none())
    });
    let deadline = Instant::now() + WAIT;
    loop {
        assert!(Instant::now() < deadline, "no event of fresh");
        h.ok(&["restart", "fresh"]);
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
            assert!(line.contains("\"unit\":\"fresh\""), "{line}");
            break;
        }
    }
}

#[test]
fn a_follower_that_reads_keeps_up_with_a_start_of_a_thousand_units() {
    // One `start` of 1000 units is one pass of the daemon: thousands of events at once, more than a socket holds. A follower that reads them, even one that was not scheduled during the burst (stopped here), catches up and gets every one: a burst is not a client that does not keep up.
    let h = Home::new("a_follower_that_reads_keeps_up_with_a_start_of_a_thousand");
    let names: Vec<String> = (0..1000).map(|i| format!("s{i}")).collect();
    for name in &names {
        h.unit(name, "[service]\nExecStart = \"sleep 1000\"\n");
    }
    h.ok(&["list"]);
    let mut cmd = h.command(&["events", "--json"]);
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut f = Follower(cmd.spawn().expect("run diakonos events"));
    let rx = lines_of(&mut f);
    // Subscribed once a change of its own comes through.
    h.unit("probe", "[service]\nExecStart = \"sleep 1000\"\n");
    let deadline = Instant::now() + WAIT;
    'subscribed: loop {
        assert!(Instant::now() < deadline, "the follower heard nothing");
        h.ok(&["restart", "probe"]);
        while let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
            if line.contains("\"probe\"") {
                break 'subscribed;
            }
        }
    }
    let args: Vec<&str> = std::iter::once("start")
        .chain(names.iter().map(String::as_str))
        .collect();
    let follower = nix::unistd::Pid::from_raw(f.0.id() as i32);
    nix::sys::signal::kill(follower, nix::sys::signal::Signal::SIGSTOP).expect("stop the follower");
    h.ok(&args);
    nix::sys::signal::kill(follower, nix::sys::signal::Signal::SIGCONT)
        .expect("continue the follower");
    let mut running = std::collections::HashSet::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while running.len() < names.len() {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx.recv_timeout(left).unwrap_or_else(|_| {
            panic!(
                "the stream ended or stalled after {} of {} units running",
                running.len(),
                names.len()
            )
        });
        let event: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
        if event["to"] == "running" && event["unit"] != "probe" {
            running.insert(event["unit"].as_str().unwrap_or_default().to_owned());
        }
    }
    assert!(
        f.0.try_wait().expect("try_wait").is_none(),
        "the follower ended"
    );
    let log = std::fs::read_to_string(h.home.join("daemon.log")).unwrap_or_default();
    assert!(!log.contains("events: dropped"), "{log}");
}
