//! What Linux's `/proc` says about a process and the machine: the figures the robustness tests
//! assert on and the benchmark reports. Elsewhere there is no `/proc` and each of these fails;
//! the tests that need them are Linux-only, and so is the benchmark.

use std::io;

/// Reads a number field (`Threads`, `VmRSS`, `VmHWM`, in kB for sizes) of `/proc/<pid>/status`.
pub fn status_field(pid: u32, field: &str) -> io::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|line| {
            let value = line.strip_prefix(field)?.strip_prefix(':')?;
            value.split_whitespace().next()?.parse().ok()
        })
        .ok_or_else(|| io::Error::other(format!("no {field} in /proc/{pid}/status")))
}

/// Counts the open file descriptors of a process.
pub fn fd_count(pid: u32) -> io::Result<usize> {
    Ok(std::fs::read_dir(format!("/proc/{pid}/fd"))?.count())
}

/// User plus system CPU time of a process, in clock ticks (usually 1/100 s).
pub fn cpu_ticks(pid: u32) -> io::Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let after = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let field = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime are fields 14 and 15 of the whole line: 11 and 12 after the name.
    Ok(field(11) + field(12))
}

/// CPU time of every live thread of a process, in nanoseconds (`/proc/<pid>/task/*/schedstat`):
/// finer than [`cpu_ticks`], for a benchmark's half-second windows.
pub fn cpu_ns(pid: u32) -> io::Result<u64> {
    let mut total = 0;
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))? {
        let path = task?.path().join("schedstat");
        if let Ok(text) = std::fs::read_to_string(path) {
            total += text
                .split_whitespace()
                .next()
                .and_then(|n| n.parse::<u64>().ok())
                .unwrap_or(0);
        }
    }
    Ok(total)
}

/// The soft limit on open files of this process (`/proc/self/limits`); `usize::MAX` for none.
pub fn open_file_limit() -> io::Result<usize> {
    let limits = std::fs::read_to_string("/proc/self/limits")?;
    let line = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))
        .ok_or_else(|| io::Error::other("no open-file limit in /proc/self/limits"))?;
    let soft = line["Max open files".len()..].split_whitespace().next();
    Ok(soft.and_then(|n| n.parse().ok()).unwrap_or(usize::MAX))
}

/// The kernel's count of connections dropped because a listen queue was full, for all listeners
/// on the machine (`/proc/net/netstat`); 0 where it cannot be read.
pub fn listen_overflows() -> u64 {
    let Ok(text) = std::fs::read_to_string("/proc/net/netstat") else {
        return 0;
    };
    let mut lines = text.lines();
    while let (Some(names), Some(values)) = (lines.next(), lines.next()) {
        if !names.starts_with("TcpExt:") {
            continue;
        }
        let pairs = names.split_whitespace().zip(values.split_whitespace());
        for (name, value) in pairs {
            if name == "ListenOverflows" {
                return value.parse().unwrap_or(0);
            }
        }
    }
    0
}

/// Lowers the open-file limit of the running process `pid` to `limit` with `prlimit`; returns
/// false, and says that the test skips, where that cannot be done.
pub fn lower_file_limit(pid: u32, limit: usize) -> bool {
    let lowered = std::process::Command::new("prlimit")
        .args(["--pid", &pid.to_string(), &format!("--nofile={limit}:")])
        .status();
    let done = lowered.is_ok_and(|status| status.success());
    if !done {
        super::skip("cannot lower the server's open-file limit (needs prlimit)");
    }
    done
}
