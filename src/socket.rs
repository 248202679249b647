//! What a socket's failures mean, told in one place, and reading from a socket until a deadline.
//! The platforms word the same event differently (std's own notes): a socket timeout is
//! `WouldBlock` on Unix and `TimedOut` on Windows; an ICMP port unreachable on a UDP socket is a
//! refusal on Unix and a reset on Windows.

use std::cell::Cell;
use std::io::{self, ErrorKind, Read};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Returns true for the error a socket's read or write timeout gives.
pub(crate) fn is_timeout(err: &io::Error) -> bool {
    matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

/// Returns true for the errors of a TCP peer that simply went away.
pub(crate) fn is_hang_up(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted | ErrorKind::BrokenPipe
    )
}

/// Returns true for the error an ICMP port unreachable becomes on a UDP socket.
pub(crate) fn is_unreachable(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        ErrorKind::ConnectionRefused | ErrorKind::ConnectionReset
    )
}

/// Returns true when the process or the system is out of file descriptors (EMFILE or ENFILE,
/// 24 and 23 on Linux, macOS and the BSDs alike). Windows sockets have no such limit.
pub(crate) fn is_out_of_descriptors(err: &io::Error) -> bool {
    cfg!(unix) && matches!(err.raw_os_error(), Some(23 | 24))
}

/// Turns a timeout into an error of kind `TimedOut` that says what ran out (`idle for 5m,
/// closed`); any other error passes unchanged.
pub(crate) fn timed_out(err: io::Error, what: impl FnOnce() -> String) -> io::Error {
    match is_timeout(&err) {
        true => io::Error::new(ErrorKind::TimedOut, what()),
        false => err,
    }
}

/// The moment a wait on a socket ends; none for a limit too long for the clock to count to,
/// which is no limit at all.
#[derive(Debug)]
pub(crate) struct Deadline {
    at: Option<Instant>,
    /// Whether a read has been tried: the first is, even past the deadline; no other is.
    tried: Cell<bool>,
}

impl Deadline {
    /// Returns the deadline `limit` from now.
    pub(crate) fn after(limit: Duration) -> Self {
        let (at, tried) = (Instant::now().checked_add(limit), Cell::default());
        Deadline { at, tried }
    }

    /// Calls `read` with the time left (at least a millisecond; `None` for no limit), to set as
    /// its socket's read timeout before it reads once, and again after a signal or a socket
    /// timeout, until it returns anything else or the deadline passes. The first read of a
    /// deadline is tried even past it, so that what has come already is read; no later one is,
    /// so a peer that sends a byte just in time, again and again, cannot stretch a wait.
    ///
    /// # Errors
    ///
    /// `TimedOut` once the deadline has passed; any other error `read` returns.
    pub(crate) fn read<T>(
        &self,
        mut read: impl FnMut(Option<Duration>) -> io::Result<T>,
    ) -> io::Result<T> {
        loop {
            // The time left, zero once the deadline has passed; `None` for no deadline.
            let now = Instant::now();
            let left = self.at.map(|at| at.saturating_duration_since(now));
            if left == Some(Duration::ZERO) && self.tried.replace(true) {
                return Err(ErrorKind::TimedOut.into());
            }
            self.tried.set(true);
            match read(left.map(|left| left.max(Duration::from_millis(1)))) {
                Err(err) if err.kind() == ErrorKind::Interrupted || is_timeout(&err) => {}
                result => return result,
            }
        }
    }

    /// Reads once from `stream` into `buf`, as [`read`](Deadline::read) does, with the socket's
    /// read timeout set to the time left.
    ///
    /// # Errors
    ///
    /// As [`read`](Deadline::read).
    pub(crate) fn read_from(&self, mut stream: &TcpStream, buf: &mut [u8]) -> io::Result<usize> {
        self.read(|left| {
            stream.set_read_timeout(left)?;
            stream.read(buf)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_platforms_words_are_told_apart() {
        let kind = |kind: ErrorKind| io::Error::from(kind);
        assert!(is_timeout(&kind(ErrorKind::WouldBlock)) && is_timeout(&kind(ErrorKind::TimedOut)));
        assert!(!is_timeout(&kind(ErrorKind::Interrupted)));
        assert!(is_unreachable(&kind(ErrorKind::ConnectionRefused)));
        assert!(is_unreachable(&kind(ErrorKind::ConnectionReset)));
        assert!(!is_unreachable(&kind(ErrorKind::TimedOut)));
        assert!(!is_unreachable(&kind(ErrorKind::PermissionDenied)));
        for gone in [
            ErrorKind::ConnectionReset,
            ErrorKind::ConnectionAborted,
            ErrorKind::BrokenPipe,
        ] {
            assert!(is_hang_up(&kind(gone)));
        }
        assert!(!is_hang_up(&kind(ErrorKind::TimedOut)));
        assert_eq!(
            is_out_of_descriptors(&io::Error::from_raw_os_error(24)),
            cfg!(unix)
        );
        assert!(!is_out_of_descriptors(&kind(ErrorKind::ConnectionAborted)));
    }

    #[test]
    fn a_timeout_says_what_ran_out_and_other_errors_pass() {
        let named = timed_out(ErrorKind::WouldBlock.into(), || {
            "idle for 5m, closed".into()
        });
        assert_eq!(
            (named.kind(), named.to_string()),
            (ErrorKind::TimedOut, "idle for 5m, closed".into())
        );
        let other = timed_out(ErrorKind::BrokenPipe.into(), || unreachable!());
        assert_eq!(other.kind(), ErrorKind::BrokenPipe);
    }

    #[test]
    fn a_read_is_tried_again_until_the_deadline_and_at_least_once() {
        let started = Instant::now();
        let deadline = Deadline::after(Duration::from_millis(30));
        let mut calls = 0;
        let result: io::Result<()> = deadline.read(|left| {
            calls += 1;
            assert!(left.is_some_and(|left| left >= Duration::from_millis(1)));
            Err(if calls % 2 == 0 {
                ErrorKind::Interrupted
            } else {
                ErrorKind::WouldBlock
            }
            .into())
        });
        assert_eq!(result.unwrap_err().kind(), ErrorKind::TimedOut);
        assert!(started.elapsed() >= Duration::from_millis(30) && calls > 2);
        let passed = Deadline::after(Duration::ZERO);
        assert_eq!(passed.read(|_| Ok(7)).unwrap(), 7);
        let refused: io::Result<()> = passed.read(|_| Err(ErrorKind::ConnectionRefused.into()));
        assert_eq!(
            refused.unwrap_err().kind(),
            ErrorKind::TimedOut,
            "read past the deadline"
        );
    }

    /// Reads that each succeed cannot carry a caller past its deadline: once it has passed, the
    /// next call is a timeout, not one more read.
    #[test]
    fn reads_that_keep_succeeding_end_at_the_deadline() {
        let started = Instant::now();
        let deadline = Deadline::after(Duration::from_millis(20));
        let mut reads = 0;
        while deadline.read(|_| Ok(())).is_ok() {
            reads += 1;
            assert!(
                started.elapsed() < Duration::from_secs(1),
                "{reads} reads and counting"
            );
        }
        assert!(started.elapsed() >= Duration::from_millis(20));
    }

    #[test]
    fn a_limit_too_long_for_the_clock_is_no_deadline() {
        let never = Deadline::after(Duration::MAX);
        assert_eq!(never.at, None);
        assert_eq!(never.read(Ok).unwrap(), None);
    }
}
