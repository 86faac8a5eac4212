//! Where a task belongs: the frame a `#[traced]` call captures where it is
//! called, and the two helpers that carry the current task into code the
//! macro does not see (an `async move` block handed to `tokio::spawn`, a
//! closure for `spawn_blocking`, a stream or channel consumer).
//!
//! A `#[traced]` call captures its caller — the current frame (map, run,
//! tracer) and OpenTelemetry context (parent span, baggage, a forced
//! sampling decision, suppression) — when it is *called*. A context holding
//! none of them is not cloned (the task starts under an empty one), nor is
//! one holding only the non-recording parent its map carries (a task polled
//! elsewhere gets that parent rebuilt from the map); other values set on
//! the caller's context reach a task polled elsewhere only in a context
//! that was cloned. Its span starts when the future is first polled, like
//! `tracing`'s and fastrace's: a future that is never polled records
//! nothing, and a `select!` branch that never runs costs no span. At that
//! first poll the task uses:
//!
//! - the frame current there, when nothing was current at the call (so
//!   `with_runcontext().run(main_task())` joins the run it is polled in);
//! - the frame current there, when it is the caller's own frame with the
//!   caller's span (`.await`, `select!`, `join!`, `FuturesUnordered`,
//!   `flowtrace::map`, `flowtrace::spawn` from the caller), or one made
//!   inside the caller's (a `custom_context(..).scope(task())` or a nested
//!   `with_runcontext().run(task())` wrapping it);
//! - otherwise the caller it captured: `tokio::spawn(task())`,
//!   `JoinSet::spawn(task())`, `spawn_local(task())`, a future created in one
//!   task and awaited in another. A task first polled on another tokio task
//!   than the one it was called on records how long it waited for that
//!   first poll as [`QUEUE_WAIT_MS`](crate::attributes::QUEUE_WAIT_MS) (spans that
//!   record only).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use opentelemetry::Context;
use opentelemetry::trace::{SpanContext, TraceContextExt as _};

use crate::backend::Backend;
use crate::frame::{Frame, FrameInner, current};
use crate::spawn::Carried;

/// What a `#[traced]` call captured where it was called.
pub struct Caller(Option<Captured>);

struct Captured {
    /// The caller's frame (`None`: only a span was current).
    inner: Option<Arc<FrameInner>>,
    /// The caller is a run's body, not a task.
    top_level: bool,
    /// The caller's OpenTelemetry context, or what stands for it.
    cx: Held,
    /// When the call happened, for spans that may record (the clock is not
    /// read otherwise), and on which tokio task.
    called_at: Option<Instant>,
    called_on: Option<tokio::task::Id>,
    /// A span started here would be dropped and change nothing (no
    /// provider, or an unsampled parent current here): where the task is
    /// first polled under this same frame and span, it starts none.
    skips: bool,
}

/// The caller's OpenTelemetry context as a call keeps it. Cloning a
/// context costs a reference count per part, taken at the call and given
/// back at the first poll; a context equal to one the frame can rebuild is
/// not cloned.
enum Held {
    /// Nothing a task inherits (no span, baggage, sampling decision or
    /// suppression): the same as an empty context.
    Empty,
    /// Only a span that does not record, the parent the caller's map
    /// carries: rebuilt from the map when needed ([`FrameInner::parent_cx`]).
    MapParent,
    /// Anything else, cloned.
    Cloned(Context),
}

/// Which [`Held`] a context needs, decided without moving the context (a
/// byte out of the thread-local borrow, not a context).
#[derive(Clone, Copy)]
enum HeldKind {
    Empty,
    MapParent,
    Cloned,
}

impl HeldKind {
    /// For `frame`'s context `cx`, where a span started would be dropped
    /// with nothing changed when `skips`.
    #[inline]
    fn of(frame: &Frame, cx: &Context, skips: bool) -> Self {
        let has_span = cx.has_active_span();
        if has_span && !(skips && is_map_parent(frame, cx)) {
            return Self::Cloned;
        }
        if carries_more_than_a_span(cx) {
            return Self::Cloned;
        }
        if has_span {
            Self::MapParent
        } else {
            Self::Empty
        }
    }
}

impl Held {
    /// What the caller has current, from what [`HeldKind::of`] found: the
    /// current context is cloned only when it must be.
    #[inline]
    fn current(kind: HeldKind) -> Self {
        match kind {
            HeldKind::Empty => Self::Empty,
            HeldKind::MapParent => Self::MapParent,
            HeldKind::Cloned => Self::Cloned(Context::current()),
        }
    }

