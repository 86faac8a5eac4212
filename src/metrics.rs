//! Task and run metrics, from the same instrumentation as the spans: every
//! task and run records them, sampled or not, through the OpenTelemetry
//! metrics API once a meter provider is installed with
//! [`set_meter_provider`] (flowtrace-telemetry's `init()` does).
//!
//! | instrument | kind | unit | attributes |
//! |---|---|---|---|
//! | [`TASK_DURATION`] `flowtrace.task.duration` | histogram | `s` | [`TASK_NAME`], [`TASK_OUTCOME`] (`ok`, `error`, `cancelled`, `timeout`, `cached`) |
//! | [`TASK_ATTEMPTS`] `flowtrace.task.attempts` | counter | `{attempt}` | task name, [`TASK_RETRY`] (`true` for an attempt after the first) |
//! | [`TASK_QUEUE_WAIT`] `flowtrace.task.queue_wait` | histogram | `s` | task name |
//! | [`TASK_ACTIVE`] `flowtrace.task.active` | up-down counter | `{task}` | task name |
//! | [`RUN_DURATION`] `flowtrace.run.duration` | histogram | `s` | [`RUN_NAME`](crate::attributes::RUN_NAME), [`RUN_STATUS`](crate::attributes::RUN_STATUS) (`succeeded`, `failed`, `cancelled`) |
//! | [`RUN_ACTIVE`] `flowtrace.run.active` | up-down counter | `{run}` | run name |
//!
//! The histograms' explicit buckets ([`DURATION_BOUNDARIES`]) span a
//! millisecond to four hours. A task's duration is its span's: both are
//! taken from the same two clock readings.
//!
//! **Cost.** With no meter provider installed a task call reads one atomic.
//! With one, each `#[traced]` call site binds its instruments once (the
//! first time it runs) and a call then records through the bound handles:
//! no attribute set is built or hashed, nothing is allocated. The in-flight
//! and attempt counts are atomics of the call site, observed at collection.
//!
//! **Exemplars.** The duration of a sampled task is kept, per bucket, as an
//! [`Exemplar`] naming its trace and span (the last one in each bucket,
//! the way OpenTelemetry's aligned-histogram reservoir keeps them). The SDK
//! attaches none itself; an exporter takes them with [`take_exemplars`]
//! and puts them on the data point with the same attributes.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, OnceLock, RwLock};
use std::time::SystemTime;

use opentelemetry::metrics::{BoundHistogram, Histogram, Meter, MeterProvider};
use opentelemetry::trace::{SpanContext, SpanId, TraceId};
use opentelemetry::{InstrumentationScope, KeyValue};

use crate::attributes::{TASK_NAME, TASK_OUTCOME, TASK_RETRY};

mod clock;
mod measure;
mod timer;

pub use measure::{TaskMeasurement, measure_task, record_run};
pub(crate) use timer::{RunTimer, Site, TaskTimer, decide, retried, task_started};

/// A task's duration, from its first poll to its end, in seconds.
pub const TASK_DURATION: &str = "flowtrace.task.duration";
/// Attempts of a task's body: one per call, plus one per retry.
pub const TASK_ATTEMPTS: &str = "flowtrace.task.attempts";
/// How long a task waited for a slot (a `flowtrace::map` item) or for its
/// first poll (a spawned task), in seconds.
pub const TASK_QUEUE_WAIT: &str = "flowtrace.task.queue_wait";
/// Tasks started and not yet ended.
pub const TASK_ACTIVE: &str = "flowtrace.task.active";
/// A run's duration, in seconds.
pub const RUN_DURATION: &str = "flowtrace.run.duration";
/// Runs started and not yet ended.
pub const RUN_ACTIVE: &str = "flowtrace.run.active";

/// The explicit bucket boundaries of the duration histograms, in seconds:
/// 1 ms to 4 h.
pub const DURATION_BOUNDARIES: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
    120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0, 14400.0,
];

