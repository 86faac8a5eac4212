//! No secret is ever printed. A canary token goes into the OTLP headers and
//! comes back on every path that reports something — a bad header, an
//! endpoint answering 401 with a body that echoes the credentials (both HTTP
//! protocols), a gRPC status carrying it, a TLS failure, the `replay`
//! command — and appears in no warning, error, `Display` or `Debug` output.
//! The endpoints are real local ones (`tests/support/fake_otlp.rs`, the TLS
//! proxy), and each test checks the canary did reach them.

#[path = "../../tests/support/mod.rs"]
mod support;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use flowtrace_telemetry::{ExporterKind, Protocol, ReplayError, ReplayOptions, Telemetry};
use opentelemetry::trace::{Span as _, Tracer as _, TracerProvider as _};
use support::fake_otlp::{FakeGrpc, FakeHttp, Reply};
use support::run_bounded;
use support::tls_proxy::TlsProxy;

const TOKEN: &str = "sk-CANARY-7f3a9e";
const KEY: &str = "ak-CANARY-51c2d0";

fn headers_var() -> String {
    format!("authorization=Bearer%20{TOKEN},x-api-key={KEY}")
}

/// Panics, showing where, if `text` holds either canary.
fn assert_clean(what: &str, text: &str) {
    assert!(
        !text.contains(TOKEN) && !text.contains(KEY) && !text.contains("CANARY"),
        "{what} shows a secret:\n{text}"
    );
}

fn telemetry(protocol: Protocol, endpoint: &str, extra: &[(&str, &str)]) -> Telemetry {
    let headers = headers_var();
    let mut vars = vec![
        ("OTEL_EXPORTER_OTLP_HEADERS", headers.as_str()),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "1500"),
        ("OTEL_BSP_SCHEDULE_DELAY", "20"),
        ("OTEL_LOGS_EXPORTER", "none"),
    ];
    vars.extend_from_slice(extra);
    flowtrace_telemetry::builder()
        .env_vars(vars)
        .exporter(ExporterKind::Otlp)
        .otlp_protocol(protocol)
        .otlp_endpoint(endpoint)
        .install_tracing_subscriber(false)
        .strict(true)
        .init()
        .expect("telemetry")
}

/// Ends a few spans, shuts down, and checks everything the guard reports.
fn export_and_check(telemetry: Telemetry) {
    assert_clean("Debug of the guard", &format!("{telemetry:?}"));
    let tracer = telemetry.provider().tracer("secrets");
    for i in 0..3 {
        tracer.start(format!("s{i}")).end();
    }
    let flushed = telemetry.force_flush();
    assert_clean("force_flush error", &format!("{flushed:?}"));
    // An error when spans were left at shutdown; `Ok` when they were
    // already dropped as refused.
    if let Err(err) = telemetry.shutdown() {
        assert_clean("shutdown error (Display)", &err.to_string());
        assert_clean("shutdown error (Debug)", &format!("{err:?}"));
    }
    let stats = telemetry.stats();
    assert_eq!(stats.exported, 0, "{stats}");
    assert!(stats.last_error.is_some(), "{stats}");
    assert_clean("stats (Display)", &stats.to_string());
    assert_clean("stats (Debug)", &format!("{stats:?}"));
    assert_clean(
        "Debug of the guard after shutdown",
        &format!("{telemetry:?}"),
    );
}

fn echoing_401(protocol: Protocol) {
    let fake = FakeHttp::start(std::iter::repeat_n(Reply::echoing(401), 20));
    export_and_check(telemetry(protocol, &fake.endpoint(), &[]));
    let seen = fake.seen();
    assert!(!seen.is_empty(), "the endpoint was called");
    assert_eq!(
        seen[0].header("authorization"),
        Some(format!("Bearer {TOKEN}").as_str()),
        "the canary was sent (and echoed back)"
    );
    assert_eq!(seen[0].header("x-api-key"), Some(KEY));
}

#[test]
fn a_401_echoing_the_token_over_http_protobuf_shows_no_secret() {
    echoing_401(Protocol::HttpProtobuf);
}

#[test]
fn a_401_echoing_the_token_over_http_json_shows_no_secret() {
    echoing_401(Protocol::HttpJson);
}

#[test]
fn a_grpc_status_carrying_the_token_shows_no_secret() {
    let status =
        || tonic::Status::unauthenticated(format!("token Bearer {TOKEN} for key {KEY} is revoked"));
    let fake = FakeGrpc::start((0..20).map(|_| Err(status())));
    export_and_check(telemetry(Protocol::Grpc, &fake.endpoint(), &[]));
    let seen = fake.seen();
    assert!(!seen.is_empty(), "the endpoint was called");
    assert_eq!(
        seen[0].header("x-api-key"),
        Some(KEY),
        "the canary was sent"
    );
    // What is said instead: the code.
    let fake = FakeGrpc::start([Err(status())]);
    let telemetry = telemetry(Protocol::Grpc, &fake.endpoint(), &[]);
    telemetry.provider().tracer("secrets").start("s").end();
    let _ = telemetry.shutdown();
    let error = telemetry.stats().last_error.unwrap();
    assert_eq!(error, "gRPC status Unauthenticated");
}

