//! Value checks: from the shape-checked [`Values`] to a [`Unit`], every
//! default taken from the key table and every bad value reported at its
//! place. The value syntaxes themselves (time spans, signal names, command
//! lines and their variables) are in [`super::values`].

use std::path::{Path, PathBuf};

use nix::sys::signal::Signal;
use toml::de::DeValue;
use toml::Spanned;

use super::diag::{esc, line_col, Ctx};
use super::schema;
use super::shape::Values;
use super::values::{
    choice, command, count, environment, kill_signal, parse_http_target, parse_signal_name,
    parse_socket_addr, parse_status_range, path_value, secs, signal_value, unit_names,
};
use super::{
    Health, NotifyAccess, OnUnhealthy, Probe, RestartPolicy, ServiceType, Source, Triggers, Unit,
    UnitError, PLACED_KEYS,
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

    pub(super) fn int(&self, key: &str) -> Option<Spanned<i64>> {
        let v = self.get(key)?;
        let n = v.get_ref().as_integer()?;
        Some(Spanned::new(
            v.span(),
            i64::from_str_radix(n.as_str(), n.radix()).ok()?,
        ))
    }

    pub(super) fn number(&self, key: &str) -> Option<Spanned<Number>> {
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

    pub(super) fn boolean(&self, key: &str) -> Option<bool> {
        self.get(key)?.get_ref().as_bool()
    }

    pub(super) fn signal(&self, key: &str) -> Option<Spanned<SignalValue>> {
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
            // Where a [service] would begin: an empty file is wrong at 1:1.
            pos: Some((1, 1)),
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
            // A misspelt ExecStart ("did you mean `ExecStart`?") already
            // says what is missing, and where.
            let misspelt = cx
                .errors
                .iter()
                .any(|e| e.hint.as_deref() == Some("did you mean `ExecStart`?"));
            if v.has_service && !v.has_exec_start && !misspelt {
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
    let log_max_bytes = super::limits::size(cx, v, "LogMaxBytes");
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
    let notify_access = v.entries.contains_key("NotifyAccess").then(|| {
        choice(
            cx,
            v,
            "NotifyAccess",
            &[
                ("group", NotifyAccess::Group),
                ("main", NotifyAccess::Main),
                ("none", NotifyAccess::None),
            ],
        )
    });

    // A notify unit that hears no one never becomes ready.
    if let (ServiceType::Notify, Some(NotifyAccess::None), Some(value)) =
        (kind, notify_access, v.get("NotifyAccess"))
    {
        cx.at(
            value.span(),
            "`NotifyAccess` is \"none\" on a Type = \"notify\" unit: its READY=1 would never count, and every start would time out".to_string(),
            Some("write \"main\" or \"group\", or leave NotifyAccess out".to_string()),
        );
    }

    let placed = PLACED_KEYS.iter().filter_map(|&key| {
        let value = v.get(key)?;
        Some((key, line_col(cx.text, value.span().start)))
    });
    let source = Source::new(warnings, placed);
    Some(Unit {
        name: name.to_string(),
        path: path.to_path_buf(),
        description,
        requires: requires.into(),
        wants: wants.into(),
        after: after.into(),
        start_limit_burst: u32::try_from(start_limit_burst).ok()?,
        start_limit_interval,
        kind,
        exec_start: exec_start?,
        exec_stop: exec_stop.map(Box::new),
        restart,
        restart_sec,
        restart_max_delay,
        timeout_start,
        timeout_stop,
        kill_signal,
        working_directory: working_directory.into(),
        environment: environment.into(),
        user,
        remain_after_exit,
        pid_file,
        log_max_bytes,
        log_max_files: u32::try_from(log_max_files).ok()?,
        limits: limits.into(),
        socket,
        timer,
        triggers: Triggers {
            watch_paths,
            watch_debounce,
            on_failure,
            on_restart,
            hook_rate_limit,
        }
        .into(),
        source,
        digest: super::Digest::default(),
        protected,
        conflicts: conflicts.into(),
        health: health.map(Box::new),
        watchdog,
        watchdog_signal,
        notify_access,
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
    if let (0, Some(value)) = (threshold, v.get("FailureThreshold")) {
        cx.at(
            value.span(),
            "`FailureThreshold` is 0; expected 1 or more (failed probes in a row before the unit is unhealthy)".to_string(),
            None,
        );
    }
    // A probe every 0 s, or one that may take 0 s, cannot work.
    let positive = |cx: &mut Ctx<'_>, key: &str| {
        let d = secs(cx, v, key, None);
        if let (true, Some(value)) = (d.is_zero(), v.get(key)) {
            cx.at(
                value.span(),
                format!("`{key}` is 0; expected more than 0"),
                None,
            );
        }
        d
    };
    let (interval, timeout) = (positive(cx, "IntervalSec"), positive(cx, "TimeoutSec"));
    let start_interval = positive(cx, "StartIntervalSec");
    Some(Health {
        probe,
        interval,
        timeout,
        start_period: secs(cx, v, "StartPeriodSec", None),
        start_interval,
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
