//! The workflow interceptor: replay-safe spans for the workflow run, its
//! handlers and the commands it issues, and the client's `custom_context`
//! around the workflow body and into every activity and child it starts.
//!
//! # Replay
//!
//! Workflow code runs again from the start whenever a worker without the
//! workflow in its cache (another worker, a restarted one, or one with
//! caching disabled) continues it. Every workflow-side span nests under
//! the workflow's `RunWorkflow:<type>`, and nothing is recorded twice:
//!
//! - `RunWorkflow:<type>` is emitted once, when the workflow's first task
//!   runs (not replaying), under the workflow's *inbound* context (the
//!   `_tracer-data` header it was started with, the client's
//!   `StartWorkflow`), with a span id derived from the run id
//!   ([`run_workflow_span_id`]). The run id is in history, so a replay on
//!   any worker knows that id without the span, and parents what it emits
//!   on the `RunWorkflow` that was exported: the id never depends on
//!   anything generated at run time. The tracer provider gives the span
//!   that id through [`flowtrace::RunIdGenerator`] (the id generator
//!   `flowtrace_telemetry` and [`crate::telemetry::init`] install; with
//!   another one, a warning says so once): the OpenTelemetry SDK takes
//!   every span id from the provider's id generator and none from the
//!   span builder. A first workflow task that never completed (its worker
//!   killed) runs again not replaying and emits `RunWorkflow` again, with
//!   the same id.
//! - `StartActivity:<type>`, `StartChildWorkflow:<type>`,
//!   `SignalChildWorkflow:<signal>` / `SignalExternalWorkflow:<signal>`,
//!   `CompleteWorkflow:<type>`, and the handlers of messages sent without
//!   a trace context are children of `RunWorkflow`, emitted only when not
//!   replaying (`is_replaying_history_events() == false`). A handler of a
//!   traced signal, query or update is the child of its sender's span, as
//!   in Temporal's other SDKs.
//! - The workflow code runs under `RunWorkflow` (its `#[traced]` tasks are
//!   its children), except while it replays: then each poll runs under
//!   `RunWorkflow`'s context marked not sampled, with flowtrace's forced
//!   decision `flowtrace=s:0`, so a task it starts is dropped by a
//!   parent-based sampler and by flowtrace-telemetry's sampler (whatever
//!   `OTEL_TRACES_SAMPLER` says) and is not recorded again. A task that is
//!   still pending when the workflow leaves a worker's cache ends there;
//!   the replay that continues it elsewhere records nothing of it.
//!
//! The `#[traced]` tasks of workflow code (the workflow body and its signal
//! and update handlers) belong to the client's run, as the spans of the
//! interceptors and the tasks of activities do: they carry the client's
//! `flowtrace.run.id` and `flowtrace.run.name` (from the `flowtrace-context`
//! header), and `flowtrace::ctx().run_id()` / `run_name()` answer them. The
//! workflow code joins that run with [`flowtrace::Scope::join_run`], which
//! starts no run: no run span, no run metrics, the same on every replay.
//! The workflow run itself is counted once in the `flowtrace.run.*`
//! metrics, by the worker that completes it live, under its workflow type.
//!
//! Temporal's Go (`contrib/opentelemetry-v2`) and Python
//! (`create_tracer_provider`) integrations reach the same tree with span ids
//! drawn from the workflow's seeded random stream and spans ended during a
//! replay dropped; the TypeScript interceptor from its deterministic
//! sandbox. Here the ids come from the run id, and the other workflow-side
//! spans are *completed spans*: each ends as soon as it is started and
//! marks the moment the workflow ran or issued the command. A workflow can
//! live for months and move between workers, and a worker can be killed at
//! any point; a span held open in a worker's memory would be lost with it.
//! The durations that matter are on the `RunActivity` spans. A workflow
//! that fails adds a `CompleteWorkflow:<type>` span with status Error
//! (continue-as-new, cancellation and eviction do not).
//!
//! A run continued as new starts a new trace: its parent is derived from
//! its own run id as below, and its `RunWorkflow` links to the previous
//! run's `RunWorkflow` (`flowtrace.link.reason = "continue_as_new"`), so a workflow
//! that continues as new every day is a chain of traces, not one that grows
//! forever. The map, baggage, client run and sampling decision carry over.
//!
//! A workflow started without a trace context gets one of its own: trace id
//! [`flowtrace::trace_id_for`] of its run id, under a parent span id derived
//! from the run id too (no span has that id; viewers show the workflow's
//! spans under a missing root).

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Debug;
use std::future::Future;

