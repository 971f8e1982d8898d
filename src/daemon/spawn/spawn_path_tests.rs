//! The spawn path's pure parts: the service's environment, the boot-clock
//! start time, and where programs are looked up.

use super::*;

fn spec<'a>(env: &'a [(String, String)], extra: &'a [(String, String)]) -> SpawnSpec<'a> {
    SpawnSpec {
        argv: &[],
        cwd: Path::new("/"),
        env,
        user: None,
        log: Path::new("/dev/null"),
        extra_env: extra,
        limits: &NO_LIMITS,
        inherit_stdio: false,
        fds: &[],
        pid_vars: &[],
    }
}

static NO_LIMITS: Limits = Limits {
    rlimits: Vec::new(),
    nice: None,
    oom_score_adjust: None,
    umask: None,
    group: None,
    supplementary_groups: Vec::new(),
    environment_files: Vec::new(),
    memory_max: None,
    memory_check: None,
};

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The daemon's environment as the spawn cache keeps it.
fn base(vars: &[(&str, &str)]) -> Vec<(usize, CString)> {
    vars.iter()
        .map(|(k, v)| env_entry(k.as_bytes(), v.as_bytes()).unwrap())
        .collect()
}

/// The environment a service of `spec` (as `identity`) gets, as text.
fn envp(
    base: &[(usize, CString)],
    spec: &SpawnSpec<'_>,
    identity: Option<&Identity>,
) -> Vec<String> {
    let mut own = Vec::new();
    service_envp(base, spec, identity, &mut own)
        .unwrap()
        .into_iter()
        .map(|c| c.to_str().unwrap().to_owned())
        .collect()
}

#[test]
fn unit_variables_replace_the_daemons_and_the_last_one_wins() {
    // The daemon's HOME and PATH give way to the unit's; a name given
    // twice keeps its last value, once.
    let base = base(&[("HOME", "/root"), ("PATH", "/bin"), ("LANG", "C")]);
    let env = pairs(&[("PATH", "/opt/bin"), ("A", "1"), ("A", "2")]);
    let extra = pairs(&[("HOME", "/srv")]);
    let spec = spec(&env, &extra);
    assert_eq!(
        envp(&base, &spec, None),
        ["LANG=C", "PATH=/opt/bin", "A=2", "HOME=/srv"]
    );
    assert_eq!(service_path(&base, &spec), b"/opt/bin");
    assert_eq!(service_path(&base, &self::spec(&[], &[])), b"/bin");
}

#[test]
fn a_users_variables_replace_the_daemons_and_give_way_to_the_units() {
    // User= sets USER, LOGNAME, HOME and SHELL over the daemon's; the unit's
    // Environment still wins over them.
    let base = base(&[
        ("HOME", "/root"),
        ("USER", "root"),
        ("LANG", "C"),
        ("SHELL", "/bin/bash"),
    ]);
    let id = Identity {
        uid: Uid::from_raw(65534),
        gid: Gid::from_raw(65534),
        groups: vec![Gid::from_raw(65534)],
        name: "nobody".to_owned(),
        home: "/nonexistent".into(),
        shell: "/usr/sbin/nologin".into(),
    };
    let env = pairs(&[("LOGNAME", "svc")]);
    assert_eq!(
        envp(&base, &spec(&env, &[]), Some(&id)),
        [
            "LANG=C",
            "USER=nobody",
            "HOME=/nonexistent",
            "SHELL=/usr/sbin/nologin",
            "LOGNAME=svc"
        ]
    );
}

