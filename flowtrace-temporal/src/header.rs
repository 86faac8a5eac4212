//! What travels in Temporal headers: the W3C carrier under `_tracer-data`
//! (the key and encoding of Temporal's Python, Go and TypeScript tracing
//! interceptors) and the user entries of `custom_context` under
//! `flowtrace-context`. Both are a Temporal `Payload` holding a JSON object of
//! strings, encoding `json/plain`, as the default payload converter of every
//! Temporal SDK writes it.

use std::collections::{BTreeMap, HashMap};

use flowtrace::propagation::{self, BAGGAGE, TRACEPARENT, TRACESTATE};
use opentelemetry::propagation::{Extractor, Injector};
use opentelemetry::trace::{SpanContext, TraceContextExt as _};
use opentelemetry::{Context, KeyValue};
use temporalio_common::protos::temporal::api::common::v1::Payload;

/// The header holding the W3C carrier (`traceparent`, `tracestate`,
/// `baggage`): the key Temporal's other SDKs use, so a trace continues across
/// languages.
pub const TRACE_HEADER: &str = "_tracer-data";

/// The header holding the user entries of `custom_context` (every key but
/// `traceparent`, `tracestate` and `baggage`, which travel in
/// [`TRACE_HEADER`]).
pub const CONTEXT_HEADER: &str = "flowtrace-context";

const ENCODING: &str = "encoding";
const JSON_PLAIN: &[u8] = b"json/plain";

/// A string map as a `json/plain` payload.
pub(crate) fn to_payload(map: &BTreeMap<String, String>) -> Payload {
    Payload {
        metadata: HashMap::from([(ENCODING.to_owned(), JSON_PLAIN.to_vec())]),
        // A map of strings always serializes.
        data: serde_json::to_vec(map).unwrap_or_default(),
        ..Payload::default()
    }
}

/// The string map in a payload; `None` when it is not `json/plain` or not a
/// JSON object of strings (a foreign or corrupt header is ignored, never an
/// error of the workflow).
pub(crate) fn from_payload(payload: &Payload) -> Option<BTreeMap<String, String>> {
    if payload.metadata.get(ENCODING).map(Vec::as_slice) != Some(JSON_PLAIN) {
        return None;
    }
    serde_json::from_slice(&payload.data).ok()
}

/// A W3C carrier as an `Injector` / `Extractor`.
#[derive(Default)]
struct Carrier(BTreeMap<String, String>);

impl Injector for Carrier {
    fn set(&mut self, key: &str, value: String) {
        self.0.insert(key.to_owned(), value);
    }
}

impl Extractor for Carrier {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(String::as_str).collect()
    }
}

/// Whether a `custom_context` key is part of the trace carrier rather than a
/// user entry.
pub(crate) fn is_carrier_key(key: &str) -> bool {
    matches!(key, TRACEPARENT | TRACESTATE | BAGGAGE)
}

/// The header a run continued as new links its new trace to the previous
/// run's with: `traceparent` (and `tracestate`) of the previous run's `RunWorkflow`.
pub const LINK_HEADER: &str = "flowtrace-link";

/// Whether a [`CONTEXT_HEADER`] key names the client's run
/// (`flowtrace.run.id`, `flowtrace.run.name`) rather than a user entry.
fn is_run_key(key: &str) -> bool {
    key == flowtrace::attributes::RUN_ID || key == flowtrace::attributes::RUN_NAME
}

/// Writes `cx`'s span context and baggage under [`TRACE_HEADER`], and the user
/// entries of `entries` plus the client's `run` attributes under
/// [`CONTEXT_HEADER`] (each only when non-empty).
pub(crate) fn inject(
    cx: &Context,
    entries: &BTreeMap<String, String>,
    run: &[KeyValue],
    headers: &mut HashMap<String, Payload>,
) {
    let mut carrier = Carrier::default();
    propagation::inject(cx, &mut carrier);
    if !carrier.0.is_empty() {
        headers.insert(TRACE_HEADER.to_owned(), to_payload(&carrier.0));
    }
    let mut entries = entries.clone();
    for kv in run {
        entries.insert(kv.key.to_string(), kv.value.to_string());
    }
    if !entries.is_empty() {
        headers.insert(CONTEXT_HEADER.to_owned(), to_payload(&entries));
    }
}

