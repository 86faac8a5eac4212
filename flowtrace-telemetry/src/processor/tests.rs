//! The batch processor against scripted exporters: what is kept, what is
//! dropped and counted, and how long each call may take.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opentelemetry_sdk::trace::SpanProcessor as _;

use super::*;
use crate::test_util::span;

/// Answers each attempt with the next scripted outcome (then `Sent`),
/// after `delay`; records the span names of every attempt.
#[derive(Clone, Default)]
struct Scripted {
    outcomes: Arc<Mutex<VecDeque<Outcome>>>,
    attempts: Arc<Mutex<Vec<Vec<String>>>>,
    /// Attempts begun (a hanging one never reaches `attempts`).
    started: Arc<std::sync::atomic::AtomicUsize>,
    delay: Duration,
    panics: bool,
}

impl Scripted {
    fn with(outcomes: impl IntoIterator<Item = Outcome>) -> Self {
        Self {
            outcomes: Arc::new(Mutex::new(outcomes.into_iter().collect())),
            ..Self::default()
        }
    }

    fn attempts(&self) -> Vec<Vec<String>> {
        self.attempts.lock().unwrap().clone()
    }

    fn delivered(&self) -> usize {
        self.attempts().iter().map(Vec::len).sum()
    }
}

impl Export for Scripted {
    fn export<'a>(&'a self, batch: &'a [SpanData]) -> Pin<Box<dyn Future<Output = Outcome> + 'a>> {
        Box::pin(async move {
            self.started
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            assert!(!self.panics, "scripted exporter panic");
            if !self.delay.is_zero() {
                // tokio's timer: the processor's own runtime must drive it.
                tokio::time::sleep(self.delay).await;
            }
            self.attempts
                .lock()
                .unwrap()
                .push(batch.iter().map(|s| s.name.to_string()).collect());
            self.outcomes
                .lock()
                .unwrap()
                .pop_front()
                .unwrap_or(Outcome::Sent { rejected: 0 })
        })
    }

    fn set_resource(&mut self, _resource: &Resource) {}
}

fn settings(queue: usize, batch: usize, delay_ms: u64, timeout_ms: u64) -> Settings {
    Settings {
        max_queue_size: queue,
        max_export_batch_size: batch,
        schedule_delay: Duration::from_millis(delay_ms),
        export_timeout: Duration::from_millis(timeout_ms),
        when_full: WhenFull::Drop,
        io_thread: false,
        max_in_flight: 1,
    }
}

fn start(settings: Settings, exporter: &Scripted) -> Processor {
    let exporter = exporter.clone();
    Processor::start(settings, move || Ok(exporter)).unwrap()
}

fn end(processor: &Processor, n: u64) {
    for i in 1..=n {
        processor.on_end(span("s", i, 0));
    }
}

fn retry() -> Outcome {
    Outcome::Retry {
        after: None,
        reason: "collector down".into(),
    }
}

/// Polls `done` for up to 10 s.
fn eventually(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "waited 10 s for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn exports_on_a_full_batch_without_waiting_for_the_timer() {
    let exporter = Scripted::default();
    let processor = start(settings(100, 4, 60_000, 1_000), &exporter);
    end(&processor, 8);
    eventually("two full batches", || exporter.delivered() == 8);
    assert!(
        exporter.attempts().iter().all(|b| b.len() == 4),
        "batches of the configured size: {:?}",
        exporter.attempts()
    );
    processor.shutdown().unwrap();
    assert_eq!(processor.stats().exported, 8);
}

#[test]
fn exports_a_partial_batch_on_the_timer() {
    let exporter = Scripted::default();
    let processor = start(settings(100, 512, 50, 1_000), &exporter);
    end(&processor, 3);
    eventually("the timer's export", || exporter.delivered() == 3);
    processor.shutdown().unwrap();
}

