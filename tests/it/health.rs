//! Health checks (SPEC §10) against real processes: a Python HTTP server
//! that is SIGSTOPped and replaced, a Readiness probe gating a dependent,
//! `mark` leaving a failing unit alone, `stop` leaving it failed, and an
//! Exec probe that hangs being killed with its group.

use std::net::TcpListener;
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::util::*;

/// A port that was free a moment ago (bound to 0, read, dropped).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind 127.0.0.1:0")
}

fn health_of(h: &Home, name: &str) -> String {
    h.unit_json(name)["health"]
        .as_str()
        .unwrap_or("null")
        .to_owned()
}

#[test]
fn a_sigstopped_http_server_is_replaced() {
    // A hung web server (SIGSTOP: the process exists, nothing answers) is
    // judged unhealthy after FailureThreshold timed-out probes, stopped
    // through the normal escalation and restarted; the new one is healthy.
    let h = Home::new("health_sigstop");
    let port = free_port();
    h.unit(
        "web",
        &format!(
            "[service]\nExecStart = {}\nRestartSec = 0\nTimeoutStopSec = 1\n\
             [health]\nHttp = \"http://127.0.0.1:{port}/\"\nIntervalSec = 0.3\nTimeoutSec = 0.5\n\
             StartIntervalSec = 0.2\nFailureThreshold = 2\n",
            toml_str(&format!("python3 -m http.server {port} --bind 127.0.0.1"))
        ),
    );
    h.ok(&["start", "web"]);
    // Readiness: `start` returned, so a probe passed.
    assert_eq!(health_of(&h, "web"), "healthy");
    let status = h.status_json("web");
    let probes = status["probes"].as_array().cloned().unwrap_or_default();
    assert!(
        probes
            .iter()
            .any(|p| p["ok"] == true && p["output"] == "HTTP 200"),
        "{status}"
    );
    // `list --json` carries the same probes, in the same shape.
    let listed = h.unit_json("web");
    let listed = listed["probes"].as_array().cloned().unwrap_or_default();
    assert!(!listed.is_empty(), "no probes in list --json");
    let keys = |p: &serde_json::Value| {
        p.as_object()
            .map(|o| o.keys().cloned().collect::<Vec<_>>())
            .unwrap_or_default()
    };
    assert_eq!(keys(&listed[0]), keys(&probes[0]));
    assert!(
        listed
            .iter()
            .any(|p| p["ok"] == true && p["output"] == "HTTP 200"),
        "{listed:?}"
    );
    let old = h.pid("web");
    kill(Pid::from_raw(old), Signal::SIGSTOP).expect("SIGSTOP the server");
    // 2 × (0.3 + 0.5) s of probes, plus the 1 s stop timeout, plus a start.
    h.wait_until(
        "the hung server to be replaced",
        Duration::from_secs(20),
        || {
            let u = h.unit_json("web");
            u["pid"].as_i64().is_some_and(|p| p as i32 != old)
                && u["state"] == "running"
                && u["health"] == "healthy"
        },
    );
    h.wait_until("the stopped server to be gone", WAIT, || gone(old));
    let u = h.unit_json("web");
    assert!(u["restarts"].as_u64().unwrap_or(0) >= 1, "{u}");
    let log = std::fs::read_to_string(h.home.join("daemon.log")).unwrap_or_default();
    assert!(
        log.contains("unhealthy: 2 failed probes in a row (last: timed out after 0.5s)"),
        "{log}"
    );
}

#[test]
fn readiness_gates_start_and_dependents() {
    // `start app` (which Requires web) returns only once web's first probe
    // passed, and app starts only then.
    let h = Home::new("health_readiness");
    h.unit(
        "web",
        &format!(
            "[service]\nExecStart = {}\n[health]\nExec = \"test -f ready\"\nStartIntervalSec = 0.1\n",
            sh("sleep 1; touch ready; exec sleep 1000")
        ),
    );
    h.unit(
        "app",
        &format!(
            "[unit]\nRequires = [\"web\"]\nAfter = [\"web\"]\n[service]\nExecStart = {}\n",
            sh("if test -f ready; then echo ready >> saw; else echo early >> saw; fi; exec sleep 1000")
        ),
    );
    h.ok(&["start", "app"]);
    assert!(
        h.path("ready").exists(),
        "start returned before the probe passed"
    );
    h.wait_lines("saw", 1);
    assert_eq!(h.lines("saw"), vec!["ready".to_owned()]);
    assert_eq!(health_of(&h, "web"), "healthy");
    assert_eq!(h.unit_json("app")["health"], serde_json::Value::Null);
}

