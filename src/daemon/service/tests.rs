//! The service state machine without processes: transitions of the
//! table in `service.rs`, restart policy, backoff and start limits.

use super::*;
use crate::daemon::spawn::SpawnError;
use crate::protocol::StateName;

mod stopping;

fn policy() -> Policy {
    Policy {
        kind: ServiceType::Simple,
        restart: RestartPolicy::OnFailure,
        restart_sec: Duration::from_secs(1).into(),
        restart_max_delay: Duration::from_secs(1).into(),
        timeout_start: Duration::from_secs(30).into(),
        timeout_stop: Duration::from_secs(10).into(),
        kill_signal: Signal::SIGTERM,
        has_exec_stop: false,
        remain_after_exit: false,
        start_limit_burst: 5,
        start_limit_interval: Duration::from_secs(10).into(),
        probe_readiness: false,
        watchdog_signal: Signal::SIGABRT,
    }
}

fn pid(n: i32) -> Pid {
    Pid::from_raw(n)
}

/// A service that is running with pid 100, started at `t0`.
fn running(p: Policy, t0: Instant) -> Service {
    let mut svc = Service::new(p, 7);
    svc.on_event(Event::Start, t0);
    assert_eq!(svc.on_event(Event::DepsReady, t0), [Action::Spawn]);
    svc.on_event(Event::Spawned(pid(100)), t0);
    assert_eq!(svc.state.name(), StateName::Running);
    svc
}

/// The default policy with one change.
fn with(change: impl FnOnce(&mut Policy)) -> Policy {
    let mut p = policy();
    change(&mut p);
    p
}

/// Restarts with no delay, and a start limit of `burst` starts.
fn at_once(burst: u32) -> Policy {
    Policy {
        start_limit_burst: burst,
        restart_sec: Duration::ZERO.into(),
        restart_max_delay: Duration::ZERO.into(),
        ..policy()
    }
}

/// A backoff from 1 s to 8 s.
fn backoff_1_to_8() -> Policy {
    Policy {
        restart_sec: secs(1.0).into(),
        restart_max_delay: secs(8.0).into(),
        ..policy()
    }
}

/// A service that asked to spawn (Start, then DepsReady) at `t0`.
fn spawning(p: Policy, t0: Instant) -> Service {
    let mut svc = Service::new(p, 1);
    svc.on_event(Event::Start, t0);
    assert_eq!(svc.on_event(Event::DepsReady, t0), [Action::Spawn]);
    svc
}

/// The main process ends with `exit`, then the rest of its group.
fn ended(svc: &mut Service, exit: ExitKind, now: Instant) {
    svc.on_event(Event::Exited(exit), now);
    svc.on_event(Event::GroupGone, now);
}

