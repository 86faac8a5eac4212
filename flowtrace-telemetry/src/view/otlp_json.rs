//! Reading OTLP/JSON: one `ExportTraceServiceRequest` (or `TracesData`,
//! the same shape) per line, as flowtrace's file exporter and the
//! OpenTelemetry Collector's file exporter write it. Following the OTLP/JSON
//! rules, ids are hex, enums are numbers and 64-bit integers are strings;
//! the protobuf JSON mapping's alternatives are accepted as well (snake_case
//! field names, enum names, numbers for 64-bit integers, base64 ids).

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;

use flowtrace::attributes::{
    RUN_ID, RUN_NAME, TASK_ATTEMPT, TASK_CACHED, TASK_CANCELLED, TASK_REPLAYED, TASK_TIMEOUT,
};
use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, Visitor};

use super::model::{Attributes, Event, Link, Marks, Span, Value};

/// What the viewer accepts, for messages about a file it cannot read.
pub(crate) const ACCEPTED: &str = "accepted: OTLP/JSON lines, one ExportTraceServiceRequest \
({\"resourceSpans\":[...]}) per line, as flowtrace's file exporter and the OpenTelemetry \
Collector's file exporter (format: json) write them";

/// Why a line was skipped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum LineError {
    /// Not JSON, with serde_json's reason and the column.
    Malformed { column: usize, reason: String },
    /// The line ends inside a JSON value: a write cut short.
    Truncated,
    /// JSON, but not a trace request (`what` says what it looks like).
    OtherFormat(String),
    /// A span whose ids cannot be read.
    BadSpan(String),
    /// Longer than the line limit.
    TooLong(u64),
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LineError::Malformed { column, reason } => {
                write!(f, "malformed JSON at column {column}: {reason}")
            }
            LineError::Truncated => f.write_str("truncated: the line ends inside a JSON value"),
            LineError::OtherFormat(what) => write!(f, "not OTLP/JSON spans: {what}"),
            LineError::BadSpan(why) => write!(f, "bad span: {why}"),
            LineError::TooLong(limit) => write!(f, "longer than {limit} bytes"),
        }
    }
}

/// Turns lines into [`Span`]s; holds the resource and scope tables the
/// spans point into.
#[derive(Debug, Default)]
pub(crate) struct Reader {
    keep_details: bool,
    pub(crate) resources: Vec<Attributes>,
    resource_index: HashMap<String, u32>,
    pub(crate) scopes: Vec<(String, String)>,
    scope_index: HashMap<(String, String), u32>,
    /// Resources and scopes added since the last [`Reader::take_new`].
    new_resources: usize,
}

impl Reader {
    /// `keep_details`: keep attributes, events and links (the HTML page);
    /// without, only what the terminal draws.
    pub(crate) fn new(keep_details: bool) -> Self {
        Self {
            keep_details,
            ..Self::default()
        }
    }

    /// The ids of resources added since the last call.
    pub(crate) fn take_new_resources(&mut self) -> std::ops::Range<usize> {
        let range = self.new_resources..self.resources.len();
        self.new_resources = self.resources.len();
        range
    }

    /// Parses one line, appending its spans to `out`. A blank line is no
    /// spans. On error nothing is appended.
    pub(crate) fn parse_line(&mut self, line: &[u8], out: &mut Vec<Span>) -> Result<(), LineError> {
        if line.iter().all(u8::is_ascii_whitespace) {
            return Ok(());
        }
        let request: Request = serde_json::from_slice(line).map_err(|e| {
            if e.is_eof() {
                LineError::Truncated
            } else if e.is_data() {
                LineError::OtherFormat(other_format(line))
            } else {
                LineError::Malformed {
                    column: e.column(),
                    reason: strip_position(&e.to_string()),
                }
            }
        })?;
        let Some(resource_spans) = request.resource_spans else {
            let what = if request.resource_logs.is_some() {
                "this line holds OTLP logs (resourceLogs)".to_owned()
            } else if request.resource_metrics.is_some() {
                "this line holds OTLP metrics (resourceMetrics)".to_owned()
            } else {
                other_format(line)
            };
            return Err(LineError::OtherFormat(what));
        };
        let first = out.len();
        let result = self.convert(resource_spans, out);
        if result.is_err() {
            out.truncate(first);
        }
        result
    }

