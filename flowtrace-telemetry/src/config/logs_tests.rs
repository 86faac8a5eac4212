//! Table-driven tests of the log settings `config::resolve` gives:
//! `OTEL_LOGS_EXPORTER`, the `…_LOGS_…` OTLP variables and the log file.

use super::otlp_tests::{Env, resolve_env, resolve_with};
use super::*;

#[test]
fn log_exporters() {
    use ExporterKind::*;
    let cases: [(Env, &[ExporterKind], usize, &str); 6] = [
        (&[], &[File], 0, "the embedded default, like spans"),
        (
            &[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318")],
            &[Otlp],
            0,
            "an endpoint selects OTLP, like spans",
        ),
        (
            &[("OTEL_TRACES_EXPORTER", "otlp,console")],
            &[Otlp, Console],
            0,
            "the spans' exporters when OTEL_LOGS_EXPORTER is unset",
        ),
        (
            &[
                ("OTEL_TRACES_EXPORTER", "otlp"),
                ("OTEL_LOGS_EXPORTER", "file"),
            ],
            &[File],
            0,
            "OTEL_LOGS_EXPORTER wins",
        ),
        (
            &[("OTEL_LOGS_EXPORTER", "none")],
            &[],
            0,
            "none exports no logs",
        ),
        (
            &[("OTEL_LOGS_EXPORTER", "otlp,kafka")],
            &[Otlp],
            1,
            "an unknown member is reported and skipped",
        ),
    ];
    for (pairs, want, warnings, reason) in cases {
        let (config, got) = resolve_env(pairs);
        assert_eq!(config.logs.exporters, want, "{reason}");
        assert_eq!(got.len(), warnings, "{reason}: {got:?}");
        if warnings > 0 {
            assert!(got[0].contains("OTEL_LOGS_EXPORTER"), "{reason}: {got:?}");
        }
    }
}

#[test]
fn log_endpoints() {
    let cases: [(Env, &str, &str); 6] = [
        (&[], "http://localhost:4318/v1/logs", "the HTTP default"),
        (
            &[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318/")],
            "http://c:4318/v1/logs",
            "the base URL gets /v1/logs",
        ),
        (
            &[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
                ("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", "http://l:9/custom"),
            ],
            "http://l:9/custom",
            "the per-signal endpoint is used as-is",
        ),
        (
            &[(
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                "http://t:4318/v1/traces",
            )],
            "http://localhost:4318/v1/logs",
            "the traces endpoint is not the logs'",
        ),
        (
            &[
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317"),
            ],
            "http://c:4317",
            "gRPC takes the base as-is",
        ),
        (
            &[("OTEL_EXPORTER_OTLP_LOGS_PROTOCOL", "grpc")],
            "http://localhost:4317",
            "a per-signal protocol",
        ),
    ];
    for (pairs, want, reason) in cases {
        let (config, got) = resolve_env(pairs);
        assert_eq!(config.logs.otlp.endpoint, want, "{reason}");
        assert!(got.is_empty(), "{reason}: {got:?}");
    }
    let code = Overrides {
        otlp_endpoint: Some("http://c:4318/v1/traces".into()),
        ..Overrides::default()
    };
    let (config, _) = resolve_with(&[], &code);
    assert_eq!(
        config.logs.otlp.endpoint, "http://c:4318/v1/logs",
        "a full traces URL from code becomes the logs URL"
    );
}

#[test]
fn log_file_sits_beside_the_trace_file() {
    for (trace_file, want, reason) in [
        (
            "flowtrace-traces.jsonl",
            "flowtrace-logs.jsonl",
            "the default",
        ),
        (
            "/tmp/run/traces.jsonl",
            "/tmp/run/logs.jsonl",
            "traces → logs",
        ),
        (
            "/tmp/run/out.jsonl",
            "/tmp/run/out.logs.jsonl",
            "else .logs before the extension",
        ),
        ("out", "out.logs", "no extension"),
    ] {
        assert_eq!(
            log_file_beside(std::path::Path::new(trace_file)),
            PathBuf::from(want),
            "{reason}"
        );
    }
    let (config, _) = resolve_env(&[("FLOWTRACE_TRACE_FILE", "/tmp/x-traces.jsonl")]);
    assert_eq!(config.logs.file, PathBuf::from("/tmp/x-logs.jsonl"));
    let (config, _) = resolve_env(&[("FLOWTRACE_LOG_FILE", "/tmp/l.jsonl")]);
    assert_eq!(
        config.logs.file,
        PathBuf::from("/tmp/l.jsonl"),
        "FLOWTRACE_LOG_FILE"
    );
}

/// Delay ms, export timeout ms, queue size, batch size.
type Expected = (u64, u64, usize, usize);

#[test]
fn log_batches_read_blrp_not_bsp() {
    let cases: [(Env, Expected, usize, &str); 4] = [
        (
            &[],
            (1000, 30_000, 2048, 512),
            0,
            "the specification's defaults",
        ),
        (
            &[
                ("OTEL_BSP_SCHEDULE_DELAY", "7"),
                ("OTEL_BSP_MAX_QUEUE_SIZE", "8"),
            ],
            (1000, 30_000, 2048, 512),
            0,
            "the span processor's variables are not the log processor's",
        ),
        (
            &[
                ("OTEL_BLRP_SCHEDULE_DELAY", "250"),
                ("OTEL_BLRP_EXPORT_TIMEOUT", "900"),
                ("OTEL_BLRP_MAX_QUEUE_SIZE", "64"),
                ("OTEL_BLRP_MAX_EXPORT_BATCH_SIZE", "16"),
            ],
            (250, 900, 64, 16),
            0,
            "each OTEL_BLRP_ variable",
        ),
        (
            &[("OTEL_BLRP_MAX_EXPORT_BATCH_SIZE", "4096")],
            (1000, 30_000, 2048, 2048),
            1,
            "a batch over the queue is reported with its name",
        ),
    ];
    for (pairs, (delay, timeout, queue, size), warnings, reason) in cases {
        let (config, got) = resolve_env(pairs);
        let b = &config.log_batch;
        assert_eq!(b.schedule_delay.as_millis() as u64, delay, "{reason}");
        assert_eq!(b.export_timeout.as_millis() as u64, timeout, "{reason}");
        assert_eq!(b.max_queue_size, queue, "{reason}");
        assert_eq!(b.max_export_batch_size, size, "{reason}");
        assert_eq!(got.len(), warnings, "{reason}: {got:?}");
        if warnings > 0 {
            assert!(
                got[0].contains("OTEL_BLRP_MAX_EXPORT_BATCH_SIZE"),
                "{reason}: {got:?}"
            );
        }
    }
}
