//! The rows: one task call (or one run) per framework, each written the way
//! that framework's users write it, in a loop that returns its own elapsed
//! time (criterion's `iter_custom`), so setup — runtime, run context,
//! subscriber — stays outside the timed part.

use std::collections::HashMap;
use std::future::Future;
use std::hint::black_box;
use std::time::{Duration, Instant};

use opentelemetry::propagation::TextMapPropagator as _;
use opentelemetry::trace::{
    Span as _, SpanContext, SpanId, SpanKind, TraceContextExt as _, TraceFlags, TraceId,
    TraceState, Tracer as _, TracerProvider as _,
};
use opentelemetry::{Context, InstrumentationScope, KeyValue, global};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
use tokio::runtime::Runtime;
use tracing::Instrument as _;
use tracing_subscriber::layer::SubscriberExt as _;

/// A carrier parent that is sampled / not sampled (W3C `traceparent`).
pub const SAMPLED_TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
pub const UNSAMPLED_TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00";

/// Which global tracer provider a row needs.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Global {
    /// The SDK provider with the counting exporter, installed with
    /// `flowtrace::set_tracer_provider`.
    Sdk,
    /// The same provider installed with `opentelemetry::global` directly.
    SdkDirect,
    /// None installed (the global no-op).
    Noop,
    /// [`Global::Sdk`] plus an SDK meter provider for flowtrace's metrics.
    SdkMetrics,
    /// [`Global::Sdk`] plus an SDK logger provider (batch log processor,
    /// counting exporter) installed with `flowtrace::set_logger_provider`:
    /// start records are written.
    SdkLogs,
}

/// How many spans a row exports: `per_call` per timed call, `per_loop` once
/// per timed loop (a run's root span, a subscriber's root span).
#[derive(Clone, Copy, Debug, Default)]
pub struct Spans {
    pub per_call: u64,
    pub per_loop: u64,
    /// Exported through fastrace's reporter instead of the SDK.
    pub fastrace: bool,
}

/// One measured row.
pub struct Row {
    pub id: &'static str,
    pub label: &'static str,
    pub what: &'static str,
    pub global: Global,
    pub spans: Spans,
    /// Tasks per timed call (1 for a task call, 11 / 100 for a run).
    pub tasks: u64,
    /// Whether allocations can be counted (single-threaded rows only).
    pub count_allocations: bool,
    pub run: Box<dyn FnMut(u64) -> Duration>,
}

/// A criterion group of rows with its own timing settings.
pub struct Group {
    pub name: &'static str,
    pub sample_size: usize,
    pub measurement: Duration,
    pub rows: Vec<Row>,
}

pub fn current_thread() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn span_context(traceparent: &str) -> SpanContext {
    let parts: Vec<&str> = traceparent.split('-').collect();
    let flags = if parts[3] == "01" {
        TraceFlags::SAMPLED
    } else {
        TraceFlags::default()
    };
    SpanContext::new(
        TraceId::from_hex(parts[1]).expect("trace id"),
        SpanId::from_hex(parts[2]).expect("span id"),
        flags,
        true,
        TraceState::NONE,
    )
}

fn carrier(traceparent: &str) -> HashMap<String, String> {
    HashMap::from([("traceparent".to_owned(), traceparent.to_owned())])
}

// ---- the task bodies, one per framework ------------------------------------

#[inline(never)]
pub async fn plain_leaf(x: u64) -> u64 {
    x.wrapping_add(1)
}

#[flowtrace::traced(skip_all)]
pub async fn flowtrace_leaf(x: u64) -> u64 {
    x.wrapping_add(1)
}

/// The same task with its argument captured (`flowtrace.input.x`, JSON).
#[flowtrace::traced]
async fn flowtrace_leaf_captured(x: u64) -> u64 {
    x.wrapping_add(1)
}

