//! A real OTLP collector (rotel) in front of the test receiver, the way an
//! application meets one in production:
//!
//! ```text
//! code under test --OTLP gRPC or HTTP--> rotel-agent --OTLP gRPC--> Receiver
//! ```

use std::fs::{self, File};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::receiver::Receiver;

/// How long rotel gets to open its ports.
const STARTUP: Duration = Duration::from_secs(15);
/// New ports and a new process, when the old ports were taken in between.
const ATTEMPTS: usize = 3;

/// A running `rotel-agent` on free loopback ports, forwarding traces to its
/// own [`Receiver`] (reach it through `Deref`: `collector.wait_for_trace(..)`).
/// The process is killed and reaped on drop; if the test is panicking, the
/// collector's log tail is printed and its directory kept.
///
/// For fault tests it can be [`kill`](Collector::kill)ed and
/// [`restart`](Collector::restart)ed on the same ports (the receiver, and
/// everything it received, stays), or created not running
/// ([`Collector::stopped`]).
pub struct Collector {
    /// `None` while stopped.
    child: Option<Child>,
    grpc: SocketAddr,
    http: SocketAddr,
    dir: PathBuf,
    receiver: Receiver,
}

impl Collector {
    /// Starts rotel in front of a new [`Receiver`]; returns once both of its
    /// OTLP ports accept connections.
    pub fn start() -> Collector {
        let agent = super::tools::rotel_agent();
        let receiver = Receiver::start();
        let dir = instance_dir();
        let mut last_failure = String::new();
        for attempt in 1..=ATTEMPTS {
            let [grpc, http] = free_ports();
            let mut child = spawn(&agent, &dir, grpc, http, &receiver);
            match wait_ready(&mut child, grpc, http) {
                Ok(()) => {
                    return Collector {
                        child: Some(child),
                        grpc,
                        http,
                        dir,
                        receiver,
                    };
                }
                Err(why) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    last_failure = format!(
                        "attempt {attempt}: {why}\n--- {} ---\n{}",
                        dir.display(),
                        read_log(&dir)
                    );
                    // Only a lost race for a port is worth another try.
                    if !last_failure.contains("in use") {
                        break;
                    }
                }
            }
        }
        panic!(
            "collector: rotel-agent ({}) did not start on 127.0.0.1; to debug, run it by hand with \
             `start --help`, or re-run scripts/setup if the binary is broken.\n{last_failure}",
            agent.display()
        );
    }

    /// A collector whose ports are chosen but not yet served: exporters see
    /// "connection refused" until [`restart`](Collector::restart).
    pub fn stopped() -> Collector {
        let [grpc, http] = free_ports();
        Collector {
            child: None,
            grpc,
            http,
            dir: instance_dir(),
            receiver: Receiver::start(),
        }
    }

    /// Kills rotel (SIGKILL: no goodbye to open connections) and waits until
    /// its ports refuse connections. What it received was forwarded within
    /// milliseconds; the receiver keeps it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let deadline = Instant::now() + STARTUP;
        while [self.grpc, self.http]
            .iter()
            .any(|addr| TcpStream::connect_timeout(addr, Duration::from_millis(100)).is_ok())
        {
            assert!(
                Instant::now() < deadline,
                "collector: ports still open after kill"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts rotel again on the same ports (killing it first if it runs);
    /// returns once both ports accept connections.
    pub fn restart(&mut self) {
        let agent = super::tools::rotel_agent();
        self.kill();
        let mut last = String::new();
        // The old process's sockets may linger a moment: a few tries.
        for attempt in 1..=ATTEMPTS {
            let mut child = spawn(&agent, &self.dir, self.grpc, self.http, &self.receiver);
            match wait_ready(&mut child, self.grpc, self.http) {
                Ok(()) => {
                    self.child = Some(child);
                    return;
                }
                Err(why) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    last = format!("attempt {attempt}: {why}\n{}", read_log(&self.dir));
                    std::thread::sleep(Duration::from_millis(200));
                }
            }
        }
        panic!(
            "collector: restart on {} / {} failed:\n{last}",
            self.grpc, self.http
        );
    }

    /// Whether rotel runs now.
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// The gRPC port's address (for a proxy in front of it).
    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc
    }

    /// The HTTP port's address.
    pub fn http_addr(&self) -> SocketAddr {
        self.http
    }

    /// `http://127.0.0.1:<port>`: rotel's OTLP/gRPC receiver.
    /// flowtrace telemetry installed for this test process, exporting over
    /// OTLP gRPC to this collector in strict mode, with a 50 ms batch delay
    /// plus `env` (settings in the `OTEL_*` form).
    pub fn grpc_telemetry(
        &self,
        service: &str,
        env: &[(&str, &str)],
    ) -> flowtrace_telemetry::Telemetry {
        use flowtrace_telemetry::{ExporterKind, Protocol};
        let mut vars = vec![("OTEL_BSP_SCHEDULE_DELAY".to_owned(), "50".to_owned())];
        vars.extend(env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        flowtrace_telemetry::builder()
            .env_vars(vars)
            .exporter(ExporterKind::Otlp)
            .otlp_protocol(Protocol::Grpc)
            .otlp_endpoint(self.grpc_endpoint())
            .service_name(service)
            .strict(true)
            .init()
            .expect("telemetry to the test collector")
    }

    pub fn grpc_endpoint(&self) -> String {
        format!("http://{}", self.grpc)
    }

    /// `http://127.0.0.1:<port>`: rotel's OTLP/HTTP receiver, the base an
    /// exporter configured by `OTEL_EXPORTER_OTLP_ENDPOINT` appends
    /// `/v1/traces` to.
    pub fn http_endpoint(&self) -> String {
        format!("http://{}", self.http)
    }

    /// [`Collector::http_endpoint`] + `/v1/traces`: for a per-signal endpoint,
    /// which is used as-is.
    pub fn http_traces_endpoint(&self) -> String {
        format!("{}/v1/traces", self.http_endpoint())
    }

    pub fn receiver(&self) -> &Receiver {
        &self.receiver
    }

    /// What rotel wrote so far (it logs each batch it receives).
    pub fn log(&self) -> String {
        read_log(&self.dir)
    }
}

