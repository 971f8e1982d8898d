//! `[timer]` units (SPEC §15): armed while enabled, each with one key in
//! the timer queue ([`TimerKey::Activation`]) at its next elapse, so an
//! armed timer costs one wake-up per elapse and none between. At an elapse
//! the loop asks the supervisor to start the unit (or, while it still runs,
//! skips the elapse or restarts it: `Overlap`).
//!
//! Calendar timers are held while the clock reads before the binary's
//! build date (looked at again every minute), and `RandomizedDelaySec`
//! adds a random delay to each computed elapse.
//!
//! Calendar deadlines come from the wall clock, converted to the monotonic
//! clock the queue runs on. A set of the wall clock (NTP setting a clock
//! that started at 1970) makes a timerfd armed with
//! `TFD_TIMER_CANCEL_ON_SET` readable (its read fails with ECANCELED), and
//! every calendar deadline is re-derived from the new time; each pass also
//! compares the wall clock with the monotonic one, for a jump missed so.
//!
//! `Persistent` timers keep a record in the state file (through the
//! supervisor: [`Supervisor::timer_mark`]): the calendar elapses accounted
//! for and the last run. When such a timer is armed (daemon start, enable,
//! load) and an elapse after its record has passed, the job runs once at
//! once (systemd's semantics).
//!
//! The wall time is an argument of the `*_at` methods, so tests drive
//! them with fake wall times.

use crate::hash::HashMap;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};

use crate::daemon::persist::{SavedBoot, SavedRun, SavedTimer};
use crate::daemon::supervisor::Supervisor;
use crate::daemon::timers::TimerKey;
use crate::graph::ServiceId;
use crate::protocol::{Request, TimerRow};
use crate::unit::TimerSpec;

/// When the binary was built (Unix seconds; `build.rs`).
const BUILD_UNIX: &str = env!("DIAKONOS_BUILD_UNIX");

/// While the clock reads before the build date, calendar timers are held
/// and the clock is looked at again this often.
const HELD_RECHECK: Duration = Duration::from_secs(60);

/// Whether the wall time `ms` is before the build date.
fn before_build(ms: i64) -> bool {
    BUILD_UNIX
        .parse::<i64>()
        .is_ok_and(|b| ms < b.saturating_mul(1000))
}

/// A wall clock this far off the monotonic one since the last pass is a jump.
const JUMP: i64 = 2_000;

pub struct UnitTimers {
    /// When the first of the daemons that handed over to each other
    /// started (OnBootSec counts from it; [`carry_on`]).
    started: Instant,
    armed: HashMap<String, Armed>,
    /// The keys set in the queue, by unit id.
    keys: HashMap<ServiceId, String>,
    /// (monotonic, wall ms) at the last pass.
    last_pass: Option<(Instant, i64)>,
    /// A timerfd that becomes readable when the wall clock is set
    /// (TFD_TIMER_CANCEL_ON_SET); only while a calendar timer is armed.
    clock: Option<OwnedFd>,
}

/// Token of the clock-change timerfd.
pub const CLOCK_SET: Token = Token(6);

