//! `startup [--print]` (SPEC §16): the entry that starts this daemon at
//! boot: a systemd unit where systemd runs, an OpenRC script where OpenRC
//! runs, else an `@reboot` line in the current user's crontab. Each names
//! the absolute binary, `--home` and `--service-dir` of the current daemon.
//! `DIAKONOS_STARTUP=cron|systemd|openrc` picks one explicitly.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::error::Error;

/// Where the boot entry goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum System {
    Cron,
    Systemd,
    OpenRc,
}

/// The init system of this host (or the one `DIAKONOS_STARTUP` names).
pub fn detect() -> Result<System, Error> {
    match std::env::var("DIAKONOS_STARTUP").ok().as_deref() {
        Some("cron") => return Ok(System::Cron),
        Some("systemd") => return Ok(System::Systemd),
        Some("openrc") => return Ok(System::OpenRc),
        Some(other) if !other.is_empty() => {
            return Err(Error::Usage(format!(
                "DIAKONOS_STARTUP={other}: expected cron, systemd or openrc"
            )))
        }
        _ => {}
    }
    if Path::new("/run/systemd/system").is_dir() {
        Ok(System::Systemd)
    } else if Path::new("/run/openrc").is_dir() {
        Ok(System::OpenRc)
    } else {
        Ok(System::Cron)
    }
}

/// The command line that starts the daemon, every path absolute.
pub fn daemon_command(bin: &Path, home: &Path, service_dir: &Path, detach: bool) -> String {
    let quote = |p: &Path| shell_words::quote(&p.to_string_lossy()).into_owned();
    format!(
        "{} --home {} --service-dir {} daemon{}",
        quote(bin),
        quote(home),
        quote(service_dir),
        if detach { " --detach" } else { "" }
    )
}

/// The crontab line (cron reads an unescaped `%` as a newline).
pub fn cron_line(bin: &Path, home: &Path, service_dir: &Path) -> String {
    let command = daemon_command(bin, home, service_dir, true).replace('%', "\\%");
    format!("@reboot {command}")
}

/// A systemd unit that runs the daemon in the foreground; its command
/// lines in systemd's own quoting (`%` and `$` escaped).
pub fn systemd_unit(bin: &Path, home: &Path, service_dir: &Path, user: &str) -> String {
    let word = |p: &Path| p.to_string_lossy().into_owned();
    let start = [
        word(bin),
        "--home".into(),
        word(home),
        "--service-dir".into(),
        word(service_dir),
        "daemon".into(),
    ];
    let stop = [word(bin), "--home".into(), word(home), "kill".into()];
    format!(
        "[Unit]\nDescription=diakonos service manager ({user})\nAfter=network.target\n\n[Service]\nType=simple\nUser={user}\nExecStart={}\nExecStop={}\nKillMode=process\nRestart=on-failure\n\n[Install]\nWantedBy=multi-user.target\n",
        crate::cli::export::command(&start),
        crate::cli::export::command(&stop),
    )
}

/// An OpenRC script that runs the daemon in the background.
pub fn openrc_script(bin: &Path, home: &Path, service_dir: &Path, user: &str) -> String {
    format!(
        "#!/sbin/openrc-run\ndescription=\"diakonos service manager ({user})\"\ncommand={}\ncommand_args=\"--home {} --service-dir {} daemon\"\ncommand_user={user}\ncommand_background=yes\npidfile=/run/diakonos-{user}.pid\n\ndepend() {{\n\tneed localmount\n\tafter net\n}}\n",
        bin.display(),
        home.display(),
        service_dir.display()
    )
}

fn user_name() -> String {
    nix::unistd::User::from_uid(nix::unistd::Uid::effective())
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_else(|| nix::unistd::Uid::effective().to_string())
}

/// Prints (`print`) or installs the boot entry.
pub fn run(bin: &Path, home: &Path, service_dir: &Path, print: bool) -> Result<(), Error> {
    let system = detect()?;
    let user = user_name();
    match system {
        System::Cron => {
            let line = cron_line(bin, home, service_dir);
            if print {
                outln!("{line}");
                return Ok(());
            }
            install_cron(&line)
        }
        System::Systemd => {
            let text = systemd_unit(bin, home, service_dir, &user);
            let name = format!("diakonos-{user}.service");
            if print {
                out!("# /etc/systemd/system/{name}\n{text}");
                return Ok(());
            }
            let path = PathBuf::from("/etc/systemd/system").join(&name);
            write_root_file(&path, &text, 0o644)?;
            run_tool("systemctl", &["daemon-reload"])?;
            run_tool("systemctl", &["enable", &name])?;
            outln!("installed {} and enabled it", path.display());
            Ok(())
        }
        System::OpenRc => {
            let text = openrc_script(bin, home, service_dir, &user);
            let name = format!("diakonos-{user}");
            if print {
                out!("# /etc/init.d/{name}\n{text}");
                return Ok(());
            }
            let path = PathBuf::from("/etc/init.d").join(&name);
            write_root_file(&path, &text, 0o755)?;
            run_tool("rc-update", &["add", &name, "default"])?;
            outln!(
                "installed {} and added it to the default runlevel",
                path.display()
            );
            Ok(())
        }
    }
}

