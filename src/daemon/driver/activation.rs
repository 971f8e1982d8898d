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
mod tests {
    use super::*;
    use std::path::{Path, PathBuf};

    /// A supervisor with one enabled oneshot `job` of this `[timer]`, a
    /// poll to register with, and the driver (its daemon started at `t0`).
    fn armed(timer: &str) -> (Supervisor, mio::Poll, UnitTimers, Instant) {
        let dir = Path::new("/srv/units");
        let text =
            format!("[service]\nType = \"oneshot\"\nExecStart = \"job\"\n[timer]\n{timer}\n");
        let mut loaded = crate::unit::LoadedDir::default();
        let unit = crate::unit::parse("job", &dir.join("job.service"), &text, dir);
        loaded.units.insert("job".to_string(), unit);
        let mut sup = Supervisor::new(loaded, dir.to_path_buf(), PathBuf::from("/tmp/logs"), 1);
        sup.set_enabled(&["job".to_string()], true).expect("enable");
        let t0 = Instant::now();
        let poll = mio::Poll::new().expect("a poll");
        (sup, poll, UnitTimers::new(t0), t0)
    }

    #[test]
    fn a_daemon_carries_on_from_a_record_of_its_own_boot_only() {
        // Same boot: the record and the runs as they were, and how long ago the line began. Another boot, no boot id, or a record from the future: a new record from now, only the last runs kept.
        let boot = |id: &str, started_ms| SavedBoot {
            id: id.to_string(),
            started_ms,
        };
        let run = SavedRun {
            armed_ms: Some(5),
            fired_ms: Some(700),
            boot_done: true,
            last_run_ms: Some(1_795_938_301_000),
        };
        let runs = vec![("job".to_string(), run)];
        let same = carry_on(
            Some(boot("b1", 1_000)),
            runs.clone(),
            Some("b1".into()),
            4_000,
        );
        assert_eq!(
            same,
            (
                Some(boot("b1", 1_000)),
                runs.clone(),
                Duration::from_secs(3)
            )
        );
        let only_last = SavedRun {
            last_run_ms: run.last_run_ms,
            ..SavedRun::default()
        };
        for (saved, id) in [
            (Some(boot("b0", 1_000)), Some("b1")),
            (Some(boot("b1", 9_000)), Some("b1")),
            (None, Some("b1")),
        ] {
            let (b, r, ago) = carry_on(saved, runs.clone(), id.map(str::to_string), 4_000);
            assert_eq!(b, Some(boot("b1", 4_000)));
            assert_eq!(r, [("job".to_string(), only_last)]);
            assert_eq!(ago, Duration::ZERO);
        }
        let (b, _, _) = carry_on(Some(boot("b1", 1_000)), runs, None, 4_000);
        assert_eq!(b, None);
    }

    /// Unix ms of an RFC 3339 time. The tests use dates after any build
    /// date (calendar timers are held before it).
    fn ms(text: &str) -> i64 {
        text.parse::<jiff::Timestamp>()
            .expect("a timestamp")
            .as_millisecond()
    }

    /// How long after `now` the job's timer key is due.
    fn due_in(sup: &mut Supervisor, now: Instant) -> Option<Duration> {
        let id = sup.id_of("job").expect("job");
        sup.timers()
            .deadline(TimerKey::Activation(id))
            .map(|at| at.saturating_duration_since(now))
    }

    const MIN: Duration = Duration::from_secs(60);

    #[test]
    fn a_clock_set_re_derives_calendar_deadlines() {
        // Hourly in UTC, armed at 06:10: due in 50 min. The clock is set to 06:40: the clock-changed input re-derives it to 20 min; set back to 05:10: 50 min again.
        let (mut sup, poll, mut t, t0) = armed("OnCalendar = \"0 * * * *\"\nTimeZone = \"UTC\"");
        t.sync_at(&mut sup, poll.registry(), t0, ms("2030-11-29T06:10:00Z"));
        assert_eq!(due_in(&mut sup, t0), Some(50 * MIN));
        t.clock_changed(ms("2030-11-29T06:40:00Z"));
        t.sync_at(&mut sup, poll.registry(), t0, ms("2030-11-29T06:40:00Z"));
        assert_eq!(due_in(&mut sup, t0), Some(20 * MIN));
        t.clock_changed(ms("2030-11-29T05:10:00Z"));
        t.sync_at(&mut sup, poll.registry(), t0, ms("2030-11-29T05:10:00Z"));
        assert_eq!(due_in(&mut sup, t0), Some(50 * MIN));
        // The clock-change timerfd is open while the calendar timer is armed.
        assert!(t.clock.is_some());
    }

