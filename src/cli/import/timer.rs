//! systemd `.timer` units -> the `[timer]` of the service they start.
//! Pure: text in, keys out.
//!
//! A systemd timer is a unit of its own that starts another (`Unit=`, else
//! the `.service` of the same name); in diakonos the `[timer]` sits in the
//! service's own file. So a timer is imported together with its service
//! (`import systemd backup.service backup.timer`): its keys join that
//! service's draft. `OnCalendar=` is converted from systemd's calendar
//! syntax (systemd.time(7)) to the cron expression diakonos reads; what
//! does not convert is dropped with why, like any other key.

use super::systemd::parse_ini;
use super::Draft;
use crate::unit::keys::Section;

/// A timer's keys, for the service named `target`.
pub struct Timer {
    pub file_name: String,
    pub target: String,
    pub draft: Draft,
}

/// Reads one `.timer` file: its `[Timer]` keys go to a draft of the
/// `[timer]` section, everything else is reported.
pub fn import(text: &str, file_name: &str, origin: &str) -> Timer {
    let stem = file_name.strip_suffix(".timer").unwrap_or(file_name);
    let mut d = Draft::new(stem, origin);
    let mut target = stem.to_string();
    let (entries, bad) = parse_ini(text);
    for (line, text) in bad {
        d.drop_key(
            &format!("line {line}"),
            format!("not `Key=Value`: `{text}`"),
        );
    }
    let mut calendar: Vec<String> = Vec::new();
    let mut enable = false;
    for e in &entries {
        let (key, value) = (e.key.as_str(), e.value.as_str());
        match (e.section.as_str(), key) {
            ("Timer", "OnCalendar") if value.is_empty() => calendar.clear(),
            ("Timer", "OnCalendar") => match to_cron(value) {
                Ok((cron, zone)) => {
                    calendar.push(cron);
                    if let Some(zone) = zone {
                        d.set(Section::Timer, "TimeZone", toml::Value::String(zone.into()));
                    }
                }
                Err(why) => d.drop_key(&format!("OnCalendar={value}"), why),
            },
            ("Timer", "Unit") => match value.strip_suffix(".service") {
                Some(name) => target = name.to_string(),
                None => d.drop_key(
                    &format!("Unit={value}"),
                    "diakonos timers start services only",
                ),
            },
            ("Timer", "OnBootSec" | "OnStartupSec") => {
                super::systemd::map_known(&mut d, Section::Timer, "OnBootSec", value);
                if key == "OnStartupSec" {
                    d.drop_key(
                        "OnStartupSec",
                        "imported as OnBootSec (after the daemon starts)",
                    );
                }
            }
            ("Timer", "OnUnitActiveSec" | "RandomizedDelaySec" | "Persistent") => {
                super::systemd::map_known(&mut d, Section::Timer, key, value);
            }
            ("Timer", _) => d.drop_key(&format!("{key}={value}"), dropped_why(key)),
            ("Install", _) => enable = true,
            (section, _) => d.drop_key(
                &format!("[{section}] {key}"),
                "the timer's own unit keys; the service keeps its own",
            ),
        }
    }
    match calendar.as_slice() {
        [] => {}
        [one] => d.set(
            Section::Timer,
            "OnCalendar",
            toml::Value::String(one.clone()),
        ),
        many => d.set(
            Section::Timer,
            "OnCalendar",
            toml::Value::Array(many.iter().cloned().map(toml::Value::String).collect()),
        ),
    }
    if enable {
        d.drop_key(
            "[Install]",
            format!(
                "a timer fires while its unit is enabled: run `diakonos enable {target}` to arm it"
            ),
        );
    }
    Timer {
        file_name: file_name.to_string(),
        target,
        draft: d,
    }
}

fn dropped_why(key: &str) -> &'static str {
    match key {
        "AccuracySec" => "diakonos fires at the elapse itself (no window to coalesce wake-ups in)",
        "OnActiveSec" => "diakonos has OnBootSec (after the daemon starts), which is when most timers are activated",
        "OnUnitInactiveSec" => "diakonos counts from the last start (OnUnitActiveSec)",
        _ => "diakonos has no such timer key",
    }
}

/// Adds each timer to the draft of the service it starts. A timer whose
/// service is not among the drafts is an error (its keys would be lost).
pub fn attach(drafts: &mut [Draft], timers: Vec<Timer>) -> Result<(), String> {
    for t in timers {
        let name = super::unit_name(&t.target);
        let Some(service) = drafts.iter_mut().find(|d| d.name == name) else {
            return Err(format!(
                "{} starts {}.service, which is not among the files imported; import both: `diakonos import systemd {}.service {}`",
                t.file_name, t.target, t.target, t.file_name
            ));
        };
        service.origin = format!("{} and {}", service.origin, t.draft.origin);
        service.absorb_timer(t.draft);
    }
    Ok(())
}

