//! Every attribute key and event name flowtrace writes, in one place.
//!
//! - **Semantic conventions.** The stable OpenTelemetry names (`code.*`,
//!   `exception.*`, `error.type`, `http.*`, `url.*`, `server.*`,
//!   `network.*`, `user_agent.original`, `service.name`) are the
//!   `opentelemetry-semantic-conventions` crate's own constants,
//!   re-exported. Names still in development there (`gen_ai.*`,
//!   `session.id`, `user.id`, `otel.component.type`) are spelled here, and a
//!   test checks each against that crate.
//! - **OpenInference.** The keys Arize Phoenix reads (`openinference.span.kind`,
//!   `input.value`, `llm.*`, `embedding.*`, `reranker.*`, ...), written beside
//!   the GenAI ones.
//! - **flowtrace.** Everything else, under `flowtrace.*`.
//!
//! A test or a backend query finds flowtrace's attributes by these names:
//!
//! ```
//! use flowtrace::attributes::{CODE_FUNCTION_NAME, RUN_ID, TASK_NAME};
//! use opentelemetry_sdk::trace::{InMemorySpanExporter, Sampler, SdkTracerProvider};
//!
//! #[flowtrace::traced]
//! async fn fetch() -> u16 {
//!     200
//! }
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let exporter = InMemorySpanExporter::default();
//! let provider = SdkTracerProvider::builder()
//!     .with_simple_exporter(exporter.clone())
//!     .build();
//! flowtrace::set_tracer_provider(provider.clone(), &Sampler::AlwaysOn);
//! let run = flowtrace::with_runcontext().run(fetch()).await;
//!
//! let spans = exporter.get_finished_spans().unwrap();
//! let task = spans.iter().find(|s| s.name == "fetch").unwrap();
//! let value = |key: &str| {
//!     task.attributes.iter().find(|kv| kv.key.as_str() == key).map(|kv| kv.value.to_string())
//! };
//! assert_eq!(value(TASK_NAME).as_deref(), Some("fetch"));
//! assert_eq!(value(RUN_ID).as_deref(), Some(run.run_id()));
//! assert!(value(CODE_FUNCTION_NAME).unwrap().ends_with("fetch"));
//! # let _ = provider.shutdown();
//! # }
//! ```

pub use opentelemetry_semantic_conventions::attribute::{
    CODE_FILE_PATH, CODE_FUNCTION_NAME, CODE_LINE_NUMBER, ERROR_TYPE, EXCEPTION_MESSAGE,
    EXCEPTION_STACKTRACE, EXCEPTION_TYPE, HTTP_REQUEST_METHOD, HTTP_REQUEST_METHOD_ORIGINAL,
    HTTP_RESPONSE_STATUS_CODE, HTTP_ROUTE, NETWORK_PROTOCOL_VERSION, SERVER_ADDRESS, SERVER_PORT,
    SERVICE_NAME, URL_FULL, URL_PATH, URL_QUERY, URL_SCHEME, USER_AGENT_ORIGINAL,
};

// ---- Event names ----------------------------------------------------------

/// The span event of an error (OpenTelemetry's exception event):
/// [`EXCEPTION_TYPE`], [`EXCEPTION_MESSAGE`], and [`EXCEPTION_STACKTRACE`]
/// when a backtrace was captured.
pub const EXCEPTION_EVENT: &str = "exception";
/// The span event of a failed attempt that is retried: [`TASK_ATTEMPT`],
/// [`RETRY_DELAY_MS`], [`EXCEPTION_TYPE`], [`EXCEPTION_MESSAGE`].
pub const RETRY_EVENT: &str = "retry";
/// The event name of a running span's start record (a log record).
pub const SPAN_START_EVENT: &str = "flowtrace.span.start";
/// The event name of a running span's heartbeat record (a log record).
pub const SPAN_HEARTBEAT_EVENT: &str = "flowtrace.span.heartbeat";
/// The GenAI event an evaluation result is: a span event on the feedback
/// span, and a log record in the context of the evaluated span.
pub const GEN_AI_EVALUATION_RESULT: &str = "gen_ai.evaluation.result";

