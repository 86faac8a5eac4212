//! The vocabularies LLM-observability backends read: OpenInference
//! (`openinference.span.kind`, `input.value`, `llm.*`, `retrieval.*`, …;
//! Arize Phoenix and the backends built on it) next to the OpenTelemetry
//! GenAI semantic conventions (`gen_ai.operation.name`, `gen_ai.usage.*`, …).
//! flowtrace emits both on every span of a run.
//!
//! Versions followed: OpenInference semantic conventions **0.1.42**
//! (`openinference-semantic-conventions`; the spec's
//! `semantic_conventions.md` and `configuration.md`), and the OpenTelemetry
//! GenAI semantic conventions of semantic conventions **1.44.0** (status
//! *Development*), as the `semantic-conventions-genai` registry continues
//! them: `gen_ai.operation.name` values `chat`, `embeddings`,
//! `execute_tool`, `retrieval`, `invoke_agent`, `invoke_workflow`, the
//! `gen_ai.usage.*` tokens and the `gen_ai.evaluation.result` event.
//!
//! - **Kinds.** The root span of a run and every `#[traced]` task inside a
//!   run are `CHAIN`; a typed [`event`](crate::event) gives its span the
//!   step's kind (the README's "LLM-observability backends" table maps each
//!   event type to its OpenInference kind and GenAI operation), and
//!   [`event::Agent`](crate::event::Agent) declares a task or run `AGENT`.
//! - **Inputs and outputs.** A task's captured arguments become `input.value`
//!   (one argument as itself, several as a JSON object) with
//!   `input.mime_type`; its captured return value (`ret`) `output.value`;
//!   the run's [`event::trace`](crate::event::trace) input and output go on
//!   the root. The capture settings apply: redaction, size caps, and the
//!   hiding switches below.
//! - **Sessions.** The run's `custom_context` keys [`SESSION_ID`],
//!   [`USER_ID`], [`TAG_TAGS`] (a JSON array or a comma-separated list) and
//!   [`METADATA`] (JSON text) are recorded on every span of the run — the map
//!   travels across tasks, processes and Temporal workers, so they do too:
//!   every `#[traced]` task whose map has them records them (in a run, or in
//!   a Temporal activity's scope), and so do flowtrace-temporal's workflow
//!   and activity spans. `session.id` is also `gen_ai.conversation.id`.
//!
//! ## Hiding content
//!
//! The OpenInference variables and the GenAI one are read once, when the
//! capture settings are first built; code can set the same switches with
//! [`Hide`] and [`CaptureConfig::hide`](crate::capture::CaptureConfig::hide).
//! A hidden value is replaced with [`REDACTED_CONTENT`] before it is put on
//! a span, so it reaches no exporter.
//!
//! | variable | hides |
//! |---|---|
//! | `OPENINFERENCE_HIDE_INPUTS` | `input.value`, task arguments (`flowtrace.input.*`), queries, tool arguments, the run's input, and every input message |
//! | `OPENINFERENCE_HIDE_OUTPUTS` | `output.value`, return values (`flowtrace.output`), rewritten queries, tool results, the run's output, and every output message |
//! | `OPENINFERENCE_HIDE_INPUT_MESSAGES` | `llm.input_messages.*`, `gen_ai.input.messages`, `gen_ai.system_instructions`, the generation's query |
//! | `OPENINFERENCE_HIDE_OUTPUT_MESSAGES` | `llm.output_messages.*`, `gen_ai.output.messages`, the generation's response |
//! | `OPENINFERENCE_HIDE_LLM_INVOCATION_PARAMETERS` | `llm.invocation_parameters`, `embedding.invocation_parameters` |
//! | `OPENINFERENCE_HIDE_EMBEDDINGS_TEXT` | `embedding.embeddings.*.embedding.text` and the embedded texts |
//! | `OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=false` | the input and output messages, system instructions, tool arguments and results, and the retrieval query |
//!
//! Each takes `true` or `false` (any case); another value is reported with a
//! warning naming the variable and ignored. Unset,
//! `OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT` keeps content (as
//! flowtrace always has); `false` hides it.

use opentelemetry::trace::SpanRef;
use opentelemetry::{KeyValue, StringValue, Value};
use serde_json::{Map, Value as Json};

