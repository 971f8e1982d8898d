//! Where diakonos keeps things (SPEC §2): the home directory and the files in
//! it, and the service directory. Resolution only; nothing here starts or
//! talks to a daemon.

use std::ffi::OsString;
use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The PATH services get when the daemon's environment has none (a crontab line).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Where a root daemon puts its notify socket (see [`Home::notify_socket`]).
pub const NOTIFY_RUN_DIR: &str = "/run/diakonos";

/// The longest path a Unix socket's address holds (`sun_path` is 108 bytes
/// with its NUL).
pub const MAX_SOCKET_PATH: usize = 107;

/// The home directory layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Home {
    pub dir: PathBuf,
}

impl Home {
    /// `--home DIR`, else `$DIAKONOS_HOME`, else `~/.diakonos`. Made absolute.
    pub fn resolve(flag: Option<PathBuf>) -> Result<Home, String> {
        let dir = match flag.or_else(|| non_empty_env("DIAKONOS_HOME").map(PathBuf::from)) {
            Some(dir) => dir,
            None => match non_empty_env("HOME") {
                Some(home) => PathBuf::from(home).join(".diakonos"),
                None => {
                    return Err(
                        "cannot find a home directory: neither DIAKONOS_HOME nor HOME is set"
                            .into(),
                    )
                }
            },
        };
        Ok(Home {
            dir: absolute(&dir),
        })
    }

    /// Creates the home (mode 0700) and its `logs/` if missing.
    pub fn create(&self) -> io::Result<()> {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true).mode(0o700);
        builder.create(&self.dir)?;
        // An existing home keeps its contents but is tightened to 0700.
        let meta = std::fs::metadata(&self.dir)?;
        if meta.permissions().mode() & 0o077 != 0 {
            std::fs::set_permissions(&self.dir, std::fs::Permissions::from_mode(0o700))?;
        }
        builder.create(self.logs_dir())
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.join("diakonos.sock")
    }
    /// Where notify services send READY=1 (their $NOTIFY_SOCKET). A root
    /// daemon may run services as other users, who cannot enter the 0700
    /// home: its socket is `/run/diakonos/notify-HASH.sock` (the directory
    /// root's, 0755; the socket 0666), HASH a stable FNV-1a of the home's
    /// path, so a daemon restarted after a crash binds the same path its
    /// adopted services know. Anyone may send to it; senders are told apart
    /// by their kernel credentials, so nothing is gained by that, and
    /// nothing of the home becomes reachable.
    pub fn notify_socket(&self) -> PathBuf {
        if nix::unistd::Uid::effective().is_root() {
            let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
            for b in self.dir.as_os_str().as_encoded_bytes() {
                hash = (hash ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
            }
            Path::new(NOTIFY_RUN_DIR).join(format!("notify-{hash:016x}.sock"))
        } else {
            self.dir.join("notify.sock")
        }
    }
    /// Removes a root daemon's notify socket from /run, where it outlives
    /// the home (a socket inside the home goes with it): at a daemon's
    /// clean exit, and after a test or benchmark killed one.
    pub fn remove_run_notify_socket(&self) {
        let socket = self.notify_socket();
        if socket.starts_with(NOTIFY_RUN_DIR) {
            let _ = std::fs::remove_file(socket);
        }
    }
    pub fn lock(&self) -> PathBuf {
        self.dir.join("daemon.lock")
    }
    pub fn daemon_log(&self) -> PathBuf {
        self.dir.join("daemon.log")
    }
    pub fn state(&self) -> PathBuf {
        self.dir.join("state")
    }
    pub fn enabled(&self) -> PathBuf {
        self.dir.join("enabled")
    }
    pub fn logs_dir(&self) -> PathBuf {
        self.dir.join("logs")
    }
    pub fn service_log(&self, name: &str) -> PathBuf {
        self.logs_dir().join(format!("{name}.log"))
    }
}

/// `--service-dir DIR`, else `$DIAKONOS_SERVICE_DIR`, else `./services`; the
/// bool says whether the user named it (flag or environment).
/// A named directory that exists is resolved through symlinks, so two names
/// for one directory are the same service dir (the daemon compares them).
/// The default is only made absolute, as the daemon makes its own default:
/// it is never sent, and a client that finds a daemon running (every
/// `list`) then spends no system call on it beyond `getcwd`.
pub fn service_dir(flag: Option<PathBuf>) -> (PathBuf, bool) {
    match flag.or_else(|| non_empty_env("DIAKONOS_SERVICE_DIR").map(PathBuf::from)) {
        Some(dir) => {
            let dir = absolute(&dir);
            (std::fs::canonicalize(&dir).unwrap_or(dir), true)
        }
        None => (absolute(Path::new("services")), false),
    }
}

fn non_empty_env(key: &str) -> Option<OsString> {
    std::env::var_os(key).filter(|v| !v.is_empty())
}

/// Whether `path` is on a file system mounted `noexec` (where no program
/// may run, whatever its mode bits say). False when that cannot be told.
pub fn on_noexec_mount(path: &Path) -> bool {
    use nix::sys::statvfs::{statvfs, FsFlags};
    statvfs(path).is_ok_and(|fs| fs.flags().contains(FsFlags::ST_NOEXEC))
}

/// Makes `p` absolute against the current directory and drops `.` parts,
/// without touching the file system (the directory need not exist yet).
pub fn absolute(p: &Path) -> PathBuf {
    let joined = if p.is_absolute() {
        p.to_path_buf()
    } else {
        match std::env::current_dir() {
            Ok(cwd) => cwd.join(p),
            Err(_) => p.to_path_buf(),
        }
    };
    let mut out = PathBuf::new();
    for part in joined.components() {
        match part {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                if !out.pop() {
                    out.push(part);
                }
            }
            other => out.push(other),
        }
    }
    out
}

/// Writes `path` whole or not at all: into a temporary file beside it
/// (hidden, and named by our pid, so racing writers never share one),
/// then renamed over it.
pub fn write_atomic(path: &Path, text: &str) -> io::Result<()> {
    let mut name = OsString::from(".");
    name.push(path.file_name().unwrap_or_default());
    name.push(format!(".tmp.{}", std::process::id()));
    let tmp = path.with_file_name(name);
    let result = std::fs::write(&tmp, text).and_then(|()| std::fs::rename(&tmp, path));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absolute_drops_dot_parts() {
        // Relative paths become absolute and `.`/`..` are folded.
        assert_eq!(absolute(Path::new("/a/./b/../c")), PathBuf::from("/a/c"));
        assert!(absolute(Path::new("units")).is_absolute());
    }

    #[test]
    fn flag_wins_over_environment() {
        // An explicit --home is used as given (made absolute).
        let home = Home::resolve(Some(PathBuf::from("/tmp/x/../h"))).unwrap();
        assert_eq!(home.dir, PathBuf::from("/tmp/h"));
        assert_eq!(home.socket(), PathBuf::from("/tmp/h/diakonos.sock"));
    }
}
