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
use std::thread;
use std::time::Duration;

/// The most bytes one write may hold and still reach a pipe in one piece: POSIX's `PIPE_BUF`,
/// 4,096 on Linux and at least 512 everywhere.
#[cfg(target_os = "linux")]
pub(super) const ATOMIC_WRITE: usize = 4096;
#[cfg(not(target_os = "linux"))]
pub(super) const ATOMIC_WRITE: usize = 512;

/// The longest pause between two tries of a stream that would block.
const LONGEST_WAIT: Duration = Duration::from_millis(50);

/// A log's stream, and the rest of a line that could not be written yet.
pub(super) struct Output {
    sink: Box<dyn Write + Send>,
    carry: Vec<u8>,
}

/// What a batch lost: how many lines, and why.
#[derive(Debug)]
pub(super) struct Lost {
    pub(super) lines: u64,
    pub(super) error: io::Error,
}

impl Output {
    pub(super) fn new(sink: Box<dyn Write + Send>) -> Self {
        Output {
            sink,
            carry: Vec::new(),
        }
    }

    /// Writes `batch`, whole lines each ending in `\n`, after the rest of a line carried from
    /// before, in chunks of whole lines of at most [`ATOMIC_WRITE`] bytes (a longer line goes
    /// alone). Returns what was lost, if a write failed.
    pub(super) fn write(&mut self, batch: &[u8]) -> Option<Lost> {
        if !self.carry.is_empty() {
            let carry = std::mem::take(&mut self.carry);
            if let Err((written, error)) = self.write_chunk(&carry) {
                self.carry = carry[written..].to_vec();
                return Some(Lost {
                    lines: count_lines(batch),
                    error,
                });
            }
        }
        let mut rest = batch;
        while !rest.is_empty() {
            let (chunk, after) = rest.split_at(chunk_len(rest));
            if let Err((written, error)) = self.write_chunk(chunk) {
                let started = &chunk[..written];
                let whole = started
                    .iter()
                    .rposition(|&b| b == b'\n')
                    .map_or(0, |i| i + 1);
                let line_end = chunk[written..]
                    .iter()
                    .position(|&b| b == b'\n')
                    .map_or(chunk.len(), |i| written + i + 1);
                if written > whole {
                    // Half a line is out: the rest of it goes before anything else.
                    self.carry = chunk[written..line_end].to_vec();
                }
                let unstarted = if written > whole { line_end } else { written };
                return Some(Lost {
                    lines: count_lines(&chunk[unstarted..]) + count_lines(after),
                    error,
                });
            }
            rest = after;
        }
        let _ = self.sink.flush();
        None
    }

    /// Writes all of `chunk`, waiting out a stream that would block; on failure, says how much
    /// of it was written.
    fn write_chunk(&mut self, chunk: &[u8]) -> Result<(), (usize, io::Error)> {
        let mut written = 0;
        let mut wait = Duration::from_millis(1);
        while written < chunk.len() {
            match self.sink.write(&chunk[written..]) {
                Ok(0) => return Err((written, ErrorKind::WriteZero.into())),
                Ok(n) => written += n,
                Err(err) if err.kind() == ErrorKind::Interrupted => {}
                Err(err) if err.kind() == ErrorKind::WouldBlock => {
                    thread::sleep(wait);
                    wait = (wait * 2).min(LONGEST_WAIT);
                }
                Err(err) => return Err((written, err)),
            }
        }
        Ok(())
    }
}

/// Returns how long the next chunk of `lines` is: as many whole lines as fit in
/// [`ATOMIC_WRITE`] bytes, or the first line alone if it is longer.
fn chunk_len(lines: &[u8]) -> usize {
    let fits = &lines[..lines.len().min(ATOMIC_WRITE)];
    if fits.len() == lines.len() {
        return lines.len();
    }
    match fits.iter().rposition(|&b| b == b'\n') {
        Some(i) => i + 1,
        None => lines
            .iter()
            .position(|&b| b == b'\n')
            .map_or(lines.len(), |i| i + 1),
    }
}

fn count_lines(bytes: &[u8]) -> u64 {
    bytes.iter().filter(|&&b| b == b'\n').count() as u64
}

/// Lines a log dropped (its buffer was full) or lost (a write failed), not reported yet.
#[derive(Debug, Default)]
pub(super) struct Unreported {
    dropped: u64,
    lost: u64,
    why: Option<String>,
}

impl Unreported {
    pub(super) fn dropped(&mut self, lines: u64) {
        self.dropped += lines;
    }

    pub(super) fn lost(&mut self, lost: Lost) {
        self.lost += lost.lines;
        self.why = Some(lost.error.to_string());
    }

    pub(super) fn is_empty(&self) -> bool {
        self.dropped == 0 && self.lost == 0
    }

