//! The `custom_context` map and the one value a task carries beside its
//! OpenTelemetry [`Context`].
//!
//! A task's state — its map, its run, its name — lives in a single
//! [`Frame`], kept in the task's future and made current for each poll
//! through one thread-local slot (`current`). The span lives in the
//! `Context` as usual, so `Context::current()` inside a task is its span.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::Poll;

use opentelemetry::Context;
use opentelemetry::KeyValue;
use opentelemetry::propagation::{Extractor, Injector};
use opentelemetry::trace::{SpanContext, TraceContextExt, TraceState};

use crate::backend::Backend;
use crate::current;
use crate::propagation::{self, BAGGAGE, TRACEPARENT, TRACESTATE};

#[path = "context_limits.rs"]
mod limits;

pub use limits::{ContextError, ContextErrorKind};

use crate::attributes::{RUN_ID, RUN_NAME};

/// The parent a map carries: kept parsed, rendered to strings only when read.
struct TraceSlot {
    span_context: SpanContext,
    traceparent: OnceLock<String>,
    tracestate: OnceLock<String>,
}

impl TraceSlot {
    fn new(span_context: SpanContext) -> Arc<Self> {
        Arc::new(Self {
            span_context,
            traceparent: OnceLock::new(),
            tracestate: OnceLock::new(),
        })
    }

    fn traceparent(&self) -> &str {
        self.traceparent
            .get_or_init(|| propagation::format_traceparent(&self.span_context))
    }

    fn tracestate(&self) -> Option<&str> {
        let state = self
            .tracestate
            .get_or_init(|| propagation::format_tracestate_of(&self.span_context));
        (!state.is_empty()).then_some(state.as_str())
    }
}

/// Where a map's parent (`traceparent` / `tracestate`) comes from.
#[derive(Clone, Default)]
enum Trace {
    #[default]
    None,
    /// A parsed parent, rendered to strings when read.
    Parsed(Arc<TraceSlot>),
    /// The current OpenTelemetry span: what a task's own map carries, so
    /// starting a task renders and allocates nothing. Only frames hold it;
    /// every map handed out is [`resolved`](CustomContext::resolved) first.
    /// Such a map never holds plain `traceparent` / `tracestate` entries.
    Current,
}

impl Trace {
    fn slot(&self) -> Option<&TraceSlot> {
        match self {
            Trace::Parsed(slot) => Some(slot),
            Trace::None | Trace::Current => None,
        }
    }
}

/// The flat `String → String` map a run carries across task boundaries.
///
/// Immutable and shared: cloning is two reference-count increments. A task
/// sees its caller's map plus what was scoped in; the `traceparent` /
/// `tracestate` entries always describe the current task (they are kept as a
/// parsed [`SpanContext`] and rendered only when read).
///
/// ```
/// use flowtrace::CustomContext;
///
/// let map = CustomContext::from_iter([("team", "search")]);
/// assert_eq!(map.get("team"), Some("search"));
/// assert_eq!(map.len(), 1);
/// let plain: std::collections::HashMap<String, String> = map.into();
/// assert_eq!(plain["team"], "search");
/// ```
#[derive(Clone, Default)]
pub struct CustomContext {
    /// Entries other than a valid `traceparent` / `tracestate`.
    entries: Arc<BTreeMap<String, String>>,
    trace: Trace,
}

