//! The current task's [`Frame`] (hot path): one thread-local pointer, set by
//! the future that owns the frame for the length of each of its polls.
//!
//! A task does not put its frame into the OpenTelemetry `Context` (that
//! clones the context's value map and allocates three times per task); it
//! keeps the frame in its own future and points this slot at it while it is
//! polled, restoring the previous value afterwards, panics included. Runs,
//! scopes and spawned futures also store their frame in the `Context` they
//! attach, so code that captures `Context::current()` and attaches it
//! somewhere else still carries the run's map: the slot wins, the context's
//! frame is the fallback.
//!
//! The slot also counts the tasks started under the entered frame, its own
//! children: they are added to the run's count once, when the frame's poll
//! ends, instead of one atomic add per task.

use std::cell::Cell;
use std::ptr;
use std::sync::atomic::Ordering;

use opentelemetry::Context;

use super::Frame;
use crate::run_state::RunInfo;

thread_local! {
    static CURRENT: Cell<*const Frame> = const { Cell::new(ptr::null()) };
    /// Tasks started under the entered frame and not yet added to its
    /// run's count.
    static STARTED: Cell<u64> = const { Cell::new(0) };
}

/// Restores the previous frame when dropped, after adding the tasks started
/// under this one to its run's count; borrows the entered frame, so the
/// slot never points at a frame that is gone.
pub(crate) struct FrameGuard<'a> {
    previous: *const Frame,
    previous_started: u64,
    frame: &'a Frame,
}

/// Makes `frame` current on this thread until the guard drops.
#[inline]
pub(crate) fn enter(frame: &Frame) -> FrameGuard<'_> {
    let previous = CURRENT.with(|slot| slot.replace(frame));
    let previous_started = STARTED.with(|started| started.replace(0));
    FrameGuard {
        previous,
        previous_started,
        frame,
    }
}

impl Drop for FrameGuard<'_> {
    #[inline]
    fn drop(&mut self) {
        let started = STARTED.with(|started| started.replace(self.previous_started));
        if started != 0 {
            if let Some(run) = self.frame.run() {
                run.tasks.fetch_add(started, Ordering::Relaxed);
            }
        }
        CURRENT.with(|slot| slot.set(self.previous));
    }
}

/// Counts a task of `run` started under the current frame (`run` is that
/// frame's run): added to the run when the entered frame's poll ends, or
/// now when the frame is only in the OpenTelemetry context.
#[inline]
pub(crate) fn count_started(run: &RunInfo) {
    if CURRENT.with(Cell::get).is_null() {
        run.tasks.fetch_add(1, Ordering::Relaxed);
    } else {
        STARTED.with(|started| started.set(started.get() + 1));
    }
}

/// Calls `f` with the current frame: the one entered on this thread, else
/// the one in the current OpenTelemetry context, else `None`.
#[inline]
pub(crate) fn with<T>(f: impl FnOnce(Option<&Frame>) -> T) -> T {
    let entered = CURRENT.with(Cell::get);
    if entered.is_null() {
        Context::map_current(|cx| f(cx.get::<Frame>()))
    } else {
        // SAFETY: the pointer was set by `enter` from a `&Frame` whose guard
        // is still alive further up this thread's stack (guards restore the
        // previous value in LIFO order when dropped, unwinding included),
        // so the frame is alive and not moved for the length of this call.
        f(Some(unsafe { &*entered }))
    }
}

/// A clone of the current frame.
pub(crate) fn cloned() -> Option<Frame> {
    with(|frame| frame.cloned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_frames_restore_in_order() {
        let outer = Frame::for_task("outer");
        let inner = Frame::for_task("inner");
        assert!(cloned().is_none());
        {
            let _o = enter(&outer);
            assert_eq!(with(|f| f.and_then(|f| f.task)), Some("outer"));
            {
                let _i = enter(&inner);
                assert_eq!(with(|f| f.and_then(|f| f.task)), Some("inner"));
            }
            assert_eq!(with(|f| f.and_then(|f| f.task)), Some("outer"));
        }
        assert!(cloned().is_none());
    }

    #[test]
    fn a_panic_restores_the_previous_frame() {
        let outer = Frame::for_task("outer");
        let _o = enter(&outer);
        let caught = std::panic::catch_unwind(|| {
            let inner = Frame::for_task("inner");
            let _i = enter(&inner);
            panic!("boom");
        });
        assert!(caught.is_err());
        assert_eq!(with(|f| f.and_then(|f| f.task)), Some("outer"));
    }
}
