//! The RAG example in Arize Phoenix, as a user would send it: the example
//! runs as its own process, exports over OTLP/HTTP protobuf to a real
//! Phoenix, and posts its evaluation to Phoenix's annotation API. Read back
//! over Phoenix's REST API: every step has its kind (none UNKNOWN), the
//! retrieval and reranking documents are there, Phoenix's per-trace and
//! per-session token totals add up, the two query runs form one session,
//! and the evaluation events sit on the feedback spans under the root they
//! judge.

mod support;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use serde_json::Value as Json;
use support::phoenix::Phoenix;
use support::{example, run_bounded};

/// Spans the example sends: ingestion (run, ingest, 2 × chunk and embed),
/// 2 query runs (run, answer, rewrite, retrieve, rerank, generate,
/// count_words), 4 feedback spans.
const SPANS: usize = 6 + 2 * 7 + 4;

/// `key` of a span's attributes, as Phoenix returns them (flat keys).
fn attr<'a>(span: &'a Json, key: &str) -> &'a Json {
    &span["attributes"][key]
}

fn name(span: &Json) -> &str {
    span["name"].as_str().unwrap_or_default()
}

/// `(id, score)` of the OpenInference documents `<prefix>.<i>.document.*`.
fn documents(span: &Json, prefix: &str) -> Vec<(String, f64)> {
    (0..)
        .map_while(|i| {
            let id = attr(span, &format!("{prefix}.{i}.document.id")).as_str()?;
            let score = attr(span, &format!("{prefix}.{i}.document.score")).as_f64()?;
            let content = attr(span, &format!("{prefix}.{i}.document.content"));
            assert!(
                content.as_str().is_some_and(|c| !c.is_empty()),
                "{prefix}.{i} has its content: {span:#}"
            );
            Some((id.to_owned(), score))
        })
        .collect()
}

