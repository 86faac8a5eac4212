//! The spans a viewer draws: what one OTLP span says, kept in a compact form
//! (ids as integers, times as nanoseconds), and the attribute values it
//! carries.

use std::fmt;

/// An OTLP `AnyValue`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Value {
    Str(String),
    Int(i64),
    Double(f64),
    Bool(bool),
    /// Bytes, as the file holds them (base64).
    Bytes(String),
    Array(Vec<Value>),
    Map(Vec<(String, Value)>),
    Empty,
}

impl Value {
    /// The value as JSON, for the HTML page: integers beyond what a
    /// JavaScript number holds exactly become strings.
    pub(crate) fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match self {
            Value::Str(s) | Value::Bytes(s) => J::String(s.clone()),
            Value::Int(i) if i.unsigned_abs() < (1 << 53) => J::from(*i),
            Value::Int(i) => J::String(i.to_string()),
            Value::Double(d) => serde_json::Number::from_f64(*d)
                .map(J::Number)
                .unwrap_or_else(|| J::String(d.to_string())),
            Value::Bool(b) => J::Bool(*b),
            Value::Array(items) => J::Array(items.iter().map(Value::to_json).collect()),
            Value::Map(entries) => J::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.clone(), v.to_json()))
                    .collect(),
            ),
            Value::Empty => J::Null,
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Str(s) | Value::Bytes(s) => f.write_str(s),
            Value::Int(i) => write!(f, "{i}"),
            Value::Double(d) => write!(f, "{d}"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Empty => Ok(()),
            other => write!(f, "{}", other.to_json()),
        }
    }
}

/// A list of attributes, in the order the file gives them.
pub(crate) type Attributes = Vec<(String, Value)>;

/// A span event.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Event {
    pub(crate) time: u64,
    pub(crate) name: String,
    pub(crate) attributes: Attributes,
}

/// A span link.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Link {
    pub(crate) trace_id: u128,
    pub(crate) span_id: u64,
    pub(crate) attributes: Attributes,
}

/// OTLP status codes (0 is unset).
pub(crate) const STATUS_OK: u8 = 1;
pub(crate) const STATUS_ERROR: u8 = 2;

/// What the lifecycle attributes and events of a span say, read once.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Marks {
    /// `flowtrace.task.attempt` on an attempt span.
    pub(crate) attempt: Option<u32>,
    /// `retry` events on a task span: the retries that happened.
    pub(crate) retried: u32,
    pub(crate) timeout: bool,
    pub(crate) cancelled: bool,
    pub(crate) cached: bool,
    pub(crate) replayed: bool,
}

impl Marks {
    /// The marks as short words, e.g. `["attempt 2", "timeout"]`.
    pub(crate) fn words(&self) -> Vec<String> {
        let mut words = Vec::new();
        if let Some(n) = self.attempt {
            words.push(format!("attempt {n}"));
        }
        if self.retried > 0 {
            words.push(format!("retried {}×", self.retried));
        }
        for (set, word) in [
            (self.timeout, "timeout"),
            (self.cancelled, "cancelled"),
            (self.cached, "cached"),
            (self.replayed, "replayed"),
        ] {
            if set {
                words.push(word.to_owned());
            }
        }
        words
    }
}

/// One span. Times are nanoseconds since the Unix epoch.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Span {
    pub(crate) trace_id: u128,
    pub(crate) span_id: u64,
    /// 0 for none.
    pub(crate) parent_id: u64,
    pub(crate) name: String,
    pub(crate) kind: u8,
    pub(crate) start: u64,
    pub(crate) end: u64,
    pub(crate) status: u8,
    pub(crate) message: String,
    pub(crate) marks: Marks,
    pub(crate) run_id: Option<String>,
    pub(crate) run_name: Option<String>,
    /// Empty unless the reader keeps details (the HTML page).
    pub(crate) attributes: Attributes,
    pub(crate) events: Vec<Event>,
    pub(crate) links: Vec<Link>,
    /// Index into the reader's resource table.
    pub(crate) resource: u32,
    /// Index into the reader's scope table.
    pub(crate) scope: u32,
}

impl Span {
    pub(crate) fn duration(&self) -> u64 {
        self.end.saturating_sub(self.start)
    }

    pub(crate) fn is_error(&self) -> bool {
        self.status == STATUS_ERROR
    }
}

/// The OTLP span kind's name.
pub(crate) fn kind_name(kind: u8) -> &'static str {
    match kind {
        1 => "internal",
        2 => "server",
        3 => "client",
        4 => "producer",
        5 => "consumer",
        _ => "unspecified",
    }
}

/// µs below a millisecond, ms below a second, then seconds.
pub(crate) fn format_duration(nanos: u64) -> String {
    if nanos < 1_000_000 {
        format!("{} µs", nanos / 1000)
    } else if nanos < 1_000_000_000 {
        format!("{:.1} ms", nanos as f64 / 1e6)
    } else if nanos < 100_000_000_000 {
        format!("{:.2} s", nanos as f64 / 1e9)
    } else {
        format!("{:.0} s", nanos as f64 / 1e9)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_the_console_tree() {
        for (nanos, text) in [
            (3_000, "3 µs"),
            (999_999, "999 µs"),
            (16_800_000, "16.8 ms"),
            (1_500_000_000, "1.50 s"),
            (250_000_000_000, "250 s"),
        ] {
            assert_eq!(format_duration(nanos), text, "{nanos} ns");
        }
    }

    #[test]
    fn marks_are_listed_in_a_fixed_order() {
        let marks = Marks {
            attempt: Some(2),
            retried: 0,
            timeout: true,
            cancelled: false,
            cached: false,
            replayed: false,
        };
        assert_eq!(marks.words(), ["attempt 2", "timeout"]);
        let marks = Marks {
            retried: 2,
            cached: true,
            ..Marks::default()
        };
        assert_eq!(marks.words(), ["retried 2×", "cached"]);
    }

    #[test]
    fn big_integers_stay_exact_in_json() {
        assert_eq!(Value::Int(42).to_json(), serde_json::json!(42));
        assert_eq!(
            Value::Int(i64::MAX).to_json(),
            serde_json::json!("9223372036854775807")
        );
        assert_eq!(Value::Double(f64::NAN).to_json(), serde_json::json!("NaN"));
    }
}
