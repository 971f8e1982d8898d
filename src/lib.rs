//! diakonos as a library: everything the binary is made of, so that tests
//! and benches speak the real wire format and parse real unit files instead
//! of re-implementing them.
//!
//! - [`protocol`]: the wire contract (frames, request and reply types, the
//!   stable envelope that every later version understands);
//! - [`mod@unit`]: unit files to [`unit::Unit`] values, with diagnostics;
//! - [`paths`]: the home layout and the service directory;
//! - [`error`]: user-facing errors and exit codes;
//! - [`cli`]: the client commands; [`daemon`]: the supervisor daemon.
//!
//! `src/main.rs` is only `args -> cli::run | daemon::run -> exit code`.

pub mod cli;
pub mod daemon;
pub mod error;
pub mod paths;
pub mod protocol;
pub mod unit;
