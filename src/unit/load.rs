//! Reading a service directory: which files are units on this host
//! (`NAME@HOST.service`), reading each without blocking or loading something
//! huge, and turning every I/O or encoding problem into a [`UnitError`] of
//! its unit. Parsing is [`super::parse`]'s.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use super::diag::{esc, line_col};
use super::{parse, LoadedDir, Unit, UnitError, MAX_UNIT_FILE_BYTES};

/// This machine's name, which picks the `NAME@HOST.service` overrides
/// (empty when it cannot be read: then no override applies).
pub fn hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_default()
}

/// Loads every `*.service` in `dir` for the host named `hostname`.
/// What a file in the service directory is to the units.
#[derive(Debug, PartialEq, Eq)]
pub enum FileName<'a> {
    /// A file of unit `name`: `NAME.service`, or `NAME@HOST.service` on
    /// this host (`host_specific`), which replaces it here.
    Unit { name: &'a str, host_specific: bool },
    /// Not a unit here: another file, a hidden one (editor leftovers like
    /// `.#web.service`, or units put aside on purpose), another host's.
    Other,
    /// Looks like a unit file but names none: why (for a warning).
    Skipped(&'static str),
}

/// The one rule for unit file names (load and the directory's watch).
pub fn unit_file_name<'a>(file_name: &'a str, hostname: &str) -> FileName<'a> {
    let Some(stem) = file_name.strip_suffix(".service") else {
        return FileName::Other;
    };
    if stem.starts_with('.') {
        return FileName::Other;
    }
    let (name, host_specific) = match stem.split_once('@') {
        None => (stem, false),
        Some((_, "")) => {
            return FileName::Skipped("no host name after `@` (expected NAME@HOST.service)")
        }
        Some((name, host)) if host == hostname => (name, true),
        Some(_) => return FileName::Other,
    };
    if name.is_empty() {
        return FileName::Skipped("no unit name before `.service`");
    }
    FileName::Unit {
        name,
        host_specific,
    }
}

pub fn load_dir(dir: &Path, hostname: &str) -> std::io::Result<LoadedDir> {
    load_dir_keeping(dir, hostname, &[])
}

/// [`load_dir`] where the units of `holders` (a daemon's, whose sockets are
/// bound) keep their `[socket]` addresses: a unit file that names one too
/// is the one in error, whatever the names' order.
pub fn load_dir_keeping(
    dir: &Path,
    hostname: &str,
    holders: &[String],
) -> std::io::Result<LoadedDir> {
    let mut out = LoadedDir::default();
    // Unit name -> (file `NAME.service`, file `NAME@HOST.service` for this host).
    let mut found: BTreeMap<String, (Option<String>, Option<String>)> = BTreeMap::new();
    for entry in fs::read_dir(dir)? {
        let entry = match entry {
            Ok(entry) => entry,
            Err(err) => {
                out.warnings.push(format!(
                    "{}: cannot read a directory entry: {err}",
                    dir.display()
                ));
                continue;
            }
        };
        let os_name = entry.file_name();
        let Some(file_name) = os_name.to_str() else {
            if os_name.as_encoded_bytes().ends_with(b".service") {
                out.warnings.push(format!(
                    "{}: skipped: the file name is not valid UTF-8",
                    esc(&dir.join(&os_name).display().to_string())
                ));
            }
            continue;
        };
        let (name, host_specific) = match unit_file_name(file_name, hostname) {
            FileName::Unit {
                name,
                host_specific,
            } => (name, host_specific),
            FileName::Other => continue,
            FileName::Skipped(why) => {
                out.warnings.push(format!(
                    "{}: skipped: {why}",
                    esc(&dir.join(file_name).display().to_string())
                ));
                continue;
            }
        };
        let slot = found.entry(name.to_string()).or_default();
        if host_specific {
            slot.1 = Some(file_name.to_string());
        } else {
            slot.0 = Some(file_name.to_string());
        }
    }

    for (name, files) in found {
        let file = match files {
            (Some(generic), Some(specific)) => {
                out.warnings.push(format!(
                    "{}: using {specific} instead of {generic} on this host",
                    esc(&dir.join(&specific).display().to_string())
                ));
                specific
            }
            (None, Some(file)) | (Some(file), None) => file,
            (None, None) => continue,
        };
        let path = dir.join(&file);
        let result = if is_valid_name(&name) {
            load_file(&name, &path, dir)
        } else {
            Err(vec![UnitError {
                path,
                pos: None,
                message: format!(
                    "invalid unit name `{}`; expected ASCII letters, digits and `_.:-` only, not starting with `-` or `.`, not ending in `.service`",
                    esc(&name)
                ),
                hint: Some("rename the file".to_string()),
            }])
        };
        // Unit warnings (a variable never set) also reach whoever reads the
        // directory's warnings: the daemon logs them on load and reload.
        if let Ok(unit) = &result {
            out.warnings
                .extend(unit.source.warnings.iter().map(ToString::to_string));
        }
        out.units.insert(name, result);
    }
    claim_addresses(&mut out, holders);
    Ok(out)
}

