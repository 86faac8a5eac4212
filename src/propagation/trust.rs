//! Which baggage crosses a trust boundary: a [`BaggagePolicy`] keeps all of
//! it, none of it, or the entries whose keys a service names.
//!
//! Baggage is read by every task (`ctx().baggage()`) and passed on to every
//! downstream request, so entries from a caller the service does not trust
//! should not get in. Where flowtrace reads a carrier from outside the
//! process, the policy applies like this:
//!
//! | carrier | trusted by default | the policy |
//! |---|---|---|
//! | Temporal headers (intra-cluster) | yes | — |
//! | HTTP `ServerLayer`, not public | yes | — |
//! | HTTP `ServerLayer`, public endpoint | no: baggage dropped | `ServerLayer::public_baggage` |
//! | `TRACEPARENT` / `BAGGAGE` environment | yes (whoever starts the process sets its environment) | [`set_env_baggage_policy`] |
//! | a `custom_context` built from a request | as given | [`BaggagePolicy::filter_pairs`] |

use std::fmt;
use std::sync::{Arc, RwLock};

use opentelemetry::Context;
use opentelemetry::baggage::{Baggage as Entries, BaggageExt as _, KeyValueMetadata};
use opentelemetry::propagation::{Extractor as _, Injector as _};

use super::{BAGGAGE, EnvCarrier, format_baggage, parse_baggage};

/// Which entries of an incoming `baggage` are kept.
///
/// ```
/// use flowtrace::propagation::BaggagePolicy;
///
/// let policy = BaggagePolicy::allow(["tenant"]);
/// assert_eq!(policy.filter_header("tenant=acme,user=mallory"), "tenant=acme");
/// assert_eq!(BaggagePolicy::drop_all().filter_header("tenant=acme"), "");
/// assert_eq!(BaggagePolicy::keep_all().filter_header("user=alice"), "user=alice");
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct BaggagePolicy {
    allow: Allow,
}

#[derive(Clone, Default, PartialEq, Eq)]
enum Allow {
    #[default]
    All,
    /// Sorted, no duplicates; empty keeps nothing.
    Keys(Arc<[String]>),
}

impl BaggagePolicy {
    /// Keeps every entry: the carrier is trusted.
    ///
    /// ```
    /// let policy = flowtrace::propagation::BaggagePolicy::keep_all();
    /// assert!(policy.keeps_all() && policy.allows("anything"));
    /// ```
    pub fn keep_all() -> Self {
        Self { allow: Allow::All }
    }

    /// Keeps no entry.
    ///
    /// ```
    /// let policy = flowtrace::propagation::BaggagePolicy::drop_all();
    /// assert!(!policy.allows("tenant"));
    /// assert_eq!(policy.allowed_keys(), Some(&[][..]));
    /// ```
    pub fn drop_all() -> Self {
        Self::allow(std::iter::empty::<String>())
    }

    /// Keeps only the entries under `keys` (exact, case-sensitive: baggage
    /// keys are case-sensitive tokens).
    ///
    /// ```
    /// let policy = flowtrace::propagation::BaggagePolicy::allow(["tenant", "region"]);
    /// assert!(policy.allows("tenant"));
    /// assert!(!policy.allows("Tenant"), "keys are case-sensitive");
    /// ```
    pub fn allow<I, K>(keys: I) -> Self
    where
        I: IntoIterator<Item = K>,
        K: Into<String>,
    {
        let mut keys: Vec<String> = keys.into_iter().map(Into::into).collect();
        keys.sort_unstable();
        keys.dedup();
        Self {
            allow: Allow::Keys(keys.into()),
        }
    }

    /// Whether an entry under `key` is kept.
    ///
    /// ```
    /// let policy = flowtrace::propagation::BaggagePolicy::allow(["tenant"]);
    /// assert!(policy.allows("tenant") && !policy.allows("user"));
    /// ```
    pub fn allows(&self, key: &str) -> bool {
        match &self.allow {
            Allow::All => true,
            Allow::Keys(keys) => keys.binary_search_by(|k| k.as_str().cmp(key)).is_ok(),
        }
    }

    /// Whether every entry is kept.
    ///
    /// ```
    /// use flowtrace::propagation::BaggagePolicy;
    /// assert!(BaggagePolicy::keep_all().keeps_all());
    /// assert!(!BaggagePolicy::allow(["tenant"]).keeps_all());
    /// ```
    pub fn keeps_all(&self) -> bool {
        matches!(self.allow, Allow::All)
    }

