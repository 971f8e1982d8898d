//! `start` and `restart` come back at the first failed attempt (exit 1,
//! naming the unit and the reason) while the restart policy goes on in the
//! background, as `systemctl start` does; `status` then says why the unit
//! is restarting and when it tries again. Launches are counted in a marker
//! file (`starts`), one line per launch.

use std::time::Duration;

use serde_json::json;

use crate::util::{alive, sh, Home, WAIT};

/// Restarts of a slowly failing unit take seconds each on a loaded box.
const LOOP_WAIT: Duration = Duration::from_secs(40);

/// A unit that appends its pid to `starts` at each launch, then runs `then`.
/// It is restarted on failure after `restart_sec` and never hits the start limit.
fn looping(h: &Home, name: &str, kind: &str, extra: &str, restart_sec: u32, then: &str) {
    h.unit(
        name,
        &format!(
            "[unit]\nStartLimitBurst = 1000\n[service]\nType = \"{kind}\"\nRestart = \"on-failure\"\nRestartSec = {restart_sec}\n{extra}ExecStart = {}\n",
            sh(&format!("echo $$ >> starts; {then}"))
        ),
    );
}

/// Waits until the unit has been launched at least `n` times.
fn wait_launches(h: &Home, n: usize) {
    h.wait_until(&format!("{n} launches"), LOOP_WAIT, || {
        h.lines("starts").len() >= n
    });
}

#[test]
fn start_of_a_slowly_failing_oneshot_returns_at_the_first_failure() {
    // A oneshot failing after 1 s: start exits 1 naming it and why; restarts go on.
    let h = Home::new("start_of_a_slowly_failing_oneshot_returns");
    looping(&h, "migrate", "oneshot", "", 0, "sleep 1; exit 3");
    let err = h.fails(1, &["start", "migrate"]);
    assert!(
        err.contains("cannot start migrate: exited with code 3"),
        "{err}"
    );
    assert!(err.contains("restarting in the background"), "{err}");
    wait_launches(&h, 3);
}

#[test]
fn status_shows_why_a_unit_restarts_and_its_next_attempt() {
    // While restarting after a failure: the reason, the real last exit, the attempt and when.
    let h = Home::new("status_shows_why_a_unit_restarts");
    looping(&h, "migrate", "oneshot", "", 20, "sleep 1; exit 3");
    h.fails(1, &["start", "migrate"]);
    // The job answered as the unit went restarting; the next launch is 20 s away.
    let v = h.status_json("migrate");
    assert_eq!(v["state"], "restarting", "{v}");
    assert_eq!(v["reason"], "exited with code 3", "{v}");
    assert_eq!(v["last_exit"], json!({"code": 3}), "{v}");
    assert_eq!(v["next_attempt"], 2, "{v}");
    let secs = v["next_attempt_secs"].as_f64().unwrap_or(-1.0);
    assert!(secs > 0.0 && secs <= 20.0, "{v}");
    let text = h.ok(&["status", "migrate"]);
    assert!(text.contains("restarting (next attempt in "), "{text}");
    assert!(text.contains("s, attempt 2)"), "{text}");
    assert!(text.contains("reason:      exited with code 3"), "{text}");
    assert!(text.contains("last exit:   code 3"), "{text}");
    assert_eq!(h.unit_json("migrate")["reason"], "exited with code 3");
    assert_eq!(h.lines("starts").len(), 1);
}

#[test]
fn start_of_a_notify_service_that_never_says_ready_returns_at_the_timeout() {
    // No READY=1 within TimeoutStartSec = 1: start exits 1 with "start timed out"; restarts go on.
    let h = Home::new("start_of_a_notify_service_that_never_says_ready");
    looping(
        &h,
        "quiet",
        "notify",
        "TimeoutStartSec = 1\n",
        1,
        "exec sleep 100",
    );
    let err = h.fails(1, &["start", "quiet"]);
    assert!(err.contains("cannot start quiet: start timed out"), "{err}");
    wait_launches(&h, 2);
    h.wait_until("quiet restarting with its reason", LOOP_WAIT, || {
        let u = h.unit_json("quiet");
        u["state"] == "restarting" && u["reason"] == "start timed out"
    });
}

