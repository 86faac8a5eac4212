//! Test harness shared by the integration tests (`mod support;`): a real OTLP
//! collector, a receiver behind it, and readers for what flowtrace writes.
//!
//! - [`tools`]: the tools `scripts/setup` installs, one function each; a
//!   missing one stops the test at once, naming `scripts/setup`.
//! - [`in_memory`]: the SDK's in-memory exporter as the global provider, for
//!   the tests that read spans without a collector.
//! - [`Collector`]: `rotel-agent` on free loopback ports, forwarding to a
//!   [`Receiver`] that the test reads ([`Receiver::wait_for_trace`] and co.).
//! - [`Span`]: one flat shape for spans from the receiver and from the
//!   OTLP/JSON trace file ([`read_otlp_json_file`]).
//! - [`run_python_parent`]: a Python OpenTelemetry SDK parent for a child
//!   process's trace.
//! - [`run_bounded`]: run a program, killed if it takes too long;
//!   [`example`]: the path of one of the examples or of the child programs
//!   in `tests/children/`, built when missing.
//! - [`Proxy`]: a TCP proxy that can stall or delay, for a slow collector.
//! - [`fake_otlp`]: scripted OTLP endpoints (HTTP and gRPC) for retry rules.
//! - [`tls_proxy`]: TLS in front of the collector, for `https` endpoints.
//! - [`alloc`]: the counting allocator a test or bench binary may install.
//! - [`phoenix`]: Arize Phoenix on free loopback ports, read back over its
//!   REST API.
//!
//! Every wait has a deadline; only 127.0.0.1 is used.

// Each test binary uses its own part of the harness.
#![allow(dead_code, unused_imports)]

pub mod alloc;
pub mod collector;
pub mod fake_otlp;
pub mod in_memory;
pub mod metrics;
pub mod otlp_json;
pub mod phoenix;
pub mod process;
pub mod proxy;
pub mod python;
pub mod receiver;
pub mod span;
pub mod tls_proxy;
pub mod tools;

use std::time::Duration;

pub use collector::Collector;
pub use otlp_json::{parse_otlp_json_line, read_otlp_json_file, wait_for_file};
pub use process::{Output, example, example_of, run_bounded};
pub use proxy::{Mode, Proxy};
pub use python::{PythonParent, run_python_parent};
pub use receiver::{LogRecord, Receiver};
pub use span::{Event, Link, Span, SpanKind, StatusCode, span_named, spans_of_trace, summary};

/// A wait long enough for a loaded CI machine, short enough to fail fast.
pub const WAIT: Duration = Duration::from_secs(20);
