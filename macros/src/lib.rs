//! The `#[traced]` attribute of [flowtrace](https://docs.rs/flowtrace).
//!
//! Use it through `flowtrace::traced`; the expansion calls only
//! `flowtrace::__private`.

mod attr;
mod expand;
mod item;
mod lifecycle;
#[cfg(test)]
mod tests;
mod valid;

use proc_macro::TokenStream;

/// Makes a function a flowtrace task: every call extracts its parent from
/// the current `custom_context` (else the current OpenTelemetry context, else
/// starts a root), starts a span, records its inputs, and runs the body with
/// the span and the child map current — on every poll, on any thread.
///
/// The caller is captured where the function is *called*, so
/// `tokio::spawn(task())` and `JoinSet::spawn(task())` stay under it; the
/// span starts when the future is first polled. When nothing is current at
/// the call, the task belongs where it is first polled. An `async fn`
/// becomes a `fn` returning `impl Future` for that (same arguments, same
/// output, same auto traits).
///
/// ```
/// #[flowtrace::traced]
/// async fn fetch(url: String) -> Result<u16, std::io::Error> {
///     Ok(200)
/// }
/// ```
///
/// Goes on any `async fn` (free, `&self` / `&mut self` / `self: Arc<Self>`
/// methods, generic, `impl Trait` arguments, trait impls, `#[async_trait]`
/// impls), on a plain `fn` returning an `async` block (`impl Future`, the
/// caller captured at the call, the span started at the first poll), and on a plain synchronous `fn`
/// (a span around the call).
///
/// Arguments are recorded as `flowtrace.input.<name>` through `Serialize`
/// (JSON) — only when the span records, capped at 4 KiB per value, with keys
/// such as `password` or `token` redacted at any depth (see
/// `flowtrace::capture`). An `Err` return sets status Error and adds an
/// `exception` event; a panic does the same and keeps unwinding.
///
/// # Options
///
/// The syntax of `tracing::instrument`:
///
/// | option | effect |
/// |---|---|
/// | `name = "..."` | span and task name (default: the function's name) |
/// | `kind = internal\|server\|client\|producer\|consumer` | span kind (default `internal`) |
/// | `skip(a, b)`, `skip_all` | leave arguments out of the capture |
/// | `fields(key = expr, a.b = %expr, c = ?expr)` | extra attributes: `Serialize`, `%` Display, `?` Debug |
/// | `ret`, `ret(Debug)`, `ret(Display)` | record the return value (the `Ok` value of a `Result`) as `flowtrace.output` |
/// | `err`, `err(Debug)`, `err(Display)` | record `Err` (on by default when the return type is a `Result`; `err` makes a type alias count) |
/// | `parent = expr` | explicit parent: a `Context`, `SpanContext`, `&CustomContext`, a carrier `&HashMap<String, String>`, or `None` for a root |
/// | `follows_from = expr` | links: one of the above, or a `Vec`/array of them |
/// | `new_trace` | start a new trace, linking the parent it would have had |
/// | `capture = json\|debug` | `debug` also records non-`Serialize` arguments through `Debug` |
/// | `redact(arg, arg.field.path)` | hide a whole argument or a path inside it |
/// | `crate = path` | where flowtrace is, for crates that re-export it |
///
/// The lifecycle options run the body under flowtrace's lifecycle executor
/// (see `flowtrace::task` for the same without the macro). They go on an
/// `async fn` (or a `fn` returning an `async` block) whose arguments are
/// plain `name: Type` bindings; durations are strings such as `"250ms"`,
/// `"30s"`, `"5m"` or `"1h"`:
///
/// | option | effect |
/// |---|---|
/// | `retries = N` | after an `Err`, run the body again, up to `N` more times: each attempt is a child span `<name> attempt <n>` with `flowtrace.task.attempt`, each retry a `retry` event on the task span with the error; needs a `Result` and `Clone` arguments (cloned for each attempt) |
/// | `backoff = fixed\|exponential` | the wait between attempts: `exponential` (the default) doubles from `retry_delay` up to 30 s, with jitter; `fixed` waits `retry_delay` every time, without jitter |
/// | `retry_delay = "100ms"` | the first wait (default `"100ms"`) |
/// | `max_delay = "10s"` | caps the wait |
/// | `jitter = true\|false` | spreads each wait uniformly over `[delay / 2, delay]` |
/// | `new_trace_after = "10m"` | an attempt that follows a wait at least this long starts a new trace, linked to the failed attempt |
/// | `timeout = "30s"` | a time limit for each attempt: a late attempt ends as `Err(E::from(flowtrace::TaskTimeout))` and sets `flowtrace.task.timeout`; needs a `Result` whose `E: From<flowtrace::TaskTimeout>` |
/// | `cache = key` | a successful output is kept in the process cache (and the run's checkpoint) under the function and `key` (any `Display` expression); a later call with the same key returns it without running the body and sets `flowtrace.task.cached` (`flowtrace.task.replayed` in a resumed run); the output (the `Ok` value of a `Result`) needs `Serialize` and `Deserialize` |
///
/// `retries` and its settings need `retries = N`; `backoff`, `retry_delay`,
/// `max_delay`, `jitter` and `new_trace_after` without it are an error.
///
/// ```
/// use flowtrace::TaskTimeout;
///
/// #[derive(Debug)]
/// enum FetchError {
///     Unavailable,
///     TimedOut(TaskTimeout),
/// }
///
/// impl std::fmt::Display for FetchError {
///     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
///         match self {
///             Self::Unavailable => f.write_str("unavailable"),
///             Self::TimedOut(timeout) => write!(f, "{timeout}"),
///         }
///     }
/// }
///
/// impl From<TaskTimeout> for FetchError {
///     fn from(timeout: TaskTimeout) -> Self {
///         Self::TimedOut(timeout)
///     }
/// }
///
/// #[flowtrace::traced(
///     retries = 3,
///     backoff = exponential,
///     retry_delay = "1ms",
///     max_delay = "5ms",
///     jitter = false,
///     new_trace_after = "10m",
///     timeout = "5s",
/// )]
/// async fn fetch(url: String) -> Result<String, FetchError> {
///     if url.is_empty() {
///         return Err(FetchError::Unavailable);
///     }
///     Ok(format!("body of {url}"))
/// }
///
/// #[flowtrace::traced(cache = text)]
/// async fn embed(text: String) -> Result<Vec<f32>, FetchError> {
///     Ok(vec![text.len() as f32])
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// assert_eq!(fetch("https://example.com".into()).await.unwrap(), "body of https://example.com");
/// assert!(matches!(fetch(String::new()).await, Err(FetchError::Unavailable)));
/// let first = embed("hello".into()).await.unwrap();
/// assert_eq!(embed("hello".into()).await.unwrap(), first);
/// # }
/// ```
///
/// ```
/// use std::collections::HashMap;
///
/// #[derive(serde::Serialize)]
/// struct Login { user: String, pin: u32 }
///
/// #[flowtrace::traced(
///     name = "auth.login",
///     kind = server,
///     skip(headers),
///     redact(login.pin),
///     fields(http.route = "/login", user = %login.user),
///     ret,
/// )]
/// async fn login(login: Login, headers: HashMap<String, String>) -> Result<u64, std::io::Error> {
///     Ok(42)
/// }
///
/// #[flowtrace::traced(parent = &carrier, skip_all)]
/// async fn continue_remote(carrier: HashMap<String, String>) {}
///
/// #[flowtrace::traced(new_trace, follows_from = links.clone())]
/// async fn batch(links: Vec<opentelemetry::trace::SpanContext>) {}
///
/// #[flowtrace::traced(err(Debug))]
/// fn synchronous(n: u32) -> Result<u32, String> {
///     if n == 0 { Err("zero".into()) } else { Ok(n) }
/// }
/// ```
///
/// A misuse — an unknown or conflicting option, `skip` of an argument that
/// does not exist, a declaration without a body — is a compile error that
/// names the option and the accepted forms, pointing at the offending token.
#[proc_macro_attribute]
pub fn traced(args: TokenStream, item: TokenStream) -> TokenStream {
    traced2(args.into(), item.into()).into()
}

/// Parse → validate → expand; on an error, the error plus the item
/// unchanged, so one bad option does not cascade into follow-on errors
/// about the function.
fn traced2(
    args: proc_macro2::TokenStream,
    item: proc_macro2::TokenStream,
) -> proc_macro2::TokenStream {
    let expanded = syn::parse2::<attr::Args>(args).and_then(|args| {
        let function = syn::parse2::<item::MaybeItemFn>(item.clone())?;
        valid::validate(&args, &function)?;
        expand::expand(args, function)
    });
    expanded.unwrap_or_else(|err| {
        let err = err.to_compile_error();
        quote::quote! { #err #item }
    })
}
