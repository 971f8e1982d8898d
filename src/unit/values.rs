//! The value syntaxes of unit files: time spans, counts, choices, signal
//! names, socket addresses, HTTP targets, command lines and their
//! variables, paths, environment entries and unit names ([`super::build`]
//! turns a whole unit's values into a [`super::Unit`] with these).

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use nix::sys::signal::Signal;
use toml::Spanned;

use super::build::{Number, SignalValue};
use super::diag::{esc, line_col, suggest, Ctx};
use super::schema::{self, Kind, SIGNAL_EXPECTED};
use super::shape::Values;
use super::{UnitError, MAX_SECS};

/// `IP:PORT` or `localhost:PORT` (no name lookup: the loop must not block).
pub(super) fn parse_socket_addr(text: &str) -> Result<std::net::SocketAddr, String> {
    if let Ok(addr) = text.parse::<std::net::SocketAddr>() {
        if addr.port() == 0 {
            return Err("port 0 cannot be probed; expected a port from 1 to 65535".to_string());
        }
        return Ok(addr);
    }
    let Some((host, port)) = text.rsplit_once(':') else {
        return Err("no port; expected IP:PORT".to_string());
    };
    let port: u16 = match port.parse() {
        Ok(p) if p > 0 => p,
        _ => {
            return Err(format!(
                "port `{}` is not a number from 1 to 65535",
                esc(port)
            ))
        }
    };
    if host == "localhost" {
        return Ok(std::net::SocketAddr::from(([127, 0, 0, 1], port)));
    }
    if host.parse::<std::net::IpAddr>().is_ok() {
        return Err("an IPv6 address needs brackets, like [::1]:8080".to_string());
    }
    Err(format!(
        "`{}` is a host name; the probe takes an IP literal or localhost (no name lookup in the loop)",
        esc(host)
    ))
}

/// `http://HOST:PORT/PATH` to (address, Host header, path).
pub(super) fn parse_http_target(
    url: &str,
) -> Result<(std::net::SocketAddr, String, String), String> {
    let Some(rest) = url.strip_prefix("http://") else {
        return Err(if url.starts_with("https://") {
            "no TLS in the loop; use Exec = \"curl -fsS https://...\"".to_string()
        } else {
            "expected a URL starting with http://".to_string()
        });
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if path.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("the path contains spaces or control characters".to_string());
    }
    let with_port = if authority.ends_with(']') || !authority.contains(':') {
        format!("{authority}:80")
    } else {
        authority.to_string()
    };
    let addr = parse_socket_addr(&with_port)?;
    Ok((addr, authority.to_string(), path.to_string()))
}

/// `"200"` or `"200-399"`.
pub(super) fn parse_status_range(text: &str) -> Option<(u16, u16)> {
    let (lo, hi) = text.split_once('-').unwrap_or((text, text));
    let lo: u16 = lo.trim().parse().ok()?;
    let hi: u16 = hi.trim().parse().ok()?;
    // The status codes HTTP defines: 100 to 599.
    ((100..=599).contains(&lo) && (lo..=599).contains(&hi)).then_some((lo, hi))
}

/// A `*Sec` value: finite, 0 ..= MAX_SECS seconds, as a number or a systemd
/// time span string; `"infinity"` means what the key's row says, if anything.
/// Absent or bad, it is `default`, else the table's default. Never panics.
pub(super) fn secs(
    cx: &mut Ctx<'_>,
    v: &Values<'_>,
    key: &str,
    default: Option<Duration>,
) -> Duration {
    let default = default.unwrap_or_else(|| schema::default_secs(key));
    let Some(value) = v.number(key) else {
        return default;
    };
    let infinity = match schema::find(key).map(|k| k.kind) {
        Some(Kind::Secs(infinity)) => infinity.duration(),
        _ => None,
    };
    let from_f64 = |f: f64| {
        // `f` may be -0.0 here, which is zero seconds.
        (f.is_finite() && f >= 0.0 && f <= MAX_SECS as f64)
            .then(|| Duration::try_from_secs_f64(f.max(0.0)).ok())
            .flatten()
    };
    let parsed = match value.get_ref() {
        Number::Int(n) if (0..=MAX_SECS).contains(n) => {
            u64::try_from(*n).ok().map(Duration::from_secs)
        }
        Number::Int(_) => None,
        Number::Float(f) => from_f64(*f),
        Number::Text(text) if text.trim() == "infinity" => match infinity {
            Some(d) => Some(d),
            None => {
                cx.at(
                    value.span(),
                    format!("`{key}` cannot be \"infinity\"; expected a time span like \"5s\""),
                    None,
                );
                return default;
            }
        },
        Number::Text(text) => match parse_time_span(text) {
            Ok(f) => from_f64(f),
            Err(why) => {
                cx.at(
                    value.span(),
                    format!("`{key}` is \"{}\": {why}", esc(text)),
                    Some(TIME_SPAN_HINT.to_string()),
                );
                return default;
            }
        },
    };
    parsed.unwrap_or_else(|| {
        // Show the literal as written: `1e300` rather than 301 digits.
        let shown = match value.get_ref() {
            Number::Int(n) => cx.literal(value.span(), n),
            Number::Float(f) => cx.literal(value.span(), f),
            Number::Text(t) => format!("\"{}\"", esc(t)),
        };
        cx.at(
            value.span(),
            format!(
                "`{key}` is {shown}; expected {}",
                Kind::Secs(schema::Infinity::Refused).range()
            ),
            None,
        );
        default
    })
}

