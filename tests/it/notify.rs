//! sd_notify (SPEC §11) with real senders: a service of another `User=`
//! reaching a root daemon's notify socket, Debian's redis-server with
//! `--supervised systemd`, STATUS= text, and STOPPING=1.

use std::net::TcpListener;

use crate::util::*;

/// A python3 one-liner (the system's, which every user can run) that sends
/// `msg` to $NOTIFY_SOCKET, then runs `then`.
fn sender(msgs: &[&str], then: &str) -> String {
    let sends: String = msgs
        .iter()
        .map(|m| format!("s.sendto({m:?}.encode(), a); "))
        .collect();
    let script = format!(
        "import os, socket, sys, time; a = os.environ['NOTIFY_SOCKET']; \
         a = '\\0' + a[1:] if a.startswith('@') else a; \
         s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); {sends}{then}"
    );
    toml_str(&format!(
        "/usr/bin/python3 -c {}",
        shell_words::quote(&script).replace('$', "$$")
    ))
}

fn assert_root() {
    assert!(
        nix::unistd::Uid::effective().is_root(),
        "this test needs root to run a service as another user (CI runs as root)"
    );
}

#[test]
fn a_notify_service_of_another_user_gets_ready_with_its_status() {
    assert_root();
    let h = Home::new("notify_other_user_ready");
    h.unit(
        "pg",
        &format!(
            "[service]\nType = \"notify\"\nUser = \"nobody\"\nWorkingDirectory = \"/\"\nTimeoutStartSec = 20\nExecStart = {}\n",
            sender(&["READY=1\nSTATUS=serving 3 clients"], "time.sleep(1000)")
        ),
    );
    h.ok(&["start", "pg"]);
    let u = h.unit_json("pg");
    assert_eq!(u["state"], "running", "{u}");
    assert_eq!(u["status_text"], "serving 3 clients", "{u}");
    let pid = h.pid("pg");
    let uid = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1).map(str::to_owned));
    assert_eq!(uid.as_deref(), Some("65534"), "not running as nobody");
    assert!(h.ok(&["list"]).contains("serving 3 clients"));
    let status = h.ok(&["status", "pg"]);
    assert!(
        status
            .lines()
            .any(|l| l.trim_start().starts_with("status:") && l.ends_with(" serving 3 clients")),
        "{status}"
    );
    // Nothing of the home opened: still 0700.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&h.home).map(|m| m.permissions().mode() & 0o777);
    assert_eq!(mode.ok(), Some(0o700));
}

#[test]
fn redis_supervised_by_systemd_protocol_gets_ready() {
    // Debian's redis-server speaks sd_notify with `--supervised systemd`.
    assert_root();
    let h = Home::new("notify_redis");
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind 127.0.0.1:0");
    h.unit(
        "redis",
        &format!(
            "[service]\nType = \"notify\"\nUser = \"nobody\"\nWorkingDirectory = \"/\"\nTimeoutStartSec = 20\n\
             ExecStart = \"/usr/bin/redis-server --supervised systemd --port {port} --bind 127.0.0.1 --save '' --appendonly no --dir /\"\n"
        ),
    );
    h.ok(&["start", "redis"]);
    let u = h.unit_json("redis");
    assert_eq!(u["state"], "running", "{u}");
    assert!(
        u["status_text"].as_str().is_some_and(|t| !t.is_empty()),
        "redis sends STATUS=: {u}"
    );
    h.ok(&["stop", "redis"]);
}

#[test]
fn stopping_then_exiting_is_not_restarted() {
    // STOPPING=1: the service goes down on its own; Restart=always does not bring it back.
    let h = Home::new("notify_stopping");
    h.unit(
        "w",
        &format!(
            "[service]\nType = \"notify\"\nRestart = \"always\"\nRestartSec = 0\nExecStart = {}\n",
            sender(
                &["READY=1"],
                "open('starts', 'a').write('x\\n'); time.sleep(0.2); s.sendto(b'STOPPING=1', a); time.sleep(0.2); sys.exit(3)"
            )
        ),
    );
    h.ok(&["start", "w"]);
    h.wait_state("w", "failed");
    let u = h.unit_json("w");
    assert_eq!(u["restarts"], 0, "{u}");
    assert_eq!(h.lines("starts").len(), 1);
}

#[test]
fn a_watchdog_that_stops_being_pinged_restarts_the_service() {
    // WatchdogSec on a simple service: it gets NOTIFY_SOCKET, WATCHDOG_USEC
    // and WATCHDOG_PID (its own pid); pings keep it, silence ends it with
    // WatchdogSignal and a restart, reason "watchdog timeout".
    let h = Home::new("notify_watchdog");
    h.unit(
        "w",
        &format!(
            "[service]\nWatchdogSec = 1\nRestartSec = 2\nExecStart = {}\n",
            sender(
                &[],
                "open('env', 'a').write('%d %s %s\\n' % (os.getpid(), os.environ.get('WATCHDOG_PID'), os.environ.get('WATCHDOG_USEC'))); \
                 [ (s.sendto(b'WATCHDOG=1', a), open('pings', 'a').write('p\\n'), time.sleep(0.1)) for _ in range(15) ]; time.sleep(1000)"
            )
        ),
    );
    h.ok(&["start", "w"]);
    h.wait_lines("env", 1);
    let env = h.lines("env");
    let f: Vec<&str> = env[0].split_whitespace().collect();
    assert_eq!(f.len(), 3, "{env:?}");
    assert_eq!(f[0], f[1], "WATCHDOG_PID is not the service's pid: {env:?}");
    assert_eq!(f[2], "1000000");
    let first: i32 = f[0].parse().expect("pid");
    assert_eq!(h.pid("w"), first);
    h.wait_until("the watchdog to run out after the pings stop", WAIT, || {
        let u = h.unit_json("w");
        u["state"] == "restarting" && u["reason"] == "watchdog timeout"
    });
    // It was pinged for 1.5 s (longer than WatchdogSec) before that.
    assert!(h.lines("pings").len() >= 15, "{:?}", h.lines("pings"));
    assert!(gone(first));
    h.wait_lines("env", 2);
}

#[test]
fn extend_timeout_and_errno_are_heard() {
    // EXTEND_TIMEOUT_USEC moves the start deadline past TimeoutStartSec;
    // ERRNO= is added to the failure reason.
    let h = Home::new("notify_extend_errno");
    h.unit(
        "slow",
        &format!(
            "[service]\nType = \"notify\"\nTimeoutStartSec = 0.5\nExecStart = {}\n",
            sender(
                &["EXTEND_TIMEOUT_USEC=5000000"],
                "time.sleep(1.5); s.sendto(b'READY=1', a); time.sleep(1000)"
            )
        ),
    );
    h.unit(
        "bad",
        &format!(
            "[service]\nType = \"notify\"\nRestart = \"no\"\nExecStart = {}\n",
            sender(
                &["READY=1"],
                "s.sendto(b'ERRNO=2', a); time.sleep(0.3); sys.exit(1)"
            )
        ),
    );
    h.ok(&["start", "slow"]);
    assert_eq!(h.state("slow"), "running");
    // It may fail before `start` returns: only the end state matters here.
    let _ = h.cmd(&["start", "bad"]);
    h.wait_state("bad", "failed");
    let u = h.unit_json("bad");
    assert_eq!(
        u["reason"], "exited with code 1 (errno 2: No such file or directory)",
        "{u}"
    );
}
