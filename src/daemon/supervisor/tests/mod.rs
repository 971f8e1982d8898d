//! The supervisor driven with a fake system and fake time, asserting on
//! effects, replies and states.

use super::*;
use crate::unit::{self, LoadedDir};
use std::path::Path;
use std::time::Duration;

/// Records what the supervisor asked of the system; pids count up from 1000.
#[derive(Default)]
struct FakeSys {
    next_pid: i32,
    spawned: Vec<(String, Role, Pid)>,
    signals: Vec<(Pid, Signal)>,
    /// Groups sent SIGCONT (after every stop signal; kept apart so the
    /// tests assert on the signals that decide things).
    conts: Vec<Pid>,
    /// Processes the supervisor asked to watch.
    watched: Vec<Pid>,
    alive_groups: BTreeSet<i32>,
    fail_spawn: BTreeSet<String>,
    /// Main processes come back Forked: their exec outcome is an input.
    forks: bool,
    /// Processes that moved to another (group, session) since spawned.
    moved: HashMap<i32, (i32, i32)>,
    /// Groups in `alive_groups` whose leader is dead (only members left).
    dead_leaders: BTreeSet<i32>,
    /// What `group_rss` answers.
    rss: Option<u64>,
    /// Groups of processes that escaped a unit's group but carry its tag
    /// (what a look for strays finds while they are in `alive_groups`).
    strays: HashMap<String, Vec<i32>>,
    /// Looks for strays asked for.
    stray_looks: usize,
    /// Looks for leftovers to watch asked for.
    leftover_looks: usize,
    /// Leftovers cannot get a pidfd (the supervisor must poll).
    no_pidfds: bool,
}

impl Sys for FakeSys {
    fn spawn(&mut self, unit: &Unit, role: Role) -> Result<Started, SpawnError> {
        if self.fail_spawn.contains(&unit.name) {
            return Err(SpawnError::NotFound {
                program: "nope".into(),
                in_path: true,
            });
        }
        self.next_pid += 1;
        let pid = Pid::from_raw(1000 + self.next_pid);
        self.spawned.push((unit.name.clone(), role, pid));
        self.alive_groups.insert(pid.as_raw());
        Ok(match self.forks && role == Role::Main {
            true => Started::Forked(pid),
            false => Started::Running(pid),
        })
    }
    fn group_alive(&mut self, pgid: Pid) -> bool {
        self.alive_groups.contains(&pgid.as_raw())
    }
    fn process_groups(&mut self, pid: Pid) -> Option<(Pid, Pid)> {
        if let Some(&(g, s)) = self.moved.get(&pid.as_raw()) {
            return Some((Pid::from_raw(g), Pid::from_raw(s)));
        }
        self.alive_groups
            .contains(&pid.as_raw())
            .then_some((pid, pid))
    }
    fn start_time(&mut self, pid: Pid) -> Option<u64> {
        if self.dead_leaders.contains(&pid.as_raw()) {
            return None;
        }
        self.alive_groups
            .contains(&pid.as_raw())
            .then_some(pid.as_raw() as u64 * 10)
    }
    fn group_rss(&mut self, _groups: &[Pid]) -> Option<u64> {
        self.rss
    }
}

impl FakeSys {
    fn pid_of(&self, name: &str) -> Pid {
        self.spawned
            .iter()
            .rev()
            .find(|(n, r, _)| n == name && *r == Role::Main)
            .unwrap()
            .2
    }
    fn order(&self) -> Vec<&str> {
        self.spawned.iter().map(|(n, _, _)| n.as_str()).collect()
    }
}

/// A supervisor over in-memory unit files: (name, toml).
fn sup(units: &[(&str, &str)]) -> Supervisor {
    let dir = Path::new("/srv/units");
    let mut loaded = LoadedDir::default();
    for (name, text) in units {
        let path = dir.join(format!("{name}.service"));
        loaded
            .units
            .insert((*name).to_owned(), unit::parse(name, &path, text, dir));
    }
    Supervisor::new(loaded, dir.to_path_buf(), PathBuf::from("/tmp/logs"), 1)
}

const SIMPLE: &str = "[service]\nExecStart = \"sleep 100\"\n";
/// A unit that Requires `database`.
const WORKER: &str = "[unit]\nRequires = [\"database\"]\n[service]\nExecStart = \"w\"\n";

fn state(s: &Supervisor, name: &str) -> StateName {
    s.entries[s.id_of(name).unwrap()].state_name()
}

