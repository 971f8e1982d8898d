//! The command line without services: help, version, usage errors, exit
//! codes, and `verify` (which needs no daemon).

use crate::util::{alive, stderr, stdout, Home, WAIT};

const COMMANDS: [&str; 15] = [
    "list",
    "start",
    "stop",
    "restart",
    "status",
    "logs",
    "reload",
    "verify",
    "enable",
    "disable",
    "daemon-status",
    "kill",
    "daemon",
    "run",
    "delete",
];

#[test]
fn help_lists_every_command() {
    // `--help` names every command of the spec, each on a line of its own.
    let h = Home::new("help_lists_every_command");
    for flag in ["--help", "-h"] {
        let out = h.bare(&[flag]);
        assert!(out.status.success(), "{flag}: {}", stderr(&out));
        let text = stdout(&out);
        for cmd in COMMANDS {
            let listed = text
                .lines()
                .any(|l| l.split_whitespace().next() == Some(cmd));
            assert!(listed, "{flag} does not list `{cmd}`:\n{text}");
        }
        assert!(text.contains("Exit codes"), "{text}");
    }
}

#[test]
fn version_prints_the_package_version() {
    // `--version` and `-V` print the crate version and exit 0.
    let h = Home::new("version_prints_the_package_version");
    for flag in ["--version", "-V"] {
        let out = h.bare(&[flag]);
        assert!(out.status.success());
        assert_eq!(
            stdout(&out),
            format!("diakonos {}\n", env!("CARGO_PKG_VERSION"))
        );
    }
}

#[test]
fn usage_errors_exit_2_without_starting_a_daemon() {
    // Bad command lines exit 2 with a `diakonos: ` message and never reach a daemon.
    let h = Home::new("usage_errors_exit_2_without_starting_a_daemon");
    for args in [
        &[][..],
        &["frobnicate"],
        &["start"],
        &["stop"],
        &["status"],
        &["status", "a", "b"],
        &["list", "extra"],
        &["list", "-f"],
        &["stop", "--json", "x"],
        &["logs", "x", "-n", "many"],
        &["--bogus", "list"],
        &["list", "--detach"],
    ] {
        let err = h.fails(2, args);
        assert!(err.starts_with("diakonos: "), "{args:?}: {err}");
    }
    assert!(!h.home.join("diakonos.sock").exists());
    assert!(h.daemon_pid().is_none(), "a usage error started a daemon");
}

#[test]
fn unknown_command_suggests_the_near_miss() {
    // A misspelt command gets a did-you-mean.
    let h = Home::new("unknown_command_suggests_the_near_miss");
    let err = h.fails(2, &["statsu", "web"]);
    assert!(err.contains("did you mean `status`"), "{err}");
}

#[test]
fn unknown_unit_exits_1_naming_it() {
    // `status`, `start` and `stop` of a unit that does not exist fail with one error line naming it.
    let h = Home::new("unknown_unit_exits_1_naming_it");
    h.unit("real", "[service]\nExecStart = \"sleep 1000\"\n");
    for verb in ["status", "start", "stop", "restart"] {
        let err = h.fails(1, &[verb, "nosuch"]);
        // One line (SPEC §5), with what to do next on it.
        assert_eq!(err.lines().count(), 1, "{verb}: {err}");
        assert!(
            err.starts_with("diakonos: ") && err.contains("`nosuch`") && err.contains("; hint: "),
            "{verb}: {err}"
        );
    }
}

#[test]
fn daemon_status_without_daemon_says_not_running_and_exits_3() {
    // `daemon-status` never starts a daemon: with none it prints "not running" and exits 3.
    let h = Home::new("daemon_status_without_daemon_says_not_running_and_exits_3");
    let out = h.cmd(&["daemon-status"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "not running");
    let out = h.cmd(&["daemon-status", "--json"]);
    assert_eq!(out.status.code(), Some(3));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["running"], false);
    assert!(h.daemon_pid().is_none(), "daemon-status started a daemon");
}

