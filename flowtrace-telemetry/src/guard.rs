//! The guard `init()` returns: keeps the provider, reports what configuration
//! problems were found, counts what the exporters lost, and flushes and
//! shuts down on drop within a bound.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use opentelemetry_sdk::error::OTelSdkError;
use opentelemetry_sdk::logs::SdkLoggerProvider;
use opentelemetry_sdk::trace::SdkTracerProvider;

use super::log_counts::LogCounts;
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
/// `flowtrace: 7 spans and 4 log records were not delivered: otlp lost 7 of
/// 7 spans (left at shutdown: 7) and 4 of 4 log records (export failed: 4);
/// last error: …`. Undelivered telemetry is not the workflow's failure:
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
    /// The log records' provider and file (`telemetry::logs`).
    logs: Option<SdkLoggerProvider>,
    log_file: Option<PathBuf>,
    /// What each log exporter did with the records.
    log_counts: Vec<(&'static str, Arc<LogCounts>)>,
    /// `false` for the inert guard of `OTEL_SDK_DISABLED=true`.
    active: bool,
    shut_down: AtomicBool,
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
            log_file: None,
            log_counts: Vec::new(),
            active: true,
            shut_down: AtomicBool::new(false),
        }
    }

    /// Adds the logger provider, flushed and shut down with the spans.
    pub(crate) fn with_logs(
        mut self,
        logs: Option<SdkLoggerProvider>,
        file: Option<PathBuf>,
        counts: Vec<(&'static str, Arc<LogCounts>)>,
    ) -> Self {
        self.logs = logs;
        self.log_file = file;
        self.log_counts = counts;
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
            log_file: None,
            log_counts: Vec::new(),
            active: false,
            shut_down: AtomicBool::new(false),
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
        self.processors
            .iter()
            .map(Processor::timeout)
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
        let pending: Vec<Pending> = self
            .processors
            .iter()
            .map(|p| p.begin_flush(now + p.timeout()))
            .collect();
        let logs = self.logs.as_ref().map(SdkLoggerProvider::force_flush);
        first_error(pending.into_iter().map(Pending::wait).chain(logs))
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
        let pending: Vec<Pending> = self
            .processors
            .iter()
            .filter_map(|p| p.begin_shutdown(now + p.timeout()))
            .collect();
        // Log records shut down beside the spans, against the same bound.
        let bound = self.timeout().max(Duration::from_secs(1));
        let logs = self.logs.clone().map(|provider| {
            flowtrace::remove_logger_provider();
            std::thread::spawn(move || provider.shutdown_with_timeout(bound))
        });
        let logs = logs.map(|thread| {
            thread.join().unwrap_or_else(|_| {
                Err(OTelSdkError::InternalFailure(
                    "log shutdown panicked".into(),
                ))
            })
        });
        let result = first_error(pending.into_iter().map(Pending::wait).chain(logs));
        // The processors are done; this only marks the provider shut down
        // (its tracers become no-ops) and returns at once.
        let _ = self
            .provider
            .shutdown_with_timeout(Duration::from_millis(1));
        if let Some(line) = summary::line(&self.span_deliveries(), &self.log_deliveries()) {
            // `writeln!`, not `eprintln!`, which panics when stderr is closed.
            let _ = writeln!(std::io::stderr(), "flowtrace: {line}");
        }
        result
    }

    fn span_deliveries(&self) -> Vec<Delivery> {
        self.exporters
            .iter()
            .zip(&self.processors)
            .map(|(exporter, processor)| Delivery {
                exporter,
                stats: processor.stats(),
            })
            .collect()
    }

    fn log_deliveries(&self) -> Vec<Delivery> {
        self.log_counts
            .iter()
            .map(|(exporter, counts)| Delivery {
                exporter,
                stats: counts.stats(),
            })
            .collect()
    }

    /// Whether any span or log record was lost so far (or is still queued).
    fn lost_any(&self) -> bool {
        summary::line(&self.span_deliveries(), &self.log_deliveries()).is_some()
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

    /// The same counts for log records, summed over the log exporters.
    /// Records the SDK's batch processor dropped because its queue
    /// (`OTEL_BLRP_MAX_QUEUE_SIZE`) was full count as left at shutdown.
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
        for (_, counts) in &self.log_counts {
            total.add(&counts.stats());
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
            if !self.lost_any() {
                let _ = writeln!(std::io::stderr(), "flowtrace: telemetry shutdown: {err}");
            }
        }
    }
}
