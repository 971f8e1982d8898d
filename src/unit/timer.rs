//! `[timer]` (SPEC §15): when the daemon starts a unit by itself. Pure:
//! the checks, and the schedule arithmetic over a wall time the caller
//! passes (the daemon's driver is `daemon/driver/activation.rs`).

use std::str::FromStr;
use std::time::Duration;

use croner::parser::{CronParser, Seconds, Year};
use croner::Cron;
use jiff::tz::TimeZone;
use jiff::Timestamp;

use super::diag::{esc, Ctx};
use super::schema;
use super::shape::Values;
use super::values::{choice, secs};

/// A unit's `[timer]`, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimerSpec {
    /// Cron expressions (5 fields, 6 with seconds first, or `@daily` ...);
    /// the next elapse is the earliest of theirs. Empty: none.
    pub calendar: Vec<String>,
    /// `local`, `UTC` or an `Area/City` of the system's zone files.
    pub time_zone: String,
    pub on_boot: Option<Duration>,
    pub on_active: Option<Duration>,
    /// At an elapse while it still runs: restart it (else skip this one).
    pub overlap_restart: bool,
    /// A random delay up to this is added to each elapse.
    pub randomized_delay: Option<Duration>,
    /// A calendar elapse missed while the timer was not armed (no daemon,
    /// or the unit disabled) runs the job once when it is armed again.
    pub persistent: bool,
}

impl TimerSpec {
    /// What `timers` shows as the schedule.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if !self.calendar.is_empty() {
            let c = self.calendar.join("; ");
            parts.push(if self.time_zone == "local" {
                c
            } else {
                format!("{c} ({})", self.time_zone)
            });
        }
        if let Some(d) = self.on_boot {
            parts.push(format!("{}s after boot", d.as_secs_f64()));
        }
        if let Some(d) = self.on_active {
            parts.push(format!("every {}s", d.as_secs_f64()));
        }
        if self.persistent {
            parts.push("persistent".to_string());
        }
        parts.join(", ")
    }

    /// The earliest elapse of any of its calendar expressions strictly
    /// after `after_unix_ms` (Unix milliseconds), in its zone.
    pub fn next_calendar(&self, after_unix_ms: i64) -> Option<i64> {
        let tz = zone(&self.time_zone)?;
        self.calendar
            .iter()
            .filter_map(|c| next_elapse(&parse_cron(c).ok()?, &tz, after_unix_ms))
            .min()
    }
}

