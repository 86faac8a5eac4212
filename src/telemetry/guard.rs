//! The guard `init()` returns: keeps the provider, reports what configuration
//! problems were found, and flushes and shuts down on drop within a bound.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use opentelemetry_sdk::error::OTelSdkError;
use opentelemetry_sdk::trace::SdkTracerProvider;

use super::warning::ConfigWarning;

/// The installed telemetry. Dropping it exports the spans still queued and
/// shuts the exporters down; errors then become one line on stderr.
///
/// Neither [`shutdown`](Self::shutdown) nor the drop depends on the
/// application's async runtime (exporters run on their own thread and
/// runtime), so both are safe on any thread — including the main thread of a
/// `current_thread` runtime — and return within the export timeout
/// (`OTEL_EXPORTER_OTLP_TIMEOUT` / `OTEL_BSP_EXPORT_TIMEOUT`, whichever is
/// shorter, for OTLP).
///
/// ```no_run
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let telemetry = flowtrace::telemetry::init()?;
/// for warning in telemetry.warnings() {
///     eprintln!("telemetry: {warning}");
/// }
/// // ... run the workflow ...
/// telemetry.shutdown()?; // or just let it drop
/// # Ok(()) }
/// ```
#[must_use = "dropping the guard shuts telemetry down at once"]
#[derive(Debug)]
pub struct Telemetry {
    provider: SdkTracerProvider,
    warnings: Vec<ConfigWarning>,
    trace_file: Option<PathBuf>,
    /// The longest one shutdown may block.
    timeout: Duration,
    /// `false` for the inert guard of `OTEL_SDK_DISABLED=true`.
    active: bool,
    shut_down: AtomicBool,
}

impl Telemetry {
    pub(crate) fn new(
        provider: SdkTracerProvider,
        warnings: Vec<ConfigWarning>,
        trace_file: Option<PathBuf>,
        timeout: Duration,
    ) -> Self {
        Self {
            provider,
            warnings,
            trace_file,
            timeout,
            active: true,
            shut_down: AtomicBool::new(false),
        }
    }

    /// The guard of a disabled SDK: installs nothing, exports nothing.
    pub(crate) fn inert(warnings: Vec<ConfigWarning>) -> Self {
        Self {
            // A provider without processors: spans from it go nowhere.
            provider: SdkTracerProvider::builder().build(),
            warnings,
            trace_file: None,
            timeout: Duration::ZERO,
            active: false,
            shut_down: AtomicBool::new(false),
        }
    }

    /// Exports every span that has ended so far. Bounded by the SDK's flush
    /// wait (5 s per exporter) and each export's timeout.
    pub fn force_flush(&self) -> Result<(), OTelSdkError> {
        if !self.active {
            return Ok(());
        }
        if self.shut_down.load(Ordering::Acquire) {
            return Err(OTelSdkError::AlreadyShutdown);
        }
        self.provider.force_flush()
    }

    /// Exports what is still queued, then shuts the exporters down, waiting
    /// at most the export timeout. Idempotent: later calls return `Ok(())`.
    /// Spans started afterwards are not recorded.
    pub fn shutdown(&self) -> Result<(), OTelSdkError> {
        if !self.active || self.shut_down.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        // The batch processors export everything queued as part of their
        // shutdown, so this one bounded call is the flush and the shutdown.
        // (A separate `force_flush` first would add the SDK's fixed 5 s wait
        // per exporter to the bound.)
        self.provider.shutdown_with_timeout(self.timeout)
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

    /// The tracer provider flowtrace built (also installed as the global
    /// provider). Inert when the SDK is disabled.
    pub fn provider(&self) -> &SdkTracerProvider {
        &self.provider
    }
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Err(err) = self.shutdown() {
            // Nobody is left to return an error to; `writeln!` rather than
            // `eprintln!`, which panics when stderr is closed.
            let _ = writeln!(std::io::stderr(), "flowtrace: telemetry shutdown: {err}");
        }
    }
}
