//! The TCP server: a bound listener, its settings, and the accept loop of the original's
//! `while True: sock, addr = s.accept()`, which admits each connection (or turns it away) and
//! hands it over to a thread of its own.

use std::io;
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use super::admission::{Admission, Job};
use super::connection::Settings;
use super::fdlimit::Budget;
use crate::addr::first_that_works;
use crate::log::Log;
use crate::protocol::{ServerId, WELCOME};
use crate::report::RateLimited;
use crate::stop::{Poke, StopHandle};

/// The stack each connection thread gets. The handler's frames are small and its buffers live on
/// the heap, so a small stack lets thousands of idle connections fit in little memory.
const CONNECTION_STACK_SIZE: usize = 64 * 1024;

/// A TCP greeting server: a bound listener, ready to [`run`](TcpServer::run).
#[derive(Debug)]
pub struct TcpServer {
    listener: TcpListener,
    stop: StopHandle,
    settings: Settings,
    max_connections: usize,
    /// How the descriptors are shared out, once reckoned (and the table grown for them).
    budget: Option<Budget>,
}

impl TcpServer {
    /// The limit on live connections unless [`max_connections`](TcpServer::max_connections)
    /// sets another.
    pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;

    /// How long a connection may stay idle unless [`idle_timeout`](TcpServer::idle_timeout) sets
    /// another.
    pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(300);

    /// Binds a TCP listener to `addr`, trying each address it resolves to in turn, IPv4 first
    /// (so `localhost` means 127.0.0.1 wherever the resolver puts `::1` first).
    ///
    /// The server starts with the defaults: no delay, a 5-minute idle timeout, at most 1,024 live
    /// connections, a quiet log, and reports on stderr.
    pub fn bind(addr: impl ToSocketAddrs) -> io::Result<Self> {
        let listener = first_that_works(addr, TcpListener::bind)?;
        Ok(TcpServer {
            stop: StopHandle::new(listener.local_addr()?, Poke::Connect),
            listener,
            settings: Settings {
                delay: Duration::ZERO,
                idle_timeout: Some(Self::DEFAULT_IDLE_TIMEOUT),
                proxy_protocol: false,
                welcome: WELCOME.to_vec(),
                log: Log::quiet(),
                reports: Log::stderr(),
                refusals: RateLimited::new("connections closed without a welcome"),
            },
            max_connections: Self::DEFAULT_MAX_CONNECTIONS,
            budget: None,
        })
    }

    /// Sets the pause before each reply (the original's `time.sleep(1)` is `1s`).
    #[must_use]
    pub fn delay(mut self, delay: Duration) -> Self {
        self.settings.delay = delay;
        self
    }

    /// Sets how long a connection may stay idle; `None` for no limit.
    #[must_use]
    pub fn idle_timeout(mut self, idle_timeout: Option<Duration>) -> Self {
        self.settings.idle_timeout = idle_timeout;
        self
    }

    /// Sets whether every connection must begin with a PROXY protocol header (version 1 or 2)
    /// from a load balancer, whose client then stands for the connection in the log lines.
    ///
    /// A connection that does not send a valid header within 3 s is closed without a word.
    /// Only a balancer may reach such a server: anyone who can connect to it can claim any
    /// address. The server never looks for a header unless told to.
    #[must_use]
    pub fn proxy_protocol(mut self, proxy_protocol: bool) -> Self {
        self.settings.proxy_protocol = proxy_protocol;
        self
    }

    /// Gives the server an id, which it says before its welcome (`[s1] Welcome!`), so that a
    /// client behind a load balancer can tell which server it reached. Without one (`None`, the
    /// default) the welcome is the original's.
    #[must_use]
    pub fn id(mut self, id: Option<&ServerId>) -> Self {
        self.settings.welcome = id.map_or(WELCOME.to_vec(), |id| id.tag(WELCOME));
        self
    }

    /// Sets how many connections may be live at once; further ones are turned away.
    ///
    /// Where the process's open-file limit would not leave a descriptor for each, `run` lowers
    /// it and says so on the reports log.
    #[must_use]
    pub fn max_connections(mut self, max_connections: usize) -> Self {
        self.max_connections = max_connections;
        self
    }

    /// Sets where the per-connection lines (`Accept new connection from …`) go.
    #[must_use]
    pub fn log(mut self, log: Log) -> Self {
        self.settings.log = log;
        self
    }

