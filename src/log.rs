//! Free-form logs next to the trace: [`emit_log`] emits an OpenTelemetry log
//! record carrying the current task's trace and span ids, to the log
//! exporters `flowtrace_telemetry::init()` installed (`OTEL_LOGS_EXPORTER`; by
//! default the same as the spans'). `tracing` events go the same way through
//! opentelemetry-appender-tracing.

use std::sync::RwLock;

use opentelemetry::logs::{AnyValue, LogRecord as _, Logger as _, LoggerProvider as _, Severity};
use opentelemetry::{Key, Value};
use opentelemetry_sdk::logs::{SdkLogger, SdkLoggerProvider};
use serde::Serialize;

use crate::attributes::{RUN_ID, TASK_NAME};
use crate::capture::{self, Captured};

static LOGGER: RwLock<Option<SdkLogger>> = RwLock::new(None);

/// Makes `provider` the one [`emit_log`] emits through.
pub(crate) fn install(provider: &SdkLoggerProvider) {
    let logger = provider.logger("flowtrace");
    crate::running::set_logger(Some(logger.clone()));
    *LOGGER.write().unwrap_or_else(|e| e.into_inner()) = Some(logger);
}

/// After shutdown: [`emit_log`] emits nothing.
pub(crate) fn uninstall() {
    crate::running::set_logger(None);
    *LOGGER.write().unwrap_or_else(|e| e.into_inner()) = None;
}

/// Emits `value` as an `INFO` log record: a string as itself, anything
/// else `Serialize` as JSON text (redacted and capped like captured values;
/// numbers and booleans stay native). The record carries the current task's
/// trace and span ids and `flowtrace.run.id` / `flowtrace.task.name`. With no
/// telemetry installed it does nothing.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// #[flowtrace::traced]
/// async fn retrieve(query: String) -> usize {
///     flowtrace::emit_log(serde_json::json!({"query": query, "hits": 3}));
///     flowtrace::emit_log("retrieval done");
///     3
/// }
/// retrieve("what is rust?".into()).await;
/// # }
/// ```
pub fn emit_log(value: impl Serialize) {
    emit_log_at(tracing::Level::INFO, value);
}

/// [`emit_log`] with a level.
///
/// ```
/// flowtrace::emit_log_at(tracing::Level::WARN, "the reranker timed out; kept the retriever's order");
/// ```
pub fn emit_log_at(level: tracing::Level, value: impl Serialize) {
    let guard = LOGGER.read().unwrap_or_else(|e| e.into_inner());
    let Some(logger) = guard.as_ref() else {
        return;
    };
    let json = serde_json::to_value(value)
        .unwrap_or_else(|e| serde_json::Value::String(format!("<not JSON: {e}>")));
    let body =
        capture::attribute(String::new(), Captured::Json(json), &[], &capture::config()).value;
    let mut record = logger.create_log_record();
    let (severity, text) = severity(level);
    record.set_severity_number(severity);
    record.set_severity_text(text);
    record.set_target("flowtrace::log");
    record.set_body(any_value(body));
    crate::frame::current::with(|frame| {
        if let Some(frame) = frame {
            if let Some(run) = frame.run() {
                record.add_attribute(Key::from_static_str(RUN_ID), run.id.clone());
            }
            if let Some(task) = frame.task {
                record.add_attribute(Key::from_static_str(TASK_NAME), task);
            }
        }
    });
    logger.emit(record);
}

/// Emits an OpenTelemetry event (a log record with an event name, body
/// empty) in the context of the span `span` of trace `trace`, with
/// `attributes` as they are (already redacted by the caller). With no
/// telemetry installed it does nothing.
pub(crate) fn emit_event(
    name: &'static str,
    trace: opentelemetry::trace::TraceId,
    span: opentelemetry::trace::SpanId,
    attributes: &[opentelemetry::KeyValue],
) {
    let guard = LOGGER.read().unwrap_or_else(|e| e.into_inner());
    let Some(logger) = guard.as_ref() else {
        return;
    };
    let mut record = logger.create_log_record();
    record.set_event_name(name);
    record.set_severity_number(Severity::Info);
    record.set_severity_text("INFO");
    record.set_target("flowtrace::feedback");
    record.set_trace_context(trace, span, Some(opentelemetry::trace::TraceFlags::SAMPLED));
    for kv in attributes {
        record.add_attribute(kv.key.clone(), any_value(kv.value.clone()));
    }
    logger.emit(record);
}

fn severity(level: tracing::Level) -> (Severity, &'static str) {
    match level {
        tracing::Level::TRACE => (Severity::Trace, "TRACE"),
        tracing::Level::DEBUG => (Severity::Debug, "DEBUG"),
        tracing::Level::INFO => (Severity::Info, "INFO"),
        tracing::Level::WARN => (Severity::Warn, "WARN"),
        tracing::Level::ERROR => (Severity::Error, "ERROR"),
    }
}

fn any_value(value: Value) -> AnyValue {
    match value {
        Value::Bool(b) => AnyValue::Boolean(b),
        Value::I64(i) => AnyValue::Int(i),
        Value::F64(f) => AnyValue::Double(f),
        Value::String(s) => AnyValue::String(s),
        other => AnyValue::String(other.to_string().into()),
    }
}
