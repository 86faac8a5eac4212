//! Metrics as a test reads them: data points flattened out of OTLP
//! `ExportMetricsServiceRequest`s, from the test receiver or from the
//! OTLP/JSON metrics file (one request per line).

use std::path::Path;

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{
    NumberDataPoint, exemplar, metric, number_data_point,
};

/// One data point of one metric.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    pub metric: String,
    /// Sorted by key; values rendered as strings.
    pub attributes: Vec<(String, String)>,
    /// Histograms: the number of measurements; sums and gauges: 0.
    pub count: u64,
    /// Histograms: their sum; sums and gauges: the value.
    pub value: f64,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub start_unix_nano: u64,
    pub time_unix_nano: u64,
    pub exemplars: Vec<Exemplar>,
    /// `histogram`, `exponential_histogram`, `sum`, `gauge`.
    pub kind: &'static str,
    /// Sums: monotonic (a counter).
    pub monotonic: bool,
}

impl Point {
    pub fn attr(&self, key: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Exemplar {
    /// Lowercase hex.
    pub trace_id: String,
    pub span_id: String,
    pub value: f64,
    pub time_unix_nano: u64,
}

fn render(kv: &KeyValue) -> (String, String) {
    let value = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::DoubleValue(d)) => d.to_string(),
        other => format!("{other:?}"),
    };
    (kv.key.clone(), value)
}

fn attributes(kvs: &[KeyValue]) -> Vec<(String, String)> {
    let mut out: Vec<_> = kvs.iter().map(render).collect();
    out.sort();
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn exemplars(list: &[opentelemetry_proto::tonic::metrics::v1::Exemplar]) -> Vec<Exemplar> {
    list.iter()
        .map(|e| Exemplar {
            trace_id: hex(&e.trace_id),
            span_id: hex(&e.span_id),
            value: match e.value {
                Some(exemplar::Value::AsDouble(v)) => v,
                Some(exemplar::Value::AsInt(v)) => v as f64,
                None => f64::NAN,
            },
            time_unix_nano: e.time_unix_nano,
        })
        .collect()
}

/// A sum's or gauge's data point.
fn number_point(name: &str, p: &NumberDataPoint, kind: &'static str, monotonic: bool) -> Point {
    Point {
        metric: name.to_owned(),
        attributes: attributes(&p.attributes),
        count: 0,
        value: number(&p.value),
        min: None,
        max: None,
        start_unix_nano: p.start_time_unix_nano,
        time_unix_nano: p.time_unix_nano,
        exemplars: exemplars(&p.exemplars),
        kind,
        monotonic,
    }
}

fn number(value: &Option<number_data_point::Value>) -> f64 {
    match value {
        Some(number_data_point::Value::AsDouble(v)) => *v,
        Some(number_data_point::Value::AsInt(v)) => *v as f64,
        None => f64::NAN,
    }
}

/// Every data point of `request`.
pub fn points(request: &ExportMetricsServiceRequest) -> Vec<Point> {
    let mut out = Vec::new();
    for metric in request
        .resource_metrics
        .iter()
        .flat_map(|rm| &rm.scope_metrics)
        .flat_map(|sm| &sm.metrics)
    {
        let name = metric.name.clone();
        match &metric.data {
            Some(metric::Data::Histogram(h)) => out.extend(h.data_points.iter().map(|p| Point {
                metric: name.clone(),
                attributes: attributes(&p.attributes),
                count: p.count,
                value: p.sum.unwrap_or(f64::NAN),
                min: p.min,
                max: p.max,
                start_unix_nano: p.start_time_unix_nano,
                time_unix_nano: p.time_unix_nano,
                exemplars: exemplars(&p.exemplars),
                kind: "histogram",
                monotonic: false,
            })),
            Some(metric::Data::ExponentialHistogram(h)) => {
                out.extend(h.data_points.iter().map(|p| Point {
                    metric: name.clone(),
                    attributes: attributes(&p.attributes),
                    count: p.count,
                    value: p.sum.unwrap_or(f64::NAN),
                    min: p.min,
                    max: p.max,
                    start_unix_nano: p.start_time_unix_nano,
                    time_unix_nano: p.time_unix_nano,
                    exemplars: exemplars(&p.exemplars),
                    kind: "exponential_histogram",
                    monotonic: false,
                }))
            }
            Some(metric::Data::Sum(s)) => out.extend(
                s.data_points
                    .iter()
                    .map(|p| number_point(&name, p, "sum", s.is_monotonic)),
            ),
            Some(metric::Data::Gauge(g)) => out.extend(
                g.data_points
                    .iter()
                    .map(|p| number_point(&name, p, "gauge", false)),
            ),
            _ => {}
        }
    }
    out
}

/// The requests of an OTLP/JSON metrics file, one per line.
pub fn read_metrics_file(path: &Path) -> Vec<ExportMetricsServiceRequest> {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .enumerate()
        .map(|(n, line)| {
            serde_json::from_str(line).unwrap_or_else(|e| {
                panic!(
                    "{} line {}: not an ExportMetricsServiceRequest: {e}\n{line}",
                    path.display(),
                    n + 1
                )
            })
        })
        .collect()
}

/// The points of `metric` in the latest request that has any (cumulative:
/// the totals).
pub fn latest(requests: &[ExportMetricsServiceRequest], metric: &str) -> Vec<Point> {
    requests
        .iter()
        .rev()
        .map(points)
        .map(|points| {
            points
                .into_iter()
                .filter(|p| p.metric == metric)
                .collect::<Vec<_>>()
        })
        .find(|points| !points.is_empty())
        .unwrap_or_default()
}

/// Every exemplar of `metric` in all of `requests`.
pub fn all_exemplars(
    requests: &[ExportMetricsServiceRequest],
    metric: &str,
) -> Vec<(Point, Exemplar)> {
    requests
        .iter()
        .flat_map(points)
        .filter(|p| p.metric == metric)
        .flat_map(|p| p.exemplars.clone().into_iter().map(move |e| (p.clone(), e)))
        .collect()
}
