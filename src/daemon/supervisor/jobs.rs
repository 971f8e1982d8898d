//! Jobs: a client's start, stop, restart or kill, answered when it is done
//! (or at the first failed attempt), and the requests that create them.

use super::*;

impl Supervisor {
    /// Handles a request that is about services. `None`: the reply comes
    /// later, when the job is done.
    pub fn request(
        &mut self,
        conn: Option<ConnId>,
        req: Request,
        now: Instant,
    ) -> Option<Response> {
        if self.killing && matches!(req, Request::Start(_) | Request::Restart(_)) {
            return Some(shutting_down());
        }
        match req {
            Request::List => {
                let mut units: Vec<UnitInfo> = self
                    .by_name
                    .values()
                    .map(|&id| self.info(id, now))
                    .collect();
                self.add_new_on_disk(&mut units, |row| UnitInfo {
                    name: row.name,
                    state: row.state,
                    description: row.description,
                    reason: row.reason,
                    changed_on_disk: true,
                    ..UnitInfo::default()
                });
                Some(Response::Units(units))
            }
            Request::ListRows => {
                let mut rows: Vec<ListRow> =
                    self.by_name.values().map(|&id| self.row(id, now)).collect();
                self.add_new_on_disk(&mut rows, |row| row);
                Some(Response::Rows(rows))
            }
            Request::Status(name) => Some(match self.lookup(std::slice::from_ref(&name)) {
                Ok(ids) => Response::Status(Box::new(self.status(ids[0], now))),
                Err(resp) => resp,
            }),
            Request::Wait {
                names,
                until,
                timeout_ms,
            } => self.wait(conn, &names, until, timeout_ms, now),
            Request::Why(name) => Some(match self.lookup(std::slice::from_ref(&name)) {
                Ok(ids) => Response::Why(self.why(ids[0], now)),
                Err(resp) => resp,
            }),
            Request::Start(names) => {
                let ids = match self.lookup_valid(&names) {
                    Ok(ids) => ids,
                    Err(resp) => return Some(resp),
                };
                // What they pull in, once: checked for conflicts, then started.
                let set = self.graph.pull_in(&ids);
                if let Some(resp) = self.conflict_within(&set) {
                    return Some(resp);
                }
                self.start_pulled_in(&ids, set, true, now);
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
                if let Some(resp) = self.conflict_within(&self.graph.pull_in(&set)) {
                    return Some(resp);
                }
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
            Request::DaemonStatus
            | Request::Reload
            | Request::HandOver
            | Request::Load(_)
            | Request::Timers
            | Request::Events(_) => Some(Response::error(
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
        // A start or restart heard before the kill, in the same pass, has
        // its units only queued to start (still inactive, so the stop
        // below would pass them by, and they would run on after the
        // daemon): it is dropped and its client told.
        self.queue.retain(|(_, ev)| !matches!(ev, Event::Start));
        let (dropped, kept): (Vec<Job>, Vec<Job>) = std::mem::take(&mut self.jobs)
            .into_iter()
            .partition(|j| matches!(j.kind, JobKind::Start | JobKind::Restart { .. }));
        self.jobs = kept;
        for conn in dropped.into_iter().filter_map(|j| j.conn) {
            self.effects.push_back(Effect::Reply(conn, shutting_down()));
        }
        let all: Vec<ServiceId> = (0..self.entries.len()).collect();
        self.stop(&all);
        self.jobs.push(Job {
            conn,
            kind: JobKind::Kill,
            ids: all,
            baseline: BTreeMap::new(),
        });
    }

    /// Two units that conflict cannot come up in one start: which one
    /// should win is the user's to say. The refusal, if any (nothing is
    /// started then). `set`: the units and what they pull in.
    fn conflict_within(&self, set: &[ServiceId]) -> Option<Response> {
        // What cannot run is not started (its dependents fail or go on).
        let runs = |id: ServiceId| set.contains(&id) && self.entries[id].runnable();
        for &a in set.iter().filter(|&&a| runs(a)) {
            for &b in self.graph.conflicts.get(a).unwrap_or_default() {
                if runs(b) {
                    let (a, b) = (&self.entries[a].name, &self.entries[b].name);
                    return Some(Response::error(
                        format!("`{a}` and `{b}` conflict (Conflicts): they cannot be started together, nothing was started"),
                        Some(&format!("start just one, which stops the other: `diakonos start {a}`")),
                    ));
                }
            }
        }
        None
    }

    /// Marks `ids` and what they pull in as wanted up and queues their starts.
    pub(super) fn start(&mut self, ids: &[ServiceId], explicit: bool, now: Instant) {
        self.start_pulled_in(ids, self.graph.pull_in(ids), explicit, now);
    }

    /// [`Supervisor::start`] of `ids`, with what they pull in (`set`).
    fn start_pulled_in(
        &mut self,
        ids: &[ServiceId],
        set: Vec<ServiceId>,
        explicit: bool,
        now: Instant,
    ) {
        // Conflicts (SPEC §18): what may not run with a unit starting now
        // is stopped first; the start gate waits until it is down.
        let mut conflicting: Vec<ServiceId> = Vec::new();
        for &id in &set {
            if !self.entries[id].runnable() {
                continue;
            }
            for &c in self.graph.conflicts.get(id).unwrap_or_default() {
                let other = &self.entries[c];
                if !set.contains(&c)
                    && !matches!(other.svc.state, State::Inactive)
                    && !conflicting.contains(&c)
                {
                    log::info!(
                        "{}: stopping it, it conflicts with {}",
                        other.name,
                        self.entries[id].name
                    );
                    conflicting.push(c);
                }
            }
        }
        if !conflicting.is_empty() {
            self.stop(&conflicting);
        }
        for id in set {
            if self.restart_pending(id) {
                // Going down to come back up (a restart, or a reload's for
                // a changed file): cancelling its stop would keep the old
                // process and lose the new definition. The restart starts it.
                continue;
            }
            let e = &mut self.entries[id];
            if !e.runnable() {
                continue; // Its dependents fail (Requires) or ignore it (Wants).
            }
            if let Some(unit) = e.next_unit.take() {
                if !e.svc.state.is_active() {
                    e.set_unit(*unit, &mut self.shared);
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

    /// Whether `id` is going down for a restart that will start it again.
    fn restart_pending(&self, id: ServiceId) -> bool {
        self.jobs
            .iter()
            .any(|j| j.kind == JobKind::Restart { stopping: true } && j.ids.contains(&id))
    }

    /// Marks `ids` and every unit that Requires them to go down; each gets
    /// its Stop once the units ordered after it are down. Returns the set.
    pub(super) fn stop(&mut self, ids: &[ServiceId]) -> Vec<ServiceId> {
        let set = self.graph.requirers_of(ids);
        for &id in &set {
            let e = &mut self.entries[id];
            if e.svc.state.is_active() {
                if e.stop == StopMark::None {
                    e.stop = StopMark::Queued;
                }
            } else if !matches!(e.svc.state, State::Inactive) {
                // Failed or exited: stopping clears it to inactive.
                self.queue.push_back((id, Event::Stop));
            }
        }
        for &id in &set {
            self.check_stop_gate(id);
        }
        set
    }

    // --- jobs -----------------------------------------------------------

    pub(super) fn settle_jobs(&mut self, now: Instant) {
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

    pub(super) fn job_done(&mut self, i: usize, now: Instant) -> bool {
        let job = &self.jobs[i];
        match job.kind {
            JobKind::Start | JobKind::Restart { stopping: false } => {
                // Without a failed attempt among the units and what they
                // Require (all in the baseline), only their states count:
                // no walk of the dependencies on every pass of a long start.
                let any_failed = job
                    .baseline
                    .iter()
                    .any(|(&id, &n)| self.entries[id].svc.failed_attempts > n);
                // A failure ends the job, but not while a unit of it has
                // its spawn in flight (a moment: the exec's outcome is on
                // its way), so the reply tells how that one went too.
                let (mut all_settled, mut failed, mut in_flight) = (true, false, false);
                // Looked for per unit only when there can be one (not on
                // every pass of a long start).
                let may_be_on_its_way = !self.queue.is_empty()
                    || self
                        .jobs
                        .iter()
                        .any(|j| j.kind == JobKind::Restart { stopping: true });
                for &id in &job.ids {
                    // A unit a restart is taking down, or whose start is
                    // queued, is on its way up: not an outcome yet.
                    let on_its_way = may_be_on_its_way
                        && (self.restart_pending(id)
                            || self
                                .queue
                                .iter()
                                .any(|(q, ev)| *q == id && matches!(ev, Event::Start)));
                    let outcome = match any_failed {
                        _ if on_its_way => None,
                        false => start_outcome(&self.entries[id]),
                        true => self.job_outcome(job, id, now),
                    };
                    match outcome {
                        Some(Err(_)) => failed = true,
                        Some(Ok(())) => {}
                        None => {
                            all_settled = false;
                            in_flight |= matches!(
                                self.entries[id].svc.state,
                                State::Starting { pid: None, .. }
                            );
                        }
                    }
                }
                if failed {
                    return !in_flight;
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
    pub(super) fn baseline(&self, ids: &[ServiceId]) -> BTreeMap<ServiceId, u64> {
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
    pub(super) fn failed_since(&self, job: &Job, id: ServiceId) -> bool {
        job.baseline
            .get(&id)
            .is_some_and(|&n| self.entries[id].svc.failed_attempts > n)
    }

    /// For one unit of a start job: Some(Ok) up, Some(Err(why)) failed
    /// (for good, or an attempt of it or of what it Requires failed and
    /// the restart policy now goes on without the client), None still going.
    pub(super) fn job_outcome(
        &self,
        job: &Job,
        id: ServiceId,
        now: Instant,
    ) -> Option<Result<(), String>> {
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
    pub(super) fn attempt_failure(&self, id: ServiceId, now: Instant) -> String {
        let svc = &self.entries[id].svc;
        let why = match (&svc.state, svc.restart_reason.as_deref()) {
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

    pub(super) fn finish_job(&mut self, job: Job, now: Instant) {
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
}

/// The answer to a start or restart that a kill overtakes.
fn shutting_down() -> Response {
    Response::error(
        "the daemon is shutting down",
        Some("wait for `diakonos kill` to finish, then retry (a new daemon starts)"),
    )
}
