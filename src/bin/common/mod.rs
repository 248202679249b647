//! What the four binaries share, and only they need: the tutorial's defaults, durations and
//! hosts as typed on a command line, names from stdin, printing to a stdout that may have gone
//! away, and one line and an exit code for every failure. Each binary includes this module with
//! `mod common;` (a folder without `main.rs` is not a binary of its own) and uses its part.

#![allow(dead_code)]

#[path = "../../duration.rs"]
mod duration;

use std::ffi::OsString;
use std::fmt::{self, Display};
use std::io::{self, BufRead, Write};
use std::process::ExitCode;
use std::str::FromStr;
use std::time::Duration;

use greeting::Log;

/// The host the tutorial's programs use.
pub const HOST: &str = "127.0.0.1";

/// The tutorial's TCP port.
pub const TCP_PORT: u16 = 9999;

/// The tutorial's UDP port.
pub const UDP_PORT: u16 = 8888;

/// A duration as typed on a command line (`250ms`, `1s`, `5m`, `1h`, or seconds), shown the same
/// way in `--help`, so a default can come straight from the library's constant.
#[derive(Debug, Clone, Copy)]
pub struct Dur(pub Duration);

impl FromStr for Dur {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        duration::parse_duration(text).map(Dur)
    }
}

impl Display for Dur {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        duration::Human(self.0).fmt(f)
    }
}

/// A [`Dur`] that must be longer than zero: a timeout must allow some time.
#[derive(Debug, Clone, Copy)]
pub struct Timeout(pub Duration);

impl FromStr for Timeout {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        duration::parse_timeout(text).map(Timeout)
    }
}

impl Display for Timeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        duration::Human(self.0).fmt(f)
    }
}

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

/// Parses a `--host` value: an IPv4 or IPv6 address or a host name, IPv6 also in the bracketed
/// form copied from URLs (`[::1]`).
///
/// # Errors
///
/// A message for an empty value, unbalanced brackets, or a port in the host (`127.0.0.1:9999`,
/// `[::1]:9999`), which goes in `--port` instead.
pub fn parse_host(text: &str) -> Result<String, String> {
    let host = match text.strip_prefix('[') {
        Some(rest) => match rest.split_once(']') {
            Some((inside, "")) if inside.contains(':') => inside,
            Some((_, after)) if after.starts_with(':') => return Err(port_in_host(text)),
            _ => return Err(format!("'{text}' is not a host: a bracket is not closed")),
        },
        None => text,
    };
    if host.is_empty() {
        return Err("a host cannot be empty".to_string());
    }
    // One colon is a host and a port; an IPv6 address has at least two.
    if host.matches(':').count() == 1 {
        return Err(port_in_host(text));
    }
    Ok(host.to_string())
}

fn port_in_host(text: &str) -> String {
    format!("'{text}' holds a port: give the host alone and the port with --port")
}

/// Shows a name in a message as `'Ada'`: lossy UTF-8, cut short after 60 characters with its
/// length said, so a long name never floods a terminal.
pub fn shown_name(name: &[u8]) -> String {
    const LONGEST: usize = 60;
    let text = String::from_utf8_lossy(name);
    match text.char_indices().nth(LONGEST) {
        Some((cut, _)) => format!("'{}'... ({} bytes)", &text[..cut], name.len()),
        None => format!("'{text}'"),
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
///
/// A line longer than `longest` bytes (without its ending) is an `InvalidData` error, found
/// after reading at most `longest + 2` bytes of it, so endless input costs bounded memory.
pub fn names(mut input: impl BufRead, longest: usize) -> impl Iterator<Item = io::Result<Vec<u8>>> {
    let mut done = false;
    std::iter::from_fn(move || {
        while !done {
            let mut line = Vec::new();
            let limit = longest.saturating_add(2) as u64;
            match io::Read::take(&mut input, limit).read_until(b'\n', &mut line) {
                Ok(0) => done = true,
                Ok(_) => {
                    let ended = line.last() == Some(&b'\n');
                    if ended {
                        line.pop();
                        if line.last() == Some(&b'\r') {
                            line.pop();
                        }
                    }
                    if line.len() > longest || (!ended && line.len() as u64 == limit) {
                        done = true;
                        return Some(Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            format!(
                                "a line is longer than {longest} bytes, the longest name the \
                                 server can answer"
                            ),
                        )));
                    }
                    if !line.is_empty() {
                        return Some(Ok(line));
                    }
                }
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => {
                    done = true;
                    return Some(Err(err));
                }
            }
        }
        None
    })
}

/// Calls `greet` with each name in turn, from standard input (as [`names`] reads it, up to
/// `longest` bytes a name) when `from_stdin` is set, else from `args`, until `greet` returns
/// false or fails.
///
/// # Errors
///
/// The first error from `greet`, or a failure to read stdin (`failed to read stdin: …`).
pub fn for_each_name<E: From<io::Error>>(
    from_stdin: bool,
    longest: usize,
    args: &[OsString],
    mut greet: impl FnMut(&[u8]) -> Result<bool, E>,
) -> Result<(), E> {
    if from_stdin {
        for name in names(io::stdin().lock(), longest) {
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
        let names: Vec<Vec<u8>> = names(input, 10).collect::<io::Result<_>>().unwrap();
        assert_eq!(names, [&b"Ada"[..], "Zoë".as_bytes(), b"last"]);
    }

    #[test]
    fn names_stop_at_a_line_longer_than_the_longest() {
        let input = &b"1234\r\n12345\n123456\nnever\n"[..];
        let mut names = names(input, 5);
        assert_eq!(names.next().unwrap().unwrap(), b"1234");
        assert_eq!(names.next().unwrap().unwrap(), b"12345");
        let err = names.next().unwrap().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(err.to_string().contains("longer than 5 bytes"), "{err}");
        assert!(names.next().is_none());
    }

    #[test]
    fn endless_input_is_read_only_up_to_the_limit() {
        let mut endless = io::BufReader::new(io::repeat(b'a'));
        let err = names(&mut endless, 1000).next().unwrap().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn long_names_are_cut_short() {
        assert_eq!(shown_name(b"Jaber"), "'Jaber'");
        let long = shown_name("é".repeat(100).as_bytes());
        assert_eq!(long, format!("'{}'... (200 bytes)", "é".repeat(60)));
    }

    #[test]
    fn hosts_take_brackets_but_not_ports() {
        assert_eq!(parse_host("127.0.0.1").unwrap(), "127.0.0.1");
        assert_eq!(parse_host("::1").unwrap(), "::1");
        assert_eq!(parse_host("[::1]").unwrap(), "::1");
        assert_eq!(parse_host("localhost").unwrap(), "localhost");
        for with_port in ["127.0.0.1:20020", "[::1]:20020", "localhost:80"] {
            let err = parse_host(with_port).unwrap_err();
            assert!(err.contains("--port"), "{with_port}: {err}");
        }
        for bad in ["", "[::1", "[]", "[localhost]"] {
            assert!(parse_host(bad).is_err(), "{bad}");
        }
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
