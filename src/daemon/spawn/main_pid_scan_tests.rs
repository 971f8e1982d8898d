//! Finding a forking unit's main process: the scan's retries and when it
//! gives up.

use super::*;
use std::time::{Duration, Instant};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn a_resting_lone_candidate_counts_after_20ms() {
    // Seen alone and resting at 0 and again 20 ms later: found.
    let t0 = Instant::now();
    let mut scan = MainPidScan::new(t0);
    assert_eq!(scan.judge(Some((7, true)), t0), Verdict::Wait);
    assert_eq!(scan.judge(Some((7, true)), t0 + ms(10)), Verdict::Wait);
    assert_eq!(scan.judge(Some((7, true)), t0 + ms(20)), Verdict::Found);
}

#[test]
fn a_running_lone_candidate_must_stay_alone_300ms() {
    // A lone process that keeps running may be the middle of a double
    // fork; a new candidate starts the clock again.
    let t0 = Instant::now();
    let mut scan = MainPidScan::new(t0);
    assert_eq!(scan.judge(Some((7, false)), t0), Verdict::Wait);
    assert_eq!(scan.judge(Some((7, false)), t0 + ms(200)), Verdict::Wait);
    assert_eq!(scan.judge(Some((8, false)), t0 + ms(250)), Verdict::Wait);
    assert_eq!(scan.judge(Some((8, false)), t0 + ms(500)), Verdict::Wait);
    assert_eq!(scan.judge(Some((8, false)), t0 + ms(550)), Verdict::Found);
}

#[test]
fn no_lone_candidate_gives_up_after_one_second() {
    // None or several candidates never settle; the cap ends the search.
    let t0 = Instant::now();
    let mut scan = MainPidScan::new(t0);
    assert_eq!(scan.judge(None, t0 + ms(999)), Verdict::Wait);
    assert_eq!(scan.judge(Some((7, true)), t0 + ms(1000)), Verdict::GiveUp);
}
