//! The task span (hot path): start the span where the task is first polled,
//! under the caller it captured when it was called (see `carry`), make it
//! and the task's frame current on every poll, end it on
//! completion, panic or drop. A task whose span would not record (no
//! provider, or an unsampled parent under a parent-based sampler) starts
//! none and only carries its frame.
//!
//! [`TaskStart`] decides the parent and starts the span (with
//! [`backend::open`](crate::backend)), `active` keeps it for the length of
//! the task, `parent` says what a call may name as its parent or links.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::Poll;
use std::time::Duration;

use opentelemetry::trace::{Link, SpanBuilder, SpanKind, SpanRef, TraceContextExt};
use opentelemetry::{Context, KeyValue};

use crate::attributes::{CODE_FUNCTION_NAME, MAP_INDEX, QUEUE_WAIT_MS, TASK_NAME};
use crate::backend::{Backend, open};
use crate::capture::{self, Captured};
use crate::carry::{Caller, Resolved};
use crate::custom_context::{CustomContext, parent_context};
use crate::frame::{Frame, FrameInner, MapItem, current};
use crate::metrics::{Site, TaskTimer};
use crate::outcome::Outcome;

mod active;
mod call;
mod parent;

pub(crate) use active::Active;
pub use call::Call;
pub use parent::{IntoLinks, IntoParent};

/// Static facts about a `#[traced]` function, emitted by the macro.
#[derive(Debug)]
pub struct TaskMeta {
    name: &'static str,
    function: fn() -> &'static str,
    kind: SpanKind,
    metrics: Site,
}

impl TaskMeta {
    /// `name` is the span name; `function` returns the fully qualified path.
    pub const fn new(name: &'static str, function: fn() -> &'static str) -> Self {
        Self {
            name,
            function,
            kind: SpanKind::Internal,
            metrics: Site::new(),
        }
    }

    /// The span kind (default internal).
    pub const fn kind(mut self, kind: SpanKind) -> Self {
        self.kind = kind;
        self
    }

    /// The span / task name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Starts a call first polled where it was made, whose span would be
    /// dropped ([`Caller::take_skipped_here`]): it only carries the caller's
    /// frame `inner`, the one current here, (and its timer); nothing else is
    /// built.
    #[inline]
    pub(crate) fn start_skipped(
        &'static self,
        inner: Arc<FrameInner>,
        current: Option<&Frame>,
    ) -> Started {
        if let Some(run) = &inner.run {
            current::count_started(run);
        }
        let top_level = current.is_none_or(|parent| parent.task.is_none());
        let mut started = Started::skipped(inner, self.name, None, top_level);
        if !crate::metrics::is_off() {
            started.active.timer = self.timer(current);
        }
        started
    }

    /// The timer of a task without a span, begun now (with its wait for a
    /// `map` slot, when it has one).
    #[inline(never)]
    fn timer(&'static self, current: Option<&Frame>) -> Option<TaskTimer> {
        let mut timer = crate::metrics::task_started(Some(&self.metrics), self.name)?;
        if let Some(item) = current.and_then(|parent| parent.item) {
            timer.queue_wait(item.queue_wait());
        }
        timer.begin();
        Some(timer)
    }
}

pin_project_lite::pin_project! {
    /// The future of a `#[traced]` call: the started span and the body,
    /// and what reads the body's output when it ends.
    #[must_use = "futures do nothing unless polled"]
    pub struct Task<F, O> {
        active: Active,
        frame: Frame,
        top_level: bool,
        outcome: Option<O>,
        #[pin]
        future: F,
    }
}

