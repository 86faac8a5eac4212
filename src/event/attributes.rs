//! How an [`Event`] becomes attributes: the span's (GenAI, OpenInference
//! and `flowtrace.rag.*`, through the capture settings) and the short
//! summary its span event carries.

use opentelemetry::{KeyValue, StringValue};
use serde_json::{Value as Json, json};

use super::{Event, GEN_AI_OPERATION_NAME, Query, RAG_EVENT, RetrievedChunk, Usage};
use crate::capture::{self, CaptureConfig, Captured};
use crate::openinference;

impl Event {
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
                out.text("flowtrace.rag.document.id", &e.document.id, true);
                out.json("flowtrace.rag.document", json!(e.document), false);
                out.json("flowtrace.rag.chunks", json!(e.chunks), false);
                out.count("flowtrace.rag.chunk.count", e.chunks.len());
                out.input(&Json::String(e.document.text.clone()));
                let texts: Vec<&str> = e.chunks.iter().map(|c| c.text.as_str()).collect();
                out.output(&json!(texts));
            }
            Event::Embedding(e) => {
                out.text("gen_ai.request.model", &e.model, true);
                out.count("gen_ai.embeddings.dimension.count", e.dimensions);
                out.json("flowtrace.rag.embedding.inputs", json!(e.inputs), false);
                out.count("flowtrace.rag.embedding.count", e.inputs.len());
                out.text("embedding.model_name", &e.model, false);
                out.model(Some(&e.model), e.provider.as_deref());
                for (i, text) in e.inputs.iter().enumerate() {
                    out.text(
                        format!("embedding.embeddings.{i}.embedding.text"),
                        text,
                        false,
                    );
                }
                let parameters = json!({"model": e.model, "dimensions": e.dimensions});
                out.json("embedding.invocation_parameters", parameters.clone(), false);
                out.json("llm.invocation_parameters", parameters, false);
                if let Some(usage) = e.usage {
                    out.usage(usage);
                }
            }
            Event::QueryRewrite(e) => {
                out.text("flowtrace.rag.query", &e.query, true);
                out.text("flowtrace.rag.rewritten_query", &e.rewritten, true);
                out.input(&Json::String(e.query.clone()));
                out.output(&Json::String(e.rewritten.clone()));
            }
            Event::Retrieval(e) => {
                out.text("gen_ai.retrieval.query.text", &e.query, true);
                out.json("gen_ai.retrieval.documents", documents(&e.retrieved), false);
                if let Some(source) = &e.data_source {
                    out.text("gen_ai.data_source.id", source, true);
                }
                out.count("flowtrace.rag.retrieved.count", e.retrieved.len());
                out.input(&Json::String(e.query.clone()));
                out.documents("retrieval.documents", &e.retrieved);
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
                out.text("reranker.query", &e.query, false);
                if let Some(model) = &e.model {
                    out.text("reranker.model_name", model, false);
                }
                let top_k = i64::try_from(e.output.len()).unwrap_or(i64::MAX);
                out.raw(KeyValue::new("reranker.top_k", top_k));
                out.documents("reranker.input_documents", &e.input);
                out.documents("reranker.output_documents", &e.output);
                out.model(e.model.as_deref(), e.provider.as_deref());
                let mut parameters = json!({"top_k": top_k});
                if let Some(model) = &e.model {
                    parameters["model"] = json!(model);
                }
                out.json("llm.invocation_parameters", parameters, false);
                out.input(&Json::String(e.query.clone()));
            }
            Event::ToolCall(e) => {
                out.text("gen_ai.tool.name", &e.name, true);
                out.text("gen_ai.tool.type", "function", false);
                if let Some(id) = &e.call_id {
                    out.text("gen_ai.tool.call.id", id, false);
                }
                out.json("gen_ai.tool.call.arguments", e.arguments.clone(), true);
                out.json("gen_ai.tool.call.result", e.result.clone(), true);
                out.text("tool.name", &e.name, false);
                if let Some(id) = &e.call_id {
                    out.text("tool.id", id, false);
                }
                out.input(&e.arguments);
                out.output(&e.result);
            }
            Event::Query(e) => {
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
                out.model(e.model.as_deref(), e.provider.as_deref());
                let mut messages = 0;
                if let Some(system) = &e.system_prompt {
                    out.message("llm.input_messages", messages, "system", system);
                    messages += 1;
                }
                out.message("llm.input_messages", messages, "user", &e.query);
                out.message("llm.output_messages", 0, "assistant", &e.response);
                out.raw(KeyValue::new(
                    "gen_ai.response.finish_reasons",
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
                out.text("gen_ai.agent.name", &e.name, true);
                out.text("agent.name", &e.name, false);
                if let Some(description) = &e.description {
                    out.text("gen_ai.agent.description", description, false);
                }
            }
            Event::Custom(e) => {
                out.text("flowtrace.rag.custom.name", &e.name, true);
                out.json("flowtrace.rag.custom.data", e.data.clone(), true);
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
        let kvs = openinference::value_attributes(
            openinference::INPUT_VALUE,
            openinference::INPUT_MIME_TYPE,
            value,
            self.config,
        );
        self.span.extend(kvs);
    }

    fn output(&mut self, value: &Json) {
        let kvs = openinference::value_attributes(
            openinference::OUTPUT_VALUE,
            openinference::OUTPUT_MIME_TYPE,
            value,
            self.config,
        );
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
            self.raw(KeyValue::new("llm.model_name", model.to_owned()));
        }
        if let Some(provider) = provider {
            self.raw(KeyValue::new("llm.provider", provider.to_owned()));
            self.raw(KeyValue::new("gen_ai.provider.name", provider.to_owned()));
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
        self.raw(KeyValue::new("gen_ai.usage.input_tokens", input));
        self.raw(KeyValue::new("gen_ai.usage.output_tokens", output));
        self.raw(KeyValue::new("llm.token_count.prompt", input));
        self.raw(KeyValue::new("llm.token_count.completion", output));
        self.raw(KeyValue::new(
            "llm.token_count.total",
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
            ("temperature", "gen_ai.request.temperature"),
            ("top_p", "gen_ai.request.top_p"),
        ] {
            if let Some(v) = parameters.get(key).and_then(Json::as_f64) {
                self.raw(KeyValue::new(attribute, v));
            }
        }
        for (key, attribute) in [
            ("max_tokens", "gen_ai.request.max_tokens"),
            ("seed", "gen_ai.request.seed"),
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
            self.json("llm.invocation_parameters", Json::Object(parameters), false);
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
