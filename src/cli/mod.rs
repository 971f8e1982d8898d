//! The command line: lexopt -> [`Command`] data, then one function per
//! command that asks the daemon (through `client`) and prints (through
//! `render`). Nothing here supervises anything.

/// `println!` that never panics: see `output`.
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::cli::output::out(&format!("{}\n", format_args!($($arg)*)))
    };
}

/// `print!` that never panics: see `output`.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::cli::output::out(&format!($($arg)*))
    };
}

/// `eprintln!` that never panics: see `output`.
macro_rules! errln {
    ($($arg:tt)*) => {
        $crate::cli::output::err(&format!("{}\n", format_args!($($arg)*)))
    };
}

pub mod adhoc;
pub mod client;
pub mod completions;
pub mod depview;
pub mod export;
pub mod help;
pub mod import;
pub mod logs;
pub mod output;
mod parse;
pub mod render;
pub mod startup;
pub mod stats;
#[cfg(test)]
mod tests;
mod verify;

use std::path::PathBuf;

use crate::daemon::{self, DaemonOptions};
use crate::error::Error;
use crate::graph::{self, DepInput};
use crate::paths::{self, Home};
use crate::protocol::{DaemonInfo, Request, Response};
use crate::unit;
use parse::COMMANDS;
pub use parse::{parse, Command, Global, HELP, METRICS_FILE_ENV};
use verify::{verify, verify_dir};

/// Runs one command; the error carries the exit code.
pub fn run(g: Global, cmd: Command) -> Result<(), Error> {
    match cmd {
        Command::Daemon {
            detach,
            init,
            metrics_file,
        } => run_daemon(&g, detach, init, metrics_file),
        cmd => run_client(g, cmd),
    }
}

