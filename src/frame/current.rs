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

use std::cell::Cell;
use std::marker::PhantomData;
use std::ptr;

use opentelemetry::Context;

use super::Frame;

thread_local! {
    static CURRENT: Cell<*const Frame> = const { Cell::new(ptr::null()) };
}

/// Restores the previous frame when dropped; borrows the entered frame, so
/// the slot never points at a frame that is gone.
pub(crate) struct FrameGuard<'a> {
    previous: *const Frame,
    _frame: PhantomData<&'a Frame>,
}

/// Makes `frame` current on this thread until the guard drops.
#[inline]
pub(crate) fn enter(frame: &Frame) -> FrameGuard<'_> {
    let previous = CURRENT.with(|slot| slot.replace(frame));
    FrameGuard {
        previous,
        _frame: PhantomData,
    }
}

impl Drop for FrameGuard<'_> {
    #[inline]
    fn drop(&mut self) {
        CURRENT.with(|slot| slot.set(self.previous));
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
