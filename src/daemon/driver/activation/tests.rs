use super::*;
use std::path::{Path, PathBuf};

/// A supervisor with one enabled oneshot `job` of this `[timer]`, a
/// poll to register with, and the driver (its daemon started at `t0`).
fn armed(timer: &str) -> (Supervisor, mio::Poll, UnitTimers, Instant) {
    let dir = Path::new("/srv/units");
    let text = format!("[service]\nType = \"oneshot\"\nExecStart = \"job\"\n[timer]\n{timer}\n");
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
    let last = |t: &UnitTimers, sup: &Supervisor| t.row(sup, "job", t0).and_then(|r| r.last_run);
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
    let info =
        std::fs::read_to_string(format!("/proc/self/fdinfo/{}", fd.as_raw_fd())).expect("fdinfo");
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
