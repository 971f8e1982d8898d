//! Resource limits and identity (SPEC §13): every value is read back from
//! `/proc` of the running service; bad values are load errors with
//! file:line:column; a value the daemon may not set fails the start at once.

use std::fs;

use crate::util::{sh, Home};

/// The line of `/proc/PID/limits` that starts with `label`, as (soft, hard).
fn limit(pid: i32, label: &str) -> (String, String) {
    let text = fs::read_to_string(format!("/proc/{pid}/limits")).expect("read /proc/PID/limits");
    let line = text
        .lines()
        .find(|l| l.starts_with(label))
        .unwrap_or_else(|| panic!("no {label} in {text}"));
    let words: Vec<&str> = line[label.len()..].split_whitespace().collect();
    (words[0].to_owned(), words[1].to_owned())
}

/// The value of `Key:` in `/proc/PID/status`.
fn status_field(pid: i32, key: &str) -> String {
    let text = fs::read_to_string(format!("/proc/{pid}/status")).expect("read /proc/PID/status");
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")))
        .unwrap_or_else(|| panic!("no {key} in {text}"))
        .trim()
        .to_owned()
}

/// The nice value (field 19 of /proc/PID/stat).
fn nice(pid: i32) -> i32 {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).expect("read /proc/PID/stat");
    let after = &text[text.rfind(')').expect("stat has a comm") + 2..];
    after
        .split_whitespace()
        .nth(16)
        .expect("nice field")
        .parse()
        .expect("a number")
}

#[test]
fn limits_nice_umask_and_oom_score_adj_are_read_back_from_proc() {
    // Each value the unit sets is what /proc shows for the running service; status lists them.
    let h = Home::new("limits_nice_umask_and_oom_score_adj");
    h.unit(
        "capped",
        "[service]\nExecStart = \"sleep 300\"\nLimitNOFILE = \"100:200\"\nLimitCORE = \"1K\"\nLimitNPROC = 500\nLimitFSIZE = \"2M:infinity\"\nNice = 7\nUMask = \"0027\"\nOOMScoreAdjust = 300\n",
    );
    h.ok(&["start", "capped"]);
    let pid = h.exec_pid("capped");
    assert_eq!(limit(pid, "Max open files"), ("100".into(), "200".into()));
    assert_eq!(
        limit(pid, "Max core file size"),
        ("1024".into(), "1024".into())
    );
    assert_eq!(limit(pid, "Max processes"), ("500".into(), "500".into()));
    assert_eq!(
        limit(pid, "Max file size"),
        ((2 << 20).to_string(), "unlimited".into())
    );
    assert_eq!(nice(pid), 7);
    assert_eq!(status_field(pid, "Umask"), "0027");
    let adj = fs::read_to_string(format!("/proc/{pid}/oom_score_adj")).expect("oom_score_adj");
    assert_eq!(adj.trim(), "300");
    let status = h.ok(&["status", "capped"]);
    assert!(status.contains("LimitNOFILE=100:200"), "{status}");
    assert!(status.contains("Nice=7"), "{status}");
    assert!(status.contains("UMask=0027"), "{status}");
    let v = h.status_json("capped");
    assert!(
        v["limits"]
            .as_array()
            .is_some_and(|l| l.iter().any(|x| x == "OOMScoreAdjust=300")),
        "{v}"
    );
}

