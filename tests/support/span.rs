//! One flat, comparable shape for a span, whichever way it arrived: over OTLP
//! at the test receiver ([`from_request`]) or in the OTLP/JSON trace file
//! (`otlp_json`). Ids are lowercase hex, attribute values are strings.

use std::fmt::Write as _;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
pub use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
pub use opentelemetry_proto::tonic::trace::v1::status::StatusCode;

/// A finished span as a collector saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct Span {
    /// 32 lowercase hex digits.
    pub trace_id: String,
    /// 16 lowercase hex digits.
    pub span_id: String,
    /// 16 lowercase hex digits, or empty for a root span.
    pub parent_span_id: String,
    /// The W3C `tracestate` of the span, empty if none.
    pub trace_state: String,
    pub name: String,
    pub kind: SpanKind,
    pub status_code: StatusCode,
    pub status_message: String,
    pub start_unix_nano: u64,
    pub end_unix_nano: u64,
    /// In the order sent; values rendered by [`render_any_value`].
    pub attributes: Vec<(String, String)>,
    pub events: Vec<Event>,
    pub links: Vec<Link>,
    /// The resource's `service.name`, empty if it has none.
    pub service_name: String,
    /// All resource attributes, rendered like span attributes.
    pub resource: Vec<(String, String)>,
    /// The instrumentation scope's name.
    pub scope: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub name: String,
    pub attributes: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Link {
    pub trace_id: String,
    pub span_id: String,
    pub attributes: Vec<(String, String)>,
}

impl Span {
    /// The value of span attribute `key`, if present.
    pub fn attr(&self, key: &str) -> Option<&str> {
        lookup(&self.attributes, key)
    }

    /// The first event named `name`, if any.
    pub fn event(&self, name: &str) -> Option<&Event> {
        self.events.iter().find(|e| e.name == name)
    }

    pub fn is_root(&self) -> bool {
        self.parent_span_id.is_empty()
    }
}

impl Event {
    pub fn attr(&self, key: &str) -> Option<&str> {
        lookup(&self.attributes, key)
    }
}

fn lookup<'a>(attributes: &'a [(String, String)], key: &str) -> Option<&'a str> {
    attributes
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// The span named `name`; panics listing the names present if there is none
/// or more than one.
pub fn span_named<'a>(spans: &'a [Span], name: &str) -> &'a Span {
    let mut found = spans.iter().filter(|s| s.name == name);
    match (found.next(), found.next()) {
        (Some(span), None) => span,
        (None, _) => panic!("no span named {name:?}; spans: {}", summary(spans)),
        (Some(_), Some(_)) => panic!(
            "more than one span named {name:?}; spans: {}",
            summary(spans)
        ),
    }
}

/// The spans of one trace, in arrival order.
pub fn spans_of_trace(spans: &[Span], trace_id: &str) -> Vec<Span> {
    spans
        .iter()
        .filter(|s| s.trace_id == trace_id)
        .cloned()
        .collect()
}

/// `name(trace/span<-parent)` for each span: what a failing test prints.
pub fn summary(spans: &[Span]) -> String {
    if spans.is_empty() {
        return "(none)".to_owned();
    }
    let mut out = String::new();
    for s in spans {
        let parent = if s.is_root() {
            "root"
        } else {
            &s.parent_span_id
        };
        let _ = write!(
            out,
            "\n  {:?} trace={} span={} parent={} service={:?}",
            s.name, s.trace_id, s.span_id, parent, s.service_name
        );
    }
    out
}

