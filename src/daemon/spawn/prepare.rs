//! What a spawn works out before the clone, in the daemon (the child may
//! not allocate): the service's environment (the daemon's own, turned into
//! C strings once, [`SpawnCache`]), where its program is on its PATH
//! (remembered), the checks that fail `start` with their own error, and an
//! existing log opened for appending.

use super::*;

/// Spawn work that is the same every time, done once. The daemon's own
/// environment never changes while it runs, so it is turned into `K=V` C
/// strings on the first spawn and shared by every service. Where a program
/// was found on PATH is remembered per (program, PATH, working directory):
/// a thousand units running `sleep` look it up once. [`SpawnCache::forget_programs`]
/// (on reload) starts the lookups afresh, and a remembered path that no
/// longer works is looked up again before a spawn is reported as failed.
#[derive(Default)]
pub struct SpawnCache {
    /// The daemon's environment, PATH defaulted: (length of the name, `K=V`).
    pub(super) base_env: Option<Rc<[(usize, CString)]>>,
    /// program -> [(PATH, working directory, where it was found, every
    /// place on that PATH it could be: tried by the child, in order, when
    /// the remembered one no longer works)].
    pub(super) programs: HashMap<String, Vec<Found>>,
    /// The signals a child resets ([`child::signals_to_reset`]), read on
    /// the first spawn (the daemon's handlers are set before it).
    pub(super) reset: Option<u64>,
}

type Found = (Vec<u8>, std::path::PathBuf, CString, Rc<[CString]>);

impl SpawnCache {
    /// Forgets where programs were found (a reload may mean new programs).
    pub fn forget_programs(&mut self) {
        self.programs.clear();
    }

    pub(super) fn base_env(&mut self) -> io::Result<Rc<[(usize, CString)]>> {
        if self.base_env.is_none() {
            let mut env = Vec::new();
            let mut has_path = false;
            for (k, v) in std::env::vars_os() {
                has_path |= k == "PATH";
                if !launcher_only(k.as_bytes()) {
                    env.push(env_entry(k.as_bytes(), v.as_bytes())?);
                }
            }
            if !has_path {
                env.push(env_entry(b"PATH", DEFAULT_PATH.as_bytes())?);
            }
            self.base_env = Some(env.into());
        }
        Ok(self.base_env.clone().unwrap_or_else(|| Rc::from([])))
    }

    /// Where `program` is, found (or remembered) in the service's PATH,
    /// with where else it may be when it was remembered (tried by the child
    /// if the remembered place fails; none when it was looked for just now,
    /// unless `always`).
    pub(super) fn locate(
        &mut self,
        program: &str,
        path: &[u8],
        cwd: &Path,
        always: bool,
    ) -> io::Result<(CString, Rc<[CString]>)> {
        if program.contains('/') {
            let at = cwd.join(program);
            executable(&at)?;
            return Ok((cstring(at.into_os_string().into_vec())?, Rc::new([])));
        }
        if let Some((found, all)) = self.remembered(program, path, cwd) {
            if executable(Path::new(OsStr::from_bytes(found.as_bytes()))).is_ok() {
                return Ok((found.clone(), Rc::clone(all)));
            }
            // Moved or gone since: looked up again.
            if let Some(places) = self.programs.get_mut(program) {
                places.retain(|(p, dir, _, _)| !(p == path && dir == cwd));
            }
        }
        let found = cstring(
            resolve_program(program, path, cwd)?
                .into_os_string()
                .into_vec(),
        )?;
        let candidates = std::env::split_paths(OsStr::from_bytes(path))
            .map(|dir| cstring(cwd.join(dir).join(program).into_os_string().into_vec()))
            .collect::<io::Result<Rc<[CString]>>>()?;
        let fallbacks = if always {
            Rc::clone(&candidates)
        } else {
            Rc::new([])
        };
        self.programs.entry(program.to_owned()).or_default().push((
            path.to_vec(),
            cwd.to_path_buf(),
            found.clone(),
            candidates,
        ));
        Ok((found, fallbacks))
    }

