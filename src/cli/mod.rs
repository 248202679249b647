//! The four binaries' command-line glue: the tutorial's defaults, the host and port arguments,
//! names from arguments or stdin, printing to a stdout that may have gone away, and one line and
//! an exit code for every failure.
//!
//! It is not part of the library's API. It lives here, behind the default `cli` feature, so that
//! it is compiled and tested once rather than once per binary; it is public only because each
//! binary is a crate of its own, hidden from the docs, and may change in any release.

mod endpoint;
mod habit;
mod names;

use std::ffi::OsString;
use std::io::{self, Write};
use std::process::ExitCode;

use clap::error::ErrorKind;
use clap::{ArgMatches, Parser};

pub use crate::duration::Dur;
pub use endpoint::Endpoint;
pub use names::{for_each_name, shown_name};

use crate::{Log, TcpClient, UdpClient};

/// The host the tutorial's programs use.
const HOST: &str = "127.0.0.1";

/// The check a client makes of a name before sending it.
type NameCheck = fn(&[u8]) -> Result<(), String>;

/// One of the four programs: its name, its protocol's port, what it does with `--host`, and
/// which names it can send.
#[derive(Debug, Clone, Copy)]
pub struct Program {
    /// The program's name, as its messages begin.
    pub name: &'static str,
    /// The tutorial's port for the program's protocol.
    port: &'static str,
    /// What a client does to its server, and so what a server lets other machines do.
    verb: &'static str,
    /// The check a name given as an argument must pass: a client's own; none for a server.
    check: Option<NameCheck>,
}

impl Program {
    /// `tcp-server`
    pub const TCP_SERVER: Program = Program::new("tcp-server", "9999", "connect", None);
    /// `tcp-client`
    pub const TCP_CLIENT: Program =
        Program::new("tcp-client", "9999", "connect", Some(TcpClient::check_name));
    /// `udp-server`
    pub const UDP_SERVER: Program = Program::new("udp-server", "8888", "send", None);
    /// `udp-client`
    pub const UDP_CLIENT: Program =
        Program::new("udp-client", "8888", "send", Some(UdpClient::check_name));

    const fn new(
        name: &'static str,
        port: &'static str,
        verb: &'static str,
        check: Option<NameCheck>,
    ) -> Self {
        Program {
            name,
            port,
            verb,
            check,
        }
    }

    /// What `--host` and `--port` mean to the program.
    fn helps(self) -> (String, &'static str) {
        let what = "IPv4, IPv6 (::1) or a host name";
        match self.check {
            None => (
                format!("Address to listen on: {what}"),
                "Port to listen on; 0 takes any free port",
            ),
            Some(_) => (format!("Server to {} to: {what}", self.verb), "Server port"),
        }
    }

    /// What `--help` ends with: examples, then the exit codes.
    fn after_help(self) -> String {
        let (name, port, verb) = (self.name, self.port, self.verb);
        match self.check {
            None => format!(
                "Examples:\n  \
                 {name}                    listen on 127.0.0.1:{port}, as the tutorial's server\n  \
                 {name} --host 0.0.0.0     let other machines {verb} too (:: for IPv6 as well)\n\n\
                 Stop it with Ctrl+C.\n\
                 Exit codes: 1 it cannot serve (one line on stderr, such as a port in use), 2 \
                 a usage error."
            ),
            Some(_) => format!(
                // `blank` indents a description on a line of its own to the column of the others.
                "Examples:\n  \
                 {name}                           greet the tutorial's names at 127.0.0.1:{port}\n  \
                 {name} --host 192.0.2.1 Ada      greet Ada at 192.0.2.1:{port}\n  \
                 {name} --host 127.0.0.1 --port {port} 127.0.0.1\n\
                 {blank:39}greet the name \"127.0.0.1\"\n\n\
                 A name that looks like where the server is (127.0.0.1, localhost:{port}, {port}) is\n\
                 refused, as `{name} 127.0.0.1 {port}` is nc's way to name a server: give both\n\
                 --host and --port to greet such a name.\n\n\
                 Exit codes: 0 every name greeted, 1 a failure (one line on stderr), 2 a usage \
                 error{connected}.",
                blank = "",
                connected = match name {
                    "tcp-client" => ", 3 connected, but the server did not greet as it should",
                    _ => "",
                }
            ),
        }
    }
}

