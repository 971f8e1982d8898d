//! One service at a time: start, stop, restart, and how stop escalates.

use std::process::Output;
use std::time::{Duration, Instant};

use crate::util::{alive, gone, kill9, sh, Home, Stat, WAIT};

/// Writes `slow`, a oneshot that never exits (each launch appends its pid
/// to `starts`), and has the daemon running.
fn slow_oneshot(h: &Home) {
    h.unit(
        "slow",
        &format!(
            "[service]\nType = \"oneshot\"\nExecStart = {}\n",
            sh("echo $$ >> starts; exec sleep 1000")
        ),
    );
    h.ok(&["list"]);
}

/// Fails the test unless python3 runs (`why` the test needs it).
fn need_python3(why: &str) {
    let python = std::process::Command::new("python3")
        .args(["-c", "pass"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        python,
        "this test needs python3 {why} (.ci/run installs it)"
    );
}

/// Runs the client with `args` in a thread while `meanwhile` runs here;
/// the client's output once both are done.
fn while_running(h: &Home, args: &[&str], meanwhile: impl FnOnce()) -> Output {
    std::thread::scope(|s| {
        let client = s.spawn(|| h.cmd(args));
        meanwhile();
        client
            .join()
            .unwrap_or_else(|e| std::panic::resume_unwind(e))
    })
}

#[test]
fn start_returns_once_the_service_runs() {
    // When `start` returns, list shows it running with a live pid (no polling needed).
    let h = Home::new("start_returns_once_the_service_runs");
    h.unit("web", "[service]\nExecStart = \"sleep 1000\"\n");
    let out = h.ok(&["start", "web"]);
    assert!(out.contains("web"), "{out}");
    let u = h.unit_json("web");
    assert_eq!(u["state"], "running", "{u}");
    let pid = u["pid"].as_i64().expect("a pid") as i32;
    assert!(alive(pid), "pid {pid} is not alive right after start");
    assert_eq!(u["restarts"], 0);
}

#[test]
fn start_of_a_oneshot_returns_after_it_exited() {
    // A oneshot is up once it exited 0: start waits for that, then it is `exited`.
    let h = Home::new("start_of_a_oneshot_returns_after_it_exited");
    h.start_script(
        "migrate",
        "Type = \"oneshot\"\n",
        "sleep 0.2; echo done >> migrated",
    );
    assert_eq!(h.lines("migrated"), ["done"]);
    let u = h.unit_json("migrate");
    assert_eq!(u["state"], "exited", "{u}");
    assert!(u["pid"].is_null(), "{u}");
    assert_eq!(u["last_exit"], serde_json::json!({"code": 0}), "{u}");
}

#[test]
fn oneshot_with_remain_after_exit_stays_running_without_pid() {
    // RemainAfterExit keeps a finished oneshot `running`, with no pid.
    let h = Home::new("oneshot_with_remain_after_exit_stays_running_without_pid");
    h.start_script(
        "setup",
        "Type = \"oneshot\"\nRemainAfterExit = true\n",
        "echo done >> setup-ran",
    );
    assert_eq!(h.lines("setup-ran"), ["done"]);
    let u = h.unit_json("setup");
    assert_eq!(u["state"], "running", "{u}");
    assert!(u["pid"].is_null(), "{u}");
    h.ok(&["stop", "setup"]);
    assert_eq!(h.state("setup"), "inactive");
}

#[test]
fn oneshot_that_fails_makes_start_fail() {
    // A oneshot that exits non-zero (Restart=no) fails its start with the exit code.
    let h = Home::new("oneshot_that_fails_makes_start_fail");
    h.unit(
        "migrate",
        "[service]\nType = \"oneshot\"\nRestart = \"no\"\nExecStart = \"sh -c 'exit 4'\"\n",
    );
    let err = h.fails(1, &["start", "migrate"]);
    assert!(err.contains("migrate") && err.contains("code 4"), "{err}");
    assert_eq!(h.state("migrate"), "failed");
}

#[test]
fn start_of_a_missing_program_fails_naming_unit_and_not_found() {
    // An ExecStart that does not exist fails start (exit 1) with the unit and "not found".
    let h = Home::new("start_of_a_missing_program_fails_naming_unit_and_not_found");
    h.unit(
        "ghost",
        "[service]\nExecStart = \"/nonexistent/bin/ghostd --serve\"\n",
    );
    h.unit(
        "phantom",
        "[service]\nExecStart = \"no-such-program-diakonos-test\"\n",
    );
    for name in ["ghost", "phantom"] {
        let err = h.fails(1, &["start", name]);
        let first = err.lines().next().unwrap_or_default();
        assert!(first.contains(name), "{err}");
        assert!(first.contains("not found"), "{err}");
        let u = h.unit_json(name);
        assert_eq!(u["state"], "failed", "{u}");
        assert!(
            u["reason"]
                .as_str()
                .unwrap_or_default()
                .contains("not found"),
            "{u}"
        );
    }
}

#[test]
fn stop_returns_once_the_process_is_gone() {
    // When `stop` returns, the pid is gone from /proc (reaped, not a zombie).
    let h = Home::new("stop_returns_once_the_process_is_gone");
    h.unit("web", "[service]\nExecStart = \"sleep 1000\"\n");
    h.ok(&["start", "web"]);
    let pid = h.pid("web");
    h.ok(&["stop", "web"]);
    assert!(gone(pid), "pid {pid} still in /proc after stop returned");
    let u = h.unit_json("web");
    assert_eq!(u["state"], "inactive", "{u}");
    assert!(u["pid"].is_null(), "{u}");
}

#[test]
fn stop_escalates_to_sigkill_after_timeout_stop_sec() {
    // A service that ignores SIGTERM is SIGKILLed after TimeoutStopSec, and stop returns.
    let h = Home::new("stop_escalates_to_sigkill_after_timeout_stop_sec");
    h.start_script(
        "stubborn",
        "TimeoutStopSec = 0.5\n",
        "trap \"\" TERM; echo $$ >> started; while :; do sleep 0.1; done",
    );
    let pid = h.pid("stubborn");
    // The trap must be in place before we stop, or TERM alone would do.
    h.wait_written("started", "the TERM trap to be set");
    let t0 = Instant::now();
    h.ok(&["stop", "stubborn"]);
    let took = t0.elapsed();
    assert!(gone(pid), "pid {pid} survived stop");
    assert!(
        took >= Duration::from_millis(400),
        "stop returned after {took:?}, before TimeoutStopSec"
    );
    assert!(took < Duration::from_secs(5), "stop took {took:?}");
    let u = h.unit_json("stubborn");
    assert_eq!(u["state"], "inactive", "{u}");
    assert_eq!(
        u["last_exit"],
        serde_json::json!({"signal": "SIGKILL"}),
        "{u}"
    );
}

#[test]
fn exec_stop_runs_before_the_kill_signal() {
    // ExecStop runs (and finishes) before KillSignal reaches the service.
    let h = Home::new("exec_stop_runs_before_the_kill_signal");
    h.unit(
        "app",
        &format!(
            "[service]\nExecStart = {}\nExecStop = {}\n",
            sh("trap \"echo term >> order; exit 0\" TERM; echo $$ >> started; while :; do sleep 0.1; done"),
            sh("echo execstop >> order")
        ),
    );
    h.ok(&["start", "app"]);
    let pid = h.pid("app");
    h.wait_written("started", "the TERM trap to be set");
    h.ok(&["stop", "app"]);
    assert!(gone(pid));
    assert_eq!(h.lines("order"), ["execstop", "term"]);
}

#[test]
fn kill_signal_is_what_the_service_receives() {
    // KillSignal = "SIGINT" is the signal a stop sends (the service's trap records which).
    let h = Home::new("kill_signal_is_what_the_service_receives");
    h.start_script("app", "KillSignal = \"SIGINT\"\n", "trap \"echo INT >> sig; exit 0\" INT; trap \"echo TERM >> sig; exit 0\" TERM; echo $$ >> started; while :; do sleep 0.1; done");
    h.wait_written("started", "the traps to be set");
    h.ok(&["stop", "app"]);
    assert_eq!(h.lines("sig"), ["INT"]);
}

#[test]
fn stop_kills_the_whole_process_group() {
    // A background child of the service is gone after stop, not just the main process.
    let h = Home::new("stop_kills_the_whole_process_group");
    h.start_script("parent", "", "sleep 1000 & echo $! > child; wait");
    let pid = h.pid("parent");
    let child = h.written_pid("child");
    assert!(alive(child));
    h.ok(&["stop", "parent"]);
    assert!(gone(pid), "main pid {pid} survived stop");
    assert!(gone(child), "child pid {child} survived stop");
}

#[test]
fn stop_reaches_a_child_that_escaped_with_setsid() {
    // A child that left the service's session and process group (setsid)
    // still carries the unit's tag: stop kills it and returns once it is gone.
    let h = Home::new("stop_reaches_a_child_that_escaped_with_setsid");
    h.start_script(
        "escaper",
        "",
        "setsid sh -c 'echo $$ > escaped; exec sleep 1000' & wait",
    );
    let escaped = h.written_pid("escaped");
    let main = h.pid("escaper");
    let (s, m) = (Stat::of(escaped), Stat::of(main));
    assert!(
        s.zip(m)
            .is_some_and(|(s, m)| s.session != m.session && s.pgrp != m.pgrp),
        "the child did not escape: {s:?} vs main {m:?}"
    );
    h.ok(&["stop", "escaper"]);
    assert!(gone(main), "main pid {main} survived stop");
    assert!(gone(escaped), "escaped child {escaped} survived stop");
    assert_eq!(h.state("escaper"), "inactive");
}

#[test]
fn an_escaped_child_that_ignores_the_kill_signal_gets_sigkill() {
    // The escaped process goes through the stop's escalation: KillSignal,
    // then SIGKILL after TimeoutStopSec; stop waits for it.
    let h = Home::new("an_escaped_child_that_ignores_the_kill_signal_gets_sigkill");
    h.start_script(
        "escaper",
        "TimeoutStopSec = 0.5\n",
        "setsid sh -c 'trap \"\" TERM; echo $$ > escaped; while :; do sleep 0.1; done' & wait",
    );
    let escaped = h.written_pid("escaped");
    let t0 = Instant::now();
    h.ok(&["stop", "escaper"]);
    let took = t0.elapsed();
    assert!(gone(escaped), "escaped child {escaped} survived stop");
    assert!(
        took >= Duration::from_millis(400),
        "stop returned after {took:?}, before TimeoutStopSec"
    );
    assert_eq!(h.state("escaper"), "inactive");
}

#[test]
fn what_a_run_that_ended_left_outside_its_group_is_killed() {
    // A main process exits (Restart = "always", RestartSec = 0.2, as long as the look's delay) and leaves a setsid'd child behind: each is killed with its run, so none pile up over the restarts, while each new run's own setsid'd child lives until its run ends; the last run's is killed by `stop`. A child that cleared its environment (`env -i`) carries no tag: it is left alone (nothing says whose it is).
    let h = Home::new("what_a_run_that_ended_left_is_killed");
    h.unit(
        "leaver",
        &format!(
            "[unit]\nStartLimitBurst = 0\n[service]\nRestart = \"always\"\nRestartSec = 0.2\nExecStart = {}\n",
            sh("setsid sh -c 'echo $$ >> tagged; exec sleep 1000' & \
                n=$(wc -l < runs 2>/dev/null || echo 0); echo $$ >> runs; \
                [ $n -eq 0 ] && env -i /usr/bin/setsid /bin/sh -c 'echo $$ >> untagged; exec /bin/sleep 1000' & \
                sleep 0.5; echo $$ >> done; exit 1")
        ),
    );
    h.ok(&["start", "leaver"]);
    h.wait_until("four runs' children", WAIT, || h.lines("tagged").len() >= 4);
    let pids = |f: &str| -> Vec<i32> { h.lines(f).iter().filter_map(|l| l.parse().ok()).collect() };
    let tagged = pids("tagged");
    for pid in &tagged[..2] {
        h.wait_until(&format!("{pid} of an ended run gone"), WAIT, || gone(*pid));
    }
    h.ok(&["stop", "leaver"]);
    for pid in pids("tagged") {
        h.wait_until(&format!("{pid} gone after stop"), WAIT, || gone(pid));
    }
    // No run was cut short by the look for an earlier run's strays: every
    // run but the one `stop` ended lived its 0.5 s.
    let (runs, done) = (h.lines("runs").len(), h.lines("done").len());
    assert!(done + 1 >= runs, "{done} of {runs} runs finished");
    let untagged = pids("untagged");
    assert_eq!(untagged.len(), 1);
    assert!(alive(untagged[0]), "an untagged process was killed");
    kill9(untagged[0]);
}

#[test]
fn a_remain_after_exit_oneshot_keeps_what_it_daemonized_until_its_stop() {
    // A RemainAfterExit oneshot that starts a server outside its group (setsid) and exits 0: the server is its service, left running while the unit is up (across an upgrade and a crash of the daemon), killed by `stop`.
    let h = Home::new("remain_after_exit_daemonized");
    h.unit(
        "launcher",
        &format!(
            "[service]\nType = \"oneshot\"\nRemainAfterExit = true\nExecStart = {}\n",
            sh(
                "setsid /bin/sh -c 'echo $$ > server; exec /bin/sleep 1000' & \
                while [ ! -s server ]; do sleep 0.01; done; exit 0"
            )
        ),
    );
    h.ok(&["start", "launcher"]);
    let server = h.written_pid("server");
    assert_eq!(h.state("launcher"), "running");
    h.stays("the server running", Duration::from_millis(500), || {
        alive(server)
    });
    // A daemon that takes over (an upgrade, a crash) knows it too.
    for how in ["upgrade", "crash"] {
        h.replace_daemon(how);
        assert_eq!(h.state("launcher"), "running", "{how}");
        assert!(alive(server), "{how}: the server died");
    }
    h.ok(&["stop", "launcher"]);
    // Not the daemon's child any more: a zombie until init reaps it.
    assert!(!alive(server), "the server {server} survived stop");
    assert_eq!(h.state("launcher"), "inactive");
}

#[test]
fn restart_gives_a_new_pid_and_resets_restarts() {
    // `restart` replaces the process and sets the restart count back to 0.
    let h = Home::new("restart_gives_a_new_pid_and_resets_restarts");
    h.unit(
        "web",
        "[service]\nRestart = \"always\"\nRestartSec = 0\nExecStart = \"sleep 1000\"\n",
    );
    h.ok(&["start", "web"]);
    let first = h.pid("web");
    kill9(first);
    h.wait_until("web to be restarted once", WAIT, || {
        let u = h.unit_json("web");
        u["restarts"] == 1 && u["state"] == "running"
    });
    let second = h.pid("web");
    assert_ne!(first, second);
    h.ok(&["restart", "web"]);
    let u = h.unit_json("web");
    assert_eq!(u["state"], "running", "{u}");
    assert_eq!(u["restarts"], 0, "{u}");
    let third = u["pid"].as_i64().expect("a pid") as i32;
    assert_ne!(third, second);
    assert!(gone(second), "old pid {second} survived restart");
    assert!(alive(third));
}

#[test]
fn start_of_a_running_unit_is_a_no_op() {
    // Starting a unit that already runs keeps the same process.
    let h = Home::new("start_of_a_running_unit_is_a_no_op");
    h.unit("web", "[service]\nExecStart = \"sleep 1000\"\n");
    h.ok(&["start", "web"]);
    let pid = h.pid("web");
    h.ok(&["start", "web"]);
    assert_eq!(h.pid("web"), pid);
}

#[test]
fn logs_show_the_service_output() {
    // stdout and stderr of a service land in its log, which `logs` prints.
    let h = Home::new("logs_show_the_service_output");
    h.start_script(
        "chatty",
        "Type = \"oneshot\"\n",
        "echo to-stdout; echo to-stderr >&2",
    );
    let out = h.ok(&["logs", "chatty"]);
    assert!(
        out.contains("to-stdout") && out.contains("to-stderr"),
        "{out}"
    );
    let last = h.ok(&["logs", "chatty", "-n", "1"]);
    assert_eq!(last.trim(), "to-stderr");
}

#[test]
fn logs_of_a_unit_with_no_log_say_whether_the_unit_exists() {
    // A unit that never ran: no output yet, start it. A name that is no unit (a typo): no such unit, with or without a daemon running, and `-f` does not wait for it.
    let h = Home::new("logs_of_a_unit_with_no_log_say_whether_the_unit_exists");
    h.unit("web", "[service]\nExecStart = \"sleep 1000\"\n");
    let never = h.fails(1, &["logs", "web"]);
    assert!(
        never.contains("no output from `web` yet") && never.contains("diakonos start web"),
        "{never}"
    );
    let typo = h.fails(1, &["logs", "wbe"]);
    assert!(typo.contains("no unit named `wbe`"), "{typo}");
    assert!(!typo.contains("start"), "{typo}");
    h.ok(&["list"]);
    let typo = h.fails(1, &["logs", "-f", "wbe"]);
    assert!(typo.contains("no unit named `wbe`"), "{typo}");
    // A unit of this host only (`NAME@HOST.service`) is a unit too.
    let host = nix::unistd::gethostname().expect("hostname");
    let host = host.to_str().expect("a UTF-8 hostname");
    h.unit(
        &format!("hw@{host}"),
        "[service]\nExecStart = \"sleep 1000\"\n",
    );
    let never = h.fails(1, &["logs", "hw"]);
    assert!(never.contains("no output from `hw` yet"), "{never}");
    // With no daemon and no directory named, the last daemon's directory
    // (in the state file once a unit ran).
    h.unit("other", "[service]\nExecStart = \"sleep 1000\"\n");
    h.ok(&["start", "other"]);
    h.ok(&["kill"]);
    let home = h.home.to_str().expect("a UTF-8 home");
    let out = h.bare(&["--home", home, "logs", "web"]);
    let text = crate::util::stderr(&out);
    assert!(text.contains("no output from `web` yet"), "{text}");
}

#[test]
fn stop_of_an_inactive_unit_succeeds() {
    // Stopping a unit that is not running is a successful no-op.
    let h = Home::new("stop_of_an_inactive_unit_succeeds");
    h.unit("web", "[service]\nExecStart = \"sleep 1000\"\n");
    h.ok(&["stop", "web"]);
    assert_eq!(h.state("web"), "inactive");
}

#[test]
fn start_of_a_failed_unit_launches_it_again() {
    // An explicit start of a failed unit relaunches it.
    let h = Home::new("start_of_a_failed_unit_launches_it_again");
    h.start_script("app", "Restart = \"no\"\n", "echo $$ >> starts; exit 3");
    h.wait_state("app", "failed");
    h.ok(&["start", "app"]);
    h.wait_until("a second failed launch", WAIT, || {
        h.lines("starts").len() == 2 && h.state("app") == "failed"
    });
}

#[test]
fn stop_during_backoff_cancels_the_restart() {
    // Stopping a unit that waits out RestartSec leaves it inactive, with no relaunch.
    let h = Home::new("stop_during_backoff_cancels_the_restart");
    h.start_script(
        "app",
        "Restart = \"always\"\nRestartSec = 0.3\n",
        "echo $$ >> starts; exec sleep 1000",
    );
    h.wait_lines("starts", 1);
    kill9(h.pid("app"));
    h.wait_state("app", "restarting");
    h.ok(&["stop", "app"]);
    assert_eq!(h.state("app"), "inactive");
    h.stays(
        "app inactive with one launch",
        Duration::from_millis(600),
        || h.lines("starts").len() == 1 && h.state("app") == "inactive",
    );
}

#[test]
fn oneshot_that_overruns_timeout_start_sec_fails() {
    // A oneshot still running after TimeoutStartSec is killed and its start fails "start timed out".
    let h = Home::new("oneshot_that_overruns_timeout_start_sec_fails");
    h.unit(
        "slow",
        &format!(
            "[service]\nType = \"oneshot\"\nRestart = \"no\"\nTimeoutStartSec = 0.3\nExecStart = {}\n",
            sh("echo $$ >> starts; exec sleep 1000")
        ),
    );
    let err = h.fails(1, &["start", "slow"]);
    assert!(err.contains("start timed out"), "{err}");
    let u = h.unit_json("slow");
    assert_eq!(u["state"], "failed", "{u}");
    // Under load the shell may be killed before it wrote its pid: look for
    // anything still running in the service dir instead.
    h.wait_until("the timed-out oneshot to be gone", WAIT, || {
        h.procs_in_units().is_empty()
    });
}

#[test]
fn stop_during_a_oneshot_start_fails_that_start() {
    // A stop that arrives while a oneshot is still starting ends the waiting start with exit 1.
    let h = Home::new("stop_during_a_oneshot_start_fails_that_start");
    slow_oneshot(&h);
    let starter = while_running(&h, &["start", "slow"], || {
        h.wait_until("slow to be starting", WAIT, || {
            h.state("slow") == "starting"
        });
        h.ok(&["stop", "slow"]);
    });
    assert_eq!(
        starter.status.code(),
        Some(1),
        "{}",
        crate::util::stderr(&starter)
    );
    assert!(crate::util::stderr(&starter).contains("slow"));
    assert_eq!(h.state("slow"), "inactive");
}

#[test]
fn host_specific_unit_file_wins_on_its_host() {
    // NAME@HOST.service replaces NAME.service on host HOST; files for other hosts are ignored.
    let h = Home::new("host_specific_unit_file_wins_on_its_host");
    let host = nix::unistd::gethostname()
        .expect("hostname")
        .into_string()
        .expect("utf-8 hostname");
    let oneshot = |word: &str| {
        format!(
            "[service]\nType = \"oneshot\"\nExecStart = {}\n",
            sh(&format!("echo {word} >> which"))
        )
    };
    h.unit("web", &oneshot("generic"));
    h.unit(&format!("web@{host}"), &oneshot("this-host"));
    h.unit("web@some-other-host-xyz", &oneshot("other-host"));
    h.unit("db@some-other-host-xyz", &oneshot("other-host"));
    let list = h.json_list();
    let names: Vec<&str> = list
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|u| u["name"].as_str())
        .collect();
    assert_eq!(names, ["web"]);
    h.ok(&["start", "web"]);
    assert_eq!(h.lines("which"), ["this-host"]);
}

