//! Log records (cold path): an `SdkLoggerProvider` with one batch processor
//! per exporter named in `OTEL_LOGS_EXPORTER` (by default the spans'
//! exporters), fed by `tracing` events (opentelemetry-appender-tracing) and
//! [`flowtrace::log`]. Each record carries the trace and span id of the task it
//! was emitted in.
//!
//! - **file**: OTLP/JSON, one `ExportLogsServiceRequest` per line, next to
//!   the trace file (`flowtrace-logs.jsonl`, `FLOWTRACE_LOG_FILE`).
//! - **otlp**: the same transports and retry rules as spans (gRPC
//!   `LogsService/Export`, HTTP `POST /v1/logs`), on the exporter's own
//!   single-threaded runtime, so nothing depends on the application's.
//! - **console**: one line per record on stdout.

use std::io::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use opentelemetry::logs::AnyValue;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema;
use opentelemetry_proto::transform::logs::tonic::group_logs_by_resource_and_scope;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::logs::{
    BatchConfigBuilder, BatchLogProcessor, LogBatch, LogExporter, SdkLoggerProvider,
};

use super::Exporter;
use super::config::{Batch, Logs, Otlp};
use super::file::JsonLines;
use super::metrics::Counted;
use super::otlp::{Transport, attempt_timeout};
use super::retry::{Backoff, Outcome};
use super::warning::ConfigWarning;

/// The logger provider and what failed to build.
pub(crate) struct Built {
    pub(crate) provider: Option<SdkLoggerProvider>,
    pub(crate) file: Option<PathBuf>,
    pub(crate) warnings: Vec<ConfigWarning>,
}

/// One batch processor per log exporter; `None` when there is none.
pub(crate) fn build(logs: &Logs, batch: &Batch, resource: Resource) -> Built {
    let mut built = Built {
        provider: None,
        file: None,
        warnings: Vec::new(),
    };
    let config = || {
        BatchConfigBuilder::default()
            .with_max_queue_size(batch.max_queue_size)
            .with_max_export_batch_size(batch.max_export_batch_size)
            .with_scheduled_delay(batch.schedule_delay)
            .build()
    };
    let mut provider = SdkLoggerProvider::builder().with_resource(resource);
    let mut any = false;
    for exporter in &logs.exporters {
        let processor = match exporter {
            Exporter::File => match JsonLines::open(&logs.file) {
                Ok(lines) => {
                    built.file = Some(logs.file.clone());
                    BatchLogProcessor::builder(Counted(LogFile::new(lines)))
                        .with_batch_config(config())
                        .build()
                }
                Err(e) => {
                    built.warnings.push(ConfigWarning::failed(
                        "FLOWTRACE_LOG_FILE",
                        format!("cannot open {}: {e}", logs.file.display()),
                        "log records are not written to a file",
                    ));
                    continue;
                }
            },
            Exporter::Otlp => {
                let timeout = attempt_timeout(&logs.otlp, batch.export_timeout);
                match LogOtlp::new(&logs.otlp, timeout) {
                    Ok(exporter) => BatchLogProcessor::builder(Counted(exporter))
                        .with_batch_config(config())
                        .build(),
                    Err(err) => {
                        built.warnings.push(ConfigWarning::failed(
                            "OTLP log exporter",
                            format!(
                                "cannot be built for {} ({}): {err}",
                                logs.otlp.endpoint, logs.otlp.protocol
                            ),
                            "log records are not sent over OTLP",
                        ));
                        continue;
                    }
                }
            }
            Exporter::Console => BatchLogProcessor::builder(Counted(LogConsole))
                .with_batch_config(config())
                .build(),
            Exporter::None => continue,
        };
        provider = provider.with_log_processor(processor);
        any = true;
    }
    built.provider = any.then(|| provider.build());
    built
}

fn request(
    batch: &LogBatch<'_>,
    resource: &ResourceAttributesWithSchema,
) -> ExportLogsServiceRequest {
    ExportLogsServiceRequest {
        resource_logs: group_logs_by_resource_and_scope(batch, resource),
    }
}

/// Log records as OTLP/JSON lines.
#[derive(Debug)]
struct LogFile {
    lines: JsonLines,
    resource: ResourceAttributesWithSchema,
}

impl LogFile {
    fn new(lines: JsonLines) -> Self {
        Self {
            lines,
            resource: ResourceAttributesWithSchema::default(),
        }
    }
}

