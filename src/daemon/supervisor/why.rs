//! `why NAME` (SPEC §12): why a unit is not up, one line per cause,
//! followed down through its dependencies to the root. Read only, from the
//! supervisor's own data (states, the graph, the start window, health runs,
//! the timer queue's next elapse, the enabled set for sockets); no I/O.

use super::health::Verdict;
use super::*;
use crate::protocol::WhyReport;
use crate::unit::OnUnhealthy;

impl Supervisor {
    pub(super) fn why(&self, id: ServiceId, now: Instant) -> WhyReport {
        let e = &self.entries[id];
        let up = e.svc.state.is_up();
        let mut lines = Vec::new();
        if up {
            let what = match e.svc.state {
                State::Exited => "exited successfully",
                _ => "running",
            };
            lines.push(format!("{} is up ({what})", e.name));
            // Up, yet its health check may be failing (OnUnhealthy = "mark",
            // or not yet FailureThreshold failures in a row).
            let failing = e
                .health
                .as_ref()
                .is_some_and(|h| h.streak > 0 || h.shown() == Some(Verdict::Unhealthy));
            if failing {
                self.health_lines(e, &mut |l| lines.push(l));
            }
        } else {
            let mut seen = BTreeSet::new();
            self.causes(id, 0, now, &mut seen, &mut lines);
        }
        WhyReport { up, lines }
    }

