//! PM2 app definitions -> [`Draft`]s. Pure: JSON text in, drafts out.
//!
//! Reads an `ecosystem.config.json` (`{"apps": [...]}`, or one app object)
//! and `pm2 jlist` output (an array of processes whose settings are under
//! `pm2_env`). Mapped: name, script (+ interpreter), args, cwd, env,
//! autorestart, restart_delay, exp_backoff_restart_delay, kill_timeout,
//! max_restarts, max_memory_restart and watch where diakonos has the key,
//! watch_delay, uid/gid, and cron_restart as a `[timer]` (OnCalendar,
//! Overlap = "restart", OnBootSec = 0: it runs from the start, restarted at
//! each elapse); every other field is reported as dropped, with why.

use std::path::Path;

use serde_json::{Map, Value};

use super::{unit_name, Draft};
use crate::unit::keys::{self as schema, Section};

/// Fields PM2 writes into `pm2 jlist` that are its bookkeeping, not settings.
const JLIST_BOOKKEEPING: &[&str] = &[
    "pm_id",
    "pid",
    "monit",
    "status",
    "pm_uptime",
    "created_at",
    "restart_time",
    "unstable_restarts",
    "unique_id",
    "axm_actions",
    "axm_monitor",
    "axm_options",
    "axm_dynamic",
    "versioning",
    "version",
    "node_version",
    "pm_exec_path",
    "pm_cwd",
    "exec_interpreter",
    "pm_out_log_path",
    "pm_err_log_path",
    "pm_pid_path",
    "km_link",
    "vizion_running",
    "prev_restart_delay",
    "exit_code",
    "username",
    "windowsHide",
    "env",
    "name",
    "namespace",
    "instance_var",
    "filter_env",
    "NODE_APP_INSTANCE",
    "vizion",
    "automation",
    "autostart",
    "pmx",
    "treekill",
    "exec_mode",
    "instances",
    "merge_logs",
    "kill_retry_time",
    "node_args",
    "watch",
    "args",
    "restart_delay",
    "autorestart",
    "kill_timeout",
    "max_restarts",
    "max_memory_restart",
    "cron_restart",
    "exp_backoff_restart_delay",
    "min_uptime",
    "log_date_format",
    "out_file",
    "error_file",
    "log_file",
];

/// Environment variables of the shell PM2 ran in, which `pm2 jlist` copies
/// into every app's env; not the app's own settings.
const SHELL_VARS: &[&str] = &[
    "PATH",
    "HOME",
    "PWD",
    "OLDPWD",
    "SHELL",
    "SHLVL",
    "USER",
    "LOGNAME",
    "TERM",
    "_",
    "LANG",
    "LS_COLORS",
    "MAIL",
    "SSH_CLIENT",
    "SSH_CONNECTION",
    "SSH_TTY",
    "XDG_SESSION_ID",
    "XDG_RUNTIME_DIR",
    "DBUS_SESSION_BUS_ADDRESS",
    "HOSTNAME",
    "LC_ALL",
    "COLORTERM",
];

/// Reads the JSON and imports every app. `Err` says what the file is not.
/// `base` is the directory of the file: PM2 resolves `cwd` against it and
/// runs an app without `cwd` there.
pub fn import(text: &str, origin: &str, base: &Path) -> Result<Vec<Draft>, String> {
    let doc: Value = serde_json::from_str(text).map_err(|e| {
        format!("not JSON ({e}); an ecosystem.config.js must be turned into JSON first")
    })?;
    let apps: Vec<(Map<String, Value>, bool)> = match doc {
        Value::Array(items) => items
            .into_iter()
            .filter_map(|v| match v {
                Value::Object(m) => Some(m),
                _ => None,
            })
            .map(|m| {
                let jlist = m.contains_key("pm2_env");
                (m, jlist)
            })
            .collect(),
        Value::Object(mut m) => match m.remove("apps") {
            Some(Value::Array(items)) => items
                .into_iter()
                .filter_map(|v| match v {
                    Value::Object(m) => Some((m, false)),
                    _ => None,
                })
                .collect(),
            Some(_) => return Err("`apps` is not an array of apps".to_string()),
            None if m.contains_key("script") => vec![(m, false)],
            None => {
                return Err("no `apps` array and no `script`: not a PM2 ecosystem file".to_string())
            }
        },
        _ => return Err("expected an object with `apps` or a `pm2 jlist` array".to_string()),
    };
    let mut drafts: Vec<Draft> = Vec::new();
    for (i, (app, jlist)) in apps.into_iter().enumerate() {
        let draft = if jlist {
            from_jlist(&app, origin, base)
        } else {
            from_app(&app, origin, base)
        }
        .map_err(|e| format!("app {}: {e}", i + 1))?;
        // `pm2 jlist` lists each cluster instance; they are one app.
        if !drafts.iter().any(|d| d.name == draft.name) || !jlist {
            drafts.push(draft);
        }
    }
    Ok(drafts)
}

