//! The TCP greeting server: `Welcome!`, then `Hello, NAME!` for each message, one thread per
//! connection, printing the original's console lines.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use greeting::cli::{self, Dur, Endpoint, Program};
use greeting::{Log, ServerId, TcpServer};

/// Serves the greeting protocol over TCP, like the tutorial's SocketTcpServer.py.
#[derive(Parser)]
#[command(name = "tcp-server", version)]
struct Args {
    #[command(flatten)]
    at: Endpoint,
    /// Pause before each reply (1s paces it like the original)
    #[arg(long, default_value_t = Dur(Duration::ZERO))]
    delay: Dur,
    /// Close a connection that sends or takes nothing for this long; 0 for never
    #[arg(long, default_value_t = Dur(TcpServer::DEFAULT_IDLE_TIMEOUT))]
    idle_timeout: Dur,
    /// Turn away new connections while this many are open
    #[arg(long, default_value_t = TcpServer::DEFAULT_MAX_CONNECTIONS,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    max_connections: usize,
    /// Expect a PROXY protocol header (v1 or v2) from a load balancer on every connection, and
    /// log its client; only the balancer may reach this port
    #[arg(long)]
    proxy_protocol: bool,
    /// A name to say before the welcome (as [s1] Welcome!), so that clients behind a load balancer can
    /// tell which server answered: 1 to 32 bytes, no spaces or brackets
    #[arg(long, value_name = "NAME", value_parser = ServerId::new)]
    id: Option<ServerId>,
    /// Leave out the per-connection lines
    #[arg(short, long)]
    quiet: bool,
}

fn main() -> ExitCode {
    cli::exit_code(Program::TCP_SERVER, run(cli::parse(Program::TCP_SERVER)))
}

fn run(args: Args) -> anyhow::Result<()> {
    let mut server = TcpServer::bind(args.at.addr())
        .with_context(|| format!("failed to bind {}", args.at.shown()))?
        .delay(args.delay.0)
        .idle_timeout(args.idle_timeout.as_limit())
        .max_connections(args.max_connections)
        .proxy_protocol(args.proxy_protocol)
        .id(args.id.as_ref());
    // Before any thread starts and before clients are told the server is there.
    server.reserve_descriptors()?;
    let bound = server.local_addr();
    let bound = bound.context("failed to read the bound address")?;
    Log::stderr().line(format_args!("listening on {bound}"));
    let log = Log::stdout();
    log.line(format_args!("TCPServer is waiting for connection..."));
    let server = server.log(if args.quiet { Log::quiet() } else { log });
    let ran = server.run();
    ran.with_context(|| format!("server on {bound} failed"))
}
