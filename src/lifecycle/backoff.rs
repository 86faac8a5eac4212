//! What a task waits between attempts ([`Backoff`]) and the error a
//! timed-out attempt produces ([`TaskTimeout`]).

use std::fmt;
use std::time::Duration;

/// The error a timed-out attempt produces; a task with `timeout` returns
/// `Err(E::from(TaskTimeout))`.
///
/// ```
/// use std::time::Duration;
/// use flowtrace::TaskTimeout;
///
/// #[derive(Debug)]
/// enum Error {
///     TimedOut(TaskTimeout),
/// }
/// impl std::fmt::Display for Error {
///     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
///         match self {
///             Error::TimedOut(t) => t.fmt(f),
///         }
///     }
/// }
/// impl From<TaskTimeout> for Error {
///     fn from(t: TaskTimeout) -> Self {
///         Error::TimedOut(t)
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let out: Result<(), Error> = flowtrace::task("slow")
///     .timeout(Duration::from_millis(5))
///     .run(|_| async {
///         tokio::time::sleep(Duration::from_secs(5)).await;
///         Ok(())
///     })
///     .await;
/// let Err(Error::TimedOut(timeout)) = out else { panic!("{out:?}") };
/// assert_eq!(timeout.after, Duration::from_millis(5));
/// assert_eq!(timeout.to_string(), "task timed out after 5ms");
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskTimeout {
    /// The limit that was exceeded.
    pub after: Duration,
}

impl fmt::Display for TaskTimeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "task timed out after {:?}", self.after)
    }
}

impl std::error::Error for TaskTimeout {}

/// How long to wait before retry `n` (1-based).
///
/// ```
/// use std::time::Duration;
/// use flowtrace::Backoff;
///
/// let backoff = Backoff::exponential(Duration::from_millis(100)).jitter(false);
/// assert_eq!(backoff.delay(1), Duration::from_millis(100));
/// assert_eq!(backoff.delay(3), Duration::from_millis(400));
/// assert_eq!(Backoff::default(), Backoff::exponential(Duration::from_millis(100)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    base: Duration,
    factor: f64,
    max: Duration,
    jitter: bool,
}

impl Default for Backoff {
    /// Exponential from 100 ms, doubling, at most 30 s, with jitter.
    fn default() -> Self {
        Self::exponential(Duration::from_millis(100))
    }
}

impl Backoff {
    /// The same delay before every retry.
    ///
    /// ```
    /// use std::time::Duration;
    /// let backoff = flowtrace::Backoff::fixed(Duration::from_secs(1));
    /// assert_eq!(backoff.delay(1), backoff.delay(5));
    /// ```
    pub fn fixed(delay: Duration) -> Self {
        Self {
            base: delay,
            factor: 1.0,
            max: delay,
            jitter: false,
        }
    }

    /// `base`, then doubling, capped at 30 s, with full jitter.
    ///
    /// ```
    /// use std::time::Duration;
    /// let backoff = flowtrace::Backoff::exponential(Duration::from_secs(1));
    /// // Full jitter: somewhere in [4 s / 2, 4 s] before the third retry.
    /// let third = backoff.delay(3);
    /// assert!(third >= Duration::from_secs(2) && third <= Duration::from_secs(4));
    /// assert!(backoff.delay(20) <= Duration::from_secs(30));
    /// ```
    pub fn exponential(base: Duration) -> Self {
        Self {
            base,
            factor: 2.0,
            max: Duration::from_secs(30),
            jitter: true,
        }
    }

    /// Caps the delay.
    ///
    /// ```
    /// use std::time::Duration;
    /// let backoff = flowtrace::Backoff::exponential(Duration::from_secs(1))
    ///     .jitter(false)
    ///     .max_delay(Duration::from_secs(5));
    /// assert_eq!(backoff.delay(10), Duration::from_secs(5));
    /// ```
    pub fn max_delay(mut self, max: Duration) -> Self {
        self.max = max;
        self
    }

    /// Randomizes each delay uniformly in `[delay / 2, delay]`, so retries of
    /// many tasks do not arrive in lockstep.
    ///
    /// ```
    /// use std::time::Duration;
    /// let steady = flowtrace::Backoff::exponential(Duration::from_millis(10)).jitter(false);
    /// assert_eq!(steady.delay(2), Duration::from_millis(20));
    /// ```
    pub fn jitter(mut self, jitter: bool) -> Self {
        self.jitter = jitter;
        self
    }

    /// The delay before retry `retry` (1-based).
    ///
    /// ```
    /// use std::time::Duration;
    /// let backoff = flowtrace::Backoff::fixed(Duration::from_millis(250));
    /// assert_eq!(backoff.delay(1), Duration::from_millis(250));
    /// ```
    pub fn delay(&self, retry: u32) -> Duration {
        let exp = self.factor.powi(retry.saturating_sub(1).min(64) as i32);
        let secs = (self.base.as_secs_f64() * exp).min(self.max.as_secs_f64());
        let secs = if self.jitter {
            secs * (0.5 + 0.5 * unit_random())
        } else {
            secs
        };
        Duration::try_from_secs_f64(secs).unwrap_or(self.max)
    }
}

/// A number in `[0, 1)`; retries need spread, not cryptographic randomness.
fn unit_random() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}
