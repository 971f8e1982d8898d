//! diakonos: one binary, two roles. `diakonos daemon` supervises; every
//! other subcommand is a thin client. Arguments in, exit code out.

mod cli;
mod daemon;
mod error;
mod paths;
mod protocol;
mod unit;

use std::process::ExitCode;

fn main() -> ExitCode {
    let (global, command) = match cli::parse(std::env::args_os().skip(1)) {
        Ok(parsed) => parsed,
        Err(e) => {
            cli::render::print_error(&e, false);
            return ExitCode::from(e.exit_code());
        }
    };
    let no_color = global.no_color;
    match cli::run(global, command) {
        Ok(()) => ExitCode::from(error::EXIT_OK),
        Err(e) => {
            cli::render::print_error(&e, no_color);
            ExitCode::from(e.exit_code())
        }
    }
}
