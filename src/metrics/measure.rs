//! Metrics for tasks and runs that run elsewhere than under `#[traced]` and
//! `with_runcontext` (a Temporal activity or workflow, a job of another
//! scheduler): [`measure_task`] and [`record_run`].

use std::sync::Mutex;
use std::sync::atomic::Ordering;
use std::time::SystemTime;

use opentelemetry::KeyValue;
use opentelemetry::trace::SpanContext;

use super::{GENERATION, Outcome, TaskTimer, bound_for, installed};
use crate::attributes::{RUN_NAME, RUN_STATUS};

/// Task names measured by [`measure_task`], each kept once for the process.
fn intern(name: &str) -> &'static str {
    static NAMES: Mutex<Vec<&'static str>> = Mutex::new(Vec::new());
    let Ok(mut names) = NAMES.lock() else {
        return "unknown";
    };
    if let Some(known) = names.iter().find(|known| **known == name) {
        return known;
    }
    let leaked: &'static str = Box::leak(name.to_owned().into_boxed_str());
    names.push(leaked);
    leaked
}

/// A task measured by code that runs it without `#[traced]` (a Temporal
/// activity, a job of another scheduler): the same instruments as a
/// `#[traced]` task. End it with [`end`](Self::end); dropped without, it
/// counts as `cancelled`. Measuring nothing when no meter provider is
/// installed.
///
/// ```
/// use flowtrace::metrics::{Outcome, measure_task};
///
/// let measured = measure_task("resize_image", 1);
/// // ... run the job ...
/// measured.end(Outcome::Ok, None);
/// ```
#[must_use = "a measurement dropped at once counts as a cancelled task"]
pub struct TaskMeasurement {
    timer: Option<TaskTimer>,
}

/// Starts measuring one execution of task `name`; `attempt` is 1 for the
/// first, more for a retry (counted with [`TASK_RETRY`](crate::attributes::TASK_RETRY) `true`).
///
/// ```
/// use flowtrace::metrics::{Outcome, measure_task};
///
/// for attempt in 1..=2 {
///     let measured = measure_task("upload", attempt); // the second counts as a retry
///     measured.end(if attempt == 1 { Outcome::Error } else { Outcome::Ok }, None);
/// }
/// ```
pub fn measure_task(name: &str, attempt: u32) -> TaskMeasurement {
    let generation = GENERATION.load(Ordering::Relaxed);
    if generation == 0 {
        return TaskMeasurement { timer: None };
    }
    let timer = bound_for(intern(name), generation).map(|bound| {
        bound.started.fetch_add(1, Ordering::Relaxed);
        TaskTimer::on_wall(bound, attempt > 1)
    });
    TaskMeasurement { timer }
}

impl TaskMeasurement {
    /// Records the end with `outcome`; `span`: the task's span, whose
    /// context becomes the exemplar when it is sampled.
    ///
    /// ```
    /// use flowtrace::metrics::{Outcome, measure_task};
    /// use opentelemetry::trace::SpanContext;
    ///
    /// let measured = measure_task("resize_image", 1);
    /// // An invalid (unsampled) span context keeps no exemplar.
    /// measured.end(Outcome::Ok, Some(&SpanContext::empty_context()));
    /// ```
    pub fn end(mut self, outcome: Outcome, span: Option<&SpanContext>) {
        if let Some(timer) = self.timer.take() {
            timer.end(
                outcome,
                Some(SystemTime::now()),
                span.filter(|sc| sc.is_sampled()),
            );
        }
    }
}

impl Drop for TaskMeasurement {
    fn drop(&mut self) {
        if let Some(timer) = self.timer.take() {
            timer.end(Outcome::Cancelled, Some(SystemTime::now()), None);
        }
    }
}

impl std::fmt::Debug for TaskMeasurement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskMeasurement")
            .field("measuring", &self.timer.is_some())
            .finish()
    }
}

/// Records a run that ran elsewhere than in [`with_runcontext`](crate::with_runcontext)
/// (a Temporal workflow, measured with its history's times): `active` adds
/// it to (`1`) or removes it from (`-1`) [`RUN_ACTIVE`](super::RUN_ACTIVE) (`0`: neither);
/// `ended`: its status (`succeeded`, `failed`, `cancelled`) and duration.
///
/// ```
/// use std::time::Duration;
///
/// flowtrace::metrics::record_run("nightly_import", 1, None);
/// flowtrace::metrics::record_run("nightly_import", -1, Some(("succeeded", Duration::from_secs(3))));
/// ```
pub fn record_run(name: &str, active: i64, ended: Option<(&'static str, std::time::Duration)>) {
    if GENERATION.load(Ordering::Relaxed) == 0 {
        return;
    }
    let Some(installed) = installed() else {
        return;
    };
    let name = KeyValue::new(RUN_NAME, name.to_owned());
    if active != 0 {
        installed
            .run_active
            .add(active, std::slice::from_ref(&name));
    }
    if let Some((status, duration)) = ended {
        installed.run_duration.record(
            duration.as_secs_f64(),
            &[name, KeyValue::new(RUN_STATUS, status)],
        );
    }
}
