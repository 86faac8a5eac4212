//! Metrics (cold path): an `SdkMeterProvider` with one periodic reader
//! (`OTEL_METRIC_EXPORT_INTERVAL`) whose exporter turns each collection into
//! one OTLP `ExportMetricsServiceRequest`, puts flowtrace's exemplars on its
//! histogram points, and hands it to every exporter named in
//! `OTEL_METRICS_EXPORTER` (by default the spans' exporters):
//!
//! - **file**: one request per line, OTLP/JSON, next to the trace file
//!   (`flowtrace-metrics.jsonl`, `FLOWTRACE_METRICS_FILE`);
//! - **otlp**: the span exporter's transports and retry rules (gRPC
//!   `MetricsService/Export`, HTTP `POST /v1/metrics`);
//! - **console**: a table per task at shutdown (count, errors, retries,
//!   p50 / p95 / max).
//!
//! Temporality is cumulative: every export carries the totals since the
//! start, so an export that fails (a collector outage) loses nothing the
//! next one does not deliver. Failed exports are counted and reported at
//! shutdown, which runs beside the spans' against the same deadline.
//!
//! The provider also observes the delivery of spans with OpenTelemetry's
//! SDK self-observability instruments (`otel.sdk.*`, see [`delivery`]).

pub(crate) mod config;
mod delivery;
mod exemplars;
mod table;

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::metrics::data::ResourceMetrics;
use opentelemetry_sdk::metrics::exporter::PushMetricExporter;
use opentelemetry_sdk::metrics::{
    Aggregation, Instrument, InstrumentKind, PeriodicReader, SdkMeterProvider, Stream, Temporality,
};

use self::config::{Histograms, Metrics};
use super::ExporterKind;
use super::config::Otlp;
use super::export::LogItem;
use super::file::JsonLines;
use super::otlp::{Transport, attempt_timeout};
use super::processor::Processor;
use super::retry::{Backoff, Outcome};
use super::warning::ConfigWarning;

/// The meter provider and what failed to build.
pub(crate) struct Built {
    pub(crate) pipeline: Option<Pipeline>,
    pub(crate) file: Option<PathBuf>,
    pub(crate) warnings: Vec<ConfigWarning>,
}

/// What became of the metric exports so far.
#[derive(Debug, Default)]
pub(crate) struct Deliveries {
    sent: AtomicU64,
    failed: AtomicU64,
    last_error: Mutex<Option<String>>,
    /// The latest export failed (at shutdown: the final one).
    last_failed: AtomicBool,
}

impl Deliveries {
    fn record(&self, result: &OTelSdkResult) {
        match result {
            Ok(()) => {
                self.sent.fetch_add(1, Ordering::Relaxed);
                self.last_failed.store(false, Ordering::Relaxed);
            }
            Err(err) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                self.last_failed.store(true, Ordering::Relaxed);
                if let Ok(mut last) = self.last_error.lock() {
                    *last = Some(err.to_string());
                }
            }
        }
    }
}

/// The installed meter provider, shut down with the guard.
#[derive(Debug)]
pub(crate) struct Pipeline {
    provider: SdkMeterProvider,
    deliveries: Arc<Deliveries>,
    timeout: Duration,
    _delivery: delivery::Observed,
}

impl Pipeline {
    /// The provider (installed for flowtrace's tasks and runs).
    pub(crate) fn provider(&self) -> &SdkMeterProvider {
        &self.provider
    }

    /// The longest an export may take (`OTEL_METRIC_EXPORT_TIMEOUT`, for
    /// OTLP at most the OTLP timeout).
    pub(crate) fn timeout(&self) -> Duration {
        self.timeout
    }

    pub(crate) fn force_flush(&self) -> OTelSdkResult {
        self.provider.force_flush()
    }

