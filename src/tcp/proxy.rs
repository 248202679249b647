//! The PROXY protocol, versions 1 and 2 (HAProxy's doc/proxy-protocol.txt): the header a load
//! balancer sends ahead of a connection's own bytes, to say which client it speaks for. `parse`
//! is pure: bytes in; a header, "need more", or why not, out. `read_header` reads a connection
//! until it says it has one (`--proxy-protocol`); `header` builds one, for the client.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::time::Duration;

use super::framer::READ_SIZE;
use crate::addr::canonical;
use crate::duration::Dur;
use crate::socket::Deadline;

/// How long a connection has to send its whole PROXY header: the spec asks a receiver to wait at
/// least 3 s, to cover a TCP retransmit.
pub(crate) const HEADER_WAIT: Duration = Duration::from_secs(3);

/// The longest a version 1 header may be, its CRLF included.
const V1_LONGEST: usize = 107;

/// How a version 1 header begins.
const V1_START: &[u8] = b"PROXY ";

/// How a version 2 header begins.
const V2_SIGNATURE: &[u8] = b"\r\n\r\n\0\r\nQUIT\n";

/// A PROXY header: how many bytes it took, and whom it says the connection is from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    /// How many bytes of the connection the header took; the conversation starts after them.
    pub(crate) len: usize,
    pub(crate) caller: Caller,
}

/// Whom a connection is from, as its header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Caller {
    /// A client, at this address: the header's source (its destination is checked, and not
    /// needed), or the connection's own when the balancer could not name it: version 1's
    /// UNKNOWN, version 2's UNSPEC, and the UDP and UNIX families, which a TCP server does not
    /// implement.
    Client(SocketAddr),
    /// The balancer itself: a connection of its own, such as a health check (version 2's LOCAL
    /// command).
    Balancer,
}

/// Why the first bytes of a connection are not a PROXY header.
pub(crate) type Invalid = &'static str;

/// Reads the PROXY header at the start of `stream`, whose peer is `peer` (the balancer):
/// whom the connection is from, and the bytes that came after the header, the conversation's
/// first read.
///
/// # Errors
///
/// Why there is no valid header: the first bytes are not one, or it is not whole within
/// [`HEADER_WAIT`], or the connection ended or failed first.
// Not inlined, so that its buffer is off the stack again before the log lines are formatted.
#[inline(never)]
pub(crate) fn read_header(
    stream: &mut TcpStream,
    peer: SocketAddr,
) -> Result<(Caller, Vec<u8>), String> {
    let deadline = Deadline::after(HEADER_WAIT);
    let mut got = Vec::new();
    loop {
        let start = got.len();
        got.resize(start + READ_SIZE, 0);
        match deadline.read_from(stream, &mut got[start..]) {
            Ok(0) => return Err("the connection ended before a whole PROXY header".into()),
            Ok(n) => got.truncate(start + n),
            Err(err) if err.kind() == std::io::ErrorKind::TimedOut => {
                return Err(format!("no whole PROXY header within {}", Dur(HEADER_WAIT)));
            }
            Err(err) => return Err(err.to_string()),
        }
        if let Some(header) = parse(&got, peer).map_err(str::to_string)? {
            return Ok((header.caller, got.split_off(header.len)));
        }
    }
}

/// Reads a PROXY header, version 1 or 2, told apart by their first bytes, off the start of
/// `bytes`, which came from `peer`: `Ok(None)` while `bytes` could still become one.
///
/// # Errors
///
/// Why `bytes` cannot be the start of a valid header, as soon as that shows.
pub(crate) fn parse(bytes: &[u8], peer: SocketAddr) -> Result<Option<Header>, Invalid> {
    // Whether `bytes` and `start` agree as far as both go.
    let begins = |start: &[u8]| bytes.iter().zip(start).all(|(a, b)| a == b);
    if begins(V2_SIGNATURE) {
        v2(bytes, peer)
    } else if begins(V1_START) {
        v1(bytes, peer)
    } else {
        Err("not a PROXY protocol header")
    }
}

/// What [`parse`] says of `bytes`: the header's length once it is whole, `Ok(None)` while it
/// needs more, or why not. For the fuzz target, fuzz/fuzz_targets/proxy.rs.
#[cfg(fuzzing)]
pub fn fuzz(bytes: &[u8]) -> Result<Option<usize>, Invalid> {
    parse(bytes, (Ipv4Addr::LOCALHOST, 1).into()).map(|header| header.map(|header| header.len))
}

