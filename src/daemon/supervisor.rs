//! The table of services and everything that spans more than one of them:
//! dependency gates (start once what a unit needs is up; stop once what
//! needs it is down), failure propagation, and jobs (a client's start, stop,
//! restart or kill that is answered when it is done).
//!
//! The shape is sans-IO (quinn-proto's): [`Supervisor::handle`] takes an
//! [`Input`] and the time, [`Supervisor::run`] works through what it
//! caused, [`Supervisor::poll_effect`] hands out what the world should do
//! ([`Effect`]: signals, watches, replies, log rotation) and
//! [`Supervisor::poll_timeout`] the head of the one timer queue. Work that
//! takes time is a timer plus a later look (the main pid of a forking
//! service). Starting a process and the quick `/proc` reads that answer at
//! once still go through the [`Sys`] trait. So this layer is tested with a
//! fake system and fake times, asserting on effects. Events for services
//! are queued and drained, never handled recursively.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::time::Instant;

use nix::sys::signal::Signal;
use nix::unistd::Pid;

use crate::daemon::deps::{self, DepInput, DepProblem, Graph, ServiceId};
use crate::daemon::persist::{self, SavedService, SavedState};
use crate::daemon::service::{Action, Event, ExitKind, Policy, Reason, Service, State, Want};
use crate::daemon::spawn::{MainPidScan, SpawnError, Tagged, SCAN_EVERY};
use crate::daemon::timers::{ServiceTimer, TimerKey, Timers};
use crate::protocol::{
    JobResult, NextAttempt, ReloadReport, Request, Response, StateName, UnitInfo, UnitStatus,
};
use crate::unit::{LoadedDir, ServiceType, Unit, UnitError};

/// While a stopping service waits for leftovers that are not our children
/// (adopted ones), nothing wakes us when they die: look again this often.
const GROUP_RECHECK: std::time::Duration = std::time::Duration::from_millis(20);

/// A client connection, as the event loop numbers them.
pub type ConnId = usize;

/// Which process of a service a pid is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Main,
    StopCmd,
}

/// What the supervisor asks of the world, in order ([`Supervisor::poll_effect`]);
/// the loop hands each to the driver of its kind. None of them has an
/// answer the supervisor waits for: what follows comes back as inputs.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Send `signal` to the process group `pgid`.
    Signal { pgid: Pid, signal: Signal },
    /// Watch a process that may not be our child for its exit
    /// (an `ChildExited` input follows).
    Watch(Pid),
    /// Answer a client.
    Reply(ConnId, Response),
    /// A unit went down (stopped, failed or exited): its log will not grow
    /// until the next start, so rotate it now if it is over its limit.
    LogIdle {
        name: String,
        max_bytes: u64,
        max_files: u32,
    },
}

/// What happened, for [`Supervisor::handle`].
#[derive(Debug)]
pub enum Input {
    /// A client's request about services (`None`: no one waits for it).
    Request(Option<ConnId>, Request),
    /// A child was reaped, or a watched process ended.
    ChildExited(Pid, ExitKind),
    /// An sd_notify datagram from `sender` in process group `group`.
    Notify {
        sender: Pid,
        group: Option<Pid>,
        payload: String,
    },
    /// SIGTERM or SIGINT: stop every service, then exit.
    Terminate,
    /// The clock moved: deadlines at or before `now` are due.
    Tick,
}

/// The operating system, as the supervisor uses it: starting processes and
/// quick reads of `/proc` that answer at once. Everything else is an
/// [`Effect`]; anything that takes time is an effect or a timer.
pub trait Sys {
    /// Starts ExecStart (Main) or ExecStop (StopCmd) of `unit`.
    fn spawn(&mut self, unit: &Unit, role: Role) -> Result<Pid, SpawnError>;
    fn group_alive(&mut self, pgid: Pid) -> bool;
    /// One look for a forking service's main process and its process group,
    /// once the start command (leader of `pgid`) exited; `known` pids are
    /// not it. `None`: not settled yet, look again (never blocks).
    fn scan_main_pid(
        &mut self,
        unit: &Unit,
        pgid: Pid,
        known: &[Pid],
        other_groups: &[Pid],
        scan: &mut MainPidScan,
        now: Instant,
    ) -> Option<Result<(Pid, Pid), String>>;
    /// The process group and session of a live process, read now.
    fn process_groups(&mut self, pid: Pid) -> Option<(Pid, Pid)>;
    /// The start time of a process (to recognise it after a daemon restart).
    fn start_time(&mut self, pid: Pid) -> Option<u64>;
    /// Whether `User=user` names someone other than the daemon's own user
    /// (false when it cannot be looked up: the spawn reports that).
    fn is_other_user(&mut self, user: &str) -> bool;
    /// Whether `pid` is alive and still the process that started at `start_time`.
    fn is_same_process(&mut self, pid: Pid, start_time: u64) -> bool {
        self.start_time(pid) == Some(start_time)
    }
    /// How long ago a process with this start time started (the uptime of
    /// a process adopted with no record of when it started).
    fn age(&mut self, _start_time: u64) -> Option<std::time::Duration> {
        None
    }
}

/// Where a unit stands in a stop that waits for its dependents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StopMark {
    None,
    /// Will get Stop once the units ordered after it that also go down are down.
    Queued,
    Sent,
}

/// One unit file and its runtime record.
#[derive(Debug)]
pub struct Entry {
    pub name: String,
    pub path: PathBuf,
    /// The definition in force; None when the file never loaded. Boxed:
    /// a table of a thousand entries stays small.
    pub unit: Option<Box<Unit>>,
    /// Why the file does not load (it is invalid), if it does not.
    load_error: Option<String>,
    /// Missing Requires or a cycle; recomputed with the graph.
    dep_error: Option<String>,
    /// A changed definition that takes over at the next start (reload).
    next_unit: Option<Box<Unit>>,
    pub svc: Service,
    /// The unit file was removed: hidden from `list`, stopped, but its id
    /// stays valid for timers and pids until it is gone.
    gone: bool,
    /// Start time (clock ticks since boot) of the main process, for adoption.
    start_time: Option<u64>,
    /// Process groups of the current run besides `svc.pgid`: a forking
    /// service's main process may leave the start command's group (setsid)
    /// after it was found, so its real group and session are recorded when
    /// it is found and re-read whenever the service is signalled. A group
    /// seen empty is dropped (its id may then be reused by a stranger).
    groups: Vec<Pid>,
    stop: StopMark,
    /// The kind of the state deadline armed for this service, if any.
    timer: Option<ServiceTimer>,
    /// A search for the main process of a forking service is under way.
    scan: Option<MainPidScan>,
}

impl Entry {
    fn new(name: String, result: Result<Unit, Vec<UnitError>>, seed: u64) -> Entry {
        let (unit, load_error, path) = split_load(result);
        let policy = unit
            .as_ref()
            .map(Policy::from_unit)
            .unwrap_or_else(inert_policy);
        Entry {
            name,
            path,
            unit: unit.map(Box::new),
            load_error,
            dep_error: None,
            next_unit: None,
            svc: Service::new(policy, seed),
            gone: false,
            start_time: None,
            groups: Vec::new(),
            stop: StopMark::None,
            timer: None,
            scan: None,
        }
    }

    /// Everything that is wrong with the unit, if anything.
    pub fn error(&self) -> Option<String> {
        match (&self.load_error, &self.dep_error) {
            (Some(a), Some(b)) => Some(format!("{a}\n{b}")),
            (Some(a), None) | (None, Some(a)) => Some(a.clone()),
            (None, None) => None,
        }
    }

    /// Whether it may be started: it loaded and has no dependency errors.
    pub fn runnable(&self) -> bool {
        self.unit.is_some() && self.load_error.is_none() && self.dep_error.is_none()
    }

    pub fn state_name(&self) -> StateName {
        if !self.runnable() && !self.svc.state.is_active() {
            StateName::Invalid
        } else {
            self.svc.state.name()
        }
    }

    /// For a job stopping it: it is down, or a start since took it over
    /// (which clears its stop mark), so there is nothing left to wait for.
    fn down_or_overridden(&self) -> bool {
        !self.svc.state.is_active() || self.stop == StopMark::None
    }

    /// Puts `unit` in force now (the service must not be running).
    fn set_unit(&mut self, unit: Unit) {
        self.svc.policy = Policy::from_unit(&unit);
        self.path = unit.path.clone();
        self.unit = Some(Box::new(unit));
        self.load_error = None;
        self.next_unit = None;
    }
}

/// The process group that a main process `pid`, found dead by a new daemon,
/// left behind: its own group (a simple service's), or the saved one (a
/// forking service's), if it still has members. A group id cannot be reused
/// while the group has members, and a group needs a live process with that
/// pid to be created, so a group whose leader pid is free is the old one.
fn leftover_group(pid: i32, saved_pgid: Option<i32>, sys: &mut dyn Sys) -> Option<Pid> {
    [Some(pid), saved_pgid]
        .into_iter()
        .flatten()
        .filter(|&g| g > 1)
        .map(Pid::from_raw)
        .find(|&g| sys.start_time(g).is_none() && sys.group_alive(g))
}

