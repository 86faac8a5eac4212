//! Public endpoints: which requests [`ServerLayer`](super::ServerLayer)
//! does not trust, and what it does with their carriers.
//!
//! A request on a public endpoint starts a new trace. The caller's span
//! context, when it sent a valid one, becomes a link of the server span
//! (attribute `flowtrace.link.reason = "public_endpoint"`), so the two
//! traces can still be correlated; the caller's `sampled` flag and
//! `tracestate` decide nothing (the local sampler sees a root span). The
//! caller's baggage is dropped except for the keys of the layer's
//! [`public_baggage`](super::ServerLayer::public_baggage) policy. This is
//! what the OpenTelemetry API describes for links ("a new trace with its
//! own sampling decision, linked to the incoming one") and what Go's
//! `otelhttp` offers as `WithPublicEndpoint` / `WithPublicEndpointFn`.

use std::fmt;
use std::sync::{Arc, OnceLock};

use http::{Extensions, HeaderMap, Method, Request, Uri, Version};
use opentelemetry::Context;
use opentelemetry::baggage::{Baggage as Entries, BaggageExt as _, KeyValueMetadata};
use opentelemetry::propagation::{Extractor, TextMapPropagator as _};

use crate::propagation::{Baggage, BaggagePolicy};

/// The environment variable that sets [`ServerLayer::new`](super::ServerLayer::new)'s
/// default: `true` treats every request as public, `false` (the default)
/// trusts every caller.
pub const PUBLIC_ENDPOINT_ENV: &str = "FLOWTRACE_HTTP_PUBLIC_ENDPOINT";

/// The environment variable that sets the baggage keys a public request
/// keeps, for [`ServerLayer::new`](super::ServerLayer::new): a comma list
/// of baggage keys (default: none is kept).
pub const PUBLIC_BAGGAGE_ENV: &str = "FLOWTRACE_HTTP_PUBLIC_BAGGAGE";

/// The [`LINK_REASON`](crate::attributes::LINK_REASON) of a public endpoint's link.
pub const LINK_REASON_PUBLIC_ENDPOINT: &str = "public_endpoint";

/// What a public-endpoint predicate sees of a request: everything but the
/// body.
///
/// ```
/// let layer = flowtrace::http::ServerLayer::new().public_endpoint_fn(|request| {
///     // Public unless the trusted proxy in front marked it internal.
///     !request.headers().contains_key("x-internal-caller")
/// });
/// # drop(layer);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct RequestHead<'a> {
    method: &'a Method,
    uri: &'a Uri,
    version: Version,
    headers: &'a HeaderMap,
    extensions: &'a Extensions,
}

impl<'a> RequestHead<'a> {
    /// The head of `request`.
    ///
    /// ```
    /// let request = http::Request::get("https://api.example.com/v1/users?page=2").body(()).unwrap();
    /// let head = flowtrace::http::RequestHead::of(&request);
    /// assert_eq!(head.path(), "/v1/users");
    /// ```
    pub fn of<B>(request: &'a Request<B>) -> Self {
        Self {
            method: request.method(),
            uri: request.uri(),
            version: request.version(),
            headers: request.headers(),
            extensions: request.extensions(),
        }
    }

    /// The method.
    ///
    /// ```
    /// let request = http::Request::post("/ingest").body(()).unwrap();
    /// assert_eq!(flowtrace::http::RequestHead::of(&request).method(), http::Method::POST);
    /// ```
    pub fn method(&self) -> &'a Method {
        self.method
    }

    /// The request target.
    ///
    /// ```
    /// let request = http::Request::get("/search?q=rust").body(()).unwrap();
    /// assert_eq!(flowtrace::http::RequestHead::of(&request).uri().query(), Some("q=rust"));
    /// ```
    pub fn uri(&self) -> &'a Uri {
        self.uri
    }

    /// The path of the request target.
    ///
    /// ```
    /// let request = http::Request::get("/health?verbose=1").body(()).unwrap();
    /// assert_eq!(flowtrace::http::RequestHead::of(&request).path(), "/health");
    /// ```
    pub fn path(&self) -> &'a str {
        self.uri.path()
    }

    /// The protocol version.
    ///
    /// ```
    /// let request = http::Request::get("/").version(http::Version::HTTP_2).body(()).unwrap();
    /// assert_eq!(flowtrace::http::RequestHead::of(&request).version(), http::Version::HTTP_2);
    /// ```
    pub fn version(&self) -> Version {
        self.version
    }

    /// The headers.
    ///
    /// ```
    /// let request = http::Request::get("/").header("x-tenant", "acme").body(()).unwrap();
    /// assert_eq!(flowtrace::http::RequestHead::of(&request).headers()["x-tenant"], "acme");
    /// ```
    pub fn headers(&self) -> &'a HeaderMap {
        self.headers
    }

    /// The extensions (axum's `ConnectInfo` for the peer address, for
    /// example).
    ///
    /// ```
    /// let mut request = http::Request::get("/").body(()).unwrap();
    /// request.extensions_mut().insert(42_u32);
    /// assert_eq!(flowtrace::http::RequestHead::of(&request).extensions().get::<u32>(), Some(&42));
    /// ```
    pub fn extensions(&self) -> &'a Extensions {
        self.extensions
    }
}

