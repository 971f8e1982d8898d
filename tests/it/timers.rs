//! `[timer]` (SPEC §15): armed while enabled, a start at each elapse,
//! stopped by disable; `timers --json`.

use std::time::Duration;

use crate::util::{sh, Home};

/// Timers fire every second; on a loaded box a few may come late.
const FIRES: Duration = Duration::from_secs(20);

fn job(h: &Home, name: &str, timer: &str) {
    h.unit(
        name,
        &format!(
            "[service]\nType = \"oneshot\"\nExecStart = {}\n[timer]\n{timer}\n",
            sh(&format!("echo run >> {name}.runs"))
        ),
    );
}

#[test]
fn an_interval_timer_fires_while_enabled_and_stops_on_disable() {
    // OnUnitActiveSec = 1: enabled, the job runs again and again; disabled, it runs no more.
    let h = Home::new("an_interval_timer_fires_while_enabled");
    job(&h, "tick", "OnUnitActiveSec = 1");
    let out = h.ok(&["enable", "tick"]);
    assert!(out.contains("timer is armed"), "{out}");
    h.wait_until("three runs", FIRES, || h.lines("tick.runs").len() >= 3);
    h.ok(&["disable", "tick"]);
    h.wait_until("the job to be inactive", FIRES, || {
        h.state("tick") != "starting"
    });
    let n = h.lines("tick.runs").len();
    h.stays("no more runs", Duration::from_millis(2500), || {
        h.lines("tick.runs").len() == n
    });
}

#[test]
fn on_unit_active_sec_counts_from_a_start_by_hand_too() {
    // OnUnitActiveSec = 3: after the timer's first run, a `start` by hand; the next timer run comes no sooner than 3 s after that start (SPEC §15: since the unit last started).
    let h = Home::new("on_unit_active_sec_counts_from_a_start_by_hand");
    h.unit(
        "ua",
        &format!(
            "[service]\nType = \"oneshot\"\nExecStart = {}\n[timer]\nOnUnitActiveSec = 3\n",
            sh("date +%s.%N >> ua.runs")
        ),
    );
    h.ok(&["enable", "ua"]);
    h.wait_until("the timer's first run", FIRES, || {
        !h.lines("ua.runs").is_empty()
    });
    // Well into the interval: counted from the timer's run, the next would
    // come less than 1.5 s after the start by hand.
    h.wait_until("the next elapse to be under 1.5 s away", FIRES, || {
        let timers: serde_json::Value =
            serde_json::from_str(&h.ok(&["timers", "--json"])).expect("timers --json");
        timers[0]["left_secs"].as_f64().is_some_and(|s| s < 1.5)
    });
    h.ok(&["start", "ua"]);
    h.wait_until("the next timer run", FIRES, || {
        h.lines("ua.runs").len() >= 3
    });
    let runs: Vec<f64> = h
        .lines("ua.runs")
        .iter()
        .map(|l| l.parse().expect("a time"))
        .collect();
    assert!(runs[2] - runs[1] >= 2.9, "runs at {runs:?}");
}

#[test]
fn a_per_second_calendar_timer_fires_and_timers_json_shows_it() {
    // OnCalendar with seconds: runs each second; `timers --json` has the schedule, last run and result, next run as RFC 3339.
    let h = Home::new("a_per_second_calendar_timer_fires");
    job(
        &h,
        "every",
        "OnCalendar = \"* * * * * *\"\nTimeZone = \"UTC\"",
    );
    h.ok(&["enable", "every"]);
    h.wait_until("three runs", FIRES, || h.lines("every.runs").len() >= 3);
    let v: serde_json::Value =
        serde_json::from_str(&h.ok(&["timers", "--json"])).expect("timers --json is JSON");
    let row = &v[0];
    assert_eq!(row["name"], "every", "{v}");
    assert!(
        row["schedule"]
            .as_str()
            .is_some_and(|s| s.contains("* * * * * *")),
        "{v}"
    );
    let last = row["last_run"].as_str().expect("a last run");
    let next = row["next_run"].as_str().expect("a next run");
    assert!(
        last.ends_with('Z') && last.contains('T') && next.ends_with('Z'),
        "{v}"
    );
    assert_eq!(row["last_result"], "success", "{v}");
    let text = h.ok(&["timers"]);
    assert!(
        text.contains("every") && text.contains("* * * * * *"),
        "{text}"
    );
    // A table: each column starts where its heading does.
    let lines: Vec<&str> = text.lines().collect();
    for heading in ["SCHEDULE", "LAST RUN", "RESULT", "NEXT RUN", "LEFT"] {
        let at = lines[0].find(heading).expect("the heading");
        assert!(
            lines[1].get(at - 2..at).is_some_and(|gap| gap == "  ")
                && !lines[1][at..].starts_with(' '),
            "{heading} misaligned:\n{text}"
        );
    }
    h.ok(&["disable", "every"]);
    let v: serde_json::Value =
        serde_json::from_str(&h.ok(&["timers", "--json"])).expect("timers --json is JSON");
    assert!(v[0]["next_run"].is_null(), "{v}");
    h.wait_until("the job to be inactive", FIRES, || {
        h.state("every") != "starting"
    });
    let n = h.lines("every.runs").len();
    h.stays("no more runs", Duration::from_millis(2500), || {
        h.lines("every.runs").len() == n
    });
}