    /// The allowed keys, or `None` when every key is allowed.
    ///
    /// ```
    /// use flowtrace::propagation::BaggagePolicy;
    /// let policy = BaggagePolicy::allow(["tenant", "region", "tenant"]);
    /// assert_eq!(policy.allowed_keys(), Some(&["region".to_owned(), "tenant".to_owned()][..]));
    /// assert_eq!(BaggagePolicy::keep_all().allowed_keys(), None);
    /// ```
    pub fn allowed_keys(&self) -> Option<&[String]> {
        match &self.allow {
            Allow::All => None,
            Allow::Keys(keys) => Some(keys),
        }
    }

    /// The entries of `baggage` this policy keeps.
    ///
    /// ```
    /// use flowtrace::propagation::{BaggagePolicy, parse_baggage};
    ///
    /// let parsed = parse_baggage(&["tenant=acme,user=mallory"]);
    /// let kept = BaggagePolicy::allow(["tenant"]).filter(&parsed.baggage);
    /// assert_eq!(kept.len(), 1);
    /// assert_eq!(kept.get("tenant").map(|v| v.as_str()), Some("acme"));
    /// ```
    pub fn filter(&self, baggage: &Entries) -> Entries {
        baggage
            .iter()
            .filter(|(k, _)| self.allows(k.as_str()))
            .map(|(k, (v, m))| KeyValueMetadata::new(k.clone(), v.clone(), m.clone()))
            .collect()
    }

    /// `cx` with only the baggage entries this policy keeps.
    ///
    /// ```
    /// use flowtrace::propagation::BaggagePolicy;
    /// use opentelemetry::baggage::BaggageExt as _;
    /// use opentelemetry::{Context, KeyValue};
    ///
    /// let cx = Context::new().with_baggage([KeyValue::new("tenant", "acme"), KeyValue::new("user", "x")]);
    /// let cx = BaggagePolicy::allow(["tenant"]).filter_context(&cx);
    /// assert_eq!(cx.baggage().len(), 1);
    /// ```
    pub fn filter_context(&self, cx: &Context) -> Context {
        if self.keeps_all() {
            return cx.clone();
        }
        cx.with_baggage(self.filter(cx.baggage()))
    }

    /// A `baggage` header value with only the members this policy keeps
    /// (parsed and rendered strictly, as the propagator does); empty when
    /// none is kept.
    ///
    /// ```
    /// use flowtrace::propagation::BaggagePolicy;
    /// let policy = BaggagePolicy::allow(["tenant"]);
    /// assert_eq!(policy.filter_header("user=alice,tenant=acme;prop=1"), "tenant=acme;prop=1");
    /// assert_eq!(policy.filter_header("user=alice"), "");
    /// ```
    pub fn filter_header(&self, header: &str) -> String {
        format_baggage(&self.filter(&parse_baggage(&[header]).baggage))
    }

    /// Pairs for a `custom_context` map that came from outside (a request
    /// body, a queue message): the `baggage` entry (any letter case)
    /// filtered, dropped when nothing is left; other pairs unchanged.
    ///
    /// ```
    /// use flowtrace::propagation::BaggagePolicy;
    ///
    /// let from_request = [("baggage", "tenant=acme,role=admin"), ("team", "search")];
    /// let pairs = BaggagePolicy::allow(["tenant"]).filter_pairs(from_request);
    /// assert_eq!(
    ///     pairs,
    ///     [("baggage".to_owned(), "tenant=acme".to_owned()), ("team".to_owned(), "search".to_owned())]
    /// );
    /// ```
    pub fn filter_pairs<I, K, V>(&self, pairs: I) -> Vec<(String, String)>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        pairs
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .filter_map(|(k, v)| {
                if self.keeps_all() || !k.eq_ignore_ascii_case(BAGGAGE) {
                    return Some((k, v));
                }
                let kept = self.filter_header(&v);
                (!kept.is_empty()).then_some((k, kept))
            })
            .collect()
    }

    /// `carrier` with its `BAGGAGE` filtered (removed when nothing is left).
    ///
    /// ```
    /// use flowtrace::propagation::{BaggagePolicy, EnvCarrier};
    /// use opentelemetry::propagation::Injector as _;
    ///
    /// let mut carrier = EnvCarrier::default();
    /// carrier.set("baggage", "user=alice".to_owned());
    /// let carrier = BaggagePolicy::allow(["tenant"]).filter_env(carrier);
    /// assert!(carrier.vars().is_empty(), "BAGGAGE removed: nothing was kept");
    /// ```
    pub fn filter_env(&self, mut carrier: EnvCarrier) -> EnvCarrier {
        if self.keeps_all() {
            return carrier;
        }
        if let Some(header) = carrier.get(BAGGAGE).map(str::to_owned) {
            let kept = self.filter_header(&header);
            carrier.remove(BAGGAGE);
            if !kept.is_empty() {
                carrier.set(BAGGAGE, kept);
            }
        }
        carrier
    }
}

