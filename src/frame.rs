//! The one value a task keeps beside its OpenTelemetry `Context`.
//!
//! A task's state — its map, its run, its name — lives in a single
//! [`Frame`], kept in the task's future and made current for each poll
//! through one thread-local slot ([`current`]). The span lives in the
//! `Context` as usual, so `Context::current()` inside a task is its span.

use std::sync::{Arc, OnceLock};

use opentelemetry::trace::TraceContextExt as _;
use opentelemetry::{Context, KeyValue};

use crate::backend::Backend;
use crate::custom_context::CustomContext;
use crate::run_state::RunInfo;

pub(crate) mod current;

/// The position of a task in a `flowtrace::map` fan-out, handed to the task
/// started for it. Two words, and `Option<MapItem>` too (the index is kept
/// inverted, never zero), so a task's frame stays small.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MapItem {
    inverted_index: std::num::NonZeroUsize,
    queue_wait_nanos: u64,
}

impl MapItem {
    pub(crate) fn new(index: usize, queue_wait: std::time::Duration) -> Self {
        Self {
            // `usize::MAX` (no iterator gets there) is kept as one less.
            inverted_index: std::num::NonZeroUsize::new(!index)
                .unwrap_or(std::num::NonZeroUsize::MIN),
            queue_wait_nanos: u64::try_from(queue_wait.as_nanos()).unwrap_or(u64::MAX),
        }
    }

    pub(crate) fn index(self) -> usize {
        !self.inverted_index.get()
    }

    pub(crate) fn queue_wait(self) -> std::time::Duration {
        std::time::Duration::from_nanos(self.queue_wait_nanos)
    }
}

/// What the tasks of one scope share: the map, the run, the tracer. One
/// `Arc` per frame, so a task's frame costs one reference count.
pub(crate) struct FrameInner {
    pub(crate) map: CustomContext,
    pub(crate) run: Option<Arc<RunInfo>>,
    /// Resolved when the first task of a scope outside any run needs it.
    backend: OnceLock<Arc<Backend>>,
    /// The map's parent as the only thing in a context, built the first
    /// time a task called under it is polled elsewhere (see `carry`).
    parent_cx: OnceLock<Context>,
    /// The frame this one was made inside (a scope's task, a nested run's
    /// caller): how a task called before a scope or run wrapped it tells
    /// that wrapper from an unrelated frame (see `carry`).
    parent: Option<Arc<FrameInner>>,
}

impl FrameInner {
    pub(crate) fn new(map: CustomContext, run: Option<Arc<RunInfo>>) -> Self {
        Self {
            map,
            run,
            backend: OnceLock::new(),
            parent_cx: OnceLock::new(),
            parent: None,
        }
    }

    /// This scope's values with another map (same run and tracer), made
    /// inside this frame.
    pub(crate) fn with_map(self: &Arc<Self>, map: CustomContext) -> Self {
        Self {
            map,
            run: self.run.clone(),
            backend: self.backend.clone(),
            parent_cx: OnceLock::new(),
            parent: Some(self.clone()),
        }
    }

    /// Records the frame this one is made inside.
    pub(crate) fn with_parent(mut self, parent: Option<&Arc<FrameInner>>) -> Self {
        self.parent = parent.cloned();
        self
    }

    /// Whether this frame was made inside `ancestor` (scopes and runs
    /// nested in it), not counting `ancestor` itself.
    pub(crate) fn descends_from(&self, ancestor: &Arc<FrameInner>) -> bool {
        let mut next = self.parent.as_ref();
        while let Some(frame) = next {
            if Arc::ptr_eq(frame, ancestor) {
                return true;
            }
            next = frame.parent.as_ref();
        }
        false
    }

    pub(crate) fn with_backend(self, backend: Arc<Backend>) -> Self {
        let _ = self.backend.set(backend);
        self
    }

    pub(crate) fn backend(&self) -> &Backend {
        self.backend.get_or_init(Backend::resolve)
    }

    /// A context holding only the map's parent (a span that does not
    /// record), or an empty one when the map carries none.
    pub(crate) fn parent_cx(&self) -> Context {
        self.parent_cx
            .get_or_init(|| match self.map.span_context() {
                Some(sc) => Context::new().with_remote_span_context(sc.clone()),
                None => Context::new(),
            })
            .clone()
    }
}

/// The one value a task keeps beside its OpenTelemetry [`Context`].
#[derive(Clone)]
pub(crate) struct Frame {
    pub(crate) inner: Arc<FrameInner>,
    pub(crate) task: Option<&'static str>,
    /// Set by `flowtrace::map` for the task it starts; not inherited.
    pub(crate) item: Option<MapItem>,
}

impl Frame {
    pub(crate) fn new(inner: FrameInner) -> Self {
        Self {
            inner: Arc::new(inner),
            task: None,
            item: None,
        }
    }

    pub(crate) fn map(&self) -> &CustomContext {
        &self.inner.map
    }

    pub(crate) fn run(&self) -> Option<&RunInfo> {
        self.inner.run.as_deref()
    }

    pub(crate) fn run_attributes(&self) -> Option<[KeyValue; 2]> {
        self.run().and_then(|run| run.attributes.clone())
    }

    /// A frame outside any run, with a fresh tracer resolution.
    #[cfg(test)]
    pub(crate) fn for_task(name: &'static str) -> Self {
        Self {
            task: Some(name),
            ..Self::new(FrameInner::new(CustomContext::new(), None))
        }
    }
}
