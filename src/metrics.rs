//! The Prometheus text format of the units' state (SPEC §16): printed by
//! `metrics`, and kept current in `daemon --metrics-file PATH` for
//! node_exporter's textfile collector. PURE: units in, text out. Only what
//! changes with a state change is in it (no uptimes), so the file changes
//! only when a unit does.

use std::fmt::Write;

use crate::protocol::{LastExit, StateName, TimerRow, UnitInfo};

const STATES: [StateName; 9] = [
    StateName::Inactive,
    StateName::Waiting,
    StateName::Starting,
    StateName::Running,
    StateName::Stopping,
    StateName::Restarting,
    StateName::Exited,
    StateName::Failed,
    StateName::Invalid,
];

/// A label value with `\`, `"` and newlines escaped.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn head(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// When each timer last started its unit (Unix seconds), from the rows of
/// `timers`; timers that never fired are left out.
pub fn last_triggers(rows: &[TimerRow]) -> Vec<(String, i64)> {
    rows.iter()
        .filter_map(|r| {
            let t = crate::utc::parse_seconds(r.last_run.as_deref()?)?;
            Some((r.name.clone(), t))
        })
        .collect()
}

/// The metrics of `units` (in name order) and of the timers that fired
/// (`last_triggers`: unit, Unix seconds) for a daemon of `version`.
pub fn render(units: &[UnitInfo], last_triggers: &[(String, i64)], version: &str) -> String {
    let mut units: Vec<&UnitInfo> = units.iter().collect();
    crate::order::by_str(&mut units, |u| &u.name);
    let mut out = String::with_capacity(64 + units.len() * 700);
    head(
        &mut out,
        "diakonos_unit_state",
        "gauge",
        "1 for the state the unit is in, 0 for the others.",
    );
    for u in &units {
        let name = label(&u.name);
        for s in STATES {
            let _ = writeln!(
                out,
                "diakonos_unit_state{{unit=\"{name}\",state=\"{}\"}} {}",
                s.as_str(),
                u8::from(u.state == s)
            );
        }
    }
    head(
        &mut out,
        "diakonos_service_restart_total",
        "counter",
        "Automatic restarts since the unit was last started or restarted by hand.",
    );
    for u in &units {
        let _ = writeln!(
            out,
            "diakonos_service_restart_total{{unit=\"{}\"}} {}",
            label(&u.name),
            u.restarts
        );
    }
    head(
        &mut out,
        "diakonos_unit_last_exit_code",
        "gauge",
        "Exit code of the unit's last run (absent before its first exit, or when a signal ended it).",
    );
    for u in &units {
        if let Some(LastExit::Code(code)) = &u.last_exit {
            let _ = writeln!(
                out,
                "diakonos_unit_last_exit_code{{unit=\"{}\"}} {code}",
                label(&u.name)
            );
        }
    }
    head(
        &mut out,
        "diakonos_unit_health",
        "gauge",
        "1 while the unit's health check passes, 0 once it is unhealthy (running units with a health check that has a verdict).",
    );
    for u in &units {
        let value = match u.health.as_deref() {
            Some("healthy") => 1,
            Some("unhealthy") => 0,
            _ => continue,
        };
        let _ = writeln!(
            out,
            "diakonos_unit_health{{unit=\"{}\"}} {value}",
            label(&u.name)
        );
    }
    head(
        &mut out,
        "diakonos_timer_last_trigger_seconds",
        "gauge",
        "Unix time a timer last started its unit (units whose timer fired since the daemon started).",
    );
    let mut fired: Vec<&(String, i64)> = last_triggers.iter().collect();
    crate::order::by_str(&mut fired, |f| &f.0);
    for (name, at) in fired {
        let _ = writeln!(
            out,
            "diakonos_timer_last_trigger_seconds{{unit=\"{}\"}} {at}",
            label(name)
        );
    }
    head(
        &mut out,
        "diakonos_daemon_info",
        "gauge",
        "The running daemon (always 1), with its version.",
    );
    let _ = writeln!(
        out,
        "diakonos_daemon_info{{version=\"{}\"}} 1",
        label(version)
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_state_line_per_state_and_escaped_labels() {
        let u = UnitInfo {
            name: "we\"b".into(),
            state: StateName::Failed,
            restarts: 4,
            last_exit: Some(LastExit::Code(3)),
            ..UnitInfo::default()
        };
        let mut ok = u.clone();
        ok.name = "ok".into();
        ok.health = Some("healthy".into());
        let mut sick = u.clone();
        sick.name = "sick".into();
        sick.health = Some("unhealthy".into());
        let mut new = u.clone();
        new.name = "new".into();
        new.health = Some("starting".into());
        let both = render(&[ok, sick, new], &[("tick".into(), 1_700_000_000)], "1");
        assert!(
            both.contains("diakonos_unit_health{unit=\"ok\"} 1\n"),
            "{both}"
        );
        assert!(
            both.contains("diakonos_unit_health{unit=\"sick\"} 0\n"),
            "{both}"
        );
        assert!(
            !both.contains("diakonos_unit_health{unit=\"new\"}"),
            "{both}"
        );
        assert!(
            both.contains("diakonos_timer_last_trigger_seconds{unit=\"tick\"} 1700000000\n"),
            "{both}"
        );
        let rows = [TimerRow {
            name: "tick".into(),
            schedule: String::new(),
            last_run: Some("2023-11-14T22:13:20Z".into()),
            last_result: None,
            next_run: None,
            left_secs: None,
            armed: true,
        }];
        assert_eq!(last_triggers(&rows), [("tick".to_owned(), 1_700_000_000)]);
        let text = render(&[u], &[], "1.2.3");
        assert!(text.contains("diakonos_unit_state{unit=\"we\\\"b\",state=\"failed\"} 1\n"));
        assert!(text.contains("diakonos_unit_state{unit=\"we\\\"b\",state=\"running\"} 0\n"));
        assert_eq!(text.matches("diakonos_unit_state{").count(), 9);
        assert!(text.contains("diakonos_service_restart_total{unit=\"we\\\"b\"} 4\n"));
        assert!(text.contains("diakonos_unit_last_exit_code{unit=\"we\\\"b\"} 3\n"));
        assert!(text.ends_with("diakonos_daemon_info{version=\"1.2.3\"} 1\n"));
        assert_eq!(text.matches("# TYPE ").count(), 6);
    }
}
