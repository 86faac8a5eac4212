//! What the exporters did with the spans they were given: [`ExportStats`].

use std::fmt;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Span counts of the installed exporters, summed over all of them (a span
/// sent to two exporters counts twice). Read it from
/// [`Telemetry::stats`](super::Telemetry::stats) at any time; after
/// shutdown it is final.
///
/// ```
/// let telemetry = flowtrace_telemetry::builder()
///     .env_vars([("OTEL_TRACES_EXPORTER", "none")])
///     .install_tracing_subscriber(false)
///     .init()
///     .unwrap();
/// let stats = telemetry.stats();
/// assert_eq!(stats.dropped(), 0);
/// assert_eq!(stats.to_string(), "0 spans exported, 0 dropped");
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExportStats {
    /// Spans the exporters delivered (for OTLP: accepted by the collector).
    pub exported: u64,
    /// Spans dropped on arrival because the queue held
    /// `OTEL_BSP_MAX_QUEUE_SIZE` spans already (collector slow or down).
    pub dropped_queue_full: u64,
    /// Spans dropped because their export failed in a way that is not
    /// retried (e.g. HTTP 400, gRPC `INVALID_ARGUMENT`, a file write error).
    pub dropped_export_failed: u64,
    /// Spans the collector accepted the request for but refused (OTLP
    /// partial success; never retried).
    pub rejected_by_collector: u64,
    /// Spans still queued when shutdown ran out of time, or ended after it.
    pub dropped_at_shutdown: u64,
    /// Spans waiting in the queues right now (retained across a collector
    /// outage, up to the queue size).
    pub queued: u64,
    /// The last export error, if any export failed.
    pub last_error: Option<String>,
}

impl ExportStats {
    /// Every span that was lost, whatever the reason.
    pub fn dropped(&self) -> u64 {
        self.dropped_queue_full
            + self.dropped_export_failed
            + self.rejected_by_collector
            + self.dropped_at_shutdown
    }

    pub(crate) fn add(&mut self, other: &ExportStats) {
        self.exported += other.exported;
        self.dropped_queue_full += other.dropped_queue_full;
        self.dropped_export_failed += other.dropped_export_failed;
        self.rejected_by_collector += other.rejected_by_collector;
        self.dropped_at_shutdown += other.dropped_at_shutdown;
        self.queued += other.queued;
        if other.last_error.is_some() {
            self.last_error.clone_from(&other.last_error);
        }
    }
}

impl ExportStats {
    /// The counts of another signal's items ("log records").
    pub(crate) fn display_as(&self, noun: &'static str) -> impl fmt::Display + '_ {
        Described { stats: self, noun }
    }
}

impl fmt::Display for ExportStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.display_as("spans").fmt(f)
    }
}

struct Described<'a> {
    stats: &'a ExportStats,
    noun: &'static str,
}

impl fmt::Display for Described<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (this, noun) = (self.stats, self.noun);
        write!(
            f,
            "{} {noun} exported, {} dropped",
            this.exported,
            this.dropped()
        )?;
        let parts = [
            (this.dropped_queue_full, "queue full"),
            (this.dropped_export_failed, "export failed"),
            (this.rejected_by_collector, "rejected by the collector"),
            (this.dropped_at_shutdown, "left at shutdown"),
        ];
        let mut first = true;
        for (n, what) in parts.into_iter().filter(|(n, _)| *n > 0) {
            f.write_str(if first { " (" } else { ", " })?;
            write!(f, "{what}: {n}")?;
            first = false;
        }
        if !first {
            f.write_str(")")?;
        }
        if let Some(err) = &this.last_error {
            write!(f, "; last error: {err}")?;
        }
        Ok(())
    }
}

/// The live counters one processor updates (span path: one relaxed add).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) exported: AtomicU64,
    pub(crate) dropped_queue_full: AtomicU64,
    pub(crate) dropped_export_failed: AtomicU64,
    pub(crate) rejected_by_collector: AtomicU64,
    pub(crate) dropped_at_shutdown: AtomicU64,
    pub(crate) last_error: Mutex<Option<String>>,
}

impl Counters {
    pub(crate) fn snapshot(&self, queued: u64) -> ExportStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        ExportStats {
            exported: get(&self.exported),
            dropped_queue_full: get(&self.dropped_queue_full),
            dropped_export_failed: get(&self.dropped_export_failed),
            rejected_by_collector: get(&self.rejected_by_collector),
            dropped_at_shutdown: get(&self.dropped_at_shutdown),
            queued,
            last_error: self
                .last_error
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        }
    }

    pub(crate) fn set_error(&self, error: impl Into<String>) {
        *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(error.into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_lists_only_the_reasons_that_happened() {
        let cases = [
            (
                ExportStats::default(),
                "0 spans exported, 0 dropped",
                "nothing",
            ),
            (
                ExportStats {
                    exported: 5,
                    dropped_queue_full: 2,
                    dropped_at_shutdown: 1,
                    last_error: Some("HTTP status 503".into()),
                    ..Default::default()
                },
                "5 spans exported, 3 dropped (queue full: 2, left at shutdown: 1); last error: HTTP status 503",
                "two reasons and the error",
            ),
        ];
        for (stats, expected, reason) in cases {
            assert_eq!(stats.to_string(), expected, "{reason}");
        }
    }

    #[test]
    fn add_sums_every_count() {
        let one = ExportStats {
            exported: 1,
            dropped_queue_full: 2,
            dropped_export_failed: 3,
            rejected_by_collector: 4,
            dropped_at_shutdown: 5,
            queued: 6,
            last_error: Some("e".into()),
        };
        let mut sum = one.clone();
        sum.add(&one);
        assert_eq!(sum.dropped(), 28, "2 × (2 + 3 + 4 + 5)");
        assert_eq!(sum.exported, 2);
        assert_eq!(sum.queued, 12);
    }
}