#[test]
fn a_retryable_failure_keeps_the_spans_until_the_collector_is_back() {
    let exporter = Scripted::with([retry(), retry(), retry()]);
    let processor = start(settings(100, 10, 20, 1_000), &exporter);
    end(&processor, 5);
    eventually("delivery after three failures", || {
        processor.stats().exported == 5
    });
    let attempts = exporter.attempts();
    assert_eq!(attempts.len(), 4, "three failed attempts, one success");
    assert!(
        attempts.iter().all(|b| b.len() == 5),
        "the same batch each time"
    );
    let stats = processor.stats();
    assert_eq!(stats.dropped(), 0, "{stats}");
    assert_eq!(stats.queued, 0);
    processor.shutdown().unwrap();
}

#[test]
fn a_final_failure_drops_and_counts_the_batch() {
    let exporter = Scripted::with([Outcome::Failed {
        reason: "HTTP status 400".into(),
    }]);
    let processor = start(settings(100, 10, 20, 1_000), &exporter);
    end(&processor, 3);
    eventually("the failed attempt", || exporter.attempts().len() == 1);
    end(&processor, 2);
    processor.shutdown().unwrap();
    let stats = processor.stats();
    assert_eq!(stats.dropped_export_failed, 3, "{stats}");
    assert_eq!(stats.exported, 2, "later spans still go out");
    assert_eq!(stats.last_error.as_deref(), Some("HTTP status 400"));
    assert_eq!(
        exporter.attempts().len(),
        2,
        "the failed batch is not retried"
    );
}

#[test]
fn a_partial_success_is_counted_and_not_retried() {
    let exporter = Scripted::with([Outcome::Sent { rejected: 2 }]);
    let processor = start(settings(100, 10, 20, 1_000), &exporter);
    end(&processor, 5);
    processor.shutdown().unwrap();
    let stats = processor.stats();
    assert_eq!(stats.exported, 3, "{stats}");
    assert_eq!(stats.rejected_by_collector, 2);
    assert_eq!(exporter.attempts().len(), 1, "never retried");
}

#[test]
fn a_full_queue_of_a_local_exporter_waits_for_room_instead_of_dropping() {
    let exporter = Scripted {
        delay: Duration::from_millis(2),
        ..Scripted::default()
    };
    let mut waiting = settings(4, 2, 60_000, 1_000);
    waiting.when_full = WhenFull::Wait;
    let processor = start(waiting, &exporter);
    end(&processor, 200);
    processor.shutdown().unwrap();
    let stats = processor.stats();
    assert_eq!(stats.dropped(), 0, "{stats}");
    assert_eq!(stats.exported, 200, "{stats}");
    let names: Vec<String> = exporter.attempts().concat();
    assert_eq!(names.len(), 200, "each span once");
}

#[test]
fn waiting_for_room_is_bounded_by_the_export_timeout() {
    // The exporter never answers: no room is ever made.
    let exporter = Scripted {
        delay: Duration::from_secs(3600),
        ..Scripted::default()
    };
    let mut waiting = settings(2, 2, 60_000, 200);
    waiting.when_full = WhenFull::Wait;
    let processor = start(waiting, &exporter);
    let started = Instant::now();
    end(&processor, 4);
    let took = started.elapsed();
    let stats = processor.stats();
    assert_eq!(stats.dropped_queue_full, 2, "{stats}");
    assert!(
        took >= Duration::from_millis(400) && took < Duration::from_secs(2),
        "two spans waited one export timeout each, then were dropped: {took:?}"
    );
    let _ = processor.shutdown_with_timeout(Duration::from_millis(100));
}

