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
}

/// The DESIGN.md budget.
const SAMPLED_BUDGET: f64 = 2.0;
const SAMPLED_AIM: f64 = 1.5;
const UNSAMPLED_BUDGET: f64 = 1.3;
const NO_PROVIDER_BUDGET_NS: f64 = 50.0;

fn target_dir() -> PathBuf {
    // CARGO_TARGET_TMPDIR is `<target>/tmp`.
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .map_or_else(|| PathBuf::from("target"), Path::to_path_buf)
}

/// Criterion's median (and its 95 % interval) in ns, from this run.
fn median(group: &str, id: &str) -> Option<(f64, f64, f64)> {
    let home = std::env::var_os("CRITERION_HOME")
        .map_or_else(|| target_dir().join("criterion"), PathBuf::from);
    let path = home.join(group).join(id).join("new/estimates.json");
    let json: Value = serde_json::from_str(&fs::read_to_string(path).ok()?).ok()?;
    let m = &json["median"];
    Some((
        m["point_estimate"].as_f64()?,
        m["confidence_interval"]["lower_bound"].as_f64()?,
        m["confidence_interval"]["upper_bound"].as_f64()?,
    ))
}

struct Row<'a> {
    m: &'a Measured,
    ns: f64,
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
        .filter_map(|m| median(m.group, m.id).map(|(ns, low, high)| Row { m, ns, low, high }))
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
         | row | median | 95 % CI of the median | vs raw SDK | over plain | allocations / call | bytes / call | spans exported / produced |\n\
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

    let _ = writeln!(md, "\n### The DESIGN.md budget, from this run\n");
    let _ = writeln!(md, "| target | measured | |\n|---|---:|---|");
    let check = |ok: bool| if ok { "met" } else { "**not met**" };
    if let (Some(f), Some(raw)) = (find("task_call", "flowtrace_sampled"), raw_sampled) {
        let ratio = f / raw;
        let _ = writeln!(
            md,
            "| sampled `#[traced]` ≤ {SAMPLED_BUDGET}× raw SDK span (aim {SAMPLED_AIM}×) | {ratio:.2}× ({} vs {}) | {} |",
            ns(f),
            ns(raw),
            check(ratio <= SAMPLED_BUDGET)
        );
    }
    if let (Some(f), Some(raw)) = (find("task_call", "flowtrace_unsampled"), raw_unsampled) {
        let ratio = f / raw;
        let _ = writeln!(
            md,
            "| unsampled `#[traced]` ≤ {UNSAMPLED_BUDGET}× raw unsampled span | {ratio:.2}× ({} vs {}) | {} |",
            ns(f),
            ns(raw),
            check(ratio <= UNSAMPLED_BUDGET)
        );
    }
    if let (Some(f), Some(p)) = (find("task_call", "flowtrace_no_provider"), plain) {
        let over = f - p;
        let _ = writeln!(
            md,
            "| no provider: ≤ {NO_PROVIDER_BUDGET_NS} ns over a plain call | +{} ({} vs {}) | {} |",
            ns(over),
            ns(f),
            ns(p),
            check(over <= NO_PROVIDER_BUDGET_NS)
        );
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
