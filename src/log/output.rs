//! The writer thread's side of a log: handing batches of lines to the stream so that every line
//! arrives whole, whatever the stream is and whatever else writes to it, and counting what could
//! not be written.
//!
//! - A pipe shared by two writers (`2>&1 | less`) keeps a write whole only up to `PIPE_BUF`
//!   bytes; a longer one may be cut and spliced with the other writer's. Batches go out in
//!   chunks of whole lines no longer than that.
//! - A short write leaves the rest of a line unwritten. It is carried and goes out before
//!   anything else, so no other line is ever glued onto half of one.
//! - A stream left non-blocking by a parent says "would block" when full: that is waited out.
//! - Any other failure (a full disk, a closed stream) loses the lines of that batch; they are
//!   counted, and the count is reported with the dropped ones.

use std::io::{self, ErrorKind, Write};
use std::time::Duration;

/// The most bytes one write may hold and still reach a pipe in one piece: POSIX's `PIPE_BUF`,
/// 4,096 on Linux and at least 512 everywhere.
pub(super) const ATOMIC_WRITE: usize = if cfg!(target_os = "linux") { 4096 } else { 512 };

/// The longest pause between two tries of a stream that would block.
const LONGEST_WAIT: Duration = Duration::from_millis(50);

/// A log's stream: whole lines gathered into chunks that fit one atomic write, the rest of a
/// line a failed write cut, and what was dropped or lost and not yet reported.
pub(super) struct Output {
    sink: Box<dyn Write + Send>,
    /// Whole lines waiting to go out together: at most [`ATOMIC_WRITE`] bytes, or one longer line.
    chunk: Vec<u8>,
    /// The rest of a line a failed write cut short, which goes out before anything else.
    carry: Vec<u8>,
    /// Whether a write of the batch under way failed: the rest of the batch is lost with it.
    failed: bool,
    pub(super) unreported: Unreported,
}

impl Output {
    pub(super) fn new(sink: Box<dyn Write + Send>) -> Self {
        Output {
            sink,
            chunk: Vec::new(),
            carry: Vec::new(),
            failed: false,
            unreported: Unreported::default(),
        }
    }

    /// Adds `line`, which ends in `\n`, to the batch, writing out first the lines gathered if it
    /// would not fit beside them in one atomic write.
    pub(super) fn push(&mut self, line: &[u8]) {
        if !self.chunk.is_empty() && self.chunk.len() + line.len() > ATOMIC_WRITE {
            self.write_chunk();
        }
        self.chunk.extend_from_slice(line);
    }

    /// Writes out the rest of the batch; returns false if a write of it failed, and counts the
    /// lines lost.
    pub(super) fn finish(&mut self) -> bool {
        self.write_chunk();
        let _ = self.sink.flush();
        !std::mem::take(&mut self.failed)
    }

    /// Gives up the rest of a line cut short, at the end, when the stream never took it: that
    /// line is lost too.
    pub(super) fn abandon(&mut self) {
        if !std::mem::take(&mut self.carry).is_empty() {
            let why = "the rest of a line was never taken";
            self.unreported.lost(why.into(), 1);
        }
    }

    fn write_chunk(&mut self) {
        // Once a write of the batch failed, no more are tried.
        if let Some(Err(error)) = (!self.failed).then(|| self.write_carry_and_chunk()) {
            self.failed = true;
            self.unreported.lost(error.to_string(), 0);
        }
        // What is left of the chunk, once a write of the batch failed, is lost.
        let lines = self.chunk.drain(..).filter(|&b| b == b'\n').count();
        self.unreported.lost += lines as u64;
    }

    /// Writes the carried rest of a line, then the chunk. On failure, leaves in the chunk only
    /// the lines not begun, and carries the rest of a line begun.
    fn write_carry_and_chunk(&mut self) -> io::Result<()> {
        let (written, result) = write_fully(&mut self.sink, &self.carry);
        self.carry.drain(..written);
        result?;
        let (written, result) = write_fully(&mut self.sink, &self.chunk);
        let (out, rest) = self.chunk.split_at(written);
        // Half a line is out: the rest of it goes before anything else.
        if out.last().is_some_and(|&b| b != b'\n') {
            let line = rest.split_inclusive(|&b| b == b'\n').next();
            self.carry.extend_from_slice(line.unwrap_or_default());
        }
        // The carry was empty: it now holds just the rest of the line begun.
        self.chunk.drain(..written + self.carry.len());
        result
    }
}

