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
//! - sends a batch as soon as it is full (the timer is for partial
//!   batches), and keeps up to [`Settings::max_in_flight`] exports going
//!   at once when the exporter takes more than one
//!   ([`Export::max_in_flight`]: flowtrace's OTLP transports do; any other
//!   exporter gets one call at a time, as the specification asks), so a
//!   collector's round trip does not stall the queue. The items of every
//!   export in flight still count against the queue size. After a
//!   retryable failure one export at a time probes the collector until one
//!   succeeds; retained batches go again oldest first;
//! - bounds shutdown by one deadline, which also cuts short the exports in
//!   flight, and bounds every export by the export timeout;
//! - exports on its own thread inside its own small tokio runtime, so no
//!   call depends on the application's runtime (a guard dropped on the main
//!   thread of a `current_thread` runtime cannot deadlock), and the thread
//!   records no telemetry of its own (no feedback loop through the exporter).
//!
//! The span path (`on_end`) is two atomic adds and a `try_send` on a bounded
//! channel; it never allocates beyond the channel slot, and it never blocks
//! unless the exporter is local and the queue full ([`WhenFull::Wait`]).

use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use futures_util::FutureExt as _;
use futures_util::StreamExt as _;
use futures_util::stream::FuturesUnordered;
use opentelemetry::{Context, InstrumentationScope};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::logs::{LogProcessor, SdkLogRecord};
use opentelemetry_sdk::trace::{Span, SpanData, SpanProcessor};
use tokio::runtime::Runtime;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

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
    /// At most this many exports at once, for an exporter that takes more
    /// than one ([`Export::max_in_flight`]).
    pub(crate) max_in_flight: usize,
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
    control: UnboundedSender<Control>,
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
        let (control_tx, control_rx) = unbounded_channel();
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
            exporter,
            runtime,
            items: items_rx,
            control: control_rx,
            state: state.clone(),
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
        // Stored as a permit if the worker is not waiting for it right now.
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

/// The processor's thread, until it starts its loop.
struct Worker<E, T> {
    exporter: E,
    runtime: OwnRuntime,
    items: Receiver<T>,
    control: UnboundedReceiver<Control>,
    state: Arc<State>,
}

impl<T: Item, E: Export<T>> Worker<E, T> {
    fn run(self) {
        ON_WORKER.with(|w| w.set(true));
        // Whatever the exporter's libraries log or trace on this thread must
        // not become spans that are exported by this thread, and so on.
        let _no_tracing = tracing::dispatcher::set_default(&tracing::Dispatch::none());
        let _suppressed = Context::enter_telemetry_suppressed_scope();
        let Worker {
            exporter,
            runtime,
            items,
            control,
            state,
        } = self;
        let settings = &state.settings;
        let max_in_flight = settings.max_in_flight.min(exporter.max_in_flight()).max(1);
        let next_export = Instant::now() + settings.schedule_delay;
        let pump = Pump {
            exporter: Rc::new(exporter),
            items,
            control,
            state: state.clone(),
            max_in_flight,
            pending: VecDeque::new(),
            returned: BTreeMap::new(),
            in_flight: FuturesUnordered::new(),
            in_flight_items: 0,
            next_seq: 0,
            backoff: Backoff::default(),
            retry_at: None,
            failing: false,
            next_export,
        };
        // The exporter and the exports in flight are dropped inside the
        // runtime (the transports' connection tasks belong to it).
        runtime.block_on(pump.run());
    }
}

/// One export in flight: its batch comes back with the outcome, so a
/// retryable failure can keep it.
type InFlight<T> = Pin<Box<dyn Future<Output = Done<T>>>>;

/// How one export ended.
struct Done<T> {
    /// The order the batch was taken in: retried batches go out oldest first.
    seq: u64,
    /// Items in the batch.
    n: usize,
    /// Started while exports were failing (the one probing attempt).
    probe: bool,
    /// The batch, unless the exporter was handed it (or panicked with it).
    batch: Option<Vec<T>>,
    outcome: Outcome,
}

/// The worker's loop, on its own runtime: takes items from the queue,
/// keeps up to `max_in_flight` exports going, settles each as it ends.
struct Pump<E, T> {
    exporter: Rc<E>,
    items: Receiver<T>,
    control: UnboundedReceiver<Control>,
    state: Arc<State>,
    /// At most this many exports at once (1 unless the exporter takes more).
    max_in_flight: usize,
    /// Items taken from the channel, oldest first.
    pending: VecDeque<T>,
    /// Batches whose export failed in a retryable way, by `seq`: older than
    /// anything pending, so they go first.
    returned: BTreeMap<u64, Vec<T>>,
    in_flight: FuturesUnordered<InFlight<T>>,
    /// Items in the exports in flight.
    in_flight_items: usize,
    next_seq: u64,
    backoff: Backoff,
    /// Set while backing off after a retryable failure.
    retry_at: Option<Instant>,
    /// The last export that ended failed in a retryable way: one export at a
    /// time until one succeeds, so a collector that is away sees one probe.
    failing: bool,
    next_export: Instant,
}

