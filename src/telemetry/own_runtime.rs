//! An exporter wrapper that owns a small tokio runtime.
//!
//! The SDK's `BatchSpanProcessor` (0.33) exports on its own thread with
//! `futures_executor::block_on`, but tonic and reqwest need a tokio reactor.
//! Borrowing the application's runtime would tie shutdown to it: a guard
//! dropped on the main thread of a `current_thread` runtime would wait for an
//! export that can only progress on that same, now blocked, thread. So the
//! OTLP exporter gets its own single-threaded runtime, driven only while one
//! of its calls is running, and every call is bounded by the export timeout.

use std::time::Duration;

use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{SpanData, SpanExporter};
use tokio::runtime::{Builder, Runtime};

/// `E` with a runtime of its own; see the module docs.
#[derive(Debug)]
pub(crate) struct OwnRuntime<E> {
    /// Both are `Option` only so `Drop` can drop the exporter inside the
    /// runtime context and then shut the runtime down without blocking.
    inner: Option<E>,
    runtime: Option<Runtime>,
    timeout: Duration,
}

impl<E: SpanExporter> OwnRuntime<E> {
    /// Builds the runtime, then the exporter inside it (tonic spawns its
    /// connection task at build time, onto whatever runtime is current).
    pub(crate) fn build<Err>(
        timeout: Duration,
        make: impl FnOnce() -> Result<E, Err>,
    ) -> Result<Self, String>
    where
        Err: std::fmt::Display,
    {
        let runtime = Builder::new_current_thread()
            .enable_all()
            .thread_name("flowtrace-export")
            .build()
            .map_err(|e| format!("cannot start the exporter's runtime: {e}"))?;
        let inner = {
            let _entered = runtime.enter();
            make().map_err(|e| e.to_string())?
        };
        Ok(Self {
            inner: Some(inner),
            runtime: Some(runtime),
            timeout,
        })
    }

    fn parts(&self) -> Result<(&E, &Runtime), OTelSdkError> {
        match (&self.inner, &self.runtime) {
            (Some(inner), Some(runtime)) => Ok((inner, runtime)),
            _ => Err(OTelSdkError::AlreadyShutdown),
        }
    }
}

/// Runs `future` on `runtime` and blocks until it finishes.
///
/// `block_on` panics when called from inside another runtime; the batch
/// processor's thread never is, but if some caller is (a simple processor on
/// an async task), the call moves to a scoped helper thread instead.
fn block_on<F>(runtime: &Runtime, future: F) -> Result<F::Output, OTelSdkError>
where
    F: std::future::Future + Send,
    F::Output: Send,
{
    if tokio::runtime::Handle::try_current().is_err() {
        return Ok(runtime.block_on(future));
    }
    std::thread::scope(|scope| {
        scope
            .spawn(|| runtime.block_on(future))
            .join()
            .map_err(|_| OTelSdkError::InternalFailure("exporter thread panicked".into()))
    })
}

impl<E: SpanExporter> SpanExporter for OwnRuntime<E> {
    fn export(
        &self,
        batch: Vec<SpanData>,
    ) -> impl std::future::Future<Output = OTelSdkResult> + Send {
        let timeout = self.timeout;
        // The work happens here, synchronously, and a ready future is handed
        // back: the batch processor would block on it straight away anyway.
        let result = self.parts().and_then(|(inner, runtime)| {
            // Created inside the async block: tokio's timer must be made
            // within the runtime's context.
            let bounded = async move { tokio::time::timeout(timeout, inner.export(batch)).await };
            match block_on(runtime, bounded)? {
                Ok(result) => result,
                Err(_elapsed) => Err(OTelSdkError::Timeout(timeout)),
            }
        });
        std::future::ready(result)
    }

    fn force_flush(&self) -> OTelSdkResult {
        let (inner, runtime) = self.parts()?;
        block_on(runtime, async { inner.force_flush() })?
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        let (inner, runtime) = self.parts()?;
        block_on(runtime, async { inner.shutdown_with_timeout(timeout) })?
    }

    fn set_resource(&mut self, resource: &Resource) {
        if let Some(inner) = &mut self.inner {
            inner.set_resource(resource);
        }
    }
}

impl<E> Drop for OwnRuntime<E> {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            {
                let _entered = runtime.enter();
                self.inner.take();
            }
            // Never blocks, and is allowed even inside another runtime.
            runtime.shutdown_background();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::test_util::span;
    use std::time::Instant;

    /// An exporter that needs a tokio reactor (it sleeps on tokio's timer)
    /// and can be made to hang.
    #[derive(Debug)]
    struct NeedsTokio {
        delay: Duration,
    }

    impl SpanExporter for NeedsTokio {
        async fn export(&self, _batch: Vec<SpanData>) -> OTelSdkResult {
            tokio::time::sleep(self.delay).await;
            Ok(())
        }
    }

    fn wrapped(delay: Duration, timeout: Duration) -> OwnRuntime<NeedsTokio> {
        OwnRuntime::build(timeout, || Ok::<_, String>(NeedsTokio { delay })).unwrap()
    }

    #[test]
    fn exports_need_no_outside_runtime() {
        let exporter = wrapped(Duration::from_millis(5), Duration::from_secs(5));
        let result = futures::executor::block_on(exporter.export(vec![span("s", 1, 0)]));
        assert!(
            result.is_ok(),
            "the tokio timer works without the caller's runtime"
        );
    }

    #[test]
    fn exports_are_bounded_by_the_timeout() {
        let exporter = wrapped(Duration::from_secs(60), Duration::from_millis(100));
        let started = Instant::now();
        let result = futures::executor::block_on(exporter.export(vec![span("s", 1, 0)]));
        assert!(
            matches!(result, Err(OTelSdkError::Timeout(_))),
            "{result:?}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "returned at the timeout"
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn works_when_called_inside_another_runtime() {
        let exporter = wrapped(Duration::from_millis(1), Duration::from_secs(5));
        let result = exporter.export(vec![span("s", 1, 0)]).await;
        assert!(result.is_ok(), "no 'runtime within a runtime' panic");
        drop(exporter);
    }

    #[test]
    fn build_errors_are_reported() {
        let result = OwnRuntime::<NeedsTokio>::build(Duration::from_secs(1), || Err("nope"));
        assert_eq!(
            result.unwrap_err(),
            "nope",
            "the builder's error is passed on"
        );
    }
}