/// One `[socket]` address in two units is a load error of the second (the
/// `holders` first, then in name order): the daemon could bind it for only
/// one of them.
fn claim_addresses(out: &mut LoadedDir, holders: &[String]) {
    // (A list: a few addresses, compared by what they cover.)
    let mut owners: Vec<(super::Listen, String)> = Vec::new();
    let (mut order, rest): (Vec<String>, Vec<String>) = out
        .units
        .keys()
        .cloned()
        .partition(|name| holders.contains(name));
    order.extend(rest);
    for name in order {
        let Some(result) = out.units.get_mut(&name) else {
            continue;
        };
        let Ok(unit) = result else { continue };
        let Some(socket) = &unit.socket else { continue };
        let mut clash = None;
        for l in &socket.listen {
            match owners.iter().find(|(o, _)| overlaps(o, l)) {
                Some((o, other)) => {
                    clash = Some((l.addr.clone(), o.addr.clone(), other.clone()));
                    break;
                }
                None => owners.push((l.clone(), name.clone())),
            }
        }
        if let Some((addr, taken, other)) = clash {
            let (message, hint) = if other == name {
                (
                    format!("[socket] address {addr} is listed twice (as {taken} too)"),
                    "list it once".to_string(),
                )
            } else {
                (
                    format!("[socket] address {addr} is already used by unit `{other}` (as {taken}); expected each address in one unit"),
                    format!("remove it from one of `{other}` and `{name}`"),
                )
            };
            *result = Err(vec![UnitError {
                path: unit.path.clone(),
                pos: None,
                message,
                hint: Some(hint),
            }]);
        }
    }
}

/// Whether two `[socket]` addresses cannot both be bound: the same path
/// (`a/../b` is `b`; a path is one file, whatever the kind), or the same
/// kind (stream or datagram) and port where one address is the other or
/// covers it (`0.0.0.0` every IPv4 address, `[::]` every address: IPv6
/// sockets take IPv4 too unless the host says otherwise).
fn overlaps(a: &super::Listen, b: &super::Listen) -> bool {
    use super::ListenAddr::{Tcp, Unix};
    let covers = |x: &std::net::SocketAddr, y: &std::net::SocketAddr| {
        x.ip().is_unspecified() && (x.is_ipv6() || y.is_ipv4())
    };
    match (&a.addr, &b.addr) {
        (Tcp(x), Tcp(y)) => {
            a.datagram == b.datagram
                && x.port() == y.port()
                && (x.ip() == y.ip() || covers(x, y) || covers(y, x))
        }
        (Unix(x), Unix(y)) => normal(x) == normal(y),
        _ => false,
    }
}

/// An absolute path with `.` and `..` worked out (without the disk).
fn normal(path: &Path) -> std::path::PathBuf {
    use std::path::Component;
    let mut out = std::path::PathBuf::new();
    for c in path.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// Whether `name` can name a unit: letters, digits and `_.:-`, not
/// starting with `-` (it would read as an option on the command line) or
/// `.` (a hidden file, which loading skips), not ending in `.service`
/// (`web.service` on a command line means `web`).
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(['-', '.'])
        && !name.ends_with(".service")
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-'))
}

