//! The cost of one traced task call, side by side with the alternatives, in
//! one criterion run: `cargo bench --bench task_call` (or `scripts/bench`,
//! which also runs the export-throughput harness and updates
//! BENCHMARKS.md).
//!
//! Every row's loop times itself (`iter_custom`); the medians, the ratios
//! to the raw SDK rows, the allocations per call (counted by this binary's
//! global allocator, on the calling thread) and the spans each row exported
//! are written to `target/bench/task_call.md` and `.json`.

// The tests' counting allocator, one implementation for both.
#[path = "../../tests/support/alloc.rs"]
mod alloc;
mod pipeline;
mod report;
mod rows;
mod runs;

use std::sync::atomic::Ordering;
use std::time::Duration;

use criterion::Criterion;

use alloc::Counting;
use pipeline::{CountingReporter, EXPORTED, FASTRACE_REPORTED};
use report::Measured;
use rows::Global;

#[global_allocator]
static ALLOCATOR: Counting = Counting::PER_THREAD;

/// Calls per allocation count; the count is `(allocs(2N) - allocs(N)) / N`,
/// so what a loop allocates once (runtime entry, run context) cancels out.
const ALLOCATION_CALLS: u64 = 2_000;

fn main() {
    if let Ok(spec) = std::env::var("FLOWTRACE_BENCH_PROFILE") {
        return profile(&spec);
    }
    let mut criterion = Criterion::default()
        .warm_up_time(Duration::from_millis(700))
        .nresamples(20_000)
        .configure_from_args();
    let provider = pipeline::provider();
    fastrace::set_reporter(
        CountingReporter,
        fastrace::collector::Config::default().report_interval(Duration::from_millis(10)),
    );

    // The per-call rows run in rounds, each row once per round in the same
    // order, so a ratio can be taken within a round and its spread shown:
    // on a 2-core machine the export threads make single runs drift.
    let rounds: usize = std::env::var("FLOWTRACE_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
        .max(1);
    let mut measured = Vec::new();
    for mut group in [rows::task_call(&provider), runs::nested(), runs::fan_out()] {
        let first = measured.len();
        let group_rounds = if group.name == "task_call" { rounds } else { 1 };
        for round in 0..group_rounds {
            // A group per round: criterion wants ids unique within a group.
            let mut bench = criterion.benchmark_group(group.name);
            bench
                .sample_size(group.sample_size)
                .measurement_time(group.measurement);
            for (i, row) in group.rows.iter_mut().enumerate() {
                install(row.global, &provider);
                // Let the previous row's export and report threads go idle,
                // so they do not compete with this row for the 2 cores.
                exported(true, &provider);
                exported(false, &provider);
                std::thread::sleep(Duration::from_millis(200));
                let allocations = (round == 0 && row.count_allocations).then(|| {
                    (row.run)(ALLOCATION_CALLS); // warm caches, pools and slabs
                    let (_, once_n, once_b) =
                        alloc::count_allocations(|| (row.run)(ALLOCATION_CALLS));
                    let (_, twice_n, twice_b) =
                        alloc::count_allocations(|| (row.run)(2 * ALLOCATION_CALLS));
                    let per = |twice: u64, once: u64| {
                        twice.saturating_sub(once) as f64 / ALLOCATION_CALLS as f64
                    };
                    (per(twice_n, once_n), per(twice_b, once_b))
                });

                let before = exported(row.spans.fastrace, &provider);
                let mut calls = 0u64;
                let mut loops = 0u64;
                let mut samples = Vec::new();
                bench.bench_function(row.id, |b| {
                    b.iter_custom(|iters| {
                        calls += iters;
                        loops += 1;
                        let elapsed = (row.run)(iters);
                        samples.push(elapsed.as_nanos() as f64 / iters.max(1) as f64);
                        elapsed
                    })
                });
                let produced = calls * row.spans.per_call + loops * row.spans.per_loop;
                let arrived = exported(row.spans.fastrace, &provider) - before;
                // Criterion's measurement is its last `sample_size` calls
                // (the ones before are the warm-up).
                let measured_samples = &samples[samples.len().saturating_sub(group.sample_size)..];
                let estimate = report::sample_median(measured_samples);
                if round == 0 {
                    measured.push(Measured {
                        group: group.name,
                        id: row.id,
                        label: row.label,
                        what: row.what,
                        tasks: row.tasks,
                        calls: 0,
                        allocations,
                        produced: 0,
                        exported: 0,
                        rounds: Vec::new(),
                    });
                }
                let m = &mut measured[first + i];
                m.calls += calls;
                m.produced += produced;
                m.exported += arrived;
                m.rounds.extend(estimate);
            }
            bench.finish();
        }
    }
    pipeline::uninstall();
    criterion.final_summary();
    if let Err(err) = report::write(&measured) {
        eprintln!("task_call: report not written: {err}");
    }
}

/// `FLOWTRACE_BENCH_PROFILE=<row id>[,<calls>]`: runs that row's loop
/// (`list`: prints the per-call row ids)
/// (1 000 calls to warm up, then `calls` in [`profiled_loop`], default 100 000) without
/// criterion, for a profiler: `scripts/bench --profile <row id>` runs it
/// under callgrind, collecting inside the timed loops only.
fn profile(spec: &str) {
    let provider = pipeline::provider();
    if spec == "list" {
        // The per-call rows, for `scripts/bench --instructions`.
        for row in rows::task_call(&provider).rows {
            println!("{}", row.id);
        }
        return;
    }
    let (id, calls) = spec.split_once(',').unwrap_or((spec, "100000"));
    let calls: u64 = calls.parse().unwrap_or(100_000);
    fastrace::set_reporter(CountingReporter, fastrace::collector::Config::default());
    let mut groups = [rows::task_call(&provider), runs::nested(), runs::fan_out()];
    let Some(row) = groups
        .iter_mut()
        .flat_map(|g| g.rows.iter_mut())
        .find(|r| r.id == id)
    else {
        eprintln!("no row {id}");
        std::process::exit(2);
    };
    install(row.global, &provider);
    (row.run)(1_000);
    let elapsed = profiled_loop(row, calls);
    println!(
        "{id}: {calls} calls, {:.1} ns per call",
        elapsed.as_nanos() as f64 / calls as f64
    );
}

fn install(global: Global, provider: &opentelemetry_sdk::trace::SdkTracerProvider) {
    if global == Global::SdkMetrics {
        pipeline::install_metrics();
    } else {
        flowtrace::metrics::remove_meter_provider();
    }
    if global == Global::SdkLogs {
        pipeline::install_logs();
    } else {
        flowtrace::remove_logger_provider();
    }
    match global {
        Global::Sdk | Global::SdkMetrics | Global::SdkLogs => pipeline::install(provider),
        Global::SdkDirect => pipeline::install_directly(provider),
        Global::Noop => pipeline::uninstall(),
    }
}

/// The loop a profiler collects in (`--toggle-collect=*profiled_loop*`).
#[inline(never)]
fn profiled_loop(row: &mut rows::Row, calls: u64) -> Duration {
    (row.run)(calls)
}

/// Spans delivered so far, after flushing what is queued.
fn exported(fastrace: bool, provider: &opentelemetry_sdk::trace::SdkTracerProvider) -> u64 {
    if fastrace {
        // fastrace reports from its collector thread some time after a span
        // ends: wait until the count stops moving.
        let mut last = FASTRACE_REPORTED.load(Ordering::Relaxed);
        let mut stable = 0;
        while stable < 5 {
            fastrace::flush();
            std::thread::sleep(Duration::from_millis(30));
            let now = FASTRACE_REPORTED.load(Ordering::Relaxed);
            stable = if now == last { stable + 1 } else { 0 };
            last = now;
        }
        last
    } else {
        let _ = provider.force_flush();
        EXPORTED.load(Ordering::Relaxed)
    }
}
