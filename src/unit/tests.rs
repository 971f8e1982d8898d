//! Parsing one unit file: every key, default and error message.

use super::diag::line_col;
use super::values::parse_time_span;
use super::*;
use nix::sys::signal::Signal;
use std::time::Duration;

const DIR: &str = "/srv/units";

fn parse_ok(text: &str) -> Unit {
    match parse(
        "web",
        Path::new("/srv/units/web.service"),
        text,
        Path::new(DIR),
    ) {
        Ok(unit) => unit,
        Err(errors) => panic!("expected {text:?} to parse, got {errors:#?}"),
    }
}

fn parse_err(text: &str) -> Vec<UnitError> {
    match parse(
        "web",
        Path::new("/srv/units/web.service"),
        text,
        Path::new(DIR),
    ) {
        Ok(unit) => panic!("expected {text:?} to fail, got {unit:#?}"),
        Err(errors) => {
            assert!(!errors.is_empty(), "an Err must carry at least one error");
            for e in &errors {
                assert!(!e.message.contains('\n'), "message must be one line: {e:?}");
            }
            errors
        }
    }
}

/// The single error of a unit text that should have exactly one.
fn one_err(text: &str) -> UnitError {
    let mut errors = parse_err(text);
    assert_eq!(errors.len(), 1, "expected one error, got {errors:#?}");
    errors.remove(0)
}

fn service(body: &str) -> String {
    format!("[service]\nExecStart = \"worker\"\n{body}\n")
}

#[test]
fn defaults_applied_for_minimal_unit() {
    // A unit with only ExecStart gets every SPEC §3 default.
    let unit = parse_ok("[service]\nExecStart = \"worker --id 1\"\n");
    assert_eq!(
        unit,
        Unit {
            name: "web".into(),
            path: PathBuf::from("/srv/units/web.service"),
            description: String::new(),
            requires: Default::default(),
            wants: Default::default(),
            after: Default::default(),
            start_limit_burst: 5,
            start_limit_interval: Duration::from_secs(10),
            kind: ServiceType::Simple,
            exec_start: vec!["worker".into(), "--id".into(), "1".into()],
            exec_stop: None,
            restart: RestartPolicy::OnFailure,
            restart_sec: Duration::from_secs(1),
            restart_max_delay: Duration::from_secs(1),
            timeout_start: Duration::from_secs(30),
            timeout_stop: Duration::from_secs(10),
            kill_signal: Signal::SIGTERM,
            working_directory: PathBuf::from(DIR).into(),
            environment: Default::default(),
            user: None,
            remain_after_exit: false,
            pid_file: None,
            log_max_bytes: 10 * 1024 * 1024,
            log_max_files: 3,
            protected: false,
            conflicts: Default::default(),
            limits: Default::default(),
            socket: None,
            timer: None,
            triggers: Default::default(),
            health: None,
            watchdog: Duration::ZERO,
            watchdog_signal: Signal::SIGABRT,
            notify_access: None,
            source: Source::default(),
            digest: super::Digest::default(),
        }
    );
}

