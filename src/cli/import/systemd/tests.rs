use super::*;

#[test]
fn a_command_reading_environment_file_variables_runs_through_sh() {
    // Debian's cron: $EXTRA_OPTS comes from /etc/default/cron; the shell expands it at each start, and a unit without EnvironmentFile is left as written. A [Timer] in a .service file is named, with where it belongs.
    let text =
        "[Service]\nEnvironmentFile=-/etc/default/cron\nExecStart=/usr/sbin/cron -f $EXTRA_OPTS\n";
    let d = import(text, "cron.service", "/lib/systemd/system/cron.service");
    let dir = std::path::Path::new("/srv");
    let unit = crate::unit::parse("cron", &dir.join("cron.service"), &d.to_toml(), dir)
        .unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(
        unit.exec_start,
        ["sh", "-c", "exec /usr/sbin/cron -f $EXTRA_OPTS"]
    );
    let plain = import("[Service]\nExecStart=/bin/x $Y\n", "x.service", "x");
    assert_eq!(
        plain.get("ExecStart").and_then(|v| v.as_str()),
        Some("/bin/x $Y")
    );
    let stray = import(
        "[Service]\nExecStart=/bin/x\n[Timer]\nOnCalendar=daily\n",
        "x.service",
        "x",
    );
    assert!(
        stray
            .dropped
            .iter()
            .any(|x| x.why.contains("import systemd x.service x.timer")),
        "{:?}",
        stray.dropped
    );
}

#[test]
fn ini_joins_continuations_and_skips_comments() {
    // A trailing backslash joins lines (a comment line inside is skipped); later keys stay separate.
    let text = "[Service]\n# c\nExecStart=/bin/echo a \\\n# inside\n  b\n; c2\nUser=x\n";
    let (entries, bad) = parse_ini(text);
    assert!(bad.is_empty());
    assert_eq!(entries[0].value, "/bin/echo a  b");
    assert_eq!(entries[1].key, "User");
    assert_eq!(entries[1].section, "Service");
}

