//! Export throughput: spans per second that flowtrace delivers to a real
//! collector over loopback, with the settings it ships.
//!
//! ```text
//! #[traced] tasks --OTLP gRPC or HTTP--> rotel-agent --OTLP gRPC--> counting receiver
//! ```
//!
//! For each protocol, telemetry is installed with
//! `flowtrace_telemetry::builder()` (exporter OTLP, endpoint = rotel,
//! nothing read from the environment, so the shipped defaults apply: queue
//! 2048, batch 512, 2 exports in flight, a start record per span sent as a
//! log record beside it), spans are produced at a fixed rate for a few
//! seconds, then the guard is shut down and its counters
//! ([`flowtrace_telemetry::Telemetry::stats`], `log_stats`) say what was
//! exported and what was dropped; the receiver behind rotel counts what
//! actually arrived, spans and log records. The rate climbs a ladder, then
//! bisects to the highest rate with 0 dropped spans; a last step produces
//! as fast as one thread can.
//!
//! Side by side in the same run, for each protocol: flowtrace's own OTLP
//! transport and opentelemetry-otlp's exporter (0.33, retries on) behind
//! the same flowtrace batch processor
//! ([`flowtrace_telemetry::TelemetryBuilder::span_exporter`]), both through
//! rotel; flowtrace's gRPC straight to the counting receiver, which tells
//! the collector's share from the exporter's; flowtrace's transport with
//! start records off; and first, a minimal sender (`export_throughput/raw.rs`:
//! one encoded request sent again and again, 1 or 4 in flight) into rotel's
//! gRPC and HTTP receivers and into the counting receiver, which measures
//! the receiving side alone.
//!
//! Run by `cargo bench --bench export_throughput` (and `scripts/bench`);
//! results in `target/bench/export_throughput.{md,json}`. Settings:
//! `FLOWTRACE_BENCH_STEP_SECS` (default 3), and
//! `FLOWTRACE_BENCH_BSP="OTEL_BSP_MAX_QUEUE_SIZE=8192,..."` to measure other
//! batch settings than the shipped ones (`OTEL_BSP_MAX_CONCURRENT_EXPORTS=1`:
//! one export at a time; results then go to
//! `export_throughput-custom.{md,json}`), and `FLOWTRACE_BENCH_ONLY=<text>`
//! to measure only the set-ups whose name contains it (`a|b`: either).

#[path = "export_throughput/raw.rs"]
mod raw;
#[path = "../tests/support/mod.rs"]
mod support;

use std::fmt::Write as _;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use flowtrace_telemetry::{ExporterKind, Protocol};
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
use serde_json::json;
use tokio::sync::oneshot;
use tonic::codec::CompressionEncoding;

/// The rate ladder (spans per second); then bisection, then "as fast as possible".
const LADDER: [u64; 6] = [5_000, 10_000, 25_000, 50_000, 100_000, 200_000];
const BISECTIONS: usize = 3;

#[flowtrace::traced(skip_all)]
async fn unit(x: u64) -> u64 {
    x
}

// ---- the counting receiver behind rotel ---------------------------------------

struct Count(Arc<AtomicU64>);

