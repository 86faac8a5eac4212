//! The child process of `tests/sampling_forced.rs`: continues the carrier
//! its parent passed (`continue`) or resumes the checkpoint in
//! `FLOWTRACE_TEST_SAMPLING_CHECKPOINT` (`resume`), and prints its run's
//! trace id.

use flowtrace::{Checkpoint, traced, with_runcontext};

#[traced]
async fn child_task() {}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mode = std::env::args()
        .nth(1)
        .expect("usage: child_sampling continue|resume");
    let telemetry = flowtrace_telemetry::init().expect("child telemetry");
    let builder = match mode.as_str() {
        "resume" => {
            let json = std::env::var("FLOWTRACE_TEST_SAMPLING_CHECKPOINT").expect("checkpoint");
            let checkpoint: Checkpoint = serde_json::from_str(&json).expect("checkpoint JSON");
            with_runcontext().resume(checkpoint)
        }
        "continue" => with_runcontext(),
        other => panic!("unknown mode {other}: continue or resume"),
    };
    let run = builder.name("child_run").run(child_task()).await;
    println!("CHILD {}", run.trace_id());
    telemetry.shutdown().expect("child flushed");
}
