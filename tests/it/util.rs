//! The harness: a private home and service directory per test, the client
//! run as a subprocess, polling with deadlines, and process inspection
//! through `/proc`.
//!
//! [`Home`] owns every process its test causes. On drop (also after a
//! panic) it asks the daemon for its services, sends the daemon SIGTERM,
//! waits, SIGKILLs it if needed, then SIGKILLs the process group of every
//! service it ever saw and of anything else whose command line names the
//! test's directory. Nothing here sleeps to synchronise: [`Home::wait_until`]
//! polls a condition until a deadline and reports the last state it saw.
//!
//! Test services are `sh -c` one-liners (see [`sh`]). Their working
//! directory defaults to the service directory, so relative marker files
//! (`echo $$ >> started`) land in `units/`, where [`Home::lines`] reads them.

use std::collections::BTreeSet;
use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;
use serde_json::Value;

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_diakonos");

/// No single client command may take longer than this; a hang is a failure.
const COMMAND_DEADLINE: Duration = Duration::from_secs(30);

/// The default deadline for `wait_until` in tests.
pub const WAIT: Duration = Duration::from_secs(10);

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// One test's private world: `root/home` (DIAKONOS_HOME) and `root/units`
/// (the service directory).
pub struct Home {
    pub root: PathBuf,
    pub home: PathBuf,
    pub units: PathBuf,
    /// Every service process seen, as (pid, start time) so a reused pid is
    /// never signalled.
    seen: Mutex<BTreeSet<(i32, u64)>>,
}

impl Home {
    pub fn new(test: &str) -> Home {
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        // A Unix socket path has room for 107 bytes, and the control socket
        // lives at `<root>/home/diakonos.sock`: long test names are cut.
        let short: String = test.chars().take(48).collect();
        let root = std::env::temp_dir()
            .join("diakonos-tests")
            .join(short)
            .join(format!("{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        let home = root.join("home");
        let units = root.join("units");
        fs::create_dir_all(&home).expect("create the test home");
        fs::create_dir_all(&units).expect("create the test service dir");
        Home {
            root,
            home,
            units,
            seen: Mutex::new(BTreeSet::new()),
        }
    }

    /// Writes `units/NAME.service`.
    pub fn unit(&self, name: &str, toml: &str) {
        fs::write(self.units.join(format!("{name}.service")), toml).expect("write a unit file");
    }

    /// A file in the service directory (where relative markers land).
    pub fn path(&self, name: &str) -> PathBuf {
        self.units.join(name)
    }

    /// The lines of a marker file; none when it does not exist yet.
    pub fn lines(&self, marker: &str) -> Vec<String> {
        read_lines(&self.path(marker))
    }

    /// Waits until the marker file has exactly `n` lines: the `n`-th launch
    /// has run its shell that far (a unit `running` only means spawned).
    pub fn wait_lines(&self, marker: &str, n: usize) {
        self.wait_until(&format!("{n} line(s) in {marker}"), WAIT, || {
            self.lines(marker).len() == n
        });
    }

    /// Waits until the marker file has a line: the service's shell got
    /// that far (`what`, for the message at the deadline).
    pub fn wait_written(&self, marker: &str, what: &str) {
        self.wait_until(what, WAIT, || !self.lines(marker).is_empty());
    }

    /// The pid a service's shell wrote as the first line of `marker`, once
    /// it is there; remembered for the cleanup.
    pub fn written_pid(&self, marker: &str) -> i32 {
        self.wait_written(marker, &format!("a pid in {marker}"));
        let line = self.lines(marker).swap_remove(0);
        let pid = line
            .trim()
            .parse()
            .unwrap_or_else(|e| panic!("{marker}: {line:?} is not a pid: {e}"));
        self.remember(pid);
        pid
    }

    /// Writes unit `name`, a `[service]` with the `keys` lines and the
    /// shell `script` as ExecStart (see [`sh`]), and starts it.
    pub fn start_script(&self, name: &str, keys: &str, script: &str) {
        self.unit(
            name,
            &format!("[service]\n{keys}ExecStart = {}\n", sh(script)),
        );
        self.ok(&["start", name]);
    }

    /// Live processes whose working directory is the service dir: the
    /// test's services and their helpers (clients and the daemon run
    /// elsewhere). For processes that may die before they say who they are.
    pub fn procs_in_units(&self) -> Vec<i32> {
        let units = fs::canonicalize(&self.units).unwrap_or_else(|_| self.units.clone());
        all_pids()
            .into_iter()
            .filter(|&p| {
                alive(p) && fs::read_link(format!("/proc/{p}/cwd")).is_ok_and(|c| c == units)
            })
            .collect()
    }

    /// Runs the client with this home and service dir (`--service-dir units`,
    /// relative to the test root, which is the client's working directory).
    pub fn cmd(&self, args: &[&str]) -> Output {
        self.run(self.command(args))
    }

    /// The client command [`Home::cmd`] runs, to adjust before [`Home::run`].
    pub fn command(&self, args: &[&str]) -> Command {
        let home = self.home.to_str().expect("utf-8 temp dir");
        let mut all: Vec<&str> = vec!["--home", home, "--service-dir", "units"];
        all.extend(args);
        self.bare_command(&all)
    }

    /// Runs the client with exactly `args` (no --home or --service-dir).
    pub fn bare(&self, args: &[&str]) -> Output {
        self.run(self.bare_command(args))
    }

    fn bare_command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .current_dir(&self.root)
            .env_remove("DIAKONOS_HOME")
            .env_remove("DIAKONOS_SERVICE_DIR")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null());
        cmd
    }