#[test]
fn user_group_and_supplementary_groups_are_read_back_from_proc() {
    // As root: User, Group and SupplementaryGroups are the ids of the running service.
    assert!(
        nix::unistd::Uid::effective().is_root(),
        "this test must run as root (CI runs as root)"
    );
    let h = Home::new("user_group_and_supplementary_groups");
    h.unit(
        "who",
        "[service]\nExecStart = \"sleep 300\"\nUser = \"nobody\"\nGroup = \"daemon\"\nSupplementaryGroups = [\"adm\", \"users\"]\n",
    );
    h.ok(&["start", "who"]);
    let pid = h.pid("who");
    let nobody = nix::unistd::User::from_name("nobody")
        .ok()
        .flatten()
        .expect("user nobody");
    assert!(
        status_field(pid, "Uid").starts_with(&format!("{}\t", nobody.uid)),
        "{}",
        status_field(pid, "Uid")
    );
    assert!(
        status_field(pid, "Gid").starts_with("1\t"),
        "{}",
        status_field(pid, "Gid")
    );
    let groups: Vec<String> = status_field(pid, "Groups")
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    for g in ["1", "4", "100"] {
        assert!(groups.iter().any(|x| x == g), "{groups:?}");
    }

    // Group alone (root daemon, no User): only the group changes.
    h.unit(
        "grp",
        "[service]\nExecStart = \"sleep 300\"\nGroup = \"users\"\nSupplementaryGroups = \"adm\"\n",
    );
    h.ok(&["reload"]);
    h.ok(&["start", "grp"]);
    let pid = h.pid("grp");
    assert!(status_field(pid, "Uid").starts_with("0\t"));
    assert!(
        status_field(pid, "Gid").starts_with("100\t"),
        "{}",
        status_field(pid, "Gid")
    );
    assert_eq!(status_field(pid, "Groups"), "4");
}

#[test]
fn environment_file_with_comments_quotes_optional_and_missing_files() {
    // Files are read at each start, in order, Environment wins; a missing optional file is fine, a missing required one fails the start.
    let h = Home::new("environment_file_with_comments_quotes");
    fs::write(
        h.path("app.env"),
        "# a comment\n; another\n\nA=plain\nexport B=\"double \\\"quoted\\\" $x\"\nC='single # not a comment'\nD=from-file\n",
    )
    .expect("write app.env");
    h.unit(
        "envy",
        &format!(
            "[service]\nType = \"oneshot\"\nEnvironmentFile = [\"app.env\", \"-missing.env\"]\nEnvironment = [\"D=from-unit\"]\nExecStart = {}\n",
            sh("printf '%s|%s|%s|%s\\n' \"$A\" \"$B\" \"$C\" \"$D\" > out")
        ),
    );
    h.ok(&["start", "envy"]);
    h.wait_lines("out", 1);
    assert_eq!(
        h.lines("out"),
        ["plain|double \"quoted\" $x|single # not a comment|from-unit"]
    );
    // Read at each start: a changed file is seen without a reload.
    fs::write(h.path("app.env"), "A=changed\n").expect("rewrite app.env");
    h.ok(&["restart", "envy"]);
    h.wait_until("the new value", std::time::Duration::from_secs(30), || {
        h.lines("out")
            .first()
            .is_some_and(|l| l.starts_with("changed|"))
    });

    h.unit(
        "needy",
        "[service]\nEnvironmentFile = \"nope.env\"\nExecStart = \"sleep 300\"\nRestart = \"no\"\n",
    );
    h.ok(&["reload"]);
    let err = h.fails(1, &["start", "needy"]);
    assert!(
        err.contains("EnvironmentFile") && err.contains("nope.env"),
        "{err}"
    );
    assert!(err.contains("\"-"), "says how to make it optional: {err}");
}

#[test]
fn out_of_range_limits_are_load_errors_with_their_place() {
    // verify names file:line:column for each bad value.
    let h = Home::new("out_of_range_limits_are_load_errors");
    h.unit(
        "bad",
        "[service]\nExecStart = \"sleep 1\"\nNice = 30\nOOMScoreAdjust = -2000\nUMask = \"0999\"\nLimitNOFILE = \"200:100\"\nLimitNPROC = \"5K\"\nLimitCORE = \"lots\"\n",
    );
    let out = h.cmd(&["verify", "bad"]);
    assert_eq!(out.status.code(), Some(1));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for (line, key) in [
        (3, "Nice"),
        (4, "OOMScoreAdjust"),
        (5, "UMask"),
        (6, "LimitNOFILE"),
        (7, "LimitNPROC"),
        (8, "LimitCORE"),
    ] {
        assert!(
            text.lines()
                .any(|l| l.contains(&format!("bad.service:{line}:")) && l.contains(key)),
            "no error for {key} on line {line}:\n{text}"
        );
    }
}

