//! Reads the flowtrace file exporter's output: OTLP/JSON, one
//! `ExportTraceServiceRequest` per line, as the OpenTelemetry Collector's file
//! exporter writes it and its `otlpjsonfile` receiver reads it.
//!
//! Parsed by hand from `serde_json::Value`, not with opentelemetry-proto's
//! serde impls that write it: the point is to check the encoding itself.
//! What the OTLP/JSON spec fixes is enforced, with the JSON path of the
//! offending field in the error: ids are hex (trace 32 digits, span 16),
//! enums are numbers, 64-bit integers (times, `intValue`) are strings.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Map, Value};

use super::span::{self, Event, Link, Span, SpanKind, StatusCode};

type Res<T> = Result<T, String>;

/// Every span in the file at `path`; panics with `path:line: reason` on a
/// line that is not OTLP/JSON, and if the file cannot be read.
pub fn read_otlp_json_file(path: &Path) -> Vec<Span> {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read trace file {}: {e}", path.display()));
    parse_otlp_json_lines(&text).unwrap_or_else(|e| panic!("{}:{e}", path.display()))
}

/// Polls the file at `path` (absent counts as empty) until `done(spans)`
/// holds; panics after `timeout`. A last line without its newline is still
/// being written and is not read yet.
pub fn wait_for_file(
    path: &Path,
    what: &str,
    timeout: Duration,
    done: impl Fn(&[Span]) -> bool,
) -> Vec<Span> {
    let deadline = Instant::now() + timeout;
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let complete = &text[..text.rfind('\n').map_or(0, |i| i + 1)];
        let spans =
            parse_otlp_json_lines(complete).unwrap_or_else(|e| panic!("{}:{e}", path.display()));
        if done(&spans) {
            return spans;
        }
        if Instant::now() >= deadline {
            panic!(
                "waited {timeout:?} for {what} in {}; spans there: {}",
                path.display(),
                span::summary(&spans)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Parses a whole file's text; the error starts with the 1-based line number.
pub fn parse_otlp_json_lines(text: &str) -> Res<Vec<Span>> {
    let mut spans = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        spans.extend(parse_otlp_json_line(line).map_err(|e| format!("{}: {e}", i + 1))?);
    }
    Ok(spans)
}

/// Parses one line: one `ExportTraceServiceRequest` in OTLP/JSON.
pub fn parse_otlp_json_line(line: &str) -> Res<Vec<Span>> {
    let request: Value =
        serde_json::from_str(line).map_err(|e| format!("not JSON: {e}: {line}"))?;
    let request = object(&request, "request")?;
    let mut out = Vec::new();
    for (i, rs) in array(request, "resourceSpans", "")?.iter().enumerate() {
        let at = format!("resourceSpans[{i}]");
        let rs = object(rs, &at)?;
        let resource = match rs.get("resource") {
            Some(r) => attributes(object(r, &at)?, &format!("{at}.resource"))?,
            None => Vec::new(),
        };
        let service_name = resource
            .iter()
            .find(|(k, _)| k == "service.name")
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        for (j, ss) in array(rs, "scopeSpans", &at)?.iter().enumerate() {
            let at = format!("{at}.scopeSpans[{j}]");
            let ss = object(ss, &at)?;
            let scope = match ss.get("scope") {
                Some(s) => string(object(s, &at)?, "name", &format!("{at}.scope"))?,
                None => String::new(),
            };
            for (k, s) in array(ss, "spans", &at)?.iter().enumerate() {
                let at = format!("{at}.spans[{k}]");
                let mut span = span(object(s, &at)?, &at)?;
                span.service_name = service_name.clone();
                span.resource = resource.clone();
                span.scope = scope.clone();
                out.push(span);
            }
        }
    }
    Ok(out)
}

fn span(s: &Map<String, Value>, at: &str) -> Res<Span> {
    let (status_code, status_message) = match s.get("status") {
        Some(st) => {
            let st = object(st, &format!("{at}.status"))?;
            let at = format!("{at}.status");
            (enum_number(st, "code", &at)?, string(st, "message", &at)?)
        }
        None => (0, String::new()),
    };
    let mut events = Vec::new();
    for (i, e) in array(s, "events", at)?.iter().enumerate() {
        let at = format!("{at}.events[{i}]");
        let e = object(e, &at)?;
        int64_string(e, "timeUnixNano", &at)?;
        events.push(Event {
            name: string(e, "name", &at)?,
            attributes: attributes(e, &at)?,
        });
    }
    let mut links = Vec::new();
    for (i, l) in array(s, "links", at)?.iter().enumerate() {
        let at = format!("{at}.links[{i}]");
        let l = object(l, &at)?;
        links.push(Link {
            trace_id: hex_id(l, "traceId", 32, &at)?,
            span_id: hex_id(l, "spanId", 16, &at)?,
            attributes: attributes(l, &at)?,
        });
    }
    let parent_span_id = match string(s, "parentSpanId", at)? {
        empty if empty.is_empty() => empty,
        _ => hex_id(s, "parentSpanId", 16, at)?,
    };
    Ok(Span {
        trace_id: hex_id(s, "traceId", 32, at)?,
        span_id: hex_id(s, "spanId", 16, at)?,
        parent_span_id,
        trace_state: string(s, "traceState", at)?,
        name: string(s, "name", at)?,
        kind: SpanKind::try_from(enum_number(s, "kind", at)?)
            .map_err(|e| format!("{at}.kind: {e}"))?,
        status_code: StatusCode::try_from(status_code)
            .map_err(|e| format!("{at}.status.code: {e}"))?,
        status_message,
        start_unix_nano: int64_string(s, "startTimeUnixNano", at)?,
        end_unix_nano: int64_string(s, "endTimeUnixNano", at)?,
        attributes: attributes(s, at)?,
        events,
        links,
        service_name: String::new(),
        resource: Vec::new(),
        scope: String::new(),
    })
}

/// The `attributes` list of `parent`, values rendered like the receiver's.
fn attributes(parent: &Map<String, Value>, at: &str) -> Res<Vec<(String, String)>> {
    let mut out = Vec::new();
    for (i, kv) in array(parent, "attributes", at)?.iter().enumerate() {
        let at = format!("{at}.attributes[{i}]");
        let (key, value) = key_value(kv, &at)?;
        out.push((key, span::render_any_value(value)));
    }
    Ok(out)
}

fn key_value(kv: &Value, at: &str) -> Res<(String, Value)> {
    let kv = object(kv, at)?;
    let key = string(kv, "key", at)?;
    let value = match kv.get("value") {
        Some(v) => any_value(v, &format!("{at}.value"))?,
        None => Value::Null,
    };
    Ok((key, value))
}

/// An OTLP/JSON `AnyValue` as plain JSON (the shape `render_any_value` takes).
fn any_value(v: &Value, at: &str) -> Res<Value> {
    let v = object(v, at)?;
    let Some((kind, inner)) = v.iter().next() else {
        return Ok(Value::Null);
    };
    if v.len() > 1 {
        return Err(format!("{at}: an AnyValue has one field, found {v:?}"));
    }
    let at = format!("{at}.{kind}");
    match (kind.as_str(), inner) {
        ("stringValue", Value::String(_)) | ("boolValue", Value::Bool(_)) => Ok(inner.clone()),
        ("bytesValue", Value::String(_)) => Ok(inner.clone()),
        ("intValue", Value::String(s)) => s
            .parse::<i64>()
            .map(Value::from)
            .map_err(|e| format!("{at}: {s:?} is not an int64: {e}")),
        ("intValue", _) => Err(format!(
            "{at}: 64-bit ints are strings in OTLP/JSON, found {inner}"
        )),
        ("doubleValue", Value::Number(n)) => {
            Ok(span::double_to_json(n.as_f64().unwrap_or(f64::NAN)))
        }
        ("doubleValue", Value::String(s))
            if ["NaN", "Infinity", "-Infinity"].contains(&s.as_str()) =>
        {
            Ok(inner.clone())
        }
        ("arrayValue", Value::Object(a)) => array(a, "values", &at)?
            .iter()
            .enumerate()
            .map(|(i, v)| any_value(v, &format!("{at}.values[{i}]")))
            .collect::<Res<Vec<_>>>()
            .map(Value::Array),
        ("kvlistValue", Value::Object(l)) => array(l, "values", &at)?
            .iter()
            .enumerate()
            .map(|(i, kv)| key_value(kv, &format!("{at}.values[{i}]")))
            .collect::<Res<Map<_, _>>>()
            .map(Value::Object),
        _ => Err(format!("{at}: unexpected AnyValue field or type: {inner}")),
    }
}

fn object<'a>(v: &'a Value, at: &str) -> Res<&'a Map<String, Value>> {
    v.as_object()
        .ok_or_else(|| format!("{at}: expected an object, found {v}"))
}