    fn convert(
        &mut self,
        request: Vec<ResourceSpans>,
        out: &mut Vec<Span>,
    ) -> Result<(), LineError> {
        for rs in request {
            let resource = self.resource(rs.resource.map(|r| r.attributes).unwrap_or_default());
            for ss in rs.scope_spans.into_iter().flatten() {
                let scope = ss.scope.unwrap_or_default();
                let scope = self.scope(scope.name.into_owned(), scope.version.into_owned());
                for span in ss.spans {
                    out.push(self.span(span, resource, scope)?);
                }
            }
        }
        Ok(())
    }

    fn resource(&mut self, attributes: Vec<KeyValue<'_>>) -> u32 {
        let attributes = attributes_of(attributes);
        let key = format!("{attributes:?}");
        if let Some(&id) = self.resource_index.get(&key) {
            return id;
        }
        let id = self.resources.len() as u32;
        self.resources.push(attributes);
        self.resource_index.insert(key, id);
        id
    }

    fn scope(&mut self, name: String, version: String) -> u32 {
        let key = (name, version);
        if let Some(&id) = self.scope_index.get(&key) {
            return id;
        }
        let id = self.scopes.len() as u32;
        self.scopes.push(key.clone());
        self.scope_index.insert(key, id);
        id
    }

    fn span(&self, span: RawSpan<'_>, resource: u32, scope: u32) -> Result<Span, LineError> {
        let trace_id = trace_id(&span.trace_id).ok_or_else(|| {
            LineError::BadSpan(format!("traceId {:?} is not 32 hex digits", span.trace_id))
        })?;
        let span_id = span_id(&span.span_id)
            .filter(|&id| id != 0)
            .ok_or_else(|| {
                LineError::BadSpan(format!("spanId {:?} is not 16 hex digits", span.span_id))
            })?;
        let parent_id = if span.parent_span_id.is_empty() {
            0
        } else {
            self::span_id(&span.parent_span_id).ok_or_else(|| {
                LineError::BadSpan(format!(
                    "parentSpanId {:?} is not 16 hex digits",
                    span.parent_span_id
                ))
            })?
        };
        let mut marks = Marks::default();
        let mut run_id = None;
        let mut run_name = None;
        for kv in &span.attributes {
            let Some(value) = &kv.value else { continue };
            match kv.key.as_ref() {
                TASK_ATTEMPT => {
                    marks.attempt = value.as_i64().and_then(|n| u32::try_from(n).ok());
                }
                TASK_TIMEOUT => marks.timeout |= value.is_true(),
                TASK_CANCELLED => marks.cancelled |= value.is_true(),
                TASK_CACHED => marks.cached |= value.is_true(),
                TASK_REPLAYED => marks.replayed |= value.is_true(),
                RUN_ID => run_id = value.string_value.as_deref().map(str::to_owned),
                RUN_NAME => {
                    run_name = value.string_value.as_deref().map(str::to_owned);
                }
                _ => {}
            }
        }
        marks.retried = span.events.iter().filter(|e| e.name == "retry").count() as u32;
        let status = span.status.unwrap_or_default();
        let (attributes, events, links) = if self.keep_details {
            let attributes = attributes_of(span.attributes);
            let events = span
                .events
                .into_iter()
                .map(|e| Event {
                    time: e.time_unix_nano,
                    name: e.name.into_owned(),
                    attributes: attributes_of(e.attributes),
                })
                .collect();
            let mut links = Vec::with_capacity(span.links.len());
            for l in span.links {
                // A link that cannot be resolved is still shown, pointing nowhere.
                links.push(Link {
                    trace_id: self::trace_id(&l.trace_id).unwrap_or(0),
                    span_id: self::span_id(&l.span_id).unwrap_or(0),
                    attributes: attributes_of(l.attributes),
                });
            }
            (attributes, events, links)
        } else {
            (Vec::new(), Vec::new(), Vec::new())
        };
        Ok(Span {
            trace_id,
            span_id,
            parent_id,
            name: span.name.into_owned(),
            kind: span.kind,
            start: span.start_time_unix_nano,
            end: span.end_time_unix_nano.max(span.start_time_unix_nano),
            status: status.code,
            message: status.message.into_owned(),
            marks,
            run_id,
            run_name,
            attributes,
            events,
            links,
            resource,
            scope,
        })
    }
}

/// serde_json's message without its " at line 1 column N" tail (the line
/// number is the file's, reported beside it).
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(at) => message[..at].to_owned(),
        None => message.to_owned(),
    }
}

