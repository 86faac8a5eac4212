//! Runs `tests/python/parent_span.py`: a Python OpenTelemetry SDK process
//! whose span is the parent of a child command's trace, passed on through
//! `TRACEPARENT`/`TRACESTATE`.

use std::process::Command;
use std::time::Duration;

use super::process::{Output, run_bounded};

/// Python start-up, the child command and the OTLP export together.
const TIMEOUT: Duration = Duration::from_secs(90);

/// The Python span's ids and what the child printed.
#[derive(Debug)]
pub struct PythonParent {
    /// 32 lowercase hex: the trace the child was told to continue.
    pub trace_id: String,
    /// 16 lowercase hex: the `python-parent` span, the child's parent.
    pub span_id: String,
    /// The child's stdout (everything before the script's JSON line).
    pub child_stdout: String,
    /// Python's and the child's stderr.
    pub stderr: String,
}

/// Runs `child` (argv) under a Python span named `python-parent` that is
/// exported over OTLP/HTTP to `otlp_http_endpoint` (a base URL such as
/// [`super::Collector::http_endpoint`]). `envs` are set for Python and so for
/// the child; `OTEL_*`, `TRACEPARENT`, `TRACESTATE` and `BAGGAGE` of the test
/// process are not passed on. Panics if Python or the child fails.
pub fn run_python_parent(
    otlp_http_endpoint: &str,
    child: &[&str],
    envs: &[(&str, &str)],
) -> PythonParent {
    let python = super::tools::python();
    let script = super::tools::root().join("tests/python/parent_span.py");
    let mut cmd = Command::new(&python);
    cmd.arg(&script).args(child);
    for (key, _) in std::env::vars_os() {
        let key_str = key.to_string_lossy();
        if key_str.starts_with("OTEL_")
            || ["TRACEPARENT", "TRACESTATE", "BAGGAGE"].contains(&key_str.as_ref())
        {
            cmd.env_remove(&key);
        }
    }
    cmd.env("OTEL_EXPORTER_OTLP_ENDPOINT", otlp_http_endpoint)
        .env("PYTHONUNBUFFERED", "1")
        .envs(envs.iter().copied());
    let output = run_bounded(&mut cmd, TIMEOUT);
    output.assert_success(&format!("{} {}", script.display(), child.join(" ")));
    parse(output)
}

fn parse(output: Output) -> PythonParent {
    let (child_stdout, last) = match output.stdout.trim_end().rsplit_once('\n') {
        Some((before, last)) => (format!("{before}\n"), last),
        None => (String::new(), output.stdout.trim_end()),
    };
    let ids: serde_json::Value = serde_json::from_str(last).unwrap_or_else(|e| {
        panic!(
            "parent_span.py: last stdout line is not its JSON ids ({e}): {last:?}\n--- stderr ---\n{}",
            output.stderr
        )
    });
    let field = |name: &str, len: usize| {
        let value = ids[name].as_str().unwrap_or_default().to_owned();
        assert!(
            value.len() == len && value.bytes().all(|b| b.is_ascii_hexdigit()),
            "parent_span.py printed {name} {value:?}, want {len} hex digits: {last}"
        );
        value
    };
    PythonParent {
        trace_id: field("trace_id", 32),
        span_id: field("span_id", 16),
        child_stdout,
        stderr: output.stderr,
    }
}
