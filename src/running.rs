//! Running spans, visible before they end.
//!
//! An OpenTelemetry span is exported only once it ends, so a task that runs
//! for hours shows nothing until then, its children look like orphans, and
//! a process killed mid-task loses it. flowtrace therefore writes log
//! records about spans that are still running, through the logger provider
//! the telemetry setup installed ([`set_logger_provider`](crate::set_logger_provider)),
//! following the partial-span design of OpenTelemetry's `PartialSpanProcessor`
//! proposals (heartbeat logs carrying the span so far):
//!
//! - **A start record** when a task or run span starts and records (never
//!   for a span the sampler dropped): event name `flowtrace.span.start`,
//!   the record's trace and span id are the span's, attributes
//!   `partial.event = "start"`, `flowtrace.span.name`,
//!   `flowtrace.span.parent_id` (16 hex digits; absent on a root) and
//!   `flowtrace.run.id` inside a run; the body is the span name. A handful
//!   of attributes and no formatting: one record per span in the log
//!   pipeline's batch queue.
//! - **Heartbeats**, opt-in ([`set_heartbeat_interval`], or in
//!   flowtrace-telemetry `FLOWTRACE_HEARTBEAT_INTERVAL` / the builder's
//!   `heartbeat_interval`): every interval, for each span running for at
//!   least one interval, a record with event name `flowtrace.span.heartbeat`,
//!   `partial.event = "heartbeat"`, `partial.frequency = "<ms>ms"`, the same
//!   ids, and as body the span so far as OTLP/JSON `TracesData` (one span,
//!   no end time, the attributes it was started with plus those set since
//!   through flowtrace: `fields`, inputs, [`current_span`](crate::current_span)).
//!   Heartbeats come from one background thread, so a task blocked for hours
//!   still gets them; the registry they read costs a lock per span start and
//!   end, which is why they are off by default.
//!
//! A span that ends normally is exported as always and nothing else is
//! written (no stop record: the span is the stop record). A backend shows
//! running tasks by taking start and heartbeat records whose span id has no
//! span yet; `flowtrace view --follow` does that with the log file.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use opentelemetry::logs::{AnyValue, LogRecord as _, Logger as _, Severity};
use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt as _};
use opentelemetry::{Context, Key, KeyValue, StringValue, Value};
use opentelemetry_sdk::logs::SdkLogger;

use crate::attributes::{
    PARENT_SPAN_ID, PARTIAL_EVENT, PARTIAL_FREQUENCY, RUN_ID, SPAN_HEARTBEAT_EVENT, SPAN_NAME,
    SPAN_START_EVENT,
};

struct Settings {
    logger: Option<SdkLogger>,
    start_records: bool,
    heartbeat: Option<Duration>,
}

static SETTINGS: RwLock<Settings> = RwLock::new(Settings {
    logger: None,
    start_records: true,
    heartbeat: None,
});
/// A logger is installed and start records or heartbeats are on: the only
/// thing a span start reads when they are not.
static ACTIVE: AtomicBool = AtomicBool::new(false);
/// Heartbeats are on: spans register in [`REGISTRY`].
static TRACKING: AtomicBool = AtomicBool::new(false);
/// Bumped on every change of the settings, so each thread re-reads them
/// once instead of taking the lock per span.
static GENERATION: AtomicU64 = AtomicU64::new(1);

#[derive(Clone)]
struct Snapshot {
    logger: SdkLogger,
    start_records: bool,
    heartbeat: Option<Duration>,
}

thread_local! {
    static CACHED: RefCell<(u64, Option<Snapshot>)> = const { RefCell::new((0, None)) };
    /// The last parent id written on this thread, as its record value:
    /// siblings started one after the other (a fan-out, a loop of calls)
    /// share one string instead of allocating one each.
    static LAST_PARENT: RefCell<Option<(SpanId, StringValue)>> = const { RefCell::new(None) };
}

fn settings() -> std::sync::RwLockWriteGuard<'static, Settings> {
    SETTINGS.write().unwrap_or_else(|e| e.into_inner())
}

fn changed(settings: &Settings) {
    let active =
        settings.logger.is_some() && (settings.start_records || settings.heartbeat.is_some());
    TRACKING.store(
        settings.logger.is_some() && settings.heartbeat.is_some(),
        Ordering::Release,
    );
    ACTIVE.store(active, Ordering::Release);
    GENERATION.fetch_add(1, Ordering::AcqRel);
    WAKE.1.notify_all();
}

