//! Value checks: from the shape-checked [`Values`] to a [`Unit`], every
//! default taken from the key table and every bad value reported at its
//! place. Also the value syntaxes: time spans, signal names, command lines
//! and their variables.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use nix::sys::signal::Signal;
use toml::de::DeValue;
use toml::Spanned;

use super::diag::{esc, line_col, suggest, Ctx};
use super::schema::{self, Kind, SIGNAL_EXPECTED};
use super::shape::Values;
use super::{
    Health, NotifyAccess, OnUnhealthy, Probe, RestartPolicy, ServiceType, Source, Unit, UnitError,
    MAX_SECS, PLACED_KEYS,
};

/// A duration as written: a TOML integer or float of seconds, or a systemd
/// time span string (`"1min 30s"`), kept apart so range checks can say what
/// was written.
#[derive(Debug, Clone)]
pub(super) enum Number {
    Int(i64),
    Float(f64),
    Text(String),
}

/// KillSignal as written: a name or a number.
#[derive(Debug, Clone)]
pub(super) enum SignalValue {
    Name(String),
    Number(i64),
}

/// Typed reads of accepted values. `check_shape` let through only values
/// of the type their key's row asks for, so a read of another type finds
/// nothing rather than failing.
impl Values<'_> {
    pub(super) fn get(&self, key: &str) -> Option<&Spanned<DeValue<'_>>> {
        self.entries.get(key).copied()
    }

    pub(super) fn string(&self, key: &str) -> Option<Spanned<String>> {
        let v = self.get(key)?;
        Some(Spanned::new(v.span(), v.get_ref().as_str()?.to_string()))
    }

    pub(super) fn strings(&self, key: &str) -> Option<Vec<Spanned<String>>> {
        let items = self.get(key)?.get_ref().as_array()?;
        Some(
            items
                .iter()
                .filter_map(|i| Some(Spanned::new(i.span(), i.get_ref().as_str()?.to_string())))
                .collect(),
        )
    }

    fn int(&self, key: &str) -> Option<Spanned<i64>> {
        let v = self.get(key)?;
        let n = v.get_ref().as_integer()?;
        Some(Spanned::new(
            v.span(),
            i64::from_str_radix(n.as_str(), n.radix()).ok()?,
        ))
    }

    fn number(&self, key: &str) -> Option<Spanned<Number>> {
        let v = self.get(key)?;
        let number = match v.get_ref() {
            DeValue::Integer(n) => Number::Int(i64::from_str_radix(n.as_str(), n.radix()).ok()?),
            // A float Rust cannot read (none, after `number_fits`) is out of range.
            DeValue::Float(f) => Number::Float(f.as_str().parse().unwrap_or(f64::NAN)),
            DeValue::String(s) => Number::Text(s.to_string()),
            _ => return None,
        };
        Some(Spanned::new(v.span(), number))
    }

    fn boolean(&self, key: &str) -> Option<bool> {
        self.get(key)?.get_ref().as_bool()
    }

    fn signal(&self, key: &str) -> Option<Spanned<SignalValue>> {
        let v = self.get(key)?;
        let signal = match v.get_ref() {
            DeValue::Integer(n) => {
                SignalValue::Number(i64::from_str_radix(n.as_str(), n.radix()).unwrap_or(i64::MAX))
            }
            DeValue::String(s) => SignalValue::Name(s.to_string()),
            _ => return None,
        };
        Some(Spanned::new(v.span(), signal))
    }
}

