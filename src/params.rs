//! Run parameters: the configuration a run used (chunk size, top-k, model,
//! temperature, …), registered once and recorded on every span of the run as
//! `flowtrace.param.<key>`.
//!
//! Parameters are scoped like `custom_context`: [`register`] inside a run
//! changes that run's parameters only — every task of the run started
//! afterwards records them, a concurrent run never sees them — and the run's
//! root span records the final set when the run ends. Outside any run,
//! [`register`] sets process-wide parameters that every later run starts
//! with, as do flowtrace-telemetry's `TelemetryBuilder::initial_params`
//! and, for one run, [`RunBuilder::initial_params`](crate::RunBuilder::initial_params).
//!
//! Values are JSON (`serde_json::Value`, from anything `Serialize`) and are
//! recorded with the capture settings of [`crate::capture`]: values of keys
//! such as `api_key` or `password` become `[REDACTED]` (the parameter's own
//! key included), and each value is capped (4 KiB by default). Scalars stay
//! native attribute types; objects and arrays are JSON text.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), flowtrace::params::ParamError> {
//! use flowtrace::params;
//!
//! #[flowtrace::traced]
//! async fn retrieve(query: String) -> usize {
//!     // Sees the run's parameters; its span records them.
//!     params::get()["top_k"].as_u64().unwrap_or(3) as usize
//! }
//!
//! let run = flowtrace::with_runcontext()
//!     .initial_params([("model", serde_json::json!("gpt-4o-mini"))])
//!     .run(async {
//!         params::top_k(5)?;
//!         params::register("reranker", serde_json::json!({"name": "bm25", "k1": 1.2}))?;
//!         Ok::<_, params::ParamError>(retrieve("what is rust?".into()).await)
//!     })
//!     .await;
//! assert_eq!(*run.output(), Ok(5));
//! assert!(params::get().is_empty(), "nothing leaked out of the run");
//! # Ok(()) }
//! ```
//!
//! What a task records: the parameters current when it starts; a task that
//! registers a parameter also records it on its own span. Recording costs
//! nothing for a span that is not sampled, and a run without parameters pays
//! one atomic load per task.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, RwLock};

use opentelemetry::trace::TraceContextExt as _;
use opentelemetry::{Context, KeyValue, StringValue, Value};
use serde::Serialize;
use serde_json::Value as Json;

use crate::capture::{self, Captured};
use crate::context::RunInfo;

use crate::attributes::PARAM_PREFIX;
/// Most parameters one run (or the process) holds.
pub const MAX_PARAMS: usize = 256;
/// Longest parameter key, in bytes.
pub const MAX_KEY_BYTES: usize = 256;

/// The key [`chunk_size`] registers.
pub const CHUNK_SIZE: &str = "chunk_size";
/// The key [`chunk_overlap`] registers.
pub const CHUNK_OVERLAP: &str = "chunk_overlap";
/// The key [`top_k`] registers.
pub const TOP_K: &str = "top_k";
/// The key [`model`] registers.
pub const MODEL: &str = "model";
/// The key [`temperature`] registers.
pub const TEMPERATURE: &str = "temperature";
/// The key [`top_p`] registers.
pub const TOP_P: &str = "top_p";
/// The key [`embedding_model`] registers.
pub const EMBEDDING_MODEL: &str = "embedding_model";

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

