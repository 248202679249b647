//! The PROXY protocol, versions 1 and 2 (HAProxy's doc/proxy-protocol.txt): the header a load
//! balancer sends ahead of a connection's own bytes, to say which client it speaks for. Pure:
//! bytes in; a header, "need more", or why not, out. The connection code reads until this says
//! it has a header (src/tcp/connection.rs); the client builds one with [`header`].

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

/// The longest a version 1 header may be, its CRLF included.
pub(crate) const V1_LONGEST: usize = 107;

/// How a version 1 header begins.
const V1_START: &[u8] = b"PROXY ";

/// How a version 2 header begins.
const V2_SIGNATURE: &[u8] = b"\r\n\r\n\0\r\nQUIT\n";

/// The fixed part of a version 2 header: the signature, version and command, family and
/// transport, and the length of the rest.
const V2_FIXED: usize = 16;

/// A PROXY header: how many bytes it took, and what it says of the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    /// How many bytes of the connection the header took; the conversation starts after them.
    pub(crate) len: usize,
    pub(crate) origin: Origin,
}

/// Whom the balancer speaks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    /// A client: its address, and the address it connected to.
    Client {
        source: SocketAddr,
        destination: SocketAddr,
    },
    /// Itself: a connection of the balancer's own, such as a health check (version 2's LOCAL
    /// command). The connection's own addresses stand.
    Balancer,
    /// A client it cannot name in the header (version 1's UNKNOWN, version 2's UNSPEC, and the
    /// UDP and UNIX families, which a TCP server does not implement): the connection's own
    /// addresses stand.
    Unnamed,
}

/// Why the first bytes of a connection are not a PROXY header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Invalid(&'static str);

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// Reads a PROXY header, version 1 or 2, told apart by their first bytes, off the start of
/// `bytes`: `Ok(None)` while `bytes` could still become one.
///
/// # Errors
///
/// Why `bytes` cannot be the start of a valid header, as soon as that shows.
pub(crate) fn parse(bytes: &[u8]) -> Result<Option<Header>, Invalid> {
    if begins(bytes, V2_SIGNATURE) {
        v2(bytes)
    } else if begins(bytes, V1_START) {
        v1(bytes)
    } else {
        Err(Invalid("not a PROXY protocol header"))
    }
}

/// Returns true if `bytes` and `start` agree as far as both go.
fn begins(bytes: &[u8], start: &[u8]) -> bool {
    let common = bytes.len().min(start.len());
    bytes[..common] == start[..common]
}

fn v1(bytes: &[u8]) -> Result<Option<Header>, Invalid> {
    let window = &bytes[..bytes.len().min(V1_LONGEST)];
    let Some(end) = window.iter().position(|&b| b == b'\n') else {
        if window.len() == V1_LONGEST {
            return Err(Invalid("a version 1 header longer than 107 bytes"));
        }
        // Only UNKNOWN may hold anything before its CRLF: elsewhere a CR that is not the
        // CRLF's is never valid, and shows already.
        let unknown = window[V1_START.len().min(window.len())..].starts_with(b"UNKNOWN ");
        if !unknown && window.windows(2).any(|w| w[0] == b'\r' && w[1] != b'\n') {
            return Err(Invalid("a CR not followed by LF in a version 1 header"));
        }
        return Ok(None);
    };
    let line = window[..end]
        .strip_suffix(b"\r")
        .ok_or(Invalid("a version 1 header ending in LF alone"))?;
    let origin = v1_fields(&line[V1_START.len()..])?;
    Ok(Some(Header {
        len: end + 1,
        origin,
    }))
}

