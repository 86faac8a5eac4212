//! Task output caching (`#[traced(cache = key)]`) and run checkpoints.
//!
//! A successful output of a task with a cache key is stored as JSON in a
//! process-wide cache and in its run's [`Checkpoint`]. A later call with the
//! same key is served from the cache (`flowtrace.task.cached = true`); in a
//! run resumed from a checkpoint it is replayed from there
//! (`flowtrace.task.replayed = true`). Either way the body does not run.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};

use serde::{Deserialize, Serialize};

use crate::run_state::RunInfo;

/// How many outputs the process-wide cache holds; past that, new outputs
/// are not cached (the oldest are not evicted, so hits stay predictable).
pub const CAPACITY: usize = 10_000;

static CACHE: Mutex<Option<HashMap<String, serde_json::Value>>> = Mutex::new(None);

fn cache() -> MutexGuard<'static, Option<HashMap<String, serde_json::Value>>> {
    CACHE.lock().unwrap_or_else(|e| e.into_inner())
}

/// Empties the process-wide cache.
///
/// ```
/// # #[derive(Debug)] struct Error;
/// # impl std::fmt::Display for Error { fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str("failed") } }
/// # impl From<flowtrace::TaskTimeout> for Error { fn from(_: flowtrace::TaskTimeout) -> Self { Error } }
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let _ = flowtrace::task("embed").run_cached("doc-1", |_| async { Ok::<_, Error>(1) }).await;
/// assert_eq!(flowtrace::cache::len(), 1);
/// flowtrace::cache::clear();
/// assert_eq!(flowtrace::cache::len(), 0);
/// # }
/// ```
pub fn clear() {
    *cache() = None;
}

/// The number of outputs in the process-wide cache.
///
/// ```
/// assert_eq!(flowtrace::cache::len(), 0, "nothing cached yet");
/// ```
pub fn len() -> usize {
    cache().as_ref().map_or(0, HashMap::len)
}

/// The outputs a run's cached tasks produced, to resume it later (also in
/// another process: it serializes with serde).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let first = flowtrace::with_runcontext().run(async {}).await;
/// let checkpoint = first.checkpoint();
/// let json = serde_json::to_string(&checkpoint).unwrap();
/// let resumed = flowtrace::with_runcontext()
///     .resume(serde_json::from_str(&json).unwrap())
///     .run(async {})
///     .await;
/// assert_eq!(resumed.run_id(), first.run_id());
/// # }
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The run this checkpoint belongs to.
    pub run_id: String,
    /// Cache key → the task's output as JSON.
    pub outputs: BTreeMap<String, serde_json::Value>,
    /// The W3C `traceparent` of the run's span (or of the parent it
    /// continued): what a resumed run links to, and whose `sampled` flag
    /// it keeps (see [`crate::sampling`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
}

/// The run's checkpoint as it stands. A task that panicked while recording
/// an output poisons the lock, not the outputs: they are all still there.
pub(crate) fn checkpoint_of(run: &RunInfo) -> Checkpoint {
    let outputs = run.checkpoint.lock().unwrap_or_else(|e| e.into_inner());
    Checkpoint {
        run_id: run.id.clone(),
        outputs: outputs.clone(),
        traceparent: None,
    }
}

/// The cached output under `key`: from the run's resumed checkpoint
/// (`replayed = true`), else from the process cache.
pub(crate) fn lookup(run: Option<&RunInfo>, key: &str) -> Option<(serde_json::Value, bool)> {
    if let Some(run) = run {
        if let Some(json) = run.resumed.get(key) {
            run.record(key, json.clone());
            return Some((json.clone(), true));
        }
    }
    let json = cache().as_ref()?.get(key)?.clone();
    if let Some(run) = run {
        run.record(key, json.clone());
    }
    Some((json, false))
}

/// Stores a successful output under `key`.
pub(crate) fn store(run: Option<&RunInfo>, key: &str, json: serde_json::Value) {
    if let Some(run) = run {
        run.record(key, json.clone());
    }
    let mut cache = cache();
    let cache = cache.get_or_insert_with(HashMap::new);
    if cache.len() < CAPACITY || cache.contains_key(key) {
        cache.insert(key.to_owned(), json);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_poisoned_lock_keeps_the_checkpoint() {
        let run = crate::with_runcontext()
            .run(async {
                let frame = crate::frame::current::cloned().expect("inside the run");
                let run = frame.run().expect("a run");
                run.record("kept", serde_json::json!(42));
                // A panic while the lock is held poisons it.
                std::thread::scope(|s| {
                    let _ = s
                        .spawn(|| {
                            let _held = run.checkpoint.lock();
                            panic!("poisoning the checkpoint lock on purpose");
                        })
                        .join();
                });
                assert!(run.checkpoint.is_poisoned(), "the test poisons the lock");
                run.record("after", serde_json::json!("still recorded"));
            })
            .await;
        let checkpoint = run.checkpoint();
        assert_eq!(checkpoint.run_id, run.run_id());
        assert_eq!(
            checkpoint.outputs,
            BTreeMap::from([
                ("after".to_owned(), serde_json::json!("still recorded")),
                ("kept".to_owned(), serde_json::json!(42)),
            ]),
            "a poisoned lock still hands out the outputs"
        );
    }
}