pub(super) fn build(
    cx: &mut Ctx<'_>,
    name: &str,
    path: &Path,
    v: &Values<'_>,
    service_dir: &Path,
) -> Option<Unit> {
    if !v.has_service && !v.service_reported {
        cx.errors.push(UnitError {
            path: cx.path.to_path_buf(),
            pos: None,
            message: "missing [service] section with ExecStart".to_string(),
            hint: Some("add [service] with ExecStart = \"program args\"".to_string()),
        });
    }

    let description = v
        .string("Description")
        .map(Spanned::into_inner)
        .unwrap_or_else(|| schema::default_str("Description").to_string());
    let requires = unit_names(cx, "Requires", name, v.strings("Requires").as_deref());
    let wants = unit_names(cx, "Wants", name, v.strings("Wants").as_deref());
    let after = unit_names(cx, "After", name, v.strings("After").as_deref());
    let conflicts = unit_names(cx, "Conflicts", name, v.strings("Conflicts").as_deref());
    let protected = v
        .boolean("Protected")
        .unwrap_or_else(|| schema::default_bool("Protected"));
    let on_failure = unit_names(cx, "OnFailure", name, v.strings("OnFailure").as_deref());
    let on_restart = unit_names(cx, "OnRestart", name, v.strings("OnRestart").as_deref());
    let hook_rate_limit = secs(cx, v, "HookRateLimitSec", None);
    let start_limit_burst = count(cx, v, "StartLimitBurst");
    let start_limit_interval = secs(cx, v, "StartLimitIntervalSec", None);

    let kind = choice(
        cx,
        v,
        "Type",
        &[
            ("simple", ServiceType::Simple),
            ("oneshot", ServiceType::Oneshot),
            ("forking", ServiceType::Forking),
            ("notify", ServiceType::Notify),
        ],
    );
    let environment = environment(cx, v.strings("Environment").as_deref());
    let mut warnings = Vec::new();
    let exec_start = match v.string("ExecStart") {
        Some(cmd) => command(cx, "ExecStart", &cmd, &environment, &mut warnings),
        None => {
            if v.has_service && !v.has_exec_start {
                let span = v.service_span.clone().unwrap_or(0..0);
                cx.at(
                    span,
                    "missing ExecStart in [service]; expected the command to run".to_string(),
                    Some("add ExecStart = \"program args\"".to_string()),
                );
            }
            None
        }
    };
    let exec_stop = v
        .string("ExecStop")
        .and_then(|cmd| command(cx, "ExecStop", &cmd, &environment, &mut warnings));
    let restart = choice(
        cx,
        v,
        "Restart",
        &[
            ("always", RestartPolicy::Always),
            ("on-failure", RestartPolicy::OnFailure),
            ("no", RestartPolicy::No),
        ],
    );
    let restart_sec = secs(cx, v, "RestartSec", None);
    // A cap below the first delay would make the backoff shrink; it is taken
    // to mean "no backoff" rather than rejected.
    let restart_max_delay = secs(cx, v, "RestartMaxDelaySec", Some(restart_sec)).max(restart_sec);
    let timeout_start = secs(cx, v, "TimeoutStartSec", None);
    let timeout_stop = secs(cx, v, "TimeoutStopSec", None);
    let default_signal =
        parse_signal_name(schema::default_str("KillSignal")).unwrap_or(Signal::SIGTERM);
    let kill_signal = match v.signal("KillSignal") {
        Some(value) => kill_signal(cx, &value).unwrap_or(default_signal),
        None => default_signal,
    };
    let working_directory = path_value(
        cx,
        "WorkingDirectory",
        v.string("WorkingDirectory").as_ref(),
        service_dir,
    )
    .unwrap_or_else(|| service_dir.to_path_buf());
    let user = v.string("User").and_then(|user| {
        let text = user.get_ref();
        if text.is_empty() {
            cx.at(
                user.span(),
                "`User` is empty; expected a user name or id".to_string(),
                None,
            );
            None
        } else if text.contains('\0') {
            cx.at(
                user.span(),
                "`User` contains a NUL character".to_string(),
                None,
            );
            None
        } else {
            Some(text.clone())
        }
    });
    let remain_after_exit = v
        .boolean("RemainAfterExit")
        .unwrap_or_else(|| schema::default_bool("RemainAfterExit"));
    let pid_file = path_value(cx, "PIDFile", v.string("PIDFile").as_ref(), service_dir);
    let log_max_bytes = count(cx, v, "LogMaxBytes");
    let log_max_files = count(cx, v, "LogMaxFiles");
    let limits = super::limits::build(cx, v, service_dir);
    let socket = super::socket::socket(cx, v, name).map(Box::new);
    let timer = super::timer::timer(cx, v).map(Box::new);
    let watch_paths: Vec<PathBuf> = v
        .strings("WatchPaths")
        .unwrap_or_default()
        .iter()
        .filter_map(|p| path_value(cx, "WatchPaths", Some(p), &working_directory))
        .collect();
    let watch_debounce = secs(cx, v, "WatchDebounceSec", None);
    let health = health(cx, v, &environment, &mut warnings);
    let watchdog = secs(cx, v, "WatchdogSec", None);
    let default_wd_signal =
        parse_signal_name(schema::default_str("WatchdogSignal")).unwrap_or(Signal::SIGABRT);
    let watchdog_signal = match v.signal("WatchdogSignal") {
        Some(value) => signal_value(cx, "WatchdogSignal", &value).unwrap_or(default_wd_signal),
        None => default_wd_signal,
    };
    let notify_access = choice(
        cx,
        v,
        "NotifyAccess",
        &[
            ("group", NotifyAccess::Group),
            ("main", NotifyAccess::Main),
            ("none", NotifyAccess::None),
        ],
    );

    let mut source = Source {
        warnings,
        ..Source::default()
    };
    for key in PLACED_KEYS {
        if let Some(value) = v.get(key) {
            source.set_place(key, line_col(cx.text, value.span().start));
        }
    }
    Some(Unit {
        name: name.to_string(),
        path: path.to_path_buf(),
        description,
        requires,
        wants,
        after,
        start_limit_burst: u32::try_from(start_limit_burst).ok()?,
        start_limit_interval,
        kind,
        exec_start: exec_start?,
        exec_stop,
        restart,
        restart_sec,
        restart_max_delay,
        timeout_start,
        timeout_stop,
        kill_signal,
        working_directory,
        environment,
        user,
        remain_after_exit,
        pid_file,
        log_max_bytes: u64::try_from(log_max_bytes).ok()?,
        log_max_files: u32::try_from(log_max_files).ok()?,
        limits: limits.into(),
        socket,
        timer,
        watch_paths,
        watch_debounce,
        source,
        protected,
        conflicts,
        health: health.map(Box::new),
        watchdog,
        watchdog_signal,
        notify_access,
        on_failure,
        on_restart,
        hook_rate_limit,
    })
}

