//! Task lifecycle: retries with backoff, timeouts and caching, each visible
//! in the trace — an attempt span per try, a `retry` event with the error
//! that caused it, `flowtrace.task.timeout`, `flowtrace.task.cached` /
//! `flowtrace.task.replayed`.
//!
//! `#[traced(retries = 3, timeout = "30s", cache = key)]` runs its body on
//! this executor; [`task`] is the same for code without the macro:
//!
//! ```
//! use std::time::Duration;
//! use flowtrace::{Backoff, TaskTimeout};
//!
//! #[derive(Debug)]
//! struct Flaky;
//! impl std::fmt::Display for Flaky {
//!     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str("flaky") }
//! }
//! impl From<TaskTimeout> for Flaky {
//!     fn from(_: TaskTimeout) -> Self { Flaky }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let out: Result<u32, Flaky> = flowtrace::task("fetch")
//!     .retries(2)
//!     .backoff(Backoff::fixed(Duration::from_millis(1)))
//!     .timeout(Duration::from_secs(5))
//!     .run(|attempt| async move { if attempt < 2 { Err(Flaky) } else { Ok(attempt) } })
//!     .await;
//! assert_eq!(out.unwrap(), 2);
//! # }
//! ```

use std::fmt;
use std::future::Future;
use std::time::Duration;

use opentelemetry::context::FutureExt as _;
use opentelemetry::trace::{SpanBuilder, SpanKind, Status, TraceContextExt};
use opentelemetry::{Context, KeyValue};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::attributes::{
    RETRY_DELAY_MS, RETRY_EVENT, TASK_ATTEMPT, TASK_CACHED, TASK_REPLAYED, TASK_RETRIES,
    TASK_TIMEOUT,
};
use crate::backend::open;
use crate::cache;
use crate::exception;
use crate::frame::{Frame, current};
use crate::outcome::{Describe, Outcome as _, Read, Wrap};
use crate::task::TaskStart;

mod backoff;

pub use backoff::{Backoff, TaskTimeout};

/// The runtime options of a task call.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    retries: u32,
    backoff: Backoff,
    timeout: Option<Duration>,
    new_trace_after: Option<Duration>,
}

impl Policy {
    /// No retries, no timeout.
    pub fn new() -> Self {
        Self::default()
    }

    /// Retries after an `Err`, up to `n` times.
    pub fn retries(mut self, n: u32) -> Self {
        self.retries = n;
        self
    }

    /// The wait between attempts.
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// A time limit for each attempt.
    pub fn timeout(mut self, limit: Duration) -> Self {
        self.timeout = Some(limit);
        self
    }

    /// An attempt that follows a backoff of at least `backoff` starts a new
    /// trace whose root (the attempt span) links to the failed attempt
    /// (`flowtrace.link.reason = "retry"`); see [`crate::link`].
    pub fn new_trace_after(mut self, backoff: Duration) -> Self {
        self.new_trace_after = Some(backoff);
        self
    }
}

/// How the executor reads and builds a task's output.
pub struct Hooks<Fail, Time, Store, Load> {
    /// `Some((type, message))` when the output is a failure (retryable).
    pub failure: Fail,
    /// Builds the output for a timed-out attempt (`None`: no timeout).
    pub timeout: Option<Time>,
    /// The output as JSON for the cache (`None`: do not cache).
    pub store: Store,
    /// An output from cached JSON.
    pub load: Load,
}

