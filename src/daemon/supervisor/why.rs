//! `why NAME` (SPEC §12): why a unit is not up, one line per cause,
//! followed down through its dependencies to the root. Read only, from the
//! supervisor's own data (states, the graph, the start window); no I/O.

use super::*;
use crate::protocol::WhyReport;

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
                e.path.display()
            ));
            return;
        }
        let mut follow: Vec<ServiceId> = Vec::new();
        match &e.svc.state {
            State::Running { .. } | State::Exited => {
                say(format!("{name} is up"));
            }
            State::Inactive => say(format!(
                "{name} is inactive: nothing started it (`diakonos start {name}`)"
            )),
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
                let how = match e.svc.policy.kind {
                    ServiceType::Notify => " (waiting for READY=1)",
                    ServiceType::Forking => " (waiting for the main process)",
                    ServiceType::Oneshot => " (waiting for it to finish)",
                    ServiceType::Simple => "",
                };
                match pid {
                    Some(p) => say(format!("{name} is starting, pid {p}{how}")),
                    None => say(format!("{name} is starting{how}")),
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
                self.start_limit_line(e, now, &mut say);
            }
            State::Failed(reason) => {
                say(format!("{name} failed: {reason}"));
                match reason {
                    Reason::DepFailed(dep) | Reason::DepInvalid(dep) => {
                        if let Some(&d) = self.by_name.get(dep) {
                            follow.push(d);
                        }
                    }
                    Reason::StartLimitHit => {
                        self.start_limit_line(e, now, &mut say);
                        say(format!(
                            "  `diakonos restart {name}` clears the start limit and starts it"
                        ));
                    }
                    _ => {
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

    fn start_limit_line(&self, e: &Entry, now: Instant, say: &mut impl FnMut(String)) {
        let p = &e.svc.policy;
        if p.start_limit_burst == 0 {
            return;
        }
        say(format!(
            "  start limit: {} of {} starts within {} (StartLimitBurst, StartLimitIntervalSec)",
            e.svc.starts_in_window(now),
            p.start_limit_burst,
            seconds(p.start_limit_interval)
        ));
    }
}
