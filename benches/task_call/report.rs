//! The tables of BENCHMARKS.md, from criterion's estimates of this run plus
//! what the bench binary counted itself (allocations, exported spans).

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

/// What one row measured besides its time.
pub struct Measured {
    pub group: &'static str,
    pub id: &'static str,
    pub label: &'static str,
    pub what: &'static str,
    pub tasks: u64,
    /// Timed calls criterion made (0: filtered out of this run).
    pub calls: u64,
    /// Allocations and bytes per timed call.
    pub allocations: Option<(f64, f64)>,
    pub produced: u64,
    pub exported: u64,
    /// Criterion's median and its 95 % interval, one per round.
    pub rounds: Vec<(f64, f64, f64)>,
}

impl Measured {
    /// The median over rounds of the round medians.
    fn median(&self) -> Option<f64> {
        middle(self.rounds.iter().map(|r| r.0).collect())
    }
}

fn middle(mut values: Vec<f64>) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(values[n / 2]),
        _ => Some((values[n / 2 - 1] + values[n / 2]) / 2.0),
    }
}

/// The cost budget of a task call (README, "Reliability and cost").
const SAMPLED_BUDGET: f64 = 2.0;
const SAMPLED_AIM: f64 = 1.5;
const UNSAMPLED_BUDGET: f64 = 1.3;
const NO_PROVIDER_BUDGET_NS: f64 = 50.0;
/// What task and run metrics may add to a task call, meter provider installed.
const METRICS_BUDGET_NS: f64 = 60.0;

fn target_dir() -> PathBuf {
    // CARGO_TARGET_TMPDIR is `<target>/tmp`.
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .map_or_else(|| PathBuf::from("target"), Path::to_path_buf)
}

/// The median time per call of criterion's samples, with the lowest and
/// highest sample.
pub fn sample_median(samples: &[f64]) -> Option<(f64, f64, f64)> {
    let median = middle(samples.to_vec())?;
    let low = samples.iter().copied().fold(f64::MAX, f64::min);
    let high = samples.iter().copied().fold(f64::MIN, f64::max);
    Some((median, low, high))
}

struct Row<'a> {
    m: &'a Measured,
    ns: f64,
    /// The lowest and highest round median (one round: the 95 % interval).
    low: f64,
    high: f64,
}

fn ns(value: f64) -> String {
    if value >= 1e6 {
        format!("{:.2} ms", value / 1e6)
    } else if value >= 1e4 {
        format!("{:.1} µs", value / 1e3)
    } else if value >= 100.0 {
        format!("{value:.0} ns")
    } else {
        format!("{value:.1} ns")
    }
}

fn spans(m: &Measured) -> String {
    if m.produced == 0 && m.exported == 0 {
        "—".to_owned()
    } else if m.exported >= m.produced {
        format!("{} / {}", m.exported, m.produced)
    } else {
        format!(
            "{} / {} (**{} dropped**)",
            m.exported,
            m.produced,
            m.produced - m.exported
        )
    }
}

fn allocations(m: &Measured, per: f64) -> (String, String) {
    match m.allocations {
        Some((n, bytes)) => (format!("{:.1}", n / per), format!("{:.0}", bytes / per)),
        None => ("—".to_owned(), "—".to_owned()),
    }
}