pub(super) const TIME_SPAN_HINT: &str =
    "write seconds as a number (5, 0.5) or a span like \"500ms\", \"5s\", \"1min 30s\", \"2h\"";

/// Units of a systemd time span, in seconds. `m` is minutes and `M` months,
/// as in systemd.time(7).
pub(super) const TIME_UNITS: &[(&[&str], f64)] = &[
    (&["ns", "nsec"], 1e-9),
    (&["us", "usec", "µs", "μs"], 1e-6),
    (&["ms", "msec"], 1e-3),
    (&["s", "sec", "second", "seconds"], 1.0),
    (&["m", "min", "minute", "minutes"], 60.0),
    (&["h", "hr", "hour", "hours"], 3600.0),
    (&["d", "day", "days"], 86_400.0),
    (&["w", "week", "weeks"], 604_800.0),
    (&["M", "month", "months"], 2_629_800.0),
    (&["y", "year", "years"], 31_557_600.0),
];

/// Parses a systemd time span (`"5s"`, `"1min 30s"`, `"500ms"`, `"1.5h"`,
/// a bare `"5"` is seconds) into seconds. Pure; `"infinity"` is the caller's.
pub fn parse_time_span(text: &str) -> Result<f64, String> {
    let mut rest = text.trim_start();
    if rest.is_empty() {
        return Err("empty; expected a time span".to_string());
    }
    let mut total = 0.0f64;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, after) = rest.split_at(digits);
        let n: f64 = match number.parse() {
            Ok(n) if !number.is_empty() && !number.starts_with('.') => n,
            _ => {
                let what = if rest.starts_with('-') {
                    "a negative time span".to_string()
                } else {
                    format!("expected a number at `{}`", esc(rest))
                };
                return Err(what);
            }
        };
        let after = after.trim_start();
        let unit_len = after
            .find(|c: char| !c.is_alphabetic())
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        let scale = if unit.is_empty() {
            1.0
        } else {
            match TIME_UNITS.iter().find(|(names, _)| names.contains(&unit)) {
                Some(&(_, scale)) => scale,
                None => {
                    let names: Vec<&str> = TIME_UNITS
                        .iter()
                        .flat_map(|(names, _)| names.iter().copied())
                        .collect();
                    let hint = suggest(unit, &names)
                        .map(|s| format!(" (did you mean `{s}`?)"))
                        .unwrap_or_default();
                    return Err(format!(
                        "unknown time unit `{}`; expected ms, s, min, h, d, ...{hint}",
                        esc(unit)
                    ));
                }
            }
        };
        total += n * scale;
        rest = after.trim_start();
    }
    Ok(total)
}

/// An integer count in 0 ..= the key's maximum; absent or bad, the table's default.
pub(super) fn count(cx: &mut Ctx<'_>, v: &Values<'_>, key: &str) -> i64 {
    let default = schema::default_count(key);
    let Some(value) = v.int(key) else {
        return default;
    };
    let max = match schema::find(key).map(|k| k.kind) {
        Some(Kind::Count(max)) => max,
        _ => i64::MAX,
    };
    let n = *value.get_ref();
    if (0..=max).contains(&n) {
        n
    } else {
        let shown = cx.literal(value.span(), n);
        cx.at(
            value.span(),
            format!("`{key}` is {shown}; expected {}", Kind::Count(max).range()),
            None,
        );
        default
    }
}

