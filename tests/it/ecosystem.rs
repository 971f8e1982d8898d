//! SPEC §16 from the outside: `import systemd`, `import pm2`, `export
//! systemd`, `help COMMAND` / `COMMAND --help` and the completion scripts.
//! Imported units are verified and started, so they are known to run.

use std::fs;
use std::path::PathBuf;
use std::process::Command;

use crate::util::{stderr, stdout, Home, WAIT};

fn fixture(name: &str) -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    p.to_str().expect("utf-8 path").to_string()
}

#[test]
fn import_systemd_nginx_unit_verifies_and_names_every_dropped_key() {
    // Debian's nginx unit (ExecStartPre, ExecReload, `-` ExecStop, KillMode, targets, [Install]):
    // the written unit passes verify, and stderr names each dropped key with why.
    let h = Home::new("import_systemd_nginx");
    let out = h.cmd(&["import", "systemd", &fixture("nginx.service")]);
    assert!(out.status.success(), "{}", stderr(&out));
    let written = fs::read_to_string(h.path("nginx.service")).expect("nginx.service written");
    assert!(written.contains("Type = \"forking\""), "{written}");
    assert!(
        written.contains("PIDFile = \"/run/nginx.pid\""),
        "{written}"
    );
    assert!(
        written.contains("ExecStart = \"/usr/sbin/nginx -g 'daemon on; master_process on;'\""),
        "{written}"
    );
    assert!(written.contains("TimeoutStopSec = 5"), "{written}");
    let err = stderr(&out);
    for dropped in [
        "ExecStartPre",
        "ExecReload",
        "KillMode=mixed",
        "After=network-online.target",
        "Wants=network-online.target",
        "[Install]",
        "ExecStop prefix `-`",
        "Documentation",
    ] {
        let line = err
            .lines()
            .find(|l| l.contains(&format!("dropped {dropped}")))
            .unwrap_or_else(|| panic!("{dropped} not reported:\n{err}"));
        assert!(line.split(": ").count() >= 4, "no reason given: {line}");
    }
    let verified = h.cmd(&["verify", "nginx"]);
    assert!(verified.status.success(), "{}", stderr(&verified));
}

#[test]
fn import_systemd_unit_runs_with_its_quoted_environment() {
    // Continuation lines, several quoted Environment assignments, a time span and specifiers
    // carry over: the imported unit starts and its shell sees the values.
    let h = Home::new("import_systemd_runs");
    let out = h.cmd(&["import", "systemd", &fixture("app.service")]);
    assert!(out.status.success(), "{}", stderr(&out));
    let written = fs::read_to_string(h.path("app.service")).expect("app.service written");
    assert!(
        written.contains("Description = \"An app  written for systemd\""),
        "{written}"
    );
    assert!(written.contains("RestartSec = 90"), "{written}");
    assert!(written.contains("TimeoutStopSec = 0.5"), "{written}");
    assert!(written.contains("After = [\"db\"]"), "{written}");
    assert!(written.contains("Restart = \"no\""), "{written}");
    let err = stderr(&out);
    for dropped in [
        "%h",
        "KillMode=process",
        "After=network.target",
        "ExecStartPre",
    ] {
        assert!(err.contains(dropped), "{dropped} not reported:\n{err}");
    }
    h.ok(&["verify", "app"]);
    h.ok(&["start", "app"]);
    h.wait_lines("out", 1);
    assert_eq!(h.lines("out"), ["hello world|a b|3|app.service|%h"]);
}

#[test]
fn import_of_several_files_names_every_one_that_does_not_verify_and_writes_none() {
    // Two units without ExecStart and a good one: both bad ones are named (not only the first), and nothing is written.
    let h = Home::new("import_names_every_failure");
    let src = h.root.join("src");
    fs::create_dir_all(&src).expect("mkdir");
    for name in ["a", "b"] {
        fs::write(
            src.join(format!("{name}.service")),
            "[Service]\nType=simple\n",
        )
        .expect("write");
    }
    let files: Vec<String> = ["a", "b"]
        .iter()
        .map(|n| src.join(format!("{n}.service")).display().to_string())
        .collect();
    let err = h.fails(
        1,
        &[
            "import",
            "systemd",
            &files[0],
            &fixture("nginx.service"),
            &files[1],
        ],
    );
    assert!(err.contains("imported as `a` does not verify"), "{err}");
    assert!(err.contains("imported as `b` does not verify"), "{err}");
    assert!(
        err.contains("2 of the 3 units imported do not verify; nothing was written"),
        "{err}"
    );
    assert!(!h.path("nginx.service").exists());
}

