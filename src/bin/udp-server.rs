//! The UDP greeting server: answers each datagram with `Hello, DATAGRAM!`, printing the original's
//! console lines.

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use greeting::cli::{self, Endpoint, Program};
use greeting::{Log, ServerId, UdpServer};

/// Serves the greeting protocol over UDP, like the tutorial's SocketUdpServer.py.
#[derive(Parser)]
#[command(name = "udp-server", version)]
struct Args {
    #[command(flatten)]
    at: Endpoint,
    /// A name to say before each reply (as [s1] Hello, NAME!), so that clients behind a load balancer can
    /// tell which server answered: 1 to 32 bytes, no spaces or brackets
    #[arg(long, value_name = "NAME", value_parser = ServerId::new)]
    id: Option<ServerId>,
    /// Leave out the per-datagram lines
    #[arg(short, long)]
    quiet: bool,
}

fn main() -> ExitCode {
    cli::exit_code(Program::UDP_SERVER, run(cli::parse(Program::UDP_SERVER)))
}

fn run(args: Args) -> anyhow::Result<()> {
    let server = UdpServer::bind(args.at.addr())
        .with_context(|| format!("failed to bind {}", args.at.shown()))?
        .id(args.id.as_ref());
    let bound = server.local_addr();
    let bound = bound.context("failed to read the bound address")?;
    Log::stderr().line(format_args!("listening on {bound}"));
    let log = Log::stdout();
    log.line(format_args!("Bind UDP on {}...", bound.port()));
    let server = server.log(if args.quiet { Log::quiet() } else { log });
    let ran = server.run();
    ran.with_context(|| format!("server on {bound} failed"))
}
