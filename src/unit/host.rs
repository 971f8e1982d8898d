//! Checks against this host, for `verify`: what `start` would fail on.
//! Reads the file system and the user database; starts nothing.

use std::fs;
use std::path::{Path, PathBuf};

use nix::unistd::Uid;

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
    check_host_as(unit, path_env, None)
}

/// [`check_host`] for a daemon running as `daemon_uid` (None: as this
/// command). A program found is also checked to be executable by the
/// identity the service runs as (User, Group, SupplementaryGroups, else
/// the daemon's), by the permission bits of the file and its directories.
pub fn check_host_as(
    unit: &Unit,
    path_env: &std::ffi::OsStr,
    daemon_uid: Option<u32>,
) -> Vec<UnitError> {
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
    // A required EnvironmentFile is read at each start: missing, every
    // start fails.
    for (file, optional) in &unit.limits.environment_files {
        if !optional && !file.exists() {
            let shown = esc_all(&file.display().to_string());
            error(
                "EnvironmentFile",
                format!("EnvironmentFile {shown} does not exist"),
                &format!("create it, or write \"-{shown}\" to make it optional"),
            );
        }
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
                let me = daemon_uid.map_or_else(nix::unistd::Uid::effective, Uid::from_raw);
                let like = if daemon_uid.is_some() {
                    "as the daemon of this directory does"
                } else {
                    "like this command"
                };
                if user.uid != me && !me.is_root() {
                    error(
                        "User",
                        format!(
                            "User = \"{}\" needs the daemon to run as root (it would run as uid {me}, {like})",
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
    let runs_as = identity(unit, daemon_uid);
    let path = unit
        .environment
        .iter()
        .rev()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| std::ffi::OsString::from(v))
        .unwrap_or_else(|| path_env.to_owned());
    let commands = [
        ("ExecStart", Some(&unit.exec_start)),
        ("ExecStop", unit.exec_stop.as_deref()),
    ];
    for (key, argv) in commands {
        let Some(program) = argv.and_then(|a| a.first()) else {
            continue;
        };
        // A relative path cannot be checked without its directory.
        if program.contains('/') && !Path::new(program).is_absolute() && !cwd_ok {
            continue;
        }
        match find_program(program, &path, cwd) {
            Err(why) => {
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
            Ok(file) if crate::paths::on_noexec_mount(&file) => {
                error(
                    key,
                    format!(
                        "`{key}` program {} is on a file system mounted noexec: it cannot run",
                        esc_all(&file.display().to_string())
                    ),
                    "move it to a file system that allows programs, or remount that one without noexec",
                );
            }
            Ok(file) => {
                let Some(who) = &runs_as else { continue };
                if let Err(why) = executable_by(&file, who) {
                    error(
                        key,
                        format!("`{key}` program {why}"),
                        "give that user execute (and search) permission, or change User/Group",
                    );
                }
            }
        }
    }
    crate::order::by_num(&mut errors, UnitError::file_order);
    errors
}

/// Who a service runs as, as far as this command can tell: uid, primary
/// gid, every group, and how to name it in a message.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Identity {
    uid: u32,
    gid: u32,
    groups: Vec<u32>,
    who: String,
}

/// The identity a unit's processes get: its User (with Group and
/// SupplementaryGroups), else the daemon's uid (this command's identity when
/// that is the same uid, else its user database entry). None when it
/// cannot be told (an unknown user or group, a uid with no entry).
fn identity(unit: &Unit, daemon_uid: Option<u32>) -> Option<Identity> {
    use nix::unistd::{getgrouplist, Gid, Group, User};
    let me = Uid::effective();
    let daemon = daemon_uid.map_or(me, Uid::from_raw);
    let mut id = match &unit.user {
        None if daemon == me => Identity {
            uid: me.as_raw(),
            gid: Gid::effective().as_raw(),
            groups: nix::unistd::getgroups()
                .ok()?
                .into_iter()
                .map(Gid::as_raw)
                .collect(),
            who: "this user".to_owned(),
        },
        user => {
            let (entry, who) = match user {
                None => (
                    User::from_uid(daemon).ok()?,
                    format!("the daemon's uid {daemon}"),
                ),
                Some(name) => {
                    let entry = match name.parse::<u32>() {
                        Ok(n) => User::from_uid(Uid::from_raw(n))
                            .ok()?
                            .or_else(|| Some(nameless_user(Uid::from_raw(n)))),
                        Err(_) => User::from_name(name).ok()?,
                    };
                    (entry, format!("User `{}`", esc(name)))
                }
            };
            let entry = entry?;
            let groups = match std::ffi::CString::new(entry.name.as_str()) {
                Ok(cname) if User::from_uid(entry.uid).ok().flatten().is_some() => {
                    getgrouplist(&cname, entry.gid).unwrap_or_else(|_| vec![entry.gid])
                }
                _ => vec![entry.gid],
            };
            Identity {
                uid: entry.uid.as_raw(),
                gid: entry.gid.as_raw(),
                groups: groups.into_iter().map(Gid::as_raw).collect(),
                who,
            }
        }
    };
    let group = |name: &str| match name.parse::<u32>() {
        Ok(n) => Some(n),
        Err(_) => Group::from_name(name).ok()?.map(|g| g.gid.as_raw()),
    };
    if let Some(name) = &unit.limits.group {
        id.gid = group(name)?;
        id.groups.push(id.gid);
    }
    for name in &unit.limits.supplementary_groups {
        id.groups.push(group(name)?);
    }
    Some(id)
}

/// Whether `who` may execute `file`, by the permission bits of the file and
/// the search bits of every directory above it (as the kernel checks
/// them, ACLs aside). Root needs one execute bit on the file only.
fn executable_by(file: &Path, who: &Identity) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let file = crate::paths::absolute(file);
    let allowed = |meta: &fs::Metadata| {
        let mode = meta.mode();
        if who.uid == 0 {
            return meta.is_dir() || mode & 0o111 != 0;
        }
        let bit = if meta.uid() == who.uid {
            0o100
        } else if meta.gid() == who.gid || who.groups.contains(&meta.gid()) {
            0o010
        } else {
            0o001
        };
        mode & bit != 0
    };
    let show = |meta: &fs::Metadata| {
        format!(
            "mode {:04o}, owner {}:{}",
            meta.mode() & 0o7777,
            meta.uid(),
            meta.gid()
        )
    };
    let shown = esc_all(&file.display().to_string());
    for dir in file.ancestors().skip(1) {
        let Ok(meta) = fs::metadata(dir) else {
            continue;
        };
        if !allowed(&meta) {
            return Err(format!(
                "{shown} is out of reach of {} (uid {}): it cannot enter {} ({})",
                who.who,
                who.uid,
                esc_all(&dir.display().to_string()),
                show(&meta)
            ));
        }
    }
    match fs::metadata(&file) {
        Ok(meta) if !allowed(&meta) => Err(format!(
            "{shown} is not executable by {} (uid {}) ({})",
            who.who,
            who.uid,
            show(&meta)
        )),
        _ => Ok(()),
    }
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

/// Finds `program` as spawning does ([`crate::program`]): a name with a
/// `/` is a path (relative to `cwd`), any other is looked up on `path`
/// (relative entries against `cwd`). The error says what is wrong, for
/// "`ExecStart` program ...".
pub(super) fn find_program(
    program: &str,
    path: &std::ffi::OsStr,
    cwd: &Path,
) -> Result<PathBuf, String> {
    use crate::program::{NotOnPath, Refusal};
    if program.contains('/') {
        let file = cwd.join(program);
        // Shown without `.` parts; looked up as written.
        let shown_file = esc_all(&crate::paths::absolute(&file).display().to_string());
        return match crate::program::check(&file) {
            Ok(()) => Ok(file),
            Err(Refusal::Missing) => Err(format!("{shown_file} does not exist")),
            Err(Refusal::Unreachable(kind)) => Err(format!(
                "{shown_file} cannot be looked at ({})",
                std::io::Error::from(kind)
            )),
            Err(Refusal::Directory) => Err(format!("{shown_file} is a directory")),
            Err(Refusal::NotExecutable) => Err(format!("{shown_file} is not executable")),
        };
    }
    let shown = esc(program);
    crate::program::search(program, path, cwd).map_err(|e| match e {
        NotOnPath::NotExecutable(file) => format!(
            "`{shown}` is not executable ({})",
            esc_all(&file.display().to_string())
        ),
        NotOnPath::Nowhere => format!(
            "`{shown}` not found in PATH ({})",
            esc_all(&path.to_string_lossy())
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_missing_required_environment_file_is_a_host_error() {
        // Required and missing: an error naming it, with the `-` form as the hint; optional or present: nothing.
        let dir = Path::new("/");
        let text = "[service]\nExecStart = \"/bin/true\"\nWorkingDirectory = \"/\"\n\
                    EnvironmentFile = [\"/nonexistent/env\", \"-/nonexistent/opt\", \"/etc/passwd\"]\n";
        let unit = crate::unit::parse("e", &dir.join("e.service"), text, dir).expect("parses");
        let errors = check_host(&unit, std::ffi::OsStr::new("/usr/bin:/bin"));
        let messages: Vec<&str> = errors.iter().map(|e| e.message.as_str()).collect();
        assert_eq!(
            messages,
            ["EnvironmentFile /nonexistent/env does not exist"]
        );
        assert!(errors[0]
            .hint
            .as_deref()
            .is_some_and(|h| h.contains("\"-/nonexistent/env\"")));
    }

    #[test]
    fn execute_permission_is_judged_by_the_bits_for_that_user() {
        // A user who neither owns the file nor is in its group needs the
        // "other" execute bit on it and the search bit on its directories.
        use std::os::unix::fs::MetadataExt;
        let dir = std::env::temp_dir().join(format!("diakonos-exec-test-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("closed")).expect("mkdir");
        let file = dir.join("run");
        fs::write(&file, "#!/bin/sh\n").expect("write");
        fs::copy(&file, dir.join("closed/run")).expect("copy");
        let chmod = |p: &Path, mode: u32| {
            fs::set_permissions(p, fs::Permissions::from_mode(mode)).expect("chmod")
        };
        let meta = fs::metadata(&file).expect("stat");
        // A uid and gid that are not the file's.
        let stranger = Identity {
            uid: meta.uid().wrapping_add(54321),
            gid: meta.gid().wrapping_add(54321),
            groups: vec![],
            who: "User `x`".into(),
        };
        let owner = Identity {
            uid: meta.uid(),
            gid: meta.gid(),
            groups: vec![meta.gid()],
            who: "User `me`".into(),
        };
        chmod(&file, 0o750);
        let err = executable_by(&file, &stranger).unwrap_err();
        assert!(err.contains("is not executable by User `x`"), "{err}");
        assert!(err.contains("mode 0750"), "{err}");
        assert_eq!(executable_by(&file, &owner), Ok(()));
        chmod(&file, 0o751);
        assert_eq!(executable_by(&file, &stranger), Ok(()));
        // The owner's own bit counts, not the others' (as the kernel
        // does); root needs any one execute bit.
        chmod(&file, 0o011);
        assert_eq!(executable_by(&file, &owner).is_ok(), owner.uid == 0);
        chmod(&file, 0o640);
        assert!(executable_by(&file, &owner).is_err());
        chmod(&dir.join("closed/run"), 0o755);
        chmod(&dir.join("closed"), 0o700);
        let err = executable_by(&dir.join("closed/run"), &stranger).unwrap_err();
        assert!(err.contains("cannot enter"), "{err}");
        assert_eq!(executable_by(&dir.join("closed/run"), &owner), Ok(()));
        let _ = fs::remove_dir_all(&dir);
    }

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
