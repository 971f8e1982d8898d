//! Resources: restart churn, write errors and close-on-exec.

use super::*;

// 5. Resource hygiene under churn.

#[test]
fn two_thousand_restarts_leave_no_zombies_fds_or_memory() {
    // `false` restarted 2 000 times (RestartSec 0, no start limit): no zombie lingers, fds return to baseline, RSS stays flat.
    let h = Home::new("two_thousand_restarts_leave_no_zombies_fds_or_memory");
    h.unit(
        "churn",
        "[unit]\nStartLimitBurst = 0\n[service]\nExecStart = \"false\"\nRestart = \"always\"\nRestartSec = 0\n",
    );
    let daemon = start_daemon(&h);
    let baseline = baseline_fds(&h, daemon);
    h.ok(&["start", "churn"]);
    let restarts = || h.unit_json("churn")["restarts"].as_u64().unwrap_or(0);
    let watch = Duration::from_secs(60);
    // Zombies come and go between an exit and its reaping; none may stay.
    let check_zombies = || {
        let zombies = zombie_children(daemon);
        if !zombies.is_empty() {
            h.wait_until("transient zombies to be reaped", WAIT, || {
                zombie_children(daemon).iter().all(|z| !zombies.contains(z))
            });
        }
    };
    h.wait_until("500 restarts", watch, || {
        check_zombies();
        restarts() >= 500
    });
    let rss_500 = rss_kib(daemon).expect("daemon RSS");
    h.wait_until("2000 restarts", watch, || {
        check_zombies();
        restarts() >= 2000
    });
    let rss_2000 = rss_kib(daemon).expect("daemon RSS");
    assert!(
        rss_2000 < rss_500 + 1024,
        "RSS grew from {rss_500} KiB at 500 restarts to {rss_2000} KiB at 2000"
    );
    h.ok(&["stop", "churn"]);
    h.wait_until("no zombie children of the daemon", WAIT, || {
        zombie_children(daemon).is_empty()
    });
    assert!(
        children_of(daemon).is_empty(),
        "children left: {:?}",
        children_of(daemon)
    );
    fds_return_to(daemon, baseline, WAIT);
    eprintln!("RSS {rss_500} KiB at 500 restarts, {rss_2000} KiB at 2000");
    healthy(&h, daemon, &["churn"]);
}

// 6. Write errors.

#[test]
fn an_unwritable_state_file_is_reported_and_survived() {
    // With a directory squatting on HOME/state.tmp the daemon logs the failure and keeps supervising; once it is gone, state is written again.
    let h = Home::new("an_unwritable_state_file_is_reported_and_survived");
    h.unit(
        "svc",
        "[unit]\nStartLimitBurst = 0\n[service]\nExecStart = \"sleep 1000\"\nRestart = \"always\"\nRestartSec = 0\n",
    );
    h.unit("other", SLEEPER);
    let daemon = start_daemon(&h);
    let obstacle = h.home.join("state.tmp");
    fs::create_dir(&obstacle).expect("mkdir state.tmp");
    fs::write(obstacle.join("keep"), "so the directory is not empty").expect("write");
    h.ok(&["start", "svc"]);
    let log = || fs::read_to_string(h.home.join("daemon.log")).unwrap_or_default();
    h.wait_until("daemon.log to report the failed state write", WAIT, || {
        log()
            .lines()
            .any(|l| l.contains("cannot write") && l.contains("state"))
    });
    // Still supervising: a killed service comes back.
    let first = h.pid("svc");
    kill9(first);
    h.wait_until("svc to be restarted", WAIT, || {
        let u = h.unit_json("svc");
        u["state"] == "running" && u["pid"].as_i64().is_some_and(|p| p as i32 != first)
    });
    let state = h.home.join("state");
    assert!(
        !fs::read_to_string(&state)
            .unwrap_or_default()
            .contains("other"),
        "`other` is in the state file before it started"
    );
    fs::remove_dir_all(&obstacle).expect("remove the obstacle");
    h.ok(&["start", "other"]);
    h.wait_until("the state file to be written again", WAIT, || {
        let text = fs::read_to_string(&state).unwrap_or_default();
        text.contains("\"other\"") && text.contains("\"svc\"")
    });
    assert!(!obstacle.exists(), "a stale state.tmp is left");
    healthy(&h, daemon, &["other", "svc"]);
}

