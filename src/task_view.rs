//! The current task as code running in it, and code it calls, sees it:
//! [`ctx()`], its run's attributes, and the carrier it hands on (its map's
//! parent or its span, plus baggage).

use std::fmt;

use opentelemetry::propagation::Injector;
use opentelemetry::trace::{SpanContext, TraceContextExt};
use opentelemetry::{Context, KeyValue};

use crate::custom_context::{CustomContext, parent_context};
use crate::frame::{Frame, current};
use crate::propagation;
use crate::run_state::RunInfo;

/// The run attributes for a span started under `parent` (or, failing that,
/// under the current frame): used by the telemetry sampler so spans that
/// flowtrace did not start itself still carry `flowtrace.run.id`.
pub(crate) fn run_attributes(parent: &Context) -> Option<[KeyValue; 2]> {
    current::with(|frame| match frame {
        Some(frame) => frame.run_attributes(),
        None => parent.get::<Frame>().and_then(Frame::run_attributes),
    })
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
///
/// ```
/// #[flowtrace::traced]
/// async fn fetch() -> String {
///     let view: flowtrace::TaskContext = flowtrace::ctx();
///     format!("{} in run {}", view.task_name(), view.run_name())
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let run = flowtrace::with_runcontext().name("nightly").run(fetch()).await;
/// assert_eq!(run.output(), "fetch in run nightly");
/// # }
/// ```
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
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let team = flowtrace::custom_context([("team", "search")])
    ///     .scope(async { flowtrace::ctx().custom_context().get("team").map(str::to_owned) })
    ///     .await;
    /// assert_eq!(team.as_deref(), Some("search"));
    /// # }
    /// ```
    pub fn custom_context(&self) -> &CustomContext {
        &self.map
    }

    fn run(&self) -> Option<&RunInfo> {
        self.frame.as_ref().and_then(Frame::run)
    }

    /// The run id, or `""` outside a run.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let run = flowtrace::with_runcontext()
    ///     .run_id("batch-1")
    ///     .run(async { flowtrace::ctx().run_id().to_owned() })
    ///     .await;
    /// assert_eq!(run.output(), "batch-1");
    /// assert_eq!(flowtrace::ctx().run_id(), "", "outside any run");
    /// # }
    /// ```
    pub fn run_id(&self) -> &str {
        self.run().map_or("", |r| r.id.as_str())
    }

    /// The run name, or `""` outside a run.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let run = flowtrace::with_runcontext()
    ///     .name("ingest")
    ///     .run(async { flowtrace::ctx().run_name().to_owned() })
    ///     .await;
    /// assert_eq!(run.output(), "ingest");
    /// # }
    /// ```
    pub fn run_name(&self) -> &str {
        self.run().map_or("", |r| r.name.as_str())
    }

    /// The task's name, or `""` outside a task.
    ///
    /// ```
    /// #[flowtrace::traced(name = "load")]
    /// async fn load_documents() -> String {
    ///     flowtrace::ctx().task_name().to_owned()
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// assert_eq!(load_documents().await, "load");
    /// assert_eq!(flowtrace::ctx().task_name(), "", "outside any task");
    /// # }
    /// ```
    pub fn task_name(&self) -> &str {
        self.frame.as_ref().and_then(|f| f.task).unwrap_or("")
    }

    /// The current trace id as 32 lowercase hex digits, or `""` when there
    /// is no valid span.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let trace = flowtrace::custom_context([("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")])
    ///     .scope(async { flowtrace::ctx().trace_id() })
    ///     .await;
    /// assert_eq!(trace, "0af7651916cd43dd8448eb211c80319c");
    /// assert_eq!(flowtrace::ctx().trace_id(), "");
    /// # }
    /// ```
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
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let span = flowtrace::custom_context([("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")])
    ///     .scope(async { flowtrace::ctx().span_id() })
    ///     .await;
    /// assert_eq!(span, "b7ad6b7169203331");
    /// # }
    /// ```
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

#[cfg(test)]
mod tests {
    use super::*;

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
