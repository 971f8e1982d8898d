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
//! once still go through the [`Sys`] trait; a main process is only cloned
//! there, and up at once (SPEC §6: `simple` is up once spawned, as
//! systemd's Type=simple); an exec that fails after all comes later as
//! [`Input::ExecDone`] and fails the service then — an ExecStop's too.
//! It reads no clock: the event loop passes
//! the monotonic time with each input and the wall clock once per pass
//! ([`Supervisor::set_wall_clock`]). So this layer is tested with a
//! fake system and fake times, asserting on effects. Events for services
//! are queued and drained, never handled recursively.
//!
//! Here: the table and [`Supervisor::handle`]. Along its seams: `io.rs`
//! (inputs, effects, the [`Sys`] reads), `inputs.rs` (what the processes
//! report: notify messages, exec outcomes, exits, expired timers, the
//! watchdog), `entry.rs` (one unit's record), `queue.rs`
//! (draining events, actions to effects, dependency gates), `jobs.rs`
//! (requests and jobs), `adopt.rs` (snapshot, adoption, enabled set),
//! `reload.rs`, `views.rs` (what `list` and `status` show), `health.rs`,
//! `hooks.rs`, `why.rs`, `wait.rs`.

use crate::hash::HashMap;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::{Path, PathBuf};
use std::time::Instant;

use nix::sys::signal::Signal;
use nix::unistd::Pid;

use crate::daemon::persist::{
    self, SavedBoot, SavedRun, SavedService, SavedStart, SavedState, SavedTimer,
};
use crate::daemon::sd_notify::{self, Message};
use crate::daemon::service::{Action, Event, ExitKind, Policy, Reason, Service, State, Want};
use crate::daemon::spawn::{MainPidError, MainPidScan, SpawnError, Tagged, SCAN_EVERY};
use crate::graph::{self, DepInput, Graph, ServiceId};

use crate::daemon::timers::{ServiceTimer, TimerKey, Timers};
use crate::protocol::{
    JobResult, ListRow, NextAttempt, ReloadReport, Request, Response, StateName, UnitInfo,
    UnitStatus,
};
use crate::unit::{LoadedDir, NotifyAccess, ServiceType, Unit, UnitError};
use std::time::Duration;

mod adopt;
mod entry;
mod health;
mod hooks;
mod inputs;
mod io;
mod jobs;
mod queue;
mod reload;
mod views;
mod wait;
mod why;

/// While a stopping service waits for leftovers that are not our children
/// (adopted ones) and some could not get a pidfd, nothing wakes us when
/// they die: look again this often.
const GROUP_RECHECK: std::time::Duration = std::time::Duration::from_millis(20);

/// How long after a run ended on its own the daemon looks for what it left
/// outside its group (one look for every run that ended meanwhile).
const STRAY_LOOK_DELAY: std::time::Duration = std::time::Duration::from_millis(200);

/// A client connection, as the event loop numbers them.
pub type ConnId = usize;

pub use entry::*;
pub use io::*;

