//! Stopping without processes: KillSignal then SIGKILL, ExecStop, a stop met by an exit, a start or a failed dependency.

use super::*;

#[test]
fn stop_signals_the_group_then_kills_after_the_timeout() {
    // Stop sends KillSignal, SIGKILL at TimeoutStopSec, and ends inactive once all is gone.
    let t0 = Instant::now();
    let mut svc = running(with(|p| p.kill_signal = Signal::SIGINT), t0);
    assert_eq!(
        svc.on_event(Event::Stop, t0),
        [kill(100, Signal::SIGINT), kill(100, Signal::SIGCONT)]
    );
    assert_eq!(svc.state.name(), StateName::Stopping);
    assert_eq!(svc.deadline(), Some(t0 + secs(10.0)));
    assert_eq!(
        svc.on_event(Event::Timer, t0 + secs(10.0)),
        [kill(100, Signal::SIGKILL)]
    );
    svc.on_event(
        Event::Exited(ExitKind::Signal(Signal::SIGKILL)),
        t0 + secs(10.1),
    );
    // The main process is gone; the group may not be yet.
    assert!(svc.awaiting_group());
    svc.on_event(Event::GroupGone, t0 + secs(10.1));
    assert_eq!(svc.state, State::Inactive);
    assert_eq!(svc.last_exit, Some(ExitKind::Signal(Signal::SIGKILL)));
}

#[test]
fn a_group_that_survives_sigkill_ends_failed_not_inactive() {
    // When something outlives SIGKILL past the grace, the stop gives up as failed, never as a clean inactive.
    let t0 = Instant::now();
    let mut svc = running(policy(), t0);
    svc.on_event(Event::Stop, t0);
    svc.on_event(Event::Timer, t0 + secs(10.0));
    svc.on_event(Event::Exited(ExitKind::Code(0)), t0 + secs(10.1));
    assert!(svc.awaiting_group());
    svc.on_event(Event::Timer, t0 + secs(10.0) + KILL_GRACE);
    assert_eq!(
        svc.state,
        State::Failed(Reason::Survived("process group 100".into()))
    );
    let reason = Reason::Survived("process group 100".into()).to_string();
    assert!(reason.contains("survived SIGKILL"), "{reason}");
}

#[test]
fn leftovers_of_a_dead_adopted_process_are_killed_before_the_restart() {
    // A new daemon that finds the main process dead but its group alive kills the group and restarts only once it is gone.
    let t0 = Instant::now();
    let mut svc = Service::new(policy(), 3);
    svc.on_event(
        Event::Adopt {
            pid: Some(pid(100)),
            pgid: None,
            since: t0,
            restarts: 0,
            starting: None,
        },
        t0,
    );
    assert_eq!(
        svc.on_event(Event::DeadWithLeftovers(pid(100)), t0),
        [kill(100, Signal::SIGKILL)]
    );
    assert_eq!(svc.state.name(), StateName::Stopping);
    assert!(svc.awaiting_group());
    assert_eq!(svc.last_exit, Some(ExitKind::Unknown));
    svc.on_event(Event::GroupGone, t0 + secs(0.1));
    assert_eq!(svc.state.name(), StateName::Restarting);
    assert_eq!(
        svc.on_event(Event::Timer, t0 + secs(1.1)),
        [Action::Spawn],
        "restarted per policy once the group is gone"
    );
    assert_eq!(svc.restarts, 1);
}

#[test]
fn exec_stop_runs_before_the_signal() {
    // With ExecStop, the stop command runs first; KillSignal follows when it exits.
    let t0 = Instant::now();
    let mut svc = running(with(|p| p.has_exec_stop = true), t0);
    assert_eq!(svc.on_event(Event::Stop, t0), [Action::SpawnStop]);
    svc.on_event(Event::StopCmdSpawned(pid(900)), t0);
    assert_eq!(svc.stop_cmd(), Some(pid(900)));
    assert_eq!(
        svc.on_event(Event::StopCmdExited(ExitKind::Code(0)), t0 + secs(0.2)),
        [kill(100, Signal::SIGTERM), kill(100, Signal::SIGCONT)]
    );
    ended(&mut svc, ExitKind::Signal(Signal::SIGTERM), t0 + secs(0.3));
    assert_eq!(svc.state, State::Inactive);
}

#[test]
fn exec_stop_that_hangs_is_killed_at_the_timeout() {
    // A stop command that outlives TimeoutStopSec is killed along with the signal to the service.
    let t0 = Instant::now();
    let mut svc = running(with(|p| p.has_exec_stop = true), t0);
    svc.on_event(Event::Stop, t0);
    svc.on_event(Event::StopCmdSpawned(pid(900)), t0);
    let actions = svc.on_event(Event::Timer, t0 + secs(10.0));
    assert_eq!(
        actions,
        [
            kill(100, Signal::SIGTERM),
            kill(100, Signal::SIGCONT),
            kill(900, Signal::SIGKILL),
        ]
    );
}

