//! The task span (hot path): start the span where the task is first polled,
//! make it and the child map current on every poll, end it on completion,
//! panic or drop.

use std::borrow::Cow;
use std::collections::HashMap;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, LazyLock};
use std::task::Poll;

use opentelemetry::trace::{
    Link, Span as _, SpanBuilder, SpanContext, SpanKind, SpanRef, Status, TraceContextExt, Tracer,
    TracerProvider as _,
};
use opentelemetry::{Context, InstrumentationScope, KeyValue, global};

use crate::capture::{self, CaptureConfig, Captured};
use crate::context::{CustomContext, Frame, parent_context};

/// The attribute naming the task.
pub const TASK_NAME: &str = "flowtrace.task.name";
/// The semantic-convention attribute for the fully qualified function.
pub const CODE_FUNCTION_NAME: &str = "code.function.name";
/// Set on a task or run span whose future was dropped before it completed.
pub const TASK_CANCELLED: &str = "flowtrace.task.cancelled";
/// The position of a task in a `flowtrace::map` fan-out.
pub const MAP_INDEX: &str = "flowtrace.map.index";
/// How long a `flowtrace::map` item waited for a concurrency slot.
pub const QUEUE_WAIT_MS: &str = "flowtrace.task.queue_wait_ms";

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
    frame: Frame,
) -> Context {
    let builder = SpanBuilder::from_name(name)
        .with_kind(SpanKind::Internal)
        .with_attributes(attributes);
    let span = tracer().build_with_context(builder, parent);
    context_with(parent, span, frame)
}

pub(crate) fn context_with(parent: &Context, span: global::BoxedSpan, mut frame: Frame) -> Context {
    let mut sc = span.span_context().clone();
    // W3C Level 2: a span the sampler dropped still passes on the parent's
    // random-trace-id flag, which the SDK clears.
    if let Some(fixed) = crate::propagation::random_flag_fix(parent.span().span_context(), &sc) {
        sc = fixed;
    }
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
        self.call(|| future.poll(task))
    }

    /// Calls a synchronous body with this context current; a panic is
    /// recorded like in [`poll`](Self::poll).
    pub(crate) fn call<T>(&mut self, body: impl FnOnce() -> T) -> T {
        let called = {
            let _guard = self.cx.clone().attach();
            catch_unwind(AssertUnwindSafe(body))
        };
        match called {
            Ok(out) => out,
            Err(payload) => {
                let span = self.cx.span();
                record_exception(&span, "panic", panic_message(&*payload));
                self.end();
                resume_unwind(payload)
            }
        }
    }

    /// Records the outcome (the recorder says whether it was an error) and
    /// ends the span; an error counts against the run.
    pub(crate) fn finish<T, R>(&mut self, out: &T, record: R, top_level: bool)
    where
        R: FnOnce(&T, &SpanRef<'_>) -> bool,
    {
        let failed = record(out, &self.cx.span());
        if failed {
            if let Some(run) = Frame::of(&self.cx).and_then(|f| f.run.as_deref()) {
                run.task_failed(top_level);
            }
        }
        self.end();
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
}

pin_project_lite::pin_project! {
    /// The future of a `#[traced]` call: the started span and the body.
    #[must_use = "futures do nothing unless polled"]
    pub struct Task<F, R> {
        active: Active,
        top_level: bool,
        record: Option<R>,
        #[pin]
        future: F,
    }
}

impl<F, R> Future for Task<F, R>
where
    F: Future,
    R: FnOnce(&F::Output, &SpanRef<'_>) -> bool,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, task: &mut std::task::Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let active = this.active;
        let out = std::task::ready!(active.poll(this.future, task));
        if let Some(record) = this.record.take() {
            active.finish(&out, record, *this.top_level);
        }
        active.end();
        Poll::Ready(out)
    }
}

/// What can be an explicit parent (`#[traced(parent = ..)]`): a [`Context`],
/// a [`SpanContext`], a carrier map (its `traceparent`), or `None` for a root.
pub trait IntoParent {
    /// The context to parent the span on.
    fn into_parent(self) -> Context;
}

