//! One unit in the supervisor's table: its definition, its state machine
//! and the runtime record around it.

use super::*;
use std::sync::Arc;

/// Where a unit stands in a stop that waits for its dependents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum StopMark {
    None,
    /// Will get Stop once the units ordered after it that also go down are down.
    Queued,
    Sent,
}

/// One unit file and its runtime record.
#[derive(Debug)]
pub struct Entry {
    pub name: String,
    /// The file of the last load when it is not the unit's own (the file
    /// does not load); see [`Entry::path`]. Most entries keep no copy
    /// (and 8 bytes, boxed).
    file: Option<Box<PathBuf>>,
    /// The definition in force; None when the file never loaded. Boxed:
    /// a table of a thousand entries stays small.
    pub unit: Option<Box<Unit>>,
    /// Why the file does not load (it is invalid), if it does not.
    /// (Rare, so boxed, and thin: 8 bytes, not 24 or 16, in each entry.)
    #[allow(clippy::box_collection)]
    pub(super) load_error: Option<Box<String>>,
    /// Missing Requires or a cycle; recomputed with the graph.
    #[allow(clippy::box_collection)]
    pub(super) dep_error: Option<Box<String>>,
    /// A changed definition that takes over at the next start (reload).
    pub(super) next_unit: Option<Box<Unit>>,
    pub svc: Service,
    /// The unit file was removed: hidden from `list`, stopped, but its id
    /// stays valid for timers and pids until it is gone.
    pub(super) gone: bool,
    /// Start time (clock ticks since boot) of the main process, for adoption.
    pub(super) start_time: Option<u64>,
    /// Process groups of the current run besides `svc.pgid`: a forking
    /// service's main process may leave the start command's group (setsid)
    /// after it was found, so its real group and session are recorded when
    /// it is found and re-read whenever the service is signalled. A group
    /// seen empty is dropped (its id may then be reused by a stranger).
    pub(super) groups: Vec<Pid>,
    pub(super) stop: StopMark,
    /// The kind of the state deadline armed for this service, if any.
    pub(super) timer: Option<ServiceTimer>,
    /// A search for the main process of a forking service is under way
    /// (None while a look is out as an effect).
    pub(super) scan: Option<Box<MainPidScan>>,
    /// MemoryMax: checks in a row that found the group's RSS above it.
    pub(super) mem_over: u8,
    /// When it entered its current state (for `why`: waiting for how long).
    pub(super) since: Option<Instant>,
    /// Health probing of the current (or last) run; None without `[health]`.
    pub(super) health: Option<Box<health::HealthRun>>,
    /// What it said over sd_notify in its current run, and its watchdog;
    /// None while all of that is unset ([`RunNotes`]).
    notes: Option<Box<RunNotes>>,
    /// Its failure hooks' record (None until one fires).
    pub(super) hooks: Option<Box<hooks::HookRecord>>,
    /// `DIAKONOS_MONITOR_*` for the next spawn, when it starts as a hook
    /// (boxed, thin: 8 bytes in each entry).
    #[allow(clippy::box_collection)]
    pub(super) hook_env: Option<Box<Vec<(String, String)>>>,
    /// A look for strays at the end of its stop is out ([`Effect::ScanStrays`]).
    pub(super) stray_scan: bool,
    /// Its main process is up (cloned) but its exec not yet seen done:
    /// units ordered after it wait for that, so they find its program
    /// running, not a copy of the daemon on its way there.
    pub(super) exec_pending: bool,
    /// How the end of its leftovers is noticed while its stop waits for them.
    pub(super) leftovers: LeftoverWatch,
}

impl Entry {
    /// When it entered the state it is in (None: not since this daemon).
    pub fn since(&self) -> Option<Instant> {
        self.since
    }

    pub(super) fn new(
        name: String,
        result: Result<Unit, Vec<UnitError>>,
        seed: u64,
        shared: &mut Shared,
    ) -> Entry {
        let (mut unit, load_error, file) = split_load(result);
        if let Some(unit) = &mut unit {
            shared.unit(unit);
        }
        let policy = shared.policy(
            unit.as_ref()
                .map(Policy::from_unit)
                .unwrap_or_else(inert_policy),
        );
        Entry {
            name,
            file: file.map(Box::new),
            unit: unit.map(Box::new),
            load_error: load_error.map(Box::new),
            dep_error: None,
            next_unit: None,
            svc: Service::new(policy, seed),
            gone: false,
            start_time: None,
            groups: Vec::new(),
            stop: StopMark::None,
            timer: None,
            scan: None,
            mem_over: 0,
            since: None,
            health: None,
            notes: None,
            hooks: None,
            hook_env: None,
            stray_scan: false,
            exec_pending: false,
            leftovers: LeftoverWatch::Unwatched,
        }
    }