#[test]
fn zero_stop_timeout_kills_at_once() {
    // TimeoutStopSec = 0 sends SIGKILL right behind KillSignal.
    let t0 = Instant::now();
    let mut svc = running(with(|p| p.timeout_stop = Duration::ZERO.into()), t0);
    assert_eq!(
        svc.on_event(Event::Stop, t0),
        [
            kill(100, Signal::SIGTERM),
            kill(100, Signal::SIGCONT),
            kill(100, Signal::SIGKILL),
        ]
    );
}

#[test]
fn stop_during_backoff_cancels_restart() {
    // A stop while waiting out RestartSec ends inactive with no timer left.
    let t0 = Instant::now();
    let mut svc = running(policy(), t0);
    svc.on_event(Event::Exited(ExitKind::Code(1)), t0);
    assert!(svc.on_event(Event::Stop, t0).is_empty());
    assert_eq!(svc.state, State::Inactive);
    assert_eq!(svc.deadline(), None);
}

#[test]
fn exit_during_stop_is_not_restarted() {
    // The exit caused by our own signal never triggers the restart policy.
    let t0 = Instant::now();
    let mut svc = running(with(|p| p.restart = RestartPolicy::Always), t0);
    svc.on_event(Event::Stop, t0);
    ended(&mut svc, ExitKind::Signal(Signal::SIGTERM), t0);
    assert_eq!(svc.state, State::Inactive);
}

#[test]
fn dep_failed_stops_then_fails_with_the_reason() {
    // A running service whose required unit failed is stopped and ends failed naming it.
    let t0 = Instant::now();
    let mut svc = running(policy(), t0);
    let actions = svc.on_event(Event::DepFailed("db".into()), t0);
    assert_eq!(
        actions,
        [kill(100, Signal::SIGTERM), kill(100, Signal::SIGCONT)]
    );
    ended(&mut svc, ExitKind::Signal(Signal::SIGTERM), t0);
    assert_eq!(svc.state, State::Failed(Reason::DepFailed("db".into())));
    assert_eq!(
        Reason::DepFailed("db".into()).to_string(),
        "dependency db failed"
    );
}

#[test]
fn dep_failed_while_waiting_fails_at_once() {
    // A waiting service whose required unit failed never spawns.
    let mut svc = Service::new(policy(), 1);
    let t0 = Instant::now();
    svc.on_event(Event::Start, t0);
    assert!(svc.on_event(Event::DepFailed("db".into()), t0).is_empty());
    assert_eq!(svc.state, State::Failed(Reason::DepFailed("db".into())));
}

#[test]
fn start_during_stop_starts_again_afterwards() {
    // A start that arrives while stopping takes effect once the stop is done.
    let t0 = Instant::now();
    let mut svc = running(policy(), t0);
    svc.on_event(Event::Stop, t0);
    assert!(svc.on_event(Event::Start, t0).is_empty());
    ended(&mut svc, ExitKind::Signal(Signal::SIGTERM), t0);
    assert_eq!(svc.state, State::Waiting);
}

#[test]
fn stop_while_spawn_in_flight_stops_when_spawned() {
    // A Stop between Spawn and Spawned is honoured as soon as the pid is known.
    let t0 = Instant::now();
    let mut svc = spawning(policy(), t0);
    assert!(svc.on_event(Event::Stop, t0).is_empty());
    let actions = svc.on_event(Event::Spawned(pid(42)), t0);
    assert_eq!(
        actions,
        [kill(42, Signal::SIGTERM), kill(42, Signal::SIGCONT)]
    );
    assert_eq!(svc.state.name(), StateName::Stopping);
}

#[test]
fn an_adopted_stop_goes_on_without_a_second_signal() {
    // AdoptStopping sends nothing; at its deadline the escalation is SIGKILL, and the end is inactive.
    let t0 = Instant::now();
    let mut svc = running(policy(), t0);
    let deadline = t0 + secs(2.0);
    let stop = Event::AdoptStopping {
        phase: StopPhase::Signalled,
        deadline,
    };
    assert!(svc.on_event(stop, t0).is_empty());
    assert_eq!(svc.state.name(), StateName::Stopping);
    assert_eq!(svc.timer().map(|(_, at)| at), Some(deadline));
    assert_eq!(
        svc.on_event(Event::Timer, deadline),
        [kill(100, Signal::SIGKILL)]
    );
    ended(&mut svc, ExitKind::Signal(Signal::SIGKILL), deadline);
    assert_eq!(svc.state.name(), StateName::Inactive);
}
