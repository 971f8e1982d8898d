//! Health probes (SPEC §10), as the supervisor sees them: when a probe is
//! due, what its result means, and what an unhealthy unit gets. The probe
//! itself is an effect ([`Effect::Probe`], carried out by the probe driver)
//! answered later by [`Input::ProbeDone`], or an Exec probe: a child in its
//! own process group whose exit comes back like any other child's.
//!
//! One timer per probed service, `TimerKey::Service(id, Probe)`: while no
//! probe is out it is when the next one is due; while one is out it is that
//! probe's TimeoutSec. So at most one probe per unit is in flight, and a
//! unit without `[health]` never arms anything.

use std::time::Duration;

use super::*;
use crate::daemon::persist::SavedHealth;
use crate::protocol::ProbeRecord;
use crate::unit::{OnUnhealthy, Probe};

/// The last probes kept for `status`.
const HISTORY: usize = 5;
/// The first probe of a run comes at most this soon after the spawn.
const FIRST_PROBE: std::time::Duration = std::time::Duration::from_millis(200);

/// What `list` and `--json` call a probed running unit's health.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Starting,
    Healthy,
    Unhealthy,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Starting => "starting",
            Verdict::Healthy => "healthy",
            Verdict::Unhealthy => "unhealthy",
        }
    }
}

/// A probe that is out.
#[derive(Debug, Clone)]
struct InFlight {
    gen: u64,
    started: Instant,
    /// An Exec probe's process (the leader of its group).
    pid: Option<Pid>,
    /// Its TimeoutSec passed and its group was killed: only the reap is awaited.
    timed_out: bool,
    /// The first line it wrote (stdout and stderr), once reaped.
    output: Option<String>,
}

/// The probing of one run of a service (from its spawn or adoption).
#[derive(Debug, Clone)]
pub struct HealthRun {
    /// The main pid this run probes; a new pid is a new run.
    pid: Pid,
    since: Instant,
    pub verdict: Verdict,
    /// Failed probes in a row (outside StartPeriodSec).
    pub streak: u32,
    passed_once: bool,
    gen: u64,
    in_flight: Option<InFlight>,
    /// The last probes, oldest first (kept when the run ends, for `status`).
    pub history: VecDeque<ProbeRecord>,
}

impl Supervisor {
    /// After every state change of `id`: probes run while the service has a
    /// live main process (starting or running), and stop when it goes down.
    pub(super) fn follow_health(&mut self, id: ServiceId, now: Instant) {
        let e = &self.entries[id];
        if e.unit.as_ref().and_then(|u| u.health.as_ref()).is_none() {
            return;
        }
        let live = match e.svc.state {
            State::Starting { pid: Some(pid), .. } | State::Running { pid: Some(pid), .. } => {
                Some(pid)
            }
            _ => None,
        };
        let current = e
            .health
            .as_ref()
            .filter(|h| h.verdict_live())
            .map(|h| h.pid);
        if live == current {
            return;
        }
        self.end_probing(id);
        let Some(pid) = live else { return };
        let history = self.entries[id]
            .health
            .take()
            .map(|h| h.history)
            .unwrap_or_default();
        let start_interval = self.entries[id]
            .unit
            .as_ref()
            .and_then(|u| u.health.as_ref())
            .map_or(FIRST_PROBE, |h| h.start_interval);
        self.entries[id].health = Some(Box::new(HealthRun::new(pid, now, history)));
        self.timers.set(
            TimerKey::Service(id, ServiceTimer::Probe),
            Some(now + start_interval.min(FIRST_PROBE)),
        );
    }

    /// Takes up the verdict a previous daemon had for the adopted run of
    /// `id` (up since `since`): a run that passed is probed next after its
    /// IntervalSec, as it would have been.
    pub(super) fn resume_health(
        &mut self,
        id: ServiceId,
        saved: &SavedHealth,
        since: Instant,
        now: Instant,
    ) {
        let interval = self.entries[id]
            .unit
            .as_ref()
            .and_then(|u| u.health.as_ref())
            .map(|h| h.interval);
        let Some(run) = self.entries[id].health.as_mut() else {
            return;
        };
        run.resume(saved, since);
        if let (true, Some(interval)) = (saved.passed_once, interval) {
            self.timers.set(
                TimerKey::Service(id, ServiceTimer::Probe),
                Some(now + interval),
            );
        }
    }

