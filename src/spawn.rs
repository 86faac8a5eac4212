//! Carrying the current frame and OpenTelemetry context into a spawned
//! task: [`spawn`], [`spawn_blocking`], and the [`Carried`] pair that a
//! scope, a spawned task and a carried future (`carry`) enter for each poll.

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;

use opentelemetry::Context;

use crate::frame::{Frame, current};

/// A frame and the context it was made under, entered together for each
/// poll of a future: what a scope, a spawned task and a run carry.
pub(crate) struct Carried {
    frame: Option<Frame>,
    cx: Context,
}

impl Carried {
    /// The current frame and context.
    pub(crate) fn current() -> Self {
        Self {
            frame: current::cloned(),
            cx: Context::current(),
        }
    }

    /// `frame` over `cx`; the frame also goes into the context, so code that
    /// captures `Context::current()` and attaches it elsewhere keeps the map.
    pub(crate) fn new(frame: Frame, cx: &Context) -> Self {
        Self {
            cx: cx.with_value(frame.clone()),
            frame: Some(frame),
        }
    }

    /// Calls `f` with the frame and context current.
    pub(crate) fn enter<T>(&self, f: impl FnOnce() -> T) -> T {
        let _frame = self.frame.as_ref().map(current::enter);
        let _cx = self.cx.clone().attach();
        f()
    }
}

pin_project_lite::pin_project! {
    /// A future polled under a carried frame and context (`flowtrace::spawn`).
    pub(crate) struct WithCarried<F> {
        carried: Carried,
        #[pin]
        future: F,
    }
}

impl<F: Future> Future for WithCarried<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, task: &mut std::task::Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let future = this.future;
        this.carried.enter(|| future.poll(task))
    }
}

/// [`tokio::spawn`] that carries the current map and OpenTelemetry context
/// into the spawned task.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let team = flowtrace::custom_context([("team", "search")])
///     .scope(async {
///         flowtrace::spawn(async { flowtrace::ctx().custom_context().get("team").map(str::to_owned) })
///             .await
///             .unwrap()
///     })
///     .await;
/// assert_eq!(team.as_deref(), Some("search"));
/// # }
/// ```
#[track_caller]
pub fn spawn<F>(future: F) -> tokio::task::JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    tokio::spawn(WithCarried {
        carried: Carried::current(),
        future,
    })
}

/// [`tokio::task::spawn_blocking`] that runs `f` under the current map and
/// OpenTelemetry context.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let team = flowtrace::custom_context([("team", "search")])
///     .scope(async {
///         flowtrace::spawn_blocking(|| flowtrace::ctx().custom_context().get("team").map(str::to_owned))
///             .await
///             .unwrap()
///     })
///     .await;
/// assert_eq!(team.as_deref(), Some("search"));
/// # }
/// ```
#[track_caller]
pub fn spawn_blocking<F, R>(f: F) -> tokio::task::JoinHandle<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    let carried = Carried::current();
    tokio::task::spawn_blocking(move || carried.enter(f))
}