#[test]
fn start_runs_a_timer_unit_now_and_enable_does_not_start_it() {
    // `start` runs the job at once; enable with a far OnCalendar arms it without running it.
    let h = Home::new("start_runs_a_timer_unit_now");
    job(&h, "nightly", "OnCalendar = \"@yearly\"");
    h.ok(&["enable", "nightly"]);
    h.ok(&["start", "nightly"]);
    assert_eq!(h.lines("nightly.runs").len(), 1);
    let v: serde_json::Value =
        serde_json::from_str(&h.ok(&["timers", "--json"])).expect("timers --json is JSON");
    assert!(v[0]["next_run"].is_string(), "{v}");
}

#[test]
fn verify_prints_the_next_three_elapses() {
    // verify shows when a calendar timer fires next, three times, in its zone.
    let h = Home::new("verify_prints_the_next_three_elapses");
    job(
        &h,
        "nightly",
        "OnCalendar = \"30 2 * * *\"\nTimeZone = \"UTC\"",
    );
    let out = h.cmd(&["verify"]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    let line = text
        .lines()
        .find(|l| l.contains("nightly: next elapses:"))
        .unwrap_or_else(|| panic!("no elapses in {text}"));
    assert_eq!(line.matches("T02:30:00+00:00").count(), 3, "{line}");
}

/// Unix seconds now.
fn unix_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[test]
fn a_persistent_timer_runs_an_elapse_missed_while_no_daemon_ran_once() {
    // Two elapses a minute (seconds S1, S2 = S1 + 7): the job runs at S1; the daemon is SIGKILLed before S2; once S2 has passed, a new daemon runs the Persistent job once at start (not twice), and the same job without Persistent not at all.
    let h = Home::new("a_persistent_timer_runs_a_missed_elapse");
    h.ok(&["list"]);
    // Margins for a loaded box: 4 s to load and enable, 7 s to stop the daemon.
    let s1 = unix_secs() + 4;
    let s2 = s1 + 7;
    let cal = format!(
        "OnCalendar = \"{},{} * * * * *\"\nTimeZone = \"UTC\"",
        s1 % 60,
        s2 % 60
    );
    job(&h, "kept", &format!("{cal}\nPersistent = true"));
    job(&h, "plain", &cal);
    h.ok(&["reload"]);
    h.ok(&["enable", "kept", "plain"]);
    h.wait_until("the first elapse to run both", FIRES, || {
        h.lines("kept.runs").len() == 1 && h.lines("plain.runs").len() == 1
    });
    // `timers` answers only once the state file holds what it shows.
    h.wait_until("the run to be recorded", FIRES, || {
        let v: serde_json::Value =
            serde_json::from_str(&h.ok(&["timers", "--json"])).expect("timers --json is JSON");
        v.as_array()
            .into_iter()
            .flatten()
            .any(|r| r["name"] == "kept" && r["last_run"].is_string())
    });
    assert!(
        unix_secs() < s2,
        "the box was too slow: the second elapse came before the daemon could be stopped"
    );
    // Both jobs ended and the state file says so: a oneshot still listed
    // there when the daemon dies counts as one that died with no daemon
    // (and runs again per its policy), which is not what this test is about.
    h.wait_until("both jobs to end, in the state file", FIRES, || {
        let state = std::fs::read_to_string(h.home.join("state")).unwrap_or_default();
        let v: serde_json::Value = serde_json::from_str(&state).unwrap_or_default();
        v["timers"]["kept"].is_object()
            && v["services"].as_array().is_some_and(|s| {
                s.iter()
                    .all(|e| e["name"] != "kept" && e["name"] != "plain")
            })
    });
    let daemon = h.daemon_pid().expect("daemon pid");
    crate::util::kill9(daemon);
    h.wait_until("the daemon to die", FIRES, || !crate::util::alive(daemon));
    h.wait_until("the second elapse to pass with no daemon", FIRES, || {
        unix_secs() > s2
    });
    assert_eq!(h.lines("kept.runs").len(), 1);
    h.ok(&["list"]);
    h.wait_until("the missed elapse to run once", FIRES, || {
        h.lines("kept.runs").len() == 2
    });
    // The next elapse is S1 of the next minute, about 50 s away.
    h.stays(
        "no second catch-up, no run of the plain one",
        Duration::from_millis(2500),
        || h.lines("kept.runs").len() == 2 && h.lines("plain.runs").len() == 1,
    );
}

#[test]
fn verify_prints_the_next_three_elapses_of_a_list() {
    // OnCalendar as a list: verify merges the elapses of every expression, earliest first.
    let h = Home::new("verify_prints_the_next_three_elapses_of_a_list");
    job(
        &h,
        "twice",
        "OnCalendar = [\"0 14 * * *\", \"30 2 * * *\"]\nTimeZone = \"UTC\"",
    );
    let out = h.cmd(&["verify"]);
    let text = format!("{}{}", crate::util::stdout(&out), crate::util::stderr(&out));
    assert!(out.status.success(), "{text}");
    let line = text
        .lines()
        .find(|l| l.contains("twice: next elapses:"))
        .unwrap_or_else(|| panic!("no elapses in {text}"));
    let times: Vec<&str> = line
        .split("next elapses:")
        .nth(1)
        .unwrap_or_default()
        .split(", ")
        .map(str::trim)
        .collect();
    assert_eq!(times.len(), 3, "{line}");
    let mut sorted = times.clone();
    sorted.sort();
    assert_eq!(times, sorted, "{line}");
    let at = |t: &str| times.iter().filter(|x| x.contains(t)).count();
    assert!(
        at("T02:30:00+00:00") >= 1 && at("T14:00:00+00:00") >= 1,
        "{line}"
    );
}

/// The clock-change timerfds of process `pid`: their fdinfo texts.
fn timerfds(pid: i32) -> Vec<String> {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Vec::new();
    };
    dir.flatten()
        .filter(|e| {
            std::fs::read_link(e.path()).is_ok_and(|l| l.to_string_lossy().contains("timerfd"))
        })
        .filter_map(|e| {
            std::fs::read_to_string(format!(
                "/proc/{pid}/fdinfo/{}",
                e.file_name().to_string_lossy()
            ))
            .ok()
        })
        .collect()
}