/// A loaded unit, or the joined text of its errors; and its file.
fn split_load(result: Result<Unit, Vec<UnitError>>) -> (Option<Unit>, Option<String>, PathBuf) {
    match result {
        Ok(u) => {
            let path = u.path.clone();
            (Some(u), None, path)
        }
        Err(errors) => {
            let path = errors.first().map(|e| e.path.clone()).unwrap_or_default();
            let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
            (None, Some(text.join("\n")), path)
        }
    }
}

#[derive(Debug)]
enum JobKind {
    Start,
    Stop,
    /// Stop the set, then start it again.
    Restart {
        stopping: bool,
    },
    Kill,
}

#[derive(Debug)]
struct Job {
    conn: Option<ConnId>,
    kind: JobKind,
    /// The units the job reports on.
    ids: Vec<ServiceId>,
    /// For starts: each unit of `ids` and what they Require (transitively),
    /// with its `failed_attempts` when the start began. A count that grew
    /// is a failed attempt: the job fails then, and the restart policy goes
    /// on in the background (as `systemctl start` does).
    baseline: BTreeMap<ServiceId, u64>,
}

pub struct Supervisor {
    pub service_dir: PathBuf,
    logs_dir: PathBuf,
    entries: Vec<Entry>,
    by_name: BTreeMap<String, ServiceId>,
    graph: Graph,
    /// The daemon's one timer queue; drivers arm their keys through
    /// [`Supervisor::timers`] and get them back from [`Supervisor::take_due`].
    timers: Timers<TimerKey>,
    /// Expired keys that belong to a driver, for the loop to route.
    due: Vec<TimerKey>,
    /// Services whose main-pid search should look again.
    scans_due: Vec<ServiceId>,
    queue: VecDeque<(ServiceId, Event)>,
    pids: HashMap<Pid, (ServiceId, Role)>,
    awaiting_group: BTreeSet<ServiceId>,
    jobs: Vec<Job>,
    /// What the world should do, oldest first.
    effects: VecDeque<Effect>,
    /// Set once a kill job finished: the loop exits after flushing replies.
    pub exiting: bool,
    /// A kill is in progress: no new starts.
    killing: bool,
    /// Warnings from loading (missing Wants, host overrides).
    pub warnings: Vec<String>,
    seed: u64,
    /// Units that start whenever a daemon starts.
    enabled: BTreeSet<String>,
    /// Something worth persisting changed since the last `take_dirty`.
    dirty: bool,
}

impl Supervisor {
    pub fn new(loaded: LoadedDir, service_dir: PathBuf, logs_dir: PathBuf, seed: u64) -> Self {
        let mut sup = Supervisor {
            service_dir,
            logs_dir,
            entries: Vec::new(),
            by_name: BTreeMap::new(),
            graph: Graph::default(),
            timers: Timers::default(),
            due: Vec::new(),
            scans_due: Vec::new(),
            queue: VecDeque::new(),
            pids: HashMap::new(),
            awaiting_group: BTreeSet::new(),
            jobs: Vec::new(),
            effects: VecDeque::new(),
            exiting: false,
            killing: false,
            warnings: loaded.warnings,
            seed,
            enabled: BTreeSet::new(),
            dirty: false,
        };
        for (name, result) in loaded.units {
            sup.add_entry(name, result);
        }
        sup.rebuild_graph();
        sup
    }

