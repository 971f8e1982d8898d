//! sd_notify (SPEC §11) with real senders: a service of another `User=`
//! reaching a root daemon's notify socket, Debian's redis-server with
//! `--supervised systemd`, STATUS= text, and STOPPING=1.

use std::net::TcpListener;
use std::time::Duration;

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
fn a_simple_service_that_names_notify_access_gets_the_socket() {
    // Type simple with NotifyAccess written: $NOTIFY_SOCKET is set and its STATUS= shows; it was up at spawn all along.
    let h = Home::new("simple_notify_access");
    h.unit(
        "worker",
        &format!(
            "[service]\nNotifyAccess = \"main\"\nExecStart = {}\n",
            sender(&["STATUS=3 jobs queued"], "time.sleep(1000)")
        ),
    );
    // Without the key, a simple service has no socket (the sender fails).
    h.unit(
        "plain",
        &format!(
            "[service]\nRestart = \"no\"\nExecStart = {}\n",
            sender(&["STATUS=x"], "time.sleep(1000)")
        ),
    );
    h.ok(&["start", "worker", "plain"]);
    h.wait_until("its STATUS= heard", Duration::from_secs(10), || {
        h.unit_json("worker")["status_text"] == "3 jobs queued"
    });
    assert_eq!(h.unit_json("worker")["state"], "running");
    h.wait_until("the sender failed", Duration::from_secs(10), || {
        std::fs::read_to_string(h.home.join("logs/plain.log"))
            .is_ok_and(|log| log.contains("KeyError: 'NOTIFY_SOCKET'"))
    });
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
fn a_watchdog_timeout_gives_the_service_its_signal_alone_until_the_stop_timeout() {
    // A service that handles SIGABRT and SIGTERM by noting them: after the watchdog runs out it gets WatchdogSignal (SIGABRT) only, for TimeoutStopSec (time to write a dump), then SIGKILL; never KillSignal on the heels of SIGABRT.
    let h = Home::new("notify_watchdog_signal_alone");
    h.unit(
        "w",
        &format!(
            "[service]\nWatchdogSec = 0.5\nTimeoutStopSec = 1.5\nRestart = \"no\"\nExecStart = {}\n",
            sender(
                &[],
                "import signal; \
                 signal.signal(signal.SIGABRT, lambda *_: open('signals', 'a').write('abrt\\n')); \
                 signal.signal(signal.SIGTERM, lambda *_: open('signals', 'a').write('term\\n')); \
                 open('ready', 'w').write('x'); time.sleep(1000)"
            )
        ),
    );
    h.ok(&["start", "w"]);
    let pid = h.pid("w");
    h.wait_written("signals", "the watchdog's SIGABRT");
    h.wait_until("the service killed", WAIT, || gone(pid));
    assert_eq!(h.lines("signals"), ["abrt"]);
    let u = h.unit_json("w");
    assert_eq!(u["state"], "failed", "{u}");
    assert_eq!(u["reason"], "watchdog timeout", "{u}");
    assert_eq!(u["last_exit"]["signal"], "SIGKILL", "{u}");
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
        "alert",
        &format!(
            "[service]\nType = \"oneshot\"\nExecStart = {}\n",
            sh("echo \"$DIAKONOS_MONITOR_REASON\" >> alert.seen")
        ),
    );
    h.unit(
        "bad",
        &format!(
            "[unit]\nOnFailure = [\"alert\"]\n[service]\nType = \"notify\"\nRestart = \"no\"\nExecStart = {}\n",
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
    // The failure hook is told the text `status` shows.
    h.wait_lines("alert.seen", 1);
    assert_eq!(
        h.lines("alert.seen"),
        ["exited with code 1 (errno 2: No such file or directory)"]
    );
}

/// A notify service that forks a child, says `MAINPID=<child>` and
/// `READY=1`, and exits: the child is the service from then on. Each
/// child writes its pid to `children` before it reports it.
fn handing_over_to_a_child() -> String {
    let script = "import os, socket, sys, time\n\
                  a = os.environ['NOTIFY_SOCKET']\n\
                  a = '\\0' + a[1:] if a.startswith('@') else a\n\
                  pid = os.fork()\n\
                  if pid == 0:\n    time.sleep(1000)\n    sys.exit(0)\n\
                  open('children', 'a').write('%d\\n' % pid)\n\
                  s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\n\
                  s.sendto(('MAINPID=%d\\nREADY=1' % pid).encode(), a)\n";
    toml_str(&format!(
        "/usr/bin/python3 -c {}",
        shell_words::quote(script).replace('$', "$$")
    ))
}

#[test]
fn mainpid_of_a_forked_child_makes_it_the_service() {
    // The starter forks, reports MAINPID=child and exits: the service stays
    // running as the child; killing the child is the service's exit.
    let h = Home::new("notify_mainpid");
    h.unit(
        "d",
        &format!(
            "[service]\nType = \"notify\"\nRestartSec = 0\nTimeoutStartSec = 20\nExecStart = {}\n",
            handing_over_to_a_child()
        ),
    );
    h.ok(&["start", "d"]);
    h.wait_lines("children", 1);
    let child: i32 = h.lines("children")[0].parse().expect("a pid");
    h.wait_until("the service to name the child as its pid", WAIT, || {
        h.pid("d") == child
    });
    let starter = Stat::of(child).map(|s| s.pgrp).unwrap_or(0);
    // The starter (the group leader) exits; the service stays up as the child.
    h.wait_until("the starter to exit", WAIT, || !alive(starter));
    h.stays("running as the child", Duration::from_millis(500), || {
        let u = h.unit_json("d");
        u["state"] == "running" && u["pid"] == child && u["restarts"] == 0
    });
    let status = h.ok(&["status", "d"]);
    assert!(status.contains(&format!("(pid {child}")), "{status}");
    // The child's death is the service's: it is restarted per policy.
    kill9(child);
    h.wait_lines("children", 2);
    let second: i32 = h.lines("children")[1].parse().expect("a pid");
    h.wait_until("the service to run as the new child", WAIT, || {
        let u = h.unit_json("d");
        u["state"] == "running" && u["pid"] == second && u["restarts"] == 1
    });
    let u = h.unit_json("d");
    assert_eq!(u["last_exit"]["signal"], "SIGKILL", "{u}");
}

#[test]
fn mainpid_outside_the_group_is_refused() {
    // MAINPID=1 is not a process of the service's group: ignored with a
    // warning in daemon.log; the service's main process stays its own.
    let h = Home::new("notify_mainpid_refused");
    h.unit(
        "d",
        &format!(
            "[service]\nType = \"notify\"\nTimeoutStartSec = 20\nExecStart = {}\n",
            sender(&["MAINPID=1\nREADY=1"], "time.sleep(1000)")
        ),
    );
    h.ok(&["start", "d"]);
    let pid = h.pid("d");
    assert_ne!(pid, 1);
    assert_eq!(h.state("d"), "running");
    let log = || std::fs::read_to_string(h.home.join("daemon.log")).unwrap_or_default();
    h.wait_until("the refusal in daemon.log", WAIT, || {
        log().contains("d: MAINPID=1 refused")
    });
    assert_eq!(h.pid("d"), pid);
}

#[test]
fn a_mainpid_survives_a_daemon_crash() {
    // The main process named by MAINPID= is in the state file: a new
    // daemon adopts it (not the dead starter), and a stop reaches its group
    // (which the child leads not: its pgid is the dead starter's pid).
    let h = Home::new("notify_mainpid_crash");
    h.unit(
        "d",
        &format!(
            "[service]\nType = \"notify\"\nRestartSec = 0\nTimeoutStartSec = 20\nTimeoutStopSec = 30\nExecStart = {}\n",
            handing_over_to_a_child()
        ),
    );
    h.ok(&["start", "d"]);
    h.wait_lines("children", 1);
    let child: i32 = h.lines("children")[0].parse().expect("a pid");
    h.wait_until("the service to name the child as its pid", WAIT, || {
        h.pid("d") == child
    });
    let daemon = h.daemon_pid().expect("daemon pid");
    kill9(daemon);
    h.wait_until("the daemon to die", WAIT, || !alive(daemon));
    // The next command starts a new daemon, which adopts the child.
    let u = h.unit_json("d");
    assert_eq!(
        (u["state"].as_str(), u["pid"].as_i64()),
        (Some("running"), Some(child as i64)),
        "{u}"
    );
    let started = std::time::Instant::now();
    let out = h.run_within(h.command(&["restart", "d"]), Duration::from_secs(40));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the stop waited for TimeoutStopSec: its signal missed the group"
    );
    assert!(!alive(child), "the adopted child outlived the restart");
    h.wait_lines("children", 2);
    let second: i32 = h.lines("children")[1].parse().expect("a pid");
    h.wait_until("the service to run as the new child", WAIT, || {
        h.pid("d") == second
    });
}

#[test]
fn reloading_shows_until_ready() {
    // RELOADING=1 (with MONOTONIC_USEC a minute back): `running` with the
    // sub-state `reloading` for a minute already, until READY=1.
    let h = Home::new("notify_reloading");
    let script = "import os, socket, time\n\
                  a = os.environ['NOTIFY_SOCKET']\n\
                  a = '\\0' + a[1:] if a.startswith('@') else a\n\
                  s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\n\
                  s.sendto(b'READY=1', a)\n\
                  while not os.path.exists('go-reload'): time.sleep(0.02)\n\
                  t = int(time.clock_gettime(time.CLOCK_MONOTONIC) * 1e6) - 60000000\n\
                  s.sendto(('RELOADING=1\\nMONOTONIC_USEC=%d' % t).encode(), a)\n\
                  while not os.path.exists('go-ready'): time.sleep(0.02)\n\
                  s.sendto(b'READY=1', a)\n\
                  open('done', 'w').write('done\\n')\n\
                  time.sleep(1000)\n";
    h.unit(
        "d",
        &format!(
            "[service]\nType = \"notify\"\nTimeoutStartSec = 20\nExecStart = {}\n",
            toml_str(&format!(
                "/usr/bin/python3 -c {}",
                shell_words::quote(script).replace('$', "$$")
            ))
        ),
    );
    h.ok(&["start", "d"]);
    assert!(h.unit_json("d")["substate"].is_null());
    std::fs::write(h.units.join("go-reload"), "").expect("write go-reload");
    h.wait_until("the unit to be reloading", WAIT, || {
        h.unit_json("d")["substate"] == "reloading"
    });
    let u = h.unit_json("d");
    assert_eq!(u["state"], "running", "{u}");
    assert!(u["substate_secs"].as_u64().is_some_and(|s| s >= 60), "{u}");
    let list = h.ok(&["list"]);
    assert!(list.contains("running (reloading)"), "{list}");
    let status = h.ok(&["status", "d"]);
    assert!(status.contains("running (pid "), "{status}");
    assert!(status.contains("(reloading for 1m"), "{status}");
    std::fs::write(h.units.join("go-ready"), "").expect("write go-ready");
    h.wait_lines("done", 1);
    h.wait_until("the reload to end", WAIT, || {
        let u = h.unit_json("d");
        u["substate"].is_null() && u["state"] == "running"
    });
}

#[test]
fn a_notify_unit_still_starting_is_adopted_as_starting() {
    // The daemon dies while a notify unit waits to send READY=1: the next
    // daemon takes it over as starting (same pid), its dependent waits,
    // and its READY=1 makes both up.
    let h = Home::new("a_notify_unit_still_starting_is_adopted_as_starting");
    h.unit(
        "n",
        &format!(
            "[service]\nType = \"notify\"\nTimeoutStartSec = 120\nExecStart = {}\n",
            sender(
                &[],
                "open('n.started', 'w').close()\nwhile not os.path.exists('go'): time.sleep(0.02)\n\
                 s.sendto(b'READY=1', a); time.sleep(1000)"
            )
        ),
    );
    h.unit(
        "d",
        "[unit]\nRequires = [\"n\"]\n[service]\nExecStart = \"sleep 1000\"\n",
    );
    // `start` waits for READY=1 (from the next daemon, once its own is gone).
    let client = Background(h.command(&["start", "d"]).spawn().expect("start d"));
    h.wait_until("n to run", WAIT, || h.units.join("n.started").exists());
    let pid = h.pid("n");
    assert_eq!(h.state("n"), "starting");
    let daemon = h.daemon_pid().expect("daemon pid");
    kill9(daemon);
    h.wait_until("the daemon to die", WAIT, || !alive(daemon));
    let n = h.unit_json("n");
    assert_eq!(n["state"], "starting", "{n}");
    assert_eq!(n["pid"], pid, "{n}");
    assert_eq!(h.state("d"), "waiting");
    std::fs::write(h.units.join("go"), "").expect("write go");
    h.wait_until("n and d to be up", WAIT, || {
        h.state("n") == "running" && h.state("d") == "running"
    });
    assert_eq!(h.pid("n"), pid);
    drop(client);
}