#[test]
fn the_daemon_watches_for_clock_sets_only_while_a_calendar_timer_is_armed() {
    // With an enabled calendar timer the daemon holds a CLOCK_REALTIME timerfd armed with TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET (fdinfo "settime flags: 03"), which the kernel makes readable when the clock is set; disabled, it is closed. (The clock itself is not set: that would disturb the shared box, and `unshare --time` cannot move CLOCK_REALTIME.)
    let h = Home::new("the_daemon_watches_for_clock_sets");
    job(&h, "nightly", "OnCalendar = \"@daily\"");
    h.ok(&["list"]);
    let daemon = h.daemon_pid().expect("daemon pid");
    assert!(timerfds(daemon).is_empty(), "{:?}", timerfds(daemon));
    h.ok(&["enable", "nightly"]);
    // Armed at the end of the pass that answered `enable`.
    h.wait_until("a timerfd in the daemon", FIRES, || {
        !timerfds(daemon).is_empty()
    });
    let fds = timerfds(daemon);
    assert_eq!(fds.len(), 1, "{fds:?}");
    assert!(
        fds[0].contains("clockid: 0") && fds[0].contains("settime flags: 03"),
        "{}",
        fds[0]
    );
    h.ok(&["disable", "nightly"]);
    h.wait_until("the timerfd to be closed", FIRES, || {
        timerfds(daemon).is_empty()
    });
}

