//! What outlives a daemon: services after a SIGKILL of the daemon (adopted
//! by the next one), enabled units, the state file, reboots (`reload`:
//! reload.rs; logs on disk: rotation.rs).

use std::fs;
use std::time::Duration;

use crate::util::{alive, kill9, sh, stderr, stdout, Home, WAIT};

pub(crate) fn sleeper(h: &Home, name: &str) {
    h.unit(
        name,
        &format!(
            "[service]\nRestartSec = 0\nExecStart = {}\n",
            sh(&format!("echo $$ >> {name}.starts; exec sleep 1000"))
        ),
    );
}

/// SIGKILLs the daemon and waits until it is gone.
pub(crate) fn crash_daemon(h: &Home) {
    let daemon = h.daemon_pid().expect("daemon pid");
    kill9(daemon);
    h.wait_until("the daemon to die", WAIT, || !alive(daemon));
}

#[test]
fn services_survive_a_daemon_sigkill_and_are_adopted() {
    // After kill -9 of the daemon the services keep running; the next daemon lists the same pids and restart counts, and stopped units stay stopped.
    let h = Home::new("services_survive_a_daemon_sigkill_and_are_adopted");
    sleeper(&h, "web");
    sleeper(&h, "db");
    sleeper(&h, "idle");
    h.ok(&["start", "web", "db", "idle"]);
    for name in ["web", "db", "idle"] {
        h.wait_lines(&format!("{name}.starts"), 1);
    }
    h.ok(&["stop", "idle"]);
    let first = h.pid("web");
    kill9(first);
    h.wait_until("web to be relaunched once", WAIT, || {
        let u = h.unit_json("web");
        u["state"] == "running"
            && u["restarts"] == 1
            && u["pid"] != first
            && h.lines("web.starts").len() == 2
    });
    let (web, db) = (h.pid("web"), h.pid("db"));
    crash_daemon(&h);
    assert!(alive(web) && alive(db), "services died with the daemon");
    let web_u = h.unit_json("web");
    assert_eq!(web_u["state"], "running", "{web_u}");
    assert_eq!(web_u["pid"], web, "{web_u}");
    assert_eq!(web_u["restarts"], 1, "restart count lost: {web_u}");
    assert_eq!(h.pid("db"), db);
    assert_eq!(h.state("idle"), "inactive");
    assert_eq!(h.lines("web.starts").len(), 2, "web was relaunched");
    assert_eq!(h.lines("db.starts").len(), 1, "db was relaunched");
    assert_eq!(h.lines("idle.starts").len(), 1, "idle was relaunched");
}

#[test]
fn an_adopted_service_that_dies_is_restarted() {
    // A death after adoption counts as a failure and is restarted per policy.
    let h = Home::new("an_adopted_service_that_dies_is_restarted");
    sleeper(&h, "web");
    h.ok(&["start", "web"]);
    h.wait_lines("web.starts", 1);
    let first = h.pid("web");
    crash_daemon(&h);
    assert_eq!(h.pid("web"), first);
    kill9(first);
    h.wait_until("the adopted web to be relaunched", WAIT, || {
        let u = h.unit_json("web");
        u["state"] == "running"
            && u["pid"] != first
            && u["restarts"] == 1
            && h.lines("web.starts").len() == 2
    });
    assert_eq!(h.lines("web.starts").len(), 2);
    // Its exit status is no one's to know: JSON keeps to the SPEC's shapes
    // (null), the human status says so.
    assert!(h.unit_json("web")["last_exit"].is_null());
    let status = h.ok(&["status", "web"]);
    assert!(status.contains("unknown (adopted process)"), "{status}");
}

#[test]
fn a_service_that_died_while_no_daemon_ran_is_restarted() {
    // A service that died between daemons is restarted by the next daemon.
    let h = Home::new("a_service_that_died_while_no_daemon_ran_is_restarted");
    sleeper(&h, "web");
    h.ok(&["start", "web"]);
    h.wait_lines("web.starts", 1);
    let first = h.pid("web");
    crash_daemon(&h);
    kill9(first);
    h.wait_until("web to die", WAIT, || !alive(first));
    h.wait_until("web to be relaunched by the new daemon", WAIT, || {
        let u = h.unit_json("web");
        u["state"] == "running" && u["pid"] != first && h.lines("web.starts").len() == 2
    });
    assert_eq!(h.lines("web.starts").len(), 2);
}

