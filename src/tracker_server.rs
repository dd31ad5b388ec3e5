//! The built-in tracker behind `minibt tracker [--bind 127.0.0.1:6969]`: HTTP (BEP 3, 7, 23)
//! and UDP (BEP 15) announces on the same port number, any info hash accepted.
//!
//! The CLI calls [`run_tracker`]; tests start a [`TrackerServer`] and drop it to stop it.
//! One thread accepts TCP connections (one short-lived thread per connection), one thread
//! serves UDP; both share the swarm state ([`swarm::Swarms`]) behind a mutex and stop when
//! the server's shutdown channel disconnects.

pub mod http;
pub mod swarm;
pub mod udp;

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, UdpSocket};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, TryRecvError};
use parking_lot::Mutex;

use swarm::Swarms;

/// At most this many HTTP connections are served at once; more are closed at once.
const MAX_CONNECTIONS: usize = 256;
/// How often the accept loop checks for shutdown while idle.
const ACCEPT_POLL: Duration = Duration::from_millis(20);

/// Tracker behaviour knobs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerConfig {
    /// The `interval` told to clients.
    pub interval: Duration,
    /// The `min interval` told to HTTP clients, if any.
    pub min_interval: Option<Duration>,
    /// A peer is forgotten this long after its last announce (normally 2 × interval).
    pub peer_ttl: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig::with_interval(Duration::from_secs(120))
    }
}

impl ServerConfig {
    /// `interval` as given, peers expire after twice that.
    pub fn with_interval(interval: Duration) -> ServerConfig {
        ServerConfig {
            interval,
            min_interval: None,
            peer_ttl: interval * 2,
        }
    }
}

/// A running tracker. Dropping it stops both front ends (within ~100 ms).
pub struct TrackerServer {
    local_addr: SocketAddr,
    shutdown: Option<Sender<()>>,
    threads: Vec<JoinHandle<()>>,
}

/// Binds TCP and UDP on the same port; with port 0 it retries until both get one port.
fn bind_pair(bind: SocketAddr) -> io::Result<(TcpListener, UdpSocket)> {
    let attempts = if bind.port() == 0 { 20 } else { 1 };
    let mut last = None;
    for _ in 0..attempts {
        let tcp = TcpListener::bind(bind)?;
        let addr = tcp.local_addr()?;
        match UdpSocket::bind(addr) {
            Ok(udp) => return Ok((tcp, udp)),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::other("could not bind")))
}

impl TrackerServer {
    /// Starts with [`ServerConfig::default`].
    pub fn start(bind: SocketAddr) -> io::Result<TrackerServer> {
        TrackerServer::start_with(bind, ServerConfig::default())
    }

    pub fn start_with(bind: SocketAddr, config: ServerConfig) -> io::Result<TrackerServer> {
        let (listener, socket) = bind_pair(bind)?;
        let local_addr = listener.local_addr()?;
        listener.set_nonblocking(true)?;
        let swarms = Arc::new(Mutex::new(Swarms::new(config.peer_ttl)));
        let config = Arc::new(config);
        let (tx, rx) = crossbeam_channel::bounded::<()>(0);

        let tcp_thread = {
            let (swarms, config, rx) = (swarms.clone(), config.clone(), rx.clone());
            std::thread::Builder::new()
                .name("tracker-http".into())
                .stack_size(128 * 1024)
                .spawn(move || accept_loop(listener, swarms, config, rx))?
        };
        let udp_thread = std::thread::Builder::new()
            .name("tracker-udp".into())
            .stack_size(128 * 1024)
            .spawn(move || {
                if let Err(e) = udp::serve(socket, &swarms, &config, rx) {
                    log::error!("tracker udp stopped: {e}");
                }
            })?;
        Ok(TrackerServer {
            local_addr,
            shutdown: Some(tx),
            threads: vec![tcp_thread, udp_thread],
        })
    }

    /// The bound address (TCP and UDP share the port).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The address clients should use: a wildcard bind is reached via loopback.
    fn reachable(&self) -> SocketAddr {
        let ip = match self.local_addr.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            ip => ip,
        };
        SocketAddr::new(ip, self.local_addr.port())
    }

    /// `http://ADDR/announce`.
    pub fn http_announce_url(&self) -> String {
        format!("http://{}/announce", self.reachable())
    }

    /// `udp://ADDR/announce`.
    pub fn udp_announce_url(&self) -> String {
        format!("udp://{}/announce", self.reachable())
    }

    /// Blocks until the server threads end (they do not, short of a fatal error).
    fn wait(&mut self) {
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for TrackerServer {
    fn drop(&mut self) {
        self.shutdown.take(); // disconnects the channel: both loops notice and return
        self.wait();
    }
}

/// Frees a connection slot when the connection thread ends, even by panic.
struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

fn accept_loop(
    listener: TcpListener,
    swarms: Arc<Mutex<Swarms>>,
    config: Arc<ServerConfig>,
    shutdown: Receiver<()>,
) {
    let active = Arc::new(AtomicUsize::new(0));
    while let Err(TryRecvError::Empty) = shutdown.try_recv() {
        let stream = match listener.accept() {
            Ok((s, _)) => s,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                std::thread::sleep(ACCEPT_POLL);
                continue;
            }
            Err(e) => {
                log::warn!("tracker http accept: {e}");
                std::thread::sleep(ACCEPT_POLL);
                continue;
            }
        };
        if active.load(Ordering::Relaxed) >= MAX_CONNECTIONS
            || stream.set_nonblocking(false).is_err()
        {
            continue; // dropping the stream closes it
        }
        active.fetch_add(1, Ordering::Relaxed);
        let (swarms, config, active2) = (swarms.clone(), config.clone(), active.clone());
        let spawned = std::thread::Builder::new()
            .name("tracker-conn".into())
            .stack_size(128 * 1024)
            .spawn(move || {
                let _slot = Slot(active2);
                http::serve_connection(stream, &swarms, &config);
            });
        if let Err(e) = spawned {
            active.fetch_sub(1, Ordering::Relaxed);
            log::warn!("tracker http: cannot spawn connection thread: {e}");
        }
    }
}

/// Runs the built-in tracker on `bind` (TCP and UDP) until the process ends.
pub fn run_tracker(bind: SocketAddr) -> io::Result<()> {
    let mut server = TrackerServer::start(bind)?;
    log::info!(
        "tracker listening: {} and {}",
        server.http_announce_url(),
        server.udp_announce_url()
    );
    eprintln!(
        "minibt tracker: {}  {}",
        server.http_announce_url(),
        server.udp_announce_url()
    );
    server.wait();
    Ok(())
}
