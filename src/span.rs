//! The OpenTelemetry span API for the task that is running: the task span
//! while its body is polled, or whatever span is current elsewhere.

use std::backtrace::{Backtrace, BacktraceStatus};
use std::borrow::Cow;
use std::error::Error;

use opentelemetry::trace::{SpanContext, Status, TraceContextExt};
use opentelemetry::{Context, KeyValue};

use crate::exception;

/// The current span: inside a `#[traced]` task, the task's span.
///
/// ```
/// use flowtrace::attributes::URL_FULL;
/// use opentelemetry::KeyValue;
///
/// #[flowtrace::traced]
/// async fn fetch(url: String) -> usize {
///     let span = flowtrace::current_span();
///     span.set_attribute(KeyValue::new(URL_FULL, url.clone()));
///     span.add_event("cache miss", vec![KeyValue::new("cache.key", url)]);
///     if span.is_recording() {
///         span.set_attribute(KeyValue::new("expensive", format!("{:?}", span.span_context())));
///     }
///     200
/// }
/// # #[tokio::main(flavor = "current_thread")] async fn main() { fetch("u".into()).await; }
/// ```
pub fn current_span() -> CurrentSpan {
    CurrentSpan {
        cx: Context::current(),
    }
}

/// A handle on the span that was current when [`current_span`] was called.
///
/// ```
/// use opentelemetry::trace::Status;
///
/// #[flowtrace::traced]
/// async fn parse(text: String) -> usize {
///     let span: flowtrace::CurrentSpan = flowtrace::current_span();
///     if text.is_empty() {
///         span.set_status(Status::error("empty input"));
///     }
///     text.len()
/// }
/// # #[tokio::main(flavor = "current_thread")] async fn main() { parse(String::new()).await; }
/// ```
#[derive(Debug, Clone)]
pub struct CurrentSpan {
    cx: Context,
}

impl CurrentSpan {
    /// Whether the span records (a no-op otherwise: nothing is formatted).
    ///
    /// ```
    /// // No tracer provider is installed here: nothing records.
    /// assert!(!flowtrace::current_span().is_recording());
    /// ```
    pub fn is_recording(&self) -> bool {
        self.cx.span().is_recording()
    }

    /// The identity of the span that is current: inside a task's body, the
    /// task's span, or a span started inside the body while that one runs.
    /// The parent a task called here gets can differ: see
    /// [`TaskContext::carried_span_context`](crate::TaskContext::carried_span_context).
    ///
    /// ```
    /// use opentelemetry::trace::Tracer as _;
    /// use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
    ///
    /// #[flowtrace::traced]
    /// async fn fetch() {
    ///     let task = flowtrace::current_span().span_context();
    ///     assert!(task.is_valid());
    ///     opentelemetry::global::tracer("example").in_span("parse", |_| {
    ///         let inner = flowtrace::current_span().span_context();
    ///         assert_ne!(inner.span_id(), task.span_id());
    ///         assert_eq!(inner.trace_id(), task.trace_id());
    ///     });
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let provider = SdkTracerProvider::builder().build();
    /// flowtrace::set_tracer_provider(provider.clone(), &Sampler::AlwaysOn);
    /// flowtrace::with_runcontext().run(fetch()).await;
    /// # let _ = provider.shutdown();
    /// # }
    /// ```
    pub fn span_context(&self) -> SpanContext {
        self.cx.span().span_context().clone()
    }

    /// Sets one attribute.
    ///
    /// ```
    /// flowtrace::current_span().set_attribute(opentelemetry::KeyValue::new("rows", 3));
    /// ```
    pub fn set_attribute(&self, attribute: KeyValue) {
        let span = self.cx.span();
        crate::running::attribute(span.span_context(), &attribute);
        span.set_attribute(attribute);
    }

    /// Sets several attributes.
    ///
    /// ```
    /// use opentelemetry::KeyValue;
    /// flowtrace::current_span().set_attributes([KeyValue::new("a", 1), KeyValue::new("b", "x")]);
    /// ```
    pub fn set_attributes(&self, attributes: impl IntoIterator<Item = KeyValue>) {
        let span = self.cx.span();
        for attribute in attributes {
            crate::running::attribute(span.span_context(), &attribute);
            span.set_attribute(attribute);
        }
    }

    /// Adds an event.
    ///
    /// ```
    /// flowtrace::current_span().add_event("retrying", vec![]);
    /// ```
    pub fn add_event(&self, name: impl Into<Cow<'static, str>>, attributes: Vec<KeyValue>) {
        self.cx.span().add_event(name, attributes);
    }

    /// Sets the status (`Ok` is final; `Error` carries a description).
    ///
    /// ```
    /// use opentelemetry::trace::Status;
    /// flowtrace::current_span().set_status(Status::error("upstream down"));
    /// ```
    pub fn set_status(&self, status: Status) {
        self.cx.span().set_status(status);
    }

    /// Renames the span.
    ///
    /// ```
    /// flowtrace::current_span().update_name("fetch /users");
    /// ```
    pub fn update_name(&self, name: impl Into<Cow<'static, str>>) {
        self.cx.span().update_name(name);
    }

    /// Records an error as an `exception` event (`exception.type`,
    /// `exception.message` with its source chain, and `exception.stacktrace`
    /// when `RUST_BACKTRACE` enables capture) and sets status Error.
    ///
    /// ```
    /// let err = std::io::Error::other("disk full");
    /// flowtrace::current_span().record_exception(&err);
    /// ```
    pub fn record_exception<E: Error + ?Sized>(&self, error: &E) {
        let span = self.cx.span();
        if !span.is_recording() {
            return;
        }
        let backtrace = Backtrace::capture();
        exception::record(
            &span,
            std::any::type_name::<E>(),
            exception::error_chain(error),
            (backtrace.status() == BacktraceStatus::Captured).then_some(&backtrace),
        );
    }
}
