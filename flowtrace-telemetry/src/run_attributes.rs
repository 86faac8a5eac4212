//! Puts `flowtrace.run.id` / `flowtrace.run.name` on every span started under
//! a run, including spans flowtrace did not start itself (`#[instrument]`
//! spans, spans of other libraries using the global tracer).
//!
//! Done as a wrapper around the configured sampler rather than as a span
//! processor's `on_start`: the sampler is handed the span's initial
//! attributes as a slice, so "does it already carry `flowtrace.run.id`?" is a
//! scan of a few keys, and attributes it returns are appended by the SDK when
//! the span is recorded. A processor only gets the finished `Span`, whose
//! attributes can be read only by cloning all of its data — on every span,
//! which the cost budget does not allow.

use opentelemetry::trace::{Link, SpanKind, TraceContextExt as _, TraceId};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::trace::{Sampler, SamplingDecision, SamplingResult, ShouldSample};

use flowtrace::attributes::RUN_ID;
use flowtrace::run_attributes;

/// The configured sampler plus the run attributes; see the module docs.
#[derive(Clone, Debug)]
pub(crate) struct RunAttributes {
    inner: Sampler,
}

impl RunAttributes {
    pub(crate) fn new(inner: Sampler) -> Self {
        Self { inner }
    }
}

impl ShouldSample for RunAttributes {
    fn should_sample(
        &self,
        parent_context: Option<&Context>,
        trace_id: TraceId,
        name: &str,
        span_kind: &SpanKind,
        attributes: &[KeyValue],
        links: &[Link],
    ) -> SamplingResult {
        let forced = match parent_context {
            Some(parent) => flowtrace::sampling::forced_decision(parent),
            None => Context::map_current(flowtrace::sampling::forced_decision),
        };
        let mut result = match forced {
            // A run forced sampled or not: the configured sampler is not asked.
            Some(decided) => {
                let state = parent_context
                    .map(|cx| cx.span().span_context().trace_state().clone())
                    .unwrap_or_default();
                SamplingResult {
                    decision: if decided {
                        SamplingDecision::RecordAndSample
                    } else {
                        SamplingDecision::Drop
                    },
                    attributes: Vec::new(),
                    trace_state: flowtrace::sampling::trace_state(&state, decided),
                }
            }
            None => self.inner.should_sample(
                parent_context,
                trace_id,
                name,
                span_kind,
                attributes,
                links,
            ),
        };
        // Nothing to add to a span that will not be recorded, or that
        // flowtrace (or the user) already labelled.
        if matches!(result.decision, SamplingDecision::Drop)
            || attributes.iter().any(|kv| kv.key.as_str() == RUN_ID)
            || result.attributes.iter().any(|kv| kv.key.as_str() == RUN_ID)
        {
            return result;
        }
        let run = match parent_context {
            Some(parent) => run_attributes(parent),
            None => Context::map_current(run_attributes),
        };
        if let Some(run) = run {
            result.attributes.extend(run);
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flowtrace::attributes::RUN_NAME;
    use opentelemetry::trace::{Tracer, TracerProvider as _};
    use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};

    fn provider(sampler: Sampler) -> (SdkTracerProvider, InMemorySpanExporter) {
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder()
            .with_sampler(RunAttributes::new(sampler))
            .with_simple_exporter(exporter.clone())
            .build();
        (provider, exporter)
    }

    fn values(span: &SpanData, key: &str) -> Vec<String> {
        span.attributes
            .iter()
            .filter(|kv| kv.key.as_str() == key)
            .map(|kv| kv.value.to_string())
            .collect()
    }

    #[tokio::test]
    async fn spans_under_a_run_get_the_run_attributes_once() {
        let (provider, exporter) = provider(Sampler::AlwaysOn);
        let tracer = provider.tracer("other-library");
        let run = flowtrace::with_runcontext()
            .name("nightly")
            .run(async {
                tracer.in_span("plain", |_| {});
                tracer
                    .span_builder("labelled")
                    .with_attributes([KeyValue::new(RUN_ID, "given")])
                    .start(&tracer);
            })
            .await;
        tracer.in_span("outside", |_| {});
        let spans = exporter.get_finished_spans().unwrap();
        let by_name = |name: &str| spans.iter().find(|s| s.name == name).unwrap();

        assert_eq!(
            values(by_name("plain"), RUN_ID),
            [run.run_id()],
            "a span started inside the run carries its id, once"
        );
        assert_eq!(
            values(by_name("plain"), RUN_NAME),
            ["nightly"],
            "and its name"
        );
        assert_eq!(
            values(by_name("labelled"), RUN_ID),
            ["given"],
            "a span that already carries flowtrace.run.id is left alone"
        );
        assert!(
            values(by_name("outside"), RUN_ID).is_empty(),
            "no run, no attributes"
        );
    }

    #[tokio::test]
    async fn the_inner_sampler_still_decides() {
        let (provider, exporter) = provider(Sampler::AlwaysOff);
        let tracer = provider.tracer("t");
        flowtrace::with_runcontext()
            .run(async { tracer.in_span("dropped", |_| {}) })
            .await;
        assert!(
            exporter.get_finished_spans().unwrap().is_empty(),
            "AlwaysOff drops"
        );
    }
}
