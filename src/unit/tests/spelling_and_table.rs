//! Parsing one unit file: systemd's spellings (section names, time spans,
//! `$VAR` expansion), and the key table's defaults, places and sizes.

use super::*;

#[test]
fn systemd_section_names_are_accepted() {
    // [Unit] and [Service] load like [unit] and [service]; both spellings of one section is an error.
    let unit = parse_ok(
        "[Unit]\nDescription = \"d\"\n[Service]\nExecStart = \"worker\"\nRestart = \"no\"\n",
    );
    assert_eq!(unit.description, "d");
    assert_eq!(unit.restart, RestartPolicy::No);
    let e = one_err("[service]\nExecStart = \"a\"\n[Service]\nRestart = \"no\"\n");
    assert_eq!(e.pos, Some((3, 2)));
    assert!(e.message.contains("[Service] repeats [service]"), "{e:?}");
    let e = one_err("[Service]\nExecStart = \"a\"\nRestrat = \"no\"\n");
    assert!(
        e.message.starts_with("unknown key `Restrat` in [Service]"),
        "{e:?}"
    );
    assert_eq!(e.hint.as_deref(), Some("did you mean `Restart`?"));
}

#[test]
fn durations_take_systemd_time_spans() {
    // Every duration key takes "5s", "1min 30s", "500ms"; "infinity" only where it means something.
    let unit = parse_ok(&service(
        "RestartSec = \"500ms\"\nRestartMaxDelaySec = \"1min 30s\"\nTimeoutStartSec = \"infinity\"\nTimeoutStopSec = \"2h\"",
    ));
    assert_eq!(unit.restart_sec, Duration::from_millis(500));
    assert_eq!(unit.restart_max_delay, Duration::from_secs(90));
    assert_eq!(unit.timeout_start, Duration::ZERO);
    assert_eq!(unit.timeout_stop, Duration::from_secs(7200));
    let unit = parse_ok(&service(
        "TimeoutStopSec = \"infinity\"\nTimeoutStartSec = \"5\"",
    ));
    assert!(unit.timeout_stop >= Duration::from_secs(365 * 86_400));
    assert_eq!(unit.timeout_start, Duration::from_secs(5));
    let unit = parse_ok("[unit]\nStartLimitIntervalSec = \"1min\"\n[service]\nExecStart = \"x\"\n");
    assert_eq!(unit.start_limit_interval, Duration::from_secs(60));
    let e = one_err(&service("RestartSec = \"infinity\""));
    assert_eq!(e.pos, Some((3, 14)));
    assert!(e.message.contains("cannot be \"infinity\""), "{e:?}");
    let e = one_err(&service("RestartSec = \"5 secs\""));
    assert!(e.message.contains("unknown time unit `secs`"), "{e:?}");
    assert!(e.message.contains("did you mean `sec`"), "{e:?}");
    one_err(&service("RestartSec = \"-5s\""));
    one_err(&service("RestartSec = \"\""));
    one_err(&service("RestartSec = \"100y\""));
    one_err(&service("RestartSec = true"));
}

