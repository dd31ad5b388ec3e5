//! BEP 15 UDP tracker packets: pure encoders and decoders, no I/O.
//!
//! Used by the UDP client ([`super::udp`]) and the built-in tracker (`crate::tracker_server`).
//! All integers are big-endian. Decoders never trust a length: peers are read only from the
//! bytes actually received and capped at [`MAX_PEERS`].

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use super::response::{parse_compact_v4, parse_compact_v6};
use super::{AnnounceRequest, AnnounceResponse, Event, TrackerError, MAX_PEERS};
use crate::ids::{InfoHash, PeerId};

/// The magic `protocol_id` of a connect request.
pub const PROTOCOL_ID: u64 = 0x0417_2710_1980;
pub const ACTION_CONNECT: u32 = 0;
pub const ACTION_ANNOUNCE: u32 = 1;
pub const ACTION_SCRAPE: u32 = 2;
pub const ACTION_ERROR: u32 = 3;
/// Length of an announce request without BEP 41 extensions.
pub const ANNOUNCE_REQUEST_LEN: usize = 98;
/// Largest datagram we ever expect (and the receive buffer size).
pub const MAX_PACKET: usize = 65536;

/// Peer address family of an announce response: decided by the tracker's address (BEP 15).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    pub fn of(addr: &SocketAddr) -> Family {
        match addr {
            SocketAddr::V4(_) => Family::V4,
            SocketAddr::V6(a) if a.ip().to_ipv4_mapped().is_some() => Family::V4,
            SocketAddr::V6(_) => Family::V6,
        }
    }
}

fn be_u32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn be_u64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_be_bytes(a)
}

fn garbage(what: &str) -> TrackerError {
    TrackerError::Garbage(what.to_string())
}

/// A connect request: protocol id, action 0, transaction id.
pub fn encode_connect(transaction_id: u32) -> [u8; 16] {
    let mut p = [0u8; 16];
    p[..8].copy_from_slice(&PROTOCOL_ID.to_be_bytes());
    p[8..12].copy_from_slice(&ACTION_CONNECT.to_be_bytes());
    p[12..16].copy_from_slice(&transaction_id.to_be_bytes());
    p
}

/// An announce request (98 bytes). `ip` is ours when set, else 0 (use the source address); `num_want` is sent
/// as given (BEP 15 uses -1 for "default", which we never need).
pub fn encode_announce(connection_id: u64, transaction_id: u32, req: &AnnounceRequest) -> Vec<u8> {
    let mut p = Vec::with_capacity(ANNOUNCE_REQUEST_LEN);
    p.extend_from_slice(&connection_id.to_be_bytes());
    p.extend_from_slice(&ACTION_ANNOUNCE.to_be_bytes());
    p.extend_from_slice(&transaction_id.to_be_bytes());
    p.extend_from_slice(&req.info_hash.0);
    p.extend_from_slice(&req.peer_id.0);
    p.extend_from_slice(&req.downloaded.to_be_bytes());
    p.extend_from_slice(&req.left.to_be_bytes());
    p.extend_from_slice(&req.uploaded.to_be_bytes());
    p.extend_from_slice(&req.event.udp_code().to_be_bytes());
    // ip: 0 = the packet's source; our IPv4 address when bound to one.
    let ip = match req.ip {
        Some(std::net::IpAddr::V4(v4)) => u32::from(v4),
        _ => 0,
    };
    p.extend_from_slice(&ip.to_be_bytes());
    p.extend_from_slice(&req.key.to_be_bytes());
    p.extend_from_slice(&(req.numwant.min(i32::MAX as u32)).to_be_bytes());
    p.extend_from_slice(&req.port.to_be_bytes());
    p
}

