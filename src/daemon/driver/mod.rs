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
//! | 16 ..                  | `control.rs`: clients         |
//! | 2^39 + service id      | [`probes`]: health probes     |
//! | 2^40 ..                | [`children`]: pidfds          |
//!
//! The state writer ([`state`]) has no token: it works on timer keys.

pub mod children;
pub mod logs;
pub mod notify;
pub mod probes;
pub mod state;
