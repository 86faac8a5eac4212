//! Arize Phoenix (`phoenix serve`, from `.tools/phoenix`, installed by
//! `scripts/setup`) on free loopback ports, with its SQLite database in a
//! directory of its own, and a small client for its REST API.
//!
//! What it takes here: spans over OTLP/HTTP protobuf at `/v1/traces` (it
//! answers 415 to OTLP/JSON); the project is the resource attribute
//! `openinference.project.name`. It answers an export before storing the
//! spans, so reads poll; and it drops a span whose attributes it cannot
//! store, logging "Span insertion failed" — [`Phoenix::assert_stored_all`]
//! looks for that line. Its gRPC receiver listens on every interface
//! whatever `PHOENIX_HOST` says; nothing here sends to it.

use std::fs;
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value as Json;

/// How long Phoenix may take to answer `/healthz` (20–30 s on an idle
/// machine).
const START: Duration = Duration::from_secs(180);

/// A running Phoenix; killed on drop.
pub struct Phoenix {
    child: Child,
    http: SocketAddr,
    dir: PathBuf,
}

impl Phoenix {
    /// Starts Phoenix and waits until `/healthz` answers.
    pub fn start() -> Phoenix {
        let phoenix = super::tools::phoenix();
        let dir = instance_dir();
        let [http, grpc] = free_ports();
        let log = fs::File::create(dir.join("phoenix.log")).expect("phoenix: create its log");
        let child = Command::new(&phoenix)
            .arg("serve")
            .env("PHOENIX_HOST", "127.0.0.1")
            .env("PHOENIX_PORT", http.port().to_string())
            .env("PHOENIX_GRPC_PORT", grpc.port().to_string())
            .env("PHOENIX_WORKING_DIR", dir.join("work"))
            .env("PHOENIX_TELEMETRY_ENABLED", "false")
            .env("PHOENIX_ALLOW_EXTERNAL_RESOURCES", "false")
            .env_remove("PHOENIX_SQL_DATABASE_URL")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("phoenix: log handle"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "phoenix: cannot run {} ({e}); run scripts/setup, which installs it into \
                     .tools/phoenix",
                    phoenix.display()
                )
            });
        let mut phoenix = Phoenix { child, http, dir };
        let deadline = Instant::now() + START;
        loop {
            if let Ok(Some(status)) = phoenix.child.try_wait() {
                panic!(
                    "phoenix exited ({status}) before answering /healthz:\n{}",
                    phoenix.log()
                );
            }
            if matches!(phoenix.get("/healthz"), Ok((200, _))) {
                return phoenix;
            }
            assert!(
                Instant::now() < deadline,
                "phoenix did not answer /healthz on {http} within {START:?}:\n{}",
                phoenix.log()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// `http://127.0.0.1:<port>`: the OTLP/HTTP endpoint and the REST API.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.http)
    }

    /// What Phoenix logged so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("phoenix.log")).unwrap_or_default()
    }

    /// Panics if Phoenix dropped a span it could not store.
    pub fn assert_stored_all(&self) {
        let log = self.log();
        assert!(
            !log.contains("Span insertion failed"),
            "phoenix dropped spans it could not store:\n{log}"
        );
    }

    /// `GET path`: the status and the body.
    pub fn get(&self, path: &str) -> std::io::Result<(u16, String)> {
        let mut stream = TcpStream::connect_timeout(&self.http, Duration::from_secs(5))?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: {}\r\nAccept: application/json\r\nConnection: close\r\n\r\n",
            self.http
        )?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw)?;
        let raw = String::from_utf8_lossy(&raw).into_owned();
        let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let chunked = head.lines().any(|l| {
            l.to_ascii_lowercase()
                .starts_with("transfer-encoding: chunked")
        });
        let body = if chunked {
            dechunk(body)
        } else {
            body.to_owned()
        };
        Ok((status, body))
    }

    /// `GET path` answered 200 with JSON.
    pub fn get_json(&self, path: &str) -> Json {
        match self.get(path) {
            Ok((200, body)) => serde_json::from_str(&body)
                .unwrap_or_else(|e| panic!("phoenix: GET {path}: not JSON ({e}): {body}")),
            Ok((status, body)) => panic!("phoenix: GET {path} answered {status}: {body}"),
            Err(e) => panic!("phoenix: GET {path}: {e}"),
        }
    }

    /// Every span of `project` Phoenix has stored (`GET
    /// /v1/projects/{project}/spans`, all pages).
    pub fn spans(&self, project: &str) -> Vec<Json> {
        let mut spans = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..100 {
            let mut path = format!("/v1/projects/{project}/spans?limit=1000");
            if let Some(cursor) = &cursor {
                path.push_str(&format!("&cursor={cursor}"));
            }
            let (status, body) = self
                .get(&path)
                .unwrap_or_else(|e| panic!("phoenix: GET {path}: {e}"));
            if status == 404 {
                return spans; // no span of the project stored yet
            }
            assert_eq!(status, 200, "phoenix: GET {path}: {body}");
            let page: Json = serde_json::from_str(&body).expect("phoenix: spans page is JSON");
            spans.extend(page["data"].as_array().cloned().unwrap_or_default());
            match page["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => return spans,
            }
        }
        spans
    }

    /// Polls until `project` holds at least `count` spans, then once more
    /// after a pause, so late spans are in too.
    pub fn wait_for_spans(&self, project: &str, count: usize, wait: Duration) -> Vec<Json> {
        let deadline = Instant::now() + wait;
        loop {
            let spans = self.spans(project);
            if spans.len() >= count {
                std::thread::sleep(Duration::from_millis(500));
                return self.spans(project);
            }
            assert!(
                Instant::now() < deadline,
                "phoenix stored {} of {count} spans of {project} within {wait:?}:\n{}",
                spans.len(),
                self.log()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

impl Drop for Phoenix {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = fs::remove_dir_all(self.dir.join("work"));
    }
}

/// The body of a chunked HTTP/1.1 response.
fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if size == 0 || rest.len() < size {
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].trim_start_matches("\r\n");
    }
    out
}

/// Two distinct free loopback ports (both held until both are chosen).
fn free_ports() -> [SocketAddr; 2] {
    let bind = || {
        TcpListener::bind("127.0.0.1:0")
            .unwrap_or_else(|e| panic!("phoenix: cannot bind 127.0.0.1:0: {e}"))
    };
    let (a, b) = (bind(), bind());
    [a.local_addr(), b.local_addr()].map(|addr| addr.expect("phoenix: local_addr"))
}

/// `target/tmp/phoenix-<pid>-<n>`: the log and database of one instance.
fn instance_dir() -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let dir =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("phoenix-{}-{n}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("phoenix: create {}: {e}", dir.display()));
    dir
}