/// The logger records go through (`None`: none are written).
pub(crate) fn set_logger(logger: Option<SdkLogger>) {
    let mut settings = settings();
    settings.logger = logger;
    changed(&settings);
}

/// Turns start records on (the default) or off.
///
/// ```
/// flowtrace::running::set_start_records(false);
/// flowtrace::running::set_start_records(true);
/// ```
pub fn set_start_records(on: bool) {
    let mut settings = settings();
    settings.start_records = on;
    changed(&settings);
}

/// Turns heartbeats on with `interval` between them, or off with `None`
/// (the default). An interval under 100 ms is raised to 100 ms.
///
/// ```
/// use std::time::Duration;
/// flowtrace::running::set_heartbeat_interval(Some(Duration::from_secs(30)));
/// flowtrace::running::set_heartbeat_interval(None);
/// ```
pub fn set_heartbeat_interval(interval: Option<Duration>) {
    let mut settings = settings();
    settings.heartbeat = interval.map(|i| i.max(Duration::from_millis(100)));
    changed(&settings);
}

/// The heartbeat interval in force.
///
/// ```
/// use std::time::Duration;
///
/// assert_eq!(flowtrace::running::heartbeat_interval(), None, "off by default");
/// flowtrace::running::set_heartbeat_interval(Some(Duration::from_secs(30)));
/// assert_eq!(flowtrace::running::heartbeat_interval(), Some(Duration::from_secs(30)));
/// ```
pub fn heartbeat_interval() -> Option<Duration> {
    SETTINGS.read().unwrap_or_else(|e| e.into_inner()).heartbeat
}

fn with_snapshot<T>(f: impl FnOnce(&Snapshot) -> T) -> Option<T> {
    if !ACTIVE.load(Ordering::Acquire) {
        return None;
    }
    let generation = GENERATION.load(Ordering::Acquire);
    CACHED.with(|cached| {
        let mut cached = cached.borrow_mut();
        if cached.0 != generation {
            let settings = SETTINGS.read().unwrap_or_else(|e| e.into_inner());
            cached.1 = settings.logger.clone().map(|logger| Snapshot {
                logger,
                start_records: settings.start_records,
                heartbeat: settings.heartbeat,
            });
            cached.0 = generation;
        }
        cached.1.as_ref().map(f)
    })
}

/// What a span starts with, kept for heartbeats: `None` (and nothing
/// cloned) unless heartbeats are on.
pub(crate) fn before_start(attributes: &[KeyValue]) -> Option<Vec<KeyValue>> {
    TRACKING
        .load(Ordering::Acquire)
        .then(|| attributes.to_vec())
}

/// A span started and records: write its start record and, with heartbeats
/// on, register it. `cx` holds the span, `parent` is what it started under.
pub(crate) fn started(
    cx: &Context,
    parent: &Context,
    name: StringValue,
    run_id: Option<StringValue>,
    attributes: Option<Vec<KeyValue>>,
) {
    with_snapshot(|snapshot| {
        let span = cx.span();
        let sc = span.span_context();
        let parent = parent.span().span_context().clone();
        let parent = parent
            .is_valid()
            .then(|| parent.span_id())
            .filter(|id| *id != sc.span_id());
        if snapshot.start_records {
            let mut record = snapshot.logger.create_log_record();
            record.set_event_name(SPAN_START_EVENT);
            record.set_target("flowtrace::running");
            record.set_severity_number(Severity::Info);
            record.set_severity_text("INFO");
            record.set_trace_context(sc.trace_id(), sc.span_id(), Some(sc.trace_flags()));
            // A task's name is static and a run's values are shared: no copy.
            record.set_body(AnyValue::String(name.clone()));
            record.add_attribute(Key::from_static_str(PARTIAL_EVENT), "start");
            record.add_attribute(
                Key::from_static_str(SPAN_NAME),
                AnyValue::String(name.clone()),
            );
            if let Some(parent) = parent {
                record.add_attribute(
                    Key::from_static_str(PARENT_SPAN_ID),
                    AnyValue::String(parent_id(parent)),
                );
            }
            if let Some(run_id) = &run_id {
                record.add_attribute(
                    Key::from_static_str(RUN_ID),
                    AnyValue::String(run_id.clone()),
                );
            }
            snapshot.logger.emit(record);
        }
        if let (Some(interval), Some(attributes)) = (snapshot.heartbeat, attributes) {
            let entry = Running {
                sc: sc.clone(),
                parent,
                name: name.as_str().to_owned(),
                run_id: run_id.map(|id| id.as_str().to_owned()),
                start: SystemTime::now(),
                next: Instant::now() + interval,
                attributes,
            };
            registry().insert(sc.span_id(), entry);
            ticker();
        }
    });
}

