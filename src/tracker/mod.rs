//! Trackers: asking a tracker for peers (BEP 3 HTTP, BEP 15 UDP, BEP 12 tiers).
//!
//! This module owns the plain announce types shared by every transport ([`AnnounceRequest`],
//! [`AnnounceResponse`], [`TrackerError`]), the timeouts ([`TrackerConfig`]) and the byte
//! counters the announcer reads ([`TransferStats`]). The session starts the announcer thread
//! ([`announcer::spawn_announcer`]) with the metainfo's tracker tiers; the built-in tracker
//! (`crate::tracker_server`) reuses the pure codecs in [`response`] and [`udp_codec`].

pub mod announcer;
pub mod http;
pub mod response;
pub mod tiers;
pub mod udp;
pub mod udp_codec;

use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use crate::ids::{InfoHash, PeerId};

pub use announcer::{spawn_announcer, AnnounceParams, AnnouncerCommand};
pub use tiers::Tiers;

/// At most this many peers are kept from one response, whatever the response claims.
pub const MAX_PEERS: usize = 2000;
/// At most this many bytes of an HTTP tracker response body are read.
pub const MAX_HTTP_BODY: u64 = 4 * 1024 * 1024;

/// The `event` of an announce (BEP 3; numeric codes are BEP 15's).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// A regular re-announce.
    None,
    /// The first announce of a session.
    Started,
    /// The download just finished (sent once).
    Completed,
    /// The client is shutting down.
    Stopped,
}

impl Event {
    /// The `event=` value of an HTTP announce; `None` sends no parameter.
    pub fn http_name(self) -> Option<&'static str> {
        match self {
            Event::None => None,
            Event::Started => Some("started"),
            Event::Completed => Some("completed"),
            Event::Stopped => Some("stopped"),
        }
    }

    /// Parses an HTTP `event=` value; unknown or empty values mean a regular announce.
    pub fn from_http_name(name: &[u8]) -> Event {
        match name {
            b"started" => Event::Started,
            b"completed" => Event::Completed,
            b"stopped" => Event::Stopped,
            _ => Event::None,
        }
    }

    /// BEP 15 event code: 0 none, 1 completed, 2 started, 3 stopped.
    pub fn udp_code(self) -> u32 {
        match self {
            Event::None => 0,
            Event::Completed => 1,
            Event::Started => 2,
            Event::Stopped => 3,
        }
    }

    /// Inverse of [`Event::udp_code`]; unknown codes mean a regular announce.
    pub fn from_udp_code(code: u32) -> Event {
        match code {
            1 => Event::Completed,
            2 => Event::Started,
            3 => Event::Stopped,
            _ => Event::None,
        }
    }
}

/// Everything one announce tells the tracker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnnounceRequest {
    pub info_hash: InfoHash,
    pub peer_id: PeerId,
    /// The port our peer listener accepts connections on.
    pub port: u16,
    pub uploaded: u64,
    pub downloaded: u64,
    pub left: u64,
    pub event: Event,
    /// How many peers we would like back.
    pub numwant: u32,
    /// A random value identifying this client across IP changes.
    pub key: u32,
    /// The `tracker id` an HTTP tracker handed out in an earlier response.
    pub tracker_id: Option<Vec<u8>>,
    /// Our address, when we listen on a specific one (BEP 3 `ip`; UDP: IPv4 only).
    pub ip: Option<std::net::IpAddr>,
}

/// What a tracker answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnnounceResponse {
    /// How long to wait before the next regular announce.
    pub interval: Duration,
    /// Never re-announce sooner than this, if given.
    pub min_interval: Option<Duration>,
    /// Peer addresses (IPv4 and IPv6), at most [`MAX_PEERS`].
    pub peers: Vec<SocketAddr>,
    pub tracker_id: Option<Vec<u8>>,
    /// A `warning message`: the announce worked but the tracker wants to tell us something.
    pub warning: Option<String>,
    /// Seeders.
    pub complete: Option<u32>,
    /// Leechers.
    pub incomplete: Option<u32>,
}

