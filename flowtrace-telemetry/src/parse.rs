//! Parsers for single environment values, as the OpenTelemetry SDK
//! configuration specification defines them. Each returns the reason a value
//! was rejected (what is accepted), never panics, and knows nothing about
//! which variable it is reading: `config.rs` adds the name and the consequence.
//!
//! Shared rules (spec, "Parsing empty value" and "Enum value"): callers treat
//! empty values as unset before calling these; values are trimmed; enum values
//! are case-insensitive.

use std::time::Duration;

use opentelemetry_sdk::trace::Sampler;

use super::{ExporterKind, Protocol};

/// Why a value was rejected: the accepted values, ready for a message.
pub(crate) type Rejected = String;

/// `true` / `false`, case-insensitive.
pub(crate) fn boolean(value: &str) -> Result<bool, Rejected> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err("accepted values are true, false".into()),
    }
}

/// A positive whole number of milliseconds.
pub(crate) fn millis(value: &str) -> Result<Duration, Rejected> {
    match value.trim().parse::<u64>() {
        Ok(ms) if ms > 0 => Ok(Duration::from_millis(ms)),
        _ => Err("accepted values are positive whole numbers of milliseconds".into()),
    }
}

/// A count from 1 to `max`. The upper bound exists because the batch
/// processor allocates its whole queue up front: an absurd size from the
/// environment must be rejected, not turned into an allocation failure.
pub(crate) fn count(value: &str, max: usize) -> Result<usize, Rejected> {
    match value.trim().parse::<usize>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(format!("accepted values are whole numbers from 1 to {max}")),
    }
}

/// A sampling ratio in `[0, 1]`.
pub(crate) fn ratio(value: &str) -> Result<f64, Rejected> {
    match value.trim().parse::<f64>() {
        Ok(r) if (0.0..=1.0).contains(&r) => Ok(r),
        _ => Err("accepted values are numbers from 0 to 1".into()),
    }
}

/// The members of a comma-separated list, trimmed, empty members skipped.
pub(crate) fn list(value: &str) -> impl Iterator<Item = &str> {
    value.split(',').map(str::trim).filter(|m| !m.is_empty())
}

pub(crate) const PROTOCOLS: &str = "accepted values are grpc, http/protobuf, http/json";

/// `OTEL_EXPORTER_OTLP_PROTOCOL`.
pub(crate) fn protocol(value: &str) -> Result<Protocol, Rejected> {
    match value.trim().to_ascii_lowercase().as_str() {
        "grpc" => Ok(Protocol::Grpc),
        "http/protobuf" => Ok(Protocol::HttpProtobuf),
        "http/json" => Ok(Protocol::HttpJson),
        _ => Err(PROTOCOLS.into()),
    }
}

pub(crate) const SAMPLERS: &str = "accepted values are always_on, always_off, traceidratio, \
    parentbased_always_on, parentbased_always_off, parentbased_traceidratio";

/// `OTEL_TRACES_SAMPLER`; `ratio` is the already-parsed `OTEL_TRACES_SAMPLER_ARG`.
pub(crate) fn sampler(value: &str, ratio: f64) -> Result<Sampler, Rejected> {
    let parent_based = |root: Sampler| Sampler::ParentBased(Box::new(root));
    match value.trim().to_ascii_lowercase().as_str() {
        "always_on" => Ok(Sampler::AlwaysOn),
        "always_off" => Ok(Sampler::AlwaysOff),
        "traceidratio" => Ok(Sampler::TraceIdRatioBased(ratio)),
        "parentbased_always_on" => Ok(parent_based(Sampler::AlwaysOn)),
        "parentbased_always_off" => Ok(parent_based(Sampler::AlwaysOff)),
        "parentbased_traceidratio" => Ok(parent_based(Sampler::TraceIdRatioBased(ratio))),
        _ => Err(SAMPLERS.into()),
    }
}

/// Whether `OTEL_TRACES_SAMPLER_ARG` means anything for this sampler.
pub(crate) fn sampler_takes_ratio(value: &str) -> bool {
    value.trim().to_ascii_lowercase().ends_with("traceidratio")
}

