//! The task call's cost budget, the part that is not a timing: a task call whose
//! span will not record allocates nothing, with no provider installed and
//! under an unsampled parent with a parent-based sampler; a recorded one
//! allocates only what the OpenTelemetry context and the SDK need (span box,
//! context entry, attribute list). The same holds for a task first polled
//! away from where it was called, under the caller it captured. Timings are
//! in `benches/`.

mod support;

use std::future::Future;

use flowtrace::traced;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{
    BatchSpanProcessor, Sampler, SdkTracerProvider, SpanData, SpanExporter,
};

use support::alloc::{Counting, allocations};

#[global_allocator]
static GLOBAL: Counting = Counting::PER_THREAD;

/// Counts spans on the batch processor's thread, so the calling thread's
/// allocations are the task call's alone.
#[derive(Debug, Default)]
struct CountingExporter(Arc<AtomicU64>);

impl SpanExporter for CountingExporter {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        self.0.fetch_add(batch.len() as u64, Ordering::Relaxed);
        Ok(())
    }
}

#[traced(skip_all)]
async fn leaf(x: u64) -> u64 {
    x.wrapping_add(1)
}

#[traced(ret, fields(doubled = x * 2))]
async fn leaf_with_options(x: u64) -> u64 {
    x.wrapping_add(1)
}

const N: u64 = 200;

/// Allocations per task call inside one run: `(allocs(2N) − allocs(N)) / N`,
/// so what the run itself allocates cancels out.
fn per_call<Fut: Future<Output = u64>>(
    rt: &tokio::runtime::Runtime,
    traceparent: Option<&str>,
    task: fn(u64) -> Fut,
) -> f64 {
    let run = |calls: u64| {
        let builder = match traceparent {
            Some(tp) => flowtrace::with_runcontext().custom_context([("traceparent", tp)]),
            None => flowtrace::with_runcontext(),
        };
        let future = builder.run(async move {
            let before = allocations();
            for i in 0..calls {
                std::hint::black_box(task(i).await);
            }
            allocations() - before
        });
        rt.block_on(future).into_output()
    };
    run(N); // warm up lazies and thread-locals
    let once = run(N);
    let twice = run(2 * N);
    twice.saturating_sub(once) as f64 / N as f64
}

/// The same for tasks called inside one run and first polled after it, where
/// no frame is current: each runs under the caller it captured at the call.
fn per_moved_call<Fut: Future<Output = u64>>(
    rt: &tokio::runtime::Runtime,
    traceparent: Option<&str>,
    task: fn(u64) -> Fut,
) -> f64 {
    let run = |calls: u64| {
        let builder = match traceparent {
            Some(tp) => flowtrace::with_runcontext().custom_context([("traceparent", tp)]),
            None => flowtrace::with_runcontext(),
        };
        rt.block_on(async move {
            let before = allocations();
            let called = builder
                .run(async move { (0..calls).map(task).collect::<Vec<_>>() })
                .await
                .into_output();
            for future in called {
                std::hint::black_box(future.await);
            }
            allocations() - before
        })
    };
    run(N);
    let once = run(N);
    let twice = run(2 * N);
    // Rounded: the vector of futures and the runtime may grow once per run.
    (twice.saturating_sub(once) as f64 / N as f64).round()
}

// One test: the global provider is process-wide.
#[test]
fn task_calls_allocate_only_for_spans_that_record() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let unsampled = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00";

    let no_provider = per_call(&rt, None, leaf);
    assert_eq!(no_provider, 0.0, "no provider: no allocation per task");
    let no_provider_moved = per_moved_call(&rt, None, leaf);
    assert_eq!(
        no_provider_moved, 0.0,
        "no provider, polled away from the caller: no allocation per task"
    );

    let exported = Arc::new(AtomicU64::new(0));
    let sampler = Sampler::ParentBased(Box::new(Sampler::AlwaysOn));
    let provider = SdkTracerProvider::builder()
        .with_sampler(sampler.clone())
        .with_span_processor(
            BatchSpanProcessor::builder(CountingExporter(exported.clone())).build(),
        )
        .build();
    flowtrace::set_tracer_provider(provider.clone(), &sampler);

    let skipped = per_call(&rt, Some(unsampled), leaf);
    assert_eq!(skipped, 0.0, "unsampled parent: no allocation per task");
    let skipped_options = per_call(&rt, Some(unsampled), leaf_with_options);
    assert_eq!(skipped_options, 0.0, "nor with ret and fields");
    let skipped_moved = per_moved_call(&rt, Some(unsampled), leaf);
    assert_eq!(
        skipped_moved, 0.0,
        "unsampled parent, polled away from the caller: no allocation per task"
    );
    provider.force_flush().unwrap();
    assert_eq!(exported.load(Ordering::Relaxed), 0, "and nothing recorded");

    // A recorded span: its box and its entry in the OpenTelemetry context
    // (`Context::with_span`), and the attribute list the SDK keeps.
    let sampled = per_call(&rt, None, leaf);
    eprintln!("allocations per recorded task call: {sampled}");
    provider.force_flush().unwrap();
    assert!(
        exported.load(Ordering::Relaxed) >= 4 * N,
        "the spans were recorded"
    );
    assert_eq!(sampled, 3.0, "a recorded task call allocates 3 times");
    let sampled_moved = per_moved_call(&rt, None, leaf);
    assert_eq!(
        sampled_moved, 3.0,
        "and 3 times when polled away from the caller"
    );
    let _ = provider.shutdown();
}