/// The task with every capture option, to show they cost nothing unsampled.
#[flowtrace::traced(ret, capture = debug, redact(x), fields(doubled = x * 2, shown = %x))]
async fn flowtrace_leaf_options(x: u64) -> u64 {
    x.wrapping_add(1)
}

#[tracing::instrument(skip_all)]
async fn tracing_leaf(x: u64) -> u64 {
    x.wrapping_add(1)
}

#[fastrace::trace]
async fn fastrace_leaf(x: u64) -> u64 {
    x.wrapping_add(1)
}

/// Flyte 2's four steps by hand, with the stock propagator and a plain map:
/// extract, start span, inject into a new map, run the body under both.
async fn flyte_by_hand(
    carrier: &HashMap<String, String>,
    tracer: &SdkTracer,
    propagator: &TraceContextPropagator,
    x: u64,
) -> u64 {
    use opentelemetry::context::FutureExt as _;
    let parent = propagator.extract(carrier);
    let span = tracer.start_with_context("task", &parent);
    let cx = parent.with_span(span);
    let mut child = HashMap::new();
    propagator.inject_context(&cx, &mut child);
    let out = flyte_body(child, x).with_context(cx.clone()).await;
    cx.span().end();
    out
}

async fn flyte_body(map: HashMap<String, String>, x: u64) -> u64 {
    black_box(&map);
    x.wrapping_add(1)
}

/// fastrace's cross-process pattern applied per task: decode the carrier's
/// `traceparent`, open a root span under it, encode the child's carrier.
async fn fastrace_carrier(carrier: &HashMap<String, String>, x: u64) -> u64 {
    use fastrace::collector::SpanContext as FrContext;
    use fastrace::future::FutureExt as _;
    let parent = carrier
        .get("traceparent")
        .and_then(|tp| FrContext::decode_w3c_traceparent(tp))
        .unwrap_or_else(FrContext::random);
    let root = fastrace::Span::root("task", parent);
    let mut child = HashMap::new();
    if let Some(sc) = FrContext::from_span(&root) {
        child.insert("traceparent".to_owned(), sc.encode_w3c_traceparent());
    }
    flyte_body(child, x).in_span(root).await
}

/// The attributes a flowtrace task span carries, for the raw rows that add
/// them by hand.
fn task_attributes(
    run_id: impl Into<opentelemetry::Value>,
    run_name: impl Into<opentelemetry::Value>,
) -> Vec<KeyValue> {
    vec![
        KeyValue::new("flowtrace.task.name", "task"),
        KeyValue::new("code.function.name", "bench::task"),
        KeyValue::new("flowtrace.run.id", run_id),
        KeyValue::new("flowtrace.run.name", run_name),
    ]
}

// ---- loops -------------------------------------------------------------------

/// Times `iters` sequential awaits of `call`.
async fn timed_calls<C, Fut>(iters: u64, call: C) -> Duration
where
    C: Fn(u64) -> Fut,
    Fut: Future<Output = u64>,
{
    let start = Instant::now();
    for i in 0..iters {
        black_box(call(black_box(i)).await);
    }
    start.elapsed()
}

/// Times the calls inside a flowtrace run (with `traceparent` as the run's
/// carrier, or a new root span for the run when `None`).
fn in_run<C, Fut>(rt: &Runtime, traceparent: Option<&str>, iters: u64, call: C) -> Duration
where
    C: Fn(u64) -> Fut,
    Fut: Future<Output = u64>,
{
    let run = match traceparent {
        Some(tp) => flowtrace::with_runcontext().custom_context([("traceparent", tp)]),
        None => flowtrace::with_runcontext(),
    };
    rt.block_on(run.run(timed_calls(iters, call))).into_output()
}

// ---- the groups --------------------------------------------------------------

