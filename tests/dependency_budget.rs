//! What a library that only annotates its tasks compiles: `flowtrace`'s
//! normal dependencies, counted the way a user would
//! (`cargo tree -e normal -p flowtrace --prefix none | sort -u`), stay within
//! the budget and hold no transport. The OTLP stack lives in
//! flowtrace-telemetry, which only applications add.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

/// Lines of the count above with default features.
const BUDGET: usize = 55;

/// Crates of a network stack: none of them with default features, and
/// none of the OTLP transport ones whatever `flowtrace`'s own features ask.
const TRANSPORT: &[&str] = &[
    "tonic",
    "tonic-types",
    "h2",
    "rustls",
    "ring",
    "prost",
    "opentelemetry-proto",
    "opentelemetry-otlp",
    "opentelemetry-appender-tracing",
];
/// The HTTP crates the `http-server` / `http-client` features bring in.
const HTTP: &[&str] = &["hyper", "axum", "reqwest"];

/// `cargo tree -e normal -p flowtrace --prefix none` with `features`, as
/// sorted unique lines.
fn tree(features: &[&str]) -> BTreeSet<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let output = Command::new(cargo)
        .args([
            "tree",
            "-e",
            "normal",
            "-p",
            "flowtrace",
            "--prefix",
            "none",
        ])
        .args(features)
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")))
        .output()
        .expect("run cargo tree");
    assert!(
        output.status.success(),
        "cargo tree failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .expect("cargo tree prints UTF-8")
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(str::to_owned)
        .collect()
}

/// The crate names among `lines` (`name vX.Y.Z (…)`).
fn names(lines: &BTreeSet<String>) -> BTreeSet<&str> {
    lines
        .iter()
        .filter_map(|line| line.split_whitespace().next())
        .collect()
}

#[test]
fn default_features_stay_within_the_budget_and_hold_no_network_stack() {
    let lines = tree(&[]);
    assert!(
        lines.len() <= BUDGET,
        "flowtrace has {} lines in `cargo tree -e normal -p flowtrace --prefix none | sort -u`, \
         over the budget of {BUDGET}:\n{}",
        lines.len(),
        lines.iter().cloned().collect::<Vec<_>>().join("\n")
    );
    let names = names(&lines);
    assert!(names.contains("opentelemetry_sdk") && names.contains("tokio"));
    for banned in TRANSPORT.iter().chain(HTTP) {
        assert!(
            !names.contains(banned),
            "{banned} is a normal dependency of flowtrace with default features"
        );
    }
}

#[test]
fn http_features_bring_no_otlp_transport() {
    let names_all = tree(&["--all-features"]);
    let names = names(&names_all);
    assert!(names.contains("reqwest") && names.contains("axum"));
    for banned in TRANSPORT {
        assert!(
            !names.contains(banned),
            "{banned} is a normal dependency of flowtrace with --all-features"
        );
    }
}
