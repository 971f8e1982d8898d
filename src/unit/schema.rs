//! The unit keys: which section each belongs to and what its value must
//! look like, and the systemd keys diakonos knows it does not take.

use toml::de::DeValue;

use super::{MAX_LOG_FILES, MAX_SECS};

/// What a key's value must look like in TOML terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Str,
    StrList,
    Secs,
    /// An integer from 0 to the given maximum.
    Count(i64),
    Bool,
    Signal,
}

impl Kind {
    pub(super) fn expected(self) -> &'static str {
        match self {
            Kind::Str => "a string",
            Kind::StrList => "an array of strings (like [\"a\", \"b\"])",
            Kind::Secs => "a number of seconds (like 5 or 0.5) or a time span (like \"1min 30s\")",
            Kind::Count(_) => "a non-negative integer",
            Kind::Bool => "true or false",
            Kind::Signal => "a signal name (like \"SIGTERM\") or number",
        }
    }

    pub(super) fn accepts(self, value: &DeValue<'_>) -> bool {
        match self {
            Kind::Str => value.is_str(),
            Kind::StrList => value.is_array(),
            Kind::Secs => value.is_integer() || value.is_float() || value.is_str(),
            Kind::Count(_) => value.is_integer(),
            Kind::Bool => value.is_bool(),
            Kind::Signal => value.is_str() || value.is_integer(),
        }
    }

    /// The accepted range, for "`Key` is X; expected ..." messages.
    pub(super) fn range(self) -> String {
        match self {
            Kind::Secs => format!("a number of seconds from 0 to {MAX_SECS}"),
            Kind::Count(max) => format!("an integer from 0 to {max}"),
            Kind::Signal => SIGNAL_EXPECTED.to_string(),
            other => other.expected().to_string(),
        }
    }
}

/// Whether a number literal fits the types serde will read it into: i64
/// and finite f64 (`1e400` does not; `inf` is fine and range-checked later).
pub(super) fn number_fits(value: &DeValue<'_>) -> bool {
    match value {
        DeValue::Integer(n) => i64::from_str_radix(n.as_str(), n.radix()).is_ok(),
        DeValue::Float(f) => f
            .as_str()
            .parse::<f64>()
            .is_ok_and(|v| v.is_finite() || f.as_str().contains("inf")),
        _ => true,
    }
}

pub(super) const SIGNAL_EXPECTED: &str =
    "a signal name like \"SIGTERM\" or \"TERM\", or a number like 15";

pub(super) const UNIT_KEYS: &[(&str, Kind)] = &[
    ("Description", Kind::Str),
    ("Requires", Kind::StrList),
    ("Wants", Kind::StrList),
    ("After", Kind::StrList),
    ("StartLimitBurst", Kind::Count(u32::MAX as i64)),
    ("StartLimitIntervalSec", Kind::Secs),
];

pub(super) const SERVICE_KEYS: &[(&str, Kind)] = &[
    ("Type", Kind::Str),
    ("ExecStart", Kind::Str),
    ("ExecStop", Kind::Str),
    ("Restart", Kind::Str),
    ("RestartSec", Kind::Secs),
    ("RestartMaxDelaySec", Kind::Secs),
    ("TimeoutStartSec", Kind::Secs),
    ("TimeoutStopSec", Kind::Secs),
    ("KillSignal", Kind::Signal),
    ("WorkingDirectory", Kind::Str),
    ("Environment", Kind::StrList),
    ("User", Kind::Str),
    ("RemainAfterExit", Kind::Bool),
    ("PIDFile", Kind::Str),
    ("LogMaxBytes", Kind::Count(i64::MAX)),
    ("LogMaxFiles", Kind::Count(MAX_LOG_FILES)),
];

pub(super) const SECTIONS: &[(&str, &[(&str, Kind)])] =
    &[("unit", UNIT_KEYS), ("service", SERVICE_KEYS)];

/// systemd keys people carry over, with why they are not accepted here.
pub(super) const SYSTEMD_ONLY: &[(&str, &str)] = &[
    (
        "ExecStartPre",
        "diakonos runs only ExecStart; wrap the steps in a script",
    ),
    (
        "ExecStartPost",
        "diakonos runs only ExecStart; wrap the steps in a script",
    ),
    (
        "ExecStopPost",
        "diakonos runs only ExecStop; wrap the steps in a script",
    ),
    (
        "ExecReload",
        "diakonos has no reload action; use `diakonos restart`",
    ),
    (
        "EnvironmentFile",
        "list the variables in Environment instead",
    ),
    ("Group", "diakonos switches to User and that user's groups"),
    (
        "StandardOutput",
        "output always goes to the diakonos log of the unit",
    ),
    (
        "StandardError",
        "output always goes to the diakonos log of the unit",
    ),
    ("Before", "put an After on the other unit instead"),
    ("WantedBy", "use `diakonos enable NAME` instead"),
];
