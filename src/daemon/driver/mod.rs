//! Drivers: each owns its event sources and their mio tokens, turns their
//! readiness into supervisor inputs, and carries out its kind of effect.
//! The event loop routes readiness to them by token and expired timer keys
//! by kind; a driver never calls the loop.
//!
//! | token                  | owner                         |
//! |------------------------|-------------------------------|
//! | 0                      | `control.rs`: the listener    |
//! | 1                      | [`children`]: the signal pipe |
//! | 2                      | [`notify`]: the notify socket |
//! | 3                      | [`logs`]: inotify on `logs/`  |
//! | 4                      | [`unitfiles`]: the service dir |
//! | 5                      | [`watches`]: WatchPaths        |
//! | 6                      | [`activation`]: clock sets     |
//! | 16 ..                  | `control.rs`: clients         |
//! | 2^37 + child pid       | [`execs`]: exec error pipes   |
//! | 2^38 + service id      | [`probes`]: health probes     |
//! | 2^39 ..                | [`listeners`]: armed sockets  |
//! | 2^40 ..                | [`children`]: pidfds          |
//!
//! The state writer ([`state`]), the metrics file ([`metrics`]) and the
//! unit timers ([`activation`]) have no token: they work on timer keys.
//! The [`listeners`] hold the sockets of `[socket]` units for their
//! starts (`RealSys::spawn`) and register only those armed for on-demand
//! activation. The [`execs`] (in `RealSys`, which clones) wait for the
//! outcome of each exec (a service's, ExecStop's, an Exec probe's) without
//! blocking the loop, up to a cap of execs under way (past it, the oldest
//! is waited for: it is bounded by the kernel's exec, not by the program).

pub mod activation;
pub mod children;
pub mod execs;
pub mod listeners;
pub mod logs;
pub mod metrics;
pub mod notify;
pub mod probes;
pub mod state;
pub mod unitfiles;
pub mod watches;
