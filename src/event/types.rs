//! The event types, one per pipeline step, and the values they carry.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};

/// A source document, before chunking.
///
/// ```
/// use flowtrace::event::Document;
///
/// let mut doc = Document::new("handbook.md", "# Onboarding\n...");
/// doc.metadata.insert("author".into(), "ops".into());
/// assert_eq!(serde_json::to_value(&doc).unwrap()["metadata"]["author"], "ops");
/// ```
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
    ///
    /// ```
    /// let doc = flowtrace::event::Document::new("doc-1", "Rust is a language.");
    /// assert!(doc.metadata.is_empty());
    /// ```
    pub fn new(id: impl Into<String>, text: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            text: text.into(),
            metadata: Map::new(),
        }
    }
}

/// A piece of a document.
///
/// ```
/// use flowtrace::event::{self, Chunk, Chunking, Document};
///
/// #[flowtrace::traced]
/// async fn split(doc: Document) -> Vec<Chunk> {
///     let chunks: Vec<Chunk> = doc
///         .text
///         .split(". ")
///         .enumerate()
///         .map(|(i, text)| Chunk::new(format!("{}#{i}", doc.id), text))
///         .collect();
///     event::span(Chunking { document: doc, chunks: chunks.clone() });
///     chunks
/// }
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let chunks = split(Document::new("doc-1", "One. Two")).await;
/// assert_eq!(chunks[1].id, "doc-1#1");
/// # }
/// ```
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
    ///
    /// ```
    /// let chunk = flowtrace::event::Chunk::new("doc-1#0", "Rust is a language.");
    /// assert_eq!(chunk.id, "doc-1#0");
    /// ```
    pub fn new(id: impl Into<String>, text: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            text: text.into(),
            metadata: Map::new(),
        }
    }
}

/// A chunk a retriever or reranker returned, with its score.
///
/// ```
/// let hit = flowtrace::event::RetrievedChunk::new("doc-1#0", "Rust is a language.", 0.92);
/// assert_eq!(serde_json::to_value(&hit).unwrap()["score"], 0.92);
/// ```
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
    ///
    /// ```
    /// let hit = flowtrace::event::RetrievedChunk::new("doc-2#3", "Cargo builds crates.", 0.5);
    /// assert_eq!((hit.id.as_str(), hit.score), ("doc-2#3", 0.5));
    /// ```
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
///
/// ```
/// use flowtrace::event::{Chunk, Chunking, Document, Event};
///
/// let chunking = Chunking {
///     document: Document::new("doc-1", "One. Two"),
///     chunks: vec![Chunk::new("doc-1#0", "One"), Chunk::new("doc-1#1", "Two")],
/// };
/// assert_eq!(Event::from(chunking).kind(), "chunking");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Chunking {
    /// The document.
    pub document: Document,
    /// The chunks it became.
    pub chunks: Vec<Chunk>,
}

/// Tokens a model call used (`gen_ai.usage.*`, `llm.token_count.*`).
///
/// ```
/// use flowtrace::event::{Query, Usage};
///
/// let query = Query { usage: Some(Usage::new(812, 64)), ..Default::default() };
/// assert_eq!(query.usage.unwrap().output_tokens, 64);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Tokens in the input (prompt).
    pub input_tokens: u64,
    /// Tokens in the output (completion).
    pub output_tokens: u64,
}

impl Usage {
    /// Input and output token counts.
    ///
    /// ```
    /// let usage = flowtrace::event::Usage::new(1200, 80);
    /// assert_eq!((usage.input_tokens, usage.output_tokens), (1200, 80));
    /// ```
    pub fn new(input_tokens: u64, output_tokens: u64) -> Self {
        Self {
            input_tokens,
            output_tokens,
        }
    }
}

/// Texts embedded by a model.
///
/// ```
/// use flowtrace::event::{self, Embedding};
///
/// #[flowtrace::traced]
/// async fn embed(texts: Vec<String>) -> Vec<Vec<f32>> {
///     let vectors = vec![vec![0.0; 384]; texts.len()];
///     event::span(Embedding { model: "all-MiniLM-L6-v2".into(), inputs: texts, dimensions: 384, ..Default::default() });
///     vectors
/// }
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// assert_eq!(embed(vec!["hello".into()]).await.len(), 1);
/// # }
/// ```
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
///
/// ```
/// use flowtrace::event::{Event, QueryRewrite};
///
/// let rewrite = QueryRewrite { query: "rust?".into(), rewritten: "What is the Rust language?".into() };
/// assert_eq!(Event::from(rewrite).operation(), Some("rewrite_query"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct QueryRewrite {
    /// The user's query.
    pub query: String,
    /// What it became.
    pub rewritten: String,
}

/// Chunks retrieved for a query.
///
/// ```
/// use flowtrace::event::{Event, Retrieval, RetrievedChunk};
///
/// let retrieval = Retrieval {
///     query: "what is rust?".into(),
///     retrieved: vec![RetrievedChunk::new("doc-1#0", "Rust is a language.", 0.92)],
///     data_source: Some("docs-index".into()),
/// };
/// assert_eq!(Event::from(retrieval).operation(), Some("retrieval"));
/// ```
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
///
/// ```
/// use flowtrace::event::{Event, Rerank, RetrievedChunk};
///
/// let input = vec![RetrievedChunk::new("a", "A", 0.4), RetrievedChunk::new("b", "B", 0.3)];
/// let rerank = Rerank {
///     query: "q".into(),
///     model: Some("bge-reranker".into()),
///     output: vec![RetrievedChunk::new("b", "B", 0.9)],
///     input,
///     ..Default::default()
/// };
/// assert_eq!(Event::from(rerank).span_kind(), flowtrace::openinference::SpanKind::Reranker);
/// ```
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
///
/// ```
/// use flowtrace::event::{Event, ToolCall};
/// use serde_json::json;
///
/// let call = ToolCall {
///     name: "get_weather".into(),
///     arguments: json!({"city": "Lisbon"}),
///     result: json!({"celsius": 21}),
///     ..Default::default()
/// };
/// assert_eq!(Event::from(call).operation(), Some("execute_tool"));
/// ```
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
///
/// ```
/// use flowtrace::event::{self, Query, Usage};
///
/// #[flowtrace::traced]
/// async fn answer(question: String) -> String {
///     let response = "Rust is a systems programming language.".to_owned();
///     event::span(Query {
///         query: question,
///         response: response.clone(),
///         model: Some("gpt-4o-mini".into()),
///         usage: Some(Usage::new(812, 12)),
///         ..Default::default()
///     });
///     response
/// }
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// answer("what is rust?".into()).await;
/// # }
/// ```
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
///
/// ```
/// use flowtrace::event::{self, Agent};
///
/// #[flowtrace::traced]
/// async fn support_agent(ticket: String) -> String {
///     event::span(Agent { name: "support".into(), description: Some("answers tickets".into()) });
///     format!("handled {ticket}")
/// }
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// support_agent("T-1".into()).await;
/// # }
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Agent {
    /// The agent's name (`gen_ai.agent.name`, `agent.name`).
    pub name: String,
    /// What it does (`gen_ai.agent.description`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// Any other step: a name and JSON data.
///
/// ```
/// use flowtrace::event::{self, Custom};
///
/// #[flowtrace::traced]
/// async fn dedupe(ids: Vec<String>) -> usize {
///     event::span(Custom { name: "dedupe".into(), data: serde_json::json!({"before": ids.len()}) });
///     ids.len()
/// }
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// dedupe(vec!["a".into()]).await;
/// # }
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Custom {
    /// What the step is.
    pub name: String,
    /// Its data.
    pub data: Json,
}
