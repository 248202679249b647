//! One connection's conversation: the original's `tcplink`. The welcome, then read, decide,
//! write, until the exit word or the end of the stream. Deciding is `replies`, a pure function
//! of the bytes read; what surrounds the loop (timeouts, the lingering close after a line too
//! long) is a named call each.

use std::io::{self, ErrorKind, Read, Write};
use std::net::TcpStream;
use std::thread;
use std::time::Duration;

use super::admission::Admitted;
use crate::duration::Dur;
use crate::framer::{Framer, Message};
use crate::linger::close_gracefully;
use crate::log::Log;
use crate::protocol::{self, LINE_TOO_LONG, WELCOME};

/// What each connection's handler needs to know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ConnectionConfig {
    /// The pause before each reply, as the original's `time.sleep(1)`; zero for none.
    pub(crate) delay: Duration,
    /// How long the peer may send nothing, or take nothing we send, before the connection is
    /// closed; `None` for no limit.
    pub(crate) idle_timeout: Option<Duration>,
}

/// The original's `tcplink`: logs the connection's start and end around the conversation.
///
/// The slot is given back as soon as the connection is closed, before the line that says so:
/// whoever reads `closed` in the log may connect again at once and find the slot free.
pub(crate) fn serve(admitted: Admitted, config: &ConnectionConfig, log: &Log, reports: &Log) {
    let Admitted { stream, peer, slot } = admitted;
    log.line(format_args!("Accept new connection from {peer}..."));
    let result = handle_connection(stream, config);
    drop(slot);
    if let Err(err) = result {
        reports.line(format_args!("{peer}: {err}"));
    }
    log.line(format_args!("Connection from {peer} closed."));
}

