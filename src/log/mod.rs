//! The servers' console output: the original's stdout lines, and one-line reports on stderr.
//!
//! A thread that serves or accepts a client never waits for the console. Each line goes into a
//! bounded buffer, and one writer thread per stream hands it to the kernel: on a terminal, a
//! pipe or a file alike, at once after a quiet spell. Lines that come within a millisecond of a
//! write go out together in the next (group commit), so a busy server pays a lock and a copy per
//! line and one write and one wake-up a millisecond, and a server killed right after an event
//! has already written that event's line. When the stream does not move (a pipe nobody
//! reads, a terminal paused with Ctrl-S), lines past the buffer are dropped and counted, and the
//! count is reported once it moves again. Every line arrives whole, also when stdout and stderr
//! share one pipe, and lines a failing stream could not take are counted like dropped ones
//! (output.rs).

use std::fmt;
use std::io::{self, Write};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use output::{Output, Unreported};

mod output;

/// The most bytes of lines held for a stream that does not keep up (a reader that stopped
/// reading a pipe); lines beyond it are dropped and counted, so memory stays bounded.
const MAX_PENDING: usize = 1 << 20;

/// How long the writer gathers lines after each write before it looks again; the longest a line
/// waits for company, and only when lines keep coming.
const LOAD_BATCH: Duration = Duration::from_millis(1);

/// How long [`Log::flush`] waits for a stream that does not move before it gives up.
const FLUSH_LIMIT: Duration = Duration::from_secs(2);

/// How often at most standard output's log says on stderr what it dropped or lost.
const NOTICE_INTERVAL: Duration = Duration::from_secs(1);

/// A cheap, cloneable handle to where a server writes its lines: the original's console lines
/// on stdout, or its reports on stderr.
///
/// [`Log::quiet`] drops every line. The others write each line with a trailing newline, from a
/// writer thread of their own; the last handle dropped writes out what is still buffered, waiting
/// at most two seconds for a stream that does not move.
#[derive(Clone)]
pub struct Log {
    inner: Option<Arc<Handle>>,
}

impl fmt::Debug for Log {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.inner.is_some() {
            "Log"
        } else {
            "Log(quiet)"
        })
    }
}

/// What the writer found when it looked for lines.
enum Next {
    /// Lines, and how many were dropped since the last batch because the buffer was full.
    Batch { dropped: u64 },
    /// None came in the time it had.
    Quiet,
    /// The log is closed and every line is out.
    Closed,
}

/// Where the count of dropped lines is reported.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Notice {
    /// On stderr, for stdout: the original's console lines stay as they were.
    Stderr,
    /// In the stream itself, where the gap is.
    Inline,
}

/// The last handle's drop closes the buffer, so the writer thread can finish and end.
struct Handle {
    shared: Arc<Shared>,
}

struct Shared {
    state: Mutex<State>,
    /// Wakes the writer when lines come or the log closes.
    wake: Condvar,
    /// Tells [`Log::flush`] that the writer has caught up.
    idle: Condvar,
    notice: Notice,
}

struct State {
    /// The stream, until the first line starts the writer thread with it: a log that is made
    /// but not yet written to costs no thread (a server's descriptor table grows fastest while
    /// the process has a single thread).
    unstarted: Option<Box<dyn Write + Send>>,
    pending: Vec<u8>,
    /// Lines dropped since the writer last took the buffer, because it was full.
    dropped: u64,
    /// The writer is handing a batch to the kernel, or gathering the next; lines that come now
    /// wait for it.
    writing: bool,
    /// The writer waits on the condition variable for the next line, which must wake it.
    asleep: bool,
    closed: bool,
}

impl Log {
    /// Returns a log that drops every line.
    pub fn quiet() -> Self {
        Log { inner: None }
    }

    /// Returns a log to standard output.
    pub fn stdout() -> Self {
        Self::new(Box::new(io::stdout()), Notice::Stderr)
    }