#[test]
fn a_client_naming_no_service_dir_takes_the_crashed_daemons() {
    // After a daemon crash, a client that names no service dir (run where there is no ./services) starts a daemon on the crashed one's directory, read from the state file, which adopts its services.
    let h = Home::new("a_client_naming_no_service_dir_takes_the_crashed");
    sleeper(&h, "web");
    h.ok(&["start", "web"]);
    h.wait_lines("web.starts", 1);
    let web = h.pid("web");
    let state = h.home.join("state");
    h.wait_until("the state file to record web", WAIT, || {
        fs::read_to_string(&state).is_ok_and(|s| s.contains("\"web\""))
    });
    crash_daemon(&h);
    assert!(!h.root.join("services").exists());
    let home = h.home.to_str().expect("utf-8 temp dir");
    let out = h.bare(&["--home", home, "status", "web", "--json"]);
    assert!(out.status.success(), "{}", crate::util::stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("status --json is JSON");
    assert_eq!(v["pid"], web, "{v}");
    assert_eq!(v["state"], "running", "{v}");
}

#[test]
fn enabled_units_start_whenever_a_daemon_starts() {
    // `enable` makes a unit start with every new daemon; `disable` undoes it.
    let h = Home::new("enabled_units_start_whenever_a_daemon_starts");
    sleeper(&h, "web");
    sleeper(&h, "other");
    h.ok(&["enable", "web"]);
    assert_eq!(h.status_json("web")["enabled"], true);
    assert_eq!(h.state("web"), "inactive", "enable must not start the unit");
    h.ok(&["kill"]);
    h.wait_until("web to start with the new daemon", WAIT, || {
        h.state("web") == "running"
    });
    assert_eq!(h.state("other"), "inactive");
    h.ok(&["disable", "web"]);
    assert_eq!(h.status_json("web")["enabled"], false);
    h.ok(&["kill"]);
    h.ok(&["list"]);
    h.stays(
        "web inactive",
        std::time::Duration::from_millis(300),
        || h.state("web") == "inactive",
    );
}

#[test]
fn a_corrupt_state_file_is_moved_aside() {
    // A state file that does not parse is set aside and the daemon starts anyway.
    let h = Home::new("a_corrupt_state_file_is_moved_aside");
    sleeper(&h, "web");
    fs::write(h.home.join("state"), b"{ this is not the state \x00\xff").expect("write");
    h.ok(&["start", "web"]);
    assert_eq!(h.state("web"), "running");
    let aside: Vec<String> = fs::read_dir(&h.home)
        .expect("read home")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with("state.corrupt"))
        .collect();
    assert_eq!(aside.len(), 1, "no state.corrupt-* file");
    let log = fs::read_to_string(h.home.join("daemon.log")).unwrap_or_default();
    assert!(log.contains("state"), "no warning in daemon.log:\n{log}");
}