// ---- Runs and tasks -------------------------------------------------------

/// The run a span belongs to, on every span of the run.
pub const RUN_ID: &str = "flowtrace.run.id";
/// The run's name.
pub const RUN_NAME: &str = "flowtrace.run.name";
/// The task's name.
pub const TASK_NAME: &str = "flowtrace.task.name";
/// Set on a task or run span whose future was dropped before it completed.
pub const TASK_CANCELLED: &str = "flowtrace.task.cancelled";
/// The attempt number on an attempt span (1-based), and on the
/// [`RETRY_EVENT`].
pub const TASK_ATTEMPT: &str = "flowtrace.task.attempt";
/// The configured number of retries, on the task span.
pub const TASK_RETRIES: &str = "flowtrace.task.retries";
/// Set on a task or attempt span that ran out of time.
pub const TASK_TIMEOUT: &str = "flowtrace.task.timeout";
/// Set on a task span served from the process cache.
pub const TASK_CACHED: &str = "flowtrace.task.cached";
/// Set on a task span whose output was replayed from a resumed run.
pub const TASK_REPLAYED: &str = "flowtrace.task.replayed";
/// The delay before the next attempt, on the [`RETRY_EVENT`].
pub const RETRY_DELAY_MS: &str = "flowtrace.retry.delay_ms";
/// The position of a task in a `flowtrace::map` fan-out.
pub const MAP_INDEX: &str = "flowtrace.map.index";
/// How long a `flowtrace::map` item waited for a concurrency slot.
pub const QUEUE_WAIT_MS: &str = "flowtrace.task.queue_wait_ms";
/// The prefix of argument attributes: `flowtrace.input.<name>`.
pub const INPUT_PREFIX: &str = "flowtrace.input.";
/// The attribute holding a task's return value (with `ret`).
pub const OUTPUT: &str = "flowtrace.output";
/// The prefix of parameter attributes: `flowtrace.param.<key>`.
pub const PARAM_PREFIX: &str = "flowtrace.param.";
/// On a link: why a new trace links to a span instead of continuing it
/// (see [`link`](crate::link)).
pub const LINK_REASON: &str = "flowtrace.link.reason";
/// Set on a `server` span when the request's `traceparent` was rejected
/// and the trace restarted: the reason.
pub const TRACEPARENT_REJECTED: &str = "flowtrace.traceparent.rejected";

// ---- Metric attributes ----------------------------------------------------

/// How a task ended, on the task metrics: `ok`, `error`, `cancelled`,
/// `timeout` or `cached`.
pub const TASK_OUTCOME: &str = "flowtrace.task.outcome";
/// On `flowtrace.task.attempts`: `true` for a retry (an attempt after the
/// first).
pub const TASK_RETRY: &str = "flowtrace.task.retry";
/// How a run ended: `succeeded`, `failed` or `cancelled`.
pub const RUN_STATUS: &str = "flowtrace.run.status";

// ---- Running spans (start and heartbeat records) --------------------------

/// `"start"` or `"heartbeat"`, as in the partial-span proposal.
pub const PARTIAL_EVENT: &str = "partial.event";
/// The heartbeat interval, `"<milliseconds>ms"`, as in the partial-span
/// proposal.
pub const PARTIAL_FREQUENCY: &str = "partial.frequency";
/// The running span's name, on its start and heartbeat records.
pub const SPAN_NAME: &str = "flowtrace.span.name";
/// The running span's parent span id (16 hex digits), absent on a root.
pub const PARENT_SPAN_ID: &str = "flowtrace.span.parent_id";

// ---- Feedback -------------------------------------------------------------

/// `binary`, `numeric`, `categorical`, `text`, `json`.
pub const FEEDBACK_KIND: &str = "flowtrace.feedback.kind";
/// The feedback's value.
pub const FEEDBACK_VALUE: &str = "flowtrace.feedback.value";
/// The accepted categories of categorical feedback.
pub const FEEDBACK_CATEGORIES: &str = "flowtrace.feedback.categories";
/// The trace the feedback is about.
pub const FEEDBACK_TRACE_ID: &str = "flowtrace.feedback.trace_id";

