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
    [GREETING_PREFIX, name, GREETING_SUFFIX].concat()
}

/// Appends the reply to `name`, followed by `ending`, to `out`.
///
/// This is [`greeting`] without an allocation of its own, for a buffer that is reused.
pub(crate) fn push_greeting(out: &mut Vec<u8>, name: &[u8], ending: &[u8]) {
    for part in [GREETING_PREFIX, name, GREETING_SUFFIX, ending] {
        out.extend_from_slice(part);
    }
}

/// Returns true if `bytes` look like a reply (`Hello, …!`, perhaps after a server's id: `[s1]
/// Hello, …!`) rather than a name.
///
/// The UDP server does not answer such a datagram: only another greeting server sends one, and
/// answering it would start a reflection loop between the two.
pub fn is_greeting(bytes: &[u8]) -> bool {
    // The suffix comes after the prefix: a greeting is at least `Hello, !`.
    let name = split_id(bytes).1.strip_prefix(GREETING_PREFIX);
    name.is_some_and(|name| name.ends_with(GREETING_SUFFIX))
}

/// The longest server id, in bytes. A server with one says it in brackets before its words, so
/// they grow by at most this and 3 bytes.
pub const MAX_ID: usize = 32;

/// A server's name, to tell apart the servers behind a load balancer (`tcp-server --id s1`): 1
/// to [`MAX_ID`] bytes, none of them a space, a control character or a square bracket. A
/// server with one says it in brackets before its welcome (TCP) and before each reply (UDP):
/// `[s1] Welcome!`, `[s1] Hello, Ada!`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerId(String);

impl ServerId {
    /// Checks `id` and makes it a server id.
    ///
    /// # Errors
    ///
    /// A message saying why `id` cannot be one.
    pub fn new(id: &str) -> Result<Self, String> {
        match is_id(id.as_bytes()) {
            true => Ok(ServerId(id.to_string())),
            false => Err(format!(
                "an id is 1 to {MAX_ID} bytes with no space, control character, [ or ]: {}",
                Shown(id.as_bytes())
            )),
        }
    }

    /// Returns `words` as a server with this id says them: `[ID] ` before them.
    pub fn tag(&self, words: &[u8]) -> Vec<u8> {
        [b"[", self.0.as_bytes(), b"] ", words].concat()
    }
}

impl std::fmt::Display for ServerId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Whether `id` can be a server id: see [`ServerId`].
fn is_id(id: &[u8]) -> bool {
    !id.is_empty() && std::str::from_utf8(id).is_ok() && may_be_id(id)
}

/// Whether `bytes` may be a server id, or its start cut anywhere, even inside a character: no
/// more than [`MAX_ID`] bytes, and none of the characters an id may not hold.
fn may_be_id(bytes: &[u8]) -> bool {
    let allowed = |c: char| !(c.is_whitespace() || c.is_control() || c == '[' || c == ']');
    bytes.len() <= MAX_ID && String::from_utf8_lossy(bytes).chars().all(allowed)
}

/// Splits a server's id off the start of `bytes`: `[s1] Hello, Ada!` gives `s1` and `Hello,
/// Ada!`; bytes that do not begin with one are returned whole.
///
/// ```
/// use greeting::protocol::split_id;
/// assert_eq!(split_id(b"[s1] Welcome!"), (Some(&b"s1"[..]), &b"Welcome!"[..]));
/// assert_eq!(split_id(b"Welcome!"), (None, &b"Welcome!"[..]));
/// ```
pub fn split_id(bytes: &[u8]) -> (Option<&[u8]>, &[u8]) {
    let tagged = bytes.strip_prefix(b"[").and_then(|rest| {
        let end = rest.iter().take(MAX_ID + 1).position(|&b| b == b']')?;
        let (id, words) = (&rest[..end], rest[end + 1..].strip_prefix(b" ")?);
        is_id(id).then_some((Some(id), words))
    });
    tagged.unwrap_or((None, bytes))
}

/// How the bytes that have arrived stand against the words `expected`, which a server with an
/// id may put after it (`[s1] Welcome!`) where `tagged` allows.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Arriving {
    /// The start of them: read on.
    More,
    /// All of them.
    Whole,
    /// Something else.
    Wrong,
}

/// How `arrived` stands against `expected`, perhaps after a server's id if `tagged`: see
/// [`Arriving`]. However the bytes were split, a start of the right words is never `Wrong`.
pub(crate) fn arriving(arrived: &[u8], expected: &[u8], tagged: bool) -> Arriving {
    let words = match (tagged, split_id(arrived)) {
        (true, (Some(_), words)) => words,
        // An id not whole yet, perhaps with its closing bracket, is none of the words yet.
        (true, _) if arrived.starts_with(b"[") => {
            let id = arrived[1..].strip_suffix(b"]").unwrap_or(&arrived[1..]);
            if !may_be_id(id) {
                return Arriving::Wrong;
            }
            b""
        }
        _ => arrived,
    };
    match words.len() == expected.len() {
        _ if !expected.starts_with(words) => Arriving::Wrong,
        true => Arriving::Whole,
        false => Arriving::More,
    }
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
        if self.0.len() <= LONGEST_QUOTE {
            return write!(f, "\"{}\"", self.0.escape_ascii());
        }
        let cut = self.0[..LONGEST_QUOTE].escape_ascii();
        write!(f, "\"{cut}\"... ({} bytes)", self.0.len())
    }
}

