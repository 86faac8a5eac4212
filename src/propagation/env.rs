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
///
/// ```
/// use flowtrace::propagation::EnvCarrier;
/// use opentelemetry::propagation::Injector as _;
///
/// let mut carrier = EnvCarrier::default();
/// carrier.set("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".to_owned());
/// assert_eq!(carrier.vars(), [("TRACEPARENT".to_owned(), "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".to_owned())]);
/// ```
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct EnvCarrier {
    vars: Vec<(String, String)>,
}

impl EnvCarrier {
    /// Captures `TRACEPARENT`, `TRACESTATE` and `BAGGAGE` from this process's
    /// environment (non-Unicode or empty values are ignored), `BAGGAGE`
    /// filtered by the [`env_baggage_policy`](super::env_baggage_policy).
    ///
    /// ```
    /// let carrier = flowtrace::propagation::EnvCarrier::from_process();
    /// for (name, _) in carrier.vars() {
    ///     assert!(["TRACEPARENT", "TRACESTATE", "BAGGAGE"].contains(&name.as_str()));
    /// }
    /// ```
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
    ///
    /// ```
    /// use flowtrace::propagation::EnvCarrier;
    /// use opentelemetry::propagation::Injector as _;
    ///
    /// let mut carrier = EnvCarrier::default();
    /// carrier.set("baggage", "tenant=acme".to_owned());
    /// assert_eq!(carrier.vars()[0].0, "BAGGAGE");
    /// ```
    pub fn vars(&self) -> &[(String, String)] {
        &self.vars
    }

    /// The pairs under their lowercase propagation keys (`traceparent`, ...).
    ///
    /// ```
    /// use flowtrace::propagation::EnvCarrier;
    /// use opentelemetry::propagation::Injector as _;
    ///
    /// let mut carrier = EnvCarrier::default();
    /// carrier.set("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".to_owned());
    /// // Ready for a `custom_context` map.
    /// assert_eq!(carrier.to_pairs(), [("traceparent".to_owned(), "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".to_owned())]);
    /// ```
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
    ///
    /// ```
    /// use flowtrace::propagation::EnvCarrier;
    /// use opentelemetry::propagation::Injector as _;
    ///
    /// let mut carrier = EnvCarrier::default();
    /// carrier.set("tracestate", "vendor=x".to_owned());
    /// let mut child = std::process::Command::new("worker");
    /// child.envs(carrier.into_vars());
    /// assert_eq!(child.get_envs().count(), 1);
    /// ```
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
///
/// ```
/// use opentelemetry::trace::TraceContextExt as _;
///
/// // A process started without `TRACEPARENT` has no parent to continue.
/// # // SAFETY: the doctest is single-threaded.
/// # unsafe { std::env::remove_var("TRACEPARENT") };
/// let cx = flowtrace::propagation::from_env();
/// assert!(!cx.span().span_context().is_valid());
/// ```
pub fn from_env() -> Context {
    super::extract(&EnvCarrier::from_process())
}

/// The `TRACEPARENT` / `TRACESTATE` / `BAGGAGE` pairs that let a child process
/// continue the current task's trace, e.g. `Command::new(..).envs(to_env())`.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let carrier = [("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")];
/// let vars = flowtrace::custom_context(carrier)
///     .scope(async { flowtrace::propagation::to_env() })
///     .await;
/// assert!(vars.contains(&("TRACEPARENT".to_owned(), "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".to_owned())));
/// assert!(flowtrace::propagation::to_env().is_empty(), "nothing to continue here");
/// # }
/// ```
pub fn to_env() -> Vec<(String, String)> {
    let mut carrier = EnvCarrier::default();
    crate::task_view::inject_current(&mut carrier);
    carrier.into_vars()
}
