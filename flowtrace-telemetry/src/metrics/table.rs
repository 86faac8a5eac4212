//! The console's metrics: a table per task (and per run) from the last,
//! cumulative, collection — count, errors, retries and p50 / p95 / max of
//! the duration. Percentiles are read from the histogram's buckets,
//! interpolated linearly inside a bucket and clamped to the recorded min
//! and max, the way Prometheus' `histogram_quantile` does.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{Metric, metric, number_data_point};

/// One row: a task or a run.
#[derive(Default)]
struct Row {
    count: u64,
    errors: u64,
    cancelled: u64,
    retries: u64,
    /// `(lower, upper, count)` of every bucket of every point.
    buckets: Vec<(f64, f64, u64)>,
    min: Option<f64>,
    max: Option<f64>,
}

impl Row {
    fn add_point(&mut self, count: u64, min: Option<f64>, max: Option<f64>) {
        self.count += count;
        if let Some(min) = min {
            self.min = Some(self.min.map_or(min, |m| m.min(min)));
        }
        if let Some(max) = max {
            self.max = Some(self.max.map_or(max, |m| m.max(max)));
        }
    }

    /// The `q` quantile (0..=1) of the durations.
    fn quantile(&self, q: f64) -> Option<f64> {
        let total: u64 = self.buckets.iter().map(|b| b.2).sum();
        if total == 0 {
            return None;
        }
        // The points of one task share their boundaries: merge equal buckets.
        let mut buckets: Vec<(f64, f64, u64)> = Vec::new();
        for &(lower, upper, count) in self.buckets.iter().filter(|b| b.2 > 0) {
            match buckets.iter_mut().find(|b| b.0 == lower && b.1 == upper) {
                Some(bucket) => bucket.2 += count,
                None => buckets.push((lower, upper, count)),
            }
        }
        buckets.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.total_cmp(&b.0)));
        let rank = q * total as f64;
        let mut seen = 0.0;
        let mut found = buckets.last().map(|b| b.1);
        for (lower, upper, count) in buckets {
            let count = count as f64;
            if count > 0.0 && seen + count >= rank {
                found = Some(lower + (upper - lower) * ((rank - seen) / count).clamp(0.0, 1.0));
                break;
            }
            seen += count;
        }
        let mut value = found?;
        if let Some(min) = self.min {
            value = value.max(min);
        }
        if let Some(max) = self.max {
            value = value.min(max);
        }
        Some(value)
    }
}

fn text<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a str> {
    attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v| match &v.value {
            Some(any_value::Value::StringValue(s)) => Some(s.as_str()),
            _ => None,
        })
}

fn flag(attributes: &[KeyValue], key: &str) -> bool {
    attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .is_some_and(|v| matches!(v.value, Some(any_value::Value::BoolValue(true))))
}

/// Adds the duration points of `metric` to `rows`, keyed by the attribute
/// `by`; `failed` tells which status / outcome values count as errors.
fn durations(
    metric: &Metric,
    by: &str,
    status: &str,
    failed: &[&str],
    rows: &mut BTreeMap<String, Row>,
) {
    let mut add = |attributes: &[KeyValue],
                   count: u64,
                   min: Option<f64>,
                   max: Option<f64>,
                   buckets: Vec<(f64, f64, u64)>| {
        let Some(name) = text(attributes, by) else {
            return;
        };
        let row = rows.entry(name.to_owned()).or_default();
        row.add_point(count, min, max);
        match text(attributes, status) {
            Some(s) if failed.contains(&s) => row.errors += count,
            Some("cancelled") => row.cancelled += count,
            _ => {}
        }
        row.buckets.extend(buckets);
    };
    match &metric.data {
        Some(metric::Data::Histogram(h)) => {
            for p in &h.data_points {
                let n = p.explicit_bounds.len();
                let buckets = p
                    .bucket_counts
                    .iter()
                    .enumerate()
                    .map(|(i, &count)| {
                        let lower = if i == 0 {
                            p.min.unwrap_or(0.0)
                        } else {
                            p.explicit_bounds[i - 1]
                        };
                        let upper = if i >= n {
                            p.max.unwrap_or(lower)
                        } else {
                            p.explicit_bounds[i]
                        };
                        (lower, upper.max(lower), count)
                    })
                    .collect();
                add(&p.attributes, p.count, p.min, p.max, buckets);
            }
        }
        Some(metric::Data::ExponentialHistogram(h)) => {
            for p in &h.data_points {
                let base = 2f64.powf(2f64.powi(-p.scale));
                let mut buckets = vec![(0.0, 0.0, p.zero_count)];
                if let Some(positive) = &p.positive {
                    for (k, &count) in positive.bucket_counts.iter().enumerate() {
                        let index = f64::from(positive.offset) + k as f64;
                        buckets.push((base.powf(index), base.powf(index + 1.0), count));
                    }
                }
                add(&p.attributes, p.count, p.min, p.max, buckets);
            }
        }
        _ => {}
    }
}

