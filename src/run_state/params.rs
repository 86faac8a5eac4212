//! The params store, the one home of run parameters: the process-wide
//! parameters every run starts with and each run's own ([`RunParams`]), the
//! limits both admit parameters by, and the `flowtrace.param.<key>`
//! attributes they are recorded as. `flowtrace::params` is the API over it.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use opentelemetry::{KeyValue, StringValue, Value};
use serde::Serialize;
use serde_json::Value as Json;

use crate::attributes::PARAM_PREFIX;
use crate::capture::{self, Captured};

/// Most parameters one run (or the process) holds.
pub const MAX_PARAMS: usize = 256;
/// Longest parameter key, in bytes.
pub const MAX_KEY_BYTES: usize = 256;

/// Parameters by key.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let run = flowtrace::with_runcontext()
///     .initial_params([("top_k", serde_json::json!(3))])
///     .run(async { flowtrace::params::get() })
///     .await;
/// let params: &flowtrace::params::Params = run.output();
/// assert_eq!(params.get("top_k"), Some(&serde_json::json!(3)));
/// # }
/// ```
pub type Params = BTreeMap<String, Json>;

/// Why a parameter was not registered.
///
/// ```
/// use flowtrace::params::{self, ParamError};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let run = flowtrace::with_runcontext().run(async { params::register("", 1) }).await;
/// let err = run.into_output().unwrap_err();
/// assert_eq!(err, ParamError::InvalidKey { key: String::new() });
/// assert!(err.to_string().contains("keys are 1 to"));
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParamError {
    /// The key was empty or longer than [`MAX_KEY_BYTES`].
    InvalidKey {
        /// The key (cut to 64 bytes).
        key: String,
    },
    /// Registering would exceed [`MAX_PARAMS`].
    TooMany {
        /// The key that did not fit.
        key: String,
    },
    /// The value could not be turned into JSON (a map with non-string keys,
    /// a `Serialize` impl that failed).
    NotJson {
        /// The parameter's key.
        key: String,
        /// What serde_json said.
        reason: String,
    },
}

impl fmt::Display for ParamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParamError::InvalidKey { key } => write!(
                f,
                "parameter key {key:?} is not accepted: keys are 1 to {MAX_KEY_BYTES} bytes"
            ),
            ParamError::TooMany { key } => write!(
                f,
                "parameter {key:?} is not registered: a run holds at most {MAX_PARAMS} parameters"
            ),
            ParamError::NotJson { key, reason } => write!(
                f,
                "parameter {key:?} is not registered: its value is not representable as JSON ({reason}); \
                 accepted values serialize to JSON with string map keys"
            ),
        }
    }
}

impl std::error::Error for ParamError {}

static PROCESS: RwLock<Params> = RwLock::new(BTreeMap::new());

/// The process-wide parameters every new run starts with.
pub(crate) fn process_params() -> Params {
    PROCESS.read().unwrap_or_else(|e| e.into_inner()).clone()
}

/// Applies `change` to the process-wide parameters.
pub(crate) fn update_process<T>(change: impl FnOnce(&mut Params) -> T) -> T {
    let mut process = PROCESS.write().unwrap_or_else(|e| e.into_inner());
    change(&mut process)
}

fn check_key(key: &str) -> Result<(), ParamError> {
    if key.is_empty() || key.len() > MAX_KEY_BYTES {
        let mut cut = key.len().min(64);
        while !key.is_char_boundary(cut) {
            cut -= 1;
        }
        return Err(ParamError::InvalidKey {
            key: key[..cut].to_owned(),
        });
    }
    Ok(())
}

/// Inserts `pairs` into `params`, all or none.
pub(crate) fn insert_all(
    params: &mut Params,
    pairs: Vec<(String, Json)>,
) -> Result<(), ParamError> {
    let new_keys = pairs
        .iter()
        .filter(|(k, _)| !params.contains_key(k))
        .map(|(k, _)| k)
        .collect::<std::collections::BTreeSet<_>>();
    if params.len() + new_keys.len() > MAX_PARAMS {
        let key = new_keys.last().map(|k| (*k).clone()).unwrap_or_default();
        return Err(ParamError::TooMany { key });
    }
    params.extend(pairs);
    Ok(())
}

pub(crate) fn to_pairs<I, K, V>(pairs: I) -> Result<Vec<(String, Json)>, ParamError>
where
    I: IntoIterator<Item = (K, V)>,
    K: Into<String>,
    V: Serialize,
{
    pairs
        .into_iter()
        .map(|(k, v)| {
            let key = k.into();
            check_key(&key)?;
            match serde_json::to_value(v) {
                Ok(json) => Ok((key, json)),
                Err(e) => Err(ParamError::NotJson {
                    key,
                    reason: e.to_string(),
                }),
            }
        })
        .collect()
}

