//! Cutting the bytes of a TCP connection into messages: the original's rule (each `recv` is one
//! message) until the first newline, then lines. The original's rule works only for a client that
//! waits for each reply; lines are what `nc` and `telnet` send. A pure state machine with no
//! socket in sight, so every edge case is a two-line unit test.

use crate::protocol::EXIT;

/// The longest line, in bytes without its line ending, that a line-mode connection may send.
///
/// A longer line ends the connection, so a peer that never sends a newline costs bounded memory.
pub(crate) const MAX_LINE: usize = 64 * 1024;

/// How many bytes one read asks for: in raw mode, the largest message.
pub(crate) const READ_SIZE: usize = 8 * 1024;

/// One message read from a TCP connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Message<'a> {
    /// A name to greet, with the line ending it came with (empty in raw mode), which the reply
    /// repeats.
    Name {
        /// The name's bytes, which need not be UTF-8.
        name: &'a [u8],
        /// `b""`, `b"\n"` or `b"\r\n"`.
        ending: &'static [u8],
    },
    /// The exit word: the peer is done.
    Exit,
}

impl<'a> Message<'a> {
    fn new(name: &'a [u8], ending: &'static [u8]) -> Self {
        if name == EXIT {
            Message::Exit
        } else {
            Message::Name { name, ending }
        }
    }
}

/// Splits the bytes of one TCP connection into messages.
///
/// A connection starts in raw mode, as the original server reads: each read is one message. The
/// first newline byte switches it to line mode for good: from the read that holds it on, every
/// line ending in `\n` or `\r\n` is one message, several lines in one read are several messages
/// and a partial line waits for the rest of it.
///
/// The framer owns the read buffer, so bytes go from the socket straight into it:
/// read into [`Framer::spare`], report the count to [`Framer::filled`], then take messages from
/// [`Framer::next_message`] until it returns `None`.
#[derive(Debug)]
pub(crate) struct Framer {
    buf: Vec<u8>,
    /// Where the bytes not yet taken as messages start.
    start: usize,
    /// Where the bytes read so far end.
    end: usize,
    /// How far past `start` is known to hold no newline, so a long line is scanned once.
    scanned: usize,
    line_mode: bool,
}

impl Default for Framer {
    fn default() -> Self {
        Self::new()
    }
}

impl Framer {
    /// Creates a framer in raw mode with an empty buffer of [`READ_SIZE`] bytes.
    pub(crate) fn new() -> Self {
        Framer {
            buf: vec![0; READ_SIZE],
            start: 0,
            end: 0,
            scanned: 0,
            line_mode: false,
        }
    }

    /// Returns true once a newline has switched the connection to line mode.
    #[cfg(test)]
    pub(crate) fn is_line_mode(&self) -> bool {
        self.line_mode
    }