#[test]
fn start_of_a_forking_service_whose_starter_fails_returns() {
    // The forking start command exits 4 after a while: start exits 1 naming it; restarts go on.
    let h = Home::new("start_of_a_forking_service_whose_starter_fails");
    looping(&h, "forker", "forking", "", 1, "sleep 1; exit 4");
    let err = h.fails(1, &["start", "forker"]);
    assert!(
        err.contains("cannot start forker: exited with code 4"),
        "{err}"
    );
    wait_launches(&h, 2);
}

#[test]
fn restart_returns_at_the_first_failure_too() {
    // A oneshot that worked, then fails: restart exits 1 naming it; restarts go on.
    let h = Home::new("restart_returns_at_the_first_failure_too");
    looping(
        &h,
        "job",
        "oneshot",
        "RemainAfterExit = true\n",
        1,
        "if [ -e broken ]; then sleep 1; exit 5; fi",
    );
    h.ok(&["start", "job"]);
    assert_eq!(h.state("job"), "running");
    std::fs::write(h.path("broken"), "").expect("write the marker");
    let err = h.fails(1, &["restart", "job"]);
    assert!(
        err.contains("cannot restart job: exited with code 5"),
        "{err}"
    );
    wait_launches(&h, 3);
}

#[test]
fn start_of_several_units_names_the_one_that_failed() {
    // One of two units fails its first attempt: exit 1 naming it and not the other.
    let h = Home::new("start_of_several_units_names_the_one_that_fa");
    looping(&h, "migrate", "oneshot", "", 1, "sleep 1; exit 3");
    h.unit("web", "[service]\nExecStart = \"sleep 1000\"\n");
    let out = h.cmd(&["start", "web", "migrate"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("cannot start migrate: exited with code 3"),
        "{err}"
    );
    assert!(!err.contains("web"), "{err}");
    assert_eq!(h.state("web"), "running");
}

#[test]
fn start_fails_when_a_required_unit_fails_its_attempt() {
    // worker Requires a database that fails: start worker exits 1 naming the database and why.
    let h = Home::new("start_fails_when_a_required_unit_fails_its_a");
    looping(&h, "database", "oneshot", "", 1, "sleep 1; exit 7");
    h.unit(
        "worker",
        "[unit]\nRequires = [\"database\"]\n[service]\nExecStart = \"sleep 1000\"\n",
    );
    let err = h.fails(1, &["start", "worker"]);
    assert!(
        err.contains("cannot start worker: dependency database failed: exited with code 7"),
        "{err}"
    );
    assert_eq!(h.state("worker"), "waiting");
}

#[test]
fn a_pid_file_is_read_by_its_first_line_as_postgres_writes_it() {
    // postgres's postmaster.pid holds the pid, then the data dir, the port ...; systemd takes the first line.
    let h = Home::new("a_pid_file_is_read_by_its_first_line");
    h.unit(
        "pg",
        &format!(
            "[service]\nType = \"forking\"\nPIDFile = \"pid\"\nExecStart = {}\n",
            sh("sleep 1000 </dev/null & printf '%s\\n/data\\n5432\\n' $! > pid")
        ),
    );
    let out = h.cmd(&["start", "pg"]);
    let main: i32 = h
        .lines("pid")
        .first()
        .and_then(|l| l.trim().parse().ok())
        .expect("the start command wrote its pid file");
    h.remember(main);
    assert!(
        out.status.success(),
        "start failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(h.pid("pg"), main);
}

#[test]
fn a_forking_start_that_fails_on_its_pid_file_leaves_nothing_running() {
    // The start command leaves a process in its own session (as pg_ctl does), then writes a PIDFile that names no pid.
    let h = Home::new("a_forking_start_that_fails_on_its_pid_file");
    h.unit(
        "fk",
        &format!(
            "[service]\nType = \"forking\"\nRestart = \"no\"\nPIDFile = \"pid\"\nExecStart = {}\n",
            sh("setsid sleep 1000 </dev/null & echo $! > left; sleep 0.3; echo garbage > pid")
        ),
    );
    h.fails(1, &["start", "fk"]);
    let left: i32 = h
        .lines("left")
        .first()
        .and_then(|l| l.trim().parse().ok())
        .expect("the start command wrote the pid it left");
    h.remember(left);
    h.wait_until(
        "the process the failed start left to be gone",
        Duration::from_secs(10),
        || !crate::util::alive(left),
    );
}

#[test]
fn the_daemon_answers_while_it_looks_for_a_forking_main_process() {
    // The starter leaves two processes, so the search for the main process
    // never settles and gives up after 1 s: meanwhile the daemon answers
    // (the unit is starting, with no pid yet), then the start fails naming
    // the leftovers, which are stopped.
    let h = Home::new("the_daemon_answers_while_it_looks_for_a_fo");
    h.unit(
        "f",
        &format!(
            "[service]\nType = \"forking\"\nExecStart = {}\n",
            sh("sleep 1000 < /dev/null > /dev/null 2>&1 & \
                sleep 1000 < /dev/null > /dev/null 2>&1 & \
                echo $! > left; exit 0")
        ),
    );
    h.ok(&["list"]);
    std::thread::scope(|s| {
        let start = s.spawn(|| h.cmd(&["start", "f"]));
        h.wait_until(
            "f to be starting with no pid (looking for its main process)",
            Duration::from_secs(20),
            || {
                let u = h.unit_json("f");
                u["state"] == "starting" && u["pid"].is_null() && !h.lines("left").is_empty()
            },
        );
        let out = start.join().expect("the start client thread");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(
            err.contains("2 processes were left after the start command exited"),
            "{err}"
        );
    });
    let left: i32 = h.lines("left")[0].parse().expect("a pid");
    h.remember(left);
    h.wait_until("the leftovers to be stopped", crate::util::WAIT, || {
        crate::util::gone(left)
    });
}

#[test]
fn a_program_that_moved_since_its_last_start_is_found_again_or_reported() {
    // Where a program was found on PATH is remembered, and the daemon does
    // not wait for each exec: a remembered place that stopped working is
    // looked up again by the child, and what is gone everywhere is still
    // reported by `start`, from the exec's outcome.
    use std::os::unix::fs::PermissionsExt;
    let h = Home::new("a_program_that_moved_since_its_last_start");
    let (a, b) = (h.path("bin-a"), h.path("bin-b"));
    std::fs::create_dir_all(&a).unwrap();
    std::fs::create_dir_all(&b).unwrap();
    let tool = a.join("dk-moving-tool");
    std::fs::write(&tool, "#!/bin/sh\necho $$ >> launches\nexec sleep 1000\n").unwrap();
    std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();
    h.unit(
        "mover",
        &format!(
            "[service]\nExecStart = \"dk-moving-tool\"\nEnvironment = [\"PATH={}:{}:/usr/bin:/bin\"]\n",
            a.display(),
            b.display()
        ),
    );
    h.ok(&["start", "mover"]);
    h.wait_lines("launches", 1);
    h.ok(&["stop", "mover"]);
    std::fs::rename(&tool, b.join("dk-moving-tool")).unwrap();
    h.ok(&["start", "mover"]);
    h.wait_lines("launches", 2);
    h.ok(&["stop", "mover"]);
    std::fs::remove_file(b.join("dk-moving-tool")).unwrap();
    let err = h.fails(1, &["start", "mover"]);
    assert!(
        err.contains("mover") && err.contains("`dk-moving-tool` not found in PATH"),
        "{err}"
    );
    assert_eq!(h.state("mover"), "failed");
    // Back in place: it starts again.
    std::fs::write(&tool, "#!/bin/sh\necho $$ >> launches\nexec sleep 1000\n").unwrap();
    std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();
    h.ok(&["start", "mover"]);
    h.wait_lines("launches", 3);
}

#[test]
fn a_missing_working_directory_is_reported_by_start_after_a_first_run() {
    // chdir happens in the child after the fork: its failure still comes
    // back to `start` as the same one-line error.
    let h = Home::new("a_missing_working_directory_is_reported");
    let dir = h.path("work");
    std::fs::create_dir_all(&dir).unwrap();
    h.unit(
        "w",
        &format!(
            "[service]\nWorkingDirectory = \"{}\"\nExecStart = \"sleep 1000\"\n",
            dir.display()
        ),
    );
    h.ok(&["start", "w"]);
    h.ok(&["stop", "w"]);
    std::fs::remove_dir(&dir).unwrap();
    let err = h.fails(1, &["start", "w"]);
    assert!(
        err.contains("WorkingDirectory") && err.contains("does not exist"),
        "{err}"
    );
    assert_eq!(h.state("w"), "failed");
}

#[test]
fn a_unit_that_exits_right_after_its_exec_does_not_fail_a_start_of_many() {
    // A simple unit is up once spawned: one that exits just after its
    // exec, while the others are still exec'ing, was up like them and
    // fails afterwards.
    let h = Home::new("a_unit_that_exits_right_after_its_exec");
    let mut names = vec!["quick".to_owned()];
    h.unit(
        "quick",
        "[service]\nExecStart = \"sh -c 'exit 2'\"\nRestart = \"no\"\n",
    );
    for i in 0..30 {
        let name = format!("s{i}");
        h.unit(&name, "[service]\nExecStart = \"sleep 1000\"\n");
        names.push(name);
    }
    let mut args = vec!["start"];
    args.extend(names.iter().map(String::as_str));
    let out = h.ok(&args);
    assert!(out.contains("quick: running"), "{out}");
    h.wait_state("quick", "failed");
    assert_eq!(h.state("s29"), "running");
}

#[test]
fn a_log_that_cannot_be_opened_fails_the_start_naming_it() {
    // The child opens the service's log: when it cannot (here a directory
    // stands where the file goes), `start` fails and says which log and why.
    let h = Home::new("a_log_that_cannot_be_opened_fails_the_start_naming_it");
    h.unit("blocked", "[service]\nExecStart = \"sleep 1000\"\n");
    std::fs::create_dir_all(h.home.join("logs/blocked.log")).expect("mkdir");
    let err = h.fails(1, &["start", "blocked"]);
    assert!(
        err.contains("cannot open log") && err.contains("blocked.log") && err.contains("directory"),
        "{err}"
    );
    assert_eq!(h.state("blocked"), "failed");
}

#[test]
fn a_log_the_daemon_cannot_open_fails_the_start() {
    // The daemon opens an existing log (the child only puts it at 1 and
    // 2): a link to a missing directory and a FIFO nothing reads fail
    // `start` itself (a unit is up once spawned: a child's failure would
    // come after `start` said it is up). A new log is the child's to make.
    let h = Home::new("a_log_the_daemon_cannot_open");
    let logs = h.home.join("logs");
    std::fs::create_dir_all(&logs).expect("mkdir logs");
    for name in ["dangling", "fifo", "fresh"] {
        h.unit(name, "[service]\nExecStart = \"sleep 1000\"\n");
    }
    std::os::unix::fs::symlink(h.path("no-such-dir/x.log"), logs.join("dangling.log"))
        .expect("symlink");
    nix::unistd::mkfifo(&logs.join("fifo.log"), nix::sys::stat::Mode::S_IRWXU).expect("mkfifo");
    let err = h.fails(1, &["start", "dangling"]);
    assert!(
        err.contains("cannot open log") && err.contains("dangling.log"),
        "{err}"
    );
    let err = h.fails(1, &["start", "fifo"]);
    assert!(err.contains("fifo.log") && err.contains("FIFO"), "{err}");
    assert_eq!(h.state("fifo"), "failed");
    h.ok(&["start", "fresh"]);
    h.wait_until("the new log", crate::util::WAIT, || {
        logs.join("fresh.log").is_file()
    });
}

#[test]
fn with_spawn_vfork_asked_services_start_and_exec_errors_are_reported() {
    // DIAKONOS_SPAWN_VFORK=1 (for valgrind): the same child runs as a vfork;
    // a unit runs, and one whose program is missing fails naming it.
    let h = Home::new("with_spawn_vfork_asked_services_start_and_exec_errors_are_reported");
    h.unit("fine", "[service]\nExecStart = \"sleep 1000\"\n");
    h.unit("gone", "[service]\nExecStart = \"/nonexistent/gone\"\n");
    let mut start = h.command(&["start", "fine"]);
    start.env("DIAKONOS_SPAWN_VFORK", "1");
    let out = h.run(start);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(h.state("fine"), "running");
    let err = h.fails(1, &["start", "gone"]);
    assert!(err.contains("`/nonexistent/gone` not found"), "{err}");
    let daemon = h.daemon_pid().expect("daemon pid");
    let env = std::fs::read(format!("/proc/{daemon}/environ")).expect("environ");
    assert!(
        env.split(|&b| b == 0)
            .any(|v| v == b"DIAKONOS_SPAWN_VFORK=1"),
        "the daemon runs with the vfork asked for"
    );
}

#[test]
fn a_start_timeout_while_the_main_process_is_looked_for_ends_the_start() {
    // A forking starter leaves two processes (the daemon looks for the main one for up to 1 s) and
    // TimeoutStartSec = 0.2 passes meanwhile: start returns 1, the daemon still answers (it used to
    // spin at 100% CPU), and the processes left are killed.
    let h = Home::new("a_start_timeout_while_the_main_process_is_looked_for");
    h.unit(
        "forker",
        &format!(
            "[service]\nType = \"forking\"\nTimeoutStartSec = 0.2\nExecStart = {}\n",
            sh("sleep 100 & echo $! >> kids; sleep 100 & echo $! >> kids; exit 0")
        ),
    );
    let err = h.fails(1, &["start", "forker"]);
    assert!(err.contains("cannot start forker"), "{err}");
    assert_eq!(h.state("forker"), "failed");
    let kids: Vec<i32> = h
        .lines("kids")
        .iter()
        .filter_map(|l| l.trim().parse().ok())
        .collect();
    assert_eq!(kids.len(), 2, "{kids:?}");
    h.wait_until("the processes the starter left to be killed", WAIT, || {
        !kids.iter().any(|&k| alive(k))
    });
}

#[test]
fn a_pid_file_naming_a_process_that_is_not_the_services_is_refused_and_left_alone() {
    // A stale PIDFile naming a process the test started (not under the daemon), and one naming another unit's main process: both starts fail (after a second for the file to be rewritten), naming the pid, and neither process is signalled.
    use std::os::unix::process::CommandExt;
    let h = Home::new("a_pid_file_naming_a_process_not_the_services");
    let mut victim = std::process::Command::new("sleep")
        .arg("1000")
        .process_group(0)
        .spawn()
        .expect("spawn a victim");
    let victim_pid = victim.id() as i32;
    let forking = |name: &str, pid: i32| {
        h.unit(
            name,
            &format!(
                "[service]\nType = \"forking\"\nRestart = \"no\"\nTimeoutStartSec = 5\nPIDFile = \"{name}.pid\"\nExecStart = {}\n",
                sh(&format!("echo {pid} > {name}.pid"))
            ),
        );
    };
    forking("stale", victim_pid);
    let err = h.fails(1, &["start", "stale"]);
    let refused = |err: &str, pid: i32| {
        err.contains(&format!(
            "names pid {pid}, which is not a process of this service"
        ))
    };
    assert!(refused(&err, victim_pid), "{err}");
    h.unit("owner", "[service]\nExecStart = \"sleep 1000\"\n");
    h.ok(&["reload"]);
    h.ok(&["start", "owner"]);
    let owner = h.pid("owner");
    forking("thief", owner);
    h.ok(&["reload"]);
    let err = h.fails(1, &["start", "thief"]);
    assert!(refused(&err, owner), "{err}");
    assert_eq!(h.state("thief"), "failed");
    assert_eq!(
        (h.state("owner"), h.pid("owner")),
        ("running".to_string(), owner)
    );
    let still = victim.try_wait().expect("try_wait");
    let _ = victim.kill();
    let _ = victim.wait();
    assert!(still.is_none(), "the unrelated process was signalled");
}

#[test]
fn a_stale_pid_file_is_waited_on_until_the_daemon_rewrites_it() {
    // fk.pid still names a process that ended (an earlier run's); the daemon writes its own pid there 0.3 s after its starter exited: the start waits for it and succeeds, as systemd's does.
    let h = Home::new("a_stale_pid_file_is_waited_on");
    let mut gone = std::process::Command::new("true")
        .spawn()
        .expect("run true");
    let stale = gone.id();
    gone.wait().expect("wait for true");
    std::fs::write(h.units.join("fk.pid"), format!("{stale}\n")).expect("write a stale pid file");
    h.unit(
        "fk",
        &format!(
            "[service]\nType = \"forking\"\nRestart = \"no\"\nPIDFile = \"fk.pid\"\nExecStart = {}\n",
            sh("sleep 1000 </dev/null & p=$!; (sleep 0.3; echo $p > fk.pid) & exit 0")
        ),
    );
    let out = h.cmd(&["start", "fk"]);
    let main: i32 = h
        .lines("fk.pid")
        .first()
        .and_then(|l| l.trim().parse().ok())
        .expect("a pid");
    h.remember(main);
    assert!(out.status.success(), "{}", crate::util::stderr(&out));
    assert_eq!(h.pid("fk"), main);
}

#[test]
fn an_exec_that_fails_after_the_spawn_fails_the_unit_with_why() {
    // A simple unit is up once spawned (SPEC §6); what the daemon cannot
    // check before the clone (here an executable file that is no program:
    // no `#!`, not ELF) fails the unit just after, with the kernel's
    // reason, and is not restarted. A missing program is still `start`'s
    // own error.
    let h = Home::new("an_exec_that_fails_after_the_spawn");
    let text = executable(&h, "notes.txt", "just words\n");
    h.unit(
        "words",
        &format!("[service]\nExecStart = {text}\nRestart = \"always\"\n"),
    );
    let out = h.ok(&["start", "words"]);
    assert!(out.contains("words: running"), "{out}");
    h.wait_state("words", "failed");
    let u = h.unit_json("words");
    let reason = u["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("notes.txt") && reason.contains("Exec format error"),
        "{u}"
    );
    assert_eq!(u["restarts"], 0, "{u}");
    assert_eq!(u["last_exit"], json!({"code": 127}), "{u}");
    // A script whose interpreter is missing: named as such, not "not found".
    let script = executable(&h, "orphan.sh", "#!/nonexistent/dk-interp\necho hi\n");
    h.unit("orphan", &format!("[service]\nExecStart = {script}\n"));
    h.ok(&["start", "orphan"]);
    h.wait_state("orphan", "failed");
    let u = h.unit_json("orphan");
    assert!(
        u["reason"]
            .as_str()
            .is_some_and(|r| r.contains("interpreter")),
        "{u}"
    );
    h.unit("gone", "[service]\nExecStart = \"/nonexistent/dk-gone\"\n");
    let err = h.fails(1, &["start", "gone"]);
    assert!(err.contains("`/nonexistent/dk-gone` not found"), "{err}");
}

#[test]
fn socket_and_watchdog_units_report_a_failed_exec_as_any_unit() {
    // LISTEN_PID and WATCHDOG_PID are written by the child itself (no shim,
    // no `sh` in between): an exec that fails is the unit's failure with
    // the kernel's reason, not an exit 127 restarted until the start limit,
    // and a script without `#!` is not run by a shell.
    let h = Home::new("socket_and_watchdog_units_report_a_failed_exec");
    let exec = executable(&h, "notes.txt", "echo ran > ran\n");
    let port = crate::sockets::free_port();
    h.unit(
        "sock",
        &format!(
            "[service]\nExecStart = {exec}\nRestart = \"always\"\n[socket]\nListenStream = [\"127.0.0.1:{port}\"]\n"
        ),
    );
    h.unit(
        "dog",
        &format!("[service]\nExecStart = {exec}\nRestart = \"always\"\nWatchdogSec = 5\n"),
    );
    for name in ["sock", "dog"] {
        h.ok(&["start", name]);
        h.wait_state(name, "failed");
        let u = h.unit_json(name);
        assert!(
            u["reason"]
                .as_str()
                .is_some_and(|r| r.contains("Exec format error")),
            "{u}"
        );
        assert_eq!(u["restarts"], 0, "{u}");
    }
    assert!(!h.path("ran").exists(), "a shell ran the file");
    h.unit(
        "gone-dog",
        "[service]\nExecStart = \"/nonexistent/dk-dog\"\nWatchdogSec = 5\n",
    );
    let err = h.fails(1, &["start", "gone-dog"]);
    assert!(err.contains("`/nonexistent/dk-dog` not found"), "{err}");
}

/// An executable file `name` in the test's root holding `text`, as a TOML
/// string of its path (for ExecStart).
fn executable(h: &Home, name: &str, text: &str) -> String {
    use std::os::unix::fs::PermissionsExt;
    let path = h.path(name);
    std::fs::write(&path, text).expect("write the file");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    crate::util::toml_str(&path.display().to_string())
}