/// What a line that parsed as JSON but not as a request looks like.
fn other_format(line: &[u8]) -> String {
    match serde_json::from_slice::<serde_json::Value>(line) {
        Ok(serde_json::Value::Object(map)) => {
            let keys: Vec<&str> = map.keys().take(4).map(String::as_str).collect();
            if map.contains_key("data") && map.contains_key("total") {
                "this looks like Jaeger's JSON (\"data\", \"total\")".to_owned()
            } else {
                format!("a JSON object without resourceSpans (keys {keys:?})")
            }
        }
        Ok(serde_json::Value::Array(_)) => "a JSON array".to_owned(),
        Ok(_) => "a JSON scalar".to_owned(),
        Err(e) => strip_position(&e.to_string()),
    }
}

/// Lowercase or uppercase hex, or the protobuf JSON mapping's base64.
pub(crate) fn trace_id(text: &str) -> Option<u128> {
    decode_id(text, 16).map(|bytes| u128::from_be_bytes(bytes.try_into().unwrap_or([0; 16])))
}

/// See [`trace_id`].
pub(crate) fn span_id(text: &str) -> Option<u64> {
    decode_id(text, 8).map(|bytes| u64::from_be_bytes(bytes.try_into().unwrap_or([0; 8])))
}

fn decode_id(text: &str, len: usize) -> Option<Vec<u8>> {
    if text.len() == len * 2 {
        let mut bytes = Vec::with_capacity(len);
        for pair in text.as_bytes().chunks(2) {
            let pair = std::str::from_utf8(pair).ok()?;
            bytes.push(u8::from_str_radix(pair, 16).ok()?);
        }
        return Some(bytes);
    }
    let bytes = base64(text)?;
    (bytes.len() == len).then_some(bytes)
}

fn base64(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut acc = 0u32;
    let mut bits = 0;
    for c in text.trim_end_matches('=').bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

fn attributes_of(list: Vec<KeyValue<'_>>) -> Attributes {
    list.into_iter()
        .map(|kv| {
            let value = kv.value.map(AnyValue::into_value).unwrap_or(Value::Empty);
            (kv.key.into_owned(), value)
        })
        .collect()
}

// --- the wire shapes -------------------------------------------------------
//
// Strings borrow from the line where they can (no escapes in them): most
// of a span is read without an allocation, and only what is kept is copied.

type Text<'a> = Cow<'a, str>;

#[derive(Deserialize)]
struct Request<'a> {
    #[serde(borrow, default, rename = "resourceSpans", alias = "resource_spans")]
    resource_spans: Option<Vec<ResourceSpans<'a>>>,
    #[serde(default, rename = "resourceLogs", alias = "resource_logs")]
    resource_logs: Option<IgnoredAny>,
    #[serde(default, rename = "resourceMetrics", alias = "resource_metrics")]
    resource_metrics: Option<IgnoredAny>,
}

#[derive(Deserialize)]
struct ResourceSpans<'a> {
    #[serde(borrow, default)]
    resource: Option<Resource<'a>>,
    #[serde(
        borrow,
        default,
        rename = "scopeSpans",
        alias = "scope_spans",
        alias = "instrumentationLibrarySpans"
    )]
    scope_spans: Option<Vec<ScopeSpans<'a>>>,
}

#[derive(Deserialize, Default)]
struct Resource<'a> {
    #[serde(borrow, default)]
    attributes: Vec<KeyValue<'a>>,
}

#[derive(Deserialize)]
struct ScopeSpans<'a> {
    #[serde(borrow, default, alias = "instrumentationLibrary")]
    scope: Option<Scope<'a>>,
    #[serde(borrow, default)]
    spans: Vec<RawSpan<'a>>,
}

#[derive(Deserialize, Default)]
struct Scope<'a> {
    #[serde(borrow, default)]
    name: Text<'a>,
    #[serde(borrow, default)]
    version: Text<'a>,
}

#[derive(Deserialize)]
struct RawSpan<'a> {
    #[serde(borrow, default, rename = "traceId", alias = "trace_id")]
    trace_id: Text<'a>,
    #[serde(borrow, default, rename = "spanId", alias = "span_id")]
    span_id: Text<'a>,
    #[serde(borrow, default, rename = "parentSpanId", alias = "parent_span_id")]
    parent_span_id: Text<'a>,
    #[serde(borrow, default)]
    name: Text<'a>,
    #[serde(default, deserialize_with = "kind")]
    kind: u8,
    #[serde(
        default,
        rename = "startTimeUnixNano",
        alias = "start_time_unix_nano",
        deserialize_with = "nanos"
    )]
    start_time_unix_nano: u64,
    #[serde(
        default,
        rename = "endTimeUnixNano",
        alias = "end_time_unix_nano",
        deserialize_with = "nanos"
    )]
    end_time_unix_nano: u64,
    #[serde(borrow, default)]
    attributes: Vec<KeyValue<'a>>,
    #[serde(borrow, default)]
    events: Vec<RawEvent<'a>>,
    #[serde(borrow, default)]
    links: Vec<RawLink<'a>>,
    #[serde(borrow, default)]
    status: Option<RawStatus<'a>>,
}