#[test]
fn kill_without_daemon_exits_0() {
    // `kill` when no daemon runs is a success and starts nothing.
    let h = Home::new("kill_without_daemon_exits_0");
    h.ok(&["kill"]);
    assert!(h.daemon_pid().is_none(), "kill started a daemon");
}

#[test]
fn verify_accepts_good_units_without_a_daemon() {
    // `verify` on valid units exits 0 and does not start a daemon.
    let h = Home::new("verify_accepts_good_units_without_a_daemon");
    h.unit("db", "[service]\nExecStart = \"sleep 1000\"\n");
    h.unit(
        "web",
        "[unit]\nDescription = \"web\"\nRequires = [\"db\"]\n[service]\nExecStart = \"sleep 1000\"\nRestart = \"always\"\nRestartSec = 0.5\n",
    );
    h.ok(&["verify"]);
    h.ok(&["verify", "web"]);
    assert!(h.daemon_pid().is_none(), "verify started a daemon");
}

#[test]
fn verify_reports_a_typo_key_with_position_and_suggestion() {
    // A misspelt key is an error naming file:line:col with a did-you-mean (golden text).
    let h = Home::new("verify_reports_a_typo_key_with_position_and_suggestion");
    h.unit(
        "typo",
        "[unit]\nDescription = \"typo\"\n\n[service]\nExecStart = \"sleep 1\"\nRestrat = \"no\"\n",
    );
    let err = h.fails(1, &["verify"]);
    assert!(err.contains("typo.service:6:1"), "{err}");
    assert!(err.contains("did you mean `Restart`"), "{err}");
    let units = h.units.display().to_string();
    let got = err.replace(&units, "UNITS");
    let expected = include_str!("../expected/verify_typo.txt");
    assert_eq!(
        got, expected,
        "stderr differs from tests/expected/verify_typo.txt"
    );
}

#[test]
fn verify_reports_a_cycle_as_its_path() {
    // Requires cycles are errors printed as `a -> b -> a`.
    let h = Home::new("verify_reports_a_cycle_as_its_path");
    h.unit(
        "a",
        "[unit]\nRequires = [\"b\"]\n[service]\nExecStart = \"sleep 1\"\n",
    );
    h.unit(
        "b",
        "[unit]\nRequires = [\"a\"]\n[service]\nExecStart = \"sleep 1\"\n",
    );
    let err = h.fails(1, &["verify"]);
    assert!(
        err.contains("a -> b -> a") || err.contains("b -> a -> b"),
        "{err}"
    );
    // Told once, though it is an error of both.
    assert_eq!(err.matches("dependency cycle").count(), 1, "{err}");
    assert!(err.contains("2 of 2 unit(s)"), "{err}");
}

#[test]
fn verify_reports_requires_on_a_missing_unit() {
    // Requires on a unit that does not exist is an error naming both.
    let h = Home::new("verify_reports_requires_on_a_missing_unit");
    h.unit(
        "worker",
        "[unit]\nRequires = [\"nothere\"]\n[service]\nExecStart = \"sleep 1\"\n",
    );
    let err = h.fails(1, &["verify"]);
    assert!(err.contains("worker.service"), "{err}");
    assert!(err.contains("nothere"), "{err}");
}

