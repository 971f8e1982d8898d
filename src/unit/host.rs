//! Checks against this host, for `verify`: what `start` would fail on.
//! Reads the file system and the user database; starts nothing.

use std::fs;
use std::path::{Path, PathBuf};

use super::diag::{esc, esc_all};
use super::{Unit, UnitError};

/// What `start` would fail on here, found without starting anything: a
/// missing WorkingDirectory, an unknown User, an ExecStart/ExecStop program
/// that is not there or not executable (looked up as spawning does: on the
/// service's PATH, relative paths against its WorkingDirectory), a `User`
/// other than the caller when the caller is not root. Each error is placed
/// at its value.
/// `path_env` is the PATH the service would get when its Environment sets
/// none (the daemon's). Reads the file system and the user database only.
pub fn check_host(unit: &Unit, path_env: &std::ffi::OsStr) -> Vec<UnitError> {
    let mut errors = Vec::new();
    let mut error = |key: &str, message: String, hint: &str| {
        errors.push(UnitError {
            path: unit.path.clone(),
            pos: unit.source.place(key),
            message,
            hint: Some(hint.to_string()),
        });
    };
    let cwd = &unit.working_directory;
    let cwd_ok = cwd.is_dir();
    if !cwd_ok {
        let what = if cwd.exists() {
            "is not a directory"
        } else {
            "does not exist"
        };
        error(
            "WorkingDirectory",
            format!(
                "WorkingDirectory {} {what}",
                esc_all(&cwd.display().to_string())
            ),
            "create the directory, or fix WorkingDirectory",
        );
    }
    let groups = unit.limits.group.iter().map(|g| ("Group", g)).chain(
        unit.limits
            .supplementary_groups
            .iter()
            .map(|g| ("SupplementaryGroups", g)),
    );
    for (key, name) in groups {
        if name.parse::<u32>().is_err() && matches!(nix::unistd::Group::from_name(name), Ok(None)) {
            error(
                key,
                format!("unknown {key} `{}`: no such group on this host", esc(name)),
                "create the group, or fix the name",
            );
        }
    }
    if let Some(name) = &unit.user {
        // A number is a uid, with or without a user database entry (as systemd).
        let numeric = name.parse::<u32>().ok().map(nix::unistd::Uid::from_raw);
        let found = match numeric {
            Some(uid) => {
                nix::unistd::User::from_uid(uid).map(|u| u.or_else(|| Some(nameless_user(uid))))
            }
            None => nix::unistd::User::from_name(name),
        };
        match found {
            Ok(Some(user)) => {
                let me = nix::unistd::Uid::effective();
                if user.uid != me && !me.is_root() {
                    error(
                        "User",
                        format!(
                            "User = \"{}\" needs the daemon to run as root (it would run as uid {me}, like this command)",
                            esc(name)
                        ),
                        "remove User, or run the daemon as root",
                    );
                }
            }
            Ok(None) => error(
                "User",
                format!("unknown User `{}`: no such user on this host", esc(name)),
                "create the user, or fix User",
            ),
            Err(e) => error(
                "User",
                format!("cannot look up User `{}`: {e}", esc(name)),
                "check the user database (/etc/passwd, NSS)",
            ),
        }
    }
    let path = unit
        .environment
        .iter()
        .rev()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| std::ffi::OsString::from(v))
        .unwrap_or_else(|| path_env.to_owned());
    let commands = [
        ("ExecStart", Some(&unit.exec_start)),
        ("ExecStop", unit.exec_stop.as_ref()),
    ];
    for (key, argv) in commands {
        let Some(program) = argv.and_then(|a| a.first()) else {
            continue;
        };
        // A relative path cannot be checked without its directory.
        if program.contains('/') && !Path::new(program).is_absolute() && !cwd_ok {
            continue;
        }
        if let Err(why) = find_program(program, &path, cwd) {
            // Installing it would not help a file that is there.
            let hint = if why.contains("is not executable") {
                "make it executable (chmod +x), or fix the path"
            } else if why.contains("is a directory") {
                "name the program inside it, or fix the path"
            } else {
                "install it, fix the path, or set PATH in Environment"
            };
            error(key, format!("`{key}` program {why}"), hint);
        }
    }
    errors.sort_by_key(|e| (e.pos.is_none(), e.pos));
    errors
}