impl IntoParent for Context {
    fn into_parent(self) -> Context {
        self
    }
}

impl IntoParent for &Context {
    fn into_parent(self) -> Context {
        self.clone()
    }
}

impl IntoParent for SpanContext {
    fn into_parent(self) -> Context {
        (&self).into_parent()
    }
}

impl IntoParent for &SpanContext {
    fn into_parent(self) -> Context {
        if self.is_valid() {
            Context::new().with_remote_span_context(self.clone())
        } else {
            Context::new()
        }
    }
}

impl IntoParent for &CustomContext {
    fn into_parent(self) -> Context {
        crate::propagation::extract_with_context(&Context::new(), self)
    }
}

impl IntoParent for CustomContext {
    fn into_parent(self) -> Context {
        (&self).into_parent()
    }
}

impl IntoParent for &HashMap<String, String> {
    fn into_parent(self) -> Context {
        crate::propagation::extract_with_context(&Context::new(), self)
    }
}

impl IntoParent for HashMap<String, String> {
    fn into_parent(self) -> Context {
        (&self).into_parent()
    }
}

impl<T: IntoParent> IntoParent for Option<T> {
    fn into_parent(self) -> Context {
        self.map_or_else(Context::new, IntoParent::into_parent)
    }
}

/// What `#[traced(follows_from = ..)]` links to: one or many span contexts,
/// contexts or carrier maps; invalid ones are skipped.
pub trait IntoLinks {
    /// Appends the links to `links`.
    fn push_links(self, links: &mut Vec<Link>);
}

impl<T: IntoParent> IntoLinks for T {
    fn push_links(self, links: &mut Vec<Link>) {
        let cx = self.into_parent();
        let sc = cx.span().span_context().clone();
        if sc.is_valid() {
            links.push(Link::with_context(sc));
        }
    }
}

impl<T: IntoParent> IntoLinks for Vec<T> {
    fn push_links(self, links: &mut Vec<Link>) {
        self.into_iter().for_each(|item| item.push_links(links));
    }
}

impl<T: IntoParent, const N: usize> IntoLinks for [T; N] {
    fn push_links(self, links: &mut Vec<Link>) {
        self.into_iter().for_each(|item| item.push_links(links));
    }
}

/// The options of one `#[traced]` call, set before its span starts.
pub struct TaskStart {
    name: &'static str,
    function: Option<fn() -> &'static str>,
    kind: SpanKind,
    parent: Option<Context>,
    links: Vec<Link>,
    new_trace: bool,
}

impl TaskStart {
    /// Defaults: kind internal, parent from the map / current context.
    pub fn new(meta: &'static TaskMeta) -> Self {
        Self {
            name: meta.name,
            function: Some(meta.function),
            kind: SpanKind::Internal,
            parent: None,
            links: Vec::new(),
            new_trace: false,
        }
    }

    /// A task with only a name (no `code.function.name`).
    pub fn named(name: &'static str) -> Self {
        Self {
            name,
            function: None,
            kind: SpanKind::Internal,
            parent: None,
            links: Vec::new(),
            new_trace: false,
        }
    }

    /// The span kind.
    pub fn kind(mut self, kind: SpanKind) -> Self {
        self.kind = kind;
        self
    }

    /// An explicit parent, overriding the map.
    pub fn parent(mut self, parent: impl IntoParent) -> Self {
        self.parent = Some(parent.into_parent());
        self
    }

    /// Links to other spans.
    pub fn follows_from(mut self, links: impl IntoLinks) -> Self {
        links.push_links(&mut self.links);
        self
    }

    /// Starts a new trace, linking the parent it would have had.
    pub fn new_trace(mut self) -> Self {
        self.new_trace = true;
        self
    }

