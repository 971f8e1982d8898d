//! diakonos: one binary, two roles. `diakonos daemon` supervises; every
//! other subcommand is a thin client. Arguments in, exit code out; all the
//! work is in the library (`src/lib.rs`).

use std::process::ExitCode;

use diakonos::cli::{self, Command};
use diakonos::daemon::{self, DaemonOptions};
use diakonos::error::{self, Error};
use diakonos::paths::{self, Home};

fn main() -> ExitCode {
    let (global, command) = match cli::parse(std::env::args_os().skip(1)) {
        Ok(parsed) => parsed,
        Err(e) => {
            cli::render::print_error(&e, false);
            return ExitCode::from(e.exit_code());
        }
    };
    let no_color = global.no_color;
    let result = match command {
        // The daemon in the foreground; `daemon --detach` is a client.
        Command::Daemon { detach: false } => daemon_options(&global).and_then(daemon::run),
        command => cli::run(global, command),
    };
    match result {
        Ok(()) => ExitCode::from(error::EXIT_OK),
        Err(e) => {
            cli::render::print_error(&e, no_color);
            ExitCode::from(e.exit_code())
        }
    }
}

fn daemon_options(g: &cli::Global) -> Result<DaemonOptions, Error> {
    let home = Home::resolve(g.home.clone()).map_err(Error::failed)?;
    let (dir, named) = paths::service_dir(g.service_dir.clone());
    Ok(DaemonOptions {
        home,
        service_dir: named.then_some(dir),
    })
}