impl CustomContext {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// The value under `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        if let Some(slot) = self.trace.slot() {
            match key {
                TRACEPARENT => return Some(slot.traceparent()),
                TRACESTATE => return slot.tracestate(),
                _ => {}
            }
        }
        self.entries.get(key).map(String::as_str)
    }

    /// Whether `key` has a value.
    pub fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        let trace = self
            .trace
            .slot()
            .map_or(0, |s| 1 + usize::from(s.tracestate().is_some()));
        self.entries.len() + trace
    }

    /// Whether the map has no entries.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// All entries: the user's in key order, then `traceparent` and
    /// `tracestate` when the map carries a parent.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        let trace = self.trace.slot().into_iter().flat_map(|slot| {
            std::iter::once((TRACEPARENT, slot.traceparent()))
                .chain(slot.tracestate().map(|s| (TRACESTATE, s)))
        });
        self.entries
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .chain(trace)
    }

    /// The keys, in the order of [`iter`](Self::iter).
    pub fn keys(&self) -> impl Iterator<Item = &str> + '_ {
        self.iter().map(|(k, _)| k)
    }

    /// A plain copy of the map.
    pub fn to_hash_map(&self) -> HashMap<String, String> {
        self.iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }

    /// The parent span context the map carries (its `traceparent` and
    /// `tracestate`), if any.
    pub fn span_context(&self) -> Option<&SpanContext> {
        self.trace.slot().map(|s| &s.span_context)
    }

    /// Most entries a map holds besides its parent (`traceparent`,
    /// `tracestate`); see [`merged`](Self::merged) for all limits.
    pub const MAX_ENTRIES: usize = limits::MAX_ENTRIES;
    /// Longest key, in bytes.
    pub const MAX_KEY_BYTES: usize = limits::MAX_KEY_BYTES;
    /// Longest value, in bytes (the W3C Baggage header limit).
    pub const MAX_VALUE_BYTES: usize = limits::MAX_VALUE_BYTES;
    /// Most bytes of all keys and values of one map together.
    pub const MAX_TOTAL_BYTES: usize = limits::MAX_TOTAL_BYTES;

    /// This map with `pairs` merged over it (innermost wins). A
    /// `traceparent` in `pairs` replaces the carried parent together with its
    /// `tracestate`; an invalid one is kept as a plain entry and carries no
    /// parent, as W3C Trace Context requires — unless the map already
    /// carries a valid parent, which an invalid value does not replace.
    ///
    /// Input may be hostile, so the map is bounded: a pair whose key is
    /// empty, holds control characters or is longer than
    /// [`MAX_KEY_BYTES`](Self::MAX_KEY_BYTES), whose value is longer than
    /// [`MAX_VALUE_BYTES`](Self::MAX_VALUE_BYTES), or that would make the
    /// map exceed [`MAX_ENTRIES`](Self::MAX_ENTRIES) entries or
    /// [`MAX_TOTAL_BYTES`](Self::MAX_TOTAL_BYTES) is skipped, and one
    /// `tracing` warning (target `flowtrace`) says how many and why.
    /// `traceparent`, `tracestate` and `baggage` are the runtime's keys in
    /// any letter case.
    ///
    /// ```
    /// use flowtrace::CustomContext;
    ///
    /// let hostile = (0..10_000).map(|i| (format!("k{i}"), "v".repeat(10)));
    /// let map = CustomContext::new().merged(hostile);
    /// assert_eq!(map.len(), CustomContext::MAX_ENTRIES);
    /// let map = map.merged([("big", "x".repeat(1 << 20))]);
    /// assert_eq!(map.get("big"), None, "a 1 MiB value is skipped");
    /// ```
    pub fn merged<I, K, V>(&self, pairs: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let (out, skipped) = self.merge(pairs);
        skipped.report();
        out
    }

    /// [`merged`](Self::merged), but a pair over a limit is an error that
    /// says which limit, instead of a skipped pair and a warning.
    ///
    /// ```
    /// use flowtrace::{ContextErrorKind, CustomContext};
    ///
    /// let err = CustomContext::new()
    ///     .try_merged([("big", "x".repeat(CustomContext::MAX_VALUE_BYTES + 1))])
    ///     .unwrap_err();
    /// assert_eq!(err.kind(), ContextErrorKind::ValueTooLong);
    /// assert!(err.to_string().contains("value longer than 8192 bytes"), "{err}");
    /// ```
    pub fn try_merged<I, K, V>(&self, pairs: I) -> Result<Self, ContextError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let (out, skipped) = self.merge(pairs);
        match skipped.first_error() {
            Some(err) => Err(err),
            None => Ok(out),
        }
    }

    fn merge<I, K, V>(&self, pairs: I) -> (Self, limits::Rejections)
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let mut entries: Option<(BTreeMap<String, String>, usize)> = None;
        let mut traceparent = None;
        let mut tracestate = None;
        let mut skipped = limits::Rejections::default();
        for (k, v) in pairs {
            let (k, v) = (k.into(), v.into());
            if let Err(why) = limits::check_pair(&k, &v) {
                skipped.note(why, &k);
                continue;
            }
            let k = limits::canonical_key(k, &[TRACEPARENT, TRACESTATE, BAGGAGE]);
            match k.as_str() {
                TRACEPARENT => traceparent = Some(v),
                TRACESTATE => tracestate = Some(v),
                _ => {
                    let (map, total) = entries.get_or_insert_with(|| {
                        let total = self.entries.iter().map(|(k, v)| k.len() + v.len()).sum();
                        ((*self.entries).clone(), total)
                    });
                    let replaced = map.get(&k).map(|old| k.len() + old.len());
                    let after = *total - replaced.unwrap_or(0) + k.len() + v.len();
                    if replaced.is_none() && map.len() >= limits::MAX_ENTRIES {
                        skipped.note(limits::Rejection::TooManyEntries, &k);
                    } else if after > limits::MAX_TOTAL_BYTES {
                        skipped.note(limits::Rejection::MapTooLarge, &k);
                    } else {
                        *total = after;
                        map.insert(k, v);
                    }
                }
            }
        }
        let mut out = Self {
            entries: entries.map_or_else(|| self.entries.clone(), |(map, _)| Arc::new(map)),
            trace: self.trace.clone(),
        };
        if let Some(tp) = traceparent.take_if(|tp| {
            // An accident (garbage where a parent is carried) must not cut
            // the task off its trace; the parent stays.
            let keep_parent =
                !matches!(out.trace, Trace::None) && propagation::parse_traceparent(tp).is_err();
            if keep_parent {
                skipped.note(limits::Rejection::InvalidTraceparent, TRACEPARENT);
            }
            !keep_parent
        }) {
            match propagation::parse_traceparent(&tp) {
                Ok(sc) => {
                    let sc = match tracestate.take() {
                        Some(s) => propagation::with_tracestate_fields(sc, &[&s]),
                        None => propagation::with_trace_state(sc, TraceState::NONE),
                    };
                    out.drop_plain_trace_entries();
                    out.trace = Trace::Parsed(TraceSlot::new(sc));
                }
                Err(_) => {
                    out.trace = Trace::None;
                    limits::insert_within_budget(&mut out.entries, TRACEPARENT, tp, &mut skipped);
                    if let Some(ts) = tracestate.take() {
                        limits::insert_within_budget(
                            &mut out.entries,
                            TRACESTATE,
                            ts,
                            &mut skipped,
                        );
                    }
                }
            }
        }
        if let Some(ts) = tracestate {
            let parent = match &out.trace {
                Trace::Parsed(slot) => Some(slot.span_context.clone()),
                Trace::Current => Some(Context::map_current(|cx| cx.span().span_context().clone()))
                    .filter(SpanContext::is_valid),
                Trace::None => None,
            };
            match parent {
                Some(parent) => {
                    let sc = propagation::with_tracestate_fields(parent, &[&ts]);
                    out.trace = Trace::Parsed(TraceSlot::new(sc));
                }
                None => {
                    limits::insert_within_budget(&mut out.entries, TRACESTATE, ts, &mut skipped);
                }
            }
        }
        (out, skipped)
    }

    /// This map carrying `sc` as its parent.
    pub(crate) fn with_span_context(&self, sc: SpanContext) -> Self {
        let mut out = Self {
            entries: self.entries.clone(),
            trace: Trace::Parsed(TraceSlot::new(sc)),
        };
        out.drop_plain_trace_entries();
        out
    }

    /// This map with the current span as its parent (a task's child map).
    pub(crate) fn with_current_span(&self) -> Self {
        let mut out = Self {
            entries: self.entries.clone(),
            trace: Trace::Current,
        };
        out.drop_plain_trace_entries();
        out
    }

    /// Whether the parent is the current span (see [`Trace::Current`]).
    pub(crate) fn follows_current_span(&self) -> bool {
        matches!(self.trace, Trace::Current)
    }

    /// The map as user code sees it: a parent that is "the current span"
    /// becomes `current` (the span current where the map is read).
    pub(crate) fn resolved(&self, current: &SpanContext) -> Self {
        match self.trace {
            Trace::Current => Self {
                entries: self.entries.clone(),
                trace: if current.is_valid() {
                    Trace::Parsed(TraceSlot::new(current.clone()))
                } else {
                    Trace::None
                },
            },
            Trace::None | Trace::Parsed(_) => self.clone(),
        }
    }

    fn drop_plain_trace_entries(&mut self) {
        if self.entries.contains_key(TRACEPARENT) || self.entries.contains_key(TRACESTATE) {
            let entries = Arc::make_mut(&mut self.entries);
            entries.remove(TRACEPARENT);
            entries.remove(TRACESTATE);
        }
    }
}