/// Writes all of `bytes`, waiting out a stream that would block; says how much of it was
/// written, all of it unless it failed.
fn write_fully(sink: &mut impl Write, bytes: &[u8]) -> (usize, io::Result<()>) {
    let (mut written, mut wait) = (0, Duration::from_millis(1));
    while written < bytes.len() {
        match sink.write(&bytes[written..]) {
            Ok(0) => return (written, Err(ErrorKind::WriteZero.into())),
            Ok(n) => written += n,
            Err(err) if err.kind() == ErrorKind::Interrupted => {}
            Err(err) if err.kind() == ErrorKind::WouldBlock => {
                std::thread::sleep(wait);
                wait = (wait * 2).min(LONGEST_WAIT);
            }
            Err(err) => return (written, Err(err)),
        }
    }
    (written, Ok(()))
}

/// Lines a log dropped (its queue was full) or lost (a write failed), not reported yet.
#[derive(Debug, Default, Clone)]
pub(super) struct Unreported {
    pub(super) dropped: u64,
    lost: u64,
    why: String,
}

impl Unreported {
    /// Counts `lines` lost, for `why`.
    fn lost(&mut self, why: String, lines: u64) {
        self.lost += lines;
        self.why = why;
    }

    pub(super) fn is_empty(&self) -> bool {
        self.dropped == 0 && self.lost == 0
    }

