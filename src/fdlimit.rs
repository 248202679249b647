//! Living within the process's limit on open files. Most Linux distributions start a process
//! with a soft limit of 1,024 descriptors, macOS with 256: without care, `accept` starts failing
//! with EMFILE before `--max-connections` is reached, and the clients past that point hang with
//! no answer at all. Two remedies, both std only: clamp the connection limit to what the open-file
//! limit allows, where the platform shows it; and keep one descriptor in reserve, so that a
//! connection that arrives when none is left can still be accepted, told `busy` and closed (the
//! trick libuv and others use).

use std::fs::File;
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};

/// Descriptors kept out of the connection budget: standard streams, the listener, the spare,
/// and room for a few connections being turned away.
const RESERVED: usize = 16;

/// Returns the process's soft limit on open files, where the platform shows it (Linux's
/// `/proc/self/limits`); `None` where it does not, or when there is no limit.
pub(crate) fn open_file_limit() -> Option<usize> {
    #[cfg(target_os = "linux")]
    return std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|limits| soft_open_files(&limits));
    #[cfg(not(target_os = "linux"))]
    None
}

/// Reads the soft "Max open files" value out of the text of `/proc/self/limits`.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
fn soft_open_files(limits: &str) -> Option<usize> {
    let line = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Returns how many connections may be live at once: `wanted`, or fewer when the open-file
/// `limit` would not leave room for them.
pub(crate) fn connections_allowed(wanted: usize, limit: Option<usize>) -> usize {
    match limit {
        Some(limit) => wanted.min(limit.saturating_sub(RESERVED).max(1)),
        None => wanted,
    }
}

/// Returns true when `err` says the process or the system is out of descriptors (EMFILE or
/// ENFILE, 24 and 23 on Linux, macOS and the BSDs alike). Windows sockets have no such limit.
pub(crate) fn is_out_of_descriptors(err: &io::Error) -> bool {
    cfg!(unix) && matches!(err.raw_os_error(), Some(23 | 24))
}

/// One descriptor held in reserve for accepting a connection when the process has none left.
#[derive(Debug)]
pub(crate) struct Spare(Option<File>);

impl Spare {
    /// Takes a descriptor to hold in reserve, if one can be had.
    pub(crate) fn new() -> Self {
        let mut spare = Spare(None);
        spare.refill();
        spare
    }

    /// Takes a descriptor again if the reserve is empty; it stays empty while none is free.
    pub(crate) fn refill(&mut self) {
        if self.0.is_none() {
            self.0 = File::open(NULL_DEVICE).ok();
        }
    }

    /// Returns true while a descriptor is held in reserve.
    pub(crate) fn is_held(&self) -> bool {
        self.0.is_some()
    }

    /// Gives up the reserve descriptor so that `accept` can succeed once more; take it back
    /// with [`Spare::refill`] once the accepted connection is closed.
    pub(crate) fn accept(&mut self, listener: &TcpListener) -> io::Result<(TcpStream, SocketAddr)> {
        self.0 = None;
        listener.accept()
    }
}

#[cfg(windows)]
const NULL_DEVICE: &str = "NUL";
#[cfg(not(windows))]
const NULL_DEVICE: &str = "/dev/null";

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
        assert_eq!(soft_open_files(LIMITS), Some(1024));
        let unlimited = LIMITS.replace("1024                 524288", "unlimited  unlimited");
        assert_eq!(soft_open_files(&unlimited), None);
        assert_eq!(soft_open_files("garbage"), None);
    }

    #[test]
    fn connections_fit_within_the_open_file_limit() {
        assert_eq!(connections_allowed(1024, Some(1024)), 1024 - RESERVED);
        assert_eq!(connections_allowed(1024, Some(20_000)), 1024);
        assert_eq!(connections_allowed(1024, None), 1024);
        assert_eq!(connections_allowed(1024, Some(4)), 1);
    }

    #[test]
    fn only_emfile_and_enfile_mean_out_of_descriptors() {
        let emfile = io::Error::from_raw_os_error(24);
        assert_eq!(is_out_of_descriptors(&emfile), cfg!(unix));
        assert!(!is_out_of_descriptors(
            &io::ErrorKind::ConnectionAborted.into()
        ));
    }

    #[test]
    fn the_spare_is_given_up_for_one_accept_and_taken_back() -> io::Result<()> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let _client = TcpStream::connect(listener.local_addr()?)?;
        let mut spare = Spare::new();
        assert!(spare.is_held());
        assert!(spare.accept(&listener)?.1.ip().is_loopback());
        assert!(!spare.is_held());
        spare.refill();
        assert!(spare.is_held());
        Ok(())
    }
}
