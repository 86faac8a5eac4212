//! The delivery of telemetry itself, with the names of OpenTelemetry's SDK
//! self-observability conventions, observed from the span and log record
//! processors' counts at each collection:
//!
//! | instrument | unit | attributes |
//! |---|---|---|
//! | `otel.sdk.exporter.span.exported` | `{span}` | `error.type` (`export_failed`, `rejected`) on spans an exporter failed to deliver; none on delivered ones |
//! | `otel.sdk.processor.span.processed` | `{span}` | `error.type` (`queue_full`, `shutdown`) on spans the processor dropped; none on those it handed to its exporter |
//! | `otel.sdk.processor.span.queue.size` | `{span}` | — |
//!
//! | `otel.sdk.exporter.log.exported` | `{log_record}` | `error.type` (`export_failed`, `rejected`) on records an exporter failed to deliver |
//!
//! The span instruments carry `otel.component.type` =
//! `batching_span_processor`, the log one `batching_log_processor`.

use flowtrace::attributes::{ERROR_TYPE, OTEL_COMPONENT_TYPE};
use opentelemetry::KeyValue;
use opentelemetry::metrics::{MeterProvider as _, ObservableCounter, ObservableUpDownCounter};
use opentelemetry_sdk::metrics::SdkMeterProvider;

use crate::export::{Item, LogItem};
use crate::processor::Processor;
use crate::stats::ExportStats;

/// Keeps the observable instruments registered.
#[derive(Debug)]
pub(crate) struct Observed {
    _instruments: (
        ObservableCounter<u64>,
        ObservableCounter<u64>,
        ObservableUpDownCounter<i64>,
        ObservableCounter<u64>,
    ),
}

fn total<T: Item>(processors: &[Processor<T>]) -> ExportStats {
    let mut total = ExportStats::default();
    for processor in processors {
        total.add(&processor.stats());
    }
    total
}

fn attributes(error: Option<&'static str>) -> Vec<KeyValue> {
    let mut attributes = vec![KeyValue::new(
        OTEL_COMPONENT_TYPE,
        "batching_span_processor",
    )];
    if let Some(error) = error {
        attributes.push(KeyValue::new(ERROR_TYPE, error));
    }
    attributes
}

/// Registers the instruments on `provider`, reading `processors`.
pub(crate) fn observe(
    provider: &SdkMeterProvider,
    processors: Vec<Processor>,
    log_processors: Vec<Processor<LogItem>>,
) -> Observed {
    let meter = provider.meter("flowtrace-telemetry");
    let exported = {
        let processors = processors.clone();
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
        let processors = processors.clone();
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
        let processors = processors.clone();
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
    let logs = meter
        .u64_observable_counter("otel.sdk.exporter.log.exported")
        .with_unit("{log_record}")
        .with_description("Log records whose export finished, delivered or failed.")
        .with_callback(move |observer| {
            let stats = total(&log_processors);
            let component = KeyValue::new(OTEL_COMPONENT_TYPE, "batching_log_processor");
            observer.observe(stats.exported, std::slice::from_ref(&component));
            observer.observe(
                stats.dropped_export_failed,
                &[
                    component.clone(),
                    KeyValue::new(ERROR_TYPE, "export_failed"),
                ],
            );
            observer.observe(
                stats.rejected_by_collector,
                &[component, KeyValue::new(ERROR_TYPE, "rejected")],
            );
        })
        .build();
    Observed {
        _instruments: (exported, processed, queued, logs),
    }
}
