//! Which traces and spans a view shows: `--run`, `--trace`, `--name`,
//! `--errors`, `--slowest`.
//!
//! `--run` and `--trace` choose traces. `--name` and `--errors` choose
//! spans: a trace is shown when one of its spans is chosen, drawn with the
//! chosen spans and their ancestors, so the tree keeps its shape. `--slowest
//! N` keeps the N longest traces of those, longest first.

use super::otlp_json;
use super::trace::{NO_PARENT, Trace};

/// The filters of one view.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Filter {
    pub(crate) run: Option<String>,
    pub(crate) trace: Option<u128>,
    pub(crate) name: Option<String>,
    pub(crate) errors: bool,
    pub(crate) slowest: Option<usize>,
}

impl Filter {
    /// Reads a `--trace` value: 32 hex digits.
    pub(crate) fn parse_trace_id(text: &str) -> Result<u128, String> {
        if text.len() == 32 {
            if let Some(id) = otlp_json::trace_id(text) {
                return Ok(id);
            }
        }
        Err(format!(
            "--trace {text:?}: accepted values are trace ids of 32 hex digits"
        ))
    }

    /// Whether spans of `trace_id` can be shown at all: spans of other
    /// traces are not kept while reading.
    pub(crate) fn wants_trace(&self, trace_id: u128) -> bool {
        self.trace.is_none_or(|t| t == trace_id)
    }

    /// The trace as shown, or `None` when nothing in it is chosen.
    pub(crate) fn apply(&self, trace: Trace) -> Option<Trace> {
        if !self.wants_trace(trace.id) {
            return None;
        }
        if let Some(run) = &self.run {
            if !trace.spans.iter().any(|s| s.run_id.as_deref() == Some(run)) {
                return None;
            }
        }
        if self.name.is_none() && !self.errors {
            return Some(trace);
        }
        let n = trace.spans.len();
        let mut keep = vec![false; n];
        let mut any = false;
        for (i, span) in trace.spans.iter().enumerate() {
            let chosen = self.name.as_deref().is_none_or(|p| matches(p, &span.name))
                && (!self.errors || span.is_error());
            if chosen {
                any = true;
                // Ancestors come earlier in depth-first order; stop at one
                // already kept.
                let mut at = i;
                while !keep[at] {
                    keep[at] = true;
                    match trace.parent[at] {
                        NO_PARENT => break,
                        p => at = p as usize,
                    }
                }
            }
        }
        any.then(|| trace.retain(&keep))
    }
}

/// `*` matches any run of characters and `?` one; a pattern without either
/// matches names that contain it. Case-sensitive.
pub(crate) fn matches(pattern: &str, name: &str) -> bool {
    if !pattern.contains(['*', '?']) {
        return name.contains(pattern);
    }
    let p: Vec<char> = pattern.chars().collect();
    let s: Vec<char> = name.chars().collect();
    // Iterative glob with one backtrack point (linear in practice).
    let (mut pi, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == s[si]) {
            pi += 1;
            si += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, si));
            pi += 1;
        } else if let Some((sp, ss)) = star {
            pi = sp + 1;
            si = ss + 1;
            star = Some((sp, ss + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// The N longest traces seen, for `--slowest N`.
#[derive(Debug)]
pub(crate) struct Slowest {
    n: usize,
    traces: Vec<Trace>,
}

impl Slowest {
    pub(crate) fn new(n: usize) -> Self {
        Self {
            n,
            traces: Vec::new(),
        }
    }

    pub(crate) fn push(&mut self, trace: Trace) {
        if self.n == 0 {
            return;
        }
        if self.traces.len() == self.n {
            let (shortest, _) = self
                .traces
                .iter()
                .enumerate()
                .min_by_key(|(_, t)| t.duration())
                .expect("n > 0");
            if self.traces[shortest].duration() >= trace.duration() {
                return;
            }
            self.traces.swap_remove(shortest);
        }
        self.traces.push(trace);
    }

    /// Longest first.
    pub(crate) fn into_sorted(mut self) -> Vec<Trace> {
        self.traces
            .sort_by_key(|t| (std::cmp::Reverse(t.duration()), t.start, t.id));
        self.traces
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::view::trace::tests::span;

    #[test]
    fn patterns() {
        for (pattern, name, expected) in [
            ("fetch", "fetch_index", true),
            ("index", "fetch_index", true),
            ("fetch*", "fetch_index attempt 1", true),
            ("*attempt ?", "fetch_index attempt 2", true),
            ("*attempt ?", "fetch_index attempt 12", false),
            ("f*h", "fetch", true),
            ("f*h", "fetches", false),
            ("Fetch", "fetch", false),
            ("*", "", true),
        ] {
            assert_eq!(matches(pattern, name), expected, "{pattern:?} vs {name:?}");
        }
    }

    fn trace() -> Trace {
        let mut failing = span(4, 2, "parse", 12, 20);
        failing.status = 2;
        let mut root = span(1, 0, "run", 0, 100);
        root.run_id = Some("r1".into());
        Trace::build(
            7,
            vec![
                root,
                span(2, 1, "fetch", 10, 50),
                span(3, 1, "fetch", 60, 90),
                failing,
            ],
        )
    }

    fn names(t: &Trace) -> Vec<&str> {
        t.spans.iter().map(|s| s.name.as_str()).collect()
    }

    #[test]
    fn span_filters_keep_ancestors() {
        let errors = Filter {
            errors: true,
            ..Filter::default()
        };
        assert_eq!(
            names(&errors.apply(trace()).unwrap()),
            ["run", "fetch", "parse"]
        );
        let name = Filter {
            name: Some("fetch".into()),
            ..Filter::default()
        };
        assert_eq!(
            names(&name.apply(trace()).unwrap()),
            ["run", "fetch", "fetch"]
        );
        let both = Filter {
            name: Some("run".into()),
            errors: true,
            ..Filter::default()
        };
        assert!(
            both.apply(trace()).is_none(),
            "the run span is not an error"
        );
    }

    #[test]
    fn trace_filters() {
        let run = |id: &str| Filter {
            run: Some(id.into()),
            ..Filter::default()
        };
        assert!(run("r1").apply(trace()).is_some());
        assert!(run("r2").apply(trace()).is_none());
        let other = Filter {
            trace: Some(8),
            ..Filter::default()
        };
        assert!(!other.wants_trace(7));
        assert!(other.apply(trace()).is_none());
        assert_eq!(Filter::parse_trace_id(&format!("{:032x}", 7u128)), Ok(7));
        assert!(
            Filter::parse_trace_id("xyz")
                .unwrap_err()
                .contains("32 hex digits")
        );
    }

    #[test]
    fn slowest_keeps_the_longest() {
        let mut slowest = Slowest::new(2);
        for (id, d) in [(1u128, 10u64), (2, 30), (3, 20), (4, 5)] {
            let mut s = span(1, 0, "r", 0, d);
            s.trace_id = id;
            slowest.push(Trace::build(id, vec![s]));
        }
        let ids: Vec<u128> = slowest.into_sorted().iter().map(|t| t.id).collect();
        assert_eq!(ids, [2, 3]);
    }
}