/// A timerfd on CLOCK_REALTIME armed far ahead with TFD_TIMER_CANCEL_ON_SET:
/// it never expires, but a set of the clock makes it readable (ECANCELED).
fn clock_watch() -> std::io::Result<OwnedFd> {
    use nix::libc;
    // SAFETY: timerfd_create takes two integers and returns a new
    // descriptor or -1; it touches no memory of ours.
    let fd = unsafe {
        libc::timerfd_create(libc::CLOCK_REALTIME, libc::TFD_NONBLOCK | libc::TFD_CLOEXEC)
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned to us and nothing else owns it.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    arm_clock_watch(&fd)?;
    Ok(fd)
}

/// Whether a read of the clock-change timerfd says the wall clock was
/// set: it fails with ECANCELED (a spurious wake-up reads EAGAIN).
fn clock_was_set(read: &std::io::Result<usize>) -> bool {
    matches!(read, Err(e) if e.raw_os_error() == Some(nix::libc::ECANCELED))
}

fn arm_clock_watch(fd: &OwnedFd) -> std::io::Result<()> {
    use nix::libc;
    let spec = libc::itimerspec {
        it_interval: libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        },
        // Year 2200: never reached, so it only ever reports clock sets.
        it_value: libc::timespec {
            tv_sec: 7_258_118_400,
            tv_nsec: 0,
        },
    };
    // SAFETY: `fd` is a timerfd we own; `spec` lives for the call and the
    // old value pointer is null (not wanted).
    let rc = unsafe {
        libc::timerfd_settime(
            fd.as_raw_fd(),
            libc::TFD_TIMER_ABSTIME | libc::TFD_TIMER_CANCEL_ON_SET,
            &spec,
            std::ptr::null_mut(),
        )
    };
    if rc < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

struct Armed {
    spec: TimerSpec,
    armed_at: Instant,
    /// The next elapse: monotonic deadline and wall time (ms).
    next: Option<(Instant, i64)>,
    boot_done: bool,
    last_fire: Option<Instant>,
    /// Wall ms of the last calendar elapse (never fire one twice).
    last_calendar: i64,
    /// Wall ms of the last start by this timer.
    last_run: Option<i64>,
    /// `next` is only a look at the clock (held before the build date).
    held: bool,
    /// State of the RandomizedDelaySec generator.
    rng: u64,
    /// Persistent: the record in the state file exists (`last_calendar`
    /// came from it, or was written to it).
    marked: bool,
}

/// Wall-clock milliseconds since the epoch, as the schedules count them.
pub fn wall_ms() -> i64 {
    crate::daemon::system::unix_now_ms() as i64
}

impl UnitTimers {
    pub fn new(started: Instant) -> UnitTimers {
        UnitTimers {
            started,
            armed: HashMap::default(),
            keys: HashMap::default(),
            last_pass: None,
            clock: None,
        }
    }

    /// OnBootSec counts from `started` (a previous daemon's start).
    pub fn set_started(&mut self, started: Instant) {
        self.started = started;
    }

    /// The record of what the timer of `name` did, for the state file
    /// (the supervisor keeps it; it outlives a disable and the daemon).
    fn record(&self, sup: &mut Supervisor, name: &str) {
        let Some(a) = self.armed.get(name) else {
            return;
        };
        let since = |t: Instant| t.saturating_duration_since(self.started).as_millis() as u64;
        let run = SavedRun {
            armed_ms: Some(since(a.armed_at)),
            fired_ms: a.last_fire.map(since),
            boot_done: a.boot_done,
            last_run_ms: a.last_run,
        };
        sup.set_timer_run(name, run);
    }

    /// The clock-change timerfd is readable: if its read says the wall
    /// clock was set (ECANCELED), re-derive every calendar deadline at the
    /// end of this pass. Armed again either way.
    pub fn on_clock_set(&mut self) {
        let Some(fd) = &self.clock else {
            return;
        };
        let mut buf = [0u8; 8];
        // SAFETY: reads at most 8 bytes into `buf`, which lives for the call.
        let n = unsafe { nix::libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        let read = if n < 0 {
            Err(std::io::Error::last_os_error())
        } else {
            Ok(n as usize)
        };
        if let Err(e) = arm_clock_watch(fd) {
            log::warn!("cannot watch for clock changes: {e}");
        }
        if clock_was_set(&read) {
            self.clock_changed(wall_ms());
        }
    }

    /// The wall clock was set (it reads `wall` now): every calendar
    /// deadline is derived again at the next `sync`.
    pub fn clock_changed(&mut self, wall: i64) {
        log::info!("the wall clock was set: calendar timers re-derived");
        for a in self.armed.values_mut() {
            if !a.spec.calendar.is_empty() {
                a.next = None;
                a.last_calendar = a.last_calendar.min(wall);
            }
        }
    }

    /// Watches for clock sets while a calendar timer is armed, not otherwise.
    fn watch_clock(&mut self, registry: &Registry) {
        let wanted = self.armed.values().any(|a| !a.spec.calendar.is_empty());
        match (&self.clock, wanted) {
            (None, true) => match clock_watch() {
                Ok(fd) => {
                    match registry.register(
                        &mut SourceFd(&fd.as_raw_fd()),
                        CLOCK_SET,
                        Interest::READABLE,
                    ) {
                        Ok(()) => self.clock = Some(fd),
                        Err(e) => log::warn!("cannot watch for clock changes: {e}"),
                    }
                }
                Err(e) => log::warn!("cannot watch for clock changes: {e}"),
            },
            (Some(fd), false) => {
                let _ = registry.deregister(&mut SourceFd(&fd.as_raw_fd()));
                self.clock = None;
            }
            _ => {}
        }
    }

    /// Brings the armed set in line with the enabled `[timer]` units and
    /// sets their keys in the queue.
    pub fn sync(&mut self, sup: &mut Supervisor, registry: &Registry, now: Instant) {
        self.sync_at(sup, registry, now, wall_ms());
    }

    /// [`UnitTimers::sync`] with the wall clock reading `wall` (Unix ms).
    pub fn sync_at(&mut self, sup: &mut Supervisor, registry: &Registry, now: Instant, wall: i64) {
        if let Some((i0, w0)) = self.last_pass {
            let expected = w0 + now.saturating_duration_since(i0).as_millis() as i64;
            if (wall - expected).abs() > JUMP {
                log::info!(
                    "the wall clock jumped by {} ms: calendar timers re-derived",
                    wall - expected
                );
                for a in self.armed.values_mut() {
                    if !a.spec.calendar.is_empty() {
                        a.next = None;
                        a.last_calendar = a.last_calendar.min(wall);
                    }
                }
            }
        }
        self.last_pass = Some((now, wall));
        let mut want: HashMap<ServiceId, (String, TimerSpec)> = HashMap::default();
        for &id in sup.with_timer() {
            let e = &sup.entries()[id];
            if let Some(spec) = e.unit.as_ref().and_then(|u| u.timer.as_deref()) {
                if sup.is_enabled(&e.name) && e.runnable() {
                    want.insert(id, (e.name.clone(), spec.clone()));
                }
            }
        }
        let mut disarmed = Vec::new();
        self.armed.retain(|name, a| {
            let keep = want.values().any(|(n, s)| n == name && *s == a.spec);
            if !keep {
                disarmed.push(name.clone());
            }
            keep
        });
        for name in disarmed {
            // The last run stays (`timers` shows it); the next arming counts anew.
            if let Some(run) = sup.timer_run(&name) {
                let run = SavedRun {
                    last_run_ms: run.last_run_ms,
                    ..SavedRun::default()
                };
                sup.set_timer_run(&name, run);
            }
        }
        let old: Vec<ServiceId> = self.keys.keys().copied().collect();
        for id in old {
            if !want.contains_key(&id) {
                self.keys.remove(&id);
                sup.timers().set(TimerKey::Activation(id), None);
            }
        }
        for (id, (name, spec)) in want {
            self.started_by_hand(sup, id, &name);
            self.arm(sup, id, name, spec, now, wall);
        }
        self.watch_clock(registry);
    }

    /// OnUnitActiveSec counts from the unit's last start, whoever asked
    /// for it: a start seen since the last elapse (a `start`, a restart)
    /// moves the next one.
    fn started_by_hand(&mut self, sup: &Supervisor, id: ServiceId, name: &str) {
        let Some(a) = self.armed.get_mut(name) else {
            return;
        };
        let e = &sup.entries()[id];
        let starting = matches!(e.svc.state, crate::daemon::service::State::Starting { .. });
        if let (Some(_), true, Some(since)) = (a.spec.on_active, starting, e.since()) {
            if a.last_fire.is_none_or(|f| since > f) {
                a.last_fire = Some(since);
                a.next = None;
            }
        }
    }

    /// Arms the `[timer]` of unit `id` (unless it is armed with this spec
    /// already) and sets its key. Out of line: kept out of the code every
    /// daemon runs (the layout's first part), as most have no timers.
    #[inline(never)]
    fn arm(
        &mut self,
        sup: &mut Supervisor,
        id: ServiceId,
        name: String,
        spec: TimerSpec,
        now: Instant,
        wall: i64,
    ) {
        let started = self.started;
        let mark = if spec.persistent {
            sup.timer_mark(&name)
        } else {
            None
        };
        // What it did before (this daemon or an earlier one of this boot).
        let run = sup.timer_run(&name).unwrap_or_default();
        let at = |ms: Option<u64>| {
            ms.and_then(|ms| started.checked_add(Duration::from_millis(ms)))
                .filter(|&t| t <= now)
        };
        let fired = at(run.fired_ms);
        let newly = !self.armed.contains_key(&name);
        let a = self.armed.entry(name.clone()).or_insert_with(|| Armed {
            spec,
            armed_at: at(run.armed_ms).unwrap_or(now),
            next: None,
            boot_done: run.boot_done,
            last_fire: fired,
            // Persistent: count from the record, so a missed elapse is due.
            last_calendar: mark.map_or(wall, |m| m.elapsed_ms),
            last_run: mark.and_then(|m| m.last_run_ms).max(run.last_run_ms),
            held: false,
            rng: (wall as u64) ^ (u64::from(std::process::id()) << 32) | 1,
            marked: mark.is_some(),
        });
        if a.next.is_none() {
            a.held = false;
            let calendar_ok = !before_build(wall);
            if a.spec.persistent && calendar_ok && !a.marked {
                // First armed with a sane clock: elapses count from now.
                a.last_calendar = wall;
                a.marked = true;
                let mark = SavedTimer {
                    elapsed_ms: wall,
                    last_run_ms: a.last_run,
                };
                sup.set_timer_mark(&name, mark);
            }
            a.next = next_of(a, started, now, wall, calendar_ok);
            if let (Some(d), Some((at, w))) = (a.spec.randomized_delay, a.next) {
                let extra = jitter(&mut a.rng, d);
                a.next = Some((at + extra, w + extra.as_millis() as i64));
            }
            if !a.spec.calendar.is_empty() && !calendar_ok {
                // Held: the clock is wrong; any other kind still counts.
                let check = (now + HELD_RECHECK, wall + HELD_RECHECK.as_millis() as i64);
                if a.next.is_none_or(|n| check.0 < n.0) {
                    a.next = Some(check);
                    a.held = true;
                }
            }
        }
        let next = a.next.map(|(at, _)| at);
        sup.timers().set(TimerKey::Activation(id), next);
        if newly {
            self.record(sup, &name);
        }
        self.keys.insert(id, name);
    }

    /// An elapse of unit `id`: what to ask of the supervisor, if anything.
    pub fn fire(&mut self, id: ServiceId, sup: &mut Supervisor, now: Instant) -> Option<Request> {
        self.fire_at(id, sup, now, wall_ms())
    }

    /// [`UnitTimers::fire`] with the wall clock reading `wall` (Unix ms).
    pub fn fire_at(
        &mut self,
        id: ServiceId,
        sup: &mut Supervisor,
        now: Instant,
        wall: i64,
    ) -> Option<Request> {
        let name = self.keys.get(&id)?.clone();
        let a = self.armed.get_mut(&name)?;
        if a.held {
            // Only a look at the clock: `sync` derives the next elapse.
            a.next = None;
            return None;
        }
        if let Some((_, w)) = a.next {
            if !a.spec.calendar.is_empty() && w > wall {
                // Early by the wall clock (the deadline was set on the
                // monotonic clock, and the two drift apart): never before
                // the elapse, as cron and systemd do.
                let at = now + Duration::from_millis((w - wall) as u64);
                a.next = Some((at, w));
                sup.timers().set(TimerKey::Activation(id), Some(at));
                return None;
            }
            if !a.spec.calendar.is_empty() {
                // Every elapse up to now is handled (a late or caught-up
                // one included): the next comes after both.
                a.last_calendar = a.last_calendar.max(w).max(wall);
            }
        }
        if a.spec.on_boot.is_some_and(|d| now >= self.started + d) {
            a.boot_done = true;
        }
        a.next = None;
        a.last_fire = Some(now);
        let active = sup
            .id_of(&name)
            .is_some_and(|i| sup.entries()[i].svc.state.is_active());
        let skip = active && !a.spec.overlap_restart;
        if !skip {
            a.last_run = Some(wall);
        }
        if a.spec.persistent && a.marked {
            let mark = SavedTimer {
                elapsed_ms: a.last_calendar,
                last_run_ms: a.last_run,
            };
            sup.set_timer_mark(&name, mark);
        }
        self.record(sup, &name);
        if skip {
            log::info!("{name}: timer elapsed while it still runs: skipped (Overlap = \"skip\")");
            return None;
        }
        log::info!("{name}: timer elapsed: starting it");
        Some(if active {
            Request::Restart(vec![name])
        } else {
            Request::Start(vec![name])
        })
    }

    /// The rows of `timers`.
    pub fn rows(&self, sup: &Supervisor, now: Instant) -> Vec<TimerRow> {
        let wall = wall_ms();
        sup.entries()
            .iter()
            .filter_map(|e| self.row_of(sup, e, now, wall))
            .collect()
    }

    /// The `timers` row of unit `name` (for `status`), if it has a timer.
    pub fn row(&self, sup: &Supervisor, name: &str, now: Instant) -> Option<TimerRow> {
        let id = sup.id_of(name)?;
        self.row_of(sup, &sup.entries()[id], now, wall_ms())
    }

    fn row_of(
        &self,
        sup: &Supervisor,
        e: &crate::daemon::supervisor::Entry,
        now: Instant,
        wall: i64,
    ) -> Option<TimerRow> {
        let spec = e.unit.as_ref().and_then(|u| u.timer.as_deref())?;
        let a = self.armed.get(&e.name);
        let next = a.and_then(|a| a.next);
        // The last run outlives a disable (a Persistent timer's, the
        // daemon too).
        let last_run = match a {
            Some(a) => a.last_run,
            None => {
                let mark = match spec.persistent {
                    true => sup.timer_mark(&e.name).and_then(|m| m.last_run_ms),
                    false => None,
                };
                mark.max(sup.timer_run(&e.name).and_then(|r| r.last_run_ms))
            }
        };
        let last_result = e.svc.last_exit.map(|x| match x.to_wire() {
            crate::protocol::LastExit::Code(0) => "success".to_string(),
            crate::protocol::LastExit::Code(c) => format!("exit code {c}"),
            crate::protocol::LastExit::Signal(s) => format!("killed by {s}"),
            crate::protocol::LastExit::Unknown(()) => "unknown".to_string(),
        });
        Some(TimerRow {
            name: e.name.clone(),
            schedule: spec.describe(),
            // Cut to the second, not rounded: never a time after the run.
            last_run: last_run
                .map(|ms| crate::utc::seconds(ms.div_euclid(1000).saturating_mul(1000))),
            last_result: last_run.and(last_result),
            next_run: next.map(|(at, _)| {
                crate::utc::seconds(wall + at.saturating_duration_since(now).as_millis() as i64)
            }),
            left_secs: next.map(|(at, _)| at.saturating_duration_since(now).as_secs_f64()),
            armed: a.is_some(),
        })
    }
}

/// What a new daemon carries on from: the previous daemon's boot record
/// and timer runs when they are of this boot (`id`, read with the
/// monotonic clock at `mono_ms`), else a new record that starts now and
/// only the last runs (what `timers` shows). Also how long ago the first
/// daemon of the record started.
pub fn carry_on(
    saved: Option<SavedBoot>,
    mut runs: crate::daemon::persist::Runs,
    id: Option<String>,
    mono_ms: u64,
) -> (Option<SavedBoot>, crate::daemon::persist::Runs, Duration) {
    match (saved, id) {
        (Some(b), Some(id)) if b.id == id && b.started_ms <= mono_ms => {
            let ago = Duration::from_millis(mono_ms - b.started_ms);
            (Some(b), runs, ago)
        }
        (_, id) => {
            for (_, r) in runs.iter_mut() {
                *r = SavedRun {
                    last_run_ms: r.last_run_ms,
                    ..SavedRun::default()
                };
            }
            let boot = id.map(|id| SavedBoot {
                id,
                started_ms: mono_ms,
            });
            (boot, runs, Duration::ZERO)
        }
    }
}

/// The earliest of a timer's next elapses, or None when it has none left.
/// Calendar elapses count only when `calendar_ok` (the clock is sane); a
/// Persistent timer's first one may be in the past (missed): due now.
fn next_of(
    a: &Armed,
    started: Instant,
    now: Instant,
    wall: i64,
    calendar_ok: bool,
) -> Option<(Instant, i64)> {
    let at_wall = |ms: i64| {
        let ahead = Duration::from_millis(ms.saturating_sub(wall).max(0) as u64);
        (now + ahead, ms)
    };
    let mut best: Option<(Instant, i64)> = None;
    let mut consider = |c: (Instant, i64)| {
        if best.is_none_or(|b| c.0 < b.0) {
            best = Some(c);
        }
    };
    if calendar_ok && !a.spec.calendar.is_empty() {
        let after = if a.spec.persistent {
            a.last_calendar
        } else {
            wall.max(a.last_calendar)
        };
        // A record out of every calendar's range (a damaged state file)
        // counts from now.
        let next = a.spec.next_calendar(after);
        if let Some(ms) = next.or_else(|| a.spec.next_calendar(wall)) {
            consider(at_wall(ms));
        }
    }
    if let (Some(d), false) = (a.spec.on_boot, a.boot_done) {
        let at = (started + d).max(now);
        consider((
            at,
            wall + at.saturating_duration_since(now).as_millis() as i64,
        ));
    }
    if let Some(d) = a.spec.on_active {
        let at = a.last_fire.unwrap_or(a.armed_at) + d;
        let at = at.max(now);
        consider((
            at,
            wall + at.saturating_duration_since(now).as_millis() as i64,
        ));
    }
    best
}

/// A random delay in [0, max) (xorshift; no need for more).
fn jitter(state: &mut u64, max: Duration) -> Duration {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    let ms = max.as_millis() as u64;
    if ms == 0 {
        return Duration::ZERO;
    }
    Duration::from_millis(*state % ms)
}

#[cfg(test)]
mod tests;