    /// Starts the final collection and export on a thread of its own;
    /// [`Shutdown::wait`] waits for it until `deadline`.
    pub(crate) fn begin_shutdown(&self, deadline: Instant) -> Shutdown {
        flowtrace::metrics::remove_meter_provider();
        let provider = self.provider.clone();
        let (done, wait) = std::sync::mpsc::channel();
        let timeout = deadline.saturating_duration_since(Instant::now());
        let spawned = std::thread::Builder::new()
            .name("flowtrace-metrics-shutdown".into())
            .spawn(move || {
                let _ = done.send(provider.shutdown_with_timeout(timeout));
            });
        Shutdown {
            wait: spawned.ok().map(|_| wait),
            deadline,
            deliveries: self.deliveries.clone(),
        }
    }
}

/// A shutdown under way.
pub(crate) struct Shutdown {
    wait: Option<std::sync::mpsc::Receiver<OTelSdkResult>>,
    deadline: Instant,
    deliveries: Arc<Deliveries>,
}

impl Shutdown {
    /// Waits until the deadline at most; with the result, what was lost
    /// (failed exports and the last error) for the shutdown line.
    pub(crate) fn wait(self) -> (OTelSdkResult, Option<String>) {
        let left = self.deadline.saturating_duration_since(Instant::now());
        let result = match &self.wait {
            Some(wait) => wait
                .recv_timeout(left)
                .unwrap_or(Err(OTelSdkError::Timeout(left))),
            None => Err(OTelSdkError::InternalFailure(
                "cannot start the metrics shutdown thread".into(),
            )),
        };
        let d = &self.deliveries;
        let last_failed = d.last_failed.load(Ordering::Relaxed);
        // A final export that did not finish in time is a failed one too.
        let failed = d.failed.load(Ordering::Relaxed) + u64::from(result.is_err() && !last_failed);
        let sent = d.sent.load(Ordering::Relaxed);
        let mut lost = None;
        if failed > 0 || result.is_err() {
            let last = d
                .last_error
                .lock()
                .ok()
                .and_then(|last| last.clone())
                .or_else(|| result.as_ref().err().map(ToString::to_string))
                .unwrap_or_default();
            let tail = if last_failed || result.is_err() {
                "the final export was not delivered: data points since the last delivered one are lost"
            } else {
                "each export carries the totals, so the last delivered one holds everything"
            };
            let exports = if failed == 1 { "export" } else { "exports" };
            lost = Some(format!(
                "{failed} {exports} failed, {sent} delivered ({tail}); last error: {last}"
            ));
        }
        (result, lost)
    }
}

/// One reader and exporter for every metrics exporter; `None` when there
/// is none.
pub(crate) fn build(
    metrics: &Metrics,
    resource: Resource,
    spans: Vec<Processor>,
    logs: Vec<Processor<LogItem>>,
) -> Built {
    let mut built = Built {
        pipeline: None,
        file: None,
        warnings: Vec::new(),
    };
    let deliveries = Arc::new(Deliveries::default());
    let mut sinks = Vec::new();
    for exporter in &metrics.exporters {
        match exporter {
            ExporterKind::File => match JsonLines::open(&metrics.file) {
                Ok(lines) => {
                    built.file = Some(metrics.file.clone());
                    sinks.push(Sink::File(lines));
                }
                Err(e) => built.warnings.push(ConfigWarning::failed(
                    "FLOWTRACE_METRICS_FILE",
                    format!("cannot open {}: {e}", metrics.file.display()),
                    "metrics are not written to a file",
                )),
            },
            ExporterKind::Otlp => {
                let timeout = attempt_timeout(&metrics.otlp, metrics.timeout);
                match MetricsOtlp::new(&metrics.otlp, timeout) {
                    Ok(otlp) => sinks.push(Sink::Otlp(otlp)),
                    Err(err) => built.warnings.push(ConfigWarning::failed(
                        "OTLP metric exporter",
                        format!(
                            "cannot be built for {} ({}): {err}",
                            crate::redact::url(&metrics.otlp.endpoint),
                            metrics.otlp.protocol
                        ),
                        "metrics are not sent over OTLP",
                    )),
                }
            }
            ExporterKind::Console => sinks.push(Sink::Console(Mutex::new(None))),
            ExporterKind::None => {}
        }
    }
    if sinks.is_empty() {
        return built;
    }
    let exporter = Fanout {
        sinks,
        deliveries: deliveries.clone(),
        exemplars: metrics.exemplars,
        pending: Mutex::new(Vec::new()),
    };
    let reader = PeriodicReader::builder(exporter)
        .with_interval(metrics.interval)
        .build();
    let mut provider = SdkMeterProvider::builder()
        .with_resource(resource)
        .with_reader(reader);
    if metrics.histograms == Histograms::Exponential {
        provider = provider.with_view(exponential);
    }
    let provider = provider.build();
    let delivery = delivery::observe(&provider, spans, logs);
    built.pipeline = Some(Pipeline {
        provider,
        deliveries,
        // The longest the final export can take: an OTLP attempt is bounded
        // by the OTLP timeout too.
        timeout: if metrics.exporters.contains(&ExporterKind::Otlp) {
            attempt_timeout(&metrics.otlp, metrics.timeout)
        } else {
            metrics.timeout
        },
        _delivery: delivery,
    });
    built
}