impl<T: Item, E: Export<T>> Pump<E, T> {
    async fn run(mut self) {
        loop {
            self.drain();
            self.launch(false);
            let now = Instant::now();
            if self.retry_at.is_none() && now >= self.next_export && self.pending.is_empty() {
                // Nothing to send this time: wait a whole delay again.
                self.next_export = now + self.state.settings.schedule_delay;
            }
            let wake = self.next_wakeup();
            let sleep = tokio::time::sleep_until(tokio::time::Instant::from_std(wake));
            tokio::select! {
                biased;
                message = self.control.recv() => match message {
                    Some(Control::Wake) => {}
                    Some(Control::SetResource(resource)) => self.set_resource(&resource).await,
                    Some(Control::Flush { deadline, reply }) => {
                        let _ = reply.send(self.flush(deadline).await);
                    }
                    Some(Control::Shutdown { deadline, reply }) => {
                        let _ = reply.send(self.finish(deadline).await);
                        return;
                    }
                    None => {
                        // Every handle is gone without a shutdown: export what
                        // is left with the usual bound; nobody waits for the answer.
                        let timeout = self.state.settings.export_timeout;
                        let _ = self.finish(Instant::now() + timeout).await;
                        return;
                    }
                },
                Some(done) = self.in_flight.next(), if !self.in_flight.is_empty() => {
                    self.settle_done(done);
                }
                () = sleep => {}
            }
        }
    }

    fn next_wakeup(&self) -> Instant {
        match self.retry_at {
            Some(at) => at,
            None => self.next_export,
        }
    }

    /// Moves the channel's items into `pending` (never more than the queue
    /// size in total: `submit` admits at most that many).
    fn drain(&mut self) {
        self.state.fresh.store(0, Ordering::Release);
        while let Ok(mut item) = self.items.try_recv() {
            item.admit();
            self.pending.push_back(item);
        }
    }

    /// Items queued, retained or in flight (what `held` counts, as the
    /// worker sees it).
    fn left(&self) -> usize {
        self.pending.len()
            + self.returned.values().map(Vec::len).sum::<usize>()
            + self.in_flight_items
    }

    /// Starts exports while there is room in flight and something to send:
    /// retained batches first, then full batches, then (on the timer, or
    /// when `all`) what is left. Nothing during a backoff.
    fn launch(&mut self, all: bool) {
        let settings = &self.state.settings;
        let (max_batch, delay) = (settings.max_export_batch_size, settings.schedule_delay);
        loop {
            let now = Instant::now();
            if self.retry_at.is_some_and(|at| at > now) {
                return;
            }
            let limit = if self.failing { 1 } else { self.max_in_flight };
            if self.in_flight.len() >= limit {
                return;
            }
            let batch = if let Some((_, batch)) = self.returned.pop_first() {
                batch
            } else if self.pending.len() >= max_batch
                || (!self.pending.is_empty() && (all || now >= self.next_export))
            {
                let n = self.pending.len().min(max_batch);
                self.pending.drain(..n).collect()
            } else {
                return;
            };
            self.retry_at = None;
            self.next_export = now + delay;
            self.start(batch);
        }
    }

    /// One export attempt of `batch`, bounded by the export timeout.
    fn start(&mut self, batch: Vec<T>) {
        let n = batch.len();
        let seq = self.next_seq;
        self.next_seq += 1;
        let probe = self.failing;
        let exporter = self.exporter.clone();
        let timeout = self.state.settings.export_timeout;
        let timeout_at = Instant::now() + timeout;
        let export = async move {
            // An exporter whose every outcome is final is handed the batch:
            // it is settled whatever happens, so no copy is kept for a retry.
            if exporter.final_outcomes() {
                let outcome = bounded(exporter.export_owned(batch), timeout_at, timeout).await;
                (None, outcome)
            } else {
                let outcome = bounded(exporter.export(&batch), timeout_at, timeout).await;
                (Some(batch), outcome)
            }
        };
        let done = AssertUnwindSafe(export)
            .catch_unwind()
            .map(move |ended| match ended {
                Ok((batch, outcome)) => Done {
                    seq,
                    n,
                    probe,
                    batch,
                    outcome,
                },
                Err(_) => Done {
                    seq,
                    n,
                    probe,
                    batch: None,
                    outcome: Outcome::Failed {
                        reason: "the exporter panicked".into(),
                    },
                },
            });
        self.in_flight.push(Box::pin(done));
        self.in_flight_items += n;
    }

