//! The W3C `tracestate` list: grammar, limits, combining several header
//! fields, and truncation, per Trace Context Level 2 §3.3.
//!
//! opentelemetry's own `TraceState::from_str` is looser (it keeps the first
//! 32 members of a longer list, takes empty or non-printable values, and
//! never truncates), so the list is validated here and only then handed to
//! `TraceState`.

use std::fmt;

use opentelemetry::trace::{SpanContext, TraceState};

use super::tracestate_unheld::{self as unheld, Slot, Template};

/// At most this many list-members (Level 2 §3.3.1.1).
pub const TRACESTATE_MAX_MEMBERS: usize = 32;
/// Keys and values are at most this long (§3.3.1.3.1, §3.3.1.3.2).
const MAX_KEY_LEN: usize = 256;
const MAX_VALUE_LEN: usize = 256;
/// The combined value flowtrace propagates: the 512 characters the
/// specification asks every vendor to carry (§3.3.1.5). Past it, whole
/// members are dropped: those over [`TRACESTATE_LONG_MEMBER`] first, then from the right.
pub const TRACESTATE_MAX_LEN: usize = 512;
/// Members longer than this are the first dropped when truncating.
pub const TRACESTATE_LONG_MEMBER: usize = 128;

/// Why a `tracestate` value was discarded whole.
///
/// ```
/// use flowtrace::propagation::{TraceStateError, parse_tracestate};
///
/// assert_eq!(
///     parse_tracestate("vendor=x,NoEquals"),
///     Err(TraceStateError::NoEquals("NoEquals".to_owned()))
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TraceStateError {
    /// More than 32 list-members.
    TooManyMembers(usize),
    /// A list-member without `=`.
    NoEquals(String),
    /// A key outside `(lcalpha / DIGIT) 0*255(lcalpha / DIGIT / "_" / "-" / "*" / "/" / "@")`.
    InvalidKey(String),
    /// A value that is empty, longer than 256 characters, or holds a
    /// character outside printable ASCII or a `,` or `=`.
    InvalidValue {
        /// The member's key.
        key: String,
        /// The offending value.
        value: String,
    },
}

impl fmt::Display for TraceStateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooManyMembers(n) => write!(
                f,
                "tracestate has {n} list-members; at most {TRACESTATE_MAX_MEMBERS} are allowed"
            ),
            Self::NoEquals(member) => {
                write!(f, "tracestate list-member {member:?} is not `key=value`")
            }
            Self::InvalidKey(key) => write!(
                f,
                "tracestate key {key:?} is invalid: 1-256 characters of a-z 0-9 _ - * / @, \
                 starting with a-z or 0-9"
            ),
            Self::InvalidValue { key, value } => write!(
                f,
                "tracestate value {value:?} of key {key:?} is invalid: 1-256 printable ASCII \
                 characters other than `,` and `=`, not ending in a space"
            ),
        }
    }
}

impl std::error::Error for TraceStateError {}

fn valid_key(key: &str) -> bool {
    let b = key.as_bytes();
    let keychar = |c: u8| {
        c.is_ascii_lowercase()
            || c.is_ascii_digit()
            || matches!(c, b'_' | b'-' | b'*' | b'/' | b'@')
    };
    !b.is_empty()
        && b.len() <= MAX_KEY_LEN
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b.iter().all(|&c| keychar(c))
}

fn valid_value(value: &str) -> bool {
    let b = value.as_bytes();
    // nblk-chr = %x21-2B / %x2D-3C / %x3E-7E; chr = %x20 / nblk-chr
    let chr = |c: u8| (0x20..=0x7e).contains(&c) && c != b',' && c != b'=';
    !b.is_empty() && b.len() <= MAX_VALUE_LEN && b.iter().all(|&c| chr(c)) && b[b.len() - 1] != b' '
}