/// Writes the span context of `cx` under [`LINK_HEADER`].
pub(crate) fn inject_link(cx: &Context, headers: &mut HashMap<String, Payload>) {
    let span = cx.span();
    let sc = span.span_context();
    if !sc.is_valid() {
        return;
    }
    let mut map = BTreeMap::from([(TRACEPARENT.to_owned(), propagation::format_traceparent(sc))]);
    let state = sc.trace_state().header();
    if !state.is_empty() {
        map.insert(TRACESTATE.to_owned(), state);
    }
    headers.insert(LINK_HEADER.to_owned(), to_payload(&map));
}

/// The span context under [`LINK_HEADER`], if any.
pub(crate) fn extract_link(headers: &HashMap<String, Payload>) -> Option<SpanContext> {
    let map = from_payload(headers.get(LINK_HEADER)?)?;
    let cx = propagation::extract_with_context(&Context::new(), &Carrier(map));
    let span = cx.span();
    let sc = span.span_context();
    sc.is_valid().then(|| sc.clone())
}

/// What a receiving side reads from headers.
#[derive(Clone, Debug, Default)]
pub(crate) struct Received {
    /// The remote parent and baggage (an empty context when there is none).
    pub(crate) parent: Context,
    /// The user entries of the sender's `custom_context`.
    pub(crate) entries: BTreeMap<String, String>,
    /// The client's `flowtrace.run.id` and `flowtrace.run.name`.
    pub(crate) run: Vec<KeyValue>,
}

/// Reads [`TRACE_HEADER`] (through flowtrace's strict W3C propagators) and
/// [`CONTEXT_HEADER`].
pub(crate) fn extract(headers: &HashMap<String, Payload>) -> Received {
    let parent = headers
        .get(TRACE_HEADER)
        .and_then(from_payload)
        .map(|map| propagation::extract_with_context(&Context::new(), &Carrier(map)))
        .unwrap_or_default();
    let mut entries = headers
        .get(CONTEXT_HEADER)
        .and_then(from_payload)
        .map(|mut map| {
            map.retain(|k, _| !is_carrier_key(k));
            map
        })
        .unwrap_or_default();
    let run = [
        flowtrace::attributes::RUN_ID,
        flowtrace::attributes::RUN_NAME,
    ]
    .into_iter()
    .filter_map(|key| entries.remove(key).map(|value| KeyValue::new(key, value)))
    .collect();
    entries.retain(|k, _| !is_run_key(k));
    Received {
        parent,
        entries,
        run,
    }
}

/// The client's run id and name, from the attributes a header carried
/// ([`Received::run`]); the default run name when only the id came.
pub(crate) fn client_run(run: &[KeyValue]) -> Option<(String, String)> {
    let get = |key: &str| {
        run.iter()
            .find(|kv| kv.key.as_str() == key)
            .map(|kv| kv.value.to_string())
    };
    Some((
        get(flowtrace::attributes::RUN_ID)?,
        get(flowtrace::attributes::RUN_NAME)
            .unwrap_or_else(|| flowtrace::DEFAULT_RUN_NAME.to_owned()),
    ))
}

/// The current run's `flowtrace.run.id` and `flowtrace.run.name`, for the
/// headers of a client call.
pub(crate) fn current_run() -> Vec<KeyValue> {
    flowtrace::run_attributes(&Context::current())
        .map(Vec::from)
        .unwrap_or_default()
}