    fn add_entry(&mut self, name: String, result: Result<Unit, Vec<UnitError>>) -> ServiceId {
        // A name that was removed and comes back reuses its old slot.
        let reuse = self
            .entries
            .iter()
            .position(|e| e.gone && e.name == name && !e.svc.state.is_active());
        let id = reuse.unwrap_or(self.entries.len());
        let seed = self.seed ^ (id as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let entry = Entry::new(name.clone(), result, seed);
        match reuse {
            Some(id) => self.entries[id] = entry,
            None => self.entries.push(entry),
        }
        self.by_name.insert(name, id);
        id
    }

    /// Recomputes the dependency graph and each unit's dependency errors.
    fn rebuild_graph(&mut self) {
        let empty: &[String] = &[];
        let inputs: Vec<DepInput<'_>> = self
            .entries
            .iter()
            .map(|e| {
                // The definition that will be in force: a changed one waiting
                // for its restart counts already. A removed unit keeps its
                // place while it still runs, so its dependents go down first.
                let present = !e.gone || e.svc.state.is_active();
                match (e.next_unit.as_deref().or(e.unit.as_deref()), present) {
                    (Some(u), true) => DepInput {
                        name: &e.name,
                        requires: &u.requires,
                        wants: &u.wants,
                        after: &u.after,
                    },
                    // Gone units are no one's dependency (unit names are never empty).
                    (_, present) => DepInput {
                        name: if present { &e.name } else { "" },
                        requires: empty,
                        wants: empty,
                        after: empty,
                    },
                }
            })
            .collect();
        let (graph, problems) = Graph::build(&inputs);
        drop(inputs);
        self.graph = graph;
        for e in &mut self.entries {
            e.dep_error = None;
        }
        let names: Vec<String> = self.entries.iter().map(|e| e.name.clone()).collect();
        let name_refs: Vec<&str> = names.iter().map(String::as_str).collect();
        for problem in problems {
            match problem {
                DepProblem::MissingRequires { unit, missing } => {
                    let e = &mut self.entries[unit];
                    let msg = format!(
                        "{}: Requires `{missing}`, but there is no {missing}.service in {}",
                        e.path.display(),
                        self.service_dir.display()
                    );
                    add_dep_error(e, msg);
                }
                DepProblem::MissingWants { unit, missing } => {
                    self.warnings.push(format!(
                        "{}: Wants `{missing}`, which does not exist (ignored)",
                        self.entries[unit].name
                    ));
                }
                DepProblem::Cycle { path } => {
                    let text = format!(
                        "dependency cycle: {}",
                        deps::cycle_to_string(&path, &name_refs)
                    );
                    for &id in &path {
                        if let Some(e) = self.entries.get_mut(id) {
                            add_dep_error(e, text.clone());
                        }
                    }
                }
            }
        }
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    pub fn id_of(&self, name: &str) -> Option<ServiceId> {
        self.by_name.get(name).copied()
    }

    /// The nearest deadline of any kind: how long the loop may sleep.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next_deadline()
    }

    /// The one timer queue, for drivers to arm and disarm their own keys.
    pub fn timers(&mut self) -> &mut Timers<TimerKey> {
        &mut self.timers
    }

    /// Expired keys that belong to drivers (not to services).
    pub fn take_due(&mut self) -> Vec<TimerKey> {
        std::mem::take(&mut self.due)
    }

    /// The next thing the world should do, oldest first.
    pub fn poll_effect(&mut self) -> Option<Effect> {
        self.effects.pop_front()
    }

    /// Whether a reply is waiting (the state file is written before it goes).
    pub fn replies_pending(&self) -> bool {
        self.effects.iter().any(|e| matches!(e, Effect::Reply(..)))
    }

    /// Feeds one input; [`Supervisor::run`] then works through what it
    /// caused. The immediate answer to a request is a Reply effect.
    pub fn handle(&mut self, input: Input, now: Instant) {
        match input {
            Input::Request(conn, req) => {
                if let Some(resp) = self.request(conn, req, now) {
                    if let Some(conn) = conn {
                        self.effects.push_back(Effect::Reply(conn, resp));
                    }
                }
            }
            Input::ChildExited(pid, kind) => self.child_exited(pid, kind),
            Input::Notify {
                sender,
                group,
                payload,
            } => self.notified(sender, group, &payload),
            Input::Terminate => {
                if !self.exiting {
                    self.kill(None);
                }
            }
            Input::Tick => self.timers_expired(now),
        }
    }

    /// The replies among the effects, taken out (tests).
    #[cfg(test)]
    pub fn take_replies(&mut self) -> Vec<(ConnId, Response)> {
        let mut replies = Vec::new();
        self.effects.retain(|e| match e {
            Effect::Reply(conn, resp) => {
                replies.push((*conn, resp.clone()));
                false
            }
            _ => true,
        });
        replies
    }

    /// (name, LogMaxBytes, LogMaxFiles) of every service that may be writing its log.
    pub fn log_limits(&self) -> Vec<(String, u64, u32)> {
        self.entries
            .iter()
            .filter(|e| e.svc.state.is_active())
            .filter_map(|e| e.unit.as_ref())
            .filter(|u| u.log_max_bytes > 0)
            .map(|u| (u.name.clone(), u.log_max_bytes, u.log_max_files))
            .collect()
    }

    pub fn log_path(&self, name: &str) -> PathBuf {
        self.logs_dir.join(format!("{name}.log"))
    }

    // --- inputs ---------------------------------------------------------

    /// An sd_notify datagram from `sender` (whose process group is
    /// `sender_pgid`): READY=1 makes a starting notify service running.
    /// Accepted from the main process or any process of its group.
    pub fn notified(&mut self, sender: Pid, sender_pgid: Option<Pid>, payload: &str) {
        let id = match self.pids.get(&sender) {
            Some(&(id, Role::Main)) => Some(id),
            _ => sender_pgid.and_then(|g| {
                self.entries
                    .iter()
                    .position(|e| e.svc.pgid == Some(g) && e.svc.state.is_active())
            }),
        };
        let Some(id) = id else {
            log::debug!("notify message from unknown process {sender}: {payload:?}");
            return;
        };
        if payload.lines().any(|l| l.trim() == "READY=1") {
            self.queue.push_back((id, Event::Ready));
        }
    }

    /// A child of the daemon ended.
    pub fn child_exited(&mut self, pid: Pid, kind: ExitKind) {
        match self.pids.remove(&pid) {
            Some((id, Role::Main)) => self.queue.push_back((id, Event::Exited(kind))),
            Some((id, Role::StopCmd)) => self.queue.push_back((id, Event::StopCmdExited(kind))),
            // An orphan of some service's process tree (we are its subreaper):
            // its group may be one a stopping service waits for; the sweep checks.
            None => log::debug!("reaped orphan {pid} ({kind})"),
        }
    }

    /// Turns the expired deadlines of services into Timer events; the keys
    /// of drivers are kept for [`Supervisor::take_due`].
    pub fn timers_expired(&mut self, now: Instant) {
        for key in self.timers.expired(now) {
            match key {
                TimerKey::Service(id, ServiceTimer::MainPidScan) => self.scans_due.push(id),
                TimerKey::Service(id, kind) => {
                    if self.entries[id].timer == Some(kind) {
                        self.entries[id].timer = None;
                    }
                    self.queue.push_back((id, Event::Timer));
                }
                // `run` looks at the groups on every pass; this only wakes it.
                TimerKey::GroupRecheck => {}
                other => self.due.push(other),
            }
        }
    }

    /// Handles a request that is about services. `None`: the reply comes
    /// later, when the job is done.
    pub fn request(
        &mut self,
        conn: Option<ConnId>,
        req: Request,
        now: Instant,
    ) -> Option<Response> {
        if self.killing && matches!(req, Request::Start(_) | Request::Restart(_)) {
            return Some(Response::error(
                "the daemon is shutting down",
                Some("wait for `diakonos kill` to finish, then retry (a new daemon starts)"),
            ));
        }
        match req {
            Request::List => Some(Response::Units(
                self.by_name
                    .values()
                    .map(|&id| self.info(id, now))
                    .collect(),
            )),
            Request::Status(name) => Some(match self.lookup(std::slice::from_ref(&name)) {
                Ok(ids) => Response::Status(Box::new(self.status(ids[0], now))),
                Err(resp) => resp,
            }),
            Request::Start(names) => {
                let ids = match self.lookup_valid(&names) {
                    Ok(ids) => ids,
                    Err(resp) => return Some(resp),
                };
                self.start(&ids, true, now);
                let baseline = self.baseline(&ids);
                self.jobs.push(Job {
                    conn,
                    kind: JobKind::Start,
                    ids,
                    baseline,
                });
                None
            }
            Request::Stop(names) => {
                let ids = match self.lookup(&names) {
                    Ok(ids) => ids,
                    Err(resp) => return Some(resp),
                };
                let set = self.stop(&ids);
                self.jobs.push(Job {
                    conn,
                    kind: JobKind::Stop,
                    ids: set,
                    baseline: BTreeMap::new(),
                });
                None
            }
            Request::Restart(names) => {
                let ids = match self.lookup_valid(&names) {
                    Ok(ids) => ids,
                    Err(resp) => return Some(resp),
                };
                // Units that Require a restarted unit are restarted with it
                // (when they were up), as systemd does.
                let mut set: Vec<ServiceId> = self
                    .graph
                    .requirers_of(&ids)
                    .into_iter()
                    .filter(|&id| ids.contains(&id) || self.entries[id].svc.state.is_active())
                    .collect();
                set.sort_unstable();
                set.dedup();
                self.stop(&set);
                self.jobs.push(Job {
                    conn,
                    kind: JobKind::Restart { stopping: true },
                    ids: set,
                    baseline: BTreeMap::new(),
                });
                None
            }
            Request::Kill => {
                self.kill(conn);
                None
            }
            Request::Enable(names) | Request::Disable(names) => Some(Response::error(
                format!(
                    "enable/disable of {} is handled by the daemon",
                    names.join(" ")
                ),
                None,
            )),
            Request::DaemonStatus | Request::Reload | Request::HandOver => Some(Response::error(
                "request not handled by the supervisor",
                None,
            )),
        }
    }

    /// A kill is under way (services are being stopped before the exit).
    pub fn is_killing(&self) -> bool {
        self.killing
    }

    /// Stops everything (reverse dependency order); once all is down the
    /// supervisor sets `exiting` and answers `conn` with Bye.
    pub fn kill(&mut self, conn: Option<ConnId>) {
        self.killing = true;
        let all: Vec<ServiceId> = (0..self.entries.len()).collect();
        self.stop(&all);
        self.jobs.push(Job {
            conn,
            kind: JobKind::Kill,
            ids: all,
            baseline: BTreeMap::new(),
        });
    }

    /// Marks `ids` and what they pull in as wanted up and queues their starts.
    fn start(&mut self, ids: &[ServiceId], explicit: bool, now: Instant) {
        for id in self.graph.pull_in(ids) {
            let e = &mut self.entries[id];
            if !e.runnable() {
                continue; // Its dependents fail (Requires) or ignore it (Wants).
            }
            if let Some(unit) = e.next_unit.take() {
                if !e.svc.state.is_active() {
                    e.set_unit(*unit);
                } else {
                    e.next_unit = Some(unit);
                }
            }
            if explicit && ids.contains(&id) {
                e.svc.on_event(Event::ResetCounters, now);
            }
            e.stop = StopMark::None;
            self.queue.push_back((id, Event::Start));
        }
    }

    /// Marks `ids` and every unit that Requires them to go down; each gets
    /// its Stop once the units ordered after it are down. Returns the set.
    fn stop(&mut self, ids: &[ServiceId]) -> Vec<ServiceId> {
        let set = self.graph.requirers_of(ids);
        for &id in &set {
            let e = &mut self.entries[id];
            if e.svc.state.is_active() {
                if e.stop == StopMark::None {
                    e.stop = StopMark::Queued;
                }
            } else if e.svc.state != State::Inactive {
                // Failed or exited: stopping clears it to inactive.
                self.queue.push_back((id, Event::Stop));
            }
        }
        for &id in &set {
            self.check_stop_gate(id);
        }
        set
    }

    // --- durability -----------------------------------------------------

    /// Whether something worth persisting changed since the last call.
    pub fn take_dirty(&mut self) -> bool {
        std::mem::take(&mut self.dirty)
    }

    /// What a new daemon needs to take over: every service wanted up.
    pub fn snapshot(&self, now: Instant, now_unix: u64) -> SavedState {
        let services = self
            .entries
            .iter()
            // Wanted up, or still holding processes on their way down.
            .filter(|e| {
                e.svc.state.is_active() && (e.svc.want == Want::Up || e.svc.pid().is_some())
            })
            .map(|e| {
                let pid = e.svc.pid();
                SavedService {
                    name: e.name.clone(),
                    pid: pid.map(Pid::as_raw),
                    start_time: pid.and(e.start_time),
                    since_unix: e
                        .svc
                        .uptime(now)
                        .map(|up| now_unix.saturating_sub(up.as_secs())),
                    restarts: e.svc.restarts,
                    remain: matches!(e.svc.state, State::Running { pid: None, .. }),
                    stopping: e.svc.want == Want::Down,
                    pgid: e.svc.pgid.map(Pid::as_raw),
                }
            })
            .collect();
        SavedState {
            version: persist::STATE_VERSION,
            service_dir: Some(self.service_dir.clone()),
            services,
        }
    }

    /// Takes over what a previous daemon supervised: live processes are
    /// adopted (same pid, restart count kept), dead ones go through their
    /// restart policy, services that had no process yet are started again.
    /// Then the enabled units are started. Returns the adopted processes,
    /// which are not our children: the caller watches them for exit.
    ///
    /// `tagged` are live processes that carry this home's tag (found by
    /// scanning /proc): they stand in for a unit whose saved process is gone
    /// or was never saved (a crash between a restart and the next state
    /// write, or a lost state file). They are never killed on that basis.
    pub fn restore(
        &mut self,
        saved: SavedState,
        tagged: Vec<Tagged>,
        enabled: BTreeSet<String>,
        now: Instant,
        now_unix: u64,
        sys: &mut dyn Sys,
    ) -> Vec<Pid> {
        let mut adopted = Vec::new();
        let mut to_start = Vec::new();
        // Only a state file that names our own directory lets us stop a
        // process whose unit is gone (it was really removed from it).
        let same_dir = saved.service_dir.as_deref() == Some(self.service_dir.as_path());
        // Per unit, its tagged session leaders, earliest started first: a
        // service's own setsid children start after it.
        let mut by_unit: BTreeMap<String, Vec<Tagged>> = BTreeMap::new();
        for t in tagged {
            by_unit.entry(t.unit.clone()).or_default().push(t);
        }
        for list in by_unit.values_mut() {
            list.sort_by_key(|t| t.start_time);
        }
        let had_saved = !saved.services.is_empty();
        let saved_pids: BTreeSet<i32> = saved.services.iter().filter_map(|s| s.pid).collect();
        let mut saved_services = saved.services;
        // Units the state does not mention but whose tagged process lives:
        // the state was lost or is older than the process.
        for (unit, list) in &by_unit {
            if saved_services.iter().any(|s| &s.name == unit) {
                continue;
            }
            if let Some(t) = list.iter().find(|t| !saved_pids.contains(&t.pid.as_raw())) {
                saved_services.push(SavedService {
                    name: unit.clone(),
                    pid: Some(t.pid.as_raw()),
                    start_time: Some(t.start_time),
                    since_unix: None,
                    restarts: 0,
                    remain: false,
                    stopping: false,
                    pgid: None,
                });
            }
        }
        for mut s in saved_services {
            let mut alive_pid = match (s.pid, s.start_time) {
                (Some(pid), Some(st)) if sys.is_same_process(Pid::from_raw(pid), st) => {
                    Some(Pid::from_raw(pid))
                }
                _ => None,
            };
            if alive_pid.is_none() && !s.remain {
                // The saved process is gone; a newer one of the unit may live.
                let newer = by_unit.get(&s.name).and_then(|list| {
                    list.iter()
                        .find(|t| sys.is_same_process(t.pid, t.start_time))
                        .cloned()
                });
                if let Some(t) = newer {
                    log::info!("{}: found its process {} by its tag", s.name, t.pid);
                    alive_pid = Some(t.pid);
                    s.pid = Some(t.pid.as_raw());
                    s.start_time = Some(t.start_time);
                    // The saved time is the dead process's, not this one's.
                    s.since_unix = None;
                }
            }
            // A process known only by its tag is adopted or left alone, never stopped.
            let from_tag_only = alive_pid.is_some_and(|p| !saved_pids.contains(&p.as_raw()));
            let id = match self.by_name.get(&s.name) {
                Some(&id) if self.entries[id].runnable() => id,
                _ => {
                    // Its unit is gone or broken: nothing can supervise it.
                    // Stop it only if its file was really removed from our
                    // own directory; a daemon of another directory leaves
                    // other people's services alone.
                    match alive_pid {
                        Some(pid) if same_dir && !from_tag_only => {
                            log::warn!(
                                "{}: unit no longer loads; stopping its leftover process {pid}",
                                s.name
                            );
                            self.effects.push_back(Effect::Signal {
                                pgid: pid,
                                signal: Signal::SIGTERM,
                            });
                        }
                        Some(pid) => log::warn!(
                            "{}: process {pid} belongs to units in another directory; leaving it alone",
                            s.name
                        ),
                        None => {}
                    }
                    continue;
                }
            };
            // Up since the saved time; for a process found by its tag alone,
            // since it started (from /proc); else (or on a bogus saved time,
            // before the monotonic clock began) from now.
            let since = match (s.since_unix, alive_pid, s.start_time) {
                (Some(t), _, _) => {
                    now.checked_sub(std::time::Duration::from_secs(now_unix.saturating_sub(t)))
                }
                (None, Some(_), Some(st)) => sys.age(st).and_then(|age| now.checked_sub(age)),
                _ => None,
            }
            .unwrap_or(now);
            let e = &mut self.entries[id];
            match (s.pid, alive_pid) {
                (_, Some(pid)) => {
                    log::info!("{}: adopted running process {pid}", s.name);
                    e.svc.on_event(
                        Event::Adopt {
                            pid: Some(pid),
                            pgid: Some(pid),
                            since,
                            restarts: s.restarts,
                        },
                        now,
                    );
                    e.start_time = s.start_time;
                    self.pids.insert(pid, (id, Role::Main));
                    adopted.push(pid);
                    if s.stopping {
                        // The old daemon died in the middle of stopping it.
                        self.queue.push_back((id, Event::Stop));
                    }
                }
                (Some(pid), None) if s.stopping => {
                    if let Some(g) = leftover_group(pid, s.pgid, sys) {
                        log::info!("{}: killing what is left of process group {g}", s.name);
                        self.effects.push_back(Effect::Signal {
                            pgid: g,
                            signal: Signal::SIGKILL,
                        });
                    }
                }
                _ if s.stopping => {}
                (Some(pid), None) => {
                    log::info!("{}: process {pid} died while no daemon ran", s.name);
                    // Not inserted in `pids`: the pid may already be someone else's.
                    e.svc.on_event(
                        Event::Adopt {
                            pid: Some(Pid::from_raw(pid)),
                            pgid: None,
                            since,
                            restarts: s.restarts,
                        },
                        now,
                    );
                    let ev = match leftover_group(pid, s.pgid, sys) {
                        // Its workers outlived it: they go before it restarts.
                        Some(g) => {
                            log::info!(
                                "{}: process group {g} outlived its main process; killing it",
                                s.name
                            );
                            Event::DeadWithLeftovers(g)
                        }
                        None => Event::Exited(ExitKind::Unknown),
                    };
                    self.queue.push_back((id, ev));
                }
                (None, None) if s.remain => {
                    // Its background processes, if their group still lives.
                    let pgid = s.pgid.map(Pid::from_raw).filter(|&g| sys.group_alive(g));
                    e.svc.on_event(
                        Event::Adopt {
                            pid: None,
                            pgid,
                            since,
                            restarts: s.restarts,
                        },
                        now,
                    );
                }
                (None, None) => to_start.push(id),
            }
        }
        for name in &enabled {
            match self.by_name.get(name) {
                Some(&id) if !self.entries[id].svc.state.is_active() => to_start.push(id),
                Some(_) => {}
                None => log::warn!(
                    "enabled unit `{name}` does not exist in {}",
                    self.service_dir.display()
                ),
            }
        }
        self.enabled = enabled;
        if !to_start.is_empty() {
            self.start(&to_start, false, now);
            let baseline = self.baseline(&to_start);
            self.jobs.push(Job {
                conn: None,
                kind: JobKind::Start,
                ids: to_start,
                baseline,
            });
        }
        // Only a daemon that took something over has news for the state
        // file; a fresh one writes it with its first change.
        self.dirty = !adopted.is_empty() || had_saved;
        adopted
    }

    /// `enable`/`disable`: answered with the new set to persist.
    pub fn set_enabled(
        &mut self,
        names: &[String],
        on: bool,
    ) -> Result<(Response, BTreeSet<String>), Response> {
        let ids = self.lookup(names)?;
        let mut results = Vec::new();
        for id in ids {
            let e = &self.entries[id];
            let changed = if on {
                self.enabled.insert(e.name.clone())
            } else {
                self.enabled.remove(&e.name)
            };
            let message = match (on, changed) {
                (true, true) => "enabled: starts whenever a daemon starts",
                (true, false) => "already enabled",
                (false, true) => "disabled",
                (false, false) => "was not enabled",
            };
            results.push(JobResult {
                name: e.name.clone(),
                ok: true,
                state: e.state_name(),
                message: Some(message.to_owned()),
            });
        }
        Ok((Response::Job(results), self.enabled.clone()))
    }

    /// Applies a fresh read of the service directory: new units appear,
    /// removed ones are stopped and dropped, changed active ones restart
    /// with their new definition, everything else is untouched.
    pub fn reload(&mut self, loaded: LoadedDir) -> ReloadReport {
        let mut report = ReloadReport::default();
        let mut restart = Vec::new();
        let mut removed = Vec::new();
        for (name, id) in self.by_name.clone() {
            if !loaded.units.contains_key(&name) {
                removed.push(id);
                report.removed.push(name.clone());
                self.by_name.remove(&name);
                self.entries[id].gone = true;
            }
        }
        for (name, result) in loaded.units {
            let Some(&id) = self.by_name.get(&name) else {
                if let Err(errors) = &result {
                    report.invalid.push((name.clone(), first_error(errors)));
                }
                report.added.push(name.clone());
                self.add_entry(name, result);
                continue;
            };
            let e = &mut self.entries[id];
            let active = e.svc.state.is_active();
            match split_load(result) {
                (Some(unit), None, _) => {
                    if e.unit.as_deref() == Some(&unit) && e.load_error.is_none() {
                        e.next_unit = None;
                        continue;
                    }
                    report.changed.push(name.clone());
                    if active {
                        e.next_unit = Some(Box::new(unit));
                        e.load_error = None;
                        restart.push(id);
                    } else {
                        e.set_unit(unit);
                    }
                }
                (_, error, path) => {
                    let error = error.unwrap_or_default();
                    if e.load_error.as_ref() == Some(&error) {
                        // Still invalid: named again, so `reload` keeps
                        // failing until the file is fixed.
                        report.invalid.push((
                            name.clone(),
                            error.lines().next().unwrap_or_default().to_owned(),
                        ));
                        continue;
                    }
                    report.invalid.push((
                        name.clone(),
                        error.lines().next().unwrap_or_default().to_owned(),
                    ));
                    // A running instance keeps its old definition; it cannot
                    // start again until the file is fixed.
                    e.load_error = Some(error);
                    e.next_unit = None;
                    e.path = path;
                    if !active {
                        e.unit = None;
                    }
                }
            }
        }
        self.warnings.clear();
        self.warnings.extend(loaded.warnings);
        self.rebuild_graph();
        if !removed.is_empty() {
            let set = self.stop(&removed);
            self.jobs.push(Job {
                conn: None,
                kind: JobKind::Stop,
                ids: set,
                baseline: BTreeMap::new(),
            });
        }
        if !restart.is_empty() {
            let mut set = self.graph.requirers_of(&restart);
            set.retain(|&id| restart.contains(&id) || self.entries[id].svc.state.is_active());
            self.stop(&set);
            self.jobs.push(Job {
                conn: None,
                kind: JobKind::Restart { stopping: true },
                ids: set,
                baseline: BTreeMap::new(),
            });
        }
        self.dirty = true;
        report
    }

    // --- the queue ------------------------------------------------------

    /// Drains the event queue, executing actions and propagating changes,
    /// then settles jobs. Call after every batch of inputs.
    pub fn run(&mut self, now: Instant, sys: &mut dyn Sys) {
        loop {
            for id in std::mem::take(&mut self.scans_due) {
                self.scan_main_pid(id, now, sys);
            }
            while let Some((id, ev)) = self.queue.pop_front() {
                self.step(id, ev, now, sys);
            }
            // Stopping services whose main process is gone wait for their group.
            let waiting: Vec<ServiceId> = self.awaiting_group.iter().copied().collect();
            for id in waiting {
                let svc = &self.entries[id].svc;
                if !svc.awaiting_group() {
                    self.awaiting_group.remove(&id);
                    continue;
                }
                let gone = match svc.pgid {
                    None => true,
                    Some(pgid) => {
                        let mut groups = self.entries[id].groups.clone();
                        groups.push(pgid);
                        !groups.into_iter().any(|g| sys.group_alive(g))
                    }
                };
                if gone {
                    self.awaiting_group.remove(&id);
                    self.queue.push_back((id, Event::GroupGone));
                }
            }
            if !self.awaiting_group.is_empty() {
                self.timers
                    .arm_if_idle(TimerKey::GroupRecheck, now + GROUP_RECHECK);
            }
            self.settle_jobs(now);
            // Deadlines that are already due (RestartSec = 0) run in this
            // same pass rather than after another trip through poll.
            self.timers_expired(now);
            if self.queue.is_empty() && self.scans_due.is_empty() {
                break;
            }
        }
    }

    fn step(&mut self, id: ServiceId, ev: Event, now: Instant, sys: &mut dyn Sys) {
        let before = self.entries[id].svc.state.name();
        let was_active = self.entries[id].svc.state.is_active();
        let pid_before = self.entries[id].svc.pid();
        let actions = self.entries[id].svc.on_event(ev, now);
        for action in actions {
            self.execute(id, action, now, sys);
        }
        let e = &self.entries[id];
        let timer = e.svc.timer();
        if let Some(old) = e.timer.filter(|&old| Some(old) != timer.map(|(k, _)| k)) {
            self.timers.set(TimerKey::Service(id, old), None);
        }
        if let Some((kind, at)) = timer {
            self.timers.set(TimerKey::Service(id, kind), Some(at));
        }
        self.entries[id].timer = timer.map(|(k, _)| k);
        let e = &self.entries[id];
        if e.svc.awaiting_group() {
            self.awaiting_group.insert(id);
        }
        if was_active && !e.svc.state.is_active() {
            if let Some(unit) = e.unit.as_deref() {
                self.effects.push_back(Effect::LogIdle {
                    name: unit.name.clone(),
                    max_bytes: unit.log_max_bytes,
                    max_files: unit.log_max_files,
                });
            }
        }
        let after = e.svc.state.name();
        if before != after || pid_before != e.svc.pid() {
            self.dirty = true;
        }
        if before != after || after == StateName::Waiting {
            self.changed(id);
        }
    }

    /// The only place an Action becomes an effect. Results come back as
    /// events at the front of the queue, so nothing else happens in between.
    fn execute(&mut self, id: ServiceId, action: Action, now: Instant, sys: &mut dyn Sys) {
        let Some(unit) = self.entries[id].unit.as_ref() else {
            return;
        };
        match action {
            Action::Spawn
                if unit.kind == ServiceType::Notify
                    && unit.user.as_deref().is_some_and(|u| sys.is_other_user(u)) =>
            {
                let user = unit.user.clone().unwrap_or_default();
                log::warn!("{}: Type=notify with User={user} cannot work", unit.name);
                self.queue
                    .push_front((id, Event::CannotStart(Reason::NotifyOtherUser(user))));
            }
            Action::Spawn => match sys.spawn(unit, Role::Main) {
                Ok(pid) => {
                    log::info!("{}: started, pid {pid}", unit.name);
                    self.pids.insert(pid, (id, Role::Main));
                    self.entries[id].start_time = sys.start_time(pid);
                    self.entries[id].groups.clear();
                    self.queue.push_front((id, Event::Spawned(pid)));
                }
                Err(e) => {
                    log::warn!("{}: {e}", unit.name);
                    self.queue.push_front((id, Event::SpawnFailed(e)));
                }
            },
            Action::SpawnStop => match sys.spawn(unit, Role::StopCmd) {
                Ok(pid) => {
                    self.pids.insert(pid, (id, Role::StopCmd));
                    self.entries[id]
                        .svc
                        .on_event(Event::StopCmdSpawned(pid), now);
                }
                Err(e) => {
                    log::warn!("{}: ExecStop: {e}", unit.name);
                    self.queue
                        .push_front((id, Event::StopCmdExited(ExitKind::Code(127))));
                }
            },
            Action::KillGroup { pgid, signal } => {
                for g in self.signal_targets(id, pgid, sys) {
                    self.effects.push_back(Effect::Signal { pgid: g, signal });
                }
            }
            Action::FindMainPid => {
                self.entries[id].scan = Some(MainPidScan::new(now));
                self.scan_main_pid(id, now, sys);
            }
        }
    }

    /// One look for the main process of a forking service whose start
    /// command left: found or failed goes to the service as MainPid; not
    /// settled yet arms the next look. A service that left the state of
    /// looking (stopped, timed out) drops its search.
    fn scan_main_pid(&mut self, id: ServiceId, now: Instant, sys: &mut dyn Sys) {
        let key = TimerKey::Service(id, ServiceTimer::MainPidScan);
        let e = &mut self.entries[id];
        let looking = matches!(e.svc.state, State::Starting { pid: None, .. });
        let (Some(mut scan), true, true) = (e.scan.take(), e.unit.is_some(), looking) else {
            self.entries[id].scan = None;
            self.timers.set(key, None);
            return;
        };
        let starter_group = e.svc.pgid;
        let known: Vec<Pid> = self.pids.keys().copied().collect();
        let other_groups: Vec<Pid> = self
            .entries
            .iter()
            .enumerate()
            .filter(|&(other, _)| other != id)
            .filter_map(|(_, e)| e.svc.pgid)
            .collect();
        let Some(unit) = self.entries[id].unit.as_deref() else {
            return;
        };
        let found = match starter_group {
            Some(pgid) => {
                match sys.scan_main_pid(unit, pgid, &known, &other_groups, &mut scan, now) {
                    Some(found) => found,
                    None => {
                        self.entries[id].scan = Some(scan);
                        self.timers.set(key, Some(now + SCAN_EVERY));
                        return;
                    }
                }
            }
            None => Err("the start command's process group is unknown".to_owned()),
        };
        self.timers.set(key, None);
        if let Ok((pid, _)) = found {
            log::info!("{}: main process is {pid}", self.entries[id].name);
            self.pids.insert(pid, (id, Role::Main));
            let e = &mut self.entries[id];
            e.start_time = sys.start_time(pid);
            // The start command's group may still hold the main
            // process's helpers; its own group and session are the service's too.
            e.groups.extend(starter_group);
            if let Some((pgrp, sid)) = sys.process_groups(pid) {
                e.groups.extend([pgrp, sid]);
            }
            e.groups.sort_unstable();
            e.groups.dedup();
            // It may not be our child: watch it like an adopted process.
            self.effects.push_back(Effect::Watch(pid));
        }
        self.queue.push_front((id, Event::MainPid(found)));
    }

    /// The process groups a signal for `pgid` must reach. An ExecStop's
    /// group is just itself. For the service's own group: every group of its
    /// current run, with the main process's group and session read again
    /// now (a forking daemon may have called setsid after it was found).
    fn signal_targets(&mut self, id: ServiceId, pgid: Pid, sys: &mut dyn Sys) -> Vec<Pid> {
        let e = &mut self.entries[id];
        if matches!(e.svc.state, State::Stopping { stop_cmd: Some(p), .. } if p == pgid) {
            return vec![pgid];
        }
        if let Some((pgrp, sid)) = e.svc.pid().and_then(|main| sys.process_groups(main)) {
            e.groups.extend([pgrp, sid]);
        }
        e.groups.push(pgid);
        e.groups.sort_unstable();
        e.groups.dedup();
        e.groups.retain(|&g| g == pgid || sys.group_alive(g));
        e.groups.clone()
    }

    /// Tells the units related to `id` about its new state.
    fn changed(&mut self, id: ServiceId) {
        let state = self.entries[id].svc.state.clone();
        log::debug!("{}: {}", self.entries[id].name, state.name().as_str());
        if state == State::Waiting {
            self.check_start_gate(id);
        }
        for i in 0..self.graph.before.get(id).map_or(0, Vec::len) {
            let d = self.graph.before[id][i];
            if self.entries[d].svc.state == State::Waiting {
                self.check_start_gate(d);
            }
        }
        if let State::Failed(_) = state {
            let name = self.entries[id].name.clone();
            for i in 0..self.graph.required_by.get(id).map_or(0, Vec::len) {
                let d = self.graph.required_by[id][i];
                let s = &self.entries[d].svc;
                if s.state.is_active() && s.want == Want::Up {
                    self.queue.push_back((d, Event::DepFailed(name.clone())));
                }
            }
        }
        if !state.is_active() {
            self.entries[id].stop = StopMark::None;
            for i in 0..self.graph.after.get(id).map_or(0, Vec::len) {
                let d = self.graph.after[id][i];
                self.check_stop_gate(d);
            }
        }
    }

    /// A waiting unit starts once everything it is ordered after is settled.
    fn check_start_gate(&mut self, id: ServiceId) {
        let g = &self.graph;
        for &d in &g.requires[id] {
            let dep = &self.entries[d];
            if !dep.runnable() {
                self.queue
                    .push_back((id, Event::DepInvalid(dep.name.clone())));
                return;
            }
            if matches!(dep.svc.state, State::Failed(_)) {
                self.queue
                    .push_back((id, Event::DepFailed(dep.name.clone())));
                return;
            }
            if !dep.svc.state.is_up() {
                return;
            }
        }
        for &d in &g.after[id] {
            let dep = &self.entries[d];
            // A unit ordered before this one whose attempt failed has had
            // its turn (as a failed start job does in systemd): waiting out
            // its restarts could take for ever. Required units were checked
            // above and are up.
            let pending = dep.runnable()
                && dep.svc.want == Want::Up
                && dep.svc.state.is_active()
                && !dep.svc.state.is_up()
                && !matches!(dep.svc.state, State::Restarting { .. });
            if pending {
                return;
            }
        }
        self.queue.push_back((id, Event::DepsReady));
    }

    /// A unit queued to stop gets Stop once no unit ordered after it that is
    /// also going down is still active.
    fn check_stop_gate(&mut self, id: ServiceId) {
        if self.entries[id].stop != StopMark::Queued {
            return;
        }
        let blocked = self.graph.before[id].iter().any(|&d| {
            let dep = &self.entries[d];
            dep.stop != StopMark::None && dep.svc.state.is_active()
        });
        if !blocked {
            self.entries[id].stop = StopMark::Sent;
            self.queue.push_back((id, Event::Stop));
        }
    }

    // --- jobs -----------------------------------------------------------

    fn settle_jobs(&mut self, now: Instant) {
        let mut i = 0;
        while i < self.jobs.len() {
            if self.job_done(i, now) {
                let job = self.jobs.remove(i);
                self.finish_job(job, now);
            } else {
                i += 1;
            }
        }
    }

    fn job_done(&mut self, i: usize, now: Instant) -> bool {
        let job = &self.jobs[i];
        match job.kind {
            JobKind::Start | JobKind::Restart { stopping: false } => {
                let mut all_settled = true;
                for &id in &job.ids {
                    match self.job_outcome(job, id, now) {
                        Some(Err(_)) => return true,
                        Some(Ok(())) => {}
                        None => all_settled = false,
                    }
                }
                all_settled
            }
            JobKind::Stop | JobKind::Kill => job
                .ids
                .iter()
                .all(|&id| self.entries[id].down_or_overridden()),
            JobKind::Restart { stopping: true } => {
                if !job
                    .ids
                    .iter()
                    .all(|&id| self.entries[id].down_or_overridden())
                {
                    return false;
                }
                let ids = job.ids.clone();
                self.jobs[i].kind = JobKind::Restart { stopping: false };
                for &id in &ids {
                    self.entries[id].svc.on_event(Event::ResetCounters, now);
                }
                self.start(&ids, true, now);
                self.jobs[i].baseline = self.baseline(&ids);
                false
            }
        }
    }

    /// Each unit of `ids` and what they Require, transitively, with its
    /// count of failed attempts now.
    fn baseline(&self, ids: &[ServiceId]) -> BTreeMap<ServiceId, u64> {
        let mut baseline = BTreeMap::new();
        let mut todo: Vec<ServiceId> = ids.to_vec();
        while let Some(id) = todo.pop() {
            if baseline
                .insert(id, self.entries[id].svc.failed_attempts)
                .is_none()
            {
                todo.extend(self.graph.requires.get(id).into_iter().flatten());
            }
        }
        baseline
    }

    /// Whether `id` failed an attempt since the job began.
    fn failed_since(&self, job: &Job, id: ServiceId) -> bool {
        job.baseline
            .get(&id)
            .is_some_and(|&n| self.entries[id].svc.failed_attempts > n)
    }

    /// For one unit of a start job: Some(Ok) up, Some(Err(why)) failed
    /// (for good, or an attempt of it or of what it Requires failed and
    /// the restart policy now goes on without the client), None still going.
    fn job_outcome(&self, job: &Job, id: ServiceId, now: Instant) -> Option<Result<(), String>> {
        let e = &self.entries[id];
        if let Some(outcome) = start_outcome(e) {
            return Some(outcome);
        }
        if self.failed_since(job, id) {
            return Some(Err(self.attempt_failure(id, now)));
        }
        // What it Requires, nearest first.
        let mut seen = BTreeSet::from([id]);
        let mut todo: VecDeque<ServiceId> = self.graph.requires[id].iter().copied().collect();
        while let Some(d) = todo.pop_front() {
            if !seen.insert(d) {
                continue;
            }
            if self.failed_since(job, d) {
                return Some(Err(format!(
                    "dependency {} failed: {}",
                    self.entries[d].name,
                    self.attempt_failure(d, now)
                )));
            }
            todo.extend(self.graph.requires[d].iter().copied());
        }
        None
    }

    /// Why the last attempt of `id` failed, and what happens next.
    fn attempt_failure(&self, id: ServiceId, now: Instant) -> String {
        let svc = &self.entries[id].svc;
        let why = match (&svc.state, &svc.restart_reason) {
            (State::Failed(r), _) | (_, Some(r)) => r.to_string(),
            _ => "the attempt failed".to_owned(),
        };
        match svc.next_attempt() {
            Some(at) => format!(
                "{why}; restarting in the background (next attempt in {}, attempt {})",
                seconds(at.saturating_duration_since(now)),
                svc.restarts.saturating_add(2)
            ),
            None if svc.state.is_active() => format!("{why}; restarting in the background"),
            None => why,
        }
    }

    fn finish_job(&mut self, job: Job, now: Instant) {
        let results: Vec<JobResult> = job
            .ids
            .iter()
            .map(|&id| {
                let e = &self.entries[id];
                let (ok, message) = match job.kind {
                    JobKind::Start | JobKind::Restart { .. } => {
                        match self.job_outcome(&job, id, now) {
                            Some(Ok(())) => (true, None),
                            Some(Err(why)) => (false, Some(why)),
                            None => (true, Some("still starting".to_owned())),
                        }
                    }
                    // Never a success while something of it may live on.
                    JobKind::Stop | JobKind::Kill => match &e.svc.state {
                        State::Failed(r @ Reason::Survived(_)) => (false, Some(r.to_string())),
                        _ => (true, None),
                    },
                };
                JobResult {
                    name: e.name.clone(),
                    ok,
                    state: e.state_name(),
                    message,
                }
            })
            .collect();
        let response = match job.kind {
            JobKind::Kill => {
                self.exiting = true;
                Response::Bye
            }
            _ => Response::Job(results),
        };
        if let Some(conn) = job.conn {
            self.effects.push_back(Effect::Reply(conn, response));
        }
    }

    // --- queries --------------------------------------------------------

    fn lookup(&self, names: &[String]) -> Result<Vec<ServiceId>, Response> {
        let mut ids = Vec::with_capacity(names.len());
        for name in names {
            match self.by_name.get(name) {
                Some(&id) => {
                    if !ids.contains(&id) {
                        ids.push(id);
                    }
                }
                None => {
                    return Err(Response::error(
                        format!("no unit named `{name}` in {}", self.service_dir.display()),
                        Some(&format!(
                            "`diakonos list` shows the units; a unit is a file {}/{name}.service",
                            self.service_dir.display()
                        )),
                    ))
                }
            }
        }
        Ok(ids)
    }

    fn lookup_valid(&self, names: &[String]) -> Result<Vec<ServiceId>, Response> {
        let ids = self.lookup(names)?;
        for &id in &ids {
            let e = &self.entries[id];
            if !e.runnable() {
                let error = e.error().unwrap_or_else(|| "does not load".to_owned());
                let first = error.lines().next().unwrap_or_default();
                return Err(Response::error(
                    format!("unit `{}` is invalid: {first}", e.name),
                    Some(&format!(
                        "fix it, then `diakonos verify {}` and `diakonos reload`",
                        e.name
                    )),
                ));
            }
        }
        Ok(ids)
    }

    pub fn info(&self, id: ServiceId, now: Instant) -> UnitInfo {
        let e = &self.entries[id];
        let state = e.state_name();
        let reason = match (&e.svc.state, state) {
            (_, StateName::Invalid) => e.error(),
            (State::Failed(r), _) => Some(r.to_string()),
            // Why it is waiting to launch again.
            (State::Restarting { .. }, _) => e.svc.restart_reason.as_ref().map(ToString::to_string),
            // Running on an old definition whose file was since broken.
            (s, _) if s.is_active() && !e.runnable() => e.error().map(|err| {
                format!(
                    "the unit file no longer loads (still running the previous definition): {err}"
                )
            }),
            _ => None,
        };
        UnitInfo {
            name: e.name.clone(),
            state,
            pid: e.svc.pid().map(|p| p.as_raw() as u32),
            uptime_secs: e.svc.uptime(now).map(|d| d.as_secs()),
            restarts: e.svc.restarts,
            description: e
                .unit
                .as_ref()
                .map(|u| u.description.clone())
                .unwrap_or_default(),
            last_exit: e.svc.last_exit.map(ExitKind::to_wire),
            reason,
            // Launches since the last explicit start: the first is attempt 1.
            next_attempt: e.svc.next_attempt().map(|at| NextAttempt {
                attempt: e.svc.restarts.saturating_add(2),
                in_ms: at.saturating_duration_since(now).as_millis() as u64,
            }),
        }
    }

    fn status(&self, id: ServiceId, now: Instant) -> UnitStatus {
        let e = &self.entries[id];
        let names = |ids: &[ServiceId]| -> Vec<String> {
            ids.iter().map(|&d| self.entries[d].name.clone()).collect()
        };
        let (requires, wants, after) = match &e.unit {
            Some(u) => (u.requires.clone(), u.wants.clone(), u.after.clone()),
            None => Default::default(),
        };
        UnitStatus {
            info: self.info(id, now),
            path: e.path.clone(),
            kind: match e.unit.as_ref().map(|u| u.kind) {
                Some(ServiceType::Simple) => "simple",
                Some(ServiceType::Oneshot) => "oneshot",
                Some(ServiceType::Forking) => "forking",
                Some(ServiceType::Notify) => "notify",
                None => "",
            }
            .to_owned(),
            enabled: self.enabled.contains(&e.name),
            requires,
            wants,
            after,
            required_by: names(&self.graph.required_by[id]),
            log_path: self.log_path(&e.name),
        }
    }

    pub fn counts(&self) -> Vec<(StateName, u32)> {
        let mut counts: BTreeMap<StateName, u32> = BTreeMap::new();
        for e in self.entries.iter().filter(|e| !e.gone) {
            *counts.entry(e.state_name()).or_default() += 1;
        }
        counts.into_iter().collect()
    }

    pub fn service_dir(&self) -> &Path {
        &self.service_dir
    }
}

/// `1.5s`, `3s`: a delay as `status` and job errors show it.
fn seconds(d: std::time::Duration) -> String {
    let tenths = (d.as_millis() + 50) / 100;
    if tenths % 10 == 0 || tenths >= 100 {
        format!("{}s", (tenths + 5) / 10)
    } else {
        format!("{}.{}s", tenths / 10, tenths % 10)
    }
}

/// For a start job: Some(Ok) up, Some(Err(why)) failed, None still going.
fn start_outcome(e: &Entry) -> Option<Result<(), String>> {
    match &e.svc.state {
        s if s.is_up() => Some(Ok(())),
        State::Failed(r) => Some(Err(r.to_string())),
        State::Inactive if e.svc.want == Want::Down => {
            Some(Err("stopped before it came up".to_owned()))
        }
        _ if !e.runnable() => Some(Err(e.error().unwrap_or_default())),
        _ => None,
    }
}

fn first_error(errors: &[UnitError]) -> String {
    errors
        .first()
        .map(|e| {
            let text = e.to_string();
            text.lines().next().unwrap_or_default().to_owned()
        })
        .unwrap_or_default()
}

fn add_dep_error(e: &mut Entry, msg: String) {
    match &mut e.dep_error {
        Some(existing) if existing.contains(&msg) => {}
        Some(existing) => {
            existing.push('\n');
            existing.push_str(&msg);
        }
        None => e.dep_error = Some(msg),
    }
}

/// The policy of a unit that did not load: it never runs.
fn inert_policy() -> Policy {
    use crate::unit::RestartPolicy;
    use std::time::Duration;
    Policy {
        kind: ServiceType::Simple,
        restart: RestartPolicy::No,
        restart_sec: Duration::ZERO,
        restart_max_delay: Duration::ZERO,
        timeout_start: Duration::ZERO,
        timeout_stop: Duration::ZERO,
        kill_signal: Signal::SIGTERM,
        has_exec_stop: false,
        remain_after_exit: false,
        start_limit_burst: 0,
        start_limit_interval: Duration::ZERO,
    }
}

#[cfg(test)]
mod tests {
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
        /// Processes the supervisor asked to watch.
        watched: Vec<Pid>,
        alive_groups: BTreeSet<i32>,
        fail_spawn: BTreeSet<String>,
        /// Processes that moved to another (group, session) since spawned.
        moved: HashMap<i32, (i32, i32)>,
        /// Groups in `alive_groups` whose leader is dead (only members left).
        dead_leaders: BTreeSet<i32>,
    }

