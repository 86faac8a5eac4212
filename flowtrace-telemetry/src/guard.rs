//! The guard `init()` returns: keeps the provider, reports what configuration
//! problems were found, counts what the exporters lost, and flushes and
//! shuts down on drop within a bound.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use opentelemetry_sdk::error::OTelSdkError;
use opentelemetry_sdk::logs::SdkLoggerProvider;
use opentelemetry_sdk::trace::SdkTracerProvider;

use super::export::{Item, LogItem};
use super::processor::{Pending, Processor};
use super::stats::ExportStats;
use super::summary::{self, Delivery};
use super::warning::ConfigWarning;

/// The installed telemetry. Dropping it exports the spans still queued and
/// shuts the exporters down; errors then become one line on stderr.
///
/// Neither [`shutdown`](Self::shutdown) nor the drop depends on the
/// application's async runtime (each exporter runs on its own thread and
/// runtime), so both are safe on any thread — including the main thread of
/// a `current_thread` runtime — and return within the export timeout:
/// `OTEL_EXPORTER_OTLP_TIMEOUT` or `OTEL_BSP_EXPORT_TIMEOUT`, whichever is
/// shorter, for OTLP; `OTEL_BSP_EXPORT_TIMEOUT` for the file and console.
/// All exporters shut down in parallel against that one bound.
///
/// Spans and log records that could not be delivered are counted
/// ([`stats`](Self::stats), [`log_stats`](Self::log_stats)), and shutdown
/// prints one line when any were lost, per exporter and with the reason:
/// `flowtrace: 7 spans and 11 log records were not delivered: otlp lost 7
/// of 7 spans (left at shutdown: 7) and 11 of 11 log records (left at
/// shutdown: 11); last error: …`, with what metrics lost after `; metrics:`. Undelivered telemetry is not the workflow's failure:
/// [`shutdown`](Self::shutdown) returns the error to a program that wants
/// it, and a program that only drops the guard (or ignores that error)
/// exits as its workflow did.
///
/// ```no_run
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let telemetry = flowtrace_telemetry::init()?;
/// for warning in telemetry.warnings() {
///     eprintln!("telemetry: {warning}");
/// }
/// // ... run the workflow ...
/// // Or just let it drop. A lost span is already reported on stderr, and
/// // is no reason for the workflow's process to fail.
/// if let Err(err) = telemetry.shutdown() {
///     eprintln!("telemetry incomplete: {err}");
/// }
/// # Ok(()) }
/// ```
#[must_use = "dropping the guard shuts telemetry down at once"]
#[derive(Debug)]
pub struct Telemetry {
    provider: SdkTracerProvider,
    processors: Vec<Processor>,
    /// Each processor's exporter, as named in `OTEL_TRACES_EXPORTER`.
    exporters: Vec<&'static str>,
    warnings: Vec<ConfigWarning>,
    trace_file: Option<PathBuf>,
    /// The log records' provider, processors and file (`telemetry::logs`).
    logs: Option<SdkLoggerProvider>,
    log_processors: Vec<Processor<LogItem>>,
    /// Each log processor's exporter, as named in `OTEL_LOGS_EXPORTER`.
    log_exporters: Vec<&'static str>,
    log_file: Option<PathBuf>,
    /// The meter provider and its file (`telemetry::metrics`).
    metrics: Option<crate::metrics::Pipeline>,
    metrics_file: Option<PathBuf>,
    /// `false` for the inert guard of `OTEL_SDK_DISABLED=true`.
    active: bool,
    shut_down: AtomicBool,
    /// Whether shutdown printed its line about lost telemetry.
    reported: AtomicBool,
}