/// Writes `<target>/bench/task_call.{md,json}` and prints the markdown.
pub fn write(measured: &[Measured]) -> std::io::Result<()> {
    let rows: Vec<Row<'_>> = measured
        .iter()
        .filter(|m| m.calls > 0)
        .filter_map(|m| {
            let ns = m.median()?;
            let (low, high) = match m.rounds.as_slice() {
                [(_, low, high)] => (*low, *high),
                rounds => rounds.iter().fold((f64::MAX, f64::MIN), |(lo, hi), r| {
                    (lo.min(r.0), hi.max(r.0))
                }),
            };
            Some(Row { m, ns, low, high })
        })
        .collect();
    let find = |group: &str, id: &str| {
        rows.iter()
            .find(|r| r.m.group == group && r.m.id == id)
            .map(|r| r.ns)
    };
    let raw_sampled = find("task_call", "raw_sdk_sampled");
    let raw_unsampled = find("task_call", "raw_sdk_unsampled");
    let plain = find("task_call", "plain");

    let mut md = String::new();
    let _ = writeln!(
        md,
        "### Per task call (`task_call` group)\n\n\
         | row | median | lowest – highest round median | vs raw SDK | over plain | allocations / call | bytes / call | spans exported / produced |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|"
    );
    for r in rows.iter().filter(|r| r.m.group == "task_call") {
        let reference = if r.m.id == "plain" || r.m.id.contains("no_provider") {
            None
        } else if r.m.id.contains("unsampled") {
            raw_unsampled.map(|v| (v, "unsampled"))
        } else {
            raw_sampled.map(|v| (v, "sampled"))
        };
        let ratio = match reference {
            Some((v, which)) => format!("{:.2}× {which}", r.ns / v),
            None => "—".to_owned(),
        };
        let over = plain.map_or("—".to_owned(), |p| ns(r.ns - p));
        let (allocs, bytes) = allocations(r.m, 1.0);
        let _ = writeln!(
            md,
            "| {} | {} | {} – {} | {ratio} | {over} | {allocs} | {bytes} | {} |",
            r.m.label,
            ns(r.ns),
            ns(r.low),
            ns(r.high),
            spans(r.m)
        );
    }

    for (group, title) in [
        (
            "nested",
            "Whole runs (`nested` group, current-thread runtime)",
        ),
        (
            "fan_out",
            "Fan-out of 10 000 tasks (`fan_out` group, 2-worker multi-thread runtime)",
        ),
    ] {
        let _ = writeln!(
            md,
            "\n### {title}\n\n\
             | row | median per run | per task | per task over plain | allocations / task | spans exported / produced |\n\
             |---|---:|---:|---:|---:|---:|"
        );
        for r in rows.iter().filter(|r| r.m.group == group) {
            let per_task = r.ns / r.m.tasks as f64;
            let shape = r.m.id.split('_').next().unwrap_or("");
            let plain_id = if group == "fan_out" {
                "fan_out_plain".to_owned()
            } else {
                format!("{shape}_plain")
            };
            let over = find(group, &plain_id)
                .map_or("—".to_owned(), |p| ns(per_task - p / r.m.tasks as f64));
            let (allocs, _) = allocations(r.m, r.m.tasks as f64);
            let _ = writeln!(
                md,
                "| {} | {} | {} | {over} | {allocs} | {} |",
                r.m.label,
                ns(r.ns),
                ns(per_task),
                spans(r.m)
            );
        }
    }

    let _ = writeln!(md, "\n### The cost budget, from this run\n");
    let _ = writeln!(
        md,
        "Each ratio is taken within a round (the two rows ran one after the other), \
         then the median over the rounds; the rounds' own ratios follow.\n"
    );
    let _ = writeln!(
        md,
        "| target | measured (median over rounds) | each round | |\n|---|---:|---|---|"
    );
    let check = |ok: bool| if ok { "met" } else { "**not met**" };
    let by_id = |id: &str| {
        measured
            .iter()
            .find(|m| m.group == "task_call" && m.id == id)
    };
    // Per-round values of `f(row, reference)` for two rows measured in the same rounds.
    let paired = |id: &str, reference: &str, f: fn(f64, f64) -> f64| {
        let (row, reference) = (by_id(id)?, by_id(reference)?);
        let each: Vec<f64> = row
            .rounds
            .iter()
            .zip(&reference.rounds)
            .map(|(a, b)| f(a.0, b.0))
            .collect();
        Some((middle(each.clone())?, each))
    };
    let list = |each: &[f64], show: &dyn Fn(f64) -> String| {
        each.iter().map(|v| show(*v)).collect::<Vec<_>>().join(", ")
    };
    let times = |v: f64| format!("{v:.2}×");
    if let Some((ratio, each)) = paired("flowtrace_sampled", "raw_sdk_sampled", |a, b| a / b) {
        let _ = writeln!(
            md,
            "| sampled `#[traced]` ≤ {SAMPLED_BUDGET}× raw SDK span (aim {SAMPLED_AIM}×) | {ratio:.2}× | {} | {} |",
            list(&each, &times),
            check(ratio <= SAMPLED_BUDGET)
        );
    }
    if let Some((ratio, each)) = paired("flowtrace_unsampled", "raw_sdk_unsampled", |a, b| a / b) {
        let _ = writeln!(
            md,
            "| unsampled `#[traced]` ≤ {UNSAMPLED_BUDGET}× raw unsampled span | {ratio:.2}× | {} | {} |",
            list(&each, &times),
            check(ratio <= UNSAMPLED_BUDGET)
        );
    }
    if let Some((over, each)) = paired("flowtrace_no_provider", "plain", |a, b| a - b) {
        let _ = writeln!(
            md,
            "| no provider: ≤ {NO_PROVIDER_BUDGET_NS} ns over a plain call | +{} | {} | {} |",
            ns(over),
            list(&each, &|v| format!("+{}", ns(v))),
            check(over <= NO_PROVIDER_BUDGET_NS)
        );
    }

    for (with, without, what) in [
        ("flowtrace_sampled_metrics", "flowtrace_sampled", "sampled"),
        (
            "flowtrace_unsampled_metrics",
            "flowtrace_unsampled",
            "unsampled",
        ),
    ] {
        if let Some((over, each)) = paired(with, without, |a, b| a - b) {
            let _ = writeln!(
                md,
                "| metrics, {what}: ≤ {METRICS_BUDGET_NS} ns over the same call without a meter provider | +{} | {} | {} |",
                ns(over),
                list(&each, &|v| format!("{v:+.0} ns")),
                check(over <= METRICS_BUDGET_NS)
            );
        }
    }

    for (with, without, what) in [
        (
            "flowtrace_sampled_start_record",
            "flowtrace_sampled",
            "sampled: the record written",
        ),
        (
            "flowtrace_unsampled_start_record",
            "flowtrace_unsampled",
            "unsampled: none written",
        ),
    ] {
        if let Some((over, each)) = paired(with, without, |a, b| a - b) {
            let _ = writeln!(
                md,
                "| start record, {what}: over the same call without a logger provider | +{} | {} | (measured, no budget) |",
                ns(over),
                list(&each, &|v| format!("{v:+.0} ns")),
            );
        }
    }

    let _ = writeln!(md, "\n### What each row measures\n");
    let mut seen = Vec::new();
    for r in &rows {
        if !seen.contains(&r.m.what) {
            seen.push(r.m.what);
            let _ = writeln!(md, "- **{}**: {}", r.m.label, r.m.what);
        }
    }

    let json: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({
                "group": r.m.group,
                "id": r.m.id,
                "label": r.m.label,
                "median_ns": r.ns,
                "median_ci_ns": [r.low, r.high],
                "tasks": r.m.tasks,
                "allocations_per_call": r.m.allocations.map(|a| a.0),
                "bytes_per_call": r.m.allocations.map(|a| a.1),
                "spans_produced": r.m.produced,
                "spans_exported": r.m.exported,
            })
        })
        .collect();
    let dir = target_dir().join("bench");
    fs::create_dir_all(&dir)?;
    // A filtered run (`cargo bench --bench task_call -- flowtrace`) must not
    // replace the full table scripts/bench puts into BENCHMARKS.md.
    let name = if measured.iter().all(|m| m.calls > 0) {
        "task_call"
    } else {
        "task_call-partial"
    };
    fs::write(dir.join(format!("{name}.md")), &md)?;
    fs::write(
        dir.join(format!("{name}.json")),
        serde_json::to_string_pretty(&json).unwrap_or_default(),
    )?;
    println!(
        "\n{md}\n(written to {})",
        dir.join(format!("{name}.md")).display()
    );
    Ok(())
}
