//! The workflow interceptor: replay-safe spans for the workflow run, its
//! handlers and the commands it issues, and the client's `custom_context`
//! around the workflow body and into every activity and child it starts.
//!
//! # Replay
//!
//! Workflow code runs again from the start whenever a worker without the
//! workflow in its cache (another worker, a restarted one, or one with
//! caching disabled) continues it. flowtrace-temporal **emits workflow-side
//! spans only when not replaying** (`is_replaying_history_events() ==
//! false`), and parents every one of them on the workflow's *inbound*
//! context — the `_tracer-data` header it was started with (the client's
//! `StartWorkflow` span), which is in the history and so the same on every
//! replay. The parent of a span never depends on an id generated at run
//! time, so a span emitted after a replay points at a span that exists, and
//! a replay emits nothing again. This is the layout of Temporal's Python
//! interceptor: `RunWorkflow:<type>`, `StartActivity:<type>` and the handler
//! spans are siblings under the client's span, and `RunActivity:<type>` is
//! the child of its `StartActivity:<type>`.
//!
//! Workflow-side spans are *completed spans*, as in the Python interceptor:
//! each ends as soon as it is started and marks the moment the workflow ran
//! or issued the command. A workflow can live for months and move between
//! workers, and a worker can be killed at any point; a span held open in a
//! worker's memory would be lost with it. The durations that matter are on
//! the `RunActivity` spans. A workflow that fails adds a
//! `CompleteWorkflow:<type>` span with status Error (continue-as-new,
//! cancellation and eviction do not).
//!
//! A run continued as new starts a new trace: its parent is derived from
//! its own run id as below, and its `RunWorkflow` links to the previous
//! run's parent (`flowtrace.link.reason = "continue_as_new"`), so a workflow
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
    /// The previous run's parent, for a run continued as new.
    link: RefCell<Option<SpanContext>>,
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
/// previous run's parent.
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

impl TracingWorkflowInterceptor {
    fn remember(&self, headers: &HashMap<String, Payload>, run_id: &str) {
        let mut received = header::extract(headers);
        let link = header::extract_link(headers);
        if !received.parent.span().span_context().is_valid() {
            received.parent =
                synthetic_parent(run_id, link.as_ref()).with_baggage_of(&received.parent);
        }
        *self.inbound.borrow_mut() = received;
        *self.link.borrow_mut() = link;
    }

    /// The parent and entries for an inbound handler: its own header when it
    /// has one (a traced signal, query or update), else the workflow's.
    fn inbound_for(&self, headers: &HashMap<String, Payload>) -> Received {
        let inbound = self.inbound.borrow();
        let own = header::extract(headers);
        let mut entries = inbound.entries.clone();
        entries.extend(own.entries);
        let parent = if own.parent.span().span_context().is_valid() {
            own.parent
        } else {
            inbound.parent.clone()
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
        let parent = self.inbound.borrow().parent.clone();
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
        span::scoped(current, received.entries, body())
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
        let current = cx.clone().unwrap_or_else(|| received.parent.clone());
        // An async block with no `.await` completes on its first poll: the
        // one way to run a synchronous body under a `custom_context` scope.
        let result = span::scoped(current, received.entries, async move { body() })
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
        let name = format!("RunWorkflow:{workflow_type}");
        let attributes = vec![KeyValue::new(span::TASK_QUEUE, ctx.task_queue().to_owned())];
        let headers = input.headers().clone();
        // A run continued as new: a new trace, linked to the previous run's.
        let links = self
            .link
            .borrow()
            .as_ref()
            .and_then(|sc| flowtrace::link::link_to(sc, "continue_as_new"))
            .into_iter()
            .collect();
        let body = self.inbound_handler(&ctx, name, (attributes, links), &headers, move || {
            next.run(input)
        });
        let parent = self.inbound.borrow().parent.clone();
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
        // The next run starts a new trace linked to this one's, with this
        // run's baggage, map and client run.
        let inbound = self.inbound.borrow();
        let fresh = Context::new().with_baggage_of(&inbound.parent);
        let headers = input.headers_mut();
        headers.remove(header::TRACE_HEADER);
        header::inject(&fresh, &self.outbound_entries(), &inbound.run, headers);
        header::inject_link(&inbound.parent, headers);
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
