//! The UDP greeting server: answers each datagram with `Hello, DATAGRAM!`, printing the original's
//! console lines.

mod common;

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use common::{HOST, UDP_PORT};
use greeting::{Log, UdpServer};

/// Serves the greeting protocol over UDP, like the tutorial's SocketUdpServer.py.
#[derive(Parser)]
#[command(name = "udp-server", version)]
struct Args {
    /// Address to listen on: IPv4, IPv6 (::1) or a host name
    #[arg(long, default_value = HOST, value_parser = common::parse_host)]
    host: String,
    /// Port to listen on; 0 takes any free port
    #[arg(short, long, default_value_t = UDP_PORT)]
    port: u16,
    /// Leave out the per-datagram lines
    #[arg(short, long)]
    quiet: bool,
}

fn main() -> ExitCode {
    common::exit_code("udp-server", run(Args::parse()))
}

fn run(args: Args) -> anyhow::Result<()> {
    let addr = common::host_port(&args.host, args.port);
    let server = UdpServer::bind((args.host.as_str(), args.port))
        .with_context(|| format!("failed to bind {addr}"))?;
    let bound = server
        .local_addr()
        .context("failed to read the bound address")?;
    Log::stderr().line(format_args!("listening on {bound}"));
    let log = Log::stdout();
    log.line(format_args!("Bind UDP on {}...", bound.port()));
    let server = server.log(if args.quiet { Log::quiet() } else { log });
    server
        .run()
        .with_context(|| format!("server on {bound} failed"))
}
