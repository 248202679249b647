//! Cutting the bytes of a TCP connection into messages: the original's rule (each `recv` is one
//! message) until the first newline, then lines. The original's rule works only for a client that
//! waits for each reply; lines are what `nc` and `telnet` send. A pure state machine with no
//! socket in sight, so every edge case is a two-line unit test.

use std::ops::{Deref, DerefMut};

use crate::protocol::EXIT;

/// The longest line, in bytes without its line ending, that a line-mode connection may send.
///
/// A longer line ends the connection, so a peer that never sends a newline costs bounded memory.
pub(crate) const MAX_LINE: usize = 64 * 1024;

/// How many bytes one read asks for: in raw mode, the largest message, as the original's
/// `recv(1024)`. It is also what an idle connection's buffer holds, so it stays small.
pub(crate) const READ_SIZE: usize = 1024;

/// The most the framer's buffer holds: a partial line at the limit, a `\r` that may begin its
/// ending, and one read.
const MAX_BUFFER: usize = MAX_LINE + 1 + READ_SIZE;

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

/// The framer's bytes: where one read's worth fits, as every idle connection's does, inline in
/// the framer, which lives on the connection thread's stack, in the pages each message touches
/// anyway; on the heap only while a long line needs more, and back inline after it.
#[derive(Debug)]
// Large on purpose: the inline variant is the point, and a framer is made once a connection.
#[allow(clippy::large_enum_variant)]
enum Region {
    Inline([u8; READ_SIZE]),
    Heap(Vec<u8>),
}

impl Region {
    /// Makes the region `len` bytes long (at least one read's worth), keeping its first `keep`.
    fn resize(&mut self, len: usize, keep: usize) {
        match self {
            Region::Heap(heap) if len <= READ_SIZE => {
                let mut inline = [0; READ_SIZE];
                inline[..keep].copy_from_slice(&heap[..keep]);
                *self = Region::Inline(inline);
            }
            Region::Heap(heap) if len > heap.len() => {
                // Exactly: the caller grows by doubling, within the framer's bound.
                heap.reserve_exact(len - heap.len());
                heap.resize(len, 0);
            }
            Region::Heap(heap) => {
                heap.truncate(len);
                heap.shrink_to_fit();
            }
            Region::Inline(_) if len <= READ_SIZE => {}
            Region::Inline(inline) => {
                let mut heap = Vec::with_capacity(len);
                heap.extend_from_slice(&inline[..keep]);
                heap.resize(len, 0);
                *self = Region::Heap(heap);
            }
        }
    }

    /// What the region holds in memory: one read's worth inline, or what it took on the heap.
    #[cfg(test)]
    fn capacity(&self) -> usize {
        match self {
            Region::Inline(inline) => inline.len(),
            Region::Heap(heap) => heap.capacity(),
        }
    }
}

impl Deref for Region {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Region::Inline(inline) => inline,
            Region::Heap(heap) => heap,
        }
    }
}

impl DerefMut for Region {
    fn deref_mut(&mut self) -> &mut [u8] {
        match self {
            Region::Inline(inline) => inline,
            Region::Heap(heap) => heap,
        }
    }
}

