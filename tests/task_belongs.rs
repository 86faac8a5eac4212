//! A task belongs to the task that called it, however it is started: each
//! tokio habit (`tokio::spawn`, `JoinSet`, `spawn_local`, `select!`,
//! `FuturesUnordered`, a future awaited by another task, `spawn_blocking`)
//! gives the child its caller's trace, parent span and `custom_context`,
//! asserted on the exported spans and on what the child reads from `ctx()`.

mod support;

use std::collections::HashMap;
use std::future::Future;

use flowtrace::{Carry as _, CarryFn as _, traced};
use futures::StreamExt as _;
use futures::stream::FuturesUnordered;
use opentelemetry::trace::{SpanContext, SpanId};
use opentelemetry_sdk::trace::SpanData;
use support::in_memory::{attr, exporter, named, spans_of};
use tokio::task::{JoinSet, LocalSet};

/// What a child task reads from `ctx()`.
#[derive(Debug, Clone, PartialEq)]
struct Seen {
    task: String,
    trace_id: String,
    span_id: String,
    run_id: String,
    team: Option<String>,
}

fn seen() -> Seen {
    let cx = flowtrace::ctx();
    Seen {
        task: cx.task_name().to_owned(),
        trace_id: cx.trace_id(),
        span_id: cx.span_id(),
        run_id: cx.run_id().to_owned(),
        team: cx.custom_context().get("team").map(str::to_owned),
    }
}

#[traced(skip_all)]
async fn child() -> Seen {
    tokio::task::yield_now().await;
    seen()
}

#[traced(skip_all)]
fn sync_child() -> Seen {
    seen()
}

/// The habits, one parent task each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Habit {
    Await,
    Select,
    FlowtraceSpawn,
    TokioSpawn,
    JoinSetSpawn,
    CreatedThenSpawned,
    AsyncMoveInCurrentTask,
    FuturesUnordered,
    AwaitedByAnotherTask,
    SpawnLocal,
    SpawnBlockingInCurrentTask,
    FlowtraceSpawnBlocking,
}

const ALL: [Habit; 12] = [
    Habit::Await,
    Habit::Select,
    Habit::FlowtraceSpawn,
    Habit::TokioSpawn,
    Habit::JoinSetSpawn,
    Habit::CreatedThenSpawned,
    Habit::AsyncMoveInCurrentTask,
    Habit::FuturesUnordered,
    Habit::AwaitedByAnotherTask,
    Habit::SpawnLocal,
    Habit::SpawnBlockingInCurrentTask,
    Habit::FlowtraceSpawnBlocking,
];

/// Another task that awaits a future it was handed.
#[traced(skip_all)]
async fn awaits<F: Future>(future: F) -> F::Output {
    future.await
}

/// Starts `child` the way `habit` says (`spawn_local` needs a `LocalSet`).
async fn start_child(habit: Habit) -> Seen {
    match habit {
        Habit::Await => child().await,
        Habit::Select => {
            tokio::select! {
                seen = child() => seen,
                () = tokio::time::sleep(std::time::Duration::from_secs(60)) => unreachable!(),
            }
        }
        Habit::FlowtraceSpawn => flowtrace::spawn(child()).await.unwrap(),
        Habit::TokioSpawn => tokio::spawn(child()).await.unwrap(),
        Habit::JoinSetSpawn => {
            let mut set = JoinSet::new();
            set.spawn(child());
            set.join_next().await.unwrap().unwrap()
        }
        Habit::CreatedThenSpawned => {
            let future = child();
            tokio::task::yield_now().await;
            tokio::spawn(future).await.unwrap()
        }
        Habit::AsyncMoveInCurrentTask => {
            tokio::spawn(async move { child().await }.in_current_task())
                .await
                .unwrap()
        }
        Habit::FuturesUnordered => {
            let mut set: FuturesUnordered<_> = [child()].into_iter().collect();
            set.next().await.unwrap()
        }
        Habit::AwaitedByAnotherTask => awaits(child()).await,
        Habit::SpawnLocal => tokio::task::spawn_local(child()).await.unwrap(),
        Habit::SpawnBlockingInCurrentTask => {
            tokio::task::spawn_blocking(sync_child.in_current_task())
                .await
                .unwrap()
        }
        Habit::FlowtraceSpawnBlocking => flowtrace::spawn_blocking(sync_child).await.unwrap(),
    }
}

fn child_name(habit: Habit) -> &'static str {
    match habit {
        Habit::SpawnBlockingInCurrentTask | Habit::FlowtraceSpawnBlocking => "sync_child",
        _ => "child",
    }
}

#[traced(skip_all)]
async fn parent(habit: Habit) -> (Seen, Seen) {
    (seen(), start_child(habit).await)
}

