//! Operator insight (SPEC §12): `why`, `tree`, `graph`.

use std::process::Stdio;

use crate::util::{stdout, Background, Home, WAIT};

fn background(h: &Home, args: &[&str]) -> Background {
    let mut cmd = h.command(args);
    cmd.stdout(Stdio::null()).stderr(Stdio::null());
    Background(cmd.spawn().expect("spawn the client"))
}

/// `why NAME`: (exit code, stdout).
fn why(h: &Home, name: &str) -> (Option<i32>, String) {
    let out = h.cmd(&["why", name]);
    (out.status.code(), stdout(&out))
}

#[test]
fn why_names_the_dependency_a_unit_waits_for() {
    // worker Requires database, a notify service that never sends READY=1:
    // `why worker` says worker waits for database, which is starting; exit 1.
    let h = Home::new("why_names_the_dependency_a_unit_waits_for");
    h.unit(
        "database",
        "[service]\nType = \"notify\"\nExecStart = \"sleep 1000\"\nTimeoutStartSec = 0\n",
    );
    h.unit(
        "worker",
        "[unit]\nRequires = [\"database\"]\n[service]\nExecStart = \"sleep 1000\"\n",
    );
    let _start = background(&h, &["start", "worker"]);
    h.wait_state("worker", "waiting");
    h.wait_state("database", "starting");
    let (code, out) = why(&h, "worker");
    assert_eq!(code, Some(1), "why of a waiting unit exits 1:\n{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines.first().copied(),
        Some("worker is waiting for database (requires), which is starting"),
        "{out}"
    );
    assert!(
        lines
            .get(1)
            .is_some_and(|l| l.starts_with("  waiting for ")),
        "for how long:\n{out}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.trim_start().starts_with("database is starting") && l.contains("READY=1")),
        "the root cause is database waiting for READY=1:\n{out}"
    );
}

#[test]
fn why_follows_a_failed_dependency_to_its_start_limit() {
    // crasher, a oneshot, exits 1 at once and restarts (on-failure); after StartLimitBurst starts it
    // is failed "start limit hit", and worker, which Requires it, failed
    // with it. `why worker` names both, and how to clear the limit.
    let h = Home::new("why_follows_a_failed_dependency_to_its_start_limit");
    h.unit(
        "crasher",
        "[unit]\nStartLimitBurst = 3\nStartLimitIntervalSec = 600\n[service]\nType = \"oneshot\"\nExecStart = \"sh -c 'exit 1'\"\nRestartSec = 0\n",
    );
    h.unit(
        "worker",
        "[unit]\nRequires = [\"crasher\"]\n[service]\nExecStart = \"sleep 1000\"\n",
    );
    h.fails(1, &["start", "worker"]);
    h.wait_state("crasher", "failed");
    h.wait_state("worker", "failed");
    let (code, out) = why(&h, "worker");
    assert_eq!(code, Some(1), "{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0], "worker failed: dependency crasher failed",
        "{out}"
    );
    assert_eq!(lines[1], "  crasher failed: start limit hit", "{out}");
    assert!(
        out.contains("start limit: 3 of 3 starts within 600s"),
        "starts in the window:\n{out}"
    );
    assert!(
        out.contains("`diakonos restart crasher` clears the start limit"),
        "how to clear it:\n{out}"
    );
}

#[test]
fn why_exits_0_for_a_running_unit_and_names_an_invalid_file() {
    // A running unit: exit 0 and "is up". An invalid file: exit 1 with the
    // file and line of the error. An unknown name: exit 1 with an error.
    let h = Home::new("why_exits_0_for_a_running_unit_and_names_an_invalid_file");
    h.unit("web", "[service]\nExecStart = \"sleep 1000\"\n");
    h.unit(
        "broken",
        "[service]\nExecStart = \"sleep 1000\"\nRestrat = \"always\"\n",
    );
    h.ok(&["start", "web"]);
    let (code, out) = why(&h, "web");
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(out, "web is up (running)\n");
    let (code, out) = why(&h, "broken");
    assert_eq!(code, Some(1), "{out}");
    assert!(out.starts_with("broken is invalid: "), "{out}");
    assert!(
        out.contains("broken.service:3"),
        "file:line of the error:\n{out}"
    );
    let err = h.fails(1, &["why", "nosuch"]);
    assert!(err.contains("no unit named `nosuch`"), "{err}");
}

/// web Requires db, Wants cache, and is After migrate, which Requires db.
fn web_stack(h: &Home) {
    h.unit("db", "[service]\nExecStart = \"sleep 1000\"\n");
    h.unit("cache", "[service]\nExecStart = \"sleep 1000\"\n");
    h.unit(
        "migrate",
        "[unit]\nRequires = [\"db\"]\n[service]\nType = \"oneshot\"\nExecStart = \"true\"\n",
    );
    h.unit(
        "web",
        "[unit]\nRequires = [\"db\"]\nWants = [\"cache\"]\nAfter = [\"migrate\"]\n[service]\nExecStart = \"sleep 1000\"\n",
    );
}