pub(crate) const EXPORTERS: &str = "accepted values are otlp, console, file, none";

/// A value flowtrace rejects: unknown, or named by the specification but not
/// implemented here (so the message can say which).
#[derive(Debug, PartialEq)]
pub(crate) enum Member {
    Unknown,
    Unsupported,
}

/// One member of `OTEL_TRACES_EXPORTER`.
pub(crate) fn exporter(member: &str) -> Result<ExporterKind, Member> {
    match member.to_ascii_lowercase().as_str() {
        "otlp" => Ok(ExporterKind::Otlp),
        "console" => Ok(ExporterKind::Console),
        "file" => Ok(ExporterKind::File),
        "none" => Ok(ExporterKind::None),
        "zipkin" | "jaeger" | "logging" => Err(Member::Unsupported),
        _ => Err(Member::Unknown),
    }
}

pub(crate) const PROPAGATORS: &str = "accepted values are tracecontext, baggage, none";

/// A propagator flowtrace can install.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Propagator {
    TraceContext,
    Baggage,
    None,
}

/// One member of `OTEL_PROPAGATORS`.
pub(crate) fn propagator(member: &str) -> Result<Propagator, Member> {
    match member.to_ascii_lowercase().as_str() {
        "tracecontext" => Ok(Propagator::TraceContext),
        "baggage" => Ok(Propagator::Baggage),
        "none" => Ok(Propagator::None),
        "b3" | "b3multi" | "jaeger" | "xray" | "ottrace" => Err(Member::Unsupported),
        _ => Err(Member::Unknown),
    }
}

pub(crate) const ENDPOINT: &str = "accepted values are http:// or https:// URLs with a host";

/// An OTLP endpoint URL. Checked here (scheme and host) so a typo is reported
/// with the variable's name instead of as an exporter build failure.
/// `OTEL_EXPORTER_OTLP_*COMPRESSION`: `gzip` (`true`) or `none`; `zstd`,
/// which the specification lists too, is not supported.
pub(crate) fn compression(value: &str) -> Result<bool, Rejected> {
    match value.to_ascii_lowercase().as_str() {
        "gzip" => Ok(true),
        "none" => Ok(false),
        _ => Err("accepted values are gzip, none".into()),
    }
}

pub(crate) fn endpoint(value: &str) -> Result<String, Rejected> {
    let value = value.trim();
    let rest = value
        .strip_prefix("http://")
        .or_else(|| value.strip_prefix("https://"));
    let host = rest.map(|r| r.split(['/', '?', '#']).next().unwrap_or(""));
    match host {
        Some(host)
            if !host.is_empty()
                && !host.starts_with(':')
                && !host.chars().any(|c| c.is_whitespace() || c.is_control()) =>
        {
            Ok(value.to_owned())
        }
        _ => Err(ENDPOINT.into()),
    }
}

/// Whether an endpoint URL has a path beyond `/` (decides whether a
/// programmatic endpoint is a base URL or a full traces URL).
pub(crate) fn endpoint_has_path(url: &str) -> bool {
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    match after_scheme.find('/') {
        Some(i) => !after_scheme[i..].trim_end_matches('/').is_empty(),
        None => false,
    }
}

/// `{base}/v1/traces` with exactly one slash, per the OTLP exporter spec.
#[cfg(test)]
pub(crate) fn traces_url(base: &str) -> String {
    signal_url(base, "/v1/traces")
}

/// `{base}{path}` (`/v1/traces`, `/v1/logs`) with exactly one slash, per
/// the OTLP exporter spec.
pub(crate) fn signal_url(base: &str, path: &str) -> String {
    format!("{}{path}", base.trim_end_matches('/'))
}

