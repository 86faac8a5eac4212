//! Child processes that continue the current task's trace, through the
//! `TRACEPARENT` / `TRACESTATE` / `BAGGAGE` environment variables (the
//! OpenTelemetry "environment variables as context propagation carriers"
//! convention, read by flowtrace's runs and by other SDKs' helpers).

use crate::propagation::{EnvCarrier, to_env};

/// The variables [`CommandExt::with_trace_context`] sets or removes.
pub const ENV_VARS: [&str; 3] = ["TRACEPARENT", "TRACESTATE", "BAGGAGE"];

/// Adds [`with_trace_context`](CommandExt::with_trace_context) to
/// [`std::process::Command`] and [`tokio::process::Command`].
///
/// ```no_run
/// use flowtrace::process::CommandExt as _;
///
/// #[flowtrace::traced]
/// async fn convert(path: String) -> std::io::Result<std::process::ExitStatus> {
///     tokio::process::Command::new("convert-tool")
///         .arg(path)
///         .with_trace_context() // the child's spans are children of `convert`
///         .status()
///         .await
/// }
/// ```
pub trait CommandExt {
    /// Sets `TRACEPARENT`, `TRACESTATE` and `BAGGAGE` to the current task's
    /// carrier (what [`to_env`] gives), and removes whichever of them the
    /// carrier does not have, so a child never continues a stale trace
    /// inherited from this process's own environment.
    ///
    /// ```
    /// use flowtrace::process::CommandExt as _;
    ///
    /// let mut command = std::process::Command::new("true");
    /// // Outside any task there is no carrier: the variables are removed.
    /// command.env("TRACEPARENT", "stale").with_trace_context();
    /// let traceparent = command.get_envs().find(|(name, _)| *name == "TRACEPARENT");
    /// assert_eq!(traceparent, Some(("TRACEPARENT".as_ref(), None)));
    /// ```
    fn with_trace_context(&mut self) -> &mut Self;
}

fn apply(mut set: impl FnMut(&str, Option<&str>)) {
    let vars = to_env();
    for name in ENV_VARS {
        let value = vars
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str());
        set(name, value);
    }
}

/// `CommandExt` for command types with `env` / `env_remove` (std's and
/// tokio's share the methods, not a trait).
macro_rules! command_ext {
    ($($command:ty),*) => {$(
        impl CommandExt for $command {
            fn with_trace_context(&mut self) -> &mut Self {
                apply(|name, value| {
                    match value {
                        Some(v) => self.env(name, v),
                        None => self.env_remove(name),
                    };
                });
                self
            }
        }
    )*};
}

command_ext!(std::process::Command, tokio::process::Command);

/// The carrier a command will hand its child: the `TRACEPARENT` /
/// `TRACESTATE` / `BAGGAGE` pairs [`CommandExt::with_trace_context`] set
/// on it (for logging or tests).
///
/// ```
/// use flowtrace::process::{CommandExt as _, carrier_of};
///
/// let mut cmd = std::process::Command::new("true");
/// cmd.with_trace_context();
/// assert!(carrier_of(&cmd).vars().is_empty(), "outside any task there is nothing to pass on");
/// ```
pub fn carrier_of(cmd: &std::process::Command) -> EnvCarrier {
    let mut carrier = EnvCarrier::default();
    for (name, value) in cmd.get_envs() {
        let (Some(name), Some(Some(value))) = (name.to_str(), value.map(|v| v.to_str())) else {
            continue;
        };
        if ENV_VARS.contains(&name) {
            opentelemetry::propagation::Injector::set(
                &mut carrier,
                &name.to_ascii_lowercase(),
                value.to_owned(),
            );
        }
    }
    carrier
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::propagation::Extractor as _;

    const TP: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03";

    #[tokio::test]
    async fn sets_the_current_carrier_and_removes_the_rest() {
        let mut cmd = std::process::Command::new("true");
        cmd.env("TRACESTATE", "stale=1").env("BAGGAGE", "stale=1");
        crate::custom_context([("traceparent", TP), ("baggage", "user=alice")])
            .scope(async {
                cmd.with_trace_context();
            })
            .await;
        let carrier = carrier_of(&cmd);
        assert_eq!(carrier.get("traceparent"), Some(TP), "flags 03 passed on");
        assert_eq!(carrier.get("baggage"), Some("user=alice"));
        let removed: Vec<_> = cmd
            .get_envs()
            .filter(|(_, v)| v.is_none())
            .map(|(k, _)| k.to_owned())
            .collect();
        assert_eq!(
            removed,
            vec!["TRACESTATE"],
            "no tracestate: the stale one is removed"
        );
    }
}
