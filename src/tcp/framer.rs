//! Cutting the bytes of a TCP connection into messages: the original's rule (each `recv` is one
//! message) until the first newline, then lines. The original's rule works only for a client that
//! waits for each reply; lines are what `nc` and `telnet` send. Pure: bytes in, names out, no
//! socket in sight, so every edge case is a two-line unit test.

use crate::protocol::EXIT;

/// The longest line, in bytes without its line ending, that a line-mode connection may send.
///
/// A longer line ends the connection, so a peer that never sends a newline costs bounded memory.
pub(crate) const MAX_LINE: usize = 64 * 1024;

/// How many bytes one read asks for: in raw mode, the largest message, as the original's
/// `recv(1024)`.
pub(crate) const READ_SIZE: usize = 1024;

/// How far doubling grows a partial line: a line at the limit and one read. A `\r` that may
/// begin the line's ending can take it one byte past this, in a growth of its own.
const MAX_PARTIAL: usize = MAX_LINE + READ_SIZE;

/// What a read came to, once the names in it are answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framed {
    /// Read on.
    More,
    /// The exit word: close, though more may have come behind it.
    Exit,
    /// The end of the stream: close.
    End,
    /// A line longer than [`MAX_LINE`]: tell the peer, and close.
    TooLong,
}

/// Splits the bytes of one TCP connection into messages.
///
/// A connection starts in raw mode, as the original server reads: each read is one message. The
/// first newline byte switches it to line mode for good: from the read that holds it on, every
/// line ending in `\n` or `\r\n` is one message, several lines in one read are several messages,
/// and a partial line waits for the rest of it. The read buffer is the caller's (a connection
/// keeps it on its stack); the framer holds only the start of a line that spans reads.
#[derive(Debug, Default)]
pub(crate) struct Framer {
    line_mode: bool,
    /// The start of a line whose end has not come yet; on the heap only while there is one.
    partial: Vec<u8>,
}

