//! `TelemetryBuilder`: settings in code, then `init()` — resolve the
//! configuration, build the exporters and the provider, install the globals.

use std::io::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry::global;
use opentelemetry::propagation::{TextMapCompositePropagator, TextMapPropagator};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_appender_tracing::layer::OpenTelemetryTracingBridge;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::resource::TelemetryResourceDetector;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt as _;

use super::config::{self, Batch, Config, EnvSource, Overrides};
use super::console::ConsoleExporter;
use super::export::{LogItem, Sdk, SdkLogs};
use super::file::FileExporter;
use super::otlp::{self, OtlpExporter};
use super::parse::Propagator;
use super::processor::{Processor, Settings, WhenFull};
use super::run_attributes::RunAttributes;
use super::warning::{ConfigError, ConfigWarning};
use super::{ExporterKind, Protocol, Telemetry, panic_hook};

/// Telemetry settings in code; anything not set comes from the `OTEL_*`
/// environment (settings made here win over the environment). Created by
/// [`builder()`](super::builder).
///
/// ```no_run
/// use flowtrace_telemetry::ExporterKind;
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let _telemetry = flowtrace_telemetry::builder()
///     .service_name("crawler")
///     .resource_attribute(opentelemetry::KeyValue::new("deployment.environment.name", "dev"))
///     .exporter(ExporterKind::Otlp)
///     .otlp_endpoint("http://collector:4318")
///     .console(true)
///     .strict(true)
///     .init()?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct TelemetryBuilder {
    strict: bool,
    env: EnvSource,
    code: Overrides,
    install_tracing_subscriber: bool,
    tracing_level: LevelFilter,
    install_globals: bool,
    flush_on_panic: bool,
    initial_params: Vec<(String, serde_json::Value)>,
    custom: CustomExporters,
}

/// The exporters the application brought, started at `init()`.
#[derive(Default)]
struct CustomExporters {
    spans: Vec<CustomSpans>,
    logs: Vec<super::logs::Custom>,
}

type CustomSpans = Box<dyn FnOnce(Settings) -> Result<Processor, String> + Send + 'static>;

impl std::fmt::Debug for CustomExporters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CustomExporters")
            .field("spans", &self.spans.len())
            .field("logs", &self.logs.len())
            .finish()
    }
}

impl Default for TelemetryBuilder {
    fn default() -> Self {
        Self {
            strict: false,
            env: EnvSource::Process,
            code: Overrides::default(),
            install_tracing_subscriber: true,
            tracing_level: LevelFilter::INFO,
            install_globals: true,
            flush_on_panic: false,
            initial_params: Vec::new(),
            custom: CustomExporters::default(),
        }
    }
}

impl TelemetryBuilder {
    /// With `true`, any bad setting makes [`init`](Self::init) return a
    /// [`ConfigError`] listing every problem, instead of warning and
    /// ignoring the setting (the specification's default behaviour).
    pub fn strict(mut self, strict: bool) -> Self {
        self.strict = strict;
        self
    }

    /// `service.name`, over `OTEL_SERVICE_NAME`.
    pub fn service_name(mut self, name: impl Into<String>) -> Self {
        self.code.service_name = Some(name.into());
        self
    }

    /// Adds a resource attribute (over the same key in `OTEL_RESOURCE_ATTRIBUTES`).
    pub fn resource_attribute(mut self, attribute: KeyValue) -> Self {
        self.code.resource.push(attribute);
        self
    }

    /// Adds an exporter. Exporters added here replace `OTEL_TRACES_EXPORTER`
    /// and the embedded default; `ExporterKind::None` alone exports nothing.
    pub fn exporter(mut self, exporter: ExporterKind) -> Self {
        self.code.exporters.push(exporter);
        self
    }

