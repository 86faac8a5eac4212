//! Replaying a trace file into a collector: the other half of the durable
//! local spool (`OTEL_TRACES_EXPORTER=otlp,file`, or the file alone while no
//! collector is reachable). Each line of the file is one OTLP/JSON
//! `ExportTraceServiceRequest` and is sent as it is, so the collector sees
//! the spans with their original ids, times and resource.
//!
//! The `flowtrace` binary wraps this: `flowtrace replay <file> --endpoint …`.

use std::fmt;
use std::io::{BufRead, BufReader, Read as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;

use super::config::{self, EnvSource, Otlp, Overrides};
use super::otlp::Transport;
use super::retry::{Backoff, Outcome};
use super::{Protocol, redact};

/// A line longer than this is skipped, not buffered: a request the file
/// exporter writes is a few hundred KiB, and OTLP receivers refuse bodies
/// far smaller than this anyway.
const MAX_LINE_BYTES: u64 = 64 << 20;

/// Where and how [`replay`] sends. The endpoint is read like the
/// builder's: a URL without a path is a base URL (`/v1/traces` is appended
/// for HTTP).
///
/// ```
/// use flowtrace_telemetry::{Protocol, ReplayOptions};
/// use std::time::Duration;
///
/// let options = ReplayOptions::new("http://collector:4317")
///     .protocol(Protocol::Grpc)
///     .header("x-api-key", "secret")
///     .timeout(Duration::from_secs(5))
///     .retry_for(Duration::from_secs(60));
/// # let _ = options;
/// ```
/// `Debug` shows the headers' names, never their values.
#[derive(Clone)]
pub struct ReplayOptions {
    env: EnvSource,
    code: Overrides,
    headers: Vec<(String, String)>,
    timeout: Option<Duration>,
    retry_for: Duration,
    from_line: usize,
}

impl std::fmt::Debug for ReplayOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplayOptions")
            .field("env", &self.env)
            .field("code", &self.code)
            .field("headers", &redact::Headers(&self.headers))
            .field("timeout", &self.timeout)
            .field("retry_for", &self.retry_for)
            .field("from_line", &self.from_line)
            .finish()
    }
}

impl ReplayOptions {
    /// Sends to `endpoint` (HTTP/protobuf unless [`protocol`](Self::protocol)
    /// says otherwise); nothing is read from the environment.
    pub fn new(endpoint: impl Into<String>) -> Self {
        let code = Overrides {
            otlp_endpoint: Some(endpoint.into()),
            ..Overrides::default()
        };
        Self {
            env: EnvSource::Map(Default::default()),
            code,
            headers: Vec::new(),
            timeout: None,
            retry_for: Duration::from_secs(30),
            from_line: 1,
        }
    }

    /// The OTLP settings `init()` would use: `OTEL_EXPORTER_OTLP_*`
    /// (endpoint, protocol, headers, timeout, certificate), with the same
    /// defaults. `OTEL_SDK_DISABLED` does not apply to an explicit replay.
    pub fn from_env() -> Self {
        let vars = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .filter(|(k, _)| k.starts_with("OTEL_EXPORTER_OTLP_"))
            .collect();
        Self {
            env: EnvSource::Map(vars),
            code: Overrides::default(),
            ..Self::new(String::new())
        }
    }

    /// Overrides the endpoint.
    pub fn endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.code.otlp_endpoint = Some(endpoint.into());
        self
    }

    /// The transport (default: `http/protobuf`, or the environment's).
    pub fn protocol(mut self, protocol: Protocol) -> Self {
        self.code.otlp_protocol = Some(protocol);
        self
    }

    /// Adds a header (gRPC metadata) to every request.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Bounds each attempt (default: `OTEL_EXPORTER_OTLP_TIMEOUT`, 10 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// How long one request is retried while the collector is unreachable
    /// or asks to retry, before replay gives up (default 30 s).
    pub fn retry_for(mut self, budget: Duration) -> Self {
        self.retry_for = budget;
        self
    }

    /// A CA certificate file (PEM) to trust for `https`.
    pub fn certificate(mut self, path: impl Into<PathBuf>) -> Self {
        self.code.otlp_certificate = Some(path.into());
        self
    }

    /// Starts at this 1-based line (to resume after [`ReplayError::Unreachable`]).
    pub fn from_line(mut self, line: usize) -> Self {
        self.from_line = line.max(1);
        self
    }

    /// The resolved OTLP settings, or every problem found in them.
    fn otlp(&self) -> Result<Otlp, ReplayError> {
        let (config, warnings) = config::resolve(&self.env, &self.code);
        let mut problems: Vec<String> = warnings
            .iter()
            .filter(|w| !w.is_note())
            .filter(|w| w.setting().contains("OTLP") || w.setting().contains("otlp"))
            .map(ToString::to_string)
            .collect();
        let Some(config) = config else {
            return Err(ReplayError::Config(
                "the configuration was not resolved".into(),
            ));
        };
        let mut otlp = config.otlp;
        let grpc = otlp.protocol == Protocol::Grpc;
        for (name, value) in &self.headers {
            match redact::header_problem(name, value, grpc) {
                None => otlp
                    .headers
                    .push((name.to_ascii_lowercase(), value.clone())),
                Some(problem) => {
                    problems.push(format!("{problem}: names are tokens, values visible ASCII"))
                }
            }
        }
        if let Some(timeout) = self.timeout {
            otlp.timeout = timeout;
        }
        match problems.is_empty() {
            true => Ok(otlp),
            false => Err(ReplayError::Config(problems.join("; "))),
        }
    }
}

