//! Operator insight (SPEC §12): `why`, `tree`, `graph`.

use std::process::{Child, Stdio};

use crate::util::{stdout, Home, WAIT};

/// A client started in the background (a `start` that blocks), killed and
/// reaped by pid when the test ends, even when it panics.
struct Background(Child);

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

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
    let svg = h.root.join("graph.svg");
    let dot_in = h.root.join("graph.dot");
    std::fs::write(&dot_in, &full).expect("write graph.dot");
    let out = std::process::Command::new("dot")
        .arg("-Tsvg")
        .arg(&dot_in)
        .arg("-o")
        .arg(&svg)
        .output()
        .expect("graphviz is installed by .ci/run (apt-get install graphviz)");
    assert!(
        out.status.success(),
        "dot refused:\n{}\n{full}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&svg).expect("read the svg");
    assert!(text.contains("<svg") && text.contains("migrate"), "{text}");
    let err = h.fails(2, &["graph", "--format", "png"]);
    assert!(err.contains("--format takes `mermaid` or `dot`"), "{err}");
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
