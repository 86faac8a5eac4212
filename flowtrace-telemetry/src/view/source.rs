//! Lines of an input file, numbered, without holding more than one line:
//! an overlong line is skipped unread, and a last line still being written
//! can be kept back until its newline arrives (`--follow`).

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read as _};
use std::path::{Path, PathBuf};

/// A line longer than this is skipped, not buffered (as `flowtrace
/// replay` does): one export request of the file exporter is a few hundred
/// KiB.
pub(crate) const MAX_LINE_BYTES: u64 = 64 << 20;

/// What [`Source::next_line`] found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Line<'a> {
    Text(usize, &'a [u8]),
    TooLong(usize),
    /// Nothing more for now (or at all).
    End,
}

pub(crate) struct Source {
    pub(crate) path: PathBuf,
    reader: Box<dyn BufRead>,
    buf: Vec<u8>,
    /// A partial last line read so far (only when following).
    partial: bool,
    pub(crate) line: usize,
    /// Bytes consumed, to notice a file that was truncated.
    pub(crate) offset: u64,
    pub(crate) bytes_seen: bool,
}

impl Source {
    /// Opens `path`; `-` is standard input.
    pub(crate) fn open(path: &Path) -> io::Result<Self> {
        let reader: Box<dyn BufRead> = if path == Path::new("-") {
            Box::new(BufReader::with_capacity(1 << 16, io::stdin()))
        } else {
            let file = File::open(path)?;
            if file.metadata()?.is_dir() {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "is a directory",
                ));
            }
            Box::new(BufReader::with_capacity(1 << 16, file))
        };
        Ok(Self {
            path: path.to_owned(),
            reader,
            buf: Vec::new(),
            partial: false,
            line: 0,
            offset: 0,
            bytes_seen: false,
        })
    }

    pub(crate) fn is_stdin(&self) -> bool {
        self.path == Path::new("-")
    }

    /// The next line. `hold_partial`: at the end of the file, a line without
    /// its newline is kept to be completed by a later call instead of being
    /// returned.
    pub(crate) fn next_line(&mut self, hold_partial: bool) -> io::Result<Line<'_>> {
        if !self.partial {
            self.buf.clear();
            if self.buf.capacity() > 1 << 20 {
                self.buf.shrink_to(1 << 16);
            }
        }
        let room = (MAX_LINE_BYTES + 1).saturating_sub(self.buf.len() as u64);
        let read = (&mut self.reader)
            .take(room)
            .read_until(b'\n', &mut self.buf)?;
        self.offset += read as u64;
        self.bytes_seen |= read > 0;
        if self.buf.len() as u64 > MAX_LINE_BYTES {
            self.line += 1;
            let skipped = skip_rest_of_line(&mut self.reader)?;
            self.offset += skipped;
            self.buf.clear();
            self.partial = false;
            return Ok(Line::TooLong(self.line));
        }
        if self.buf.is_empty() {
            return Ok(Line::End);
        }
        if self.buf.last() != Some(&b'\n') && hold_partial {
            self.partial = true;
            return Ok(Line::End);
        }
        self.partial = false;
        self.line += 1;
        let text = self.buf.strip_suffix(b"\n").unwrap_or(&self.buf);
        let text = text.strip_suffix(b"\r").unwrap_or(text);
        Ok(Line::Text(self.line, text))
    }

    /// Starts again from the top, after the file was truncated or replaced.
    pub(crate) fn reopen(&mut self) -> io::Result<()> {
        *self = Self::open(&self.path.clone())?;
        Ok(())
    }
}

fn skip_rest_of_line(reader: &mut dyn BufRead) -> io::Result<u64> {
    let mut skipped = 0;
    loop {
        let chunk = reader.fill_buf()?;
        if chunk.is_empty() {
            return Ok(skipped);
        }
        match chunk.iter().position(|&b| b == b'\n') {
            Some(at) => {
                reader.consume(at + 1);
                return Ok(skipped + at as u64 + 1);
            }
            None => {
                let n = chunk.len();
                reader.consume(n);
                skipped += n as u64;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    fn temp(name: &str, content: &[u8]) -> PathBuf {
        let path = std::env::temp_dir().join(format!(
            "flowtrace-view-source-{name}-{}.jsonl",
            std::process::id()
        ));
        std::fs::write(&path, content).unwrap();
        path
    }

    #[test]
    fn numbers_lines_and_holds_a_partial_one() {
        let path = temp("partial", b"a\r\n\nb");
        let mut source = Source::open(&path).unwrap();
        assert_eq!(source.next_line(true).unwrap(), Line::Text(1, b"a"));
        assert_eq!(source.next_line(true).unwrap(), Line::Text(2, b""));
        assert_eq!(
            source.next_line(true).unwrap(),
            Line::End,
            "b has no newline yet"
        );
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"c\n")
            .unwrap();
        assert_eq!(source.next_line(true).unwrap(), Line::Text(3, b"bc"));
        assert_eq!(source.next_line(false).unwrap(), Line::End);
        std::fs::remove_file(&path).ok();

        let path = temp("last", b"x\ny");
        let mut source = Source::open(&path).unwrap();
        source.next_line(false).unwrap();
        assert_eq!(
            source.next_line(false).unwrap(),
            Line::Text(2, b"y"),
            "without following, a last line without newline is a line"
        );
        std::fs::remove_file(&path).ok();
    }

    #[test]
    fn a_directory_is_an_error() {
        assert!(Source::open(&std::env::temp_dir()).is_err());
    }
}
