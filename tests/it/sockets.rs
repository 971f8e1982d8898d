//! `[socket]` (SPEC §15): the daemon binds, passes fds from 3 with the
//! systemd variables, and holds the sockets across restarts so clients
//! never see a refused connection. Ports are picked free at run time.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::util::{alive, kill9, sh, stdout, Home, WAIT};

/// A port nothing listens on right now (bound to 0, read, dropped).
pub(crate) fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().expect("local addr").port()
}

fn have_python() -> bool {
    std::process::Command::new("python3")
        .arg("-c")
        .arg("pass")
        .status()
        .is_ok_and(|s| s.success())
}

/// A server on fd 3 answering each connection with `ok PID`. It stops
/// as a well-behaved server does: SIGTERM is blocked and looked at between
/// requests, so a request it accepted is always answered.
const SERVER: &str = r"import os, select, signal, socket
assert os.environ['LISTEN_PID'] == str(os.getpid())
signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGTERM])
s = socket.socket(fileno=3)
while not signal.sigpending():
    if select.select([s], [], [], 0.02)[0]:
        c, _ = s.accept()
        c.recv(16)
        c.sendall(b'ok %d\n' % os.getpid())
        c.close()
";

/// One request; the answer, or why there was none.
fn ask(port: u16) -> Result<String, String> {
    let c = TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("connect: {e}"))?;
    c.set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(|e| e.to_string())?;
    ask_on(c)
}

/// One request on a connected stream (its read timeout set); the answer.
fn ask_on(mut c: impl Read + Write) -> Result<String, String> {
    c.write_all(b"hi\n").map_err(|e| format!("write: {e}"))?;
    let mut answer = String::new();
    c.read_to_string(&mut answer)
        .map_err(|e| format!("read: {e}"))?;
    if answer.starts_with("ok ") {
        Ok(answer.trim().to_string())
    } else {
        Err(format!("answer {answer:?}"))
    }
}

#[test]
fn a_socket_unit_gets_fds_from_3_with_listen_pid_fds_and_names() {
    // LISTEN_FDS counts the sockets, LISTEN_PID is the service's own pid, LISTEN_FDNAMES names them; fds 3 and 4 are sockets.
    let h = Home::new("a_socket_unit_gets_fds_from_3");
    let port = free_port();
    let path = h.units.join("app.sock");
    h.unit(
        "app",
        &format!(
            "[service]\nExecStart = {}\n[socket]\nListenStream = [\"127.0.0.1:{port}\", \"{}\"]\nFileDescriptorName = \"web\"\nSocketMode = \"0600\"\n",
            sh("echo \"$LISTEN_FDS $LISTEN_PID $$ $LISTEN_FDNAMES $(readlink /proc/$$/fd/3) $(readlink /proc/$$/fd/4)\" >> env; exec sleep 1000"),
            path.display()
        ),
    );
    h.ok(&["start", "app"]);
    h.wait_lines("env", 1);
    let line = &h.lines("env")[0];
    let f: Vec<&str> = line.split(' ').collect();
    assert_eq!(f[0], "2", "{line}");
    assert_eq!(f[1], f[2], "LISTEN_PID is not the service's pid: {line}");
    assert_eq!(f[1], h.pid("app").to_string(), "{line}");
    assert_eq!(f[3], "web:web", "{line}");
    assert!(
        f[4].starts_with("socket:") && f[5].starts_with("socket:"),
        "{line}"
    );
    let mode = std::fs::metadata(&path).expect("the unix socket exists");
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o777,
        0o600
    );
    // The daemon holds the port: a connection is accepted into its backlog.
    TcpStream::connect(("127.0.0.1", port)).expect("the port is bound");
}