    /// Whether `now` has the same span as this, for a call made under
    /// `inner`'s frame.
    #[inline]
    fn same_span(&self, inner: &FrameInner, now: &Context) -> bool {
        let now = now.span();
        let now = now.span_context();
        let same = |then: &SpanContext| {
            now.span_id() == then.span_id() && now.trace_id() == then.trace_id()
        };
        match self {
            Self::Empty => !now.is_valid(),
            Self::MapParent => inner.map.span_context().is_some_and(same),
            Self::Cloned(cx) => same(cx.span().span_context()),
        }
    }

    /// The context itself (`None`: an empty one).
    fn into_context(self, inner: Option<&FrameInner>) -> Option<Context> {
        match self {
            Self::Empty => None,
            Self::MapParent => inner.map(FrameInner::parent_cx),
            Self::Cloned(cx) => Some(cx),
        }
    }
}

/// Whether the span current in `cx` does not record and is the parent
/// `frame`'s map carries.
#[inline]
fn is_map_parent(frame: &Frame, cx: &Context) -> bool {
    let span = cx.span();
    !span.is_recording() && frame.map().span_context() == Some(span.span_context())
}

/// Which frame and context a task's span starts under.
pub(crate) enum Resolved {
    /// The frame and context current at the first poll.
    Current,
    /// The caller's, captured at the call.
    Caller {
        inner: Option<Arc<FrameInner>>,
        top_level: bool,
        /// `None`: an empty context.
        cx: Option<Context>,
    },
}

impl Caller {
    /// Captures the current frame and context; nothing when no frame and no
    /// span are current.
    #[inline]
    pub fn capture() -> Self {
        current::with(|frame| match frame {
            Some(frame) => {
                let (records, skips, kind) = Context::map_current(|cx| {
                    let (records, skips) = at_call(frame, cx);
                    (records, skips, HeldKind::of(frame, cx, skips))
                });
                let cx = Held::current(kind);
                let (called_at, called_on) = if records {
                    (Some(Instant::now()), tokio::task::try_id())
                } else {
                    (None, None)
                };
                Self(Some(Captured {
                    inner: Some(frame.inner.clone()),
                    top_level: frame.task.is_none(),
                    cx,
                    called_at,
                    called_on,
                    skips,
                }))
            }
            None => Context::map_current(|cx| {
                cx.has_active_span().then(|| {
                    Self(Some(Captured {
                        inner: None,
                        top_level: true,
                        cx: Held::Cloned(cx.clone()),
                        called_at: None,
                        called_on: None,
                        skips: false,
                    }))
                })
            })
            .unwrap_or(Self(None)),
        })
    }

    /// Whether the task is first polled where it was called: the caller's
    /// own frame with the caller's span current (or nothing was captured).
    /// The common case, decided without moving the capture.
    #[inline]
    pub(crate) fn is_here(&self, current: Option<&Frame>) -> bool {
        match (&self.0, current) {
            (None, _) => true,
            (
                Some(Captured {
                    inner: Some(caller),
                    cx,
                    ..
                }),
                Some(current),
            ) => {
                Arc::ptr_eq(&current.inner, caller)
                    && Context::map_current(|now| cx.same_span(caller, now))
            }
            _ => false,
        }
    }

    /// Whether a span started at the call would have been dropped with
    /// nothing changed (see [`Captured::skips`]).
    #[inline]
    pub(crate) fn skips(&self) -> bool {
        self.0.as_ref().is_some_and(|captured| captured.skips)
    }

    /// Takes the captured frame out, when the task is first polled where
    /// it was called and a span there would be dropped with nothing changed
    /// (the rest of the capture is left to drop); `None` otherwise, the
    /// capture untouched.
    #[inline]
    pub(crate) fn take_skipped_here(&mut self, current: Option<&Frame>) -> Option<Arc<FrameInner>> {
        if self.skips() && self.is_here(current) {
            return self.0.as_mut().and_then(|captured| captured.inner.take());
        }
        None
    }

    /// The captured frame, when one was current at the call.
    #[inline]
    pub(crate) fn into_frame(self) -> Option<Arc<FrameInner>> {
        self.0.and_then(|captured| captured.inner)
    }

    /// How long a task called on one tokio task waited for its first poll on
    /// another (only measured for spans that may record).
    #[inline]
    pub(crate) fn waited(&self) -> Option<Duration> {
        let captured = self.0.as_ref()?;
        let at = captured.called_at?;
        (tokio::task::try_id() != captured.called_on).then(|| at.elapsed())
    }

