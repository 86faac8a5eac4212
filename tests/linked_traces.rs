//! Linked traces at a real collector: a run that starts a new trace linked
//! to its carrier's span, a resumed run linked to the first attempt, and a
//! retry after a long backoff linked to the failed attempt (macro option and
//! `task()` builder).

mod support;

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use flowtrace::attributes::LINK_REASON;
use flowtrace::{Backoff, TaskTimeout, traced, with_runcontext};
use support::{Collector, Span, WAIT, span_named};

const CARRIER_TRACE: &str = "0af7651916cd43dd8448eb211c80319c";
const CARRIER_SPAN: &str = "b7ad6b7169203331";

#[derive(Debug)]
struct Flaky;

impl std::fmt::Display for Flaky {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("flaky")
    }
}

impl From<TaskTimeout> for Flaky {
    fn from(_: TaskTimeout) -> Self {
        Flaky
    }
}

#[traced]
async fn step() {}

static CALLS: AtomicU32 = AtomicU32::new(0);

#[traced(retries = 1, backoff = fixed, retry_delay = "200ms", new_trace_after = "100ms")]
async fn flaky_upload() -> Result<u32, Flaky> {
    step().await;
    if CALLS.fetch_add(1, Ordering::SeqCst) == 0 {
        Err(Flaky)
    } else {
        Ok(2)
    }
}

#[traced(retries = 1, backoff = fixed, retry_delay = "10ms", new_trace_after = "1h")]
async fn quick_retry() -> Result<u32, Flaky> {
    if CALLS.fetch_add(1, Ordering::SeqCst) == 2 {
        Err(Flaky)
    } else {
        Ok(3)
    }
}

