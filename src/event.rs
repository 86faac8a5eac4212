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
//! section has the full table. Values go through the capture settings of
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
use serde_json::{Map, Value as Json, json};

use crate::capture::{self, CaptureConfig, Captured};

/// `flowtrace.rag.event`: the kind of event a span recorded.
pub const RAG_EVENT: &str = "flowtrace.rag.event";
/// `gen_ai.operation.name`.
pub const GEN_AI_OPERATION_NAME: &str = "gen_ai.operation.name";
/// `flowtrace.trace.input`: the run's input ([`trace`]).
pub const TRACE_INPUT: &str = "flowtrace.trace.input";
/// `flowtrace.trace.output`: the run's output ([`trace`]).
pub const TRACE_OUTPUT: &str = "flowtrace.trace.output";
/// `flowtrace.trace.metadata`: metadata of the run ([`trace`]).
pub const TRACE_METADATA: &str = "flowtrace.trace.metadata";

/// A source document, before chunking.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Document {
    /// Its id (a path, a URL, a database key).
    pub id: String,
    /// Its text.
    pub text: String,
    /// Anything else (source, page, author).
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub metadata: Map<String, Json>,
}

impl Document {
    /// A document without metadata.
    pub fn new(id: impl Into<String>, text: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            text: text.into(),
            metadata: Map::new(),
        }
    }
}

/// A piece of a document.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Chunk {
    /// Its id (e.g. `doc-1#0`).
    pub id: String,
    /// Its text.
    pub text: String,
    /// Anything else (offsets, headings).
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub metadata: Map<String, Json>,
}

impl Chunk {
    /// A chunk without metadata.
    pub fn new(id: impl Into<String>, text: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            text: text.into(),
            metadata: Map::new(),
        }
    }
}

/// A chunk a retriever or reranker returned, with its score.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RetrievedChunk {
    /// The chunk's id.
    pub id: String,
    /// Its text.
    pub text: String,
    /// The relevance score.
    pub score: f64,
    /// Anything else.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub metadata: Map<String, Json>,
}

impl RetrievedChunk {
    /// A retrieved chunk without metadata.
    pub fn new(id: impl Into<String>, text: impl Into<String>, score: f64) -> Self {
        Self {
            id: id.into(),
            text: text.into(),
            score,
            metadata: Map::new(),
        }
    }
}

/// A document split into chunks.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Chunking {
    /// The document.
    pub document: Document,
    /// The chunks it became.
    pub chunks: Vec<Chunk>,
}

/// Texts embedded by a model.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Embedding {
    /// The embedding model.
    pub model: String,
    /// The texts embedded (the vectors are not recorded: only their size).
    pub inputs: Vec<String>,
    /// The vectors' dimension.
    pub dimensions: usize,
}

/// A query rewritten before retrieval.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct QueryRewrite {
    /// The user's query.
    pub query: String,
    /// What it became.
    pub rewritten: String,
}

/// Chunks retrieved for a query.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Retrieval {
    /// The query sent to the retriever.
    pub query: String,
    /// What came back, best first.
    pub retrieved: Vec<RetrievedChunk>,
    /// The index or collection searched (`gen_ai.data_source.id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_source: Option<String>,
}

/// Retrieved chunks reordered by a reranker.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Rerank {
    /// The query.
    pub query: String,
    /// The reranking model, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// The chunks given to the reranker.
    pub input: Vec<RetrievedChunk>,
    /// The chunks it kept, in its order, with its scores.
    pub output: Vec<RetrievedChunk>,
}

/// A tool the model called.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    /// The tool's name.
    pub name: String,
    /// The call's id, as the model gave it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_id: Option<String>,
    /// The arguments.
    pub arguments: Json,
    /// What the tool returned.
    pub result: Json,
}

/// A generation: the query (prompt), the model's response, and the system
/// prompt.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Query {
    /// The user's query or the rendered prompt.
    pub query: String,
    /// The model's response.
    pub response: String,
    /// The system prompt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_prompt: Option<String>,
    /// The model (`gen_ai.request.model`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
}

