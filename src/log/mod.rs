//! The servers' console output: the original's stdout lines, and one-line reports on stderr.
//!
//! A thread that serves or accepts a client never waits for the console. Each line goes into a
//! queue (std's `mpsc` channel) that holds at most a MiB of lines, and one writer thread per
//! stream hands them to the kernel: a line after a quiet spell at once, and lines that come while a write is under way
//! together in the next write, a millisecond later at most (group commit), so a busy server pays
//! a small copy per line and one write a millisecond, and a server killed right after an event
//! has already written that event's line. When the stream does not move (a pipe nobody reads, a
//! terminal paused with Ctrl-S), lines past the queue are dropped and counted, and the count is
//! reported once it moves again. Every line arrives whole, also when stdout and stderr share one
//! pipe, and lines a failing stream could not take are counted like dropped ones (output.rs).

use std::fmt;
use std::io::{self, Write};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, Once, OnceLock, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use crate::report::Window;
use output::Output;

mod output;

/// The most bytes of lines held for a stream that does not keep up (a reader that stopped
/// reading a pipe); lines beyond it are dropped and counted, so memory stays bounded.
const MAX_PENDING: usize = 1 << 20;

/// How long the writer gathers lines after each write before it looks again; the longest a line
/// waits for company, and only when lines keep coming.
const GATHER: Duration = Duration::from_millis(1);

/// How long [`Log::flush`] waits for a stream that does not move before it gives up.
const FLUSH_LIMIT: Duration = Duration::from_secs(2);

/// A cheap, cloneable handle to where a server writes its lines: the original's console lines
/// on stdout, or its reports on stderr.
///
/// [`Log::quiet`] drops every line. The others write each line with a trailing newline, from a
/// writer thread of their own; the last handle dropped writes out what is still queued, waiting
/// at most two seconds for a stream that does not move.
#[derive(Clone)]
pub struct Log {
    inner: Option<Arc<Inner>>,
}

impl fmt::Debug for Log {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Log {{ quiet: {} }}", self.inner.is_none())
    }
}

/// What goes through the queue: a line with its newline, a wish to know when every line before
/// it is written (and the count of those dropped reported), or a line to make when it is due.
enum Entry {
    Line(Vec<u8>),
    Flush(Sender<()>),
    Later(Later),
}

/// A line to make at a moment to come, if there is one to make then.
type Later = (Instant, Box<dyn FnOnce() -> String + Send>);

/// What the handles and the writer count together: bytes of lines queued and not yet written,
/// and lines dropped because the queue held a MiB already, not yet reported.
#[derive(Default)]
struct Counts {
    pending: AtomicUsize,
    dropped: AtomicU64,
}

/// The writing end of the queue, shared by every handle of one log.
struct Inner {
    queue: Sender<Entry>,
    counts: Arc<Counts>,
    started: Once,
    /// The writer, until the first line starts its thread: a log that is made but not yet
    /// written to costs no thread (a server's descriptor table grows fastest while the process
    /// has a single thread).
    unstarted: Mutex<Option<Writer>>,
}

/// The writer thread's side: the queue's reading end and the stream.
struct Writer {
    queue: Receiver<Entry>,
    counts: Arc<Counts>,
    output: Output,
    /// Where the count of dropped or lost lines goes: another log (stderr, for stdout, whose
    /// lines stay the original's), or, when none, the stream itself, where the gap is.
    notices: Option<Log>,
}

impl Log {
    /// Returns a log that drops every line.
    pub fn quiet() -> Self {
        Log { inner: None }
    }

    /// Returns a log to standard output.
    pub fn stdout() -> Self {
        Self::new(Box::new(io::stdout()), Some(Log::stderr()))
    }

    /// Returns the log to standard error that servers report on; every call shares one queue
    /// and one writer.
    pub fn stderr() -> Self {
        static STDERR: OnceLock<Log> = OnceLock::new();
        STDERR.get_or_init(|| Self::to_writer(io::stderr())).clone()
    }

    /// Returns a log to `sink`, which reports its own dropped lines inline.
    pub fn to_writer(sink: impl Write + Send + 'static) -> Self {
        Self::new(Box::new(sink), None)
    }

