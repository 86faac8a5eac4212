//! The OTLP specification's retry rules and the backoff between attempts.
//!
//! An export attempt ends in one [`Outcome`]. The batch processor keeps a
//! batch whose attempt ended in [`Outcome::Retry`] at the head of its queue
//! and tries again after [`Backoff::next_delay`]; it drops (and counts) a
//! batch that [`Outcome::Failed`], and never retries a partial success.
//!
//! Retryable, per the specification ("OTLP/gRPC Failures", "OTLP/HTTP
//! Failures"): gRPC `CANCELLED`, `DEADLINE_EXCEEDED`, `ABORTED`,
//! `OUT_OF_RANGE`, `UNAVAILABLE`, `DATA_LOSS`, and `RESOURCE_EXHAUSTED` only
//! when the server sent `RetryInfo`; HTTP 429, 502, 503 and 504; and any
//! failure that produced no response at all (connection refused or reset,
//! timeout). Everything else is final.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

/// The first pause after a failed attempt.
pub(crate) const INITIAL_BACKOFF: Duration = Duration::from_millis(200);
/// The longest pause the backoff grows to: short enough that spans flow
/// again within seconds of a collector coming back.
pub(crate) const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// A server hint (`Retry-After`, `RetryInfo`) longer than this is cut to it,
/// so a misbehaving collector cannot park the exporter for hours while the
/// queue overflows.
pub(crate) const MAX_SERVER_DELAY: Duration = Duration::from_secs(60);

/// How one export attempt ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Accepted. `rejected` spans were refused by the collector (an OTLP
    /// partial success): those are counted as dropped and never retried.
    Sent { rejected: u64 },
    /// Worth another attempt; `after` is the server's hint, if it sent one.
    Retry {
        after: Option<Duration>,
        reason: String,
    },
    /// Final: the batch is dropped.
    Failed { reason: String },
}

impl Outcome {
    /// A failure without any response (connect refused, reset, timeout):
    /// the collector may come back, so it is retryable.
    pub(crate) fn unreachable(reason: impl Into<String>) -> Self {
        Outcome::Retry {
            after: None,
            reason: reason.into(),
        }
    }
}

/// The verdict for a gRPC status other than `OK`; `retry_info` is the
/// `google.rpc.RetryInfo` delay from the status details, if any. `detail`
/// is a message safe to show (never one the server sent).
pub(crate) fn grpc(
    code: tonic::Code,
    retry_info: Option<Duration>,
    detail: Option<&str>,
) -> Outcome {
    use tonic::Code;
    let reason = match detail {
        Some(detail) => format!("gRPC status {code:?}: {detail}"),
        None => format!("gRPC status {code:?}"),
    };
    match code {
        Code::Cancelled
        | Code::DeadlineExceeded
        | Code::Aborted
        | Code::OutOfRange
        | Code::Unavailable
        | Code::DataLoss => Outcome::Retry {
            after: retry_info,
            reason,
        },
        // The server says when it can take more; without that it will not.
        Code::ResourceExhausted if retry_info.is_some() => Outcome::Retry {
            after: retry_info,
            reason,
        },
        _ => Outcome::Failed { reason },
    }
}

/// The verdict for an HTTP response status outside 2xx, with its
/// `Retry-After` header.
pub(crate) fn http(status: u16, retry_after: Option<&str>, now: SystemTime) -> Outcome {
    let reason = format!("HTTP status {status}");
    match status {
        429 | 502 | 503 | 504 => Outcome::Retry {
            after: retry_after.and_then(|v| parse_retry_after(v, now)),
            reason,
        },
        _ => Outcome::Failed { reason },
    }
}

/// `Retry-After`: delay-seconds or an HTTP-date (RFC 9110 §10.2.3). A date
/// in the past means "now"; anything unparsable is no hint.
pub(crate) fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Exponential backoff with jitter: each pause doubles up to
/// [`MAX_BACKOFF`] and is drawn uniformly from its upper half, so many
/// processes that lost the same collector do not retry in lockstep. A server
/// hint is a floor, capped at [`MAX_SERVER_DELAY`].
#[derive(Debug)]
pub(crate) struct Backoff {
    current: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            current: INITIAL_BACKOFF,
        }
    }
}

impl Backoff {
    /// After a success: the next failure starts from the initial pause.
    pub(crate) fn reset(&mut self) {
        self.current = INITIAL_BACKOFF;
    }

    /// The pause before the next attempt.
    pub(crate) fn next_delay(&mut self, hint: Option<Duration>) -> Duration {
        let ceiling = self.current;
        self.current = (self.current * 2).min(MAX_BACKOFF);
        let half = ceiling / 2;
        let jittered = half + half.mul_f64(unit_random());
        match hint {
            Some(hint) => jittered.max(hint.min(MAX_SERVER_DELAY)),
            None => jittered,
        }
    }
}

