//! Dependencies: ordering, pulling in, failing and stopping along them,
//! conflicts and `why`.

use super::*;

#[test]
fn requires_pulls_in_and_orders_the_dependency() {
    // Starting worker starts database first, and the job answers once both are up.
    let (mut s, mut sys, t0) = setup(&[("database", SIMPLE), ("worker", WORKER)]);
    assert_eq!(start(&mut s, &mut sys, Some(7), &["worker"], t0), None);
    assert_eq!(sys.order(), ["database", "worker"]);
    assert_eq!(state(&s, "worker"), StateName::Running);
    let replies = s.take_replies();
    assert_eq!(replies.len(), 1);
    assert_eq!(replies[0].0, 7);
    assert!(matches!(&replies[0].1, Response::Job(r) if r[0].ok && r[0].name == "worker"));
}

#[test]
fn a_dependent_spawns_once_its_requirement_has_exec_d() {
    // database is up once cloned, but worker (Requires, so ordered after it) is cloned only once database's exec is done: worker finds database's program running, not a copy of the daemon on its way there.
    let (mut s, mut sys, t0) = setup(&[("database", SIMPLE), ("worker", WORKER)]);
    s.handle(
        Input::Request(Some(3), Request::Start(vec!["worker".into()])),
        t0,
    );
    s.run(t0, &mut sys);
    assert_eq!(sys.order(), ["database"]);
    assert_eq!(state(&s, "database"), StateName::Running);
    assert_eq!(state(&s, "worker"), StateName::Waiting);
    let pid = sys.pid_of("database");
    s.handle(
        Input::ExecDone {
            pid,
            outcome: Ok(()),
        },
        t0,
    );
    s.run(t0, &mut sys);
    assert_eq!(sys.order(), ["database", "worker"]);
}

#[test]
fn dependent_waits_for_a_oneshot_to_finish() {
    // A unit After a oneshot spawns only once the oneshot exited 0.
    let (mut s, mut sys, t0) = setup(&[
        (
            "migrate",
            "[service]\nType = \"oneshot\"\nExecStart = \"m\"\n",
        ),
        (
            "web",
            "[unit]\nRequires = [\"migrate\"]\n[service]\nExecStart = \"w\"\n",
        ),
    ]);
    start(&mut s, &mut sys, Some(1), &["web"], t0);
    assert_eq!(sys.order(), ["migrate"]);
    assert_eq!(state(&s, "web"), StateName::Waiting);
    exit_main(&mut s, &mut sys, "migrate", ExitKind::Code(0), t0);
    assert_eq!(sys.order(), ["migrate", "web"]);
    assert_eq!(state(&s, "migrate"), StateName::Exited);
    assert_eq!(state(&s, "web"), StateName::Running);
}

#[test]
fn independent_units_start_in_the_same_pass() {
    // Units with no ordering between them are all spawned at once.
    let (mut s, mut sys, t0) = setup(&[("a", SIMPLE), ("b", SIMPLE), ("c", SIMPLE)]);
    start(&mut s, &mut sys, Some(1), &["a", "b", "c"], t0);
    assert_eq!(sys.spawned.len(), 3);
    assert_eq!(s.take_replies().len(), 1);
}

#[test]
fn failed_requirement_fails_the_dependent_and_the_job() {
    // A required unit that cannot spawn fails its dependent with "dependency X failed".
    let (mut s, mut sys, t0) = setup(&[("database", SIMPLE), ("worker", WORKER)]);
    sys.fail_spawn = ["database".to_owned()].into();
    start(&mut s, &mut sys, Some(1), &["worker"], t0);
    assert_eq!(state(&s, "worker"), StateName::Failed);
    let info = s.info(s.id_of("worker").unwrap(), t0);
    assert_eq!(info.reason.as_deref(), Some("dependency database failed"));
    let replies = s.take_replies();
    assert!(matches!(&replies[0].1, Response::Job(r) if !r[0].ok));
}

#[test]
fn failed_want_does_not_block_the_wanter() {
    // A Wants dependency that fails is tolerated.
    let (mut s, mut sys, t0) = setup(&[
        ("cache", SIMPLE),
        (
            "web",
            "[unit]\nWants = [\"cache\"]\n[service]\nExecStart = \"w\"\n",
        ),
    ]);
    sys.fail_spawn = ["cache".to_owned()].into();
    start(&mut s, &mut sys, Some(1), &["web"], t0);
    assert_eq!(state(&s, "cache"), StateName::Failed);
    assert_eq!(state(&s, "web"), StateName::Running);
}

