//! diakonos: one binary, two roles. `diakonos daemon` supervises; every
//! other subcommand is a thin client. Arguments in, exit code out; all the
//! work is in the library (`src/lib.rs`).

use std::process::ExitCode;

use diakonos::cli;
use diakonos::error;

fn main() -> ExitCode {
    let (global, command) = match cli::parse(std::env::args_os().skip(1)) {
        Ok(parsed) => parsed,
        Err(e) => {
            cli::render::print_error(&e, false);
            return ExitCode::from(e.exit_code());
        }
    };
    let no_color = global.no_color;
    // `daemon` (foreground) checks its service dir in `cli`, then runs
    // `daemon::run`; every other command is a client.
    let result = cli::run(global, command);
    match result {
        Ok(()) => ExitCode::from(error::EXIT_OK),
        Err(e) => {
            cli::render::print_error(&e, no_color);
            ExitCode::from(e.exit_code())
        }
    }
}
