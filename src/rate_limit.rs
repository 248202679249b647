//! Reporting a recurring failure without flooding the console: one line per interval, with a
//! count of the lines held back.

use std::fmt;
use std::time::{Duration, Instant};

use crate::log::Log;

/// Reports a recurring error at most once per interval, counting the ones it held back, so a
/// flood of failures costs a line a second rather than a line each.
#[derive(Debug)]
pub(crate) struct RateLimited {
    interval: Duration,
    last: Option<Instant>,
    suppressed: u64,
}

impl RateLimited {
    /// Creates a limiter that lets one report through per `interval`.
    pub(crate) fn new(interval: Duration) -> Self {
        RateLimited {
            interval,
            last: None,
            suppressed: 0,
        }
    }

    /// Creates the servers' limiter: a report of each kind at most once a second, as the
    /// README promises.
    pub(crate) fn once_a_second() -> Self {
        Self::new(Duration::from_secs(1))
    }

    /// Writes `line` to `log` unless one went out less than an interval ago.
    pub(crate) fn report(&mut self, log: &Log, line: fmt::Arguments<'_>) {
        let now = Instant::now();
        if self.last.is_some_and(|last| now - last < self.interval) {
            self.suppressed += 1;
            return;
        }
        self.last = Some(now);
        match std::mem::take(&mut self.suppressed) {
            0 => log.line(line),
            n => log.line(format_args!("{line} ({n} more like it not shown)")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::tests::Tap;
    use std::sync::mpsc;

    #[test]
    fn a_rate_limited_report_counts_what_it_held_back() {
        let (tx, rx) = mpsc::channel();
        let log = Log::to_writer(Tap(tx));
        let mut limited = RateLimited::new(Duration::from_secs(3600));
        for i in 0..3 {
            limited.report(&log, format_args!("failure {i}"));
        }
        // As if the hour were over: the next report goes out, with the count.
        limited.last = None;
        limited.report(&log, format_args!("failure 3"));
        log.flush();
        let written: Vec<u8> = rx.try_iter().flatten().collect();
        assert_eq!(
            String::from_utf8(written).unwrap(),
            "failure 0\nfailure 3 (2 more like it not shown)\n"
        );
    }
}
