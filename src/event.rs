//! Typed pipeline events for RAG and LLM workflows: one Rust type per step
//! (chunking, embedding, query rewrite, retrieval, reranking, tool call,
//! query/generation, custom), recorded on a span as attributes any
//! OpenTelemetry backend shows.
//!
//! [`span`] records an event on the current span (inside a `#[traced]` task,
//! the task's span): its attributes, plus a span event named
//! `flowtrace.rag.<kind>` with a short summary (what the console tree
//! prints). [`trace`] records the one trace-level event — the run's input,
//! output and metadata — on the run's root span.
//!
//! Where the OpenTelemetry GenAI semantic conventions define an attribute it
//! is used (`gen_ai.operation.name`, `gen_ai.request.model`,
//! `gen_ai.input.messages`, `gen_ai.tool.*`, `gen_ai.retrieval.*`, …); the
//! rest is under `flowtrace.rag.*`. The README's "RAG and LLM pipelines"
//! section has the full table. Each event also gives its span the step's
//! OpenInference kind and attributes (`retrieval.documents.*`, `llm.*`,
//! `input.value`, …) and its GenAI operation: see [`crate::openinference`]
//! and the README's "LLM-observability backends" table. Values go through
//! the capture settings of
//! [`crate::capture`] (redaction of secret-looking keys, a size cap per
//! value); lists and objects are JSON text. Nothing is built for a span that
//! does not record.
//!
//! ```
//! use flowtrace::event::{self, Retrieval, RetrievedChunk};
//!
//! #[flowtrace::traced]
//! async fn retrieve(query: String) -> Vec<RetrievedChunk> {
//!     let retrieved = vec![RetrievedChunk::new("doc-1#0", "Rust is a language.", 0.92)];
//!     event::span(Retrieval {
//!         query,
//!         retrieved: retrieved.clone(),
//!         ..Default::default()
//!     });
//!     retrieved
//! }
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! # retrieve("what is rust?".into()).await;
//! # }
//! ```
//!
//! One event per span: a second event of the same kind on the same span
//! replaces the first one's attributes (the span events stay, one each).

use std::fmt;

use opentelemetry::KeyValue;
use opentelemetry::trace::TraceContextExt as _;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use crate::attributes::{
    INPUT_MIME_TYPE, INPUT_VALUE, OUTPUT_MIME_TYPE, OUTPUT_VALUE, TRACE_INPUT, TRACE_METADATA,
    TRACE_OUTPUT,
};
use crate::capture::{self, Captured};
use crate::openinference::{self, SpanKind};

mod attributes;
mod types;

pub use types::{
    Agent, Chunk, Chunking, Custom, Document, Embedding, Query, QueryRewrite, Rerank, Retrieval,
    RetrievedChunk, ToolCall, Usage,
};

/// One pipeline event; every event type converts into it.
///
/// ```
/// use flowtrace::event::{Custom, Event};
///
/// let event: Event = Custom { name: "dedupe".into(), data: serde_json::json!({}) }.into();
/// assert_eq!(serde_json::to_value(&event).unwrap()["kind"], "custom");
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum Event {
    Chunking(Chunking),
    Embedding(Embedding),
    QueryRewrite(QueryRewrite),
    Retrieval(Retrieval),
    Rerank(Rerank),
    ToolCall(ToolCall),
    Query(Query),
    Agent(Agent),
    Custom(Custom),
}

macro_rules! into_event {
    ($($ty:ident),*) => {$(
        impl From<$ty> for Event {
            fn from(event: $ty) -> Self {
                Event::$ty(event)
            }
        }
    )*};
}
into_event!(
    Chunking,
    Embedding,
    QueryRewrite,
    Retrieval,
    Rerank,
    ToolCall,
    Query,
    Agent,
    Custom
);

impl Event {
    /// The kind: `chunking`, `embedding`, `query_rewrite`, `retrieval`,
    /// `rerank`, `tool_call`, `query`, `agent`, `custom`
    /// (`flowtrace.rag.event`).
    ///
    /// ```
    /// use flowtrace::event::{Event, QueryRewrite};
    /// assert_eq!(Event::from(QueryRewrite::default()).kind(), "query_rewrite");
    /// ```
    pub fn kind(&self) -> &'static str {
        match self {
            Event::Chunking(_) => "chunking",
            Event::Embedding(_) => "embedding",
            Event::QueryRewrite(_) => "query_rewrite",
            Event::Retrieval(_) => "retrieval",
            Event::Rerank(_) => "rerank",
            Event::ToolCall(_) => "tool_call",
            Event::Query(_) => "query",
            Event::Agent(_) => "agent",
            Event::Custom(_) => "custom",
        }
    }

    /// The OpenInference kind of the step.
    ///
    /// ```
    /// use flowtrace::event::{Event, Retrieval};
    /// use flowtrace::openinference::SpanKind;
    /// assert_eq!(Event::from(Retrieval::default()).span_kind(), SpanKind::Retriever);
    /// ```
    pub fn span_kind(&self) -> SpanKind {
        match self {
            Event::Chunking(_) | Event::QueryRewrite(_) | Event::Custom(_) => SpanKind::Chain,
            Event::Embedding(_) => SpanKind::Embedding,
            Event::Retrieval(_) => SpanKind::Retriever,
            Event::Rerank(_) => SpanKind::Reranker,
            Event::ToolCall(_) => SpanKind::Tool,
            Event::Query(_) => SpanKind::Llm,
            Event::Agent(_) => SpanKind::Agent,
        }
    }

    /// The GenAI operation (`gen_ai.operation.name`): a well-known value
    /// where the conventions have one, `chunk`, `rewrite_query` and `rerank`
    /// (custom values) where they have none; `None` for [`Custom`].
    ///
    /// ```
    /// use flowtrace::event::{Custom, Event, Query};
    /// assert_eq!(Event::from(Query::default()).operation(), Some("chat"));
    /// assert_eq!(Event::from(Custom::default()).operation(), None);
    /// ```
    pub fn operation(&self) -> Option<&'static str> {
        match self {
            Event::Chunking(_) => Some("chunk"),
            Event::Embedding(_) => Some("embeddings"),
            Event::QueryRewrite(_) => Some("rewrite_query"),
            Event::Retrieval(_) => Some("retrieval"),
            Event::Rerank(_) => Some("rerank"),
            Event::ToolCall(_) => Some("execute_tool"),
            Event::Query(_) => Some("chat"),
            Event::Agent(_) => Some("invoke_agent"),
            Event::Custom(_) => None,
        }
    }
}

