//! The `custom_context` map a run carries across task boundaries: flat
//! `String → String` pairs plus the parent (`traceparent` / `tracestate`)
//! kept parsed, bounded against hostile input (see `limits`), and
//! serialized as a plain map.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, OnceLock};

use opentelemetry::Context;
use opentelemetry::propagation::Extractor;
use opentelemetry::trace::{SpanContext, TraceContextExt, TraceState};

use crate::propagation::{self, BAGGAGE, TRACEPARENT, TRACESTATE};

mod limits;

pub use limits::{ContextError, ContextErrorKind};

/// The parent a map carries: kept parsed, rendered to strings only when read.
struct TraceSlot {
    span_context: SpanContext,
    traceparent: OnceLock<String>,
    tracestate: OnceLock<String>,
}

impl TraceSlot {
    fn new(span_context: SpanContext) -> Arc<Self> {
        Arc::new(Self {
            span_context,
            traceparent: OnceLock::new(),
            tracestate: OnceLock::new(),
        })
    }

    fn traceparent(&self) -> &str {
        self.traceparent
            .get_or_init(|| propagation::format_traceparent(&self.span_context))
    }

    fn tracestate(&self) -> Option<&str> {
        let state = self
            .tracestate
            .get_or_init(|| propagation::format_tracestate_of(&self.span_context));
        (!state.is_empty()).then_some(state.as_str())
    }
}

/// Where a map's parent (`traceparent` / `tracestate`) comes from.
#[derive(Clone, Default)]
enum Trace {
    #[default]
    None,
    /// A parsed parent, rendered to strings when read.
    Parsed(Arc<TraceSlot>),
    /// The current OpenTelemetry span: what a task's own map carries, so
    /// starting a task renders and allocates nothing. Only frames hold it;
    /// every map handed out is [`resolved`](CustomContext::resolved) first.
    /// Such a map never holds plain `traceparent` / `tracestate` entries.
    Current,
}

impl Trace {
    fn slot(&self) -> Option<&TraceSlot> {
        match self {
            Trace::Parsed(slot) => Some(slot),
            Trace::None | Trace::Current => None,
        }
    }
}

/// The flat `String → String` map a run carries across task boundaries.
///
/// Immutable and shared: cloning is two reference-count increments. A task
/// sees its caller's map plus what was scoped in; the `traceparent` /
/// `tracestate` entries always describe the current task (they are kept as a
/// parsed [`SpanContext`] and rendered only when read).
///
/// ```
/// use flowtrace::CustomContext;
///
/// let map = CustomContext::from_iter([("team", "search")]);
/// assert_eq!(map.get("team"), Some("search"));
/// assert_eq!(map.len(), 1);
/// let plain: std::collections::HashMap<String, String> = map.into();
/// assert_eq!(plain["team"], "search");
/// ```
#[derive(Clone, Default)]
pub struct CustomContext {
    /// Entries other than a valid `traceparent` / `tracestate`.
    entries: Arc<BTreeMap<String, String>>,
    trace: Trace,
}

impl CustomContext {
    /// An empty map.
    ///
    /// ```
    /// let map = flowtrace::CustomContext::new();
    /// assert!(map.is_empty() && map.span_context().is_none());
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// The value under `key`.
    ///
    /// ```
    /// let map = flowtrace::CustomContext::new().merged([("team", "search"), ("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")]);
    /// assert_eq!(map.get("team"), Some("search"));
    /// assert_eq!(map.get("traceparent"), Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"));
    /// assert_eq!(map.get("missing"), None);
    /// ```
    pub fn get(&self, key: &str) -> Option<&str> {
        if let Some(slot) = self.trace.slot() {
            match key {
                TRACEPARENT => return Some(slot.traceparent()),
                TRACESTATE => return slot.tracestate(),
                _ => {}
            }
        }
        self.entries.get(key).map(String::as_str)
    }

