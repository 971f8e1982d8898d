//! SPEC §18, PM2's habits on top of unit files: `run` writes a unit file
//! and starts it, `delete` stops and removes one, `start/stop/restart
//! --all` act on every unit (sparing `Protected` ones from stop/restart).
//! All of it is the client asking the daemon the ordinary requests, plus
//! `Load` (just the named units, no full reload).

use std::path::{Path, PathBuf};

use crate::cli::{client, render, Global};
use crate::error::Error;
use crate::paths;
use crate::protocol::{Request, Response, StateName, UnitInfo, UnitStatus};
use crate::unit;

/// The options of `run`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RunOpts {
    pub name: Option<String>,
    pub restart: Option<String>,
    pub env: Vec<String>,
    pub cwd: Option<PathBuf>,
    pub user: Option<String>,
    pub requires: Vec<String>,
    pub wants: Vec<String>,
    pub enable: bool,
    pub force: bool,
    /// COMMAND and its arguments, never empty once parsed.
    pub command: Vec<String>,
}

/// Checks what the command line alone can tell.
pub fn check_run(opts: &RunOpts) -> Result<(), Error> {
    if opts.command.is_empty() {
        return Err(Error::Usage(
            "`run` needs a command: diakonos run [--name NAME] -- COMMAND [ARG...]".into(),
        ));
    }
    if let Some(r) = &opts.restart {
        if !matches!(r.as_str(), "always" | "on-failure" | "no") {
            return Err(Error::Usage(format!(
                "--restart takes always, on-failure or no, not `{r}`"
            )));
        }
    }
    for e in &opts.env {
        match e.split_once('=') {
            Some((k, _)) if !k.is_empty() => {}
            _ => return Err(Error::Usage(format!("--env takes KEY=VALUE, not `{e}`"))),
        }
    }
    for (what, list) in [("--requires", &opts.requires), ("--wants", &opts.wants)] {
        if let Some(bad) = list.iter().find(|n| !unit::is_valid_name(n)) {
            return Err(Error::Usage(format!(
                "{what} takes a unit name (letters, digits, `_.:-`), not `{bad}`"
            )));
        }
    }
    if let Some(name) = &opts.name {
        if !unit::is_valid_name(name) {
            return Err(Error::Usage(format!(
                "--name `{name}` is not a unit name; use letters, digits and `_.:-`, not starting with `-` or `.`, without `.service`"
            )));
        }
        // NAME.service must fit in a file name (255 bytes).
        if name.len() > MAX_NAME {
            return Err(Error::Usage(format!(
                "--name is {} characters long; at most {MAX_NAME}",
                name.len()
            )));
        }
    }
    Ok(())
}

/// The longest `--name`: NAME.service fits a file name of 255 bytes.
const MAX_NAME: usize = 200;

