//! What a piece of feedback is about: a [`Target`] trace (and optionally its
//! root span), and what can name one ([`IntoTarget`]).

use opentelemetry::trace::{SpanContext, SpanId, TraceId};

use super::FeedbackError;

/// The trace (and optionally its root span) a piece of feedback is about.
///
/// ```
/// use flowtrace::feedback::Target;
/// use opentelemetry::trace::TraceId;
///
/// let target = Target::new(TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap()).with_root_hex("00f067aa0ba902b7").unwrap();
/// assert_eq!(target.trace_id().to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
/// assert_eq!(target.root().unwrap().to_string(), "00f067aa0ba902b7");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    pub(super) trace_id: TraceId,
    pub(super) root: Option<SpanId>,
}

impl Target {
    /// The trace `trace_id`, no root span.
    ///
    /// ```
    /// use opentelemetry::trace::TraceId;
    /// let target = flowtrace::feedback::Target::new(TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap());
    /// assert_eq!(target.root(), None);
    /// ```
    pub fn new(trace_id: TraceId) -> Self {
        Self {
            trace_id,
            root: None,
        }
    }

    /// A trace id in hex (as [`Run::trace_id`](crate::Run::trace_id) gives
    /// it) or a `traceparent` (trace and root span).
    ///
    /// ```
    /// use flowtrace::feedback::Target;
    ///
    /// let t = Target::parse("4bf92f3577b34da6a3ce929d0e0e4736").unwrap();
    /// assert_eq!(t.root(), None);
    /// let t = Target::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap();
    /// assert_eq!(t.root().unwrap().to_string(), "00f067aa0ba902b7");
    /// assert!(Target::parse("nope").is_err());
    /// ```
    pub fn parse(value: &str) -> Result<Self, FeedbackError> {
        let value = value.trim();
        if value.len() == 32 {
            return match hex_id::<16>(value) {
                Some(bytes) => Ok(Self::new(TraceId::from_bytes(bytes))),
                None => Err(FeedbackError::InvalidTraceId(value.to_owned())),
            };
        }
        match crate::propagation::parse_traceparent(value) {
            Ok(sc) => Ok(Self {
                trace_id: sc.trace_id(),
                root: Some(sc.span_id()),
            }),
            Err(_) => Err(FeedbackError::InvalidTraceId(value.to_owned())),
        }
    }

    /// The root span (the feedback span becomes its child and links to it).
    ///
    /// ```
    /// use opentelemetry::trace::{SpanId, TraceId};
    /// let root = SpanId::from_hex("00f067aa0ba902b7").unwrap();
    /// let target = flowtrace::feedback::Target::new(TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap()).with_root(root);
    /// assert_eq!(target.root(), Some(root));
    /// ```
    pub fn with_root(mut self, span_id: SpanId) -> Self {
        self.root = Some(span_id).filter(|id| *id != SpanId::INVALID);
        self
    }

    /// [`with_root`](Self::with_root) from 16 hex digits.
    ///
    /// ```
    /// use flowtrace::feedback::{FeedbackError, Target};
    /// let target = Target::parse("4bf92f3577b34da6a3ce929d0e0e4736").unwrap();
    /// assert!(target.clone().with_root_hex("00f067aa0ba902b7").is_ok());
    /// assert!(matches!(target.with_root_hex("xyz"), Err(FeedbackError::InvalidSpanId(_))));
    /// ```
    pub fn with_root_hex(self, span_id: &str) -> Result<Self, FeedbackError> {
        match hex_id::<8>(span_id.trim()) {
            Some(bytes) => Ok(self.with_root(SpanId::from_bytes(bytes))),
            None => Err(FeedbackError::InvalidSpanId(span_id.to_owned())),
        }
    }

    /// The trace.
    ///
    /// ```
    /// let target = flowtrace::feedback::Target::parse("4bf92f3577b34da6a3ce929d0e0e4736").unwrap();
    /// assert_eq!(target.trace_id().to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
    /// ```
    pub fn trace_id(&self) -> TraceId {
        self.trace_id
    }

    /// The root span, if known.
    ///
    /// ```
    /// let target = flowtrace::feedback::Target::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap();
    /// assert_eq!(target.root().unwrap().to_string(), "00f067aa0ba902b7");
    /// ```
    pub fn root(&self) -> Option<SpanId> {
        self.root
    }
}

/// `N` bytes from `2N` lowercase hex digits, not all zeros.
fn hex_id<const N: usize>(hex: &str) -> Option<[u8; N]> {
    let digits = hex.as_bytes();
    if digits.len() != 2 * N
        || !digits
            .iter()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    {
        return None;
    }
    let mut out = [0u8; N];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()?;
    }
    out.iter().any(|b| *b != 0).then_some(out)
}

/// What can name a feedback target: a [`Target`], a [`TraceId`], a
/// [`SpanContext`] (trace and root), or a string for [`Target::parse`].
///
/// ```
/// use flowtrace::feedback::{IntoTarget, Target};
/// use opentelemetry::trace::TraceId;
///
/// let from_hex = "4bf92f3577b34da6a3ce929d0e0e4736".into_target().unwrap();
/// let from_id = TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap().into_target().unwrap();
/// assert_eq!(from_hex.trace_id(), from_id.trace_id());
/// let target: Target = from_id.into_target().unwrap();
/// # let _ = target;
/// ```
pub trait IntoTarget {
    /// The target, or why the value does not name one.
    fn into_target(self) -> Result<Target, FeedbackError>;
}

impl IntoTarget for Target {
    fn into_target(self) -> Result<Target, FeedbackError> {
        Ok(self)
    }
}

impl IntoTarget for TraceId {
    fn into_target(self) -> Result<Target, FeedbackError> {
        if self == TraceId::INVALID {
            return Err(FeedbackError::InvalidTraceId(self.to_string()));
        }
        Ok(Target::new(self))
    }
}

impl IntoTarget for &SpanContext {
    fn into_target(self) -> Result<Target, FeedbackError> {
        Ok(self.trace_id().into_target()?.with_root(self.span_id()))
    }
}

impl IntoTarget for SpanContext {
    fn into_target(self) -> Result<Target, FeedbackError> {
        (&self).into_target()
    }
}

impl IntoTarget for &str {
    fn into_target(self) -> Result<Target, FeedbackError> {
        Target::parse(self)
    }
}

impl IntoTarget for &String {
    fn into_target(self) -> Result<Target, FeedbackError> {
        Target::parse(self)
    }
}

impl IntoTarget for String {
    fn into_target(self) -> Result<Target, FeedbackError> {
        Target::parse(&self)
    }
}
