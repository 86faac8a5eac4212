//! The one line shutdown prints when telemetry was lost: how many spans and
//! log records did not reach which exporter, and why. Counted per exporter,
//! so a console that printed every span does not hide (or contradict) the
//! collector that received none.

use std::fmt::Write as _;

use super::stats::ExportStats;

/// What one exporter did with one signal.
#[derive(Clone, Debug)]
pub(crate) struct Delivery {
    /// The exporter, as named in `OTEL_TRACES_EXPORTER` (`otlp`, `file`,
    /// `console`).
    pub(crate) exporter: &'static str,
    pub(crate) stats: ExportStats,
}

/// Records one exporter lost: still queued or dropped, whatever the reason.
fn lost(stats: &ExportStats) -> u64 {
    stats.dropped() + stats.queued
}

fn given(stats: &ExportStats) -> u64 {
    stats.exported + lost(stats)
}

/// `None` when nothing was lost, else the line (without `flowtrace: `):
///
/// `7 spans and 4 log records were not delivered: otlp lost 7 of 7 spans
/// (left at shutdown: 7) and 4 of 4 log records (export failed: 4); last
/// error: …`
///
/// The totals count a record once per exporter that lost it.
pub(crate) fn line(spans: &[Delivery], logs: &[Delivery]) -> Option<String> {
    let total = |list: &[Delivery]| list.iter().map(|d| lost(&d.stats)).sum::<u64>();
    let (lost_spans, lost_logs) = (total(spans), total(logs));
    if lost_spans == 0 && lost_logs == 0 {
        return None;
    }
    let mut out = match (lost_spans, lost_logs) {
        (n, 0) => count(n, "span", "spans"),
        (0, m) => count(m, "log record", "log records"),
        (n, m) => format!(
            "{} and {}",
            count(n, "span", "spans"),
            count(m, "log record", "log records")
        ),
    };
    out.push_str(if lost_spans + lost_logs == 1 {
        " was not delivered: "
    } else {
        " were not delivered: "
    });
    // Exporters in the order first named, each with what it lost of each
    // signal and its last error.
    let mut exporters: Vec<&'static str> = Vec::new();
    for d in spans.iter().chain(logs) {
        if lost(&d.stats) > 0 && !exporters.contains(&d.exporter) {
            exporters.push(d.exporter);
        }
    }
    for (i, exporter) in exporters.iter().enumerate() {
        if i > 0 {
            out.push_str("; ");
        }
        let of = |list: &[Delivery]| -> Option<ExportStats> {
            let mut sum: Option<ExportStats> = None;
            for d in list.iter().filter(|d| d.exporter == *exporter) {
                sum.get_or_insert_with(ExportStats::default).add(&d.stats);
            }
            sum.filter(|s| lost(s) > 0)
        };
        let (span_stats, log_stats) = (of(spans), of(logs));
        let _ = write!(out, "{exporter} lost ");
        let mut parts = Vec::new();
        if let Some(s) = &span_stats {
            parts.push(part(s, "span", "spans"));
        }
        if let Some(s) = &log_stats {
            parts.push(part(s, "log record", "log records"));
        }
        out.push_str(&parts.join(" and "));
        let error = span_stats
            .as_ref()
            .and_then(|s| s.last_error.as_deref())
            .or_else(|| log_stats.as_ref().and_then(|s| s.last_error.as_deref()));
        if let Some(error) = error {
            let _ = write!(out, "; last error: {error}");
        }
    }
    Some(out)
}

fn count(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// `7 of 7 spans (left at shutdown: 7)`.
fn part(stats: &ExportStats, one: &str, many: &str) -> String {
    let given = given(stats);
    let mut out = format!(
        "{} of {given} {}",
        lost(stats),
        if given == 1 { one } else { many }
    );
    let reasons: Vec<String> = [
        (stats.dropped_queue_full, "queue full"),
        (stats.dropped_export_failed, "export failed"),
        (stats.rejected_by_collector, "rejected by the collector"),
        (stats.dropped_at_shutdown, "left at shutdown"),
        (stats.queued, "still queued"),
    ]
    .into_iter()
    .filter(|(n, _)| *n > 0)
    .map(|(n, what)| format!("{what}: {n}"))
    .collect();
    if !reasons.is_empty() {
        let _ = write!(out, " ({})", reasons.join(", "));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivery(exporter: &'static str, stats: ExportStats) -> Delivery {
        Delivery { exporter, stats }
    }

    #[test]
    fn nothing_lost_prints_nothing() {
        let all = ExportStats {
            exported: 7,
            ..ExportStats::default()
        };
        assert_eq!(line(&[delivery("console", all.clone())], &[]), None);
        assert_eq!(line(&[], &[]), None);
    }

    #[test]
    fn each_exporter_says_what_it_lost_and_why() {
        let printed = ExportStats {
            exported: 7,
            ..ExportStats::default()
        };
        let refused = ExportStats {
            dropped_at_shutdown: 7,
            last_error: Some("connection refused".into()),
            ..ExportStats::default()
        };
        let logs_refused = ExportStats {
            dropped_export_failed: 4,
            last_error: Some("logs: connection refused".into()),
            ..ExportStats::default()
        };
        let cases = [
            (
                vec![
                    delivery("console", printed.clone()),
                    delivery("otlp", refused.clone()),
                ],
                vec![delivery("otlp", logs_refused.clone())],
                "7 spans and 4 log records were not delivered: otlp lost 7 of 7 spans \
                 (left at shutdown: 7) and 4 of 4 log records (export failed: 4); \
                 last error: connection refused",
                "a console that printed everything is not a delivery to the collector",
            ),
            (
                vec![delivery("otlp", printed.clone())],
                vec![delivery("otlp", logs_refused)],
                "4 log records were not delivered: otlp lost 4 of 4 log records \
                 (export failed: 4); last error: logs: connection refused",
                "log records alone",
            ),
            (
                vec![
                    delivery("otlp", refused.clone()),
                    delivery(
                        "file",
                        ExportStats {
                            exported: 6,
                            dropped_export_failed: 1,
                            last_error: Some("disk full".into()),
                            ..ExportStats::default()
                        },
                    ),
                ],
                vec![],
                "8 spans were not delivered: otlp lost 7 of 7 spans (left at shutdown: 7); \
                 last error: connection refused; file lost 1 of 7 spans (export failed: 1); \
                 last error: disk full",
                "two exporters, each with its own reason",
            ),
            (
                vec![delivery(
                    "otlp",
                    ExportStats {
                        exported: 0,
                        queued: 1,
                        ..ExportStats::default()
                    },
                )],
                vec![],
                "1 span was not delivered: otlp lost 1 of 1 span (still queued: 1)",
                "singular, and no error known",
            ),
        ];
        for (spans, logs, expected, reason) in cases {
            assert_eq!(line(&spans, &logs).as_deref(), Some(expected), "{reason}");
        }
    }
}