const DAYS: [&str; 7] = [
    "sunday",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
];

/// Why a calendar expression was not converted.
const NOT_CONVERTED: &str = "not converted: diakonos converts `[WEEKDAYS] [*-MONTH-DAY] [HOUR:MINUTE[:SECOND]] [ZONE]` with `*`, lists, `..` ranges and `/` repetitions, and the shorthands (daily, weekly ...)";

/// A systemd calendar expression as a cron expression (5 fields, 6 with
/// seconds first when they are not 0), with the time zone it names.
pub fn to_cron(text: &str) -> Result<(String, Option<&str>), &'static str> {
    let mut words: Vec<&str> = text.split_whitespace().collect();
    let zone = match words.last() {
        Some(w)
            if w.eq_ignore_ascii_case("utc")
                || (w.contains('/') && w.starts_with(char::is_uppercase)) =>
        {
            words.pop()
        }
        _ => None,
    };
    let zone = zone.map(|z| {
        if z.eq_ignore_ascii_case("utc") {
            "UTC"
        } else {
            z
        }
    });
    if let [one] = words[..] {
        let full = match one.to_ascii_lowercase().as_str() {
            "minutely" => "*-*-* *:*:00",
            "hourly" => "*-*-* *:00:00",
            "daily" => "*-*-* 00:00:00",
            "weekly" => "mon *-*-* 00:00:00",
            "monthly" => "*-*-01 00:00:00",
            "yearly" | "annually" => "*-01-01 00:00:00",
            "quarterly" => "*-01,04,07,10-01 00:00:00",
            "semiannually" => "*-01,07-01 00:00:00",
            _ => one,
        };
        words = full.split(' ').collect();
    }
    let mut dow = None;
    if words
        .first()
        .is_some_and(|w| w.starts_with(|c: char| c.is_ascii_alphabetic()))
    {
        dow = Some(weekdays(words.remove(0)).ok_or(NOT_CONVERTED)?);
    }
    // [date] [time], each optional, in that order.
    let (date, time) = match words[..] {
        [] => ("*-*", "0:0"),
        [t] if t.contains(':') => ("*-*", t),
        [d] => (d, "0:0"),
        [d, t] => (d, t),
        _ => return Err(NOT_CONVERTED),
    };
    let mut date: Vec<&str> = date.split('-').collect();
    if date.len() == 3 && date.remove(0) != "*" {
        return Err("cron has no year: only `*` years convert");
    }
    let mut time: Vec<&str> = time.split(':').collect();
    if time.len() == 2 {
        time.push("0");
    }
    let ([month, day], [hour, minute, second]) = (&date[..], &time[..]) else {
        return Err(NOT_CONVERTED);
    };
    let day = field(day, 1, 31)?;
    if dow.is_some() && !day.starts_with('*') {
        // systemd wants both; cron runs on either day when both are given.
        return Err("a weekday and a day of the month together: cron would run on either; write two cron expressions by hand");
    }
    let mut cron = String::new();
    let second = field(second, 0, 59)?;
    if second != "0" {
        cron = second + " ";
    }
    for part in [
        field(minute, 0, 59)?,
        field(hour, 0, 23)?,
        day,
        field(month, 1, 12)?,
        dow.unwrap_or_else(|| "*".to_string()),
    ] {
        cron.push_str(&part);
        cron.push(' ');
    }
    cron.pop();
    crate::unit::parse_cron(&cron).map_err(|_| NOT_CONVERTED)?;
    Ok((cron, zone))
}

/// `Mon`, `Mon,Fri`, `Mon..Fri` (full names too) as cron days (0 Sunday).
fn weekdays(text: &str) -> Option<String> {
    let day = |name: &str| {
        let lower = name.to_ascii_lowercase();
        DAYS.iter()
            .position(|d| *d == lower || (lower.len() == 3 && d.starts_with(&lower)))
    };
    let mut days = [false; 7];
    for part in text.split(',') {
        let (from, to) = part.split_once("..").unwrap_or((part, part));
        let (mut at, to) = (day(from)?, day(to)?);
        days[at] = true;
        while at != to {
            at = (at + 1) % 7;
            days[at] = true;
        }
    }
    let list: Vec<String> = (0..7).filter(|&d| days[d]).map(|d| d.to_string()).collect();
    Some(list.join(","))
}

