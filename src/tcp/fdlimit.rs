//! Living within the process's limit on open files. Most Linux distributions start a process
//! with a soft limit of 1,024 descriptors, macOS with 256: without care, `accept` starts failing
//! with EMFILE before `--max-connections` is reached, and the clients past that point hang with
//! no answer at all. Two remedies, both std only: a budget that shares out what the open-file
//! limit leaves, where the platform shows it (live connections, turned-away ones still being
//! closed, what the server itself needs, what the process already holds); and one descriptor
//! kept in reserve, so that a connection that arrives when none is left all the same can still
//! be accepted, told `busy` and closed (the trick libuv and others use).

use std::fs::File;
use std::io;

use crate::socket::is_out_of_descriptors;

/// Descriptors the server needs while it serves, besides its connections: the spare, and a
/// connection accepted but not yet let in or turned away.
const WORKING: usize = 2;

/// The most turned-away connections that are closed gracefully at once; past that, a turned-away
/// connection is closed at once.
const MAX_LINGERING: usize = 64;

/// How the descriptors the open-file limit leaves are shared out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Budget {
    /// How many connections may be live at once.
    pub(crate) connections: usize,
    /// How many turned-away connections may be closed gracefully at once.
    pub(crate) lingering: usize,
    /// The open-file limit, when it is why `connections` is below what was wanted.
    pub(crate) lowered_by: Option<usize>,
}

impl Budget {
    /// Shares out what the open-file `limit` leaves once the `open` descriptors the process
    /// holds and what the server needs are counted: `wanted` connections, or fewer, and about an
    /// eighth of the rest (at least one, at most 64) for turned-away connections being closed.
    /// With no limit to go by, `wanted` connections and 64.
    ///
    /// # Errors
    ///
    /// When the limit leaves room for no connection and no turned-away one beside it.
    pub(crate) fn new(wanted: usize, limit: Option<usize>, open: usize) -> io::Result<Self> {
        // No limit is one too large to lower anything.
        let limit = limit.unwrap_or(usize::MAX);
        let free = limit.saturating_sub(open + WORKING);
        if free < 2 {
            return Err(io::Error::other(format!(
                "the open-file limit ({limit}) leaves no descriptor for a connection, with {open} \
                 open already; raise it with ulimit -n"
            )));
        }
        let connections = wanted.min(free - (free / 8).clamp(1, MAX_LINGERING));
        Ok(Budget {
            connections,
            lingering: (free - connections).min(MAX_LINGERING),
            lowered_by: Some(limit).filter(|_| connections < wanted),
        })
    }

    /// Shares out the process's descriptors as [`Budget::new`] does, reading its limit and
    /// counting what it holds where the platform shows them.
    ///
    /// # Errors
    ///
    /// As [`Budget::new`], and when not even the limit can be read for want of a descriptor.
    pub(crate) fn now(wanted: usize) -> io::Result<Self> {
        let limit = open_file_limit().map_err(|err| {
            io::Error::other(format!(
                "the open-file limit leaves no descriptor for a connection, not even one to read \
                 the limit with ({err}); raise it with ulimit -n"
            ))
        })?;
        Self::new(wanted, limit, open_descriptors())
    }
}

/// Returns how many descriptors the process holds now (Linux's `/proc/self/fd`, less the one
/// that reads it); 0 where the platform does not show them, where there is no limit to keep to
/// either.
fn open_descriptors() -> usize {
    #[cfg(target_os = "linux")]
    return std::fs::read_dir("/proc/self/fd")
        .map_or(0, |entries| entries.count().saturating_sub(1));
    #[cfg(not(target_os = "linux"))]
    0
}

/// Returns the process's soft limit on open files, where the platform shows it (Linux's
/// `/proc/self/limits`); `None` where it does not, or when there is no limit.
///
/// # Errors
///
/// Out of descriptors, it cannot even be read: that is no room at all, not "no limit known".
pub(crate) fn open_file_limit() -> io::Result<Option<usize>> {
    #[cfg(target_os = "linux")]
    return soft_open_files(std::fs::read_to_string("/proc/self/limits"));
    #[cfg(not(target_os = "linux"))]
    Ok(None)
}

