//! The host and port arguments, declared once for the four programs. What they mean and
//! default to differs by program (a server listens there, a client sends there), and
//! [`parse`](super::parse) fills that in from the [`Program`](super::Program).

// The host and port of one program, for `#[command(flatten)]`. (No doc comment: clap would take
// it for the program's own.)
#[derive(clap::Args, Debug, Clone)]
pub struct Endpoint {
    #[arg(long, default_value = super::HOST, value_parser = parse_host)]
    pub host: String,
    // Its default is the program's; `parse` sets it.
    #[arg(short, long)]
    pub port: u16,
}

impl Endpoint {
    /// Returns the host and port, to bind or connect to (`ToSocketAddrs` resolves them).
    pub fn addr(&self) -> (&str, u16) {
        (&self.host, self.port)
    }

    /// Returns the host and port as an address is written, for messages: `127.0.0.1:9999`,
    /// `[::1]:9999`, `localhost:9999`.
    pub fn shown(&self) -> String {
        let (host, port) = (&self.host, self.port);
        if host.contains(':') && !host.starts_with('[') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        }
    }
}

/// Parses a `--host` value: an IPv4 or IPv6 address or a host name, IPv6 also in the bracketed
/// form copied from URLs (`[::1]`).
///
/// # Errors
///
/// A message for an empty value, unbalanced brackets, or a port in the host (`127.0.0.1:9999`,
/// `[::1]:9999`), which goes in `--port` instead.
pub(super) fn parse_host(text: &str) -> Result<String, String> {
    let not_a_host = |why| format!("'{text}' is not a host: {why}");
    let host = match text.strip_prefix('[') {
        Some(rest) => match rest.split_once(']') {
            Some((inside, "")) if inside.contains(':') => inside,
            Some((_, "")) => return Err(not_a_host("brackets go around an IPv6 address only")),
            Some((_, after)) if after.starts_with(':') => return Err(port_in_host(text)),
            Some(_) => return Err(not_a_host("a bracket is out of place")),
            None => return Err(not_a_host("a bracket is not closed")),
        },
        None => text,
    };
    if host.is_empty() {
        return Err("a host cannot be empty".to_string());
    }
    if host.contains(['[', ']']) {
        return Err(not_a_host("a bracket is out of place"));
    }
    // One colon is a host and a port; an IPv6 address has at least two.
    if host.matches(':').count() == 1 {
        return Err(port_in_host(text));
    }
    Ok(host.to_string())
}

fn port_in_host(text: &str) -> String {
    format!("'{text}' holds a port: give the host alone and the port with --port")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_hosts_get_brackets() {
        let host_port = |host: &str, port| {
            Endpoint {
                host: host.into(),
                port,
            }
            .shown()
        };
        assert_eq!(host_port("127.0.0.1", 9999), "127.0.0.1:9999");
        assert_eq!(host_port("::1", 80), "[::1]:80");
        assert_eq!(host_port("localhost", 8888), "localhost:8888");
    }

    #[test]
    fn hosts_take_brackets_but_not_ports() {
        assert_eq!(parse_host("127.0.0.1").unwrap(), "127.0.0.1");
        assert_eq!(parse_host("::1").unwrap(), "::1");
        assert_eq!(parse_host("[::1]").unwrap(), "::1");
        assert_eq!(parse_host("localhost").unwrap(), "localhost");
        for with_port in ["127.0.0.1:20020", "[::1]:20020", "localhost:80"] {
            let err = parse_host(with_port).unwrap_err();
            assert!(err.contains("--port"), "{with_port}: {err}");
        }
        let only_ipv6 = "brackets go around an IPv6 address only";
        assert!(parse_host("[]").unwrap_err().contains(only_ipv6));
        assert!(parse_host("[localhost]").unwrap_err().contains(only_ipv6));
        for bad in [
            "",
            "[::1",
            "[]",
            "[localhost]",
            "::1]",
            "[[::1]]",
            "a]b",
            "::1[",
            "[::1]x",
        ] {
            assert!(parse_host(bad).is_err(), "{bad}");
        }
    }
}
