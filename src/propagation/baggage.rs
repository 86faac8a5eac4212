//! W3C Baggage.

use opentelemetry::Context;
use opentelemetry::propagation::text_map_propagator::FieldIter;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry_sdk::propagation::BaggagePropagator;

/// The W3C Baggage propagator (`baggage` header).
#[derive(Debug, Default)]
pub struct Baggage {
    inner: BaggagePropagator,
}

impl Baggage {
    /// Creates the propagator.
    pub fn new() -> Self {
        Self::default()
    }
}

impl TextMapPropagator for Baggage {
    fn inject_context(&self, cx: &Context, injector: &mut dyn Injector) {
        self.inner.inject_context(cx, injector)
    }

    fn extract_with_context(&self, cx: &Context, extractor: &dyn Extractor) -> Context {
        self.inner.extract_with_context(cx, extractor)
    }

    fn fields(&self) -> FieldIter<'_> {
        self.inner.fields()
    }
}