/// Runs a task body under `policy`, inside the task span.
pub async fn execute<T, Make, Fut, Fail, Time, Store, Load>(
    name: &'static str,
    policy: Policy,
    cache_key: Option<String>,
    mut make: Make,
    hooks: Hooks<Fail, Time, Store, Load>,
) -> T
where
    Make: FnMut(u32) -> Fut,
    Fut: Future<Output = T>,
    Fail: Fn(&T) -> Option<(String, String)>,
    Time: Fn(TaskTimeout) -> T,
    Store: Fn(&T) -> Option<serde_json::Value>,
    Load: Fn(serde_json::Value) -> Option<T>,
{
    let task_cx = Context::current();
    let frame = current::cloned();
    let run = frame.as_ref().and_then(Frame::run);
    if let Some(key) = &cache_key {
        if let Some((json, replayed)) = cache::lookup(run, key) {
            if let Some(out) = (hooks.load)(json) {
                let attribute = if replayed { TASK_REPLAYED } else { TASK_CACHED };
                task_cx.span().set_attribute(KeyValue::new(attribute, true));
                crate::metrics::decide(name, crate::metrics::Outcome::Cached);
                return out;
            }
        }
    }
    if policy.retries > 0 {
        task_cx
            .span()
            .set_attribute(KeyValue::new(TASK_RETRIES, i64::from(policy.retries)));
    }
    let mut attempt = 1;
    // The failed attempt the next one starts a new trace from.
    let mut relink: Option<opentelemetry::trace::SpanContext> = None;
    loop {
        let attempt_cx = if policy.retries > 0 {
            let mut builder = SpanBuilder::from_name(format!("{name} attempt {attempt}"))
                .with_kind(SpanKind::Internal)
                .with_attributes([KeyValue::new(TASK_ATTEMPT, i64::from(attempt))]);
            let root;
            let under = match relink.take() {
                Some(failed) => {
                    builder = builder
                        .with_links(crate::link::link_to(&failed, "retry").into_iter().collect());
                    root = crate::link::new_root(&task_cx);
                    &root
                }
                None => &task_cx,
            };
            // The task's map follows the current span, so tasks the body
            // calls are the attempt's children.
            frame
                .as_ref()
                .and_then(|frame| open(frame.inner.backend(), builder, under))
                .map(|opened| opened.cx)
        } else {
            None
        };
        let cx = attempt_cx.clone().unwrap_or_else(|| task_cx.clone());
        let body = make(attempt).with_context(cx.clone());
        let mut timed_out = false;
        let out = match (policy.timeout, &hooks.timeout) {
            (Some(limit), Some(on_timeout)) => match tokio::time::timeout(limit, body).await {
                Ok(out) => out,
                Err(_) => {
                    timed_out = true;
                    let span = cx.span();
                    span.set_attribute(KeyValue::new(TASK_TIMEOUT, true));
                    task_cx
                        .span()
                        .set_attribute(KeyValue::new(TASK_TIMEOUT, true));
                    on_timeout(TaskTimeout { after: limit })
                }
            },
            _ => body.await,
        };
        let failure = (hooks.failure)(&out);
        if let Some(attempt_cx) = &attempt_cx {
            let span = attempt_cx.span();
            match &failure {
                Some((ty, message)) => exception::record(&span, ty, message.clone(), None),
                None => span.set_status(Status::Ok),
            }
            span.end();
        }
        match failure {
            Some((ty, message)) if attempt <= policy.retries => {
                let delay = policy.backoff.delay(attempt);
                let mut event = vec![
                    KeyValue::new(TASK_ATTEMPT, i64::from(attempt)),
                    KeyValue::new(RETRY_DELAY_MS, delay.as_millis() as i64),
                ];
                event.extend(exception::attributes(ty, message));
                task_cx.span().add_event(RETRY_EVENT, event);
                if policy.new_trace_after.is_some_and(|after| delay >= after) {
                    relink = attempt_cx
                        .as_ref()
                        .map(|cx| cx.span().span_context().clone());
                }
                tokio::time::sleep(delay).await;
                attempt += 1;
                crate::metrics::retried(name);
            }
            Some(_) => {
                if timed_out {
                    crate::metrics::decide(name, crate::metrics::Outcome::Timeout);
                }
                return out;
            }
            None => {
                if let Some(key) = &cache_key {
                    if let Some(json) = (hooks.store)(&out) {
                        cache::store(run, key, json);
                    }
                }
                return out;
            }
        }
    }
}

/// A task without the macro: what `#[traced(retries = 3, timeout = "30s",
/// cache = key)]` expands into, for code that builds its task at run time.
///
/// ```
/// use std::time::Duration;
/// use flowtrace::{Backoff, TaskTimeout};
///
/// #[derive(Debug)]
/// struct Flaky;
/// impl std::fmt::Display for Flaky {
///     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str("flaky") }
/// }
/// impl From<TaskTimeout> for Flaky {
///     fn from(_: TaskTimeout) -> Self { Flaky }
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let out: Result<u32, Flaky> = flowtrace::task("fetch")
///     .retries(2)
///     .backoff(Backoff::fixed(Duration::from_millis(1)))
///     .timeout(Duration::from_secs(5))
///     .run(|attempt| async move { if attempt < 2 { Err(Flaky) } else { Ok(attempt) } })
///     .await;
/// assert_eq!(out.unwrap(), 2);
/// # }
/// ```
pub fn task(name: &'static str) -> TaskBuilder {
    TaskBuilder {
        name,
        policy: Policy::new(),
        kind: SpanKind::Internal,
    }
}