/// A `key=value,key2=value2` list (W3C Baggage-like, values percent-encoded),
/// as `OTEL_RESOURCE_ATTRIBUTES` and `OTEL_EXPORTER_OTLP_HEADERS` use.
/// Returns the good pairs and, separately, each malformed member verbatim so
/// it can be reported while the rest is kept.
pub(crate) fn key_values(value: &str) -> (Vec<(String, String)>, Vec<String>) {
    let mut pairs = Vec::new();
    let mut bad = Vec::new();
    for member in list(value) {
        let parsed = member.split_once('=').and_then(|(k, v)| {
            let key = percent_decode(k.trim())?;
            let value = percent_decode(v.trim())?;
            (!key.is_empty()).then_some((key, value))
        });
        match parsed {
            Some(pair) => pairs.push(pair),
            None => bad.push(member.to_owned()),
        }
    }
    (pairs, bad)
}

pub(crate) const KEY_VALUES: &str =
    "accepted values are key=value pairs separated by commas, percent-encoded";

/// Decodes `%XX` escapes; `None` for a broken escape or non-UTF-8 result.
pub(crate) fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            // Checked by hand: `from_str_radix` would also accept "+1".
            if !hex.iter().all(u8::is_ascii_hexdigit) {
                return None;
            }
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// An HTTP header / gRPC metadata name: lowercase RFC 9110 token characters.
/// Checked here because tonic panics on an invalid static metadata key.
pub(crate) fn header_name(name: &str) -> Option<String> {
    let name = name.to_ascii_lowercase();
    let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    (!name.is_empty() && name.chars().all(token)).then_some(name)
}