impl fmt::Debug for CustomContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl PartialEq for CustomContext {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().all(|(k, v)| other.get(k) == Some(v))
    }
}

impl Eq for CustomContext {}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for CustomContext {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Self::new().merged(iter)
    }
}

impl From<CustomContext> for HashMap<String, String> {
    fn from(map: CustomContext) -> Self {
        map.to_hash_map()
    }
}

impl From<&CustomContext> for HashMap<String, String> {
    fn from(map: &CustomContext) -> Self {
        map.to_hash_map()
    }
}

impl From<HashMap<String, String>> for CustomContext {
    fn from(map: HashMap<String, String>) -> Self {
        map.into_iter().collect()
    }
}

impl<'a> IntoIterator for &'a CustomContext {
    type Item = (&'a str, &'a str);
    type IntoIter = Box<dyn Iterator<Item = (&'a str, &'a str)> + 'a>;

    fn into_iter(self) -> Self::IntoIter {
        Box::new(self.iter())
    }
}

impl Extractor for CustomContext {
    fn get(&self, key: &str) -> Option<&str> {
        CustomContext::get(self, key)
    }

    fn keys(&self) -> Vec<&str> {
        CustomContext::keys(self).collect()
    }
}

impl serde::Serialize for CustomContext {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.iter())
    }
}

