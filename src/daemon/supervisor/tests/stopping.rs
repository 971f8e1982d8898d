//! Stopping: the whole group, strays that left it, leftovers watched or
//! polled, a forking daemon that moved.

use super::*;

#[test]
fn stop_waits_for_the_whole_process_group() {
    // The stop job answers only once leftovers in the group are gone.
    let (mut s, mut sys, t0) = setup(&[("a", SIMPLE)]);
    let pid = started(&mut s, &mut sys, None, "a", t0);
    stop(&mut s, &mut sys, Some(3), &["a"], t0);
    // The main process dies but a child in its group lives on.
    s.child_exited(pid, TERM);
    pass(&mut s, t0, &mut sys);
    assert_eq!(state(&s, "a"), StateName::Stopping);
    assert!(s.take_replies().is_empty());
    sys.alive_groups.remove(&pid.as_raw());
    pass(&mut s, t0, &mut sys);
    assert_eq!(state(&s, "a"), StateName::Inactive);
    assert_eq!(s.take_replies().len(), 1);
}

#[test]
fn stop_signals_and_waits_for_strays_that_left_the_group() {
    // Processes that left the group (setsid) but carry the unit's tag get
    // KillSignal, then SIGKILL at the stop deadline; the stop ends only
    // after they are gone and a second look finds nothing.
    let (mut s, mut sys, t0) = setup(&[("a", SIMPLE)]);
    let pid = started(&mut s, &mut sys, None, "a", t0);
    sys.alive_groups.insert(7777);
    sys.strays.insert("a".to_owned(), vec![7777]);
    stop(&mut s, &mut sys, Some(3), &["a"], t0);
    exit(&mut s, &mut sys, pid, TERM, t0);
    assert_eq!(sys.stray_looks, 1);
    assert!(sys
        .signals
        .contains(&(Pid::from_raw(7777), Signal::SIGTERM)));
    assert_eq!(state(&s, "a"), StateName::Stopping);
    assert!(s.take_replies().is_empty());
    // TimeoutStopSec (10 s) passes: the stray gets SIGKILL with the rest.
    let t1 = t0 + Duration::from_secs(10);
    s.handle(Input::Tick, t1);
    pass(&mut s, t1, &mut sys);
    assert!(sys
        .signals
        .contains(&(Pid::from_raw(7777), Signal::SIGKILL)));
    sys.alive_groups.remove(&7777);
    pass(&mut s, t1, &mut sys);
    assert_eq!(sys.stray_looks, 2);
    assert_eq!(state(&s, "a"), StateName::Inactive);
    assert_eq!(s.take_replies().len(), 1);
}

#[test]
fn leftovers_are_watched_by_pidfd_and_polled_only_without_one() {
    // A stop waiting for leftovers rechecks once, then asks to watch them
    // (no more recheck timer); one ending makes it look again; without
    // pidfds the group is rechecked on the timer instead.
    for no_pidfds in [false, true] {
        let mut s = sup(&[("a", SIMPLE)]);
        let mut sys = FakeSys {
            no_pidfds,
            ..FakeSys::default()
        };
        let t0 = Instant::now();
        let pid = started(&mut s, &mut sys, None, "a", t0);
        stop(&mut s, &mut sys, Some(3), &["a"], t0);
        // The main process dies; a member of its group lives on.
        s.child_exited(pid, TERM);
        pass(&mut s, t0, &mut sys);
        // The first recheck finds the member still there: it is watched.
        assert_eq!(sys.leftover_looks, 0);
        let t1 = s
            .timers
            .deadline(TimerKey::GroupRecheck)
            .expect("a recheck");
        s.handle(Input::Tick, t1);
        pass(&mut s, t1, &mut sys);
        assert_eq!(sys.leftover_looks, 1, "no_pidfds {no_pidfds}");
        let recheck = s.timers.deadline(TimerKey::GroupRecheck);
        assert_eq!(recheck.is_some(), no_pidfds, "no_pidfds {no_pidfds}");
        if !no_pidfds {
            s.handle(Input::LeftoverExited(s.id_of("a").unwrap()), t0);
            pass(&mut s, t0, &mut sys);
            assert_eq!(sys.leftover_looks, 2);
        }
        sys.alive_groups.remove(&pid.as_raw());
        pass(&mut s, t0, &mut sys);
        assert_eq!(state(&s, "a"), StateName::Inactive);
    }
}

#[test]
fn stopping_a_forking_service_reaches_the_group_its_main_process_moved_to() {
    // A forking daemon that called setsid after it was found is signalled in its real group, and the stop waits for that group.
    let (mut s, mut sys, t0) =
        setup(&[("f", "[service]\nType = \"forking\"\nExecStart = \"x\"\n")]);
    let starter = started(&mut s, &mut sys, Some(1), "f", t0);
    exit(&mut s, &mut sys, starter, ExitKind::Code(0), t0);
    let main = Pid::from_raw(s.info(0, t0).pid.unwrap() as i32);
    // It left the group it was found in for a session of its own (nginx).
    sys.moved.insert(main.as_raw(), (5000, 5000));
    sys.alive_groups.insert(5000);
    stop(&mut s, &mut sys, Some(2), &["f"], t0);
    assert!(
        sys.signals
            .contains(&(Pid::from_raw(5000), Signal::SIGTERM)),
        "{:?}",
        sys.signals
    );
    exit(&mut s, &mut sys, main, TERM, t0);
    assert_eq!(
        state(&s, "f"),
        StateName::Stopping,
        "its workers in group 5000 are still there"
    );
    assert!(s.take_replies().iter().all(|(conn, _)| *conn != 2));
    sys.alive_groups.remove(&5000);
    pass(&mut s, t0, &mut sys);
    assert_eq!(state(&s, "f"), StateName::Inactive);
    assert!(s.take_replies().iter().any(|(conn, _)| *conn == 2));
}

#[test]
fn the_look_for_an_ended_runs_strays_knows_the_run_started_in_its_pass() {
    // A crash, then the restart (RestartSec = 0.2) and the look for what the run left (200 ms after the exit) come due in one pass: the look, sent once the pass is over, counts the new main process as known and the new run's start as its bound, so it is not taken for a stray.
    let unit = "[service]\nExecStart = \"w\"\nRestart = \"always\"\nRestartSec = 0.2\n";
    let (mut s, mut sys, t0) = setup(&[("w", unit)]);
    let first = started(&mut s, &mut sys, None, "w", t0);
    s.child_exited(first, ExitKind::Code(1));
    s.run(t0, &mut sys);
    let t1 = t0 + Duration::from_millis(200);
    s.timers_expired(t1);
    s.run(t1, &mut sys);
    let second = sys.pid_of("w");
    assert_ne!(second, first, "restarted in the pass");
    let looks: Vec<Effect> = std::iter::from_fn(|| s.poll_effect())
        .filter(|e| matches!(e, Effect::ScanStrays { .. }))
        .collect();
    match looks.as_slice() {
        [Effect::ScanStrays { units, known, .. }] => {
            assert!(known.contains(&second), "{known:?}");
            assert_eq!(units.len(), 1);
            assert_eq!(units[0].after, StraysOf::EndedRun);
        }
        other => panic!("expected one look: {other:?}"),
    }
}