/// One component of a systemd date or time (`*`, `5`, `1,15`, `1..5`,
/// `0/15`, `*/2`) as a cron field; `min`/`max` bound it.
fn field(text: &str, min: u32, max: u32) -> Result<String, &'static str> {
    let number = |s: &str| {
        s.parse::<u32>()
            .ok()
            .filter(|n| (min..=max).contains(n))
            .ok_or(NOT_CONVERTED)
    };
    let mut out = String::new();
    for part in text.split(',') {
        let (range, step) = part.split_once('/').unwrap_or((part, ""));
        if range == "*" {
            out.push('*');
        } else {
            let (a, b) = range.split_once("..").unwrap_or((range, ""));
            out += &number(a)?.to_string();
            // `A/N` is A, A+N, ... to the end.
            match (b, step) {
                ("", "") => {}
                ("", _) => out += &format!("-{max}"),
                (b, _) => out += &format!("-{}", number(b)?),
            }
        }
        if !step.is_empty() {
            out += &format!(
                "/{}",
                number(step).ok().filter(|&n| n > 0).ok_or(NOT_CONVERTED)?
            );
        }
        out.push(',');
    }
    out.pop();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calendar_expressions_convert_to_cron() {
        let cron = |s: &str| to_cron(s).map(|(c, _)| c);
        let cases = [
            ("daily", "0 0 * * *"),
            ("hourly", "0 * * * *"),
            ("minutely", "* * * * *"),
            ("weekly", "0 0 * * 1"),
            ("monthly", "0 0 1 * *"),
            ("yearly", "0 0 1 1 *"),
            ("quarterly", "0 0 1 1,4,7,10 *"),
            ("*-*-* 03:30:00", "30 3 * * *"),
            ("04:15", "15 4 * * *"),
            ("Mon..Fri 09:00", "0 9 * * 1,2,3,4,5"),
            ("Sat,Sunday *-*-* 22:00", "0 22 * * 0,6"),
            ("Fri..Mon 1:00", "0 1 * * 0,1,5,6"),
            ("*:0/15", "0-59/15 * * * *"),
            ("*-*-1..7 12:00", "0 12 1-7 * *"),
            ("Mon *-*-*/2", "0 0 */2 * 1"),
            ("*-02-29 00:00:00", "0 0 29 2 *"),
            ("*-*-* *:*:30", "30 * * * * *"),
        ];
        for (systemd, want) in cases {
            assert_eq!(cron(systemd).as_deref(), Ok(want), "{systemd}");
        }
        assert_eq!(
            to_cron("Mon *-*-* 00:00:00 Europe/Berlin"),
            Ok(("0 0 * * 1".to_string(), Some("Europe/Berlin")))
        );
        assert_eq!(to_cron("daily utc").map(|(_, z)| z), Ok(Some("UTC")));
        for bad in [
            "2027-*-* 00:00",
            "*-*-~1",
            "12:00:00.5",
            "Mon 25:00",
            "Someday",
        ] {
            assert!(cron(bad).is_err(), "{bad} converted: {:?}", cron(bad));
        }
    }

    #[test]
    fn a_timer_joins_its_service_and_says_what_it_dropped() {
        let text =
            "[Unit]\nDescription=Daily backup\n[Timer]\nOnCalendar=daily\nOnCalendar=Sat 12:00\n\
                    Persistent=true\nRandomizedDelaySec=5min\nAccuracySec=1h\nOnBootSec=10min\n\
                    [Install]\nWantedBy=timers.target\n";
        let t = import(text, "backup.timer", "/etc/systemd/system/backup.timer");
        assert_eq!(t.target, "backup");
        let mut drafts = vec![super::super::systemd::import(
            "[Service]\nType=oneshot\nExecStart=/usr/local/bin/backup\n",
            "backup.service",
            "/etc/systemd/system/backup.service",
        )];
        attach(&mut drafts, vec![t]).expect("attached");
        let text = drafts[0].to_toml();
        assert!(
            text.contains("[timer]\nPersistent = true\nRandomizedDelaySec = 300\nOnBootSec = 600\nOnCalendar = [\"0 0 * * *\", \"0 12 * * 6\"]\n"),
            "{text}"
        );
        assert!(text.contains("# dropped AccuracySec=1h:"), "{text}");
        assert!(text.contains("diakonos enable backup"), "{text}");
        let dir = std::path::Path::new("/srv");
        let unit = crate::unit::parse("backup", &dir.join("backup.service"), &text, dir)
            .unwrap_or_else(|e| panic!("{e:?}\n{text}"));
        assert!(unit.timer.is_some());
        // Unit= names the service; without it among the files, nothing is lost silently.
        let other = import(
            "[Timer]\nUnit=db-dump.service\nOnCalendar=hourly\n",
            "dump.timer",
            "t",
        );
        let err = attach(&mut drafts, vec![other]).expect_err("no db-dump draft");
        assert!(
            err.contains("import systemd db-dump.service dump.timer"),
            "{err}"
        );
    }
}
