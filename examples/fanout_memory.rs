//! A run of 100 000 tasks, three levels deep (a `flowtrace::map` with a
//! concurrency limit, `flowtrace::spawn`, and an inner `map`), under the
//! embedded default exporter: prints its peak RSS, the bytes per task over
//! the process's size before the run, and what the exporter wrote, dropped
//! and reported.
//!
//! ```text
//! cargo run --release --example fanout_memory          # 1 000 top-level items: 10^5 tasks
//! cargo run --release --example fanout_memory -- 3000  # 3 × 10^5 tasks
//! ```

use std::time::Instant;

use flowtrace::{map, spawn, traced, with_runcontext};

/// Items at the top level (a `map`, 64 at a time), unless the first
/// argument says otherwise.
const TOP: usize = 1_000;
/// Tasks each top-level task spawns.
const SPAWNED: usize = 9;
/// Tasks each spawned task maps over (10 at a time).
const LEAVES: usize = 10;
/// The tasks of a run with `top` items: 1 000 + 9 000 + 90 000 for 1 000.
fn tasks(top: usize) -> usize {
    top + top * SPAWNED + top * SPAWNED * LEAVES
}

#[traced(skip_all)]
async fn leaf(i: usize) -> usize {
    tokio::task::yield_now().await;
    i
}

#[traced(skip_all)]
async fn spawned(i: usize) -> usize {
    map(0..LEAVES, leaf, LEAVES)
        .await
        .into_iter()
        .sum::<usize>()
        + i
}

#[traced(skip_all)]
async fn top_task(i: usize) -> usize {
    let handles: Vec<_> = (0..SPAWNED)
        .map(|j| spawn(spawned(i * SPAWNED + j)))
        .collect();
    let mut sum = 0;
    for handle in handles {
        sum += handle.await.unwrap_or(0);
    }
    sum
}

/// `VmHWM` / `VmRSS` of this process in KiB (Linux).
fn status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let top = match std::env::args().nth(1) {
        Some(arg) => arg
            .parse()
            .map_err(|_| format!("the argument is a number of top-level items, not {arg:?}"))?,
        None => TOP,
    };
    let total = tasks(top);
    let dir = std::env::temp_dir().join(format!("flowtrace-fanout-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let file = dir.join("traces.jsonl");
    let telemetry = flowtrace_telemetry::builder()
        .trace_file(&file)
        .log_file(dir.join("logs.jsonl"))
        .install_tracing_subscriber(false)
        .init()?;
    let before = status_kib("VmRSS:").unwrap_or(0);

    let started = Instant::now();
    let run = with_runcontext()
        .name("fanout")
        .run(map(0..top, top_task, 64))
        .await;
    let elapsed = started.elapsed();
    telemetry.shutdown().ok();
    let stats = telemetry.stats();
    let peak = status_kib("VmHWM:").unwrap_or(0);

    let text = std::fs::read_to_string(&file)?;
    let written = text.matches("\"spanId\"").count();
    std::fs::remove_dir_all(&dir).ok();

    assert_eq!(run.task_count() as usize, total);
    println!("tasks              {total} (+1 run span)");
    println!("time               {:.2} s", elapsed.as_secs_f64());
    println!("RSS before run     {:.1} MiB", before as f64 / 1024.0);
    println!("peak RSS           {:.1} MiB", peak as f64 / 1024.0);
    println!(
        "bytes per task     {:.0}",
        (peak.saturating_sub(before) * 1024) as f64 / total as f64
    );
    println!("spans in the file  {written}");
    println!("dropped (reported) {}", stats.dropped());
    Ok(())
}
