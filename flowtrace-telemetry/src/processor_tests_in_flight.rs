//! Several exports in flight: the bound, one at a time for an exporter
//! that takes one, one probe at a time after a retryable failure, retained
//! batches oldest first, and every count by reason still exact.

use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opentelemetry_sdk::trace::SpanProcessor as _;

use super::*;
use crate::test_util::span;

/// Per attempt: the span names and how many attempts were under way.
type Attempts = Arc<Mutex<Vec<(Vec<String>, usize)>>>;

/// An exporter that holds each attempt for `delay`, answers with the next
/// scripted outcome (then `Sent`), and records how many attempts were
/// under way when each began.
#[derive(Clone, Default)]
struct Overlapping {
    takes: usize,
    delay: Duration,
    outcomes: Arc<Mutex<VecDeque<Outcome>>>,
    /// Per attempt, in the order they began: the span names and how many
    /// attempts were under way, this one included.
    attempts: Attempts,
    under_way: Arc<AtomicUsize>,
    delivered: Arc<Mutex<Vec<String>>>,
}

impl Overlapping {
    fn new(takes: usize, delay_ms: u64, outcomes: impl IntoIterator<Item = Outcome>) -> Self {
        Self {
            takes,
            delay: Duration::from_millis(delay_ms),
            outcomes: Arc::new(Mutex::new(outcomes.into_iter().collect())),
            ..Self::default()
        }
    }

    fn peak(&self) -> usize {
        let attempts = self.attempts.lock().unwrap();
        attempts.iter().map(|(_, n)| *n).max().unwrap_or(0)
    }

    fn attempts(&self) -> Vec<(Vec<String>, usize)> {
        self.attempts.lock().unwrap().clone()
    }

    fn delivered(&self) -> Vec<String> {
        self.delivered.lock().unwrap().clone()
    }
}

impl Export for Overlapping {
    fn export<'a>(&'a self, batch: &'a [SpanData]) -> Pin<Box<dyn Future<Output = Outcome> + 'a>> {
        Box::pin(async move {
            let now = self.under_way.fetch_add(1, SeqCst) + 1;
            let names: Vec<String> = batch.iter().map(|s| s.name.to_string()).collect();
            self.attempts.lock().unwrap().push((names.clone(), now));
            tokio::time::sleep(self.delay).await;
            self.under_way.fetch_sub(1, SeqCst);
            let outcome = self
                .outcomes
                .lock()
                .unwrap()
                .pop_front()
                .unwrap_or(Outcome::Sent { rejected: 0 });
            if matches!(outcome, Outcome::Sent { .. }) {
                self.delivered.lock().unwrap().extend(names);
            }
            outcome
        })
    }

    fn max_in_flight(&self) -> usize {
        self.takes
    }

    fn set_resource(&mut self, _resource: &Resource) {}
}

fn settings(queue: usize, batch: usize, in_flight: usize) -> Settings {
    Settings {
        max_queue_size: queue,
        max_export_batch_size: batch,
        schedule_delay: Duration::from_millis(20),
        export_timeout: Duration::from_secs(5),
        when_full: WhenFull::Drop,
        io_thread: false,
        max_in_flight: in_flight,
    }
}

fn start(settings: Settings, exporter: &Overlapping) -> Processor {
    let exporter = exporter.clone();
    Processor::start(settings, move || Ok(exporter)).unwrap()
}

/// Ends spans named `s<i>`, i from `from` on.
fn end(processor: &Processor, from: u64, n: u64) {
    for i in from..from + n {
        let mut data = span("s", i + 1, 0);
        data.name = format!("s{i}").into();
        processor.on_end(data);
    }
}

fn eventually(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "waited 10 s for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn retry() -> Outcome {
    Outcome::Retry {
        after: None,
        reason: "collector down".into(),
    }
}

#[test]
fn full_batches_go_out_together_up_to_the_bound() {
    let exporter = Overlapping::new(usize::MAX, 150, []);
    let processor = start(settings(1000, 10, 3), &exporter);
    end(&processor, 0, 100);
    eventually("every span", || exporter.delivered().len() == 100);
    assert_eq!(exporter.peak(), 3, "{:?}", exporter.attempts());
    let stats = processor.stats();
    assert_eq!(stats.exported, 100, "{stats}");
    assert_eq!(stats.queued, 0, "{stats}");
    processor.shutdown().unwrap();
}

