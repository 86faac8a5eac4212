//! The child process of `tests/running.rs`: starts a run whose task
//! outlives the process; the parent kills it mid-task.

use std::time::Duration;

use flowtrace::{traced, with_runcontext};

#[traced]
async fn killed_job() {
    tokio::time::sleep(Duration::from_secs(3600)).await;
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let _telemetry = flowtrace_telemetry::init().expect("child telemetry");
    with_runcontext().name("doomed_run").run(killed_job()).await;
}
