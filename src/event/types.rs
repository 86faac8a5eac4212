//! The event types, one per pipeline step, and the values they carry.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};

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
