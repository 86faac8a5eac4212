//! `flowtrace view` over 10⁶ spans: wall and CPU time and peak resident
//! memory of the terminal waterfall and of the HTML page, beside the floor
//! of reading the file's lines and nothing else. Each measurement runs in a child
//! process of its own (this binary, re-executed), so each peak RSS
//! (`VmHWM` from /proc/self/status) is that view's alone.
//!
//! ```text
//! cargo bench -p flowtrace-telemetry --bench view            # table on stdout and in target/bench/view.md
//! FLOWTRACE_BENCH_VIEW_SPANS=100000 cargo bench -p flowtrace-telemetry --bench view
//! ```
//!
//! The input, written once to target/bench/, has flowtrace's shape: runs of
//! 100 spans (a run span, 9 tasks of 10 children each) with the attributes
//! the task spans carry, a `retry` event and an exception on every 50th
//! task, 500 spans per line as the batch exporter writes them.

use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use flowtrace_telemetry::{ColorChoice, ViewOptions, view_to};

const SPANS_PER_RUN: u64 = 100;
const SPANS_PER_LINE: u64 = 500;
const ROUNDS: usize = 3;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--child") {
        child(&args[1], Path::new(&args[2]), Path::new(&args[3]));
        return;
    }
    let spans: u64 = std::env::var("FLOWTRACE_BENCH_VIEW_SPANS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let dir = target_dir().join("bench");
    std::fs::create_dir_all(&dir).unwrap();
    let input = dir.join(format!("view-{spans}-spans.jsonl"));
    if !input.exists() {
        eprintln!("writing {} ({spans} spans)", input.display());
        write_input(&input, spans);
    }
    let size = std::fs::metadata(&input).unwrap().len();
    let html = dir.join("view-bench.html");

    let rows = [
        ("read the lines only (floor)", "lines"),
        ("terminal waterfall", "terminal"),
        (
            "terminal waterfall, buffer of 20 000 spans",
            "terminal-small",
        ),
        ("HTML page", "html"),
        ("HTML page, buffer of 20 000 spans", "html-small"),
    ];
    let mut table = String::new();
    let _ = writeln!(
        table,
        "Input: {spans} spans in {} runs, {:.0} MB of OTLP/JSON lines; median of {ROUNDS} runs, each in its own process.\n",
        spans / SPANS_PER_RUN,
        size as f64 / 1e6
    );
    let _ = writeln!(
        table,
        "| view | wall time | CPU time | spans/s (CPU) | peak RSS | output |"
    );
    let _ = writeln!(table, "|---|---:|---:|---:|---:|---:|");
    for (label, mode) in rows {
        let mut results: Vec<Measured> = (0..ROUNDS)
            .map(|_| run_child(mode, &input, &html))
            .collect();
        results.sort_by(|a, b| a.cpu.total_cmp(&b.cpu));
        let Measured {
            wall,
            cpu,
            bytes: out_bytes,
            ..
        } = results[ROUNDS / 2];
        let rss = results.iter().map(|r| r.rss_kib).max().unwrap();
        let _ = writeln!(
            table,
            "| {label} | {wall:.2} s | {cpu:.2} s | {:.2} M | {:.0} MiB | {} |",
            spans as f64 / cpu / 1e6,
            rss as f64 / 1024.0,
            if out_bytes == 0 {
                "—".to_owned()
            } else {
                format!("{:.0} MB", out_bytes as f64 / 1e6)
            }
        );
        eprintln!("{label}: {wall:.2} s wall, {cpu:.2} s CPU, peak RSS {rss} KiB");
    }
    print!("{table}");
    std::fs::write(dir.join("view.md"), &table).unwrap();
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"))
}

/// What one child process reports.
#[derive(Clone, Copy)]
struct Measured {
    wall: f64,
    /// User + system time: what the view costs, whatever else the machine runs.
    cpu: f64,
    rss_kib: u64,
    bytes: u64,
}