#[test]
fn import_never_overwrites_without_force() {
    // A second import of the same unit is refused and leaves the file alone;
    // --stdout prints without writing; --force replaces it.
    let h = Home::new("import_no_overwrite");
    h.ok(&["import", "systemd", &fixture("nginx.service")]);
    h.unit(
        "nginx",
        "# edited by hand\n[service]\nExecStart = \"sleep 1\"\n",
    );
    let err = h.fails(1, &["import", "systemd", &fixture("nginx.service")]);
    assert!(
        err.contains("already exists") && err.contains("--force"),
        "{err}"
    );
    let kept = fs::read_to_string(h.path("nginx.service")).expect("read");
    assert!(kept.starts_with("# edited by hand"), "{kept}");
    let printed = h.ok(&["import", "systemd", "--stdout", &fixture("nginx.service")]);
    assert!(
        printed.contains("[service]") && printed.contains("forking"),
        "{printed}"
    );
    let kept = fs::read_to_string(h.path("nginx.service")).expect("read");
    assert!(kept.starts_with("# edited by hand"), "{kept}");
    h.ok(&["import", "systemd", "--force", &fixture("nginx.service")]);
    let replaced = fs::read_to_string(h.path("nginx.service")).expect("read");
    assert!(replaced.contains("forking"), "{replaced}");
}

#[test]
fn import_pm2_ecosystem_verifies_and_runs() {
    // An ecosystem.config.json app (script run by its interpreter, args, cwd, env,
    // autorestart, restart_delay, kill_timeout) becomes a unit that starts; cron_restart is
    // a [timer] (see import_pm2_cron_restart_restarts_the_app_at_each_elapse).
    let h = Home::new("import_pm2_runs");
    fs::write(h.path("worker.sh"), "echo \"$QUEUE $*\" >> out\n").expect("write script");
    let eco = h.root.join("ecosystem.config.json");
    let json = serde_json::json!({"apps": [{
        "name": "worker", "script": "worker.sh", "args": ["--id", "7"],
        "cwd": h.units.to_str().expect("utf-8"), "env": {"QUEUE": "jobs"},
        "autorestart": false, "restart_delay": 250, "kill_timeout": 2000,
        "max_memory_restart": "200M", "cron_restart": "0 * * * *"
    }]});
    fs::write(&eco, json.to_string()).expect("write ecosystem");
    let out = h.cmd(&["import", "pm2", eco.to_str().expect("utf-8")]);
    assert!(out.status.success(), "{}", stderr(&out));
    let written = fs::read_to_string(h.path("worker.service")).expect("worker.service written");
    assert!(
        written.contains("ExecStart = \"bash worker.sh --id 7\""),
        "{written}"
    );
    assert!(written.contains("RestartSec = 0.25"), "{written}");
    assert!(written.contains("TimeoutStopSec = 2"), "{written}");
    assert!(written.contains("Restart = \"no\""), "{written}");
    assert!(
        written.contains("[timer]\nOnCalendar = \"0 * * * *\"\nOverlap = \"restart\"\n"),
        "{written}"
    );
    assert!(!stderr(&out).contains("cron_restart"), "{}", stderr(&out));
    h.ok(&["verify", "worker"]);
    h.ok(&["start", "worker"]);
    h.wait_lines("out", 1);
    assert_eq!(h.lines("out"), ["jobs --id 7"]);
}