#[derive(Deserialize)]
struct RawEvent<'a> {
    #[serde(
        default,
        rename = "timeUnixNano",
        alias = "time_unix_nano",
        deserialize_with = "nanos"
    )]
    time_unix_nano: u64,
    #[serde(borrow, default)]
    name: Text<'a>,
    #[serde(borrow, default)]
    attributes: Vec<KeyValue<'a>>,
}

#[derive(Deserialize)]
struct RawLink<'a> {
    #[serde(borrow, default, rename = "traceId", alias = "trace_id")]
    trace_id: Text<'a>,
    #[serde(borrow, default, rename = "spanId", alias = "span_id")]
    span_id: Text<'a>,
    #[serde(borrow, default)]
    attributes: Vec<KeyValue<'a>>,
}

#[derive(Deserialize, Default)]
struct RawStatus<'a> {
    #[serde(borrow, default)]
    message: Text<'a>,
    #[serde(default, deserialize_with = "status_code")]
    code: u8,
}

#[derive(Deserialize)]
struct KeyValue<'a> {
    #[serde(borrow, default)]
    key: Text<'a>,
    #[serde(borrow, default)]
    value: Option<AnyValue<'a>>,
}

#[derive(Deserialize, Default)]
struct AnyValue<'a> {
    #[serde(borrow, default, rename = "stringValue", alias = "string_value")]
    string_value: Option<Text<'a>>,
    #[serde(default, rename = "boolValue", alias = "bool_value")]
    bool_value: Option<bool>,
    #[serde(
        default,
        rename = "intValue",
        alias = "int_value",
        deserialize_with = "int"
    )]
    int_value: Option<i64>,
    #[serde(
        default,
        rename = "doubleValue",
        alias = "double_value",
        deserialize_with = "double"
    )]
    double_value: Option<f64>,
    #[serde(borrow, default, rename = "arrayValue", alias = "array_value")]
    array_value: Option<ArrayValue<'a>>,
    #[serde(borrow, default, rename = "kvlistValue", alias = "kvlist_value")]
    kvlist_value: Option<KvList<'a>>,
    #[serde(borrow, default, rename = "bytesValue", alias = "bytes_value")]
    bytes_value: Option<Text<'a>>,
}

#[derive(Deserialize, Default)]
struct ArrayValue<'a> {
    #[serde(borrow, default)]
    values: Vec<AnyValue<'a>>,
}

#[derive(Deserialize, Default)]
struct KvList<'a> {
    #[serde(borrow, default)]
    values: Vec<KeyValue<'a>>,
}

impl AnyValue<'_> {
    fn into_value(self) -> Value {
        if let Some(s) = self.string_value {
            Value::Str(s.into_owned())
        } else if let Some(b) = self.bool_value {
            Value::Bool(b)
        } else if let Some(i) = self.int_value {
            Value::Int(i)
        } else if let Some(d) = self.double_value {
            Value::Double(d)
        } else if let Some(a) = self.array_value {
            Value::Array(a.values.into_iter().map(AnyValue::into_value).collect())
        } else if let Some(m) = self.kvlist_value {
            Value::Map(attributes_of(m.values))
        } else if let Some(b) = self.bytes_value {
            Value::Bytes(b.into_owned())
        } else {
            Value::Empty
        }
    }

    fn is_true(&self) -> bool {
        self.bool_value == Some(true)
            || self
                .string_value
                .as_deref()
                .is_some_and(|s| s.eq_ignore_ascii_case("true"))
    }

    fn as_i64(&self) -> Option<i64> {
        self.int_value
            .or_else(|| self.string_value.as_deref().and_then(|s| s.parse().ok()))
    }
}

// --- lenient scalars -------------------------------------------------------

/// A number given as a JSON number or a string (the OTLP/JSON form of
/// 64-bit integers), or an enum given by number or by name.
struct Lenient<T> {
    names: &'static [(&'static str, u64)],
    what: &'static str,
    _t: std::marker::PhantomData<T>,
}