#[test]
fn fifty_units_start_with_one_command() {
    // One `start` of fifty independent units returns with all of them running.
    let h = Home::new("fifty_units_start_with_one_command");
    let names: Vec<String> = (0..50).map(|i| format!("u{i:02}")).collect();
    for name in &names {
        h.unit(name, "[service]\nExecStart = \"sleep 1000\"\n");
    }
    let mut args = vec!["start"];
    args.extend(names.iter().map(String::as_str));
    h.ok(&args);
    let list = h.json_list();
    let units = list.as_array().expect("array");
    assert_eq!(units.len(), 50);
    for u in units {
        assert_eq!(u["state"], "running", "{u}");
        assert!(alive(u["pid"].as_i64().expect("pid") as i32), "{u}");
    }
}

/// `app` with a hung ExecStop and `timeout` (TimeoutStopSec), started and
/// stopped `rounds` times: each stop ends with the service and its ExecStop
/// gone and the unit inactive.
fn hung_exec_stop_is_cut_off(test: &str, timeout: &str, rounds: usize) {
    let h = Home::new(test);
    h.unit(
        "app",
        &format!(
            "[service]\nTimeoutStopSec = {timeout}\nExecStart = {}\nExecStop = {}\n",
            sh("exec sleep 1000"),
            sh("echo $$ >> stoppers; exec sleep 1000")
        ),
    );
    for _ in 0..rounds {
        h.ok(&["start", "app"]);
        let pid = h.pid("app");
        h.ok(&["stop", "app"]);
        assert!(gone(pid), "the service survived stop");
        // The ExecStop may be cut off before it wrote its pid.
        for stopper in h.lines("stoppers") {
            h.remember(stopper.parse().expect("a pid"));
        }
        h.wait_until("the hung ExecStop to be gone", WAIT, || {
            h.procs_in_units().is_empty()
        });
        assert_eq!(h.state("app"), "inactive");
    }
}