#[test]
fn stop_takes_down_requirers_first() {
    // Stopping database signals worker first and database only once worker is gone.
    let (mut s, mut sys, t0) = setup(&[("database", SIMPLE), ("worker", WORKER)]);
    start(&mut s, &mut sys, Some(1), &["worker"], t0);
    s.take_replies();
    let (db, w) = (sys.pid_of("database"), sys.pid_of("worker"));
    stop(&mut s, &mut sys, Some(2), &["database"], t0);
    assert_eq!(sys.signals, [(w, Signal::SIGTERM)]);
    exit(&mut s, &mut sys, w, TERM, t0);
    assert_eq!(sys.signals, [(w, Signal::SIGTERM), (db, Signal::SIGTERM)]);
    assert!(
        s.take_replies().is_empty(),
        "the stop job waits for database"
    );
    exit(&mut s, &mut sys, db, TERM, t0);
    assert_eq!(state(&s, "database"), StateName::Inactive);
    assert_eq!(state(&s, "worker"), StateName::Inactive);
    assert_eq!(s.take_replies().len(), 1);
}

#[test]
fn failing_requirement_takes_running_dependents_down() {
    // A required unit that ends failed stops its running dependents with the reason.
    let (mut s, mut sys, t0) = setup(&[
        (
            "database",
            "[service]\nExecStart = \"d\"\nRestart = \"no\"\n",
        ),
        ("worker", WORKER),
    ]);
    start(&mut s, &mut sys, None, &["worker"], t0);
    let (db, w) = (sys.pid_of("database"), sys.pid_of("worker"));
    exit(&mut s, &mut sys, db, ExitKind::Code(1), t0);
    assert!(sys.signals.contains(&(w, Signal::SIGTERM)));
    exit(&mut s, &mut sys, w, TERM, t0);
    let info = s.info(s.id_of("worker").unwrap(), t0);
    assert_eq!(info.state, StateName::Failed);
    assert_eq!(info.reason.as_deref(), Some("dependency database failed"));
}

#[test]
fn restarting_requirement_leaves_dependents_running() {
    // A dependency that merely restarts does not touch its dependents.
    let (mut s, mut sys, t0) = setup(&[
        (
            "database",
            "[service]\nExecStart = \"d\"\nRestart = \"always\"\nRestartSec = 0\n",
        ),
        ("worker", WORKER),
    ]);
    start(&mut s, &mut sys, None, &["worker"], t0);
    let (db, w) = (sys.pid_of("database"), sys.pid_of("worker"));
    exit(&mut s, &mut sys, db, ExitKind::Signal(Signal::SIGKILL), t0);
    s.timers_expired(t0);
    pass(&mut s, t0, &mut sys);
    assert_ne!(sys.pid_of("database"), db);
    assert_eq!(state(&s, "database"), StateName::Running);
    assert_eq!(s.entries[s.id_of("worker").unwrap()].svc.pid(), Some(w));
    assert!(!sys.signals.iter().any(|(p, _)| *p == w));
}

#[test]
fn restart_restarts_the_units_that_require_it() {
    // Restarting database also restarts the running worker that Requires it.
    let (mut s, mut sys, t0) = setup(&[("database", SIMPLE), ("worker", WORKER)]);
    start(&mut s, &mut sys, None, &["worker"], t0);
    let (db, w) = (sys.pid_of("database"), sys.pid_of("worker"));
    restart(&mut s, &mut sys, Some(4), &["database"], t0);
    exit(&mut s, &mut sys, w, TERM, t0);
    exit(&mut s, &mut sys, db, TERM, t0);
    assert_ne!(sys.pid_of("database"), db);
    assert_ne!(sys.pid_of("worker"), w);
    assert_eq!(state(&s, "worker"), StateName::Running);
    let replies = s.take_replies();
    assert!(
        matches!(&replies[..], [(4, Response::Job(r))] if r.len() == 2 && r.iter().all(|r| r.ok))
    );
}

#[test]
fn kill_stops_everything_in_reverse_order_then_says_bye() {
    // Kill stops dependents before dependencies and answers Bye when all is down.
    let (mut s, mut sys, t0) =
        setup(&[("database", SIMPLE), ("worker", WORKER), ("other", SIMPLE)]);
    start(&mut s, &mut sys, None, &["worker", "other"], t0);
    let (db, w, o) = (
        sys.pid_of("database"),
        sys.pid_of("worker"),
        sys.pid_of("other"),
    );
    ask(&mut s, &mut sys, Some(9), Request::Kill, t0);
    let signalled: Vec<Pid> = sys.signals.iter().map(|(p, _)| *p).collect();
    assert!(signalled.contains(&w) && signalled.contains(&o) && !signalled.contains(&db));
    for pid in [w, o, db] {
        exit(&mut s, &mut sys, pid, TERM, t0);
    }
    assert!(s.exiting);
    assert_eq!(s.take_replies(), [(9, Response::Bye)]);
}

