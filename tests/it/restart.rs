//! Restart policies, counted in launches (a marker line per start), and the
//! start limit.

use serde_json::json;

use crate::util::{kill9, sh, Home, WAIT};

/// Starts a unit whose every launch appends its pid to `starts`, then runs `then`.
fn counted(h: &Home, name: &str, service: &str, then: &str) {
    h.unit(
        name,
        &format!(
            "[service]\n{service}\nExecStart = {}\n",
            sh(&format!("echo $$ >> starts; {then}"))
        ),
    );
    h.ok(&["start", name]);
}

/// Waits for the third launch of `app` (the one that stays up) to run.
fn wait_third_launch_up(h: &Home) {
    h.wait_until("the third launch to stay up", WAIT, || {
        let u = h.unit_json("app");
        u["state"] == "running" && u["restarts"] == 2 && h.lines("starts").len() == 3
    });
}

/// Starts `app`, which always fails, restarts at once and may be started 3 times in 10 s.
fn start_limited(h: &Home) {
    h.unit(
        "app",
        &format!(
            "[unit]\nStartLimitBurst = 3\nStartLimitIntervalSec = 10\n[service]\nRestart = \"always\"\nRestartSec = 0\nExecStart = {}\n",
            sh("echo $$ >> starts; exit 1")
        ),
    );
    h.ok(&["start", "app"]);
}

/// Succeeds (or fails) `n - 1` times, then stays up on the n-th launch.
fn stay_up_on_launch(n: usize, exit: i32) -> String {
    format!("[ $(wc -l < starts) -ge {n} ] && exec sleep 1000; exit {exit}")
}

#[test]
fn on_failure_restarts_after_a_non_zero_exit() {
    // Restart=on-failure relaunches after exit 1 until the service stays up.
    let h = Home::new("on_failure_restarts_after_a_non_zero_exit");
    counted(
        &h,
        "app",
        "Restart = \"on-failure\"\nRestartSec = 0",
        &stay_up_on_launch(3, 1),
    );
    wait_third_launch_up(&h);
    assert_eq!(h.lines("starts").len(), 3);
    let u = h.unit_json("app");
    assert_eq!(u["last_exit"], json!({"code": 1}), "{u}");
    assert_eq!(u["pid"].as_i64(), h.lines("starts")[2].parse().ok());
}

#[test]
fn on_failure_does_not_restart_after_exit_0() {
    // Restart=on-failure leaves a clean exit alone: one launch, state exited.
    let h = Home::new("on_failure_does_not_restart_after_exit_0");
    counted(
        &h,
        "app",
        "Restart = \"on-failure\"\nRestartSec = 0",
        "exit 0",
    );
    h.wait_state("app", "exited");
    let u = h.unit_json("app");
    assert_eq!(u["last_exit"], json!({"code": 0}), "{u}");
    assert_eq!(u["restarts"], 0, "{u}");
    assert_eq!(h.lines("starts").len(), 1);
}

#[test]
fn always_restarts_after_exit_0() {
    // Restart=always relaunches after a clean exit too.
    let h = Home::new("always_restarts_after_exit_0");
    counted(
        &h,
        "app",
        "Restart = \"always\"\nRestartSec = 0",
        &stay_up_on_launch(3, 0),
    );
    wait_third_launch_up(&h);
    assert_eq!(h.lines("starts").len(), 3);
    assert_eq!(h.unit_json("app")["last_exit"], json!({"code": 0}));
}

#[test]
fn restart_no_ends_failed_with_the_exit_code() {
    // Restart=no: a non-zero exit is final, with last_exit {"code": 3}.
    let h = Home::new("restart_no_ends_failed_with_the_exit_code");
    counted(&h, "app", "Restart = \"no\"", "exit 3");
    h.wait_state("app", "failed");
    let u = h.unit_json("app");
    assert_eq!(u["last_exit"], json!({"code": 3}), "{u}");
    assert_eq!(u["reason"], "exited with code 3", "{u}");
    assert!(u["pid"].is_null(), "{u}");
    assert_eq!(h.lines("starts").len(), 1);
}