/// A number in `[0, 1)`, different on every call. `RandomState` is seeded
/// from the OS per process: enough to spread retries, no dependency needed.
fn unit_random() -> f64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let bits = RandomState::new().hash_one(n) >> 11; // 53 bits
    bits as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::Code;

    #[test]
    fn grpc_codes_follow_the_specification() {
        let hint = Some(Duration::from_secs(2));
        let cases = [
            (Code::Cancelled, None, true, "CANCELLED is retryable"),
            (Code::DeadlineExceeded, None, true, "DEADLINE_EXCEEDED"),
            (Code::Aborted, None, true, "ABORTED"),
            (Code::OutOfRange, None, true, "OUT_OF_RANGE"),
            (Code::Unavailable, None, true, "UNAVAILABLE"),
            (Code::DataLoss, None, true, "DATA_LOSS"),
            (
                Code::ResourceExhausted,
                None,
                false,
                "RESOURCE_EXHAUSTED without RetryInfo is final",
            ),
            (
                Code::ResourceExhausted,
                hint,
                true,
                "RESOURCE_EXHAUSTED with RetryInfo is retryable",
            ),
            (Code::InvalidArgument, None, false, "INVALID_ARGUMENT"),
            (Code::Unauthenticated, None, false, "UNAUTHENTICATED"),
            (Code::PermissionDenied, None, false, "PERMISSION_DENIED"),
            (Code::Unimplemented, None, false, "UNIMPLEMENTED"),
            (Code::Internal, None, false, "INTERNAL"),
            (Code::Unknown, None, false, "UNKNOWN"),
        ];
        for (code, info, retry, reason) in cases {
            let outcome = grpc(code, info, None);
            assert_eq!(
                matches!(outcome, Outcome::Retry { .. }),
                retry,
                "{reason}: {outcome:?}"
            );
        }
        assert_eq!(
            grpc(Code::Unavailable, hint, Some("m")),
            Outcome::Retry {
                after: hint,
                reason: "gRPC status Unavailable: m".into()
            },
            "RetryInfo is passed on as the hint"
        );
    }

    #[test]
    fn http_statuses_follow_the_specification() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let cases = [
            (429, true, "too many requests"),
            (502, true, "bad gateway"),
            (503, true, "unavailable"),
            (504, true, "gateway timeout"),
            (400, false, "bad request"),
            (401, false, "unauthorized"),
            (404, false, "wrong path"),
            (413, false, "payload too large"),
            (500, false, "internal server error is not in the list"),
            (501, false, "not implemented"),
        ];
        for (status, retry, reason) in cases {
            let outcome = http(status, None, now);
            assert_eq!(
                matches!(outcome, Outcome::Retry { .. }),
                retry,
                "{reason}: {outcome:?}"
            );
        }
        assert_eq!(
            http(503, Some("7"), now),
            Outcome::Retry {
                after: Some(Duration::from_secs(7)),
                reason: "HTTP status 503".into()
            },
            "Retry-After is the hint"
        );
    }

    #[test]
    fn retry_after_values() {
        let now = httpdate::parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT").unwrap();
        let cases = [
            ("120", Some(120), "delay-seconds"),
            (" 3 ", Some(3), "trimmed"),
            ("Sun, 06 Nov 1994 08:49:47 GMT", Some(10), "an HTTP-date"),
            (
                "Sun, 06 Nov 1994 08:00:00 GMT",
                Some(0),
                "a date in the past",
            ),
            ("-5", None, "negative"),
            ("soon", None, "garbage"),
            ("1.5", None, "fractions are not delay-seconds"),
        ];
        for (value, expected, reason) in cases {
            assert_eq!(
                parse_retry_after(value, now),
                expected.map(Duration::from_secs),
                "{reason}"
            );
        }
    }

    #[test]
    fn backoff_grows_with_jitter_up_to_the_cap() {
        let mut backoff = Backoff::default();
        let mut ceiling = INITIAL_BACKOFF;
        for attempt in 0..12 {
            let delay = backoff.next_delay(None);
            assert!(
                delay >= ceiling / 2 && delay <= ceiling,
                "attempt {attempt}: {delay:?} within [{:?}, {ceiling:?}]",
                ceiling / 2
            );
            ceiling = (ceiling * 2).min(MAX_BACKOFF);
        }
        backoff.reset();
        assert!(
            backoff.next_delay(None) <= INITIAL_BACKOFF,
            "a reset starts over"
        );
        let delays: std::collections::HashSet<Duration> = (0..20)
            .map(|_| Backoff::default().next_delay(None))
            .collect();
        assert!(delays.len() > 1, "jitter varies the pause: {delays:?}");
    }

    #[test]
    fn server_hints_are_a_capped_floor() {
        let mut backoff = Backoff::default();
        assert_eq!(
            backoff.next_delay(Some(Duration::from_secs(3))),
            Duration::from_secs(3),
            "a hint longer than the backoff is honoured"
        );
        assert!(
            backoff.next_delay(Some(Duration::ZERO)) > Duration::ZERO,
            "a zero hint does not bypass the backoff"
        );
        assert_eq!(
            backoff.next_delay(Some(Duration::from_secs(86_400))),
            MAX_SERVER_DELAY,
            "a day-long hint is capped"
        );
    }
}
