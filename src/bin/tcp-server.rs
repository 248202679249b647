//! The TCP greeting server: `Welcome!`, then `Hello, NAME!` for each message, one thread per
//! connection, printing the original's console lines.

mod common;

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use common::{Dur, HOST, TCP_PORT};
use greeting::{Log, TcpServer};

/// Serves the greeting protocol over TCP, like the tutorial's SocketTcpServer.py.
#[derive(Parser)]
#[command(name = "tcp-server", version)]
struct Args {
    /// Address to listen on: IPv4, IPv6 (::1) or a host name
    #[arg(long, default_value = HOST, value_parser = common::parse_host)]
    host: String,
    /// Port to listen on; 0 takes any free port
    #[arg(short, long, default_value_t = TCP_PORT)]
    port: u16,
    /// Pause before each reply (1s paces it like the original)
    #[arg(long, default_value_t = Dur(std::time::Duration::ZERO))]
    delay: Dur,
    /// Close a connection that sends or takes nothing for this long; 0 for never
    #[arg(long, default_value_t = Dur(TcpServer::DEFAULT_IDLE_TIMEOUT))]
    idle_timeout: Dur,
    /// Turn away new connections while this many are open
    #[arg(long, default_value_t = TcpServer::DEFAULT_MAX_CONNECTIONS,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    max_connections: usize,
    /// Leave out the per-connection lines
    #[arg(short, long)]
    quiet: bool,
}

fn main() -> ExitCode {
    common::exit_code("tcp-server", run(Args::parse()))
}

fn run(args: Args) -> anyhow::Result<()> {
    let addr = common::host_port(&args.host, args.port);
    let mut server = TcpServer::bind((args.host.as_str(), args.port))
        .with_context(|| format!("failed to bind {addr}"))?
        .delay(args.delay.0)
        .idle_timeout(Some(args.idle_timeout.0).filter(|d| !d.is_zero()))
        .max_connections(args.max_connections);
    // Before any thread starts and before clients are told the server is there.
    server.reserve_descriptors();
    let bound = server
        .local_addr()
        .context("failed to read the bound address")?;
    Log::stderr().line(format_args!("listening on {bound}"));
    let log = Log::stdout();
    log.line(format_args!("TCPServer is waiting for connection..."));
    let server = server.log(if args.quiet { Log::quiet() } else { log });
    server
        .run()
        .with_context(|| format!("server on {bound} failed"))
}
