//! Everything the client prints: human tables and `--json` documents. The
//! only user of owo-colors; colour only on a terminal, never with NO_COLOR
//! or `--no-color`.

use owo_colors::OwoColorize;
use serde_json::json;

use crate::error::Error;
use crate::protocol::{
    DaemonInfo, JobResult, LastExit, ListRow, ReloadReport, StateName, UnitInfo, UnitStatus,
};

pub struct Output {
    color: bool,
    err_color: bool,
    json: bool,
}

/// Whether colour is allowed at all: no flag, no NO_COLOR, and stdout a
/// terminal (SPEC §5: also for the error lines on stderr, so `cmd >file`
/// in a terminal prints them plain).
fn color_allowed(no_color: bool) -> bool {
    !no_color
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        && crate::cli::output::is_terminal(1)
}

impl Output {
    pub fn new(no_color: bool, json: bool) -> Output {
        let allowed = color_allowed(no_color);
        Output {
            color: allowed,
            err_color: allowed && crate::cli::output::is_terminal(2),
            json,
        }
    }

    fn state(&self, s: StateName) -> String {
        state_text(s, self.color)
    }

    fn bold(&self, text: &str) -> String {
        if self.color {
            text.bold().to_string()
        } else {
            text.to_owned()
        }
    }

    fn dim(&self, text: &str) -> String {
        if self.color {
            text.dimmed().to_string()
        } else {
            text.to_owned()
        }
    }

    pub fn list(&self, units: &[UnitInfo]) {
        if self.json {
            print_json(&json!(units.iter().map(unit_json).collect::<Vec<_>>()));
            return;
        }
        let rows: Vec<ListRow> = units.iter().map(ListRow::from).collect();
        self.list_rows(&rows);
    }

    /// Plain `list` from the rows the daemon sent for it.
    pub fn list_rows(&self, rows: &[ListRow]) {
        if rows.is_empty() {
            self.note("no units (unit files are NAME.service in the service directory)");
            return;
        }
        crate::cli::output::out(&self.list_text(rows));
    }

    /// `timers`: one row per `[timer]` unit (JSON: SPEC §15's fields).
    pub fn timers(&self, rows: &[crate::protocol::TimerRow]) {
        if self.json {
            print_json(&json!(rows.iter().map(timer_json).collect::<Vec<_>>()));
            return;
        }
        if rows.is_empty() {
            self.note("no [timer] units");
            return;
        }
        let mut cells =
            vec![["NAME", "SCHEDULE", "LAST RUN", "RESULT", "NEXT RUN", "LEFT"].map(String::from)];
        for r in rows {
            let dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".to_string());
            let next = if r.armed {
                dash(&r.next_run)
            } else {
                "- (disabled)".to_string()
            };
            let left = r
                .left_secs
                .map(|s| seconds_ms((s * 1000.0) as u64))
                .unwrap_or_else(|| "-".to_string());
            cells.push([
                r.name.escape_default().to_string(),
                r.schedule.clone(),
                dash(&r.last_run),
                dash(&r.last_result),
                next,
                left,
            ]);
        }
        let out = aligned(&cells);
        crate::cli::output::out(&out);
    }