use crate::attributes::{
    GEN_AI_CONVERSATION_ID, GEN_AI_WORKFLOW_NAME, INPUT_MIME_TYPE, INPUT_VALUE, METADATA,
    OPENINFERENCE_SPAN_KIND, OUTPUT_MIME_TYPE, OUTPUT_VALUE, SESSION_ID, TAG_TAGS, USER_ID,
};
use crate::capture::{self, CaptureConfig, Captured};
use crate::custom_context::CustomContext;

pub use crate::capture::hide::{Hide, REDACTED_CONTENT};

/// `text/plain`.
pub const TEXT: &str = "text/plain";
/// `application/json`.
pub const JSON: &str = "application/json";

/// An OpenInference span kind.
///
/// ```
/// use flowtrace::openinference::SpanKind;
///
/// let kv = SpanKind::Retriever.attribute();
/// assert_eq!(kv.key.as_str(), flowtrace::attributes::OPENINFERENCE_SPAN_KIND);
/// assert_eq!(kv.value.as_str(), "RETRIEVER");
/// assert_eq!(SpanKind::Llm.as_str(), "LLM");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SpanKind {
    /// A link between steps: run roots, plain tasks, chunking, query rewrite.
    Chain,
    /// A retrieval from an index or database.
    Retriever,
    /// A reranking of documents.
    Reranker,
    /// A call to an embedding model.
    Embedding,
    /// A call to a language model.
    Llm,
    /// A tool the model called.
    Tool,
    /// A reasoning block acting on tools under an LLM's guidance.
    Agent,
    /// A check that blocks or changes input or output.
    Guardrail,
    /// An evaluation of the pipeline's output (feedback).
    Evaluator,
    /// The rendering of a prompt template.
    Prompt,
}

impl SpanKind {
    /// The attribute value: `CHAIN`, `RETRIEVER`, ….
    ///
    /// ```
    /// use flowtrace::openinference::SpanKind;
    /// assert_eq!(SpanKind::Embedding.as_str(), "EMBEDDING");
    /// ```
    pub const fn as_str(self) -> &'static str {
        match self {
            SpanKind::Chain => "CHAIN",
            SpanKind::Retriever => "RETRIEVER",
            SpanKind::Reranker => "RERANKER",
            SpanKind::Embedding => "EMBEDDING",
            SpanKind::Llm => "LLM",
            SpanKind::Tool => "TOOL",
            SpanKind::Agent => "AGENT",
            SpanKind::Guardrail => "GUARDRAIL",
            SpanKind::Evaluator => "EVALUATOR",
            SpanKind::Prompt => "PROMPT",
        }
    }

    /// `openinference.span.kind = <kind>`.
    ///
    /// ```
    /// let kv = flowtrace::openinference::SpanKind::Tool.attribute();
    /// assert_eq!((kv.key.as_str(), kv.value.as_str().as_ref()), ("openinference.span.kind", "TOOL"));
    /// ```
    pub fn attribute(self) -> KeyValue {
        KeyValue::new(OPENINFERENCE_SPAN_KIND, self.as_str())
    }
}
/// The attributes every span of a run gets from the run's map: the session,
/// user, tags and metadata (nothing is looked up when the map is empty).
pub(crate) fn map_session_attributes(map: &CustomContext, attributes: &mut Vec<KeyValue>) {
    if map.is_empty() {
        return;
    }
    if let Some(session) = map.get(SESSION_ID) {
        let session = StringValue::from(session.to_owned());
        attributes.push(KeyValue::new(SESSION_ID, session.clone()));
        attributes.push(KeyValue::new(GEN_AI_CONVERSATION_ID, session));
    }
    if let Some(user) = map.get(USER_ID) {
        attributes.push(KeyValue::new(USER_ID, user.to_owned()));
    }
    if let Some(tags) = map.get(TAG_TAGS) {
        attributes.push(KeyValue::new(TAG_TAGS, tag_list(tags)));
    }
    if let Some(metadata) = map.get(METADATA) {
        attributes.push(KeyValue::new(METADATA, metadata.to_owned()));
    }
}

