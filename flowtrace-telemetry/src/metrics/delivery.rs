//! The delivery of telemetry itself, with the names of OpenTelemetry's SDK
//! self-observability conventions, observed from the span processors'
//! counts at each collection:
//!
//! | instrument | unit | attributes |
//! |---|---|---|
//! | `otel.sdk.exporter.span.exported` | `{span}` | `error.type` (`export_failed`, `rejected`) on spans an exporter failed to deliver; none on delivered ones |
//! | `otel.sdk.processor.span.processed` | `{span}` | `error.type` (`queue_full`, `shutdown`) on spans the processor dropped; none on those it handed to its exporter |
//! | `otel.sdk.processor.span.queue.size` | `{span}` | — |
//!
//! Each carries `otel.component.type` = `batching_span_processor`.

use opentelemetry::KeyValue;
use opentelemetry::metrics::{MeterProvider as _, ObservableCounter, ObservableUpDownCounter};
use opentelemetry_sdk::metrics::SdkMeterProvider;

use crate::processor::Processor;
use crate::stats::ExportStats;

/// Keeps the observable instruments registered.
#[derive(Debug)]
pub(crate) struct Observed {
    _instruments: (
        ObservableCounter<u64>,
        ObservableCounter<u64>,
        ObservableUpDownCounter<i64>,
    ),
}

fn total(processors: &[Processor]) -> ExportStats {
    let mut total = ExportStats::default();
    for processor in processors {
        total.add(&processor.stats());
    }
    total
}

fn attributes(error: Option<&'static str>) -> Vec<KeyValue> {
    let mut attributes = vec![KeyValue::new(
        "otel.component.type",
        "batching_span_processor",
    )];
    if let Some(error) = error {
        attributes.push(KeyValue::new("error.type", error));
    }
    attributes
}

/// Registers the instruments on `provider`, reading `processors`.
pub(crate) fn observe(provider: &SdkMeterProvider, processors: &[Processor]) -> Observed {
    let meter = provider.meter("flowtrace-telemetry");
    let exported = {
        let processors = processors.to_vec();
        meter
            .u64_observable_counter("otel.sdk.exporter.span.exported")
            .with_unit("{span}")
            .with_description("Spans whose export finished, delivered or failed.")
            .with_callback(move |observer| {
                let stats = total(&processors);
                observer.observe(stats.exported, &attributes(None));
                observer.observe(
                    stats.dropped_export_failed,
                    &attributes(Some("export_failed")),
                );
                observer.observe(stats.rejected_by_collector, &attributes(Some("rejected")));
            })
            .build()
    };
    let processed = {
        let processors = processors.to_vec();
        meter
            .u64_observable_counter("otel.sdk.processor.span.processed")
            .with_unit("{span}")
            .with_description("Spans the processor handed to its exporter or dropped.")
            .with_callback(move |observer| {
                let stats = total(&processors);
                observer.observe(
                    stats.exported + stats.dropped_export_failed + stats.rejected_by_collector,
                    &attributes(None),
                );
                observer.observe(stats.dropped_queue_full, &attributes(Some("queue_full")));
                observer.observe(stats.dropped_at_shutdown, &attributes(Some("shutdown")));
            })
            .build()
    };
    let queued = {
        let processors = processors.to_vec();
        meter
            .i64_observable_up_down_counter("otel.sdk.processor.span.queue.size")
            .with_unit("{span}")
            .with_description("Spans waiting in the processors' queues.")
            .with_callback(move |observer| {
                let stats = total(&processors);
                observer.observe(stats.queued as i64, &attributes(None));
            })
            .build()
    };
    Observed {
        _instruments: (exported, processed, queued),
    }
}