/// A strict lowercase choice such as Type or Restart; absent or bad, the
/// option the table names as the default.
pub(super) fn choice<T: Copy>(
    cx: &mut Ctx<'_>,
    v: &Values<'_>,
    key: &str,
    options: &[(&str, T)],
) -> T {
    let default_name = schema::default_str(key);
    let default = options
        .iter()
        .find(|(name, _)| *name == default_name)
        .or(options.first())
        .map(|&(_, v)| v);
    let Some(default) = default else {
        // Not reachable: every choice has options.
        unreachable!("{key} has no options")
    };
    let Some(value) = v.string(key) else {
        return default;
    };
    let text = value.get_ref().as_str();
    if let Some(&(_, v)) = options.iter().find(|(name, _)| *name == text) {
        return v;
    }
    let names: Vec<&str> = options.iter().map(|(name, _)| *name).collect();
    cx.at(
        value.span(),
        format!(
            "unknown {key} `{}`; expected one of: {}",
            esc(text),
            names.join(", ")
        ),
        suggest(text, &names).map(|s| format!("did you mean `{s}`?")),
    );
    default
}

/// ExecStart / ExecStop: split like a shell, but no shell is run; then
/// variables are expanded from `env` (see [`expand_vars`]). A variable that
/// `env` does not set is a warning in `warnings`.
pub(super) fn command(
    cx: &mut Ctx<'_>,
    key: &str,
    value: &Spanned<String>,
    env: &[(String, String)],
    warnings: &mut Vec<UnitError>,
) -> Option<Vec<String>> {
    let argv = split_command(cx, key, value)?;
    let mut unset = Vec::new();
    let argv = expand_vars(&argv, env, &mut unset);
    for name in unset {
        warnings.push(UnitError {
            path: cx.path.to_path_buf(),
            pos: Some(line_col(cx.text, value.span().start)),
            message: format!(
                "`{key}` uses ${name}, which Environment does not set; it expands to nothing"
            ),
            hint: Some(format!(
                "add \"{name}=...\" to Environment, or write $$ for a literal $"
            )),
        });
    }
    if argv.first().is_none_or(String::is_empty) {
        cx.at(
            value.span(),
            format!("`{key}` has no program once its variables are expanded"),
            Some("set the variable in Environment, or name the program directly".to_string()),
        );
        return None;
    }
    Some(argv)
}

/// Expands variables in ExecStart/ExecStop words as systemd does: a word
/// that is exactly `$NAME` becomes the value split on whitespace (zero or
/// more words), `${NAME}` anywhere in a word becomes the value inside that
/// one word, and `$$` is a literal `$`. Anything else (`$NAME` inside a word,
/// `$(`, `$1`) stays as written, so a `sh -c` script keeps its own `$X`.
/// The program (the first word) is never split.
/// Only the unit's own Environment is consulted, never the daemon's
/// environment, so a unit expands the same whoever started the daemon; an
/// unset variable expands to nothing (its name is pushed to `unset`).
pub fn expand_vars(
    argv: &[String],
    env: &[(String, String)],
    unset: &mut Vec<String>,
) -> Vec<String> {
    let mut lookup = |name: &str| {
        let found = env
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone());
        if found.is_none() && !unset.iter().any(|u| u == name) {
            unset.push(name.to_string());
        }
        found.unwrap_or_default()
    };
    let mut out = Vec::with_capacity(argv.len());
    for (i, word) in argv.iter().enumerate() {
        if let Some(name) = word.strip_prefix('$').filter(|n| is_var_name(n)) {
            if i == 0 {
                // The program stays one word: splitting it would run one of
                // its arguments instead.
                out.push(lookup(name));
            } else {
                out.extend(lookup(name).split_whitespace().map(str::to_string));
            }
            continue;
        }
        let mut expanded = String::with_capacity(word.len());
        let mut rest = word.as_str();
        while let Some(at) = rest.find('$') {
            expanded.push_str(&rest[..at]);
            let after = &rest[at + 1..];
            if let Some(after) = after.strip_prefix('$') {
                expanded.push('$');
                rest = after;
            } else if let Some((name, after)) = after
                .strip_prefix('{')
                .and_then(|a| a.split_once('}'))
                .filter(|(name, _)| is_var_name(name))
            {
                expanded.push_str(&lookup(name));
                rest = after;
            } else {
                expanded.push('$');
                rest = after;
            }
        }
        expanded.push_str(rest);
        out.push(expanded);
    }
    out
}

/// A variable name: a letter or `_`, then letters, digits and `_`.
pub(super) fn is_var_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

