//! The timers a task or run records its metrics through: a `#[traced]`
//! call site's bound handles ([`Site`]), a task's [`TaskTimer`] and a run's
//! [`RunTimer`].

use std::sync::Arc;
use std::sync::atomic::{AtomicPtr, Ordering};
use std::time::SystemTime;

use opentelemetry::KeyValue;
use opentelemetry::trace::SpanContext;

use super::{Bound, GENERATION, Installed, Outcome, bound_for, installed};
use crate::attributes::{RUN_NAME, RUN_STATUS, TASK_NAME};

/// A `#[traced]` call site's handles, bound the first time it runs under
/// each installed provider.
pub(crate) struct Site {
    /// Null, or a leaked `&'static Bound`.
    bound: AtomicPtr<Bound>,
}

impl Site {
    pub(crate) const fn new() -> Self {
        Self {
            bound: AtomicPtr::new(std::ptr::null_mut()),
        }
    }

    #[inline]
    fn get(&self, name: &'static str, generation: u64) -> Option<&'static Bound> {
        let ptr = self.bound.load(Ordering::Acquire);
        // SAFETY: the only pointers stored are of leaked, never freed
        // `Bound`s (`bind`), so a non-null one is valid for 'static.
        match unsafe { ptr.as_ref() } {
            Some(bound) if bound.generation == generation => Some(bound),
            _ => self.bind(name, generation),
        }
    }

    #[cold]
    fn bind(&self, name: &'static str, generation: u64) -> Option<&'static Bound> {
        let bound = bound_for(name, generation)?;
        self.bound
            .store(std::ptr::from_ref(bound).cast_mut(), Ordering::Release);
        Some(bound)
    }
}

impl std::fmt::Debug for Site {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Site")
            .field("bound", &!self.bound.load(Ordering::Relaxed).is_null())
            .finish()
    }
}

/// Which clock a task's start was read on. A span that records and its
/// metrics share their two instants (the system clock); a task without one
/// is timed with the time stamp counter, a fraction of the cost.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Clock {
    /// Not yet: the task's start has not decided which clock times it.
    Pending,
    /// `at` is nanoseconds since the Unix epoch.
    Wall,
    /// `at` is a [`clock::Stamp`](super::clock::Stamp).
    Counter,
}

/// A task being measured: started by [`task_started`], ended by
/// [`TaskTimer::end`] (or counted as cancelled when dropped). Three words,
/// kept in the task's future.
pub(crate) struct TaskTimer {
    pub(super) bound: &'static Bound,
    /// When the task began, on `clock`.
    at: u64,
    clock: Clock,
    /// An attempt after the first (an execution of a retry).
    pub(super) retry: bool,
}

/// Starts measuring a task: `None` (one atomic read) with no provider.
#[inline]
pub(crate) fn task_started(site: Option<&'static Site>, name: &'static str) -> Option<TaskTimer> {
    let generation = GENERATION.load(Ordering::Relaxed);
    if generation == 0 {
        return None;
    }
    task_started_slow(site, name, generation)
}

fn task_started_slow(
    site: Option<&'static Site>,
    name: &'static str,
    generation: u64,
) -> Option<TaskTimer> {
    let bound = match site {
        Some(site) => site.get(name, generation)?,
        None => bound_for(name, generation)?,
    };
    bound.started.fetch_add(1, Ordering::Relaxed);
    Some(TaskTimer {
        bound,
        at: 0,
        clock: Clock::Pending,
        retry: false,
    })
}

impl TaskTimer {
    /// A timer for `bound` started now on the system clock.
    pub(super) fn on_wall(bound: &'static Bound, retry: bool) -> Self {
        Self {
            bound,
            at: super::unix_nanos(SystemTime::now()),
            clock: Clock::Wall,
            retry,
        }
    }

    /// Starts timing on the system clock and returns the instant: a span's
    /// start time.
    pub(crate) fn begin_wall(&mut self) -> SystemTime {
        let now = SystemTime::now();
        self.at = super::unix_nanos(now);
        self.clock = Clock::Wall;
        now
    }

    /// Starts timing on the time stamp counter, unless the span's start
    /// already began it.
    pub(crate) fn begin(&mut self) {
        if self.clock == Clock::Pending {
            self.at = super::clock::now().into_raw();
            self.clock = Clock::Counter;
        }
    }

    /// Whether the task ends on the system clock (its span's end time).
    pub(crate) fn ends_on_wall(&self) -> bool {
        self.clock == Clock::Wall
    }