#[test]
fn exec_stop_that_hangs_is_cut_off_by_timeout_stop_sec() {
    // An ExecStop that never finishes does not hang stop: after TimeoutStopSec the service is signalled anyway.
    hung_exec_stop_is_cut_off(
        "exec_stop_that_hangs_is_cut_off_by_timeout_stop_sec",
        "0.3",
        1,
    );
}

#[test]
fn exec_stop_with_no_grace_is_killed_even_before_its_exec() {
    // TimeoutStopSec = 0: the ExecStop gets SIGKILL at once, while it may
    // still be between its clone and its exec (no process group of its
    // own yet); it must not be left running.
    hung_exec_stop_is_cut_off(
        "exec_stop_with_no_grace_is_killed_even_before_its_exec",
        "0",
        5,
    );
}

#[test]
fn exec_stop_that_cannot_start_still_stops_the_service() {
    // A missing ExecStop program does not keep the service from being stopped.
    let h = Home::new("exec_stop_that_cannot_start_still_stops_the_service");
    h.unit(
        "app",
        "[service]\nExecStart = \"sleep 1000\"\nExecStop = \"/nonexistent/stopper\"\n",
    );
    h.ok(&["start", "app"]);
    let pid = h.pid("app");
    h.ok(&["stop", "app"]);
    assert!(gone(pid));
    assert_eq!(h.state("app"), "inactive");
    // Why, in daemon.log (the exec's outcome comes after the spawn returned).
    let log = std::fs::read_to_string(h.home.join("daemon.log")).unwrap_or_default();
    assert!(
        log.lines()
            .any(|l| l.contains("app: ExecStop:") && l.contains("/nonexistent/stopper")),
        "{log}"
    );
}

