//! The child process of `tests/reliability_flush.rs`: runs one flush
//! scenario (its first argument) and ends the way the scenario says: `main`
//! returning, `std::process::exit`, a panic that aborts or unwinds.

use flowtrace::traced;

#[traced]
async fn step(i: u32) -> u32 {
    tokio::task::yield_now().await;
    i * 2
}

#[traced]
async fn workflow() -> u32 {
    let mut sum = 0;
    for i in 0..3 {
        sum += step(i).await;
    }
    sum
}

fn run_workflow() -> impl std::future::Future<Output = flowtrace::Run<u32>> {
    flowtrace::with_runcontext()
        .name("flush-run")
        .run(workflow())
}

fn main() {
    let scenario = std::env::args()
        .nth(1)
        .expect("usage: child_flush <scenario>");
    match scenario.as_str() {
        "multi_thread_return" => {
            let runtime = tokio::runtime::Runtime::new().unwrap();
            runtime.block_on(async {
                let _telemetry = flowtrace_telemetry::init().unwrap();
                run_workflow().await;
                // `main` returns: the guard drops here, on a runtime thread.
            });
        }
        "current_thread_return" => {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                let _telemetry = flowtrace_telemetry::init().unwrap();
                run_workflow().await;
                // Dropped on the runtime's only thread, inside `block_on`.
            });
        }
        "exit_after_shutdown" | "exit_without_shutdown" => {
            let runtime = tokio::runtime::Runtime::new().unwrap();
            let telemetry = flowtrace_telemetry::init().unwrap();
            runtime.block_on(run_workflow());
            if scenario == "exit_after_shutdown" {
                telemetry.shutdown().unwrap();
            }
            // No destructor runs after this.
            std::process::exit(0);
        }
        "panic_abort_with_hook" | "panic_abort_without_hook" => {
            // As under `panic = "abort"`: the process dies at the panic.
            std::panic::set_hook(Box::new(|_| std::process::abort()));
            let _telemetry = flowtrace_telemetry::builder()
                .flush_on_panic(scenario == "panic_abort_with_hook")
                .init()
                .unwrap();
            let runtime = tokio::runtime::Runtime::new().unwrap();
            runtime.block_on(async {
                run_workflow().await;
                let _ = flowtrace::spawn(async { panic!("task failed") }).await;
            });
            unreachable!("the panic aborted the process");
        }
        "panic_unwinds_main" => {
            let _telemetry = flowtrace_telemetry::init().unwrap();
            let runtime = tokio::runtime::Runtime::new().unwrap();
            runtime.block_on(async {
                run_workflow().await;
                panic!("main failed");
            });
        }
        "report_dropped" => {
            let _telemetry = flowtrace_telemetry::init().unwrap();
            tokio::runtime::Runtime::new()
                .unwrap()
                .block_on(run_workflow());
        }
        other => panic!("unknown scenario {other}"),
    }
}