impl Telemetry {
    pub(crate) fn new(
        provider: SdkTracerProvider,
        processors: Vec<(&'static str, Processor)>,
        warnings: Vec<ConfigWarning>,
        trace_file: Option<PathBuf>,
    ) -> Self {
        let (exporters, processors) = processors.into_iter().unzip();
        Self {
            provider,
            processors,
            exporters,
            warnings,
            trace_file,
            logs: None,
            log_processors: Vec::new(),
            log_exporters: Vec::new(),
            log_file: None,
            metrics: None,
            metrics_file: None,
            active: true,
            shut_down: AtomicBool::new(false),
            reported: AtomicBool::new(false),
        }
    }

    /// Adds the logger provider, flushed and shut down with the spans.
    pub(crate) fn with_logs(
        mut self,
        logs: Option<SdkLoggerProvider>,
        processors: Vec<(&'static str, Processor<LogItem>)>,
        file: Option<PathBuf>,
    ) -> Self {
        self.logs = logs;
        (self.log_exporters, self.log_processors) = processors.into_iter().unzip();
        self.log_file = file;
        self
    }

    /// Adds the meter provider, flushed and shut down with the spans.
    pub(crate) fn with_metrics(
        mut self,
        metrics: Option<crate::metrics::Pipeline>,
        file: Option<PathBuf>,
    ) -> Self {
        self.metrics = metrics;
        self.metrics_file = file;
        self
    }

    /// The guard of a disabled SDK: installs nothing, exports nothing.
    pub(crate) fn inert(warnings: Vec<ConfigWarning>) -> Self {
        Self {
            // A provider without processors: spans from it go nowhere.
            provider: SdkTracerProvider::builder().build(),
            processors: Vec::new(),
            exporters: Vec::new(),
            warnings,
            trace_file: None,
            logs: None,
            log_processors: Vec::new(),
            log_exporters: Vec::new(),
            log_file: None,
            metrics: None,
            metrics_file: None,
            active: false,
            shut_down: AtomicBool::new(false),
            reported: AtomicBool::new(false),
        }
    }

    /// The longest any call of this guard blocks: the largest export
    /// timeout of its exporters (zero with none).
    ///
    /// ```
    /// let telemetry = flowtrace_telemetry::builder()
    ///     .env_vars([("OTEL_TRACES_EXPORTER", "none")])
    ///     .install_tracing_subscriber(false)
    ///     .init()
    ///     .unwrap();
    /// assert_eq!(telemetry.timeout(), std::time::Duration::ZERO);
    /// ```
    pub fn timeout(&self) -> Duration {
        let spans = self.processors.iter().map(Processor::timeout);
        let logs = self.log_processors.iter().map(Processor::timeout);
        let metrics = self.metrics.as_ref().map(crate::metrics::Pipeline::timeout);
        spans
            .chain(logs)
            .chain(metrics)
            .max()
            .unwrap_or(Duration::ZERO)
    }

    /// Exports every span that has ended so far, all exporters in parallel,
    /// waiting at most the export timeout. Spans that could not be sent in
    /// time stay queued (nothing is dropped by a flush).
    pub fn force_flush(&self) -> Result<(), OTelSdkError> {
        if !self.active {
            return Ok(());
        }
        if self.shut_down.load(Ordering::Acquire) {
            return Err(OTelSdkError::AlreadyShutdown);
        }
        let now = Instant::now();
        let spans = self
            .processors
            .iter()
            .map(|p| p.begin_flush(now + p.timeout()));
        let logs = (self.log_processors.iter()).map(|p| p.begin_flush(now + p.timeout()));
        let pending: Vec<Pending> = spans.chain(logs).collect();
        let metrics = self
            .metrics
            .as_ref()
            .map(crate::metrics::Pipeline::force_flush);
        first_error(pending.into_iter().map(Pending::wait).chain(metrics))
    }

    /// Exports what is still queued, then shuts the exporters down, waiting
    /// at most the export timeout. Idempotent: later calls return `Ok(())`.
    /// Spans ended afterwards are not recorded (and are counted as dropped).
    /// Returns an error when spans were lost at shutdown.
    pub fn shutdown(&self) -> Result<(), OTelSdkError> {
        if !self.active || self.shut_down.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        let now = Instant::now();
        // All at once, so the bound is one timeout, not one per exporter.
        // Log records shut down beside the spans, against the same bound.
        if self.logs.is_some() {
            flowtrace::remove_logger_provider();
        }
        let bound = self.timeout().max(Duration::from_secs(1));
        let spans = (self.processors.iter()).filter_map(|p| p.begin_shutdown(now + p.timeout()));
        let logs = (self.log_processors.iter()).filter_map(|p| p.begin_shutdown(now + p.timeout()));
        let pending: Vec<Pending> = spans.chain(logs).collect();
        // Metrics: the final collection, against the same deadline.
        let metrics = self
            .metrics
            .as_ref()
            .map(|metrics| metrics.begin_shutdown(now + bound));
        let result = first_error(pending.into_iter().map(Pending::wait));
        let (metrics_result, metrics_lost) = match metrics {
            Some(metrics) => metrics.wait(),
            None => (Ok(()), None),
        };
        let result = first_error([result, metrics_result].into_iter());
        // The processors are done; this only marks the providers shut down
        // (their tracers and loggers become no-ops) and returns at once.
        let _ = self
            .provider
            .shutdown_with_timeout(Duration::from_millis(1));
        if let Some(logs) = &self.logs {
            let _ = logs.shutdown_with_timeout(Duration::from_millis(1));
        }
        let line = match (
            summary::line(&self.span_deliveries(), &self.log_deliveries()),
            metrics_lost,
        ) {
            (Some(line), Some(metrics)) => Some(format!("{line}; metrics: {metrics}")),
            (line, None) => line,
            (None, Some(metrics)) => Some(format!("metrics: {metrics}")),
        };
        if let Some(line) = line {
            // One line for every signal. `writeln!`, not `eprintln!`, which
            // panics when stderr is closed.
            let _ = writeln!(std::io::stderr(), "flowtrace: {line}");
            self.reported.store(true, Ordering::Release);
        }
        result
    }

    fn span_deliveries(&self) -> Vec<Delivery> {
        deliveries(&self.exporters, &self.processors)
    }

    fn log_deliveries(&self) -> Vec<Delivery> {
        deliveries(&self.log_exporters, &self.log_processors)
    }

    /// What the exporters did so far: spans exported, and spans dropped by
    /// reason. Final once [`shutdown`](Self::shutdown) returned.
    ///
    /// ```no_run
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let telemetry = flowtrace_telemetry::init()?;
    /// // ... run the workflow ...
    /// let _ = telemetry.shutdown();
    /// let stats = telemetry.stats();
    /// if stats.dropped() > 0 {
    ///     eprintln!("lost {} spans: {stats}", stats.dropped());
    /// }
    /// # Ok(()) }
    /// ```
    pub fn stats(&self) -> ExportStats {
        let mut total = ExportStats::default();
        for processor in &self.processors {
            total.add(&processor.stats());
        }
        total
    }

    /// The same counts for log records, summed over the log exporters
    /// (their queues are `OTEL_BLRP_MAX_QUEUE_SIZE` long).
    ///
    /// ```
    /// let telemetry = flowtrace_telemetry::builder()
    ///     .env_vars([("OTEL_TRACES_EXPORTER", "none")])
    ///     .install_tracing_subscriber(false)
    ///     .init()
    ///     .unwrap();
    /// assert_eq!(telemetry.log_stats().dropped(), 0);
    /// ```
    pub fn log_stats(&self) -> ExportStats {
        let mut total = ExportStats::default();
        for processor in &self.log_processors {
            total.add(&processor.stats());
        }
        total
    }

    /// Problems found in the configuration (each also printed once to stderr
    /// as `flowtrace: warning: …`), and notes such as a `tracing` subscriber
    /// that was already installed.
    pub fn warnings(&self) -> &[ConfigWarning] {
        &self.warnings
    }

    /// The file the file exporter appends to, when it is active.
    pub fn trace_file(&self) -> Option<&Path> {
        self.trace_file.as_deref()
    }

    /// The file the file exporter appends log records to, when it is active
    /// (`FLOWTRACE_LOG_FILE`, default next to the trace file).
    pub fn log_file(&self) -> Option<&Path> {
        self.log_file.as_deref()
    }

    /// The file the file exporter appends metrics to, when it is active
    /// (`FLOWTRACE_METRICS_FILE`, default next to the trace file:
    /// `flowtrace-metrics.jsonl`).
    pub fn metrics_file(&self) -> Option<&Path> {
        self.metrics_file.as_deref()
    }

    /// The meter provider flowtrace built, when a metrics exporter is
    /// active (also installed for flowtrace's tasks and runs, and as the
    /// global one).
    pub fn meter_provider(&self) -> Option<&opentelemetry_sdk::metrics::SdkMeterProvider> {
        self.metrics
            .as_ref()
            .map(crate::metrics::Pipeline::provider)
    }

    /// The logger provider flowtrace built, when a log exporter is active.
    pub fn logger_provider(&self) -> Option<&SdkLoggerProvider> {
        self.logs.as_ref()
    }

    /// The tracer provider flowtrace built (also installed as the global
    /// provider). Inert when the SDK is disabled.
    pub fn provider(&self) -> &SdkTracerProvider {
        &self.provider
    }
}

/// Each processor's counts with its exporter's name.
fn deliveries<T: Item>(exporters: &[&'static str], processors: &[Processor<T>]) -> Vec<Delivery> {
    exporters
        .iter()
        .zip(processors)
        .map(|(&exporter, processor)| Delivery {
            exporter,
            stats: processor.stats(),
        })
        .collect()
}

/// Waits for every result (each bounded), keeping the first error.
fn first_error(
    results: impl Iterator<Item = Result<(), OTelSdkError>>,
) -> Result<(), OTelSdkError> {
    let mut first = Ok(());
    for result in results {
        if first.is_ok() {
            first = result;
        }
    }
    first
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Err(err) = self.shutdown() {
            // Nobody is left to return an error to. Lost spans and log
            // records were reported by `shutdown` already: one line, not two.
            if !self.reported.load(Ordering::Acquire) {
                let _ = writeln!(std::io::stderr(), "flowtrace: telemetry shutdown: {err}");
            }
        }
    }
}