/// A header value: visible ASCII, spaces and tabs (what HTTP/2 and gRPC accept).
pub(crate) fn header_value(value: &str) -> bool {
    value
        .chars()
        .all(|c| c == ' ' || c == '\t' || c.is_ascii_graphic())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_bound_is_affordable() {
        let slot = std::mem::size_of::<opentelemetry_sdk::trace::SpanData>();
        assert!(
            slot * super::super::config::MAX_QUEUE_SIZE <= 256 << 20,
            "the largest accepted queue ({slot} bytes a slot) stays within 256 MiB"
        );
    }

    #[test]
    fn booleans() {
        let cases = [
            ("true", Some(true), "lowercase true"),
            ("TRUE", Some(true), "enum values are case-insensitive"),
            (" false ", Some(false), "values are trimmed"),
            ("1", None, "only true/false are booleans in the spec"),
            ("yes", None, "yes is not a boolean"),
        ];
        for (input, expected, reason) in cases {
            assert_eq!(boolean(input).ok(), expected, "{reason}");
        }
    }

    #[test]
    fn milliseconds() {
        let cases = [
            ("5000", Some(5000), "plain number"),
            (" 250 ", Some(250), "trimmed"),
            ("0", None, "zero would make a timeout useless"),
            ("-1", None, "negative"),
            ("1.5", None, "fractions are not whole milliseconds"),
            ("5s", None, "units are not part of the spec format"),
            (
                "99999999999999999999999",
                None,
                "overflow is rejected, not wrapped",
            ),
        ];
        for (input, expected, reason) in cases {
            assert_eq!(
                millis(input).ok(),
                expected.map(Duration::from_millis),
                "{reason}"
            );
        }
    }

    #[test]
    fn counts() {
        let cases = [
            ("2048", Some(2048), "plain number"),
            ("1", Some(1), "lower bound"),
            ("4096", Some(4096), "upper bound is inclusive"),
            ("4097", None, "above the bound"),
            ("0", None, "zero"),
            ("-5", None, "negative"),
            ("ten", None, "not a number"),
        ];
        for (input, expected, reason) in cases {
            assert_eq!(count(input, 4096).ok(), expected, "{reason}");
        }
    }

    #[test]
    fn ratios() {
        let cases = [
            ("0.25", Some(0.25), "fraction"),
            ("0", Some(0.0), "zero"),
            ("1", Some(1.0), "one"),
            ("1.5", None, "above one"),
            ("-0.1", None, "negative"),
            ("NaN", None, "NaN is not in [0, 1]"),
            ("inf", None, "infinity"),
            ("half", None, "words"),
        ];
        for (input, expected, reason) in cases {
            assert_eq!(ratio(input).ok(), expected, "{reason}");
        }
    }

    #[test]
    fn lists() {
        let cases: [(&str, &[&str], &str); 4] = [
            ("a,b", &["a", "b"], "two members"),
            (" a , b ", &["a", "b"], "members are trimmed"),
            ("a,,b,", &["a", "b"], "empty members are skipped"),
            ("", &[], "empty list"),
        ];
        for (input, expected, reason) in cases {
            assert_eq!(list(input).collect::<Vec<_>>(), expected, "{reason}");
        }
    }

    #[test]
    fn protocols() {
        let cases = [
            ("grpc", Some(Protocol::Grpc), "grpc"),
            (
                "http/protobuf",
                Some(Protocol::HttpProtobuf),
                "http/protobuf",
            ),
            ("HTTP/JSON", Some(Protocol::HttpJson), "case-insensitive"),
            ("http", None, "bare http is not a spec value"),
            ("http/proto", None, "misspelling"),
        ];
        for (input, expected, reason) in cases {
            assert_eq!(protocol(input).ok(), expected, "{reason}");
        }
    }

    #[test]
    fn samplers() {
        let cases = [
            ("always_on", Some("AlwaysOn"), "always_on"),
            ("always_off", Some("AlwaysOff"), "always_off"),
            (
                "traceidratio",
                Some("TraceIdRatioBased(0.5)"),
                "ratio uses the arg",
            ),
            (
                "parentbased_always_on",
                Some("ParentBased(AlwaysOn)"),
                "parent-based always on",
            ),
            (
                "ParentBased_Always_Off",
                Some("ParentBased(AlwaysOff)"),
                "case-insensitive",
            ),
            (
                "parentbased_traceidratio",
                Some("ParentBased(TraceIdRatioBased(0.5))"),
                "parent-based ratio uses the arg",
            ),
            ("sometimes", None, "unknown sampler"),
            ("jaeger_remote", None, "not supported here"),
        ];
        for (input, expected, reason) in cases {
            let got = sampler(input, 0.5).ok().map(|s| format!("{s:?}"));
            assert_eq!(got.as_deref(), expected, "{reason}");
        }
        assert!(
            sampler("sometimes", 1.0).unwrap_err().contains("always_on"),
            "the rejection lists the accepted samplers"
        );
    }

    #[test]
    fn exporters_and_propagators() {
        let cases = [
            ("otlp", Ok(ExporterKind::Otlp), "otlp"),
            ("Console", Ok(ExporterKind::Console), "case-insensitive"),
            ("file", Ok(ExporterKind::File), "file"),
            ("none", Ok(ExporterKind::None), "none"),
            (
                "zipkin",
                Err(Member::Unsupported),
                "spec value not implemented",
            ),
            ("kafka", Err(Member::Unknown), "unknown value"),
        ];
        for (input, expected, reason) in cases {
            assert_eq!(exporter(input), expected, "{reason}");
        }
        let cases = [
            ("tracecontext", Ok(Propagator::TraceContext), "tracecontext"),
            ("BAGGAGE", Ok(Propagator::Baggage), "case-insensitive"),
            ("none", Ok(Propagator::None), "none"),
            ("b3", Err(Member::Unsupported), "b3 is recognised"),
            ("xray", Err(Member::Unsupported), "xray is recognised"),
            ("w3c", Err(Member::Unknown), "unknown value"),
        ];
        for (input, expected, reason) in cases {
            assert_eq!(propagator(input), expected, "{reason}");
        }
    }

    #[test]
    fn endpoints() {
        let cases = [
            ("http://localhost:4318", true, "host and port"),
            (
                "https://collector.example.com/otlp",
                true,
                "https with a path",
            ),
            (" http://c:4317 ", true, "trimmed"),
            ("localhost:4317", false, "no scheme"),
            ("ftp://c", false, "wrong scheme"),
            ("http://", false, "no host"),
            ("http:///v1/traces", false, "empty host before the path"),
            ("http://:4318", false, "port without host"),
            ("http://a b", false, "whitespace in the host"),
        ];
        for (input, ok, reason) in cases {
            assert_eq!(endpoint(input).is_ok(), ok, "{reason}");
        }
    }

    #[test]
    fn endpoint_paths() {
        let cases = [
            ("http://c:4318", false, "no path"),
            ("http://c:4318/", false, "root path"),
            ("http://c:4318/v1/traces", true, "full traces path"),
            ("http://c/prefix/", true, "a prefix path"),
        ];
        for (input, expected, reason) in cases {
            assert_eq!(endpoint_has_path(input), expected, "{reason}");
        }
        let cases = [
            (
                "http://c:4318",
                "http://c:4318/v1/traces",
                "no trailing slash",
            ),
            (
                "http://c:4318/",
                "http://c:4318/v1/traces",
                "trailing slash is not doubled",
            ),
            (
                "http://c/base",
                "http://c/base/v1/traces",
                "base path is kept",
            ),
        ];
        for (input, expected, reason) in cases {
            assert_eq!(traces_url(input), expected, "{reason}");
        }
    }

    #[test]
    fn key_value_lists() {
        type Case = (
            &'static str,
            &'static [(&'static str, &'static str)],
            &'static [&'static str],
            &'static str,
        );
        let cases: [Case; 9] = [
            ("a=1,b=2", &[("a", "1"), ("b", "2")], &[], "two pairs"),
            (
                " a = 1 , b=2 ",
                &[("a", "1"), ("b", "2")],
                &[],
                "keys and values are trimmed",
            ),
            (
                "k=a%20b%2Cc",
                &[("k", "a b,c")],
                &[],
                "values are percent-decoded",
            ),
            ("k=v=w", &[("k", "v=w")], &[], "only the first = splits"),
            ("k=", &[("k", "")], &[], "empty value is allowed"),
            (
                "novalue,a=1",
                &[("a", "1")],
                &["novalue"],
                "a member without = is reported, the rest kept",
            ),
            ("=v,a=1", &[("a", "1")], &["=v"], "empty key is reported"),
            (
                "k=%zz,a=1",
                &[("a", "1")],
                &["k=%zz"],
                "a broken escape is reported",
            ),
            (
                "k=%ff",
                &[],
                &["k=%ff"],
                "non-UTF-8 after decoding is reported",
            ),
        ];
        for (input, pairs, bad, reason) in cases {
            let (got, got_bad) = key_values(input);
            let want: Vec<(String, String)> = pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            assert_eq!(got, want, "{reason}");
            assert_eq!(got_bad, bad, "{reason}");
        }
    }

    #[test]
    fn percent_decoding() {
        let cases = [
            ("plain", Some("plain"), "nothing to decode"),
            ("%41%62", Some("Ab"), "hex either case"),
            ("%C3%A9", Some("é"), "multi-byte UTF-8"),
            ("100%", None, "truncated escape"),
            ("%4", None, "one hex digit"),
            ("%é1", None, "a non-ASCII byte after % is not hex"),
            ("%+1", None, "a sign is not a hex digit"),
        ];
        for (input, expected, reason) in cases {
            assert_eq!(percent_decode(input).as_deref(), expected, "{reason}");
        }
    }

    #[test]
    fn header_names_and_values() {
        let cases = [
            ("api-key", Some("api-key"), "token"),
            ("X-Token", Some("x-token"), "lowercased for gRPC metadata"),
            ("bad key", None, "space"),
            ("bad:key", None, "colon"),
            ("", None, "empty"),
            ("ключ", None, "non-ASCII"),
        ];
        for (input, expected, reason) in cases {
            assert_eq!(header_name(input).as_deref(), expected, "{reason}");
        }
        let cases = [
            ("Bearer abc", true, "space is allowed"),
            ("a\tb", true, "tab is allowed"),
            ("a\nb", false, "newline would split the header"),
            ("é", false, "non-ASCII"),
        ];
        for (input, expected, reason) in cases {
            assert_eq!(header_value(input), expected, "{reason}");
        }
    }
}
