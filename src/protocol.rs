//! The greeting protocol's text rules: the welcome, the exit word, the reply to a name, and the
//! server's other words on the wire. Pure functions; no sockets here, so every rule is a two-line
//! unit test. How a TCP stream is cut into messages is the crate's `framer` module.
//!
//! From the original: `sock.send(b'Welcome!')` is [`WELCOME`], `data.decode('utf-8') == 'exit'`
//! is [`EXIT`], and `'Hello, %s!' % data` is [`greeting`].

/// The bytes the TCP server sends as soon as it accepts a connection.
pub const WELCOME: &[u8] = b"Welcome!";

/// The message that asks the TCP server to close the connection.
pub const EXIT: &[u8] = b"exit";

/// The bytes that come before the name in a reply.
pub(crate) const GREETING_PREFIX: &[u8] = b"Hello, ";

/// The bytes that come after the name in a reply.
pub(crate) const GREETING_SUFFIX: &[u8] = b"!";

/// The line the TCP server sends before it closes a connection whose line is longer than the
/// framer allows (64 KiB).
pub(crate) const LINE_TOO_LONG: &[u8] = b"error: line too long\n";

/// The line a connection over the connection limit gets, instead of the welcome, before it is
/// closed.
pub(crate) const BUSY: &[u8] = b"busy: too many connections, try again later\n";

/// Returns the reply to `name`: `Hello, ` + name + `!`, byte for byte.
///
/// ```
/// assert_eq!(greeting::protocol::greeting(b"Ada"), b"Hello, Ada!");
/// ```
pub fn greeting(name: &[u8]) -> Vec<u8> {
    let mut reply = Vec::with_capacity(greeting_len(name.len()));
    push_greeting(&mut reply, name, b"");
    reply
}

/// Appends the reply to `name`, followed by `ending`, to `out`.
///
/// This is [`greeting`] without an allocation of its own, for a buffer that is reused.
pub(crate) fn push_greeting(out: &mut Vec<u8>, name: &[u8], ending: &[u8]) {
    for part in [GREETING_PREFIX, name, GREETING_SUFFIX, ending] {
        out.extend_from_slice(part);
    }
}

/// Returns true if `bytes` look like a reply (`Hello, …!`) rather than a name.
///
/// The UDP server does not answer such a datagram: only another greeting server sends one, and
/// answering it would start a reflection loop between the two.
pub fn is_greeting(bytes: &[u8]) -> bool {
    bytes.len() >= greeting_len(0)
        && bytes.starts_with(GREETING_PREFIX)
        && bytes.ends_with(GREETING_SUFFIX)
}

/// Returns the length of the reply to a name of `name_len` bytes (the name plus 8).
pub(crate) const fn greeting_len(name_len: usize) -> usize {
    GREETING_PREFIX.len() + name_len + GREETING_SUFFIX.len()
}

/// Shows bytes from the wire or a user in a one-line message: quoted, escaped, and cut short
/// after 60 bytes with the whole length said (`"aaa…"... (100 bytes)`), so a long name never
/// floods a terminal.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Shown<'a>(pub &'a [u8]);

/// How many bytes a [`Shown`] quote shows at most.
const LONGEST_QUOTE: usize = 60;

impl std::fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let cut = &self.0[..self.0.len().min(LONGEST_QUOTE)];
        write!(f, "\"{}\"", cut.escape_ascii())?;
        if cut.len() < self.0.len() {
            write!(f, "... ({} bytes)", self.0.len())?;
        }
        Ok(())
    }
}

/// The error for a reply that came, `got`, that is not the one `expected`: `InvalidData`,
/// saying how it differs: both quoted short, and, when they differ only past what the quotes
/// show, from which byte on and what each holds there. A quote cut short says the whole length;
/// `more` says that more came than was looked at.
pub(crate) fn mismatch(expected: &[u8], got: &[u8], more: bool) -> std::io::Error {
    let mut said = format!("expected {} but got {}", Shown(expected), Shown(got));
    if more {
        said += " and more";
    }
    let same = expected.iter().zip(got).take_while(|(a, b)| a == b).count();
    if same >= LONGEST_QUOTE {
        let (expected, got) = (Shown(&expected[same..]), Shown(&got[same..]));
        said += &format!("; they differ from byte {same} on: {expected} against {got}");
    }
    std::io::Error::new(std::io::ErrorKind::InvalidData, said)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_bytes_are_shown_short() {
        assert_eq!(Shown(b"Ada\n").to_string(), r#""Ada\n""#);
        let long = format!("\"{}\"... (100 bytes)", "a".repeat(60));
        assert_eq!(Shown(&[b'a'; 100]).to_string(), long);
    }

    #[test]
    fn greeting_wraps_the_name() {
        assert_eq!(greeting(b"Ada"), b"Hello, Ada!");
        assert_eq!(greeting(b""), b"Hello, !");
        assert_eq!(greeting_len(3), 11);
    }

    #[test]
    fn greeting_keeps_invalid_utf8_bytes() {
        assert_eq!(greeting(b"\xff\xfe"), b"Hello, \xff\xfe!");
    }

    #[test]
    fn greetings_are_recognised() {
        assert!(is_greeting(b"Hello, Ada!"));
        assert!(is_greeting(b"Hello, !"));
        assert!(is_greeting(&greeting(b"Hello, x!")));
        assert!(!is_greeting(b"Hello, Ada"));
        assert!(!is_greeting(b"Hello,!"));
        assert!(!is_greeting(b"Ada!"));
        assert!(!is_greeting(b""));
    }

    #[test]
    fn push_greeting_appends_the_ending() {
        let mut out = b"x".to_vec();
        push_greeting(&mut out, "Zoë".as_bytes(), b"\r\n");
        assert_eq!(out, "xHello, Zoë!\r\n".as_bytes());
    }

    #[test]
    fn a_mismatch_says_where_the_two_differ() {
        let short = mismatch(b"Hello, Ada!", b"Hello, Bob!", false);
        assert_eq!(short.kind(), std::io::ErrorKind::InvalidData);
        assert_eq!(
            short.to_string(),
            r#"expected "Hello, Ada!" but got "Hello, Bob!""#
        );
        let expected = [&b"Hello, "[..], &[b'a'; 100], b"!"].concat();
        let got = [&b"Hello, "[..], &[b'a'; 70], b"!Hello, "].concat();
        let a53 = "a".repeat(53);
        let a30 = "a".repeat(30);
        assert_eq!(
            mismatch(&expected, &got, false).to_string(),
            format!(
                r#"expected "Hello, {a53}"... (108 bytes) but got "Hello, {a53}"... (85 bytes); they differ from byte 77 on: "{a30}!" against "!Hello, ""#
            )
        );
        let more = mismatch(b"Hello, Ada!", b"Hello, Bob!", true).to_string();
        assert!(
            more.ends_with(r#" but got "Hello, Bob!" and more"#),
            "{more}"
        );
    }
}
