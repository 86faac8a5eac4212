//! How an [`Event`] becomes attributes: the span's (GenAI, OpenInference
//! and `flowtrace.rag.*`, through the capture settings) and the short
//! summary its span event carries.

use opentelemetry::{KeyValue, StringValue};
use serde_json::{Value as Json, json};

use super::{Event, Query, RetrievedChunk, Usage};
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
    RERANKER_TOP_K, RETRIEVAL_DOCUMENTS, TOOL_ID, TOOL_NAME,
};
use crate::capture::{self, CaptureConfig, Captured};
use crate::openinference;

impl Event {
    /// The span attributes and the summary attributes of the span event.
    ///
    /// ```
    /// use flowtrace::attributes::{GEN_AI_OPERATION_NAME, RAG_EVENT};
    /// use flowtrace::event::{Event, Retrieval};
    ///
    /// let (span, summary) = Event::from(Retrieval { query: "q".into(), ..Default::default() }).attributes();
    /// assert!(span.iter().any(|kv| kv.key.as_str() == RAG_EVENT && kv.value.as_str() == "retrieval"));
    /// assert!(span.iter().any(|kv| kv.key.as_str() == GEN_AI_OPERATION_NAME));
    /// assert!(!summary.is_empty());
    /// ```
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