/// Rows of one task call each.
pub fn task_call(provider: &SdkTracerProvider) -> Group {
    let tracer = provider.tracer("bench");
    let sampled = Context::new().with_remote_span_context(span_context(SAMPLED_TRACEPARENT));
    let unsampled = Context::new().with_remote_span_context(span_context(UNSAMPLED_TRACEPARENT));
    let mut rows = Vec::new();

    let rt = current_thread();
    rows.push(Row {
        id: "plain",
        label: "plain async call",
        what: "an `async fn` awaited in a loop on a current-thread runtime: the floor",
        global: Global::Noop,
        spans: Spans::default(),
        tasks: 1,
        count_allocations: true,
        run: Box::new(move |iters| rt.block_on(timed_calls(iters, plain_leaf))),
    });

    for (id, label, what, parent) in [
        (
            "raw_sdk_sampled",
            "raw SDK span, sampled",
            "`tracer.start_with_context(name, &parent)` + `end()` on an `SdkTracer` held by the caller; sampled parent, parent-based sampler, batch processor",
            sampled.clone(),
        ),
        (
            "raw_sdk_unsampled",
            "raw SDK span, unsampled",
            "the same under an unsampled parent: the sampler drops it, a non-recording span",
            unsampled.clone(),
        ),
    ] {
        let tracer = tracer.clone();
        let recorded = parent.span().span_context().is_sampled();
        rows.push(Row {
            id,
            label,
            what,
            global: Global::Noop,
            spans: Spans {
                per_call: u64::from(recorded),
                ..Spans::default()
            },
            tasks: 1,
            count_allocations: true,
            run: Box::new(move |iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    let mut span = tracer.start_with_context("task", &parent);
                    black_box(&span);
                    span.end();
                }
                start.elapsed()
            }),
        });
    }

    {
        let tracer = tracer.clone();
        let parent = sampled.clone();
        let run_id = String::from("0123456789abcdef");
        let run_name = String::from("run");
        rows.push(Row {
            id: "raw_sdk_sampled_attrs",
            label: "raw SDK span, sampled, flowtrace's 4 attributes",
            what: "the sampled raw span with the attributes a flowtrace task records (`flowtrace.task.name`, `code.function.name`, `flowtrace.run.id`, `flowtrace.run.name`; the two run values cloned `String`s as in flowtrace)",
            global: Global::Noop,
            spans: Spans {
                per_call: 1,
                ..Spans::default()
            },
            tasks: 1,
            count_allocations: true,
            run: Box::new(move |iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    let attributes = task_attributes(run_id.clone(), run_name.clone());
                    let mut span = tracer
                        .span_builder("task")
                        .with_kind(SpanKind::Internal)
                        .with_attributes(attributes)
                        .start_with_context(&tracer, &parent);
                    black_box(&span);
                    span.end();
                }
                start.elapsed()
            }),
        });
    }

    {
        let tracer = tracer.clone();
        let parent = sampled.clone();
        let run_id =
            opentelemetry::StringValue::from(std::sync::Arc::<str>::from("0123456789abcdef"));
        let run_name = opentelemetry::StringValue::from(std::sync::Arc::<str>::from("run"));
        let rt = current_thread();
        rows.push(Row {
            id: "raw_sdk_sampled_in_context",
            label: "raw SDK span in the current context, flowtrace's 4 attributes",
            what: "the floor for a task span `Context::current()` can reach: the attributes row's span put into a context (`Context::with_span`: a box and an `Arc`), attached while an async body runs, ended and dropped; run id and name as shared strings, as flowtrace keeps them",
            global: Global::Noop,
            spans: Spans {
                per_call: 1,
                ..Spans::default()
            },
            tasks: 1,
            count_allocations: true,
            run: Box::new(move |iters| {
                use opentelemetry::context::FutureExt as _;
                rt.block_on(timed_calls(iters, |x| {
                    let attributes = task_attributes(run_id.clone(), run_name.clone());
                    let span = tracer
                        .span_builder("task")
                        .with_kind(SpanKind::Internal)
                        .with_attributes(attributes)
                        .start_with_context(&tracer, &parent);
                    let cx = parent.with_span(span);
                    async move {
                        let out = plain_leaf(x).with_context(cx.clone()).await;
                        cx.span().end();
                        out
                    }
                }))
            }),
        });
    }

    {
        let parent = sampled.clone();
        let scope = InstrumentationScope::builder("bench").build();
        rows.push(Row {
            id: "raw_sdk_global_sampled",
            label: "raw SDK span via the global provider, sampled",
            what: "the sampled raw span, but the tracer fetched per call as flowtrace does: `global::tracer_provider().tracer_with_scope(..)` (RwLock read, `Arc` clone, boxed tracer)",
            global: Global::Sdk,
            spans: Spans {
                per_call: 1,
                ..Spans::default()
            },
            tasks: 1,
            count_allocations: true,
            run: Box::new(move |iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    let tracer = global::tracer_provider().tracer_with_scope(scope.clone());
                    let mut span = tracer.start_with_context("task", &parent);
                    black_box(&span);
                    span.end();
                }
                start.elapsed()
            }),
        });
    }

    {
        let rt = current_thread();
        let tracer = tracer.clone();
        let carrier = carrier(SAMPLED_TRACEPARENT);
        let propagator = TraceContextPropagator::new();
        rows.push(Row {
            id: "flyte_by_hand",
            label: "Flyte pattern by hand, sampled",
            what: "stock `TraceContextPropagator`, `HashMap<String, String>` carrier: extract, start span, inject into a new map, run the body under the context (`with_context`), end",
            global: Global::Noop,
            spans: Spans {
                per_call: 1,
                ..Spans::default()
            },
            tasks: 1,
            count_allocations: true,
            run: Box::new(move |iters| {
                rt.block_on(timed_calls(iters, |x| {
                    flyte_by_hand(&carrier, &tracer, &propagator, x)
                }))
            }),
        });
    }

    {
        let rt = current_thread();
        let tracer = tracer.clone();
        rows.push(Row {
            id: "tracing_instrument",
            label: "`tracing::instrument` + tracing-opentelemetry, sampled",
            what: "`#[instrument(skip_all)] async fn` under a root `tracing` span; `Registry` + `OpenTelemetryLayer` over the same SDK tracer (thread-local default subscriber)",
            global: Global::Noop,
            spans: Spans {
                per_call: 1,
                per_loop: 1,
                ..Spans::default()
            },
            tasks: 1,
            count_allocations: true,
            run: Box::new(move |iters| {
                let subscriber = tracing_subscriber::registry()
                    .with(tracing_opentelemetry::layer().with_tracer(tracer.clone()));
                let _default = tracing::subscriber::set_default(subscriber);
                let root = tracing::info_span!("bench_root");
                rt.block_on(timed_calls(iters, tracing_leaf).instrument(root))
            }),
        });
    }

    {
        let rt = current_thread();
        rows.push(Row {
            id: "fastrace_trace",
            label: "fastrace `#[trace]`, local parent",
            what: "`#[fastrace::trace] async fn` under a root span set as the local parent (fastrace's cheapest path: no carrier per task)",
            global: Global::Noop,
            spans: Spans {
                per_call: 1,
                per_loop: 1,
                fastrace: true,
            },
            tasks: 1,
            count_allocations: true,
            run: Box::new(move |iters| {
                use fastrace::future::FutureExt as _;
                let root = fastrace::Span::root(
                    "bench_root",
                    fastrace::collector::SpanContext::random(),
                );
                rt.block_on(timed_calls(iters, fastrace_leaf).in_span(root))
            }),
        });
    }

    {
        let rt = current_thread();
        let carrier = carrier(SAMPLED_TRACEPARENT);
        rows.push(Row {
            id: "fastrace_carrier",
            label: "fastrace, traceparent carrier per task",
            what: "fastrace's cross-process API per task: `decode_w3c_traceparent` from the map, `Span::root` under it, `encode_w3c_traceparent` into a new map, body `in_span`",
            global: Global::Noop,
            spans: Spans {
                per_call: 1,
                per_loop: 0,
                fastrace: true,
            },
            tasks: 1,
            count_allocations: true,
            run: Box::new(move |iters| {
                rt.block_on(timed_calls(iters, |x| fastrace_carrier(&carrier, x)))
            }),
        });
    }

    for (id, label, what, global, traceparent, per_call, per_loop) in [
        (
            "flowtrace_sampled",
            "flowtrace `#[traced]`, sampled",
            "`#[traced(skip_all)] async fn` inside `with_runcontext().run(..)` (the run's root span is the parent); global provider = the SDK provider",
            Global::Sdk,
            None,
            1,
            1,
        ),
        (
            "flowtrace_unsampled",
            "flowtrace `#[traced]`, unsampled",
            "the same, the run's carrier an unsampled `traceparent` (flags `00`): the parent-based sampler drops every task span",
            Global::Sdk,
            Some(UNSAMPLED_TRACEPARENT),
            0,
            0,
        ),
        (
            "flowtrace_sampled_start_record",
            "flowtrace `#[traced]`, sampled, start record written",
            "the sampled row with an SDK logger provider (the SDK's batch log processor with the specification's defaults, an exporter that only counts) installed by `flowtrace::set_logger_provider`: each task span that records writes its start record (`flowtrace::running`)",
            Global::SdkLogs,
            None,
            1,
            1,
        ),
        (
            "flowtrace_unsampled_start_record",
            "flowtrace `#[traced]`, unsampled, logger provider installed",
            "the unsampled row with the logger provider installed: a span that does not record writes no start record",
            Global::SdkLogs,
            Some(UNSAMPLED_TRACEPARENT),
            0,
            0,
        ),
        (
            "flowtrace_sampled_metrics",
            "flowtrace `#[traced]`, sampled, meter provider installed",
            "the sampled row with an SDK meter provider (a periodic reader that does not collect during the loop) installed by `flowtrace::metrics::set_meter_provider`: the task's duration, attempt and in-flight counts recorded through its call site's bound handles, and its exemplar kept",
            Global::SdkMetrics,
            None,
            1,
            1,
        ),
        (
            "flowtrace_unsampled_metrics",
            "flowtrace `#[traced]`, unsampled, meter provider installed",
            "the unsampled row with the meter provider installed: every task is measured, sampled or not",
            Global::SdkMetrics,
            Some(UNSAMPLED_TRACEPARENT),
            0,
            0,
        ),
        (
            "flowtrace_sampled_direct",
            "flowtrace `#[traced]`, sampled, provider set on `global` directly",
            "the sampled row with the provider installed by `opentelemetry::global::set_tracer_provider` instead of flowtrace's `set_tracer_provider`: tasks go through the boxed global tracer",
            Global::SdkDirect,
            None,
            1,
            1,
        ),
        (
            "flowtrace_unsampled_direct",
            "flowtrace `#[traced]`, unsampled, provider set on `global` directly",
            "the unsampled row with the provider installed by `opentelemetry::global::set_tracer_provider`: flowtrace cannot know the sampler, so every task starts the SDK's non-recording span (what skipping it saves)",
            Global::SdkDirect,
            Some(UNSAMPLED_TRACEPARENT),
            0,
            0,
        ),
        (
            "flowtrace_no_provider",
            "flowtrace `#[traced]`, no provider",
            "the sampled row's code with no tracer provider installed (the global no-op): what the map and context cost alone",
            Global::Noop,
            None,
            0,
            0,
        ),
    ] {
        let rt = current_thread();
        rows.push(Row {
            id,
            label,
            what,
            global,
            spans: Spans {
                per_call,
                per_loop,
                fastrace: false,
            },
            tasks: 1,
            count_allocations: true,
            run: Box::new(move |iters| in_run(&rt, traceparent, iters, flowtrace_leaf)),
        });
    }

    {
        let rt = current_thread();
        rows.push(Row {
            id: "flowtrace_sampled_input",
            label: "flowtrace `#[traced]`, sampled, 1 argument captured",
            what: "the sampled row without `skip_all`: the `u64` argument serialized to JSON as `flowtrace.input.x`",
            global: Global::Sdk,
            spans: Spans {
                per_call: 1,
                per_loop: 1,
                fastrace: false,
            },
            tasks: 1,
            count_allocations: true,
            run: Box::new(move |iters| in_run(&rt, None, iters, flowtrace_leaf_captured)),
        });
    }

    {
        let rt = current_thread();
        rows.push(Row {
            id: "flowtrace_unsampled_options",
            label: "flowtrace `#[traced]`, unsampled, with capture options",
            what: "the unsampled row with `ret`, `capture = debug`, `redact`, `fields(..)`: everything they do sits behind `is_recording()`, so allocations equal the unsampled row's",
            global: Global::Sdk,
            spans: Spans {
                per_call: 0,
                per_loop: 0,
                fastrace: false,
            },
            tasks: 1,
            count_allocations: true,
            run: Box::new(move |iters| {
                in_run(&rt, Some(UNSAMPLED_TRACEPARENT), iters, flowtrace_leaf_options)
            }),
        });
    }

    // `tokio::spawn(task())` from inside a run: the task is first polled on
    // another tokio task, under the caller it captured at the call.
    {
        let rt = current_thread();
        rows.push(Row {
            id: "spawn_plain",
            label: "`tokio::spawn` of a plain async call",
            what: "`tokio::spawn(plain_leaf(x)).await` in a loop on a current-thread runtime: the floor for the spawned rows",
            global: Global::Noop,
            spans: Spans::default(),
            tasks: 1,
            count_allocations: true,
            run: Box::new(move |iters| {
                rt.block_on(timed_calls(iters, |x| async move {
                    tokio::spawn(plain_leaf(x)).await.unwrap_or_default()
                }))
            }),
        });
    }
    for (id, label, what, global, traceparent, per_call, per_loop) in [
        (
            "spawn_flowtrace_sampled",
            "`tokio::spawn` of `#[traced]`, sampled",
            "`tokio::spawn(flowtrace_leaf(x)).await` inside a run: the task runs under the caller it captured at the call and records `flowtrace.task.queue_wait_ms`",
            Global::Sdk,
            None,
            1,
            1,
        ),
        (
            "spawn_flowtrace_unsampled",
            "`tokio::spawn` of `#[traced]`, unsampled",
            "the same under an unsampled carrier: no span, the caller's frame and context carried into the spawned task",
            Global::Sdk,
            Some(UNSAMPLED_TRACEPARENT),
            0,
            0,
        ),
        (
            "spawn_flowtrace_no_provider",
            "`tokio::spawn` of `#[traced]`, no provider",
            "the same with no tracer provider installed",
            Global::Noop,
            None,
            0,
            0,
        ),
    ] {
        let rt = current_thread();
        rows.push(Row {
            id,
            label,
            what,
            global,
            spans: Spans {
                per_call,
                per_loop,
                fastrace: false,
            },
            tasks: 1,
            count_allocations: true,
            run: Box::new(move |iters| {
                in_run(&rt, traceparent, iters, |x| async move {
                    tokio::spawn(flowtrace_leaf(x)).await.unwrap_or_default()
                })
            }),
        });
    }

    // flowtrace's rows right after the raw SDK rows they are compared with,
    // the other frameworks after them: fastrace's collector thread keeps
    // reporting for a while after its rows end.
    rows.sort_by_key(|row| {
        ["flyte", "tracing", "fastrace"]
            .iter()
            .any(|other| row.id.starts_with(other))
    });
    Group {
        name: "task_call",
        sample_size: 40,
        measurement: Duration::from_secs(2),
        rows,
    }
}