/// `flowtrace.span.parent_id`'s value for `id`: the string of the last
/// parent written on this thread when it is the same span, a new one
/// otherwise.
fn parent_id(id: SpanId) -> StringValue {
    LAST_PARENT
        .try_with(|last| {
            let mut last = last.borrow_mut();
            match &*last {
                Some((cached, hex)) if *cached == id => hex.clone(),
                _ => {
                    let hex = hex_id(id);
                    *last = Some((id, hex.clone()));
                    hex
                }
            }
        })
        // The thread is exiting: no cache.
        .unwrap_or_else(|_| hex_id(id))
}

/// A span id as 16 lowercase hex digits, in a shared string: the log
/// pipeline clones each record once on its way to the exporter, and a
/// shared value is cloned without a copy.
fn hex_id(id: SpanId) -> StringValue {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut hex = [0u8; 16];
    for (i, byte) in id.to_bytes().into_iter().enumerate() {
        hex[2 * i] = DIGITS[usize::from(byte >> 4)];
        hex[2 * i + 1] = DIGITS[usize::from(byte & 0x0f)];
    }
    let hex = std::str::from_utf8(&hex).unwrap_or_default();
    StringValue::from(std::sync::Arc::<str>::from(hex))
}

/// An attribute set on a running span after it started, for its heartbeats.
pub(crate) fn attribute(sc: &SpanContext, attribute: &KeyValue) {
    if TRACKING.load(Ordering::Acquire) {
        if let Some(entry) = registry().get_mut(&sc.span_id()) {
            entry.set(attribute.clone());
        }
    }
}

/// The span in `cx` ends: no more heartbeats for it.
#[inline]
pub(crate) fn ended(cx: &Context) {
    if TRACKING.load(Ordering::Acquire) {
        let span = cx.span();
        registry().remove(&span.span_context().span_id());
    }
}

/// How many spans heartbeats are being written for.
///
/// ```
/// // Heartbeats are off: no span is tracked.
/// assert_eq!(flowtrace::running::running_count(), 0);
/// ```
pub fn running_count() -> usize {
    registry().len()
}

struct Running {
    sc: SpanContext,
    parent: Option<SpanId>,
    name: String,
    run_id: Option<String>,
    start: SystemTime,
    /// When its next heartbeat is due.
    next: Instant,
    attributes: Vec<KeyValue>,
}

impl Running {
    fn set(&mut self, attribute: KeyValue) {
        match self
            .attributes
            .iter_mut()
            .find(|kv| kv.key == attribute.key)
        {
            Some(kv) => *kv = attribute,
            None => self.attributes.push(attribute),
        }
    }

    /// The span so far as OTLP/JSON `TracesData`.
    fn otlp_json(&self) -> String {
        let nanos = self
            .start
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let mut span = serde_json::json!({
            "traceId": self.sc.trace_id().to_string(),
            "spanId": self.sc.span_id().to_string(),
            "name": self.name,
            "kind": 1,
            "startTimeUnixNano": nanos.to_string(),
            "attributes": self.attributes.iter().map(json_attribute).collect::<Vec<_>>(),
        });
        if let Some(parent) = self.parent {
            span["parentSpanId"] = parent.to_string().into();
        }
        serde_json::json!({
            "resourceSpans": [{
                "scopeSpans": [{
                    "scope": {"name": "flowtrace"},
                    "spans": [span],
                }],
            }],
        })
        .to_string()
    }
}

fn json_attribute(kv: &KeyValue) -> serde_json::Value {
    let value = match &kv.value {
        Value::Bool(b) => serde_json::json!({"boolValue": b}),
        Value::I64(i) => serde_json::json!({"intValue": i.to_string()}),
        Value::F64(f) => serde_json::json!({"doubleValue": f}),
        other => serde_json::json!({"stringValue": other.to_string()}),
    };
    serde_json::json!({"key": kv.key.as_str(), "value": value})
}

static REGISTRY: Mutex<Option<HashMap<SpanId, Running>>> = Mutex::new(None);