    /// Appends the causes of `id` not being up, indented by `depth`, and
    /// those of the dependencies it names; `seen` stops cycles and repeats.
    fn causes(
        &self,
        id: ServiceId,
        depth: usize,
        now: Instant,
        seen: &mut BTreeSet<ServiceId>,
        out: &mut Vec<String>,
    ) {
        if !seen.insert(id) {
            return;
        }
        let e = &self.entries[id];
        let name = &e.name;
        let pad = "  ".repeat(depth);
        let mut say = |line: String| out.push(format!("{pad}{line}"));
        if !e.runnable() && !e.svc.state.is_active() {
            let err = e.error().unwrap_or_else(|| "does not load".to_owned());
            let mut errs = err.lines();
            let first = errs.next().unwrap_or_default();
            say(format!("{name} is invalid: {first}"));
            for more in errs {
                say(format!("  {more}"));
            }
            say(format!(
                "  fix {}, then `diakonos verify {name}` and `diakonos reload`",
                e.path().display()
            ));
            return;
        }
        let mut follow: Vec<ServiceId> = Vec::new();
        match &e.svc.state {
            State::Running { .. } | State::Exited => {
                say(format!("{name} is up"));
            }
            State::Inactive => {
                let said = self.activation_lines(id, now, &mut say);
                let running: Vec<&Entry> = self
                    .conflicting(id)
                    .filter(|c| c.svc.state.is_active())
                    .collect();
                if running.is_empty() && !said {
                    say(format!(
                        "{name} is inactive: nothing started it (`diakonos start {name}`)"
                    ));
                }
                for c in &running {
                    say(format!(
                        "{name} is not started: it conflicts with {}, which is {}",
                        c.name,
                        c.state_name().as_str()
                    ));
                }
                if let Some(c) = running.first() {
                    say(format!(
                        "  `diakonos start {name}` stops {} first (Conflicts)",
                        c.name
                    ));
                }
            }
            State::Waiting => {
                let g = &self.graph;
                let mut any = false;
                for &d in g.after[id].iter() {
                    let dep = &self.entries[d];
                    let required = g.requires[id].contains(&d);
                    let blocks = if required {
                        !dep.runnable() || !dep.svc.state.is_up()
                    } else {
                        dep.runnable()
                            && dep.svc.want == Want::Up
                            && dep.svc.state.is_active()
                            && !dep.svc.state.is_up()
                            && !matches!(dep.svc.state, State::Restarting { .. })
                    };
                    if blocks {
                        any = true;
                        let kind = if required { "requires" } else { "after" };
                        say(format!(
                            "{name} is waiting for {} ({kind}), which is {}",
                            dep.name,
                            dep.state_name().as_str()
                        ));
                        follow.push(d);
                    }
                }
                // The start gate also waits for conflicting units to go down.
                for c in self.conflicting(id) {
                    if c.svc.state.is_active() && !matches!(c.svc.state, State::Waiting) {
                        any = true;
                        say(format!(
                            "{name} is waiting for {} to stop (conflicts), which is {}",
                            c.name,
                            c.state_name().as_str()
                        ));
                    }
                }
                if !any {
                    say(format!("{name} is waiting to start"));
                }
                if let Some(since) = e.since {
                    say(format!(
                        "  waiting for {}",
                        seconds(now.saturating_duration_since(since))
                    ));
                }
            }
            State::Starting { pid, .. } => {
                let gated = readiness_gated(e);
                let how = match e.svc.policy.kind {
                    _ if gated && pid.is_some() => " (waiting for its first passing health probe)",
                    ServiceType::Notify => " (waiting for READY=1)",
                    ServiceType::Forking => " (waiting for the main process)",
                    ServiceType::Oneshot => " (waiting for it to finish)",
                    ServiceType::Simple => "",
                };
                match pid {
                    Some(p) => say(format!("{name} is starting, pid {p}{how}")),
                    None => say(format!("{name} is starting{how}")),
                }
                if gated {
                    self.health_lines(e, &mut say);
                }
            }
            State::Stopping { .. } => say(format!("{name} is stopping")),
            State::Restarting { until } => {
                let after = e
                    .svc
                    .restart_reason
                    .as_ref()
                    .map(|r| format!(" ({r})"))
                    .unwrap_or_default();
                say(format!(
                    "{name} is restarting{after}: next attempt in {} (attempt {})",
                    seconds(until.saturating_duration_since(now)),
                    e.svc.restarts.saturating_add(2)
                ));
                match e.svc.restart_reason.as_deref() {
                    Some(Reason::Unhealthy(..)) => self.health_lines(e, &mut say),
                    Some(Reason::StartTimeout) if readiness_gated(e) => {
                        self.gated_timeout_lines(e, &mut say)
                    }
                    _ => {}
                }
                self.start_limit_line(e, now, &mut say);
            }
            State::Failed(reason) => {
                say(format!("{name} failed: {reason}"));
                match reason {
                    Reason::DepFailed(dep) | Reason::DepInvalid(dep) => {
                        if let Some(&d) = self.by_name.get(&self.entries, dep) {
                            follow.push(d);
                        }
                    }
                    Reason::Unhealthy(..) => {
                        self.health_lines(e, &mut say);
                        say(format!("  `diakonos logs {name}` shows its output"));
                    }
                    Reason::StartLimitHit => {
                        self.start_limit_line(e, now, &mut say);
                        say(format!(
                            "  `diakonos restart {name}` clears the start limit and starts it"
                        ));
                    }
                    _ => {
                        if matches!(reason, Reason::StartTimeout) && readiness_gated(e) {
                            self.gated_timeout_lines(e, &mut say);
                        }
                        if let Some(exit) = e.svc.last_exit {
                            if !matches!(reason, Reason::Exit(_)) {
                                say(format!("  last exit: {exit}"));
                            }
                        }
                        say(format!("  `diakonos logs {name}` shows its output"));
                    }
                }
            }
        }
        for d in follow {
            self.causes(d, depth + 1, now, seen, out);
        }
    }

    /// Health (SPEC §10): the failures in a row against FailureThreshold,
    /// the last probe, and what OnUnhealthy does; nothing before a probe.
    fn health_lines(&self, e: &Entry, say: &mut impl FnMut(String)) {
        let (Some(spec), Some(h)) = (
            e.unit.as_ref().and_then(|u| u.health.as_ref()),
            e.health.as_ref(),
        ) else {
            return;
        };
        let action = match spec.on_unhealthy {
            OnUnhealthy::Restart => "restart",
            OnUnhealthy::Stop => "stop",
            OnUnhealthy::Mark => "mark",
        };
        let n = spec.failure_threshold;
        if matches!(e.svc.state, State::Starting { .. }) {
            say(format!(
                "  health: no passing probe yet (failures count once it is up: FailureThreshold {n}, OnUnhealthy = \"{action}\")"
            ));
        } else {
            let verdict = h.shown().map_or("when it ended", |v| v.as_str());
            say(format!(
                "  health {verdict}: {} of {n} failed probes in a row (FailureThreshold; OnUnhealthy = \"{action}\")",
                h.streak
            ));
        }
        say(last_probe(h));
    }

