//! The counting global allocator of the tests and benches that measure
//! memory. A binary opts in with
//! `#[global_allocator] static ALLOC: Counting = Counting::PER_THREAD;`
//! (or [`Counting::HEAP`]); the other binaries never install it.
//!
//! - Per thread, always: the allocations (reallocations included) and the
//!   bytes requested, read with [`allocations`] and [`count_allocations`].
//!   Thread-local counters, so other threads' work does not show and the
//!   measured thread pays no shared write.
//! - For the whole process, with [`Counting::HEAP`] only: the bytes in use
//!   and their peak since [`reset_peak`], read with [`current`], [`peak`]
//!   and [`peak_growth`]. Shared atomics, so only the binaries that bound
//!   memory pay for them.
//!
//! Included with `mod support;` by the tests and with `#[path]` by the
//! benches.

// Each binary uses its own part.
#![allow(dead_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The system allocator, counted.
pub struct Counting {
    heap: bool,
}

impl Counting {
    /// Counts each thread's allocations and bytes requested.
    pub const PER_THREAD: Counting = Counting { heap: false };
    /// Also the process's bytes in use and their peak.
    pub const HEAP: Counting = Counting { heap: true };
}

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
    static BYTES: Cell<u64> = const { Cell::new(0) };
}

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

impl Counting {
    fn requested(&self, size: usize) {
        // `try_with`: during thread teardown the slots may be gone.
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        let _ = BYTES.try_with(|n| n.set(n.get() + size as u64));
    }

    fn grew(&self, size: usize) {
        if self.heap {
            let now = CURRENT.fetch_add(size, Ordering::Relaxed) + size;
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
    }

    fn shrank(&self, size: usize) {
        if self.heap {
            CURRENT.fetch_sub(size, Ordering::Relaxed);
        }
    }
}

// SAFETY: every call is forwarded unchanged to `System`; the counters are
// only bookkeeping: const-initialised thread locals without destructors and
// atomics, so touching them never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        self.requested(layout.size());
        // SAFETY: same contract as the caller's.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            self.grew(layout.size());
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        self.requested(layout.size());
        // SAFETY: same contract as the caller's.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            self.grew(layout.size());
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) };
        self.shrank(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        self.requested(new_size);
        // SAFETY: same contract as the caller's.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            self.shrank(layout.size());
            self.grew(new_size);
        }
        new
    }
}

/// Allocations made on this thread so far.
pub fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

/// Allocations and bytes requested by this thread while `f` runs.
pub fn count_allocations<T>(f: impl FnOnce() -> T) -> (T, u64, u64) {
    let before = (allocations(), BYTES.with(Cell::get));
    let out = f();
    let after = (allocations(), BYTES.with(Cell::get));
    (out, after.0 - before.0, after.1 - before.1)
}

/// Bytes allocated right now, by the whole process.
pub fn current() -> usize {
    let now = CURRENT.load(Ordering::Relaxed);
    // The test harness has allocated by the time a test runs.
    assert!(
        now > 0,
        "no heap counted: install `Counting::HEAP` as the #[global_allocator]"
    );
    now
}

/// Starts a new peak measurement from the current level.
pub fn reset_peak() {
    PEAK.store(current(), Ordering::Relaxed);
}

/// The highest level since [`reset_peak`].
pub fn peak() -> usize {
    PEAK.load(Ordering::Relaxed)
}

/// How far above the level at its start `f` took the heap, with its result.
pub fn peak_growth<T>(f: impl FnOnce() -> T) -> (usize, T) {
    reset_peak();
    let base = current();
    let out = f();
    (peak().saturating_sub(base), out)
}
