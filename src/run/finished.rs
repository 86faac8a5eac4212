//! A finished run: how it ended, its output, identity and tallies.

use std::time::Duration;

use crate::cache::Checkpoint;

/// How a run ended.
///
/// ```
/// use flowtrace::RunStatus;
///
/// #[flowtrace::traced]
/// async fn fetch() -> Result<u16, std::io::Error> {
///     Err(std::io::Error::other("upstream down"))
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let run = flowtrace::with_runcontext().run(fetch()).await;
/// assert_eq!(run.status(), RunStatus::Failed);
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStatus {
    /// No task called directly by the run failed.
    Succeeded,
    /// A task called directly by the run returned an error (the run span
    /// then has status Error).
    Failed,
}

/// A finished run: its output, identity and tallies.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let run: flowtrace::Run<usize> = flowtrace::with_runcontext().run(async { 3 }).await;
/// println!("run {} in trace {} took {:?}", run.run_id(), run.trace_id(), run.duration());
/// assert_eq!(run.into_output(), 3);
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Run<T> {
    pub(super) output: T,
    pub(super) run_id: String,
    pub(super) name: String,
    pub(super) trace_id: String,
    pub(super) status: RunStatus,
    pub(super) duration: Duration,
    pub(super) tasks: u64,
    pub(super) errors: u64,
    pub(super) checkpoint: Checkpoint,
}

impl<T> Run<T> {
    /// The run's output.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let run = flowtrace::with_runcontext().run(async { vec![1, 2] }).await;
    /// assert_eq!(run.output().len(), 2);
    /// # }
    /// ```
    pub fn output(&self) -> &T {
        &self.output
    }

    /// Takes the output.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let run = flowtrace::with_runcontext().run(async { String::from("answer") }).await;
    /// let answer: String = run.into_output();
    /// assert_eq!(answer, "answer");
    /// # }
    /// ```
    pub fn into_output(self) -> T {
        self.output
    }

    /// The unique id of this run (`flowtrace.run.id` on its spans).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let run = flowtrace::with_runcontext()
    ///     .run(async { flowtrace::ctx().run_id().to_owned() })
    ///     .await;
    /// assert_eq!(run.run_id(), run.output());
    /// # }
    /// ```
    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// The run's name.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let run = flowtrace::with_runcontext().run(async {}).await;
    /// assert_eq!(run.name(), flowtrace::DEFAULT_RUN_NAME);
    /// # }
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The run's trace id as 32 lowercase hex digits (all zeros when no
    /// tracer provider is installed and no parent was carried in).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// // No tracer provider and no carried parent: there is no trace.
    /// let run = flowtrace::with_runcontext().run(async {}).await;
    /// assert_eq!(run.trace_id(), "0".repeat(32));
    /// let carrier = [("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")];
    /// let run = flowtrace::with_runcontext().custom_context(carrier).run(async {}).await;
    /// assert_eq!(run.trace_id(), "0af7651916cd43dd8448eb211c80319c");
    /// # }
    /// ```
    pub fn trace_id(&self) -> &str {
        &self.trace_id
    }

    /// Whether a task called directly by the run failed.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let run = flowtrace::with_runcontext().run(async {}).await;
    /// assert_eq!(run.status(), flowtrace::RunStatus::Succeeded);
    /// # }
    /// ```
    pub fn status(&self) -> RunStatus {
        self.status
    }

    /// Wall time from the run's first poll to its end.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// // The sleep starts inside the run (a `Sleep` made before it would
    /// // count from its own creation).
    /// let run = flowtrace::with_runcontext()
    ///     .run(async { tokio::time::sleep(std::time::Duration::from_millis(5)).await })
    ///     .await;
    /// assert!(run.duration() >= std::time::Duration::from_millis(5));
    /// # }
    /// ```
    pub fn duration(&self) -> Duration {
        self.duration
    }

    /// How many tasks the run started (retry attempts count once). A task
    /// counts once the poll it was started in has ended, so the tasks a
    /// detached spawned task starts in a poll still running when the run
    /// ends are not in it.
    ///
    /// ```
    /// #[flowtrace::traced]
    /// async fn step(n: u32) -> u32 {
    ///     n
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let run = flowtrace::with_runcontext().run(async { step(1).await + step(2).await }).await;
    /// assert_eq!(run.task_count(), 2);
    /// # }
    /// ```
    pub fn task_count(&self) -> u64 {
        self.tasks
    }

    /// How many tasks ended with an error (handled or not).
    ///
    /// ```
    /// #[flowtrace::traced]
    /// async fn flaky(fail: bool) -> Result<(), std::io::Error> {
    ///     if fail { Err(std::io::Error::other("flaky")) } else { Ok(()) }
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let run = flowtrace::with_runcontext()
    ///     .run(async {
    ///         let _ = flaky(true).await;
    ///         flaky(false).await
    ///     })
    ///     .await;
    /// assert_eq!((run.task_count(), run.error_count()), (2, 1));
    /// # }
    /// ```
    pub fn error_count(&self) -> u64 {
        self.errors
    }

    /// The outputs of the run's cached tasks, to [`resume`](crate::RunBuilder::resume) it.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let run = flowtrace::with_runcontext().run(async {}).await;
    /// let saved = serde_json::to_string(&run.checkpoint()).unwrap();
    /// let checkpoint: flowtrace::Checkpoint = serde_json::from_str(&saved).unwrap();
    /// let again = flowtrace::with_runcontext().resume(checkpoint).run(async {}).await;
    /// assert_eq!(again.run_id(), run.run_id());
    /// # }
    /// ```
    pub fn checkpoint(&self) -> Checkpoint {
        self.checkpoint.clone()
    }
}
