//! The four binaries' command-line glue: the tutorial's defaults, the host and port arguments,
//! names from arguments or stdin, printing to a stdout that may have gone away, and one line and
//! an exit code for every failure.
//!
//! It is not part of the library's API. It lives here, behind the default `cli` feature, so that
//! it is compiled and tested once rather than once per binary; it is public only because each
//! binary is a crate of its own, hidden from the docs, and may change in any release.

mod endpoint;
mod names;

use std::ffi::OsString;
use std::fmt::Display;
use std::io::{self, Write};
use std::process::ExitCode;

pub use crate::duration::Dur;
pub use endpoint::{Connect, Endpoint, Listen};
pub use names::{for_each_name, shown_name};

use crate::Log;

/// The host the tutorial's programs use.
pub const HOST: &str = "127.0.0.1";

/// The tutorial's TCP port.
pub const TCP_PORT: u16 = 9999;

/// The tutorial's UDP port.
pub const UDP_PORT: u16 = 8888;

/// Turns what a binary's `run` returned into its exit code: 0, or 1 after one line on stderr,
/// `PROGRAM: what failed: why` (the error shown with `{:#}`, so an `anyhow` chain stays on one
/// line and no backtrace is printed, whatever `RUST_BACKTRACE` says).
pub fn exit_code(program: &str, result: Result<(), impl Display>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            let stderr = Log::stderr();
            stderr.line(format_args!("{program}: {err:#}"));
            // The process ends next: the line must be out first.
            stderr.flush();
            ExitCode::FAILURE
        }
    }
}

/// Checks each name given as an argument with `check`, and ends the program with clap's usage
/// error (exit 2) for the first it refuses, as for any other bad argument.
pub fn check_names<A: clap::CommandFactory>(
    names: &[OsString],
    check: fn(&[u8]) -> Result<(), String>,
) {
    for name in names {
        if let Err(msg) = check(name.as_encoded_bytes()) {
            A::command()
                .error(clap::error::ErrorKind::InvalidValue, msg)
                .exit();
        }
    }
}

/// Writes `bytes` and a newline to `out` in one call and flushes it; returns false when the
/// reader has gone (a closed pipe, as after `| head -1`), which should end a client quietly, as it
/// ends `cat`.
///
/// # Errors
///
/// Any other write error.
pub fn print_line(out: &mut impl Write, bytes: &[u8]) -> io::Result<bool> {
    let mut line = Vec::with_capacity(bytes.len() + 1);
    line.extend_from_slice(bytes);
    line.push(b'\n');
    match out.write_all(&line).and_then(|()| out.flush()) {
        Ok(()) => Ok(true),
        Err(err) if err.kind() == io::ErrorKind::BrokenPipe => Ok(false),
        Err(err) => Err(err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct ClosedPipe;

    impl Write for ClosedPipe {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::ErrorKind::BrokenPipe.into())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn print_line_reports_a_gone_reader_as_false() {
        assert!(!print_line(&mut ClosedPipe, b"Hello, Ada!").unwrap());
    }

    #[test]
    fn print_line_adds_the_newline() {
        let mut out = Vec::new();
        assert!(print_line(&mut out, b"Hello, \xff!").unwrap());
        assert_eq!(out, b"Hello, \xff!\n");
    }
}