    /// The probe history a previous daemon saved (no run is live yet; the
    /// next run, [`Supervisor::follow_health`], keeps it).
    pub(super) fn seed_probe_history(
        &mut self,
        id: ServiceId,
        probes: Vec<ProbeRecord>,
        now: Instant,
    ) {
        let has_health = self.entries[id]
            .unit
            .as_ref()
            .is_some_and(|u| u.health.is_some());
        if probes.is_empty() || !has_health {
            return;
        }
        let mut history: VecDeque<ProbeRecord> = probes.into();
        while history.len() > HISTORY {
            history.pop_front();
        }
        // Pid 0: not live (see `verdict_live`) until a run starts.
        self.entries[id].health = Some(Box::new(HealthRun::new(Pid::from_raw(0), now, history)));
    }

    /// The main process changed within a run (sd_notify MAINPID=): the
    /// same run goes on, probing for the new pid.
    pub(super) fn health_follows_main(&mut self, id: ServiceId, pid: Pid) {
        if let Some(h) = self.entries[id]
            .health
            .as_mut()
            .filter(|h| h.verdict_live())
        {
            h.pid = pid;
        }
    }

    /// The run is over: no more probes; one that is out is cancelled (an
    /// Exec probe's group killed). The history stays for `status`.
    fn end_probing(&mut self, id: ServiceId) {
        self.timers
            .set(TimerKey::Service(id, ServiceTimer::Probe), None);
        let Some(h) = self.entries[id].health.as_mut() else {
            return;
        };
        h.pid = Pid::from_raw(0);
        if let Some(f) = h.in_flight.take() {
            match f.pid {
                Some(pid) => {
                    // Reaped later; the reap finds no run that waits for it.
                    self.effects.push_back(Effect::Signal {
                        pgid: pid,
                        signal: Signal::SIGKILL,
                    });
                }
                None => self.effects.push_back(Effect::ProbeCancel { id }),
            }
        }
    }

    /// The probe timer of `id` expired: a probe is due, or the one that is
    /// out took longer than TimeoutSec.
    pub(super) fn probe_timer(&mut self, id: ServiceId, now: Instant, sys: &mut dyn Sys) {
        let Some((unit, spec, h)) = live_run(&mut self.entries[id]) else {
            return;
        };
        let timeout = spec.timeout;
        if let Some(f) = h.in_flight.as_mut() {
            if f.timed_out {
                return;
            }
            let took = now.saturating_duration_since(f.started);
            let text = format!("timed out after {}", seconds(timeout));
            match f.pid {
                Some(pid) => {
                    f.timed_out = true;
                    self.effects.push_back(Effect::Signal {
                        pgid: pid,
                        signal: Signal::SIGKILL,
                    });
                }
                None => {
                    h.in_flight = None;
                    self.effects.push_back(Effect::ProbeCancel { id });
                }
            }
            self.probe_result(id, false, text, took, now);
            return;
        }
        h.gen += 1;
        let gen = h.gen;
        let mut pid = None;
        match &spec.probe {
            Probe::Exec(argv) => match sys.spawn_probe(unit, argv) {
                Ok(p) => {
                    self.probe_pids.insert(p, id);
                    pid = Some(p);
                }
                Err(e) => {
                    self.probe_result(id, false, format!("cannot run: {e}"), Duration::ZERO, now);
                    return;
                }
            },
            probe => self.effects.push_back(Effect::Probe {
                id,
                gen,
                probe: probe.clone(),
                expect: spec.expect_status,
            }),
        }
        if let Some(h) = self.entries[id].health.as_mut() {
            h.in_flight = Some(InFlight {
                gen,
                started: now,
                pid,
                timed_out: false,
                output: None,
            });
        }
        self.timers.set(
            TimerKey::Service(id, ServiceTimer::Probe),
            Some(now + timeout),
        );
    }

