//! What the services' processes report, as inputs of the supervisor:
//! sd_notify messages, main-pid claims, exec outcomes, exits, expired
//! timers, and the watchdog the notify messages feed.

use super::*;

impl Supervisor {
    /// An sd_notify datagram from `sender` (whose process group is
    /// `sender_pgid`), with what the driver read of its MAINPID= and
    /// MONOTONIC_USEC=: READY=1 makes a starting notify service running.
    /// Accepted from the main process or any process of its group.
    /// (Out of line: kept out of the code every daemon runs, the layout's
    /// first part.)
    #[inline(never)]
    pub fn notified(
        &mut self,
        sender: Pid,
        sender_pgid: Option<Pid>,
        payload: &str,
        (main_pid, monotonic): (Option<MainPidClaim>, Option<Instant>),
        now: Instant,
    ) {
        let main = match self.pids.get(&sender) {
            Some((id, Role::Main)) => Some(id),
            _ => None,
        };
        let id = main.or_else(|| {
            sender_pgid.and_then(|g| {
                self.entries
                    .iter()
                    .position(|e| e.svc.pgid == Some(g) && e.svc.state.is_active())
            })
        });
        let Some(id) = id else {
            log::debug!(
                "notify message from unknown process {sender}: {}",
                crate::unit::esc_all(payload)
            );
            return;
        };
        let access = self.entries[id]
            .unit
            .as_ref()
            .map_or(NotifyAccess::Group, |u| u.notify_access());
        if access == NotifyAccess::None || (access == NotifyAccess::Main && main.is_none()) {
            log::debug!(
                "notify message from {sender} refused by NotifyAccess: {}",
                crate::unit::esc_all(payload)
            );
            return;
        }
        for msg in sd_notify::parse(payload) {
            match msg {
                Message::Ready if self.entries[id].reloading().is_some() => {
                    log::info!("{}: reloaded (READY=1)", self.entries[id].name);
                    self.entries[id].set_reloading(None);
                    self.dirty = true;
                }
                Message::Ready => self.queue.push_back((id, Event::Ready)),
                Message::Reloading => {
                    if matches!(
                        self.entries[id].svc.state,
                        State::Running { pid: Some(_), .. }
                    ) {
                        log::info!("{}: reloading (RELOADING=1)", self.entries[id].name);
                        // Since MONOTONIC_USEC= if it came along.
                        let since = monotonic.map_or(now, |t| t.min(now));
                        self.entries[id].set_reloading(Some(since));
                        self.dirty = true;
                    }
                }
                Message::Stopping => self.queue.push_back((id, Event::StoppingItself)),
                Message::Watchdog => self.watchdog_ping(id, now, None),
                Message::WatchdogTrigger => self.watchdog_ping(id, now, Some(Duration::ZERO)),
                Message::WatchdogUsec(d) => self.watchdog_ping(id, now, Some(d)),
                Message::ExtendTimeout(d) => self.queue.push_back((id, Event::ExtendTimeout(d))),
                Message::MainPid(n) => {
                    let named = n.parse::<i32>().ok().map(Pid::from_raw);
                    match main_pid.filter(|c| Some(c.pid) == named) {
                        Some(claim) => self.main_pid_claimed(id, claim),
                        None => log::warn!(
                            "{}: MAINPID={n} ignored: not a process id",
                            self.entries[id].name
                        ),
                    }
                }
                Message::Errno(n) => self.entries[id].set_errno(n),
                Message::Status(text) => {
                    self.entries[id].set_status_text(text);
                    self.dirty = true;
                }
            }
        }
    }

    /// sd_notify `MAINPID=N`: accepted only for a live process of the
    /// service's process group(s), while it has a main process (starting or
    /// running). From now on that process is the main one: its exit is the
    /// service's exit (it is watched, since it may not be our child), and
    /// the previous main process's exit is not. Anything else is refused
    /// with a warning in daemon.log.
    pub(super) fn main_pid_claimed(&mut self, id: ServiceId, claim: MainPidClaim) {
        let e = &self.entries[id];
        let Some(old) = e.svc.pid().filter(|_| {
            matches!(
                e.svc.state,
                State::Starting { pid: Some(_), .. } | State::Running { pid: Some(_), .. }
            )
        }) else {
            log::warn!(
                "{}: MAINPID={} ignored: the service has no main process now ({})",
                e.name,
                claim.pid,
                e.svc.state.name().as_str()
            );
            return;
        };
        if claim.pid == old {
            return;
        }
        let ours = claim
            .pgid
            .is_some_and(|g| e.svc.pgid == Some(g) || e.groups.contains(&g));
        if !ours {
            log::warn!(
                "{}: MAINPID={} refused: {}",
                e.name,
                claim.pid,
                match claim.pgid {
                    None => "no such process".to_owned(),
                    Some(g) => format!(
                        "it is in process group {g}, not in the service's ({})",
                        e.svc.pgid.map_or("none".to_owned(), |p| p.to_string())
                    ),
                }
            );
            return;
        }
        log::info!("{}: main process is now {} (MAINPID)", e.name, claim.pid);
        if self.pids.get(&old) == Some((id, Role::Main)) {
            // Its exit is no longer the service's (reaped as an orphan).
            self.pids.remove(&old);
        }
        self.pids.insert(claim.pid, (id, Role::Main));
        self.entries[id].start_time = claim.start_time;
        self.effects.push_back(Effect::Watch(claim.pid));
        self.health_follows_main(id, claim.pid);
        self.queue.push_back((id, Event::MainPidChanged(claim.pid)));
    }

