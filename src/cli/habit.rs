//! nc's habit: `nc 127.0.0.1 9999` says where to connect, so `tcp-client 127.0.0.1 9999` would
//! greet the names "127.0.0.1" and "9999" at the default server and end well. Unless both
//! `--host` and `--port` are given, a client refuses a name that looks like where to connect (an
//! IP address, a host and port, a port number) and says what to write.

use std::net::IpAddr;

/// Where the command line says the server is: the `--host` and `--port` given on it, if any.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Given<'a> {
    pub(super) host: Option<&'a str>,
    pub(super) port: Option<u16>,
}

/// Where `name` says a server is, if it looks like somewhere to connect: a host, a port or
/// both, and what it looks like.
fn place(name: &str) -> Option<(Option<String>, Option<u16>, &'static str)> {
    if let Some(port) = port(name) {
        return Some((None, Some(port), "a port number"));
    }
    if let Some(address) = address(name) {
        return Some((Some(address), None, "an IP address"));
    }
    let (host, port_text) = name.rsplit_once(':')?;
    let port = port(port_text)?;
    let host = address(host).or_else(|| host_name(host))?;
    Some((Some(host), Some(port), "a host and port"))
}

/// A port number: one to five digits, at most 65535.
fn port(text: &str) -> Option<u16> {
    let digits = (1..=5).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_digit());
    digits.then(|| text.parse().ok()).flatten()
}

/// An IP address, IPv6 also in brackets; returned without them.
fn address(text: &str) -> Option<String> {
    let inside = text.strip_prefix('[').and_then(|t| t.strip_suffix(']'));
    let bare = inside.unwrap_or(text);
    bare.parse::<IpAddr>().ok().map(|_| bare.to_string())
}

/// A host name as it goes before a port: letters, digits, dots and hyphens, starting with a
/// letter or a digit.
fn host_name(text: &str) -> Option<String> {
    let first = text.bytes().next()?;
    let allowed = |b: u8| b.is_ascii_alphanumeric() || b == b'.' || b == b'-';
    (first.is_ascii_alphanumeric() && text.bytes().all(allowed)).then(|| text.to_string())
}