    #[test]
    fn a_calendar_timer_never_starts_before_its_elapse_by_the_wall_clock() {
        // Due at 07:00 on the monotonic clock, but the wall clock says 06:59:59.900: nothing starts, the key is due again in 100 ms; then it starts.
        let (mut sup, poll, mut t, t0) = armed("OnCalendar = \"0 * * * *\"\nTimeZone = \"UTC\"");
        t.sync_at(&mut sup, poll.registry(), t0, ms("2030-11-29T06:10:00Z"));
        let id = sup.id_of("job").expect("job");
        let at = t0 + 50 * MIN;
        assert_eq!(
            t.fire_at(id, &mut sup, at, ms("2030-11-29T06:59:59.900Z")),
            None
        );
        assert_eq!(due_in(&mut sup, at), Some(Duration::from_millis(100)));
        let later = at + Duration::from_millis(100);
        assert_eq!(
            t.fire_at(id, &mut sup, later, ms("2030-11-29T07:00:00Z")),
            Some(Request::Start(vec!["job".to_string()]))
        );
    }

    #[test]
    fn a_jump_from_1970_releases_held_calendar_timers() {
        // At 1970 (no RTC, before NTP) even a per-second calendar timer is held: only a look at the clock a minute later, which starts nothing. NTP sets the clock: the next elapse counts from the new time.
        let (mut sup, poll, mut t, t0) = armed("OnCalendar = \"0 * * * *\"\nTimeZone = \"UTC\"");
        t.sync_at(&mut sup, poll.registry(), t0, 10_000);
        assert_eq!(due_in(&mut sup, t0), Some(HELD_RECHECK));
        let id = sup.id_of("job").expect("job");
        let later = t0 + HELD_RECHECK;
        assert_eq!(t.fire_at(id, &mut sup, later, 70_000), None);
        t.sync_at(&mut sup, poll.registry(), later, 70_000);
        assert_eq!(due_in(&mut sup, later), Some(HELD_RECHECK));
        t.clock_changed(ms("2030-11-29T06:10:00Z"));
        t.sync_at(&mut sup, poll.registry(), later, ms("2030-11-29T06:10:00Z"));
        assert_eq!(due_in(&mut sup, later), Some(50 * MIN));
        let at = later + 50 * MIN;
        assert_eq!(
            t.fire_at(id, &mut sup, at, ms("2030-11-29T07:00:00Z")),
            Some(Request::Start(vec!["job".to_string()]))
        );

        let (mut sup, poll, mut t, t0) = armed("OnCalendar = \"* * * * * *\"");
        t.sync_at(&mut sup, poll.registry(), t0, 10_000);
        assert_eq!(due_in(&mut sup, t0), Some(HELD_RECHECK));
    }

    #[test]
    fn a_persistent_timer_runs_a_missed_elapse_once_when_armed() {
        // The record says 05:00 was the last elapse; armed at 06:10 (06:00 missed): due at once. Once fired, the record moves to now and the next is 07:00, not another catch-up.
        let timer = "OnCalendar = \"0 * * * *\"\nTimeZone = \"UTC\"\nPersistent = true";
        let (mut sup, poll, mut t, t0) = armed(timer);
        let five = ms("2030-11-29T05:00:00Z");
        let mark = SavedTimer {
            elapsed_ms: five,
            last_run_ms: Some(five),
        };
        sup.set_timer_mark("job", mark);
        let wall = ms("2030-11-29T06:10:00Z");
        t.sync_at(&mut sup, poll.registry(), t0, wall);
        assert_eq!(due_in(&mut sup, t0), Some(Duration::ZERO));
        let row = t.row(&sup, "job", t0).expect("a row");
        assert_eq!(row.last_run.as_deref(), Some("2030-11-29T05:00:00Z"));
        let id = sup.id_of("job").expect("job");
        assert_eq!(
            t.fire_at(id, &mut sup, t0, wall),
            Some(Request::Start(vec!["job".to_string()]))
        );
        assert_eq!(
            sup.timer_mark("job"),
            Some(SavedTimer {
                elapsed_ms: wall,
                last_run_ms: Some(wall)
            })
        );
        t.sync_at(&mut sup, poll.registry(), t0, wall);
        assert_eq!(due_in(&mut sup, t0), Some(50 * MIN));
    }

    #[test]
    fn a_persistent_timer_without_a_record_starts_one_and_waits() {
        // First armed: nothing was missed; the record (in the state snapshot) says elapses count from now. Without Persistent no record is kept.
        let timer = "OnCalendar = \"0 * * * *\"\nTimeZone = \"UTC\"\nPersistent = true";
        let (mut sup, poll, mut t, t0) = armed(timer);
        let wall = ms("2030-11-29T06:10:00Z");
        t.sync_at(&mut sup, poll.registry(), t0, wall);
        assert_eq!(due_in(&mut sup, t0), Some(50 * MIN));
        assert!(sup.take_dirty());
        let saved = sup.snapshot(t0);
        assert_eq!(saved.timers["job"].elapsed_ms, wall);
        assert_eq!(saved.timers["job"].last_run_ms, None);

        let (mut sup, poll, mut t, t0) = armed("OnCalendar = \"0 * * * *\"\nTimeZone = \"UTC\"");
        t.sync_at(&mut sup, poll.registry(), t0, wall);
        assert_eq!(sup.timer_mark("job"), None);
    }

