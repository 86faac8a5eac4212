//! The task span future (hot path): start the span on first poll, make it and
//! the child map current on every poll, end it on completion, panic or drop.

use std::borrow::Cow;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::pin::Pin;
use std::sync::LazyLock;
use std::task::Poll;

use opentelemetry::trace::{
    Span as _, SpanBuilder, SpanKind, SpanRef, Status, TraceContextExt, Tracer, TracerProvider as _,
};
use opentelemetry::{Context, InstrumentationScope, KeyValue, global};

use crate::context::{Frame, parent_context};

/// The attribute naming the task.
pub const TASK_NAME: &str = "flowtrace.task.name";
/// The semantic-convention attribute for the fully qualified function.
pub const CODE_FUNCTION_NAME: &str = "code.function.name";
/// Set on a task or run span whose future was dropped before it completed.
pub const TASK_CANCELLED: &str = "flowtrace.task.cancelled";

static SCOPE: LazyLock<InstrumentationScope> = LazyLock::new(|| {
    InstrumentationScope::builder("flowtrace")
        .with_version(env!("CARGO_PKG_VERSION"))
        .build()
});

/// The tracer of the global provider, so a provider the application installed
/// itself is honoured.
pub(crate) fn tracer() -> global::BoxedTracer {
    global::tracer_provider().tracer_with_scope(SCOPE.clone())
}

/// Starts a span named `name` under `parent` and returns the context holding
/// it together with `frame`, whose map now carries the new span.
pub(crate) fn start_span(
    name: Cow<'static, str>,
    attributes: Vec<KeyValue>,
    parent: &Context,
    mut frame: Frame,
) -> Context {
    let builder = SpanBuilder::from_name(name)
        .with_kind(SpanKind::Internal)
        .with_attributes(attributes);
    let span = tracer().build_with_context(builder, parent);
    let sc = span.span_context().clone();
    if sc.is_valid() && frame.map.span_context() != Some(&sc) {
        frame.map = frame.map.with_span_context(sc);
    }
    parent.with_span(span).with_value(frame)
}

/// Records an error outcome: status Error and an `exception` event, as the
/// OpenTelemetry exception conventions describe.
pub(crate) fn record_exception(span: &SpanRef<'_>, exception_type: &str, message: String) {
    if !span.is_recording() {
        return;
    }
    span.add_event(
        "exception",
        vec![
            KeyValue::new("exception.type", exception_type.to_owned()),
            KeyValue::new("exception.message", message.clone()),
        ],
    );
    span.set_status(Status::error(message));
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-string payload".to_owned()
    }
}

/// A started span and the context its future is polled under.
pub(crate) struct Active {
    cx: Context,
    ended: bool,
}

impl Active {
    pub(crate) fn new(cx: Context) -> Self {
        Self { cx, ended: false }
    }

    pub(crate) fn context(&self) -> &Context {
        &self.cx
    }

    /// Polls `future` with this context current. A panic is recorded on the
    /// span, the span ended, and the panic resumed.
    pub(crate) fn poll<F: Future>(
        &mut self,
        future: Pin<&mut F>,
        task: &mut std::task::Context<'_>,
    ) -> Poll<F::Output> {
        let polled = {
            let _guard = self.cx.clone().attach();
            catch_unwind(AssertUnwindSafe(|| future.poll(task)))
        };
        match polled {
            Ok(poll) => poll,
            Err(payload) => {
                let span = self.cx.span();
                record_exception(&span, "panic", panic_message(&*payload));
                self.end();
                resume_unwind(payload)
            }
        }
    }

    pub(crate) fn end(&mut self) {
        if !self.ended {
            self.ended = true;
            self.cx.span().end();
        }
    }
}

impl Drop for Active {
    fn drop(&mut self) {
        if !self.ended {
            let span = self.cx.span();
            if span.is_recording() {
                span.set_attribute(KeyValue::new(TASK_CANCELLED, true));
            }
            self.end();
        }
    }
}

/// Static facts about a `#[traced]` function, emitted by the macro.
#[derive(Debug)]
pub struct TaskMeta {
    name: &'static str,
    function: fn() -> &'static str,
}

impl TaskMeta {
    /// `name` is the span name; `function` returns the fully qualified path.
    pub const fn new(name: &'static str, function: fn() -> &'static str) -> Self {
        Self { name, function }
    }

    /// The span / task name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    fn start(&'static self) -> Context {
        Context::map_current(|cx| {
            let frame = Frame::of(cx).cloned().unwrap_or_default();
            let parent = parent_context(cx, &frame.map);
            let parent = parent.as_ref().unwrap_or(cx);
            let mut attributes = Vec::with_capacity(4);
            attributes.push(KeyValue::new(TASK_NAME, self.name));
            attributes.push(KeyValue::new(CODE_FUNCTION_NAME, (self.function)()));
            if let Some(run) = frame.run_attributes() {
                attributes.extend(run);
            }
            let frame = Frame {
                task: Some(self.name),
                ..frame
            };
            start_span(Cow::Borrowed(self.name), attributes, parent, frame)
        })
    }
}

pin_project_lite::pin_project! {
    /// The future of a `#[traced]` call.
    #[must_use = "futures do nothing unless polled"]
    pub struct Task<F, R> {
        meta: &'static TaskMeta,
        active: Option<Active>,
        record: Option<R>,
        #[pin]
        future: F,
    }
}

impl<F, R> Task<F, R> {
    pub(crate) fn new(meta: &'static TaskMeta, future: F, record: R) -> Self {
        Self {
            meta,
            active: None,
            record: Some(record),
            future,
        }
    }
}

impl<F, R> Future for Task<F, R>
where
    F: Future,
    R: FnOnce(&F::Output, &SpanRef<'_>),
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, task: &mut std::task::Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let meta = *this.meta;
        let active = this.active.get_or_insert_with(|| Active::new(meta.start()));
        let out = std::task::ready!(active.poll(this.future, task));
        if let Some(record) = this.record.take() {
            let span = active.context().span();
            if span.is_recording() {
                record(&out, &span);
            }
        }
        active.end();
        Poll::Ready(out)
    }
}
