//! One connection's conversation: the original's `tcplink`. The welcome, then read, decide,
//! write, until the exit word or the end of the stream. Deciding is `replies`, a pure function
//! of the bytes read; what surrounds the loop (timeouts, the lingering close after a line too
//! long) is a named call each.

use std::io::{self, ErrorKind, IoSlice, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Mutex;
use std::thread;
use std::time::Duration;

use super::admission::Admitted;
use super::proxied::{From, read_header};
use crate::duration::{Dur, is_timeout};
use crate::framer::{Framer, Message};
use crate::linger::close_gracefully;
use crate::log::Log;
use crate::protocol::{self, LINE_TOO_LONG, WELCOME};
use crate::rate_limit::RateLimited;

/// What each connection's handler needs to know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ConnectionConfig {
    /// The pause before each reply, as the original's `time.sleep(1)`; zero for none.
    pub(crate) delay: Duration,
    /// How long the peer may send nothing, or take nothing we send, before the connection is
    /// closed; `None` for no limit.
    pub(crate) idle_timeout: Option<Duration>,
    /// Whether every connection begins with a PROXY header from a load balancer.
    pub(crate) proxy_protocol: bool,
}

/// What every connection's thread shares: the settings, where the lines go, and the reports
/// of connections refused for their PROXY header, at most one a second.
#[derive(Debug)]
pub(crate) struct Context {
    pub(crate) config: ConnectionConfig,
    pub(crate) log: Log,
    pub(crate) reports: Log,
    pub(crate) refusals: Mutex<RateLimited>,
}

/// The original's `tcplink`: logs the connection's start and end around the conversation.
///
/// Behind a balancer the lines name the client its header names; the balancer's own
/// connections (its health checks, several a second) leave no line, nor does their hang-up.
/// The slot is given back as soon as the connection is closed, before the line that says so:
/// whoever reads `closed` in the log may connect again at once and find the slot free.
pub(crate) fn serve(admitted: Admitted, context: &Context) {
    let Admitted {
        mut stream,
        peer,
        slot,
    } = admitted;
    let (from, first) = match context.config.proxy_protocol {
        false => (From::Client(peer), Vec::new()),
        true => match read_header(&mut stream, peer) {
            Ok(found) => found,
            Err(why) => return context.refused(peer, &why),
        },
    };
    let (log, reports) = (&context.log, &context.reports);
    if let From::Client(client) = from {
        log.line(format_args!("Accept new connection from {client}..."));
    }
    let result = handle_connection(stream, &first, &context.config);
    drop(slot);
    match (result, from) {
        (Ok(()), _) => {}
        (Err(err), From::Client(client)) => reports.line(format_args!("{client}: {err}")),
        (Err(err), From::Balancer) if is_hang_up(&err) => {}
        (Err(err), From::Balancer) => reports.line(format_args!("{peer}: {err}")),
    }
    if let From::Client(client) = from {
        log.line(format_args!("Connection from {client} closed."));
    }
}

impl Context {
    /// Reports a connection closed for its PROXY header, without a word to it.
    fn refused(&self, peer: SocketAddr, why: &str) {
        let mut refusals = self.refusals.lock().unwrap_or_else(|p| p.into_inner());
        refusals.report(
            &self.reports,
            format_args!("{peer}: closed without a welcome: {why}"),
        );
    }
}

/// Returns true for the errors of a peer that simply went away.
fn is_hang_up(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted | ErrorKind::BrokenPipe
    )
}

/// The conversation of the original's `tcplink`: the welcome, then for each read the replies
/// to what it held, until the exit word or the end of the stream; then the stream is closed.
///
/// Read, decide, write: [`Replies::answer`] takes what was read to the framer and writes the
/// replies, one write per read (with a delay, one per reply, each after its pause). Blocks for
/// the life of the connection.
///
/// # Errors
///
/// I/O failures, an idle peer (kind `TimedOut`), and a line longer than 64 KiB (kind
/// `InvalidData`, after telling the peer).
// Never inlined into `serve`: its frame holds the framer's buffer, and the log lines `serve`
// formats before and after it must not go a page deeper into the stack for it (an idle
// connection's stack is 8 KiB resident, and a page more would be 4 KiB more per connection).
#[inline(never)]
fn handle_connection(
    mut stream: TcpStream,
    first: &[u8],
    config: &ConnectionConfig,
) -> io::Result<()> {
    let idle = |err: io::Error| idle_error(err, config.idle_timeout);
    configure(&stream, config)?;
    let mut framer = Framer::new();
    let mut replies = Replies::new(config.delay);
    stream.write_all(WELCOME).map_err(idle)?; // sock.send(b'Welcome!')
    // What came in right behind a PROXY header is the conversation's first read.
    let mut came = framer.preload(first);
    loop {
        // data = sock.recv(1024): in raw mode, one read of up to 1 KiB is one message.
        let read = match came.take() {
            Some(read) => read,
            None => receive(&mut stream, framer.spare()).map_err(idle)?,
        };
        // if not data or data == 'exit': break; time.sleep(1); sock.send('Hello, %s!' % data)
        match replies
            .answer(&mut framer, read, &mut stream)
            .map_err(idle)?
        {
            Next::Read => {}
            Next::Close => return Ok(()),
            Next::Refuse(err) => {
                // The rest of the line is still streaming in; closing on it unread would reset
                // the connection, and the peer could lose the error line.
                close_gracefully(stream);
                return Err(err);
            }
        }
    }
}

