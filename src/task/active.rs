//! A task's span for the length of the task: made current for each poll,
//! a panic recorded on it, the outcome recorded and the span and the task's
//! metrics ended at one instant on completion, panic or drop.

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::pin::Pin;
use std::sync::LazyLock;
use std::task::Poll;
use std::time::SystemTime;

use opentelemetry::trace::{SpanRef, TraceContextExt};
use opentelemetry::{Context, KeyValue};

use crate::attributes::TASK_CANCELLED;
use crate::metrics::{Outcome, TaskTimer};
use crate::run_state::RunInfo;

/// A context holding no span: what an outcome recorder sees for a task that
/// started none.
static NO_SPAN: LazyLock<Context> = LazyLock::new(Context::new);

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-string payload".to_owned()
    }
}

/// The context a task's future is polled under, and its span (if it
/// started one).
pub(crate) struct Active {
    /// `None`: the task changed nothing in the OpenTelemetry context.
    cx: Option<Context>,
    /// Whether `cx` holds a span this task started and must end.
    owns_span: bool,
    ended: bool,
    /// The task's metrics, when a meter provider is installed.
    pub(super) timer: Option<TaskTimer>,
}

impl Active {
    /// A started span's context.
    pub(crate) fn span(cx: Context) -> Self {
        Self {
            cx: Some(cx),
            owns_span: true,
            ended: false,
            timer: None,
        }
    }

    /// No span; `cx`, if any, is attached for each poll.
    pub(crate) fn without_span(cx: Option<Context>) -> Self {
        Self {
            cx,
            owns_span: false,
            ended: false,
            timer: None,
        }
    }

    /// Whether the task started a span.
    #[inline]
    pub(crate) fn owns_span(&self) -> bool {
        self.owns_span
    }

    /// Ends a task that started no span: its timer, if any, with the
    /// outcome `error` says or its executor decided.
    #[inline]
    pub(crate) fn end_unspanned(&mut self, error: bool) {
        if let Some(timer) = self.timer.take() {
            let outcome = timer.outcome(error);
            timer.end(outcome, None, None);
        }
    }

    /// The context the future runs under (the current one when `None`).
    pub(crate) fn context(&self) -> Option<&Context> {
        self.cx.as_ref()
    }

    /// The task's span, or no span.
    pub(crate) fn span_ref(&self) -> SpanRef<'_> {
        match &self.cx {
            Some(cx) if self.owns_span => cx.span(),
            _ => NO_SPAN.span(),
        }
    }

    /// Polls `future` with this context current. A panic is recorded on the
    /// span, the span ended, and the panic resumed.
    #[inline]
    pub(crate) fn poll<F: Future>(
        &mut self,
        future: Pin<&mut F>,
        task: &mut std::task::Context<'_>,
    ) -> Poll<F::Output> {
        self.call(|| future.poll(task))
    }

    /// Calls a synchronous body with this context current; a panic is
    /// recorded like in [`poll`](Self::poll).
    #[inline]
    pub(crate) fn call<T>(&mut self, body: impl FnOnce() -> T) -> T {
        let called = {
            let _guard = self.cx.clone().map(Context::attach);
            catch_unwind(AssertUnwindSafe(body))
        };
        match called {
            Ok(out) => out,
            Err(payload) => {
                crate::exception::record(&self.span_ref(), "panic", panic_message(&*payload), None);
                self.end_as(Some(Outcome::Error));
                resume_unwind(payload)
            }
        }
    }

    /// Records the outcome (the recorder says whether it was an error) and
    /// ends the span; an error counts against the run.
    pub(crate) fn finish<T, R>(
        &mut self,
        out: &T,
        record: R,
        run: Option<&RunInfo>,
        top_level: bool,
    ) where
        R: FnOnce(&T, &SpanRef<'_>) -> bool,
    {
        let error = record(out, &self.span_ref());
        if error {
            if let Some(run) = run {
                run.task_failed(top_level);
            }
        }
        let outcome = self.timer.as_ref().map(|timer| timer.outcome(error));
        self.end_as(outcome);
    }

    pub(crate) fn end(&mut self) {
        self.end_as(None);
    }

    /// Ends the span and the task's metrics (`outcome`: `ok` when `None`),
    /// at one instant.
    #[inline]
    fn end_as(&mut self, outcome: Option<Outcome>) {
        if self.timer.is_some() || (self.owns_span && !self.ended) {
            self.end_measured(outcome);
        }
    }

    fn end_measured(&mut self, outcome: Option<Outcome>) {
        let timer = self.timer.take();
        let now = timer
            .as_ref()
            .filter(|timer| timer.ends_on_wall())
            .map(|_| SystemTime::now());
        self.end_at(now);
        if let Some(timer) = timer {
            let span = self.span_ref();
            let sc = span.span_context();
            let sampled = (self.owns_span && sc.is_sampled()).then_some(sc);
            timer.end(outcome.unwrap_or(Outcome::Ok), now, sampled);
        }
    }

    /// Ends the span at `end` (now when `None`).
    pub(crate) fn end_at(&mut self, end: Option<SystemTime>) {
        if self.owns_span && !self.ended {
            self.ended = true;
            if let Some(cx) = &self.cx {
                crate::running::ended(cx);
                match end {
                    Some(end) => cx.span().end_with_timestamp(end),
                    None => cx.span().end(),
                }
            }
        }
    }
}

impl Drop for Active {
    #[inline]
    fn drop(&mut self) {
        if (self.owns_span && !self.ended) || self.timer.is_some() {
            self.cancelled();
        }
    }
}

impl Active {
    /// Dropped before it ended: the span (if any) and the metrics end as
    /// cancelled.
    #[cold]
    fn cancelled(&mut self) {
        if self.owns_span && !self.ended {
            let span = self.span_ref();
            if span.is_recording() {
                span.set_attribute(KeyValue::new(TASK_CANCELLED, true));
            }
        }
        self.end_as(Some(Outcome::Cancelled));
    }
}