#[test]
fn a_state_file_with_one_bad_value_keeps_the_rest() {
    // A garbage boot record costs only itself: after a crash, the next daemon still adopts the running service with its restart count and shows the failed unit as failed; daemon.log says what was left out and that the boot is taken as this one.
    let h = Home::new("a_state_file_with_one_bad_value_keeps_the_rest");
    h.unit(
        "web",
        "[service]\nExecStart = \"sleep 1000\"\nRestart = \"always\"\nRestartSec = 0\n",
    );
    h.unit(
        "bad",
        "[service]\nExecStart = \"sh -c 'exit 3'\"\nRestart = \"no\"\n",
    );
    h.ok(&["start", "web"]);
    let first = h.exec_pid("web");
    kill9(first);
    h.wait_until("web restarted", WAIT, || {
        let u = h.unit_json("web");
        u["state"] == "running" && u["pid"].as_i64().is_some_and(|p| p != i64::from(first))
    });
    let _ = h.cmd(&["start", "bad"]);
    h.wait_state("bad", "failed");
    let pid = h.pid("web");
    let daemon = h.daemon_pid().expect("a daemon");
    kill9(daemon);
    h.wait_until("the daemon gone", WAIT, || !alive(daemon));
    let path = h.home.join("state");
    let mut state: serde_json::Value =
        serde_json::from_slice(&fs::read(&path).expect("read the state")).expect("JSON");
    assert!(state["boot"].is_string(), "a boot record: {state}");
    state["boot"] = serde_json::json!("not a boot");
    fs::write(&path, serde_json::to_vec(&state).expect("JSON")).expect("write the state");
    let web = h.unit_json("web");
    assert_eq!(
        (web["state"].as_str(), web["pid"].as_i64()),
        (Some("running"), Some(i64::from(pid)))
    );
    assert_eq!(web["restarts"], 1, "{web}");
    assert_eq!(h.state("bad"), "failed");
    let log = fs::read_to_string(h.home.join("daemon.log")).unwrap_or_default();
    assert!(log.contains("left out what did not read (`boot`"), "{log}");
    assert!(
        log.contains("says nothing of the boot it was written in"),
        "{log}"
    );
}

