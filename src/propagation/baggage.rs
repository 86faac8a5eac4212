//! W3C Baggage: the `baggage` header (grammar, percent-encoding, properties,
//! limits) and baggage set for a scope.
//!
//! The entries live in the OpenTelemetry [`Context`] as
//! [`opentelemetry::baggage::Baggage`], so any library reading
//! `cx.baggage()` sees them; `flowtrace::ctx().baggage()` is the same view.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::Poll;

use opentelemetry::Context;
use opentelemetry::baggage::{Baggage as Entries, BaggageExt, KeyValueMetadata};
use opentelemetry::propagation::text_map_propagator::FieldIter;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use percent_encoding::{AsciiSet, percent_decode_str, utf8_percent_encode};

use super::BAGGAGE;

/// Every list-member is propagated while there are at most this many
/// (W3C Baggage §3.3.2 "Limits"); past it, members are dropped.
pub const BAGGAGE_MAX_MEMBERS: usize = 64;
/// ... and while the combined `baggage-string` is at most this many bytes.
pub const BAGGAGE_MAX_BYTES: usize = 8192;

/// Why a `baggage` list-member was dropped (the others are kept).
///
/// ```
/// use flowtrace::propagation::{BaggageError, parse_baggage};
///
/// let parsed = parse_baggage(&["tenant=acme,no-equals,bad key=1"]);
/// assert_eq!(parsed.baggage.len(), 1);
/// assert_eq!(parsed.dropped[0], BaggageError::NoEquals("no-equals".to_owned()));
/// assert!(matches!(&parsed.dropped[1], BaggageError::InvalidKey(_)));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BaggageError {
    /// A list-member without `=`.
    NoEquals(String),
    /// A key that is not an RFC 7230 `token`.
    InvalidKey(String),
    /// A value with a character outside `baggage-octet` (control, space,
    /// `"`, `,`, `;`, `\` or non-ASCII: those must be percent-encoded).
    InvalidValue {
        /// The member's key.
        key: String,
        /// The offending raw value.
        value: String,
    },
    /// A property that is neither `key` nor `key=value` with a token key and
    /// a `baggage-octet` value.
    InvalidProperty {
        /// The member's key.
        key: String,
        /// The offending property.
        property: String,
    },
    /// Dropped because [`BAGGAGE_MAX_MEMBERS`] members were already kept.
    TooManyMembers {
        /// The member's key.
        key: String,
    },
    /// Dropped because keeping it would pass [`BAGGAGE_MAX_BYTES`].
    TooLong {
        /// The member's key.
        key: String,
        /// Its encoded length in bytes.
        bytes: usize,
    },
}

impl fmt::Display for BaggageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoEquals(member) => write!(f, "baggage member {member:?} is not `key=value`"),
            Self::InvalidKey(key) => write!(
                f,
                "baggage key {key:?} is not an RFC 7230 token (visible ASCII except \
                 separators such as ( ) , / : ; < = > ? @ [ \\ ] {{ }} \")"
            ),
            Self::InvalidValue { key, value } => write!(
                f,
                "baggage value {value:?} of {key:?} has characters that must be percent-encoded \
                 (controls, space, \", comma, ;, \\ and non-ASCII)"
            ),
            Self::InvalidProperty { key, property } => write!(
                f,
                "baggage property {property:?} of {key:?} is not `key` or `key=value`"
            ),
            Self::TooManyMembers { key } => write!(
                f,
                "baggage member {key:?} dropped: {BAGGAGE_MAX_MEMBERS} members already kept"
            ),
            Self::TooLong { key, bytes } => write!(
                f,
                "baggage member {key:?} ({bytes} bytes) dropped: the baggage would pass \
                 {BAGGAGE_MAX_BYTES} bytes"
            ),
        }
    }
}

impl std::error::Error for BaggageError {}

fn is_tchar(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c)
}

pub(crate) fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_tchar)
}

/// `baggage-octet = %x21 / %x23-2B / %x2D-3A / %x3C-5B / %x5D-7E`
fn is_baggage_octet(c: u8) -> bool {
    matches!(c, 0x21 | 0x23..=0x2b | 0x2d..=0x3a | 0x3c..=0x5b | 0x5d..=0x7e)
}

/// Everything outside `baggage-octet`, plus `%` itself (§3.2.1.3: "The
/// percent code point MUST be percent-encoded"). Non-ASCII is always encoded.
const VALUE_ENCODE: &AsciiSet = &percent_encoding::CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b',')
    .add(b';')
    .add(b'\\')
    .add(b'%');
