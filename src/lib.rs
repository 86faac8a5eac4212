//! flowtrace makes the async tasks of a workflow one connected OpenTelemetry
//! trace: a run carries a `custom_context` map across every `.await`, spawn
//! and fan-out, and `#[traced]` tasks extract their parent from it, start
//! their span, and put themselves back into it for the tasks they call.
//!
//! ```no_run
//! #[flowtrace::traced]
//! async fn fetch(url: String) -> Result<u16, std::io::Error> {
//!     tracing::info!(%url, "fetching");
//!     Ok(200)
//! }
//!
//! #[flowtrace::traced(name = "main")]
//! async fn main_task(urls: Vec<String>) -> Result<usize, std::io::Error> {
//!     let codes = futures::future::try_join_all(urls.into_iter().map(fetch)).await?;
//!     Ok(codes.len())
//! }
//!
//! # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let _telemetry = flowtrace_telemetry::init()?; // OTEL_* env, flush on drop
//! let run = flowtrace::with_runcontext()
//!     .name("workflow_run")
//!     .custom_context([("team", "search")])
//!     .run(main_task(vec!["https://example.com".into()]))
//!     .await;
//! println!("trace {} run {}", run.trace_id(), run.run_id());
//! # Ok(()) }
//! ```
//!
//! # Libraries and applications
//!
//! flowtrace is the instrumentation and the runtime: it depends on the
//! OpenTelemetry API and SDK (trace and logs) only, never on a transport. A
//! library that annotates its tasks adds one line to its `Cargo.toml`:
//!
//! ```toml
//! [dependencies]
//! flowtrace = "0.1"
//! ```
//!
//! An application adds the setup and export beside it, and calls
//! `flowtrace_telemetry::init()` once (the `OTEL_*` environment, exporters,
//! the `tracing` subscriber):
//!
//! ```toml
//! [dependencies]
//! flowtrace = "0.1"
//! flowtrace-telemetry = "0.1"
//! ```
//!
//! Or it builds its own provider and hands it over with
//! [`set_tracer_provider`] (and [`set_logger_provider`] for [`emit_log`]).
//!
//! See `README.md` for the environment variables and the semantics.
//!
//! # Cost
//!
//! A run looks the tracer provider up once. A task whose span would not
//! record starts none and only carries its map. A task call against the
//! same work done with the raw OpenTelemetry SDK, in instructions per call
//! (callgrind over the bench loop, `scripts/bench --instructions`: a count
//! that does not depend on the machine or its load); the timings, every
//! row and the method are in the repository's `BENCHMARKS.md`:
//!
//! | task call | instructions | allocations |
//! |---|---:|---:|
//! | no tracer provider installed | a plain `async fn` call + 558 | 0 |
//! | unsampled parent, parent-based sampler | 1.5× the raw unsampled SDK span | 0 |
//! | sampled | 3.4× the raw sampled SDK span | 3 |
//!
//! Install a provider you built yourself with
//! [`set_tracer_provider`] so tasks use its tracer directly and
//! know its sampler; one set with `opentelemetry::global` works too, on the
//! slower path.

#![warn(missing_docs)]

pub mod attributes;
mod backend;
pub mod cache;
pub mod capture;
mod carry;
mod custom_context;
pub mod event;
mod exception;
pub mod feedback;
mod frame;
mod install;
mod lifecycle;
mod lifecycle_options;
pub mod link;
mod log;
mod map;
pub mod metrics;
pub mod openinference;
mod outcome;
mod run;
mod run_state;
pub mod running;
pub mod sampling;
mod scope;
mod span;
mod spawn;
mod task;
mod task_view;

#[cfg(any(feature = "http-server", feature = "http-client"))]
pub mod http;
pub mod params;
pub mod process;
pub mod propagation;

#[doc(hidden)]
#[allow(missing_docs)]
pub mod __private;

pub use backend::set_tracer_provider;
pub use cache::Checkpoint;
pub use carry::{Carry, CarryFn, InTask};
pub use custom_context::{ContextError, ContextErrorKind, CustomContext};
pub use flowtrace_macros::traced;
pub use install::{
    remove_logger_provider, run_attributes, set_logger_provider, set_process_params,
};
pub use lifecycle::{Backoff, TaskBuilder, TaskTimeout, task};
pub use log::{emit_log, emit_log_at};
pub use map::{map, try_map};
pub use run::with_span_id;
pub use run::{
    DEFAULT_RUN_NAME, Run, RunBuilder, RunFuture, RunIdGenerator, RunStatus, trace_id_for,
    with_runcontext,
};
pub use scope::{Scope, Scoped, custom_context};
pub use span::{CurrentSpan, current_span};
pub use spawn::{spawn, spawn_blocking};
pub use task::{IntoLinks, IntoParent};
pub use task_view::{TaskContext, ctx};

// The message of an error with its causes, as the `exception` event records
// it; flowtrace-telemetry words its export errors the same way.
#[doc(hidden)]
pub use exception::{error_chain, with_causes};
