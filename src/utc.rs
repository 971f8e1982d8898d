//! UTC times as RFC 3339 text (`2026-11-30T04:33:00Z`), written and read
//! by hand: the few lines below stand in for jiff's general printer and
//! parser, which cost the static binary more than they are worth here.
//! (Zoned times, for calendar timers, stay jiff's.)

/// Days since 1970-01-01 of a civil date (Howard Hinnant's `days_from_civil`).
pub(crate) fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let (y, m) = if m <= 2 { (y - 1, m + 9) } else { (y, m - 3) };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + d - 1;
    era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468
}

/// The civil date of a day count since 1970-01-01.
pub(crate) fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// `2026-11-30T04:33:00`: the date and time of Unix seconds.
pub(crate) fn date_time(secs: i64) -> String {
    let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}",
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

/// `2026-11-30T04:33:00Z`: Unix milliseconds rounded to the second.
pub fn seconds(ms: i64) -> String {
    format!("{}Z", date_time(ms.saturating_add(500).div_euclid(1000)))
}

/// `2026-11-30T04:33:00.123Z`: Unix milliseconds, to the millisecond.
pub fn millis(ms: i64) -> String {
    format!(
        "{}.{:03}Z",
        date_time(ms.div_euclid(1000)),
        ms.rem_euclid(1000)
    )
}

/// Unix seconds of `YYYY-MM-DDTHH:MM:SS[.fff]Z` (what [`seconds`] and
/// [`millis`] write); None for anything else.
pub fn parse_seconds(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    let ok = b.len() >= 20
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && text.ends_with('Z');
    let n = |r: std::ops::Range<usize>| -> Option<i64> {
        let s = text.get(r)?;
        s.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| s.parse().ok())?
    };
    if !ok {
        return None;
    }
    let (mo, d) = (n(5..7)?, n(8..10)?);
    let (h, mi, s) = (n(11..13)?, n(14..16)?, n(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    Some(days_from_civil(n(0..4)?, mo, d) * 86_400 + h * 3600 + mi * 60 + s)
}

/// Milliseconds since the Unix epoch, by the wall clock (0 if the clock is
/// before it).
pub fn unix_now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_times_round_trip_and_match_a_known_calendar() {
        // Known instants (leap day, year ends, the epoch) both ways; rounding to the second.
        for (ms, text) in [
            (0, "1970-01-01T00:00:00Z"),
            (951_782_400_000, "2000-02-29T00:00:00Z"),
            (1_795_938_301_000, "2026-11-29T07:45:01Z"),
            (4_102_444_799_000, "2099-12-31T23:59:59Z"),
        ] {
            assert_eq!(seconds(ms), text);
            assert_eq!(parse_seconds(text), Some(ms / 1000));
        }
        assert_eq!(seconds(1_795_938_301_500), "2026-11-29T07:45:02Z");
        assert_eq!(millis(1_795_938_301_123), "2026-11-29T07:45:01.123Z");
        assert_eq!(
            parse_seconds("2026-11-29T07:45:01.123Z"),
            Some(1_795_938_301)
        );
        for bad in [
            "",
            "2026-11-29 07:45:01Z",
            "2026-13-01T00:00:00Z",
            "2026-11-29T07:45:01",
        ] {
            assert_eq!(parse_seconds(bad), None, "{bad}");
        }
        // Every day of four years, against the day count.
        for day in 0..1461 {
            let text = seconds(day * 86_400_000 + 1_700_000_000_000);
            assert_eq!(
                parse_seconds(&text),
                Some(day * 86_400 + 1_700_000_000),
                "{text}"
            );
        }
    }
}
