//! Lifecycle spans: retries, timeouts, cancellation, caching, map fan-out,
//! run tallies, deterministic trace ids and resumed runs — each asserted on
//! the exported spans.

mod support;

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use flowtrace::{RunStatus, TaskTimeout, traced, with_runcontext};
use opentelemetry::Value;
use opentelemetry::trace::Status;
use support::in_memory::{attr, attr_str, named, parent_of, spans_of, traced_in_root};

#[derive(Debug, Clone, PartialEq)]
enum Error {
    Flaky(u32),
    Timeout,
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Flaky(n) => write!(f, "flaky attempt {n}"),
            Error::Timeout => f.write_str("timed out"),
        }
    }
}

impl From<TaskTimeout> for Error {
    fn from(_: TaskTimeout) -> Self {
        Error::Timeout
    }
}

static FLAKY_CALLS: AtomicUsize = AtomicUsize::new(0);

#[traced]
async fn nested() {}

#[traced(retries = 3, backoff = fixed, retry_delay = "5ms")]
async fn flaky(label: String) -> Result<String, Error> {
    let call = FLAKY_CALLS.fetch_add(1, Ordering::SeqCst) as u32 + 1;
    nested().await;
    if call < 3 {
        return Err(Error::Flaky(call));
    }
    Ok(format!("{label} after {call}"))
}

#[tokio::test]
async fn a_task_that_fails_twice_then_succeeds_has_three_attempt_spans() {
    let (out, spans) = traced_in_root(flaky("x".into())).await;
    assert_eq!(out.unwrap(), "x after 3");
    let task = named(&spans, "flaky");
    assert_eq!(task.status, Status::Unset, "the call succeeded");
    assert_eq!(attr(task, "flowtrace.task.retries"), Some(Value::I64(3)));
    let retries: Vec<_> = task.events.iter().filter(|e| e.name == "retry").collect();
    assert_eq!(retries.len(), 2, "a retry event per failure");
    let message = |e: &opentelemetry::trace::Event| {
        e.attributes
            .iter()
            .find(|kv| kv.key.as_str() == "exception.message")
            .map(|kv| kv.value.to_string())
    };
    assert_eq!(message(retries[0]).as_deref(), Some("flaky attempt 1"));
    assert_eq!(message(retries[1]).as_deref(), Some("flaky attempt 2"));
    for n in 1..=3 {
        let attempt = named(&spans, &format!("flaky attempt {n}"));
        assert_eq!(
            parent_of(&spans, attempt).map(|p| p.name.as_ref()),
            Some("flaky")
        );
        assert_eq!(attr(attempt, "flowtrace.task.attempt"), Some(Value::I64(n)));
        let ok = n == 3;
        assert_eq!(
            matches!(attempt.status, Status::Ok),
            ok,
            "attempt {n}: {:?}",
            attempt.status
        );
        assert_eq!(
            matches!(attempt.status, Status::Error { .. }),
            !ok,
            "attempt {n}"
        );
    }
    for inner in spans.iter().filter(|s| s.name == "nested") {
        let parent = parent_of(&spans, inner).unwrap();
        assert!(
            parent.name.starts_with("flaky attempt "),
            "nested tasks are children of their attempt"
        );
    }
    let first = named(&spans, "flaky attempt 1");
    let second = named(&spans, "flaky attempt 2");
    let gap = second.start_time.duration_since(first.end_time).unwrap();
    assert!(
        gap >= Duration::from_millis(5),
        "the backoff shows as a gap: {gap:?}"
    );
}

#[traced(timeout = "30ms")]
async fn slow() -> Result<(), Error> {
    tokio::time::sleep(Duration::from_secs(10)).await;
    Ok(())
}

#[tokio::test]
async fn a_timeout_ends_the_task_with_an_error() {
    let started = Instant::now();
    let (out, spans) = traced_in_root(slow()).await;
    assert_eq!(out, Err(Error::Timeout));
    assert!(started.elapsed() < Duration::from_secs(5));
    let task = named(&spans, "slow");
    assert_eq!(
        attr(task, "flowtrace.task.timeout"),
        Some(Value::Bool(true))
    );
    assert!(matches!(&task.status, Status::Error { description } if description == "timed out"));
}