impl<F, O> Future for Task<F, O>
where
    F: Future,
    O: Outcome<F::Output>,
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
        match this.outcome.take() {
            // No span: only an error counts, against the run and the timer.
            Some(outcome) if !active.owns_span() => {
                let error = outcome.is_error(&out);
                if error {
                    if let Some(run) = this.frame.run() {
                        run.task_failed(*this.top_level);
                    }
                }
                active.end_unspanned(error);
            }
            Some(outcome) => active.finish(
                &out,
                |out, span| outcome.record(out, span),
                this.frame.run(),
                *this.top_level,
            ),
            None => active.end(),
        }
        Poll::Ready(out)
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
            kind: meta.kind.clone(),
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
        current::with(|current| self.start_from_in(caller, current))
    }

    /// [`start_from`](Self::start_from) under `current`.
    #[inline]
    fn start_from_in(self, caller: Caller, current: Option<&Frame>) -> Started {
        if caller.is_here(current) {
            let waited = caller.waited();
            // Decided at the call, under this same frame and span.
            let skips =
                caller.skips() && self.parent.is_none() && self.links.is_empty() && !self.new_trace;
            // Here, the captured frame is the current one: reuse it.
            match (current, caller.into_frame()) {
                (Some(parent), Some(inner)) => self.start_under(
                    inner,
                    parent.task.is_none(),
                    parent.item,
                    None,
                    waited,
                    skips,
                ),
                _ => self.start_in(current, waited),
            }
        } else {
            self.start_elsewhere(caller, current)
        }
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
                let cx = cx.unwrap_or_else(Context::new);
                self.start_under(inner, top_level, None, Some(&cx), waited, false)
            }
        }
    }

    #[inline]
    fn start_in(self, frame: Option<&Frame>, waited: Option<Duration>) -> Started {
        match frame {
            Some(parent) => self.start_under(
                parent.inner.clone(),
                parent.task.is_none(),
                parent.item,
                None,
                waited,
                false,
            ),
            None => self.start_under(
                FrameInner::new(CustomContext::new(), None).into(),
                true,
                None,
                None,
                waited,
                false,
            ),
        }
    }

    /// `caller`: the context captured at the call, when the task runs under
    /// it instead of the one current here. `skips`: the call already found
    /// that a span here would be dropped with nothing changed.
    #[inline]
    fn start_under(
        self,
        inner: Arc<FrameInner>,
        top_level: bool,
        item: Option<MapItem>,
        caller: Option<&Context>,
        waited: Option<Duration>,
        skips: bool,
    ) -> Started {
        if let Some(run) = &inner.run {
            run.tasks.fetch_add(1, Ordering::Relaxed);
        }
        let timer = crate::metrics::task_started(self.site, self.name);
        let Some(mut timer) = timer else {
            if skips || matches!(inner.backend(), Backend::Noop) {
                // Nothing records: the map is all there is to carry.
                return Started::skipped(inner, self.name, caller.cloned(), top_level);
            }
            return self.open_under(inner, top_level, item, caller, waited, None);
        };
        if let Some(wait) = item.map(MapItem::queue_wait).or(waited) {
            timer.queue_wait(wait);
        }
        let mut started = if skips {
            Started::skipped(inner, self.name, caller.cloned(), top_level)
        } else {
            self.open_under(inner, top_level, item, caller, waited, Some(&mut timer))
        };
        timer.begin();
        started.active.timer = Some(timer);
        started
    }

    /// Starts the span; a task measured by `timer` starts it at the instant
    /// its timer begins.
    #[inline(never)]
    fn open_under(
        self,
        inner: Arc<FrameInner>,
        top_level: bool,
        item: Option<MapItem>,
        caller: Option<&Context>,
        waited: Option<Duration>,
        timer: Option<&mut TaskTimer>,
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
            return Started::skipped(inner, name, caller.cloned(), top_level);
        }
        let opened = Context::map_current(|current| {
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
                    let map = changed.then(|| inner.map.with_current_span());
                    return Opening::Skipped { cx, map };
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
                attributes.push(KeyValue::new(MAP_INDEX, item.index() as i64));
                attributes.push(KeyValue::new(
                    QUEUE_WAIT_MS,
                    item.queue_wait().as_secs_f64() * 1000.0,
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
                crate::run_state::on_task_start(run, &mut attributes);
            }
            crate::openinference::on_task_start(&inner.map, inner.run.is_some(), &mut attributes);
            let tracked = crate::running::before_start(&attributes);
            let builder = SpanBuilder {
                span_kind: Some(kind),
                attributes: Some(attributes),
                links: (!links.is_empty()).then_some(links),
                start_time: timer.map(TaskTimer::begin_wall),
                ..SpanBuilder::from_name(name)
            };
            let Some(opened) = open(backend, builder, parent) else {
                return Opening::Skipped {
                    cx: caller.cloned(),
                    map: None,
                };
            };
            if opened.recording {
                let run_id = inner.run.as_ref().and_then(|run| run.id_value());
                crate::running::started(&opened.cx, parent, name.into(), run_id, tracked);
            }
            Opening::Span {
                map: opened.child_map(&inner.map),
                recording: opened.recording,
                cx: opened.cx,
            }
        });
        match opened {
            Opening::Span { cx, recording, map } => Started {
                recording,
                active: Active::span(cx),
                frame: Frame {
                    inner: match map {
                        Some(map) => Arc::new(inner.with_map(map)),
                        None => inner,
                    },
                    task: Some(name),
                    item: None,
                },
                top_level,
                inputs: Default::default(),
            },
            Opening::Skipped { cx, map } => {
                let inner = match map {
                    Some(map) => Arc::new(inner.with_map(map)),
                    None => inner,
                };
                Started::skipped(inner, name, cx, top_level)
            }
        }
    }
}