/// Reads and parses one unit file, turning every I/O or encoding problem
/// into a [`UnitError`] for this unit.
pub(super) fn load_file(name: &str, path: &Path, dir: &Path) -> Result<Unit, Vec<UnitError>> {
    let error = |message: String, hint: Option<&str>| {
        vec![UnitError {
            path: path.to_path_buf(),
            pos: None,
            message,
            hint: hint.map(str::to_string),
        }]
    };
    let bytes = read_unit_file(path).map_err(|(message, hint)| error(message, hint))?;
    match String::from_utf8(bytes) {
        Ok(text) => parse(name, path, &text, dir),
        Err(err) => {
            let valid = err.utf8_error().valid_up_to();
            let bytes = err.as_bytes();
            let prefix = std::str::from_utf8(&bytes[..valid]).unwrap_or_default();
            Err(vec![UnitError {
                path: path.to_path_buf(),
                pos: Some(line_col(prefix, valid)),
                message: "unit file is not valid UTF-8; expected TOML text".to_string(),
                hint: Some("save the file as UTF-8".to_string()),
            }])
        }
    }
}

/// Reads a unit file without ever blocking or loading something huge: the
/// file is opened non-blocking (a FIFO named `x.service` must not hang the
/// daemon) and checked with fstat before reading.
pub(super) fn read_unit_file(path: &Path) -> Result<Vec<u8>, (String, Option<&'static str>)> {
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK | nix::libc::O_NOCTTY)
        .open(path)
        .map_err(|err| open_error(path, &err))?;
    let meta = file
        .metadata()
        .map_err(|err| (format!("cannot read unit file: {err}"), None))?;
    if meta.is_dir() {
        return Err((
            "is a directory, expected a unit file".to_string(),
            Some("move the directory out of the service dir or rename it"),
        ));
    }
    if !meta.is_file() {
        return Err((
            "is not a regular file (a FIFO, socket or device?); expected a unit file".to_string(),
            None,
        ));
    }
    if meta.len() > MAX_UNIT_FILE_BYTES {
        return Err((
            format!(
                "unit file is {} bytes; expected at most {MAX_UNIT_FILE_BYTES}",
                meta.len()
            ),
            None,
        ));
    }
    // Sized by fstat (one read, not a probe per doubling); a file that
    // grows meanwhile is still read whole, up to the limit.
    let mut bytes = Vec::with_capacity(meta.len() as usize + 1);
    file.take(MAX_UNIT_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|err| (format!("cannot read unit file: {err}"), None))?;
    if bytes.len() as u64 > MAX_UNIT_FILE_BYTES {
        return Err((
            format!("unit file grew past {MAX_UNIT_FILE_BYTES} bytes while being read"),
            None,
        ));
    }
    Ok(bytes)
}

