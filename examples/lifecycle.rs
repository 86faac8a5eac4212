//! What Flyte's traces leave out, in one run: a task retried after two
//! failures, a task that times out, a cache hit, and a bounded fan-out.
//!
//! ```text
//! cargo run --example lifecycle
//! ```

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use flowtrace::{TaskTimeout, traced};

#[derive(Debug)]
enum Error {
    Unavailable(u32),
    TimedOut(TaskTimeout),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Unavailable(attempt) => write!(f, "service unavailable (attempt {attempt})"),
            Error::TimedOut(t) => t.fmt(f),
        }
    }
}

impl std::error::Error for Error {}

impl From<TaskTimeout> for Error {
    fn from(t: TaskTimeout) -> Self {
        Error::TimedOut(t)
    }
}

static CALLS: AtomicU32 = AtomicU32::new(0);

/// Fails twice, then answers: three attempt spans, two `retry` events.
#[traced(retries = 3, backoff = exponential, retry_delay = "20ms")]
async fn fetch_index(source: String) -> Result<Vec<String>, Error> {
    let call = CALLS.fetch_add(1, Ordering::SeqCst) + 1;
    tokio::time::sleep(Duration::from_millis(5)).await;
    if call < 3 {
        return Err(Error::Unavailable(call));
    }
    Ok(vec![format!("{source}/a"), format!("{source}/b")])
}

/// Served from the cache on its second call.
#[traced(cache = doc)]
async fn embed(doc: String) -> Result<usize, Error> {
    tokio::time::sleep(Duration::from_millis(8)).await;
    Ok(doc.len())
}

/// Too slow for its limit.
#[traced(timeout = "30ms")]
async fn rerank(docs: Vec<String>) -> Result<Vec<String>, Error> {
    tokio::time::sleep(Duration::from_secs(5)).await;
    Ok(docs)
}

#[traced]
async fn score(doc: String) -> usize {
    tokio::time::sleep(Duration::from_millis(2)).await;
    doc.len()
}

#[traced(name = "pipeline")]
async fn pipeline() -> Result<usize, Error> {
    let docs = fetch_index("s3://corpus".into()).await?;
    let mut total = 0;
    for doc in docs.iter().chain(docs.iter()) {
        total += embed(doc.clone()).await?;
    }
    if let Err(err) = rerank(docs.clone()).await {
        tracing::warn!(error = %err, "rerank skipped");
    }
    let scores = flowtrace::map(docs, score, 1).await;
    Ok(total + scores.iter().sum::<usize>())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let telemetry = flowtrace_telemetry::builder().console(true).init()?;
    let run = flowtrace::with_runcontext()
        .name("lifecycle_run")
        .run(pipeline())
        .await;
    println!(
        "run {} {:?} in {:?}: {} tasks, {} errors, output {:?}",
        run.run_id(),
        run.status(),
        run.duration(),
        run.task_count(),
        run.error_count(),
        run.output()
    );
    drop(telemetry); // flushes; what was not delivered is reported on stderr
    Ok(())
}
