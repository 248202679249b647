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
        std::mem::swap(&mut self.lock_state().pending, spare);
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