    /// The unit's file: that of the definition in force, or of the last
    /// load if that failed.
    pub fn path(&self) -> &Path {
        match (&self.file, &self.unit) {
            (Some(file), _) => file,
            (None, Some(unit)) => &unit.path,
            (None, None) => Path::new(""),
        }
    }

    /// Records that the unit's file (`path`) does not load.
    pub(super) fn set_failed_file(&mut self, path: PathBuf) {
        self.file = Some(Box::new(path));
    }

    /// Its file loads again, as the definition it has.
    pub(super) fn clear_load_error(&mut self) {
        self.load_error = None;
        self.file = None;
    }

    /// The last sd_notify STATUS= of the current run.
    pub(super) fn status_text(&self) -> Option<&str> {
        self.notes.as_ref()?.status_text.as_deref()
    }

    pub(super) fn set_status_text(&mut self, text: Option<String>) {
        self.edit_notes(text.is_some(), |n| n.status_text = text);
    }

    /// The last sd_notify ERRNO= of the current run (added to a failure reason).
    pub(super) fn errno(&self) -> Option<i32> {
        self.notes.as_ref()?.errno
    }

    pub(super) fn set_errno(&mut self, errno: Option<i32>) {
        self.edit_notes(errno.is_some(), |n| n.errno = errno);
    }

    /// Since when sd_notify RELOADING=1 holds (READY=1 has not come yet):
    /// the `reloading` sub-state of a running service.
    pub(super) fn reloading(&self) -> Option<Instant> {
        self.notes.as_ref()?.reloading
    }

    pub(super) fn set_reloading(&mut self, since: Option<Instant>) {
        self.edit_notes(since.is_some(), |n| n.reloading = since);
    }

    /// The watched main process and its WatchdogSec, while it runs.
    pub(super) fn watchdog(&self) -> Option<(Pid, Duration)> {
        self.notes.as_ref()?.watchdog
    }

    pub(super) fn set_watchdog(&mut self, watchdog: Option<(Pid, Duration)>) {
        self.edit_notes(watchdog.is_some(), |n| n.watchdog = watchdog);
    }

    /// The WATCHDOG_USEC= kept for when the watchdog starts (taken).
    pub(super) fn take_watchdog_usec(&mut self) -> Option<Duration> {
        let mut usec = None;
        self.edit_notes(false, |n| usec = n.watchdog_usec.take());
        usec
    }

    /// The interval the service set with WATCHDOG_USEC= (in force, or kept
    /// for when its watchdog starts), when it differs from WatchdogSec.
    pub(super) fn watchdog_set(&self) -> Option<Duration> {
        let notes = self.notes.as_ref()?;
        let configured = self.unit.as_ref().map(|u| u.watchdog);
        notes
            .watchdog
            .map(|(_, d)| d)
            .or(notes.watchdog_usec)
            .filter(|&d| Some(d) != configured)
    }

    pub(super) fn set_watchdog_usec(&mut self, interval: Duration) {
        self.edit_notes(true, |n| n.watchdog_usec = Some(interval));
    }

    /// A new run: what the service said in the last one is forgotten (its
    /// watchdog follows the state on its own).
    pub(super) fn forget_run_notes(&mut self) {
        self.edit_notes(false, |n| {
            n.status_text = None;
            n.errno = None;
            n.reloading = None;
            n.watchdog_usec = None;
        });
    }

    /// Applies `edit` to the notes, boxed only while one is set. `sets`:
    /// whether the edit may set one (else, without notes, there is nothing
    /// to do).
    fn edit_notes(&mut self, sets: bool, edit: impl FnOnce(&mut RunNotes)) {
        if !sets && self.notes.is_none() {
            return;
        }
        let notes = self.notes.get_or_insert_with(Box::default);
        edit(notes);
        if **notes == RunNotes::default() {
            self.notes = None;
        }
    }

    /// Everything that is wrong with the unit, if anything.
    pub fn error(&self) -> Option<String> {
        match (&self.load_error, &self.dep_error) {
            (Some(a), Some(b)) => Some(format!("{a}\n{b}")),
            (Some(a), None) | (None, Some(a)) => Some(a.to_string()),
            (None, None) => None,
        }
    }

    /// Whether it may be started: it loaded and has no dependency errors.
    /// Whether the unit has `[socket]` with `Activation = "on-demand"`.
    pub fn on_demand(&self) -> bool {
        self.unit
            .as_ref()
            .and_then(|u| u.socket.as_ref())
            .is_some_and(|s| s.on_demand)
    }