    fn new(sink: Box<dyn Write + Send>, notices: Option<Log>) -> Self {
        let (queue, entries) = mpsc::channel();
        let counts = Arc::<Counts>::default();
        let writer = Writer {
            queue: entries,
            counts: Arc::clone(&counts),
            output: Output::new(sink),
            notices,
        };
        let inner = Some(Arc::new(Inner {
            queue,
            counts,
            started: Once::new(),
            unstarted: Mutex::new(Some(writer)),
        }));
        Log { inner }
    }

    /// Writes one line; `line` carries no newline of its own.
    ///
    /// It never waits for the stream: the line is queued for the writer thread, or dropped and
    /// counted when the queue holds a MiB already. Output errors (a closed pipe, a full disk)
    /// are ignored: a server does not stop serving because nobody reads its log.
    pub fn line(&self, line: fmt::Arguments<'_>) {
        let Some(inner) = &self.inner else { return };
        inner.start();
        let mut bytes = Vec::with_capacity(64);
        // Writing into a Vec cannot fail.
        let _ = writeln!(bytes, "{line}");
        bytes.shrink_to_fit();
        let (cost, counts) = (cost(&bytes), &inner.counts);
        if counts.pending.fetch_add(cost, Ordering::Relaxed) + cost > MAX_PENDING {
            counts.pending.fetch_sub(cost, Ordering::Relaxed);
            counts.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let _ = inner.queue.send(Entry::Line(bytes));
    }

    /// Writes the line `make` makes at `at`: a count that is due later.
    pub(crate) fn later(&self, at: Instant, make: impl FnOnce() -> String + Send + 'static) {
        let Some(inner) = &self.inner else { return };
        inner.start();
        let _ = inner.queue.send(Entry::Later((at, Box::new(make))));
    }

    /// Waits until every line written so far has been handed to the stream, or for at most two
    /// seconds when the stream does not move.
    pub fn flush(&self) {
        let Some(inner) = &self.inner else { return };
        inner.flush();
    }
}

/// What a queued line takes from the budget: its bytes, and about what its allocation and its
/// place in the queue cost besides (an empty line is no free line).
fn cost(line: &[u8]) -> usize {
    line.len() + 64
}

impl Inner {
    fn start(&self) {
        self.started.call_once(|| {
            let unstarted = self.unstarted.lock();
            let writer = unstarted.unwrap_or_else(PoisonError::into_inner).take();
            let spawned = thread::Builder::new()
                .name("log-writer".into())
                .stack_size(64 * 1024)
                .spawn(move || writer.map(Writer::run));
            if let Err(err) = spawned {
                // Without a writer nothing leaves the queue; say so where we still can.
                let _ = writeln!(io::stderr(), "cannot start a log writer: {err}");
            }
        });
    }

    fn flush(&self) {
        let (done, written) = mpsc::channel();
        if self.started.is_completed() && self.queue.send(Entry::Flush(done)).is_ok() {
            let _ = written.recv_timeout(FLUSH_LIMIT);
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Then the queue's sending end goes, and the writer ends once the queue is empty.
        self.flush();
    }
}

impl Writer {
    /// Hands each batch of lines to the stream as soon as there is one, until every handle is
    /// gone and the queue is empty; says what was dropped or lost on the way.
    fn run(mut self) {
        let (mut notices, mut laters) = (Window::default(), Vec::<Later>::new());
        loop {
            // With something to report, or a line due later, the writer wakes for it in time
            // even if no line comes.
            let now = Instant::now();
            let dropped = self.counts.dropped.load(Ordering::Relaxed) > 0;
            let notice =
                (dropped || !self.output.unreported.is_empty()).then(|| now + notices.wait());
            let wake = laters.iter().map(|(at, _)| *at).chain(notice).min();
            let wait = wake.map_or(Duration::MAX, |at| at.saturating_duration_since(now));
            let first = self.queue.recv_timeout(wait);
            if let Err(RecvTimeoutError::Disconnected) = first {
                break;
            }
            // A notice in the stream itself goes just before the lines that follow the gap;
            // one on stderr at most once a second.
            let inline = self.notices.is_none();
            self.report((first.is_ok() && inline) || notices.ready());
            // A batch is at most what the queue holds, so that a producer that never pauses
            // cannot keep a flush, or the count of what it dropped, waiting.
            let (pending, mut flushed, mut taken) = (&self.counts.pending, Vec::new(), 0);
            for entry in first.into_iter().chain(self.queue.try_iter()) {
                match entry {
                    Entry::Line(line) => {
                        self.output.push(&line);
                        taken += cost(&line);
                        pending.fetch_sub(cost(&line), Ordering::Relaxed);
                    }
                    Entry::Flush(done) => flushed.push(done),
                    Entry::Later(later) => laters.push(later),
                }
                if taken >= MAX_PENDING {
                    break;
                }
            }
            self.write_due(&mut laters, Instant::now());
            // Whoever waits for the lines so far waits for the count of those dropped too.
            self.report(!flushed.is_empty() && (inline || notices.ready()));
            // Dropping each wish's sender answers it.
            drop(flushed);
            // Gather for a millisecond before looking again. A busy server's lines then cost a
            // small copy each, and one write and one wake-up of this thread a millisecond
            // between them all; waking the writer for every line (or line or two) cost up to
            // twice the floor's CPU per datagram (measured). A line after a quiet spell never
            // waits: it finds the writer waiting in `recv`, and wakes it.
            thread::sleep(GATHER);
        }
        // The last lines are made now: nothing will be written later.
        self.write_due(&mut laters, Instant::now() + Duration::from_secs(3600));
        self.output.abandon();
        self.report(true);
    }

