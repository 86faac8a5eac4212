//! A trace as a tree: its spans in drawing order (depth first, children by
//! start time), each with its depth, its parent and whether it is on the
//! critical path.

use std::collections::HashMap;

use super::critical::critical_path;
use super::model::Span;

/// No parent in this trace.
pub(crate) const NO_PARENT: u32 = u32::MAX;

#[derive(Debug)]
pub(crate) struct Trace {
    pub(crate) id: u128,
    /// Depth-first order.
    pub(crate) spans: Vec<Span>,
    /// Index of the parent in `spans`, or [`NO_PARENT`].
    pub(crate) parent: Vec<u32>,
    pub(crate) depth: Vec<u32>,
    /// Whether the span is the last child of its parent (or the last root).
    pub(crate) last: Vec<bool>,
    pub(crate) critical: Vec<bool>,
    /// Spans in the file for this trace, before any filter.
    pub(crate) total_spans: usize,
    pub(crate) start: u64,
    pub(crate) end: u64,
}

impl Trace {
    /// Builds the tree. A span whose parent is not among `spans` (a remote
    /// parent, or one in another file) is a root; so is one caught in a
    /// cycle of parent ids. A span id seen twice keeps its first copy.
    pub(crate) fn build(id: u128, mut spans: Vec<Span>) -> Trace {
        let mut index: HashMap<u64, usize> = HashMap::with_capacity(spans.len());
        let mut unique = Vec::with_capacity(spans.len());
        for span in spans.drain(..) {
            if let std::collections::hash_map::Entry::Vacant(slot) = index.entry(span.span_id) {
                slot.insert(unique.len());
                unique.push(span);
            }
        }
        let spans = unique;
        let n = spans.len();
        let mut children: Vec<Vec<usize>> = vec![Vec::new(); n];
        let mut roots = Vec::new();
        for (i, span) in spans.iter().enumerate() {
            match index.get(&span.parent_id) {
                Some(&p) if span.parent_id != 0 && p != i => children[p].push(i),
                _ => roots.push(i),
            }
        }
        let order_key = |&i: &usize| (spans[i].start, spans[i].end, spans[i].span_id);
        for list in &mut children {
            list.sort_by_key(order_key);
        }
        roots.sort_by_key(order_key);

        // Depth first, iteratively (a deep chain must not overflow the stack).
        let mut walk = Walk {
            order: Vec::with_capacity(n),
            depth: vec![0; n],
            last: vec![false; n],
            parent: vec![usize::MAX; n],
            visited: vec![false; n],
        };
        walk.visit(&roots, &children);
        if walk.order.len() < n {
            // Spans in a parent cycle: none of them was reached from a root.
            let rest: Vec<usize> = (0..n).filter(|&i| !walk.visited[i]).collect();
            for &i in &rest {
                children[i].clear();
            }
            walk.visit(&rest, &children);
        }
        let Walk {
            order,
            depth: depth_of,
            last: last_of,
            parent: parent_of,
            ..
        } = walk;

        let main_root = roots
            .iter()
            .copied()
            .max_by_key(|&r| (spans[r].end, std::cmp::Reverse(r)));
        let critical = match main_root {
            Some(r) => critical_path(&spans, &children, r),
            None => vec![false; n],
        };

        let mut position = vec![0u32; n];
        for (pos, &i) in order.iter().enumerate() {
            position[i] = pos as u32;
        }
        let start = spans.iter().map(|s| s.start).min().unwrap_or(0);
        let end = spans.iter().map(|s| s.end).max().unwrap_or(0);
        let mut slots: Vec<Option<Span>> = spans.into_iter().map(Some).collect();
        let mut trace = Trace {
            id,
            spans: Vec::with_capacity(n),
            parent: Vec::with_capacity(n),
            depth: Vec::with_capacity(n),
            last: Vec::with_capacity(n),
            critical: Vec::with_capacity(n),
            total_spans: n,
            start,
            end,
        };
        for &i in &order {
            if let Some(span) = slots[i].take() {
                trace.spans.push(span);
            }
            trace.parent.push(match parent_of[i] {
                usize::MAX => NO_PARENT,
                p => position[p],
            });
            trace.depth.push(depth_of[i]);
            trace.last.push(last_of[i]);
            trace.critical.push(critical[i]);
        }
        trace
    }

    /// The run this trace belongs to: the `flowtrace.run.id` of its first
    /// span that carries one.
    pub(crate) fn run_id(&self) -> Option<&str> {
        self.spans.iter().find_map(|s| s.run_id.as_deref())
    }

    pub(crate) fn run_name(&self) -> Option<&str> {
        self.spans.iter().find_map(|s| s.run_name.as_deref())
    }

    pub(crate) fn duration(&self) -> u64 {
        self.end.saturating_sub(self.start)
    }

    pub(crate) fn errors(&self) -> usize {
        self.spans.iter().filter(|s| s.is_error()).count()
    }

    /// Whether span `i`'s parent is missing from the file though it has one.
    pub(crate) fn outside_parent(&self, i: usize) -> Option<u64> {
        (self.parent[i] == NO_PARENT && self.spans[i].parent_id != 0)
            .then_some(self.spans[i].parent_id)
    }