/// Explains why a unit file could not be opened, naming symlink trouble.
pub(super) fn open_error(path: &Path, err: &std::io::Error) -> (String, Option<&'static str>) {
    let is_symlink = fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
    if is_symlink && err.raw_os_error() == Some(nix::libc::ELOOP) {
        return (
            "is a symlink loop; expected a unit file".to_string(),
            Some("fix or remove the symlink"),
        );
    }
    if is_symlink && err.kind() == std::io::ErrorKind::NotFound {
        let target = fs::read_link(path)
            .map(|t| format!(" to `{}`", t.display()))
            .unwrap_or_default();
        return (
            format!("is a dangling symlink{target}; expected a unit file"),
            Some("fix or remove the symlink"),
        );
    }
    (format!("cannot open unit file: {err}"), None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn socket_addresses_overlap_as_the_kernel_binds_them() {
        // One path is one file, stream or datagram; 0.0.0.0 covers IPv4 only, [::] both; TCP and UDP on one port are apart.
        use super::super::{Listen, ListenAddr};
        let tcp = |a: &str, datagram| Listen {
            addr: ListenAddr::Tcp(a.parse().expect("an address")),
            datagram,
        };
        let unix = |p: &str, datagram| Listen {
            addr: ListenAddr::Unix(PathBuf::from(p)),
            datagram,
        };
        assert!(overlaps(
            &unix("/run/a.sock", false),
            &unix("/run/x/../a.sock", true)
        ));
        assert!(!overlaps(
            &unix("/run/a.sock", false),
            &unix("/run/b.sock", false)
        ));
        for (a, b, both) in [
            ("0.0.0.0:80", "127.0.0.1:80", true),
            ("[::]:80", "127.0.0.1:80", true),
            ("[::]:80", "0.0.0.0:80", true),
            ("[::]:80", "[::1]:80", true),
            ("0.0.0.0:80", "[::1]:80", false),
            ("127.0.0.1:80", "127.0.0.2:80", false),
            ("127.0.0.1:80", "127.0.0.1:81", false),
        ] {
            assert_eq!(overlaps(&tcp(a, false), &tcp(b, false)), both, "{a} {b}");
            assert_eq!(overlaps(&tcp(b, false), &tcp(a, false)), both, "{b} {a}");
        }
        assert!(!overlaps(
            &tcp("127.0.0.1:80", false),
            &tcp("127.0.0.1:80", true)
        ));
    }

    // -- load_dir ---------------------------------------------------------

    /// A scratch directory under the system temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(label: &str) -> TempDir {
            static COUNTER: AtomicUsize = AtomicUsize::new(0);
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let path = std::env::temp_dir()
                .join("diakonos-unit-tests")
                .join(format!("{label}-{}-{n}", std::process::id()));
            let _ = fs::remove_dir_all(&path);
            fs::create_dir_all(&path).expect("create temp dir");
            TempDir(path)
        }

        fn write(&self, name: &str, text: impl AsRef<[u8]>) {
            fs::write(self.0.join(name), text).expect("write test file");
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    const GOOD: &str = "[service]\nExecStart = \"worker\"\n";

    #[test]
    fn host_specific_files_load_only_on_their_host_and_win() {
        // NAME@HOST.service loads as NAME only on HOST, replaces NAME.service there, with a warning.
        let dir = TempDir::new("hosts");
        dir.write("web.service", GOOD);
        dir.write(
            "web@box1.service",
            "[service]\nExecStart = \"worker --box1\"\n",
        );
        dir.write("db@box2.service", GOOD);
        dir.write("cache.service", GOOD);
        dir.write("notes.txt", "not a unit");

        let on_box1 = load_dir(&dir.0, "box1").expect("load");
        assert_eq!(on_box1.units.keys().collect::<Vec<_>>(), ["cache", "web"]);
        let web = on_box1.units["web"].as_ref().expect("web loads");
        assert_eq!(web.exec_start, ["worker", "--box1"]);
        assert_eq!(web.path, dir.0.join("web@box1.service"));
        assert_eq!(&*web.working_directory, dir.0.as_path());
        assert_eq!(on_box1.warnings.len(), 1, "{:?}", on_box1.warnings);
        assert!(on_box1.warnings[0].contains("using web@box1.service instead of web.service"));

        let on_box2 = load_dir(&dir.0, "box2").expect("load");
        assert_eq!(
            on_box2.units.keys().collect::<Vec<_>>(),
            ["cache", "db", "web"]
        );
        let web = on_box2.units["web"].as_ref().expect("web loads");
        assert_eq!(web.exec_start, ["worker"]);
        assert!(on_box2.warnings.is_empty(), "{:?}", on_box2.warnings);
    }

    #[test]
    fn bad_entries_become_invalid_units_not_io_errors() {
        // A directory, a dangling symlink, a loop, a FIFO, bad UTF-8 and a bad name each fail only their unit.
        let dir = TempDir::new("bad-entries");
        dir.write("good.service", GOOD);
        fs::create_dir(dir.0.join("adir.service")).expect("mkdir");
        std::os::unix::fs::symlink(dir.0.join("nowhere"), dir.0.join("dangling.service"))
            .expect("symlink");
        std::os::unix::fs::symlink(dir.0.join("loop.service"), dir.0.join("loop.service"))
            .expect("symlink");
        nix::unistd::mkfifo(&dir.0.join("fifo.service"), nix::sys::stat::Mode::S_IRWXU)
            .expect("mkfifo");
        dir.write("latin1.service", b"[service]\nExecStart = \"caf\xe9\"\n");
        dir.write("my app.service", GOOD);
        dir.write("-dash.service", GOOD);
        dir.write("empty.service", "");

        let loaded = load_dir(&dir.0, "box").expect("load");
        let err = |name: &str| match &loaded.units[name] {
            Ok(unit) => panic!("{name} should be invalid, got {unit:?}"),
            Err(errors) => errors[0].clone(),
        };
        assert!(loaded.units["good"].is_ok());
        let e = err("adir");
        assert!(e.message.contains("is a directory"), "{e:?}");
        assert_eq!(e.path, dir.0.join("adir.service"));
        assert!(err("dangling").message.contains("dangling symlink"));
        assert!(err("loop").message.contains("symlink loop"));
        assert!(err("fifo").message.contains("not a regular file"));
        let e = err("latin1");
        assert!(e.message.contains("not valid UTF-8"), "{e:?}");
        assert_eq!(e.pos, Some((2, 17)));
        let e = err("my app");
        assert!(e.message.contains("invalid unit name `my app`"), "{e:?}");
        // It would read as an option: `start -dash`.
        let e = err("-dash");
        assert!(e.message.contains("not starting with `-`"), "{e:?}");
        assert_eq!(
            err("empty").message,
            "missing [service] section with ExecStart"
        );
        assert_eq!(loaded.units.len(), 9);
    }

    #[test]
    fn one_rule_names_the_unit_of_a_file() {
        // What load_dir and the directory's watch both go by.
        let unit = |name, host_specific| FileName::Unit {
            name,
            host_specific,
        };
        for (file, on_box1) in [
            ("web.service", unit("web", false)),
            ("web@box1.service", unit("web", true)),
            ("web@box2.service", FileName::Other),
            (".#web.service", FileName::Other),
            ("web.service.swp", FileName::Other),
            ("web.toml", FileName::Other),
            (
                "web@.service",
                FileName::Skipped("no host name after `@` (expected NAME@HOST.service)"),
            ),
            (
                "@box1.service",
                FileName::Skipped("no unit name before `.service`"),
            ),
            (
                ".service",
                FileName::Skipped("no unit name before `.service`"),
            ),
        ] {
            assert_eq!(unit_file_name(file, "box1"), on_box1, "{file}");
        }
    }

    #[test]
    fn odd_file_names_are_skipped_with_warnings() {
        // Hidden files are ignored; `.service`, `@HOST.service` and `NAME@.service` are warnings, not units.
        let dir = TempDir::new("odd-names");
        dir.write(".#web.service", GOOD);
        dir.write(".service", GOOD);
        dir.write("@box.service", GOOD);
        dir.write("web@.service", GOOD);
        dir.write("web.service.bak", GOOD);
        let loaded = load_dir(&dir.0, "box").expect("load");
        assert!(loaded.units.is_empty(), "{:?}", loaded.units);
        assert_eq!(loaded.warnings.len(), 3, "{:?}", loaded.warnings);
        let skipped_hidden = !loaded.warnings.iter().any(|w| w.contains(".#web"));
        assert!(skipped_hidden);
    }

    #[test]
    fn unreadable_directory_is_the_only_io_error() {
        // Only a service dir that cannot be read at all gives Err.
        let dir = TempDir::new("missing");
        assert!(load_dir(&dir.0.join("absent"), "box").is_err());
    }

    #[test]
    fn systemd_only_keys_are_named_as_such_not_as_typos() {
        // ExecStartPre is a systemd key, not a misspelt ExecStart.
        let errs = parse(
            "a",
            Path::new("/u/a.service"),
            "[service]\nExecStart = \"x\"\nExecStartPre = \"y\"\n",
            Path::new("/u"),
        )
        .unwrap_err();
        let hint = errs[0].hint.clone().unwrap_or_default();
        assert!(hint.contains("systemd key"), "{hint}");
        assert!(!hint.contains("did you mean"), "{hint}");
    }
}