    /// Returns the log to standard error that servers report on; every call shares one buffer
    /// and one writer.
    pub fn stderr() -> Self {
        static STDERR: OnceLock<Log> = OnceLock::new();
        STDERR
            .get_or_init(|| Self::new(Box::new(io::stderr()), Notice::Inline))
            .clone()
    }

    /// Returns a log to `sink`, which reports its own dropped lines inline.
    pub fn to_writer(sink: impl Write + Send + 'static) -> Self {
        Self::new(Box::new(sink), Notice::Inline)
    }

    fn new(sink: Box<dyn Write + Send>, notice: Notice) -> Self {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                unstarted: Some(sink),
                pending: Vec::new(),
                dropped: 0,
                writing: false,
                asleep: false,
                closed: false,
            }),
            wake: Condvar::new(),
            idle: Condvar::new(),
            notice,
        });
        Log {
            inner: Some(Arc::new(Handle { shared })),
        }
    }

    /// Writes one line; `line` carries no newline of its own.
    ///
    /// It never waits for the stream: the line is buffered for the writer thread, or dropped
    /// and counted when the buffer is full. Output errors (a closed pipe, a full disk) are
    /// ignored: a server does not stop serving because nobody reads its log.
    pub fn line(&self, line: fmt::Arguments<'_>) {
        // Writing into a Vec cannot fail.
        self.line_with(|pending| drop(pending.write_fmt(line)));
    }

    /// Writes one line that `write` appends to the buffer itself, for a line a server writes
    /// so often that the formatting machinery would show (udp-server's one per datagram).
    pub(crate) fn line_with(&self, write: impl FnOnce(&mut Vec<u8>)) {
        let Some(handle) = &self.inner else { return };
        let shared = &handle.shared;
        let mut state = shared.lock_state();
        if state.pending.len() >= MAX_PENDING {
            state.dropped += 1;
            return;
        }
        write(&mut state.pending);
        state.pending.push(b'\n');
        if let Some(sink) = state.unstarted.take() {
            let writer = Arc::clone(shared);
            let spawned = thread::Builder::new()
                .name("log-writer".into())
                .stack_size(64 * 1024)
                .spawn(move || writer.run_writer(sink));
            if let Err(err) = spawned {
                // Without a writer nothing leaves the buffer; say so where we still can.
                let _ = writeln!(io::stderr(), "cannot start a log writer: {err}");
            }
        } else if state.asleep {
            // Only a writer that sleeps needs waking: one that gathers takes this line within
            // a millisecond anyway, and a wake-up costs a system call on every line.
            state.asleep = false;
            shared.wake.notify_one();
        }
    }

    /// Waits until every line buffered so far has been handed to the stream, or for at most two
    /// seconds when the stream does not move.
    pub fn flush(&self) {
        if let Some(handle) = &self.inner {
            handle.shared.wait_idle();
        }
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.shared.lock_state().closed = true;
        self.shared.wake.notify_one();
        self.shared.wait_idle();
    }
}

