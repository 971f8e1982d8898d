//! The queue: events for services are drained in order, each through the
//! service's state machine; the one place an action becomes an effect (or a
//! `Sys` call), and where dependents hear about a change (the gates).

use super::*;

impl Supervisor {
    // --- the queue ------------------------------------------------------

    /// Drains the event queue, executing actions and propagating changes,
    /// then settles jobs. Call after every batch of inputs.
    pub fn run(&mut self, now: Instant, sys: &mut dyn Sys) {
        loop {
            for id in std::mem::take(&mut self.mem_due) {
                self.check_memory(id, now, sys);
            }
            while let Some((id, ev)) = self.queue.pop_front() {
                self.step(id, ev, now, sys);
            }
            // Stopping services whose main process is gone wait for their group.
            let waiting: Vec<ServiceId> = self.awaiting_group.iter().copied().collect();
            let mut ended = Vec::new();
            for id in waiting {
                let svc = &self.entries[id].svc;
                if !svc.awaiting_group() {
                    self.awaiting_group.remove(&id);
                    self.entries[id].leftovers = LeftoverWatch::Unwatched;
                    continue;
                }
                let (gone, alive) = match svc.pgid {
                    None => (true, Vec::new()),
                    Some(pgid) => {
                        let mut groups = self.entries[id].groups.clone();
                        groups.push(pgid);
                        groups.sort_unstable();
                        groups.dedup();
                        groups.retain(|&g| sys.group_alive(g));
                        (groups.is_empty(), groups)
                    }
                };
                if gone {
                    self.awaiting_group.remove(&id);
                    self.entries[id].leftovers = LeftoverWatch::Unwatched;
                    ended.push(id);
                } else if self.entries[id].leftovers == LeftoverWatch::Due {
                    // What is left may not be our children: no SIGCHLD
                    // would wake us when it ends.
                    self.entries[id].leftovers = LeftoverWatch::Asked;
                    self.effects
                        .push_back(Effect::WatchLeftovers { id, groups: alive });
                }
            }
            self.look_for_strays(ended);
            let polled = self.awaiting_group.iter().any(|&id| {
                matches!(
                    self.entries[id].leftovers,
                    LeftoverWatch::Unwatched | LeftoverWatch::Polled | LeftoverWatch::Relook
                )
            });
            if polled {
                self.timers
                    .arm_if_idle(TimerKey::GroupRecheck, now + GROUP_RECHECK);
            }
            // A removed unit that has gone down leaves the graph: its
            // dependents now miss it (and cannot start it again).
            if self
                .gone_in_graph
                .iter()
                .any(|&id| !self.entries[id].svc.state.is_active())
            {
                self.rebuild_graph();
            }
            self.settle_jobs(now);
            self.settle_waits();
            // Deadlines that are already due (RestartSec = 0) run in this
            // same pass rather than after another trip through poll.
            self.timers_expired(now);
            for id in std::mem::take(&mut self.due_probes) {
                self.probe_timer(id, now, sys);
            }
            if self.queue.is_empty() {
                break;
            }
        }
        // Once the pass is over, every process it started is known.
        if std::mem::take(&mut self.stray_look_due) {
            self.claim_strays_of_ended_runs();
        }
        self.scan_strays();
        // A moment after the exits, for all of them at once: a /proc look
        // costs about a millisecond, kept off the restart that follows an
        // exit (and a crash loop looks at most every STRAY_LOOK_DELAY).
        if !self.ended_runs.is_empty() {
            self.timers
                .arm_if_idle(TimerKey::StrayLook, now + STRAY_LOOK_DELAY);
        }
        // A start of a thousand units grows the queue to a thousand events;
        // give that memory back rather than keep it for the daemon's life.
        shrink_idle(&mut self.queue);
    }

