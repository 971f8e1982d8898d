//! systemd unit files -> [`Draft`]s. Pure: text in, draft out.
//!
//! The INI syntax as systemd reads it: `#`/`;` comments, `[Section]`
//! headers, `Key=Value` with whitespace trimmed, a trailing `\` continuing
//! the line (comment lines inside a continuation are skipped), a later
//! assignment replacing an earlier one and an empty one resetting a list.
//! Values: `Environment=` holds several assignments with systemd's quoting,
//! time spans (`1min 30s`), `-`/`@`/`+`/`!` prefixes on commands and paths,
//! and `%` specifiers (those of a system unit resolved, the others left as
//! written and reported). Every key diakonos has is mapped through the key
//! table; every other key is reported as dropped with why.

use super::{unit_name, Draft};
use crate::unit::keys::{self as schema, Section, ValueForm};
use crate::unit::parse_time_span;

/// One `Key=Value` line of a unit file, continuation lines joined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub section: String,
    pub key: String,
    pub value: String,
    pub line: usize,
}

/// Reads the INI structure. Lines that are neither a header, a comment nor
/// an assignment are returned as errors (line number, text).
pub fn parse_ini(text: &str) -> (Vec<Entry>, Vec<(usize, String)>) {
    let mut entries = Vec::new();
    let mut bad = Vec::new();
    let mut section = String::new();
    let mut lines = text.lines().enumerate();
    while let Some((i, raw)) = lines.next() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if line.starts_with('[') {
            match line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                Some(name) => section = name.trim().to_string(),
                None => bad.push((i + 1, line.to_string())),
            }
            continue;
        }
        let mut joined = line.to_string();
        while let Some(stripped) = joined.strip_suffix('\\') {
            joined = format!("{stripped} ");
            let mut next = None;
            for (_, cont) in lines.by_ref() {
                let cont = cont.trim();
                if cont.starts_with('#') || cont.starts_with(';') {
                    continue;
                }
                next = Some(cont);
                break;
            }
            match next {
                Some(cont) => joined.push_str(cont),
                None => break,
            }
        }
        match joined.split_once('=') {
            Some((key, value)) if !key.trim().is_empty() => entries.push(Entry {
                section: section.clone(),
                key: key.trim().to_string(),
                value: value.trim().to_string(),
                line: i + 1,
            }),
            _ => bad.push((i + 1, line.to_string())),
        }
    }
    (entries, bad)
}

/// Splits a value into words with systemd's quoting: whitespace separates,
/// `"..."` and `'...'` quote, C escapes (`\n`, `\t`, `\"`, `\\`, `\xNN`)
/// inside and outside quotes. `Err` on an unbalanced quote.
pub fn split_words(text: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            return Ok(words);
        }
        let mut word = String::new();
        let mut quote: Option<char> = None;
        while let Some(c) = chars.next() {
            match (quote, c) {
                (None, c) if c.is_whitespace() => break,
                (None, '"' | '\'') => quote = Some(c),
                (Some(q), c) if c == q => quote = None,
                (_, '\\') => match chars.next() {
                    Some('n') => word.push('\n'),
                    Some('t') => word.push('\t'),
                    Some('r') => word.push('\r'),
                    Some('x') => {
                        let hex: String = chars.by_ref().take(2).collect();
                        match u8::from_str_radix(&hex, 16) {
                            Ok(b) if b != 0 => word.push(char::from(b)),
                            _ => return Err(format!("bad escape `\\x{hex}`")),
                        }
                    }
                    Some(other) => word.push(other),
                    None => return Err("a `\\` at the end".to_string()),
                },
                (_, c) => word.push(c),
            }
        }
        if let Some(q) = quote {
            return Err(format!("an unbalanced {q}"));
        }
        words.push(word);
    }
}