    /// The `list` table, one row per unit under a header.
    fn list_text(&self, units: &[ListRow]) -> String {
        // A unit file's name may hold a control character (such a unit is
        // invalid): escaped, so each unit stays one row.
        let names: Vec<std::borrow::Cow<'_, str>> = units
            .iter()
            .map(|u| match u.name.chars().any(char::is_control) {
                true => u.name.escape_default().to_string().into(),
                false => u.name.as_str().into(),
            })
            .collect();
        let name_w = names
            .iter()
            .map(|n| n.chars().count())
            .max()
            .unwrap_or(4)
            .max(4);
        // The sub-state and health show beside the state, `running
        // (reloading, healthy)`; the column widens only when some unit has one.
        let health = |u: &ListRow| annotation(u).map_or(0, |h| h.len() + 3);
        let state_w = units
            .iter()
            .map(|u| u.state.as_str().len() + health(u))
            .max()
            .unwrap_or(10)
            .max(10);
        // One buffer, written in place: a thousand rows used to cost seven
        // allocations and a `format!` each, most of the client's CPU time.
        let mut out = String::with_capacity((name_w + 64) * (units.len() + 1));
        out.push_str(&self.bold(&format!(
            "{:<name_w$}  {:<state_w$}  {:>7}  {:>8}  {:>8}  {}",
            "NAME", "STATE", "PID", "UPTIME", "RESTARTS", "DESCRIPTION"
        )));
        out.push('\n');
        // Padding and numbers by hand: core::fmt's padding and integer
        // paths were most of the client's CPU for a thousand rows.
        let mut uptime = String::new();
        let mut digits = [0u8; 20];
        for (u, name) in units.iter().zip(&names) {
            out.push_str(name);
            pad(&mut out, name_w.saturating_sub(name.chars().count()) + 2);
            if self.color {
                out.push_str(&self.state(u.state));
            } else {
                out.push_str(u.state.as_str());
            }
            if let Some(h) = annotation(u) {
                out.push_str(" (");
                out.push_str(&h);
                out.push(')');
            }
            // Pad by the visible width: colour codes are invisible.
            pad(
                &mut out,
                state_w.saturating_sub(u.state.as_str().len() + health(u)) + 2,
            );
            let pid = match u.pid {
                Some(pid) => decimal(&mut digits, u64::from(pid)),
                None => "-",
            };
            pad(&mut out, 7usize.saturating_sub(pid.len()));
            out.push_str(pid);
            uptime.clear();
            match u.uptime_secs {
                Some(secs) => write_duration(&mut uptime, secs),
                None => uptime.push('-'),
            }
            pad(&mut out, 2 + 8usize.saturating_sub(uptime.len()));
            out.push_str(&uptime);
            let restarts = decimal(&mut digits, u64::from(u.restarts));
            pad(&mut out, 2 + 8usize.saturating_sub(restarts.len()));
            out.push_str(restarts);
            out.push_str("  ");
            match (&u.reason, u.state) {
                (Some(r), StateName::Failed | StateName::Invalid) => {
                    out.push_str(&self.dim(&format!("({})", short_reason(r))))
                }
                // A file written since the load: no unit yet.
                (Some(r), _) if r.starts_with(crate::protocol::NOT_LOADED) => {
                    out.push_str(&self.dim("(not loaded yet: `diakonos reload` loads it)"))
                }
                // Running on a definition whose file was since broken.
                (Some(r), _) if r.starts_with(crate::protocol::NO_LONGER_LOADS) => out
                    .push_str(&self.dim("(its file no longer loads: `diakonos status` says why)")),
                _ if u.changed_on_disk => out.push_str(&self.dim(CHANGED_ON_DISK)),
                // A running service's own word (sd_notify STATUS=) over its description.
                _ => out.push_str(&visible(u.status_text.as_deref().unwrap_or(&u.description))),
            }
            out.push('\n');
        }
        out
    }

    /// One line of `events`, printed as it comes (a closed stdout, as in
    /// `| head`, ends the command: `cli/output.rs`).
    pub fn event(&self, e: &crate::protocol::EventRecord) {
        let line = if self.json {
            json!({
                "time": rfc3339_ms(e.time_ms),
                "unit": e.unit,
                "from": e.from,
                "to": e.to,
                "reason": e.reason,
                "pid": e.pid,
                "last_exit": last_exit_json(e.last_exit.as_ref()),
            })
            .to_string()
        } else {
            event_text(e)
        };
        crate::cli::output::out(&format!("{line}\n"));
    }