/// Checks the common 8-byte header of a tracker reply: returns the action, or an error for a
/// BEP 15 error packet of this transaction. `Ok(None)` means "not for us" (too short or
/// another transaction): the caller keeps waiting.
fn reply_action(packet: &[u8], transaction_id: u32) -> Result<Option<u32>, TrackerError> {
    if packet.len() < 8 || be_u32(packet, 4) != transaction_id {
        return Ok(None);
    }
    let action = be_u32(packet, 0);
    if action == ACTION_ERROR {
        let msg = &packet[8..packet.len().min(8 + 1024)];
        return Err(TrackerError::Failure(
            String::from_utf8_lossy(msg).into_owned(),
        ));
    }
    Ok(Some(action))
}

/// Decodes a connect response: `Ok(Some(connection_id))`, `Ok(None)` for a stray packet.
pub fn decode_connect_response(
    packet: &[u8],
    transaction_id: u32,
) -> Result<Option<u64>, TrackerError> {
    match reply_action(packet, transaction_id)? {
        None => Ok(None),
        Some(ACTION_CONNECT) if packet.len() >= 16 => Ok(Some(be_u64(packet, 8))),
        Some(ACTION_CONNECT) => Err(garbage("connect response shorter than 16 bytes")),
        Some(other) => Err(TrackerError::Garbage(format!(
            "expected connect response, got action {other}"
        ))),
    }
}

/// Decodes an announce response; peers are 6-byte (IPv4) or 18-byte (IPv6) entries by
/// `family`. `Ok(None)` for a stray packet.
pub fn decode_announce_response(
    packet: &[u8],
    transaction_id: u32,
    family: Family,
) -> Result<Option<AnnounceResponse>, TrackerError> {
    match reply_action(packet, transaction_id)? {
        None => return Ok(None),
        Some(ACTION_ANNOUNCE) if packet.len() >= 20 => {}
        Some(ACTION_ANNOUNCE) => return Err(garbage("announce response shorter than 20 bytes")),
        Some(other) => {
            return Err(TrackerError::Garbage(format!(
                "expected announce response, got action {other}"
            )))
        }
    }
    let interval = Duration::from_secs(u64::from(be_u32(packet, 8)).min(24 * 60 * 60));
    let leechers = be_u32(packet, 12);
    let seeders = be_u32(packet, 16);
    let mut peers = Vec::new();
    let rest = &packet[20..];
    match family {
        Family::V4 => parse_compact_v4(rest, &mut peers),
        Family::V6 => parse_compact_v6(rest, &mut peers),
    }
    debug_assert!(peers.len() <= MAX_PEERS);
    Ok(Some(AnnounceResponse {
        interval,
        min_interval: None,
        peers,
        tracker_id: None,
        warning: None,
        complete: Some(seeders),
        incomplete: Some(leechers),
    }))
}

// ---- server side -------------------------------------------------------------------------

/// A request a UDP tracker receives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UdpRequest {
    Connect {
        transaction_id: u32,
    },
    Announce {
        connection_id: u64,
        transaction_id: u32,
        info_hash: InfoHash,
        peer_id: PeerId,
        downloaded: u64,
        left: u64,
        uploaded: u64,
        event: Event,
        /// Requested IPv4 address (0 = use the source address).
        ip: Option<Ipv4Addr>,
        key: u32,
        /// `None` for -1 ("tracker's default").
        num_want: Option<u32>,
        port: u16,
    },
    Scrape {
        connection_id: u64,
        transaction_id: u32,
        /// At most 74 hashes fit in a datagram (BEP 15); more are ignored.
        info_hashes: Vec<InfoHash>,
    },
}