    /// At the first poll, under `current` (the frame current there): where
    /// the task belongs (see the [module docs](self)) and, when it was first
    /// polled on another tokio task than the call's, how long it waited.
    #[inline]
    pub(crate) fn resolve(self, current: Option<&Frame>) -> (Resolved, Option<Duration>) {
        let Some(Captured {
            inner,
            top_level,
            cx,
            called_at,
            called_on,
            ..
        }) = self.0
        else {
            return (Resolved::Current, None);
        };
        let waited =
            called_at.and_then(|at| (tokio::task::try_id() != called_on).then(|| at.elapsed()));
        let moved = match (current, &inner) {
            (None, _) => true,
            // A frame beats a bare context.
            (Some(_), None) => false,
            (Some(current), Some(caller)) => {
                if Arc::ptr_eq(&current.inner, caller) {
                    Context::map_current(|now| !cx.same_span(caller, now))
                } else {
                    !current.inner.descends_from(caller)
                }
            }
        };
        if moved {
            let cx = cx.into_context(inner.as_deref());
            (
                Resolved::Caller {
                    inner,
                    top_level,
                    cx,
                },
                waited,
            )
        } else {
            (Resolved::Current, waited)
        }
    }
}

/// Whether `cx` holds more for a task called under it than its span:
/// baggage, a forced sampling decision, or suppressed telemetry.
#[inline]
fn carries_more_than_a_span(cx: &Context) -> bool {
    use opentelemetry::baggage::BaggageExt as _;
    cx.is_telemetry_suppressed()
        || !cx.baggage().is_empty()
        || crate::sampling::Forced::in_context(cx)
}

/// Whether a span started under `frame` and `cx` could record.
///
/// And whether it would be dropped with nothing changed: no provider, or
/// the map's parent is the current span (or it has none) and the sampler
/// drops a child of that non-recording span (what `TaskStart` decides at
/// the first poll, decided here once).
#[inline]
fn at_call(frame: &Frame, cx: &Context) -> (bool, bool) {
    let backend = frame.inner.backend();
    match backend {
        Backend::Noop => (false, true),
        _ => {
            let span = cx.span();
            let current = span.span_context();
            match frame.map().span_context() {
                Some(parent) if parent != current => (!backend.skips(parent), false),
                _ => {
                    let drops = backend.skips(current);
                    (!drops, drops && !span.is_recording())
                }
            }
        }
    }
}

/// Carries the current task into a future: its map, run and OpenTelemetry
/// context are current on every poll, wherever it is polled. The short form
/// for `tokio::spawn` is [`flowtrace::spawn`](crate::spawn).
///
/// ```
/// use flowtrace::Carry as _;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let team = flowtrace::custom_context([("team", "search")])
///     .scope(async {
///         tokio::spawn(
///             async move { flowtrace::ctx().custom_context().get("team").map(str::to_owned) }
///                 .in_current_task(),
///         )
///         .await
///         .unwrap()
///     })
///     .await;
/// assert_eq!(team.as_deref(), Some("search"));
/// # }
/// ```
pub trait Carry: Future + Sized {
    /// This future, polled under the task current here.
    fn in_current_task(self) -> InTask<Self> {
        InTask {
            carried: Carried::current(),
            future: self,
        }
    }
}

impl<F: Future> Carry for F {}

pin_project_lite::pin_project! {
    /// A future polled under the task that was current where it was made
    /// ([`Carry::in_current_task`]).
    ///
    /// ```
    /// use flowtrace::Carry as _;
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let run = flowtrace::with_runcontext()
    ///     .custom_context([("team", "search")])
    ///     .run(async {
    ///         let carried: flowtrace::InTask<_> = async {
    ///             flowtrace::ctx().custom_context().get("team").map(str::to_owned)
    ///         }
    ///         .in_current_task();
    ///         tokio::spawn(carried).await.unwrap()
    ///     })
    ///     .await;
    /// assert_eq!(run.output().as_deref(), Some("search"));
    /// # }
    /// ```
    #[must_use = "futures do nothing unless polled"]
    pub struct InTask<F> {
        carried: Carried,
        #[pin]
        future: F,
    }
}

impl<F: Future> Future for InTask<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, task: &mut std::task::Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let future = this.future;
        this.carried.enter(|| future.poll(task))
    }
}

/// Carries the current task into a closure, for `spawn_blocking`, a thread
/// or a callback: a `#[traced] fn` it calls nests under the task current
/// where the closure was wrapped. The short form for `spawn_blocking` is
/// [`flowtrace::spawn_blocking`](crate::spawn_blocking).
///
/// ```
/// use flowtrace::CarryFn as _;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let team = flowtrace::custom_context([("team", "search")])
///     .scope(async {
///         let read = || flowtrace::ctx().custom_context().get("team").map(str::to_owned);
///         tokio::task::spawn_blocking(read.in_current_task()).await.unwrap()
///     })
///     .await;
/// assert_eq!(team.as_deref(), Some("search"));
/// # }
/// ```
pub trait CarryFn<R>: FnOnce() -> R + Sized {
    /// This closure, called under the task current here.
    fn in_current_task(self) -> impl FnOnce() -> R {
        let carried = Carried::current();
        move || carried.enter(self)
    }
}

impl<R, F: FnOnce() -> R> CarryFn<R> for F {}
