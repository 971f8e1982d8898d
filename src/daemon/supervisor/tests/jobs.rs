//! What jobs answer: failed attempts, timeouts, refusals, `wait` and `list`.

use super::*;

#[test]
fn invalid_units_are_listed_and_refused() {
    // A unit that does not parse shows as invalid and cannot be started; others can.
    let (mut s, mut sys, t0) = setup(&[("bad", "[service]\nRestrat = \"no\"\n"), ("good", SIMPLE)]);
    assert_eq!(state(&s, "bad"), StateName::Invalid);
    let resp = s.request(Some(1), Request::Start(names(&["bad"])), t0);
    assert!(matches!(resp, Some(Response::Error { message, .. }) if message.contains("invalid")));
    start(&mut s, &mut sys, Some(2), &["good"], t0);
    assert_eq!(state(&s, "good"), StateName::Running);
}

#[test]
fn start_fails_at_the_first_failed_attempt_while_restarts_go_on() {
    // The job answers "failed" at the first failed attempt; the unit keeps restarting.
    let (mut s, mut sys, t0) = setup(&[("mig", FAILING_ONESHOT)]);
    start(&mut s, &mut sys, Some(1), &["mig"], t0);
    assert!(s.take_replies().is_empty(), "still starting");
    let t1 = t0 + Duration::from_secs(1);
    exit_main(&mut s, &mut sys, "mig", ExitKind::Code(3), t1);
    let reply = job_reply(&mut s);
    let (name, ok, now_in, message) = &reply[0];
    assert_eq!(
        (name.as_str(), *ok, *now_in),
        ("mig", false, StateName::Restarting)
    );
    assert_eq!(
        message,
        "exited with code 3; restarting in the background (next attempt in 2s, attempt 2)"
    );
    // status says why and when, with the real exit.
    let info = s.info(0, t1 + Duration::from_millis(500));
    assert_eq!(info.reason.as_deref(), Some("exited with code 3"));
    assert_eq!(info.last_exit, Some(crate::protocol::LastExit::Code(3)));
    assert_eq!(
        info.next_attempt,
        Some(NextAttempt {
            attempt: 2,
            in_ms: 1500
        })
    );
    // The restart policy goes on.
    s.timers_expired(t1 + Duration::from_secs(2));
    pass(&mut s, t1 + Duration::from_secs(2), &mut sys);
    assert_eq!(sys.order(), ["mig", "mig"]);
    assert_eq!(state(&s, "mig"), StateName::Starting);
}

#[test]
fn start_timeout_fails_the_job_once_the_attempt_is_stopped() {
    // A notify unit that never sends READY=1 fails the job with "start timed out".
    let (mut s, mut sys, t0) = setup(&[(
        "n",
        "[service]\nType = \"notify\"\nExecStart = \"x\"\nTimeoutStartSec = 1\n",
    )]);
    start(&mut s, &mut sys, Some(1), &["n"], t0);
    let t1 = t0 + Duration::from_secs(1);
    s.timers_expired(t1);
    pass(&mut s, t1, &mut sys);
    assert!(s.take_replies().is_empty(), "stopping the attempt first");
    exit_main(&mut s, &mut sys, "n", TERM, t1);
    let reply = job_reply(&mut s);
    assert!(!reply[0].1);
    assert!(
        reply[0].3.starts_with("start timed out; restarting"),
        "{reply:?}"
    );
    let info = s.info(0, t1);
    assert_eq!(info.reason.as_deref(), Some("start timed out"));
    assert_eq!(
        info.last_exit,
        Some(crate::protocol::LastExit::Signal("SIGTERM".into()))
    );
}

#[test]
fn restart_fails_at_the_first_failed_attempt_too() {
    // A restart's start half answers like start: failed at the first failed attempt.
    let (mut s, mut sys, t0) = setup(&[("mig", FAILING_ONESHOT)]);
    let pid = started(&mut s, &mut sys, None, "mig", t0);
    exit(&mut s, &mut sys, pid, ExitKind::Code(1), t0);
    assert_eq!(state(&s, "mig"), StateName::Restarting);
    restart(&mut s, &mut sys, Some(1), &["mig"], t0);
    assert!(s.take_replies().is_empty(), "the new attempt runs");
    assert_eq!(sys.order(), ["mig", "mig"]);
    exit_main(&mut s, &mut sys, "mig", ExitKind::Code(2), t0);
    let reply = job_reply(&mut s);
    assert!(!reply[0].1);
    assert!(reply[0].3.starts_with("exited with code 2; restarting"));
}

