//! What the `flowtrace view` tests share: the built binary with a clean
//! environment, the examples, the fixtures and expected-text comparison.

#![allow(dead_code)]

#[path = "../../../tests/support/process.rs"]
pub mod process;
#[path = "../../../tests/support/tools.rs"]
pub mod tools;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

pub use process::{Output, run_bounded};

pub const RUN_TIMEOUT: Duration = Duration::from_secs(120);

/// `flowtrace` with none of the variables that change its output.
pub fn flowtrace() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_flowtrace"));
    for var in ["NO_COLOR", "COLUMNS", "CLICOLOR", "CLICOLOR_FORCE"] {
        cmd.env_remove(var);
    }
    cmd
}

/// Runs `flowtrace view ARGS...` to its end.
pub fn view(args: &[&str]) -> Output {
    let mut cmd = flowtrace();
    cmd.arg("view").args(args);
    run_bounded(&mut cmd, RUN_TIMEOUT)
}

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/view")
        .join(name)
}

/// A fresh directory under the target dir.
pub fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("view")
        .join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// Compares `actual` with the expected-text fixture `name`;
/// `FLOWTRACE_BLESS=1` rewrites the fixture instead.
pub fn assert_text(name: &str, actual: &str) {
    let path = fixture(name);
    if std::env::var_os("FLOWTRACE_BLESS").is_some() {
        std::fs::write(&path, actual).expect("writing the fixture");
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (FLOWTRACE_BLESS=1 writes it)", path.display()));
    assert!(
        expected == actual,
        "output differs from {}\n--- expected ---\n{expected}\n--- actual ---\n{actual}",
        path.display()
    );
}

pub use process::example;

/// Runs an example with its spans going to `dir/traces.jsonl` (the
/// OpenTelemetry environment cleared) and returns its stdout.
pub fn run_example(name: &str, dir: &Path) -> String {
    let mut cmd = Command::new(example(name));
    for (key, _) in std::env::vars() {
        if key.starts_with("OTEL_")
            || key.starts_with("FLOWTRACE_")
            || matches!(key.as_str(), "TRACEPARENT" | "TRACESTATE" | "BAGGAGE")
        {
            cmd.env_remove(key);
        }
    }
    cmd.current_dir(dir)
        .env("FLOWTRACE_TRACE_FILE", "traces.jsonl")
        .env("OTEL_BSP_SCHEDULE_DELAY", "50");
    run_bounded(&mut cmd, RUN_TIMEOUT)
        .assert_success(name)
        .stdout
        .clone()
}

/// The text with what changes from run to run masked: ids, durations, the
/// bars and axis, the critical-path marks and the column padding.
pub fn structure(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let mut words: Vec<String> = Vec::new();
        for word in line.split_whitespace() {
            let w = word.trim_matches(|c| c == '(' || c == ')' || c == ',');
            let hex = w.len() >= 16 && w.chars().all(|c| c.is_ascii_hexdigit());
            let bar = w.chars().all(|c| c == '█' || c == '▏');
            let number = w.parse::<f64>().is_ok();
            if bar || word == "*" {
                continue;
            }
            words.push(if hex {
                "<id>".to_owned()
            } else if number {
                "<n>".to_owned()
            } else {
                word.to_owned()
            });
        }
        // A duration is a number and its unit; drop the axis labels with them.
        let joined = words
            .join(" ")
            .replace("<n> µs", "<d>")
            .replace("<n> ms", "<d>")
            .replace("<n> s", "<d>");
        out.push_str(&joined);
        out.push('\n');
    }
    out
}

/// Opens `page` from `file://` in a fresh headless Chromium, runs `steps`
/// (see chromium.mjs) and returns what the driver reports: `results` (one
/// per step), `requests`, `exceptions`, `consoleErrors`, `readyMs`.
pub fn chromium(page: &Path, steps: serde_json::Value, size: (u32, u32)) -> serde_json::Value {
    let (chromium, node) = (tools::chromium(), tools::node());
    let dir = scratch(&format!(
        "chromium-{}",
        page.file_stem().and_then(|s| s.to_str()).unwrap_or("page")
    ));
    let config = dir.join("config.json");
    let url = format!(
        "file://{}",
        page.canonicalize().expect("the page exists").display()
    );
    std::fs::write(
        &config,
        serde_json::json!({
            "chromium": chromium,
            "userDataDir": dir.join("profile"),
            "url": url,
            "width": size.0,
            "height": size.1,
            "timeoutMs": 120_000,
            "steps": steps,
        })
        .to_string(),
    )
    .unwrap();
    let driver = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/view_common/chromium.mjs");
    let mut cmd = Command::new(node);
    cmd.arg(driver).arg(&config);
    let out = run_bounded(&mut cmd, Duration::from_secs(180));
    let report: serde_json::Value = serde_json::from_str(out.stdout.trim())
        .unwrap_or_else(|e| panic!("the driver's report: {e}\n{}\n{}", out.stdout, out.stderr));
    assert!(report.get("fatal").is_none(), "chromium: {report:#}");
    report
}