/// Flattens one OTLP export request into spans.
pub fn from_request(request: &ExportTraceServiceRequest) -> Vec<Span> {
    let mut out = Vec::new();
    for rs in &request.resource_spans {
        let resource = rs
            .resource
            .as_ref()
            .map(|r| attributes(&r.attributes))
            .unwrap_or_default();
        let service_name = lookup(&resource, "service.name")
            .unwrap_or_default()
            .to_owned();
        for ss in &rs.scope_spans {
            let scope = ss
                .scope
                .as_ref()
                .map(|s| s.name.clone())
                .unwrap_or_default();
            for s in &ss.spans {
                let status = s.status.clone().unwrap_or_default();
                out.push(Span {
                    trace_id: hex(&s.trace_id),
                    span_id: hex(&s.span_id),
                    parent_span_id: hex(&s.parent_span_id),
                    trace_state: s.trace_state.clone(),
                    name: s.name.clone(),
                    kind: span_kind(s.kind),
                    status_code: status_code(status.code),
                    status_message: status.message,
                    start_unix_nano: s.start_time_unix_nano,
                    end_unix_nano: s.end_time_unix_nano,
                    attributes: attributes(&s.attributes),
                    events: s
                        .events
                        .iter()
                        .map(|e| Event {
                            name: e.name.clone(),
                            attributes: attributes(&e.attributes),
                        })
                        .collect(),
                    links: s
                        .links
                        .iter()
                        .map(|l| Link {
                            trace_id: hex(&l.trace_id),
                            span_id: hex(&l.span_id),
                            attributes: attributes(&l.attributes),
                        })
                        .collect(),
                    service_name: service_name.clone(),
                    resource: resource.clone(),
                    scope: scope.clone(),
                });
            }
        }
    }
    out
}

pub(super) fn span_kind(kind: i32) -> SpanKind {
    SpanKind::try_from(kind).unwrap_or_else(|_| panic!("span kind {kind} is not an OTLP SpanKind"))
}

pub(super) fn status_code(code: i32) -> StatusCode {
    StatusCode::try_from(code)
        .unwrap_or_else(|_| panic!("status code {code} is not an OTLP StatusCode"))
}

fn attributes(kvs: &[KeyValue]) -> Vec<(String, String)> {
    kvs.iter()
        .map(|kv| {
            let value = kv.value.as_ref().map(any_to_json).unwrap_or_default();
            (kv.key.clone(), render_any_value(value))
        })
        .collect()
}

/// An attribute value as a test compares it: a string as itself, anything
/// else as compact JSON (`42`, `true`, `1.5`, `["a","b"]`, `{"k":"v"}`); bytes
/// as base64, the way OTLP/JSON carries them.
pub fn render_any_value(value: serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s,
        other => other.to_string(),
    }
}

fn any_to_json(value: &AnyValue) -> serde_json::Value {
    use serde_json::Value as J;
    match &value.value {
        None => J::Null,
        Some(any_value::Value::StringValue(s)) => J::String(s.clone()),
        Some(any_value::Value::BoolValue(b)) => J::Bool(*b),
        Some(any_value::Value::IntValue(i)) => J::from(*i),
        Some(any_value::Value::DoubleValue(d)) => double_to_json(*d),
        Some(any_value::Value::BytesValue(b)) => J::String(base64(b)),
        // Only profiles use string tables; a span carrying one is shown as is.
        Some(any_value::Value::StringValueStrindex(i)) => {
            serde_json::json!({ "stringValueStrindex": i })
        }
        Some(any_value::Value::ArrayValue(a)) => {
            J::Array(a.values.iter().map(any_to_json).collect())
        }
        Some(any_value::Value::KvlistValue(kv)) => J::Object(
            kv.values
                .iter()
                .map(|kv| {
                    let v = kv.value.as_ref().map(any_to_json).unwrap_or_default();
                    (kv.key.clone(), v)
                })
                .collect(),
        ),
    }
}

/// NaN and the infinities have no JSON number; OTLP/JSON spells them as strings.
pub(super) fn double_to_json(d: f64) -> serde_json::Value {
    serde_json::Number::from_f64(d)
        .map(serde_json::Value::Number)
        .unwrap_or_else(|| serde_json::Value::String(d.to_string()))
}

pub fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Standard base64 with padding (RFC 4648), as OTLP/JSON encodes bytes.
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}