/// Parses the command line of `program` into its arguments `A`, which flatten an [`Endpoint`]
/// and, for a client, hold its names as `names`.
///
/// It ends the program with clap's usage error (exit 2) for a bad argument, a name the client
/// refuses among them.
pub fn parse<A: Parser>(program: Program) -> A {
    let (host, port) = program.helps();
    let mut command = A::command()
        .after_help(program.after_help())
        .mut_arg("host", |arg| arg.help(host))
        .mut_arg("port", |arg| {
            arg.help(port).required(false).default_value(program.port)
        });
    let matches = command.get_matches_mut();
    if let Some(check) = program.check {
        let given = habit::Given {
            host: typed::<String>(&matches, "host").map(String::as_str),
            port: typed::<u16>(&matches, "port").copied(),
        };
        let names = || matches.get_many::<OsString>("names").into_iter().flatten();
        let texts = names().filter_map(|name| name.to_str());
        // The first usage error: a name that looks like where the server is, then one the
        // client refuses.
        let misplaced = habit::misplaced(program.name, texts, given);
        let refused = || names().find_map(|name| check(name.as_encoded_bytes()).err());
        if let Some(msg) = misplaced.or_else(refused) {
            command.error(ErrorKind::InvalidValue, msg).exit();
        }
    }
    A::from_arg_matches(&matches).unwrap_or_else(|err| err.format(&mut command).exit())
}

/// The value of the argument `id` if it was typed on the command line, not defaulted.
fn typed<'a, T: Clone + Send + Sync + 'static>(matches: &'a ArgMatches, id: &str) -> Option<&'a T> {
    let typed = matches.value_source(id) == Some(clap::parser::ValueSource::CommandLine);
    matches.get_one::<T>(id).filter(|_| typed)
}

/// What a client that reached its server failed at, as the context of the error: it exits
/// with [`CONNECTED_BUT`], not 1, so that a script tells "no connection" from "not a greeting
/// server, or one that failed".
#[derive(Debug)]
pub struct Connected(pub String);

impl std::fmt::Display for Connected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The exit code of a client that connected, but whose server did not greet as it should.
pub const CONNECTED_BUT: u8 = 3;

/// Turns what a binary's `run` returned into its exit code: 0, or after one line on stderr,
/// `PROGRAM: what failed: why` (the error shown with `{:#}`, so an `anyhow` chain stays on one
/// line and no backtrace is printed, whatever `RUST_BACKTRACE` says), 1, or [`CONNECTED_BUT`]
/// for a failure in the context of [`Connected`].
pub fn exit_code(program: Program, result: anyhow::Result<()>) -> ExitCode {
    let Err(err) = result else {
        return ExitCode::SUCCESS;
    };
    let stderr = Log::stderr();
    stderr.line(format_args!("{}: {err:#}", program.name));
    // The process ends next: the line must be out first.
    stderr.flush();
    match err.downcast_ref::<Connected>() {
        Some(_) => ExitCode::from(CONNECTED_BUT),
        None => ExitCode::FAILURE,
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
    use std::io::IsTerminal;
    print_to(out, bytes, cfg!(windows) && io::stdout().is_terminal())
}

/// [`print_line`], told whether `out` is a Windows console. Rust writes to one in UTF-16 and
/// refuses bytes that are not UTF-8 (`InvalidData`), such as a Chinese name piped in from cmd in
/// its code page (GBK): a console gets such bytes as U+FFFD (�) instead, so the reply is printed,
/// not a failure. Into a pipe or a file, and on other systems, the bytes go out unchanged.
fn print_to(out: &mut impl Write, bytes: &[u8], windows_console: bool) -> io::Result<bool> {
    let line = match windows_console {
        true => format!("{}\n", String::from_utf8_lossy(bytes)).into_bytes(),
        false => [bytes, b"\n"].concat(),
    };
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
    fn the_default_ports_are_the_tutorials() {
        for (program, port) in [
            (Program::TCP_SERVER, 9999),
            (Program::TCP_CLIENT, 9999),
            (Program::UDP_SERVER, 8888),
            (Program::UDP_CLIENT, 8888),
        ] {
            assert_eq!(program.port.parse::<u16>(), Ok(port));
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

    /// A Windows console as Rust's stdout writes to it: UTF-8 only, `InvalidData` otherwise.
    struct WindowsConsole(Vec<u8>);

    impl Write for WindowsConsole {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            std::str::from_utf8(bytes).map_err(|_| io::ErrorKind::InvalidData)?;
            self.0.write(bytes)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// 张三 in GBK, as cmd pipes it, comes back in the reply: a Windows console shows it as
    /// replacement characters instead of failing; UTF-8 replies are printed unchanged.
    #[test]
    fn a_windows_console_gets_bytes_it_cannot_show_replaced() {
        let gbk = b"Hello, \xd5\xc5\xc8\xfd!";
        let mut console = WindowsConsole(Vec::new());
        assert_eq!(
            print_to(&mut console, gbk, false).map_err(|err| err.kind()),
            Err(io::ErrorKind::InvalidData),
        );
        assert!(print_to(&mut console, gbk, true).unwrap());
        assert!(print_to(&mut console, "Hello, 张三!".as_bytes(), true).unwrap());
        assert_eq!(
            String::from_utf8(console.0).unwrap(),
            "Hello, \u{fffd}\u{fffd}\u{fffd}\u{fffd}!\nHello, 张三!\n"
        );
    }
}