    #[test]
    fn a_timers_last_run_outlives_a_disable_and_carries_over() {
        // Not Persistent: the last run is the daemon's memory only, but a disable (its timer disarmed) does not erase it from `timers`, and an enable keeps it.
        let (mut sup, poll, mut t, t0) = armed("OnCalendar = \"0 * * * *\"\nTimeZone = \"UTC\"");
        let wall = ms("2030-11-29T06:00:00Z");
        t.sync_at(&mut sup, poll.registry(), t0, wall);
        let id = sup.id_of("job").expect("job");
        let seven = ms("2030-11-29T07:00:00Z");
        t.fire_at(id, &mut sup, t0 + 60 * MIN, seven);
        let last =
            |t: &UnitTimers, sup: &Supervisor| t.row(sup, "job", t0).and_then(|r| r.last_run);
        assert_eq!(last(&t, &sup).as_deref(), Some("2030-11-29T07:00:00Z"));
        sup.set_enabled(&["job".to_string()], false)
            .expect("disable");
        t.sync_at(&mut sup, poll.registry(), t0, wall);
        assert!(!t.row(&sup, "job", t0).expect("a row").armed);
        assert_eq!(last(&t, &sup).as_deref(), Some("2030-11-29T07:00:00Z"));
        sup.set_enabled(&["job".to_string()], true).expect("enable");
        t.sync_at(&mut sup, poll.registry(), t0, wall);
        assert!(t.row(&sup, "job", t0).expect("a row").armed);
        assert_eq!(last(&t, &sup).as_deref(), Some("2030-11-29T07:00:00Z"));
    }

    #[test]
    fn a_record_out_of_range_does_not_stop_the_timer() {
        // A damaged state file's record (year -292 million, or far future) neither panics nor disarms the timer: the next elapse counts from now.
        let timer = "OnCalendar = \"0 * * * *\"\nTimeZone = \"UTC\"\nPersistent = true";
        for elapsed_ms in [i64::MIN, i64::MAX] {
            let (mut sup, poll, mut t, t0) = armed(timer);
            let mark = SavedTimer {
                elapsed_ms,
                last_run_ms: Some(elapsed_ms),
            };
            sup.set_timer_mark("job", mark);
            t.sync_at(&mut sup, poll.registry(), t0, ms("2030-11-29T06:10:00Z"));
            assert_eq!(due_in(&mut sup, t0), Some(50 * MIN), "{elapsed_ms}");
            assert!(t.row(&sup, "job", t0).is_some());
        }
    }

    #[test]
    fn a_cancelled_read_is_a_clock_set_and_the_watch_cancels_on_set() {
        // ECANCELED from the timerfd means the wall clock was set; a spurious wake-up (EAGAIN) or an expiry does not. The real timerfd is armed absolute with TFD_TIMER_CANCEL_ON_SET (fdinfo "settime flags: 03"), which the kernel needs to report sets.
        use nix::libc::{EAGAIN, ECANCELED};
        assert!(clock_was_set(&Err(std::io::Error::from_raw_os_error(
            ECANCELED
        ))));
        assert!(!clock_was_set(&Err(std::io::Error::from_raw_os_error(
            EAGAIN
        ))));
        assert!(!clock_was_set(&Ok(8)));
        let fd = clock_watch().expect("a timerfd");
        let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", fd.as_raw_fd()))
            .expect("fdinfo");
        assert!(info.contains("settime flags: 03"), "{info}");
        assert!(info.contains("clockid: 0"), "{info}");
    }

    #[test]
    fn a_clock_before_the_build_date_holds_calendar_timers() {
        // 1970 (a box without RTC before NTP) is before the build; now is not.
        assert!(before_build(10_000));
        assert!(!before_build(wall_ms()));
    }

    #[test]
    fn randomized_delays_stay_below_their_bound_and_vary() {
        // Each delay is in [0, max); a zero bound gives none.
        let mut rng = 0x9e37_79b9_7f4a_7c15;
        let max = Duration::from_secs(10);
        let delays: Vec<Duration> = (0..100).map(|_| jitter(&mut rng, max)).collect();
        assert!(delays.iter().all(|d| *d < max));
        assert!(delays.iter().any(|d| *d != delays[0]));
        assert_eq!(jitter(&mut rng, Duration::ZERO), Duration::ZERO);
    }
}
