//! Log records (cold path): an `SdkLoggerProvider` with one flowtrace batch
//! processor per exporter named in `OTEL_LOGS_EXPORTER` (by default the
//! spans' exporters), fed by `tracing` events (opentelemetry-appender-tracing)
//! and [`flowtrace::emit_log`]. Each record carries the trace and span id of the
//! task it was emitted in. The processor is the spans' one
//! ([`super::processor`]), so log records get the spans' guarantees: kept
//! through a collector outage within `OTEL_BLRP_MAX_QUEUE_SIZE`, counted by
//! reason ([`Telemetry::log_stats`](super::Telemetry::log_stats)), shut
//! down against the same deadline, reported at shutdown.
//!
//! - **file**: OTLP/JSON, one `ExportLogsServiceRequest` per line, next to
//!   the trace file (`flowtrace-logs.jsonl`, `FLOWTRACE_LOG_FILE`).
//! - **otlp**: the same transports and retry rules as spans (gRPC
//!   `LogsService/Export`, HTTP `POST /v1/logs`).
//! - **console**: one line per record on stdout.

use std::future::Future;
use std::io::Write as _;
use std::path::PathBuf;
use std::pin::Pin;
use std::time::Duration;

use opentelemetry::logs::AnyValue;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema;
use opentelemetry_proto::transform::logs::tonic::group_logs_by_resource_and_scope;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::logs::{LogBatch, LogExporter, SdkLoggerProvider};

use super::ExporterKind;
use super::config::{Batch, Logs, Otlp};
use super::export::{Export, LogItem, Sdk, SdkLogs, log_refs};
use super::file::JsonLines;
use super::otlp::{Transport, attempt_timeout};
use super::processor::{Processor, Settings, WhenFull};
use super::retry::Outcome;
use super::warning::ConfigWarning;

/// The log processor of an exporter the application brings, started at
/// `init()` with the `OTEL_BLRP_*` settings.
pub(crate) type Custom =
    Box<dyn FnOnce(Settings) -> Result<Processor<LogItem>, String> + Send + 'static>;

/// The logger provider, its processors and what failed to build.
pub(crate) struct Built {
    pub(crate) provider: Option<SdkLoggerProvider>,
    /// Each processor with its exporter's name, in the order configured.
    pub(crate) processors: Vec<(&'static str, Processor<LogItem>)>,
    pub(crate) file: Option<PathBuf>,
    pub(crate) warnings: Vec<ConfigWarning>,
}

/// The processor settings for log records (`OTEL_BLRP_*`).
fn settings(batch: &Batch, export_timeout: Duration, when_full: WhenFull) -> Settings {
    Settings {
        max_queue_size: batch.max_queue_size,
        max_export_batch_size: batch.max_export_batch_size,
        schedule_delay: batch.schedule_delay,
        export_timeout,
        when_full,
        io_thread: false,
        max_in_flight: batch.max_concurrent_exports,
    }
}

/// One batch processor per log exporter; `None` when there is none.
pub(crate) fn build(logs: &Logs, batch: &Batch, resource: Resource, custom: Vec<Custom>) -> Built {
    let mut built = Built {
        provider: None,
        processors: Vec::new(),
        file: None,
        warnings: Vec::new(),
    };
    let local = settings(batch, batch.export_timeout, WhenFull::Drop);
    for exporter in &logs.exporters {
        let started = match exporter {
            ExporterKind::File => match JsonLines::open(&logs.file) {
                Ok(lines) => {
                    let file = settings(batch, batch.export_timeout, WhenFull::Wait);
                    Processor::start(file, || Ok(SdkLogs(Sdk::local(LogFile::new(lines)))))
                        .inspect(|_| built.file = Some(logs.file.clone()))
                        .map_err(|err| {
                            (
                                "FLOWTRACE_LOG_FILE",
                                err,
                                "log records are not written to a file",
                            )
                        })
                }
                Err(e) => Err((
                    "FLOWTRACE_LOG_FILE",
                    format!("cannot open {}: {e}", logs.file.display()),
                    "log records are not written to a file",
                )),
            },
            ExporterKind::Otlp => {
                let timeout = attempt_timeout(&logs.otlp, batch.export_timeout);
                let mut otlp = settings(batch, timeout, WhenFull::Drop);
                otlp.io_thread = logs.otlp.protocol == super::Protocol::Grpc;
                Processor::start(otlp, || LogOtlp::new(&logs.otlp)).map_err(|err| {
                    (
                        "OTLP log exporter",
                        format!(
                            "cannot be built for {} ({}): {err}",
                            crate::redact::url(&logs.otlp.endpoint),
                            logs.otlp.protocol
                        ),
                        "log records are not sent over OTLP",
                    )
                })
            }
            ExporterKind::Console => {
                Processor::start(local.clone(), || Ok(SdkLogs(Sdk::local(LogConsole))))
                    .map_err(|err| ("console log exporter", err, "log records are not printed"))
            }
            ExporterKind::None => continue,
        };
        match started {
            Ok(processor) => built.processors.push((exporter.name(), processor)),
            Err((what, err, consequence)) => {
                built
                    .warnings
                    .push(ConfigWarning::failed(what, err, consequence))
            }
        }
    }
    for start in custom {
        match start(local.clone()) {
            Ok(processor) => built.processors.push(("custom", processor)),
            Err(err) => built.warnings.push(ConfigWarning::failed(
                "TelemetryBuilder::log_exporter",
                err,
                "log records are not sent to that exporter",
            )),
        }
    }
    if !built.processors.is_empty() {
        let mut provider = SdkLoggerProvider::builder().with_resource(resource);
        for (_, processor) in &built.processors {
            provider = provider.with_log_processor(processor.clone());
        }
        built.provider = Some(provider.build());
    }
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

/// Log records over OTLP, with the span exporter's transports: each
/// attempt is one request, classified by the same rules; retries are the
/// processor's.
#[derive(Debug)]
struct LogOtlp {
    transport: Transport,
    resource: ResourceAttributesWithSchema,
}

impl LogOtlp {
    /// Inside the processor's runtime (see [`Transport::new`]).
    fn new(otlp: &Otlp) -> Result<Self, String> {
        Ok(Self {
            transport: Transport::new(otlp)?,
            resource: ResourceAttributesWithSchema::default(),
        })
    }
}

impl Export<LogItem> for LogOtlp {
    fn export<'a>(&'a self, batch: &'a [LogItem]) -> Pin<Box<dyn Future<Output = Outcome> + 'a>> {
        let refs = log_refs(batch);
        let request = request(&LogBatch::new(&refs), &self.resource);
        Box::pin(self.transport.send_logs(request))
    }

    /// As for spans ([`crate::otlp::OtlpExporter`]).
    fn max_in_flight(&self) -> usize {
        usize::MAX
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
