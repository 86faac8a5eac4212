//! flowtrace's task and run metrics for Temporal, from the worker's side:
//! an activity execution is a task (`flowtrace.task.*`, named by its
//! activity type, a retry counted as an attempt after the first), a
//! workflow run is a run (`flowtrace.run.*`, named by its workflow type).
//! The client's run is no run here: the activities and workflow code that
//! join it record no `flowtrace.run.*` point under its name.
//!
//! A workflow's duration is measured with its history's times
//! (`workflow_time()` at its first and its last workflow task), and it is
//! recorded only by a worker that completes it live: a replay (another
//! worker, a restart, an eviction) records nothing again, and a replay that
//! goes on to complete the run records it once, with the same duration.

use std::time::SystemTime;

use temporalio_workflow::WorkflowTermination;

/// A workflow run this worker counts in `flowtrace.run.active`; dropped
/// without [`end`](Self::end) (evicted, dropped), it leaves the count.
#[derive(Debug)]
pub(crate) struct WorkflowRun {
    workflow_type: String,
    /// Counted in `flowtrace.run.active` by this worker.
    active: bool,
    started: Option<SystemTime>,
}

impl WorkflowRun {
    /// `live`: the run's first workflow task is not a replay here.
    pub(crate) fn start(workflow_type: &str, live: bool, started: Option<SystemTime>) -> Self {
        if live {
            flowtrace::metrics::record_run(workflow_type, 1, None);
        }
        Self {
            workflow_type: workflow_type.to_owned(),
            active: live,
            started,
        }
    }

    /// The run's body returned: recorded when not replaying (`live`), with
    /// the history time it ended at.
    pub(crate) fn end<T>(
        mut self,
        result: &Result<T, WorkflowTermination>,
        live: bool,
        ended: Option<SystemTime>,
    ) {
        let status = match result {
            Ok(_) => Some("succeeded"),
            Err(WorkflowTermination::Failed(_)) => Some("failed"),
            Err(WorkflowTermination::Cancelled { .. }) => Some("cancelled"),
            Err(WorkflowTermination::ContinueAsNew(_)) => Some("continued_as_new"),
            // Leaves this worker's cache, not the run's end.
            Err(WorkflowTermination::Evicted) => None,
        };
        let duration = match (self.started, ended) {
            (Some(start), Some(end)) => end.duration_since(start).unwrap_or_default(),
            _ => Default::default(),
        };
        let ended = status.filter(|_| live).map(|status| (status, duration));
        let active = if std::mem::take(&mut self.active) {
            -1
        } else {
            0
        };
        flowtrace::metrics::record_run(&self.workflow_type, active, ended);
    }
}

impl Drop for WorkflowRun {
    fn drop(&mut self) {
        if self.active {
            flowtrace::metrics::record_run(&self.workflow_type, -1, None);
        }
    }
}

/// The outcome of an activity execution.
pub(crate) fn activity_outcome<T, E>(result: &Result<T, E>) -> flowtrace::metrics::Outcome {
    match result {
        Ok(_) => flowtrace::metrics::Outcome::Ok,
        Err(_) => flowtrace::metrics::Outcome::Error,
    }
}
