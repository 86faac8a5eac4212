//! The contract between `#[traced]` and the runtime. Not public API: the
//! macro expands into calls of these items only.

use std::fmt::{Debug, Display};

use opentelemetry::trace::SpanRef;
use serde::Serialize;

pub use crate::capture::Captured;
pub use crate::task::{Started, Task, TaskMeta, TaskStart};
pub use opentelemetry::trace::SpanKind;

/// The recorder for bodies whose outcome is not recorded.
pub fn no_outcome<T>(_: &T, _: &SpanRef<'_>) {}

/// Strips the macro's marker function from a `type_name` path, leaving the
/// task function's fully qualified name.
pub fn function_name(marker_path: &'static str) -> &'static str {
    let path = marker_path
        .strip_suffix("::__flowtrace_function")
        .unwrap_or(marker_path);
    path.strip_suffix("::{{closure}}").unwrap_or(path)
}

/// Records an `Err` on the task span.
pub fn record_error(span: &SpanRef<'_>, error: Described) {
    crate::task::record_exception(span, error.type_name, error.message);
}

/// Records the return value (`ret`).
pub fn record_output(span: &SpanRef<'_>, value: Option<Captured>) {
    crate::task::record_output(span, value);
}

/// An error's type and message, however much of it can be described.
pub struct Described {
    type_name: &'static str,
    message: String,
}

/// A borrowed value, turned into what the macro needs through the best
/// trait it implements (autoref specialisation: the receiver with the most
/// references wins, so `(&&&&Wrap(e)).describe()` tries `Error`, `Display`,
/// `Debug`, then the type name).
pub struct Wrap<'a, T: ?Sized>(pub &'a T);

pub trait ViaError {
    fn describe(&self) -> Described;
}
pub trait ViaDisplay {
    fn describe(&self) -> Described;
}
pub trait ViaDebug {
    fn describe(&self) -> Described;
}
pub trait ViaTypeName {
    fn describe(&self) -> Described;
}

fn described<E: ?Sized>(message: String) -> Described {
    Described {
        type_name: std::any::type_name::<E>(),
        message,
    }
}

impl<E: std::error::Error + ?Sized> ViaError for &&&Wrap<'_, E> {
    fn describe(&self) -> Described {
        let mut message = self.0.to_string();
        let mut source = self.0.source();
        while let Some(cause) = source {
            message.push_str(": ");
            message.push_str(&cause.to_string());
            source = cause.source();
        }
        described::<E>(message)
    }
}

impl<E: Display + ?Sized> ViaDisplay for &&Wrap<'_, E> {
    fn describe(&self) -> Described {
        described::<E>(self.0.to_string())
    }
}

impl<E: Debug + ?Sized> ViaDebug for &Wrap<'_, E> {
    fn describe(&self) -> Described {
        described::<E>(format!("{:?}", self.0))
    }
}

impl<E: ?Sized> ViaTypeName for Wrap<'_, E> {
    fn describe(&self) -> Described {
        described::<E>(std::any::type_name::<E>().to_owned())
    }
}

/// How a value is captured when it is not `Serialize`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Only `Serialize` values are captured.
    Json,
    /// Others are captured through `Debug`.
    Debug,
}

/// Captures a value: `(&&&Wrap(v)).capture(mode)` uses `Serialize` when the
/// type has it, else `Debug` in [`Mode::Debug`], else nothing.
pub trait CaptureSerialize {
    fn capture(&self, mode: Mode) -> Option<Captured>;
}
pub trait CaptureDebug {
    fn capture(&self, mode: Mode) -> Option<Captured>;
}
pub trait CaptureNothing {
    fn capture(&self, mode: Mode) -> Option<Captured>;
}

impl<T: Serialize + ?Sized> CaptureSerialize for &&Wrap<'_, T> {
    fn capture(&self, _: Mode) -> Option<Captured> {
        Some(match serde_json::to_value(self.0) {
            Ok(json) => Captured::Json(json),
            Err(err) => Captured::Text(format!("<not serializable: {err}>")),
        })
    }
}

impl<T: Debug + ?Sized> CaptureDebug for &Wrap<'_, T> {
    fn capture(&self, mode: Mode) -> Option<Captured> {
        (mode == Mode::Debug).then(|| Captured::Text(format!("{:?}", self.0)))
    }
}

impl<T: ?Sized> CaptureNothing for Wrap<'_, T> {
    fn capture(&self, _: Mode) -> Option<Captured> {
        None
    }
}

/// `%expr`: a value through `Display`.
pub fn display<T: Display + ?Sized>(value: &T) -> Captured {
    Captured::Text(value.to_string())
}

/// `?expr`: a value through `Debug`.
pub fn debug<T: Debug + ?Sized>(value: &T) -> Captured {
    Captured::Text(format!("{value:?}"))
}

/// A field value with no sigil: `Serialize`, else `Debug`; a type with
/// neither is a compile error naming the missing trait.
pub fn field<T: Serialize + ?Sized>(value: &T) -> Captured {
    match serde_json::to_value(value) {
        Ok(json) => Captured::Json(json),
        Err(err) => Captured::Text(format!("<not serializable: {err}>")),
    }
}
