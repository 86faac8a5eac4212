//! Whole runs: a root with 10 children, a 3-level tree of 100 tasks, and a
//! fan-out of 10 000 spawned tasks; plain and traced, with each provider
//! setting.

use std::future::Future;
use std::hint::black_box;
use std::time::{Duration, Instant};

use tokio::runtime::Runtime;

use crate::rows::{
    Global, Group, Row, Spans, UNSAMPLED_TRACEPARENT, current_thread, flowtrace_leaf, plain_leaf,
};

#[flowtrace::traced(skip_all)]
async fn flowtrace_mid(x: u64) -> u64 {
    let mut sum = 0u64;
    for j in 0..10 {
        sum = sum.wrapping_add(flowtrace_leaf(x.wrapping_add(j)).await);
    }
    sum
}

#[inline(never)]
async fn plain_mid(x: u64) -> u64 {
    let mut sum = 0u64;
    for j in 0..10 {
        sum = sum.wrapping_add(plain_leaf(x.wrapping_add(j)).await);
    }
    sum
}

/// A run: its root and 10 children, awaited one after the other.
async fn flowtrace_root10() -> u64 {
    let mut sum = 0u64;
    for i in 0..10 {
        sum = sum.wrapping_add(flowtrace_leaf(i).await);
    }
    sum
}

async fn plain_root10() -> u64 {
    let mut sum = 0u64;
    for i in 0..10 {
        sum = sum.wrapping_add(plain_leaf(i).await);
    }
    sum
}

/// A run of 100 spans in 3 levels: the run's root, 9 tasks, 10 children each.
async fn flowtrace_tree100() -> u64 {
    let mut sum = 0u64;
    for i in 0..9 {
        sum = sum.wrapping_add(flowtrace_mid(i * 10).await);
    }
    sum
}

async fn plain_tree100() -> u64 {
    let mut sum = 0u64;
    for i in 0..9 {
        sum = sum.wrapping_add(plain_mid(i * 10).await);
    }
    sum
}

fn run_loop<Fut>(
    rt: &Runtime,
    traceparent: Option<&'static str>,
    flowtrace: bool,
    iters: u64,
    shape: fn() -> Fut,
) -> Duration
where
    Fut: Future<Output = u64>,
{
    rt.block_on(async move {
        let start = Instant::now();
        for _ in 0..iters {
            let out = if flowtrace {
                let run = match traceparent {
                    Some(tp) => flowtrace::with_runcontext().custom_context([("traceparent", tp)]),
                    None => flowtrace::with_runcontext(),
                };
                run.run(shape()).await.into_output()
            } else {
                shape().await
            };
            black_box(out);
        }
        start.elapsed()
    })
}

/// One way of running a shape: plain, or flowtrace with a provider setting.
struct Variant {
    id: &'static str,
    label: &'static str,
    global: Global,
    traceparent: Option<&'static str>,
    flowtrace: bool,
    sampled: bool,
}

const VARIANTS: [Variant; 4] = [
    Variant {
        id: "plain",
        label: "plain async calls",
        global: Global::Noop,
        traceparent: None,
        flowtrace: false,
        sampled: false,
    },
    Variant {
        id: "flowtrace_sampled",
        label: "flowtrace, sampled",
        global: Global::Sdk,
        traceparent: None,
        flowtrace: true,
        sampled: true,
    },
    Variant {
        id: "flowtrace_unsampled",
        label: "flowtrace, unsampled carrier",
        global: Global::Sdk,
        traceparent: Some(UNSAMPLED_TRACEPARENT),
        flowtrace: true,
        sampled: false,
    },
    Variant {
        id: "flowtrace_no_provider",
        label: "flowtrace, no provider",
        global: Global::Noop,
        traceparent: None,
        flowtrace: true,
        sampled: false,
    },
];