pub(super) fn timer(cx: &mut Ctx<'_>, v: &Values<'_>) -> Option<TimerSpec> {
    let written = schema::keys_of(schema::Section::Timer).any(|k| v.entries.contains_key(k.name));
    if !written {
        return None;
    }
    let time_zone = match v.string("TimeZone") {
        Some(tz) => {
            if zone(tz.get_ref()).is_none() {
                cx.at(
                    tz.span(),
                    format!(
                        "`TimeZone` \"{}\" is not a zone of this system; expected \"local\", \"UTC\" or an Area/City like \"Europe/Paris\"",
                        esc(tz.get_ref())
                    ),
                    None,
                );
            }
            tz.into_inner()
        }
        None => schema::default_str("TimeZone").to_string(),
    };
    // One expression, or a list of them (systemd takes several OnCalendar).
    let mut calendar = Vec::new();
    let written: Vec<(String, std::ops::Range<usize>)> = match v.get("OnCalendar") {
        Some(c) => match c.get_ref().as_array() {
            Some(items) => items
                .iter()
                .filter_map(|i| Some((i.get_ref().as_str()?.to_string(), i.span())))
                .collect(),
            None => v
                .string("OnCalendar")
                .map(|c| (c.get_ref().clone(), c.span()))
                .into_iter()
                .collect(),
        },
        None => Vec::new(),
    };
    if written.is_empty() && v.get("OnCalendar").is_some() {
        let span = v.get("OnCalendar").map(|s| s.span()).unwrap_or(0..0);
        cx.at(
            span,
            "`OnCalendar` is an empty list; expected one cron expression or more".to_string(),
            Some("write a string (\"30 2 * * *\") or a list ([\"0 2 * * *\", \"0 14 * * 6\"]), or leave the key out".to_string()),
        );
    }
    for (text, span) in written {
        match parse_cron(&text) {
            // croner searches up to the year 5000 for a date that matches (a
            // fraction of a second, each time the daemon would arm it): once
            // here instead, and such a unit is an error.
            Ok(cron) if !elapses(&cron, &time_zone) => cx.at(
                span,
                format!("`OnCalendar` \"{}\" never elapses: no date matches it", esc(&text)),
                Some("check the day of month, month and day of week fields (\"0 0 31 2 *\" is no date)".to_string()),
            ),
            Ok(_) => calendar.push(text),
            Err(why) => cx.at(
                span,
                format!("`OnCalendar` \"{}\" is not a cron expression: {why}", esc(&text)),
                Some("write 5 fields (\"30 2 * * *\"), 6 with seconds first (\"*/5 * * * * *\"), or @hourly, @daily, @weekly, @monthly, @yearly".to_string()),
            ),
        }
    }
    let persistent = v.get("Persistent").and_then(|b| b.get_ref().as_bool()) == Some(true);
    if persistent && v.get("OnCalendar").is_none() {
        let span = v.get("Persistent").map(|s| s.span()).unwrap_or(0..0);
        cx.at(
            span,
            "`Persistent` catches up missed OnCalendar elapses, and this [timer] has no OnCalendar"
                .to_string(),
            Some("add an OnCalendar, or drop Persistent".to_string()),
        );
    }
    let some_secs =
        |cx: &mut Ctx<'_>, key: &str| v.get(key).map(|_| secs(cx, v, key, Some(Duration::ZERO)));
    let on_boot = some_secs(cx, "OnBootSec");
    let on_active = some_secs(cx, "OnUnitActiveSec");
    if let Some(d) = on_active.filter(|d| d.is_zero()) {
        let span = v.get("OnUnitActiveSec").map(|s| s.span()).unwrap_or(0..0);
        cx.at(
            span,
            format!(
                "`OnUnitActiveSec` is {}s; expected more than 0",
                d.as_secs_f64()
            ),
            None,
        );
    }
    let overlap_restart = choice(cx, v, "Overlap", &[("skip", false), ("restart", true)]);
    let randomized_delay = some_secs(cx, "RandomizedDelaySec").filter(|d| !d.is_zero());
    Some(TimerSpec {
        randomized_delay,
        persistent,
        calendar,
        time_zone,
        on_boot,
        on_active,
        overlap_restart,
    })
}

/// A cron expression: seconds optional (6 fields = seconds first), no
/// year. A day of month and a day of week both given match as cron
/// (Vixie, cronie) matches them: either day when both are restricted, both
/// when one of them starts with `*` (`0 0 */10 * 1`: a Monday that is the
/// 1st, 11th, 21st or 31st).
pub fn parse_cron(text: &str) -> Result<Cron, String> {
    let fields: Vec<&str> = text.split_whitespace().collect();
    let days = match fields.len() {
        5 => Some((fields[2], fields[4])),
        6 => Some((fields[3], fields[5])),
        _ => None,
    };
    let and = days.is_some_and(|(dom, dow)| dom.starts_with('*') || dow.starts_with('*'));
    CronParser::builder()
        .seconds(Seconds::Optional)
        .year(Year::Disallowed)
        .dom_and_dow(and)
        .build()
        .parse(text.trim())
        .map_err(|e| e.to_string())
}

/// Whether `cron` matches any time after 2000-01-01 in `zone` (UTC when
/// the zone is unknown, which is an error of its own).
fn elapses(cron: &Cron, zone_name: &str) -> bool {
    const Y2K_MS: i64 = 946_684_800_000;
    next_elapse(cron, &zone(zone_name).unwrap_or(TimeZone::UTC), Y2K_MS).is_some()
}

/// `local`, `UTC` or an IANA name, from the system's zone files.
pub fn zone(name: &str) -> Option<TimeZone> {
    match name {
        "local" => Some(TimeZone::try_system().unwrap_or(TimeZone::UTC)),
        "UTC" | "utc" => Some(TimeZone::UTC),
        other => TimeZone::get(other).ok(),
    }
}

/// The first elapse of `cron` strictly after `after_unix_ms` in `tz`, as
/// Unix milliseconds.
pub fn next_elapse(cron: &Cron, tz: &TimeZone, after_unix_ms: i64) -> Option<i64> {
    let secs = after_unix_ms.div_euclid(1000);
    // Within the years jiff (and croner's search) covers, -9999 to 9999.
    Timestamp::from_second(secs).ok()?;
    let now = InZone { secs, tz };
    let next = cron.find_next_occurrence(&now, false).ok()?;
    next.secs.checked_mul(1000)
}

