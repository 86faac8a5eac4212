//! What an application's telemetry setup hands to the runtime: the logger
//! provider [`emit_log`](crate::emit_log) emits through, the process-wide parameters,
//! and the run attributes its sampler puts on spans flowtrace did not start
//! itself. flowtrace-telemetry's `init()` calls these; a setup built by hand
//! may too. The tracer provider goes in with
//! [`set_tracer_provider`](crate::set_tracer_provider).

use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::logs::SdkLoggerProvider;
use serde_json::Value as Json;

use crate::params::ParamError;

/// Makes `provider` the one [`emit_log`](crate::emit_log) and
/// [`emit_log_at`](crate::emit_log_at) emit through.
///
/// ```
/// let provider = opentelemetry_sdk::logs::SdkLoggerProvider::builder().build();
/// flowtrace::set_logger_provider(&provider);
/// flowtrace::emit_log("emitted through `provider`");
/// flowtrace::remove_logger_provider();
/// # let _ = provider.shutdown();
/// ```
pub fn set_logger_provider(provider: &SdkLoggerProvider) {
    crate::log::install(provider);
}

/// After the logger provider is shut down: [`emit_log`](crate::emit_log) emits
/// nothing.
///
/// ```
/// use opentelemetry_sdk::logs::SdkLoggerProvider;
///
/// let provider = SdkLoggerProvider::builder().build();
/// flowtrace::set_logger_provider(&provider);
/// flowtrace::emit_log("recorded");
/// let _ = provider.shutdown();
/// flowtrace::remove_logger_provider();
/// flowtrace::emit_log("dropped: nothing is installed");
/// ```
pub fn remove_logger_provider() {
    crate::log::uninstall();
}

/// Sets process-wide parameters, which every run's spans record as
/// `flowtrace.param.<key>`: what
/// [`params::register_all`](crate::params::register_all) does outside a run,
/// also when called inside one. All of them, or none when one is refused.
///
/// ```
/// flowtrace::set_process_params([("model".to_owned(), serde_json::json!("gpt-4o-mini"))]).unwrap();
/// assert_eq!(flowtrace::params::get()["model"], "gpt-4o-mini");
/// ```
pub fn set_process_params<I>(pairs: I) -> Result<(), ParamError>
where
    I: IntoIterator<Item = (String, Json)>,
{
    crate::params::register_process(pairs)
}

/// `flowtrace.run.id` and `flowtrace.run.name` of the run a span started
/// under `parent` belongs to (the current task's run first), for a sampler
/// that labels spans flowtrace did not start itself; `None` outside a run.
///
/// ```
/// let cx = opentelemetry::Context::new();
/// assert!(flowtrace::run_attributes(&cx).is_none());
/// ```
pub fn run_attributes(parent: &Context) -> Option<[KeyValue; 2]> {
    crate::task_view::run_attributes(parent)
}