    /// Where `program` was found before on this PATH from this directory,
    /// and every place it could be there.
    fn remembered(
        &self,
        program: &str,
        path: &[u8],
        cwd: &Path,
    ) -> Option<(&CString, &Rc<[CString]>)> {
        self.programs
            .get(program)?
            .iter()
            .find(|(p, dir, _, _)| p == path && dir == cwd)
            .map(|(_, _, found, all)| (found, all))
    }
}

/// Variables that describe the daemon's own protocol with whatever
/// started it (systemd's socket activation and watchdog, sd_notify): a
/// service gets its own or none, never the daemon's (systemd unsets them).
pub(super) fn launcher_only(name: &[u8]) -> bool {
    matches!(
        name,
        b"LISTEN_PID"
            | b"LISTEN_FDS"
            | b"LISTEN_FDNAMES"
            | b"WATCHDOG_PID"
            | b"WATCHDOG_USEC"
            | b"NOTIFY_SOCKET"
    )
}

/// `K=V` as a C string, with the length of `K`.
pub(super) fn env_entry(k: &[u8], v: &[u8]) -> io::Result<(usize, CString)> {
    let mut kv = Vec::with_capacity(k.len() + 1 + v.len());
    kv.extend_from_slice(k);
    kv.push(b'=');
    kv.extend_from_slice(v);
    Ok((k.len(), cstring(kv)?))
}

/// The environment a service gets: the daemon's, PATH defaulted, then
/// `USER`, `LOGNAME`, `HOME` and `SHELL` of its `User=`, the unit's Environment and
/// the daemon's own additions, later entries winning. The daemon's part is
/// borrowed from `base`; `own` holds the rest.
pub(super) fn service_envp<'e>(
    base: &'e [(usize, CString)],
    spec: &SpawnSpec<'_>,
    identity: Option<&Identity>,
    own: &'e mut Vec<CString>,
) -> io::Result<Vec<&'e CStr>> {
    let user: &[(&str, &[u8])] = match identity {
        Some(id) => &[
            ("USER", id.name.as_bytes()),
            ("LOGNAME", id.name.as_bytes()),
            ("HOME", id.home.as_os_str().as_bytes()),
            ("SHELL", id.shell.as_os_str().as_bytes()),
        ],
        None => &[],
    };
    let overrides: Vec<(&str, &[u8])> = user
        .iter()
        .copied()
        .chain(
            spec.env
                .iter()
                .chain(spec.extra_env)
                .map(|(k, v)| (k.as_str(), v.as_bytes())),
        )
        .collect();
    let overridden = |name: &[u8]| overrides.iter().any(|(k, _)| k.as_bytes() == name);
    for (i, (k, v)) in overrides.iter().enumerate() {
        // A later entry with the same name wins.
        if !overrides[i + 1..].iter().any(|(later, _)| later == k) {
            own.push(env_entry(k.as_bytes(), v)?.1);
        }
    }
    let mut envp: Vec<&CStr> = base
        .iter()
        .filter(|(len, kv)| !overridden(&kv.as_bytes()[..*len]))
        .map(|(_, kv)| kv.as_c_str())
        .collect();
    envp.extend(own.iter().map(CString::as_c_str));
    Ok(envp)
}

/// The PATH a service runs with: its own, else the daemon's (defaulted).
pub(super) fn service_path<'p>(base: &'p [(usize, CString)], spec: &'p SpawnSpec<'_>) -> &'p [u8] {
    if let Some((_, v)) = spec
        .env
        .iter()
        .chain(spec.extra_env)
        .rev()
        .find(|(k, _)| k == "PATH")
    {
        return v.as_bytes();
    }
    base.iter()
        .find(|(len, kv)| &kv.as_bytes()[..*len] == b"PATH")
        .map_or(DEFAULT_PATH.as_bytes(), |(len, kv)| {
            &kv.as_bytes()[len + 1..]
        })
}