#[test]
fn cycles_and_missing_requirements_make_units_invalid() {
    // A dependency cycle and a Requires on a missing unit are errors naming the path.
    let s = sup(&[
        (
            "a",
            "[unit]\nRequires = [\"b\"]\n[service]\nExecStart = \"x\"\n",
        ),
        (
            "b",
            "[unit]\nAfter = [\"a\"]\n[service]\nExecStart = \"x\"\n",
        ),
        (
            "c",
            "[unit]\nRequires = [\"ghost\"]\n[service]\nExecStart = \"x\"\n",
        ),
    ]);
    let err = |n: &str| s.entries[s.id_of(n).unwrap()].error().unwrap_or_default();
    assert!(
        err("a").contains("dependency cycle: a -> b -> a"),
        "{}",
        err("a")
    );
    assert!(err("b").contains("dependency cycle"));
    assert!(err("c").contains("ghost"));
    assert_eq!(state(&s, "c"), StateName::Invalid);
}

#[test]
fn starting_a_unit_stops_what_conflicts_with_it_first() {
    // a Conflicts b; c Requires b. Starting a stops c, then b, and spawns a
    // only once b is gone; the start job answers once a is up.
    let conflicts = "[unit]\nConflicts = [\"b\"]\n[service]\nExecStart = \"a\"\n";
    let needs_b = "[unit]\nRequires = [\"b\"]\n[service]\nExecStart = \"c\"\n";
    let (mut s, mut sys, t0) = setup(&[("a", conflicts), ("b", SIMPLE), ("c", needs_b)]);
    start(&mut s, &mut sys, Some(1), &["c"], t0);
    s.take_replies();
    let (b, c) = (sys.pid_of("b"), sys.pid_of("c"));
    start(&mut s, &mut sys, Some(2), &["a"], t0);
    assert_eq!(sys.signals, [(c, Signal::SIGTERM)]);
    exit(&mut s, &mut sys, c, TERM, t0);
    assert_eq!(sys.signals, [(c, Signal::SIGTERM), (b, Signal::SIGTERM)]);
    assert_eq!(sys.order(), ["b", "c"], "a spawned while b still runs");
    exit(&mut s, &mut sys, b, TERM, t0);
    assert_eq!(sys.order(), ["b", "c", "a"]);
    assert_eq!(state(&s, "a"), StateName::Running);
    assert_eq!(state(&s, "b"), StateName::Inactive);
    assert_eq!(state(&s, "c"), StateName::Inactive);
    assert_eq!(s.take_replies().len(), 1);
    // The other direction: b (which names nothing) stops a.
    let a = sys.pid_of("a");
    start(&mut s, &mut sys, Some(3), &["b"], t0);
    assert_eq!(sys.signals.last(), Some(&(a, Signal::SIGTERM)));
    exit(&mut s, &mut sys, a, TERM, t0);
    assert_eq!(state(&s, "b"), StateName::Running);
}

#[test]
fn why_follows_a_waiting_unit_to_a_restarting_dependency() {
    // worker waits for database, which crashed and restarts in 5s: `why`
    // names both, with the delay and the attempt, and is not up.
    let (mut s, mut sys, t0) = setup(&[
        (
            "database",
            "[service]\nType = \"notify\"\nExecStart = \"d\"\nRestartSec = 5\n",
        ),
        ("worker", WORKER),
    ]);
    start(&mut s, &mut sys, Some(1), &["worker"], t0);
    exit_main(&mut s, &mut sys, "database", ExitKind::Code(3), t0);
    let report = s.why(s.id_of("worker").unwrap(), t0 + Duration::from_secs(1));
    assert!(!report.up);
    assert_eq!(
        report.lines[0],
        "worker is waiting for database (requires), which is restarting"
    );
    assert_eq!(report.lines[1], "  waiting for 1s");
    assert!(
        report.lines[2].starts_with(
            "  database is restarting (exited with code 3): next attempt in 4s (attempt 2)"
        ),
        "{:?}",
        report.lines
    );
    let up = s.why(s.id_of("database").unwrap(), t0);
    assert!(!up.up);
}

#[test]
fn a_start_heard_in_the_pass_of_a_kill_is_stopped_too() {
    // `start web & kill`: both requests in one pass. Nothing runs on after the Bye: the start, still only queued, is dropped and its client told the daemon is shutting down (web was spawned after the stops, and the Bye left it running).
    let (mut s, mut sys, t0) = setup(&[("web", SIMPLE)]);
    let _ = s.request(Some(1), Request::Start(names(&["web"])), t0);
    let _ = s.request(Some(2), Request::Kill, t0);
    pass(&mut s, t0, &mut sys);
    let spawned: Vec<Pid> = sys.spawned.iter().map(|(_, _, p)| *p).collect();
    for pid in &spawned {
        assert!(
            sys.signals.iter().any(|(p, _)| p == pid),
            "spawned {pid} but never signalled: {:?}",
            sys.signals
        );
    }
    assert!(!s.exiting || spawned.is_empty(), "exiting with web alive");
    // As built: the start is dropped and told so; nothing ran, so the
    // kill is done at once.
    assert_eq!(spawned, []);
    assert_eq!(state(&s, "web"), StateName::Inactive);
    let replies = s.take_replies();
    assert!(
        matches!(&replies[..], [(1, Response::Error { message, .. }), (2, Response::Bye)] if message.contains("shutting down")),
        "{replies:?}"
    );
}