#[test]
fn death_by_signal_counts_as_failure_and_restarts() {
    // kill -9 of an on-failure service relaunches it; last_exit names the signal.
    let h = Home::new("death_by_signal_counts_as_failure_and_restarts");
    counted(
        &h,
        "app",
        "Restart = \"on-failure\"\nRestartSec = 0",
        "exec sleep 1000",
    );
    h.wait_lines("starts", 1);
    let first = h.pid("app");
    kill9(first);
    h.wait_until("a relaunch after kill -9", WAIT, || {
        let u = h.unit_json("app");
        u["state"] == "running"
            && u["restarts"] == 1
            && u["pid"] != first
            && h.lines("starts").len() == 2
    });
    let u = h.unit_json("app");
    assert_eq!(u["last_exit"], json!({"signal": "SIGKILL"}), "{u}");
    assert_eq!(h.lines("starts").len(), 2);
}

#[test]
fn restart_sec_fraction_delays_the_relaunch() {
    // RestartSec = 0.3 waits that long in `restarting` before the relaunch.
    let h = Home::new("restart_sec_fraction_delays_the_relaunch");
    counted(
        &h,
        "app",
        "Restart = \"always\"\nRestartSec = 0.3",
        "exec sleep 1000",
    );
    h.wait_lines("starts", 1);
    let first = h.pid("app");
    let t0 = std::time::Instant::now();
    kill9(first);
    h.wait_until("a relaunch", WAIT, || h.lines("starts").len() == 2);
    let took = t0.elapsed();
    assert!(
        took >= std::time::Duration::from_millis(250),
        "relaunched after {took:?}, before RestartSec"
    );
}

#[test]
fn start_limit_fails_after_exactly_burst_launches() {
    // StartLimitBurst=3 in 10 s: an always-failing service is launched 3 times, then fails "start limit hit".
    let h = Home::new("start_limit_fails_after_exactly_burst_launches");
    start_limited(&h);
    h.wait_state("app", "failed");
    let u = h.unit_json("app");
    assert_eq!(u["reason"], "start limit hit", "{u}");
    assert_eq!(u["last_exit"], json!({"code": 1}), "{u}");
    assert_eq!(h.lines("starts").len(), 3, "launches");
    // An explicit start resets the limit: three more launches.
    h.ok(&["start", "app"]);
    h.wait_until("the second round to hit the limit", WAIT, || {
        h.state("app") == "failed" && h.lines("starts").len() == 6
    });
}

#[test]
fn restarts_counts_only_real_relaunches() {
    // After 3 launches cut off by StartLimitBurst=3, `restarts` is 2, not 3.
    let h = Home::new("restarts_counts_only_real_relaunches");
    start_limited(&h);
    h.wait_state("app", "failed");
    assert_eq!(h.lines("starts").len(), 3);
    assert_eq!(h.unit_json("app")["restarts"], 2);
}

#[test]
fn restarts_field_counts_each_relaunch() {
    // Every automatic relaunch adds one to `restarts`.
    let h = Home::new("restarts_field_counts_each_relaunch");
    counted(
        &h,
        "app",
        "Restart = \"always\"\nRestartSec = 0",
        "exec sleep 1000",
    );
    for n in 1..=3 {
        h.wait_lines("starts", n);
        let pid = h.pid("app");
        kill9(pid);
        h.wait_until(&format!("relaunch {n}"), WAIT, || {
            let u = h.unit_json("app");
            u["state"] == "running" && u["restarts"] == n && u["pid"] != pid
        });
    }
    h.wait_lines("starts", 4);
    assert_eq!(h.lines("starts").len(), 4);
}

#[test]
fn restart_delay_doubles_up_to_restart_max_delay_sec() {
    // With RestartSec = 0.1 and RestartMaxDelaySec = 0.4 the gaps between launches grow (lower bounds only, jitter is at most 25%).
    let h = Home::new("restart_delay_doubles_up_to_restart_max_delay_sec");
    h.unit(
        "app",
        &format!(
            "[unit]\nStartLimitBurst = 0\n[service]\nRestart = \"always\"\nRestartSec = 0.1\nRestartMaxDelaySec = 0.4\nExecStart = {}\n",
            sh("date +%s%N >> starts; [ $(wc -l < starts) -ge 5 ] && exec sleep 1000; exit 1")
        ),
    );
    h.ok(&["start", "app"]);
    h.wait_until("the fifth launch", WAIT, || h.lines("starts").len() == 5);
    let t: Vec<u64> = h
        .lines("starts")
        .iter()
        .map(|l| l.parse().expect("nanoseconds"))
        .collect();
    let gaps: Vec<f64> = t.windows(2).map(|w| (w[1] - w[0]) as f64 / 1e9).collect();
    // Expected delays: 0.1, 0.2, 0.4, 0.4, each at most 25% less.
    for (gap, min) in gaps.iter().zip([0.1, 0.15, 0.3, 0.3]) {
        assert!(*gap >= min - 0.01, "gaps {gaps:?}: {gap} < {min}");
    }
}

