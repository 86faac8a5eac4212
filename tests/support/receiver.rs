//! The test's own OTLP/gRPC trace receiver: the end of the pipeline where a
//! test reads what a collector forwarded.
//!
//! It runs on its own thread with its own tokio runtime, so it keeps receiving
//! whatever the test does with its own runtime (blocks it, drops it, has none).

use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex, MutexGuard, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{
    LogsService, LogsServiceServer,
};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use tokio::sync::oneshot;
use tonic::codec::CompressionEncoding;

use super::span::{self, Span};

/// How often the `wait_for*` methods look again.
const POLL: Duration = Duration::from_millis(20);

type Requests = Arc<Mutex<Vec<ExportTraceServiceRequest>>>;
type LogRequests = Arc<Mutex<Vec<ExportLogsServiceRequest>>>;
type MetricRequests = Arc<Mutex<Vec<ExportMetricsServiceRequest>>>;

/// An OTLP/gRPC trace service on `127.0.0.1:<free port>` that keeps every
/// `ExportTraceServiceRequest` it receives. Stops on drop.
pub struct Receiver {
    addr: SocketAddr,
    requests: Requests,
    log_requests: LogRequests,
    metric_requests: MetricRequests,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
    /// Disconnects when the server thread ends: lets drop bound its wait.
    finished: mpsc::Receiver<()>,
}

struct Sink(Requests);
struct LogSink(LogRequests);
struct MetricSink(MetricRequests);

#[tonic::async_trait]
impl MetricsService for MetricSink {
    async fn export(
        &self,
        request: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
        lock(&self.0).push(request.into_inner());
        Ok(tonic::Response::new(ExportMetricsServiceResponse {
            partial_success: None,
        }))
    }
}

#[tonic::async_trait]
impl LogsService for LogSink {
    async fn export(
        &self,
        request: tonic::Request<ExportLogsServiceRequest>,
    ) -> Result<tonic::Response<ExportLogsServiceResponse>, tonic::Status> {
        lock(&self.0).push(request.into_inner());
        Ok(tonic::Response::new(ExportLogsServiceResponse {
            partial_success: None,
        }))
    }
}

