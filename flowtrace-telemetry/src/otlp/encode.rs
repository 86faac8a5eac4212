//! Spans to an OTLP `ExportTraceServiceRequest` by reference. The batch
//! processor keeps each batch until an attempt settles it, so the request
//! is built from borrowed spans: one allocation per string instead of a
//! clone of every span and then a second copy of each string (what
//! opentelemetry-proto's conversion, which takes the spans by value, would
//! need here). Field for field the same message as opentelemetry-proto's
//! `group_spans_by_resource_and_scope` (tested below).

use std::collections::HashMap;

use opentelemetry::trace::{SpanId, Status as SpanStatus};
use opentelemetry::{Array, InstrumentationScope, KeyValue, Value};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{self as common, AnyValue, ArrayValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{
    ResourceSpans, ScopeSpans, Span, SpanFlags, Status, span, status,
};
use opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema;
use opentelemetry_sdk::trace::SpanData;

/// The request for `batch`, its spans grouped by instrumentation scope in
/// the order the scopes first appear.
pub(crate) fn request(
    batch: &[SpanData],
    resource: &ResourceAttributesWithSchema,
) -> ExportTraceServiceRequest {
    let mut index: HashMap<&InstrumentationScope, usize> = HashMap::new();
    let mut scopes: Vec<ScopeSpans> = Vec::new();
    for data in batch {
        let scope = &data.instrumentation_scope;
        let at = *index.entry(scope).or_insert_with(|| {
            scopes.push(ScopeSpans {
                scope: Some((scope, None).into()),
                schema_url: scope.schema_url().unwrap_or_default().to_owned(),
                spans: Vec::new(),
            });
            scopes.len() - 1
        });
        scopes[at].spans.push(span(data));
    }
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: resource.attributes.0.clone(),
                dropped_attributes_count: 0,
                entity_refs: vec![],
            }),
            scope_spans: scopes,
            schema_url: resource.schema_url.clone().unwrap_or_default(),
        }],
    }
}

