//! Seeing a run without a backend: `flowtrace view FILE...` draws the traces
//! of OTLP/JSON lines files (the file exporter's `flowtrace-traces.jsonl`,
//! or the OpenTelemetry Collector's file exporter's output) as a waterfall
//! in the terminal, or writes them as one self-contained HTML page.
//!
//! ```text
//! flowtrace view flowtrace-traces.jsonl
//! flowtrace view traces.jsonl --errors --slowest 5
//! flowtrace view flowtrace-traces.jsonl --follow
//! flowtrace view flowtrace-traces.jsonl --html trace.html
//! ```
//!
//! Reading streams: one line is held at a time, and spans wait only until
//! their trace is drawn (see [`ViewOptions::buffer`]). A malformed or
//! truncated line is reported with its number and skipped, and the rest is
//! shown. Exit status of the command: 0 when everything was shown, 1 when
//! lines were skipped or a file held no spans, 2 for a usage error or a file
//! that cannot be read.

mod assemble;
mod critical;
mod filter;
mod follow;
mod html;
mod model;
mod otlp_json;
mod pipeline;
mod source;
mod terminal;
mod trace;
mod tty;

use std::fmt;
use std::io;
use std::path::PathBuf;

pub use tty::ColorChoice;

use filter::Filter;

/// The usage line of `flowtrace view`.
pub const VIEW_USAGE: &str = "usage: flowtrace view FILE... [--run ID] [--trace ID] \
[--name PATTERN] [--errors] [--slowest N] [--follow] [--html OUT.html] [--width N] \
[--color auto|always|never]";

/// What `flowtrace view` shows and where. [`ViewOptions::from_args`] reads
/// the command line; the setters do the same in code.
///
/// ```no_run
/// use flowtrace_telemetry::{ViewOptions, view};
///
/// let options = ViewOptions::new(["flowtrace-traces.jsonl"]).errors(true).slowest(3);
/// let report = view(&options)?;
/// println!("{} traces shown", report.traces);
/// # Ok::<(), flowtrace_telemetry::ViewError>(())
/// ```
#[derive(Clone, Debug)]
pub struct ViewOptions {
    files: Vec<PathBuf>,
    filter: Filter,
    html: Option<PathBuf>,
    follow: bool,
    width: Option<usize>,
    color: ColorChoice,
    buffer: usize,
}

impl ViewOptions {
    /// Views `files` (`-` is standard input), all traces, in the terminal.
    pub fn new<P: Into<PathBuf>>(files: impl IntoIterator<Item = P>) -> Self {
        Self {
            files: files.into_iter().map(Into::into).collect(),
            filter: Filter::default(),
            html: None,
            follow: false,
            width: None,
            color: ColorChoice::Auto,
            buffer: assemble::DEFAULT_LIMIT,
        }
    }

    /// Only the trace of the run with this `flowtrace.run.id`.
    pub fn run(mut self, id: impl Into<String>) -> Self {
        self.filter.run = Some(id.into());
        self
    }

    /// Only this trace.
    pub fn trace(mut self, id: u128) -> Self {
        self.filter.trace = Some(id);
        self
    }

    /// Only spans whose name matches `pattern` (with their ancestors): `*`
    /// matches any characters, `?` one; without either, names containing
    /// the pattern match.
    pub fn name(mut self, pattern: impl Into<String>) -> Self {
        self.filter.name = Some(pattern.into());
        self
    }

    /// Only spans with an error status (with their ancestors).
    pub fn errors(mut self, errors: bool) -> Self {
        self.filter.errors = errors;
        self
    }

    /// Only the `n` longest traces, longest first.
    pub fn slowest(mut self, n: usize) -> Self {
        self.filter.slowest = Some(n);
        self
    }

    /// Keeps reading the files as they grow, drawing each trace when its
    /// root span arrives (or when it has not changed for two seconds).
    pub fn follow(mut self, follow: bool) -> Self {
        self.follow = follow;
        self
    }

    /// Writes one self-contained HTML page to `path` instead of drawing in
    /// the terminal.
    pub fn html(mut self, path: impl Into<PathBuf>) -> Self {
        self.html = Some(path.into());
        self
    }

    /// The width to fit (default: `COLUMNS`, else the terminal's, else 100).
    pub fn width(mut self, columns: usize) -> Self {
        self.width = Some(columns);
        self
    }

    /// When to use colours (default: on a terminal, unless `NO_COLOR` is set).
    pub fn color(mut self, choice: ColorChoice) -> Self {
        self.color = choice;
        self
    }

    /// How many spans may wait for the rest of their trace before traces
    /// are drawn early (default 200 000): this bounds the memory a view
    /// takes whatever the size of the file.
    pub fn buffer(mut self, spans: usize) -> Self {
        self.buffer = spans.max(1);
        self
    }