/// `cx` with the entries of the request's `baggage` that `policy` keeps
/// merged over its own (those of this process, which are trusted).
pub(crate) fn extract_baggage(
    cx: &Context,
    extractor: &dyn Extractor,
    policy: &BaggagePolicy,
) -> Context {
    let incoming = Baggage::new().extract_with_context(&Context::new(), extractor);
    let kept = policy.filter(incoming.baggage());
    if kept.is_empty() {
        return cx.clone();
    }
    let entries: Entries = cx
        .baggage()
        .iter()
        .chain(kept.iter())
        .map(|(k, (v, m))| KeyValueMetadata::new(k.clone(), v.clone(), m.clone()))
        .collect();
    cx.with_baggage(entries)
}

type Predicate = dyn Fn(&RequestHead<'_>) -> bool + Send + Sync;

/// Which requests are public.
#[derive(Clone)]
pub(crate) enum Public {
    Never,
    Always,
    When(Arc<Predicate>),
}

impl Public {
    pub(crate) fn when(
        predicate: impl Fn(&RequestHead<'_>) -> bool + Send + Sync + 'static,
    ) -> Self {
        Self::When(Arc::new(predicate))
    }

    pub(crate) fn is_public<B>(&self, request: &Request<B>) -> bool {
        match self {
            Self::Never => false,
            Self::Always => true,
            Self::When(predicate) => predicate(&RequestHead::of(request)),
        }
    }

    /// The default from [`PUBLIC_ENDPOINT_ENV`], read once per process; a
    /// bad value is reported once.
    pub(crate) fn from_env() -> Self {
        static DEFAULT: OnceLock<bool> = OnceLock::new();
        let public = *DEFAULT.get_or_init(|| {
            let value = std::env::var(PUBLIC_ENDPOINT_ENV).ok();
            let (public, warning) = parse_env(value.as_deref());
            if let Some(warning) = warning {
                tracing::warn!(target: "flowtrace", "{warning}");
            }
            public
        });
        if public { Self::Always } else { Self::Never }
    }
}

/// The default public baggage policy from [`PUBLIC_BAGGAGE_ENV`], read once
/// per process; a bad key is reported once and left out.
pub(crate) fn baggage_from_env() -> BaggagePolicy {
    static DEFAULT: OnceLock<BaggagePolicy> = OnceLock::new();
    DEFAULT
        .get_or_init(|| {
            let value = std::env::var(PUBLIC_BAGGAGE_ENV).ok();
            let (policy, warning) = parse_baggage_env(value.as_deref());
            if let Some(warning) = warning {
                tracing::warn!(target: "flowtrace", "{warning}");
            }
            policy
        })
        .clone()
}

/// [`PUBLIC_BAGGAGE_ENV`]'s value: keys separated by `,`, spaces around them
/// ignored; a member that is not a baggage key (an RFC 7230 token) is left
/// out with a warning naming the variable and what is accepted.
pub(crate) fn parse_baggage_env(value: Option<&str>) -> (BaggagePolicy, Option<String>) {
    let Some(value) = value else {
        return (BaggagePolicy::drop_all(), None);
    };
    let mut keys = Vec::new();
    let mut bad = Vec::new();
    for member in value.split(',').map(str::trim).filter(|m| !m.is_empty()) {
        if crate::propagation::is_token(member) {
            keys.push(member);
        } else {
            bad.push(member);
        }
    }
    let warning = (!bad.is_empty()).then(|| {
        format!(
            "{PUBLIC_BAGGAGE_ENV}={value:?} is not valid: {bad:?} not baggage keys; accepted values \
             are baggage keys (RFC 7230 tokens) separated by commas; those are left out"
        )
    });
    (BaggagePolicy::allow(keys), warning)
}

impl fmt::Debug for Public {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Never => f.write_str("Never"),
            Self::Always => f.write_str("Always"),
            Self::When(_) => f.write_str("When(..)"),
        }
    }
}