impl<'de, T: TryFrom<u64> + TryFrom<i64>> Visitor<'de> for Lenient<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.what)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
        T::try_from(v).map_err(|_| E::custom(format!("{v} is out of range for {}", self.what)))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
        T::try_from(v).map_err(|_| E::custom(format!("{v} is out of range for {}", self.what)))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<T, E> {
        if v.fract() == 0.0 && v >= 0.0 && v < u64::MAX as f64 {
            self.visit_u64(v as u64)
        } else if v.fract() == 0.0 && v < 0.0 && v > i64::MIN as f64 {
            self.visit_i64(v as i64)
        } else {
            Err(E::custom(format!("{v} is not an integer ({})", self.what)))
        }
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        if let Some((_, n)) = self.names.iter().find(|(name, _)| *name == v) {
            return self.visit_u64(*n);
        }
        if let Ok(n) = v.parse::<u64>() {
            return self.visit_u64(n);
        }
        match v.parse::<i64>() {
            Ok(n) => self.visit_i64(n),
            Err(_) => Err(E::custom(format!("{v:?} is not {}", self.what))),
        }
    }
}

fn lenient<'de, D: Deserializer<'de>, T: TryFrom<u64> + TryFrom<i64>>(
    d: D,
    names: &'static [(&'static str, u64)],
    what: &'static str,
) -> Result<T, D::Error> {
    d.deserialize_any(Lenient {
        names,
        what,
        _t: std::marker::PhantomData,
    })
}

fn nanos<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    lenient(d, &[], "nanoseconds since the Unix epoch")
}

fn int<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    lenient(d, &[], "a 64-bit integer").map(Some)
}

fn kind<'de, D: Deserializer<'de>>(d: D) -> Result<u8, D::Error> {
    const NAMES: &[(&str, u64)] = &[
        ("SPAN_KIND_UNSPECIFIED", 0),
        ("SPAN_KIND_INTERNAL", 1),
        ("SPAN_KIND_SERVER", 2),
        ("SPAN_KIND_CLIENT", 3),
        ("SPAN_KIND_PRODUCER", 4),
        ("SPAN_KIND_CONSUMER", 5),
    ];
    lenient(d, NAMES, "a span kind")
}

fn status_code<'de, D: Deserializer<'de>>(d: D) -> Result<u8, D::Error> {
    const NAMES: &[(&str, u64)] = &[
        ("STATUS_CODE_UNSET", 0),
        ("STATUS_CODE_OK", 1),
        ("STATUS_CODE_ERROR", 2),
    ];
    lenient(d, NAMES, "a status code")
}