/// Every command but `daemon`. Out of line: the daemon runs [`run`] and
/// none of this (it is most of the CLI's code, 60 KiB when inlined, and a
/// page of code run once stays in the daemon's RSS with its 64 KiB around).
#[inline(never)]
fn run_client(g: Global, cmd: Command) -> Result<(), Error> {
    let out = render::Output::new(g.no_color, g.json);
    match cmd {
        Command::Help(None) => {
            out!("{HELP}");
            Ok(())
        }
        Command::Help(Some(name)) => match help::find(&name) {
            Some(c) => {
                out!("{}", help::render(c));
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
                "bash" => out!("{}", completions::bash()),
                "zsh" => out!("{}", completions::zsh()),
                "fish" => out!("{}", completions::fish()),
                _ => unit_names(&g, &out),
            }
            Ok(())
        }
        Command::Version => {
            outln!("diakonos {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        Command::Run(opts) => adhoc::run(&g, &out, *opts),
        Command::Delete { names, purge_logs } => adhoc::delete(&g, &out, &names, purge_logs),
        Command::All(verb) => adhoc::all(&g, &out, &verb),
        Command::Startup { print } => startup_entry(&g, print),
        Command::Daemon { .. } => run(g, cmd),
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
                    out!("{}", crate::metrics::render(&units, &fired, &version));
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
            // Asked only when the log is missing: whether the output went to
            // the daemon (`daemon --init`), and where the units are.
            let daemon = || {
                let info = match client::request(&g, Request::DaemonStatus, false) {
                    Ok(Response::Daemon(info)) => Some(info),
                    _ => None,
                };
                // Where `start` would look: the running daemon's directory,
                // else the one named, else the last daemon's (the state
                // file), else the default.
                let (dir, named) = crate::paths::service_dir(g.service_dir.clone());
                let last = || crate::daemon::persist::peek_state(&home.state()).service_dir;
                logs::Missing {
                    output_to_daemon: info.as_ref().is_some_and(|i| i.output_to_daemon),
                    service_dir: match info {
                        Some(info) => info.service_dir,
                        None if named => dir,
                        None => last().unwrap_or(dir),
                    },
                }
            };
            match name {
                Some(name) => logs::show(&home, &name, lines, follow, daemon),
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
                    outln!("{{\"running\":false}}");
                } else {
                    outln!("not running");
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
                // Services a dead daemon left: a daemon adopts them, then
                // stops them all.
                Err(Error::NotRunning(_)) if client::services_left(&g) => {
                    client::wait_for_daemon_exit(daemon)?;
                    match client::request(&g, Request::Kill, true)? {
                        Response::Bye => {
                            client::wait_for_daemon_exit(client::daemon_identity(&g))?;
                            out.note("no daemon was running; a new one adopted the services the last one left and stopped them");
                            Ok(())
                        }
                        other => Err(client::unexpected(&other)),
                    }
                }
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
        Command::List if g.json => match client::request(&g, Request::List, true)? {
            Response::Units(units) => {
                out.list(&units);
                Ok(())
            }
            other => Err(client::unexpected(&other)),
        },
        Command::List => match client::request(&g, Request::ListRows, true)? {
            Response::Rows(rows) => {
                out.list_rows(&rows);
                // The process ends here: its memory goes back at once,
                // without a free() per string of a thousand rows.
                std::mem::forget(rows);
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
                    outln!("{line}");
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
            out!("{}", depview::tree(&view, root, reverse));
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
            // Only the first look starts a daemon: a `--watch` that outlives
            // a `kill` ends, rather than start another.
            let mut first = true;
            let ask = || -> Result<Vec<crate::protocol::UnitInfo>, Error> {
                let start = std::mem::replace(&mut first, false);
                match client::request(&g, Request::List, start)? {
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
                out!("{}", depview::dot(&view, &ids));
            } else {
                out!("{}", depview::mermaid(&view, &ids));
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
        .enumerate()
        // A name given twice is one row (as `start a a` starts it once).
        .filter(|&(i, n)| !names[..i].contains(n))
        .map(|(_, n)| {
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
    let mut timers = Vec::new();
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
            if base.ends_with(".timer") {
                timers.push(import::timer::import(&text, &base, &origin));
            } else {
                drafts.push(import::systemd::import(&text, &base, &origin));
            }
        }
    }
    import::timer::attach(&mut drafts, timers).map_err(Error::failed)?;
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
            Some(Ok(u)) => {
                texts.push((format!("{name}.service"), export::systemd_unit(u)));
                if let Some(timer) = export::systemd_timer(u) {
                    texts.push((format!("{name}.timer"), timer));
                }
            }
            Some(Err(errors)) => {
                let first = crate::unit::first_error(errors);
                return Err(Error::failed_hint(
                    format!("`{name}` does not load: {first}"),
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
            out!("{}{text}", if i > 0 { "\n" } else { "" });
        }
        return Ok(());
    };
    for (file, _) in &texts {
        let path = to.join(file);
        if !force && path.exists() {
            return Err(Error::failed_hint(
                format!("{} already exists; nothing was written", path.display()),
                "pass --force to overwrite it",
            ));
        }
    }
    for (file, text) in &texts {
        let path = to.join(file);
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
        outln!("{n}");
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
    let flagged = metrics_file.is_some();
    let metrics_file = metrics_file
        .or_else(|| {
            std::env::var_os(METRICS_FILE_ENV)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        })
        .map(|p| std::path::absolute(&p).unwrap_or(p));
    if let Some(path) = metrics_file.as_ref().filter(|_| flagged) {
        // Said now, not only in daemon.log once the daemon runs. (From the
        // environment, a daemon a client starts for it: logged only.)
        let dir = path.parent().unwrap_or(std::path::Path::new("/"));
        let writable = nix::unistd::access(dir, nix::unistd::AccessFlags::W_OK).is_ok();
        if !dir.is_dir() || !writable {
            return Err(Error::failed_hint(
                format!(
                    "cannot write the metrics file {}: {} is not a directory this user may write to",
                    path.display(),
                    dir.display()
                ),
                "create the directory, or name another --metrics-file",
            ));
        }
    }
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
                outln!(
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

/// Where `stats` and `list --wide` keep their last sample (in the home,
/// which a running daemon has created).
fn stats_kept(g: &Global) -> Option<PathBuf> {
    crate::paths::Home::resolve(g.home.clone())
        .ok()
        .map(|h| h.dir.join("stats.samples"))
}