    /// Whether `key` has a value.
    ///
    /// ```
    /// let map = flowtrace::CustomContext::new().merged([("team", "search")]);
    /// assert!(map.contains_key("team") && !map.contains_key("tier"));
    /// ```
    pub fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// The number of entries.
    ///
    /// ```
    /// let map = flowtrace::CustomContext::new().merged([("team", "search"), ("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")]);
    /// assert_eq!(map.len(), 2, "the parent counts as its traceparent entry");
    /// ```
    pub fn len(&self) -> usize {
        let trace = self
            .trace
            .slot()
            .map_or(0, |s| 1 + usize::from(s.tracestate().is_some()));
        self.entries.len() + trace
    }

    /// Whether the map has no entries.
    ///
    /// ```
    /// assert!(flowtrace::CustomContext::new().is_empty());
    /// assert!(!flowtrace::CustomContext::new().merged([("a", "1")]).is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// All entries: the user's in key order, then `traceparent` and
    /// `tracestate` when the map carries a parent.
    ///
    /// ```
    /// let map = flowtrace::CustomContext::new().merged([("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"), ("b", "2"), ("a", "1")]);
    /// let entries: Vec<(&str, &str)> = map.iter().collect();
    /// assert_eq!(entries, [("a", "1"), ("b", "2"), ("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")]);
    /// ```
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        let trace = self.trace.slot().into_iter().flat_map(|slot| {
            std::iter::once((TRACEPARENT, slot.traceparent()))
                .chain(slot.tracestate().map(|s| (TRACESTATE, s)))
        });
        self.entries
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .chain(trace)
    }

    /// The keys, in the order of [`iter`](Self::iter).
    ///
    /// ```
    /// let map = flowtrace::CustomContext::new().merged([("tier", "gold"), ("team", "search")]);
    /// assert_eq!(map.keys().collect::<Vec<_>>(), ["team", "tier"]);
    /// ```
    pub fn keys(&self) -> impl Iterator<Item = &str> + '_ {
        self.iter().map(|(k, _)| k)
    }

    /// A plain copy of the map.
    ///
    /// ```
    /// let map = flowtrace::CustomContext::new().merged([("team", "search")]);
    /// let plain: std::collections::HashMap<String, String> = map.to_hash_map();
    /// assert_eq!(plain["team"], "search");
    /// ```
    pub fn to_hash_map(&self) -> HashMap<String, String> {
        self.iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }

    /// The parent span context the map carries (its `traceparent` and
    /// `tracestate`), if any.
    ///
    /// ```
    /// let map = flowtrace::CustomContext::new().merged([("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")]);
    /// let parent = map.span_context().unwrap();
    /// assert!(parent.is_remote() && parent.is_sampled());
    /// assert_eq!(parent.span_id().to_string(), "b7ad6b7169203331");
    /// ```
    pub fn span_context(&self) -> Option<&SpanContext> {
        self.trace.slot().map(|s| &s.span_context)
    }

    /// Most entries a map holds besides its parent (`traceparent`,
    /// `tracestate`); see [`merged`](Self::merged) for all limits.
    pub const MAX_ENTRIES: usize = limits::MAX_ENTRIES;
    /// Longest key, in bytes.
    pub const MAX_KEY_BYTES: usize = limits::MAX_KEY_BYTES;
    /// Longest value, in bytes (the W3C Baggage header limit).
    pub const MAX_VALUE_BYTES: usize = limits::MAX_VALUE_BYTES;
    /// Most bytes of all keys and values of one map together.
    pub const MAX_TOTAL_BYTES: usize = limits::MAX_TOTAL_BYTES;

    /// This map with `pairs` merged over it (innermost wins). A
    /// `traceparent` in `pairs` replaces the carried parent together with its
    /// `tracestate`; an invalid one is kept as a plain entry and carries no
    /// parent, as W3C Trace Context requires — unless the map already
    /// carries a valid parent, which an invalid value does not replace.
    ///
    /// Input may be hostile, so the map is bounded: a pair whose key is
    /// empty, holds control characters or is longer than
    /// [`MAX_KEY_BYTES`](Self::MAX_KEY_BYTES), whose value is longer than
    /// [`MAX_VALUE_BYTES`](Self::MAX_VALUE_BYTES), or that would make the
    /// map exceed [`MAX_ENTRIES`](Self::MAX_ENTRIES) entries or
    /// [`MAX_TOTAL_BYTES`](Self::MAX_TOTAL_BYTES) is skipped, and one
    /// `tracing` warning (target `flowtrace`) says how many and why.
    /// `traceparent`, `tracestate` and `baggage` are the runtime's keys in
    /// any letter case.
    ///
    /// ```
    /// use flowtrace::CustomContext;
    ///
    /// let hostile = (0..10_000).map(|i| (format!("k{i}"), "v".repeat(10)));
    /// let map = CustomContext::new().merged(hostile);
    /// assert_eq!(map.len(), CustomContext::MAX_ENTRIES);
    /// let map = map.merged([("big", "x".repeat(1 << 20))]);
    /// assert_eq!(map.get("big"), None, "a 1 MiB value is skipped");
    /// ```
    pub fn merged<I, K, V>(&self, pairs: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let (out, skipped) = self.merge(pairs);
        skipped.report();
        out
    }

    /// [`merged`](Self::merged), but a pair over a limit is an error that
    /// says which limit, instead of a skipped pair and a warning.
    ///
    /// ```
    /// use flowtrace::{ContextErrorKind, CustomContext};
    ///
    /// let err = CustomContext::new()
    ///     .try_merged([("big", "x".repeat(CustomContext::MAX_VALUE_BYTES + 1))])
    ///     .unwrap_err();
    /// assert_eq!(err.kind(), ContextErrorKind::ValueTooLong);
    /// assert!(err.to_string().contains("value longer than 8192 bytes"), "{err}");
    /// ```
    pub fn try_merged<I, K, V>(&self, pairs: I) -> Result<Self, ContextError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let (out, skipped) = self.merge(pairs);
        match skipped.first_error() {
            Some(err) => Err(err),
            None => Ok(out),
        }
    }

    fn merge<I, K, V>(&self, pairs: I) -> (Self, limits::Rejections)
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let mut entries: Option<(BTreeMap<String, String>, usize)> = None;
        let mut traceparent = None;
        let mut tracestate = None;
        let mut skipped = limits::Rejections::default();
        for (k, v) in pairs {
            let (k, v) = (k.into(), v.into());
            if let Err(why) = limits::check_pair(&k, &v) {
                skipped.note(why, &k);
                continue;
            }
            let k = limits::canonical_key(k, &[TRACEPARENT, TRACESTATE, BAGGAGE]);
            match k.as_str() {
                TRACEPARENT => traceparent = Some(v),
                TRACESTATE => tracestate = Some(v),
                _ => {
                    let (map, total) = entries.get_or_insert_with(|| {
                        let total = self.entries.iter().map(|(k, v)| k.len() + v.len()).sum();
                        ((*self.entries).clone(), total)
                    });
                    let replaced = map.get(&k).map(|old| k.len() + old.len());
                    let after = *total - replaced.unwrap_or(0) + k.len() + v.len();
                    if replaced.is_none() && map.len() >= limits::MAX_ENTRIES {
                        skipped.note(limits::Rejection::TooManyEntries, &k);
                    } else if after > limits::MAX_TOTAL_BYTES {
                        skipped.note(limits::Rejection::MapTooLarge, &k);
                    } else {
                        *total = after;
                        map.insert(k, v);
                    }
                }
            }
        }
        let mut out = Self {
            entries: entries.map_or_else(|| self.entries.clone(), |(map, _)| Arc::new(map)),
            trace: self.trace.clone(),
        };
        if let Some(tp) = traceparent.take_if(|tp| {
            // An accident (garbage where a parent is carried) must not cut
            // the task off its trace; the parent stays.
            let keep_parent =
                !matches!(out.trace, Trace::None) && propagation::parse_traceparent(tp).is_err();
            if keep_parent {
                skipped.note(limits::Rejection::InvalidTraceparent, TRACEPARENT);
            }
            !keep_parent
        }) {
            match propagation::parse_traceparent(&tp) {
                Ok(sc) => {
                    let sc = match tracestate.take() {
                        Some(s) => propagation::with_tracestate_fields(sc, &[&s]),
                        None => propagation::with_trace_state(sc, TraceState::NONE),
                    };
                    out.drop_plain_trace_entries();
                    out.trace = Trace::Parsed(TraceSlot::new(sc));
                }
                Err(_) => {
                    out.trace = Trace::None;
                    limits::insert_within_budget(&mut out.entries, TRACEPARENT, tp, &mut skipped);
                    if let Some(ts) = tracestate.take() {
                        limits::insert_within_budget(
                            &mut out.entries,
                            TRACESTATE,
                            ts,
                            &mut skipped,
                        );
                    }
                }
            }
        }
        if let Some(ts) = tracestate {
            let parent = match &out.trace {
                Trace::Parsed(slot) => Some(slot.span_context.clone()),
                Trace::Current => Some(Context::map_current(|cx| cx.span().span_context().clone()))
                    .filter(SpanContext::is_valid),
                Trace::None => None,
            };
            match parent {
                Some(parent) => {
                    let sc = propagation::with_tracestate_fields(parent, &[&ts]);
                    out.trace = Trace::Parsed(TraceSlot::new(sc));
                }
                None => {
                    limits::insert_within_budget(&mut out.entries, TRACESTATE, ts, &mut skipped);
                }
            }
        }
        (out, skipped)
    }

    /// This map carrying `sc` as its parent.
    pub(crate) fn with_span_context(&self, sc: SpanContext) -> Self {
        let mut out = Self {
            entries: self.entries.clone(),
            trace: Trace::Parsed(TraceSlot::new(sc)),
        };
        out.drop_plain_trace_entries();
        out
    }

    /// This map with the current span as its parent (a task's child map).
    pub(crate) fn with_current_span(&self) -> Self {
        let mut out = Self {
            entries: self.entries.clone(),
            trace: Trace::Current,
        };
        out.drop_plain_trace_entries();
        out
    }

    /// Whether the parent is the current span (see [`Trace::Current`]).
    pub(crate) fn follows_current_span(&self) -> bool {
        matches!(self.trace, Trace::Current)
    }

    /// The map as user code sees it: a parent that is "the current span"
    /// becomes `current` (the span current where the map is read).
    pub(crate) fn resolved(&self, current: &SpanContext) -> Self {
        match self.trace {
            Trace::Current => Self {
                entries: self.entries.clone(),
                trace: if current.is_valid() {
                    Trace::Parsed(TraceSlot::new(current.clone()))
                } else {
                    Trace::None
                },
            },
            Trace::None | Trace::Parsed(_) => self.clone(),
        }
    }

    fn drop_plain_trace_entries(&mut self) {
        if self.entries.contains_key(TRACEPARENT) || self.entries.contains_key(TRACESTATE) {
            let entries = Arc::make_mut(&mut self.entries);
            entries.remove(TRACEPARENT);
            entries.remove(TRACESTATE);
        }
    }
}