/// Why an announce failed.
#[derive(Debug)]
pub enum TrackerError {
    /// The tracker answered with a `failure reason` (HTTP) or an error packet (UDP action 3).
    Failure(String),
    /// No (valid) answer arrived within the configured time.
    Timeout,
    /// The answer was not a valid tracker response.
    Garbage(String),
    /// The HTTP tracker answered with a non-200 status and no bencoded failure.
    Status(u16),
    /// Connecting, sending or receiving failed.
    Transport(String),
    /// The announce URL is not something we can announce to.
    BadUrl(String),
    /// Every tracker of every tier failed; one entry per tracker tried, in order.
    AllFailed(Vec<(String, TrackerError)>),
}

impl fmt::Display for TrackerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrackerError::Failure(reason) => write!(f, "tracker failure: {reason}"),
            TrackerError::Timeout => f.write_str("timed out"),
            TrackerError::Garbage(what) => write!(f, "invalid response: {what}"),
            TrackerError::Status(code) => write!(f, "HTTP status {code}"),
            TrackerError::Transport(what) => write!(f, "network error: {what}"),
            TrackerError::BadUrl(what) => write!(f, "unusable announce URL: {what}"),
            TrackerError::AllFailed(list) if list.is_empty() => f.write_str("no usable tracker"),
            TrackerError::AllFailed(list) => {
                f.write_str("all trackers failed:")?;
                for (url, err) in list {
                    write!(f, " [{url}: {err}]")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for TrackerError {}

/// Timeouts for one announce. Every wait is bounded by these.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrackerConfig {
    /// TCP connect timeout for HTTP trackers.
    pub http_connect_timeout: Duration,
    /// Whole-request timeout for HTTP trackers (connect, send, receive).
    pub http_timeout: Duration,
    /// BEP 15 retransmission schedule: one wait per attempt, then give up. BEP 15 itself
    /// says 15·2ⁿ s; we keep the round short so a dead tracker cannot stall startup.
    pub udp_timeouts: Vec<Duration>,
    /// Local address UDP announces leave from (`--bind-ip`), so the tracker records the
    /// address we listen on; `None` lets the OS choose.
    pub local_ip: Option<std::net::IpAddr>,
}

impl Default for TrackerConfig {
    fn default() -> Self {
        TrackerConfig {
            http_connect_timeout: Duration::from_secs(5),
            http_timeout: Duration::from_secs(15),
            udp_timeouts: vec![
                Duration::from_secs(1),
                Duration::from_secs(2),
                Duration::from_secs(4),
            ],
            local_ip: None,
        }
    }
}

impl TrackerConfig {
    /// Short timeouts for the best-effort `stopped` announce at shutdown.
    pub fn for_shutdown(&self) -> TrackerConfig {
        let cap = Duration::from_secs(1);
        TrackerConfig {
            http_connect_timeout: self.http_connect_timeout.min(cap),
            http_timeout: self.http_timeout.min(cap),
            udp_timeouts: vec![self.udp_timeouts.first().copied().unwrap_or(cap).min(cap)],
            local_ip: self.local_ip,
        }
    }
}

/// Byte counters shared by the session (writer) and the announcer (reader).
#[derive(Debug, Default)]
pub struct TransferStats {
    pub uploaded: AtomicU64,
    pub downloaded: AtomicU64,
    /// Bytes still missing; 0 when seeding.
    pub left: AtomicU64,
}

impl TransferStats {
    pub fn new(left: u64) -> TransferStats {
        TransferStats {
            left: AtomicU64::new(left),
            ..TransferStats::default()
        }
    }
}

/// Announces once to a single tracker URL (`http://`, `https://` or `udp://`), with no
/// connection-id reuse. The announcer uses [`Tiers`], which keeps per-tracker state.
pub fn announce(
    url: &str,
    req: &AnnounceRequest,
    config: &TrackerConfig,
) -> Result<AnnounceResponse, TrackerError> {
    let mut tracker = tiers::Tracker::new(url)?;
    tracker.announce(req, config)
}