    /// Adds a span exporter of the application's choosing —
    /// opentelemetry-otlp's, a vendor's, anything implementing the SDK's
    /// [`SpanExporter`](opentelemetry_sdk::trace::SpanExporter) — behind
    /// flowtrace's batch processor, with the guarantees of the built-in
    /// exporters: a failed export keeps its batch queued and is retried with
    /// backoff (an exporter's error does not say whether it is final, so
    /// every error but `AlreadyShutdown` counts as retryable), at most
    /// `OTEL_BSP_MAX_QUEUE_SIZE` spans wait and the rest are dropped and
    /// counted by reason in [`Telemetry::stats`], and flush and shutdown are
    /// bounded by `OTEL_BSP_EXPORT_TIMEOUT` with everything else.
    ///
    /// Like [`exporter`](Self::exporter), it replaces `OTEL_TRACES_EXPORTER`
    /// and the embedded default; add `.exporter(ExporterKind::File)` to keep the
    /// local file as well. Log records go where the spans' built-in
    /// exporters go, unless `OTEL_LOGS_EXPORTER` or
    /// [`log_exporter`](Self::log_exporter) says otherwise.
    ///
    /// Export calls run on the processor's own thread and tokio runtime; an
    /// exporter that needs a runtime when it is built (tonic's channel) is
    /// built in the application's, as usual.
    ///
    /// ```no_run
    /// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # #[derive(Debug)] struct Vendor;
    /// # impl opentelemetry_sdk::trace::SpanExporter for Vendor {
    /// #     async fn export(&self, _: Vec<opentelemetry_sdk::trace::SpanData>) -> opentelemetry_sdk::error::OTelSdkResult { Ok(()) }
    /// # }
    /// # let vendor_exporter = Vendor;
    /// let telemetry = flowtrace_telemetry::builder()
    ///     .span_exporter(vendor_exporter)
    ///     .init()?;
    /// // ... run the workflow ...
    /// telemetry.shutdown()?;
    /// println!("{}", telemetry.stats());
    /// # Ok(()) }
    /// ```
    pub fn span_exporter<E>(mut self, exporter: E) -> Self
    where
        E: opentelemetry_sdk::trace::SpanExporter + 'static,
    {
        self.code.custom_span_exporters += 1;
        self.custom.spans.push(Box::new(move |settings| {
            Processor::start(settings, move || Ok(Sdk::foreign(exporter)))
        }));
        self
    }

    /// Adds a log record exporter of the application's choosing
    /// ([`LogExporter`](opentelemetry_sdk::logs::LogExporter)), behind
    /// flowtrace's processor with the spans' guarantees (as for
    /// [`span_exporter`](Self::span_exporter), with the `OTEL_BLRP_*`
    /// settings; counts in [`Telemetry::log_stats`]). It replaces
    /// `OTEL_LOGS_EXPORTER`: log records also go to the built-in exporters
    /// added with [`exporter`](Self::exporter), and nowhere else.
    pub fn log_exporter<E>(mut self, exporter: E) -> Self
    where
        E: opentelemetry_sdk::logs::LogExporter + 'static,
    {
        self.code.custom_log_exporters += 1;
        self.custom.logs.push(Box::new(move |settings| {
            Processor::<LogItem>::start(settings, move || Ok(SdkLogs(Sdk::foreign(exporter))))
        }));
        self
    }

    /// Also prints each trace as a tree to stdout, whatever else is configured.
    pub fn console(mut self, console: bool) -> Self {
        self.code.console = console;
        self
    }

