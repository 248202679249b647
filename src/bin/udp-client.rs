//! The UDP greeting client: prints the reply to each name, trying again when a datagram is lost.

use std::ffi::OsString;
use std::io::{self, ErrorKind};
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use greeting::UdpClient;
use greeting::cli::{self, Dur, Endpoint, Program};

/// Greets names over UDP, like the tutorial's SocketUdpClient.py.
#[derive(Parser)]
#[command(name = "udp-client", version)]
struct Args {
    #[command(flatten)]
    to: Endpoint,
    /// How long to wait for each reply before sending the name again (at least 10ms)
    #[arg(long, default_value_t = Dur(UdpClient::DEFAULT_TIMEOUT), value_parser = Dur::positive)]
    timeout: Dur,
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
    cli::exit_code(Program::UDP_CLIENT, run(cli::parse(Program::UDP_CLIENT)))
}

fn run(args: Args) -> anyhow::Result<()> {
    let addr = args.to.shown();
    let mut client = UdpClient::connect(args.to.addr(), args.timeout.0)
        .with_context(|| format!("failed to reach {addr}"))?
        .retries(args.retries);
    let mut out = io::stdout().lock();
    let greet = |name: &[u8]| -> anyhow::Result<bool> {
        let failed = || format!("failed to greet {} at {addr}", cli::shown_name(name));
        let reply = match client.greet(name) {
            Ok(reply) => reply,
            // Its message already says it all: "no reply from ADDR after N tries".
            Err(err) if err.kind() == ErrorKind::TimedOut => return Err(err.into()),
            Err(err) => return Err(err).with_context(failed),
        };
        cli::print_line(&mut out, &reply).context("failed to write to stdout")
    };
    cli::for_each_name(args.stdin, UdpClient::MAX_NAME, &args.names, greet)
}