pub(super) fn split_command(
    cx: &mut Ctx<'_>,
    key: &str,
    value: &Spanned<String>,
) -> Option<Vec<String>> {
    match shell_words::split(value.get_ref()) {
        Err(err) => {
            cx.at(
                value.span(),
                format!("`{key}` cannot be split into arguments: {err}"),
                Some("balance the quotes; escape a literal quote with \\".to_string()),
            );
            None
        }
        Ok(argv) if argv.is_empty() => {
            cx.at(
                value.span(),
                format!("`{key}` is empty; expected a command like \"worker --id 1\""),
                None,
            );
            None
        }
        Ok(argv) if argv.iter().any(|a| a.contains('\0')) => {
            cx.at(
                value.span(),
                format!("`{key}` contains a NUL character"),
                None,
            );
            None
        }
        Ok(argv) => Some(argv),
    }
}

pub(super) fn kill_signal(cx: &mut Ctx<'_>, value: &Spanned<SignalValue>) -> Option<Signal> {
    signal_value(cx, "KillSignal", value)
}

/// A signal key's value (KillSignal, WatchdogSignal).
pub(super) fn signal_value(
    cx: &mut Ctx<'_>,
    key: &str,
    value: &Spanned<SignalValue>,
) -> Option<Signal> {
    let (found, shown) = match value.get_ref() {
        SignalValue::Number(n) => (
            i32::try_from(*n)
                .ok()
                .and_then(|n| Signal::try_from(n).ok()),
            n.to_string(),
        ),
        SignalValue::Name(name) => (parse_signal_name(name), format!("\"{}\"", esc(name))),
    };
    if found.is_none() {
        let names: Vec<&str> = Signal::iterator().map(Signal::as_str).collect();
        let hint = match value.get_ref() {
            SignalValue::Name(name) => {
                let full = if name.to_ascii_uppercase().starts_with("SIG") {
                    name.clone()
                } else {
                    format!("SIG{name}")
                };
                suggest(&full, &names).map(|s| format!("did you mean `{s}`?"))
            }
            SignalValue::Number(_) => None,
        };
        cx.at(
            value.span(),
            format!("unknown {key} {shown}; expected {SIGNAL_EXPECTED}"),
            hint,
        );
    }
    found
}

/// "SIGTERM", "TERM", "sigterm" or "15".
pub(crate) fn parse_signal_name(name: &str) -> Option<Signal> {
    if let Ok(n) = name.parse::<i32>() {
        return Signal::try_from(n).ok();
    }
    let upper = name.to_ascii_uppercase();
    let full = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    Signal::from_str(&full).ok()
}

pub(super) fn path_value(
    cx: &mut Ctx<'_>,
    key: &str,
    value: Option<&Spanned<String>>,
    base: &Path,
) -> Option<PathBuf> {
    let value = value?;
    let text = value.get_ref();
    if text.is_empty() {
        cx.at(
            value.span(),
            format!("`{key}` is empty; expected a path"),
            None,
        );
        return None;
    }
    if text.contains('\0') {
        cx.at(
            value.span(),
            format!("`{key}` contains a NUL character"),
            None,
        );
        return None;
    }
    Some(base.join(text))
}

pub(super) fn environment(
    cx: &mut Ctx<'_>,
    entries: Option<&[Spanned<String>]>,
) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for entry in entries.unwrap_or_default() {
        let text = entry.get_ref();
        if text.contains('\0') {
            cx.at(
                entry.span(),
                "`Environment` entry contains a NUL character".to_string(),
                None,
            );
            continue;
        }
        match text.split_once('=') {
            Some((key, value)) if !key.is_empty() => out.push((key.to_string(), value.to_string())),
            _ => cx.at(
                entry.span(),
                format!(
                    "`Environment` entry \"{}\" is not KEY=VALUE with a non-empty KEY",
                    esc(text)
                ),
                Some("write entries like \"LOG_LEVEL=info\"".to_string()),
            ),
        }
    }
    out
}

/// Requires / Wants / After: checked names, duplicates dropped, order kept.
pub(super) fn unit_names(
    cx: &mut Ctx<'_>,
    key: &str,
    own: &str,
    names: Option<&[Spanned<String>]>,
) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for item in names.unwrap_or_default() {
        let name = item.get_ref();
        if name.is_empty() {
            cx.at(
                item.span(),
                format!("empty unit name in `{key}`; expected a unit name"),
                None,
            );
        } else if name.contains('/') {
            cx.at(
                item.span(),
                format!(
                    "`{key}` entry `{}` is not a unit name: it contains `/`",
                    esc(name)
                ),
                Some("name a unit by its file name without `.service`".to_string()),
            );
        } else if name == own {
            let what = if key == "Conflicts" {
                "conflict with"
            } else {
                "depend on"
            };
            cx.at(
                item.span(),
                format!("unit `{own}` cannot {what} itself"),
                Some(format!("remove `{own}` from {key}")),
            );
        } else if !out.contains(name) {
            out.push(name.clone());
        }
    }
    out
}