/// A uid with no user database entry, as spawning runs it: its group is
/// the same number, its home `/`.
fn nameless_user(uid: nix::unistd::Uid) -> nix::unistd::User {
    nix::unistd::User {
        name: uid.to_string(),
        passwd: Default::default(),
        uid,
        gid: nix::unistd::Gid::from_raw(uid.as_raw()),
        gecos: Default::default(),
        dir: PathBuf::from("/"),
        shell: PathBuf::from("/bin/sh"),
    }
}

/// Finds `program` as spawning does: a name with a `/` is a path (relative to
/// `cwd`), any other is looked up on `path` (relative entries against `cwd`).
/// The error says what is wrong, for "`ExecStart` program ...".
pub(super) fn find_program(
    program: &str,
    path: &std::ffi::OsStr,
    cwd: &Path,
) -> Result<PathBuf, String> {
    use std::os::unix::fs::PermissionsExt;
    let shown = esc(program);
    if program.contains('/') {
        let file = cwd.join(program);
        // Shown without `.` parts; looked up as written.
        let shown_file = esc_all(&crate::paths::absolute(&file).display().to_string());
        return match fs::metadata(&file) {
            Err(_) => Err(format!("{shown_file} does not exist")),
            Ok(meta) if meta.is_dir() => Err(format!("{shown_file} is a directory")),
            Ok(meta) if meta.permissions().mode() & 0o111 == 0 => {
                Err(format!("{shown_file} is not executable"))
            }
            Ok(_) => Ok(file),
        };
    }
    let mut not_executable = None;
    for dir in std::env::split_paths(path) {
        let candidate = cwd.join(dir).join(program);
        if let Ok(meta) = fs::metadata(&candidate) {
            if meta.is_file() && meta.permissions().mode() & 0o111 != 0 {
                return Ok(candidate);
            }
            if meta.is_file() && not_executable.is_none() {
                not_executable = Some(candidate);
            }
        }
    }
    match not_executable {
        Some(file) => Err(format!(
            "`{shown}` is not executable ({})",
            esc_all(&file.display().to_string())
        )),
        None => Err(format!(
            "`{shown}` not found in PATH ({})",
            esc_all(&path.to_string_lossy())
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn programs_are_found_as_spawning_finds_them() {
        // A path is taken against the working directory; a bare name is looked up on PATH, relative entries against it too.
        let dir = std::env::temp_dir().join(format!("diakonos-host-test-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("bin")).expect("mkdir");
        let write = |name: &str, mode: u32| {
            let file = dir.join(name);
            fs::write(&file, "#!/bin/sh\n").expect("write");
            fs::set_permissions(&file, fs::Permissions::from_mode(mode)).expect("chmod");
        };
        write("bin/run", 0o755);
        write("bin/plain", 0o644);
        let path = std::ffi::OsStr::new("bin:/nonexistent");
        assert_eq!(find_program("run", path, &dir), Ok(dir.join("bin/run")));
        assert_eq!(
            find_program("./bin/run", path, &dir),
            Ok(dir.join("./bin/run"))
        );
        let err = find_program("plain", path, &dir).unwrap_err();
        assert!(err.contains("is not executable"), "{err}");
        let err = find_program("bin/plain", path, &dir).unwrap_err();
        assert!(err.ends_with("bin/plain is not executable"), "{err}");
        let err = find_program("bin", path, &dir).unwrap_err();
        assert!(
            err.contains("not found in PATH (bin:/nonexistent)"),
            "{err}"
        );
        let err = find_program("./bin", path, &dir).unwrap_err();
        assert!(err.ends_with("bin is a directory"), "{err}");
        let err = find_program("/nonexistent/x", path, &dir).unwrap_err();
        assert_eq!(err, "/nonexistent/x does not exist");
        let _ = fs::remove_dir_all(&dir);
    }
}