/// Any other step: a name and JSON data.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Custom {
    /// What the step is.
    pub name: String,
    /// Its data.
    pub data: Json,
}

/// One pipeline event; every event type converts into it.
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
    Custom
);

impl Event {
    /// The kind: `chunking`, `embedding`, `query_rewrite`, `retrieval`,
    /// `rerank`, `tool_call`, `query`, `custom` (`flowtrace.rag.event`).
    pub fn kind(&self) -> &'static str {
        match self {
            Event::Chunking(_) => "chunking",
            Event::Embedding(_) => "embedding",
            Event::QueryRewrite(_) => "query_rewrite",
            Event::Retrieval(_) => "retrieval",
            Event::Rerank(_) => "rerank",
            Event::ToolCall(_) => "tool_call",
            Event::Query(_) => "query",
            Event::Custom(_) => "custom",
        }
    }

    /// The span attributes and the summary attributes of the span event.
    pub fn attributes(&self) -> (Vec<KeyValue>, Vec<KeyValue>) {
        let config = capture::config();
        let mut out = Attributes {
            config: &config,
            span: vec![KeyValue::new(RAG_EVENT, self.kind())],
            summary: Vec::new(),
        };
        match self {
            Event::Chunking(e) => {
                out.text("flowtrace.rag.document.id", &e.document.id, true);
                out.json("flowtrace.rag.document", json!(e.document), false);
                out.json("flowtrace.rag.chunks", json!(e.chunks), false);
                out.count("flowtrace.rag.chunk.count", e.chunks.len());
            }
            Event::Embedding(e) => {
                out.text(GEN_AI_OPERATION_NAME, "embeddings", false);
                out.text("gen_ai.request.model", &e.model, true);
                out.count("gen_ai.embeddings.dimension.count", e.dimensions);
                out.json("flowtrace.rag.embedding.inputs", json!(e.inputs), false);
                out.count("flowtrace.rag.embedding.count", e.inputs.len());
            }
            Event::QueryRewrite(e) => {
                out.text("flowtrace.rag.query", &e.query, true);
                out.text("flowtrace.rag.rewritten_query", &e.rewritten, true);
            }
            Event::Retrieval(e) => {
                out.text(GEN_AI_OPERATION_NAME, "retrieval", false);
                out.text("gen_ai.retrieval.query.text", &e.query, true);
                out.json("gen_ai.retrieval.documents", documents(&e.retrieved), false);
                if let Some(source) = &e.data_source {
                    out.text("gen_ai.data_source.id", source, true);
                }
                out.count("flowtrace.rag.retrieved.count", e.retrieved.len());
            }
            Event::Rerank(e) => {
                out.text("flowtrace.rag.query", &e.query, false);
                if let Some(model) = &e.model {
                    out.text("flowtrace.rag.rerank.model", model, true);
                }
                out.json("flowtrace.rag.rerank.input", documents(&e.input), false);
                out.json("flowtrace.rag.rerank.output", documents(&e.output), false);
                out.count("flowtrace.rag.rerank.input.count", e.input.len());
                out.count("flowtrace.rag.rerank.output.count", e.output.len());
            }
            Event::ToolCall(e) => {
                out.text(GEN_AI_OPERATION_NAME, "execute_tool", false);
                out.text("gen_ai.tool.name", &e.name, true);
                out.text("gen_ai.tool.type", "function", false);
                if let Some(id) = &e.call_id {
                    out.text("gen_ai.tool.call.id", id, false);
                }
                out.json("gen_ai.tool.call.arguments", e.arguments.clone(), true);
                out.json("gen_ai.tool.call.result", e.result.clone(), true);
            }
            Event::Query(e) => {
                out.text(GEN_AI_OPERATION_NAME, "chat", false);
                if let Some(model) = &e.model {
                    out.text("gen_ai.request.model", model, true);
                }
                if let Some(system) = &e.system_prompt {
                    out.json(
                        "gen_ai.system_instructions",
                        json!([{"type": "text", "content": system}]),
                        false,
                    );
                }
                out.json(
                    "gen_ai.input.messages",
                    json!([{"role": "user", "parts": [{"type": "text", "content": e.query}]}]),
                    false,
                );
                out.json(
                    "gen_ai.output.messages",
                    json!([{
                        "role": "assistant",
                        "parts": [{"type": "text", "content": e.response}],
                        "finish_reason": "stop",
                    }]),
                    false,
                );
                out.text("flowtrace.rag.query", &e.query, true);
                out.text("flowtrace.rag.response", &e.response, true);
            }
            Event::Custom(e) => {
                out.text("flowtrace.rag.custom.name", &e.name, true);
                out.json("flowtrace.rag.custom.data", e.data.clone(), true);
            }
        }
        (out.span, out.summary)
    }
}