#[test]
fn every_key_is_parsed() {
    // Each key of SPEC §3 plus the two log keys lands in its field.
    let unit = parse_ok(
        r#"
[unit]
Description = "Worker service"
Requires = ["database"]
Wants = ["cache"]
After = ["database", "cache"]
StartLimitBurst = 0
StartLimitIntervalSec = 2.5

[service]
Type = "forking"
ExecStart = "worker --name 'a b' \"c d\""
ExecStop = "worker-ctl stop"
Restart = "always"
RestartSec = 0.5
RestartMaxDelaySec = 60
TimeoutStartSec = 0
TimeoutStopSec = 3
KillSignal = "INT"
WorkingDirectory = "app"
Environment = ["LOG_LEVEL=info", "EMPTY=", "EQ=a=b"]
User = "nobody"
RemainAfterExit = true
PIDFile = "/run/app.pid"
LogMaxBytes = 0
LogMaxFiles = 7
"#,
    );
    assert_eq!(unit.description, "Worker service");
    assert_eq!(*unit.requires, ["database"]);
    assert_eq!(*unit.wants, ["cache"]);
    assert_eq!(*unit.after, ["database", "cache"]);
    assert_eq!(unit.start_limit_burst, 0);
    assert_eq!(unit.start_limit_interval, Duration::from_millis(2500));
    assert_eq!(unit.kind, ServiceType::Forking);
    assert_eq!(unit.exec_start, ["worker", "--name", "a b", "c d"]);
    assert_eq!(
        unit.exec_stop.as_deref(),
        Some(&vec!["worker-ctl".into(), "stop".into()])
    );
    assert_eq!(unit.restart, RestartPolicy::Always);
    assert_eq!(unit.restart_sec, Duration::from_millis(500));
    assert_eq!(unit.restart_max_delay, Duration::from_secs(60));
    assert_eq!(unit.timeout_start, Duration::ZERO);
    assert_eq!(unit.timeout_stop, Duration::from_secs(3));
    assert_eq!(unit.kill_signal, Signal::SIGINT);
    assert_eq!(&*unit.working_directory, Path::new("/srv/units/app"));
    assert_eq!(
        *unit.environment,
        [
            ("LOG_LEVEL".to_string(), "info".to_string()),
            ("EMPTY".to_string(), String::new()),
            ("EQ".to_string(), "a=b".to_string()),
        ]
    );
    assert_eq!(unit.user.as_deref(), Some("nobody"));
    assert!(unit.remain_after_exit);
    assert_eq!(unit.pid_file, Some(PathBuf::from("/run/app.pid")));
    assert_eq!(unit.log_max_bytes, 0);
    assert_eq!(unit.log_max_files, 7);
}

#[test]
fn relative_paths_resolve_against_the_service_dir() {
    // WorkingDirectory and PIDFile given relative are joined onto the service dir.
    let unit = parse_ok(&service(
        "WorkingDirectory = \"../app\"\nPIDFile = \"run/app.pid\"",
    ));
    assert_eq!(&*unit.working_directory, Path::new("/srv/units/../app"));
    assert_eq!(unit.pid_file, Some(PathBuf::from("/srv/units/run/app.pid")));
    let unit = parse_ok(&service("WorkingDirectory = \"/opt\""));
    assert_eq!(&*unit.working_directory, Path::new("/opt"));
}

#[test]
fn syntax_error_has_position_and_one_line_message() {
    // A TOML syntax error keeps toml's message but not its caret drawing.
    let e = one_err("[service]\nExecStart = \"worker\n");
    assert_eq!(e.pos, Some((2, 20)));
    assert!(e.message.starts_with("invalid TOML: "), "{e:?}");
    let e = one_err("[service\nExecStart = \"x\"\n");
    assert_eq!(e.pos, Some((1, 9)));
}

#[test]
fn duplicate_key_is_named() {
    // A repeated key is a syntax error that names the key and its second place.
    let e = one_err("[service]\nExecStart = \"a\"\nExecStart = \"b\"\n");
    assert_eq!(e.pos, Some((3, 1)));
    assert_eq!(e.message, "invalid TOML: duplicate key `ExecStart`");
}

#[test]
fn unknown_key_suggests_near_miss() {
    // A typo'd key is placed at the key and the near one is suggested, on
    // one short line; a key with no near miss lists the valid keys.
    let e = one_err(&service("Restrat = \"always\""));
    assert_eq!(e.pos, Some((3, 1)));
    assert_eq!(e.message, "unknown key `Restrat` in [service]");
    assert_eq!(e.hint.as_deref(), Some("did you mean `Restart`?"));
    assert_eq!(
        e.to_string(),
        "/srv/units/web.service:3:1: unknown key `Restrat` in [service]; hint: did you mean `Restart`?"
    );
    let e = one_err(&service("Zzqx = 1"));
    assert!(
        e.message.starts_with(
            "unknown key `Zzqx` in [service]; expected one of: Type, ExecStart, ExecStop, Restart,"
        ),
        "{}",
        e.message
    );
    assert!(
        e.message.contains("LogMaxBytes, LogMaxFiles"),
        "{}",
        e.message
    );
    assert_eq!(e.hint, None);
}

