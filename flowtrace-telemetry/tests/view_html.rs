//! `flowtrace view --html` in a real headless Chromium (Debian's
//! `chromium`, installed by scripts/setup), opened from `file://` and driven
//! over the DevTools protocol: the runs, expanding a node, the span count,
//! the critical path, the error span's style, the details of a span with an
//! exception (and its stack trace), links within the file, the resource,
//! search, zoom; a screenshot under target/; no network request. And a page
//! of 10⁵ spans keeps only the rows in sight in the DOM.

mod view_common;

use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use view_common::{chromium, fixture, scratch, view};

fn page(dir: &Path, files: &[PathBuf]) -> PathBuf {
    let out = dir.join("view.html");
    let mut args: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    args.extend(["--html".to_owned(), out.display().to_string()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = view(&args);
    assert_eq!(result.status.code(), Some(0), "{}", result.stderr);
    out
}

const ROWS: &str = "[...document.querySelectorAll('#rows .row')].map(r => ({ name: r.dataset.name, \
    critical: r.classList.contains('critical'), error: r.classList.contains('error'), \
    toggle: r.querySelector('.toggle').className }))";

fn run_item(name: &str) -> String {
    format!(
        "[...document.querySelectorAll('#run-list li')].find(li => li.querySelector('.run-name').firstChild.textContent === {name:?})"
    )
}

fn row_name(name: &str) -> String {
    format!(
        "[...document.querySelectorAll('#rows .row')].find(r => r.dataset.name === {name:?}).querySelector('.name')"
    )
}

fn no_network(report: &Value) {
    let requests = report["requests"].as_array().unwrap();
    assert_eq!(
        requests.len(),
        1,
        "only the page itself is loaded: {requests:#?}"
    );
    assert!(
        requests[0]["url"].as_str().unwrap().starts_with("file://"),
        "{requests:#?}"
    );
    assert_eq!(report["exceptions"], json!([]), "no script error");
    assert_eq!(
        report["consoleErrors"],
        json!([]),
        "no console error (e.g. a CSP violation)"
    );
}

fn rgb(css: &str) -> (u32, u32, u32) {
    let inner = css.trim_start_matches("rgb(").trim_end_matches(')');
    let parts: Vec<u32> = inner
        .split(',')
        .map(|p| p.trim().parse().unwrap())
        .collect();
    (parts[0], parts[1], parts[2])
}

#[test]
fn the_page_in_chromium() {
    let dir = scratch("html");
    let html = page(
        &dir,
        &[
            fixture("quickstart.jsonl"),
            fixture("collector.jsonl"),
            fixture("lifecycle.jsonl"),
        ],
    );
    let screenshot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("view-html.png");
    let _ = std::fs::remove_file(&screenshot);
    let steps = json!([
        /* 0 */ {"eval": "[...document.querySelectorAll('#run-list li')].map(li => li.querySelector('.run-name').firstChild.textContent)"},
        /* 1 */ {"click": run_item("workflow_run")},
        /* 2 */ {"eval": format!("({{ summary: {{ ...document.getElementById('summary').dataset }}, rows: {ROWS} }})")},
        /* 3 */ {"click": "[...document.querySelectorAll('#rows .row')].find(r => r.dataset.name === 'fetch' && r.querySelector('.toggle.closed')).querySelector('.toggle')"},
        /* 4 */ {"eval": ROWS},
        /* 5 */ {"eval": "(() => { const r = document.querySelector('#rows .row.error'); return { name: r.dataset.name, \
                 bar: getComputedStyle(r.querySelector('.bar')).backgroundColor, \
                 label: getComputedStyle(r.querySelector('.name')).color, \
                 mark: r.querySelector('.mark.error').textContent }; })()"},
        /* 6 */ {"click": "document.querySelector('#rows .row.error .name')"},
        /* 7 */ {"eval": "({ title: document.querySelector('#details h3').textContent, \
                 type: document.querySelector('#details .exception-type').textContent, \
                 message: document.querySelector('#details .exception-message').textContent, \
                 text: document.getElementById('details').innerText })"},
        /* 8 */ {"click": run_item("POST /checkout")},
        /* 9 */ {"click": row_name("charge card")},
        /* 10 */ {"eval": "({ title: document.querySelector('#details h3').textContent, \
                  stack: document.querySelector('#details pre.stacktrace').textContent, \
                  type: document.querySelector('#details .exception-type').textContent, \
                  text: document.getElementById('details').innerText })"},
        /* 11 */ {"click": run_item("send email")},
        /* 12 */ {"click": row_name("send email")},
        /* 13 */ {"eval": "[...document.querySelectorAll('#details .link')].map(l => ({ inFile: !!l.querySelector('a.in-file'), text: l.textContent }))"},
        /* 14 */ {"click": "document.querySelector('#details a.in-file')"},
        /* 15 */ {"eval": "({ run: document.querySelector('#summary b').textContent, \
                  selected: document.querySelector('#details h3').textContent, \
                  row: document.querySelector('#rows .row.selected').dataset.name, hash: location.hash })"},
        /* 16 */ {"click": "document.getElementById('search')"},
        /* 17 */ {"type": "task.timeout=true"},
        /* 18 */ {"eval": "({ count: document.getElementById('search-count').textContent, \
                  runs: [...document.querySelectorAll('#run-list li:not(.hidden)')].map(li => li.querySelector('.run-name').firstChild.textContent), \
                  matches: [...document.querySelectorAll('#rows .row.match')].map(r => r.dataset.name), \
                  rows: document.querySelectorAll('#rows .row').length })"},
        /* 19 */ {"eval": "(async () => { const s = document.getElementById('search'); s.value = ''; \
                  s.dispatchEvent(new Event('input')); await new Promise(r => setTimeout(r, 400)); \
                  return document.querySelectorAll('#run-list li:not(.hidden)').length; })()"},
        /* 20 */ {"eval": "[...document.querySelectorAll('#ticks .tick')].map(t => t.textContent)"},
        /* 21 */ {"click": "document.getElementById('zoom-in')"},
        /* 22 */ {"eval": "[...document.querySelectorAll('#ticks .tick')].map(t => t.textContent)"},
        /* 23 */ {"click": "document.getElementById('zoom-reset')"},
        /* 24 */ {"click": run_item("lifecycle_run")},
        /* 25 */ {"click": "document.getElementById('expand-all')"},
        /* 26 */ {"click": row_name("rerank")},
        /* 27 */ {"screenshot": screenshot},
    ]);
    let report = chromium(&html, steps, (1280, 720));
    let r = &report["results"];
    for (i, result) in r.as_array().unwrap().iter().enumerate() {
        assert!(result.get("error").is_none(), "step {i}: {result}");
    }

    // A list of runs, in start order.
    assert_eq!(
        r[0],
        json!([
            "POST /checkout",
            "send email",
            "workflow_run",
            "lifecycle_run"
        ])
    );

    // The quickstart's trace: 7 spans, 4 on the critical path; fetch nodes
    // start collapsed.
    let summary = &r[2]["summary"];
    assert_eq!(summary["spans"], "7");
    assert_eq!(summary["errors"], "1");
    assert_eq!(summary["critical"], "4");
    let rows = r[2]["rows"].as_array().unwrap();
    let names: Vec<&str> = rows
        .iter()
        .map(|row| row["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["workflow_run", "main", "fetch", "fetch", "fetch"]);
    let critical: Vec<bool> = rows
        .iter()
        .map(|row| row["critical"].as_bool().unwrap())
        .collect();
    assert_eq!(
        critical,
        [true, true, false, false, true],
        "the last fetch decided the end"
    );

    // Expanding the first fetch shows its parse.
    let expanded: Vec<&str> = r[4]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        expanded,
        ["workflow_run", "main", "fetch", "parse", "fetch", "fetch"]
    );
    assert_eq!(r[4][2]["toggle"], "toggle open");

    // The failed fetch: a red bar and a red name.
    assert_eq!(r[5]["name"], "fetch");
    assert_eq!(r[5]["mark"], "error");
    let (red, green, blue) = rgb(r[5]["bar"].as_str().unwrap());
    assert!(
        red > 180 && green < 80 && blue < 80,
        "error bar colour {}",
        r[5]["bar"]
    );
    let (red, green, _) = rgb(r[5]["label"].as_str().unwrap());
    assert!(
        red > 180 && green < 80,
        "error label colour {}",
        r[5]["label"]
    );

    // Its details: the exception.
    assert_eq!(r[7]["title"], "fetch");
    assert_eq!(r[7]["type"], "quickstart::FetchError");
    assert_eq!(r[7]["message"], "https://example.com/missing answered 404");
    let text = r[7]["text"].as_str().unwrap();
    for expected in [
        "status: error: https://example.com/missing answered 404",
        "flowtrace.input.url",
        "Captured input and output",
        "unknown_service:quickstart",
    ] {
        // innerText follows the CSS (headings are upper-cased).
        assert!(
            text.to_lowercase().contains(&expected.to_lowercase()),
            "{expected:?} in details:\n{text}"
        );
    }

    // A span from the Collector-style file: the stack trace and the resource.
    assert_eq!(r[10]["title"], "charge card");
    assert_eq!(r[10]["type"], "java.net.SocketTimeoutException");
    assert!(
        r[10]["stack"]
            .as_str()
            .unwrap()
            .contains("at com.example.payments.CardClient.charge(CardClient.java:88)")
    );
    let text = r[10]["text"].as_str().unwrap();
    assert!(
        text.contains("service.name\tcheckout") || text.contains("service.name\ncheckout"),
        "{text}"
    );
    assert!(
        text.contains("io.opentelemetry.spring-webmvc 2.1.0"),
        "the scope: {text}"
    );

    // Links: one into this file (clickable), one outside it.
    let links = r[13].as_array().unwrap();
    assert_eq!(links.len(), 2);
    assert_eq!(links[0]["inFile"], true);
    assert!(
        links[0]["text"]
            .as_str()
            .unwrap()
            .starts_with("enqueue email")
    );
    assert_eq!(links[1]["inFile"], false);
    assert!(
        links[1]["text"]
            .as_str()
            .unwrap()
            .contains("(not in this file)")
    );
    // Following it selects the linked span in its own trace.
    assert_eq!(
        r[15],
        json!({"run": "POST /checkout", "selected": "enqueue email", "row": "enqueue email", "hash": "#span-7a6b5c4d3e2f1a09"})
    );

    // Search by attribute.
    assert_eq!(r[18]["count"], "1 match in 1 run");
    assert_eq!(r[18]["runs"], json!(["lifecycle_run"]));
    assert_eq!(r[18]["matches"], json!(["rerank"]));
    assert_eq!(r[18]["rows"], 3, "the match and its ancestors");
    assert_eq!(r[19], 4, "clearing the search shows every run again");

    // Zoom: the axis shows half the time.
    let before = r[20].as_array().unwrap();
    let after = r[22].as_array().unwrap();
    assert!(!before.is_empty() && !after.is_empty());
    assert_ne!(before, after, "the ticks change with the zoom");

    no_network(&report);
    let png = std::fs::read(&screenshot).expect("the screenshot was saved");
    assert_eq!(&png[1..4], b"PNG");
    eprintln!("screenshot: {} ({} bytes)", screenshot.display(), png.len());
}

/// 10⁵ spans in one trace: the DOM holds the rows in sight, not 10⁵.
#[test]
fn a_hundred_thousand_spans_are_virtualized() {
    let dir = scratch("html-big");
    let input = dir.join("big.jsonl");
    write_big_trace(&input, 1000, 99);
    let html = page(&dir, &[input]);
    let steps = json!([
        {"eval": "({ spans: document.getElementById('summary').dataset.spans, dom: document.querySelectorAll('#rows .row').length })"},
        {"eval": "(() => { const t = performance.now(); document.getElementById('expand-all').click(); return performance.now() - t; })()"},
        {"eval": "({ dom: document.querySelectorAll('#rows .row').length, height: document.getElementById('spacer').getBoundingClientRect().height })"},
        {"eval": "(async () => { const v = document.getElementById('viewport'); v.scrollTop = v.scrollHeight; \
                  await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r))); \
                  const rows = [...document.querySelectorAll('#rows .row')]; \
                  return { dom: rows.length, last: rows[rows.length - 1].dataset.name }; })()"},
    ]);
    let report = chromium(&html, steps, (1280, 720));
    let r = &report["results"];
    assert_eq!(r[0]["spans"], "100000");
    assert!(r[0]["dom"].as_u64().unwrap() < 100, "collapsed: {}", r[0]);
    let dom = r[2]["dom"].as_u64().unwrap();
    assert!(dom < 120, "expanded, still only the rows in sight: {dom}");
    assert_eq!(
        r[2]["height"],
        100_000.0 * 24.0,
        "the scroll height is every row's"
    );
    assert!(r[3]["dom"].as_u64().unwrap() < 120);
    assert_eq!(r[3]["last"], "leaf 999.97", "scrolled to the end");
    no_network(&report);
    eprintln!(
        "10^5 spans: ready in {} ms, expand all in {:.0} ms",
        report["readyMs"],
        r[1].as_f64().unwrap_or(0.0)
    );
}

/// One trace: a root and `tasks` children, each with `leaves` children
/// (the last one less, so 1000 × 99 makes 10⁵ spans); one line per task.
fn write_big_trace(path: &Path, tasks: u64, leaves: u64) {
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let trace = "00000000000000000000000000abcdef";
    let t0: u64 = 1_796_000_000_000_000_000;
    let span = |id: u64, parent: u64, name: &str, start: u64, end: u64| {
        json!({
            "traceId": trace, "spanId": format!("{id:016x}"),
            "parentSpanId": if parent == 0 { String::new() } else { format!("{parent:016x}") },
            "name": name, "kind": 1,
            "startTimeUnixNano": (t0 + start).to_string(), "endTimeUnixNano": (t0 + end).to_string(),
            "attributes": [{"key": "flowtrace.task.name", "value": {"stringValue": name}}],
            "status": {"code": 0}
        })
    };
    for t in 0..tasks {
        let task_id = 2 + t * (leaves + 1);
        let mut spans = vec![span(
            task_id,
            1,
            &format!("task {t}"),
            t * 1000,
            t * 1000 + 900,
        )];
        let count = if t + 1 == tasks { leaves - 1 } else { leaves };
        for l in 0..count {
            spans.push(span(
                task_id + 1 + l,
                task_id,
                &format!("leaf {t}.{l}"),
                t * 1000 + l * 9,
                t * 1000 + l * 9 + 8,
            ));
        }
        if t + 1 == tasks {
            spans.push(span(1, 0, "root", 0, tasks * 1000));
        }
        let line = json!({"resourceSpans": [{"resource": {"attributes": []}, "scopeSpans": [{"scope": {"name": "big"}, "spans": spans}]}]});
        writeln!(file, "{line}").unwrap();
    }
}
