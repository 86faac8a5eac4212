//! What `init()` reports about the configuration: a [`ConfigWarning`] per bad
//! setting (the specification says: warn and ignore), or a [`ConfigError`]
//! holding all of them under the builder's strict mode.

use std::borrow::Cow;
use std::fmt;

/// One problem (or note) found while reading the telemetry configuration.
///
/// Its `Display` names the setting, the offending value, what is accepted and
/// what flowtrace did instead, e.g.
/// `OTEL_TRACES_SAMPLER="sometimes" is not valid: accepted values are always_on, …; the setting is ignored`.
///
/// ```
/// let telemetry = flowtrace_telemetry::builder()
///     .env_vars([("OTEL_TRACES_SAMPLER", "sometimes"), ("OTEL_TRACES_EXPORTER", "none")])
///     .install_tracing_subscriber(false)
///     .init()
///     .unwrap();
/// let warning = &telemetry.warnings()[0];
/// assert_eq!(warning.setting(), "OTEL_TRACES_SAMPLER");
/// assert_eq!(warning.value(), Some("sometimes"));
/// assert!(warning.to_string().contains("accepted values are always_on"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigWarning {
    setting: Cow<'static, str>,
    value: Option<String>,
    /// "is not valid: accepted values are …" — what is wrong and what is accepted.
    problem: Cow<'static, str>,
    /// "the setting is ignored" — what flowtrace did about it.
    consequence: Cow<'static, str>,
    note: bool,
}

impl ConfigWarning {
    /// `setting="value" is not valid: {accepted}; {consequence}`.
    pub(crate) fn invalid(
        setting: impl Into<Cow<'static, str>>,
        value: impl Into<String>,
        accepted: impl fmt::Display,
        consequence: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self {
            setting: setting.into(),
            value: Some(value.into()),
            problem: format!("is not valid: {accepted}").into(),
            consequence: consequence.into(),
            note: false,
        }
    }

    /// A recognised value flowtrace does not implement (`OTEL_PROPAGATORS=b3`).
    pub(crate) fn unsupported(
        setting: impl Into<Cow<'static, str>>,
        value: impl Into<String>,
        accepted: impl fmt::Display,
        consequence: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self {
            problem: format!("is not supported by flowtrace: {accepted}").into(),
            ..Self::invalid(setting, value, "", consequence)
        }
    }

    /// A problem that is not about one value (an exporter that failed to build).
    pub(crate) fn failed(
        setting: impl Into<Cow<'static, str>>,
        problem: impl Into<Cow<'static, str>>,
        consequence: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self {
            setting: setting.into(),
            value: None,
            problem: problem.into(),
            consequence: consequence.into(),
            note: false,
        }
    }

    /// Something worth knowing that is not a mistake (e.g. a `tracing`
    /// subscriber was already installed). Notes are kept in
    /// [`Telemetry::warnings`](super::Telemetry::warnings) but neither printed
    /// nor turned into errors by strict mode.
    pub(crate) fn note(
        setting: impl Into<Cow<'static, str>>,
        problem: impl Into<Cow<'static, str>>,
        consequence: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self {
            note: true,
            ..Self::failed(setting, problem, consequence)
        }
    }

    /// The environment variable (or builder setting) the warning is about.
    pub fn setting(&self) -> &str {
        &self.setting
    }

    /// The rejected value, if the warning is about a value.
    pub fn value(&self) -> Option<&str> {
        self.value.as_deref()
    }

    /// `true` for an informational note rather than a configuration mistake.
    pub fn is_note(&self) -> bool {
        self.note
    }

    /// The part of the message without the consequence: strict mode fails
    /// instead of ignoring, so "the setting is ignored" would be untrue there.
    fn fmt_problem(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.value {
            // `{:?}` quotes the value and escapes control characters, so a
            // hostile or binary environment value cannot garble the terminal.
            Some(value) => write!(f, "{}={:?} {}", self.setting, value, self.problem),
            None => write!(f, "{}: {}", self.setting, self.problem),
        }
    }
}

impl fmt::Display for ConfigWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.fmt_problem(f)?;
        write!(f, "; {}", self.consequence)
    }
}

/// The error of [`init`](super::init) under
/// [`strict`](super::TelemetryBuilder::strict) mode: every problem found, in
/// the order the settings were read.
///
/// ```
/// let err = flowtrace_telemetry::builder()
///     .strict(true)
///     .env_vars([("OTEL_BSP_MAX_QUEUE_SIZE", "lots")])
///     .init()
///     .unwrap_err();
/// assert_eq!(err.problems()[0].setting(), "OTEL_BSP_MAX_QUEUE_SIZE");
/// assert!(err.to_string().starts_with("OTEL_BSP_MAX_QUEUE_SIZE=\"lots\" is not valid"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    problems: Vec<ConfigWarning>,
}

impl ConfigError {
    pub(crate) fn new(problems: Vec<ConfigWarning>) -> Self {
        Self { problems }
    }

    /// All problems found (at least one).
    pub fn problems(&self) -> &[ConfigWarning] {
        &self.problems
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.problems.as_slice() {
            [one] => one.fmt_problem(f),
            many => {
                write!(f, "{} problems in the telemetry configuration:", many.len())?;
                for problem in many {
                    f.write_str("\n  - ")?;
                    problem.fmt_problem(f)?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for ConfigError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_setting_value_accepted_and_consequence() {
        let cases = [
            (
                ConfigWarning::invalid(
                    "OTEL_TRACES_SAMPLER",
                    "sometimes",
                    "accepted values are always_on, always_off",
                    "the setting is ignored",
                ),
                "OTEL_TRACES_SAMPLER=\"sometimes\" is not valid: accepted values are always_on, always_off; the setting is ignored",
                "an invalid value is quoted and followed by what is accepted",
            ),
            (
                ConfigWarning::unsupported(
                    "OTEL_PROPAGATORS",
                    "b3",
                    "accepted values are tracecontext, baggage, none",
                    "the value is ignored",
                ),
                "OTEL_PROPAGATORS=\"b3\" is not supported by flowtrace: accepted values are tracecontext, baggage, none; the value is ignored",
                "a recognised-but-unsupported value says so",
            ),
            (
                ConfigWarning::invalid("X", "a\u{1b}[31m", "accepted values are a", "ignored"),
                "X=\"a\\u{1b}[31m\" is not valid: accepted values are a; ignored",
                "control characters in a value are escaped",
            ),
            (
                ConfigWarning::failed("otlp exporter", "boom", "spans are not sent"),
                "otlp exporter: boom; spans are not sent",
                "a failure without a value",
            ),
        ];
        for (warning, expected, reason) in cases {
            assert_eq!(warning.to_string(), expected, "{reason}");
        }
    }

    #[test]
    fn error_lists_problems_without_consequences() {
        let one = ConfigWarning::invalid("A", "x", "accepted values are y", "ignored");
        let two = ConfigWarning::invalid("B", "z", "accepted values are w", "ignored");
        assert_eq!(
            ConfigError::new(vec![one.clone()]).to_string(),
            "A=\"x\" is not valid: accepted values are y",
            "strict mode does not claim the setting was ignored"
        );
        assert_eq!(
            ConfigError::new(vec![one, two]).to_string(),
            "2 problems in the telemetry configuration:\n  - A=\"x\" is not valid: accepted values are y\n  - B=\"z\" is not valid: accepted values are w",
            "several problems are listed one per line"
        );
    }
}
