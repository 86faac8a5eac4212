//! flowtrace's batch processor, for every signal: spans
//! ([`SpanProcessor`]) and log records ([`LogProcessor`]) alike, with the
//! same guarantees; an exporter is anything that implements [`Export`] for
//! the signal's item.
//!
//! Why not the SDK's `BatchSpanProcessor` (0.33): it drops a batch whose
//! export failed (so a collector restart loses what was queued), ignores
//! `OTEL_BSP_EXPORT_TIMEOUT`, waits a fixed 5 s per `force_flush`, and logs
//! only its first dropped span. This one:
//!
//! - keeps a batch whose export failed in a retryable way (see
//!   [`retry`](super::retry)) at the head of the queue and retries it with
//!   backoff, so spans queued during an outage arrive once the collector is
//!   back — within `OTEL_BSP_MAX_QUEUE_SIZE` spans in total, queued or
//!   retained;
//! - counts every span it loses, by reason ([`ExportStats`]);
//! - bounds shutdown by one deadline, which also cuts short an export in
//!   flight, and bounds every export by the export timeout;
//! - exports on its own thread inside its own small tokio runtime, so no
//!   call depends on the application's runtime (a guard dropped on the main
//!   thread of a `current_thread` runtime cannot deadlock), and the thread
//!   records no telemetry of its own (no feedback loop through the exporter).
//!
//! The span path (`on_end`) is two atomic adds and a `try_send` on a bounded
//! channel; it never allocates beyond the channel slot, and it never blocks
//! unless the exporter is local and the queue full ([`WhenFull::Wait`]).

use std::collections::VecDeque;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use opentelemetry::{Context, InstrumentationScope};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::logs::{LogProcessor, SdkLogRecord};
use opentelemetry_sdk::trace::{Span, SpanData, SpanProcessor};
use tokio::runtime::Runtime;

pub(crate) use super::export::{Export, Item, LogItem};
use super::retry::{Backoff, Outcome};
use super::stats::{Counters, ExportStats};

/// How much earlier than the caller's deadline the worker stops exporting,
/// so that its answer (thread wake-up, reply) arrives before the caller
/// gives up: the caller never waits past its deadline. A tenth of the time
/// available, at most this.
const REPLY_GRACE: Duration = Duration::from_millis(50);

/// The deadline the worker keeps for a caller waiting until `deadline`.
fn worker_deadline(deadline: Instant) -> Instant {
    let now = Instant::now();
    let grace = REPLY_GRACE.min(deadline.saturating_duration_since(now) / 10);
    deadline - grace
}

/// `OTEL_BSP_*` as the processor uses them.
#[derive(Clone, Debug)]
pub(crate) struct Settings {
    pub(crate) max_queue_size: usize,
    pub(crate) max_export_batch_size: usize,
    pub(crate) schedule_delay: Duration,
    /// Bounds each export attempt, each flush and the whole shutdown.
    pub(crate) export_timeout: Duration,
    /// What a new item meets when the queue is full.
    pub(crate) when_full: WhenFull,
    /// Whether the exporter's runtime gets a thread of its own for the
    /// tasks the exporter spawns (tonic's HTTP/2 connection): they then run
    /// beside the worker's encoding instead of only while it waits.
    pub(crate) io_thread: bool,
}

/// The policy for an item that arrives while the queue holds
/// `max_queue_size` items.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum WhenFull {
    /// Drop it and count it (`dropped_queue_full`): the specification's
    /// behaviour, right for a network exporter, whose collector may be slow
    /// or away for minutes — the program must not wait for it.
    Drop,
    /// Wait until the worker has made room, at most the export timeout,
    /// then drop and count it. For a local exporter (the file), whose
    /// writes take microseconds: a fan-out that ends spans faster than they
    /// can be written is slowed down to the write rate instead of losing
    /// them.
    Wait,
}

enum Control {
    /// A batch's worth of spans arrived: export without waiting for the timer.
    Wake,
    SetResource(Resource),
    Flush {
        deadline: Instant,
        reply: mpsc::Sender<OTelSdkResult>,
    },
    Shutdown {
        deadline: Instant,
        reply: mpsc::Sender<OTelSdkResult>,
    },
}