/// The view of `base2_exponential_bucket_histogram`: every histogram.
fn exponential(instrument: &Instrument) -> Option<Stream> {
    if instrument.kind() != InstrumentKind::Histogram {
        return None;
    }
    Stream::builder()
        .with_aggregation(Aggregation::Base2ExponentialHistogram {
            max_size: 160,
            max_scale: 20,
            record_min_max: true,
        })
        .build()
        .ok()
}

/// Where a request goes.
#[derive(Debug)]
// One per exporter, built once: the variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
enum Sink {
    File(JsonLines),
    Otlp(MetricsOtlp),
    /// The last request (cumulative: the totals), printed as a table at
    /// shutdown.
    Console(Mutex<Option<ExportMetricsServiceRequest>>),
}

impl Sink {
    fn export(&self, request: &ExportMetricsServiceRequest) -> OTelSdkResult {
        match self {
            Sink::File(lines) => lines.append(request, "metrics"),
            Sink::Otlp(otlp) => otlp.export_now(request.clone()),
            Sink::Console(last) => {
                if let Ok(mut last) = last.lock() {
                    *last = Some(request.clone());
                }
                Ok(())
            }
        }
    }
}

/// The periodic reader's exporter: one request per collection, to every sink.
#[derive(Debug)]
struct Fanout {
    sinks: Vec<Sink>,
    deliveries: Arc<Deliveries>,
    exemplars: bool,
    /// Exemplars of an export that failed, for the next one (at most
    /// [`MAX_PENDING_EXEMPLARS`], the newest).
    pending: Mutex<Vec<flowtrace::metrics::Exemplar>>,
}

/// Exemplars kept across failed exports.
const MAX_PENDING_EXEMPLARS: usize = 4096;

impl Fanout {
    fn export_now(&self, metrics: &ResourceMetrics) -> OTelSdkResult {
        let mut request = ExportMetricsServiceRequest::from(metrics);
        let mut kept = self
            .pending
            .lock()
            .map(|mut pending| std::mem::take(&mut *pending))
            .unwrap_or_default();
        kept.extend(flowtrace::metrics::take_exemplars());
        if !self.exemplars {
            kept.clear();
        }
        exemplars::attach(&mut request, &kept);
        let empty = request
            .resource_metrics
            .iter()
            .all(|rm| rm.scope_metrics.iter().all(|sm| sm.metrics.is_empty()));
        if empty {
            return Ok(());
        }
        let mut first = Ok(());
        for sink in &self.sinks {
            let result = sink.export(&request);
            if !matches!(sink, Sink::Console(_)) {
                self.deliveries.record(&result);
            }
            if first.is_ok() {
                first = result;
            }
        }
        if first.is_err() {
            // Not delivered everywhere: they go again with the next export.
            let skip = kept.len().saturating_sub(MAX_PENDING_EXEMPLARS);
            if let Ok(mut pending) = self.pending.lock() {
                pending.extend(kept.into_iter().skip(skip));
            }
        }
        first
    }
}

