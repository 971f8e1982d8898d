//! What the client prints: aligned `list` columns, one-line reasons,
//! durations, and the JSON shapes of SPEC §5.

use super::*;

#[test]
fn list_rows_are_aligned_columns() {
    // Every column in its place, whether a value is there or not.
    let unit = |name: &str, state, pid, uptime_secs, reason: Option<&str>| UnitInfo {
        name: name.into(),
        state,
        pid,
        uptime_secs,
        restarts: 3,
        description: "the web".into(),
        reason: reason.map(str::to_string),
        ..UnitInfo::default()
    };
    let out = Output {
        color: false,
        err_color: false,
        json: false,
    };
    let units = [
        unit("web", StateName::Running, Some(4242), Some(3725), None),
        unit("db", StateName::Inactive, None, None, None),
        unit(
            "worker-1",
            StateName::Failed,
            None,
            None,
            Some("exited with 2"),
        ),
    ];
    let rows: Vec<ListRow> = units.iter().map(ListRow::from).collect();
    let text = out.list_text(&rows);
    assert_eq!(
        text,
        "NAME      STATE           PID    UPTIME  RESTARTS  DESCRIPTION\n\
         web       running        4242     1h 2m         3  the web\n\
         db        inactive          -         -         3  the web\n\
         worker-1  failed            -         -         3  (exited with 2)\n"
    );
}

#[test]
fn a_units_own_text_cannot_break_the_table_or_the_terminal() {
    // A Description with a newline and escape sequences stays on its row, escaped; a name that is not ASCII keeps the columns in place.
    let out = Output {
        color: false,
        err_color: false,
        json: false,
    };
    let units = [
        UnitInfo {
            name: "café".into(),
            state: StateName::Invalid,
            description: "multi\nline \u{1b}]0;title\u{7} \u{1b}[31mRED".into(),
            ..UnitInfo::default()
        },
        UnitInfo {
            name: "web".into(),
            state: StateName::Inactive,
            ..UnitInfo::default()
        },
    ];
    let rows: Vec<ListRow> = units.iter().map(ListRow::from).collect();
    let text = out.list_text(&rows);
    assert_eq!(text.lines().count(), 3, "{text}");
    assert!(
        !text.contains('\u{1b}') && !text.contains('\u{7}'),
        "{text:?}"
    );
    assert!(text.contains("multi\\nline \\u{1b}]0;title"), "{text}");
    let at = |line: &str| line.find("inactive").or_else(|| line.find("invalid"));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[1].chars().take_while(|c| *c != 'i').count(),
        lines[2].chars().take_while(|c| *c != 'i').count(),
        "{text}"
    );
    assert!(at(lines[1]).is_some() && at(lines[2]).is_some());
}

#[test]
fn list_reasons_are_one_short_line() {
    // An invalid unit's reason in `list` drops the key list and the directory, and is clipped.
    let r = "/srv/units/web.service:4:1: unknown key `Restrt` in [service]; expected one of: Type, ExecStart";
    assert_eq!(
        short_reason(r),
        "web.service:4:1: unknown key `Restrt` in [service]"
    );
    // A near miss keeps its suggestion.
    let r = "/srv/units/web.service:3:1: unknown key `Restrat` in [service]; hint: did you mean `Restart`?\n/srv/units/web.service:5:1: other";
    assert_eq!(
        short_reason(r),
        "web.service:3:1: unknown key `Restrat` in [service]; did you mean `Restart`?"
    );
    let long = format!("start failed: {}", "x".repeat(200));
    let short = short_reason(&long);
    assert_eq!(short.chars().count(), 80);
    assert!(short.ends_with('…'));
    assert_eq!(short_reason("dependency db failed"), "dependency db failed");
}

#[test]
fn event_times_are_rfc3339_utc_with_milliseconds() {
    // SPEC §11's `time` of an event: always three digits of milliseconds, `Z`.
    assert_eq!(rfc3339_ms(1_795_938_301_123), "2026-11-29T07:45:01.123Z");
    assert_eq!(rfc3339_ms(1_795_938_301_000), "2026-11-29T07:45:01.000Z");
}

#[test]
fn an_event_line_shows_the_exit_on_the_change_it_caused_only() {
    // running -> restarting carries the exit; the restart's own steps do not repeat it.
    use crate::protocol::{EventRecord, LastExit, StateName as S};
    let e = |from, to, pid| EventRecord {
        time_ms: 1_795_938_301_123,
        unit: "web".into(),
        from,
        to,
        reason: None,
        pid,
        last_exit: Some(LastExit::Code(3)),
    };
    let ended = event_text(&e(S::Running, S::Restarting, None));
    assert!(
        ended.ends_with("web running -> restarting (code 3)"),
        "{ended}"
    );
    let again = event_text(&e(S::Restarting, S::Starting, None));
    assert!(again.ends_with("web restarting -> starting"), "{again}");
    let up = event_text(&e(S::Starting, S::Running, Some(7)));
    assert!(up.ends_with("web starting -> running pid 7"), "{up}");
}

#[test]
fn durations_read_like_a_person_would_say_them() {
    // Uptimes are shown in the two largest units.
    assert_eq!(human_duration(5), "5s");
    assert_eq!(human_duration(303), "5m 3s");
    assert_eq!(human_duration(7500), "2h 5m");
    assert_eq!(human_duration(2 * 86_400 + 3 * 3600), "2d 3h");
}

#[test]
fn json_exit_shapes_follow_the_spec() {
    // last_exit is {"code": N} or {"signal": "SIGKILL"} or null.
    let mut u = UnitInfo {
        name: "a".into(),
        state: StateName::Failed,
        restarts: 2,
        last_exit: Some(LastExit::Code(3)),
        reason: Some("exited with code 3".into()),
        ..UnitInfo::default()
    };
    assert_eq!(unit_json(&u)["last_exit"], json!({"code": 3}));
    u.last_exit = Some(LastExit::Signal("SIGKILL".into()));
    assert_eq!(unit_json(&u)["last_exit"], json!({"signal": "SIGKILL"}));
    u.last_exit = None;
    assert!(unit_json(&u)["last_exit"].is_null());
    assert!(unit_json(&u)["pid"].is_null());
    assert_eq!(unit_json(&u)["state"], json!("failed"));
}

#[test]
fn a_start_held_for_its_first_probe_says_so() {
    // `starting (starting)` said nothing: a start waiting for its first passing probe reads `starting (awaiting a passing probe)`; a running unit keeps its verdict.
    let out = Output {
        color: false,
        err_color: false,
        json: false,
    };
    let unit = |name: &str, state, health: &str| UnitInfo {
        name: name.into(),
        state,
        health: Some(health.into()),
        ..UnitInfo::default()
    };
    let units = [
        unit("db", StateName::Starting, "starting"),
        unit("web", StateName::Running, "healthy"),
    ];
    let rows: Vec<ListRow> = units.iter().map(ListRow::from).collect();
    let text = out.list_text(&rows);
    assert!(
        text.contains("db    starting (awaiting a passing probe)"),
        "{text}"
    );
    assert!(text.contains("web   running (healthy)"), "{text}");
}
