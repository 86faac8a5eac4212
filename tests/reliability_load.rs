//! Concurrency and load: 10 000 concurrent runs of nested tasks (joined and
//! spawned) on the multi-thread runtime, a fifth of them cancelled at a
//! random point. Every run's spans are in its own trace with its own run
//! id, no task sees another run's map, no worker thread keeps a task's
//! context afterwards, and the heap returns to its baseline.

mod support;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use flowtrace::{ctx, traced};
use opentelemetry::trace::{TraceContextExt as _, TracerProvider as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SdkTracerProvider, Span, SpanData, SpanProcessor};
use support::alloc::{Counting, current};

#[global_allocator]
static ALLOC: Counting = Counting::HEAP;

const RUNS: usize = 10_000;
/// Per finished run: the run span, `branch`, three `leaf`s.
const SPANS_PER_RUN: usize = 5;

/// What the test keeps of a finished span.
#[derive(Debug, Clone)]
struct Seen {
    trace: u128,
    name: String,
    run_id: Option<String>,
    seen: Option<String>,
}

/// A span processor that keeps the few fields above (no exporter, no I/O:
/// the test measures flowtrace, not a transport).
#[derive(Debug, Default, Clone)]
struct Keep(Arc<Mutex<Vec<Seen>>>);

impl SpanProcessor for Keep {
    fn on_start(&self, _: &mut Span, _: &Context) {}

    fn on_end(&self, span: SpanData) {
        let attr = |key: &str| {
            span.attributes
                .iter()
                .find(|kv| kv.key.as_str() == key)
                .map(|kv| kv.value.to_string())
        };
        let seen = Seen {
            trace: u128::from_be_bytes(span.span_context.trace_id().to_bytes()),
            name: span.name.to_string(),
            run_id: attr(flowtrace::attributes::RUN_ID),
            seen: attr("test.seen"),
        };
        self.0.lock().unwrap().push(seen);
    }

    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }

    fn shutdown_with_timeout(&self, _: Duration) -> OTelSdkResult {
        Ok(())
    }
}

#[traced]
async fn leaf(n: u32) -> String {
    for _ in 0..n {
        tokio::task::yield_now().await;
    }
    let seen = ctx().custom_context().get("i").unwrap_or("none").to_owned();
    Context::current()
        .span()
        .set_attribute(KeyValue::new("test.seen", seen.clone()));
    seen
}

#[traced]
async fn branch() -> Vec<String> {
    let spawned = flowtrace::spawn(leaf(1));
    let (a, b) = tokio::join!(leaf(0), leaf(2));
    vec![a, b, spawned.await.expect("spawned leaf")]
}

/// A cheap deterministic "random" number per run.
fn mix(i: usize) -> u64 {
    (i as u64 ^ 0x9e37_79b9_7f4a_7c15).wrapping_mul(0xbf58_476d_1ce4_e5b9) >> 33
}

#[test]
fn ten_thousand_concurrent_runs_with_cancellations() {
    let keep = Keep::default();
    let provider = SdkTracerProvider::builder()
        .with_span_processor(keep.clone())
        .build();
    opentelemetry::global::set_tracer_provider(provider.clone());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();
    // Warm up everything that allocates once (runtime, globals, thread
    // locals), then take the baseline.
    runtime.block_on(async {
        flowtrace::with_runcontext().run(branch()).await;
    });
    keep.0.lock().unwrap().clear();
    let baseline = current();

    let started = Instant::now();
    let (finished, cancelled) = runtime.block_on(async {
        let mut handles = Vec::with_capacity(RUNS);
        for i in 0..RUNS {
            let run = flowtrace::with_runcontext()
                .name("load")
                .custom_context([("i", i.to_string())])
                .run(branch());
            handles.push(tokio::spawn(run));
            if i % 5 == 0 {
                // Cancelled a few polls in, at a point that varies per run.
                let victim = handles.len() - 1;
                let delay = mix(i) % 4;
                let handle = handles[victim].abort_handle();
                tokio::spawn(async move {
                    for _ in 0..delay {
                        tokio::task::yield_now().await;
                    }
                    handle.abort();
                });
            }
        }
        let mut finished = Vec::new();
        let mut cancelled = 0;
        for (i, handle) in handles.into_iter().enumerate() {
            match handle.await {
                Ok(run) => finished.push((i, run)),
                Err(e) if e.is_cancelled() => cancelled += 1,
                Err(e) => panic!("run {i}: {e}"),
            }
        }
        (finished, cancelled)
    });
    let took = started.elapsed();
    eprintln!(
        "load: {RUNS} runs ({cancelled} cancelled) in {took:?}, {} spans",
        keep.0.lock().unwrap().len()
    );
    assert!(
        took < Duration::from_secs(60),
        "seconds, not minutes: {took:?}"
    );
    assert!(cancelled > 0, "some runs were cancelled mid-way");

    let spans = std::mem::take(&mut *keep.0.lock().unwrap());
    let mut by_trace: HashMap<u128, Vec<&Seen>> = HashMap::new();
    for span in &spans {
        by_trace.entry(span.trace).or_default().push(span);
    }
    // Every trace holds exactly one run, cancelled or not.
    let mut run_ids = HashSet::new();
    for (trace, spans) in &by_trace {
        let ids: HashSet<&Option<String>> = spans.iter().map(|s| &s.run_id).collect();
        assert_eq!(ids.len(), 1, "trace {trace:032x} mixes runs: {spans:?}");
        let id = ids.into_iter().next().unwrap().clone();
        assert!(id.is_some(), "every span carries its run id");
        assert!(run_ids.insert(id), "a run id in two traces");
    }
    for (i, run) in &finished {
        assert_eq!(
            run.output(),
            &vec![i.to_string(); 3],
            "run {i} saw only its own map"
        );
        let trace = u128::from_str_radix(run.trace_id(), 16).unwrap();
        let spans = &by_trace[&trace];
        assert_eq!(spans.len(), SPANS_PER_RUN, "run {i}: {spans:?}");
        for span in spans {
            assert_eq!(span.run_id.as_deref(), Some(run.run_id()));
            if span.name == "leaf" {
                assert_eq!(span.seen.as_deref(), Some(i.to_string().as_str()));
            }
        }
    }
    assert!(
        by_trace.len() >= finished.len(),
        "cancelled runs that started have their own traces too"
    );

    // No task's context stays behind on any worker thread.
    let leaked = runtime.block_on(async {
        let checks = (0..64).map(|_| {
            tokio::spawn(async {
                tokio::task::yield_now().await;
                let view = ctx();
                !view.custom_context().is_empty()
                    || !view.run_id().is_empty()
                    || Context::current().has_active_span()
            })
        });
        futures::future::join_all(checks).await
    });
    assert!(
        leaked.into_iter().all(|l| !l.unwrap()),
        "a worker kept a task's context"
    );

    drop((finished, by_trace, run_ids));
    drop(spans);
    let after = current();
    eprintln!(
        "load: heap {} KiB above the baseline after the runs",
        after.saturating_sub(baseline) / 1024
    );
    assert!(
        after < baseline + 512 * 1024,
        "memory back to baseline: {baseline} before, {after} after"
    );
    drop(runtime);
    let _ = provider.tracer("done");
}