/// A loaded unit, or the joined text of its errors and the file they are in.
fn split_load(
    result: Result<Unit, Vec<UnitError>>,
) -> (Option<Unit>, Option<String>, Option<PathBuf>) {
    match result {
        Ok(mut u) => {
            // Where values were written is for `verify`, not for the daemon.
            u.source.forget_places();
            (Some(u), None, None)
        }
        Err(errors) => {
            let path = errors.first().map(|e| e.path.clone()).unwrap_or_default();
            (None, Some(crate::unit::errors_text(&errors)), Some(path))
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
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
    /// Every listed unit's id, in name order (the names are the entries').
    by_name: NameIndex,
    graph: Graph,
    /// Removed units that kept their place in the graph because they were
    /// still active at its last rebuild (their dependents go down first):
    /// once one is down, the graph is rebuilt without it.
    gone_in_graph: Vec<ServiceId>,
    /// The daemon's one timer queue; drivers arm their keys through
    /// [`Supervisor::timers`] and get them back from [`Supervisor::take_due`].
    timers: Timers<TimerKey>,
    /// Expired keys that belong to a driver, for the loop to route.
    due: Vec<TimerKey>,
    /// Services whose memory check is due (done in `run`, which has `Sys`).
    mem_due: Vec<ServiceId>,
    queue: VecDeque<(ServiceId, Event)>,
    pids: PidMap,
    /// The units' policies and working directories, each distinct one kept once.
    shared: Shared,
    awaiting_group: BTreeSet<ServiceId>,
    /// Runs that ended on their own in this pass, with their main
    /// process's start time: their strays are looked for at its end.
    ended_runs: Vec<(ServiceId, Option<u64>)>,
    /// The look for them is due (its timer fired in this pass).
    stray_look_due: bool,
    /// Looks for strays asked in this pass, sent as one effect at its end,
    /// once every process it started is known (a main, an ExecStop or an
    /// Exec probe spawned later in the pass is not a stray).
    pending_strays: Vec<StrayLook>,
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
    /// Units whose file changed on disk since the last load.
    changed_on_disk: BTreeSet<String>,
    /// Adopted processes that run another definition than their file's
    /// (edited before an upgrade or a crash, never reloaded): the next
    /// reload restarts them, as it would have. Until they spawn again.
    /// With the digest of the file they run (for the next daemon).
    stale: BTreeMap<String, u64>,
    /// Unit files written since the last load whose unit is not loaded:
    /// `list` shows them (`inactive`, or `invalid` with the error their
    /// file gave when it was written), `reload` loads them.
    /// (A list: there are few, and a map of this value type would cost
    /// kilobytes of code.)
    new_on_disk: Vec<(String, Option<String>)>,
    /// Something worth persisting changed since the last `take_dirty`.
    dirty: bool,
    /// Probe results not in the state file yet: written with the next
    /// write, or before a client is told anything, but never on their own
    /// (a probe every few seconds would rewrite the file as often).
    probes_unsaved: bool,
    /// Clients waiting for units to reach a condition (`wait`).
    waiters: Vec<wait::Waiter>,
    next_wait: u64,
    /// Counts the changes worth persisting (for the metrics file).
    changes: u64,
    /// Exec health probes that are out: pid -> service.
    probe_pids: HashMap<Pid, ServiceId>,
    /// Services whose probe timer expired, for `run` (which has the `Sys`).
    due_probes: Vec<ServiceId>,
    /// Some client follows `events`: state changes become effects.
    pub events_wanted: bool,
    /// `Persistent` timers' records (the state file's `timers`).
    timer_marks: BTreeMap<String, SavedTimer>,
    /// The boot and the start of the daemons that handed over to each
    /// other, and every `[timer]` unit's runs (the state file's `boot`
    /// and `runs`).
    boot: Option<SavedBoot>,
    timer_runs: persist::Runs,
    /// The units that have `[socket]`, `[timer]` or WatchPaths (in force
    /// or waiting for their next start), indexed at load and reload: the
    /// drivers look at these after every pass, not at every unit.
    activated: Activated,
    /// The wall clock as the event loop last read it, with the monotonic
    /// time of that reading: the supervisor reads no clock itself (`None`
    /// until the loop first tells it; unit tests need not).
    wall: Option<(Instant, u64)>,
}

/// Ids of units the activation drivers care about ([`Supervisor::with_socket`] ...).
#[derive(Debug, Default)]
struct Activated {
    sockets: Vec<ServiceId>,
    timers: Vec<ServiceId>,
    watches: Vec<ServiceId>,
}

impl Supervisor {
    /// The wall clock (Unix milliseconds) read at monotonic `now`, by the
    /// event loop once per pass.
    pub fn set_wall_clock(&mut self, now: Instant, unix_ms: u64) {
        self.wall = Some((now, unix_ms));
    }

    /// Unix milliseconds at `at`, from the loop's last reading (0 before any).
    pub(super) fn wall_ms(&self, at: Instant) -> u64 {
        match self.wall {
            Some((base, ms)) if at >= base => ms.saturating_add((at - base).as_millis() as u64),
            Some((base, ms)) => ms.saturating_sub((base - at).as_millis() as u64),
            None => 0,
        }
    }

    pub fn new(loaded: LoadedDir, service_dir: PathBuf, logs_dir: PathBuf, seed: u64) -> Self {
        let mut sup = Supervisor {
            wall: None,
            service_dir,
            logs_dir,
            entries: Vec::with_capacity(loaded.units.len()),
            by_name: NameIndex::default(),
            graph: Graph::default(),
            gone_in_graph: Vec::new(),
            timers: Timers::default(),
            due: Vec::new(),
            mem_due: Vec::new(),
            queue: VecDeque::new(),
            pids: PidMap::default(),
            shared: Shared::default(),
            awaiting_group: BTreeSet::new(),
            ended_runs: Vec::new(),
            stray_look_due: false,
            pending_strays: Vec::new(),
            jobs: Vec::new(),
            effects: VecDeque::new(),
            exiting: false,
            killing: false,
            warnings: loaded.warnings,
            seed,
            enabled: BTreeSet::new(),
            changed_on_disk: BTreeSet::new(),
            stale: BTreeMap::new(),
            new_on_disk: Vec::new(),
            dirty: false,
            probes_unsaved: false,
            waiters: Vec::new(),
            next_wait: 0,
            changes: 0,
            probe_pids: HashMap::default(),
            due_probes: Vec::new(),
            events_wanted: false,
            timer_marks: BTreeMap::new(),
            boot: None,
            timer_runs: Vec::new(),
            activated: Activated::default(),
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
        let entry = Entry::new(name, result, seed, &mut self.shared);
        match reuse {
            Some(id) => self.entries[id] = entry,
            None => self.entries.push(entry),
        }
        self.by_name.insert(&self.entries, id);
        id
    }

    /// Recomputes the dependency graph and each unit's dependency errors.
    pub(super) fn rebuild_graph(&mut self) {
        fn input(e: &Entry, present: bool) -> DepInput<'_> {
            const EMPTY: &[String] = &[];
            match (e.next_unit.as_deref().or(e.unit.as_deref()), present) {
                (Some(u), true) => DepInput {
                    name: &e.name,
                    file: e.path(),
                    requires: &u.requires,
                    wants: &u.wants,
                    after: &u.after,
                    conflicts: &u.conflicts,
                },
                // Gone units are no one's dependency (unit names are never empty).
                (_, present) => DepInput {
                    name: if present { &e.name } else { "" },
                    file: e.path(),
                    requires: EMPTY,
                    wants: EMPTY,
                    after: EMPTY,
                    conflicts: EMPTY,
                },
            }
        }
        // The definition that will be in force: a changed one waiting for
        // its restart counts already. A removed unit keeps its place while
        // it still runs, so its dependents go down first.
        let inputs: Vec<DepInput<'_>> = self
            .entries
            .iter()
            .map(|e| input(e, !e.gone || e.svc.state.is_active()))
            .collect();
        let (graph, mut findings) = graph::check(&inputs, &self.service_dir);
        if self
            .entries
            .iter()
            .any(|e| e.gone && e.svc.state.is_active())
        {
            // ... but it satisfies no one's Requires: a dependent started
            // while it stops would start without it.
            let without: Vec<DepInput<'_>> =
                self.entries.iter().map(|e| input(e, !e.gone)).collect();
            findings.errors = graph::check(&without, &self.service_dir).1.errors;
        }
        drop(inputs);
        self.graph = graph;
        self.gone_in_graph = (0..self.entries.len())
            .filter(|&id| self.entries[id].gone && self.entries[id].svc.state.is_active())
            .collect();
        for (e, errors) in self.entries.iter_mut().zip(findings.errors) {
            e.dep_error = errors.map(Box::new);
        }
        self.warnings
            .extend(findings.warnings.into_iter().map(|(_, w)| w));
        self.index_activated();
    }

    /// Rebuilds [`Activated`] (after the table changed: load, reload).
    /// A unit counts if its definition in force or the one waiting for
    /// its next start has the section, so taking a waiting one over
    /// needs no new index.
    fn index_activated(&mut self) {
        let mut index = Activated::default();
        for (id, e) in self.entries.iter().enumerate() {
            let defs = || e.unit.iter().chain(e.next_unit.iter());
            if defs().any(|u| u.socket.is_some()) {
                index.sockets.push(id);
            }
            if defs().any(|u| u.timer.is_some()) {
                index.timers.push(id);
            }
            if defs().any(|u| !u.triggers.watch_paths.is_empty()) {
                index.watches.push(id);
            }
        }
        self.activated = index;
    }

    /// Ids of the units that may have `[socket]` (a superset: check the unit).
    pub fn with_socket(&self) -> &[ServiceId] {
        &self.activated.sockets
    }

    /// Ids of the units that may have `[timer]` (a superset: check the unit).
    pub fn with_timer(&self) -> &[ServiceId] {
        &self.activated.timers
    }

    /// Ids of the units that may have WatchPaths (a superset: check the unit).
    pub fn with_watch_paths(&self) -> &[ServiceId] {
        &self.activated.watches
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The on-demand `[socket]` units whose sockets should be watched for a
    /// first connection now: enabled and inactive (not failed: a unit that
    /// cannot start must not be started again by every waiting client).
    pub fn armable(&self) -> impl Iterator<Item = &Unit> {
        self.activated
            .sockets
            .iter()
            .map(|&id| &self.entries[id])
            // None while everything stops: a connection then is refused,
            // not a start the daemon must refuse again and again.
            .filter(|_| !self.exiting && !self.killing)
            .filter(|e| self.waits_for_a_connection(e))
            .filter_map(|e| e.unit.as_deref())
    }

    /// An on-demand unit that is enabled and down, having stopped or ended
    /// well (not failed: its waiting clients would start it again and
    /// again): its sockets are armed.
    fn waits_for_a_connection(&self, e: &Entry) -> bool {
        !e.gone
            && e.on_demand()
            && matches!(e.state_name(), StateName::Inactive | StateName::Exited)
            && self.enabled.contains(&e.name)
    }

    /// A unit file was written or removed (`present` None) since the last
    /// load: a loaded unit is flagged changed, a name not loaded is noted
    /// as new on disk while its file is there, with the error it gave when
    /// parsed on its own (`Some(Some(error))`).
    pub fn mark_changed_on_disk(&mut self, name: &str, present: Option<Option<String>>) {
        if self.by_name.contains_key(&self.entries, name) {
            if !self.changed_on_disk.contains(name) {
                self.changed_on_disk.insert(name.to_string());
            }
        } else {
            self.new_on_disk.retain(|(n, _)| n != name);
            if let Some(error) = present {
                self.new_on_disk.push((name.to_string(), error));
            }
        }
    }

    /// Units starting whose start is judged by how their process exits (a
    /// oneshot's run, a forking service's starter, then the search for its
    /// main process).
    pub fn starts_judged_by_exit(&self) -> usize {
        self.entries
            .iter()
            .filter(|e| {
                matches!(e.svc.state, State::Starting { .. })
                    && matches!(
                        e.svc.policy.kind,
                        ServiceType::Oneshot | ServiceType::Forking
                    )
            })
            .count()
    }

    pub fn is_enabled(&self, name: &str) -> bool {
        self.enabled.contains(name)
    }

    /// The unit files written since the last load (not units yet).
    pub fn new_on_disk_names(&self) -> Vec<String> {
        self.new_on_disk.iter().map(|(n, _)| n.clone()).collect()
    }

    pub fn id_of(&self, name: &str) -> Option<ServiceId> {
        self.by_name.get(&self.entries, name).copied()
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
        let effect = self.effects.pop_front();
        if effect.is_none() {
            queue::shrink_idle(&mut self.effects);
        }
        effect
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
                    match (conn, resp) {
                        (Some(conn), resp) => self.effects.push_back(Effect::Reply(conn, resp)),
                        // The daemon's own request (a socket's first
                        // connection, a timer, `daemon --init NAME`): no one
                        // else would hear why it was refused.
                        (None, Response::Error { message, .. }) => {
                            log::warn!("{message}");
                        }
                        (None, _) => {}
                    }
                }
            }
            Input::ProbeOutput(pid, text) => self.probe_output(pid, text),
            Input::ChildExited(pid, kind) => {
                if !self.probe_exited(pid, kind, now) {
                    self.child_exited(pid, kind)
                }
            }
            Input::ExecDone { pid, outcome } => self.exec_done(pid, outcome, now),
            Input::ProbeDone { id, gen, outcome } => self.probe_done(id, gen, outcome, now),
            Input::Notify {
                sender,
                group,
                payload,
                main_pid,
                monotonic,
            } => self.notified(sender, group, &payload, (main_pid, monotonic), now),
            Input::Terminate => {
                if self.killing && !self.exiting {
                    // A second SIGTERM/SIGINT: everything stops at once,
                    // without waiting for dependents (SPEC §14).
                    log::info!("second stop signal: stopping every service at once");
                    for id in 0..self.entries.len() {
                        if self.entries[id].svc.state.is_active() {
                            self.queue.push_back((id, Event::Stop));
                        }
                    }
                } else if !self.exiting {
                    self.kill(None);
                }
            }
            Input::Tick => self.timers_expired(now),
            Input::MainPidScanned { id, scan, outcome } => {
                self.main_pid_scanned(id, scan, outcome, now)
            }
            Input::StraysScanned(found) => self.strays_scanned(found),
            Input::LeftoversWatched {
                id,
                complete,
                zombies,
            } => {
                if let Some(e) = self.entries.get_mut(id) {
                    if e.leftovers == LeftoverWatch::Asked {
                        e.leftovers = match (complete, zombies) {
                            (true, false) => LeftoverWatch::Watched,
                            (true, true) => LeftoverWatch::Relook,
                            (false, _) => LeftoverWatch::Polled,
                        };
                    }
                }
            }
            // `run` looks at the groups again (and watches what is left).
            Input::LeftoverExited(id) => {
                if let Some(e) = self.entries.get_mut(id) {
                    e.leftovers = LeftoverWatch::Due;
                }
            }
        }
    }

    /// Container mode (`--exit-with UNIT`): once `name` has run and ended
    /// with no restart due, the exit code it gives the container (its exit
    /// code, 128 + signal for a death by signal); `None` while it is
    /// active or was never started.
    pub fn ended_with(&self, name: &str) -> Option<u8> {
        let e = &self.entries[*self.by_name.get(&self.entries, name)?];
        if e.svc.state.is_active() {
            return None;
        }
        Some(match (&e.svc.state, e.svc.last_exit) {
            (_, Some(ExitKind::Code(c))) => (c & 0xff) as u8,
            (_, Some(ExitKind::Signal(sig))) => 128u8.saturating_add(sig as i32 as u8),
            (State::Failed(_), _) | (_, Some(ExitKind::Unknown)) => 1,
            _ => 0,
        })
    }

    /// Container mode (`--exit-when all-done`): when no unit is active
    /// (running, starting, waiting, stopping or due to restart), 0, or 1 if
    /// any ended `failed`.
    pub fn all_done(&self) -> Option<u8> {
        if self.entries.iter().any(|e| e.svc.state.is_active()) {
            return None;
        }
        let failed = self
            .entries
            .iter()
            .any(|e| matches!(e.svc.state, State::Failed(_)));
        Some(u8::from(failed))
    }

    /// Whether a unit of this name is in the service directory.
    pub fn knows(&self, name: &str) -> bool {
        self.by_name.contains_key(&self.entries, name)
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

/// The policy of a unit that did not load: it never runs.
fn inert_policy() -> Policy {
    use crate::daemon::service::Span;
    use crate::unit::RestartPolicy;
    Policy {
        kind: ServiceType::Simple,
        restart: RestartPolicy::No,
        restart_sec: Span::ZERO,
        restart_max_delay: Span::ZERO,
        timeout_start: Span::ZERO,
        timeout_stop: Span::ZERO,
        kill_signal: Signal::SIGTERM,
        has_exec_stop: false,
        remain_after_exit: false,
        start_limit_burst: 0,
        start_limit_interval: Span::ZERO,
        probe_readiness: false,
        watchdog_signal: Signal::SIGABRT,
    }
}

#[cfg(test)]
mod tests;
