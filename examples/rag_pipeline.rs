//! A RAG pipeline with deterministic stand-ins for the model and the vector
//! store: an ingestion run (chunk, embed) and two query runs in one session
//! (rewrite, retrieve, rerank, tool call, generate, under an agent), with
//! parameters registered, typed events and token counts on each step, logs
//! next to the trace, and user feedback and an evaluation given afterwards
//! by trace id.
//!
//! ```text
//! cargo run --example rag_pipeline
//! ```
//!
//! With nothing configured, spans go to `flowtrace-traces.jsonl` and log
//! records to `flowtrace-logs.jsonl` (OTLP/JSON lines); the traces are also
//! printed as trees, where each step's event shows as a `· flowtrace.rag.*`
//! line.
//!
//! To Arize Phoenix (OTLP/HTTP protobuf; the project is the resource
//! attribute `openinference.project.name`), also posting the evaluation to
//! Phoenix's annotation API (`POST /v1/span_annotations?sync=true`):
//!
//! ```text
//! OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:6006 \
//! OTEL_LOGS_EXPORTER=none OTEL_RESOURCE_ATTRIBUTES=openinference.project.name=rag \
//! PHOENIX_BASE_URL=http://127.0.0.1:6006 cargo run --example rag_pipeline
//! ```

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::Duration;

use flowtrace::event::{
    self, Agent, Chunk, Chunking, Document, Embedding, Query, QueryRewrite, Rerank, Retrieval,
    RetrievedChunk, ToolCall, Usage,
};
use flowtrace::feedback::{self, Evaluation};
use flowtrace::{params, traced};
use serde_json::json;

const SYSTEM_PROMPT: &str = "Answer only from the context.";

/// The stand-in tokenizer: one token per word.
fn tokens(text: &str) -> u64 {
    text.split_whitespace().count() as u64
}

const DIMENSIONS: usize = 8;

/// The stand-in embedding model: letter counts folded into a unit vector.
fn embed_text(text: &str) -> Vec<f64> {
    let mut v = [0.0; DIMENSIONS];
    for (i, b) in text
        .to_lowercase()
        .bytes()
        .filter(u8::is_ascii_alphabetic)
        .enumerate()
    {
        v[(b as usize + i) % DIMENSIONS] += 1.0;
    }
    let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt().max(1e-9);
    v.iter().map(|x| x / norm).collect()
}

