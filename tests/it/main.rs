//! Integration tests: the real binary, a real daemon per test, real
//! processes. Each test has its own home and service directory (see
//! `util::Home`), so they run in parallel and share nothing.

mod util;

mod adhoc;
mod arm;
mod cli;
mod daemon;
mod deps;
mod durability;
mod ecosystem;
mod events;
mod examples;
mod hardening;
mod health;
mod hooks;
mod hygiene;
mod init;
mod insight;
mod json;
mod lifecycle;
mod limits;
mod notify;
mod output;
mod protocol;
mod real_daemons;
mod reload;
mod restart;
mod rotation;
mod sockets;
mod start_failures;
mod startup;
mod stats;
mod stopping;
mod timers;
mod units;
mod upgrade;