/// Fails for a line of `len` bytes (without its ending) that is over the limit.
fn check_length(len: usize) -> std::io::Result<()> {
    if len > MAX_LINE {
        Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("line longer than {MAX_LINE} bytes"),
        ))
    } else {
        Ok(())
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
    buf: Region,
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
            buf: Region::Inline([0; READ_SIZE]),
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

    /// Returns the free part of the buffer for the next read to fill: [`READ_SIZE`] bytes, never
    /// more, so one read brings at most that many messages' worth of bytes.
    ///
    /// The buffer holds a partial line and one read: at most [`MAX_LINE`] + 1 + [`READ_SIZE`]
    /// bytes (a longer line is an error from [`Framer::next_message`]). It shrinks back to
    /// [`READ_SIZE`] once nothing is pending, and to half its size once it holds less than that,
    /// so a burst of long lines leaves nothing behind.
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
        let wanted = self.end + READ_SIZE;
        if self.buf.len() < wanted {
            // By doubling, so that a long line sent a byte at a time costs a few copies, not one
            // a byte; never past what a pending line and one read can need.
            let grown = wanted.max((2 * self.buf.len()).min(MAX_BUFFER));
            self.buf.resize(grown, self.end);
        } else if self.buf.len() > wanted && (self.end == 0 || self.buf.len() >= 2 * wanted) {
            self.buf.resize(wanted, self.end);
        }
        &mut self.buf[self.end..wanted]
    }

    /// Puts `bytes` (at most one read's worth) in the buffer as if a read had brought them, and
    /// says how many: for what came behind a PROXY header. `None` when there are none.
    pub(crate) fn preload(&mut self, bytes: &[u8]) -> Option<usize> {
        if bytes.is_empty() {
            return None;
        }
        self.spare()[..bytes.len()].copy_from_slice(bytes);
        Some(bytes.len())
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
    /// An error of kind `InvalidData` when a line is longer than [`MAX_LINE`] bytes without its
    /// ending, however the bytes were split into reads; the connection should be closed.
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
        let Some(offset) = self.buf[from..self.end].iter().position(|&b| b == b'\n') else {
            self.scanned = self.end - self.start;
            // A `\r` read last may be the first half of a line ending, split from its `\n` by
            // the way TCP cut the bytes: it does not count against the limit yet.
            let pending_ending = self.buf[self.end - 1] == b'\r';
            return check_length(self.scanned - usize::from(pending_ending)).map(|()| None);
        };
        let newline = from + offset;
        let line = self.start..newline;
        self.start = newline + 1;
        self.scanned = 0;
        let line = &self.buf[line];
        let (name, ending) = match line.strip_suffix(b"\r") {
            Some(name) => (name, &b"\r\n"[..]),
            None => (line, &b"\n"[..]),
        };
        check_length(name.len())?;
        Ok(Some(Message::new(name, ending)))
    }

    /// Takes the partial line left when the peer ends the stream, if there is one.
    ///
    /// It is answered like a line, with no line ending, since none came: a `\r` it ends with is
    /// part of it, and counts against the limit.
    ///
    /// # Errors
    ///
    /// As [`Framer::next_message`], for a partial line over the limit.
    pub(crate) fn finish(&mut self) -> std::io::Result<Option<Message<'_>>> {
        if self.start == self.end {
            return Ok(None);
        }
        let rest = &self.buf[self.start..self.end];
        self.start = self.end;
        if self.line_mode {
            check_length(rest.len())?;
        }
        Ok(Some(Message::new(rest, b"")))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::testing::Rng;

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
        assert_eq!(framer.finish().unwrap(), name(b"Bob", b""));
        assert_eq!(framer.finish().unwrap(), None);
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

    #[test]
    fn a_long_line_a_byte_at_a_time_grows_the_buffer_a_few_times() {
        let mut framer = Framer::new();
        framer.feed(b"\n");
        drain(&mut framer);
        let mut capacities = vec![framer.buf.capacity()];
        for _ in 0..MAX_LINE {
            framer.feed(b"a");
            assert_eq!(framer.next_message().unwrap(), None);
            if capacities.last() != Some(&framer.buf.capacity()) {
                capacities.push(framer.buf.capacity());
            }
        }
        // Doubling from one read's worth to the most it holds, and no more steps.
        let doublings = (MAX_BUFFER / READ_SIZE).ilog2() as usize;
        assert!(capacities.len() <= doublings + 2, "{capacities:?}");
    }

    #[test]
    fn a_partial_line_at_the_end_counts_its_cr_against_the_limit() {
        let mut framer = Framer::new();
        framer.feed(b"\n");
        drain(&mut framer);
        for _ in 0..MAX_LINE / READ_SIZE {
            framer.feed(&[b'a'; READ_SIZE]);
        }
        framer.feed(b"\r");
        assert_eq!(framer.next_message().unwrap(), None);
        let err = framer.finish().unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
    }

    #[test]
    fn a_line_over_the_limit_fails_whatever_the_split() {
        for len in [MAX_LINE + 1, MAX_LINE + 100, MAX_LINE + READ_SIZE - 1] {
            let mut framer = Framer::new();
            framer.feed(b"\n");
            drain(&mut framer);
            // In reads of READ_SIZE, the last read holds the end of the line and its newline.
            let line = [vec![b'a'; len], b"\n".to_vec()].concat();
            let mut failed = None;
            for chunk in line.chunks(READ_SIZE) {
                framer.feed(chunk);
                match framer.next_message() {
                    Ok(None) => {}
                    Ok(Some(_)) => panic!("a line of {len} bytes was answered"),
                    Err(err) => {
                        failed = Some(err);
                        break;
                    }
                }
            }
            let err = failed.expect("the line was refused");
            assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
        }
    }

    #[test]
    fn a_read_gets_read_size_bytes_and_the_buffer_shrinks_back() {
        let mut framer = Framer::new();
        framer.feed(b"\n");
        drain(&mut framer);
        for _ in 0..MAX_LINE / READ_SIZE {
            framer.feed(&[b'a'; READ_SIZE]);
            assert_eq!(framer.next_message().unwrap(), None);
        }
        assert_eq!(framer.spare().len(), READ_SIZE);
        assert!(framer.buf.capacity() <= MAX_BUFFER);
        framer.feed(b"\n");
        assert_eq!(drain(&mut framer).len(), 1);
        assert_eq!(framer.spare().len(), READ_SIZE);
        assert_eq!(framer.buf.capacity(), READ_SIZE);
    }

    /// What a connection's bytes mean, by the plain rules of the protocol: how many messages
    /// came, each as (name, ending) or `<exit>`, and how it ended.
    #[derive(Debug, PartialEq, Eq, Default)]
    pub(crate) struct Heard {
        pub(crate) messages: Vec<(Vec<u8>, &'static [u8])>,
        pub(crate) too_long: bool,
        pub(crate) exit: bool,
    }

    /// The protocol's rules, written as plainly as possible: a read is one message until a read
    /// holds a newline; from there on, lines; a line over the limit ends it all.
    pub(crate) fn model(reads: &[Vec<u8>], eof: bool) -> Heard {
        let mut heard = Heard::default();
        let take = |heard: &mut Heard, name: &[u8], ending: &'static [u8]| {
            if name == b"exit" {
                heard.exit = true;
            } else {
                heard.messages.push((name.to_vec(), ending));
            }
            heard.exit
        };
        // Raw mode: each read a message, up to the first read that holds a newline.
        let first_line = reads.iter().position(|read| read.contains(&b'\n'));
        for read in &reads[..first_line.unwrap_or(reads.len())] {
            if take(&mut heard, read, b"") {
                return heard;
            }
        }
        // Line mode from there on: how the bytes were cut no longer matters.
        let stream = reads[first_line.unwrap_or(reads.len())..].concat();
        for line in stream.split_inclusive(|&b| b == b'\n') {
            let (name, ending) = match line.strip_suffix(b"\n") {
                Some(line) => match line.strip_suffix(b"\r") {
                    Some(name) => (name, &b"\r\n"[..]),
                    None => (line, &b"\n"[..]),
                },
                // A partial line: at the end of the stream a name, `\r` and all; before it,
                // the `\r` may yet begin its ending.
                None if eof => (line, &b""[..]),
                None => (line.strip_suffix(b"\r").unwrap_or(line), &b""[..]),
            };
            if name.len() > MAX_LINE {
                heard.too_long = true;
                return heard;
            }
            if ending.is_empty() && !eof {
                return heard;
            }
            if take(&mut heard, name, ending) {
                return heard;
            }
        }
        heard
    }

    /// Runs the framer over `reads` (and the end of the stream, if `eof`), checking the buffer's
    /// bounds after every read.
    fn framed(reads: &[Vec<u8>], eof: bool) -> Heard {
        let mut heard = Heard::default();
        let mut framer = Framer::new();
        for read in reads {
            framer.feed(read);
            assert!(framer.buf.capacity() <= MAX_BUFFER);
            loop {
                match framer.next_message() {
                    Ok(Some(Message::Name { name, ending })) => {
                        heard.messages.push((name.to_vec(), ending))
                    }
                    Ok(Some(Message::Exit)) => {
                        heard.exit = true;
                        return heard;
                    }
                    Ok(None) => break,
                    Err(_) => {
                        heard.too_long = true;
                        return heard;
                    }
                }
            }
            if framer.start == framer.end {
                framer.spare();
                assert_eq!(framer.buf.capacity(), READ_SIZE, "not back to idle");
            }
        }
        if eof {
            match framer.finish() {
                Ok(Some(Message::Name { name, ending })) => {
                    heard.messages.push((name.to_vec(), ending))
                }
                Ok(Some(Message::Exit)) => heard.exit = true,
                Ok(None) => {}
                Err(_) => heard.too_long = true,
            }
        }
        heard
    }

    /// A random connection's bytes: a few raw messages, then lines of every kind (empty, CRLF,
    /// the exit word, stray `\r`, invalid UTF-8, lengths around the limit), cut into reads of
    /// random sizes up to READ_SIZE.
    pub(crate) fn random_reads(rng: &mut Rng) -> Vec<Vec<u8>> {
        let alphabet = [b'a', b'z', b'\r', 0xff, b' ', b'e', b'x', b'i', b't'];
        let mut reads = Vec::new();
        for _ in 0..rng.between(0, 3) {
            let len = rng.between(1, 40);
            let raw: Vec<u8> = (0..len).map(|_| *rng.pick(&alphabet)).collect();
            reads.push(if rng.chance(5) { b"exit".to_vec() } else { raw });
        }
        let mut stream = Vec::new();
        for _ in 0..rng.between(1, 30) {
            let len = match rng.between(0, 99) {
                0..=59 => rng.between(0, 12),
                60..=94 => rng.between(13, 3000),
                _ => rng.between(MAX_LINE - 2, MAX_LINE + 2),
            };
            if rng.chance(3) {
                stream.extend_from_slice(b"exit");
            } else {
                stream.extend((0..len).map(|_| *rng.pick(&alphabet)));
            }
            stream.extend_from_slice(if rng.chance(50) { b"\r\n" } else { b"\n" });
        }
        if rng.chance(50) {
            // A partial line left at the end, now and then one at the limit, `\r` and all.
            let len = match rng.between(0, 2) {
                0 => rng.between(MAX_LINE - 1, MAX_LINE + 1),
                _ => rng.between(1, 20),
            };
            stream.extend((0..len).map(|_| *rng.pick(&alphabet)));
            if rng.chance(30) {
                stream.push(b'\r');
            }
        }
        let mut rest = &stream[..];
        while !rest.is_empty() {
            let most = *rng.pick(&[1, 3, 64, 700, READ_SIZE]);
            let (read, after) = rest.split_at(rng.between(1, most).min(rest.len()));
            reads.push(read.to_vec());
            rest = after;
        }
        reads
    }

    #[test]
    fn framing_matches_the_protocols_rules_whatever_the_segmentation() {
        for seed in 0..300 {
            let mut rng = Rng::new(seed);
            let reads = random_reads(&mut rng);
            let eof = rng.chance(50);
            let expected = model(&reads, eof);
            let got = framed(&reads, eof);
            assert!(
                got == expected,
                "seed {seed}: the framer and the rules disagree"
            );
        }
    }
}