#[test]
fn a_service_started_just_before_a_daemon_crash_is_adopted() {
    // Once `start` has returned, a kill -9 of the daemon cannot lose the service: the next daemon adopts it.
    let h = Home::new("a_service_started_just_before_a_daemon_crash_is_adopted");
    sleeper(&h, "web");
    h.ok(&["list"]);
    let daemon = h.daemon_pid().expect("daemon pid");
    // Kill the daemon the moment the client prints the reply: the start
    // has been answered, so the service must be on record.
    let mut client = h
        .command(&["start", "web"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn the client");
    let mut first = [0u8; 1];
    std::io::Read::read_exact(client.stdout.as_mut().expect("stdout"), &mut first)
        .expect("the client printed the reply");
    kill9(daemon);
    assert!(client.wait().expect("wait").success());
    h.wait_until("the daemon to die", WAIT, || !alive(daemon));
    let pid = h.written_pid("web.starts");
    let u = h.unit_json("web");
    assert_eq!(u["state"], "running", "{u}");
    assert_eq!(u["pid"], pid, "{u}");
}

#[test]
fn enable_of_an_unknown_unit_fails() {
    // `enable nosuch` exits 1 naming the unit.
    let h = Home::new("enable_of_an_unknown_unit_fails");
    sleeper(&h, "web");
    let err = h.fails(1, &["enable", "nosuch"]);
    assert!(err.contains("nosuch"), "{err}");
}

#[test]
fn a_unit_removed_while_enabled_can_still_be_disabled() {
    // Its file removed and reloaded away, an enabled unit is disabled by name (its file coming back would start it again otherwise); an unknown name that was never enabled still fails.
    let h = Home::new("a_unit_removed_while_enabled_can_still_be_disabled");
    sleeper(&h, "web");
    h.ok(&["enable", "web"]);
    std::fs::remove_file(h.units.join("web.service")).expect("remove the unit file");
    h.ok(&["reload"]);
    let out = h.ok(&["disable", "web"]);
    assert!(out.contains("disabled"), "{out}");
    let enabled = std::fs::read_to_string(h.home.join("enabled")).unwrap_or_default();
    assert!(!enabled.lines().any(|l| l == "web"), "{enabled}");
    h.fails(1, &["disable", "nosuch"]);
}

#[test]
fn services_are_adopted_even_when_the_state_file_is_lost() {
    // With the state file gone after a daemon crash, live services are still found (by their tag) and never started twice.
    adopted_after_losing(
        "services_are_adopted_even_when_the_state_file_is_lost",
        &["state"],
    );
}

#[test]
fn services_are_adopted_even_when_the_state_and_lock_files_are_lost() {
    // A daemon skips the look for tagged services only on a home that never had one (no lock file, no service log):
    // with the lock file deleted as well, the service's log still says the home is not new.
    adopted_after_losing(
        "services_are_adopted_even_when_the_state_and_lock_files_are_lost",
        &["state", "daemon.lock"],
    );
}

fn adopted_after_losing(name: &str, files: &[&str]) {
    let h = Home::new(name);
    sleeper(&h, "web");
    h.ok(&["start", "web"]);
    h.wait_lines("web.starts", 1);
    let web = h.pid("web");
    crash_daemon(&h);
    for file in files {
        fs::remove_file(h.home.join(file)).unwrap_or_else(|e| panic!("remove {file}: {e}"));
    }
    let u = h.unit_json("web");
    assert_eq!(u["state"], "running", "{u}");
    assert_eq!(u["pid"], web, "{u}");
    assert_eq!(h.lines("web.starts").len(), 1, "web was started twice");
    // And it is supervised again: its death is restarted per policy.
    kill9(web);
    h.wait_until("web to be restarted after adoption", WAIT, || {
        let u = h.unit_json("web");
        u["state"] == "running" && u["pid"] != web
    });
}

#[test]
fn a_forking_service_is_adopted_when_the_state_file_is_lost() {
    // A forking service's main process leads no session (its start command did, and exited): with the state file lost after a crash it is still found by its tag, as the earliest process left of that session, never started twice, and stopped by `kill`.
    let h = Home::new("a_forking_service_is_adopted_when_the_state_file_is_lost");
    h.forking_app("echo x >> app.starts; ");
    h.ok(&["start", "app"]);
    let main = h.written_pid("app.pid");
    assert_eq!(h.unit_json("app")["pid"], main);
    crash_daemon(&h);
    fs::remove_file(h.home.join("state")).expect("remove the state file");
    let u = h.unit_json("app");
    assert_eq!(u["state"], "running", "{u}");
    assert_eq!(u["pid"], main, "{u}");
    assert_eq!(h.lines("app.starts").len(), 1, "app was started twice");
    h.ok(&["kill"]);
    h.wait_until("the adopted main process to be stopped", WAIT, || {
        !alive(main)
    });
}

#[test]
fn a_service_adopted_by_its_tag_keeps_its_uptime() {
    // With the state file lost, a service found by its tag shows the uptime of its process, not 0.
    let h = Home::new("a_service_adopted_by_its_tag_keeps_its_uptime");
    sleeper(&h, "web");
    h.ok(&["start", "web"]);
    h.wait_until("web to be up for 2 s", WAIT, || {
        h.unit_json("web")["uptime_secs"].as_u64() >= Some(2)
    });
    let web = h.pid("web");
    crash_daemon(&h);
    fs::remove_file(h.home.join("state")).expect("remove the state file");
    let u = h.unit_json("web");
    assert_eq!(u["pid"], web, "{u}");
    // /proc knows its start to 10 ms; a second of slack for rounding.
    assert!(u["uptime_secs"].as_u64() >= Some(1), "uptime reset: {u}");
}

#[test]
fn a_remain_after_exit_oneshot_keeps_its_background_group_across_a_crash() {
    // After a daemon crash, stopping a RemainAfterExit oneshot still stops what it left running.
    let h = Home::new("a_remain_after_exit_oneshot_keeps_its_background_group_across_a_crash");
    h.start_script(
        "setup",
        "Type = \"oneshot\"\nRemainAfterExit = true\n",
        "sleep 1000 & echo $! > bg; exit 0",
    );
    let bg = h.written_pid("bg");
    crash_daemon(&h);
    assert_eq!(h.state("setup"), "running");
    assert!(alive(bg));
    h.ok(&["stop", "setup"]);
    // Dead; its zombie is its parent's to reap (init, after the crash).
    assert!(!alive(bg), "the background process outlived the stop");
}

#[test]
fn stop_while_the_leftovers_of_a_dead_service_are_killed_ends_inactive() {
    // The main process died while no daemon ran and left a worker in its group; the `stop` that starts the next daemon meets the worker being killed: it ends `inactive`, as every stop does, and the worker is gone.
    let h = Home::new("stop_while_the_leftovers_of_a_dead_service");
    h.start_script(
        "web",
        "RestartSec = 0\n",
        "sleep 1000 </dev/null & echo $! > worker; wait",
    );
    let worker = h.written_pid("worker");
    let main = h.pid("web");
    crash_daemon(&h);
    kill9(main);
    h.wait_until("web's main process to die", WAIT, || !alive(main));
    let out = h.ok(&["stop", "web"]);
    assert!(!alive(worker), "the worker survived `stop`: {out}");
    assert_eq!(h.state("web"), "inactive", "`stop` said: {out}");
}

/// Context switches of `pid` so far (voluntary and not).
fn switches(pid: i32) -> u64 {
    let text = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    text.lines()
        .filter(|l| l.contains("ctxt_switches:"))
        .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        .sum()
}

#[test]
fn a_stop_waiting_for_leftovers_that_are_not_ours_sleeps_until_they_end() {
    // After a crash the leftovers of an adopted service are not the new
    // daemon's children: a stop that waits for one (it ignores SIGTERM)
    // watches it with a pidfd instead of rechecking its group on a timer,
    // and returns as soon as it ends.
    let h = Home::new("a_stop_waiting_for_leftovers_that_are_not_ours");
    h.start_script(
        "web",
        "TimeoutStopSec = 60\n",
        "sh -c 'trap \"\" TERM; echo $$ > worker; exec sleep 1000' & wait",
    );
    let worker = h.written_pid("worker");
    let main = h.pid("web");
    crash_daemon(&h);
    assert_eq!(h.pid("web"), main, "web was not adopted");
    let daemon = h.daemon_pid().expect("a new daemon");
    let mut stop = h.command(&["stop", "web"]);
    stop.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut stop = stop.spawn().expect("run stop");
    h.wait_until("the main process to die of the stop", WAIT, || !alive(main));
    assert!(alive(worker), "the worker should ignore SIGTERM");
    // Polling every 20 ms makes dozens of switches a second; a pidfd none.
    let quiet = (0..10).any(|_| {
        let before = switches(daemon);
        std::thread::sleep(Duration::from_millis(500));
        switches(daemon) - before <= 3
    });
    let waited = stop.try_wait().ok().flatten();
    kill9(worker);
    let t0 = std::time::Instant::now();
    let status = loop {
        if let Ok(Some(status)) = stop.try_wait() {
            break Some(status);
        }
        if t0.elapsed() > WAIT {
            let _ = stop.kill();
            let _ = stop.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(waited, None, "stop returned while the worker lived");
    assert!(
        quiet,
        "the daemon kept waking up while it waited for the worker"
    );
    assert!(status.is_some_and(|s| s.success()), "stop: {status:?}");
    assert_eq!(h.state("web"), "inactive");
}

#[test]
fn a_daemon_started_from_inside_a_service_passes_on_no_unit_tag() {
    // A client run by service `a` starts the next daemon (after a crash):
    // that daemon's other children (b's ExecStop) do not carry a's tag.
    let h = Home::new("a_daemon_started_from_inside_a_service");
    h.unit(
        "b",
        &format!(
            "[service]\nExecStart = \"sleep 1000\"\nExecStop = {}\n",
            sh("echo \"[$DIAKONOS_UNIT]\" > stopenv")
        ),
    );
    let client = format!(
        "{} --home {} --service-dir {} start b",
        crate::util::BIN,
        h.home.display(),
        h.units.display()
    );
    h.unit(
        "a",
        &format!(
            "[service]\nExecStart = {}\n",
            sh(&format!(
                "while [ ! -e go ]; do sleep 0.05; done; {client} > started-b 2>&1; exec sleep 1000"
            ))
        ),
    );
    h.ok(&["start", "a"]);
    crash_daemon(&h);
    fs::write(h.path("go"), "").expect("write go");
    h.wait_until("a's client to start b", WAIT, || {
        fs::read_to_string(h.path("started-b")).is_ok_and(|t| t.contains("b: running"))
    });
    h.ok(&["stop", "b"]);
    assert_eq!(h.lines("stopenv"), ["[]"]);
}

#[test]
fn failed_and_exited_units_stay_so_across_a_crash_and_an_upgrade() {
    // A unit left failed keeps its state, reason and last exit in the next
    // daemon (after a SIGKILL, and after `daemon-upgrade`); a finished
    // oneshot stays exited; neither is started again.
    let h = Home::new("failed_and_exited_units_stay_so_across_a_crash_and_an_upgrade");
    h.unit(
        "bad",
        &format!(
            "[service]\nRestart = \"no\"\nExecStart = {}\n",
            sh("echo $$ >> bad.starts; exit 3")
        ),
    );
    h.unit(
        "once",
        &format!(
            "[service]\nType = \"oneshot\"\nExecStart = {}\n",
            sh("echo $$ >> once.starts")
        ),
    );
    // bad may fail before the start is answered: only its end state matters.
    let _ = h.cmd(&["start", "bad", "once"]);
    h.wait_until("bad to fail", WAIT, || h.state("bad") == "failed");
    h.wait_until("once to finish", WAIT, || h.state("once") == "exited");
    let before = h.unit_json("bad");
    assert_eq!(before["reason"], "exited with code 3", "{before}");
    for how in ["crash", "upgrade"] {
        if how == "crash" {
            crash_daemon(&h);
        } else {
            h.ok(&["daemon-upgrade"]);
        }
        let bad = h.unit_json("bad");
        assert_eq!(bad["state"], "failed", "after a {how}: {bad}");
        assert_eq!(bad["reason"], before["reason"], "after a {how}: {bad}");
        assert_eq!(
            bad["last_exit"], before["last_exit"],
            "after a {how}: {bad}"
        );
        assert_eq!(h.state("once"), "exited", "after a {how}");
    }
    assert_eq!(h.lines("bad.starts").len(), 1, "bad was started again");
    assert_eq!(h.lines("once.starts").len(), 1, "once was started again");
    // They start again when asked.
    h.ok(&["start", "once"]);
    assert_eq!(h.lines("once.starts").len(), 2);
}

#[test]
fn a_restart_waiting_out_its_delay_keeps_its_count_and_time_in_the_next_daemon() {
    // A unit in `restarting` (RestartSec = 30) when the daemon dies: the
    // next daemon keeps it restarting, with its restart count and its
    // next attempt still about 30 s away; it is not started at once.
    let h = Home::new("a_restart_waiting_out_its_delay_keeps_its_count");
    h.unit(
        "flaky",
        &format!(
            "[unit]\nStartLimitBurst = 0\n[service]\nRestartSec = 30\nExecStart = {}\n",
            sh("echo $$ >> flaky.starts; exit 1")
        ),
    );
    h.ok(&["start", "flaky"]);
    h.wait_until("flaky to wait for its restart", WAIT, || {
        h.state("flaky") == "restarting"
    });
    let before = h.unit_json("flaky");
    crash_daemon(&h);
    let after = h.unit_json("flaky");
    assert_eq!(after["state"], "restarting", "{after}");
    assert_eq!(after["restarts"], before["restarts"], "{after}");
    assert_eq!(after["next_attempt"], before["next_attempt"], "{after}");
    let secs = after["next_attempt_secs"].as_f64().unwrap_or(-1.0);
    assert!((20.0..=30.0).contains(&secs), "{after}");
    assert_eq!(h.lines("flaky.starts").len(), 1, "restarted at once");
}

#[test]
fn kill_after_a_daemon_crash_stops_what_it_left() {
    // kill -9 of the daemon: `daemon-status` at once says not running (exit 3, not a lost connection), and `kill` adopts the services it left and stops them.
    let h = Home::new("kill_after_a_daemon_crash");
    h.start_script("left", "", "echo $$ > left.pid; exec sleep 1000");
    let pid = h.written_pid("left.pid");
    let daemon = h.daemon_pid().expect("a daemon");
    kill9(daemon);
    let out = h.cmd(&["daemon-status"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "not running");
    h.wait_until("the daemon gone", WAIT, || !alive(daemon));
    let said = h.ok(&["kill"]);
    assert!(said.contains("adopted"), "{said}");
    // Dead; its zombie is its parent's to reap (init, after the crash).
    assert!(!alive(pid), "kill left the service running");
    assert_eq!(h.daemon_pid().filter(|&p| alive(p)), None);
}

#[test]
fn an_adopted_service_whose_zombie_nobody_reaps_stops_at_once() {
    // The daemon runs under a subreaper that never reaps (a container init that does not); after its crash the service's parent is that subreaper. `stop` of the adopted service returns as soon as it died, `inactive`: a zombie runs nothing (it waited for the reaping, and then said "survived SIGKILL").
    let h = Home::new("an_adopted_service_whose_zombie_nobody_reaps");
    h.unit(
        "z",
        &format!(
            "[service]\nTimeoutStopSec = 30\nExecStart = {}\n",
            sh("echo $$ >> z.starts; exec sleep 1000")
        ),
    );
    let reaper = "import ctypes, subprocess, sys, time\n\
                  ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)\n\
                  subprocess.Popen(sys.argv[1:])\n\
                  time.sleep(1000)\n";
    let daemon_cmd = h.command(&["daemon"]);
    let mut cmd = std::process::Command::new("python3");
    cmd.arg("-c")
        .arg(reaper)
        .arg(daemon_cmd.get_program())
        .args(daemon_cmd.get_args())
        .current_dir(&h.root)
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    // Killed (and reaped) when the test ends, passed or not.
    let _parent = crate::util::Background(cmd.spawn().expect("spawn the never-reaping subreaper"));
    h.wait_until("the daemon under it", WAIT, || {
        h.daemon_pid()
            .is_some_and(|p| h.cmd(&["daemon-status"]).status.success() && alive(p))
    });
    h.ok(&["start", "z"]);
    let pid = h.written_pid("z.starts");
    crash_daemon(&h);
    assert_eq!(h.pid("z"), pid, "not adopted");
    let started = std::time::Instant::now();
    let out = h.cmd(&["stop", "z"]);
    let took = started.elapsed();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(h.state("z"), "inactive");
    // Nowhere near TimeoutStopSec (30 s): no wait for a reaping.
    assert!(took < Duration::from_secs(20), "stop took {took:?}");
}

#[test]
fn a_stopped_units_restarts_and_last_exit_survive_a_crash() {
    // A unit restarted twice, then stopped: inactive with its count and last exit; after a daemon SIGKILL the next daemon shows the same.
    let h = Home::new("a_stopped_units_counters_survive_a_crash");
    h.unit(
        "loop",
        &format!(
            "[unit]\nStartLimitBurst = 0\n[service]\nRestartSec = 0\nExecStart = {}\n",
            sh("echo x >> loop.runs; [ $(wc -l < loop.runs) -ge 3 ] && exec sleep 1000; exit 1")
        ),
    );
    h.ok(&["start", "loop"]);
    h.wait_until("the third run up", WAIT, || {
        h.lines("loop.runs").len() == 3 && h.state("loop") == "running"
    });
    h.ok(&["stop", "loop"]);
    let before = h.unit_json("loop");
    assert_eq!(before["state"], "inactive", "{before}");
    assert_eq!(before["restarts"], 2, "{before}");
    assert_eq!(before["last_exit"]["signal"], "SIGTERM", "{before}");
    crash_daemon(&h);
    let after = h.unit_json("loop");
    assert_eq!(
        (&after["state"], &after["restarts"], &after["last_exit"]),
        (&before["state"], &before["restarts"], &before["last_exit"]),
        "{after}"
    );
}

/// Lazily unmounts the file system mounted at its path when dropped
/// (declared before the test's `Home`, so after its clean-up).
struct Unmount(Option<std::path::PathBuf>);

impl Drop for Unmount {
    fn drop(&mut self) {
        if let Some(path) = &self.0 {
            let _ = std::process::Command::new("umount")
                .arg("-l")
                .arg(path)
                .status();
            let _ = fs::remove_dir_all(path);
        }
    }
}

#[test]
fn a_stop_on_a_full_disk_is_kept_by_the_state_files_reserve() {
    // The home on a 512 KiB tmpfs that a service's log fills: `stop` of it still reaches the state file (its reserve's room is given back), so after a daemon SIGKILL the next daemon leaves it stopped.
    assert!(
        nix::unistd::Uid::effective().is_root(),
        "this test mounts a tmpfs: it must run as root (CI runs as root)"
    );
    let mut mounted = Unmount(None);
    let h = Home::new("a_stop_on_a_full_disk");
    let status = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=512k", "tmpfs"])
        .arg(&h.home)
        .status()
        .expect("run mount");
    assert!(status.success(), "mount a tmpfs on the home");
    mounted.0 = Some(h.home.clone());
    sleeper(&h, "keep");
    h.unit(
        "filler",
        &format!(
            "[service]\nExecStart = {}\n",
            sh("while :; do echo filler filler filler filler filler filler filler; done")
        ),
    );
    h.ok(&["start", "keep", "filler"]);
    h.wait_until("the disk full", WAIT, || {
        nix::sys::statvfs::statvfs(&h.home).is_ok_and(|s| s.blocks_available() == 0)
    });
    h.ok(&["stop", "filler"]);
    assert_eq!(h.state("filler"), "inactive");
    crash_daemon(&h);
    assert_eq!(h.state("filler"), "inactive", "the stop was lost");
    assert_eq!(h.state("keep"), "running");
}

#[test]
fn after_a_reboot_what_was_running_starts_again_afresh() {
    // A state file written in another boot (its boot id is not this one's): every unit that was running starts again, Restart = "no" too, with no restart counted; a unit that was stopped stays stopped. (The reboot is simulated: every process killed, and the state's boot id changed.)
    let h = Home::new("after_a_reboot_what_was_running_starts_again_afresh");
    sleeper(&h, "web");
    sleeper(&h, "idle");
    h.unit(
        "once",
        &format!(
            "[service]\nRestart = \"no\"\nExecStart = {}\n",
            sh("echo $$ >> once.starts; exec sleep 1000")
        ),
    );
    h.ok(&["start", "web", "once", "idle"]);
    h.ok(&["stop", "idle"]);
    let first = h.pid("web");
    kill9(first);
    h.wait_until("web to be restarted once", WAIT, || {
        let u = h.unit_json("web");
        u["state"] == "running" && u["restarts"] == 1 && h.lines("web.starts").len() == 2
    });
    h.wait_lines("once.starts", 1);
    let pids = [h.pid("web"), h.pid("once")];
    let state = h.home.join("state");
    h.wait_until("the state file to record both", WAIT, || {
        fs::read_to_string(&state).is_ok_and(|s| {
            pids.iter().all(|p| s.contains(&format!("\"pid\":{p}"))) && s.contains("\"boot\"")
        })
    });
    crash_daemon(&h);
    for pid in pids {
        kill9(pid);
        h.wait_until("the service to die", WAIT, || !alive(pid));
    }
    let text = fs::read_to_string(&state).expect("the state file");
    let mut v: serde_json::Value = serde_json::from_str(&text).expect("the state is JSON");
    let boot = v["boot"].as_str().expect("a boot record").to_owned();
    let (_, started) = boot.split_once(' ').expect("`ID STARTED_MS`");
    v["boot"] = format!("00000000-0000-4000-8000-000000000000 {started}").into();
    fs::write(&state, v.to_string()).expect("write the state");
    // The next command starts a daemon, which starts them again.
    h.wait_until("both to run again", WAIT, || {
        ["web", "once"].iter().all(|name| {
            let u = h.unit_json(name);
            u["state"] == "running" && u["pid"] != pids[0] && u["pid"] != pids[1]
        })
    });
    h.wait_lines("web.starts", 3);
    h.wait_lines("once.starts", 2);
    assert_eq!(
        h.unit_json("web")["restarts"],
        0,
        "a new boot counts afresh"
    );
    assert_eq!(h.unit_json("once")["restarts"], 0);
    assert_eq!(h.state("idle"), "inactive");
    let log = fs::read_to_string(h.home.join("daemon.log")).unwrap_or_default();
    assert!(log.contains("written before a reboot"), "{log}");
}