/// Sets the socket options a connection runs with: no Nagle delay, and the idle timeout on both
/// directions.
fn configure(stream: &TcpStream, config: &ConnectionConfig) -> io::Result<()> {
    // A reply is a single small write; without NODELAY it could wait ~40 ms for a delayed ACK.
    stream.set_nodelay(true)?;
    stream.set_read_timeout(config.idle_timeout)?;
    stream.set_write_timeout(config.idle_timeout)
}

/// Reads once into `buf`, again if a signal interrupted the read.
fn receive(stream: &mut TcpStream, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match stream.read(buf) {
            Err(err) if err.kind() == ErrorKind::Interrupted => {}
            result => return result,
        }
    }
}

/// What a connection does once the replies to a read are sent.
#[derive(Debug)]
enum Next {
    /// Read again.
    Read,
    /// Close: the peer said the exit word or ended the stream.
    Close,
    /// Close gracefully: the peer sent a line too long, and has been told so.
    Refuse(io::Error),
}

/// The most bytes of replies gathered before they are written. The replies to one read fit
/// unless the peer pipelines hundreds of lines at once; then they go out in several writes, so
/// what a connection holds stays bounded whatever it is sent.
const REPLY_BATCH: usize = 8 * 1024;

/// The capacity the reply buffer keeps between reads; a burst that grew it past this gives the
/// memory back once it is answered.
const IDLE_REPLY_CAPACITY: usize = 1024;

/// The replies to what the peer sent, on their way to it: gathered in a buffer of at most
/// [`REPLY_BATCH`] bytes, and written when the read's messages are all answered or the buffer
/// is full. A reply larger than the buffer is written straight from the framer's bytes.
#[derive(Debug)]
struct Replies {
    out: Vec<u8>,
    delay: Duration,
}

impl Replies {
    fn new(delay: Duration) -> Self {
        Replies {
            out: Vec::new(),
            delay,
        }
    }

    /// Takes a read of `read` bytes (0: the end of the stream) into `framer`, and writes to
    /// `peer` the reply to every whole message it completed, in order. A partial line left at
    /// the end of the stream is answered too, without a line ending.
    fn answer(
        &mut self,
        framer: &mut Framer,
        read: usize,
        peer: &mut impl Write,
    ) -> io::Result<Next> {
        let next = if read == 0 {
            match framer.finish() {
                Ok(Some(Message::Name { name, ending })) => self.reply(peer, name, ending)?,
                Ok(_) => {}
                Err(err) => {
                    self.out.extend_from_slice(LINE_TOO_LONG);
                    self.write_out(peer)?;
                    return Ok(Next::Refuse(err));
                }
            }
            Next::Close
        } else {
            framer.filled(read);
            self.answer_all(framer, peer)?
        };
        self.write_out(peer)?;
        if self.out.capacity() > IDLE_REPLY_CAPACITY {
            self.out = Vec::new();
        }
        Ok(next)
    }

    fn answer_all(&mut self, framer: &mut Framer, peer: &mut impl Write) -> io::Result<Next> {
        loop {
            match framer.next_message() {
                Ok(Some(Message::Name { name, ending })) => self.reply(peer, name, ending)?,
                Ok(Some(Message::Exit)) => return Ok(Next::Close),
                Ok(None) => return Ok(Next::Read),
                Err(err) => {
                    self.out.extend_from_slice(LINE_TOO_LONG);
                    return Ok(Next::Refuse(err));
                }
            }
        }
    }