/// Simulates the process exiting (its group dies with it).
/// One pass of the loop: run, then carry out the signals and watches
/// the way the loop would (into the fake system); replies stay queued.
fn pass(s: &mut Supervisor, now: Instant, sys: &mut FakeSys) {
    loop {
        s.run(now, sys);
        let mut kept = VecDeque::new();
        let mut fed = false;
        while let Some(effect) = s.poll_effect() {
            match effect {
                Effect::Signal {
                    pgid,
                    signal: Signal::SIGCONT,
                } => sys.conts.push(pgid),
                Effect::Signal { pgid, signal } => sys.signals.push((pgid, signal)),
                Effect::Watch(pid) => sys.watched.push(pid),
                // The fake system finds a new main process at the first look.
                Effect::ScanMainPid { id, scan, .. } => {
                    sys.next_pid += 1;
                    let pid = Pid::from_raw(1000 + sys.next_pid);
                    sys.alive_groups.insert(pid.as_raw());
                    let found = MainPidFound {
                        pid,
                        pgid: pid,
                        start_time: sys.start_time(pid),
                        groups: sys.process_groups(pid),
                    };
                    let outcome = Some(Ok(found));
                    s.handle(Input::MainPidScanned { id, scan, outcome }, now);
                    fed = true;
                }
                // Every leftover gets a pidfd unless the test says not.
                Effect::WatchLeftovers { id, .. } => {
                    sys.leftover_looks += 1;
                    let complete = !sys.no_pidfds;
                    let zombies = false;
                    s.handle(
                        Input::LeftoversWatched {
                            id,
                            complete,
                            zombies,
                        },
                        now,
                    );
                    fed = true;
                }
                Effect::ScanStrays { units, .. } => {
                    sys.stray_looks += 1;
                    let found = units
                        .iter()
                        .map(|u| {
                            let groups = sys.strays.get(&u.unit).cloned().unwrap_or_default();
                            let alive = groups
                                .into_iter()
                                .filter(|g| sys.alive_groups.contains(g))
                                .map(Pid::from_raw)
                                .collect();
                            (u.id, alive)
                        })
                        .collect();
                    s.handle(Input::StraysScanned(found), now);
                    fed = true;
                }
                other => kept.push_back(other),
            }
        }
        s.effects = kept;
        if !fed {
            break;
        }
    }
}

fn exit(s: &mut Supervisor, sys: &mut FakeSys, pid: Pid, kind: ExitKind, now: Instant) {
    sys.alive_groups.remove(&pid.as_raw());
    s.child_exited(pid, kind);
    pass(s, now, sys);
}

