//! What a user sees: the quickstart example, run as its own process, delivers
//! one connected trace to a real collector (rotel, over OTLP gRPC and
//! HTTP/protobuf), to the embedded OTLP/JSON file, and under a Python
//! OpenTelemetry SDK parent that hands it `TRACEPARENT`.

mod support;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use support::{Collector, Span, StatusCode, WAIT, example, run_bounded, span_named};

const RUN_TIMEOUT: Duration = Duration::from_secs(60);

fn quickstart() -> PathBuf {
    example("quickstart")
}

/// A quickstart command with a clean OTel environment and `envs` set.
fn quickstart_cmd(envs: &[(&str, &str)]) -> Command {
    example_cmd("quickstart", envs)
}

/// An example command with a clean OTel environment and `envs` set.
fn example_cmd(name: &'static str, envs: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(example(name));
    for (key, _) in std::env::vars() {
        if key.starts_with("OTEL_")
            || key.starts_with("FLOWTRACE_")
            || matches!(key.as_str(), "TRACEPARENT" | "TRACESTATE" | "BAGGAGE")
        {
            cmd.env_remove(key);
        }
    }
    // Short batch delay: the test need not wait 5 s for the exporter.
    cmd.env("OTEL_BSP_SCHEDULE_DELAY", "50");
    cmd.envs(envs.iter().copied());
    cmd
}

/// The trace id the quickstart prints: `run <id> finished: <n> words, trace <hex>`.
fn printed_trace_id(stdout: &str) -> String {
    let line = stdout
        .lines()
        .find(|l| l.starts_with("run ") && l.contains(", trace "))
        .unwrap_or_else(|| panic!("no run line in:\n{stdout}"));
    let id = line.rsplit(' ').next().unwrap().to_owned();
    assert_eq!(id.len(), 32, "{line}");
    id
}

fn child_of<'a>(spans: &'a [Span], parent: &Span, name: &str) -> Vec<&'a Span> {
    spans
        .iter()
        .filter(|s| s.name == name && s.parent_span_id == parent.span_id)
        .collect()
}

/// The quickstart's trace: `workflow_run` (unless a carrier brought the
/// parent `remote_parent`) → `main` → 3 × `fetch` → 2 × `parse` (the third
/// fetch fails and is handled).
fn assert_quickstart_trace(spans: &[Span], trace_id: &str, remote_parent: Option<&str>) {
    let summary = support::summary(spans);
    assert!(
        spans.iter().all(|s| s.trace_id == trace_id),
        "one trace: {summary}"
    );
    let main = span_named(spans, "main");
    match remote_parent {
        None => {
            let root = span_named(spans, "workflow_run");
            assert!(root.is_root(), "the run span is the root: {summary}");
            assert_eq!(main.parent_span_id, root.span_id, "main is the run's child");
            assert_eq!(spans.len(), 7, "{summary}");
        }
        Some(parent) => {
            assert!(
                spans.iter().all(|s| s.name != "workflow_run"),
                "a carried parent replaces the run span: {summary}"
            );
            assert_eq!(
                main.parent_span_id, parent,
                "main continues the carrier's span"
            );
            assert_eq!(spans.len(), 6, "{summary}");
        }
    }
    let fetches = child_of(spans, main, "fetch");
    assert_eq!(fetches.len(), 3, "three fetch children of main: {summary}");
    let mut parses = 0;
    for fetch in &fetches {
        let fetching = fetch
            .event("fetching")
            .unwrap_or_else(|| panic!("tracing::info! on its task span: {fetch:#?}"));
        assert!(
            fetching
                .attr("url")
                .is_some_and(|u| u.starts_with("https://example.com/")),
            "{fetching:?}"
        );
        assert_eq!(fetch.attr("code.function.name"), Some("quickstart::fetch"));
        assert_eq!(fetch.attr("flowtrace.task.name"), Some("fetch"));
        let children = child_of(spans, fetch, "parse");
        parses += children.len();
        if fetch.status_code == StatusCode::Error {
            assert!(children.is_empty(), "the failed fetch parsed nothing");
            let exception = fetch
                .event("exception")
                .expect("exception event on the failed task");
            assert_eq!(
                exception.attr("exception.type"),
                Some("quickstart::FetchError")
            );
            assert_eq!(
                exception.attr("exception.message"),
                Some("https://example.com/missing answered 404")
            );
            assert_eq!(
                fetch.status_message,
                "https://example.com/missing answered 404"
            );
        } else {
            assert_eq!(
                children.len(),
                1,
                "each good fetch calls parse once: {summary}"
            );
        }
    }
    assert_eq!(
        fetches
            .iter()
            .filter(|s| s.status_code == StatusCode::Error)
            .count(),
        1,
        "{summary}"
    );
    assert_eq!(parses, 2);
    assert!(
        main.event("skipping a page").is_some(),
        "the handled error is logged on main"
    );
    assert_eq!(
        main.status_code,
        StatusCode::Unset,
        "main handled the failure"
    );
    let run_id = main.attr("flowtrace.run.id").expect("run id");
    assert!(!run_id.is_empty());
    for span in spans {
        assert_eq!(span.attr("flowtrace.run.id"), Some(run_id), "{}", span.name);
        assert_eq!(
            span.attr("flowtrace.run.name"),
            Some("workflow_run"),
            "{}",
            span.name
        );
    }
}

