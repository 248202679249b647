//! Reporting what recurs without flooding the console: a line a second at most for each kind of
//! report, with a count of the lines held back; and the one way the accept and receive loops
//! live through a failed call.

use std::fmt;
use std::io;
use std::thread;
use std::time::{Duration, Instant};

use crate::log::Log;

/// The least time between two lines of one kind.
const INTERVAL: Duration = Duration::from_secs(1);

/// The first pause after a failed call, and the longest while failures go on.
const FIRST_PAUSE: Duration = Duration::from_millis(1);
const LONGEST_PAUSE: Duration = Duration::from_millis(100);

/// One kind of report, let through at most once a second; what comes in between is counted.
#[derive(Debug, Default)]
pub(crate) struct RateLimited {
    last: Option<Instant>,
    held: u64,
}

impl RateLimited {
    /// Writes `line` to `log` unless a line of this kind went out less than a second ago; then
    /// it is held back and counted, and the next line that goes out says how many were.
    pub(crate) fn report(&mut self, log: &Log, line: fmt::Arguments<'_>) {
        if !self.ready() {
            self.held += 1;
            return;
        }
        match std::mem::take(&mut self.held) {
            0 => log.line(line),
            n => log.line(format_args!("{line} ({n} more like it not shown)")),
        }
    }

    /// Returns true, and starts a new second, if a line may go out now.
    pub(crate) fn ready(&mut self) -> bool {
        let now = Instant::now();
        let ready = self.last.is_none_or(|last| now - last >= INTERVAL);
        if ready {
            self.last = Some(now);
        }
        ready
    }

    /// Returns how long until a line may go out again.
    pub(crate) fn wait(&self) -> Duration {
        self.last.map_or(Duration::ZERO, |last| {
            INTERVAL.saturating_sub(last.elapsed())
        })
    }
}

/// How the accept and receive loops live through a failed call: a signal is no failure;
/// anything else is reported, at most once a second, and paused after (1 ms, doubling to
/// 100 ms while the failures go on), so a failure that repeats at once is no busy loop.
#[derive(Debug, Default)]
pub(crate) struct Failures {
    reports: RateLimited,
    pause: Option<Duration>,
}

impl Failures {
    /// Starts the pauses again from the shortest, after a call that succeeded.
    pub(crate) fn succeeded(&mut self) {
        self.pause = None;
    }

    /// Reports that the call to `what` failed with `err`, and pauses.
    pub(crate) fn failed(&mut self, log: &Log, what: &str, err: &io::Error) {
        if err.kind() == io::ErrorKind::Interrupted {
            return;
        }
        self.reports
            .report(log, format_args!("failed to {what}: {err}"));
        let pause = self.pause.unwrap_or(FIRST_PAUSE);
        self.pause = Some((pause * 2).min(LONGEST_PAUSE));
        thread::sleep(pause);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::tests::Tap;
    use std::sync::mpsc;

    fn written(log: &Log, rx: &mpsc::Receiver<Vec<u8>>) -> String {
        log.flush();
        String::from_utf8(rx.try_iter().flatten().collect()).expect("reports are text")
    }

    #[test]
    fn a_rate_limited_report_counts_what_it_held_back() {
        let (tx, rx) = mpsc::channel();
        let log = Log::to_writer(Tap(tx));
        let mut limited = RateLimited::default();
        for i in 0..3 {
            limited.report(&log, format_args!("failure {i}"));
        }
        assert!(limited.wait() > INTERVAL / 2);
        // As if the second were over: the next report goes out, with the count.
        limited.last = None;
        assert_eq!(limited.wait(), Duration::ZERO);
        limited.report(&log, format_args!("failure 3"));
        assert_eq!(
            written(&log, &rx),
            "failure 0\nfailure 3 (2 more like it not shown)\n"
        );
    }

    #[test]
    fn failures_are_reported_and_paused_after_longer_each_time_but_signals_are_not() {
        let (tx, rx) = mpsc::channel();
        let log = Log::to_writer(Tap(tx));
        let mut failures = Failures::default();
        failures.failed(&log, "accept", &io::ErrorKind::Interrupted.into());
        assert_eq!(failures.pause, None);
        let denied = io::Error::from(io::ErrorKind::PermissionDenied);
        let pauses: Vec<u128> = (0..9)
            .map(|_| {
                failures.failed(&log, "accept", &denied);
                failures.pause.expect("a pause").as_millis()
            })
            .collect();
        assert_eq!(pauses, [2, 4, 8, 16, 32, 64, 100, 100, 100]);
        failures.succeeded();
        assert_eq!(failures.pause, None);
        assert_eq!(written(&log, &rx), format!("failed to accept: {denied}\n"));
    }
}