/// What the span path and the worker share.
#[derive(Debug)]
struct State {
    /// Spans in the channel plus spans the worker holds: at most the queue size.
    held: AtomicUsize,
    /// Spans sent since the worker last drained the channel.
    fresh: AtomicUsize,
    /// Shutdown has begun: later spans are counted as dropped.
    closed: AtomicBool,
    /// The shutdown deadline, for cutting short an export in flight.
    shutdown_deadline: Mutex<Option<Instant>>,
    shutdown_started: tokio::sync::Notify,
    /// Signalled when the worker has settled items ([`WhenFull::Wait`]).
    room: (Mutex<()>, Condvar),
    counters: Counters,
    settings: Settings,
}

/// The sending side; dropping the last one lets the worker finish.
#[derive(Debug)]
struct Handle<T> {
    state: Arc<State>,
    items: SyncSender<T>,
    control: mpsc::Sender<Control>,
}

/// The batch processor of one exporter (cheap to clone: the guard keeps
/// one to read stats and to shut down all processors against one
/// deadline). `Processor` alone is the span processor.
#[derive(Debug)]
pub(crate) struct Processor<T = SpanData> {
    handle: Arc<Handle<T>>,
}

impl<T> Clone for Processor<T> {
    fn clone(&self) -> Self {
        Self {
            handle: self.handle.clone(),
        }
    }
}

/// See [`Processor::downgrade`].
#[derive(Clone, Debug)]
pub(crate) struct WeakProcessor(std::sync::Weak<Handle<SpanData>>);

impl WeakProcessor {
    pub(crate) fn upgrade(&self) -> Option<Processor> {
        self.0.upgrade().map(|handle| Processor { handle })
    }
}

/// A flush or shutdown under way: [`Processor::begin_flush`] or
/// [`Processor::begin_shutdown`], then [`Pending::wait`].
pub(crate) struct Pending {
    reply: Option<Receiver<OTelSdkResult>>,
    deadline: Instant,
}

impl<T: Item> Processor<T> {
    /// Builds the runtime, then the exporter inside it (tonic spawns its
    /// connection task at build time, onto the current runtime), then
    /// starts the worker thread.
    pub(crate) fn start<E: Export<T>>(
        settings: Settings,
        make: impl FnOnce() -> Result<E, String>,
    ) -> Result<Processor<T>, String> {
        let mut builder = if settings.io_thread {
            let mut builder = tokio::runtime::Builder::new_multi_thread();
            builder
                .worker_threads(1)
                .thread_name("flowtrace-export-io")
                // As on the worker thread: what the transport logs or traces
                // here is not recorded (no feedback loop through the exporter).
                // The thread lives as long as the runtime: the guards are
                // never to be dropped.
                .on_thread_start(|| {
                    ON_WORKER.with(|w| w.set(true));
                    std::mem::forget(tracing::dispatcher::set_default(&tracing::Dispatch::none()));
                    std::mem::forget(Context::enter_telemetry_suppressed_scope());
                });
            builder
        } else {
            tokio::runtime::Builder::new_current_thread()
        };
        let runtime =
            OwnRuntime(Some(builder.enable_all().build().map_err(|e| {
                format!("cannot start the exporter's runtime: {e}")
            })?));
        let exporter = {
            let _entered = runtime.handle().enter();
            make()?
        };
        let (items_tx, items_rx) = mpsc::sync_channel(settings.max_queue_size);
        let (control_tx, control_rx) = mpsc::channel();
        let state = Arc::new(State {
            held: AtomicUsize::new(0),
            fresh: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
            shutdown_deadline: Mutex::new(None),
            shutdown_started: tokio::sync::Notify::new(),
            room: (Mutex::new(()), Condvar::new()),
            counters: Counters::default(),
            settings: settings.clone(),
        });
        let worker = Worker {
            exporter: Some(exporter),
            runtime,
            items: items_rx,
            control: control_rx,
            state: state.clone(),
            pending: VecDeque::new(),
            backoff: Backoff::default(),
            retry_at: None,
            next_export: Instant::now() + settings.schedule_delay,
        };
        std::thread::Builder::new()
            .name("flowtrace-export".into())
            .spawn(move || worker.run())
            .map_err(|e| format!("cannot start the exporter's thread: {e}"))?;
        Ok(Processor {
            handle: Arc::new(Handle {
                state,
                items: items_tx,
                control: control_tx,
            }),
        })
    }