fn double<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = f64;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a number")
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<f64, E> {
            Ok(v)
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<f64, E> {
            Ok(v as f64)
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<f64, E> {
            Ok(v as f64)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<f64, E> {
            match v {
                "NaN" => Ok(f64::NAN),
                "Infinity" => Ok(f64::INFINITY),
                "-Infinity" => Ok(f64::NEG_INFINITY),
                _ => v
                    .parse()
                    .map_err(|_| E::custom(format!("{v:?} is not a number"))),
            }
        }
    }
    d.deserialize_any(V).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Result<Vec<Span>, LineError> {
        let mut spans = Vec::new();
        Reader::new(true).parse_line(line.as_bytes(), &mut spans)?;
        Ok(spans)
    }

    const SPAN: &str = r#"{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"svc"}}]},"scopeSpans":[{"scope":{"name":"flowtrace","version":"0.1.0"},"spans":[{"traceId":"0000000000000000000000000000002a","spanId":"0000000000000002","parentSpanId":"0000000000000001","name":"fetch","kind":1,"startTimeUnixNano":"1000","endTimeUnixNano":"3000","attributes":[{"key":"flowtrace.task.attempt","value":{"intValue":"2"}},{"key":"flowtrace.task.timeout","value":{"boolValue":true}},{"key":"flowtrace.run.id","value":{"stringValue":"r1"}}],"events":[{"timeUnixNano":"2000","name":"retry","attributes":[]}],"links":[{"traceId":"0000000000000000000000000000002b","spanId":"0000000000000009"}],"status":{"message":"boom","code":2}}]}]}]}"#;

    #[test]
    fn reads_the_file_exporters_lines() {
        let spans = parse(SPAN).unwrap();
        assert_eq!(spans.len(), 1);
        let s = &spans[0];
        assert_eq!(s.trace_id, 42);
        assert_eq!((s.span_id, s.parent_id), (2, 1));
        assert_eq!((s.start, s.end, s.duration()), (1000, 3000, 2000));
        assert!(s.is_error());
        assert_eq!(s.message, "boom");
        assert_eq!(s.marks.attempt, Some(2));
        assert!(s.marks.timeout);
        assert_eq!(s.marks.retried, 1);
        assert_eq!(s.run_id.as_deref(), Some("r1"));
        assert_eq!(s.links[0].span_id, 9);
        assert_eq!(s.events[0].time, 2000);
    }

    #[test]
    fn lifecycle_marks_are_read() {
        let marked = SPAN
            .replace("flowtrace.task.timeout", "flowtrace.task.cancelled")
            .replace(
                r#"{"key":"flowtrace.run.id""#,
                r#"{"key":"flowtrace.task.cached","value":{"boolValue":true}},{"key":"flowtrace.task.replayed","value":{"stringValue":"true"}},{"key":"flowtrace.run.id""#,
            );
        let marks = parse(&marked).unwrap()[0].marks;
        assert!(
            marks.cancelled && marks.cached && marks.replayed,
            "{marks:?}"
        );
        assert!(!marks.timeout);
        assert_eq!(
            marks.words(),
            ["attempt 2", "retried 1×", "cancelled", "cached", "replayed"]
        );
    }

    #[test]
    fn accepts_the_protobuf_json_alternatives() {
        // snake_case names, enum names, numbers for int64, base64 ids, and
        // the pre-1.0 instrumentationLibrarySpans.
        let line = r#"{"resource_spans":[{"instrumentationLibrarySpans":[{"spans":[{"trace_id":"AAAAAAAAAAAAAAAAAAAAKg==","span_id":"AAAAAAAAAAI=","name":"x","kind":"SPAN_KIND_SERVER","start_time_unix_nano":5,"end_time_unix_nano":9,"attributes":[{"key":"n","value":{"intValue":7}},{"key":"d","value":{"doubleValue":"NaN"}}],"status":{"code":"STATUS_CODE_ERROR"}}]}]}]}"#;
        let spans = parse(line).unwrap();
        assert_eq!(spans[0].trace_id, 42);
        assert_eq!(spans[0].span_id, 2);
        assert_eq!(spans[0].kind, 2);
        assert_eq!(spans[0].status, 2);
        assert_eq!(spans[0].attributes[0].1, Value::Int(7));
        assert!(matches!(spans[0].attributes[1].1, Value::Double(d) if d.is_nan()));
    }

    #[test]
    fn bad_lines_say_what_is_wrong() {
        for (line, expected, reason) in [
            (&SPAN[..SPAN.len() - 20], LineError::Truncated, "cut short"),
            (
                r#"{"resourceLogs":[]}"#,
                LineError::OtherFormat("this line holds OTLP logs (resourceLogs)".into()),
                "a log file",
            ),
            (
                r#"{"foo":1}"#,
                LineError::OtherFormat(
                    "a JSON object without resourceSpans (keys [\"foo\"])".into(),
                ),
                "another object",
            ),
        ] {
            assert_eq!(parse(line).unwrap_err(), expected, "{reason}");
        }
        assert!(
            matches!(
                parse("not json"),
                Err(LineError::Malformed { column: 2, .. })
            ),
            "garbage: {:?}",
            parse("not json")
        );
        assert!(matches!(parse("[1,2]"), Err(LineError::OtherFormat(_))));
        let bad_id = SPAN.replace("0000000000000002\"", "zz\"");
        assert!(
            matches!(parse(&bad_id), Err(LineError::BadSpan(ref m)) if m.contains("spanId \"zz\"")),
            "{:?}",
            parse(&bad_id)
        );
        assert_eq!(parse("   ").unwrap(), vec![], "a blank line is no spans");
    }

    #[test]
    fn resources_are_shared_between_lines() {
        let mut reader = Reader::new(false);
        let mut spans = Vec::new();
        reader.parse_line(SPAN.as_bytes(), &mut spans).unwrap();
        reader.parse_line(SPAN.as_bytes(), &mut spans).unwrap();
        assert_eq!(reader.resources.len(), 1);
        assert_eq!(spans[0].resource, spans[1].resource);
        assert_eq!(reader.take_new_resources(), 0..1);
        assert_eq!(reader.take_new_resources(), 1..1);
        assert!(
            spans[0].attributes.is_empty(),
            "summary mode keeps no details"
        );
        assert!(spans[0].marks.timeout, "but it keeps the marks");
    }
}
