//! Runs: `with_runcontext().custom_context(..).name(..).run(future)`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;

use opentelemetry::trace::{SpanBuilder, TraceContextExt};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::trace::IdGenerator;
use opentelemetry_sdk::trace::RandomIdGenerator;

use std::sync::atomic::Ordering;
use std::time::Instant;

use opentelemetry::trace::{SpanContext, TraceId};

use crate::attributes::{RUN_ID, RUN_NAME};
use crate::backend::Backend;
use crate::backend::open;
use crate::cache::Checkpoint;
use crate::frame::{Frame, FrameInner, current};
use crate::propagation::{EnvCarrier, TRACEPARENT};
use crate::run_state::RunInfo;
use crate::scope::scoped_map;
use crate::task::Active;

mod finished;
mod ids;

pub use finished::{Run, RunStatus};
pub(crate) use ids::NextTraceId;
pub use ids::{RunIdGenerator, trace_id_for, with_span_id};

/// The name a run gets when none is given.
pub const DEFAULT_RUN_NAME: &str = "run";

/// Starts building a run.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let run = flowtrace::with_runcontext()
///     .name("workflow_run")
///     .custom_context([("team", "search")])
///     .run(async { flowtrace::ctx().custom_context().get("team").map(str::to_owned) })
///     .await;
/// assert_eq!(run.output().as_deref(), Some("search"));
/// assert_eq!(run.trace_id().len(), 32);
/// assert!(!run.run_id().is_empty());
/// # }
/// ```
pub fn with_runcontext() -> RunBuilder {
    RunBuilder::default()
}

/// Settings of a run; see [`with_runcontext`].
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let builder: flowtrace::RunBuilder = flowtrace::with_runcontext().name("nightly");
/// let run = builder.run(async { 1 }).await;
/// assert_eq!(run.name(), "nightly");
/// # }
/// ```
#[derive(Debug, Clone, Default)]
pub struct RunBuilder {
    pairs: Vec<(String, String)>,
    name: Option<String>,
    run_id: Option<String>,
    deterministic_trace_id: bool,
    resume: Option<Checkpoint>,
    params: crate::params::Params,
    new_trace: bool,
    sampled: Option<bool>,
}

impl RunBuilder {
    /// Adds pairs to the run's map (over the map current where the run starts;
    /// later calls win). A `traceparent` among them continues that trace.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let run = flowtrace::with_runcontext()
    ///     .custom_context([("team", "search"), ("tier", "gold")])
    ///     .custom_context([("tier", "platinum")])
    ///     .run(async { flowtrace::ctx().custom_context().to_hash_map() })
    ///     .await;
    /// assert_eq!(run.output()["tier"], "platinum");
    /// assert_eq!(run.output()["team"], "search");
    /// # }
    /// ```
    pub fn custom_context<I, K, V>(mut self, pairs: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        self.pairs
            .extend(pairs.into_iter().map(|(k, v)| (k.into(), v.into())));
        self
    }

    /// Names the run (`flowtrace.run.name`, and the run span's name).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let run = flowtrace::with_runcontext()
    ///     .name("ingest")
    ///     .run(async { flowtrace::ctx().run_name().to_owned() })
    ///     .await;
    /// assert_eq!(run.output(), "ingest");
    /// assert_eq!(run.name(), "ingest");
    /// # }
    /// ```
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Sets the run id (default: 16 random hex digits). Reusing an id makes
    /// sense with [`deterministic_trace_id`](Self::deterministic_trace_id)
    /// or [`resume`](Self::resume).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let run = flowtrace::with_runcontext().run_id("batch-2024-06-01").run(async {}).await;
    /// assert_eq!(run.run_id(), "batch-2024-06-01");
    /// # }
    /// ```
    pub fn run_id(mut self, id: impl Into<String>) -> Self {
        self.run_id = Some(id.into());
        self
    }