#[test]
fn mark_mode_records_and_leaves_the_process_alone() {
    let h = Home::new("health_mark");
    let port = free_port();
    h.unit(
        "db",
        &format!(
            "[service]\nExecStart = \"sleep 1000\"\n[health]\nTcp = \"127.0.0.1:{port}\"\n\
             Readiness = false\nOnUnhealthy = \"mark\"\nFailureThreshold = 2\nStartIntervalSec = 0.1\n"
        ),
    );
    h.ok(&["start", "db"]);
    let pid = h.pid("db");
    h.wait_until("db to be marked unhealthy", WAIT, || {
        let u = h.unit_json("db");
        u["health"] == "unhealthy" && u["health_failures"].as_u64().unwrap_or(0) >= 3
    });
    let u = h.unit_json("db");
    assert_eq!(
        (u["state"].as_str(), u["pid"].as_i64()),
        (Some("running"), Some(pid as i64)),
        "{u}"
    );
    assert!(alive(pid));
    let list = h.ok(&["list"]);
    assert!(list.contains("running (unhealthy)"), "{list}");
    let status = h.ok(&["status", "db"]);
    assert!(status.contains("cannot connect"), "{status}");
}

#[test]
fn stop_mode_leaves_the_unit_failed_with_the_reason() {
    let h = Home::new("health_stop");
    h.unit(
        "w",
        "[service]\nExecStart = \"sleep 1000\"\nRestart = \"always\"\n[health]\nExec = \"false\"\n\
         Readiness = false\nOnUnhealthy = \"stop\"\nFailureThreshold = 2\nStartIntervalSec = 0.1\n",
    );
    h.ok(&["start", "w"]);
    let pid = h.pid("w");
    h.wait_state("w", "failed");
    let u = h.unit_json("w");
    assert_eq!(
        u["reason"], "unhealthy: 2 failed probes in a row (last: exit 1)",
        "{u}"
    );
    assert!(gone(pid));
}

#[test]
fn an_exec_probe_that_cannot_run_fails_with_the_reason() {
    // The probe's program is not there: each probe fails with why (its
    // exec's outcome), not with the exit 127 that follows.
    let h = Home::new("health_exec_cannot_run");
    h.unit(
        "w",
        "[service]\nExecStart = \"sleep 1000\"\n[health]\nExec = \"no-such-probe-dk\"\n\
         Readiness = false\nOnUnhealthy = \"mark\"\nStartIntervalSec = 0.1\n",
    );
    h.ok(&["start", "w"]);
    h.wait_until("two failed probes", WAIT, || {
        let s = h.status_json("w");
        s["probes"].as_array().is_some_and(|p| p.len() >= 2)
    });
    let s = h.status_json("w");
    let probes = s["probes"].as_array().cloned().unwrap_or_default();
    for p in &probes {
        assert_eq!(p["ok"], false, "{p}");
        assert_eq!(
            p["output"], "cannot run: `no-such-probe-dk` not found in PATH",
            "{p}"
        );
    }
    h.ok(&["stop", "w"]);
}

#[test]
fn a_timed_out_exec_probe_is_killed_with_its_group() {
    // The probe and the child it started both go at TimeoutSec.
    let h = Home::new("health_exec_timeout");
    h.unit(
        "w",
        &format!(
            "[service]\nExecStart = \"sleep 1000\"\n[health]\nExec = {}\nTimeoutSec = 0.3\n\
             Readiness = false\nOnUnhealthy = \"mark\"\nStartIntervalSec = 0.1\n",
            sh("sleep 1000 & echo $! >> probe_kids; echo $$ >> probe_kids; wait")
        ),
    );
    h.ok(&["start", "w"]);
    h.wait_until("two timed-out probes", WAIT, || {
        let s = h.status_json("w");
        s["probes"].as_array().is_some_and(|p| {
            p.iter()
                .filter(|p| p["output"] == "timed out after 0.3s")
                .count()
                >= 2
        })
    });
    let first: Vec<i32> = h
        .lines("probe_kids")
        .iter()
        .take(2)
        .filter_map(|l| l.trim().parse().ok())
        .collect();
    assert_eq!(first.len(), 2);
    for pid in first {
        h.wait_until(&format!("probe process {pid} to be gone"), WAIT, || {
            gone(pid)
        });
    }
    h.ok(&["stop", "w"]);
    for pid in h
        .lines("probe_kids")
        .iter()
        .filter_map(|l| l.trim().parse().ok())
    {
        h.wait_until(&format!("probe process {pid} to be gone"), WAIT, || {
            gone(pid)
        });
    }
}