/// Identity and tallies of a run, shared by every task of it.
#[derive(Debug, Default)]
pub(crate) struct RunInfo {
    pub(crate) id: String,
    pub(crate) name: String,
    /// `flowtrace.run.id` / `.name`, built once: cloning them per span is
    /// two reference-count increments, not two string copies.
    pub(crate) attributes: Option<[KeyValue; 2]>,
    /// Tasks started in the run.
    pub(crate) tasks: AtomicU64,
    /// Tasks that ended with an error.
    pub(crate) errors: AtomicU64,
    /// A task called directly by the run failed.
    pub(crate) failed: AtomicBool,
    /// Outputs of the checkpoint this run resumes (see `cache`).
    pub(crate) resumed: BTreeMap<String, serde_json::Value>,
    /// Outputs of this run's cached tasks.
    pub(crate) checkpoint: Mutex<BTreeMap<String, serde_json::Value>>,
    /// Parameters and the trace-level event (`params`, `event::trace`).
    pub(crate) annotations: crate::annotations::RunAnnotations,
}

impl RunInfo {
    pub(crate) fn new(id: String, name: String) -> Self {
        let attributes = [
            KeyValue::new(
                RUN_ID,
                opentelemetry::StringValue::from(Arc::<str>::from(id.as_str())),
            ),
            KeyValue::new(
                RUN_NAME,
                opentelemetry::StringValue::from(Arc::<str>::from(name.as_str())),
            ),
        ];
        Self {
            id,
            name,
            attributes: Some(attributes),
            ..Self::default()
        }
    }

    pub(crate) fn record(&self, key: &str, json: serde_json::Value) {
        let mut checkpoint = self.checkpoint.lock().unwrap_or_else(|e| e.into_inner());
        checkpoint.insert(key.to_owned(), json);
    }

    pub(crate) fn task_failed(&self, top_level: bool) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        if top_level {
            self.failed.store(true, Ordering::Relaxed);
        }
    }
}

/// The position of a task in a `flowtrace::map` fan-out, handed to the task
/// started for it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MapItem {
    pub(crate) index: usize,
    pub(crate) queue_wait: std::time::Duration,
}

/// What the tasks of one scope share: the map, the run, the tracer. One
/// `Arc` per frame, so a task's frame costs one reference count.
pub(crate) struct FrameInner {
    pub(crate) map: CustomContext,
    pub(crate) run: Option<Arc<RunInfo>>,
    /// Resolved when the first task of a scope outside any run needs it.
    backend: OnceLock<Arc<Backend>>,
    /// The frame this one was made inside (a scope's task, a nested run's
    /// caller): how a task called before a scope or run wrapped it tells
    /// that wrapper from an unrelated frame (see `carry`).
    parent: Option<Arc<FrameInner>>,
}

impl FrameInner {
    pub(crate) fn new(map: CustomContext, run: Option<Arc<RunInfo>>) -> Self {
        Self {
            map,
            run,
            backend: OnceLock::new(),
            parent: None,
        }
    }

    /// This scope's values with another map (same run and tracer), made
    /// inside this frame.
    pub(crate) fn with_map(self: &Arc<Self>, map: CustomContext) -> Self {
        Self {
            map,
            run: self.run.clone(),
            backend: self.backend.clone(),
            parent: Some(self.clone()),
        }
    }

    /// Records the frame this one is made inside.
    pub(crate) fn with_parent(mut self, parent: Option<&Arc<FrameInner>>) -> Self {
        self.parent = parent.cloned();
        self
    }

    /// Whether this frame was made inside `ancestor` (scopes and runs
    /// nested in it), not counting `ancestor` itself.
    pub(crate) fn descends_from(&self, ancestor: &Arc<FrameInner>) -> bool {
        let mut next = self.parent.as_ref();
        while let Some(frame) = next {
            if Arc::ptr_eq(frame, ancestor) {
                return true;
            }
            next = frame.parent.as_ref();
        }
        false
    }

    pub(crate) fn with_backend(self, backend: Arc<Backend>) -> Self {
        let _ = self.backend.set(backend);
        self
    }

    pub(crate) fn backend(&self) -> &Backend {
        self.backend.get_or_init(Backend::resolve)
    }
}

/// The one value a task keeps beside its OpenTelemetry [`Context`].
#[derive(Clone)]
pub(crate) struct Frame {
    pub(crate) inner: Arc<FrameInner>,
    pub(crate) task: Option<&'static str>,
    /// Set by `flowtrace::map` for the task it starts; not inherited.
    pub(crate) item: Option<MapItem>,
}

impl Frame {
    pub(crate) fn new(inner: FrameInner) -> Self {
        Self {
            inner: Arc::new(inner),
            task: None,
            item: None,
        }
    }