#[test]
fn phoenix_shows_every_step_of_the_rag_example() {
    let phoenix = Phoenix::start();
    let project = format!("flowtrace-rag-{}", std::process::id());
    let base = phoenix.base_url();

    let mut cmd = Command::new(example("rag_pipeline"));
    for (key, _) in std::env::vars() {
        if key.starts_with("OTEL_") || key.starts_with("FLOWTRACE_") || key.starts_with("PHOENIX_")
        {
            cmd.env_remove(key);
        }
    }
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("phoenix-example");
    std::fs::create_dir_all(&dir).expect("example dir");
    cmd.current_dir(&dir)
        .env("OTEL_TRACES_EXPORTER", "otlp")
        .env("OTEL_LOGS_EXPORTER", "none")
        // Phoenix takes traces only: it answers 405 to /v1/metrics.
        .env("OTEL_METRICS_EXPORTER", "none")
        .env("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", &base)
        .env(
            "OTEL_RESOURCE_ATTRIBUTES",
            format!("openinference.project.name={project}"),
        )
        .env("OTEL_BSP_SCHEDULE_DELAY", "50")
        .env("PHOENIX_BASE_URL", &base);
    let out = run_bounded(&mut cmd, Duration::from_secs(120));
    out.assert_success("the rag_pipeline example");
    let stdout = &out.stdout;

    // `query run <id>: "<answer>", trace <hex>, root span <hex>`
    let queries: Vec<(String, String)> = stdout
        .lines()
        .filter(|l| l.starts_with("query run "))
        .map(|l| {
            let trace = l.split(", trace ").nth(1).expect("trace id printed");
            let (trace, root) = trace.split_once(", root span ").expect("root printed");
            (trace.to_owned(), root.to_owned())
        })
        .collect();
    assert_eq!(queries.len(), 2, "two query runs: {stdout}");
    assert!(
        stdout.contains(&format!("annotation posted to {base}: HTTP 200")),
        "the annotation was accepted: {stdout}"
    );

    let spans = phoenix.wait_for_spans(&project, SPANS, Duration::from_secs(90));
    phoenix.assert_stored_all();
    assert_eq!(spans.len(), SPANS, "every span stored, once");

    // Kinds, per step.
    let expected = BTreeMap::from([
        ("ingestion", "CHAIN"),
        ("ingest", "CHAIN"),
        ("chunk", "CHAIN"),
        ("embed", "EMBEDDING"),
        ("query", "CHAIN"),
        ("answer", "AGENT"),
        ("rewrite", "CHAIN"),
        ("retrieve", "RETRIEVER"),
        ("rerank", "RERANKER"),
        ("count_words", "TOOL"),
        ("generate", "LLM"),
        ("feedback", "EVALUATOR"),
    ]);
    for span in &spans {
        let kind = span["span_kind"].as_str().unwrap_or_default();
        assert_ne!(kind, "UNKNOWN", "{} is recognised: {span:#}", name(span));
        assert_eq!(
            Some(&kind),
            expected.get(name(span)),
            "the kind of {}",
            name(span)
        );
        // Every typed step, run and agent names its GenAI operation; plain
        // tasks (ingest) and feedback have none to name.
        if !matches!(name(span), "ingest" | "feedback") {
            assert!(
                attr(span, "gen_ai.operation.name").is_string(),
                "{} names its GenAI operation: {span:#}",
                name(span)
            );
        }
    }

    for (trace, root) in &queries {
        let of_trace: Vec<&Json> = spans
            .iter()
            .filter(|s| s["context"]["trace_id"] == trace.as_str())
            .collect();
        let step = |n: &str| {
            of_trace
                .iter()
                .copied()
                .find(|s| name(s) == n)
                .unwrap_or_else(|| panic!("{n} in trace {trace}"))
        };

        // Retrieval and reranking documents.
        let retrieved = documents(step("retrieve"), "retrieval.documents");
        assert_eq!(retrieved.len(), 3, "top_k = 3 documents retrieved");
        let reranker = step("rerank");
        let input = documents(reranker, "reranker.input_documents");
        let output = documents(reranker, "reranker.output_documents");
        assert_eq!(
            input.iter().map(|d| &d.0).collect::<Vec<_>>(),
            retrieved.iter().map(|d| &d.0).collect::<Vec<_>>(),
            "the reranker got what the retriever returned"
        );
        assert_eq!(output.len(), 2, "and kept two");
        assert!(output.iter().all(|d| input.iter().any(|i| i.0 == d.0)));
        assert_eq!(attr(reranker, "reranker.top_k"), 2);

        // Inputs and outputs.
        let root_span = step("query");
        assert_eq!(root_span["context"]["span_id"], root.as_str());
        for (n, mime) in [("query", "text/plain"), ("retrieve", "text/plain")] {
            assert!(attr(step(n), "input.value").is_string(), "{n} input.value");
            assert_eq!(attr(step(n), "input.mime_type"), mime, "{n}");
        }
        assert!(attr(root_span, "output.value").is_string());
        assert_eq!(
            attr(step("generate"), "input.value"),
            attr(root_span, "input.value"),
            "the generation's input is the question, as the run's"
        );

        // Token usage and model settings on the generation.
        let llm = step("generate");
        let prompt = attr(llm, "llm.token_count.prompt")
            .as_i64()
            .expect("prompt");
        let completion = attr(llm, "llm.token_count.completion")
            .as_i64()
            .expect("completion");
        assert!(prompt > 0 && completion > 0, "{llm:#}");
        assert_eq!(attr(llm, "llm.token_count.total"), prompt + completion);
        assert_eq!(attr(llm, "gen_ai.usage.input_tokens"), prompt);
        assert_eq!(attr(llm, "gen_ai.usage.output_tokens"), completion);
        assert_eq!(attr(llm, "llm.model_name"), "stand-in-llm");
        assert_eq!(attr(llm, "llm.provider"), "stand-in");
        let settings: Json = serde_json::from_str(
            attr(llm, "llm.invocation_parameters")
                .as_str()
                .expect("llm.invocation_parameters"),
        )
        .expect("invocation parameters are JSON");
        assert_eq!(settings["temperature"], 0.0, "from the run's parameters");
        assert_eq!(attr(reranker, "llm.model_name"), "word-overlap");

        // Phoenix's own per-trace totals.
        let traces = phoenix.get_json(&format!("/v1/projects/{project}/traces?limit=100"));
        let totals = traces["data"]
            .as_array()
            .and_then(|t| t.iter().find(|t| t["trace_id"] == trace.as_str()))
            .unwrap_or_else(|| panic!("trace {trace} listed: {traces:#}"));
        assert_eq!(totals["token_count_prompt"], prompt, "{totals:#}");
        assert_eq!(totals["token_count_completion"], completion);
        assert_eq!(totals["token_count_total"], prompt + completion);

        // Session, user, tags and metadata on every span of the run.
        for span in of_trace.iter().filter(|s| name(s) != "feedback") {
            assert_eq!(
                attr(span, "session.id"),
                "rag-demo-session",
                "{}",
                name(span)
            );
            assert_eq!(attr(span, "user.id"), "demo-user", "{}", name(span));
            assert_eq!(attr(span, "tag.tags"), &serde_json::json!(["rag", "demo"]));
            // Phoenix reads the metadata JSON into its keys.
            assert_eq!(attr(span, "metadata.app"), "rag_pipeline", "{}", name(span));
        }
    }

    // One session holding both query runs, its token total their sum.
    let sessions = phoenix.get_json(&format!("/v1/projects/{project}/sessions"));
    let sessions = sessions["data"].as_array().expect("sessions");
    assert_eq!(sessions.len(), 1, "{sessions:#?}");
    let session = &sessions[0];
    assert_eq!(session["session_id"], "rag-demo-session");
    let mut in_session: Vec<&str> = session["traces"]
        .as_array()
        .expect("session traces")
        .iter()
        .filter_map(|t| t["trace_id"].as_str())
        .collect();
    in_session.sort_unstable();
    let mut query_traces: Vec<&str> = queries.iter().map(|(t, _)| t.as_str()).collect();
    query_traces.sort_unstable();
    assert_eq!(
        in_session, query_traces,
        "the session groups the query runs"
    );
    let generations: i64 = spans
        .iter()
        .filter(|s| name(s) == "generate")
        .map(|s| {
            attr(s, "llm.token_count.total")
                .as_i64()
                .unwrap_or_default()
        })
        .sum();
    assert_eq!(session["token_count_total"], generations);

    // Evaluation events on the feedback spans, children of the judged root.
    let (judged_trace, judged_root) = &queries[0];
    let feedback: Vec<&Json> = spans.iter().filter(|s| name(s) == "feedback").collect();
    assert_eq!(feedback.len(), 4);
    let mut evaluations = BTreeMap::new();
    for span in &feedback {
        assert_eq!(span["context"]["trace_id"], judged_trace.as_str());
        assert_eq!(
            span["parent_id"],
            judged_root.as_str(),
            "under the judged root"
        );
        let events = span["events"].as_array().expect("events");
        let event = events
            .iter()
            .find(|e| e["name"] == "gen_ai.evaluation.result")
            .unwrap_or_else(|| panic!("an evaluation result event: {span:#}"));
        let attributes = &event["attributes"];
        evaluations.insert(
            attributes["gen_ai.evaluation.name"]
                .as_str()
                .expect("evaluation name")
                .to_owned(),
            attributes.clone(),
        );
    }
    assert_eq!(
        evaluations.keys().collect::<Vec<_>>(),
        ["category", "relevance", "score", "thumbs"]
    );
    assert_eq!(evaluations["thumbs"]["gen_ai.evaluation.score.label"], "up");
    assert_eq!(evaluations["score"]["gen_ai.evaluation.score.value"], 0.9);
    assert_eq!(
        evaluations["category"]["gen_ai.evaluation.score.label"],
        "accurate"
    );
    let relevance = &evaluations["relevance"];
    assert_eq!(relevance["gen_ai.evaluation.score.value"], 1.0);
    assert_eq!(relevance["gen_ai.evaluation.score.label"], "relevant");
    assert!(relevance["gen_ai.evaluation.explanation"].is_string());

    // The same evaluation, posted to the annotation API, on the root.
    let annotations = phoenix.get_json(&format!(
        "/v1/projects/{project}/span_annotations?span_ids={judged_root}"
    ));
    let annotation = annotations["data"]
        .as_array()
        .and_then(|a| a.iter().find(|a| a["name"] == "relevance"))
        .unwrap_or_else(|| panic!("the relevance annotation: {annotations:#}"));
    assert_eq!(annotation["span_id"], judged_root.as_str());
    assert_eq!(annotation["annotator_kind"], "HUMAN");
    assert_eq!(annotation["result"]["label"], "relevant");
    assert_eq!(annotation["result"]["score"], 1.0);
    phoenix.assert_stored_all();
}