/// The user entries of the current `custom_context`.
pub(crate) fn current_entries() -> BTreeMap<String, String> {
    flowtrace::ctx()
        .custom_context()
        .iter()
        .filter(|(k, _)| !is_carrier_key(k))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// The parent a new span should have here: the map's `traceparent` when it
/// carries one (flowtrace's rule: the carrier wins), else the current span.
pub(crate) fn current_parent() -> Context {
    let view = flowtrace::ctx();
    let cx = Context::current();
    let sc = view.carried_span_context();
    if sc.is_valid() && !same_span(&cx, sc) {
        cx.with_remote_span_context(sc.clone())
    } else {
        cx
    }
}

fn same_span(cx: &Context, sc: &opentelemetry::trace::SpanContext) -> bool {
    let current = cx.span();
    let current = current.span_context();
    current.trace_id() == sc.trace_id() && current.span_id() == sc.span_id()
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId};

    #[test]
    fn payload_is_json_plain_and_round_trips() {
        let map = BTreeMap::from([("team".to_owned(), "search".to_owned())]);
        let payload = to_payload(&map);
        assert_eq!(payload.metadata[ENCODING], JSON_PLAIN);
        assert_eq!(payload.data, br#"{"team":"search"}"#);
        assert_eq!(from_payload(&payload), Some(map));
    }

    #[test]
    fn foreign_payloads_are_ignored() {
        let rows: [(&[u8], &[u8], &str); 3] = [
            (b"binary/plain", br#"{"a":"b"}"#, "another encoding"),
            (JSON_PLAIN, b"[1,2]", "not an object"),
            (JSON_PLAIN, br#"{"a":1}"#, "a value that is not a string"),
        ];
        for (encoding, data, reason) in rows {
            let payload = Payload {
                metadata: HashMap::from([(ENCODING.to_owned(), encoding.to_vec())]),
                data: data.to_vec(),
                ..Payload::default()
            };
            assert_eq!(from_payload(&payload), None, "{reason}");
        }
    }

    /// The injecting tests, one at a time: one of them changes the
    /// process-wide propagators.
    static PROPAGATORS: std::sync::Mutex<()> = std::sync::Mutex::new(());

    #[test]
    fn inject_then_extract_keeps_parent_and_entries_apart() {
        let _one_at_a_time = PROPAGATORS.lock().unwrap_or_else(|e| e.into_inner());
        let sc = SpanContext::new(
            TraceId::from(0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736),
            SpanId::from(0x00f0_67aa_0ba9_02b7),
            TraceFlags::SAMPLED,
            true,
            Default::default(),
        );
        let cx = Context::new().with_remote_span_context(sc.clone());
        let entries = BTreeMap::from([("team".to_owned(), "search".to_owned())]);
        let mut headers = HashMap::new();
        inject(&cx, &entries, &[], &mut headers);
        let carrier = from_payload(&headers[TRACE_HEADER]).unwrap();
        assert_eq!(
            carrier.get(TRACEPARENT).map(String::as_str),
            Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
        );
        let received = extract(&headers);
        assert_eq!(received.parent.span().span_context(), &sc);
        assert_eq!(received.entries, entries);
    }

    #[test]
    fn otel_propagators_decide_what_the_trace_header_carries() {
        use flowtrace::propagation::{Propagators, set_propagators};
        use opentelemetry::baggage::BaggageExt as _;

        let _one_at_a_time = PROPAGATORS.lock().unwrap_or_else(|e| e.into_inner());
        let sc = SpanContext::new(
            TraceId::from(0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736),
            SpanId::from(0x00f0_67aa_0ba9_02b7),
            TraceFlags::SAMPLED,
            true,
            Default::default(),
        );
        let cx = Context::new()
            .with_remote_span_context(sc)
            .with_baggage([opentelemetry::KeyValue::new("user", "alice")]);
        for (propagators, expected, reason) in [
            (Propagators::NONE, &[][..], "none: no trace header at all"),
            (
                Propagators::new(true, false),
                &[TRACEPARENT][..],
                "tracecontext alone: no baggage",
            ),
            (Propagators::ALL, &[BAGGAGE, TRACEPARENT][..], "both"),
        ] {
            set_propagators(propagators);
            let mut headers = HashMap::new();
            inject(&cx, &BTreeMap::new(), &[], &mut headers);
            let keys: Vec<String> = headers
                .get(TRACE_HEADER)
                .and_then(from_payload)
                .map(|carrier| carrier.into_keys().collect())
                .unwrap_or_default();
            assert_eq!(keys, expected, "{reason}");
        }
        set_propagators(Propagators::ALL);
    }

    #[test]
    fn carrier_keys_in_the_context_header_are_dropped() {
        let sneaky = BTreeMap::from([
            (TRACEPARENT.to_owned(), "00-x".to_owned()),
            ("team".to_owned(), "search".to_owned()),
        ]);
        let headers = HashMap::from([(CONTEXT_HEADER.to_owned(), to_payload(&sneaky))]);
        let received = extract(&headers);
        assert_eq!(received.entries.len(), 1);
        assert!(!received.parent.has_active_span());
    }
}