    /// Records the task's end at `end` (its span's end time, for a task
    /// timed on the system clock); `sampled`: its span, when it was
    /// sampled, for an exemplar.
    pub(crate) fn end(
        self,
        outcome: Outcome,
        end: Option<SystemTime>,
        sampled: Option<&SpanContext>,
    ) {
        let bound = self.bound;
        // A task timed on the system clock: its end in nanoseconds since
        // the epoch, read once for the duration and the exemplar's window.
        let wall_end = (self.clock == Clock::Wall).then(|| {
            let end = end.unwrap_or_else(SystemTime::now);
            (end, super::unix_nanos(end))
        });
        let seconds = match (self.clock, wall_end) {
            (Clock::Wall, Some((_, end))) => {
                std::time::Duration::from_nanos(end.saturating_sub(self.at)).as_secs_f64()
            }
            (Clock::Counter, _) => {
                super::clock::seconds_since(super::clock::Stamp::from_raw(self.at))
            }
            _ => 0.0,
        };
        match (outcome, self.retry) {
            (Outcome::Cached, _) => {
                bound.cached.fetch_add(1, Ordering::Relaxed);
            }
            (_, false) => {
                bound.attempts.fetch_add(1, Ordering::Relaxed);
            }
            (_, true) => {
                bound.retries.fetch_add(1, Ordering::Relaxed);
            }
        }
        bound.duration(outcome).record(seconds);
        if let (Some(sc), Some(end)) = (sampled, wall_end) {
            bound.keep_exemplar(outcome, seconds, end, sc);
        }
    }

    /// Records how long the task waited for its slot or first poll.
    pub(crate) fn queue_wait(&self, waited: std::time::Duration) {
        let bound = self.bound;
        bound
            .queue_wait
            .get_or_init(|| {
                bound
                    .installed
                    .queue_wait
                    .bind(&[KeyValue::new(TASK_NAME, bound.name)])
            })
            .record(waited.as_secs_f64());
    }
}

/// Counts a retry of `name` (an attempt after the first).
pub(crate) fn retried(name: &'static str) {
    let generation = GENERATION.load(Ordering::Relaxed);
    if generation == 0 {
        return;
    }
    if let Some(bound) = bound_for(name, generation) {
        bound.retried_apart.fetch_add(1, Ordering::Relaxed);
    }
}

thread_local! {
    /// The outcome the lifecycle executor decided (`timeout`, `cached`),
    /// for the task whose body it is: set just before it returns, taken by
    /// that task's span in the same poll.
    static DECIDED: std::cell::Cell<Option<(&'static str, Outcome)>> =
        const { std::cell::Cell::new(None) };
}

/// The executor of task `name` ends it with `outcome`.
pub(crate) fn decide(name: &'static str, outcome: Outcome) {
    if GENERATION.load(Ordering::Relaxed) != 0 {
        DECIDED.with(|decided| decided.set(Some((name, outcome))));
    }
}

/// The outcome the executor of `name` decided, if it decided one.
fn decided(name: &'static str) -> Option<Outcome> {
    DECIDED.with(|decided| match decided.take() {
        Some((of, outcome)) if std::ptr::eq(of, name) || of == name => Some(outcome),
        _ => None,
    })
}

impl TaskTimer {
    /// The outcome of a task that returned: what its executor decided, else
    /// `error` or `ok`.
    pub(crate) fn outcome(&self, error: bool) -> Outcome {
        decided(self.bound.name).unwrap_or(if error { Outcome::Error } else { Outcome::Ok })
    }
}

/// A run being measured.
pub(crate) struct RunTimer {
    installed: Arc<Installed>,
    name: KeyValue,
    start: SystemTime,
}

impl RunTimer {
    /// Starts measuring the run `name`: `None` with no provider.
    pub(crate) fn start(name: &str) -> Option<Self> {
        if GENERATION.load(Ordering::Relaxed) == 0 {
            return None;
        }
        let installed = installed()?;
        let name = KeyValue::new(RUN_NAME, name.to_owned());
        installed.run_active.add(1, std::slice::from_ref(&name));
        Some(Self {
            installed,
            name,
            start: SystemTime::now(),
        })
    }

    /// When the run started (its span's start time).
    pub(crate) fn start_time(&self) -> SystemTime {
        self.start
    }

    /// Records the run's end at `end` with `status` (`succeeded`, `failed`,
    /// `cancelled`).
    pub(crate) fn end(self, status: &'static str, end: SystemTime) {
        let seconds = end
            .duration_since(self.start)
            .map_or(0.0, |d| d.as_secs_f64());
        let name = std::slice::from_ref(&self.name);
        self.installed.run_active.add(-1, name);
        self.installed.run_duration.record(
            seconds,
            &[self.name.clone(), KeyValue::new(RUN_STATUS, status)],
        );
    }
}
