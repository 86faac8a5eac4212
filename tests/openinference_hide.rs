//! The hiding switches users of OpenInference and the GenAI conventions
//! already know: with `OPENINFERENCE_HIDE_INPUTS`, `OPENINFERENCE_HIDE_OUTPUTS`
//! and `OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=false` set, the
//! RAG example's questions and answers reach no exporter — not the
//! collector (spans and logs over OTLP), not the trace and log files, not
//! the console — while what is not hidden (the retrieved documents) still
//! arrives.

mod support;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use support::{Collector, WAIT, example, run_bounded};

const QUESTIONS: [&str; 2] = ["How fast is Rust?", "How does Cargo run tests?"];
/// Every answer of the example ends so: `<best chunk> (from N chunks, M words)`.
const ANSWER: &str = "chunks, ";

#[test]
fn hidden_values_reach_no_exporter() {
    let collector = Collector::start();
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("openinference-hide");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let (traces, logs) = (dir.join("traces.jsonl"), dir.join("logs.jsonl"));

    let mut cmd = Command::new(example("rag_pipeline"));
    for (key, _) in std::env::vars() {
        if key.starts_with("OTEL_")
            || key.starts_with("FLOWTRACE_")
            || key.starts_with("OPENINFERENCE_")
            || key.starts_with("PHOENIX_")
        {
            cmd.env_remove(key);
        }
    }
    cmd.current_dir(&dir)
        .env("OPENINFERENCE_HIDE_INPUTS", "true")
        .env("OPENINFERENCE_HIDE_OUTPUTS", "TRUE")
        .env(
            "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT",
            "false",
        )
        .env("OTEL_TRACES_EXPORTER", "otlp,file,console")
        .env("OTEL_LOGS_EXPORTER", "otlp,file")
        .env("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", collector.grpc_endpoint())
        .env("FLOWTRACE_TRACE_FILE", &traces)
        .env("FLOWTRACE_LOG_FILE", &logs)
        .env("OTEL_BSP_SCHEDULE_DELAY", "50");
    let out = run_bounded(&mut cmd, Duration::from_secs(120));
    out.assert_success("the rag_pipeline example");

    let receiver = collector.receiver();
    let spans = receiver.wait_for("the example's 24 spans", WAIT, |s| s.len() >= 24);
    let collected = format!("{:?}\n{:?}", receiver.requests(), receiver.logs());
    let files = [&traces, &logs]
        .map(|p| std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())));

    for question in QUESTIONS {
        assert!(
            !collected.contains(question),
            "{question:?} reached the collector"
        );
        for (file, text) in [&traces, &logs].iter().zip(&files) {
            assert!(
                !text.contains(question),
                "{question:?} reached {}",
                file.display()
            );
        }
        assert!(
            !out.stdout.contains(question),
            "{question:?} reached the console:\n{}",
            out.stdout
        );
    }
    assert!(
        !collected.contains(ANSWER),
        "an answer reached the collector"
    );
    assert!(
        !files[0].contains(ANSWER),
        "an answer reached the trace file"
    );

    // Hidden, not dropped: the placeholder stands in; the rest is there.
    let generate = spans
        .iter()
        .find(|s| s.name == "generate")
        .expect("generate");
    for key in [
        "input.value",
        "output.value",
        "flowtrace.input.query",
        "llm.input_messages.1.message.content",
        "llm.output_messages.0.message.content",
        "gen_ai.input.messages",
        "gen_ai.output.messages",
    ] {
        assert_eq!(generate.attr(key), Some("__REDACTED__"), "{key}");
    }
    assert_eq!(
        generate.attr("llm.input_messages.1.message.role"),
        Some("user")
    );
    let retrieve = spans
        .iter()
        .find(|s| s.name == "retrieve")
        .expect("retrieve");
    assert!(
        retrieve
            .attr("retrieval.documents.0.document.content")
            .is_some_and(|c| c != "__REDACTED__" && !c.is_empty()),
        "documents are not hidden by these switches: {retrieve:#?}"
    );
    assert_eq!(
        retrieve.attr("gen_ai.retrieval.query.text"),
        Some("__REDACTED__")
    );
}