/// What a task's start under the current context came to.
enum Opening {
    /// A span: its context, whether it records, and the map its children
    /// get (if it changed).
    Span {
        cx: Context,
        recording: bool,
        map: Option<CustomContext>,
    },
    /// No span: the context to attach (if it changed) and the map to carry
    /// (if it changed).
    Skipped {
        cx: Option<Context>,
        map: Option<CustomContext>,
    },
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
            inputs: Default::default(),
        }
    }

    /// Whether the span records (sampled and a provider installed).
    pub fn is_recording(&self) -> bool {
        self.recording
    }

    /// Records `fields(key = value)`.
    pub fn field(&mut self, key: &'static str, value: Captured) {
        let config = capture::config();
        self.set(capture::attribute(key.to_owned(), value, &[], &config));
    }

    /// Records an argument as `flowtrace.input.<name>`; `redact` lists dotted
    /// paths inside it to hide (`""` hides it whole).
    pub fn input(
        &mut self,
        name: &'static str,
        value: Option<impl Into<Captured>>,
        redact: &[&str],
    ) {
        if let Some(value) = value.map(Into::into) {
            let config = capture::config();
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

    /// Runs an async body under the span; `outcome` reads its output.
    #[inline]
    pub fn run<F, O>(mut self, future: F, outcome: O) -> Task<F, O>
    where
        F: Future,
        O: Outcome<F::Output>,
    {
        if !self.inputs.is_empty() {
            self.inputs.flush(&self.active.span_ref());
        }
        Task {
            active: self.active,
            frame: self.frame,
            top_level: self.top_level,
            outcome: Some(outcome),
            future,
        }
    }

    /// Runs a synchronous body under the span (`#[traced]` on a plain
    /// `fn`); `outcome` reads its output.
    #[inline]
    pub fn call<T, O: Outcome<T>>(self, body: impl FnOnce() -> T, outcome: O) -> T {
        self.run_sync(body, move |out: &T, span: &SpanRef<'_>| {
            outcome.record(out, span)
        })
    }

    /// Runs a synchronous body under the span, `record` reading its output.
    fn run_sync<T, R>(self, body: impl FnOnce() -> T, record: R) -> T
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
        if !inputs.is_empty() {
            inputs.flush(&active.span_ref());
        }
        let out = {
            let _frame = current::enter(&frame);
            active.call(body)
        };
        active.finish(&out, record, frame.run(), top_level);
        out
    }
}
