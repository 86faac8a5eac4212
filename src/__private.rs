//! The contract between `#[traced]` and the runtime. Not public API.

use std::fmt::{Debug, Display};
use std::future::Future;

use opentelemetry::trace::SpanRef;

pub use crate::task::{Task, TaskMeta};

/// Wraps a task body: the macro's only entry point.
pub fn task<F, R>(meta: &'static TaskMeta, future: F, record: R) -> Task<F, R>
where
    F: Future,
    R: FnOnce(&F::Output, &SpanRef<'_>),
{
    Task::new(meta, future, record)
}

/// The recorder for bodies that do not return a `Result`.
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

/// An error's type and message, however much of it can be described.
pub struct Described {
    type_name: &'static str,
    message: String,
}

/// Borrowed error, described through the best trait it implements (autoref
/// specialisation: `(&&&Wrap(e)).describe()` picks `Error`, then `Display`,
/// then `Debug`, then only the type name).
pub struct Wrap<'a, E>(pub &'a E);

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

impl<E: std::error::Error> ViaError for &&&Wrap<'_, E> {
    fn describe(&self) -> Described {
        let mut message = self.0.to_string();
        let mut source = self.0.source();
        while let Some(cause) = source {
            message.push_str(": ");
            message.push_str(&cause.to_string());
            source = cause.source();
        }
        Described {
            type_name: std::any::type_name::<E>(),
            message,
        }
    }
}

impl<E: Display> ViaDisplay for &&Wrap<'_, E> {
    fn describe(&self) -> Described {
        Described {
            type_name: std::any::type_name::<E>(),
            message: self.0.to_string(),
        }
    }
}

impl<E: Debug> ViaDebug for &Wrap<'_, E> {
    fn describe(&self) -> Described {
        Described {
            type_name: std::any::type_name::<E>(),
            message: format!("{:?}", self.0),
        }
    }
}

impl<E> ViaTypeName for Wrap<'_, E> {
    fn describe(&self) -> Described {
        Described {
            type_name: std::any::type_name::<E>(),
            message: std::any::type_name::<E>().to_owned(),
        }
    }
}
