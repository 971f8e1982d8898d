//! The client's output: written straight to its descriptors, whole, and
//! never a panic (Rust's `println!` panics when stdout cannot be written,
//! and SIGPIPE is ignored: `src/main.rs`).
//!
//! - A descriptor that is non-blocking (a pipe a Node or Python parent
//!   made so) is waited on until it takes the rest: nothing is cut short.
//! - Stdout's reader gone (`diakonos list | head -1`, EPIPE): the command
//!   has nothing left to do and exits quietly, 0.
//! - Any other failure of stdout (a full disk, `>/dev/full`): one line on
//!   stderr and exit 1, so a script can tell its output is lost.
//! - Stderr failing is ignored: there is nowhere left to say so.
//!
//! `outln!`, `out!` and `errln!` (in `cli/mod.rs`) format into these.

use std::io::{self, Write};
use std::os::fd::RawFd;

use nix::libc;

/// One of the standard descriptors, as an [`io::Write`] that waits out a
/// non-blocking one (EAGAIN) and retries an interrupted write.
pub struct Fd(RawFd);

/// Stdout, for writers of their own (`logs`, `events`).
pub fn stdout() -> Fd {
    Fd(1)
}

impl Write for Fd {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        loop {
            // SAFETY: write(2) from a buffer we borrow, of its length, to a
            // descriptor the process keeps open (`main` makes 0-2 valid).
            let n = unsafe { libc::write(self.0, buf.as_ptr().cast(), buf.len()) };
            if let Ok(n) = usize::try_from(n) {
                return Ok(n);
            }
            let e = io::Error::last_os_error();
            match e.kind() {
                io::ErrorKind::Interrupted => {}
                io::ErrorKind::WouldBlock => {
                    let mut pfd = libc::pollfd {
                        fd: self.0,
                        events: libc::POLLOUT,
                        revents: 0,
                    };
                    // SAFETY: poll(2) on one pollfd of ours; it only writes
                    // `revents`. Waits until the reader takes some (or is
                    // gone, which the next write reports).
                    unsafe { libc::poll(&mut pfd, 1, -1) };
                }
                _ => return Err(e),
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Whether descriptor `fd` is a terminal. Asked of the descriptor itself:
/// `std::io::stdout()` would set up its buffer first (a kilobyte
/// allocated, with musl a page mapped), a cost in every command.
pub fn is_terminal(fd: RawFd) -> bool {
    // SAFETY: isatty(3) only inspects the descriptor; a closed one is false.
    unsafe { libc::isatty(fd) == 1 }
}

/// Writes `text` to stdout, whole; see the module's documentation for
/// what a failure does.
pub fn out(text: &str) {
    if let Err(e) = stdout().write_all(text.as_bytes()) {
        failed(&e);
    }
}

/// Writes `text` to stderr, whole if it can.
pub fn err(text: &str) {
    let _ = Fd(2).write_all(text.as_bytes());
}

/// Ends the process after stdout failed with `e`: quietly when its
/// reader is gone, else with one line on stderr and exit 1.
pub fn failed(e: &io::Error) -> ! {
    if e.kind() == io::ErrorKind::BrokenPipe {
        std::process::exit(0);
    }
    err(&format!(
        "diakonos: cannot write the output: {e}; hint: check where stdout goes (a full disk, a closed file)\n"
    ));
    std::process::exit(1)
}