#[test]
fn exec_start_is_split_like_a_shell_without_running_one() {
    // ExecStart honours quotes: `printf '%s|' 'a b' c` gets two arguments.
    let h = Home::new("exec_start_is_split_like_a_shell_without_running_one");
    h.unit(
        "quoted",
        "[service]\nType = \"oneshot\"\nExecStart = \"printf '%s|' 'a b' \\\"c d\\\" $$HOME\"\n",
    );
    h.ok(&["start", "quoted"]);
    let log = std::fs::read_to_string(h.home.join("logs/quoted.log")).expect("log");
    assert_eq!(log, "a b|c d|$HOME|");
}

#[test]
fn missing_working_directory_fails_start_clearly() {
    // A WorkingDirectory that does not exist fails the start and says so.
    let h = Home::new("missing_working_directory_fails_start_clearly");
    h.unit(
        "lost",
        "[service]\nWorkingDirectory = \"/nonexistent/dir\"\nExecStart = \"sleep 1000\"\n",
    );
    let err = h.fails(1, &["start", "lost"]);
    assert!(
        err.contains("/nonexistent/dir") && err.contains("does not exist"),
        "{err}"
    );
}

#[test]
fn start_of_several_units_reports_the_one_that_failed() {
    // `start good bad` exits 1 naming bad, and good is running anyway.
    let h = Home::new("start_of_several_units_reports_the_one_that_failed");
    h.unit("good", "[service]\nExecStart = \"sleep 1000\"\n");
    h.unit("bad", "[service]\nExecStart = \"/nonexistent/bad\"\n");
    let err = h.fails(1, &["start", "good", "bad"]);
    assert!(err.contains("bad") && !err.contains("good"), "{err}");
    assert_eq!(h.state("good"), "running");
}

