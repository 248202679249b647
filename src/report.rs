//! Reporting what recurs without flooding the console: at most a line a second for each kind of
//! report, the lines held back in that second counted in one line when it is over; and the one
//! way the accept and receive loops live through a failed call.

use std::io;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use crate::log::Log;

/// The least time between two lines of one kind.
const INTERVAL: Duration = Duration::from_secs(1);

/// The first pause after a failed call, and the longest while failures go on.
const FIRST_PAUSE: Duration = Duration::from_millis(1);
const LONGEST_PAUSE: Duration = Duration::from_millis(100);

/// A second in which at most one line of a kind goes out: when it opened, and how many lines
/// it held back since.
#[derive(Debug, Default)]
pub(crate) struct Window {
    opened: Option<Instant>,
    held: u64,
}

impl Window {
    /// Returns true, and opens a new second, if a line may go out now: the last second is
    /// over, and the count of what it held back is out (a late count goes first).
    pub(crate) fn ready(&mut self) -> bool {
        let ready = self.held == 0 && self.wait().is_zero();
        if ready {
            self.opened = Some(Instant::now());
        }
        ready
    }

    /// Returns how long until a line may go out again.
    pub(crate) fn wait(&self) -> Duration {
        let left = |opened: Instant| INTERVAL.saturating_sub(opened.elapsed());
        self.opened.map_or(Duration::ZERO, left)
    }
}

/// One kind of report, `what` its lines say ("connections turned away"), let through at most
/// once a second. A line held back is counted, and the count goes out in a line of its own
/// once the second is over, `49 more connections turned away (reported at most once a
/// second)`, which opens the next second. A cheap clone shares the count.
#[derive(Debug, Clone)]
pub(crate) struct RateLimited {
    window: Arc<Mutex<Window>>,
    what: Arc<str>,
}

impl RateLimited {
    pub(crate) fn new(what: &str) -> Self {
        let (window, what) = (Arc::default(), what.into());
        RateLimited { window, what }
    }

    /// Writes `line` to `log`, or holds it back and counts it, as [`RateLimited`] says.
    pub(crate) fn report(&self, log: &Log, line: std::fmt::Arguments<'_>) {
        let mut window = self.window.lock().unwrap_or_else(PoisonError::into_inner);
        if window.ready() {
            drop(window);
            return log.line(line);
        }
        window.held += 1;
        if window.held == 1 {
            let (limited, due) = (self.clone(), Instant::now() + window.wait());
            log.later(due, move || limited.held_back());
        }
    }

    /// The line that counts what the second now over held back; it opens the next second.
    fn held_back(&self) -> String {
        let mut window = self.window.lock().unwrap_or_else(PoisonError::into_inner);
        let held = std::mem::take(&mut window.held);
        window.opened = Some(Instant::now());
        format!("{held} more {} (reported at most once a second)", self.what)
    }
}

/// How the accept and receive loops live through a failed call: a signal is no failure;
/// anything else is reported, at most once a second, and paused after (1 ms, doubling to
/// 100 ms while the failures go on), so a failure that repeats at once is no busy loop.
#[derive(Debug)]
pub(crate) struct Failures {
    what: &'static str,
    reports: RateLimited,
    pause: Option<Duration>,
}

impl Failures {
    /// Failures to `what` ("accept a connection").
    pub(crate) fn new(what: &'static str) -> Self {
        Failures {
            what,
            reports: RateLimited::new(&format!("failures to {what}")),
            pause: None,
        }
    }

    /// Starts the pauses again from the shortest, after a call that succeeded.
    pub(crate) fn succeeded(&mut self) {
        self.pause = None;
    }