#[test]
fn a_limit_the_daemon_may_not_set_fails_the_start_at_once() {
    // A hard open-files limit above the kernel's maximum (2^30, above any fs.nr_open): start exits 1 with the reason, the unit ends failed.
    let h = Home::new("a_limit_the_daemon_may_not_set_fails");
    h.unit(
        "greedy",
        "[service]\nExecStart = \"sleep 300\"\nRestart = \"no\"\nLimitNOFILE = 1073741824\n",
    );
    let err = h.fails(1, &["start", "greedy"]);
    assert!(err.contains("LimitNOFILE"), "{err}");
    assert_eq!(h.state("greedy"), "failed");
}

#[test]
fn a_memory_hog_is_stopped_and_restarted_with_the_reason() {
    // RSS above MemoryMax for two checks: stopped, restarted per policy, reason `memory limit: RSS X > Y`.
    let h = Home::new("a_memory_hog_is_stopped_and_restarted");
    h.unit(
        "hog",
        &format!(
            "[unit]\nStartLimitBurst = 0\n[service]\nMemoryMax = \"20M\"\nMemoryCheckSec = 0.2\nRestartSec = 3\nExecStart = {}\n",
            sh("echo $$ >> starts; exec python3 -c 'import time; b = b\"x\" * (64 << 20); time.sleep(300)'")
        ),
    );
    h.ok(&["start", "hog"]);
    let mut reason = String::new();
    h.wait_until(
        "restarting after the memory limit",
        std::time::Duration::from_secs(60),
        || {
            let v = h.status_json("hog");
            reason = v["reason"].as_str().unwrap_or_default().to_owned();
            v["state"] == "restarting" && !reason.is_empty()
        },
    );
    assert!(
        reason.starts_with("memory limit: RSS ") && reason.ends_with(" > 20M"),
        "{reason}"
    );
    h.wait_until("the restart", std::time::Duration::from_secs(60), || {
        h.lines("starts").len() >= 2
    });
}

#[test]
fn memory_max_is_still_enforced_after_an_upgrade_and_a_crash() {
    // The adopted process is checked as before: it grows past MemoryMax only once the daemon was replaced (upgrade, then SIGKILL), and is stopped with the memory reason.
    let h = Home::new("memory_max_is_still_enforced_after_an_upgrade");
    h.unit(
        "hog",
        &format!(
            "[service]\nMemoryMax = \"20M\"\nMemoryCheckSec = 0.2\nRestartSec = 300\nExecStart = {}\n",
            sh("exec python3 -c 'import os, time\nwhile not os.path.exists(\"grow\"): time.sleep(0.05)\nb = b\"x\" * (64 << 20)\nopen(\"grown\", \"w\").write(\"big\\n\")\ntime.sleep(300)'")
        ),
    );
    h.ok(&["start", "hog"]);
    let pid = h.pid("hog");
    h.replace_daemon("upgrade");
    h.replace_daemon("crash");
    assert_eq!(h.pid("hog"), pid, "the service was not adopted");
    fs::write(h.units.join("grow"), "").expect("write grow");
    h.wait_written("grown", "the service to grow");
    let mut reason = String::new();
    h.wait_until(
        "stopped for its memory",
        std::time::Duration::from_secs(60),
        || {
            let v = h.status_json("hog");
            reason = v["reason"].as_str().unwrap_or_default().to_owned();
            v["state"] == "restarting" && !reason.is_empty()
        },
    );
    assert!(reason.starts_with("memory limit: RSS "), "{reason}");
}

#[test]
fn a_service_under_its_memory_limit_keeps_running() {
    // A small process with MemoryMax set is checked and left alone.
    let h = Home::new("a_service_under_its_memory_limit");
    h.unit(
        "small",
        &format!(
            "[service]\nMemoryMax = \"200M\"\nMemoryCheckSec = 0.1\nExecStart = {}\n",
            sh("echo $$ >> starts; exec sleep 300")
        ),
    );
    h.ok(&["start", "small"]);
    let pid = h.pid("small");
    h.stays(
        "running with the same pid",
        std::time::Duration::from_secs(1),
        || h.pid("small") == pid,
    );
    assert_eq!(h.lines("starts").len(), 1);
    let status = h.ok(&["status", "small"]);
    assert!(status.contains("MemoryMax=200M"), "{status}");
}

