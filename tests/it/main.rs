//! Integration tests: the real binary, a real daemon per test, real
//! processes. Each test has its own home and service directory (see
//! `util::Home`), so they run in parallel and share nothing.

mod util;

mod cli;
mod daemon;
mod deps;
mod durability;
mod ecosystem;
mod examples;
mod hardening;
mod hygiene;
mod json;
mod lifecycle;
mod protocol;
mod real_daemons;
mod restart;
mod start_failures;
mod units;
mod upgrade;