#[test]
fn a_change_in_a_watched_directory_restarts_the_service_once() {
    // WatchPaths = ["conf/"]: three quick writes in a subdirectory restart the running service once, after the quiet period.
    let h = Home::new("a_change_in_a_watched_directory_restarts");
    std::fs::create_dir_all(h.units.join("conf/deep")).expect("mkdir conf/deep");
    h.unit(
        "dev",
        &format!(
            "[service]\nWatchPaths = [\"conf/\"]\nWatchDebounceSec = 0.5\nExecStart = {}\n",
            crate::util::sh("echo $$ >> dev.starts; exec sleep 1000")
        ),
    );
    h.ok(&["start", "dev"]);
    h.wait_lines("dev.starts", 1);
    // The daemon watches conf/ and conf/deep (two inotify watches) at the end of the
    // pass that started the unit: on a loaded box the shell can write its line first.
    let daemon = h.daemon_pid().expect("daemon pid");
    h.wait_until(
        "the daemon to watch conf/ and conf/deep",
        crate::util::WAIT,
        || inotify_watches(daemon) >= 2,
    );
    for i in 0..3 {
        std::fs::write(h.units.join("conf/deep/app.toml"), format!("v = {i}\n")).expect("write");
    }
    h.wait_until("one restart", crate::util::WAIT, || {
        h.lines("dev.starts").len() >= 2
    });
    h.stays(
        "no second restart",
        std::time::Duration::from_millis(1500),
        || h.lines("dev.starts").len() == 2,
    );
    assert_eq!(h.state("dev"), "running");
}

#[test]
fn a_watched_path_that_appears_later_restarts_the_service_and_is_then_watched() {
    // WatchPaths = ["later.txt"], absent at the start: other files written beside it change nothing; its creation restarts the service, and a change to it then restarts it again.
    let h = Home::new("a_watched_path_that_appears_later");
    h.unit(
        "dev",
        &format!(
            "[service]\nWatchPaths = [\"later.txt\"]\nWatchDebounceSec = 0.3\nExecStart = {}\n",
            crate::util::sh("echo $$ >> dev.starts; exec sleep 1000")
        ),
    );
    h.ok(&["start", "dev"]);
    h.wait_lines("dev.starts", 1);
    let log = || std::fs::read_to_string(h.home.join("daemon.log")).unwrap_or_default();
    h.wait_until(
        "the daemon to wait for later.txt",
        crate::util::WAIT,
        || log().contains("later.txt does not exist yet"),
    );
    std::fs::write(h.units.join("other.txt"), "x").expect("write other.txt");
    h.stays(
        "no restart for another file",
        std::time::Duration::from_millis(1000),
        || h.lines("dev.starts").len() == 1,
    );
    std::fs::write(h.units.join("later.txt"), "1").expect("write later.txt");
    h.wait_until("a restart once it appeared", crate::util::WAIT, || {
        h.lines("dev.starts").len() == 2
    });
    // Its watches were set again in the pass that asked for the restart,
    // before the new process wrote its line.
    std::fs::write(h.units.join("later.txt"), "2").expect("write later.txt");
    h.wait_until("a restart for its change", crate::util::WAIT, || {
        h.lines("dev.starts").len() == 3
    });
}

/// How many inotify watches the process holds (the `inotify wd:` lines of its fdinfo).
fn inotify_watches(pid: i32) -> usize {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fdinfo")) else {
        return 0;
    };
    dir.flatten()
        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
        .map(|text| {
            text.lines()
                .filter(|l| l.starts_with("inotify wd:"))
                .count()
        })
        .sum()
}
