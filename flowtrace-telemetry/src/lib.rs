//! Telemetry setup (the cold path): a tracer provider, exporters and
//! propagators from the OpenTelemetry `OTEL_*` environment variables, and a
//! guard that flushes and shuts them down. The application's half of
//! flowtrace: a library that only annotates its tasks depends on `flowtrace`
//! alone (one line), an application on both (two lines):
//!
//! ```toml
//! [dependencies]
//! flowtrace = "0.1"
//! flowtrace-telemetry = "0.1"
//! ```
//!
//! ```no_run
//! # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let _telemetry = flowtrace_telemetry::init()?; // OTEL_* env, flush on drop
//! // ... flowtrace::with_runcontext().run(task()).await ...
//! # Ok(()) }
//! ```
//!
//! With nothing configured, spans are appended to `flowtrace-traces.jsonl`
//! in the current directory as OTLP/JSON lines (one
//! `ExportTraceServiceRequest` per line, the OpenTelemetry Collector's file
//! format). Setting `OTEL_EXPORTER_OTLP_ENDPOINT` sends them to a collector
//! instead. Log records (`tracing` events and [`flowtrace::emit_log`]) go to the same
//! kinds of exporters, the file ones to `flowtrace-logs.jsonl`.
//!
//! | variable | accepted values | default |
//! |---|---|---|
//! | `OTEL_SDK_DISABLED` | `true`, `false` | `false` |
//! | `OTEL_SERVICE_NAME` | any | `unknown_service:<executable>` |
//! | `OTEL_RESOURCE_ATTRIBUTES` | `k=v,k2=v2`, percent-encoded | — |
//! | `OTEL_TRACES_EXPORTER` | `otlp`, `console`, `file`, `none` (comma list) | `file`, or `otlp` when an endpoint is set |
//! | `OTEL_EXPORTER_OTLP_ENDPOINT` | base URL (`/v1/traces` appended for HTTP) | `http://localhost:4318` (HTTP), `http://localhost:4317` (gRPC) |
//! | `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` | full URL, used as-is | — |
//! | `OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL` | `grpc`, `http/protobuf`, `http/json` | `http/protobuf` |
//! | `OTEL_EXPORTER_OTLP_[TRACES_]HEADERS` | `k=v,k2=v2`, percent-encoded | — |
//! | `OTEL_EXPORTER_OTLP_[TRACES_]TIMEOUT` | milliseconds | `10000` |
//! | `OTEL_EXPORTER_OTLP_[TRACES_]CERTIFICATE` | PEM file of CA certificates trusted for `https`, besides the platform's | — |
//! | `OTEL_EXPORTER_OTLP_[TRACES_]CLIENT_CERTIFICATE`, `…_CLIENT_KEY` | PEM files of the client's certificate chain and private key (PKCS#8, SEC1 or PKCS#1), for mutual TLS; both or neither | — |
//! | `OTEL_EXPORTER_OTLP_[TRACES_]COMPRESSION` | `gzip`, `none` (`zstd` is not supported: warned, sent uncompressed) | `none` |
//! | `OTEL_EXPORTER_OTLP_[TRACES_]INSECURE` | `true`, `false`: the scheme of a gRPC endpoint written without one (`host:4317`): `http` when `true`, else `https` | `false` |
//! | `OTEL_TRACES_SAMPLER` | `always_on`, `always_off`, `traceidratio`, `parentbased_always_on`, `parentbased_always_off`, `parentbased_traceidratio` | `parentbased_always_on` |
//! | `OTEL_TRACES_SAMPLER_ARG` | ratio in `[0, 1]` | `1.0` |
//! | `OTEL_BSP_SCHEDULE_DELAY` | milliseconds | `5000` |
//! | `OTEL_BSP_EXPORT_TIMEOUT` | milliseconds | `30000` |
//! | `OTEL_BSP_MAX_QUEUE_SIZE` | count | `2048` |
//! | `OTEL_BSP_MAX_EXPORT_BATCH_SIZE` | count, at most the queue size | `512` |
//! | `OTEL_BSP_MAX_CONCURRENT_EXPORTS` | exports of the OTLP exporter in flight at once, 1–64 (opentelemetry-rust's variable); other exporters get one call at a time | `2` |
//! | `OTEL_BLRP_{SCHEDULE_DELAY,EXPORT_TIMEOUT,MAX_QUEUE_SIZE,MAX_EXPORT_BATCH_SIZE}` | as `OTEL_BSP_*`, for log records | `1000`, `30000`, `2048`, `512` |
//! | `OTEL_PROPAGATORS` | `tracecontext`, `baggage`, `none` | `tracecontext,baggage` |
//! | `FLOWTRACE_TRACE_FILE` | path | `flowtrace-traces.jsonl` |
//! | `OTEL_LOGS_EXPORTER` | `otlp`, `console`, `file`, `none` (comma list) | the spans' exporters |
//! | `OTEL_EXPORTER_OTLP_LOGS_{ENDPOINT,PROTOCOL,HEADERS,TIMEOUT,CERTIFICATE,CLIENT_CERTIFICATE,CLIENT_KEY,COMPRESSION,INSECURE}` | as for traces (`/v1/logs` appended to a base URL for HTTP) | the general `OTEL_EXPORTER_OTLP_*` |
//! | `FLOWTRACE_LOG_FILE` | path | beside the trace file, `traces` → `logs`: `flowtrace-logs.jsonl` |
//! | `OTEL_METRICS_EXPORTER` | `otlp`, `console` (a per-task table at shutdown), `file`, `none` (comma list) | the spans' exporters |
//! | `OTEL_METRIC_EXPORT_INTERVAL`, `OTEL_METRIC_EXPORT_TIMEOUT` | milliseconds | `60000`, `30000` |
//! | `OTEL_EXPORTER_OTLP_METRICS_{ENDPOINT,PROTOCOL,HEADERS,TIMEOUT,CERTIFICATE}` | as for traces (`/v1/metrics` appended to a base URL for HTTP) | the general `OTEL_EXPORTER_OTLP_*` |
//! | `OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION` | `explicit_bucket_histogram`, `base2_exponential_bucket_histogram` | `explicit_bucket_histogram` |
//! | `OTEL_METRICS_EXEMPLAR_FILTER` | `trace_based`, `always_off` | `trace_based` |
//! | `FLOWTRACE_METRICS_FILE` | path | beside the trace file, `traces` → `metrics`: `flowtrace-metrics.jsonl` |
//!
//! Empty values count as unset; values are trimmed; names of values are
//! case-insensitive. A bad value is ignored with a warning that names the
//! variable, the value and the accepted values (printed once to stderr as
//! `flowtrace: warning: …` and kept in [`Telemetry::warnings`]), or is an
//! error under [`TelemetryBuilder::strict`]. No input makes `init` panic.
//!
//! ## Reliability
//!
//! Each exporter has its own batch processor on its own thread and tokio
//! runtime, so nothing depends on the application's runtime. An export
//! that fails in a way the OTLP specification calls retryable (gRPC
//! `UNAVAILABLE` and co., HTTP 429/502/503/504, no answer at all) keeps its
//! batch queued and is retried with exponential backoff and jitter,
//! honouring `Retry-After` / `RetryInfo`; other failures, and the spans a
//! partial success rejected, are dropped and counted. At most
//! `OTEL_BSP_MAX_QUEUE_SIZE` spans wait, queued or retained; more are
//! dropped and counted — except for the local file, whose queue makes a
//! producer wait for the write (at most the export timeout) rather than
//! drop. Log records go through the same processor, with the same
//! guarantees (`OTEL_BLRP_*`), and so does any exporter the application
//! brings ([`TelemetryBuilder::span_exporter`],
//! [`TelemetryBuilder::log_exporter`]). Flush and shutdown each wait at most
//! the export timeout, all exporters in parallel, and shutdown prints one
//! line with the spans and log records each exporter lost and why (also in
//! [`Telemetry::stats`] and [`Telemetry::log_stats`]); lost telemetry never
//! fails the program by itself. Header values, response bodies and gRPC
//! status messages are never shown in a warning, an error or `Debug`.
//! The specification's queue of 2048
//! spans is 20–100 ms of buffer at tens of thousands of spans per second:
//! for sustained rates like that, raise it (`OTEL_BSP_MAX_QUEUE_SIZE=32768`
//! with `OTEL_BSP_MAX_EXPORT_BATCH_SIZE=4096`; the rates each setting kept
//! without a drop are in the repository's `BENCHMARKS.md`).
//! [`TelemetryBuilder::flush_on_panic`] adds a panic hook that flushes.
//! `OTEL_TRACES_EXPORTER=otlp,file` keeps a local copy that [`replay`]
//! (or `flowtrace replay <file>`) sends to a collector later. `https`
//! endpoints use rustls (ring) with the platform's root certificates.
//! RELIABILITY.md lists each guarantee with its test and measurements.

