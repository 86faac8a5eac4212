//! The console exporter: each trace printed to stdout as an indented tree once
//! its local root has ended, so a developer sees the shape of a run without a
//! collector. [`render_tree`] is the format, public so it can be tested and
//! reused.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::io::Write;
use std::sync::Mutex;
use std::time::Duration;

use flowtrace::attributes::{TASK_CACHED, TASK_CANCELLED, TASK_REPLAYED, TASK_TIMEOUT};
use opentelemetry::trace::{SpanId, Status, TraceId};
use opentelemetry::{KeyValue, Value};
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{SpanData, SpanExporter};

/// Renders spans as one indented tree per trace: span name, duration, an
/// `ERROR` mark with the status description, and events as `· name` lines
/// (with their fields, leaving out `level`, `target` and `code.*`).
///
/// Traces are ordered by their first start time, children by start time. A
/// span whose parent is not among `spans` is drawn as a root (with the
/// parent's id when it has one, e.g. a remote parent).
///
/// ```
/// use flowtrace_telemetry::render_tree;
/// use opentelemetry::trace::{Tracer, TracerProvider as _};
/// use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
///
/// let exporter = InMemorySpanExporter::default();
/// let provider = SdkTracerProvider::builder().with_simple_exporter(exporter.clone()).build();
/// let tracer = provider.tracer("example");
/// tracer.in_span("parent", |_| tracer.in_span("child", |_| {}));
///
/// let tree = render_tree(&exporter.get_finished_spans().unwrap());
/// let lines: Vec<&str> = tree.lines().collect();
/// assert!(lines[0].starts_with("trace "));
/// assert!(lines[1].starts_with("parent  "));
/// assert!(lines[2].starts_with("└─ child  "));
/// ```
pub fn render_tree(spans: &[SpanData]) -> String {
    let mut by_trace: Vec<(TraceId, Vec<&SpanData>)> = Vec::new();
    for span in spans {
        let trace_id = span.span_context.trace_id();
        match by_trace.iter_mut().find(|(id, _)| *id == trace_id) {
            Some((_, members)) => members.push(span),
            None => by_trace.push((trace_id, vec![span])),
        }
    }
    by_trace.sort_by_key(|(_, members)| members.iter().map(|s| s.start_time).min());

    let mut out = String::new();
    for (trace_id, members) in by_trace {
        let ids: HashSet<SpanId> = members.iter().map(|s| s.span_context.span_id()).collect();
        let mut children: HashMap<SpanId, Vec<&SpanData>> = HashMap::new();
        let mut roots = Vec::new();
        for span in members {
            if ids.contains(&span.parent_span_id)
                && span.parent_span_id != span.span_context.span_id()
            {
                children.entry(span.parent_span_id).or_default().push(span);
            } else {
                roots.push(span);
            }
        }
        for list in children.values_mut() {
            list.sort_by_key(|s| s.start_time);
        }
        roots.sort_by_key(|s| s.start_time);

        let _ = writeln!(out, "trace {trace_id}");
        let mut seen = HashSet::new();
        for root in roots {
            let parent = (root.parent_span_id != SpanId::INVALID).then_some(root.parent_span_id);
            render_span(&mut out, root, &children, "", None, parent, &mut seen);
        }
    }
    out
}

/// Draws `span` and its subtree. `last` is `None` for a root, else whether
/// it is its parent's last child (└─ rather than ├─).
fn render_span(
    out: &mut String,
    span: &SpanData,
    children: &HashMap<SpanId, Vec<&SpanData>>,
    prefix: &str,
    last: Option<bool>,
    outside_parent: Option<SpanId>,
    seen: &mut HashSet<SpanId>,
) {
    // Span ids come from outside: a cycle must not recurse forever.
    if !seen.insert(span.span_context.span_id()) {
        return;
    }
    let connector = match last {
        None => "",
        Some(true) => "└─ ",
        Some(false) => "├─ ",
    };
    let duration = span
        .end_time
        .duration_since(span.start_time)
        .unwrap_or_default();
    let _ = write!(
        out,
        "{prefix}{connector}{}  {}",
        span.name,
        format_duration(duration)
    );
    // Lifecycle flags a reader of the tree wants to see at a glance.
    for (key, mark) in [
        (TASK_CACHED, "cached"),
        (TASK_REPLAYED, "replayed"),
        (TASK_TIMEOUT, "timeout"),
        (TASK_CANCELLED, "cancelled"),
    ] {
        let set = span
            .attributes
            .iter()
            .any(|kv| kv.key.as_str() == key && kv.value == opentelemetry::Value::Bool(true));
        if set {
            let _ = write!(out, "  [{mark}]");
        }
    }
    if let Status::Error { description } = &span.status {
        if description.is_empty() {
            out.push_str("  [ERROR]");
        } else {
            let _ = write!(out, "  [ERROR: {description}]");
        }
    }
    if let Some(parent) = outside_parent {
        let _ = write!(out, "  (parent {parent})");
    }
    out.push('\n');

    let child_prefix = match last {
        None => prefix.to_owned(),
        Some(true) => format!("{prefix}   "),
        Some(false) => format!("{prefix}│  "),
    };
    for event in &span.events.events {
        let _ = write!(out, "{child_prefix}· {}", event.name);
        write_fields(out, &event.attributes);
        out.push('\n');
    }
    let kids = children
        .get(&span.span_context.span_id())
        .map_or(&[][..], Vec::as_slice);
    for (i, child) in kids.iter().enumerate() {
        let is_last = i + 1 == kids.len();
        render_span(
            out,
            child,
            children,
            &child_prefix,
            Some(is_last),
            None,
            seen,
        );
    }
}