    /// A network probe ended (the driver's answer to [`Effect::Probe`]).
    pub(super) fn probe_done(
        &mut self,
        id: ServiceId,
        gen: u64,
        outcome: Result<String, String>,
        now: Instant,
    ) {
        let Some(h) = self.entries.get_mut(id).and_then(|e| e.health.as_mut()) else {
            return;
        };
        let Some(f) = h
            .in_flight
            .as_ref()
            .filter(|f| f.gen == gen && f.pid.is_none())
        else {
            return;
        };
        let took = now.saturating_duration_since(f.started);
        h.in_flight = None;
        let (ok, text) = match outcome {
            Ok(t) => (true, t),
            Err(t) => (false, t),
        };
        self.probe_result(id, ok, text, took, now);
    }

    /// An Exec probe's program could not be run: a failed probe, with why
    /// (its exit with 127, which follows, is no one's).
    pub(super) fn probe_not_run(&mut self, pid: Pid, e: SpawnError, now: Instant) {
        if let Some((id, took, _)) = self.probe_ended(pid, now) {
            self.probe_result(id, false, format!("cannot run: {e}"), took, now);
        }
    }

    /// The unit whose Exec probe `pid` is, for the driver that reaps it.
    pub fn probe_of(&self, pid: Pid) -> Option<&crate::unit::Unit> {
        let &id = self.probe_pids.get(&pid)?;
        self.entries[id].unit.as_deref()
    }

    /// What Exec probe `pid` wrote: its result's text.
    pub(super) fn probe_output(&mut self, pid: Pid, text: String) {
        let Some(&id) = self.probe_pids.get(&pid) else {
            return;
        };
        if let Some(f) = self.entries[id]
            .health
            .as_mut()
            .and_then(|h| h.in_flight.as_mut())
            .filter(|f| f.pid == Some(pid))
        {
            f.output = Some(text);
        }
    }

    /// An Exec probe's process was reaped; false if `pid` is not one.
    pub(super) fn probe_exited(&mut self, pid: Pid, kind: ExitKind, now: Instant) -> bool {
        if !self.probe_pids.contains_key(&pid) {
            return false;
        }
        if let Some((id, took, output)) = self.probe_ended(pid, now) {
            let exit = match kind {
                ExitKind::Code(0) => "exit 0".to_owned(),
                ExitKind::Code(c) => format!("exit {c}"),
                other => other.to_string(),
            };
            // What it said, as SPEC §10's "first line of output"; its exit
            // when it said nothing (or failed: both).
            let text = match (output, kind.success()) {
                (Some(out), true) => out,
                (Some(out), false) => format!("{exit}: {out}"),
                (None, _) => exit,
            };
            self.probe_result(id, kind.success(), text, took, now);
        }
        true
    }

    /// The probe process `pid` is done: its service and how long it took,
    /// when it is the service's probe in flight and not already counted as
    /// timed out (then the next probe is scheduled instead).
    fn probe_ended(
        &mut self,
        pid: Pid,
        now: Instant,
    ) -> Option<(ServiceId, Duration, Option<String>)> {
        let id = self.probe_pids.remove(&pid)?;
        let h = self.entries[id].health.as_mut()?;
        let f = h.in_flight.as_mut().filter(|f| f.pid == Some(pid))?;
        let (took, timed_out) = (now.saturating_duration_since(f.started), f.timed_out);
        let output = f.output.take();
        h.in_flight = None;
        if timed_out {
            // Its failure was recorded at the timeout; the next probe is due.
            self.schedule_probe(id, now);
            return None;
        }
        Some((id, took, output))
    }