#[test]
fn a_failed_attempt_of_a_required_unit_fails_the_start_of_its_dependent() {
    // worker waits for database in the background; the job names database and why.
    let (mut s, mut sys, t0) = setup(&[
        ("database", FAILING_ONESHOT),
        ("worker", WORKER),
        ("ok", SIMPLE),
    ]);
    start(&mut s, &mut sys, Some(1), &["ok", "worker"], t0);
    exit_main(&mut s, &mut sys, "database", ExitKind::Code(1), t0);
    let reply = job_reply(&mut s);
    let worker = reply.iter().find(|r| r.0 == "worker").unwrap();
    assert_eq!((worker.1, worker.2), (false, StateName::Waiting));
    assert!(
        worker
            .3
            .starts_with("dependency database failed: exited with code 1"),
        "{worker:?}"
    );
    assert!(reply.iter().any(|r| r.0 == "ok" && r.1));
}

#[test]
fn a_wanted_unit_that_keeps_failing_does_not_hold_up_its_dependent() {
    // A Wants/After unit whose attempt failed has had its turn: the dependent starts.
    let (mut s, mut sys, t0) = setup(&[
        ("cache", FAILING_ONESHOT),
        (
            "web",
            "[unit]\nWants = [\"cache\"]\n[service]\nExecStart = \"w\"\n",
        ),
    ]);
    start(&mut s, &mut sys, Some(1), &["web"], t0);
    exit_main(&mut s, &mut sys, "cache", ExitKind::Code(1), t0);
    assert_eq!(state(&s, "web"), StateName::Running);
    let reply = job_reply(&mut s);
    assert!(reply[0].1, "{reply:?}");
    assert_eq!(state(&s, "cache"), StateName::Restarting);
}

#[test]
fn unknown_unit_names_are_an_error() {
    // Naming a unit that does not exist is answered at once.
    let mut s = sup(&[("a", SIMPLE)]);
    let resp = s.request(Some(1), Request::Stop(names(&["nope"])), Instant::now());
    assert!(matches!(resp, Some(Response::Error { message, .. }) if message.contains("`nope`")));
}

#[test]
fn wait_answers_when_the_unit_is_up_or_its_deadline_passes() {
    // A wait is answered by the pass that brings the unit up; another one
    // by its timer, naming the state it is still in.
    let (mut s, mut sys, t0) =
        setup(&[("db", "[service]\nType = \"notify\"\nExecStart = \"d\"\n")]);
    start(&mut s, &mut sys, Some(1), &["db"], t0);
    let wait = |timeout_ms| Request::Wait {
        names: names(&["db"]),
        until: crate::protocol::WaitFor::Up,
        timeout_ms,
    };
    assert_eq!(s.request(Some(2), wait(None), t0), None);
    assert_eq!(s.request(Some(3), wait(Some(500)), t0), None);
    pass(&mut s, t0, &mut sys);
    assert!(s.take_replies().is_empty());
    let t1 = t0 + Duration::from_millis(500);
    s.timers_expired(t1);
    pass(&mut s, t1, &mut sys);
    let replies = s.take_replies();
    assert_eq!(replies.len(), 1);
    assert_eq!(replies[0].0, 3);
    assert!(
        matches!(&replies[0].1, Response::Job(r) if !r[0].ok
            && r[0].message.as_deref() == Some("still starting after 0.5s, not up")),
        "{replies:?}"
    );
    let pid = sys.pid_of("db");
    s.notified(pid, Some(pid), "READY=1", (None, None), t1);
    pass(&mut s, t1, &mut sys);
    let replies = s.take_replies();
    let conns: Vec<ConnId> = replies.iter().map(|r| r.0).collect();
    assert!(conns.contains(&2), "{replies:?}");
    assert!(replies
        .iter()
        .all(|r| !matches!(&r.1, Response::Job(j) if !j[0].ok)));
}