    /// Reads the arguments after `view`; the error is a usage message.
    pub fn from_args(args: &[String]) -> Result<Self, String> {
        let mut options = Self::new(Vec::<PathBuf>::new());
        let mut rest = args.iter();
        while let Some(arg) = rest.next() {
            let mut value = |flag: &str| {
                rest.next()
                    .cloned()
                    .ok_or_else(|| format!("{flag} needs a value"))
            };
            let count = |flag: &str, v: String| {
                v.parse::<usize>().ok().filter(|&n| n > 0).ok_or_else(|| {
                    format!("{flag} {v:?}: accepted values are positive whole numbers")
                })
            };
            options = match arg.as_str() {
                "--run" => options.run(value(arg)?),
                "--trace" => options.trace(Filter::parse_trace_id(&value(arg)?)?),
                "--name" => options.name(value(arg)?),
                "--errors" => options.errors(true),
                "--slowest" => options.slowest(count(arg, value(arg)?)?),
                "--follow" | "-f" => options.follow(true),
                "--html" => options.html(value(arg)?),
                "--width" => options.width(count(arg, value(arg)?)?),
                "--color" | "--colour" => options.color(match value(arg)?.as_str() {
                    "auto" => ColorChoice::Auto,
                    "always" => ColorChoice::Always,
                    "never" => ColorChoice::Never,
                    other => {
                        return Err(format!(
                            "--color {other:?}: accepted values are auto, always, never"
                        ));
                    }
                }),
                "-" => {
                    options.files.push("-".into());
                    options
                }
                flag if flag.starts_with('-') => return Err(format!("unknown option {flag:?}")),
                path => {
                    options.files.push(path.into());
                    options
                }
            };
        }
        options.check()?;
        Ok(options)
    }

    fn check(&self) -> Result<(), String> {
        if self.files.is_empty() {
            return Err("no file given".into());
        }
        if self.follow {
            if self.html.is_some() {
                return Err("--follow draws in the terminal; it cannot be used with --html".into());
            }
            if self.filter.slowest.is_some() {
                return Err(
                    "--slowest needs the whole input; it cannot be used with --follow".into(),
                );
            }
            if self.files.iter().any(|f| f.as_os_str() == "-") {
                return Err("--follow needs files, not standard input".into());
            }
        }
        Ok(())
    }
}

/// What a view showed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ViewReport {
    /// Traces drawn.
    pub traces: usize,
    /// Spans drawn.
    pub spans: usize,
    /// Lines skipped (malformed, truncated, of another format, too long).
    pub skipped_lines: usize,
    /// Files that held no spans (empty, or of another format).
    pub files_without_spans: usize,
}

impl ViewReport {
    /// The command's exit status: 0 when everything was shown, 1 when lines
    /// were skipped or a file held no spans.
    pub fn exit_code(&self) -> u8 {
        if self.skipped_lines == 0 && self.files_without_spans == 0 {
            0
        } else {
            1
        }
    }
}

/// Why a view could not be made.
#[derive(Debug)]
pub enum ViewError {
    /// The options do not go together (a usage error).
    Usage(String),
    /// An input file could not be opened or read.
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        error: io::Error,
    },
    /// The output (standard output or the HTML file) could not be written.
    Write {
        /// The HTML file, or `None` for standard output.
        path: Option<PathBuf>,
        /// Why.
        error: io::Error,
    },
}

impl fmt::Display for ViewError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ViewError::Usage(message) => f.write_str(message),
            ViewError::Read { path, error } => write!(f, "cannot read {}: {error}", path.display()),
            ViewError::Write {
                path: Some(path),
                error,
            } => {
                write!(f, "cannot write {}: {error}", path.display())
            }
            ViewError::Write { path: None, error } => write!(f, "cannot write the output: {error}"),
        }
    }
}

impl std::error::Error for ViewError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ViewError::Usage(_) => None,
            ViewError::Read { error, .. } | ViewError::Write { error, .. } => Some(error),
        }
    }
}

/// Shows the traces of `options.files`: drawn on standard output, or
/// written as an HTML page with [`ViewOptions::html`]; skipped lines and
/// notices go to standard error.
pub fn view(options: &ViewOptions) -> Result<ViewReport, ViewError> {
    let stdout = io::stdout();
    let mut out = stdout.lock();
    let mut diagnostics = io::stderr();
    view_to(options, &mut out, &mut diagnostics)
}

/// [`view`] with the output and the diagnostics going elsewhere (colours
/// and width are still decided by whether standard output is a terminal).
pub fn view_to(
    options: &ViewOptions,
    out: &mut dyn io::Write,
    diagnostics: &mut dyn io::Write,
) -> Result<ViewReport, ViewError> {
    options.check().map_err(ViewError::Usage)?;
    let tty = tty::stdout_is_tty();
    let style = terminal::Style {
        width: tty::width(options.width, std::env::var("COLUMNS").ok().as_deref(), tty),
        color: tty::use_color(
            options.color,
            std::env::var("NO_COLOR").ok().as_deref(),
            tty,
        ),
    };
    pipeline::run(options, style, out, diagnostics)
}
