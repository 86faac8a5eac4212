//! The task span (hot path): start the span where the task is first polled,
//! under the caller it captured when it was called (see `carry`), make it
//! and the task's frame current on every poll, end it on
//! completion, panic or drop. A task whose span would not record (no
//! provider, or an unsampled parent under a parent-based sampler) starts
//! none and only carries its frame.

use std::collections::HashMap;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, LazyLock};
use std::task::Poll;
use std::time::{Duration, SystemTime};

use opentelemetry::trace::{
    Link, SpanBuilder, SpanContext, SpanKind, SpanRef, TraceContextExt, Tracer,
};
use opentelemetry::{Context, KeyValue};

use crate::backend::Backend;
use crate::capture::{self, CaptureConfig, Captured};
use crate::carry::{Caller, Resolved};
use crate::context::{CustomContext, Frame, FrameInner, MapItem, RunInfo, parent_context};
use crate::current;
use crate::metrics::{Outcome, Site, TaskTimer};

use crate::attributes::{CODE_FUNCTION_NAME, MAP_INDEX, QUEUE_WAIT_MS, TASK_CANCELLED, TASK_NAME};

/// A context holding no span: what an outcome recorder sees for a task that
/// started none.
static NO_SPAN: LazyLock<Context> = LazyLock::new(Context::new);

/// The tracer of the global provider, for spans flowtrace starts outside
/// the task path (HTTP server and client spans, feedback).
pub(crate) fn tracer() -> opentelemetry::global::BoxedTracer {
    use opentelemetry::trace::TracerProvider as _;
    opentelemetry::global::tracer_provider().tracer_with_scope(crate::backend::SCOPE.clone())
}

/// A span started under `parent`, put into a context with it.
pub(crate) struct Opened {
    pub(crate) cx: Context,
    pub(crate) recording: bool,
    /// W3C Level 2: a span the sampler dropped still passes on the parent's
    /// random-trace-id flag, which the SDK clears; this is the span context
    /// a child map carries then.
    pub(crate) fixed: Option<SpanContext>,
}

impl Opened {
    /// The map a task running under this span passes on.
    pub(crate) fn child_map(&self, map: &CustomContext) -> Option<CustomContext> {
        match &self.fixed {
            Some(sc) => Some(map.with_span_context(sc.clone())),
            None if map.follows_current_span() => None,
            None => Some(map.with_current_span()),
        }
    }
}

/// Starts a span with `backend`'s tracer; `None` with no provider.
pub(crate) fn open(backend: &Backend, builder: SpanBuilder, parent: &Context) -> Option<Opened> {
    fn opened<S: opentelemetry::trace::Span + Send + Sync + 'static>(
        span: S,
        parent: &Context,
    ) -> Opened {
        let recording = span.is_recording();
        let sc = span.span_context();
        let fixed = if sc.is_sampled() {
            None
        } else {
            crate::propagation::random_flag_fix(parent.span().span_context(), sc)
        };
        Opened {
            cx: parent.with_span(span),
            recording,
            fixed,
        }
    }
    match backend {
        Backend::Noop => None,
        Backend::Sdk { tracer, .. } => {
            Some(opened(tracer.build_with_context(builder, parent), parent))
        }
        Backend::Global(tracer) => Some(opened(tracer.build_with_context(builder, parent), parent)),
    }
}

