//! What a run carries besides its identity: the parameters registered for it
//! and its single trace-level event. One value in `RunInfo`, read by the hot
//! path through [`on_task_start`] only, which costs one atomic load when the
//! run has no parameters.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use opentelemetry::KeyValue;
use opentelemetry::trace::SpanRef;

use crate::context::RunInfo;
use crate::params::{self, Params};

/// The parameters of one run and its trace-level event.
#[derive(Debug, Default)]
pub(crate) struct RunAnnotations {
    /// Whether any parameter is set: the hot path's only check.
    any: AtomicBool,
    params: RwLock<ParamState>,
    /// `flowtrace.trace.*` attributes from `event::trace`, set on the root
    /// span when the run ends.
    trace_event: Mutex<Option<Vec<KeyValue>>>,
    /// Whether the run opened a root span (not when it continues a remote
    /// parent).
    root: AtomicBool,
}

#[derive(Debug, Default)]
struct ParamState {
    values: Params,
    /// `flowtrace.param.<key>` attributes, redacted and capped, with shared
    /// strings: copying them onto a span is reference-count increments.
    attributes: Arc<[KeyValue]>,
}

impl RunAnnotations {
    /// The process-wide parameters (telemetry init, registered outside a
    /// run) with `initial` (the run builder's) over them.
    pub(crate) fn new(initial: Params) -> Self {
        let mut values = params::process_params();
        values.extend(initial);
        let out = Self::default();
        out.replace(values);
        out
    }

    pub(crate) fn params(&self) -> Params {
        self.read().values.clone()
    }

    pub(crate) fn attributes(&self) -> Arc<[KeyValue]> {
        self.read().attributes.clone()
    }

    /// Applies `change` to the parameters and rebuilds their attributes.
    pub(crate) fn update<T>(&self, change: impl FnOnce(&mut Params) -> T) -> T {
        let mut state = self.params.write().unwrap_or_else(|e| e.into_inner());
        let out = change(&mut state.values);
        state.attributes = params::attributes(&state.values).into();
        self.any.store(!state.values.is_empty(), Ordering::Release);
        out
    }

    fn replace(&self, values: Params) {
        self.update(|current| *current = values);
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, ParamState> {
        self.params.read().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn set_root(&self, root: bool) {
        self.root.store(root, Ordering::Release);
    }

    /// Whether the run has a root span of its own.
    pub(crate) fn has_root(&self) -> bool {
        self.root.load(Ordering::Acquire)
    }

    pub(crate) fn set_trace_event(&self, attributes: Vec<KeyValue>) {
        *self.trace_event.lock().unwrap_or_else(|e| e.into_inner()) = Some(attributes);
    }
}

/// Adds the run's parameters to the attributes of a task span about to
/// start (hot path: nothing but an atomic load without parameters; the
/// caller builds attributes only for a span that may record).
#[inline]
pub(crate) fn on_task_start(run: &RunInfo, attributes: &mut Vec<KeyValue>) {
    if run.annotations.any.load(Ordering::Acquire) {
        attributes.extend(run.annotations.attributes().iter().cloned());
    }
}

/// Records the run's final parameters and its trace-level event on the run's
/// root span, just before it ends.
pub(crate) fn on_run_end(run: &RunInfo, root: &SpanRef<'_>) {
    if !root.is_recording() {
        return;
    }
    let annotations = &run.annotations;
    if annotations.any.load(Ordering::Acquire) {
        root.set_attributes(annotations.attributes().iter().cloned());
    }
    let event = annotations
        .trace_event
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take();
    if let Some(attributes) = event {
        root.set_attributes(attributes);
    }
}