#[test]
fn tree_shows_dependencies_with_states_and_edge_kinds() {
    // With a daemon: each unit's state; `(wants)`/`(after)` mark the edge
    // kind; `--reverse` shows what depends on a unit.
    let h = Home::new("tree_shows_dependencies_with_states_and_edge_kinds");
    web_stack(&h);
    h.ok(&["start", "web"]);
    assert_eq!(
        h.ok(&["tree"]),
        "web [running]\n\
         ├── cache (wants) [running]\n\
         ├── db [running]\n\
         └── migrate (after) [inactive]\n    \
             └── db [running]\n"
    );
    assert_eq!(
        h.ok(&["tree", "db", "--reverse"]),
        "db [running]\n\
         ├── migrate [inactive]\n\
         │   └── web (after) [running]\n\
         └── web [running]\n"
    );
    let err = h.fails(1, &["tree", "nosuch"]);
    assert!(err.contains("no unit named `nosuch`"), "{err}");
}

#[test]
fn graph_works_without_a_daemon_in_both_formats() {
    // No daemon runs and none is started; mermaid is the default; the dot
    // output is accepted by graphviz.
    let h = Home::new("graph_works_without_a_daemon_in_both_formats");
    web_stack(&h);
    let m = h.ok(&["graph"]);
    assert!(m.starts_with("flowchart LR\n"), "{m}");
    for edge in ["-->|requires|", "-.->|wants|", "-.->|after|"] {
        assert!(m.contains(edge), "{edge} missing:\n{m}");
    }
    let d = h.ok(&["graph", "migrate", "--format", "dot"]);
    assert!(
        d.contains("\"migrate\" -> \"db\" [label=\"requires\"];"),
        "{d}"
    );
    assert!(!d.contains("\"web\""), "only the closure of migrate:\n{d}");
    assert_eq!(h.daemon_pid(), None, "graph started a daemon");
    let full = h.ok(&["graph", "--format", "dot"]);
    let text = dot_to_svg(&h, &full);
    assert!(text.contains("<svg") && text.contains("migrate"), "{text}");
    let err = h.fails(2, &["graph", "--format", "png"]);
    assert!(err.contains("--format takes `mermaid` or `dot`"), "{err}");
}

/// The dot text through graphviz: `dot -Tsvg` must accept it.
fn dot_to_svg(h: &Home, dot: &str) -> String {
    let svg = h.root.join("graph.svg");
    let dot_in = h.root.join("graph.dot");
    std::fs::write(&dot_in, dot).expect("write graph.dot");
    let out = std::process::Command::new("dot")
        .arg("-Tsvg")
        .arg(&dot_in)
        .arg("-o")
        .arg(&svg)
        .output()
        .expect("graphviz is installed by .ci/run (apt-get install graphviz)");
    assert!(
        out.status.success(),
        "dot refused:\n{}\n{dot}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read_to_string(&svg).expect("read the svg")
}

#[test]
fn conflicts_are_shown_by_why_tree_and_graph() {
    // SPEC §18: `old` Conflicts `new` (named on one side only). Both
    // directions: with old running, `why new` says what keeps it from
    // running; `tree` lists the conflict under each; `graph` draws one
    // dotted, undirected, labelled edge in mermaid and in dot (graphviz
    // accepts it), also without a daemon.
    let h = Home::new("conflicts_are_shown_by_why_tree_and_graph");
    h.unit(
        "old",
        "[unit]\nConflicts = [\"new\"]\n[service]\nExecStart = \"sleep 1000\"\n",
    );
    h.unit("new", "[service]\nExecStart = \"sleep 1000\"\n");
    let m = h.ok(&["graph", "new"]);
    assert!(m.contains(" -.-|conflicts| "), "{m}");
    assert!(
        m.contains("[\"old\"]"),
        "graph new shows what conflicts with it:\n{m}"
    );
    assert_eq!(h.daemon_pid(), None, "graph started a daemon");
    h.ok(&["start", "old"]);
    let (code, text) = why(&h, "new");
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("new is not started: it conflicts with old, which is running"),
        "{text}"
    );
    assert!(
        text.contains("`diakonos start new` stops old first"),
        "{text}"
    );
    assert_eq!(
        h.ok(&["tree", "new"]),
        "new [inactive]\n└── old (conflicts) [running]\n"
    );
    assert_eq!(
        h.ok(&["tree", "old", "--reverse"]),
        "old [running]\n└── new (conflicts) [inactive]\n"
    );
    // The other direction: starting new stopped old.
    h.ok(&["start", "new"]);
    let (code, text) = why(&h, "old");
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("old is not started: it conflicts with new, which is running"),
        "{text}"
    );
    let d = h.ok(&["graph", "--format", "dot"]);
    let edge = "\"new\" -> \"old\" [label=\"conflicts\", style=dotted, dir=none";
    assert!(d.contains(edge), "{d}");
    assert_eq!(d.matches("conflicts").count(), 1, "one edge per pair:\n{d}");
    let svg = dot_to_svg(&h, &d);
    assert!(
        svg.contains("conflicts") && svg.contains("stroke-dasharray"),
        "{svg}"
    );
}

#[test]
fn wait_returns_once_the_unit_is_up() {
    // `wait db` blocks while db's oneshot runs and exits 0 once it finished
    // (up); the daemon answers, the client does not poll.
    let h = Home::new("wait_returns_once_the_unit_is_up");
    h.unit(
        "db",
        "[service]\nType = \"oneshot\"\nExecStart = \"sh -c 'while [ ! -e go ]; do sleep 0.05; done'\"\nTimeoutStartSec = 0\n",
    );
    let _start = background(&h, &["start", "db"]);
    h.wait_state("db", "starting");
    let mut waiter = h.command(&["wait", "db", "--timeout", "60"]);
    waiter.stdout(Stdio::null()).stderr(Stdio::null());
    let mut waiter = Background(waiter.spawn().expect("spawn wait"));
    h.stays(
        "wait to block while db is starting",
        std::time::Duration::from_millis(300),
        || matches!(waiter.0.try_wait(), Ok(None)),
    );
    std::fs::write(h.units.join("go"), "").expect("write go");
    let mut status = None;
    h.wait_until("wait to return", WAIT, || {
        status = waiter.0.try_wait().ok().flatten();
        status.is_some()
    });
    assert_eq!(status.and_then(|s| s.code()), Some(0));
    assert_eq!(h.state("db"), "exited");
}