#[test]
fn a_tls_failure_shows_no_secret() {
    let fake = FakeHttp::start([]);
    let addr: SocketAddr = fake
        .endpoint()
        .trim_start_matches("http://")
        .parse()
        .unwrap();
    // The proxy's certificate is signed by the test CA, which is not
    // trusted here: every handshake fails.
    let proxy = TlsProxy::start(addr);
    for protocol in [Protocol::HttpProtobuf, Protocol::Grpc] {
        export_and_check(telemetry(protocol, &proxy.endpoint(), &[]));
    }
    assert!(fake.seen().is_empty(), "nothing got through the TLS proxy");
}

#[test]
fn credentials_in_the_endpoint_url_are_not_shown() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    for protocol in [Protocol::HttpProtobuf, Protocol::Grpc] {
        let endpoint = format!("http://ada:{TOKEN}@{closed}/v1/traces?api_key={KEY}");
        let endpoint = match protocol {
            Protocol::Grpc => format!("http://ada:{TOKEN}@{closed}"),
            _ => endpoint,
        };
        export_and_check(telemetry(protocol, &endpoint, &[]));
    }
    // A bad endpoint is reported without its credentials.
    let telemetry = flowtrace_telemetry::builder()
        .env_vars([
            (
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                format!("ftp://ada:{TOKEN}@host"),
            ),
            (
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                format!("http://ada:{TOKEN}@ bad"),
            ),
            ("OTEL_LOGS_EXPORTER", "none".into()),
        ])
        .install_tracing_subscriber(false)
        .init()
        .unwrap();
    assert_eq!(telemetry.warnings().len(), 2, "{:?}", telemetry.warnings());
    for warning in telemetry.warnings() {
        assert_clean("an endpoint warning", &format!("{warning} {warning:?}"));
    }
    drop(telemetry);

    let file = trace_file("url");
    let options = ReplayOptions::new(format!("http://ada:{TOKEN}@{closed}"))
        .timeout(Duration::from_millis(500))
        .retry_for(Duration::from_millis(500));
    assert_clean("Debug of ReplayOptions", &format!("{options:?}"));
    match flowtrace_telemetry::replay(&file, &options) {
        Ok(report) => assert_clean("replay report", &format!("{report} {report:?}")),
        Err(err) => assert_clean("replay error", &format!("{err} {err:?}")),
    }
}

#[test]
fn bad_headers_are_named_never_printed() {
    let bad = format!(
        "x bad={TOKEN},{KEY},authorization=Bearer%20{TOKEN}%01,x-api-key=%zz{KEY},=%20{TOKEN}"
    );
    for var in [
        "OTEL_EXPORTER_OTLP_HEADERS",
        "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
    ] {
        let builder = || {
            flowtrace_telemetry::builder()
                .env_vars([
                    (var, bad.as_str()),
                    ("OTEL_TRACES_EXPORTER", "otlp"),
                    ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9"),
                    ("OTEL_LOGS_EXPORTER", "none"),
                ])
                .install_tracing_subscriber(false)
        };
        assert_clean("Debug of the builder", &format!("{:?}", builder()));
        let telemetry = builder().init().expect("warnings, not an error");
        let warnings: Vec<String> = telemetry
            .warnings()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(warnings.len(), 5, "one per bad member: {warnings:#?}");
        for expected in [
            "header \"x bad\": the name is not a token",
            "member 2 (not shown) has no `=`",
            "header \"authorization\": the value (not shown) has characters other than visible ASCII",
            "header \"x-api-key\": the value (not shown) has a broken percent escape",
            "member 5: the header name is empty",
        ] {
            let prefix = format!("{var}: {expected}");
            assert!(
                warnings.iter().any(|w| w.starts_with(&prefix)),
                "{prefix}: {warnings:#?}"
            );
        }
        for warning in &warnings {
            assert!(warning.ends_with("the header is skipped"), "{warning}");
        }
        for warning in telemetry.warnings() {
            assert_clean("a warning (Display)", &warning.to_string());
            assert_clean("a warning (Debug)", &format!("{warning:?}"));
            assert_eq!(warning.value(), None, "no value is kept to be shown");
        }
        assert_clean("Debug of the guard", &format!("{telemetry:?}"));
        drop(telemetry);

        let err = builder().strict(true).init().unwrap_err();
        assert_eq!(err.problems().len(), 5);
        assert_clean("strict error (Display)", &err.to_string());
        assert_clean("strict error (Debug)", &format!("{err:?}"));
    }
}