    /// Whether the unit has `[timer]`.
    pub fn has_timer(&self) -> bool {
        self.unit.as_ref().is_some_and(|u| u.timer.is_some())
    }

    pub fn runnable(&self) -> bool {
        // A removed unit still going down is never started again.
        self.unit.is_some() && self.load_error.is_none() && self.dep_error.is_none() && !self.gone
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
    pub(super) fn down_or_overridden(&self) -> bool {
        !self.svc.state.is_active() || self.stop == StopMark::None
    }

    /// An adopted process of a unit whose file no longer loads runs on
    /// `stand_in` (the key table's defaults, no restart) with its load
    /// error kept, as a reload keeps a broken edit's previous definition:
    /// it can be stopped, not started, until the file loads again.
    pub(super) fn run_on_stand_in(&mut self, mut stand_in: Unit, shared: &mut Shared) {
        shared.unit(&mut stand_in);
        self.svc.policy = shared.policy(Policy::from_unit(&stand_in));
        self.unit = Some(Box::new(stand_in));
    }

    /// Puts `unit` in force now (the service must not be running).
    pub(super) fn set_unit(&mut self, mut unit: Unit, shared: &mut Shared) {
        shared.unit(&mut unit);
        self.svc.policy = shared.policy(Policy::from_unit(&unit));
        self.file = None;
        self.unit = Some(Box::new(unit));
        self.load_error = None;
        self.next_unit = None;
    }
}

/// What a service said over sd_notify in its current run, and its watchdog.
/// Most services send nothing and have no WatchdogSec, so an entry keeps
/// these in a box only while one is set: 8 bytes in each entry, not 72.
#[derive(Debug, Default, PartialEq)]
struct RunNotes {
    status_text: Option<String>,
    errno: Option<i32>,
    reloading: Option<Instant>,
    watchdog: Option<(Pid, Duration)>,
    /// WATCHDOG_USEC= that came before the unit was up (with its READY=1,
    /// or before it): the interval its watchdog starts with.
    watchdog_usec: Option<Duration>,
}

/// The process group that a main process `pid`, found dead by a new daemon,
/// left behind: its own group (a simple service's), or the saved one (a
/// forking service's), if it still has members. A group id cannot be reused
/// while the group has members, and a group needs a live process with that
/// pid to be created, so a group whose leader pid is free is the old one.
pub(super) fn leftover_group(pid: i32, saved_pgid: Option<i32>, sys: &mut dyn Sys) -> Option<Pid> {
    [Some(pid), saved_pgid]
        .into_iter()
        .flatten()
        .filter(|&g| g > 1)
        .map(Pid::from_raw)
        .find(|&g| sys.start_time(g).is_none() && sys.group_alive(g))
}

/// What the table's units have alike, each distinct value kept once: the
/// units of a directory mostly set the same restart and timeout values and
/// run in the same directory, so most services share one policy (a pointer
/// each instead of 64 bytes) and one working directory (instead of a copy
/// of its path each).
#[derive(Debug, Default)]
pub(super) struct Shared {
    policies: crate::hash::HashSet<Arc<Policy>>,
    dirs: crate::hash::HashSet<Arc<Path>>,
}

impl Shared {
    /// The shared copy of `policy`.
    pub(super) fn policy(&mut self, policy: Policy) -> Arc<Policy> {
        share(&mut self.policies, policy)
    }

    /// Points the unit at the shared copy of its working directory.
    pub(super) fn unit(&mut self, unit: &mut Unit) {
        let dir = &unit.working_directory;
        match self.dirs.get(dir) {
            Some(shared) => unit.working_directory = Arc::clone(shared),
            None => {
                self.dirs.retain(|d| Arc::strong_count(d) > 1);
                self.dirs.insert(Arc::clone(dir));
            }
        }
    }
}

/// The copy of `value` in `set`, added if it is not there yet.
fn share<T: std::hash::Hash + Eq>(set: &mut crate::hash::HashSet<Arc<T>>, value: T) -> Arc<T> {
    if let Some(shared) = set.get(&value) {
        return Arc::clone(shared);
    }
    // Drop the ones nothing holds any more (after reloads).
    set.retain(|v| Arc::strong_count(v) > 1);
    let shared = Arc::new(value);
    set.insert(Arc::clone(&shared));
    shared
}

/// Which service's process each child pid is. Ids are kept as `u32`: 12
/// bytes an entry instead of 24 (hash tables of 2048 slots at a thousand
/// running units: 26 KB instead of 51). An id is an index into the table
/// of entries, far below 2^32.
#[derive(Debug, Default)]
pub(super) struct PidMap(HashMap<Pid, (u32, Role)>);

impl PidMap {
    pub(super) fn insert(&mut self, pid: Pid, (id, role): (ServiceId, Role)) {
        match u32::try_from(id) {
            Ok(id) => {
                self.0.insert(pid, (id, role));
            }
            Err(_) => log::error!("service id {id} out of range; pid {pid} not tracked"),
        }
    }