fn over_otlp(protocol: &str, endpoint: impl FnOnce(&Collector) -> String) {
    let collector = Collector::start();
    let endpoint = endpoint(&collector);
    let out = run_bounded(
        &mut quickstart_cmd(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol),
            ("OTEL_SERVICE_NAME", "quickstart-test"),
        ]),
        RUN_TIMEOUT,
    );
    out.assert_success("quickstart");
    let trace_id = printed_trace_id(&out.stdout);
    let spans = collector.wait_for_trace(&trace_id, 7, WAIT);
    assert!(spans.iter().all(|s| s.service_name == "quickstart-test"));
    assert!(spans.iter().all(|s| s.scope == "flowtrace"));
    assert_quickstart_trace(&spans, &trace_id, None);
}

#[test]
fn quickstart_over_grpc_is_one_connected_trace_at_the_collector() {
    over_otlp("grpc", Collector::grpc_endpoint);
}

#[test]
fn quickstart_over_http_protobuf_is_one_connected_trace_at_the_collector() {
    over_otlp("http/protobuf", Collector::http_endpoint);
}

#[test]
fn quickstart_writes_a_valid_otlp_json_file_by_default() {
    let dir = tempdir("file");
    let file = dir.join("traces.jsonl");
    let out = run_bounded(
        &mut quickstart_cmd(&[("FLOWTRACE_TRACE_FILE", file.to_str().unwrap())]),
        RUN_TIMEOUT,
    );
    out.assert_success("quickstart");
    assert!(
        out.stdout
            .contains(&format!("spans written to {}", file.display())),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("workflow_run"),
        "the tree is printed:\n{}",
        out.stdout
    );
    let trace_id = printed_trace_id(&out.stdout);
    let spans = support::read_otlp_json_file(&file);
    assert_quickstart_trace(&spans, &trace_id, None);
}

#[test]
fn quickstart_with_no_configuration_writes_the_default_file() {
    let dir = tempdir("default");
    let out = run_bounded(quickstart_cmd(&[]).current_dir(&dir), RUN_TIMEOUT);
    out.assert_success("quickstart");
    let spans = support::read_otlp_json_file(&dir.join("flowtrace-traces.jsonl"));
    assert_quickstart_trace(&spans, &printed_trace_id(&out.stdout), None);
}

#[test]
fn a_python_parent_span_is_the_parent_of_the_rust_run() {
    let collector = Collector::start();
    let bin = quickstart();
    let parent = support::run_python_parent(
        &collector.http_endpoint(),
        &[bin.to_str().unwrap()],
        &[("OTEL_BSP_SCHEDULE_DELAY", "50")],
    );
    let trace_id = printed_trace_id(&parent.child_stdout);
    assert_eq!(
        trace_id, parent.trace_id,
        "the Rust run continues the Python trace"
    );
    let spans = collector.wait_for_trace(&trace_id, 7, WAIT);
    let python = span_named(&spans, "python-parent");
    assert_eq!(python.span_id, parent.span_id);
    assert_eq!(python.service_name, "python-parent");
    let rust: Vec<Span> = spans
        .iter()
        .filter(|s| s.name != "python-parent")
        .cloned()
        .collect();
    assert_quickstart_trace(&rust, &trace_id, Some(&parent.span_id));
}

