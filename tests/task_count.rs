//! A run counts every task that started in it, however it was started, with
//! no tracer provider installed: the path where a task starts no span and
//! only carries its caller's frame.

use std::sync::atomic::{AtomicUsize, Ordering};

use opentelemetry::Context;

#[flowtrace::traced(skip_all)]
async fn leaf(x: u64) -> u64 {
    x + 1
}

#[flowtrace::traced(skip_all)]
async fn branch(width: u64) -> u64 {
    let mut sum = 0;
    for i in 0..width {
        sum += leaf(i).await;
    }
    sum
}

#[flowtrace::traced(skip_all)]
fn sync_leaf(x: u64) -> u64 {
    x * 2
}

#[flowtrace::traced(skip_all)]
async fn explodes() -> u64 {
    tokio::task::yield_now().await;
    panic!("boom");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_way_of_starting_a_task_is_counted_once() {
    let run = flowtrace::with_runcontext()
        .run(async {
            // Awaited in turn: 3.
            for i in 0..3 {
                leaf(i).await;
            }
            // Nested: 1 branch + 4 leaves.
            branch(4).await;
            // `flowtrace::spawn`: 2 + 2 × 3 leaves.
            let spawned: Vec<_> = (0..2).map(|_| flowtrace::spawn(branch(3))).collect();
            for handle in spawned {
                handle.await.unwrap();
            }
            // `tokio::spawn` of a call made here: 5.
            let tokio_spawned: Vec<_> = (0..5).map(|i| tokio::spawn(leaf(i))).collect();
            for handle in tokio_spawned {
                handle.await.unwrap();
            }
            // `flowtrace::map`: 6.
            flowtrace::map(0..6u64, leaf, 2).await;
            // A sync task, and one on a blocking thread: 2.
            sync_leaf(1);
            flowtrace::spawn_blocking(|| sync_leaf(2)).await.unwrap();
            // A task whose body panics, on a spawned task: 1.
            assert!(flowtrace::spawn(explodes()).await.is_err());
            // Called where only the OpenTelemetry context holds the run's
            // frame (a plain thread that attached it): 1 + 7.
            let cx = Context::current();
            std::thread::spawn(move || {
                let _attached = cx.attach();
                futures::executor::block_on(branch(7))
            })
            .join()
            .unwrap();
        })
        .await;
    assert_eq!(run.task_count(), 3 + 5 + 8 + 5 + 6 + 2 + 1 + 8);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_runs_count_only_their_own_tasks() {
    static DONE: AtomicUsize = AtomicUsize::new(0);
    let runs: Vec<_> = (0..200u64)
        .map(|width| {
            tokio::spawn(flowtrace::with_runcontext().run(async move {
                let handles: Vec<_> = (0..2)
                    .map(|_| flowtrace::spawn(branch(width % 7)))
                    .collect();
                for handle in handles {
                    handle.await.unwrap();
                }
                DONE.fetch_add(1, Ordering::Relaxed);
                width
            }))
        })
        .collect();
    for handle in runs {
        let run = handle.await.unwrap();
        let width = *run.output();
        assert_eq!(
            run.task_count(),
            2 * (1 + width % 7),
            "run of width {width}"
        );
    }
    assert_eq!(DONE.load(Ordering::Relaxed), 200);
}