#[tonic::async_trait]
impl TraceService for Count {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let spans: usize = request
            .get_ref()
            .resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .map(|s| s.spans.len())
            .sum();
        self.0.fetch_add(spans as u64, Ordering::Relaxed);
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

/// Counts log records (the spans' start records), as `Count` spans.
struct CountLogs(Arc<AtomicU64>);

#[tonic::async_trait]
impl LogsService for CountLogs {
    async fn export(
        &self,
        request: tonic::Request<ExportLogsServiceRequest>,
    ) -> Result<tonic::Response<ExportLogsServiceResponse>, tonic::Status> {
        let records: usize = request
            .get_ref()
            .resource_logs
            .iter()
            .flat_map(|r| &r.scope_logs)
            .map(|s| s.log_records.len())
            .sum();
        self.0.fetch_add(records as u64, Ordering::Relaxed);
        Ok(tonic::Response::new(ExportLogsServiceResponse {
            partial_success: None,
        }))
    }
}

/// Accepts metrics (the task metrics' periodic export) and drops them.
struct IgnoreMetrics;

#[tonic::async_trait]
impl MetricsService for IgnoreMetrics {
    async fn export(
        &self,
        _request: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
        Ok(tonic::Response::new(ExportMetricsServiceResponse {
            partial_success: None,
        }))
    }
}

/// An OTLP/gRPC receiver that counts spans and log records, on its own
/// thread.
struct Receiver {
    addr: SocketAddr,
    spans: Arc<AtomicU64>,
    log_records: Arc<AtomicU64>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Receiver {
    fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").expect("receiver: bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("receiver: local_addr");
        listener
            .set_nonblocking(true)
            .expect("receiver: nonblocking");
        let spans = Arc::new(AtomicU64::new(0));
        let log_records = Arc::new(AtomicU64::new(0));
        let service = TraceServiceServer::new(Count(spans.clone()))
            .accept_compressed(CompressionEncoding::Gzip)
            .max_decoding_message_size(64 << 20);
        let logs = LogsServiceServer::new(CountLogs(log_records.clone()))
            .accept_compressed(CompressionEncoding::Gzip)
            .max_decoding_message_size(64 << 20);
        let metrics = MetricsServiceServer::new(IgnoreMetrics)
            .accept_compressed(CompressionEncoding::Gzip)
            .max_decoding_message_size(64 << 20);
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("receiver: runtime");
            runtime.block_on(async move {
                let listener =
                    tokio::net::TcpListener::from_std(listener).expect("receiver: listener");
                // TCP_NODELAY on every accepted connection, as a collector
                // sets it (Go's listeners do by default). Without it the
                // receiver's small writes (window updates, the response)
                // wait for the client's delayed ACK: 40 ms stalls.
                let incoming =
                    tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
                let _ = tonic::transport::Server::builder()
                    .add_service(service)
                    .add_service(logs)
                    .add_service(metrics)
                    .serve_with_incoming_shutdown(incoming, async {
                        let _ = stopped.await;
                    })
                    .await;
            });
        });
        Receiver {
            addr,
            spans,
            log_records,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    fn count(&self) -> u64 {
        self.spans.load(Ordering::Relaxed)
    }

    fn log_count(&self) -> u64 {
        self.log_records.load(Ordering::Relaxed)
    }

    /// Waits until `count()` reaches `expected` or stops moving for 1 s.
    fn settle(&self, expected: u64) -> u64 {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut last = self.count();
        let mut still_since = Instant::now();
        while last < expected && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
            let now = self.count();
            if now != last {
                still_since = Instant::now();
                last = now;
            } else if still_since.elapsed() > Duration::from_secs(1) {
                break;
            }
        }
        last
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

// ---- rotel ---------------------------------------------------------------------

/// `rotel-agent` on free loopback ports forwarding to `receiver`, with the
/// flags of the test harness (tests/support/collector.rs) minus its
/// per-batch debug log.
struct Rotel {
    child: Child,
    grpc: SocketAddr,
    http: SocketAddr,
}

impl Rotel {
    fn start(receiver: &Receiver) -> Rotel {
        let agent = support::tools::rotel_agent();
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("bench-rotel");
        std::fs::create_dir_all(&dir).expect("rotel: create its directory");
        let free = || {
            TcpListener::bind("127.0.0.1:0")
                .expect("rotel: bind 127.0.0.1:0")
                .local_addr()
                .expect("rotel: local_addr")
        };
        let (grpc, http) = (free(), free());
        let log = std::fs::File::create(dir.join("rotel.out")).expect("rotel: log file");
        let mut cmd = Command::new(&agent);
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("ROTEL_") {
                cmd.env_remove(key);
            }
        }
        let child = cmd
            .env("NO_COLOR", "1")
            .arg("start")
            .args(["--otlp-grpc-endpoint", &grpc.to_string()])
            .args(["--otlp-http-endpoint", &http.to_string()])
            .args(["--exporter", "otlp"])
            .args([
                "--otlp-exporter-endpoint",
                &format!("http://{}", receiver.addr),
            ])
            .args(["--otlp-exporter-protocol", "grpc"])
            // The per-signal flags too: without them rotel gzips what it
            // forwards, which costs the bench's 2 cores.
            .args(["--otlp-exporter-compression", "none"])
            .args(["--otlp-exporter-traces-compression", "none"])
            .args(["--otlp-exporter-logs-compression", "none"])
            .args(["--otlp-exporter-metrics-compression", "none"])
            .args(["--traces-batch-timeout", "10ms"])
            .arg("--pid-file")
            .arg(dir.join("rotel.pid"))
            .arg("--log-file")
            .arg(dir.join("rotel.log"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("rotel: log handle"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("rotel: cannot run {}: {e}", agent.display()));
        let deadline = Instant::now() + Duration::from_secs(15);
        let up = |addr| TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok();
        while !(up(grpc) && up(http)) {
            assert!(
                Instant::now() < deadline,
                "rotel did not open {grpc} and {http}; log in {}",
                dir.display()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Rotel { child, grpc, http }
    }
}

impl Drop for Rotel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---- what is measured ------------------------------------------------------------

/// One exporter set-up: a protocol, a transport, a target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Setup {
    protocol: Protocol,
    transport: Transport,
    /// Straight to the receiver instead of through rotel.
    direct: bool,
    /// A start record (log record) for each span, as shipped; off to see
    /// what they cost.
    start_records: bool,
    /// One export at a time (`OTEL_BSP_MAX_CONCURRENT_EXPORTS=1`) instead
    /// of the shipped 4, to see what overlapping exports bring.
    one_in_flight: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Transport {
    /// flowtrace-telemetry's own OTLP exporter.
    Flowtrace,
    /// opentelemetry-otlp's `SpanExporter` behind flowtrace's processor.
    OpentelemetryOtlp,
}

impl std::fmt::Display for Setup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let transport = match self.transport {
            Transport::Flowtrace => "flowtrace",
            Transport::OpentelemetryOtlp => "opentelemetry-otlp",
        };
        let target = if self.direct { "receiver" } else { "rotel" };
        let records = if self.start_records {
            ""
        } else {
            ", no start records"
        };
        let in_flight = if self.one_in_flight {
            ", 1 export in flight"
        } else {
            ""
        };
        write!(
            f,
            "{} {transport} → {target}{records}{in_flight}",
            self.protocol
        )
    }
}

const SETUPS: [Setup; 9] = [
    Setup {
        protocol: Protocol::Grpc,
        transport: Transport::Flowtrace,
        direct: false,
        start_records: true,
        one_in_flight: false,
    },
    Setup {
        protocol: Protocol::Grpc,
        transport: Transport::OpentelemetryOtlp,
        direct: false,
        start_records: true,
        one_in_flight: false,
    },
    Setup {
        protocol: Protocol::Grpc,
        transport: Transport::Flowtrace,
        direct: true,
        start_records: true,
        one_in_flight: false,
    },
    Setup {
        protocol: Protocol::HttpProtobuf,
        transport: Transport::Flowtrace,
        direct: false,
        start_records: true,
        one_in_flight: false,
    },
    Setup {
        protocol: Protocol::HttpProtobuf,
        transport: Transport::OpentelemetryOtlp,
        direct: false,
        start_records: true,
        one_in_flight: false,
    },
    Setup {
        protocol: Protocol::Grpc,
        transport: Transport::Flowtrace,
        direct: false,
        start_records: false,
        one_in_flight: false,
    },
    Setup {
        protocol: Protocol::HttpProtobuf,
        transport: Transport::Flowtrace,
        direct: false,
        start_records: false,
        one_in_flight: false,
    },
    Setup {
        protocol: Protocol::Grpc,
        transport: Transport::Flowtrace,
        direct: false,
        start_records: true,
        one_in_flight: true,
    },
    Setup {
        protocol: Protocol::HttpProtobuf,
        transport: Transport::Flowtrace,
        direct: false,
        start_records: true,
        one_in_flight: true,
    },
];

/// opentelemetry-otlp's exporter for `endpoint`, with the OTLP timeout the
/// shipped settings give flowtrace's own (10 s). Its gRPC channel task runs
/// on `rt`, as it would on an application's runtime.
fn opentelemetry_otlp(
    rt: &tokio::runtime::Runtime,
    protocol: Protocol,
    endpoint: &str,
) -> opentelemetry_otlp::SpanExporter {
    use opentelemetry_otlp::WithExportConfig as _;
    let _entered = rt.enter();
    let timeout = Duration::from_secs(10);
    match protocol {
        Protocol::Grpc => opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(endpoint)
            .with_timeout(timeout)
            .build(),
        _ => opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_endpoint(format!("{endpoint}/v1/traces"))
            .with_timeout(timeout)
            .build(),
    }
    .expect("opentelemetry-otlp exporter")
}

// ---- one step ------------------------------------------------------------------

struct Step {
    /// Target spans per second; `None`: as fast as one thread produces.
    rate: Option<u64>,
    produced: u64,
    seconds: f64,
    /// Spans the exporter had delivered when production stopped.
    exported_in_window: u64,
    exported: u64,
    dropped: u64,
    dropped_queue_full: u64,
    received: u64,
    /// The spans' start records (log records): delivered, lost, arrived.
    logs_exported: u64,
    logs_dropped: u64,
    logs_received: u64,
    drain: Duration,
    last_error: Option<String>,
}

impl Step {
    fn produced_per_second(&self) -> f64 {
        self.produced as f64 / self.seconds
    }

    fn delivered_per_second(&self) -> f64 {
        self.exported_in_window as f64 / self.seconds
    }
}

/// Produces `#[traced]` task spans at `rate` for `window` in one run.
async fn produce(rate: Option<u64>, window: Duration) -> u64 {
    let start = Instant::now();
    let mut produced = 0u64;
    loop {
        let elapsed = start.elapsed();
        if elapsed >= window {
            return produced;
        }
        let due = match rate {
            Some(rate) => (rate as f64 * elapsed.as_secs_f64()) as u64,
            None => produced + 256,
        };
        if produced >= due {
            tokio::time::sleep(Duration::from_micros(500)).await;
            continue;
        }
        for _ in 0..(due - produced).min(256) {
            std::hint::black_box(unit(produced).await);
            produced += 1;
        }
    }
}

fn step(
    setup: Setup,
    rotel: &Rotel,
    receiver: &Receiver,
    bsp: &[(String, String)],
    rate: Option<u64>,
    window: Duration,
) -> Step {
    let protocol = setup.protocol;
    let endpoint = format!(
        "http://{}",
        match (setup.direct, protocol) {
            (true, _) => receiver.addr,
            (false, Protocol::Grpc) => rotel.grpc,
            (false, _) => rotel.http,
        }
    );
    // opentelemetry-otlp's gRPC channel task lives here, as in an application.
    let app_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let one = setup
        .one_in_flight
        .then(|| ("OTEL_BSP_MAX_CONCURRENT_EXPORTS".to_owned(), "1".to_owned()));
    let builder = flowtrace_telemetry::builder()
        .env_vars(bsp.iter().cloned().chain(one))
        .install_tracing_subscriber(false)
        .strict(true);
    let builder = match setup.transport {
        Transport::Flowtrace => builder
            .exporter(ExporterKind::Otlp)
            .otlp_endpoint(endpoint)
            .otlp_protocol(protocol),
        Transport::OpentelemetryOtlp => {
            builder.span_exporter(opentelemetry_otlp(&app_runtime, protocol, &endpoint))
        }
    };
    let telemetry = builder.init().expect("telemetry: init");
    flowtrace::running::set_start_records(setup.start_records);
    let received_before = receiver.count();
    let logs_before = receiver.log_count();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let start = Instant::now();
    let produced = runtime
        .block_on(
            flowtrace::with_runcontext()
                .name("throughput")
                .run(produce(rate, window)),
        )
        .into_output()
        + 1; // the run's own span
    let seconds = start.elapsed().as_secs_f64();
    let exported_in_window = telemetry.stats().exported;
    let drained = Instant::now();
    let _ = telemetry.shutdown();
    let drain = drained.elapsed();
    let stats = telemetry.stats();
    let log_stats = telemetry.log_stats();
    let received = receiver.settle(received_before + stats.exported) - received_before;
    let logs_received = receiver.log_count() - logs_before;
    drop(telemetry);
    app_runtime.shutdown_background();
    Step {
        rate,
        produced,
        seconds,
        exported_in_window,
        exported: stats.exported,
        dropped: stats.dropped(),
        dropped_queue_full: stats.dropped_queue_full,
        received,
        logs_exported: log_stats.exported,
        logs_dropped: log_stats.dropped(),
        logs_received,
        drain,
        last_error: stats.last_error,
    }
}

fn rate_label(rate: Option<u64>) -> String {
    rate.map_or_else(|| "as fast as possible".to_owned(), |r| format!("{r}/s"))
}

fn print(setup: Setup, s: &Step) {
    println!(
        "{setup:>40} {:>20}: produced {:>8} ({:>7.0}/s), delivered in window {:>7.0}/s, \
         exported {:>8}, dropped {:>7}, received {:>8}, log records exported {:>8} dropped {:>7}, drain {:>5} ms{}",
        rate_label(s.rate),
        s.produced,
        s.produced_per_second(),
        s.delivered_per_second(),
        s.exported,
        s.dropped,
        s.received,
        s.logs_exported,
        s.logs_dropped,
        s.drain.as_millis(),
        s.last_error
            .as_deref()
            .map_or(String::new(), |e| format!(", last error: {e}"))
    );
}

/// The ladder, the bisection and the unpaced step for one set-up.
fn measure(
    setup: Setup,
    rotel: &Rotel,
    receiver: &Receiver,
    bsp: &[(String, String)],
    window: Duration,
) -> Vec<Step> {
    let mut steps = Vec::new();
    let run = |rate: Option<u64>, steps: &mut Vec<Step>| {
        let s = step(setup, rotel, receiver, bsp, rate, window);
        print(setup, &s);
        let clean = s.dropped == 0;
        steps.push(s);
        clean
    };
    let mut good = 0u64;
    let mut bad = None;
    for rate in LADDER {
        if run(Some(rate), &mut steps) {
            good = rate;
        } else {
            bad = Some(rate);
            break;
        }
    }
    if let Some(mut high) = bad {
        for _ in 0..BISECTIONS {
            let mid = (good + high) / 2;
            if mid <= good || mid >= high {
                break;
            }
            if run(Some(mid), &mut steps) {
                good = mid;
            } else {
                high = mid;
            }
        }
    }
    run(None, &mut steps);
    steps
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo bench -- --list` and test discovery
    }
    let window = Duration::from_secs(
        std::env::var("FLOWTRACE_BENCH_STEP_SECS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(3),
    );
    let bsp: Vec<(String, String)> = std::env::var("FLOWTRACE_BENCH_BSP")
        .unwrap_or_default()
        .split(',')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let receiver = Receiver::start();
    let rotel = Rotel::start(&receiver);
    let mut results = Vec::new();
    let only = std::env::var("FLOWTRACE_BENCH_ONLY").unwrap_or_default();
    // `a|b`: the set-ups whose name contains `a` or `b`.
    let selected = |name: &str| only.is_empty() || only.split('|').any(|part| name.contains(part));
    // The receiving side alone first: a minimal sender's requests.
    let mut minimal = Vec::new();
    for (protocol, direct) in [
        (Protocol::Grpc, false),
        (Protocol::Grpc, true),
        (Protocol::HttpProtobuf, false),
    ] {
        let target = if direct { "receiver" } else { "rotel" };
        let name = format!("{protocol} minimal sender → {target}");
        if !selected(&name) {
            continue;
        }
        // gRPC: 1 or 4 calls on one connection, then 4 on 4 connections.
        let shapes: &[(usize, usize)] = match protocol {
            Protocol::Grpc => &[(1, 1), (4, 1), (4, 4)],
            _ => &[(1, 1), (4, 4)],
        };
        for &(in_flight, connections) in shapes {
            let before = receiver.count();
            let sent = match (protocol, direct) {
                (Protocol::Grpc, true) => raw::grpc(receiver.addr, in_flight, connections, window),
                (Protocol::Grpc, false) => raw::grpc(rotel.grpc, in_flight, connections, window),
                _ => raw::http(rotel.http, in_flight, window),
            };
            let received = receiver.settle(before + sent.acknowledged) - before;
            println!(
                "{name:>40} {in_flight} in flight on {connections} connection(s): acknowledged {:>9} ({:>7.0}/s), received {received}",
                sent.acknowledged,
                sent.per_second()
            );
            minimal.push((name.clone(), sent, received));
        }
    }
    for setup in SETUPS {
        if !selected(&setup.to_string()) {
            continue;
        }
        let steps = measure(setup, &rotel, &receiver, &bsp, window);
        results.push((setup, steps));
    }
    drop(rotel);
    drop(receiver);
    if let Err(err) = write(&results, &minimal, &bsp, window) {
        eprintln!("export_throughput: report not written: {err}");
    }
}

fn write(
    results: &[(Setup, Vec<Step>)],
    minimal: &[(String, raw::Sent, u64)],
    bsp: &[(String, String)],
    window: Duration,
) -> std::io::Result<()> {
    let settings = if bsp.is_empty() {
        "shipped defaults (queue 2048, batch 512, delay 5 s, 2 exports in flight, export timeout 30 s / OTLP 10 s; start records on, log records with the `OTEL_BLRP_*` defaults)"
            .to_owned()
    } else {
        bsp.iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut md = String::new();
    let _ = writeln!(
        md,
        "Batch settings: {settings}. Each step produces for {} s on one thread, then shuts the guard down (which exports what is queued).\n",
        window.as_secs()
    );
    let _ = writeln!(
        md,
        "| set-up | highest rate with 0 drops (tried) | delivered at saturation | first dropping rate: dropped / produced |\n|---|---:|---:|---|"
    );
    for (protocol, steps) in results {
        let best = steps
            .iter()
            .filter(|s| s.rate.is_some() && s.dropped == 0)
            .filter_map(|s| s.rate)
            .max();
        let saturated = steps.iter().find(|s| s.rate.is_none());
        let first_bad = steps
            .iter()
            .filter(|s| s.rate.is_some() && s.dropped > 0)
            .min_by_key(|s| s.rate);
        let _ = writeln!(
            md,
            "| {protocol} | {} | {} | {} |",
            best.map_or("none".to_owned(), |r| format!("{r} spans/s")),
            saturated.map_or("—".to_owned(), |s| format!(
                "{:.0} spans/s ({} dropped of {})",
                s.delivered_per_second(),
                s.dropped,
                s.produced
            )),
            first_bad.map_or("none up to the ladder's top".to_owned(), |s| format!(
                "{}: {} / {} ({:.1} %)",
                rate_label(s.rate),
                s.dropped,
                s.produced,
                100.0 * s.dropped as f64 / s.produced as f64
            )),
        );
    }
    let _ = writeln!(
        md,
        "\n| set-up | target rate | produced / s | delivered / s during the window | exported | dropped (queue full) | arrived at the receiver | start records exported / dropped | shutdown drain |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for (protocol, steps) in results {
        for s in steps {
            let _ = writeln!(
                md,
                "| {protocol} | {} | {:.0} | {:.0} | {} | {} ({}) | {} | {} / {} | {} ms |",
                rate_label(s.rate),
                s.produced_per_second(),
                s.delivered_per_second(),
                s.exported,
                s.dropped,
                s.dropped_queue_full,
                s.received,
                s.logs_exported,
                s.logs_dropped,
                s.drain.as_millis()
            );
        }
    }
    if !minimal.is_empty() {
        let _ = writeln!(
            md,
            "\nThe receiving side alone: a minimal sender (one request of {} spans encoded once, sent again and again for {} s with a fixed number in flight; no processor, no conversion):\n\n| set-up | in flight | connections | spans/s acknowledged | arrived at the receiver |\n|---|---:|---:|---:|---:|",
            raw::spans_per_request(),
            window.as_secs()
        );
        for (name, sent, received) in minimal {
            let _ = writeln!(
                md,
                "| {name} | {} | {} | {:.0} | {received} |",
                sent.in_flight,
                sent.connections,
                sent.per_second()
            );
        }
    }
    let json: Vec<_> = results
        .iter()
        .flat_map(|(protocol, steps)| {
            steps.iter().map(move |s| {
                json!({
                    "protocol": protocol.protocol.to_string(),
                    "setup": protocol.to_string(),
                    "rate": s.rate,
                    "produced": s.produced,
                    "seconds": s.seconds,
                    "exported_in_window": s.exported_in_window,
                    "exported": s.exported,
                    "dropped": s.dropped,
                    "dropped_queue_full": s.dropped_queue_full,
                    "received": s.received,
                    "log_records_exported": s.logs_exported,
                    "log_records_dropped": s.logs_dropped,
                    "log_records_received": s.logs_received,
                    "drain_ms": s.drain.as_millis() as u64,
                    "last_error": s.last_error,
                })
            })
        })
        .collect();
    let dir: PathBuf = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .map_or_else(|| PathBuf::from("target"), Path::to_path_buf)
        .join("bench");
    std::fs::create_dir_all(&dir)?;
    // Other settings than the shipped ones do not overwrite the shipped
    // results that scripts/bench puts into BENCHMARKS.md.
    let name = if bsp.is_empty() {
        "export_throughput"
    } else {
        "export_throughput-custom"
    };
    std::fs::write(dir.join(format!("{name}.md")), &md)?;
    std::fs::write(
        dir.join(format!("{name}.json")),
        serde_json::to_string_pretty(&json).unwrap_or_default(),
    )?;
    println!(
        "\n{md}\n(written to {})",
        dir.join(format!("{name}.md")).display()
    );
    Ok(())
}
