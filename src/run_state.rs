//! A run's state, shared by every task of it: its identity and tallies
//! ([`RunInfo`]), its parameters and its single trace-level event. The hot
//! path reads it through [`on_task_start`] only, which costs one atomic
//! load when the run has no parameters.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use opentelemetry::KeyValue;
use opentelemetry::trace::SpanRef;

pub(crate) mod params;

use params::{Params, RunParams};

use crate::attributes::{RUN_ID, RUN_NAME};

/// Identity and tallies of a run, shared by every task of it.
#[derive(Debug, Default)]
pub(crate) struct RunInfo {
    pub(crate) id: String,
    pub(crate) name: String,
    /// `flowtrace.run.id` / `.name`, built once: cloning them per span is
    /// two reference-count increments, not two string copies.
    pub(crate) attributes: Option<[KeyValue; 2]>,
    /// Tasks started in the run.
    pub(crate) tasks: AtomicU64,
    /// Tasks that ended with an error.
    pub(crate) errors: AtomicU64,
    /// A task called directly by the run failed.
    pub(crate) failed: AtomicBool,
    /// Outputs of the checkpoint this run resumes (see `cache`).
    pub(crate) resumed: BTreeMap<String, serde_json::Value>,
    /// Outputs of this run's cached tasks.
    pub(crate) checkpoint: Mutex<BTreeMap<String, serde_json::Value>>,
    /// Parameters and the trace-level event (`params`, `event::trace`).
    pub(crate) annotations: RunAnnotations,
}

impl RunInfo {
    pub(crate) fn new(id: String, name: String) -> Self {
        let attributes = [
            KeyValue::new(
                RUN_ID,
                opentelemetry::StringValue::from(Arc::<str>::from(id.as_str())),
            ),
            KeyValue::new(
                RUN_NAME,
                opentelemetry::StringValue::from(Arc::<str>::from(name.as_str())),
            ),
        ];
        Self {
            id,
            name,
            attributes: Some(attributes),
            ..Self::default()
        }
    }

    /// The run id as the shared value its attribute holds (no copy).
    pub(crate) fn id_value(&self) -> Option<opentelemetry::StringValue> {
        match &self.attributes.as_ref()?[0].value {
            opentelemetry::Value::String(id) => Some(id.clone()),
            _ => None,
        }
    }

    pub(crate) fn record(&self, key: &str, json: serde_json::Value) {
        let mut checkpoint = self.checkpoint.lock().unwrap_or_else(|e| e.into_inner());
        checkpoint.insert(key.to_owned(), json);
    }

    pub(crate) fn task_failed(&self, top_level: bool) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        if top_level {
            self.failed.store(true, Ordering::Relaxed);
        }
    }
}
/// The parameters of one run and its trace-level event.
#[derive(Debug, Default)]
pub(crate) struct RunAnnotations {
    /// The run's parameters (see `params`).
    pub(crate) params: RunParams,
    /// `flowtrace.trace.*` attributes from `event::trace`, set on the root
    /// span when the run ends.
    trace_event: Mutex<Option<Vec<KeyValue>>>,
    /// Whether the run opened a root span (not when it continues a remote
    /// parent).
    root: AtomicBool,
}

impl RunAnnotations {
    /// The process-wide parameters (telemetry init, registered outside a
    /// run) with `initial` (the run builder's) over them.
    pub(crate) fn new(initial: Params) -> Self {
        Self {
            params: RunParams::new(initial),
            ..Self::default()
        }
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
    if run.annotations.params.any() {
        attributes.extend(run.annotations.params.attributes().iter().cloned());
    }
}

/// Records the run's final parameters and its trace-level event on the run's
/// root span, just before it ends.
pub(crate) fn on_run_end(run: &RunInfo, root: &SpanRef<'_>) {
    if !root.is_recording() {
        return;
    }
    let annotations = &run.annotations;
    if annotations.params.any() {
        root.set_attributes(annotations.params.attributes().iter().cloned());
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
