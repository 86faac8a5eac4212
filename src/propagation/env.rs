//! The environment-variable carrier: `TRACEPARENT`, `TRACESTATE`, `BAGGAGE`,
//! as the OpenTelemetry specification's env carrier names them.

use opentelemetry::Context;
use opentelemetry::propagation::{Extractor, Injector};

use super::{BAGGAGE, TRACEPARENT, TRACESTATE};

const KEYS: [(&str, &str); 3] = [
    (TRACEPARENT, "TRACEPARENT"),
    (TRACESTATE, "TRACESTATE"),
    (BAGGAGE, "BAGGAGE"),
];

fn env_name(key: &str) -> Option<&'static str> {
    KEYS.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| *v)
}

/// A carrier over environment-style pairs: lowercase propagation keys map to
/// the uppercase variable names. Extraction reads what was captured; injection
/// collects `(NAME, value)` pairs for a child process.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct EnvCarrier {
    vars: Vec<(String, String)>,
}

impl EnvCarrier {
    /// Captures `TRACEPARENT`, `TRACESTATE` and `BAGGAGE` from this process's
    /// environment (non-Unicode or empty values are ignored), `BAGGAGE`
    /// filtered by the [`env_baggage_policy`](super::env_baggage_policy).
    pub fn from_process() -> Self {
        let vars = KEYS
            .iter()
            .filter_map(|(_, name)| {
                let value = std::env::var(name).ok()?;
                (!value.trim().is_empty()).then(|| ((*name).to_owned(), value))
            })
            .collect();
        super::env_baggage_policy().filter_env(Self { vars })
    }

    /// Removes the variable for propagation key `key` (`baggage`, ...).
    pub(crate) fn remove(&mut self, key: &str) {
        if let Some(name) = env_name(key) {
            self.vars.retain(|(n, _)| n != name);
        }
    }

    /// The captured `(NAME, value)` pairs.
    pub fn vars(&self) -> &[(String, String)] {
        &self.vars
    }

    /// The pairs under their lowercase propagation keys (`traceparent`, ...).
    pub fn to_pairs(&self) -> Vec<(String, String)> {
        self.vars
            .iter()
            .filter_map(|(name, v)| {
                KEYS.iter()
                    .find(|(_, n)| n == name)
                    .map(|(k, _)| ((*k).to_owned(), v.clone()))
            })
            .collect()
    }

    /// Consumes the carrier into its `(NAME, value)` pairs.
    pub fn into_vars(self) -> Vec<(String, String)> {
        self.vars
    }
}

impl Extractor for EnvCarrier {
    fn get(&self, key: &str) -> Option<&str> {
        let name = env_name(key)?;
        self.vars
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn keys(&self) -> Vec<&str> {
        self.vars
            .iter()
            .filter_map(|(n, _)| KEYS.iter().find(|(_, name)| name == n).map(|(k, _)| *k))
            .collect()
    }
}

impl Injector for EnvCarrier {
    fn set(&mut self, key: &str, value: String) {
        if let Some(name) = env_name(key) {
            self.vars.retain(|(n, _)| n != name);
            self.vars.push((name.to_owned(), value));
        }
    }
}

/// The context this process was started under: `TRACEPARENT`, `TRACESTATE`
/// and `BAGGAGE` from the environment (`BAGGAGE` filtered by the
/// [`env_baggage_policy`](super::env_baggage_policy)), on top of the current
/// context.
pub fn from_env() -> Context {
    super::extract(&EnvCarrier::from_process())
}

/// The `TRACEPARENT` / `TRACESTATE` / `BAGGAGE` pairs that let a child process
/// continue the current task's trace, e.g. `Command::new(..).envs(to_env())`.
pub fn to_env() -> Vec<(String, String)> {
    let mut carrier = EnvCarrier::default();
    crate::task_view::inject_current(&mut carrier);
    carrier.into_vars()
}
