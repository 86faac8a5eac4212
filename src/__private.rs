//! The contract between `#[traced]` and the runtime. Not public API: the
//! macro expands into these items only (and the methods of the values they
//! return).

pub use crate::carry::Caller;
pub use crate::lifecycle_options::{Lifecycle, RetryArg};
pub use crate::outcome::{Capture, Describe, Read, Wrap};
pub use crate::task::{Call, TaskMeta, TaskStart};
pub use opentelemetry::trace::SpanKind;

impl TaskMeta {
    /// Strips the macro's marker function from a `type_name` path, leaving
    /// the task function's fully qualified name.
    pub fn function_name(marker_path: &'static str) -> &'static str {
        let path = marker_path
            .strip_suffix("::__flowtrace_function")
            .unwrap_or(marker_path);
        path.strip_suffix("::{{closure}}").unwrap_or(path)
    }
}