/// What [`replay`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReplayReport {
    /// Where it sent to (credentials and query in the URL not shown).
    pub endpoint: String,
    /// Requests the collector accepted.
    pub requests: u64,
    /// Spans in those requests.
    pub spans: u64,
    /// Spans the collector refused in an accepted request (partial success).
    pub rejected_spans: u64,
    /// Lines not sent, with the reason: not OTLP/JSON, too long, or refused
    /// by the collector in a way that is not retried (e.g. HTTP 400).
    pub skipped_lines: Vec<(usize, String)>,
    /// The last line read (1-based).
    pub last_line: usize,
}

impl fmt::Display for ReplayReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} requests, {} spans sent to {}",
            self.requests, self.spans, self.endpoint
        )?;
        if self.rejected_spans > 0 {
            write!(f, ", {} rejected by the collector", self.rejected_spans)?;
        }
        if !self.skipped_lines.is_empty() {
            write!(f, ", {} lines skipped", self.skipped_lines.len())?;
        }
        Ok(())
    }
}

/// Why [`replay`] stopped.
#[derive(Debug)]
#[non_exhaustive]
pub enum ReplayError {
    /// The file could not be read.
    Io(PathBuf, std::io::Error),
    /// A bad endpoint, protocol, header or certificate.
    Config(String),
    /// The collector stayed unreachable (or kept asking to retry) for the
    /// whole retry budget at `line`; lines before it were sent (see the
    /// report). Resume with [`ReplayOptions::from_line`].
    Unreachable {
        /// The 1-based line that could not be sent.
        line: usize,
        /// The last failure.
        reason: String,
        /// What was done before.
        report: ReplayReport,
    },
}

impl fmt::Display for ReplayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReplayError::Io(path, err) => write!(f, "cannot read {}: {err}", path.display()),
            ReplayError::Config(problem) => write!(f, "bad OTLP settings: {problem}"),
            ReplayError::Unreachable {
                line,
                reason,
                report,
            } => write!(
                f,
                "line {line} could not be sent ({reason}); before it: {report}; \
                 resume from line {line}"
            ),
        }
    }
}

impl std::error::Error for ReplayError {}

/// Sends every request in the OTLP/JSON lines file at `path` to the
/// collector, in order, retrying each with backoff while the collector is
/// unreachable (up to [`ReplayOptions::retry_for`]). Malformed lines are
/// skipped and listed in the report, never a panic. It blocks; inside
/// async code, run it with `spawn_blocking`.
///
/// ```no_run
/// use flowtrace_telemetry::{ReplayOptions, replay};
///
/// let report = replay("flowtrace-traces.jsonl".as_ref(), &ReplayOptions::new("http://localhost:4318"))?;
/// println!("{report}");
/// # Ok::<(), flowtrace_telemetry::ReplayError>(())
/// ```
pub fn replay(path: &Path, options: &ReplayOptions) -> Result<ReplayReport, ReplayError> {
    if tokio::runtime::Handle::try_current().is_ok() {
        // Its own runtime cannot block inside another's async context.
        return Err(ReplayError::Config(
            "replay blocks: call it outside async code (e.g. in spawn_blocking)".into(),
        ));
    }
    let otlp = options.otlp()?;
    let file = std::fs::File::open(path).map_err(|e| ReplayError::Io(path.to_owned(), e))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| ReplayError::Config(format!("cannot start a runtime: {e}")))?;
    let transport = {
        let _entered = runtime.enter();
        Transport::new(&otlp).map_err(ReplayError::Config)?
    };
    let mut report = ReplayReport {
        endpoint: redact::url(&otlp.endpoint),
        ..ReplayReport::default()
    };
    let mut reader = BufReader::new(file);
    let mut line = Vec::new();
    for number in 1.. {
        line.clear();
        let read = (&mut reader)
            .take(MAX_LINE_BYTES + 1)
            .read_until(b'\n', &mut line)
            .map_err(|e| ReplayError::Io(path.to_owned(), e))?;
        if read == 0 {
            break;
        }
        report.last_line = number;
        if line.len() as u64 > MAX_LINE_BYTES {
            skip_rest_of_line(&mut reader).map_err(|e| ReplayError::Io(path.to_owned(), e))?;
            report
                .skipped_lines
                .push((number, format!("longer than {MAX_LINE_BYTES} bytes")));
            continue;
        }
        if number < options.from_line || line.trim_ascii().is_empty() {
            continue;
        }
        let request: ExportTraceServiceRequest = match serde_json::from_slice(&line) {
            Ok(request) => request,
            Err(e) => {
                report
                    .skipped_lines
                    .push((number, format!("not an OTLP/JSON request: {e}")));
                continue;
            }
        };
        let spans = span_count(&request);
        if spans == 0 {
            continue;
        }
        match send(&runtime, &transport, &otlp, request, options.retry_for) {
            Ok(rejected) => {
                report.requests += 1;
                report.spans += spans;
                report.rejected_spans += rejected;
            }
            Err(Final(reason)) => report.skipped_lines.push((number, reason)),
            Err(GaveUp(reason)) => {
                return Err(ReplayError::Unreachable {
                    line: number,
                    reason,
                    report,
                });
            }
        }
    }
    Ok(report)
}

