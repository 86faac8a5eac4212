//! The metrics settings: `OTEL_METRICS_EXPORTER`, `OTEL_METRIC_EXPORT_*`,
//! the `OTEL_EXPORTER_OTLP_METRICS_*` variables and `FLOWTRACE_METRICS_FILE`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::ExporterKind;
use crate::config::{METRICS, Otlp, Overrides, Reader, dedup, otlp};
use crate::parse::{self, Member};
use crate::warning::ConfigWarning;

/// Where the file exporter writes data points when neither
/// `FLOWTRACE_METRICS_FILE` nor the trace file's name says otherwise.
pub(crate) const DEFAULT_METRICS_FILE: &str = "flowtrace-metrics.jsonl";

/// The histograms' aggregation
/// (`OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Histograms {
    /// `explicit_bucket_histogram`: the instruments' own boundaries.
    Explicit,
    /// `base2_exponential_bucket_histogram`: 160 buckets, scale 20 at most.
    Exponential,
}

/// The resolved metrics settings.
#[derive(Clone, Debug)]
pub(crate) struct Metrics {
    /// Deduplicated, without `None`; empty means no metrics at all.
    pub(crate) exporters: Vec<ExporterKind>,
    pub(crate) otlp: Otlp,
    pub(crate) file: PathBuf,
    /// `OTEL_METRIC_EXPORT_INTERVAL`.
    pub(crate) interval: Duration,
    /// `OTEL_METRIC_EXPORT_TIMEOUT`.
    pub(crate) timeout: Duration,
    pub(crate) histograms: Histograms,
    /// `OTEL_METRICS_EXEMPLAR_FILTER` is not `always_off`.
    pub(crate) exemplars: bool,
}

const AGGREGATIONS: &str =
    "accepted values are explicit_bucket_histogram, base2_exponential_bucket_histogram";
const EXEMPLAR_FILTERS: &str = "accepted values are trace_based, always_off";
const TEMPORALITIES: &str = "accepted values are cumulative";

/// The metrics settings; the exporters default to the spans' (`traces`).
pub(crate) fn resolve(
    r: &mut Reader<'_>,
    code: &Overrides,
    traces: &[ExporterKind],
    trace_file: &Path,
) -> Metrics {
    const DEFAULT: &str = "the default is used";
    let exporters = r
        .members(
            "OTEL_METRICS_EXPORTER",
            "accepted values are otlp, console, file, none",
            metrics_exporter,
            ExporterKind::None,
        )
        .map_or_else(|| traces.to_vec(), dedup);
    let file = r
        .raw("FLOWTRACE_METRICS_FILE")
        .map(PathBuf::from)
        .unwrap_or_else(|| metrics_file_beside(trace_file));
    let interval = r
        .parse("OTEL_METRIC_EXPORT_INTERVAL", parse::millis, DEFAULT)
        .unwrap_or(Duration::from_millis(60_000));
    let timeout = r
        .parse("OTEL_METRIC_EXPORT_TIMEOUT", parse::millis, DEFAULT)
        .unwrap_or(Duration::from_millis(30_000));
    let histograms = r
        .parse(
            "OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION",
            |value| match value.to_ascii_lowercase().as_str() {
                "explicit_bucket_histogram" => Ok(Histograms::Explicit),
                "base2_exponential_bucket_histogram" => Ok(Histograms::Exponential),
                _ => Err(AGGREGATIONS.to_owned()),
            },
            "explicit_bucket_histogram is used",
        )
        .unwrap_or(Histograms::Explicit);
    let exemplars = r
        .parse(
            "OTEL_METRICS_EXEMPLAR_FILTER",
            |value| match value.to_ascii_lowercase().as_str() {
                "trace_based" => Ok(true),
                "always_off" => Ok(false),
                _ => Err(EXEMPLAR_FILTERS.to_owned()),
            },
            "trace_based is used",
        )
        .unwrap_or(true);
    if let Some(value) = r.raw("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE") {
        match value.to_ascii_lowercase().as_str() {
            "cumulative" => {}
            "delta" | "lowmemory" => r.warnings.push(ConfigWarning::unsupported(
                "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE",
                value,
                TEMPORALITIES,
                "cumulative is used (each export carries the totals, so an outage loses nothing)",
            )),
            _ => r.warnings.push(ConfigWarning::invalid(
                "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE",
                value,
                TEMPORALITIES,
                "cumulative is used",
            )),
        }
    }
    Metrics {
        exporters,
        otlp: otlp(r, code, &METRICS),
        file,
        interval,
        timeout,
        histograms,
        exemplars,
    }
}

/// One member of `OTEL_METRICS_EXPORTER`.
fn metrics_exporter(member: &str) -> Result<ExporterKind, Member> {
    match member.to_ascii_lowercase().as_str() {
        "prometheus" => Err(Member::Unsupported),
        _ => parse::exporter(member),
    }
}