/// The run the caller runs in.
fn current_run() -> Option<Arc<RunInfo>> {
    crate::current::with(|frame| frame.and_then(|f| f.inner.run.clone()))
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
fn insert_all(params: &mut Params, pairs: Vec<(String, Json)>) -> Result<(), ParamError> {
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

fn to_pairs<I, K, V>(pairs: I) -> Result<Vec<(String, Json)>, ParamError>
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

/// Registers one parameter for the current run (outside a run: for every
/// later run of the process). A later value for the same key wins.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let run = flowtrace::with_runcontext()
///     .run(async {
///         flowtrace::params::register("retriever", "hybrid").unwrap();
///         flowtrace::params::get()
///     })
///     .await;
/// assert_eq!(run.output()["retriever"], "hybrid");
/// # }
/// ```
pub fn register(key: impl Into<String>, value: impl Serialize) -> Result<(), ParamError> {
    register_all([(key, value)])
}

/// Registers several parameters at once: all of them, or none when one is
/// refused.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use serde_json::json;
///
/// let run = flowtrace::with_runcontext()
///     .run(async {
///         flowtrace::params::register_all([("chunk_size", json!(512)), ("overlap", json!(64))])
///     })
///     .await;
/// assert!(run.output().is_ok());
/// # }
/// ```
pub fn register_all<I, K, V>(pairs: I) -> Result<(), ParamError>
where
    I: IntoIterator<Item = (K, V)>,
    K: Into<String>,
    V: Serialize,
{
    let pairs = to_pairs(pairs)?;
    match current_run() {
        Some(run) => {
            let recorded = attributes(pairs.iter().map(|(k, v)| (k, v)));
            run.annotations.update(|params| insert_all(params, pairs))?;
            // The registering task's own span records them too.
            Context::map_current(|cx| {
                let span = cx.span();
                if span.is_recording() {
                    span.set_attributes(recorded);
                }
            });
            Ok(())
        }
        None => {
            let mut process = PROCESS.write().unwrap_or_else(|e| e.into_inner());
            insert_all(&mut process, pairs)
        }
    }
}

/// Sets process-wide parameters (telemetry init): as [`register_all`]
/// outside a run.
pub(crate) fn register_process<I>(pairs: I) -> Result<(), ParamError>
where
    I: IntoIterator<Item = (String, Json)>,
{
    let pairs = to_pairs(pairs)?;
    let mut process = PROCESS.write().unwrap_or_else(|e| e.into_inner());
    insert_all(&mut process, pairs)
}

/// The current run's parameters (outside a run: the process-wide ones).
///
/// ```
/// assert!(flowtrace::params::get().get("no such key").is_none());
/// ```
pub fn get() -> Params {
    match current_run() {
        Some(run) => run.annotations.params(),
        None => process_params(),
    }
}

/// Removes every parameter of the current run (outside a run: the
/// process-wide ones). Spans already started keep what they recorded.
///
/// ```
/// flowtrace::params::register("k", 1).unwrap();
/// flowtrace::params::clear();
/// assert!(flowtrace::params::get().is_empty());
/// ```
pub fn clear() {
    match current_run() {
        Some(run) => run.annotations.update(Params::clear),
        None => PROCESS.write().unwrap_or_else(|e| e.into_inner()).clear(),
    }
}

macro_rules! helper {
    ($(#[$doc:meta])* $name:ident, $key:ident, $ty:ty) => {
        $(#[$doc])*
        pub fn $name(value: $ty) -> Result<(), ParamError> {
            register($key, value)
        }
    };
}

helper!(
    /// Registers `chunk_size` (characters or tokens per chunk).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// flowtrace::with_runcontext().run(async { flowtrace::params::chunk_size(512) }).await;
    /// # }
    /// ```
    chunk_size, CHUNK_SIZE, u64
);
helper!(
    /// Registers `chunk_overlap`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let run = flowtrace::with_runcontext()
    ///     .run(async { flowtrace::params::chunk_overlap(64).map(|()| flowtrace::params::get()) })
    ///     .await;
    /// assert_eq!(run.output().as_ref().unwrap()["chunk_overlap"], 64);
    /// # }
    /// ```
    chunk_overlap, CHUNK_OVERLAP, u64
);
helper!(
    /// Registers `top_k` (chunks retrieved).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let run = flowtrace::with_runcontext()
    ///     .run(async { flowtrace::params::top_k(5).map(|()| flowtrace::params::get()) })
    ///     .await;
    /// assert_eq!(run.output().as_ref().unwrap()["top_k"], 5);
    /// # }
    /// ```
    top_k, TOP_K, u64
);
helper!(
    /// Registers `model` (the generation model).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let run = flowtrace::with_runcontext()
    ///     .run(async { flowtrace::params::model("gpt-4o-mini").map(|()| flowtrace::params::get()) })
    ///     .await;
    /// assert_eq!(run.output().as_ref().unwrap()["model"], "gpt-4o-mini");
    /// # }
    /// ```
    model, MODEL, &str
);
helper!(
    /// Registers `temperature`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let run = flowtrace::with_runcontext()
    ///     .run(async { flowtrace::params::temperature(0.2).map(|()| flowtrace::params::get()) })
    ///     .await;
    /// assert_eq!(run.output().as_ref().unwrap()["temperature"], 0.2);
    /// # }
    /// ```
    temperature, TEMPERATURE, f64
);
helper!(
    /// Registers `top_p`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let run = flowtrace::with_runcontext()
    ///     .run(async { flowtrace::params::top_p(0.9).map(|()| flowtrace::params::get()) })
    ///     .await;
    /// assert_eq!(run.output().as_ref().unwrap()["top_p"], 0.9);
    /// # }
    /// ```
    top_p, TOP_P, f64
);
helper!(
    /// Registers `embedding_model`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let run = flowtrace::with_runcontext()
    ///     .run(async {
    ///         flowtrace::params::embedding_model("text-embedding-3-small").map(|()| flowtrace::params::get())
    ///     })
    ///     .await;
    /// assert_eq!(run.output().as_ref().unwrap()["embedding_model"], "text-embedding-3-small");
    /// # }
    /// ```
    embedding_model, EMBEDDING_MODEL, &str
);

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