    impl Sys for FakeSys {
        fn spawn(&mut self, unit: &Unit, role: Role) -> Result<Pid, SpawnError> {
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
            Ok(pid)
        }
        fn group_alive(&mut self, pgid: Pid) -> bool {
            self.alive_groups.contains(&pgid.as_raw())
        }
        fn scan_main_pid(
            &mut self,
            _: &Unit,
            _: Pid,
            _: &[Pid],
            _: &[Pid],
            _: &mut MainPidScan,
            _: Instant,
        ) -> Option<Result<(Pid, Pid), String>> {
            self.next_pid += 1;
            let pid = Pid::from_raw(1000 + self.next_pid);
            self.alive_groups.insert(pid.as_raw());
            Some(Ok((pid, pid)))
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
        fn is_other_user(&mut self, user: &str) -> bool {
            user != "me"
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
        s.run(now, sys);
        s.effects.retain(|e| match e {
            Effect::Signal { pgid, signal } => {
                sys.signals.push((*pgid, *signal));
                false
            }
            Effect::Watch(pid) => {
                sys.watched.push(*pid);
                false
            }
            _ => true,
        });
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
        assert!(
            matches!(resp, Some(Response::Error { message, .. }) if message.contains("invalid"))
        );
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
    fn notify_as_another_user_fails_at_once_saying_why() {
        // Type=notify with another User= never spawns: the notify socket is out of its reach.
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
        assert_eq!(sys.order(), ["mine"], "pg is never spawned");
        let reply = job_reply(&mut s);
        let pg = reply.iter().find(|r| r.0 == "pg").unwrap();
        assert_eq!((pg.1, pg.2), (false, StateName::Failed));
        assert!(
            pg.3.starts_with("Type=notify cannot work with User=postgres: the notify socket"),
            "{pg:?}"
        );
    }

    #[test]
    fn unknown_unit_names_are_an_error() {
        // Naming a unit that does not exist is answered at once.
        let mut s = sup(&[("a", SIMPLE)]);
        let resp = s.request(Some(1), Request::Stop(names(&["nope"])), Instant::now());
        assert!(
            matches!(resp, Some(Response::Error { message, .. }) if message.contains("`nope`"))
        );
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
        s.notified(Pid::from_raw(1), Some(Pid::from_raw(1)), "READY=1");
        pass(&mut s, t0, &mut sys);
        assert_eq!(state(&s, "n"), StateName::Starting);
        // A child in its group may speak for it.
        s.notified(
            Pid::from_raw(99_999),
            Some(pid),
            "STATUS=warming up\nREADY=1\n",
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

    #[test]
    fn restore_kills_the_leftover_group_of_a_dead_main_before_restarting() {
        // A main process that died while no daemon ran, whose workers live on, has its group killed and waited for; then it restarts.
        let mut s = sup(&[("web", "[service]\nExecStart = \"w\"\nRestartSec = 0\n")]);
        let mut sys = FakeSys::default();
        sys.alive_groups.insert(4242);
        sys.dead_leaders.insert(4242); // the master is dead, its workers are not
        let t0 = Instant::now();
        let adopted = s.restore(
            state_of(vec![saved("web", Some(4242), Some(42_420))]),
            Vec::new(),
            BTreeSet::new(),
            t0,
            1010,
            &mut sys,
        );
        pass(&mut s, t0, &mut sys);
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
        }
    }

    fn state_of(services: Vec<SavedService>) -> SavedState {
        SavedState {
            version: persist::STATE_VERSION,
            service_dir: Some(PathBuf::from("/srv/units")),
            services,
        }
    }

    #[test]
    fn restore_adopts_live_processes_with_their_counts() {
        // A saved process that is still the same process is adopted: same pid, restarts kept.
        let mut s = sup(&[("web", SIMPLE)]);
        let mut sys = FakeSys::default();
        sys.alive_groups.insert(4242);
        let t0 = Instant::now();
        let adopted = s.restore(
            state_of(vec![saved("web", Some(4242), Some(42_420))]),
            Vec::new(),
            BTreeSet::new(),
            t0,
            1010,
            &mut sys,
        );
        pass(&mut s, t0, &mut sys);
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
    fn restore_never_adopts_a_reused_pid() {
        // A pid whose start time differs is someone else's: the service counts as dead and restarts.
        let mut s = sup(&[("web", "[service]\nExecStart = \"w\"\nRestartSec = 0\n")]);
        let mut sys = FakeSys::default();
        sys.alive_groups.insert(4242); // alive, but started at 42420, not 7
        let t0 = Instant::now();
        let adopted = s.restore(
            state_of(vec![saved("web", Some(4242), Some(7))]),
            Vec::new(),
            BTreeSet::new(),
            t0,
            1010,
            &mut sys,
        );
        pass(&mut s, t0, &mut sys);
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
        let mut s = sup(&[("a", SIMPLE), ("b", SIMPLE), ("c", SIMPLE)]);
        let mut sys = FakeSys::default();
        sys.alive_groups.insert(77);
        let t0 = Instant::now();
        let mut stopping = saved("b", Some(77), Some(770));
        stopping.stopping = true;
        s.restore(
            state_of(vec![stopping]),
            Vec::new(),
            ["a".to_owned()].into(),
            t0,
            1010,
            &mut sys,
        );
        pass(&mut s, t0, &mut sys);
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
        };
        let t0 = Instant::now();
        let adopted = s.restore(
            state_of(vec![saved("web", Some(400), Some(4000))]), // 400 is dead
            vec![tag("web", 500), tag("lost", 600)],
            BTreeSet::new(),
            t0,
            1010,
            &mut sys,
        );
        pass(&mut s, t0, &mut sys);
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
        let mut state = state_of(vec![saved("other", Some(99), Some(990))]);
        state.service_dir = Some(PathBuf::from("/elsewhere"));
        s.restore(
            state,
            Vec::new(),
            BTreeSet::new(),
            Instant::now(),
            1010,
            &mut sys,
        );
        assert_eq!(s.poll_effect(), None);
        // The same from our own directory: its file was removed, so it is stopped.
        let state = state_of(vec![saved("other", Some(99), Some(990))]);
        s.restore(
            state,
            Vec::new(),
            BTreeSet::new(),
            Instant::now(),
            1010,
            &mut sys,
        );
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
        let mut s = sup(&[("a", SIMPLE), ("b", SIMPLE)]);
        let mut sys = FakeSys::default();
        let t0 = Instant::now();
        s.request(None, Request::Start(names(&["a"])), t0);
        pass(&mut s, t0, &mut sys);
        assert!(s.take_dirty());
        let snap = s.snapshot(t0, 5000);
        assert_eq!(snap.services.len(), 1);
        let a = &snap.services[0];
        let pid = sys.pid_of("a").as_raw();
        assert_eq!(
            (a.name.as_str(), a.pid, a.start_time),
            ("a", Some(pid), Some(pid as u64 * 10))
        );
        assert_eq!(snap.service_dir.as_deref(), Some(Path::new("/srv/units")));
    }

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

    #[test]
    fn reload_changes_only_what_changed() {
        // New units appear, removed ones stop, changed running ones restart, the rest keep their pids.
        let mut s = sup(&[("keep", SIMPLE), ("edit", SIMPLE), ("drop", SIMPLE)]);
        let mut sys = FakeSys::default();
        let t0 = Instant::now();
        s.request(None, Request::Start(names(&["keep", "edit", "drop"])), t0);
        pass(&mut s, t0, &mut sys);
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
        exit(
            &mut s,
            &mut sys,
            edit,
            ExitKind::Signal(Signal::SIGTERM),
            t0,
        );
        exit(
            &mut s,
            &mut sys,
            drop,
            ExitKind::Signal(Signal::SIGTERM),
            t0,
        );
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
        let mut s = sup(&[("web", SIMPLE)]);
        let mut sys = FakeSys::default();
        let t0 = Instant::now();
        s.request(None, Request::Start(names(&["web"])), t0);
        pass(&mut s, t0, &mut sys);
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
        let mut s = sup(&[("b", SIMPLE)]);
        let mut sys = FakeSys::default();
        let t0 = Instant::now();
        s.request(None, Request::Start(names(&["b"])), t0);
        pass(&mut s, t0, &mut sys);
        let b = sys.pid_of("b");
        s.reload(loaded(&[
            (
                "b",
                "[unit]\nRequires = [\"c\"]\n[service]\nExecStart = \"b2\"\n",
            ),
            ("c", SIMPLE),
        ]));
        pass(&mut s, t0, &mut sys);
        exit(&mut s, &mut sys, b, ExitKind::Signal(Signal::SIGTERM), t0);
        assert_eq!(state(&s, "c"), StateName::Running);
        assert_eq!(state(&s, "b"), StateName::Running);
        let order = sys.order();
        assert_eq!(&order[order.len() - 2..], ["c", "b"]);
    }

    #[test]
    fn reload_that_removes_a_requirement_stops_its_dependents_first() {
        // Removing a required unit's file stops the units that Require it, before it.
        let mut s = sup(&[
            ("a", SIMPLE),
            (
                "b",
                "[unit]\nRequires = [\"a\"]\n[service]\nExecStart = \"b\"\n",
            ),
        ]);
        let mut sys = FakeSys::default();
        let t0 = Instant::now();
        s.request(None, Request::Start(names(&["b"])), t0);
        pass(&mut s, t0, &mut sys);
        let (a, b) = (sys.pid_of("a"), sys.pid_of("b"));
        s.reload(loaded(&[(
            "b",
            "[unit]\nRequires = [\"a\"]\n[service]\nExecStart = \"b\"\n",
        )]));
        pass(&mut s, t0, &mut sys);
        assert_eq!(sys.signals, [(b, Signal::SIGTERM)], "b first");
        exit(&mut s, &mut sys, b, ExitKind::Signal(Signal::SIGTERM), t0);
        assert_eq!(sys.signals, [(b, Signal::SIGTERM), (a, Signal::SIGTERM)]);
        exit(&mut s, &mut sys, a, ExitKind::Signal(Signal::SIGTERM), t0);
        assert_eq!(state(&s, "b"), StateName::Inactive);
        assert_eq!(s.id_of("a"), None);
    }
}