impl PushMetricExporter for Fanout {
    fn export(
        &self,
        metrics: &ResourceMetrics,
    ) -> impl std::future::Future<Output = OTelSdkResult> + Send {
        std::future::ready(self.export_now(metrics))
    }

    fn force_flush(&self) -> OTelSdkResult {
        for sink in &self.sinks {
            if let Sink::File(lines) = sink {
                lines.flush()?;
            }
        }
        Ok(())
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        let mut first = Ok(());
        for sink in &self.sinks {
            let result =
                match sink {
                    Sink::File(lines) => lines.shutdown(),
                    Sink::Otlp(_) => Ok(()),
                    Sink::Console(last) => {
                        let text = last
                            .lock()
                            .ok()
                            .and_then(|last| last.as_ref().map(table::render));
                        match text {
                            // `write_all`, not `print!`: a closed stdout must not panic.
                            Some(text) => std::io::stdout()
                                .lock()
                                .write_all(text.as_bytes())
                                .map_err(|e| {
                                    OTelSdkError::InternalFailure(format!("writing the table: {e}"))
                                }),
                            None => Ok(()),
                        }
                    }
                };
            if first.is_ok() {
                first = result;
            }
        }
        first
    }

    fn temporality(&self) -> Temporality {
        Temporality::Cumulative
    }
}

/// Data points over OTLP, with the span exporter's transports and retry
/// rules: a retryable failure is retried with backoff until the attempt
/// timeout has passed.
#[derive(Debug)]
struct MetricsOtlp {
    /// `None` once dropped (shut down in the background).
    runtime: Option<tokio::runtime::Runtime>,
    transport: Transport,
    timeout: Duration,
}

impl MetricsOtlp {
    fn new(otlp: &Otlp, timeout: Duration) -> Result<Self, String> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .thread_name("flowtrace-metrics")
            .build()
            .map_err(|e| format!("cannot start its runtime: {e}"))?;
        let transport = {
            let _entered = runtime.enter();
            Transport::new(otlp)?
        };
        Ok(Self {
            runtime: Some(runtime),
            transport,
            timeout,
        })
    }

    async fn send(&self, request: ExportMetricsServiceRequest) -> OTelSdkResult {
        let deadline = Instant::now() + self.timeout;
        let mut backoff = Backoff::default();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let attempt = tokio::time::timeout(left, self.transport.send_metrics(request.clone()));
            let reason = match attempt.await {
                Err(_) => return Err(OTelSdkError::Timeout(self.timeout)),
                Ok(Outcome::Sent { rejected: 0 }) => return Ok(()),
                Ok(Outcome::Sent { rejected }) => {
                    return Err(OTelSdkError::InternalFailure(format!(
                        "the collector rejected {rejected} data points"
                    )));
                }
                Ok(Outcome::Failed { reason }) => {
                    return Err(OTelSdkError::InternalFailure(reason));
                }
                Ok(Outcome::Retry { after, reason }) => {
                    let delay = backoff.next_delay(after);
                    if Instant::now() + delay >= deadline {
                        reason
                    } else {
                        tokio::time::sleep(delay).await;
                        continue;
                    }
                }
            };
            return Err(OTelSdkError::InternalFailure(format!(
                "data points not sent within {:?}: {reason}",
                self.timeout
            )));
        }
    }

    fn export_now(&self, request: ExportMetricsServiceRequest) -> OTelSdkResult {
        let Some(runtime) = &self.runtime else {
            return Err(OTelSdkError::AlreadyShutdown);
        };
        if tokio::runtime::Handle::try_current().is_ok() {
            // Called from inside a runtime: block a scoped thread, not it.
            return std::thread::scope(|s| {
                s.spawn(|| runtime.block_on(self.send(request)))
                    .join()
                    .unwrap_or_else(|_| {
                        Err(OTelSdkError::InternalFailure(
                            "metric export panicked".into(),
                        ))
                    })
            });
        }
        runtime.block_on(self.send(request))
    }
}

impl Drop for MetricsOtlp {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}
