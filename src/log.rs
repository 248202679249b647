//! The servers' console output: the original's stdout lines, and one-line error reports on stderr.
//! On a terminal each stdout line is written at once; into a pipe or a file, lines are gathered and
//! written by a small flusher thread, so a busy server does not pay a write syscall per line.

use std::fmt;
use std::io::{self, IsTerminal, Write};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

/// The least time between two writes of buffered lines. A line that comes after a quiet spell is
/// written at once; lines that come faster share one write per interval, so a busy server pays a
/// write syscall every 50 ms instead of one per line, and a script tailing the log still sees each
/// line well within a second.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(50);

/// The most bytes of lines held for a stdout that does not keep up (a reader that stopped
/// reading a pipe); lines beyond it are dropped and counted, so memory stays bounded.
pub const MAX_PENDING: usize = 1 << 20;

/// A cheap, cloneable handle to where a server writes its per-connection or per-datagram lines.
///
/// [`Log::quiet`] drops every line. The other constructors write each line with a trailing
/// newline; the last handle dropped writes out what is still buffered.
#[derive(Clone)]
pub struct Log {
    inner: Option<Arc<Handle>>,
}

struct Handle {
    shared: Arc<Shared>,
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
    sink: Mutex<Box<dyn Write + Send>>,
    buffered: bool,
}

struct State {
    pending: Vec<u8>,
    /// Lines dropped since the last write because `pending` was full.
    dropped: u64,
    closed: bool,
}

impl Log {
    /// Returns a log that drops every line.
    pub fn quiet() -> Self {
        Log { inner: None }
    }

    /// Returns a log to standard output: line by line on a terminal, batched otherwise.
    pub fn stdout() -> Self {
        let buffered = !io::stdout().is_terminal();
        Self::new(Box::new(io::stdout()), buffered)
    }

    /// Returns a log to `sink`, batched as for a pipe.
    pub fn to_writer(sink: impl Write + Send + 'static) -> Self {
        Self::new(Box::new(sink), true)
    }

    fn new(sink: Box<dyn Write + Send>, buffered: bool) -> Self {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                pending: Vec::new(),
                dropped: 0,
                closed: false,
            }),
            wake: Condvar::new(),
            sink: Mutex::new(sink),
            buffered,
        });
        if buffered {
            let flusher = Arc::clone(&shared);
            let spawned = thread::Builder::new()
                .name("log-flusher".into())
                .stack_size(64 * 1024)
                .spawn(move || flusher.run_flusher());
            if let Err(err) = spawned {
                report(format_args!("cannot start the log flusher: {err}"));
                return Log::quiet();
            }
        }
        Log {
            inner: Some(Arc::new(Handle { shared })),
        }
    }

    /// Writes one line; `line` carries no newline of its own.
    ///
    /// Output errors (a closed pipe, a full disk) are ignored: a server does not stop serving
    /// because nobody reads its log.
    pub fn line(&self, line: fmt::Arguments<'_>) {
        let Some(handle) = &self.inner else { return };
        let shared = &handle.shared;
        if shared.buffered {
            let mut state = shared.lock_state();
            if state.pending.len() >= MAX_PENDING {
                state.dropped += 1;
                return;
            }
            let was_empty = state.pending.is_empty();
            // Writing into a Vec cannot fail.
            let _ = writeln!(state.pending, "{line}");
            if was_empty {
                shared.wake.notify_one();
            }
        } else {
            let mut sink = shared.lock_sink();
            let _ = writeln!(sink, "{line}");
            let _ = sink.flush();
        }
    }

    /// Writes out every buffered line now.
    pub fn flush(&self) {
        if let Some(handle) = &self.inner {
            handle.shared.write_pending(&mut Vec::new());
        }
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.shared.lock_state().closed = true;
        self.shared.wake.notify_one();
        self.shared.write_pending(&mut Vec::new());
    }
}

impl Shared {
    fn lock_state(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere while holding the lock leaves a Vec that is still valid to use.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn lock_sink(&self) -> MutexGuard<'_, Box<dyn Write + Send>> {
        self.sink
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Swaps the pending lines into `spare` and writes them, so the lock is not held during I/O.
    fn write_pending(&self, spare: &mut Vec<u8>) {
        let mut sink = self.lock_sink();
        let dropped = {
            let mut state = self.lock_state();
            std::mem::swap(&mut state.pending, spare);
            std::mem::take(&mut state.dropped)
        };
        if dropped > 0 {
            report(format_args!(
                "{dropped} log lines dropped: standard output is not keeping up"
            ));
        }
        if !spare.is_empty() {
            let _ = sink.write_all(spare);
            let _ = sink.flush();
            spare.clear();
        }
    }

    fn run_flusher(&self) {
        let mut spare = Vec::new();
        loop {
            let mut state = self.lock_state();
            while state.pending.is_empty() && !state.closed {
                state = self
                    .wake
                    .wait(state)
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
            }
            if state.closed {
                return;
            }
            drop(state);
            self.write_pending(&mut spare);
            thread::sleep(FLUSH_INTERVAL);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sink that blocks every write until told to go on, like a pipe nobody reads.
    struct Stuck(Arc<(Mutex<bool>, Condvar)>, Arc<Mutex<usize>>);

    impl Write for Stuck {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let (open, turned) = &*self.0;
            let mut open = open.lock().unwrap();
            while !*open {
                open = turned.wait(open).unwrap();
            }
            *self.1.lock().unwrap() += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn lines_for_a_stuck_stdout_are_bounded() {
        let gate = Arc::new((Mutex::new(false), Condvar::new()));
        let written = Arc::new(Mutex::new(0));
        let log = Log::to_writer(Stuck(Arc::clone(&gate), Arc::clone(&written)));
        for i in 0..200_000 {
            log.line(format_args!("Received from 127.0.0.1:{i}."));
        }
        let held = log
            .inner
            .as_ref()
            .unwrap()
            .shared
            .lock_state()
            .pending
            .len();
        assert!(held <= MAX_PENDING + 64, "{held} bytes held");
        *gate.0.lock().unwrap() = true;
        gate.1.notify_all();
        drop(log);
        // What was held, plus the batch the flusher may have taken before it got stuck (none
        // if it first ran after the loop): whenever the flusher runs, nothing held is lost and
        // at most two buffers' worth was ever in memory.
        let written = *written.lock().unwrap();
        assert!(
            written >= held && written <= 2 * (MAX_PENDING + 64),
            "{written} bytes written, {held} held"
        );
    }
}

/// Writes one line to standard error, ignoring failure: there is nowhere left to report it.
pub fn report(line: fmt::Arguments<'_>) {
    let _ = writeln!(io::stderr().lock(), "{line}");
}

/// Reports a recurring error at most once per interval, counting the ones it held back, so a
/// flood of failures costs a line a second rather than a line each.
#[derive(Debug)]
pub struct RateLimited {
    interval: Duration,
    last: Option<Instant>,
    suppressed: u64,
}

impl RateLimited {
    /// Creates a limiter that lets one report through per `interval`.
    pub fn new(interval: Duration) -> Self {
        RateLimited {
            interval,
            last: None,
            suppressed: 0,
        }
    }

    /// Reports `line` on stderr unless one went out less than an interval ago.
    pub fn report(&mut self, line: fmt::Arguments<'_>) {
        let now = Instant::now();
        if self.last.is_some_and(|last| now - last < self.interval) {
            self.suppressed += 1;
            return;
        }
        self.last = Some(now);
        match std::mem::take(&mut self.suppressed) {
            0 => report(line),
            n => report(format_args!("{line} ({n} more like it not shown)")),
        }
    }
}