fn from_jlist(proc_: &Map<String, Value>, origin: &str, base: &Path) -> Result<Draft, String> {
    let Some(Value::Object(env)) = proc_.get("pm2_env") else {
        return Err("`pm2_env` is not an object".to_string());
    };
    let mut app = Map::new();
    for (key, value) in env {
        if !JLIST_BOOKKEEPING.contains(&key.as_str()) || settings_field(key) {
            app.insert(key.clone(), value.clone());
        }
    }
    if let Some(name) = proc_.get("name").or_else(|| env.get("name")) {
        app.insert("name".into(), name.clone());
    }
    if let Some(script) = env.get("pm_exec_path") {
        app.insert("script".into(), script.clone());
    }
    if let Some(cwd) = env.get("pm_cwd") {
        app.insert("cwd".into(), cwd.clone());
    }
    if let Some(interp) = env.get("exec_interpreter") {
        app.insert("interpreter".into(), interp.clone());
    }
    // The app's own env: jlist's copy holds PM2's and the shell's variables too.
    if let Some(Value::Object(vars)) = env.get("env") {
        let own: Map<String, Value> = vars
            .iter()
            .filter(|(k, _)| {
                !SHELL_VARS.contains(&k.as_str())
                    && !k.starts_with("PM2_")
                    && !k.starts_with("pm_")
                    && !k.starts_with("XDG_")
                    && !k.starts_with("LC_")
                    && k.as_str() != "NODE_APP_INSTANCE"
                    && k.as_str() != "unique_id"
                    && !env.contains_key(k.as_str()) // jlist repeats each setting as a variable
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        app.insert("env".into(), Value::Object(own));
    }
    from_app(&app, origin, base)
}

/// PM2 settings that `from_app` maps or reports.
fn settings_field(key: &str) -> bool {
    matches!(
        key,
        "args"
            | "restart_delay"
            | "autorestart"
            | "kill_timeout"
            | "max_restarts"
            | "max_memory_restart"
            | "cron_restart"
            | "exp_backoff_restart_delay"
            | "watch"
            | "instances"
            | "exec_mode"
            | "node_args"
            | "min_uptime"
    )
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Milliseconds (a number or a numeric string) -> seconds.
fn millis(v: &Value) -> Option<f64> {
    let ms = match v {
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => s.trim().parse().ok()?,
        _ => return None,
    };
    (ms >= 0.0 && ms.is_finite()).then_some(ms / 1000.0)
}

fn secs_value(secs: f64) -> toml::Value {
    if secs.fract() == 0.0 && secs < 1e15 {
        toml::Value::Integer(secs as i64)
    } else {
        toml::Value::Float(secs)
    }
}

/// The interpreter PM2 picks for a script by its extension.
fn default_interpreter(script: &str) -> Option<&'static str> {
    let ext = script.rsplit_once('.').map(|(_, e)| e)?;
    Some(match ext {
        "js" | "mjs" | "cjs" => "node",
        "py" => "python3",
        "sh" => "bash",
        "rb" => "ruby",
        "php" => "php",
        "pl" => "perl",
        "ts" => "ts-node",
        "coffee" => "coffee",
        _ => return None,
    })
}

/// One word of the command, as ExecStart reads it back: PM2 runs no shell
/// and expands nothing, so a `$` is written `$$` (ExecStart's literal `$`).
fn quote(word: &str) -> String {
    shell_words::quote(&word.replace('$', "$$")).into_owned()
}

fn has_key(name: &str, section: Section) -> bool {
    schema::find(name).is_some_and(|k| k.section == section)
}

fn from_app(app: &Map<String, Value>, origin: &str, base: &Path) -> Result<Draft, String> {
    let script = app
        .get("script")
        .and_then(text)
        .filter(|s| !s.is_empty())
        .ok_or("no `script`")?;
    let raw_name = app.get("name").and_then(text).unwrap_or_else(|| {
        let base = script.rsplit('/').next().unwrap_or(&script);
        base.split('.').next().unwrap_or(base).to_string()
    });
    let name = unit_name(&raw_name);
    let mut d = Draft::new(&name, origin);
    if name != raw_name {
        d.drop_key("name", format!("`{raw_name}` is imported as `{name}`"));
    }
    let s = Section::Service;

    let interpreter = match app.get("interpreter").and_then(text) {
        Some(i) if i == "none" || i.is_empty() => None,
        Some(i) => Some(i),
        None => default_interpreter(&script).map(str::to_string),
    };
    let mut command: Vec<String> = Vec::new();
    if let Some(interp) = &interpreter {
        command.push(quote(interp));
        match app.get("interpreter_args").or_else(|| app.get("node_args")) {
            Some(Value::String(a)) => command.push(a.replace('$', "$$")),
            Some(Value::Array(items)) => {
                command.extend(items.iter().filter_map(text).map(|a| quote(&a)))
            }
            _ => {}
        }
    }
    // PM2 runs an app in `cwd` (relative to the file), else where the file is.
    let cwd = match app.get("cwd").and_then(text) {
        Some(cwd) => base.join(cwd),
        None => base.to_path_buf(),
    };
    // PM2 takes a bare `script` from `cwd` when it is there, else from the
    // PATH; ExecStart's bare name is a PATH lookup, so it becomes `./NAME`.
    let script = match interpreter {
        None if !script.contains('/') && cwd.join(&script).is_file() => format!("./{script}"),
        _ => script,
    };
    command.push(quote(&script));
    match app.get("args") {
        // A string is a command line already: kept as written.
        Some(Value::String(a)) if !a.is_empty() => command.push(a.replace('$', "$$")),
        Some(Value::Array(items)) => {
            command.extend(items.iter().filter_map(text).map(|a| quote(&a)))
        }
        _ => {}
    }
    d.set(s, "ExecStart", toml::Value::String(command.join(" ")));
    d.set(
        s,
        "WorkingDirectory",
        toml::Value::String(cwd.to_string_lossy().into_owned()),
    );
    if let Some(Value::Object(env)) = app.get("env") {
        for (k, v) in env {
            match text(v) {
                Some(v) => d.push(s, "Environment", &format!("{k}={v}")),
                None => d.drop_key(&format!("env.{k}"), "not a string, number or boolean"),
            }
        }
    }
    // PM2 restarts after any exit unless autorestart is false.
    let autorestart = app
        .get("autorestart")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    d.set(
        s,
        "Restart",
        toml::Value::String(if autorestart { "always" } else { "no" }.into()),
    );
    // PM2 restarts at once by default; diakonos waits RestartSec (1 s).
    let delay = app.get("restart_delay").and_then(millis).unwrap_or(0.0);
    d.set(s, "RestartSec", secs_value(delay));
    if let Some(first) = app.get("exp_backoff_restart_delay").and_then(millis) {
        // PM2 grows the delay from this value up to 15 s.
        d.set(s, "RestartSec", secs_value(first));
        if app.contains_key("restart_delay") {
            d.drop_key(
                "restart_delay",
                "PM2 ignores it beside exp_backoff_restart_delay, whose first delay is RestartSec",
            );
        }
        d.set(s, "RestartMaxDelaySec", secs_value(first.max(15.0)));
    }
    if let Some(secs) = app.get("kill_timeout").and_then(millis) {
        d.set(s, "TimeoutStopSec", secs_value(secs));
    }
    if let Some(n) = app
        .get("max_restarts")
        .and_then(Value::as_i64)
        .filter(|n| *n >= 0)
    {
        // PM2 gives up after this many unstable restarts; diakonos counts
        // starts inside StartLimitIntervalSec.
        d.set(Section::Unit, "StartLimitBurst", toml::Value::Integer(n));
        d.drop_key(
            "max_restarts",
            "imported as StartLimitBurst: diakonos gives up after that many starts within StartLimitIntervalSec (10 s), not after unstable restarts",
        );
    }
    if let Some(mem) = app.get("max_memory_restart").and_then(text) {
        if has_key("MemoryMax", s) {
            d.set(s, "MemoryMax", toml::Value::String(mem));
        } else {
            d.drop_key(
                &format!("max_memory_restart={mem}"),
                "this diakonos has no memory limit key (MemoryMax)",
            );
        }
    }
    // PM2 (croner too) restarts the app at each elapse, or starts it if it
    // is stopped; `0` turns it off.
    if let Some(cron) = app
        .get("cron_restart")
        .or_else(|| app.get("cron"))
        .and_then(text)
    {
        let expr = cron.trim();
        match crate::unit::parse_cron(expr) {
            _ if expr == "0" => {}
            Ok(_) => {
                d.set(Section::Timer, "OnCalendar", toml::Value::String(expr.to_string()));
                d.set(Section::Timer, "Overlap", toml::Value::String("restart".into()));
                // The app runs all the time, as under PM2: started as soon
                // as the timer is armed (the daemon starts, `enable`), then
                // restarted at each elapse.
                d.set(Section::Timer, "OnBootSec", toml::Value::Integer(0));
            }
            Err(why) => d.drop_key(
                &format!("cron_restart={cron}"),
                format!(
                    "not a cron expression diakonos reads ({}); write OnCalendar in [timer] by hand",
                    why.trim_end_matches('.')
                ),
            ),
        }
    }
    if let Some(secs) = app.get("watch_delay").and_then(millis) {
        d.set(s, "WatchDebounceSec", secs_value(secs));
    }
    // PM2's uid is a user name or number; User takes either.
    if let Some(user) = app.get("uid").or_else(|| app.get("user")).and_then(text) {
        d.set(s, "User", toml::Value::String(user));
    }
    if let Some(group) = app.get("gid").and_then(text) {
        d.set(s, "Group", toml::Value::String(group));
    }
    match app.get("watch") {
        None | Some(Value::Bool(false)) => {}
        Some(w) if has_key("WatchPaths", s) => {
            let paths: Vec<String> = match w {
                Value::Array(items) => items.iter().filter_map(text).collect(),
                Value::String(p) => vec![p.clone()],
                _ => vec![".".to_string()],
            };
            for p in paths {
                d.push(s, "WatchPaths", &p);
            }
        }
        Some(_) => d.drop_key("watch", "this diakonos has no file watches (WatchPaths)"),
    }
    let mapped = [
        "name",
        "script",
        "interpreter",
        "interpreter_args",
        "node_args",
        "args",
        "cwd",
        "env",
        "autorestart",
        "restart_delay",
        "exp_backoff_restart_delay",
        "kill_timeout",
        "max_restarts",
        "max_memory_restart",
        "cron_restart",
        "cron",
        "watch",
        "watch_delay",
        "uid",
        "user",
        "gid",
    ];
    for (key, value) in app {
        if mapped.contains(&key.as_str()) {
            continue;
        }
        // One process, forked: what diakonos does (`pm2 jlist` says so).
        let one = match key.as_str() {
            "instances" => value.as_i64() == Some(1),
            "exec_mode" => matches!(value.as_str(), Some("fork" | "fork_mode")),
            _ => false,
        };
        if one {
            continue;
        }
        let why = match key.as_str() {
            "instances" | "exec_mode" => {
                "diakonos runs one process per unit; import it once per instance with different names"
            }
            k if k.starts_with("env_") => "only `env` is imported; merge this environment into it",
            "out_file" | "error_file" | "log_file" | "merge_logs" | "log_date_format" | "combine_logs" => {
                "output goes to the unit's diakonos log (`diakonos logs NAME`)"
            }
            "min_uptime" | "listen_timeout" | "wait_ready" | "shutdown_with_message" => {
                "no equivalent; see Type and TimeoutStartSec"
            }
            _ => "no equivalent in diakonos",
        };
        d.drop_key(
            &format!("{key}={}", text(value).unwrap_or_else(|| value.to_string())),
            why,
        );
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dollar_in_args_reaches_the_program_as_written() {
        // PM2 expands nothing: `$HOME` in args is the program's argument, not a variable (ExecStart's `$$`).
        let json = r#"{"apps":[{"name":"d","script":"/bin/echo","interpreter":"none",
            "args":["$HOME","${USER}","a$b"]}]}"#;
        let d = &import(json, "eco.json", Path::new("/x")).unwrap()[0];
        let unit = crate::unit::parse(
            "d",
            Path::new("/x/d.service"),
            &d.to_toml(),
            Path::new("/x"),
        )
        .expect("the imported unit parses");
        assert_eq!(unit.exec_start, ["/bin/echo", "$HOME", "${USER}", "a$b"]);
        let json =
            r#"{"apps":[{"name":"s","script":"/bin/echo","interpreter":"none","args":"$HOME x"}]}"#;
        let d = &import(json, "eco.json", Path::new("/x")).unwrap()[0];
        let unit = crate::unit::parse(
            "s",
            Path::new("/x/s.service"),
            &d.to_toml(),
            Path::new("/x"),
        )
        .expect("the imported unit parses");
        assert_eq!(unit.exec_start, ["/bin/echo", "$HOME", "x"]);
    }

    #[test]
    fn ecosystem_fields_map() {
        // The issue's fields become keys (cron_restart a [timer]); instances is reported.
        let json = r#"{"apps":[{"name":"api","script":"server.js","args":["--port","3000"],
            "cwd":"/srv/api","env":{"NODE_ENV":"production","N":3},"autorestart":true,
            "restart_delay":500,"kill_timeout":3000,"max_restarts":4,"cron_restart":"0 3 * * *",
            "instances":2}]}"#;
        let d = &import(json, "eco.json", Path::new("/x")).unwrap()[0];
        let t = d.to_toml();
        assert!(
            t.contains("ExecStart = \"node server.js --port 3000\""),
            "{t}"
        );
        assert!(
            t.contains("Environment = [\"N=3\", \"NODE_ENV=production\"]"),
            "{t}"
        );
        assert!(t.contains("RestartSec = 0.5"), "{t}");
        assert!(t.contains("TimeoutStopSec = 3\n"), "{t}");
        assert!(t.contains("StartLimitBurst = 4"), "{t}");
        assert!(t.contains("Restart = \"always\""), "{t}");
        assert!(
            t.contains(
                "[timer]\nOnCalendar = \"0 3 * * *\"\nOverlap = \"restart\"\nOnBootSec = 0\n"
            ),
            "{t}"
        );
        let dropped: Vec<&str> = d.dropped.iter().map(|x| x.key.as_str()).collect();
        assert_eq!(dropped, ["max_restarts", "instances=2"]);
    }

    #[test]
    fn cron_restart_watch_delay_and_identity() {
        // cron_restart (or its alias cron) is a timer unless PM2's "0" (off) or not a cron
        // expression (reported); watch_delay, uid (a name or a number) and gid map.
        let json = r#"{"apps":[
            {"name":"a","script":"a.js","cron":"*/30 * * * * *","watch":["src"],"watch_delay":1500,
             "uid":"www-data","gid":33},
            {"name":"b","script":"b.js","cron_restart":"0","uid":1000},
            {"name":"c","script":"c.js","cron_restart":"at noon"}]}"#;
        let drafts = import(json, "eco.json", Path::new("/x")).unwrap();
        let t = drafts[0].to_toml();
        for line in [
            "OnCalendar = \"*/30 * * * * *\"\n",
            "Overlap = \"restart\"\n",
            "WatchDebounceSec = 1.5\n",
            "User = \"www-data\"\n",
            "Group = \"33\"\n",
        ] {
            assert!(t.contains(line), "no {line:?} in {t}");
        }
        assert!(drafts[0].dropped.is_empty(), "{:?}", drafts[0].dropped);
        let t = drafts[1].to_toml();
        assert!(
            !t.contains("\n[timer]") && t.contains("\nUser = \"1000\"\n"),
            "{t}"
        );
        assert!(drafts[1].dropped.is_empty(), "{:?}", drafts[1].dropped);
        let t = drafts[2].to_toml();
        assert!(!t.contains("\n[timer]"), "{t}");
        assert_eq!(drafts[2].dropped.len(), 1);
        assert!(
            drafts[2].dropped[0].key == "cron_restart=at noon"
                && drafts[2].dropped[0].why.contains("not a cron expression"),
            "{:?}",
            drafts[2].dropped
        );
    }

    #[test]
    fn jlist_reads_pm2_env_and_leaves_out_the_shell() {
        // A `pm2 jlist` process: settings under pm2_env; PATH and PM2's own variables are not imported.
        let json = r#"[{"pid":12,"name":"worker","pm2_env":{"pm_exec_path":"/srv/w/run.py",
            "pm_cwd":"/srv/w","exec_interpreter":"python3","autorestart":false,"status":"online",
            "args":["-v"],"env":{"PATH":"/usr/bin","PM2_HOME":"/root/.pm2","QUEUE":"jobs","status":"online"}}}]"#;
        let d = &import(json, "jlist", Path::new("/x")).unwrap()[0];
        let t = d.to_toml();
        assert!(
            t.contains("ExecStart = \"python3 /srv/w/run.py -v\""),
            "{t}"
        );
        assert!(t.contains("Environment = [\"QUEUE=jobs\"]"), "{t}");
        assert!(t.contains("Restart = \"no\""), "{t}");
        assert!(d.dropped.is_empty(), "{:?}", d.dropped);
    }

    #[test]
    fn cwd_is_relative_to_the_file_and_defaults_to_its_directory() {
        // As PM2 does: `cwd` resolves against the ecosystem file's directory, which is also the default.
        let json =
            r#"{"apps":[{"name":"a","script":"a.js","cwd":"app"},{"name":"b","script":"b.js"}]}"#;
        let d = import(json, "eco.json", Path::new("/srv/eco")).unwrap();
        assert_eq!(
            d[0].get("WorkingDirectory").and_then(|v| v.as_str()),
            Some("/srv/eco/app")
        );
        assert_eq!(
            d[1].get("WorkingDirectory").and_then(|v| v.as_str()),
            Some("/srv/eco")
        );
    }

    #[test]
    fn a_bare_script_in_cwd_is_run_from_there_else_from_the_path() {
        // PM2 resolves `script` against `cwd` first: `mybinary` there becomes `./mybinary`; `ls` (not there) stays a PATH lookup.
        let dir = std::env::temp_dir().join(format!("diakonos-pm2-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        std::fs::write(dir.join("mybinary"), "#!/bin/sh\n").expect("write");
        let json = r#"{"apps":[{"name":"b","script":"mybinary"},{"name":"l","script":"ls"}]}"#;
        let d = import(json, "eco.json", &dir);
        std::fs::remove_dir_all(&dir).expect("rm");
        let d = d.expect("imports");
        assert_eq!(
            d[0].get("ExecStart").and_then(|v| v.as_str()),
            Some("./mybinary")
        );
        assert_eq!(d[1].get("ExecStart").and_then(|v| v.as_str()), Some("ls"));
    }

    #[test]
    fn restart_delay_beside_a_backoff_is_reported_and_one_forked_instance_is_not() {
        // PM2 ignores restart_delay when exp_backoff_restart_delay is set: the import says so. instances=1 and fork_mode are what diakonos does: nothing to report.
        let json = r#"{"apps":[{"name":"a","script":"/bin/sleep","restart_delay":2000,
            "exp_backoff_restart_delay":100,"instances":1,"exec_mode":"fork_mode"}]}"#;
        let d = import(json, "eco.json", Path::new("/srv")).expect("imports");
        assert_eq!(d[0].get("RestartSec").and_then(|v| v.as_float()), Some(0.1));
        let dropped: Vec<&str> = d[0].dropped.iter().map(|x| x.key.as_str()).collect();
        assert_eq!(dropped, ["restart_delay"]);
    }

    #[test]
    fn not_pm2_is_an_error() {
        // Other JSON says what it is not.
        assert!(import("{}", "x", Path::new("/x")).is_err());
        assert!(import("module.exports = {}", "x", Path::new("/x"))
            .unwrap_err()
            .contains("JSON"));
    }
}