/// The parameters of one run.
#[derive(Debug, Default)]
pub(crate) struct RunParams {
    /// Whether any parameter is set: the hot path's only check.
    any: AtomicBool,
    state: RwLock<ParamState>,
}

#[derive(Debug, Default)]
struct ParamState {
    values: Params,
    /// `flowtrace.param.<key>` attributes, redacted and capped, with shared
    /// strings: copying them onto a span is reference-count increments.
    attributes: Arc<[KeyValue]>,
}

impl RunParams {
    /// The process-wide parameters (telemetry init, registered outside a
    /// run) with `initial` (the run builder's) over them.
    pub(crate) fn new(initial: Params) -> Self {
        let mut values = process_params();
        values.extend(initial);
        let out = Self::default();
        out.replace(values);
        out
    }

    /// Whether any parameter is set (one atomic load).
    #[inline]
    pub(crate) fn any(&self) -> bool {
        self.any.load(Ordering::Acquire)
    }

    pub(crate) fn params(&self) -> Params {
        self.read().values.clone()
    }

    pub(crate) fn attributes(&self) -> Arc<[KeyValue]> {
        self.read().attributes.clone()
    }

    /// Applies `change` to the parameters and rebuilds their attributes.
    pub(crate) fn update<T>(&self, change: impl FnOnce(&mut Params) -> T) -> T {
        let mut state = self.state.write().unwrap_or_else(|e| e.into_inner());
        let out = change(&mut state.values);
        state.attributes = attributes(&state.values).into();
        self.any.store(!state.values.is_empty(), Ordering::Release);
        out
    }

    fn replace(&self, values: Params) {
        self.update(|current| *current = values);
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, ParamState> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }
}

/// `flowtrace.param.<key>` attributes: redacted and capped by the capture
/// settings, strings shared so a copy per span costs no allocation.
pub(crate) fn attributes<'a>(
    params: impl IntoIterator<Item = (&'a String, &'a Json)>,
) -> Vec<KeyValue> {
    let config = capture::config();
    params
        .into_iter()
        .map(|(key, value)| {
            let kv = capture::attribute(
                format!("{PARAM_PREFIX}{key}"),
                Captured::Json(value.clone()),
                &[],
                &config,
            );
            KeyValue::new(kv.key, shared(kv.value))
        })
        .collect()
}

fn shared(value: Value) -> Value {
    match value {
        Value::String(s) => Value::String(StringValue::from(Arc::<str>::from(s.as_str()))),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_are_redacted_capped_and_native() {
        let params: Params = [
            ("api_key".to_owned(), json!("sk-123")),
            ("top_k".to_owned(), json!(5)),
            ("temperature".to_owned(), json!(0.5)),
            ("big".to_owned(), json!("x".repeat(10_000))),
            ("nested".to_owned(), json!({"password": "p", "n": 1})),
        ]
        .into_iter()
        .collect();
        let attrs = attributes(&params);
        let get = |k: &str| {
            attrs
                .iter()
                .find(|kv| kv.key.as_str() == format!("{PARAM_PREFIX}{k}"))
                .map(|kv| kv.value.clone())
                .unwrap()
        };
        assert_eq!(
            get("api_key"),
            Value::from(capture::REDACTED),
            "key redacted"
        );
        assert_eq!(get("top_k"), Value::I64(5), "ints stay ints");
        assert_eq!(get("temperature"), Value::F64(0.5), "floats stay floats");
        assert!(get("big").as_str().contains("[truncated"), "capped");
        assert_eq!(
            get("nested").as_str(),
            r#"{"n":1,"password":"[REDACTED]"}"#,
            "redacted inside objects"
        );
    }

    #[test]
    fn refused_registrations_say_why() {
        for (result, reason) in [
            (to_pairs([("", json!(1))]).map(drop), "an empty key"),
            (
                to_pairs([("k".repeat(MAX_KEY_BYTES + 1), json!(1))]).map(drop),
                "a long key",
            ),
        ] {
            assert!(
                matches!(result, Err(ParamError::InvalidKey { .. })),
                "{reason}"
            );
        }
        let bad: BTreeMap<Vec<u8>, u8> = [(vec![1], 1)].into_iter().collect();
        let err = to_pairs([("m", bad)]).unwrap_err();
        assert!(
            err.to_string().contains("not representable as JSON"),
            "{err}"
        );
        let mut params = Params::new();
        let many: Vec<_> = (0..=MAX_PARAMS)
            .map(|i| (format!("k{i}"), json!(i)))
            .collect();
        let err = insert_all(&mut params, many).unwrap_err();
        assert!(matches!(err, ParamError::TooMany { .. }), "{err}");
        assert!(params.is_empty(), "all or none");
    }
}