fn run_child(mode: &str, input: &Path, html: &Path) -> Measured {
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--child", mode])
        .arg(input)
        .arg(html)
        .output()
        .expect("running the measurement");
    assert!(
        out.status.success(),
        "{mode}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let mut fields = text.split_whitespace().map(|f| f.parse::<f64>().unwrap());
    let mut next = || fields.next().expect("four fields");
    Measured {
        wall: next(),
        cpu: next(),
        rss_kib: next() as u64,
        bytes: next() as u64,
    }
}

/// Counts what goes through a writer.
struct Counting(u64);

impl Write for Counting {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn child(mode: &str, input: &Path, html: &Path) {
    let start = Instant::now();
    let mut out = Counting(0);
    let mut diagnostics = Vec::new();
    let options = ViewOptions::new([input])
        .color(ColorChoice::Never)
        .width(120);
    let bytes = match mode {
        "lines" => {
            let mut reader = BufReader::with_capacity(1 << 16, File::open(input).unwrap());
            let mut line = Vec::new();
            let mut n = 0u64;
            while reader.read_until(b'\n', &mut line).unwrap() > 0 {
                n += line.len() as u64;
                line.clear();
            }
            std::hint::black_box(n);
            0
        }
        "terminal" => {
            view_to(&options, &mut out, &mut diagnostics).unwrap();
            out.0
        }
        "terminal-small" => {
            view_to(&options.buffer(20_000), &mut out, &mut diagnostics).unwrap();
            out.0
        }
        "html" => {
            view_to(&options.html(html), &mut out, &mut diagnostics).unwrap();
            std::fs::metadata(html).unwrap().len()
        }
        "html-small" => {
            view_to(
                &options.buffer(20_000).html(html),
                &mut out,
                &mut diagnostics,
            )
            .unwrap();
            std::fs::metadata(html).unwrap().len()
        }
        other => panic!("unknown mode {other}"),
    };
    let secs = start.elapsed().as_secs_f64();
    assert!(
        diagnostics.is_empty(),
        "{}",
        String::from_utf8_lossy(&diagnostics)
    );
    // utime and stime, fields 14 and 15 of /proc/self/stat, in clock ticks
    // (USER_HZ, 100 on Linux).
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let ticks: Vec<f64> = after_name
        .split_whitespace()
        .skip(11)
        .take(2)
        .map(|t| t.parse().unwrap_or(0.0))
        .collect();
    let cpu = ticks.iter().sum::<f64>() / 100.0;
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .unwrap_or(0);
    println!("{secs} {cpu} {rss} {bytes}");
}

fn write_input(path: &Path, spans: u64) {
    let tmp = path.with_extension("tmp");
    let mut out = BufWriter::new(File::create(&tmp).unwrap());
    let t0: u64 = 1_796_000_000_000_000_000;
    let mut line = String::new();
    let mut in_line = 0;
    let resource = r#"{"attributes":[{"key":"service.name","value":{"stringValue":"bench"}},{"key":"telemetry.sdk.name","value":{"stringValue":"opentelemetry"}}]}"#;
    let flush = |line: &mut String, out: &mut BufWriter<File>| {
        if !line.is_empty() {
            writeln!(
                out,
                r#"{{"resourceSpans":[{{"resource":{resource},"scopeSpans":[{{"scope":{{"name":"flowtrace","version":"0.1.0"}},"spans":[{line}]}}]}}]}}"#
            )
            .unwrap();
            line.clear();
        }
    };
    for run in 0..spans / SPANS_PER_RUN {
        let trace = format!("{:032x}", 0x1000_0000_0000_0000_u128 + u128::from(run));
        let run_id = format!("{:016x}", 0xabc0_0000_0000 + run);
        let base = t0 + run * 1_000_000_000;
        let id = |k: u64| format!("{:016x}", (run << 8) + k + 1);
        let mut span = |k: u64,
                        parent: Option<u64>,
                        name: &str,
                        start: u64,
                        end: u64,
                        extra: &str| {
            if in_line > 0 {
                line.push(',');
            }
            let parent = parent.map(id).unwrap_or_default();
            let _ = write!(
                line,
                r#"{{"traceId":"{trace}","spanId":"{}","traceState":"","parentSpanId":"{parent}","flags":257,"name":"{name}","kind":1,"startTimeUnixNano":"{}","endTimeUnixNano":"{}","attributes":[{{"key":"flowtrace.task.name","value":{{"stringValue":"{name}"}}}},{{"key":"code.function.name","value":{{"stringValue":"bench::{name}"}}}},{{"key":"flowtrace.run.id","value":{{"stringValue":"{run_id}"}}}},{{"key":"flowtrace.run.name","value":{{"stringValue":"bench_run"}}}},{{"key":"flowtrace.input.url","value":{{"stringValue":"https://example.com/{run}/{k}"}}}}],"droppedAttributesCount":0,{extra}"droppedEventsCount":0,"links":[],"droppedLinksCount":0}}"#,
                id(k),
                base + start,
                base + end
            );
            in_line += 1;
        };
        // Children first, the run span last: the order the exporter writes.
        for task in 0..9u64 {
            let task_k = 1 + task * 11;
            let t_start = task * 1_000_000;
            for leaf in 0..10u64 {
                let s = t_start + 10_000 + leaf * 90_000;
                span(
                    task_k + 1 + leaf,
                    Some(task_k),
                    "parse",
                    s,
                    s + 80_000,
                    r#""events":[],"status":{"message":"","code":0},"#,
                );
            }
            let failing = (run * 9 + task) % 50 == 0;
            let extra = if failing {
                r#""events":[{"timeUnixNano":"1","name":"retry","attributes":[{"key":"flowtrace.task.attempt","value":{"intValue":"1"}}]},{"timeUnixNano":"2","name":"exception","attributes":[{"key":"exception.type","value":{"stringValue":"bench::Error"}},{"key":"exception.message","value":{"stringValue":"503 from upstream"}}]}],"status":{"message":"503 from upstream","code":2},"#
            } else {
                r#""events":[],"status":{"message":"","code":0},"#
            };
            span(task_k, Some(0), "fetch", t_start, t_start + 950_000, extra);
        }
        span(
            0,
            None,
            "bench_run",
            0,
            9_500_000,
            r#""events":[],"status":{"message":"","code":0},"#,
        );
        if in_line >= SPANS_PER_LINE {
            flush(&mut line, &mut out);
            in_line = 0;
        }
    }
    flush(&mut line, &mut out);
    out.flush().unwrap();
    drop(out);
    std::fs::rename(&tmp, path).unwrap();
}