    pub(crate) fn map(&self) -> &CustomContext {
        &self.inner.map
    }

    pub(crate) fn run(&self) -> Option<&RunInfo> {
        self.inner.run.as_deref()
    }

    pub(crate) fn run_attributes(&self) -> Option<[KeyValue; 2]> {
        self.run().and_then(|run| run.attributes.clone())
    }

    /// A frame outside any run, with a fresh tracer resolution.
    #[cfg(test)]
    pub(crate) fn for_task(name: &'static str) -> Self {
        Self {
            task: Some(name),
            ..Self::new(FrameInner::new(CustomContext::new(), None))
        }
    }
}

/// The run attributes for a span started under `parent` (or, failing that,
/// under the current frame): used by the telemetry sampler so spans that
/// flowtrace did not start itself still carry `flowtrace.run.id`.
pub(crate) fn run_attributes(parent: &Context) -> Option<[KeyValue; 2]> {
    current::with(|frame| match frame {
        Some(frame) => frame.run_attributes(),
        None => parent.get::<Frame>().and_then(Frame::run_attributes),
    })
}

/// The context a task should parent its span on when it is not `cx`: the
/// map's parent wins over the current span, as in Flyte where the carrier
/// is the source of truth.
pub(crate) fn parent_context(cx: &Context, map: &CustomContext) -> Option<Context> {
    let sc = map.span_context()?;
    let current = cx.span();
    if current.span_context() == sc {
        None
    } else {
        Some(cx.with_remote_span_context(sc.clone()))
    }
}

/// Writes the current task's carrier (map parent or current span, plus
/// baggage) into `injector`.
pub(crate) fn inject_current(injector: &mut dyn Injector) {
    let map = current::with(|frame| frame.map(|f| f.map().clone()));
    Context::map_current(
        |cx| match map.as_ref().and_then(|map| parent_context(cx, map)) {
            Some(parent) => propagation::inject(&parent, injector),
            None => propagation::inject(cx, injector),
        },
    )
}

/// The current task's view: its map, run, name and span.
///
/// Outside any run or task every accessor answers empty; nothing panics.
///
/// ```
/// let view = flowtrace::ctx();
/// assert!(view.custom_context().is_empty());
/// assert_eq!(view.run_id(), "");
/// ```
pub fn ctx() -> TaskContext {
    let frame = current::cloned();
    Context::map_current(|cx| {
        let span_context = cx.span().span_context().clone();
        let map = frame
            .as_ref()
            .map(|f| f.map().resolved(&span_context))
            .unwrap_or_default();
        TaskContext {
            frame,
            map,
            span_context,
            cx: cx.clone(),
        }
    })
}

/// What [`ctx()`] returns.
#[derive(Clone)]
pub struct TaskContext {
    frame: Option<Frame>,
    map: CustomContext,
    span_context: SpanContext,
    /// Kept for [`baggage`](Self::baggage): OpenTelemetry's `Baggage` is
    /// not `Clone`, the context holding it is (a reference count).
    cx: Context,
}

impl TaskContext {
    /// The task's `custom_context` map.
    pub fn custom_context(&self) -> &CustomContext {
        &self.map
    }

    fn run(&self) -> Option<&RunInfo> {
        self.frame.as_ref().and_then(Frame::run)
    }

    /// The run id, or `""` outside a run.
    pub fn run_id(&self) -> &str {
        self.run().map_or("", |r| r.id.as_str())
    }

    /// The run name, or `""` outside a run.
    pub fn run_name(&self) -> &str {
        self.run().map_or("", |r| r.name.as_str())
    }

    /// The task's name, or `""` outside a task.
    pub fn task_name(&self) -> &str {
        self.frame.as_ref().and_then(|f| f.task).unwrap_or("")
    }

    /// The current trace id as 32 lowercase hex digits, or `""` when there
    /// is no valid span.
    pub fn trace_id(&self) -> String {
        let sc = self.current_span_context();
        if sc.is_valid() {
            sc.trace_id().to_string()
        } else {
            String::new()
        }
    }

    /// The current span id as 16 lowercase hex digits, or `""`.
    ///
    /// A task whose span would not be recorded (an unsampled parent under a
    /// parent-based sampler, or no tracer provider) starts no span; there it
    /// is its parent's span id.
    pub fn span_id(&self) -> String {
        let sc = self.current_span_context();
        if sc.is_valid() {
            sc.span_id().to_string()
        } else {
            String::new()
        }
    }