fn write_root_file(path: &Path, text: &str, mode: u32) -> Result<(), Error> {
    use std::os::unix::fs::PermissionsExt;
    if !nix::unistd::Uid::effective().is_root() {
        return Err(Error::failed_hint(
            format!("installing {} needs root", path.display()),
            "run `sudo diakonos startup` with the same --home and --service-dir, or `diakonos startup --print` to see it",
        ));
    }
    std::fs::write(path, text)
        .and_then(|()| std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)))
        .map_err(|e| Error::failed(format!("cannot write {}: {e}", path.display())))
}

fn run_tool(tool: &str, args: &[&str]) -> Result<(), Error> {
    let status = Command::new(tool)
        .args(args)
        .status()
        .map_err(|e| Error::failed(format!("cannot run {tool}: {e}")))?;
    if status.success() {
        Ok(())
    } else {
        Err(Error::failed(format!(
            "`{tool} {}` failed ({status})",
            args.join(" ")
        )))
    }
}

/// Adds `line` to the current user's crontab unless an `@reboot` line
/// for this home is there already (then it is replaced).
fn install_cron(line: &str) -> Result<(), Error> {
    let current = match Command::new("crontab").arg("-l").stderr(Stdio::null()).output() {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).into_owned(),
        // "no crontab for USER": start from nothing.
        Ok(_) => String::new(),
        Err(e) => {
            return Err(Error::failed_hint(
                format!("cannot run crontab: {e}"),
                "install cron (e.g. `apt-get install cron`), or use `diakonos startup --print` and add the line to your init system",
            ))
        }
    };
    if current.lines().any(|l| l.trim() == line) {
        outln!("already in the crontab: {line}");
        return Ok(());
    }
    // An older entry for the same home (another binary or service dir) goes.
    let home_arg = line
        .split(" --service-dir ")
        .next()
        .and_then(|head| head.split(" --home ").nth(1))
        .map(|h| format!(" --home {h} "));
    let mut text: String = current
        .lines()
        .filter(|l| {
            !(l.trim_start().starts_with("@reboot")
                && home_arg.as_deref().is_some_and(|h| l.contains(h)))
        })
        .map(|l| format!("{l}\n"))
        .collect();
    text.push_str(line);
    text.push('\n');
    let mut child = Command::new("crontab")
        .arg("-")
        .stdin(Stdio::piped())
        .spawn()
        .map_err(|e| Error::failed(format!("cannot run crontab: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(text.as_bytes())
            .map_err(|e| Error::failed(format!("cannot write to crontab: {e}")))?;
    }
    let status = child
        .wait()
        .map_err(|e| Error::failed(format!("crontab: {e}")))?;
    if !status.success() {
        return Err(Error::failed(format!("`crontab -` failed ({status})")));
    }
    outln!("added to the crontab: {line}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_name_the_binary_home_and_service_dir() {
        // Every entry is absolute paths, quoted where needed.
        let (bin, home, dir) = (
            Path::new("/usr/local/bin/diakonos"),
            Path::new("/home/ann/.diakonos"),
            Path::new("/srv/my units"),
        );
        assert_eq!(
            cron_line(bin, home, dir),
            "@reboot /usr/local/bin/diakonos --home /home/ann/.diakonos --service-dir '/srv/my units' daemon --detach"
        );
        let unit = systemd_unit(bin, home, dir, "ann");
        assert!(unit.contains("ExecStart=/usr/local/bin/diakonos --home /home/ann/.diakonos --service-dir \"/srv/my units\" daemon\n"));
        assert!(unit.contains("ExecStop=/usr/local/bin/diakonos --home /home/ann/.diakonos kill\n"));
        assert!(unit.contains("User=ann\n"));
        assert!(openrc_script(bin, home, dir, "ann").starts_with("#!/sbin/openrc-run\n"));
    }

    #[test]
    fn a_percent_or_a_space_in_a_path_survives_cron_and_systemd() {
        // cron reads `%` as a newline, systemd as a specifier: both escaped; ExecStop is quoted too.
        let (bin, home, dir) = (
            Path::new("/opt/d/diakonos"),
            Path::new("/tmp/h p%x"),
            Path::new("/tmp/s p%x"),
        );
        let line = cron_line(bin, home, dir);
        assert!(line.contains("'/tmp/h p\\%x'"), "{line}");
        assert!(!line.replace("\\%", "").contains('%'), "{line}");
        let unit = systemd_unit(bin, home, dir, "ann");
        assert!(
            unit.contains("ExecStop=/opt/d/diakonos --home \"/tmp/h p%%x\" kill\n"),
            "{unit}"
        );
        let start = unit
            .lines()
            .find(|l| l.starts_with("ExecStart="))
            .unwrap_or_default();
        let words = crate::cli::import::systemd::split_words(&start["ExecStart=".len()..])
            .expect("systemd reads it");
        assert_eq!(words[2], "/tmp/h p%%x", "{start}");
    }
}