#[test]
fn suggestions_cover_case_and_misplaced_keys_but_not_strangers() {
    // Case slips and keys of the other section get a hint; unrelated words get none.
    assert_eq!(
        one_err(&service("PidFile = \"x\"")).hint.as_deref(),
        Some("did you mean `PIDFile`?")
    );
    assert_eq!(
        one_err(&service("Requires = [\"db\"]")).hint.as_deref(),
        Some("`Requires` belongs in [unit]")
    );
    assert_eq!(one_err(&service("Frobnicate = 1")).hint, None);
    assert!(one_err(&service("ExecReload = \"x\""))
        .hint
        .is_some_and(|h| h.contains("systemd")));
    assert_eq!(
        suggest("Restartt", &["Restart", "RestartSec"]),
        Some("Restart")
    );
    assert_eq!(suggest("Exec", &["ExecStart", "ExecStop"]), None);
}

#[test]
fn unknown_sections_and_stray_keys_are_errors() {
    // Sections other than [unit]/[service], and keys above any header, are rejected with a place;
    // a misspelled [service] is not reported a second time as missing.
    let e = one_err("[Servise]\nExecStart = \"x\"\n");
    assert_eq!(e.pos, Some((1, 2)));
    assert!(e.message.starts_with("unknown section [Servise]"), "{e:?}");
    // Every section is named, not only the first two.
    assert!(
        e.message
            .ends_with("expected one of [unit], [service], [socket], [timer], [health]"),
        "{e:?}"
    );
    assert_eq!(e.hint.as_deref(), Some("did you mean [service]?"));

    let errors = parse_err("[service]\nExecStart = \"x\"\n[install]\nWantedBy = \"x\"\n");
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!(errors[0].pos, Some((3, 2)));
    assert!(errors[0]
        .hint
        .as_deref()
        .is_some_and(|h| h.contains("enable")));

    let errors = parse_err("ExecStart = \"x\"\n[service]\nExecStart = \"y\"\n");
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!(errors[0].pos, Some((1, 1)));
    assert_eq!(errors[0].hint.as_deref(), Some("put it under [service]"));

    let e = one_err("[[service]]\nExecStart = \"x\"\n");
    assert!(e.message.contains("[[service]]"), "{e:?}");
}

#[test]
fn wrong_types_are_placed_at_the_value() {
    // A value of the wrong TOML type names the key, what was expected and what was found.
    let e = one_err(&service("RestartSec = [5]"));
    assert_eq!(e.pos, Some((3, 14)));
    assert_eq!(
        e.message,
        "`RestartSec` in [service] must be a number of seconds (like 5 or 0.5) or a time span (like \"1min 30s\"), not an array"
    );
    let e = one_err("[unit]\nRequires = \"db\"\n[service]\nExecStart = \"x\"\n");
    assert_eq!(e.pos, Some((2, 12)));
    assert!(e.hint.is_some_and(|h| h.contains("[\"...\"]")));
    let e = one_err("[unit]\nAfter = [\"db\", 3]\n[service]\nExecStart = \"x\"\n");
    assert_eq!(e.pos, Some((2, 16)));
    assert!(e.message.contains("element 2 is an integer"), "{e:?}");
    let e = one_err("[service]\nExecStart = [\"worker\"]\n");
    assert_eq!(e.pos, Some((2, 13)));
    assert!(e.message.contains("not an array"), "{e:?}");
    let e = one_err(&service("RemainAfterExit = \"yes\""));
    assert!(e.message.contains("true or false"), "{e:?}");
}

#[test]
fn bad_enum_values_list_valid_ones() {
    // Type and Restart are strict lowercase strings; a bad one lists the valid ones.
    let e = one_err(&service("Type = \"Simple\""));
    assert_eq!(e.pos, Some((3, 8)));
    assert_eq!(
        e.message,
        "unknown Type `Simple`; expected one of: simple, oneshot, forking, notify"
    );
    assert_eq!(e.hint.as_deref(), Some("did you mean `simple`?"));
    let e = one_err(&service("Restart = \"sometimes\""));
    assert_eq!(
        e.message,
        "unknown Restart `sometimes`; expected one of: always, on-failure, no"
    );
    let e = one_err(&service("Restart = \"on_failure\""));
    assert_eq!(e.hint.as_deref(), Some("did you mean `on-failure`?"));
}

