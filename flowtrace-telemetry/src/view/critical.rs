//! The critical path: the chain of spans that determined when the run
//! ended. From the root, walk back from its end: the child that finished
//! last is on the path; before that child started, the child that finished
//! last before that moment is on it; and so on, then into each chosen child
//! the same way. Children overlapping a chosen one did not hold the parent
//! up. This is the algorithm Jaeger's UI uses; a child that ends after its
//! parent (clock skew, a detached task) counts as ending with it.

use super::model::Span;

/// Marks the spans on the critical path below `root` (which is on it).
/// `children[i]` lists the children of span `i`.
pub(crate) fn critical_path(spans: &[Span], children: &[Vec<usize>], root: usize) -> Vec<bool> {
    let mut on_path = vec![false; spans.len()];
    let mut stack = vec![(root, spans[root].end)];
    let mut kids: Vec<(u64, u64, usize)> = Vec::new();
    while let Some((i, bound)) = stack.pop() {
        if on_path[i] {
            continue;
        }
        on_path[i] = true;
        let parent = &spans[i];
        let mut t = parent.end.min(bound);
        kids.clear();
        kids.extend(children[i].iter().map(|&c| {
            let end = spans[c].end.min(parent.end);
            let start = spans[c].start.max(parent.start).min(end);
            (end, start, c)
        }));
        // Latest end first; ties: the later start (the shorter span) first,
        // then the id order, so the result does not depend on file order.
        kids.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.cmp(&a.1)).then(a.2.cmp(&b.2)));
        for &(end, start, c) in &kids {
            if end <= t {
                stack.push((c, t));
                t = start;
            }
        }
    }
    on_path
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A span of the trace fixture with only its times set.
    fn span(start: u64, end: u64) -> Span {
        crate::view::trace::tests::span(1, 0, "", start, end)
    }

    fn path(spans: &[Span], children: &[Vec<usize>]) -> Vec<usize> {
        critical_path(spans, children, 0)
            .iter()
            .enumerate()
            .filter_map(|(i, &on)| on.then_some(i))
            .collect()
    }

    #[test]
    fn concurrent_children_only_the_last_to_finish_counts() {
        // root 0..100: a 0..60, b 5..90 (last), c 10..50 overlaps b.
        let spans = [span(0, 100), span(0, 60), span(5, 90), span(10, 50)];
        let children = [vec![1, 2, 3], vec![], vec![], vec![]];
        assert_eq!(path(&spans, &children), [0, 2]);
    }

    #[test]
    fn sequential_children_are_all_on_the_path() {
        let spans = [span(0, 100), span(0, 30), span(30, 60), span(60, 95)];
        let children = [vec![3, 1, 2], vec![], vec![], vec![]];
        assert_eq!(path(&spans, &children), [0, 1, 2, 3]);
    }

    #[test]
    fn the_path_goes_down_into_the_chosen_child() {
        // root → b (last) → b2 (last in b); a overlaps b and is left out.
        let spans = [
            span(0, 100),
            span(0, 70),
            span(10, 100),
            span(10, 40),
            span(40, 99),
        ];
        let children = [vec![1, 2], vec![], vec![3, 4], vec![], vec![]];
        assert_eq!(path(&spans, &children), [0, 2, 3, 4]);
    }

    #[test]
    fn a_child_outliving_its_parent_ends_with_it() {
        let spans = [span(0, 100), span(50, 500), span(0, 40)];
        let children = [vec![1, 2], vec![], vec![]];
        assert_eq!(path(&spans, &children), [0, 1, 2]);
    }
}