#[test]
fn a_unit_with_twenty_sockets_gets_them_all_and_its_start_errors_too() {
    // Sockets go to fds 3..22 in the child, where the spawn's own report
    // pipe may have been: the child's dup closed it, the daemon took that
    // for an exec that worked, and the child ran on in memory already
    // freed. Kept above them, a failure before the exec is still reported.
    let h = Home::new("a_unit_with_twenty_sockets");
    let dir = h.root.join("socks");
    std::fs::create_dir_all(&dir).expect("create the socket dir");
    let list = |from: usize| {
        (from..from + 20)
            .map(|i| format!("\"{}\"", dir.join(format!("s{i}.sock")).display()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    h.unit(
        "many",
        &format!(
            "[service]\nExecStart = {}\n[socket]\nListenStream = [{}]\n",
            sh("echo \"$LISTEN_FDS\" > fds.out; exec sleep 1000"),
            list(0)
        ),
    );
    h.unit(
        "lost",
        &format!(
            "[service]\nExecStart = \"sleep 1000\"\nRestart = \"no\"\nWorkingDirectory = \"/nonexistent-dk\"\n[socket]\nListenStream = [{}]\n",
            list(20)
        ),
    );
    h.ok(&["start", "many"]);
    h.wait_written("fds.out", "the service's line");
    assert_eq!(h.lines("fds.out"), ["20"]);
    let err = h.fails(1, &["start", "lost"]);
    assert!(
        err.contains("WorkingDirectory /nonexistent-dk does not exist"),
        "{err}"
    );
    h.ok(&["stop", "many"]);
}

#[test]
fn a_restart_refuses_no_connection() {
    // A client hammering a socket-activated Python server through three restarts sees every request served.
    let (h, port) = python_server("a_restart_refuses_no_connection");
    hammer_through_restarts(&h, port, 3);
}

/// Hammers `port` from a thread while `py` restarts `n` times; asserts that
/// every request was served, by the first process and by the last.
fn hammer_through_restarts(h: &Home, port: u16, n: usize) {
    let stop = Arc::new(AtomicBool::new(false));
    let served = Arc::new(AtomicUsize::new(0));
    let last = Arc::new(Mutex::new(None::<String>));
    let saw_last = Arc::new(AtomicBool::new(false));
    let hammer = {
        let (stop, served, last, saw_last) =
            (stop.clone(), served.clone(), last.clone(), saw_last.clone());
        std::thread::spawn(move || {
            let (mut failed, mut pids) = (Vec::new(), std::collections::BTreeSet::new());
            while !stop.load(Ordering::SeqCst) {
                match ask(port) {
                    Ok(a) => {
                        served.fetch_add(1, Ordering::SeqCst);
                        if last.lock().is_ok_and(|l| l.as_deref() == Some(a.as_str())) {
                            saw_last.store(true, Ordering::SeqCst);
                        }
                        pids.insert(a);
                    }
                    Err(e) => failed.push(e),
                }
            }
            (failed, pids)
        })
    };
    let first = h.pid("py");
    h.wait_until("the client to be served", WAIT, || {
        served.load(Ordering::SeqCst) > 0
    });
    for _ in 0..n {
        let before = h.pid("py");
        h.ok(&["restart", "py"]);
        h.wait_until("a new pid", WAIT, || h.pid("py") != before);
    }
    if let Ok(mut l) = last.lock() {
        *l = Some(format!("ok {}", h.pid("py")));
    }
    h.wait_until("the client to be served by the last process", WAIT, || {
        saw_last.load(Ordering::SeqCst)
    });
    stop.store(true, Ordering::SeqCst);
    let (failed, pids) = hammer.join().expect("the client thread");
    let total = served.load(Ordering::SeqCst) + failed.len();
    assert!(
        failed.is_empty(),
        "{} failed of {total}: {:?}",
        failed.len(),
        &failed[..failed.len().min(5)]
    );
    assert!(
        pids.contains(&format!("ok {first}")),
        "never served by the first process: {pids:?}"
    );
}

#[test]
fn after_a_daemon_crash_the_adopted_service_keeps_its_socket_and_restarts_refuse_nothing() {
    // kill -9 of the daemon: the service serves on; the new daemon takes the socket back, so a restart still refuses nothing.
    let (h, port) = python_server("after_a_daemon_crash_the_adopted_service_keeps_socket");
    let pid = h.pid("py");
    let daemon = h.daemon_pid().expect("daemon pid");
    kill9(daemon);
    h.wait_until("the daemon to die", WAIT, || !alive(daemon));
    assert_eq!(
        ask(port),
        Ok(format!("ok {pid}")),
        "the service stopped serving"
    );
    assert_eq!(h.pid("py"), pid, "not adopted");
    hammer_through_restarts(&h, port, 2);
}

#[test]
fn a_taken_address_is_a_clear_start_error() {
    // Another program holding the port: start exits 1 saying which address and what to do.
    let h = Home::new("a_taken_address_is_a_clear_start_error");
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port();
    h.unit(
        "app",
        &format!("[service]\nExecStart = \"sleep 1000\"\n[socket]\nListenStream = [\"127.0.0.1:{port}\"]\n"),
    );
    let err = h.fails(1, &["start", "app"]);
    assert!(
        err.contains(&format!("cannot bind ListenStream 127.0.0.1:{port}")),
        "{err}"
    );
    assert!(err.contains("stop it or pick another address"), "{err}");
}

#[test]
fn hostnames_relative_paths_and_shared_addresses_are_load_errors() {
    // verify names each bad address at its place, and the second unit claiming an address.
    let h = Home::new("hostnames_relative_paths_and_shared_addresses");
    let port = free_port();
    h.unit(
        "a",
        "[service]\nExecStart = \"sleep 1\"\n[socket]\nListenStream = [\"example.com:80\"]\n",
    );
    h.unit(
        "b",
        "[service]\nExecStart = \"sleep 1\"\n[socket]\nListenStream = [\"run/b.sock\"]\n",
    );
    h.unit(
        "c",
        &format!(
            "[service]\nExecStart = \"sleep 1\"\n[socket]\nListenStream = [\"127.0.0.1:{port}\"]\n"
        ),
    );
    h.unit(
        "d",
        &format!(
            "[service]\nExecStart = \"sleep 1\"\n[socket]\nListenStream = [\"127.0.0.1:{port}\"]\n"
        ),
    );
    let out = h.cmd(&["verify"]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("a.service:4:17") && text.contains("is a host name (`example.com`)"),
        "{text}"
    );
    assert!(
        text.contains("b.service:4:17") && text.contains("a relative path"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "address 127.0.0.1:{port} is already used by unit `c`"
        )),
        "{text}"
    );
}

#[test]
fn addresses_that_cover_each_other_are_one_address_and_tcp_and_udp_are_two() {
    // 0.0.0.0:P covers 127.0.0.1:P (a second unit is in error); a path written twice in one unit (`x/../s.sock`) is an error; the same port for a stream and a datagram socket is fine.
    let h = Home::new("addresses_that_cover_each_other");
    let (port, other) = (free_port(), free_port());
    let sock = h.root.join("s.sock").display().to_string();
    let twice = h.root.join("x/../s.sock").display().to_string();
    let socket = |listen: &str| format!("[service]\nExecStart = \"sleep 1\"\n[socket]\n{listen}\n");
    h.unit(
        "all",
        &socket(&format!("ListenStream = [\"0.0.0.0:{port}\"]")),
    );
    h.unit(
        "lo",
        &socket(&format!("ListenStream = [\"127.0.0.1:{port}\"]")),
    );
    h.unit(
        "twice",
        &socket(&format!("ListenStream = [\"{sock}\", \"{twice}\"]")),
    );
    h.unit(
        "both",
        &socket(&format!(
            "ListenStream = [\"127.0.0.1:{other}\"]\nListenDatagram = [\"127.0.0.1:{other}\"]"
        )),
    );
    let out = h.cmd(&["verify"]);
    let text = format!("{}{}", stdout(&out), crate::util::stderr(&out));
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains(&format!(
            "address 127.0.0.1:{port} is already used by unit `all` (as 0.0.0.0:{port})"
        )),
        "{text}"
    );
    assert!(text.contains("is listed twice"), "{text}");
    assert!(!text.contains("both.service"), "{text}");
}

#[test]
fn an_on_demand_unit_listens_while_enabled_and_its_first_connection_starts_it() {
    // Enabled: `inactive (listening ...)`, no process; the first connection starts it and is served; stopped it listens again; disabled it stops listening.
    assert!(
        have_python(),
        "this test needs python3 (.ci/run installs it)"
    );
    let h = Home::new("an_on_demand_unit_listens_while_enabled");
    let port = free_port();
    std::fs::write(h.units.join("server.py"), SERVER).expect("write server.py");
    h.unit(
        "py",
        &format!("[service]\nExecStart = \"python3 server.py\"\n[socket]\nListenStream = [\"127.0.0.1:{port}\"]\nActivation = \"on-demand\"\n"),
    );
    let out = h.ok(&["enable", "py"]);
    assert!(out.contains("starts at the first connection"), "{out}");
    let u = h.unit_json("py");
    assert_eq!(u["state"], "inactive", "{u}");
    assert_eq!(u["listening"], format!("127.0.0.1:{port}"), "{u}");
    let status = h.ok(&["status", "py"]);
    assert!(
        status.contains(&format!("inactive (listening 127.0.0.1:{port})")),
        "{status}"
    );
    let list = h.ok(&["list"]);
    assert!(
        list.lines().any(|l| l.starts_with("py ")
            && l.contains(&format!("inactive (listening 127.0.0.1:{port})"))),
        "{list}"
    );
    let answer = ask(port).expect("the first connection is served");
    let pid = h.pid("py");
    assert_eq!(answer, format!("ok {pid}"));
    assert_eq!(h.state("py"), "running");
    h.ok(&["stop", "py"]);
    h.wait_until("listening again", WAIT, || {
        h.unit_json("py")["listening"].is_string()
    });
    let again = ask(port).expect("a connection after stop starts it again");
    assert_ne!(again, answer, "the same process answered");
    h.ok(&["stop", "py"]);
    h.ok(&["disable", "py"]);
    h.wait_until("the port to be closed", WAIT, || {
        TcpStream::connect(("127.0.0.1", port)).is_err()
    });
    assert_eq!(h.state("py"), "inactive");
}

#[test]
fn an_on_demand_unit_that_exited_on_its_own_listens_again() {
    // A server that answers one connection and exits 0 (Restart = "no"): the unit is `exited`, still enabled, and its socket is armed again, so the next connection starts a new process.
    assert!(
        have_python(),
        "this test needs python3 (.ci/run installs it)"
    );
    let h = Home::new("on_demand_exited_listens_again");
    let port = free_port();
    std::fs::write(
        h.units.join("once.py"),
        "import os, socket\ns = socket.socket(fileno=3)\nc, _ = s.accept()\nc.recv(16)\nc.sendall(b'ok %d\\n' % os.getpid())\nc.close()\n",
    )
    .expect("write once.py");
    h.unit(
        "once",
        &format!("[service]\nExecStart = \"python3 once.py\"\nRestart = \"no\"\n[socket]\nListenStream = [\"127.0.0.1:{port}\"]\nActivation = \"on-demand\"\n"),
    );
    h.ok(&["enable", "once"]);
    h.wait_until("listening", WAIT, || {
        h.unit_json("once")["listening"].is_string()
    });
    let first = ask(port).expect("the first connection is served");
    h.wait_until("once exited and listening again", WAIT, || {
        let u = h.unit_json("once");
        u["state"] == "exited" && u["listening"].is_string()
    });
    let second = ask(port).expect("a connection after its exit starts it again");
    assert_ne!(second, first, "the same process answered");
}

#[test]
fn an_on_demand_unit_disabled_while_running_lets_its_port_go_when_stopped() {
    // Disable while it runs: it keeps serving; once stopped, the port is closed.
    assert!(
        have_python(),
        "this test needs python3 (.ci/run installs it)"
    );
    let h = Home::new("an_on_demand_unit_disabled_while_running");
    let port = free_port();
    std::fs::write(h.units.join("server.py"), SERVER).expect("write server.py");
    h.unit(
        "py",
        &format!("[service]\nExecStart = \"python3 server.py\"\n[socket]\nListenStream = [\"127.0.0.1:{port}\"]\nActivation = \"on-demand\"\n"),
    );
    h.ok(&["enable", "py"]);
    h.ok(&["start", "py"]);
    let pid = h.pid("py");
    h.ok(&["disable", "py"]);
    assert_eq!(ask(port), Ok(format!("ok {pid}")));
    h.ok(&["stop", "py"]);
    h.wait_until("the port to be closed", WAIT, || {
        TcpStream::connect(("127.0.0.1", port)).is_err()
    });
}

/// A home with unit `py`: the Python fd-3 server on a socket the daemon holds
/// on a free port, started and answering.
fn python_server(test: &str) -> (Home, u16) {
    assert!(
        have_python(),
        "this test needs python3 (.ci/run installs it)"
    );
    let h = Home::new(test);
    let port = free_port();
    std::fs::write(h.units.join("server.py"), SERVER).expect("write server.py");
    h.unit(
        "py",
        &format!("[service]\nExecStart = \"python3 server.py\"\n[socket]\nListenStream = [\"127.0.0.1:{port}\"]\n"),
    );
    h.ok(&["start", "py"]);
    h.wait_until("the server answers", WAIT, || ask(port).is_ok());
    (h, port)
}

#[test]
fn a_new_unit_naming_a_bound_address_is_the_one_in_error() {
    // `mid` runs with its socket bound; `aa` (first by name) is added with
    // the same address: at the reload `aa` is invalid, not `mid`, which
    // keeps running and can be stopped and started again.
    let h = Home::new("a_new_unit_naming_a_bound_address");
    let port = free_port();
    let socket = format!("[socket]\nListenStream = [\"127.0.0.1:{port}\"]\n");
    h.unit(
        "mid",
        &format!("[service]\nExecStart = \"sleep 1000\"\n{socket}"),
    );
    h.ok(&["start", "mid"]);
    h.unit(
        "aa",
        &format!("[service]\nExecStart = \"sleep 1000\"\n{socket}"),
    );
    let err = h.fails(1, &["reload"]);
    assert!(err.contains("aa"), "{err}");
    assert_eq!(h.state("aa"), "invalid");
    assert_eq!(h.state("mid"), "running");
    // The next daemon keeps it so (it loads with `mid` holding the address).
    h.replace_daemon("upgrade");
    assert_eq!(h.state("aa"), "invalid");
    assert_eq!(h.state("mid"), "running");
    h.ok(&["stop", "mid"]);
    h.ok(&["start", "mid"]);
    assert_eq!(h.state("mid"), "running");
}

#[test]
fn units_removed_or_deleted_let_their_ports_go() {
    // A running eager unit and an armed on-demand unit removed by `reload`, and a running eager unit removed by `delete`: once down, their ports are closed.
    let (h, port) = python_server("units_removed_let_their_ports_go");
    let (od_port, del_port) = (free_port(), free_port());
    h.unit(
        "od",
        &format!("[service]\nExecStart = \"python3 server.py\"\n[socket]\nListenStream = [\"127.0.0.1:{od_port}\"]\nActivation = \"on-demand\"\n"),
    );
    h.unit(
        "del",
        &format!("[service]\nExecStart = \"python3 server.py\"\n[socket]\nListenStream = [\"127.0.0.1:{del_port}\"]\n"),
    );
    h.ok(&["reload"]);
    h.ok(&["enable", "od"]);
    h.ok(&["start", "del"]);
    h.wait_until("both listening", WAIT, || {
        TcpStream::connect(("127.0.0.1", od_port)).is_ok() && ask(del_port).is_ok()
    });
    for name in ["py", "od"] {
        std::fs::remove_file(h.units.join(format!("{name}.service"))).expect("remove a unit file");
    }
    h.ok(&["reload"]);
    h.ok(&["delete", "del"]);
    for p in [port, od_port, del_port] {
        h.wait_until("the port closed", WAIT, || {
            TcpStream::connect(("127.0.0.1", p)).is_err()
        });
    }
}

#[test]
fn a_connection_while_everything_stops_is_refused_once_not_retried_forever() {
    // `kill` waits on a service slow to stop; a connection to an armed on-demand unit meanwhile starts nothing and costs one log line, not a busy loop.
    assert!(
        have_python(),
        "this test needs python3 (.ci/run installs it)"
    );
    let h = Home::new("a_connection_while_everything_stops");
    let port = free_port();
    std::fs::write(h.units.join("server.py"), SERVER).expect("write server.py");
    h.unit(
        "od",
        &format!("[service]\nExecStart = \"python3 server.py\"\n[socket]\nListenStream = [\"127.0.0.1:{port}\"]\nActivation = \"on-demand\"\n"),
    );
    h.start_script(
        "slow",
        "TimeoutStopSec = 3\n",
        "trap 'echo term > slow.term' TERM; echo up > slow.up; while :; do sleep 0.1; done",
    );
    h.ok(&["enable", "od"]);
    h.wait_written("slow.up", "up");
    let daemon = h.daemon_pid().expect("a daemon");
    let mut kill = h.command(&["kill"]);
    let mut kill = kill.spawn().expect("run kill");
    h.wait_written("slow.term", "term");
    // The socket is either closed already or refuses to serve.
    if let Ok(mut c) = TcpStream::connect(("127.0.0.1", port)) {
        let _ = c.set_read_timeout(Some(Duration::from_secs(5)));
        let _ = c.write_all(b"hi\n");
        let mut answer = String::new();
        let _ = c.read_to_string(&mut answer);
        assert!(answer.is_empty(), "served while stopping: {answer}");
    }
    let status = kill.wait().expect("kill ends");
    assert!(status.success());
    h.wait_until("the daemon gone", WAIT, || !alive(daemon));
    let log = std::fs::read_to_string(h.home.join("daemon.log")).unwrap_or_default();
    let starts = log.matches("first connection on its socket").count();
    assert!(starts <= 1, "{starts} start attempts while stopping");
}

/// One request over a Unix stream socket; the answer, or why there was none.
fn ask_unix(path: &std::path::Path) -> Result<String, String> {
    let c = std::os::unix::net::UnixStream::connect(path).map_err(|e| format!("connect: {e}"))?;
    c.set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(|e| e.to_string())?;
    ask_on(c)
}

#[test]
fn daemon_upgrade_hands_its_sockets_over_and_nothing_waiting_in_them_is_lost() {
    // A connection waiting in a stopped unit's socket across `daemon-upgrade` is served once the unit starts; an armed on-demand unit's socket and the notify socket are the very same sockets afterwards (same inode), and the lock file names the new daemon alone.
    let (h, port) = python_server("daemon_upgrade_hands_its_sockets_over");
    let sock = h.root.join("od.sock");
    h.unit(
        "od",
        &format!("[service]\nExecStart = \"python3 server.py\"\n[socket]\nListenStream = [\"{}\"]\nActivation = \"on-demand\"\n", sock.display()),
    );
    h.ok(&["reload"]);
    h.ok(&["enable", "od"]);
    h.ok(&["stop", "py"]);
    h.wait_until("od listening", WAIT, || sock.exists());
    let notify = diakonos::paths::Home {
        dir: h.home.clone(),
    }
    .notify_socket();
    // The socket's own inode (sockfs), not its file's: a file bound anew
    // may get the inode number the old one freed.
    let inode = |p: &std::path::Path| {
        let table = std::fs::read_to_string("/proc/net/unix").unwrap_or_default();
        let path = p.to_str().expect("a UTF-8 path");
        table.lines().find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() == 8 && f[7] == path).then(|| f[6].parse::<u64>().ok())?
        })
    };
    let before = (inode(&sock), inode(&notify));
    assert!(before.0.is_some() && before.1.is_some(), "{before:?}");
    // Accepted by the kernel into the backlog: no process serves it yet.
    let mut waiting = TcpStream::connect(("127.0.0.1", port)).expect("connect to the held socket");
    waiting.write_all(b"hi\n").expect("write");
    let old = h.daemon_pid().expect("a daemon");
    h.ok(&["daemon-upgrade"]);
    let new = h.daemon_pid().expect("a new daemon");
    assert_ne!(new, old);
    let lock = std::fs::read_to_string(h.home.join("daemon.lock")).expect("read the lock file");
    assert_eq!(lock, format!("{new}\n"));
    assert_eq!(
        (inode(&sock), inode(&notify)),
        before,
        "a socket was bound again"
    );
    assert!(
        sock.exists() && notify.exists(),
        "a socket's file was removed"
    );
    h.ok(&["start", "py"]);
    let pid = h.pid("py");
    waiting
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("set a timeout");
    let mut answer = String::new();
    let read = waiting.read_to_string(&mut answer);
    assert!(read.is_ok(), "the waiting connection was lost: {read:?}");
    assert_eq!(answer.trim(), format!("ok {pid}"));
    let od = ask_unix(&sock).expect("the first connection starts od");
    assert_eq!(od, format!("ok {}", h.pid("od")));
}

