//! Upgrades keep services (SPEC §17): a daemon that really speaks another
//! protocol version (the test knob `DIAKONOS_TEST_PROTOCOL_VERSION`, read by
//! client and daemon alike) hands its services over to a daemon of this
//! binary, when a client of this version meets an older one, or on
//! `daemon-upgrade`. No service restarts: same pids, one launch each in the
//! marker files, restart counts kept. `kill` and `daemon-status` work across
//! versions.
//!
//! The previous release, protocol 1, had no hand-over request at all: the
//! `v1_*` tests run its REAL binary, built from commit [`V1_COMMIT`] of
//! this repository's git history on first use (see [`v1_binary`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
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
fn clients_racing_against_an_older_daemon_end_with_one_new_daemon() {
    // Four `list` clients meet a daemon of protocol N-1 at once: the lock and sockets handed over with a `Bye` let one new daemon live, every client succeeds, no service is relaunched.
    let h = Home::new("clients_racing_against_an_older_daemon");
    let (old, before) = services_under(&h, OLDER);
    race_lists(&h, old, &before);
}

/// Four `list --json` clients at once against the daemon `old`: each
/// succeeds and lists `before`'s services unchanged; then they are kept
/// (see [`kept`]) and one daemon is left.
fn race_lists(h: &Home, old: i32, before: &BTreeMap<String, Value>) {
    let outs: Vec<_> = std::thread::scope(|s| {
        let runs: Vec<_> = (0..4)
            .map(|_| s.spawn(|| h.cmd(&["list", "--json"])))
            .collect();
        runs.into_iter()
            .map(|r| r.join().expect("a client thread panicked"))
            .collect()
    });
    for out in &outs {
        assert!(
            out.status.success(),
            "a racing list failed\nstdout:\n{}\nstderr:\n{}",
            stdout(out),
            stderr(out)
        );
        assert_eq!(fingerprint(&units_of(h, &stdout(out))), fingerprint(before));
    }
    kept(h, old, before, &h.ok(&["list", "--json"]));
    let daemons = h.daemons();
    assert_eq!(daemons, h.daemon_pid().into_iter().collect::<Vec<_>>());
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
fn a_unit_file_broken_before_an_upgrade_or_a_crash_costs_no_service_its_life() {
    // A running unit's file gets a typo (no reload): after `daemon-upgrade`, then after a SIGKILL of the daemon, it and its dependent keep their processes, the reason says the file no longer loads, and `stop` still stops it.
    let h = Home::new("broken_file_at_upgrade");
    h.unit("app", "[service]\nExecStart = \"sleep 1001\"\n");
    h.unit(
        "dep",
        "[unit]\nRequires = [\"app\"]\n[service]\nExecStart = \"sleep 1002\"\n",
    );
    h.ok(&["start", "dep"]);
    let (app, dep) = (h.pid("app"), h.pid("dep"));
    h.unit(
        "app",
        "[service]\nExecStart = \"sleep 1001\"\nRestrat = \"always\"\n",
    );
    for how in ["upgrade", "crash"] {
        h.replace_daemon(how);
        for (name, pid) in [("app", app), ("dep", dep)] {
            let u = h.unit_json(name);
            assert_eq!(
                (&u["state"], &u["pid"]),
                (&"running".into(), &pid.into()),
                "{how}: {u}"
            );
            assert!(alive(pid), "{how}: {name}");
        }
        let reason = h.unit_json("app")["reason"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(
            reason.contains("no longer loads") && reason.contains("Restrat"),
            "{reason}"
        );
    }
    h.ok(&["stop", "app"]);
    h.wait_until("app's process gone", WAIT, || gone(app));
    assert_eq!(h.state("app"), "invalid");
}

#[test]
fn an_edit_not_yet_reloaded_survives_an_upgrade_and_a_crash() {
    // A running unit's file is edited without `reload`: after `daemon-upgrade` and after a SIGKILL of the daemon it still shows changed on disk, its process untouched; `reload` then restarts it with the new definition.
    let h = Home::new("edit_survives_upgrade");
    h.unit("app", "[service]\nExecStart = \"sleep 1001\"\n");
    h.ok(&["start", "app"]);
    let pid = h.pid("app");
    h.unit("app", "[service]\nExecStart = \"sleep 1002\"\n");
    h.wait_until("the edit noticed", WAIT, || {
        h.unit_json("app")["changed_on_disk"] == true
    });
    for how in ["upgrade", "crash"] {
        h.replace_daemon(how);
        let u = h.unit_json("app");
        assert_eq!(
            (&u["pid"], &u["changed_on_disk"]),
            (&pid.into(), &true.into()),
            "{how}: {u}"
        );
    }
    let out = h.ok(&["reload"]);
    assert!(out.contains("app"), "{out}");
    h.wait_until("app restarted with the new definition", WAIT, || {
        let u = h.unit_json("app");
        u["state"] == "running" && u["pid"] != pid && u["changed_on_disk"] == false
    });
    assert!(crate::util::cmdline(h.pid("app")).contains("sleep 1002"));
    // Nothing left to apply: the next reload changes nothing.
    let again = h.pid("app");
    h.ok(&["reload"]);
    assert_eq!(h.pid("app"), again);
}

#[test]
fn a_restart_after_an_upgrade_applies_the_edit_and_clears_its_mark() {
    // A running unit's file is edited without `reload`, then the daemon is upgraded: `restart` runs the new file, after which nothing shows as changed and `reload` has nothing to restart.
    let h = Home::new("restart_applies_edit_after_upgrade");
    h.unit("app", "[service]\nExecStart = \"sleep 1001\"\n");
    h.ok(&["start", "app"]);
    h.unit("app", "[service]\nExecStart = \"sleep 1002\"\n");
    h.wait_until("the edit noticed", WAIT, || {
        h.unit_json("app")["changed_on_disk"] == true
    });
    h.replace_daemon("upgrade");
    assert_eq!(h.unit_json("app")["changed_on_disk"], true);
    let old = h.pid("app");
    h.ok(&["restart", "app"]);
    let new = h.pid("app");
    assert_ne!(new, old);
    assert!(crate::util::cmdline(new).contains("sleep 1002"));
    let u = h.unit_json("app");
    assert_eq!(u["changed_on_disk"], false, "{u}");
    assert!(!h.ok(&["list"]).contains("changed on disk"));
    let out = h.ok(&["reload"]);
    assert!(!out.contains("app"), "reload restarted app again: {out}");
    assert_eq!(h.pid("app"), new);
}

#[test]
fn a_stop_under_way_goes_on_across_an_upgrade_without_a_second_signal() {
    // A service that ignores SIGTERM is being stopped (TimeoutStopSec = 3) when the daemon is upgraded: it gets SIGTERM once, and the new daemon's SIGKILL ends it.
    let h = Home::new("stop_goes_on_across_upgrade");
    h.start_script(
        "stubborn",
        "TimeoutStopSec = 3\n",
        "trap 'echo term >> terms' TERM; echo $$ > stubborn.pid; while :; do sleep 0.1; done",
    );
    let pid = h.written_pid("stubborn.pid");
    let mut stop = h.command(&["stop", "stubborn"]).spawn().expect("run stop");
    h.wait_written("terms", "the SIGTERM");
    h.ok(&["daemon-upgrade"]);
    h.wait_until("the service killed", WAIT, || gone(pid));
    let _ = stop.kill();
    let _ = stop.wait();
    assert_eq!(h.lines("terms").len(), 1, "SIGTERM sent again");
    assert_eq!(h.state("stubborn"), "inactive");
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
        // `start` returns once `a` is spawned: wait for its shell's line
        // before the kill can cut it short.
        h.wait_lines("a.starts", 1);
        let out = h.ok(&["kill"]);
        assert!(out.contains("daemon stopped"), "{out}");
        assert!(gone(daemon) || !alive(daemon), "daemon {daemon} still runs");
        h.wait_until("a to be stopped", WAIT, || !alive(a));
        assert_eq!(launches(&h, "a"), 1);
    }
}

/// The last commit of protocol 1 (diakonos 0.1.0, before the stable envelope).
const V1_COMMIT: &str = "34c8f3e";

/// The binary of [`V1_COMMIT`], built once per test run. Its source is
/// exported with `git archive` to `target/tmp/diakonos-v1/src-COMMIT` and built
/// there with its own target dir `target/tmp/diakonos-v1/target` (a
/// minute or two the first time, nothing after). Panics, failing the test,
/// when the git history or the build is not there.
fn v1_binary() -> PathBuf {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match BUILT.get_or_init(build_v1) {
        Ok(bin) => bin.clone(),
        Err(e) => panic!("cannot build the protocol-1 release for this test: {e}"),
    }
}

fn build_v1() -> Result<PathBuf, String> {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let base = Path::new(env!("CARGO_TARGET_TMPDIR")).join("diakonos-v1");
    let src = base.join(format!("src-{V1_COMMIT}"));
    let done = src.join(".extracted");
    if !done.exists() {
        // Extract beside it, then rename: a half-extracted tree is never used.
        let tmp = base.join(format!("extracting-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp).map_err(|e| format!("mkdir {}: {e}", tmp.display()))?;
        let archive = Command::new("git")
            .arg("-C")
            .arg(repo)
            .args(["archive", "--format=tar", V1_COMMIT])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run git: {e}"))?;
        if !archive.status.success() {
            return Err(format!(
                "commit {V1_COMMIT} is not in the git history of {} (a clone with full history is \
                 needed, not a shallow one): {}",
                repo.display(),
                String::from_utf8_lossy(&archive.stderr).trim()
            ));
        }
        let mut tar = Command::new("tar")
            .arg("-x")
            .arg("-C")
            .arg(&tmp)
            .stdin(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run tar: {e}"))?;
        std::io::Write::write_all(
            &mut tar.stdin.take().ok_or("tar has no stdin")?,
            &archive.stdout,
        )
        .map_err(|e| format!("cannot feed tar: {e}"))?;
        let status = tar.wait().map_err(|e| format!("tar: {e}"))?;
        if !status.success() {
            return Err(format!("tar -x of {V1_COMMIT} failed: {status}"));
        }
        std::fs::write(tmp.join(".extracted"), V1_COMMIT).map_err(|e| e.to_string())?;
        if std::fs::rename(&tmp, &src).is_err() {
            // Another test run got there first.
            let _ = std::fs::remove_dir_all(&tmp);
        }
    }
    let target = base.join("target");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .args(["build", "--locked", "--bin", "diakonos", "--target-dir"])
        .arg(&target)
        .current_dir(&src)
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "cargo build of {V1_COMMIT} in {} failed:\n{}",
            src.display(),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let bin = target.join("debug").join("diakonos");
    match bin.is_file() {
        true => Ok(bin),
        false => Err(format!("cargo built no {}", bin.display())),
    }
}

/// Runs the protocol-1 binary as the client (same home and service dir as
/// [`Home::cmd`]); asserts exit 0, returns stdout. A daemon it starts is a
/// protocol-1 daemon.
fn ok_v1(h: &Home, args: &[&str]) -> String {
    let home = h.home.to_str().expect("utf-8 temp dir");
    let mut cmd = Command::new(v1_binary());
    cmd.args(["--home", home, "--service-dir", "units"])
        .args(args)
        .current_dir(&h.root)
        .env_remove("DIAKONOS_HOME")
        .env_remove("DIAKONOS_SERVICE_DIR")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null());
    let out = h.run(cmd);
    assert!(
        out.status.success(),
        "`diakonos-v1 {}` failed with {}\nstdout:\n{}\nstderr:\n{}",
        args.join(" "),
        out.status,
        stdout(&out),
        stderr(&out)
    );
    stdout(&out)
}

/// Under a daemon of the real protocol-1 binary: `a` and `b` running, `a`
/// enabled, `b` restarted once. Returns the daemon's pid and the units as
/// that daemon lists them.
fn services_under_v1(h: &Home) -> (i32, BTreeMap<String, Value>) {
    marked(h, "a");
    marked(h, "b");
    ok_v1(h, &["start", "a", "b"]);
    ok_v1(h, &["enable", "a"]);
    let daemon = h.daemon_pid().expect("a daemon pid");
    assert!(
        alive(daemon) && crate::util::cmdline(daemon).contains("diakonos-v1"),
        "the daemon {daemon} is not the protocol-1 binary: {}",
        crate::util::cmdline(daemon)
    );
    h.wait_until("a and b to write their first line", WAIT, || {
        launches(h, "a") == 1 && launches(h, "b") == 1
    });
    let first_b = units_of(h, &ok_v1(h, &["list", "--json"]))["b"]["pid"]
        .as_i64()
        .expect("b has a pid") as i32;
    kill9(first_b);
    h.wait_until("b to be relaunched once", WAIT, || {
        let b = &units_of(h, &ok_v1(h, &["list", "--json"]))["b"];
        b["state"] == "running" && b["pid"] != first_b && launches(h, "b") == 2
    });
    let units = units_of(h, &ok_v1(h, &["list", "--json"]));
    assert_eq!(units["b"]["restarts"], 1, "{units:?}");
    assert_eq!(units["a"]["restarts"], 0, "{units:?}");
    (daemon, units)
}

/// After the hand-over of a protocol-1 daemon: `a` is still enabled, and
/// the new daemon supervises the adopted services (a killed one is
/// relaunched per its policy, and counted).
fn supervised_after_v1(h: &Home) {
    assert_eq!(
        h.status_json("a")["enabled"],
        true,
        "a is no longer enabled"
    );
    assert_eq!(h.status_json("b")["enabled"], false);
    let a = h.pid("a");
    kill9(a);
    h.wait_until("a to be relaunched by the new daemon", WAIT, || {
        let u = h.unit_json("a");
        u["state"] == "running" && u["pid"] != a && u["restarts"] == 1 && launches(h, "a") == 2
    });
    assert_eq!(h.unit_json("b")["restarts"], 1);
}

#[test]
fn v1_a_client_hands_a_protocol_1_daemon_over_and_no_service_restarts() {
    // The real previous release runs a and b (b restarted once, a enabled); a plain `list` of this binary replaces its daemon by SIGKILL and adoption: same pids, one launch each, counts and enablement kept, and the new daemon restarts a killed service.
    let h = Home::new("v1_a_client_hands_a_protocol_1_daemon_over");
    let (old, before) = services_under_v1(&h);
    let out = h.cmd(&["list", "--json"]);
    assert!(
        out.status.success(),
        "list against a protocol-1 daemon failed\nstdout:\n{}\nstderr:\n{}",
        stdout(&out),
        stderr(&out)
    );
    let note = stderr(&out);
    assert_eq!(note.trim().lines().count(), 1, "{note}");
    assert!(
        note.contains(&format!("(pid {old}) spoke protocol 1")),
        "{note}"
    );
    assert!(note.contains("handed over"), "{note}");
    kept(&h, old, &before, &stdout(&out));
    supervised_after_v1(&h);
}

#[test]
fn v1_daemon_upgrade_replaces_a_protocol_1_daemon_keeping_every_service() {
    // `daemon-upgrade` of this binary against the real previous release: it names both daemons and protocols, and every service is kept and supervised.
    let h = Home::new("v1_daemon_upgrade_replaces_a_protocol_1_daemon");
    let (old, before) = services_under_v1(&h);
    let out = h.cmd(&["daemon-upgrade"]);
    assert!(
        out.status.success(),
        "daemon-upgrade against a protocol-1 daemon failed\nstdout:\n{}\nstderr:\n{}",
        stdout(&out),
        stderr(&out)
    );
    let said = stdout(&out);
    assert!(said.contains("daemon upgraded"), "{said}");
    assert!(said.contains(&format!("pid {old} ")), "{said}");
    assert!(said.contains("protocol 1"), "{said}");
    assert!(
        said.contains(&format!("protocol {PROTOCOL_VERSION}")),
        "{said}"
    );
    assert!(stderr(&out).contains("SIGKILL"), "{}", stderr(&out));
    kept(&h, old, &before, &h.ok(&["list", "--json"]));
    supervised_after_v1(&h);
}

#[test]
fn v1_kill_and_daemon_status_reach_a_protocol_1_daemon() {
    // `daemon-status` of this binary reads the real previous release's daemon without replacing it; `kill` stops it and its services.
    let h = Home::new("v1_kill_and_daemon_status_reach_a_protocol_1");
    marked(&h, "a");
    ok_v1(&h, &["start", "a"]);
    let daemon = h.daemon_pid().expect("a daemon pid");
    let a = units_of(&h, &ok_v1(&h, &["list", "--json"]))["a"]["pid"]
        .as_i64()
        .expect("a has a pid") as i32;
    let status: Value = serde_json::from_str(&h.ok(&["daemon-status", "--json"]))
        .expect("daemon-status --json is JSON");
    assert_eq!(status["protocol"], 1, "{status}");
    assert_eq!(status["pid"], daemon, "{status}");
    assert_eq!(
        h.daemon_pid(),
        Some(daemon),
        "daemon-status replaced the daemon"
    );
    h.wait_lines("a.starts", 1);
    let out = h.ok(&["kill"]);
    assert!(out.contains("daemon stopped"), "{out}");
    assert!(!alive(daemon), "daemon {daemon} still runs");
    h.wait_until("a to be stopped", WAIT, || !alive(a));
    assert_eq!(launches(&h, "a"), 1);
}

#[test]
fn v1_clients_racing_against_a_protocol_1_daemon_end_with_one_new_daemon() {
    // Four `list` clients of this binary meet the real previous release at once: every one succeeds, one daemon of this binary remains, and no service is relaunched.
    let h = Home::new("v1_clients_racing_against_a_protocol_1_daemon");
    let (old, before) = services_under_v1(&h);
    race_lists(&h, old, &before);
}

#[test]
fn daemon_upgrade_waits_for_a_oneshot_still_running_so_its_exit_is_judged() {
    // A oneshot's start is judged by its exit status, which only its
    // parent learns: `daemon-upgrade` waits until it has exited (0 here),
    // so the new daemon shows it exited and its dependent running, not
    // "status unknown".
    let h = Home::new("daemon_upgrade_waits_for_a_oneshot");
    h.unit(
        "os",
        &format!(
            "[service]\nType = \"oneshot\"\nRestart = \"no\"\nExecStart = {}\n",
            sh("touch os.running; while [ ! -e go ]; do sleep 0.02; done; echo done > os.done")
        ),
    );
    h.unit(
        "after_os",
        "[unit]\nRequires = [\"os\"]\n[service]\nExecStart = \"sleep 1000\"\n",
    );
    let _start = crate::util::Background(
        h.command(&["start", "after_os"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start"),
    );
    h.wait_until("os to run", WAIT, || h.units.join("os.running").exists());
    let log = || std::fs::read_to_string(h.home.join("daemon.log")).unwrap_or_default();
    let upgrade = || {
        crate::util::Background(
            h.command(&["daemon-upgrade"])
                .stdout(Stdio::null())
                .spawn()
                .expect("daemon-upgrade"),
        )
    };
    // A hand-over whose client leaves while it waits is called off.
    let daemon = h.daemon_pid().expect("daemon pid");
    let gone_client = upgrade();
    h.wait_until("the hand-over to wait", WAIT, || {
        log().contains("hand-over: waiting for 1 oneshot/forking start")
    });
    drop(gone_client);
    h.wait_until("the hand-over to be called off", WAIT, || {
        log().contains("hand-over called off")
    });
    assert!(alive(daemon), "the daemon handed over to no one");
    // Two at once: both wait (the oneshot has not exited); `go` lets it
    // finish, and both are answered.
    let (mut first, mut second) = (upgrade(), upgrade());
    h.wait_until("the hand-over to wait again", WAIT, || {
        log()
            .matches("hand-over: waiting for 1 oneshot/forking start")
            .count()
            == 2
    });
    assert!(
        first.0.try_wait().expect("try_wait").is_none(),
        "the hand-over did not wait for the oneshot"
    );
    std::fs::write(h.units.join("go"), "").expect("write go");
    assert!(first.0.wait().expect("wait for daemon-upgrade").success());
    assert!(second.0.wait().expect("wait for daemon-upgrade").success());
    // Both asked for a successor: one daemon lives (the other's lost the
    // lock and is on its way out).
    h.wait_until("one daemon left", WAIT, || {
        h.daemons() == h.daemon_pid().into_iter().collect::<Vec<_>>()
    });
    h.wait_until("os exited and after_os running", WAIT, || {
        h.state("os") == "exited" && h.state("after_os") == "running"
    });
    let os = h.unit_json("os");
    assert_eq!(os["last_exit"]["code"], 0, "{os}");
}

#[test]
fn a_watchdog_interval_the_service_set_survives_an_upgrade() {
    // WatchdogSec = 1, but the service said WATCHDOG_USEC=4000000 and pings
    // every 2 s: the new daemon keeps 4 s (it killed it after 1 s).
    let h = Home::new("upgrade_keeps_watchdog_usec");
    let script = "import os, socket, time\n\
                  a = os.environ['NOTIFY_SOCKET']\n\
                  a = '\\0' + a[1:] if a.startswith('@') else a\n\
                  s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\n\
                  s.sendto(b'WATCHDOG_USEC=4000000', a)\n\
                  while True:\n    s.sendto(b'WATCHDOG=1', a)\n    open('pings', 'a').write('p\\n')\n    time.sleep(2)\n";
    std::fs::write(h.units.join("dog.py"), script).expect("write dog.py");
    h.unit(
        "dog",
        "[service]\nWatchdogSec = 1\nExecStart = \"python3 dog.py\"\n",
    );
    h.ok(&["start", "dog"]);
    let pid = h.pid("dog");
    h.wait_lines("pings", 2);
    h.ok(&["daemon-upgrade"]);
    let n = h.lines("pings").len();
    h.wait_lines("pings", n + 2);
    let u = h.unit_json("dog");
    assert_eq!(u["pid"], pid, "{u}");
    assert_eq!(u["restarts"], 0, "{u}");
}

#[test]
fn kill_during_daemon_upgrade_leaves_no_daemon() {
    // `kill` and `daemon-upgrade` at once, several times: whichever comes first, no daemon is left afterwards (a kill that met the hand-over's gap said "no daemon was running" while the successor started).
    let h = Home::new("kill_during_daemon_upgrade_leaves_no_daemon");
    h.unit("w", "[service]\nExecStart = \"sleep 1000\"\n");
    for round in 0..5 {
        h.ok(&["list"]);
        let (upgrade, kill) = std::thread::scope(|s| {
            let up = s.spawn(|| h.cmd(&["daemon-upgrade"]));
            let kill = s.spawn(|| h.cmd(&["kill"]));
            (
                up.join().expect("upgrade thread"),
                kill.join().expect("kill thread"),
            )
        });
        assert!(kill.status.success(), "round {round}: {}", stderr(&kill));
        let deadline = std::time::Instant::now() + WAIT;
        while !h.daemons().is_empty() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(
            h.daemons().is_empty(),
            "round {round}: daemons {:?} left ({:?})\nkill: {}{}\nupgrade: {}{}",
            h.daemons(),
            std::fs::read_to_string(h.home.join("daemon.log")).unwrap_or_default(),
            stdout(&kill),
            stderr(&kill),
            stdout(&upgrade),
            stderr(&upgrade)
        );
    }
}

#[test]
fn an_upgrade_does_not_take_a_tagged_leftover_for_a_restarting_units_process() {
    // A unit waits to restart (RestartSec = 30) while a process carrying its tag runs (as a stray of an earlier run would): after `daemon-upgrade` the unit is still restarting, the stray not adopted as its main process.
    let h = Home::new("upgrade_ignores_tagged_leftover");
    h.unit(
        "w",
        "[service]\nExecStart = \"sh -c 'exit 1'\"\nRestart = \"always\"\nRestartSec = 30\n",
    );
    h.ok(&["start", "w"]);
    h.wait_state("w", "restarting");
    // Killed by pid when the test ends, however it ends.
    let _stray = crate::util::Background(
        std::process::Command::new("setsid")
            .args(["sleep", "1000"])
            .env("DIAKONOS_HOME", &h.home)
            .env("DIAKONOS_UNIT", "w")
            .spawn()
            .expect("spawn a tagged sleep"),
    );
    h.ok(&["daemon-upgrade"]);
    let u = h.unit_json("w");
    assert_eq!(u["state"], "restarting", "{u}");
    assert!(u["pid"].is_null(), "{u}");
}