impl fmt::Debug for CustomContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl PartialEq for CustomContext {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().all(|(k, v)| other.get(k) == Some(v))
    }
}

impl Eq for CustomContext {}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for CustomContext {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Self::new().merged(iter)
    }
}

impl From<CustomContext> for HashMap<String, String> {
    fn from(map: CustomContext) -> Self {
        map.to_hash_map()
    }
}

impl From<&CustomContext> for HashMap<String, String> {
    fn from(map: &CustomContext) -> Self {
        map.to_hash_map()
    }
}

impl From<HashMap<String, String>> for CustomContext {
    fn from(map: HashMap<String, String>) -> Self {
        map.into_iter().collect()
    }
}

impl<'a> IntoIterator for &'a CustomContext {
    type Item = (&'a str, &'a str);
    type IntoIter = Box<dyn Iterator<Item = (&'a str, &'a str)> + 'a>;

    fn into_iter(self) -> Self::IntoIter {
        Box::new(self.iter())
    }
}

impl Extractor for CustomContext {
    fn get(&self, key: &str) -> Option<&str> {
        CustomContext::get(self, key)
    }

    fn keys(&self) -> Vec<&str> {
        CustomContext::keys(self).collect()
    }
}

impl serde::Serialize for CustomContext {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.iter())
    }
}

