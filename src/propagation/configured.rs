//! Which carriers flowtrace's own injection writes: the set
//! `OTEL_PROPAGATORS` names (`tracecontext`, `baggage`, `none`), as
//! telemetry setup configures it. Every flowtrace carrier — the HTTP client
//! and `inject_headers`, the environment carrier ([`to_env`](super::to_env),
//! `CommandExt::with_trace_context`), the Temporal header — injects through
//! [`inject`](super::inject), which honours it.

use std::sync::atomic::{AtomicU8, Ordering};

const TRACE_CONTEXT: u8 = 1;
const BAGGAGE: u8 = 2;

static CONFIGURED: AtomicU8 = AtomicU8::new(TRACE_CONTEXT | BAGGAGE);

/// The propagators flowtrace injects with.
///
/// ```
/// use flowtrace::propagation::{Propagators, propagators};
///
/// let tracecontext_only = Propagators::new(true, false); // OTEL_PROPAGATORS=tracecontext
/// assert!(tracecontext_only.trace_context() && !tracecontext_only.baggage());
/// assert_eq!(propagators(), Propagators::ALL, "the default");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Propagators(u8);

impl Propagators {
    /// W3C Trace Context and W3C Baggage (the default, and
    /// `OTEL_PROPAGATORS`' default `tracecontext,baggage`).
    pub const ALL: Self = Self(TRACE_CONTEXT | BAGGAGE);
    /// Nothing is injected (`OTEL_PROPAGATORS=none`).
    pub const NONE: Self = Self(0);

    /// The set with W3C Trace Context (`traceparent` / `tracestate`) and / or
    /// W3C Baggage (`baggage`).
    ///
    /// ```
    /// use flowtrace::propagation::Propagators;
    /// assert_eq!(Propagators::new(true, true), Propagators::ALL);
    /// assert_eq!(Propagators::new(false, false), Propagators::NONE);
    /// ```
    pub const fn new(trace_context: bool, baggage: bool) -> Self {
        Self(if trace_context { TRACE_CONTEXT } else { 0 } | if baggage { BAGGAGE } else { 0 })
    }

    /// Whether `traceparent` / `tracestate` are injected.
    ///
    /// ```
    /// use flowtrace::propagation::Propagators;
    /// assert!(Propagators::ALL.trace_context());
    /// assert!(!Propagators::new(false, true).trace_context());
    /// ```
    pub const fn trace_context(self) -> bool {
        self.0 & TRACE_CONTEXT != 0
    }

    /// Whether `baggage` is injected.
    ///
    /// ```
    /// use flowtrace::propagation::Propagators;
    /// assert!(Propagators::new(false, true).baggage());
    /// assert!(!Propagators::NONE.baggage());
    /// ```
    pub const fn baggage(self) -> bool {
        self.0 & BAGGAGE != 0
    }
}

impl Default for Propagators {
    fn default() -> Self {
        Self::ALL
    }
}

/// Sets the propagators flowtrace's carriers inject with, process-wide.
/// Telemetry setup calls it with what `OTEL_PROPAGATORS` names; an
/// application installing its own provider may call it too.
///
/// ```
/// use flowtrace::propagation::{Propagators, propagators, set_propagators};
///
/// set_propagators(Propagators::new(true, false)); // OTEL_PROPAGATORS=tracecontext
/// assert!(!propagators().baggage());
/// ```
pub fn set_propagators(propagators: Propagators) {
    CONFIGURED.store(propagators.0, Ordering::Relaxed);
}

/// The propagators flowtrace's carriers inject with ([`Propagators::ALL`]
/// unless [`set_propagators`] said otherwise).
///
/// ```
/// use flowtrace::propagation::{Propagators, propagators};
///
/// assert_eq!(propagators(), Propagators::ALL);
/// assert!(propagators().trace_context() && propagators().baggage());
/// ```
pub fn propagators() -> Propagators {
    Propagators(CONFIGURED.load(Ordering::Relaxed))
}
