//! What the batch processor exports through: the [`Export`] trait (one
//! attempt, its [`Outcome`] deciding retry or drop), the items of each
//! signal ([`Item`]: spans, log records), and the adapters for the SDK's
//! exporter traits — flowtrace's own local exporters (file, console) and
//! any exporter an application brings ([`Sdk::foreign`]).

use std::future::Future;
use std::pin::Pin;

use opentelemetry::InstrumentationScope;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::logs::{LogBatch, LogExporter, SdkLogRecord};
use opentelemetry_sdk::trace::{SpanData, SpanExporter};

use super::retry::Outcome;

/// What one signal's processor queues.
pub(crate) trait Item: Send + 'static {
    /// The items' name in counts and errors: "spans", "log records".
    const NOUN: &'static str;
    /// Made ready for export when the worker takes it from the queue.
    fn admit(&mut self) {}
}

impl Item for SpanData {
    const NOUN: &'static str = "spans";
    /// An attribute set twice (a task's CHAIN kind, then the step's own)
    /// is exported once, with its last value.
    fn admit(&mut self) {
        flowtrace::openinference::last_value_wins(&mut self.attributes);
    }
}

/// A log record with the scope it was emitted in.
#[derive(Clone, Debug)]
pub(crate) struct LogItem {
    pub(crate) record: SdkLogRecord,
    pub(crate) scope: InstrumentationScope,
}

impl Item for LogItem {
    const NOUN: &'static str = "log records";
}

/// The SDK's view of a slice of queued log records.
pub(crate) fn log_refs(batch: &[LogItem]) -> Vec<(&SdkLogRecord, &InstrumentationScope)> {
    batch.iter().map(|i| (&i.record, &i.scope)).collect()
}

/// An exporter the processor drives. Called only on the processor's
/// thread, inside its runtime; each call is bounded by the processor.
pub(crate) trait Export<T: 'static = SpanData>: Send + 'static {
    /// One attempt at exporting `batch`.
    fn export<'a>(&'a self, batch: &'a [T]) -> Pin<Box<dyn Future<Output = Outcome> + 'a>>;
    /// Whether no outcome of an attempt is a retry, so the processor can
    /// hand the batch over ([`export_owned`](Self::export_owned)) instead of
    /// keeping it for another attempt.
    fn final_outcomes(&self) -> bool {
        false
    }
    /// The single attempt at a batch that is handed over (see
    /// [`final_outcomes`](Self::final_outcomes)): no copy of it is needed.
    fn export_owned(&self, batch: Vec<T>) -> Pin<Box<dyn Future<Output = Outcome> + '_>> {
        Box::pin(async move { self.export(&batch).await })
    }
    /// How many attempts may be under way at once (each on its own batch).
    /// One unless the exporter's transport keeps several requests in
    /// flight itself; the processor's setting bounds it further.
    fn max_in_flight(&self) -> usize {
        1
    }
    /// The provider's resource, set once before the first export.
    fn set_resource(&mut self, resource: &Resource);
    /// Writes out what the exporter itself buffers (the console's trees
    /// whose root has not ended), after a flush exported the queue.
    fn force_flush(&mut self) -> OTelSdkResult {
        Ok(())
    }
    /// Releases the exporter's resources (close the file, the connection).
    fn shutdown(&mut self) {}
}

/// How an SDK exporter's error is taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Errors {
    /// Final: a local write that failed once will fail again.
    Final,
    /// Retryable: the SDK's error type does not say why a network export
    /// failed, and an exporter that gave up after its own retries (as
    /// opentelemetry-otlp's does) may well succeed once the collector is
    /// back. The batch stays queued and is retried with backoff, within the
    /// queue size and the deadlines, as flowtrace's own OTLP exporter does.
    Retryable,
}

/// An SDK [`SpanExporter`] or [`LogExporter`] behind the processor.
#[derive(Debug)]
pub(crate) struct Sdk<E> {
    exporter: E,
    errors: Errors,
}

impl<E> Sdk<E> {
    /// flowtrace's local exporters (file, console): every error is final.
    pub(crate) fn local(exporter: E) -> Self {
        Self {
            exporter,
            errors: Errors::Final,
        }
    }

    /// An exporter the application brings (opentelemetry-otlp's, a
    /// vendor's): an error keeps the batch for a retry, except
    /// `AlreadyShutdown`.
    pub(crate) fn foreign(exporter: E) -> Self {
        Self {
            exporter,
            errors: Errors::Retryable,
        }
    }

    fn outcome(&self, result: Result<(), OTelSdkError>) -> Outcome {
        match result {
            Ok(()) => Outcome::Sent { rejected: 0 },
            Err(OTelSdkError::AlreadyShutdown) => Outcome::Failed {
                reason: "the exporter was already shut down".into(),
            },
            Err(err) if self.errors == Errors::Retryable => Outcome::Retry {
                after: None,
                reason: err.to_string(),
            },
            Err(err) => Outcome::Failed {
                reason: err.to_string(),
            },
        }
    }
}

impl<E: SpanExporter + 'static> Export for Sdk<E> {
    fn export<'a>(&'a self, batch: &'a [SpanData]) -> Pin<Box<dyn Future<Output = Outcome> + 'a>> {
        self.export_owned(batch.to_vec())
    }

    fn final_outcomes(&self) -> bool {
        self.errors == Errors::Final
    }

    fn export_owned(&self, batch: Vec<SpanData>) -> Pin<Box<dyn Future<Output = Outcome> + '_>> {
        Box::pin(async move {
            let result = self.exporter.export(batch).await;
            self.outcome(result)
        })
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.exporter.set_resource(resource);
    }

    fn force_flush(&mut self) -> OTelSdkResult {
        self.exporter.force_flush()
    }

    fn shutdown(&mut self) {
        let _ = self.exporter.shutdown();
    }
}

/// Log exporters, the same way (a newtype: a type may implement both SDK
/// traits).
#[derive(Debug)]
pub(crate) struct SdkLogs<E>(pub(crate) Sdk<E>);

impl<E: LogExporter + 'static> Export<LogItem> for SdkLogs<E> {
    fn export<'a>(&'a self, batch: &'a [LogItem]) -> Pin<Box<dyn Future<Output = Outcome> + 'a>> {
        Box::pin(async move {
            let refs = log_refs(batch);
            let result = self.0.exporter.export(LogBatch::new(&refs)).await;
            self.0.outcome(result)
        })
    }

    fn final_outcomes(&self) -> bool {
        self.0.errors == Errors::Final
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.0.exporter.set_resource(resource);
    }

    fn shutdown(&mut self) {
        let _ = self.0.exporter.shutdown();
    }
}