    /// Starts the span (on the current thread's context).
    pub fn start(self) -> Started {
        let Self {
            name,
            function,
            kind,
            parent,
            mut links,
            new_trace,
        } = self;
        Context::map_current(|cx| {
            let frame = Frame::of(cx).cloned().unwrap_or_default();
            let parent = match parent {
                Some(explicit) => explicit,
                None => parent_context(cx, &frame.map).unwrap_or_else(|| cx.clone()),
            };
            let parent = if new_trace {
                let sc = parent.span().span_context().clone();
                if sc.is_valid() {
                    links.push(Link::with_context(sc));
                }
                Context::new()
            } else {
                parent
            };
            let top_level = frame.task.is_none();
            if let Some(run) = &frame.run {
                run.tasks.fetch_add(1, Ordering::Relaxed);
            }
            let mut attributes = Vec::with_capacity(6);
            attributes.push(KeyValue::new(TASK_NAME, name));
            if let Some(item) = frame.item {
                attributes.push(KeyValue::new(MAP_INDEX, item.index as i64));
                attributes.push(KeyValue::new(
                    QUEUE_WAIT_MS,
                    item.queue_wait.as_secs_f64() * 1000.0,
                ));
            }
            if let Some(function) = function {
                attributes.push(KeyValue::new(CODE_FUNCTION_NAME, function()));
            }
            if let Some(run) = frame.run_attributes() {
                attributes.extend(run);
            }
            let mut builder = SpanBuilder::from_name(name)
                .with_kind(kind)
                .with_attributes(attributes);
            if !links.is_empty() {
                builder = builder.with_links(links);
            }
            let mut span = tracer().build_with_context(builder, &parent);
            crate::annotations::on_task_start(&frame, &mut span);
            Started {
                recording: span.is_recording(),
                span,
                parent,
                frame: Frame {
                    task: Some(name),
                    item: None,
                    ..frame
                },
                top_level,
                config: None,
            }
        })
    }
}

/// A started task span, before its body runs: the macro records fields and
/// inputs on it (only when it records), then runs the body.
pub struct Started {
    span: global::BoxedSpan,
    parent: Context,
    frame: Frame,
    recording: bool,
    top_level: bool,
    config: Option<Arc<CaptureConfig>>,
}

impl Started {
    /// Whether the span records (sampled and a provider installed).
    pub fn is_recording(&self) -> bool {
        self.recording
    }

    fn config(&mut self) -> Arc<CaptureConfig> {
        self.config.get_or_insert_with(capture::config).clone()
    }

    /// Records `fields(key = value)`.
    pub fn field(&mut self, key: &'static str, value: Captured) {
        let config = self.config();
        self.span
            .set_attribute(capture::attribute(key.to_owned(), value, &[], &config));
    }

    /// Records an argument as `flowtrace.input.<name>`; `redact` lists dotted
    /// paths inside it to hide (`""` hides it whole).
    pub fn input(&mut self, name: &'static str, value: Option<Captured>, redact: &[&str]) {
        if let Some(value) = value {
            let config = self.config();
            let key = format!("{}{name}", capture::INPUT_PREFIX);
            self.span
                .set_attribute(capture::attribute(key, value, redact, &config));
        }
    }

    /// Runs an async body under the span.
    pub fn task<F, R>(self, future: F, record: R) -> Task<F, R>
    where
        F: Future,
        R: FnOnce(&F::Output, &SpanRef<'_>) -> bool,
    {
        Task {
            active: Active::new(context_with(&self.parent, self.span, self.frame)),
            top_level: self.top_level,
            record: Some(record),
            future,
        }
    }

    /// Runs a synchronous body under the span (`#[traced]` on a plain `fn`).
    pub fn run_sync<T, R>(self, body: impl FnOnce() -> T, record: R) -> T
    where
        R: FnOnce(&T, &SpanRef<'_>) -> bool,
    {
        let mut active = Active::new(context_with(&self.parent, self.span, self.frame));
        let out = active.call(body);
        active.finish(&out, record, self.top_level);
        out
    }
}

/// Records the return value as `flowtrace.output`.
pub(crate) fn record_output(span: &SpanRef<'_>, value: Option<Captured>) {
    if let Some(value) = value {
        let config = capture::config();
        span.set_attribute(capture::attribute(
            capture::OUTPUT.to_owned(),
            value,
            &[],
            &config,
        ));
    }
}