/// Whole runs: a root with 10 children, and a 3-level tree of 100 tasks.
pub fn nested() -> Group {
    let mut rows = Vec::new();
    type Shape = fn() -> std::pin::Pin<Box<dyn Future<Output = u64>>>;
    let shapes: [(&str, u64, Shape, Shape); 2] = [
        (
            "root10",
            11,
            || Box::pin(plain_root10()),
            || Box::pin(flowtrace_root10()),
        ),
        (
            "tree100",
            100,
            || Box::pin(plain_tree100()),
            || Box::pin(flowtrace_tree100()),
        ),
    ];
    for (shape, tasks, plain, traced) in shapes {
        for v in &VARIANTS {
            let rt = current_thread();
            let (traceparent, flowtrace) = (v.traceparent, v.flowtrace);
            let body = if flowtrace { traced } else { plain };
            let id: &'static str = Box::leak(format!("{shape}_{}", v.id).into_boxed_str());
            let label: &'static str = Box::leak(format!("{shape}: {}", v.label).into_boxed_str());
            rows.push(Row {
                id,
                label,
                what: if tasks == 11 {
                    "one run: the run's root span and 10 child tasks awaited in turn"
                } else {
                    "one run: the run's root span, 9 tasks, each awaiting 10 child tasks (100 spans, 3 levels)"
                },
                global: v.global,
                spans: Spans {
                    per_call: if v.sampled { tasks } else { 0 },
                    ..Spans::default()
                },
                tasks,
                count_allocations: true,
                run: Box::new(move |iters| run_loop(&rt, traceparent, flowtrace, iters, body)),
            });
        }
    }
    Group {
        name: "nested",
        sample_size: 30,
        measurement: Duration::from_secs(2),
        rows,
    }
}

const FAN_OUT: u64 = 10_000;

/// A run that spawns 10 000 tasks on the multi-thread runtime and joins them.
pub fn fan_out() -> Group {
    let mut rows = Vec::new();
    for v in &VARIANTS {
        let (traceparent, flowtrace) = (v.traceparent, v.flowtrace);
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let id: &'static str = Box::leak(format!("fan_out_{}", v.id).into_boxed_str());
        let label: &'static str = Box::leak(format!("fan-out: {}", v.label).into_boxed_str());
        rows.push(Row {
            id,
            label,
            what: "one run spawning 10 000 tasks (`flowtrace::spawn` of a `#[traced]` task, or `tokio::spawn` of a plain one) on a 2-worker multi-thread runtime, then awaiting every handle",
            global: v.global,
            spans: Spans {
                per_call: if v.sampled { FAN_OUT + 1 } else { 0 },
                ..Spans::default()
            },
            tasks: FAN_OUT,
            count_allocations: false,
            run: Box::new(move |iters| {
                rt.block_on(async move {
                    let start = Instant::now();
                    for _ in 0..iters {
                        let out = if flowtrace {
                            let run = match traceparent {
                                Some(tp) => flowtrace::with_runcontext()
                                    .custom_context([("traceparent", tp)]),
                                None => flowtrace::with_runcontext(),
                            };
                            run.run(async {
                                let handles: Vec<_> = (0..FAN_OUT)
                                    .map(|i| flowtrace::spawn(flowtrace_leaf(i)))
                                    .collect();
                                join(handles).await
                            })
                            .await
                            .into_output()
                        } else {
                            let handles: Vec<_> =
                                (0..FAN_OUT).map(|i| tokio::spawn(plain_leaf(i))).collect();
                            join(handles).await
                        };
                        black_box(out);
                    }
                    start.elapsed()
                })
            }),
        });
    }
    Group {
        name: "fan_out",
        sample_size: 10,
        measurement: Duration::from_secs(3),
        rows,
    }
}

async fn join(handles: Vec<tokio::task::JoinHandle<u64>>) -> u64 {
    let mut sum = 0u64;
    for handle in handles {
        sum = sum.wrapping_add(handle.await.expect("task panicked"));
    }
    sum
}
