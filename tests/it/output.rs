//! Where the client's output goes when it cannot simply be written: a
//! full device, a reader that is gone, a non-blocking pipe. Never a panic
//! or an abort (SIGPIPE is ignored: `src/main.rs`, `cli/output.rs`).

use std::fs::File;
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::util::{Home, WAIT};

/// Waits for `child` to end, killing it at `WAIT`.
fn wait(mut child: Child) -> ExitStatus {
    crate::util::wait_exit(&mut child, WAIT, "the client")
}

/// Runs `cmd` with stdout and stderr as given; returns its status and
/// what it wrote to stderr when that is a pipe of ours.
fn run(mut cmd: Command, stdout: Stdio, stderr: Option<Stdio>) -> (ExitStatus, String) {
    cmd.stdin(Stdio::null()).stdout(stdout);
    cmd.stderr(stderr.unwrap_or_else(Stdio::piped));
    let mut child = cmd.spawn().expect("run the client");
    let mut err = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        pipe.read_to_string(&mut err).expect("read its stderr");
    }
    (wait(child), err)
}

fn dev_full() -> Stdio {
    Stdio::from(
        File::options()
            .write(true)
            .open("/dev/full")
            .expect("open /dev/full"),
    )
}

#[test]
fn output_that_cannot_be_written_is_one_line_and_exit_1() {
    // Stdout on a full device: every command, those that print through a table, a help text or a version alike, says so in one line and exits 1 (`--help` and `-V` aborted with a panic).
    let h = Home::new("output_that_cannot_be_written");
    h.unit("web", "[service]\nExecStart = \"sleep 1000\"\n");
    h.ok(&["start", "web"]);
    for args in [
        &["--help"][..],
        &["-V"],
        &["list"],
        &["status", "web"],
        &["completions", "bash"],
    ] {
        let (status, err) = run(h.command(args), dev_full(), None);
        assert_eq!(status.code(), Some(1), "{args:?}: {status}\n{err}");
        assert!(!err.contains("panicked"), "{args:?}:\n{err}");
        assert_eq!(err.lines().count(), 1, "{args:?}:\n{err}");
        assert!(
            err.starts_with("diakonos: cannot write the output: No space left on device"),
            "{args:?}:\n{err}"
        );
    }
    // Stderr on a full device: the error is lost, the exit code is not.
    let (status, _) = run(h.command(&["bogus"]), Stdio::null(), Some(dev_full()));
    assert_eq!(status.code(), Some(2), "{status}");
    let (status, _) = run(
        h.command(&["status", "nosuch"]),
        Stdio::null(),
        Some(dev_full()),
    );
    assert_eq!(status.code(), Some(1), "{status}");
}

#[test]
fn a_reader_that_is_gone_ends_the_command_quietly() {
    // `diakonos --help | head -0`: stdout's reader gone, the command ends at once, exit 0, nothing on stderr.
    let h = Home::new("a_reader_that_is_gone");
    for args in [
        &["--help"][..],
        &["-V"],
        &["completions", "zsh"],
        &["verify"],
    ] {
        let (read, write) = nix::unistd::pipe().expect("a pipe");
        drop(read);
        let (status, err) = run(h.command(args), Stdio::from(write), None);
        assert_eq!(status.code(), Some(0), "{args:?}: {status}\n{err}");
        assert_eq!(err, "", "{args:?}");
    }
}

#[test]
fn output_to_a_non_blocking_pipe_arrives_whole() {
    // A pipe made non-blocking by whoever reads it (a Node or Python parent): the client waits until it takes more instead of stopping at the first EAGAIN with exit 0 (the output was cut at the pipe's size).
    let h = Home::new("output_to_a_non_blocking_pipe");
    let whole = h.ok(&["completions", "zsh"]);
    let (read, write): (OwnedFd, OwnedFd) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_NONBLOCK).expect("a pipe");
    // SAFETY: fcntl(2) on a pipe of ours; F_SETPIPE_SZ only sets its size.
    let size = unsafe { nix::libc::fcntl(write.as_raw_fd(), nix::libc::F_SETPIPE_SZ, 4096) };
    assert!(size >= 4096, "set the pipe's size");
    assert!(
        whole.len() > usize::try_from(size).unwrap_or(0),
        "a text larger than the pipe: {} bytes",
        whole.len()
    );
    let mut cmd = h.command(&["completions", "zsh"]);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::from(write))
        .stderr(Stdio::null());
    let child = cmd.spawn().expect("run the client");
    // Our copy of the write end: the reader sees EOF only without it.
    drop(cmd);
    // Read only once the pipe is full (or the client is done): a client
    // that gives up at EAGAIN has given up by then.
    let deadline = Instant::now() + WAIT;
    let queued = || {
        let mut n: nix::libc::c_int = 0;
        // SAFETY: FIONREAD writes one int, ours.
        unsafe { nix::libc::ioctl(read.as_raw_fd(), nix::libc::FIONREAD, &mut n) };
        usize::try_from(n).unwrap_or(0)
    };
    while queued() < usize::try_from(size).unwrap_or(4096) {
        assert!(Instant::now() < deadline, "the pipe never filled");
        std::thread::sleep(Duration::from_millis(2));
    }
    let mut file = File::from(read);
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                assert!(Instant::now() < deadline, "the client stopped writing");
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(e) => panic!("read the pipe: {e}"),
        }
    }
    assert_eq!(wait(child).code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&got), whole);
}
