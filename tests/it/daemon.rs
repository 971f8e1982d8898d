//! The daemon process itself: auto-start, the single-daemon lock, detaching,
//! `daemon-status`, permissions, and shutting down.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::sync::Barrier;
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::util::{alive, args, gone, stderr, stdout, Home, Stat, BIN, WAIT};

#[test]
fn racing_first_commands_start_exactly_one_daemon() {
    // Eight `list`s at once against a fresh home all succeed and leave exactly one daemon.
    let h = Home::new("racing_first_commands_start_exactly_one_daemon");
    h.unit("web", "[service]\nExecStart = \"sleep 1000\"\n");
    let barrier = Barrier::new(8);
    let outs: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                s.spawn(|| {
                    barrier.wait();
                    h.cmd(&["list"])
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|t| t.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    });
    for out in &outs {
        assert!(
            out.status.success(),
            "a racing list failed: {}",
            stderr(out)
        );
        assert!(stdout(out).contains("web"), "{}", stdout(out));
    }
    // Daemons that lost the lock race exit on their own; one must remain.
    h.wait_until("exactly one daemon", WAIT, || h.daemons().len() == 1);
    assert_eq!(h.daemons(), [h.daemon_pid().expect("lock pid")]);
}

#[test]
fn daemon_detaches_from_the_client() {
    // The auto-started daemon has its own session, stdin /dev/null and output to daemon.log, and the client is not its parent.
    let h = Home::new("daemon_detaches_from_the_client");
    h.ok(&["list"]);
    let daemon = h.daemon_pid().expect("daemon pid");
    let stat = Stat::of(daemon).expect("daemon stat");
    let me = std::process::id() as i32;
    assert_eq!(stat.session, daemon, "the daemon leads its own session");
    assert_ne!(
        stat.session,
        nix::unistd::getsid(None).expect("getsid").as_raw()
    );
    assert_ne!(stat.ppid, me);
    let parent = args(stat.ppid);
    assert!(
        parent.first().is_none_or(|a| a != BIN),
        "the daemon's parent is a diakonos client: {parent:?}"
    );
    let fd = |n: u32| {
        fs::read_link(format!("/proc/{daemon}/fd/{n}"))
            .map(|p| p.display().to_string())
            .unwrap_or_default()
    };
    assert_eq!(fd(0), "/dev/null");
    let log = h.home.join("daemon.log").display().to_string();
    assert_eq!(fd(1), log);
    assert_eq!(fd(2), log);
}

#[test]
fn daemon_status_json_has_the_daemon_facts() {
    // `daemon-status --json` reports pid, version, home, service dir, unit counts and RSS.
    let h = Home::new("daemon_status_json_has_the_daemon_facts");
    h.unit("web", "[service]\nExecStart = \"sleep 1000\"\n");
    h.unit("idle", "[service]\nExecStart = \"sleep 1000\"\n");
    h.ok(&["start", "web"]);
    let v: serde_json::Value =
        serde_json::from_str(&h.ok(&["daemon-status", "--json"])).expect("JSON");
    assert_eq!(v["pid"], h.daemon_pid().expect("lock pid"), "{v}");
    assert_eq!(v["version"], env!("CARGO_PKG_VERSION"), "{v}");
    assert_eq!(v["home"], h.home.display().to_string(), "{v}");
    assert_eq!(v["service_dir"], h.units.display().to_string(), "{v}");
    assert!(v["rss_bytes"].as_u64().is_some_and(|r| r > 0), "{v}");
    assert!(v["uptime_secs"].is_u64(), "{v}");
    assert_eq!(v["units"]["running"], 1, "{v}");
    assert_eq!(v["units"]["inactive"], 1, "{v}");
    let text = h.ok(&["daemon-status"]);
    assert!(text.contains(&h.home.display().to_string()), "{text}");
}

#[test]
fn second_foreground_daemon_refuses_to_run() {
    // `daemon` for a home whose daemon runs exits 1 saying one is already running.
    let h = Home::new("second_foreground_daemon_refuses_to_run");
    h.ok(&["list"]);
    let first = h.daemon_pid().expect("daemon pid");
    let err = h.fails(1, &["daemon"]);
    assert!(err.contains("already running"), "{err}");
    assert!(err.contains(&first.to_string()), "{err}");
    assert_eq!(h.daemons(), [first]);
    assert_eq!(h.daemon_pid(), Some(first), "the lock file was rewritten");
}