#[test]
fn wait_exits_1_on_timeout_and_when_a_unit_fails() {
    // A unit that never comes up: exit 1 naming it and its state after the
    // timeout. A failed unit waited on for up: exit 1 at once with why;
    // `--for failed` and `--for inactive` hold at once.
    let h = Home::new("wait_exits_1_on_timeout_and_when_a_unit_fails");
    h.unit(
        "db",
        "[service]\nType = \"notify\"\nExecStart = \"sleep 1000\"\nTimeoutStartSec = 0\n",
    );
    h.unit(
        "crasher",
        "[service]\nExecStart = \"sh -c 'exit 3'\"\nRestart = \"no\"\n",
    );
    h.unit("idle", "[service]\nExecStart = \"sleep 1000\"\n");
    let _start = background(&h, &["start", "db"]);
    h.wait_state("db", "starting");
    let err = h.fails(1, &["wait", "db", "idle", "--timeout", "0.5"]);
    assert!(
        err.contains("db is still starting after 0.5s, not up")
            && err.contains("idle is still inactive after 0.5s, not up"),
        "{err}"
    );
    let _ = h.cmd(&["start", "crasher"]);
    h.wait_state("crasher", "failed");
    let err = h.fails(1, &["wait", "crasher"]);
    assert!(
        err.contains("crasher is failed: exited with code 3"),
        "{err}"
    );
    h.ok(&["wait", "crasher", "--for", "failed", "--timeout", "10"]);
    h.ok(&["wait", "idle", "--for", "inactive"]);
    let err = h.fails(2, &["wait", "idle", "--for", "sleepy"]);
    assert!(err.contains("--for takes up, running"), "{err}");
}

/// The pids whose process group is `pgid`, from /proc.
fn group_members(pgid: i32) -> Vec<i32> {
    crate::util::all_pids()
        .into_iter()
        .filter(|&p| crate::util::Stat::of(p).is_some_and(|s| s.pgrp == pgid && s.state != 'Z'))
        .collect()
}

/// A field of /proc/PID/status, as its first number.
fn status_field(pid: i32, key: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read status");
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no {key} in /proc/{pid}/status"))
}

/// utime + stime of `pid`, in clock ticks.
fn cpu_ticks(pid: i32) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = &text[text.rfind(')').map_or(0, |i| i + 1)..];
    let f: Vec<&str> = after.split_whitespace().collect();
    f.get(11).and_then(|u| u.parse::<u64>().ok()).unwrap_or(0)
        + f.get(12).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0)
}

/// `busy`: a shell spinning in a loop with a `sleep` child in its group.
fn busy_unit(h: &Home) -> i32 {
    h.unit(
        "busy",
        "[service]\nExecStart = \"sh -c 'sleep 1000 & while :; do :; done'\"\n",
    );
    h.unit("idle", "[service]\nExecStart = \"sleep 1000\"\n");
    h.ok(&["start", "busy"]);
    let pid = h.pid("busy");
    // The child is `sleep` asleep, not the shell's fork before its exec
    // (whose RSS is the shell's and then changes).
    h.wait_until("the sleep child in busy's group, asleep", WAIT, || {
        let members = group_members(pid);
        members.len() == 2
            && members.iter().filter(|&&p| p != pid).all(|p| {
                std::fs::read_to_string(format!("/proc/{p}/wchan"))
                    .is_ok_and(|w| w.contains("nanosleep"))
            })
    });
    h.wait_until("busy to use some CPU", WAIT, || cpu_ticks(pid) >= 5);
    pid
}