    /// The span context the map carries: the parent a task called here
    /// gets. That is the map's `traceparent` when it carries one (a carrier
    /// scoped in, or the parent a run was given), else the OpenTelemetry span
    /// current when [`ctx()`] was called. The current span itself is
    /// [`CurrentSpan::span_context`](crate::CurrentSpan::span_context); the
    /// two differ where a carrier names a parent that is not current.
    ///
    /// ```
    /// use opentelemetry::trace::Tracer as _;
    /// use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let provider = SdkTracerProvider::builder().build();
    /// flowtrace::set_tracer_provider(provider.clone(), &Sampler::AlwaysOn);
    /// let carrier = [("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")];
    /// flowtrace::custom_context(carrier)
    ///     .scope(async {
    ///         opentelemetry::global::tracer("example").in_span("parse", |_| {
    ///             // A task called here continues the carrier's span...
    ///             let carried = flowtrace::ctx().carried_span_context().clone();
    ///             assert_eq!(carried.span_id().to_string(), "b7ad6b7169203331");
    ///             // ...while the span current here is the one started by hand.
    ///             let current = flowtrace::current_span().span_context();
    ///             assert_ne!(current.span_id(), carried.span_id());
    ///         });
    ///     })
    ///     .await;
    /// # let _ = provider.shutdown();
    /// # }
    /// ```
    pub fn carried_span_context(&self) -> &SpanContext {
        self.current_span_context()
    }

    /// The W3C baggage of the task: what its caller's carrier brought
    /// (`baggage` header, `BAGGAGE` variable, a `baggage` map entry) and what
    /// [`with_baggage`](crate::propagation::with_baggage) scoped in.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let user = flowtrace::custom_context([("baggage", "user.id=alice")])
    ///     .scope(async { flowtrace::ctx().baggage().get("user.id").map(|v| v.to_string()) })
    ///     .await;
    /// assert_eq!(user.as_deref(), Some("alice"));
    /// assert!(flowtrace::ctx().baggage().is_empty());
    /// # }
    /// ```
    pub fn baggage(&self) -> &opentelemetry::baggage::Baggage {
        use opentelemetry::baggage::BaggageExt as _;
        self.cx.baggage()
    }

    fn current_span_context(&self) -> &SpanContext {
        self.map.span_context().unwrap_or(&self.span_context)
    }
}

impl fmt::Debug for TaskContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskContext")
            .field("run_id", &self.run_id())
            .field("task_name", &self.task_name())
            .field("trace_id", &self.trace_id())
            .field("custom_context", &self.map)
            .finish()
    }
}

/// Pairs to scope into the map for one future: the Rust form of Flyte's
/// `with flyte.custom_context(**carrier):`.
///
/// `traceparent`, `tracestate` and `baggage` belong to the runtime. Baggage
/// is merged over the current baggage (innermost wins). A `traceparent` may
/// re-parent the task within its trace (Flyte's manual pattern: start a
/// span, inject it, scope it), or give a parent where there is none; one
/// naming *another* trace while the task has a parent would cut the task
/// off its trace, so it is refused — with a warning from
/// [`scope`](Scope::scope), as an error from [`try_scope`](Scope::try_scope)
/// — unless [`override_parent`](Scope::override_parent) asks for it.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let team = flowtrace::custom_context([("team", "search")])
///     .scope(async { flowtrace::ctx().custom_context().get("team").map(str::to_owned) })
///     .await;
/// assert_eq!(team.as_deref(), Some("search"));
/// # }
/// ```
pub fn custom_context<I, K, V>(pairs: I) -> Scope
where
    I: IntoIterator<Item = (K, V)>,
    K: Into<String>,
    V: Into<String>,
{
    Scope {
        pairs: pairs
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect(),
        override_parent: false,
    }
}

/// Pairs waiting to be scoped over a future; see [`custom_context`].
#[derive(Debug, Clone)]
pub struct Scope {
    pairs: Vec<(String, String)>,
    override_parent: bool,
}

impl Scope {
    /// Runs `future` with the pairs merged over the map current when it is
    /// first polled (innermost wins). Pairs over a limit are skipped and a
    /// `traceparent` of another trace is refused (see [`custom_context`]),
    /// each with a `tracing` warning that says why.
    pub fn scope<F: Future>(self, future: F) -> Scoped<F> {
        Scoped {
            pairs: Some(self.pairs),
            override_parent: self.override_parent,
            carried: None,
            future,
        }
    }

    /// Lets a `traceparent` among the pairs move the task into another
    /// trace: the explicit form of cutting the task off its current trace.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// const OTHER: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    /// let run = flowtrace::with_runcontext()
    ///     .custom_context([("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")])
    ///     .run(async {
    ///         let refused = flowtrace::custom_context([("traceparent", OTHER)])
    ///             .scope(async { flowtrace::ctx().trace_id() })
    ///             .await;
    ///         let switched = flowtrace::custom_context([("traceparent", OTHER)])
    ///             .override_parent()
    ///             .scope(async { flowtrace::ctx().trace_id() })
    ///             .await;
    ///         (refused, switched)
    ///     })
    ///     .await;
    /// let (refused, switched) = run.into_output();
    /// assert_eq!(refused, "4bf92f3577b34da6a3ce929d0e0e4736");
    /// assert_eq!(switched, "0af7651916cd43dd8448eb211c80319c");
    /// # }
    /// ```
    pub fn override_parent(mut self) -> Self {
        self.override_parent = true;
        self
    }