/// Reads what follows `PROXY `: `UNKNOWN` (and anything at all up to the CRLF, which the spec
/// says to ignore), or `TCP4`/`TCP6` and the two addresses and two ports, one space apart.
fn v1_fields(line: &[u8]) -> Result<Origin, Invalid> {
    if line == b"UNKNOWN" || line.starts_with(b"UNKNOWN ") {
        return Ok(Origin::Unnamed);
    }
    let line =
        std::str::from_utf8(line).map_err(|_| Invalid("a version 1 header that is not text"))?;
    let fields: Vec<&str> = line.split(' ').collect();
    let [protocol, source, destination, source_port, destination_port] = fields[..] else {
        return Err(Invalid("a version 1 header without its five fields"));
    };
    let (source, destination) = match protocol {
        "TCP4" => (ip::<Ipv4Addr>(source)?, ip::<Ipv4Addr>(destination)?),
        "TCP6" => (ipv6(source)?, ipv6(destination)?),
        _ => {
            return Err(Invalid(
                "a version 1 protocol other than TCP4, TCP6, UNKNOWN",
            ));
        }
    };
    Ok(Origin::Client {
        source: SocketAddr::new(source, port(source_port)?),
        destination: SocketAddr::new(destination, port(destination_port)?),
    })
}

/// Reads an IPv6 address as the spec writes them, groups of hexadecimal digits between colons:
/// not with an IPv4 address at its end (`::ffff:192.0.2.1`), which a balancer sends as TCP4.
fn ipv6(text: &str) -> Result<IpAddr, Invalid> {
    match text.contains('.') {
        true => Err(Invalid("an IPv6 address written with an IPv4 one in it")),
        false => ip::<Ipv6Addr>(text),
    }
}

/// Reads an address of the family `A` (std refuses leading zeros in IPv4, as the spec asks).
fn ip<A: FromStr + Into<IpAddr>>(text: &str) -> Result<IpAddr, Invalid> {
    text.parse::<A>()
        .map(Into::into)
        .map_err(|_| Invalid("an address that is not one of its protocol's family"))
}

/// Reads a port: decimal, 0 to 65535, with no leading zero.
fn port(text: &str) -> Result<u16, Invalid> {
    let digits = !text.is_empty() && text.len() <= 5 && text.bytes().all(|b| b.is_ascii_digit());
    if !digits || (text.len() > 1 && text.starts_with('0')) {
        return Err(Invalid(
            "a port that is not a decimal number without leading zeros",
        ));
    }
    text.parse().map_err(|_| Invalid("a port over 65535"))
}

fn v2(bytes: &[u8]) -> Result<Option<Header>, Invalid> {
    // The version, the command and the family are each refused as soon as they come.
    let command = match bytes.get(12) {
        Some(byte) if byte >> 4 != 2 => {
            return Err(Invalid("a version 2 signature with another version"));
        }
        Some(byte) if byte & 0x0f > 1 => {
            return Err(Invalid("a version 2 command other than LOCAL and PROXY"));
        }
        Some(byte) => byte & 0x0f,
        None => return Ok(None),
    };
    // The check carries no client, whatever its family byte says: not even looked at.
    let family = match (command, bytes.get(13)) {
        (0x0, _) => None,
        (_, Some(&family)) => Some(check_family(family)?),
        (_, None) => return Ok(None),
    };
    if bytes.len() < V2_FIXED {
        return Ok(None);
    }
    let len = V2_FIXED + usize::from(u16::from_be_bytes([bytes[14], bytes[15]]));
    if bytes.len() < len {
        return Ok(None);
    }
    let block = &bytes[V2_FIXED..len];
    let origin = match family {
        None => Origin::Balancer,
        Some(family) => v2_addresses(family, block)?,
    };
    Ok(Some(Header { len, origin }))
}

/// Refuses the family and transport bytes the spec does not define.
fn check_family(family: u8) -> Result<u8, Invalid> {
    match family {
        0x00 | 0x11 | 0x12 | 0x21 | 0x22 | 0x31 | 0x32 => Ok(family),
        _ => Err(Invalid(
            "a version 2 family or transport the spec does not define",
        )),
    }
}