/// Decodes a request datagram. Errors carry the transaction id when one could be read, so
/// the tracker can answer with an error packet.
pub fn decode_request(packet: &[u8]) -> Result<UdpRequest, (Option<u32>, &'static str)> {
    if packet.len() < 16 {
        return Err((None, "packet too short"));
    }
    let first = be_u64(packet, 0);
    let action = be_u32(packet, 8);
    let transaction_id = be_u32(packet, 12);
    match action {
        ACTION_CONNECT if first == PROTOCOL_ID => Ok(UdpRequest::Connect { transaction_id }),
        ACTION_CONNECT => Err((Some(transaction_id), "bad protocol id")),
        ACTION_ANNOUNCE => {
            if packet.len() < ANNOUNCE_REQUEST_LEN {
                return Err((Some(transaction_id), "announce request too short"));
            }
            let mut info_hash = [0u8; 20];
            info_hash.copy_from_slice(&packet[16..36]);
            let mut peer_id = [0u8; 20];
            peer_id.copy_from_slice(&packet[36..56]);
            let ip = be_u32(packet, 84);
            let num_want = be_u32(packet, 92) as i32;
            Ok(UdpRequest::Announce {
                connection_id: first,
                transaction_id,
                info_hash: InfoHash(info_hash),
                peer_id: PeerId(peer_id),
                downloaded: be_u64(packet, 56),
                left: be_u64(packet, 64),
                uploaded: be_u64(packet, 72),
                event: Event::from_udp_code(be_u32(packet, 80)),
                ip: (ip != 0).then(|| Ipv4Addr::from(ip)),
                key: be_u32(packet, 88),
                num_want: (num_want >= 0).then_some(num_want as u32),
                port: u16::from_be_bytes([packet[96], packet[97]]),
            })
        }
        ACTION_SCRAPE => {
            let info_hashes = packet[16..]
                .chunks_exact(20)
                .take(74)
                .map(|c| {
                    let mut h = [0u8; 20];
                    h.copy_from_slice(c);
                    InfoHash(h)
                })
                .collect();
            Ok(UdpRequest::Scrape {
                connection_id: first,
                transaction_id,
                info_hashes,
            })
        }
        _ => Err((Some(transaction_id), "unknown action")),
    }
}

/// A connect response.
pub fn encode_connect_response(transaction_id: u32, connection_id: u64) -> Vec<u8> {
    let mut p = Vec::with_capacity(16);
    p.extend_from_slice(&ACTION_CONNECT.to_be_bytes());
    p.extend_from_slice(&transaction_id.to_be_bytes());
    p.extend_from_slice(&connection_id.to_be_bytes());
    p
}

/// An announce response; `peers` must all be of the requester's family (the caller filters).
pub fn encode_announce_response(
    transaction_id: u32,
    interval: Duration,
    leechers: u32,
    seeders: u32,
    peers: &[SocketAddr],
) -> Vec<u8> {
    let mut p = Vec::with_capacity(20 + peers.len() * 18);
    p.extend_from_slice(&ACTION_ANNOUNCE.to_be_bytes());
    p.extend_from_slice(&transaction_id.to_be_bytes());
    p.extend_from_slice(&(interval.as_secs().min(u32::MAX as u64) as u32).to_be_bytes());
    p.extend_from_slice(&leechers.to_be_bytes());
    p.extend_from_slice(&seeders.to_be_bytes());
    for peer in peers {
        super::response::push_compact(*peer, &mut p);
    }
    p
}

/// A scrape response: (seeders, completed, leechers) per requested hash.
pub fn encode_scrape_response(transaction_id: u32, stats: &[(u32, u32, u32)]) -> Vec<u8> {
    let mut p = Vec::with_capacity(8 + stats.len() * 12);
    p.extend_from_slice(&ACTION_SCRAPE.to_be_bytes());
    p.extend_from_slice(&transaction_id.to_be_bytes());
    for (s, c, l) in stats {
        p.extend_from_slice(&s.to_be_bytes());
        p.extend_from_slice(&c.to_be_bytes());
        p.extend_from_slice(&l.to_be_bytes());
    }
    p
}

/// An error response (action 3) with a text message.
pub fn encode_error(transaction_id: u32, message: &str) -> Vec<u8> {
    let mut p = Vec::with_capacity(8 + message.len());
    p.extend_from_slice(&ACTION_ERROR.to_be_bytes());
    p.extend_from_slice(&transaction_id.to_be_bytes());
    p.extend_from_slice(message.as_bytes());
    p
}