#[test]
fn verify_and_start_name_an_unknown_group() {
    // A group that does not exist: verify says so, and start fails at once naming it.
    let h = Home::new("verify_and_start_name_an_unknown_group");
    h.unit(
        "g",
        "[service]\nExecStart = \"sleep 300\"\nRestart = \"no\"\nGroup = \"no-such-group-dk\"\n",
    );
    let out = h.cmd(&["verify", "g"]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(text.contains("unknown Group `no-such-group-dk`"), "{text}");
    assert!(
        text.contains("g.service:4:9"),
        "placed at the value: {text}"
    );
    let err = h.fails(1, &["start", "g"]);
    assert!(
        err.contains("Group=no-such-group-dk: no such group"),
        "{err}"
    );
}

#[test]
fn a_numeric_user_and_group_need_no_passwd_entry() {
    // As root: User = "<uid>" with no passwd entry runs as that uid with the
    // same gid, HOME=/ and USER=<uid>; a numeric Group with no entry is that
    // gid; `verify` accepts both; a uid that has an entry takes its name.
    assert!(
        nix::unistd::Uid::effective().is_root(),
        "this test must run as root (CI runs as root)"
    );
    let free = |from: u32| {
        (from..from + 1000)
            .find(|&n| {
                matches!(nix::unistd::User::from_uid(n.into()), Ok(None))
                    && matches!(nix::unistd::Group::from_gid(n.into()), Ok(None))
            })
            .expect("a free id")
    };
    let (uid, gid) = (free(54321), free(58000));
    let h = Home::new("a_numeric_user_and_group_need_no_passwd_entry");
    let shared = h.root.join("shared");
    crate::util::world_writable(&shared);
    let dir = crate::util::toml_str(&shared.display().to_string());
    let report = |out: &str| {
        sh(&format!(
            "{{ id -u; id -g; echo \"$HOME\"; echo \"$USER\"; }} > {out}"
        ))
    };
    h.unit(
        "byuid",
        &format!("[service]\nType = \"oneshot\"\nUser = \"{uid}\"\nWorkingDirectory = {dir}\nExecStart = {}\n", report("byuid.out")),
    );
    h.unit(
        "bygid",
        &format!("[service]\nType = \"oneshot\"\nUser = \"{uid}\"\nGroup = \"{gid}\"\nWorkingDirectory = {dir}\nExecStart = {}\n", report("bygid.out")),
    );
    let nobody = nix::unistd::User::from_name("nobody")
        .ok()
        .flatten()
        .expect("user nobody");
    h.unit(
        "nobody",
        &format!("[service]\nType = \"oneshot\"\nUser = \"{}\"\nWorkingDirectory = {dir}\nExecStart = {}\n", nobody.uid, report("nobody.out")),
    );
    h.ok(&["verify"]);
    h.ok(&["start", "byuid", "bygid", "nobody"]);
    let read = |f: &str| crate::util::read_lines(&shared.join(f));
    let (u, g) = (uid.to_string(), gid.to_string());
    assert_eq!(read("byuid.out"), [u.as_str(), u.as_str(), "/", u.as_str()]);
    assert_eq!(read("bygid.out"), [u.as_str(), g.as_str(), "/", u.as_str()]);
    let home = nobody.dir.display().to_string();
    assert_eq!(
        read("nobody.out"),
        [
            nobody.uid.to_string().as_str(),
            nobody.gid.to_string().as_str(),
            home.as_str(),
            "nobody"
        ]
    );
}

#[test]
fn a_user_service_owns_its_log_and_is_refused_what_only_root_may_run() {
    // As root: the log of a User= service is that user's (it writes it);
    // a program only root may execute fails the start with the reason,
    // found by the child after it became the user.
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    assert!(
        nix::unistd::Uid::effective().is_root(),
        "this test must run as root (CI runs as root)"
    );
    let nobody = nix::unistd::User::from_name("nobody")
        .ok()
        .flatten()
        .expect("user nobody");
    let h = Home::new("a_user_service_owns_its_log");
    h.unit(
        "writer",
        &format!(
            "[service]\nUser = \"nobody\"\nExecStart = {}\n",
            sh("echo \"written by $(id -u)\"; exec sleep 300")
        ),
    );
    h.ok(&["start", "writer"]);
    h.remember(h.pid("writer"));
    let log = h.home.join("logs").join("writer.log");
    let expected = format!("written by {}", nobody.uid);
    h.wait_until("the service's line in its log", crate::util::WAIT, || {
        fs::read_to_string(&log).is_ok_and(|t| t.contains(&expected))
    });
    let meta = fs::metadata(&log).expect("the log");
    assert_eq!(meta.uid(), nobody.uid.as_raw(), "log owner");

    let secret = h.root.join("root-only.sh");
    fs::write(&secret, "#!/bin/sh\nexec sleep 300\n").expect("write the script");
    fs::set_permissions(&secret, fs::Permissions::from_mode(0o700)).expect("chmod 0700");
    h.unit(
        "denied",
        &format!(
            "[service]\nUser = \"nobody\"\nRestart = \"no\"\nExecStart = {}\n",
            crate::util::toml_str(&secret.display().to_string())
        ),
    );
    h.ok(&["reload"]);
    let err = h.fails(1, &["start", "denied"]);
    assert!(err.contains("permission denied"), "{err}");
    assert_eq!(h.state("denied"), "failed");
}

#[test]
fn oom_score_adjust_is_the_services_alone() {
    // The kernel gives an oom_score_adj write to every process sharing the
    // writer's memory: the child that writes it must share none with the
    // daemon. The daemon's own score, and the next service's, stay ours.
    let h = Home::new("oom_score_adjust_is_the_services_alone");
    h.unit(
        "low",
        "[service]\nExecStart = \"sleep 300\"\nOOMScoreAdjust = 700\n",
    );
    h.unit("plain", "[service]\nExecStart = \"sleep 300\"\n");
    let oom = |pid: i32| {
        fs::read_to_string(format!("/proc/{pid}/oom_score_adj"))
            .expect("oom_score_adj")
            .trim()
            .to_owned()
    };
    let ours = oom(std::process::id() as i32);
    h.ok(&["start", "low"]);
    assert_eq!(oom(h.exec_pid("low")), "700");
    let daemon = h.daemon_pid().expect("the daemon's pid");
    assert_eq!(oom(daemon), ours, "the daemon's score");
    h.ok(&["start", "plain"]);
    assert_eq!(oom(h.exec_pid("plain")), ours, "the next service's score");
}

#[test]
fn a_working_directory_the_user_may_not_enter_fails_the_start() {
    // As root: User = nobody in a 0700 directory of root's fails at once, naming the directory (systemd enters it as the user too); a 0755 one is fine.
    use std::os::unix::fs::PermissionsExt;
    assert!(
        nix::unistd::Uid::effective().is_root(),
        "this test must run as root (CI runs as root)"
    );
    let h = Home::new("a_working_directory_the_user_may_not_enter");
    for (dir, mode) in [("private", 0o700), ("public", 0o755)] {
        let dir = h.root.join(dir);
        fs::create_dir_all(&dir).expect("create a directory");
        fs::set_permissions(&dir, fs::Permissions::from_mode(mode)).expect("chmod");
        h.unit(
            &format!("in-{}", dir.file_name().and_then(|n| n.to_str()).expect("name")),
            &format!(
                "[service]\nUser = \"nobody\"\nRestart = \"no\"\nWorkingDirectory = \"{}\"\nExecStart = \"sleep 300\"\n",
                dir.display()
            ),
        );
    }
    let err = h.fails(1, &["start", "in-private"]);
    assert!(
        err.contains(&format!(
            "cannot enter WorkingDirectory {}",
            h.root.join("private").display()
        )) && err.contains("Permission denied"),
        "{err}"
    );
    assert_eq!(h.state("in-private"), "failed");
    h.ok(&["start", "in-public"]);
    assert_eq!(h.state("in-public"), "running");
}

#[test]
fn a_user_service_runs_the_program_on_its_path_that_it_may_run() {
    // As root: the first `tool` on PATH is in a directory only root may
    // enter. The daemon (root) finds that one; the service, running as
    // nobody, gets the next, as execvp would have found it.
    use std::os::unix::fs::PermissionsExt;
    assert!(
        nix::unistd::Uid::effective().is_root(),
        "this test must run as root (CI runs as root)"
    );
    let h = Home::new("a_user_service_runs_the_program_on_its_path");
    let (private, public, shared) = (
        h.root.join("private"),
        h.root.join("public"),
        h.root.join("shared"),
    );
    crate::util::world_writable(&shared);
    for (dir, mode, word) in [(&private, 0o700, "private"), (&public, 0o755, "public")] {
        fs::create_dir_all(dir).expect("create a PATH directory");
        let tool = dir.join("tool");
        fs::write(&tool, format!("#!/bin/sh\necho {word} > \"$1\"\n")).expect("write tool");
        fs::set_permissions(&tool, fs::Permissions::from_mode(0o755)).expect("chmod tool");
        fs::set_permissions(dir, fs::Permissions::from_mode(mode)).expect("chmod dir");
    }
    let out = shared.join("which.out");
    h.unit(
        "finder",
        &format!(
            "[service]\nType = \"oneshot\"\nUser = \"nobody\"\nEnvironment = [\"PATH={}:{}:/usr/bin:/bin\"]\nExecStart = \"tool {}\"\n",
            private.display(),
            public.display(),
            out.display()
        ),
    );
    h.ok(&["start", "finder"]);
    assert_eq!(crate::util::read_lines(&out), ["public"]);
}

#[test]
fn the_daemon_raises_its_open_files_limit_and_services_keep_the_one_it_had() {
    // A daemon started with a soft open-files limit below the hard one
    // raises its own (a pidfd per adopted service); its services get the
    // limit it was started with, unless their unit sets LimitNOFILE.
    use std::os::unix::process::CommandExt;
    let (_, hard) = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .expect("getrlimit");
    assert!(
        hard > 256,
        "this test needs a hard open-files limit above 256"
    );
    let h = Home::new("the_daemon_raises_its_open_files_limit");
    h.unit("plain", "[service]\nExecStart = \"sleep 300\"\n");
    h.unit(
        "own",
        "[service]\nExecStart = \"sleep 300\"\nLimitNOFILE = \"100:200\"\n",
    );
    let mut cmd = h.command(&["start", "plain", "own"]);
    // SAFETY: runs in the forked client before exec; setrlimit is a single
    // async-signal-safe system call on values copied in.
    unsafe {
        cmd.pre_exec(move || {
            nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE, 256, hard)
                .map_err(std::io::Error::from)
        });
    }
    let out = h.run(cmd);
    assert!(out.status.success(), "{}", crate::util::stderr(&out));
    let daemon = h.daemon_pid().expect("the daemon's pid");
    let show = |n: u64| {
        if n == u64::MAX {
            "unlimited".to_owned()
        } else {
            n.to_string()
        }
    };
    let raised = show(hard.min(1 << 20));
    assert_eq!(limit(daemon, "Max open files"), (raised, show(hard)));
    assert_eq!(
        limit(h.exec_pid("plain"), "Max open files"),
        ("256".to_owned(), show(hard))
    );
    assert_eq!(
        limit(h.exec_pid("own"), "Max open files"),
        ("100".to_owned(), "200".to_owned())
    );
}

#[test]
fn infinity_is_as_much_as_may_be_had() {
    // LimitNOFILE = "infinity" starts (systemd's clamp): fs.nr_open with CAP_SYS_RESOURCE, else the daemon's own hard limit; never a failed start.
    let h = Home::new("limits_infinity");
    h.unit(
        "open",
        "[service]\nExecStart = \"sleep 300\"\nLimitNOFILE = \"infinity\"\n",
    );
    h.ok(&["start", "open"]);
    let pid = h.exec_pid("open");
    let nr_open = std::fs::read_to_string("/proc/sys/fs/nr_open").expect("fs.nr_open");
    let caps = std::fs::read_to_string("/proc/self/status").expect("status");
    let eff = caps
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|h| u64::from_str_radix(h.trim(), 16).ok())
        .unwrap_or(0);
    let expected = if eff & (1 << 24) != 0 {
        nr_open.trim().to_owned()
    } else {
        let (_, hard) = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
            .expect("getrlimit");
        hard.to_string()
    };
    assert_eq!(limit(pid, "Max open files").1, expected);
}
