//! The contract between `#[traced]` and the runtime. Not public API: the
//! macro expands into calls of these items only.

use std::fmt::{Debug, Display};

use opentelemetry::trace::SpanRef;
use serde::Serialize;

pub use crate::capture::Captured;
pub use crate::carry::Caller;
pub use crate::task::{Started, Task, TaskMeta, TaskStart};
pub use opentelemetry::trace::SpanKind;

/// The recorder for bodies whose outcome is not recorded.
pub fn no_outcome<T>(_: &T, _: &SpanRef<'_>) -> bool {
    false
}

/// Strips the macro's marker function from a `type_name` path, leaving the
/// task function's fully qualified name.
pub fn function_name(marker_path: &'static str) -> &'static str {
    let path = marker_path
        .strip_suffix("::__flowtrace_function")
        .unwrap_or(marker_path);
    path.strip_suffix("::{{closure}}").unwrap_or(path)
}

/// Records an `Err` on the task span; returns `true` (an error).
pub fn record_error(span: &SpanRef<'_>, error: Described) -> bool {
    crate::task::record_exception(span, error.type_name, error.message);
    true
}

/// An error's type and message, for retry events.
pub fn failure(error: Described) -> (String, String) {
    (error.type_name.to_owned(), error.message)
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

pub use crate::lifecycle::{Backoff, Hooks, Policy, TaskTimeout, execute};

/// Built from a [`TaskTimeout`] when an attempt runs out of time.
#[diagnostic::on_unimplemented(
    message = "`#[traced(timeout = ..)]` needs the task to return `Result<T, E>` with `E: From<flowtrace::TaskTimeout>`",
    label = "`{Self}` cannot represent a timeout",
    note = "add `impl From<flowtrace::TaskTimeout> for YourError`"
)]
pub trait FromTimeout {
    fn from_timeout(timeout: TaskTimeout) -> Self;
}

impl<T, E: From<TaskTimeout>> FromTimeout for Result<T, E> {
    fn from_timeout(timeout: TaskTimeout) -> Self {
        Err(E::from(timeout))
    }
}

/// The output of a timed-out attempt.
pub fn timeout_output<R: FromTimeout>(timeout: TaskTimeout) -> R {
    R::from_timeout(timeout)
}

/// An argument cloned for each attempt of a retried task.
#[diagnostic::on_unimplemented(
    message = "`#[traced(retries = ..)]` runs the body again, so every argument must be `Clone`; `{Self}` is not",
    label = "not `Clone`",
    note = "derive or implement `Clone`, pass a shared reference or an `Arc`, or drop `retries`"
)]
pub trait RetryArg {
    fn retry_clone(&self) -> Self;
}

impl<T: Clone> RetryArg for T {
    fn retry_clone(&self) -> Self {
        self.clone()
    }
}

/// A fresh copy of an argument for the next attempt.
pub fn retry_arg<T: RetryArg>(value: &T) -> T {
    value.retry_clone()
}

/// The failure hook of a body that never fails.
pub fn never_fails<T>(_: &T) -> Option<(String, String)> {
    None
}

/// The cache hooks of a task without a cache key.
pub fn no_store<T>(_: &T) -> Option<serde_json::Value> {
    None
}

/// See [`no_store`].
pub fn no_load<T>(_: serde_json::Value) -> Option<T> {
    None
}

/// Caches a whole output.
pub fn store_value<T: Serialize>(out: &T) -> Option<serde_json::Value> {
    serde_json::to_value(out).ok()
}

/// Reads a whole output from the cache.
pub fn load_value<T: serde::de::DeserializeOwned>(json: serde_json::Value) -> Option<T> {
    serde_json::from_value(json).ok()
}

/// Caches the `Ok` value of a `Result` (errors are not cached).
pub fn store_ok<T: Serialize, E>(out: &Result<T, E>) -> Option<serde_json::Value> {
    out.as_ref().ok().and_then(|v| serde_json::to_value(v).ok())
}

/// Reads an `Ok` value from the cache.
pub fn load_ok<T: serde::de::DeserializeOwned, E>(json: serde_json::Value) -> Option<Result<T, E>> {
    serde_json::from_value(json).ok().map(Ok)
}