#[traced]
async fn loses_the_race() {
    tokio::time::sleep(Duration::from_secs(10)).await;
}

#[traced]
async fn wins_the_race() {
    tokio::time::sleep(Duration::from_millis(10)).await;
}

#[tokio::test]
async fn the_losing_branch_of_select_is_marked_cancelled() {
    let (_, spans) = traced_in_root(async {
        tokio::select! {
            biased;
            _ = loses_the_race() => {},
            _ = wins_the_race() => {},
        }
    })
    .await;
    let lost = named(&spans, "loses_the_race");
    assert_eq!(
        attr(lost, "flowtrace.task.cancelled"),
        Some(Value::Bool(true))
    );
    assert_eq!(
        attr(named(&spans, "wins_the_race"), "flowtrace.task.cancelled"),
        None
    );
}

static EMBED_CALLS: AtomicUsize = AtomicUsize::new(0);

#[traced(cache = text)]
async fn embed(text: String) -> Result<Vec<f32>, Error> {
    EMBED_CALLS.fetch_add(1, Ordering::SeqCst);
    Ok(vec![text.len() as f32])
}

#[tokio::test]
async fn a_cache_hit_is_a_zero_work_span() {
    flowtrace::cache::clear();
    let (out, spans) = traced_in_root(async {
        let a = embed("cached text".into()).await.unwrap();
        let b = embed("cached text".into()).await.unwrap();
        (a, b)
    })
    .await;
    assert_eq!(out.0, out.1);
    assert_eq!(
        EMBED_CALLS.load(Ordering::SeqCst),
        1,
        "the second call did not run"
    );
    let calls: Vec<_> = spans.iter().filter(|s| s.name == "embed").collect();
    assert_eq!(calls.len(), 2);
    let cached: Vec<_> = calls
        .iter()
        .filter(|s| attr(s, "flowtrace.task.cached") == Some(Value::Bool(true)))
        .collect();
    assert_eq!(cached.len(), 1);
}

#[traced]
async fn item(n: usize) -> usize {
    tokio::task::yield_now().await;
    n * 2
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_tasks_fan_out_with_bounded_concurrency() {
    let (out, spans) = traced_in_root(flowtrace::map(0..10_000, item, 64)).await;
    assert_eq!(
        out,
        (0..10_000).map(|n| n * 2).collect::<Vec<_>>(),
        "ordered results"
    );
    let root = named(&spans, "test-root");
    let items: Vec<_> = spans.iter().filter(|s| s.name == "item").collect();
    assert_eq!(items.len(), 10_000);
    let mut indexes = HashSet::new();
    let mut waited = 0;
    for span in &items {
        assert_eq!(span.parent_span_id, root.span_context.span_id());
        let Some(Value::I64(index)) = attr(span, "flowtrace.map.index") else {
            panic!("map index")
        };
        assert_eq!(attr_str(span, "flowtrace.input.n"), Some(index.to_string()));
        indexes.insert(index);
        match attr(span, "flowtrace.task.queue_wait_ms") {
            Some(Value::F64(ms)) if ms > 0.0 => waited += 1,
            Some(Value::F64(_)) => {}
            other => panic!("queue wait: {other:?}"),
        }
    }
    assert_eq!(indexes.len(), 10_000);
    assert!(
        waited > 9_000,
        "items beyond the first 64 waited for a slot: {waited}"
    );
}

#[traced]
async fn check(n: u32) -> Result<u32, Error> {
    tokio::time::sleep(Duration::from_millis(if n == 3 { 5_000 } else { 10 })).await;
    if n == 2 {
        return Err(Error::Flaky(n));
    }
    Ok(n)
}

#[tokio::test]
async fn try_map_fails_fast_and_cancels_the_rest() {
    let started = Instant::now();
    let (out, spans) = traced_in_root(flowtrace::try_map([1, 2, 3], check, 3)).await;
    assert_eq!(out, Err(Error::Flaky(2)));
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "did not wait for the slow item"
    );
    let slow = spans
        .iter()
        .find(|s| s.name == "check" && attr(s, "flowtrace.input.n") == Some(Value::I64(3)))
        .unwrap();
    assert_eq!(
        attr(slow, "flowtrace.task.cancelled"),
        Some(Value::Bool(true))
    );
}