/// The default name: the program's base name, with characters a unit
/// name cannot have turned into `-`.
pub fn default_name(program: &str) -> String {
    let base = Path::new(program)
        .file_name()
        .map(|b| b.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name: String = base
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect();
    if name.is_empty() || name == "." || name == ".." {
        "service".to_owned()
    } else {
        name
    }
}

/// A TOML basic string holding exactly `s`.
pub fn toml_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\u{:04X}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The ExecStart text that splits (like a shell) and expands (`$$` is a
/// literal `$`) back into exactly `argv`.
pub fn exec_line(argv: &[String]) -> String {
    argv.iter()
        .map(|a| shell_words::quote(&a.replace('$', "$$")).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

fn toml_list(items: &[String]) -> String {
    let items: Vec<String> = items.iter().map(|s| toml_str(s)).collect();
    format!("[{}]", items.join(", "))
}

/// The unit file `run` writes; `argv[0]` is already resolved.
pub fn unit_text(opts: &RunOpts, argv: &[String]) -> String {
    let mut t = String::from(
        "# Written by `diakonos run`; an ordinary unit file: edit it, then `diakonos reload`.\n",
    );
    if !opts.requires.is_empty() || !opts.wants.is_empty() {
        t.push_str("[unit]\n");
        if !opts.requires.is_empty() {
            t.push_str(&format!("Requires = {}\n", toml_list(&opts.requires)));
        }
        if !opts.wants.is_empty() {
            t.push_str(&format!("Wants = {}\n", toml_list(&opts.wants)));
        }
        t.push('\n');
    }
    t.push_str("[service]\n");
    t.push_str(&format!("ExecStart = {}\n", toml_str(&exec_line(argv))));
    if let Some(r) = &opts.restart {
        t.push_str(&format!("Restart = {}\n", toml_str(r)));
    }
    if let Some(cwd) = &opts.cwd {
        t.push_str(&format!(
            "WorkingDirectory = {}\n",
            toml_str(&cwd.to_string_lossy())
        ));
    }
    if let Some(u) = &opts.user {
        t.push_str(&format!("User = {}\n", toml_str(u)));
    }
    if !opts.env.is_empty() {
        t.push_str(&format!("Environment = {}\n", toml_list(&opts.env)));
    }
    t
}

/// The running daemon's service directory; with none running, the one a
/// daemon would take is created if missing (`run` is how a first unit is
/// made), then a daemon is started on it.
fn service_dir(g: &Global) -> Result<PathBuf, Error> {
    let (dir, named) = paths::service_dir(g.service_dir.clone());
    let missing = if named {
        Some(dir)
    } else if let Err(Error::NotRunning(_)) = client::request(g, Request::DaemonStatus, false) {
        let home = paths::Home::resolve(g.home.clone()).map_err(Error::failed)?;
        Some(client::daemon_default_dir(&home, &dir))
    } else {
        None
    };
    if let Some(dir) = missing.filter(|d| !d.exists()) {
        std::fs::create_dir_all(&dir).map_err(|e| {
            Error::failed_hint(
                format!("cannot create the service directory {}: {e}", dir.display()),
                "name another with --service-dir DIR (or DIAKONOS_SERVICE_DIR)",
            )
        })?;
        // On stderr: `run`'s stdout is the unit file's path alone.
        errln!("diakonos: created the service directory {}", dir.display());
    }
    match client::request(g, Request::DaemonStatus, true)? {
        Response::Daemon(info) => Ok(info.service_dir),
        other => Err(client::unexpected(&other)),
    }
}

fn load(g: &Global, names: &[String]) -> Result<(), Error> {
    match client::request(g, Request::Load(names.to_vec()), true)? {
        Response::Reloaded(report) => match report.invalid.first() {
            None => Ok(()),
            Some((name, err)) => Err(Error::failed_hint(
                format!("unit `{name}` did not load: {err}"),
                format!("`diakonos verify {name}` shows where"),
            )),
        },
        other => Err(client::unexpected(&other)),
    }
}

/// `run`: writes NAME.service, loads it, (enables it,) starts it.
pub fn run(g: &Global, out: &render::Output, mut opts: RunOpts) -> Result<(), Error> {
    check_run(&opts)?;
    let here = std::env::current_dir()
        .map_err(|e| Error::failed(format!("cannot read the current directory: {e}")))?;
    let mut argv = opts.command.clone();
    // A relative path means the user's current directory, whatever the
    // unit's working directory is.
    if argv[0].contains('/') && !Path::new(&argv[0]).is_absolute() {
        argv[0] = here.join(&argv[0]).to_string_lossy().into_owned();
    }
    // As PM2 runs an app where `pm2 start` ran: the directory `run` is
    // run from, unless --cwd says otherwise.
    opts.cwd = Some(
        opts.cwd
            .as_ref()
            .map_or_else(|| here.clone(), |cwd| here.join(cwd)),
    );
    let name = opts
        .name
        .clone()
        .unwrap_or_else(|| default_name(&opts.command[0]));
    let dir = service_dir(g)?;
    let path = dir.join(format!("{name}.service"));
    let text = unit_text(&opts, &argv);
    // Everything that would fail is found before anything is written.
    let parsed = unit::parse(&name, &path, &text, &dir).map_err(|errors| {
        Error::failed(format!(
            "cannot write a unit for this command: {}",
            errors.first().map(|e| e.to_string()).unwrap_or_default()
        ))
    })?;
    let path_env = std::env::var_os("PATH")
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| paths::DEFAULT_PATH.into());
    if let Some(problem) = unit::check_host(&parsed, &path_env).first() {
        let mut message = problem.message.clone();
        message.push_str("; nothing was written");
        return Err(Error::Failed {
            message,
            hint: problem.hint.clone(),
        });
    }
    for r in &opts.requires {
        // A unit that Requires one the daemon does not have could never
        // start: refused before anything is written, with the daemon's why
        // (no such unit, or its file not loaded yet).
        // (Itself: the unit's own parse above refused it.)
        if let Err(Error::Failed { message, hint }) = status(g, r) {
            return Err(Error::Failed {
                message: format!("--requires {r}: {message}; nothing was written"),
                hint,
            });
        }
    }
    let existed = path.exists();
    if existed && !opts.force {
        return Err(Error::failed_hint(
            format!("a unit named `{name}` already exists ({})", path.display()),
            format!("pick another --name, or pass --force to replace it (`diakonos delete {name}` removes it)"),
        ));
    }
    write_atomic(&path, &text)?;
    out.note(&path.display().to_string());
    load(g, std::slice::from_ref(&name))?;
    if opts.enable {
        match client::request(g, Request::Enable(vec![name.clone()]), true)? {
            Response::Job(_) => {}
            other => return Err(client::unexpected(&other)),
        }
    }
    // A replaced unit that was running restarts with its new definition.
    let req = if existed {
        Request::Restart(vec![name])
    } else {
        Request::Start(vec![name])
    };
    let verb = if existed { "restart" } else { "start" };
    // stdout is the unit file's path alone (SPEC §18), for scripts.
    match client::request(g, req, true)? {
        Response::Job(results) => out.job_to(verb, &results, true),
        other => Err(client::unexpected(&other)),
    }
}

fn write_atomic(path: &Path, text: &str) -> Result<(), Error> {
    crate::paths::write_atomic(path, text).map_err(|e| {
        Error::failed_hint(
            format!("cannot write {}: {e}", path.display()),
            "check the permissions of the service directory",
        )
    })
}

fn status(g: &Global, name: &str) -> Result<UnitStatus, Error> {
    match client::request(g, Request::Status(name.to_owned()), true)? {
        Response::Status(s) => Ok(*s),
        other => Err(client::unexpected(&other)),
    }
}

/// `delete`: stop (dependents first), disable, remove the file, drop it.
pub fn delete(
    g: &Global,
    out: &render::Output,
    names: &[String],
    purge_logs: bool,
) -> Result<(), Error> {
    let mut found = Vec::new();
    for name in names {
        found.push(status(g, name)?);
    }
    // As `stop` does (SPEC §18), the units that Require these (directly or
    // not) are stopped first; they stay, `invalid` until what they Require
    // is back.
    let results = match client::request(g, Request::Stop(names.to_vec()), true)? {
        Response::Job(results) => {
            out.job("stop", &results)?;
            results
        }
        other => return Err(client::unexpected(&other)),
    };
    let dependents: Vec<&str> = results
        .iter()
        .map(|r| r.name.as_str())
        .filter(|n| !names.iter().any(|d| d == n))
        .collect();
    if !dependents.is_empty() {
        out.warning(&format!(
            "stopped with it, and `invalid` until what they Require is back or their Requires is edited: {}",
            dependents.join(", ")
        ));
    }
    match client::request(g, Request::Disable(names.to_vec()), true)? {
        Response::Job(_) => {}
        other => return Err(client::unexpected(&other)),
    }
    for s in &found {
        match std::fs::remove_file(&s.path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(Error::failed_hint(
                    format!("cannot remove {}: {e}", s.path.display()),
                    "check the permissions of the service directory, then delete again",
                ))
            }
        }
    }
    load(g, names)?;
    for s in &found {
        let logs = if purge_logs {
            purge(&s.log_path)?;
            "logs removed".to_owned()
        } else {
            format!("logs kept in {}", s.log_path.display())
        };
        out.note(&format!(
            "{}: deleted ({} removed; {logs})",
            s.info.name,
            s.path.display()
        ));
    }
    Ok(())
}

/// Removes `NAME.log` and its rotated `NAME.log.N` files.
fn purge(log: &Path) -> Result<(), Error> {
    let (Some(dir), Some(base)) = (log.parent(), log.file_name()) else {
        return Ok(());
    };
    let base = base.to_string_lossy().into_owned();
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::failed(format!("cannot read {}: {e}", dir.display()))),
    };
    for entry in entries.flatten() {
        let file = entry.file_name().to_string_lossy().into_owned();
        let rotated = file
            .strip_prefix(&base)
            .and_then(|r| r.strip_prefix('.'))
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
        // NAME.log, its rotations, and NAME.probe (an Exec probe's words).
        let probe = base
            .strip_suffix(".log")
            .is_some_and(|stem| file == format!("{stem}.probe"));
        if file == base || rotated || probe {
            if let Err(e) = std::fs::remove_file(entry.path()) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    return Err(Error::failed(format!(
                        "cannot remove {}: {e}",
                        entry.path().display()
                    )));
                }
            }
        }
    }
    Ok(())
}

