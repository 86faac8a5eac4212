//! What the micro-benchmarks export into: an SDK batch processor in front of
//! an exporter that only counts (so the rows measure the tracing layer, not
//! I/O), a fastrace reporter that only counts, and a per-thread counting
//! allocator.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use opentelemetry::global;
use opentelemetry::trace::noop::NoopTracerProvider;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::logs::{
    BatchConfigBuilder as LogBatchConfigBuilder, BatchLogProcessor, LogBatch, LogExporter,
    SdkLoggerProvider,
};
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, Sampler, SdkTracerProvider, SpanData, SpanExporter,
};

/// Spans the counting exporter was handed, over the whole process.
pub static EXPORTED: AtomicU64 = AtomicU64::new(0);
/// Spans the fastrace reporter was handed.
pub static FASTRACE_REPORTED: AtomicU64 = AtomicU64::new(0);

/// An exporter that counts the spans of each batch and drops them.
#[derive(Debug, Default)]
pub struct CountingExporter;

impl SpanExporter for CountingExporter {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        EXPORTED.fetch_add(batch.len() as u64, Ordering::Relaxed);
        Ok(())
    }
}

/// A provider as an application would build it: the parent-based
/// always-on sampler (the SDK's and flowtrace's default) and one batch
/// processor with the specification's defaults (queue 2048, batch 512,
/// 5 s delay), set here so `OTEL_BSP_*` in the environment cannot change
/// what is measured.
pub fn provider() -> SdkTracerProvider {
    let config = BatchConfigBuilder::default()
        .with_max_queue_size(2048)
        .with_max_export_batch_size(512)
        .with_scheduled_delay(Duration::from_secs(5))
        .build();
    let processor = BatchSpanProcessor::builder(CountingExporter)
        .with_batch_config(config)
        .build();
    SdkTracerProvider::builder()
        .with_sampler(Sampler::ParentBased(Box::new(Sampler::AlwaysOn)))
        .with_span_processor(processor)
        .build()
}

/// Makes `provider` the global one the way `flowtrace_telemetry::init()`
/// does (what flowtrace's tasks use), telling flowtrace its sampler.
pub fn install(provider: &SdkTracerProvider) {
    flowtrace::set_tracer_provider(
        provider.clone(),
        &Sampler::ParentBased(Box::new(Sampler::AlwaysOn)),
    );
}

/// Makes `provider` the global one with `opentelemetry::global` directly,
/// as an application that does not tell flowtrace about it would.
pub fn install_directly(provider: &SdkTracerProvider) {
    global::set_tracer_provider(provider.clone());
}

/// Installs an SDK meter provider (a periodic reader with an hour's
/// interval: nothing collects during the measurement) for flowtrace's task
/// and run metrics.
pub fn install_metrics() {
    use std::sync::LazyLock;
    static METERS: LazyLock<opentelemetry_sdk::metrics::SdkMeterProvider> = LazyLock::new(|| {
        opentelemetry_sdk::metrics::SdkMeterProvider::builder()
            .with_reader(
                opentelemetry_sdk::metrics::PeriodicReader::builder(
                    opentelemetry_sdk::metrics::InMemoryMetricExporter::default(),
                )
                .with_interval(Duration::from_secs(3600))
                .build(),
            )
            .build()
    });
    flowtrace::metrics::set_meter_provider(&*METERS);
}

/// Log records the counting log exporter was handed (the start records).
pub static LOGS_EXPORTED: AtomicU64 = AtomicU64::new(0);

/// A log exporter that counts the records of each batch and drops them.
#[derive(Debug, Default)]
pub struct CountingLogExporter;

impl LogExporter for CountingLogExporter {
    async fn export(&self, batch: LogBatch<'_>) -> OTelSdkResult {
        LOGS_EXPORTED.fetch_add(batch.iter().count() as u64, Ordering::Relaxed);
        Ok(())
    }
}

/// Installs an SDK logger provider (the SDK's batch log processor with the
/// specification's defaults: queue 2048, batch 512, 1 s delay) with
/// `flowtrace::set_logger_provider`, so tasks that record write their
/// start records.
pub fn install_logs() {
    use std::sync::LazyLock;
    static LOGS: LazyLock<SdkLoggerProvider> = LazyLock::new(|| {
        let processor = BatchLogProcessor::builder(CountingLogExporter)
            .with_batch_config(
                LogBatchConfigBuilder::default()
                    .with_max_queue_size(2048)
                    .with_max_export_batch_size(512)
                    .with_scheduled_delay(Duration::from_secs(1))
                    .build(),
            )
            .build();
        SdkLoggerProvider::builder()
            .with_log_processor(processor)
            .build()
    });
    flowtrace::set_logger_provider(&LOGS);
}

/// Puts the global no-op provider back: "no provider installed".
pub fn uninstall() {
    global::set_tracer_provider(NoopTracerProvider::new());
}

/// A fastrace reporter that counts and drops.
pub struct CountingReporter;

impl fastrace::collector::Reporter for CountingReporter {
    fn report(&mut self, spans: Vec<fastrace::collector::SpanRecord>) {
        FASTRACE_REPORTED.fetch_add(spans.len() as u64, Ordering::Relaxed);
    }
}

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
    static BYTES: Cell<u64> = const { Cell::new(0) };
}

/// The system allocator, counting the allocations (and reallocations) made
/// by the current thread while [`count_allocations`] runs.
pub struct CountingAlloc;

impl CountingAlloc {
    fn note(size: usize) {
        // `try_with`: during thread teardown the slots may be gone.
        if COUNTING.try_with(Cell::get).unwrap_or(false) {
            let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
            let _ = BYTES.try_with(|n| n.set(n.get() + size as u64));
        }
    }
}

// SAFETY: every call is forwarded to `System` unchanged; the counters are
// const-initialised thread locals without destructors, so touching them
// never allocates.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        Self::note(layout.size());
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        Self::note(layout.size());
        // SAFETY: same contract as ours.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        Self::note(new_size);
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
}

/// Allocations and bytes requested by this thread while `f` runs.
pub fn count_allocations<T>(f: impl FnOnce() -> T) -> (T, u64, u64) {
    let before = (ALLOCATIONS.with(Cell::get), BYTES.with(Cell::get));
    COUNTING.with(|c| c.set(true));
    let out = f();
    COUNTING.with(|c| c.set(false));
    let after = (ALLOCATIONS.with(Cell::get), BYTES.with(Cell::get));
    (out, after.0 - before.0, after.1 - before.1)
}