enum SendError {
    /// Not retryable: the line is skipped.
    Final(String),
    /// Retryable, but the budget ran out.
    GaveUp(String),
}
use SendError::{Final, GaveUp};

/// One request, retried with backoff within `budget`; the rejected count.
fn send(
    runtime: &tokio::runtime::Runtime,
    transport: &Transport,
    otlp: &Otlp,
    request: ExportTraceServiceRequest,
    budget: Duration,
) -> Result<u64, SendError> {
    let started = Instant::now();
    let mut backoff = Backoff::default();
    loop {
        // Made inside the runtime: tokio's timer needs its context.
        let attempt =
            async { tokio::time::timeout(otlp.timeout, transport.send(request.clone())).await };
        let outcome = runtime
            .block_on(attempt)
            .unwrap_or_else(|_| Outcome::unreachable("no answer within the timeout"));
        match outcome {
            Outcome::Sent { rejected } => return Ok(rejected),
            Outcome::Failed { reason } => return Err(Final(reason)),
            Outcome::Retry { after, reason } => {
                let pause = backoff.next_delay(after);
                if started.elapsed() + pause > budget {
                    return Err(GaveUp(reason));
                }
                std::thread::sleep(pause);
            }
        }
    }
}

fn span_count(request: &ExportTraceServiceRequest) -> u64 {
    request
        .resource_spans
        .iter()
        .flat_map(|rs| &rs.scope_spans)
        .map(|ss| ss.spans.len() as u64)
        .sum()
}

/// Consumes input up to and including the next newline, in bounded pieces.
fn skip_rest_of_line(reader: &mut impl BufRead) -> std::io::Result<()> {
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            return Ok(());
        }
        if let Some(i) = buf.iter().position(|&b| b == b'\n') {
            reader.consume(i + 1);
            return Ok(());
        }
        let n = buf.len();
        reader.consume(n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::temp_path;

    #[test]
    fn bad_settings_are_reported_before_reading() {
        let cases = [
            (
                ReplayOptions::new("ftp://x"),
                "otlp_endpoint",
                "a bad scheme",
            ),
            (
                ReplayOptions::new("http://x").header("bad name", "v"),
                "bad name",
                "a bad header",
            ),
        ];
        for (options, expected, reason) in cases {
            match replay(Path::new("/nonexistent"), &options) {
                Err(ReplayError::Config(problem)) => {
                    assert!(problem.contains(expected), "{reason}: {problem}")
                }
                other => panic!("{reason}: {other:?}"),
            }
        }
    }

    #[test]
    fn malformed_lines_are_skipped_with_their_number() {
        let path = temp_path("replay-malformed");
        std::fs::write(&path, "not json\n\n{\"resourceSpans\":[]}\n[1,2]\n").unwrap();
        // Nothing listens; no line has spans, so nothing is sent.
        let report = replay(&path, &ReplayOptions::new("http://127.0.0.1:9")).unwrap();
        let lines: Vec<usize> = report.skipped_lines.iter().map(|(n, _)| *n).collect();
        assert_eq!(lines, [1, 4], "{:?}", report.skipped_lines);
        assert_eq!(report.last_line, 4);
        assert_eq!(report.requests, 0);
        std::fs::remove_file(&path).ok();
    }

    #[tokio::test(flavor = "current_thread")]
    async fn inside_async_code_it_is_an_error_not_a_panic() {
        let result = replay(Path::new("x"), &ReplayOptions::new("http://127.0.0.1:9"));
        assert!(
            matches!(&result, Err(ReplayError::Config(m)) if m.contains("spawn_blocking")),
            "{result:?}"
        );
    }

    #[test]
    fn an_overlong_line_is_skipped_without_buffering_it() {
        let mut reader = BufReader::new(&b"aaaaaaaaaa\nnext\n"[..]);
        skip_rest_of_line(&mut reader).unwrap();
        let mut rest = String::new();
        reader.read_line(&mut rest).unwrap();
        assert_eq!(rest, "next\n", "resumes after the newline");
    }
}