#[test]
fn list_rows_are_the_list_columns_of_the_full_infos() {
    // Plain `list` asks for ListRows: each row is what List's UnitInfo gives for those columns
    // (a running unit, a failed one with its reason, an invalid one with its error).
    let (mut s, mut sys, t0) = setup(&[
        ("a", SIMPLE),
        ("b", "[service]\nExecStart = \"nope\"\n"),
        ("c", "[service]\nExecStrt = \"x\"\n"),
    ]);
    start(&mut s, &mut sys, None, &["a"], t0);
    let t1 = t0 + Duration::from_secs(90);
    let full: Vec<ListRow> = match s.request(None, Request::List, t1) {
        Some(Response::Units(u)) => u.iter().map(ListRow::from).collect(),
        other => panic!("{other:?}"),
    };
    let rows = list_rows(&mut s, t1);
    assert_eq!(rows, full);
    assert_eq!(rows.len(), 3);
    assert_eq!(
        (rows[0].state, rows[0].uptime_secs),
        (StateName::Running, Some(90))
    );
    assert!(
        rows[2]
            .reason
            .as_deref()
            .is_some_and(|r| r.contains("ExecStrt")),
        "{rows:?}"
    );
}
#[test]
fn a_main_process_is_up_once_spawned_and_start_answers_at_once() {
    // SPEC §6: simple is up once spawned (its exec's outcome comes later,
    // a failure only); a stop right after is carried out at once.
    let mut s = sup(&[("a", SIMPLE), ("b", SIMPLE), ("c", SIMPLE)]);
    let mut sys = FakeSys {
        manual_execs: true,
        ..FakeSys::default()
    };
    let t0 = Instant::now();
    s.request(Some(1), Request::Start(names(&["a", "b"])), t0);
    pass(&mut s, t0, &mut sys);
    assert_eq!(sys.spawned.len(), 2);
    assert_eq!(state(&s, "a"), StateName::Running);
    assert!(matches!(&s.take_replies()[..], [(1, Response::Job(r))] if r.iter().all(|r| r.ok)));
    let a = sys.pid_of("a");
    exec_done(&mut s, &mut sys, a, Ok(()), t0);
    assert_eq!(state(&s, "a"), StateName::Running);
    s.request(Some(2), Request::Start(names(&["c"])), t0);
    pass(&mut s, t0, &mut sys);
    let c = sys.pid_of("c");
    s.request(Some(3), Request::Stop(names(&["c"])), t0);
    pass(&mut s, t0, &mut sys);
    assert_eq!(sys.signals, [(c, Signal::SIGTERM)]);
}

#[test]
fn an_exec_that_fails_after_the_spawn_fails_the_unit() {
    // ExecDone(Err) of a unit up since its clone: failed with why, no
    // restart (it cannot work as written); the child's exit (127) that
    // follows belongs to no one.
    let (mut s, mut sys, t0, pid) =
        started_before_its_exec("[service]\nExecStart = \"sleep 1\"\nRestart = \"always\"\n");
    assert_eq!(state(&s, "a"), StateName::Running);
    let err = SpawnError::Exec {
        program: "script".into(),
        error: "Exec format error (os error 8)".into(),
    };
    exec_done(&mut s, &mut sys, pid, Err(err), t0);
    assert_eq!(state(&s, "a"), StateName::Failed);
    let rows = list_rows(&mut s, t0);
    assert!(
        rows[0]
            .reason
            .as_deref()
            .is_some_and(|r| r.contains("`script`: Exec format error")),
        "{rows:?}"
    );
    s.handle(Input::ChildExited(pid, ExitKind::Code(127)), t0);
    pass(&mut s, t0, &mut sys);
    assert_eq!(state(&s, "a"), StateName::Failed);
    assert_eq!(sys.spawned.len(), 1, "not restarted");
}

#[test]
fn an_exec_that_fails_while_the_unit_stops_ends_the_stop_by_its_exit() {
    // Stopped before its exec: the failed exec is no news; its exit is the
    // end of the stop, as any exit.
    let (mut s, mut sys, t0, pid) = started_before_its_exec(SIMPLE);
    s.request(Some(2), Request::Stop(names(&["a"])), t0);
    pass(&mut s, t0, &mut sys);
    assert_eq!(state(&s, "a"), StateName::Stopping);
    let err = SpawnError::NotFound {
        program: "nope".into(),
        in_path: true,
    };
    exec_done(&mut s, &mut sys, pid, Err(err), t0);
    assert_eq!(state(&s, "a"), StateName::Stopping);
    sys.alive_groups.remove(&pid.as_raw());
    s.handle(Input::ChildExited(pid, ExitKind::Code(127)), t0);
    pass(&mut s, t0, &mut sys);
    assert_eq!(state(&s, "a"), StateName::Inactive);
}