fn cosine(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// The stand-in vector store.
#[derive(Default)]
struct Store {
    rows: Vec<(Chunk, Vec<f64>)>,
}

#[traced]
async fn chunk(document: Document) -> Vec<Chunk> {
    let size = params::get()[params::CHUNK_SIZE].as_u64().unwrap_or(40) as usize;
    let mut chunks = Vec::new();
    let mut current = String::new();
    for sentence in document.text.split_inclusive('.') {
        if !current.is_empty() && current.len() + sentence.len() > size {
            chunks.push(Chunk::new(
                format!("{}#{}", document.id, chunks.len()),
                current.trim(),
            ));
            current.clear();
        }
        current.push_str(sentence);
    }
    if !current.trim().is_empty() {
        chunks.push(Chunk::new(
            format!("{}#{}", document.id, chunks.len()),
            current.trim(),
        ));
    }
    event::span(Chunking {
        document,
        chunks: chunks.clone(),
    });
    chunks
}

#[traced]
async fn embed(chunks: Vec<Chunk>) -> Vec<(Chunk, Vec<f64>)> {
    let model = params::get()[params::EMBEDDING_MODEL]
        .as_str()
        .unwrap_or("letters-8")
        .to_owned();
    let inputs: Vec<String> = chunks.iter().map(|c| c.text.clone()).collect();
    let input_tokens = inputs.iter().map(|t| tokens(t)).sum();
    event::span(Embedding {
        model,
        inputs,
        dimensions: DIMENSIONS,
        provider: Some("stand-in".into()),
        usage: Some(Usage::new(input_tokens, 0)),
    });
    chunks
        .into_iter()
        .map(|c| {
            let v = embed_text(&c.text);
            (c, v)
        })
        .collect()
}

#[traced(skip_all)]
async fn ingest(store: &mut Store, documents: Vec<Document>) -> usize {
    for document in documents {
        let chunks = chunk(document).await;
        store.rows.extend(embed(chunks).await);
    }
    flowtrace::emit_log(json!({"indexed_chunks": store.rows.len()}));
    store.rows.len()
}

#[traced]
async fn rewrite(query: String) -> String {
    let topic = query
        .trim_end_matches('?')
        .to_lowercase()
        .replace("how fast is ", "");
    let rewritten = format!("{topic} speed");
    event::span(QueryRewrite {
        query,
        rewritten: rewritten.clone(),
    });
    rewritten
}

#[traced(skip(store))]
async fn retrieve(store: &Store, query: String) -> Vec<RetrievedChunk> {
    let top_k = params::get()[params::TOP_K].as_u64().unwrap_or(3) as usize;
    let q = embed_text(&query);
    let mut hits: Vec<RetrievedChunk> = store
        .rows
        .iter()
        .map(|(c, v)| RetrievedChunk::new(c.id.clone(), c.text.clone(), cosine(&q, v)))
        .collect();
    hits.sort_by(|a, b| b.score.total_cmp(&a.score));
    hits.truncate(top_k);
    event::span(Retrieval {
        query,
        retrieved: hits.clone(),
        data_source: Some("in-memory".into()),
    });
    hits
}

#[traced]
async fn rerank(query: String, hits: Vec<RetrievedChunk>) -> Vec<RetrievedChunk> {
    // Stand-in reranker: shared words with the query.
    let words: Vec<String> = query.split_whitespace().map(str::to_lowercase).collect();
    let mut kept: Vec<RetrievedChunk> = hits
        .iter()
        .map(|h| {
            let text = h.text.to_lowercase();
            let shared = words.iter().filter(|w| text.contains(w.as_str())).count();
            RetrievedChunk::new(
                h.id.clone(),
                h.text.clone(),
                shared as f64 / words.len().max(1) as f64,
            )
        })
        .collect();
    kept.sort_by(|a, b| b.score.total_cmp(&a.score));
    kept.truncate(2);
    event::span(Rerank {
        query,
        model: Some("word-overlap".into()),
        input: hits,
        output: kept.clone(),
        provider: Some("stand-in".into()),
    });
    kept
}

#[traced]
async fn count_words(text: String) -> usize {
    let n = text.split_whitespace().count();
    event::span(ToolCall {
        name: "count_words".into(),
        call_id: Some("call-1".into()),
        arguments: json!({"text": text}),
        result: json!(n),
    });
    n
}

#[traced]
async fn generate(query: String, context: Vec<RetrievedChunk>) -> String {
    let words = count_words(
        context
            .iter()
            .map(|c| c.text.as_str())
            .collect::<Vec<_>>()
            .join(" "),
    )
    .await;
    let best = context
        .first()
        .map_or("nothing relevant", |c| c.text.as_str());
    let response = format!("{best} (from {} chunks, {words} words)", context.len());
    let model = params::get()[params::MODEL]
        .as_str()
        .unwrap_or("stand-in")
        .to_owned();
    let prompt_tokens = tokens(SYSTEM_PROMPT)
        + tokens(&query)
        + context.iter().map(|c| tokens(&c.text)).sum::<u64>();
    let usage = Usage::new(prompt_tokens, tokens(&response));
    event::span(Query {
        query,
        response: response.clone(),
        system_prompt: Some(SYSTEM_PROMPT.into()),
        model: Some(model),
        provider: Some("stand-in".into()),
        usage: Some(usage),
        // Empty: the run's generation parameters (temperature) are recorded.
        parameters: Default::default(),
    });
    response
}

#[traced(skip(store))]
async fn answer(store: &Store, query: String) -> String {
    event::span(Agent {
        name: "rag-assistant".into(),
        description: Some("answers from the indexed documents".into()),
    });
    let rewritten = rewrite(query.clone()).await;
    let hits = retrieve(store, rewritten.clone()).await;
    tracing::info!(hits = hits.len(), "retrieved");
    let context = rerank(rewritten, hits).await;
    let response = generate(query.clone(), context).await;
    if let Err(err) = event::trace(&query, &response, json!({"user": "demo"})) {
        tracing::warn!(%err, "trace event not recorded");
    }
    response
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let telemetry = flowtrace_telemetry::builder()
        .console(true)
        .initial_params([("embedding_model", json!("letters-8"))])
        .init()?;

    let documents = vec![
        Document::new(
            "rust-book",
            "Rust is fast. Rust is memory safe without a garbage collector. Its speed matches C.",
        ),
        Document::new(
            "cargo",
            "Cargo builds Rust code. Cargo fetches crates. Tests run with cargo test.",
        ),
    ];
    let mut store = Store::default();
    let ingestion = flowtrace::with_runcontext()
        .name("ingestion")
        .initial_params([("chunk_size", json!(48))])
        .run(ingest(&mut store, documents))
        .await;
    println!(
        "ingestion run {}: {} chunks, trace {}",
        ingestion.run_id(),
        ingestion.output(),
        ingestion.trace_id()
    );

    // Both questions in one session: every span of these runs carries the
    // session, user, tags and metadata of the run's map.
    let session = [
        ("session.id", "rag-demo-session"),
        ("user.id", "demo-user"),
        ("tag.tags", r#"["rag","demo"]"#),
        ("metadata", r#"{"app":"rag_pipeline"}"#),
    ];
    let mut answered = Vec::new();
    for question in ["How fast is Rust?", "How does Cargo run tests?"] {
        let store = &store;
        let query = flowtrace::with_runcontext()
            .name("query")
            .custom_context(session)
            .run(async move {
                params::top_k(3)?;
                params::model("stand-in-llm")?;
                params::temperature(0.0)?;
                let root = flowtrace::ctx().carried_span_context().clone();
                let response = answer(store, question.into()).await;
                Ok::<_, params::ParamError>((root, response))
            })
            .await;
        let (root, response) = query.output().clone()?;
        println!(
            "query run {}: {response:?}, trace {}, root span {}",
            query.run_id(),
            query.trace_id(),
            root.span_id()
        );
        answered.push((query.trace_id().to_owned(), root));
    }

    // Later, perhaps from another process that kept only the ids:
    let (trace, root) = &answered[0];
    let target = feedback::Target::parse(trace)?.with_root(root.span_id());
    feedback::binary(target, true)?;
    feedback::numeric(target, 0.9)?;
    feedback::categorical(target, "accurate", &["accurate", "partial", "wrong"])?;
    let relevance = Evaluation::new("relevance")
        .score(1.0)
        .label("relevant")
        .explanation("the answer quotes the best retrieved chunk");
    feedback::evaluation(target, relevance.clone())?;
    if let Err(err) = feedback::numeric(target, 9.0) {
        println!("refused: {err}");
    }

    let annotation = phoenix_annotation(&root.span_id().to_string(), &relevance);

    let files = (
        telemetry.trace_file().map(|p| p.display().to_string()),
        telemetry.log_file().map(|p| p.display().to_string()),
    );
    // Flushes and shuts down (the console exporter prints the trees). What
    // could not be delivered is reported on stderr; it does not fail the run.
    drop(telemetry);
    if let (Some(traces), Some(logs)) = files {
        println!("spans in {traces}, log records in {logs} (OTLP/JSON lines)");
    }

    // The same evaluation as an annotation in Phoenix's own API, on the
    // run's root span. Phoenix stores spans after it has answered the
    // export, and answers 404 for a span it has not stored yet: retry.
    match std::env::var("PHOENIX_BASE_URL") {
        Ok(base) => {
            let mut outcome = post_json(&base, "/v1/span_annotations?sync=true", &annotation);
            for _ in 0..40 {
                if !matches!(outcome, Ok(404)) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(250));
                outcome = post_json(&base, "/v1/span_annotations?sync=true", &annotation);
            }
            match outcome {
                Ok(status) => println!("annotation posted to {base}: HTTP {status}"),
                Err(err) => println!("annotation not posted to {base}: {err}"),
            }
        }
        Err(_) => {
            println!("annotation for Phoenix (set PHOENIX_BASE_URL to post it): {annotation}")
        }
    }
    Ok(())
}

/// The body of Phoenix's `POST /v1/span_annotations`: one human annotation
/// of the span `span_id`.
fn phoenix_annotation(span_id: &str, evaluation: &Evaluation) -> String {
    json!({"data": [{
        "span_id": span_id,
        "name": evaluation.name,
        "annotator_kind": "HUMAN",
        "result": {
            "label": evaluation.label,
            "score": evaluation.score,
            "explanation": evaluation.explanation,
        },
    }]})
    .to_string()
}

/// POSTs `body` as JSON to `path` on an `http://host:port` base URL;
/// returns the response's status code.
fn post_json(base: &str, path: &str, body: &str) -> std::io::Result<u16> {
    let invalid =
        |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidInput, what.to_owned());
    let authority = base
        .strip_prefix("http://")
        .ok_or_else(|| invalid("the base URL must start with http://"))?
        .trim_end_matches('/');
    let mut stream = TcpStream::connect(authority)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| invalid("the answer is not HTTP"))
}
