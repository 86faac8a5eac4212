//! The options of `#[traced]` (input capture, fields, ret, redaction) add no
//! allocation to a task call whose span does not record: everything they do
//! sits behind `is_recording()`.

mod support;

use flowtrace::traced;
use support::alloc::{Counting, allocations};

#[global_allocator]
static GLOBAL: Counting = Counting::PER_THREAD;

#[derive(serde::Serialize, Debug, Clone)]
struct Query {
    text: String,
    password: String,
}

#[traced(skip_all)]
async fn plain(q: Query) -> Query {
    q
}

#[traced(ret, capture = debug, redact(q.text), fields(user = %q.text, len = q.text.len()))]
async fn optioned(q: Query) -> Query {
    q
}

fn allocations_of<F: std::future::Future>(
    rt: &tokio::runtime::Runtime,
    make: impl Fn() -> F,
) -> u64 {
    let unsampled = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00";
    let scope = || flowtrace::custom_context([("traceparent", unsampled)]);
    // Warm up lazies (tracer scope, thread-locals) first.
    rt.block_on(scope().scope(make()));
    let before = allocations();
    rt.block_on(scope().scope(make()));
    allocations() - before
}

#[test]
fn options_add_no_allocation_when_the_span_does_not_record() {
    support::in_memory::exporter();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let q = Query {
        text: "t".repeat(100),
        password: "p".into(),
    };
    let plain_allocs = allocations_of(&rt, || plain(q.clone()));
    let optioned_allocs = allocations_of(&rt, || optioned(q.clone()));
    eprintln!("allocations per unsampled task call (incl. its scope): {plain_allocs}");
    assert_eq!(
        plain_allocs, optioned_allocs,
        "unsampled: options cost no allocation"
    );
    // And they do when the span records, so the comparison can tell.
    let sampled = |f: fn(Query) -> _| {
        let before = allocations();
        rt.block_on(flowtrace::with_runcontext().run(f(q.clone())));
        allocations() - before
    };
    let plain_sampled = sampled(|q| {
        Box::pin(plain(q)) as std::pin::Pin<Box<dyn std::future::Future<Output = Query>>>
    });
    let optioned_sampled = sampled(|q| {
        Box::pin(optioned(q)) as std::pin::Pin<Box<dyn std::future::Future<Output = Query>>>
    });
    assert!(
        optioned_sampled > plain_sampled,
        "{optioned_sampled} vs {plain_sampled}"
    );
}
