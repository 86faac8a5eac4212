//! `Scope::join_run`: the tasks under the scope belong to a run started
//! elsewhere — its `flowtrace.run.id` and `flowtrace.run.name` on their
//! spans, in `ctx()` — and nothing of a run starts here: no run span, no
//! run metric. Asserted on the SDK's in-memory span and metric exporters.

mod support;

use std::sync::OnceLock;

use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData};
use opentelemetry_sdk::metrics::{InMemoryMetricExporter, PeriodicReader, SdkMeterProvider};
use support::in_memory::{attr_str, exporter, spans_of};

/// A remote parent in a trace of the test's own, as a worker gets it from
/// the header of the run it continues.
fn parent(trace_id: &str) -> String {
    format!("00-{trace_id}-00f067aa0ba902b7-01")
}

/// What a task reads from `ctx()`: the run id and name.
fn seen() -> (String, String) {
    let ctx = flowtrace::ctx();
    (ctx.run_id().to_owned(), ctx.run_name().to_owned())
}

#[flowtrace::traced]
async fn outer() -> ((String, String), (String, String)) {
    (seen(), inner().await)
}

#[flowtrace::traced]
async fn inner() -> (String, String) {
    seen()
}

#[flowtrace::traced]
async fn failing() -> Result<(), String> {
    Err("refused".to_owned())
}

/// The process's meter provider, read back through an in-memory exporter
/// (one per test binary: every test of it records there).
fn meters() -> &'static (SdkMeterProvider, InMemoryMetricExporter) {
    static METERS: OnceLock<(SdkMeterProvider, InMemoryMetricExporter)> = OnceLock::new();
    METERS.get_or_init(|| {
        let exporter = InMemoryMetricExporter::default();
        let provider = SdkMeterProvider::builder()
            .with_reader(PeriodicReader::builder(exporter.clone()).build())
            .build();
        flowtrace::metrics::set_meter_provider(&provider);
        (provider, exporter)
    })
}

/// The data points of `metric` in the latest collection whose
/// `flowtrace.run.name` is `run_name`: (histogram counts or sums' values).
fn run_points(metric: &str, run_name: &str) -> Vec<f64> {
    let (provider, exporter) = meters();
    provider.force_flush().expect("flush");
    let Some(last) = exporter.get_finished_metrics().expect("metrics").pop() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for m in last
        .scope_metrics()
        .flat_map(|s| s.metrics())
        .filter(|m| m.name() == metric)
    {
        match m.data() {
            AggregatedMetrics::F64(MetricData::Histogram(h)) => out.extend(
                h.data_points()
                    .filter(|p| names(p.attributes(), run_name))
                    .map(|p| p.count() as f64),
            ),
            AggregatedMetrics::I64(MetricData::Sum(s)) => out.extend(
                s.data_points()
                    .filter(|p| names(p.attributes(), run_name))
                    .map(|p| p.value() as f64),
            ),
            _ => {}
        }
    }
    out
}

/// Whether `attributes` name the run `run_name`.
fn names<'a>(
    mut attributes: impl Iterator<Item = &'a opentelemetry::KeyValue>,
    run_name: &str,
) -> bool {
    attributes.any(|kv| {
        kv.key.as_str() == flowtrace::attributes::RUN_NAME && kv.value.as_str() == run_name
    })
}

#[tokio::test]
async fn tasks_of_a_joined_run_carry_its_id_and_name_and_no_run_span_is_emitted() {
    exporter();
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let (outer_seen, inner_seen) = flowtrace::custom_context([("traceparent", parent(trace_id))])
        .join_run("client-0190", "client_run")
        .scope(outer())
        .await;
    let expected = ("client-0190".to_owned(), "client_run".to_owned());
    assert_eq!(outer_seen, expected, "ctx() in the task");
    assert_eq!(inner_seen, expected, "ctx() in the task it calls");
    assert_eq!(seen(), (String::new(), String::new()), "outside: no run");

    let spans = spans_of(trace_id);
    let mut names: Vec<&str> = spans.iter().map(|s| s.name.as_ref()).collect();
    names.sort_unstable();
    assert_eq!(names, ["inner", "outer"], "the tasks only, no run span");
    for span in &spans {
        assert_eq!(
            attr_str(span, flowtrace::attributes::RUN_ID).as_deref(),
            Some("client-0190"),
            "{}",
            span.name
        );
        assert_eq!(
            attr_str(span, flowtrace::attributes::RUN_NAME).as_deref(),
            Some("client_run"),
            "{}",
            span.name
        );
    }
    let outer = spans.iter().find(|s| s.name == "outer").unwrap();
    assert_eq!(
        outer.parent_span_id.to_string(),
        "00f067aa0ba902b7",
        "under the scope's parent"
    );

    // Tasks in a run started here carry the same attributes, the same way.
    let run = flowtrace::with_runcontext()
        .run_id("local-0190")
        .name("local_run")
        .run(inner())
        .await;
    let in_run = spans_of(run.trace_id());
    let task = in_run.iter().find(|s| s.name == "inner").expect("inner");
    let keys = |span: &opentelemetry_sdk::trace::SpanData| {
        let mut keys: Vec<String> = span
            .attributes
            .iter()
            .map(|kv| kv.key.to_string())
            .collect();
        keys.sort();
        keys
    };
    let joined = spans.iter().find(|s| s.name == "inner").unwrap();
    assert_eq!(keys(joined), keys(task), "the attributes of a run's task");
}