    /// Derives the root trace id from the run id, so re-running or resuming
    /// a run with the same id lands in the same trace. Needs a provider using
    /// [`RunIdGenerator`] (`flowtrace_telemetry::init()` installs one); a run whose
    /// carrier brings a parent keeps the parent's trace.
    ///
    /// ```
    /// use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let provider = SdkTracerProvider::builder()
    ///     .with_id_generator(flowtrace::RunIdGenerator::default())
    ///     .build();
    /// flowtrace::set_tracer_provider(provider.clone(), &Sampler::AlwaysOn);
    /// let run = flowtrace::with_runcontext()
    ///     .run_id("batch-7")
    ///     .deterministic_trace_id(true)
    ///     .run(async {})
    ///     .await;
    /// assert_eq!(run.trace_id(), flowtrace::trace_id_for("batch-7").to_string());
    /// # let _ = provider.shutdown();
    /// # }
    /// ```
    pub fn deterministic_trace_id(mut self, on: bool) -> Self {
        self.deterministic_trace_id = on;
        self
    }

    /// Resumes a run from its checkpoint: same run id, and tasks whose cache
    /// key the checkpoint holds are replayed from it without running
    /// (`flowtrace.task.replayed = true`).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let first = flowtrace::with_runcontext().run(async {}).await;
    /// let resumed = flowtrace::with_runcontext()
    ///     .resume(first.checkpoint())
    ///     .run(async {})
    ///     .await;
    /// assert_eq!(resumed.run_id(), first.run_id());
    /// # }
    /// ```
    pub fn resume(mut self, checkpoint: Checkpoint) -> Self {
        if self.run_id.is_none() {
            self.run_id = Some(checkpoint.run_id.clone());
        }
        self.resume = Some(checkpoint);
        self
    }

    /// Starts the run in a new trace whose root span links to the span it
    /// would have continued (the carrier's or the current task's), and, on
    /// [`resume`](Self::resume), to the first attempt's run span; see
    /// [`crate::link`]. Without a parent or a checkpoint it changes nothing.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let carrier = [("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")];
    /// let run = flowtrace::with_runcontext()
    ///     .custom_context(carrier)
    ///     .new_trace(true)
    ///     .run(async {})
    ///     .await;
    /// # let _ = run;
    /// # }
    /// ```
    pub fn new_trace(mut self, on: bool) -> Self {
        self.new_trace = on;
        self
    }

    /// Forces the sampling decision of every span of the run, here and in
    /// the processes and workers it reaches, whatever the sampler's ratio;
    /// see [`crate::sampling`]. A run [resumed](Self::resume) without one
    /// takes the first attempt's decision.
    ///
    /// ```
    /// use flowtrace::sampling::forced_decision;
    /// use opentelemetry::Context;
    /// use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let provider = SdkTracerProvider::builder().build();
    /// flowtrace::set_tracer_provider(provider.clone(), &Sampler::AlwaysOn);
    /// // What a sampler that asks `forced_decision` (flowtrace-telemetry's
    /// // does) sees for the spans of the run.
    /// let run = flowtrace::with_runcontext()
    ///     .sampled(false)
    ///     .run(async { forced_decision(&Context::current()) })
    ///     .await;
    /// assert_eq!(*run.output(), Some(false));
    /// # let _ = provider.shutdown();
    /// # }
    /// ```
    pub fn sampled(mut self, sampled: bool) -> Self {
        self.sampled = Some(sampled);
        self
    }

    /// Parameters the run starts with, over the process-wide ones (see
    /// [`crate::params`]); every span of the run records them.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let run = flowtrace::with_runcontext()
    ///     .initial_params([("top_k", serde_json::json!(5))])
    ///     .run(async { flowtrace::params::get() })
    ///     .await;
    /// assert_eq!(run.output()["top_k"], 5);
    /// # }
    /// ```
    pub fn initial_params<I, K>(mut self, params: I) -> Self
    where
        I: IntoIterator<Item = (K, serde_json::Value)>,
        K: Into<String>,
    {
        self.params
            .extend(params.into_iter().map(|(k, v)| (k.into(), v)));
        self
    }

