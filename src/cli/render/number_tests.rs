//! Durations and numbers written by hand (no `fmt` machinery), checked
//! against `format!`.

use super::*;

#[test]
fn durations_and_numbers_are_written_without_fmt() {
    // The hand-written paths of `list` give what `write!` gave.
    let shown = |secs| {
        let mut s = String::new();
        write_duration(&mut s, secs);
        s
    };
    assert_eq!(shown(0), "0s");
    assert_eq!(shown(59), "59s");
    assert_eq!(shown(60), "1m 0s");
    assert_eq!(shown(3661), "1h 1m");
    assert_eq!(shown(2 * 86_400 + 3 * 3600), "2d 3h");
    let mut buf = [0u8; 20];
    assert_eq!(decimal(&mut buf, 0), "0");
    assert_eq!(decimal(&mut buf, u64::MAX), u64::MAX.to_string());
    let mut out = String::new();
    pad(&mut out, 40);
    assert_eq!(out, " ".repeat(40));
}
