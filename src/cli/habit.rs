//! nc's habit: `nc 127.0.0.1 9999` says where to connect, so `tcp-client 127.0.0.1 9999` would
//! greet the names "127.0.0.1" and "9999" at the default server and end well. A client told
//! neither `--host` nor `--port` refuses such names instead, and says what to write.

use std::net::IpAddr;

/// What a name looks like when it was meant as where to connect.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Looks {
    /// An IPv4 or IPv6 address (`127.0.0.1`, `::1`, `[::1]`).
    Address(String),
    /// A host and a port (`localhost:9999`, `192.0.2.1:8888`, `[::1]:9999`).
    HostPort(String, u16),
    /// A port number (`9999`).
    Port(u16),
}

impl Looks {
    fn what(&self) -> &'static str {
        match self {
            Looks::Address(_) => "an IP address",
            Looks::HostPort(..) => "a host and port",
            Looks::Port(_) => "a port number",
        }
    }
}

/// Tells what `name` looks like, if it looks like somewhere to connect.
fn looks(name: &str) -> Option<Looks> {
    if let Some(port) = port(name) {
        return Some(Looks::Port(port));
    }
    if let Some(address) = address(name) {
        return Some(Looks::Address(address));
    }
    let (host, port_text) = name.rsplit_once(':')?;
    let port = port(port_text)?;
    let host = address(host).or_else(|| host_name(host))?;
    Some(Looks::HostPort(host, port))
}

/// A port number: one to five digits, at most 65535.
fn port(text: &str) -> Option<u16> {
    let digits = (1..=5).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_digit());
    digits.then(|| text.parse().ok()).flatten()
}

/// An IP address, IPv6 also in brackets; returned without them.
fn address(text: &str) -> Option<String> {
    let bare = text
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(text);
    bare.parse::<IpAddr>().ok().map(|_| bare.to_string())
}

/// A host name as it goes before a port: letters, digits, dots and hyphens, starting with a
/// letter or a digit.
fn host_name(text: &str) -> Option<String> {
    let first = text.bytes().next()?;
    let allowed = |b: u8| b.is_ascii_alphanumeric() || b == b'.' || b == b'-';
    (first.is_ascii_alphanumeric() && text.bytes().all(allowed)).then(|| text.to_string())
}

/// Where the command line says the server is: the `--host` and `--port` given on it, if any.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Given<'a> {
    pub(super) host: Option<&'a str>,
    pub(super) port: Option<u16>,
}

impl Looks {
    /// Whether the name may have been meant as where to connect, given what the command line
    /// says already: an address while no `--host` is given, a port while no `--port` is, a
    /// host and port unless both are.
    fn misplaced(&self, given: Given<'_>) -> bool {
        match self {
            Looks::Address(_) => given.host.is_none(),
            Looks::Port(_) => given.port.is_none(),
            Looks::HostPort(..) => given.host.is_none() || given.port.is_none(),
        }
    }
}