/// Finds `program` the way a shell would, but in the *service's* PATH (the
/// one it will run with), relative paths against its working directory
/// ([`crate::program::search`]), as the error its exec would give.
pub(super) fn resolve_program(
    program: &str,
    path: &[u8],
    cwd: &Path,
) -> io::Result<std::path::PathBuf> {
    crate::program::search(program, OsStr::from_bytes(path), cwd).map_err(|e| match e {
        // There, but not a program that may run: what a shell says too.
        crate::program::NotOnPath::NotExecutable(_) => {
            io::Error::from(io::ErrorKind::PermissionDenied)
        }
        crate::program::NotOnPath::Nowhere => io::Error::from(io::ErrorKind::NotFound),
    })
}

/// Whether `path` is a file someone may execute (checked before the clone:
/// a service is up once spawned, and `start` should still say that its
/// program is missing). The exec may refuse it all the same (another user,
/// a mount without exec): that comes later, from the child.
pub(super) fn executable(path: &Path) -> io::Result<()> {
    crate::program::check(path).map_err(crate::program::Refusal::io_error)
}

/// What the child would otherwise find only after the service was said to
/// be up (a service is up once spawned, SPEC §6): a working directory that
/// does not exist (the log is opened by the daemon, [`open_log`]). What
/// only the child can find (a directory its user may not enter) still
/// comes from it.
pub(super) fn check_before_clone(spec: &SpawnSpec<'_>) -> Result<(), SpawnError> {
    match std::fs::metadata(spec.cwd) {
        Ok(meta) if !meta.is_dir() => Err(SpawnError::WorkingDirectory {
            dir: spec.cwd.into(),
            error: io::Error::from_raw_os_error(nix::libc::ENOTDIR).to_string(),
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            Err(SpawnError::NoWorkingDirectory(spec.cwd.into()))
        }
        _ => Ok(()),
    }
}

/// The service's log, when it exists (or a link to one does), opened for
/// appending by the daemon: `start` says when it cannot be (a directory, a
/// dangling link, an immutable file, a FIFO nobody reads). None when there
/// is none yet: the child creates it (see child::Plan::new_log). Opened
/// non-blocking (a FIFO with no reader would stop the daemon's loop: ENXIO
/// instead), then blocking again, as any stdout; moved above where the
/// child puts its sockets; close-on-exec. One open in the common case.
pub(super) fn open_log(path: &Path, sockets: usize) -> Result<Option<OwnedFd>, SpawnError> {
    use std::os::unix::fs::OpenOptionsExt;
    let failed = |e: io::Error| SpawnError::Log {
        path: path.into(),
        error: match e.raw_os_error() {
            Some(nix::libc::ENXIO) => "it is a FIFO that nothing reads".to_owned(),
            _ => e.to_string(),
        },
    };
    let open = |create: bool| {
        std::fs::OpenOptions::new()
            .append(true)
            .create(create)
            .mode(0o640)
            .custom_flags(nix::libc::O_NONBLOCK)
            .open(path)
    };
    let file = match open(false) {
        Ok(file) => file,
        // Nothing there: the child's to make.
        Err(e)
            if e.kind() == io::ErrorKind::NotFound && std::fs::symlink_metadata(path).is_err() =>
        {
            return Ok(None)
        }
        // A link to nowhere: opened as the child would, for its error.
        Err(e) if e.kind() == io::ErrorKind::NotFound => open(true).map_err(failed)?,
        Err(e) => return Err(failed(e)),
    };
    let fd = OwnedFd::from(file);
    // Its status flags are O_APPEND alone from now on: blocking again.
    nix::fcntl::fcntl(
        &fd,
        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_APPEND),
    )
    .map_err(|e| failed(e.into()))?;
    above_sockets(fd, sockets).map(Some).map_err(failed)
}

pub(super) fn cstring(bytes: Vec<u8>) -> io::Result<CString> {
    CString::new(bytes).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "NUL byte in a command or variable",
        )
    })
}