// ---- RAG events -----------------------------------------------------------

/// The kind of RAG event a span recorded.
pub const RAG_EVENT: &str = "flowtrace.rag.event";
/// The run's input ([`event::trace`](crate::event::trace)).
pub const TRACE_INPUT: &str = "flowtrace.trace.input";
/// The run's output ([`event::trace`](crate::event::trace)).
pub const TRACE_OUTPUT: &str = "flowtrace.trace.output";
/// Metadata of the run ([`event::trace`](crate::event::trace)).
pub const TRACE_METADATA: &str = "flowtrace.trace.metadata";
/// The id of the chunked document.
pub const RAG_DOCUMENT_ID: &str = "flowtrace.rag.document.id";
/// The chunked document.
pub const RAG_DOCUMENT: &str = "flowtrace.rag.document";
/// The chunks a document was split into.
pub const RAG_CHUNKS: &str = "flowtrace.rag.chunks";
/// How many chunks a document was split into.
pub const RAG_CHUNK_COUNT: &str = "flowtrace.rag.chunk.count";
/// The texts an embedding step embedded.
pub const RAG_EMBEDDING_INPUTS: &str = "flowtrace.rag.embedding.inputs";
/// How many texts an embedding step embedded.
pub const RAG_EMBEDDING_COUNT: &str = "flowtrace.rag.embedding.count";
/// The user's query.
pub const RAG_QUERY: &str = "flowtrace.rag.query";
/// The query a rewrite step produced.
pub const RAG_REWRITTEN_QUERY: &str = "flowtrace.rag.rewritten_query";
/// How many chunks a retrieval returned.
pub const RAG_RETRIEVED_COUNT: &str = "flowtrace.rag.retrieved.count";
/// The reranker's model.
pub const RAG_RERANK_MODEL: &str = "flowtrace.rag.rerank.model";
/// The documents a reranker was given.
pub const RAG_RERANK_INPUT: &str = "flowtrace.rag.rerank.input";
/// The documents a reranker returned.
pub const RAG_RERANK_OUTPUT: &str = "flowtrace.rag.rerank.output";
/// How many documents a reranker was given.
pub const RAG_RERANK_INPUT_COUNT: &str = "flowtrace.rag.rerank.input.count";
/// How many documents a reranker returned.
pub const RAG_RERANK_OUTPUT_COUNT: &str = "flowtrace.rag.rerank.output.count";
/// The answer of a query.
pub const RAG_RESPONSE: &str = "flowtrace.rag.response";
/// The name of a custom RAG event.
pub const RAG_CUSTOM_NAME: &str = "flowtrace.rag.custom.name";
/// The data of a custom RAG event.
pub const RAG_CUSTOM_DATA: &str = "flowtrace.rag.custom.data";

// ---- GenAI semantic conventions (development) -----------------------------