mod builder;
mod config;
mod console;
mod export;
mod file;
mod guard;
mod layer;
mod logs;
mod metrics;
mod otlp;
mod panic_hook;
mod parse;
mod processor;
mod redact;
mod replay;
mod retry;
mod run_attributes;
mod stats;
mod summary;
mod view;
mod warning;

#[cfg(test)]
mod test_util;
#[cfg(test)]
mod tests;

use std::fmt;

pub use builder::TelemetryBuilder;
pub use console::render_tree;
pub use flowtrace::set_tracer_provider;
pub use guard::Telemetry;
pub use layer::{FlowtraceLayer, layer};
pub use replay::{ReplayError, ReplayOptions, ReplayReport, replay};
pub use stats::ExportStats;
pub use view::{ColorChoice, VIEW_USAGE, ViewError, ViewOptions, ViewReport, view, view_to};
pub use warning::{ConfigError, ConfigWarning};

/// Installs telemetry from the `OTEL_*` environment: `builder().init()`.
///
/// ```no_run
/// # fn main() -> Result<(), flowtrace_telemetry::ConfigError> {
/// let telemetry = flowtrace_telemetry::init()?;
/// if let Some(path) = telemetry.trace_file() {
///     println!("spans go to {}", path.display());
/// }
/// # Ok(()) }
/// ```
pub fn init() -> Result<Telemetry, ConfigError> {
    builder().init()
}

