//! `traceparent`, `tracestate` and `baggage` belong to the runtime: a scope
//! inside a task may re-parent it within its trace, but not move it into
//! another trace unless it asks (`override_parent`). Asserted on exported
//! spans (opentelemetry_sdk's in-memory exporter).

mod support;

use flowtrace::{ContextErrorKind, CustomContext, ctx, custom_context, traced, with_runcontext};
use opentelemetry::propagation::TextMapPropagator as _;
use opentelemetry::trace::{Span as _, TraceContextExt as _, Tracer as _};
use support::in_memory::{exporter, named, spans_of};
use tracing_subscriber::layer::SubscriberExt as _;

// Each test its own foreign trace: they share one exporter.
const OTHER: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
const OTHER_TRACE: &str = "0af7651916cd43dd8448eb211c80319c";
const SWITCH: &str = "00-1af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
const SWITCH_TRACE: &str = "1af7651916cd43dd8448eb211c80319c";
const OUTSIDE: &str = "00-2af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
const OUTSIDE_TRACE: &str = "2af7651916cd43dd8448eb211c80319c";

#[traced]
async fn nested() -> String {
    ctx().trace_id()
}

#[traced]
async fn refuses_a_foreign_parent() -> String {
    custom_context([("traceparent", OTHER), ("team", "search")])
        .scope(async {
            assert_eq!(ctx().custom_context().get("team"), Some("search"));
            nested().await
        })
        .await
}

#[traced]
async fn switches_on_purpose() -> String {
    custom_context([("traceparent", SWITCH)])
        .override_parent()
        .scope(nested())
        .await
}

/// Flyte's manual pattern: start a span, inject it into a carrier, run the
/// nested task under the carrier. Same trace, another parent: allowed.
#[traced]
async fn reparents_within_the_trace() -> (String, String) {
    let tracer = opentelemetry::global::tracer("manual");
    let manual = tracer.start("manual");
    let manual_id = manual.span_context().span_id().to_string();
    let cx = opentelemetry::Context::current_with_span(manual);
    let mut carrier = std::collections::HashMap::new();
    flowtrace::propagation::TraceContext::new().inject_context(&cx, &mut carrier);
    let scope = custom_context(carrier);
    assert_eq!(scope.check(), Ok(()), "same trace: no error");
    let trace = scope.scope(nested()).await;
    cx.span().end();
    (trace, manual_id)
}

fn with_warnings<T>(f: impl FnOnce() -> T) -> T {
    // Warnings land on the current task span through flowtrace's layer.
    let subscriber = tracing_subscriber::registry().with(flowtrace_telemetry::layer());
    tracing::subscriber::with_default(subscriber, f)
}

#[test]
fn a_scope_cannot_silently_cut_its_task_off_the_trace() {
    exporter();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let run = with_warnings(|| rt.block_on(with_runcontext().run(refuses_a_foreign_parent())));
    let spans = spans_of(run.trace_id());
    let task = named(&spans, "refuses_a_foreign_parent");
    let inner = named(&spans, "nested");
    assert_eq!(
        run.output(),
        run.trace_id(),
        "the nested task stays in the run's trace"
    );
    assert_eq!(
        inner.parent_span_id,
        task.span_context.span_id(),
        "and under its caller"
    );
    let warning = task
        .events
        .iter()
        .find(|e| e.name.contains("override_parent"))
        .unwrap_or_else(|| panic!("a warning on the task span: {:?}", task.events));
    assert!(
        warning.name.contains(OTHER_TRACE) && warning.name.contains(run.trace_id()),
        "it names both traces: {}",
        warning.name
    );
    assert!(
        spans_of(OTHER_TRACE).is_empty(),
        "nothing went to the other trace"
    );
}

#[tokio::test]
async fn override_parent_moves_the_task_into_the_carried_trace() {
    exporter();
    let run = with_runcontext().run(switches_on_purpose()).await;
    assert_eq!(run.output(), SWITCH_TRACE);
    let moved = spans_of(SWITCH_TRACE);
    let inner = named(&moved, "nested");
    assert_eq!(inner.parent_span_id.to_string(), "b7ad6b7169203331");
    assert!(inner.parent_span_is_remote);
}

#[tokio::test]
async fn reparenting_within_the_trace_is_the_flyte_pattern() {
    exporter();
    let run = with_runcontext().run(reparents_within_the_trace()).await;
    let (trace, manual_id) = run.output().clone();
    assert_eq!(trace, run.trace_id());
    let spans = spans_of(run.trace_id());
    assert_eq!(
        named(&spans, "nested").parent_span_id.to_string(),
        manual_id,
        "the nested task is the manual span's child"
    );
}

#[tokio::test]
async fn try_scope_says_what_was_wrong() {
    exporter();
    let run = with_runcontext()
        .run(async {
            let foreign = custom_context([("traceparent", OTHER)])
                .try_scope(async {})
                .err();
            let too_long = custom_context([("k", "v".repeat(CustomContext::MAX_VALUE_BYTES + 1))])
                .try_scope(async {})
                .err();
            let bad_key = custom_context([("a\nb", "v")]).try_scope(async {}).err();
            let fine = match custom_context([("team", "search")])
                .try_scope(async { ctx().custom_context().get("team").map(str::to_owned) })
            {
                Ok(scoped) => scoped.await,
                Err(err) => panic!("ordinary pairs are accepted: {err}"),
            };
            let switched = custom_context([("traceparent", OTHER)])
                .override_parent()
                .check();
            (foreign, too_long, bad_key, fine, switched)
        })
        .await;
    let (foreign, too_long, bad_key, fine, switched) = run.into_output();
    let cases = [
        (
            foreign,
            ContextErrorKind::ParentOverride,
            "override_parent",
            "another trace",
        ),
        (
            too_long,
            ContextErrorKind::ValueTooLong,
            "8192 bytes",
            "a value over the limit",
        ),
        (
            bad_key,
            ContextErrorKind::BadKey,
            "control characters",
            "a control character in the key",
        ),
    ];
    for (err, kind, says, reason) in cases {
        let err = err.unwrap_or_else(|| panic!("{reason}: an error"));
        assert_eq!(err.kind(), kind, "{reason}");
        assert!(err.to_string().contains(says), "{reason}: {err}");
    }
    assert_eq!(fine.as_deref(), Some("search"));
    assert_eq!(switched, Ok(()), "override_parent accepts another trace");
}

#[tokio::test]
async fn outside_any_task_a_carrier_gives_the_parent() {
    exporter();
    let scope = custom_context([("traceparent", OUTSIDE)]);
    assert_eq!(scope.check(), Ok(()), "nothing to cut outside a task");
    assert_eq!(scope.scope(nested()).await, OUTSIDE_TRACE);
}