#[test]
fn service_log_is_rotated_by_size() {
    // With LogMaxBytes = 1000 and LogMaxFiles = 2 the log is rotated, and no third old file is kept.
    let h = Home::new("service_log_is_rotated_by_size");
    h.unit(
        "noisy",
        &format!(
            "[unit]\nStartLimitBurst = 0\n[service]\nRestart = \"always\"\nRestartSec = 0\nLogMaxBytes = 1000\nLogMaxFiles = 2\nExecStart = {}\n",
            sh("echo $$ >> starts; printf '%0700d' 0; echo; [ $(wc -l < starts) -ge 8 ] && exec sleep 1000; exit 0")
        ),
    );
    h.ok(&["start", "noisy"]);
    h.wait_until("the eighth launch to stay up", WAIT, || {
        h.lines("starts").len() == 8 && h.state("noisy") == "running"
    });
    let log = h.home.join("logs/noisy.log");
    let rotated = |n: u32| {
        let mut p = log.clone().into_os_string();
        p.push(format!(".{n}"));
        std::path::PathBuf::from(p)
    };
    assert!(rotated(1).exists(), "no noisy.log.1");
    assert!(rotated(2).exists(), "no noisy.log.2");
    assert!(!rotated(3).exists(), "noisy.log.3 kept beyond LogMaxFiles");
    for path in [log.clone(), rotated(1), rotated(2)] {
        let len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        assert!(len <= 1500, "{} has {len} bytes", path.display());
    }
}