#[test]
fn duration_edge_cases() {
    // Durations take integers or fractions in 0..=1e9 seconds; everything else errors without panicking.
    let ok = |v: &str| parse_ok(&service(&format!("RestartSec = {v}"))).restart_sec;
    assert_eq!(ok("0"), Duration::ZERO);
    assert_eq!(ok("0.0"), Duration::ZERO);
    assert_eq!(ok("-0.0"), Duration::ZERO);
    assert_eq!(ok("0.25"), Duration::from_millis(250));
    assert_eq!(ok("1_000_000_000"), Duration::from_secs(1_000_000_000));
    assert_eq!(ok("1e9"), Duration::from_secs(1_000_000_000));
    for bad in [
        "-1",
        "-0.5",
        "1_000_000_001",
        "9223372036854775807",
        "-9223372036854775808",
        "1e300",
        "1e400",
        "inf",
        "+inf",
        "-inf",
        "nan",
        "-nan",
    ] {
        let e = one_err(&service(&format!("RestartSec = {bad}")));
        assert_eq!(e.pos, Some((3, 14)), "{bad}");
        assert!(
            e.message.starts_with("`RestartSec` is ")
                && e.message
                    .ends_with("expected a number of seconds from 0 to 1000000000"),
            "{bad}: {e:?}"
        );
    }
}

#[test]
fn integers_beyond_64_bits_error_without_panic() {
    // An integer literal too large for i64 is reported at its place.
    let e = one_err(&service("RestartSec = 99999999999999999999"));
    assert_eq!(e.pos, Some((3, 14)));
    assert_eq!(
        e.message,
        "`RestartSec` is 99999999999999999999; expected a number of seconds from 0 to 1000000000"
    );
    let e = one_err(&service("LogMaxBytes = 0xffffffffffffffff"));
    assert_eq!(e.pos, Some((3, 15)));
    assert!(e
        .message
        .starts_with("`LogMaxBytes` is 0xffffffffffffffff; expected a number of bytes"));
    let e = one_err(&service("KillSignal = 99999999999999999999"));
    assert!(e.message.contains("a number like 15"), "{e:?}");
    // Other errors in the same file are still reported alongside.
    let errors = parse_err(&service(
        "RestartSec = 1e400
Type = \"x\"",
    ));
    assert_eq!(errors.len(), 2, "{errors:#?}");
}

#[test]
fn restart_max_delay_defaults_to_and_never_undercuts_restart_sec() {
    // RestartMaxDelaySec defaults to RestartSec and is clamped up to it.
    let unit = parse_ok(&service("RestartSec = 5"));
    assert_eq!(unit.restart_max_delay, Duration::from_secs(5));
    let unit = parse_ok(&service("RestartSec = 5\nRestartMaxDelaySec = 2"));
    assert_eq!(unit.restart_max_delay, Duration::from_secs(5));
    let unit = parse_ok(&service("RestartSec = 5\nRestartMaxDelaySec = 20"));
    assert_eq!(unit.restart_max_delay, Duration::from_secs(20));
}

