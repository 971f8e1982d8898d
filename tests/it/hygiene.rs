//! What a service process looks like from the inside: its parent, session,
//! file descriptors, environment, working directory and user, and that no
//! exit is left as a zombie.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::time::Duration;

use crate::util::{children_of, gone, kill9, sh, stderr, world_writable, Home, Stat, WAIT};

#[test]
fn no_zombies_after_repeated_kills_and_orphans() {
    // After several kill -9 and restarts, and orphaned grandchildren, no child of the daemon is a zombie.
    let h = Home::new("no_zombies_after_repeated_kills_and_orphans");
    h.unit(
        "app",
        &format!(
            "[unit]\nStartLimitBurst = 0\n[service]\nRestart = \"always\"\nRestartSec = 0\nExecStart = {}\n",
            // The subshell's child is orphaned at once and reparented to the
            // daemon (a subreaper), which must reap it when it exits.
            sh("(sh -c 'echo $$ >> orphans; exec sleep 0.05' &); echo $$ >> starts; exec sleep 1000")
        ),
    );
    h.ok(&["start", "app"]);
    for n in 1..=5 {
        // Each launch's orphan must exist before the launch is killed.
        h.wait_until(&format!("orphan {n}"), WAIT, || {
            h.lines("orphans").len() == n
        });
        let pid = h.pid("app");
        kill9(pid);
        h.wait_until(&format!("relaunch {n}"), WAIT, || {
            let u = h.unit_json("app");
            u["state"] == "running" && u["restarts"] == n && u["pid"] != pid
        });
    }
    h.wait_until("six orphans to be reaped", WAIT, || {
        let orphans = h.lines("orphans");
        orphans.len() == 6 && orphans.iter().all(|p| p.parse().is_ok_and(gone))
    });
    let daemon = h.daemon_pid().expect("daemon pid");
    h.wait_until("no zombie children of the daemon", WAIT, || {
        children_of(daemon).iter().all(|&(_, state)| state != 'Z')
    });
}

/// The fds of `pid` and what they point to.
fn open_fds(pid: i32) -> Vec<(u32, String)> {
    let dir = PathBuf::from(format!("/proc/{pid}/fd"));
    let mut fds: Vec<(u32, String)> = fs::read_dir(&dir)
        .expect("read /proc/PID/fd")
        .filter_map(|e| {
            let fd: u32 = e.ok()?.file_name().to_str()?.parse().ok()?;
            let target = fs::read_link(dir.join(fd.to_string())).ok()?;
            Some((fd, target.display().to_string()))
        })
        .collect();
    fds.sort();
    fds
}

#[test]
fn service_has_only_stdin_stdout_stderr_open() {
    // A service has fd 0 (/dev/null) and fds 1, 2 (its log) and none of the daemon's own fds.
    let h = Home::new("service_has_only_stdin_stdout_stderr_open");
    h.unit("plain", "[service]\nExecStart = \"sleep 1000\"\n");
    // The daemon is started by a client that has nothing but stdio open, so
    // any further fd in the service can only be one the daemon opened.
    let out = h.cmd_fds(&["start", "plain"], None);
    assert!(out.status.success(), "{}", crate::util::stderr(&out));
    let pid = h.exec_pid("plain");
    wait_asleep(&h, pid);
    let log = h.home.join("logs/plain.log").display().to_string();
    assert_eq!(
        open_fds(pid),
        [(0, "/dev/null".to_owned()), (1, log.clone()), (2, log)]
    );
}

