//! What a `custom_context` map admits, and why.
//!
//! The map crosses process boundaries (headers, environment variables, a
//! serialized envelope), so its input may be hostile: 10⁴ members,
//! multi-megabyte values, control bytes. Every task of a run shares the map
//! and every scope that adds pairs copies it, so its size is bounded:
//!
//! | limit | value | why |
//! |---|---|---|
//! | entries | 256 | far above any real carrier; bounds the copy a scope makes |
//! | key length | 256 bytes | keys are names, not data |
//! | value length | 8192 bytes | the W3C Baggage header limit; typical HTTP header limits are 8 KiB |
//! | all keys + values | 64 KiB | bounds the memory of one map (and of each scope's copy) |
//! | key characters | no control characters, not empty | a key may become a header or variable name |
//!
//! A pair over a limit is skipped (never truncated: a cut value would be
//! silently wrong), and one `tracing` warning per merge says how many were
//! skipped and why. `traceparent`, `tracestate` and `baggage` belong to the
//! runtime: spelled in any case they are the same key, and an invalid
//! `traceparent` does not replace a valid parent the map already carries.

use std::collections::BTreeMap;
use std::fmt;
use std::fmt::Write as _;
use std::sync::Arc;

/// Most entries a map holds besides its parent (`traceparent`, `tracestate`).
pub(crate) const MAX_ENTRIES: usize = 256;
/// Longest key, in bytes.
pub(crate) const MAX_KEY_BYTES: usize = 256;
/// Longest value, in bytes.
pub(crate) const MAX_VALUE_BYTES: usize = 8192;
/// Most bytes of all keys and values together.
pub(crate) const MAX_TOTAL_BYTES: usize = 64 * 1024;

/// Why a pair was skipped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Rejection {
    BadKey,
    KeyTooLong,
    ValueTooLong,
    TooManyEntries,
    MapTooLarge,
    InvalidTraceparent,
}

impl Rejection {
    fn kind(self) -> ContextErrorKind {
        match self {
            Rejection::BadKey => ContextErrorKind::BadKey,
            Rejection::KeyTooLong => ContextErrorKind::KeyTooLong,
            Rejection::ValueTooLong => ContextErrorKind::ValueTooLong,
            Rejection::TooManyEntries => ContextErrorKind::TooManyEntries,
            Rejection::MapTooLarge => ContextErrorKind::MapTooLarge,
            Rejection::InvalidTraceparent => ContextErrorKind::InvalidTraceparent,
        }
    }

    fn describe(self) -> String {
        match self {
            Rejection::BadKey => "empty key or control characters in the key".into(),
            Rejection::KeyTooLong => format!("key longer than {MAX_KEY_BYTES} bytes"),
            Rejection::ValueTooLong => format!("value longer than {MAX_VALUE_BYTES} bytes"),
            Rejection::TooManyEntries => format!("more than {MAX_ENTRIES} entries"),
            Rejection::MapTooLarge => format!("keys and values over {MAX_TOTAL_BYTES} bytes"),
            Rejection::InvalidTraceparent => {
                "invalid traceparent while the map carries a valid parent".into()
            }
        }
    }
}

/// Why pairs were refused by [`CustomContext::try_merged`](super::CustomContext::try_merged)
/// or [`Scope::try_scope`](crate::Scope::try_scope): what was wrong, and
/// what is accepted.
///
/// ```
/// use flowtrace::{ContextErrorKind, CustomContext};
///
/// let err = CustomContext::new().try_merged([("", "value")]).unwrap_err();
/// assert_eq!(err.kind(), ContextErrorKind::BadKey);
/// println!("{err}"); // says what was wrong and what is accepted
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextError {
    kind: ContextErrorKind,
    /// The key, quoted and cut as a message shows it.
    key: String,
    detail: String,
}

