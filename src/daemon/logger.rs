//! The daemon's own log lines (`daemon.log`, or stderr in container mode):
//! `[2026-11-30T06:40:21.656Z INFO  diakonos::daemon::driver::logs] text`,
//! one `write` per line. The level comes from `DIAKONOS_LOG` (else
//! `RUST_LOG`, else `info`): a level (`debug`), and `PREFIX=LEVEL` for the
//! modules whose path starts with PREFIX (`info,diakonos::daemon::supervisor=debug`);
//! the longest matching prefix wins.
//!
//! In place of env_logger: the same lines and filters in a fraction of its
//! code (the static binary has a size budget, SPEC §9).

use std::io::Write;
use std::sync::Mutex;

use log::{Level, LevelFilter, Log, Metadata, Record};

struct Logger {
    /// The level of modules no directive names.
    default: LevelFilter,
    /// (module path prefix, level).
    by_module: Vec<(String, LevelFilter)>,
    out: Mutex<Box<dyn Write + Send>>,
}

/// The filter the environment asks for: (default level, per-module levels).
/// What does not read as a level is passed over.
fn parse(spec: &str) -> (LevelFilter, Vec<(String, LevelFilter)>) {
    let mut default = LevelFilter::Info;
    let mut by_module = Vec::new();
    for directive in spec.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        match directive.split_once('=') {
            Some((module, level)) => {
                if let Ok(level) = level.trim().parse() {
                    by_module.push((module.trim().to_owned(), level));
                }
            }
            None => match directive.parse() {
                Ok(level) => default = level,
                // A bare module name: everything of it.
                Err(_) => by_module.push((directive.to_owned(), LevelFilter::Trace)),
            },
        }
    }
    (default, by_module)
}

impl Logger {
    /// The level of the longest prefix of `target` named, else the default.
    fn level_of(&self, target: &str) -> LevelFilter {
        self.by_module
            .iter()
            .filter(|(m, _)| target.starts_with(m.as_str()))
            .max_by_key(|(m, _)| m.len())
            .map_or(self.default, |&(_, l)| l)
    }
}

impl Log for Logger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= self.level_of(metadata.target())
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let level = match record.level() {
            Level::Error => "ERROR",
            Level::Warn => "WARN ",
            Level::Info => "INFO ",
            Level::Debug => "DEBUG",
            Level::Trace => "TRACE",
        };
        let now = crate::daemon::system::unix_now_ms() as i64;
        let line = format!(
            "[{} {level} {}] {}\n",
            crate::utc::millis(now),
            record.target(),
            record.args()
        );
        if let Ok(mut out) = self.out.lock() {
            let _ = out.write_all(line.as_bytes());
        }
    }

    fn flush(&self) {
        if let Ok(mut out) = self.out.lock() {
            let _ = out.flush();
        }
    }
}

/// Sends the `log` macros' lines to `out`, at the level the environment
/// asks for. A second call (only in tests) changes nothing.
pub fn init(out: Box<dyn Write + Send>) {
    let spec = std::env::var("DIAKONOS_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| "info".to_owned());
    let (default, by_module) = parse(&spec);
    let max = by_module
        .iter()
        .map(|&(_, l)| l)
        .fold(default, std::cmp::max);
    let logger = Logger {
        default,
        by_module,
        out: Mutex::new(out),
    };
    if log::set_boxed_logger(Box::new(logger)).is_ok() {
        log::set_max_level(max);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_and_module_prefixes_read_as_env_logger_reads_them() {
        // A bare level is the default; PREFIX=LEVEL for modules under it, the longest prefix first; junk is passed over.
        let (default, by_module) =
            parse("warn, diakonos::daemon=debug,diakonos::daemon::supervisor=trace,x=loud");
        assert_eq!(default, LevelFilter::Warn);
        let logger = Logger {
            default,
            by_module,
            out: Mutex::new(Box::new(std::io::sink())),
        };
        assert_eq!(logger.level_of("diakonos::cli"), LevelFilter::Warn);
        assert_eq!(
            logger.level_of("diakonos::daemon::spawn"),
            LevelFilter::Debug
        );
        assert_eq!(
            logger.level_of("diakonos::daemon::supervisor::jobs"),
            LevelFilter::Trace
        );
        assert_eq!(parse("").0, LevelFilter::Info);
        assert_eq!(parse("off").0, LevelFilter::Off);
    }
}