    /// The lines that report it all, for standard output's log (reported on stderr) or for a
    /// log that reports in its own stream; empty when there is nothing to report.
    pub(super) fn notice(&self, on_stderr_for_stdout: bool) -> String {
        let (log, stream) = match on_stderr_for_stdout {
            true => ("log ", "standard output"),
            false => ("", "this output"),
        };
        let lines = |n: u64| if n == 1 { "line" } else { "lines" };
        let mut notice = String::new();
        if self.dropped > 0 {
            let (n, lines) = (self.dropped, lines(self.dropped));
            notice.push_str(&format!(
                "{n} {log}{lines} dropped: {stream} is not keeping up\n"
            ));
        }
        if self.lost > 0 {
            let (n, lines) = (self.lost, lines(self.lost));
            let why = self.why.as_deref().unwrap_or("");
            notice.push_str(&format!("{n} {log}{lines} lost: {stream} failed: {why}\n"));
        }
        notice
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::Rng;
    use std::sync::{Arc, Mutex};

    /// A stream that fails as streams do: short writes, "would block", signals, and errors
    /// (a full disk), at random but repeatably; it keeps what it took, and the size of every
    /// write it was offered.
    #[derive(Clone)]
    struct Flaky {
        rng: Arc<Mutex<Rng>>,
        taken: Arc<Mutex<Vec<u8>>>,
        offered: Arc<Mutex<Vec<Vec<u8>>>>,
        healed: Arc<Mutex<bool>>,
    }

    impl Flaky {
        fn new(seed: u64) -> Self {
            Flaky {
                rng: Arc::new(Mutex::new(Rng::new(seed))),
                taken: Arc::default(),
                offered: Arc::default(),
                healed: Arc::default(),
            }
        }
    }

    impl Write for Flaky {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.offered.lock().unwrap().push(buf.to_vec());
            let mut rng = self.rng.lock().unwrap();
            let n = if *self.healed.lock().unwrap() {
                buf.len()
            } else {
                match rng.between(0, 99) {
                    0..=9 => return Err(ErrorKind::WouldBlock.into()),
                    10..=14 => return Err(ErrorKind::Interrupted.into()),
                    15..=24 => return Err(io::Error::other("no space left")),
                    25..=39 => rng.between(1, buf.len()),
                    _ => buf.len(),
                }
            };
            self.taken.lock().unwrap().extend_from_slice(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn chunks_are_whole_lines_that_fit_an_atomic_write() {
        let short = b"a\nbb\n".repeat(ATOMIC_WRITE);
        let first = chunk_len(&short);
        assert!(first <= ATOMIC_WRITE && short[first - 1] == b'\n');
        let long = [vec![b'x'; ATOMIC_WRITE * 2], b"\nyy\n".to_vec()].concat();
        assert_eq!(chunk_len(&long), ATOMIC_WRITE * 2 + 1);
        assert_eq!(chunk_len(b"a\n"), 2);
    }

    #[test]
    fn every_line_arrives_whole_or_is_counted_lost() {
        for seed in 0..200 {
            let mut rng = Rng::new(seed);
            let lines: Vec<Vec<u8>> = (0..rng.between(1, 300))
                .map(|i| {
                    let len = *rng.pick(&[5, 30, 200, ATOMIC_WRITE + 10]);
                    let mut line = format!("line {i} ").into_bytes();
                    line.resize(line.len() + rng.between(0, len), b'.');
                    line.push(b'\n');
                    line
                })
                .collect();
            let flaky = Flaky::new(seed);
            let mut output = Output::new(Box::new(flaky.clone()));
            let mut lost = 0;
            let mut rest = &lines[..];
            while !rest.is_empty() {
                let (batch, after) = rest.split_at(rng.between(1, rest.len()));
                if let Some(gone) = output.write(&batch.concat()) {
                    // Only a real failure loses lines: "would block" and signals are waited out.
                    assert_eq!(gone.error.kind(), ErrorKind::Other, "seed {seed}");
                    lost += gone.lines;
                }
                rest = after;
            }
            // Once the stream takes writes again, a line begun before is finished first.
            *flaky.healed.lock().unwrap() = true;
            assert!(output.write(b"").is_none());
            let taken = flaky.taken.lock().unwrap().clone();
            assert!(
                taken.is_empty() || taken.ends_with(b"\n"),
                "seed {seed}: half a line"
            );
            let mut expected = lines.iter();
            let mut arrived = 0;
            for line in taken.split_inclusive(|&b| b == b'\n') {
                // Each line that arrived is one of the lines, whole, in their order.
                assert!(
                    expected.any(|l| l == line),
                    "seed {seed}: {line:?} is no line"
                );
                arrived += 1;
            }
            assert_eq!(arrived + lost, lines.len() as u64, "seed {seed}");
            for write in flaky.offered.lock().unwrap().iter() {
                let one_line = write.iter().filter(|&&b| b == b'\n').count() <= 1;
                assert!(
                    write.len() <= ATOMIC_WRITE || one_line,
                    "seed {seed}: a long write"
                );
            }
        }
    }

    #[test]
    fn one_line_is_a_line() {
        let mut unreported = Unreported::default();
        unreported.dropped(1);
        unreported.lost(Lost {
            lines: 1,
            error: io::Error::other("disk full"),
        });
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
        unreported.dropped(3);
        unreported.lost(Lost {
            lines: 2,
            error: io::Error::other("disk full"),
        });
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