    pub fn status(&self, s: &UnitStatus) {
        if self.json {
            let mut v = unit_json(&s.info);
            if let Some(obj) = v.as_object_mut() {
                obj.insert("path".into(), json!(s.path));
                obj.insert("type".into(), json!(s.kind));
                obj.insert("enabled".into(), json!(s.enabled));
                obj.insert("requires".into(), json!(s.requires));
                obj.insert("wants".into(), json!(s.wants));
                obj.insert("after".into(), json!(s.after));
                obj.insert("required_by".into(), json!(s.required_by));
                obj.insert("log_path".into(), json!(s.log_path));
                obj.insert("conflicts".into(), json!(s.conflicts));
                obj.insert("limits".into(), json!(s.limits));
                obj.insert("probes".into(), json!(s.probes));
                obj.insert("watchdog_secs".into(), json!(s.watchdog_ms as f64 / 1000.0));
                obj.insert("timer".into(), json!(s.timer.as_ref().map(timer_json)));
            }
            print_json(&v);
            return;
        }
        let u = &s.info;
        let mut out = String::new();
        let title = if u.description.is_empty() {
            self.bold(&u.name)
        } else {
            format!("{} - {}", self.bold(&u.name), visible(&u.description))
        };
        out.push_str(&format!("{title}\n"));
        let mut state = self.state(u.state);
        match (u.pid, u.uptime_secs) {
            (Some(pid), Some(up)) => state += &format!(" (pid {pid}, up {})", human_duration(up)),
            (Some(pid), None) => state += &format!(" (pid {pid})"),
            (None, Some(up)) => state += &format!(" (up {})", human_duration(up)),
            (None, None) => {}
        }
        if let Some(addrs) = &u.listening {
            state += &format!(" (listening {addrs})");
        }
        if let Some((sub, secs)) = &u.substate {
            state += &format!(" ({sub} for {})", human_duration(*secs));
        }
        if let Some(next) = &u.next_attempt {
            state += &format!(
                " (next attempt in {}, attempt {})",
                seconds_ms(next.in_ms),
                next.attempt
            );
        }
        let mut row =
            |k: &str, v: String| out.push_str(&format!("  {:<12} {v}\n", format!("{k}:")));
        row("state", state);
        if let Some(reason) = &u.reason {
            let mut lines = reason.lines();
            let mut text = lines.next().unwrap_or_default().to_owned();
            for more in lines {
                text.push_str("\n               ");
                text.push_str(more);
            }
            row("reason", text);
        }
        if let Some(exit) = &u.last_exit {
            row("last exit", describe_exit(exit));
        }
        if u.changed_on_disk {
            row("note", CHANGED_ON_DISK.to_string());
        }
        row("restarts", u.restarts.to_string());
        row(
            "type",
            if s.kind.is_empty() {
                "-".into()
            } else {
                s.kind.clone()
            },
        );
        row(
            "enabled",
            if s.enabled { "yes".into() } else { "no".into() },
        );
        row("unit file", s.path.display().to_string());
        for (k, list) in [
            ("requires", &s.requires),
            ("wants", &s.wants),
            ("after", &s.after),
            ("required by", &s.required_by),
            ("conflicts", &s.conflicts),
        ] {
            if !list.is_empty() {
                row(k, list.join(", "));
            }
        }
        if !s.limits.is_empty() {
            row("limits", s.limits.join(", "));
        }
        if let Some(text) = &u.status_text {
            row("status", visible(text).into_owned());
        }
        if s.watchdog_ms > 0 {
            row("watchdog", seconds_ms(s.watchdog_ms));
        }
        if let Some(t) = &s.timer {
            row("timer", timer_text(t));
        }
        if let Some(h) = &u.health {
            row(
                "health",
                format!("{h} ({} failed in a row)", u.health_failures),
            );
        }
        if u.hooks_skipped > 0 {
            row(
                "hooks",
                format!(
                    "{} trigger(s) skipped (HookRateLimitSec, or the hook still ran)",
                    u.hooks_skipped
                ),
            );
        }
        for p in &s.probes {
            row(
                "probe",
                format!(
                    "{} {:>5}ms {} {}",
                    clock_time(p.time),
                    p.duration_ms,
                    if p.ok { "ok  " } else { "FAIL" },
                    p.output
                ),
            );
        }
        // No file (never started, or `daemon --init` without --file-logs,
        // whose services write to the daemon's stdout): said, not implied.
        let mut log = s.log_path.display().to_string();
        if !s.log_path.exists() {
            log.push_str(" (no file)");
        }
        row("log", log);
        let tail = crate::cli::logs::tail_lines(&s.log_path, 10);
        if !tail.is_empty() {
            out.push_str(&self.dim("  -- last log lines --"));
            out.push('\n');
            for line in tail {
                out.push_str("  ");
                out.push_str(&line);
                out.push('\n');
            }
        }
        crate::cli::output::out(&out);
    }