/// The offset (seconds east of UTC) of `tz` at Unix second `secs`.
pub fn offset_at(tz: &TimeZone, secs: i64) -> i64 {
    Timestamp::from_second(secs).map_or(0, |ts| i64::from(tz.to_offset(ts).seconds()))
}

/// An instant (Unix seconds) in a zone, as croner searches over it: the
/// zone's offsets are jiff's, the calendar arithmetic is `crate::utc`'s.
/// (Not jiff's `Zoned`, whose arithmetic carries an `expect` that links
/// jiff's whole error printer, ~16 KiB, into the static binary.)
#[derive(Clone)]
struct InZone<'a> {
    secs: i64,
    tz: &'a TimeZone,
}

impl InZone<'_> {
    /// Seconds since 1970-01-01 on the zone's wall clock.
    fn local(&self) -> i64 {
        self.secs.saturating_add(offset_at(self.tz, self.secs))
    }
}

impl croner::CronDateTime for InZone<'_> {
    fn to_civil(&self) -> croner::CivilDateTime {
        let local = self.local();
        let (y, m, d) = crate::utc::civil_from_days(local.div_euclid(86_400));
        let s = local.rem_euclid(86_400);
        croner::CivilDateTime::new(
            croner::CivilDate::from_parts_unchecked(y as i32, m as u32, d as u32),
            croner::CivilTime::from_parts_unchecked(
                (s / 3600) as u32,
                (s / 60 % 60) as u32,
                (s % 60) as u32,
            ),
        )
    }

    fn civil_weekday(&self) -> croner::Weekday {
        // 1970-01-01 was a Thursday: 4 days from Sunday.
        let days = self.local().div_euclid(86_400);
        croner::Weekday::from_days_from_sunday((days + 4).rem_euclid(7) as u32)
    }

    fn resolve_civil(
        &self,
        civil: croner::CivilDateTime,
    ) -> Result<croner::Resolution<Self>, croner::errors::CronError> {
        use croner::errors::CronError;
        use jiff::tz::AmbiguousOffset;
        let year = i16::try_from(civil.year()).map_err(|_| CronError::InvalidDate)?;
        let (mo, d, h, mi, s) = (
            civil.month(),
            civil.day(),
            civil.hour(),
            civil.minute(),
            civil.second(),
        );
        let dt = jiff::civil::DateTime::new(year, mo as i8, d as i8, h as i8, mi as i8, s as i8, 0)
            .map_err(|_| CronError::InvalidDate)?;
        let local = crate::utc::days_from_civil(i64::from(year), i64::from(mo), i64::from(d))
            * 86_400
            + i64::from(h * 3600 + mi * 60 + s);
        let at = |offset: jiff::tz::Offset| InZone {
            secs: local - i64::from(offset.seconds()),
            tz: self.tz,
        };
        Ok(match self.tz.to_ambiguous_timestamp(dt).offset() {
            AmbiguousOffset::Unambiguous { offset } => croner::Resolution::Single(at(offset)),
            // The clock went back: the earlier instant is on the offset before.
            AmbiguousOffset::Fold { before, after } => {
                croner::Resolution::Ambiguous(at(before), at(after))
            }
            AmbiguousOffset::Gap { .. } => croner::Resolution::Gap,
        })
    }

    fn checked_add_seconds(&self, seconds: i64) -> Option<Self> {
        Some(InZone {
            secs: self.secs.checked_add(seconds)?,
            tz: self.tz,
        })
    }

    fn cmp_instant(&self, other: &Self) -> std::cmp::Ordering {
        self.secs.cmp(&other.secs)
    }
}