struct Registry(MutexGuard<'static, Option<HashMap<SpanId, Running>>>);

impl Registry {
    fn map(&mut self) -> &mut HashMap<SpanId, Running> {
        self.0.get_or_insert_with(HashMap::new)
    }
    fn insert(mut self, id: SpanId, entry: Running) {
        self.map().insert(id, entry);
    }
    fn get_mut(&mut self, id: &SpanId) -> Option<&mut Running> {
        self.map().get_mut(id)
    }
    fn remove(mut self, id: &SpanId) {
        self.map().remove(id);
    }
    fn len(mut self) -> usize {
        self.map().len()
    }
}

fn registry() -> Registry {
    Registry(REGISTRY.lock().unwrap_or_else(|e| e.into_inner()))
}

static WAKE: (Mutex<()>, Condvar) = (Mutex::new(()), Condvar::new());
static TICKER: AtomicBool = AtomicBool::new(false);

/// Starts the heartbeat thread once.
fn ticker() {
    if TICKER.swap(true, Ordering::AcqRel) {
        return;
    }
    let spawned = std::thread::Builder::new()
        .name("flowtrace-heartbeat".into())
        .spawn(|| {
            loop {
                let Some(interval) = heartbeat_interval() else {
                    let guard = WAKE.0.lock().unwrap_or_else(|e| e.into_inner());
                    let _unused = WAKE
                        .1
                        .wait_timeout(guard, Duration::from_secs(1))
                        .unwrap_or_else(|e| e.into_inner());
                    continue;
                };
                // Wake often enough that a heartbeat is late by a tenth of
                // the interval at most (and at most a second).
                let tick = (interval / 10).clamp(Duration::from_millis(10), Duration::from_secs(1));
                {
                    let guard = WAKE.0.lock().unwrap_or_else(|e| e.into_inner());
                    let _unused = WAKE
                        .1
                        .wait_timeout(guard, tick)
                        .unwrap_or_else(|e| e.into_inner());
                }
                beat();
            }
        });
    if spawned.is_err() {
        // No thread, no heartbeats; start records still go out.
        TICKER.store(false, Ordering::Release);
    }
}

/// Writes a heartbeat for every span whose next one is due.
fn beat() {
    let (logger, interval) = {
        let settings = SETTINGS.read().unwrap_or_else(|e| e.into_inner());
        match (&settings.logger, settings.heartbeat) {
            (Some(logger), Some(interval)) => (logger.clone(), interval),
            _ => return,
        }
    };
    // Build the bodies under the lock, emit outside it.
    type Due = (SpanContext, String, Option<String>, Option<String>, String);
    let due: Vec<Due> = {
        let now = Instant::now();
        let mut registry = registry();
        registry
            .map()
            .values_mut()
            .filter(|entry| entry.next <= now)
            .map(|entry| {
                entry.next = (entry.next + interval).max(now);
                (
                    entry.sc.clone(),
                    entry.name.clone(),
                    entry.parent.map(|p| p.to_string()),
                    entry.run_id.clone(),
                    entry.otlp_json(),
                )
            })
            .collect()
    };
    let frequency = format!("{}ms", interval.as_millis());
    for (sc, name, parent, run_id, body) in due {
        let mut record = logger.create_log_record();
        record.set_event_name(SPAN_HEARTBEAT_EVENT);
        record.set_target("flowtrace::running");
        record.set_severity_number(Severity::Info);
        record.set_severity_text("INFO");
        record.set_trace_context(sc.trace_id(), sc.span_id(), Some(sc.trace_flags()));
        record.set_body(AnyValue::String(body.into()));
        record.add_attribute(Key::from_static_str(PARTIAL_EVENT), "heartbeat");
        record.add_attribute(Key::from_static_str(PARTIAL_FREQUENCY), frequency.clone());
        record.add_attribute(Key::from_static_str(SPAN_NAME), name);
        if let Some(parent) = parent {
            record.add_attribute(Key::from_static_str(PARENT_SPAN_ID), parent);
        }
        if let Some(run_id) = run_id {
            record.add_attribute(Key::from_static_str(RUN_ID), run_id);
        }
        logger.emit(record);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn siblings_share_their_parent_id_string() {
        let a = SpanId::from_bytes([1, 2, 3, 4, 5, 6, 7, 0xab]);
        let b = SpanId::from_bytes([0xff; 8]);
        let first = parent_id(a);
        let sibling = parent_id(a);
        assert_eq!(first.as_str(), "01020304050607ab");
        assert_eq!(
            first.as_str().as_ptr(),
            sibling.as_str().as_ptr(),
            "siblings share one string"
        );
        let other = parent_id(b);
        assert_eq!(other.as_str(), "ffffffffffffffff");
        let back = parent_id(a);
        assert_eq!(back.as_str(), "01020304050607ab");
        assert_eq!(
            first.as_str(),
            "01020304050607ab",
            "a shared string is never rewritten"
        );
    }
}