#[test]
fn probes_are_rearmed_for_a_service_adopted_after_a_daemon_crash() {
    let h = Home::new("health_adopted");
    h.unit(
        "w",
        &format!(
            "[service]\nExecStart = \"sleep 1000\"\n[health]\nExec = {}\nIntervalSec = 0.1\nStartIntervalSec = 0.1\n",
            sh("echo probed >> probes")
        ),
    );
    h.ok(&["start", "w"]);
    let pid = h.pid("w");
    let daemon = h.daemon_pid().expect("daemon pid");
    kill9(daemon);
    h.wait_until("the daemon to die", WAIT, || !alive(daemon));
    let before = h.lines("probes").len();
    // The next command starts a new daemon, which adopts `w`.
    assert_eq!(h.pid("w"), pid);
    h.wait_until("the adopted service to be probed again", WAIT, || {
        h.lines("probes").len() > before && health_of(&h, "w") == "healthy"
    });
}

#[test]
fn a_sigstopped_service_stops_at_once_not_after_timeout_stop_sec() {
    // SIGTERM stays pending on a stopped process; SIGCONT after it (as
    // systemd sends) lets it act on it now rather than at TimeoutStopSec.
    let h = Home::new("health_sigstop_stop");
    // It handles SIGTERM (a default-action SIGTERM kills even a stopped process).
    let script = "import signal, sys, time\n\
                  signal.signal(signal.SIGTERM, lambda *a: sys.exit(7))\n\
                  open('up', 'w').write('up')\n\
                  time.sleep(1000)\n";
    h.unit(
        "w",
        &format!(
            "[service]\nExecStart = {}\nTimeoutStopSec = 30\n",
            toml_str(&format!("python3 -c {}", shell_words::quote(script)))
        ),
    );
    h.ok(&["start", "w"]);
    h.wait_lines("up", 1);
    let pid = h.pid("w");
    kill(Pid::from_raw(pid), Signal::SIGSTOP).expect("SIGSTOP the service");
    h.wait_until("the service to be stopped (T)", WAIT, || {
        Stat::of(pid).is_some_and(|s| s.state == 'T')
    });
    let started = std::time::Instant::now();
    let out = h.run_within(h.command(&["stop", "w"]), Duration::from_secs(25));
    assert!(out.status.success(), "{}", stderr(&out));
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(10),
        "stop took {took:?}: the stopped process waited for TimeoutStopSec"
    );
    assert_eq!(h.state("w"), "inactive");
    let u = h.unit_json("w");
    // Its own handler ended it: it saw the SIGTERM, not a SIGKILL.
    assert_eq!(u["last_exit"]["code"], 7, "{u}");
}

#[test]
fn status_text_and_probe_history_survive_a_daemon_crash() {
    // STATUS= and the last probes are in the state file: a new daemon that
    // adopts the service shows them at once. Each probe exits with a new
    // code (3, 4, ...), so the first one is recognisable.
    let h = Home::new("health_kept_across_crash");
    let notify = "import os, socket, time\n\
                  a = os.environ['NOTIFY_SOCKET']\n\
                  a = '\\0' + a[1:] if a.startswith('@') else a\n\
                  s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\n\
                  s.sendto(b'READY=1\\nSTATUS=serving 3 clients', a)\n\
                  time.sleep(1000)\n";
    h.unit(
        "w",
        &format!(
            "[service]\nType = \"notify\"\nTimeoutStartSec = 20\nExecStart = {}\n\
             [health]\nExec = {}\nIntervalSec = 60\nStartIntervalSec = 60\n\
             FailureThreshold = 100\nOnUnhealthy = \"mark\"\nReadiness = false\n",
            toml_str(&format!(
                "/usr/bin/python3 -c {}",
                shell_words::quote(notify).replace('$', "$$")
            )),
            sh("n=$(cat probes 2>/dev/null | wc -l); echo x >> probes; exit $((n + 3))")
        ),
    );
    h.ok(&["start", "w"]);
    h.wait_until("the first probe to be recorded", WAIT, || {
        h.unit_json("w")["probes"]
            .as_array()
            .is_some_and(|p| !p.is_empty())
    });
    let before = h.unit_json("w");
    assert_eq!(before["status_text"], "serving 3 clients", "{before}");
    assert_eq!(before["probes"][0]["output"], "exit 3", "{before}");
    let daemon = h.daemon_pid().expect("daemon pid");
    kill9(daemon);
    h.wait_until("the daemon to die", WAIT, || !alive(daemon));
    // The next command starts a new daemon, which adopts `w`.
    let after = h.unit_json("w");
    assert_eq!(after["pid"], before["pid"], "{after}");
    assert_eq!(after["status_text"], "serving 3 clients", "{after}");
    assert_eq!(after["probes"][0], before["probes"][0], "{after}");
    let status = h.ok(&["status", "w"]);
    assert!(status.contains("exit 3"), "{status}");
}

