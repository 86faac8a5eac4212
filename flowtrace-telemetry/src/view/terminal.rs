//! The terminal waterfall: per trace a header, a time axis, then one row per
//! span — the tree, a bar placed and scaled on the axis, the duration, the
//! status and the lifecycle marks — fitted to the terminal's width. Spans on
//! the critical path have a `*` in the left column (and a yellow bar with
//! colours); errors are red, with their status message on the line below.

use std::fmt::Write as _;

use super::model::{STATUS_ERROR, STATUS_OK, format_duration};
use super::trace::Trace;

/// How rows are drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Style {
    pub(crate) width: usize,
    pub(crate) color: bool,
}

/// Tree levels drawn in full; deeper ones are shown as `⋯`.
const MAX_DRAWN_DEPTH: usize = 24;

/// The narrowest layout drawn; a smaller width is widened to this.
pub(crate) const MIN_WIDTH: usize = 40;

const RESET: &str = "\x1b[0m";
const RED: &str = "\x1b[31m";
const BOLD_RED: &str = "\x1b[1;31m";
const YELLOW: &str = "\x1b[33m";
const BOLD_YELLOW: &str = "\x1b[1;33m";
const CYAN: &str = "\x1b[36m";
const DIM: &str = "\x1b[2m";
const BOLD: &str = "\x1b[1m";

/// What the `*`, the bars and the `!` lines mean; printed after the traces.
pub(crate) fn legend(style: Style) -> String {
    let mut out = String::new();
    paint(&mut out, style, BOLD_YELLOW, "*");
    out.push_str(" critical path   ");
    paint(&mut out, style, CYAN, "█");
    out.push_str(" span on the time axis   ");
    paint(&mut out, style, RED, "!");
    out.push_str(" error\n");
    out
}

/// Draws one trace.
pub(crate) fn render(trace: &Trace, style: Style) -> String {
    let width = style.width.max(MIN_WIDTH);
    let mut out = String::new();
    header(&mut out, trace, style);

    let n = trace.spans.len();
    let mut labels = Vec::with_capacity(n);
    let mut prefixes = Vec::with_capacity(n);
    let mut open: Vec<bool> = Vec::new();
    for i in 0..n {
        let depth = trace.depth[i] as usize;
        open.truncate(depth);
        let mut prefix = String::new();
        for &more in open.iter().skip(1).take(MAX_DRAWN_DEPTH) {
            prefix.push_str(if more { "│  " } else { "   " });
        }
        if depth > MAX_DRAWN_DEPTH + 1 {
            prefix.push_str("⋯  ");
        }
        // A span whose ancestors are filtered out still sits at its depth.
        let connector = if depth == 0 {
            ""
        } else if trace.last[i] {
            "└─ "
        } else {
            "├─ "
        };
        labels.push(format!(
            "{prefix}{connector}{}",
            printable(&trace.spans[i].name)
        ));
        // Lines under the span (its error message) continue the tree.
        let mut under = prefix;
        if depth > 0 {
            under.push_str(if trace.last[i] { "   " } else { "│  " });
        }
        prefixes.push(under);
        while open.len() < depth {
            open.push(false);
        }
        open.push(!trace.last[i]);
    }
    let statuses: Vec<String> = (0..n).map(|i| status_text(trace, i)).collect();
    let durations: Vec<String> = trace
        .spans
        .iter()
        .map(|s| format_duration(s.duration()))
        .collect();

    const GUTTER: usize = 2;
    let dur_w = durations.iter().map(|d| cols(d)).max().unwrap_or(0).max(7);
    let status_w = statuses.iter().map(|s| cols(s)).max().unwrap_or(0).min(24);
    let fixed = GUTTER + 1 + 1 + dur_w + if status_w > 0 { 2 + status_w } else { 0 };
    let room = width.saturating_sub(fixed).max(20);
    let label_max = labels.iter().map(|l| cols(l)).max().unwrap_or(0);
    let mut label_w = label_max.min((room / 2).max(12));
    if room - label_w < 10 {
        label_w = room.saturating_sub(10).max(8);
    }
    let bar_w = room.saturating_sub(label_w).max(10);

    out.push_str(&" ".repeat(GUTTER + label_w + 1));
    out.push_str(&axis(trace.duration(), bar_w));
    out.push('\n');

    for i in 0..n {
        let span = &trace.spans[i];
        let error = span.status == STATUS_ERROR;
        if trace.critical[i] {
            paint(&mut out, style, BOLD_YELLOW, "*");
            out.push(' ');
        } else {
            out.push_str("  ");
        }
        let label = fit(&labels[i], label_w);
        let pad = label_w - cols(&label);
        paint(&mut out, style, if error { RED } else { "" }, &label);
        out.push_str(&" ".repeat(pad + 1));

        let (from, to, thin) = cells(trace, i, bar_w);
        out.push_str(&" ".repeat(from));
        let bar = if thin {
            "▏".to_owned()
        } else {
            "█".repeat(to - from)
        };
        let color = if error {
            RED
        } else if trace.critical[i] {
            YELLOW
        } else if span.marks.cached || span.marks.replayed {
            DIM
        } else {
            CYAN
        };
        paint(&mut out, style, color, &bar);
        let used = if thin { from + 1 } else { to };
        out.push_str(&" ".repeat(bar_w - used + 1));
        let _ = write!(out, "{:>dur_w$}", durations[i]);
        if !statuses[i].is_empty() {
            out.push_str("  ");
            let status = fit(&statuses[i], status_w);
            if error {
                let (word, rest) = status.split_at("error".len().min(status.len()));
                paint(&mut out, style, BOLD_RED, word);
                out.push_str(rest);
            } else {
                out.push_str(&status);
            }
        }
        out.push('\n');

        if error && !span.message.is_empty() {
            let line = format!("{}  ! {}", prefixes[i], printable(one_line(&span.message)));
            out.push_str("  ");
            paint(&mut out, style, RED, &fit(&line, width - GUTTER));
            out.push('\n');
        }
    }
    out
}

