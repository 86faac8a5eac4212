//! The reading loop shared by the terminal and the HTML view: lines → spans
//! → traces → filters → a [`Sink`], with skipped lines reported as they are
//! met.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use super::assemble::Assembler;
use super::filter::Slowest;
use super::html::HtmlSink;
use super::otlp_json::{ACCEPTED, LineError, Reader};
use super::source::{Line, MAX_LINE_BYTES, Source};
use super::terminal::{self, Style};
use super::trace::Trace;
use super::{ViewError, ViewOptions, ViewReport, follow};

/// Where traces go.
pub(crate) trait Sink {
    /// Whether spans need their attributes, events and links.
    fn details(&self) -> bool;
    fn trace(&mut self, trace: &Trace, reader: &mut Reader) -> io::Result<()>;
    fn finish(&mut self, reader: &mut Reader) -> io::Result<()>;
    /// The file written, for errors (`None`: standard output).
    fn path(&self) -> Option<&Path>;
}

/// Skipped-line messages shown per file; the rest are counted.
const MESSAGES_PER_FILE: usize = 20;

pub(crate) struct State<'a> {
    pub(crate) options: &'a ViewOptions,
    pub(crate) reader: Reader,
    pub(crate) assembler: Assembler,
    slowest: Option<Slowest>,
    pub(crate) report: ViewReport,
    pub(crate) diagnostics: &'a mut dyn Write,
    spans: Vec<super::model::Span>,
}

/// What one file gave.
#[derive(Debug, Default)]
pub(crate) struct FileStats {
    spans: usize,
    skipped: usize,
    other_format: usize,
    non_blank: usize,
}

pub(crate) fn run(
    options: &ViewOptions,
    style: Style,
    out: &mut dyn Write,
    diagnostics: &mut dyn Write,
) -> Result<ViewReport, ViewError> {
    // Every file is opened first: a missing one stops the view before
    // anything is drawn.
    let mut sources = Vec::with_capacity(options.files.len());
    for path in &options.files {
        sources.push(Source::open(path).map_err(|error| ViewError::Read {
            path: path.clone(),
            error,
        })?);
    }
    match &options.html {
        Some(path) => {
            let file = File::create(path).map_err(|error| ViewError::Write {
                path: Some(path.clone()),
                error,
            })?;
            let title = options
                .files
                .iter()
                .map(|f| f.display().to_string())
                .collect::<Vec<_>>()
                .join(", ");
            let mut sink = HtmlSink::new(BufWriter::new(file), path.clone(), &title);
            let report = run_with(options, &mut sources, &mut sink, diagnostics)?;
            let _ = writeln!(
                out,
                "wrote {}: {} trace{}, {} spans",
                path.display(),
                report.traces,
                if report.traces == 1 { "" } else { "s" },
                report.spans
            );
            Ok(report)
        }
        None => {
            let mut sink = TerminalSink {
                out,
                style,
                shown: 0,
                legend_first: options.follow,
            };
            run_with(options, &mut sources, &mut sink, diagnostics)
        }
    }
}

fn run_with(
    options: &ViewOptions,
    sources: &mut [Source],
    sink: &mut dyn Sink,
    diagnostics: &mut dyn Write,
) -> Result<ViewReport, ViewError> {
    let mut state = State {
        options,
        reader: Reader::new(sink.details()),
        assembler: Assembler::new(options.buffer),
        slowest: options.filter.slowest.map(Slowest::new),
        report: ViewReport::default(),
        diagnostics,
        spans: Vec::new(),
    };
    if options.follow {
        return follow::follow(&mut state, sources, sink, None).map(|()| state.report);
    }
    for source in sources.iter_mut() {
        let mut stats = FileStats::default();
        state.read(source, sink, false, &mut stats)?;
        state.end_of_file(source, &stats);
    }
    for trace in state.assembler.finish() {
        state.emit(trace, sink)?;
    }
    if let Some(slowest) = state.slowest.take() {
        for trace in slowest.into_sorted() {
            state.show(&trace, sink)?;
        }
    }
    sink.finish(&mut state.reader)
        .map_err(|e| write_error(sink, e))?;
    if state.report.skipped_lines > 0 {
        let _ = writeln!(
            state.diagnostics,
            "flowtrace: {} line{} skipped; the rest is shown",
            state.report.skipped_lines,
            if state.report.skipped_lines == 1 {
                ""
            } else {
                "s"
            }
        );
    } else if state.report.traces == 0 && state.report.files_without_spans == 0 {
        let _ = writeln!(state.diagnostics, "flowtrace: no trace matches the filters");
    }
    Ok(state.report)
}

fn write_error(sink: &dyn Sink, error: io::Error) -> ViewError {
    ViewError::Write {
        path: sink.path().map(Path::to_owned),
        error,
    }
}