/// How a task ended, as [`TASK_OUTCOME`] names it.
///
/// ```
/// use flowtrace::metrics::{Outcome, measure_task};
///
/// let job = measure_task("nightly_export", 1);
/// job.end(Outcome::Timeout, None); // `flowtrace.task.outcome = "timeout"`
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Returned a value that is not an error.
    Ok,
    /// Returned an `Err`, or panicked.
    Error,
    /// Dropped before it ended.
    Cancelled,
    /// Its last attempt ran out of time.
    Timeout,
    /// Served from the cache without running.
    Cached,
}

impl Outcome {
    const ALL: [Outcome; 5] = [
        Outcome::Ok,
        Outcome::Error,
        Outcome::Cancelled,
        Outcome::Timeout,
        Outcome::Cached,
    ];

    /// The attribute value.
    ///
    /// ```
    /// use flowtrace::metrics::Outcome;
    /// assert_eq!(Outcome::Cached.as_str(), "cached");
    /// assert_eq!(Outcome::Error.as_str(), "error");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Error => "error",
            Outcome::Cancelled => "cancelled",
            Outcome::Timeout => "timeout",
            Outcome::Cached => "cached",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// One sampled measurement of [`TASK_DURATION`], with the span it came from.
///
/// ```
/// use opentelemetry_sdk::metrics::SdkMeterProvider;
/// use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
///
/// #[flowtrace::traced]
/// async fn work() {}
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let meters = SdkMeterProvider::builder().build();
/// flowtrace::metrics::set_meter_provider(&meters);
/// let tracer = SdkTracerProvider::builder().build();
/// flowtrace::set_tracer_provider(tracer.clone(), &Sampler::AlwaysOn);
/// work().await;
/// let kept: Vec<flowtrace::metrics::Exemplar> = flowtrace::metrics::take_exemplars();
/// assert_eq!(kept.len(), 1);
/// assert_eq!(kept[0].instrument, flowtrace::metrics::TASK_DURATION);
/// # }
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Exemplar {
    /// The instrument: [`TASK_DURATION`].
    pub instrument: &'static str,
    /// The attributes of the data point it belongs to (task name, outcome).
    pub attributes: Vec<KeyValue>,
    /// The measurement, in seconds.
    pub value: f64,
    /// When it was measured.
    pub time: SystemTime,
    /// The task span's trace.
    pub trace_id: TraceId,
    /// The task span.
    pub span_id: SpanId,
}

/// The instruments of the installed provider.
struct Installed {
    generation: u64,
    duration: Histogram<f64>,
    queue_wait: Histogram<f64>,
    run_duration: Histogram<f64>,
    run_active: opentelemetry::metrics::UpDownCounter<i64>,
    sites: Arc<Sites>,
    _observed: (
        opentelemetry::metrics::ObservableCounter<u64>,
        opentelemetry::metrics::ObservableUpDownCounter<i64>,
    ),
}

/// The bound handles of every task name, for the installed provider.
#[derive(Default)]
struct Sites {
    by_name: Mutex<HashMap<&'static str, &'static Bound>>,
}

impl Sites {
    fn all(&self) -> Vec<&'static Bound> {
        self.by_name
            .lock()
            .map(|sites| sites.values().copied().collect())
            .unwrap_or_default()
    }
}

/// 0: no provider installed; else the installation the bound handles of a
/// call site must belong to.
static GENERATION: AtomicU64 = AtomicU64::new(0);

/// Whether no meter provider is installed: tasks record no metrics.
#[inline]
pub(crate) fn is_off() -> bool {
    GENERATION.load(Ordering::Relaxed) == 0
}
/// Every call site's handles of every installation, for [`take_exemplars`]
/// (also after the provider was removed, for its final collection).
static EVERY_BOUND: Mutex<Vec<&'static Bound>> = Mutex::new(Vec::new());
static INSTALLED: RwLock<Option<Arc<Installed>>> = RwLock::new(None);

static SCOPE: LazyLock<InstrumentationScope> = LazyLock::new(|| {
    InstrumentationScope::builder("flowtrace")
        .with_version(env!("CARGO_PKG_VERSION"))
        .build()
});