/// `name  duration  N spans, E errors`, then `run ID  trace ID`.
fn header(out: &mut String, trace: &Trace, style: Style) {
    let width = style.width.max(MIN_WIDTH);
    let name = trace
        .run_name()
        .or_else(|| trace.spans.first().map(|s| s.name.as_str()))
        .unwrap_or("");
    let mut text = format!(
        "{}  {}  ",
        printable(name),
        format_duration(trace.duration())
    );
    let shown = trace.spans.len();
    if shown < trace.total_spans {
        let _ = write!(text, "{shown} of {} spans", trace.total_spans);
    } else {
        let _ = write!(text, "{shown} span{}", if shown == 1 { "" } else { "s" });
    }
    let errors = trace.errors();
    if errors > 0 {
        let _ = write!(
            text,
            ", {errors} error{}",
            if errors == 1 { "" } else { "s" }
        );
    }
    paint(out, style, BOLD, &fit(&text, width));
    out.push('\n');
    let mut ids = String::new();
    if let Some(id) = trace.run_id() {
        let _ = write!(ids, "run {}  ", printable(id));
    }
    let _ = write!(ids, "trace {:032x}", trace.id);
    paint(out, style, DIM, &fit(&ids, width));
    out.push('\n');
}

/// `ok` / `error` and the marks, e.g. `error attempt 1`, `retried 2×`.
fn status_text(trace: &Trace, i: usize) -> String {
    let span = &trace.spans[i];
    let mut words: Vec<String> = Vec::new();
    match span.status {
        STATUS_ERROR => words.push("error".into()),
        STATUS_OK => words.push("ok".into()),
        _ => {}
    }
    words.extend(span.marks.words());
    if let Some(parent) = trace.outside_parent(i) {
        words.push(format!("parent {parent:016x}"));
    }
    words.join(" ")
}

/// The cells of span `i`'s bar: `[from, to)`, or one thin mark at `from`
/// for a span shorter than half a cell.
fn cells(trace: &Trace, i: usize, width: usize) -> (usize, usize, bool) {
    let total = u128::from(trace.duration().max(1));
    let span = &trace.spans[i];
    let w = width as u128;
    let rel_start = u128::from(span.start.saturating_sub(trace.start));
    let rel_end = u128::from(span.end.saturating_sub(trace.start));
    let from = ((rel_start * w / total) as usize).min(width - 1);
    let to = (rel_end * w).div_ceil(total) as usize;
    let to = to.clamp(from + 1, width);
    let thin = u128::from(span.duration()) * w * 2 < total;
    (from, to, thin)
}

/// `0` under the first cell, the total under the last, the middle between.
fn axis(total: u64, width: usize) -> String {
    let mut line: Vec<char> = vec![' '; width];
    let mut place = |at: usize, text: &str| {
        let chars: Vec<char> = text.chars().collect();
        let at = at.min(width.saturating_sub(chars.len()));
        if line[at..at + chars.len()].iter().all(|&c| c == ' ') {
            line[at..at + chars.len()].copy_from_slice(&chars);
        }
    };
    let end = format_duration(total);
    place(width - cols(&end), &end);
    place(0, "0");
    let mid = format_duration(total / 2);
    let mid_at = (width / 2).saturating_sub(cols(&mid) / 2);
    if mid_at > 2 && mid_at + cols(&mid) + 2 < width - cols(&end) {
        place(mid_at, &mid);
    }
    line.into_iter().collect::<String>().trim_end().to_owned()
}