#[test]
fn log_records_get_the_same_processor() {
    use opentelemetry::logs::{LogRecord as _, Logger as _, LoggerProvider as _};
    use opentelemetry_sdk::logs::{InMemoryLogExporter, SdkLoggerProvider};

    let exporter = InMemoryLogExporter::default();
    let processor: Processor<LogItem> = Processor::start(settings(3, 2, 60_000, 1_000), {
        let exporter = exporter.clone();
        move || {
            Ok(super::super::export::SdkLogs(
                super::super::export::Sdk::foreign(exporter),
            ))
        }
    })
    .unwrap();
    let provider = SdkLoggerProvider::builder()
        .with_log_processor(processor.clone())
        .build();
    let logger = provider.logger("test");
    for i in 0..5 {
        let mut record = logger.create_log_record();
        record.set_body(format!("record-{i}").into());
        logger.emit(record);
    }
    processor
        .flush_until(Instant::now() + Duration::from_secs(5))
        .unwrap();
    let stats = processor.stats();
    assert_eq!(stats.exported + stats.dropped_queue_full, 5, "{stats}");
    assert!(stats.dropped_queue_full >= 2, "a queue of 3: {stats}");
    let bodies: Vec<String> = exporter
        .get_emitted_logs()
        .unwrap()
        .iter()
        .map(|l| format!("{:?}", l.record.body()))
        .collect();
    assert_eq!(bodies.len() as u64, stats.exported, "{bodies:?}");
    assert!(
        processor
            .shutdown_with_timeout(Duration::from_secs(1))
            .is_ok(),
        "nothing left"
    );
}

#[test]
fn a_full_queue_drops_and_counts_new_spans() {
    let exporter = Scripted::with(std::iter::repeat_n(retry(), 1000));
    let processor = start(settings(10, 5, 10, 1_000), &exporter);
    end(&processor, 25);
    let stats = processor.stats();
    assert_eq!(stats.dropped_queue_full, 15, "{stats}");
    assert_eq!(
        stats.queued, 10,
        "queued plus retained never exceed the queue"
    );
    let started = Instant::now();
    let result = processor.shutdown_with_timeout(Duration::from_millis(300));
    assert!(result.is_err(), "the collector never came back");
    assert!(started.elapsed() < Duration::from_secs(1));
    let stats = processor.stats();
    assert_eq!(stats.dropped_at_shutdown, 10, "{stats}");
    assert_eq!(stats.dropped(), 25, "every span is accounted for");
    assert_eq!(stats.queued, 0);
}

#[test]
fn shutdown_cuts_short_an_export_in_flight() {
    let exporter = Scripted {
        delay: Duration::from_secs(60),
        ..Scripted::default()
    };
    // Each attempt may take 30 s; the shutdown may take 300 ms.
    let processor = start(settings(100, 1, 10, 30_000), &exporter);
    end(&processor, 3);
    std::thread::sleep(Duration::from_millis(100)); // the first attempt hangs
    let started = Instant::now();
    let result = processor.shutdown_with_timeout(Duration::from_millis(300));
    let took = started.elapsed();
    assert!(result.is_err(), "nothing could be exported");
    assert!(
        took < Duration::from_millis(900),
        "bounded by the shutdown deadline, took {took:?}"
    );
    eventually("the final count", || processor.stats().queued == 0);
    assert_eq!(processor.stats().dropped_at_shutdown, 3);
}

#[test]
fn a_hanging_export_times_out_and_backs_off() {
    let exporter = Scripted {
        delay: Duration::from_secs(60),
        ..Scripted::default()
    };
    let processor = start(settings(100, 10, 10, 100), &exporter);
    end(&processor, 2);
    std::thread::sleep(Duration::from_millis(700));
    let started = exporter.started.load(std::sync::atomic::Ordering::Relaxed);
    // 100 ms attempts with pauses of 100-200, 200-400 ms between them: at
    // most four in 700 ms; without a backoff there would be seven.
    assert!((2..=4).contains(&started), "{started} attempts");
    let stats = processor.stats();
    assert_eq!(stats.queued, 2, "kept for the next attempt: {stats}");
    assert_eq!(
        stats.last_error.as_deref(),
        Some("no answer within the export timeout (100ms)")
    );
    processor
        .shutdown_with_timeout(Duration::from_millis(100))
        .ok();
}

#[test]
fn exports_queued_behind_a_shutdown_keep_its_deadline() {
    let exporter = Scripted {
        delay: Duration::from_secs(60),
        ..Scripted::default()
    };
    // Full batches wake the worker more than once, so a round may start
    // after the shutdown began and took the notification.
    let processor = start(settings(1000, 10, 10, 30_000), &exporter);
    for _ in 0..5 {
        end(&processor, 10);
        std::thread::sleep(Duration::from_millis(5));
    }
    let started = Instant::now();
    let result = processor.shutdown_with_timeout(Duration::from_millis(300));
    let took = started.elapsed();
    assert!(result.is_err());
    assert!(took <= Duration::from_millis(350), "took {took:?}");
    eventually("the final count", || {
        processor.stats().dropped_at_shutdown == 50
    });
}