    pub(super) fn get(&self, pid: &Pid) -> Option<(ServiceId, Role)> {
        self.0.get(pid).map(|&(id, role)| (id as ServiceId, role))
    }

    pub(super) fn remove(&mut self, pid: &Pid) -> Option<(ServiceId, Role)> {
        self.0.remove(pid).map(|(id, role)| (id as ServiceId, role))
    }

    pub(super) fn keys(&self) -> impl Iterator<Item = &Pid> {
        self.0.keys()
    }
}

/// The ids of the listed units in name order, the names read from the
/// entries: a `BTreeMap<String, ServiceId>` kept a second copy of every name
/// and its tree nodes (~80 bytes a unit); this keeps 8. An entry's name
/// never changes (a reused slot gets the same name).
#[derive(Debug, Default)]
pub(super) struct NameIndex {
    ids: Vec<ServiceId>,
}

impl NameIndex {
    fn find(&self, entries: &[Entry], name: &str) -> Result<usize, usize> {
        self.ids
            .binary_search_by(|&id| entries[id].name.as_str().cmp(name))
    }

    pub(super) fn get(&self, entries: &[Entry], name: &str) -> Option<&ServiceId> {
        self.find(entries, name).ok().map(|at| &self.ids[at])
    }

    pub(super) fn contains_key(&self, entries: &[Entry], name: &str) -> bool {
        self.find(entries, name).is_ok()
    }

    /// Lists `entries[id]` under its name, in place of any id listed there.
    pub(super) fn insert(&mut self, entries: &[Entry], id: ServiceId) {
        match self.find(entries, &entries[id].name) {
            Ok(at) => self.ids[at] = id,
            Err(at) => self.ids.insert(at, id),
        }
    }

    /// Unlists `entries[id]` (if it is listed).
    pub(super) fn remove(&mut self, entries: &[Entry], id: ServiceId) {
        if let Ok(at) = self.find(entries, &entries[id].name) {
            if self.ids[at] == id {
                self.ids.remove(at);
            }
        }
    }

    /// The listed ids, in name order.
    pub(super) fn values(&self) -> std::slice::Iter<'_, ServiceId> {
        self.ids.iter()
    }
}

#[cfg(test)]
mod name_index_tests {
    use super::*;

    #[test]
    fn finds_by_name_in_name_order_and_unlists_only_its_own_id() {
        // Ids in name order whatever the order they were listed in; a name
        // listed again points at the new id; removing an id that is no longer
        // listed under its name leaves the name alone.
        let mut entries: Vec<Entry> = ["web", "api", "db", "web"]
            .iter()
            .map(|n| Entry::new(n.to_string(), Err(Vec::new()), 1, &mut Shared::default()))
            .collect();
        let mut index = NameIndex::default();
        for id in 0..3 {
            index.insert(&entries, id);
        }
        assert_eq!(index.values().copied().collect::<Vec<_>>(), [1, 2, 0]);
        assert_eq!(index.get(&entries, "db"), Some(&2));
        assert!(!index.contains_key(&entries, "cache"));
        index.insert(&entries, 3);
        assert_eq!(index.get(&entries, "web"), Some(&3));
        index.remove(&entries, 0);
        assert_eq!(index.get(&entries, "web"), Some(&3));
        index.remove(&entries, 3);
        assert_eq!(index.values().copied().collect::<Vec<_>>(), [1, 2]);
        entries.truncate(3);
        assert_eq!(index.get(&entries, "api"), Some(&1));
    }
}

#[cfg(test)]
mod path_tests {
    use super::*;