/// One run with `team` in its map, its body the `parent` task (inside a
/// `LocalSet`, for `spawn_local`): what parent and child saw, and the run's
/// trace id.
async fn run_parent(habit: Habit, team: &str) -> (Seen, Seen, String) {
    exporter();
    let local = LocalSet::new();
    let run = local
        .run_until(
            flowtrace::with_runcontext()
                .name("belongs")
                .custom_context([("team", team)])
                .run(parent(habit)),
        )
        .await;
    let trace_id = run.trace_id().to_owned();
    let (parent_seen, child_seen) = run.into_output();
    (parent_seen, child_seen, trace_id)
}

fn span_id(span: &SpanData) -> String {
    span.span_context.span_id().to_string()
}

/// The exported spans and the child's view agree: same trace as the run,
/// the child's parent span is `parent`, and `team` reached the child.
fn assert_belongs(habit: Habit, parent_seen: &Seen, child_seen: &Seen, trace_id: &str, team: &str) {
    let spans = spans_of(trace_id);
    let parent_span = spans
        .iter()
        .find(|s| s.name == "parent" && span_id(s) == parent_seen.span_id)
        .unwrap_or_else(|| panic!("{habit:?}: the parent span is in the run's trace"));
    let child_span = spans
        .iter()
        .find(|s| span_id(s) == child_seen.span_id)
        .unwrap_or_else(|| {
            panic!("{habit:?}: the child's span is in the run's trace: {child_seen:?}")
        });
    assert_eq!(child_span.name, child_name(habit), "{habit:?}");
    assert_eq!(
        child_span.parent_span_id,
        parent_span.span_context.span_id(),
        "{habit:?}: the child's parent span is its caller"
    );
    assert_eq!(child_seen.trace_id, trace_id, "{habit:?}");
    assert_eq!(child_seen.task, child_name(habit), "{habit:?}");
    assert_eq!(child_seen.run_id, parent_seen.run_id, "{habit:?}");
    assert_eq!(child_seen.team.as_deref(), Some(team), "{habit:?}");
}