/// Property values are kept in their wire form, so `%` is left alone there.
const PROPERTY_ENCODE: &AsciiSet = &percent_encoding::CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b',')
    .add(b';')
    .add(b'\\');

fn trim_ows(s: &str) -> &str {
    s.trim_matches([' ', '\t'])
}

/// The result of parsing `baggage` header fields: the entries kept and
/// why each other member was dropped.
///
/// ```
/// let parsed = flowtrace::propagation::parse_baggage(&["user=alice%20smith", "tier=gold"]);
/// assert_eq!(parsed.baggage.get("user").map(|v| v.as_str()), Some("alice smith"));
/// assert_eq!(parsed.baggage.len(), 2);
/// assert!(parsed.dropped.is_empty());
/// ```
#[derive(Debug, Default)]
pub struct ParsedBaggage {
    /// The entries, values percent-decoded, properties in their wire form.
    pub baggage: Entries,
    /// The members left out, each with the reason.
    pub dropped: Vec<BaggageError>,
}

/// One valid member: key, decoded value, normalized properties, and its
/// length on the wire.
fn parse_member(member: &str) -> Result<KeyValueMetadata, BaggageError> {
    let mut parts = member.split(';');
    let pair = parts.next().unwrap_or_default();
    // A value may itself hold `=`: only the first one separates (§3.2.1.3).
    let (key, value) = pair
        .split_once('=')
        .ok_or_else(|| BaggageError::NoEquals(member.to_owned()))?;
    let (key, value) = (trim_ows(key), trim_ows(value));
    if !is_token(key) {
        return Err(BaggageError::InvalidKey(key.to_owned()));
    }
    if !value.bytes().all(is_baggage_octet) {
        return Err(BaggageError::InvalidValue {
            key: key.to_owned(),
            value: value.to_owned(),
        });
    }
    let mut properties = Vec::new();
    for property in parts {
        let bad = || BaggageError::InvalidProperty {
            key: key.to_owned(),
            property: property.to_owned(),
        };
        let normalized = match property.split_once('=') {
            Some((k, v)) => {
                let (k, v) = (trim_ows(k), trim_ows(v));
                if !is_token(k) || !v.bytes().all(is_baggage_octet) {
                    return Err(bad());
                }
                format!("{k}={v}")
            }
            None if is_token(trim_ows(property)) => trim_ows(property).to_owned(),
            None => return Err(bad()),
        };
        properties.push(normalized);
    }
    // Invalid UTF-8 after decoding becomes U+FFFD, as §3.2.1.3 requires.
    let value = percent_decode_str(value).decode_utf8_lossy().into_owned();
    Ok(KeyValueMetadata::new(
        key.to_owned(),
        value,
        properties.join(";"),
    ))
}

/// Parses `baggage` header fields, combined in order (RFC 9110 §5.3).
///
/// Members that break the grammar are dropped alone (W3C Baggage leaves
/// the choice open; the rest is still worth passing on). Of the valid ones,
/// the first [`BAGGAGE_MAX_MEMBERS`] that fit in [`BAGGAGE_MAX_BYTES`]
/// (counted on the wire, with the commas) are kept and the rest dropped
/// whole — never a partial member. A key given twice keeps its last value.
///
/// ```
/// use flowtrace::propagation::parse_baggage;
///
/// let parsed = parse_baggage(&["userId=Am%C3%A9lie, serverNode = DF%2028", "bad key=1;p"]);
/// assert_eq!(parsed.baggage.get("userId").map(|v| v.as_str()), Some("Amélie"));
/// assert_eq!(parsed.baggage.get("serverNode").map(|v| v.as_str()), Some("DF 28"));
/// assert_eq!(parsed.dropped.len(), 1, "{:?}", parsed.dropped);
/// ```
pub fn parse_baggage(fields: &[&str]) -> ParsedBaggage {
    let mut kept = Vec::new();
    let mut dropped = Vec::new();
    let mut bytes = 0usize;
    for member in fields.iter().flat_map(|f| f.split(',')) {
        let member = trim_ows(member);
        if member.is_empty() {
            continue;
        }
        match parse_member(member) {
            Err(error) => dropped.push(error),
            Ok(kvm) => {
                let key = || kvm_key(member);
                let added = member.len() + usize::from(!kept.is_empty());
                if kept.len() == BAGGAGE_MAX_MEMBERS {
                    dropped.push(BaggageError::TooManyMembers { key: key() });
                } else if bytes + added > BAGGAGE_MAX_BYTES {
                    dropped.push(BaggageError::TooLong {
                        key: key(),
                        bytes: member.len(),
                    });
                } else {
                    bytes += added;
                    kept.push(kvm);
                }
            }
        }
    }
    for error in &dropped {
        tracing::debug!(%error, "baggage member dropped");
    }
    ParsedBaggage {
        baggage: kept.into_iter().collect(),
        dropped,
    }
}