/// The kinds of [`ContextError`].
///
/// ```
/// use flowtrace::{ContextErrorKind, CustomContext};
///
/// let long_key = "k".repeat(CustomContext::MAX_KEY_BYTES + 1);
/// let err = CustomContext::new().try_merged([(long_key, "v".to_owned())]).unwrap_err();
/// assert_eq!(err.kind(), ContextErrorKind::KeyTooLong);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ContextErrorKind {
    /// An empty key, or control characters in it.
    BadKey,
    /// A key longer than `CustomContext::MAX_KEY_BYTES`.
    KeyTooLong,
    /// A value longer than `CustomContext::MAX_VALUE_BYTES`.
    ValueTooLong,
    /// More than `CustomContext::MAX_ENTRIES` entries.
    TooManyEntries,
    /// Keys and values over `CustomContext::MAX_TOTAL_BYTES` together.
    MapTooLarge,
    /// An invalid `traceparent` where the map carries a valid parent.
    InvalidTraceparent,
    /// A `traceparent` of another trace where the task already has a
    /// parent: it would cut the task off its trace.
    ParentOverride,
}

impl ContextError {
    pub(crate) fn parent_override(current: &str, requested: &str) -> Self {
        Self {
            kind: ContextErrorKind::ParentOverride,
            key: shown(crate::propagation::TRACEPARENT),
            detail: format!(
                "it names trace {requested} but the current task is in trace {current}; \
                 `traceparent`, `tracestate` and `baggage` belong to the runtime, so a scope \
                 does not switch traces unless asked: call `.override_parent()` on it, or start \
                 a run from the carrier with `with_runcontext().custom_context(carrier)`"
            ),
        }
    }

    /// What was wrong.
    ///
    /// ```
    /// use flowtrace::{ContextErrorKind, CustomContext};
    ///
    /// let big = "v".repeat(CustomContext::MAX_VALUE_BYTES + 1);
    /// let err = CustomContext::new().try_merged([("note", big)]).unwrap_err();
    /// assert_eq!(err.kind(), ContextErrorKind::ValueTooLong);
    /// ```
    pub fn kind(&self) -> ContextErrorKind {
        self.kind
    }
}

impl fmt::Display for ContextError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "custom_context: key {}: {}", self.key, self.detail)
    }
}

impl std::error::Error for ContextError {}

/// The checks that depend on the pair alone.
pub(crate) fn check_pair(key: &str, value: &str) -> Result<(), Rejection> {
    if key.is_empty() || key.chars().any(char::is_control) {
        return Err(Rejection::BadKey);
    }
    if key.len() > MAX_KEY_BYTES {
        return Err(Rejection::KeyTooLong);
    }
    if value.len() > MAX_VALUE_BYTES {
        return Err(Rejection::ValueTooLong);
    }
    Ok(())
}

/// `TraceParent` is `traceparent`: the runtime's keys in any case.
pub(crate) fn canonical_key(key: String, runtime_keys: &[&str]) -> String {
    match runtime_keys
        .iter()
        .find(|k| k.len() == key.len() && k.eq_ignore_ascii_case(&key))
    {
        Some(k) if *k != key => (*k).to_owned(),
        _ => key,
    }
}

/// Inserts a plain `traceparent` / `tracestate` entry (one that carries no
/// parent) if the map's byte budget allows; these two do not count against
/// [`MAX_ENTRIES`] but do against [`MAX_TOTAL_BYTES`].
pub(crate) fn insert_within_budget(
    map: &mut Arc<BTreeMap<String, String>>,
    key: &str,
    value: String,
    skipped: &mut Rejections,
) {
    let others: usize = map
        .iter()
        .filter(|(k, _)| *k != key)
        .map(|(k, v)| k.len() + v.len())
        .sum();
    if others + key.len() + value.len() > MAX_TOTAL_BYTES {
        skipped.note(Rejection::MapTooLarge, key);
    } else {
        Arc::make_mut(map).insert(key.to_owned(), value);
    }
}

/// The skipped pairs of one merge, reported once.
#[derive(Debug, Default)]
pub(crate) struct Rejections {
    counts: Vec<(Rejection, usize, String)>,
}

