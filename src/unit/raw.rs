//! The raw TOML shape, as serde sees it after `check_shape` removed bad
//! entries: every value still with its span.

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use toml::Spanned;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFile {
    // systemd spells the sections `[Unit]` and `[Service]`; both are accepted
    // (`check_shape` refuses a file that has both spellings of one section).
    #[serde(alias = "Unit")]
    pub(super) unit: Option<RawUnit>,
    #[serde(alias = "Service")]
    pub(super) service: Option<RawService>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawUnit {
    #[serde(rename = "Description")]
    pub(super) description: Option<Spanned<String>>,
    #[serde(rename = "Requires")]
    pub(super) requires: Option<Vec<Spanned<String>>>,
    #[serde(rename = "Wants")]
    pub(super) wants: Option<Vec<Spanned<String>>>,
    #[serde(rename = "After")]
    pub(super) after: Option<Vec<Spanned<String>>>,
    #[serde(rename = "StartLimitBurst")]
    pub(super) start_limit_burst: Option<Spanned<i64>>,
    #[serde(rename = "StartLimitIntervalSec")]
    pub(super) start_limit_interval_sec: Option<Spanned<Number>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawService {
    #[serde(rename = "Type")]
    pub(super) kind: Option<Spanned<String>>,
    #[serde(rename = "ExecStart")]
    pub(super) exec_start: Option<Spanned<String>>,
    #[serde(rename = "ExecStop")]
    pub(super) exec_stop: Option<Spanned<String>>,
    #[serde(rename = "Restart")]
    pub(super) restart: Option<Spanned<String>>,
    #[serde(rename = "RestartSec")]
    pub(super) restart_sec: Option<Spanned<Number>>,
    #[serde(rename = "RestartMaxDelaySec")]
    pub(super) restart_max_delay_sec: Option<Spanned<Number>>,
    #[serde(rename = "TimeoutStartSec")]
    pub(super) timeout_start_sec: Option<Spanned<Number>>,
    #[serde(rename = "TimeoutStopSec")]
    pub(super) timeout_stop_sec: Option<Spanned<Number>>,
    #[serde(rename = "KillSignal")]
    pub(super) kill_signal: Option<Spanned<SignalValue>>,
    #[serde(rename = "WorkingDirectory")]
    pub(super) working_directory: Option<Spanned<String>>,
    #[serde(rename = "Environment")]
    pub(super) environment: Option<Vec<Spanned<String>>>,
    #[serde(rename = "User")]
    pub(super) user: Option<Spanned<String>>,
    #[serde(rename = "RemainAfterExit")]
    pub(super) remain_after_exit: Option<bool>,
    #[serde(rename = "PIDFile")]
    pub(super) pid_file: Option<Spanned<String>>,
    #[serde(rename = "LogMaxBytes")]
    pub(super) log_max_bytes: Option<Spanned<i64>>,
    #[serde(rename = "LogMaxFiles")]
    pub(super) log_max_files: Option<Spanned<i64>>,
}

/// A duration as written: a TOML integer or float of seconds, or a systemd
/// time span string (`"1min 30s"`), kept apart so range checks can say what
/// was written.
#[derive(Debug, Clone)]
pub(super) enum Number {
    Int(i64),
    Float(f64),
    Text(String),
}

impl<'de> Deserialize<'de> for Number {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Number;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number of seconds")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Number, E> {
                Ok(Number::Int(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Number, E> {
                Ok(i64::try_from(v).map_or(Number::Float(v as f64), Number::Int))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Number, E> {
                Ok(Number::Float(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Number, E> {
                Ok(Number::Text(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

/// KillSignal as written: a name or a number.
#[derive(Debug, Clone)]
pub(super) enum SignalValue {
    Name(String),
    Number(i64),
}

impl<'de> Deserialize<'de> for SignalValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = SignalValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a signal name or number")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<SignalValue, E> {
                Ok(SignalValue::Number(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<SignalValue, E> {
                Ok(SignalValue::Number(i64::try_from(v).unwrap_or(i64::MAX)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<SignalValue, E> {
                Ok(SignalValue::Name(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}
