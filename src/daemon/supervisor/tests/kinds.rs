//! Service types: notify readiness and MAINPID=, forking main processes.

use super::*;

#[test]
fn notify_as_another_user_is_spawned() {
    // Type=notify with another User= is spawned like any other (the notify
    // socket of a root daemon is out of the home, open to every user).
    let (mut s, mut sys, t0) = setup(&[
        (
            "pg",
            "[service]\nType = \"notify\"\nUser = \"postgres\"\nExecStart = \"x\"\n",
        ),
        (
            "mine",
            "[service]\nType = \"notify\"\nUser = \"me\"\nExecStart = \"x\"\n",
        ),
    ]);
    start(&mut s, &mut sys, Some(1), &["pg", "mine"], t0);
    let mut order = sys.order();
    order.sort();
    assert_eq!(order, ["mine", "pg"], "both are spawned");
    assert_eq!(state(&s, "pg"), StateName::Starting);
}

#[test]
fn notify_service_is_up_only_after_ready() {
    // A notify unit's dependents and start job wait for READY=1 from its process group.
    let (mut s, mut sys, t0) = setup(&[
        ("n", "[service]\nType = \"notify\"\nExecStart = \"x\"\n"),
        (
            "d",
            "[unit]\nRequires = [\"n\"]\n[service]\nExecStart = \"y\"\n",
        ),
    ]);
    start(&mut s, &mut sys, Some(1), &["d"], t0);
    assert_eq!(state(&s, "n"), StateName::Starting);
    assert_eq!(sys.order(), ["n"]);
    let pid = sys.pid_of("n");
    // A stranger's READY=1 counts for nothing.
    s.notified(
        Pid::from_raw(1),
        Some(Pid::from_raw(1)),
        "READY=1",
        (None, None),
        t0,
    );
    pass(&mut s, t0, &mut sys);
    assert_eq!(state(&s, "n"), StateName::Starting);
    // A child in its group may speak for it.
    s.notified(
        Pid::from_raw(99_999),
        Some(pid),
        "STATUS=warming up\nREADY=1\n",
        (None, None),
        t0,
    );
    pass(&mut s, t0, &mut sys);
    assert_eq!(state(&s, "n"), StateName::Running);
    assert_eq!(state(&s, "d"), StateName::Running);
    assert_eq!(s.take_replies().len(), 1);
}

#[test]
fn forking_service_runs_as_its_forked_main_process() {
    // When a forking unit's starter exits 0, its main process is found and watched.
    let (mut s, mut sys, t0) =
        setup(&[("f", "[service]\nType = \"forking\"\nExecStart = \"x\"\n")]);
    let starter = started(&mut s, &mut sys, Some(1), "f", t0);
    assert_eq!(state(&s, "f"), StateName::Starting);
    exit(&mut s, &mut sys, starter, ExitKind::Code(0), t0);
    assert_eq!(state(&s, "f"), StateName::Running);
    let main = s.info(0, t0).pid.unwrap();
    assert_ne!(main as i32, starter.as_raw());
    assert_eq!(
        std::mem::take(&mut sys.watched),
        [Pid::from_raw(main as i32)]
    );
    // Its death is the service's death.
    exit(
        &mut s,
        &mut sys,
        Pid::from_raw(main as i32),
        ExitKind::Code(1),
        t0,
    );
    assert_eq!(state(&s, "f"), StateName::Restarting);
}

#[test]
fn looking_for_a_main_pid_is_an_effect_and_a_timer_until_it_settles() {
    // The search never waits: each look is a ScanMainPid effect; "not yet"
    // arms the MainPidScan timer for the next look, and a failure fails the
    // service.
    let (mut s, mut sys, t0) =
        setup(&[("f", "[service]\nType = \"forking\"\nExecStart = \"x\"\n")]);
    let starter = started(&mut s, &mut sys, Some(1), "f", t0);
    s.child_exited(starter, ExitKind::Code(0));
    s.run(t0, &mut sys);
    let look = |s: &mut Supervisor| loop {
        match s.poll_effect() {
            Some(Effect::ScanMainPid { id, scan, pgid, .. }) => break (id, scan, pgid),
            Some(_) => continue,
            None => panic!("no ScanMainPid effect"),
        }
    };
    let (id, scan, pgid) = look(&mut s);
    assert_eq!(pgid, starter, "the start command's group is searched");
    s.handle(
        Input::MainPidScanned {
            id,
            scan,
            outcome: None,
        },
        t0,
    );
    s.run(t0, &mut sys);
    assert_eq!(s.poll_timeout(), Some(t0 + SCAN_EVERY));
    assert_eq!(state(&s, "f"), StateName::Starting);
    let t1 = t0 + SCAN_EVERY;
    s.handle(Input::Tick, t1);
    s.run(t1, &mut sys);
    let (id, scan, _) = look(&mut s);
    s.handle(
        Input::MainPidScanned {
            id,
            scan,
            outcome: Some(Err(MainPidError::SeveralLeft(2))),
        },
        t1,
    );
    s.run(t1, &mut sys);
    assert_eq!(state(&s, "f"), StateName::Failed);
    assert_eq!(
        s.info(0, t1).reason.as_deref(),
        Some("cannot find the main process: 2 processes were left after the start command exited (they were stopped); set PIDFile")
    );
}