#[test]
fn force_flush_exports_now_and_is_bounded() {
    let exporter = Scripted::default();
    let processor = start(settings(100, 512, 60_000, 500), &exporter);
    end(&processor, 3);
    processor.force_flush().unwrap();
    assert_eq!(exporter.delivered(), 3, "flushed before the 60 s timer");

    let hanging = Scripted {
        delay: Duration::from_secs(60),
        ..Scripted::default()
    };
    let processor = start(settings(100, 512, 60_000, 300), &hanging);
    end(&processor, 1);
    let started = Instant::now();
    assert!(processor.force_flush().is_err(), "nothing answered");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "flush bounded by the export timeout, took {:?}",
        started.elapsed()
    );
    assert_eq!(processor.stats().queued, 1, "a failed flush keeps the span");
    processor
        .shutdown_with_timeout(Duration::from_millis(100))
        .ok();
}

#[test]
fn a_panicking_exporter_is_a_counted_failure() {
    let exporter = Scripted {
        panics: true,
        ..Scripted::default()
    };
    let processor = start(settings(100, 10, 10, 1_000), &exporter);
    end(&processor, 2);
    eventually("the failed attempt", || {
        processor.stats().dropped_export_failed == 2
    });
    assert_eq!(
        processor.stats().last_error.as_deref(),
        Some("the exporter panicked")
    );
    assert!(processor.shutdown().is_ok(), "the thread survived");
}

#[test]
fn spans_after_shutdown_and_unsampled_spans() {
    let exporter = Scripted::default();
    let processor = start(settings(100, 10, 10, 1_000), &exporter);
    let mut unsampled = span("u", 1, 0);
    unsampled.span_context = opentelemetry::trace::SpanContext::new(
        unsampled.span_context.trace_id(),
        unsampled.span_context.span_id(),
        opentelemetry::trace::TraceFlags::default(),
        false,
        Default::default(),
    );
    processor.on_end(unsampled);
    processor.shutdown().unwrap();
    end(&processor, 2);
    let stats = processor.stats();
    assert_eq!(stats.exported, 0, "unsampled spans are not exported");
    assert_eq!(stats.dropped_at_shutdown, 2, "late spans are counted");
    assert!(
        processor.shutdown().is_ok(),
        "a second shutdown is a no-op: the guard and the provider both ask"
    );
    assert!(matches!(
        processor.force_flush(),
        Err(OTelSdkError::AlreadyShutdown)
    ));
}

#[test]
fn dropping_every_handle_still_exports() {
    let exporter = Scripted::default();
    let processor = start(settings(100, 512, 60_000, 1_000), &exporter);
    end(&processor, 4);
    drop(processor);
    eventually("the export of the abandoned worker", || {
        exporter.delivered() == 4
    });
}

#[tokio::test(flavor = "current_thread")]
async fn shutdown_from_a_current_thread_runtime_does_not_deadlock() {
    let exporter = Scripted {
        delay: Duration::from_millis(20),
        ..Scripted::default()
    };
    let processor = start(settings(100, 512, 60_000, 2_000), &exporter);
    end(&processor, 3);
    // Blocking this runtime's only thread is what deadlocks the SDK's
    // processor; ours exports on its own thread and runtime.
    processor.shutdown().unwrap();
    assert_eq!(exporter.delivered(), 3);
}

#[tokio::test(flavor = "current_thread")]
async fn a_failed_start_inside_a_runtime_does_not_panic() {
    // Dropping a tokio runtime inside another's async context panics; the
    // exporter's runtime must not be dropped that way when building fails.
    let result = Processor::start(settings(10, 10, 10, 100), || {
        Err::<Scripted, _>("no exporter".to_owned())
    });
    assert_eq!(result.err().as_deref(), Some("no exporter"));
}
