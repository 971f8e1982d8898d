//! Command-line parsing: the usage text and lexopt into [`Global`] and
//! [`Command`] data (what `run` in the parent module then carries out).

use std::ffi::OsString;
use std::path::PathBuf;

use super::adhoc;
use crate::error::Error;
use crate::protocol::WaitFor;

pub const HELP: &str = "\
diakonos - a small service manager: one daemon, a thin client, TOML unit files

Usage: diakonos [OPTIONS] <COMMAND> [ARGS]

Commands:
  list [--wide]        every unit: name, state, pid, uptime, restarts, description
                       (--wide: CPU% and MEM too)
  start NAME...        start units and what they Require/Want; waits until they are up
  stop NAME...         stop units (and the units that Require them, first)
  restart NAME...      stop, then start; resets restart counters and the start limit
  status NAME          state, pid, last exit, failure reason, dependencies, last log lines
  logs [NAME] [-n N] [-f]  last N (default 20) lines of a service's output (no NAME: of
                       every unit, prefixed `NAME | `); -f follows
  reload               re-read the service directory and apply what changed
  verify [NAME...]     check unit files and what start would fail on here, without
                       starting a daemon (exit 1 on any error)
  enable NAME...       start these units whenever a daemon starts
  disable NAME...      undo enable
  timers               [timer] units: schedule, last run and result, next run, time left
  daemon-status        the daemon's pid, version, uptime, directories, units, memory
  kill                 stop every service, then the daemon
  daemon-upgrade       replace the daemon with one of this binary, keeping every service running
  daemon [--detach] [--metrics-file PATH]
                       run the daemon in the foreground (or in the background); keep
                       PATH current with `metrics` (also: $DIAKONOS_METRICS_FILE)
  run [OPTIONS] -- COMMAND [ARG...]
                       write NAME.service for COMMAND, load it and start it; prints
                       the file's path. --name NAME (default: the program's name),
                       --restart always|on-failure|no, --env K=V..., --cwd DIR,
                       --user U, --requires X..., --wants X..., --enable,
                       --force (replace an existing unit)
  delete NAME... [--purge-logs] [--force]
                       stop, disable and remove units (logs kept unless
                       --purge-logs); what Requires them is stopped first
  start|stop|restart --all
                       every unit; stop and restart leave out Protected ones
  startup [--print]    start the daemon at boot: add an @reboot crontab line (or a
                       systemd unit / OpenRC script where those run); --print shows it
  daemon --init [NAME...] [--exit-with UNIT] [--exit-when all-done|never] [--file-logs]
                       container entrypoint (implied as PID 1): start NAME... and the
                       enabled units, log to stderr, services to stdout/stderr, exit per policy
  metrics              the units' state in the Prometheus text format
  why NAME             why a unit is not up, down to the root cause (exit 0 when up, 1 if not)
  tree [NAME] [--reverse]  what a unit depends on (--reverse: what depends on it), with states
  graph [NAME...] [--format mermaid|dot]  the dependency graph, from the unit files
  stats [NAME...] [--watch SEC]  per unit, its whole process group: processes, CPU%, CPU
                       time, memory (main and group), threads, fds, uptime, restarts
  wait NAME... [--for up|running|healthy|exited|inactive|failed] [--timeout SEC]
                       block until every unit is in that state (default up); exit 1 on
                       timeout or when one waited on for up fails
  events [NAME...]     stay connected and print one line per state change
  import systemd FILE... | pm2 FILE
                       write unit files from systemd units or a PM2 ecosystem file
  export systemd NAME...  systemd unit files for these units
  completions bash|zsh|fish  a shell completion script
  help [COMMAND]       this help, or one command's help with an example

Options:
  --service-dir DIR    unit files (default: $DIAKONOS_SERVICE_DIR, else ./services)
  --home DIR           state, socket and logs (default: $DIAKONOS_HOME, else ~/.diakonos)
  --json               machine-readable output (list, status, stats, timers,
                       daemon-status; events: one object per line)
  --no-color           no colours (also when NO_COLOR is set or stdout is not a terminal)
  -h, --help           this help
  -V, --version        the version

Exit codes: 0 success, 1 the operation failed, 2 usage error, 3 daemon not running
(daemon-status). Any command that needs the daemon starts it when none answers.
";