#[test]
fn verify_reports_dependency_problems_word_for_word() {
    // A cycle as its path, told once for all its members; missing Requires with file and dir; a missing Wants as a warning, only with its unit; next to load and host errors (golden text).
    let h = Home::new("verify_reports_dependency_problems_word_for_word");
    let run = "[service]\nExecStart = \"sleep 1\"\n";
    h.unit("a", &format!("[unit]\nRequires = [\"b\", \"gone\"]\n{run}"));
    h.unit("b", &format!("[unit]\nAfter = [\"c\"]\n{run}"));
    h.unit("c", &format!("[unit]\nWants = [\"a\", \"ghost\"]\n{run}"));
    h.unit(
        "broken",
        "[unit]\nRequires = [\"a\"]\n[service]\nExecStart = 1\n",
    );
    h.unit(
        "needs_broken",
        &format!("[unit]\nRequires = [\"broken\"]\n{run}"),
    );
    h.unit(
        "host",
        "[unit]\nRequires = [\"missing\"]\n[service]\nExecStart = \"/nonexistent/prog\"\n",
    );
    h.unit("ok", &format!("[unit]\nWants = [\"needs_broken\"]\n{run}"));
    let units = h.units.display().to_string();
    let all = h.fails(1, &["verify"]).replace(&units, "UNITS");
    let one = h.cmd(&["verify", "ok"]);
    assert!(one.status.success(), "{}", stderr(&one));
    let got = format!(
        "== verify\n{all}== verify ok\n{}",
        stderr(&one).replace(&units, "UNITS")
    );
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/expected/verify_deps.txt"
    );
    if std::env::var_os("DIAKONOS_BLESS").is_some() {
        std::fs::write(path, &got).expect("write tests/expected/verify_deps.txt");
    }
    let expected = std::fs::read_to_string(path).expect("read tests/expected/verify_deps.txt");
    assert_eq!(
        got, expected,
        "stderr differs from tests/expected/verify_deps.txt; \
         `DIAKONOS_BLESS=1 cargo test --test it verify_reports_dependency` rewrites it"
    );
}