    /// Queues one item (the span and the log record path); never blocks
    /// under [`WhenFull::Drop`].
    pub(crate) fn submit(&self, item: T) {
        let state = &self.handle.state;
        let counters = &state.counters;
        if state.closed.load(Ordering::Relaxed) {
            counters.dropped_at_shutdown.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let max = state.settings.max_queue_size;
        if state.held.fetch_add(1, Ordering::AcqRel) >= max {
            state.held.fetch_sub(1, Ordering::AcqRel);
            if !(state.settings.when_full == WhenFull::Wait && self.wait_for_room()) {
                counters.dropped_queue_full.fetch_add(1, Ordering::Relaxed);
                return;
            }
        }
        match self.handle.items.try_send(item) {
            Ok(()) => {
                let fresh = state.fresh.fetch_add(1, Ordering::AcqRel) + 1;
                if fresh == state.settings.max_export_batch_size {
                    self.send(Control::Wake);
                }
            }
            Err(TrySendError::Full(_)) => {
                state.held.fetch_sub(1, Ordering::AcqRel);
                counters.dropped_queue_full.fetch_add(1, Ordering::Relaxed);
            }
            Err(TrySendError::Disconnected(_)) => {
                state.held.fetch_sub(1, Ordering::AcqRel);
                counters.dropped_at_shutdown.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// [`WhenFull::Wait`]: waits until a slot is reserved for the caller
    /// (`true`), or the export timeout has passed or shutdown has begun
    /// (`false`). Never on the worker's own thread, which makes the room.
    fn wait_for_room(&self) -> bool {
        let state = &self.handle.state;
        if on_worker_thread() {
            return false;
        }
        // The worker may be waiting for its timer: a full queue is a batch.
        self.send(Control::Wake);
        let max = state.settings.max_queue_size;
        let deadline = Instant::now() + state.settings.export_timeout;
        let (lock, room) = &state.room;
        let mut guard = lock.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if state.closed.load(Ordering::Acquire) {
                return false;
            }
            if state.held.fetch_add(1, Ordering::AcqRel) < max {
                return true;
            }
            state.held.fetch_sub(1, Ordering::AcqRel);
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            // The worker notifies under the lock, so no wake-up is lost; the
            // bound only re-checks shutdown now and then.
            guard = room
                .wait_timeout(guard, left.min(Duration::from_millis(50)))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    fn send(&self, message: Control) -> bool {
        self.handle.control.send(message).is_ok()
    }

    /// The counts so far.
    pub(crate) fn stats(&self) -> ExportStats {
        let state = &self.handle.state;
        state
            .counters
            .snapshot(state.held.load(Ordering::Relaxed) as u64)
    }

    /// The configured bound of one flush or of the whole shutdown.
    pub(crate) fn timeout(&self) -> Duration {
        self.handle.state.settings.export_timeout
    }

    /// Exports everything queued, waiting until `deadline` at most.
    pub(crate) fn flush_until(&self, deadline: Instant) -> OTelSdkResult {
        self.begin_flush(deadline).wait()
    }

    /// Asks for a flush until `deadline`; [`Pending::wait`] for the answer.
    pub(crate) fn begin_flush(&self, deadline: Instant) -> Pending {
        let (reply, answer) = mpsc::channel();
        let sent = !self.handle.state.closed.load(Ordering::Acquire)
            && self.send(Control::Flush {
                deadline: worker_deadline(deadline),
                reply,
            });
        Pending {
            reply: sent.then_some(answer),
            deadline,
        }
    }

    /// Starts shutting down: from now on spans are not queued, and the
    /// worker exports what it holds until `deadline`. `None` when shutdown
    /// had already begun.
    pub(crate) fn begin_shutdown(&self, deadline: Instant) -> Option<Pending> {
        let state = &self.handle.state;
        if state.closed.swap(true, Ordering::AcqRel) {
            return None;
        }
        let inner = worker_deadline(deadline);
        *state
            .shutdown_deadline
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(inner);
        // Stored as a permit if no export is in flight right now.
        state.shutdown_started.notify_one();
        let (reply, answer) = mpsc::channel();
        let sent = self.send(Control::Shutdown {
            deadline: inner,
            reply,
        });
        Some(Pending {
            reply: sent.then_some(answer),
            deadline,
        })
    }
}

impl Processor {
    /// A reference that does not keep the worker alive (for the panic hook).
    pub(crate) fn downgrade(&self) -> WeakProcessor {
        WeakProcessor(Arc::downgrade(&self.handle))
    }
}

impl Pending {
    /// The worker's answer, or `Timeout` once the deadline has passed:
    /// never longer.
    pub(crate) fn wait(self) -> OTelSdkResult {
        let Some(reply) = self.reply else {
            return Err(OTelSdkError::AlreadyShutdown);
        };
        let wait = self.deadline.saturating_duration_since(Instant::now());
        match reply.recv_timeout(wait) {
            Ok(result) => result,
            Err(RecvTimeoutError::Timeout) => Err(OTelSdkError::Timeout(wait)),
            Err(RecvTimeoutError::Disconnected) => Err(OTelSdkError::InternalFailure(
                "the exporter thread has stopped".into(),
            )),
        }
    }
}

impl SpanProcessor for Processor {
    fn on_start(&self, _span: &mut Span, _cx: &Context) {}

    fn on_end(&self, span: SpanData) {
        if span.span_context.is_sampled() {
            self.submit(span);
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.flush_now()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.shutdown_within(timeout)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.send(Control::SetResource(resource.clone()));
    }
}

/// What the SDK's `SpanProcessor` and `LogProcessor` ask of either signal.
impl<T: Item> Processor<T> {
    /// Exports what is queued, bounded by the export timeout.
    fn flush_now(&self) -> OTelSdkResult {
        self.flush_until(Instant::now() + self.timeout())
    }

    /// Shuts down within `timeout` (at most the export timeout).
    fn shutdown_within(&self, timeout: Duration) -> OTelSdkResult {
        let deadline = Instant::now() + timeout.min(self.timeout());
        match self.begin_shutdown(deadline) {
            Some(pending) => pending.wait(),
            // The guard shut it down already (the provider then asks again).
            None => Ok(()),
        }
    }
}

impl LogProcessor for Processor<LogItem> {
    fn emit(&self, record: &mut SdkLogRecord, scope: &InstrumentationScope) {
        self.submit(LogItem {
            record: record.clone(),
            scope: scope.clone(),
        });
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.flush_now()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.shutdown_within(timeout)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.send(Control::SetResource(resource.clone()));
    }
}

thread_local! {
    /// Set on worker threads: a panic hook must not wait for its own thread.
    static ON_WORKER: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether the current thread is an exporter thread.
pub(crate) fn on_worker_thread() -> bool {
    ON_WORKER.with(|w| w.get())
}

/// The exporter's runtime. Dropping a tokio runtime inside another
/// runtime's async context panics, and `init()` is often called in one (a
/// failed build drops it right there), so this one is shut down in the
/// background, never blocking.
struct OwnRuntime(Option<Runtime>);

impl OwnRuntime {
    fn handle(&self) -> &tokio::runtime::Handle {
        match &self.0 {
            Some(runtime) => runtime.handle(),
            None => unreachable!("the runtime is only taken on drop"),
        }
    }

    fn block_on<F: Future>(&self, future: F) -> F::Output {
        match &self.0 {
            Some(runtime) => runtime.block_on(future),
            None => unreachable!("the runtime is only taken on drop"),
        }
    }
}

impl Drop for OwnRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

/// The processor's thread.
struct Worker<E, T> {
    /// `Option` so `Drop` can drop it inside the runtime's context (the
    /// transports' connection tasks belong to that runtime).
    exporter: Option<E>,
    runtime: OwnRuntime,
    items: Receiver<T>,
    control: Receiver<Control>,
    state: Arc<State>,
    /// Items taken from the channel, oldest first; a batch that failed in a
    /// retryable way stays at the front.
    pending: VecDeque<T>,
    backoff: Backoff,
    /// Set while backing off after a retryable failure.
    retry_at: Option<Instant>,
    next_export: Instant,
}

impl<T: Item, E: Export<T>> Worker<E, T> {
    fn run(mut self) {
        ON_WORKER.with(|w| w.set(true));
        // Whatever the exporter's libraries log or trace on this thread must
        // not become spans that are exported by this thread, and so on.
        let _no_tracing = tracing::dispatcher::set_default(&tracing::Dispatch::none());
        let _suppressed = Context::enter_telemetry_suppressed_scope();
        loop {
            let wait = self.next_wakeup().saturating_duration_since(Instant::now());
            match self.control.recv_timeout(wait) {
                Ok(Control::Wake) | Err(RecvTimeoutError::Timeout) => {}
                Ok(Control::SetResource(resource)) => {
                    if let Some(exporter) = &mut self.exporter {
                        exporter.set_resource(&resource);
                    }
                }
                Ok(Control::Flush { deadline, reply }) => {
                    let _ = reply.send(self.flush(deadline));
                }
                Ok(Control::Shutdown { deadline, reply }) => {
                    let _ = reply.send(self.finish(deadline));
                    return;
                }
                Err(RecvTimeoutError::Disconnected) => {
                    // Every handle is gone without a shutdown: export what is
                    // left with the usual bound; nobody waits for the answer.
                    let timeout = self.state.settings.export_timeout;
                    let _ = self.finish(Instant::now() + timeout);
                    return;
                }
            }
            self.drain();
            if self.due() {
                self.export_round();
            } else if Instant::now() >= self.next_export {
                // Nothing to send this time: wait a whole delay again.
                self.next_export = Instant::now() + self.state.settings.schedule_delay;
            }
        }
    }

    fn next_wakeup(&self) -> Instant {
        match self.retry_at {
            Some(at) => at,
            None if self.pending.len() >= self.state.settings.max_export_batch_size => {
                Instant::now()
            }
            None => self.next_export,
        }
    }

    fn due(&self) -> bool {
        let now = Instant::now();
        if self.retry_at.is_some_and(|at| at > now) {
            return false;
        }
        !self.pending.is_empty()
            && (now >= self.next_export
                || self.retry_at.is_some()
                || self.pending.len() >= self.state.settings.max_export_batch_size)
    }

    /// Moves the channel's spans into `pending` (never more than the queue
    /// size in total: `on_end` admits at most that many).
    fn drain(&mut self) {
        self.state.fresh.store(0, Ordering::Release);
        while let Ok(mut item) = self.items.try_recv() {
            item.admit();
            self.pending.push_back(item);
        }
    }

    /// Exports what is pending now, batch by batch, until a retryable
    /// failure starts a backoff. Spans arriving meanwhile wait for the next
    /// round, so control messages are never starved.
    fn export_round(&mut self) {
        let mut budget = self.pending.len();
        while budget > 0 && !self.pending.is_empty() {
            let (sent, retry) = self.attempt(None);
            budget = budget.saturating_sub(sent.max(1));
            if retry {
                break;
            }
        }
        self.next_export = Instant::now() + self.state.settings.schedule_delay;
    }

    /// Exports until nothing is pending or `deadline`; retries (with
    /// backoff) what fails in a retryable way.
    fn export_until(&mut self, deadline: Instant) {
        loop {
            self.drain();
            if self.pending.is_empty() {
                return;
            }
            let now = Instant::now();
            if let Some(at) = self.retry_at.filter(|at| *at > now) {
                if at >= deadline {
                    return;
                }
                std::thread::sleep(at - now);
            }
            if Instant::now() >= deadline {
                return;
            }
            self.attempt(Some(deadline));
        }
    }

    fn flush(&mut self, deadline: Instant) -> OTelSdkResult {
        // An explicit flush tries at once, even during a backoff.
        self.retry_at = None;
        self.export_until(deadline);
        self.next_export = Instant::now() + self.state.settings.schedule_delay;
        let flushed = match &mut self.exporter {
            Some(exporter) => std::panic::catch_unwind(AssertUnwindSafe(|| exporter.force_flush()))
                .unwrap_or_else(|_| {
                    Err(OTelSdkError::InternalFailure(
                        "the exporter panicked in force_flush".into(),
                    ))
                }),
            None => Ok(()),
        };
        match self.pending.len() {
            0 => flushed,
            left => Err(OTelSdkError::InternalFailure(format!(
                "{left} {} still queued after the flush deadline{}",
                T::NOUN,
                self.last_error_suffix()
            ))),
        }
    }

    fn finish(&mut self, deadline: Instant) -> OTelSdkResult {
        self.state.closed.store(true, Ordering::Release);
        self.retry_at = None;
        self.export_until(deadline);
        self.drain();
        let left = self.pending.len();
        self.pending.clear();
        self.state.held.fetch_sub(left, Ordering::AcqRel);
        let counters = &self.state.counters;
        counters
            .dropped_at_shutdown
            .fetch_add(left as u64, Ordering::Relaxed);
        if let Some(exporter) = &mut self.exporter {
            let _ = std::panic::catch_unwind(AssertUnwindSafe(|| exporter.shutdown()));
        }
        match left {
            0 => Ok(()),
            left => Err(OTelSdkError::InternalFailure(format!(
                "{left} {} not exported before the shutdown deadline{}",
                T::NOUN,
                self.last_error_suffix()
            ))),
        }
    }

    fn last_error_suffix(&self) -> String {
        match self.state.counters.snapshot(0).last_error {
            Some(err) => format!("; last error: {err}"),
            None => String::new(),
        }
    }

    /// One export attempt of the batch at the head, bounded by the export
    /// timeout, the caller's `deadline` (flush, shutdown) and a shutdown
    /// that begins meanwhile. Returns the spans it settled (sent or
    /// dropped) and whether it failed in a retryable way or was cut short.
    fn attempt(&mut self, deadline: Option<Instant>) -> (usize, bool) {
        let settings = &self.state.settings;
        let n = self.pending.len().min(settings.max_export_batch_size);
        let timeout_at = Instant::now() + settings.export_timeout;
        // A shutdown that began before this attempt (its notification may
        // have been taken by an earlier one) bounds it too.
        let shutdown = *self
            .state
            .shutdown_deadline
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let deadline = match (deadline, shutdown) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let state = &self.state;
        let Some(exporter) = &self.exporter else {
            return (0, true);
        };
        // An exporter whose every outcome is final gets the batch itself:
        // it is settled whatever happens, so no copy is kept for a retry.
        let handed_over = exporter.final_outcomes();
        let owned: Vec<T> = if handed_over {
            self.pending.drain(..n).collect()
        } else {
            Vec::new()
        };
        let batch = &self.pending.make_contiguous()[..if handed_over { 0 } else { n }];
        let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| {
            let export = if handed_over {
                exporter.export_owned(owned)
            } else {
                exporter.export(batch)
            };
            self.runtime
                .block_on(bounded(export, timeout_at, deadline, state))
        }))
        .unwrap_or(Ok(Outcome::Failed {
            reason: "the exporter panicked".into(),
        }));
        if handed_over {
            // Already out of `pending`: settle the count only, whatever the
            // outcome (cut short, the batch is gone all the same).
            let outcome = outcome.unwrap_or_else(|Cut| Outcome::Failed {
                reason: "cut short by the deadline".into(),
            });
            return self.settle_handed_over(n, outcome);
        }
        let counters = &self.state.counters;
        let Ok(outcome) = outcome else {
            // Cut short by the caller's deadline: the batch stays queued, and
            // an earlier, more specific error stays the one reported.
            let mut last = counters
                .last_error
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            last.get_or_insert_with(|| "no answer before the deadline".to_owned());
            return (0, true);
        };
        match outcome {
            Outcome::Sent { rejected } => {
                let rejected = rejected.min(n as u64);
                counters
                    .exported
                    .fetch_add(n as u64 - rejected, Ordering::Relaxed);
                counters
                    .rejected_by_collector
                    .fetch_add(rejected, Ordering::Relaxed);
                if rejected > 0 {
                    counters.set_error(format!("the collector rejected {rejected} {}", T::NOUN));
                }
                self.settle(n);
                self.backoff.reset();
                self.retry_at = None;
                (n, false)
            }
            Outcome::Failed { reason } => {
                counters
                    .dropped_export_failed
                    .fetch_add(n as u64, Ordering::Relaxed);
                counters.set_error(reason);
                self.settle(n);
                self.retry_at = None;
                (n, false)
            }
            Outcome::Retry { after, reason } => {
                counters.set_error(reason);
                self.retry_at = Some(Instant::now() + self.backoff.next_delay(after));
                (0, true)
            }
        }
    }

    /// Counts the outcome of a batch the exporter was handed (`n` items,
    /// already out of `pending`).
    fn settle_handed_over(&mut self, n: usize, outcome: Outcome) -> (usize, bool) {
        let counters = &self.state.counters;
        match outcome {
            Outcome::Sent { rejected } => {
                let rejected = rejected.min(n as u64);
                counters
                    .exported
                    .fetch_add(n as u64 - rejected, Ordering::Relaxed);
                counters
                    .rejected_by_collector
                    .fetch_add(rejected, Ordering::Relaxed);
            }
            Outcome::Failed { reason } | Outcome::Retry { reason, .. } => {
                counters
                    .dropped_export_failed
                    .fetch_add(n as u64, Ordering::Relaxed);
                counters.set_error(reason);
            }
        }
        self.state.held.fetch_sub(n, Ordering::AcqRel);
        self.made_room();
        (n, false)
    }

    /// Wakes the producers waiting for room ([`WhenFull::Wait`]). Under the
    /// lock, so a producer between its check and its wait cannot miss it.
    fn made_room(&self) {
        if self.state.settings.when_full == WhenFull::Wait {
            let (lock, room) = &self.state.room;
            let _guard = lock.lock().unwrap_or_else(|e| e.into_inner());
            room.notify_all();
        }
    }

    fn settle(&mut self, n: usize) {
        self.pending.drain(..n);
        self.state.held.fetch_sub(n, Ordering::AcqRel);
        self.made_room();
    }
}

impl<E, T> Drop for Worker<E, T> {
    fn drop(&mut self) {
        let _entered = self.runtime.handle().enter();
        self.exporter.take();
    }
}

/// An attempt stopped by the flush's or the shutdown's deadline rather
/// than by its own timeout.
struct Cut;

/// `export` bounded by its own timeout (`timeout_at`: a retryable failure,
/// like gRPC `DEADLINE_EXCEEDED`) and by `deadline` — moved earlier if
/// shutdown begins with a sooner one while the export runs ([`Cut`]).
async fn bounded(
    export: impl Future<Output = Outcome>,
    timeout_at: Instant,
    deadline: Option<Instant>,
    state: &State,
) -> Result<Outcome, Cut> {
    let mut deadline = deadline;
    let mut export = std::pin::pin!(export);
    loop {
        let until = deadline.map_or(timeout_at, |d| d.min(timeout_at));
        let sleep = tokio::time::sleep_until(tokio::time::Instant::from_std(until));
        tokio::select! {
            outcome = &mut export => return Ok(outcome),
            () = sleep => {
                if until < timeout_at {
                    return Err(Cut);
                }
                return Ok(Outcome::unreachable(format!(
                    "no answer within the export timeout ({:?})",
                    state.settings.export_timeout
                )));
            }
            () = state.shutdown_started.notified() => {
                let shutdown = *state.shutdown_deadline.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(at) = shutdown {
                    deadline = Some(deadline.map_or(at, |d| d.min(at)));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