#[test]
fn identity_and_limits_become_the_childs_work_in_order() {
    // User's groups gain Group= and SupplementaryGroups= once each, Group=
    // replaces the primary group, and the log goes to the user's own ids.
    let id = Identity {
        uid: Uid::from_raw(1000),
        gid: Gid::from_raw(1000),
        groups: vec![Gid::from_raw(1000), Gid::from_raw(27)],
        name: "u".to_owned(),
        home: "/home/u".into(),
        shell: "/bin/sh".into(),
    };
    let setup = ChildSetup {
        rlimits: vec![(Resource::RLIMIT_NOFILE, 64, 128)],
        nice: Some(5),
        gid: Some(Gid::from_raw(100)),
        groups: vec![Gid::from_raw(27), Gid::from_raw(4)],
        ..ChildSetup::default()
    };
    let work = child_work(setup, Some(&id)).expect("work to do");
    assert_eq!(
        work.rlimits,
        [(nix::libc::RLIMIT_NOFILE as nix::libc::c_int, [64, 128])]
    );
    assert_eq!(work.nice, Some(5));
    assert_eq!(work.groups.as_deref(), Some(&[1000, 27, 100, 4][..]));
    assert_eq!((work.gid, work.uid), (Some(100), Some(1000)));
    assert_eq!(work.log_owner, Some((1000, 1000)));
    // Without User=: only what is written, and no owner change.
    let alone = ChildSetup {
        gid: Some(Gid::from_raw(100)),
        ..ChildSetup::default()
    };
    let work = child_work(alone, None).expect("work to do");
    assert_eq!(
        (work.groups.as_deref(), work.gid, work.uid),
        (None, Some(100), None)
    );
    assert_eq!(work.log_owner, None);
    assert!(child_work(ChildSetup::default(), None).is_none());
}

#[test]
fn the_boot_clock_tick_around_a_spawn_is_the_start_time_in_proc() {
    // When the tick before and after a spawn agree, /proc reports the
    // same start time (tried until a spawn falls inside one tick).
    for _ in 0..50 {
        let before = boot_clock_ticks().unwrap();
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        let after = boot_clock_ticks().unwrap();
        let proc = procfs::start_time(child.id() as i32);
        let _ = child.kill();
        let _ = child.wait();
        assert!(before <= after);
        if before == after {
            assert_eq!(proc, Some(before));
            return;
        }
    }
    panic!("no spawn fell inside one clock tick in 50 tries");
}