#[test]
fn counts_are_range_checked() {
    // StartLimitBurst, LogMaxBytes and LogMaxFiles reject negative and oversized values.
    let e = one_err("[unit]\nStartLimitBurst = -1\n[service]\nExecStart = \"x\"\n");
    assert_eq!(e.pos, Some((2, 19)));
    assert_eq!(
        e.message,
        "`StartLimitBurst` is -1; expected an integer from 0 to 4294967295"
    );
    let e = one_err("[unit]\nStartLimitBurst = 4294967296\n[service]\nExecStart = \"x\"\n");
    assert!(e.message.contains("4294967296"), "{e:?}");
    one_err(&service("LogMaxFiles = 1001"));
    assert_eq!(parse_ok(&service("LogMaxFiles = 0")).log_max_files, 0);
    let big = parse_ok(&service("LogMaxBytes = 9223372036854775807"));
    assert_eq!(big.log_max_bytes, i64::MAX as u64);
    // Sizes as a user writes them (like MemoryMax); "infinity" = never.
    assert_eq!(
        parse_ok(&service("LogMaxBytes = \"1M\"")).log_max_bytes,
        1 << 20
    );
    assert_eq!(
        parse_ok(&service("LogMaxBytes = \"512k\"")).log_max_bytes,
        512 << 10
    );
    assert_eq!(
        parse_ok(&service("LogMaxBytes = \"infinity\"")).log_max_bytes,
        0
    );
    let e = one_err(&service("LogMaxBytes = \"10MB\""));
    assert!(e.message.contains("`LogMaxBytes` is \"10MB\""), "{e:?}");
    let e = one_err(&service("LogMaxBytes = -1"));
    assert!(
        e.message
            .contains("`LogMaxBytes` is -1: expected 0 or more"),
        "{e:?}"
    );
}

#[test]
fn kill_signal_accepts_names_and_numbers() {
    // KillSignal takes "SIGTERM", "TERM" or a number; unknown ones error with a suggestion.
    let sig = |v: &str| parse_ok(&service(&format!("KillSignal = {v}"))).kill_signal;
    assert_eq!(sig("\"SIGKILL\""), Signal::SIGKILL);
    assert_eq!(sig("\"HUP\""), Signal::SIGHUP);
    assert_eq!(sig("\"sigint\""), Signal::SIGINT);
    assert_eq!(sig("9"), Signal::SIGKILL);
    assert_eq!(sig("\"15\""), Signal::SIGTERM);
    let e = one_err(&service("KillSignal = \"SIGTREM\""));
    assert_eq!(e.pos, Some((3, 14)));
    assert!(
        e.message
            .starts_with("unknown KillSignal \"SIGTREM\"; expected"),
        "{e:?}"
    );
    assert_eq!(e.hint.as_deref(), Some("did you mean `SIGTERM`?"));
    for bad in ["0", "999", "-9", "9999999999999", "\"\""] {
        one_err(&service(&format!("KillSignal = {bad}")));
    }
}

#[test]
fn exec_lines_are_split_without_a_shell() {
    // ExecStart/ExecStop split on quotes; empty lines and unbalanced quotes error at the value.
    let unit = parse_ok("[service]\nExecStart = '''sh -c \"echo hi; exit 1\"'''\n");
    assert_eq!(unit.exec_start, ["sh", "-c", "echo hi; exit 1"]);
    let e = one_err("[service]\nExecStart = \"  \"\n");
    assert_eq!(e.pos, Some((2, 13)));
    assert!(e.message.starts_with("`ExecStart` is empty"), "{e:?}");
    let e = one_err("[service]\nExecStart = \"worker 'oops\"\n");
    assert_eq!(e.pos, Some((2, 13)));
    assert!(e.message.contains("missing closing quote"), "{e:?}");
    let e = one_err(&service("ExecStop = \"\""));
    assert_eq!(e.pos, Some((3, 12)));
    let e = one_err("[service]\nExecStart = \"worker \\u0000\"\n");
    assert!(e.message.contains("NUL"), "{e:?}");
}

#[test]
fn environment_entries_must_be_key_value() {
    // Each Environment entry needs KEY=VALUE with a non-empty key and no NUL.
    let errors = parse_err(&service(
        "Environment = [\"OK=1\", \"NOEQUALS\", \"=v\", \"A=\\u0000\"]",
    ));
    let places: Vec<_> = errors.iter().map(|e| e.pos).collect();
    assert_eq!(places, [Some((3, 24)), Some((3, 36)), Some((3, 42))]);
    assert!(errors[0].message.contains("\"NOEQUALS\" is not KEY=VALUE"));
    assert!(errors[2].message.contains("NUL"));
}