/// Settings of a task run without the macro.
///
/// ```
/// # #[derive(Debug)] struct Error;
/// # impl std::fmt::Display for Error { fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str("failed") } }
/// # impl From<flowtrace::TaskTimeout> for Error { fn from(_: flowtrace::TaskTimeout) -> Self { Error } }
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let builder: flowtrace::TaskBuilder = flowtrace::task("load").retries(1);
/// let out: Result<&str, Error> = builder.run(|_| async { Ok("loaded") }).await;
/// assert_eq!(out.unwrap(), "loaded");
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct TaskBuilder {
    name: &'static str,
    policy: Policy,
    kind: SpanKind,
}

impl TaskBuilder {
    /// Retries after an `Err`, up to `n` times.
    ///
    /// ```
    /// # #[derive(Debug)] struct Error;
    /// # impl std::fmt::Display for Error { fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str("failed") } }
    /// # impl From<flowtrace::TaskTimeout> for Error { fn from(_: flowtrace::TaskTimeout) -> Self { Error } }
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use std::time::Duration;
    /// let out: Result<u32, Error> = flowtrace::task("fetch")
    ///     .retries(3)
    ///     .backoff(flowtrace::Backoff::fixed(Duration::from_millis(1)))
    ///     .run(|attempt| async move { if attempt < 4 { Err(Error) } else { Ok(attempt) } })
    ///     .await;
    /// assert_eq!(out.unwrap(), 4, "the first try and three retries");
    /// # }
    /// ```
    pub fn retries(mut self, n: u32) -> Self {
        self.policy = self.policy.retries(n);
        self
    }