/// Reads the soft "Max open files" value out of `/proc/self/limits` as its read came out: `None`
/// where it has none or could not be read, an error where there was no descriptor to read it with.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
fn soft_open_files(limits: io::Result<String>) -> io::Result<Option<usize>> {
    const FIELD: &str = "Max open files";
    let limits = match limits {
        Err(err) if is_out_of_descriptors(&err) => return Err(err),
        read => read.unwrap_or_default(),
    };
    let line = limits.lines().find_map(|line| line.strip_prefix(FIELD));
    Ok(line.and_then(|line| line.split_whitespace().next()?.parse().ok()))
}

/// Takes a descriptor to hold in reserve, if one can be had: given up, it lets `accept` take one
/// more connection when the process has no descriptor left. (Windows sockets have no such
/// limit, and no `/dev/null`: there it is never held.)
pub(crate) fn spare() -> Option<File> {
    File::open("/dev/null").ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: &str = "\
Limit                     Soft Limit           Hard Limit           Units
Max processes             127431               127431               processes
Max open files            1024                 524288               files
Max locked memory         8388608              8388608              bytes
";

    #[test]
    fn the_soft_open_file_limit_is_read() {
        let read = |text: &str| soft_open_files(Ok(text.to_string())).unwrap();
        assert_eq!(read(LIMITS), Some(1024));
        let unlimited = LIMITS.replace("1024                 524288", "unlimited  unlimited");
        assert_eq!(read(&unlimited), None);
        assert_eq!(read("garbage"), None);
        // A limit that cannot be read is none known, unless it is for want of a descriptor.
        let missing = io::Error::from(io::ErrorKind::NotFound);
        assert_eq!(soft_open_files(Err(missing)).unwrap(), None);
        #[cfg(unix)]
        assert!(soft_open_files(Err(io::Error::from_raw_os_error(24))).is_err());
    }

    /// The process's own limit and descriptors, as Linux shows them: a limit, and at least the
    /// files this test holds open.
    #[cfg(target_os = "linux")]
    #[test]
    fn this_process_limit_and_descriptors_are_read() -> io::Result<()> {
        let held: Vec<File> = (0..5).map(|_| spare()).collect::<Option<_>>().unwrap();
        assert!(open_descriptors() >= held.len());
        let limit = open_file_limit()?.expect("Linux shows the limit");
        assert!(limit >= held.len(), "{limit}");
        Ok(())
    }

    #[test]
    fn the_budget_shares_out_what_the_limit_leaves() {
        let budget = |wanted, limit, open| Budget::new(wanted, limit, open).ok();
        // The stock limit, with stdio and the listener open: 1,018 free.
        let stock = budget(1024, Some(1024), 4).unwrap();
        assert_eq!((stock.connections, stock.lingering), (954, 64));
        assert_eq!(stock.lowered_by, Some(1024));
        // Inherited descriptors count too.
        assert_eq!(budget(1024, Some(1024), 44).unwrap().connections, 914);
        // Few wanted: all of them, and the most lingering.
        let few = budget(2, Some(1024), 4).unwrap();
        assert_eq!(
            (few.connections, few.lingering, few.lowered_by),
            (2, 64, None)
        );
        // A tiny limit: what fits, never less than one of each.
        let tiny = budget(1024, Some(32), 4).unwrap();
        assert_eq!((tiny.connections, tiny.lingering), (23, 3));
        let least = budget(1024, Some(8), 4).unwrap();
        assert_eq!((least.connections, least.lingering), (1, 1));
        assert_eq!(budget(1024, Some(7), 4), None);
        assert_eq!(budget(1024, Some(5), 4), None);
        // No limit to go by.
        let unlimited = budget(1024, None, 0).unwrap();
        assert_eq!((unlimited.connections, unlimited.lingering), (1024, 64));
    }

    #[test]
    fn every_budget_fits_its_limit() {
        for limit in 0..300 {
            for open in 0..10 {
                for wanted in [1, 2, 10, 1024] {
                    let Ok(budget) = Budget::new(wanted, Some(limit), open) else {
                        assert!(limit < open + WORKING + 2, "{limit} {open} refused");
                        continue;
                    };
                    let used = open + WORKING + budget.connections + budget.lingering;
                    assert!(used <= limit, "{budget:?} over {limit} with {open} open");
                    assert!(budget.connections >= 1 && budget.lingering >= 1);
                    assert!(budget.connections <= wanted);
                }
            }
        }
    }
}