#[test]
fn verify_warns_about_wants_on_a_missing_unit() {
    // Wants on a unit that does not exist is only a warning: verify still passes.
    let h = Home::new("verify_warns_about_wants_on_a_missing_unit");
    h.unit(
        "web",
        "[unit]\nWants = [\"cache\"]\n[service]\nExecStart = \"sleep 1\"\n",
    );
    h.unit("db", "[service]\nExecStart = \"sleep 1\"\n");
    let out = h.cmd(&["verify"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("cache"), "{}", stderr(&out));
    // Only with the unit it is about.
    let out = h.cmd(&["verify", "web"]);
    assert_eq!(stderr(&out).matches("cache").count(), 1, "{}", stderr(&out));
    let out = h.cmd(&["verify", "db"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stderr(&out).contains("cache"), "{}", stderr(&out));
    // So is a hook that names no unit (it would never run).
    h.unit(
        "job",
        "[unit]\nOnFailure = [\"alert\"]\nOnRestart = [\"db\"]\n[service]\nExecStart = \"sleep 1\"\n",
    );
    let out = h.cmd(&["verify", "job"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("job: OnFailure `alert`, which does not exist"),
        "{}",
        stderr(&out)
    );
    assert!(!stderr(&out).contains("`db`"), "{}", stderr(&out));
}

#[test]
fn environment_variables_choose_home_and_service_dir() {
    // DIAKONOS_HOME and DIAKONOS_SERVICE_DIR stand in for --home and --service-dir.
    let h = Home::new("environment_variables_choose_home_and_service_dir");
    h.unit("web", "[service]\nExecStart = \"sleep 1000\"\n");
    let mut cmd = std::process::Command::new(crate::util::BIN);
    cmd.args(["start", "web"])
        .current_dir(&h.root)
        .env("DIAKONOS_HOME", &h.home)
        .env("DIAKONOS_SERVICE_DIR", &h.units)
        .stdin(std::process::Stdio::null());
    let out = h.run(cmd);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(h.state("web"), "running");
}

#[test]
fn verify_with_names_checks_only_those_units() {
    // `verify good` passes even when another unit in the directory is broken.
    let h = Home::new("verify_with_names_checks_only_those_units");
    h.unit("good", "[service]\nExecStart = \"sleep 1\"\n");
    h.unit("bad", "[service]\nExecStrat = \"sleep 1\"\n");
    h.ok(&["verify", "good"]);
    let err = h.fails(1, &["verify", "bad"]);
    assert!(err.contains("ExecStrat"), "{err}");
}

#[test]
fn output_has_no_colour_codes_when_not_wanted() {
    // With --no-color (and NO_COLOR, and a pipe) list and errors carry no escape codes.
    let h = Home::new("output_has_no_colour_codes_when_not_wanted");
    h.unit("web", "[service]\nExecStart = \"sleep 1000\"\n");
    h.ok(&["start", "web"]);
    let out = h.cmd(&["--no-color", "list"]);
    assert!(out.status.success());
    assert!(!stdout(&out).contains('\u{1b}'), "{:?}", stdout(&out));
    let err = h.fails(1, &["--no-color", "status", "nosuch"]);
    assert!(!err.contains('\u{1b}'), "{err:?}");
}

#[test]
fn colour_only_when_stdout_is_a_terminal_error_lines_too() {
    // Under a terminal (util-linux `script`), an error line is coloured; with stdout sent to a file it is plain, though stderr is still the terminal (SPEC §5: colours off when stdout is not a terminal).
    let h = Home::new("colour_only_when_stdout_is_a_terminal");
    let home = h.home.to_str().expect("utf-8");
    let under_tty = |redirect: &str| {
        let line = format!(
            "{} --home {home} --service-dir units status nosuch {redirect}",
            crate::util::BIN
        );
        let mut cmd = std::process::Command::new("script");
        cmd.args(["-qec", &line, "/dev/null"])
            .current_dir(&h.root)
            .env_remove("NO_COLOR")
            .stdin(std::process::Stdio::null());
        stdout(&h.run(cmd))
    };
    let plain = under_tty(">out.txt");
    assert!(plain.contains("no unit named `nosuch`"), "{plain:?}");
    assert!(!plain.contains('\u{1b}'), "{plain:?}");
    let coloured = under_tty("");
    assert!(
        coloured.contains('\u{1b}'),
        "no colour on a terminal: {coloured:?}"
    );
}

#[test]
fn a_home_that_cannot_be_made_is_one_line_that_says_what_to_do() {
    // --home under a regular file: the daemon cannot start; the error names the home and says to pick another.
    let h = Home::new("a_home_that_cannot_be_made");
    std::fs::write(h.root.join("file"), "").expect("write a file");
    h.unit("web", "[service]\nExecStart = \"sleep 1000\"\n");
    let home = h.root.join("file/home");
    let out = h.bare(&[
        "--home",
        home.to_str().expect("utf-8"),
        "--service-dir",
        "units",
        "list",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains(&format!("cannot start the daemon for {}", home.display())),
        "{err}"
    );
    assert!(
        err.contains("pick another with --home or DIAKONOS_HOME"),
        "{err}"
    );
}

#[test]
fn a_home_too_deep_for_a_unix_socket_is_said_so() {
    // A socket path holds 107 bytes: `list` says the home is too deep and to pick a shorter one (exit 1); `daemon-status` says not running (exit 3).
    let h = Home::new("a_home_too_deep_for_a_unix_socket");
    h.unit("web", "[service]\nExecStart = \"sleep 1000\"\n");
    let deep = h.root.join("a".repeat(60)).join("b".repeat(60));
    let deep = deep.to_str().expect("utf-8");
    let out = h.bare(&["--home", deep, "--service-dir", "units", "list"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("is too deep for the daemon's socket")
            && err.contains("pick a shorter --home"),
        "{err}"
    );
    let out = h.bare(&["--home", deep, "daemon-status"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "not running");
}

#[test]
fn daemon_status_and_kill_work_when_the_named_service_dir_is_gone() {
    // They need no directory on disk: with no daemon, a missing one is no
    // error; with a daemon, its own directory moved away still names it.
    let h = Home::new("daemon_status_and_kill_work_when_the_service_dir_is_gone");
    let home = h.home.to_str().expect("utf-8");
    let units = h.units.to_str().expect("utf-8");
    let named = |verb: &str| h.bare(&["--home", home, "--service-dir", units, verb]);
    std::fs::remove_dir_all(&h.units).ok();
    let out = named("daemon-status");
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "not running");
    assert_eq!(named("kill").status.code(), Some(0));
    std::fs::create_dir_all(&h.units).expect("mkdir");
    h.unit("web", "[service]\nExecStart = \"sleep 1000\"\n");
    h.ok(&["start", "web"]);
    std::fs::rename(&h.units, h.root.join("moved")).expect("move the service dir away");
    let out = named("daemon-status");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let daemon = h.daemon_pid().expect("daemon pid");
    let out = named("kill");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    h.wait_until("the daemon to stop", WAIT, || !alive(daemon));
}

#[test]
fn a_unit_named_with_its_file_suffix_is_told_its_name() {
    // `start web.service`: one line saying units are named without
    // `.service`, and the name to give.
    let h = Home::new("a_unit_named_with_its_file_suffix_is_told_its_name");
    h.unit("web", "[service]\nExecStart = \"sleep 1000\"\n");
    let out = h.cmd(&["start", "web.service"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("without its directory and `.service`"),
        "{err}"
    );
    assert!(err.contains("name it `web`"), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
}

#[test]
fn a_stopped_daemon_does_not_hang_a_question_for_ever() {
    // SIGSTOP the daemon: `daemon-status`, `reload` and `enable` give up
    // after 10 s, `wait --timeout 1` after 3, each with one line saying so
    // and how to resume it; after SIGCONT all is well.
    use nix::sys::signal::{kill, Signal};
    let h = Home::new("a_stopped_daemon_does_not_hang_a_question");
    h.ok(&["list"]);
    let daemon = nix::unistd::Pid::from_raw(h.daemon_pid().expect("daemon pid"));
    kill(daemon, Signal::SIGSTOP).expect("SIGSTOP");
    // All at once (each waits its limit): a question, the requests the
    // daemon also answers at once (they hung), and a `wait`, which gives
    // up at its own timeout and a little more (it hung too).
    let asks: [&[&str]; 4] = [
        &["daemon-status"],
        &["reload"],
        &["enable", "web"],
        &["wait", "web", "--timeout", "1"],
    ];
    let outs: Vec<_> = std::thread::scope(|scope| {
        let running: Vec<_> = asks
            .iter()
            .map(|args| scope.spawn(|| h.cmd(args)))
            .collect();
        running.into_iter().map(|t| t.join()).collect()
    });
    kill(daemon, Signal::SIGCONT).expect("SIGCONT");
    for (args, out) in asks.iter().zip(outs) {
        let out = out.unwrap_or_else(|_| panic!("{args:?} did not end"));
        let err = stderr(&out);
        let limit = if args[0] == "wait" { "3 s" } else { "10 s" };
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(
            err.contains(&format!("did not answer in {limit}"))
                && err.contains("kill -CONT")
                && err.contains("still carries this request out"),
            "{args:?}: {err}"
        );
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
    }
    h.ok(&["daemon-status"]);
}

#[test]
fn a_unit_file_name_with_a_newline_stays_on_one_line() {
    // Such a unit is invalid; its error (verify) and its row (list) are one
    // line each, the newline escaped.
    let h = Home::new("a_unit_file_name_with_a_newline");
    std::fs::write(
        h.units.join("a\nb.service"),
        "[service]\nExecStart = \"sleep 1\"\n",
    )
    .expect("write the unit");
    let err = h.fails(1, &["verify"]);
    assert!(err.lines().all(|l| l.starts_with("diakonos: ")), "{err}");
    assert!(err.contains("a\\nb.service"), "{err}");
    let list = h.ok(&["list"]);
    assert_eq!(list.lines().count(), 2, "{list}");
    assert!(
        list.lines().nth(1).is_some_and(|l| l.starts_with("a\\nb ")),
        "{list}"
    );
}

#[test]
fn a_mistyped_unit_name_gets_a_suggestion() {
    // `start dbb` when `db` exists: exit 1, one line, "did you mean `db`?"; a name near nothing gets the usual hint.
    let h = Home::new("a_mistyped_unit_name_gets_a_suggestion");
    h.unit("db", "[service]\nExecStart = \"sleep 1000\"\n");
    let err = h.fails(1, &["start", "dbb"]);
    assert!(err.contains("did you mean `db`?"), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    let err = h.fails(1, &["status", "zzzzzzzz"]);
    assert!(!err.contains("did you mean"), "{err}");
}
