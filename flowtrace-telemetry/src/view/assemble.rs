//! Grouping spans into traces while a file streams past. A trace's spans
//! may be spread over many lines; it is drawn once complete, which is known
//! for certain only at the end of the input. To keep memory bounded, once
//! more than a limit of spans wait, the traces whose root has arrived are
//! drawn early (flowtrace's exporter writes a root after its children), and
//! if that is not enough, the oldest traces too: a span arriving for one of
//! those later is drawn with its trace id as a separate part.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::model::Span;
use super::trace::Trace;

/// Spans kept waiting before traces are drawn early.
pub(crate) const DEFAULT_LIMIT: usize = 200_000;

#[derive(Debug)]
struct Pending {
    spans: Vec<Span>,
    root_seen: bool,
    first_seen: u64,
    updated: Instant,
}

#[derive(Debug)]
pub(crate) struct Assembler {
    traces: HashMap<u128, Pending>,
    buffered: usize,
    limit: usize,
    seq: u64,
}

impl Assembler {
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            traces: HashMap::new(),
            buffered: 0,
            limit: limit.max(1),
            seq: 0,
        }
    }

    pub(crate) fn push(&mut self, span: Span) {
        self.seq += 1;
        let seq = self.seq;
        let pending = self.traces.entry(span.trace_id).or_insert_with(|| Pending {
            spans: Vec::new(),
            root_seen: false,
            first_seen: seq,
            updated: Instant::now(),
        });
        pending.root_seen |= span.parent_id == 0;
        pending.updated = Instant::now();
        pending.spans.push(span);
        self.buffered += 1;
    }

    /// Spans waiting.
    #[cfg(test)]
    pub(crate) fn buffered(&self) -> usize {
        self.buffered
    }

    /// The traces to draw now because too many spans wait: complete ones,
    /// then the oldest, until at most half the limit waits.
    pub(crate) fn take_over_limit(&mut self) -> Vec<Trace> {
        if self.buffered <= self.limit {
            return Vec::new();
        }
        let mut ids: Vec<u128> = self
            .traces
            .iter()
            .filter(|(_, p)| p.root_seen)
            .map(|(&id, _)| id)
            .collect();
        let complete: usize = ids.iter().map(|id| self.traces[id].spans.len()).sum();
        if self.buffered - complete > self.limit / 2 {
            let mut rest: Vec<(u64, u128)> = self
                .traces
                .iter()
                .filter(|(_, p)| !p.root_seen)
                .map(|(&id, p)| (p.first_seen, id))
                .collect();
            rest.sort_unstable();
            let mut remaining = self.buffered - complete;
            for (_, id) in rest {
                if remaining <= self.limit / 2 {
                    break;
                }
                remaining -= self.traces[&id].spans.len();
                ids.push(id);
            }
        }
        self.take(ids)
    }

    /// For `--follow`: the traces whose root has arrived, and those that
    /// have not changed for `idle`.
    pub(crate) fn take_settled(&mut self, idle: Duration) -> Vec<Trace> {
        let ids = self
            .traces
            .iter()
            .filter(|(_, p)| p.root_seen || p.updated.elapsed() >= idle)
            .map(|(&id, _)| id)
            .collect();
        self.take(ids)
    }

    /// Everything, at the end of the input.
    pub(crate) fn finish(&mut self) -> Vec<Trace> {
        let ids = self.traces.keys().copied().collect();
        self.take(ids)
    }

    /// Builds the traces `ids`, ordered by start time.
    fn take(&mut self, ids: Vec<u128>) -> Vec<Trace> {
        let mut traces: Vec<Trace> = ids
            .into_iter()
            .filter_map(|id| {
                let pending = self.traces.remove(&id)?;
                self.buffered -= pending.spans.len();
                Some(Trace::build(id, pending.spans))
            })
            .collect();
        traces.sort_by_key(|t| (t.start, t.id));
        traces
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::view::trace::tests::span;

    fn in_trace(trace: u128, id: u64, parent: u64, start: u64) -> Span {
        let mut s = span(id, parent, "s", start, start + 10);
        s.trace_id = trace;
        s
    }

    #[test]
    fn traces_come_out_in_start_order_at_the_end() {
        let mut a = Assembler::new(100);
        a.push(in_trace(2, 1, 0, 50));
        a.push(in_trace(1, 2, 9, 10));
        a.push(in_trace(1, 9, 0, 5));
        assert!(
            a.take_over_limit().is_empty(),
            "under the limit nothing is drawn early"
        );
        let traces = a.finish();
        assert_eq!(traces.iter().map(|t| t.id).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(traces[0].spans.len(), 2);
        assert_eq!(a.buffered(), 0);
    }

    #[test]
    fn over_the_limit_complete_traces_go_first_then_the_oldest() {
        let mut a = Assembler::new(4);
        a.push(in_trace(1, 1, 5, 0)); // no root yet, oldest
        a.push(in_trace(2, 2, 0, 0)); // complete
        a.push(in_trace(3, 3, 5, 0));
        a.push(in_trace(4, 4, 5, 0));
        assert!(a.take_over_limit().is_empty());
        a.push(in_trace(5, 5, 5, 0));
        let early: Vec<u128> = a.take_over_limit().iter().map(|t| t.id).collect();
        assert_eq!(
            early,
            [1, 2, 3],
            "the complete one, then the oldest down to half"
        );
        assert_eq!(a.buffered(), 2);
    }

    #[test]
    fn following_draws_a_trace_once_its_root_arrives() {
        let mut a = Assembler::new(100);
        a.push(in_trace(1, 2, 1, 0));
        assert!(a.take_settled(Duration::from_secs(60)).is_empty());
        a.push(in_trace(1, 1, 0, 0));
        let settled = a.take_settled(Duration::from_secs(60));
        assert_eq!(settled.len(), 1);
        assert_eq!(settled[0].spans.len(), 2);
        a.push(in_trace(3, 7, 1, 0));
        assert_eq!(
            a.take_settled(Duration::ZERO).len(),
            1,
            "an idle part is drawn"
        );
    }
}