fn paint(out: &mut String, style: Style, color: &str, text: &str) {
    if style.color && !color.is_empty() && !text.is_empty() {
        out.push_str(color);
        out.push_str(text);
        out.push_str(RESET);
    } else {
        out.push_str(text);
    }
}

/// Columns a string takes (one per character: names are expected to be
/// narrow).
fn cols(text: &str) -> usize {
    text.chars().count()
}

/// At most `width` columns, an ellipsis marking a cut.
fn fit(text: &str, width: usize) -> String {
    if cols(text) <= width {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(width.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

fn one_line(text: &str) -> &str {
    text.split(['\n', '\r']).next().unwrap_or("")
}

/// Text from the file as it may be printed: control characters (an escape
/// sequence in a span name would drive the terminal) become `�`.
fn printable(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { '\u{fffd}' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::view::trace::tests::span;

    fn sample() -> Trace {
        const US: u64 = 1000;
        let mut failing = span(3, 1, "fetch", 10 * US, 60 * US);
        failing.status = STATUS_ERROR;
        failing.message = "404\nmore".into();
        let mut cached = span(4, 1, "embed", 95 * US, 95 * US);
        cached.marks.cached = true;
        Trace::build(
            0xab,
            vec![
                span(1, 0, "run", 0, 100 * US),
                span(2, 1, "fetch", 0, 90 * US),
                failing,
                cached,
            ],
        )
    }

    #[test]
    fn rows_fit_the_width() {
        for width in [40, 60, 100, 200] {
            let text = render(
                &sample(),
                Style {
                    width,
                    color: false,
                },
            );
            for line in text.lines() {
                assert!(
                    cols(line) <= width,
                    "{width}: {line:?} is {} wide",
                    cols(line)
                );
            }
        }
    }

    #[test]
    fn bars_sit_on_the_axis() {
        let text = render(
            &sample(),
            Style {
                width: 60,
                color: false,
            },
        );
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "run  100 µs  4 spans, 1 error");
        assert_eq!(lines[1], "trace 000000000000000000000000000000ab");
        let lines = &lines[1..];
        assert!(
            lines[1].trim_start().starts_with('0') && lines[1].ends_with("100 µs"),
            "{}",
            lines[1]
        );
        assert!(
            lines[2].starts_with("* run "),
            "the root is critical: {}",
            lines[2]
        );
        let root_bar = lines[2].matches('█').count();
        let fetch_bar = lines[3].matches('█').count();
        assert!(root_bar > fetch_bar && fetch_bar > 0, "{text}");
        assert!(lines[4].contains("error"), "{}", lines[4]);
        assert!(
            lines[5].contains("│    ! 404"),
            "the message continues the tree: {:?}",
            lines[5]
        );
        assert!(!lines[5].contains("more"), "one line of the message");
        assert!(
            lines[6].contains('▏') && lines[6].ends_with("cached"),
            "{:?}",
            lines[6]
        );
    }

    #[test]
    fn hostile_names_and_deep_trees() {
        let mut spans = vec![span(1, 0, "root\x1b[2J", 0, 100)];
        for id in 2..2000u64 {
            spans.push(span(id, id - 1, "deep", id, 100));
        }
        let trace = Trace::build(1, spans);
        let text = render(
            &trace,
            Style {
                width: 220,
                color: false,
            },
        );
        assert!(!text.contains('\x1b'), "no escape sequence from the file");
        assert!(text.contains("root\u{fffd}[2J"));
        assert!(text.lines().all(|l| cols(l) <= 220));
        assert!(
            text.len() < 2000 * 400,
            "rows stay bounded: {} bytes",
            text.len()
        );
        assert!(text.contains("⋯  └─ deep"), "deeper levels are folded");
    }

    #[test]
    fn colours_only_when_asked() {
        let plain = render(
            &sample(),
            Style {
                width: 80,
                color: false,
            },
        );
        assert!(!plain.contains('\x1b'));
        let colored = render(
            &sample(),
            Style {
                width: 80,
                color: true,
            },
        );
        assert!(
            colored.contains(&format!("{RED}├─ fetch{RESET}")),
            "{colored}"
        );
        assert!(colored.contains(BOLD_YELLOW));
    }
}