use futures_util::FutureExt as _;

use opentelemetry::trace::{
    Link, SpanContext, SpanId, SpanKind, TraceContextExt as _, TraceFlags, TraceState,
};
use opentelemetry::{Context, KeyValue};
use temporalio_common::protos::temporal::api::common::v1::Payload;
use temporalio_workflow::workflow_interceptors::{
    CancellableWorkflowOutboundFuture, ContinueAsNewInput, ContinueAsNewResult,
    ExecuteWorkflowInput, ExecuteWorkflowResult, HandleQueryInput, HandleQueryResult,
    HandleSignalInput, HandleSignalResult, HandleUpdateInput, HandleUpdateResult,
    InitializeWorkflowInput, InitializeWorkflowOutput, ScheduleActivityInput,
    ScheduleActivityResult, ScheduleLocalActivityInput, SignalWorkflowInput, SignalWorkflowResult,
    SignalWorkflowTarget, StartChildWorkflowInput, StartChildWorkflowResult,
    SyncWorkflowInterceptorContext, ValidateUpdateInput, ValidateUpdateResult, WorkflowInterceptor,
    WorkflowInterceptorConstructor, WorkflowInterceptorContext, WorkflowInterceptorFuture,
    WorkflowNext,
};
use temporalio_workflow::{WorkflowContextView, WorkflowTermination};

use crate::header::{self, Received};
use crate::span;

/// The constructor to register on `WorkerOptions`:
/// `.workflow_interceptor(flowtrace_temporal::workflow_interceptor())`.
pub fn workflow_interceptor() -> WorkflowInterceptorConstructor {
    WorkflowInterceptorConstructor::new(|_: &WorkflowContextView| {
        TracingWorkflowInterceptor::default()
    })
}

/// One per workflow instance (see [`workflow_interceptor`]): spans
/// `RunWorkflow:<type>`, `HandleSignal:<name>`, `HandleQuery:<name>`,
/// `ValidateUpdate:<name>`, `HandleUpdate:<name>`, `StartActivity:<type>`,
/// `StartChildWorkflow:<type>`, `SignalChildWorkflow:<name>`,
/// `SignalExternalWorkflow:<name>`; the trace and
/// the `custom_context` entries into the headers of activities, child
/// workflows, signals and continue-as-new. See the [module docs](self) for
/// what happens on replay.
#[derive(Default)]
pub struct TracingWorkflowInterceptor {
    /// What the workflow was started with (from history: replay-stable).
    inbound: RefCell<Received>,
    /// The previous run's `RunWorkflow`, for a run continued as new.
    link: RefCell<Option<SpanContext>>,
    /// `RunWorkflow`'s span context (its replay-stable id, see
    /// [`run_workflow_span_id`]): the parent of every other workflow-side span.
    run_workflow: RefCell<Context>,
}

impl Debug for TracingWorkflowInterceptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TracingWorkflowInterceptor")
            .field("entries", &self.inbound.borrow().entries)
            .finish_non_exhaustive()
    }
}