/// Records `event` on the current span (inside a `#[traced]` task, the
/// task's span): its attributes and a `flowtrace.rag.<kind>` span event with
/// a summary. Does nothing when the span does not record.
///
/// ```
/// use flowtrace::event::{self, Query};
///
/// #[flowtrace::traced]
/// async fn generate(query: String) -> String {
///     let response = format!("answer to {query}");
///     event::span(Query {
///         query,
///         response: response.clone(),
///         system_prompt: Some("Answer from the context only.".into()),
///         model: Some("stand-in-llm".into()),
///         ..Default::default()
///     });
///     response
/// }
/// # #[tokio::main(flavor = "current_thread")] async fn main() { generate("q".into()).await; }
/// ```
pub fn span(event: impl Into<Event>) {
    let cx = opentelemetry::Context::current();
    let span = cx.span();
    if !span.is_recording() {
        return;
    }
    let event = event.into();
    let (attributes, summary) = event.attributes();
    span.set_attributes(attributes);
    span.add_event(format!("flowtrace.rag.{}", event.kind()), summary);
}

/// Why [`trace`] did not record.
///
/// ```
/// use std::collections::HashMap;
///
/// // JSON object keys are strings: a map keyed by tuples is refused.
/// let metadata = HashMap::from([((1, 2), "pair")]);
/// let err = flowtrace::event::trace("q", "a", metadata).unwrap_err();
/// assert!(err.to_string().contains("metadata"), "{err}");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventError {
    what: &'static str,
    reason: String,
}

impl fmt::Display for EventError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the trace event's {} is not representable as JSON ({}); accepted values \
             serialize to JSON with string map keys",
            self.what, self.reason
        )
    }
}

impl std::error::Error for EventError {}

fn to_json(what: &'static str, value: &impl Serialize) -> Result<Json, EventError> {
    serde_json::to_value(value).map_err(|e| EventError {
        what,
        reason: e.to_string(),
    })
}

/// Records the run's single trace-level event — its input, output and
/// metadata — on the run's root span (`flowtrace.trace.input`, `.output`,
/// `.metadata`, and the input and output as OpenInference `input.value` /
/// `output.value`), set when the run ends; a later call replaces an earlier
/// one. Outside a run, and in a run that continues a remote parent (which
/// has no root span of its own), it goes on the current span — the calling
/// task's — at once.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), flowtrace::event::EventError> {
/// use serde_json::json;
///
/// let run = flowtrace::with_runcontext()
///     .run(async {
///         let answer = "Rust is a systems language.";
///         flowtrace::event::trace("what is rust?", answer, json!({"user": "u-17"}))?;
///         Ok::<_, flowtrace::event::EventError>(answer)
///     })
///     .await;
/// run.into_output()?;
/// # Ok(()) }
/// ```
pub fn trace(
    input: impl Serialize,
    output: impl Serialize,
    metadata: impl Serialize,
) -> Result<(), EventError> {
    let values = [
        (TRACE_INPUT, to_json("input", &input)?),
        (TRACE_OUTPUT, to_json("output", &output)?),
        (TRACE_METADATA, to_json("metadata", &metadata)?),
    ];
    let config = capture::config();
    let mut attributes: Vec<KeyValue> = Vec::with_capacity(7);
    for (key, mime, value) in [
        (INPUT_VALUE, INPUT_MIME_TYPE, &values[0].1),
        (OUTPUT_VALUE, OUTPUT_MIME_TYPE, &values[1].1),
    ] {
        if !value.is_null() {
            attributes.extend(openinference::value_attributes(key, mime, value, &config));
        }
    }
    attributes.extend(
        values
            .into_iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| capture::attribute(k.to_owned(), Captured::Json(v), &[], &config)),
    );
    let run = crate::frame::current::with(|frame| frame.and_then(|f| f.inner.run.clone()));
    match run {
        Some(run) if run.annotations.has_root() => run.annotations.set_trace_event(attributes),
        // Outside a run, or in a run continuing a remote parent (no root
        // span of its own): the current span, at once.
        _ => opentelemetry::Context::map_current(|cx| cx.span().set_attributes(attributes)),
    }
    Ok(())
}