/// Settings in code, then [`TelemetryBuilder::init`].
///
/// ```no_run
/// let telemetry = flowtrace_telemetry::builder().console(true).init()?;
/// # Ok::<(), flowtrace_telemetry::ConfigError>(())
/// ```
pub fn builder() -> TelemetryBuilder {
    TelemetryBuilder::default()
}

/// Which span exporter to run, as named in `OTEL_TRACES_EXPORTER`: a name
/// the builder makes an exporter from (see [`TelemetryBuilder::exporter`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ExporterKind {
    /// OTLP to a collector (gRPC or HTTP, see [`Protocol`]).
    Otlp,
    /// Each trace as a tree on stdout.
    Console,
    /// OTLP/JSON lines appended to a file (`FLOWTRACE_TRACE_FILE`).
    File,
    /// No exporter.
    None,
}

impl ExporterKind {
    /// The name `OTEL_TRACES_EXPORTER` uses.
    pub(crate) fn name(self) -> &'static str {
        match self {
            ExporterKind::Otlp => "otlp",
            ExporterKind::Console => "console",
            ExporterKind::File => "file",
            ExporterKind::None => "none",
        }
    }
}

/// The OTLP transport, as named in `OTEL_EXPORTER_OTLP_PROTOCOL`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// `grpc`: OTLP over gRPC (tonic).
    Grpc,
    /// `http/protobuf`: OTLP over HTTP, protobuf bodies (the default).
    HttpProtobuf,
    /// `http/json`: OTLP over HTTP, JSON bodies.
    HttpJson,
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Grpc => "grpc",
            Protocol::HttpProtobuf => "http/protobuf",
            Protocol::HttpJson => "http/json",
        })
    }
}
