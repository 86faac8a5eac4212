//! Helpers shared by the telemetry unit tests.

use std::borrow::Cow;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use opentelemetry::InstrumentationScope;
use opentelemetry::trace::{
    SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState,
};
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanLinks};

/// A finished span in trace 42 with the given span id and parent id (0 = root),
/// starting at `id` ms and lasting 10 ms.
pub(crate) fn span(name: &'static str, id: u64, parent: u64) -> SpanData {
    span_in(42, name, id, parent)
}

/// [`span`] in another trace.
pub(crate) fn span_in(trace: u128, name: &'static str, id: u64, parent: u64) -> SpanData {
    let start =
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000) + Duration::from_millis(id);
    SpanData {
        span_context: SpanContext::new(
            TraceId::from(trace),
            SpanId::from(id),
            TraceFlags::SAMPLED,
            false,
            TraceState::default(),
        ),
        parent_span_id: SpanId::from(parent),
        parent_span_is_remote: false,
        span_kind: SpanKind::Internal,
        name: Cow::Borrowed(name),
        start_time: start,
        end_time: start + Duration::from_millis(10),
        attributes: Vec::new(),
        dropped_attributes_count: 0,
        events: SpanEvents::default(),
        links: SpanLinks::default(),
        status: Status::Unset,
        instrumentation_scope: InstrumentationScope::builder("test").build(),
    }
}

/// A fresh path in the temp directory, unique per process and call.
pub(crate) fn temp_path(name: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!(
        "flowtrace-test-{}-{name}-{n}.jsonl",
        std::process::id()
    ))
}
