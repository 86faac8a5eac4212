//! `flowtrace_telemetry::init()` for a Temporal process.
//!
//! The Temporal SDK instruments its own internals with `tracing` spans
//! (`poll_workflow_activation`, `handle_event`, …). flowtrace's default
//! subscriber turns every `tracing` span at `INFO` into an OpenTelemetry
//! span, so under it each poll of a worker would become a trace of its own.
//! [`init`] installs the same subscriber with the SDK's targets
//! (`temporalio*`) limited to warnings and errors.

use flowtrace_telemetry::{ConfigError, Telemetry, TelemetryBuilder};
use opentelemetry::trace::TracerProvider as _;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt as _;

/// [`flowtrace_telemetry::init()`] (the `OTEL_*` environment), with the
/// Temporal SDK's internal spans left out.
pub fn init() -> Result<Telemetry, ConfigError> {
    init_with(flowtrace_telemetry::builder())
}

/// [`init`] from a builder configured in code. Its tracing-subscriber
/// setting is replaced: this installs the subscriber itself (kept, with a
/// note among the warnings, if one is already installed).
pub fn init_with(builder: TelemetryBuilder) -> Result<Telemetry, ConfigError> {
    let telemetry = builder.install_tracing_subscriber(false).init()?;
    let targets = Targets::new()
        .with_default(LevelFilter::INFO)
        .with_target("opentelemetry", LevelFilter::OFF)
        .with_target("temporalio", LevelFilter::WARN);
    let subscriber = tracing_subscriber::registry()
        .with(targets)
        .with(tracing_opentelemetry::layer().with_tracer(telemetry.provider().tracer("flowtrace")))
        .with(flowtrace_telemetry::layer());
    if tracing::subscriber::set_global_default(subscriber).is_err() {
        eprintln!(
            "flowtrace-temporal: a global tracing subscriber was already installed; it is kept \
             (add tracing_opentelemetry::layer() and flowtrace_telemetry::layer() to it)"
        );
    }
    Ok(telemetry)
}
