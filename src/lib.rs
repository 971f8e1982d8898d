//! diakonos as a library: everything the binary is made of, so that tests
//! and benches speak the real wire format and parse real unit files instead
//! of re-implementing them.
//!
//! - [`protocol`]: the wire contract (frames, request and reply types, the
//!   stable envelope that every later version understands);
//! - [`mod@unit`]: unit files to [`unit::Unit`] values, with diagnostics;
//! - [`paths`]: the home layout and the service directory;
//! - [`graph`]: the dependency graph between units and its problems;
//! - [`procfs`]: reading `/proc` (process identity, for client and daemon);
//! - [`program`]: finding a service's program as its exec will;
//! - [`error`]: user-facing errors and exit codes; [`order`]: sorting that
//!   keeps the binary small;
//! - [`cli`]: the client commands; [`daemon`]: the supervisor daemon.
//!   Both stand on the modules above; neither imports the other (except
//!   `cli` running [`daemon::run`] for the foreground `daemon` command).
//!
//! `src/main.rs` is only `args -> cli::run | daemon::run -> exit code` (and
//! the shim that passes `[socket]` units their listening sockets).

pub mod cli;
pub mod daemon;
pub mod error;
pub mod graph;
pub mod hash;
mod mem;
pub mod metrics;
pub mod order;
pub mod paths;
pub mod procfs;
pub mod program;
pub mod protocol;
pub mod unit;
pub mod utc;
