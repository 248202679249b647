//! Durations as people type them on a command line, `250ms`, `1s`, `5m`, `1h` or a bare number
//! of seconds, and as the library shows them in its messages (`idle for 5m, closed`): one type,
//! [`Dur`], read by the binaries' arguments and written by both.

use std::fmt;
use std::time::Duration;

/// A duration that reads and shows itself the way people type it: `250ms`, `1s`, `5m`, `1h`,
/// or a bare number of seconds. A default shown in `--help` is then the value clap reads back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dur(pub Duration);

impl std::str::FromStr for Dur {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        parse_duration(text).map(Dur)
    }
}

impl Dur {
    /// Returns the duration as a limit: `None`, no limit, for zero and for a duration too large
    /// for the clock to count to (`99999999999999999999`).
    #[cfg(feature = "cli")]
    pub fn as_limit(self) -> Option<std::time::Duration> {
        let reachable = std::time::Instant::now().checked_add(self.0).is_some();
        Some(self.0).filter(|d| !d.is_zero() && reachable)
    }

    /// Parses a duration as [`Dur::from_str`] does, refusing zero: for a timeout, which must
    /// allow some time.
    ///
    /// # Errors
    ///
    /// As [`Dur::from_str`], and a message for zero.
    #[cfg(feature = "cli")]
    pub fn positive(text: &str) -> Result<Dur, String> {
        match parse_duration(text)? {
            d if d.is_zero() => Err(format!("a timeout must be longer than zero, not '{text}'")),
            d => Ok(Dur(d)),
        }
    }
}

/// Parses `250ms`, `1.5s`, `5m`, `1h` or a bare number of seconds such as `30` or `0.25`.
///
/// # Errors
///
/// A message naming the bad value, for clap to show with its usage line.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let in_number = |c: char| c.is_ascii_digit() || c == '.';
    let (number, unit) = text.split_at(text.find(|c| !in_number(c)).unwrap_or(text.len()));
    let scale = match unit.trim() {
        "ms" => 0.001,
        "" | "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        _ => return Err(invalid(text)),
    };
    let number: f64 = number.parse().map_err(|_| invalid(text))?;
    // Only a number too large for a Duration fails here: it means "as long as there is".
    let duration = Duration::try_from_secs_f64(number * scale).unwrap_or(Duration::MAX);
    if duration.is_zero() && number != 0.0 {
        // Zero means "none" for some settings; a typo must not turn into that silently.
        return Err(format!("'{text}' is shorter than a nanosecond"));
    }
    Ok(duration)
}

fn invalid(text: &str) -> String {
    format!("invalid duration '{text}' (try 250ms, 1s, 5m or a number of seconds)")
}

/// Shows a duration the way it is read: `5m`, `1s`, `250ms`.
impl fmt::Display for Dur {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.0;
        match (d.as_secs(), d.subsec_nanos()) {
            (s, 0) if s != 0 && s % 3600 == 0 => write!(f, "{}h", s / 3600),
            (s, 0) if s != 0 && s % 60 == 0 => write!(f, "{}m", s / 60),
            (s, 0) => write!(f, "{s}s"),
            (_, nanos) if nanos % 1_000_000 == 0 => write!(f, "{}ms", d.as_millis()),
            _ => write!(f, "{}s", d.as_secs_f64()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_and_bare_seconds_parse() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1s"), Ok(Duration::from_secs(1)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
    }

    #[test]
    fn garbage_is_rejected_with_the_value() {
        for bad in [
            "",
            "ms",
            "-1s",
            "1x",
            "abc",
            "1e999",
            "1..2s",
            "5 minutes",
            "1ns",
        ] {
            let err = parse_duration(bad).unwrap_err();
            assert!(err.contains(bad.trim()), "{err}");
        }
    }

    #[test]
    fn a_nonzero_value_never_rounds_to_zero() {
        assert!(
            parse_duration("0.0000000001")
                .unwrap_err()
                .contains("nanosecond")
        );
        assert!(parse_duration("0.0000001ms").is_err());
        assert_eq!(parse_duration("0.000000001"), Ok(Duration::from_nanos(1)));
        assert_eq!(parse_duration("0.0"), Ok(Duration::ZERO));
    }

    #[cfg(feature = "cli")]
    #[test]
    fn timeouts_must_be_positive() {
        assert_eq!(Dur::positive("1ms"), Ok(Dur(Duration::from_millis(1))));
        assert!(Dur::positive("0").unwrap_err().contains("'0'"));
        assert!(Dur::positive("0ms").is_err());
    }

    #[test]
    fn a_value_too_large_for_the_clock_is_the_longest() {
        let huge = "99999999999999999999".parse::<Dur>().unwrap();
        assert_eq!(huge, Dur(Duration::MAX));
        assert_eq!("9".repeat(400).parse::<Dur>().unwrap(), Dur(Duration::MAX));
    }

    #[cfg(feature = "cli")]
    #[test]
    fn zero_and_the_unreachable_are_no_limit() {
        assert_eq!(Dur(Duration::ZERO).as_limit(), None);
        assert_eq!(Dur(Duration::MAX).as_limit(), None);
        let five = Duration::from_secs(300);
        assert_eq!(Dur(five).as_limit(), Some(five));
    }

    #[test]
    fn human_round_trips() {
        for text in ["5m", "1s", "250ms", "0s", "2h", "90s"] {
            assert_eq!(text.parse::<Dur>().unwrap().to_string(), text);
        }
        // Below a millisecond, in seconds: no unit would show it whole.
        assert_eq!(Dur(Duration::from_micros(1500)).to_string(), "0.0015s");
    }
}