/// `gen_ai.operation.name`.
pub const GEN_AI_OPERATION_NAME: &str = "gen_ai.operation.name";
/// `gen_ai.conversation.id`: the GenAI name of the session.
pub const GEN_AI_CONVERSATION_ID: &str = "gen_ai.conversation.id";
/// `gen_ai.workflow.name`: a run's name, on its root span.
pub const GEN_AI_WORKFLOW_NAME: &str = "gen_ai.workflow.name";
/// `gen_ai.request.model`.
pub const GEN_AI_REQUEST_MODEL: &str = "gen_ai.request.model";
/// `gen_ai.request.temperature`.
pub const GEN_AI_REQUEST_TEMPERATURE: &str = "gen_ai.request.temperature";
/// `gen_ai.request.top_p`.
pub const GEN_AI_REQUEST_TOP_P: &str = "gen_ai.request.top_p";
/// `gen_ai.request.max_tokens`.
pub const GEN_AI_REQUEST_MAX_TOKENS: &str = "gen_ai.request.max_tokens";
/// `gen_ai.request.seed`.
pub const GEN_AI_REQUEST_SEED: &str = "gen_ai.request.seed";
/// `gen_ai.provider.name`.
pub const GEN_AI_PROVIDER_NAME: &str = "gen_ai.provider.name";
/// `gen_ai.embeddings.dimension.count`.
pub const GEN_AI_EMBEDDINGS_DIMENSION_COUNT: &str = "gen_ai.embeddings.dimension.count";
/// `gen_ai.retrieval.query.text`.
pub const GEN_AI_RETRIEVAL_QUERY_TEXT: &str = "gen_ai.retrieval.query.text";
/// `gen_ai.retrieval.documents`.
pub const GEN_AI_RETRIEVAL_DOCUMENTS: &str = "gen_ai.retrieval.documents";
/// `gen_ai.data_source.id`.
pub const GEN_AI_DATA_SOURCE_ID: &str = "gen_ai.data_source.id";
/// `gen_ai.tool.name`.
pub const GEN_AI_TOOL_NAME: &str = "gen_ai.tool.name";
/// `gen_ai.tool.type`.
pub const GEN_AI_TOOL_TYPE: &str = "gen_ai.tool.type";
/// `gen_ai.tool.call.id`.
pub const GEN_AI_TOOL_CALL_ID: &str = "gen_ai.tool.call.id";
/// `gen_ai.tool.call.arguments`.
pub const GEN_AI_TOOL_CALL_ARGUMENTS: &str = "gen_ai.tool.call.arguments";
/// `gen_ai.tool.call.result`.
pub const GEN_AI_TOOL_CALL_RESULT: &str = "gen_ai.tool.call.result";
/// `gen_ai.system_instructions`.
pub const GEN_AI_SYSTEM_INSTRUCTIONS: &str = "gen_ai.system_instructions";
/// `gen_ai.input.messages`.
pub const GEN_AI_INPUT_MESSAGES: &str = "gen_ai.input.messages";
/// `gen_ai.output.messages`.
pub const GEN_AI_OUTPUT_MESSAGES: &str = "gen_ai.output.messages";
/// `gen_ai.response.finish_reasons`.
pub const GEN_AI_RESPONSE_FINISH_REASONS: &str = "gen_ai.response.finish_reasons";
/// `gen_ai.usage.input_tokens`.
pub const GEN_AI_USAGE_INPUT_TOKENS: &str = "gen_ai.usage.input_tokens";
/// `gen_ai.usage.output_tokens`.
pub const GEN_AI_USAGE_OUTPUT_TOKENS: &str = "gen_ai.usage.output_tokens";
/// `gen_ai.agent.name`.
pub const GEN_AI_AGENT_NAME: &str = "gen_ai.agent.name";
/// `gen_ai.agent.description`.
pub const GEN_AI_AGENT_DESCRIPTION: &str = "gen_ai.agent.description";
/// `gen_ai.evaluation.name`.
pub const GEN_AI_EVALUATION_NAME: &str = "gen_ai.evaluation.name";
/// `gen_ai.evaluation.score.value`.
pub const GEN_AI_EVALUATION_SCORE_VALUE: &str = "gen_ai.evaluation.score.value";
/// `gen_ai.evaluation.score.label`.
pub const GEN_AI_EVALUATION_SCORE_LABEL: &str = "gen_ai.evaluation.score.label";
/// `gen_ai.evaluation.explanation`.
pub const GEN_AI_EVALUATION_EXPLANATION: &str = "gen_ai.evaluation.explanation";

// ---- Other semantic conventions in development ----------------------------

/// `session.id`: the `custom_context` key (and attribute) of the session.
pub const SESSION_ID: &str = "session.id";
/// `user.id`: the `custom_context` key (and attribute) of the user.
pub const USER_ID: &str = "user.id";
/// `otel.component.type`: the SDK component a self-observability metric
/// point is about.
pub const OTEL_COMPONENT_TYPE: &str = "otel.component.type";

// ---- OpenInference --------------------------------------------------------