/// [`PUBLIC_ENDPOINT_ENV`]'s value as the OpenTelemetry specification reads
/// a boolean: `true` (any case) is true; unset, empty and `false` are
/// false; anything else is false with a warning naming the variable and
/// the accepted values.
pub(crate) fn parse_env(value: Option<&str>) -> (bool, Option<String>) {
    let Some(value) = value else {
        return (false, None);
    };
    match value.trim().to_ascii_lowercase().as_str() {
        "true" => (true, None),
        "false" | "" => (false, None),
        _ => (
            false,
            Some(format!(
                "{PUBLIC_ENDPOINT_ENV}={value:?} is not valid: accepted values are true, false; \
                 the default false is used (callers are trusted)"
            )),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_environment_default_reads_like_an_otel_boolean() {
        for (value, public, warns, reason) in [
            (None, false, false, "unset"),
            (Some(""), false, false, "empty"),
            (Some("true"), true, false, "true"),
            (Some(" TRUE "), true, false, "case-insensitive, trimmed"),
            (Some("false"), false, false, "false"),
            (Some("1"), false, true, "1 is not an OTel boolean"),
            (Some("yes"), false, true, "yes is not an OTel boolean"),
        ] {
            let (got, warning) = parse_env(value);
            assert_eq!(got, public, "{reason}");
            assert_eq!(warning.is_some(), warns, "{reason}: {warning:?}");
            if let Some(warning) = warning {
                assert!(
                    warning.starts_with(&format!("{PUBLIC_ENDPOINT_ENV}=")),
                    "names the variable: {warning}"
                );
                assert!(
                    warning.contains("accepted values are true, false"),
                    "{warning}"
                );
            }
        }
    }

    #[test]
    fn the_environment_names_the_public_baggage_keys() {
        for (value, allowed, warns, reason) in [
            (None, &[][..], false, "unset: none kept"),
            (Some(""), &[][..], false, "empty: none kept"),
            (Some("tenant"), &["tenant"][..], false, "one key"),
            (
                Some(" tenant , region,"),
                &["region", "tenant"][..],
                false,
                "spaces and an empty member are ignored",
            ),
            (
                Some("tenant,bad key,x=y"),
                &["tenant"][..],
                true,
                "a member that is not a token is left out",
            ),
        ] {
            let (policy, warning) = parse_baggage_env(value);
            let keys: Vec<&str> = policy
                .allowed_keys()
                .unwrap_or_default()
                .iter()
                .map(String::as_str)
                .collect();
            assert_eq!(keys, allowed, "{reason}");
            assert_eq!(warning.is_some(), warns, "{reason}: {warning:?}");
            if let Some(warning) = warning {
                assert!(
                    warning.starts_with(&format!("{PUBLIC_BAGGAGE_ENV}=")),
                    "{warning}"
                );
                assert!(
                    warning.contains("accepted values are baggage keys"),
                    "{warning}"
                );
            }
        }
    }

    #[test]
    fn a_predicate_sees_the_request_head() {
        let public = Public::when(|r| r.path().starts_with("/api/") && r.method() == Method::GET);
        let request = |method: &str, path: &str| {
            Request::builder()
                .method(method)
                .uri(path)
                .body(())
                .unwrap()
        };
        assert!(public.is_public(&request("GET", "/api/x")));
        assert!(!public.is_public(&request("POST", "/api/x")));
        assert!(!public.is_public(&request("GET", "/internal")));
        assert!(Public::Always.is_public(&request("GET", "/")));
        assert!(!Public::Never.is_public(&request("GET", "/")));
    }
}
