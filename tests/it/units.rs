//! Unit files as users write them (issue 8): systemd spellings, variables
//! in ExecStart, and `verify` catching what `start` would fail on; plus the
//! service-directory rules around `verify`, `list` and `reload`.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use crate::util::{sh, stderr, stdout, Home, WAIT};

const SLEEPER: &str = "[service]\nExecStart = \"sleep 1000\"\n";

#[test]
fn verify_uses_the_running_daemons_service_dir() {
    // Without --service-dir, `verify` checks the directory the running daemon owns, as other commands do.
    let h = Home::new("verify_uses_the_running_daemons_service_dir");
    h.unit("web", SLEEPER);
    h.unit(
        "typo",
        "[service]\nExecStart = \"sleep 1000\"\nRestrat = \"no\"\n",
    );
    h.ok(&["list"]);
    let home = h.home.display().to_string();
    // The client runs in h.root, which has no ./services.
    let out = h.bare(&["--home", &home, "verify", "web"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains(&h.units.display().to_string()),
        "{}",
        stdout(&out)
    );
    let out = h.bare(&["--home", &home, "verify"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("typo.service:3:1"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn verify_never_starts_a_daemon() {
    // With no daemon and no --service-dir, `verify` checks ./services and starts nothing.
    let h = Home::new("verify_never_starts_a_daemon");
    fs::create_dir(h.root.join("services")).expect("mkdir services");
    fs::write(h.root.join("services/web.service"), SLEEPER).expect("write unit");
    let home = h.home.display().to_string();
    let out = h.bare(&["--home", &home, "verify"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("1 unit(s)"), "{}", stdout(&out));
    assert_eq!(h.daemon_pid(), None, "verify started a daemon");
}

#[test]
fn verify_catches_what_start_would_fail_on_with_file_line_column() {
    // A missing or non-executable program, an unknown User and a missing WorkingDirectory are errors at their value.
    let h = Home::new("verify_catches_what_start_would_fail_on");
    h.unit(
        "noprog",
        "[service]\nExecStart = \"no-such-program-diakonos --x\"\n",
    );
    fs::create_dir(h.units.join("app")).expect("mkdir app");
    fs::write(h.units.join("app/stop.sh"), "#!/bin/sh\n").expect("write stop.sh");
    h.unit(
        "noexec",
        "[service]\nWorkingDirectory = \"app\"\nExecStart = \"sleep 1000\"\nExecStop = \"./stop.sh\"\n",
    );
    h.unit(
        "nouser",
        "[service]\nExecStart = \"sleep 1000\"\nUser = \"no-such-user-diakonos\"\n",
    );
    h.unit(
        "nodir",
        "[service]\nExecStart = \"sleep 1000\"\nWorkingDirectory = \"/nonexistent/diakonos\"\n",
    );
    let err = h.fails(1, &["verify"]);
    let at = |file: &str| format!("{}:", h.units.join(file).display());
    for expected in [
        format!(
            "{}2:13: `ExecStart` program `no-such-program-diakonos` not found in PATH",
            at("noprog.service")
        ),
        format!(
            "{}4:12: `ExecStop` program {} is not executable",
            at("noexec.service"),
            h.units.join("app/stop.sh").display()
        ),
        format!(
            "{}3:8: unknown User `no-such-user-diakonos`",
            at("nouser.service")
        ),
        format!(
            "{}3:20: WorkingDirectory /nonexistent/diakonos does not exist",
            at("nodir.service")
        ),
    ] {
        assert!(err.contains(&expected), "missing {expected:?} in:\n{err}");
    }
    assert!(err.contains("4 of 4 unit(s)"), "{err}");
    // Each hint says what fixes that problem: a file that is there needs chmod, not installing.
    let hint_after = |what: &str| {
        let at = err
            .find(what)
            .unwrap_or_else(|| panic!("{what:?} not in:\n{err}"));
        err[at..].lines().next().unwrap_or_default().to_owned()
    };
    assert!(
        hint_after("is not executable").contains("hint: make it executable (chmod +x)"),
        "{err}"
    );
    assert!(
        hint_after("not found in PATH").contains("hint: install it"),
        "{err}"
    );

    // Made executable, the relative ExecStop is found against WorkingDirectory;
    // a program on the unit's own PATH is found too.
    fs::set_permissions(
        h.units.join("app/stop.sh"),
        fs::Permissions::from_mode(0o755),
    )
    .expect("chmod");
    h.unit(
        "ownpath",
        "[service]\nExecStart = \"stop.sh\"\nEnvironment = [\"PATH=app:/usr/bin:/bin\"]\n",
    );
    h.ok(&["verify", "noexec", "ownpath"]);
    assert_eq!(h.daemon_pid(), None, "verify started a daemon");
}

/// Writes an executable `#!/bin/sh` script at `path` with `mode`.
fn script(path: &std::path::Path, mode: u32) {
    fs::create_dir_all(path.parent().expect("a parent")).expect("mkdir");
    fs::write(path, "#!/bin/sh\nexec sleep 1000\n").expect("write a script");
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).expect("chmod");
}

#[test]
fn verify_looks_programs_up_on_the_daemons_path() {
    // With a daemon of the directory running, `verify` finds ExecStart on the
    // PATH the daemon gives services, not on its own.
    let h = Home::new("verify_looks_programs_up_on_the_daemons_path");
    let (daemon_bin, client_bin) = (h.root.join("daemon-bin"), h.root.join("client-bin"));
    script(&daemon_bin.join("only-daemon-has-it"), 0o755);
    script(&client_bin.join("only-client-has-it"), 0o755);
    h.unit("a", "[service]\nExecStart = \"only-daemon-has-it\"\n");
    h.unit("b", "[service]\nExecStart = \"only-client-has-it\"\n");
    let path = |extra: &std::path::Path| format!("{}:/usr/bin:/bin", extra.display());
    // The daemon is started by this command, with this PATH.
    let mut start = h.command(&["start", "a"]);
    start.env("PATH", path(&daemon_bin));
    let out = h.run(start);
    assert!(out.status.success(), "{}", stderr(&out));
    let mut verify = h.command(&["verify"]);
    verify.env("PATH", path(&client_bin));
    let out = h.run(verify);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("`ExecStart` program `only-client-has-it` not found in PATH"),
        "{err}"
    );
    assert!(err.contains(&daemon_bin.display().to_string()), "{err}");
    assert!(!err.contains("only-daemon-has-it"), "{err}");
}

/// A tmpfs mounted `noexec` at `dir`, unmounted when dropped.
struct NoexecMount(std::path::PathBuf);

impl NoexecMount {
    fn at(dir: std::path::PathBuf) -> NoexecMount {
        fs::create_dir_all(&dir).expect("mkdir the mount point");
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "noexec", "tmpfs"])
            .arg(&dir)
            .output()
            .expect("run mount");
        assert!(
            out.status.success(),
            "mount a noexec tmpfs: {}",
            stderr(&out)
        );
        NoexecMount(dir)
    }
}

impl Drop for NoexecMount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

#[test]
fn a_program_on_a_noexec_mount_is_named_by_verify_and_by_status() {
    // As root: a program whose mode bits allow it, on a file system mounted noexec, is an error of `verify` saying so, and a start of it fails with that reason rather than a bare "permission denied".
    assert!(
        nix::unistd::Uid::effective().is_root(),
        "this test must run as root (CI runs as root): it mounts a tmpfs"
    );
    let h = Home::new("a_program_on_a_noexec_mount_is_named");
    let mount = NoexecMount::at(h.root.join("nx"));
    let program = mount.0.join("run.sh");
    script(&program, 0o755);
    h.unit(
        "nx",
        &format!("[service]\nExecStart = \"{}\"\n", program.display()),
    );
    let err = h.fails(1, &["verify"]);
    let expected = format!(
        "{}:2:13: `ExecStart` program {} is on a file system mounted noexec",
        h.units.join("nx.service").display(),
        program.display()
    );
    assert!(err.contains(&expected), "missing {expected:?} in:\n{err}");
    assert!(
        err.contains("hint: move it to a file system that allows programs"),
        "{err}"
    );
    // A simple service is up once cloned: `start` may say so before its
    // exec fails; either way the unit ends failed with the reason.
    let _ = h.cmd(&["start", "nx"]);
    h.wait_state("nx", "failed");
    let status = h.ok(&["status", "nx"]);
    assert!(
        status.contains("its file system is mounted noexec"),
        "{status}"
    );
    drop(mount);
}

#[test]
fn verify_checks_that_the_user_may_execute_the_program() {
    // As root: a program only root may run, or one in a directory the
    // User cannot enter, is an error at ExecStart naming the user.
    assert!(
        nix::unistd::Uid::effective().is_root(),
        "this test must run as root (CI runs as root)"
    );
    let h = Home::new("verify_checks_that_the_user_may_execute_the_program");
    let bin = h.root.join("bin");
    crate::util::world_writable(&bin);
    script(&bin.join("root-only"), 0o700);
    script(&bin.join("for-all"), 0o755);
    script(&bin.join("closed/for-all"), 0o755);
    fs::set_permissions(bin.join("closed"), fs::Permissions::from_mode(0o700)).expect("chmod");
    let unit = |name: &str, program: &str| {
        h.unit(
            name,
            &format!(
                "[service]\nUser = \"nobody\"\nExecStart = \"{}\"\n",
                bin.join(program).display()
            ),
        )
    };
    unit("rootonly", "root-only");
    unit("closed", "closed/for-all");
    unit("fine", "for-all");
    let err = h.fails(1, &["verify"]);
    let at = |file: &str| format!("{}:3:13:", h.units.join(file).display());
    let rootonly = format!(
        "{} `ExecStart` program {} is not executable by User `nobody`",
        at("rootonly.service"),
        bin.join("root-only").display()
    );
    let closed = format!(
        "{} `ExecStart` program {} is out of reach of User `nobody`",
        at("closed.service"),
        bin.join("closed/for-all").display()
    );
    assert!(err.contains(&rootonly), "{err}");
    assert!(err.contains(&closed), "{err}");
    assert!(!err.contains("fine.service"), "{err}");
    // Root itself may run both.
    h.unit(
        "rootonly",
        &format!(
            "[service]\nExecStart = \"{}\"\n",
            bin.join("root-only").display()
        ),
    );
    h.unit(
        "closed",
        &format!(
            "[service]\nExecStart = \"{}\"\n",
            bin.join("closed/for-all").display()
        ),
    );
    h.ok(&["verify"]);
}

#[test]
fn verify_accepts_notify_with_another_user() {
    // Type = "notify" with another User works now (a root daemon's notify
    // socket is outside its home, open to every user): verify says nothing.
    assert!(
        nix::unistd::Uid::effective().is_root(),
        "this test needs root to name another User (CI runs as root)"
    );
    let h = Home::new("verify_accepts_notify_with_another_user");
    h.unit(
        "pg",
        "[service]\nType = \"notify\"\nExecStart = \"sleep 1000\"\nUser = \"nobody\"\n",
    );
    h.ok(&["verify", "pg"]);
}

#[test]
fn exec_start_expands_environment_variables_like_systemd() {
    // ${A} is one word, $B splits on whitespace, $$ is a literal `$`, unset is empty; verify warns on the unset one.
    let h = Home::new("exec_start_expands_environment_variables");
    h.unit(
        "vars",
        "[service]\nType = \"oneshot\"\nExecStart = \"printf '%s|' ${A} $B $$C pre${UNSET}post $UNSET\"\nEnvironment = [\"A=x  y\", \"B=1 2\"]\n",
    );
    let out = h.cmd(&["verify", "vars"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let warning = format!(
        "warning: {}:3:13: `ExecStart` uses $UNSET",
        h.units.join("vars.service").display()
    );
    assert_eq!(
        stderr(&out).matches(&warning).count(),
        1,
        "{}",
        stderr(&out)
    );
    h.ok(&["start", "vars"]);
    let log = fs::read_to_string(h.home.join("logs/vars.log")).expect("log");
    assert_eq!(log, "x  y|1|2|$C|prepost|");
    // The daemon says so too, in its log.
    h.wait_until("daemon.log to warn about $UNSET", WAIT, || {
        fs::read_to_string(h.home.join("daemon.log")).is_ok_and(|l| l.contains("uses $UNSET"))
    });
}

#[test]
fn systemd_spellings_load_and_run() {
    // [Unit]/[Service] and time spans as strings work end to end: "200ms" is the restart delay.
    let h = Home::new("systemd_spellings_load_and_run");
    h.unit(
        "web",
        &format!(
            "[Unit]\nDescription = \"systemd style\"\nStartLimitIntervalSec = \"1min\"\n[Service]\nExecStart = {}\nRestartSec = \"200ms\"\nTimeoutStopSec = \"5s\"\nTimeoutStartSec = \"infinity\"\n",
            sh("echo $$ >> starts; [ $(wc -l < starts) -ge 2 ] && exec sleep 1000; exit 1")
        ),
    );
    h.ok(&["verify"]);
    h.ok(&["start", "web"]);
    h.wait_until("web to be relaunched and stay up", WAIT, || {
        h.lines("starts").len() == 2 && h.state("web") == "running"
    });
    let status = h.ok(&["status", "web"]);
    assert!(status.contains("systemd style"), "{status}");
}

#[test]
fn list_keeps_an_invalid_units_row_to_one_short_line() {
    // An invalid unit's row shows its error's first line, without the list of valid keys, clipped.
    let h = Home::new("list_keeps_an_invalid_units_row_short");
    h.unit(
        "typo",
        "[service]\nExecStart = \"sleep 1000\"\nRestrat = \"no\"\n",
    );
    let out = h.ok(&["--no-color", "list"]);
    let row = out
        .lines()
        .find(|l| l.starts_with("typo"))
        .unwrap_or_else(|| panic!("no typo row in:\n{out}"));
    assert!(row.contains("invalid"), "{row}");
    assert!(
        row.contains(
            "typo.service:3:1: unknown key `Restrat` in [service]; did you mean `Restart`?"
        ),
        "{row}"
    );
    assert!(!row.contains("LogMaxFiles"), "{row}");
    assert!(row.chars().count() < 140, "{row}");
}

#[test]
fn a_running_unit_whose_file_broke_says_so_in_list() {
    // A running unit's file gets a typo and `reload` names it: the unit keeps running its previous definition, and its `list` row says the file no longer loads (not its plain description).
    let h = Home::new("running_unit_whose_file_broke");
    h.unit(
        "web",
        "[unit]\nDescription = \"the web\"\n[service]\nExecStart = \"sleep 1000\"\n",
    );
    h.ok(&["start", "web"]);
    h.unit(
        "web",
        "[service]\nExecStart = \"sleep 1000\"\nRestrat = \"no\"\n",
    );
    assert!(h.fails(1, &["reload"]).contains("web"));
    let out = h.ok(&["--no-color", "list"]);
    let row = out
        .lines()
        .find(|l| l.starts_with("web"))
        .unwrap_or_default();
    assert!(
        row.contains("running")
            && row.contains("(its file no longer loads: `diakonos status` says why)"),
        "{out}"
    );
    let status = h.ok(&["status", "web"]);
    assert!(status.contains("unknown key `Restrat`"), "{status}");
}

#[test]
fn reload_exits_1_naming_invalid_units_and_applies_the_rest() {
    // `reload` with a broken unit adds the good ones, names the bad ones, and exits 1 (also when nothing else changed).
    let h = Home::new("reload_exits_1_naming_invalid_units");
    h.unit("web", SLEEPER);
    h.ok(&["list"]);
    h.unit("good", SLEEPER);
    h.unit(
        "bad",
        "[service]\nExecStart = \"sleep 1000\"\nRestrat = \"no\"\n",
    );
    let out = h.cmd(&["reload"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stdout(&out).contains("added: good"), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("did not load: bad"),
        "{}",
        stderr(&out)
    );
    h.ok(&["start", "good"]);
    let err = h.fails(1, &["reload"]);
    assert!(err.contains("did not load: bad"), "{err}");
    fs::remove_file(h.units.join("bad.service")).expect("rm bad");
    h.ok(&["reload"]);
}

#[test]
fn no_daemon_starts_on_a_missing_default_service_dir() {
    // With no ./services and no --service-dir, a command is refused and no daemon starts on the missing dir.
    let h = Home::new("no_daemon_starts_on_a_missing_default_dir");
    let home = h.home.display().to_string();
    let out = h.bare(&["--home", &home, "list"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&h.root.join("services").display().to_string())
            && err.contains("does not exist"),
        "{err}"
    );
    assert!(err.contains("--service-dir"), "{err}");
    assert_eq!(h.daemon_pid(), None, "a daemon was started");
    let out = h.bare(&["--home", &home, "daemon"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(h.daemon_pid(), None, "a daemon was started");
    // Named, the real directory works at once.
    h.unit("web", SLEEPER);
    h.ok(&["list"]);
}

#[test]
fn another_service_dir_error_says_how_to_switch() {
    // The "daemon manages another directory" error says to `diakonos kill` or use another --home.
    let h = Home::new("another_service_dir_error_says_how_to_switch");
    fs::create_dir(h.root.join("other")).expect("mkdir other");
    h.ok(&["list"]);
    let home = h.home.display().to_string();
    let out = h.bare(&["--home", &home, "--service-dir", "other", "list"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("diakonos kill"), "{err}");
    assert!(err.contains("another --home"), "{err}");
}

#[test]
fn a_unit_file_written_after_the_load_is_listed_and_start_loads_it() {
    // A new file in the service dir is not a unit until something loads it:
    // `list` shows every file (SPEC §5), the new one `inactive`, a broken new
    // one `invalid` with file:line:column, both "not loaded yet"; `status`
    // says so. `start` loads new files first (as systemd loads a unit on
    // demand): the new unit runs, with a new unit it Requires; `start
    // --all` starts them and leaves the broken one out. Loaded units are
    // not re-read by it.
    let h = Home::new("a_unit_file_written_after_the_load");
    h.unit("web", "[service]\nExecStart = \"sleep 1000\"\n");
    h.ok(&["start", "web"]);
    let web = h.pid("web");
    h.unit("web", "[service]\nExecStart = \"sleep 1001\"\n");
    h.unit("fresh", "[service]\nExecStart = \"sleep 1000\"\n");
    h.unit(
        "broken",
        "[service]\nRestrat = \"no\"\nExecStart = \"sleep 1\"\n",
    );
    h.wait_until("both new files listed", WAIT, || {
        h.json_list().as_array().is_some_and(|a| a.len() == 3)
    });
    assert!(h.fails(1, &["status", "fresh"]).contains("not loaded yet"));
    let names = h.listed_names();
    assert_eq!(names, ["broken", "fresh", "web"]);
    assert_eq!(h.unit_json("fresh")["state"], "inactive");
    let broken = h.unit_json("broken");
    assert_eq!(broken["state"], "invalid", "{broken}");
    let reason = broken["reason"].as_str().unwrap_or_default();
    assert!(
        reason.starts_with("not loaded yet: ")
            && reason.contains("broken.service:2:1")
            && reason.contains("Restart"),
        "{reason}"
    );
    let plain = h.ok(&["list"]);
    assert!(
        plain.lines().any(|l| l.starts_with("fresh ")
            && l.contains("inactive")
            && l.contains("(not loaded yet: `diakonos reload` loads it)")),
        "{plain}"
    );
    h.ok(&["start", "fresh"]);
    assert_eq!(h.state("fresh"), "running");
    // web's edit was not applied by it: still changed on disk, same process.
    let u = h.unit_json("web");
    assert_eq!(
        (&u["pid"], &u["changed_on_disk"]),
        (&web.into(), &true.into()),
        "{u}"
    );
    let err = h.fails(1, &["start", "broken"]);
    assert!(err.contains("broken.service:2:1"), "{err}");
    // Written and started at once (before the daemon saw the file), with a new dependency.
    h.unit("dep", "[service]\nExecStart = \"sleep 1000\"\n");
    h.unit(
        "top",
        "[unit]\nRequires = [\"dep\"]\n[service]\nExecStart = \"sleep 1000\"\n",
    );
    h.ok(&["start", "top"]);
    assert_eq!(
        (h.state("top"), h.state("dep")),
        ("running".into(), "running".into())
    );
    h.unit("later", "[service]\nExecStart = \"sleep 1000\"\n");
    h.wait_until("later listed", WAIT, || {
        h.json_list()
            .as_array()
            .is_some_and(|a| a.iter().any(|u| u["name"] == "later"))
    });
    let out = h.cmd(&["start", "--all"]);
    let said = format!("{}{}", crate::util::stdout(&out), crate::util::stderr(&out));
    assert!(said.contains("broken: left out (invalid)"), "{said}");
    assert_eq!(h.state("later"), "running", "{said}");
}

#[test]
fn a_unit_file_changed_on_disk_is_flagged_until_reload() {
    // Editing a loaded unit's file: list, status and JSON say so; reload clears it; other units are not flagged.
    let h = Home::new("a_unit_file_changed_on_disk_is_flagged");
    h.unit("web", "[service]\nExecStart = \"sleep 1000\"\n");
    h.unit("db", "[service]\nExecStart = \"sleep 1000\"\n");
    h.ok(&["start", "web"]);
    assert_eq!(h.unit_json("web")["changed_on_disk"], false);
    // Not db's files here (before web's edit: the watch reads in order).
    for other in ["db@not-this-host.service", ".#db.service"] {
        std::fs::write(h.units.join(other), "[service]\nExecStart = \"sleep 3\"\n").expect("write");
    }
    h.unit("web", "[service]\nExecStart = \"sleep 2000\"\n");
    h.wait_until("web flagged", WAIT, || {
        h.unit_json("web")["changed_on_disk"] == true
    });
    assert_eq!(h.unit_json("db")["changed_on_disk"], false);
    let list = h.ok(&["list"]);
    let row = list
        .lines()
        .find(|l| l.starts_with("web"))
        .expect("a web row");
    assert!(
        row.contains("changed on disk: run `diakonos reload`"),
        "{list}"
    );
    let status = h.ok(&["status", "web"]);
    assert!(
        status.contains("changed on disk: run `diakonos reload`"),
        "{status}"
    );
    h.ok(&["reload"]);
    assert_eq!(h.unit_json("web")["changed_on_disk"], false);
}

#[test]
fn a_linked_unit_file_made_after_the_load_is_listed() {
    // A unit file that is a link is made whole (no write, so no close after writing): `list` shows it at once all the same, a link to a good file `inactive`, a dangling one `invalid`, both "not loaded yet".
    let h = Home::new("a_linked_unit_file_made_after_the_load_is_listed");
    h.unit("web", "[service]\nExecStart = \"sleep 1000\"\n");
    h.ok(&["list"]);
    let target = h.root.join("elsewhere.service");
    fs::write(&target, "[service]\nExecStart = \"sleep 1000\"\n").expect("write");
    std::os::unix::fs::symlink(&target, h.units.join("linked.service")).expect("link");
    std::os::unix::fs::symlink(h.root.join("missing"), h.units.join("dangling.service"))
        .expect("link");
    h.wait_until("both links listed", WAIT, || {
        h.json_list().as_array().is_some_and(|a| a.len() == 3)
    });
    let linked = h.unit_json("linked");
    assert_eq!(linked["state"], "inactive", "{linked}");
    let dangling = h.unit_json("dangling");
    assert_eq!(dangling["state"], "invalid", "{dangling}");
    let reason = dangling["reason"].as_str().unwrap_or_default();
    assert!(reason.starts_with("not loaded yet: "), "{reason}");
}