    pub fn daemon(&self, d: &DaemonInfo) {
        let counts: serde_json::Map<String, serde_json::Value> = d
            .units
            .iter()
            .map(|(s, n)| (s.as_str().to_owned(), json!(n)))
            .collect();
        if self.json {
            print_json(&json!({
                "running": true,
                "pid": d.pid,
                "version": d.version,
                "uptime_secs": d.uptime_secs,
                "home": d.home,
                "service_dir": d.service_dir,
                "units": counts,
                "rss_bytes": d.rss_bytes,
                "protocol": d.protocol,
            }));
            return;
        }
        let units = if d.units.is_empty() {
            "none".to_owned()
        } else {
            d.units
                .iter()
                .map(|(s, n)| format!("{n} {}", s.as_str()))
                .collect::<Vec<_>>()
                .join(", ")
        };
        crate::cli::output::out(&format!(
            "{} (pid {}, version {}, protocol {}, up {})\n  home:        {}\n  service dir: {}\n  units:       {units}\n  memory:      {:.1} MiB RSS\n",
            self.state(StateName::Running),
            d.pid,
            d.version,
            d.protocol,
            human_duration(d.uptime_secs),
            d.home.display(),
            d.service_dir.display(),
            d.rss_bytes as f64 / (1024.0 * 1024.0),
        ));
    }

    /// Prints a job's results; any failed unit makes the command fail.
    pub fn job(&self, verb: &str, results: &[JobResult]) -> Result<(), Error> {
        self.job_to(verb, results, false)
    }