    /// Runs `future` as this run. The run starts when the returned future is
    /// first polled.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let pending = flowtrace::with_runcontext().run(async { 40 + 2 });
    /// // Nothing has started yet: the run begins at the first poll.
    /// let run = pending.await;
    /// assert_eq!(*run.output(), 42);
    /// # }
    /// ```
    pub fn run<F: Future>(self, future: F) -> RunFuture<F> {
        RunFuture {
            builder: Some(self),
            started: None,
            future,
        }
    }
}

struct Started {
    active: Active,
    frame: Frame,
    run: Arc<RunInfo>,
    trace_id: String,
    traceparent: Option<String>,
    started: Instant,
    /// The run's metrics, when a meter provider is installed.
    timer: Option<crate::metrics::RunTimer>,
}

impl Drop for Started {
    fn drop(&mut self) {
        if let Some(timer) = self.timer.take() {
            timer.end("cancelled", std::time::SystemTime::now());
        }
    }
}

fn new_run_id() -> String {
    format!(
        "{:016x}",
        u64::from_be_bytes(RandomIdGenerator::default().new_span_id().to_bytes())
    )
}

impl RunBuilder {
    fn start(self) -> Started {
        let mut info = RunInfo::new(
            self.run_id.unwrap_or_else(new_run_id),
            self.name.unwrap_or_else(|| DEFAULT_RUN_NAME.to_owned()),
        );
        let mut first_attempt = None;
        let mut forced = self.sampled;
        if let Some(checkpoint) = self.resume {
            info.resumed = checkpoint.outputs;
            if let Some(first) = &checkpoint.traceparent {
                forced = forced.or_else(|| crate::sampling::decision_of(first));
                first_attempt = crate::propagation::parse_traceparent(first).ok();
            }
        }
        let new_trace = self.new_trace;
        info.annotations = crate::run_state::RunAnnotations::new(self.params);
        let run = Arc::new(info);
        let deterministic = self.deterministic_trace_id;
        // Once per run: the tracer every task of the run uses.
        let backend = Backend::resolve();
        let timer = crate::metrics::RunTimer::start(&run.name);
        let start_time = timer.as_ref().map(crate::metrics::RunTimer::start_time);
        let (active, frame) = Context::map_current(|cx| {
            let mut pairs = self.pairs;
            current::with(|parent| {
                let inherited = parent.is_some_and(|f| f.map().span_context().is_some());
                let has_parent = inherited
                    || cx.span().span_context().is_valid()
                    || pairs
                        .iter()
                        .any(|(k, _)| k.eq_ignore_ascii_case(TRACEPARENT));
                if !has_parent {
                    // Continue the trace this process was launched under.
                    let mut env = EnvCarrier::from_process().to_pairs();
                    env.append(&mut pairs);
                    pairs = env;
                }
                let (mut map, scoped) = scoped_map(cx, parent.map(|f| f.map()), pairs);
                let base = scoped.as_ref().unwrap_or(cx);
                let from_carrier =
                    !new_trace && map.span_context().is_some_and(|sc| sc.is_remote());
                if let (true, Some(decided), Some(sc)) = (from_carrier, forced, map.span_context())
                {
                    // The run is its carrier's span: the decision goes there.
                    map = map.with_span_context(crate::sampling::force(sc, decided));
                }
                let opened = if from_carrier {
                    None
                } else {
                    let mut attributes = vec![
                        KeyValue::new(RUN_ID, run.id.clone()),
                        KeyValue::new(RUN_NAME, run.name.clone()),
                    ];
                    crate::openinference::on_run_start(&run.name, &map, &mut attributes);
                    let tracked = crate::running::before_start(&attributes);
                    let mut builder =
                        SpanBuilder::from_name(run.name.clone()).with_attributes(attributes);
                    builder.start_time = start_time;
                    let mut under = base.clone();
                    if new_trace {
                        let links: Vec<_> = [
                            crate::link::would_be_parent(base, map.span_context())
                                .and_then(|sc| crate::link::link_to(&sc, "carrier")),
                            first_attempt
                                .as_ref()
                                .and_then(|sc| crate::link::link_to(sc, "resumed")),
                        ]
                        .into_iter()
                        .flatten()
                        .collect();
                        if !links.is_empty() {
                            builder = builder.with_links(links);
                        }
                        under = crate::link::new_root(base);
                    }
                    if let Some(decided) = forced {
                        under = under.with_value(crate::sampling::Forced::new(decided));
                    }
                    let _next = deterministic.then(|| NextTraceId::set(trace_id_for(&run.id)));
                    let opened = open(&backend, builder, &under);
                    if let Some(opened) = opened.as_ref().filter(|o| o.recording) {
                        crate::running::started(
                            &opened.cx,
                            &under,
                            run.name.clone().into(),
                            run.id_value(),
                            tracked,
                        );
                    }
                    opened
                };
                run.annotations.set_root(opened.is_some());
                let (map, cx) = match &opened {
                    Some(opened) => (opened.child_map(&map).unwrap_or(map), &opened.cx),
                    None => (map, base),
                };
                let frame = Frame::new(
                    FrameInner::new(map, Some(run.clone()))
                        .with_backend(backend)
                        .with_parent(parent.map(|f| &f.inner)),
                );
                // The frame also goes into the run's context, so code that
                // captures `Context::current()` keeps the run's map.
                let cx = cx.with_value(frame.clone());
                let active = match opened {
                    Some(_) => Active::span(cx),
                    None => Active::without_span(Some(cx)),
                };
                (active, frame)
            })
        });
        let own = active.context().map(|cx| cx.span().span_context().clone());
        let sc = match (frame.map().span_context(), own) {
            (Some(parent), _) => Some(parent.clone()),
            (None, Some(sc)) => Some(sc),
            (None, None) => None,
        }
        .filter(SpanContext::is_valid);
        let trace_id = sc
            .as_ref()
            .map_or(TraceId::INVALID, SpanContext::trace_id)
            .to_string();
        let traceparent = sc.as_ref().map(crate::propagation::format_traceparent);
        Started {
            active,
            frame,
            run,
            trace_id,
            traceparent,
            started: Instant::now(),
            timer,
        }
    }
}

