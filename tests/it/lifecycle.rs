//! One service at a time: start, restart, logs, unit types (how stop escalates: stopping.rs).

use std::process::Output;
use std::time::{Duration, Instant};

use crate::util::{alive, gone, kill9, sh, Home, WAIT};

/// Writes `slow`, a oneshot that never exits (each launch appends its pid
/// to `starts`), and has the daemon running.
fn slow_oneshot(h: &Home) {
    h.unit(
        "slow",
        &format!(
            "[service]\nType = \"oneshot\"\nExecStart = {}\n",
            sh("echo $$ >> starts; exec sleep 1000")
        ),
    );
    h.ok(&["list"]);
}

/// Fails the test unless python3 runs (`why` the test needs it).
fn need_python3(why: &str) {
    let python = std::process::Command::new("python3")
        .args(["-c", "pass"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        python,
        "this test needs python3 {why} (.ci/run installs it)"
    );
}

/// Runs the client with `args` in a thread while `meanwhile` runs here;
/// the client's output once both are done.
fn while_running(h: &Home, args: &[&str], meanwhile: impl FnOnce()) -> Output {
    std::thread::scope(|s| {
        let client = s.spawn(|| h.cmd(args));
        meanwhile();
        client
            .join()
            .unwrap_or_else(|e| std::panic::resume_unwind(e))
    })
}

#[test]
fn start_returns_once_the_service_runs() {
    // When `start` returns, list shows it running with a live pid (no polling needed).
    let h = Home::new("start_returns_once_the_service_runs");
    h.unit("web", "[service]\nExecStart = \"sleep 1000\"\n");
    let out = h.ok(&["start", "web"]);
    assert!(out.contains("web"), "{out}");
    let u = h.unit_json("web");
    assert_eq!(u["state"], "running", "{u}");
    let pid = u["pid"].as_i64().expect("a pid") as i32;
    assert!(alive(pid), "pid {pid} is not alive right after start");
    assert_eq!(u["restarts"], 0);
}

#[test]
fn start_of_a_oneshot_returns_after_it_exited() {
    // A oneshot is up once it exited 0: start waits for that, then it is `exited`.
    let h = Home::new("start_of_a_oneshot_returns_after_it_exited");
    h.start_script(
        "migrate",
        "Type = \"oneshot\"\n",
        "sleep 0.2; echo done >> migrated",
    );
    assert_eq!(h.lines("migrated"), ["done"]);
    let u = h.unit_json("migrate");
    assert_eq!(u["state"], "exited", "{u}");
    assert!(u["pid"].is_null(), "{u}");
    assert_eq!(u["last_exit"], serde_json::json!({"code": 0}), "{u}");
}

#[test]
fn oneshot_with_remain_after_exit_stays_running_without_pid() {
    // RemainAfterExit keeps a finished oneshot `running`, with no pid.
    let h = Home::new("oneshot_with_remain_after_exit_stays_running_without_pid");
    h.start_script(
        "setup",
        "Type = \"oneshot\"\nRemainAfterExit = true\n",
        "echo done >> setup-ran",
    );
    assert_eq!(h.lines("setup-ran"), ["done"]);
    let u = h.unit_json("setup");
    assert_eq!(u["state"], "running", "{u}");
    assert!(u["pid"].is_null(), "{u}");
    h.ok(&["stop", "setup"]);
    assert_eq!(h.state("setup"), "inactive");
}

#[test]
fn oneshot_that_fails_makes_start_fail() {
    // A oneshot that exits non-zero (Restart=no) fails its start with the exit code.
    let h = Home::new("oneshot_that_fails_makes_start_fail");
    h.unit(
        "migrate",
        "[service]\nType = \"oneshot\"\nRestart = \"no\"\nExecStart = \"sh -c 'exit 4'\"\n",
    );
    let err = h.fails(1, &["start", "migrate"]);
    assert!(err.contains("migrate") && err.contains("code 4"), "{err}");
    assert_eq!(h.state("migrate"), "failed");
}

#[test]
fn start_of_a_missing_program_fails_naming_unit_and_not_found() {
    // An ExecStart that does not exist fails start (exit 1) with the unit and "not found".
    let h = Home::new("start_of_a_missing_program_fails_naming_unit_and_not_found");
    h.unit(
        "ghost",
        "[service]\nExecStart = \"/nonexistent/bin/ghostd --serve\"\n",
    );
    h.unit(
        "phantom",
        "[service]\nExecStart = \"no-such-program-diakonos-test\"\n",
    );
    for name in ["ghost", "phantom"] {
        let err = h.fails(1, &["start", name]);
        let first = err.lines().next().unwrap_or_default();
        assert!(first.contains(name), "{err}");
        assert!(first.contains("not found"), "{err}");
        let u = h.unit_json(name);
        assert_eq!(u["state"], "failed", "{u}");
        assert!(
            u["reason"]
                .as_str()
                .unwrap_or_default()
                .contains("not found"),
            "{u}"
        );
    }
}

#[test]
fn restart_gives_a_new_pid_and_resets_restarts() {
    // `restart` replaces the process and sets the restart count back to 0.
    let h = Home::new("restart_gives_a_new_pid_and_resets_restarts");
    h.unit(
        "web",
        "[service]\nRestart = \"always\"\nRestartSec = 0\nExecStart = \"sleep 1000\"\n",
    );
    h.ok(&["start", "web"]);
    let first = h.pid("web");
    kill9(first);
    h.wait_until("web to be restarted once", WAIT, || {
        let u = h.unit_json("web");
        u["restarts"] == 1 && u["state"] == "running"
    });
    let second = h.pid("web");
    assert_ne!(first, second);
    h.ok(&["restart", "web"]);
    let u = h.unit_json("web");
    assert_eq!(u["state"], "running", "{u}");
    assert_eq!(u["restarts"], 0, "{u}");
    let third = u["pid"].as_i64().expect("a pid") as i32;
    assert_ne!(third, second);
    assert!(gone(second), "old pid {second} survived restart");
    assert!(alive(third));
}

#[test]
fn start_of_a_running_unit_is_a_no_op() {
    // Starting a unit that already runs keeps the same process.
    let h = Home::new("start_of_a_running_unit_is_a_no_op");
    h.unit("web", "[service]\nExecStart = \"sleep 1000\"\n");
    h.ok(&["start", "web"]);
    let pid = h.pid("web");
    h.ok(&["start", "web"]);
    assert_eq!(h.pid("web"), pid);
}

#[test]
fn logs_show_the_service_output() {
    // stdout and stderr of a service land in its log, which `logs` prints.
    let h = Home::new("logs_show_the_service_output");
    h.start_script(
        "chatty",
        "Type = \"oneshot\"\n",
        "echo to-stdout; echo to-stderr >&2",
    );
    let out = h.ok(&["logs", "chatty"]);
    assert!(
        out.contains("to-stdout") && out.contains("to-stderr"),
        "{out}"
    );
    let last = h.ok(&["logs", "chatty", "-n", "1"]);
    assert_eq!(last.trim(), "to-stderr");
}

#[test]
fn logs_of_a_unit_with_no_log_say_whether_the_unit_exists() {
    // A unit that never ran: no output yet, start it. A name that is no unit (a typo): no such unit, with or without a daemon running, and `-f` does not wait for it.
    let h = Home::new("logs_of_a_unit_with_no_log_say_whether_the_unit_exists");
    h.unit("web", "[service]\nExecStart = \"sleep 1000\"\n");
    let never = h.fails(1, &["logs", "web"]);
    assert!(
        never.contains("no output from `web` yet") && never.contains("diakonos start web"),
        "{never}"
    );
    let typo = h.fails(1, &["logs", "wbe"]);
    assert!(typo.contains("no unit named `wbe`"), "{typo}");
    assert!(!typo.contains("start"), "{typo}");
    h.ok(&["list"]);
    let typo = h.fails(1, &["logs", "-f", "wbe"]);
    assert!(typo.contains("no unit named `wbe`"), "{typo}");
    // A unit of this host only (`NAME@HOST.service`) is a unit too.
    let host = nix::unistd::gethostname().expect("hostname");
    let host = host.to_str().expect("a UTF-8 hostname");
    h.unit(
        &format!("hw@{host}"),
        "[service]\nExecStart = \"sleep 1000\"\n",
    );
    let never = h.fails(1, &["logs", "hw"]);
    assert!(never.contains("no output from `hw` yet"), "{never}");
    // With no daemon and no directory named, the last daemon's directory
    // (in the state file once a unit ran).
    h.unit("other", "[service]\nExecStart = \"sleep 1000\"\n");
    h.ok(&["start", "other"]);
    h.ok(&["kill"]);
    let home = h.home.to_str().expect("a UTF-8 home");
    let out = h.bare(&["--home", home, "logs", "web"]);
    let text = crate::util::stderr(&out);
    assert!(text.contains("no output from `web` yet"), "{text}");
}

#[test]
fn start_of_a_failed_unit_launches_it_again() {
    // An explicit start of a failed unit relaunches it.
    let h = Home::new("start_of_a_failed_unit_launches_it_again");
    h.start_script("app", "Restart = \"no\"\n", "echo $$ >> starts; exit 3");
    h.wait_state("app", "failed");
    h.ok(&["start", "app"]);
    h.wait_until("a second failed launch", WAIT, || {
        h.lines("starts").len() == 2 && h.state("app") == "failed"
    });
}

#[test]
fn stop_during_backoff_cancels_the_restart() {
    // Stopping a unit that waits out RestartSec leaves it inactive, with no relaunch.
    let h = Home::new("stop_during_backoff_cancels_the_restart");
    h.start_script(
        "app",
        "Restart = \"always\"\nRestartSec = 0.3\n",
        "echo $$ >> starts; exec sleep 1000",
    );
    h.wait_lines("starts", 1);
    kill9(h.pid("app"));
    h.wait_state("app", "restarting");
    h.ok(&["stop", "app"]);
    assert_eq!(h.state("app"), "inactive");
    h.stays(
        "app inactive with one launch",
        Duration::from_millis(600),
        || h.lines("starts").len() == 1 && h.state("app") == "inactive",
    );
}

#[test]
fn oneshot_that_overruns_timeout_start_sec_fails() {
    // A oneshot still running after TimeoutStartSec is killed and its start fails "start timed out".
    let h = Home::new("oneshot_that_overruns_timeout_start_sec_fails");
    h.unit(
        "slow",
        &format!(
            "[service]\nType = \"oneshot\"\nRestart = \"no\"\nTimeoutStartSec = 0.3\nExecStart = {}\n",
            sh("echo $$ >> starts; exec sleep 1000")
        ),
    );
    let err = h.fails(1, &["start", "slow"]);
    assert!(err.contains("start timed out"), "{err}");
    let u = h.unit_json("slow");
    assert_eq!(u["state"], "failed", "{u}");
    // Under load the shell may be killed before it wrote its pid: look for
    // anything still running in the service dir instead.
    h.wait_until("the timed-out oneshot to be gone", WAIT, || {
        h.procs_in_units().is_empty()
    });
}

#[test]
fn stop_during_a_oneshot_start_fails_that_start() {
    // A stop that arrives while a oneshot is still starting ends the waiting start with exit 1.
    let h = Home::new("stop_during_a_oneshot_start_fails_that_start");
    slow_oneshot(&h);
    let starter = while_running(&h, &["start", "slow"], || {
        h.wait_until("slow to be starting", WAIT, || {
            h.state("slow") == "starting"
        });
        h.ok(&["stop", "slow"]);
    });
    assert_eq!(
        starter.status.code(),
        Some(1),
        "{}",
        crate::util::stderr(&starter)
    );
    assert!(crate::util::stderr(&starter).contains("slow"));
    assert_eq!(h.state("slow"), "inactive");
}

#[test]
fn host_specific_unit_file_wins_on_its_host() {
    // NAME@HOST.service replaces NAME.service on host HOST; files for other hosts are ignored.
    let h = Home::new("host_specific_unit_file_wins_on_its_host");
    let host = nix::unistd::gethostname()
        .expect("hostname")
        .into_string()
        .expect("utf-8 hostname");
    let oneshot = |word: &str| {
        format!(
            "[service]\nType = \"oneshot\"\nExecStart = {}\n",
            sh(&format!("echo {word} >> which"))
        )
    };
    h.unit("web", &oneshot("generic"));
    h.unit(&format!("web@{host}"), &oneshot("this-host"));
    h.unit("web@some-other-host-xyz", &oneshot("other-host"));
    h.unit("db@some-other-host-xyz", &oneshot("other-host"));
    let names = h.listed_names();
    assert_eq!(names, ["web"]);
    h.ok(&["start", "web"]);
    assert_eq!(h.lines("which"), ["this-host"]);
}

#[test]
fn fifty_units_start_with_one_command() {
    // One `start` of fifty independent units returns with all of them running.
    let h = Home::new("fifty_units_start_with_one_command");
    let names: Vec<String> = (0..50).map(|i| format!("u{i:02}")).collect();
    for name in &names {
        h.unit(name, "[service]\nExecStart = \"sleep 1000\"\n");
    }
    let mut args = vec!["start"];
    args.extend(names.iter().map(String::as_str));
    h.ok(&args);
    let list = h.json_list();
    let units = list.as_array().expect("array");
    assert_eq!(units.len(), 50);
    for u in units {
        assert_eq!(u["state"], "running", "{u}");
        assert!(alive(u["pid"].as_i64().expect("pid") as i32), "{u}");
    }
}

#[test]
fn exec_start_is_split_like_a_shell_without_running_one() {
    // ExecStart honours quotes: `printf '%s|' 'a b' c` gets two arguments.
    let h = Home::new("exec_start_is_split_like_a_shell_without_running_one");
    h.unit(
        "quoted",
        "[service]\nType = \"oneshot\"\nExecStart = \"printf '%s|' 'a b' \\\"c d\\\" $$HOME\"\n",
    );
    h.ok(&["start", "quoted"]);
    let log = std::fs::read_to_string(h.home.join("logs/quoted.log")).expect("log");
    assert_eq!(log, "a b|c d|$HOME|");
}

#[test]
fn missing_working_directory_fails_start_clearly() {
    // A WorkingDirectory that does not exist fails the start and says so.
    let h = Home::new("missing_working_directory_fails_start_clearly");
    h.unit(
        "lost",
        "[service]\nWorkingDirectory = \"/nonexistent/dir\"\nExecStart = \"sleep 1000\"\n",
    );
    let err = h.fails(1, &["start", "lost"]);
    assert!(
        err.contains("/nonexistent/dir") && err.contains("does not exist"),
        "{err}"
    );
}

#[test]
fn start_of_several_units_reports_the_one_that_failed() {
    // `start good bad` exits 1 naming bad, and good is running anyway.
    let h = Home::new("start_of_several_units_reports_the_one_that_failed");
    h.unit("good", "[service]\nExecStart = \"sleep 1000\"\n");
    h.unit("bad", "[service]\nExecStart = \"/nonexistent/bad\"\n");
    let err = h.fails(1, &["start", "good", "bad"]);
    assert!(err.contains("bad") && !err.contains("good"), "{err}");
    assert_eq!(h.state("good"), "running");
}

#[test]
fn service_log_is_rotated_by_size() {
    // With LogMaxBytes = 1000 and LogMaxFiles = 2 the log is rotated, and no third old file is kept.
    let h = Home::new("service_log_is_rotated_by_size");
    h.unit(
        "noisy",
        &format!(
            "[unit]\nStartLimitBurst = 0\n[service]\nRestart = \"always\"\nRestartSec = 0\nLogMaxBytes = 1000\nLogMaxFiles = 2\nExecStart = {}\n",
            sh("echo $$ >> starts; printf '%0700d' 0; echo; [ $(wc -l < starts) -ge 8 ] && exec sleep 1000; exit 0")
        ),
    );
    h.ok(&["start", "noisy"]);
    h.wait_until("the eighth launch to stay up", WAIT, || {
        h.lines("starts").len() == 8 && h.state("noisy") == "running"
    });
    let log = h.home.join("logs/noisy.log");
    let rotated = |n: u32| {
        let mut p = log.clone().into_os_string();
        p.push(format!(".{n}"));
        std::path::PathBuf::from(p)
    };
    assert!(rotated(1).exists(), "no noisy.log.1");
    assert!(rotated(2).exists(), "no noisy.log.2");
    assert!(!rotated(3).exists(), "noisy.log.3 kept beyond LogMaxFiles");
    for path in [log.clone(), rotated(1), rotated(2)] {
        let len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        assert!(len <= 1500, "{} has {len} bytes", path.display());
    }
}

#[test]
fn odd_unit_files_are_invalid_and_never_hang_the_daemon() {
    // A FIFO, a directory, a huge file, NUL bytes and bad UTF-8 named *.service are invalid units; the daemon still answers.
    let h = Home::new("odd_unit_files_are_invalid_and_never_hang_the_daemon");
    h.unit("good", "[service]\nExecStart = \"sleep 1000\"\n");
    nix::unistd::mkfifo(
        &h.units.join("fifo.service"),
        nix::sys::stat::Mode::from_bits_truncate(0o644),
    )
    .expect("mkfifo");
    std::fs::create_dir(h.units.join("dir.service")).expect("mkdir");
    let mut huge = b"[service]\nExecStart = \"sleep 1\"\n#".to_vec();
    huge.resize(2 << 20, b'x');
    std::fs::write(h.units.join("huge.service"), huge).expect("write");
    std::fs::write(h.units.join("nul.service"), b"[service]\0\n").expect("write");
    std::fs::write(
        h.units.join("latin1.service"),
        b"[unit]\nDescription = \"caf\xe9\"\n",
    )
    .expect("write");
    // verify reads them too, without a daemon, and must not hang on the FIFO.
    let err = h.fails(1, &["verify"]);
    assert!(err.contains("fifo.service"), "{err}");
    for name in ["fifo", "dir", "huge", "nul", "latin1"] {
        let u = h.unit_json(name);
        assert_eq!(u["state"], "invalid", "{u}");
        assert!(u["reason"].is_string(), "{u}");
    }
    h.ok(&["start", "good"]);
    assert_eq!(h.state("good"), "running");
}

#[test]
fn forking_service_is_up_once_its_starter_exits_and_tracks_the_pidfile() {
    // Type = "forking": start returns after the starter exited 0, and the pid is the one in PIDFile.
    let h = Home::new("forking_service_is_up_once_its_starter_exits_and_tracks_the_pidfile");
    h.forking_app("");
    h.ok(&["start", "app"]);
    let main = h.written_pid("app.pid");
    let u = h.unit_json("app");
    assert_eq!(u["state"], "running", "{u}");
    assert_eq!(u["pid"], main, "{u}");
    h.ok(&["stop", "app"]);
    assert!(gone(main));
}

#[test]
fn notify_service_is_up_only_after_ready() {
    // Type = "notify": start returns only after the service sent READY=1 to $NOTIFY_SOCKET.
    let h = Home::new("notify_service_is_up_only_after_ready");
    need_python3("to speak sd_notify");
    std::fs::write(
        h.path("notify.py"),
        "import os, socket, time\n\
         time.sleep(0.3)\n\
         open('order', 'a').write('ready\\n')\n\
         addr = os.environ['NOTIFY_SOCKET']\n\
         if addr.startswith('@'):\n    addr = '\\0' + addr[1:]\n\
         s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\n\
         s.sendto(b'READY=1', addr)\n\
         time.sleep(1000)\n",
    )
    .expect("write notify.py");
    h.unit(
        "app",
        "[service]\nType = \"notify\"\nTimeoutStartSec = 10\nExecStart = \"python3 notify.py\"\n",
    );
    h.ok(&["start", "app"]);
    assert_eq!(h.lines("order"), ["ready"], "start returned before READY=1");
    assert_eq!(h.state("app"), "running");
}

#[test]
fn start_during_a_slow_stop_ends_running_and_both_commands_return() {
    // A start that arrives while the unit is still stopping brings it back up, and the stop command still returns.
    let h = Home::new("start_during_a_slow_stop_ends_running_and_both_commands_return");
    h.start_script(
        "app",
        "",
        "trap \"sleep 0.3; exit 0\" TERM; echo $$ >> starts; while :; do sleep 0.05; done",
    );
    h.wait_until("the trap to be set", WAIT, || h.lines("starts").len() == 1);
    let old = h.pid("app");
    let (stop, start) = std::thread::scope(|s| {
        let stop = s.spawn(|| h.run_within(h.command(&["stop", "app"]), WAIT));
        h.wait_until("app to be stopping", WAIT, || h.state("app") == "stopping");
        let start = h.cmd(&["start", "app"]);
        (
            stop.join().unwrap_or_else(|e| std::panic::resume_unwind(e)),
            start,
        )
    });
    assert!(
        start.status.success(),
        "start: {}",
        crate::util::stderr(&start)
    );
    assert!(
        stop.status.code().is_some(),
        "stop: {}",
        crate::util::stderr(&stop)
    );
    let u = h.unit_json("app");
    assert_eq!(u["state"], "running", "{u}");
    assert_ne!(u["pid"], old, "{u}");
    assert!(gone(old));
}

#[test]
fn stopping_a_dependency_that_is_still_starting_cancels_its_waiting_dependent() {
    // While worker waits for a slow oneshot it Requires, `stop migrate` takes both down and the start fails.
    let h = Home::new("stopping_a_dependency_that_is_still_starting_cancels_its_waiting_dependent");
    h.unit(
        "migrate",
        &format!(
            "[service]\nType = \"oneshot\"\nExecStart = {}\n",
            sh("echo $$ >> migrate.starts; exec sleep 1000")
        ),
    );
    h.unit(
        "worker",
        &format!(
            "[unit]\nRequires = [\"migrate\"]\n[service]\nExecStart = {}\n",
            sh("echo $$ >> worker.starts; exec sleep 1000")
        ),
    );
    h.ok(&["list"]);
    let start = while_running(&h, &["start", "worker"], || {
        h.wait_until("worker waiting on a starting migrate", WAIT, || {
            h.state("worker") == "waiting" && h.state("migrate") == "starting"
        });
        h.ok(&["stop", "migrate"]);
    });
    assert_eq!(
        start.status.code(),
        Some(1),
        "{}",
        crate::util::stderr(&start)
    );
    assert_eq!(h.state("worker"), "inactive");
    assert_eq!(h.state("migrate"), "inactive");
    assert!(h.lines("worker.starts").is_empty(), "worker was launched");
}

#[test]
fn kill_during_a_start_lets_both_commands_return() {
    // `kill` while a start is waiting for a oneshot stops everything; both clients return and no process is left.
    let h = Home::new("kill_during_a_start_lets_both_commands_return");
    slow_oneshot(&h);
    let daemon = h.daemon_pid().expect("daemon pid");
    let start = while_running(&h, &["start", "slow"], || {
        h.wait_until(
            "slow to be starting and to have written its pid",
            WAIT,
            || h.state("slow") == "starting" && !h.lines("starts").is_empty(),
        );
        h.ok(&["kill"]);
    });
    assert_eq!(
        start.status.code(),
        Some(1),
        "{}",
        crate::util::stderr(&start)
    );
    let pid: i32 = h.lines("starts")[0].parse().expect("a pid");
    assert!(gone(pid), "the oneshot survived kill");
    h.wait_until("the daemon to exit", WAIT, || !alive(daemon));
}

#[test]
fn logs_follow_prints_new_lines_as_they_come() {
    // `logs -f` keeps printing what the service writes after it started.
    use std::io::BufRead;
    let h = Home::new("logs_follow_prints_new_lines_as_they_come");
    h.start_script(
        "ticker",
        "",
        "i=0; while :; do i=$((i+1)); echo tick $i; sleep 0.05; done",
    );
    let log = h.home.join("logs/ticker.log");
    h.wait_until("a first tick", WAIT, || {
        !crate::util::read_lines(&log).is_empty()
    });
    let mut follow = h
        .command(&["logs", "ticker", "-f", "-n", "1"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn logs -f");
    let at_start = crate::util::read_lines(&log).len();
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = follow.stdout.take().expect("stdout");
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let wanted = format!("tick {}", at_start + 3);
    let deadline = Instant::now() + WAIT;
    let mut seen = Vec::new();
    while !seen.contains(&wanted) {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => seen.push(line),
            Err(_) => break,
        }
    }
    let _ = follow.kill();
    let _ = follow.wait();
    assert!(seen.contains(&wanted), "logs -f printed only {seen:?}");
}

#[test]
fn forking_without_pidfile_finds_a_double_forked_daemon() {
    // A classic double-forking daemon (setsid in between) is found without PIDFile, every time, and stop reaches it.
    need_python3("for the double fork");
    let h = Home::new("forking_without_pidfile_finds_a_double_forked_daemon");
    std::fs::write(
        h.path("dfork.py"),
        "import os, time\n\
         if os.fork(): os._exit(0)\n\
         os.setsid()\n\
         if os.fork(): os._exit(0)\n\
         open('main', 'w').write(str(os.getpid()))\n\
         time.sleep(1000)\n",
    )
    .expect("write dfork.py");
    h.unit(
        "dfork",
        "[service]\nType = \"forking\"\nExecStart = \"python3 dfork.py\"\n",
    );
    h.unit(
        "setsid",
        &format!(
            "[service]\nType = \"forking\"\nExecStart = {}\n",
            sh("setsid sleep 1001 & sleep 0.1")
        ),
    );
    for round in 0..4 {
        h.ok(&["start", "dfork", "setsid"]);
        // The daemon may find the grandchild before it wrote `main`.
        let main = h.written_pid("main");
        let u = h.unit_json("dfork");
        assert_eq!(u["pid"], main, "round {round}: {u}");
        let s = h.unit_json("setsid");
        assert_eq!(s["state"], "running", "round {round}: {s}");
        let sleeper = s["pid"].as_i64().expect("a pid") as i32;
        assert!(
            crate::util::cmdline(sleeper).contains("sleep 1001"),
            "round {round}"
        );
        h.ok(&["stop", "dfork", "setsid"]);
        assert!(
            gone(main) && gone(sleeper),
            "round {round}: stop missed the daemon"
        );
        std::fs::remove_file(h.path("main")).expect("remove marker");
    }
}