#[test]
fn import_warns_of_what_this_host_lacks_and_writes_the_unit() {
    // An app whose cwd is not on this machine: the unit is written (it may be for another host), with a one-line warning naming the directory.
    let h = Home::new("import_warns_of_the_host");
    let eco = h.root.join("eco.json");
    fs::write(
        &eco,
        r#"{"apps":[{"name":"api","script":"/bin/true","interpreter":"none","cwd":"/nonexistent/api"}]}"#,
    )
    .expect("write ecosystem");
    let out = h.cmd(&["import", "pm2", eco.to_str().expect("utf-8")]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(h.path("api.service").exists());
    let err = stderr(&out);
    assert!(
        err.lines()
            .any(|l| l.contains("api: warning: on this host") && l.contains("/nonexistent/api")),
        "{err}"
    );
}

#[test]
fn import_pm2_cron_restart_restarts_the_app_at_each_elapse() {
    // cron_restart (every second here) becomes OnCalendar + Overlap = "restart" + OnBootSec = 0:
    // once enabled, the app runs at once and is restarted at each elapse, as PM2 does.
    let h = Home::new("import_pm2_cron_restart");
    fs::write(h.path("app.sh"), "echo \"$$\" >> out\nexec sleep 600\n").expect("write script");
    let eco = h.root.join("ecosystem.config.json");
    let json = serde_json::json!({"apps": [{
        "name": "app", "script": "app.sh", "cwd": h.units.to_str().expect("utf-8"),
        "cron_restart": "* * * * * *"
    }, {
        "name": "nightly", "script": "/bin/sleep", "args": "1000", "cron_restart": "0 3 * * *"
    }]});
    fs::write(&eco, json.to_string()).expect("write ecosystem");
    let out = h.cmd(&["import", "pm2", eco.to_str().expect("utf-8")]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stderr(&out).contains("dropped"), "{}", stderr(&out));
    h.ok(&["verify", "app"]);
    h.ok(&["enable", "app"]);
    // Started by one elapse, then the same app restarted by a later one: a new pid.
    h.wait_until("two runs of app", WAIT, || h.lines("out").len() >= 2);
    let runs = h.lines("out");
    assert_ne!(runs[0], runs[1], "{runs:?}");
    let timers = h.ok(&["timers", "--json"]);
    assert!(timers.contains("\"app\""), "{timers}");
    // An app restarted at 3 a.m. runs from its enable on, as under PM2.
    h.ok(&["enable", "nightly"]);
    h.wait_state("nightly", "running");
}

#[test]
fn import_systemd_timer_joins_its_service_and_fires() {
    // A .timer imported beside its .service becomes the service's [timer] (OnCalendar converted
    // from systemd's calendar syntax to cron); once enabled it runs the job at each elapse. A
    // .timer alone is refused, naming the command that imports both, and writes nothing.
    let h = Home::new("import_systemd_timer");
    let (service, timer) = (h.root.join("tick.service"), h.root.join("tick.timer"));
    fs::write(
        &service,
        "[Unit]\nDescription=Tick\n[Service]\nType=oneshot\nExecStart=/bin/sh -c 'date +%%s%%N >> ticks'\n",
    )
    .expect("write service");
    fs::write(
        &timer,
        "[Unit]\nDescription=Tick every second\n[Timer]\nOnCalendar=*-*-* *:*:0/1\nAccuracySec=1us\n[Install]\nWantedBy=timers.target\n",
    )
    .expect("write timer");
    let path = |p: &PathBuf| p.to_str().expect("utf-8").to_string();
    let alone = h.fails(1, &["import", "systemd", &path(&timer)]);
    assert!(
        alone.contains("import systemd tick.service tick.timer"),
        "{alone}"
    );
    assert!(!h.path("tick.service").exists());
    let out = h.cmd(&["import", "systemd", &path(&timer), &path(&service)]);
    assert!(out.status.success(), "{}", stderr(&out));
    let written = fs::read_to_string(h.path("tick.service")).expect("tick.service written");
    assert!(
        written.contains("[timer]\nOnCalendar = \"0-59/1 * * * * *\"\n"),
        "{written}"
    );
    let err = stderr(&out);
    assert!(err.contains("dropped AccuracySec=1us"), "{err}");
    assert!(err.contains("diakonos enable tick"), "{err}");
    h.ok(&["verify", "tick"]);
    h.ok(&["enable", "tick"]);
    h.wait_until("two runs of the job", WAIT, || h.lines("ticks").len() >= 2);
}

#[test]
fn import_pm2_jlist_output() {
    // `pm2 jlist` output: settings under pm2_env; the shell's variables are left out.
    let h = Home::new("import_pm2_jlist");
    let jlist = h.root.join("jlist.json");
    let json = serde_json::json!([{"pid": 4242, "name": "api", "pm2_env": {
        "pm_exec_path": "/srv/api/server.js", "pm_cwd": "/srv/api", "exec_interpreter": "node",
        "args": ["--port", "3000"], "autorestart": true, "kill_timeout": 1600, "status": "online",
        "env": {"PATH": "/usr/bin", "HOME": "/root", "PM2_HOME": "/root/.pm2", "PORT": "3000"}}}]);
    fs::write(&jlist, json.to_string()).expect("write jlist");
    let printed = h.ok(&["import", "pm2", "--stdout", jlist.to_str().expect("utf-8")]);
    assert!(
        printed.contains("ExecStart = \"node /srv/api/server.js --port 3000\""),
        "{printed}"
    );
    assert!(
        printed.contains("Environment = [\"PORT=3000\"]"),
        "{printed}"
    );
    assert!(!h.path("api.service").exists());
}

#[test]
fn export_systemd_writes_a_timer_that_imports_back() {
    // A unit with [timer] exports as NAME.service and NAME.timer (cron in systemd's calendar
    // syntax); importing both gives the same schedule back, and the imported unit fires.
    let h = Home::new("export_systemd_timer");
    h.unit(
        "job",
        "[service]\nType = \"oneshot\"\nExecStart = \"sh -c 'echo run >> runs'\"\n\
         [timer]\nOnCalendar = \"* * * * * *\"\nPersistent = true\n",
    );
    let dir = h.root.join("systemd");
    fs::create_dir_all(&dir).expect("mkdir");
    let to = dir.to_str().expect("utf-8");
    h.ok(&["export", "systemd", "job", "--dir", to]);
    let timer = fs::read_to_string(dir.join("job.timer")).expect("job.timer written");
    for line in [
        "OnCalendar=*-*-* *:*:*",
        "Persistent=true",
        "Unit=job.service",
        "WantedBy=timers.target",
    ] {
        assert!(timer.lines().any(|l| l == line), "no `{line}` in:\n{timer}");
    }
    fs::remove_file(h.path("job.service")).expect("remove job.service");
    let out = h.cmd(&[
        "import",
        "systemd",
        dir.join("job.service").to_str().expect("utf-8"),
        dir.join("job.timer").to_str().expect("utf-8"),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let back = fs::read_to_string(h.path("job.service")).expect("job.service imported");
    assert!(back.contains("OnCalendar = \"* * * * * *\""), "{back}");
    h.ok(&["enable", "job"]);
    h.wait_until("two runs", WAIT, || h.lines("runs").len() >= 2);
}

#[test]
fn export_systemd_writes_dependencies_and_restart_policy() {
    // export maps Requires/Wants (each also an After, as diakonos orders them), Restart,
    // RestartSec, Environment and User; the exported file imports back to the same keys.
    let h = Home::new("export_systemd");
    h.unit("db", "[service]\nExecStart = \"sleep 600\"\n");
    h.unit("cache", "[service]\nExecStart = \"sleep 600\"\n");
    h.unit(
        "web",
        "[unit]\nDescription = \"Web\"\nRequires = [\"db\"]\nWants = [\"cache\"]\n\
         [service]\nExecStart = \"sh -c 'echo \\\"$$X\\\"'\"\nRestart = \"always\"\nRestartSec = 2.5\n\
         Environment = [\"X=a b\"]\n",
    );
    let text = h.ok(&["export", "systemd", "web"]);
    for line in [
        "Requires=db.service",
        "Wants=cache.service",
        "After=db.service cache.service",
        "Restart=always",
        "RestartSec=2500ms",
        "Environment=\"X=a b\"",
        "WantedBy=multi-user.target",
    ] {
        assert!(text.lines().any(|l| l == line), "no `{line}` in:\n{text}");
    }
    let dir = h.root.join("systemd");
    fs::create_dir_all(&dir).expect("mkdir");
    h.ok(&[
        "export",
        "systemd",
        "web",
        "--dir",
        dir.to_str().expect("utf-8"),
    ]);
    let exported = dir.join("web.service");
    assert!(exported.exists());
    let err = h.fails(
        1,
        &[
            "export",
            "systemd",
            "web",
            "--dir",
            dir.to_str().expect("utf-8"),
        ],
    );
    assert!(err.contains("--force"), "{err}");
    let back = h.ok(&[
        "import",
        "systemd",
        "--stdout",
        exported.to_str().expect("utf-8"),
    ]);
    for key in [
        "Requires = [\"db\"]",
        "Wants = [\"cache\"]",
        "Restart = \"always\"",
        "RestartSec = 2.5",
        "Environment = [\"X=a b\"]",
    ] {
        assert!(
            back.contains(key),
            "no `{key}` after the round trip:\n{back}"
        );
    }
}

#[test]
fn help_start_and_start_help_describe_it_with_an_example() {
    // `help start` and `start --help` print the same text, with usage and an example;
    // every command has such a help.
    let h = Home::new("help_command");
    let a = h.bare(&["help", "start"]);
    let b = h.bare(&["start", "--help"]);
    assert!(a.status.success() && b.status.success());
    assert_eq!(stdout(&a), stdout(&b));
    let text = stdout(&a);
    assert!(
        text.contains("Usage: diakonos [OPTIONS] start NAME..."),
        "{text}"
    );
    assert!(text.contains("Example:\n  diakonos start"), "{text}");
    for cmd in [
        "list",
        "start",
        "stop",
        "restart",
        "status",
        "logs",
        "reload",
        "verify",
        "enable",
        "disable",
        "daemon-status",
        "kill",
        "daemon-upgrade",
        "daemon",
        "import",
        "export",
        "completions",
        "help",
    ] {
        let out = h.bare(&["help", cmd]);
        assert!(out.status.success(), "help {cmd}: {}", stderr(&out));
        assert!(stdout(&out).contains("Example:"), "help {cmd}");
    }
    let out = h.bare(&["help", "strat"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("did you mean `start`"),
        "{}",
        stderr(&out)
    );
}

fn shell_accepts(shell: &str, script: &str) {
    let out = Command::new(shell)
        .arg("-n")
        .arg(script)
        .output()
        .unwrap_or_else(|e| panic!("{shell} is needed (.ci/run installs it): {e}"));
    assert!(out.status.success(), "{shell} -n: {}", stderr(&out));
}

#[test]
fn completion_scripts_parse_in_bash_zsh_and_fish() {
    // Each shell reads its script without a syntax error.
    let h = Home::new("completions_parse");
    for shell in ["bash", "zsh", "fish"] {
        let script = h.ok(&["completions", shell]);
        let path = h.root.join(format!("diakonos.{shell}"));
        fs::write(&path, script).expect("write script");
        shell_accepts(shell, path.to_str().expect("utf-8"));
    }
}

/// A home whose service dir has units alpha and beta, and a second
/// directory `other` with gamma, for the completion tests.
fn completion_home(name: &str) -> (Home, PathBuf) {
    let h = Home::new(name);
    let other = h.root.join("other");
    fs::create_dir_all(&other).expect("mkdir");
    fs::write(
        other.join("gamma.service"),
        "[service]\nExecStart = \"sleep 1\"\n",
    )
    .expect("write");
    h.unit("alpha", "[service]\nExecStart = \"sleep 1\"\n");
    h.unit("beta", "[service]\nExecStart = \"sleep 1\"\n");
    (h, other)
}

/// Runs `shell -c probe` with the binary on PATH and the home's service
/// dir in the environment; its stdout's lines.
fn completion_probe(h: &Home, shell: &str, probe: &str) -> Vec<String> {
    let bin_dir = PathBuf::from(crate::util::BIN)
        .parent()
        .expect("bin dir")
        .to_path_buf();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new(shell)
        .arg("-c")
        .arg(probe)
        .current_dir(&h.root)
        .env("PATH", path)
        .env("DIAKONOS_HOME", &h.home)
        .env("DIAKONOS_SERVICE_DIR", &h.units)
        .output()
        .unwrap_or_else(|e| panic!("{shell} is needed (.ci/run installs it): {e}"));
    assert!(out.status.success(), "{shell}: {}", stderr(&out));
    stdout(&out).lines().map(str::to_owned).collect()
}

#[test]
fn bash_completes_commands_and_unit_names_without_starting_a_daemon() {
    // Completing `start ` lists the units of the service dir (the one in the
    // environment, or the one named on the line); no daemon is started for it.
    let (h, other) = completion_home("completions_bash_units");
    let script = h.root.join("diakonos.bash");
    fs::write(&script, h.ok(&["completions", "bash"])).expect("write script");
    let probe = format!(
        "source {s}\nCOMP_WORDS=(diakonos sta); COMP_CWORD=1; _diakonos; echo \"${{COMPREPLY[*]}}\"\n\
         COMP_WORDS=(diakonos start ''); COMP_CWORD=2; _diakonos; echo \"${{COMPREPLY[*]}}\"\n\
         COMP_WORDS=(diakonos --service-dir {o} start ''); COMP_CWORD=4; _diakonos; echo \"${{COMPREPLY[*]}}\"\n\
         COMP_WORDS=(diakonos export systemd ''); COMP_CWORD=3; _diakonos; echo \"${{COMPREPLY[*]}}\"\n\
         COMP_WORDS=(diakonos wait alpha --for ''); COMP_CWORD=4; _diakonos; echo \"${{COMPREPLY[*]}}\"\n\
         COMP_WORDS=(diakonos --service-dir = {o} start ''); COMP_CWORD=5; _diakonos; echo \"${{COMPREPLY[*]}}\"\n",
        s = script.display(),
        o = other.display()
    );
    let lines = completion_probe(&h, "bash", &probe);
    let text = lines.join("\n");
    assert_eq!(
        lines.first().map(String::as_str),
        Some("start status startup stats"),
        "{text}"
    );
    let units: Vec<&str> = lines.get(1).map_or(vec![], |l| l.split(' ').collect());
    assert!(units.starts_with(&["alpha", "beta"]), "{text}");
    let named: Vec<&str> = lines.get(2).map_or(vec![], |l| l.split(' ').collect());
    assert_eq!(named.first(), Some(&"gamma"), "{text}");
    assert!(!named.contains(&"alpha"), "{text}");
    // `export systemd ` goes on with unit names.
    let exported: Vec<&str> = lines.get(3).map_or(vec![], |l| l.split(' ').collect());
    assert!(exported.starts_with(&["alpha", "beta"]), "{text}");
    // `--service-dir=DIR` (three words to bash) names the directory too.
    let eq_form: Vec<&str> = lines.get(5).map_or(vec![], |l| l.split(' ').collect());
    assert_eq!(eq_form.first(), Some(&"gamma"), "{text}");
    // An option's values, not unit names.
    assert_eq!(
        lines.get(4).map(String::as_str),
        Some("up running healthy exited inactive failed"),
        "{text}"
    );
    assert!(h.daemon_pid().is_none(), "completing started a daemon");
}

#[test]
fn zsh_and_fish_complete_the_units_of_the_service_dir_on_the_line() {
    // As bash does: `--service-dir DIR` on the line names where the units are.
    let (h, other) = completion_home("completions_zsh_fish_units");
    let o = other.display();
    let fish = h.root.join("diakonos.fish");
    fs::write(&fish, h.ok(&["completions", "fish"])).expect("write script");
    let probe = format!(
        "source {s}; complete -C 'diakonos --service-dir {o} start '; echo =; complete -C 'diakonos start '; echo =; complete -C 'diakonos export systemd '; echo =; complete -C 'diakonos graph --format '",
        s = fish.display()
    );
    let lines = completion_probe(&h, "fish", &probe);
    assert_eq!(
        lines[..7],
        ["gamma", "=", "alpha", "beta", "=", "alpha", "beta"],
        "fish"
    );
    // An option's values (fish adds each one's description after a tab).
    let values: Vec<&str> = lines
        .iter()
        .skip(8)
        .map(|l| l.split('\t').next().unwrap_or(l))
        .collect();
    assert_eq!(values, ["dot", "mermaid"], "fish: {lines:?}");
    let zsh = h.root.join("diakonos.zsh");
    fs::write(&zsh, h.ok(&["completions", "zsh"])).expect("write script");
    let probe = format!(
        "autoload -U compinit && compinit -u -d {d}; source {s}; __diakonos_units diakonos --service-dir {o} start ''; echo =; __diakonos_units diakonos start ''",
        d = h.root.join("zcompdump").display(),
        s = zsh.display()
    );
    let lines = completion_probe(&h, "zsh", &probe);
    assert_eq!(lines, ["gamma", "=", "alpha", "beta"], "zsh");
    assert!(h.daemon_pid().is_none(), "completing started a daemon");
}