impl LogExporter for LogFile {
    fn export(&self, batch: LogBatch<'_>) -> impl Future<Output = OTelSdkResult> + Send {
        let written = if batch.iter().next().is_none() {
            Ok(())
        } else {
            self.lines
                .append(&request(&batch, &self.resource), "log records")
        };
        std::future::ready(written)
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        self.lines.shutdown()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.resource = resource.into();
    }
}

/// Log records over OTLP, with the span exporter's transports and retry
/// rules: a retryable failure is retried with backoff until the attempt
/// timeout has passed.
#[derive(Debug)]
struct LogOtlp {
    /// `None` once dropped (shut down in the background, which is allowed
    /// from any thread, unlike dropping a runtime inside another).
    runtime: Option<tokio::runtime::Runtime>,
    transport: Transport,
    resource: ResourceAttributesWithSchema,
    timeout: Duration,
}

impl LogOtlp {
    fn new(otlp: &Otlp, timeout: Duration) -> Result<Self, String> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .thread_name("flowtrace-logs")
            .build()
            .map_err(|e| format!("cannot start its runtime: {e}"))?;
        let transport = {
            let _entered = runtime.enter();
            Transport::new(otlp)?
        };
        Ok(Self {
            runtime: Some(runtime),
            transport,
            resource: ResourceAttributesWithSchema::default(),
            timeout,
        })
    }

    async fn send(&self, request: ExportLogsServiceRequest) -> OTelSdkResult {
        let deadline = Instant::now() + self.timeout;
        let mut backoff = Backoff::default();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let attempt = tokio::time::timeout(left, self.transport.send_logs(request.clone()));
            let reason = match attempt.await {
                Err(_) => return Err(OTelSdkError::Timeout(self.timeout)),
                Ok(Outcome::Sent { rejected: 0 }) => return Ok(()),
                Ok(Outcome::Sent { rejected }) => {
                    return Err(OTelSdkError::InternalFailure(format!(
                        "the collector rejected {rejected} log records"
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
                "log records not sent within {:?}: {reason}",
                self.timeout
            )));
        }
    }

    fn export_now(&self, request: ExportLogsServiceRequest) -> OTelSdkResult {
        let Some(runtime) = &self.runtime else {
            return Err(OTelSdkError::AlreadyShutdown);
        };
        if tokio::runtime::Handle::try_current().is_ok() {
            // Called from inside a runtime (a processor of the application's
            // own making): block a scoped thread, not the runtime's.
            return std::thread::scope(|s| {
                s.spawn(|| runtime.block_on(self.send(request)))
                    .join()
                    .unwrap_or_else(|_| {
                        Err(OTelSdkError::InternalFailure("log export panicked".into()))
                    })
            });
        }
        runtime.block_on(self.send(request))
    }
}

impl Drop for LogOtlp {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl LogExporter for LogOtlp {
    fn export(&self, batch: LogBatch<'_>) -> impl Future<Output = OTelSdkResult> + Send {
        let sent = if batch.iter().next().is_none() {
            Ok(())
        } else {
            self.export_now(request(&batch, &self.resource))
        };
        std::future::ready(sent)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.resource = resource.into();
    }
}

/// One line per record on stdout:
/// `log INFO <body>  (trace <id> span <id>)`.
#[derive(Debug)]
struct LogConsole;

impl LogExporter for LogConsole {
    fn export(&self, batch: LogBatch<'_>) -> impl Future<Output = OTelSdkResult> + Send {
        let mut text = String::new();
        for (record, _scope) in batch.iter() {
            let level = record.severity_text().unwrap_or("LOG");
            let body = match record.body() {
                Some(AnyValue::String(s)) => s.as_str().to_owned(),
                Some(other) => format!("{other:?}"),
                None => String::new(),
            };
            text.push_str(&format!("log {level} {body}"));
            if let Some(tc) = record.trace_context() {
                text.push_str(&format!("  (trace {} span {})", tc.trace_id, tc.span_id));
            }
            text.push('\n');
        }
        // `write_all`, not `print!`: a closed stdout must not panic.
        let written = std::io::stdout()
            .lock()
            .write_all(text.as_bytes())
            .map_err(|e| OTelSdkError::InternalFailure(format!("writing log records: {e}")));
        std::future::ready(written)
    }
}