/// The conversation of the original's `tcplink`: the welcome, then for each read the replies
/// to what it held, until the exit word or the end of the stream; then the stream is closed.
///
/// Read, decide, write once: `replies` (pure) turns what was read into the bytes to send, and
/// `send` writes them, one write per read (with a delay, one per reply, each after its pause).
/// Blocks for the life of the connection.
///
/// # Errors
///
/// I/O failures, an idle peer (kind `TimedOut`), and a line longer than 64 KiB (kind
/// `InvalidData`, after telling the peer).
fn handle_connection(mut stream: TcpStream, config: &ConnectionConfig) -> io::Result<()> {
    let idle = |err: io::Error| idle_error(err, config.idle_timeout);
    configure(&stream, config)?;
    let mut framer = Framer::new();
    let (mut out, mut ends) = (Vec::new(), Vec::new());
    stream.write_all(WELCOME).map_err(idle)?; // sock.send(b'Welcome!')
    loop {
        // data = sock.recv(1024), here up to 8 KiB: in raw mode, one read is one message.
        let read = receive(&mut stream, framer.spare()).map_err(idle)?;
        let next = replies(&mut framer, read, &mut out, &mut ends);
        send(&mut stream, &out, &ends, config.delay).map_err(idle)?;
        out.clear();
        ends.clear();
        match next {
            Ok(Next::Read) => {}
            Ok(Next::Close) => return Ok(()),
            Err(err) => {
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
#[derive(Debug, PartialEq, Eq)]
enum Next {
    /// Read again.
    Read,
    /// Close: the peer said the exit word or ended the stream.
    Close,
}

/// Takes a read of `read` bytes (0: the end of the stream) into `framer` and appends the reply to
/// every whole message to `out`, recording where each reply ends in `ends`. Pure: no socket.
///
/// # Errors
///
/// A line longer than 64 KiB: `out` then ends with the error line for the peer.
fn replies(
    framer: &mut Framer,
    read: usize,
    out: &mut Vec<u8>,
    ends: &mut Vec<usize>,
) -> io::Result<Next> {
    let mut answer = |name: &[u8], ending: &[u8], out: &mut Vec<u8>| {
        protocol::push_greeting(out, name, ending);
        ends.push(out.len());
    };
    if read == 0 {
        // A partial line left at the end of the stream is answered, without a line ending.
        if let Some(Message::Name { name, ending }) = framer.finish() {
            answer(name, ending, out);
        }
        return Ok(Next::Close);
    }
    framer.filled(read);
    loop {
        match framer.next_message() {
            Ok(Some(Message::Name { name, ending })) => answer(name, ending, out),
            Ok(Some(Message::Exit)) => return Ok(Next::Close),
            Ok(None) => return Ok(Next::Read),
            Err(err) => {
                out.extend_from_slice(LINE_TOO_LONG);
                return Err(err);
            }
        }
    }
}

/// Writes `out`: at once, or with a delay one reply at a time, each after its pause, as the
/// original sleeps before every reply. Bytes after the last reply (the error line for a line too
/// long) go without a pause.
fn send(stream: &mut TcpStream, out: &[u8], ends: &[usize], delay: Duration) -> io::Result<()> {
    if delay.is_zero() {
        return stream.write_all(out);
    }
    let mut start = 0;
    for &end in ends {
        thread::sleep(delay);
        stream.write_all(&out[start..end])?;
        start = end;
    }
    stream.write_all(&out[start..])
}

/// Turns the error a socket timeout gives (`WouldBlock` on Unix) into one that says what happened.
fn idle_error(err: io::Error, idle_timeout: Option<Duration>) -> io::Error {
    match (err.kind(), idle_timeout) {
        (ErrorKind::WouldBlock | ErrorKind::TimedOut, Some(limit)) => io::Error::new(
            ErrorKind::TimedOut,
            format!("idle for {}, closed", Dur(limit)),
        ),
        _ => err,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `replies` made of one read.
    struct Answered {
        out: Vec<u8>,
        ends: Vec<usize>,
        next: io::Result<Next>,
    }

    /// Feeds `bytes` to a fresh framer (in line mode if `lines`) as one read.
    fn answer(bytes: &[u8], lines: bool) -> Answered {
        let mut framer = Framer::new();
        let (mut out, mut ends) = (Vec::new(), Vec::new());
        if lines {
            framer.feed(b"\n");
            framer.next_message().expect("an empty line is a name");
        }
        framer.spare()[..bytes.len()].copy_from_slice(bytes);
        let next = replies(&mut framer, bytes.len(), &mut out, &mut ends);
        Answered { out, ends, next }
    }

    #[test]
    fn a_raw_read_is_one_reply() {
        let answered = answer(b"Jaber", false);
        assert_eq!(answered.out, b"Hello, Jaber!");
        assert_eq!(answered.ends, [13]);
        assert_eq!(answered.next.unwrap(), Next::Read);
    }

    #[test]
    fn pipelined_lines_are_one_write_with_a_boundary_per_reply() {
        let answered = answer(b"Ada\r\nBob\n", true);
        assert_eq!(answered.out, b"Hello, Ada!\r\nHello, Bob!\n");
        assert_eq!(answered.ends, [13, 25]);
        assert_eq!(answered.next.unwrap(), Next::Read);
    }

    #[test]
    fn the_exit_word_closes_after_the_replies_before_it() {
        let answered = answer(b"Ada\nexit\nnever\n", true);
        assert_eq!(answered.out, b"Hello, Ada!\n");
        assert_eq!(answered.next.unwrap(), Next::Close);
        let answered = answer(b"exit", false);
        assert_eq!(answered.out, b"");
        assert_eq!(answered.next.unwrap(), Next::Close);
    }

    #[test]
    fn the_end_of_the_stream_answers_a_partial_line_and_closes() {
        let mut framer = Framer::new();
        framer.feed(b"x\nhalf");
        let (mut out, mut ends) = (Vec::new(), Vec::new());
        let spare = framer.spare();
        spare[..3].copy_from_slice(b"way");
        assert_eq!(
            replies(&mut framer, 3, &mut out, &mut ends).unwrap(),
            Next::Read
        );
        assert_eq!(out, b"Hello, x!\n");
        assert_eq!(
            replies(&mut framer, 0, &mut out, &mut ends).unwrap(),
            Next::Close
        );
        assert_eq!(out, b"Hello, x!\nHello, halfway!");
        assert_eq!(ends, [10, 25]);
    }

    #[test]
    fn a_line_too_long_ends_with_the_error_line() {
        let mut framer = Framer::new();
        let (mut out, mut ends) = (Vec::new(), Vec::new());
        framer.feed(b"Ada\n");
        let mut next = Ok(Next::Read);
        for _ in 0..20 {
            let spare = framer.spare();
            spare[..4096].fill(b'y');
            next = replies(&mut framer, 4096, &mut out, &mut ends);
            if next.is_err() {
                break;
            }
        }
        let err = next.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidData);
        assert_eq!(out, b"Hello, Ada!\nerror: line too long\n");
        assert_eq!(ends, [12]);
    }
}
