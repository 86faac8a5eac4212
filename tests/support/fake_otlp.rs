//! Scripted OTLP endpoints for the retry rules: each answers its requests
//! from a script (status, headers, partial success), then with success, and
//! records when each request came and with which headers. A real collector
//! cannot be told to answer 503 with `Retry-After`; these can.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message as _;
use tokio::sync::oneshot;

/// One request as the fake saw it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub at: Instant,
    /// Lowercase header (metadata) names and values.
    pub headers: Vec<(String, String)>,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// An HTTP answer: status, extra headers, body.
#[derive(Clone, Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Append the request's headers to the body, as some gateways do.
    pub echo: bool,
}

impl Reply {
    pub fn status(status: u16) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: Vec::new(),
            echo: false,
        }
    }

    /// Echoes the credentials it was sent in its body: `status` with the
    /// request's headers, one `name: value` line each.
    pub fn echoing(status: u16) -> Reply {
        Reply {
            echo: true,
            ..Reply::status(status)
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Reply {
        self.body = body.into();
        self
    }

    /// 200 with a protobuf partial success rejecting `n` spans.
    pub fn partial_success(n: i64) -> Reply {
        Reply::status(200).body(partial(n).encode_to_vec())
    }
}

fn partial(rejected: i64) -> ExportTraceServiceResponse {
    ExportTraceServiceResponse {
        partial_success: Some(ExportTracePartialSuccess {
            rejected_spans: rejected,
            error_message: "some spans were too old".into(),
        }),
    }
}

type Log = Arc<Mutex<Vec<Seen>>>;

/// An OTLP/HTTP endpoint (HTTP/1.1, keep-alive) on a free loopback port.
/// Its threads end with the process; each connection's thread ends when the
/// client closes it.
pub struct FakeHttp {
    addr: SocketAddr,
    seen: Log,
}

impl FakeHttp {
    pub fn start(script: impl IntoIterator<Item = Reply>) -> FakeHttp {
        let listener = TcpListener::bind("127.0.0.1:0").expect("fake http: bind");
        let addr = listener.local_addr().unwrap();
        let seen = Log::default();
        let script = Arc::new(Mutex::new(script.into_iter().collect::<VecDeque<_>>()));
        {
            let seen = seen.clone();
            thread::spawn(move || {
                for stream in listener.incoming().flatten() {
                    let (seen, script) = (seen.clone(), script.clone());
                    thread::spawn(move || serve(stream, &seen, &script));
                }
            });
        }
        FakeHttp { addr, seen }
    }

    /// `http://127.0.0.1:<port>` (the exporter appends `/v1/traces`).
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

fn serve(stream: TcpStream, seen: &Log, script: &Mutex<VecDeque<Reply>>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let mut writer = stream.try_clone().expect("fake http: clone");
    let mut reader = BufReader::new(stream);
    loop {
        let mut headers = Vec::new();
        let mut line = String::new();
        // Request line, then headers up to the blank line.
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        // The exporters' metrics are not what a script is about: accepted,
        // neither recorded nor answered from the script.
        let metrics = line.contains("/v1/metrics");
        loop {
            line.clear();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((k, v)) = header.split_once(':') {
                headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
            }
        }
        let length: usize = headers
            .iter()
            .find(|(k, _)| k == "content-length")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        if metrics {
            let _ = writer.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n");
            continue;
        }
        let echoed: String = headers.iter().map(|(k, v)| format!("{k}: {v}\n")).collect();
        seen.lock().unwrap().push(Seen {
            at: Instant::now(),
            headers,
        });
        let mut reply = script
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or_else(|| Reply::status(200));
        if reply.echo {
            reply.body.extend_from_slice(echoed.as_bytes());
        }
        let mut head = format!(
            "HTTP/1.1 {} X\r\ncontent-type: application/x-protobuf\r\ncontent-length: {}\r\n",
            reply.status,
            reply.body.len()
        );
        for (k, v) in &reply.headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        if writer.write_all(head.as_bytes()).is_err() || writer.write_all(&reply.body).is_err() {
            return;
        }
    }
}

/// A gRPC answer: a partial success count, or a status.
pub type GrpcReply = Result<i64, tonic::Status>;

struct Scripted {
    script: Mutex<VecDeque<GrpcReply>>,
    seen: Log,
}

#[tonic::async_trait]
impl TraceService for Scripted {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let headers = request
            .metadata()
            .iter()
            .filter_map(|kv| match kv {
                tonic::metadata::KeyAndValueRef::Ascii(k, v) => {
                    Some((k.to_string(), v.to_str().ok()?.to_owned()))
                }
                _ => None,
            })
            .collect();
        self.seen.lock().unwrap().push(Seen {
            at: Instant::now(),
            headers,
        });
        let reply = self.script.lock().unwrap().pop_front().unwrap_or(Ok(0));
        reply.map(|rejected| {
            tonic::Response::new(if rejected > 0 {
                partial(rejected)
            } else {
                ExportTraceServiceResponse::default()
            })
        })
    }
}

/// Accepts the exporters' metrics, which no script is about.
struct MetricsAccepted;

#[tonic::async_trait]
impl opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::MetricsService
    for MetricsAccepted
{
    async fn export(
        &self,
        _request: tonic::Request<
            opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest,
        >,
    ) -> Result<
        tonic::Response<
            opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceResponse,
        >,
        tonic::Status,
    > {
        Ok(tonic::Response::new(Default::default()))
    }
}

/// An OTLP/gRPC endpoint on a free loopback port; stops on drop.
pub struct FakeGrpc {
    addr: SocketAddr,
    seen: Log,
    stop: Option<oneshot::Sender<()>>,
}

impl FakeGrpc {
    pub fn start(script: impl IntoIterator<Item = GrpcReply>) -> FakeGrpc {
        let listener = TcpListener::bind("127.0.0.1:0").expect("fake grpc: bind");
        let addr = listener.local_addr().unwrap();
        listener.set_nonblocking(true).unwrap();
        let seen = Log::default();
        let service = Scripted {
            script: Mutex::new(script.into_iter().collect()),
            seen: seen.clone(),
        };
        let (stop, stopped) = oneshot::channel::<()>();
        thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                let incoming = tonic::transport::server::TcpIncoming::from(listener);
                let _ = tonic::transport::Server::builder()
                    .add_service(TraceServiceServer::new(service))
                    .add_service(
                        opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::MetricsServiceServer::new(
                            MetricsAccepted,
                        ),
                    )
                    .serve_with_incoming_shutdown(incoming, async {
                        let _ = stopped.await;
                    })
                    .await;
            });
        });
        FakeGrpc {
            addr,
            seen,
            stop: Some(stop),
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for FakeGrpc {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
