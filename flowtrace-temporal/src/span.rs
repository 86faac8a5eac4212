//! Starting and ending the Temporal spans, and running a future under a span
//! and a `custom_context`.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::future::Future;

use flowtrace::attributes::{EXCEPTION_EVENT, EXCEPTION_MESSAGE};
use opentelemetry::trace::{
    FutureExt as _, SpanContext, SpanKind, Status, TraceContextExt as _, TraceFlags, Tracer as _,
};
use opentelemetry::{Context, KeyValue, global};

/// The instrumentation scope of every span this crate starts.
pub const INSTRUMENTATION_SCOPE: &str = "flowtrace-temporal";

/// `temporalWorkflowID`: the attribute name Temporal's other SDKs use.
pub const WORKFLOW_ID: &str = "temporalWorkflowID";
/// `temporalRunID`.
pub const RUN_ID: &str = "temporalRunID";
/// `temporalActivityID`.
pub const ACTIVITY_ID: &str = "temporalActivityID";
/// `temporalUpdateID`.
pub const UPDATE_ID: &str = "temporalUpdateID";
/// The task queue a workflow or activity runs on.
pub const TASK_QUEUE: &str = "flowtrace.temporal.task_queue";
/// The attempt of an activity (1 for the first).
pub const ATTEMPT: &str = "flowtrace.temporal.attempt";
/// The activity type.
pub const ACTIVITY_TYPE: &str = "flowtrace.temporal.activity_type";

/// Starts a span under `parent` and returns `parent` with it as the current span.
pub(crate) fn start(
    parent: &Context,
    name: String,
    kind: SpanKind,
    attributes: Vec<KeyValue>,
) -> Context {
    let tracer = global::tracer(INSTRUMENTATION_SCOPE);
    let span = tracer
        .span_builder(name)
        .with_kind(kind)
        .with_attributes(attributes)
        .start_with_context(&tracer, parent);
    parent.with_span(span)
}

/// [`start`] with links.
pub(crate) fn start_linked(
    parent: &Context,
    name: String,
    kind: SpanKind,
    attributes: Vec<KeyValue>,
    links: Vec<opentelemetry::trace::Link>,
) -> Context {
    let tracer = global::tracer(INSTRUMENTATION_SCOPE);
    let span = tracer
        .span_builder(name)
        .with_kind(kind)
        .with_attributes(attributes)
        .with_links(links)
        .start_with_context(&tracer, parent);
    parent.with_span(span)
}

/// Ends the span of `cx`: status Error and an `exception` event for an `Err`.
pub(crate) fn finish<T, E: Debug>(cx: &Context, result: &Result<T, E>) {
    let span = cx.span();
    if let Err(error) = result {
        let message = format!("{error:?}");
        span.add_event(
            EXCEPTION_EVENT,
            vec![KeyValue::new(EXCEPTION_MESSAGE, message.clone())],
        );
        span.set_status(Status::error(message));
    }
    span.end();
}

/// Workflow id and (when known) run id attributes.
/// The OpenInference session attributes (`session.id`, `user.id`,
/// `tag.tags`, `metadata`) of the sender's `custom_context` entries, so the
/// workflow and activity spans of a run's session carry them too.
pub(crate) fn session_attributes(entries: &BTreeMap<String, String>) -> Vec<KeyValue> {
    flowtrace::openinference::session_attributes(
        entries.iter().map(|(k, v)| (k.as_str(), v.as_str())),
    )
}

pub(crate) fn workflow_attributes(workflow_id: &str, run_id: &str) -> Vec<KeyValue> {
    let mut attributes = vec![KeyValue::new(WORKFLOW_ID, workflow_id.to_owned())];
    if !run_id.is_empty() {
        attributes.push(KeyValue::new(RUN_ID, run_id.to_owned()));
    }
    attributes
}

/// `future` polled with `cx` current and `entries` as its `custom_context`:
/// `flowtrace::ctx().custom_context()` inside answers the entries, and
/// `#[traced]` tasks inside parent on `cx`'s span. With the client's `run`
/// (id and name, see [`crate::header::client_run`]) the tasks belong to
/// that run ([`flowtrace::Scope::join_run`]): they carry its
/// `flowtrace.run.id` and `flowtrace.run.name`, and no run starts here.
pub(crate) fn scoped<F: Future>(
    cx: Context,
    entries: BTreeMap<String, String>,
    run: Option<(String, String)>,
    future: F,
) -> impl Future<Output = F::Output> {
    let scope = flowtrace::custom_context(entries);
    let scope = match run {
        Some((id, name)) => scope.join_run(id, name),
        None => scope,
    };
    scope.scope(future).with_context(cx)
}

/// `cx` with its span context marked not sampled, with flowtrace's forced
/// "not sampled" decision (`flowtrace=s:0`) in its `tracestate`: spans
/// started under it are dropped by a parent-based sampler and by
/// flowtrace-telemetry's sampler whatever `OTEL_TRACES_SAMPLER` says, and
/// flowtrace's tasks skip them without starting a span.
pub(crate) fn muted(cx: &Context) -> Context {
    let span = cx.span();
    let sc = span.span_context();
    if !sc.is_valid() {
        return cx.clone();
    }
    let state = sc
        .trace_state()
        .insert(flowtrace::sampling::TRACESTATE_KEY, "s:0")
        .unwrap_or_else(|_| sc.trace_state().clone());
    let muted = SpanContext::new(
        sc.trace_id(),
        sc.span_id(),
        TraceFlags::default(),
        sc.is_remote(),
        state,
    );
    cx.with_remote_span_context(muted)
}

/// [`scoped`] for workflow code, which runs again on replay: each poll runs
/// under `live`, or under [`muted`]`(live)` while `replaying()` says the
/// workflow is replaying history, so a `#[traced]` task the workflow code
/// starts is recorded the first time it runs and never again on a replay.
/// (The map's scope keeps the context of its first poll, so the switch is
/// made inside it, on the span alone: the map, baggage and run stay.) The
/// tasks join the client's `run` on every replay alike: joining starts no
/// run, so a replay counts nothing again.
pub(crate) fn scoped_replay_safe<F: Future>(
    live: Context,
    replaying: impl Fn() -> bool,
    entries: BTreeMap<String, String>,
    run: Option<(String, String)>,
    future: F,
) -> impl Future<Output = F::Output> {
    let replay = muted(&live).span().span_context().clone();
    let mut future = Box::pin(future);
    let switched = futures_util::future::poll_fn(move |task| {
        if !replaying() {
            return future.as_mut().poll(task);
        }
        let _muted =
            Context::map_current(|cx| cx.with_remote_span_context(replay.clone())).attach();
        future.as_mut().poll(task)
    });
    scoped(live, entries, run, switched)
}
