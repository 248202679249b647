//! What the four binaries share beyond clap: naming an address as the user typed it, reading
//! names from standard input, and printing reply lines to a stdout that may have gone away.

use std::ffi::OsString;
use std::fmt::Display;
use std::io::{self, BufRead, Write};
use std::process::ExitCode;

use crate::log::report;

/// Turns what a binary's `run` returned into its exit code: 0, or 1 after one line on stderr,
/// `PROGRAM: what failed: why` (the error shown with `{:#}`, so an `anyhow` chain stays on one
/// line and no backtrace is printed, whatever `RUST_BACKTRACE` says).
pub fn exit_code(program: &str, result: Result<(), impl Display>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            report(format_args!("{program}: {err:#}"));
            ExitCode::FAILURE
        }
    }
}

/// Joins a host and a port the way they are written in an address: `127.0.0.1:9999`,
/// `[::1]:9999`, `localhost:9999`.
pub fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Returns the names in `input`, one per line: a trailing `\r` is dropped and empty lines are
/// skipped. Lines are read as they come, so a person can type them at a terminal.
pub fn names(input: impl BufRead) -> impl Iterator<Item = io::Result<Vec<u8>>> {
    input.split(b'\n').filter_map(|line| match line {
        Ok(mut name) => {
            if name.last() == Some(&b'\r') {
                name.pop();
            }
            (!name.is_empty()).then_some(Ok(name))
        }
        Err(err) => Some(Err(err)),
    })
}

/// Calls `greet` with each name in turn, from standard input (as [`names`] reads it) when
/// `from_stdin` is set, else from `args`, until `greet` returns false or fails.
///
/// # Errors
///
/// The first error from `greet`, or a failure to read stdin (`failed to read stdin: …`).
pub fn for_each_name<E: From<io::Error>>(
    from_stdin: bool,
    args: &[OsString],
    mut greet: impl FnMut(&[u8]) -> Result<bool, E>,
) -> Result<(), E> {
    if from_stdin {
        for name in names(io::stdin().lock()) {
            let name = name.map_err(|err| {
                io::Error::new(err.kind(), format!("failed to read stdin: {err}"))
            })?;
            if !greet(&name)? {
                break;
            }
        }
    } else {
        for name in args {
            if !greet(name.as_encoded_bytes())? {
                break;
            }
        }
    }
    Ok(())
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

    #[test]
    fn ipv6_hosts_get_brackets() {
        assert_eq!(host_port("127.0.0.1", 9999), "127.0.0.1:9999");
        assert_eq!(host_port("::1", 80), "[::1]:80");
        assert_eq!(host_port("localhost", 8888), "localhost:8888");
    }

    #[test]
    fn names_drop_cr_and_skip_blank_lines() {
        let input = &b"Ada\r\n\nZo\xc3\xab\n\r\nlast"[..];
        let names: Vec<Vec<u8>> = names(input).collect::<io::Result<_>>().unwrap();
        assert_eq!(names, [&b"Ada"[..], "Zoë".as_bytes(), b"last"]);
    }

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
