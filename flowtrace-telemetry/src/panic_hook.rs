//! `TelemetryBuilder::flush_on_panic`: a panic hook that exports the spans
//! ended so far before the panic goes on, for processes a panic ends
//! without unwinding to the guard (`panic = "abort"`, an abort in an earlier
//! hook, `std::process::exit` after a task's panic was observed).

use std::time::Instant;

use super::processor::{self, Pending, Processor, WeakProcessor};

/// Chains a flushing hook in front of the current one. It holds only weak
/// references: once the guard is gone the hook does nothing but call the
/// previous one. (A hook cannot be removed safely — another may have been
/// installed on top of it since — so it stays, inert.)
pub(crate) fn install(processors: &[Processor]) {
    // `set_hook` panics when called during a panic.
    if std::thread::panicking() {
        return;
    }
    let weak: Vec<WeakProcessor> = processors.iter().map(Processor::downgrade).collect();
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        // A panic on an exporter thread is caught there; waiting for that
        // very thread to flush would only run into the timeout.
        if !processor::on_worker_thread() {
            flush(&weak);
        }
        previous(info);
    }));
}

/// Flushes every live processor in parallel, each within its timeout.
fn flush(processors: &[WeakProcessor]) {
    let now = Instant::now();
    let pending: Vec<Pending> = processors
        .iter()
        .filter_map(WeakProcessor::upgrade)
        .map(|p| p.begin_flush(now + p.timeout()))
        .collect();
    for wait in pending {
        let _ = wait.wait();
    }
}