fn kvm_key(member: &str) -> String {
    trim_ows(member.split(['=', ';']).next().unwrap_or_default()).to_owned()
}

/// Renders baggage as a `baggage` header value: keys in sorted order (the
/// OpenTelemetry type keeps no order), values percent-encoded, properties
/// as stored with any character outside `baggage-octet` encoded. Members
/// past the limits are left out whole. Empty when there is nothing to send.
///
/// ```
/// use flowtrace::propagation::format_baggage;
/// use opentelemetry::baggage::{Baggage, KeyValueMetadata};
///
/// let baggage: Baggage = [
///     KeyValueMetadata::new("userId", "Amélie", ""),
///     KeyValueMetadata::new("ratio", "50%", "p;q=1"),
/// ]
/// .into_iter()
/// .collect();
/// assert_eq!(format_baggage(&baggage), "ratio=50%25;p;q=1,userId=Am%C3%A9lie");
/// ```
pub fn format_baggage(baggage: &Entries) -> String {
    let mut entries: Vec<_> = baggage.iter().collect();
    entries.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
    let mut out = String::new();
    let mut count = 0;
    for (key, (value, metadata)) in entries {
        if !is_token(key.as_str()) {
            continue;
        }
        let mut member = format!(
            "{}={}",
            key.as_str(),
            utf8_percent_encode(value.as_str(), VALUE_ENCODE)
        );
        for property in metadata.as_str().split(';').map(trim_ows) {
            let (k, v) = match property.split_once('=') {
                Some((k, v)) => (trim_ows(k), Some(trim_ows(v))),
                None => (property, None),
            };
            if !is_token(k) {
                continue;
            }
            member.push(';');
            member.push_str(k);
            if let Some(v) = v {
                member.push('=');
                member.extend(utf8_percent_encode(v, PROPERTY_ENCODE));
            }
        }
        let added = member.len() + usize::from(!out.is_empty());
        if count == BAGGAGE_MAX_MEMBERS || out.len() + added > BAGGAGE_MAX_BYTES {
            tracing::debug!(
                key = key.as_str(),
                "baggage member over the limits not sent"
            );
            continue;
        }
        if !out.is_empty() {
            out.push(',');
        }
        out.push_str(&member);
        count += 1;
    }
    out
}

/// The W3C Baggage propagator (`baggage` header), strict where
/// opentelemetry-sdk's `BaggagePropagator` is lenient: see
/// [`parse_baggage`] and [`format_baggage`].
///
/// ```
/// use flowtrace::propagation::Baggage;
/// use opentelemetry::baggage::BaggageExt;
/// use opentelemetry::propagation::TextMapPropagator;
/// use std::collections::HashMap;
///
/// let carrier = HashMap::from([("baggage".to_string(), "token=dGVzdA==".to_string())]);
/// let cx = Baggage::new().extract(&carrier);
/// assert_eq!(cx.baggage().get("token").map(|v| v.as_str()), Some("dGVzdA=="));
/// ```
#[derive(Debug, Default, Clone, Copy)]
pub struct Baggage {
    _private: (),
}

impl Baggage {
    /// Creates the propagator.
    ///
    /// ```
    /// use opentelemetry::propagation::TextMapPropagator as _;
    ///
    /// let propagator = flowtrace::propagation::Baggage::new();
    /// let fields: Vec<&str> = propagator.fields().collect();
    /// assert_eq!(fields, ["baggage"]);
    /// ```
    pub fn new() -> Self {
        Self::default()
    }
}

static FIELDS: std::sync::LazyLock<[String; 1]> = std::sync::LazyLock::new(|| [BAGGAGE.to_owned()]);

impl TextMapPropagator for Baggage {
    fn inject_context(&self, cx: &Context, injector: &mut dyn Injector) {
        let header = format_baggage(cx.baggage());
        if !header.is_empty() {
            injector.set(BAGGAGE, header);
        }
    }

    /// The carrier's baggage replaces `cx`'s; with no `baggage` field, `cx`
    /// is returned as it is.
    fn extract_with_context(&self, cx: &Context, extractor: &dyn Extractor) -> Context {
        match extractor.get_all(BAGGAGE) {
            Some(fields) if !fields.is_empty() => cx.with_baggage(parse_baggage(&fields).baggage),
            _ => cx.clone(),
        }
    }