#[test]
fn dependency_lists_are_checked_and_deduplicated() {
    // Requires/Wants/After drop duplicates in order and refuse empty, `/` and self names.
    let unit = parse_ok("[unit]\nAfter = [\"b\", \"a\", \"b\"]\n[service]\nExecStart = \"x\"\n");
    assert_eq!(*unit.after, ["b", "a"]);
    let errors =
        parse_err("[unit]\nRequires = [\"web\", \"\", \"a/b\"]\n[service]\nExecStart = \"x\"\n");
    assert_eq!(errors.len(), 3, "{errors:#?}");
    assert_eq!(errors[0].pos, Some((2, 13)));
    assert_eq!(errors[0].message, "unit `web` cannot depend on itself");
    assert_eq!(errors[1].pos, Some((2, 20)));
    assert_eq!(errors[2].pos, Some((2, 24)));
}

#[test]
fn empty_strings_for_user_and_paths_are_errors() {
    // User, WorkingDirectory and PIDFile must not be empty.
    let errors = parse_err(&service(
        "User = \"\"\nWorkingDirectory = \"\"\nPIDFile = \"\"",
    ));
    let lines: Vec<_> = errors.iter().map(|e| e.pos.map(|p| p.0)).collect();
    assert_eq!(lines, [Some(3), Some(4), Some(5)]);
}

#[test]
fn nul_bytes_in_text_are_refused() {
    // Raw NUL bytes get a clear error at their place instead of a TOML message.
    let e = one_err("[service]\nExecStart = \"a\0b\"\n");
    assert_eq!(e.pos, Some((2, 15)));
    assert!(e.message.contains("NUL byte"), "{e:?}");
}

#[test]
fn missing_service_or_exec_start() {
    // No [service] (or an empty file) and a [service] without ExecStart are both errors.
    for text in [
        "",
        "\n\n",
        "# just a comment\n",
        "[unit]\nDescription = \"x\"\n",
    ] {
        let e = one_err(text);
        assert_eq!(
            e.message, "missing [service] section with ExecStart",
            "{text:?}"
        );
        // file:1:1, as every malformed file names a place.
        assert_eq!(e.pos, Some((1, 1)));
    }
    let e = one_err("[unit]\n\n[service]\nType = \"oneshot\"\n");
    assert_eq!(e.pos, Some((3, 2)));
    assert!(
        e.message.starts_with("missing ExecStart in [service]"),
        "{e:?}"
    );
    // ExecStart misspelt: the one error is the typo, with its suggestion (what `list` shows).
    let e = one_err("[service]\nExecStar = \"sleep 10\"\n");
    assert_eq!(e.pos, Some((2, 1)));
    assert_eq!(e.hint.as_deref(), Some("did you mean `ExecStart`?"));
}

#[test]
fn multiple_errors_are_reported_together_in_file_order() {
    // Unknown keys, wrong types and bad values in one file all come back at once, sorted by line.
    let errors = parse_err(
        "[unit]\nRequires = [\"web\"]\nStartLimitBurst = -2\n[service]\nType = \"daemon\"\nExecStart = \"x\"\nRestrat = \"no\"\nRestartSec = -1\nTimeoutStopSec = \"10 parsecs\"\nKillSignal = \"NOPE\"\n",
    );
    let lines: Vec<_> = errors.iter().map(|e| e.pos.map(|p| p.0)).collect();
    assert_eq!(
        lines,
        [
            Some(2),
            Some(3),
            Some(5),
            Some(7),
            Some(8),
            Some(9),
            Some(10)
        ],
        "{errors:#?}"
    );
}

#[test]
fn user_text_in_messages_stays_on_one_line() {
    // Control characters from the file (quoted keys, values) are escaped in messages.
    let e = one_err(&service("\"Re\\nstart\" = 1"));
    assert!(e.message.starts_with("unknown key `Re\\nstart`"), "{e:?}");
    let e = one_err(&service("Type = \"a\\nb\""));
    assert!(e.message.starts_with("unknown Type `a\\nb`"), "{e:?}");
    let e = one_err(&service("Environment = [\"x\\ny\"]"));
    assert!(e.message.contains("x\\ny"), "{e:?}");
}