fn nanos(time: std::time::SystemTime) -> u64 {
    time.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

fn flags(remote: bool, trace_flags: u8) -> u32 {
    let mut flags = u32::from(trace_flags) | SpanFlags::ContextHasIsRemoteMask as u32;
    if remote {
        flags |= SpanFlags::ContextIsRemoteMask as u32;
    }
    flags
}

fn span(data: &SpanData) -> Span {
    let sc = &data.span_context;
    let kind: span::SpanKind = data.span_kind.clone().into();
    Span {
        trace_id: sc.trace_id().to_bytes().to_vec(),
        span_id: sc.span_id().to_bytes().to_vec(),
        trace_state: sc.trace_state().header(),
        parent_span_id: if data.parent_span_id != SpanId::INVALID {
            data.parent_span_id.to_bytes().to_vec()
        } else {
            vec![]
        },
        flags: flags(data.parent_span_is_remote, sc.trace_flags().to_u8()),
        name: data.name.to_string(),
        kind: kind as i32,
        start_time_unix_nano: nanos(data.start_time),
        end_time_unix_nano: nanos(data.end_time),
        dropped_attributes_count: data.dropped_attributes_count,
        attributes: key_values(&data.attributes),
        dropped_events_count: data.events.dropped_count,
        events: data
            .events
            .iter()
            .map(|event| span::Event {
                time_unix_nano: nanos(event.timestamp),
                name: event.name.to_string(),
                attributes: key_values(&event.attributes),
                dropped_attributes_count: event.dropped_attributes_count,
            })
            .collect(),
        dropped_links_count: data.links.dropped_count,
        links: data
            .links
            .iter()
            .map(|link| {
                let sc = &link.span_context;
                span::Link {
                    trace_id: sc.trace_id().to_bytes().to_vec(),
                    span_id: sc.span_id().to_bytes().to_vec(),
                    trace_state: sc.trace_state().header(),
                    attributes: key_values(&link.attributes),
                    dropped_attributes_count: link.dropped_attributes_count,
                    flags: flags(sc.is_remote(), sc.trace_flags().to_u8()),
                }
            })
            .collect(),
        status: Some(match &data.status {
            SpanStatus::Unset => Status {
                code: status::StatusCode::Unset.into(),
                message: String::new(),
            },
            SpanStatus::Ok => Status {
                code: status::StatusCode::Ok.into(),
                message: String::new(),
            },
            SpanStatus::Error { description } => Status {
                code: status::StatusCode::Error.into(),
                message: description.to_string(),
            },
        }),
    }
}

fn key_values(attributes: &[KeyValue]) -> Vec<common::KeyValue> {
    attributes
        .iter()
        .map(|kv| common::KeyValue {
            key: kv.key.as_str().to_owned(),
            value: Some(any_value(&kv.value)),
            key_strindex: 0,
        })
        .collect()
}

fn string(value: &opentelemetry::StringValue) -> AnyValue {
    AnyValue {
        value: Some(any_value::Value::StringValue(value.as_str().to_owned())),
    }
}

fn any_value(value: &Value) -> AnyValue {
    let scalar = |value| AnyValue { value: Some(value) };
    match value {
        Value::Bool(b) => scalar(any_value::Value::BoolValue(*b)),
        Value::I64(i) => scalar(any_value::Value::IntValue(*i)),
        Value::F64(f) => scalar(any_value::Value::DoubleValue(*f)),
        Value::String(s) => string(s),
        Value::Array(array) => {
            let values = match array {
                Array::Bool(v) => v
                    .iter()
                    .map(|b| scalar(any_value::Value::BoolValue(*b)))
                    .collect(),
                Array::I64(v) => v
                    .iter()
                    .map(|i| scalar(any_value::Value::IntValue(*i)))
                    .collect(),
                Array::F64(v) => v
                    .iter()
                    .map(|f| scalar(any_value::Value::DoubleValue(*f)))
                    .collect(),
                Array::String(v) => v.iter().map(string).collect(),
                // A kind added later: the library's own conversion.
                _ => return AnyValue::from(value.clone()),
            };
            scalar(any_value::Value::ArrayValue(ArrayValue { values }))
        }
        _ => AnyValue::from(value.clone()),
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;
    use std::time::{Duration, SystemTime};

    use opentelemetry::trace::{
        Event, Link, SpanContext, SpanKind, TraceFlags, TraceId, TraceState,
    };
    use opentelemetry_proto::transform::trace::tonic::group_spans_by_resource_and_scope;
    use opentelemetry_sdk::Resource as SdkResource;
    use opentelemetry_sdk::trace::{SpanEvents, SpanLinks};

    use super::*;
    use crate::test_util::span as plain;

    fn every_kind_of_value() -> Vec<KeyValue> {
        vec![
            KeyValue::new("static", "text"),
            KeyValue::new("owned", String::from("owned text")),
            KeyValue::new(
                "shared",
                Value::String(std::sync::Arc::<str>::from("rc").into()),
            ),
            KeyValue::new("bool", true),
            KeyValue::new("int", -7i64),
            KeyValue::new("float", 2.5f64),
            KeyValue::new("bools", Value::Array(vec![true, false].into())),
            KeyValue::new("ints", Value::Array(vec![1i64, 2].into())),
            KeyValue::new("floats", Value::Array(vec![0.5f64].into())),
            KeyValue::new(
                "strings",
                Value::Array(vec![opentelemetry::StringValue::from("a"), "b".into()].into()),
            ),
        ]
    }

    #[test]
    fn the_same_request_as_opentelemetry_proto_builds() {
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let mut full = plain("full", 2, 1);
        full.name = Cow::Owned("full span".into());
        full.span_kind = SpanKind::Server;
        full.parent_span_is_remote = true;
        full.attributes = every_kind_of_value();
        full.dropped_attributes_count = 3;
        full.status = SpanStatus::error("it broke");
        full.span_context = SpanContext::new(
            TraceId::from(9u128),
            SpanId::from(2u64),
            TraceFlags::SAMPLED,
            false,
            TraceState::from_key_value([("k", "v")]).unwrap(),
        );
        let mut events = SpanEvents::default();
        events.events.push(Event::new(
            "retry",
            at,
            vec![KeyValue::new("attempt", 2i64)],
            1,
        ));
        events.dropped_count = 4;
        full.events = events;
        let mut links = SpanLinks::default();
        links.links.push(Link::new(
            SpanContext::new(
                TraceId::from(5u128),
                SpanId::from(6u64),
                TraceFlags::default(),
                true,
                TraceState::NONE,
            ),
            vec![KeyValue::new("flowtrace.link", "previous")],
            2,
        ));
        links.dropped_count = 1;
        full.links = links;
        let mut ok = plain("ok", 3, 0);
        ok.status = SpanStatus::Ok;
        let mut other_scope = plain("elsewhere", 4, 2);
        other_scope.instrumentation_scope = InstrumentationScope::builder("other")
            .with_version("1.2")
            .with_schema_url("https://opentelemetry.io/schemas/1.30.0")
            .with_attributes([KeyValue::new("scope.attr", 1i64)])
            .build();
        let batch = vec![full, ok, other_scope, plain("last", 5, 2)];
        let resource: ResourceAttributesWithSchema = (&SdkResource::builder()
            .with_service_name("encode")
            .with_schema_url([KeyValue::new("deployment", "test")], "https://schema")
            .build())
            .into();

        let ours = request(&batch, &resource);
        let theirs = ExportTraceServiceRequest {
            resource_spans: group_spans_by_resource_and_scope(batch.clone(), &resource),
        };
        assert_eq!(ours, theirs);
        assert_eq!(ours.resource_spans[0].scope_spans.len(), 2);
    }
}