/// A replay-stable parent for a workflow started without a trace context;
/// a run continued as new keeps the sampling decision of `like`, the
/// previous run's `RunWorkflow`.
fn synthetic_parent(run_id: &str, like: Option<&SpanContext>) -> Context {
    let trace_id = flowtrace::trace_id_for(run_id);
    let bytes = trace_id.to_bytes();
    let mut low = [0u8; 8];
    low.copy_from_slice(&bytes[8..]);
    let span_id = SpanId::from_bytes(u64::from_be_bytes(low).max(1).to_be_bytes());
    let (flags, state) = like.map_or((TraceFlags::SAMPLED, TraceState::default()), |sc| {
        (sc.trace_flags(), sc.trace_state().clone())
    });
    Context::new().with_remote_span_context(SpanContext::new(trace_id, span_id, flags, true, state))
}

/// The span id of `RunWorkflow` for the run `run_id`: derived from the run
/// id (in history, so the same on every replay and every worker), never
/// zero, and not the synthetic parent's.
pub fn run_workflow_span_id(run_id: &str) -> SpanId {
    let bytes = flowtrace::trace_id_for(&format!("RunWorkflow:{run_id}")).to_bytes();
    let mut low = [0u8; 8];
    low.copy_from_slice(&bytes[8..]);
    SpanId::from_bytes(u64::from_be_bytes(low).max(1).to_be_bytes())
}

/// `RunWorkflow`'s span context as a replay rebuilds it, without the span:
/// the id of [`run_workflow_span_id`] in the parent's trace, with the
/// parent's sampling flag and `tracestate` (what a parent-based sampler,
/// and flowtrace-telemetry's, decide for `RunWorkflow`).
fn rebuilt_run_workflow(parent: &Context, run_id: &str) -> Context {
    let span = parent.span();
    let sc = span.span_context();
    if !sc.is_valid() {
        return parent.clone();
    }
    parent.with_remote_span_context(SpanContext::new(
        sc.trace_id(),
        run_workflow_span_id(run_id),
        sc.trace_flags(),
        false,
        sc.trace_state().clone(),
    ))
}

/// Says once per process that the tracer provider ignored the span id
/// `RunWorkflow` asked for.
fn warn_foreign_id_generator() {
    static WARNED: std::sync::Once = std::sync::Once::new();
    WARNED.call_once(|| {
        eprintln!(
            "flowtrace-temporal: the tracer provider's id generator ignores the span id of \
             RunWorkflow; the spans a workflow emits after a replay point at a RunWorkflow \
             that was never exported. Install flowtrace::RunIdGenerator (flowtrace_telemetry \
             and flowtrace_temporal::telemetry::init() do)"
        );
    });
}

impl TracingWorkflowInterceptor {
    fn remember(&self, headers: &HashMap<String, Payload>, run_id: &str) {
        let mut received = header::extract(headers);
        let link = header::extract_link(headers);
        if !received.parent.span().span_context().is_valid() {
            received.parent =
                synthetic_parent(run_id, link.as_ref()).with_baggage_of(&received.parent);
        }
        *self.run_workflow.borrow_mut() = rebuilt_run_workflow(&received.parent, run_id);
        *self.inbound.borrow_mut() = received;
        *self.link.borrow_mut() = link;
    }

    /// Emits `RunWorkflow` under the inbound parent, with the span id of
    /// [`run_workflow_span_id`], and keeps its span context as the parent of
    /// the workflow's other spans.
    fn emit_run_workflow(
        &self,
        ctx: &WorkflowInterceptorContext,
        name: String,
        mut attributes: Vec<KeyValue>,
        links: Vec<Link>,
    ) {
        let inbound = self.inbound.borrow();
        attributes.extend(span::workflow_attributes(ctx.workflow_id(), ctx.run_id()));
        attributes.extend(span::session_attributes(&inbound.entries));
        attributes.extend(inbound.run.iter().cloned());
        let id = run_workflow_span_id(ctx.run_id());
        let cx = flowtrace::with_span_id(id, || {
            span::start_linked(&inbound.parent, name, SpanKind::Server, attributes, links)
        });
        let span = cx.span();
        let sc = span.span_context().clone();
        span.end();
        if !sc.is_valid() {
            // No provider: nothing records; the rebuilt context stays.
            return;
        }
        if sc.span_id() != id {
            warn_foreign_id_generator();
        }
        let emitted = inbound.parent.with_remote_span_context(SpanContext::new(
            sc.trace_id(),
            sc.span_id(),
            sc.trace_flags(),
            false,
            sc.trace_state().clone(),
        ));
        drop(inbound);
        *self.run_workflow.borrow_mut() = emitted;
    }