fn is_ows(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// Parses one `tracestate` value; see [`parse_tracestate_fields`].
///
/// ```
/// let state = flowtrace::propagation::parse_tracestate("rojo=00f067aa0ba902b7, congo=t61rcWkgMzE").unwrap();
/// assert_eq!(state.get("congo"), Some("t61rcWkgMzE"));
/// assert!(flowtrace::propagation::parse_tracestate("Upper=x").is_err());
/// ```
pub fn parse_tracestate(value: &str) -> Result<TraceState, TraceStateError> {
    parse_tracestate_fields(&[value])
}

/// Parses `tracestate` header fields, combined in order as RFC 9110 §5.3
/// requires (joined with `,`), into a [`TraceState`].
///
/// An invalid list is discarded whole ([`Err`] with the reason). Of a valid
/// list, empty members are skipped and a key seen again is dropped (the
/// left-most entry is the vendor's latest position). A list longer than
/// [`TRACESTATE_MAX_LEN`] characters is truncated by whole members as the
/// specification describes.
///
/// Keys follow Level 2's one form; opentelemetry's `TraceState` still
/// checks Level 1's `tenant@vendor` form (one `@`, at most 13 characters
/// after it), so a member such as `foo@@bar=1` is not in the returned
/// `TraceState`. flowtrace's propagators and carriers keep such members
/// beside the span context they extract and pass them on in place.
///
/// ```
/// use flowtrace::propagation::parse_tracestate_fields;
///
/// let state = parse_tracestate_fields(&["rojo=00f067aa0ba902b7", " congo=t61rcWkgMzE "]).unwrap();
/// assert_eq!(state.header(), "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE");
/// assert!(parse_tracestate_fields(&["FOO=1"]).is_err());
/// ```
pub fn parse_tracestate_fields(fields: &[&str]) -> Result<TraceState, TraceStateError> {
    parse_fields(fields).map(|(state, _)| state)
}

/// [`parse_tracestate_fields`], plus the list's order when it has members
/// opentelemetry's `TraceState` cannot hold (see `tracestate_unheld`).
fn parse_fields(fields: &[&str]) -> Result<(TraceState, Option<Template>), TraceStateError> {
    let mut members: Vec<(&str, &str)> = Vec::new();
    let mut count = 0usize;
    for member in fields.iter().flat_map(|f| f.split(',')) {
        let member = member.trim_matches(is_ows);
        if member.is_empty() {
            continue;
        }
        count += 1;
        if count > TRACESTATE_MAX_MEMBERS {
            // Keep counting: the reason names the real size.
            continue;
        }
        let (key, value) = member
            .split_once('=')
            .ok_or_else(|| TraceStateError::NoEquals(member.to_owned()))?;
        if !valid_key(key) {
            return Err(TraceStateError::InvalidKey(key.to_owned()));
        }
        if !valid_value(value) {
            return Err(TraceStateError::InvalidValue {
                key: key.to_owned(),
                value: value.to_owned(),
            });
        }
        members.push((key, value));
    }
    if count > TRACESTATE_MAX_MEMBERS {
        return Err(TraceStateError::TooManyMembers(count));
    }
    let mut kept: Vec<(&str, &str)> = Vec::with_capacity(members.len());
    for (key, value) in members {
        if kept.iter().any(|(k, _)| *k == key) {
            tracing::debug!(
                key,
                "tracestate: duplicate key dropped, the left-most is kept"
            );
        } else {
            kept.push((key, value));
        }
    }
    let kept = truncate(kept);
    let holds = |key: &str, value: &str| TraceState::from_key_value([(key, value)]).is_ok();
    if kept.iter().all(|(k, v)| holds(k, v)) {
        return Ok((TraceState::from_key_value(kept).unwrap_or_default(), None));
    }
    let template: Template = kept
        .iter()
        .map(|(k, v)| {
            if holds(k, v) {
                Slot::Held
            } else {
                Slot::Unheld((*k).to_owned(), (*v).to_owned())
            }
        })
        .collect();
    let held = kept.into_iter().filter(|(k, v)| holds(k, v));
    Ok((
        TraceState::from_key_value(held).unwrap_or_default(),
        Some(template),
    ))
}

/// `sc` with the `tracestate` `fields` parsed as [`parse_tracestate_fields`]
/// does (an invalid list is discarded); members opentelemetry's
/// `TraceState` cannot hold are remembered for `sc`'s trace, so
/// [`format_tracestate_of`] passes them on.
pub(crate) fn with_tracestate_fields(sc: SpanContext, fields: &[&str]) -> SpanContext {
    let (state, template) = parse_fields(fields).unwrap_or_else(|error| {
        tracing::debug!(%error, "tracestate discarded");
        (TraceState::NONE, None)
    });
    if let Some(template) = template {
        unheld::remember(sc.trace_id(), &state, template);
    }
    super::with_trace_state(sc, state)
}

/// The `tracestate` value to send for `sc`: [`format_tracestate`] of its
/// `TraceState`, with the members it could not hold back in their place
/// when they came with this trace and the state is unchanged.
pub(crate) fn format_tracestate_of(sc: &SpanContext) -> String {
    let state = sc.trace_state();
    let Some(template) = unheld::lookup(sc) else {
        return format_tracestate(state);
    };
    match unheld::merged(&template, state) {
        Some(members) => truncate(
            members
                .into_iter()
                .filter(|(k, v)| valid_key(k) && valid_value(v))
                .collect(),
        )
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(","),
        None => format_tracestate(state),
    }
}

/// The combined length of `members` as `k=v,k=v`.
fn combined_len(members: &[(&str, &str)]) -> usize {
    members
        .iter()
        .map(|(k, v)| k.len() + 1 + v.len())
        .sum::<usize>()
        + members.len().saturating_sub(1)
}

/// Drops whole members until the list fits [`TRACESTATE_MAX_LEN`]: first
/// those longer than [`TRACESTATE_LONG_MEMBER`] (right-most first), then from the right.
fn truncate<'a>(mut members: Vec<(&'a str, &'a str)>) -> Vec<(&'a str, &'a str)> {
    while combined_len(&members) > TRACESTATE_MAX_LEN {
        let long = members
            .iter()
            .rposition(|(k, v)| k.len() + 1 + v.len() > TRACESTATE_LONG_MEMBER);
        let index = long.unwrap_or(members.len() - 1);
        let (key, _) = members.remove(index);
        tracing::debug!(
            key,
            limit = TRACESTATE_MAX_LEN,
            "tracestate: member dropped to fit the propagated length"
        );
    }
    members
}

/// Renders `state` as a `tracestate` value: members that break the grammar
/// (opentelemetry's `TraceState::insert` takes some, e.g. empty values) are
/// left out, so the receiver does not discard the whole list, and the rest
/// is truncated to [`TRACESTATE_MAX_LEN`] characters by whole members. Empty
/// when `state` is.
///
/// ```
/// use flowtrace::propagation::format_tracestate;
/// use opentelemetry::trace::TraceState;
///
/// let state = TraceState::from_key_value([("rojo", "1"), ("congo", "2")]).unwrap();
/// assert_eq!(format_tracestate(&state), "rojo=1,congo=2");
/// let state = state.insert("empty", "").unwrap();
/// assert_eq!(format_tracestate(&state), "rojo=1,congo=2");
/// ```
pub fn format_tracestate(state: &TraceState) -> String {
    let all_valid = state
        .into_iter()
        .all(|(k, v)| valid_key(k) && valid_value(v));
    if all_valid {
        let header = state.header();
        if header.len() <= TRACESTATE_MAX_LEN {
            return header;
        }
    }
    let members: Vec<(&str, &str)> = state
        .into_iter()
        .filter(|(k, v)| valid_key(k) && valid_value(v))
        .collect();
    truncate(members)
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests;