/// `  [WARN] k=v k2=v2` for an event: the level only when it is worth
/// noticing, and none of the bookkeeping attributes.
fn write_fields(out: &mut String, attributes: &[KeyValue]) {
    for kv in attributes {
        if kv.key.as_str() == "level" {
            let level = kv.value.as_str();
            if level == "WARN" || level == "ERROR" {
                let _ = write!(out, " [{level}]");
            }
        }
    }
    for kv in attributes {
        let key = kv.key.as_str();
        if key == "level" || key == "target" || key.starts_with("code.") {
            continue;
        }
        match &kv.value {
            Value::String(s) => {
                let _ = write!(out, " {key}={:?}", s.as_str());
            }
            other => {
                let _ = write!(out, " {key}={other}");
            }
        }
    }
}

/// µs below a millisecond, ms below a second, then seconds.
fn format_duration(d: Duration) -> String {
    if d < Duration::from_millis(1) {
        format!("{} µs", d.as_micros())
    } else if d < Duration::from_secs(1) {
        format!("{:.1} ms", d.as_secs_f64() * 1000.0)
    } else {
        format!("{:.2} s", d.as_secs_f64())
    }
}

/// Spans kept while their trace's local root is still running. Past this many
/// (a root that never ends, a leak), everything buffered is printed so memory
/// stays bounded.
const MAX_BUFFERED_SPANS: usize = 8192;

/// Buffers spans per trace and prints a trace's tree when its local root —
/// a span with no parent, or with a remote parent — has ended; prints the rest
/// on flush and shutdown.
pub(crate) struct ConsoleExporter {
    buffer: Mutex<Buffer>,
    out: Mutex<Box<dyn Write + Send>>,
}

#[derive(Default)]
struct Buffer {
    traces: HashMap<TraceId, Vec<SpanData>>,
    len: usize,
    shut_down: bool,
}

impl std::fmt::Debug for ConsoleExporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsoleExporter").finish_non_exhaustive()
    }
}

impl ConsoleExporter {
    pub(crate) fn stdout() -> Self {
        Self::new(Box::new(std::io::stdout()))
    }

    pub(crate) fn new(out: Box<dyn Write + Send>) -> Self {
        Self {
            buffer: Mutex::new(Buffer::default()),
            out: Mutex::new(out),
        }
    }

    /// Adds `batch` and returns the spans whose trees are now complete.
    fn complete(&self, batch: Vec<SpanData>) -> Result<Vec<SpanData>, OTelSdkError> {
        let mut buffer = self.lock_buffer()?;
        if buffer.shut_down {
            return Err(OTelSdkError::AlreadyShutdown);
        }
        let mut ready = Vec::new();
        let mut roots = Vec::new();
        for span in batch {
            let trace_id = span.span_context.trace_id();
            if span.parent_span_id == SpanId::INVALID || span.parent_span_is_remote {
                roots.push((trace_id, span.span_context.span_id()));
            }
            buffer.traces.entry(trace_id).or_default().push(span);
            buffer.len += 1;
        }
        for (trace_id, root) in roots {
            let Some(spans) = buffer.traces.remove(&trace_id) else {
                continue;
            };
            let (subtree, rest) = split_subtree(spans, root);
            buffer.len -= subtree.len();
            ready.extend(subtree);
            if !rest.is_empty() {
                buffer.traces.insert(trace_id, rest);
            }
        }
        if buffer.len > MAX_BUFFERED_SPANS {
            ready.extend(buffer.drain());
        }
        Ok(ready)
    }

