//! Adoption, the snapshot and reload, driven with the fake system.

use super::*;

#[test]
fn restore_kills_the_leftover_group_of_a_dead_main_before_restarting() {
    // A main process that died while no daemon ran, whose workers live on,
    // has its group killed and waited for; then it restarts. The same when
    // it was still starting (a notify unit before READY=1).
    for starting in [None, Some(SavedStart { deadline_ms: None })] {
        restore_leftovers(starting);
    }
}

fn restore_leftovers(starting: Option<SavedStart>) {
    let (mut s, mut sys, t0) = setup(&[("web", "[service]\nExecStart = \"w\"\nRestartSec = 0\n")]);
    sys.alive_groups.insert(4242);
    sys.dead_leaders.insert(4242); // the master is dead, its workers are not
    let web = SavedService {
        starting,
        ..saved("web", Some(4242), Some(42_420))
    };
    let adopted = restore_one(&mut s, &mut sys, web, t0);
    assert!(adopted.is_empty());
    assert_eq!(sys.signals, [(Pid::from_raw(4242), Signal::SIGKILL)]);
    assert!(sys.spawned.is_empty(), "no restart while the workers live");
    assert_eq!(state(&s, "web"), StateName::Stopping);
    sys.alive_groups.remove(&4242);
    pass(&mut s, t0, &mut sys);
    assert_eq!(sys.order(), ["web"]);
    assert_eq!(state(&s, "web"), StateName::Running);
    assert_eq!(s.info(0, t0).restarts, 5);
}

fn saved(name: &str, pid: Option<i32>, start_time: Option<u64>) -> SavedService {
    SavedService {
        name: name.into(),
        pid,
        start_time,
        since_unix: Some(1000),
        restarts: 4,
        remain: false,
        stopping: false,
        pgid: None,
        ..SavedService::default()
    }
}

/// A new daemon (at unix time 1010) takes over the saved `services`, finding the
/// `tagged` processes, with the `enabled` units; then the pass. What it adopted.
fn restored(
    s: &mut Supervisor,
    sys: &mut FakeSys,
    services: Vec<SavedService>,
    tagged: Vec<Tagged>,
    enabled: &[&str],
    now: Instant,
) -> Vec<Pid> {
    let enabled = enabled.iter().map(|n| (*n).to_owned()).collect();
    s.set_wall_clock(now, 1_010_000);
    let adopted = s.restore(state_of(services), tagged, enabled, now, sys);
    pass(s, now, sys);
    adopted
}

/// [`restored`] with one saved service, nothing tagged, nothing enabled.
fn restore_one(
    s: &mut Supervisor,
    sys: &mut FakeSys,
    saved: SavedService,
    now: Instant,
) -> Vec<Pid> {
    restored(s, sys, vec![saved], Vec::new(), &[], now)
}

fn state_of(services: Vec<SavedService>) -> SavedState {
    SavedState {
        version: persist::STATE_VERSION,
        service_dir: Some(PathBuf::from("/srv/units")),
        services,
        ..SavedState::default()
    }
}

#[test]
fn restore_adopts_live_processes_with_their_counts() {
    // A saved process that is still the same process is adopted: same pid, restarts kept.
    let (mut s, mut sys, t0) = setup(&[("web", SIMPLE)]);
    sys.alive_groups.insert(4242);
    let adopted = restore_one(&mut s, &mut sys, saved("web", Some(4242), Some(42_420)), t0);
    assert_eq!(adopted, [Pid::from_raw(4242)]);
    let info = s.info(0, t0);
    assert_eq!(
        (info.state, info.pid, info.restarts),
        (StateName::Running, Some(4242), 4)
    );
    assert_eq!(info.uptime_secs, Some(10));
    assert!(sys.spawned.is_empty());
    // Its death is noticed (the loop reports it) and restarted per policy.
    s.child_exited(Pid::from_raw(4242), ExitKind::Unknown);
    pass(&mut s, t0, &mut sys);
    assert_eq!(state(&s, "web"), StateName::Restarting);
}