#[test]
fn the_daemons_own_activation_variables_are_not_passed_on() {
    // A daemon started by systemd has LISTEN_*, WATCHDOG_* and NOTIFY_SOCKET
    // of its own: a plain service gets none of them, a socket unit only its
    // own LISTEN_* (systemd unsets them for its services too).
    let h = Home::new("the_daemons_own_activation_variables");
    let port = free_port();
    // Written whole (renamed into place), so a reader sees all of it.
    let dump = |file: &str| {
        sh(&format!(
            "env > {file}.tmp; mv {file}.tmp {file}; exec sleep 1000"
        ))
    };
    h.unit(
        "plain",
        &format!("[service]\nExecStart = {}\n", dump("plain.env")),
    );
    h.unit(
        "sock",
        &format!(
            "[service]\nExecStart = {}\n[socket]\nListenStream = [\"127.0.0.1:{port}\"]\n",
            dump("sock.env")
        ),
    );
    let mut start = h.command(&["start", "plain", "sock"]);
    for (k, v) in [
        ("LISTEN_PID", "4242"),
        ("LISTEN_FDS", "7"),
        ("LISTEN_FDNAMES", "theirs"),
        ("WATCHDOG_PID", "4343"),
        ("WATCHDOG_USEC", "1000000"),
        ("NOTIFY_SOCKET", "/run/theirs.sock"),
    ] {
        start.env(k, v);
    }
    let out = h.run(start);
    assert!(out.status.success(), "{}", crate::util::stderr(&out));
    h.wait_written("plain.env", "plain's environment written");
    h.wait_written("sock.env", "sock's environment written");
    let plain = h.lines("plain.env");
    for name in ["LISTEN_", "WATCHDOG_", "NOTIFY_SOCKET="] {
        assert!(
            !plain.iter().any(|l| l.starts_with(name)),
            "{name}: {plain:?}"
        );
    }
    let sock = h.lines("sock.env");
    let pid = h.pid("sock");
    assert!(sock.contains(&format!("LISTEN_PID={pid}")), "{sock:?}");
    assert!(sock.contains(&"LISTEN_FDS=1".to_owned()), "{sock:?}");
    assert!(!sock.iter().any(|l| l.starts_with("WATCHDOG_")), "{sock:?}");
}