/// The error for a reply that came, `got`, that is not the one `expected`: `InvalidData`,
/// saying how it differs: both quoted short, and, when they differ only past what the quotes
/// show, from which byte on and what each holds there. A quote cut short says the whole length;
/// `more` says that more came than was looked at.
pub(crate) fn mismatch(expected: &[u8], got: &[u8], more: bool) -> std::io::Error {
    let more = if more { " and more" } else { "" };
    let mut said = format!("expected {} but got {}{more}", Shown(expected), Shown(got));
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
    fn a_server_id_is_short_and_plain() {
        for id in ["s1", "web-2.eu", "服务器1", &"x".repeat(MAX_ID)] {
            assert_eq!(
                ServerId::new(id).map(|id| id.to_string()),
                Ok(id.to_string())
            );
        }
        for id in [
            "",
            "a b",
            "a\tb",
            "[s1]",
            "s[",
            "s]",
            "\u{3000}",
            &"x".repeat(MAX_ID + 1),
        ] {
            assert!(ServerId::new(id).is_err(), "{id:?}");
        }
        let id = ServerId::new("s1").unwrap();
        assert_eq!(id.tag(WELCOME), b"[s1] Welcome!");
    }

    #[test]
    fn an_id_is_split_off_only_when_it_is_one() {
        assert_eq!(
            split_id(b"[s1] Hello, Ada!"),
            (Some(&b"s1"[..]), &b"Hello, Ada!"[..])
        );
        for bytes in [
            &b"Hello, Ada!"[..],
            b"[s1]Hello",
            b"[] Hello",
            b"[s 1] x",
            b"[s1",
        ] {
            assert_eq!(split_id(bytes), (None, bytes));
        }
        let long = [b"[", &[b'x'; MAX_ID + 1][..], b"] Hello, !"].concat();
        assert_eq!(split_id(&long), (None, &long[..]));
        let longest = [b"[", &[b'x'; MAX_ID][..], b"] Hello, !"].concat();
        assert_eq!(
            split_id(&longest),
            (Some(&longest[1..=MAX_ID]), &b"Hello, !"[..])
        );
    }

    #[test]
    fn a_greeting_after_an_id_is_a_greeting() {
        assert!(is_greeting(b"[s1] Hello, Ada!"));
        assert!(!is_greeting(b"[s1] Ada"));
        assert!(!is_greeting(b"[s 1] Hello, Ada!x"));
    }

    #[test]
    fn words_arriving_are_told_from_wrong_ones() {
        let check = |arrived: &[u8], tagged| arriving(arrived, WELCOME, tagged);
        assert_eq!(check(b"Welcome!", false), Arriving::Whole);
        assert_eq!(check(b"[s1] Welcome!", true), Arriving::Whole);
        assert_eq!(check(b"[s1] Welcome!", false), Arriving::Wrong);
        for wrong in [
            &b"[s1]W"[..],
            b"[s 1",
            "[s\u{3000}".as_bytes(),
            b"[] ",
            b"[s1] Hello",
            b"Welcome!!",
            b"SSH-2.0",
        ] {
            assert_eq!(
                check(wrong, true),
                Arriving::Wrong,
                "{:?}",
                wrong.escape_ascii()
            );
        }
        let long = [b"[", &[b'x'; MAX_ID + 1][..]].concat();
        assert_eq!(check(&long, true), Arriving::Wrong);
        // An id of the longest length is read on to its end.
        let longest = [b"[", &[b'x'; MAX_ID][..], b"] Welcome"].concat();
        for cut in 1..=longest.len() {
            assert_eq!(check(&longest[..cut], true), Arriving::More, "{cut}");
        }
    }

    proptest::proptest! {
        /// Whatever the id and however the words are cut, a start of them is read on, never
        /// called wrong, and the whole is whole.
        #[test]
        fn every_start_of_tagged_words_is_read_on(
            id in "[^\\s\\[\\]\\p{Cc}]{1,8}",
            words in proptest::sample::select(vec![WELCOME.to_vec(), greeting(b"Ada")]),
        ) {
            proptest::prop_assume!(id.len() <= MAX_ID);
            let tagged = ServerId::new(&id).expect("a valid id").tag(&words);
            for (bytes, tag) in [(&tagged, true), (&words, true), (&words, false)] {
                for cut in 0..bytes.len() {
                    proptest::prop_assert_eq!(arriving(&bytes[..cut], &words, tag), Arriving::More);
                }
                proptest::prop_assert_eq!(arriving(bytes, &words, tag), Arriving::Whole);
            }
            proptest::prop_assert!(split_id(&tagged) == (Some(id.as_bytes()), &words[..]));
        }
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
