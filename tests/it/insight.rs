//! Operator insight (SPEC §12): `why`, `tree`, `graph`, `wait`, `logs` of every unit (`stats` and `metrics`: stats.rs).

use std::process::Stdio;

use crate::stats::prometheus_parse;
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