#[test]
fn readiness_gates_notify_and_forking_units_after_their_own_readiness() {
    // SPEC §10, for every type: a notify unit that sent READY=1 and a forking
    // unit whose main process was found stay `starting` (and `start` waits)
    // until their first passing probe.
    let h = Home::new("health_readiness_notify_forking");
    let probe = "[health]\nExec = \"test -f ready\"\nStartIntervalSec = 0.1\n";
    std::fs::write(
        h.units.join("notified.py"),
        "import os, socket, time\n\
         a = os.environ['NOTIFY_SOCKET']\n\
         a = '\\0' + a[1:] if a.startswith('@') else a\n\
         socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM).sendto(b'READY=1', a)\n\
         open('notify.sent', 'a').write('sent\\n')\n\
         while not os.path.exists('go.notify'):\n    time.sleep(0.01)\n\
         open('ready', 'a').close()\n\
         time.sleep(1000)\n",
    )
    .expect("write notified.py");
    h.unit(
        "notified",
        &format!("[service]\nType = \"notify\"\nExecStart = \"python3 notified.py\"\n{probe}"),
    );
    std::fs::write(
        h.units.join("fork.sh"),
        "echo $$ > fork.pid\necho forked >> fork.sent\n\
         until [ -e go.fork ]; do sleep 0.01; done\ntouch ready\nexec sleep 1000\n",
    )
    .expect("write fork.sh");
    h.unit(
        "forked",
        &format!(
            "[service]\nType = \"forking\"\nExecStart = {}\nPIDFile = {}\n{probe}",
            sh("sh fork.sh & exit 0"),
            toml_str(&h.units.join("fork.pid").display().to_string())
        ),
    );
    for (name, sent, go) in [
        ("notified", "notify.sent", "go.notify"),
        ("forked", "fork.sent", "go.fork"),
    ] {
        let _ = std::fs::remove_file(h.units.join("ready"));
        let start = h
            .command(&["start", name])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("start");
        let mut start = Background(start);
        h.wait_lines(sent, 1);
        // Its own readiness is met (the main process found, for forking):
        // still starting, and the start still waits.
        h.wait_until("the main pid known", WAIT, || {
            h.unit_json(name)["pid"].is_i64()
        });
        assert_eq!(h.state(name), "starting", "{name}");
        assert!(
            start.0.try_wait().expect("try_wait").is_none(),
            "{name}: start returned"
        );
        std::fs::write(h.units.join(go), "").expect("write go");
        assert!(
            start.0.wait().expect("start").success(),
            "{name}: start failed"
        );
        assert_eq!(h.state(name), "running", "{name}");
        assert_eq!(health_of(&h, name), "healthy", "{name}");
    }
}