#[test]
fn mainpid_moves_the_main_process_within_the_group_only() {
    // MAINPID= of a process in the service's group makes it the main one:
    // the old main's exit is then nobody's, the new one's is the service's
    // (and it is watched). A process of another group is refused.
    let (mut s, mut sys, t0) = setup(&[("n", "[service]\nType = \"notify\"\nExecStart = \"x\"\n")]);
    let starter = started(&mut s, &mut sys, Some(1), "n", t0);
    let claim = |pid: i32, pgid: i32| MainPidClaim {
        pid: Pid::from_raw(pid),
        pgid: Some(Pid::from_raw(pgid)),
        start_time: Some(7),
    };
    // Another group: refused.
    s.notified(
        starter,
        Some(starter),
        "MAINPID=5000",
        (Some(claim(5000, 5000)), None),
        t0,
    );
    pass(&mut s, t0, &mut sys);
    assert_eq!(s.entries[0].svc.pid(), Some(starter));
    let child = Pid::from_raw(starter.as_raw() + 1);
    s.notified(
        starter,
        Some(starter),
        &format!("MAINPID={child}\nREADY=1"),
        (Some(claim(child.as_raw(), starter.as_raw())), None),
        t0,
    );
    pass(&mut s, t0, &mut sys);
    assert_eq!(state(&s, "n"), StateName::Running);
    assert_eq!(s.entries[0].svc.pid(), Some(child));
    assert!(sys.watched.contains(&child));
    // The starter leaves: the service stays up.
    s.child_exited(starter, ExitKind::Code(0));
    pass(&mut s, t0, &mut sys);
    assert_eq!(state(&s, "n"), StateName::Running);
    // The child dies: that is the service's exit.
    exit(
        &mut s,
        &mut sys,
        child,
        ExitKind::Signal(Signal::SIGKILL),
        t0,
    );
    assert_eq!(state(&s, "n"), StateName::Restarting);
}

#[test]
fn watchdog_usec_sent_with_ready_sets_the_first_interval() {
    // WATCHDOG_USEC= in the datagram of READY=1 (the unit is not up yet
    // when it is read): the watchdog starts with it, not WatchdogSec.
    let unit =
        "[service]\nType = \"notify\"\nExecStart = \"x\"\nWatchdogSec = 30\nRestart = \"no\"\n";
    for before_ready in [false, true] {
        let (mut s, mut sys, t0) = setup(&[("n", unit)]);
        start(&mut s, &mut sys, None, &["n"], t0);
        let pid = sys.pid_of("n");
        let msgs = if before_ready {
            "WATCHDOG_USEC=800000\nREADY=1\n"
        } else {
            "READY=1\nWATCHDOG_USEC=800000\n"
        };
        s.notified(pid, Some(pid), msgs, (None, None), t0);
        pass(&mut s, t0, &mut sys);
        assert_eq!(state(&s, "n"), StateName::Running);
        pass(&mut s, t0 + Duration::from_millis(700), &mut sys);
        assert_eq!(state(&s, "n"), StateName::Running);
        pass(&mut s, t0 + Duration::from_millis(900), &mut sys);
        assert_eq!(
            state(&s, "n"),
            StateName::Stopping,
            "watchdog at 0.8 s (before READY=1: {before_ready})"
        );
    }
}

#[test]
fn a_process_found_by_two_searches_is_the_main_process_of_the_first_only() {
    // Two forking units searched at the same moment and both saw the same
    // lone untagged orphan (nginx rewrites its environment, so its tag is
    // gone): the first to report takes it; the second looks again without it.
    let forking = "[service]\nType = \"forking\"\nExecStart = \"x\"\n";
    let (mut s, mut sys, t0) = setup(&[("a", forking), ("b", forking)]);
    let a = started(&mut s, &mut sys, Some(1), "a", t0);
    let b = started(&mut s, &mut sys, Some(2), "b", t0);
    s.child_exited(a, ExitKind::Code(0));
    s.child_exited(b, ExitKind::Code(0));
    s.run(t0, &mut sys);
    let mut looks = Vec::new();
    while let Some(effect) = s.poll_effect() {
        if let Effect::ScanMainPid { id, scan, .. } = effect {
            looks.push((id, scan));
        }
    }
    assert_eq!(looks.len(), 2, "both search");
    let orphan = Pid::from_raw(4242);
    for (id, scan) in looks {
        let found = MainPidFound {
            pid: orphan,
            pgid: orphan,
            start_time: Some(9),
            groups: None,
        };
        s.handle(
            Input::MainPidScanned {
                id,
                scan,
                outcome: Some(Ok(found)),
            },
            t0,
        );
    }
    s.run(t0, &mut sys);
    let runs_orphan = |s: &Supervisor, name: &str| {
        s.id_of(name).and_then(|id| s.entries()[id].svc.pid()) == Some(orphan)
    };
    assert!(runs_orphan(&s, "a"), "the first report wins");
    assert!(!runs_orphan(&s, "b"), "never two units' main process");
    assert_eq!(state(&s, "b"), StateName::Starting, "b looks again");
    assert_eq!(s.poll_timeout(), Some(t0 + SCAN_EVERY));
}