#[test]
fn odd_unit_files_are_invalid_and_never_hang_the_daemon() {
    // A FIFO, a directory, a huge file, NUL bytes and bad UTF-8 named *.service are invalid units; the daemon still answers.
    let h = Home::new("odd_unit_files_are_invalid_and_never_hang_the_daemon");
    h.unit("good", "[service]\nExecStart = \"sleep 1000\"\n");
    nix::unistd::mkfifo(
        &h.units.join("fifo.service"),
        nix::sys::stat::Mode::from_bits_truncate(0o644),
    )
    .expect("mkfifo");
    std::fs::create_dir(h.units.join("dir.service")).expect("mkdir");
    let mut huge = b"[service]\nExecStart = \"sleep 1\"\n#".to_vec();
    huge.resize(2 << 20, b'x');
    std::fs::write(h.units.join("huge.service"), huge).expect("write");
    std::fs::write(h.units.join("nul.service"), b"[service]\0\n").expect("write");
    std::fs::write(
        h.units.join("latin1.service"),
        b"[unit]\nDescription = \"caf\xe9\"\n",
    )
    .expect("write");
    // verify reads them too, without a daemon, and must not hang on the FIFO.
    let err = h.fails(1, &["verify"]);
    assert!(err.contains("fifo.service"), "{err}");
    for name in ["fifo", "dir", "huge", "nul", "latin1"] {
        let u = h.unit_json(name);
        assert_eq!(u["state"], "invalid", "{u}");
        assert!(u["reason"].is_string(), "{u}");
    }
    h.ok(&["start", "good"]);
    assert_eq!(h.state("good"), "running");
}

