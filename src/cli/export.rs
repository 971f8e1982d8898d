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
//! written as comments, as are `[health]`, `[socket]`, OnRestart and
//! WatchPaths, which are not exported (the comment says what systemd uses
//! instead); `[Install] WantedBy=multi-user.target` is added. A `[timer]`
//! becomes a `NAME.timer` of its own ([`systemd_timer`]), its cron
//! expressions written in systemd's calendar syntax.

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

/// A command line for systemd, each word as it is (`$` doubled: systemd
/// expands `$VAR` in command lines, and the words are already expanded).
pub(crate) fn command(argv: &[String]) -> String {
    argv.iter()
        .map(|w| quote(&w.replace('$', "$$")))
        .collect::<Vec<_>>()
        .join(" ")
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
            "[timer]: exported as NAME.timer (`systemctl enable --now NAME.timer`)",
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

/// The `NAME.timer` of a unit with `[timer]`: OnCalendar (each cron
/// expression in systemd's calendar syntax, two lines where cron's day of
/// month and day of week both restricted mean either), OnBootSec,
/// OnUnitActiveSec, RandomizedDelaySec, Persistent. An expression systemd
/// cannot say (croner's `L`, `W`, `#`) is a comment.
pub fn systemd_timer(unit: &Unit) -> Option<String> {
    let t = unit.timer.as_deref()?;
    let mut o = format!(
        "# {0}.timer: exported by diakonos from {0}.service\n[Unit]\nDescription=Timer of {0}\n\n[Timer]\n",
        unit.name
    );
    let zone = match t.time_zone.as_str() {
        "local" => String::new(),
        z => format!(" {z}"),
    };
    for cron in &t.calendar {
        match calendar(cron) {
            Some(specs) => {
                for spec in specs {
                    line(&mut o, "OnCalendar", &format!("{spec}{zone}"));
                }
            }
            None => {
                o += &format!(
                    "# diakonos: not exported: OnCalendar \"{cron}\" has no systemd form\n"
                )
            }
        }
    }
    for (key, value) in [
        ("OnBootSec", t.on_boot),
        ("OnUnitActiveSec", t.on_active),
        ("RandomizedDelaySec", t.randomized_delay),
    ] {
        if let Some(d) = value {
            line(&mut o, key, &secs(d));
        }
    }
    if t.persistent {
        line(&mut o, "Persistent", "true");
    }
    o += &format!(
        "Unit={}.service\n\n[Install]\nWantedBy=timers.target\n",
        unit.name
    );
    Some(o)
}

/// A cron expression (5 fields, 6 with seconds first, or a nickname) in
/// systemd's calendar syntax: `WEEKDAYS *-MONTH-DAY HOUR:MINUTE:SECOND`.
/// Two expressions when both the day of month and the day of week are
/// restricted (cron runs on either; one systemd expression wants both).
fn calendar(cron: &str) -> Option<Vec<String>> {
    let nick = match cron.trim() {
        "@yearly" | "@annually" => Some("0 0 1 1 *"),
        "@monthly" => Some("0 0 1 * *"),
        "@weekly" => Some("0 0 * * 0"),
        "@daily" | "@midnight" => Some("0 0 * * *"),
        "@hourly" => Some("0 * * * *"),
        _ => None,
    };
    let fields: Vec<&str> = nick.unwrap_or(cron).split_whitespace().collect();
    let (sec, rest) = match fields.len() {
        5 => ("0", &fields[..]),
        6 => (fields[0], &fields[1..]),
        _ => return None,
    };
    let [min, hour, dom, mon, dow] = rest else {
        return None;
    };
    let time = format!(
        "{}:{}:{}",
        field(hour, 0, &[])?,
        field(min, 0, &[])?,
        field(sec, 0, &[])?
    );
    const MONTHS: [&str; 12] = [
        "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
    ];
    let (dom, mon) = (field(dom, 1, &[])?, field(mon, 1, &MONTHS)?);
    let dow = weekdays(dow)?;
    let on = |days: Option<&str>, dom: &str| match days {
        Some(days) => format!("{days} *-{mon}-{dom} {time}"),
        None => format!("*-{mon}-{dom} {time}"),
    };
    Some(match dow {
        None => vec![on(None, &dom)],
        Some(days) if dom == "*" => vec![on(Some(&days), "*")],
        Some(days) => vec![on(None, &dom), on(Some(&days), "*")],
    })
}

/// A cron field (`*`, `5`, `1,15`, `1-5`, `*/15`, `1-30/2`, names) as a
/// systemd calendar component; `first` is where a bare `*/N` starts.
fn field(text: &str, first: u32, names: &[&str]) -> Option<String> {
    let mut out = Vec::new();
    for part in text.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => (r, Some(s.parse::<u32>().ok().filter(|&s| s > 0)?)),
            None => (part, None),
        };
        let number = |s: &str| -> Option<u32> {
            s.parse().ok().or_else(|| {
                let i = names.iter().position(|n| n.eq_ignore_ascii_case(s))?;
                Some(i as u32 + 1)
            })
        };
        let range = match (range, step) {
            ("*", Some(_)) => first.to_string(),
            ("*", None) => "*".to_string(),
            (r, _) => match r.split_once('-') {
                Some((a, b)) => format!("{}..{}", number(a)?, number(b)?),
                None => number(r)?.to_string(),
            },
        };
        out.push(match step {
            Some(s) => format!("{range}/{s}"),
            None => range,
        });
    }
    Some(out.join(","))
}