/// The tables, or an empty string when nothing ran.
pub(crate) fn render(request: &ExportMetricsServiceRequest) -> String {
    use flowtrace::attributes::{RUN_NAME, RUN_STATUS, TASK_NAME, TASK_OUTCOME, TASK_RETRY};
    use flowtrace::metrics::{RUN_DURATION, TASK_ATTEMPTS, TASK_DURATION};
    let mut tasks = BTreeMap::new();
    let mut runs = BTreeMap::new();
    let metrics = request
        .resource_metrics
        .iter()
        .flat_map(|rm| &rm.scope_metrics)
        .flat_map(|sm| &sm.metrics);
    let mut retries: BTreeMap<String, u64> = BTreeMap::new();
    for metric in metrics {
        match metric.name.as_str() {
            TASK_DURATION => durations(
                metric,
                TASK_NAME,
                TASK_OUTCOME,
                &["error", "timeout"],
                &mut tasks,
            ),
            RUN_DURATION => durations(metric, RUN_NAME, RUN_STATUS, &["failed"], &mut runs),
            TASK_ATTEMPTS => {
                if let Some(metric::Data::Sum(sum)) = &metric.data {
                    for p in &sum.data_points {
                        let (Some(name), true) = (
                            text(&p.attributes, TASK_NAME),
                            flag(&p.attributes, TASK_RETRY),
                        ) else {
                            continue;
                        };
                        let n = match p.value {
                            Some(number_data_point::Value::AsInt(n)) => n.max(0) as u64,
                            Some(number_data_point::Value::AsDouble(n)) => n.max(0.0) as u64,
                            None => 0,
                        };
                        *retries.entry(name.to_owned()).or_default() += n;
                    }
                }
            }
            _ => {}
        }
    }
    for (name, n) in retries {
        tasks.entry(name).or_default().retries = n;
    }
    let mut out = String::new();
    table(&mut out, "task", &tasks, true);
    table(&mut out, "run", &runs, false);
    out
}

fn table(out: &mut String, what: &str, rows: &BTreeMap<String, Row>, retries: bool) {
    if rows.is_empty() {
        return;
    }
    let width = rows
        .keys()
        .map(String::len)
        .max()
        .unwrap_or(0)
        .max(what.len());
    let _ = writeln!(
        out,
        "{what:<width$}  {:>7}  {:>7}  {:>9}  {:>7}  {:>9}  {:>9}  {:>9}",
        "count",
        "errors",
        "cancelled",
        if retries { "retries" } else { "" },
        "p50",
        "p95",
        "max"
    );
    for (name, row) in rows {
        let retries = if retries {
            row.retries.to_string()
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "{name:<width$}  {:>7}  {:>7}  {:>9}  {:>7}  {:>9}  {:>9}  {:>9}",
            row.count,
            row.errors,
            row.cancelled,
            retries,
            seconds(row.quantile(0.5)),
            seconds(row.quantile(0.95)),
            seconds(row.max),
        );
    }
}

