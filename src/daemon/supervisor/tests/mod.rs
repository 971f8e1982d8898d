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
    /// Main processes come back OnExec (as units with User= do).
    on_exec: bool,
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
    /// Main processes up once cloned whose exec the loop has not yet seen
    /// done: [`pass`] settles them (exec done) at its end, as the loop does.
    execs: Vec<Pid>,
    /// The test delivers every exec outcome itself ([`pass`] settles none).
    manual_execs: bool,
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
        Ok(match self.on_exec && role == Role::Main {
            true => Started::OnExec(pid),
            false => {
                if role == Role::Main {
                    self.execs.push(pid);
                }
                Started::Up(pid)
            }
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

/// In-memory unit files of /srv/units: (name, toml).
fn loaded(units: &[(&str, &str)]) -> LoadedDir {
    let dir = Path::new("/srv/units");
    let mut l = LoadedDir::default();
    for (name, text) in units {
        let path = dir.join(format!("{name}.service"));
        l.units
            .insert((*name).to_owned(), unit::parse(name, &path, text, dir));
    }
    l
}

/// A supervisor over in-memory unit files: (name, toml).
fn sup(units: &[(&str, &str)]) -> Supervisor {
    let dir = PathBuf::from("/srv/units");
    Supervisor::new(loaded(units), dir, PathBuf::from("/tmp/logs"), 1)
}

/// A supervisor over `units` (see [`sup`]), a fresh fake system and the
/// time the test starts at.
fn setup(units: &[(&str, &str)]) -> (Supervisor, FakeSys, Instant) {
    (sup(units), FakeSys::default(), Instant::now())
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
                            (u.clone(), alive)
                        })
                        .collect();
                    s.handle(Input::StraysScanned(found), now);
                    fed = true;
                }
                other => kept.push_back(other),
            }
        }
        s.effects = kept;
        if !fed && !sys.manual_execs && !sys.execs.is_empty() {
            // The execs of what the pass started are done.
            for pid in std::mem::take(&mut sys.execs) {
                let outcome = Ok(());
                s.handle(Input::ExecDone { pid, outcome }, now);
            }
            fed = true;
        }
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

/// The latest main process of `name` exits (see [`exit`]).
fn exit_main(s: &mut Supervisor, sys: &mut FakeSys, name: &str, kind: ExitKind, now: Instant) {
    let pid = sys.pid_of(name);
    exit(s, sys, pid, kind, now);
}

/// How a stopped process usually ends.
const TERM: ExitKind = ExitKind::Signal(Signal::SIGTERM);

/// A request from `conn`, then the pass it starts; what it answered at once.
fn ask(
    s: &mut Supervisor,
    sys: &mut FakeSys,
    conn: Option<ConnId>,
    req: Request,
    now: Instant,
) -> Option<Response> {
    let resp = s.request(conn, req, now);
    pass(s, now, sys);
    resp
}

/// Starts `units` for `conn` and runs the pass; what it answered at once.
fn start(
    s: &mut Supervisor,
    sys: &mut FakeSys,
    conn: Option<ConnId>,
    units: &[&str],
    now: Instant,
) -> Option<Response> {
    ask(s, sys, conn, Request::Start(names(units)), now)
}

/// Stops `units` for `conn` and runs the pass.
fn stop(s: &mut Supervisor, sys: &mut FakeSys, conn: Option<ConnId>, units: &[&str], now: Instant) {
    ask(s, sys, conn, Request::Stop(names(units)), now);
}

/// Restarts `units` for `conn` and runs the pass.
fn restart(
    s: &mut Supervisor,
    sys: &mut FakeSys,
    conn: Option<ConnId>,
    units: &[&str],
    now: Instant,
) {
    ask(s, sys, conn, Request::Restart(names(units)), now);
}

/// Starts `name` for `conn` and runs the pass; its main pid.
fn started(
    s: &mut Supervisor,
    sys: &mut FakeSys,
    conn: Option<ConnId>,
    name: &str,
    now: Instant,
) -> Pid {
    start(s, sys, conn, &[name], now);
    sys.pid_of(name)
}

fn names(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
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

mod adopt_reload;
mod deps;
mod jobs;
mod kinds;
mod stopping;
mod watch;
