//! The TCP greeting client: prints the server's welcome, then the reply to each name.

use std::ffi::OsString;
use std::io;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use greeting::cli::{self, Connected, Dur, Endpoint, Program};
use greeting::protocol::EXIT;
use greeting::{ConnectError, ProxyHeader, TcpClient};

/// Greets names over TCP, like the tutorial's SocketTcpClient.py.
#[derive(Parser)]
#[command(name = "tcp-client", version)]
struct Args {
    #[command(flatten)]
    to: Endpoint,
    /// Limit on connecting and on each reply
    #[arg(long, default_value_t = Dur(TcpClient::DEFAULT_TIMEOUT), value_parser = Dur::positive)]
    timeout: Dur,
    /// Send a PROXY protocol header first, naming this connection's own ends, as a load balancer
    /// would (for a server behind one, or tcp-server --proxy-protocol)
    #[arg(long, value_name = "VERSION")]
    proxy_header: Option<ProxyHeader>,
    /// Read names from standard input, one per line, instead (a line "exit" ends the input)
    #[arg(long, conflicts_with = "names")]
    stdin: bool,
    /// Names to greet
    #[arg(default_values = ["Jaber", "Katy", "Betty", "huangxin"])]
    names: Vec<OsString>,
}

fn main() -> ExitCode {
    cli::exit_code(Program::TCP_CLIENT, run(cli::parse(Program::TCP_CLIENT)))
}

fn run(args: Args) -> anyhow::Result<()> {
    let addr = args.to.shown();
    let (to, timeout) = (args.to.addr(), args.timeout.0);
    let connected = match args.proxy_header {
        None => TcpClient::connect(to, timeout),
        Some(version) => TcpClient::connect_with_proxy_header(to, timeout, version),
    };
    // Once connected, every failure says so, and exits with its own code.
    let but = |what: String| Connected(format!("connected to {addr}, but {what}"));
    let mut client = match connected {
        Ok(client) => client,
        Err(ConnectError::Connect(err)) => {
            return Err(err).with_context(|| format!("failed to connect to {addr}"));
        }
        Err(ConnectError::Welcome(err)) => return Err(err).context(but("no welcome".into())),
    };
    let mut out = io::stdout().lock();
    // connect has checked that the server's first words are the welcome, after its id if any.
    let welcome = cli::print_line(&mut out, client.welcome());
    let reading = welcome.context("failed to write to stdout")?;
    let mut greet = |name: &[u8]| -> anyhow::Result<bool> {
        let failed = || but(format!("failed to greet {}", cli::shown_name(name)));
        let reply = client.greet(name).with_context(failed)?;
        cli::print_line(&mut out, &reply).context("failed to write to stdout")
    };
    if reading {
        // A line "exit" on stdin ends the input; as an argument, main has refused it already.
        cli::for_each_name(args.stdin, TcpClient::MAX_NAME, &args.names, |name| {
            if name == EXIT { Ok(false) } else { greet(name) }
        })?;
    }
    client.exit().context(but("failed to say exit".into()))
}