    fn lock_buffer(&self) -> Result<std::sync::MutexGuard<'_, Buffer>, OTelSdkError> {
        self.buffer
            .lock()
            .map_err(|_| OTelSdkError::InternalFailure("console exporter lock poisoned".into()))
    }

    fn print(&self, spans: &[SpanData]) -> OTelSdkResult {
        if spans.is_empty() {
            return Ok(());
        }
        let text = render_tree(spans);
        let mut out = self
            .out
            .lock()
            .map_err(|_| OTelSdkError::InternalFailure("console exporter lock poisoned".into()))?;
        // `write_all`, not `println!`: a closed stdout (`| head`) is an
        // export error, not a panic.
        out.write_all(text.as_bytes())
            .and_then(|()| out.flush())
            .map_err(|e| OTelSdkError::InternalFailure(format!("writing to the console: {e}")))
    }

    fn print_all(&self) -> OTelSdkResult {
        let spans = self.lock_buffer()?.drain();
        self.print(&spans)
    }
}

impl Buffer {
    fn drain(&mut self) -> Vec<SpanData> {
        self.len = 0;
        self.traces.drain().flat_map(|(_, spans)| spans).collect()
    }
}

/// Splits `spans` into `root`'s subtree and everything else.
fn split_subtree(spans: Vec<SpanData>, root: SpanId) -> (Vec<SpanData>, Vec<SpanData>) {
    let mut members = HashSet::from([root]);
    // Parents can be listed after their children: repeat until nothing joins.
    loop {
        let before = members.len();
        for span in &spans {
            if members.contains(&span.parent_span_id) && span.span_context.span_id() != root {
                members.insert(span.span_context.span_id());
            }
        }
        if members.len() == before {
            break;
        }
    }
    spans
        .into_iter()
        .partition(|s| members.contains(&s.span_context.span_id()))
}