/// A file written since the daemon loaded the directory: no unit yet.
fn not_loaded(u: &UnitInfo) -> bool {
    u.reason
        .as_deref()
        .is_some_and(|r| r.starts_with(crate::protocol::NOT_LOADED))
}

/// Which units `verb --all` acts on: every unit; `stop` and `restart`
/// leave out Protected ones, `start` and `restart` invalid ones, `stop`
/// and `restart` files not loaded yet (`start` loads them).
pub fn chosen<'a>(verb: &str, units: &'a [UnitInfo]) -> (Vec<String>, Vec<&'a UnitInfo>) {
    let mut names = Vec::new();
    let mut spared = Vec::new();
    for u in units {
        let protected = u.protected && verb != "start";
        let invalid = u.state == StateName::Invalid && verb != "stop";
        // A new file (not loaded yet) is started: the daemon loads it.
        if protected || invalid || (not_loaded(u) && verb != "start") {
            spared.push(u);
        } else {
            names.push(u.name.clone());
        }
    }
    (names, spared)
}

/// `start --all`, `stop --all`, `restart --all`.
pub fn all(g: &Global, out: &render::Output, verb: &str) -> Result<(), Error> {
    let units = match client::request(g, Request::List, true)? {
        Response::Units(units) => units,
        other => return Err(client::unexpected(&other)),
    };
    let (names, spared) = chosen(verb, &units);
    for u in &spared {
        if not_loaded(u) && verb != "start" {
            out.note(&format!(
                "{}: left out (not loaded yet: `diakonos reload` loads it)",
                u.name
            ));
            continue;
        }
        let why = if u.state == StateName::Invalid {
            "invalid"
        } else {
            "Protected = true; name it to"
        };
        if u.state == StateName::Invalid {
            out.warning(&format!("{}: left out ({why})", u.name));
        } else {
            out.note(&format!("{}: left out ({why} {verb} it)", u.name));
        }
    }
    if names.is_empty() {
        out.note(&format!("no units to {verb}"));
        return Ok(());
    }
    let req = match verb {
        "start" => Request::Start(names),
        "stop" => Request::Stop(names),
        _ => Request::Restart(names),
    };
    match client::request(g, req, true)? {
        Response::Job(results) => out.job(verb, &results),
        other => Err(client::unexpected(&other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(command: &[&str]) -> RunOpts {
        RunOpts {
            command: command.iter().map(|s| s.to_string()).collect(),
            ..RunOpts::default()
        }
    }

    #[test]
    fn awkward_arguments_round_trip_through_the_unit_parser() {
        // Spaces, quotes, backslashes, `$`, non-ASCII, empty and newline
        // arguments come back out of the written unit exactly.
        let argv: Vec<String> = [
            "/bin/echo",
            "two words",
            "it's",
            "say \"hi\"",
            "back\\slash",
            "$HOME",
            "${X}",
            "a$$b",
            "ünïcødé ✓",
            "",
            "line\nbreak",
            "tab\there",
            "#not-a-comment",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let mut o = opts(&[]);
        o.env = vec!["X=1".into(), "Q=a \"b\" \\c".into()];
        o.requires = vec!["db".into()];
        let text = unit_text(&o, &argv);
        let unit = unit::parse("x", Path::new("/s/x.service"), &text, Path::new("/s"))
            .unwrap_or_else(|e| panic!("{text}\n{e:?}"));
        assert_eq!(unit.exec_start, argv, "{text}");
        assert_eq!(
            *unit.environment,
            vec![
                ("X".to_owned(), "1".to_owned()),
                ("Q".to_owned(), "a \"b\" \\c".to_owned())
            ]
        );
        assert_eq!(*unit.requires, vec!["db".to_owned()]);
    }

    #[test]
    fn default_name_is_the_programs_base_name() {
        // The base name, with characters a unit name cannot hold replaced.
        assert_eq!(default_name("/usr/bin/python3"), "python3");
        assert_eq!(default_name("./my app.sh"), "my-app.sh");
        assert_eq!(default_name("/"), "service");
    }

    #[test]
    fn bad_run_options_are_usage_errors() {
        // A wrong --restart, --env without `=`, a bad name: exit 2.
        let mut o = opts(&["sleep", "1"]);
        o.restart = Some("sometimes".into());
        assert_eq!(check_run(&o).unwrap_err().exit_code(), 2);
        let mut o = opts(&["sleep", "1"]);
        o.env = vec!["NOEQUALS".into()];
        assert_eq!(check_run(&o).unwrap_err().exit_code(), 2);
        let mut o = opts(&["sleep", "1"]);
        o.name = Some("a/b".into());
        assert_eq!(check_run(&o).unwrap_err().exit_code(), 2);
        assert_eq!(check_run(&opts(&[])).unwrap_err().exit_code(), 2);
    }
}
