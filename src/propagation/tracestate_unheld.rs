//! `tracestate` members valid by Trace Context Level 2 that opentelemetry's
//! `TraceState` cannot hold, kept so they are passed on anyway.
//!
//! Level 2 has one key form: `(lcalpha / DIGIT) 0*255(keychar)`, `@` an
//! ordinary key character. opentelemetry 0.33's `TraceState` still checks
//! Level 1's `tenant@vendor` form (one `@`, at most 13 characters after
//! it), so keys such as `foo@@bar`, `foo@bar@baz` or `t@` + 15 characters
//! cannot go into a [`SpanContext`]. Such members are remembered here,
//! with their place in the list, under the trace id and the `TraceState`
//! that holds the others; rendering a span context of that trace whose
//! `TraceState` is unchanged (the received parent, and every span that
//! inherited its state) puts them back in place. A `TraceState` that was
//! modified no longer matches and is rendered without them.
//!
//! The table is bounded ([`CAPACITY`] lists of at most 512 characters each,
//! the oldest forgotten first, so about 1 MiB at most), and consulted only
//! once it holds something: with no such key ever received, rendering costs
//! one atomic load more; after that, a shared read lock.

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, VecDeque};
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use opentelemetry::trace::{SpanContext, TraceId, TraceState};

/// Lists remembered at most.
pub(crate) const CAPACITY: usize = 1024;

/// One place of a parsed list: a member the `TraceState` holds (in its
/// order), or one it cannot hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Slot {
    Held,
    Unheld(String, String),
}

/// The whole list's order, when it has members the `TraceState` cannot hold.
pub(crate) type Template = Vec<Slot>;

type Key = (TraceId, u64);

#[derive(Default)]
struct Table {
    lists: HashMap<Key, Vec<(TraceState, Arc<Template>)>>,
    order: VecDeque<Key>,
}

static USED: AtomicBool = AtomicBool::new(false);
static TABLE: RwLock<Option<Table>> = RwLock::new(None);

fn hash_of(state: &TraceState) -> u64 {
    let mut hasher = DefaultHasher::new();
    state.hash(&mut hasher);
    hasher.finish()
}

/// Remembers `template` for span contexts of `trace_id` holding `state`.
pub(crate) fn remember(trace_id: TraceId, state: &TraceState, template: Template) {
    let key = (trace_id, hash_of(state));
    let mut table = TABLE.write().unwrap_or_else(|e| e.into_inner());
    let table = table.get_or_insert_with(Table::default);
    let lists = table.lists.entry(key).or_default();
    if lists.iter().any(|(s, t)| s == state && **t == template) {
        return;
    }
    lists.push((state.clone(), Arc::new(template)));
    table.order.push_back(key);
    while table.order.len() > CAPACITY {
        if let Some(oldest) = table.order.pop_front() {
            if let Some(lists) = table.lists.get_mut(&oldest) {
                lists.remove(0);
                if lists.is_empty() {
                    table.lists.remove(&oldest);
                }
            }
        }
    }
    USED.store(true, Ordering::Release);
}

/// The template remembered for `sc`, if any.
pub(crate) fn lookup(sc: &SpanContext) -> Option<Arc<Template>> {
    if !USED.load(Ordering::Acquire) {
        return None;
    }
    let state = sc.trace_state();
    let key = (sc.trace_id(), hash_of(state));
    let table = TABLE.read().unwrap_or_else(|e| e.into_inner());
    table
        .as_ref()?
        .lists
        .get(&key)?
        .iter()
        .find(|(s, _)| s == state)
        .map(|(_, t)| t.clone())
}

/// The members of `state` with the template's unheld ones back in place;
/// `None` when the template does not fit `state` (a different count).
pub(crate) fn merged<'a>(
    template: &'a Template,
    state: &'a TraceState,
) -> Option<Vec<(&'a str, &'a str)>> {
    let mut held = state.into_iter();
    let mut out = Vec::with_capacity(template.len());
    for slot in template {
        match slot {
            Slot::Held => out.push(held.next()?),
            Slot::Unheld(k, v) => out.push((k.as_str(), v.as_str())),
        }
    }
    held.next().is_none().then_some(out)
}