impl SpanExporter for ConsoleExporter {
    fn export(
        &self,
        batch: Vec<SpanData>,
    ) -> impl std::future::Future<Output = OTelSdkResult> + Send {
        let result = self.complete(batch).and_then(|ready| self.print(&ready));
        std::future::ready(result)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.print_all()
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        let spans = {
            let mut buffer = self.lock_buffer()?;
            if buffer.shut_down {
                return Err(OTelSdkError::AlreadyShutdown);
            }
            buffer.shut_down = true;
            buffer.drain()
        };
        self.print(&spans)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{span, span_in};
    use opentelemetry::trace::Event;
    use std::sync::Arc;
    use std::time::SystemTime;

    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Shared {
        fn take(&self) -> String {
            String::from_utf8(std::mem::take(&mut *self.0.lock().unwrap())).unwrap()
        }
    }

    fn export(exporter: &ConsoleExporter, batch: Vec<SpanData>) {
        futures::executor::block_on(exporter.export(batch)).unwrap();
    }

    fn event(name: &'static str, attributes: Vec<KeyValue>) -> Event {
        Event::new(name, SystemTime::UNIX_EPOCH, attributes, 0)
    }

    #[test]
    fn tree_format() {
        let root = span("workflow_run", 1, 0);
        let mut main = span("main", 2, 1);
        main.events.events.push(event(
            "fetching",
            vec![
                KeyValue::new("level", "INFO"),
                KeyValue::new("target", "app"),
                KeyValue::new("code.line.number", 3_i64),
                KeyValue::new("url", "https://a"),
                KeyValue::new("n", 2_i64),
            ],
        ));
        let mut failed = span("fetch", 3, 2);
        failed.status = Status::error("404");
        failed
            .events
            .events
            .push(event("skipped", vec![KeyValue::new("level", "WARN")]));
        let mut ok = span("fetch", 4, 2);
        ok.end_time = ok.start_time + Duration::from_micros(250);
        let parse = span("parse", 5, 4);
        // Given out of order: the tree comes from parent ids and start times.
        let tree = render_tree(&[parse, ok, failed, main, root]);
        let expected = "\
trace 0000000000000000000000000000002a
workflow_run  10.0 ms
└─ main  10.0 ms
   · fetching url=\"https://a\" n=2
   ├─ fetch  10.0 ms  [ERROR: 404]
   │  · skipped [WARN]
   └─ fetch  250 µs
      └─ parse  10.0 ms
";
        assert_eq!(
            tree, expected,
            "names, durations, error marks, events, nesting"
        );
    }

    #[test]
    fn orphans_and_several_traces() {
        let mut remote_child = span_in(7, "handler", 9, 77);
        remote_child.parent_span_is_remote = true;
        let mut long = span_in(8, "slow", 1, 0);
        long.end_time = long.start_time + Duration::from_millis(1500);
        let tree = render_tree(&[long, remote_child]);
        let expected = "\
trace 00000000000000000000000000000008
slow  1.50 s
trace 00000000000000000000000000000007
handler  10.0 ms  (parent 000000000000004d)
";
        assert_eq!(
            tree, expected,
            "traces by start time; a missing parent is named"
        );
    }

    #[test]
    fn a_cycle_does_not_hang() {
        let a = span("a", 1, 2);
        let b = span("b", 2, 1);
        let tree = render_tree(&[a, b]);
        assert_eq!(
            tree, "trace 0000000000000000000000000000002a\n",
            "no root, nothing drawn, no hang"
        );
    }

    #[test]
    fn prints_a_trace_when_its_root_ends() {
        let out = Shared::default();
        let exporter = ConsoleExporter::new(Box::new(out.clone()));
        export(&exporter, vec![span("child", 2, 1)]);
        assert_eq!(out.take(), "", "a child alone waits for its root");
        export(&exporter, vec![span_in(9, "other", 5, 4)]);
        export(&exporter, vec![span("root", 1, 0)]);
        let printed = out.take();
        assert!(
            printed.contains("root") && printed.contains("└─ child"),
            "{printed}"
        );
        assert!(
            !printed.contains("other"),
            "another trace's spans stay buffered"
        );

        let mut remote = span_in(3, "continued", 1, 99);
        remote.parent_span_is_remote = true;
        export(&exporter, vec![remote]);
        assert!(
            out.take().contains("continued"),
            "a span with a remote parent is a local root"
        );

        exporter.force_flush().unwrap();
        assert!(out.take().contains("other"), "flush prints what is left");
        export(&exporter, vec![span("late", 8, 1)]);
        exporter.shutdown().unwrap();
        assert!(out.take().contains("late"), "shutdown prints what is left");
        assert!(exporter.shutdown().is_err(), "second shutdown reports it");
    }

    /// What `Telemetry::force_flush` does: a flush of the batch processor
    /// in front of the console exporter prints the trees still waiting for
    /// their root, not only what was queued.
    #[test]
    fn a_processor_flush_prints_what_the_console_buffers() {
        use crate::export::Sdk;
        use crate::processor::{Processor, Settings, WhenFull};
        use opentelemetry_sdk::trace::SpanProcessor as _;

        let out = Shared::default();
        let console = ConsoleExporter::new(Box::new(out.clone()));
        let settings = Settings {
            max_queue_size: 16,
            max_export_batch_size: 16,
            schedule_delay: Duration::from_secs(60),
            export_timeout: Duration::from_secs(5),
            when_full: WhenFull::Drop,
            io_thread: false,
            max_in_flight: 1,
        };
        let processor = Processor::start(settings, move || Ok(Sdk::local(console))).unwrap();
        processor.on_end(span("child", 2, 1));
        processor.force_flush().unwrap();
        let printed = out.take();
        assert!(printed.contains("child"), "flushed: {printed:?}");
        processor.shutdown().unwrap();
    }

    #[test]
    fn write_errors_are_export_errors() {
        struct Broken;
        impl Write for Broken {
            fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
                Err(std::io::ErrorKind::BrokenPipe.into())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let exporter = ConsoleExporter::new(Box::new(Broken));
        let result = futures::executor::block_on(exporter.export(vec![span("root", 1, 0)]));
        assert!(result.is_err(), "a closed stdout is an error, not a panic");
    }

    #[test]
    fn buffer_is_bounded() {
        let out = Shared::default();
        let exporter = ConsoleExporter::new(Box::new(out.clone()));
        let orphans: Vec<SpanData> = (0..=MAX_BUFFERED_SPANS as u64)
            .map(|i| span("orphan", i + 10, 5))
            .collect();
        export(&exporter, orphans);
        assert!(
            !out.take().is_empty(),
            "past the bound the buffer is printed"
        );
        assert_eq!(exporter.lock_buffer().unwrap().len, 0, "and emptied");
    }

    #[test]
    fn durations() {
        let cases = [
            (Duration::from_micros(999), "999 µs", "below a millisecond"),
            (
                Duration::from_micros(1500),
                "1.5 ms",
                "milliseconds with one decimal",
            ),
            (Duration::from_millis(2500), "2.50 s", "seconds"),
        ];
        for (d, expected, reason) in cases {
            assert_eq!(format_duration(d), expected, "{reason}");
        }
    }
}