fn tempdir(what: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("quickstart-{what}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn the_lifecycle_example_shows_retries_a_timeout_and_a_cache_hit() {
    let dir = tempdir("lifecycle");
    let out = run_bounded(example_cmd("lifecycle", &[]).current_dir(&dir), RUN_TIMEOUT);
    out.assert_success("lifecycle example");
    let tree = &out.stdout;
    for expected in [
        "fetch_index attempt 1",
        "fetch_index attempt 3",
        "· retry flowtrace.task.attempt=1",
        "rerank",
        "[timeout]",
        "[cached]",
    ] {
        assert!(
            tree.contains(expected),
            "`{expected}` in the printed tree:\n{tree}"
        );
    }
    let spans = support::read_otlp_json_file(&dir.join("flowtrace-traces.jsonl"));
    let cached = spans
        .iter()
        .filter(|s| s.attr("flowtrace.task.cached") == Some("true"))
        .count();
    assert_eq!(cached, 2, "both repeated embeds were served from the cache");
    let rerank = span_named(&spans, "rerank");
    assert_eq!(rerank.status_code, StatusCode::Error);
    assert_eq!(rerank.attr("flowtrace.task.timeout"), Some("true"));
}

/// A loopback port nothing listens on.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local addr").port()
}

/// A workflow that succeeded does not fail because its telemetry could not
/// be delivered: with no collector at the endpoint the quickstart exits 0
/// and says, in one line, what was lost where and why.
fn without_a_collector(protocol: &str) {
    let endpoint = format!("http://127.0.0.1:{}", closed_port());
    let out = run_bounded(
        &mut quickstart_cmd(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "1000"),
        ]),
        RUN_TIMEOUT,
    );
    out.assert_success("quickstart without a collector");
    assert!(
        out.stdout.contains("workflow_run"),
        "the console still prints the tree:\n{}",
        out.stdout
    );
    let lines: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect();
    assert_eq!(lines.len(), 1, "one line on stderr:\n{}", out.stderr);
    let line = lines[0];
    // 11 log records: the quickstart's 4 and the start records of its 7
    // spans (`flowtrace::running`).
    assert!(
        line.starts_with(
            "flowtrace: 7 spans and 11 log records were not delivered: \
             otlp lost 7 of 7 spans (left at shutdown: 7) and 11 of 11 log records"
        ),
        "{line}"
    );
    assert!(
        line.contains("; last error: ") && line.to_lowercase().contains("connect"),
        "the line says why: {line}"
    );
    assert!(
        !line.contains("exported"),
        "no contradicting totals: {line}"
    );
}

#[test]
fn quickstart_without_a_collector_over_http_succeeds_and_reports_the_loss() {
    without_a_collector("http/protobuf");
}

#[test]
fn quickstart_without_a_collector_over_grpc_succeeds_and_reports_the_loss() {
    without_a_collector("grpc");
}

const TOKEN: &str = "sk-CANARY-quickstart";
const KEY: &str = "ak-CANARY-quickstart";

/// Pointed at a gateway that answers 401 and echoes the credentials it was
/// sent, the quickstart shows neither the token nor the key, and still
/// exits 0.
fn against_an_echoing_gateway(protocol: &str) {
    let gateway = support::fake_otlp::FakeHttp::start(std::iter::repeat_n(
        support::fake_otlp::Reply::echoing(401),
        50,
    ));
    let headers = format!("authorization=Bearer%20{TOKEN},x-api-key={KEY}");
    let out = run_bounded(
        &mut quickstart_cmd(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &gateway.endpoint()),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol),
            ("OTEL_EXPORTER_OTLP_HEADERS", &headers),
        ]),
        RUN_TIMEOUT,
    );
    out.assert_success("quickstart against a 401 gateway");
    for (stream, text) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
        assert!(!text.contains("CANARY"), "{stream} shows a secret:\n{text}");
    }
    assert!(
        out.stderr.contains("last error: HTTP status 401"),
        "it says why: {}",
        out.stderr
    );
    let seen = gateway.seen();
    assert!(
        seen.iter().any(|s| s.header("x-api-key") == Some(KEY)),
        "the credentials were sent (and echoed back)"
    );
}

#[test]
fn quickstart_against_a_401_gateway_over_http_protobuf_shows_no_secret() {
    against_an_echoing_gateway("http/protobuf");
}

#[test]
fn quickstart_against_a_401_gateway_over_http_json_shows_no_secret() {
    against_an_echoing_gateway("http/json");
}

#[test]
fn quickstart_with_a_bad_header_names_it_without_its_value() {
    let dir = tempdir("bad-header");
    let out = run_bounded(
        quickstart_cmd(&[("OTEL_EXPORTER_OTLP_HEADERS", &format!("x bad={TOKEN}"))])
            .current_dir(&dir),
        RUN_TIMEOUT,
    );
    out.assert_success("quickstart with a bad header");
    assert!(
        out.stderr.contains(
            "flowtrace: warning: OTEL_EXPORTER_OTLP_HEADERS: header \"x bad\": the name is not a token"
        ),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("CANARY"), "{}", out.stderr);
}
