//! `#[traced(retries, backoff, retry_delay, max_delay, jitter,
//! new_trace_after, timeout, cache)]` as the expansion sets them: a
//! [`Lifecycle`] built from the options, run under the task span by the
//! lifecycle executor. `timeout` and `cache` add their bounds on the output
//! type only when they are set.

use std::fmt::Display;
use std::future::Future;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::lifecycle::{Backoff, Hooks, Policy, TaskTimeout, execute};
use crate::outcome::Outcome;
use crate::task::{Started, Task};

/// The lifecycle options of one `#[traced]` function.
pub struct Lifecycle<Time = NoTimeout, Cache = NoCache> {
    name: &'static str,
    policy: Policy,
    backoff: Backoff,
    key: Option<String>,
    time: Time,
    cache: Cache,
}

/// No `timeout`.
pub struct NoTimeout;
/// `timeout = ".."`: a timed-out attempt returns `Err(E::from(TaskTimeout))`.
pub struct Timeout;
/// No `cache`.
pub struct NoCache;
/// `cache = key` on a task returning a plain value: the whole value is cached.
pub struct CacheValue;
/// `cache = key` on a task returning a `Result`: only `Ok` values are cached.
pub struct CacheOk;

impl Lifecycle {
    /// No retries, no timeout, no cache.
    pub fn new(name: &'static str) -> Self {
        Self {
            name,
            policy: Policy::new(),
            backoff: Backoff::default(),
            key: None,
            time: NoTimeout,
            cache: NoCache,
        }
    }
}

impl<Time, Cache> Lifecycle<Time, Cache> {
    /// `retries = n`.
    pub fn retries(mut self, n: u32) -> Self {
        self.policy = self.policy.retries(n);
        self
    }

    /// `backoff = fixed` from `retry_delay`.
    pub fn fixed_backoff(mut self, delay_ms: u64) -> Self {
        self.backoff = Backoff::fixed(Duration::from_millis(delay_ms));
        self
    }

    /// `backoff = exponential` (the default) from `retry_delay`.
    pub fn exponential_backoff(mut self, delay_ms: u64) -> Self {
        self.backoff = Backoff::exponential(Duration::from_millis(delay_ms));
        self
    }

    /// `max_delay = ".."`.
    pub fn max_delay(mut self, ms: u64) -> Self {
        self.backoff = self.backoff.max_delay(Duration::from_millis(ms));
        self
    }

    /// `jitter = true|false`.
    pub fn jitter(mut self, jitter: bool) -> Self {
        self.backoff = self.backoff.jitter(jitter);
        self
    }

    /// `new_trace_after = ".."`.
    pub fn new_trace_after(mut self, ms: u64) -> Self {
        self.policy = self.policy.new_trace_after(Duration::from_millis(ms));
        self
    }

    /// `timeout = ".."`.
    pub fn timeout(self, ms: u64) -> Lifecycle<Timeout, Cache> {
        Lifecycle {
            name: self.name,
            policy: self.policy.timeout(Duration::from_millis(ms)),
            backoff: self.backoff,
            key: self.key,
            time: Timeout,
            cache: self.cache,
        }
    }

    /// `cache = key` on a task returning a plain value; `function` is the
    /// task's fully qualified name, which scopes the key.
    pub fn cache(self, function: &str, key: impl Display) -> Lifecycle<Time, CacheValue> {
        self.keyed(function, key, CacheValue)
    }

    /// `cache = key` on a task returning a `Result`.
    pub fn cache_ok(self, function: &str, key: impl Display) -> Lifecycle<Time, CacheOk> {
        self.keyed(function, key, CacheOk)
    }

    fn keyed<C>(self, function: &str, key: impl Display, cache: C) -> Lifecycle<Time, C> {
        Lifecycle {
            name: self.name,
            policy: self.policy,
            backoff: self.backoff,
            key: Some(format!("{function}:{key}")),
            time: self.time,
            cache,
        }
    }

    /// Runs `make(attempt)` under `span` with these options; `outcome`
    /// reads each attempt's output.
    pub fn run<T, Make, Fut, O>(
        self,
        span: Started,
        make: Make,
        outcome: O,
    ) -> Task<impl Future<Output = T>, O>
    where
        Make: FnMut(u32) -> Fut,
        Fut: Future<Output = T>,
        O: Outcome<T> + Copy,
        Time: OnTimeout<T>,
        Cache: Store<T>,
    {
        let hooks = Hooks {
            failure: move |out: &T| outcome.failure(out),
            timeout: self.time.hook(),
            store: Cache::store,
            load: Cache::load,
        };
        let policy = self.policy.backoff(self.backoff);
        span.run(execute(self.name, policy, self.key, make, hooks), outcome)
    }
}

/// What a timed-out attempt returns.
#[diagnostic::on_unimplemented(
    message = "`#[traced(timeout = ..)]` needs the task to return `Result<T, E>` with `E: From<flowtrace::TaskTimeout>`",
    label = "`{T}` cannot represent a timeout",
    note = "add `impl From<flowtrace::TaskTimeout> for YourError`"
)]
pub trait OnTimeout<T> {
    /// Builds the output of a timed-out attempt (`None`: no timeout).
    fn hook(&self) -> Option<fn(TaskTimeout) -> T>;
}

impl<T> OnTimeout<T> for NoTimeout {
    fn hook(&self) -> Option<fn(TaskTimeout) -> T> {
        None
    }
}

impl<T, E: From<TaskTimeout>> OnTimeout<Result<T, E>> for Timeout {
    fn hook(&self) -> Option<fn(TaskTimeout) -> Result<T, E>> {
        Some(|timeout| Err(E::from(timeout)))
    }
}

/// How an output goes into the cache and comes back.
pub trait Store<T> {
    /// The output as JSON (`None`: not cached).
    fn store(out: &T) -> Option<serde_json::Value>;
    /// An output from cached JSON.
    fn load(json: serde_json::Value) -> Option<T>;
}

impl<T> Store<T> for NoCache {
    fn store(_: &T) -> Option<serde_json::Value> {
        None
    }

    fn load(_: serde_json::Value) -> Option<T> {
        None
    }
}

impl<T: Serialize + DeserializeOwned> Store<T> for CacheValue {
    fn store(out: &T) -> Option<serde_json::Value> {
        serde_json::to_value(out).ok()
    }

    fn load(json: serde_json::Value) -> Option<T> {
        serde_json::from_value(json).ok()
    }
}

impl<T: Serialize + DeserializeOwned, E> Store<Result<T, E>> for CacheOk {
    fn store(out: &Result<T, E>) -> Option<serde_json::Value> {
        out.as_ref().ok().and_then(|v| serde_json::to_value(v).ok())
    }

    fn load(json: serde_json::Value) -> Option<Result<T, E>> {
        serde_json::from_value(json).ok().map(Ok)
    }
}

/// An argument cloned for each attempt of a retried task.
#[diagnostic::on_unimplemented(
    message = "`#[traced(retries = ..)]` runs the body again, so every argument must be `Clone`; `{Self}` is not",
    label = "not `Clone`",
    note = "derive or implement `Clone`, pass a shared reference or an `Arc`, or drop `retries`"
)]
pub trait RetryArg {
    /// A fresh copy for the next attempt.
    fn retry_clone(&self) -> Self;
}

impl<T: Clone> RetryArg for T {
    fn retry_clone(&self) -> Self {
        self.clone()
    }
}