/// `openinference.span.kind`.
pub const OPENINFERENCE_SPAN_KIND: &str = "openinference.span.kind";
/// `input.value`: the input of a step.
pub const INPUT_VALUE: &str = "input.value";
/// `input.mime_type`: `text/plain` or `application/json`.
pub const INPUT_MIME_TYPE: &str = "input.mime_type";
/// `output.value`: the output of a step.
pub const OUTPUT_VALUE: &str = "output.value";
/// `output.mime_type`.
pub const OUTPUT_MIME_TYPE: &str = "output.mime_type";
/// `tag.tags`: the `custom_context` key of the tags (a JSON array of
/// strings or a comma-separated list), recorded as a string array.
pub const TAG_TAGS: &str = "tag.tags";
/// `metadata`: the `custom_context` key of the metadata (JSON text).
pub const METADATA: &str = "metadata";
/// `llm.model_name`.
pub const LLM_MODEL_NAME: &str = "llm.model_name";
/// `llm.provider`.
pub const LLM_PROVIDER: &str = "llm.provider";
/// `llm.invocation_parameters` (JSON text).
pub const LLM_INVOCATION_PARAMETERS: &str = "llm.invocation_parameters";
/// `llm.input_messages`: the prefix of `llm.input_messages.<i>.message.*`.
pub const LLM_INPUT_MESSAGES: &str = "llm.input_messages";
/// `llm.output_messages`: the prefix of `llm.output_messages.<i>.message.*`.
pub const LLM_OUTPUT_MESSAGES: &str = "llm.output_messages";
/// `llm.token_count.prompt`.
pub const LLM_TOKEN_COUNT_PROMPT: &str = "llm.token_count.prompt";
/// `llm.token_count.completion`.
pub const LLM_TOKEN_COUNT_COMPLETION: &str = "llm.token_count.completion";
/// `llm.token_count.total`.
pub const LLM_TOKEN_COUNT_TOTAL: &str = "llm.token_count.total";
/// `embedding.model_name`.
pub const EMBEDDING_MODEL_NAME: &str = "embedding.model_name";
/// `embedding.invocation_parameters` (JSON text).
pub const EMBEDDING_INVOCATION_PARAMETERS: &str = "embedding.invocation_parameters";
/// `embedding.embeddings`: the prefix of
/// `embedding.embeddings.<i>.embedding.text`.
pub const EMBEDDING_EMBEDDINGS: &str = "embedding.embeddings";
/// `retrieval.documents`: the prefix of `retrieval.documents.<i>.document.*`.
pub const RETRIEVAL_DOCUMENTS: &str = "retrieval.documents";
/// `reranker.query`.
pub const RERANKER_QUERY: &str = "reranker.query";
/// `reranker.model_name`.
pub const RERANKER_MODEL_NAME: &str = "reranker.model_name";
/// `reranker.top_k`.
pub const RERANKER_TOP_K: &str = "reranker.top_k";
/// `reranker.input_documents`: the prefix of
/// `reranker.input_documents.<i>.document.*`.
pub const RERANKER_INPUT_DOCUMENTS: &str = "reranker.input_documents";
/// `reranker.output_documents`: the prefix of
/// `reranker.output_documents.<i>.document.*`.
pub const RERANKER_OUTPUT_DOCUMENTS: &str = "reranker.output_documents";
/// `tool.name`.
pub const TOOL_NAME: &str = "tool.name";
/// `tool.id`.
pub const TOOL_ID: &str = "tool.id";
/// `agent.name`.
pub const AGENT_NAME: &str = "agent.name";
/// `trace.evaluations.0.evaluation.name`: a trace-scoped evaluation, as
/// Phoenix reads it.
pub const TRACE_EVALUATION_NAME: &str = "trace.evaluations.0.evaluation.name";
/// `trace.evaluations.0.evaluation.annotator_kind`.
pub const TRACE_EVALUATION_ANNOTATOR_KIND: &str = "trace.evaluations.0.evaluation.annotator_kind";
/// `trace.evaluations.0.evaluation.score`.
pub const TRACE_EVALUATION_SCORE: &str = "trace.evaluations.0.evaluation.score";
/// `trace.evaluations.0.evaluation.label`.
pub const TRACE_EVALUATION_LABEL: &str = "trace.evaluations.0.evaluation.label";
/// `trace.evaluations.0.evaluation.explanation`.
pub const TRACE_EVALUATION_EXPLANATION: &str = "trace.evaluations.0.evaluation.explanation";
