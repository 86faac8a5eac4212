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
use serde_json::{Map, Value as Json, json};

use crate::capture::{self, CaptureConfig, Captured};
use crate::openinference::{self, SpanKind};
use opentelemetry::StringValue;

use crate::attributes::{
    AGENT_NAME, EMBEDDING_EMBEDDINGS, EMBEDDING_INVOCATION_PARAMETERS, EMBEDDING_MODEL_NAME,
    GEN_AI_AGENT_DESCRIPTION, GEN_AI_AGENT_NAME, GEN_AI_DATA_SOURCE_ID,
    GEN_AI_EMBEDDINGS_DIMENSION_COUNT, GEN_AI_INPUT_MESSAGES, GEN_AI_OPERATION_NAME,
    GEN_AI_OUTPUT_MESSAGES, GEN_AI_PROVIDER_NAME, GEN_AI_REQUEST_MAX_TOKENS, GEN_AI_REQUEST_MODEL,
    GEN_AI_REQUEST_SEED, GEN_AI_REQUEST_TEMPERATURE, GEN_AI_REQUEST_TOP_P,
    GEN_AI_RESPONSE_FINISH_REASONS, GEN_AI_RETRIEVAL_DOCUMENTS, GEN_AI_RETRIEVAL_QUERY_TEXT,
    GEN_AI_SYSTEM_INSTRUCTIONS, GEN_AI_TOOL_CALL_ARGUMENTS, GEN_AI_TOOL_CALL_ID,
    GEN_AI_TOOL_CALL_RESULT, GEN_AI_TOOL_NAME, GEN_AI_TOOL_TYPE, GEN_AI_USAGE_INPUT_TOKENS,
    GEN_AI_USAGE_OUTPUT_TOKENS, INPUT_MIME_TYPE, INPUT_VALUE, LLM_INPUT_MESSAGES,
    LLM_INVOCATION_PARAMETERS, LLM_MODEL_NAME, LLM_OUTPUT_MESSAGES, LLM_PROVIDER,
    LLM_TOKEN_COUNT_COMPLETION, LLM_TOKEN_COUNT_PROMPT, LLM_TOKEN_COUNT_TOTAL, OUTPUT_MIME_TYPE,
    OUTPUT_VALUE, RAG_CHUNK_COUNT, RAG_CHUNKS, RAG_CUSTOM_DATA, RAG_CUSTOM_NAME, RAG_DOCUMENT,
    RAG_DOCUMENT_ID, RAG_EMBEDDING_COUNT, RAG_EMBEDDING_INPUTS, RAG_EVENT, RAG_QUERY,
    RAG_RERANK_INPUT, RAG_RERANK_INPUT_COUNT, RAG_RERANK_MODEL, RAG_RERANK_OUTPUT,
    RAG_RERANK_OUTPUT_COUNT, RAG_RESPONSE, RAG_RETRIEVED_COUNT, RAG_REWRITTEN_QUERY,
    RERANKER_INPUT_DOCUMENTS, RERANKER_MODEL_NAME, RERANKER_OUTPUT_DOCUMENTS, RERANKER_QUERY,
    RERANKER_TOP_K, RETRIEVAL_DOCUMENTS, TOOL_ID, TOOL_NAME, TRACE_INPUT, TRACE_METADATA,
    TRACE_OUTPUT,
};

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

/// Tokens a model call used (`gen_ai.usage.*`, `llm.token_count.*`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Tokens in the input (prompt).
    pub input_tokens: u64,
    /// Tokens in the output (completion).
    pub output_tokens: u64,
}

impl Usage {
    /// Input and output token counts.
    pub fn new(input_tokens: u64, output_tokens: u64) -> Self {
        Self {
            input_tokens,
            output_tokens,
        }
    }
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
    /// Who serves the model (`llm.provider`, `gen_ai.provider.name`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// The tokens embedded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
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
    /// Who serves the model (`llm.provider`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
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
    /// Who serves the model (`llm.provider`, `gen_ai.provider.name`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// The tokens the call used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    /// The model settings sent (`llm.invocation_parameters`); when empty,
    /// the run's generation parameters (`temperature`, `top_p`,
    /// `max_tokens`, `seed`, `frequency_penalty`, `presence_penalty`,
    /// `stop`) are recorded.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub parameters: Map<String, Json>,
}