    /// The parent and entries for an inbound handler: its own header when it
    /// has one (a traced signal, query or update), else `RunWorkflow`.
    fn inbound_for(&self, headers: &HashMap<String, Payload>) -> Received {
        let inbound = self.inbound.borrow();
        let own = header::extract(headers);
        let mut entries = inbound.entries.clone();
        entries.extend(own.entries);
        let parent = if own.parent.span().span_context().is_valid() {
            own.parent
        } else {
            self.run_workflow.borrow().clone()
        };
        let run = if own.run.is_empty() {
            inbound.run.clone()
        } else {
            own.run
        };
        Received {
            parent,
            entries,
            run,
        }
    }

    /// The `custom_context` entries for an outbound command: the workflow's,
    /// with what the workflow code scoped in around the call over them.
    fn outbound_entries(&self) -> BTreeMap<String, String> {
        let mut entries = self.inbound.borrow().entries.clone();
        entries.extend(header::current_entries());
        entries
    }

    /// The completed span (when not replaying) and the headers of an
    /// outbound command.
    fn outbound(
        &self,
        ctx: &WorkflowInterceptorContext,
        name: String,
        mut attributes: Vec<KeyValue>,
        headers: &mut HashMap<String, Payload>,
    ) {
        let parent = self.run_workflow.borrow().clone();
        let run = self.inbound.borrow().run.clone();
        let entries = self.outbound_entries();
        if ctx.is_replaying_history_events() {
            // Replayed commands are matched against history, never sent.
            header::inject(&parent, &entries, &run, headers);
            return;
        }
        attributes.extend(span::workflow_attributes(ctx.workflow_id(), ctx.run_id()));
        attributes.extend(span::session_attributes(&entries));
        attributes.extend(run.iter().cloned());
        let cx = span::start(&parent, name, SpanKind::Client, attributes);
        header::inject(&cx, &entries, &run, headers);
        cx.span().end();
    }

    /// An inbound handler's completed span (when not replaying), and its
    /// body under that span and the `custom_context` entries.
    fn inbound_handler<'a, T: 'a, E: 'a>(
        &self,
        ctx: &WorkflowInterceptorContext,
        name: String,
        (attributes, links): (Vec<KeyValue>, Vec<Link>),
        headers: &HashMap<String, Payload>,
        body: impl FnOnce() -> WorkflowInterceptorFuture<'a, Result<T, E>>,
    ) -> impl Future<Output = Result<T, E>> + 'a {
        let received = self.inbound_for(headers);
        let replaying = {
            let ctx = ctx.clone();
            move || ctx.is_replaying_history_events()
        };
        let current = if ctx.is_replaying_history_events() {
            received.parent
        } else {
            let mut attributes = attributes;
            attributes.extend(span::workflow_attributes(ctx.workflow_id(), ctx.run_id()));
            attributes.extend(span::session_attributes(&received.entries));
            attributes.extend(received.run.iter().cloned());
            let cx =
                span::start_linked(&received.parent, name, SpanKind::Server, attributes, links);
            cx.span().end();
            cx
        };
        let run = header::client_run(&received.run);
        span::scoped_replay_safe(current, replaying, received.entries, run, body())
    }

    /// A synchronous handler (query, update validator) in a span.
    fn sync_handler<T, E: Debug>(
        &self,
        emit: bool,
        ctx: &SyncWorkflowInterceptorContext,
        name: String,
        attributes: Vec<KeyValue>,
        headers: &HashMap<String, Payload>,
        body: impl FnOnce() -> Result<T, E>,
    ) -> Result<T, E> {
        let received = self.inbound_for(headers);
        let cx = emit.then(|| {
            let mut attributes = attributes;
            attributes.extend(span::workflow_attributes(ctx.workflow_id(), ctx.run_id()));
            attributes.extend(span::session_attributes(&received.entries));
            attributes.extend(received.run.iter().cloned());
            span::start(&received.parent, name, SpanKind::Server, attributes)
        });
        // Not emitted: an update validator on replay, whose tasks are not
        // recorded again either.
        let current = cx.clone().unwrap_or_else(|| span::muted(&received.parent));
        // An async block with no `.await` completes on its first poll: the
        // one way to run a synchronous body under a `custom_context` scope.
        let run = header::client_run(&received.run);
        let result = span::scoped(current, received.entries, run, async move { body() })
            .now_or_never()
            .expect("an async block without .await is ready on its first poll");
        if let Some(cx) = cx {
            span::finish(&cx, &result);
        }
        result
    }
}