/// A unit name's part as systemd unescapes it for `%I`: `-` is `/`, and
/// `\xNN` is that byte (`15-main` is `15/main`).
fn unescape(escaped: &str) -> String {
    let mut bytes = Vec::with_capacity(escaped.len());
    let mut rest = escaped.as_bytes();
    while let Some((&b, tail)) = rest.split_first() {
        let digit = |b: &u8| char::from(*b).to_digit(16);
        let hex = match tail {
            [b'x', hi, lo, ..] => digit(hi).zip(digit(lo)).map(|(h, l)| (h * 16 + l) as u8),
            _ => None,
        };
        match (b, hex) {
            (b'\\', Some(byte)) => {
                bytes.push(byte);
                rest = &tail[3..];
                continue;
            }
            (b'-', _) => bytes.push(b'/'),
            _ => bytes.push(b),
        }
        rest = tail;
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// A systemd boolean.
fn parse_bool(text: &str) -> Option<bool> {
    match text.to_ascii_lowercase().as_str() {
        "1" | "yes" | "y" | "true" | "t" | "on" => Some(true),
        "0" | "no" | "n" | "false" | "f" | "off" => Some(false),
        _ => None,
    }
}

/// Resolves the specifiers a system unit's values may hold. Those that
/// depend on who runs the unit (`%h`, `%u`, ...) stay as written and are
/// returned in `unresolved`; so do the instance's of a template imported
/// without one (`instance` is `Some("")`; None: not a template, whose
/// instance is empty).
pub fn resolve_specifiers(
    text: &str,
    file_name: &str,
    prefix: &str,
    instance: Option<&str>,
    unresolved: &mut Vec<String>,
) -> String {
    let unescaped = instance.map(unescape).unwrap_or_default();
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let Some(spec) = chars.next() else {
            out.push('%');
            break;
        };
        let value = match spec {
            '%' => "%",
            'n' => file_name,
            'N' => file_name.strip_suffix(".service").unwrap_or(file_name),
            'p' | 'P' => prefix,
            'i' | 'j' if instance != Some("") => instance.unwrap_or_default(),
            'I' | 'J' if instance != Some("") => &unescaped,
            't' => "/run",
            'S' => "/var/lib",
            'C' => "/var/cache",
            'L' => "/var/log",
            'E' => "/etc",
            'T' => "/tmp",
            'V' => "/var/tmp",
            _ => {
                let s = format!("%{spec}");
                if !unresolved.contains(&s) {
                    unresolved.push(s.clone());
                }
                out.push_str(&s);
                continue;
            }
        };
        out.push_str(value);
    }
    out
}

/// Command prefixes systemd reads before the program: `-` (a failure is
/// ignored), `@` (argv[0] given separately), `+`, `!`, `!!` (privileges),
/// `:` (no variable expansion). Returns them and the command.
fn command_prefixes(value: &str) -> (String, &str) {
    let end = value
        .find(|c: char| !matches!(c, '-' | '@' | '+' | '!' | ':'))
        .unwrap_or(value.len());
    (value[..end].to_string(), value[end..].trim_start())
}

/// Imports one systemd unit file. `file_name` is its base name
/// (`nginx.service`), `origin` where it was read from.
pub fn import(text: &str, file_name: &str, origin: &str) -> Draft {
    let stem = file_name.strip_suffix(".service").unwrap_or(file_name);
    let (prefix, instance) = match stem.split_once('@') {
        Some((p, i)) => (p, Some(i)),
        None => (stem, None),
    };
    let name = unit_name(stem);
    let mut d = Draft::new(&name, origin);
    if name != stem {
        d.drop_key(
            "name",
            format!("`{stem}` is imported as `{name}` (`@` names a host in diakonos)"),
        );
    }
    if !file_name.ends_with(".service") {
        d.drop_key(
            "type",
            format!("`{file_name}` is not a .service unit; only its [Service] part maps"),
        );
    }
    let (entries, bad) = parse_ini(text);
    for (line, text) in bad {
        d.drop_key(
            &format!("line {line}"),
            format!("not `Key=Value`: `{text}`"),
        );
    }
    let mut unresolved = Vec::new();
    let mut saw_restart = false;
    let mut install_keys = Vec::new();
    for e in &entries {
        let value = resolve_specifiers(&e.value, file_name, prefix, instance, &mut unresolved);
        let key = e.key.as_str();
        let section = match e.section.as_str() {
            "Unit" => Section::Unit,
            "Service" => Section::Service,
            "Install" => {
                install_keys.push(format!("{key}={value}"));
                continue;
            }
            "Timer" => {
                d.drop_key(
                    &format!("[Timer] {key}"),
                    format!("a [Timer] belongs in a .timer file; import it beside the service: `diakonos import systemd {prefix}.service {prefix}.timer`"),
                );
                continue;
            }
            other => {
                d.drop_key(
                    &format!("[{other}] {key}"),
                    format!("diakonos units have no [{other}] section"),
                );
                continue;
            }
        };
        if key == "Restart" {
            saw_restart = true;
        }
        map_entry(&mut d, section, key, &value);
    }
    from_environment_files(&mut d);
    if !saw_restart {
        // systemd's default is Restart=no, diakonos's on-failure: keep the meaning.
        d.set(Section::Service, "Restart", str_value("no"));
    }
    if !install_keys.is_empty() {
        d.drop_key(
            "[Install]",
            format!(
                "{}; run `diakonos enable {name}` to start it whenever the daemon starts",
                install_keys.join(", ")
            ),
        );
    }
    if !unresolved.is_empty() {
        let why = match instance {
            Some("") => format!(
                "`{file_name}` is a template and names no instance: {} left as written; copy it to {prefix}@INSTANCE.service and import that",
                unresolved.join(", ")
            ),
            _ => format!(
                "{} cannot be resolved outside systemd; left as written, edit them",
                unresolved.join(", ")
            ),
        };
        d.drop_key("specifiers", why);
    }
    d
}

/// systemd expands `$VAR` in a command from EnvironmentFile too (Debian's
/// cron: `/usr/sbin/cron -f $EXTRA_OPTS`); diakonos expands ExecStart
/// from `Environment` alone, when it loads the unit. Such a command is run
/// through `sh -c`, which reads the variables at each start.
fn from_environment_files(d: &mut Draft) {
    if d.get("EnvironmentFile").is_none() {
        return;
    }
    for key in ["ExecStart", "ExecStop"] {
        let Some(command) = d.get(key).and_then(|v| v.as_str()).map(str::to_owned) else {
            continue;
        };
        let vars = variables(&command);
        if vars.is_empty() {
            continue;
        }
        let script = format!("exec {command}").replace('$', "$$");
        let wrapped = format!("sh -c {}", shell_words::quote(&script));
        d.set(Section::Service, key, str_value(&wrapped));
        d.drop_key(
            &format!("{key} as written"),
            format!(
                "{} may come from EnvironmentFile, which diakonos reads at each start: the command runs through `sh -c` to expand them then",
                vars.join(", ")
            ),
        );
    }
}

/// The `$NAME` and `${NAME}` a command line refers to.
fn variables(command: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = command;
    while let Some(at) = rest.find('$') {
        rest = &rest[at + 1..];
        let braced = rest.strip_prefix('{');
        let body = braced.unwrap_or(rest);
        let len = body
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(body.len());
        if len > 0 {
            let name = format!("${}", &body[..len]);
            if !out.contains(&name) {
                out.push(name);
            }
        }
    }
    out
}

fn str_value(s: &str) -> toml::Value {
    toml::Value::String(s.to_string())
}

/// Seconds as TOML: an integer when whole.
fn secs_value(secs: f64) -> toml::Value {
    if secs.fract() == 0.0 && secs < i64::MAX as f64 {
        toml::Value::Integer(secs as i64)
    } else {
        toml::Value::Float(secs)
    }
}

/// `Requires=`/`Wants=`/`After=`/`Conflicts=`/`OnFailure=`: unit names,
/// `.service` dropped; other
/// kinds (targets, sockets, mounts) are not diakonos units.
fn dependencies(d: &mut Draft, key: &str, value: &str) {
    if value.is_empty() {
        d.set(Section::Unit, key, toml::Value::Array(Vec::new()));
        return;
    }
    let mut skipped = Vec::new();
    for word in value.split_whitespace() {
        match word.strip_suffix(".service") {
            Some(name) => d.push(Section::Unit, key, &unit_name(name)),
            None => skipped.push(word),
        }
    }
    if !skipped.is_empty() {
        d.drop_key(
            &format!("{key}={}", skipped.join(" ")),
            "diakonos orders services only; targets, sockets, mounts and devices are not units here",
        );
    }
}

/// A `[Service]` key whose value is one of a few words: `same` are kept;
/// each `(values, imported as, why)` is mapped, said so unless `why` is
/// empty; any other is dropped with `unknown.0`, and `unknown.1` written
/// instead when there is one.
fn choice(
    d: &mut Draft,
    key: &str,
    value: &str,
    same: &[&str],
    renamed: &[(&[&str], &'static str, &str)],
    unknown: (&str, Option<&'static str>),
) {
    let mapped = if same.contains(&value) {
        Some(value)
    } else if let Some((_, to, why)) = renamed.iter().find(|(from, _, _)| from.contains(&value)) {
        if !why.is_empty() {
            d.drop_key(&format!("{key}={value}"), *why);
        }
        Some(*to)
    } else {
        d.drop_key(&format!("{key}={value}"), unknown.0);
        unknown.1
    };
    if let Some(v) = mapped {
        d.set(Section::Service, key, str_value(v));
    }
}

fn map_entry(d: &mut Draft, section: Section, key: &str, value: &str) {
    match key {
        "Requires" | "Wants" | "After" | "Conflicts" | "OnFailure" => {
            return dependencies(d, key, value)
        }
        "NotifyAccess" => {
            return choice(
                d,
                key,
                value,
                &["main", "none"],
                &[(
                    &["all", "exec"],
                    "group",
                    "imported as group (the main process or any process of its group)",
                )],
                ("unknown NotifyAccess; the default is group", None),
            )
        }
        "BindsTo" => {
            d.drop_key("BindsTo", "imported as Requires (diakonos has no BindsTo)");
            return dependencies(d, "Requires", value);
        }
        "Type" => {
            return choice(
                d,
                key,
                value,
                &["simple", "forking", "oneshot", "notify"],
                &[
                    (
                        &["exec", "idle", "dbus"],
                        "simple",
                        "imported as Type=simple (up once spawned)",
                    ),
                    (&["notify-reload"], "notify", ""),
                ],
                ("unknown Type; the default is simple", None),
            )
        }
        "Restart" => {
            return choice(
                d,
                key,
                value,
                &["no", "always", "on-failure"],
                &[
                    (
                        &["on-abnormal", "on-abort", "on-watchdog"],
                        "on-failure",
                        "imported as on-failure (restarts after a non-zero exit or a signal)",
                    ),
                    (
                        &["on-success"],
                        "always",
                        "diakonos has no on-success; imported as always",
                    ),
                ],
                ("unknown Restart value; left at no", Some("no")),
            )
        }
        "ExecStart" | "ExecStop" => {
            if value.is_empty() {
                return;
            }
            if d.get(key).is_some() {
                d.drop_key(
                    &format!("{key}={value}"),
                    format!("diakonos runs one {key} command; wrap several in a script"),
                );
                return;
            }
            let (prefixes, command) = command_prefixes(value);
            if !prefixes.is_empty() {
                d.drop_key(
                    &format!("{key} prefix `{prefixes}`"),
                    "diakonos has no command prefixes (`-` ignore failure, `@` argv0, `+`/`!` privileges, \
                     `:` no expansion); the command runs as written",
                );
            }
            d.set(Section::Service, key, str_value(command));
            return;
        }
        "Environment" => {
            if value.is_empty() {
                d.set(Section::Service, key, toml::Value::Array(Vec::new()));
                return;
            }
            match split_words(value) {
                Ok(words) => {
                    for w in words {
                        if w.contains('=') {
                            d.push(Section::Service, key, &w);
                        } else {
                            d.drop_key(&format!("Environment entry `{w}`"), "not KEY=VALUE");
                        }
                    }
                }
                Err(e) => d.drop_key(
                    &format!("Environment={value}"),
                    format!("cannot split it: {e}"),
                ),
            }
            return;
        }
        "TimeoutStopSec" if parse_time_span(value).is_ok_and(|s| s == 0.0) => {
            // systemd's 0 is "no timeout"; diakonos's would SIGKILL at once.
            d.drop_key(
                "TimeoutStopSec=0",
                "imported as \"infinity\" (systemd's 0 turns the timeout off; diakonos's 0 sends SIGKILL right after KillSignal)",
            );
            d.set(section, key, str_value("infinity"));
            return;
        }
        "TimeoutSec" => {
            map_entry(d, section, "TimeoutStartSec", value);
            map_entry(d, section, "TimeoutStopSec", value);
            return;
        }
        "StartLimitInterval" => return map_entry(d, Section::Unit, "StartLimitIntervalSec", value),
        "StartLimitBurst" | "StartLimitIntervalSec" => {
            // systemd reads these in [Unit] (and, old style, in [Service]).
            return map_known(d, Section::Unit, key, value);
        }
        "WorkingDirectory" => {
            let path = value.strip_prefix('-').unwrap_or(value);
            if path == "~" || path.starts_with("~/") {
                d.drop_key(
                    "WorkingDirectory",
                    format!("`{value}` is the user's home; write the path out"),
                );
                return;
            }
            return map_known(d, section, key, path);
        }
        "KillMode" => {
            let why = if value == "control-group" {
                "diakonos always signals the whole process group (like control-group)"
            } else {
                "diakonos sends KillSignal to the whole process group, then SIGKILL after TimeoutStopSec \
                 (like KillMode=control-group)"
            };
            d.drop_key(&format!("KillMode={value}"), why);
            return;
        }
        "Documentation" => {
            d.drop_key(
                "Documentation",
                format!("no such key in diakonos (was `{value}`)"),
            );
            return;
        }
        _ => {}
    }
    map_known(d, section, key, value);
}

/// A key diakonos has, converted by its row's form; any other is dropped.
pub(super) fn map_known(d: &mut Draft, section: Section, key: &str, value: &str) {
    let Some(row) = schema::find(key).filter(|k| k.section == section) else {
        let why = schema::systemd_only_reason(key)
            .map(str::to_string)
            .or_else(|| {
                schema::find(key).map(|k| format!("diakonos reads it in [{}]", k.section.name()))
            })
            .unwrap_or_else(|| "diakonos has no such key".to_string());
        d.drop_key(&format!("{key}={value}"), why);
        return;
    };
    let bad = |d: &mut Draft, why: String| d.drop_key(&format!("{key}={value}"), why);
    let converted = match row.form() {
        ValueForm::Text => {
            if value.is_empty() {
                return;
            }
            str_value(value)
        }
        ValueForm::Signal => str_value(value),
        ValueForm::List => {
            if value.is_empty() {
                d.set(section, key, toml::Value::Array(Vec::new()));
                return;
            }
            match split_words(value) {
                Ok(words) => {
                    for w in words {
                        d.push(section, key, &w);
                    }
                    return;
                }
                Err(e) => return bad(d, format!("cannot split it: {e}")),
            }
        }
        ValueForm::Secs { infinity } => {
            if value == "infinity" {
                if !infinity {
                    return bad(d, format!("diakonos's {key} has no infinity"));
                }
                str_value("infinity")
            } else {
                match parse_time_span(value) {
                    Ok(secs) => secs_value(secs),
                    Err(e) => return bad(d, e),
                }
            }
        }
        ValueForm::Int => match value.parse::<i64>() {
            Ok(n) => toml::Value::Integer(n),
            _ => return bad(d, "not an integer".to_string()),
        },
        ValueForm::Count => match value.parse::<i64>() {
            Ok(n) if n >= 0 => toml::Value::Integer(n),
            _ if value == "infinity" => toml::Value::Integer(0),
            _ => return bad(d, "not a non-negative integer".to_string()),
        },
        ValueForm::Bool => match parse_bool(value) {
            Some(b) => toml::Value::Boolean(b),
            None => return bad(d, "not a boolean (yes/no)".to_string()),
        },
    };
    d.set(section, key, converted);
}

#[cfg(test)]
mod tests;
