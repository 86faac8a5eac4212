//! Where the terminal view draws: the width to fit and whether to colour.
//! Colours only on a terminal, never with `NO_COLOR` set (no-color.org);
//! the width from `--width`, else `COLUMNS`, else the terminal's, else 100.

use std::io::IsTerminal as _;

/// The width when the output is not a terminal and nothing says otherwise.
pub(crate) const DEFAULT_WIDTH: usize = 100;

/// `--color`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ColorChoice {
    /// On a terminal, unless `NO_COLOR` is set (the default).
    #[default]
    Auto,
    /// Always, even into a pipe.
    Always,
    /// Never.
    Never,
}

pub(crate) fn use_color(choice: ColorChoice, no_color: Option<&str>, stdout_is_tty: bool) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => stdout_is_tty && no_color.is_none_or(str::is_empty),
    }
}

pub(crate) fn stdout_is_tty() -> bool {
    std::io::stdout().is_terminal()
}

/// `explicit`, else a valid `COLUMNS`, else the terminal's width.
pub(crate) fn width(explicit: Option<usize>, columns: Option<&str>, stdout_is_tty: bool) -> usize {
    explicit
        .or_else(|| {
            columns
                .and_then(|c| c.trim().parse().ok())
                .filter(|&c| c > 0)
        })
        .or_else(|| stdout_is_tty.then(terminal_width).flatten())
        .unwrap_or(DEFAULT_WIDTH)
}

#[cfg(any(target_os = "linux", target_os = "macos"))]
fn terminal_width() -> Option<usize> {
    #[repr(C)]
    struct Winsize {
        rows: u16,
        cols: u16,
        x: u16,
        y: u16,
    }
    #[cfg(target_os = "linux")]
    const TIOCGWINSZ: std::ffi::c_ulong = 0x5413;
    #[cfg(target_os = "macos")]
    const TIOCGWINSZ: std::ffi::c_ulong = 0x4008_7468;
    unsafe extern "C" {
        fn ioctl(fd: std::ffi::c_int, request: std::ffi::c_ulong, ...) -> std::ffi::c_int;
    }
    let mut size = Winsize {
        rows: 0,
        cols: 0,
        x: 0,
        y: 0,
    };
    // SAFETY: TIOCGWINSZ writes one `struct winsize` (four u16) through the
    // pointer, which points at one; fd 1 may be anything, and ioctl only
    // reports an error for a non-terminal.
    let rc = unsafe { ioctl(1, TIOCGWINSZ, &mut size as *mut Winsize) };
    (rc == 0 && size.cols > 0).then_some(usize::from(size.cols))
}

#[cfg(not(any(target_os = "linux", target_os = "macos")))]
fn terminal_width() -> Option<usize> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_rules() {
        for (choice, no_color, tty, expected, reason) in [
            (ColorChoice::Auto, None, true, true, "a terminal"),
            (ColorChoice::Auto, None, false, false, "a pipe"),
            (ColorChoice::Auto, Some("1"), true, false, "NO_COLOR set"),
            (
                ColorChoice::Auto,
                Some(""),
                true,
                true,
                "NO_COLOR empty counts as unset",
            ),
            (
                ColorChoice::Always,
                Some("1"),
                false,
                true,
                "--color always",
            ),
            (ColorChoice::Never, None, true, false, "--color never"),
        ] {
            assert_eq!(use_color(choice, no_color, tty), expected, "{reason}");
        }
    }

    #[test]
    fn width_rules() {
        assert_eq!(width(Some(70), Some("120"), false), 70, "--width wins");
        assert_eq!(width(None, Some("120"), false), 120, "then COLUMNS");
        assert_eq!(
            width(None, Some("wide"), false),
            DEFAULT_WIDTH,
            "a bad COLUMNS is ignored"
        );
        assert_eq!(width(None, None, false), DEFAULT_WIDTH);
    }
}