impl Framer {
    /// Takes the bytes of one read (none: the end of the stream) and calls `answer` with each
    /// whole name in them, in order, with its line ending: `\n` or `\r\n`, or none in raw mode
    /// and for a partial line the end of the stream leaves, which is a name too, `\r` and all.
    /// It stops at the exit word and at a line over the limit, however the bytes were split
    /// into reads.
    ///
    /// # Errors
    ///
    /// The first error `answer` returns.
    pub(crate) fn take<E>(
        &mut self,
        read: &[u8],
        mut answer: impl FnMut(&[u8], &'static [u8]) -> Result<(), E>,
    ) -> Result<Framed, E> {
        // Answers one message, unless it is the exit word.
        let mut one = |name: &[u8], ending| match name == EXIT {
            true => Ok(Framed::Exit),
            false => answer(name, ending).map(|()| Framed::More),
        };
        if read.is_empty() {
            let rest = std::mem::take(&mut self.partial);
            return match rest.len() {
                n if n > MAX_LINE => Ok(Framed::TooLong),
                0 => Ok(Framed::End),
                _ => match one(&rest, b"")? {
                    Framed::More => Ok(Framed::End),
                    framed => Ok(framed),
                },
            };
        }
        if !self.line_mode && !read.contains(&b'\n') {
            return one(read, b"");
        }
        self.line_mode = true;
        for piece in read.split_inclusive(|&b| b == b'\n') {
            let Some(line) = piece.strip_suffix(b"\n") else {
                self.keep(piece);
                // A `\r` read last may be the first half of a line ending, split from its `\n`
                // by the way TCP cut the bytes: it does not count against the limit yet.
                let pending = self.partial.len() - usize::from(self.partial.ends_with(b"\r"));
                return Ok(match pending > MAX_LINE {
                    true => Framed::TooLong,
                    false => Framed::More,
                });
            };
            let line = match self.partial.is_empty() {
                true => line,
                false => self.keep(line),
            };
            let (name, ending) = match line.strip_suffix(b"\r") {
                Some(name) => (name, &b"\r\n"[..]),
                None => (line, &b"\n"[..]),
            };
            if name.len() > MAX_LINE {
                return Ok(Framed::TooLong);
            }
            let framed = one(name, ending)?;
            // A long line's memory goes back once it is answered.
            self.partial.clear();
            self.partial.shrink_to(READ_SIZE);
            if framed == Framed::Exit {
                return Ok(framed);
            }
        }
        Ok(Framed::More)
    }

    /// Adds `bytes` to the partial line, growing it by doubling, so that a long line sent a
    /// byte at a time costs a few copies rather than one a byte, and never past [`MAX_PARTIAL`];
    /// returns the line so far.
    fn keep(&mut self, bytes: &[u8]) -> &[u8] {
        let wanted = self.partial.len() + bytes.len();
        if wanted > self.partial.capacity() {
            let doubled = (2 * self.partial.capacity()).max(READ_SIZE);
            let grown = doubled.clamp(wanted, MAX_PARTIAL.max(wanted));
            self.partial.reserve_exact(grown - self.partial.len());
        }
        self.partial.extend_from_slice(bytes);
        &self.partial
    }
}

/// Runs a framer over `reads`, an empty one being the end of the stream, until it stops: the
/// names it took with their endings, how it stopped (`More` if the reads ran out first), and
/// the most it held at once. For the fuzz target, fuzz/fuzz_targets/framer.rs.
#[cfg(fuzzing)]
pub fn fuzz(reads: &[&[u8]]) -> (Vec<(Vec<u8>, &'static [u8])>, Framed, usize) {
    let (mut framer, mut names, mut held) = (Framer::default(), vec![], 0);
    let mut take = |name: &[u8], ending| Ok::<_, ()>(names.push((name.to_vec(), ending)));
    let stopped = reads.iter().find_map(|read| {
        let framed = framer.take(read, &mut take).unwrap_or(Framed::More);
        held = held.max(framer.partial.capacity());
        (framed != Framed::More).then_some(framed)
    });
    (names, stopped.unwrap_or(Framed::More), held)
}

/// The protocol's framing rules written as plainly as possible, which the property test here and
/// the fuzz target (fuzz/) hold the framer to.
#[cfg(test)]
#[path = "../../fuzz/framer_model.rs"]
pub(crate) mod model;

#[cfg(test)]
pub(crate) mod tests {
    use super::model::{Heard, model};
    use super::*;
    use proptest::collection::vec;
    use proptest::prelude::*;
    use proptest::sample::select;

    type Names = Vec<(Vec<u8>, &'static [u8])>;

    /// Feeds one read; returns the names it gave, and what it came to.
    fn feed(framer: &mut Framer, read: &[u8]) -> (Names, Framed) {
        let mut names = Vec::new();
        let framed = framer.take(read, |name, ending| {
            names.push((name.to_vec(), ending));
            Ok::<_, ()>(())
        });
        (names, framed.expect("answering cannot fail here"))
    }

    fn names(list: &[(&[u8], &'static [u8])]) -> Names {
        list.iter().map(|(n, e)| (n.to_vec(), *e)).collect()
    }

    #[test]
    fn raw_mode_takes_each_read_whole() {
        let mut framer = Framer::default();
        assert_eq!(
            feed(&mut framer, b"Jaber"),
            (names(&[(b"Jaber", b"")]), Framed::More)
        );
        let katy = feed(&mut framer, b"Katy Betty\r");
        assert_eq!(katy, (names(&[(b"Katy Betty\r", b"")]), Framed::More));
        assert!(!framer.line_mode);
    }

    #[test]
    fn raw_exit_is_recognised_only_whole() {
        assert_eq!(
            feed(&mut Framer::default(), b"exit"),
            (vec![], Framed::Exit)
        );
        let exits = feed(&mut Framer::default(), b"exits");
        assert_eq!(exits, (names(&[(b"exits", b"")]), Framed::More));
    }

    #[test]
    fn first_newline_switches_to_line_mode_for_good() {
        let mut framer = Framer::default();
        feed(&mut framer, b"Ada");
        assert_eq!(feed(&mut framer, b"Bob\n").0, names(&[(b"Bob", b"\n")]));
        assert!(framer.line_mode);
        assert_eq!(feed(&mut framer, b"Cy"), (vec![], Framed::More));
    }

    #[test]
    fn crlf_is_trimmed_and_echoed_and_several_lines_are_several_names() {
        let mut framer = Framer::default();
        let got = feed(&mut framer, b"Ada\r\nBob\na\n\n\xc3\x28\r\n");
        let expected = [(&b"Ada"[..], &b"\r\n"[..]), (b"Bob", b"\n"), (b"a", b"\n")];
        let mut expected = names(&expected);
        expected.extend(names(&[(b"", b"\n"), (b"\xc3\x28", b"\r\n")]));
        assert_eq!(got, (expected, Framed::More));
        let exit = feed(&mut framer, b"c\nexit\r\nd\n");
        assert_eq!(exit, (names(&[(b"c", b"\n")]), Framed::Exit));
    }

    #[test]
    fn a_line_split_across_reads_waits_for_its_end() {
        let mut framer = Framer::default();
        assert_eq!(feed(&mut framer, b"x\nHuang").0, names(&[(b"x", b"\n")]));
        assert_eq!(feed(&mut framer, b"xin\r"), (vec![], Framed::More));
        let huangxin = feed(&mut framer, b"\nexi");
        assert_eq!(huangxin.0, names(&[(b"Huangxin", b"\r\n")]));
        assert_eq!(feed(&mut framer, b"t\r\n"), (vec![], Framed::Exit));
    }

    #[test]
    fn the_end_of_the_stream_answers_a_partial_line_without_ending() {
        let mut framer = Framer::default();
        feed(&mut framer, b"a\nBob\r");
        assert_eq!(
            feed(&mut framer, b""),
            (names(&[(b"Bob\r", b"")]), Framed::End)
        );
        assert_eq!(feed(&mut Framer::default(), b""), (vec![], Framed::End));
        let mut framer = Framer::default();
        feed(&mut framer, b"\nexit");
        assert_eq!(feed(&mut framer, b""), (vec![], Framed::Exit));
    }

    /// A framer in line mode holding a partial line of `len` bytes, fed a read at a time.
    fn pending(len: usize) -> Framer {
        let mut framer = Framer::default();
        feed(&mut framer, b"\n");
        for chunk in vec![b'a'; len].chunks(READ_SIZE) {
            assert_eq!(feed(&mut framer, chunk), (vec![], Framed::More));
        }
        framer
    }

    #[test]
    fn a_line_may_be_max_line_bytes_but_not_more() {
        let (got, framed) = feed(&mut pending(MAX_LINE), b"\n");
        assert_eq!(
            (got[0].0.len(), got[0].1, framed),
            (MAX_LINE, &b"\n"[..], Framed::More)
        );
        assert_eq!(feed(&mut pending(MAX_LINE), b"a").1, Framed::TooLong);
        for len in [MAX_LINE + 1, MAX_LINE + 100, MAX_LINE + READ_SIZE - 1] {
            let mut framer = Framer::default();
            feed(&mut framer, b"\n");
            let line = [vec![b'a'; len], b"\n".to_vec()].concat();
            let framed = line
                .chunks(READ_SIZE)
                .map(|read| feed(&mut framer, read))
                .last();
            assert_eq!(
                framed.map(|(got, framed)| (got.len(), framed)),
                Some((0, Framed::TooLong))
            );
        }
    }

    #[test]
    fn the_limit_excludes_a_line_ending_split_from_its_line() {
        let mut framer = pending(MAX_LINE);
        assert_eq!(feed(&mut framer, b"\r"), (vec![], Framed::More));
        let (got, _) = feed(&mut framer, b"\n");
        assert_eq!((got[0].0.len(), got[0].1), (MAX_LINE, &b"\r\n"[..]));
        // A `\r` that turns out to be part of the line counts against the limit.
        let mut framer = pending(MAX_LINE);
        feed(&mut framer, b"\r");
        assert_eq!(feed(&mut framer, b"x").1, Framed::TooLong);
        // And so does one left at the end of the stream.
        let mut framer = pending(MAX_LINE);
        feed(&mut framer, b"\r");
        assert_eq!(feed(&mut framer, b"").1, Framed::TooLong);
        // A partial line at the limit that the end of the stream leaves is still a name.
        let (got, framed) = feed(&mut pending(MAX_LINE), b"");
        assert_eq!((got[0].0.len(), framed), (MAX_LINE, Framed::End));
    }

    #[test]
    fn a_long_line_a_byte_at_a_time_grows_the_buffer_a_few_times_and_then_gives_it_back() {
        let mut framer = pending(0);
        let mut capacities = vec![framer.partial.capacity()];
        for _ in 0..MAX_LINE {
            feed(&mut framer, b"a");
            assert!(framer.partial.capacity() <= MAX_LINE + READ_SIZE);
            if capacities.last() != Some(&framer.partial.capacity()) {
                capacities.push(framer.partial.capacity());
            }
        }
        // Doubling from one read's worth to the most it holds, and no more steps.
        let doublings = ((MAX_LINE + READ_SIZE) / READ_SIZE).ilog2() as usize;
        assert!(capacities.len() <= doublings + 3, "{capacities:?}");
        feed(&mut framer, b"\nhalf");
        assert!(
            framer.partial.capacity() <= READ_SIZE,
            "{}",
            framer.partial.capacity()
        );
    }

    /// Bytes of the kinds that matter: letters, the exit word's, `\r`, a space, invalid UTF-8.
    fn text(len: impl Strategy<Value = usize>) -> impl Strategy<Value = Vec<u8>> {
        let byte = select(&b"az\r\xff exit"[..]);
        len.prop_flat_map(move |len| vec(byte.clone(), len))
    }

    /// A line's bytes without its ending: empty, short, long, at the limit, or the exit word.
    fn line() -> impl Strategy<Value = Vec<u8>> {
        let around_the_limit = (MAX_LINE - 2..=MAX_LINE + 2, select(&b"a\r"[..]))
            .prop_map(|(len, last)| [vec![b'a'; len - 1], vec![last]].concat());
        prop_oneof![
            12 => text(0..12usize),
            6 => text(13..3000usize),
            1 => around_the_limit,
            1 => Just(b"exit".to_vec()),
        ]
    }

    /// A random connection: a few raw messages, then lines of every kind, each ending in CRLF
    /// or LF, and maybe a partial line, cut into reads of random sizes up to [`READ_SIZE`];
    /// and whether the peer ends the stream.
    pub(crate) fn connection() -> impl Strategy<Value = (Vec<Vec<u8>>, bool)> {
        let raw = vec(
            prop_oneof![9 => text(1..40usize), 1 => Just(b"exit".to_vec())],
            0..3,
        );
        let lines = vec((line(), any::<bool>()), 1..30);
        let partial = proptest::option::of(prop_oneof![text(1..20usize), line()]);
        let sizes = vec(
            prop_oneof![
                Just(1usize),
                1..4usize,
                1..65usize,
                1..701usize,
                1..=READ_SIZE
            ],
            1..50,
        );
        (raw, lines, partial, sizes, any::<bool>()).prop_map(|(raw, lines, partial, sizes, eof)| {
            let mut stream = Vec::new();
            for (line, crlf) in lines {
                stream.extend(line);
                stream.extend_from_slice(if crlf { b"\r\n" } else { b"\n" });
            }
            stream.extend(partial.unwrap_or_default());
            let mut reads = raw;
            let mut rest = &stream[..];
            for size in sizes.iter().cycle() {
                if rest.is_empty() {
                    break;
                }
                let (read, after) = rest.split_at((*size).min(rest.len()));
                reads.push(read.to_vec());
                rest = after;
            }
            (reads, eof)
        })
    }

    proptest! {
        /// However the connection's bytes are cut into reads, the framer hears what the plain
        /// rules say, and holds no more than a line at the limit and a read.
        #[test]
        fn framing_matches_the_protocols_rules_whatever_the_segmentation(
            (reads, eof) in connection(),
        ) {
            let mut heard = Heard::default();
            let mut framer = Framer::default();
            let ends = eof.then_some(Vec::new());
            for read in reads.iter().chain(&ends) {
                let (names, framed) = feed(&mut framer, read);
                heard.names.extend(names);
                // A line at the limit, the `\r` that may begin its ending, and a read.
                prop_assert!(framer.partial.capacity() <= MAX_LINE + 1 + READ_SIZE);
                match framed {
                    Framed::More => {}
                    Framed::Exit => {
                        heard.exit = true;
                        break;
                    }
                    Framed::End => break,
                    Framed::TooLong => {
                        heard.too_long = true;
                        break;
                    }
                }
            }
            prop_assert_eq!(heard, model(&reads, eof));
        }
    }
}
