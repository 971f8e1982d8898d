//! The Prometheus text format of the units' state (SPEC §16): printed by
//! `metrics`, and kept current in `daemon --metrics-file PATH` for
//! node_exporter's textfile collector. PURE: units in, text out. Only what
//! changes with a state change is in it (no uptimes), so the file changes
//! only when a unit does.

use std::fmt::Write;

use crate::protocol::{LastExit, StateName, UnitInfo};

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

/// The metrics of `units` (in name order) for a daemon of `version`.
pub fn render(units: &[UnitInfo], version: &str) -> String {
    let mut units: Vec<&UnitInfo> = units.iter().collect();
    units.sort_by(|a, b| a.name.cmp(&b.name));
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
        "1 while the unit's health check passes, 0 while it fails (units with a health check).",
    );
    head(
        &mut out,
        "diakonos_timer_last_trigger_seconds",
        "gauge",
        "Unix time a timer last started its unit (units with a timer).",
    );
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
            pid: None,
            uptime_secs: None,
            restarts: 4,
            description: String::new(),
            last_exit: Some(LastExit::Code(3)),
            reason: None,
            next_attempt: None,
            protected: false,
            listening: None,
            changed_on_disk: false,
            health: None,
            health_failures: 0,
            status_text: None,
            probes: Vec::new(),
            hooks_skipped: 0,
            substate: None,
            pgids: Vec::new(),
        };
        let text = render(&[u], "1.2.3");
        assert!(text.contains("diakonos_unit_state{unit=\"we\\\"b\",state=\"failed\"} 1\n"));
        assert!(text.contains("diakonos_unit_state{unit=\"we\\\"b\",state=\"running\"} 0\n"));
        assert_eq!(text.matches("diakonos_unit_state{").count(), 9);
        assert!(text.contains("diakonos_service_restart_total{unit=\"we\\\"b\"} 4\n"));
        assert!(text.contains("diakonos_unit_last_exit_code{unit=\"we\\\"b\"} 3\n"));
        assert!(text.ends_with("diakonos_daemon_info{version=\"1.2.3\"} 1\n"));
        assert_eq!(text.matches("# TYPE ").count(), 6);
    }
}
