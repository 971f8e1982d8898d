//! `export systemd NAME...` (SPEC §16): a loaded [`Unit`] -> a systemd unit
//! file, for hosts that run systemd. Pure: [`systemd_unit`] is text out.
//!
//! Mapping: Description, Requires, Wants and After (diakonos's Requires and
//! Wants imply After, so they are added to After), Type, ExecStart,
//! ExecStop, Restart, RestartSec, TimeoutStartSec, TimeoutStopSec,
//! KillSignal, WorkingDirectory, Environment, User, RemainAfterExit,
//! PIDFile, StartLimitBurst and StartLimitIntervalSec carry over;
//! `KillMode=control-group` is written out (diakonos signals the group);
//! Conflicts, OnFailure, WatchdogSec, WatchdogSignal, NotifyAccess (group
//! as `all`), EnvironmentFile, Limit*, Nice, OOMScoreAdjust, UMask, Group,
//! SupplementaryGroups and MemoryMax carry over too.
//! RestartMaxDelaySec and the log rotation keys have no systemd key and are
//! written as comments, as are `[health]`, `[socket]`, `[timer]`, OnRestart
//! and WatchPaths, which are not exported (the comment says what systemd
//! uses instead); `[Install] WantedBy=multi-user.target` is added.

use crate::unit::{NotifyAccess, RestartPolicy, ServiceType, Unit};

/// `key=value`, a line.
fn line(o: &mut String, key: &str, value: &str) {
    o.push_str(key);
    o.push('=');
    o.push_str(value);
    o.push('\n');
}

/// A limit's value as systemd writes it (u64::MAX: unlimited).
fn limit(v: u64) -> String {
    if v == u64::MAX {
        "infinity".to_string()
    } else {
        v.to_string()
    }
}

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

pub(crate) fn command(argv: &[String]) -> String {
    argv.iter().map(|w| quote(w)).collect::<Vec<_>>().join(" ")
}

fn secs(d: std::time::Duration) -> String {
    // `"infinity"` reads as the longest span a key takes (about 31 years).
    if d.as_secs() >= crate::unit::MAX_SECS as u64 {
        return "infinity".to_owned();
    }
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
    for (key, list) in [
        ("Conflicts", &unit.conflicts[..]),
        ("OnFailure", &unit.triggers.on_failure[..]),
    ] {
        if !list.is_empty() {
            line(&mut o, key, &names(list));
        }
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
    if !unit.watchdog.is_zero() {
        line(&mut o, "WatchdogSec", &secs(unit.watchdog));
        line(&mut o, "WatchdogSignal", unit.watchdog_signal.as_str());
    }
    if unit.gets_notify_socket() {
        let access = match unit.notify_access() {
            NotifyAccess::Main => "main",
            NotifyAccess::Group => "all",
            NotifyAccess::None => "none",
        };
        line(&mut o, "NotifyAccess", access);
    }
    let l = &unit.limits;
    for (file, optional) in &l.environment_files {
        let dash = if *optional { "-" } else { "" };
        line(
            &mut o,
            "EnvironmentFile",
            &format!("{dash}{}", file.display()),
        );
    }
    for r in &l.rlimits {
        let value = format!("{}:{}", limit(r.soft), limit(r.hard));
        line(&mut o, r.name(), &value);
    }
    let numbers = [
        ("Nice", l.nice.map(|n| n.to_string())),
        ("OOMScoreAdjust", l.oom_score_adjust.map(|n| n.to_string())),
        ("UMask", l.umask.map(|m| format!("{m:04o}"))),
        ("Group", l.group.clone()),
        ("MemoryMax", l.memory_max.map(limit)),
    ];
    for (key, value) in numbers {
        if let Some(value) = value {
            line(&mut o, key, &value);
        }
    }
    if !l.supplementary_groups.is_empty() {
        line(
            &mut o,
            "SupplementaryGroups",
            &l.supplementary_groups.join(" "),
        );
    }
    let not_exported = [
        (
            unit.health.is_some(),
            "[health]: systemd has no health checks (a timer running the probe can restart it)",
        ),
        (
            unit.socket.is_some(),
            "[socket]: write a NAME.socket unit with the same address",
        ),
        (
            unit.timer.is_some(),
            "[timer]: write a NAME.timer unit with OnCalendar=",
        ),
        (
            !unit.triggers.on_restart.is_empty(),
            "OnRestart: systemd has no restart hook",
        ),
        (
            !unit.triggers.watch_paths.is_empty(),
            "WatchPaths: write a NAME.path unit",
        ),
    ];
    for (set, what) in not_exported {
        if set {
            o += "# diakonos: not exported: ";
            o += what;
            o.push('\n');
        }
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

    #[test]
    fn infinite_timeouts_are_exported_as_infinity() {
        // TimeoutStopSec = "infinity" (never SIGKILL) is systemd's infinity, not a billion seconds.
        let text = "[service]\nExecStart = \"/bin/sleep 5\"\nTimeoutStopSec = \"infinity\"\nTimeoutStartSec = 0\n";
        let dir = std::env::temp_dir();
        let unit = crate::unit::parse("t", &dir.join("t.service"), text, &dir)
            .unwrap_or_else(|e| panic!("{e:?}"));
        let out = systemd_unit(&unit);
        assert!(out.contains("TimeoutStopSec=infinity\n"), "{out}");
        assert!(out.contains("TimeoutStartSec=infinity\n"), "{out}");
    }

    #[test]
    fn limits_identity_hooks_and_watchdog_carry_over_and_the_rest_is_named() {
        // What systemd has is written as systemd's key; [timer], [health]
        // and OnRestart, which it has not, are named in a comment.
        let text = "[unit]\nOnFailure = [\"alert\"]\nOnRestart = [\"note\"]\nConflicts = [\"old\"]\n\
                    [service]\nType = \"notify\"\nExecStart = \"/bin/sleep 5\"\nWatchdogSec = 10\n\
                    NotifyAccess = \"main\"\nEnvironmentFile = [\"-/etc/default/x\"]\n\
                    LimitNOFILE = \"1000:2000\"\nNice = -5\nOOMScoreAdjust = -100\nUMask = \"0027\"\n\
                    MemoryMax = \"200M\"\nSupplementaryGroups = [\"adm\", \"audio\"]\n\
                    [timer]\nOnCalendar = \"0 * * * *\"\n\
                    [health]\nTcp = \"127.0.0.1:5432\"\n";
        let dir = std::env::temp_dir();
        let unit = crate::unit::parse("full", &dir.join("full.service"), text, &dir)
            .unwrap_or_else(|e| panic!("{e:?}"));
        let out = systemd_unit(&unit);
        for want in [
            "OnFailure=alert.service\n",
            "Conflicts=old.service\n",
            "WatchdogSec=10\n",
            "WatchdogSignal=SIGABRT\n",
            "NotifyAccess=main\n",
            "EnvironmentFile=-/etc/default/x\n",
            "LimitNOFILE=1000:2000\n",
            "Nice=-5\n",
            "OOMScoreAdjust=-100\n",
            "UMask=0027\n",
            "MemoryMax=209715200\n",
            "SupplementaryGroups=adm audio\n",
            "# diakonos: not exported: [health]",
            "# diakonos: not exported: [timer]",
            "# diakonos: not exported: OnRestart",
        ] {
            assert!(out.contains(want), "{want:?} not in\n{out}");
        }
    }
}