/// A cron day-of-week field as systemd weekdays (`Mon..Fri`, `Sun,Sat`);
/// None inside the Option: every day.
fn weekdays(text: &str) -> Option<Option<String>> {
    const DAYS: [&str; 8] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    if text == "*" || text == "?" {
        return Some(None);
    }
    let day = |s: &str| -> Option<usize> {
        s.parse::<usize>()
            .ok()
            .filter(|&d| d <= 7)
            .or_else(|| DAYS.iter().position(|d| d.eq_ignore_ascii_case(s)))
    };
    let mut days = Vec::new();
    for part in text.split(',') {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let (a, b) = (day(a)?, day(b)?);
        if a > b {
            return None;
        }
        for &name in &DAYS[a..=b] {
            if !days.contains(&name) {
                days.push(name);
            }
        }
    }
    Some(Some(days.join(",")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_quoted_for_systemd() {
        // Plain words stay; spaces, quotes and `%` are quoted so systemd reads the same argv back.
        let argv = ["sh", "-c", "echo \"50%\" $X", "a b"].map(String::from);
        assert_eq!(command(&argv), r#"sh -c "echo \"50%%\" $$X" "a b""#);
        let words = crate::cli::import::systemd::split_words(&command(&argv)).unwrap();
        // Specifiers and `$$` are resolved after splitting, by systemd.
        assert_eq!(words[2], "echo \"50%%\" $$X");
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
            "# diakonos: not exported: [timer]: exported as NAME.timer",
            "# diakonos: not exported: OnRestart",
        ] {
            assert!(out.contains(want), "{want:?} not in\n{out}");
        }
    }

    #[test]
    fn a_timer_is_exported_as_a_systemd_timer_whose_calendar_means_the_same() {
        // Each cron expression in systemd's calendar syntax, read back by the importer to the same cron.
        for (cron, systemd) in [
            ("30 2 * * *", vec!["*-*-* 2:30:0"]),
            ("*/15 * * * *", vec!["*-*-* *:0/15:0"]),
            ("0 9 * * 1-5", vec!["Mon,Tue,Wed,Thu,Fri *-*-* 9:0:0"]),
            ("0 0 1,15 * *", vec!["*-*-1,15 0:0:0"]),
            ("*/10 * * * * *", vec!["*-*-* *:*:0/10"]),
            ("@weekly", vec!["Sun *-*-* 0:0:0"]),
            ("0 0 1 JAN *", vec!["*-1-1 0:0:0"]),
            ("0 0 13 * 5", vec!["*-*-13 0:0:0", "Fri *-*-* 0:0:0"]),
        ] {
            assert_eq!(
                calendar(cron),
                Some(systemd.iter().map(|s| s.to_string()).collect()),
                "{cron}"
            );
        }
        assert_eq!(calendar("0 0 L * *"), None);
        let text = "[service]\nType = \"oneshot\"\nExecStart = \"/bin/true\"\n\
                    [timer]\nOnCalendar = [\"30 2 * * *\", \"0 0 L * *\"]\nTimeZone = \"UTC\"\n\
                    OnBootSec = 90\nPersistent = true\n";
        let dir = std::env::temp_dir();
        let unit = crate::unit::parse("job", &dir.join("job.service"), text, &dir)
            .unwrap_or_else(|e| panic!("{e:?}"));
        let timer = systemd_timer(&unit).expect("a timer");
        for want in [
            "OnCalendar=*-*-* 2:30:0 UTC\n",
            "# diakonos: not exported: OnCalendar \"0 0 L * *\"",
            "OnBootSec=90\n",
            "Persistent=true\n",
            "Unit=job.service\n",
            "WantedBy=timers.target\n",
        ] {
            assert!(timer.contains(want), "{want:?} not in\n{timer}");
        }
        // The importer reads it back to the same schedule.
        let back = crate::cli::import::timer::import(&timer, "job.timer", "t");
        assert_eq!(back.target, "job");
        let mut drafts = vec![crate::cli::import::systemd::import(
            "[Service]\nType=oneshot\nExecStart=/bin/true\n",
            "job.service",
            "s",
        )];
        crate::cli::import::timer::attach(&mut drafts, vec![back]).expect("attached");
        let toml = drafts[0].to_toml();
        assert!(toml.contains("TimeZone = \"UTC\""), "{toml}");
        assert!(toml.contains("OnCalendar = \"30 2 * * *\""), "{toml}");
    }
}
