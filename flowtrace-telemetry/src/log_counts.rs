//! Log record counts per exporter, for the shutdown line and
//! [`Telemetry::log_stats`](super::Telemetry::log_stats): records handed to
//! the exporter's batch processor, records its exporter delivered, and
//! records in batches whose export failed. What was handed over but never
//! reached the exporter (the SDK's batch processor dropped it when its queue
//! was full, or shutdown ran out of time) is the rest.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use opentelemetry::InstrumentationScope;
use opentelemetry::logs::Severity;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::logs::{LogBatch, LogExporter, LogProcessor, SdkLogRecord};

use super::stats::{Counters, ExportStats};

/// The counts of one log exporter.
#[derive(Debug, Default)]
pub(crate) struct LogCounts {
    received: AtomicU64,
    counters: Counters,
    shut_down: AtomicBool,
}

impl LogCounts {
    pub(crate) fn stats(&self) -> ExportStats {
        let mut stats = self.counters.snapshot(0);
        let received = self.received.load(Ordering::Relaxed);
        let rest = received.saturating_sub(stats.exported + stats.dropped_export_failed);
        if self.shut_down.load(Ordering::Acquire) {
            stats.dropped_at_shutdown = rest;
        } else {
            stats.queued = rest;
        }
        stats
    }
}

/// A log processor counting what it is handed, in front of `P`.
#[derive(Debug)]
pub(crate) struct CountedProcessor<P> {
    inner: P,
    counts: Arc<LogCounts>,
}

impl<P> CountedProcessor<P> {
    pub(crate) fn new(inner: P, counts: Arc<LogCounts>) -> Self {
        Self { inner, counts }
    }
}

impl<P: LogProcessor> LogProcessor for CountedProcessor<P> {
    fn emit(&self, data: &mut SdkLogRecord, instrumentation: &InstrumentationScope) {
        if !self.counts.shut_down.load(Ordering::Acquire) {
            self.counts.received.fetch_add(1, Ordering::Relaxed);
        }
        self.inner.emit(data, instrumentation);
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        let result = self.inner.shutdown_with_timeout(timeout);
        self.counts.shut_down.store(true, Ordering::Release);
        result
    }

    fn event_enabled(&self, level: Severity, target: &str, name: Option<&str>) -> bool {
        self.inner.event_enabled(level, target, name)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

/// A log exporter counting what it delivered and what failed.
#[derive(Debug)]
pub(crate) struct CountedExporter<E> {
    inner: E,
    counts: Arc<LogCounts>,
}

impl<E> CountedExporter<E> {
    pub(crate) fn new(inner: E, counts: Arc<LogCounts>) -> Self {
        Self { inner, counts }
    }
}

impl<E: LogExporter> LogExporter for CountedExporter<E> {
    async fn export(&self, batch: LogBatch<'_>) -> OTelSdkResult {
        let n = batch.iter().count() as u64;
        let result = self.inner.export(batch).await;
        let counters = &self.counts.counters;
        match &result {
            Ok(()) => counters.exported.fetch_add(n, Ordering::Relaxed),
            Err(err) => {
                counters.set_error(err.to_string());
                counters
                    .dropped_export_failed
                    .fetch_add(n, Ordering::Relaxed)
            }
        };
        result
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn event_enabled(&self, level: Severity, target: &str, name: Option<&str>) -> bool {
        self.inner.event_enabled(level, target, name)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::logs::{LogRecord as _, Logger as _, LoggerProvider as _};
    use opentelemetry_sdk::error::OTelSdkError;
    use opentelemetry_sdk::logs::{SdkLoggerProvider, SimpleLogProcessor};

    #[derive(Debug)]
    struct Failing;

    impl LogExporter for Failing {
        async fn export(&self, _batch: LogBatch<'_>) -> OTelSdkResult {
            Err(OTelSdkError::InternalFailure("collector down".into()))
        }
    }

    #[test]
    fn failed_exports_are_counted_with_their_error() {
        let counts = Arc::new(LogCounts::default());
        let exporter = CountedExporter::new(Failing, counts.clone());
        let processor = CountedProcessor::new(SimpleLogProcessor::new(exporter), counts.clone());
        let provider = SdkLoggerProvider::builder()
            .with_log_processor(processor)
            .build();
        let logger = provider.logger("test");
        for _ in 0..3 {
            let mut record = logger.create_log_record();
            record.set_body("x".into());
            logger.emit(record);
        }
        let _ = provider.shutdown();
        let stats = counts.stats();
        assert_eq!(stats.exported, 0);
        assert_eq!(stats.dropped_export_failed, 3);
        assert_eq!(stats.dropped(), 3);
        assert!(stats.last_error.unwrap().contains("collector down"));
    }
}
