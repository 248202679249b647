//! The TCP greeting server: `Welcome!`, then `Hello, NAME!` for each message, one thread per
//! connection, printing the original's console lines.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use greeting::duration::parse_duration;
use greeting::log::report;
use greeting::{Log, TcpServer, cli};

/// Serves the greeting protocol over TCP, like the tutorial's SocketTcpServer.py.
#[derive(Parser)]
#[command(name = "tcp-server", version)]
struct Args {
    /// Address to listen on: IPv4, IPv6 (::1) or a host name
    #[arg(long, default_value = "127.0.0.1", value_parser = cli::parse_host)]
    host: String,
    /// Port to listen on; 0 takes any free port
    #[arg(short, long, default_value_t = 9999)]
    port: u16,
    /// Pause before each reply (1s paces it like the original)
    #[arg(long, default_value = "0", value_parser = parse_duration)]
    delay: Duration,
    /// Close a connection that sends or takes nothing for this long; 0 for never
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    idle_timeout: Duration,
    /// Turn away new connections while this many are open
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..))]
    max_connections: u32,
    /// Leave out the per-connection lines
    #[arg(short, long)]
    quiet: bool,
}

fn main() -> ExitCode {
    cli::exit_code("tcp-server", run(Args::parse()))
}

fn run(args: Args) -> anyhow::Result<()> {
    let addr = cli::host_port(&args.host, args.port);
    let server = TcpServer::bind((args.host.as_str(), args.port))
        .with_context(|| format!("failed to bind {addr}"))?
        .delay(args.delay)
        .idle_timeout(Some(args.idle_timeout).filter(|d| !d.is_zero()))
        .max_connections(args.max_connections as usize);
    let bound = server
        .local_addr()
        .context("failed to read the bound address")?;
    report(format_args!("listening on {bound}"));
    let log = Log::stdout();
    log.line(format_args!("TCPServer is waiting for connection..."));
    let server = server.log(if args.quiet { Log::quiet() } else { log });
    server
        .run()
        .with_context(|| format!("server on {bound} failed"))
}