pin_project_lite::pin_project! {
    /// The future of a run; resolves to [`Run`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let future: flowtrace::RunFuture<_> = flowtrace::with_runcontext().run(async { "done" });
    /// let handle = tokio::spawn(future);
    /// assert_eq!(*handle.await.unwrap().output(), "done");
    /// # }
    /// ```
    #[must_use = "futures do nothing unless polled"]
    pub struct RunFuture<F> {
        builder: Option<RunBuilder>,
        started: Option<Started>,
        #[pin]
        future: F,
    }
}

impl<F: Future> Future for RunFuture<F> {
    type Output = Run<F::Output>;

    fn poll(self: Pin<&mut Self>, task: &mut std::task::Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let started = this
            .started
            .get_or_insert_with(|| this.builder.take().unwrap_or_default().start());
        let future = this.future;
        let active = &mut started.active;
        let output = {
            let _frame = current::enter(&started.frame);
            std::task::ready!(active.call(|| future.poll(task)))
        };
        let run = &started.run;
        let status = if run.failed.load(Ordering::Relaxed) {
            started
                .active
                .span_ref()
                .set_status(opentelemetry::trace::Status::error(
                    "a task of the run failed",
                ));
            RunStatus::Failed
        } else {
            RunStatus::Succeeded
        };
        crate::run_state::on_run_end(run, &started.active.span_ref());
        let end = started.timer.as_ref().map(|_| std::time::SystemTime::now());
        started.active.end_at(end);
        if let (Some(timer), Some(end)) = (started.timer.take(), end) {
            let status = match status {
                RunStatus::Succeeded => "succeeded",
                RunStatus::Failed => "failed",
            };
            timer.end(status, end);
        }
        let mut checkpoint = crate::cache::checkpoint_of(run);
        checkpoint.traceparent = started.traceparent.take();
        Poll::Ready(Run {
            output,
            run_id: run.id.clone(),
            name: run.name.clone(),
            trace_id: std::mem::take(&mut started.trace_id),
            status,
            duration: started.started.elapsed(),
            tasks: run.tasks.load(Ordering::Relaxed),
            errors: run.errors.load(Ordering::Relaxed),
            checkpoint,
        })
    }
}