#[test]
fn stats_measures_the_whole_group_and_a_busy_loop() {
    // Group-wide numbers checked against /proc; a real CPU% for a busy
    // loop; nulls for a unit that runs nothing.
    let h = Home::new("stats_measures_the_whole_group_and_a_busy_loop");
    let pid = busy_unit(&h);
    // RSS still grows while the shell faults pages in: /proc is read before
    // and after `stats`, and its figure must lie between (give or take).
    let group_rss = |members: &[i32]| -> u64 {
        members
            .iter()
            .map(|&p| status_field(p, "VmRSS:") * 1024)
            .sum()
    };
    let rss_before = status_field(pid, "VmRSS:") * 1024;
    let group_before = group_rss(&group_members(pid));
    let text = h.ok(&["stats", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&text).expect("stats --json is JSON");
    let rows = v.as_array().expect("an array");
    let busy = rows.iter().find(|r| r["name"] == "busy").expect("busy row");
    let idle = rows.iter().find(|r| r["name"] == "idle").expect("idle row");
    let members = group_members(pid);
    assert_eq!(busy["pid"], pid);
    assert_eq!(busy["processes"], members.len() as u64, "{busy}");
    let threads: u64 = members.iter().map(|&p| status_field(p, "Threads:")).sum();
    assert_eq!(busy["threads"], threads, "{busy}");
    let fds: u64 = members
        .iter()
        .map(|&p| crate::util::fds_of(p).len() as u64)
        .sum();
    assert_eq!(busy["fds"], fds, "{busy}");
    let near = |got: &serde_json::Value, before: u64, after: u64, what: &str| {
        let got = got.as_u64().unwrap_or_else(|| panic!("{what}: {busy}"));
        let (lo, hi) = (before.min(after), before.max(after));
        // `stats` reads /proc/PID/stat, whose RSS is the kernel's per-CPU
        // counters without their pending batches (up to 32 pages per CPU);
        // VmRSS in /proc/PID/status sums them exactly.
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
        let slack = hi / 10 + 32 * 4096 * cpus + 64 * 1024;
        assert!(
            got + slack >= lo && got <= hi + slack,
            "{what}: {got} vs /proc {before} before and {after} after"
        );
    };
    near(
        &busy["rss_bytes"],
        rss_before,
        status_field(pid, "VmRSS:") * 1024,
        "rss_bytes",
    );
    near(
        &busy["group_rss_bytes"],
        group_before,
        group_rss(&members),
        "group_rss_bytes",
    );
    let cpu = busy["cpu_percent"].as_f64().expect("cpu_percent");
    assert!(cpu > 5.0, "a busy loop uses CPU: {cpu}%\n{busy}");
    assert!(
        busy["cpu_seconds"].as_f64().expect("cpu_seconds") > 0.0,
        "{busy}"
    );
    assert_eq!(busy["restarts"], 0);
    assert!(busy["uptime_secs"].is_u64(), "{busy}");
    for key in [
        "pid",
        "processes",
        "rss_bytes",
        "group_rss_bytes",
        "cpu_seconds",
        "cpu_percent",
        "threads",
        "fds",
        "uptime_secs",
    ] {
        assert!(idle[key].is_null(), "idle {key}: {idle}");
    }
    // One unit by name, human table.
    let table = h.ok(&["stats", "busy"]);
    assert!(table.starts_with("NAME "), "{table}");
    assert_eq!(table.lines().count(), 2, "{table}");
    let err = h.fails(1, &["stats", "nosuch"]);
    assert!(err.contains("no unit named `nosuch`"), "{err}");
}

#[test]
fn why_follows_a_dependency_waiting_for_its_first_passing_health_probe() {
    // SPEC §12: app Requires db; db's probe fails, so db stays starting
    // (Readiness) and app waits: `why app` follows to db's health, with the
    // last probe; once the probe passes, app comes up and `why` exits 0.
    let h = Home::new("why_follows_a_dependency_waiting_for_its_first_passing_health_probe");
    h.unit(
        "db",
        "[service]\nExecStart = \"sleep 1000\"\nTimeoutStartSec = 300\n\
         [health]\nExec = \"test -f db.ok\"\nStartIntervalSec = 0.1\nFailureThreshold = 4\n",
    );
    h.unit(
        "app",
        "[unit]\nRequires = [\"db\"]\n[service]\nExecStart = \"sleep 1000\"\n",
    );
    let _start = background(&h, &["start", "app"]);
    h.wait_until("a failed probe of db", WAIT, || {
        why(&h, "app").1.contains("last probe failed")
    });
    let (code, text) = why(&h, "app");
    assert_eq!(code, Some(1), "{text}");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0], "app is waiting for db (requires), which is starting",
        "{text}"
    );
    assert!(
        text.contains("  db is starting, pid ")
            && text.contains("(waiting for its first passing health probe)"),
        "{text}"
    );
    assert!(text.contains("FailureThreshold 4"), "{text}");
    assert!(text.contains("OnUnhealthy = \"restart\""), "{text}");
    assert!(text.contains("last probe failed: exit 1"), "{text}");
    std::fs::write(h.units.join("db.ok"), "").expect("write db.ok");
    h.wait_state("app", "running");
    assert_eq!(why(&h, "db").0, Some(0));
}

#[test]
fn why_names_the_health_probe_a_timed_out_start_waited_for() {
    // A start held for its first passing probe times out: `why` says it waited for the probe, with the last one.
    let h = Home::new("why_names_the_health_probe_a_timed_out_start");
    h.unit(
        "db",
        "[service]\nExecStart = \"sleep 1000\"\nTimeoutStartSec = 1\nRestart = \"no\"\n\
         [health]\nExec = \"false\"\nStartIntervalSec = 0.1\n",
    );
    let out = h.cmd(&["start", "db"]);
    assert_eq!(out.status.code(), Some(1), "{}", crate::util::stderr(&out));
    h.wait_state("db", "failed");
    let (code, text) = why(&h, "db");
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("db failed: start timed out"), "{text}");
    assert!(
        text.contains("the start waited for a first passing health probe")
            && text.contains("last probe failed: exit 1"),
        "{text}"
    );
}

#[test]
fn why_says_when_a_running_unit_fails_its_health_check() {
    // OnUnhealthy = "mark": the unit stays up (exit 0) and `why` says its
    // check fails: the streak against FailureThreshold and the last probe.
    let h = Home::new("why_says_when_a_running_unit_fails_its_health_check");
    h.unit(
        "web",
        "[service]\nExecStart = \"sleep 1000\"\n\
         [health]\nExec = \"test -f web.ok\"\nReadiness = false\nStartIntervalSec = 0.1\n\
         IntervalSec = 0.1\nFailureThreshold = 2\nOnUnhealthy = \"mark\"\n",
    );
    h.ok(&["start", "web"]);
    h.wait_until("web to be unhealthy", WAIT, || {
        h.unit_json("web")["health"] == "unhealthy"
    });
    let (code, text) = why(&h, "web");
    assert_eq!(code, Some(0), "{text}");
    assert!(text.starts_with("web is up (running)\n"), "{text}");
    assert!(text.contains("health unhealthy:"), "{text}");
    assert!(text.contains("of 2 failed probes in a row"), "{text}");
    assert!(text.contains("OnUnhealthy = \"mark\""), "{text}");
    assert!(text.contains("last probe failed: exit 1"), "{text}");
}