#[test]
fn the_next_daemon_knows_a_services_past() {
    // A unit waiting to restart after exiting 1: the next daemon shows the same last exit and reason, and counts its starts in the start-limit window (a third start within it is the limit).
    const LIM: &str = "[unit]\nStartLimitBurst = 3\nStartLimitIntervalSec = 600\n[service]\nExecStart = \"z\"\nRestartSec = 1\n";
    let (mut s, mut sys, t0) = setup(&[("lim", LIM)]);
    // 1 s before the next daemon's clock (see `restored`), which comes at t0 + 1 s.
    s.set_wall_clock(t0, 1_009_000);
    start(&mut s, &mut sys, None, &["lim"], t0);
    exit_main(&mut s, &mut sys, "lim", ExitKind::Code(1), t0);
    let t = t0 + Duration::from_secs(1);
    pass(&mut s, t, &mut sys);
    exit_main(&mut s, &mut sys, "lim", ExitKind::Code(1), t);
    assert_eq!(state(&s, "lim"), StateName::Restarting);
    let before = s.info(0, t);
    let snap = s.snapshot(t);
    assert_eq!(snap.services[0].starts_ms.len(), 2, "{snap:?}");

    let (mut next, mut sys2, _) = setup(&[("lim", LIM)]);
    restored(&mut next, &mut sys2, snap.services, Vec::new(), &[], t);
    let after = next.info(0, t);
    assert_eq!(after.last_exit, Some(crate::protocol::LastExit::Code(1)));
    assert_eq!((after.state, &after.reason), (before.state, &before.reason));
    assert!(
        after
            .reason
            .as_deref()
            .is_some_and(|r| r.contains("code 1")),
        "{after:?}"
    );
    // Its third start is allowed, a fourth within the window is not.
    let t2 = t + Duration::from_secs(2);
    pass(&mut next, t2, &mut sys2);
    exit_main(&mut next, &mut sys2, "lim", ExitKind::Code(1), t2);
    pass(&mut next, t2 + Duration::from_secs(2), &mut sys2);
    assert_eq!(
        state(&next, "lim"),
        StateName::Failed,
        "{:?}",
        next.info(0, t2)
    );
}

#[test]
fn a_start_or_a_restart_under_way_goes_on_in_the_next_daemon() {
    // A notify unit still waiting for READY=1 is adopted as starting (its
    // dependents wait, its start deadline holds); a unit waiting out its
    // RestartSec keeps its restart count, failures and the time left.
    const N: &str = "[service]\nType = \"notify\"\nExecStart = \"x\"\nTimeoutStartSec = 30\n";
    const D: &str = "[unit]\nRequires = [\"n\"]\n[service]\nExecStart = \"y\"\n";
    const FLAKY: &str =
        "[unit]\nStartLimitBurst = 0\n[service]\nExecStart = \"z\"\nRestartSec = 4\n";
    let units = [("n", N), ("d", D), ("flaky", FLAKY)];
    let (mut s, mut sys, t0) = setup(&units);
    // 1 s before the next daemon's clock (see `restored`).
    s.set_wall_clock(t0, 1_009_000);
    start(&mut s, &mut sys, None, &["d", "flaky"], t0);
    exit_main(&mut s, &mut sys, "flaky", ExitKind::Code(1), t0);
    assert_eq!(state(&s, "n"), StateName::Starting);
    assert_eq!(state(&s, "flaky"), StateName::Restarting);
    let snap = s.snapshot(t0);
    let saved = |name: &str| {
        snap.services
            .iter()
            .find(|x| x.name == name)
            .unwrap()
            .clone()
    };
    let (n, flaky) = (saved("n"), saved("flaky"));
    assert_eq!(n.starting.map(|st| st.deadline_ms), Some(Some(1_039_000)));
    let restart_at = flaky.restart_at_ms.expect("a restart time");
    assert!(
        (1_012_000..=1_014_000).contains(&restart_at),
        "{restart_at}"
    );
    assert_eq!(flaky.failures, 1);

    // The next daemon, 1 s later: 3 s of RestartSec left.
    let (mut next, mut sys2, _) = setup(&units);
    let t1 = Instant::now();
    let pid = n.pid.expect("n's pid");
    sys2.alive_groups.insert(pid);
    let mut all = snap.services.clone();
    for x in all.iter_mut().filter(|x| x.name == "n") {
        x.start_time = Some(pid as u64 * 10);
    }
    let adopted = restored(&mut next, &mut sys2, all, Vec::new(), &[], t1);
    assert_eq!(adopted, [Pid::from_raw(pid)]);
    assert_eq!(state(&next, "n"), StateName::Starting);
    assert_eq!(
        state(&next, "d"),
        StateName::Waiting,
        "d waits for n's READY=1"
    );
    assert_eq!(state(&next, "flaky"), StateName::Restarting);
    assert_eq!(
        next.info(next.id_of("flaky").unwrap(), t1).restarts,
        flaky.restarts
    );
    assert!(sys2.spawned.is_empty(), "nothing is started yet");
    // READY=1 makes it up.
    next.notified(
        Pid::from_raw(pid),
        Some(Pid::from_raw(pid)),
        "READY=1",
        (None, None),
        t1,
    );
    pass(&mut next, t1, &mut sys2);
    assert_eq!(state(&next, "n"), StateName::Running);
    assert_eq!(sys2.order(), ["d"]);
    // The restart comes when it was due, not before.
    let due = t1 + Duration::from_millis(restart_at - 1_010_000);
    pass(&mut next, due - Duration::from_millis(1), &mut sys2);
    assert_eq!(sys2.order(), ["d"], "restarted early");
    pass(&mut next, due, &mut sys2);
    assert_eq!(sys2.order(), ["d", "flaky"]);
}