    /// Makes the lines due by `now`, and writes them, after what the batch held.
    fn write_due(&mut self, laters: &mut Vec<Later>, now: Instant) {
        while let Some(due) = laters.iter().position(|(at, _)| *at <= now) {
            let line = (laters.remove(due).1)();
            self.output.push(format!("{line}\n").as_bytes());
        }
        self.output.finish();
    }

    /// Says what was dropped or lost, if `now`: in the stream itself, kept for another try if
    /// the stream does not take it; or, for standard output, on stderr.
    fn report(&mut self, now: bool) {
        self.output.unreported.dropped += self.counts.dropped.swap(0, Ordering::Relaxed);
        if self.output.unreported.is_empty() || !now {
            return;
        }
        let kept = std::mem::take(&mut self.output.unreported);
        let notice = kept.notice(self.notices.is_some());
        if let Some(notices) = &self.notices {
            return notices.line(format_args!("{}", notice.trim_end()));
        }
        self.output.push(notice.as_bytes());
        if !self.output.finish() {
            self.output.unreported = kept;
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::sync::Condvar;
    use std::time::Instant;

    /// A sink that blocks every write until told to go on, like a pipe nobody reads, and
    /// keeps what it was given.
    #[derive(Clone)]
    pub(crate) struct Stuck {
        open: Arc<(Mutex<bool>, Condvar)>,
        written: Arc<Mutex<Vec<u8>>>,
    }

    impl Stuck {
        pub(crate) fn new() -> Self {
            Stuck {
                open: Arc::new((Mutex::new(false), Condvar::new())),
                written: Arc::default(),
            }
        }

        pub(crate) fn unstick(&self) {
            *self.open.0.lock().unwrap() = true;
            self.open.1.notify_all();
        }

        pub(crate) fn text(&self) -> String {
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
        // 200,000 lines into a stream that takes nothing: none waited.
        assert!(started.elapsed() < Duration::from_secs(5));
        stuck.unstick();
        drop(log);
        let text = stuck.text();
        let kept = text.lines().filter(|l| l.starts_with("Received")).count();
        // One notice per batch that followed drops: one or two, depending on whether the writer
        // first ran before or after the queue filled.
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
        // What was held is bounded: a MiB of lines queued, and the chunk the writer was stuck on.
        let held: usize = text
            .lines()
            .filter(|l| l.starts_with("Received"))
            .map(|l| l.len() + 1)
            .sum();
        assert!(
            held <= MAX_PENDING + output::ATOMIC_WRITE,
            "{held} bytes held"
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

    /// A sink that takes `pause` over every write, and tells when it was given what. It waits
    /// without sleeping, since a sleep takes a millisecond or more on some systems.
    pub(crate) struct Slow {
        pause: Duration,
        tap: mpsc::Sender<(Instant, Vec<u8>)>,
    }

    impl Write for Slow {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let started = Instant::now();
            while started.elapsed() < self.pause {
                std::hint::spin_loop();
            }
            let _ = self.tap.send((Instant::now(), buf.to_vec()));
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    pub(crate) fn slow(pause: Duration) -> (Slow, mpsc::Receiver<(Instant, Vec<u8>)>) {
        let (tap, rx) = mpsc::channel();
        (Slow { pause, tap }, rx)
    }

    /// After a burst that overflowed the queue, the count of dropped lines comes within about
    /// a second though no line follows it.
    #[test]
    fn a_burst_is_counted_without_a_line_after_it() {
        let (sink, rx) = slow(Duration::from_millis(1));
        let log = Log::to_writer(sink);
        for i in 0..100_000 {
            log.line(format_args!("Received from 127.0.0.1:{i}."));
        }
        let burst_over = Instant::now();
        let mut writes = std::iter::from_fn(|| rx.recv_timeout(Duration::from_secs(5)).ok());
        let notice = writes.find(|(_, bytes)| String::from_utf8_lossy(bytes).contains("dropped"));
        let waited = notice.expect("a notice within 5 s").0 - burst_over;
        assert!(waited < Duration::from_millis(1500), "{waited:?}");
    }

    /// A producer that never pauses keeps neither a flush waiting its two seconds nor the count
    /// of what it dropped back for the whole load.
    #[test]
    fn a_producer_that_never_pauses_keeps_no_flush_waiting() {
        let (sink, rx) = slow(Duration::from_micros(500));
        let log = Log::to_writer(sink);
        let producing = log.clone();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        let producer = thread::spawn(move || {
            while !stopping.load(Ordering::Relaxed) {
                producing.line(format_args!("a line that keeps coming"));
            }
        });
        thread::sleep(Duration::from_millis(300));
        let started = Instant::now();
        log.flush();
        let took = started.elapsed();
        stop.store(true, Ordering::Relaxed);
        producer.join().expect("the producer should not panic");
        assert!(took < Duration::from_millis(1000), "flush took {took:?}");
        let notice = rx
            .try_iter()
            .any(|(_, b)| String::from_utf8_lossy(&b).contains("dropped"));
        assert!(notice, "no count of the lines dropped under the load");
    }

    /// A log whose notices go to another log (stdout's go to stderr) says what it dropped at
    /// most once a second there, whatever asks it to flush.
    #[test]
    fn notices_on_another_log_come_at_most_once_a_second() {
        let (tx, notices) = mpsc::channel();
        let (sink, _written) = slow(Duration::from_millis(2));
        let log = Log::new(Box::new(sink), Some(Log::to_writer(Tap(tx))));
        let started = Instant::now();
        while started.elapsed() < Duration::from_millis(2500) {
            for i in 0..20_000 {
                log.line(format_args!("Received from 127.0.0.1:{i}."));
            }
            log.flush();
        }
        notices
            .recv_timeout(Duration::from_secs(5))
            .expect("a notice");
        drop(log);
        let more = notices.try_iter().count();
        assert!(more <= 3, "{} notices in 2.5 s", more + 1);
    }

    /// What the budget counts is what a line costs, not only its bytes: a million empty lines
    /// into a stream that takes nothing hold a bounded few.
    #[test]
    fn empty_lines_cost_their_keep() {
        let stuck = Stuck::new();
        let log = Log::to_writer(stuck.clone());
        for _ in 0..1_000_000 {
            log.line(format_args!(""));
        }
        stuck.unstick();
        drop(log);
        let kept = stuck.text().lines().filter(|line| line.is_empty()).count();
        assert!(
            kept <= MAX_PENDING / 64 + output::ATOMIC_WRITE,
            "{kept} empty lines held"
        );
    }

    /// A line over the whole budget is dropped, and counted, also when it is the first.
    #[test]
    fn a_first_line_over_the_budget_is_counted() {
        let (tx, rx) = mpsc::channel();
        let log = Log::to_writer(Tap(tx));
        log.line(format_args!("{}", "x".repeat(2 * MAX_PENDING)));
        log.flush();
        let written: Vec<u8> = rx.try_iter().flatten().collect();
        let text = String::from_utf8(written).expect("text");
        assert_eq!(text, "1 line dropped: this output is not keeping up\n");
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