/// The GenAI retrieval documents schema: `id`, `score`, plus `content` and
/// `metadata`.
fn documents(chunks: &[RetrievedChunk]) -> Json {
    Json::Array(
        chunks
            .iter()
            .map(|c| {
                let mut doc = json!({"id": c.id, "score": c.score, "content": c.text});
                if !c.metadata.is_empty() {
                    doc["metadata"] = Json::Object(c.metadata.clone());
                }
                doc
            })
            .collect(),
    )
}

/// Builds an event's attributes through the capture settings.
struct Attributes<'a> {
    config: &'a CaptureConfig,
    span: Vec<KeyValue>,
    summary: Vec<KeyValue>,
}

impl Attributes<'_> {
    fn json(&mut self, key: &'static str, value: Json, in_summary: bool) {
        let kv = capture::attribute(key.to_owned(), Captured::Json(value), &[], self.config);
        if in_summary {
            self.summary.push(short(&kv));
        }
        self.span.push(kv);
    }

    fn text(&mut self, key: &'static str, value: &str, in_summary: bool) {
        self.json(key, Json::String(value.to_owned()), in_summary);
    }

    fn count(&mut self, key: &'static str, n: usize) {
        let kv = KeyValue::new(key, i64::try_from(n).unwrap_or(i64::MAX));
        self.summary.push(short(&kv));
        self.span.push(kv);
    }
}

/// The summary copy of an attribute: its last two key segments, strings cut
/// to 80 bytes (the span attribute keeps the whole value).
fn short(kv: &KeyValue) -> KeyValue {
    let key = kv.key.as_str();
    let mut parts = key.rsplitn(3, '.');
    let last = parts.next().unwrap_or(key);
    let key = match parts.next() {
        Some(before) if !matches!(before, "rag" | "gen_ai") => format!("{before}.{last}"),
        _ => last.to_owned(),
    };
    let value = match &kv.value {
        opentelemetry::Value::String(s) if s.as_str().len() > 80 => {
            let mut cut = 80;
            while !s.as_str().is_char_boundary(cut) {
                cut -= 1;
            }
            opentelemetry::Value::from(format!("{}…", &s.as_str()[..cut]))
        }
        other => other.clone(),
    };
    KeyValue::new(key, value)
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
/// `.metadata`), set when the run ends; a later call replaces an earlier
/// one. Outside a run, it goes on the current span at once. (A run that
/// continues a remote parent has no root span of its own; its event is then
/// not recorded.)
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
    let attributes: Vec<KeyValue> = values
        .into_iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| capture::attribute(k.to_owned(), Captured::Json(v), &[], &config))
        .collect();
    let run = crate::current::with(|frame| frame.and_then(|f| f.inner.run.clone()));
    match run {
        Some(run) => run.annotations.set_trace_event(attributes),
        None => opentelemetry::Context::map_current(|cx| cx.span().set_attributes(attributes)),
    }
    Ok(())
}