#[test]
fn restore_never_adopts_a_reused_pid() {
    // A pid whose start time differs is someone else's: the service counts as dead and restarts.
    let (mut s, mut sys, t0) = setup(&[("web", "[service]\nExecStart = \"w\"\nRestartSec = 0\n")]);
    sys.alive_groups.insert(4242); // alive, but started at 42420, not 7
    let adopted = restore_one(&mut s, &mut sys, saved("web", Some(4242), Some(7)), t0);
    assert!(adopted.is_empty());
    assert_eq!(sys.order(), ["web"], "restarted per policy");
    assert!(
        sys.signals.is_empty(),
        "the stranger's group is never signalled"
    );
    assert_eq!(s.info(0, t0).restarts, 5);
}

#[test]
fn restore_starts_enabled_units_and_finishes_interrupted_stops() {
    // Enabled units start with the daemon; a stop cut short by a crash is completed.
    let (mut s, mut sys, t0) = setup(&[("a", SIMPLE), ("b", SIMPLE), ("c", SIMPLE)]);
    sys.alive_groups.insert(77);
    let mut stopping = saved("b", Some(77), Some(770));
    stopping.stopping = true;
    restored(&mut s, &mut sys, vec![stopping], Vec::new(), &["a"], t0);
    assert_eq!(sys.order(), ["a"]);
    assert_eq!(sys.signals, [(Pid::from_raw(77), Signal::SIGTERM)]);
    assert_eq!(state(&s, "b"), StateName::Stopping);
    assert_eq!(state(&s, "c"), StateName::Inactive);
}

#[test]
fn restore_finds_a_newer_process_by_its_tag() {
    // A restart the state file never heard of is adopted through its tag, not duplicated.
    let mut s = sup(&[("web", SIMPLE), ("lost", SIMPLE)]);
    let mut sys = FakeSys::default();
    sys.alive_groups.insert(500); // the newer web, started after the last state write
    sys.alive_groups.insert(600); // lost: its unit is not in the state at all
    let tag = |unit: &str, pid: i32| Tagged {
        unit: unit.into(),
        pid: Pid::from_raw(pid),
        start_time: pid as u64 * 10,
        leader: true,
    };
    let t0 = Instant::now();
    let adopted = restored(
        &mut s,
        &mut sys,
        vec![saved("web", Some(400), Some(4000))], // 400 is dead
        vec![tag("web", 500), tag("lost", 600)],
        &[],
        t0,
    );
    assert_eq!(adopted, [Pid::from_raw(500), Pid::from_raw(600)]);
    assert!(sys.spawned.is_empty(), "nothing was started twice");
    assert_eq!(s.info(0, t0).pid, Some(600));
    assert_eq!(s.info(1, t0).pid, Some(500));
    assert_eq!(s.info(1, t0).restarts, 4, "the saved count is kept");
}