/// Makes `provider` the one every task and run records its metrics with
/// (see the [module docs](self)); tasks already running record there too
/// from their end on.
///
/// ```
/// let provider = opentelemetry::metrics::noop::NoopMeterProvider::new();
/// flowtrace::metrics::set_meter_provider(&provider);
/// flowtrace::metrics::remove_meter_provider();
/// ```
pub fn set_meter_provider<P: MeterProvider + ?Sized>(provider: &P) {
    let meter = provider.meter_with_scope(SCOPE.clone());
    let mut slot = INSTALLED.write().unwrap_or_else(|e| e.into_inner());
    // Never reused: a call site's handles of an earlier provider must not
    // match a later one.
    static INSTALLATIONS: AtomicU64 = AtomicU64::new(0);
    let generation = INSTALLATIONS.fetch_add(1, Ordering::Relaxed) + 1;
    let installed = build(&meter, generation);
    *slot = Some(Arc::new(installed));
    GENERATION.store(generation, Ordering::Release);
}

/// After the meter provider is shut down: tasks and runs record nothing.
///
/// ```
/// use opentelemetry_sdk::metrics::SdkMeterProvider;
///
/// let provider = SdkMeterProvider::builder().build();
/// flowtrace::metrics::set_meter_provider(&provider);
/// let _ = provider.shutdown();
/// flowtrace::metrics::remove_meter_provider();
/// flowtrace::metrics::measure_task("after_shutdown", 1).end(flowtrace::metrics::Outcome::Ok, None);
/// ```
pub fn remove_meter_provider() {
    let mut slot = INSTALLED.write().unwrap_or_else(|e| e.into_inner());
    *slot = None;
    GENERATION.store(0, Ordering::Release);
}

fn build(meter: &Meter, generation: u64) -> Installed {
    let sites = Arc::new(Sites::default());
    let attempts = {
        let sites = sites.clone();
        meter
            .u64_observable_counter(TASK_ATTEMPTS)
            .with_unit("{attempt}")
            .with_description("Attempts of a task's body: one per call, plus one per retry.")
            .with_callback(move |observer| {
                for bound in sites.all() {
                    let first = bound.attempts.load(Ordering::Relaxed);
                    let retries = bound.retries.load(Ordering::Relaxed)
                        + bound.retried_apart.load(Ordering::Relaxed);
                    if first > 0 {
                        observer.observe(first, &bound.attempt_attributes[0]);
                    }
                    if retries > 0 {
                        observer.observe(retries, &bound.attempt_attributes[1]);
                    }
                }
            })
            .build()
    };
    let active = {
        let sites = sites.clone();
        meter
            .i64_observable_up_down_counter(TASK_ACTIVE)
            .with_unit("{task}")
            .with_description("Tasks started and not yet ended.")
            .with_callback(move |observer| {
                for bound in sites.all() {
                    observer.observe(bound.in_flight(), &bound.name_attribute);
                }
            })
            .build()
    };
    Installed {
        generation,
        duration: meter
            .f64_histogram(TASK_DURATION)
            .with_unit("s")
            .with_description("A task's duration, from its first poll to its end.")
            .with_boundaries(DURATION_BOUNDARIES.to_vec())
            .build(),
        queue_wait: meter
            .f64_histogram(TASK_QUEUE_WAIT)
            .with_unit("s")
            .with_description("How long a task waited for a slot or for its first poll.")
            .with_boundaries(DURATION_BOUNDARIES.to_vec())
            .build(),
        run_duration: meter
            .f64_histogram(RUN_DURATION)
            .with_unit("s")
            .with_description("A run's duration.")
            .with_boundaries(DURATION_BOUNDARIES.to_vec())
            .build(),
        run_active: meter
            .i64_up_down_counter(RUN_ACTIVE)
            .with_unit("{run}")
            .with_description("Runs started and not yet ended.")
            .build(),
        sites,
        _observed: (attempts, active),
    }
}

fn installed() -> Option<Arc<Installed>> {
    INSTALLED
        .read()
        .ok()
        .and_then(|slot| slot.as_ref().cloned())
}

