//! What runs while a unit runs: the MemoryMax check and health probes.

use super::*;

/// The network probe the supervisor asked for, taken out of the effects.
fn take_probe(s: &mut Supervisor) -> Option<(ServiceId, u64)> {
    let mut found = None;
    s.effects.retain(|e| match e {
        Effect::Probe { id, gen, .. } => {
            found = Some((*id, *gen));
            false
        }
        _ => true,
    });
    found
}

#[test]
fn memory_max_checks_only_while_running_and_stops_after_two_samples_above() {
    // A check is armed only while a unit with MemoryMax runs; one sample above is tolerated, the second stops it and the policy restarts it with the reason.
    let (mut s, mut sys, t0) = setup(&[
        (
            "hog",
            "[service]\nExecStart = \"h\"\nMemoryMax = \"100M\"\nMemoryCheckSec = 1\n",
        ),
        ("plain", SIMPLE),
    ]);
    let sec = Duration::from_secs(1);
    start(&mut s, &mut sys, None, &["plain"], t0);
    assert_eq!(state(&s, "plain"), StateName::Running);
    assert_eq!(s.poll_timeout(), None, "no memory watch without MemoryMax");
    start(&mut s, &mut sys, None, &["hog"], t0);
    assert_eq!(state(&s, "hog"), StateName::Running);
    assert_eq!(s.poll_timeout(), Some(t0 + sec));
    sys.rss = Some(50 << 20);
    s.handle(Input::Tick, t0 + sec);
    pass(&mut s, t0 + sec, &mut sys);
    assert_eq!(s.poll_timeout(), Some(t0 + 2 * sec));
    sys.rss = Some(200 << 20);
    s.handle(Input::Tick, t0 + 2 * sec);
    pass(&mut s, t0 + 2 * sec, &mut sys);
    assert_eq!(state(&s, "hog"), StateName::Running, "one sample above");
    s.handle(Input::Tick, t0 + 3 * sec);
    pass(&mut s, t0 + 3 * sec, &mut sys);
    assert_eq!(state(&s, "hog"), StateName::Stopping);
    let pid = sys.pid_of("hog");
    assert!(sys.signals.contains(&(pid, Signal::SIGTERM)));
    exit(&mut s, &mut sys, pid, TERM, t0 + 3 * sec);
    assert_eq!(state(&s, "hog"), StateName::Restarting);
    let reason = s.status(s.id_of("hog").unwrap(), t0 + 3 * sec).info.reason;
    assert_eq!(reason.as_deref(), Some("memory limit: RSS 200M > 100M"));
    // Not running: no memory check is armed (only the restart delay).
    let key = TimerKey::Service(s.id_of("hog").unwrap(), ServiceTimer::MemoryCheck);
    assert_eq!(s.timers.deadline(key), None);
}

#[test]
fn probes_gate_readiness_then_an_unhealthy_streak_stops_the_service() {
    // Readiness: starting until the first pass. Then FailureThreshold failed
    // probes in a row stop it (KillSignal to its group) to be restarted.
    let (mut s, mut sys, t0) = setup(&[(
        "web",
        "[service]\nExecStart = \"w\"\n[health]\nTcp = \"127.0.0.1:8080\"\nIntervalSec = 1\nStartIntervalSec = 1\nTimeoutSec = 0.5\nFailureThreshold = 2\n",
    )]);
    start(&mut s, &mut sys, Some(1), &["web"], t0);
    assert_eq!(state(&s, "web"), StateName::Starting);
    let pid = sys.pid_of("web");
    let mut now = t0;
    let probe = |s: &mut Supervisor, sys: &mut FakeSys, ok: bool, now: &mut Instant| {
        *now = s.poll_timeout().expect("a probe is armed");
        s.handle(Input::Tick, *now);
        pass(s, *now, sys);
        let (id, gen) = take_probe(s).expect("a probe is asked for");
        let outcome = if ok {
            Ok("connected".into())
        } else {
            Err("refused".into())
        };
        s.handle(Input::ProbeDone { id, gen, outcome }, *now);
        pass(s, *now, sys);
    };
    probe(&mut s, &mut sys, true, &mut now);
    assert_eq!(state(&s, "web"), StateName::Running);
    assert_eq!(job_reply(&mut s).len(), 1, "start answered once up");
    probe(&mut s, &mut sys, false, &mut now);
    assert_eq!(state(&s, "web"), StateName::Running);
    assert!(sys.signals.is_empty());
    probe(&mut s, &mut sys, false, &mut now);
    assert_eq!(state(&s, "web"), StateName::Stopping);
    assert_eq!(sys.signals, vec![(pid, Signal::SIGTERM)]);
    let info = s.info(s.id_of("web").unwrap(), now);
    assert_eq!(info.health.as_deref(), None, "no verdict while stopping");
}

#[test]
fn a_unit_without_health_arms_no_timer() {
    // Running without [health]: nothing to wake up for.
    let (mut s, mut sys, t0) = setup(&[("a", SIMPLE)]);
    start(&mut s, &mut sys, Some(1), &["a"], t0);
    assert_eq!(state(&s, "a"), StateName::Running);
    assert_eq!(s.poll_timeout(), None);
}

#[test]
fn wall_times_come_from_the_loops_reading_not_a_clock() {
    // The supervisor reads no clock: a wall time is the loop's last reading
    // moved by the monotonic time since it (0 before any reading).
    let mut s = sup(&[]);
    let t0 = Instant::now();
    assert_eq!(s.wall_ms(t0), 0);
    let read_at = t0 + Duration::from_millis(250);
    s.set_wall_clock(read_at, 1_000_000);
    assert_eq!(s.wall_ms(read_at + Duration::from_millis(1500)), 1_001_500);
    assert_eq!(s.wall_ms(read_at), 1_000_000);
    assert_eq!(s.wall_ms(t0), 999_750);
}