#[test]
fn an_exporter_that_takes_one_call_gets_one() {
    let exporter = Overlapping::new(1, 30, []);
    let processor = start(settings(1000, 10, 4), &exporter);
    end(&processor, 0, 50);
    eventually("every span", || exporter.delivered().len() == 50);
    assert_eq!(exporter.peak(), 1, "{:?}", exporter.attempts());
    processor.shutdown().unwrap();
}

#[test]
fn after_a_retryable_failure_one_probe_then_the_oldest_first() {
    // Four batches in flight fail together; the collector is back after.
    let exporter = Overlapping::new(usize::MAX, 100, std::iter::repeat_n(retry(), 4));
    let processor = start(settings(1000, 10, 4), &exporter);
    end(&processor, 0, 40);
    eventually("every span", || exporter.delivered().len() == 40);
    let attempts = exporter.attempts();
    assert_eq!(attempts.len(), 8, "4 failed, 4 again: {attempts:?}");
    assert!(
        attempts[..4].iter().all(|(_, n)| *n <= 4),
        "the first four overlap: {attempts:?}"
    );
    let (probe, under_way) = &attempts[4];
    assert_eq!(*under_way, 1, "one probe while failing: {attempts:?}");
    assert_eq!(
        probe,
        &(0..10).map(|i| format!("s{i}")).collect::<Vec<_>>(),
        "the oldest batch goes first"
    );
    let mut delivered = exporter.delivered();
    delivered.sort_by_key(|n| n[1..].parse::<u32>().unwrap());
    let expected: Vec<String> = (0..40).map(|i| format!("s{i}")).collect();
    assert_eq!(delivered, expected, "each span once");
    let stats = processor.stats();
    assert_eq!(stats.exported, 40, "{stats}");
    assert_eq!(stats.dropped(), 0, "{stats}");
    processor.shutdown().unwrap();
}

#[test]
fn every_outcome_is_counted_with_exports_overlapping() {
    let exporter = Overlapping::new(
        usize::MAX,
        50,
        [
            Outcome::Sent { rejected: 0 },
            Outcome::Failed {
                reason: "HTTP status 400".into(),
            },
            Outcome::Sent { rejected: 3 },
            retry(),
        ],
    );
    let processor = start(settings(1000, 10, 4), &exporter);
    end(&processor, 0, 50);
    eventually("every batch settled", || {
        let stats = processor.stats();
        stats.queued == 0 && stats.exported + stats.dropped() == 50
    });
    let stats = processor.stats();
    assert_eq!(stats.exported, 37, "{stats}");
    assert_eq!(stats.dropped_export_failed, 10, "{stats}");
    assert_eq!(stats.rejected_by_collector, 3, "{stats}");
    assert_eq!(stats.dropped_queue_full, 0, "{stats}");
    processor.shutdown().unwrap();
}

#[test]
fn the_queue_bound_counts_the_exports_in_flight() {
    // Nothing answers for a while: four batches of 5 in flight hold 20 of
    // the 25 places, so only 5 more spans fit.
    let exporter = Overlapping::new(usize::MAX, 2_000, []);
    let processor = start(settings(25, 5, 4), &exporter);
    end(&processor, 0, 25);
    eventually("four exports under way", || {
        exporter.under_way.load(SeqCst) == 4
    });
    end(&processor, 25, 10);
    let stats = processor.stats();
    assert_eq!(stats.dropped_queue_full, 10, "{stats}");
    assert_eq!(stats.queued, 25, "{stats}");
    let started = Instant::now();
    let result = processor.shutdown_with_timeout(Duration::from_millis(300));
    assert!(result.is_err(), "nothing was answered in time");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "shutdown cuts the exports in flight short: {:?}",
        started.elapsed()
    );
    let stats = processor.stats();
    assert_eq!(stats.dropped_at_shutdown, 25, "{stats}");
    assert_eq!(stats.dropped(), 35, "every span is accounted for: {stats}");
    assert_eq!(stats.queued, 0, "{stats}");
}