impl Shared {
    fn lock_state(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere while holding the lock leaves a Vec that is still valid to use.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn wait_idle(&self) {
        let deadline = Instant::now() + FLUSH_LIMIT;
        let mut state = self.lock_state();
        while !state.pending.is_empty() || state.writing {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            state = match self.idle.wait_timeout(state, left) {
                Ok((state, _)) => state,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
    }

    /// Waits for lines, for at most `most` if given, and swaps them into `batch`.
    fn next_batch(&self, batch: &mut Vec<u8>, most: Option<Duration>) -> Next {
        let deadline = most.map(|most| Instant::now() + most);
        let mut state = self.lock_state();
        state.writing = false;
        while state.pending.is_empty() {
            self.idle.notify_all();
            if state.closed {
                return Next::Closed;
            }
            state.asleep = true;
            let Some(deadline) = deadline else {
                state = self
                    .wake
                    .wait(state)
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                state.asleep = false;
                continue;
            };
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                state.asleep = false;
                return Next::Quiet;
            }
            state = match self.wake.wait_timeout(state, left) {
                Ok((state, _)) => state,
                Err(poisoned) => poisoned.into_inner().0,
            };
            state.asleep = false;
        }
        std::mem::swap(&mut state.pending, batch);
        state.writing = true;
        Next::Batch {
            dropped: std::mem::take(&mut state.dropped),
        }
    }

    /// Hands each batch of lines to `sink` as soon as there is one, until the log is closed and
    /// empty; says what was dropped or lost on the way.
    fn run_writer(&self, sink: Box<dyn Write + Send>) {
        let mut output = Output::new(sink);
        let mut unreported = Unreported::default();
        let mut last_notice: Option<Instant> = None;
        let mut batch = Vec::new();
        loop {
            // With something to report, the writer wakes for it in time even if no line comes.
            let most = (!unreported.is_empty()).then(|| match last_notice {
                Some(last) => NOTICE_INTERVAL.saturating_sub(last.elapsed()),
                None => Duration::ZERO,
            });
            let dropped = match self.next_batch(&mut batch, most) {
                Next::Batch { dropped } => dropped,
                Next::Quiet => {
                    self.report(&mut unreported, &mut output, &mut last_notice, false);
                    continue;
                }
                Next::Closed => break,
            };
            unreported.dropped(dropped);
            self.report(&mut unreported, &mut output, &mut last_notice, false);
            if let Some(lost) = output.write(&batch) {
                unreported.lost(lost);
            }
            batch.clear();
            // Gather for a millisecond before looking again. A busy server's lines then cost a
            // lock and a copy each, and one write and one wake-up of this thread a millisecond
            // between them all; waking the writer for every line (or line or two) cost up to
            // twice the floor's CPU per datagram (measured). Every line still reaches the
            // kernel within about a millisecond, and a line after a quiet spell never waits:
            // it finds the writer asleep, and wakes it.
            thread::sleep(LOAD_BATCH);
        }
        self.report(&mut unreported, &mut output, &mut last_notice, true);
    }

    /// Says what was dropped or lost, where this log's notices go: in the stream itself, once
    /// it takes a write again; or, for standard output, on stderr, at most once a second (and
    /// once more when the log closes).
    fn report(
        &self,
        unreported: &mut Unreported,
        output: &mut Output,
        last: &mut Option<Instant>,
        closing: bool,
    ) {
        if unreported.is_empty() {
            return;
        }
        let now = Instant::now();
        match self.notice {
            // A notice in the stream itself goes out at the first write the stream takes, just
            // before the lines that follow the gap; until then it is tried again once a second.
            Notice::Inline => {
                *last = Some(now);
                if output.write(unreported.notice(false).as_bytes()).is_none() {
                    *unreported = Unreported::default();
                }
            }
            // On stderr, where it always goes out: at most once a second.
            Notice::Stderr => {
                if closing || last.is_none_or(|last| now - last >= NOTICE_INTERVAL) {
                    *last = Some(now);
                    let notice = unreported.notice(true);
                    Log::stderr().line(format_args!("{}", notice.trim_end()));
                    *unreported = Unreported::default();
                }
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::sync::mpsc;

    /// A sink that blocks every write until told to go on, like a pipe nobody reads, and
    /// keeps what it was given.
    #[derive(Clone)]
    struct Stuck {
        open: Arc<(Mutex<bool>, Condvar)>,
        written: Arc<Mutex<Vec<u8>>>,
    }

    impl Stuck {
        fn new() -> Self {
            Stuck {
                open: Arc::new((Mutex::new(false), Condvar::new())),
                written: Arc::default(),
            }
        }

        fn unstick(&self) {
            *self.open.0.lock().unwrap() = true;
            self.open.1.notify_all();
        }

        fn text(&self) -> String {
            String::from_utf8(self.written.lock().unwrap().clone()).unwrap()
        }
    }

    impl Write for Stuck {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let (open, turned) = &*self.open;
            let mut open = open.lock().unwrap();
            while !*open {
                open = turned.wait(open).unwrap();
            }
            self.written.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// A sink that reports each write on a channel.
    pub(crate) struct Tap(pub(crate) mpsc::Sender<Vec<u8>>);

    impl Write for Tap {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let _ = self.0.send(buf.to_vec());
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_stuck_stream_never_blocks_a_line_and_the_gap_is_counted() {
        let stuck = Stuck::new();
        let log = Log::to_writer(stuck.clone());
        let started = Instant::now();
        for i in 0..200_000 {
            log.line(format_args!("Received from 127.0.0.1:{i}."));
        }
        // 200,000 lines of about 30 bytes into a stream that takes nothing: none waited.
        assert!(started.elapsed() < Duration::from_secs(5));
        let held = log
            .inner
            .as_ref()
            .unwrap()
            .shared
            .lock_state()
            .pending
            .len();
        assert!(held <= MAX_PENDING + 64, "{held} bytes held");
        stuck.unstick();
        drop(log);
        let text = stuck.text();
        let kept = text.lines().filter(|l| l.starts_with("Received")).count();
        // One notice per batch that followed drops: one or two, depending on whether the writer
        // first ran before or after the buffer filled.
        let dropped: usize = text
            .lines()
            .filter_map(|l| {
                let l = l.strip_suffix(" dropped: this output is not keeping up")?;
                l.strip_suffix(" lines").or(l.strip_suffix(" line"))
            })
            .map(|count| count.parse::<usize>().unwrap())
            .sum();
        assert!(dropped > 0, "no notice of the dropped lines");
        // Whenever the writer ran, every line is either written or counted.
        assert_eq!(kept + dropped, 200_000, "{kept} kept, {dropped} dropped");
        assert!(
            text.len() <= 2 * (MAX_PENDING + 64) + 200,
            "{} bytes",
            text.len()
        );
    }

    #[test]
    fn a_line_is_written_at_once_without_waiting_for_more() {
        let (tx, rx) = mpsc::channel();
        let log = Log::to_writer(Tap(tx));
        log.line(format_args!("Accept new connection from 127.0.0.1:5000..."));
        let first = rx
            .recv_timeout(Duration::from_secs(5))
            .expect("a prompt write");
        assert_eq!(first, b"Accept new connection from 127.0.0.1:5000...\n");
        log.line(format_args!("Connection from 127.0.0.1:5000 closed."));
        let second = rx
            .recv_timeout(Duration::from_secs(5))
            .expect("a prompt write");
        assert_eq!(second, b"Connection from 127.0.0.1:5000 closed.\n");
    }

    #[test]
    fn flush_waits_for_every_line_so_far() {
        let (tx, rx) = mpsc::channel();
        let log = Log::to_writer(Tap(tx));
        for i in 0..1000 {
            log.line(format_args!("{i}"));
        }
        log.flush();
        let written: Vec<u8> = rx.try_iter().flatten().collect();
        let expected: String = (0..1000).map(|i| format!("{i}\n")).collect();
        assert_eq!(String::from_utf8(written).unwrap(), expected);
    }

    /// A sink that fails every write while it is told to, as a full disk does.
    #[derive(Clone, Default)]
    struct Failing {
        failing: Arc<Mutex<bool>>,
        written: Arc<Mutex<Vec<u8>>>,
    }

    impl Write for Failing {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if *self.failing.lock().unwrap() {
                return Err(io::Error::other("no space left"));
            }
            self.written.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn lines_a_failing_stream_could_not_take_are_counted_in_it() {
        let sink = Failing::default();
        let log = Log::to_writer(sink.clone());
        log.line(format_args!("before"));
        log.flush();
        *sink.failing.lock().unwrap() = true;
        for i in 0..10 {
            log.line(format_args!("lost {i}"));
        }
        log.flush();
        *sink.failing.lock().unwrap() = false;
        log.line(format_args!("after"));
        drop(log);
        let written = String::from_utf8(sink.written.lock().unwrap().clone()).unwrap();
        assert_eq!(
            written,
            "before\n10 lines lost: this output failed: no space left\nafter\n"
        );
    }
}
