//! SPEC §18: `run` (a unit file from a command line), `delete`,
//! `start/stop/restart --all` and `Protected`, `Conflicts`.

use std::fs;

use crate::util::{alive, gone, sh, stderr, stdout, Home, WAIT};

/// Awkward arguments: spaces, quotes, backslashes, `$`, non-ASCII, empty.
fn awkward() -> Vec<String> {
    [
        "two words",
        "it's",
        "say \"hi\"",
        "back\\slash",
        "$HOME and ${HOME} and $$",
        "ünïcødé ✓",
        "",
        "tab\there",
        "#hash",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// The arguments the service wrote to `file` (NUL-separated), once it has.
fn written_args(h: &Home, file: &str) -> Vec<String> {
    let mut got = Vec::new();
    h.wait_until(
        &format!("the service to write {file}"),
        WAIT,
        // The service runs where `run` ran (the test's root), as PM2's do.
        || match fs::read(h.root.join(file)) {
            Ok(bytes) if bytes.ends_with(b"\0") && bytes.ends_with(b"END\0") => {
                got = bytes
                    .split(|&b| b == 0)
                    .map(|s| String::from_utf8_lossy(s).into_owned())
                    .collect();
                true
            }
            _ => false,
        },
    );
    // The trailing "END" and the empty piece after the last NUL.
    got.truncate(got.len().saturating_sub(2));
    got
}

/// `run NAME -- sh -c 'printf ... "$@" END > file; exec sleep' prog ARGS`.
fn run_args<'a>(name: &'a str, file: &str, args: &'a [String]) -> Vec<String> {
    let mut v: Vec<String> = vec![
        "run".into(),
        "--name".into(),
        name.into(),
        "--".into(),
        "sh".into(),
        "-c".into(),
        format!("echo x >> {file}.launches; printf '%s\\0' \"$@\" END > {file}.tmp && mv {file}.tmp {file}; exec sleep 600"),
        "prog".into(),
    ];
    v.extend(args.iter().cloned());
    v
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

#[test]
fn run_writes_a_unit_that_round_trips_awkward_arguments() {
    // The written unit passes verify, its service gets exactly the
    // arguments given, status shows it running, and a restart gives them again.
    let h = Home::new("run_writes_a_unit_that_round_trips_awkward_arguments");
    let args = awkward();
    let out = h.ok(&strs(&run_args("odd", "args.out", &args)));
    let path = h.units.join("odd.service");
    assert!(path.is_file(), "no unit file written:\n{out}");
    assert!(
        out.contains(&path.display().to_string()) || out.contains("units/odd.service"),
        "run does not print the file's path:\n{out}"
    );
    assert_eq!(written_args(&h, "args.out"), args);
    assert_eq!(h.state("odd"), "running");
    let verify = h.ok(&["verify", "odd"]);
    assert!(verify.contains("valid"), "{verify}");
    let status = h.ok(&["status", "odd"]);
    assert!(status.contains("running"), "{status}");
    let pid = h.pid("odd");
    fs::remove_file(h.root.join("args.out")).expect("remove the marker");
    h.ok(&["restart", "odd"]);
    assert_eq!(written_args(&h, "args.out"), args);
    assert_ne!(h.pid("odd"), pid);
    h.wait_until("the first process to be gone", WAIT, || gone(pid));
}

#[test]
fn run_refuses_an_existing_name_without_force() {
    // A second `run` with the same name changes nothing; --force replaces
    // the unit and the service runs the new command.
    let h = Home::new("run_refuses_an_existing_name_without_force");
    let first = vec!["one".to_owned()];
    h.ok(&strs(&run_args("api", "a.out", &first)));
    assert_eq!(written_args(&h, "a.out"), first);
    let before = fs::read_to_string(h.units.join("api.service")).expect("the unit");
    let pid = h.pid("api");
    let second = vec!["two".to_owned()];
    let err = h.fails(1, &strs(&run_args("api", "a.out", &second)));
    assert!(
        err.contains("already exists") && err.contains("--force"),
        "{err}"
    );
    assert_eq!(
        fs::read_to_string(h.units.join("api.service")).expect("the unit"),
        before
    );
    assert_eq!(h.pid("api"), pid, "a refused run touched the service");
    fs::remove_file(h.root.join("a.out")).expect("remove the marker");
    let mut forced = run_args("api", "a.out", &second);
    forced.insert(1, "--force".into());
    h.ok(&strs(&forced));
    assert_eq!(written_args(&h, "a.out"), second);
    h.wait_until("the old process to be gone", WAIT, || gone(pid));
    // Replaced once: one launch of the old command, one of the new.
    h.stays(
        "two launches",
        std::time::Duration::from_millis(500),
        || crate::util::read_lines(&h.root.join("a.out.launches")).len() == 2,
    );
}

#[test]
fn run_reports_a_missing_program_before_writing_anything() {
    // A command that cannot be found: exit 1, no file, no unit.
    let h = Home::new("run_reports_a_missing_program_before_writing_anything");
    let err = h.fails(1, &["run", "--", "no-such-program-diakonos", "x"]);
    assert!(err.contains("no-such-program-diakonos"), "{err}");
    assert!(err.contains("nothing was written"), "{err}");
    assert!(!h.units.join("no-such-program-diakonos.service").exists());
    let list = h.ok(&["list"]);
    assert!(!list.contains("no-such-program"), "{list}");
    // A PM2 habit, `start app.js`, points at `run`.
    let err = h.fails(1, &["start", "app.js"]);
    assert!(err.contains("diakonos run -- COMMAND"), "{err}");
    // --requires of a unit that is not there: the unit could never start.
    let err = h.fails(
        1,
        &[
            "run",
            "--name",
            "c",
            "--requires",
            "nothere",
            "--",
            "sleep",
            "1",
        ],
    );
    assert!(err.contains("no unit named `nothere`"), "{err}");
    assert!(err.contains("nothing was written"), "{err}");
    assert!(!h.units.join("c.service").exists());
    let err = h.fails(
        1,
        &["run", "--name", "c", "--requires", "c", "--", "sleep", "1"],
    );
    assert!(err.contains("cannot depend on itself"), "{err}");
    assert!(!h.units.join("c.service").exists());
}

#[test]
fn run_takes_its_options_and_loads_only_its_unit() {
    // --env, --cwd, --restart, --requires, --enable end up in the unit; a
    // changed file of another unit is not picked up (no full reload).
    let h = Home::new("run_takes_its_options_and_loads_only_its_unit");
    h.unit(
        "db",
        &format!("[service]\nExecStart = {}\n", sh("exec sleep 600")),
    );
    h.ok(&["start", "db"]);
    let db_pid = h.pid("db");
    // A change to db's file that only a full reload would apply.
    h.unit(
        "db",
        &format!("[service]\nExecStart = {}\n", sh("exec sleep 601")),
    );
    let work = h.root.join("work dir");
    fs::create_dir_all(&work).expect("mkdir");
    h.ok(&[
        "run",
        "--name",
        "web",
        "--env",
        "GREETING=hello world",
        "--cwd",
        "work dir",
        "--restart",
        "always",
        "--requires",
        "db",
        "--enable",
        "--",
        "sh",
        "-c",
        "echo \"$GREETING\" > out; exec sleep 600",
    ]);
    h.wait_until("web to write out", WAIT, || {
        fs::read_to_string(work.join("out")).is_ok_and(|t| t == "hello world\n")
    });
    let s = h.status_json("web");
    assert_eq!(s["enabled"], true, "{s}");
    assert_eq!(s["requires"], serde_json::json!(["db"]), "{s}");
    assert_eq!(h.pid("db"), db_pid, "run reloaded db");
    let text = fs::read_to_string(h.units.join("web.service")).expect("the unit");
    assert!(text.contains("Restart = \"always\""), "{text}");
}

#[test]
fn delete_stops_disables_removes_and_keeps_or_purges_logs() {
    // delete stops the unit, disables it, removes the file and the unit;
    // logs stay unless --purge-logs.
    let h = Home::new("delete_stops_disables_and_removes_and_names_requirers");
    h.unit(
        "db",
        &format!(
            "[service]\nExecStart = {}\n",
            sh("echo db-up; exec sleep 600")
        ),
    );
    h.unit(
        "app",
        &format!(
            "[unit]\nRequires = [\"db\"]\n[service]\nExecStart = {}\n",
            sh("exec sleep 600")
        ),
    );
    h.ok(&["start", "app"]);
    h.ok(&["enable", "db"]);
    let (db, app) = (h.pid("db"), h.pid("app"));

    h.ok(&["delete", "app"]);
    assert!(gone(app), "delete returned before app stopped");
    assert!(!h.units.join("app.service").exists());
    let list = h.ok(&["list"]);
    assert!(!list.contains("app"), "{list}");
    assert!(h.home.join("logs/app.log").exists(), "logs not kept");
    assert!(alive(db));

    // An Exec probe's file goes with the logs.
    fs::write(h.home.join("logs/db.probe"), "ok\n").expect("write a probe file");
    h.ok(&["delete", "db", "--purge-logs"]);
    assert!(gone(db));
    assert!(
        !h.home.join("logs/db.probe").exists(),
        "probe output not purged"
    );
    assert!(!h.units.join("db.service").exists());
    assert!(!h.home.join("logs/db.log").exists(), "logs not purged");
    let list = h.ok(&["list"]);
    assert!(!list.contains("db"), "{list}");
    let enabled = fs::read_to_string(h.home.join("enabled")).unwrap_or_default();
    assert!(!enabled.contains("db"), "still enabled: {enabled}");
    h.fails(1, &["status", "db"]);
}

#[test]
fn delete_stops_the_requirers_first_and_names_them() {
    // SPEC §18: the units that Require it are stopped first (as `stop`
    // does), named in a warning, and stay invalid; --force is still taken.
    let h = Home::new("delete_stops_the_requirers_first");
    h.unit(
        "db",
        &format!(
            "[service]\nExecStart = {}\n",
            sh("trap 'echo db-down >> order; exit 0' TERM; sleep 600 & wait")
        ),
    );
    h.unit(
        "app",
        &format!(
            "[unit]\nRequires = [\"db\"]\n[service]\nExecStart = {}\n",
            sh("trap 'echo app-down >> order; exit 0' TERM; sleep 600 & wait")
        ),
    );
    h.ok(&["start", "app"]);
    let (db, app) = (h.pid("db"), h.pid("app"));
    let out = h.cmd(&["delete", "db"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("their Requires is edited: app"),
        "{}",
        stderr(&out)
    );
    assert!(gone(db) && gone(app));
    assert_eq!(h.lines("order"), ["app-down", "db-down"]);
    assert!(!h.units.join("db.service").exists());
    assert_eq!(h.state("app"), "invalid");
    h.unit(
        "db",
        &format!("[service]\nExecStart = {}\n", sh("exec sleep 600")),
    );
    h.ok(&["reload"]);
    h.ok(&["delete", "db", "--force"]);
}

#[test]
fn all_spares_protected_units_from_stop_and_restart() {
    // start --all starts every unit; stop --all and restart --all leave a
    // Protected one running, untouched; naming it stops it; kill stops it too.
    let h = Home::new("all_spares_protected_units_from_stop_and_restart");
    let body = format!("[service]\nExecStart = {}\n", sh("exec sleep 600"));
    h.unit("guard", &format!("[unit]\nProtected = true\n{body}"));
    h.unit("one", &body);
    h.unit("two", &body);
    h.unit("broken", "[service]\nExecStart = \"\"\n");
    // An invalid unit is left out with a warning; the others start.
    let out = h.cmd(&["start", "--all"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("broken: left out (invalid)"),
        "{}",
        stderr(&out)
    );
    for n in ["guard", "one", "two"] {
        assert_eq!(h.state(n), "running", "{n}");
    }
    let guard = h.pid("guard");
    let one = h.pid("one");
    let out = h.ok(&["restart", "--all"]);
    assert!(out.contains("guard: left out"), "{out}");
    assert_eq!(h.pid("guard"), guard);
    assert_ne!(h.pid("one"), one);
    assert!(gone(one));
    let out = h.ok(&["stop", "--all"]);
    assert!(out.contains("guard: left out"), "{out}");
    assert_eq!(h.state("one"), "inactive");
    assert_eq!(h.state("two"), "inactive");
    assert_eq!(h.pid("guard"), guard);
    assert!(alive(guard));
    assert_eq!(h.unit_json("guard")["protected"], true);
    h.ok(&["stop", "guard"]);
    assert!(gone(guard));
    h.ok(&["start", "guard"]);
    let guard = h.pid("guard");
    h.ok(&["kill"]);
    h.wait_until("kill to stop the protected unit too", WAIT, || gone(guard));
}

#[test]
fn run_prints_the_path_and_a_bad_option_is_a_usage_error() {
    // Usage errors of run exit 2 before anything is written.
    let h = Home::new("run_prints_the_path_and_a_bad_option_is_a_usage_error");
    for args in [
        &["run", "--restart", "sometimes", "--", "sleep", "1"][..],
        &["run", "--env", "NOEQUALS", "--", "sleep", "1"],
        &["run", "--name", "a/b", "--", "sleep", "1"],
        &["run"],
    ] {
        let out = h.cmd(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
    }
    assert_eq!(fs::read_dir(&h.units).expect("units").count(), 0);
    let out = h.cmd(&["run", "--", "sleep", "600"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(h.state("sleep"), "running");
    // stdout is the unit file's path and nothing else (SPEC §18), so a
    // script can use it; the state line goes to stderr.
    let path = h.units.join("sleep.service");
    assert_eq!(stdout(&out), format!("{}\n", path.display()));
    assert!(stderr(&out).contains("sleep: running"), "{}", stderr(&out));
}

#[test]
fn conflicting_units_are_never_started_together() {
    // Named together (or by --all), two units that conflict are refused at
    // once, with both names; nothing starts, and a running one stays.
    let h = Home::new("conflicting_units_are_never_started_together");
    h.unit(
        "ca",
        "[unit]\nConflicts = [\"cb\"]\n[service]\nExecStart = \"sleep 600\"\n",
    );
    h.unit("cb", "[service]\nExecStart = \"sleep 600\"\n");
    for args in [
        &["start", "cb", "ca"][..],
        &["start", "--all"],
        &["restart", "--all"],
    ] {
        let err = h.fails(1, args);
        assert!(
            err.contains("`ca` and `cb` conflict") || err.contains("`cb` and `ca` conflict"),
            "{args:?}: {err}"
        );
        assert_eq!(h.state("ca"), "inactive", "{args:?}");
        assert_eq!(h.state("cb"), "inactive", "{args:?}");
    }
    // Pulled in by what a named unit Requires: the same.
    h.unit(
        "x",
        "[unit]\nRequires = [\"ca\"]\n[service]\nExecStart = \"sleep 600\"\n",
    );
    h.ok(&["reload"]);
    let err = h.fails(1, &["start", "x", "cb"]);
    assert!(err.contains("conflict"), "{err}");
    assert_eq!(h.state("x"), "inactive");
    h.fails(1, &["restart", "x", "cb"]);
    // With one of them up, naming both used to wait for ever.
    h.ok(&["start", "ca"]);
    let ca = h.pid("ca");
    h.fails(1, &["start", "ca", "cb"]);
    assert_eq!(h.pid("ca"), ca);
    assert_eq!(h.state("cb"), "inactive");
    // Both enabled: a new daemon starts the first by name only, and says so.
    h.ok(&["enable", "ca", "cb"]);
    h.ok(&["kill"]);
    h.ok(&["list"]);
    h.wait_until("the enabled ca to run", WAIT, || h.state("ca") == "running");
    assert_eq!(h.state("cb"), "inactive");
    let log = fs::read_to_string(h.home.join("daemon.log")).unwrap_or_default();
    assert!(
        log.contains("enabled units `ca` and `cb` conflict: starting `ca` only"),
        "{log}"
    );
}

#[test]
fn conflicts_stop_the_other_unit_in_both_directions() {
    // Only `a` names the conflict: starting b stops a first (b launches
    // once a is gone), and starting a stops b; status shows it on both.
    let h = Home::new("conflicts_stop_the_other_unit_in_both_directions");
    // Each writes when it starts; b takes a moment to go down on SIGTERM.
    h.unit(
        "a",
        &format!(
            "[unit]\nConflicts = [\"b\"]\n[service]\nExecStart = {}\n",
            sh("echo a-start >> order; exec sleep 600")
        ),
    );
    h.unit(
        "b",
        &format!(
            "[service]\nExecStart = {}\n",
            sh("echo b-start >> order; trap 'sleep 0.3; echo b-down >> order; exit 0' TERM; sleep 600 & wait")
        ),
    );
    h.ok(&["start", "a"]);
    let a = h.pid("a");
    h.ok(&["start", "b"]);
    assert!(gone(a), "a still runs next to b");
    assert_eq!(h.state("a"), "inactive");
    assert_eq!(h.state("b"), "running");
    h.wait_lines("order", 2);
    h.ok(&["start", "a"]);
    h.wait_lines("order", 4);
    assert_eq!(
        h.lines("order"),
        ["a-start", "b-start", "b-down", "a-start"]
    );
    assert_eq!(h.state("b"), "inactive");
    assert_eq!(h.state("a"), "running");
    assert_eq!(h.status_json("a")["conflicts"], serde_json::json!(["b"]));
    assert_eq!(h.status_json("b")["conflicts"], serde_json::json!(["a"]));
    let status = h.ok(&["status", "b"]);
    assert!(
        status.contains("conflicts") && status.contains('a'),
        "{status}"
    );
}

#[test]
fn conflicting_with_a_dependency_is_a_load_error_naming_the_path() {
    // web -> lib -> db with web Conflicts db: verify and status name the
    // path, and web does not start; db alone is fine.
    let h = Home::new("conflicting_with_a_dependency_is_a_load_error_naming_the_path");
    let body = format!("[service]\nExecStart = {}\n", sh("exec sleep 600"));
    h.unit(
        "web",
        &format!("[unit]\nRequires = [\"lib\"]\nConflicts = [\"db\"]\n{body}"),
    );
    h.unit("lib", &format!("[unit]\nWants = [\"db\"]\n{body}"));
    h.unit("db", &body);
    let out = h.cmd(&["verify"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(
        err.contains("conflicts with `db`, which it needs: web -> lib -> db"),
        "{err}"
    );
    assert!(err.contains("web.service"), "{err}");
    assert_eq!(h.state("web"), "invalid");
    let reason = h.unit_json("web")["reason"].to_string();
    assert!(reason.contains("web -> lib -> db"), "{reason}");
    let err = h.fails(1, &["start", "web"]);
    assert!(err.contains("web -> lib -> db"), "{err}");
    h.ok(&["start", "db"]);
    assert_eq!(h.state("db"), "running");
}

#[test]
fn run_creates_a_missing_service_dir_when_no_daemon_runs() {
    // A first `run` in an empty place: the service dir is made, a daemon
    // started on it, and the unit runs.
    let h = Home::new("run_creates_a_missing_service_dir_when_no_daemon_runs");
    fs::remove_dir(&h.units).expect("remove the empty service dir");
    let out = h.cmd(&["run", "--name", "first", "--", "sleep", "600"]);
    assert!(out.status.success(), "{}", stderr(&out));
    // The note on stderr: stdout is the unit file's path alone.
    assert!(
        stderr(&out).contains("created the service directory"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        stdout(&out),
        format!("{}\n", h.units.join("first.service").display())
    );
    assert!(h.units.join("first.service").is_file());
    assert_eq!(h.state("first"), "running");
}

#[test]
fn racing_run_force_of_one_name_all_write_their_file() {
    // Eight `run --force --name race` at once: none fails writing the unit file (each writes its own temporary file), and one unit runs.
    let h = Home::new("racing_run_force_of_one_name");
    h.ok(&["list"]);
    let outs: Vec<_> = std::thread::scope(|s| {
        let runs: Vec<_> = (0..8)
            .map(|i| {
                let h = &h;
                s.spawn(move || {
                    h.cmd(&[
                        "run",
                        "--force",
                        "--name",
                        "race",
                        "--",
                        "sleep",
                        &format!("100{i}"),
                    ])
                })
            })
            .collect();
        runs.into_iter()
            .map(|r| r.join().expect("a client thread panicked"))
            .collect()
    });
    for out in &outs {
        let err = crate::util::stderr(out);
        assert!(!err.contains("cannot write"), "{err}");
        assert!(out.status.success(), "{err}");
    }
    h.wait_until("race running", WAIT, || h.state("race") == "running");
    let left: Vec<_> = std::fs::read_dir(&h.units)
        .expect("read units")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("tmp"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn run_starts_the_service_in_the_directory_it_is_run_from() {
    // As PM2 does: `cd proj && diakonos run -- sh app.sh` runs app.sh in proj (written as the unit's WorkingDirectory); --cwd overrides it.
    let h = Home::new("run_starts_in_the_callers_directory");
    let proj = h.root.join("proj");
    fs::create_dir_all(&proj).expect("mkdir proj");
    fs::write(proj.join("app.sh"), "pwd > where; exec sleep 600\n").expect("write app.sh");
    let (home, units) = (h.home.display().to_string(), h.units.display().to_string());
    let mut cmd = std::process::Command::new(crate::util::BIN);
    cmd.args([
        "--home",
        &home,
        "--service-dir",
        &units,
        "run",
        "--name",
        "app",
        "--",
        "sh",
        "app.sh",
    ])
    .current_dir(&proj)
    .stdin(std::process::Stdio::null());
    let out = h.run(cmd);
    assert!(out.status.success(), "{}", crate::util::stderr(&out));
    h.wait_until("app.sh wrote where it runs", WAIT, || {
        fs::read_to_string(proj.join("where")).is_ok_and(|w| w.trim() == proj.to_string_lossy())
    });
    let unit = fs::read_to_string(h.units.join("app.service")).expect("the unit");
    assert!(
        unit.contains(&format!("WorkingDirectory = \"{}\"", proj.display())),
        "{unit}"
    );
}