fn v1(bytes: &[u8], peer: SocketAddr) -> Result<Option<Header>, Invalid> {
    let window = &bytes[..bytes.len().min(V1_LONGEST)];
    let Some(end) = window.iter().position(|&b| b == b'\n') else {
        if window.len() == V1_LONGEST {
            return Err("a version 1 header longer than 107 bytes");
        }
        // Only UNKNOWN may hold anything before its CRLF: elsewhere a CR that is not the
        // CRLF's is never valid, and shows already.
        let unknown = window.starts_with(b"PROXY UNKNOWN ");
        if !unknown && window.windows(2).any(|w| w[0] == b'\r' && w[1] != b'\n') {
            return Err("a CR not followed by LF in a version 1 header");
        }
        return Ok(None);
    };
    let lf_alone = "a version 1 header ending in LF alone";
    let line = window[..end].strip_suffix(b"\r").ok_or(lf_alone)?;
    let caller = v1_fields(&line[V1_START.len()..], peer)?;
    let len = end + 1;
    Ok(Some(Header { len, caller }))
}

/// Reads what follows `PROXY `: `UNKNOWN` (and anything at all up to the CRLF, which the spec
/// says to ignore), or `TCP4`/`TCP6` and the two addresses and two ports, one space apart.
fn v1_fields(line: &[u8], peer: SocketAddr) -> Result<Caller, Invalid> {
    if line == b"UNKNOWN" || line.starts_with(b"UNKNOWN ") {
        return Ok(Caller::Client(peer));
    }
    let line = std::str::from_utf8(line).map_err(|_| "a version 1 header that is not text")?;
    let fields: Vec<&str> = line.split(' ').collect();
    let [protocol, source, destination, source_port, destination_port] = fields[..] else {
        return Err("a version 1 header without its five fields");
    };
    let (source, _) = match protocol {
        "TCP4" => (ip::<Ipv4Addr>(source)?, ip::<Ipv4Addr>(destination)?),
        "TCP6" => (ip::<Ipv6Addr>(source)?, ip::<Ipv6Addr>(destination)?),
        _ => return Err("a version 1 protocol other than TCP4, TCP6, UNKNOWN"),
    };
    port(destination_port)?;
    let source = SocketAddr::new(source, port(source_port)?);
    Ok(Caller::Client(canonical(source)))
}

/// Reads an address of the family `A` (std refuses leading zeros in IPv4, as the spec asks).
fn ip<A: std::str::FromStr + Into<IpAddr>>(text: &str) -> Result<IpAddr, Invalid> {
    let not_one = "an address that is not one of its protocol's family";
    text.parse::<A>().map(Into::into).map_err(|_| not_one)
}

/// Reads a port: decimal, 0 to 65535, with no leading zero.
fn port(text: &str) -> Result<u16, Invalid> {
    let digits = !text.is_empty() && text.len() <= 5 && text.bytes().all(|b| b.is_ascii_digit());
    if !digits || (text.len() > 1 && text.starts_with('0')) {
        return Err("a port that is not a decimal number without leading zeros");
    }
    text.parse().map_err(|_| "a port over 65535")
}

fn v2(bytes: &[u8], peer: SocketAddr) -> Result<Option<Header>, Invalid> {
    let other_version = "a version 2 signature with another version";
    let other_command = "a version 2 command other than LOCAL and PROXY";
    let undefined = "a version 2 family or transport the spec does not define";
    // The version, the command and the family are each refused as soon as they come. The check
    // (LOCAL) carries no client, whatever its family byte says: not even looked at.
    let family = match (bytes.get(12), bytes.get(13)) {
        (Some(byte), _) if byte >> 4 != 2 => return Err(other_version),
        (Some(byte), _) if byte & 0x0f > 1 => return Err(other_command),
        (Some(&0x20), _) => None,
        (None, _) | (_, None) => return Ok(None),
        (_, Some(&family @ (0x00 | 0x11 | 0x12 | 0x21 | 0x22 | 0x31 | 0x32))) => Some(family),
        (_, Some(_)) => return Err(undefined),
    };
    let Some((&[_, _, high, low], rest)) = bytes[V2_SIGNATURE.len()..].split_first_chunk() else {
        return Ok(None);
    };
    let Some(block) = rest.get(..usize::from(u16::from_be_bytes([high, low]))) else {
        return Ok(None);
    };
    // Any family but TCP's that the spec defines (UNSPEC, UDP, UNIX sockets) is served as
    // UNSPEC, as the spec asks of a receiver that does not implement it: its block is skipped
    // and the connection's own addresses stand.
    let caller = match family {
        None => Caller::Balancer,
        Some(0x11) => tcp_block::<4>(block)?,
        Some(0x21) => tcp_block::<16>(block)?,
        Some(_) => Caller::Client(peer),
    };
    let len = V2_SIGNATURE.len() + 4 + block.len();
    Ok(Some(Header { len, caller }))
}