#[test]
fn neither_the_daemon_nor_a_service_keeps_an_fd_the_daemon_was_started_with() {
    // An fd the daemon's launcher left open (fd 42 here, a file the launcher holds an flock on, as a cron script does) is closed by the daemon at once: the lock is free again, and no service gets it.
    let h = Home::new("service_inherits_no_fd_the_daemon_was_started_with");
    h.unit("plain", "[service]\nExecStart = \"sleep 1000\"\n");
    let stray_path = h.root.join("stray");
    let stray = fs::File::create(&stray_path).expect("create a file");
    let locked = nix::fcntl::Flock::lock(stray, nix::fcntl::FlockArg::LockExclusiveNonblock)
        .map_err(|(_, e)| e)
        .expect("lock the stray file");
    let out = h.cmd_fds(&["start", "plain"], Some(&locked));
    assert!(out.status.success(), "{}", crate::util::stderr(&out));
    drop(locked);
    let daemon = h.daemon_pid().expect("daemon pid");
    let stray_name = stray_path.display().to_string();
    assert!(
        !open_fds(daemon)
            .iter()
            .any(|(fd, t)| *fd == 42 || *t == stray_name),
        "the daemon kept its launcher's fd 42: {:?}",
        open_fds(daemon)
    );
    let again = fs::File::open(&stray_path).expect("open the stray file");
    assert!(
        nix::fcntl::Flock::lock(again, nix::fcntl::FlockArg::LockExclusiveNonblock).is_ok(),
        "the launcher's lock is still held"
    );
    let pid = h.exec_pid("plain");
    wait_asleep(&h, pid);
    let fds: Vec<u32> = open_fds(pid).iter().map(|(fd, _)| *fd).collect();
    assert_eq!(fds, [0, 1, 2], "{:?}", open_fds(pid));
}

/// Waits until `sleep` (pid) is in its nanosleep: before that, glibc's
/// start-up may hold its own files open for a moment (the locale files),
/// which are not fds the service inherited.
fn wait_asleep(h: &Home, pid: i32) {
    h.wait_until(
        "the service to be asleep in nanosleep",
        Duration::from_secs(10),
        || fs::read_to_string(format!("/proc/{pid}/wchan")).is_ok_and(|w| w.contains("nanosleep")),
    );
}

#[test]
fn environment_reaches_the_service() {
    // Environment entries are in the service's environment, and PATH is set.
    let h = Home::new("environment_reaches_the_service");
    h.unit(
        "envy",
        &format!(
            "[service]\nType = \"oneshot\"\nEnvironment = [\"LOG_LEVEL=info\", \"GREETING=hello world\", \"EMPTY=\"]\nExecStart = {}\n",
            sh("env > env.out")
        ),
    );
    h.ok(&["start", "envy"]);
    let env = h.lines("env.out");
    for want in ["LOG_LEVEL=info", "GREETING=hello world", "EMPTY="] {
        assert!(env.iter().any(|l| l == want), "{want} missing: {env:?}");
    }
    assert!(env.iter().any(|l| l.starts_with("PATH=")), "{env:?}");
    // The word between the client that started the daemon and the daemon
    // is theirs alone.
    assert!(
        !env.iter().any(|l| l.starts_with("DIAKONOS_READY_FD=")),
        "{env:?}"
    );
}

#[test]
fn working_directory_is_relative_to_the_service_dir() {
    // WorkingDirectory = "sub" runs the service in units/sub.
    let h = Home::new("working_directory_is_relative_to_the_service_dir");
    fs::create_dir(h.units.join("sub")).expect("mkdir sub");
    h.unit(
        "here",
        &format!(
            "[service]\nType = \"oneshot\"\nWorkingDirectory = \"sub\"\nExecStart = {}\n",
            sh("pwd -P > pwd.out")
        ),
    );
    h.ok(&["start", "here"]);
    let want = fs::canonicalize(h.units.join("sub")).expect("canonical");
    let got = fs::read_to_string(h.units.join("sub/pwd.out")).expect("pwd.out in sub/");
    assert_eq!(got.trim(), want.display().to_string());
}

#[test]
fn default_working_directory_is_the_service_dir() {
    // Without WorkingDirectory a service runs in the service directory.
    let h = Home::new("default_working_directory_is_the_service_dir");
    h.unit(
        "here",
        &format!(
            "[service]\nType = \"oneshot\"\nExecStart = {}\n",
            sh("pwd -P > pwd.out")
        ),
    );
    h.ok(&["start", "here"]);
    let want = fs::canonicalize(&h.units).expect("canonical");
    assert_eq!(h.lines("pwd.out"), [want.display().to_string()]);
}

