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
//! clock the queue runs on. At every pass the wall clock is compared with
//! the monotonic one; a jump (NTP setting a clock that started at 1970)
//! re-derives every calendar deadline from the new time.

use std::collections::HashMap;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};

use crate::daemon::supervisor::Supervisor;
use crate::daemon::timers::TimerKey;
use crate::graph::ServiceId;
use crate::protocol::{Request, TimerRow};
use crate::unit::{next_elapse, parse_cron, zone, TimerSpec};

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
    /// When the daemon started (OnBootSec counts from it).
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
}

/// Wall-clock milliseconds since the epoch.
pub fn wall_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl UnitTimers {
    pub fn new(started: Instant) -> UnitTimers {
        UnitTimers {
            started,
            armed: HashMap::new(),
            keys: HashMap::new(),
            last_pass: None,
            clock: None,
        }
    }

    /// The wall clock was set: drain the timerfd, arm it again, and
    /// re-derive every calendar deadline at the end of this pass.
    pub fn on_clock_set(&mut self) {
        if let Some(fd) = &self.clock {
            let mut buf = [0u8; 8];
            // SAFETY: reads at most 8 bytes into `buf`, which lives for the call.
            let _ = unsafe { nix::libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if let Err(e) = arm_clock_watch(fd) {
                log::warn!("cannot watch for clock changes: {e}");
            }
        }
        log::info!("the wall clock was set: calendar timers re-derived");
        for a in self.armed.values_mut() {
            if a.spec.calendar.is_some() {
                a.next = None;
                a.last_calendar = a.last_calendar.min(wall_ms());
            }
        }
    }

    /// Watches for clock sets while a calendar timer is armed, not otherwise.
    fn watch_clock(&mut self, registry: &Registry) {
        let wanted = self.armed.values().any(|a| a.spec.calendar.is_some());
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
        let wall = wall_ms();
        if let Some((i0, w0)) = self.last_pass {
            let expected = w0 + now.saturating_duration_since(i0).as_millis() as i64;
            if (wall - expected).abs() > JUMP {
                log::info!(
                    "the wall clock jumped by {} ms: calendar timers re-derived",
                    wall - expected
                );
                for a in self.armed.values_mut() {
                    if a.spec.calendar.is_some() {
                        a.next = None;
                        a.last_calendar = a.last_calendar.min(wall);
                    }
                }
            }
        }
        self.last_pass = Some((now, wall));
        let mut want: HashMap<ServiceId, (String, TimerSpec)> = HashMap::new();
        for &id in sup.with_timer() {
            let e = &sup.entries()[id];
            if let Some(spec) = e.unit.as_ref().and_then(|u| u.timer.as_deref()) {
                if sup.is_enabled(&e.name) && e.runnable() {
                    want.insert(id, (e.name.clone(), spec.clone()));
                }
            }
        }
        self.armed
            .retain(|name, a| want.values().any(|(n, s)| n == name && *s == a.spec));
        let old: Vec<ServiceId> = self.keys.keys().copied().collect();
        for id in old {
            if !want.contains_key(&id) {
                self.keys.remove(&id);
                sup.timers().set(TimerKey::Activation(id), None);
            }
        }
        for (id, (name, spec)) in want {
            let started = self.started;
            let a = self.armed.entry(name.clone()).or_insert_with(|| Armed {
                spec,
                armed_at: now,
                next: None,
                boot_done: false,
                last_fire: None,
                last_calendar: wall,
                last_run: None,
                held: false,
                rng: (wall as u64) ^ (u64::from(std::process::id()) << 32) | 1,
            });
            if a.next.is_none() {
                a.held = false;
                a.next = next_of(a, started, now, wall);
                if let (Some(d), Some((at, w))) = (a.spec.randomized_delay, a.next) {
                    let extra = jitter(&mut a.rng, d);
                    a.next = Some((at + extra, w + extra.as_millis() as i64));
                }
                if a.spec.calendar.is_some() && before_build(wall) {
                    // Held: the clock is wrong; any other kind still counts.
                    let check = (now + HELD_RECHECK, wall + HELD_RECHECK.as_millis() as i64);
                    if a.next.is_none_or(|n| check.0 < n.0) {
                        a.next = Some(check);
                        a.held = true;
                    }
                }
            }
            self.keys.insert(id, name);
            sup.timers()
                .set(TimerKey::Activation(id), a.next.map(|(at, _)| at));
        }
        self.watch_clock(registry);
    }

    /// An elapse of unit `id`: what to ask of the supervisor, if anything.
    pub fn fire(&mut self, id: ServiceId, sup: &Supervisor, now: Instant) -> Option<Request> {
        let name = self.keys.get(&id)?.clone();
        let a = self.armed.get_mut(&name)?;
        let wall = wall_ms();
        if a.held {
            // Only a look at the clock: `sync` derives the next elapse.
            a.next = None;
            return None;
        }
        if let Some((_, w)) = a.next {
            if a.spec.calendar.is_some() {
                a.last_calendar = a.last_calendar.max(w);
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
        if active && !a.spec.overlap_restart {
            log::info!("{name}: timer elapsed while it still runs: skipped (Overlap = \"skip\")");
            return None;
        }
        a.last_run = Some(wall);
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
        let mut rows = Vec::new();
        for e in sup.entries() {
            let Some(spec) = e.unit.as_ref().and_then(|u| u.timer.as_deref()) else {
                continue;
            };
            let a = self.armed.get(&e.name);
            let next = a.and_then(|a| a.next);
            let last_result = e.svc.last_exit.map(|x| match x.to_wire() {
                crate::protocol::LastExit::Code(0) => "success".to_string(),
                crate::protocol::LastExit::Code(c) => format!("exit code {c}"),
                crate::protocol::LastExit::Signal(s) => format!("killed by {s}"),
                crate::protocol::LastExit::Unknown(()) => "unknown".to_string(),
            });
            rows.push(TimerRow {
                name: e.name.clone(),
                schedule: spec.describe(),
                last_run: a.and_then(|a| a.last_run).map(rfc3339),
                last_result: a.and_then(|a| a.last_run).and(last_result),
                next_run: next.map(|(at, _)| {
                    rfc3339(wall + at.saturating_duration_since(now).as_millis() as i64)
                }),
                left_secs: next.map(|(at, _)| at.saturating_duration_since(now).as_secs_f64()),
                armed: a.is_some(),
            });
        }
        rows
    }
}

/// The earliest of a timer's next elapses, or None when it has none left.
fn next_of(a: &Armed, started: Instant, now: Instant, wall: i64) -> Option<(Instant, i64)> {
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
    if let Some(expr) = &a.spec.calendar {
        if let (Ok(cron), Some(tz)) = (parse_cron(expr), zone(&a.spec.time_zone)) {
            if let Some(ms) = next_elapse(&cron, &tz, wall.max(a.last_calendar)) {
                consider(at_wall(ms));
            }
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

/// Unix milliseconds as RFC 3339 (UTC, seconds).
fn rfc3339(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| {
            t.round(jiff::Unit::Second)
                .map(|t| t.to_string())
                .unwrap_or_default()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

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