/// The handles of one task name, bound once per installed provider. Kept
/// for the life of the process (about a kilobyte per task name and
/// installation), so a call site refers to them without counting references.
pub(crate) struct Bound {
    generation: u64,
    name: &'static str,
    /// The instruments, for binding an outcome the first time it occurs
    /// (a point bound but never recorded would be exported as zeros).
    installed: Arc<Installed>,
    duration: [OnceLock<BoundHistogram<f64>>; 5],
    queue_wait: OnceLock<BoundHistogram<f64>>,
    /// Executions started; those ended are counted by how they ended
    /// (`attempts`, `retries`, `cached`), so in flight is the difference
    /// and an end touches one counter.
    started: AtomicU64,
    attempts: AtomicU64,
    retries: AtomicU64,
    cached: AtomicU64,
    /// Retries counted apart from an execution (`retried`).
    retried_apart: AtomicU64,
    name_attribute: [KeyValue; 1],
    attempt_attributes: [[KeyValue; 2]; 2],
    /// Per outcome and bucket, the last sampled measurement kept.
    exemplars: Mutex<Vec<Option<Kept>>>,
    /// Per outcome and bucket, when (Unix nanoseconds) the kept exemplar
    /// ended; 0 when none is kept.
    kept_at: Box<[AtomicU64]>,
}

/// A bucket keeps at most one exemplar per this window (nanoseconds): a
/// busy bucket does not take a lock on every sampled task, and what an
/// exporter finds is at most this much older than the bucket's last
/// sampled measurement.
const EXEMPLAR_WINDOW_NANOS: u64 = 10_000_000;