    /// A start held for its first passing probe that timed out: that is
    /// what it waited for, and what the last probe said.
    fn gated_timeout_lines(&self, e: &Entry, say: &mut impl FnMut(String)) {
        say("  the start waited for a first passing health probe, which never came".to_owned());
        if let Some(h) = &e.health {
            say(last_probe(h));
        }
    }

    /// Timers and on-demand sockets (SPEC §15) of an inactive unit: what
    /// starts it and when. False when it has neither.
    fn activation_lines(&self, id: ServiceId, now: Instant, say: &mut impl FnMut(String)) -> bool {
        let e = &self.entries[id];
        let name = &e.name;
        let Some(unit) = e.unit.as_ref() else {
            return false;
        };
        let enabled = self.enabled.contains(name);
        let mut said = false;
        if let Some(spec) = unit.timer.as_deref() {
            said = true;
            let next = self.timers.deadline(TimerKey::Activation(id));
            match (enabled, next) {
                (true, Some(at)) => {
                    let left = at.saturating_duration_since(now);
                    // The wall time too: "in 29520s" alone is hard to read.
                    let wall = i64::try_from(self.wall_ms(now))
                        .ok()
                        .and_then(|ms| ms.checked_add(left.as_millis() as i64))
                        .map(|ms| format!(", at {}", crate::utc::seconds(ms)))
                        .unwrap_or_default();
                    say(format!(
                        "{name} is inactive: its timer starts it next in {}{wall} ({})",
                        seconds(left),
                        spec.describe()
                    ))
                }
                (true, None) => say(format!(
                    "{name} is inactive: its timer ({}) has no elapse left",
                    spec.describe()
                )),
                (false, _) => say(format!(
                    "{name} is inactive: its timer is not armed (`diakonos enable {name}` arms it)"
                )),
            }
        }
        if let Some(socket) = unit.socket.as_ref().filter(|s| s.on_demand) {
            said = true;
            let addrs: Vec<String> = socket.listen.iter().map(|l| l.addr.to_string()).collect();
            if enabled {
                say(format!(
                    "{name} is inactive, listening on {}: waiting for its first connection",
                    addrs.join(", ")
                ));
            } else {
                say(format!(
                    "{name} is inactive: its socket ({}) is not armed (`diakonos enable {name}` arms it)",
                    addrs.join(", ")
                ));
            }
        }
        said
    }

    /// The units that may not run with `id` (its Conflicts, either way).
    fn conflicting(&self, id: ServiceId) -> impl Iterator<Item = &Entry> {
        self.graph
            .conflicts
            .get(id)
            .unwrap_or(&[])
            .iter()
            .map(|&c| &self.entries[c])
    }

    fn start_limit_line(&self, e: &Entry, now: Instant, say: &mut impl FnMut(String)) {
        let p = &e.svc.policy;
        if p.start_limit_burst == 0 {
            return;
        }
        say(format!(
            "  start limit: {} of {} starts within {} (StartLimitBurst, StartLimitIntervalSec)",
            e.svc.starts_in_window(now),
            p.start_limit_burst,
            seconds(p.start_limit_interval.get())
        ));
    }
}

/// Whether `e`'s start waits for its first passing health probe.
fn readiness_gated(e: &Entry) -> bool {
    e.unit
        .as_ref()
        .and_then(|u| u.health.as_ref())
        .is_some_and(|h| h.readiness)
}

/// `  last probe failed: connection refused (3 ms)`.
fn last_probe(h: &super::health::HealthRun) -> String {
    match h.history.back() {
        Some(p) => format!(
            "  last probe {}: {} ({} ms)",
            if p.ok { "passed" } else { "failed" },
            p.output,
            p.duration_ms
        ),
        None => "  no probe has answered yet".to_owned(),
    }
}