trait WithBaggageOf {
    fn with_baggage_of(self, other: &Context) -> Context;
}

impl WithBaggageOf for Context {
    fn with_baggage_of(self, other: &Context) -> Context {
        use opentelemetry::baggage::BaggageExt as _;
        let pairs: Vec<KeyValue> = other
            .baggage()
            .iter()
            .map(|(k, (v, _))| KeyValue::new(k.clone(), v.clone()))
            .collect();
        if pairs.is_empty() {
            self
        } else {
            self.with_baggage(pairs)
        }
    }
}

impl WorkflowInterceptor for TracingWorkflowInterceptor {
    fn initialize_workflow(
        &self,
        ctx: WorkflowContextView,
        input: InitializeWorkflowInput,
        next: WorkflowNext<'_, InitializeWorkflowInput, InitializeWorkflowOutput>,
    ) -> InitializeWorkflowOutput {
        self.remember(input.headers(), ctx.run_id());
        next.run(input)
    }

    fn execute<'a>(
        &'a self,
        ctx: WorkflowInterceptorContext,
        input: ExecuteWorkflowInput,
        next: WorkflowNext<
            'a,
            ExecuteWorkflowInput,
            WorkflowInterceptorFuture<'a, ExecuteWorkflowResult>,
        >,
    ) -> WorkflowInterceptorFuture<'a, ExecuteWorkflowResult> {
        self.remember(input.headers(), ctx.run_id());
        let workflow_type = ctx.workflow_type().to_owned();
        if !ctx.is_replaying_history_events() {
            let name = format!("RunWorkflow:{workflow_type}");
            let attributes = vec![KeyValue::new(span::TASK_QUEUE, ctx.task_queue().to_owned())];
            // A run continued as new: a new trace, linked to the previous run's.
            let links = self
                .link
                .borrow()
                .as_ref()
                .and_then(|sc| flowtrace::link::link_to(sc, "continue_as_new"))
                .into_iter()
                .collect();
            self.emit_run_workflow(&ctx, name, attributes, links);
        }
        // The workflow body under RunWorkflow; muted while it replays.
        let replaying = {
            let ctx = ctx.clone();
            move || ctx.is_replaying_history_events()
        };
        let entries = self.inbound.borrow().entries.clone();
        // Its tasks join the client's run (no run of its own: a replay
        // starts none again).
        let run = header::client_run(&self.inbound.borrow().run);
        let body = span::scoped_replay_safe(
            self.run_workflow.borrow().clone(),
            replaying,
            entries,
            run,
            next.run(input),
        );
        let run_attributes = self.inbound.borrow().run.clone();
        let measured = crate::metrics::WorkflowRun::start(
            &workflow_type,
            !ctx.is_replaying_history_events(),
            ctx.workflow_time(),
        );
        WorkflowInterceptorFuture::new(async move {
            let result = body.await;
            measured.end(
                &result,
                !ctx.is_replaying_history_events(),
                ctx.workflow_time(),
            );
            // Continue-as-new and eviction end the body with an `Err` too;
            // only a failure is one.
            if let Err(error @ WorkflowTermination::Failed(_)) = &result
                && !ctx.is_replaying_history_events()
            {
                let mut attributes = span::workflow_attributes(ctx.workflow_id(), ctx.run_id());
                attributes.extend(run_attributes);
                let name = format!("CompleteWorkflow:{workflow_type}");
                let parent = self.run_workflow.borrow().clone();
                let cx = span::start(&parent, name, SpanKind::Internal, attributes);
                span::finish(&cx, &Err::<(), _>(error));
            }
            result
        })
    }

    fn handle_signal<'a>(
        &'a self,
        ctx: WorkflowInterceptorContext,
        input: HandleSignalInput,
        next: WorkflowNext<
            'a,
            HandleSignalInput,
            WorkflowInterceptorFuture<'a, HandleSignalResult>,
        >,
    ) -> WorkflowInterceptorFuture<'a, HandleSignalResult> {
        let name = format!("HandleSignal:{}", input.name());
        let headers = input.headers().clone();
        WorkflowInterceptorFuture::new(self.inbound_handler(
            &ctx,
            name,
            (Vec::new(), Vec::new()),
            &headers,
            move || next.run(input),
        ))
    }

    fn handle_update<'a>(
        &'a self,
        ctx: WorkflowInterceptorContext,
        input: HandleUpdateInput,
        next: WorkflowNext<
            'a,
            HandleUpdateInput,
            WorkflowInterceptorFuture<'a, HandleUpdateResult>,
        >,
    ) -> WorkflowInterceptorFuture<'a, HandleUpdateResult> {
        let name = format!("HandleUpdate:{}", input.name());
        let attributes = vec![KeyValue::new(span::UPDATE_ID, input.id().to_owned())];
        let headers = input.headers().clone();
        WorkflowInterceptorFuture::new(self.inbound_handler(
            &ctx,
            name,
            (attributes, Vec::new()),
            &headers,
            move || next.run(input),
        ))
    }

    fn handle_query(
        &self,
        ctx: SyncWorkflowInterceptorContext,
        input: HandleQueryInput,
        next: WorkflowNext<'_, HandleQueryInput, HandleQueryResult>,
    ) -> HandleQueryResult {
        // Queries are not part of history and never replayed: always a span.
        let name = format!("HandleQuery:{}", input.name());
        let headers = input.headers().clone();
        self.sync_handler(true, &ctx, name, Vec::new(), &headers, move || {
            next.run(input)
        })
    }

    fn validate_update(
        &self,
        ctx: SyncWorkflowInterceptorContext,
        input: ValidateUpdateInput,
        next: WorkflowNext<'_, ValidateUpdateInput, ValidateUpdateResult>,
    ) -> ValidateUpdateResult {
        let name = format!("ValidateUpdate:{}", input.name());
        let attributes = vec![KeyValue::new(span::UPDATE_ID, input.id().to_owned())];
        let headers = input.headers().clone();
        let emit = !ctx.is_replaying_history_events();
        self.sync_handler(emit, &ctx, name, attributes, &headers, move || {
            next.run(input)
        })
    }

    fn schedule_activity(
        &self,
        ctx: WorkflowInterceptorContext,
        mut input: ScheduleActivityInput,
        next: WorkflowNext<
            'static,
            ScheduleActivityInput,
            CancellableWorkflowOutboundFuture<ScheduleActivityResult>,
        >,
    ) -> CancellableWorkflowOutboundFuture<ScheduleActivityResult> {
        let name = format!("StartActivity:{}", input.activity_type());
        let options = input.options();
        let mut attributes = vec![KeyValue::new(
            span::TASK_QUEUE,
            options
                .task_queue
                .clone()
                .unwrap_or_else(|| ctx.task_queue().to_owned()),
        )];
        if let Some(id) = &options.activity_id {
            attributes.push(KeyValue::new(span::ACTIVITY_ID, id.clone()));
        }
        self.outbound(&ctx, name, attributes, input.headers_mut());
        next.run(input)
    }

    fn schedule_local_activity(
        &self,
        ctx: WorkflowInterceptorContext,
        mut input: ScheduleLocalActivityInput,
        next: WorkflowNext<
            'static,
            ScheduleLocalActivityInput,
            CancellableWorkflowOutboundFuture<ScheduleActivityResult>,
        >,
    ) -> CancellableWorkflowOutboundFuture<ScheduleActivityResult> {
        let name = format!("StartActivity:{}", input.activity_type());
        self.outbound(&ctx, name, Vec::new(), input.headers_mut());
        next.run(input)
    }

    fn start_child_workflow(
        &self,
        ctx: WorkflowInterceptorContext,
        mut input: StartChildWorkflowInput,
        next: WorkflowNext<
            'static,
            StartChildWorkflowInput,
            CancellableWorkflowOutboundFuture<StartChildWorkflowResult>,
        >,
    ) -> CancellableWorkflowOutboundFuture<StartChildWorkflowResult> {
        let name = format!("StartChildWorkflow:{}", input.workflow_type());
        self.outbound(&ctx, name, Vec::new(), input.headers_mut());
        next.run(input)
    }

    fn signal_workflow(
        &self,
        ctx: WorkflowInterceptorContext,
        mut input: SignalWorkflowInput,
        next: WorkflowNext<
            'static,
            SignalWorkflowInput,
            CancellableWorkflowOutboundFuture<SignalWorkflowResult>,
        >,
    ) -> CancellableWorkflowOutboundFuture<SignalWorkflowResult> {
        let target = match input.target() {
            SignalWorkflowTarget::Child { .. } => "SignalChildWorkflow",
            _ => "SignalExternalWorkflow",
        };
        let name = format!("{target}:{}", input.signal_name());
        self.outbound(&ctx, name, Vec::new(), input.headers_mut());
        next.run(input)
    }

    fn continue_as_new(
        &self,
        _ctx: SyncWorkflowInterceptorContext,
        mut input: ContinueAsNewInput,
        next: WorkflowNext<'static, ContinueAsNewInput, ContinueAsNewResult>,
    ) -> ContinueAsNewResult {
        // The next run starts a new trace linked to this run's RunWorkflow,
        // with this run's baggage, map and client run.
        let inbound = self.inbound.borrow();
        let fresh = Context::new().with_baggage_of(&inbound.parent);
        let headers = input.headers_mut();
        headers.remove(header::TRACE_HEADER);
        header::inject(&fresh, &self.outbound_entries(), &inbound.run, headers);
        header::inject_link(&self.run_workflow.borrow(), headers);
        drop(inbound);
        next.run(input)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_workflow_without_a_trace_context_gets_a_replay_stable_one() {
        let first = synthetic_parent("0190-run", None);
        let again = synthetic_parent("0190-run", None);
        let other = synthetic_parent("0191-run", None);
        let sc = first.span().span_context().clone();
        assert!(sc.is_valid() && sc.is_remote() && sc.is_sampled());
        assert_eq!(&sc, again.span().span_context(), "the same on every replay");
        assert_eq!(sc.trace_id(), flowtrace::trace_id_for("0190-run"));
        assert_ne!(sc.trace_id(), other.span().span_context().trace_id());
    }

    #[test]
    fn run_workflow_has_a_replay_stable_id_of_its_own() {
        let id = run_workflow_span_id("0190-run");
        assert_eq!(
            id,
            run_workflow_span_id("0190-run"),
            "the same on every replay"
        );
        assert_ne!(id, run_workflow_span_id("0191-run"));
        assert_ne!(id, SpanId::INVALID);
        let synthetic = synthetic_parent("0190-run", None);
        assert_ne!(id, synthetic.span().span_context().span_id());
        let rebuilt = rebuilt_run_workflow(&synthetic, "0190-run");
        let sc = rebuilt.span().span_context().clone();
        assert_eq!(sc.span_id(), id);
        assert_eq!(sc.trace_id(), flowtrace::trace_id_for("0190-run"));
        assert!(sc.is_sampled(), "the parent's decision");
    }

    #[flowtrace::traced]
    async fn step() -> u32 {
        7
    }

    /// One test owns the global tracer provider.
    #[test]
    fn run_workflow_gets_its_id_and_workflow_code_records_tasks_only_when_live_in_the_client_run() {
        use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(exporter.clone())
            .with_id_generator(flowtrace::RunIdGenerator::default())
            .build();
        opentelemetry::global::set_tracer_provider(provider.clone());

        let parent = synthetic_parent("0190-run", None);
        let id = run_workflow_span_id("0190-run");
        let cx = flowtrace::with_span_id(id, || {
            span::start(
                &parent,
                "RunWorkflow:W".into(),
                SpanKind::Server,
                Vec::new(),
            )
        });
        cx.span().end();
        let live = rebuilt_run_workflow(&parent, "0190-run");
        let client = || Some(("client-0190".to_owned(), "client_run".to_owned()));
        for replaying in [true, false, true] {
            let out = span::scoped_replay_safe(
                live.clone(),
                move || replaying,
                BTreeMap::new(),
                client(),
                async { (step().await, flowtrace::ctx().run_id().to_owned()) },
            )
            .now_or_never()
            .expect("ready");
            assert_eq!(out, (7, "client-0190".to_owned()), "the client's run");
        }
        // One body across a replay: a task started while it replays is not
        // recorded, one started once it runs live is.
        let replaying = std::rc::Rc::new(std::cell::Cell::new(true));
        let flag = replaying.clone();
        let mut body = Box::pin(span::scoped_replay_safe(
            live.clone(),
            move || flag.get(),
            BTreeMap::new(),
            client(),
            async {
                step().await;
                let mut yielded = false;
                futures_util::future::poll_fn(|task| {
                    if std::mem::replace(&mut yielded, true) {
                        std::task::Poll::Ready(())
                    } else {
                        task.waker().wake_by_ref();
                        std::task::Poll::Pending
                    }
                })
                .await;
                step().await
            },
        ));
        assert!((&mut body).now_or_never().is_none());
        replaying.set(false);
        assert_eq!((&mut body).now_or_never(), Some(7));
        let spans = exporter.get_finished_spans().expect("spans");
        let names: Vec<&str> = spans.iter().map(|s| s.name.as_ref()).collect();
        assert_eq!(
            names,
            ["RunWorkflow:W", "step", "step"],
            "the replays record nothing"
        );
        assert_eq!(spans[0].span_context.span_id(), id);
        assert_eq!(spans[1].parent_span_id, id, "the task under RunWorkflow");
        assert_eq!(
            spans[1].span_context.trace_id(),
            flowtrace::trace_id_for("0190-run")
        );
        for task in &spans[1..] {
            let attr = |key: &str| {
                task.attributes
                    .iter()
                    .find(|kv| kv.key.as_str() == key)
                    .map(|kv| kv.value.to_string())
            };
            assert_eq!(
                attr(flowtrace::attributes::RUN_ID).as_deref(),
                Some("client-0190"),
                "the task carries the client's run"
            );
            assert_eq!(
                attr(flowtrace::attributes::RUN_NAME).as_deref(),
                Some("client_run")
            );
        }
        let _ = provider.shutdown();
    }

    #[test]
    fn outbound_entries_put_what_workflow_code_scoped_over_the_inbound_ones() {
        let interceptor = TracingWorkflowInterceptor::default();
        interceptor.inbound.borrow_mut().entries = BTreeMap::from([
            ("team".to_owned(), "search".to_owned()),
            ("stage".to_owned(), "start".to_owned()),
        ]);
        let entries = futures_util::FutureExt::now_or_never(
            flowtrace::custom_context([("stage", "child")])
                .scope(async { interceptor.outbound_entries() }),
        )
        .expect("ready");
        assert_eq!(entries["team"], "search");
        assert_eq!(entries["stage"], "child", "innermost wins");
        assert_eq!(interceptor.outbound_entries()["stage"], "start");
    }
}
