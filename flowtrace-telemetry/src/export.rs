//! What the batch processor exports through: the [`Export`] trait (one
//! attempt, its [`Outcome`] deciding retry or drop) and the adapter for the
//! SDK's own exporters (file, console).

use std::future::Future;
use std::pin::Pin;

use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SpanData, SpanExporter};

use super::retry::Outcome;

/// An exporter the processor drives. Called only on the processor's
/// thread, inside its runtime; each call is bounded by the processor.
pub(crate) trait Export: Send + 'static {
    /// One attempt at exporting `batch`.
    fn export<'a>(&'a self, batch: &'a [SpanData]) -> Pin<Box<dyn Future<Output = Outcome> + 'a>>;
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

/// Any SDK [`SpanExporter`] (the file and console exporters): every error is
/// final, as a local write that failed once will fail again.
#[derive(Debug)]
pub(crate) struct Sdk<E>(pub(crate) E);

impl<E: SpanExporter + 'static> Export for Sdk<E> {
    fn export<'a>(&'a self, batch: &'a [SpanData]) -> Pin<Box<dyn Future<Output = Outcome> + 'a>> {
        Box::pin(async move {
            match self.0.export(batch.to_vec()).await {
                Ok(()) => Outcome::Sent { rejected: 0 },
                Err(err) => Outcome::Failed {
                    reason: err.to_string(),
                },
            }
        })
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.0.set_resource(resource);
    }

    fn force_flush(&mut self) -> OTelSdkResult {
        self.0.force_flush()
    }

    fn shutdown(&mut self) {
        let _ = self.0.shutdown();
    }
}