fn link_reason(span: &Span) -> Vec<(&str, &str, &str)> {
    span.links
        .iter()
        .map(|l| {
            (
                l.trace_id.as_str(),
                l.span_id.as_str(),
                l.attributes
                    .iter()
                    .find(|(k, _)| k == LINK_REASON)
                    .map_or("", |(_, v)| v.as_str()),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn linked_modes_start_new_traces_joined_by_links() {
    let collector = Collector::start();
    let telemetry = collector.grpc_telemetry("linked", &[]);
    let carrier = [(
        "traceparent",
        format!("00-{CARRIER_TRACE}-{CARRIER_SPAN}-01"),
    )];

    // 1. A run under a carrier, in a new trace linked to the carrier's span.
    let linked = with_runcontext()
        .name("linked_run")
        .custom_context(carrier.clone())
        .new_trace(true)
        .run(step())
        .await;
    // The same carrier without the option: the run continues the trace.
    let continued = with_runcontext()
        .name("continued_run")
        .custom_context(carrier)
        .run(step())
        .await;
    assert_ne!(linked.trace_id(), CARRIER_TRACE);
    assert_eq!(continued.trace_id(), CARRIER_TRACE);

    // 2. A resumed run, in a new trace linked to the first attempt's run span.
    let first = with_runcontext().name("nightly").run(step()).await;
    let resumed = with_runcontext()
        .name("nightly")
        .resume(first.checkpoint())
        .new_trace(true)
        .run(step())
        .await;
    assert_eq!(resumed.run_id(), first.run_id());
    assert_ne!(resumed.trace_id(), first.trace_id());

    // 3. A retry after a long backoff, in a new trace linked to the failed attempt.
    let retried = with_runcontext().name("uploads").run(flaky_upload()).await;
    assert_eq!(retried.output().as_ref().ok(), Some(&2));
    // A short backoff stays in the trace.
    let quick = with_runcontext().name("quick").run(quick_retry()).await;
    assert_eq!(quick.output().as_ref().ok(), Some(&3));
    // The builder's option.
    let mut attempts = 0;
    let built = with_runcontext()
        .name("built")
        .run(
            flowtrace::task("fetch")
                .retries(1)
                .backoff(Backoff::fixed(Duration::from_millis(150)))
                .new_trace_after(Duration::from_millis(100))
                .run(|attempt| {
                    attempts += 1;
                    async move {
                        step().await;
                        if attempt == 1 {
                            Err(Flaky)
                        } else {
                            Ok(attempt)
                        }
                    }
                }),
        )
        .await;
    assert_eq!(attempts, 2);
    telemetry.force_flush().expect("flush");

    let spans = collector
        .wait_for_trace_async(linked.trace_id(), 2, WAIT)
        .await;
    let root = span_named(&spans, "linked_run");
    assert!(root.is_root(), "a new trace: the run span is its root");
    assert_eq!(
        link_reason(root),
        [(CARRIER_TRACE, CARRIER_SPAN, "carrier")]
    );
    assert_eq!(span_named(&spans, "step").parent_span_id, root.span_id);
    let spans = collector
        .wait_for_trace_async(continued.trace_id(), 1, WAIT)
        .await;
    assert_eq!(span_named(&spans, "step").parent_span_id, CARRIER_SPAN);

    let first_spans = collector
        .wait_for_trace_async(first.trace_id(), 2, WAIT)
        .await;
    let first_root = span_named(&first_spans, "nightly");
    let spans = collector
        .wait_for_trace_async(resumed.trace_id(), 2, WAIT)
        .await;
    let resumed_root = span_named(&spans, "nightly");
    assert!(resumed_root.is_root());
    assert_eq!(
        link_reason(resumed_root),
        [(first.trace_id(), first_root.span_id.as_str(), "resumed")]
    );
    assert_eq!(resumed_root.attr("flowtrace.run.id"), Some(first.run_id()));

    // The task span and attempt 1 in the run's trace, attempt 2 and the
    // step it called in a trace of its own, linked to attempt 1.
    let spans = collector
        .wait_for_trace_async(retried.trace_id(), 4, WAIT)
        .await;
    let task = span_named(&spans, "flaky_upload");
    let attempt1 = span_named(&spans, "flaky_upload attempt 1");
    assert_eq!(attempt1.parent_span_id, task.span_id);
    assert!(spans.iter().all(|s| s.name != "flaky_upload attempt 2"));
    let attempt2 = collector
        .wait_for_async("attempt 2", WAIT, |spans| {
            spans.iter().any(|s| s.name == "flaky_upload attempt 2")
        })
        .await
        .into_iter()
        .find(|s| s.name == "flaky_upload attempt 2")
        .unwrap();
    assert!(attempt2.is_root());
    assert_ne!(attempt2.trace_id, retried.trace_id());
    assert_eq!(
        link_reason(&attempt2),
        [(retried.trace_id(), attempt1.span_id.as_str(), "retry")]
    );
    let second = collector
        .wait_for_trace_async(&attempt2.trace_id, 2, WAIT)
        .await;
    assert_eq!(span_named(&second, "step").parent_span_id, attempt2.span_id);
    assert_eq!(
        attempt2.attr("flowtrace.run.id"),
        Some(retried.run_id()),
        "still the run's"
    );

    let spans = collector
        .wait_for_trace_async(quick.trace_id(), 4, WAIT)
        .await;
    let attempt2 = span_named(&spans, "quick_retry attempt 2");
    assert_eq!(
        attempt2.parent_span_id,
        span_named(&spans, "quick_retry").span_id
    );
    assert!(attempt2.links.is_empty());

    let spans = collector
        .wait_for_trace_async(built.trace_id(), 3, WAIT)
        .await;
    let attempt1 = span_named(&spans, "fetch attempt 1");
    let attempt2 = collector
        .wait_for_async("fetch attempt 2", WAIT, |spans| {
            spans.iter().any(|s| s.name == "fetch attempt 2")
        })
        .await
        .into_iter()
        .find(|s| s.name == "fetch attempt 2")
        .unwrap();
    assert!(attempt2.is_root());
    assert_eq!(
        link_reason(&attempt2),
        [(built.trace_id(), attempt1.span_id.as_str(), "retry")]
    );
    drop(telemetry);
}
