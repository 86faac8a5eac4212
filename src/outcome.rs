//! How a `#[traced]` task's output is read: the expansion turns the output
//! into a [`Read`] (an error, or a value with what `ret` records), and the
//! span's end and the lifecycle take it from there through [`Outcome`].
//!
//! Values are borrowed and seen through the best trait they implement
//! (autoref specialisation on [`Wrap`]: the receiver with the most
//! references wins), and formatted only when a span records them.

use std::error::Error as StdError;
use std::fmt::{Debug, Display};

use opentelemetry::trace::SpanRef;
use serde::Serialize;

use crate::capture::Captured;

/// A borrowed value, turned into what a span records through the best trait
/// it implements: `(&&&Wrap(v)).capture(..)` (arguments, `ret`) tries
/// `Serialize`, then `Debug`; `(&&&&Wrap(e)).describe()` tries `Error`,
/// `Display`, `Debug`, then the type name. `Wrap::json(&v)`,
/// `Wrap::display(&v)` and `Wrap::debug(&v)` format a `fields` value,
/// `Wrap(v).as_display()` and `Wrap(v).as_debug()` a `ret(Display)` /
/// `ret(Debug)` value.
pub struct Wrap<'a, T: ?Sized>(pub &'a T);

/// A value to record, formatted only when it is recorded.
pub enum Value<'a> {
    /// Through `Serialize`, as JSON.
    Json(&'a dyn ToJson),
    /// Through `Display`, as text.
    Display(&'a dyn Display),
    /// Through `Debug`, as text.
    Debug(&'a dyn Debug),
}

/// `Serialize` in a form a [`Value`] can hold.
pub trait ToJson {
    /// The value as JSON.
    fn to_json(&self) -> serde_json::Result<serde_json::Value>;
}

impl<T: Serialize> ToJson for T {
    fn to_json(&self) -> serde_json::Result<serde_json::Value> {
        serde_json::to_value(self)
    }
}

impl From<Value<'_>> for Captured {
    fn from(value: Value<'_>) -> Self {
        match value {
            Value::Json(value) => match value.to_json() {
                Ok(json) => Captured::Json(json),
                Err(err) => Captured::Text(format!("<not serializable: {err}>")),
            },
            Value::Display(value) => Captured::Text(value.to_string()),
            Value::Debug(value) => Captured::Text(format!("{value:?}")),
        }
    }
}

impl<T: ?Sized> Wrap<'_, T> {
    /// A `fields(key = value)` value: `Serialize`, a compile error naming
    /// the missing trait otherwise.
    pub fn json(value: &T) -> Captured
    where
        T: Serialize,
    {
        match serde_json::to_value(value) {
            Ok(json) => Captured::Json(json),
            Err(err) => Captured::Text(format!("<not serializable: {err}>")),
        }
    }

    /// A `fields(key = %value)` value.
    pub fn display(value: &T) -> Captured
    where
        T: Display,
    {
        Captured::Text(value.to_string())
    }

    /// A `fields(key = ?value)` value.
    pub fn debug(value: &T) -> Captured
    where
        T: Debug,
    {
        Captured::Text(format!("{value:?}"))
    }
}

impl<'a, T> Wrap<'a, T> {
    /// `ret(Display)`: the value, formatted when it is recorded.
    pub fn as_display(&self) -> Value<'a>
    where
        T: Display,
    {
        Value::Display(self.0)
    }

    /// `ret(Debug)`: the value, formatted when it is recorded.
    pub fn as_debug(&self) -> Value<'a>
    where
        T: Debug,
    {
        Value::Debug(self.0)
    }
}

/// An argument or return value, captured through `Serialize` when its type
/// has it, else through `Debug` when `debug` is set, else not at all.
pub trait Capture<'a> {
    /// The value to record, if any.
    fn capture(&self, debug: bool) -> Option<Value<'a>>;
}

impl<'a, T: Serialize> Capture<'a> for &&Wrap<'a, T> {
    fn capture(&self, _: bool) -> Option<Value<'a>> {
        Some(Value::Json(self.0))
    }
}

impl<'a, T: Debug> Capture<'a> for &Wrap<'a, T> {
    fn capture(&self, debug: bool) -> Option<Value<'a>> {
        debug.then_some(Value::Debug(self.0))
    }
}

