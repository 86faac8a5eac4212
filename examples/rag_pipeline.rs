//! A RAG pipeline with deterministic stand-ins for the model and the vector
//! store: an ingestion run (chunk, embed) and a query run (rewrite, retrieve,
//! rerank, tool call, generate), with parameters registered, typed events on
//! each step, logs next to the trace, and user feedback given afterwards by
//! trace id.
//!
//! ```text
//! cargo run --example rag_pipeline
//! ```
//!
//! With nothing configured, spans go to `flowtrace-traces.jsonl` and log
//! records to `flowtrace-logs.jsonl` (OTLP/JSON lines); the traces are also
//! printed as trees, where each step's event shows as a `· flowtrace.rag.*`
//! line.

use flowtrace::event::{
    self, Chunk, Chunking, Document, Embedding, Query, QueryRewrite, Rerank, Retrieval,
    RetrievedChunk, ToolCall,
};
use flowtrace::{feedback, params, traced};
use serde_json::json;

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
    event::span(Embedding {
        model,
        inputs: chunks.iter().map(|c| c.text.clone()).collect(),
        dimensions: DIMENSIONS,
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
    flowtrace::log(json!({"indexed_chunks": store.rows.len()}));
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
    event::span(Query {
        query,
        response: response.clone(),
        system_prompt: Some("Answer only from the context.".into()),
        model: Some(model),
    });
    response
}

#[traced(skip(store))]
async fn answer(store: &Store, query: String) -> String {
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

    let query = flowtrace::with_runcontext()
        .name("query")
        .run(async {
            params::top_k(3)?;
            params::model("stand-in-llm")?;
            params::temperature(0.0)?;
            let root = flowtrace::ctx().span_context().clone();
            let response = answer(&store, "How fast is Rust?".into()).await;
            Ok::<_, params::ParamError>((root, response))
        })
        .await;
    let (root, response) = query.output().clone()?;
    println!(
        "query run {}: {response:?}, trace {}",
        query.run_id(),
        query.trace_id()
    );

    // Later, perhaps from another process that kept only the ids:
    let target = feedback::Target::parse(query.trace_id())?.with_root(root.span_id());
    feedback::binary(target, true)?;
    feedback::numeric(target, 0.9)?;
    feedback::categorical(target, "accurate", &["accurate", "partial", "wrong"])?;
    if let Err(err) = feedback::numeric(target, 9.0) {
        println!("refused: {err}");
    }

    let files = (
        telemetry.trace_file().map(|p| p.display().to_string()),
        telemetry.log_file().map(|p| p.display().to_string()),
    );
    telemetry.shutdown()?; // flushes; the console exporter prints the trees
    if let (Some(traces), Some(logs)) = files {
        println!("spans in {traces}, log records in {logs} (OTLP/JSON lines)");
    }
    Ok(())
}