/// The usage message for `program` given `names`, when a name looks like where to connect and
/// the command line does not already say that (see [`Looks::misplaced`]): what it looks like,
/// the command that reaches there, and how to greet it all the same. None when every name is
/// just a name.
pub(super) fn misplaced<'a>(
    program: &str,
    names: impl IntoIterator<Item = &'a str>,
    given: Given<'_>,
) -> Option<String> {
    let names: Vec<&str> = names.into_iter().collect();
    let (first, looked) = names.iter().find_map(|name| {
        let looked = looks(name)?;
        looked.misplaced(given).then_some((*name, looked))
    })?;
    let (mut host, mut port) = (given.host.map(str::to_string), given.port);
    for (i, name) in names.iter().enumerate() {
        let (h, p) = match looks(name) {
            Some(Looks::Address(h)) => (Some(h), None),
            Some(Looks::HostPort(h, p)) => (Some(h), Some(p)),
            // nc's `HOST PORT`: the name before a port is the host, if it can be one.
            Some(Looks::Port(p)) => (
                i.checked_sub(1).and_then(|at| host_name(names[at])),
                Some(p),
            ),
            None => (None, None),
        };
        host = host.or(h);
        port = port.or(p);
    }
    let mut command = program.to_string();
    if let Some(host) = host {
        command.push_str(&format!(" --host {host}"));
    }
    if let Some(port) = port {
        command.push_str(&format!(" --port {port}"));
    }
    Some(format!(
        "'{first}' looks like {}, not a name to greet: to reach that server, write `{command}`; \
         to greet it all the same, give both --host and --port, or pass it with --stdin",
        looked.what()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_host_ports_and_ports_look_like_where_to_connect() {
        let addr = |s: &str| Some(Looks::Address(s.to_string()));
        assert_eq!(looks("127.0.0.1"), addr("127.0.0.1"));
        assert_eq!(looks("::1"), addr("::1"));
        assert_eq!(looks("[::1]"), addr("::1"));
        assert_eq!(looks("9999"), Some(Looks::Port(9999)));
        assert_eq!(looks("0"), Some(Looks::Port(0)));
        let host_port = |h: &str, p| Some(Looks::HostPort(h.to_string(), p));
        assert_eq!(looks("localhost:9999"), host_port("localhost", 9999));
        assert_eq!(looks("192.0.2.1:8888"), host_port("192.0.2.1", 8888));
        assert_eq!(looks("[::1]:9999"), host_port("::1", 9999));
        assert_eq!(looks("example.com:80"), host_port("example.com", 80));
    }

    #[test]
    fn names_are_names() {
        for name in [
            "Jaber",
            "huangxin",
            "黄鑫",
            "65536",
            "123456",
            "1.2.3",
            "Ada Lovelace",
            "a:b",
            ":9999",
            "-x:1",
            "Ada:",
            "localhost",
            "1e3",
            "+1",
            "[Ada]",
            "[::1]:",
            "Zoë:1",
        ] {
            assert_eq!(looks(name), None, "{name}");
        }
    }

    #[test]
    fn the_message_says_what_to_write() {
        let none = Given::default();
        let msg = misplaced("tcp-client", ["127.0.0.1", "9999"], none).expect("refused");
        assert_eq!(
            msg,
            "'127.0.0.1' looks like an IP address, not a name to greet: to reach that server, \
             write `tcp-client --host 127.0.0.1 --port 9999`; to greet it all the same, give \
             both --host and --port, or pass it with --stdin"
        );
        let written = |names: &[&str], given| {
            let msg = misplaced("udp-client", names.iter().copied(), given).expect("refused");
            let start = msg.find('`').expect("a command") + 1;
            let end = msg[start..].find('`').expect("its end") + start;
            msg[start..end].to_string()
        };
        assert_eq!(
            written(&["[::1]:8888"], none),
            "udp-client --host ::1 --port 8888"
        );
        assert_eq!(
            written(&["Ada", "8888"], none),
            "udp-client --host Ada --port 8888"
        );
        assert_eq!(
            written(&["example.com", "80"], none),
            "udp-client --host example.com --port 80"
        );
        assert_eq!(written(&["黄鑫", "8888"], none), "udp-client --port 8888");
        // What the command line says already is kept, and does not excuse the other half.
        let host = Given {
            host: Some("10.0.0.5"),
            port: None,
        };
        assert_eq!(
            written(&["8888"], host),
            "udp-client --host 10.0.0.5 --port 8888"
        );
        let port = Given {
            host: None,
            port: Some(8888),
        };
        assert_eq!(
            written(&["192.0.2.1"], port),
            "udp-client --host 192.0.2.1 --port 8888"
        );
        assert_eq!(
            written(&["localhost:1"], port),
            "udp-client --host localhost --port 8888"
        );
        assert_eq!(
            misplaced("tcp-client", ["Jaber", "Katy", "Betty", "huangxin"], none),
            None
        );
        assert_eq!(misplaced("tcp-client", [], none), None);
    }

    /// Whatever the names, the check never panics, and the command it writes out is one the
    /// client takes: a host `--host` accepts and a port `--port` accepts.
    #[test]
    fn random_names_get_a_command_the_client_takes() {
        let mut rng = crate::testing::Rng::new(17);
        let pieces = [
            "1", "9", "0", "65535", "65536", ".", ":", "::", "[", "]", "a", "-", "黄", " ",
        ];
        for _ in 0..20_000 {
            let names: Vec<String> = (0..rng.between(0, 3))
                .map(|_| (0..rng.between(1, 6)).map(|_| *rng.pick(&pieces)).collect())
                .collect();
            let Some(msg) = misplaced(
                "tcp-client",
                names.iter().map(String::as_str),
                Given::default(),
            ) else {
                continue;
            };
            let command = msg.split('`').nth(1).expect("a command in backquotes");
            let words: Vec<&str> = command.split(' ').collect();
            for pair in words.windows(2) {
                match pair {
                    ["--host", host] => assert!(
                        super::super::endpoint::parse_host(host).is_ok(),
                        "{command}"
                    ),
                    ["--port", port] => assert!(port.parse::<u16>().is_ok(), "{command}"),
                    _ => {}
                }
            }
        }
    }

    #[test]
    fn each_half_of_where_to_connect_excuses_only_its_own_names() {
        let both = Given {
            host: Some("127.0.0.1"),
            port: Some(9999),
        };
        let host = Given {
            host: Some("127.0.0.1"),
            port: None,
        };
        let port = Given {
            host: None,
            port: Some(9999),
        };
        assert_eq!(
            misplaced("tcp-client", ["127.0.0.1", "9999", "a:1"], both),
            None
        );
        assert_eq!(misplaced("tcp-client", ["127.0.0.1"], host), None);
        assert_eq!(misplaced("tcp-client", ["9999"], port), None);
        assert!(misplaced("tcp-client", ["9999"], host).is_some());
        assert!(misplaced("tcp-client", ["127.0.0.1"], port).is_some());
        assert!(misplaced("tcp-client", ["localhost:9999"], host).is_some());
        assert!(misplaced("tcp-client", ["localhost:9999"], port).is_some());
    }
}