impl<'a, T: ?Sized> Capture<'a> for Wrap<'a, T> {
    fn capture(&self, _: bool) -> Option<Value<'a>> {
        None
    }
}

/// An error's type and message, built when it is recorded.
pub struct Failure<'a> {
    type_name: &'static str,
    message: Message<'a>,
}

enum Message<'a> {
    Error(&'a dyn StdError),
    Display(&'a dyn Display),
    Debug(&'a dyn Debug),
    TypeName,
}

impl Failure<'_> {
    fn new<E: ?Sized>(message: Message<'_>) -> Failure<'_> {
        Failure {
            type_name: std::any::type_name::<E>(),
            message,
        }
    }

    /// The message: an `Error`'s with its chain of sources, `: `-separated.
    fn message(&self) -> String {
        match self.message {
            Message::Error(error) => crate::error_chain(error),
            Message::Display(error) => error.to_string(),
            Message::Debug(error) => format!("{error:?}"),
            Message::TypeName => self.type_name.to_owned(),
        }
    }
}

/// An error, described through the best trait it implements;
/// `Describe::describe(&&&Wrap(e))` forces `Display`, `&&Wrap(e)` `Debug`.
pub trait Describe<'a> {
    /// The error's type and message.
    fn describe(&self) -> Failure<'a>;
}

impl<'a, E: StdError> Describe<'a> for &&&Wrap<'a, E> {
    fn describe(&self) -> Failure<'a> {
        Failure::new::<E>(Message::Error(self.0))
    }
}

impl<'a, E: Display> Describe<'a> for &&Wrap<'a, E> {
    fn describe(&self) -> Failure<'a> {
        Failure::new::<E>(Message::Display(self.0))
    }
}

impl<'a, E: Debug> Describe<'a> for &Wrap<'a, E> {
    fn describe(&self) -> Failure<'a> {
        Failure::new::<E>(Message::Debug(self.0))
    }
}

impl<'a, E: ?Sized> Describe<'a> for Wrap<'a, E> {
    fn describe(&self) -> Failure<'a> {
        Failure::new::<E>(Message::TypeName)
    }
}

/// What a task's output is, as the expansion reads it.
pub enum Read<'a> {
    /// Not an error; `Some`: the value `ret` records.
    Ok(Option<Value<'a>>),
    /// An error: status Error and an `exception` event, a retry if allowed.
    Err(Failure<'a>),
}

/// Reads a task's output: the one function the expansion writes per task
/// (`|out| match out { Ok(v) => Read::Ok(..), Err(e) => Read::Err(..) }`
/// for a `Result`, `|out| Read::Ok(..)` for any other value).
pub trait Outcome<T>: for<'a> Fn(&'a T) -> Read<'a> {
    /// Records the outcome on `span` (only what it records) and says
    /// whether it was an error.
    #[inline]
    fn record(&self, out: &T, span: &SpanRef<'_>) -> bool {
        match self(out) {
            Read::Ok(value) => {
                if let Some(value) = value {
                    if span.is_recording() {
                        record_output(span, Some(value.into()));
                    }
                }
                false
            }
            Read::Err(failure) => {
                if span.is_recording() {
                    crate::exception::record(span, failure.type_name, failure.message(), None);
                }
                true
            }
        }
    }

    /// Whether the output is an error.
    #[inline]
    fn is_error(&self, out: &T) -> bool {
        matches!(self(out), Read::Err(_))
    }

    /// The error's type and message, when the output is one.
    fn failure(&self, out: &T) -> Option<(String, String)> {
        match self(out) {
            Read::Err(failure) => Some((failure.type_name.to_owned(), failure.message())),
            Read::Ok(_) => None,
        }
    }
}

impl<T, F: for<'a> Fn(&'a T) -> Read<'a>> Outcome<T> for F {}

/// Records the return value as `flowtrace.output`.
pub(crate) fn record_output(span: &SpanRef<'_>, value: Option<Captured>) {
    if let Some(value) = value {
        let config = crate::capture::config();
        let kv = crate::capture::attribute(crate::capture::OUTPUT.to_owned(), value, &[], &config);
        crate::openinference::on_output(span, &kv.value, &config);
        span.set_attribute(kv);
    }
}
