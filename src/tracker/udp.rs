//! UDP tracker client (BEP 15): connect, then announce, on a blocking `std::net::UdpSocket`.
//!
//! Owned by [`super::tiers::Tracker`]; one [`UdpTracker`] per `udp://` URL keeps its
//! connection id for at most 60 s. Each request is retransmitted on the configured schedule
//! ([`super::TrackerConfig::udp_timeouts`]) and then abandoned, so a dead tracker costs a
//! bounded time. Stray datagrams (wrong transaction id, too short) are ignored.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs, UdpSocket};
use std::time::{Duration, Instant};

use super::udp_codec::{self, Family, MAX_PACKET};
use super::{AnnounceRequest, AnnounceResponse, TrackerConfig, TrackerError};
use crate::ids::random_u64;

/// BEP 15: a connection id may be used for one minute after it was received.
const CONNECTION_ID_LIFETIME: Duration = Duration::from_secs(60);

/// One UDP tracker and its cached connection id.
#[derive(Debug)]
pub struct UdpTracker {
    host: String,
    port: u16,
    connection: Option<(u64, Instant)>,
}

/// Splits `udp://host:port[/path]` into host and port. IPv6 hosts are bracketed.
pub fn parse_udp_url(url: &str) -> Result<(String, u16), TrackerError> {
    let bad = |why: &str| TrackerError::BadUrl(format!("{url}: {why}"));
    let rest = url
        .strip_prefix("udp://")
        .ok_or_else(|| bad("not udp://"))?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6.split_once(']').ok_or_else(|| bad("unclosed '['"))?;
        let port = after.strip_prefix(':').ok_or_else(|| bad("missing port"))?;
        (host, port)
    } else {
        authority
            .rsplit_once(':')
            .ok_or_else(|| bad("missing port"))?
    };
    if host.is_empty() {
        return Err(bad("missing host"));
    }
    let port: u16 = port.parse().map_err(|_| bad("bad port"))?;
    if port == 0 {
        return Err(bad("port 0"));
    }
    Ok((host.to_string(), port))
}

fn io_err(e: io::Error) -> TrackerError {
    TrackerError::Transport(e.to_string())
}

impl UdpTracker {
    pub fn new(url: &str) -> Result<UdpTracker, TrackerError> {
        let (host, port) = parse_udp_url(url)?;
        Ok(UdpTracker {
            host,
            port,
            connection: None,
        })
    }

    /// One announce: resolve, connect if the cached connection id is missing or stale,
    /// announce. Every step is bounded by `config.udp_timeouts`.
    pub fn announce(
        &mut self,
        req: &AnnounceRequest,
        config: &TrackerConfig,
    ) -> Result<AnnounceResponse, TrackerError> {
        let addr = (self.host.as_str(), self.port)
            .to_socket_addrs()
            .map_err(io_err)?
            .next()
            .ok_or_else(|| TrackerError::Transport(format!("{} has no address", self.host)))?;
        let local: SocketAddr = match (addr, config.local_ip) {
            (SocketAddr::V4(_), Some(ip @ std::net::IpAddr::V4(_)))
            | (SocketAddr::V6(_), Some(ip @ std::net::IpAddr::V6(_))) => SocketAddr::new(ip, 0),
            (SocketAddr::V4(_), _) => "0.0.0.0:0".parse().expect("literal"),
            (SocketAddr::V6(_), _) => "[::]:0".parse().expect("literal"),
        };
        let socket = UdpSocket::bind(local).map_err(io_err)?;
        // A connected socket only receives datagrams from the tracker's address.
        socket.connect(addr).map_err(io_err)?;
        let family = Family::of(&addr);

        let connection_id = match self.connection {
            Some((id, at)) if at.elapsed() < CONNECTION_ID_LIFETIME => id,
            _ => {
                let tid = random_u64() as u32;
                let id = exchange(&socket, &udp_codec::encode_connect(tid), config, |p| {
                    udp_codec::decode_connect_response(p, tid)
                })?;
                self.connection = Some((id, Instant::now()));
                id
            }
        };
        let tid = random_u64() as u32;
        let packet = udp_codec::encode_announce(connection_id, tid, req);
        let result = exchange(&socket, &packet, config, |p| {
            udp_codec::decode_announce_response(p, tid, family)
        });
        if result.is_err() {
            // The tracker may have forgotten our connection id; start afresh next time.
            self.connection = None;
        }
        result
    }
}

/// Sends `packet` and waits for a reply that `decode` accepts, retransmitting on the
/// schedule. `decode` returns `Ok(None)` for datagrams that are not ours.
fn exchange<T>(
    socket: &UdpSocket,
    packet: &[u8],
    config: &TrackerConfig,
    mut decode: impl FnMut(&[u8]) -> Result<Option<T>, TrackerError>,
) -> Result<T, TrackerError> {
    let mut buf = vec![0u8; MAX_PACKET];
    for &wait in &config.udp_timeouts {
        socket.send(packet).map_err(io_err)?;
        let deadline = Instant::now() + wait;
        // Each received datagram either ends the wait or is dropped; the deadline bounds it.
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            socket.set_read_timeout(Some(left)).map_err(io_err)?;
            match socket.recv(&mut buf) {
                Ok(n) => {
                    if let Some(value) = decode(&buf[..n])? {
                        return Ok(value);
                    }
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock
                            | io::ErrorKind::TimedOut
                            | io::ErrorKind::Interrupted
                    ) => {}
                // Includes ConnectionRefused (ICMP port unreachable on a connected socket):
                // nobody listens there, so retrying is pointless.
                Err(e) => return Err(io_err(e)),
            }
        }
    }
    Err(TrackerError::Timeout)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_parsing() {
        assert_eq!(
            parse_udp_url("udp://tracker.example:6969/announce").unwrap(),
            ("tracker.example".to_string(), 6969)
        );
        assert_eq!(
            parse_udp_url("udp://[::1]:80").unwrap(),
            ("::1".to_string(), 80)
        );
        for bad in [
            "udp://host",
            "udp://:80",
            "udp://host:0",
            "udp://[::1:80",
            "http://x:1",
        ] {
            assert!(parse_udp_url(bad).is_err(), "{bad}");
        }
    }
}