/// The usage message for `program` given `names`, when a name looks like where to connect and
/// the command line does not give both `--host` and `--port`: what it looks like, the command
/// that reaches the server the names point at (the flags given fill in what they do not say),
/// and how to greet it all the same. None when every name is just a name.
pub(super) fn misplaced<'a>(
    program: &str,
    names: impl IntoIterator<Item = &'a str>,
    given: Given<'_>,
) -> Option<String> {
    if given.host.is_some() && given.port.is_some() {
        return None;
    }
    let names: Vec<&str> = names.into_iter().collect();
    let (first, what) = names.iter().find_map(|n| Some((*n, place(n)?.2)))?;
    let (mut host, mut port) = (None, None);
    for (i, name) in names.iter().enumerate() {
        let Some((h, p, _)) = place(name) else {
            continue;
        };
        // nc's `HOST PORT`: the name before a port is the host, if it can be one and is not
        // itself a place (`9999 8888` is two ports, not a host named 9999).
        let before = p.and(i.checked_sub(1)).map(|at| names[at]);
        let before = before.filter(|name| place(name).is_none());
        host = host.or(h).or_else(|| before.and_then(host_name));
        port = port.or(p);
    }
    let (host, port) = (host.or(given.host.map(str::to_string)), port.or(given.port));
    let host = host.map_or(String::new(), |host| format!(" --host {host}"));
    let port = port.map_or(String::new(), |port| format!(" --port {port}"));
    Some(format!(
        "'{first}' looks like {what}, not a name to greet: to reach that server, write \
         `{program}{host}{port}`; to greet it all the same, give both --host and --port, or pass \
         it with --stdin"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::collection::vec;
    use proptest::prelude::*;
    use proptest::sample::select;

    #[test]
    fn addresses_host_ports_and_ports_look_like_where_to_connect() {
        let at = |h: Option<&str>, p, what| Some((h.map(str::to_string), p, what));
        assert_eq!(
            place("127.0.0.1"),
            at(Some("127.0.0.1"), None, "an IP address")
        );
        assert_eq!(place("::1"), at(Some("::1"), None, "an IP address"));
        assert_eq!(place("[::1]"), at(Some("::1"), None, "an IP address"));
        assert_eq!(place("9999"), at(None, Some(9999), "a port number"));
        assert_eq!(place("0"), at(None, Some(0), "a port number"));
        let host_port = |h, p| at(Some(h), Some(p), "a host and port");
        assert_eq!(place("localhost:9999"), host_port("localhost", 9999));
        assert_eq!(place("192.0.2.1:8888"), host_port("192.0.2.1", 8888));
        assert_eq!(place("[::1]:9999"), host_port("::1", 9999));
        assert_eq!(place("example.com:80"), host_port("example.com", 80));
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
            assert_eq!(place(name), None, "{name}");
        }
    }

    /// The command a message says to write.
    fn written(names: &[&str], given: Given<'_>) -> String {
        let msg = misplaced("udp-client", names.iter().copied(), given).expect("refused");
        msg.split('`')
            .nth(1)
            .expect("a command in backquotes")
            .to_string()
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
        assert_eq!(
            written(&["[::1]:8888"], none),
            "udp-client --host ::1 --port 8888"
        );
        assert_eq!(
            written(&["Ada", "8888"], none),
            "udp-client --host Ada --port 8888"
        );
        let far = written(&["example.com", "80"], none);
        assert_eq!(far, "udp-client --host example.com --port 80");
        assert_eq!(written(&["黄鑫", "8888"], none), "udp-client --port 8888");
        // Two ports: the first is the one the message is about, and neither is a host.
        assert_eq!(written(&["9999", "8888"], none), "udp-client --port 9999");
        assert_eq!(
            written(&["8888", "9999", "Ada"], none),
            "udp-client --port 8888"
        );
        assert_eq!(
            misplaced("tcp-client", ["Jaber", "Katy", "Betty", "huangxin"], none),
            None
        );
        assert_eq!(misplaced("tcp-client", [], none), None);
    }

    /// Only both flags excuse such names; one flag fills in the half the names do not say, and
    /// what the names say wins over it: they point at the server meant.
    #[test]
    fn only_both_flags_excuse_such_names_and_the_names_say_where() {
        let both = Given {
            host: Some("127.0.0.1"),
            port: Some(9999),
        };
        let host = Given {
            host: Some("10.0.0.5"),
            port: None,
        };
        let port = Given {
            host: None,
            port: Some(43875),
        };
        assert_eq!(
            misplaced("tcp-client", ["127.0.0.1", "9999", "a:1"], both),
            None
        );
        assert_eq!(
            written(&["8888"], host),
            "udp-client --host 10.0.0.5 --port 8888"
        );
        assert_eq!(written(&["127.0.0.1"], host), "udp-client --host 127.0.0.1");
        assert_eq!(
            written(&["192.0.2.1"], port),
            "udp-client --host 192.0.2.1 --port 43875"
        );
        assert_eq!(written(&["9999"], port), "udp-client --port 9999");
        assert_eq!(written(&["10:30"], port), "udp-client --host 10 --port 30");
    }

    proptest! {
        /// Whatever the names, the check never panics, and the command it writes out is one the
        /// client takes: a host `--host` accepts and a port `--port` accepts.
        #[test]
        fn random_names_get_a_command_the_client_takes(
            names in vec(
                vec(select(&["1", "9", "0", "65535", "65536", ".", ":", "::", "[", "]", "a", "-", "黄", " "][..]), 1..6)
                    .prop_map(|pieces| pieces.concat()),
                0..4,
            ),
        ) {
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            if let Some(msg) = misplaced("tcp-client", names, Given::default()) {
                let command = msg.split('`').nth(1).expect("a command in backquotes");
                let words: Vec<&str> = command.split(' ').collect();
                for pair in words.windows(2) {
                    match pair {
                        ["--host", host] => prop_assert!(super::super::endpoint::parse_host(host).is_ok(), "{}", command),
                        ["--port", port] => prop_assert!(port.parse::<u16>().is_ok(), "{}", command),
                        _ => {}
                    }
                }
            }
        }
    }
}