#[tokio::test]
async fn a_joined_run_records_no_run_metric() {
    meters();
    exporter();
    // A run started here records its duration and its count in flight...
    let run = flowtrace::with_runcontext()
        .name("metered_run")
        .run(inner())
        .await;
    assert_eq!(run.task_count(), 1);
    assert_eq!(
        run_points(flowtrace::metrics::RUN_DURATION, "metered_run"),
        [1.0]
    );
    assert_eq!(
        run_points(flowtrace::metrics::RUN_ACTIVE, "metered_run"),
        [0.0]
    );
    // ...a joined one neither, however often it is joined, failing or not.
    for _ in 0..3 {
        let out = flowtrace::custom_context([("traceparent", parent(&"5".repeat(32)))])
            .join_run("joined-0190", "joined_run")
            .scope(async {
                let _ = failing().await;
                outer().await
            })
            .await;
        assert_eq!(out.0.1, "joined_run");
    }
    assert!(
        run_points(flowtrace::metrics::RUN_DURATION, "joined_run").is_empty(),
        "no run duration"
    );
    assert!(
        run_points(flowtrace::metrics::RUN_ACTIVE, "joined_run").is_empty(),
        "no run in flight"
    );
    let tasks = spans_of(&"5".repeat(32));
    assert_eq!(tasks.len(), 3 * 3, "{tasks:#?}");
    assert!(tasks.iter().all(|s| s.name != "joined_run"), "no run span");
}

#[tokio::test]
async fn a_scope_joining_the_run_it_is_in_stays_in_it_and_an_empty_id_joins_nothing() {
    exporter();
    let run = flowtrace::with_runcontext()
        .run_id("same-0190")
        .name("same_run")
        .run(async {
            let same = flowtrace::custom_context([("team", "search")])
                .join_run("same-0190", "same_run")
                .scope(inner())
                .await;
            let empty = flowtrace::custom_context([("team", "search")])
                .join_run("", "nameless")
                .scope(inner())
                .await;
            (same, empty)
        })
        .await;
    let expected = ("same-0190".to_owned(), "same_run".to_owned());
    assert_eq!(run.output(), &(expected.clone(), expected));
    assert_eq!(run.task_count(), 2, "both tasks counted in the run");
    for span in spans_of(run.trace_id()) {
        assert_eq!(
            attr_str(&span, flowtrace::attributes::RUN_ID).as_deref(),
            Some("same-0190")
        );
    }
    let outside = flowtrace::custom_context([("team", "search")])
        .join_run("", "nameless")
        .scope(async { seen() })
        .await;
    assert_eq!(outside, (String::new(), String::new()));
}

#[tokio::test]
async fn a_joined_run_inside_another_run_is_the_run_of_the_tasks_under_the_scope() {
    exporter();
    let run = flowtrace::with_runcontext()
        .run_id("outer-0190")
        .name("outer_run")
        .run(async {
            let joined = flowtrace::custom_context([("team", "search")])
                .join_run("other-0190", "other_run")
                .scope(inner())
                .await;
            (joined, inner().await)
        })
        .await;
    let (joined, own) = run.output();
    assert_eq!(joined, &("other-0190".to_owned(), "other_run".to_owned()));
    assert_eq!(own, &("outer-0190".to_owned(), "outer_run".to_owned()));
    assert_eq!(
        run.task_count(),
        1,
        "the joined run's task is not this run's"
    );
    let spans = spans_of(run.trace_id());
    let ids: Vec<(String, Option<String>)> = spans
        .iter()
        .filter(|s| s.name == "inner")
        .map(|s| {
            (
                s.name.to_string(),
                attr_str(s, flowtrace::attributes::RUN_ID),
            )
        })
        .collect();
    assert_eq!(ids.len(), 2, "{spans:#?}");
    assert!(ids.contains(&("inner".to_owned(), Some("other-0190".to_owned()))));
    assert!(ids.contains(&("inner".to_owned(), Some("outer-0190".to_owned()))));
}