    /// What [`scope`](Self::scope) would skip or refuse here, as an error:
    /// the first pair over a limit, or a `traceparent` that would cut the
    /// current task off its trace.
    pub fn check(&self) -> Result<(), ContextError> {
        Context::map_current(|cx| {
            current::with(|frame| {
                let map = frame.map(Frame::map);
                if !self.override_parent {
                    if let Some(err) = parent_override(cx, map, &self.pairs) {
                        return Err(err);
                    }
                }
                let current = cx.span().span_context().clone();
                let base = map.map(|m| m.resolved(&current)).unwrap_or_default();
                base.try_merged(self.pairs.iter().cloned()).map(drop)
            })
        })
    }

    /// [`scope`](Self::scope), or the error [`check`](Self::check) finds
    /// where it is called.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use flowtrace::ContextErrorKind;
    ///
    /// let run = flowtrace::with_runcontext()
    ///     .custom_context([("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")])
    ///     .run(async {
    ///         let other = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    ///         flowtrace::custom_context([("traceparent", other)])
    ///             .try_scope(async {})
    ///             .err()
    ///     })
    ///     .await;
    /// let err = run.into_output().expect("another trace is refused");
    /// assert_eq!(err.kind(), ContextErrorKind::ParentOverride);
    /// assert!(err.to_string().contains("override_parent"), "{err}");
    /// # }
    /// ```
    pub fn try_scope<F: Future>(self, future: F) -> Result<Scoped<F>, ContextError> {
        self.check()?;
        Ok(self.scope(future))
    }

    /// The map these pairs make when merged over the current one.
    pub fn to_custom_context(&self) -> CustomContext {
        let current = Context::map_current(|cx| cx.span().span_context().clone());
        let base = current::with(|frame| frame.map(|f| f.map().resolved(&current)));
        base.unwrap_or_default().merged(self.pairs.iter().cloned())
    }
}

/// The error for a `traceparent` among `pairs` that names another trace than
/// the current task's parent (the map's, else the current span).
fn parent_override(
    cx: &Context,
    map: Option<&CustomContext>,
    pairs: &[(String, String)],
) -> Option<ContextError> {
    let (_, requested) = pairs
        .iter()
        .rfind(|(k, _)| k.eq_ignore_ascii_case(TRACEPARENT))?;
    // An invalid one never replaces a valid parent (see `merged`).
    let requested = propagation::parse_traceparent(requested).ok()?;
    let span = cx.span();
    let current = map
        .and_then(CustomContext::span_context)
        .unwrap_or(span.span_context());
    (current.is_valid() && current.trace_id() != requested.trace_id()).then(|| {
        ContextError::parent_override(
            &current.trace_id().to_string(),
            &requested.trace_id().to_string(),
        )
    })
}

/// The map `pairs` make over `base`, and the context to run under when the
/// pairs change the current one (a `traceparent` or `baggage` among them).
pub(crate) fn scoped_map(
    cx: &Context,
    base: Option<&CustomContext>,
    pairs: Vec<(String, String)>,
) -> (CustomContext, Option<Context>) {
    let has_baggage = pairs.iter().any(|(k, _)| k.eq_ignore_ascii_case(BAGGAGE));
    let map = base.cloned().unwrap_or_default().merged(pairs);
    let mut out = parent_context(cx, &map);
    if let Some(header) = map.get(BAGGAGE).filter(|_| has_baggage) {
        // Merged over the current baggage: innermost wins, as for the map.
        out = Some(propagation::merge_baggage_header(
            out.as_ref().unwrap_or(cx),
            header,
        ));
    }
    (map, out)
}

/// A frame and the context it was made under, entered together for each
/// poll of a future: what a scope, a spawned task and a run carry.
pub(crate) struct Carried {
    frame: Option<Frame>,
    cx: Context,
}

impl Carried {
    /// The current frame and context.
    pub(crate) fn current() -> Self {
        Self {
            frame: current::cloned(),
            cx: Context::current(),
        }
    }

    /// `frame` over `cx`; the frame also goes into the context, so code that
    /// captures `Context::current()` and attaches it elsewhere keeps the map.
    pub(crate) fn new(frame: Frame, cx: &Context) -> Self {
        Self {
            cx: cx.with_value(frame.clone()),
            frame: Some(frame),
        }
    }

    /// Calls `f` with the frame and context current.
    pub(crate) fn enter<T>(&self, f: impl FnOnce() -> T) -> T {
        let _frame = self.frame.as_ref().map(current::enter);
        let _cx = self.cx.clone().attach();
        f()
    }
}