    /// The exec of a cloned main process happened, or could not. A service
    /// up once its exec is done ([`Started::OnExec`]) hears Spawned or
    /// SpawnFailed now; one up since its clone hears ExecFailed, unless it
    /// is stopping (its exit, 127, ends the stop as any exit does).
    pub(super) fn exec_done(&mut self, pid: Pid, outcome: Result<(), SpawnError>, now: Instant) {
        let Some((id, role)) = self.pids.get(&pid) else {
            match outcome {
                Err(e) if self.probe_pids.contains_key(&pid) => self.probe_not_run(pid, e, now),
                Err(e) => log::debug!("exec of process {pid} (no unit's) failed: {e}"),
                Ok(()) => log::debug!("exec of process {pid} (no unit's) done"),
            }
            return;
        };
        if role == Role::StopCmd {
            // Its exit (127 after a failed exec) is the stop's next news,
            // as for any ExecStop that ends.
            if let Err(e) = outcome {
                log::warn!("{}: ExecStop: {e}", self.entries[id].name);
            }
            return;
        }
        let in_flight = matches!(
            self.entries[id].svc.state,
            State::Starting { pid: None, .. }
        );
        if std::mem::take(&mut self.entries[id].exec_pending) {
            // Its program runs (or never will): units ordered after it
            // may go on.
            self.check_gates_after(id);
        }
        match outcome {
            Ok(()) if in_flight => self.queue.push_back((id, Event::Spawned(pid))),
            Ok(()) => {}
            Err(e) => {
                log::warn!("{}: {e}", self.entries[id].name);
                if matches!(self.entries[id].svc.state, State::Stopping { .. }) {
                    return;
                }
                // It exits with 127 now; that exit is no one's.
                self.pids.remove(&pid);
                self.entries[id].start_time = None;
                let event = match in_flight {
                    true => Event::SpawnFailed(e),
                    false => Event::ExecFailed(e),
                };
                self.queue.push_back((id, event));
            }
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
                TimerKey::Service(id, ServiceTimer::MainPidScan) => self.look_for_main_pid(id),
                TimerKey::Service(id, ServiceTimer::MemoryCheck) => self.mem_due.push(id),
                TimerKey::Service(id, ServiceTimer::Probe) => self.due_probes.push(id),
                TimerKey::Service(id, ServiceTimer::Watchdog) => {
                    if self.entries[id].watchdog().is_some() {
                        log::warn!("{}: watchdog timeout", self.entries[id].name);
                        self.entries[id].set_watchdog(None);
                        self.queue.push_back((id, Event::WatchdogTimeout));
                    }
                }
                TimerKey::Service(id, kind) => {
                    if self.entries[id].timer == Some(kind) {
                        self.entries[id].timer = None;
                    }
                    self.queue.push_back((id, Event::Timer));
                }
                // `run` looks at the groups on every pass; this wakes it,
                // and has leftovers watched again where a zombie was.
                TimerKey::GroupRecheck => {
                    for &id in &self.awaiting_group {
                        let e = &mut self.entries[id];
                        if matches!(
                            e.leftovers,
                            LeftoverWatch::Unwatched | LeftoverWatch::Relook
                        ) {
                            e.leftovers = LeftoverWatch::Due;
                        }
                    }
                }
                TimerKey::Wait(n) => self.wait_expired(n),
                // The runs started since (RestartSec = 0) are known by now,
                // and are not what an ended run left.
                TimerKey::StrayLook => self.stray_look_due = true,
                other => self.due.push(other),
            }
        }
    }
}

impl Supervisor {
    /// After a state change: a running service with WatchdogSec is watched
    /// from the moment it is up; anything else is not.
    pub(in crate::daemon) fn follow_watchdog(&mut self, id: ServiceId, now: Instant) {
        let e = &self.entries[id];
        let wd = e.unit.as_ref().map_or(Duration::ZERO, |u| u.watchdog);
        let live = match e.svc.state {
            State::Running { pid: Some(pid), .. } if !wd.is_zero() => Some(pid),
            _ => None,
        };
        if live == e.watchdog().map(|(p, _)| p) {
            return;
        }
        let key = TimerKey::Service(id, ServiceTimer::Watchdog);
        // An interval the service asked for before it was up wins.
        let wd = match live {
            Some(_) => self.entries[id].take_watchdog_usec().unwrap_or(wd),
            None => wd,
        };
        self.entries[id].set_watchdog(live.map(|p| (p, wd)));
        self.timers.set(key, live.map(|_| now + wd));
    }

    /// WATCHDOG=1 (`interval` None), WATCHDOG=trigger (zero) or
    /// WATCHDOG_USEC=N (a new interval, from now).
    pub(super) fn watchdog_ping(
        &mut self,
        id: ServiceId,
        now: Instant,
        interval: Option<Duration>,
    ) {
        let Some((pid, wd)) = self.entries[id].watchdog() else {
            // Not up yet (WATCHDOG_USEC= with or before READY=1): kept
            // for when its watchdog starts.
            let starting = matches!(self.entries[id].svc.state, State::Starting { .. });
            let watched = self.entries[id]
                .unit
                .as_ref()
                .is_some_and(|u| !u.watchdog.is_zero());
            if let (Some(d), true, true) = (interval, starting, watched) {
                if !d.is_zero() {
                    self.entries[id].set_watchdog_usec(d);
                    self.dirty = true;
                }
            }
            return;
        };
        let wd = match interval {
            Some(d) if d.is_zero() => {
                self.timers
                    .set(TimerKey::Service(id, ServiceTimer::Watchdog), Some(now));
                return;
            }
            Some(d) => {
                // A new daemon keeps it (the state file has it).
                self.dirty |= d != wd;
                d
            }
            None => wd,
        };
        self.entries[id].set_watchdog(Some((pid, wd)));
        self.timers.set(
            TimerKey::Service(id, ServiceTimer::Watchdog),
            Some(now + wd),
        );
    }
}