async fn one_habit(habit: Habit) {
    let (parent_seen, child_seen, trace_id) = run_parent(habit, "search").await;
    assert_eq!(parent_seen.team.as_deref(), Some("search"));
    assert_belongs(habit, &parent_seen, &child_seen, &trace_id, "search");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_await() {
    one_habit(Habit::Await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_in_select() {
    one_habit(Habit::Select).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flowtrace_spawn_child() {
    one_habit(Habit::FlowtraceSpawn).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokio_spawn_child() {
    one_habit(Habit::TokioSpawn).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_set_spawn_child() {
    one_habit(Habit::JoinSetSpawn).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_created_then_tokio_spawned() {
    one_habit(Habit::CreatedThenSpawned).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokio_spawn_async_move_in_current_task() {
    one_habit(Habit::AsyncMoveInCurrentTask).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_in_futures_unordered() {
    one_habit(Habit::FuturesUnordered).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_created_here_awaited_by_another_task() {
    one_habit(Habit::AwaitedByAnotherTask).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spawn_local_child_on_a_local_set() {
    one_habit(Habit::SpawnLocal).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spawn_blocking_closure_in_current_task() {
    one_habit(Habit::SpawnBlockingInCurrentTask).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flowtrace_spawn_blocking_sync_child() {
    one_habit(Habit::FlowtraceSpawnBlocking).await;
}

/// Without the helper, an `async move` block handed to `tokio::spawn` is
/// polled where no task is current: the child starts a trace of its own.
/// This is what `in_current_task()` is for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_async_move_block_without_the_helper_is_not_carried() {
    exporter();
    let run = flowtrace::with_runcontext()
        .custom_context([("team", "search")])
        .run(async { tokio::spawn(async move { child().await }).await.unwrap() })
        .await;
    assert_ne!(run.output().trace_id, run.trace_id());
    assert_eq!(run.output().team, None);
}

/// A task first polled on another tokio task than its caller's records how
/// long it waited; one awaited in place does not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spawned_task_records_its_wait_for_the_first_poll() {
    for (habit, recorded) in [(Habit::TokioSpawn, true), (Habit::Await, false)] {
        let (_, child_seen, trace_id) = run_parent(habit, "search").await;
        let spans = spans_of(&trace_id);
        let span = spans
            .iter()
            .find(|s| span_id(s) == child_seen.span_id)
            .expect("the child span");
        let wait = attr(span, flowtrace::attributes::QUEUE_WAIT_MS);
        assert_eq!(wait.is_some(), recorded, "{habit:?}: {wait:?}");
        if let Some(opentelemetry::Value::F64(ms)) = wait {
            assert!((0.0..60_000.0).contains(&ms), "{ms}");
        }
    }
}

#[traced(skip_all)]
async fn mixed() -> Vec<(Habit, Seen, Seen)> {
    let mut out = Vec::new();
    for habit in ALL {
        out.push((habit, seen(), start_child(habit).await));
    }
    out
}

/// 1 000 runs at once, each with its own `team`, each starting a child every
/// way: every child sees its own run's map and trace and nests under its
/// caller.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_runs_mixing_every_habit_do_not_cross_talk() {
    exporter();
    let local = LocalSet::new();
    let runs = local
        .run_until(futures::future::join_all((0..1000).map(|i| {
            flowtrace::with_runcontext()
                .name("mixed_run")
                .custom_context([("team", format!("team-{i}"))])
                .run(mixed())
        })))
        .await;
    let mut by_trace: HashMap<String, Vec<SpanData>> = HashMap::new();
    for span in exporter().get_finished_spans().unwrap() {
        let trace_id = span.span_context.trace_id().to_string();
        by_trace.entry(trace_id).or_default().push(span);
    }
    for (i, run) in runs.iter().enumerate() {
        let team = format!("team-{i}");
        let spans = &by_trace[run.trace_id()];
        let mixed_span = named(spans, "mixed");
        for (habit, parent_seen, child_seen) in run.output() {
            assert_eq!(parent_seen.team.as_deref(), Some(team.as_str()));
            assert_eq!(parent_seen.span_id, span_id(mixed_span));
            let child_span = spans
                .iter()
                .find(|s| span_id(s) == child_seen.span_id)
                .unwrap_or_else(|| panic!("run {i} {habit:?}: child span in the trace"));
            assert_eq!(
                child_span.parent_span_id,
                mixed_span.span_context.span_id(),
                "run {i} {habit:?}"
            );
            assert_eq!(child_seen.trace_id, run.trace_id(), "run {i} {habit:?}");
            assert_eq!(child_seen.run_id, run.run_id(), "run {i} {habit:?}");
            assert_eq!(
                child_seen.team.as_deref(),
                Some(team.as_str()),
                "run {i} {habit:?}"
            );
        }
        // The run's root, `mixed`, every child and the task awaiting one.
        assert_eq!(spans.len(), 2 + ALL.len() + 1, "run {i}");
    }
}

#[traced(skip_all)]
async fn main_task() -> (Seen, Seen) {
    (seen(), child().await)
}

/// Called before the run exists, first polled inside it: the task joins the
/// run it is polled in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_called_outside_any_run_joins_the_run_it_is_polled_in() {
    exporter();
    let task = main_task();
    let run = flowtrace::with_runcontext()
        .name("fallback")
        .custom_context([("team", "search")])
        .run(task)
        .await;
    let (main_seen, child_seen) = run.output().clone();
    let spans = spans_of(run.trace_id());
    let root = named(&spans, "fallback");
    let main = named(&spans, "main_task");
    assert_eq!(main.parent_span_id, root.span_context.span_id());
    assert_eq!(main_seen.team.as_deref(), Some("search"));
    assert_eq!(main_seen.trace_id, run.trace_id());
    assert_eq!(main_seen.run_id, run.run_id());
    assert_eq!(
        named(&spans, "child").parent_span_id,
        main.span_context.span_id()
    );
    assert_eq!(child_seen.team.as_deref(), Some("search"));
}

/// Created outside any run, handed to `flowtrace::spawn` inside one: the task
/// joins that run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_created_outside_any_run_and_spawned_inside_one_joins_it() {
    exporter();
    let task = child();
    let run = flowtrace::with_runcontext()
        .name("fallback_spawn")
        .custom_context([("team", "search")])
        .run(async move { flowtrace::spawn(task).await.unwrap() })
        .await;
    let spans = spans_of(run.trace_id());
    let root = named(&spans, "fallback_spawn");
    let span = named(&spans, "child");
    assert_eq!(span.parent_span_id, root.span_context.span_id());
    assert_eq!(run.output().team.as_deref(), Some("search"));
    assert_eq!(run.output().trace_id, run.trace_id());
    assert_eq!(run.output().span_id, span_id(span));
}

/// A task called before a `custom_context` scope or a nested run wraps it
/// takes the wrapper's map and run.
#[traced(skip_all)]
async fn wrapped_later() -> (Seen, Seen, String) {
    let scoped = flowtrace::custom_context([("team", "inner")])
        .scope(child())
        .await;
    let nested = flowtrace::with_runcontext()
        .name("nested")
        .run(child())
        .await;
    let nested_run = nested.run_id().to_owned();
    (scoped, nested.into_output(), nested_run)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scope_or_nested_run_wrapping_a_called_task_applies_to_it() {
    exporter();
    let run = flowtrace::with_runcontext()
        .custom_context([("team", "search")])
        .run(wrapped_later())
        .await;
    let (scoped, nested, nested_run) = run.output().clone();
    assert_eq!(scoped.team.as_deref(), Some("inner"));
    assert_eq!(scoped.run_id, run.run_id());
    assert_eq!(nested.run_id, nested_run);
    assert_ne!(nested.run_id, run.run_id());
    let spans = spans_of(run.trace_id());
    let nested_root = named(&spans, "nested");
    let nested_child = spans
        .iter()
        .find(|s| span_id(s) == nested.span_id)
        .expect("the nested run's child");
    assert_eq!(
        nested_child.parent_span_id,
        nested_root.span_context.span_id()
    );
}

#[traced(skip_all, parent = parent.clone())]
async fn explicit_parent(parent: SpanContext) -> Option<String> {
    flowtrace::ctx()
        .baggage()
        .get("user.id")
        .map(|v| v.to_string())
}

#[traced(skip_all, new_trace)]
async fn new_trace() -> (Option<String>, String) {
    let cx = flowtrace::ctx();
    (
        cx.baggage().get("user.id").map(|v| v.to_string()),
        cx.trace_id(),
    )
}

/// An explicit parent replaces the span, not the baggage; so does a new
/// trace.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_explicit_parent_or_new_trace_keeps_the_callers_baggage() {
    exporter();
    let other = SpanContext::new(
        opentelemetry::trace::TraceId::from_hex("0af7651916cd43dd8448eb211c80319c").unwrap(),
        SpanId::from_hex("b7ad6b7169203331").unwrap(),
        opentelemetry::trace::TraceFlags::SAMPLED,
        true,
        Default::default(),
    );
    let run = flowtrace::with_runcontext()
        .custom_context([("baggage", "user.id=alice")])
        .run({
            let other = other.clone();
            async move { (explicit_parent(other).await, new_trace().await) }
        })
        .await;
    let (explicit, (fresh, fresh_trace)) = run.output().clone();
    assert_eq!(explicit.as_deref(), Some("alice"));
    assert_eq!(fresh.as_deref(), Some("alice"));
    assert_ne!(fresh_trace, run.trace_id());
    let span = support::in_memory::exporter()
        .get_finished_spans()
        .unwrap()
        .into_iter()
        .find(|s| s.name == "explicit_parent" && s.span_context.trace_id() == other.trace_id())
        .expect("the explicit parent's trace");
    assert_eq!(span.parent_span_id, other.span_id());
}

#[traced(skip_all)]
async fn otel_baggage_seen() -> Option<String> {
    use opentelemetry::baggage::BaggageExt as _;
    opentelemetry::Context::map_current(|cx| cx.baggage().get("tenant").map(|v| v.to_string()))
}

/// Baggage the caller attached to the OpenTelemetry context itself (not
/// through the map) reaches a task it called and `tokio::spawn`ed, in a
/// sampled run and in one whose tasks start no span.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_callers_opentelemetry_baggage_reaches_a_spawned_task() {
    use opentelemetry::baggage::BaggageExt as _;
    exporter();
    for traceparent in [
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00",
    ] {
        let run = flowtrace::with_runcontext()
            .custom_context([("traceparent", traceparent)])
            .run(async {
                let cx =
                    opentelemetry::Context::current_with_baggage([opentelemetry::KeyValue::new(
                        "tenant", "acme",
                    )]);
                let child = {
                    let _attached = cx.attach();
                    otel_baggage_seen()
                };
                tokio::spawn(child).await.unwrap()
            })
            .await;
        assert_eq!(run.output().as_deref(), Some("acme"), "{traceparent}");
    }
}

#[traced(skip_all)]
async fn current_span_seen() -> (String, bool) {
    use opentelemetry::trace::TraceContextExt as _;
    opentelemetry::Context::map_current(|cx| {
        let span = cx.span();
        let sc = span.span_context();
        (sc.trace_id().to_string(), sc.is_sampled())
    })
}

/// A task under an unsampled parent, `tokio::spawn`ed, runs in its caller's
/// trace with the decision not to sample: OpenTelemetry code inside it (an
/// instrumented HTTP client, say) propagates both. (The provider here is set
/// on `global` directly, so the task starts the SDK's non-recording span;
/// `tests/carry_unsampled.rs` has the case where it starts none.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spawned_task_under_an_unsampled_parent_keeps_the_trace_and_the_decision() {
    exporter();
    let run = flowtrace::with_runcontext()
        .custom_context([(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00",
        )])
        .run(async { tokio::spawn(current_span_seen()).await.unwrap() })
        .await;
    assert_eq!(
        run.output(),
        &("4bf92f3577b34da6a3ce929d0e0e4736".to_owned(), false)
    );
}