#[test]
fn another_service_dir_is_refused_naming_both() {
    // A command naming a different --service-dir than the daemon's fails with both paths.
    let h = Home::new("another_service_dir_is_refused_naming_both");
    fs::create_dir(h.root.join("other")).expect("mkdir other");
    h.ok(&["list"]);
    let home = h.home.display().to_string();
    let out = h.bare(&["--home", &home, "--service-dir", "other", "list"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains(&h.units.display().to_string()), "{err}");
    assert!(
        err.contains(&h.root.join("other").display().to_string()),
        "{err}"
    );
    // Without --service-dir the daemon's own is used.
    let out = h.bare(&["--home", &home, "list"]);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn socket_is_0600_and_home_is_0700() {
    // The control socket is private to the user, and the home is tightened to 0700.
    let h = Home::new("socket_is_0600_and_home_is_0700");
    fs::set_permissions(&h.home, fs::Permissions::from_mode(0o755)).expect("chmod");
    h.ok(&["list"]);
    let mode = |p: &std::path::Path| fs::metadata(p).expect("stat").permissions().mode() & 0o777;
    assert_eq!(mode(&h.home.join("diakonos.sock")), 0o600);
    assert_eq!(mode(&h.home), 0o700);
    // A home that does not exist yet is created 0700.
    let fresh = h.root.join("fresh/home");
    let fresh_s = fresh.display().to_string();
    let out = h.bare(&["--home", &fresh_s, "--service-dir", "units", "list"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(mode(&fresh), 0o700);
    assert_eq!(mode(&fresh.join("diakonos.sock")), 0o600);
    let out = h.bare(&["--home", &fresh_s, "kill"]);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn kill_stops_every_service_then_the_daemon() {
    // `kill` returns with every service process gone and the daemon exiting.
    let h = Home::new("kill_stops_every_service_then_the_daemon");
    h.unit("db", "[service]\nExecStart = \"sleep 1000\"\n");
    h.unit(
        "app",
        "[unit]\nRequires = [\"db\"]\n[service]\nExecStart = \"sleep 1000\"\n",
    );
    h.unit("other", "[service]\nExecStart = \"sleep 1000\"\n");
    h.ok(&["start", "app", "other"]);
    let pids: Vec<i32> = ["db", "app", "other"].map(|n| h.pid(n)).to_vec();
    let daemon = h.daemon_pid().expect("daemon pid");
    h.ok(&["kill"]);
    for pid in pids {
        assert!(gone(pid), "service pid {pid} survived kill");
    }
    h.wait_until("the daemon to exit", Duration::from_secs(2), || {
        !alive(daemon)
    });
    assert!(!h.home.join("diakonos.sock").exists(), "socket left behind");
    let out = h.cmd(&["daemon-status"]);
    assert_eq!(out.status.code(), Some(3), "{}", stdout(&out));
}

#[test]
fn sigterm_and_sigint_to_the_daemon_stop_services_like_kill() {
    // SIGTERM and SIGINT make the daemon stop every service and exit.
    for signal in [Signal::SIGTERM, Signal::SIGINT] {
        let h = Home::new("sigterm_and_sigint_to_the_daemon_stop_services_like_kill");
        h.unit("web", "[service]\nExecStart = \"sleep 1000\"\n");
        h.ok(&["start", "web"]);
        let pid = h.pid("web");
        let daemon = h.daemon_pid().expect("daemon pid");
        kill(Pid::from_raw(daemon), signal).expect("signal the daemon");
        h.wait_until(&format!("the daemon to exit on {signal}"), WAIT, || {
            !alive(daemon)
        });
        assert!(
            gone(pid),
            "service pid {pid} survived the daemon's {signal}"
        );
    }
}

#[test]
fn daemon_detach_starts_a_background_daemon_and_returns() {
    // `daemon --detach` returns at once, leaving a daemon that answers.
    let h = Home::new("daemon_detach_starts_a_background_daemon_and_returns");
    h.ok(&["daemon", "--detach"]);
    let pid = h.daemon_pid().expect("daemon pid");
    assert!(alive(pid));
    assert_eq!(h.daemons(), [pid]);
    let out = h.cmd(&["daemon-status"]);
    assert!(out.status.success(), "{}", stderr(&out));
    // A second --detach finds it running and leaves it be.
    h.ok(&["daemon", "--detach"]);
    assert_eq!(h.daemons(), [pid]);
}

#[test]
fn commands_after_kill_start_a_new_daemon() {
    // After `kill`, the next command auto-starts a fresh daemon.
    let h = Home::new("commands_after_kill_start_a_new_daemon");
    h.ok(&["list"]);
    let first = h.daemon_pid().expect("daemon pid");
    h.ok(&["kill"]);
    h.wait_until("the first daemon to exit", WAIT, || !alive(first));
    h.ok(&["list"]);
    let second = h.daemon_pid().expect("daemon pid");
    assert_ne!(first, second);
    assert!(alive(second));
}

#[test]
fn foreground_daemon_answers_and_exits_0_on_sigterm() {
    // `daemon` in the foreground serves clients and exits 0 on SIGTERM after stopping its services.
    let h = Home::new("foreground_daemon_answers_and_exits_0_on_sigterm");
    h.unit("web", "[service]\nExecStart = \"sleep 1000\"\n");
    let mut fg = h
        .command(&["daemon"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn a foreground daemon");
    let pid = fg.id() as i32;
    h.wait_until("the foreground daemon to answer", WAIT, || {
        h.cmd(&["daemon-status"]).status.success()
    });
    assert_eq!(h.daemon_pid(), Some(pid));
    h.ok(&["start", "web"]);
    let web = h.pid("web");
    kill(Pid::from_raw(pid), Signal::SIGTERM).expect("SIGTERM");
    let deadline = std::time::Instant::now() + WAIT;
    let status = loop {
        if let Some(status) = fg.try_wait().expect("try_wait") {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the foreground daemon did not exit on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(status.code(), Some(0));
    assert!(gone(web), "web survived the daemon's SIGTERM");
}

#[test]
fn kill_stops_requirers_before_what_they_require() {
    // `kill` stops services in reverse dependency order: worker before database.
    let h = Home::new("kill_stops_requirers_before_what_they_require");
    crate::util::start_trapped_worker_and_database(&h);
    h.ok(&["kill"]);
    assert_eq!(h.lines("order"), ["worker", "database"]);
}

#[test]
fn a_service_dir_that_does_not_exist_is_refused_before_a_daemon_starts() {
    // A mistyped --service-dir is an error naming it, and no daemon is started on it.
    let h = Home::new("a_service_dir_that_does_not_exist_is_refused");
    let home = h.home.display().to_string();
    let out = h.bare(&["--home", &home, "--service-dir", "no-such-dir", "list"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("no-such-dir"), "{}", stderr(&out));
    assert_eq!(h.daemon_pid(), None, "a daemon was started");
}

#[test]
fn a_symlink_to_the_service_dir_is_the_same_service_dir() {
    // Two names for one directory are one service dir, not a mismatch.
    let h = Home::new("a_symlink_to_the_service_dir_is_the_same");
    h.unit("web", "[service]\nExecStart = \"sleep 1000\"\n");
    h.ok(&["start", "web"]);
    std::os::unix::fs::symlink(h.root.join("units"), h.root.join("alias")).expect("symlink");
    let home = h.home.display().to_string();
    let out = h.bare(&["--home", &home, "--service-dir", "alias", "list"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("web"));
}

#[test]
fn daemon_detach_checks_the_running_daemons_service_dir() {
    // `daemon --detach` against a running daemon of another directory fails naming both.
    let h = Home::new("daemon_detach_checks_the_running_daemons_dir");
    h.ok(&["list"]);
    fs::create_dir_all(h.root.join("other")).expect("mkdir");
    let home = h.home.display().to_string();
    let out = h.bare(&[
        "--home",
        &home,
        "--service-dir",
        "other",
        "daemon",
        "--detach",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("the daemon manages"),
        "{}",
        stderr(&out)
    );
    let same = h.ok(&["daemon", "--detach"]);
    assert!(same.contains("daemon running"), "{same}");
}

#[test]
fn a_daemon_that_dropped_its_code_pages_goes_on_working() {
    // After start-up and after a job of 64 units or more the daemon drops the page-table entries of its read-only mappings (MADV_DONTNEED): the code faults back in, and tables a dynamic build relocated must not be dropped (a first version did, and the daemon jumped to address 0). Start, restart and stop 70 units, and ask in between.
    let h = Home::new("a_daemon_that_dropped_its_code_pages");
    let names: Vec<String> = (0..70).map(|i| format!("s{i}")).collect();
    for n in &names {
        h.unit(n, "[service]\nExecStart = \"sleep 1000\"\n");
    }
    let args = |verb: &str| {
        let mut v = vec![verb.to_owned()];
        v.extend(names.iter().cloned());
        v
    };
    let run = |verb: &str| {
        let v = args(verb);
        let refs: Vec<&str> = v.iter().map(String::as_str).collect();
        h.ok(&refs);
    };
    run("start");
    let daemon = h.daemon_pid().expect("a daemon");
    assert_eq!(h.json_list().as_array().map(Vec::len), Some(70));
    run("restart");
    h.ok(&["status", "s0"]);
    run("stop");
    assert!(h.listed_names().len() == 70);
    assert_eq!(
        h.daemon_pid(),
        Some(daemon),
        "the same daemon answered throughout"
    );
}
