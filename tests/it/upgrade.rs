//! Upgrades keep services (SPEC §17): a daemon that really speaks another
//! protocol version (the test knob `DIAKONOS_TEST_PROTOCOL_VERSION`, read by
//! client and daemon alike) hands its services over to a daemon of this
//! binary, when a client of this version meets an older one, or on
//! `daemon-upgrade`. No service restarts: same pids, one launch each in the
//! marker files, restart counts kept. `kill` and `daemon-status` work across
//! versions.

use std::collections::BTreeMap;
use std::time::Duration;

use diakonos::protocol::{PROTOCOL_VERSION, TEST_VERSION_ENV};
use serde_json::Value;

use crate::util::{alive, gone, kill9, sh, stderr, stdout, Home, WAIT};

const OLDER: u32 = PROTOCOL_VERSION - 1;
const NEWER: u32 = PROTOCOL_VERSION + 1;

/// A service that writes one line per launch to `NAME.starts`, restarted
/// at once whenever it dies.
fn marked(h: &Home, name: &str) {
    h.unit(
        name,
        &format!(
            "[service]\nRestart = \"always\"\nRestartSec = 0\nExecStart = {}\n",
            sh(&format!("echo $$ >> {name}.starts; exec sleep 1000"))
        ),
    );
}

/// Runs the client as a diakonos of protocol `version`; asserts exit 0.
/// A daemon it starts speaks `version` too.
fn ok_as(h: &Home, version: u32, args: &[&str]) -> String {
    let mut cmd = h.command(args);
    cmd.env(TEST_VERSION_ENV, version.to_string());
    let out = h.run(cmd);
    assert!(
        out.status.success(),
        "`diakonos {}` (protocol {version}) failed with {}\nstdout:\n{}\nstderr:\n{}",
        args.join(" "),
        out.status,
        stdout(&out),
        stderr(&out)
    );
    stdout(&out)
}

/// `list --json` of a client speaking `version`, by unit name; the pids are
/// remembered for cleanup.
fn units_as(h: &Home, version: u32) -> BTreeMap<String, Value> {
    units_of(h, &ok_as(h, version, &["list", "--json"]))
}

fn units_of(h: &Home, json: &str) -> BTreeMap<String, Value> {
    let list: Value = serde_json::from_str(json)
        .unwrap_or_else(|e| panic!("list --json is not JSON ({e}): {json}"));
    let mut out = BTreeMap::new();
    for u in list.as_array().into_iter().flatten() {
        if let Some(pid) = u["pid"].as_i64() {
            h.remember(pid as i32);
        }
        out.insert(u["name"].as_str().unwrap_or_default().to_owned(), u.clone());
    }
    out
}

/// (pid, restarts, state) per unit: what a hand-over must not change.
fn fingerprint(units: &BTreeMap<String, Value>) -> BTreeMap<String, (i64, u64, String)> {
    units
        .iter()
        .map(|(name, u)| {
            (
                name.clone(),
                (
                    u["pid"].as_i64().unwrap_or(-1),
                    u["restarts"].as_u64().unwrap_or(u64::MAX),
                    u["state"].as_str().unwrap_or_default().to_owned(),
                ),
            )
        })
        .collect()
}

/// The launches of `name` so far (lines in its marker file).
fn launches(h: &Home, name: &str) -> usize {
    h.lines(&format!("{name}.starts")).len()
}

/// Starts `a` and `b` under a daemon of protocol `version`, and has `b`
/// restarted once (so a restart count is there to keep). Returns the
/// daemon's pid and the units as that daemon lists them.
fn services_under(h: &Home, version: u32) -> (i32, BTreeMap<String, Value>) {
    marked(h, "a");
    marked(h, "b");
    ok_as(h, version, &["start", "a", "b"]);
    let daemon = h.daemon_pid().expect("a daemon pid");
    let status: Value = serde_json::from_str(&ok_as(h, version, &["daemon-status", "--json"]))
        .expect("daemon-status --json is JSON");
    assert_eq!(status["protocol"], version, "{status}");
    h.wait_until("a and b to write their first line", WAIT, || {
        launches(h, "a") == 1 && launches(h, "b") == 1
    });
    let first_b = units_as(h, version)["b"]["pid"]
        .as_i64()
        .expect("b has a pid") as i32;
    kill9(first_b);
    h.wait_until("b to be relaunched once", WAIT, || {
        let b = &units_as(h, version)["b"];
        b["state"] == "running" && b["pid"] != first_b && launches(h, "b") == 2
    });
    let units = units_as(h, version);
    assert_eq!(units["b"]["restarts"], 1, "{units:?}");
    assert_eq!(units["a"]["restarts"], 0, "{units:?}");
    (daemon, units)
}