#[test]
fn probes_alone_do_not_rewrite_the_state_file() {
    // Each probe's result goes to the state file with the next write or
    // before a client hears of it, not on its own: five probes in a row
    // (no client asking) leave the file as it was. A `list` then writes them.
    use std::os::unix::fs::MetadataExt;
    let h = Home::new("health_probes_no_state_writes");
    h.unit(
        "w",
        &format!(
            "[service]\nExecStart = \"sleep 1000\"\n[health]\nExec = {}\nIntervalSec = 0.1\nStartIntervalSec = 0.1\n",
            sh("echo x >> probes")
        ),
    );
    h.ok(&["start", "w"]);
    h.wait_lines("probes", 1);
    let state = h.home.join("state");
    // The start's own writes are over once the file stays put for a while.
    let id = || std::fs::metadata(&state).map(|m| (m.ino(), m.mtime_nsec(), m.mtime()));
    let mut last = id().expect("state file");
    h.wait_until("the state file to settle", WAIT, || {
        let n = h.lines("probes").len();
        h.wait_lines("probes", n + 3);
        let now = id().expect("state file");
        std::mem::replace(&mut last, now) == now
    });
    let n = h.lines("probes").len();
    h.wait_lines("probes", n + 5);
    assert_eq!(
        id().expect("state file"),
        last,
        "a probe rewrote the state file"
    );
    let listed = h.unit_json("w");
    assert!(
        listed["probes"].as_array().is_some_and(|p| !p.is_empty()),
        "{listed}"
    );
    assert_ne!(
        id().expect("state file"),
        last,
        "a reply about new probes did not write them first"
    );
}

#[test]
fn a_verdict_is_kept_by_the_next_daemon() {
    // A healthy unit with a probe every hour, and a marked unhealthy one: after `daemon-upgrade` the new daemon shows the same verdicts and failure streak at once, before any probe of its own.
    let h = Home::new("health_kept");
    let closed = free_port();
    h.unit(
        "ok",
        &format!(
            "[service]\nExecStart = \"sleep 1000\"\n[health]\nExec = {}\nIntervalSec = 3600\nStartIntervalSec = 0.1\n",
            sh("echo probed >> ok.probes")
        ),
    );
    h.unit(
        "bad",
        &format!(
            "[service]\nExecStart = \"sleep 1000\"\n[health]\nTcp = \"127.0.0.1:{closed}\"\n\
             Readiness = false\nOnUnhealthy = \"mark\"\nFailureThreshold = 2\nStartIntervalSec = 0.1\nIntervalSec = 3600\n"
        ),
    );
    h.ok(&["start", "ok", "bad"]);
    h.wait_until("bad marked unhealthy", WAIT, || {
        let u = h.unit_json("bad");
        u["health"] == "unhealthy" && u["health_failures"].as_u64().unwrap_or(0) >= 2
    });
    assert_eq!(health_of(&h, "ok"), "healthy");
    let streak = h.unit_json("bad")["health_failures"].clone();
    let probes = h.lines("ok.probes").len();
    h.ok(&["daemon-upgrade"]);
    assert_eq!(health_of(&h, "ok"), "healthy");
    let u = h.unit_json("bad");
    assert_eq!(
        (&u["health"], &u["health_failures"]),
        (&"unhealthy".into(), &streak),
        "{u}"
    );
    assert_eq!(
        h.lines("ok.probes").len(),
        probes,
        "the verdict came from a new probe"
    );
}

#[test]
fn an_exec_probes_first_line_is_its_result_not_the_services_log() {
    // SPEC §10: `status` shows the first line of a probe's output; the service's log gets none of it.
    let h = Home::new("health_exec_output");
    h.unit(
        "db",
        &format!(
            "[service]\nExecStart = {}\n[health]\nExec = {}\nIntervalSec = 0.2\nStartIntervalSec = 0.1\n",
            sh("echo serving; exec sleep 1000"),
            sh("echo 'accepting connections'; echo second line")
        ),
    );
    h.ok(&["start", "db"]);
    h.wait_until("a probe with its words", WAIT, || {
        h.status_json("db")["probes"].as_array().is_some_and(|p| {
            p.iter()
                .any(|r| r["output"] == "accepting connections" && r["ok"] == true)
        })
    });
    let log = std::fs::read_to_string(h.home.join("logs/db.log")).unwrap_or_default();
    assert!(
        log.contains("serving") && !log.contains("accepting"),
        "{log}"
    );
    // A failing probe: its exit and what it said.
    h.unit(
        "bad",
        &format!(
            "[service]\nExecStart = \"sleep 1000\"\n[health]\nExec = {}\nReadiness = false\nOnUnhealthy = \"mark\"\nStartIntervalSec = 0.1\n",
            sh("echo 'no response' >&2; exit 2")
        ),
    );
    h.ok(&["reload"]);
    h.ok(&["start", "bad"]);
    h.wait_until("a failed probe with its words", WAIT, || {
        h.status_json("bad")["probes"]
            .as_array()
            .is_some_and(|p| p.iter().any(|r| r["output"] == "exit 2: no response"))
    });
}