#[test]
fn restore_leaves_processes_of_another_directory_alone() {
    // A live process whose unit is not in this daemon's directory is not touched.
    let mut s = sup(&[("a", SIMPLE)]);
    let mut sys = FakeSys::default();
    sys.alive_groups.insert(99);
    // Restored with no pass: the effects it asks for stay queued.
    let mut restore = |s: &mut Supervisor, dir: &str| {
        let mut state = state_of(vec![saved("other", Some(99), Some(990))]);
        state.service_dir = Some(PathBuf::from(dir));
        s.restore(state, Vec::new(), BTreeSet::new(), Instant::now(), &mut sys);
    };
    restore(&mut s, "/elsewhere");
    assert_eq!(s.poll_effect(), None);
    // The same from our own directory: its file was removed, so it is stopped.
    restore(&mut s, "/srv/units");
    assert_eq!(
        s.poll_effect(),
        Some(Effect::Signal {
            pgid: Pid::from_raw(99),
            signal: Signal::SIGTERM
        })
    );
}

#[test]
fn snapshot_holds_what_is_wanted_up() {
    // Running services are saved with pid and start time; inactive ones are not.
    let (mut s, mut sys, t0) = setup(&[("a", SIMPLE), ("b", SIMPLE)]);
    start(&mut s, &mut sys, None, &["a"], t0);
    assert!(s.take_dirty());
    s.set_wall_clock(t0, 5_000_000);
    let snap = s.snapshot(t0);
    assert_eq!(snap.services.len(), 1);
    let a = &snap.services[0];
    let pid = sys.pid_of("a").as_raw();
    assert_eq!(
        (a.name.as_str(), a.pid, a.start_time),
        ("a", Some(pid), Some(pid as u64 * 10))
    );
    assert_eq!(snap.service_dir.as_deref(), Some(Path::new("/srv/units")));
}

#[test]
fn failed_and_exited_units_are_kept_across_daemons() {
    // A new daemon shows a unit that had failed as failed, same reason,
    // last exit and restart count; one that had exited as exited; both
    // stay down, and the time they ended is kept.
    const ONCE: &str = "[service]\nType = \"oneshot\"\nExecStart = \"true\"\n";
    const BAD: &str = "[service]\nRestart = \"no\"\nExecStart = \"false\"\n";
    let units = [("bad", BAD), ("once", ONCE), ("idle", SIMPLE)];
    let (mut s, mut sys, t0) = setup(&units);
    start(&mut s, &mut sys, None, &["bad", "once"], t0);
    exit_main(&mut s, &mut sys, "bad", ExitKind::Code(3), t0);
    exit_main(&mut s, &mut sys, "once", ExitKind::Code(0), t0);
    assert_eq!(state(&s, "bad"), StateName::Failed);
    assert_eq!(state(&s, "once"), StateName::Exited);
    let t1 = t0 + Duration::from_secs(5);
    s.set_wall_clock(t1, 2_000_000);
    let snap = s.snapshot(t1);
    assert!(snap.services.is_empty());
    let names: Vec<&str> = snap.ended.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["bad", "once"]);
    assert_eq!(snap.ended[0].failed.as_deref(), Some("exited with code 3"));
    assert_eq!(snap.ended[0].since_unix, Some(1995));
    assert_eq!(snap.ended[0].exit_code, Some(3));
    assert_eq!(snap.ended[1].failed, None);

    let (mut next, mut sys2, _) = setup(&units);
    let t2 = Instant::now();
    next.set_wall_clock(t2, 2_010_000);
    let mut saved = snap.clone();
    saved.version = persist::STATE_VERSION;
    assert!(next
        .restore(saved, Vec::new(), BTreeSet::new(), t2, &mut sys2)
        .is_empty());
    pass(&mut next, t2, &mut sys2);
    let bad = next.status(next.id_of("bad").unwrap(), t2);
    assert_eq!(bad.info.state, StateName::Failed);
    assert_eq!(bad.info.reason.as_deref(), Some("exited with code 3"));
    assert_eq!(bad.info.last_exit, Some(crate::protocol::LastExit::Code(3)));
    assert_eq!(state(&next, "once"), StateName::Exited);
    assert_eq!(state(&next, "idle"), StateName::Inactive);
    assert!(sys2.spawned.is_empty(), "nothing is started");
    assert_eq!(
        next.entries[next.id_of("bad").unwrap()].since,
        t2.checked_sub(Duration::from_secs(15))
    );
    // Written again as it was read.
    assert_eq!(next.snapshot(t2).ended, snap.ended);
}

