//! `flowtrace::map`: Flyte's map tasks — one child task per item, at most
//! `max_concurrency` at a time, results in item order, each task span
//! carrying `flowtrace.map.index` and `flowtrace.task.queue_wait_ms`.

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;
use std::time::{Duration, Instant};

use futures_util::stream::{self, StreamExt as _};

use crate::custom_context::CustomContext;
use crate::frame::{Frame, FrameInner, MapItem, current};

/// Runs `task(item)` for every item, at most `max_concurrency` at once
/// (at least 1), and collects every result in item order.
///
/// ```
/// #[flowtrace::traced]
/// async fn square(n: u64) -> u64 { n * n }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let squares = flowtrace::map(1..=4, square, 2).await;
/// assert_eq!(squares, vec![1, 4, 9, 16]);
/// # }
/// ```
pub async fn map<I, F, Fut>(items: I, task: F, max_concurrency: usize) -> Vec<Fut::Output>
where
    I: IntoIterator,
    F: FnMut(I::Item) -> Fut,
    Fut: Future,
{
    let mut out: Vec<(usize, Fut::Output)> =
        items_stream(items, task, max_concurrency).collect().await;
    out.sort_by_key(|(index, _)| *index);
    out.into_iter().map(|(_, v)| v).collect()
}

/// Like [`map`] for tasks returning `Result`, failing fast: the first error
/// (in completion order) is returned at once and the tasks still running are
/// dropped, which ends their spans with `flowtrace.task.cancelled = true`.
///
/// ```
/// #[flowtrace::traced]
/// async fn check(n: u32) -> Result<u32, String> {
///     if n == 3 { Err(format!("{n} is bad")) } else { Ok(n) }
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// assert_eq!(flowtrace::try_map([1, 2], check, 4).await, Ok(vec![1, 2]));
/// assert_eq!(flowtrace::try_map([1, 3], check, 4).await, Err("3 is bad".to_owned()));
/// # }
/// ```
pub async fn try_map<I, F, Fut, T, E>(
    items: I,
    task: F,
    max_concurrency: usize,
) -> Result<Vec<T>, E>
where
    I: IntoIterator,
    F: FnMut(I::Item) -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut results = Box::pin(items_stream(items, task, max_concurrency));
    let mut out = Vec::new();
    while let Some((index, result)) = results.next().await {
        out.push((index, result?));
    }
    out.sort_by_key(|(index, _)| *index);
    Ok(out.into_iter().map(|(_, v)| v).collect())
}

fn items_stream<I, F, Fut>(
    items: I,
    mut task: F,
    max_concurrency: usize,
) -> impl stream::Stream<Item = (usize, Fut::Output)>
where
    I: IntoIterator,
    F: FnMut(I::Item) -> Fut,
    Fut: Future,
{
    let start = Instant::now();
    stream::iter(items.into_iter().enumerate())
        .map(move |(index, item)| Item {
            index,
            queue_wait: start.elapsed(),
            started: false,
            future: task(item),
        })
        .buffer_unordered(max_concurrency.max(1))
}

pin_project_lite::pin_project! {
    /// One item's task: its first poll runs with the item's position in the
    /// frame, so the task it starts records it.
    struct Item<F> {
        index: usize,
        queue_wait: Duration,
        started: bool,
        #[pin]
        future: F,
    }
}

impl<F: Future> Future for Item<F> {
    type Output = (usize, F::Output);

    fn poll(self: Pin<&mut Self>, task: &mut std::task::Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let index = *this.index;
        let polled = if *this.started {
            this.future.poll(task)
        } else {
            *this.started = true;
            let item = Some(MapItem::new(index, *this.queue_wait));
            let frame = current::with(|frame| match frame {
                Some(frame) => Frame {
                    item,
                    ..frame.clone()
                },
                None => Frame {
                    item,
                    ..Frame::new(FrameInner::new(CustomContext::new(), None))
                },
            });
            let _frame = current::enter(&frame);
            this.future.poll(task)
        };
        polled.map(|out| (index, out))
    }
}
