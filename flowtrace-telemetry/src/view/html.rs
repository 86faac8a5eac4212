//! The HTML view: one self-contained page, script and style inlined, the
//! spans embedded as JSON (`<script type="application/json">` blocks, one
//! per trace, written as each trace is finished, so the page is streamed
//! out rather than built in memory). A Content-Security-Policy of
//! `default-src 'none'` makes sure the page loads nothing from anywhere.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::model::{Attributes, Span, kind_name};
use super::otlp_json::Reader;
use super::pipeline::Sink;
use super::trace::{NO_PARENT, Trace};

const TEMPLATE: &str = include_str!("view.html");
const STYLE: &str = include_str!("view.css");
const SCRIPT: &str = include_str!("view.js");
const DATA_MARK: &str = "<!--DATA-->";

pub(crate) struct HtmlSink<W: Write> {
    out: W,
    path: PathBuf,
    head: String,
    started: bool,
    scopes_written: usize,
    buf: Vec<u8>,
}

impl<W: Write> HtmlSink<W> {
    pub(crate) fn new(out: W, path: PathBuf, title: &str) -> Self {
        let (head, _) = TEMPLATE
            .split_once(DATA_MARK)
            .expect("the template has a data mark");
        let head = head
            .replace("{{TITLE}}", &escape_html(title))
            .replace("{{STYLE}}", STYLE);
        Self {
            out,
            path,
            head,
            started: false,
            scopes_written: 0,
            buf: Vec::new(),
        }
    }

    fn start(&mut self) -> io::Result<()> {
        if !self.started {
            self.started = true;
            self.out.write_all(self.head.as_bytes())?;
        }
        Ok(())
    }

    /// Writes the resources and scopes met since the last call.
    fn tables(&mut self, reader: &mut Reader) -> io::Result<()> {
        for id in reader.take_new_resources() {
            let block = JsonResource {
                id,
                attributes: pairs(&reader.resources[id]),
            };
            self.block("ft-resource", &block)?;
        }
        while self.scopes_written < reader.scopes.len() {
            let (name, version) = &reader.scopes[self.scopes_written];
            let block = JsonScope {
                id: self.scopes_written,
                name,
                version,
            };
            self.block("ft-scope", &block)?;
            self.scopes_written += 1;
        }
        Ok(())
    }

    fn block(&mut self, class: &str, value: &impl Serialize) -> io::Result<()> {
        self.buf.clear();
        serde_json::to_writer(&mut self.buf, value)?;
        write!(
            self.out,
            "<script type=\"application/json\" class=\"{class}\">"
        )?;
        write_script_safe(&mut self.out, &self.buf)?;
        self.out.write_all(b"</script>\n")
    }
}

impl<W: Write> Sink for HtmlSink<W> {
    fn details(&self) -> bool {
        true
    }

    fn trace(&mut self, trace: &Trace, reader: &mut Reader) -> io::Result<()> {
        self.start()?;
        self.tables(reader)?;
        let json = JsonTrace::new(trace);
        self.block("ft-trace", &json)
    }

    fn finish(&mut self, reader: &mut Reader) -> io::Result<()> {
        self.start()?;
        self.tables(reader)?;
        let (_, tail) = TEMPLATE
            .split_once(DATA_MARK)
            .expect("the template has a data mark");
        self.out
            .write_all(tail.replace("{{SCRIPT}}", SCRIPT).as_bytes())?;
        self.out.flush()
    }

    fn path(&self) -> Option<&Path> {
        Some(&self.path)
    }
}

/// JSON inside `<script>`: `<` only occurs inside strings, where `\u003c`
/// means the same, so no `</script>` or `<!--` can end the block early.
fn write_script_safe(out: &mut impl Write, json: &[u8]) -> io::Result<()> {
    for chunk in json.split_inclusive(|&b| b == b'<') {
        match chunk.strip_suffix(b"<") {
            Some(head) => {
                out.write_all(head)?;
                out.write_all(b"\\u003c")?;
            }
            None => out.write_all(chunk)?,
        }
    }
    Ok(())
}

fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn pairs(attributes: &Attributes) -> Vec<(&str, serde_json::Value)> {
    attributes
        .iter()
        .map(|(k, v)| (k.as_str(), v.to_json()))
        .collect()
}

#[derive(Serialize)]
struct JsonResource<'a> {
    id: usize,
    attributes: Vec<(&'a str, serde_json::Value)>,
}

