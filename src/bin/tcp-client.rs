//! The TCP greeting client: prints the server's welcome, then the reply to each name.

mod common;

use std::ffi::OsString;
use std::io;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use common::{HOST, TCP_PORT, Timeout};
use greeting::TcpClient;
use greeting::protocol::{EXIT, WELCOME};

/// Greets names over TCP, like the tutorial's SocketTcpClient.py.
#[derive(Parser)]
#[command(name = "tcp-client", version)]
struct Args {
    /// Server to connect to: IPv4, IPv6 (::1) or a host name
    #[arg(long, default_value = HOST, value_parser = common::parse_host)]
    host: String,
    /// Server port
    #[arg(short, long, default_value_t = TCP_PORT)]
    port: u16,
    /// Limit on connecting and on each reply
    #[arg(long, default_value_t = Timeout(TcpClient::DEFAULT_TIMEOUT))]
    timeout: Timeout,
    /// Read names from standard input, one per line, instead (a line "exit" ends the input)
    #[arg(long, conflicts_with = "names")]
    stdin: bool,
    /// Names to greet
    #[arg(default_values = ["Jaber", "Katy", "Betty", "huangxin"])]
    names: Vec<OsString>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    common::check_names::<Args>(&args.names, TcpClient::check_name);
    common::exit_code("tcp-client", run(args))
}

fn run(args: Args) -> anyhow::Result<()> {
    let addr = common::host_port(&args.host, args.port);
    let mut client = TcpClient::connect((args.host.as_str(), args.port), args.timeout.0)
        .with_context(|| format!("failed to connect to {addr}"))?;
    let mut out = io::stdout().lock();
    // connect has checked that the server's first words are the welcome.
    let reading = common::print_line(&mut out, WELCOME).context("failed to write to stdout")?;
    let mut greet = |name: &[u8]| -> anyhow::Result<bool> {
        let reply = client
            .greet(name)
            .with_context(|| format!("failed to greet {} at {addr}", common::shown_name(name)))?;
        common::print_line(&mut out, &reply).context("failed to write to stdout")
    };
    if reading {
        // A line "exit" on stdin ends the input; as an argument, main has refused it already.
        common::for_each_name(args.stdin, TcpClient::MAX_NAME, &args.names, |name| {
            if name == EXIT { Ok(false) } else { greet(name) }
        })?;
    }
    client.exit().context("failed to say exit")
}