    /// Reports that the call failed with `err`, and pauses.
    pub(crate) fn failed(&mut self, log: &Log, err: &io::Error) {
        if err.kind() == io::ErrorKind::Interrupted {
            return;
        }
        let (what, reports) = (self.what, &self.reports);
        reports.report(log, format_args!("failed to {what}: {err}"));
        let pause = self.pause.unwrap_or(FIRST_PAUSE);
        self.pause = Some((pause * 2).min(LONGEST_PAUSE));
        thread::sleep(pause);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::tests::{Stuck, slow};
    use std::sync::mpsc::Receiver;

    /// A log that tells each write and when it came.
    fn log() -> (Log, Receiver<(Instant, Vec<u8>)>) {
        let (sink, rx) = slow(Duration::ZERO);
        (Log::to_writer(sink), rx)
    }

    /// The lines written within `wait`, each with when it was written.
    fn lines_within(rx: &Receiver<(Instant, Vec<u8>)>, wait: Duration) -> Vec<(Instant, String)> {
        let deadline = Instant::now() + wait;
        let mut lines = Vec::new();
        let left = || deadline.saturating_duration_since(Instant::now());
        while let Ok((at, bytes)) = rx.recv_timeout(left()) {
            let text = String::from_utf8(bytes).expect("reports are text");
            lines.extend(text.lines().map(|line| (at, line.to_string())));
        }
        lines
    }

    /// A burst: the first line at once, the count of the rest in a line of its own when its
    /// second is over, and nothing after it.
    #[test]
    fn a_burst_is_one_line_then_its_count() {
        let (log, rx) = log();
        let limited = RateLimited::new("failures");
        let started = Instant::now();
        for i in 0..50 {
            limited.report(&log, format_args!("failure {i}"));
        }
        let lines = lines_within(&rx, Duration::from_millis(2500));
        let said: Vec<&str> = lines.iter().map(|(_, line)| line.as_str()).collect();
        assert_eq!(
            said,
            [
                "failure 0",
                "49 more failures (reported at most once a second)"
            ]
        );
        let counted = lines[1].0 - started;
        assert!(counted >= INTERVAL && counted < INTERVAL * 2, "{counted:?}");
    }

    /// One line held back is counted too.
    #[test]
    fn a_single_line_held_back_is_counted() {
        let (log, rx) = log();
        let limited = RateLimited::new("failures");
        limited.report(&log, format_args!("failure 0"));
        limited.report(&log, format_args!("failure 1"));
        let lines = lines_within(&rx, Duration::from_millis(1500));
        let said: Vec<&str> = lines.iter().map(|(_, line)| line.as_str()).collect();
        let count = "1 more failures (reported at most once a second)";
        assert_eq!(said, ["failure 0", count]);
    }

    /// A count the log writes late still goes out before the next second's first line: a
    /// report that comes once the second is over, while its count waits, is counted with it.
    #[test]
    fn a_late_count_goes_before_the_next_line() {
        let stuck = Stuck::new();
        let log = Log::to_writer(stuck.clone());
        let limited = RateLimited::new("failures");
        let started = Instant::now();
        limited.report(&log, format_args!("failure 0"));
        limited.report(&log, format_args!("failure 1"));
        // The writer is stuck on the first line, so the count cannot go out in its second.
        thread::sleep(INTERVAL.saturating_sub(started.elapsed()) + Duration::from_millis(100));
        limited.report(&log, format_args!("failure 2"));
        stuck.unstick();
        log.flush();
        let count = "2 more failures (reported at most once a second)";
        assert_eq!(stuck.text(), format!("failure 0\n{count}\n"));
    }

    /// Reports that keep coming make at most one line a second, and after a quiet second the
    /// next one is shown in full again.
    #[test]
    fn a_flood_is_a_line_a_second_and_a_quiet_second_ends_it() {
        let (log, rx) = log();
        let limited = RateLimited::new("failures");
        let started = Instant::now();
        let mut sent = 0;
        while started.elapsed() < Duration::from_millis(2500) {
            limited.report(&log, format_args!("failure {sent}"));
            sent += 1;
            thread::sleep(Duration::from_millis(10));
        }
        let lines = lines_within(&rx, Duration::from_millis(2200));
        let counted: u64 = lines
            .iter()
            .filter_map(|(_, line)| line.split_once(" more failures")?.0.parse::<u64>().ok())
            .sum();
        assert_eq!(counted + 1, sent, "{lines:?}");
        assert!(
            lines.len() <= 5,
            "{} lines in 4.7 s: {lines:?}",
            lines.len()
        );
        for pair in lines.windows(2) {
            assert!(pair[1].0 - pair[0].0 > INTERVAL / 2, "{lines:?}");
        }
        limited.report(&log, format_args!("after the quiet"));
        let next = lines_within(&rx, Duration::from_millis(500));
        assert_eq!(
            next.first().map(|(_, line)| line.as_str()),
            Some("after the quiet")
        );
    }

    #[test]
    fn failures_are_reported_and_paused_after_longer_each_time_but_signals_are_not() {
        let (log, rx) = log();
        let mut failures = Failures::new("accept");
        failures.failed(&log, &io::ErrorKind::Interrupted.into());
        assert_eq!(failures.pause, None);
        let denied = io::Error::from(io::ErrorKind::PermissionDenied);
        let pauses: Vec<u128> = (0..9)
            .map(|_| {
                failures.failed(&log, &denied);
                failures.pause.expect("a pause").as_millis()
            })
            .collect();
        assert_eq!(pauses, [2, 4, 8, 16, 32, 64, 100, 100, 100]);
        failures.succeeded();
        assert_eq!(failures.pause, None);
        let lines = lines_within(&rx, Duration::from_millis(1500));
        let said: Vec<&str> = lines.iter().map(|(_, line)| line.as_str()).collect();
        let first = format!("failed to accept: {denied}");
        let rest = "8 more failures to accept (reported at most once a second)";
        assert_eq!(said, [first.as_str(), rest]);
    }
}