#[test]
fn a_full_disk_under_the_logs_is_survived() {
    // With daemon.log and a service's log on /dev/full (every write fails with ENOSPC), the daemon keeps working.
    let h = Home::new("a_full_disk_under_the_logs_is_survived");
    assert!(
        std::path::Path::new("/dev/full").exists(),
        "this test needs /dev/full (every Linux has it)"
    );
    h.unit(
        "noisy",
        "[unit]\nStartLimitBurst = 0\n[service]\nExecStart = \"sh -c 'echo hello; echo oops >&2; exec sleep 1000'\"\nRestart = \"always\"\nRestartSec = 0\n",
    );
    fs::create_dir_all(h.home.join("logs")).expect("mkdir logs");
    fs::set_permissions(&h.home, fs::Permissions::from_mode(0o700)).expect("chmod");
    symlink("/dev/full", h.home.join("daemon.log")).expect("symlink daemon.log");
    symlink("/dev/full", h.home.join("logs/noisy.log")).expect("symlink noisy.log");
    let daemon = start_daemon(&h);
    h.ok(&["start", "noisy"]);
    let first = h.pid("noisy");
    kill9(first);
    h.wait_until("noisy to be restarted", WAIT, || {
        let u = h.unit_json("noisy");
        u["state"] == "running" && u["pid"].as_i64().is_some_and(|p| p as i32 != first)
    });
    // Things the daemon logs about: a bad frame, a reload, a status.
    let mut s = connect(&h);
    s.write_all(&[0xff, 0xff, 0xff, 0xff]).expect("write");
    let _ = reply_then_close(&mut s, Duration::from_secs(10));
    h.ok(&["reload"]);
    h.ok(&["status", "noisy"]);
    let _ = h.cmd(&["logs", "noisy"]);
    healthy(&h, daemon, &["noisy"]);
}

// 7. Close-on-exec.

/// The `flags:` of /proc/PID/fdinfo/FD (octal).
fn fd_flags(pid: i32, fd: u32) -> Option<u32> {
    let info = fs::read_to_string(format!("/proc/{pid}/fdinfo/{fd}")).ok()?;
    let line = info.lines().find(|l| l.starts_with("flags:"))?;
    u32::from_str_radix(line.split_whitespace().nth(1)?, 8).ok()
}

#[test]
fn every_daemon_fd_above_stderr_is_close_on_exec() {
    // Every fd the daemon holds above 2 (lock, log, sockets, epoll, signal pipe, client connections, pidfds of adopted services) has O_CLOEXEC; one its launcher left open is closed.
    const O_CLOEXEC: u32 = 0o2000000;
    let h = Home::new("every_daemon_fd_above_stderr_is_close_on_exec");
    h.unit("web", SLEEPER);
    h.unit(
        "ready",
        "[service]\nType = \"notify\"\nExecStart = \"sh -c 'exec sleep 1000'\"\nTimeoutStartSec = 30\n",
    );
    // A first daemon starts a service and dies; the next one adopts it
    // (a pidfd); the client that starts it leaves fd 42 open, which the
    // daemon closes.
    h.ok(&["start", "web"]);
    let first = h.daemon_pid().expect("daemon pid");
    kill9(first);
    h.wait_until("the first daemon to die", WAIT, || !alive(first));
    let stray = fs::File::create(h.root.join("stray")).expect("create a file");
    let out = h.cmd_fds(&["list"], Some(&stray));
    assert!(out.status.success(), "{}", stderr(&out));
    let daemon = h.daemon_pid().expect("daemon pid");
    assert_ne!(daemon, first);
    // A notify service waiting to be ready, and clients in every stage.
    let mut starter = h.command(&["start", "ready"]);
    starter.stdout(Stdio::null()).stderr(Stdio::null());
    let mut starter = starter.spawn().expect("spawn a start");
    let idle = connect(&h);
    let mut half = connect(&h);
    half.write_all(&list_frame()[..5]).expect("write");
    h.wait_until("ready to be starting", WAIT, || {
        h.state("ready") == "starting"
    });
    let fds = fds_of(daemon);
    assert!(!fds.contains(&42), "the daemon kept fd 42 of its launcher");
    let mut missing = Vec::new();
    for &fd in fds.iter().filter(|&&fd| fd > 2) {
        match fd_flags(daemon, fd) {
            Some(flags) if flags & O_CLOEXEC != 0 => {}
            Some(flags) => missing.push(format!("{fd} (flags {flags:o})")),
            None => {} // Closed between the listing and the read.
        }
    }
    assert!(
        missing.is_empty(),
        "fds without O_CLOEXEC: {missing:?}\n{}",
        describe_fds(daemon)
    );
    drop(idle);
    drop(half);
    let _ = starter.kill();
    let _ = starter.wait();
    h.ok(&["stop", "ready"]);
    healthy(&h, daemon, &["ready", "web"]);
    assert_eq!(h.state("web"), "running");
}