impl State<'_> {
    /// Reads `source` to its end (for now, when `hold_partial`), drawing
    /// traces early when too many spans wait. Returns whether a line was read.
    pub(crate) fn read(
        &mut self,
        source: &mut Source,
        sink: &mut dyn Sink,
        hold_partial: bool,
        stats: &mut FileStats,
    ) -> Result<bool, ViewError> {
        let mut any = false;
        let path = source.path.clone();
        loop {
            let line = match source.next_line(hold_partial) {
                Ok(line) => line,
                Err(error) => {
                    return Err(ViewError::Read {
                        path: path.clone(),
                        error,
                    });
                }
            };
            let result = match line {
                Line::End => break,
                Line::TooLong(number) => Err((number, LineError::TooLong(MAX_LINE_BYTES))),
                Line::Text(number, text) => {
                    if !text.iter().all(u8::is_ascii_whitespace) {
                        stats.non_blank += 1;
                    }
                    self.reader
                        .parse_line(text, &mut self.spans)
                        .map_err(|e| (number, e))
                }
            };
            any = true;
            match result {
                Ok(()) => {
                    stats.spans += self.spans.len();
                    for span in self.spans.drain(..) {
                        if self.options.filter.wants_trace(span.trace_id) {
                            self.assembler.push(span);
                        }
                    }
                }
                Err((number, error)) => {
                    stats.skipped += 1;
                    self.report.skipped_lines += 1;
                    if matches!(error, LineError::OtherFormat(_)) {
                        stats.other_format += 1;
                    }
                    if stats.skipped <= MESSAGES_PER_FILE {
                        let _ = writeln!(
                            self.diagnostics,
                            "flowtrace: {}:{number}: skipped: {error}",
                            path.display()
                        );
                    }
                }
            }
            for trace in self.assembler.take_over_limit() {
                self.emit(trace, sink)?;
            }
        }
        Ok(any)
    }

    /// The notices about a whole file: lines skipped beyond those listed,
    /// nothing in it, or nothing of an accepted format.
    pub(crate) fn end_of_file(&mut self, source: &Source, stats: &FileStats) {
        let path = source.path.display();
        if stats.skipped > MESSAGES_PER_FILE {
            let _ = writeln!(
                self.diagnostics,
                "flowtrace: {path}: {} more lines skipped",
                stats.skipped - MESSAGES_PER_FILE
            );
        }
        if stats.spans > 0 {
            return;
        }
        self.report.files_without_spans += 1;
        let _ = if stats.non_blank == 0 {
            writeln!(self.diagnostics, "flowtrace: {path}: the file is empty")
        } else if stats.skipped == stats.non_blank && stats.other_format > 0 {
            writeln!(
                self.diagnostics,
                "flowtrace: {path}: this is not a format flowtrace view reads; {ACCEPTED}"
            )
        } else if stats.skipped == stats.non_blank {
            writeln!(
                self.diagnostics,
                "flowtrace: {path}: no line could be read; {ACCEPTED}"
            )
        } else {
            writeln!(
                self.diagnostics,
                "flowtrace: {path}: the file holds no spans"
            )
        };
    }

    /// Filters a finished trace, then shows it (or keeps it for `--slowest`).
    pub(crate) fn emit(&mut self, trace: Trace, sink: &mut dyn Sink) -> Result<(), ViewError> {
        let Some(trace) = self.options.filter.apply(trace) else {
            return Ok(());
        };
        match &mut self.slowest {
            Some(slowest) => {
                slowest.push(trace);
                Ok(())
            }
            None => self.show(&trace, sink),
        }
    }

    fn show(&mut self, trace: &Trace, sink: &mut dyn Sink) -> Result<(), ViewError> {
        self.report.traces += 1;
        self.report.spans += trace.spans.len();
        sink.trace(trace, &mut self.reader)
            .map_err(|e| write_error(sink, e))
    }
}

impl FileStats {
    pub(crate) fn new() -> Self {
        Self::default()
    }
}

struct TerminalSink<'a> {
    out: &'a mut dyn Write,
    style: Style,
    shown: usize,
    /// `--follow`: the legend comes first, as there is no end.
    legend_first: bool,
}

impl Sink for TerminalSink<'_> {
    fn details(&self) -> bool {
        false
    }

    fn trace(&mut self, trace: &Trace, _reader: &mut Reader) -> io::Result<()> {
        if self.shown == 0 && self.legend_first {
            self.out
                .write_all(terminal::legend(self.style).as_bytes())?;
        }
        if self.shown > 0 || self.legend_first {
            self.out.write_all(b"\n")?;
        }
        self.shown += 1;
        self.out
            .write_all(terminal::render(trace, self.style).as_bytes())?;
        self.out.flush()
    }

    fn finish(&mut self, _reader: &mut Reader) -> io::Result<()> {
        if self.shown > 0 && !self.legend_first {
            self.out.write_all(b"\n")?;
            self.out
                .write_all(terminal::legend(self.style).as_bytes())?;
        }
        self.out.flush()
    }

    fn path(&self) -> Option<&Path> {
        None
    }
}
