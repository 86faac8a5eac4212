//! Puts flowtrace's exemplars on the histogram points they belong to: same
//! instrument, same attributes. The SDK's own data points carry none.

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::metrics::v1::{Exemplar, exemplar, metric};

/// Puts each of `kept` on the matching data point of `request`; those
/// without one (their point was not collected) are left out.
pub(crate) fn attach(
    request: &mut ExportMetricsServiceRequest,
    kept: &[flowtrace::metrics::Exemplar],
) {
    if kept.is_empty() {
        return;
    }
    let kept: Vec<(Vec<KeyValue>, &'static str, Exemplar)> = kept
        .iter()
        .map(|e| {
            let attributes = e.attributes.iter().map(KeyValue::from).collect();
            let time_unix_nano = e
                .time
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64);
            let exemplar = Exemplar {
                filtered_attributes: Vec::new(),
                time_unix_nano,
                span_id: e.span_id.to_bytes().to_vec(),
                trace_id: e.trace_id.to_bytes().to_vec(),
                value: Some(exemplar::Value::AsDouble(e.value)),
            };
            (attributes, e.instrument, exemplar)
        })
        .collect();
    for metric in request
        .resource_metrics
        .iter_mut()
        .flat_map(|rm| rm.scope_metrics.iter_mut())
        .flat_map(|sm| sm.metrics.iter_mut())
    {
        let name = metric.name.as_str();
        match &mut metric.data {
            Some(metric::Data::Histogram(histogram)) => {
                for point in &mut histogram.data_points {
                    point
                        .exemplars
                        .extend(matching(&kept, name, &point.attributes));
                }
            }
            Some(metric::Data::ExponentialHistogram(histogram)) => {
                for point in &mut histogram.data_points {
                    point
                        .exemplars
                        .extend(matching(&kept, name, &point.attributes));
                }
            }
            _ => {}
        }
    }
}

fn matching<'a>(
    kept: &'a [(Vec<KeyValue>, &'static str, Exemplar)],
    name: &'a str,
    attributes: &'a [KeyValue],
) -> impl Iterator<Item = Exemplar> + 'a {
    kept.iter()
        .filter(move |(of, instrument, _)| {
            *instrument == name
                && of.len() == attributes.len()
                && of.iter().all(|kv| attributes.contains(kv))
        })
        .map(|(_, _, exemplar)| exemplar.clone())
}
