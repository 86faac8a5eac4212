//! Per-run sampling decisions: a run forced to be sampled, or not, whatever
//! the configured sampler's ratio
//! ([`RunBuilder::sampled`](crate::RunBuilder::sampled)).
//!
//! The decision travels with the run's span context, so it reaches
//! everything that continues the run:
//!
//! - **in the process**, every span started under the run's context
//!   (tasks, `flowtrace::spawn`, `#[instrument]` spans, other libraries'
//!   spans on the global tracer) finds it there;
//! - **across processes and into Temporal workers**, it rides in the W3C
//!   `tracestate` as the entry `flowtrace=s:1` (sampled) or `flowtrace=s:0`
//!   (not sampled), next to the matching `sampled` flag of the
//!   `traceparent`, wherever the carrier goes (`TRACEPARENT`/`TRACESTATE`
//!   for a child process, the Temporal headers, HTTP headers);
//! - **on resume**, a [`Checkpoint`](crate::Checkpoint) keeps the first
//!   attempt's `traceparent`, and a run resumed from it takes that
//!   attempt's decision unless it is given one.
//!
//! flowtrace-telemetry's sampler asks [`forced_decision`] first and applies
//! `OTEL_TRACES_SAMPLER` only to spans with no forced decision. A sampler
//! built by hand can do the same by calling [`forced_decision`] on the
//! parent context; a parent-based sampler of any SDK already follows the
//! `sampled` flag of a forced parent from another process.

use opentelemetry::Context;
use opentelemetry::trace::{SpanContext, TraceContextExt as _, TraceFlags, TraceState};

/// The `tracestate` key carrying a forced decision.
pub const TRACESTATE_KEY: &str = "flowtrace";

/// A forced decision, in the context a run's root span starts under.
/// Made only by [`Forced::new`], so a context can be known to hold none
/// without looking ([`Forced::in_context`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Forced(bool);

/// Whether a [`Forced`] was ever made in this process.
static ANY_FORCED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

impl Forced {
    pub(crate) fn new(decided: bool) -> Self {
        ANY_FORCED.store(true, std::sync::atomic::Ordering::Relaxed);
        Self(decided)
    }

    /// Whether `cx` holds a forced decision; one atomic read until a run
    /// forces one.
    #[inline]
    pub(crate) fn in_context(cx: &Context) -> bool {
        ANY_FORCED.load(std::sync::atomic::Ordering::Relaxed) && cx.get::<Self>().is_some()
    }
}

/// The decision forced on spans started under `parent`: `Some(true)`
/// sampled, `Some(false)` dropped, `None` when the sampler decides.
///
/// ```
/// let cx = opentelemetry::Context::new();
/// assert_eq!(flowtrace::sampling::forced_decision(&cx), None);
/// ```
pub fn forced_decision(parent: &Context) -> Option<bool> {
    if let Some(Forced(decided)) = parent.get::<Forced>() {
        return Some(*decided);
    }
    let span = parent.span();
    decision_in(span.span_context().trace_state())
}

fn decision_in(state: &TraceState) -> Option<bool> {
    match state.get(TRACESTATE_KEY) {
        Some("s:1") => Some(true),
        Some("s:0") => Some(false),
        _ => None,
    }
}

/// `state` with the entry for `decided` in front (the W3C rule for an
/// updated entry).
///
/// ```
/// use opentelemetry::trace::TraceState;
/// use flowtrace::sampling::{TRACESTATE_KEY, trace_state};
///
/// let vendor = TraceState::from_key_value([("vendor", "x")]).unwrap();
/// let forced = trace_state(&vendor, true);
/// assert_eq!(forced.header(), "flowtrace=s:1,vendor=x");
/// assert_eq!(forced.get(TRACESTATE_KEY), Some("s:1"));
/// ```
pub fn trace_state(state: &TraceState, decided: bool) -> TraceState {
    let value = if decided { "s:1" } else { "s:0" };
    state
        .insert(TRACESTATE_KEY, value)
        .unwrap_or_else(|_| state.clone())
}

/// A carried parent with its sampled flag and `tracestate` set to `decided`.
pub(crate) fn force(sc: &SpanContext, decided: bool) -> SpanContext {
    SpanContext::new(
        sc.trace_id(),
        sc.span_id(),
        sc.trace_flags().with_sampled(decided),
        sc.is_remote(),
        trace_state(sc.trace_state(), decided),
    )
}

/// The decision a `traceparent` records (its `sampled` flag).
pub(crate) fn decision_of(traceparent: &str) -> Option<bool> {
    crate::propagation::parse_traceparent(traceparent)
        .ok()
        .map(|sc| sc.trace_flags() & TraceFlags::SAMPLED == TraceFlags::SAMPLED)
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::{SpanId, TraceId};

    #[test]
    fn the_decision_rides_in_the_tracestate() {
        let sc = SpanContext::new(
            TraceId::from(7),
            SpanId::from(9),
            TraceFlags::default(),
            true,
            TraceState::from_key_value([("vendor", "x")]).unwrap(),
        );
        let forced = force(&sc, true);
        assert!(forced.is_sampled());
        assert_eq!(forced.trace_state().header(), "flowtrace=s:1,vendor=x");
        let cx = Context::new().with_remote_span_context(forced.clone());
        assert_eq!(forced_decision(&cx), Some(true));
        let dropped = force(&forced, false);
        assert!(!dropped.is_sampled());
        assert_eq!(dropped.trace_state().header(), "flowtrace=s:0,vendor=x");
        assert_eq!(
            forced_decision(&Context::new().with_value(Forced::new(false))),
            Some(false)
        );
    }
}