/// A serialized map (the envelope a parent hands a child) with more than
/// [`MAX_ENTRIES`](CustomContext::MAX_ENTRIES) entries (plus the
/// parent's two) is an error, found without reading the rest; other pairs
/// over a limit are skipped as in [`merged`](CustomContext::merged).
impl<'de> serde::Deserialize<'de> for CustomContext {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Pairs;
        impl<'de> serde::de::Visitor<'de> for Pairs {
            type Value = Vec<(String, String)>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(
                    f,
                    "a map of at most {} string entries",
                    limits::MAX_ENTRIES + 2
                )
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut access: A,
            ) -> Result<Self::Value, A::Error> {
                let max = limits::MAX_ENTRIES + 2;
                let mut pairs = Vec::with_capacity(access.size_hint().unwrap_or(0).min(max));
                while let Some(pair) = access.next_entry::<String, String>()? {
                    if pairs.len() == max {
                        return Err(serde::de::Error::custom(format_args!(
                            "custom_context has more than {max} entries"
                        )));
                    }
                    pairs.push(pair);
                }
                Ok(pairs)
            }
        }
        let pairs = deserializer.deserialize_map(Pairs)?;
        Ok(CustomContext::new().merged(pairs))
    }
}

/// The context a task should parent its span on when it is not `cx`: the
/// map's parent wins over the current span, as in Flyte where the carrier
/// is the source of truth.
pub(crate) fn parent_context(cx: &Context, map: &CustomContext) -> Option<Context> {
    let sc = map.span_context()?;
    let current = cx.span();
    if current.span_context() == sc {
        None
    } else {
        Some(cx.with_remote_span_context(sc.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TP: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn merge_innermost_wins_and_parent_is_parsed() {
        let outer = CustomContext::from_iter([("a", "1"), ("b", "2")]);
        let inner = outer.merged([("b", "3"), ("traceparent", TP), ("tracestate", "k=v")]);
        assert_eq!(outer.get("b"), Some("2"), "the outer map is unchanged");
        assert_eq!(inner.get("b"), Some("3"));
        assert_eq!(inner.get("traceparent"), Some(TP));
        assert_eq!(inner.get("tracestate"), Some("k=v"));
        assert_eq!(inner.len(), 4);
        assert!(inner.span_context().unwrap().is_remote());
    }

    #[test]
    fn invalid_traceparent_is_a_plain_entry() {
        let map = CustomContext::from_iter([("traceparent", "garbage")]);
        assert_eq!(map.get("traceparent"), Some("garbage"));
        assert!(map.span_context().is_none());
        let fixed = map.merged([("traceparent", TP)]);
        assert_eq!(fixed.get("traceparent"), Some(TP));
        assert_eq!(fixed.len(), 1);
    }

    #[test]
    fn serde_round_trip() {
        let map = CustomContext::from_iter([("team", "search"), ("traceparent", TP)]);
        let json = serde_json::to_string(&map).unwrap();
        let back: CustomContext = serde_json::from_str(&json).unwrap();
        assert_eq!(back, map);
        assert_eq!(back.span_context(), map.span_context());
    }
}
