//! Runs: `with_runcontext().custom_context(..).name(..).run(future)`.

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;

use opentelemetry::trace::TraceContextExt;
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::trace::IdGenerator;
use opentelemetry_sdk::trace::RandomIdGenerator;

use crate::context::{Frame, RUN_ID, RUN_NAME, RunInfo, scoped_context};
use crate::propagation::{EnvCarrier, TRACEPARENT};
use crate::task::{Active, start_span};

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
#[derive(Debug, Clone, Default)]
pub struct RunBuilder {
    pairs: Vec<(String, String)>,
    name: Option<String>,
}

impl RunBuilder {
    /// Adds pairs to the run's map (over the map current where the run starts;
    /// later calls win). A `traceparent` among them continues that trace.
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
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Runs `future` as this run. The run starts when the returned future is
    /// first polled.
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
    run: Arc<RunInfo>,
    trace_id: String,
}

fn new_run_id() -> String {
    format!(
        "{:016x}",
        u64::from_be_bytes(RandomIdGenerator::default().new_span_id().to_bytes())
    )
}

impl RunBuilder {
    fn start(self) -> Started {
        let run = Arc::new(RunInfo {
            id: new_run_id(),
            name: self.name.unwrap_or_else(|| DEFAULT_RUN_NAME.to_owned()),
        });
        let cx = Context::map_current(|cx| {
            let mut pairs = self.pairs;
            let inherited = Frame::of(cx).is_some_and(|f| f.map.span_context().is_some());
            let has_parent = inherited
                || cx.span().span_context().is_valid()
                || pairs.iter().any(|(k, _)| k == TRACEPARENT);
            if !has_parent {
                // Continue the trace this process was launched under.
                let mut env = EnvCarrier::from_process().to_pairs();
                env.append(&mut pairs);
                pairs = env;
            }
            let scoped = scoped_context(cx, pairs);
            let mut frame = Frame::of(&scoped).cloned().unwrap_or_default();
            frame.run = Some(run.clone());
            frame.task = None;
            let from_carrier = frame.map.span_context().is_some_and(|sc| sc.is_remote());
            if from_carrier {
                scoped.with_value(frame)
            } else {
                let attributes = vec![
                    KeyValue::new(RUN_ID, run.id.clone()),
                    KeyValue::new(RUN_NAME, run.name.clone()),
                ];
                start_span(Cow::Owned(run.name.clone()), attributes, &scoped, frame)
            }
        });
        let trace_id = {
            let span = cx.span();
            span.span_context().trace_id().to_string()
        };
        Started {
            active: Active::new(cx),
            run,
            trace_id,
        }
    }
}

pin_project_lite::pin_project! {
    /// The future of a run; resolves to [`Run`].
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
        let output = std::task::ready!(started.active.poll(this.future, task));
        started.active.end();
        Poll::Ready(Run {
            output,
            run_id: started.run.id.clone(),
            name: started.run.name.clone(),
            trace_id: std::mem::take(&mut started.trace_id),
        })
    }
}

/// A finished run: its output and identity.
#[derive(Debug, Clone)]
pub struct Run<T> {
    output: T,
    run_id: String,
    name: String,
    trace_id: String,
}

impl<T> Run<T> {
    /// The run's output.
    pub fn output(&self) -> &T {
        &self.output
    }

    /// Takes the output.
    pub fn into_output(self) -> T {
        self.output
    }

    /// The unique id of this run (`flowtrace.run.id` on its spans).
    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// The run's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The run's trace id as 32 lowercase hex digits (all zeros when no
    /// tracer provider is installed and no parent was carried in).
    pub fn trace_id(&self) -> &str {
        &self.trace_id
    }
}