    /// Runs a client command, killing it and panicking if it hangs.
    pub fn run(&self, cmd: Command) -> Output {
        self.run_within(cmd, COMMAND_DEADLINE)
    }

    /// Runs a client command that must finish within `deadline`.
    pub fn run_within(&self, cmd: Command, deadline: Duration) -> Output {
        let what = format!("{cmd:?}");
        run_with_deadline(cmd, &what, deadline)
    }

    /// Like [`Home::cmd`], but the client starts with no fd above 2 open,
    /// except `inherit`, which it gets as fd 42 (not close-on-exec). A daemon
    /// it starts inherits exactly that.
    pub fn cmd_fds(&self, args: &[&str], inherit: Option<&fs::File>) -> Output {
        use std::os::fd::AsRawFd;
        use std::os::unix::process::CommandExt;
        let mut cmd = self.command(args);
        let src = inherit.map(AsRawFd::as_raw_fd);
        // SAFETY: runs in the forked child before exec and only makes
        // async-signal-safe system calls (dup2, close) on plain integers.
        unsafe {
            cmd.pre_exec(move || {
                if let Some(src) = src {
                    if nix::libc::dup2(src, 42) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                for fd in 3..4096 {
                    if src.is_none() || fd != 42 {
                        nix::libc::close(fd);
                    }
                }
                Ok(())
            });
        }
        self.run(cmd)
    }

    /// Runs the client, asserts exit 0, returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.cmd(args);
        assert!(
            out.status.success(),
            "`diakonos {}` failed with {}\nstdout:\n{}\nstderr:\n{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs the client, asserts exit `code`, returns stderr.
    pub fn fails(&self, code: i32, args: &[&str]) -> String {
        let out = self.cmd(args);
        assert_eq!(
            out.status.code(),
            Some(code),
            "`diakonos {}`: expected exit {code}\nstdout:\n{}\nstderr:\n{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// `list --json`, parsed; every pid in it is remembered for cleanup.
    pub fn json_list(&self) -> Value {
        let text = self.ok(&["list", "--json"]);
        let v: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("list --json is not JSON ({e}): {text}"));
        self.remember_pids(&v);
        v
    }

    /// Unit `app`, `Type = "forking"`: its start command (after `before`)
    /// puts `sleep 1000` in the background, writes its pid to `app.pid`
    /// (its PIDFile) and exits 0.
    pub fn forking_app(&self, before: &str) {
        let pidfile = self.path("app.pid");
        self.unit(
            "app",
            &format!(
                "[service]\nType = \"forking\"\nPIDFile = {}\nExecStart = {}\n",
                toml_str(&pidfile.display().to_string()),
                sh(&format!(
                    "{before}sleep 1000 < /dev/null > /dev/null 2>&1 & echo $! > app.pid; exit 0"
                ))
            ),
        );
    }

    /// The names `list --json` shows, in its order.
    pub fn listed_names(&self) -> Vec<String> {
        let list = self.json_list();
        list.as_array()
            .expect("list --json is an array")
            .iter()
            .filter_map(|u| u["name"].as_str().map(str::to_owned))
            .collect()
    }

    /// One unit's entry of `list --json`.
    pub fn unit_json(&self, name: &str) -> Value {
        let list = self.json_list();
        list.as_array()
            .and_then(|a| a.iter().find(|u| u["name"] == name))
            .cloned()
            .unwrap_or_else(|| panic!("no unit `{name}` in list --json: {list}"))
    }

    /// `status NAME --json`, parsed.
    pub fn status_json(&self, name: &str) -> Value {
        let text = self.ok(&["status", name, "--json"]);
        let v: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("status --json is not JSON ({e}): {text}"));
        self.remember_pids(&Value::Array(vec![v.clone()]));
        v
    }

    /// The state of one unit.
    pub fn state(&self, name: &str) -> String {
        self.unit_json(name)["state"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// The pid of one unit; panics when it has none.
    pub fn pid(&self, name: &str) -> i32 {
        let u = self.unit_json(name);
        u["pid"]
            .as_i64()
            .unwrap_or_else(|| panic!("`{name}` has no pid: {u}")) as i32
    }

    /// The unit's main pid once that process runs its own program: a unit
    /// is up once spawned, and until its exec (a moment later) the process
    /// is a copy of the daemon, its limits and identity maybe not set yet.
    /// For tests that look at the process itself in /proc.
    pub fn exec_pid(&self, name: &str) -> i32 {
        let pid = self.pid(name);
        let ours = fs::canonicalize(BIN).ok();
        self.wait_until(&format!("{name} ({pid}) to exec its program"), WAIT, || {
            fs::read_link(format!("/proc/{pid}/exe")).ok() != ours
        });
        pid
    }

    /// Polls `cond` about every 10 ms until it holds; at the deadline panics
    /// with `what` and the last `list` output.
    pub fn wait_until(&self, what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
        let deadline = Instant::now() + timeout;
        loop {
            if cond() {
                return;
            }
            if Instant::now() >= deadline {
                let list = try_run(self.command(&["list"]), Duration::from_secs(5))
                    .map(|out| format!("{}{}", stdout(&out), stderr(&out)))
                    .unwrap_or_else(|| "(no answer)".to_owned());
                panic!("timed out after {timeout:?} waiting for {what}\nlast `list`:\n{list}");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Polls `cond` for `window` and panics as soon as it does not hold: a
    /// check that something does *not* happen (a restart that must not come).
    pub fn stays(&self, what: &str, window: Duration, mut cond: impl FnMut() -> bool) {
        let end = Instant::now() + window;
        while Instant::now() < end {
            assert!(cond(), "expected {what} for {window:?}, but it changed");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits until `name` is in `state`.
    pub fn wait_state(&self, name: &str, state: &str) {
        self.wait_until(&format!("{name} to be {state}"), WAIT, || {
            self.state(name) == state
        });
    }

    /// The daemon's pid, from `home/daemon.lock`.
    pub fn daemon_pid(&self) -> Option<i32> {
        fs::read_to_string(self.home.join("daemon.lock"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// Replaces the running daemon `how`: by `daemon-upgrade`, or by a
    /// SIGKILL (`crash`) and the next command starting another; returns
    /// once a new one answers.
    pub fn replace_daemon(&self, how: &str) {
        let old = self.daemon_pid().expect("a daemon");
        match how {
            "upgrade" => {
                self.ok(&["daemon-upgrade"]);
            }
            _ => kill9(old),
        }
        self.wait_until("a new daemon", WAIT, || {
            self.ok(&["list"]);
            self.daemon_pid().is_some_and(|p| p != old)
        });
    }

    /// Remembers `pid` (a service, or a process a service started) so that
    /// cleanup kills its process group if it is still alive.
    pub fn remember(&self, pid: i32) {
        if let Some(stat) = Stat::of(pid) {
            if let Ok(mut seen) = self.seen.lock() {
                seen.insert((pid, stat.starttime));
            }
        }
    }

    fn remember_pids(&self, list: &Value) {
        for u in list.as_array().into_iter().flatten() {
            if let Some(pid) = u["pid"].as_i64() {
                self.remember(pid as i32);
            }
        }
    }

    /// Whether `pid` is this test's daemon (guards against a reused pid).
    fn is_our_daemon(&self, pid: i32) -> bool {
        alive(pid) && is_daemon_of(pid, &self.home)
    }

    /// Every live daemon process for this home (scanning /proc).
    pub fn daemons(&self) -> Vec<i32> {
        all_pids()
            .into_iter()
            .filter(|&p| alive(p) && is_daemon_of(p, &self.home))
            .collect()
    }

    fn cleanup(&self) {
        // Ask a live daemon for its services first (never start one here).
        // Nothing in here may panic: this runs while unwinding too.
        if self.daemon_pid().is_some_and(|p| self.is_our_daemon(p)) {
            let listed = try_run(self.command(&["list", "--json"]), Duration::from_secs(5));
            if let Some(v) =
                listed.and_then(|out| serde_json::from_slice::<Value>(&out.stdout).ok())
            {
                self.remember_pids(&v);
            }
        }
        // The listing may have started a daemon if the old one just died.
        if let Some(pid) = self.daemon_pid().filter(|&p| self.is_our_daemon(p)) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(5);
            while alive(pid) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            if alive(pid) {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
        }
        // Everything left: services seen, and any process naming our root.
        let my_pgrp = nix::unistd::getpgrp().as_raw();
        let me = std::process::id() as i32;
        let mut victims: Vec<i32> = Vec::new();
        if let Ok(seen) = self.seen.lock() {
            for &(pid, start) in seen.iter() {
                if Stat::of(pid).is_some_and(|s| s.starttime == start && s.state != 'Z') {
                    victims.push(pid);
                }
            }
        }
        // The trailing slash keeps `.../1-1` from matching `.../1-12`.
        let root = format!("{}/", self.root.display());
        // A service nobody listed (a daemon lost track of it) still has its
        // log as stdout, or its working directory, in our root.
        let ours = |link: &str| {
            fs::read_link(format!("/proc/{link}"))
                .is_ok_and(|p| format!("{}/", p.display()).starts_with(&root))
        };
        for pid in all_pids() {
            if pid != me
                && alive(pid)
                && (cmdline(pid).contains(&root)
                    || ours(&format!("{pid}/fd/1"))
                    || ours(&format!("{pid}/cwd")))
            {
                victims.push(pid);
            }
        }
        for &pid in &victims {
            if let Some(stat) = Stat::of(pid) {
                if stat.pgrp > 1 && stat.pgrp != my_pgrp {
                    let _ = killpg(Pid::from_raw(stat.pgrp), Signal::SIGKILL);
                }
            }
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while victims.iter().any(|&p| alive(p)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        // A root daemon's notify socket is in /run, outside our root: one
        // the test killed left it there.
        diakonos::paths::Home {
            dir: self.home.clone(),
        }
        .remove_run_notify_socket();
    }
}

impl Drop for Home {
    fn drop(&mut self) {
        self.cleanup();
        // After a failure the directory stays for a post-mortem.
        if !std::thread::panicking() {
            let _ = fs::remove_dir_all(&self.root);
            // The per-test parent goes too once its last run is gone.
            if let Some(parent) = self.root.parent() {
                let _ = fs::remove_dir(parent);
            }
        }
    }
}

/// Runs `cmd` with piped output, killing it and panicking after `deadline`.
fn run_with_deadline(cmd: Command, what: &str, deadline: Duration) -> Output {
    match try_run_inner(cmd, deadline) {
        Ok(out) => out,
        Err(e) => panic!("{what}: {e}"),
    }
}

/// Runs `cmd` like [`run_with_deadline`] but never panics: `None` when it
/// cannot be run or does not finish in time (it is killed then).
pub fn try_run(cmd: Command, deadline: Duration) -> Option<Output> {
    try_run_inner(cmd, deadline).ok()
}

fn try_run_inner(mut cmd: Command, deadline: Duration) -> Result<Output, String> {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = cmd.spawn().map_err(|e| format!("cannot run: {e}"))?;
    let pid = child.id() as i32;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(deadline) {
        Ok(Ok(out)) => Ok(out),
        Ok(Err(e)) => Err(format!("waiting for it: {e}")),
        Err(_) => {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            Err(format!("did not finish within {deadline:?}"))
        }
    }
}

/// Waits for `child` to exit, polling within `deadline`; kills it and
/// panics naming `what` if it has not by then.
pub fn wait_exit(child: &mut Child, deadline: Duration, what: &str) -> ExitStatus {
    let until = Instant::now() + deadline;
    loop {
        if let Some(status) = child.try_wait().expect("wait for a child") {
            return status;
        }
        if Instant::now() > until {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not exit within {deadline:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A TOML string holding `sh -c '<script>'`, for `ExecStart = ...`.
/// Every `$` is doubled: ExecStart expands variables as systemd does, and
/// `$$` is how a unit passes a literal `$` on to the shell.
pub fn sh(script: &str) -> String {
    let script = script.replace('$', "$$");
    toml_str(&format!("sh -c {}", shell_words::quote(&script)))
}

/// A TOML basic string (JSON string escapes are valid TOML escapes).
pub fn toml_str(s: &str) -> String {
    serde_json::to_string(s).expect("a string serialises")
}

pub fn read_lines(path: &Path) -> Vec<String> {
    fs::read_to_string(path)
        .map(|t| t.lines().map(str::to_owned).collect())
        .unwrap_or_default()
}

/// The fields of `/proc/PID/stat` the tests look at.
#[derive(Debug, Clone, Copy)]
pub struct Stat {
    pub state: char,
    pub ppid: i32,
    pub pgrp: i32,
    pub session: i32,
    pub starttime: u64,
}

impl Stat {
    pub fn of(pid: i32) -> Option<Stat> {
        let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // The command name is in parentheses and may contain anything.
        let rest = &text[text.rfind(')')? + 1..];
        let f: Vec<&str> = rest.split_whitespace().collect();
        Some(Stat {
            state: f.first()?.chars().next()?,
            ppid: f.get(1)?.parse().ok()?,
            pgrp: f.get(2)?.parse().ok()?,
            session: f.get(3)?.parse().ok()?,
            starttime: f.get(19)?.parse().ok()?,
        })
    }
}

/// Whether `pid` runs (a zombie does not count).
pub fn alive(pid: i32) -> bool {
    Stat::of(pid).is_some_and(|s| s.state != 'Z')
}

/// Whether `pid` is gone entirely: not running and not a zombie either.
pub fn gone(pid: i32) -> bool {
    !Path::new(&format!("/proc/{pid}")).exists()
}

/// The command line of `pid`, arguments joined by spaces.
pub fn cmdline(pid: i32) -> String {
    fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| {
            String::from_utf8_lossy(&b)
                .split('\0')
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

/// The arguments of `pid`.
pub fn args(pid: i32) -> Vec<String> {
    fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| {
            b.split(|&c| c == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Whether `pid` runs `diakonos ... --home HOME ... daemon`.
pub fn is_daemon_of(pid: i32, home: &Path) -> bool {
    let args = args(pid);
    let home = home.to_string_lossy();
    args.windows(2).any(|w| w[0] == "--home" && w[1] == home) && args.iter().any(|a| a == "daemon")
}

/// Every pid in /proc.
pub fn all_pids() -> Vec<i32> {
    fs::read_dir("/proc")
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// The children of `parent` and their states.
pub fn children_of(parent: i32) -> Vec<(i32, char)> {
    all_pids()
        .into_iter()
        .filter_map(|p| {
            Stat::of(p)
                .filter(|s| s.ppid == parent)
                .map(|s| (p, s.state))
        })
        .collect()
}

/// Sends SIGKILL to one process.
pub fn kill9(pid: i32) {
    kill(Pid::from_raw(pid), Signal::SIGKILL).expect("kill -9");
}

/// Makes `dir` world-writable (for services running as another user).
pub fn world_writable(dir: &Path) {
    fs::create_dir_all(dir).expect("create dir");
    fs::set_permissions(dir, fs::Permissions::from_mode(0o777)).expect("chmod 0777");
}

/// Reads from `stream` until EOF or error; `None` if it stayed open past
/// `timeout`.
pub fn read_to_close(
    stream: &mut std::os::unix::net::UnixStream,
    timeout: Duration,
) -> Option<Vec<u8>> {
    stream
        .set_read_timeout(Some(timeout))
        .expect("set a read timeout");
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return Some(got),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return None
            }
            // A reset counts as closed.
            Err(_) => return Some(got),
        }
    }
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The open fd numbers of `pid` (empty when it is gone).
pub fn fds_of(pid: i32) -> Vec<u32> {
    let mut fds: Vec<u32> = fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    fds.sort_unstable();
    fds
}

/// VmRSS of `pid` in KiB.
pub fn rss_kib(pid: i32) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The children of `parent` that are zombies.
pub fn zombie_children(parent: i32) -> Vec<i32> {
    children_of(parent)
        .into_iter()
        .filter(|&(_, state)| state == 'Z')
        .map(|(pid, _)| pid)
        .collect()
}

/// Units `database` and `worker` (which Requires it), started; each writes
/// its name to `order` when it gets SIGTERM, so tests can check stop order.
/// Returns once both TERM traps are in place.
pub fn start_trapped_worker_and_database(h: &Home) {
    let trap = |name: &str| {
        sh(&format!(
            "trap \"echo {name} >> order; exit 0\" TERM; echo $$ >> {name}.started; while :; do sleep 0.05; done"
        ))
    };
    h.unit(
        "database",
        &format!("[service]\nExecStart = {}\n", trap("database")),
    );
    h.unit(
        "worker",
        &format!(
            "[unit]\nRequires = [\"database\"]\n[service]\nExecStart = {}\n",
            trap("worker")
        ),
    );
    h.ok(&["start", "worker"]);
    h.wait_until("both traps to be set", WAIT, || {
        !h.lines("database.started").is_empty() && !h.lines("worker.started").is_empty()
    });
}

/// A client run in the background (one that waits), killed and reaped
/// when dropped, so a failing test leaves it behind no more than a daemon.
pub struct Background(pub std::process::Child);

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