#[derive(Serialize)]
struct JsonScope<'a> {
    id: usize,
    name: &'a str,
    version: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct JsonTrace<'a> {
    id: String,
    run: Option<&'a str>,
    run_name: Option<&'a str>,
    /// Nanoseconds since the epoch, as a string (beyond a JS number).
    start: String,
    start_ms: f64,
    duration: u64,
    /// Spans of the trace in the file, before filters.
    total: usize,
    spans: Vec<JsonSpan<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct JsonSpan<'a> {
    id: String,
    /// Index of the parent, -1 for none.
    parent: i64,
    depth: u32,
    name: &'a str,
    kind: &'static str,
    /// Nanoseconds from the trace's start.
    start: u64,
    duration: u64,
    status: u8,
    #[serde(skip_serializing_if = "str::is_empty")]
    message: &'a str,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    critical: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    marks: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    remote_parent: Option<String>,
    attributes: Vec<(&'a str, serde_json::Value)>,
    events: Vec<JsonEvent<'a>>,
    links: Vec<JsonLink<'a>>,
    resource: u32,
    scope: u32,
}

#[derive(Serialize)]
struct JsonEvent<'a> {
    time: u64,
    name: &'a str,
    attributes: Vec<(&'a str, serde_json::Value)>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct JsonLink<'a> {
    trace_id: String,
    span_id: String,
    attributes: Vec<(&'a str, serde_json::Value)>,
}

impl<'a> JsonTrace<'a> {
    fn new(trace: &'a Trace) -> Self {
        let spans = trace
            .spans
            .iter()
            .enumerate()
            .map(|(i, s)| JsonSpan::new(trace, i, s))
            .collect();
        JsonTrace {
            id: format!("{:032x}", trace.id),
            run: trace.run_id(),
            run_name: trace.run_name(),
            start: trace.start.to_string(),
            start_ms: trace.start as f64 / 1e6,
            duration: trace.duration(),
            total: trace.total_spans,
            spans,
        }
    }
}

impl<'a> JsonSpan<'a> {
    fn new(trace: &'a Trace, i: usize, s: &'a Span) -> Self {
        JsonSpan {
            id: format!("{:016x}", s.span_id),
            parent: match trace.parent[i] {
                NO_PARENT => -1,
                p => i64::from(p),
            },
            depth: trace.depth[i],
            name: &s.name,
            kind: kind_name(s.kind),
            start: s.start.saturating_sub(trace.start),
            duration: s.duration(),
            status: s.status,
            message: &s.message,
            critical: trace.critical[i],
            marks: s.marks.words(),
            remote_parent: trace.outside_parent(i).map(|p| format!("{p:016x}")),
            attributes: pairs(&s.attributes),
            events: s
                .events
                .iter()
                .map(|e| JsonEvent {
                    time: e.time.saturating_sub(trace.start),
                    name: &e.name,
                    attributes: pairs(&e.attributes),
                })
                .collect(),
            links: s
                .links
                .iter()
                .map(|l| JsonLink {
                    trace_id: format!("{:032x}", l.trace_id),
                    span_id: format!("{:016x}", l.span_id),
                    attributes: pairs(&l.attributes),
                })
                .collect(),
            resource: s.resource,
            scope: s.scope,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::view::model::Value;
    use crate::view::trace::tests::span;

    #[test]
    fn script_blocks_cannot_be_closed_by_data() {
        let mut out = Vec::new();
        write_script_safe(&mut out, br#"{"a":"</script><!--x"}"#).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"a":"\u003c/script>\u003c!--x"}"#
        );
    }

    #[test]
    fn writes_one_page_with_everything_inlined() {
        let mut s = span(1, 0, "root </script>", 0, 10);
        s.attributes.push(("k".into(), Value::Str("<b>".into())));
        let trace = Trace::build(7, vec![s]);
        let mut reader = Reader::new(true);
        let mut sink = HtmlSink::new(Vec::new(), "x.html".into(), "a <file>");
        sink.trace(&trace, &mut reader).unwrap();
        sink.finish(&mut reader).unwrap();
        let page = String::from_utf8(sink.out).unwrap();
        assert!(page.starts_with("<!DOCTYPE html>"));
        assert!(page.contains("<title>a &lt;file&gt; · flowtrace view</title>"));
        assert!(page.contains("default-src 'none'"), "no network");
        assert!(!page.contains("{{"), "every placeholder filled");
        assert!(!page.contains("src=\"http") && !page.contains("href=\"http"));
        assert_eq!(page.matches("class=\"ft-trace\"").count(), 1);
        assert!(page.contains(r#""name":"root \u003c/script>""#));
        assert!(page.ends_with("</html>\n"));
    }
}
