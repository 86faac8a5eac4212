//! `--follow`: reading files while they are written, as `tail -f` does. A
//! line is taken only once its newline has arrived; a trace is drawn when
//! its root span arrives (flowtrace writes it after its children), or when
//! nothing has been added to it for [`IDLE`]. A file that shrinks was
//! truncated or replaced and is read again from the start.

use std::time::Duration;

use super::ViewError;
use super::pipeline::{FileStats, Sink, State};
use super::source::Source;

/// How often the files are looked at.
pub(crate) const POLL: Duration = Duration::from_millis(200);

/// A trace without a root is drawn once it stayed unchanged this long.
pub(crate) const IDLE: Duration = Duration::from_secs(2);

/// Follows until the process is stopped, or for `polls` rounds.
pub(crate) fn follow(
    state: &mut State<'_>,
    sources: &mut [Source],
    sink: &mut dyn Sink,
    polls: Option<usize>,
) -> Result<(), ViewError> {
    let names: Vec<String> = sources
        .iter()
        .map(|s| s.path.display().to_string())
        .collect();
    let _ = writeln!(
        state.diagnostics,
        "flowtrace: following {} (Ctrl-C to stop)",
        names.join(", ")
    );
    let mut round = 0;
    loop {
        let mut any = false;
        for source in sources.iter_mut() {
            let shrunk = !source.is_stdin()
                && std::fs::metadata(&source.path).is_ok_and(|m| m.len() < source.offset);
            if shrunk {
                let _ = writeln!(
                    state.diagnostics,
                    "flowtrace: {} was truncated; reading it from the start",
                    source.path.display()
                );
                source.reopen().map_err(|error| ViewError::Read {
                    path: source.path.clone(),
                    error,
                })?;
            }
            let mut stats = FileStats::new();
            any |= state.read(source, sink, true, &mut stats)?;
        }
        for trace in state.assembler.take_settled(IDLE) {
            state.emit(trace, sink)?;
        }
        round += 1;
        if polls.is_some_and(|p| round >= p) {
            return Ok(());
        }
        if !any {
            std::thread::sleep(POLL);
        }
    }
}
