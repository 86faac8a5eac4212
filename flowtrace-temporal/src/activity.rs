//! The activity interceptor: `RunActivity:<type>` under the `StartActivity`
//! span of the workflow that scheduled it, with the workflow's
//! `custom_context` around the activity body.

use futures_util::FutureExt as _;
use opentelemetry::KeyValue;
use opentelemetry::trace::{FutureExt as _, SpanKind, TraceContextExt as _};
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
        let run = header::client_run(&received.run);
        let body = match run {
            // The activity's tasks belong to the client's run: they carry
            // its `flowtrace.run.id` / `flowtrace.run.name`. The run
            // continues `RunActivity` and starts no span of its own.
            Some((id, run_name)) => {
                let mut pairs: Vec<(String, String)> = received.entries.into_iter().collect();
                let span = cx.span();
                let sc = span.span_context();
                pairs.push((
                    flowtrace::propagation::TRACEPARENT.to_owned(),
                    flowtrace::propagation::format_traceparent(sc),
                ));
                let state = sc.trace_state().header();
                if !state.is_empty() {
                    pairs.push((flowtrace::propagation::TRACESTATE.to_owned(), state));
                }
                flowtrace::with_runcontext()
                    .run_id(id)
                    .name(run_name)
                    .custom_context(pairs)
                    .run(next.run(input))
                    .map(flowtrace::Run::into_output)
                    .with_context(cx.clone())
                    .boxed()
            }
            None => span::scoped(cx.clone(), received.entries, None, next.run(input)).boxed(),
        };
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
