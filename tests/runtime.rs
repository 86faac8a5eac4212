//! The task runtime against opentelemetry_sdk's in-memory exporter: parentage,
//! attributes, failure, and how the map travels across awaits, spawns and
//! fan-out. What a collector receives is tested in `collector.rs`.

mod support;

use std::collections::HashSet;
use std::time::Duration;

use flowtrace::{ctx, custom_context, traced, with_runcontext};
use opentelemetry::Value;
use opentelemetry::trace::{Status, TraceContextExt, Tracer, TracerProvider as _};
use opentelemetry_sdk::trace::SpanData;
use support::in_memory::{attr_str as attr, exporter, spans_of};

fn by_name<'a>(spans: &'a [SpanData], name: &str) -> Vec<&'a SpanData> {
    spans.iter().filter(|s| s.name == name).collect()
}

#[derive(Debug)]
struct FetchError(String);

impl std::fmt::Display for FetchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "fetch failed: {}", self.0)
    }
}

impl std::error::Error for FetchError {}

#[traced]
async fn parse(body: String) -> usize {
    tokio::task::yield_now().await;
    body.len()
}

#[traced]
async fn fetch(url: String) -> Result<usize, FetchError> {
    tokio::time::sleep(Duration::from_millis(1)).await;
    if url.contains("bad") {
        return Err(FetchError(url));
    }
    let n = parse(format!("<html>{url}</html>")).await;
    Ok(n)
}

