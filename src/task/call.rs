//! The future a `#[traced] async fn` returns: what the call captured, then,
//! from the first poll on, the running task in the same place.
//!
//! One value in two states, so the future a call hands its caller is the
//! larger of the two, not their sum: a small future moves in registers
//! where an `async` block holding both would be copied byte by byte on
//! every move (the call's return, `.await`, `tokio::spawn`).

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;

use super::{Started, Task, TaskMeta, TaskStart};
use crate::carry::Caller;
use crate::frame::current;
use crate::outcome::Outcome;

pin_project_lite::pin_project! {
    /// The future of a `#[traced] async fn` call.
    ///
    /// Until its first poll it holds the caller captured at the call and
    /// `setup`, which receives the started span (to record the arguments)
    /// and returns the body; from then on the running [`Task`].
    #[must_use = "futures do nothing unless polled"]
    pub struct Call<S, F, O> {
        #[pin]
        state: State<S, F, O>,
    }
}

pin_project_lite::pin_project! {
    #[project = StateProj]
    #[project_replace = StateOwned]
    enum State<S, F, O> {
        // Called, not yet polled.
        Called {
            meta: &'static TaskMeta,
            caller: Caller,
            setup: S,
            outcome: O,
        },
        // Polled at least once.
        Running {
            #[pin]
            task: Task<F, O>,
        },
        // Between the two, for the length of the start.
        Starting,
    }
}

impl<S, F, O> Call<S, F, O>
where
    S: FnOnce(&mut Started) -> F,
    F: Future,
    O: Outcome<F::Output>,
{
    /// A call of the task `meta` that captured `caller`; `setup` records the
    /// arguments on the started span and returns the body, `outcome` reads
    /// the body's output.
    #[inline]
    pub fn new(meta: &'static TaskMeta, caller: Caller, setup: S, outcome: O) -> Self {
        Self {
            state: State::Called {
                meta,
                caller,
                setup,
                outcome,
            },
        }
    }
}

impl<S, F, O> Future for Call<S, F, O>
where
    S: FnOnce(&mut Started) -> F,
    F: Future,
    O: Outcome<F::Output>,
{
    type Output = F::Output;

    #[inline]
    fn poll(self: Pin<&mut Self>, task: &mut std::task::Context<'_>) -> Poll<F::Output> {
        let mut state = self.project().state;
        if let StateProj::Called { meta, .. } = state.as_mut().project() {
            let meta: &'static TaskMeta = meta;
            // One look at the current frame for either start. The common one
            // reads the capture where it is and takes only its frame: the
            // capture is not moved.
            let (mut started, setup, outcome) = current::with(|current| {
                let skipped = match state.as_mut().project() {
                    StateProj::Called { caller, .. } => caller
                        .take_skipped_here(current)
                        .map(|inner| meta.start_skipped(inner, current)),
                    _ => None,
                };
                let StateOwned::Called {
                    caller,
                    setup,
                    outcome,
                    ..
                } = state.as_mut().project_replace(State::Starting)
                else {
                    unreachable!("the state was just matched")
                };
                let started = match skipped {
                    Some(started) => started,
                    None => TaskStart::new(meta).start_from_in(caller, current),
                };
                (started, setup, outcome)
            });
            let body = setup(&mut started);
            state.set(State::Running {
                task: started.run(body, outcome),
            });
        }
        match state.project() {
            StateProj::Running { task: running } => running.poll(task),
            // `setup` panicked during an earlier poll.
            _ => panic!("a `#[traced]` task polled again after its start panicked"),
        }
    }
}