    /// The lines that report it all, for standard output's log (reported on stderr) or for a
    /// log that reports in its own stream; empty when there is nothing to report.
    pub(super) fn notice(&self, for_stdout: bool) -> String {
        let (log, stream) = match for_stdout {
            true => ("log ", "standard output"),
            false => ("", "this output"),
        };
        // A line for `n` lines and what became of them; none for none.
        let count = |n: u64, what: String| match n {
            0 => String::new(),
            n => format!("{n} {log}line{} {what}\n", if n == 1 { "" } else { "s" }),
        };
        let dropped = count(self.dropped, format!("dropped: {stream} is not keeping up"));
        dropped + &count(self.lost, format!("lost: {stream} failed: {}", self.why))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::collection::vec;
    use proptest::prelude::*;
    use std::sync::{Arc, Mutex};

    /// What one write offered to a [`Flaky`] stream does.
    #[derive(Debug, Clone, Copy)]
    enum Outcome {
        WouldBlock,
        Interrupted,
        /// A real failure, as a full disk's.
        Fails,
        /// Takes that many per cent of what it is offered, at least a byte.
        Short(usize),
        Whole,
    }

    fn outcome() -> impl Strategy<Value = Outcome> {
        prop_oneof![
            1 => Just(Outcome::WouldBlock),
            1 => Just(Outcome::Interrupted),
            2 => Just(Outcome::Fails),
            3 => (10..100usize).prop_map(Outcome::Short),
            6 => Just(Outcome::Whole),
        ]
    }

    /// A stream that fails as streams do, following a script of outcomes, then takes every write
    /// whole; it keeps what it took, and every write it was offered.
    #[derive(Clone, Default)]
    struct Flaky {
        script: Arc<Vec<Outcome>>,
        next: Arc<Mutex<usize>>,
        taken: Arc<Mutex<Vec<u8>>>,
        offered: Arc<Mutex<Vec<Vec<u8>>>>,
        healed: Arc<Mutex<bool>>,
    }

    impl Write for Flaky {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.offered.lock().unwrap().push(buf.to_vec());
            let mut next = self.next.lock().unwrap();
            let healed = *self.healed.lock().unwrap() || *next >= self.script.len();
            let outcome = if healed {
                Outcome::Whole
            } else {
                self.script[*next]
            };
            *next += 1;
            let n = match outcome {
                Outcome::WouldBlock => return Err(ErrorKind::WouldBlock.into()),
                Outcome::Interrupted => return Err(ErrorKind::Interrupted.into()),
                Outcome::Fails => return Err(io::Error::other("no space left")),
                Outcome::Short(percent) => (buf.len() * percent / 100).max(1),
                Outcome::Whole => buf.len(),
            };
            self.taken.lock().unwrap().extend_from_slice(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    proptest! {
        /// Whatever the stream does, each line arrives whole, in order, or is counted lost; no
        /// write holds more than an atomic write's worth unless it is one line.
        #[test]
        fn every_line_arrives_whole_or_is_counted_lost(
            lengths in vec(prop_oneof![0..8usize, 0..300usize, ATOMIC_WRITE - 20..ATOMIC_WRITE + 20], 1..120),
            batches in vec(1..40usize, 1..20),
            script in vec(outcome(), 1..30),
        ) {
            let lines: Vec<Vec<u8>> = lengths
                .iter()
                .enumerate()
                .map(|(i, len)| format!("line {i} {}\n", ".".repeat(*len)).into_bytes())
                .collect();
            let flaky = Flaky { script: Arc::new(script), ..Flaky::default() };
            let mut output = Output::new(Box::new(flaky.clone()));
            let mut rest = &lines[..];
            for size in batches.iter().cycle() {
                if rest.is_empty() {
                    break;
                }
                let (batch, after) = rest.split_at((*size).min(rest.len()));
                batch.iter().for_each(|line| output.push(line));
                output.finish();
                rest = after;
            }
            // Once the stream takes writes again, a line begun before is finished first.
            *flaky.healed.lock().unwrap() = true;
            prop_assert!(output.finish());
            // Only a real failure loses lines: "would block" and signals are waited out.
            let unreported = &output.unreported;
            prop_assert!(unreported.lost == 0 || unreported.why == "no space left");
            let lost = unreported.lost;
            let taken = flaky.taken.lock().unwrap().clone();
            prop_assert!(taken.is_empty() || taken.ends_with(b"\n"), "half a line");
            let mut expected = lines.iter();
            let mut arrived = 0;
            for line in taken.split_inclusive(|&b| b == b'\n') {
                prop_assert!(expected.any(|l| l == line), "{:?} is no line", line.escape_ascii().to_string());
                arrived += 1;
            }
            prop_assert_eq!(arrived + lost, lines.len() as u64);
            for write in flaky.offered.lock().unwrap().iter() {
                let one_line = write.iter().filter(|&&b| b == b'\n').count() <= 1;
                prop_assert!(write.len() <= ATOMIC_WRITE || one_line, "a long write");
            }
        }
    }

    /// A sink that takes part of its first write, then fails every one: a file at its size
    /// limit.
    struct Cut(bool);

    impl Write for Cut {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            match std::mem::replace(&mut self.0, true) {
                false => Ok(buf.len() / 2),
                true => Err(io::Error::other("file too large")),
            }
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// A line cut short whose rest the stream never takes is counted lost at the end, with the
    /// lines after it that the stream refused.
    #[test]
    fn a_line_cut_short_for_good_is_lost_too() {
        let mut output = Output::new(Box::new(Cut(false)));
        output.push(b"half of this line\n");
        output.push(b"and this one\n");
        assert!(!output.finish(), "a write failed");
        assert_eq!(output.unreported.lost, 1, "the line not begun");
        output.abandon();
        assert_eq!(output.unreported.lost, 2, "and the line cut short");
        output.abandon();
        assert_eq!(output.unreported.lost, 2);
    }

    #[test]
    fn one_line_is_a_line() {
        let mut unreported = Unreported {
            dropped: 1,
            ..Unreported::default()
        };
        unreported.lost("disk full".into(), 1);
        assert_eq!(
            unreported.notice(true),
            "1 log line dropped: standard output is not keeping up\n\
             1 log line lost: standard output failed: disk full\n"
        );
    }

    #[test]
    fn the_notices_say_what_was_dropped_and_lost() {
        let mut unreported = Unreported::default();
        assert!(unreported.is_empty());
        unreported.dropped = 3;
        unreported.lost("disk full".into(), 2);
        assert_eq!(
            unreported.notice(false),
            "3 lines dropped: this output is not keeping up\n\
             2 lines lost: this output failed: disk full\n"
        );
        assert_eq!(
            unreported.notice(true),
            "3 log lines dropped: standard output is not keeping up\n\
             2 log lines lost: standard output failed: disk full\n"
        );
    }
}
