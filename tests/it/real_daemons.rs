//! Programs nobody here wrote: Debian's nginx (package `nginx-light`, which
//! `.ci/run` installs), supervised as a forking daemon with a PIDFile and as
//! a foreground (`daemon off;`) simple service. Every process of the test's
//! nginx is found through /proc (its command line names the test's config,
//! or one of its descriptors is a file under the test root) and killed when
//! the test ends, whatever happened.

use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::util::*;

const NGINX: &str = "/usr/sbin/nginx";

/// A port that was free a moment ago (bound to 0, read, dropped).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind 127.0.0.1:0")
}

/// Whether nothing listens on `port` (std sets SO_REUSEADDR, so the
/// TIME_WAIT of earlier requests does not count).
fn port_free(port: u16) -> bool {
    TcpListener::bind(("127.0.0.1", port)).is_ok()
}

/// The status line of `GET /` on `port`, if something answers.
fn http_get(port: u16) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let status = text.lines().next()?.to_owned();
    // `Server: nginx` or `Server: nginx/1.22.1`.
    let from_nginx = text
        .lines()
        .any(|l| l.to_ascii_lowercase().starts_with("server: nginx"));
    from_nginx.then_some(status)
}

/// One test's nginx: its prefix directory (under the test root), config and port.
struct Nginx {
    root: PathBuf,
    dir: PathBuf,
    conf: PathBuf,
    port: u16,
}

impl Nginx {
    /// Writes a minimal config: two workers, every file in the test's directory.
    fn new(h: &Home, foreground: bool) -> Nginx {
        let dir = h.root.join("nginx");
        for sub in ["", "tmp", "logs"] {
            fs::create_dir_all(dir.join(sub)).expect("create the nginx dir");
        }
        // Workers run as nobody when we are root: they must reach the temp dirs.
        world_writable(&dir.join("tmp"));
        let port = free_port();
        let d = dir.display();
        let conf = dir.join("nginx.conf");
        let daemon = if foreground { "daemon off;\n" } else { "" };
        let text = format!(
            "{daemon}worker_processes 2;\npid {d}/nginx.pid;\nerror_log {d}/logs/error.log;\n\
             events {{ worker_connections 64; }}\n\
             http {{\n  access_log {d}/logs/access.log;\n\
               client_body_temp_path {d}/tmp/body;\n  proxy_temp_path {d}/tmp/proxy;\n\
               fastcgi_temp_path {d}/tmp/fastcgi;\n  uwsgi_temp_path {d}/tmp/uwsgi;\n\
               scgi_temp_path {d}/tmp/scgi;\n\
               server {{ listen 127.0.0.1:{port}; location / {{ return 200 \"hello\\n\"; }} }}\n}}\n"
        );
        fs::write(&conf, text).expect("write nginx.conf");
        Nginx {
            root: h.root.clone(),
            dir,
            conf,
            port,
        }
    }

    /// The ExecStart of the unit.
    fn exec_start(&self) -> String {
        toml_str(&format!(
            "{NGINX} -c {} -p {}/ -e {}/logs/error.log",
            self.conf.display(),
            self.dir.display(),
            self.dir.display()
        ))
    }

    fn pid_file(&self) -> PathBuf {
        self.dir.join("nginx.pid")
    }

    /// Every live process of this nginx: its master names the config in its
    /// title; workers (titled "nginx: worker process") hold its log files.
    fn processes(&self) -> Vec<i32> {
        let conf = self.conf.display().to_string();
        let root = format!("{}/", self.root.display());
        let holds_ours = |pid: i32| {
            fs::read_dir(format!("/proc/{pid}/fd"))
                .map(|d| {
                    d.flatten().any(|e| {
                        fs::read_link(e.path())
                            .is_ok_and(|p| format!("{}/", p.display()).starts_with(&root))
                    })
                })
                .unwrap_or(false)
        };
        all_pids()
            .into_iter()
            .filter(|&p| alive(p))
            .filter(|&p| {
                let cmd = cmdline(p);
                cmd.starts_with("nginx") && (cmd.contains(&conf) || holds_ours(p))
            })
            .collect()
    }