    /// Returns the free part of the buffer, for the next read to fill.
    ///
    /// It is never empty: a partial line is at most [`MAX_LINE`] bytes (a longer one is an error
    /// from [`Framer::next_message`]), and the buffer grows to hold one plus a read.
    pub(crate) fn spare(&mut self) -> &mut [u8] {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
            self.scanned = 0;
        } else if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.buf.len() - self.end < READ_SIZE {
            self.buf.resize(self.end + READ_SIZE, 0);
        }
        &mut self.buf[self.end..]
    }

    /// Records that the last read put `n` bytes at the start of [`Framer::spare`].
    pub(crate) fn filled(&mut self, n: usize) {
        let new = self.end..self.end + n;
        if !self.line_mode && self.buf[new.clone()].contains(&b'\n') {
            self.line_mode = true;
        }
        self.end = new.end;
    }

    /// Copies `bytes` in as if one read had returned them.
    ///
    /// # Panics
    ///
    /// If `bytes` is longer than [`READ_SIZE`], the most one read returns.
    #[cfg(test)]
    pub(crate) fn feed(&mut self, bytes: &[u8]) {
        self.spare()[..bytes.len()].copy_from_slice(bytes);
        self.filled(bytes.len());
    }

    /// Takes the next whole message from the bytes read so far, or `None` when a read is needed.
    ///
    /// # Errors
    ///
    /// An error of kind `InvalidData` when a line grows past [`MAX_LINE`] bytes without a newline;
    /// the connection should be closed.
    pub(crate) fn next_message(&mut self) -> std::io::Result<Option<Message<'_>>> {
        if self.start == self.end {
            return Ok(None);
        }
        if !self.line_mode {
            let name = &self.buf[self.start..self.end];
            self.start = self.end;
            return Ok(Some(Message::new(name, b"")));
        }
        let from = self.start + self.scanned;
        match self.buf[from..self.end].iter().position(|&b| b == b'\n') {
            Some(offset) => {
                let newline = from + offset;
                let line = self.start..newline;
                self.start = newline + 1;
                self.scanned = 0;
                let line = &self.buf[line];
                Ok(Some(match line.strip_suffix(b"\r") {
                    Some(name) => Message::new(name, b"\r\n"),
                    None => Message::new(line, b"\n"),
                }))
            }
            None => {
                self.scanned = self.end - self.start;
                // The limit is on the line without its ending: a `\r` read last may be the
                // first half of one, split from its `\n` by the way TCP cut the bytes.
                let pending_ending = self.buf[self.end - 1] == b'\r';
                let line_so_far = self.scanned - usize::from(pending_ending);
                if line_so_far > MAX_LINE {
                    Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!("line longer than {MAX_LINE} bytes"),
                    ))
                } else {
                    Ok(None)
                }
            }
        }
    }

    /// Takes the partial line left when the peer ends the stream, if there is one.
    ///
    /// It is answered like a line, with no line ending, since none came.
    pub(crate) fn finish(&mut self) -> Option<Message<'_>> {
        if self.start == self.end {
            return None;
        }
        let rest = &self.buf[self.start..self.end];
        self.start = self.end;
        Some(Message::new(rest, b""))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name<'a>(name: &'a [u8], ending: &'static [u8]) -> Option<Message<'a>> {
        Some(Message::Name { name, ending })
    }

    /// Drains every message the framer holds now, as owned (name, ending) pairs.
    fn drain(framer: &mut Framer) -> Vec<(Vec<u8>, &'static [u8])> {
        let mut out = Vec::new();
        for _ in 0..1000 {
            match framer.next_message().unwrap() {
                Some(Message::Name { name, ending }) => out.push((name.to_vec(), ending)),
                Some(Message::Exit) => out.push((b"<exit>".to_vec(), b"")),
                None => return out,
            }
        }
        panic!("framer kept yielding messages");
    }

    #[test]
    fn raw_mode_takes_each_read_whole() {
        let mut framer = Framer::new();
        framer.feed(b"Jaber");
        assert_eq!(framer.next_message().unwrap(), name(b"Jaber", b""));
        assert_eq!(framer.next_message().unwrap(), None);
        framer.feed(b"Katy Betty\r");
        assert_eq!(framer.next_message().unwrap(), name(b"Katy Betty\r", b""));
        assert!(!framer.is_line_mode());
    }

    #[test]
    fn raw_exit_is_recognised_only_whole() {
        let mut framer = Framer::new();
        framer.feed(b"exit");
        assert_eq!(framer.next_message().unwrap(), Some(Message::Exit));
        framer.feed(b"exits");
        assert_eq!(framer.next_message().unwrap(), name(b"exits", b""));
    }

    #[test]
    fn first_newline_switches_to_line_mode_for_good() {
        let mut framer = Framer::new();
        framer.feed(b"Ada");
        assert_eq!(framer.next_message().unwrap(), name(b"Ada", b""));
        framer.feed(b"Bob\n");
        assert!(framer.is_line_mode());
        assert_eq!(framer.next_message().unwrap(), name(b"Bob", b"\n"));
        framer.feed(b"Cy");
        assert_eq!(framer.next_message().unwrap(), None);
    }

    #[test]
    fn crlf_is_trimmed_and_echoed() {
        let mut framer = Framer::new();
        framer.feed(b"Ada\r\nBob\n");
        assert_eq!(
            drain(&mut framer),
            vec![
                (b"Ada".to_vec(), &b"\r\n"[..]),
                (b"Bob".to_vec(), &b"\n"[..])
            ]
        );
    }

    #[test]
    fn several_lines_in_one_read_are_several_messages() {
        let mut framer = Framer::new();
        framer.feed(b"a\nb\nc\nexit\nd\n");
        let names: Vec<Vec<u8>> = drain(&mut framer).into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, [&b"a"[..], b"b", b"c", b"<exit>", b"d"]);
    }

    #[test]
    fn a_line_split_across_reads_waits_for_its_end() {
        let mut framer = Framer::new();
        framer.feed(b"x\nHuang");
        assert_eq!(framer.next_message().unwrap(), name(b"x", b"\n"));
        assert_eq!(framer.next_message().unwrap(), None);
        framer.feed(b"xin\r");
        assert_eq!(framer.next_message().unwrap(), None);
        framer.feed(b"\nexi");
        assert_eq!(framer.next_message().unwrap(), name(b"Huangxin", b"\r\n"));
        framer.feed(b"t\r\n");
        assert_eq!(framer.next_message().unwrap(), Some(Message::Exit));
    }

    #[test]
    fn empty_lines_and_invalid_utf8_are_names() {
        let mut framer = Framer::new();
        framer.feed(b"\n\xc3\x28\r\n");
        assert_eq!(framer.next_message().unwrap(), name(b"", b"\n"));
        assert_eq!(framer.next_message().unwrap(), name(b"\xc3\x28", b"\r\n"));
    }

    #[test]
    fn exit_line_with_crlf_is_exit() {
        let mut framer = Framer::new();
        framer.feed(b"exit\r\n");
        assert_eq!(framer.next_message().unwrap(), Some(Message::Exit));
    }

    #[test]
    fn finish_returns_the_partial_line_without_ending() {
        let mut framer = Framer::new();
        framer.feed(b"a\nBob");
        assert_eq!(framer.next_message().unwrap(), name(b"a", b"\n"));
        assert_eq!(framer.next_message().unwrap(), None);
        assert_eq!(framer.finish(), name(b"Bob", b""));
        assert_eq!(framer.finish(), None);
    }

    #[test]
    fn a_line_may_be_max_line_bytes_but_not_more() {
        let mut framer = Framer::new();
        framer.feed(b"\n");
        assert_eq!(framer.next_message().unwrap(), name(b"", b"\n"));
        let chunk = [b'a'; 1024];
        for _ in 0..MAX_LINE / chunk.len() {
            framer.feed(&chunk);
            assert_eq!(framer.next_message().unwrap(), None);
        }
        framer.feed(b"\n");
        match framer.next_message().unwrap() {
            Some(Message::Name { name, ending }) => {
                assert_eq!((name.len(), ending), (MAX_LINE, &b"\n"[..]))
            }
            other => panic!("expected the long line, got {other:?}"),
        }
        for _ in 0..MAX_LINE / chunk.len() {
            framer.feed(&chunk);
            framer.next_message().unwrap();
        }
        framer.feed(b"a");
        let err = framer.next_message().unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
    }

    #[test]
    fn the_limit_excludes_a_line_ending_split_from_its_line() {
        let chunk = [b'a'; 1024];
        let fill = |framer: &mut Framer| {
            framer.feed(b"\n");
            framer.next_message().unwrap();
            for _ in 0..MAX_LINE / chunk.len() {
                framer.feed(&chunk);
                assert_eq!(framer.next_message().unwrap(), None);
            }
        };
        let mut framer = Framer::new();
        fill(&mut framer);
        framer.feed(b"\r");
        assert_eq!(framer.next_message().unwrap(), None);
        framer.feed(b"\n");
        match framer.next_message().unwrap() {
            Some(Message::Name { name, ending }) => {
                assert_eq!((name.len(), ending), (MAX_LINE, &b"\r\n"[..]))
            }
            other => panic!("expected the long line, got {other:?}"),
        }
        // A `\r` that turns out to be part of the line counts against the limit.
        let mut framer = Framer::new();
        fill(&mut framer);
        framer.feed(b"\r");
        assert_eq!(framer.next_message().unwrap(), None);
        framer.feed(b"x");
        let err = framer.next_message().unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
    }

    #[test]
    fn the_buffer_stays_bounded_under_a_stream_of_lines() {
        let mut framer = Framer::new();
        for i in 0..10_000 {
            framer.feed(format!("name{i}\nhalf").as_bytes());
            drain(&mut framer);
            framer.feed(b"\n");
            drain(&mut framer);
        }
        assert!(framer.buf.len() <= 2 * READ_SIZE, "{}", framer.buf.len());
    }
}