/// Reads the address block of a version 2 PROXY command: a TCP client's addresses, then its
/// TLVs, each of which must fit in the block. Any other family the spec defines (UNSPEC, UDP,
/// UNIX sockets) is served as UNSPEC, as the spec asks of a receiver that does not implement
/// it: its block is skipped and the connection's own addresses stand.
fn v2_addresses(family: u8, block: &[u8]) -> Result<Origin, Invalid> {
    let (addresses, rest) = match family {
        0x11 if block.len() >= 12 => {
            let ip = |at: usize| IpAddr::from(<[u8; 4]>::try_from(&block[at..at + 4]).expect("4"));
            let origin = client(ip(0), ip(4), &block[8..12]);
            (origin, &block[12..])
        }
        0x21 if block.len() >= 36 => {
            let ip =
                |at: usize| IpAddr::from(<[u8; 16]>::try_from(&block[at..at + 16]).expect("16"));
            let origin = client(ip(0), ip(16), &block[32..36]);
            (origin, &block[36..])
        }
        0x11 | 0x21 => {
            return Err(Invalid(
                "a version 2 address block shorter than its family's",
            ));
        }
        _ => return Ok(Origin::Unnamed),
    };
    tlvs(rest)?;
    Ok(addresses)
}

fn client(source: IpAddr, destination: IpAddr, ports: &[u8]) -> Origin {
    Origin::Client {
        source: SocketAddr::new(source, u16::from_be_bytes([ports[0], ports[1]])),
        destination: SocketAddr::new(destination, u16::from_be_bytes([ports[2], ports[3]])),
    }
}

/// Walks the type-length-value entries after the addresses, skipping them all.
fn tlvs(mut rest: &[u8]) -> Result<(), Invalid> {
    while !rest.is_empty() {
        let value_len = match rest {
            [_, high, low, ..] => usize::from(u16::from_be_bytes([*high, *low])),
            _ => return Err(Invalid("a version 2 TLV cut short")),
        };
        rest = rest
            .get(3 + value_len..)
            .ok_or(Invalid("a version 2 TLV longer than its header"))?;
    }
    Ok(())
}

/// A version of the PROXY protocol header, for a client that speaks as a load balancer would
/// ([`TcpClient::connect_with_proxy_header`](crate::TcpClient::connect_with_proxy_header)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum ProxyHeader {
    /// The text header, `PROXY TCP4 …\r\n`.
    V1,
    /// The binary header.
    V2,
}

