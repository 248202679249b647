//! The pause after a failed `accept` or `recv_from`, so an error that repeats at once (out of file
//! descriptors, say) costs a few wake-ups a second instead of a busy loop.

use std::time::Duration;

const FIRST: Duration = Duration::from_millis(1);
const LONGEST: Duration = Duration::from_millis(100);

/// A pause that doubles with each failure in a row, from 1 ms up to 100 ms.
#[derive(Debug, Default)]
pub(crate) struct Backoff {
    next: Option<Duration>,
}

impl Backoff {
    /// Returns how long to pause after one more failure.
    pub(crate) fn next_pause(&mut self) -> Duration {
        let pause = self.next.unwrap_or(FIRST);
        self.next = Some((pause * 2).min(LONGEST));
        pause
    }

    /// Starts again from the shortest pause, after a success.
    pub(crate) fn reset(&mut self) {
        self.next = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_double_up_to_a_ceiling_and_reset() {
        let mut backoff = Backoff::default();
        let pauses: Vec<u128> = (0..9).map(|_| backoff.next_pause().as_millis()).collect();
        assert_eq!(pauses, [1, 2, 4, 8, 16, 32, 64, 100, 100]);
        backoff.reset();
        assert_eq!(backoff.next_pause(), FIRST);
    }
}