/// Names the metrics file of an auto-started daemon (SPEC §16).
pub const METRICS_FILE_ENV: &str = "DIAKONOS_METRICS_FILE";

/// Options that apply to every command.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Global {
    pub home: Option<PathBuf>,
    pub service_dir: Option<PathBuf>,
    pub no_color: bool,
    pub json: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    List,
    Timers,
    Start(Vec<String>),
    Stop(Vec<String>),
    Restart(Vec<String>),
    Status(String),
    Logs {
        /// None: every unit.
        name: Option<String>,
        lines: usize,
        follow: bool,
    },
    Reload,
    Verify(Vec<String>),
    Enable(Vec<String>),
    Disable(Vec<String>),
    DaemonStatus,
    Kill,
    DaemonUpgrade,
    Daemon {
        detach: bool,
        /// `--init` (container entrypoint): what to start and when to exit.
        init: Option<crate::daemon::InitOptions>,
        /// `--metrics-file PATH`.
        metrics_file: Option<PathBuf>,
    },
    Help(Option<String>),
    Run(Box<adhoc::RunOpts>),
    /// `--force` is accepted and changes nothing (it once let a unit others
    /// Require be deleted; now they are stopped first either way).
    Delete {
        names: Vec<String>,
        purge_logs: bool,
    },
    /// `start --all`, `stop --all`, `restart --all`: the verb.
    All(String),
    /// `startup [--print]`: the boot entry (SPEC §16).
    Startup {
        print: bool,
    },
    Version,
    Why(String),
    Tree {
        name: Option<String>,
        reverse: bool,
    },
    Graph {
        names: Vec<String>,
        dot: bool,
    },
    Wait {
        names: Vec<String>,
        until: WaitFor,
        timeout_ms: Option<u64>,
    },
    Stats {
        names: Vec<String>,
        watch: Option<std::time::Duration>,
    },
    ListWide,
    Metrics,
    /// `events [NAME...]`: follow state changes.
    Events(Vec<String>),
    Import {
        from: String,
        files: Vec<PathBuf>,
        force: bool,
        stdout: bool,
    },
    Export {
        names: Vec<String>,
        dir: Option<PathBuf>,
        force: bool,
    },
    Completions(String),
}

/// Parses the arguments (without the program name).
/// The unit names a command was given, where its words are unit names.
fn unit_names(command: &Command) -> Option<&[String]> {
    Some(match command {
        Command::Start(n)
        | Command::Stop(n)
        | Command::Restart(n)
        | Command::Enable(n)
        | Command::Disable(n)
        | Command::Verify(n)
        | Command::Events(n) => n,
        Command::Delete { names, .. }
        | Command::Stats { names, .. }
        | Command::Wait { names, .. }
        | Command::Graph { names, .. }
        | Command::Export { names, .. } => names,
        Command::Status(n) | Command::Why(n) => std::slice::from_ref(n),
        Command::Logs { name: Some(n), .. } | Command::Tree { name: Some(n), .. } => {
            std::slice::from_ref(n)
        }
        _ => return None,
    })
}

/// A word given as a unit name that cannot be one is a usage error that
/// says what to give: `web.service` or `services/web.service` -> `web`.
fn check_unit_name(word: &str) -> Result<(), Error> {
    if crate::unit::is_valid_name(word) {
        return Ok(());
    }
    let file = word.rsplit('/').next().unwrap_or(word);
    let stem = file.strip_suffix(".service").unwrap_or(file);
    let message = if word.is_empty() {
        "an empty unit name".to_owned()
    } else if stem != file && crate::unit::is_valid_name(stem) {
        return Err(Error::Usage(format!(
            "`{word}` names a unit file; a unit is named without its directory and `.service`; hint: name it `{stem}`"
        )));
    } else {
        format!(
            "`{}` is not a unit name: letters, digits and `_.:-`, not starting with `-` or `.`",
            word.escape_default()
        )
    };
    Err(Error::Usage(message))
}

/// The path an option takes; an empty one (`--home "$UNSET"`) is a usage
/// error, not the current directory.
fn path_value(parser: &mut lexopt::Parser, option: &str) -> Result<PathBuf, Error> {
    let value = parser.value()?;
    if value.is_empty() {
        return Err(Error::Usage(format!(
            "{option} needs a path, not an empty string"
        )));
    }
    Ok(value.into())
}

pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<(Global, Command), Error> {
    use lexopt::prelude::*;
    // `run ... -- COMMAND ARGS`: what follows the first `--` is the
    // command, never our options.
    let mut args: Vec<OsString> = args.into_iter().collect();
    let tail: Vec<OsString> = match args.iter().position(|a| a == "--") {
        Some(at) => {
            let tail = args.split_off(at + 1);
            args.pop();
            tail
        }
        None => Vec::new(),
    };
    let mut run_opts = adhoc::RunOpts::default();
    let (mut run_flags, mut purge_logs, mut force, mut all) = (false, false, false, false);
    let mut parser = lexopt::Parser::from_args(args);
    let mut g = Global::default();
    let mut words: Vec<String> = Vec::new();
    let (mut lines, mut follow, mut detach) = (None, false, false);
    let (mut print, mut help) = (false, false);
    let mut init: Option<crate::daemon::InitOptions> = None;
    let (mut reverse, mut format) = (false, None::<String>);
    let (mut until, mut timeout_ms) = (None::<WaitFor>, None::<u64>);
    let (mut watch, mut wide) = (None::<std::time::Duration>, false);
    let mut metrics_file: Option<PathBuf> = None;
    let (mut to_stdout, mut out_dir) = (false, None::<PathBuf>);
    while let Some(arg) = parser.next()? {
        match arg {
            Long("home") => g.home = Some(path_value(&mut parser, "--home")?),
            Long("service-dir") => g.service_dir = Some(path_value(&mut parser, "--service-dir")?),
            Long("no-color") | Long("no-colour") => g.no_color = true,
            Long("json") => g.json = true,
            // Before or after the command: `--help start`, `start --help`.
            Short('h') | Long("help") => help = true,
            Short('V') | Long("version") => return Ok((g, Command::Version)),
            Short('n') | Long("lines") => {
                let v = parser.value()?.string()?;
                lines =
                    Some(v.parse::<usize>().map_err(|_| {
                        Error::Usage(format!("-n takes a number of lines, not `{v}`"))
                    })?);
            }
            Short('f') | Long("follow") => follow = true,
            Long("detach") => detach = true,
            Long("name") => {
                run_flags = true;
                run_opts.name = Some(parser.value()?.string()?);
            }
            Long("restart") => {
                run_flags = true;
                run_opts.restart = Some(parser.value()?.string()?);
            }
            Long("env") => {
                run_flags = true;
                run_opts.env.push(parser.value()?.string()?);
            }
            Long("cwd") => {
                run_flags = true;
                run_opts.cwd = Some(parser.value()?.into());
            }
            Long("user") => {
                run_flags = true;
                run_opts.user = Some(parser.value()?.string()?);
            }
            Long("requires") => {
                run_flags = true;
                run_opts.requires.push(parser.value()?.string()?);
            }
            Long("wants") => {
                run_flags = true;
                run_opts.wants.push(parser.value()?.string()?);
            }
            Long("enable") => {
                run_flags = true;
                run_opts.enable = true;
            }
            Long("force") => force = true,
            Long("purge-logs") => purge_logs = true,
            Long("all") => all = true,
            Long("print") => print = true,
            Long("init") => {
                init.get_or_insert_with(Default::default);
            }
            Long("exit-with") => {
                init.get_or_insert_with(Default::default).exit_with =
                    Some(parser.value()?.string()?)
            }
            Long("exit-when") => {
                let v = parser.value()?.string()?;
                init.get_or_insert_with(Default::default).never = match v.as_str() {
                    "all-done" => false,
                    "never" => true,
                    _ => {
                        return Err(Error::Usage(format!(
                            "--exit-when takes `all-done` or `never`, not `{v}`"
                        )))
                    }
                };
            }
            Long("file-logs") => init.get_or_insert_with(Default::default).file_logs = true,
            Long("reverse") => reverse = true,
            Long("format") => format = Some(parser.value()?.string()?),
            Long("for") => {
                let v = parser.value()?.string()?;
                until = Some(
                    WaitFor::ALL
                        .into_iter()
                        .find(|w| w.as_str() == v)
                        .ok_or_else(|| {
                            Error::Usage(format!(
                                "--for takes up, running, healthy, exited, inactive or failed, not `{v}`"
                            ))
                        })?,
                );
            }
            Long("wide") => wide = true,
            Long("metrics-file") => metrics_file = Some(path_value(&mut parser, "--metrics-file")?),
            Long("watch") => {
                let v = parser.value()?.string()?;
                let secs = v
                    .parse::<f64>()
                    .ok()
                    .filter(|s| s.is_finite() && *s >= 0.1 && *s < 1e6)
                    .ok_or_else(|| {
                        Error::Usage(format!(
                            "--watch takes a number of seconds (at least 0.1), not `{v}`"
                        ))
                    })?;
                watch = Some(std::time::Duration::from_secs_f64(secs));
            }
            Long("timeout") => {
                let v = parser.value()?.string()?;
                let secs = v
                    .parse::<f64>()
                    .ok()
                    .filter(|s| s.is_finite() && *s >= 0.0 && *s < 1e9)
                    .ok_or_else(|| {
                        Error::Usage(format!(
                            "--timeout takes a number of seconds from 0 to 999999999, not `{v}`"
                        ))
                    })?;
                timeout_ms = Some((secs * 1000.0).round() as u64);
            }
            Long("stdout") => to_stdout = true,
            Long("dir") => out_dir = Some(path_value(&mut parser, "--dir")?),
            Value(v) => words.push(v.string()?),
            _ if help => {}
            // `run x ls -la`: the command's own options went to us.
            _ if words.first().is_some_and(|w| w == "run") => {
                return Err(Error::Usage(format!(
                    "{}; the command goes after `--`: diakonos run [OPTIONS] -- COMMAND [ARG...]",
                    arg.unexpected()
                )))
            }
            _ => return Err(arg.unexpected().into()),
        }
    }
    if help {
        return Ok((g, Command::Help(words.first().cloned())));
    }
    let Some((cmd, rest)) = words.split_first() else {
        return Err(Error::Usage("no command given".into()));
    };
    let mut rest = rest.to_vec();
    let is_run = cmd == "run";
    if is_run {
        if !rest.is_empty() && !tail.is_empty() {
            return Err(Error::Usage(format!(
                "`run` takes the command after `--`, not `{}` before it",
                rest.join(" ")
            )));
        }
        let mut command = std::mem::take(&mut rest);
        for t in tail {
            command.push(t.into_string().map_err(not_utf8)?);
        }
        run_opts.command = command;
        run_opts.force = force;
    } else {
        for t in tail {
            rest.push(t.into_string().map_err(not_utf8)?);
        }
    }
    let verb_all = matches!(cmd.as_str(), "start" | "stop" | "restart") && all;
    if verb_all && !rest.is_empty() {
        return Err(Error::Usage(format!("`{cmd} --all` takes no unit names")));
    }
    let names = |what: &str| -> Result<Vec<String>, Error> {
        if rest.is_empty() {
            Err(Error::Usage(format!(
                "`{what}` needs at least one unit name"
            )))
        } else {
            Ok(rest.clone())
        }
    };
    let one = |what: &str| -> Result<String, Error> {
        match rest.as_slice() {
            [name] => Ok(name.clone()),
            [] => Err(Error::Usage(format!("`{what}` needs a unit name"))),
            _ => Err(Error::Usage(format!("`{what}` takes one unit name"))),
        }
    };
    let none = |what: &str| -> Result<(), Error> {
        if rest.is_empty() {
            Ok(())
        } else {
            Err(Error::Usage(format!("`{what}` takes no arguments")))
        }
    };
    let command =
        match cmd.as_str() {
            "list" | "ls" if wide => none("list").map(|()| Command::ListWide)?,
            "list" | "ls" => none("list").map(|()| Command::List)?,
            _ if verb_all => Command::All(cmd.clone()),
            "run" => {
                adhoc::check_run(&run_opts)?;
                Command::Run(Box::new(run_opts))
            }
            "delete" | "del" | "rm" => Command::Delete {
                names: names("delete")?,
                purge_logs,
            },
            "stats" => Command::Stats {
                names: rest.clone(),
                watch,
            },
            "timers" => none("timers").map(|()| Command::Timers)?,
            "start" => Command::Start(names("start")?),
            "stop" => Command::Stop(names("stop")?),
            "restart" => Command::Restart(names("restart")?),
            "status" => Command::Status(one("status")?),
            "logs" => Command::Logs {
                name: match rest.as_slice() {
                    [] => None,
                    [name] => Some(name.clone()),
                    _ => return Err(Error::Usage("`logs` takes at most one unit name".into())),
                },
                lines: lines.unwrap_or(20),
                follow,
            },
            "reload" => none("reload").map(|()| Command::Reload)?,
            "verify" => Command::Verify(rest.clone()),
            "enable" => Command::Enable(names("enable")?),
            "disable" => Command::Disable(names("disable")?),
            "daemon-status" => none("daemon-status").map(|()| Command::DaemonStatus)?,
            "kill" => none("kill").map(|()| Command::Kill)?,
            "daemon-upgrade" => none("daemon-upgrade").map(|()| Command::DaemonUpgrade)?,
            "daemon" => match init.take() {
                Some(mut options) => {
                    options.units = rest.clone();
                    Command::Daemon {
                        detach,
                        init: Some(options),
                        metrics_file: metrics_file.clone(),
                    }
                }
                None => none("daemon").map(|()| Command::Daemon {
                    detach,
                    init: None,
                    metrics_file: metrics_file.clone(),
                })?,
            },
            "startup" => none("startup").map(|()| Command::Startup { print })?,
            "metrics" => none("metrics").map(|()| Command::Metrics)?,
            "help" => match rest.as_slice() {
                [] => Command::Help(None),
                [name] => Command::Help(Some(name.clone())),
                _ => return Err(Error::Usage("`help` takes one command name".into())),
            },
            "why" => Command::Why(one("why")?),
            "tree" => Command::Tree {
                name: match rest.as_slice() {
                    [] => None,
                    [name] => Some(name.clone()),
                    _ => return Err(Error::Usage("`tree` takes at most one unit name".into())),
                },
                reverse,
            },
            "wait" => Command::Wait {
                names: names("wait")?,
                until: until.unwrap_or(WaitFor::Up),
                timeout_ms,
            },
            "graph" => Command::Graph {
                names: rest.clone(),
                dot: match format.as_deref() {
                    None | Some("mermaid") => false,
                    Some("dot") => true,
                    Some(other) => {
                        return Err(Error::Usage(format!(
                            "--format takes `mermaid` or `dot`, not `{other}`"
                        )))
                    }
                },
            },
            "events" => Command::Events(rest.clone()),
            "import" => {
                let (from, files) = rest.split_first().ok_or_else(|| {
                    Error::Usage("`import` needs `systemd FILE...` or `pm2 FILE`".into())
                })?;
                match (from.as_str(), files.len()) {
                    ("systemd", 1..) | ("pm2", 1) => {}
                    ("systemd", _) => {
                        return Err(Error::Usage("`import systemd` needs unit files".into()))
                    }
                    ("pm2", _) => return Err(Error::Usage(
                        "`import pm2` takes one file (ecosystem.config.json or `pm2 jlist` output)"
                            .into(),
                    )),
                    (other, _) => {
                        return Err(Error::Usage(format!(
                            "cannot import from `{other}`; expected `systemd` or `pm2`"
                        )))
                    }
                }
                Command::Import {
                    from: from.clone(),
                    files: files.iter().map(PathBuf::from).collect(),
                    force,
                    stdout: to_stdout,
                }
            }
            "export" => match rest.split_first() {
                Some((to, names)) if to == "systemd" && !names.is_empty() => Command::Export {
                    names: names.to_vec(),
                    dir: out_dir.clone(),
                    force,
                },
                Some((to, _)) if to != "systemd" => {
                    return Err(Error::Usage(format!(
                        "cannot export to `{to}`; expected `systemd`"
                    )))
                }
                _ => return Err(Error::Usage("`export` needs `systemd NAME...`".into())),
            },
            "completions" => match rest.as_slice() {
                [shell] if ["bash", "zsh", "fish", "units"].contains(&shell.as_str()) => {
                    Command::Completions(shell.clone())
                }
                _ => {
                    return Err(Error::Usage(
                        "`completions` takes one shell: bash, zsh or fish".into(),
                    ))
                }
            },
            other => {
                let hint = crate::unit::suggest(other, &COMMANDS)
                    .map(|s| format!(" (did you mean `{s}`?)"))
                    .unwrap_or_default();
                return Err(Error::Usage(format!("unknown command `{other}`{hint}")));
            }
        };
    if let Some(names) = unit_names(&command) {
        names.iter().try_for_each(|n| check_unit_name(n))?;
    }
    let is_import = matches!(command, Command::Import { .. });
    let is_export = matches!(command, Command::Export { .. });
    if to_stdout && !is_import {
        return Err(Error::Usage("--stdout only goes with `import`".into()));
    }
    if out_dir.is_some() && !is_export {
        return Err(Error::Usage("--dir only goes with `export`".into()));
    }
    let is_logs = matches!(command, Command::Logs { .. });
    if (lines.is_some() || follow) && !is_logs {
        return Err(Error::Usage("-n and -f only go with `logs`".into()));
    }
    if run_flags && !is_run {
        return Err(Error::Usage(
            "--name, --restart, --env, --cwd, --user, --requires, --wants and --enable only go with `run`".into(),
        ));
    }
    if force
        && !matches!(
            command,
            Command::Run(_)
                | Command::Delete { .. }
                | Command::Import { .. }
                | Command::Export { .. }
        )
    {
        return Err(Error::Usage(
            "--force only goes with `run`, `delete`, `import` and `export`".into(),
        ));
    }
    if purge_logs && !matches!(command, Command::Delete { .. }) {
        return Err(Error::Usage("--purge-logs only goes with `delete`".into()));
    }
    if all && !verb_all {
        return Err(Error::Usage(
            "--all goes with start, stop and restart".into(),
        ));
    }
    if print && !matches!(command, Command::Startup { .. }) {
        return Err(Error::Usage("--print only goes with `startup`".into()));
    }
    if init.is_some() {
        return Err(Error::Usage(
            "--init, --exit-with, --exit-when and --file-logs only go with `daemon`".into(),
        ));
    }
    if detach && matches!(command, Command::Daemon { init: Some(_), .. }) {
        return Err(Error::Usage(
            "--init runs in the foreground; leave out --detach".into(),
        ));
    }
    if reverse && !matches!(command, Command::Tree { .. }) {
        return Err(Error::Usage("--reverse only goes with `tree`".into()));
    }
    if wide && !matches!(command, Command::ListWide) {
        return Err(Error::Usage("--wide only goes with `list`".into()));
    }
    if watch.is_some() && !matches!(command, Command::Stats { .. }) {
        return Err(Error::Usage("--watch only goes with `stats`".into()));
    }
    if (until.is_some() || timeout_ms.is_some()) && !matches!(command, Command::Wait { .. }) {
        return Err(Error::Usage(
            "--for and --timeout only go with `wait`".into(),
        ));
    }
    if format.is_some() && !matches!(command, Command::Graph { .. }) {
        return Err(Error::Usage("--format only goes with `graph`".into()));
    }
    if metrics_file.is_some() && !matches!(command, Command::Daemon { .. }) {
        return Err(Error::Usage(
            "--metrics-file only goes with `daemon`".into(),
        ));
    }
    if detach && !matches!(command, Command::Daemon { .. }) {
        return Err(Error::Usage("--detach only goes with `daemon`".into()));
    }
    let json_ok = matches!(
        command,
        Command::List
            | Command::Status(_)
            | Command::DaemonStatus
            | Command::Stats { .. }
            | Command::ListWide
            | Command::Timers
            | Command::Events(_)
    );
    if g.json && !json_ok {
        return Err(Error::Usage(
            "--json goes with list, status, stats, timers, daemon-status and events".into(),
        ));
    }
    Ok((g, command))
}

pub(super) const COMMANDS: [&str; 29] = [
    "list",
    "timers",
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
    "help",
    "run",
    "delete",
    "startup",
    "why",
    "tree",
    "graph",
    "wait",
    "stats",
    "metrics",
    "events",
    "import",
    "export",
    "completions",
];

/// The usage error of a command-line word that is not UTF-8 (shown with
/// its bad bytes replaced).
fn not_utf8(word: std::ffi::OsString) -> Error {
    let shown = crate::unit::esc_all(&word.to_string_lossy());
    Error::Usage(format!("argument `{shown}` is not valid UTF-8"))
}