#[test]
fn a_service_starts_with_no_signal_blocked_ignored_or_caught() {
    // The daemon blocks every signal around a spawn, handles SIGCHLD,
    // SIGTERM, SIGINT and SIGHUP and ignores SIGPIPE; and it was started
    // by a client that ignores SIGUSR1 (as `nohup` ignores SIGHUP), an
    // ignore it inherits. None of it reaches a service, whichever way it
    // is spawned: "calm" by the light clone, "limited" (limits are set
    // between fork and exec) by the full fork. sleep sets no handler.
    let h = Home::new("a_service_starts_with_no_signal_blocked_ignored_or_caught");
    h.unit("calm", "[service]\nExecStart = \"sleep 1000\"\n");
    h.unit(
        "limited",
        "[service]\nExecStart = \"sleep 1000\"\nLimitNOFILE = 512\n",
    );
    let mut ignoring = h.command(&["start", "calm", "limited"]);
    // SAFETY: runs in the forked child before exec; signal() is one
    // async-signal-safe system call.
    unsafe {
        ignoring.pre_exec(|| {
            nix::libc::signal(nix::libc::SIGUSR1, nix::libc::SIG_IGN);
            Ok(())
        });
    }
    let out = h.run(ignoring);
    assert!(out.status.success(), "start: {}", stderr(&out));
    let daemon = h.daemon_pid().expect("daemon pid");
    let usr1 = 1u64 << (nix::libc::SIGUSR1 - 1);
    assert_ne!(
        mask_of(daemon, "SigIgn") & usr1,
        0,
        "the daemon should have inherited the ignore of SIGUSR1"
    );
    for unit in ["calm", "limited"] {
        let pid = h.exec_pid(unit);
        wait_asleep(&h, pid);
        for field in ["SigBlk", "SigIgn", "SigCgt"] {
            assert_eq!(mask_of(pid, field), 0, "{unit}: {field}");
        }
    }
}

/// A signal mask of /proc/PID/status ("SigIgn" ...), as a number.
fn mask_of(pid: i32, field: &str) -> u64 {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let hex = status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .map(str::trim)
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"));
    u64::from_str_radix(hex, 16).expect("a hex mask")
}

#[test]
fn service_runs_in_its_own_session_as_a_child_of_the_daemon() {
    // The service leads its own session and process group, and its parent is the daemon.
    let h = Home::new("service_runs_in_its_own_session_as_a_child_of_the_daemon");
    h.unit("solo", "[service]\nExecStart = \"sleep 1000\"\n");
    h.ok(&["start", "solo"]);
    let pid = h.exec_pid("solo");
    let stat = Stat::of(pid).expect("stat");
    assert_eq!(stat.session, pid, "session id");
    assert_eq!(stat.pgrp, pid, "process group");
    let daemon = h.daemon_pid().expect("daemon pid");
    assert_eq!(stat.ppid, daemon, "parent");
}

#[test]
fn user_switches_identity_or_explains_it_needs_root() {
    // As root, User = "nobody" runs the service as nobody; otherwise start fails mentioning root.
    let h = Home::new("user_switches_identity_or_explains_it_needs_root");
    let shared = h.root.join("shared");
    world_writable(&shared);
    let other = if nix::unistd::Uid::effective().is_root() {
        "nobody".to_owned()
    } else {
        "root".to_owned()
    };
    h.unit(
        "as-other",
        &format!(
            "[service]\nType = \"oneshot\"\nUser = \"{other}\"\nWorkingDirectory = {}\nExecStart = {}\n",
            crate::util::toml_str(&shared.display().to_string()),
            sh("id -u > uid.out")
        ),
    );
    if nix::unistd::Uid::effective().is_root() {
        h.ok(&["start", "as-other"]);
        let nobody = nix::unistd::User::from_name("nobody")
            .expect("look up nobody")
            .expect("a user nobody");
        let got = fs::read_to_string(shared.join("uid.out")).expect("uid.out");
        assert_eq!(got.trim(), nobody.uid.to_string());
    } else {
        let err = h.fails(1, &["start", "as-other"]);
        assert!(err.contains("root"), "{err}");
        assert_eq!(h.state("as-other"), "failed");
    }
}

