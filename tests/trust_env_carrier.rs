//! The baggage policy where flowtrace reads a carrier from outside the
//! process: `BAGGAGE` in the environment (which a run continues) and a
//! `custom_context` built from a request. The environment is trusted by
//! default; `set_env_baggage_policy` narrows it, `TRACEPARENT` unaffected.

mod support;

use flowtrace::propagation::{BaggagePolicy, set_env_baggage_policy, to_env};
use flowtrace::{ctx, traced, with_runcontext};

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT: &str = "00f067aa0ba902b7";

/// The baggage the task sees (sorted `k=v`) and the `BAGGAGE` it would hand
/// a child process.
#[traced]
async fn look() -> (String, Option<String>) {
    let view = ctx();
    let mut seen: Vec<String> = view
        .baggage()
        .iter()
        .map(|(k, (v, _))| format!("{k}={v}"))
        .collect();
    seen.sort_unstable();
    let child = to_env()
        .into_iter()
        .find(|(k, _)| k == "BAGGAGE")
        .map(|(_, v)| v);
    (seen.join(","), child)
}

#[test]
fn the_env_carrier_and_a_custom_context_from_outside_follow_the_policy() {
    // SAFETY: set before this binary's only test starts other threads.
    unsafe {
        std::env::set_var("TRACEPARENT", format!("00-{TRACE}-{PARENT}-01"));
        std::env::set_var("BAGGAGE", "tenant=acme,user=mallory");
        std::env::remove_var("TRACESTATE");
    }
    support::in_memory::exporter();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();

    let trusted = runtime.block_on(with_runcontext().run(look()));
    assert_eq!(trusted.trace_id(), TRACE, "the run continues TRACEPARENT");
    assert_eq!(
        trusted.output(),
        &(
            "tenant=acme,user=mallory".to_owned(),
            Some("tenant=acme,user=mallory".to_owned())
        ),
        "the environment is trusted by default"
    );

    set_env_baggage_policy(BaggagePolicy::allow(["tenant"]));
    let allowed = runtime.block_on(with_runcontext().run(look()));
    assert_eq!(allowed.trace_id(), TRACE, "TRACEPARENT is not the policy's");
    assert_eq!(
        allowed.output(),
        &("tenant=acme".to_owned(), Some("tenant=acme".to_owned())),
        "only the allowed key reaches the task and the child's BAGGAGE"
    );

    set_env_baggage_policy(BaggagePolicy::drop_all());
    let dropped = runtime.block_on(with_runcontext().run(look()));
    assert_eq!(dropped.output(), &(String::new(), None), "drop all");

    // A carrier that came in a request body, say.
    let from_request = [
        ("traceparent", format!("00-{TRACE}-{PARENT}-01")),
        ("baggage", "tenant=acme,user=mallory".to_owned()),
        ("team", "search".to_owned()),
    ];
    let run = runtime.block_on(
        with_runcontext()
            .custom_context(BaggagePolicy::allow(["tenant"]).filter_pairs(from_request.clone()))
            .run(look()),
    );
    assert_eq!(
        run.output(),
        &("tenant=acme".to_owned(), Some("tenant=acme".to_owned()))
    );
    let run = runtime.block_on(
        with_runcontext()
            .custom_context(BaggagePolicy::drop_all().filter_pairs(from_request))
            .run(async {
                (
                    ctx().custom_context().get("team").map(str::to_owned),
                    look().await,
                )
            }),
    );
    assert_eq!(
        run.output().0.as_deref(),
        Some("search"),
        "other entries are kept"
    );
    assert_eq!(run.output().1, (String::new(), None));
    set_env_baggage_policy(BaggagePolicy::keep_all());
}
