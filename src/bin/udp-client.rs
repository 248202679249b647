//! The UDP greeting client: prints the reply to each name, trying again when a datagram is lost.

use std::ffi::OsString;
use std::io::{self, ErrorKind};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use greeting::duration::parse_timeout;
use greeting::{UdpClient, cli, udp};

/// Greets names over UDP, like the tutorial's SocketUdpClient.py.
#[derive(Parser)]
#[command(name = "udp-client", version)]
struct Args {
    /// Server to send to: IPv4, IPv6 (::1) or a host name
    #[arg(long, default_value = "127.0.0.1", value_parser = cli::parse_host)]
    host: String,
    /// Server port
    #[arg(short, long, default_value_t = 8888)]
    port: u16,
    /// How long to wait for each reply before sending the name again
    #[arg(long, default_value = "1s", value_parser = parse_timeout)]
    timeout: Duration,
    /// How many times to send a name again when its reply does not come
    #[arg(long, default_value_t = udp::DEFAULT_RETRIES)]
    retries: u32,
    /// Read names from standard input, one per line, instead
    #[arg(long, conflicts_with = "names")]
    stdin: bool,
    /// Names to greet
    #[arg(default_values = ["Michael", "Tracy", "Sarah"])]
    names: Vec<OsString>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    cli::check_names::<Args>(&args.names, udp::check_name);
    cli::exit_code("udp-client", run(args))
}

fn run(args: Args) -> anyhow::Result<()> {
    let addr = cli::host_port(&args.host, args.port);
    let mut client =
        UdpClient::connect((args.host.as_str(), args.port), args.timeout, args.retries)
            .with_context(|| format!("failed to reach {addr}"))?;
    let mut out = io::stdout().lock();
    let greet = |name: &[u8]| -> anyhow::Result<bool> {
        let reply = match client.request(name) {
            Ok(reply) => reply,
            // Its message already says it all: "no reply from ADDR after N tries".
            Err(err) if err.kind() == ErrorKind::TimedOut => return Err(err.into()),
            Err(err) => {
                return Err(err).with_context(|| {
                    format!("failed to greet {} at {addr}", cli::shown_name(name))
                });
            }
        };
        cli::print_line(&mut out, &reply).context("failed to write to stdout")
    };
    cli::for_each_name(args.stdin, udp::MAX_NAME, &args.names, greet)
}
