//! A `tracing` layer for the events tracing-opentelemetry drops: a
//! `tracing::info!` with no `tracing` span around it. Inside a `#[traced]`
//! task such an event belongs to the task span, which flowtrace keeps as
//! `opentelemetry::Context::current()` while the task is polled; this layer
//! records it there as a span event.

use std::borrow::Cow;

use flowtrace::attributes::{CODE_FILE_PATH, CODE_LINE_NUMBER};
use opentelemetry::trace::TraceContextExt as _;
use opentelemetry::{Context, KeyValue};
use tracing_core::field::{Field, Visit};
use tracing_core::{Event, Subscriber};
use tracing_subscriber::layer::{Context as LayerContext, Layer};
use tracing_subscriber::registry::LookupSpan;

/// The flowtrace `tracing` layer: records span-less `tracing` events on the
/// current OpenTelemetry span (the current `#[traced]` task's span).
///
/// [`init`](super::init) installs it; add it yourself when you compose your
/// own subscriber, next to tracing-opentelemetry's layer:
///
/// ```
/// use tracing_subscriber::layer::SubscriberExt as _;
///
/// let subscriber = tracing_subscriber::registry().with(flowtrace_telemetry::layer());
/// tracing::subscriber::with_default(subscriber, || {
///     tracing::info!(user = "ada", "signed in"); // lands on the current task span, if any
/// });
/// ```
///
/// The event name is the `message` field (else the event's name); its
/// attributes are `level`, `target`, `code.file.path`, `code.line.number` and
/// every other field (strings, integers, floats, booleans; anything else as
/// its `Debug` text). Events inside a `tracing` span are left to
/// tracing-opentelemetry, so nothing is recorded twice. The SDK's own
/// diagnostics (`opentelemetry*` targets) are skipped.
#[derive(Clone, Copy, Debug, Default)]
pub struct FlowtraceLayer {
    _private: (),
}

/// Creates the [`FlowtraceLayer`].
pub fn layer() -> FlowtraceLayer {
    FlowtraceLayer::default()
}

impl<S> Layer<S> for FlowtraceLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_event(&self, event: &Event<'_>, ctx: LayerContext<'_, S>) {
        // The same test tracing-opentelemetry uses to pick the events it records.
        let in_span = event.parent().and_then(|id| ctx.span(id)).is_some()
            || (event.is_contextual() && ctx.lookup_current().is_some());
        let meta = event.metadata();
        if in_span
            || meta.target().starts_with("opentelemetry")
            || Context::is_current_telemetry_suppressed()
        {
            return;
        }
        Context::map_current(|cx| {
            let span = cx.span();
            // Checked before visiting any field: no work when nothing records.
            if !span.is_recording() {
                return;
            }
            let mut fields = Fields {
                message: None,
                attributes: Vec::with_capacity(4 + meta.fields().len()),
            };
            fields
                .attributes
                .push(KeyValue::new("level", meta.level().as_str()));
            fields
                .attributes
                .push(KeyValue::new("target", meta.target().to_owned()));
            if let Some(file) = meta.file() {
                fields
                    .attributes
                    .push(KeyValue::new(CODE_FILE_PATH, file.to_owned()));
            }
            if let Some(line) = meta.line() {
                fields
                    .attributes
                    .push(KeyValue::new(CODE_LINE_NUMBER, i64::from(line)));
            }
            event.record(&mut fields);
            let name = match fields.message {
                Some(message) => Cow::Owned(message),
                None => Cow::Borrowed(meta.name()),
            };
            span.add_event(name, fields.attributes);
        });
    }
}

/// Collects an event's fields as OpenTelemetry attributes.
struct Fields {
    message: Option<String>,
    attributes: Vec<KeyValue>,
}

impl Fields {
    fn push(&mut self, field: &Field, value: impl Into<opentelemetry::Value>) {
        self.attributes
            .push(KeyValue::new(field.name(), value.into()));
    }

    fn push_text(&mut self, field: &Field, text: String) {
        if field.name() == "message" {
            self.message = Some(text);
        } else {
            self.push(field, text);
        }
    }
}

