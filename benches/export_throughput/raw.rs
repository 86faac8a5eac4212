//! A minimal OTLP sender, to tell a collector's limit from the exporter's:
//! one request of [`spans_per_request`] spans shaped like flowtrace's task
//! spans is encoded once, then sent again and again for the window with a
//! fixed number of requests in flight, and what arrives at the counting
//! receiver is counted. No batch processor, no span conversion, no
//! retries: what it delivers is what the receiving side takes.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, InstrumentationScope, KeyValue, any_value::Value,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};
use prost::Message as _;

/// Spans per request: the shipped batch size, or
/// `FLOWTRACE_BENCH_RAW_SPANS`.
pub fn spans_per_request() -> usize {
    std::env::var("FLOWTRACE_BENCH_RAW_SPANS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(512)
}

/// What one run of the sender did.
pub struct Sent {
    pub in_flight: usize,
    /// Connections the requests were spread over.
    pub connections: usize,
    /// Requests answered with success, times [`spans_per_request`].
    pub acknowledged: u64,
    pub seconds: f64,
}

impl Sent {
    pub fn per_second(&self) -> f64 {
        self.acknowledged as f64 / self.seconds
    }
}

fn text(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue {
            value: Some(Value::StringValue(value.to_owned())),
        }),
        ..KeyValue::default()
    }
}

/// One request: a resource, flowtrace's scope, [`spans_per_request`] task
/// spans of one trace with flowtrace's four attributes.
pub fn request() -> ExportTraceServiceRequest {
    let start = 1_700_000_000_000_000_000u64;
    let spans = (0..spans_per_request() as u64)
        .map(|i| Span {
            trace_id: vec![7; 16],
            span_id: (i + 2).to_be_bytes().to_vec(),
            parent_span_id: 1u64.to_be_bytes().to_vec(),
            name: "unit".to_owned(),
            kind: 1,
            start_time_unix_nano: start + i * 1_000,
            end_time_unix_nano: start + i * 1_000 + 500,
            attributes: vec![
                text("flowtrace.task.name", "unit"),
                text("code.function.name", "export_throughput::unit"),
                text("flowtrace.run.id", "0195f3a2-7c4e-7d31-9a0b-5c6d7e8f9a0b"),
                text("flowtrace.run.name", "throughput"),
            ],
            status: Some(Status::default()),
            flags: 0x101,
            ..Span::default()
        })
        .collect();
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![text("service.name", "export_throughput")],
                ..Resource::default()
            }),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: "flowtrace".to_owned(),
                    ..InstrumentationScope::default()
                }),
                spans,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
}

/// OTLP/gRPC: `in_flight` calls at a time, spread over `connections`
/// tonic channels (HTTP/2 streams on each connection), for `window`.
pub fn grpc(addr: SocketAddr, in_flight: usize, connections: usize, window: Duration) -> Sent {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("raw sender: runtime");
    let request = request();
    let acknowledged = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    runtime.block_on(async {
        let channels: Vec<_> = (0..connections.max(1))
            .map(|_| {
                tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
                    .expect("raw sender: endpoint")
                    .connect_lazy()
            })
            .collect();
        let mut calls = Vec::new();
        for i in 0..in_flight {
            let client = TraceServiceClient::new(channels[i % channels.len()].clone());
            let request = request.clone();
            let acknowledged = acknowledged.clone();
            calls.push(tokio::spawn(async move {
                let mut client = client;
                while started.elapsed() < window {
                    // The message is cloned, not rebuilt: tonic encodes it.
                    if client.export(request.clone()).await.is_ok() {
                        acknowledged.fetch_add(spans_per_request() as u64, Ordering::Relaxed);
                    }
                }
            }));
        }
        for call in calls {
            let _ = call.await;
        }
    });
    Sent {
        in_flight,
        connections: connections.max(1),
        acknowledged: acknowledged.load(Ordering::Relaxed),
        seconds: started.elapsed().as_secs_f64(),
    }
}

/// OTLP/HTTP protobuf: `in_flight` keep-alive connections, each a thread
/// posting the encoded body and reading the answer, for `window`.
pub fn http(addr: SocketAddr, in_flight: usize, window: Duration) -> Sent {
    let body = request().encode_to_vec();
    let head = format!(
        "POST /v1/traces HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/x-protobuf\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let mut message = head.into_bytes();
    message.extend_from_slice(&body);
    let message = Arc::new(message);
    let acknowledged = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let threads: Vec<_> = (0..in_flight)
        .map(|_| {
            let message = message.clone();
            let acknowledged = acknowledged.clone();
            std::thread::spawn(move || {
                let stream = TcpStream::connect(addr).expect("raw sender: connect");
                let _ = stream.set_nodelay(true);
                let mut reader = BufReader::new(stream.try_clone().expect("raw sender: clone"));
                let mut writer = stream;
                while started.elapsed() < window {
                    if writer.write_all(&message).is_err() {
                        return;
                    }
                    match answer(&mut reader) {
                        Some(status) if (200..300).contains(&status) => {
                            acknowledged.fetch_add(spans_per_request() as u64, Ordering::Relaxed);
                        }
                        Some(_) => {}
                        None => return,
                    }
                }
            })
        })
        .collect();
    for thread in threads {
        let _ = thread.join();
    }
    Sent {
        in_flight,
        connections: in_flight,
        acknowledged: acknowledged.load(Ordering::Relaxed),
        seconds: started.elapsed().as_secs_f64(),
    }
}

/// Reads one HTTP/1.1 response (status line, headers, a `Content-Length`
/// body); its status, or `None` when the connection broke.
fn answer(reader: &mut BufReader<TcpStream>) -> Option<u16> {
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let status = line.split_whitespace().nth(1)?.parse().ok()?;
    let mut length = 0usize;
    let mut chunked = false;
    loop {
        line.clear();
        reader.read_line(&mut line).ok()?;
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().ok()?;
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = value.trim().eq_ignore_ascii_case("chunked");
            }
        }
    }
    if !chunked {
        let mut body = vec![0; length];
        reader.read_exact(&mut body).ok()?;
        return Some(status);
    }
    loop {
        line.clear();
        reader.read_line(&mut line).ok()?;
        let size = usize::from_str_radix(line.trim_end().split(';').next()?, 16).ok()?;
        // The chunk and its CRLF (the last, empty chunk: the final CRLF).
        let mut chunk = vec![0; size + 2];
        reader.read_exact(&mut chunk).ok()?;
        if size == 0 {
            return Some(status);
        }
    }
}
