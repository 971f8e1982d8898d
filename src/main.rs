//! diakonos: one binary, two roles. `diakonos daemon` supervises; every
//! other subcommand is a thin client. Arguments in, exit code out; all the
//! work is in the library (`src/lib.rs`).
//!
//! The binary has no Rust `main`: the C runtime calls ours (`no_main`).
//! Rust's own start-up installs a stack-overflow handler (an alternate
//! signal stack mapped, guarded and torn down again, four signal actions),
//! about a tenth of a `diakonos list` here (benches/README.md, fourteenth
//! session); a stack overflow is then a plain SIGSEGV. What else it does
//! and diakonos relies on is done here: the standard descriptors made
//! valid, SIGPIPE ignored (a closed pipe is an error to handle, as in
//! `list | head`; services get every disposition reset), the arguments
//! taken, and stdout flushed at the end (`std::process::exit`).
#![cfg_attr(not(test), no_main)]

mod arena;

/// Client processes allocate from a bump arena (see `arena.rs`); the
/// daemon, which runs for months, from the system allocator alone.
#[cfg(not(test))]
#[global_allocator]
static ALLOCATOR: arena::Arena<{ 64 * 1024 }> = arena::Arena::new();

#[cfg(not(test))]
mod entry {
    use std::ffi::{c_char, c_int, CStr, OsStr, OsString};
    use std::os::unix::ffi::OsStrExt;

    use diakonos::cli;
    use diakonos::error;
    use nix::libc;

    /// Called by the C runtime with the process's arguments.
    // SAFETY (of exporting the symbol): `main` is the one entry point the
    // C runtime looks for, and with `no_main` Rust defines no other.
    #[no_mangle]
    extern "C" fn main(argc: c_int, argv: *const *const c_char) -> c_int {
        start_up();
        let count = usize::try_from(argc).unwrap_or(0);
        let args = (1..count).filter_map(|i| {
            // SAFETY: the C runtime passes `argc` pointers in `argv`, each
            // to a NUL-terminated string that lives as long as the
            // process; a null one (none expected) is skipped.
            let arg = unsafe { *argv.add(i) };
            // SAFETY: as above, a valid NUL-terminated string.
            (!arg.is_null()).then(|| OsStr::from_bytes(unsafe { CStr::from_ptr(arg) }.to_bytes()))
        });
        // Decided before anything is allocated: a daemon's first
        // allocations would otherwise stay in the arena for its life. Any
        // argument spelled `daemon` counts (`start daemon` too: that
        // client then only allocates as the daemon does).
        if args.clone().any(|a| a == "daemon") {
            super::ALLOCATOR.disable();
        }
        let args: Vec<OsString> = args.map(OsStr::to_owned).collect();
        // Flushes stdout, then exits.
        std::process::exit(i32::from(run(args)))
    }

    /// What Rust's start-up did that diakonos relies on: descriptors 0-2
    /// open (a daemon started with one closed must not hand that number to
    /// its socket, where `println!` would then write), and SIGPIPE ignored.
    fn start_up() {
        let mut fds = [0, 1, 2].map(|fd| libc::pollfd {
            fd,
            events: 0,
            revents: 0,
        });
        // SAFETY: poll(2) on an array of ours, of the length given, with
        // no wait; it only writes the `revents` fields.
        if unsafe { libc::poll(fds.as_mut_ptr(), 3, 0) } >= 0 {
            for pfd in fds {
                if pfd.revents & libc::POLLNVAL != 0 {
                    // The lowest free descriptor is this one (they are
                    // tried in order). SAFETY: a constant C string; the
                    // descriptor is kept for the process's life.
                    unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR) };
                }
            }
        }
        // SAFETY: sets SIGPIPE's disposition to ignore; no handler runs.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    }

    fn run(args: Vec<OsString>) -> u8 {
        let (global, command) = match cli::parse(args) {
            Ok(parsed) => parsed,
            Err(e) => {
                cli::render::print_error(&e, false);
                return e.exit_code();
            }
        };
        let no_color = global.no_color;
        // `daemon` (foreground) checks its service dir in `cli`, then runs
        // `daemon::run`; every other command is a client.
        match cli::run(global, command) {
            Ok(()) => error::EXIT_OK,
            Err(e) => {
                cli::render::print_error(&e, no_color);
                e.exit_code()
            }
        }
    }
}
