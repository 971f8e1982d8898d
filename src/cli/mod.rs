//! The command line: lexopt -> [`Command`] data, then one function per
//! command that asks the daemon (through `client`) and prints (through
//! `render`). Nothing here supervises anything.

pub mod adhoc;
pub mod client;
pub mod completions;
pub mod depview;
pub mod export;
pub mod help;
pub mod import;
pub mod logs;
pub mod render;
pub mod startup;
pub mod stats;

use std::ffi::OsString;
use std::path::PathBuf;

use crate::daemon::{self, DaemonOptions};
use crate::error::Error;
use crate::graph::{self, DepInput};
use crate::paths::{self, Home};
use crate::protocol::{DaemonInfo, Request, Response, WaitFor};
use crate::unit;

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
                       --purge-logs); --force also when others Require them
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
  --json               machine-readable output (list, status, daemon-status, events)
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
    Delete {
        names: Vec<String>,
        purge_logs: bool,
        force: bool,
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
    let mut print = false;
    let mut init: Option<crate::daemon::InitOptions> = None;
    let (mut reverse, mut format) = (false, None::<String>);
    let (mut until, mut timeout_ms) = (None::<WaitFor>, None::<u64>);
    let (mut watch, mut wide) = (None::<std::time::Duration>, false);
    let mut metrics_file: Option<PathBuf> = None;
    let (mut to_stdout, mut out_dir) = (false, None::<PathBuf>);
    while let Some(arg) = parser.next()? {
        match arg {
            Long("home") => g.home = Some(parser.value()?.into()),
            Long("service-dir") => g.service_dir = Some(parser.value()?.into()),
            Long("no-color") | Long("no-colour") => g.no_color = true,
            Long("json") => g.json = true,
            Short('h') | Long("help") => return Ok((g, Command::Help(words.first().cloned()))),
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
            Long("metrics-file") => metrics_file = Some(parser.value()?.into()),
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
                        Error::Usage(format!("--timeout takes a number of seconds, not `{v}`"))
                    })?;
                timeout_ms = Some((secs * 1000.0).round() as u64);
            }
            Long("stdout") => to_stdout = true,
            Long("dir") => out_dir = Some(parser.value()?.into()),
            Value(v) => words.push(v.string()?),
            _ => return Err(arg.unexpected().into()),
        }
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
            command.push(
                t.into_string()
                    .map_err(|t| Error::Usage(format!("argument {t:?} is not valid UTF-8")))?,
            );
        }
        run_opts.command = command;
        run_opts.force = force;
    } else {
        for t in tail {
            rest.push(
                t.into_string()
                    .map_err(|t| Error::Usage(format!("argument {t:?} is not valid UTF-8")))?,
            );
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
                force,
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

const COMMANDS: [&str; 29] = [
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

/// Runs one command; the error carries the exit code.
pub fn run(g: Global, cmd: Command) -> Result<(), Error> {
    let out = render::Output::new(g.no_color, g.json);
    match cmd {
        Command::Help(None) => {
            print!("{HELP}");
            Ok(())
        }
        Command::Help(Some(name)) => match help::find(&name) {
            Some(c) => {
                print!("{}", help::render(c));
                Ok(())
            }
            None => {
                let hint = crate::unit::suggest(&name, &COMMANDS)
                    .map(|s| format!(" (did you mean `{s}`?)"))
                    .unwrap_or_default();
                Err(Error::Usage(format!("no command `{name}`{hint}")))
            }
        },
        Command::Import {
            from,
            files,
            force,
            stdout,
        } => import(&g, &out, &from, &files, force, stdout),
        Command::Export { names, dir, force } => export(&g, &out, &names, dir, force),
        Command::Completions(shell) => {
            match shell.as_str() {
                "bash" => print!("{}", completions::bash()),
                "zsh" => print!("{}", completions::zsh()),
                "fish" => print!("{}", completions::fish()),
                _ => unit_names(&g, &out),
            }
            Ok(())
        }
        Command::Version => {
            println!("diakonos {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        Command::Run(opts) => adhoc::run(&g, &out, *opts),
        Command::Delete {
            names,
            purge_logs,
            force,
        } => adhoc::delete(&g, &out, &names, purge_logs, force),
        Command::All(verb) => adhoc::all(&g, &out, &verb),
        Command::Startup { print } => startup_entry(&g, print),
        Command::Daemon {
            detach,
            init,
            metrics_file,
        } => run_daemon(&g, detach, init, metrics_file),
        Command::Metrics => {
            let version = match client::request(&g, Request::DaemonStatus, true)? {
                Response::Daemon(info) => info.version,
                other => return Err(client::unexpected(&other)),
            };
            let fired = match client::request(&g, Request::Timers, true)? {
                Response::Timers(rows) => crate::metrics::last_triggers(&rows),
                other => return Err(client::unexpected(&other)),
            };
            match client::request(&g, Request::List, true)? {
                Response::Units(units) => {
                    print!("{}", crate::metrics::render(&units, &fired, &version));
                    Ok(())
                }
                other => Err(client::unexpected(&other)),
            }
        }
        Command::Verify(names) => verify(&g, &names, &out),
        Command::Logs {
            name,
            lines,
            follow,
        } => {
            let home = Home::resolve(g.home.clone()).map_err(Error::failed)?;
            match name {
                Some(name) => logs::show(&home, &name, lines, follow),
                None => logs::show_all(&home, lines, follow),
            }
        }
        Command::DaemonStatus => match client::request(&g, Request::DaemonStatus, false) {
            Ok(Response::Daemon(info)) => {
                out.daemon(&info);
                Ok(())
            }
            Ok(other) => Err(client::unexpected(&other)),
            Err(Error::NotRunning(_)) => {
                if g.json {
                    println!("{{\"running\":false}}");
                } else {
                    println!("not running");
                }
                Err(Error::NotRunning(String::new()))
            }
            Err(e) => Err(e),
        },
        Command::Kill => {
            let daemon = client::daemon_identity(&g);
            match client::request(&g, Request::Kill, false) {
                Ok(Response::Bye) => {
                    client::wait_for_daemon_exit(daemon)?;
                    out.note("daemon stopped");
                    Ok(())
                }
                Ok(other) => Err(client::unexpected(&other)),
                Err(Error::NotRunning(_)) => {
                    out.note("no daemon was running");
                    Ok(())
                }
                Err(e) => Err(e),
            }
        }
        Command::DaemonUpgrade => daemon_upgrade(&g, &out),
        Command::Timers => match client::request(&g, Request::Timers, true)? {
            Response::Timers(rows) => {
                out.timers(&rows);
                Ok(())
            }
            other => Err(client::unexpected(&other)),
        },
        Command::Events(names) => client::events(&g, names, |rec| out.event(rec)),
        Command::List => match client::request(&g, Request::List, true)? {
            Response::Units(units) => {
                out.list(&units);
                Ok(())
            }
            other => Err(client::unexpected(&other)),
        },
        Command::Status(name) => match client::request(&g, Request::Status(name), true)? {
            Response::Status(status) => {
                out.status(&status);
                Ok(())
            }
            other => Err(client::unexpected(&other)),
        },
        Command::Reload => match client::request(&g, Request::Reload, true)? {
            Response::Reloaded(report) => {
                out.reload(&report);
                if report.invalid.is_empty() {
                    return Ok(());
                }
                let names: Vec<&str> = report.invalid.iter().map(|(n, _)| n.as_str()).collect();
                Err(Error::failed_hint(
                    format!(
                        "{} unit(s) did not load: {}; the others were applied",
                        names.len(),
                        names.join(", ")
                    ),
                    format!(
                        "fix them, then `diakonos verify {}` and `diakonos reload`",
                        names.join(" ")
                    ),
                ))
            }
            other => Err(client::unexpected(&other)),
        },
        Command::Start(names) => job(&g, &out, "start", Request::Start(names)),
        Command::Stop(names) => job(&g, &out, "stop", Request::Stop(names)),
        Command::Restart(names) => job(&g, &out, "restart", Request::Restart(names)),
        Command::Enable(names) => job(&g, &out, "enable", Request::Enable(names)),
        Command::Disable(names) => job(&g, &out, "disable", Request::Disable(names)),
        Command::Why(name) => match client::request(&g, Request::Why(name), true)? {
            Response::Why(report) => {
                for line in &report.lines {
                    println!("{line}");
                }
                // Exit 1 when it is not up; the lines above said why.
                if report.up {
                    Ok(())
                } else {
                    Err(Error::failed(""))
                }
            }
            other => Err(client::unexpected(&other)),
        },
        Command::Tree { name, reverse } => {
            let view = depview::load(&g, &out)?;
            let root = match name {
                Some(n) => Some(depview::ids(&view, &[n])?[0]),
                None => None,
            };
            print!("{}", depview::tree(&view, root, reverse));
            Ok(())
        }
        Command::Wait {
            names,
            until,
            timeout_ms,
        } => {
            let req = Request::Wait {
                names,
                until,
                timeout_ms,
            };
            match client::request(&g, req, true)? {
                Response::Job(results) => {
                    let bad: Vec<String> = results
                        .iter()
                        .filter(|r| !r.ok)
                        .map(|r| match r.message.as_deref() {
                            Some(m) if !m.is_empty() => format!("{} is {m}", r.name),
                            _ => format!("{} is {}", r.name, r.state.as_str()),
                        })
                        .collect();
                    if bad.is_empty() {
                        return Ok(());
                    }
                    Err(Error::failed_hint(
                        format!("wait: {}", bad.join("; ")),
                        "`diakonos why NAME` says why a unit is not up",
                    ))
                }
                other => Err(client::unexpected(&other)),
            }
        }
        Command::ListWide => match client::request(&g, Request::List, true)? {
            Response::Units(units) => {
                let kept = stats_kept(&g);
                stats::list_wide(&units, g.json, kept.as_deref());
                Ok(())
            }
            other => Err(client::unexpected(&other)),
        },
        Command::Stats { names, watch } => {
            let ask = || -> Result<Vec<crate::protocol::UnitInfo>, Error> {
                match client::request(&g, Request::List, true)? {
                    Response::Units(units) => pick(units, &names),
                    other => Err(client::unexpected(&other)),
                }
            };
            let kept = stats_kept(&g);
            stats::run(ask, g.json, watch, kept.as_deref())
        }
        Command::Graph { names, dot } => {
            let view = depview::load(&g, &out)?;
            let ids = depview::closure(&view, &depview::ids(&view, &names)?);
            if dot {
                print!("{}", depview::dot(&view, &ids));
            } else {
                print!("{}", depview::mermaid(&view, &ids));
            }
            Ok(())
        }
    }
}

/// The units named (in that order), or all of them; an unknown name is an error.
fn pick(
    units: Vec<crate::protocol::UnitInfo>,
    names: &[String],
) -> Result<Vec<crate::protocol::UnitInfo>, Error> {
    if names.is_empty() {
        return Ok(units);
    }
    names
        .iter()
        .map(|n| {
            units.iter().find(|u| &u.name == n).cloned().ok_or_else(|| {
                Error::failed_hint(
                    format!("no unit named `{n}`"),
                    "`diakonos list` shows the units",
                )
            })
        })
        .collect()
}

/// `import systemd FILE...` / `import pm2 FILE`: unit files in the
/// service dir (the daemon's when one runs; none is started).
fn import(
    g: &Global,
    out: &render::Output,
    from: &str,
    files: &[PathBuf],
    force: bool,
    stdout: bool,
) -> Result<(), Error> {
    let dir = verify_dir(g, out);
    let mut drafts = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(file).map_err(|e| {
            Error::failed_hint(
                format!("cannot read {}: {e}", file.display()),
                "name a readable file",
            )
        })?;
        let origin = file.display().to_string();
        if from == "pm2" {
            let base = paths::absolute(file.parent().unwrap_or(std::path::Path::new(".")));
            let found = import::pm2::import(&text, &origin, &base).map_err(|e| {
                Error::failed_hint(
                    format!("cannot import {}: {e}", file.display()),
                    "pass an ecosystem.config.json or the output of `pm2 jlist`",
                )
            })?;
            drafts.extend(found);
        } else {
            let base = file
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            drafts.push(import::systemd::import(&text, &base, &origin));
        }
    }
    import::emit(
        &drafts,
        &import::Options {
            dir: &dir,
            force,
            stdout,
        },
    )
}

/// `export systemd NAME...`: systemd units printed, or written into `to`.
fn export(
    g: &Global,
    out: &render::Output,
    names: &[String],
    to: Option<PathBuf>,
    force: bool,
) -> Result<(), Error> {
    let dir = verify_dir(g, out);
    let loaded = unit::load_dir(&dir, &unit::hostname()).map_err(|e| {
        Error::failed_hint(
            format!("cannot read the service directory {}: {e}", dir.display()),
            "pass --service-dir DIR or set DIAKONOS_SERVICE_DIR",
        )
    })?;
    let mut texts = Vec::new();
    for name in names {
        match loaded.units.get(name) {
            Some(Ok(u)) => texts.push((name, export::systemd_unit(u))),
            Some(Err(errors)) => {
                let first = errors.first().map(ToString::to_string).unwrap_or_default();
                return Err(Error::failed_hint(
                    format!(
                        "`{name}` does not load: {}",
                        first.lines().next().unwrap_or_default()
                    ),
                    format!("fix it (`diakonos verify {name}`), then export again"),
                ));
            }
            None => {
                return Err(Error::failed_hint(
                    format!("no unit named `{name}` in {}", dir.display()),
                    format!("a unit is a file {}/{name}.service", dir.display()),
                ))
            }
        }
    }
    let Some(to) = to else {
        for (i, (_, text)) in texts.iter().enumerate() {
            print!("{}{text}", if i > 0 { "\n" } else { "" });
        }
        return Ok(());
    };
    for (name, _) in &texts {
        let path = to.join(format!("{name}.service"));
        if !force && path.exists() {
            return Err(Error::failed_hint(
                format!("{} already exists; nothing was written", path.display()),
                "pass --force to overwrite it",
            ));
        }
    }
    for (name, text) in &texts {
        let path = to.join(format!("{name}.service"));
        std::fs::write(&path, text)
            .map_err(|e| Error::failed(format!("cannot write {}: {e}", path.display())))?;
        out.note(&format!("wrote {}", path.display()));
    }
    Ok(())
}

/// `completions units`: the unit names of the service dir, one a line (for
/// the completion scripts; never starts a daemon).
fn unit_names(g: &Global, out: &render::Output) {
    let dir = verify_dir(g, out);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return;
    };
    let mut names: Vec<String> = entries
        .filter_map(|e| {
            let name = e.ok()?.file_name().to_string_lossy().into_owned();
            let stem = name.strip_suffix(".service")?;
            Some(stem.split('@').next().unwrap_or(stem).to_string())
        })
        .collect();
    names.sort();
    names.dedup();
    for n in names {
        println!("{n}");
    }
}

fn job(g: &Global, out: &render::Output, verb: &str, req: Request) -> Result<(), Error> {
    match client::request(g, req, true)? {
        Response::Job(results) => out.job(verb, &results),
        other => Err(client::unexpected(&other)),
    }
}

/// `daemon-upgrade` (SPEC §17): the running daemon hands its services over
/// to a daemon of this binary; no service stops.
fn daemon_upgrade(g: &Global, out: &render::Output) -> Result<(), Error> {
    let status = |g: &Global| match client::request(g, Request::DaemonStatus, false) {
        Ok(Response::Daemon(info)) => Ok(Some(*info)),
        Ok(other) => Err(client::unexpected(&other)),
        Err(Error::NotRunning(_)) => Ok(None),
        Err(e) => Err(e),
    };
    let Some(before) = status(g)? else {
        out.note("no daemon was running; nothing to upgrade");
        return Ok(());
    };
    client::hand_over(g)?;
    let Some(after) = status(g)? else {
        return Err(Error::failed_hint(
            "the new daemon is not running after the hand-over",
            "run `diakonos list`: a daemon starts and adopts the services",
        ));
    };
    out.note(&format!(
        "daemon upgraded: pid {} (diakonos {}, protocol {}) -> pid {} (diakonos {}, protocol {}); every service kept running",
        before.pid, before.version, before.protocol, after.pid, after.version, after.protocol
    ));
    Ok(())
}

fn run_daemon(
    g: &Global,
    detach: bool,
    init: Option<crate::daemon::InitOptions>,
    metrics_file: Option<PathBuf>,
) -> Result<(), Error> {
    // PID 1 (a container's entrypoint) is always the init mode.
    let init = init.or_else(|| (std::process::id() == 1).then(Default::default));
    let home = Home::resolve(g.home.clone()).map_err(Error::failed)?;
    // The flag, else the environment (how an auto-started daemon gets it).
    let metrics_file = metrics_file
        .or_else(|| {
            std::env::var_os(METRICS_FILE_ENV)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        })
        .map(|p| std::path::absolute(&p).unwrap_or(p));
    if detach {
        if let Some(path) = &metrics_file {
            // The daemon started below inherits it.
            std::env::set_var(METRICS_FILE_ENV, path);
        }
    }
    let (dir, named) = paths::service_dir(g.service_dir.clone());
    if !detach {
        // (`--detach` asks through the client, which checks the same.)
        let effective = if named {
            dir.clone()
        } else {
            client::daemon_default_dir(&home, &dir)
        };
        client::refuse_missing_dir(&effective)?;
    }
    let service_dir = named.then_some(dir);
    if detach {
        // Starts one if none answers; a running one must own the same dir.
        return match client::request(g, Request::DaemonStatus, true)? {
            Response::Daemon(info) => {
                println!(
                    "daemon running (pid {}, services in {})",
                    info.pid,
                    info.service_dir.display()
                );
                Ok(())
            }
            other => Err(client::unexpected(&other)),
        };
    }
    daemon::run(DaemonOptions {
        home,
        service_dir,
        init,
        metrics_file,
    })
}

/// `startup`: the boot entry for this home and the current daemon's
/// service directory (else the one named, else the default).
fn startup_entry(g: &Global, print: bool) -> Result<(), Error> {
    let home = Home::resolve(g.home.clone()).map_err(Error::failed)?;
    let (dir, named) = paths::service_dir(g.service_dir.clone());
    let service_dir = if named {
        dir
    } else {
        match client::request(g, Request::DaemonStatus, false) {
            Ok(Response::Daemon(info)) => info.service_dir,
            _ => client::daemon_default_dir(&home, &dir),
        }
    };
    let bin = std::env::current_exe()
        .map_err(|e| Error::failed(format!("cannot find this program's path: {e}")))?;
    startup::run(
        &bin,
        &paths::absolute(&home.dir),
        &paths::absolute(&service_dir),
        print,
    )
}

/// The directory `verify` checks: the one named, else the running daemon's
/// (asked, never started), else the default `./services`.
fn verify_dir(g: &Global, out: &render::Output) -> PathBuf {
    verify_target(g, out, false).0
}

/// [`verify_dir`], and the daemon of that directory when one runs (its
/// PATH and uid are what services get); with `named_too`, also asked when
/// the directory was named.
fn verify_target(
    g: &Global,
    out: &render::Output,
    named_too: bool,
) -> (PathBuf, Option<DaemonInfo>) {
    let (dir, named) = paths::service_dir(g.service_dir.clone());
    if named && !named_too {
        return (dir, None);
    }
    if named {
        let daemon = match client::request(g, Request::DaemonStatus, false) {
            Ok(Response::Daemon(info)) if info.service_dir == paths::absolute(&dir) => Some(*info),
            _ => None,
        };
        return (dir, daemon);
    }
    match client::request(g, Request::DaemonStatus, false) {
        Ok(Response::Daemon(info)) => (info.service_dir.clone(), Some(*info)),
        Err(Error::NotRunning(_)) => (dir, None),
        Ok(other) => {
            out.warning(&format!(
                "{}; checking {}",
                client::unexpected(&other)
                    .to_string()
                    .lines()
                    .next()
                    .unwrap_or_default(),
                dir.display()
            ));
            (dir, None)
        }
        Err(e) => {
            out.warning(&format!(
                "cannot ask the daemon for its service directory ({}); checking {}",
                e.to_string().lines().next().unwrap_or_default(),
                dir.display()
            ));
            (dir, None)
        }
    }
}

/// Where `stats` and `list --wide` keep their last sample (in the home,
/// which a running daemon has created).
fn stats_kept(g: &Global) -> Option<PathBuf> {
    crate::paths::Home::resolve(g.home.clone())
        .ok()
        .map(|h| h.dir.join("stats.samples"))
}

/// `verify`: load and check the unit files here, without a daemon: each
/// file, the dependency graph ([`graph::check`], as the daemon does) and
/// what `start` would fail on on this host.
fn verify(g: &Global, names: &[String], out: &render::Output) -> Result<(), Error> {
    let (dir, daemon) = verify_target(g, out, true);
    let loaded = unit::load_dir(&dir, &unit::hostname()).map_err(|e| {
        Error::failed_hint(
            format!("cannot read the service directory {}: {e}", dir.display()),
            "pass --service-dir DIR or set DIAKONOS_SERVICE_DIR",
        )
    })?;
    for name in names {
        if !loaded.units.contains_key(name) {
            return Err(Error::failed_hint(
                format!("no unit named `{name}` in {}", dir.display()),
                format!("a unit is a file {}/{name}.service", dir.display()),
            ));
        }
    }
    let units: Vec<(&String, &Result<unit::Unit, Vec<unit::UnitError>>)> =
        loaded.units.iter().collect();
    let no_path = PathBuf::new();
    let inputs: Vec<DepInput<'_>> = units
        .iter()
        .map(|&(name, result)| match result {
            Ok(u) => DepInput {
                name,
                file: &u.path,
                requires: &u.requires,
                wants: &u.wants,
                after: &u.after,
                conflicts: &u.conflicts,
            },
            Err(errors) => DepInput {
                name,
                file: errors.first().map_or(&no_path, |e| &e.path),
                requires: &[],
                wants: &[],
                after: &[],
                conflicts: &[],
            },
        })
        .collect();
    let (_, findings) = graph::check(&inputs, &dir);
    let chosen = |n: &str| names.is_empty() || names.iter().any(|x| x == n);
    let mut bad = 0;
    let mut good = 0;
    // A unit's own warnings are shown with the unit (only for the units
    // asked about); the directory's other warnings always.
    let unit_warnings: std::collections::HashSet<String> = units
        .iter()
        .filter_map(|(_, result)| result.as_ref().ok())
        .flat_map(|u| u.source.warnings.iter().map(ToString::to_string))
        .collect();
    for w in loaded
        .warnings
        .iter()
        .chain(&findings.warnings)
        .filter(|w| !unit_warnings.contains(*w))
    {
        out.warning(w);
    }
    // What `start` would fail on here is checked against the PATH services
    // get: the running daemon's (it spawns them), else this command's, or
    // the default when it has none; as the user they run as.
    let services = daemon.as_ref().and_then(|d| d.services.as_deref());
    let path_env = match services {
        Some(env) => env.path.clone().into(),
        None => std::env::var_os("PATH")
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| paths::DEFAULT_PATH.into()),
    };
    let daemon_uid = services.map(|env| env.uid);
    for ((name, result), dep_error) in units.iter().zip(&findings.errors) {
        if !chosen(name) {
            continue;
        }
        // As the daemon's `status` shows them: the file's errors, then its
        // dependency errors; then what this host would fail on.
        let mut errors: Vec<String> = match result {
            Ok(_) => Vec::new(),
            Err(load_errors) => load_errors.iter().map(ToString::to_string).collect(),
        };
        errors.extend(dep_error.iter().cloned());
        if let Ok(unit) = result {
            for w in &unit.source.warnings {
                out.warning(&w.to_string());
            }
            errors.extend(
                unit::check_host_as(unit, &path_env, daemon_uid)
                    .iter()
                    .map(ToString::to_string),
            );
        }
        for err in &errors {
            out.error_block(err);
        }
        if let Some(next) = result.as_ref().ok().and_then(|u| next_elapses(u, 3)) {
            out.note(&format!("{name}: next elapses: {}", next.join(", ")));
        }
        if errors.is_empty() {
            good += 1;
        } else {
            bad += 1;
        }
    }
    if bad > 0 {
        return Err(Error::failed(format!(
            "{bad} of {} unit(s) in {} have errors",
            bad + good,
            dir.display()
        )));
    }
    out.note(&format!("{good} unit(s) in {} are valid", dir.display()));
    Ok(())
}

/// The next `n` elapses of a unit's OnCalendar (all of its expressions), from now, as RFC 3339 in
/// its zone (for `verify`).
fn next_elapses(u: &unit::Unit, n: usize) -> Option<Vec<String>> {
    let timer = u.timer.as_deref()?;
    let tz = unit::zone(&timer.time_zone)?;
    let mut at = jiff::Timestamp::now().as_millisecond();
    let mut out = Vec::new();
    for _ in 0..n {
        // The earliest of every expression of the list.
        at = timer.next_calendar(at)?;
        let ts = jiff::Timestamp::from_millisecond(at).ok()?;
        out.push(
            ts.to_zoned(tz.clone())
                .strftime("%Y-%m-%dT%H:%M:%S%:z")
                .to_string(),
        );
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<(Global, Command), Error> {
        parse(args.iter().map(OsString::from))
    }

    #[test]
    fn global_options_go_anywhere() {
        // Options are accepted before or after the command.
        let (g, cmd) = p(&["start", "web", "--service-dir", "units", "--home", "/h"]).unwrap();
        assert_eq!(cmd, Command::Start(vec!["web".into()]));
        assert_eq!(g.service_dir, Some(PathBuf::from("units")));
        assert_eq!(g.home, Some(PathBuf::from("/h")));
    }

    #[test]
    fn daemon_init_options_and_startup_print() {
        // --init takes unit names and the exit policy; its flags and --print go only where they belong.
        let (_, cmd) = p(&[
            "daemon",
            "--init",
            "a",
            "b",
            "--exit-with",
            "b",
            "--exit-when",
            "never",
            "--file-logs",
        ])
        .unwrap();
        let want = crate::daemon::InitOptions {
            units: vec!["a".into(), "b".into()],
            exit_with: Some("b".into()),
            never: true,
            file_logs: true,
        };
        assert_eq!(
            cmd,
            Command::Daemon {
                detach: false,
                init: Some(want),
                metrics_file: None,
            }
        );
        assert_eq!(
            p(&["startup", "--print"]).unwrap().1,
            Command::Startup { print: true }
        );
        for args in [
            &["daemon", "a"][..],
            &["daemon", "--init", "--detach"],
            &["daemon", "--init", "--exit-when", "sometimes"],
            &["list", "--exit-with", "a"],
            &["list", "--print"],
        ] {
            assert_eq!(p(args).unwrap_err().exit_code(), 2, "{args:?}");
        }
    }

    #[test]
    fn usage_errors_exit_2() {
        // Missing names, unknown commands and misplaced flags are usage errors.
        for args in [
            &["start"][..],
            &["frobnicate"],
            &["list", "-f"],
            &["stop", "--json", "x"],
            &[],
            &["status", "a", "b"],
            &["logs", "x", "-n", "many"],
        ] {
            let err = p(args).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{args:?}");
        }
    }

    #[test]
    fn every_command_has_help_with_an_example() {
        // `help NAME`, `NAME --help` and the completion scripts need a row per command.
        for name in COMMANDS {
            let row =
                help::find(name).unwrap_or_else(|| panic!("`{name}` has no row in cli/help.rs"));
            assert!(
                row.example.starts_with("diakonos ") || row.example.contains(" diakonos "),
                "{name}"
            );
        }
        assert_eq!(
            help::COMMANDS.len(),
            COMMANDS.len(),
            "a help row for a command the parser does not know"
        );
        let (_, cmd) = p(&["export", "--help"]).unwrap();
        assert_eq!(cmd, Command::Help(Some("export".into())));
    }

    #[test]
    fn unknown_command_suggests_a_near_miss() {
        // A typo in the command gets a did-you-mean.
        let err = p(&["statsu", "x"]).unwrap_err().to_string();
        assert!(err.contains("did you mean `status`"), "{err}");
    }

    #[test]
    fn run_takes_its_options_and_the_command_after_dashes() {
        // Options before `--` are ours; everything after is the command's.
        let (_, cmd) = p(&[
            "run", "--name", "api", "--env", "A=1", "--env", "B=2", "--force", "--", "node",
            "app.js", "--name", "x",
        ])
        .unwrap();
        let Command::Run(o) = cmd else {
            panic!("{cmd:?}")
        };
        assert_eq!(o.name.as_deref(), Some("api"));
        assert_eq!(o.env, vec!["A=1", "B=2"]);
        assert!(o.force);
        assert_eq!(o.command, vec!["node", "app.js", "--name", "x"]);
        for bad in [
            &["start", "--name", "x", "web"][..],
            &["stop", "--all", "web"],
            &["list", "--all"],
            &["start", "--force", "web"],
            &["run", "--"],
        ] {
            assert_eq!(p(bad).unwrap_err().exit_code(), 2, "{bad:?}");
        }
        assert_eq!(
            p(&["stop", "--all"]).unwrap().1,
            Command::All("stop".into())
        );
    }

    #[test]
    fn logs_takes_lines_and_follow() {
        // `logs` reads -n and -f.
        let (_, cmd) = p(&["logs", "web", "-n", "5", "-f"]).unwrap();
        assert_eq!(
            cmd,
            Command::Logs {
                name: Some("web".into()),
                lines: 5,
                follow: true
            }
        );
    }
}