    #[test]
    fn an_entry_keeps_a_file_path_only_when_the_file_does_not_load() {
        // A loaded unit's path is its unit's (no second copy per entry); a
        // file that failed to load is remembered until a definition loads.
        let dir = Path::new("/srv/units");
        let file = dir.join("web.service");
        let text = "[service]\nExecStart = \"/bin/true\"\n";
        let unit = crate::unit::parse("web", &file, text, dir).expect("unit");
        let mut shared = Shared::default();
        let mut e = Entry::new("web".into(), Ok(unit.clone()), 1, &mut shared);
        assert!(e.file.is_none());
        assert_eq!(e.path(), file);
        let other = dir.join("web@box1.service");
        e.set_failed_file(other.clone());
        assert_eq!(e.path(), other);
        e.set_unit(unit, &mut shared);
        assert!(e.file.is_none());
        assert_eq!(e.path(), file);
        let error = UnitError {
            path: other.clone(),
            pos: None,
            message: "bad".into(),
            hint: None,
        };
        let bad = Entry::new("web".into(), Err(vec![error]), 1, &mut shared);
        assert_eq!(bad.path(), other);
    }
}

#[cfg(test)]
mod notes_tests {
    use super::*;

    #[test]
    fn run_notes_are_boxed_only_while_one_is_set() {
        // Most services never use sd_notify or a watchdog: their entries
        // keep no box; one is made when something is said and dropped
        // once all of it is forgotten.
        let mut e = Entry::new("web".into(), Err(Vec::new()), 1, &mut Shared::default());
        e.set_status_text(None);
        e.forget_run_notes();
        assert!(e.notes.is_none());
        let t = Instant::now();
        e.set_status_text(Some("serving".into()));
        e.set_errno(Some(2));
        e.set_reloading(Some(t));
        e.set_watchdog(Some((Pid::from_raw(7), Duration::from_secs(3))));
        assert_eq!(
            (e.status_text(), e.errno(), e.reloading(), e.watchdog()),
            (
                Some("serving"),
                Some(2),
                Some(t),
                Some((Pid::from_raw(7), Duration::from_secs(3)))
            )
        );
        e.forget_run_notes();
        assert_eq!(
            (e.status_text(), e.errno(), e.reloading()),
            (None, None, None)
        );
        assert!(e.watchdog().is_some(), "the watchdog follows the state");
        e.set_watchdog(None);
        assert!(e.notes.is_none());
    }
}

#[cfg(test)]
mod pid_map_tests {
    use super::*;

    #[test]
    fn pids_map_to_their_service_and_role_in_12_bytes() {
        assert_eq!(std::mem::size_of::<(Pid, (u32, Role))>(), 12);
        let mut pids = PidMap::default();
        pids.insert(Pid::from_raw(10), (3, Role::Main));
        pids.insert(Pid::from_raw(11), (4, Role::StopCmd));
        assert_eq!(pids.get(&Pid::from_raw(10)), Some((3, Role::Main)));
        assert_eq!(pids.remove(&Pid::from_raw(11)), Some((4, Role::StopCmd)));
        assert_eq!(pids.get(&Pid::from_raw(11)), None);
        assert_eq!(pids.keys().count(), 1);
    }
}

#[cfg(test)]
mod shared_tests {
    use super::*;

    #[test]
    fn services_share_their_policy_and_working_directory() {
        let dir = Path::new("/srv/units");
        let unit = |name: &str, text: &str| {
            crate::unit::parse(name, &dir.join(format!("{name}.service")), text, dir).expect("unit")
        };
        let plain = "[service]\nExecStart = \"/bin/true\"\n";
        let mut shared = Shared::default();
        let a = Entry::new("a".into(), Ok(unit("a", plain)), 1, &mut shared);
        let mut b = Entry::new("b".into(), Ok(unit("b", plain)), 2, &mut shared);
        assert!(Arc::ptr_eq(&a.svc.policy, &b.svc.policy));
        assert_eq!(shared.policies.len(), 1);
        let dir_of = |e: &Entry| Arc::clone(&e.unit.as_ref().expect("unit").working_directory);
        assert!(Arc::ptr_eq(&dir_of(&a), &dir_of(&b)));
        assert_eq!(&*dir_of(&a), dir);
        let slow = unit(
            "b",
            "[service]\nExecStart = \"/bin/true\"\nRestartSec = 7\n",
        );
        b.set_unit(slow, &mut shared);
        assert!(!Arc::ptr_eq(&a.svc.policy, &b.svc.policy));
        assert_eq!(b.svc.policy.restart_sec.get(), Duration::from_secs(7));
        assert_eq!(a.svc.policy.restart_sec.get(), Duration::from_secs(1));
        // A policy no service holds is dropped when another is added.
        drop(a);
        let c = Entry::new("c".into(), Err(Vec::new()), 3, &mut shared);
        assert_eq!(shared.policies.len(), 2, "b's and c's");
        assert_eq!(c.svc.policy.restart_sec.get(), Duration::ZERO);
    }
}