/// Builds the header that says a connection from `source` to `destination` is a client's, in
/// `version` (version 1's `UNKNOWN` if the two are of different families, which no connection
/// has).
pub(crate) fn header(version: ProxyHeader, source: SocketAddr, destination: SocketAddr) -> Vec<u8> {
    match version {
        ProxyHeader::V1 => {
            let protocol = match (source, destination) {
                (SocketAddr::V4(_), SocketAddr::V4(_)) => "TCP4",
                (SocketAddr::V6(_), SocketAddr::V6(_)) => "TCP6",
                _ => return b"PROXY UNKNOWN\r\n".to_vec(),
            };
            let (s, d) = (source.ip(), destination.ip());
            let (sp, dp) = (source.port(), destination.port());
            format!("PROXY {protocol} {s} {d} {sp} {dp}\r\n").into_bytes()
        }
        ProxyHeader::V2 => {
            let mut out = V2_SIGNATURE.to_vec();
            let (family, mut block) = match (source.ip(), destination.ip()) {
                (IpAddr::V4(s), IpAddr::V4(d)) => (0x11, [s.octets(), d.octets()].concat()),
                (IpAddr::V6(s), IpAddr::V6(d)) => (0x21, [s.octets(), d.octets()].concat()),
                _ => (0x00, Vec::new()),
            };
            if family != 0x00 {
                block.extend_from_slice(&source.port().to_be_bytes());
                block.extend_from_slice(&destination.port().to_be_bytes());
            }
            out.extend_from_slice(&[0x21, family]);
            out.extend_from_slice(&(block.len() as u16).to_be_bytes());
            out.extend_from_slice(&block);
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::Rng;

    fn addr(text: &str) -> SocketAddr {
        text.parse().expect("a valid address")
    }

    fn client(source: &str, destination: &str) -> Origin {
        Origin::Client {
            source: addr(source),
            destination: addr(destination),
        }
    }

    /// The spec's examples and HAProxy's health check, with what follows them.
    fn valid() -> Vec<(Vec<u8>, Origin)> {
        let v2_local = [V2_SIGNATURE, &[0x20, 0x00, 0, 0]].concat();
        let v2_tcp4 = [
            V2_SIGNATURE,
            &[0x21, 0x11, 0, 12],
            &[198, 51, 100, 7, 192, 0, 2, 1],
            &40123u16.to_be_bytes(),
            &9999u16.to_be_bytes(),
        ]
        .concat();
        let mut v2_tcp6 = [V2_SIGNATURE, &[0x21, 0x21, 0, 36 + 7]].concat();
        let source: Ipv6Addr = "2001:db8::1".parse().expect("an IPv6 address");
        v2_tcp6.extend_from_slice(&source.octets());
        v2_tcp6.extend_from_slice(&Ipv6Addr::LOCALHOST.octets());
        v2_tcp6.extend_from_slice(&[0, 80, 1, 187]);
        v2_tcp6.extend_from_slice(&[0x04, 0, 4, 0, 0, 0, 0]);
        vec![
            (
                b"PROXY TCP4 198.51.100.7 192.0.2.1 40123 9999\r\n".to_vec(),
                client("198.51.100.7:40123", "192.0.2.1:9999"),
            ),
            (
                b"PROXY TCP6 2001:db8::1 ::1 80 443\r\n".to_vec(),
                client("[2001:db8::1]:80", "[::1]:443"),
            ),
            (b"PROXY UNKNOWN\r\n".to_vec(), Origin::Unnamed),
            (
                b"PROXY UNKNOWN ffff:f::f ffff:f::f 65535 65535\r\n".to_vec(),
                Origin::Unnamed,
            ),
            (v2_local, Origin::Balancer),
            (v2_tcp4, client("198.51.100.7:40123", "192.0.2.1:9999")),
            (v2_tcp6, client("[2001:db8::1]:80", "[::1]:443")),
        ]
    }

    #[test]
    fn the_specs_headers_are_read_whole_and_what_follows_is_left() {
        for (header, origin) in valid() {
            let with_rest = [&header[..], b"Ada"].concat();
            let parsed = parse(&with_rest).unwrap().expect("a whole header");
            assert_eq!(
                parsed,
                Header {
                    len: header.len(),
                    origin
                }
            );
        }
    }

    #[test]
    fn every_cut_of_a_header_needs_more_and_never_fails() {
        for (header, _) in valid() {
            for cut in 0..header.len() {
                assert_eq!(parse(&header[..cut]), Ok(None), "{:?} cut at {cut}", header);
            }
        }
    }

    #[test]
    fn a_header_fed_a_byte_at_a_time_is_read_once_it_is_whole() {
        for (header, origin) in valid() {
            let mut got = Vec::new();
            let mut parsed = None;
            for &byte in &header {
                got.push(byte);
                parsed = parse(&got).unwrap();
                if parsed.is_some() {
                    break;
                }
            }
            assert_eq!(got.len(), header.len());
            assert_eq!(parsed.map(|h| h.origin), Some(origin));
        }
    }

    /// Each must be refused, and as soon as the bytes that show it have come.
    #[test]
    fn hostile_version_1_headers_are_refused() {
        let refused: &[&[u8]] = &[
            b"GET / HTTP/1.1\r\n",
            b"Ada",
            b"PROXY TCP4 198.51.100.7 192.0.2.1 40123 9999\n",
            b"PROXY TCP4 198.51.100.7 192.0.2.1 40123 9999\rX",
            b"PROXY  TCP4 198.51.100.7 192.0.2.1 40123 9999\r\n",
            b"PROXY TCP4 198.51.100.7 192.0.2.1  40123 9999\r\n",
            b"PROXY TCP4 198.51.100.7 192.0.2.1 40123 9999 \r\n",
            b"PROXY TCP4 198.51.100.7 192.0.2.1 40123\r\n",
            b"PROXY TCP5 198.51.100.7 192.0.2.1 40123 9999\r\n",
            b"PROXY tcp4 198.51.100.7 192.0.2.1 40123 9999\r\n",
            b"PROXY TCP4 198.051.100.7 192.0.2.1 40123 9999\r\n",
            b"PROXY TCP4 198.51.100.7 192.0.2.256 40123 9999\r\n",
            b"PROXY TCP4 198.51.100 192.0.2.1 40123 9999\r\n",
            b"PROXY TCP4 ::1 192.0.2.1 40123 9999\r\n",
            b"PROXY TCP6 198.51.100.7 ::1 40123 9999\r\n",
            b"PROXY TCP4 198.51.100.7 192.0.2.1 040123 9999\r\n",
            b"PROXY TCP4 198.51.100.7 192.0.2.1 65536 9999\r\n",
            b"PROXY TCP4 198.51.100.7 192.0.2.1 -1 9999\r\n",
            b"PROXY TCP4 198.51.100.7 192.0.2.1 +1 9999\r\n",
            b"PROXY TCP4 198.51.100.7 192.0.2.1 1e3 9999\r\n",
            b"PROXY TCP4 198.51.100.7 192.0.2.1 40123 00\r\n",
            b"PROXY TCP4 \xff.51.100.7 192.0.2.1 40123 9999\r\n",
            b"PROXY UNKNOWNX\r\n",
            b"PROXY UNKNOWN\rX\r\n",
            b"PROXY\r\n",
            b"PROXY TCP6 ::ffff:198.51.100.7 ::1 40123 9999\r\n",
            b"PROXY TCP6 ::1 ::1.2.3.4 40123 9999\r\n",
            b"PROXY TCP6 fe80::1%eth0 ::1 40123 9999\r\n",
        ];
        for bytes in refused {
            assert!(
                parse(bytes).is_err(),
                "{:?} was taken",
                bytes.escape_ascii().to_string()
            );
        }
        // Over 107 bytes with no CRLF in them: refused then, not waited on.
        let long = [&b"PROXY UNKNOWN "[..], &[b'f'; 100]].concat();
        assert!(parse(&long[..106]).unwrap().is_none());
        assert!(parse(&long[..107]).is_err());
        let longest = [&b"PROXY UNKNOWN "[..], &[b'f'; 91], b"\r\n"].concat();
        assert_eq!(longest.len(), V1_LONGEST);
        assert!(parse(&longest).unwrap().is_some());
    }

    #[test]
    fn hostile_version_2_headers_are_refused() {
        let header = |ver_cmd: u8, family: u8, block: &[u8]| {
            let len = (block.len() as u16).to_be_bytes();
            [V2_SIGNATURE, &[ver_cmd, family], &len, block].concat()
        };
        let tcp4 = [0u8; 12];
        let refused = [
            header(0x11, 0x11, &tcp4),       // version 1 in a version 2 signature
            header(0x31, 0x11, &tcp4),       // version 3
            header(0x22, 0x11, &tcp4),       // command 2
            header(0x21, 0x41, &tcp4),       // family 4
            header(0x21, 0x13, &tcp4),       // transport 3
            header(0x21, 0x10, &tcp4),       // IPv4 with no transport
            header(0x21, 0x11, &tcp4[..11]), // an address block short of IPv4's
            header(0x21, 0x21, &[0; 35]),    // ... of IPv6's
            header(0x21, 0x01, &tcp4),       // UNSPEC with a transport
            header(0x21, 0x11, &[&tcp4[..], &[0x04, 0, 5, 0]].concat()), // a TLV that lies
            header(0x21, 0x11, &[&tcp4[..], &[0x04, 0]].concat()), // a TLV cut short
            [&V2_SIGNATURE[..11], b"X"].concat(), // a signature off
        ];
        for bytes in &refused {
            assert!(
                parse(bytes).is_err(),
                "{:?} was taken",
                bytes.escape_ascii().to_string()
            );
        }
        // A length that promises more than came is waited on, not read past.
        let mut promise = header(0x21, 0x11, &tcp4);
        promise[15] = 13;
        assert_eq!(parse(&promise), Ok(None));
        // LOCAL ignores whatever block it carries; UNSPEC, and the families a TCP server does
        // not implement, name nobody, whatever their blocks hold.
        let origin = |bytes: &[u8]| parse(bytes).map(|h| h.map(|h| h.origin));
        assert_eq!(
            origin(&header(0x20, 0x11, &[1, 2, 3])),
            Ok(Some(Origin::Balancer))
        );
        for (family, block) in [
            (0x00, &[1, 2][..]),
            (0x12, &tcp4),
            (0x22, &[]),
            (0x31, &[0; 9]),
        ] {
            let bytes = header(0x21, family, block);
            assert_eq!(origin(&bytes), Ok(Some(Origin::Unnamed)), "{family:#x}");
        }
        // Anything may stand before the CRLF of UNKNOWN, as the spec says, whole or in pieces.
        for line in [&b"PROXY UNKNOWN a\rb\r\n"[..], b"PROXY UNKNOWN \xff\r\r\n"] {
            assert_eq!(origin(line), Ok(Some(Origin::Unnamed)));
            for cut in 0..line.len() {
                assert_eq!(origin(&line[..cut]), Ok(None));
            }
        }
        // A wrong version, command or family is refused as soon as its byte comes.
        for (at, bytes) in [
            (13, header(0x11, 0x11, &tcp4)),
            (13, header(0x23, 0x11, &tcp4)),
            (14, header(0x21, 0x99, &tcp4)),
        ] {
            assert!(parse(&bytes[..at]).is_err(), "{:?}", &bytes[..at]);
            assert_eq!(parse(&bytes[..at - 1]), Ok(None));
        }
        // TLVs of any declared length are skipped, up to the most a header holds.
        let big_tlv = [&tcp4[..], &[0xE0, 0xFF, 0xF0], &[0; 0xFFF0]].concat();
        let big = header(0x21, 0x11, &big_tlv);
        assert_eq!(parse(&big).unwrap().unwrap().len, big.len());
    }

    /// However TCP splits a connection's first bytes, the answer is the same: once a prefix is
    /// refused, every longer one is, and once one is a header, every longer one is that header.
    #[test]
    fn a_decision_never_changes_as_more_bytes_come() {
        let mut rng = Rng::new(29);
        let alphabet: &[u8] = b"PROXY UNKNOWTCP46:.0159af\r\n\x21\x20\x11\x00\xff";
        let starts: [&[u8]; 4] = [V1_START, b"PROXY UNKNOWN ", b"PROXY TCP4 ", V2_SIGNATURE];
        for _ in 0..20_000 {
            let mut bytes = rng.pick(&starts).to_vec();
            for _ in 0..rng.between(0, 60) {
                bytes.push(*rng.pick(alphabet));
            }
            let mut decided = None;
            for cut in 0..=bytes.len() {
                let now = parse(&bytes[..cut]);
                match (&decided, &now) {
                    (None, Ok(None)) => {}
                    (None, _) => decided = Some(now),
                    (Some(Err(_)), Err(_)) => {}
                    (Some(before), _) => assert_eq!(
                        before,
                        &now,
                        "{:?} at {cut}",
                        bytes.escape_ascii().to_string()
                    ),
                }
            }
        }
    }

    #[test]
    fn random_bytes_never_panic_and_what_is_read_is_what_was_sent() {
        let mut rng = Rng::new(11);
        let starts: [&[u8]; 3] = [b"", V1_START, V2_SIGNATURE];
        for _ in 0..20_000 {
            let mut bytes = rng.pick(&starts).to_vec();
            for _ in 0..rng.between(0, 120) {
                bytes.push(*rng.pick(&[
                    b'0', b'1', b'.', b':', b' ', b'\r', b'\n', 0x21, 0x11, 0x00, b'T', b'C', b'P',
                    b'4',
                ]));
            }
            if let Ok(Some(header)) = parse(&bytes) {
                assert!(header.len <= bytes.len());
            }
        }
        for _ in 0..2_000 {
            let v4 = rng.chance(50);
            let ip = |rng: &mut Rng| -> IpAddr {
                if v4 {
                    Ipv4Addr::from(rng.next() as u32).into()
                } else {
                    Ipv6Addr::from(u128::from(rng.next()) << 64 | u128::from(rng.next())).into()
                }
            };
            let source = SocketAddr::new(ip(&mut rng), rng.next() as u16);
            let destination = SocketAddr::new(ip(&mut rng), rng.next() as u16);
            for version in [ProxyHeader::V1, ProxyHeader::V2] {
                let bytes = header(version, source, destination);
                let parsed = parse(&bytes).unwrap().expect("a whole header");
                assert_eq!(parsed.len, bytes.len());
                assert_eq!(
                    parsed.origin,
                    Origin::Client {
                        source,
                        destination
                    }
                );
            }
        }
    }
}
