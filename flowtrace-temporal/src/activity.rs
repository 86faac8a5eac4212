//! The activity interceptor: `RunActivity:<type>` under the `StartActivity`
//! span of the workflow that scheduled it, with the workflow's
//! `custom_context` around the activity body, which joins the client's run.

use futures_util::FutureExt as _;
use opentelemetry::KeyValue;
use opentelemetry::trace::{SpanKind, TraceContextExt as _};
use temporalio_sdk::interceptors::{
    ActivityInboundInterceptor, ExecuteActivityInput, ExecuteActivityOutput, Next,
};

use crate::{header, span};

/// Runs each activity in a `server` span `RunActivity:<type>` (attributes:
/// workflow id, run id, activity id, type, attempt, task queue) whose parent
/// is the `_tracer-data` header, and under the `flowtrace-context` entries:
/// `flowtrace::ctx().custom_context()` in the activity answers them, and
/// `#[traced]` tasks it calls nest under `RunActivity`.
///
/// When the client called inside a run, the activity body joins that run
/// ([`flowtrace::Scope::join_run`]): its `#[traced]` tasks carry the
/// client's `flowtrace.run.id` and `flowtrace.run.name`, and
/// `flowtrace::ctx().run_id()` / `run_name()` answer them. Joining starts
/// no run, so an activity execution records no `flowtrace.run.*` metrics:
/// the client's run is counted once, by the client. The execution itself
/// is a task in the `flowtrace.task.*` metrics, named by its activity type
/// (a retry an attempt after the first), with the outcome `RunActivity`
/// ends with.
///
/// A retried activity is a new `RunActivity` span with the next attempt
/// number, under the same `StartActivity` span: the header is the one the
/// workflow scheduled it with, whichever worker picks the retry up.
///
/// ```
/// let options = temporalio_sdk::WorkerOptions::new("my-queue")
///     .activity_inbound_interceptor(flowtrace_temporal::TracingActivityInterceptor)
///     .workflow_interceptor(flowtrace_temporal::workflow_interceptor())
///     .build();
/// # drop(options);
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct TracingActivityInterceptor;

impl ActivityInboundInterceptor for TracingActivityInterceptor {
    fn execute_activity<'a>(
        &'a self,
        input: ExecuteActivityInput,
        next: Next<'a, ExecuteActivityInput, ExecuteActivityOutput<'a>>,
    ) -> ExecuteActivityOutput<'a> {
        let info = input.activity_info();
        let mut attributes = span::workflow_attributes(
            info.workflow_id.as_deref().unwrap_or_default(),
            info.workflow_run_id.as_deref().unwrap_or_default(),
        );
        attributes.extend([
            KeyValue::new(span::ACTIVITY_ID, info.activity_id.clone()),
            KeyValue::new(span::ACTIVITY_TYPE, info.activity_type.clone()),
            KeyValue::new(span::ATTEMPT, i64::from(info.attempt)),
            KeyValue::new(span::TASK_QUEUE, info.task_queue.clone()),
        ]);
        let name = format!("RunActivity:{}", info.activity_type);
        let received = header::extract(input.headers());
        attributes.extend(span::session_attributes(&received.entries));
        attributes.extend(received.run.iter().cloned());
        let measured = flowtrace::metrics::measure_task(&info.activity_type, info.attempt);
        let cx = span::start(&received.parent, name, SpanKind::Server, attributes);
        // The activity's tasks join the client's run: they carry its
        // `flowtrace.run.id` / `flowtrace.run.name`, and no run starts here,
        // so an execution (a retry too) records no run metrics.
        let run = header::client_run(&received.run);
        let body = span::scoped(cx.clone(), received.entries, run, next.run(input));
        async move {
            let result = body.await;
            span::finish(&cx, &result);
            let span = cx.span();
            measured.end(
                crate::metrics::activity_outcome(&result),
                Some(span.span_context()),
            );
            result
        }
        .boxed()
    }
}
