//! The client interceptor: a `client` span for each call that reaches a
//! workflow, and the trace plus the `custom_context` entries into its header.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::Arc;

use futures_util::future::BoxFuture;
use opentelemetry::KeyValue;
use opentelemetry::trace::{FutureExt as _, SpanKind};
use temporalio_client::errors::{
    WorkflowInteractionError, WorkflowQueryError, WorkflowStartError, WorkflowUpdateError,
    WorkflowUpdateWithStartError,
};
use temporalio_client::{
    ClientInterceptor, Next, QueryWorkflowInput, QueryWorkflowOutput, SignalWithStartWorkflowInput,
    SignalWorkflowInput, StartWorkflowInput, StartWorkflowOutput, StartWorkflowUpdateInput,
    StartWorkflowUpdateOutput, UpdateWithStartWorkflowInput, UpdateWithStartWorkflowOutput,
};
use temporalio_common::protos::temporal::api::common::v1::Header;

use crate::{header, span};

/// Starts workflows, and sends signals, queries and updates, in a span of
/// their own (`StartWorkflow:<type>`, `SignalWorkflow:<name>`, …) whose
/// context and the caller's `custom_context` travel in the call's header.
///
/// The parent is the caller's `custom_context` `traceparent` when it carries
/// one, else the current span, so a start inside a `#[traced]` task or a
/// `with_runcontext()` run continues that trace.
///
/// ```
/// let options = temporalio_client::ClientOptions::new("default")
///     .client_interceptors(flowtrace_temporal::client_interceptors())
///     .build();
/// # drop(options);
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct TracingClientInterceptor;

/// `vec![Arc::new(TracingClientInterceptor)]`, for
/// `ClientOptions::new(..).client_interceptors(..)`.
pub fn client_interceptors() -> Vec<Arc<dyn ClientInterceptor>> {
    vec![Arc::new(TracingClientInterceptor)]
}

/// The rest of the interceptor chain for one client call.
type Call<'a, I, O, E> = Next<'a, I, Reply<'a, O, E>>;
/// What a client call answers.
type Reply<'a, O, E> = BoxFuture<'a, Result<O, E>>;

/// The span and headers of one client call, then the call under the span.
fn traced_call<'a, I, O, E>(
    (name, attributes): (String, Vec<KeyValue>),
    mut input: I,
    headers: impl FnOnce(&mut I) -> Vec<&mut Option<Header>>,
    next: Call<'a, I, O, E>,
) -> Reply<'a, O, E>
where
    I: Send + 'a,
    O: Send + 'a,
    E: Debug + Send + 'a,
{
    let cx = span::start(
        &header::current_parent(),
        name,
        SpanKind::Client,
        attributes,
    );
    let entries: BTreeMap<String, String> = header::current_entries();
    let run = header::current_run();
    for header in headers(&mut input) {
        header::inject(
            &cx,
            &entries,
            &run,
            &mut header.get_or_insert_default().fields,
        );
    }
    Box::pin(async move {
        let result = next.run(input).with_context(cx.clone()).await;
        span::finish(&cx, &result);
        result
    })
}

fn with_update_id(mut attributes: Vec<KeyValue>, update_id: Option<&String>) -> Vec<KeyValue> {
    if let Some(id) = update_id {
        attributes.push(KeyValue::new(span::UPDATE_ID, id.clone()));
    }
    attributes
}

impl ClientInterceptor for TracingClientInterceptor {
    fn start_workflow<'a>(
        &'a self,
        input: StartWorkflowInput,
        next: Call<'a, StartWorkflowInput, StartWorkflowOutput, WorkflowStartError>,
    ) -> Reply<'a, StartWorkflowOutput, WorkflowStartError> {
        let name = format!("StartWorkflow:{}", input.workflow_type);
        let mut attributes = span::workflow_attributes(&input.options.workflow_id, "");
        attributes.push(KeyValue::new(
            span::TASK_QUEUE,
            input.options.task_queue.clone(),
        ));
        traced_call(
            (name, attributes),
            input,
            |i| vec![&mut i.options.header],
            next,
        )
    }

    fn signal_with_start_workflow<'a>(
        &'a self,
        input: SignalWithStartWorkflowInput,
        next: Call<'a, SignalWithStartWorkflowInput, StartWorkflowOutput, WorkflowStartError>,
    ) -> Reply<'a, StartWorkflowOutput, WorkflowStartError> {
        let name = format!("SignalWithStartWorkflow:{}", input.workflow_type);
        let attributes = span::workflow_attributes(&input.options.workflow_id, "");
        traced_call(
            (name, attributes),
            input,
            |i| vec![&mut i.options.header],
            next,
        )
    }

    fn signal_workflow<'a>(
        &'a self,
        input: SignalWorkflowInput,
        next: Call<'a, SignalWorkflowInput, (), WorkflowInteractionError>,
    ) -> Reply<'a, (), WorkflowInteractionError> {
        let name = format!("SignalWorkflow:{}", input.signal_name);
        let attributes = span::workflow_attributes(&input.workflow_id, &input.run_id);
        traced_call(
            (name, attributes),
            input,
            |i| vec![&mut i.options.header],
            next,
        )
    }

    fn query_workflow<'a>(
        &'a self,
        input: QueryWorkflowInput,
        next: Call<'a, QueryWorkflowInput, QueryWorkflowOutput, WorkflowQueryError>,
    ) -> Reply<'a, QueryWorkflowOutput, WorkflowQueryError> {
        let name = format!("QueryWorkflow:{}", input.query_name);
        let attributes = span::workflow_attributes(&input.workflow_id, &input.run_id);
        traced_call(
            (name, attributes),
            input,
            |i| vec![&mut i.options.header],
            next,
        )
    }

    fn start_workflow_update<'a>(
        &'a self,
        input: StartWorkflowUpdateInput,
        next: Call<'a, StartWorkflowUpdateInput, StartWorkflowUpdateOutput, WorkflowUpdateError>,
    ) -> Reply<'a, StartWorkflowUpdateOutput, WorkflowUpdateError> {
        let name = format!("StartWorkflowUpdate:{}", input.update_name);
        let attributes = with_update_id(
            span::workflow_attributes(&input.workflow_id, &input.run_id),
            input.options.update_id.as_ref(),
        );
        traced_call(
            (name, attributes),
            input,
            |i| vec![&mut i.options.header],
            next,
        )
    }

    fn update_with_start_workflow<'a>(
        &'a self,
        input: UpdateWithStartWorkflowInput,
        next: Call<
            'a,
            UpdateWithStartWorkflowInput,
            UpdateWithStartWorkflowOutput,
            WorkflowUpdateWithStartError,
        >,
    ) -> Reply<'a, UpdateWithStartWorkflowOutput, WorkflowUpdateWithStartError> {
        let name = format!("StartUpdateWithStartWorkflow:{}", input.workflow_type);
        let attributes = with_update_id(
            span::workflow_attributes(&input.options.workflow_id, ""),
            input.options.update_id.as_ref(),
        );
        traced_call(
            (name, attributes),
            input,
            |i| vec![&mut i.options.start_header, &mut i.options.update_header],
            next,
        )
    }
}