/// A repeated field; absent means empty, as in proto3 JSON.
fn array<'a>(parent: &'a Map<String, Value>, field: &str, at: &str) -> Res<&'a [Value]> {
    match parent.get(field) {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(items)) => Ok(items),
        Some(other) => Err(format!("{at}.{field}: expected an array, found {other}")),
    }
}

/// A string field; absent means empty.
fn string(parent: &Map<String, Value>, field: &str, at: &str) -> Res<String> {
    match parent.get(field) {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(other) => Err(format!("{at}.{field}: expected a string, found {other}")),
    }
}

/// A trace or span id: hex, not base64 as plain proto3 JSON would have it.
fn hex_id(parent: &Map<String, Value>, field: &str, digits: usize, at: &str) -> Res<String> {
    let id = string(parent, field, at)?;
    if id.len() != digits || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!(
            "{at}.{field}: expected {digits} hex digits, found {id:?}"
        ));
    }
    Ok(id.to_ascii_lowercase())
}

/// An enum field (`kind`, `status.code`): a number, never the enum's name.
fn enum_number(parent: &Map<String, Value>, field: &str, at: &str) -> Res<i32> {
    match parent.get(field) {
        None | Some(Value::Null) => Ok(0),
        Some(Value::Number(n)) => n
            .as_i64()
            .and_then(|n| i32::try_from(n).ok())
            .ok_or_else(|| format!("{at}.{field}: {n} is not an enum value")),
        Some(other) => Err(format!(
            "{at}.{field}: enums are numbers in OTLP/JSON, found {other}"
        )),
    }
}

/// A fixed64 field (the times): a decimal string.
fn int64_string(parent: &Map<String, Value>, field: &str, at: &str) -> Res<u64> {
    match parent.get(field) {
        None | Some(Value::Null) => Ok(0),
        Some(Value::String(s)) => s
            .parse()
            .map_err(|e| format!("{at}.{field}: {s:?} is not a uint64: {e}")),
        Some(other) => Err(format!(
            "{at}.{field}: 64-bit ints are strings in OTLP/JSON, found {other}"
        )),
    }
}