#[test]
fn reload_changes_only_what_changed() {
    // New units appear, removed ones stop, changed running ones restart, the rest keep their pids.
    let (mut s, mut sys, t0) = setup(&[("keep", SIMPLE), ("edit", SIMPLE), ("drop", SIMPLE)]);
    start(&mut s, &mut sys, None, &["keep", "edit", "drop"], t0);
    let (keep, edit, drop) = (sys.pid_of("keep"), sys.pid_of("edit"), sys.pid_of("drop"));
    let report = s.reload(loaded(&[
        ("keep", SIMPLE),
        ("edit", "[service]\nExecStart = \"sleep 200\"\n"),
        ("new", SIMPLE),
    ]));
    assert_eq!(report.added, ["new"]);
    assert_eq!(report.removed, ["drop"]);
    assert_eq!(report.changed, ["edit"]);
    pass(&mut s, t0, &mut sys);
    exit(&mut s, &mut sys, edit, TERM, t0);
    exit(&mut s, &mut sys, drop, TERM, t0);
    assert!(!sys.signals.iter().any(|(p, _)| *p == keep));
    assert_ne!(sys.pid_of("edit"), edit);
    let e = &s.entries[s.id_of("edit").unwrap()];
    assert_eq!(e.unit.as_ref().unwrap().exec_start, ["sleep", "200"]);
    assert_eq!(s.id_of("drop"), None);
    let listed: Vec<String> = match s.request(None, Request::List, t0) {
        Some(Response::Units(u)) => u.into_iter().map(|u| u.name).collect(),
        other => panic!("{other:?}"),
    };
    assert_eq!(listed, ["edit", "keep", "new"]);
}

#[test]
fn reload_with_a_broken_file_keeps_the_running_instance() {
    // An edited unit that no longer parses keeps running on its old definition.
    let (mut s, mut sys, t0) = setup(&[("web", SIMPLE)]);
    start(&mut s, &mut sys, None, &["web"], t0);
    let report = s.reload(loaded(&[("web", "[service]\nRestrat = 1\n")]));
    assert_eq!(report.invalid.len(), 1);
    pass(&mut s, t0, &mut sys);
    assert!(sys.signals.is_empty());
    let info = s.info(0, t0);
    assert_eq!(info.state, StateName::Running);
    assert!(info.reason.unwrap().contains("no longer loads"));
}

#[test]
fn reload_that_adds_a_requirement_starts_it() {
    // A running unit edited to Require a new unit restarts with that unit pulled in first.
    let (mut s, mut sys, t0) = setup(&[("b", SIMPLE)]);
    let b = started(&mut s, &mut sys, None, "b", t0);
    s.reload(loaded(&[
        (
            "b",
            "[unit]\nRequires = [\"c\"]\n[service]\nExecStart = \"b2\"\n",
        ),
        ("c", SIMPLE),
    ]));
    pass(&mut s, t0, &mut sys);
    exit(&mut s, &mut sys, b, TERM, t0);
    assert_eq!(state(&s, "c"), StateName::Running);
    assert_eq!(state(&s, "b"), StateName::Running);
    let order = sys.order();
    assert_eq!(&order[order.len() - 2..], ["c", "b"]);
}

