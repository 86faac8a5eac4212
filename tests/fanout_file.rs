//! A 10⁵-item `flowtrace::map` (concurrency 64, `skip_all` tasks) under the
//! embedded default — nothing configured, spans to the local file — writes
//! every one of its 100 001 spans, with memory bounded by the queue: the
//! file exporter's queue makes a fan-out wait for the disk instead of
//! dropping (RELIABILITY.md, "The local file").

use std::time::Instant;

const ITEMS: u64 = 100_000;

#[flowtrace::traced(skip_all)]
async fn unit(x: u64) -> u64 {
    x
}

/// The process's peak resident set (`VmHWM`), in KiB.
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

fn spans_in(path: &std::path::Path) -> u64 {
    let text = std::fs::read_to_string(path).expect("the trace file");
    text.lines()
        .map(|line| {
            let request: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
            request["resourceSpans"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|r| r["scopeSpans"].as_array().into_iter().flatten())
                .map(|s| s["spans"].as_array().map_or(0, Vec::len) as u64)
                .sum::<u64>()
        })
        .sum()
}

#[test]
fn a_hundred_thousand_item_map_writes_every_span_to_the_default_file() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("fanout-file");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("traces-{}.jsonl", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let rss_before = peak_rss_kib();
    let telemetry = flowtrace_telemetry::builder()
        // Nothing from the environment: the shipped defaults apply.
        .env_vars(Vec::<(String, String)>::new())
        .trace_file(&path)
        .install_tracing_subscriber(false)
        .init()
        .expect("telemetry");
    assert_eq!(
        telemetry.trace_file(),
        Some(path.as_path()),
        "the default is the file"
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let started = Instant::now();
    let out = runtime
        .block_on(
            flowtrace::with_runcontext()
                .name("fanout")
                .run(flowtrace::map(0..ITEMS, unit, 64)),
        )
        .into_output();
    let ran = started.elapsed();
    telemetry.shutdown().expect("nothing lost at shutdown");
    let total = started.elapsed();
    let stats = telemetry.stats();
    let peak = peak_rss_kib();
    eprintln!(
        "fan-out of {ITEMS}: run {ran:?}, with shutdown {total:?}, {stats}, peak RSS {} MiB \
         ({} MiB before telemetry)",
        peak / 1024,
        rss_before / 1024
    );
    assert_eq!(out.len() as u64, ITEMS);
    assert_eq!(stats.dropped(), 0, "{stats}");
    assert_eq!(stats.exported, ITEMS + 1, "{stats}");
    assert_eq!(spans_in(&path), ITEMS + 1, "every span is in the file");
    // The queue holds 2 048 spans (~1 KiB each with their encoding): the
    // peak stays far below what 10⁵ spans held at once would take.
    assert!(
        peak < rss_before + 96 * 1024,
        "memory is bounded by the queue: peak {peak} KiB, {rss_before} KiB before"
    );
    let _ = std::fs::remove_file(&path);
}