#[traced]
async fn fails_at_top() -> Result<(), Error> {
    let _ = check(2).await;
    Err(Error::Flaky(0))
}

#[traced]
async fn handles_a_failure() -> Result<Option<u32>, Error> {
    Ok(check(2).await.ok())
}

#[tokio::test]
async fn runs_report_status_duration_and_tallies() {
    support::in_memory::exporter();
    let run = with_runcontext().run(fails_at_top()).await;
    assert_eq!(run.status(), RunStatus::Failed);
    assert_eq!(run.task_count(), 2);
    assert_eq!(run.error_count(), 2);
    assert!(run.duration() > Duration::ZERO);
    let spans = spans_of(run.trace_id());
    assert!(
        matches!(named(&spans, "run").status, Status::Error { .. }),
        "the run span shows the failure"
    );

    let run = with_runcontext().run(handles_a_failure()).await;
    assert_eq!(
        run.status(),
        RunStatus::Succeeded,
        "a handled error does not fail the run"
    );
    assert_eq!(run.error_count(), 1);
}

#[tokio::test]
async fn a_deterministic_trace_id_comes_from_the_run_id() {
    support::in_memory::exporter();
    let first = with_runcontext()
        .run_id("nightly-2026-11-23")
        .deterministic_trace_id(true)
        .run(item(1))
        .await;
    let again = with_runcontext()
        .run_id("nightly-2026-11-23")
        .deterministic_trace_id(true)
        .run(item(1))
        .await;
    let other = with_runcontext()
        .run_id("nightly-2026-11-24")
        .deterministic_trace_id(true)
        .run(item(1))
        .await;
    assert_eq!(first.trace_id(), again.trace_id());
    assert_ne!(first.trace_id(), other.trace_id());
    assert_eq!(
        first.trace_id(),
        flowtrace::trace_id_for("nightly-2026-11-23").to_string()
    );
    let random = with_runcontext()
        .run_id("nightly-2026-11-23")
        .run(item(1))
        .await;
    assert_ne!(random.trace_id(), first.trace_id(), "off by default");
}

static STEP_CALLS: AtomicUsize = AtomicUsize::new(0);

#[traced(cache = format!("step-{n}"))]
async fn step(n: u32) -> u32 {
    STEP_CALLS.fetch_add(1, Ordering::SeqCst);
    n + 100
}

#[tokio::test]
async fn a_resumed_run_replays_recorded_outputs_without_work() {
    support::in_memory::exporter();
    let first = with_runcontext()
        .run(async { step(1).await + step(2).await })
        .await;
    let checkpoint = first.checkpoint();
    assert_eq!(checkpoint.outputs.len(), 2);
    flowtrace::cache::clear();
    let calls = STEP_CALLS.load(Ordering::SeqCst);
    let json = serde_json::to_string(&checkpoint).unwrap();
    let resumed = with_runcontext()
        .deterministic_trace_id(true)
        .resume(serde_json::from_str(&json).unwrap())
        .run(async { step(1).await + step(2).await + step(3).await })
        .await;
    assert_eq!(*resumed.output(), 101 + 102 + 103);
    assert_eq!(resumed.run_id(), first.run_id());
    assert_eq!(
        STEP_CALLS.load(Ordering::SeqCst),
        calls + 1,
        "only step 3 ran"
    );
    let spans = spans_of(resumed.trace_id());
    let replayed = spans
        .iter()
        .filter(|s| attr(s, "flowtrace.task.replayed") == Some(Value::Bool(true)))
        .count();
    assert_eq!(replayed, 2);
    assert_eq!(resumed.checkpoint().outputs.len(), 3);
}

#[tokio::test]
async fn the_builder_gives_the_same_lifecycle_without_the_macro() {
    let (out, spans) = traced_in_root(
        flowtrace::task("manual")
            .retries(1)
            .backoff(flowtrace::Backoff::fixed(Duration::from_millis(1)))
            .run(|attempt| async move {
                if attempt == 1 {
                    Err(Error::Flaky(1))
                } else {
                    Ok(attempt)
                }
            }),
    )
    .await;
    assert_eq!(out, Ok(2));
    assert_eq!(
        spans
            .iter()
            .filter(|s| s.name.starts_with("manual attempt"))
            .count(),
        2
    );
    assert_eq!(named(&spans, "manual").status, Status::Unset);
}