    /// Adds the reply to `name` (`Hello, NAME!` and the line's ending), writing first what is
    /// gathered if the reply would not fit beside it; with a delay, pauses and writes it alone.
    fn reply(&mut self, peer: &mut impl Write, name: &[u8], ending: &[u8]) -> io::Result<()> {
        let len = protocol::greeting_len(name.len()) + ending.len();
        if !self.delay.is_zero() {
            self.write_out(peer)?;
            thread::sleep(self.delay);
        } else if self.out.len() + len > REPLY_BATCH {
            self.write_out(peer)?;
        }
        if len > REPLY_BATCH {
            let mut parts = protocol::greeting_parts(name, ending);
            return write_all_vectored(peer, &mut parts);
        }
        protocol::push_greeting(&mut self.out, name, ending);
        if !self.delay.is_zero() {
            self.write_out(peer)?;
        }
        Ok(())
    }

    fn write_out(&mut self, peer: &mut impl Write) -> io::Result<()> {
        if !self.out.is_empty() {
            peer.write_all(&self.out)?;
            self.out.clear();
        }
        Ok(())
    }
}

/// Writes all of `parts`, in as few calls as the peer takes them.
fn write_all_vectored(peer: &mut impl Write, mut parts: &mut [IoSlice<'_>]) -> io::Result<()> {
    while !parts.is_empty() {
        match peer.write_vectored(parts) {
            Ok(0) => return Err(ErrorKind::WriteZero.into()),
            Ok(n) => IoSlice::advance_slices(&mut parts, n),
            Err(err) if err.kind() == ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    Ok(())
}

/// Turns the error a socket timeout gives (`WouldBlock` on Unix) into one that says what happened.
fn idle_error(err: io::Error, idle_timeout: Option<Duration>) -> io::Error {
    match idle_timeout {
        Some(limit) if is_timeout(&err) => io::Error::new(
            ErrorKind::TimedOut,
            format!("idle for {}, closed", Dur(limit)),
        ),
        _ => err,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framer::READ_SIZE;
    use crate::framer::tests::{model, random_reads};
    use crate::testing::Rng;

    /// A peer that keeps each write it is given apart.
    #[derive(Default)]
    struct Peer {
        writes: Vec<Vec<u8>>,
    }

    impl Write for Peer {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.writes.push(buf.to_vec());
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// What one read made the conversation write, and what it does next.
    struct Answered {
        writes: Vec<Vec<u8>>,
        next: Next,
    }

    /// Feeds `bytes` to a fresh framer (in line mode if `lines`) as one read.
    fn answer(bytes: &[u8], lines: bool, delay: Duration) -> Answered {
        let mut framer = Framer::new();
        if lines {
            framer.feed(b"\n");
            framer.next_message().expect("an empty line is a name");
        }
        let mut peer = Peer::default();
        framer.spare()[..bytes.len()].copy_from_slice(bytes);
        let mut replies = Replies::new(delay);
        let next = replies.answer(&mut framer, bytes.len(), &mut peer).unwrap();
        Answered {
            writes: peer.writes,
            next,
        }
    }

    #[test]
    fn a_raw_read_is_one_reply() {
        let answered = answer(b"Jaber", false, Duration::ZERO);
        assert_eq!(answered.writes, [b"Hello, Jaber!"]);
        assert!(matches!(answered.next, Next::Read));
    }

    #[test]
    fn pipelined_lines_are_answered_in_one_write() {
        let answered = answer(b"Ada\r\nBob\n", true, Duration::ZERO);
        assert_eq!(answered.writes, [&b"Hello, Ada!\r\nHello, Bob!\n"[..]]);
        assert!(matches!(answered.next, Next::Read));
    }

    #[test]
    fn with_a_delay_each_reply_is_written_after_its_own_pause() {
        let delay = Duration::from_millis(30);
        let started = std::time::Instant::now();
        let answered = answer(b"Ada\r\nBob\n", true, delay);
        assert!(started.elapsed() >= delay * 2);
        assert_eq!(answered.writes, [&b"Hello, Ada!\r\n"[..], b"Hello, Bob!\n"]);
    }

    #[test]
    fn the_exit_word_closes_after_the_replies_before_it() {
        let answered = answer(b"Ada\nexit\nnever\n", true, Duration::ZERO);
        assert_eq!(answered.writes, [b"Hello, Ada!\n"]);
        assert!(matches!(answered.next, Next::Close));
        let answered = answer(b"exit", false, Duration::ZERO);
        assert!(answered.writes.is_empty());
        assert!(matches!(answered.next, Next::Close));
    }

    #[test]
    fn the_end_of_the_stream_answers_a_partial_line_and_closes() {
        let mut framer = Framer::new();
        framer.feed(b"x\nhalf");
        let (mut replies, mut peer) = (Replies::new(Duration::ZERO), Peer::default());
        let spare = framer.spare();
        spare[..3].copy_from_slice(b"way");
        let next = replies.answer(&mut framer, 3, &mut peer).unwrap();
        assert!(matches!(next, Next::Read));
        let next = replies.answer(&mut framer, 0, &mut peer).unwrap();
        assert!(matches!(next, Next::Close));
        assert_eq!(peer.writes, [&b"Hello, x!\n"[..], b"Hello, halfway!"]);
    }

    /// Feeds `reads` one by one until the conversation is over; returns how it ended.
    fn converse(replies: &mut Replies, peer: &mut Peer, reads: &[Vec<u8>]) -> Next {
        let mut framer = Framer::new();
        let mut next = Next::Read;
        for read in reads {
            framer.spare()[..read.len()].copy_from_slice(read);
            next = replies.answer(&mut framer, read.len(), peer).unwrap();
            if !matches!(next, Next::Read) {
                break;
            }
        }
        next
    }

    #[test]
    fn a_line_too_long_ends_with_the_error_line() {
        let (mut replies, mut peer) = (Replies::new(Duration::ZERO), Peer::default());
        let mut reads = vec![b"Ada\n".to_vec()];
        reads.extend(std::iter::repeat_n(vec![b'y'; READ_SIZE], 70));
        let Next::Refuse(err) = converse(&mut replies, &mut peer, &reads) else {
            panic!("the line was not refused")
        };
        assert_eq!(err.kind(), ErrorKind::InvalidData);
        assert_eq!(peer.writes.concat(), b"Hello, Ada!\nerror: line too long\n");
    }

    #[test]
    fn a_reply_too_long_for_the_buffer_is_written_from_the_framer() {
        let (mut replies, mut peer) = (Replies::new(Duration::ZERO), Peer::default());
        let line = [vec![b'n'; 3 * REPLY_BATCH], b"\n".to_vec()].concat();
        let mut reads = vec![b"\n".to_vec()];
        reads.extend(line.chunks(READ_SIZE).map(<[u8]>::to_vec));
        assert!(matches!(
            converse(&mut replies, &mut peer, &reads),
            Next::Read
        ));
        let expected = [&b"Hello, !\nHello, "[..], &line[..line.len() - 1], b"!\n"].concat();
        assert_eq!(peer.writes.concat(), expected);
        assert!(replies.out.capacity() <= IDLE_REPLY_CAPACITY);
    }

    /// The bytes a peer should get for what the framer's model heard.
    fn expected_replies(reads: &[Vec<u8>], eof: bool) -> Vec<u8> {
        let heard = model(reads, eof);
        let mut out = Vec::new();
        for (name, ending) in &heard.messages {
            protocol::push_greeting(&mut out, name, ending);
        }
        if heard.too_long {
            out.extend_from_slice(LINE_TOO_LONG);
        }
        out
    }

    #[test]
    fn the_replies_match_the_protocols_rules_in_bounded_memory() {
        for seed in 0..300 {
            let mut rng = Rng::new(seed);
            let reads = random_reads(&mut rng);
            let eof = rng.chance(50);
            let (mut framer, mut replies) = (Framer::new(), Replies::new(Duration::ZERO));
            let mut peer = Peer::default();
            let mut steps: Vec<&[u8]> = reads.iter().map(Vec::as_slice).collect();
            if eof {
                steps.push(b"");
            }
            for read in steps {
                framer.spare()[..read.len()].copy_from_slice(read);
                let before = peer.writes.len();
                let next = replies.answer(&mut framer, read.len(), &mut peer).unwrap();
                let writes = &peer.writes[before..];
                let written: usize = writes.iter().map(Vec::len).sum();
                if written <= REPLY_BATCH {
                    assert!(writes.len() <= 1, "seed {seed}: {} writes", writes.len());
                }
                let capacity = replies.out.capacity();
                assert!(
                    capacity <= IDLE_REPLY_CAPACITY,
                    "seed {seed}: {capacity} kept"
                );
                if !matches!(next, Next::Read) {
                    break;
                }
            }
            let expected = expected_replies(&reads, eof);
            assert!(
                peer.writes.concat() == expected,
                "seed {seed}: wrong replies"
            );
        }
    }
}