#[test]
fn forking_service_is_up_once_its_starter_exits_and_tracks_the_pidfile() {
    // Type = "forking": start returns after the starter exited 0, and the pid is the one in PIDFile.
    let h = Home::new("forking_service_is_up_once_its_starter_exits_and_tracks_the_pidfile");
    let pidfile = h.path("app.pid");
    h.unit(
        "app",
        &format!(
            "[service]\nType = \"forking\"\nPIDFile = {}\nExecStart = {}\n",
            crate::util::toml_str(&pidfile.display().to_string()),
            sh("sleep 1000 < /dev/null > /dev/null 2>&1 & echo $! > app.pid; exit 0")
        ),
    );
    h.ok(&["start", "app"]);
    let main = h.written_pid("app.pid");
    let u = h.unit_json("app");
    assert_eq!(u["state"], "running", "{u}");
    assert_eq!(u["pid"], main, "{u}");
    h.ok(&["stop", "app"]);
    assert!(gone(main));
}

#[test]
fn notify_service_is_up_only_after_ready() {
    // Type = "notify": start returns only after the service sent READY=1 to $NOTIFY_SOCKET.
    let h = Home::new("notify_service_is_up_only_after_ready");
    need_python3("to speak sd_notify");
    std::fs::write(
        h.path("notify.py"),
        "import os, socket, time\n\
         time.sleep(0.3)\n\
         open('order', 'a').write('ready\\n')\n\
         addr = os.environ['NOTIFY_SOCKET']\n\
         if addr.startswith('@'):\n    addr = '\\0' + addr[1:]\n\
         s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\n\
         s.sendto(b'READY=1', addr)\n\
         time.sleep(1000)\n",
    )
    .expect("write notify.py");
    h.unit(
        "app",
        "[service]\nType = \"notify\"\nTimeoutStartSec = 10\nExecStart = \"python3 notify.py\"\n",
    );
    h.ok(&["start", "app"]);
    assert_eq!(h.lines("order"), ["ready"], "start returned before READY=1");
    assert_eq!(h.state("app"), "running");
}

#[test]
fn start_during_a_slow_stop_ends_running_and_both_commands_return() {
    // A start that arrives while the unit is still stopping brings it back up, and the stop command still returns.
    let h = Home::new("start_during_a_slow_stop_ends_running_and_both_commands_return");
    h.start_script(
        "app",
        "",
        "trap \"sleep 0.3; exit 0\" TERM; echo $$ >> starts; while :; do sleep 0.05; done",
    );
    h.wait_until("the trap to be set", WAIT, || h.lines("starts").len() == 1);
    let old = h.pid("app");
    let (stop, start) = std::thread::scope(|s| {
        let stop = s.spawn(|| h.run_within(h.command(&["stop", "app"]), WAIT));
        h.wait_until("app to be stopping", WAIT, || h.state("app") == "stopping");
        let start = h.cmd(&["start", "app"]);
        (
            stop.join().unwrap_or_else(|e| std::panic::resume_unwind(e)),
            start,
        )
    });
    assert!(
        start.status.success(),
        "start: {}",
        crate::util::stderr(&start)
    );
    assert!(
        stop.status.code().is_some(),
        "stop: {}",
        crate::util::stderr(&stop)
    );
    let u = h.unit_json("app");
    assert_eq!(u["state"], "running", "{u}");
    assert_ne!(u["pid"], old, "{u}");
    assert!(gone(old));
}

