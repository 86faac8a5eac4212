//! The embedded default for RAG pipelines: parameters and events in the
//! OTLP/JSON trace file, log records in the OTLP/JSON log file beside it
//! (one `ExportLogsServiceRequest` per line) with the task's ids.

mod support;

use flowtrace::event::{self, Retrieval, RetrievedChunk};
use flowtrace::{params, traced, with_runcontext};
use flowtrace_telemetry::{self as telemetry, ExporterKind};
use serde_json::{Value, json};
use support::{read_otlp_json_file, span_named};

#[traced]
async fn retrieve(query: String) -> usize {
    event::span(Retrieval {
        query: query.clone(),
        retrieved: vec![RetrievedChunk::new("d#0", "Rust is fast.", 0.9)],
        data_source: None,
    });
    tracing::info!(%query, "retrieved");
    1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parameters_events_and_logs_land_in_the_files() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("rag-file-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let trace_file = dir.join("run-traces.jsonl");
    let telemetry = telemetry::builder()
        .env_vars([("OTEL_SERVICE_NAME", "rag-file")])
        .exporter(ExporterKind::File)
        .trace_file(&trace_file)
        .initial_params([("embedding_model", json!("stand-in-embedder"))])
        .strict(true)
        .init()
        .expect("telemetry");
    let log_file = telemetry.log_file().expect("a log file").to_owned();
    assert_eq!(
        log_file,
        dir.join("run-logs.jsonl"),
        "beside the trace file"
    );

    let run = with_runcontext()
        .name("query")
        .run(async {
            params::chunk_size(512).expect("chunk_size");
            retrieve("what is rust?".into()).await
        })
        .await;
    drop(telemetry);

    let spans = read_otlp_json_file(&trace_file);
    let task = span_named(&spans, "retrieve");
    let root = span_named(&spans, "query");
    for span in [task, root] {
        assert_eq!(
            span.attr("flowtrace.param.embedding_model"),
            Some("stand-in-embedder"),
            "{}: from telemetry init",
            span.name
        );
        assert_eq!(
            span.attr("flowtrace.param.chunk_size"),
            Some("512"),
            "{}: registered in the run",
            span.name
        );
    }
    assert_eq!(
        task.attr("gen_ai.retrieval.query.text"),
        Some("what is rust?")
    );

    let text = std::fs::read_to_string(&log_file).expect("log file");
    let mut found = false;
    for line in text.lines() {
        let request: Value = serde_json::from_str(line).expect("one JSON request per line");
        for record in request["resourceLogs"][0]["scopeLogs"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|s| s["logRecords"].as_array().into_iter().flatten())
        {
            if record["body"]["stringValue"] == "retrieved" {
                found = true;
                assert_eq!(record["traceId"], run.trace_id(), "hex trace id");
                assert_eq!(
                    record["spanId"],
                    task.span_id.as_str(),
                    "hex span id of the task"
                );
                assert_eq!(record["severityNumber"], 9, "INFO as a number");
                assert!(
                    record["timeUnixNano"].is_string(),
                    "64-bit times are strings"
                );
            }
        }
    }
    assert!(
        found,
        "the tracing event is in {}:\n{text}",
        log_file.display()
    );
    let _ = std::fs::remove_dir_all(&dir);
}