    /// Arms the timer of `id`'s state (a deadline it has), and disarms the
    /// one of the state it left.
    pub(super) fn sync_state_timer(&mut self, id: ServiceId) {
        let e = &self.entries[id];
        let timer = e.svc.timer();
        if let Some(old) = e.timer.filter(|&old| Some(old) != timer.map(|(k, _)| k)) {
            self.timers.set(TimerKey::Service(id, old), None);
        }
        if let Some((kind, at)) = timer {
            self.timers.set(TimerKey::Service(id, kind), Some(at));
        }
        self.entries[id].timer = timer.map(|(k, _)| k);
    }

    pub(super) fn step(&mut self, id: ServiceId, ev: Event, now: Instant, sys: &mut dyn Sys) {
        let before = self.entries[id].svc.state.name();
        let was_active = self.entries[id].svc.state.is_active();
        let pid_before = self.entries[id].svc.pid();
        let main_exit = matches!(ev, Event::Exited(_)) && pid_before.is_some();
        let since = self.entries[id].start_time;
        let actions = self.entries[id].svc.on_event(ev, now);
        for action in actions {
            self.execute(id, action, now, sys);
        }
        self.sync_state_timer(id);
        self.arm_memory_check(id, now);
        let e = &self.entries[id];
        if e.svc.awaiting_group() {
            self.awaiting_group.insert(id);
        }
        // A run that ended on its own (not a stop: that path looks for
        // what it leaves; not a forking starter's exit, whose orphan is the
        // daemon it started), or a RemainAfterExit oneshot's.
        if main_exit
            && matches!(
                e.svc.state,
                State::Restarting { .. }
                    | State::Failed(_)
                    | State::Exited
                    | State::Inactive
                    | State::Running { pid: None, .. }
            )
        {
            self.ended_runs.push((id, since));
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
        if before != after {
            self.entries[id].since = Some(now);
        }
        let e = &self.entries[id];
        if before != after || pid_before != e.svc.pid() {
            self.dirty = true;
            self.changes += 1;
        }
        if before != after || after == StateName::Waiting {
            self.changed(id);
        }
        if before != after {
            self.fire_hooks(id, before, now);
            if self.events_wanted {
                let info = self.info(id, now);
                self.effects
                    .push_back(Effect::StateChanged(crate::protocol::EventRecord {
                        time_ms: self.wall_ms(now),
                        unit: info.name,
                        from: before,
                        to: after,
                        reason: info.reason,
                        pid: info.pid,
                        last_exit: info.last_exit,
                    }));
            }
        }
        if before != after || pid_before != self.entries[id].svc.pid() {
            self.follow_health(id, now);
            self.follow_watchdog(id, now);
        }
    }

    /// MemoryMax: a check is armed exactly while a unit that sets it runs
    /// with a process (no wake-ups otherwise); anything else disarms it.
    pub(super) fn arm_memory_check(&mut self, id: ServiceId, now: Instant) {
        let e = &mut self.entries[id];
        let key = TimerKey::Service(id, ServiceTimer::MemoryCheck);
        let every = e
            .unit
            .as_deref()
            .filter(|u| u.limits.memory_max.is_some())
            .map(|u| u.limits.memory_check_every());
        match (every, &e.svc.state) {
            (Some(every), State::Running { pid: Some(_), .. }) => {
                self.timers.arm_if_idle(key, now + every)
            }
            _ => {
                e.mem_over = 0;
                self.timers.set(key, None);
            }
        }
    }

    /// One MemoryMax check: the RSS of the service's process groups; the
    /// second check in a row above the limit stops it (restart per policy).
    fn check_memory(&mut self, id: ServiceId, now: Instant, sys: &mut dyn Sys) {
        let e = &self.entries[id];
        let Some(max) = e.unit.as_deref().and_then(|u| u.limits.memory_max) else {
            return;
        };
        if !matches!(e.svc.state, State::Running { pid: Some(_), .. }) {
            return;
        }
        let mut groups = e.groups.clone();
        groups.extend(e.svc.pgid);
        let rss = sys.group_rss(&groups);
        let e = &mut self.entries[id];
        match rss {
            Some(rss) if rss > max => {
                e.mem_over = e.mem_over.saturating_add(1);
                log::info!(
                    "{}: RSS {} above MemoryMax {} ({} in a row)",
                    e.name,
                    crate::unit::format_bytes(rss),
                    crate::unit::format_bytes(max),
                    e.mem_over
                );
                if e.mem_over >= 2 {
                    e.mem_over = 0;
                    log::warn!(
                        "{}: {}; stopping it",
                        e.name,
                        crate::daemon::service::Reason::MemoryLimit { rss, max }
                    );
                    self.queue
                        .push_back((id, Event::MemoryExceeded { rss, max }));
                }
            }
            _ => e.mem_over = 0,
        }
        self.arm_memory_check(id, now);
    }

    /// The only place an Action becomes an effect. Results come back as
    /// events at the front of the queue, so nothing else happens in between.
    pub(super) fn execute(
        &mut self,
        id: ServiceId,
        action: Action,
        now: Instant,
        sys: &mut dyn Sys,
    ) {
        let Some(unit) = self.entries[id].unit.as_ref() else {
            return;
        };
        if matches!(action, Action::Spawn) && !self.stale.is_empty() {
            // A new process runs the definition in force.
            self.stale.remove(&self.entries[id].name);
        }
        match action {
            Action::Spawn => match match &self.entries[id].hook_env {
                // Started as a hook: this spawn only gets DIAKONOS_MONITOR_*.
                Some(env) => {
                    let mut hooked = unit.as_ref().clone();
                    hooked.environment.extend(env.iter().cloned());
                    sys.spawn(&hooked, Role::Main)
                }
                None => sys.spawn(unit, Role::Main),
            } {
                Ok(started) => {
                    let (Started::Up(pid) | Started::OnExec(pid)) = started;
                    log::info!("{}: started, pid {pid}", unit.name);
                    self.entries[id].hook_env = None;
                    self.pids.insert(pid, (id, Role::Main));
                    self.entries[id].start_time = sys.start_time(pid);
                    self.entries[id].groups.clear();
                    self.entries[id].forget_run_notes();
                    // Up once spawned, or once its exec is done
                    // (Input::ExecDone); until then its spawn is in flight.
                    if let Started::Up(pid) = started {
                        self.entries[id].exec_pending = true;
                        self.queue.push_front((id, Event::Spawned(pid)));
                    }
                }
                Err(e) => {
                    log::warn!("{}: {e}", unit.name);
                    self.entries[id].hook_env = None;
                    self.queue.push_front((id, Event::SpawnFailed(e)));
                }
            },
            Action::SpawnStop => match sys.spawn(unit, Role::StopCmd) {
                Ok(Started::Up(pid) | Started::OnExec(pid)) => {
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
                self.entries[id].scan = Some(Box::new(MainPidScan::new(now)));
                self.look_for_main_pid(id);
            }
        }
    }

    /// Asks for one look for the main process of a forking service whose
    /// start command left ([`Effect::ScanMainPid`]). A service that left the
    /// state of looking (stopped meanwhile) drops its search.
    pub(super) fn look_for_main_pid(&mut self, id: ServiceId) {
        let e = &mut self.entries[id];
        let looking = matches!(e.svc.state, State::Starting { pid: None, .. });
        let (Some(scan), Some(unit), true) = (e.scan.take(), e.unit.as_deref(), looking) else {
            return;
        };
        let Some(pgid) = e.svc.pgid else {
            let err = Box::new(MainPidError::NoGroup);
            self.queue.push_back((id, Event::MainPid(Err(err))));
            return;
        };
        let (unit, pid_file) = (unit.name.clone(), unit.pid_file.clone());
        let known = self.known_pids();
        let other_groups: Vec<Pid> = self
            .entries
            .iter()
            .enumerate()
            .filter(|&(other, _)| other != id)
            .filter_map(|(_, e)| e.svc.pgid)
            .collect();
        self.effects.push_back(Effect::ScanMainPid {
            id,
            unit,
            pid_file,
            pgid,
            known,
            other_groups,
            scan: *scan,
        });
    }

    /// A look for a main process came back: found or failed goes to the
    /// service as MainPid; not settled yet arms the next look.
    /// (Out of line: kept out of the code every daemon runs, the layout's
    /// first part.)
    #[inline(never)]
    pub(super) fn main_pid_scanned(
        &mut self,
        id: ServiceId,
        scan: MainPidScan,
        outcome: Option<Result<MainPidFound, MainPidError>>,
        now: Instant,
    ) {
        let e = &mut self.entries[id];
        if !matches!(e.svc.state, State::Starting { pid: None, .. }) {
            return; // Stopped or failed meanwhile: the search is over.
        }
        let key = TimerKey::Service(id, ServiceTimer::MainPidScan);
        // Another unit's search (started at the same moment) took this
        // process first: an untagged orphan (nginx rewrites its
        // environment) cannot tell whose it is, but it is never two
        // units' main process. Look again without it.
        let claimed = match &outcome {
            Some(Ok(f)) => self.pids.get(&f.pid).is_some_and(|(other, _)| other != id),
            _ => false,
        };
        let outcome = if claimed { None } else { outcome };
        let found = match outcome {
            None => {
                e.scan = Some(Box::new(scan));
                self.timers.set(key, Some(now + SCAN_EVERY));
                return;
            }
            Some(found) => found,
        };
        if let Ok(f) = &found {
            log::info!("{}: main process is {}", e.name, f.pid);
            self.pids.insert(f.pid, (id, Role::Main));
            e.start_time = f.start_time;
            // The start command's group may still hold the main
            // process's helpers; its own group and session are the service's too.
            e.groups.extend(e.svc.pgid);
            if let Some((pgrp, sid)) = f.groups {
                e.groups.extend([pgrp, sid]);
            }
            e.groups.sort_unstable();
            e.groups.dedup();
            // It may not be our child: watch it like an adopted process.
            self.effects.push_back(Effect::Watch(f.pid));
        }
        let found = found.map(|f| (f.pid, f.pgid)).map_err(Box::new);
        self.queue.push_back((id, Event::MainPid(found)));
    }

    /// The process groups of these stopping services are empty: before the
    /// stop counts as done, one look (for all of them) for processes that
    /// left the groups (setsid) but carry the unit's tag
    /// ([`Effect::ScanStrays`]).
    fn look_for_strays(&mut self, ended: Vec<ServiceId>) {
        let mut units = Vec::new();
        for id in ended {
            let e = &mut self.entries[id];
            if e.stray_scan {
                continue; // A look is already out.
            }
            e.stray_scan = true;
            units.push(StrayLook {
                id,
                unit: e.name.clone(),
                since: e.start_time,
                until: None,
                after: StraysOf::Stop,
            });
        }
        self.pending_strays.extend(units);
    }

    /// Runs that ended on their own in this pass (a main process's exit
    /// that left the unit without a process: restarting, failed, exited,
    /// inactive): one look for what they left outside their process group
    /// (setsid: a daemonizing program, a backgrounded child), which is
    /// killed (their group's own leftovers got SIGKILL with the exit). What
    /// a RemainAfterExit oneshot leaves is its service: its groups are
    /// kept with the unit, for its stop.
    pub(super) fn claim_strays_of_ended_runs(&mut self) {
        let units: Vec<StrayLook> = std::mem::take(&mut self.ended_runs)
            .into_iter()
            .map(|(id, since)| {
                let e = &self.entries[id];
                StrayLook {
                    id,
                    unit: e.name.clone(),
                    since,
                    until: None, // set by `stray_look_now`
                    after: if matches!(e.svc.state, State::Running { pid: None, .. }) {
                        StraysOf::KeptRun
                    } else {
                        StraysOf::EndedRun
                    },
                }
            })
            .collect();
        self.pending_strays.extend(units);
    }

    /// The processes the daemon started and knows: main processes,
    /// ExecStop commands, Exec probes.
    fn known_pids(&self) -> Vec<Pid> {
        self.pids
            .keys()
            .chain(self.probe_pids.keys())
            .copied()
            .collect()
    }

    /// The looks asked in this pass, as one effect.
    fn scan_strays(&mut self) {
        if self.pending_strays.is_empty() {
            return;
        }
        let units = std::mem::take(&mut self.pending_strays);
        let scan = self.stray_look_now(units);
        self.effects.push_back(scan);
    }

    /// A look for strays with what is known at this moment: every process
    /// the daemon started, the groups of running units, and for a run that
    /// ended, the start of the unit's next run (its processes are not the
    /// ended run's). The loop calls it again right before the look: passes
    /// may have run since it was asked.
    pub fn stray_look_now(&self, mut units: Vec<StrayLook>) -> Effect {
        for u in &mut units {
            let e = &self.entries[u.id];
            if u.after != StraysOf::Stop && e.svc.pid().is_some() && e.start_time != u.since {
                u.until = e.start_time.or(u.until);
            }
        }
        let known = self.known_pids();
        let other_groups: Vec<Pid> = self
            .entries
            .iter()
            .filter(|e| e.svc.state.is_active() && !e.svc.awaiting_group())
            .flat_map(|e| e.svc.pgid.into_iter().chain(e.groups.iter().copied()))
            .collect();
        Effect::ScanStrays {
            units,
            known,
            other_groups,
        }
    }

    /// A look for strays came back. None found: the stop is done
    /// (GroupGone). Strays found: their groups join the service's and get
    /// the signal of the stop's phase now (KillSignal, or SIGKILL once it
    /// escalated); the stop's deadline escalates them with the rest, and
    /// the stop waits for them (then looks once more).
    /// (Out of line: kept out of the code every daemon runs, the layout's
    /// first part.)
    #[inline(never)]
    pub(super) fn strays_scanned(&mut self, found: Vec<(StrayLook, Vec<Pid>)>) {
        for (look, groups) in found {
            let id = look.id;
            let Some(e) = self.entries.get_mut(id) else {
                continue;
            };
            match look.after {
                // A RemainAfterExit oneshot's server (a daemonized program):
                // its stop signals it, and the state file keeps the first
                // group for a daemon that takes over.
                StraysOf::KeptRun => {
                    if let Some(&first) = groups.first() {
                        e.groups.extend(&groups);
                        e.groups.extend(e.svc.pgid);
                        self.queue.push_back((id, Event::KeptGroup(first)));
                        self.dirty = true;
                    }
                    continue;
                }
                StraysOf::EndedRun => {
                    if !groups.is_empty() {
                        log::info!(
                            "{}: its ended run left {} process group(s) outside its own (setsid), carrying its tag: SIGKILL",
                            e.name,
                            groups.len()
                        );
                    }
                    for pgid in groups {
                        self.effects.push_back(Effect::Signal {
                            pgid,
                            signal: Signal::SIGKILL,
                        });
                    }
                    continue;
                }
                StraysOf::Stop => {}
            }
            e.stray_scan = false;
            if !e.svc.awaiting_group() {
                continue; // The stop ended otherwise meanwhile.
            }
            if groups.is_empty() {
                self.queue.push_back((id, Event::GroupGone));
                continue;
            }
            let signal = match e.svc.state {
                State::Stopping {
                    phase: crate::daemon::service::StopPhase::Killed,
                    ..
                } => Signal::SIGKILL,
                _ => e.svc.policy.kill_signal,
            };
            log::info!(
                "{}: processes that left its process group (setsid) carry its tag; sending {} to {} more group(s)",
                e.name,
                signal.as_str(),
                groups.len()
            );
            for &g in &groups {
                self.effects.push_back(Effect::Signal { pgid: g, signal });
            }
            // New groups: their members are watched afresh.
            e.leftovers = LeftoverWatch::Unwatched;
            e.groups.extend(groups);
            e.groups.sort_unstable();
            e.groups.dedup();
            self.awaiting_group.insert(id);
        }
    }

    /// The process groups a signal for `pgid` must reach. An ExecStop's
    /// group is just itself. For the service's own group: every group of its
    /// current run, with the main process's group and session read again
    /// now (a forking daemon may have called setsid after it was found).
    pub(super) fn signal_targets(
        &mut self,
        id: ServiceId,
        pgid: Pid,
        sys: &mut dyn Sys,
    ) -> Vec<Pid> {
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
    pub(super) fn changed(&mut self, id: ServiceId) {
        let state = self.entries[id].svc.state.clone();
        log::debug!("{}: {}", self.entries[id].name, state.name().as_str());
        if matches!(state, State::Waiting) {
            self.check_start_gate(id);
        }
        self.check_gates_after(id);
        if let State::Failed(_) = state {
            let name = self.entries[id].name.clone();
            for i in 0..self.graph.required_by.get(id).map_or(0, <[_]>::len) {
                let d = self.graph.required_by[id][i];
                let s = &self.entries[d].svc;
                if s.state.is_active() && s.want == Want::Up {
                    self.queue.push_back((d, Event::DepFailed(name.clone())));
                }
            }
        }
        if !state.is_active() {
            // A unit that waits for a conflicting one to go down.
            for i in 0..self.graph.conflicts.get(id).map_or(0, <[_]>::len) {
                let d = self.graph.conflicts[id][i];
                if matches!(self.entries[d].svc.state, State::Waiting) {
                    self.check_start_gate(d);
                }
            }
            self.entries[id].stop = StopMark::None;
            for i in 0..self.graph.after.get(id).map_or(0, <[_]>::len) {
                let d = self.graph.after[id][i];
                self.check_stop_gate(d);
            }
        }
    }

    /// The units ordered after `id` that wait: whether they may start now.
    pub(super) fn check_gates_after(&mut self, id: ServiceId) {
        for i in 0..self.graph.before.get(id).map_or(0, <[_]>::len) {
            let d = self.graph.before[id][i];
            if matches!(self.entries[d].svc.state, State::Waiting) {
                self.check_start_gate(d);
            }
        }
    }

    /// A waiting unit starts once everything it is ordered after is settled.
    pub(super) fn check_start_gate(&mut self, id: ServiceId) {
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
            if !dep.svc.state.is_up() || dep.exec_pending {
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
                && (!dep.svc.state.is_up() || dep.exec_pending)
                && !matches!(dep.svc.state, State::Restarting { .. });
            if pending {
                return;
            }
        }
        // Conflicts: not while a conflicting unit is still up or going down
        // (one that waits too does not hold it, so two never wait on each other).
        for &c in g.conflicts.get(id).unwrap_or_default() {
            let other = &self.entries[c].svc.state;
            if other.is_active() && !matches!(*other, State::Waiting) {
                return;
            }
        }
        self.queue.push_back((id, Event::DepsReady));
    }

    /// A unit queued to stop gets Stop once no unit ordered after it that is
    /// also going down is still active.
    pub(super) fn check_stop_gate(&mut self, id: ServiceId) {
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
}

/// Frees the buffer of an empty queue that grew past a small size (a bulk
/// start or stop), so a burst does not stay in the daemon's RSS.
pub(super) fn shrink_idle<T>(queue: &mut VecDeque<T>) {
    const KEEP: usize = 16;
    if queue.is_empty() && queue.capacity() > KEEP {
        queue.shrink_to(KEEP);
    }
}

#[cfg(test)]
mod shrink_tests {
    use super::shrink_idle;
    use std::collections::VecDeque;

    #[test]
    fn an_empty_queue_gives_back_what_a_burst_grew() {
        let mut q: VecDeque<u64> = (0..1000).collect();
        shrink_idle(&mut q);
        assert_eq!(q.len(), 1000, "a queue with work in it is left alone");
        q.clear();
        shrink_idle(&mut q);
        assert!(q.capacity() < 1000, "capacity {}", q.capacity());
        q.extend(0..4);
        q.clear();
        let small = q.capacity();
        shrink_idle(&mut q);
        assert_eq!(q.capacity(), small);
    }
}
