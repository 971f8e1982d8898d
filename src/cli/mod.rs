//! The command line: lexopt -> [`Command`] data, then one function per
//! command that asks the daemon (through `client`) and prints (through
//! `render`). Nothing here supervises anything.

pub mod client;
pub mod completions;
pub mod export;
pub mod help;
pub mod import;
pub mod logs;
pub mod render;

use std::ffi::OsString;
use std::path::PathBuf;

use crate::daemon::{self, DaemonOptions};
use crate::error::Error;
use crate::graph::{self, DepInput};
use crate::paths::{self, Home};
use crate::protocol::{Request, Response};
use crate::unit;

pub const HELP: &str = "\
diakonos - a small service manager: one daemon, a thin client, TOML unit files

Usage: diakonos [OPTIONS] <COMMAND> [ARGS]

Commands:
  list                 every unit: name, state, pid, uptime, restarts, description
  start NAME...        start units and what they Require/Want; waits until they are up
  stop NAME...         stop units (and the units that Require them, first)
  restart NAME...      stop, then start; resets restart counters and the start limit
  status NAME          state, pid, last exit, failure reason, dependencies, last log lines
  logs NAME [-n N] [-f]  last N (default 20) lines of a service's output; -f follows
  reload               re-read the service directory and apply what changed
  verify [NAME...]     check unit files and what start would fail on here, without
                       starting a daemon (exit 1 on any error)
  enable NAME...       start these units whenever a daemon starts
  disable NAME...      undo enable
  daemon-status        the daemon's pid, version, uptime, directories, units, memory
  kill                 stop every service, then the daemon
  daemon-upgrade       replace the daemon with one of this binary, keeping every service running
  daemon [--detach]    run the daemon in the foreground (or in the background)
  import systemd FILE... | pm2 FILE
                       write unit files from systemd units or a PM2 ecosystem file
  export systemd NAME...  systemd unit files for these units
  completions bash|zsh|fish  a shell completion script
  help [COMMAND]       this help, or one command's help with an example

Options:
  --service-dir DIR    unit files (default: $DIAKONOS_SERVICE_DIR, else ./services)
  --home DIR           state, socket and logs (default: $DIAKONOS_HOME, else ~/.diakonos)
  --json               machine-readable output (list, status, daemon-status)
  --no-color           no colours (also when NO_COLOR is set or stdout is not a terminal)
  -h, --help           this help
  -V, --version        the version

Exit codes: 0 success, 1 the operation failed, 2 usage error, 3 daemon not running
(daemon-status). Any command that needs the daemon starts it when none answers.
";

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
    Start(Vec<String>),
    Stop(Vec<String>),
    Restart(Vec<String>),
    Status(String),
    Logs {
        name: String,
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
    },
    Help(Option<String>),
    Version,
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
    let mut parser = lexopt::Parser::from_args(args);
    let mut g = Global::default();
    let mut words: Vec<String> = Vec::new();
    let (mut lines, mut follow, mut detach) = (None, false, false);
    let (mut force, mut to_stdout, mut out_dir) = (false, false, None::<PathBuf>);
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
            Long("force") => force = true,
            Long("stdout") => to_stdout = true,
            Long("dir") => out_dir = Some(parser.value()?.into()),
            Value(v) => words.push(v.string()?),
            _ => return Err(arg.unexpected().into()),
        }
    }
    let Some((cmd, rest)) = words.split_first() else {
        return Err(Error::Usage("no command given".into()));
    };
    let rest = rest.to_vec();
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
            "list" | "ls" => none("list").map(|()| Command::List)?,
            "start" => Command::Start(names("start")?),
            "stop" => Command::Stop(names("stop")?),
            "restart" => Command::Restart(names("restart")?),
            "status" => Command::Status(one("status")?),
            "logs" => Command::Logs {
                name: one("logs")?,
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
            "daemon" => none("daemon").map(|()| Command::Daemon { detach })?,
            "help" => match rest.as_slice() {
                [] => Command::Help(None),
                [name] => Command::Help(Some(name.clone())),
                _ => return Err(Error::Usage("`help` takes one command name".into())),
            },
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
    if force && !(is_import || is_export) {
        return Err(Error::Usage(
            "--force only goes with `import` and `export`".into(),
        ));
    }
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
    if detach && !matches!(command, Command::Daemon { .. }) {
        return Err(Error::Usage("--detach only goes with `daemon`".into()));
    }
    let json_ok = matches!(
        command,
        Command::List | Command::Status(_) | Command::DaemonStatus
    );
    if g.json && !json_ok {
        return Err(Error::Usage(
            "--json goes with list, status and daemon-status".into(),
        ));
    }
    Ok((g, command))
}

const COMMANDS: [&str; 18] = [
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
    "help",
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
        Command::Daemon { detach } => run_daemon(&g, detach),
        Command::Verify(names) => verify(&g, &names, &out),
        Command::Logs {
            name,
            lines,
            follow,
        } => {
            let home = Home::resolve(g.home.clone()).map_err(Error::failed)?;
            logs::show(&home, &name, lines, follow)
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
    }
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
        Ok(Response::Daemon(info)) => Ok(Some(info)),
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

fn run_daemon(g: &Global, detach: bool) -> Result<(), Error> {
    let home = Home::resolve(g.home.clone()).map_err(Error::failed)?;
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
    daemon::run(DaemonOptions { home, service_dir })
}

/// The directory `verify` checks: the one named, else the running daemon's
/// (asked, never started), else the default `./services`.
fn verify_dir(g: &Global, out: &render::Output) -> PathBuf {
    let (dir, named) = paths::service_dir(g.service_dir.clone());
    if named {
        return dir;
    }
    match client::request(g, Request::DaemonStatus, false) {
        Ok(Response::Daemon(info)) => info.service_dir,
        Err(Error::NotRunning(_)) => dir,
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
            dir
        }
        Err(e) => {
            out.warning(&format!(
                "cannot ask the daemon for its service directory ({}); checking {}",
                e.to_string().lines().next().unwrap_or_default(),
                dir.display()
            ));
            dir
        }
    }
}

/// `verify`: load and check the unit files here, without a daemon: each
/// file, the dependency graph ([`graph::check`], as the daemon does) and
/// what `start` would fail on on this host.
fn verify(g: &Global, names: &[String], out: &render::Output) -> Result<(), Error> {
    let dir = verify_dir(g, out);
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
            },
            Err(errors) => DepInput {
                name,
                file: errors.first().map_or(&no_path, |e| &e.path),
                requires: &[],
                wants: &[],
                after: &[],
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
    // get (the daemon's, or the default when it has none).
    let path_env = std::env::var_os("PATH")
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| paths::DEFAULT_PATH.into());
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
                unit::check_host(unit, &path_env)
                    .iter()
                    .map(ToString::to_string),
            );
        }
        for err in &errors {
            out.error_block(err);
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
    fn logs_takes_lines_and_follow() {
        // `logs` reads -n and -f.
        let (_, cmd) = p(&["logs", "web", "-n", "5", "-f"]).unwrap();
        assert_eq!(
            cmd,
            Command::Logs {
                name: "web".into(),
                lines: 5,
                follow: true
            }
        );
    }
}