/// `[health]`, if the file has it: exactly one probe kind with a target
/// the loop can use without a name lookup.
fn health(
    cx: &mut Ctx<'_>,
    v: &Values<'_>,
    env: &[(String, String)],
    warnings: &mut Vec<UnitError>,
) -> Option<Health> {
    let span = v.health_span.clone()?;
    let kinds: Vec<Spanned<String>> = ["Http", "Tcp", "Exec"]
        .iter()
        .filter_map(|k| v.string(k))
        .collect();
    let written: Vec<&str> = ["Http", "Tcp", "Exec"]
        .into_iter()
        .filter(|k| v.get(k).is_some())
        .collect();
    if written.len() > 1 {
        let second = ["Http", "Tcp", "Exec"]
            .iter()
            .filter_map(|k| v.get(k))
            .map(|s| s.span())
            .max_by_key(|s| s.start)
            .unwrap_or(span);
        cx.at(
            second,
            format!(
                "[health] has {}; expected exactly one probe kind",
                written.join(" and ")
            ),
            Some("keep one of Http, Tcp, Exec (use Exec = \"sh -c '...'\" to combine)".to_string()),
        );
        return None;
    }
    if written.is_empty() {
        cx.at(
            span,
            "[health] has no probe; expected one of Http, Tcp, Exec".to_string(),
            Some("add Http = \"http://127.0.0.1:8080/healthz\", Tcp = \"127.0.0.1:5432\" or Exec = \"command\"".to_string()),
        );
        return None;
    }
    let probe = if let Some(url) = v.string("Http") {
        match parse_http_target(url.get_ref()) {
            Ok((addr, host, path)) => Probe::Http { addr, host, path },
            Err(why) => {
                cx.at(url.span(), format!("`Http` is \"{}\": {why}", esc(url.get_ref())), Some("write http://IP:PORT/PATH with an IP literal or localhost, like \"http://127.0.0.1:8080/healthz\"".to_string()));
                return None;
            }
        }
    } else if let Some(target) = v.string("Tcp") {
        match parse_socket_addr(target.get_ref()) {
            Ok(addr) => Probe::Tcp(addr),
            Err(why) => {
                cx.at(
                    target.span(),
                    format!("`Tcp` is \"{}\": {why}", esc(target.get_ref())),
                    Some(
                        "write IP:PORT with an IP literal or localhost, like \"127.0.0.1:5432\""
                            .to_string(),
                    ),
                );
                return None;
            }
        }
    } else {
        let cmd = kinds.first()?;
        Probe::Exec(command(cx, "Exec", cmd, env, warnings)?)
    };
    let expect = match v.string("ExpectStatus") {
        Some(text) => match parse_status_range(text.get_ref()) {
            Some(r) => r,
            None => {
                cx.at(text.span(), format!("`ExpectStatus` is \"{}\"; expected a status code like \"200\" or a range like \"200-399\"", esc(text.get_ref())), None);
                (200, 399)
            }
        },
        None => parse_status_range(schema::default_str("ExpectStatus")).unwrap_or((200, 399)),
    };
    let threshold = count(cx, v, "FailureThreshold");
    Some(Health {
        probe,
        interval: secs(cx, v, "IntervalSec", None),
        timeout: secs(cx, v, "TimeoutSec", None),
        start_period: secs(cx, v, "StartPeriodSec", None),
        start_interval: secs(cx, v, "StartIntervalSec", None),
        failure_threshold: u32::try_from(threshold).unwrap_or(3).max(1),
        expect_status: expect,
        on_unhealthy: choice(
            cx,
            v,
            "OnUnhealthy",
            &[
                ("restart", OnUnhealthy::Restart),
                ("stop", OnUnhealthy::Stop),
                ("mark", OnUnhealthy::Mark),
            ],
        ),
        readiness: v
            .boolean("Readiness")
            .unwrap_or_else(|| schema::default_bool("Readiness")),
    })
}

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
    ((100..=999).contains(&lo) && (lo..=999).contains(&hi)).then_some((lo, hi))
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
pub(super) fn parse_signal_name(name: &str) -> Option<Signal> {
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