#[test]
fn wait_for_healthy_waits_for_a_passing_probe() {
    // A unit with [health] and Readiness = false is up at once, but `wait
    // --for healthy` holds until a probe passes; without [health] it means up.
    let h = Home::new("wait_for_healthy_waits_for_a_passing_probe");
    h.unit(
        "web",
        "[service]\nExecStart = \"sleep 1000\"\n\
         [health]\nExec = \"test -f web.ok\"\nReadiness = false\nStartIntervalSec = 0.1\n\
         FailureThreshold = 100\n",
    );
    h.unit("plain", "[service]\nExecStart = \"sleep 1000\"\n");
    h.ok(&["start", "web", "plain"]);
    assert_eq!(h.state("web"), "running");
    let err = h.fails(1, &["wait", "web", "--for", "healthy", "--timeout", "0.5"]);
    assert!(err.contains("web"), "{err}");
    h.ok(&["wait", "plain", "--for", "healthy", "--timeout", "5"]);
    let mut waiter = h.command(&["wait", "web", "--for", "healthy", "--timeout", "60"]);
    waiter.stdout(Stdio::null()).stderr(Stdio::null());
    let mut waiter = Background(waiter.spawn().expect("spawn wait"));
    std::fs::write(h.units.join("web.ok"), "").expect("write web.ok");
    h.wait_until("wait to return", WAIT, || {
        matches!(waiter.0.try_wait(), Ok(Some(_)))
    });
    let status = waiter.0.wait().expect("wait status");
    assert!(status.success(), "{status}");
    assert_eq!(h.unit_json("web")["health"], "healthy");
    // The metric follows: 1 now the check passes.
    let text = h.ok(&["metrics"]);
    let samples = prometheus_parse(&text, &h.root);
    assert!(
        samples
            .iter()
            .any(|s| s == "diakonos_unit_health{unit=web} 1"),
        "{samples:#?}"
    );
    assert!(
        !text.contains("diakonos_unit_health{unit=\"plain\"}"),
        "{text}"
    );
}

#[test]
fn why_names_a_timer_and_a_listening_socket() {
    // SPEC §12: an inactive timer unit says when its timer starts it next
    // (or that it is not armed); an on-demand socket unit that it waits for
    // its first connection on its address.
    let h = Home::new("why_names_a_timer_and_a_listening_socket");
    h.unit(
        "nightly",
        "[service]\nType = \"oneshot\"\nExecStart = \"true\"\n[timer]\nOnCalendar = \"@yearly\"\n",
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind 127.0.0.1:0");
    h.unit(
        "py",
        &format!(
            "[service]\nExecStart = \"sleep 1000\"\n[socket]\nListenStream = [\"127.0.0.1:{port}\"]\nActivation = \"on-demand\"\n"
        ),
    );
    let (code, text) = why(&h, "nightly");
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains(
            "nightly is inactive: its timer is not armed (`diakonos enable nightly` arms it)"
        ),
        "{text}"
    );
    h.ok(&["enable", "nightly", "py"]);
    let (_, text) = why(&h, "nightly");
    assert!(
        text.starts_with("nightly is inactive: its timer starts it next in "),
        "{text}"
    );
    assert!(
        text.contains("s, at 20") && text.contains("Z (@yearly)"),
        "{text}"
    );
    assert!(!text.contains("nothing started it"), "{text}");
    let (code, text) = why(&h, "py");
    assert_eq!(code, Some(1), "{text}");
    assert_eq!(
        text.trim_end(),
        format!("py is inactive, listening on 127.0.0.1:{port}: waiting for its first connection")
    );
}

#[test]
fn metrics_carry_the_last_timer_trigger() {
    // diakonos_timer_last_trigger_seconds: absent before the timer fired,
    // the Unix time of its last start after; the parser takes it.
    let h = Home::new("metrics_carry_the_last_timer_trigger");
    h.unit(
        "tick",
        "[service]\nType = \"oneshot\"\nExecStart = \"true\"\n[timer]\nOnUnitActiveSec = 1\n",
    );
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    assert!(!h
        .ok(&["metrics"])
        .contains("diakonos_timer_last_trigger_seconds{"));
    h.ok(&["enable", "tick"]);
    let line = |text: &str| {
        text.lines()
            .find(|l| l.starts_with("diakonos_timer_last_trigger_seconds{unit=\"tick\"} "))
            .map(str::to_owned)
    };
    h.wait_until("the timer to fire", WAIT, || {
        line(&h.ok(&["metrics"])).is_some()
    });
    let text = h.ok(&["metrics"]);
    let after = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let at: u64 = line(&text)
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or_else(|| panic!("a Unix time:\n{text}"));
    // `timers` rounds the time to the second: one either way.
    assert!(
        before <= at + 1 && at <= after + 1,
        "{before} <= {at} <= {after}"
    );
    let samples = prometheus_parse(&text, &h.root);
    assert!(
        samples
            .iter()
            .any(|s| s.starts_with("diakonos_timer_last_trigger_seconds{unit=tick} ")),
        "{samples:#?}"
    );
}