#[test]
fn status_shows_the_schedule_next_and_last_run() {
    // `status` has a timer line (schedule with zone, next run and time left, last run and result) and JSON `timer` with the fields of `timers --json`; a disabled timer says it is not armed, a unit without [timer] has `timer: null`.
    let h = Home::new("status_shows_the_schedule_next_and_last_run");
    job(
        &h,
        "nightly",
        "OnCalendar = \"30 2 * * *\"\nTimeZone = \"UTC\"",
    );
    job(
        &h,
        "every",
        "OnCalendar = \"* * * * * *\"\nTimeZone = \"UTC\"",
    );
    h.unit("plain", "[service]\nExecStart = \"sleep 1\"\n");
    let text = h.ok(&["status", "nightly"]);
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with("timer:"))
        .unwrap_or_else(|| panic!("no timer line in {text}"));
    assert!(
        line.contains("30 2 * * * (UTC)") && line.contains("not armed"),
        "{line}"
    );
    assert_eq!(h.status_json("nightly")["timer"]["enabled"], false);
    assert!(h.status_json("plain")["timer"].is_null());
    h.ok(&["enable", "nightly", "every"]);
    h.wait_until("nightly's next run in status", FIRES, || {
        h.status_json("nightly")["timer"]["next_run"].is_string()
    });
    let t = &h.status_json("nightly")["timer"];
    assert_eq!(t["schedule"], "30 2 * * * (UTC)", "{t}");
    assert!(
        t["next_run"]
            .as_str()
            .is_some_and(|n| n.ends_with("T02:30:00Z")),
        "{t}"
    );
    assert!(t["left_secs"].as_f64().is_some_and(|s| s > 0.0), "{t}");
    assert!(t["last_run"].is_null(), "{t}");
    let text = h.ok(&["status", "nightly"]);
    assert!(
        text.contains("next in ") && text.contains("T02:30:00Z") && text.contains("never run"),
        "{text}"
    );
    h.wait_until("every's first run in status", FIRES, || {
        let t = &h.status_json("every")["timer"];
        t["last_run"].is_string() && t["last_result"] == "success"
    });
    let text = h.ok(&["status", "every"]);
    assert!(text.contains("success"), "{text}");
    h.ok(&["disable", "every"]);
    h.wait_until("the job to be inactive", FIRES, || {
        h.state("every") != "starting"
    });
}

#[test]
fn a_list_of_calendars_fires_at_the_earliest_of_them() {
    // OnCalendar = ["@yearly", "* * * * * *"]: the daemon arms the earliest elapse of the list, so the job runs every second.
    let h = Home::new("a_list_of_calendars_fires_at_the_earliest");
    job(
        &h,
        "both",
        "OnCalendar = [\"@yearly\", \"* * * * * *\"]\nTimeZone = \"UTC\"",
    );
    h.ok(&["enable", "both"]);
    h.wait_until("two runs", FIRES, || h.lines("both.runs").len() >= 2);
    h.ok(&["disable", "both"]);
    h.wait_until("the job to be inactive", FIRES, || {
        h.state("both") != "starting"
    });
}

#[test]
fn a_new_daemon_of_the_same_boot_carries_timers_on() {
    // After `daemon-upgrade` and after a crash, OnBootSec does not fire again and OnUnitActiveSec keeps its next run; after `kill`, the next daemon starts afresh.
    let h = Home::new("timers_carry_on");
    // OnBootSec 3: a successor that counted from its own start would be 3 s off.
    job(&h, "boot", "OnBootSec = 3");
    job(&h, "every", "OnUnitActiveSec = 600");
    h.ok(&["enable", "boot", "every"]);
    h.wait_lines("boot.runs", 1);
    let row = |name: &str| -> serde_json::Value {
        let v: serde_json::Value =
            serde_json::from_str(&h.ok(&["timers", "--json"])).expect("timers --json is JSON");
        v.as_array()
            .and_then(|rows| rows.iter().find(|r| r["name"] == name).cloned())
            .unwrap_or_else(|| panic!("no timer row of {name}: {v}"))
    };
    let next = row("every")["next_run"].clone();
    let last_boot = row("boot")["last_run"].clone();
    assert!(
        next.is_string() && last_boot.is_string(),
        "{next} {last_boot}"
    );
    for how in ["upgrade", "crash"] {
        h.replace_daemon(how);
        let now_next = row("every")["next_run"].clone();
        let off = secs_of(&now_next) - secs_of(&next);
        assert!(off.abs() <= 1, "after the {how}: {now_next}, was {next}");
        assert_eq!(row("boot")["last_run"], last_boot, "after the {how}");
        assert!(row("boot")["next_run"].is_null(), "after the {how}");
        h.stays(
            "OnBootSec not firing again",
            Duration::from_millis(2000),
            || h.lines("boot.runs").len() == 1,
        );
    }
    // `kill` ends the line: the next daemon's OnBootSec counts from its own start.
    h.ok(&["kill"]);
    h.ok(&["list"]);
    h.wait_lines("boot.runs", 2);
}

/// Unix seconds of an RFC 3339 UTC time (`2026-11-30T03:44:13Z`).
fn secs_of(v: &serde_json::Value) -> i64 {
    v.as_str()
        .and_then(diakonos::utc::parse_seconds)
        .unwrap_or_else(|| panic!("not a time: {v}"))
}