    /// Keeps the spans `keep` marks (a kept span's ancestors must be kept
    /// too), recomputing which child is last. Critical marks stay those of
    /// the whole trace.
    pub(crate) fn retain(self, keep: &[bool]) -> Trace {
        let n = self.spans.len();
        let mut new_index = vec![NO_PARENT; n];
        let mut next = 0u32;
        for i in 0..n {
            if keep[i] {
                new_index[i] = next;
                next += 1;
            }
        }
        // Scanning backwards, the first kept child met is the last one.
        let mut has_later = vec![false; n + 1];
        let mut last = vec![false; n];
        for i in (0..n).rev() {
            if keep[i] {
                let slot = match self.parent[i] {
                    NO_PARENT => n,
                    p => p as usize,
                };
                last[i] = !has_later[slot];
                has_later[slot] = true;
            }
        }
        let mut out = Trace {
            id: self.id,
            spans: Vec::with_capacity(next as usize),
            parent: Vec::new(),
            depth: Vec::new(),
            last: Vec::new(),
            critical: Vec::new(),
            total_spans: self.total_spans,
            start: self.start,
            end: self.end,
        };
        for (i, span) in self.spans.into_iter().enumerate() {
            if !keep[i] {
                continue;
            }
            out.spans.push(span);
            out.parent.push(match self.parent[i] {
                NO_PARENT => NO_PARENT,
                p => new_index[p as usize],
            });
            out.depth.push(self.depth[i]);
            out.last.push(last[i]);
            out.critical.push(self.critical[i]);
        }
        out
    }
}

struct Walk {
    order: Vec<usize>,
    depth: Vec<u32>,
    last: Vec<bool>,
    parent: Vec<usize>,
    visited: Vec<bool>,
}

impl Walk {
    fn visit(&mut self, start: &[usize], children: &[Vec<usize>]) {
        let mut stack = Vec::new();
        for (k, &r) in start.iter().enumerate().rev() {
            self.last[r] = k + 1 == start.len();
            stack.push(r);
        }
        while let Some(i) = stack.pop() {
            if self.visited[i] {
                continue;
            }
            self.visited[i] = true;
            self.order.push(i);
            let kids = &children[i];
            for (k, &c) in kids.iter().enumerate().rev() {
                self.depth[c] = self.depth[i] + 1;
                self.last[c] = k + 1 == kids.len();
                self.parent[c] = i;
                stack.push(c);
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::view::model::Marks;

    pub(crate) fn span(id: u64, parent: u64, name: &str, start: u64, end: u64) -> Span {
        Span {
            trace_id: 7,
            span_id: id,
            parent_id: parent,
            name: name.to_owned(),
            kind: 1,
            start,
            end,
            status: 0,
            message: String::new(),
            marks: Marks::default(),
            run_id: None,
            run_name: None,
            attributes: Vec::new(),
            events: Vec::new(),
            links: Vec::new(),
            resource: 0,
            scope: 0,
        }
    }

    fn names(trace: &Trace) -> Vec<&str> {
        trace.spans.iter().map(|s| s.name.as_str()).collect()
    }

    #[test]
    fn depth_first_children_by_start() {
        let trace = Trace::build(
            7,
            vec![
                span(3, 1, "b", 20, 90),
                span(2, 1, "a", 10, 50),
                span(4, 2, "a1", 11, 40),
                span(1, 0, "root", 0, 100),
            ],
        );
        assert_eq!(names(&trace), ["root", "a", "a1", "b"]);
        assert_eq!(trace.depth, [0, 1, 2, 1]);
        assert_eq!(trace.last, [true, false, true, true]);
        assert_eq!(trace.parent, [NO_PARENT, 0, 1, 0]);
        assert_eq!(trace.critical, [true, false, false, true]);
        assert_eq!((trace.start, trace.end, trace.duration()), (0, 100, 100));
    }

    #[test]
    fn missing_parents_duplicates_and_cycles() {
        let trace = Trace::build(
            7,
            vec![
                span(1, 99, "orphan", 0, 10),
                span(1, 99, "orphan again", 0, 10),
                span(5, 6, "cycle a", 1, 2),
                span(6, 5, "cycle b", 1, 3),
                span(8, 8, "own parent", 4, 5),
            ],
        );
        assert_eq!(trace.spans.len(), 4, "the duplicate id is dropped");
        assert_eq!(trace.outside_parent(0), Some(99));
        let mut seen = names(&trace);
        seen.sort();
        assert_eq!(seen, ["cycle a", "cycle b", "orphan", "own parent"]);
    }

    #[test]
    fn retain_keeps_the_shape() {
        let trace = Trace::build(
            7,
            vec![
                span(1, 0, "root", 0, 100),
                span(2, 1, "a", 10, 50),
                span(3, 1, "b", 20, 99),
            ],
        );
        let kept = trace.retain(&[true, true, false]);
        assert_eq!(names(&kept), ["root", "a"]);
        assert_eq!(kept.last, [true, true], "a is now the last child");
        assert_eq!(kept.critical, [true, false], "critical marks stay");
        assert_eq!(kept.total_spans, 3);
    }
}
