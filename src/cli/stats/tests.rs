//! `stats` arithmetic: group totals and CPU% from two samples, and the
//! samples kept between runs.

use super::*;
use crate::protocol::StateName;

fn unit(name: &str, pid: Option<u32>, pgids: &[u32]) -> UnitInfo {
    UnitInfo {
        name: name.into(),
        state: if pid.is_some() {
            StateName::Running
        } else {
            StateName::Inactive
        },
        pid,
        uptime_secs: pid.map(|_| 5),
        restarts: 1,
        pgids: pgids.to_vec(),
        ..UnitInfo::default()
    }
}

fn proc(pgrp: i32, ticks: u64, rss_pages: u64) -> Proc {
    Proc {
        pgrp,
        ticks,
        threads: 2,
        rss_pages,
        fds: Some(4),
    }
}

#[test]
fn group_numbers_and_cpu_percent_from_two_samples() {
    // web: main 10 (group 10) and a child 11; the child gained 50 ticks
    // in 1 s at 100 ticks/s (50%), a new process 12 its 25 ticks.
    let t0 = Duration::from_secs(1000);
    let before = Sample {
        at: Some(t0),
        procs: [((10, 1), proc(10, 100, 10)), ((11, 1), proc(10, 200, 5))]
            .into_iter()
            .collect(),
    };
    let after = Sample {
        at: Some(t0 + Duration::from_secs(1)),
        procs: [
            ((10, 1), proc(10, 100, 10)),
            ((11, 1), proc(10, 250, 5)),
            ((12, 9), proc(10, 25, 1)),
            ((99, 1), proc(99, 1000, 100)),
        ]
        .into_iter()
        .collect(),
    };
    let units = [unit("web", Some(10), &[10]), unit("idle", None, &[])];
    let s = compute(&units, &before, &after, 100, 4096);
    assert_eq!(s[0].processes, Some(3));
    assert_eq!(s[0].rss_bytes, Some(10 * 4096));
    assert_eq!(s[0].group_rss_bytes, Some(16 * 4096));
    assert_eq!(s[0].cpu_seconds, Some(3.75));
    assert_eq!(s[0].cpu_percent, Some(75.0));
    assert_eq!((s[0].threads, s[0].fds), (Some(6), Some(12)));
    assert_eq!(s[1].processes, None);
    assert_eq!(s[1].cpu_percent, None);
    let j = to_json(&s[1]);
    assert!(j["pid"].is_null() && j["rss_bytes"].is_null(), "{j}");
    assert_eq!(j["restarts"], 1);
}

fn at(ms: u64, procs: &[((i32, u64), u64)]) -> Sample {
    Sample {
        at: Some(Duration::from_millis(ms)),
        procs: procs
            .iter()
            .map(|&(k, ticks)| (k, proc(k.0, ticks, 1)))
            .collect(),
    }
}

#[test]
fn a_kept_sample_measures_only_processes_it_saw_or_that_started_after_it() {
    // At 100 ticks/s a sample at 10.005 s is measurable for a process
    // that started at tick 1001 (10.01 s), not 1000 (maybe before it).
    let kept = at(10_005, &[((10, 5), 100)]);
    assert!(measurable(&kept, &at(11_000, &[((10, 5), 150)]), 100));
    assert!(measurable(
        &kept,
        &at(11_000, &[((10, 5), 150), ((11, 1001), 3)]),
        100
    ));
    assert!(!measurable(
        &kept,
        &at(11_000, &[((10, 5), 150), ((11, 1000), 3)]),
        100
    ));
    // The same pid with another start time is another, older process.
    assert!(!measurable(&kept, &at(11_000, &[((10, 6), 1)]), 100));
    // A sample from the future (another boot) is not used.
    assert!(!measurable(&at(20_000, &[]), &at(11_000, &[]), 100));
}

#[test]
fn the_base_is_the_newest_ripe_kept_sample_else_a_wait_else_fresh() {
    let now = at(100_000, &[((10, 5), 500)]);
    let p = [((10, 5), 1)];
    // Ripe ones: the newest wins; too old ones are skipped.
    let kept = [at(80_000, &p), at(99_000, &p), at(99_500, &p)];
    assert_eq!(choose_base(&kept, &now, 100), Base::Kept(2));
    // Only young ones: wait for the oldest of them to ripen.
    let kept = [at(99_900, &p), at(99_800, &p)];
    assert_eq!(
        choose_base(&kept, &now, 100),
        Base::KeptAfter(1, MIN_AGE - Duration::from_millis(200))
    );
    // Nothing measurable, or nothing at all: two fresh samples.
    assert_eq!(choose_base(&[at(99_000, &[])], &now, 100), Base::Fresh);
    assert_eq!(choose_base(&[], &now, 100), Base::Fresh);
    // Kept for next time: the newest ripe one, and the oldest young
    // one (which ripens while quick runs come and go), else now.
    let times = |older: Vec<Sample>| -> Vec<Option<Duration>> {
        to_keep(older, now.clone()).iter().map(|s| s.at).collect()
    };
    let ms = |m: u64| Some(Duration::from_millis(m));
    let older = vec![
        at(80_000, &p),
        at(99_000, &p),
        at(99_800, &p),
        at(99_900, &p),
    ];
    assert_eq!(times(older), [ms(99_000), ms(99_800)]);
    assert_eq!(times(vec![at(99_000, &p)]), [ms(99_000), now.at]);
    assert_eq!(times(vec![at(200_000, &p)]), [now.at]);
}

#[test]
fn kept_samples_round_trip_and_a_damaged_file_is_none() {
    let s = [at(5, &[((10, 5), 7), ((11, 6), 8)]), at(9, &[])];
    let back = decode(&encode(&s));
    assert_eq!(back.len(), 2);
    assert_eq!(back[0].at, s[0].at);
    assert_eq!(back[0].procs[&(11, 6)].ticks, 8);
    assert!(back[1].procs.is_empty());
    assert!(decode("").is_empty());
    assert!(decode("diakonos stats samples 1\n10 5 7\n").is_empty());
    assert!(decode("diakonos stats samples 1\nat 5\n10 x 7\n").is_empty());
}