#[test]
fn reload_that_removes_a_requirement_stops_its_dependents_first() {
    // Removing a required unit's file stops the units that Require it, before it; then they are invalid.
    let (mut s, mut sys, t0) = setup(&[
        ("a", SIMPLE),
        (
            "b",
            "[unit]\nRequires = [\"a\"]\n[service]\nExecStart = \"b\"\n",
        ),
    ]);
    start(&mut s, &mut sys, None, &["b"], t0);
    let (a, b) = (sys.pid_of("a"), sys.pid_of("b"));
    s.reload(loaded(&[(
        "b",
        "[unit]\nRequires = [\"a\"]\n[service]\nExecStart = \"b\"\n",
    )]));
    pass(&mut s, t0, &mut sys);
    assert_eq!(sys.signals, [(b, Signal::SIGTERM)], "b first");
    exit(&mut s, &mut sys, b, TERM, t0);
    assert_eq!(sys.signals, [(b, Signal::SIGTERM), (a, Signal::SIGTERM)]);
    exit(&mut s, &mut sys, a, TERM, t0);
    // Once a is down it is gone for b too: b Requires a unit that does not
    // exist, so it is invalid and cannot start a's old definition.
    assert_eq!(state(&s, "b"), StateName::Invalid);
    assert_eq!(s.id_of("a"), None);
}

#[test]
fn persistent_timer_records_survive_restore_and_snapshot() {
    // The state file's `timers` are taken over by a new daemon and written again; records of units that are gone or not Persistent are dropped.
    let persistent = "[service]\nType = \"oneshot\"\nExecStart = \"j\"\n[timer]\nOnCalendar = \"@daily\"\nPersistent = true\n";
    let plain =
        "[service]\nType = \"oneshot\"\nExecStart = \"j\"\n[timer]\nOnCalendar = \"@daily\"\n";
    let mut s = sup(&[("kept", persistent), ("plain", plain)]);
    let mut sys = FakeSys::default();
    let mark = SavedTimer {
        elapsed_ms: 1_795_929_466_000,
        last_run_ms: Some(1_795_929_466_000),
    };
    let mut state = state_of(Vec::new());
    for name in ["kept", "plain", "gone"] {
        state.timers.insert(name.to_string(), mark);
    }
    let t0 = Instant::now();
    s.set_wall_clock(t0, 1_010_000);
    s.restore(state, Vec::new(), BTreeSet::new(), t0, &mut sys);
    assert_eq!(s.timer_mark("kept"), Some(mark));
    let snap = s.snapshot(t0);
    assert_eq!(snap.timers.keys().collect::<Vec<_>>(), ["kept"]);
    assert_eq!(snap.timers["kept"], mark);
}

#[test]
fn a_scoped_reload_touches_only_the_named_units() {
    // Load(["new"]): the new unit appears, a changed file of another unit
    // and a vanished one are left as they are.
    let mut s = sup(&[("old", SIMPLE), ("gone", SIMPLE)]);
    let changed = loaded(&[
        ("old", "[service]\nExecStart = \"changed\"\n"),
        ("new", SIMPLE),
    ]);
    let report = s.reload_scoped(changed, Some(&names(&["new"])));
    assert_eq!(report.added, ["new"]);
    assert!(
        report.changed.is_empty() && report.removed.is_empty(),
        "{report:?}"
    );
    assert!(s.id_of("gone").is_some());
    let old = &s.entries[s.id_of("old").unwrap()];
    assert_eq!(old.unit.as_ref().unwrap().exec_start, ["sleep", "100"]);
}

#[test]
fn a_scoped_load_of_a_running_unit_waits_for_its_restart() {
    // `run --force`: the changed definition is not applied by a restart of
    // the load's own; the client's one restart launches it, once.
    let (mut s, mut sys, t0) = setup(&[("web", SIMPLE)]);
    start(&mut s, &mut sys, None, &["web"], t0);
    let changed = loaded(&[("web", "[service]\nExecStart = \"changed\"\n")]);
    let report = s.reload_scoped(changed, Some(&names(&["web"])));
    assert_eq!(report.changed, ["web"]);
    pass(&mut s, t0, &mut sys);
    assert!(sys.signals.is_empty(), "the load restarted web itself");
    let old = sys.pid_of("web");
    restart(&mut s, &mut sys, Some(1), &["web"], t0);
    exit(&mut s, &mut sys, old, TERM, t0);
    assert_eq!(sys.order(), ["web", "web"]);
    let e = &s.entries[s.id_of("web").unwrap()];
    assert_eq!(e.unit.as_ref().unwrap().exec_start, ["changed"]);
}