    /// The processes with their titles, for failure messages.
    fn describe(&self) -> String {
        self.processes()
            .into_iter()
            .map(|p| {
                let s = Stat::of(p);
                format!(
                    "{p} (pgrp {:?}, session {:?}): {}",
                    s.map(|s| s.pgrp),
                    s.map(|s| s.session),
                    cmdline(p)
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // Whatever the daemon left (the point of these tests), by pid.
        for _ in 0..3 {
            let left = self.processes();
            if left.is_empty() {
                return;
            }
            for pid in left {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Whether the nginx package is there; the tests need it (`.ci/run` installs it).
fn nginx_installed() -> bool {
    Path::new(NGINX).exists()
}

/// A client command run with its affinity set to CPU 0, so the daemon it
/// auto-starts (and every service of that daemon) is pinned to one core.
fn pinned(h: &Home, args: &[&str]) -> Command {
    let inner = h.command(args);
    let mut cmd = Command::new("taskset");
    cmd.arg("-c").arg("0").arg(inner.get_program());
    cmd.args(inner.get_args())
        .current_dir(&h.root)
        .env_remove("DIAKONOS_HOME")
        .env_remove("DIAKONOS_SERVICE_DIR")
        .env("NO_COLOR", "1");
    cmd
}

/// Starts and stops a forking nginx `cycles` times; after each stop nothing
/// of it may be left and its port must be free.
fn forking_nginx_cycles(test: &str, pin: bool, with_pid_file: bool) {
    assert!(
        nginx_installed(),
        "{NGINX} is missing: apt-get install -y nginx-light (.ci/run does)"
    );
    let h = Home::new(test);
    let ngx = Nginx::new(&h, false);
    let pid_file = if with_pid_file {
        format!(
            "PIDFile = {}\n",
            toml_str(&ngx.pid_file().display().to_string())
        )
    } else {
        String::new()
    };
    h.unit(
        "web",
        &format!(
            "[service]\nType = \"forking\"\nExecStart = {}\n{pid_file}TimeoutStopSec = 5\nRestart = \"no\"\n",
            ngx.exec_start()
        ),
    );
    if pin {
        let out = h.run(pinned(&h, &["list"]));
        assert!(out.status.success(), "pinned list: {}", stderr(&out));
        let daemon = h.daemon_pid().expect("a daemon runs");
        let allowed = fs::read_to_string(format!("/proc/{daemon}/status"))
            .unwrap_or_default()
            .lines()
            .find(|l| l.starts_with("Cpus_allowed_list:"))
            .map(|l| l.split_whitespace().last().unwrap_or_default().to_owned());
        assert_eq!(
            allowed.as_deref(),
            Some("0"),
            "the daemon is pinned to CPU 0"
        );
    }
    for cycle in 1..=10 {
        h.ok(&["start", "web"]);
        assert_eq!(h.state("web"), "running", "cycle {cycle}");
        h.wait_until(&format!("nginx to serve (cycle {cycle})"), WAIT, || {
            http_get(ngx.port).is_some()
        });
        for p in ngx.processes() {
            h.remember(p);
        }
        h.ok(&["stop", "web"]);
        let left = ngx.processes();
        assert!(
            left.is_empty(),
            "cycle {cycle}: `stop` returned but nginx processes remain:\n{}",
            ngx.describe()
        );
        assert!(
            port_free(ngx.port),
            "cycle {cycle}: port {} still in use",
            ngx.port
        );
        assert_eq!(h.state("web"), "inactive", "cycle {cycle}");
    }
}

#[test]
fn forking_nginx_with_pid_file_is_stopped_whole() {
    // nginx as Type=forking with PIDFile, started and stopped ten times: each stop leaves no process and a free port.
    forking_nginx_cycles("forking_nginx_with_pid_file_is_stopped_whole", false, true);
}

#[test]
fn forking_nginx_with_pid_file_is_stopped_whole_on_one_core() {
    // The same with the daemon and nginx pinned to CPU 0, where the pid file races the child's setsid.
    forking_nginx_cycles(
        "forking_nginx_with_pid_file_is_stopped_whole_on_one_core",
        true,
        true,
    );
}

#[test]
fn forking_nginx_without_pid_file_is_stopped_whole() {
    // nginx as Type=forking found without a PIDFile, pinned to one core: each stop leaves nothing.
    forking_nginx_cycles(
        "forking_nginx_without_pid_file_is_stopped_whole",
        true,
        false,
    );
}

#[test]
fn workers_of_an_nginx_that_died_with_no_daemon_are_killed_before_the_restart() {
    // kill -9 the daemon, then nginx's master: the next daemon kills the orphaned workers, restarts nginx (which serves), and `kill` leaves nothing.
    assert!(
        nginx_installed(),
        "{NGINX} is missing: apt-get install -y nginx-light (.ci/run does)"
    );
    let h = Home::new("workers_of_an_nginx_that_died_with_no_daemon_are_killed");
    let ngx = Nginx::new(&h, true);
    h.unit(
        "web",
        &format!("[service]\nExecStart = {}\n", ngx.exec_start()),
    );
    h.ok(&["start", "web"]);
    h.wait_until("nginx to serve", WAIT, || http_get(ngx.port).is_some());
    let master = h.pid("web");
    let mut workers = Vec::new();
    h.wait_until("nginx's two workers", WAIT, || {
        workers = children_of(master)
            .into_iter()
            .filter(|&(p, state)| state != 'Z' && cmdline(p).contains("worker"))
            .map(|(p, _)| p)
            .collect();
        workers.len() == 2
    });
    for &w in &workers {
        h.remember(w);
    }
    let daemon = h.daemon_pid().expect("daemon pid");
    kill9(daemon);
    h.wait_until("the daemon to die", WAIT, || !alive(daemon));
    kill9(master);
    h.wait_until("nginx's master to die", WAIT, || !alive(master));
    assert!(
        workers.iter().all(|&w| alive(w)),
        "the workers outlive their master (that is the situation under test)"
    );
    // Any command starts a new daemon, which finds web's main process dead.
    h.ok(&["list"]);
    h.wait_until("the orphaned workers to be killed", WAIT, || {
        workers.iter().all(|&w| !alive(w))
    });
    h.wait_until("nginx to be restarted and serve", WAIT, || {
        let u = h.unit_json("web");
        u["state"] == "running" && u["pid"] != master && http_get(ngx.port).is_some()
    });
    let status = http_get(ngx.port).unwrap_or_default();
    assert!(
        status.contains(" 200 ") || status.contains(" 404 "),
        "nginx answers: {status}"
    );
    for p in ngx.processes() {
        h.remember(p);
    }
    h.ok(&["kill"]);
    assert!(
        ngx.processes().is_empty(),
        "`kill` returned but nginx processes remain:\n{}",
        ngx.describe()
    );
    assert!(port_free(ngx.port), "port {} still in use", ngx.port);
}
