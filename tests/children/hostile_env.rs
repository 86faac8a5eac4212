//! The child process of `tests/reliability_hostile.rs`: reads the hostile
//! environment carrier its parent gave it, starts a run, and prints how many
//! carrier variables it kept and the run's trace id.

use flowtrace::ctx;

fn main() {
    // A tracer provider whose spans get real ids (no exporter needed).
    opentelemetry::global::set_tracer_provider(
        opentelemetry_sdk::trace::SdkTracerProvider::builder().build(),
    );
    let carrier = flowtrace::propagation::EnvCarrier::from_process();
    let run =
        futures::executor::block_on(flowtrace::with_runcontext().run(async { ctx().trace_id() }));
    println!("vars={} trace={}", carrier.vars().len(), run.output());
}