/// The session attributes ([`SESSION_ID`] also as
/// [`GEN_AI_CONVERSATION_ID`], [`USER_ID`], [`TAG_TAGS`], [`METADATA`]) of a
/// map's entries: for spans started outside `#[traced]` that carry a run's
/// map along (flowtrace-temporal's workflow and activity spans).
///
/// ```
/// let attributes = flowtrace::openinference::session_attributes([
///     ("session.id", "s-1"),
///     ("team", "search"),
/// ]);
/// assert_eq!(attributes.len(), 2, "session.id and gen_ai.conversation.id");
/// ```
pub fn session_attributes<'a>(
    entries: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Vec<KeyValue> {
    let mut attributes = Vec::new();
    for (key, value) in entries {
        match key {
            SESSION_ID => {
                attributes.push(KeyValue::new(SESSION_ID, value.to_owned()));
                attributes.push(KeyValue::new(GEN_AI_CONVERSATION_ID, value.to_owned()));
            }
            USER_ID | METADATA => attributes.push(KeyValue::new(key.to_owned(), value.to_owned())),
            TAG_TAGS => attributes.push(KeyValue::new(TAG_TAGS, tag_list(value))),
            _ => {}
        }
    }
    attributes
}

/// `["a","b"]` or `a, b` as a string array.
fn tag_list(tags: &str) -> Value {
    let list: Vec<String> = match serde_json::from_str::<Vec<String>>(tags) {
        Ok(list) => list,
        Err(_) => tags
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
            .collect(),
    };
    Value::Array(
        list.into_iter()
            .map(StringValue::from)
            .collect::<Vec<_>>()
            .into(),
    )
}

/// How many attributes [`on_task_start`] adds to every task span of a run
/// (the session attributes come on top when the map has them).
pub(crate) const TASK_ATTRIBUTES: usize = 1;

/// Attributes of a task span about to start: inside a run `CHAIN`, and
/// the session attributes of the task's map (in a run or in a scope that
/// carries a run's map, such as a Temporal activity's).
#[inline]
pub(crate) fn on_task_start(map: &CustomContext, in_run: bool, attributes: &mut Vec<KeyValue>) {
    if in_run {
        attributes.push(SpanKind::Chain.attribute());
    }
    map_session_attributes(map, attributes);
}

/// Attributes of a run's root span: `CHAIN`, the GenAI workflow operation
/// and name, and the session attributes.
pub(crate) fn on_run_start(name: &str, map: &CustomContext, attributes: &mut Vec<KeyValue>) {
    attributes.push(SpanKind::Chain.attribute());
    attributes.push(KeyValue::new(
        crate::attributes::GEN_AI_OPERATION_NAME,
        "invoke_workflow",
    ));
    attributes.push(KeyValue::new(GEN_AI_WORKFLOW_NAME, name.to_owned()));
    map_session_attributes(map, attributes);
}

/// The captured arguments of a task, gathered into `input.value`.
#[derive(Debug, Default)]
pub(crate) struct Inputs {
    values: Vec<(&'static str, Value)>,
}

impl Inputs {
    /// Notes an argument as captured (redacted and capped).
    pub(crate) fn push(&mut self, name: &'static str, value: &Value) {
        self.values.push((name, value.clone()));
    }