/// Reads the address block of a version 2 PROXY command for a TCP client whose addresses are
/// `N` bytes: the two addresses and two ports, the client's the first of each, then the
/// type-length-value entries, each of which must fit in the block.
fn tcp_block<const N: usize>(block: &[u8]) -> Result<Caller, Invalid>
where
    IpAddr: From<[u8; N]>,
{
    let short = "a version 2 address block shorter than its family's";
    let (source, rest) = block.split_first_chunk::<N>().ok_or(short)?;
    let ports = rest.get(N..).ok_or(short)?;
    let (&[high, low, ..], mut tlvs) = ports.split_first_chunk::<4>().ok_or(short)?;
    let client = SocketAddr::new(IpAddr::from(*source), u16::from_be_bytes([high, low]));
    while !tlvs.is_empty() {
        let cut_short = "a version 2 TLV cut short";
        let longer = "a version 2 TLV longer than its header";
        let (&[_, high, low], value) = tlvs.split_first_chunk().ok_or(cut_short)?;
        let len = usize::from(u16::from_be_bytes([high, low]));
        tlvs = value.get(len..).ok_or(longer)?;
    }
    Ok(Caller::Client(canonical(client)))
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
/// `version` (`UNKNOWN` or `UNSPEC` if the two are of different families, which no connection
/// has).
pub(crate) fn header(version: ProxyHeader, source: SocketAddr, destination: SocketAddr) -> Vec<u8> {
    let (s, d) = (source.ip(), destination.ip());
    let (sp, dp) = (source.port(), destination.port());
    // TCP's version 1 name (TCP4 or TCP6) and version 2 family byte, and the two addresses.
    let (tcp, family, addresses) = match (s, d) {
        (IpAddr::V4(s), IpAddr::V4(d)) => (4, 0x11, [&s.octets()[..], &d.octets()].concat()),
        (IpAddr::V6(s), IpAddr::V6(d)) => (6, 0x21, [&s.octets()[..], &d.octets()].concat()),
        _ => (0, 0x00, Vec::new()),
    };
    match (version, tcp) {
        (ProxyHeader::V1, 0) => b"PROXY UNKNOWN\r\n".to_vec(),
        (ProxyHeader::V1, _) => format!("PROXY TCP{tcp} {s} {d} {sp} {dp}\r\n").into_bytes(),
        (ProxyHeader::V2, 0) => [V2_SIGNATURE, &[0x21, 0x00, 0, 0]].concat(),
        (ProxyHeader::V2, _) => {
            let block = [&addresses[..], &sp.to_be_bytes(), &dp.to_be_bytes()].concat();
            // 12 or 36 bytes: the high byte of the block's length is 0.
            [V2_SIGNATURE, &[0x21, family, 0, block.len() as u8], &block].concat()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::collection::vec;
    use proptest::prelude::*;
    use proptest::sample::select;

    fn addr(text: &str) -> SocketAddr {
        text.parse().expect("a valid address")
    }

    fn client(source: &str) -> Caller {
        Caller::Client(addr(source))
    }

    /// The balancer's own address, which stands when its header names no client.
    const PEER: &str = "127.0.0.1:40000";

    fn parse(bytes: &[u8]) -> Result<Option<Header>, Invalid> {
        super::parse(bytes, addr(PEER))
    }

    /// The spec's examples and HAProxy's health check, with what follows them.
    fn valid() -> Vec<(Vec<u8>, Caller)> {
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
                client("198.51.100.7:40123"),
            ),
            (
                b"PROXY TCP6 2001:db8::1 ::1 80 443\r\n".to_vec(),
                client("[2001:db8::1]:80"),
            ),
            (b"PROXY UNKNOWN\r\n".to_vec(), client(PEER)),
            // Ports run from 0 to 65535.
            (
                b"PROXY TCP4 192.0.2.1 192.0.2.2 0 65535\r\n".to_vec(),
                client("192.0.2.1:0"),
            ),
            // A dual-stack balancer's IPv4 client (nginx, HAProxy), logged in its IPv4 form.
            (
                b"PROXY TCP6 ::ffff:127.0.0.1 ::ffff:127.0.0.1 46814 18091\r\n".to_vec(),
                client("127.0.0.1:46814"),
            ),
            (
                b"PROXY TCP6 ::ffff:c633:6407 ::1.2.3.4 40123 9999\r\n".to_vec(),
                client("198.51.100.7:40123"),
            ),
            (
                b"PROXY UNKNOWN ffff:f::f ffff:f::f 65535 65535\r\n".to_vec(),
                client(PEER),
            ),
            (v2_local, Caller::Balancer),
            (v2_tcp4, client("198.51.100.7:40123")),
            (v2_tcp6, client("[2001:db8::1]:80")),
        ]
    }

    #[test]
    fn the_specs_headers_are_read_whole_and_what_follows_is_left() {
        for (header, caller) in valid() {
            let with_rest = [&header[..], b"Ada"].concat();
            let parsed = parse(&with_rest).unwrap().expect("a whole header");
            assert_eq!(
                parsed,
                Header {
                    len: header.len(),
                    caller
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
        for (header, caller) in valid() {
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
            assert_eq!(parsed.map(|h| h.caller), Some(caller));
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
        let caller = |bytes: &[u8]| parse(bytes).map(|h| h.map(|h| h.caller));
        assert_eq!(
            caller(&header(0x20, 0x11, &[1, 2, 3])),
            Ok(Some(Caller::Balancer))
        );
        for (family, block) in [
            (0x00, &[1, 2][..]),
            (0x12, &tcp4),
            (0x22, &[]),
            (0x31, &[0; 9]),
        ] {
            let bytes = header(0x21, family, block);
            assert_eq!(caller(&bytes), Ok(Some(client(PEER))), "{family:#x}");
        }
        // Anything may stand before the CRLF of UNKNOWN, as the spec says, whole or in pieces.
        for line in [&b"PROXY UNKNOWN a\rb\r\n"[..], b"PROXY UNKNOWN \xff\r\r\n"] {
            assert_eq!(caller(line), Ok(Some(client(PEER))));
            for cut in 0..line.len() {
                assert_eq!(caller(&line[..cut]), Ok(None));
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

    fn bytes_from(
        alphabet: &'static [u8],
        starts: &'static [&'static [u8]],
        most: usize,
    ) -> impl Strategy<Value = Vec<u8>> {
        (select(starts), vec(select(alphabet), 0..most))
            .prop_map(|(start, rest)| [start, &rest[..]].concat())
    }

    /// Two addresses of one family: a connection's ends; IPv6 ones now and then an IPv4 one
    /// mapped, as a dual-stack socket has them.
    fn ends() -> impl Strategy<Value = (SocketAddr, SocketAddr)> {
        let v4 = any::<u32>().prop_map(|ip| IpAddr::from(Ipv4Addr::from(ip)));
        let mapped = any::<u32>().prop_map(|ip| IpAddr::from(Ipv4Addr::from(ip).to_ipv6_mapped()));
        let v6 = prop_oneof![
            any::<u128>().prop_map(|ip| IpAddr::from(Ipv6Addr::from(ip))),
            mapped
        ];
        let ips = prop_oneof![(v4.clone(), v4), (v6.clone(), v6)];
        (ips, any::<u16>(), any::<u16>())
            .prop_map(|((s, d), sp, dp)| (SocketAddr::new(s, sp), SocketAddr::new(d, dp)))
    }

    proptest! {
        /// However TCP splits a connection's first bytes, the answer is the same: once a prefix
        /// is refused, every longer one is, and once one is a header, every longer one is that
        /// header.
        #[test]
        fn a_decision_never_changes_as_more_bytes_come(
            bytes in bytes_from(
                b"PROXY UNKNOWTCP46:.0159af\r\n\x21\x20\x11\x00\xff",
                &[V1_START, b"PROXY UNKNOWN ", b"PROXY TCP4 ", V2_SIGNATURE],
                60,
            ),
        ) {
            let mut decided = None;
            for cut in 0..=bytes.len() {
                let now = parse(&bytes[..cut]);
                match (&decided, &now) {
                    (None, Ok(None)) => {}
                    (None, _) => decided = Some(now),
                    (Some(Err(_)), Err(_)) => {}
                    (Some(before), _) => prop_assert_eq!(before, &now, "at {}", cut),
                }
            }
        }

        /// Random bytes never make the parser panic or claim more bytes than came.
        #[test]
        fn random_bytes_never_panic(
            bytes in bytes_from(b"01.: \r\n\x21\x11\x00TCP4", &[b"", V1_START, V2_SIGNATURE], 120),
        ) {
            if let Ok(Some(header)) = parse(&bytes) {
                prop_assert!(header.len <= bytes.len());
            }
        }

        /// What the client's header says is what the server reads, for any two addresses of a
        /// family, in both versions.
        #[test]
        fn what_is_read_is_what_was_sent((source, destination) in ends()) {
            for version in [ProxyHeader::V1, ProxyHeader::V2] {
                let bytes = header(version, source, destination);
                let parsed = parse(&bytes).unwrap().expect("a whole header");
                prop_assert_eq!(parsed.len, bytes.len());
                prop_assert_eq!(parsed.caller, Caller::Client(canonical(source)));
            }
        }
    }

    /// A connection whose far end sends `pieces`, a moment apart; returns the near end and
    /// the far end's address.
    fn sending(pieces: &'static [&'static [u8]]) -> std::io::Result<(TcpStream, SocketAddr)> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        let mut far = TcpStream::connect(listener.local_addr()?)?;
        let (near, peer) = listener.accept()?;
        std::thread::spawn(move || {
            for piece in pieces {
                let _ = std::io::Write::write_all(&mut far, piece);
                std::thread::sleep(Duration::from_millis(20));
            }
            // Open past the header's time, so that the wait is what ends it.
            std::thread::sleep(HEADER_WAIT + Duration::from_secs(1));
        });
        Ok((near, peer))
    }

    #[test]
    fn a_header_in_pieces_is_read_whole_and_what_follows_is_kept() -> std::io::Result<()> {
        let (mut near, peer) =
            sending(&[b"PROXY TCP4 198.51.", b"100.7 192.0.2.1 40123 9999\r\nAda"])?;
        let (caller, rest) = read_header(&mut near, peer).expect("a valid header");
        assert_eq!(caller, Caller::Client(addr("198.51.100.7:40123")));
        assert_eq!(rest, b"Ada");
        Ok(())
    }

    #[test]
    fn a_health_check_and_an_unknown_client_are_told_apart() -> std::io::Result<()> {
        let (mut near, peer) = sending(&[b"\r\n\r\n\0\r\nQUIT\n\x20\x00\x00\x00"])?;
        assert_eq!(
            read_header(&mut near, peer),
            Ok((Caller::Balancer, Vec::new()))
        );
        let (mut near, peer) = sending(&[b"PROXY UNKNOWN\r\n"])?;
        assert_eq!(
            read_header(&mut near, peer),
            Ok((Caller::Client(peer), Vec::new()))
        );
        Ok(())
    }

    #[test]
    fn no_header_is_refused_with_the_reason() -> std::io::Result<()> {
        let (mut near, peer) = sending(&[b"Ada\r\n"])?;
        let why = read_header(&mut near, peer).unwrap_err();
        assert_eq!(why, "not a PROXY protocol header");
        let (mut near, peer) = sending(&[b"PROXY TCP4 1.2.3.4"])?;
        let started = std::time::Instant::now();
        let why = read_header(&mut near, peer).unwrap_err();
        assert!(started.elapsed() >= HEADER_WAIT, "{:?}", started.elapsed());
        assert_eq!(why, "no whole PROXY header within 3s");
        Ok(())
    }

    /// A connection that fails in the middle of a header is refused for that, not for a wait
    /// that ran out. The far end closes with input unread, which is a reset where the platform
    /// resets then (Linux does) and an end of stream where it does not.
    #[test]
    fn a_connection_that_fails_during_the_header_is_not_called_slow() -> std::io::Result<()> {
        use std::io::Write;
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        let mut far = TcpStream::connect(listener.local_addr()?)?;
        let (mut near, peer) = listener.accept()?;
        near.write_all(b"unread")?;
        far.write_all(b"PROXY TCP4 ")?;
        far.set_read_timeout(Some(Duration::from_secs(5)))?;
        far.peek(&mut [0])?;
        drop(far);
        let why = read_header(&mut near, peer).unwrap_err();
        assert_ne!(why, "no whole PROXY header within 3s");
        Ok(())
    }
}