#[test]
fn environment_splits_quoted_assignments() {
    // Several assignments on one line, double and single quotes, escapes.
    assert_eq!(
        split_words(r#"A=1 "B=two words" 'C=x "y"' D=a\"b"#).unwrap(),
        ["A=1", "B=two words", "C=x \"y\"", "D=a\"b"]
    );
    assert!(split_words("\"open").is_err());
}

#[test]
fn specifiers_of_a_system_unit_resolve_and_others_are_reported() {
    // %n %N %p %i %t %% resolve; %h stays and is reported.
    let mut un = Vec::new();
    let out = resolve_specifiers(
        "%n %N %p %i %t/%p.pid %% %h",
        "web@a.service",
        "web",
        Some("a"),
        &mut un,
    );
    assert_eq!(out, "web@a.service web@a web a /run/web.pid % %h");
    assert_eq!(un, ["%h"]);
}

#[test]
fn the_instance_unescaped_and_a_template_without_one_reported() {
    // %I unescapes (`15-main` is `15/main`, `\x2d` a dash); a template imported as `X@.service` keeps %i and %I and says why.
    let mut un = Vec::new();
    let out = resolve_specifiers(
        "%i %I",
        "pg@15-main.service",
        "pg",
        Some("15-main"),
        &mut un,
    );
    assert_eq!(out, "15-main 15/main");
    let out = resolve_specifiers("%I", "pg@a\\x2db.service", "pg", Some("a\\x2db"), &mut un);
    assert_eq!(out, "a-b");
    assert!(un.is_empty(), "{un:?}");
    let d = import(
        "[Service]\nExecStart=/usr/bin/pg %i %I\n",
        "pg@.service",
        "x",
    );
    assert_eq!(
        d.get("ExecStart").and_then(|v| v.as_str()),
        Some("/usr/bin/pg %i %I")
    );
    let why = &d
        .dropped
        .iter()
        .find(|x| x.key == "specifiers")
        .expect("reported")
        .why;
    assert!(
        why.contains("is a template and names no instance: %i, %I"),
        "{why}"
    );
}

#[test]
fn a_stop_timeout_of_zero_is_imported_as_infinity() {
    // systemd's TimeoutStopSec=0 (or TimeoutSec=0) turns the timeout off;
    // diakonos's 0 would SIGKILL at once (Debian's redis-server.service).
    for line in ["TimeoutStopSec=0", "TimeoutSec=0"] {
        let text = format!("[Service]\nExecStart=/bin/x\n{line}\n");
        let d = import(&text, "x.service", "x.service");
        let toml = d.to_toml();
        assert!(toml.contains("TimeoutStopSec = \"infinity\"\n"), "{toml}");
        assert!(
            d.dropped.iter().any(|x| x.key == "TimeoutStopSec=0"),
            "{line}"
        );
    }
    let d = import(
        "[Service]\nExecStart=/bin/x\nTimeoutStopSec=5\n",
        "x.service",
        "x.service",
    );
    assert!(d.to_toml().contains("TimeoutStopSec = 5\n"));
}

#[test]
fn keys_map_and_drops_say_why() {
    // Time spans become seconds, Exec prefixes are stripped and reported, targets and Install dropped.
    let text = "[Unit]\nDescription=X\nAfter=network.target db.service\nRequires=db.service\n\
                    [Service]\nType=exec\nExecStart=-/bin/x --a\nRestartSec=1min 30s\nTimeoutSec=500ms\n\
                    Environment=\"A=1 2\" B=3\nEnvironment=C=4\nRemainAfterExit=yes\nKillMode=mixed\n\
                    LimitFOO=1\n[Install]\nWantedBy=multi-user.target\n";
    let d = import(text, "x.service", "x.service");
    let toml = d.to_toml();
    assert!(toml.contains("RestartSec = 90\n"), "{toml}");
    assert!(toml.contains("TimeoutStartSec = 0.5\n"), "{toml}");
    assert!(toml.contains("ExecStart = \"/bin/x --a\"\n"), "{toml}");
    assert!(
        toml.contains("Environment = [\"A=1 2\", \"B=3\", \"C=4\"]"),
        "{toml}"
    );
    assert!(toml.contains("After = [\"db\"]"), "{toml}");
    assert!(toml.contains("Restart = \"no\""), "{toml}");
    assert!(toml.contains("RemainAfterExit = true"), "{toml}");
    let dropped: Vec<&str> = d.dropped.iter().map(|x| x.key.as_str()).collect();
    for k in [
        "After=network.target",
        "Type=exec",
        "KillMode=mixed",
        "LimitFOO",
        "[Install]",
    ] {
        assert!(
            dropped.iter().any(|x| x.starts_with(k)),
            "{k} not in {dropped:?}"
        );
    }
}

#[test]
fn signed_values_hooks_conflicts_and_notify_access_map() {
    // Negative Nice/OOMScoreAdjust are kept; OnFailure and Conflicts
    // lose `.service` like Requires; NotifyAccess=all becomes group,
    // said so.
    let text = "[Unit]\nOnFailure=alert.service\nConflicts=old.service shutdown.target\n\
                    [Service]\nExecStart=/bin/x\nNice=-5\nOOMScoreAdjust=-100\nNotifyAccess=all\n";
    let d = import(text, "x.service", "x.service");
    let toml = d.to_toml();
    for line in [
        "OnFailure = [\"alert\"]",
        "Conflicts = [\"old\"]",
        "Nice = -5\n",
        "OOMScoreAdjust = -100\n",
        "NotifyAccess = \"group\"",
    ] {
        assert!(toml.contains(line), "{line} not in {toml}");
    }
    let dropped: Vec<&str> = d.dropped.iter().map(|x| x.key.as_str()).collect();
    assert_eq!(
        dropped,
        ["Conflicts=shutdown.target", "NotifyAccess=all"],
        "{dropped:?}"
    );
}