/// The `at` times (boot clock, ns) of the samples `stats` kept in the home.
fn kept_sample_times(h: &Home) -> Vec<u64> {
    std::fs::read_to_string(h.home.join("stats.samples"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.strip_prefix("at ")?.parse().ok())
        .collect()
}

#[test]
fn a_second_stats_measures_from_the_sample_the_first_kept() {
    // SPEC §9 (stats over 100 units <= 10 ms): a one-shot `stats` keeps its
    // sample in the home; the next one measures CPU% from it (no second
    // look at /proc after a wait), and the figure is still a real one.
    let h = Home::new("a_second_stats_measures_from_the_sample_the_first_kept");
    let pid = busy_unit(&h);
    h.ok(&["stats", "--json"]);
    let first = kept_sample_times(&h);
    assert_eq!(first.len(), 2, "two samples kept after a fresh measurement");
    assert!(first[0] < first[1], "{first:?}");
    let ticks_before = cpu_ticks(pid);
    let text = h.ok(&["stats", "--json"]);
    let ticks_after = cpu_ticks(pid);
    let second = kept_sample_times(&h);
    assert_eq!(second.len(), 2, "{second:?}");
    assert!(
        first.contains(&second[0]),
        "measured from a kept sample ({first:?}), not a fresh one ({second:?})"
    );
    assert!(second[1] >= first[1], "{first:?} then {second:?}");
    let v: serde_json::Value = serde_json::from_str(&text).expect("stats --json is JSON");
    let busy = v
        .as_array()
        .and_then(|rows| rows.iter().find(|r| r["name"] == "busy"))
        .expect("busy row")
        .clone();
    let cpu = busy["cpu_percent"].as_f64().expect("cpu_percent");
    assert!(cpu > 5.0, "a busy loop uses CPU: {cpu}%\n{busy}");
    assert!(
        cpu <= 100.0 * 2.0 + 10.0,
        "{cpu}%: more than the machine has"
    );
    // The CPU time it reports is the group's, as /proc counts it then.
    let secs = busy["cpu_seconds"].as_f64().expect("cpu_seconds");
    assert!(
        secs + 0.05 >= ticks_before as f64 / 100.0 && secs <= ticks_after as f64 / 100.0 + 0.5,
        "{secs} s vs /proc {ticks_before}..{ticks_after} ticks"
    );
    // A damaged file costs a fresh measurement, not an error.
    std::fs::write(h.home.join("stats.samples"), "garbage").expect("write");
    h.ok(&["stats", "busy"]);
    assert_eq!(kept_sample_times(&h).len(), 2);
}

#[test]
fn list_wide_adds_cpu_and_memory() {
    // `list --wide`: CPU% and MEM columns, numbers for a running unit and
    // `-` for one that runs nothing.
    let h = Home::new("list_wide_adds_cpu_and_memory");
    busy_unit(&h);
    let out = h.ok(&["list", "--wide"]);
    let header = out.lines().next().unwrap_or_default();
    assert!(header.contains("CPU%") && header.contains("MEM"), "{out}");
    let busy = out
        .lines()
        .find(|l| l.starts_with("busy "))
        .expect("busy row");
    let cols: Vec<&str> = busy.split_whitespace().collect();
    let cpu: f64 = cols[5].parse().unwrap_or_else(|_| panic!("CPU% of {busy}"));
    assert!(cpu > 5.0, "{out}");
    assert!(busy.contains("KiB") || busy.contains("MiB"), "{out}");
    let idle = out
        .lines()
        .find(|l| l.starts_with("idle "))
        .expect("idle row");
    assert_eq!(idle.split_whitespace().nth(5), Some("-"), "{out}");
    // Plain `list` keeps its columns.
    assert!(!h.ok(&["list"]).contains("CPU%"));
}

/// A home with `web` running and `stats --watch 0.2` writing into
/// `watch.out` (its path), killed by pid when dropped.
fn watching_web(test: &str) -> (Home, std::path::PathBuf, Background) {
    let h = Home::new(test);
    h.unit("web", "[service]\nExecStart = \"sleep 1000\"\n");
    h.ok(&["start", "web"]);
    let out_path = h.root.join("watch.out");
    let file = std::fs::File::create(&out_path).expect("create watch.out");
    let mut cmd = h.command(&["stats", "--watch", "0.2"]);
    cmd.stdout(file).stderr(Stdio::null());
    let watch = Background(cmd.spawn().expect("spawn stats --watch"));
    (h, out_path, watch)
}

#[test]
fn stats_watch_prints_plain_tables_when_not_on_a_terminal() {
    // Not a terminal: each refresh prints the table again (no escapes).
    let (h, out_path, _watch) =
        watching_web("stats_watch_prints_plain_tables_when_not_on_a_terminal");
    h.wait_until("two refreshes", WAIT, || {
        let text = std::fs::read_to_string(&out_path).unwrap_or_default();
        text.lines().filter(|l| l.starts_with("web ")).count() >= 2
    });
    let text = std::fs::read_to_string(&out_path).unwrap_or_default();
    assert!(!text.contains('\x1b'), "no escapes off a terminal:\n{text}");
}

#[test]
fn stats_watch_ends_when_the_daemon_is_killed_and_starts_no_other() {
    // `stats --watch` running when `kill` stops the daemon: it ends (exit 3, not running) instead of starting a new daemon at its next look.
    let (h, out_path, mut watch) = watching_web("stats_watch_ends_at_kill");
    h.wait_until("a first table", WAIT, || {
        std::fs::read_to_string(&out_path).is_ok_and(|t| t.lines().any(|l| l.starts_with("web ")))
    });
    h.ok(&["kill"]);
    let mut status = None;
    h.wait_until("stats --watch to end", WAIT, || {
        status = watch.0.try_wait().expect("try_wait");
        status.is_some()
    });
    // 3: the daemon is not running (SPEC §5).
    assert_eq!(status.and_then(|s| s.code()), Some(3));
    assert!(
        h.daemons().is_empty(),
        "a daemon was started: {:?}",
        h.daemons()
    );
}

#[test]
fn logs_without_a_name_shows_and_follows_every_unit() {
    // `logs`: every unit's last lines prefixed `NAME | `; `logs -f` follows
    // all of them, a unit started later and a restarted one included.
    let h = Home::new("logs_without_a_name_shows_and_follows_every_unit");
    h.unit(
        "a",
        "[service]\nExecStart = \"sh -c 'echo a1; echo a2; exec sleep 1000'\"\n",
    );
    h.unit(
        "b",
        "[service]\nExecStart = \"sh -c 'echo b-start; exec sleep 1000'\"\n",
    );
    h.unit(
        "c",
        "[service]\nExecStart = \"sh -c 'echo c-hello; exec sleep 1000'\"\n",
    );
    h.ok(&["start", "a", "b"]);
    let log = |n: &str| std::fs::read_to_string(h.home.join("logs").join(format!("{n}.log")));
    h.wait_until("a and b to write their lines", WAIT, || {
        log("a").is_ok_and(|t| t.contains("a2")) && log("b").is_ok_and(|t| t.contains("b-start"))
    });
    assert_eq!(h.ok(&["logs"]), "a | a1\na | a2\nb | b-start\n");
    assert_eq!(h.ok(&["logs", "-n", "1"]), "a | a2\nb | b-start\n");

    let out_path = h.root.join("follow.out");
    let file = std::fs::File::create(&out_path).expect("create follow.out");
    let mut cmd = h.command(&["logs", "-f", "-n", "1"]);
    cmd.stdout(file).stderr(Stdio::null());
    let _follow = Background(cmd.spawn().expect("spawn logs -f"));
    let read = || std::fs::read_to_string(&out_path).unwrap_or_default();
    h.wait_until("the tails", WAIT, || read().contains("b | b-start"));
    h.ok(&["start", "c"]);
    h.ok(&["restart", "b"]);
    h.wait_until("c's line and b's second start", WAIT, || {
        let t = read();
        t.contains("c | c-hello\n") && t.matches("b | b-start\n").count() == 2
    });
    assert!(
        read()
            .lines()
            .all(|l| l.starts_with("a | ") || l.starts_with("b | ") || l.starts_with("c | ")),
        "{}",
        read()
    );
}

/// Parses Prometheus text with the `prometheus_client` parser (Debian's
/// python3-prometheus-client, installed by .ci/run); returns one line per
/// sample: `name{labels} value`, labels sorted.
fn prometheus_parse(text: &str, dir: &std::path::Path) -> Vec<String> {
    let file = dir.join("metrics.prom");
    std::fs::write(&file, text).expect("write metrics.prom");
    let script = [
        "import sys",
        "from prometheus_client.parser import text_string_to_metric_families as parse",
        "for fam in parse(open(sys.argv[1]).read()):",
        "    for s in fam.samples:",
        "        labels = ','.join('%s=%s' % kv for kv in sorted(s.labels.items()))",
        "        print('%s{%s} %g' % (s.name, labels, s.value))",
    ]
    .join("\n");
    let out = std::process::Command::new("/usr/bin/python3")
        .arg("-c")
        .arg(script)
        .arg(&file)
        .output()
        .expect("run /usr/bin/python3");
    assert!(
        out.status.success(),
        "the Prometheus parser refused it (python3-prometheus-client is installed by .ci/run):\n{}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout(&out).lines().map(str::to_owned).collect()
}

#[test]
fn metrics_prints_the_series_in_prometheus_text() {
    // `metrics`: HELP and TYPE lines, one state series per state, restarts,
    // the last exit code and the daemon's version; a real parser takes it.
    let h = Home::new("metrics_prints_the_series_in_prometheus_text");
    h.unit("web", "[service]\nExecStart = \"sleep 1000\"\n");
    h.unit(
        "job",
        "[service]\nExecStart = \"sh -c 'exit 4'\"\nRestart = \"no\"\n",
    );
    h.ok(&["start", "web"]);
    let _ = h.cmd(&["start", "job"]);
    h.wait_state("job", "failed");
    let text = h.ok(&["metrics"]);
    for name in [
        "diakonos_unit_state",
        "diakonos_service_restart_total",
        "diakonos_unit_last_exit_code",
        "diakonos_unit_health",
        "diakonos_timer_last_trigger_seconds",
        "diakonos_daemon_info",
    ] {
        assert!(text.contains(&format!("# HELP {name} ")), "{name}:\n{text}");
        assert!(text.contains(&format!("# TYPE {name} ")), "{name}:\n{text}");
    }
    let samples = prometheus_parse(&text, &h.root);
    for want in [
        "diakonos_unit_state{state=running,unit=web} 1",
        "diakonos_unit_state{state=inactive,unit=web} 0",
        "diakonos_unit_state{state=failed,unit=job} 1",
        "diakonos_unit_last_exit_code{unit=job} 4",
        "diakonos_service_restart_total{unit=web} 0",
        &format!(
            "diakonos_daemon_info{{version={}}} 1",
            env!("CARGO_PKG_VERSION")
        ),
    ] {
        assert!(
            samples.iter().any(|s| s == want),
            "{want} missing:\n{samples:#?}"
        );
    }
}

#[test]
fn metrics_file_follows_start_and_stop() {
    // An auto-started daemon with DIAKONOS_METRICS_FILE keeps the file
    // current: it shows web running after `start`, inactive after `stop`,
    // and parses each time.
    let h = Home::new("metrics_file_follows_start_and_stop");
    h.unit("web", "[service]\nExecStart = \"sleep 1000\"\n");
    let path = h.root.join("diakonos.prom");
    let mut start = h.command(&["start", "web"]);
    start.env("DIAKONOS_METRICS_FILE", &path);
    let out = h.run(start);
    assert!(out.status.success(), "{}", crate::util::stderr(&out));
    let read = || std::fs::read_to_string(&path).unwrap_or_default();
    let running = "diakonos_unit_state{unit=\"web\",state=\"running\"} 1\n";
    h.wait_until("the metrics file to show web running", WAIT, || {
        read().contains(running)
    });
    assert!(prometheus_parse(&read(), &h.root)
        .iter()
        .any(|s| s == "diakonos_unit_state{state=running,unit=web} 1"));
    h.ok(&["stop", "web"]);
    let inactive = "diakonos_unit_state{unit=\"web\",state=\"inactive\"} 1\n";
    h.wait_until("the metrics file to show web inactive", WAIT, || {
        read().contains(inactive)
    });
    prometheus_parse(&read(), &h.root);
    // No temporary file is left beside it.
    let leftovers: Vec<_> = std::fs::read_dir(&h.root)
        .expect("read the test root")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp."))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn an_idle_daemon_with_a_metrics_file_does_not_wake_up() {
    // Once a start has settled (state synced, metrics written), the daemon
    // makes no context switch for a while: nothing polls the file.
    let h = Home::new("an_idle_daemon_with_a_metrics_file_does_not_wake_up");
    h.unit("web", "[service]\nExecStart = \"sleep 1000\"\n");
    let path = h.root.join("diakonos.prom");
    let mut start = h.command(&["start", "web"]);
    start.env("DIAKONOS_METRICS_FILE", &path);
    assert!(h.run(start).status.success());
    let daemon = h.daemon_pid().expect("a daemon runs");
    let switches = || {
        status_field(daemon, "voluntary_ctxt_switches:")
            + status_field(daemon, "nonvoluntary_ctxt_switches:")
    };
    let modified = || std::fs::metadata(&path).and_then(|m| m.modified()).ok();
    // Quiet for two seconds in a row, within a generous deadline (the state
    // file's sync comes a second after the last change).
    h.wait_until("the daemon to stay asleep for 2s", WAIT * 3, || {
        let (c0, m0) = (switches(), modified());
        std::thread::sleep(std::time::Duration::from_secs(2));
        m0.is_some() && switches() == c0 && modified() == m0
    });
}

#[test]
fn list_wide_shows_no_cpu_for_a_unit_that_no_longer_runs() {
    // A stopped unit has no processes: CPU% is `-` (null in JSON), never a made-up 0.
    let h = Home::new("list_wide_shows_no_cpu_for_a_unit_that_no_longer_runs");
    h.unit("a", "[service]\nExecStart = \"sleep 1000\"\n");
    h.ok(&["start", "a"]);
    h.ok(&["stop", "a"]);
    let v: serde_json::Value =
        serde_json::from_str(&h.ok(&["list", "--wide", "--json"])).expect("JSON");
    assert!(v[0]["cpu_percent"].is_null(), "{v}");
    let table = h.ok(&["list", "--wide"]);
    let row = table.lines().nth(1).expect("a row");
    assert!(!row.contains("0.0"), "{table}");
}

#[test]
fn a_metrics_file_that_cannot_be_written_is_refused_at_once() {
    // `daemon --detach --metrics-file` into a missing directory: exit 1 naming it, and no daemon started.
    let h = Home::new("a_metrics_file_that_cannot_be_written");
    let missing = h.root.join("no-such-dir").join("diakonos.prom");
    let err = h.fails(
        1,
        &[
            "daemon",
            "--detach",
            "--metrics-file",
            missing.to_str().expect("utf-8"),
        ],
    );
    assert!(
        err.contains("no-such-dir") && err.contains("metrics file"),
        "{err}"
    );
    assert!(h.daemon_pid().is_none_or(|p| !crate::util::alive(p)));
}

#[test]
fn stats_counts_the_processes_that_left_the_group_with_setsid() {
    // As each postgres backend does: a service's child in a session of its own is still the service's (its processes and memory), an unrelated process is not.
    let h = Home::new("stats_counts_the_processes_that_left_the_group");
    h.unit(
        "pg",
        &format!(
            "[service]\nExecStart = {}\n",
            crate::util::sh("setsid sleep 1000 & echo $! > child; exec sleep 1000")
        ),
    );
    h.ok(&["start", "pg"]);
    let child = h.written_pid("child");
    h.wait_until("the child in a session of its own", WAIT, || {
        crate::util::Stat::of(child).is_some_and(|s| s.session == child)
    });
    let v: serde_json::Value =
        serde_json::from_str(&h.ok(&["stats", "--json", "pg"])).expect("stats --json");
    assert_eq!(v[0]["processes"], 2, "{v}");
}
