//! Scoping pairs into the map for one future: [`custom_context`],
//! [`Scope`] and the [`Scoped`] future.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;

use opentelemetry::Context;
use opentelemetry::trace::TraceContextExt;

use crate::custom_context::{ContextError, CustomContext, parent_context};
use crate::frame::{Frame, FrameInner, current};
use crate::propagation::{self, BAGGAGE, TRACEPARENT, TRACESTATE};
use crate::run_state::{RunAnnotations, RunInfo};
use crate::spawn::Carried;

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
        run: None,
    }
}

/// Pairs waiting to be scoped over a future; see [`custom_context`].
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let scope: flowtrace::Scope = flowtrace::custom_context([("tenant", "acme")]);
/// assert_eq!(scope.to_custom_context().get("tenant"), Some("acme"));
/// let tenant = scope
///     .scope(async { flowtrace::ctx().custom_context().get("tenant").map(str::to_owned) })
///     .await;
/// assert_eq!(tenant.as_deref(), Some("acme"));
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Scope {
    pairs: Vec<(String, String)>,
    override_parent: bool,
    /// The run joined by [`join_run`](Scope::join_run): id and name.
    run: Option<(String, String)>,
}

impl Scope {
    /// Runs `future` with the pairs merged over the map current when it is
    /// first polled (innermost wins). Pairs over a limit are skipped and a
    /// `traceparent` of another trace is refused (see [`custom_context`]),
    /// each with a `tracing` warning that says why.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let tier = flowtrace::custom_context([("tier", "gold")])
    ///     .scope(flowtrace::custom_context([("tier", "platinum")]).scope(async {
    ///         flowtrace::ctx().custom_context().get("tier").map(str::to_owned)
    ///     }))
    ///     .await;
    /// assert_eq!(tier.as_deref(), Some("platinum"), "innermost wins");
    /// # }
    /// ```
    pub fn scope<F: Future>(self, future: F) -> Scoped<F> {
        Scoped {
            pairs: Some(self.pairs),
            override_parent: self.override_parent,
            run: self.run,
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

    /// Makes the tasks under the scope part of the run `id` named `name`,
    /// a run started elsewhere (another process, a client whose run a
    /// worker continues), without starting a run here.
    ///
    /// The tasks get that run's `flowtrace.run.id` and `flowtrace.run.name`
    /// as the tasks of a run do (with the process-wide parameters and the
    /// OpenInference `CHAIN` kind), [`ctx()`](crate::ctx)'s
    /// [`run_id()`](crate::TaskContext::run_id) and
    /// [`run_name()`](crate::TaskContext::run_name) answer them, and log
    /// records carry the id. Nothing else happens: no run span, no run
    /// metrics (`flowtrace.run.duration`, `flowtrace.run.active`), no
    /// [`Run`](crate::Run) with a status and counts; the trace, the parent
    /// and the sampling decision stay as the scope finds them. So code that
    /// runs more than once for one run (a workflow replayed from its
    /// history) can join it each time without counting it again.
    ///
    /// Inside a run with the same id and name the scope stays in that run.
    /// Inside another run the tasks under the scope belong to the joined
    /// one: they are not counted in the enclosing run's tasks or errors.
    /// An empty `id` joins nothing (the scope keeps the run it is in).
    ///
    /// ```
    /// #[flowtrace::traced]
    /// async fn step() -> (String, String) {
    ///     let ctx = flowtrace::ctx();
    ///     (ctx.run_id().to_owned(), ctx.run_name().to_owned())
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let (id, name) = flowtrace::custom_context([("team", "search")])
    ///     .join_run("nightly-0142", "nightly")
    ///     .scope(step())
    ///     .await;
    /// assert_eq!((id.as_str(), name.as_str()), ("nightly-0142", "nightly"));
    /// assert_eq!(flowtrace::ctx().run_id(), "", "outside the scope: no run");
    /// # }
    /// ```
    pub fn join_run(mut self, id: impl Into<String>, name: impl Into<String>) -> Self {
        self.run = Some((id.into(), name.into()));
        self
    }

    /// What [`scope`](Self::scope) would skip or refuse here, as an error:
    /// the first pair over a limit, or a `traceparent` that would cut the
    /// current task off its trace.
    ///
    /// ```
    /// use flowtrace::ContextErrorKind;
    ///
    /// let too_long = flowtrace::custom_context([("note", "x".repeat(1 << 20))]);
    /// assert_eq!(too_long.check().unwrap_err().kind(), ContextErrorKind::ValueTooLong);
    /// assert!(flowtrace::custom_context([("note", "short")]).check().is_ok());
    /// ```
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
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let map = flowtrace::custom_context([("team", "search")])
    ///     .scope(async { flowtrace::custom_context([("tier", "gold")]).to_custom_context() })
    ///     .await;
    /// assert_eq!((map.get("team"), map.get("tier")), (Some("search"), Some("gold")));
    /// # }
    /// ```
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

/// The run a scope joins (see [`Scope::join_run`]): none for an empty id,
/// or for the run `current` the scope is already in.
fn joined_run(run: Option<(String, String)>, current: Option<&RunInfo>) -> Option<Arc<RunInfo>> {
    let (id, name) = run.filter(|(id, _)| !id.is_empty())?;
    if current.is_some_and(|run| run.id == id && run.name == name) {
        return None;
    }
    let mut info = RunInfo::new(id, name);
    // The process-wide parameters, as a run starts with.
    info.annotations = RunAnnotations::new(Default::default());
    Some(Arc::new(info))
}

pin_project_lite::pin_project! {
    /// A future running under scoped `custom_context` pairs.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let scoped: flowtrace::Scoped<_> = flowtrace::custom_context([("team", "search")])
    ///     .scope(async { flowtrace::ctx().custom_context().len() });
    /// assert_eq!(tokio::spawn(scoped).await.unwrap(), 1);
    /// # }
    /// ```
    #[must_use = "futures do nothing unless polled"]
    pub struct Scoped<F> {
        pairs: Option<Vec<(String, String)>>,
        override_parent: bool,
        run: Option<(String, String)>,
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
                    let mut inner = match frame {
                        Some(frame) => frame.inner.with_map(map),
                        None => FrameInner::new(map, None),
                    };
                    if let Some(run) = joined_run(this.run.take(), inner.run.as_deref()) {
                        inner.run = Some(run);
                    }
                    let frame = match frame {
                        Some(frame) => Frame {
                            inner: Arc::new(inner),
                            ..frame.clone()
                        },
                        None => Frame::new(inner),
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