    /// As [`Output::job`]; the state lines go to stderr when `stderr` (where
    /// stdout is kept for one answer, as `run`'s unit file path).
    pub fn job_to(&self, verb: &str, results: &[JobResult], stderr: bool) -> Result<(), Error> {
        let mut failed: Vec<&JobResult> = Vec::new();
        let mut out = String::new();
        let color = if stderr { self.err_color } else { self.color };
        for r in results {
            if r.ok {
                let remark = r
                    .message
                    .as_deref()
                    .map(|m| format!(" ({m})"))
                    .unwrap_or_default();
                out.push_str(&format!(
                    "{}: {}{remark}\n",
                    r.name,
                    state_text(r.state, color)
                ));
            } else {
                failed.push(r);
            }
        }
        if stderr {
            crate::cli::output::err(&out);
        } else {
            crate::cli::output::out(&out);
        }
        match failed.as_slice() {
            [] => Ok(()),
            [one] => Err(Error::failed_hint(
                format!(
                    "cannot {verb} {}: {}",
                    one.name,
                    one.message.as_deref().unwrap_or("failed")
                ),
                format!(
                    "`diakonos status {}` and `diakonos logs {}` show more",
                    one.name, one.name
                ),
            )),
            many => Err(Error::failed_hint(
                format!(
                    "cannot {verb} {}",
                    many.iter()
                        .map(|r| format!(
                            "{} ({})",
                            r.name,
                            r.message.as_deref().unwrap_or("failed")
                        ))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                "`diakonos status NAME` and `diakonos logs NAME` show more",
            )),
        }
    }

    pub fn reload(&self, r: &ReloadReport) {
        let mut out = String::new();
        for (what, list) in [
            ("added", &r.added),
            ("removed", &r.removed),
            ("changed", &r.changed),
        ] {
            for name in list {
                out.push_str(&format!("{what}: {name}\n"));
            }
        }
        for (name, err) in &r.invalid {
            out.push_str(&format!("invalid: {name}: {}\n", short_reason(err)));
        }
        if out.is_empty() {
            out.push_str("nothing changed\n");
        }
        crate::cli::output::out(&out);
    }

    pub fn note(&self, text: &str) {
        crate::cli::output::out(&format!("{text}\n"));
    }

    pub fn warning(&self, text: &str) {
        let label = if self.err_color {
            "warning:".yellow().bold().to_string()
        } else {
            "warning:".to_owned()
        };
        errln!("diakonos: {label} {text}");
    }

    /// A multi-line error block (unit file errors) on stderr.
    pub fn error_block(&self, text: &str) {
        for line in text.lines() {
            if line.starts_with("  ") {
                errln!("{line}");
            } else {
                errln!("diakonos: {line}");
            }
        }
    }
}

/// Prints an error as `diakonos: ...` on stderr, red on a terminal.
/// A state, coloured when `color` (stdout's or stderr's, where it goes).
fn state_text(s: StateName, color: bool) -> String {
    let text = s.as_str();
    if !color {
        return text.to_owned();
    }
    match s {
        StateName::Running => text.green().bold().to_string(),
        StateName::Exited => text.green().to_string(),
        StateName::Failed | StateName::Invalid => text.red().bold().to_string(),
        StateName::Inactive => text.dimmed().to_string(),
        _ => text.yellow().to_string(),
    }
}

pub fn print_error(e: &Error, no_color: bool) {
    let text = e.to_string();
    if text.is_empty() {
        return;
    }
    let color = color_allowed(no_color) && crate::cli::output::is_terminal(2);
    let prefix = if color {
        "diakonos:".red().bold().to_string()
    } else {
        "diakonos:".to_owned()
    };
    errln!("{prefix} {text}");
}

/// A reason for one `list` row: its first line, the unit file named without
/// its directory, the list of valid keys dropped, clipped to a short line
/// (`status` shows the whole of it).
fn short_reason(reason: &str) -> String {
    const MAX_CHARS: usize = 80;
    let line = reason.lines().next().unwrap_or_default();
    let first = crate::unit::headline(reason);
    let first = first.split("; expected one of:").next().unwrap_or(first);
    // A near-miss key keeps its suggestion: the fix, in the row.
    let first = match line.split_once("; hint: did you mean ") {
        Some((_, key)) => format!("{first}; did you mean {key}"),
        None => first.to_owned(),
    };
    let first = first.as_str();
    // "/srv/units/web.service:3:1: unknown key" -> "web.service:3:1: ..."
    let first = match first.split_once(".service") {
        Some((path, rest)) if path.contains('/') && !path.contains(' ') => {
            let file = path.rsplit('/').next().unwrap_or(path);
            format!("{file}.service{rest}")
        }
        _ => first.to_owned(),
    };
    if first.chars().count() <= MAX_CHARS {
        return first;
    }
    let clipped: String = first.chars().take(MAX_CHARS - 1).collect();
    format!("{}…", clipped.trim_end())
}

/// What `list` shows in parentheses beside the state: the sub-state
/// (`reloading`) and the health, if any.
fn annotation(u: &ListRow) -> Option<String> {
    // An on-demand unit waiting for its first connection shows as
    // `inactive (listening ADDR)` (SPEC §15).
    let listening = u.listening.as_ref().map(|a| format!("listening {a}"));
    // `starting (starting)` says nothing: a start held for its first
    // passing probe says so.
    let health = match (u.state, u.health.as_deref()) {
        (StateName::Starting, Some("starting")) => Some("awaiting a passing probe"),
        (_, h) => h,
    };
    let parts: Vec<&str> = [listening.as_deref(), u.substate.as_deref(), health]
        .into_iter()
        .flatten()
        .collect();
    (!parts.is_empty()).then(|| parts.join(", "))
}

/// `last_exit` in JSON, in the SPEC's shapes only: `{"code": N}`,
/// `{"signal": "SIGKILL"}` or null. An adopted process's exit, whose status
/// no one can know, is null (`status` says "unknown (adopted process)").
fn last_exit_json(x: Option<&LastExit>) -> serde_json::Value {
    match x {
        Some(LastExit::Code(c)) => json!({"code": c}),
        Some(LastExit::Signal(s)) => json!({"signal": s}),
        Some(LastExit::Unknown(())) | None => serde_json::Value::Null,
    }
}

pub fn unit_json(u: &UnitInfo) -> serde_json::Value {
    json!({
        "name": u.name,
        "state": u.state,
        "pid": u.pid,
        "uptime_secs": u.uptime_secs,
        "restarts": u.restarts,
        "description": u.description,
        "last_exit": last_exit_json(u.last_exit.as_ref()),
        "reason": u.reason,
        "next_attempt": u.next_attempt.map(|n| n.attempt),
        "next_attempt_secs": u.next_attempt.map(|n| n.in_ms as f64 / 1000.0),
        "protected": u.protected,
        "listening": u.listening,
        "changed_on_disk": u.changed_on_disk,
        "health": u.health,
        "health_failures": u.health_failures,
        "status_text": u.status_text,
        "probes": u.probes,
        "hooks_skipped": u.hooks_skipped,
        "substate": u.substate.as_ref().map(|s| &s.0),
        "substate_secs": u.substate.as_ref().map(|s| s.1),
    })
}

const CHANGED_ON_DISK: &str = "changed on disk: run `diakonos reload`";

/// `2026-11-29T07:45:01.123Z`: unix milliseconds as RFC 3339, UTC.
fn rfc3339_ms(ms: u64) -> String {
    crate::utc::millis(i64::try_from(ms).unwrap_or(i64::MAX))
}

/// `14:03:07` (UTC) of a unix time.
fn clock_time(unix: u64) -> String {
    let s = unix % 86_400;
    format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

/// `1.5s`, `3s`, `2m 5s`: how long until a restart.
fn seconds_ms(ms: u64) -> String {
    let tenths = (ms + 50) / 100;
    if tenths >= 600 {
        human_duration(tenths.div_ceil(10))
    } else if tenths % 10 == 0 || tenths >= 100 {
        format!("{}s", (tenths + 5) / 10)
    } else {
        format!("{}.{}s", tenths / 10, tenths % 10)
    }
}

fn describe_exit(e: &LastExit) -> String {
    match e {
        LastExit::Code(c) => format!("code {c}"),
        LastExit::Signal(s) => format!("signal {s}"),
        LastExit::Unknown(()) => "unknown (adopted process)".into(),
    }
}

fn print_json(v: &serde_json::Value) {
    crate::cli::output::out(&format!("{v}\n"));
}

/// 59s, 5m 3s, 2h 5m, 3d 4h.
pub fn human_duration(secs: u64) -> String {
    let mut out = String::new();
    write_duration(&mut out, secs);
    out
}

/// [`human_duration`], appended to `out`.
fn write_duration(out: &mut String, secs: u64) {
    let (a, a_unit, b, b_unit) = match secs {
        0..=59 => (secs, 's', None, ' '),
        60..=3599 => (secs / 60, 'm', Some(secs % 60), 's'),
        3600..=86_399 => (secs / 3600, 'h', Some(secs % 3600 / 60), 'm'),
        _ => (secs / 86_400, 'd', Some(secs % 86_400 / 3600), 'h'),
    };
    let mut digits = [0u8; 20];
    out.push_str(decimal(&mut digits, a));
    out.push(a_unit);
    if let Some(b) = b {
        out.push(' ');
        out.push_str(decimal(&mut digits, b));
        out.push(b_unit);
    }
}

/// One `events` line for a human: time, unit, change, its pid, the exit
/// that caused it, the reason.
fn event_text(e: &crate::protocol::EventRecord) -> String {
    let secs = e.time_ms / 1000;
    let mut line = format!(
        "{}.{:03} {} {} -> {}",
        clock_time(secs),
        e.time_ms % 1000,
        e.unit,
        e.from.as_str(),
        e.to.as_str()
    );
    if let Some(pid) = e.pid {
        line.push_str(&format!(" pid {pid}"));
    }
    // The exit on the change it caused only (JSON has it on every
    // event, the unit's last exit so far).
    use crate::protocol::StateName as S;
    let had_process = matches!(e.from, S::Starting | S::Running | S::Stopping);
    let has_none = matches!(e.to, S::Restarting | S::Exited | S::Failed | S::Inactive);
    if let (Some(x), true) = (&e.last_exit, had_process && has_none) {
        line.push_str(&format!(" ({})", describe_exit(x)));
    }
    if let Some(r) = &e.reason {
        line.push_str(&format!(": {}", r.lines().next().unwrap_or_default()));
    }
    line
}

/// A unit's own text (Description, STATUS=) as one line that cannot move
/// the cursor or change the terminal: control characters escaped.
fn visible(text: &str) -> std::borrow::Cow<'_, str> {
    match text.chars().any(char::is_control) {
        true => crate::unit::esc_all(text).into(),
        false => text.into(),
    }
}

/// Rows of cells as columns two spaces apart, each as wide as its widest
/// cell (the last unpadded).
fn aligned<const N: usize>(rows: &[[String; N]]) -> String {
    let mut widths = [0; N];
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            out.push_str(cell);
            if i + 1 < N {
                pad(&mut out, widths[i] - cell.chars().count() + 2);
            }
        }
        out.push('\n');
    }
    out
}

