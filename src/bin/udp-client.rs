//! The UDP greeting client: prints the reply to each name, trying again when a datagram is lost.

mod common;

use std::ffi::OsString;
use std::io::{self, ErrorKind};
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use common::{HOST, Timeout, UDP_PORT};
use greeting::UdpClient;

/// Greets names over UDP, like the tutorial's SocketUdpClient.py.
#[derive(Parser)]
#[command(name = "udp-client", version)]
struct Args {
    /// Server to send to: IPv4, IPv6 (::1) or a host name
    #[arg(long, default_value = HOST, value_parser = common::parse_host)]
    host: String,
    /// Server port
    #[arg(short, long, default_value_t = UDP_PORT)]
    port: u16,
    /// How long to wait for each reply before sending the name again
    #[arg(long, default_value_t = Timeout(UdpClient::DEFAULT_TIMEOUT))]
    timeout: Timeout,
    /// How many times to send a name again when its reply does not come
    #[arg(long, default_value_t = UdpClient::DEFAULT_RETRIES)]
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
    common::check_names::<Args>(&args.names, UdpClient::check_name);
    common::exit_code("udp-client", run(args))
}

fn run(args: Args) -> anyhow::Result<()> {
    let addr = common::host_port(&args.host, args.port);
    let mut client = UdpClient::connect((args.host.as_str(), args.port), args.timeout.0)
        .with_context(|| format!("failed to reach {addr}"))?
        .retries(args.retries);
    let mut out = io::stdout().lock();
    let greet = |name: &[u8]| -> anyhow::Result<bool> {
        let reply = match client.greet(name) {
            Ok(reply) => reply,
            // Its message already says it all: "no reply from ADDR after N tries".
            Err(err) if err.kind() == ErrorKind::TimedOut => return Err(err.into()),
            Err(err) => {
                return Err(err).with_context(|| {
                    format!("failed to greet {} at {addr}", common::shown_name(name))
                });
            }
        };
        common::print_line(&mut out, &reply).context("failed to write to stdout")
    };
    common::for_each_name(args.stdin, UdpClient::MAX_NAME, &args.names, greet)
}