#[test]
fn services_get_a_default_path_when_the_daemon_has_none() {
    // A daemon started without PATH (a crontab line) gives services the standard PATH.
    let h = Home::new("services_get_a_default_path_when_the_daemon_has_none");
    h.unit(
        "paths",
        &format!(
            "[service]\nType = \"oneshot\"\nExecStart = {}\n",
            sh("echo \"$PATH\" > path.out")
        ),
    );
    let mut cmd = h.command(&["start", "paths"]);
    cmd.env_remove("PATH");
    let out = h.run(cmd);
    assert!(out.status.success(), "{}", crate::util::stderr(&out));
    assert_eq!(
        h.lines("path.out"),
        ["/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]
    );
}

#[test]
fn a_program_is_found_on_path_again_after_it_moves_and_after_reload() {
    // Where a program was found on PATH is remembered, but a moved program is
    // still found on the next start, and `reload` finds one installed earlier
    // in PATH.
    let h = Home::new("a_program_is_found_on_path_again_after_it_moves");
    let dir = |d: &str| h.units.join(d);
    for d in ["bin0", "bin1", "bin2", "scripts"] {
        fs::create_dir(dir(d)).expect("mkdir");
    }
    // The scripts are written once, up front; PATH entries are symlinks to
    // them (no executable is being written while a test forks).
    for v in ["v0", "v1", "v2"] {
        let script = dir("scripts").join(v);
        fs::write(&script, format!("#!/bin/sh\necho {v} >> ran\n")).expect("write script");
        fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    let link = |v: &str, d: &str| {
        std::os::unix::fs::symlink(dir("scripts").join(v), dir(d).join("tool")).expect("symlink")
    };
    let path = ["bin0", "bin1", "bin2"]
        .map(|d| dir(d).display().to_string())
        .join(":");
    h.unit(
        "tooly",
        &format!(
            "[service]\nType = \"oneshot\"\nEnvironment = [\"PATH={path}:/usr/bin:/bin\"]\nExecStart = \"tool\"\n"
        ),
    );
    link("v2", "bin2");
    h.ok(&["start", "tooly"]);
    assert_eq!(h.lines("ran"), ["v2"]);

    fs::remove_file(dir("bin2").join("tool")).expect("rm");
    link("v1", "bin1");
    h.ok(&["restart", "tooly"]);
    assert_eq!(
        h.lines("ran"),
        ["v2", "v1"],
        "the moved program was not found"
    );

    link("v0", "bin0");
    h.ok(&["reload"]);
    h.ok(&["restart", "tooly"]);
    assert_eq!(
        h.lines("ran"),
        ["v2", "v1", "v0"],
        "reload did not look again"
    );
}

#[test]
fn a_service_keeps_writing_its_log_after_the_daemon_dies() {
    // Output goes straight to the log file: a service outlives a SIGKILLed daemon and keeps logging (no SIGPIPE).
    let h = Home::new("a_service_keeps_writing_its_log_after_the_daemon_dies");
    h.unit(
        "ticker",
        &format!(
            "[service]\nExecStart = {}\n",
            sh("while :; do echo tick; sleep 0.02; done")
        ),
    );
    h.ok(&["start", "ticker"]);
    let pid = h.pid("ticker");
    let daemon = h.daemon_pid().expect("daemon pid");
    crate::util::kill9(daemon);
    h.wait_until("the daemon to die", WAIT, || !crate::util::alive(daemon));
    let log = h.home.join("logs/ticker.log");
    let ticks = || crate::util::read_lines(&log).len();
    let before = ticks();
    h.wait_until("ten more ticks without a daemon", WAIT, || {
        ticks() >= before + 10
    });
    assert!(crate::util::alive(pid), "the service died with the daemon");
}

#[test]
fn a_service_started_after_an_upgrade_gets_none_of_the_handed_over_fds() {
    // The lock and sockets a hand-over passes come without close-on-exec: the new daemon must mark them, or every service it starts holds its notify socket.
    let h = Home::new("a_service_started_after_an_upgrade_gets_no_fds");
    h.unit("plain", "[service]\nExecStart = \"sleep 1000\"\n");
    h.ok(&["list"]);
    h.ok(&["daemon-upgrade"]);
    h.ok(&["start", "plain"]);
    let pid = h.exec_pid("plain");
    wait_asleep(&h, pid);
    let fds: Vec<u32> = open_fds(pid).iter().map(|(fd, _)| *fd).collect();
    assert_eq!(fds, [0, 1, 2], "{:?}", open_fds(pid));
}