#[test]
fn a_unit_up_once_its_exec_is_done_waits_for_it() {
    // Started::OnExec (User=): the unit stays starting (spawn in flight)
    // and the start job unanswered until ExecDone; a Stop meanwhile waits
    // for it; a failed exec is the start's failure.
    let mut s = sup(&[("a", SIMPLE), ("b", SIMPLE), ("c", SIMPLE)]);
    let (mut sys, t0) = (
        FakeSys {
            on_exec: true,
            ..FakeSys::default()
        },
        Instant::now(),
    );
    s.request(Some(1), Request::Start(names(&["a", "b"])), t0);
    pass(&mut s, t0, &mut sys);
    assert_eq!(state(&s, "a"), StateName::Starting);
    assert!(s.take_replies().is_empty());
    let (a, b) = (sys.pid_of("a"), sys.pid_of("b"));
    exec_done(&mut s, &mut sys, a, Ok(()), t0);
    assert_eq!(state(&s, "a"), StateName::Running);
    assert!(s.take_replies().is_empty(), "b is still in flight");
    let err = SpawnError::PermissionDenied {
        program: "/root/tool".into(),
    };
    exec_done(&mut s, &mut sys, b, Err(err), t0);
    assert_eq!(state(&s, "b"), StateName::Failed);
    let replies = s.take_replies();
    assert!(
        matches!(&replies[..], [(1, Response::Job(r))] if r.iter().any(|r| !r.ok && r.message.as_deref().is_some_and(|e| e.contains("permission denied")))),
        "{replies:?}"
    );
    s.request(Some(2), Request::Start(names(&["c"])), t0);
    pass(&mut s, t0, &mut sys);
    let c = sys.pid_of("c");
    s.request(Some(3), Request::Stop(names(&["c"])), t0);
    pass(&mut s, t0, &mut sys);
    assert!(sys.signals.is_empty());
    exec_done(&mut s, &mut sys, c, Ok(()), t0);
    assert_eq!(sys.signals, [(c, Signal::SIGTERM)]);
}

#[test]
fn a_stop_heard_before_a_failed_exec_ends_with_it() {
    // The Stop is queued, then the exec's failure comes in the same pass:
    // the child's exit (127) is no one's, so the failure is the main
    // process's end; the stop does not wait for an exit that never comes.
    let (mut s, mut sys, t0, pid) = started_before_its_exec(SIMPLE);
    s.request(Some(2), Request::Stop(names(&["a"])), t0);
    let err = SpawnError::Exec {
        program: "script".into(),
        error: "Exec format error (os error 8)".into(),
    };
    s.handle(
        Input::ExecDone {
            pid,
            outcome: Err(err),
        },
        t0,
    );
    sys.alive_groups.remove(&pid.as_raw());
    pass(&mut s, t0, &mut sys);
    s.handle(Input::ChildExited(pid, ExitKind::Code(127)), t0);
    pass(&mut s, t0, &mut sys);
    assert_eq!(state(&s, "a"), StateName::Inactive);
    assert!(
        matches!(&s.take_replies()[..], [.., (2, Response::Job(r))] if r.iter().all(|r| r.ok)),
        "the stop is answered"
    );
}

/// Unit `a` of `unit` started (up once cloned), its exec's outcome not
/// yet in: the test delivers it.
fn started_before_its_exec(unit: &str) -> (Supervisor, FakeSys, Instant, Pid) {
    let mut s = sup(&[("a", unit)]);
    let mut sys = FakeSys {
        manual_execs: true,
        ..FakeSys::default()
    };
    let t0 = Instant::now();
    s.request(Some(1), Request::Start(names(&["a"])), t0);
    pass(&mut s, t0, &mut sys);
    let pid = sys.pid_of("a");
    (s, sys, t0, pid)
}

/// What plain `list` shows now.
fn list_rows(s: &mut Supervisor, now: Instant) -> Vec<ListRow> {
    match s.request(None, Request::ListRows, now) {
        Some(Response::Rows(r)) => r,
        other => panic!("{other:?}"),
    }
}

/// The exec of `pid` ended with `outcome`; a pass follows.
fn exec_done(
    s: &mut Supervisor,
    sys: &mut FakeSys,
    pid: Pid,
    outcome: Result<(), SpawnError>,
    now: Instant,
) {
    s.handle(Input::ExecDone { pid, outcome }, now);
    pass(s, now, sys);
}