#[test]
fn a_program_is_remembered_per_path_and_directory_and_checked_before_each_spawn() {
    // Where it was found is remembered; a place that stopped working is
    // looked up again, and a program gone everywhere is an error before
    // any clone (a service is up once spawned: `start` must still say so).
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("dk-spawn-cache-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (a, b) = (dir.join("a"), dir.join("b"));
    std::fs::create_dir_all(&a).unwrap();
    std::fs::create_dir_all(&b).unwrap();
    let tool = a.join("tool");
    std::fs::write(&tool, "#!/bin/sh\n").unwrap();
    std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!("{}:{}", a.display(), b.display());
    let path = path.as_bytes();
    let mut cache = SpawnCache::default();
    let found = resolve(&mut cache, "tool", path, Path::new("/")).unwrap();
    assert_eq!(found.as_bytes(), tool.as_os_str().as_bytes());
    assert_eq!(cache.programs["tool"].len(), 1);
    assert_eq!(
        resolve(&mut cache, "tool", path, Path::new("/")).unwrap(),
        found
    );
    assert_eq!(cache.programs["tool"].len(), 1, "answered from memory");
    // Another PATH is another lookup.
    assert!(cache
        .locate("tool", b"/nonexistent", Path::new("/"), false)
        .is_err());
    // Moved along PATH: found again; gone: not found.
    std::fs::rename(&tool, b.join("tool")).unwrap();
    let moved = resolve(&mut cache, "tool", path, Path::new("/")).unwrap();
    assert_eq!(moved.as_bytes(), b.join("tool").as_os_str().as_bytes());
    std::fs::remove_file(b.join("tool")).unwrap();
    let gone = resolve(&mut cache, "tool", path, Path::new("/")).unwrap_err();
    assert_eq!(gone.kind(), io::ErrorKind::NotFound);
    // A path with a slash is taken as it is, against the directory, and
    // must be an executable file.
    let x = a.join("x");
    std::fs::write(&x, "#!/bin/sh\n").unwrap();
    let denied = resolve(&mut cache, "./x", path, &a).unwrap_err();
    assert_eq!(denied.kind(), io::ErrorKind::PermissionDenied);
    std::fs::set_permissions(&x, std::fs::Permissions::from_mode(0o755)).unwrap();
    let rel = resolve(&mut cache, "./x", path, &a).unwrap();
    assert_eq!(rel.as_bytes(), a.join("./x").as_os_str().as_bytes());
    let missing = resolve(&mut cache, "./nope", path, &a).unwrap_err();
    assert_eq!(missing.kind(), io::ErrorKind::NotFound);
    // On PATH but not executable: refused, as a shell says; a directory
    // is no program.
    std::fs::write(b.join("plain"), "data\n").unwrap();
    let refused = resolve(&mut cache, "plain", path, Path::new("/")).unwrap_err();
    assert_eq!(refused.kind(), io::ErrorKind::PermissionDenied);
    let dir_err = resolve(&mut cache, "./b", path, &dir).unwrap_err();
    assert_eq!(dir_err.kind(), io::ErrorKind::IsADirectory);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Where the cache finds `program` (the fallbacks left out).
fn resolve(cache: &mut SpawnCache, program: &str, path: &[u8], cwd: &Path) -> io::Result<CString> {
    cache
        .locate(program, path, cwd, false)
        .map(|(found, _)| found)
}

#[test]
fn the_daemon_stays_dumpable_when_a_child_switches_user() {
    // As root: a child that became `nobody` while it shared the daemon's
    // memory made the kernel mark that memory not dumpable, the daemon's
    // too (and a process of that user could have traced the child and
    // written the daemon's memory). Such a child is a fork.
    assert!(
        Uid::effective().is_root(),
        "this test must run as root (CI runs as root)"
    );
    let dumpable = || {
        // SAFETY: prctl reads this process's dumpable flag; no pointers.
        unsafe { nix::libc::prctl(nix::libc::PR_GET_DUMPABLE, 0, 0, 0, 0) }
    };
    assert_eq!(dumpable(), 1, "the test process starts dumpable");
    let dir = std::env::temp_dir().join(format!("diakonos-dumpable-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let argv = ["/bin/true".to_owned()];
    let log = dir.join("true.log");
    let spec = SpawnSpec {
        argv: &argv,
        user: Some("nobody"),
        log: &log,
        ..spec(&[], &[])
    };
    let spawned = spawn(&spec, &mut SpawnCache::default()).expect("spawn as nobody");
    spawned.exec.wait().expect("its exec");
    let pid = spawned.pid;
    let _ = waitpid(pid, None);
    assert_eq!(dumpable(), 1, "still dumpable after the exec");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_limit_the_kernel_refuses_in_the_child_is_named_by_its_key() {
    // A soft limit above its hard one passes no check of the daemon's (the
    // unit parser refuses it; here it is built by hand) and the kernel
    // refuses it in the child: the error names LimitCORE, not "the limits".
    let dir = std::env::temp_dir().join(format!("diakonos-refused-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let argv = ["/bin/true".to_owned()];
    let log = dir.join("true.log");
    let key = crate::unit::RLIMIT_KEYS
        .iter()
        .position(|(k, _, _)| *k == "LimitCORE")
        .expect("LimitCORE in the table") as u8;
    let limits = Limits {
        rlimits: vec![crate::unit::Rlimit {
            key,
            soft: 8192,
            hard: 4096,
        }],
        ..NO_LIMITS.clone()
    };
    let spec = SpawnSpec {
        argv: &argv,
        log: &log,
        limits: &limits,
        ..spec(&[], &[])
    };
    let spawned = spawn(&spec, &mut SpawnCache::default()).expect("the clone");
    let pid = spawned.pid;
    let err = spawned
        .exec
        .wait()
        .expect_err("the kernel refuses the limit");
    let _ = waitpid(pid, None);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(
        err.to_string(),
        "LimitCORE: the kernel refused it: Invalid argument (os error 22); check its value in the unit file"
    );
    assert_eq!(super::child::refused_key(64), "Nice");
    assert_eq!(super::child::refused_key(68), "User");
    assert_eq!(super::child::refused_key(200), "Limit*");
}

#[test]
fn setup_errors_are_one_line_naming_the_key_and_what_to_do() {
    let cases = [
        (
            SetupError::NoSuch {
                key: "Group",
                name: "nogrp".into(),
            },
            "Group=nogrp: no such group",
        ),
        (
            SetupError::NeedsRoot {
                key: "User",
                name: "www".into(),
                runs_as: Some(1000),
            },
            "User=www needs the daemon to run as root (it runs as uid 1000); remove User= or run the daemon as root",
        ),
        (
            SetupError::NeedsRoot {
                key: "SupplementaryGroups",
                name: "adm".into(),
                runs_as: None,
            },
            "SupplementaryGroups=adm needs the daemon to run as root; remove SupplementaryGroups= or run the daemon as root",
        ),
        (
            SetupError::HardAboveDaemon {
                key: "LimitNOFILE",
                hard: crate::unit::RLIM_INFINITY,
                daemon: 4096,
            },
            "LimitNOFILE: hard limit infinity is above the daemon's 4096, which only root may raise; lower it or run the daemon as root",
        ),
        (
            SetupError::Refused {
                key: "User",
                errno: Errno::EPERM,
            },
            "User: the kernel refused it: Operation not permitted (os error 1); check its value in the unit file",
        ),
    ];
    for (e, text) in cases {
        assert_eq!(e.to_string(), text);
        assert_eq!(SpawnError::Setup(e).to_string(), text);
    }
}

#[test]
#[cfg_attr(
    not(target_arch = "x86_64"),
    ignore = "children are vforks there, never held"
)]
fn children_held_at_the_gate_exec_once_released() {
    // In the daemon, children cloned during a pass wait (in their own
    // session already) until the pass ends; then they exec. Here the
    // test's thread holds them (the gate is per thread).
    hold_children();
    let argv = ["/bin/sleep".to_owned(), "100".to_owned()];
    let spawned = spawn(
        &SpawnSpec {
            argv: &argv,
            ..spec(&[], &[])
        },
        &mut SpawnCache::default(),
    )
    .expect("the clone");
    let pid = spawned.pid;
    // Killed and reaped however the test ends (a failed assertion too).
    struct Reaped(Pid);
    impl Drop for Reaped {
        fn drop(&mut self) {
            release_children();
            let _ = nix::sys::signal::kill(self.0, Signal::SIGKILL);
            let _ = waitpid(self.0, None);
        }
    }
    let _child = Reaped(pid);
    let exe = || std::fs::read_link(format!("/proc/{pid}/exe")).ok();
    let ours = std::fs::read_link("/proc/self/exe").ok();
    // Blocked at the gate: asleep, still running this program, its own group.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while procfs::stat(pid.as_raw()).is_none_or(|s| !s.resting) {
        assert!(
            std::time::Instant::now() < deadline,
            "the child never waited"
        );
        std::thread::yield_now();
    }
    assert_eq!(exe(), ours, "held before its exec");
    assert_eq!(
        procfs::stat(pid.as_raw()).map(|s| s.pgrp),
        Some(pid.as_raw())
    );
    release_children();
    let outcome = spawned.exec.wait();
    let ran = exe();
    outcome.expect("its exec");
    assert!(ran.is_some_and(|p| p.ends_with("sleep")), "it runs sleep");
}

#[test]
fn pid_variables_are_completed_with_the_childs_pid() {
    // LISTEN_PID / WATCHDOG_PID: `NAME=` plus room; the child writes its
    // pid there, left-aligned and NUL-terminated (as `str(os.getpid())`).
    let vars = child::PidVars::new(&["LISTEN_PID", "WATCHDOG_PID"]);
    assert!(vars.names(b"LISTEN_PID=77"));
    assert!(vars.names(b"WATCHDOG_PID="));
    assert!(!vars.names(b"LISTEN_PIDS=1"));
    assert!(!vars.names(b"LISTEN_FDS=1"));
    for pid in [1, 9, 10, 4_194_304, 12_345] {
        vars.fill_for_test(pid);
        let entries: Vec<String> = vars
            .entries()
            // SAFETY: each entry is a NUL-terminated buffer the vars own.
            .map(|p| unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            entries,
            [format!("LISTEN_PID={pid}"), format!("WATCHDOG_PID={pid}")]
        );
    }
}
