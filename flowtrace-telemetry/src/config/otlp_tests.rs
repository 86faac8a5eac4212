//! Table-driven tests of `config::resolve`, `(env, expectation, reason)` rows:
//! the SDK switch, exporter selection and the OTLP settings. The helpers here
//! are shared with the other tables of `config`.

use super::*;

/// The environment of one table row.
pub(super) type Env<'a> = &'a [(&'a str, &'a str)];

pub(super) fn env(pairs: &[(&str, &str)]) -> EnvSource {
    EnvSource::Map(
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
}

pub(super) fn resolve_with(pairs: &[(&str, &str)], code: &Overrides) -> (Config, Vec<String>) {
    let (config, warnings) = resolve(&env(pairs), code);
    let config = config.expect("not disabled");
    (config, warnings.iter().map(ToString::to_string).collect())
}

pub(super) fn resolve_env(pairs: &[(&str, &str)]) -> (Config, Vec<String>) {
    resolve_with(pairs, &Overrides::default())
}

#[test]
fn sdk_disabled() {
    let cases: [(Env, bool, usize, &str); 5] = [
        (&[("OTEL_SDK_DISABLED", "true")], true, 0, "true disables"),
        (
            &[("OTEL_SDK_DISABLED", " TRUE ")],
            true,
            0,
            "trimmed, case-insensitive",
        ),
        (
            &[("OTEL_SDK_DISABLED", "false")],
            false,
            0,
            "false keeps it enabled",
        ),
        (
            &[("OTEL_SDK_DISABLED", "")],
            false,
            0,
            "empty counts as unset",
        ),
        (
            &[("OTEL_SDK_DISABLED", "1")],
            false,
            1,
            "1 is not true: warned, enabled",
        ),
    ];
    for (pairs, disabled, warnings, reason) in cases {
        let (config, got) = resolve(&env(pairs), &Overrides::default());
        assert_eq!(config.is_none(), disabled, "{reason}");
        assert_eq!(got.len(), warnings, "{reason}");
    }
}

#[test]
fn exporter_selection() {
    use ExporterKind::*;
    let cases: [(Env, &[ExporterKind], &str); 10] = [
        (
            &[],
            &[File],
            "nothing configured: the embedded file default",
        ),
        (
            &[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318")],
            &[Otlp],
            "an endpoint without an exporter list means otlp",
        ),
        (
            &[(
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                "http://c:4318/v1/traces",
            )],
            &[Otlp],
            "the per-signal endpoint counts too",
        ),
        (
            &[("OTEL_EXPORTER_OTLP_ENDPOINT", "not a url")],
            &[File],
            "an invalid endpoint is not configured",
        ),
        (
            &[("OTEL_TRACES_EXPORTER", "console")],
            &[Console],
            "explicit list",
        ),
        (
            &[("OTEL_TRACES_EXPORTER", "otlp, CONSOLE,otlp")],
            &[Otlp, Console],
            "trimmed, case-insensitive, deduplicated",
        ),
        (
            &[("OTEL_TRACES_EXPORTER", "none")],
            &[],
            "none disables exporting",
        ),
        (
            &[
                ("OTEL_TRACES_EXPORTER", "file"),
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
            ],
            &[File],
            "an explicit list beats the endpoint rule",
        ),
        (
            &[("OTEL_TRACES_EXPORTER", "zipkin")],
            &[File],
            "only invalid members: the setting is ignored",
        ),
        (
            &[("OTEL_TRACES_EXPORTER", "kafka,console")],
            &[Console],
            "the invalid member is dropped, the rest kept",
        ),
    ];
    for (pairs, expected, reason) in cases {
        assert_eq!(resolve_env(pairs).0.exporters, expected, "{reason}");
    }
}

#[test]
fn exporter_selection_from_code() {
    use ExporterKind::*;
    let cases: [(Env, Overrides, &[ExporterKind], &str); 4] = [
        (
            &[("OTEL_TRACES_EXPORTER", "otlp")],
            Overrides {
                exporters: vec![File],
                ..Default::default()
            },
            &[File],
            "exporters set in code replace the env list",
        ),
        (
            &[],
            Overrides {
                console: true,
                ..Default::default()
            },
            &[File, Console],
            "console(true) adds to the embedded default",
        ),
        (
            &[("OTEL_TRACES_EXPORTER", "console")],
            Overrides {
                console: true,
                ..Default::default()
            },
            &[Console],
            "console is not added twice",
        ),
        (
            &[],
            Overrides {
                otlp_endpoint: Some("http://c:4318".into()),
                ..Default::default()
            },
            &[Otlp],
            "an endpoint set in code selects otlp",
        ),
    ];
    for (pairs, code, expected, reason) in cases {
        assert_eq!(resolve_with(pairs, &code).0.exporters, expected, "{reason}");
    }
}

#[test]
fn otlp_endpoint_and_protocol() {
    let cases: [(Env, Protocol, &str, &str); 9] = [
        (
            &[],
            Protocol::HttpProtobuf,
            "http://localhost:4318/v1/traces",
            "spec defaults",
        ),
        (
            &[("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")],
            Protocol::Grpc,
            "http://localhost:4317",
            "gRPC default endpoint",
        ),
        (
            &[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318")],
            Protocol::HttpProtobuf,
            "http://c:4318/v1/traces",
            "HTTP base endpoint gets /v1/traces",
        ),
        (
            &[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318/")],
            Protocol::HttpProtobuf,
            "http://c:4318/v1/traces",
            "a trailing slash is not doubled",
        ),
        (
            &[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://base:4318"),
                (
                    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                    "http://sig:9999/custom",
                ),
            ],
            Protocol::HttpProtobuf,
            "http://sig:9999/custom",
            "the per-signal endpoint is used as-is and wins",
        ),
        (
            &[
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317"),
            ],
            Protocol::Grpc,
            "http://c:4317",
            "gRPC base endpoint is used as-is",
        ),
        (
            &[
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
                ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/json"),
            ],
            Protocol::HttpJson,
            "http://localhost:4318/v1/traces",
            "the per-signal protocol wins",
        ),
        (
            &[("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "carrier-pigeon")],
            Protocol::HttpProtobuf,
            "http://localhost:4318/v1/traces",
            "an invalid protocol is ignored",
        ),
        (
            &[
                ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "bogus"),
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
            ],
            Protocol::HttpProtobuf,
            "http://c:4318/v1/traces",
            "an invalid per-signal endpoint falls back to the general one",
        ),
    ];
    for (pairs, protocol, endpoint, reason) in cases {
        let otlp = resolve_env(pairs).0.otlp;
        assert_eq!(otlp.protocol, protocol, "{reason}");
        assert_eq!(otlp.endpoint, endpoint, "{reason}");
    }
}

#[test]
fn otlp_endpoint_from_code() {
    let cases = [
        (
            "http://c:4318",
            Protocol::HttpProtobuf,
            "http://c:4318/v1/traces",
            "bare host: base URL",
        ),
        (
            "http://c:4318/v1/traces",
            Protocol::HttpProtobuf,
            "http://c:4318/v1/traces",
            "full URL as-is",
        ),
        (
            "http://c:4317",
            Protocol::Grpc,
            "http://c:4317",
            "gRPC as-is",
        ),
    ];
    for (url, protocol, expected, reason) in cases {
        let code = Overrides {
            otlp_endpoint: Some(url.into()),
            otlp_protocol: Some(protocol),
            ..Default::default()
        };
        let pairs = [("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://env:1/x")];
        assert_eq!(
            resolve_with(&pairs, &code).0.otlp.endpoint,
            expected,
            "{reason}"
        );
    }
}

#[test]
fn otlp_headers_and_timeout() {
    type Case<'a> = (
        &'a [(&'a str, &'a str)],
        &'a [(&'a str, &'a str)],
        u64,
        usize,
        &'a str,
    );
    let cases: [Case; 6] = [
        (&[], &[], 10_000, 0, "defaults: no headers, 10 s"),
        (
            &[("OTEL_EXPORTER_OTLP_HEADERS", "Api-Key=a%20b,x=1")],
            &[("api-key", "a b"), ("x", "1")],
            10_000,
            0,
            "decoded, names lowercased",
        ),
        (
            &[
                ("OTEL_EXPORTER_OTLP_HEADERS", "a=1"),
                ("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "b=2"),
            ],
            &[("b", "2")],
            10_000,
            0,
            "the per-signal list replaces the general one",
        ),
        (
            &[("OTEL_EXPORTER_OTLP_HEADERS", "bad header=1,ok=2,nl=a%0Ab")],
            &[("ok", "2")],
            10_000,
            2,
            "invalid names and values are reported and skipped",
        ),
        (
            &[
                ("OTEL_EXPORTER_OTLP_TIMEOUT", "2000"),
                ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "500"),
            ],
            &[],
            500,
            0,
            "the per-signal timeout wins",
        ),
        (
            &[("OTEL_EXPORTER_OTLP_TIMEOUT", "10s")],
            &[],
            10_000,
            1,
            "a timeout with a unit is rejected",
        ),
    ];
    for (pairs, headers, timeout, warnings, reason) in cases {
        let (config, got) = resolve_env(pairs);
        let want: Vec<(String, String)> = headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(config.otlp.headers, want, "{reason}");
        assert_eq!(
            config.otlp.timeout,
            Duration::from_millis(timeout),
            "{reason}"
        );
        assert_eq!(got.len(), warnings, "{reason}: {got:?}");
    }
    let pairs = [
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
        ("OTEL_EXPORTER_OTLP_HEADERS", "trace-bin=AAA"),
    ];
    let (config, got) = resolve_env(&pairs);
    assert!(
        config.otlp.headers.is_empty(),
        "binary metadata is skipped for gRPC"
    );
    assert_eq!(got.len(), 1, "and reported");
}

#[test]
fn compression_insecure_and_client_identity_resolve_per_signal() {
    type Row<'a> = (
        Env<'a>,
        bool,
        bool,
        &'a str,
        Option<(&'a str, &'a str)>,
        &'a str,
    );
    let cases: [Row; 7] = [
        (
            &[],
            false,
            false,
            "http://localhost:4318/v1/traces",
            None,
            "defaults",
        ),
        (
            &[("OTEL_EXPORTER_OTLP_COMPRESSION", "GZIP")],
            true,
            true,
            "http://localhost:4318/v1/traces",
            None,
            "general gzip, case-insensitive, for both signals",
        ),
        (
            &[
                ("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip"),
                ("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "none"),
            ],
            false,
            true,
            "http://localhost:4318/v1/traces",
            None,
            "the per-signal value wins",
        ),
        (
            &[
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4317"),
            ],
            false,
            false,
            "https://collector:4317",
            None,
            "gRPC without a scheme is secure by default",
        ),
        (
            &[
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4317"),
                ("OTEL_EXPORTER_OTLP_TRACES_INSECURE", "true"),
            ],
            false,
            false,
            "http://collector:4317",
            None,
            "insecure: plain text",
        ),
        (
            &[
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "https://collector:4317"),
                ("OTEL_EXPORTER_OTLP_INSECURE", "true"),
            ],
            false,
            false,
            "https://collector:4317",
            None,
            "an explicit scheme wins over insecure",
        ),
        (
            &[
                ("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", "/a.pem"),
                ("OTEL_EXPORTER_OTLP_CLIENT_KEY", "/a.key"),
                ("OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE", "/t.pem"),
                ("OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY", "/t.key"),
            ],
            false,
            false,
            "http://localhost:4318/v1/traces",
            Some(("/t.pem", "/t.key")),
            "the per-signal pair wins as a pair",
        ),
    ];
    for (vars, gzip, logs_gzip, endpoint, identity, reason) in cases {
        let (config, warnings) = resolve_env(vars);
        assert!(warnings.is_empty(), "{reason}: {warnings:?}");
        assert_eq!(config.otlp.gzip, gzip, "{reason}");
        assert_eq!(config.logs.otlp.gzip, logs_gzip, "{reason}: logs");
        assert_eq!(config.otlp.endpoint, endpoint, "{reason}");
        let expected = identity.map(|(c, k)| (PathBuf::from(c), PathBuf::from(k)));
        assert_eq!(config.otlp.client_identity, expected, "{reason}");
    }
    let (config, _) = resolve_env(&[
        ("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", "/a.pem"),
        ("OTEL_EXPORTER_OTLP_CLIENT_KEY", "/a.key"),
    ]);
    assert_eq!(
        config.logs.otlp.client_identity,
        Some((PathBuf::from("/a.pem"), PathBuf::from("/a.key"))),
        "the general pair reaches the logs"
    );
}