impl Deref for Collector {
    type Target = Receiver;

    fn deref(&self) -> &Receiver {
        &self.receiver
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            let log = read_log(&self.dir);
            let lines: Vec<&str> = log.lines().collect();
            let tail = lines[lines.len().saturating_sub(80)..].join("\n");
            eprintln!(
                "collector (gRPC {}, HTTP {}) log, last 80 lines; kept in {}:\n{tail}",
                self.grpc,
                self.http,
                self.dir.display()
            );
        } else {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

fn spawn(
    agent: &Path,
    dir: &Path,
    grpc: SocketAddr,
    http: SocketAddr,
    receiver: &Receiver,
) -> Child {
    let out = File::create(dir.join("rotel.out"))
        .unwrap_or_else(|e| panic!("collector: create {}: {e}", dir.display()));
    let err = out.try_clone().expect("collector: clone log file handle");
    let mut cmd = Command::new(agent);
    // rotel reads a ROTEL_* variable for each flag (ROTEL_DAEMON among them):
    // only the flags below may configure it.
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("ROTEL_") {
            cmd.env_remove(key);
        }
    }
    cmd.env("NO_COLOR", "1")
        .arg("start")
        .args(["--otlp-grpc-endpoint", &grpc.to_string()])
        .args(["--otlp-http-endpoint", &http.to_string()])
        .args(["--exporter", "otlp"])
        .args(["--otlp-exporter-endpoint", &receiver.endpoint()])
        .args(["--otlp-exporter-protocol", "grpc"])
        // Asked for, but rotel 0.0.1a15 gzips anyway (checked: both this
        // flag and the per-signal one are ignored); the receiver accepts gzip.
        .args(["--otlp-exporter-compression", "none"])
        // Forward within milliseconds instead of the default 200 ms batches.
        .args(["--traces-batch-timeout", "10ms"])
        .args(["--logs-batch-timeout", "10ms"])
        .args(["--metrics-batch-timeout", "10ms"])
        .args(["--otlp-exporter-retry-initial-backoff", "100ms"])
        .args(["--otlp-exporter-retry-max-backoff", "500ms"])
        .args(["--otlp-exporter-retry-max-elapsed-time", "10s"])
        // Not daemonized (no --daemon): stdout/stderr is the log. The pid and
        // log files default to shared paths in /tmp, so point them here.
        .arg("--pid-file")
        .arg(dir.join("rotel.pid"))
        .arg("--log-file")
        .arg(dir.join("rotel.log"))
        // One line per received batch in the log: tells "never sent" from
        // "not forwarded" when a test fails.
        .args(["--debug-log", "traces"])
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err);
    cmd.spawn()
        .unwrap_or_else(|e| panic!("collector: cannot run {}: {e}", agent.display()))
}

fn wait_ready(child: &mut Child, grpc: SocketAddr, http: SocketAddr) -> Result<(), String> {
    let deadline = Instant::now() + STARTUP;
    loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            return Err(format!("rotel-agent exited with {status} while starting"));
        }
        let up = |addr| TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok();
        if up(grpc) && up(http) {
            // Another process may hold a port we picked: rotel then exits
            // with "address in use" instead of serving it.
            std::thread::sleep(Duration::from_millis(50));
            return match child.try_wait().map_err(|e| e.to_string())? {
                Some(status) => Err(format!("rotel-agent exited with {status} while starting")),
                None => Ok(()),
            };
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "ports {grpc} and {http} did not accept connections within {STARTUP:?}"
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Two distinct ports the OS had free a moment ago. Both listeners are held
/// until both are chosen, so the two differ.
fn free_ports() -> [SocketAddr; 2] {
    let bind = || {
        TcpListener::bind("127.0.0.1:0")
            .unwrap_or_else(|e| panic!("collector: cannot bind 127.0.0.1:0: {e}"))
    };
    let (a, b) = (bind(), bind());
    [a.local_addr(), b.local_addr()].map(|addr| addr.expect("collector: local_addr"))
}

/// `target/tmp/collector-<pid>-<n>`: pid, log and output of one instance.
fn instance_dir() -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("collector-{}-{n}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("collector: create {}: {e}", dir.display()));
    dir
}

fn read_log(dir: &Path) -> String {
    let mut log = fs::read_to_string(dir.join("rotel.out")).unwrap_or_default();
    if let Ok(daemon_log) = fs::read_to_string(dir.join("rotel.log")) {
        log.push_str(&daemon_log);
    }
    log
}
