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

use std::sync::Arc;

use opentelemetry::Context;
use opentelemetry::trace::TraceContextExt as _;
use serde::Serialize;
use serde_json::Value as Json;

use crate::frame::current;
use crate::run_state::RunInfo;
use crate::run_state::params::{self as store, attributes, insert_all, to_pairs};

pub use crate::run_state::params::{MAX_KEY_BYTES, MAX_PARAMS, ParamError, Params};

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

/// The run the caller runs in.
fn current_run() -> Option<Arc<RunInfo>> {
    current::with(|frame| frame.and_then(|f| f.inner.run.clone()))
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
            run.annotations
                .params
                .update(|params| insert_all(params, pairs))?;
            // The registering task's own span records them too.
            Context::map_current(|cx| {
                let span = cx.span();
                if span.is_recording() {
                    span.set_attributes(recorded);
                }
            });
            Ok(())
        }
        None => store::update_process(|process| insert_all(process, pairs)),
    }
}

/// Sets process-wide parameters (telemetry init): as [`register_all`]
/// outside a run.
pub(crate) fn register_process<I>(pairs: I) -> Result<(), ParamError>
where
    I: IntoIterator<Item = (String, Json)>,
{
    let pairs = to_pairs(pairs)?;
    store::update_process(|process| insert_all(process, pairs))
}

/// The current run's parameters (outside a run: the process-wide ones).
///
/// ```
/// assert!(flowtrace::params::get().get("no such key").is_none());
/// ```
pub fn get() -> Params {
    match current_run() {
        Some(run) => run.annotations.params.params(),
        None => store::process_params(),
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
        Some(run) => run.annotations.params.update(Params::clear),
        None => store::update_process(Params::clear),
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
