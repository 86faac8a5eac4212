//! `flowtrace replay <file>`: sends a trace file written by flowtrace's file
//! exporter (OTLP/JSON lines) to a collector, e.g. after a run that spooled
//! to `OTEL_TRACES_EXPORTER=otlp,file` while the collector was down.
//! `flowtrace view <file>...`: draws its traces as a waterfall in the
//! terminal, or writes them as one HTML page (`--html out.html`).
//!
//! ```text
//! flowtrace replay flowtrace-traces.jsonl --endpoint http://localhost:4318
//! flowtrace replay spool.jsonl --endpoint http://collector:4317 --protocol grpc \
//!     --header x-api-key=secret --timeout 5000 --from-line 120
//! ```
//!
//! Without `--endpoint` the `OTEL_EXPORTER_OTLP_*` variables apply, as for
//! `init()`. Exit status: 0 when every line was sent, 1 when lines were
//! skipped or spans rejected, 2 for a usage or settings error, 3 when the
//! collector stayed unreachable (the message says which line to resume from).

use std::io::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use flowtrace_telemetry::{
    Protocol, ReplayError, ReplayOptions, VIEW_USAGE, ViewError, ViewOptions, replay, view,
};

const USAGE: &str = "usage: flowtrace replay <file> [--endpoint URL] \
[--protocol grpc|http/protobuf|http/json] [--header name=value]... [--timeout MS] \
[--retry-for MS] [--certificate CA.pem] [--from-line N]";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("view") {
        return view_command(&args[1..]);
    }
    match run(&args) {
        Ok(code) => code,
        Err(message) => {
            let _ = writeln!(
                std::io::stderr(),
                "flowtrace: {message}\n{USAGE}\n{VIEW_USAGE}"
            );
            ExitCode::from(2)
        }
    }
}

/// `flowtrace view`: 0 when everything was shown, 1 when lines were skipped
/// or a file held no spans, 2 for a usage error or an unreadable file.
fn view_command(args: &[String]) -> ExitCode {
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!("{VIEW_USAGE}");
        return ExitCode::SUCCESS;
    }
    let options = match ViewOptions::from_args(args) {
        Ok(options) => options,
        Err(message) => {
            let _ = writeln!(std::io::stderr(), "flowtrace: {message}\n{VIEW_USAGE}");
            return ExitCode::from(2);
        }
    };
    match view(&options) {
        Ok(report) => ExitCode::from(report.exit_code()),
        // `flowtrace view … | head`: the reader has seen enough.
        Err(ViewError::Write { path: None, error })
            if error.kind() == std::io::ErrorKind::BrokenPipe =>
        {
            ExitCode::SUCCESS
        }
        Err(err @ ViewError::Usage(_)) => {
            let _ = writeln!(std::io::stderr(), "flowtrace: {err}\n{VIEW_USAGE}");
            ExitCode::from(2)
        }
        Err(err) => {
            let _ = writeln!(std::io::stderr(), "flowtrace: {err}");
            ExitCode::from(2)
        }
    }
}

fn run(args: &[String]) -> Result<ExitCode, String> {
    let (command, rest) = args.split_first().ok_or("no command given")?;
    if command == "--help" || command == "-h" {
        println!("{USAGE}\n{VIEW_USAGE}");
        return Ok(ExitCode::SUCCESS);
    }
    if command != "replay" {
        return Err(format!("unknown command {command:?}"));
    }
    let mut file = None;
    let mut options = ReplayOptions::from_env();
    let mut rest = rest.iter();
    while let Some(arg) = rest.next() {
        let mut value = |flag: &str| {
            rest.next()
                .cloned()
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        options = match arg.as_str() {
            "--endpoint" => options.endpoint(value(arg)?),
            "--protocol" => options.protocol(protocol(&value(arg)?)?),
            "--header" => {
                let pair = value(arg)?;
                let (name, v) = pair
                    .split_once('=')
                    // The argument is not shown: it may be a token.
                    .ok_or("--header needs name=value; the argument (not shown) has no `=`")?;
                options.header(name, v)
            }
            "--timeout" => options.timeout(millis(arg, &value(arg)?)?),
            "--retry-for" => options.retry_for(millis(arg, &value(arg)?)?),
            "--certificate" => options.certificate(value(arg)?),
            "--from-line" => {
                let v = value(arg)?;
                options.from_line(
                    v.parse()
                        .map_err(|_| format!("--from-line {v:?} is not a line number"))?,
                )
            }
            flag if flag.starts_with("--") => return Err(format!("unknown option {flag:?}")),
            path if file.is_none() => {
                file = Some(path.to_owned());
                options
            }
            extra => return Err(format!("unexpected argument {extra:?}")),
        };
    }
    let file = file.ok_or("no file given")?;
    match replay(file.as_ref(), &options) {
        Ok(report) => {
            println!("{report}");
            for (line, reason) in &report.skipped_lines {
                let _ = writeln!(
                    std::io::stderr(),
                    "flowtrace: {file}:{line}: skipped: {reason}"
                );
            }
            let clean = report.skipped_lines.is_empty() && report.rejected_spans == 0;
            Ok(if clean {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Err(err @ ReplayError::Unreachable { .. }) => {
            let _ = writeln!(std::io::stderr(), "flowtrace: {file}: {err}");
            Ok(ExitCode::from(3))
        }
        Err(err) => Err(err.to_string()),
    }
}

fn protocol(value: &str) -> Result<Protocol, String> {
    match value {
        "grpc" => Ok(Protocol::Grpc),
        "http/protobuf" => Ok(Protocol::HttpProtobuf),
        "http/json" => Ok(Protocol::HttpJson),
        other => Err(format!(
            "--protocol {other:?}: accepted values are grpc, http/protobuf, http/json"
        )),
    }
}

fn millis(flag: &str, value: &str) -> Result<Duration, String> {
    match value.parse::<u64>() {
        Ok(ms) if ms > 0 => Ok(Duration::from_millis(ms)),
        _ => Err(format!(
            "{flag} {value:?}: accepted values are positive milliseconds"
        )),
    }
}