/// A signal to a process group.
fn kill(pgid: i32, signal: Signal) -> Action {
    Action::KillGroup {
        pgid: pid(pgid),
        signal,
    }
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

#[test]
fn start_waits_for_deps_then_spawns() {
    // Start parks the service in waiting; DepsReady spawns it; Spawned makes a simple one running.
    let t0 = Instant::now();
    let mut svc = Service::new(policy(), 1);
    assert!(svc.on_event(Event::Start, t0).is_empty());
    assert_eq!(svc.state, State::Waiting);
    assert_eq!(svc.on_event(Event::DepsReady, t0), [Action::Spawn]);
    assert_eq!(svc.state.name(), StateName::Starting);
    svc.on_event(Event::Spawned(pid(5)), t0);
    assert_eq!(
        svc.state,
        State::Running {
            pid: Some(pid(5)),
            since: t0
        }
    );
    assert_eq!(svc.pgid, Some(pid(5)));
}

#[test]
fn restart_policy_matrix() {
    // Which exits restart under each policy (SPEC §6), and where the others end.
    use RestartPolicy::*;
    let cases = [
        (Always, ExitKind::Code(0), StateName::Restarting),
        (Always, ExitKind::Code(1), StateName::Restarting),
        (OnFailure, ExitKind::Code(0), StateName::Exited),
        (OnFailure, ExitKind::Code(2), StateName::Restarting),
        (
            OnFailure,
            ExitKind::Signal(Signal::SIGKILL),
            StateName::Restarting,
        ),
        (No, ExitKind::Code(0), StateName::Exited),
        (No, ExitKind::Code(3), StateName::Failed),
        (No, ExitKind::Signal(Signal::SIGSEGV), StateName::Failed),
        (OnFailure, ExitKind::Unknown, StateName::Restarting),
    ];
    for (restart, exit, want) in cases {
        let t0 = Instant::now();
        let mut svc = running(
            Policy {
                restart,
                ..policy()
            },
            t0,
        );
        let actions = svc.on_event(Event::Exited(exit), t0 + secs(2.0));
        assert_eq!(svc.state.name(), want, "{restart:?} {exit:?}");
        assert_eq!(svc.last_exit, Some(exit));
        // Whatever is left of the group is killed.
        assert_eq!(actions, [kill(100, Signal::SIGKILL)]);
    }
}

#[test]
fn failed_attempts_count_and_the_restart_reason_is_kept() {
    // Each failed attempt counts (a clean exit under Restart=always does not) and says why it restarts.
    let t0 = Instant::now();
    let mut svc = running(with(|p| p.restart = RestartPolicy::Always), t0);
    svc.on_event(Event::Exited(ExitKind::Code(0)), t0);
    assert_eq!(svc.failed_attempts, 0);
    assert_eq!(
        svc.restart_reason.as_deref(),
        Some(&Reason::Exit(ExitKind::Code(0)))
    );
    assert_eq!(svc.next_attempt(), Some(t0 + secs(1.0)));
    svc.on_event(Event::Timer, t0 + secs(1.0));
    svc.on_event(Event::Spawned(pid(101)), t0 + secs(1.0));
    svc.on_event(Event::Exited(ExitKind::Code(4)), t0 + secs(2.0));
    assert_eq!(svc.failed_attempts, 1);
    assert_eq!(
        svc.restart_reason.as_deref(),
        Some(&Reason::Exit(ExitKind::Code(4)))
    );
    assert_eq!(svc.last_exit, Some(ExitKind::Code(4)));
}

#[test]
fn a_unit_that_cannot_work_fails_without_spawning() {
    // CannotStart in place of a spawn fails the service with that reason and no timer.
    let t0 = Instant::now();
    let mut svc = spawning(policy(), t0);
    let reason = Reason::NoMainPid(Box::new(crate::daemon::spawn::MainPidError::NoGroup));
    assert!(svc
        .on_event(Event::CannotStart(reason.clone()), t0)
        .is_empty());
    assert_eq!(svc.state, State::Failed(reason));
    assert_eq!(svc.deadline(), None);
}

#[test]
fn restart_waits_restart_sec_then_spawns_and_counts() {
    // The restart timer fires after RestartSec and counts one restart.
    let t0 = Instant::now();
    let mut svc = running(policy(), t0);
    svc.on_event(Event::Exited(ExitKind::Code(1)), t0);
    assert_eq!(svc.deadline(), Some(t0 + secs(1.0)));
    // A stray early timer does nothing.
    assert!(svc.on_event(Event::Timer, t0 + secs(0.5)).is_empty());
    assert_eq!(svc.on_event(Event::Timer, t0 + secs(1.0)), [Action::Spawn]);
    assert_eq!(svc.restarts, 1);
}

#[test]
fn zero_restart_sec_restarts_at_once() {
    // RestartSec = 0 arms a deadline of now, so the same loop pass restarts.
    let t0 = Instant::now();
    let mut svc = running(
        Policy {
            restart_sec: Duration::ZERO.into(),
            restart_max_delay: Duration::ZERO.into(),
            ..policy()
        },
        t0,
    );
    svc.on_event(Event::Exited(ExitKind::Code(1)), t0);
    assert_eq!(svc.deadline(), Some(t0));
    assert_eq!(svc.on_event(Event::Timer, t0), [Action::Spawn]);
}

#[test]
fn start_limit_hit_after_burst_starts() {
    // With StartLimitBurst = 3, the fourth start inside the interval fails
    // the service: at the exit, with no restart announced (it would be
    // refused when due).
    let t0 = Instant::now();
    let p = at_once(3);
    let mut svc = running(p, t0); // start 1
    let mut t = t0;
    for n in 2..=3 {
        t += secs(0.1);
        svc.on_event(Event::Exited(ExitKind::Code(1)), t);
        assert_eq!(svc.on_event(Event::Timer, t), [Action::Spawn], "start {n}");
        svc.on_event(Event::Spawned(pid(100 + n)), t);
    }
    t += secs(0.1);
    svc.on_event(Event::Exited(ExitKind::Code(1)), t);
    assert_eq!(svc.state, State::Failed(Reason::StartLimitHit));
    assert_eq!(Reason::StartLimitHit.to_string(), "start limit hit");
}

#[test]
fn starts_outside_the_interval_do_not_count() {
    // Starts older than StartLimitIntervalSec fall out of the window.
    let t0 = Instant::now();
    let p = Policy {
        start_limit_burst: 2,
        start_limit_interval: secs(10.0).into(),
        ..policy()
    };
    let mut svc = running(p, t0);
    let mut t = t0;
    for _ in 0..5 {
        t += secs(11.0);
        svc.on_event(Event::Exited(ExitKind::Code(1)), t);
        assert_eq!(svc.on_event(Event::Timer, t + secs(1.0)), [Action::Spawn]);
        svc.on_event(Event::Spawned(pid(200)), t + secs(1.0));
    }
    assert_eq!(svc.state.name(), StateName::Running);
}

#[test]
fn zero_burst_never_gives_up() {
    // StartLimitBurst = 0 disables the start limit.
    let t0 = Instant::now();
    let p = at_once(0);
    let mut svc = running(p, t0);
    for _ in 0..1000 {
        svc.on_event(Event::Exited(ExitKind::Code(1)), t0);
        assert_eq!(svc.on_event(Event::Timer, t0), [Action::Spawn]);
        svc.on_event(Event::Spawned(pid(300)), t0);
    }
    assert_eq!(svc.restarts, 1000);
}

#[test]
fn backoff_doubles_up_to_the_cap_with_jitter() {
    // Consecutive failures double the delay (minus up to 25% jitter) and never exceed the cap.
    let t0 = Instant::now();
    let p = backoff_1_to_8();
    let mut svc = running(p, t0);
    let mut t = t0;
    let mut delays = Vec::new();
    for _ in 0..6 {
        svc.on_event(Event::Exited(ExitKind::Code(1)), t);
        let until = svc.deadline().unwrap();
        delays.push(until - t);
        t = until;
        svc.on_event(Event::Timer, t);
        svc.on_event(Event::Spawned(pid(400)), t);
    }
    let expected = [1.0, 2.0, 4.0, 8.0, 8.0, 8.0];
    for (d, e) in delays.iter().zip(expected) {
        let d = d.as_secs_f64();
        assert!(
            d <= e + 1e-9 && d >= (e * 0.75).max(1.0) - 1e-9,
            "{delays:?}"
        );
    }
}

#[test]
fn backoff_resets_after_staying_up_for_the_cap() {
    // A run that lasts RestartMaxDelaySec starts the backoff over at RestartSec.
    let t0 = Instant::now();
    let p = backoff_1_to_8();
    let mut svc = running(p, t0);
    let mut t = t0;
    for _ in 0..4 {
        svc.on_event(Event::Exited(ExitKind::Code(1)), t);
        t = svc.deadline().unwrap();
        svc.on_event(Event::Timer, t);
        svc.on_event(Event::Spawned(pid(500)), t);
    }
    t += secs(8.0);
    svc.on_event(Event::Exited(ExitKind::Code(1)), t);
    assert_eq!(svc.deadline(), Some(t + secs(1.0)));
}

#[test]
fn spawn_failure_fails_without_restart() {
    // A command that cannot be executed fails at once with the reason.
    let t0 = Instant::now();
    let mut svc = spawning(with(|p| p.restart = RestartPolicy::Always), t0);
    svc.on_event(
        Event::SpawnFailed(SpawnError::NotFound {
            program: "nope".into(),
            in_path: true,
        }),
        t0,
    );
    assert_eq!(svc.state.name(), StateName::Failed);
    assert_eq!(svc.deadline(), None);
}

#[test]
fn an_exec_that_fails_after_the_spawn_is_a_spawn_failure() {
    // Up since its clone (running, or starting for other types), then its
    // exec fails: failed with why, not restarted; short of resources:
    // restarted per policy. Late (already failed): ignored.
    let t0 = Instant::now();
    let exec_failed = |e| Event::ExecFailed(e);
    for kind in [ServiceType::Simple, ServiceType::Notify] {
        let mut svc = spawning(
            with(|p| {
                p.restart = RestartPolicy::Always;
                p.kind = kind;
            }),
            t0,
        );
        svc.on_event(Event::Spawned(pid(7)), t0);
        svc.on_event(
            exec_failed(SpawnError::Exec {
                program: "script".into(),
                error: "Exec format error (os error 8)".into(),
            }),
            t0,
        );
        assert_eq!(svc.state.name(), StateName::Failed, "{kind:?}");
        assert_eq!(
            svc.last_exit,
            Some(ExitKind::Code(127)),
            "not the last run's"
        );
        assert!(
            matches!(&svc.state, State::Failed(r) if r.to_string().contains("Exec format error")),
            "{:?}",
            svc.state
        );
        svc.on_event(
            exec_failed(SpawnError::NotFound {
                program: "x".into(),
                in_path: true,
            }),
            t0,
        );
        assert_eq!(svc.state.name(), StateName::Failed);
    }
    let mut svc = spawning(with(|p| p.restart = RestartPolicy::Always), t0);
    svc.on_event(Event::Spawned(pid(8)), t0);
    svc.on_event(
        exec_failed(SpawnError::Resources {
            program: "sleep".into(),
            error: "Cannot allocate memory (os error 12)".into(),
        }),
        t0,
    );
    assert_eq!(svc.state.name(), StateName::Restarting);
}

#[test]
fn a_spawn_short_of_resources_is_retried_per_restart() {
    // EMFILE (the daemon out of descriptors) is transient: Restart = always restarts after RestartSec; Restart = no fails with the reason.
    let t0 = Instant::now();
    let emfile = || {
        Event::SpawnFailed(SpawnError::Resources {
            program: "sleep".into(),
            error: "No file descriptors available (os error 24)".into(),
        })
    };
    let mut svc = spawning(with(|p| p.restart = RestartPolicy::Always), t0);
    svc.on_event(emfile(), t0);
    assert_eq!(svc.state.name(), StateName::Restarting);
    assert_eq!(svc.on_event(Event::Timer, t0 + secs(1.0)), [Action::Spawn]);
    let mut svc = spawning(with(|p| p.restart = RestartPolicy::No), t0);
    svc.on_event(emfile(), t0);
    assert_eq!(svc.state.name(), StateName::Failed);
}

#[test]
fn oneshot_is_up_once_it_exits_zero() {
    // A oneshot stays starting while it runs and ends exited, or running with RemainAfterExit.
    for (remain, want) in [(false, StateName::Exited), (true, StateName::Running)] {
        let t0 = Instant::now();
        let p = Policy {
            kind: ServiceType::Oneshot,
            remain_after_exit: remain,
            ..policy()
        };
        let mut svc = spawning(p, t0);
        svc.on_event(Event::Spawned(pid(9)), t0);
        assert_eq!(svc.state.name(), StateName::Starting);
        assert_eq!(svc.deadline(), Some(t0 + secs(30.0)));
        svc.on_event(Event::Exited(ExitKind::Code(0)), t0 + secs(1.0));
        assert_eq!(svc.state.name(), want);
        assert_eq!(svc.pid(), None);
    }
}

#[test]
fn remain_after_exit_oneshot_stops_without_processes() {
    // Stopping a RemainAfterExit oneshot whose process is gone needs no signal.
    let t0 = Instant::now();
    let p = Policy {
        kind: ServiceType::Oneshot,
        remain_after_exit: true,
        ..policy()
    };
    let mut svc = spawning(p, t0);
    svc.on_event(Event::Spawned(pid(9)), t0);
    svc.on_event(Event::Exited(ExitKind::Code(0)), t0);
    // The group may still hold background children: it is signalled.
    let actions = svc.on_event(Event::Stop, t0);
    assert_eq!(
        actions,
        [kill(9, Signal::SIGTERM), kill(9, Signal::SIGCONT)]
    );
    svc.on_event(Event::GroupGone, t0);
    assert_eq!(svc.state, State::Inactive);
}

#[test]
fn oneshot_start_timeout_kills_and_applies_the_policy() {
    // A oneshot running past TimeoutStartSec is stopped and then judged by Restart=.
    let t0 = Instant::now();
    let p = Policy {
        kind: ServiceType::Oneshot,
        restart: RestartPolicy::No,
        timeout_start: secs(2.0).into(),
        ..policy()
    };
    let mut svc = spawning(p, t0);
    svc.on_event(Event::Spawned(pid(9)), t0);
    let actions = svc.on_event(Event::Timer, t0 + secs(2.0));
    assert_eq!(
        actions,
        [kill(9, Signal::SIGTERM), kill(9, Signal::SIGCONT)]
    );
    ended(&mut svc, ExitKind::Signal(Signal::SIGTERM), t0 + secs(2.1));
    assert_eq!(svc.state, State::Failed(Reason::StartTimeout));
}

#[test]
fn explicit_start_resets_a_failed_service() {
    // Starting a failed service clears the start-limit window so it can run again.
    let t0 = Instant::now();
    let p = at_once(1);
    let mut svc = running(p, t0);
    svc.on_event(Event::Exited(ExitKind::Code(1)), t0);
    svc.on_event(Event::Timer, t0);
    assert_eq!(svc.state, State::Failed(Reason::StartLimitHit));
    svc.on_event(Event::Start, t0);
    assert_eq!(svc.on_event(Event::DepsReady, t0), [Action::Spawn]);
}

#[test]
fn main_pid_changed_moves_the_main_process_and_keeps_the_state() {
    // MAINPID=: the new pid is the main one (same since, same group);
    // a late one after the service went down changes nothing.
    let t0 = Instant::now();
    let mut svc = running(policy(), t0);
    let t1 = t0 + secs(1.0);
    assert!(svc.on_event(Event::MainPidChanged(pid(101)), t1).is_empty());
    assert_eq!(
        svc.state,
        State::Running {
            pid: Some(pid(101)),
            since: t0
        }
    );
    assert_eq!(svc.pgid, Some(pid(100)));
    svc.on_event(Event::Exited(ExitKind::Signal(Signal::SIGKILL)), t1);
    assert_eq!(svc.state.name(), StateName::Restarting);
    let before = svc.state.clone();
    assert!(svc.on_event(Event::MainPidChanged(pid(102)), t1).is_empty());
    assert_eq!(svc.state, before);
}

#[test]
fn stray_events_are_ignored() {
    // Events that make no sense in a state change nothing.
    let t0 = Instant::now();
    let mut svc = Service::new(policy(), 1);
    for ev in [
        Event::Timer,
        Event::GroupGone,
        Event::Exited(ExitKind::Code(0)),
        Event::Stop,
        Event::DepsReady,
    ] {
        assert!(svc.on_event(ev, t0).is_empty());
        assert_eq!(svc.state, State::Inactive);
    }
}

#[test]
fn policy_takes_every_runtime_key_from_the_unit() {
    // Each key the machine obeys reaches Policy through the built Unit, so its default is the key table's alone.
    let unit = |unit_keys: &str, service_keys: &str| {
        let text = format!("[unit]\n{unit_keys}\n[service]\nExecStart = \"w\"\n{service_keys}\n");
        crate::unit::parse(
            "web",
            std::path::Path::new("/u/web.service"),
            &text,
            std::path::Path::new("/u"),
        )
        .unwrap_or_else(|e| panic!("{text}: {e:?}"))
    };
    let plain = unit("", "");
    let base = Policy::from_unit(&plain);
    assert_eq!(
        (
            base.restart_sec.get(),
            base.restart_max_delay.get(),
            base.timeout_start.get()
        ),
        (
            plain.restart_sec,
            plain.restart_max_delay,
            plain.timeout_start
        )
    );
    assert_eq!(
        (
            base.timeout_stop.get(),
            base.start_limit_interval.get(),
            base.start_limit_burst
        ),
        (
            plain.timeout_stop,
            plain.start_limit_interval,
            plain.start_limit_burst
        )
    );
    for (unit_keys, service_keys) in [
        ("StartLimitBurst = 7", ""),
        ("StartLimitIntervalSec = 7", ""),
        ("", "Type = \"oneshot\""),
        ("", "Restart = \"always\""),
        ("", "RestartSec = 7"),
        ("", "RestartMaxDelaySec = 9"),
        ("", "TimeoutStartSec = 7"),
        ("", "TimeoutStopSec = 7"),
        ("", "KillSignal = \"SIGINT\""),
        ("", "ExecStop = \"stop\""),
        ("", "RemainAfterExit = true"),
    ] {
        let policy = Policy::from_unit(&unit(unit_keys, service_keys));
        assert_ne!(
            policy, base,
            "{unit_keys}{service_keys} did not reach the policy"
        );
    }
}

#[test]
fn late_or_repeated_news_is_a_listed_no_op() {
    // A second DepsReady or READY=1, a stray exit or a timer that is not
    // due change nothing and ask for nothing.
    let t0 = Instant::now();
    let mut svc = running(policy(), t0);
    let before = svc.state.clone();
    for ev in [
        Event::DepsReady,
        Event::Ready,
        Event::Timer,
        Event::GroupGone,
        Event::DepInvalid("db".into()),
    ] {
        assert!(svc.on_event(ev, t0).is_empty());
    }
    assert_eq!(svc.state, before);
}

#[test]
fn adoption_and_counter_resets_are_events() {
    // A new daemon adopts through on_event (restart count kept), and a
    // reset clears the counters without touching the state.
    let t0 = Instant::now();
    let mut svc = Service::new(policy(), 3);
    let adopted = Event::Adopt {
        pid: Some(pid(100)),
        pgid: Some(pid(100)),
        since: t0,
        restarts: 4,
        starting: None,
    };
    assert!(svc.on_event(adopted, t0).is_empty());
    assert_eq!(svc.pid(), Some(pid(100)));
    assert_eq!(svc.restarts, 4);
    svc.on_event(Event::ResetCounters, t0);
    assert_eq!(svc.restarts, 0);
    assert_eq!(svc.pid(), Some(pid(100)));
}

#[test]
#[cfg(debug_assertions)]
#[should_panic(expected = "not in the table")]
fn a_pair_the_table_does_not_list_trips_the_debug_assert() {
    // Spawned for a service that never asked to spawn is a bug.
    let mut svc = Service::new(policy(), 3);
    svc.on_event(Event::Spawned(pid(7)), Instant::now());
}

#[test]
fn span_holds_every_unit_duration_exactly() {
    // A policy keeps its durations in 8 bytes: exact from 1 ns to MAX_SECS (1e9 s).
    for d in [
        Duration::ZERO,
        Duration::from_nanos(1),
        Duration::from_millis(250),
        Duration::new(90, 123_456_789),
        Duration::from_secs(1_000_000_000),
    ] {
        assert_eq!(Span::from(d).get(), d);
    }
    assert_eq!(
        Span::from(Duration::MAX).get(),
        Duration::from_nanos(u64::MAX)
    );
    assert!(Span::from(secs(1.0)) < Span::from(secs(1.5)));
    assert_eq!(std::mem::size_of::<Span>(), 8);
}

#[test]
fn a_state_is_small_because_a_stops_reason_is_boxed() {
    // A thousand services keep a thousand states: a stop's reason inline
    // made each 80 bytes, boxed it is 56. The stop still ends in its reason
    // (`oneshot_start_timeout_kills_and_applies_the_policy`, and here).
    assert!(std::mem::size_of::<State>() <= 56);
    let t0 = Instant::now();
    let mut svc = running(policy(), t0);
    svc.on_event(Event::DepFailed("db".into()), t0);
    assert!(matches!(
        &svc.state,
        State::Stopping { then: AfterStop::Failed(r), .. } if **r == Reason::DepFailed("db".into())
    ));
    svc.on_event(Event::Exited(ExitKind::Signal(Signal::SIGTERM)), t0);
    svc.on_event(Event::GroupGone, t0);
    assert_eq!(svc.state, State::Failed(Reason::DepFailed("db".into())));
}

/// A forking unit whose starter exited 0 at `t0`: its main process is being
/// looked for (no pid), with TimeoutStartSec 1 s from its spawn at `t0`.
fn finding_main_pid(t0: Instant) -> Service {
    let mut svc = spawning(
        with(|p| {
            p.kind = ServiceType::Forking;
            p.timeout_start = secs(1.0).into();
        }),
        t0,
    );
    svc.on_event(Event::Spawned(pid(100)), t0);
    assert_eq!(
        svc.on_event(Event::Exited(ExitKind::Code(0)), t0),
        [Action::FindMainPid]
    );
    assert!(matches!(
        svc.state,
        State::Starting {
            pid: None,
            deadline: Some(_)
        }
    ));
    svc
}

#[test]
fn a_start_timeout_during_the_main_pid_search_is_judged_when_the_search_ends() {
    // With no process to stop, no timer is armed (one due at once that changes
    // nothing would fire again for ever: the daemon spun at 100% CPU); the
    // search's answer after the deadline stops the found process as a timeout.
    let t0 = Instant::now();
    let mut svc = finding_main_pid(t0);
    assert_eq!(svc.timer(), None);
    let late = t0 + secs(1.5);
    assert!(
        svc.on_event(Event::Timer, late).is_empty(),
        "a stray timer changes nothing"
    );
    assert_eq!(svc.timer(), None);
    let actions = svc.on_event(Event::MainPid(Ok((pid(200), pid(200)))), late);
    assert!(actions.contains(&kill(200, Signal::SIGTERM)), "{actions:?}");
    assert!(
        matches!(
            &svc.state,
            State::Stopping { then: AfterStop::Failure(r), .. } if **r == Reason::StartTimeout
        ),
        "{:?}",
        svc.state
    );
    // Found in time, it runs.
    let mut svc = finding_main_pid(t0);
    svc.on_event(Event::MainPid(Ok((pid(200), pid(200)))), t0 + secs(0.5));
    assert_eq!(svc.state.name(), StateName::Running);
}

#[test]
fn a_dependency_failure_during_a_spawn_stops_the_service_failed_once_it_is_up() {
    // The news overtakes the spawn (or the main pid's search): the service
    // must not end up running without the unit it Requires.
    let t0 = Instant::now();
    let mut svc = spawning(policy(), t0);
    assert!(svc.on_event(Event::DepFailed("db".into()), t0).is_empty());
    let actions = svc.on_event(Event::Spawned(pid(100)), t0);
    assert!(actions.contains(&kill(100, Signal::SIGTERM)), "{actions:?}");
    ended(&mut svc, ExitKind::Signal(Signal::SIGTERM), t0);
    assert_eq!(svc.state, State::Failed(Reason::DepFailed("db".into())));

    let mut svc = finding_main_pid(t0);
    svc.on_event(Event::DepFailed("db".into()), t0);
    svc.on_event(Event::MainPid(Ok((pid(200), pid(200)))), t0);
    ended(&mut svc, ExitKind::Signal(Signal::SIGTERM), t0);
    assert_eq!(svc.state, State::Failed(Reason::DepFailed("db".into())));

    // An explicit stop meanwhile wins: inactive, as for any stop.
    let mut svc = spawning(policy(), t0);
    svc.on_event(Event::DepFailed("db".into()), t0);
    svc.on_event(Event::Stop, t0);
    svc.on_event(Event::Spawned(pid(100)), t0);
    ended(&mut svc, ExitKind::Signal(Signal::SIGTERM), t0);
    assert_eq!(svc.state, State::Inactive);

    // A start meanwhile wins too, as after a stop: the service stays up
    // (the start's job brings the dependency up again).
    let mut svc = spawning(policy(), t0);
    svc.on_event(Event::DepFailed("db".into()), t0);
    assert!(svc.on_event(Event::Start, t0).is_empty());
    assert!(svc.on_event(Event::Spawned(pid(100)), t0).is_empty());
    assert_eq!(svc.state.name(), StateName::Running);
}

#[test]
fn ready_only_ends_the_start_of_a_unit_that_waits_for_it() {
    // A forking or oneshot unit with WatchdogSec has a notify socket too: its
    // READY=1 must not make it running before its starter exits.
    let t0 = Instant::now();
    for kind in [ServiceType::Forking, ServiceType::Oneshot] {
        let mut svc = spawning(with(|p| p.kind = kind), t0);
        svc.on_event(Event::Spawned(pid(100)), t0);
        assert!(svc.on_event(Event::Ready, t0).is_empty());
        assert_eq!(svc.state.name(), StateName::Starting, "{kind:?}");
    }
    let mut svc = spawning(with(|p| p.kind = ServiceType::Notify), t0);
    svc.on_event(Event::Spawned(pid(100)), t0);
    svc.on_event(Event::Ready, t0);
    assert_eq!(svc.state.name(), StateName::Running);
}

#[test]
fn a_readiness_probe_gates_notify_and_forking_after_their_own_readiness() {
    // SPEC §10: with a Readiness probe a unit is up only after its first
    // passing probe, whatever its type, and after its own readiness (READY=1,
    // the main pid found), in either order.
    let t0 = Instant::now();
    let gated = |kind| {
        with(|p| {
            p.kind = kind;
            p.probe_readiness = true;
        })
    };
    // notify: READY=1, then the probe.
    let mut svc = spawning(gated(ServiceType::Notify), t0);
    svc.on_event(Event::Spawned(pid(100)), t0);
    svc.on_event(Event::Ready, t0);
    assert_eq!(svc.state.name(), StateName::Starting);
    svc.on_event(Event::ProbePassed, t0);
    assert_eq!(svc.state.name(), StateName::Running);
    // notify: the probe first, then READY=1.
    let mut svc = spawning(gated(ServiceType::Notify), t0);
    svc.on_event(Event::Spawned(pid(100)), t0);
    svc.on_event(Event::ProbePassed, t0);
    assert_eq!(svc.state.name(), StateName::Starting);
    svc.on_event(Event::Ready, t0);
    assert_eq!(svc.state.name(), StateName::Running);
    // notify: an exit 0 after READY=1 but before the probe is a failure
    // of its own, not "before it sent READY=1".
    let mut svc = spawning(gated(ServiceType::Notify), t0);
    svc.on_event(Event::Spawned(pid(100)), t0);
    svc.on_event(Event::Ready, t0);
    svc.on_event(Event::Exited(ExitKind::Code(0)), t0);
    assert!(
        !matches!(svc.state, State::Failed(Reason::NotReady)),
        "{:?}",
        svc.state
    );
    // forking: the main pid found, then the probe; meanwhile the main
    // process is the pid, and its exit is not the starter's.
    let mut svc = spawning(gated(ServiceType::Forking), t0);
    svc.on_event(Event::Spawned(pid(100)), t0);
    let find = svc.on_event(Event::Exited(ExitKind::Code(0)), t0);
    assert!(find.contains(&Action::FindMainPid));
    svc.on_event(Event::MainPid(Ok((pid(200), pid(200)))), t0);
    assert_eq!(svc.state.name(), StateName::Starting);
    assert_eq!(svc.pid(), Some(pid(200)));
    svc.on_event(Event::ProbePassed, t0);
    assert_eq!(svc.state.name(), StateName::Running);
    let mut svc = spawning(gated(ServiceType::Forking), t0);
    svc.on_event(Event::Spawned(pid(100)), t0);
    svc.on_event(Event::Exited(ExitKind::Code(0)), t0);
    svc.on_event(Event::MainPid(Ok((pid(200), pid(200)))), t0);
    let actions = svc.on_event(Event::Exited(ExitKind::Code(0)), t0);
    assert!(!actions.contains(&Action::FindMainPid), "{actions:?}");
    assert_ne!(svc.state.name(), StateName::Starting);
    // Without Readiness a probe passing changes nothing of the type's own.
    let mut svc = spawning(with(|p| p.kind = ServiceType::Notify), t0);
    svc.on_event(Event::Spawned(pid(100)), t0);
    svc.on_event(Event::Ready, t0);
    assert_eq!(svc.state.name(), StateName::Running);
}