#[test]
fn no_mangled_input_panics() {
    // Every prefix and many byte-mangled variants of a full unit parse or fail cleanly.
    let full = "[unit]\nDescription = \"é w\"\nRequires = [\"db\"]\nStartLimitIntervalSec = 2.5\n[service]\nExecStart = \"w 'a b'\"\nRestartSec = 1e3\nKillSignal = 9\nEnvironment = [\"A=1\"]\n";
    let check = |text: &str| {
        if let Err(errors) = parse("web", Path::new("web.service"), text, Path::new(DIR)) {
            assert!(!errors.is_empty(), "{text:?}");
            for e in errors {
                assert!(
                    !e.message.contains('\n') && !e.message.is_empty(),
                    "{text:?}: {e:?}"
                );
            }
        }
    };
    for (i, _) in full.char_indices() {
        check(&full[..i]);
    }
    const POOL: &[u8] = b"[]\"'=.,-+0e9_\n#\\ {}infa";
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    for _ in 0..3000 {
        let mut bytes = full.as_bytes().to_vec();
        for _ in 0..3 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let at = (seed % bytes.len() as u64) as usize;
            bytes[at] = POOL[(seed >> 32) as usize % POOL.len()];
        }
        if let Ok(text) = std::str::from_utf8(&bytes) {
            check(text);
        }
    }
}

#[test]
fn line_col_counts_characters() {
    // Columns count characters, not bytes, and ignore a leading byte-order mark.
    assert_eq!(line_col("abc", 0), (1, 1));
    assert_eq!(line_col("a\nbc", 3), (2, 2));
    assert_eq!(line_col("é = 1", 3), (1, 3));
    assert_eq!(line_col("é", 1), (1, 1));
    assert_eq!(line_col("x", 99), (1, 2));
    assert_eq!(line_col("\u{feff}[service]", 3), (1, 1));
    let e = one_err("\u{feff}[service]\nExecStart = \"\"\n");
    assert_eq!(e.pos, Some((2, 13)));
}

mod spelling_and_table;

#[test]
fn units_that_can_never_work_as_written_are_load_errors() {
    // A notify unit whose NotifyAccess is "none" can never be ready; a FailureThreshold of 0 makes no sense: both named at their place. NotifyAccess = "none" on another Type is fine.
    let e = one_err(&service("Type = \"notify\"\nNotifyAccess = \"none\""));
    assert_eq!(e.pos, Some((4, 16)));
    assert!(e.message.contains("never count"), "{e:?}");
    parse_ok(&service("NotifyAccess = \"none\""));
    let e = one_err(&service("[health]\nExec = \"true\"\nFailureThreshold = 0"));
    assert_eq!(e.pos, Some((5, 20)));
    assert!(e.message.contains("expected 1 or more"), "{e:?}");
}

#[test]
fn health_timings_of_zero_and_statuses_http_does_not_define_are_errors() {
    // A probe every 0 s (or allowed 0 s) cannot work; HTTP defines codes 100 to 599.
    for key in ["IntervalSec", "TimeoutSec", "StartIntervalSec"] {
        let e = one_err(&format!(
            "[service]\nExecStart = \"worker\"\n[health]\nTcp = \"127.0.0.1:80\"\n{key} = 0\n"
        ));
        assert_eq!(e.pos, Some((5, key.len() + 4)), "{e:?}");
        assert_eq!(e.message, format!("`{key}` is 0; expected more than 0"));
    }
    let e = one_err("[service]\nExecStart = \"worker\"\n[health]\nHttp = \"http://127.0.0.1/\"\nExpectStatus = \"600-700\"\n");
    assert!(
        e.message.starts_with("`ExpectStatus` is \"600-700\""),
        "{e:?}"
    );
    parse_ok("[service]\nExecStart = \"worker\"\n[health]\nHttp = \"http://127.0.0.1/\"\nExpectStatus = \"500-599\"\nStartPeriodSec = 0\n");
}
