//! Logs on disk (SPEC §7): size rotation of service logs and of daemon.log, and output written while no daemon ran.

use crate::util::{alive, sh, Home, WAIT};
use std::fs;
use std::time::Duration;

#[test]
fn logs_show_output_written_while_no_daemon_ran() {
    // `logs` reads the log file itself, so it works without a daemon.
    let h = Home::new("logs_show_output_written_while_no_daemon_ran");
    h.start_script("chatty", "Type = \"oneshot\"\n", "echo hello from chatty");
    let daemon = h.daemon_pid().expect("daemon pid");
    h.ok(&["kill"]);
    h.wait_until("the daemon to exit", WAIT, || !alive(daemon));
    let out = h.ok(&["logs", "chatty"]);
    assert!(out.contains("hello from chatty"), "{out}");
    assert!(h.daemons().is_empty(), "logs started a daemon");
}

#[test]
fn a_running_chatty_service_has_its_log_rotated() {
    // A service that keeps writing without restarting is rotated by the daemon's write-triggered size check.
    let h = Home::new("a_running_chatty_service_has_its_log_rotated");
    h.start_script(
        "chatty",
        "LogMaxBytes = 20000\nLogMaxFiles = 1\n",
        "while :; do printf '%0100d\\n' 0; sleep 0.01; done",
    );
    let pid = h.pid("chatty");
    let log = h.home.join("logs/chatty.log");
    let mut old = log.clone().into_os_string();
    old.push(".1");
    let old = std::path::PathBuf::from(old);
    h.wait_until("chatty.log to be rotated", Duration::from_secs(30), || {
        old.exists()
    });
    // The same process keeps writing into the same (truncated) file.
    assert_eq!(h.pid("chatty"), pid);
    let len_before = std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0);
    h.wait_until(
        "chatty to keep writing after rotation",
        Duration::from_secs(10),
        || std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0) > len_before,
    );
    assert!(std::fs::metadata(&old).map(|m| m.len()).unwrap_or(0) > 20_000);
}

#[test]
fn daemon_log_is_rotated_by_size() {
    // A restart loop fills daemon.log; with DIAKONOS_DAEMON_LOG_MAX_BYTES=2000 and _FILES=2 it is rotated, bounded, and no third old file is kept.
    let h = Home::new("daemon_log_is_rotated_by_size");
    h.unit(
        "loop",
        &format!(
            "[unit]\nStartLimitBurst = 0\n[service]\nRestart = \"always\"\nRestartSec = 0.01\nExecStart = {}\n",
            sh("exit 1")
        ),
    );
    let mut cmd = h.command(&["start", "loop"]);
    cmd.env("DIAKONOS_DAEMON_LOG_MAX_BYTES", "2000")
        .env("DIAKONOS_DAEMON_LOG_MAX_FILES", "2");
    let out = h.run(cmd);
    assert!(out.status.success(), "{}", crate::util::stderr(&out));
    let log = h.home.join("daemon.log");
    let old = |n: u32| h.home.join(format!("daemon.log.{n}"));
    // The first line (the daemon starting) is gone from all three files
    // once a third rotation dropped the oldest: read newest first, so a
    // rotation in between cannot hide it.
    let plenty = Duration::from_secs(30);
    h.wait_until("daemon.log to be rotated three times", plenty, || {
        old(2).exists()
            && ![log.clone(), old(1), old(2)]
                .iter()
                .any(|p| fs::read_to_string(p).is_ok_and(|t| t.contains("daemon starting")))
    });
    h.ok(&["stop", "loop"]);
    assert!(!old(3).exists(), "daemon.log.3 kept beyond 2 old files");
    for path in [log, old(1), old(2)] {
        let len = fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        // The limit plus at most one record written before the check.
        assert!(len <= 3000, "{} has {len} bytes", path.display());
    }
}

#[test]
fn a_stopped_service_has_its_log_rotated() {
    // A service that wrote past LogMaxBytes and is stopped has its log rotated when the stop completes, not at its next start.
    let h = Home::new("a_stopped_service_has_its_log_rotated");
    h.start_script(
        "chatty",
        "LogMaxBytes = 1000\nLogMaxFiles = 1\n",
        "printf '%05000d\\n' 0; echo $$ >> started; exec sleep 1000",
    );
    h.wait_lines("started", 1);
    let log = h.home.join("logs/chatty.log");
    let len = |p: &std::path::Path| fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    h.ok(&["stop", "chatty"]);
    assert!(
        len(&log) <= 1000,
        "chatty.log has {} bytes after stop",
        len(&log)
    );
    let old = h.home.join("logs/chatty.log.1");
    assert_eq!(len(&old), 5001, "chatty.log.1");
}
