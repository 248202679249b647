//! One connection's conversation: the original's `tcplink`. The welcome, then read, decide,
//! write, until the exit word or the end of the stream. Deciding is the framer's; what surrounds
//! the loop (timeouts, the lingering close after a line too long) is a named call each.

use std::io::{self, ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use super::admission::Admitted;
use super::framer::{Framed, Framer, MAX_LINE, READ_SIZE};
use super::linger::{LINGER_TIME, close_draining};
use super::proxy::{Caller, read_header};
use crate::duration::Dur;
use crate::log::Log;
use crate::protocol::{self, GREETING_PREFIX, GREETING_SUFFIX, LINE_TOO_LONG};
use crate::report::RateLimited;
use crate::socket::{is_hang_up, timed_out};

/// What every connection's thread needs to know: the settings, where the lines go, and the
/// reports of connections refused for their PROXY header, at most one a second.
#[derive(Debug)]
pub(crate) struct Settings {
    /// The pause before each reply, as the original's `time.sleep(1)`; zero for none.
    pub(crate) delay: Duration,
    /// How long the peer may send nothing, or take nothing we send, before the connection is
    /// closed; `None` for no limit.
    pub(crate) idle_timeout: Option<Duration>,
    /// Whether every connection begins with a PROXY header from a load balancer.
    pub(crate) proxy_protocol: bool,
    /// What a connection is told first: `Welcome!`, after the server's id if it has one.
    pub(crate) welcome: Vec<u8>,
    pub(crate) log: Log,
    pub(crate) reports: Log,
    pub(crate) refusals: RateLimited,
}

/// The original's `tcplink`: logs the connection's start and end around the conversation.
///
/// Behind a balancer the lines name the client its header names; the balancer's own
/// connections (its health checks, several a second) leave no line, nor does their hang-up.
/// The slot is given back as soon as the connection is closed, before the line that says so:
/// whoever reads `closed` in the log may connect again at once and find the slot free.
pub(crate) fn serve(admitted: Admitted, settings: &Settings) {
    let (mut stream, peer, slot) = (admitted.stream, admitted.peer, admitted.slot);
    let (log, reports) = (&settings.log, &settings.reports);
    let (caller, first) = match settings.proxy_protocol {
        false => (Caller::Client(peer), Vec::new()),
        true => match read_header(&mut stream, peer) {
            Ok(found) => found,
            // Closed without a word to it, and reported at most once a second.
            Err(why) => {
                let why = format!("{peer}: closed without a welcome: {why}");
                return settings.refusals.report(reports, format_args!("{why}"));
            }
        },
    };
    if let Caller::Client(client) = caller {
        log.line(format_args!("Accept new connection from {client}..."));
    }
    let result = handle_connection(stream, &first, settings);
    drop(slot);
    match (result, caller) {
        (Ok(()), _) => {}
        (Err(err), Caller::Client(client)) => reports.line(format_args!("{client}: {err}")),
        (Err(err), Caller::Balancer) if is_hang_up(&err) => {}
        (Err(err), Caller::Balancer) => reports.line(format_args!("{peer}: {err}")),
    }
    if let Caller::Client(client) = caller {
        log.line(format_args!("Connection from {client} closed."));
    }
}

/// The conversation of the original's `tcplink`: the welcome, then for each read the replies
/// to what it held, one write per read, until the exit word or the end of the stream; then the
/// stream is closed. `first` is what came right behind a PROXY header: the first read. Blocks
/// for the life of the connection.
///
/// # Errors
///
/// I/O failures, an idle peer (kind `TimedOut`), and a line longer than 64 KiB (kind
/// `InvalidData`, after telling the peer).
// Never inlined into `serve`: its frame holds the read buffer, and the log lines `serve` formats
// before and after it must not go a page deeper into the stack for it (an idle connection's
// stack is 8 KiB resident, and a page more would be 4 KiB more per connection).
#[inline(never)]
fn handle_connection(stream: TcpStream, first: &[u8], settings: &Settings) -> io::Result<()> {
    let limit = Dur(settings.idle_timeout.unwrap_or_default());
    let idle = |err| timed_out(err, || format!("idle for {limit}, closed"));
    configure(&stream, settings.idle_timeout)?;
    (&stream).write_all(&settings.welcome).map_err(idle)?; // sock.send(b'Welcome!')
    let mut input = first.chain(&stream);
    let (mut framer, mut replies) = (Framer::default(), Replies::new(settings.delay));
    let mut buf = [0; READ_SIZE];
    loop {
        // data = sock.recv(1024): in raw mode, one read of up to 1 KiB is one message.
        let read = receive(&mut input, &mut buf).map_err(idle)?;
        // if not data or data == 'exit': break; time.sleep(1); sock.send('Hello, %s!' % data)
        let framed = replies.answer(&mut framer, &buf[..read], &mut &stream);
        match framed.map_err(idle)? {
            Framed::More => {}
            end => return close(stream, end), // sock.close()
        }
    }
}

/// Closes a connection its conversation has ended: at once after the end of the stream, when
/// nothing is left to read; with a lingering close after the exit word or a line too long, as
/// more may come behind them (closing on it unread would reset the connection, and the peer
/// could lose the replies before them, or the error line).
///
/// # Errors
///
/// The line too long, of kind `InvalidData`.
fn close(stream: TcpStream, end: Framed) -> io::Result<()> {
    if end != Framed::End {
        close_draining(stream, LINGER_TIME);
    }
    if end != Framed::TooLong {
        return Ok(());
    }
    let too_long = format!("line longer than {MAX_LINE} bytes");
    Err(io::Error::new(ErrorKind::InvalidData, too_long))
}

/// Sets the socket options a connection runs with: no Nagle delay, and the idle timeout on both
/// directions.
fn configure(stream: &TcpStream, idle_timeout: Option<Duration>) -> io::Result<()> {
    // A reply is a single small write; without NODELAY it could wait ~40 ms for a delayed ACK.
    stream.set_nodelay(true)?;
    stream.set_read_timeout(idle_timeout)?;
    stream.set_write_timeout(idle_timeout)
}

/// Reads once into `buf`, again if a signal interrupted the read.
fn receive(input: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match input.read(buf) {
            Err(err) if err.kind() == ErrorKind::Interrupted => {}
            result => return result,
        }
    }
}