#[test]
fn time_spans_parse_like_systemd() {
    // parse_time_span adds its parts; a bare number is seconds; `m` is minutes, `M` months.
    for (text, secs) in [
        ("5", 5.0),
        ("5s", 5.0),
        ("1min 30s", 90.0),
        ("1min30s", 90.0),
        ("500ms", 0.5),
        ("1.5h", 5400.0),
        ("2 m", 120.0),
        ("1d 2h", 93_600.0),
        ("  10 sec ", 10.0),
    ] {
        let got = parse_time_span(text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
        assert!((got - secs).abs() < 1e-9, "{text:?}: {got}");
    }
    for bad in ["", "s", "5 parsecs", "-1s", "1..2s", ".5s", "5s x"] {
        assert!(parse_time_span(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn exec_lines_expand_variables_from_environment_like_systemd() {
    // ${X} stays one word, a whole-word $X splits on whitespace, $$ is `$`, $X inside a word stays.
    let unit = parse_ok(concat!(
        "[service]\nExecStart = '''server ${ARGS} $ARGS --port=${PORT} $$HOME x$PORT $(y) $1'''\n",
        "ExecStop = \"ctl $EMPTY stop\"\n",
        "Environment = [\"ARGS=-a  -b\", \"PORT=80\", \"PORT=81\", \"EMPTY=\"]\n"
    ));
    assert_eq!(
        unit.exec_start,
        [
            "server",
            "-a  -b",
            "-a",
            "-b",
            "--port=81",
            "$HOME",
            "x$PORT",
            "$(y)",
            "$1"
        ]
    );
    assert_eq!(
        unit.exec_stop.as_deref(),
        Some(&vec!["ctl".to_string(), "stop".to_string()])
    );
    assert!(
        unit.source.warnings.is_empty(),
        "{:?}",
        unit.source.warnings
    );
}

#[test]
fn an_unset_variable_expands_to_nothing_with_a_warning() {
    // $X and ${X} that Environment does not set are empty (the daemon's environment is not read) and warned about once.
    let unit = parse_ok(&service("ExecStop = \"ctl $HOME ${HOME}x ${NOPE}\""));
    assert_eq!(
        unit.exec_stop.as_deref(),
        Some(&vec!["ctl".to_string(), "x".to_string(), String::new()])
    );
    let w = &unit.source.warnings;
    assert_eq!(w.len(), 2, "{w:?}");
    assert_eq!(w[0].pos, Some((3, 12)));
    assert!(w[0].message.contains("$HOME"), "{w:?}");
    assert!(w[1].message.contains("$NOPE"), "{w:?}");
    let e = one_err("[service]\nExecStart = \"$BIN --x\"\n");
    assert!(e.message.contains("no program"), "{e:?}");
}

#[test]
fn source_places_do_not_make_units_differ() {
    // A moved line changes where values were written, not the unit.
    let a = parse_ok("[service]\nExecStart = \"worker\"\n");
    let b = parse_ok("# moved\n\n[service]\nExecStart = \"worker\"\n");
    assert_eq!(a.source.place("ExecStart"), Some((2, 13)));
    assert_eq!(b.source.place("ExecStart"), Some((4, 13)));
    assert_eq!(a, b);
}

#[test]
fn default_log_limits_are_the_tables() {
    // daemon.log's rotation is a unit's default one: LogMaxBytes 10 MiB, LogMaxFiles 3.
    let unit = parse_ok("[service]\nExecStart = \"worker\"\n");
    assert_eq!(
        default_log_limits(),
        (unit.log_max_bytes, unit.log_max_files)
    );
    assert_eq!(default_log_limits(), (10 << 20, 3));
}

#[test]
fn every_key_of_the_table_is_used_by_the_builder() {
    // Each row of KEYS set to a value other than its default changes the built unit, or is an error at that value: no key is declared and then ignored.
    use super::schema::{KeyDefault, Kind, Section, KEYS};
    let base_text = "[service]\nExecStart = \"worker\"\n";
    let base = parse_ok(base_text);
    let health_text = format!("{base_text}[health]\nExec = \"check\"\n");
    let health_base = parse_ok(&health_text);
    for key in KEYS {
        let value = match key.kind {
            Kind::Str if key.name == "UMask" => "\"0077\"",
            Kind::Str => "\"/other\"",
            Kind::StrList => "[\"other\"]",
            Kind::Secs(_) | Kind::Count(_) => "7",
            Kind::Bool if key.default == KeyDefault::Value("true") => "false",
            Kind::Bool => "true",
            Kind::Signal => "\"SIGUSR1\"",
            Kind::Limit => "\"7:8\"",
            Kind::Size => "\"7K\"",
            Kind::Int(..) => "7",
            Kind::StrOrList => "\"/other\"",
        };
        let (text, line) = match key.section {
            Section::Service if key.name == "ExecStart" => {
                (format!("[service]\nExecStart = {value}\n"), 2)
            }
            Section::Service => (format!("{base_text}{} = {value}\n", key.name), 3),
            Section::Unit => (format!("{base_text}[unit]\n{} = {value}\n", key.name), 4),
            Section::Socket => (format!("{base_text}[socket]\n{} = {value}\n", key.name), 4),
            Section::Timer => (format!("{base_text}[timer]\n{} = {value}\n", key.name), 4),
            Section::Health if matches!(key.name, "Http" | "Tcp" | "Exec") => {
                (format!("{base_text}[health]\n{} = {value}\n", key.name), 4)
            }
            Section::Health => (format!("{health_text}{} = {value}\n", key.name), 5),
        };
        let base = if key.section == Section::Health && line == 5 {
            &health_base
        } else {
            &base
        };
        match parse(
            "web",
            Path::new("/srv/units/web.service"),
            &text,
            Path::new(DIR),
        ) {
            Ok(unit) => assert_ne!(
                &unit, base,
                "{} = {value} built the same unit as no {}: the builder ignores it",
                key.name, key.name
            ),
            Err(errors) => assert!(
                errors
                    .iter()
                    .any(|e| e.pos.map(|(l, _)| l) == Some(line) && e.message.contains(key.name)),
                "{} = {value}: expected an error about it on line {line}, got {errors:#?}",
                key.name
            ),
        }
    }
}

#[test]
fn source_places_of_every_placed_key() {
    // Each key verify points at keeps its own place; a key not written, or
    // not one of them, has none.
    let a = parse_ok(
        "[service]\nType = \"simple\"\nExecStart = \"worker\"\nExecStop = \"halt\"\nUser = \"nobody\"\nWorkingDirectory = \"/tmp\"\nRestart = \"no\"\n",
    );
    assert_eq!(a.source.place("Type"), Some((2, 8)));
    assert_eq!(a.source.place("ExecStart"), Some((3, 13)));
    assert_eq!(a.source.place("ExecStop"), Some((4, 12)));
    assert_eq!(a.source.place("User"), Some((5, 8)));
    assert_eq!(a.source.place("WorkingDirectory"), Some((6, 20)));
    assert_eq!(a.source.place("Restart"), None);
    let b = parse_ok("[service]\nExecStart = \"worker\"\n");
    assert_eq!(b.source.place("User"), None);
}

#[test]
fn protected_and_conflicts_are_read() {
    // Protected is a boolean (default false); Conflicts a list of unit
    // names that may not name the unit itself.
    let unit = parse_ok(
        "[unit]\nProtected = true\nConflicts = [\"db\", \"db\"]\n[service]\nExecStart = \"x\"\n",
    );
    assert!(unit.protected);
    assert_eq!(*unit.conflicts, ["db"]);
    assert!(!parse_ok("[service]\nExecStart = \"x\"\n").protected);
    let errors = parse_err("[unit]\nConflicts = [\"web\"]\n[service]\nExecStart = \"x\"\n");
    assert_eq!(errors[0].message, "unit `web` cannot conflict with itself");
    let errors = parse_err("[unit]\nProtected = \"yes\"\n[service]\nExecStart = \"x\"\n");
    assert!(errors[0].message.contains("Protected"), "{errors:?}");
}

#[test]
fn socket_addresses_are_ip_literals_or_absolute_paths_with_defaults_from_the_table() {
    // [socket] reads IPv4/IPv6 literals and absolute paths in order (streams, then datagrams); defaults: the unit name, 0660, 128, eager.
    use super::{ListenAddr, SocketSpec};
    let u = parse_ok(
        "[service]\nExecStart = \"worker\"\n[socket]\nListenDatagram = [\"/run/d.sock\"]\nListenStream = [\"127.0.0.1:80\", \"[::1]:8080\"]\n",
    );
    let s: &SocketSpec = u.socket.as_deref().expect("a socket");
    let addrs: Vec<(String, bool)> = s
        .listen
        .iter()
        .map(|l| (l.addr.to_string(), l.datagram))
        .collect();
    assert_eq!(
        addrs,
        [
            ("127.0.0.1:80".to_string(), false),
            ("[::1]:8080".to_string(), false),
            ("/run/d.sock".to_string(), true)
        ]
    );
    assert!(matches!(s.listen[2].addr, ListenAddr::Unix(_)));
    assert_eq!(
        (s.name.as_str(), s.mode, s.backlog, s.on_demand),
        ("web", 0o660, 128, false)
    );
    let u = parse_ok(
        "[service]\nExecStart = \"worker\"\n[socket]\nListenStream = [\"/a\"]\nFileDescriptorName = \"http\"\nSocketMode = \"600\"\nBacklog = 7\nActivation = \"on-demand\"\n",
    );
    let s = u.socket.as_deref().expect("a socket");
    assert_eq!(
        (s.name.as_str(), s.mode, s.backlog, s.on_demand),
        ("http", 0o600, 7, true)
    );
    assert!(parse_ok("[service]\nExecStart = \"worker\"\n")
        .socket
        .is_none());
}

#[test]
fn socket_values_that_need_a_lookup_or_a_directory_are_errors_at_their_place() {
    // A host name, a bare port, a relative path, bad octal and a `:` in the name: each an error at its value, with what to write.
    let errors = parse_err(
        "[service]\nExecStart = \"worker\"\n[socket]\nListenStream = [\"localhost:80\", \"8080\", \"app.sock\"]\nSocketMode = \"0999\"\nFileDescriptorName = \"a:b\"\nActivation = \"lazy\"\n",
    );
    let at = |line: usize, text: &str| {
        errors
            .iter()
            .any(|e| e.pos.map(|(l, _)| l) == Some(line) && e.message.contains(text))
    };
    assert!(at(4, "is a host name (`localhost`)"), "{errors:#?}");
    assert!(at(4, "a bare port"), "{errors:#?}");
    assert!(at(4, "a relative path"), "{errors:#?}");
    assert!(at(5, "expected octal permissions"), "{errors:#?}");
    assert!(at(6, "without `:`"), "{errors:#?}");
    assert!(at(7, "unknown Activation `lazy`"), "{errors:#?}");
}

#[test]
fn health_probe_targets_are_checked_where_written() {
    // No name lookups, ports in range, one probe kind: each is an error at its value.
    let bad = |health: &str, want: &str, line: usize| {
        let text = format!("[service]\nExecStart = \"worker\"\n[health]\n{health}");
        let errors =
            parse("web", Path::new("/u/web.service"), &text, Path::new(DIR)).expect_err(health);
        assert!(
            errors
                .iter()
                .any(|e| e.pos.map(|(l, _)| l) == Some(line) && e.message.contains(want)),
            "{health}: expected `{want}` on line {line}, got {errors:#?}"
        );
    };
    bad("Tcp = \"db.example.com:5432\"\n", "host name", 4);
    bad("Tcp = \"127.0.0.1:70000\"\n", "port", 4);
    bad("Http = \"http://example.com/healthz\"\n", "host name", 4);
    bad("Http = \"https://127.0.0.1/\"\n", "TLS", 4);
    bad(
        "Tcp = \"127.0.0.1:80\"\nExec = \"true\"\n",
        "exactly one probe kind",
        5,
    );
    bad("IntervalSec = 3\n", "no probe", 3);
    bad(
        "Exec = \"true\"\nExpectStatus = \"2xx\"\n",
        "ExpectStatus",
        5,
    );
    let ok = parse_ok(
        "[service]\nExecStart = \"worker\"\n[health]\nHttp = \"http://localhost:8080/up\"\nExpectStatus = \"204\"\n",
    );
    let h = ok.health.expect("health");
    assert_eq!(
        h.probe,
        super::Probe::Http {
            addr: "127.0.0.1:8080".parse().expect("addr"),
            host: "localhost:8080".into(),
            path: "/up".into()
        }
    );
    assert_eq!(h.expect_status, (204, 204));
    assert_eq!(
        (h.interval.as_secs(), h.failure_threshold, h.readiness),
        (10, 3, true)
    );
}

#[test]
fn limits_take_no_box_unless_a_unit_sets_some() {
    let plain = parse_ok("[service]\nExecStart = \"/bin/true\"\n");
    assert!(plain.limits.0.is_none());
    assert_eq!(*plain.limits, Limits::default());
    let limited = parse_ok("[service]\nExecStart = \"/bin/true\"\nNice = 5\n");
    assert!(limited.limits.0.is_some());
    assert_eq!(limited.limits.nice, Some(5));
    assert_ne!(plain, limited);
    // Debug shows the section, not the box.
    assert!(format!("{:?}", plain.limits).starts_with("Limits {"));
}

#[test]
fn forgotten_places_are_gone_and_change_nothing_else() {
    let mut unit = parse_ok("[service]\nExecStart = \"/bin/true\"\n");
    assert!(unit.source.place("ExecStart").is_some());
    let before = unit.clone();
    unit.source.forget_places();
    assert_eq!(unit.source.place("ExecStart"), None);
    assert_eq!(unit, before);
}

#[test]
fn triggers_and_notes_take_no_box_unless_set() {
    // Most units set no WatchPaths or failure hooks and have no warnings: a
    // daemon's copy (places forgotten) keeps neither box, and the unit fits
    // musl's 496-byte size class (it was 608 bytes, in the 672-byte class).
    assert!(std::mem::size_of::<Unit>() <= 492);
    let mut plain = parse_ok("[service]\nExecStart = \"worker\"\n");
    assert!(plain.triggers.0.is_none());
    assert!(plain.source.0.is_some(), "the places are kept for verify");
    plain.source.forget_places();
    assert!(plain.source.0.is_none());
    assert_eq!(plain.triggers.watch_debounce, Duration::from_secs(1));
    assert_eq!(plain.triggers.hook_rate_limit, Duration::from_secs(300));

    let mut hooked = parse_ok(
        "[unit]\nOnFailure = [\"alert\"]\n\n[service]\nExecStart = \"worker $NOPE\"\nWatchPaths = [\"/srv/app\"]\n",
    );
    assert!(hooked.triggers.0.is_some());
    assert_eq!(hooked.triggers.on_failure, ["alert"]);
    assert_eq!(hooked.triggers.watch_paths, [PathBuf::from("/srv/app")]);
    assert_ne!(plain, hooked);
    // Warnings stay when the places go.
    assert_eq!(
        hooked.source.warnings.len(),
        1,
        "{:?}",
        hooked.source.warnings
    );
    hooked.source.forget_places();
    assert_eq!(hooked.source.place("ExecStart"), None);
    assert_eq!(hooked.source.warnings.len(), 1);
}

#[test]
fn every_duration_default_of_the_key_table_is_a_duration() {
    // Durations' defaults are parsed once from the table's text; one that
    // did not parse would silently be zero (and trips a debug assertion).
    use super::schema::{default_secs, KeyDefault, Kind, KEYS};
    let mut checked = 0;
    for k in KEYS {
        if let (Kind::Secs(_), KeyDefault::Value(text)) = (k.kind, k.default) {
            let want = parse_time_span(text.trim_matches('"')).expect("a time span");
            assert_eq!(
                default_secs(k.name),
                Duration::from_secs_f64(want),
                "{}",
                k.name
            );
            checked += 1;
        }
    }
    assert!(checked >= 10, "only {checked} duration keys with a default");
}

#[test]
fn a_unit_fits_the_400_byte_size_class_of_musls_allocator() {
    // The daemon holds one Unit per unit file (1000 units: SPEC §9's RSS
    // figure). musl's malloc serves 400-byte slots (4 bytes of them its
    // own) below 496-byte ones: a field that grows a unit past 396 bytes
    // costs ~96 KiB at 1000 units. Box what most units leave empty
    // (`Few`, `Rare`) instead.
    let size = std::mem::size_of::<Unit>();
    assert!(size <= 396, "a Unit is {size} bytes");
}