/// `12.3ms`, `4.56s`, `2.5min`, `1.2h`.
fn seconds(value: Option<f64>) -> String {
    match value {
        None => "-".to_owned(),
        Some(s) if s < 1.0 => format!("{:.1}ms", s * 1000.0),
        Some(s) if s < 60.0 => format!("{s:.2}s"),
        Some(s) if s < 3600.0 => format!("{:.1}min", s / 60.0),
        Some(s) => format!("{:.1}h", s / 3600.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_interpolate_inside_buckets_and_stay_within_min_and_max() {
        let row = Row {
            count: 4,
            buckets: vec![(0.0, 0.01, 2), (0.01, 0.1, 2)],
            min: Some(0.002),
            max: Some(0.05),
            ..Row::default()
        };
        assert_eq!(row.quantile(0.5), Some(0.01));
        let p95 = row.quantile(0.95).unwrap();
        assert!(p95 > 0.01 && p95 <= 0.05, "{p95}");
        assert_eq!(row.quantile(0.0), Some(0.002));
        assert_eq!(Row::default().quantile(0.5), None);
        assert_eq!(seconds(Some(0.0123)), "12.3ms");
        assert_eq!(seconds(Some(4.561)), "4.56s");
    }

    #[test]
    fn the_table_reads_count_errors_retries_and_percentiles_per_task() {
        use opentelemetry_proto::tonic::common::v1::AnyValue;
        use opentelemetry_proto::tonic::metrics::v1::{
            Histogram, HistogramDataPoint, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
        };
        let kv = |k: &str, v: any_value::Value| KeyValue {
            key: k.to_owned(),
            value: Some(AnyValue { value: Some(v) }),
            ..Default::default()
        };
        let s = |v: &str| any_value::Value::StringValue(v.to_owned());
        let bounds = flowtrace::metrics::DURATION_BOUNDARIES.to_vec();
        let point = |outcome: &str, counts: &[(usize, u64)], min: f64, max: f64| {
            let mut bucket_counts = vec![0; bounds.len() + 1];
            for (i, n) in counts {
                bucket_counts[*i] = *n;
            }
            HistogramDataPoint {
                attributes: vec![
                    kv("flowtrace.task.name", s("fetch")),
                    kv("flowtrace.task.outcome", s(outcome)),
                ],
                count: counts.iter().map(|c| c.1).sum(),
                bucket_counts,
                explicit_bounds: bounds.clone(),
                min: Some(min),
                max: Some(max),
                ..Default::default()
            }
        };
        let request = ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                scope_metrics: vec![ScopeMetrics {
                    metrics: vec![
                        Metric {
                            name: "flowtrace.task.duration".into(),
                            data: Some(metric::Data::Histogram(Histogram {
                                data_points: vec![
                                    point("ok", &[(4, 2)], 0.0196, 0.0203),
                                    point("error", &[(4, 1)], 0.0134, 0.0134),
                                ],
                                aggregation_temporality: 2,
                            })),
                            ..Default::default()
                        },
                        Metric {
                            name: "flowtrace.task.attempts".into(),
                            data: Some(metric::Data::Sum(Sum {
                                data_points: vec![NumberDataPoint {
                                    attributes: vec![
                                        kv("flowtrace.task.name", s("fetch")),
                                        kv(
                                            "flowtrace.task.retry",
                                            any_value::Value::BoolValue(true),
                                        ),
                                    ],
                                    value: Some(number_data_point::Value::AsInt(2)),
                                    ..Default::default()
                                }],
                                aggregation_temporality: 2,
                                is_monotonic: true,
                            })),
                            ..Default::default()
                        },
                    ],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        let text = render(&request);
        let row = text.lines().find(|l| l.starts_with("fetch")).expect(&text);
        let cells: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(cells[..5], ["fetch", "3", "1", "0", "2"], "{text}");
        assert_eq!(
            cells[5], "17.5ms",
            "p50 halfway into the 10-25 ms bucket: {text}"
        );
        assert_eq!(cells[7], "20.3ms", "max: {text}");
    }
}