#[traced(name = "main")]
async fn main_task(urls: Vec<String>) -> Result<usize, FetchError> {
    let results = futures::future::join_all(urls.into_iter().map(fetch)).await;
    Ok(results.into_iter().filter_map(Result::ok).sum())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_run_is_one_trace_with_exact_parentage() {
    exporter();
    let run = with_runcontext()
        .name("workflow_run")
        .custom_context([("team", "search")])
        .run(main_task(vec!["a".into(), "bad".into(), "c".into()]))
        .await;
    assert_eq!(run.trace_id().len(), 32);
    let spans = spans_of(run.trace_id());
    assert_eq!(
        spans.len(),
        1 + 1 + 3 + 2,
        "run + main + 3 fetch + 2 parse: {spans:#?}"
    );

    let root = by_name(&spans, "workflow_run")[0];
    assert_eq!(root.parent_span_id, opentelemetry::trace::SpanId::INVALID);
    let main = by_name(&spans, "main")[0];
    assert_eq!(main.parent_span_id, root.span_context.span_id());
    for fetch in by_name(&spans, "fetch") {
        assert_eq!(fetch.parent_span_id, main.span_context.span_id());
    }
    for parse in by_name(&spans, "parse") {
        let parent = spans
            .iter()
            .find(|s| s.span_context.span_id() == parse.parent_span_id)
            .expect("parse's parent is in the trace");
        assert_eq!(parent.name, "fetch");
    }
    for span in &spans {
        assert_eq!(
            attr(span, "flowtrace.run.id").as_deref(),
            Some(run.run_id()),
            "{}",
            span.name
        );
        assert_eq!(
            attr(span, "flowtrace.run.name").as_deref(),
            Some("workflow_run")
        );
    }
    assert_eq!(attr(main, "flowtrace.task.name").as_deref(), Some("main"));
    assert_eq!(
        attr(main, "code.function.name").as_deref(),
        Some("runtime::main_task"),
        "module path included"
    );

    let failed: Vec<_> = by_name(&spans, "fetch")
        .into_iter()
        .filter(|s| matches!(s.status, Status::Error { .. }))
        .collect();
    assert_eq!(failed.len(), 1);
    let event = failed[0]
        .events
        .iter()
        .find(|e| e.name == "exception")
        .unwrap();
    let message = event
        .attributes
        .iter()
        .find(|kv| kv.key.as_str() == "exception.message")
        .unwrap();
    assert_eq!(message.value, Value::from("fetch failed: bad"));
    assert_eq!(main.status, Status::Unset);
}

struct Service {
    prefix: String,
}

impl Service {
    #[traced(name = "service.call")]
    async fn call(&self, n: u32) -> String {
        format!("{}{n}:{}", self.prefix, ctx().task_name())
    }
}

#[tokio::test]
async fn methods_and_ctx_inside_a_task() {
    exporter();
    let service = Service { prefix: "p".into() };
    let run = with_runcontext().run(service.call(7)).await;
    assert_eq!(run.output(), "p7:service.call");
    let spans = spans_of(run.trace_id());
    let call = by_name(&spans, "service.call")[0];
    assert_eq!(
        attr(call, "code.function.name").as_deref(),
        Some("runtime::Service::call")
    );
}

#[traced]
async fn explode() -> u32 {
    tokio::task::yield_now().await;
    panic!("boom");
}

#[tokio::test]
async fn a_panic_ends_the_span_with_an_error_and_keeps_unwinding() {
    exporter();
    let handle = tokio::spawn(with_runcontext().name("panics").run(explode()));
    let err = handle.await.unwrap_err();
    assert!(err.is_panic());
    let spans: Vec<_> = exporter()
        .get_finished_spans()
        .unwrap()
        .into_iter()
        .filter(|s| s.name == "explode")
        .collect();
    assert_eq!(spans.len(), 1);
    assert!(matches!(&spans[0].status, Status::Error { description } if description == "boom"));
    assert!(spans[0].events.iter().any(|e| e.name == "exception"));
}

#[traced]
async fn read_entry(key: &'static str) -> Option<String> {
    tokio::task::yield_now().await;
    ctx().custom_context().get(key).map(str::to_owned)
}

#[traced]
async fn scoped_child() -> (Option<String>, Option<String>) {
    let inner = custom_context([("k", "inner")])
        .scope(read_entry("k"))
        .await;
    // The scope ended: the task's own map is unchanged.
    (inner, ctx().custom_context().get("k").map(str::to_owned))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scoping_is_innermost_wins_and_never_leaks_upwards() {
    exporter();
    let run = with_runcontext()
        .custom_context([("k", "outer")])
        .run(async {
            let (inner, after) = scoped_child().await;
            let mine = ctx().custom_context().get("k").map(str::to_owned);
            (inner, after, mine)
        })
        .await;
    let (inner, after, mine) = run.into_output();
    assert_eq!(inner.as_deref(), Some("inner"));
    assert_eq!(after.as_deref(), Some("outer"));
    assert_eq!(mine.as_deref(), Some("outer"));
}

#[traced]
async fn sibling(tag: &'static str) -> (String, String) {
    custom_context([("who", tag)])
        .scope(async move {
            tokio::time::sleep(Duration::from_millis(2)).await;
            let who = ctx().custom_context().get("who").unwrap().to_owned();
            let spawned = flowtrace::spawn(read_entry("who")).await.unwrap().unwrap();
            (who, spawned)
        })
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn siblings_spawn_join_and_select_keep_their_own_maps() {
    exporter();
    let run = with_runcontext()
        .run(async {
            let (a, b) = tokio::join!(sibling("a"), sibling("b"));
            let picked = tokio::select! {
                r = sibling("s") => r,
                _ = tokio::time::sleep(Duration::from_secs(5)) => unreachable!(),
            };
            let fanned = futures::future::try_join_all(
                ["x", "y", "z"].map(|t| flowtrace::spawn(sibling(t))),
            )
            .await
            .unwrap();
            (a, b, picked, fanned)
        })
        .await;
    let (a, b, picked, fanned) = run.output().clone();
    assert_eq!(a, ("a".into(), "a".into()));
    assert_eq!(b, ("b".into(), "b".into()));
    assert_eq!(picked, ("s".into(), "s".into()));
    for (t, got) in ["x", "y", "z"].iter().zip(fanned) {
        assert_eq!(got, (t.to_string(), t.to_string()));
    }
    // Spawned tasks are children of the task that spawned them.
    let spans = spans_of(run.trace_id());
    let siblings = by_name(&spans, "sibling");
    for read in by_name(&spans, "read_entry") {
        assert!(
            siblings
                .iter()
                .any(|s| s.span_context.span_id() == read.parent_span_id)
        );
    }
}

#[traced]
async fn leaf(i: usize) -> (usize, String, String) {
    tokio::task::yield_now().await;
    let view = ctx();
    (
        i,
        view.custom_context().get("i").unwrap().to_owned(),
        view.trace_id(),
    )
}

#[traced]
async fn branch(i: usize) -> Vec<(usize, String, String)> {
    futures::future::join_all((0..2).map(|_| leaf(i))).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_runs_do_not_cross_talk() {
    exporter();
    let runs = (0..1000).map(|i| {
        tokio::spawn(
            with_runcontext()
                .custom_context([("i", i.to_string())])
                .run(branch(i)),
        )
    });
    let runs = futures::future::try_join_all(runs).await.unwrap();
    let mut trace_ids = HashSet::new();
    for run in &runs {
        for (i, seen, trace_id) in run.output() {
            assert_eq!(*seen, i.to_string());
            assert_eq!(trace_id, run.trace_id());
        }
        trace_ids.insert(run.trace_id().to_owned());
    }
    assert_eq!(trace_ids.len(), 1000);
}

#[tokio::test]
async fn a_carrier_parent_is_continued_without_a_run_span() {
    exporter();
    let parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let run = with_runcontext()
        .custom_context([("traceparent", parent)])
        .run(parse("x".into()))
        .await;
    assert_eq!(run.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
    let spans = spans_of(run.trace_id());
    let parse = by_name(&spans, "parse")[0];
    assert_eq!(parse.parent_span_id.to_string(), "00f067aa0ba902b7");
    assert!(parse.parent_span_is_remote);
}

#[tokio::test]
async fn the_current_otel_span_is_the_parent_outside_a_run() {
    exporter();
    let tracer = opentelemetry::global::tracer_provider().tracer("app");
    let outer = tracer.start("http.request");
    let cx = opentelemetry::Context::current_with_span(outer);
    let span_id = cx.span().span_context().span_id();
    let trace_id = cx.span().span_context().trace_id().to_string();
    opentelemetry::context::FutureExt::with_context(parse("y".into()), cx.clone()).await;
    cx.span().end();
    let spans = spans_of(&trace_id);
    assert_eq!(by_name(&spans, "parse")[0].parent_span_id, span_id);
}

#[test]
fn task_futures_are_send_when_the_body_is() {
    fn assert_send<T: Send>(_: T) {}
    assert_send(fetch("u".into()));
    assert_send(with_runcontext().run(main_task(vec![])));
    assert_send(custom_context([("a", "b")]).scope(parse(String::new())));
}

#[traced]
async fn carrier_seen_by_child() -> String {
    ctx()
        .custom_context()
        .get("traceparent")
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn an_unsampled_task_passes_on_the_random_trace_id_flag() {
    exporter();
    // W3C Level 2: `02` = random trace id, not sampled. The sampler drops
    // the task span; the flag must still travel to the task's children.
    let parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-02";
    let run = with_runcontext()
        .custom_context([("traceparent", parent)])
        .run(carrier_seen_by_child())
        .await;
    let seen = run.into_output();
    assert!(
        seen.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"),
        "{seen}"
    );
    assert!(seen.ends_with("-02"), "flags kept: {seen}");
}