#[test]
fn stopping_a_dependency_that_is_still_starting_cancels_its_waiting_dependent() {
    // While worker waits for a slow oneshot it Requires, `stop migrate` takes both down and the start fails.
    let h = Home::new("stopping_a_dependency_that_is_still_starting_cancels_its_waiting_dependent");
    h.unit(
        "migrate",
        &format!(
            "[service]\nType = \"oneshot\"\nExecStart = {}\n",
            sh("echo $$ >> migrate.starts; exec sleep 1000")
        ),
    );
    h.unit(
        "worker",
        &format!(
            "[unit]\nRequires = [\"migrate\"]\n[service]\nExecStart = {}\n",
            sh("echo $$ >> worker.starts; exec sleep 1000")
        ),
    );
    h.ok(&["list"]);
    let start = while_running(&h, &["start", "worker"], || {
        h.wait_until("worker waiting on a starting migrate", WAIT, || {
            h.state("worker") == "waiting" && h.state("migrate") == "starting"
        });
        h.ok(&["stop", "migrate"]);
    });
    assert_eq!(
        start.status.code(),
        Some(1),
        "{}",
        crate::util::stderr(&start)
    );
    assert_eq!(h.state("worker"), "inactive");
    assert_eq!(h.state("migrate"), "inactive");
    assert!(h.lines("worker.starts").is_empty(), "worker was launched");
}

#[test]
fn kill_during_a_start_lets_both_commands_return() {
    // `kill` while a start is waiting for a oneshot stops everything; both clients return and no process is left.
    let h = Home::new("kill_during_a_start_lets_both_commands_return");
    slow_oneshot(&h);
    let daemon = h.daemon_pid().expect("daemon pid");
    let start = while_running(&h, &["start", "slow"], || {
        h.wait_until(
            "slow to be starting and to have written its pid",
            WAIT,
            || h.state("slow") == "starting" && !h.lines("starts").is_empty(),
        );
        h.ok(&["kill"]);
    });
    assert_eq!(
        start.status.code(),
        Some(1),
        "{}",
        crate::util::stderr(&start)
    );
    let pid: i32 = h.lines("starts")[0].parse().expect("a pid");
    assert!(gone(pid), "the oneshot survived kill");
    h.wait_until("the daemon to exit", WAIT, || !alive(daemon));
}

#[test]
fn logs_follow_prints_new_lines_as_they_come() {
    // `logs -f` keeps printing what the service writes after it started.
    use std::io::BufRead;
    let h = Home::new("logs_follow_prints_new_lines_as_they_come");
    h.start_script(
        "ticker",
        "",
        "i=0; while :; do i=$((i+1)); echo tick $i; sleep 0.05; done",
    );
    let log = h.home.join("logs/ticker.log");
    h.wait_until("a first tick", WAIT, || {
        !crate::util::read_lines(&log).is_empty()
    });
    let mut follow = h
        .command(&["logs", "ticker", "-f", "-n", "1"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn logs -f");
    let at_start = crate::util::read_lines(&log).len();
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = follow.stdout.take().expect("stdout");
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let wanted = format!("tick {}", at_start + 3);
    let deadline = Instant::now() + WAIT;
    let mut seen = Vec::new();
    while !seen.contains(&wanted) {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => seen.push(line),
            Err(_) => break,
        }
    }
    let _ = follow.kill();
    let _ = follow.wait();
    assert!(seen.contains(&wanted), "logs -f printed only {seen:?}");
}

#[test]
fn forking_without_pidfile_finds_a_double_forked_daemon() {
    // A classic double-forking daemon (setsid in between) is found without PIDFile, every time, and stop reaches it.
    need_python3("for the double fork");
    let h = Home::new("forking_without_pidfile_finds_a_double_forked_daemon");
    std::fs::write(
        h.path("dfork.py"),
        "import os, time\n\
         if os.fork(): os._exit(0)\n\
         os.setsid()\n\
         if os.fork(): os._exit(0)\n\
         open('main', 'w').write(str(os.getpid()))\n\
         time.sleep(1000)\n",
    )
    .expect("write dfork.py");
    h.unit(
        "dfork",
        "[service]\nType = \"forking\"\nExecStart = \"python3 dfork.py\"\n",
    );
    h.unit(
        "setsid",
        &format!(
            "[service]\nType = \"forking\"\nExecStart = {}\n",
            sh("setsid sleep 1001 & sleep 0.1")
        ),
    );
    for round in 0..4 {
        h.ok(&["start", "dfork", "setsid"]);
        // The daemon may find the grandchild before it wrote `main`.
        let main = h.written_pid("main");
        let u = h.unit_json("dfork");
        assert_eq!(u["pid"], main, "round {round}: {u}");
        let s = h.unit_json("setsid");
        assert_eq!(s["state"], "running", "round {round}: {s}");
        let sleeper = s["pid"].as_i64().expect("a pid") as i32;
        assert!(
            crate::util::cmdline(sleeper).contains("sleep 1001"),
            "round {round}"
        );
        h.ok(&["stop", "dfork", "setsid"]);
        assert!(
            gone(main) && gone(sleeper),
            "round {round}: stop missed the daemon"
        );
        std::fs::remove_file(h.path("main")).expect("remove marker");
    }
}
