//! Stopping (SPEC §3, §6): KillSignal, ExecStop, TimeoutStopSec and SIGKILL, the whole process group and what left it.

use crate::util::{alive, gone, kill9, sh, Home, Stat, WAIT};
use std::time::{Duration, Instant};

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
fn stop_of_an_inactive_unit_succeeds() {
    // Stopping a unit that is not running is a successful no-op.
    let h = Home::new("stop_of_an_inactive_unit_succeeds");
    h.unit("web", "[service]\nExecStart = \"sleep 1000\"\n");
    h.ok(&["stop", "web"]);
    assert_eq!(h.state("web"), "inactive");
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