    /// The wait between attempts.
    ///
    /// ```
    /// # #[derive(Debug)] struct Error;
    /// # impl std::fmt::Display for Error { fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str("failed") } }
    /// # impl From<flowtrace::TaskTimeout> for Error { fn from(_: flowtrace::TaskTimeout) -> Self { Error } }
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use std::time::{Duration, Instant};
    /// let started = Instant::now();
    /// let _: Result<(), Error> = flowtrace::task("fetch")
    ///     .retries(2)
    ///     .backoff(flowtrace::Backoff::fixed(Duration::from_millis(5)))
    ///     .run(|_| async { Err(Error) })
    ///     .await;
    /// assert!(started.elapsed() >= Duration::from_millis(10));
    /// # }
    /// ```
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.policy = self.policy.backoff(backoff);
        self
    }

    /// A time limit for each attempt.
    ///
    /// ```
    /// # #[derive(Debug)] struct Error;
    /// # impl std::fmt::Display for Error { fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str("failed") } }
    /// # impl From<flowtrace::TaskTimeout> for Error { fn from(_: flowtrace::TaskTimeout) -> Self { Error } }
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use std::time::Duration;
    /// let out: Result<(), Error> = flowtrace::task("slow")
    ///     .timeout(Duration::from_millis(1))
    ///     .run(|_| async {
    ///         tokio::time::sleep(Duration::from_secs(5)).await;
    ///         Ok(())
    ///     })
    ///     .await;
    /// assert!(out.is_err());
    /// # }
    /// ```
    pub fn timeout(mut self, limit: Duration) -> Self {
        self.policy = self.policy.timeout(limit);
        self
    }

    /// The span kind.
    ///
    /// ```
    /// # #[derive(Debug)] struct Error;
    /// # impl std::fmt::Display for Error { fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str("failed") } }
    /// # impl From<flowtrace::TaskTimeout> for Error { fn from(_: flowtrace::TaskTimeout) -> Self { Error } }
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use opentelemetry::trace::SpanKind;
    /// let out: Result<u16, Error> = flowtrace::task("GET /users")
    ///     .kind(SpanKind::Client)
    ///     .run(|_| async { Ok(200) })
    ///     .await;
    /// assert_eq!(out.unwrap(), 200);
    /// # }
    /// ```
    pub fn kind(mut self, kind: SpanKind) -> Self {
        self.kind = kind;
        self
    }

    /// A retry after a backoff of at least `backoff` starts a new trace
    /// linked to the failed attempt (`flowtrace.link.reason = "retry"`); see
    /// [`crate::link`].
    ///
    /// ```
    /// # #[derive(Debug)] struct Error;
    /// # impl std::fmt::Display for Error { fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str("failed") } }
    /// # impl From<flowtrace::TaskTimeout> for Error { fn from(_: flowtrace::TaskTimeout) -> Self { Error } }
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use std::time::Duration;
    /// let out: Result<u32, Error> = flowtrace::task("nightly")
    ///     .retries(1)
    ///     .backoff(flowtrace::Backoff::fixed(Duration::from_millis(1)))
    ///     .new_trace_after(Duration::from_millis(1))
    ///     .run(|attempt| async move { if attempt == 1 { Err(Error) } else { Ok(attempt) } })
    ///     .await;
    /// assert_eq!(out.unwrap(), 2);
    /// # }
    /// ```
    pub fn new_trace_after(mut self, backoff: Duration) -> Self {
        self.policy = self.policy.new_trace_after(backoff);
        self
    }

    /// Runs `make(attempt)` as the task.
    ///
    /// ```
    /// # #[derive(Debug)] struct Error;
    /// # impl std::fmt::Display for Error { fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str("failed") } }
    /// # impl From<flowtrace::TaskTimeout> for Error { fn from(_: flowtrace::TaskTimeout) -> Self { Error } }
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let out: Result<u32, Error> = flowtrace::task("count").run(|attempt| async move { Ok(attempt) }).await;
    /// assert_eq!(out.unwrap(), 1);
    /// # }
    /// ```
    pub async fn run<T, E, F, Fut>(self, make: F) -> Result<T, E>
    where
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: fmt::Display + From<TaskTimeout>,
    {
        self.run_with(None, make, |_| None, |_| None).await
    }

    /// Runs `make(attempt)` as the task, served from the cache under `key`
    /// when an earlier call stored its output there.
    ///
    /// ```
    /// # #[derive(Debug)] struct Error;
    /// # impl std::fmt::Display for Error { fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str("failed") } }
    /// # impl From<flowtrace::TaskTimeout> for Error { fn from(_: flowtrace::TaskTimeout) -> Self { Error } }
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use std::sync::atomic::{AtomicU32, Ordering};
    /// let calls = AtomicU32::new(0);
    /// let embed = || flowtrace::task("embed").run_cached("doc-42", |_| async {
    ///     calls.fetch_add(1, Ordering::Relaxed);
    ///     Ok::<_, Error>(vec![0.5_f32, 0.25])
    /// });
    /// let first = embed().await.unwrap();
    /// let second = embed().await.unwrap();
    /// assert_eq!(first, second);
    /// assert_eq!(calls.load(Ordering::Relaxed), 1, "served from the cache");
    /// # }
    /// ```
    pub async fn run_cached<T, E, F, Fut>(self, key: impl Into<String>, make: F) -> Result<T, E>
    where
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: fmt::Display + From<TaskTimeout>,
        T: Serialize + DeserializeOwned,
    {
        self.run_with(
            Some(key.into()),
            make,
            |out| out.as_ref().ok().and_then(|v| serde_json::to_value(v).ok()),
            |json| serde_json::from_value(json).ok().map(Ok),
        )
        .await
    }

    async fn run_with<T, E, F, Fut>(
        self,
        key: Option<String>,
        make: F,
        store: impl Fn(&Result<T, E>) -> Option<serde_json::Value>,
        load: impl Fn(serde_json::Value) -> Option<Result<T, E>>,
    ) -> Result<T, E>
    where
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: fmt::Display + From<TaskTimeout>,
    {
        fn read<T, E: fmt::Display>(out: &Result<T, E>) -> Read<'_> {
            match out {
                Ok(_) => Read::Ok(None),
                Err(e) => Read::Err(Describe::describe(&&&Wrap(e))),
            }
        }
        let started = TaskStart::named(self.name).kind(self.kind).start();
        let name = self.name;
        let hooks = Hooks {
            failure: |out: &Result<T, E>| read.failure(out),
            timeout: Some(|t: TaskTimeout| Err(E::from(t))),
            store,
            load,
        };
        started
            .run(execute(name, self.policy, key, make, hooks), read)
            .await
    }
}