pin_project_lite::pin_project! {
    /// A future running under scoped `custom_context` pairs.
    #[must_use = "futures do nothing unless polled"]
    pub struct Scoped<F> {
        pairs: Option<Vec<(String, String)>>,
        override_parent: bool,
        carried: Option<Carried>,
        #[pin]
        future: F,
    }
}

impl<F: Future> Future for Scoped<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, task: &mut std::task::Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let carried = this.carried.get_or_insert_with(|| {
            let mut pairs = this.pairs.take().unwrap_or_default();
            let override_parent = *this.override_parent;
            Context::map_current(|cx| {
                let (frame, scoped) = current::with(|frame| {
                    if !override_parent {
                        if let Some(err) = parent_override(cx, frame.map(Frame::map), &pairs) {
                            tracing::warn!(target: "flowtrace", "{err}; the pair is ignored");
                            pairs.retain(|(k, _)| {
                                !k.eq_ignore_ascii_case(TRACEPARENT)
                                    && !k.eq_ignore_ascii_case(TRACESTATE)
                            });
                        }
                    }
                    let (map, scoped) = scoped_map(cx, frame.map(Frame::map), pairs);
                    let frame = match frame {
                        Some(frame) => Frame {
                            inner: Arc::new(frame.inner.with_map(map)),
                            ..frame.clone()
                        },
                        None => Frame::new(FrameInner::new(map, None)),
                    };
                    (frame, scoped)
                });
                Carried::new(frame, scoped.as_ref().unwrap_or(cx))
            })
        });
        let future = this.future;
        carried.enter(|| future.poll(task))
    }
}

pin_project_lite::pin_project! {
    /// A future polled under a carried frame and context (`flowtrace::spawn`).
    pub(crate) struct WithCarried<F> {
        carried: Carried,
        #[pin]
        future: F,
    }
}

impl<F: Future> Future for WithCarried<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, task: &mut std::task::Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let future = this.future;
        this.carried.enter(|| future.poll(task))
    }
}

/// [`tokio::spawn`] that carries the current map and OpenTelemetry context
/// into the spawned task.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let team = flowtrace::custom_context([("team", "search")])
///     .scope(async {
///         flowtrace::spawn(async { flowtrace::ctx().custom_context().get("team").map(str::to_owned) })
///             .await
///             .unwrap()
///     })
///     .await;
/// assert_eq!(team.as_deref(), Some("search"));
/// # }
/// ```
#[track_caller]
pub fn spawn<F>(future: F) -> tokio::task::JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    tokio::spawn(WithCarried {
        carried: Carried::current(),
        future,
    })
}

/// [`tokio::task::spawn_blocking`] that runs `f` under the current map and
/// OpenTelemetry context.
#[track_caller]
pub fn spawn_blocking<F, R>(f: F) -> tokio::task::JoinHandle<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    let carried = Carried::current();
    tokio::task::spawn_blocking(move || carried.enter(f))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TP: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn merge_innermost_wins_and_parent_is_parsed() {
        let outer = CustomContext::from_iter([("a", "1"), ("b", "2")]);
        let inner = outer.merged([("b", "3"), ("traceparent", TP), ("tracestate", "k=v")]);
        assert_eq!(outer.get("b"), Some("2"), "the outer map is unchanged");
        assert_eq!(inner.get("b"), Some("3"));
        assert_eq!(inner.get("traceparent"), Some(TP));
        assert_eq!(inner.get("tracestate"), Some("k=v"));
        assert_eq!(inner.len(), 4);
        assert!(inner.span_context().unwrap().is_remote());
    }

    #[test]
    fn invalid_traceparent_is_a_plain_entry() {
        let map = CustomContext::from_iter([("traceparent", "garbage")]);
        assert_eq!(map.get("traceparent"), Some("garbage"));
        assert!(map.span_context().is_none());
        let fixed = map.merged([("traceparent", TP)]);
        assert_eq!(fixed.get("traceparent"), Some(TP));
        assert_eq!(fixed.len(), 1);
    }

    #[test]
    fn serde_round_trip() {
        let map = CustomContext::from_iter([("team", "search"), ("traceparent", TP)]);
        let json = serde_json::to_string(&map).unwrap();
        let back: CustomContext = serde_json::from_str(&json).unwrap();
        assert_eq!(back, map);
        assert_eq!(back.span_context(), map.span_context());
    }

    #[test]
    fn ctx_outside_everything_is_empty() {
        let view = ctx();
        assert!(view.custom_context().is_empty());
        assert_eq!(view.run_id(), "");
        assert_eq!(view.task_name(), "");
        assert_eq!(view.trace_id(), "");
        assert_eq!(view.span_id(), "");
    }
}