/// Declares the current task or run an agent: OpenInference `AGENT`, GenAI
/// `invoke_agent`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Agent {
    /// The agent's name (`gen_ai.agent.name`, `agent.name`).
    pub name: String,
    /// What it does (`gen_ai.agent.description`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
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

    /// The span attributes and the summary attributes of the span event.
    pub fn attributes(&self) -> (Vec<KeyValue>, Vec<KeyValue>) {
        let config = capture::config();
        let mut out = Attributes {
            config: &config,
            span: vec![KeyValue::new(RAG_EVENT, self.kind())],
            summary: Vec::new(),
        };
        out.raw(self.span_kind().attribute());
        if let Some(operation) = self.operation() {
            out.text(GEN_AI_OPERATION_NAME, operation, false);
        }
        match self {
            Event::Chunking(e) => {
                out.text(RAG_DOCUMENT_ID, &e.document.id, true);
                out.json(RAG_DOCUMENT, json!(e.document), false);
                out.json(RAG_CHUNKS, json!(e.chunks), false);
                out.count(RAG_CHUNK_COUNT, e.chunks.len());
                out.input(&Json::String(e.document.text.clone()));
                let texts: Vec<&str> = e.chunks.iter().map(|c| c.text.as_str()).collect();
                out.output(&json!(texts));
            }
            Event::Embedding(e) => {
                out.text(GEN_AI_REQUEST_MODEL, &e.model, true);
                out.count(GEN_AI_EMBEDDINGS_DIMENSION_COUNT, e.dimensions);
                out.json(RAG_EMBEDDING_INPUTS, json!(e.inputs), false);
                out.count(RAG_EMBEDDING_COUNT, e.inputs.len());
                out.text(EMBEDDING_MODEL_NAME, &e.model, false);
                out.model(Some(&e.model), e.provider.as_deref());
                for (i, text) in e.inputs.iter().enumerate() {
                    out.text(
                        format!("{EMBEDDING_EMBEDDINGS}.{i}.embedding.text"),
                        text,
                        false,
                    );
                }
                let parameters = json!({"model": e.model, "dimensions": e.dimensions});
                out.json(EMBEDDING_INVOCATION_PARAMETERS, parameters.clone(), false);
                out.json(LLM_INVOCATION_PARAMETERS, parameters, false);
                if let Some(usage) = e.usage {
                    out.usage(usage);
                }
            }
            Event::QueryRewrite(e) => {
                out.text(RAG_QUERY, &e.query, true);
                out.text(RAG_REWRITTEN_QUERY, &e.rewritten, true);
                out.input(&Json::String(e.query.clone()));
                out.output(&Json::String(e.rewritten.clone()));
            }
            Event::Retrieval(e) => {
                out.text(GEN_AI_RETRIEVAL_QUERY_TEXT, &e.query, true);
                out.json(GEN_AI_RETRIEVAL_DOCUMENTS, documents(&e.retrieved), false);
                if let Some(source) = &e.data_source {
                    out.text(GEN_AI_DATA_SOURCE_ID, source, true);
                }
                out.count(RAG_RETRIEVED_COUNT, e.retrieved.len());
                out.input(&Json::String(e.query.clone()));
                out.documents(RETRIEVAL_DOCUMENTS, &e.retrieved);
            }
            Event::Rerank(e) => {
                out.text(RAG_QUERY, &e.query, false);
                if let Some(model) = &e.model {
                    out.text(RAG_RERANK_MODEL, model, true);
                }
                out.json(RAG_RERANK_INPUT, documents(&e.input), false);
                out.json(RAG_RERANK_OUTPUT, documents(&e.output), false);
                out.count(RAG_RERANK_INPUT_COUNT, e.input.len());
                out.count(RAG_RERANK_OUTPUT_COUNT, e.output.len());
                out.text(RERANKER_QUERY, &e.query, false);
                if let Some(model) = &e.model {
                    out.text(RERANKER_MODEL_NAME, model, false);
                }
                let top_k = i64::try_from(e.output.len()).unwrap_or(i64::MAX);
                out.raw(KeyValue::new(RERANKER_TOP_K, top_k));
                out.documents(RERANKER_INPUT_DOCUMENTS, &e.input);
                out.documents(RERANKER_OUTPUT_DOCUMENTS, &e.output);
                out.model(e.model.as_deref(), e.provider.as_deref());
                let mut parameters = json!({"top_k": top_k});
                if let Some(model) = &e.model {
                    parameters["model"] = json!(model);
                }
                out.json(LLM_INVOCATION_PARAMETERS, parameters, false);
                out.input(&Json::String(e.query.clone()));
            }
            Event::ToolCall(e) => {
                out.text(GEN_AI_TOOL_NAME, &e.name, true);
                out.text(GEN_AI_TOOL_TYPE, "function", false);
                if let Some(id) = &e.call_id {
                    out.text(GEN_AI_TOOL_CALL_ID, id, false);
                }
                out.json(GEN_AI_TOOL_CALL_ARGUMENTS, e.arguments.clone(), true);
                out.json(GEN_AI_TOOL_CALL_RESULT, e.result.clone(), true);
                out.text(TOOL_NAME, &e.name, false);
                if let Some(id) = &e.call_id {
                    out.text(TOOL_ID, id, false);
                }
                out.input(&e.arguments);
                out.output(&e.result);
            }
            Event::Query(e) => {
                if let Some(model) = &e.model {
                    out.text(GEN_AI_REQUEST_MODEL, model, true);
                }
                if let Some(system) = &e.system_prompt {
                    out.json(
                        GEN_AI_SYSTEM_INSTRUCTIONS,
                        json!([{"type": "text", "content": system}]),
                        false,
                    );
                }
                out.json(
                    GEN_AI_INPUT_MESSAGES,
                    json!([{"role": "user", "parts": [{"type": "text", "content": e.query}]}]),
                    false,
                );
                out.json(
                    GEN_AI_OUTPUT_MESSAGES,
                    json!([{
                        "role": "assistant",
                        "parts": [{"type": "text", "content": e.response}],
                        "finish_reason": "stop",
                    }]),
                    false,
                );
                out.text(RAG_QUERY, &e.query, true);
                out.text(RAG_RESPONSE, &e.response, true);
                out.model(e.model.as_deref(), e.provider.as_deref());
                let mut messages = 0;
                if let Some(system) = &e.system_prompt {
                    out.message(LLM_INPUT_MESSAGES, messages, "system", system);
                    messages += 1;
                }
                out.message(LLM_INPUT_MESSAGES, messages, "user", &e.query);
                out.message(LLM_OUTPUT_MESSAGES, 0, "assistant", &e.response);
                out.raw(KeyValue::new(
                    GEN_AI_RESPONSE_FINISH_REASONS,
                    opentelemetry::Value::Array(vec![StringValue::from("stop")].into()),
                ));
                out.generation_parameters(e);
                if let Some(usage) = e.usage {
                    out.usage(usage);
                }
                out.input(&Json::String(e.query.clone()));
                out.output(&Json::String(e.response.clone()));
            }
            Event::Agent(e) => {
                out.text(GEN_AI_AGENT_NAME, &e.name, true);
                out.text(AGENT_NAME, &e.name, false);
                if let Some(description) = &e.description {
                    out.text(GEN_AI_AGENT_DESCRIPTION, description, false);
                }
            }
            Event::Custom(e) => {
                out.text(RAG_CUSTOM_NAME, &e.name, true);
                out.json(RAG_CUSTOM_DATA, e.data.clone(), true);
            }
        }
        (out.span, out.summary)
    }
}