impl fmt::Debug for BaggagePolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.allow {
            Allow::All => f.write_str("BaggagePolicy::KeepAll"),
            Allow::Keys(keys) if keys.is_empty() => f.write_str("BaggagePolicy::DropAll"),
            Allow::Keys(keys) => f.debug_tuple("BaggagePolicy::Allow").field(keys).finish(),
        }
    }
}

static ENV_POLICY: RwLock<Option<BaggagePolicy>> = RwLock::new(None);

/// Sets the policy for the `BAGGAGE` this process was started with, as
/// runs and [`from_env`](super::from_env) read it
/// ([`EnvCarrier::from_process`]). The default keeps all of it: whoever
/// starts a process sets its environment. `TRACEPARENT` is not affected.
///
/// ```
/// use flowtrace::propagation::{BaggagePolicy, env_baggage_policy, set_env_baggage_policy};
///
/// set_env_baggage_policy(BaggagePolicy::allow(["tenant"]));
/// assert!(!env_baggage_policy().allows("user"));
/// # set_env_baggage_policy(BaggagePolicy::keep_all());
/// ```
pub fn set_env_baggage_policy(policy: BaggagePolicy) {
    *ENV_POLICY.write().unwrap_or_else(|e| e.into_inner()) = Some(policy);
}

/// The policy [`set_env_baggage_policy`] set (keep all by default).
///
/// ```
/// assert!(flowtrace::propagation::env_baggage_policy().keeps_all(), "the default");
/// ```
pub fn env_baggage_policy() -> BaggagePolicy {
    ENV_POLICY
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_filtered_by_key() {
        let header = "tenant=acme,user=mallory;p=1,Tenant=other";
        for (policy, expected, reason) in [
            (
                BaggagePolicy::keep_all(),
                "Tenant=other,tenant=acme,user=mallory;p=1",
                "keep all",
            ),
            (BaggagePolicy::drop_all(), "", "drop all"),
            (
                BaggagePolicy::allow(["tenant"]),
                "tenant=acme",
                "keys are case-sensitive",
            ),
            (
                BaggagePolicy::allow(["user", "tenant", "user"]),
                "tenant=acme,user=mallory;p=1",
                "properties travel with their entry",
            ),
            (
                BaggagePolicy::allow(["absent"]),
                "",
                "nothing allowed is present",
            ),
        ] {
            assert_eq!(policy.filter_header(header), expected, "{reason}");
        }
    }

    #[test]
    fn pairs_keep_everything_but_the_filtered_baggage() {
        let pairs = [
            ("BAGGAGE", "user=mallory"),
            (
                "traceparent",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            ),
        ];
        let out = BaggagePolicy::allow(["tenant"]).filter_pairs(pairs);
        assert_eq!(out.len(), 1, "the emptied baggage entry goes: {out:?}");
        assert_eq!(out[0].0, "traceparent");
        assert_eq!(
            BaggagePolicy::keep_all().filter_pairs(pairs).len(),
            2,
            "keep all changes nothing"
        );
    }

    #[test]
    fn the_env_carrier_is_filtered() {
        let mut carrier = EnvCarrier::default();
        carrier.set("baggage", "tenant=acme,user=mallory".to_owned());
        carrier.set(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_owned(),
        );
        let kept = BaggagePolicy::allow(["tenant"]).filter_env(carrier.clone());
        assert_eq!(kept.get("baggage"), Some("tenant=acme"));
        assert!(
            kept.get("traceparent").is_some(),
            "the parent is not the policy's"
        );
        let none = BaggagePolicy::drop_all().filter_env(carrier);
        assert_eq!(none.get("baggage"), None);
        assert_eq!(none.vars().len(), 1);
    }

    #[test]
    fn debug_names_keys_only() {
        assert_eq!(
            format!("{:?}", BaggagePolicy::allow(["b", "a"])),
            r#"BaggagePolicy::Allow(["a", "b"])"#
        );
        assert_eq!(
            format!("{:?}", BaggagePolicy::drop_all()),
            "BaggagePolicy::DropAll"
        );
    }
}
