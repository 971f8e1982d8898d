//! Finding a service's program as its exec will: a name with a `/` is a
//! path, taken against the working directory; any other is looked up on
//! PATH (relative entries against the working directory too), where the
//! first file with an execute bit wins and a directory of that name is
//! passed over, as a shell's lookup does. The one lookup behind `verify`
//! (`unit/host.rs`, which words what it finds for the unit file) and the
//! spawn (`daemon/spawn/prepare.rs`, which remembers where programs are).
//! Whether the service's *user* may run it is `verify`'s further check
//! (and, at the spawn, the exec's).

use std::ffi::OsStr;
use std::io;
use std::path::{Path, PathBuf};

/// Why a file is no program that can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Nothing is there.
    Missing,
    /// It cannot be looked at (a directory above it that may not be
    /// searched, say): the error of that look.
    Unreachable(io::ErrorKind),
    Directory,
    /// A file no one may execute (no execute bit at all).
    NotExecutable,
}

impl Refusal {
    /// The error an exec of it would give.
    pub fn io_error(self) -> io::Error {
        match self {
            Refusal::Missing => io::Error::from(io::ErrorKind::NotFound),
            Refusal::Unreachable(kind) => io::Error::from(kind),
            Refusal::Directory => io::Error::from_raw_os_error(nix::libc::EISDIR),
            Refusal::NotExecutable => io::Error::from(io::ErrorKind::PermissionDenied),
        }
    }
}

/// Why a bare program name was not found on PATH.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotOnPath {
    /// No file of that name in any of its directories.
    Nowhere,
    /// Only files no one may execute; the first of them.
    NotExecutable(PathBuf),
}

/// Whether `file` is a file someone may execute.
pub fn check(file: &Path) -> Result<(), Refusal> {
    use std::os::unix::fs::PermissionsExt;
    match std::fs::metadata(file) {
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
            ) =>
        {
            Err(Refusal::Missing)
        }
        Err(e) => Err(Refusal::Unreachable(e.kind())),
        Ok(meta) if meta.is_dir() => Err(Refusal::Directory),
        Ok(meta) if meta.is_file() && meta.permissions().mode() & 0o111 != 0 => Ok(()),
        Ok(_) => Err(Refusal::NotExecutable),
    }
}

/// Looks the bare name `program` up on `path`, relative entries against
/// `cwd`.
pub fn search(program: &str, path: &OsStr, cwd: &Path) -> Result<PathBuf, NotOnPath> {
    let mut refused = None;
    for dir in std::env::split_paths(path) {
        let candidate = cwd.join(dir).join(program);
        match check(&candidate) {
            Ok(()) => return Ok(candidate),
            Err(Refusal::NotExecutable) => refused = refused.or(Some(candidate)),
            // Where it cannot be looked, it is not found either.
            Err(Refusal::Missing | Refusal::Directory | Refusal::Unreachable(_)) => {}
        }
    }
    Err(refused.map_or(NotOnPath::Nowhere, NotOnPath::NotExecutable))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn the_first_executable_file_on_path_wins_and_directories_are_passed_over() {
        // As a shell looks a name up: relative PATH entries against the working directory, a directory of the name skipped, a file without an execute bit reported only when nothing better is found.
        let dir = std::env::temp_dir().join(format!("diakonos-program-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        for sub in ["a/tool", "b", "c"] {
            fs::create_dir_all(dir.join(sub)).expect("mkdir");
        }
        let write = |name: &str, mode: u32| {
            let file = dir.join(name);
            fs::write(&file, "#!/bin/sh\n").expect("write");
            fs::set_permissions(&file, fs::Permissions::from_mode(mode)).expect("chmod");
        };
        write("b/tool", 0o644);
        write("c/tool", 0o755);
        let path = OsStr::new("a:b:c");
        assert_eq!(search("tool", path, &dir), Ok(dir.join("c/tool")));
        assert_eq!(
            search("tool", OsStr::new("a:b"), &dir),
            Err(NotOnPath::NotExecutable(dir.join("b/tool")))
        );
        assert_eq!(
            search("tool", OsStr::new("a"), &dir),
            Err(NotOnPath::Nowhere)
        );
        assert_eq!(check(&dir.join("c/tool")), Ok(()));
        assert_eq!(check(&dir.join("b/tool")), Err(Refusal::NotExecutable));
        assert_eq!(check(&dir.join("a/tool")), Err(Refusal::Directory));
        assert_eq!(check(&dir.join("nope")), Err(Refusal::Missing));
        assert_eq!(
            Refusal::Directory.io_error().kind(),
            io::ErrorKind::IsADirectory
        );
        let _ = fs::remove_dir_all(&dir);
    }
}