impl Rejections {
    pub(crate) fn note(&mut self, why: Rejection, key: &str) {
        match self.counts.iter_mut().find(|(r, _, _)| *r == why) {
            Some((_, n, _)) => *n += 1,
            None => self.counts.push((why, 1, shown(key))),
        }
    }

    /// The first rejection, as the error [`try_merged`](super::CustomContext::try_merged)
    /// and `Scope::try_scope` return.
    pub(crate) fn first_error(&self) -> Option<ContextError> {
        self.counts.first().map(|(why, _, key)| ContextError {
            kind: why.kind(),
            key: key.clone(),
            detail: why.describe(),
        })
    }

    pub(crate) fn total(&self) -> usize {
        self.counts.iter().map(|(_, n, _)| n).sum()
    }

    /// `3 pairs skipped: value longer than 8192 bytes (2, e.g. key "a"); …`
    pub(crate) fn message(&self) -> String {
        let mut text = format!("custom_context: {} pairs skipped:", self.total());
        for (i, (why, n, example)) in self.counts.iter().enumerate() {
            let sep = if i == 0 { " " } else { "; " };
            let _ = write!(text, "{sep}{} ({n}, e.g. key {example})", why.describe());
        }
        text
    }

    /// One `tracing` warning (it lands on the current task's span when
    /// flowtrace's layer is installed).
    pub(crate) fn report(&self) {
        if self.total() > 0 {
            tracing::warn!(target: "flowtrace", "{}", self.message());
        }
    }
}

/// A key as a message shows it: quoted, escaped, at most 64 characters.
fn shown(key: &str) -> String {
    let mut cut: String = key.chars().take(64).collect();
    if cut.len() < key.len() {
        cut.push('…');
    }
    format!("{cut:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_are_checked_with_reasons() {
        let long_key = "k".repeat(MAX_KEY_BYTES + 1);
        let long_value = "v".repeat(MAX_VALUE_BYTES + 1);
        let cases = [
            ("team", "search", Ok(()), "an ordinary pair"),
            ("", "v", Err(Rejection::BadKey), "empty key"),
            ("a\nb", "v", Err(Rejection::BadKey), "newline in the key"),
            ("a\u{0}", "v", Err(Rejection::BadKey), "NUL in the key"),
            ("a\u{85}", "v", Err(Rejection::BadKey), "a C1 control"),
            (
                long_key.as_str(),
                "v",
                Err(Rejection::KeyTooLong),
                "long key",
            ),
            (
                "k",
                long_value.as_str(),
                Err(Rejection::ValueTooLong),
                "long value",
            ),
            ("k", "\u{1b}[31m\"'", Ok(()), "values are opaque"),
        ];
        for (key, value, expected, reason) in cases {
            assert_eq!(check_pair(key, value), expected, "{reason}");
        }
    }

    #[test]
    fn runtime_keys_in_any_case() {
        let keys = ["traceparent", "baggage"];
        let cases = [
            ("TraceParent", "traceparent", "mixed case"),
            ("BAGGAGE", "baggage", "upper case"),
            ("traceparents", "traceparents", "a longer key is not it"),
            ("team", "team", "other keys unchanged"),
        ];
        for (input, expected, reason) in cases {
            assert_eq!(canonical_key(input.into(), &keys), expected, "{reason}");
        }
    }

    #[test]
    fn one_message_per_merge() {
        let mut r = Rejections::default();
        r.note(Rejection::ValueTooLong, "a");
        r.note(Rejection::ValueTooLong, "b");
        r.note(Rejection::BadKey, &"\n".repeat(100));
        assert_eq!(r.total(), 3);
        let message = r.message();
        assert!(
            message.starts_with(
                "custom_context: 3 pairs skipped: value longer than 8192 bytes (2, e.g. key \"a\")"
            ),
            "{message}"
        );
        assert!(message.len() < 400, "hostile keys are cut: {message}");
    }
}
