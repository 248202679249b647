//! Who gets a thread: the TCP server's admission policy. It owns the limit on live connections
//! (kept below the process's open-file limit), the slots that count them, the spare descriptor
//! that answers a client when none is left, the lingering close of a turned-away connection, and
//! the rate-limited reports of everything it refuses. The accept loop calls it once per accept.

use std::fmt::Display;
use std::io::{self, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use super::connection::{Settings, serve};
use super::fdlimit::{self, Budget};
use super::linger::{LINGER_TIME, close_draining};
use crate::addr::canonical;
use crate::log::Log;
use crate::protocol::BUSY;
use crate::report::{Failures, RateLimited};
use crate::socket::is_out_of_descriptors;

/// How long the accept loop waits at most for what a client answered with the spare descriptor
/// still sends, before closing it.
const SPARE_LINGER: Duration = Duration::from_millis(20);

/// What a connection that was accepted needs a thread for.
#[derive(Debug)]
pub(crate) enum Job {
    /// To be served: the original's `tcplink`.
    Serve(Admitted),
    /// To be closed with a lingering close, after the busy line: the stream, and its claim on
    /// the turned-away connections that may linger at once.
    Linger(TcpStream, Slot),
}

impl Job {
    /// Does what the job needs a thread for; the lingering close gives back its slot when done.
    pub(crate) fn run(self, settings: &Settings) {
        match self {
            Job::Serve(connection) => serve(connection, settings),
            Job::Linger(stream, _slot) => close_draining(stream, LINGER_TIME),
        }
    }
}

/// A connection let in: the stream, its peer, and its claim on the connection limit.
#[derive(Debug)]
pub(crate) struct Admitted {
    pub(crate) stream: TcpStream,
    pub(crate) peer: SocketAddr,
    pub(crate) slot: Slot,
}

/// One claim on a limit, given back on drop.
#[derive(Debug)]
pub(crate) struct Slot(Arc<AtomicUsize>);

impl Slot {
    /// Counts one more in `taken`, unless it holds `max` already. Called from one thread only,
    /// the accept loop; the slots are given back from any.
    pub(crate) fn take(taken: &Arc<AtomicUsize>, max: usize) -> Option<Self> {
        (taken.load(Ordering::Acquire) < max).then(|| {
            taken.fetch_add(1, Ordering::AcqRel);
            Slot(Arc::clone(taken))
        })
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
    budget: Budget,
    live: Arc<AtomicUsize>,
    lingering: Arc<AtomicUsize>,
    /// One descriptor held in reserve, for a connection that comes when none is left.
    spare: Option<std::fs::File>,
    /// Whether a turned-away connection is told so. Behind a balancer it is not: nothing may
    /// be sent before the PROXY header has come, which a server full up does not wait for, and
    /// what the connection sent is drained unread (a lingering close still, so no reset).
    says_busy: bool,
    turned_away: RateLimited,
    failures: Failures,
    reports: Log,
}

impl Admission {
    /// Starts the policy within `budget` for the server's `settings`; when it holds fewer
    /// connections than `wanted` for lack of descriptors, says so on the reports log.
    pub(crate) fn start(budget: Budget, wanted: usize, settings: &Settings) -> Self {
        if let Some(limit) = budget.lowered_by {
            let max = budget.connections;
            let plural = if max == 1 { "" } else { "s" };
            settings.reports.line(format_args!(
                "the open-file limit ({limit}) allows {max} live connection{plural}, not \
                 {wanted}; raise it with ulimit -n for more"
            ));
        }
        Admission {
            budget,
            live: Arc::default(),
            lingering: Arc::default(),
            spare: fdlimit::spare(),
            says_busy: !settings.proxy_protocol,
            turned_away: RateLimited::new("connections turned away"),
            failures: Failures::new("accept a connection"),
            reports: settings.reports.clone(),
        }
    }

    /// Decides on what `accept` on `listener` returned: a connection to serve, one turned away
    /// to close lingering, or `None` when there is nothing more to do. A connection turned away
    /// when as many linger as may is closed at once, after what it sent already is taken. Out of
    /// descriptors, the spare answers the connection waiting in the queue; other failures are
    /// survived (see [`Failures`]).
    pub(crate) fn admit(
        &mut self,
        accepted: io::Result<(TcpStream, SocketAddr)>,
        listener: &TcpListener,
    ) -> Option<Job> {
        match accepted {
            Ok((stream, peer)) => {
                // The peer is for log lines only: a client of a dual-stack socket as it is.
                let peer = canonical(peer);
                self.failures.succeeded();
                if let Some(slot) = Slot::take(&self.live, self.budget.connections) {
                    return Some(Job::Serve(Admitted { stream, peer, slot }));
                }
                let max = self.budget.connections;
                let are = if max == 1 { " is" } else { "s are" };
                self.turn_away(&stream, peer, format_args!("{max} connection{are} open"));
                // The peer may have sent its name already; a plain close would then reset the
                // connection, and the peer could lose the busy line.
                match Slot::take(&self.lingering, self.budget.lingering) {
                    Some(slot) => return Some(Job::Linger(stream, slot)),
                    None => close_draining(stream, Duration::ZERO),
                }
            }
            // Out of descriptors, the connection waiting in the kernel's queue is still
            // answered: with the spare descriptor, accepted, told busy, closed; then the spare
            // is taken back.
            Err(err) if is_out_of_descriptors(&err) && self.spare.is_some() => {
                self.spare = None;
                if let Ok((stream, peer)) = listener.accept() {
                    // The spare is needed back at once, so the accept loop drains this client
                    // itself, for a moment: long enough for a name sent right after connecting
                    // to arrive, so that closing does not reset the connection and lose the
                    // busy line.
                    let why = format!("out of file descriptors ({err})");
                    self.turn_away(&stream, canonical(peer), why);
                    close_draining(stream, SPARE_LINGER);
                }
                self.spare = fdlimit::spare();
            }
            Err(err) => {
                self.spare = self.spare.take().or_else(fdlimit::spare);
                self.failures.failed(&self.reports, &err);
            }
        }
        None
    }

    /// Reports that the connection from `peer` is turned away for `why`, and tells it so unless
    /// it is behind a balancer, without waiting: a fresh socket's send buffer is empty, so the
    /// short busy line cannot block.
    fn turn_away(&self, mut stream: &TcpStream, peer: SocketAddr, why: impl Display) {
        self.turned_away
            .report(&self.reports, format_args!("{peer}: turned away, {why}"));
        if self.says_busy {
            let _ = stream.write_all(BUSY);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::tests::Tap;
    use crate::tcp::linger::LINGER_TIME;
    use std::io::Read;
    use std::sync::mpsc;
    use std::thread;

    const TIMEOUT: Duration = Duration::from_secs(5);

    /// A listener with a policy for `max` connections, behind a balancer or not, whose reports
    /// arrive on the receiver.
    fn policy_for(
        max: usize,
        proxy_protocol: bool,
    ) -> io::Result<(TcpListener, Admission, mpsc::Receiver<Vec<u8>>)> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let (tx, rx) = mpsc::channel();
        let settings = Settings {
            delay: Duration::ZERO,
            idle_timeout: None,
            proxy_protocol,
            welcome: crate::protocol::WELCOME.to_vec(),
            log: Log::quiet(),
            reports: Log::to_writer(Tap(tx)),
            refusals: RateLimited::new("connections closed without a welcome"),
        };
        let admission = Admission::start(Budget::new(max, None, 0)?, max, &settings);
        Ok((listener, admission, rx))
    }

    fn policy(max: usize) -> io::Result<(TcpListener, Admission, mpsc::Receiver<Vec<u8>>)> {
        policy_for(max, false)
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

    /// Does what the server's spawner does with a connection to close lingering.
    fn linger(job: Option<Job>) {
        match job {
            Some(Job::Linger(stream, slot)) => drop(thread::spawn(move || {
                close_draining(stream, LINGER_TIME);
                drop(slot);
            })),
            other => panic!("not turned away: {other:?}"),
        }
    }

    #[test]
    fn connections_past_the_limit_are_told_busy_until_a_slot_frees() -> io::Result<()> {
        let (listener, mut admission, reports) = policy(1)?;
        let _first = client(&listener)?;
        let admitted = admission.admit(listener.accept(), &listener);
        assert!(matches!(admitted, Some(Job::Serve(_))), "the first fits");
        let mut second = client(&listener)?;
        // It has sent its name already: a plain close would reset the connection.
        second.write_all(b"Ada\n")?;
        thread::sleep(Duration::from_millis(50));
        linger(admission.admit(listener.accept(), &listener));
        let mut reply = Vec::new();
        second.read_to_end(&mut reply)?;
        assert_eq!(reply, BUSY);
        let peer = second.local_addr()?;
        let line = format!("{peer}: turned away, 1 connection is open\n");
        assert_eq!(report(&reports), line);
        drop(admitted);
        let _third = client(&listener)?;
        let third = admission.admit(listener.accept(), &listener);
        assert!(matches!(third, Some(Job::Serve(_))), "a slot was freed");
        Ok(())
    }

    /// Past the lingering budget a turned-away connection is closed at once, after what it
    /// sent already is taken, so that is no reset either.
    #[test]
    fn past_the_lingering_budget_the_close_takes_what_came() -> io::Result<()> {
        let (listener, mut admission, _reports) = policy(1)?;
        admission.budget.lingering = 0;
        let _first = client(&listener)?;
        let _admitted = admission.admit(listener.accept(), &listener);
        let mut second = client(&listener)?;
        second.write_all(b"Ada\n")?;
        thread::sleep(Duration::from_millis(50));
        assert!(admission.admit(listener.accept(), &listener).is_none());
        let mut reply = Vec::new();
        second.read_to_end(&mut reply)?;
        assert_eq!(reply, BUSY);
        Ok(())
    }

    /// Behind a balancer a full server says nothing before a header it does not wait for: the
    /// connection ends cleanly (no reset, though its header is unread) with not a byte sent.
    #[test]
    fn behind_a_balancer_a_connection_is_turned_away_without_a_word() -> io::Result<()> {
        let (listener, mut admission, reports) = policy_for(1, true)?;
        let _first = client(&listener)?;
        let _admitted = admission.admit(listener.accept(), &listener);
        let mut second = client(&listener)?;
        second.write_all(b"PROXY TCP4 198.51.100.7 192.0.2.1 40123 9999\r\nAda")?;
        thread::sleep(Duration::from_millis(50));
        linger(admission.admit(listener.accept(), &listener));
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
        assert!(admission.spare.is_some(), "the spare was not taken back");
        Ok(())
    }

    #[test]
    fn other_accept_failures_are_reported_and_survived() -> io::Result<()> {
        let (listener, mut admission, reports) = policy(10)?;
        let aborted = io::Error::from(io::ErrorKind::ConnectionAborted);
        let shown = aborted.to_string();
        assert!(admission.admit(Err(aborted), &listener).is_none());
        assert_eq!(
            report(&reports),
            format!("failed to accept a connection: {shown}\n")
        );
        let _client = client(&listener)?;
        let admitted = admission.admit(listener.accept(), &listener);
        assert!(matches!(admitted, Some(Job::Serve(_))));
        Ok(())
    }
}