/// Records an error outcome: see [`crate::exception::record`].
pub(crate) fn record_exception(span: &SpanRef<'_>, exception_type: &str, message: String) {
    crate::exception::record(span, exception_type, message, None);
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

/// The context a task's future is polled under, and its span (if it
/// started one).
pub(crate) struct Active {
    /// `None`: the task changed nothing in the OpenTelemetry context.
    cx: Option<Context>,
    /// Whether `cx` holds a span this task started and must end.
    owns_span: bool,
    ended: bool,
    /// The task's metrics, when a meter provider is installed.
    timer: Option<TaskTimer>,
}

impl Active {
    /// A started span's context.
    pub(crate) fn span(cx: Context) -> Self {
        Self {
            cx: Some(cx),
            owns_span: true,
            ended: false,
            timer: None,
        }
    }

    /// No span; `cx`, if any, is attached for each poll.
    pub(crate) fn without_span(cx: Option<Context>) -> Self {
        Self {
            cx,
            owns_span: false,
            ended: false,
            timer: None,
        }
    }

    /// The context the future runs under (the current one when `None`).
    pub(crate) fn context(&self) -> Option<&Context> {
        self.cx.as_ref()
    }

    /// The task's span, or no span.
    pub(crate) fn span_ref(&self) -> SpanRef<'_> {
        match &self.cx {
            Some(cx) if self.owns_span => cx.span(),
            _ => NO_SPAN.span(),
        }
    }

    /// Polls `future` with this context current. A panic is recorded on the
    /// span, the span ended, and the panic resumed.
    #[inline]
    pub(crate) fn poll<F: Future>(
        &mut self,
        future: Pin<&mut F>,
        task: &mut std::task::Context<'_>,
    ) -> Poll<F::Output> {
        self.call(|| future.poll(task))
    }

    /// Calls a synchronous body with this context current; a panic is
    /// recorded like in [`poll`](Self::poll).
    #[inline]
    pub(crate) fn call<T>(&mut self, body: impl FnOnce() -> T) -> T {
        let called = {
            let _guard = self.cx.clone().map(Context::attach);
            catch_unwind(AssertUnwindSafe(body))
        };
        match called {
            Ok(out) => out,
            Err(payload) => {
                crate::exception::record(&self.span_ref(), "panic", panic_message(&*payload), None);
                self.end_as(Some(Outcome::Error));
                resume_unwind(payload)
            }
        }
    }

    /// Records the outcome (the recorder says whether it was an error) and
    /// ends the span; an error counts against the run.
    pub(crate) fn finish<T, R>(
        &mut self,
        out: &T,
        record: R,
        run: Option<&RunInfo>,
        top_level: bool,
    ) where
        R: FnOnce(&T, &SpanRef<'_>) -> bool,
    {
        let error = record(out, &self.span_ref());
        if error {
            if let Some(run) = run {
                run.task_failed(top_level);
            }
        }
        let outcome = self.timer.as_ref().map(|timer| timer.outcome(error));
        self.end_as(outcome);
    }

    pub(crate) fn end(&mut self) {
        self.end_as(None);
    }

    /// Ends the span and the task's metrics (`outcome`: `ok` when `None`),
    /// at one instant.
    fn end_as(&mut self, outcome: Option<Outcome>) {
        let timer = self.timer.take();
        let now = timer.as_ref().map(|_| SystemTime::now());
        self.end_at(now);
        if let (Some(timer), Some(end)) = (timer, now) {
            let span = self.span_ref();
            let sc = span.span_context();
            let sampled = (self.owns_span && sc.is_sampled()).then_some(sc);
            timer.end(outcome.unwrap_or(Outcome::Ok), end, sampled);
        }
    }

    /// Ends the span at `end` (now when `None`).
    pub(crate) fn end_at(&mut self, end: Option<SystemTime>) {
        if self.owns_span && !self.ended {
            self.ended = true;
            if let Some(cx) = &self.cx {
                crate::running::ended(cx);
                match end {
                    Some(end) => cx.span().end_with_timestamp(end),
                    None => cx.span().end(),
                }
            }
        }
    }
}

impl Drop for Active {
    fn drop(&mut self) {
        if self.owns_span && !self.ended {
            let span = self.span_ref();
            if span.is_recording() {
                span.set_attribute(KeyValue::new(TASK_CANCELLED, true));
            }
        }
        if (self.owns_span && !self.ended) || self.timer.is_some() {
            self.end_as(Some(Outcome::Cancelled));
        }
    }
}

/// Static facts about a `#[traced]` function, emitted by the macro.
#[derive(Debug)]
pub struct TaskMeta {
    name: &'static str,
    function: fn() -> &'static str,
    metrics: Site,
}

impl TaskMeta {
    /// `name` is the span name; `function` returns the fully qualified path.
    pub const fn new(name: &'static str, function: fn() -> &'static str) -> Self {
        Self {
            name,
            function,
            metrics: Site::new(),
        }
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
        frame: Frame,
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

    #[inline]
    fn poll(self: Pin<&mut Self>, task: &mut std::task::Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let active = this.active;
        let out = {
            let _frame = current::enter(this.frame);
            std::task::ready!(active.poll(this.future, task))
        };
        if let Some(record) = this.record.take() {
            active.finish(&out, record, this.frame.run(), *this.top_level);
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
    site: Option<&'static Site>,
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
            site: Some(&meta.metrics),
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
            site: None,
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
        current::with(|frame| self.start_in(frame, None))
    }

    /// Starts the span of a call that captured `caller` where it was made:
    /// under the caller, or under the frame current here when that is
    /// where the task belongs (see `carry`).
    #[inline]
    pub fn start_from(self, caller: Caller) -> Started {
        current::with(|current| {
            if caller.is_here(current) {
                let waited = caller.waited();
                self.start_in(current, waited)
            } else {
                self.start_elsewhere(caller, current)
            }
        })
    }

    /// [`start_from`](Self::start_from) for a task first polled away from
    /// its caller's frame.
    #[inline(never)]
    fn start_elsewhere(self, caller: Caller, current: Option<&Frame>) -> Started {
        match caller.resolve(current) {
            (Resolved::Current, waited) => self.start_in(current, waited),
            (
                Resolved::Caller {
                    inner,
                    top_level,
                    cx,
                },
                waited,
            ) => {
                let inner =
                    inner.unwrap_or_else(|| FrameInner::new(CustomContext::new(), None).into());
                self.start_under(&inner, top_level, None, Some(&cx), waited)
            }
        }
    }

    #[inline]
    fn start_in(self, frame: Option<&Frame>, waited: Option<Duration>) -> Started {
        match frame {
            Some(parent) => self.start_under(
                &parent.inner,
                parent.task.is_none(),
                parent.item,
                None,
                waited,
            ),
            None => self.start_under(
                &FrameInner::new(CustomContext::new(), None).into(),
                true,
                None,
                None,
                waited,
            ),
        }
    }

    /// `caller`: the context captured at the call, when the task runs under
    /// it instead of the one current here.
    fn start_under(
        self,
        inner: &Arc<FrameInner>,
        top_level: bool,
        item: Option<MapItem>,
        caller: Option<&Context>,
        waited: Option<Duration>,
    ) -> Started {
        if let Some(run) = &inner.run {
            run.tasks.fetch_add(1, Ordering::Relaxed);
        }
        let timer = crate::metrics::task_started(self.site, self.name);
        let Some(timer) = timer else {
            return self.open_under(inner, top_level, item, caller, waited, None);
        };
        if let Some(wait) = item.map(|item| item.queue_wait).or(waited) {
            timer.queue_wait(wait);
        }
        let mut started =
            self.open_under(inner, top_level, item, caller, waited, Some(timer.start()));
        started.active.timer = Some(timer);
        started
    }

    /// Starts the span (at `start_time`, now when `None`).
    fn open_under(
        self,
        inner: &Arc<FrameInner>,
        top_level: bool,
        item: Option<MapItem>,
        caller: Option<&Context>,
        waited: Option<Duration>,
        start_time: Option<SystemTime>,
    ) -> Started {
        let Self {
            name,
            function,
            kind,
            parent: explicit,
            mut links,
            new_trace,
            site: _,
        } = self;
        let backend = inner.backend();
        if matches!(backend, Backend::Noop) {
            // No provider: nothing records, the map is all there is to carry.
            return Started::skipped(inner.clone(), name, caller.cloned(), top_level);
        }
        Context::map_current(|current| {
            let cx = caller.unwrap_or(current);
            let from_map = match &explicit {
                Some(_) => None,
                None => parent_context(cx, &inner.map),
            };
            let explicit = explicit.map(|explicit| keep_baggage(cx, explicit));
            let parent = explicit.as_ref().or(from_map.as_ref()).unwrap_or(cx);
            if !new_trace && links.is_empty() {
                let span = parent.span();
                if backend.skips(span.span_context()) && !span.is_recording() {
                    // The sampler would drop this span: keep the parent
                    // current instead of starting one.
                    let changed = explicit.is_some() || from_map.is_some();
                    let cx = (changed || caller.is_some()).then(|| parent.clone());
                    let inner = if changed {
                        Arc::new(inner.with_map(inner.map.with_current_span()))
                    } else {
                        inner.clone()
                    };
                    return Started::skipped(inner, name, cx, top_level);
                }
            }
            let root;
            let parent = if new_trace {
                let sc = parent.span().span_context().clone();
                if sc.is_valid() {
                    links.push(Link::with_context(sc));
                }
                root = keep_baggage(parent, Context::new());
                &root
            } else {
                parent
            };
            let run = inner.run.as_ref().and_then(|run| run.attributes.as_ref());
            // A map item's wait for its slot, else a spawned task's wait for
            // its first poll.
            let waited = waited.filter(|_| item.is_none());
            let capacity = 1
                + usize::from(function.is_some())
                + 2 * usize::from(item.is_some())
                + usize::from(waited.is_some())
                + run.map_or(0, |kv| kv.len() + crate::openinference::TASK_ATTRIBUTES);
            let mut attributes = Vec::with_capacity(capacity);
            attributes.push(KeyValue::new(TASK_NAME, name));
            if let Some(item) = item {
                attributes.push(KeyValue::new(MAP_INDEX, item.index as i64));
                attributes.push(KeyValue::new(
                    QUEUE_WAIT_MS,
                    item.queue_wait.as_secs_f64() * 1000.0,
                ));
            }
            if let Some(waited) = waited {
                attributes.push(KeyValue::new(QUEUE_WAIT_MS, waited.as_secs_f64() * 1000.0));
            }
            if let Some(function) = function {
                attributes.push(KeyValue::new(CODE_FUNCTION_NAME, function()));
            }
            if let Some(run) = run {
                attributes.extend(run.iter().cloned());
            }
            if let Some(run) = &inner.run {
                crate::annotations::on_task_start(run, &mut attributes);
            }
            crate::openinference::on_task_start(&inner.map, inner.run.is_some(), &mut attributes);
            let tracked = crate::running::before_start(&attributes);
            let builder = SpanBuilder {
                span_kind: Some(kind),
                attributes: Some(attributes),
                links: (!links.is_empty()).then_some(links),
                start_time,
                ..SpanBuilder::from_name(name)
            };
            let Some(opened) = open(backend, builder, parent) else {
                return Started::skipped(inner.clone(), name, caller.cloned(), top_level);
            };
            if opened.recording {
                let run_id = inner.run.as_ref().map(|run| run.id.as_str());
                crate::running::started(&opened.cx, parent, name, run_id, tracked);
            }
            let inner = match opened.child_map(&inner.map) {
                Some(map) => Arc::new(inner.with_map(map)),
                None => inner.clone(),
            };
            Started {
                recording: opened.recording,
                active: Active::span(opened.cx),
                frame: Frame {
                    inner,
                    task: Some(name),
                    item: None,
                },
                top_level,
                config: None,
                inputs: Default::default(),
            }
        })
    }
}

/// An explicit parent or a new trace keeps the caller's baggage: `cx`'s
/// entries under `to`'s own (those win).
pub(crate) fn keep_baggage(cx: &Context, to: Context) -> Context {
    use opentelemetry::baggage::BaggageExt as _;
    let current = cx.baggage();
    if current.is_empty() {
        return to;
    }
    let own = to.baggage();
    let merged: opentelemetry::baggage::Baggage = current
        .iter()
        .filter(|(key, _)| own.get(key.as_str()).is_none())
        .chain(own.iter())
        .map(|(key, (value, metadata))| (key.clone(), (value.clone(), metadata.clone())))
        .collect();
    to.with_baggage(merged)
}

/// A started task span, before its body runs: the macro records fields and
/// inputs on it (only when it records), then runs the body.
pub struct Started {
    active: Active,
    frame: Frame,
    recording: bool,
    top_level: bool,
    config: Option<Arc<CaptureConfig>>,
    inputs: crate::openinference::Inputs,
}

impl Started {
    fn skipped(
        inner: Arc<FrameInner>,
        name: &'static str,
        cx: Option<Context>,
        top_level: bool,
    ) -> Self {
        Self {
            active: Active::without_span(cx),
            frame: Frame {
                inner,
                task: Some(name),
                item: None,
            },
            recording: false,
            top_level,
            config: None,
            inputs: Default::default(),
        }
    }

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
        self.set(capture::attribute(key.to_owned(), value, &[], &config));
    }

    /// Records an argument as `flowtrace.input.<name>`; `redact` lists dotted
    /// paths inside it to hide (`""` hides it whole).
    pub fn input(&mut self, name: &'static str, value: Option<Captured>, redact: &[&str]) {
        if let Some(value) = value {
            let config = self.config();
            let key = format!("{}{name}", capture::INPUT_PREFIX);
            let kv = capture::attribute(key, value, redact, &config);
            self.inputs.push(name, &kv.value);
            self.set(kv);
        }
    }

    fn set(&self, attribute: KeyValue) {
        let span = self.active.span_ref();
        crate::running::attribute(span.span_context(), &attribute);
        span.set_attribute(attribute);
    }

    /// Runs an async body under the span.
    #[inline]
    pub fn task<F, R>(mut self, future: F, record: R) -> Task<F, R>
    where
        F: Future,
        R: FnOnce(&F::Output, &SpanRef<'_>) -> bool,
    {
        self.inputs.flush(&self.active.span_ref());
        Task {
            active: self.active,
            frame: self.frame,
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
        let Self {
            mut active,
            frame,
            top_level,
            mut inputs,
            ..
        } = self;
        inputs.flush(&active.span_ref());
        let out = {
            let _frame = current::enter(&frame);
            active.call(body)
        };
        active.finish(&out, record, frame.run(), top_level);
        out
    }
}

/// Records the return value as `flowtrace.output`.
pub(crate) fn record_output(span: &SpanRef<'_>, value: Option<Captured>) {
    if let Some(value) = value {
        let config = capture::config();
        let kv = capture::attribute(capture::OUTPUT.to_owned(), value, &[], &config);
        crate::openinference::on_output(span, &kv.value, &config);
        span.set_attribute(kv);
    }
}