    /// Records a result and acts on it: a first pass makes a gated unit
    /// up; FailureThreshold failures in a row make it unhealthy.
    fn probe_result(
        &mut self,
        id: ServiceId,
        ok: bool,
        text: String,
        took: Duration,
        now: Instant,
    ) {
        let Some((start_period, failure_threshold, on_unhealthy)) = self.entries[id]
            .unit
            .as_ref()
            .and_then(|u| u.health.as_ref())
            .map(|h| (h.start_period, h.failure_threshold, h.on_unhealthy))
        else {
            return;
        };
        let name = self.entries[id].name.clone();
        let starting = matches!(self.entries[id].svc.state, State::Starting { .. });
        let wall_secs = self.wall_ms(now) / 1000;
        let Some(h) = self.entries[id].health.as_mut() else {
            return;
        };
        h.history.push_back(ProbeRecord {
            time: wall_secs,
            duration_ms: took.as_millis() as u64,
            ok,
            output: text.lines().next().unwrap_or_default().to_owned(),
        });
        while h.history.len() > HISTORY {
            h.history.pop_front();
        }
        self.probes_unsaved = true;
        if ok {
            h.streak = 0;
            h.passed_once = true;
            if h.verdict != Verdict::Healthy {
                log::info!("{name}: healthy ({text})");
            }
            h.verdict = Verdict::Healthy;
            if starting {
                self.queue.push_back((id, Event::ProbePassed));
            }
        } else if starting || now.saturating_duration_since(h.since) < start_period {
            // Inside the start period, or still starting (TimeoutStartSec
            // bounds that): recorded, not counted.
            log::debug!("{name}: probe failed ({text}), not counted yet");
        } else {
            h.streak = h.streak.saturating_add(1);
            if h.streak >= failure_threshold && h.verdict != Verdict::Unhealthy {
                h.verdict = Verdict::Unhealthy;
                let reason = Reason::Unhealthy(h.streak, text);
                log::warn!("{name}: {reason}");
                match on_unhealthy {
                    OnUnhealthy::Mark => {}
                    OnUnhealthy::Restart => self.queue.push_back((
                        id,
                        Event::Unhealthy {
                            reason,
                            stop: false,
                        },
                    )),
                    OnUnhealthy::Stop => self
                        .queue
                        .push_back((id, Event::Unhealthy { reason, stop: true })),
                }
            }
        }
        if self.entries[id]
            .health
            .as_ref()
            .is_some_and(|h| h.in_flight.is_none())
        {
            self.schedule_probe(id, now);
        }
    }

    fn schedule_probe(&mut self, id: ServiceId, now: Instant) {
        let Some((_, spec, h)) = live_run(&mut self.entries[id]) else {
            return;
        };
        let wait = if h.passed_once {
            spec.interval
        } else {
            spec.start_interval
        };
        self.timers
            .set(TimerKey::Service(id, ServiceTimer::Probe), Some(now + wait));
    }
}

/// A probed unit, its health spec and its run, while the run is live (the
/// service has a main process to probe); None otherwise. Borrowed, not
/// cloned: a probe is due every few seconds per probed unit.
fn live_run(e: &mut Entry) -> Option<(&Unit, &crate::unit::Health, &mut HealthRun)> {
    let unit = e.unit.as_deref()?;
    let spec = unit.health.as_ref()?;
    let run = e.health.as_deref_mut().filter(|h| h.verdict_live())?;
    Some((unit, spec, run))
}

impl HealthRun {
    /// A run of `pid` from `since`, starting, after the earlier probes of `history`.
    fn new(pid: Pid, since: Instant, history: VecDeque<ProbeRecord>) -> HealthRun {
        HealthRun {
            pid,
            since,
            verdict: Verdict::Starting,
            streak: 0,
            passed_once: false,
            gen: 0,
            in_flight: None,
            history,
        }
    }

    /// The verdict of a live run, for a daemon that takes over.
    pub fn saved(&self) -> Option<SavedHealth> {
        self.verdict_live().then(|| SavedHealth {
            verdict: self.verdict.as_str().to_owned(),
            streak: self.streak,
            passed_once: self.passed_once,
        })
    }

    /// Takes up the verdict a previous daemon had for this run, which
    /// began at `since` (StartPeriodSec counts from there).
    fn resume(&mut self, saved: &SavedHealth, since: Instant) {
        self.verdict = match saved.verdict.as_str() {
            "healthy" => Verdict::Healthy,
            "unhealthy" => Verdict::Unhealthy,
            _ => Verdict::Starting,
        };
        self.streak = saved.streak;
        self.passed_once = saved.passed_once;
        self.since = self.since.min(since);
    }

    /// Whether this run is still probing (the service has not gone down).
    fn verdict_live(&self) -> bool {
        self.pid.as_raw() != 0
    }

    /// What `list` shows while the run is live.
    pub fn shown(&self) -> Option<Verdict> {
        self.verdict_live().then_some(self.verdict)
    }
}