/// The metrics file next to a trace file: `traces` in its name becomes
/// `metrics` (`flowtrace-traces.jsonl` → `flowtrace-metrics.jsonl`), else
/// `.metrics` goes before the extension (`run.jsonl` → `run.metrics.jsonl`).
pub(crate) fn metrics_file_beside(trace_file: &Path) -> PathBuf {
    let Some(name) = trace_file.file_name().and_then(|n| n.to_str()) else {
        return PathBuf::from(DEFAULT_METRICS_FILE);
    };
    let name = if name.contains("traces") {
        name.replacen("traces", "metrics", 1)
    } else {
        match name.rsplit_once('.') {
            Some((stem, ext)) if !stem.is_empty() => format!("{stem}.metrics.{ext}"),
            _ => format!("{name}.metrics"),
        }
    };
    trace_file.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{EnvSource, resolve as resolve_all};

    fn metrics(vars: &[(&str, &str)]) -> (Metrics, Vec<ConfigWarning>) {
        let env = EnvSource::Map(
            vars.iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        );
        let (config, warnings) = resolve_all(&env, &Overrides::default());
        (config.expect("enabled").metrics, warnings)
    }

    #[test]
    fn defaults_follow_the_spans_and_write_next_to_the_trace_file() {
        let (m, warnings) = metrics(&[("FLOWTRACE_TRACE_FILE", "out/run-traces.jsonl")]);
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(m.exporters, vec![ExporterKind::File]);
        assert_eq!(m.file, PathBuf::from("out/run-metrics.jsonl"));
        assert_eq!(m.interval, Duration::from_secs(60));
        assert_eq!(m.timeout, Duration::from_secs(30));
        assert_eq!(m.histograms, Histograms::Explicit);
        assert!(m.exemplars);
        assert_eq!(m.otlp.endpoint, "http://localhost:4318/v1/metrics");
        assert_eq!(
            metrics_file_beside(Path::new("run.jsonl")),
            PathBuf::from("run.metrics.jsonl")
        );
    }

    #[test]
    fn every_variable_is_read() {
        let (m, warnings) = metrics(&[
            ("OTEL_METRICS_EXPORTER", "otlp,console"),
            ("OTEL_METRIC_EXPORT_INTERVAL", "250"),
            ("OTEL_METRIC_EXPORT_TIMEOUT", "1500"),
            (
                "OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION",
                "base2_exponential_bucket_histogram",
            ),
            ("OTEL_METRICS_EXEMPLAR_FILTER", "always_off"),
            (
                "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
                "http://127.0.0.1:9/m",
            ),
            ("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "grpc"),
            ("OTEL_EXPORTER_OTLP_METRICS_HEADERS", "x-team=search"),
            ("OTEL_EXPORTER_OTLP_METRICS_TIMEOUT", "700"),
            ("FLOWTRACE_METRICS_FILE", "m.jsonl"),
        ]);
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(m.exporters, vec![ExporterKind::Otlp, ExporterKind::Console]);
        assert_eq!(m.interval, Duration::from_millis(250));
        assert_eq!(m.timeout, Duration::from_millis(1500));
        assert_eq!(m.histograms, Histograms::Exponential);
        assert!(!m.exemplars);
        assert_eq!(m.otlp.endpoint, "http://127.0.0.1:9/m");
        assert_eq!(m.otlp.protocol, crate::Protocol::Grpc);
        assert_eq!(
            m.otlp.headers,
            vec![("x-team".to_owned(), "search".to_owned())]
        );
        assert_eq!(m.otlp.timeout, Duration::from_millis(700));
        assert_eq!(m.file, PathBuf::from("m.jsonl"));
    }

    #[test]
    fn bad_values_are_reported_by_name_and_the_defaults_kept() {
        let (m, warnings) = metrics(&[
            ("OTEL_METRICS_EXPORTER", "prometheus,carrier-pigeon"),
            ("OTEL_METRIC_EXPORT_INTERVAL", "soon"),
            ("OTEL_METRIC_EXPORT_TIMEOUT", "-1"),
            (
                "OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION",
                "fancy",
            ),
            ("OTEL_METRICS_EXEMPLAR_FILTER", "sometimes"),
            ("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE", "delta"),
        ]);
        let text: Vec<String> = warnings.iter().map(ToString::to_string).collect();
        for name in [
            "OTEL_METRICS_EXPORTER",
            "OTEL_METRIC_EXPORT_INTERVAL",
            "OTEL_METRIC_EXPORT_TIMEOUT",
            "OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION",
            "OTEL_METRICS_EXEMPLAR_FILTER",
            "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE",
        ] {
            assert!(
                text.iter().any(|w| w.contains(name)),
                "no warning names {name}: {text:#?}"
            );
        }
        assert!(text.iter().any(|w| w.contains("prometheus")));
        assert!(text.iter().any(|w| w.contains("carrier-pigeon")));
        assert_eq!(m.exporters, vec![ExporterKind::File]);
        assert_eq!(m.interval, Duration::from_secs(60));
        assert_eq!(m.timeout, Duration::from_secs(30));
        assert_eq!(m.histograms, Histograms::Explicit);
        assert!(m.exemplars);
    }
}