    /// Sets where the server reports failures and refusals (`IP:PORT: idle for 5m, closed`);
    /// the shared [`Log::stderr`] unless set.
    #[must_use]
    pub fn reports(mut self, reports: Log) -> Self {
        self.settings.reports = reports;
        self
    }

    /// Returns the address actually bound; bind port 0 and ask here for the port the OS picked.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Returns a handle that stops [`run`](TcpServer::run) from another thread.
    pub fn stop_handle(&self) -> StopHandle {
        self.stop.clone()
    }

    /// Reckons how many connections the process's open-file limit leaves room for, counting the
    /// descriptors it holds already, and makes room in its descriptor table for them, now (both
    /// where the platform shows the limit, Linux; elsewhere it only takes the connection limit).
    ///
    /// Linux grows a descriptor table by doubling, and once threads share the table each growth
    /// waits for an RCU grace period, milliseconds in which nothing is accepted: long enough for
    /// a burst of connects to overflow the listen queue (128 deep in std), where connections can
    /// hang unanswered. Growing it once, while the process has one thread, takes that stall out
    /// of serving. [`run`](TcpServer::run) does it first thing if it has not been done; call it
    /// before anything starts a thread (the first line to a [`Log`] starts one), and before
    /// telling clients the server is there, as the `tcp-server` binary does.
    ///
    /// # Errors
    ///
    /// When the open-file limit leaves no room for a single connection: the server would turn
    /// everyone away.
    pub fn reserve_descriptors(&mut self) -> io::Result<()> {
        self.budget().map(drop)
    }

    /// Returns the descriptor budget, reckoning it (and growing the table) the first time.
    fn budget(&mut self) -> io::Result<Budget> {
        if let Some(budget) = self.budget {
            return Ok(budget);
        }
        let budget = Budget::now(self.max_connections)?;
        #[cfg(target_os = "linux")]
        reserve_descriptors(&self.listener, budget.connections + budget.lingering);
        Ok(*self.budget.insert(budget))
    }

    /// Accepts connections until stopped, each served on a thread of its own: the original's
    /// `while True: accept()` loop.
    ///
    /// It does not join the connection threads: each one ends when its client sends the exit
    /// word, hangs up or goes idle, also after `run` has returned. Failures of one connection, of
    /// `accept` or of a thread spawn are reported and never end the loop.
    ///
    /// # Errors
    ///
    /// When the open-file limit leaves no room for a single connection (see
    /// [`reserve_descriptors`](TcpServer::reserve_descriptors)), or no thread can be started.
    pub fn run(mut self) -> io::Result<()> {
        let budget = self.budget()?;
        let settings = Arc::new(self.settings);
        let mut admission = Admission::start(budget, self.max_connections, &settings);
        let (handoff, spawner) = start_spawner(&settings)?;
        loop {
            let accepted = self.listener.accept(); // sock, addr = s.accept()
            if self.stop.is_stopped() {
                break;
            }
            let job = admission.admit(accepted, &self.listener);
            // threading.Thread(target=tcplink, args=(sock, addr)).start(), by the spawner
            if job.is_some_and(|job| handoff.send(job).is_err()) {
                break;
            }
        }
        drop(handoff);
        let spawned = spawner.join();
        settings.log.flush();
        settings.reports.flush();
        spawned.map_err(|_| io::Error::other("the connection spawner panicked"))
    }
}

/// Opens throwaway descriptors for `connections` and some headroom and closes them again, so
/// that the table has room for them ([`TcpServer::reserve_descriptors`] says why). The table
/// never shrinks, and this stops at the first failure (the open-file limit). Other systems grow
/// their tables differently, and there this would only slow the start down.
#[cfg(target_os = "linux")]
fn reserve_descriptors(listener: &TcpListener, connections: usize) {
    // The listener, stdio, the logs, a stop poke, connections being turned away.
    const HEADROOM: usize = 64;
    // The table costs 8 bytes a descriptor; past a million, the limit is elsewhere.
    const MOST: usize = 1 << 20;
    let wanted = connections.saturating_add(HEADROOM).min(MOST);
    let throwaway = (0..wanted).map_while(|_| listener.try_clone().ok());
    drop(throwaway.collect::<Vec<_>>());
}

