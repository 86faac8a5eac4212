//! flowtrace on Temporal. See the README section "Scaling out: Temporal".
#![warn(missing_docs)]

mod activity;
mod client;
pub mod header;
pub mod span;
pub mod telemetry;
pub mod workflow;

pub use activity::TracingActivityInterceptor;
pub use client::{TracingClientInterceptor, client_interceptors};
pub use header::{CONTEXT_HEADER, TRACE_HEADER};
pub use workflow::{TracingWorkflowInterceptor, workflow_interceptor};

/// The flowtrace API (`traced`, `ctx`, `custom_context`, `telemetry`, …),
/// so a Temporal application needs one dependency.
pub use flowtrace;
pub use flowtrace::{ctx, custom_context, traced};