/// The most bytes of replies gathered before they are written. The replies to one read fit
/// unless the peer pipelines hundreds of lines at once; then they go out in several writes, so
/// what a connection holds stays bounded whatever it is sent.
const REPLY_BATCH: usize = 8 * 1024;

/// The capacity the reply buffer keeps between reads; a burst that grew it past this gives the
/// memory back once it is answered.
const IDLE_REPLY_CAPACITY: usize = 1024;

/// The replies to what the peer sent, on their way to it: gathered in a buffer of at most
/// [`REPLY_BATCH`] bytes, and written when the read's names are all answered or the buffer is
/// full. A reply larger than the buffer is written straight from the read's bytes.
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

    /// Takes the bytes of one read (none: the end of the stream) into `framer`, and writes to
    /// `peer` the reply to every name it completed, in order, and the error line for a line too
    /// long.
    fn answer(
        &mut self,
        framer: &mut Framer,
        read: &[u8],
        peer: &mut impl Write,
    ) -> io::Result<Framed> {
        let framed = framer.take(read, |name, ending| self.reply(peer, name, ending))?;
        if framed == Framed::TooLong {
            self.out.extend_from_slice(LINE_TOO_LONG);
        }
        self.write_out(peer)?;
        self.out.shrink_to(IDLE_REPLY_CAPACITY);
        Ok(framed)
    }

    /// Adds the reply to `name` (`Hello, NAME!` and the line's ending), writing first what is
    /// gathered if the reply would not fit beside it; with a delay, writes what is gathered and
    /// pauses, so that each reply goes out alone, after its own pause (the last one when the
    /// read is answered).
    fn reply(&mut self, peer: &mut impl Write, name: &[u8], ending: &[u8]) -> io::Result<()> {
        let len = protocol::greeting_len(name.len()) + ending.len();
        if !self.delay.is_zero() || self.out.len() + len > REPLY_BATCH {
            self.write_out(peer)?;
            // Not for every reply without a delay: on Windows even a zero sleep is a system call.
            std::thread::sleep(self.delay);
        }
        if len > REPLY_BATCH {
            for part in [GREETING_PREFIX, name, GREETING_SUFFIX, ending] {
                peer.write_all(part)?;
            }
            return Ok(());
        }
        protocol::push_greeting(&mut self.out, name, ending);
        Ok(())
    }

    /// Writes what is gathered, if anything: `write_all` of nothing writes nothing.
    fn write_out(&mut self, peer: &mut impl Write) -> io::Result<()> {
        peer.write_all(&self.out)?;
        self.out.clear();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tcp::framer::model::model;
    use crate::tcp::framer::tests::connection;
    use proptest::prelude::*;

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

    /// Feeds `reads` one by one until the conversation is over; returns how it ended and what
    /// was written for each read.
    fn converse(reads: &[&[u8]], delay: Duration) -> (Framed, Vec<Vec<Vec<u8>>>) {
        let (mut framer, mut replies) = (Framer::default(), Replies::new(delay));
        let mut written = Vec::new();
        let mut framed = Framed::More;
        for read in reads {
            let mut peer = Peer::default();
            framed = replies.answer(&mut framer, read, &mut peer).unwrap();
            written.push(peer.writes);
            if framed != Framed::More {
                break;
            }
        }
        (framed, written)
    }

    #[test]
    fn a_raw_read_is_one_reply_and_pipelined_lines_one_write() {
        let (framed, written) = converse(&[b"Jaber", b"Ada\r\nBob\n"], Duration::ZERO);
        assert_eq!(framed, Framed::More);
        assert_eq!(
            written,
            [
                vec![b"Hello, Jaber!".to_vec()],
                vec![b"Hello, Ada!\r\nHello, Bob!\n".to_vec()]
            ]
        );
    }

    #[test]
    fn with_a_delay_each_reply_is_written_after_its_own_pause() {
        let delay = Duration::from_millis(30);
        let started = std::time::Instant::now();
        let (_, written) = converse(&[b"Ada\r\nBob\n"], delay);
        assert!(started.elapsed() >= delay * 2);
        assert_eq!(written[0], [&b"Hello, Ada!\r\n"[..], b"Hello, Bob!\n"]);
    }

    #[test]
    fn the_exit_word_closes_after_the_replies_before_it() {
        let (framed, written) = converse(&[b"Ada\nexit\nnever\n"], Duration::ZERO);
        assert_eq!(
            (framed, written),
            (Framed::Exit, vec![vec![b"Hello, Ada!\n".to_vec()]])
        );
        let (framed, written) = converse(&[b"exit"], Duration::ZERO);
        assert_eq!((framed, written), (Framed::Exit, vec![vec![]]));
    }

    #[test]
    fn the_end_of_the_stream_answers_a_partial_line_and_closes() {
        let (framed, written) = converse(&[b"x\nhalf", b"way", b""], Duration::ZERO);
        assert_eq!(framed, Framed::End);
        assert_eq!(written.concat(), [&b"Hello, x!\n"[..], b"Hello, halfway!"]);
    }

    #[test]
    fn a_line_too_long_ends_with_the_error_line() {
        let long = vec![b'y'; READ_SIZE];
        let mut reads = vec![&b"Ada\n"[..]];
        reads.extend(std::iter::repeat_n(&long[..], 70));
        let (framed, written) = converse(&reads, Duration::ZERO);
        assert_eq!(framed, Framed::TooLong);
        assert_eq!(
            written.concat().concat(),
            b"Hello, Ada!\nerror: line too long\n"
        );
    }

    #[test]
    fn a_reply_too_long_for_the_buffer_is_written_from_the_read() {
        let line = [vec![b'n'; 3 * REPLY_BATCH], b"\n".to_vec()].concat();
        let mut reads = vec![&b"\n"[..]];
        reads.extend(line.chunks(READ_SIZE));
        let (framed, written) = converse(&reads, Duration::ZERO);
        assert_eq!(framed, Framed::More);
        let expected = [&b"Hello, !\nHello, "[..], &line[..line.len() - 1], b"!\n"].concat();
        assert_eq!(written.concat().concat(), expected);
    }

    proptest! {
        /// Whatever comes, however cut, the peer gets exactly the replies the protocol's rules
        /// give, one write per read while they fit the batch, and the buffer gives back what a
        /// burst took.
        #[test]
        fn the_replies_match_the_protocols_rules_in_bounded_memory((reads, eof) in connection()) {
            let (mut framer, mut replies) = (Framer::default(), Replies::new(Duration::ZERO));
            let mut peer = Peer::default();
            let ends = eof.then_some(Vec::new());
            for read in reads.iter().chain(&ends) {
                let before = peer.writes.len();
                let framed = replies.answer(&mut framer, read, &mut peer).unwrap();
                let writes = &peer.writes[before..];
                if writes.iter().map(Vec::len).sum::<usize>() <= REPLY_BATCH {
                    prop_assert!(writes.len() <= 1, "{} writes", writes.len());
                }
                prop_assert!(replies.out.capacity() <= IDLE_REPLY_CAPACITY);
                if framed != Framed::More {
                    break;
                }
            }
            let heard = model(&reads, eof);
            let mut expected = Vec::new();
            for (name, ending) in &heard.names {
                protocol::push_greeting(&mut expected, name, ending);
            }
            if heard.too_long {
                expected.extend_from_slice(LINE_TOO_LONG);
            }
            prop_assert!(peer.writes.concat() == expected, "wrong replies");
        }
    }
}
