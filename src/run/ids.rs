//! The ids a run's spans get: a trace id derived from the run id (so a
//! resumed run continues the same trace), and a span id known before its
//! span starts (`with_span_id`).

use std::cell::Cell;

use opentelemetry::trace::{SpanId, TraceId};
use opentelemetry_sdk::trace::{IdGenerator, RandomIdGenerator};

thread_local! {
    static NEXT_TRACE_ID: Cell<Option<TraceId>> = const { Cell::new(None) };
    static NEXT_SPAN_ID: Cell<Option<SpanId>> = const { Cell::new(None) };
}

/// Runs `start` with `id` as the span id [`RunIdGenerator`] gives the first
/// span started on this thread inside it: a span id known before the span
/// starts, for code that runs again and must name the same span each time
/// (a Temporal workflow replayed from its history). Other id generators
/// ignore it; compare the started span's id to know.
///
/// ```
/// use opentelemetry::trace::{SpanId, Tracer as _, TracerProvider as _};
/// let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
///     .with_id_generator(flowtrace::RunIdGenerator::default())
///     .build();
/// let tracer = provider.tracer("demo");
/// let id = SpanId::from(0x00f0_67aa_0ba9_02b7);
/// let (first, second) = flowtrace::with_span_id(id, || (tracer.start("replayed"), tracer.start("next")));
/// use opentelemetry::trace::Span as _;
/// assert_eq!(first.span_context().span_id(), id);
/// assert_ne!(second.span_context().span_id(), id, "the first span only");
/// assert_ne!(tracer.start("after").span_context().span_id(), id);
/// ```
pub fn with_span_id<T>(id: SpanId, start: impl FnOnce() -> T) -> T {
    struct Reset(Option<SpanId>);
    impl Drop for Reset {
        fn drop(&mut self) {
            NEXT_SPAN_ID.with(|next| next.set(self.0));
        }
    }
    let _reset = Reset(NEXT_SPAN_ID.with(|next| next.replace(Some(id))));
    start()
}

/// Holds a trace id for the next root span started on this thread.
pub(crate) struct NextTraceId;

impl NextTraceId {
    pub(crate) fn set(id: TraceId) -> Self {
        NEXT_TRACE_ID.with(|next| next.set(Some(id)));
        Self
    }
}

impl Drop for NextTraceId {
    fn drop(&mut self) {
        NEXT_TRACE_ID.with(|next| next.set(None));
    }
}

/// The trace id a run id maps to (two FNV-1a hashes: stable across
/// processes and versions, never zero).
///
/// ```
/// let id = flowtrace::trace_id_for("batch-7");
/// assert_eq!(id, flowtrace::trace_id_for("batch-7"));
/// assert_ne!(id, flowtrace::trace_id_for("batch-8"));
/// assert_ne!(id, opentelemetry::trace::TraceId::INVALID);
/// ```
pub fn trace_id_for(run_id: &str) -> TraceId {
    fn fnv(seed: u64, bytes: &[u8]) -> u64 {
        bytes.iter().fold(seed, |h, b| {
            (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
        })
    }
    let hi = fnv(0xcbf2_9ce4_8422_2325, run_id.as_bytes());
    let lo = fnv(hi ^ 0x9e37_79b9_7f4a_7c15, run_id.as_bytes());
    let id = (u128::from(hi) << 64) | u128::from(lo);
    TraceId::from_bytes(id.max(1).to_be_bytes())
}

/// The SDK's random ids, except for the root span of a run with
/// [`deterministic_trace_id`](crate::RunBuilder::deterministic_trace_id), whose
/// trace id is derived from the run id.
///
/// ```
/// let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
///     .with_id_generator(flowtrace::RunIdGenerator::default())
///     .build();
/// # drop(provider);
/// ```
#[derive(Debug, Default)]
pub struct RunIdGenerator {
    random: RandomIdGenerator,
}

impl IdGenerator for RunIdGenerator {
    fn new_trace_id(&self) -> TraceId {
        NEXT_TRACE_ID
            .with(|next| next.take())
            .unwrap_or_else(|| self.random.new_trace_id())
    }

    fn new_span_id(&self) -> SpanId {
        NEXT_SPAN_ID
            .with(|next| next.take())
            .unwrap_or_else(|| self.random.new_span_id())
    }
}
