//! The TCP greeting client: prints the server's welcome, then the reply to each name.

use std::ffi::OsString;
use std::io;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use greeting::duration::parse_timeout;
use greeting::protocol::EXIT;
use greeting::{TcpClient, cli, tcp};

/// Greets names over TCP, like the tutorial's SocketTcpClient.py.
#[derive(Parser)]
#[command(name = "tcp-client", version)]
struct Args {
    /// Server to connect to: IPv4, IPv6 (::1) or a host name
    #[arg(long, default_value = "127.0.0.1", value_parser = cli::parse_host)]
    host: String,
    /// Server port
    #[arg(short, long, default_value_t = 9999)]
    port: u16,
    /// Limit on connecting and on each reply
    #[arg(long, default_value = "10s", value_parser = parse_timeout)]
    timeout: Duration,
    /// Read names from standard input, one per line, instead (a line "exit" ends the input)
    #[arg(long, conflicts_with = "names")]
    stdin: bool,
    /// Names to greet
    #[arg(default_values = ["Jaber", "Katy", "Betty", "huangxin"])]
    names: Vec<OsString>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    cli::check_names::<Args>(&args.names, tcp::check_name);
    cli::exit_code("tcp-client", run(args))
}

fn run(args: Args) -> anyhow::Result<()> {
    let addr = cli::host_port(&args.host, args.port);
    let (mut client, welcome) = TcpClient::connect((args.host.as_str(), args.port), args.timeout)
        .with_context(|| format!("failed to connect to {addr}"))?;
    let mut out = io::stdout().lock();
    let reading = cli::print_line(&mut out, &welcome).context("failed to write to stdout")?;
    let mut greet = |name: &[u8]| -> anyhow::Result<bool> {
        let reply = client
            .greet(name)
            .with_context(|| format!("failed to greet {} at {addr}", cli::shown_name(name)))?;
        cli::print_line(&mut out, &reply).context("failed to write to stdout")
    };
    if reading {
        // A line "exit" on stdin ends the input; as an argument, main has refused it already.
        cli::for_each_name(args.stdin, tcp::MAX_NAME, &args.names, |name| {
            if name == EXIT { Ok(false) } else { greet(name) }
        })?;
    }
    client.exit().context("failed to say exit")
}