/// After a hand-over from `old`: a new daemon of this version lists the
/// same services, and none is launched again.
fn kept(h: &Home, old: i32, before: &BTreeMap<String, Value>, listed: &str) {
    let new = h.daemon_pid().expect("a new daemon pid");
    assert_ne!(new, old, "the daemon was not replaced");
    h.wait_until("the old daemon to be gone", WAIT, || !alive(old));
    let status: Value = serde_json::from_str(&h.ok(&["daemon-status", "--json"]))
        .expect("daemon-status --json is JSON");
    assert_eq!(status["protocol"], PROTOCOL_VERSION, "{status}");
    assert_eq!(status["pid"], new, "{status}");
    assert_eq!(fingerprint(&units_of(h, listed)), fingerprint(before));
    // A wrongly "dead" adopted service would be relaunched at once (RestartSec = 0).
    h.stays(
        "one launch of a and two of b, same pids",
        Duration::from_millis(1500),
        || launches(h, "a") == 1 && launches(h, "b") == 2,
    );
    assert_eq!(
        fingerprint(&units_of(h, &h.ok(&["list", "--json"]))),
        fingerprint(before)
    );
    assert_eq!(h.daemon_pid(), Some(new), "a second hand-over happened");
}

#[test]
fn a_client_hands_an_older_daemon_over_and_no_service_restarts() {
    // A plain `list` meets a daemon of protocol N-1: the daemon hands over to one of this binary, `list` answers, same pids, restart counts kept, no relaunch.
    let h = Home::new("a_client_hands_an_older_daemon_over");
    let (old, before) = services_under(&h, OLDER);
    let out = h.cmd(&["list", "--json"]);
    assert!(
        out.status.success(),
        "list against an older daemon failed\nstdout:\n{}\nstderr:\n{}",
        stdout(&out),
        stderr(&out)
    );
    let note = stderr(&out);
    assert!(note.contains("handed over"), "{note}");
    assert!(note.contains(&format!("protocol {OLDER}")), "{note}");
    kept(&h, old, &before, &stdout(&out));
}

#[test]
fn a_newer_daemon_is_kept_until_daemon_upgrade_is_asked() {
    // A client of protocol N refuses a daemon of N+1 with a clear error (no hand-over); `daemon-upgrade` then hands over explicitly, keeping every service.
    let h = Home::new("a_newer_daemon_is_kept_until_daemon_upgrade");
    let (old, before) = services_under(&h, NEWER);
    let err = h.fails(1, &["list"]);
    assert!(err.contains(&format!("speaks protocol {NEWER}")), "{err}");
    assert!(err.contains("daemon-upgrade"), "{err}");
    assert_eq!(h.daemon_pid(), Some(old), "the newer daemon was replaced");
    assert_eq!(fingerprint(&units_as(&h, NEWER)), fingerprint(&before));
    let out = h.ok(&["daemon-upgrade"]);
    assert!(out.contains("daemon upgraded"), "{out}");
    assert!(out.contains(&format!("protocol {NEWER}")), "{out}");
    assert!(
        out.contains(&format!("protocol {PROTOCOL_VERSION}")),
        "{out}"
    );
    kept(&h, old, &before, &h.ok(&["list", "--json"]));
}

#[test]
fn daemon_upgrade_keeps_services_and_the_new_daemon_supervises_them() {
    // `daemon-upgrade` of a same-version daemon keeps every service; a service killed afterwards is restarted by the new daemon.
    let h = Home::new("daemon_upgrade_keeps_services");
    let (old, before) = services_under(&h, PROTOCOL_VERSION);
    let out = h.ok(&["daemon-upgrade"]);
    assert!(out.contains("every service kept running"), "{out}");
    kept(&h, old, &before, &h.ok(&["list", "--json"]));
    let a = h.pid("a");
    kill9(a);
    h.wait_until("a to be relaunched by the new daemon", WAIT, || {
        let u = h.unit_json("a");
        u["state"] == "running" && u["pid"] != a && u["restarts"] == 1 && launches(&h, "a") == 2
    });
}

#[test]
fn daemon_upgrade_without_a_daemon_starts_none() {
    // With no daemon running, `daemon-upgrade` says so, exits 0 and starts no daemon.
    let h = Home::new("daemon_upgrade_without_a_daemon_starts_none");
    let out = h.ok(&["daemon-upgrade"]);
    assert!(out.contains("no daemon was running"), "{out}");
    assert!(h.daemons().is_empty(), "a daemon was started");
}

#[test]
fn kill_and_daemon_status_work_across_versions() {
    // A client of protocol N reads `daemon-status` of, and `kill`s, daemons of N-1 and N+1 (the stable requests).
    for version in [OLDER, NEWER] {
        let h = Home::new(&format!("kill_and_daemon_status_across_v{version}"));
        marked(&h, "a");
        ok_as(&h, version, &["start", "a"]);
        let daemon = h.daemon_pid().expect("a daemon pid");
        let a = units_as(&h, version)["a"]["pid"]
            .as_i64()
            .expect("a has a pid") as i32;
        let status: Value = serde_json::from_str(&h.ok(&["daemon-status", "--json"]))
            .expect("daemon-status --json is JSON");
        assert_eq!(status["protocol"], version, "{status}");
        assert_eq!(status["pid"], daemon, "{status}");
        let out = h.ok(&["kill"]);
        assert!(out.contains("daemon stopped"), "{out}");
        assert!(gone(daemon) || !alive(daemon), "daemon {daemon} still runs");
        h.wait_until("a to be stopped", WAIT, || !alive(a));
        assert_eq!(launches(&h, "a"), 1);
    }
}