/// The run parameters a generation records as its settings when the event
/// gives none.
const GENERATION_PARAMETERS: [&str; 7] = [
    "temperature",
    "top_p",
    "max_tokens",
    "seed",
    "frequency_penalty",
    "presence_penalty",
    "stop",
];

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
    fn json(&mut self, key: impl Into<String>, value: Json, in_summary: bool) {
        let kv = capture::attribute(key.into(), Captured::Json(value), &[], self.config);
        if in_summary {
            self.summary.push(short(&kv));
        }
        self.span.push(kv);
    }

    fn text(&mut self, key: impl Into<String>, value: &str, in_summary: bool) {
        self.json(key, Json::String(value.to_owned()), in_summary);
    }

    /// An attribute that is not content (no capture settings apply).
    fn raw(&mut self, kv: KeyValue) {
        self.span.push(kv);
    }

    fn input(&mut self, value: &Json) {
        let kvs = openinference::value_attributes(INPUT_VALUE, INPUT_MIME_TYPE, value, self.config);
        self.span.extend(kvs);
    }

    fn output(&mut self, value: &Json) {
        let kvs =
            openinference::value_attributes(OUTPUT_VALUE, OUTPUT_MIME_TYPE, value, self.config);
        self.span.extend(kvs);
    }

    /// OpenInference documents, flattened: `<prefix>.<i>.document.*`.
    fn documents(&mut self, prefix: &str, chunks: &[RetrievedChunk]) {
        for (i, c) in chunks.iter().enumerate() {
            self.raw(KeyValue::new(
                format!("{prefix}.{i}.document.id"),
                c.id.clone(),
            ));
            self.raw(KeyValue::new(
                format!("{prefix}.{i}.document.score"),
                c.score,
            ));
            self.text(format!("{prefix}.{i}.document.content"), &c.text, false);
            if !c.metadata.is_empty() {
                self.json(
                    format!("{prefix}.{i}.document.metadata"),
                    Json::Object(c.metadata.clone()),
                    false,
                );
            }
        }
    }

    /// `llm.model_name`, `llm.provider` and `gen_ai.provider.name`.
    fn model(&mut self, model: Option<&str>, provider: Option<&str>) {
        if let Some(model) = model {
            self.raw(KeyValue::new(LLM_MODEL_NAME, model.to_owned()));
        }
        if let Some(provider) = provider {
            self.raw(KeyValue::new(LLM_PROVIDER, provider.to_owned()));
            self.raw(KeyValue::new(GEN_AI_PROVIDER_NAME, provider.to_owned()));
        }
    }

    /// `<prefix>.<i>.message.role` and `.content`.
    fn message(&mut self, prefix: &str, i: usize, role: &'static str, content: &str) {
        self.raw(KeyValue::new(format!("{prefix}.{i}.message.role"), role));
        self.text(format!("{prefix}.{i}.message.content"), content, false);
    }

    fn usage(&mut self, usage: Usage) {
        let int = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        let (input, output) = (int(usage.input_tokens), int(usage.output_tokens));
        self.raw(KeyValue::new(GEN_AI_USAGE_INPUT_TOKENS, input));
        self.raw(KeyValue::new(GEN_AI_USAGE_OUTPUT_TOKENS, output));
        self.raw(KeyValue::new(LLM_TOKEN_COUNT_PROMPT, input));
        self.raw(KeyValue::new(LLM_TOKEN_COUNT_COMPLETION, output));
        self.raw(KeyValue::new(
            LLM_TOKEN_COUNT_TOTAL,
            input.saturating_add(output),
        ));
    }

    /// `llm.invocation_parameters` and the `gen_ai.request.*` settings, from
    /// the event or the run's parameters.
    fn generation_parameters(&mut self, e: &Query) {
        let mut parameters = if e.parameters.is_empty() {
            let run = crate::params::get();
            GENERATION_PARAMETERS
                .iter()
                .filter_map(|k| run.get(*k).map(|v| ((*k).to_owned(), v.clone())))
                .collect()
        } else {
            e.parameters.clone()
        };
        for (key, attribute) in [
            ("temperature", GEN_AI_REQUEST_TEMPERATURE),
            ("top_p", GEN_AI_REQUEST_TOP_P),
        ] {
            if let Some(v) = parameters.get(key).and_then(Json::as_f64) {
                self.raw(KeyValue::new(attribute, v));
            }
        }
        for (key, attribute) in [
            ("max_tokens", GEN_AI_REQUEST_MAX_TOKENS),
            ("seed", GEN_AI_REQUEST_SEED),
        ] {
            if let Some(v) = parameters.get(key).and_then(Json::as_i64) {
                self.raw(KeyValue::new(attribute, v));
            }
        }
        if let Some(model) = &e.model {
            parameters
                .entry("model")
                .or_insert_with(|| Json::String(model.clone()));
        }
        if !parameters.is_empty() {
            self.json(LLM_INVOCATION_PARAMETERS, Json::Object(parameters), false);
        }
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
    let run = crate::current::with(|frame| frame.and_then(|f| f.inner.run.clone()));
    match run {
        Some(run) if run.annotations.has_root() => run.annotations.set_trace_event(attributes),
        // Outside a run, or in a run continuing a remote parent (no root
        // span of its own): the current span, at once.
        _ => opentelemetry::Context::map_current(|cx| cx.span().set_attributes(attributes)),
    }
    Ok(())
}
