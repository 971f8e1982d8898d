//! Errors a user sees, and the exit codes of SPEC §5, decided here only.
//!
//! | code | meaning                                   |
//! |------|-------------------------------------------|
//! | 0    | success                                   |
//! | 1    | the operation failed                      |
//! | 2    | usage error (bad command line)            |
//! | 3    | daemon not running (`daemon-status`)      |

use std::fmt;

pub const EXIT_OK: u8 = 0;
pub const EXIT_FAILED: u8 = 1;
pub const EXIT_USAGE: u8 = 2;
pub const EXIT_NOT_RUNNING: u8 = 3;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The command line is wrong.
    Usage(String),
    /// The operation failed; `hint` says what to do next.
    Failed {
        message: String,
        hint: Option<String>,
    },
    /// No daemon answers (only an error for `daemon-status`).
    NotRunning(String),
}

impl Error {
    pub fn failed(message: impl Into<String>) -> Error {
        Error::Failed {
            message: message.into(),
            hint: None,
        }
    }

    pub fn failed_hint(message: impl Into<String>, hint: impl Into<String>) -> Error {
        Error::Failed {
            message: message.into(),
            hint: Some(hint.into()),
        }
    }

    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Usage(_) => EXIT_USAGE,
            Error::Failed { .. } => EXIT_FAILED,
            Error::NotRunning(_) => EXIT_NOT_RUNNING,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // A usage error with a hint of its own keeps it.
            Error::Usage(msg) if msg.contains("; hint: ") => write!(f, "{msg}"),
            Error::Usage(msg) => {
                write!(
                    f,
                    "{msg}; hint: `diakonos --help` lists the commands and options"
                )
            }
            Error::Failed { message, hint } => {
                write!(f, "{message}")?;
                // One line, what to do included (SPEC §5).
                if let Some(hint) = hint {
                    write!(f, "; hint: {hint}")?;
                }
                Ok(())
            }
            Error::NotRunning(msg) => write!(f, "{msg}"),
        }
    }
}

impl From<lexopt::Error> for Error {
    fn from(e: lexopt::Error) -> Error {
        Error::Usage(e.to_string())
    }
}