impl Visit for Fields {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.push(field, value);
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.push(field, value);
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        // OpenTelemetry has no unsigned integers: keep the number when it
        // fits, its text when it does not (rather than wrapping it).
        match i64::try_from(value) {
            Ok(v) => self.push(field, v),
            Err(_) => self.push(field, value.to_string()),
        }
    }

    fn record_i128(&mut self, field: &Field, value: i128) {
        match i64::try_from(value) {
            Ok(v) => self.push(field, v),
            Err(_) => self.push(field, value.to_string()),
        }
    }

    fn record_u128(&mut self, field: &Field, value: u128) {
        match i64::try_from(value) {
            Ok(v) => self.push(field, v),
            Err(_) => self.push(field, value.to_string()),
        }
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.push(field, value);
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.push_text(field, value.to_owned());
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.push_text(field, value.to_string());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        // `%x` fields and `message` arrive here; their Debug is their Display.
        self.push_text(field, format!("{value:?}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::Value;
    use opentelemetry::trace::{Tracer, TracerProvider as _};
    use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
    use tracing_subscriber::layer::SubscriberExt as _;

    /// A provider recording into memory, and a subscriber with both layers.
    fn setup() -> (
        SdkTracerProvider,
        InMemorySpanExporter,
        impl Subscriber + Send + Sync,
    ) {
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(exporter.clone())
            .build();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("tracing")))
            .with(layer());
        (provider, exporter, subscriber)
    }

    fn attr<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a Value> {
        attributes
            .iter()
            .find(|kv| kv.key.as_str() == key)
            .map(|kv| &kv.value)
    }

    fn finished(exporter: &InMemorySpanExporter, name: &str) -> SpanData {
        let spans = exporter.get_finished_spans().unwrap();
        spans
            .into_iter()
            .find(|s| s.name == name)
            .expect("span exported")
    }

    #[test]
    fn a_spanless_event_lands_on_the_current_otel_span() {
        let (provider, exporter, subscriber) = setup();
        let tracer = provider.tracer("task");
        tracing::subscriber::with_default(subscriber, || {
            tracer.in_span("task", |_| {
                tracing::warn!(
                    url = %"https://a",
                    attempt = 2_u64,
                    huge = u64::MAX,
                    ratio = 0.5,
                    ok = false,
                    neg = -3_i64,
                    "fetching"
                );
                tracing::info!(answer = 42);
            });
        });
        let span = finished(&exporter, "task");
        assert_eq!(span.events.events.len(), 2, "both events recorded");
        let event = &span.events.events[0];
        assert_eq!(event.name, "fetching", "the message is the event name");
        let a = &event.attributes;
        assert_eq!(attr(a, "level"), Some(&Value::from("WARN")), "level");
        assert_eq!(
            attr(a, "target"),
            Some(&Value::from(module_path!())),
            "target"
        );
        assert_eq!(
            attr(a, "code.file.path"),
            Some(&Value::from(file!())),
            "file"
        );
        assert!(
            matches!(attr(a, "code.line.number"), Some(Value::I64(n)) if *n > 0),
            "line"
        );
        assert_eq!(
            attr(a, "url"),
            Some(&Value::from("https://a")),
            "Display field as text"
        );
        assert_eq!(
            attr(a, "attempt"),
            Some(&Value::I64(2)),
            "u64 that fits is an int"
        );
        assert_eq!(
            attr(a, "huge"),
            Some(&Value::from(u64::MAX.to_string())),
            "u64 that does not fit is text, not wrapped"
        );
        assert_eq!(attr(a, "ratio"), Some(&Value::F64(0.5)), "float");
        assert_eq!(attr(a, "ok"), Some(&Value::Bool(false)), "bool");
        assert_eq!(attr(a, "neg"), Some(&Value::I64(-3)), "i64");
        assert!(
            attr(a, "message").is_none(),
            "message is the name, not an attribute"
        );
        assert!(
            span.events.events[1].name.starts_with("event "),
            "without a message the event's own name is used: {}",
            span.events.events[1].name
        );
    }

    #[test]
    fn events_inside_a_tracing_span_are_not_recorded_twice() {
        let (provider, exporter, subscriber) = setup();
        let tracer = provider.tracer("task");
        tracing::subscriber::with_default(subscriber, || {
            tracer.in_span("task", |_| {
                let instrumented = tracing::info_span!("instrumented");
                instrumented.in_scope(|| tracing::info!("inside"));
                tracing::info!(parent: &instrumented, "explicit parent");
            });
        });
        let task = finished(&exporter, "task");
        let instrumented = finished(&exporter, "instrumented");
        assert!(task.events.events.is_empty(), "the task span got no copies");
        let names: Vec<_> = instrumented
            .events
            .events
            .iter()
            .map(|e| e.name.to_string())
            .collect();
        assert_eq!(
            names,
            ["inside", "explicit parent"],
            "tracing-opentelemetry recorded each once"
        );
        assert_eq!(
            instrumented.parent_span_id,
            task.span_context.span_id(),
            "the #[instrument]-style span nests under the current OTel span"
        );
    }

    #[test]
    fn nothing_happens_without_a_recording_span() {
        let (_provider, exporter, subscriber) = setup();
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!("no span anywhere");
            tracing::info!(target: "opentelemetry_sdk", "sdk diagnostics");
        });
        assert!(
            exporter.get_finished_spans().unwrap().is_empty(),
            "no span was made up"
        );
    }

    #[test]
    fn sdk_diagnostics_are_not_recorded_on_user_spans() {
        let (provider, exporter, subscriber) = setup();
        let tracer = provider.tracer("task");
        tracing::subscriber::with_default(subscriber, || {
            tracer.in_span("task", |_| {
                tracing::warn!(target: "opentelemetry_sdk", "BatchSpanProcessor.ExportError");
            });
        });
        assert!(
            finished(&exporter, "task").events.events.is_empty(),
            "skipped by target"
        );
    }
}
