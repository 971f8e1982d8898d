//! `daemon --init` as a container's entrypoint (SPEC §14), run as PID 1 of
//! a new PID namespace (`unshare --pid --fork --mount-proc`, as root).

use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use crate::util::{all_pids, children_of, cmdline, sh, try_run, Home};

const INIT_WAIT: Duration = Duration::from_secs(60);

/// `unshare --pid --fork --mount-proc diakonos --home .. --service-dir .. daemon --init ARGS`.
fn init_command(h: &Home, args: &[&str]) -> Command {
    let mut all = vec!["daemon", "--init"];
    all.extend(args);
    let inner = h.command(&all);
    let mut cmd = Command::new("unshare");
    cmd.args(["--pid", "--fork", "--mount-proc", "--kill-child"])
        .arg(inner.get_program())
        .args(inner.get_args())
        .current_dir(&h.root)
        .env_remove("DIAKONOS_HOME")
        .env_remove("DIAKONOS_SERVICE_DIR")
        .stdin(Stdio::null());
    cmd
}

fn run_init(h: &Home, args: &[&str]) -> Output {
    try_run(init_command(h, args), INIT_WAIT).expect("daemon --init ran and exited in time")
}

/// No process of this test is left (the namespace died with its PID 1).
fn none_left(h: &Home) {
    let root = format!("{}/", h.root.display());
    let me = std::process::id() as i32;
    let left: Vec<i32> = all_pids()
        .into_iter()
        .filter(|&p| p != me && cmdline(p).contains(&root))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

/// `daemon --init web` in the background, once web and db each wrote a
/// line to `ups`; with the namespaced daemon's pid.
fn init_web_up(h: &Home) -> (Child, i32) {
    init_up(h, &["web"], 2)
}

/// `daemon --init ARGS` in the background, once `ups` has `n` lines; with
/// the namespaced daemon's pid.
fn init_up(h: &Home, args: &[&str], n: usize) -> (Child, i32) {
    let child = init_command(h, args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn unshare");
    h.wait_until("all up", INIT_WAIT, || h.lines("ups").len() == n);
    let daemon = children_of(child.id() as i32)
        .first()
        .map(|&(p, _)| p)
        .expect("the namespaced daemon");
    (child, daemon)
}

fn sigterm(daemon: i32) {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(daemon),
        nix::sys::signal::Signal::SIGTERM,
    )
    .expect("SIGTERM to the daemon");
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn init_as_pid1_exits_with_the_code_of_its_exit_with_unit() {
    // PID 1 starts the named units, their output reaches its stdout, the daemon log its stderr; it exits with the job's code and leaves nothing.
    let h = Home::new("init_as_pid1_exits_with_the_code");
    h.unit(
        "job",
        &format!(
            "[service]\nType = \"oneshot\"\nRestart = \"no\"\nExecStart = {}\n",
            sh("echo \"job says hello, parent $PPID\"; sleep 0.2; exit 7")
        ),
    );
    h.unit(
        "side",
        &format!(
            "[service]\nExecStart = {}\n",
            sh("echo side up; exec sleep 300")
        ),
    );
    let out = run_init(&h, &["side", "job", "--exit-with", "job"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(
        out.status.code(),
        Some(7),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(stdout.contains("job says hello, parent 1"), "{stdout}");
    assert!(stdout.contains("side up"), "{stdout}");
    assert!(stderr.contains("daemon starting"), "{stderr}");
    assert!(
        !h.home.join("logs/job.log").exists()
            || std::fs::read_to_string(h.home.join("logs/job.log"))
                .unwrap_or_default()
                .is_empty()
    );
    none_left(&h);
}

#[test]
fn init_exits_when_all_done_0_or_1_if_one_failed() {
    // The default exit policy: once nothing runs, exit 0, or 1 when a unit ended failed.
    let h = Home::new("init_exits_when_all_done");
    h.unit("a", "[service]\nType = \"oneshot\"\nExecStart = \"true\"\n");
    h.unit(
        "b",
        "[service]\nType = \"oneshot\"\nExecStart = \"sleep 0.3\"\n",
    );
    let out = run_init(&h, &["a", "b"]);
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    h.unit(
        "c",
        "[service]\nType = \"oneshot\"\nRestart = \"no\"\nExecStart = \"false\"\n",
    );
    let out = run_init(&h, &["a", "c"]);
    assert_eq!(out.status.code(), Some(1), "{:?}", text(&out));
    none_left(&h);
}

#[test]
fn init_stops_in_reverse_dependency_order_on_sigterm() {
    // SIGTERM to PID 1: the dependent stops before what it requires, then the daemon exits 0; meanwhile `logs` says where the output goes.
    let h = Home::new("init_stops_in_reverse_dependency_order");
    let svc = |name: &str| {
        sh(&format!(
            "trap 'echo {name} >> stops; exit 0' TERM; echo {name} >> ups; while :; do sleep 0.05; done"
        ))
    };
    h.unit("db", &format!("[service]\nExecStart = {}\n", svc("db")));
    h.unit(
        "web",
        &format!(
            "[unit]\nRequires = [\"db\"]\n[service]\nExecStart = {}\n",
            svc("web")
        ),
    );
    let (mut child, daemon) = init_web_up(&h);
    // No log files: `logs` says where the output goes.
    let out = h.cmd(&["logs", "web"]);
    let (_, err) = text(&out);
    assert!(!out.status.success());
    assert!(err.contains("goes to the daemon's stdout"), "{err}");
    sigterm(daemon);
    let status = exited(&mut child);
    assert_eq!(status.code(), Some(0));
    assert_eq!(h.lines("stops"), ["web", "db"]);
    none_left(&h);
}

/// Waits for unshare (`child`) to exit after a SIGTERM; its status.
fn exited(child: &mut Child) -> std::process::ExitStatus {
    crate::util::wait_exit(child, INIT_WAIT, "daemon --init after SIGTERM")
}

#[test]
fn an_exit_with_unit_that_ends_during_the_ordered_stop_does_not_break_the_order() {
    // `--exit-with side`: one SIGTERM stops side at once and web slowly; side's end meets the exit policy, which must not count as a second signal: db still stops only after web.
    let h = Home::new("an_exit_with_unit_that_ends_during_the_stop");
    let svc = |name: &str, pause: &str| {
        sh(&format!(
            "trap 'sleep {pause}; echo {name} >> stops; exit 0' TERM; echo {name} >> ups; while :; do sleep 0.05; done"
        ))
    };
    h.unit(
        "db",
        &format!("[service]\nExecStart = {}\n", svc("db", "0")),
    );
    h.unit(
        "side",
        &format!("[service]\nExecStart = {}\n", svc("side", "0")),
    );
    h.unit(
        "web",
        &format!(
            "[unit]\nRequires = [\"db\"]\n[service]\nExecStart = {}\n",
            svc("web", "0.5")
        ),
    );
    let (mut child, daemon) = init_up(&h, &["web", "side", "--exit-with", "side"], 3);
    sigterm(daemon);
    let status = exited(&mut child);
    let stops = h.lines("stops");
    let at = |n: &str| stops.iter().position(|s| s == n);
    assert!(
        at("web") < at("db") && at("web").is_some(),
        "stops: {stops:?}"
    );
    assert_eq!(status.code(), Some(0), "stops: {stops:?}");
    none_left(&h);
}

#[test]
fn a_second_sigterm_stops_the_rest_without_waiting_for_the_order() {
    // web ignores SIGTERM (TimeoutStopSec 300), so the ordered stop waits; a second SIGTERM stops db at once.
    let h = Home::new("a_second_sigterm_stops_the_rest");
    h.unit(
        "db",
        &format!(
            "[service]\nExecStart = {}\n",
            sh("trap 'echo db >> stops; exit 0' TERM; echo db >> ups; while :; do sleep 0.05; done")
        ),
    );
    h.unit(
        "web",
        &format!(
            "[unit]\nRequires = [\"db\"]\n[service]\nTimeoutStopSec = 300\nExecStart = {}\n",
            sh("trap 'echo web-term >> stops' TERM; echo web >> ups; while :; do sleep 0.05; done")
        ),
    );
    let (mut child, daemon) = init_web_up(&h);
    sigterm(daemon);
    h.wait_until("web got SIGTERM", INIT_WAIT, || {
        h.lines("stops").contains(&"web-term".to_owned())
    });
    assert!(
        !h.lines("stops").contains(&"db".to_owned()),
        "db waits for web"
    );
    sigterm(daemon);
    h.wait_until("db stopped at once", INIT_WAIT, || {
        h.lines("stops").contains(&"db".to_owned())
    });
    // --kill-child: the namespace's PID 1, and so everything in it, dies with unshare.
    let _ = child.kill();
    let _ = child.wait();
    h.wait_until("nothing left", INIT_WAIT, || {
        let root = format!("{}/", h.root.display());
        all_pids().into_iter().all(|p| !cmdline(p).contains(&root))
    });
}

#[test]
fn init_with_file_logs_keeps_per_unit_log_files() {
    // --file-logs: the service writes HOME/logs/NAME.log, not the daemon's stdout.
    let h = Home::new("init_with_file_logs_keeps_per_unit");
    h.unit(
        "job",
        "[service]\nType = \"oneshot\"\nExecStart = \"echo into the file\"\n",
    );
    let out = run_init(&h, &["job", "--file-logs"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(!stdout.contains("into the file"), "{stdout}");
    let log = std::fs::read_to_string(h.home.join("logs/job.log")).unwrap_or_default();
    assert_eq!(log, "into the file\n");
    none_left(&h);
}

#[test]
fn init_with_an_unknown_unit_says_so_and_starts_nothing() {
    // `daemon --init nosuch`: one line naming the unit and the directory, with a hint; exit 1.
    let h = Home::new("init_with_an_unknown_unit_says_so");
    h.unit("web", "[service]\nExecStart = \"sleep 1000\"\n");
    let out = try_run(h.command(&["daemon", "--init", "nosuch"]), INIT_WAIT)
        .expect("daemon --init exited in time");
    let (_, err) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("no unit named `nosuch`") && err.contains("; hint: "),
        "{err}"
    );
    assert!(!err.contains("event loop"), "{err}");
    assert_eq!(
        err.trim_end()
            .lines()
            .last()
            .map(|l| l.starts_with("diakonos: ")),
        Some(true),
        "{err}"
    );
}