/// Starts the thread that gives each admitted connection a thread of its own, and each
/// turned-away one a short-lived thread for its lingering close; returns where to hand them.
///
/// Spawning a thread costs far more than accepting. Handing the spawn to this helper keeps the
/// accept loop fast enough to drain the kernel's queue (128 deep in std) during a burst of
/// connects; a connection waits in our queue instead, already established. The queue never
/// makes the accept loop wait: what it holds is bounded by the connection limit and the
/// lingering budget, since each connection in it has taken its slot already.
fn start_spawner(settings: &Arc<Settings>) -> io::Result<(Sender<Job>, JoinHandle<()>)> {
    let (handoff, jobs) = mpsc::channel();
    let settings = Arc::clone(settings);
    let spawner = thread::Builder::new()
        .name("spawner".into())
        .spawn(move || spawn_threads(jobs, &settings))?;
    Ok((handoff, spawner))
}

/// Starts a thread for each job that comes through `jobs`, until the accept loop hangs up; a
/// failed spawn drops that connection, and for one to be served is reported.
fn spawn_threads(jobs: Receiver<Job>, settings: &Arc<Settings>) {
    let failures = RateLimited::new("connections that got no thread");
    for job in jobs {
        // A turned-away connection whose thread does not start is closed at once, unreported.
        let peer = match &job {
            Job::Serve(admitted) => Some(admitted.peer),
            Job::Linger(..) => None,
        };
        let its_settings = Arc::clone(settings);
        let thread = thread::Builder::new().stack_size(CONNECTION_STACK_SIZE);
        let spawned = thread.spawn(move || job.run(&its_settings));
        if let (Err(err), Some(peer)) = (spawned, peer) {
            let why = format!("cannot start a thread: {err}");
            failures.report(&settings.reports, format_args!("{peer}: {why}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tcp::admission::{Admitted, Slot};
    use std::io::{Read, Write};
    use std::net::TcpStream;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    const TIMEOUT: Duration = Duration::from_secs(5);

    #[test]
    fn each_connection_handed_over_gets_a_thread_of_its_own() -> io::Result<()> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let server = TcpServer::bind("127.0.0.1:0")?.reports(Log::quiet());
        let (handoff, spawner) = start_spawner(&Arc::new(server.settings))?;
        let live = Arc::new(AtomicUsize::new(0));
        let mut clients = Vec::new();
        for _ in 0..3 {
            let client = TcpStream::connect(listener.local_addr()?)?;
            client.set_read_timeout(Some(TIMEOUT))?;
            let (stream, peer) = listener.accept()?;
            let slot = Slot::take(&live, 3).expect("room for three");
            let job = Job::Serve(Admitted { stream, peer, slot });
            assert!(handoff.send(job).is_ok());
            clients.push(client);
        }
        // All three are welcomed before any of them leaves: each has a thread.
        for client in &mut clients {
            let mut welcome = [0; 8];
            client.read_exact(&mut welcome)?;
            assert_eq!(&welcome, b"Welcome!");
        }
        for mut client in clients {
            client.write_all(b"exit")?;
            assert_eq!(client.read(&mut [0; 8])?, 0);
        }
        drop(handoff);
        spawner.join().expect("the spawner should not panic");
        let deadline = std::time::Instant::now() + TIMEOUT;
        while live.load(Ordering::Acquire) > 0 && std::time::Instant::now() < deadline {
            thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(
            live.load(Ordering::Acquire),
            0,
            "a slot was never given back"
        );
        Ok(())
    }

    /// The descriptor table's size, from `/proc/self/status`.
    #[cfg(target_os = "linux")]
    fn fd_table_size() -> usize {
        let status = std::fs::read_to_string("/proc/self/status").expect("/proc is there");
        let line = status.lines().find(|l| l.starts_with("FDSize:"));
        let value = line.and_then(|l| l["FDSize:".len()..].trim().parse().ok());
        value.expect("an FDSize line")
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_descriptor_table_is_grown_for_every_connection_up_front() -> io::Result<()> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        // Far below the open-file limit, so that the tests running beside this one never find
        // the process out of descriptors.
        let limit = crate::tcp::fdlimit::open_file_limit()?.unwrap_or(usize::MAX);
        let connections = 3000.min(limit / 4);
        reserve_descriptors(&listener, connections);
        // Descriptors are numbered lowest first: with that many open at once, the table had to
        // hold the highest of them.
        let wanted = connections + 64;
        assert!(fd_table_size() >= wanted, "{} < {wanted}", fd_table_size());
        Ok(())
    }
}