/// An OTLP/JSON trace file with a few spans, written by the file exporter.
fn trace_file(name: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!(
        "flowtrace-secrets-{}-{name}.jsonl",
        std::process::id()
    ));
    let _ = std::fs::remove_file(&path);
    let telemetry = flowtrace_telemetry::builder()
        .env_vars([("OTEL_LOGS_EXPORTER", "none")])
        .exporter(ExporterKind::File)
        .trace_file(&path)
        .install_tracing_subscriber(false)
        .init()
        .unwrap();
    let tracer = telemetry.provider().tracer("secrets");
    for i in 0..3 {
        tracer.start(format!("s{i}")).end();
    }
    telemetry.shutdown().unwrap();
    path
}

#[test]
fn replay_shows_no_secret() {
    let file = trace_file("api");
    // The library: Debug of the options, a bad header, and each endpoint.
    let options = ReplayOptions::new("http://127.0.0.1:9")
        .header("authorization", format!("Bearer {TOKEN}"))
        .header("x-api-key", KEY);
    assert_clean("Debug of ReplayOptions", &format!("{options:?}"));
    let err = flowtrace_telemetry::replay(
        &file,
        &ReplayOptions::new("http://127.0.0.1:9").header("x bad", TOKEN),
    )
    .unwrap_err();
    assert!(matches!(err, ReplayError::Config(_)), "{err:?}");
    assert!(err.to_string().contains("header \"x bad\""), "{err}");
    assert_clean("replay error (bad header)", &format!("{err} {err:?}"));

    let http = FakeHttp::start(std::iter::repeat_n(Reply::echoing(401), 20));
    let grpc = FakeGrpc::start((0..20).map(|_| {
        Err(tonic::Status::permission_denied(format!(
            "{TOKEN} may not write"
        )))
    }));
    for (endpoint, protocol) in [
        (http.endpoint(), Protocol::HttpProtobuf),
        (http.endpoint(), Protocol::HttpJson),
        (grpc.endpoint(), Protocol::Grpc),
    ] {
        let options = ReplayOptions::new(endpoint)
            .protocol(protocol)
            .header("authorization", format!("Bearer {TOKEN}"))
            .header("x-api-key", KEY)
            .timeout(Duration::from_millis(1500))
            .retry_for(Duration::from_millis(1500));
        match flowtrace_telemetry::replay(&file, &options) {
            Ok(report) => assert_clean("replay report", &format!("{report} {report:?}")),
            Err(err) => assert_clean("replay error", &format!("{err} {err:?}")),
        }
    }
    assert!(http.seen().len() >= 2 && !grpc.seen().is_empty());
    assert_eq!(http.seen()[0].header("x-api-key"), Some(KEY));
}

#[test]
fn the_replay_command_shows_no_secret() {
    let file = trace_file("cli");
    let http = FakeHttp::start(std::iter::repeat_n(Reply::echoing(401), 20));
    let grpc = FakeGrpc::start(
        (0..20).map(|_| Err(tonic::Status::unauthenticated(format!("bad token {TOKEN}")))),
    );
    let bearer = format!("authorization=Bearer {TOKEN}");
    let key = format!("x-api-key={KEY}");
    let runs: Vec<(Vec<String>, Option<i32>)> = vec![
        (
            vec![
                "--endpoint".into(),
                http.endpoint(),
                "--header".into(),
                bearer.clone(),
                "--header".into(),
                key.clone(),
            ],
            Some(1),
        ),
        (
            vec![
                "--endpoint".into(),
                http.endpoint(),
                "--protocol".into(),
                "http/json".into(),
                "--header".into(),
                bearer.clone(),
            ],
            Some(1),
        ),
        (
            vec![
                "--endpoint".into(),
                grpc.endpoint(),
                "--protocol".into(),
                "grpc".into(),
                "--header".into(),
                key.clone(),
            ],
            Some(1),
        ),
        // A token given where name=value belongs, and a bad name.
        (vec!["--header".into(), TOKEN.into()], Some(2)),
        (
            vec![
                "--endpoint".into(),
                http.endpoint(),
                "--header".into(),
                format!("x bad={TOKEN}"),
            ],
            Some(2),
        ),
    ];
    for (args, code) in runs {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_flowtrace"));
        for (var, _) in std::env::vars() {
            if var.starts_with("OTEL_") {
                cmd.env_remove(var);
            }
        }
        cmd.arg("replay")
            .arg(&file)
            .args(&args)
            .args(["--timeout", "1500", "--retry-for", "1500"]);
        let out = run_bounded(&mut cmd, Duration::from_secs(60));
        assert_eq!(
            out.status.code(),
            code,
            "{args:?}: {}{}",
            out.stdout,
            out.stderr
        );
        assert_clean("replay stdout", &out.stdout);
        assert_clean("replay stderr", &out.stderr);
        assert!(!out.stderr.is_empty(), "{args:?}: it says what went wrong");
    }
    assert_eq!(http.seen()[0].header("x-api-key"), Some(KEY));
    assert!(!grpc.seen().is_empty());
}