    /// Counts how an export ended; keeps its batch for a retry when it
    /// failed in a retryable way.
    fn settle_done(&mut self, done: Done<T>) {
        self.in_flight_items -= done.n;
        let n = done.n;
        let counters = &self.state.counters;
        match done.outcome {
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
                self.backoff.reset();
                self.retry_at = None;
                self.failing = false;
                self.settle(n);
            }
            Outcome::Retry { after, reason } if done.batch.is_some() => {
                counters.set_error(reason);
                if let Some(batch) = done.batch {
                    self.returned.insert(done.seq, batch);
                }
                // Exports that were already in flight when the failures began
                // add no further pause; the probe's failure does.
                if done.probe || !self.failing {
                    self.retry_at = Some(Instant::now() + self.backoff.next_delay(after));
                }
                self.failing = true;
            }
            Outcome::Failed { reason } | Outcome::Retry { reason, .. } => {
                counters
                    .dropped_export_failed
                    .fetch_add(n as u64, Ordering::Relaxed);
                counters.set_error(reason);
                if done.batch.is_some() {
                    // The collector answered: it is there.
                    self.retry_at = None;
                    self.failing = false;
                }
                self.settle(n);
            }
        }
    }

    /// `n` items are settled (delivered or dropped): room in the queue.
    fn settle(&mut self, n: usize) {
        self.state.held.fetch_sub(n, Ordering::AcqRel);
        self.made_room();
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

    /// The shutdown's deadline, if it began and is sooner than `deadline`.
    fn bound(&self, deadline: Instant) -> Instant {
        let shutdown = *self
            .state
            .shutdown_deadline
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        shutdown.map_or(deadline, |at| at.min(deadline))
    }

    /// Exports until nothing is queued, retained or in flight, or until
    /// `deadline` (moved earlier by a shutdown that begins meanwhile);
    /// retries (with backoff) what fails in a retryable way.
    async fn export_until(&mut self, deadline: Instant) {
        let mut deadline = self.bound(deadline);
        loop {
            self.drain();
            self.launch(true);
            if self.left() == 0 {
                return;
            }
            let now = Instant::now();
            if now >= deadline {
                return;
            }
            let wake = match self.retry_at {
                // The next attempt would begin after the deadline.
                Some(at) if at >= deadline && self.in_flight.is_empty() => return,
                Some(at) if at > now => at.min(deadline),
                _ => deadline,
            };
            let sleep = tokio::time::sleep_until(tokio::time::Instant::from_std(wake));
            tokio::select! {
                Some(done) = self.in_flight.next(), if !self.in_flight.is_empty() => {
                    self.settle_done(done);
                }
                () = sleep => {}
                () = self.state.shutdown_started.notified() => deadline = self.bound(deadline),
            }
        }
    }

    /// Waits for the exports in flight to end (each is bounded by the
    /// export timeout), so the exporter can be changed.
    async fn settle_in_flight(&mut self) {
        while let Some(done) = self.in_flight.next().await {
            self.settle_done(done);
        }
    }

    async fn set_resource(&mut self, resource: &Resource) {
        self.settle_in_flight().await;
        if let Some(exporter) = Rc::get_mut(&mut self.exporter) {
            exporter.set_resource(resource);
        }
    }

    async fn flush(&mut self, deadline: Instant) -> OTelSdkResult {
        // An explicit flush tries at once, even during a backoff.
        self.retry_at = None;
        self.export_until(deadline).await;
        self.next_export = Instant::now() + self.state.settings.schedule_delay;
        let left = self.left();
        // The exporter's own buffer, once nothing is in flight.
        let flushed = match Rc::get_mut(&mut self.exporter) {
            Some(exporter) if left == 0 => {
                std::panic::catch_unwind(AssertUnwindSafe(|| exporter.force_flush()))
                    .unwrap_or_else(|_| {
                        Err(OTelSdkError::InternalFailure(
                            "the exporter panicked in force_flush".into(),
                        ))
                    })
            }
            _ => Ok(()),
        };
        match left {
            0 => flushed,
            left => Err(OTelSdkError::InternalFailure(format!(
                "{left} {} still queued after the flush deadline{}",
                T::NOUN,
                self.last_error_suffix()
            ))),
        }
    }

    async fn finish(&mut self, deadline: Instant) -> OTelSdkResult {
        self.state.closed.store(true, Ordering::Release);
        self.retry_at = None;
        self.export_until(deadline).await;
        self.drain();
        if !self.in_flight.is_empty() {
            // Cut short by the deadline: an earlier, more specific error
            // stays the one reported.
            let mut last = self
                .state
                .counters
                .last_error
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            last.get_or_insert_with(|| "no answer before the deadline".to_owned());
        }
        let left = self.left();
        self.in_flight.clear();
        self.in_flight_items = 0;
        self.pending.clear();
        self.returned.clear();
        self.state.held.fetch_sub(left, Ordering::AcqRel);
        self.state
            .counters
            .dropped_at_shutdown
            .fetch_add(left as u64, Ordering::Relaxed);
        self.made_room();
        if let Some(exporter) = Rc::get_mut(&mut self.exporter) {
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
}

/// `export` bounded by its own timeout: no answer by `timeout_at` is a
/// retryable failure, like gRPC `DEADLINE_EXCEEDED`. (The deadlines of a
/// flush or a shutdown are the worker's: it stops waiting for the export.)
async fn bounded(
    export: impl Future<Output = Outcome>,
    timeout_at: Instant,
    timeout: Duration,
) -> Outcome {
    let until = tokio::time::Instant::from_std(timeout_at);
    match tokio::time::timeout_at(until, export).await {
        Ok(outcome) => outcome,
        Err(_) => {
            Outcome::unreachable(format!("no answer within the export timeout ({timeout:?})"))
        }
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
#[path = "processor_tests_in_flight.rs"]
mod in_flight_tests;