    /// Sets `input.value` and `input.mime_type` from the arguments noted.
    /// Whether no argument was noted (the span did not record, or captures
    /// none).
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    pub(crate) fn flush(&mut self, span: &SpanRef<'_>) {
        let values = std::mem::take(&mut self.values);
        let (value, mime) = match values.len() {
            0 => return,
            1 => match values.into_iter().next() {
                Some((_, value)) => rendered(value),
                None => return,
            },
            _ => {
                let object: Map<String, Json> = values
                    .into_iter()
                    .map(|(name, value)| (name.to_owned(), to_json(value)))
                    .collect();
                (Json::Object(object).to_string(), JSON)
            }
        };
        let config = capture::config();
        span.set_attribute(capture::attribute(
            INPUT_VALUE.to_owned(),
            Captured::Text(value),
            &[],
            &config,
        ));
        span.set_attribute(KeyValue::new(INPUT_MIME_TYPE, mime));
    }
}

/// A captured value as text with its MIME type: JSON text of an object or
/// array is `application/json`, anything else its text.
fn rendered(value: Value) -> (String, &'static str) {
    match value {
        Value::String(s) => {
            let s = s.as_str().to_owned();
            let structured = matches!(
                serde_json::from_str::<Json>(&s),
                Ok(Json::Object(_) | Json::Array(_))
            );
            (s, if structured { JSON } else { TEXT })
        }
        other => (other.to_string(), JSON),
    }
}

fn to_json(value: Value) -> Json {
    match value {
        Value::Bool(b) => Json::Bool(b),
        Value::I64(i) => Json::from(i),
        Value::F64(f) => serde_json::Number::from_f64(f).map_or(Json::Null, Json::Number),
        Value::String(s) => match serde_json::from_str::<Json>(s.as_str()) {
            Ok(json @ (Json::Object(_) | Json::Array(_))) => json,
            _ => Json::String(s.as_str().to_owned()),
        },
        other => Json::String(other.to_string()),
    }
}

/// `output.value` and `output.mime_type` from a captured return value.
pub(crate) fn on_output(span: &SpanRef<'_>, value: &Value, config: &CaptureConfig) {
    let (text, mime) = rendered(value.clone());
    span.set_attribute(capture::attribute(
        OUTPUT_VALUE.to_owned(),
        Captured::Text(text),
        &[],
        config,
    ));
    span.set_attribute(KeyValue::new(OUTPUT_MIME_TYPE, mime));
}

/// `input.value` / `output.value` (and their MIME types) for a JSON value:
/// a string as text, anything else as JSON.
pub(crate) fn value_attributes(
    key: &'static str,
    mime_key: &'static str,
    value: &Json,
    config: &CaptureConfig,
) -> [KeyValue; 2] {
    let (text, mime) = match value {
        Json::String(s) => (s.clone(), TEXT),
        other => (other.to_string(), JSON),
    };
    [
        capture::attribute(key.to_owned(), Captured::Text(text), &[], config),
        KeyValue::new(mime_key, mime),
    ]
}

/// Keeps the last value of each attribute key, in the order of those last
/// values: what the OpenTelemetry specification asks of `set_attribute` on a
/// key already set (the Rust SDK appends instead). A task span starts as
/// `CHAIN` and a typed event then sets its kind; flowtrace's exporters call
/// this so every backend reads the event's kind, whichever duplicate it
/// would pick. A processor of an application's own provider can call it
/// too.
///
/// ```
/// use opentelemetry::KeyValue;
///
/// let mut attributes = vec![
///     KeyValue::new("openinference.span.kind", "CHAIN"),
///     KeyValue::new("flowtrace.task.name", "retrieve"),
///     KeyValue::new("openinference.span.kind", "RETRIEVER"),
/// ];
/// flowtrace::openinference::last_value_wins(&mut attributes);
/// assert_eq!(attributes, [
///     KeyValue::new("flowtrace.task.name", "retrieve"),
///     KeyValue::new("openinference.span.kind", "RETRIEVER"),
/// ]);
/// ```
pub fn last_value_wins(attributes: &mut Vec<KeyValue>) {
    let n = attributes.len();
    if n < 2 {
        return;
    }
    // Most spans have no duplicate and few attributes: look without
    // allocating first.
    if n <= 32 {
        let duplicated =
            (1..n).any(|i| attributes[..i].iter().any(|kv| kv.key == attributes[i].key));
        if !duplicated {
            return;
        }
    }
    let mut seen = std::collections::HashSet::with_capacity(n);
    let keep: Vec<bool> = attributes
        .iter()
        .rev()
        .map(|kv| seen.insert(kv.key.clone()))
        .collect();
    let mut keep = keep.into_iter().rev();
    attributes.retain(|_| keep.next().unwrap_or(true));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_take_json_or_commas() {
        let strings = |v: Value| match v {
            Value::Array(opentelemetry::Array::String(s)) => {
                s.iter().map(|s| s.as_str().to_owned()).collect::<Vec<_>>()
            }
            other => panic!("not a string array: {other:?}"),
        };
        assert_eq!(strings(tag_list(r#"["a","b c"]"#)), ["a", "b c"]);
        assert_eq!(strings(tag_list("a, b ,,c")), ["a", "b", "c"]);
    }
}