/// Maps an IPv4-mapped IPv6 address to plain IPv4 (a dual-stack socket reports them).
pub fn canonical(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(IpAddr::V4(v4), addr.port()),
            None => addr,
        },
        IpAddr::V4(_) => addr,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> AnnounceRequest {
        AnnounceRequest {
            info_hash: InfoHash([7; 20]),
            peer_id: PeerId([b'p'; 20]),
            port: 6881,
            uploaded: 1,
            downloaded: 2,
            left: 3,
            event: Event::Started,
            numwant: 50,
            key: 0xdead_beef,
            tracker_id: None,
            ip: None,
        }
    }

    #[test]
    fn connect_round_trip() {
        let req = encode_connect(42);
        assert_eq!(
            decode_request(&req),
            Ok(UdpRequest::Connect { transaction_id: 42 })
        );
        let resp = encode_connect_response(42, 0x1122_3344_5566_7788);
        assert_eq!(
            decode_connect_response(&resp, 42).unwrap(),
            Some(0x1122_3344_5566_7788)
        );
        // Another transaction's reply is ignored, not an error.
        assert_eq!(decode_connect_response(&resp, 43).unwrap(), None);
    }

    #[test]
    fn announce_round_trip() {
        let packet = encode_announce(99, 7, &request());
        assert_eq!(packet.len(), ANNOUNCE_REQUEST_LEN);
        match decode_request(&packet).unwrap() {
            UdpRequest::Announce {
                connection_id,
                transaction_id,
                info_hash,
                event,
                left,
                num_want,
                port,
                key,
                ..
            } => {
                assert_eq!(
                    (connection_id, transaction_id, info_hash, event, left),
                    (99, 7, InfoHash([7; 20]), Event::Started, 3)
                );
                assert_eq!((num_want, port, key), (Some(50), 6881, 0xdead_beef));
            }
            other => panic!("unexpected {other:?}"),
        }
        let peers: Vec<SocketAddr> = vec!["127.0.0.1:1".parse().unwrap()];
        let resp = encode_announce_response(7, Duration::from_secs(60), 1, 2, &peers);
        let r = decode_announce_response(&resp, 7, Family::V4)
            .unwrap()
            .unwrap();
        assert_eq!(r.peers, peers);
        assert_eq!(r.interval, Duration::from_secs(60));
        assert_eq!((r.complete, r.incomplete), (Some(2), Some(1)));

        let peers6: Vec<SocketAddr> = vec!["[::1]:2".parse().unwrap()];
        let resp = encode_announce_response(7, Duration::from_secs(60), 0, 0, &peers6);
        let r = decode_announce_response(&resp, 7, Family::V6)
            .unwrap()
            .unwrap();
        assert_eq!(r.peers, peers6);
    }

    #[test]
    fn error_packet_is_a_failure() {
        let p = encode_error(5, "unknown torrent");
        match decode_announce_response(&p, 5, Family::V4) {
            Err(TrackerError::Failure(m)) => assert_eq!(m, "unknown torrent"),
            other => panic!("unexpected {other:?}"),
        }
        assert!(decode_connect_response(&p, 6).unwrap().is_none());
    }

    #[test]
    fn wrong_action_and_short_packets() {
        let p = encode_connect_response(5, 1);
        assert!(matches!(
            decode_announce_response(&p, 5, Family::V4),
            Err(TrackerError::Garbage(_))
        ));
        assert!(decode_announce_response(&p[..7], 5, Family::V4)
            .unwrap()
            .is_none());
        assert!(decode_connect_response(&p[..12], 5).is_err());
        assert!(decode_request(&[0u8; 10]).is_err());
        let mut ann = encode_announce(1, 2, &request());
        ann.truncate(60);
        assert_eq!(
            decode_request(&ann),
            Err((Some(2), "announce request too short"))
        );
    }

    #[test]
    fn peer_count_is_capped() {
        let peers: Vec<SocketAddr> = (0..3000u32)
            .map(|i| SocketAddr::new(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i)), 1))
            .collect();
        let resp = encode_announce_response(1, Duration::from_secs(1), 0, 0, &peers);
        let r = decode_announce_response(&resp, 1, Family::V4)
            .unwrap()
            .unwrap();
        assert_eq!(r.peers.len(), MAX_PEERS);
    }
}