/// `n` spaces.
fn pad(out: &mut String, n: usize) {
    const SPACES: &str = "                                ";
    let mut n = n;
    while n > 0 {
        let k = n.min(SPACES.len());
        out.push_str(&SPACES[..k]);
        n -= k;
    }
}

/// `n` in decimal, written into the end of `buf`.
fn decimal(buf: &mut [u8; 20], mut n: u64) -> &str {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    // Only ASCII digits were written.
    std::str::from_utf8(&buf[i..]).unwrap_or("?")
}

/// A `timers` row as JSON (SPEC §15's names; also `status --json`'s `timer`).
fn timer_json(r: &crate::protocol::TimerRow) -> serde_json::Value {
    json!({
        "name": r.name,
        "schedule": r.schedule,
        "last_run": r.last_run,
        "last_result": r.last_result,
        "next_run": r.next_run,
        "left_secs": r.left_secs,
        "enabled": r.armed,
    })
}

/// `status`'s timer line: `30 2 * * * (UTC), next in 3h 2min at ..., last ... success`.
fn timer_text(r: &crate::protocol::TimerRow) -> String {
    let next = match (&r.next_run, r.left_secs) {
        (Some(at), Some(left)) => format!("next in {} at {at}", seconds_ms((left * 1000.0) as u64)),
        _ if !r.armed => "not armed (enable it to arm it)".to_string(),
        _ => "no next run".to_string(),
    };
    let last = match (&r.last_run, &r.last_result) {
        (Some(at), Some(result)) => format!("last {at} {result}"),
        (Some(at), None) => format!("last {at}"),
        _ => "never run by the timer".to_string(),
    };
    format!("{}, {next}, {last}", r.schedule)
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod number_tests;