#[tonic::async_trait]
impl TraceService for Sink {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        lock(&self.0).push(request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

impl Receiver {
    /// Binds a free loopback port and starts serving; the port accepts
    /// connections when this returns.
    pub fn start() -> Receiver {
        // Bound here, before the server thread exists, so the port is known
        // and already listening: no window for another process to take it.
        let listener = TcpListener::bind("127.0.0.1:0")
            .unwrap_or_else(|e| panic!("test receiver: cannot bind 127.0.0.1:0: {e}"));
        let addr = listener.local_addr().expect("test receiver: local_addr");
        listener
            .set_nonblocking(true)
            .expect("test receiver: set_nonblocking");
        let requests = Requests::default();
        let (shutdown, stopped) = oneshot::channel::<()>();
        let sink = Sink(requests.clone());
        let log_requests = LogRequests::default();
        let log_sink = LogSink(log_requests.clone());
        let metric_requests = MetricRequests::default();
        let metric_sink = MetricSink(metric_requests.clone());
        let (finishing, finished) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name(format!("otlp-receiver-{}", addr.port()))
            .spawn(move || {
                let _finishing = finishing;
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("test receiver: tokio runtime");
                runtime.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(listener)
                        .expect("test receiver: tokio listener");
                    let incoming = tonic::transport::server::TcpIncoming::from(listener);
                    // rotel 0.0.1a15 gzips whatever its compression flags say.
                    let service = TraceServiceServer::new(sink)
                        .accept_compressed(CompressionEncoding::Gzip)
                        .max_decoding_message_size(64 << 20);
                    let logs = LogsServiceServer::new(log_sink)
                        .accept_compressed(CompressionEncoding::Gzip)
                        .max_decoding_message_size(64 << 20);
                    let metrics = MetricsServiceServer::new(metric_sink)
                        .accept_compressed(CompressionEncoding::Gzip)
                        .max_decoding_message_size(64 << 20);
                    let served = tonic::transport::Server::builder()
                        .add_service(service)
                        .add_service(logs)
                        .add_service(metrics)
                        .serve_with_incoming_shutdown(incoming, async {
                            let _ = stopped.await;
                        })
                        .await;
                    if let Err(e) = served {
                        eprintln!("test receiver on {addr}: server stopped: {e}");
                    }
                });
            })
            .expect("test receiver: spawn thread");
        Receiver {
            addr,
            requests,
            log_requests,
            metric_requests,
            shutdown: Some(shutdown),
            thread: Some(thread),
            finished,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port>`: an OTLP/gRPC endpoint for an exporter.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<ExportTraceServiceRequest> {
        lock(&self.requests).clone()
    }

    /// Every metrics request received so far, in arrival order.
    pub fn metric_requests(&self) -> Vec<ExportMetricsServiceRequest> {
        lock(&self.metric_requests).clone()
    }

    /// Polls until `done(requests)` holds and returns the requests then;
    /// panics after `timeout` with `what` and how many arrived.
    pub fn wait_for_metrics(
        &self,
        what: &str,
        timeout: Duration,
        done: impl Fn(&[ExportMetricsServiceRequest]) -> bool,
    ) -> Vec<ExportMetricsServiceRequest> {
        let deadline = Instant::now() + timeout;
        loop {
            let requests = self.metric_requests();
            if done(&requests) {
                return requests;
            }
            if Instant::now() >= deadline {
                panic!(
                    "test receiver {}: waited {timeout:?} for {what}; received {} metrics requests: {requests:#?}",
                    self.endpoint(),
                    requests.len()
                );
            }
            std::thread::sleep(POLL);
        }
    }

    /// Every log record received so far, flattened, in arrival order.
    pub fn logs(&self) -> Vec<LogRecord> {
        lock(&self.log_requests)
            .iter()
            .flat_map(log_records)
            .collect()
    }

    /// Polls until `done(records)` holds and returns the records then;
    /// panics after `timeout` with `what` and what arrived.
    pub async fn wait_for_logs_async(
        &self,
        what: &str,
        timeout: Duration,
        done: impl Fn(&[LogRecord]) -> bool,
    ) -> Vec<LogRecord> {
        let deadline = Instant::now() + timeout;
        loop {
            let records = self.logs();
            if done(&records) {
                return records;
            }
            if Instant::now() >= deadline {
                panic!(
                    "test receiver {}: waited {timeout:?} for {what}; received log records: {records:#?}",
                    self.endpoint()
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Every span received so far, flattened, in arrival order.
    pub fn spans(&self) -> Vec<Span> {
        lock(&self.requests)
            .iter()
            .flat_map(span::from_request)
            .collect()
    }

    /// Polls until `done(spans)` holds and returns the spans then; panics
    /// after `timeout` with `what` and the spans seen. Blocks the thread: in an
    /// async test use [`Receiver::wait_for_async`].
    pub fn wait_for(
        &self,
        what: &str,
        timeout: Duration,
        done: impl Fn(&[Span]) -> bool,
    ) -> Vec<Span> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(spans) = self.check(what, timeout, deadline, &done) {
                return spans;
            }
            std::thread::sleep(POLL);
        }
    }

    /// [`Receiver::wait_for`] for async tests: sleeps with tokio, so the
    /// test's runtime keeps running (and exporting) while it waits.
    pub async fn wait_for_async(
        &self,
        what: &str,
        timeout: Duration,
        done: impl Fn(&[Span]) -> bool,
    ) -> Vec<Span> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(spans) = self.check(what, timeout, deadline, &done) {
                return spans;
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// One poll of a wait: the spans once `done` holds, `None` to poll
    /// again; panics past the deadline.
    fn check(
        &self,
        what: &str,
        timeout: Duration,
        deadline: Instant,
        done: &impl Fn(&[Span]) -> bool,
    ) -> Option<Vec<Span>> {
        let spans = self.spans();
        if done(&spans) {
            return Some(spans);
        }
        if Instant::now() >= deadline {
            self.timed_out(what, timeout, &spans);
        }
        None
    }

    /// Waits until at least `count` spans of trace `trace_id` arrived and
    /// returns the spans of that trace.
    pub fn wait_for_trace(&self, trace_id: &str, count: usize, timeout: Duration) -> Vec<Span> {
        let what = format!("{count} span(s) of trace {trace_id}");
        let spans = self.wait_for(&what, timeout, |spans| {
            spans.iter().filter(|s| s.trace_id == trace_id).count() >= count
        });
        span::spans_of_trace(&spans, trace_id)
    }

    /// [`Receiver::wait_for_trace`] for async tests.
    pub async fn wait_for_trace_async(
        &self,
        trace_id: &str,
        count: usize,
        timeout: Duration,
    ) -> Vec<Span> {
        let what = format!("{count} span(s) of trace {trace_id}");
        let spans = self
            .wait_for_async(&what, timeout, |spans| {
                spans.iter().filter(|s| s.trace_id == trace_id).count() >= count
            })
            .await;
        span::spans_of_trace(&spans, trace_id)
    }

    fn timed_out(&self, what: &str, timeout: Duration, spans: &[Span]) -> ! {
        panic!(
            "test receiver {}: waited {timeout:?} for {what}; received {} request(s) with spans: {}",
            self.endpoint(),
            lock(&self.requests).len(),
            span::summary(spans)
        )
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        // The server stops accepting at once and closes connections
        // gracefully, which waits for requests in flight; a client that keeps
        // one open must not hang the test, so the wait is bounded.
        let Some(thread) = self.thread.take() else {
            return;
        };
        match self.finished.recv_timeout(Duration::from_secs(5)) {
            Err(mpsc::RecvTimeoutError::Timeout) => {
                eprintln!(
                    "test receiver {}: still closing after 5s; left behind",
                    self.addr
                );
            }
            _ => {
                let _ = thread.join();
            }
        }
    }
}

/// One log record, flattened: ids in lowercase hex (empty when absent), the
/// body as text (a string as itself, anything else as its proto debug form).
#[derive(Debug, Clone, PartialEq)]
pub struct LogRecord {
    pub trace_id: String,
    pub span_id: String,
    pub severity_text: String,
    pub body: String,
    pub attributes: Vec<(String, String)>,
    pub service_name: String,
    /// The event name of an event record (`gen_ai.evaluation.result`), else empty.
    pub event_name: String,
}

impl LogRecord {
    pub fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

fn text(value: &Option<opentelemetry_proto::tonic::common::v1::AnyValue>) -> String {
    use opentelemetry_proto::tonic::common::v1::any_value::Value;
    match value.as_ref().and_then(|v| v.value.as_ref()) {
        Some(Value::StringValue(s)) => s.clone(),
        Some(Value::IntValue(i)) => i.to_string(),
        Some(Value::BoolValue(b)) => b.to_string(),
        Some(Value::DoubleValue(d)) => d.to_string(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn log_records(request: &ExportLogsServiceRequest) -> Vec<LogRecord> {
    let mut out = Vec::new();
    for rl in &request.resource_logs {
        let service_name = rl
            .resource
            .iter()
            .flat_map(|r| &r.attributes)
            .find(|kv| kv.key == "service.name")
            .map(|kv| text(&kv.value))
            .unwrap_or_default();
        for sl in &rl.scope_logs {
            for record in &sl.log_records {
                out.push(LogRecord {
                    trace_id: hex(&record.trace_id),
                    span_id: hex(&record.span_id),
                    severity_text: record.severity_text.clone(),
                    body: text(&record.body),
                    attributes: record
                        .attributes
                        .iter()
                        .map(|kv| (kv.key.clone(), text(&kv.value)))
                        .collect(),
                    service_name: service_name.clone(),
                    event_name: record.event_name.clone(),
                });
            }
        }
    }
    out
}

/// A poisoned lock only means another test thread panicked mid-push; the
/// data is still a list of complete requests.
fn lock<T>(requests: &Mutex<Vec<T>>) -> MutexGuard<'_, Vec<T>> {
    requests.lock().unwrap_or_else(|e| e.into_inner())
}