impl FromStr for TimerSpec {
    type Err = String;
    /// A bare calendar expression (for tests and `verify`).
    fn from_str(s: &str) -> Result<Self, String> {
        parse_cron(s)?;
        Ok(TimerSpec {
            calendar: vec![s.to_string()],
            time_zone: "UTC".to_string(),
            on_boot: None,
            on_active: None,
            overlap_restart: false,
            randomized_delay: None,
            persistent: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_search_in_a_zone_agrees_with_croners_over_jiffs_zoned() {
        // `InZone` (offsets from jiff, arithmetic ours) against croner's own search over
        // jiff's `Zoned`, from every 37 minutes across both 2026 DST changes of four zones
        // (Lord Howe moves by 30 minutes), for expressions that land in gaps and folds.
        let exprs = [
            "30 2 * * *",
            "0 * * * *",
            "*/20 1-3 * * *",
            "15 2 * * 0",
            "0 0 29 2 *",
            "45 1 * 3,10,11 *",
        ];
        let zones = [
            "Europe/Paris",
            "America/New_York",
            "Australia/Lord_Howe",
            "UTC",
        ];
        for name in zones {
            let tz = zone(name).expect("zone");
            for expr in exprs {
                let cron = parse_cron(expr).expect("cron");
                for window in [
                    "2026-03-07T00:00:00Z",
                    "2026-03-27T00:00:00Z",
                    "2026-04-03T00:00:00Z",
                    "2026-10-23T00:00:00Z",
                    "2026-10-30T00:00:00Z",
                ] {
                    let mut at = ms(window) + 1234;
                    for _ in 0..250 {
                        let zoned = Timestamp::from_millisecond(at)
                            .expect("ts")
                            .to_zoned(tz.clone());
                        let want = cron
                            .find_next_occurrence(&zoned, false)
                            .ok()
                            .map(|z| z.timestamp().as_millisecond());
                        assert_eq!(
                            next_elapse(&cron, &tz, at),
                            want,
                            "{expr} in {name} after {at}"
                        );
                        at += 37 * 60 * 1000 + 1234;
                    }
                }
            }
        }
    }

    fn ms(text: &str) -> i64 {
        text.parse::<Timestamp>()
            .expect("a timestamp")
            .as_millisecond()
    }

    fn at(cron: &str, tz: &str, after: &str) -> String {
        let c = parse_cron(cron).expect("cron");
        let tz = zone(tz).expect("zone");
        let next = next_elapse(&c, &tz, ms(after)).expect("an elapse");
        Timestamp::from_millisecond(next).expect("ts").to_string()
    }

    #[test]
    fn five_and_six_field_expressions_and_nicknames() {
        // 5 fields are minutes; 6 have seconds first; @daily is midnight.
        assert_eq!(
            at("30 2 * * *", "UTC", "2026-11-29T06:00:00Z"),
            "2026-11-30T02:30:00Z"
        );
        assert_eq!(
            at("*/5 * * * * *", "UTC", "2026-11-29T06:00:01Z"),
            "2026-11-29T06:00:05Z"
        );
        assert_eq!(
            at("@daily", "UTC", "2026-11-29T06:00:00Z"),
            "2026-11-30T00:00:00Z"
        );
        assert!(parse_cron("61 * * * *").is_err());
        assert!(parse_cron("every day").is_err());
        // No seventh (year) field.
        assert!(parse_cron("* * * * * * *").is_err());
    }

    #[test]
    fn day_of_month_and_day_of_week_match_as_cron_matches_them() {
        // Both restricted: either (the 1st or a Monday). One starting with `*`: both (a Monday that is a 1st, 11th, 21st or 31st: 2026-12-21), as Vixie cron and cronie do.
        assert_eq!(
            at("0 0 1 * 1", "UTC", "2026-11-29T06:00:00Z"),
            "2026-11-30T00:00:00Z"
        );
        assert_eq!(
            at("0 0 */10 * 1", "UTC", "2026-11-29T06:00:00Z"),
            "2026-12-21T00:00:00Z"
        );
    }

    #[test]
    fn a_zone_moves_the_elapse_and_dst_is_followed() {
        // 02:30 in Paris is 01:30Z in winter and 00:30Z in summer; the day of
        // the spring change has no 02:30, so the next one is the day after.
        assert_eq!(
            at("30 2 * * *", "Europe/Paris", "2026-11-29T06:00:00Z"),
            "2026-11-30T01:30:00Z"
        );
        assert_eq!(
            at("30 2 * * *", "Europe/Paris", "2026-06-01T06:00:00Z"),
            "2026-06-02T00:30:00Z"
        );
        let spring = at("30 2 * * *", "Europe/Paris", "2026-03-28T12:00:00Z");
        assert!(
            spring == "2026-03-29T01:00:00Z" || spring == "2026-03-30T00:30:00Z",
            "{spring}"
        );
    }

    #[test]
    fn an_expression_no_date_matches_is_a_load_error() {
        // Found by the cron fuzz target: "0 * * * L" parsed, and every search for its next
        // elapse walked to the year 5000 (0.2 s of the daemon's one thread, 26 s under ASan).
        for expr in ["0 * * * L", "0 0 31 2 *"] {
            let text =
                format!("[service]\nExecStart = \"true\"\n[timer]\nOnCalendar = \"{expr}\"\n");
            let dir = std::path::Path::new("/srv");
            let errors = crate::unit::parse("t", &dir.join("t.service"), &text, dir)
                .expect_err("a load error");
            assert!(
                errors[0].message.contains("never elapses"),
                "{expr}: {}",
                errors[0].message
            );
        }
        // A rare one is fine: 29 February.
        assert_eq!(
            at("0 0 29 2 *", "UTC", "2026-11-29T06:00:00Z"),
            "2028-02-29T00:00:00Z"
        );
    }

    #[test]
    fn a_clock_jump_forward_gives_the_elapse_after_the_new_time() {
        // Computed from the wall time passed in: after a jump from 1970 the next elapse is after the new time, not decades of missed ones.
        assert_eq!(
            at("0 * * * *", "UTC", "1970-01-01T00:00:10Z"),
            "1970-01-01T01:00:00Z"
        );
        assert_eq!(
            at("0 * * * *", "UTC", "2026-11-29T06:10:00Z"),
            "2026-11-29T07:00:00Z"
        );
    }

    fn load(timer: &str) -> Result<TimerSpec, Vec<String>> {
        let text = format!("[service]\nExecStart = \"job\"\n[timer]\n{timer}\n");
        let dir = std::path::Path::new("/srv/units");
        match crate::unit::parse("job", &dir.join("job.service"), &text, dir) {
            Ok(u) => Ok(*u.timer.expect("a [timer]")),
            Err(errors) => Err(errors
                .iter()
                .map(|e| format!("{:?}: {}", e.pos, e.message))
                .collect()),
        }
    }

    #[test]
    fn on_calendar_takes_a_list_and_the_earliest_elapse_counts() {
        // A TOML array of expressions: the next elapse is the earliest of them; one string still works.
        let t = load("OnCalendar = [\"0 2 * * *\", \"30 1 * * *\"]\nTimeZone = \"UTC\"").unwrap();
        assert_eq!(t.calendar, ["0 2 * * *", "30 1 * * *"]);
        let next = |after: &str| {
            Timestamp::from_millisecond(t.next_calendar(ms(after)).expect("an elapse"))
                .expect("ts")
                .to_string()
        };
        assert_eq!(next("2026-11-29T00:00:00Z"), "2026-11-29T01:30:00Z");
        assert_eq!(next("2026-11-29T01:30:00Z"), "2026-11-29T02:00:00Z");
        assert_eq!(next("2026-11-29T02:00:00Z"), "2026-11-30T01:30:00Z");
        assert_eq!(t.describe(), "0 2 * * *; 30 1 * * * (UTC)");
        let one = load("OnCalendar = \"@daily\"").unwrap();
        assert_eq!(one.calendar, ["@daily"]);
    }

    #[test]
    fn a_bad_expression_in_the_list_is_placed_at_it() {
        // The error points at the element (line 4, its column), not the key; an empty list is an error too.
        let errors = load("OnCalendar = [\"@daily\", \"61 * * * *\"]").unwrap_err();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0].starts_with("Some((4, 25))") && errors[0].contains("61 * * * *"),
            "{errors:?}"
        );
        let errors = load("OnCalendar = []").unwrap_err();
        assert!(errors[0].contains("empty list"), "{errors:?}");
    }

    #[test]
    fn persistent_needs_on_calendar() {
        // Persistent catches up calendar elapses: with OnCalendar it is kept, without it is a load error.
        let t = load("OnCalendar = \"@daily\"\nPersistent = true").unwrap();
        assert!(t.persistent);
        assert_eq!(t.describe(), "@daily, persistent");
        assert!(!load("OnCalendar = \"@daily\"").unwrap().persistent);
        let errors = load("OnUnitActiveSec = 5\nPersistent = true").unwrap_err();
        assert!(errors[0].contains("has no OnCalendar"), "{errors:?}");
    }
}