    /// The file exporter's path, over `FLOWTRACE_TRACE_FILE` (default
    /// `flowtrace-traces.jsonl` in the current directory). Does not by
    /// itself select the file exporter.
    pub fn trace_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.code.trace_file = Some(path.into());
        self
    }

    /// The file the file exporter appends log records to, over
    /// `FLOWTRACE_LOG_FILE` (default: next to the trace file, `traces` in
    /// its name replaced by `logs`: `flowtrace-logs.jsonl`).
    pub fn log_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.code.log_file = Some(path.into());
        self
    }

    /// Parameters every run of the process starts with (see
    /// [`flowtrace::params`]); every span of a run records them as
    /// `flowtrace.param.<key>`.
    ///
    /// ```no_run
    /// use serde_json::json;
    ///
    /// let _telemetry = flowtrace_telemetry::builder()
    ///     .initial_params([("model", json!("gpt-4o-mini")), ("chunk_size", json!(512))])
    ///     .init()?;
    /// # Ok::<(), flowtrace_telemetry::ConfigError>(())
    /// ```
    pub fn initial_params<I, K>(mut self, params: I) -> Self
    where
        I: IntoIterator<Item = (K, serde_json::Value)>,
        K: Into<String>,
    {
        self.initial_params
            .extend(params.into_iter().map(|(k, v)| (k.into(), v)));
        self
    }

    /// The OTLP endpoint, over the `OTEL_EXPORTER_OTLP_*ENDPOINT` variables.
    /// A URL without a path is a base URL (`/v1/traces` is appended for
    /// HTTP); with a path it is used as-is. Setting it selects the OTLP
    /// exporter unless exporters are chosen otherwise.
    pub fn otlp_endpoint(mut self, url: impl Into<String>) -> Self {
        self.code.otlp_endpoint = Some(url.into());
        self
    }

    /// The OTLP protocol, over `OTEL_EXPORTER_OTLP_*PROTOCOL`.
    pub fn otlp_protocol(mut self, protocol: Protocol) -> Self {
        self.code.otlp_protocol = Some(protocol);
        self
    }

    /// A PEM file of CA certificates to trust for an `https` endpoint
    /// besides the platform's roots, over `OTEL_EXPORTER_OTLP_CERTIFICATE`
    /// (feature `tls`, on by default). A file that cannot be read is a
    /// configuration problem naming it.
    ///
    /// ```no_run
    /// let _telemetry = flowtrace_telemetry::builder()
    ///     .otlp_endpoint("https://collector.internal:4318")
    ///     .otlp_certificate("/etc/ssl/internal-ca.pem")
    ///     .init()?;
    /// # Ok::<(), flowtrace_telemetry::ConfigError>(())
    /// ```
    pub fn otlp_certificate(mut self, path: impl Into<PathBuf>) -> Self {
        self.code.otlp_certificate = Some(path.into());
        self
    }

    /// The client's certificate chain and private key (PEM files) for
    /// mutual TLS with an `https` endpoint, over
    /// `OTEL_EXPORTER_OTLP_[TRACES_|LOGS_]CLIENT_{CERTIFICATE,KEY}`
    /// (feature `tls`). A file that cannot be read, or holds no PEM block of
    /// its kind, is a configuration problem naming it.
    ///
    /// ```no_run
    /// let _telemetry = flowtrace_telemetry::builder()
    ///     .otlp_endpoint("https://collector.internal:4317")
    ///     .otlp_client_certificate("/etc/otel/client.pem", "/etc/otel/client.key")
    ///     .init()?;
    /// # Ok::<(), flowtrace_telemetry::ConfigError>(())
    /// ```
    pub fn otlp_client_certificate(
        mut self,
        certificate: impl Into<PathBuf>,
        key: impl Into<PathBuf>,
    ) -> Self {
        self.code.otlp_client_identity = Some((certificate.into(), key.into()));
        self
    }

    /// With `true`, installs a panic hook (chained before the one already
    /// installed) that exports every span ended so far, waiting at most the
    /// export timeout, before the panic goes on. It matters when a panic
    /// ends the process without unwinding to the guard: `panic = "abort"`,
    /// an abort or `std::process::exit` after a task's panic was observed.
    /// (On unwinding, the guard's drop flushes anyway.) Spans still open at
    /// the panic — the panicking task's own among them — end later and are
    /// not part of that flush.
    ///
    /// ```no_run
    /// let _telemetry = flowtrace_telemetry::builder().flush_on_panic(true).init()?;
    /// # Ok::<(), flowtrace_telemetry::ConfigError>(())
    /// ```
    pub fn flush_on_panic(mut self, flush: bool) -> Self {
        self.flush_on_panic = flush;
        self
    }

    /// Heartbeat records for running spans every `interval`, over
    /// `FLOWTRACE_HEARTBEAT_INTERVAL` (milliseconds; unset or `0`: off). See
    /// `flowtrace::running` for the records.
    pub fn heartbeat_interval(mut self, interval: std::time::Duration) -> Self {
        self.code.heartbeat = Some(interval);
        self
    }

    /// The sampler, over `OTEL_TRACES_SAMPLER`.
    pub fn sampler(mut self, sampler: Sampler) -> Self {
        self.code.sampler = Some(sampler);
        self
    }

    /// Whether to install a global `tracing` subscriber (default `true`)
    /// made of tracing-opentelemetry's layer and [`layer()`](super::layer).
    /// If one is already installed it is kept, and a note is recorded.
    pub fn install_tracing_subscriber(mut self, install: bool) -> Self {
        self.install_tracing_subscriber = install;
        self
    }

    /// The most verbose `tracing` level the installed subscriber records
    /// (default `INFO`, so the debug/trace chatter of HTTP and gRPC
    /// libraries does not become span events).
    pub fn tracing_level(mut self, level: LevelFilter) -> Self {
        self.tracing_level = level;
        self
    }

    /// Reads settings from `vars` instead of the process environment (for
    /// tests; empty values count as unset, as in the environment).
    ///
    /// ```
    /// let telemetry = flowtrace_telemetry::builder()
    ///     .env_vars([("OTEL_TRACES_EXPORTER", "none"), ("OTEL_SERVICE_NAME", "test")])
    ///     .install_tracing_subscriber(false)
    ///     .init()
    ///     .unwrap();
    /// assert!(telemetry.warnings().is_empty());
    /// assert_eq!(telemetry.trace_file(), None);
    /// ```
    pub fn env_vars<I, K, V>(mut self, vars: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let map = vars
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        self.env = EnvSource::Map(map);
        self
    }

    /// Builds without touching the global provider and propagator, so unit
    /// tests can run side by side.
    #[cfg(test)]
    pub(crate) fn without_globals(mut self) -> Self {
        self.install_globals = false;
        self
    }

    /// Resolves the configuration, builds the exporters and the provider,
    /// and installs the global tracer provider, text map propagator and
    /// (unless disabled) `tracing` subscriber.
    ///
    /// Bad settings are printed once to stderr as `flowtrace: warning: …`
    /// and kept in [`Telemetry::warnings`], or, under
    /// [`strict`](Self::strict), returned as the error.
    pub fn init(mut self) -> Result<Telemetry, ConfigError> {
        let (config, mut warnings) = config::resolve(&self.env, &self.code);
        self.check(&warnings)?;
        let Some(config) = config else {
            report(&mut warnings);
            return Ok(Telemetry::inert(warnings));
        };

        let custom = std::mem::take(&mut self.custom);
        let built = build_exporters(&config, custom.spans);
        warnings.extend(built.warnings);
        if let Err(err) = flowtrace::set_process_params(self.initial_params.clone()) {
            warnings.push(ConfigWarning::failed(
                "TelemetryBuilder::initial_params",
                err.to_string(),
                "the parameters are not registered",
            ));
        }
        self.check(&warnings)?;

        let resource = Resource::builder_empty()
            .with_detector(Box::new(TelemetryResourceDetector))
            .with_attributes(config.resource.iter().cloned())
            .with_service_name(config.service_name.clone())
            .build();
        let logs = super::logs::build(
            &config.logs,
            &config.log_batch,
            resource.clone(),
            custom.logs,
        );
        warnings.extend(logs.warnings);
        self.check(&warnings)?;
        let metrics = super::metrics::build(
            &config.metrics,
            resource.clone(),
            built.processors.iter().map(|(_, p)| p.clone()).collect(),
            logs.processors.iter().map(|(_, p)| p.clone()).collect(),
        );
        warnings.extend(metrics.warnings);
        self.check(&warnings)?;
        let mut provider = SdkTracerProvider::builder()
            .with_resource(resource)
            .with_sampler(RunAttributes::new(config.sampler.clone()))
            .with_id_generator(flowtrace::RunIdGenerator::default());
        for (_, processor) in &built.processors {
            provider = provider.with_span_processor(processor.clone());
        }
        let provider = provider.build();
        if self.flush_on_panic {
            let processors: Vec<Processor> =
                built.processors.iter().map(|(_, p)| p.clone()).collect();
            panic_hook::install(&processors);
        }

        if self.install_globals {
            flowtrace::set_tracer_provider(provider.clone(), &config.sampler);
            global::set_text_map_propagator(propagator(&config.propagators));
            let named = |kind| config.propagators.contains(&kind);
            flowtrace::propagation::set_propagators(flowtrace::propagation::Propagators::new(
                named(Propagator::TraceContext),
                named(Propagator::Baggage),
            ));
            if let Some(logs) = &logs.provider {
                flowtrace::set_logger_provider(logs);
            }
            flowtrace::running::set_heartbeat_interval(config.heartbeat);
            if let Some(metrics) = &metrics.pipeline {
                flowtrace::metrics::set_meter_provider(metrics.provider());
                global::set_meter_provider(metrics.provider().clone());
            }
        }
        if self.install_tracing_subscriber {
            let targets = Targets::new()
                .with_default(self.tracing_level)
                // The SDK's own diagnostics must not turn into span events.
                .with_target("opentelemetry", LevelFilter::OFF);
            let subscriber = tracing_subscriber::registry()
                .with(targets)
                .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("flowtrace")))
                .with(super::layer())
                // `tracing` events as log records, with the task's ids.
                .with(logs.provider.as_ref().map(OpenTelemetryTracingBridge::new));
            if tracing::subscriber::set_global_default(subscriber).is_err() {
                warnings.push(ConfigWarning::note(
                    "tracing subscriber",
                    "a global default subscriber was already installed",
                    "it is kept; add tracing_opentelemetry::layer() and \
                     flowtrace_telemetry::layer() to it to record tracing spans and events",
                ));
            }
        }

        report(&mut warnings);
        Ok(
            Telemetry::new(provider, built.processors, warnings, built.trace_file)
                .with_logs(logs.provider, logs.processors, logs.file)
                .with_metrics(metrics.pipeline, metrics.file),
        )
    }

    /// Under strict mode, fails on the first batch of problems found.
    fn check(&self, warnings: &[ConfigWarning]) -> Result<(), ConfigError> {
        let problems: Vec<ConfigWarning> =
            warnings.iter().filter(|w| !w.is_note()).cloned().collect();
        if self.strict && !problems.is_empty() {
            return Err(ConfigError::new(problems));
        }
        Ok(())
    }
}

