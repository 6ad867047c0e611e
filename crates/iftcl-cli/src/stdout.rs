//! The commands' results go to stdout through here. Rust ignores SIGPIPE, so a write to a closed
//! pipe fails with `BrokenPipe` instead of ending the process, and `println!` turns that failure
//! (and a full device's) into a panic. Every write here is checked instead:
//!
//! - a closed pipe (`iftcl similarity a b c | head -c1`) ends the command quietly with status
//!   141, what a shell reports for a process ended by SIGPIPE ([`BROKEN_PIPE_STATUS`]);
//! - any other failure (`> /dev/full`) is an error, "cannot write to stdout: ...", status 1.

use std::fmt;
use std::io::{self, StdoutLock, Write};

/// Exit status of a command whose stdout was closed: 128 + SIGPIPE (13), as a shell reports a
/// process that SIGPIPE ended.
pub const BROKEN_PIPE_STATUS: i32 = 141;

/// A write to stdout failed.
#[derive(Debug)]
pub struct StdoutError(pub io::Error);

impl fmt::Display for StdoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot write to stdout: {}", self.0)
    }
}

impl std::error::Error for StdoutError {}

/// Whether `e` comes from writing to a stdout whose reader has gone.
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.downcast_ref::<StdoutError>().is_some_and(|s| s.0.kind() == io::ErrorKind::BrokenPipe))
}

/// Stdout, locked, with checked writes. It also implements [`Write`] for streaming writers.
pub struct Stdout(StdoutLock<'static>);

/// The process's stdout.
pub fn stdout() -> Stdout {
    Stdout(io::stdout().lock())
}

impl Stdout {
    /// Writes one line.
    pub fn line(&mut self, args: fmt::Arguments<'_>) -> Result<(), StdoutError> {
        self.0.write_fmt(args).and_then(|()| self.0.write_all(b"\n")).map_err(StdoutError)
    }
}

impl Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

/// `outln!(out, "format", args...)`: one checked line to a [`Stdout`]; evaluates to
/// `Result<(), StdoutError>`.
#[macro_export]
macro_rules! outln {
    ($out:expr) => {
        $out.line(format_args!(""))
    };
    ($out:expr, $($arg:tt)*) => {
        $out.line(format_args!($($arg)*))
    };
}