fn names(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn requires_pulls_in_and_orders_the_dependency() {
    // Starting worker starts database first, and the job answers once both are up.
    let mut s = sup(&[("database", SIMPLE), ("worker", WORKER)]);
    let mut sys = FakeSys::default();
    let t0 = Instant::now();
    assert_eq!(
        s.request(Some(7), Request::Start(names(&["worker"])), t0),
        None
    );
    pass(&mut s, t0, &mut sys);
    assert_eq!(sys.order(), ["database", "worker"]);
    assert_eq!(state(&s, "worker"), StateName::Running);
    let replies = s.take_replies();
    assert_eq!(replies.len(), 1);
    assert_eq!(replies[0].0, 7);
    assert!(matches!(&replies[0].1, Response::Job(r) if r[0].ok && r[0].name == "worker"));
}

#[test]
fn dependent_waits_for_a_oneshot_to_finish() {
    // A unit After a oneshot spawns only once the oneshot exited 0.
    let mut s = sup(&[
        (
            "migrate",
            "[service]\nType = \"oneshot\"\nExecStart = \"m\"\n",
        ),
        (
            "web",
            "[unit]\nRequires = [\"migrate\"]\n[service]\nExecStart = \"w\"\n",
        ),
    ]);
    let mut sys = FakeSys::default();
    let t0 = Instant::now();
    s.request(Some(1), Request::Start(names(&["web"])), t0);
    pass(&mut s, t0, &mut sys);
    assert_eq!(sys.order(), ["migrate"]);
    assert_eq!(state(&s, "web"), StateName::Waiting);
    let pid = sys.pid_of("migrate");
    exit(&mut s, &mut sys, pid, ExitKind::Code(0), t0);
    assert_eq!(sys.order(), ["migrate", "web"]);
    assert_eq!(state(&s, "migrate"), StateName::Exited);
    assert_eq!(state(&s, "web"), StateName::Running);
}

#[test]
fn independent_units_start_in_the_same_pass() {
    // Units with no ordering between them are all spawned at once.
    let mut s = sup(&[("a", SIMPLE), ("b", SIMPLE), ("c", SIMPLE)]);
    let mut sys = FakeSys::default();
    let t0 = Instant::now();
    s.request(Some(1), Request::Start(names(&["a", "b", "c"])), t0);
    pass(&mut s, t0, &mut sys);
    assert_eq!(sys.spawned.len(), 3);
    assert_eq!(s.take_replies().len(), 1);
}

#[test]
fn failed_requirement_fails_the_dependent_and_the_job() {
    // A required unit that cannot spawn fails its dependent with "dependency X failed".
    let mut s = sup(&[("database", SIMPLE), ("worker", WORKER)]);
    let mut sys = FakeSys {
        fail_spawn: ["database".to_owned()].into(),
        ..Default::default()
    };
    let t0 = Instant::now();
    s.request(Some(1), Request::Start(names(&["worker"])), t0);
    pass(&mut s, t0, &mut sys);
    assert_eq!(state(&s, "worker"), StateName::Failed);
    let info = s.info(s.id_of("worker").unwrap(), t0);
    assert_eq!(info.reason.as_deref(), Some("dependency database failed"));
    let replies = s.take_replies();
    assert!(matches!(&replies[0].1, Response::Job(r) if !r[0].ok));
}

#[test]
fn failed_want_does_not_block_the_wanter() {
    // A Wants dependency that fails is tolerated.
    let mut s = sup(&[
        ("cache", SIMPLE),
        (
            "web",
            "[unit]\nWants = [\"cache\"]\n[service]\nExecStart = \"w\"\n",
        ),
    ]);
    let mut sys = FakeSys {
        fail_spawn: ["cache".to_owned()].into(),
        ..Default::default()
    };
    let t0 = Instant::now();
    s.request(Some(1), Request::Start(names(&["web"])), t0);
    pass(&mut s, t0, &mut sys);
    assert_eq!(state(&s, "cache"), StateName::Failed);
    assert_eq!(state(&s, "web"), StateName::Running);
}

#[test]
fn stop_takes_down_requirers_first() {
    // Stopping database signals worker first and database only once worker is gone.
    let mut s = sup(&[("database", SIMPLE), ("worker", WORKER)]);
    let mut sys = FakeSys::default();
    let t0 = Instant::now();
    s.request(Some(1), Request::Start(names(&["worker"])), t0);
    pass(&mut s, t0, &mut sys);
    s.take_replies();
    let (db, w) = (sys.pid_of("database"), sys.pid_of("worker"));
    s.request(Some(2), Request::Stop(names(&["database"])), t0);
    pass(&mut s, t0, &mut sys);
    assert_eq!(sys.signals, [(w, Signal::SIGTERM)]);
    exit(&mut s, &mut sys, w, ExitKind::Signal(Signal::SIGTERM), t0);
    assert_eq!(sys.signals, [(w, Signal::SIGTERM), (db, Signal::SIGTERM)]);
    assert!(
        s.take_replies().is_empty(),
        "the stop job waits for database"
    );
    exit(&mut s, &mut sys, db, ExitKind::Signal(Signal::SIGTERM), t0);
    assert_eq!(state(&s, "database"), StateName::Inactive);
    assert_eq!(state(&s, "worker"), StateName::Inactive);
    assert_eq!(s.take_replies().len(), 1);
}

#[test]
fn stop_waits_for_the_whole_process_group() {
    // The stop job answers only once leftovers in the group are gone.
    let mut s = sup(&[("a", SIMPLE)]);
    let mut sys = FakeSys::default();
    let t0 = Instant::now();
    s.request(None, Request::Start(names(&["a"])), t0);
    pass(&mut s, t0, &mut sys);
    let pid = sys.pid_of("a");
    s.request(Some(3), Request::Stop(names(&["a"])), t0);
    pass(&mut s, t0, &mut sys);
    // The main process dies but a child in its group lives on.
    s.child_exited(pid, ExitKind::Signal(Signal::SIGTERM));
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
    let mut s = sup(&[("a", SIMPLE)]);
    let mut sys = FakeSys::default();
    let t0 = Instant::now();
    s.request(None, Request::Start(names(&["a"])), t0);
    pass(&mut s, t0, &mut sys);
    let pid = sys.pid_of("a");
    sys.alive_groups.insert(7777);
    sys.strays.insert("a".to_owned(), vec![7777]);
    s.request(Some(3), Request::Stop(names(&["a"])), t0);
    pass(&mut s, t0, &mut sys);
    exit(&mut s, &mut sys, pid, ExitKind::Signal(Signal::SIGTERM), t0);
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
        s.request(None, Request::Start(names(&["a"])), t0);
        pass(&mut s, t0, &mut sys);
        let pid = sys.pid_of("a");
        s.request(Some(3), Request::Stop(names(&["a"])), t0);
        pass(&mut s, t0, &mut sys);
        // The main process dies; a member of its group lives on.
        s.child_exited(pid, ExitKind::Signal(Signal::SIGTERM));
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
fn failing_requirement_takes_running_dependents_down() {
    // A required unit that ends failed stops its running dependents with the reason.
    let mut s = sup(&[
        (
            "database",
            "[service]\nExecStart = \"d\"\nRestart = \"no\"\n",
        ),
        ("worker", WORKER),
    ]);
    let mut sys = FakeSys::default();
    let t0 = Instant::now();
    s.request(None, Request::Start(names(&["worker"])), t0);
    pass(&mut s, t0, &mut sys);
    let (db, w) = (sys.pid_of("database"), sys.pid_of("worker"));
    exit(&mut s, &mut sys, db, ExitKind::Code(1), t0);
    assert!(sys.signals.contains(&(w, Signal::SIGTERM)));
    exit(&mut s, &mut sys, w, ExitKind::Signal(Signal::SIGTERM), t0);
    let info = s.info(s.id_of("worker").unwrap(), t0);
    assert_eq!(info.state, StateName::Failed);
    assert_eq!(info.reason.as_deref(), Some("dependency database failed"));
}

#[test]
fn restarting_requirement_leaves_dependents_running() {
    // A dependency that merely restarts does not touch its dependents.
    let mut s = sup(&[
        (
            "database",
            "[service]\nExecStart = \"d\"\nRestart = \"always\"\nRestartSec = 0\n",
        ),
        ("worker", WORKER),
    ]);
    let mut sys = FakeSys::default();
    let t0 = Instant::now();
    s.request(None, Request::Start(names(&["worker"])), t0);
    pass(&mut s, t0, &mut sys);
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
    let mut s = sup(&[("database", SIMPLE), ("worker", WORKER)]);
    let mut sys = FakeSys::default();
    let t0 = Instant::now();
    s.request(None, Request::Start(names(&["worker"])), t0);
    pass(&mut s, t0, &mut sys);
    let (db, w) = (sys.pid_of("database"), sys.pid_of("worker"));
    s.request(Some(4), Request::Restart(names(&["database"])), t0);
    pass(&mut s, t0, &mut sys);
    exit(&mut s, &mut sys, w, ExitKind::Signal(Signal::SIGTERM), t0);
    exit(&mut s, &mut sys, db, ExitKind::Signal(Signal::SIGTERM), t0);
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
    let mut s = sup(&[("database", SIMPLE), ("worker", WORKER), ("other", SIMPLE)]);
    let mut sys = FakeSys::default();
    let t0 = Instant::now();
    s.request(None, Request::Start(names(&["worker", "other"])), t0);
    pass(&mut s, t0, &mut sys);
    let (db, w, o) = (
        sys.pid_of("database"),
        sys.pid_of("worker"),
        sys.pid_of("other"),
    );
    s.request(Some(9), Request::Kill, t0);
    pass(&mut s, t0, &mut sys);
    let signalled: Vec<Pid> = sys.signals.iter().map(|(p, _)| *p).collect();
    assert!(signalled.contains(&w) && signalled.contains(&o) && !signalled.contains(&db));
    for pid in [w, o, db] {
        exit(&mut s, &mut sys, pid, ExitKind::Signal(Signal::SIGTERM), t0);
    }
    assert!(s.exiting);
    assert_eq!(s.take_replies(), [(9, Response::Bye)]);
}

#[test]
fn invalid_units_are_listed_and_refused() {
    // A unit that does not parse shows as invalid and cannot be started; others can.
    let mut s = sup(&[("bad", "[service]\nRestrat = \"no\"\n"), ("good", SIMPLE)]);
    let mut sys = FakeSys::default();
    let t0 = Instant::now();
    assert_eq!(state(&s, "bad"), StateName::Invalid);
    let resp = s.request(Some(1), Request::Start(names(&["bad"])), t0);
    assert!(matches!(resp, Some(Response::Error { message, .. }) if message.contains("invalid")));
    s.request(Some(2), Request::Start(names(&["good"])), t0);
    pass(&mut s, t0, &mut sys);
    assert_eq!(state(&s, "good"), StateName::Running);
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

/// The one job reply to connection 1: (ok, state, message) per unit.
fn job_reply(s: &mut Supervisor) -> Vec<(String, bool, StateName, String)> {
    match &s.take_replies()[..] {
        [(1, Response::Job(results))] => results
            .iter()
            .map(|r| {
                (
                    r.name.clone(),
                    r.ok,
                    r.state,
                    r.message.clone().unwrap_or_default(),
                )
            })
            .collect(),
        other => panic!("expected one job reply, got {other:?}"),
    }
}

/// A oneshot that fails and is restarted after 2 s, without a start limit.
const FAILING_ONESHOT: &str = "[unit]\nStartLimitBurst = 0\n[service]\nType = \"oneshot\"\nExecStart = \"x\"\nRestart = \"on-failure\"\nRestartSec = 2\n";

#[test]
fn start_fails_at_the_first_failed_attempt_while_restarts_go_on() {
    // The job answers "failed" at the first failed attempt; the unit keeps restarting.
    let mut s = sup(&[("mig", FAILING_ONESHOT)]);
    let mut sys = FakeSys::default();
    let t0 = Instant::now();
    s.request(Some(1), Request::Start(names(&["mig"])), t0);
    pass(&mut s, t0, &mut sys);
    assert!(s.take_replies().is_empty(), "still starting");
    let t1 = t0 + Duration::from_secs(1);
    let pid = sys.pid_of("mig");
    exit(&mut s, &mut sys, pid, ExitKind::Code(3), t1);
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
    let mut s = sup(&[(
        "n",
        "[service]\nType = \"notify\"\nExecStart = \"x\"\nTimeoutStartSec = 1\n",
    )]);
    let mut sys = FakeSys::default();
    let t0 = Instant::now();
    s.request(Some(1), Request::Start(names(&["n"])), t0);
    pass(&mut s, t0, &mut sys);
    let t1 = t0 + Duration::from_secs(1);
    s.timers_expired(t1);
    pass(&mut s, t1, &mut sys);
    assert!(s.take_replies().is_empty(), "stopping the attempt first");
    let pid = sys.pid_of("n");
    exit(&mut s, &mut sys, pid, ExitKind::Signal(Signal::SIGTERM), t1);
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
    let mut s = sup(&[("mig", FAILING_ONESHOT)]);
    let mut sys = FakeSys::default();
    let t0 = Instant::now();
    s.request(None, Request::Start(names(&["mig"])), t0);
    pass(&mut s, t0, &mut sys);
    let pid = sys.pid_of("mig");
    exit(&mut s, &mut sys, pid, ExitKind::Code(1), t0);
    assert_eq!(state(&s, "mig"), StateName::Restarting);
    s.request(Some(1), Request::Restart(names(&["mig"])), t0);
    pass(&mut s, t0, &mut sys);
    assert!(s.take_replies().is_empty(), "the new attempt runs");
    assert_eq!(sys.order(), ["mig", "mig"]);
    let pid = sys.pid_of("mig");
    exit(&mut s, &mut sys, pid, ExitKind::Code(2), t0);
    let reply = job_reply(&mut s);
    assert!(!reply[0].1);
    assert!(reply[0].3.starts_with("exited with code 2; restarting"));
}

#[test]
fn a_failed_attempt_of_a_required_unit_fails_the_start_of_its_dependent() {
    // worker waits for database in the background; the job names database and why.
    let mut s = sup(&[
        ("database", FAILING_ONESHOT),
        ("worker", WORKER),
        ("ok", SIMPLE),
    ]);
    let mut sys = FakeSys::default();
    let t0 = Instant::now();
    s.request(Some(1), Request::Start(names(&["ok", "worker"])), t0);
    pass(&mut s, t0, &mut sys);
    let pid = sys.pid_of("database");
    exit(&mut s, &mut sys, pid, ExitKind::Code(1), t0);
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
    let mut s = sup(&[
        ("cache", FAILING_ONESHOT),
        (
            "web",
            "[unit]\nWants = [\"cache\"]\n[service]\nExecStart = \"w\"\n",
        ),
    ]);
    let mut sys = FakeSys::default();
    let t0 = Instant::now();
    s.request(Some(1), Request::Start(names(&["web"])), t0);
    pass(&mut s, t0, &mut sys);
    let pid = sys.pid_of("cache");
    exit(&mut s, &mut sys, pid, ExitKind::Code(1), t0);
    assert_eq!(state(&s, "web"), StateName::Running);
    let reply = job_reply(&mut s);
    assert!(reply[0].1, "{reply:?}");
    assert_eq!(state(&s, "cache"), StateName::Restarting);
}

#[test]
fn notify_as_another_user_is_spawned() {
    // Type=notify with another User= is spawned like any other (the notify
    // socket of a root daemon is out of the home, open to every user).
    let mut s = sup(&[
        (
            "pg",
            "[service]\nType = \"notify\"\nUser = \"postgres\"\nExecStart = \"x\"\n",
        ),
        (
            "mine",
            "[service]\nType = \"notify\"\nUser = \"me\"\nExecStart = \"x\"\n",
        ),
    ]);
    let mut sys = FakeSys::default();
    let t0 = Instant::now();
    s.request(Some(1), Request::Start(names(&["pg", "mine"])), t0);
    pass(&mut s, t0, &mut sys);
    let mut order = sys.order();
    order.sort();
    assert_eq!(order, ["mine", "pg"], "both are spawned");
    assert_eq!(state(&s, "pg"), StateName::Starting);
}

#[test]
fn unknown_unit_names_are_an_error() {
    // Naming a unit that does not exist is answered at once.
    let mut s = sup(&[("a", SIMPLE)]);
    let resp = s.request(Some(1), Request::Stop(names(&["nope"])), Instant::now());
    assert!(matches!(resp, Some(Response::Error { message, .. }) if message.contains("`nope`")));
}

#[test]
fn notify_service_is_up_only_after_ready() {
    // A notify unit's dependents and start job wait for READY=1 from its process group.
    let mut s = sup(&[
        ("n", "[service]\nType = \"notify\"\nExecStart = \"x\"\n"),
        (
            "d",
            "[unit]\nRequires = [\"n\"]\n[service]\nExecStart = \"y\"\n",
        ),
    ]);
    let mut sys = FakeSys::default();
    let t0 = Instant::now();
    s.request(Some(1), Request::Start(names(&["d"])), t0);
    pass(&mut s, t0, &mut sys);
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
    let mut s = sup(&[("f", "[service]\nType = \"forking\"\nExecStart = \"x\"\n")]);
    let mut sys = FakeSys::default();
    let t0 = Instant::now();
    s.request(Some(1), Request::Start(names(&["f"])), t0);
    pass(&mut s, t0, &mut sys);
    let starter = sys.pid_of("f");
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
fn stopping_a_forking_service_reaches_the_group_its_main_process_moved_to() {
    // A forking daemon that called setsid after it was found is signalled in its real group, and the stop waits for that group.
    let mut s = sup(&[("f", "[service]\nType = \"forking\"\nExecStart = \"x\"\n")]);
    let mut sys = FakeSys::default();
    let t0 = Instant::now();
    s.request(Some(1), Request::Start(names(&["f"])), t0);
    pass(&mut s, t0, &mut sys);
    let starter = sys.pid_of("f");
    exit(&mut s, &mut sys, starter, ExitKind::Code(0), t0);
    let main = Pid::from_raw(s.info(0, t0).pid.unwrap() as i32);
    // It left the group it was found in for a session of its own (nginx).
    sys.moved.insert(main.as_raw(), (5000, 5000));
    sys.alive_groups.insert(5000);
    s.request(Some(2), Request::Stop(names(&["f"])), t0);
    pass(&mut s, t0, &mut sys);
    assert!(
        sys.signals
            .contains(&(Pid::from_raw(5000), Signal::SIGTERM)),
        "{:?}",
        sys.signals
    );
    exit(
        &mut s,
        &mut sys,
        main,
        ExitKind::Signal(Signal::SIGTERM),
        t0,
    );
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

mod adopt_reload;

#[test]
fn looking_for_a_main_pid_is_an_effect_and_a_timer_until_it_settles() {
    // The search never waits: each look is a ScanMainPid effect; "not yet"
    // arms the MainPidScan timer for the next look, and a failure fails the
    // service.
    let mut s = sup(&[("f", "[service]\nType = \"forking\"\nExecStart = \"x\"\n")]);
    let mut sys = FakeSys::default();
    let t0 = Instant::now();
    s.request(Some(1), Request::Start(names(&["f"])), t0);
    pass(&mut s, t0, &mut sys);
    let starter = sys.pid_of("f");
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
            outcome: Some(Err("2 processes were left".into())),
        },
        t1,
    );
    s.run(t1, &mut sys);
    assert_eq!(state(&s, "f"), StateName::Failed);
    assert_eq!(
        s.info(0, t1).reason.as_deref(),
        Some("cannot find the main process: 2 processes were left")
    );
}

#[test]
fn starting_a_unit_stops_what_conflicts_with_it_first() {
    // a Conflicts b; c Requires b. Starting a stops c, then b, and spawns a
    // only once b is gone; the start job answers once a is up.
    let conflicts = "[unit]\nConflicts = [\"b\"]\n[service]\nExecStart = \"a\"\n";
    let needs_b = "[unit]\nRequires = [\"b\"]\n[service]\nExecStart = \"c\"\n";
    let mut s = sup(&[("a", conflicts), ("b", SIMPLE), ("c", needs_b)]);
    let mut sys = FakeSys::default();
    let t0 = Instant::now();
    s.request(Some(1), Request::Start(names(&["c"])), t0);
    pass(&mut s, t0, &mut sys);
    s.take_replies();
    let (b, c) = (sys.pid_of("b"), sys.pid_of("c"));
    s.request(Some(2), Request::Start(names(&["a"])), t0);
    pass(&mut s, t0, &mut sys);
    assert_eq!(sys.signals, [(c, Signal::SIGTERM)]);
    exit(&mut s, &mut sys, c, ExitKind::Signal(Signal::SIGTERM), t0);
    assert_eq!(sys.signals, [(c, Signal::SIGTERM), (b, Signal::SIGTERM)]);
    assert_eq!(sys.order(), ["b", "c"], "a spawned while b still runs");
    exit(&mut s, &mut sys, b, ExitKind::Signal(Signal::SIGTERM), t0);
    assert_eq!(sys.order(), ["b", "c", "a"]);
    assert_eq!(state(&s, "a"), StateName::Running);
    assert_eq!(state(&s, "b"), StateName::Inactive);
    assert_eq!(state(&s, "c"), StateName::Inactive);
    assert_eq!(s.take_replies().len(), 1);
    // The other direction: b (which names nothing) stops a.
    let a = sys.pid_of("a");
    s.request(Some(3), Request::Start(names(&["b"])), t0);
    pass(&mut s, t0, &mut sys);
    assert_eq!(sys.signals.last(), Some(&(a, Signal::SIGTERM)));
    exit(&mut s, &mut sys, a, ExitKind::Signal(Signal::SIGTERM), t0);
    assert_eq!(state(&s, "b"), StateName::Running);
}

#[test]
fn a_scoped_reload_touches_only_the_named_units() {
    // Load(["new"]): the new unit appears, a changed file of another unit
    // and a vanished one are left as they are.
    let mut s = sup(&[("old", SIMPLE), ("gone", SIMPLE)]);
    let dir = Path::new("/srv/units");
    let mut loaded = LoadedDir::default();
    for (name, text) in [
        ("old", "[service]\nExecStart = \"changed\"\n"),
        ("new", SIMPLE),
    ] {
        let path = dir.join(format!("{name}.service"));
        loaded
            .units
            .insert(name.to_owned(), unit::parse(name, &path, text, dir));
    }
    let report = s.reload_scoped(loaded, Some(&names(&["new"])));
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
    let mut s = sup(&[("web", SIMPLE)]);
    let mut sys = FakeSys::default();
    let t0 = Instant::now();
    s.request(None, Request::Start(names(&["web"])), t0);
    pass(&mut s, t0, &mut sys);
    let dir = Path::new("/srv/units");
    let mut loaded = LoadedDir::default();
    let path = dir.join("web.service");
    let text = "[service]\nExecStart = \"changed\"\n";
    loaded
        .units
        .insert("web".to_owned(), unit::parse("web", &path, text, dir));
    let report = s.reload_scoped(loaded, Some(&names(&["web"])));
    assert_eq!(report.changed, ["web"]);
    pass(&mut s, t0, &mut sys);
    assert!(sys.signals.is_empty(), "the load restarted web itself");
    let old = sys.pid_of("web");
    s.request(Some(1), Request::Restart(names(&["web"])), t0);
    pass(&mut s, t0, &mut sys);
    exit(&mut s, &mut sys, old, ExitKind::Signal(Signal::SIGTERM), t0);
    assert_eq!(sys.order(), ["web", "web"]);
    let e = &s.entries[s.id_of("web").unwrap()];
    assert_eq!(e.unit.as_ref().unwrap().exec_start, ["changed"]);
}

#[test]
fn memory_max_checks_only_while_running_and_stops_after_two_samples_above() {
    // A check is armed only while a unit with MemoryMax runs; one sample above is tolerated, the second stops it and the policy restarts it with the reason.
    let mut s = sup(&[
        (
            "hog",
            "[service]\nExecStart = \"h\"\nMemoryMax = \"100M\"\nMemoryCheckSec = 1\n",
        ),
        ("plain", SIMPLE),
    ]);
    let mut sys = FakeSys::default();
    let t0 = Instant::now();
    let sec = Duration::from_secs(1);
    s.request(None, Request::Start(names(&["plain"])), t0);
    pass(&mut s, t0, &mut sys);
    assert_eq!(state(&s, "plain"), StateName::Running);
    assert_eq!(s.poll_timeout(), None, "no memory watch without MemoryMax");
    s.request(None, Request::Start(names(&["hog"])), t0);
    pass(&mut s, t0, &mut sys);
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
    exit(
        &mut s,
        &mut sys,
        pid,
        ExitKind::Signal(Signal::SIGTERM),
        t0 + 3 * sec,
    );
    assert_eq!(state(&s, "hog"), StateName::Restarting);
    let reason = s.status(s.id_of("hog").unwrap(), t0 + 3 * sec).info.reason;
    assert_eq!(reason.as_deref(), Some("memory limit: RSS 200M > 100M"));
    // Not running: no memory check is armed (only the restart delay).
    let key = TimerKey::Service(s.id_of("hog").unwrap(), ServiceTimer::MemoryCheck);
    assert_eq!(s.timers.deadline(key), None);
}

#[test]
fn why_follows_a_waiting_unit_to_a_restarting_dependency() {
    // worker waits for database, which crashed and restarts in 5s: `why`
    // names both, with the delay and the attempt, and is not up.
    let mut s = sup(&[
        (
            "database",
            "[service]\nType = \"notify\"\nExecStart = \"d\"\nRestartSec = 5\n",
        ),
        ("worker", WORKER),
    ]);
    let mut sys = FakeSys::default();
    let t0 = Instant::now();
    s.request(Some(1), Request::Start(names(&["worker"])), t0);
    pass(&mut s, t0, &mut sys);
    let pid = sys.pid_of("database");
    exit(&mut s, &mut sys, pid, ExitKind::Code(3), t0);
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
fn wait_answers_when_the_unit_is_up_or_its_deadline_passes() {
    // A wait is answered by the pass that brings the unit up; another one
    // by its timer, naming the state it is still in.
    let mut s = sup(&[("db", "[service]\nType = \"notify\"\nExecStart = \"d\"\n")]);
    let mut sys = FakeSys::default();
    let t0 = Instant::now();
    s.request(Some(1), Request::Start(names(&["db"])), t0);
    pass(&mut s, t0, &mut sys);
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
fn probes_gate_readiness_then_an_unhealthy_streak_stops_the_service() {
    // Readiness: starting until the first pass. Then FailureThreshold failed
    // probes in a row stop it (KillSignal to its group) to be restarted.
    let mut s = sup(&[(
        "web",
        "[service]\nExecStart = \"w\"\n[health]\nTcp = \"127.0.0.1:8080\"\nIntervalSec = 1\nStartIntervalSec = 1\nTimeoutSec = 0.5\nFailureThreshold = 2\n",
    )]);
    let mut sys = FakeSys::default();
    let t0 = Instant::now();
    s.request(Some(1), Request::Start(names(&["web"])), t0);
    pass(&mut s, t0, &mut sys);
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
    let mut s = sup(&[("a", SIMPLE)]);
    let mut sys = FakeSys::default();
    let t0 = Instant::now();
    s.request(Some(1), Request::Start(names(&["a"])), t0);
    pass(&mut s, t0, &mut sys);
    assert_eq!(state(&s, "a"), StateName::Running);
    assert_eq!(s.poll_timeout(), None);
}

#[test]
fn mainpid_moves_the_main_process_within_the_group_only() {
    // MAINPID= of a process in the service's group makes it the main one:
    // the old main's exit is then nobody's, the new one's is the service's
    // (and it is watched). A process of another group is refused.
    let mut s = sup(&[("n", "[service]\nType = \"notify\"\nExecStart = \"x\"\n")]);
    let mut sys = FakeSys::default();
    let t0 = Instant::now();
    s.request(Some(1), Request::Start(names(&["n"])), t0);
    pass(&mut s, t0, &mut sys);
    let starter = sys.pid_of("n");
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
fn a_forked_main_process_is_up_only_once_its_exec_is_done() {
    // Started::Forked: the unit stays starting (spawn in flight) and the
    // start job unanswered until ExecDone; a Stop meanwhile waits for it.
    let mut s = sup(&[("a", SIMPLE), ("b", SIMPLE), ("c", SIMPLE)]);
    let mut sys = FakeSys {
        forks: true,
        ..FakeSys::default()
    };
    let t0 = Instant::now();
    s.request(Some(1), Request::Start(names(&["a", "b"])), t0);
    pass(&mut s, t0, &mut sys);
    assert_eq!(sys.spawned.len(), 2);
    assert_eq!(state(&s, "a"), StateName::Starting);
    assert!(s.take_replies().is_empty());
    let a = sys.pid_of("a");
    s.handle(
        Input::ExecDone {
            pid: a,
            outcome: Ok(()),
        },
        t0,
    );
    pass(&mut s, t0, &mut sys);
    assert_eq!(state(&s, "a"), StateName::Running);
    assert!(s.take_replies().is_empty(), "b is still in flight");
    let b = sys.pid_of("b");
    s.handle(
        Input::ExecDone {
            pid: b,
            outcome: Ok(()),
        },
        t0,
    );
    pass(&mut s, t0, &mut sys);
    assert!(matches!(&s.take_replies()[..], [(1, Response::Job(r))] if r.iter().all(|r| r.ok)));
    // A stop while the exec is under way is carried out once it is done.
    s.request(Some(2), Request::Start(names(&["c"])), t0);
    pass(&mut s, t0, &mut sys);
    let c = sys.pid_of("c");
    s.request(Some(3), Request::Stop(names(&["c"])), t0);
    pass(&mut s, t0, &mut sys);
    assert!(sys.signals.is_empty());
    s.handle(
        Input::ExecDone {
            pid: c,
            outcome: Ok(()),
        },
        t0,
    );
    pass(&mut s, t0, &mut sys);
    assert_eq!(sys.signals, [(c, Signal::SIGTERM)]);
}

#[test]
fn an_exec_that_fails_late_fails_the_unit_and_the_start() {
    // ExecDone(Err) is a spawn failure, reported by `start`; the child's
    // exit (127) that follows belongs to no one.
    let mut s = sup(&[("a", SIMPLE)]);
    let mut sys = FakeSys {
        forks: true,
        ..FakeSys::default()
    };
    let t0 = Instant::now();
    s.request(Some(1), Request::Start(names(&["a"])), t0);
    pass(&mut s, t0, &mut sys);
    let pid = sys.pid_of("a");
    let err = SpawnError::NotFound {
        program: "nope".into(),
        in_path: true,
    };
    s.handle(
        Input::ExecDone {
            pid,
            outcome: Err(err),
        },
        t0,
    );
    pass(&mut s, t0, &mut sys);
    assert_eq!(state(&s, "a"), StateName::Failed);
    let replies = s.take_replies();
    assert!(
        matches!(&replies[..], [(1, Response::Job(r))] if !r[0].ok && r[0].message.as_deref().is_some_and(|e| e.contains("`nope` not found in PATH"))),
        "{replies:?}"
    );
    s.handle(Input::ChildExited(pid, ExitKind::Code(127)), t0);
    pass(&mut s, t0, &mut sys);
    assert_eq!(state(&s, "a"), StateName::Failed);
}

#[test]
fn list_rows_are_the_list_columns_of_the_full_infos() {
    // Plain `list` asks for ListRows: each row is what List's UnitInfo gives for those columns
    // (a running unit, a failed one with its reason, an invalid one with its error).
    let mut s = sup(&[
        ("a", SIMPLE),
        ("b", "[service]\nExecStart = \"nope\"\n"),
        ("c", "[service]\nExecStrt = \"x\"\n"),
    ]);
    let mut sys = FakeSys::default();
    let t0 = Instant::now();
    s.request(None, Request::Start(names(&["a"])), t0);
    pass(&mut s, t0, &mut sys);
    let t1 = t0 + Duration::from_secs(90);
    let full: Vec<ListRow> = match s.request(None, Request::List, t1) {
        Some(Response::Units(u)) => u.iter().map(ListRow::from).collect(),
        other => panic!("{other:?}"),
    };
    let rows = match s.request(None, Request::ListRows, t1) {
        Some(Response::Rows(r)) => r,
        other => panic!("{other:?}"),
    };
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
