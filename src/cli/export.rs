//! `export systemd NAME...` (SPEC §16): a loaded [`Unit`] -> a systemd unit
//! file, for hosts that run systemd. Pure: [`systemd_unit`] is text out.
//!
//! Mapping: Description, Requires, Wants and After (diakonos's Requires and
//! Wants imply After, so they are added to After), Type, ExecStart,
//! ExecStop, Restart, RestartSec, TimeoutStartSec, TimeoutStopSec,
//! KillSignal, WorkingDirectory, Environment, User, RemainAfterExit,
//! PIDFile, StartLimitBurst and StartLimitIntervalSec carry over;
//! `KillMode=control-group` is written out (diakonos signals the group);
//! RestartMaxDelaySec and the log rotation keys have no systemd key and are
//! written as comments; `[Install] WantedBy=multi-user.target` is added.

use crate::unit::{RestartPolicy, ServiceType, Unit};

/// systemd's quoting of one word (double quotes when needed; `%` doubled,
/// as systemd reads specifiers everywhere).
fn quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-=:,+@".contains(c));
    if plain {
        return word.to_string();
    }
    let mut out = String::from("\"");
    for c in word.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '%' => out.push_str("%%"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn command(argv: &[String]) -> String {
    argv.iter().map(|w| quote(w)).collect::<Vec<_>>().join(" ")
}

fn secs(d: std::time::Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        format!("{}", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

fn names(list: &[String]) -> String {
    list.iter()
        .map(|n| format!("{n}.service"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The systemd unit file for `unit`.
pub fn systemd_unit(unit: &Unit) -> String {
    let mut o = format!(
        "# {}.service: exported by diakonos {} from {}\n[Unit]\n",
        unit.name,
        env!("CARGO_PKG_VERSION"),
        unit.path.display()
    );
    if !unit.description.is_empty() {
        o += &format!(
            "Description={}\n",
            unit.description.replace('\n', " ").replace('%', "%%")
        );
    }
    if !unit.requires.is_empty() {
        o += &format!("Requires={}\n", names(&unit.requires));
    }
    if !unit.wants.is_empty() {
        o += &format!("Wants={}\n", names(&unit.wants));
    }
    // diakonos starts a unit after what it Requires/Wants; systemd needs After for that.
    let mut after: Vec<String> = Vec::new();
    for n in unit.requires.iter().chain(&unit.wants).chain(&unit.after) {
        if !after.contains(n) {
            after.push(n.clone());
        }
    }
    if !after.is_empty() {
        o += &format!("After={}\n", names(&after));
    }
    o += &format!(
        "StartLimitBurst={}\nStartLimitIntervalSec={}\n",
        unit.start_limit_burst,
        secs(unit.start_limit_interval)
    );
    o += "\n[Service]\n";
    let kind = match unit.kind {
        ServiceType::Simple => "simple",
        ServiceType::Oneshot => "oneshot",
        ServiceType::Forking => "forking",
        ServiceType::Notify => "notify",
    };
    o += &format!("Type={kind}\nExecStart={}\n", command(&unit.exec_start));
    if let Some(stop) = &unit.exec_stop {
        o += &format!("ExecStop={}\n", command(stop));
    }
    let restart = match unit.restart {
        RestartPolicy::Always => "always",
        RestartPolicy::OnFailure => "on-failure",
        RestartPolicy::No => "no",
    };
    o += &format!("Restart={restart}\nRestartSec={}\n", secs(unit.restart_sec));
    if unit.restart_max_delay > unit.restart_sec {
        // systemd >= 254 has RestartSteps/RestartMaxDelaySec; older ones ignore them.
        o += &format!(
            "# diakonos: exponential backoff up to RestartMaxDelaySec={}\nRestartSteps=5\nRestartMaxDelaySec={}\n",
            secs(unit.restart_max_delay),
            secs(unit.restart_max_delay)
        );
    }
    let start = if unit.timeout_start.is_zero() {
        "infinity".to_string()
    } else {
        secs(unit.timeout_start)
    };
    o += &format!(
        "TimeoutStartSec={start}\nTimeoutStopSec={}\nKillMode=control-group\nKillSignal={}\n",
        secs(unit.timeout_stop),
        unit.kill_signal.as_str()
    );
    o += &format!("WorkingDirectory={}\n", unit.working_directory.display());
    for (k, v) in &unit.environment {
        o += &format!("Environment={}\n", quote(&format!("{k}={v}")));
    }
    if let Some(user) = &unit.user {
        o += &format!("User={user}\n");
    }
    if unit.remain_after_exit {
        o += "RemainAfterExit=yes\n";
    }
    if let Some(pid) = &unit.pid_file {
        o += &format!("PIDFile={}\n", pid.display());
    }
    o += &format!(
        "# diakonos: output went to its log (LogMaxBytes={}, LogMaxFiles={}); systemd sends it to the journal\n",
        unit.log_max_bytes, unit.log_max_files
    );
    o += "\n[Install]\nWantedBy=multi-user.target\n";
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_quoted_for_systemd() {
        // Plain words stay; spaces, quotes and `%` are quoted so systemd reads the same argv back.
        let argv = ["sh", "-c", "echo \"50%\" $$X", "a b"].map(String::from);
        assert_eq!(command(&argv), r#"sh -c "echo \"50%%\" $$X" "a b""#);
        let words = crate::cli::import::systemd::split_words(&command(&argv)).unwrap();
        assert_eq!(words[2], "echo \"50%%\" $$X"); // specifiers are resolved after splitting
    }
}
