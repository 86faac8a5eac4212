//! The Flyte OpenTelemetry example, in Rust: a run named `workflow_run` with a
//! `custom_context` entry; task `main` fans out to three concurrent `fetch`
//! tasks (one fails and is handled), each calling a nested `parse` task.
//!
//! ```text
//! cargo run --example quickstart
//! ```
//!
//! With nothing configured the spans go to `flowtrace-traces.jsonl` (OTLP/JSON,
//! one export request per line); set `OTEL_EXPORTER_OTLP_ENDPOINT` to send
//! them to a collector instead. The trace is also printed as a tree, and the
//! last line is the `flowtrace view` command that draws it as a waterfall.

use std::time::Duration;

use flowtrace::traced;

#[derive(Debug)]
struct FetchError {
    url: String,
}

impl std::fmt::Display for FetchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} answered 404", self.url)
    }
}

impl std::error::Error for FetchError {}

/// Counts the words of a page.
#[traced]
async fn parse(body: String) -> usize {
    tokio::time::sleep(Duration::from_millis(3)).await;
    body.split_whitespace().count()
}

/// Fetches a page (simulated: no network needed) and parses it.
#[traced]
async fn fetch(url: String) -> Result<usize, FetchError> {
    let team = flowtrace::ctx()
        .custom_context()
        .get("team")
        .unwrap_or("-")
        .to_owned();
    tracing::info!(%url, %team, "fetching");
    tokio::time::sleep(Duration::from_millis(10)).await;
    if url.ends_with("/missing") {
        return Err(FetchError { url });
    }
    let body = format!("<html> {url} is a page about {team} </html>");
    Ok(parse(body).await)
}

/// The workflow's entry task: fans out, handles the failure, sums the rest.
#[traced(name = "main")]
async fn main_task(urls: Vec<String>) -> usize {
    let results = futures::future::join_all(urls.into_iter().map(fetch)).await;
    let mut words = 0;
    for result in results {
        match result {
            Ok(n) => words += n,
            Err(err) => tracing::warn!(error = %err, "skipping a page"),
        }
    }
    words
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // OTEL_* from the environment; with nothing set, spans go to a local file.
    let telemetry = flowtrace_telemetry::builder().console(true).init()?;

    let urls = [
        "https://example.com/a",
        "https://example.com/missing",
        "https://example.com/b",
    ]
    .map(String::from)
    .to_vec();
    let run = flowtrace::with_runcontext()
        .name("workflow_run")
        .custom_context([("team", "search")])
        .run(main_task(urls))
        .await;

    println!(
        "run {} finished: {} words, trace {}",
        run.run_id(),
        run.output(),
        run.trace_id()
    );
    let file = telemetry.trace_file().map(|p| p.display().to_string());
    // Flushes; the console exporter prints the tree. Telemetry that could
    // not be delivered is reported in one line on stderr: the run itself
    // succeeded, so the program does too.
    drop(telemetry);
    if let Some(file) = file {
        println!("spans written to {file} (OTLP/JSON lines)");
        // The waterfall in the terminal; add `--html trace.html` for a page.
        println!("see the run: flowtrace view {}", shell_word(&file));
    }
    Ok(())
}

/// `path` as one shell word, quoted when it needs to be.
fn shell_word(path: &str) -> String {
    let plain = path
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-+:@%,=".contains(c));
    if plain && !path.is_empty() {
        path.to_owned()
    } else {
        format!("'{}'", path.replace('\'', "'\\''"))
    }
}
