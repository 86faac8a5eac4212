//! flowtrace on Temporal: the `custom_context` map and one OpenTelemetry
//! trace from the client that starts a workflow, into the workflow, into
//! every activity on whichever worker picks it up, and into the `#[traced]`
//! tasks those activities call.
//!
//! A run that outgrows one process keeps its tasks as they are: the
//! `#[traced]` functions an in-process `with_runcontext().run(..)` called
//! are called from activities instead, and three interceptors carry what
//! the run carried.
//!
//! ```no_run
//! use std::sync::Arc;
//! use temporalio_client::{Client, ClientOptions, Connection, ConnectionOptions, Url};
//! use temporalio_sdk::{Runtime, Worker, WorkerOptions};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let _telemetry = flowtrace_temporal::telemetry::init()?; // OTEL_* env, as flowtrace_telemetry::init()
//!
//! // The client: one line.
//! let client_options = ClientOptions::new("default")
//!     .client_interceptors(flowtrace_temporal::client_interceptors())
//!     .build();
//!
//! // A worker: one line each for activities and workflows.
//! let worker_options = WorkerOptions::new("my-queue")
//!     .activity_inbound_interceptor(flowtrace_temporal::TracingActivityInterceptor)
//!     .workflow_interceptor(flowtrace_temporal::workflow_interceptor())
//!     // .register_workflow::<MyWorkflow>()?.register_activities(MyActivities)
//!     .build();
//! # let url: Url = "http://127.0.0.1:7233".parse()?;
//! # let connection = Connection::connect(ConnectionOptions::new(url).build()).await?;
//! # let client = Client::new(connection, client_options)?;
//! # let runtime = Runtime::from_current_tokio(Default::default())?;
//! # let _worker = Worker::new(&runtime, client, worker_options)?;
//!
//! // Start as before, under a custom_context (or inside a run or a task):
//! // flowtrace::custom_context([("team", "search")])
//! //     .scope(client.start_workflow(MyWorkflow::run, input, options))
//! //     .await?;
//! # Ok(()) }
//! ```
//!
//! `examples/temporal_workflow.rs` is a complete client, workflow, activities
//! and worker; the README's "Scaling out: Temporal" shows the commands.
//!
//! # What the trace shows
//!
//! Span names are those of Temporal's other SDKs (Python, Go, TypeScript),
//! so traces read the same across languages:
//!
//! | where | span | kind | parent |
//! |---|---|---|---|
//! | client | `StartWorkflow:<type>`, `SignalWithStartWorkflow:<type>`, `SignalWorkflow:<signal>`, `QueryWorkflow:<query>`, `StartWorkflowUpdate:<update>`, `StartUpdateWithStartWorkflow:<type>` | client | the caller's `custom_context` `traceparent`, else its current span |
//! | workflow | `RunWorkflow:<type>` | server | the header the workflow was started with |
//! | workflow | `StartActivity:<type>`, `StartChildWorkflow:<type>`, `SignalChildWorkflow:<signal>` / `SignalExternalWorkflow:<signal>`, `CompleteWorkflow:<type>` (on failure) | client | `RunWorkflow` |
//! | workflow | your `#[traced]` tasks in workflow code | — | `RunWorkflow` (or the task that called them) |
//! | workflow | `HandleSignal:<signal>`, `HandleQuery:<query>`, `ValidateUpdate:<update>`, `HandleUpdate:<update>` | server | the signal's / query's / update's own header, else `RunWorkflow` |
//! | activity | `RunActivity:<type>` | server | its `StartActivity` |
//! | activity | your `#[traced]` tasks | — | `RunActivity` (or the task that called them) |
//!
//! Attributes: `temporalWorkflowID`, `temporalRunID`, `temporalActivityID`,
//! `temporalUpdateID` (the names of the other SDKs), and
//! `flowtrace.temporal.attempt`, `flowtrace.temporal.task_queue`,
//! `flowtrace.temporal.activity_type`; on every span of the interceptors
//! and every `#[traced]` task, in workflow code and in activities, the
//! client's `flowtrace.run.id` and `flowtrace.run.name` (when the client
//! called inside a run). Workflow code and activities join the client's
//! run rather than start one ([`flowtrace::Scope::join_run`]): there
//! `flowtrace::ctx().run_id()` is the client's, and no run span or run
//! metric is recorded for them, so one client run is one run in the
//! metrics however many activities and retries it takes. A retried
//! activity is a new `RunActivity` with the next attempt number under the
//! same `StartActivity`, whichever worker runs it.
//!
//! **Replay**: `RunWorkflow` is emitted once, on the workflow's first task,
//! with a span id derived from its run id, so a replay (another worker, a
//! restart, caching disabled) parents what it emits on the `RunWorkflow`
//! that was exported. Workflow-side spans are emitted only when not
//! replaying, and `#[traced]` tasks in workflow code are not recorded while
//! it replays: nothing is emitted twice. The [`workflow`] module has the
//! details.
//!
//! # On the wire
//!
//! | header | what | encoding |
//! |---|---|---|
//! | [`TRACE_HEADER`] `_tracer-data` | the W3C carrier: `traceparent`, `tracestate`, `baggage` | a Temporal `Payload`, `json/plain`, a JSON object of strings — what the Python, Go and TypeScript tracing interceptors read and write |
//! | [`CONTEXT_HEADER`] `flowtrace-context` | the user entries of `custom_context` (every key but the three above) | the same |
//!
//! The carrier is read and written with flowtrace's strict W3C propagators.
//! Inside workflow code and activity code, `flowtrace::ctx().custom_context()`
//! answers the client's entries (and `ctx().baggage()` the client's
//! baggage), and `flowtrace::custom_context(..).scope(..)` in workflow code
//! adds entries for the activities, child workflows and signals issued
//! inside it (innermost wins). The SDK issues a command when it is *called*,
//! so call it inside the scoped future:
//! `custom_context([("stage", "child")]).scope(async { ctx.start_child_workflow(..).await })`
//! (`examples/temporal_workflow.rs` does).
//!
//! # Crate layout
//!
//! This is a crate of its own rather than a `temporal` feature of
//! `flowtrace`: it depends on `flowtrace`, so `flowtrace` re-exporting it
//! would be a dependency cycle, and the Temporal SDK (minutes and gigabytes
//! to build) stays out of every build of the core crate. Applications
//! depend on `flowtrace-temporal` alone if they like: it re-exports
//! [`flowtrace`] and its `traced`, `ctx` and `custom_context`.
//!
//! The SDK's own OpenTelemetry plugin is pinned to another OpenTelemetry
//! version; this crate uses none of its types and carries strings.
#![warn(missing_docs)]

mod activity;
mod client;
pub mod header;
mod metrics;
pub mod span;
pub mod telemetry;
pub mod workflow;

pub use activity::TracingActivityInterceptor;
pub use client::{TracingClientInterceptor, client_interceptors};
pub use header::{CONTEXT_HEADER, TRACE_HEADER};
pub use workflow::{TracingWorkflowInterceptor, workflow_interceptor};

/// The flowtrace API (`traced`, `ctx`, `custom_context`, …) and its
/// telemetry setup, so a Temporal application needs one dependency.
pub use flowtrace;
pub use flowtrace::{ctx, custom_context, traced};
pub use flowtrace_telemetry;