/// The batch processors and what failed to build.
struct Built {
    /// Each with its exporter's name.
    processors: Vec<(&'static str, Processor)>,
    warnings: Vec<ConfigWarning>,
    trace_file: Option<PathBuf>,
}

fn build_exporters(config: &Config, custom: Vec<CustomSpans>) -> Built {
    let mut built = Built {
        processors: Vec::new(),
        warnings: Vec::new(),
        trace_file: None,
    };
    let local = settings(&config.batch, config.batch.export_timeout, WhenFull::Drop);
    for exporter in &config.exporters {
        match exporter {
            ExporterKind::Otlp => {
                let timeout = otlp::attempt_timeout(&config.otlp, config.batch.export_timeout);
                let mut otlp_settings = settings(&config.batch, timeout, WhenFull::Drop);
                otlp_settings.io_thread = config.otlp.protocol == Protocol::Grpc;
                let started = Processor::start(otlp_settings, || OtlpExporter::new(&config.otlp));
                match started {
                    Ok(processor) => built.processors.push(("otlp", processor)),
                    Err(err) => built.warnings.push(ConfigWarning::failed(
                        "OTLP exporter",
                        format!(
                            "cannot be built for {} ({}): {err}",
                            crate::redact::url(&config.otlp.endpoint),
                            config.otlp.protocol
                        ),
                        "spans are not sent over OTLP",
                    )),
                }
            }
            ExporterKind::File => {
                // Local and quick: a full queue waits for the write rather
                // than dropping (see `WhenFull::Wait`).
                let file = settings(&config.batch, config.batch.export_timeout, WhenFull::Wait);
                let started = FileExporter::open(&config.trace_file)
                    .map_err(|e| format!("cannot open {}: {e}", config.trace_file.display()))
                    .and_then(|e| Processor::start(file, || Ok(Sdk::local(e))));
                match started {
                    Ok(processor) => {
                        built.trace_file = Some(config.trace_file.clone());
                        built.processors.push(("file", processor));
                    }
                    Err(err) => built.warnings.push(ConfigWarning::failed(
                        "FLOWTRACE_TRACE_FILE",
                        err,
                        "spans are not written to a file",
                    )),
                }
            }
            ExporterKind::Console => {
                match Processor::start(local.clone(), || Ok(Sdk::local(ConsoleExporter::stdout())))
                {
                    Ok(processor) => built.processors.push(("console", processor)),
                    Err(err) => built.warnings.push(ConfigWarning::failed(
                        "console exporter",
                        err,
                        "spans are not printed",
                    )),
                }
            }
            ExporterKind::None => {}
        }
    }
    for start in custom {
        match start(local.clone()) {
            Ok(processor) => built.processors.push(("custom", processor)),
            Err(err) => built.warnings.push(ConfigWarning::failed(
                "TelemetryBuilder::span_exporter",
                err,
                "spans are not sent to that exporter",
            )),
        }
    }
    built
}

/// The processor settings from our parsed `OTEL_BSP_*` values, with the
/// bound of one export (and of a flush, and of shutdown).
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

/// `OTEL_PROPAGATORS` as one composite. The only place naming the
/// propagator types.
fn propagator(kinds: &[Propagator]) -> TextMapCompositePropagator {
    let propagators = kinds
        .iter()
        .filter_map(|kind| -> Option<Box<dyn TextMapPropagator + Send + Sync>> {
            match kind {
                Propagator::TraceContext => {
                    Some(Box::new(flowtrace::propagation::TraceContext::new()))
                }
                Propagator::Baggage => Some(Box::new(flowtrace::propagation::Baggage::new())),
                Propagator::None => None,
            }
        })
        .collect();
    TextMapCompositePropagator::new(propagators)
}

/// Drops repeated warnings (the same bad member listed twice), then prints
/// each problem once; notes are only kept, not printed.
fn report(warnings: &mut Vec<ConfigWarning>) {
    let mut unique: Vec<ConfigWarning> = Vec::with_capacity(warnings.len());
    for warning in warnings.drain(..) {
        if !unique.contains(&warning) {
            unique.push(warning);
        }
    }
    *warnings = unique;
    let mut stderr = std::io::stderr().lock();
    for warning in warnings.iter().filter(|w| !w.is_note()) {
        // `writeln!`, not `eprintln!`: a closed stderr must not panic.
        let _ = writeln!(stderr, "flowtrace: warning: {warning}");
    }
}
