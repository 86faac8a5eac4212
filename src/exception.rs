//! How a failure is recorded: the error's message with its causes, and the
//! OpenTelemetry `exception` event with status Error.

use std::backtrace::Backtrace;
use std::error::Error;

use opentelemetry::trace::{SpanRef, Status};
use opentelemetry::{KeyValue, StringValue};

use crate::attributes::{EXCEPTION_EVENT, EXCEPTION_MESSAGE, EXCEPTION_STACKTRACE, EXCEPTION_TYPE};

/// `error`'s message followed by each of its causes (`source()`),
/// `": "`-separated: `"request failed: connection refused"`.
///
/// ```
/// #[derive(Debug)]
/// struct ExportFailed(std::io::Error);
/// impl std::fmt::Display for ExportFailed {
///     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
///         f.write_str("export failed")
///     }
/// }
/// impl std::error::Error for ExportFailed {
///     fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
///         Some(&self.0)
///     }
/// }
///
/// let error = ExportFailed(std::io::Error::other("connection refused"));
/// assert_eq!(flowtrace::error_chain(&error), "export failed: connection refused");
/// ```
pub fn error_chain<E: Error + ?Sized>(error: &E) -> String {
    with_causes(error.to_string(), error.source())
}

/// `text` followed by `cause` and each of its own causes, `": "`-separated,
/// for an error whose own message is not its `Display` (a gRPC status).
///
/// ```
/// let cause = std::io::Error::other("connection refused");
/// assert_eq!(
///     flowtrace::with_causes("transport error".to_owned(), Some(&cause)),
///     "transport error: connection refused"
/// );
/// ```
pub fn with_causes(mut text: String, mut cause: Option<&(dyn Error + 'static)>) -> String {
    while let Some(error) = cause {
        text.push_str(": ");
        text.push_str(&error.to_string());
        cause = error.source();
    }
    text
}

/// The `exception.type` and `exception.message` attributes of a failure.
pub(crate) fn attributes(
    exception_type: impl Into<StringValue>,
    message: impl Into<StringValue>,
) -> Vec<KeyValue> {
    vec![
        KeyValue::new(EXCEPTION_TYPE, exception_type.into()),
        KeyValue::new(EXCEPTION_MESSAGE, message.into()),
    ]
}

/// Records a failure on `span`: an `exception` event ([`attributes`], and
/// `exception.stacktrace` when `backtrace` was captured) and status Error
/// with the message, as the OpenTelemetry exception conventions describe.
pub(crate) fn record(
    span: &SpanRef<'_>,
    exception_type: &str,
    message: String,
    backtrace: Option<&Backtrace>,
) {
    if !span.is_recording() {
        return;
    }
    let mut event = attributes(exception_type.to_owned(), message.clone());
    if let Some(backtrace) = backtrace {
        event.push(KeyValue::new(EXCEPTION_STACKTRACE, backtrace.to_string()));
    }
    span.add_event(EXCEPTION_EVENT, event);
    span.set_status(Status::error(message));
}

#[cfg(test)]
mod tests;
