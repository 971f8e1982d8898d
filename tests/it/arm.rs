//! An x86_64 client drives an aarch64 daemon running under qemu-user: the
//! wire format is the same on every architecture. Needs the aarch64 build,
//! so `.ci/run` builds it and runs this with `--ignored`, naming the binary
//! in `DIAKONOS_AARCH64_BIN`.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::util::{alive, Home};

#[test]
#[ignore = "needs the aarch64 musl build and qemu-aarch64-static; .ci/run runs it with DIAKONOS_AARCH64_BIN set"]
fn an_x86_64_client_drives_an_aarch64_daemon_under_qemu() {
    // start, list and kill answered by the aarch64 daemon.
    let arm = std::env::var("DIAKONOS_AARCH64_BIN")
        .expect("DIAKONOS_AARCH64_BIN names the aarch64 binary (see .ci/run)");
    let h = Home::new("an_x86_64_client_drives_an_aarch64");
    h.unit("s", "[service]\nExecStart = \"sleep 300\"\n");
    let mut daemon = Command::new("qemu-aarch64-static")
        .arg(&arm)
        .arg("--home")
        .arg(&h.home)
        .arg("--service-dir")
        .arg(&h.units)
        .arg("daemon")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("run qemu-aarch64-static (apt-get install qemu-user-static)");
    let socket = h.home.join("diakonos.sock");
    h.wait_until(
        "the aarch64 daemon listens",
        Duration::from_secs(60),
        || socket.exists(),
    );
    assert_eq!(
        h.daemon_pid(),
        Some(daemon.id() as i32),
        "the qemu daemon answers"
    );
    h.ok(&["start", "s"]);
    let pid = h.pid("s");
    assert!(alive(pid));
    let status = h.ok(&["daemon-status"]);
    assert!(status.contains("1 running"), "{status}");
    h.ok(&["kill"]);
    let status = daemon.wait().expect("the daemon exits");
    assert!(status.success(), "{status}");
    h.wait_until("the service is gone", Duration::from_secs(30), || {
        !alive(pid)
    });
}