pub(super) fn unix_nanos(time: SystemTime) -> u64 {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// An exemplar as a call site keeps it (nothing allocated per task).
#[derive(Clone, Copy)]
struct Kept {
    value: f64,
    time: SystemTime,
    trace_id: TraceId,
    span_id: SpanId,
}

impl Bound {
    fn new(installed: &Arc<Installed>, name: &'static str) -> Self {
        let attempt = |retry: bool| {
            [
                KeyValue::new(TASK_NAME, name),
                KeyValue::new(TASK_RETRY, retry),
            ]
        };
        Self {
            generation: installed.generation,
            name,
            installed: installed.clone(),
            duration: Default::default(),
            queue_wait: OnceLock::new(),
            started: AtomicU64::new(0),
            attempts: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            cached: AtomicU64::new(0),
            retried_apart: AtomicU64::new(0),
            name_attribute: [KeyValue::new(TASK_NAME, name)],
            attempt_attributes: [attempt(false), attempt(true)],
            exemplars: Mutex::new(Vec::new()),
            kept_at: (0..Outcome::ALL.len() * (DURATION_BOUNDARIES.len() + 1))
                .map(|_| AtomicU64::new(0))
                .collect(),
        }
    }

    /// Executions started and not yet ended.
    fn in_flight(&self) -> i64 {
        let ended = self.attempts.load(Ordering::Relaxed)
            + self.retries.load(Ordering::Relaxed)
            + self.cached.load(Ordering::Relaxed);
        let started = self.started.load(Ordering::Relaxed);
        i64::try_from(started.saturating_sub(ended)).unwrap_or(i64::MAX)
    }

    #[inline]
    fn duration(&self, outcome: Outcome) -> &BoundHistogram<f64> {
        self.duration[outcome.index()].get_or_init(|| {
            self.installed.duration.bind(&[
                KeyValue::new(TASK_NAME, self.name),
                KeyValue::new(TASK_OUTCOME, outcome.as_str()),
            ])
        })
    }

    /// Keeps an exemplar for a task that ended at `time` (`at`: the same
    /// instant in nanoseconds since the Unix epoch), at most one per bucket
    /// every [`EXEMPLAR_WINDOW_NANOS`].
    fn keep_exemplar(
        &self,
        outcome: Outcome,
        value: f64,
        (time, at): (SystemTime, u64),
        sc: &SpanContext,
    ) {
        let buckets = DURATION_BOUNDARIES.len() + 1;
        let bucket = DURATION_BOUNDARIES.partition_point(|bound| *bound < value);
        let slot = outcome.index() * buckets + bucket;
        let kept = self.kept_at[slot].load(Ordering::Relaxed);
        if kept != 0 && at.wrapping_sub(kept) < EXEMPLAR_WINDOW_NANOS {
            return;
        }
        self.kept_at[slot].store(at.max(1), Ordering::Relaxed);
        let Ok(mut slots) = self.exemplars.lock() else {
            return;
        };
        if slots.is_empty() {
            slots.resize(Outcome::ALL.len() * buckets, None);
        }
        slots[slot] = Some(Kept {
            value,
            time,
            trace_id: sc.trace_id(),
            span_id: sc.span_id(),
        });
    }
}

/// The bound handles of `name` for the installation `generation`.
#[cold]
fn bound_for(name: &'static str, generation: u64) -> Option<&'static Bound> {
    let installed = installed()?;
    if installed.generation != generation {
        return None;
    }
    let mut sites = installed.sites.by_name.lock().ok()?;
    let bound = *sites.entry(name).or_insert_with(|| {
        let bound: &'static Bound = Box::leak(Box::new(Bound::new(&installed, name)));
        if let Ok(mut every) = EVERY_BOUND.lock() {
            every.push(bound);
        }
        bound
    });
    Some(bound)
}

/// Takes the exemplars kept since the last call, for an exporter to put on
/// the data points with the same instrument and attributes.
///
/// ```
/// // Nothing measured yet (no meter provider): nothing kept.
/// assert!(flowtrace::metrics::take_exemplars().is_empty());
/// ```
pub fn take_exemplars() -> Vec<Exemplar> {
    let every = EVERY_BOUND
        .lock()
        .map(|every| every.clone())
        .unwrap_or_default();
    let buckets = DURATION_BOUNDARIES.len() + 1;
    let mut out = Vec::new();
    for bound in every {
        let Ok(mut slots) = bound.exemplars.lock() else {
            continue;
        };
        for (i, slot) in slots.iter_mut().enumerate() {
            let Some(kept) = slot.take() else { continue };
            bound.kept_at[i].store(0, Ordering::Relaxed);
            let outcome = Outcome::ALL[i / buckets];
            out.push(Exemplar {
                instrument: TASK_DURATION,
                attributes: vec![
                    KeyValue::new(TASK_NAME, bound.name),
                    KeyValue::new(TASK_OUTCOME, outcome.as_str()),
                ],
                value: kept.value,
                time: kept.time,
                trace_id: kept.trace_id,
                span_id: kept.span_id,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData};
    use opentelemetry_sdk::metrics::{InMemoryMetricExporter, PeriodicReader, SdkMeterProvider};

    #[crate::traced(crate = crate)]
    async fn measured() {}

    fn provider() -> (SdkMeterProvider, InMemoryMetricExporter) {
        let exporter = InMemoryMetricExporter::default();
        let provider = SdkMeterProvider::builder()
            .with_reader(PeriodicReader::builder(exporter.clone()).build())
            .build();
        (provider, exporter)
    }

    /// The count of `flowtrace.task.duration` for task `measured`.
    fn count(provider: &SdkMeterProvider, exporter: &InMemoryMetricExporter) -> u64 {
        provider.force_flush().unwrap();
        let Some(last) = exporter.get_finished_metrics().unwrap().pop() else {
            return 0;
        };
        let mut count = 0;
        for metric in last.scope_metrics().flat_map(|s| s.metrics()) {
            if metric.name() != TASK_DURATION {
                continue;
            }
            if let AggregatedMetrics::F64(MetricData::Histogram(h)) = metric.data() {
                count += h
                    .data_points()
                    .filter(|p| {
                        p.attributes().any(|kv| {
                            kv.key.as_str() == TASK_NAME && kv.value.as_str() == "measured"
                        })
                    })
                    .map(|p| p.count())
                    .sum::<u64>();
            }
        }
        count
    }

    #[tokio::test]
    async fn each_installed_provider_gets_the_tasks_that_end_under_it() {
        let (first, first_out) = provider();
        set_meter_provider(&first);
        measured().await;
        measured().await;
        remove_meter_provider();
        measured().await;
        let (second, second_out) = provider();
        set_meter_provider(&second);
        measured().await;
        remove_meter_provider();
        assert_eq!(count(&first, &first_out), 2);
        assert_eq!(
            count(&second, &second_out),
            1,
            "not the first provider's handles"
        );
    }
}
