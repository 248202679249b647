//! Who gets a thread: the TCP server's admission policy. It owns the limit on live connections
//! (kept below the process's open-file limit), the slots that count them, the spare descriptor
//! that answers a client when none is left, the lingering close of a turned-away connection, and
//! the rate-limited reports of everything it refuses. The accept loop calls it once per accept.

use std::io::{self, ErrorKind, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use crate::backoff::Backoff;
use crate::fdlimit::{self, Budget, Spare};
use crate::linger::{Lingerer, close_soon};
use crate::log::Log;
use crate::protocol::BUSY;
use crate::rate_limit::RateLimited;

/// How long the accept loop waits at most for what a client answered with the spare descriptor
/// still sends, before closing it.
const SPARE_LINGER: Duration = Duration::from_millis(20);

/// A connection let in: the stream, its peer, and its claim on the connection limit.
#[derive(Debug)]
pub(crate) struct Admitted {
    pub(crate) stream: TcpStream,
    pub(crate) peer: SocketAddr,
    pub(crate) slot: Slot,
}

/// One live connection's claim on the connection limit, given back on drop.
#[derive(Debug)]
pub(crate) struct Slot(Arc<AtomicUsize>);

impl Slot {
    /// Counts one more live connection in `live`, until the slot is dropped.
    pub(crate) fn take(live: &Arc<AtomicUsize>) -> Self {
        live.fetch_add(1, Ordering::AcqRel);
        Slot(Arc::clone(live))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The admission policy: admits a connection while there is room, turns it away otherwise, and
/// survives and reports the failures of `accept`.
#[derive(Debug)]
pub(crate) struct Admission {
    live: Arc<AtomicUsize>,
    max: usize,
    spare: Spare,
    lingerer: Lingerer,
    /// Whether a turned-away connection is told so. Behind a balancer it is not: nothing may
    /// be sent before the PROXY header has come, and what the connection sent is drained
    /// unread (see [`Admission::behind_balancer`]).
    says_busy: bool,
    backoff: Backoff,
    turned_away: RateLimited,
    accept_errors: RateLimited,
    reports: Log,
}

impl Admission {
    /// Starts the policy within `budget`; when it holds fewer connections than `wanted` for
    /// lack of descriptors, says so on `reports`.
    pub(crate) fn start(budget: Budget, wanted: usize, reports: Log) -> io::Result<Self> {
        if let Some(limit) = budget.lowered_by {
            let max = budget.connections;
            let plural = if max == 1 { "" } else { "s" };
            reports.line(format_args!(
                "the open-file limit ({limit}) allows {max} live connection{plural}, not \
                 {wanted}; raise it with ulimit -n for more"
            ));
        }
        Self::new(budget, reports)
    }

    fn new(budget: Budget, reports: Log) -> io::Result<Self> {
        Ok(Admission {
            live: Arc::new(AtomicUsize::new(0)),
            max: budget.connections,
            spare: Spare::new(),
            lingerer: Lingerer::start(budget.lingering)?,
            says_busy: true,
            backoff: Backoff::default(),
            turned_away: RateLimited::once_a_second(),
            accept_errors: RateLimited::once_a_second(),
            reports,
        })
    }

    /// Behind a balancer (`--proxy-protocol`), turns connections away without the busy line, and
    /// so without a word before the PROXY header, which a server full up does not wait for; the
    /// close is still a lingering one, so it is no reset.
    #[must_use]
    pub(crate) fn behind_balancer(mut self, behind: bool) -> Self {
        self.says_busy = !behind;
        self
    }

    /// Decides on what `accept` on `listener` returned: the connection, to be served, or `None`
    /// when it was turned away or `accept` failed. Out of descriptors, the spare answers the
    /// connection waiting in the queue; other failures are reported and paused after (1 ms,
    /// doubling to 100 ms), so one that repeats at once is no busy loop; a signal is neither.
    pub(crate) fn admit(
        &mut self,
        accepted: io::Result<(TcpStream, SocketAddr)>,
        listener: &TcpListener,
    ) -> Option<Admitted> {
        match accepted {
            Ok((stream, peer)) => {
                self.backoff.reset();
                if self.live.load(Ordering::Acquire) < self.max {
                    let slot = Slot::take(&self.live);
                    return Some(Admitted { stream, peer, slot });
                }
                // The peer may have sent its name already; a plain close would then reset the
                // connection, and the peer could lose the busy line.
                self.lingerer.close(self.tell_busy(stream));
                let open = match self.max {
                    1 => "1 connection is open".to_string(),
                    max => format!("{max} connections are open"),
                };
                self.report_turned_away(peer, format_args!("{open}"));
            }
            Err(err) if err.kind() == ErrorKind::Interrupted => {}
            Err(err) if fdlimit::is_out_of_descriptors(&err) && self.spare.is_held() => {
                self.answer_with_spare(listener, &err);
            }
            Err(err) => {
                self.spare.refill();
                self.accept_errors.report(
                    &self.reports,
                    format_args!("failed to accept a connection: {err}"),
                );
                thread::sleep(self.backoff.next_pause());
            }
        }
        None
    }

    /// Out of descriptors, the connection waiting in the kernel's queue is still answered: with
    /// the spare descriptor, accepted, told busy, closed; then the spare is taken back.
    fn answer_with_spare(&mut self, listener: &TcpListener, err: &io::Error) {
        if let Ok((stream, peer)) = self.spare.accept(listener) {
            // The spare is needed back at once, so the accept loop drains this client itself,
            // for a moment: long enough for a name sent right after connecting to arrive, so
            // that closing does not reset the connection and lose the busy line.
            close_soon(self.tell_busy(stream), SPARE_LINGER);
            self.report_turned_away(peer, format_args!("out of file descriptors ({err})"));
        }
        self.spare.refill();
    }

    /// Tells a connection it is turned away, unless it is behind a balancer, without waiting:
    /// a fresh socket's send buffer is empty, so the short busy line cannot block.
    fn tell_busy(&self, mut stream: TcpStream) -> TcpStream {
        if self.says_busy {
            let _ = stream.write_all(BUSY);
        }
        stream
    }

    fn report_turned_away(&mut self, peer: SocketAddr, why: std::fmt::Arguments<'_>) {
        self.turned_away
            .report(&self.reports, format_args!("{peer}: turned away, {why}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::tests::Tap;
    use std::io::Read;
    use std::sync::mpsc;

    const TIMEOUT: Duration = Duration::from_secs(5);

    /// A listener with a policy for `max` connections whose reports arrive on the receiver.
    fn policy(max: usize) -> io::Result<(TcpListener, Admission, mpsc::Receiver<Vec<u8>>)> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let (tx, rx) = mpsc::channel();
        let budget = Budget::new(max, None, 0)?;
        let admission = Admission::new(budget, Log::to_writer(Tap(tx)))?;
        Ok((listener, admission, rx))
    }

    fn client(listener: &TcpListener) -> io::Result<TcpStream> {
        let stream = TcpStream::connect(listener.local_addr()?)?;
        stream.set_read_timeout(Some(TIMEOUT))?;
        Ok(stream)
    }

    fn report(rx: &mpsc::Receiver<Vec<u8>>) -> String {
        let line = rx.recv_timeout(TIMEOUT).expect("a report");
        String::from_utf8(line).expect("reports are text")
    }

    #[test]
    fn connections_past_the_limit_are_told_busy_until_a_slot_frees() -> io::Result<()> {
        let (listener, mut admission, reports) = policy(1)?;
        let _first = client(&listener)?;
        let admitted = admission.admit(listener.accept(), &listener);
        let admitted = admitted.expect("the first connection fits");
        let mut second = client(&listener)?;
        assert!(admission.admit(listener.accept(), &listener).is_none());
        let mut reply = Vec::new();
        second.read_to_end(&mut reply)?;
        assert_eq!(reply, BUSY);
        let peer = second.local_addr()?;
        let line = format!("{peer}: turned away, 1 connection is open\n");
        assert_eq!(report(&reports), line);
        drop(admitted);
        let _third = client(&listener)?;
        assert!(admission.admit(listener.accept(), &listener).is_some());
        Ok(())
    }

    /// Behind a balancer a full server says nothing before a header it does not wait for: the
    /// connection ends cleanly (no reset, though its header is unread) with not a byte sent.
    #[test]
    fn behind_a_balancer_a_connection_is_turned_away_without_a_word() -> io::Result<()> {
        let (listener, admission, reports) = policy(1)?;
        let mut admission = admission.behind_balancer(true);
        let _first = client(&listener)?;
        let _admitted = admission
            .admit(listener.accept(), &listener)
            .expect("it fits");
        let mut second = client(&listener)?;
        second.write_all(b"PROXY TCP4 198.51.100.7 192.0.2.1 40123 9999\r\nAda")?;
        thread::sleep(Duration::from_millis(50));
        assert!(admission.admit(listener.accept(), &listener).is_none());
        let mut reply = Vec::new();
        second.read_to_end(&mut reply)?;
        assert_eq!(reply, b"");
        let peer = second.local_addr()?;
        assert_eq!(
            report(&reports),
            format!("{peer}: turned away, 1 connection is open\n")
        );
        Ok(())
    }

    #[cfg(unix)]
    #[test]
    fn out_of_descriptors_the_spare_answers_busy() -> io::Result<()> {
        let (listener, mut admission, reports) = policy(10)?;
        let mut waiting = client(&listener)?;
        // It has sent its name already: a plain close would reset the connection.
        waiting.write_all(b"Ada\n")?;
        thread::sleep(Duration::from_millis(50));
        let emfile = io::Error::from_raw_os_error(24);
        let shown = emfile.to_string();
        assert!(admission.admit(Err(emfile), &listener).is_none());
        let mut reply = Vec::new();
        waiting.read_to_end(&mut reply)?;
        assert_eq!(reply, BUSY);
        let peer = waiting.local_addr()?;
        let line = format!("{peer}: turned away, out of file descriptors ({shown})\n");
        assert_eq!(report(&reports), line);
        assert!(admission.spare.is_held(), "the spare was not taken back");
        Ok(())
    }

    #[test]
    fn other_accept_failures_are_reported_and_survived() -> io::Result<()> {
        let (listener, mut admission, reports) = policy(10)?;
        let aborted = io::Error::from(ErrorKind::ConnectionAborted);
        let shown = aborted.to_string();
        assert!(admission.admit(Err(aborted), &listener).is_none());
        assert_eq!(
            report(&reports),
            format!("failed to accept a connection: {shown}\n")
        );
        let _client = client(&listener)?;
        assert!(admission.admit(listener.accept(), &listener).is_some());
        Ok(())
    }
}
