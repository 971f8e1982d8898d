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