    fn fields(&self) -> FieldIter<'_> {
        FieldIter::new(FIELDS.as_slice())
    }
}

/// `cx` with `header`'s entries merged over its baggage (innermost wins):
/// how a `baggage` entry scoped into the `custom_context` map is applied.
pub(crate) fn merge_header(cx: &Context, header: &str) -> Context {
    let parsed = parse_baggage(&[header]);
    merged(
        cx,
        parsed
            .baggage
            .iter()
            .map(|(k, (v, m))| KeyValueMetadata::new(k.clone(), v.clone(), m.clone())),
    )
}

fn merged(cx: &Context, entries: impl IntoIterator<Item = KeyValueMetadata>) -> Context {
    let current = cx
        .baggage()
        .iter()
        .map(|(k, (v, m))| KeyValueMetadata::new(k.clone(), v.clone(), m.clone()));
    let baggage: Entries = current.chain(entries).collect();
    cx.with_baggage(baggage)
}

/// Baggage entries to add for one future; see [`with_baggage`].
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let scope: flowtrace::propagation::BaggageScope =
///     flowtrace::propagation::with_baggage([("tenant", "acme")]);
/// let tenant = scope
///     .scope(async { flowtrace::ctx().baggage().get("tenant").map(|v| v.to_string()) })
///     .await;
/// assert_eq!(tenant.as_deref(), Some("acme"));
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct BaggageScope {
    entries: Vec<(String, String)>,
}

/// Adds baggage entries for a scope, over the baggage current where the
/// scoped future runs (innermost wins). Tasks called
/// in the scope see them in `ctx().baggage()` and send them on in the
/// `baggage` header, to child processes in `BAGGAGE`.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use flowtrace::propagation::with_baggage;
///
/// let user = with_baggage([("user.id", "alice")])
///     .scope(async { flowtrace::ctx().baggage().get("user.id").map(|v| v.to_string()) })
///     .await;
/// assert_eq!(user.as_deref(), Some("alice"));
/// # }
/// ```
pub fn with_baggage<I, K, V>(entries: I) -> BaggageScope
where
    I: IntoIterator<Item = (K, V)>,
    K: Into<String>,
    V: Into<String>,
{
    BaggageScope {
        entries: entries
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect(),
    }
}

impl BaggageScope {
    /// Runs `future` with the entries added to the baggage current when it
    /// is first polled. Keys that are not RFC 7230 tokens are left out.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use flowtrace::propagation::with_baggage;
    ///
    /// let inner = with_baggage([("tier", "gold")])
    ///     .scope(with_baggage([("tier", "platinum"), ("bad key", "x")]).scope(async {
    ///         let view = flowtrace::ctx();
    ///         let baggage = view.baggage();
    ///         (baggage.get("tier").map(|v| v.to_string()), baggage.len())
    ///     }))
    ///     .await;
    /// assert_eq!(inner, (Some("platinum".to_owned()), 1), "innermost wins; the bad key is left out");
    /// # }
    /// ```
    pub fn scope<F: Future>(self, future: F) -> BaggageScoped<F> {
        BaggageScoped {
            entries: Some(self.entries),
            cx: None,
            future,
        }
    }
}

pin_project_lite::pin_project! {
    /// A future running with scoped baggage; see [`with_baggage`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let scoped: flowtrace::propagation::BaggageScoped<_> =
    ///     flowtrace::propagation::with_baggage([("tenant", "acme")]).scope(async { 1 });
    /// assert_eq!(tokio::spawn(scoped).await.unwrap(), 1);
    /// # }
    /// ```
    #[must_use = "futures do nothing unless polled"]
    pub struct BaggageScoped<F> {
        entries: Option<Vec<(String, String)>>,
        cx: Option<Context>,
        #[pin]
        future: F,
    }
}

impl<F: Future> Future for BaggageScoped<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, task: &mut std::task::Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let cx = this.cx.get_or_insert_with(|| {
            let entries = this.entries.take().unwrap_or_default();
            let entries = entries.into_iter().filter_map(|(k, v)| {
                if is_token(&k) {
                    Some(KeyValueMetadata::new(k, v, ""))
                } else {
                    tracing::debug!(key = %k, "baggage key is not a token; left out");
                    None
                }
            });
            Context::map_current(|cx| merged(cx, entries))
        });
        let _guard = cx.clone().attach();
        this.future.poll(task)
    }
}

#[cfg(test)]
mod tests;
