//! What the micro-benchmarks export into: an SDK batch processor in front of
//! an exporter that only counts (so the rows measure the tracing layer, not
//! I/O) and a fastrace reporter that only counts.

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
