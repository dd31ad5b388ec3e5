//! Parsing an HTTP tracker's bencoded announce response (BEP 3), pure and bounded.
//!
//! Handles `failure reason`, `warning message`, `interval`, `min interval`, `tracker id`,
//! `complete`/`incomplete`, compact IPv4 peers (BEP 23), dictionary peers (BEP 3) and compact
//! IPv6 `peers6` (BEP 7). Called by [`super::http`]; the compact helpers are shared with the
//! UDP codec and the built-in tracker. At most [`MAX_PEERS`] peers are kept.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use bendy::decoding::{Decoder, Object};

use super::{AnnounceResponse, TrackerError, MAX_PEERS};

/// Used when a response gives peers but no interval.
const DEFAULT_INTERVAL: Duration = Duration::from_secs(30 * 60);
/// Longest interval we accept from a tracker; larger values are clamped.
const MAX_INTERVAL: Duration = Duration::from_secs(24 * 60 * 60);
/// Warning and failure texts are cut to this many bytes.
const MAX_TEXT: usize = 1024;

/// Appends the 6-byte compact IPv4 peers in `bytes` (BEP 23) to `out`, up to [`MAX_PEERS`].
/// A trailing partial entry is ignored. Port 0 entries are skipped.
pub fn parse_compact_v4(bytes: &[u8], out: &mut Vec<SocketAddr>) {
    for chunk in bytes.chunks_exact(6) {
        if out.len() >= MAX_PEERS {
            return;
        }
        let ip = Ipv4Addr::new(chunk[0], chunk[1], chunk[2], chunk[3]);
        let port = u16::from_be_bytes([chunk[4], chunk[5]]);
        if port != 0 {
            out.push(SocketAddr::new(IpAddr::V4(ip), port));
        }
    }
}

/// Appends the 18-byte compact IPv6 peers in `bytes` (BEP 7) to `out`, up to [`MAX_PEERS`].
pub fn parse_compact_v6(bytes: &[u8], out: &mut Vec<SocketAddr>) {
    for chunk in bytes.chunks_exact(18) {
        if out.len() >= MAX_PEERS {
            return;
        }
        let mut octets = [0u8; 16];
        octets.copy_from_slice(&chunk[..16]);
        let port = u16::from_be_bytes([chunk[16], chunk[17]]);
        if port != 0 {
            out.push(SocketAddr::new(IpAddr::V6(Ipv6Addr::from(octets)), port));
        }
    }
}

/// Compact encoding of one peer: 4+2 bytes for IPv4, 16+2 for IPv6.
pub fn push_compact(addr: SocketAddr, out: &mut Vec<u8>) {
    match addr.ip() {
        IpAddr::V4(ip) => out.extend_from_slice(&ip.octets()),
        IpAddr::V6(ip) => out.extend_from_slice(&ip.octets()),
    }
    out.extend_from_slice(&addr.port().to_be_bytes());
}

fn garbage(what: impl std::fmt::Display) -> TrackerError {
    TrackerError::Garbage(what.to_string())
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(&bytes[..bytes.len().min(MAX_TEXT)]).into_owned()
}

fn integer(obj: Object<'_, '_>, key: &str) -> Result<i64, TrackerError> {
    match obj {
        Object::Integer(s) => s
            .parse::<i64>()
            .map_err(|_| garbage(format!("`{key}` is not a 64-bit integer"))),
        _ => Err(garbage(format!("`{key}` is not an integer"))),
    }
}

fn seconds(obj: Object<'_, '_>, key: &str) -> Result<Duration, TrackerError> {
    let secs = integer(obj, key)?;
    if secs < 0 {
        return Err(garbage(format!("`{key}` is negative")));
    }
    Ok(Duration::from_secs(secs as u64).min(MAX_INTERVAL))
}

fn count(obj: Object<'_, '_>, key: &str) -> Result<u32, TrackerError> {
    let n = integer(obj, key)?;
    Ok(n.clamp(0, u32::MAX as i64) as u32)
}

/// One entry of a dictionary-model peer list: `ip` (text) and `port`; `peer id` is ignored.
/// Entries whose `ip` is a host name or unparsable are skipped (returns `Ok(None)`).
fn dict_peer(obj: Object<'_, '_>) -> Result<Option<SocketAddr>, TrackerError> {
    let mut dict = match obj {
        Object::Dict(d) => d,
        _ => return Err(garbage("peer list entry is not a dictionary")),
    };
    let mut ip = None;
    let mut port = None;
    while let Some((key, value)) = dict.next_pair().map_err(garbage)? {
        match key {
            b"ip" => {
                if let Object::Bytes(b) = value {
                    ip = std::str::from_utf8(b)
                        .ok()
                        .and_then(|s| s.parse::<IpAddr>().ok());
                }
            }
            b"port" => {
                let p = integer(value, "port")?;
                port = u16::try_from(p).ok().filter(|&p| p != 0);
            }
            _ => {}
        }
    }
    Ok(match (ip, port) {
        (Some(ip), Some(port)) => Some(SocketAddr::new(ip, port)),
        _ => None,
    })
}

/// Fields collected while walking the top-level dictionary.
#[derive(Default)]
struct Fields {
    failure: Option<String>,
    warning: Option<String>,
    interval: Option<Duration>,
    min_interval: Option<Duration>,
    tracker_id: Option<Vec<u8>>,
    complete: Option<u32>,
    incomplete: Option<u32>,
    peers: Vec<SocketAddr>,
    saw_peers: bool,
}

fn walk(body: &[u8], f: &mut Fields) -> Result<(), TrackerError> {
    let mut decoder = Decoder::new(body).with_max_depth(8);
    let top = decoder.next_object().map_err(garbage)?;
    let mut dict = match top {
        Some(Object::Dict(d)) => d,
        Some(_) => return Err(garbage("response is not a bencoded dictionary")),
        None => return Err(garbage("empty response")),
    };
    while let Some((key, value)) = dict.next_pair().map_err(garbage)? {
        match key {
            b"failure reason" => {
                if let Object::Bytes(b) = value {
                    f.failure = Some(text(b));
                } else {
                    f.failure = Some("(failure reason is not a string)".into());
                }
            }
            b"warning message" => {
                if let Object::Bytes(b) = value {
                    f.warning = Some(text(b));
                }
            }
            b"interval" => f.interval = Some(seconds(value, "interval")?),
            b"min interval" => f.min_interval = Some(seconds(value, "min interval")?),
            b"tracker id" => {
                if let Object::Bytes(b) = value {
                    f.tracker_id = Some(b[..b.len().min(MAX_TEXT)].to_vec());
                }
            }
            b"complete" => f.complete = Some(count(value, "complete")?),
            b"incomplete" => f.incomplete = Some(count(value, "incomplete")?),
            b"peers" => {
                f.saw_peers = true;
                match value {
                    Object::Bytes(b) => parse_compact_v4(b, &mut f.peers),
                    Object::List(mut list) => {
                        while let Some(item) = list.next_object().map_err(garbage)? {
                            if f.peers.len() >= MAX_PEERS {
                                // Stop collecting; the decoder still checks the rest.
                                continue;
                            }
                            if let Some(addr) = dict_peer(item)? {
                                f.peers.push(addr);
                            }
                        }
                    }
                    _ => return Err(garbage("`peers` is neither a string nor a list")),
                }
            }
            b"peers6" => {
                f.saw_peers = true;
                match value {
                    Object::Bytes(b) => parse_compact_v6(b, &mut f.peers),
                    _ => return Err(garbage("`peers6` is not a string")),
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Parses a complete HTTP announce response body.
///
/// A `failure reason` becomes [`TrackerError::Failure`] (even if the rest of the dictionary
/// is malformed after it); anything that is not a tracker response becomes
/// [`TrackerError::Garbage`].
pub fn parse_http_response(body: &[u8]) -> Result<AnnounceResponse, TrackerError> {
    let mut f = Fields::default();
    let walked = walk(body, &mut f);
    if let Some(reason) = f.failure {
        return Err(TrackerError::Failure(reason));
    }
    walked?;
    if f.interval.is_none() && !f.saw_peers {
        return Err(garbage("neither `interval` nor `peers` present"));
    }
    Ok(AnnounceResponse {
        interval: f.interval.unwrap_or(DEFAULT_INTERVAL),
        min_interval: f.min_interval,
        peers: f.peers,
        tracker_id: f.tracker_id,
        warning: f.warning,
        complete: f.complete,
        incomplete: f.incomplete,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn compact_ipv4_response() {
        let body = b"d8:completei3e10:incompletei1e8:intervali900e12:min intervali60e5:peers12:\x7f\x00\x00\x01\x1a\xe1\x0a\x00\x00\x02\x00\x50e";
        let r = parse_http_response(body).unwrap();
        assert_eq!(r.interval, Duration::from_secs(900));
        assert_eq!(r.min_interval, Some(Duration::from_secs(60)));
        assert_eq!(r.complete, Some(3));
        assert_eq!(r.incomplete, Some(1));
        assert_eq!(r.peers, vec![v4("127.0.0.1:6881"), v4("10.0.0.2:80")]);
    }

    #[test]
    fn dictionary_peers_and_peers6_and_tracker_id() {
        let mut body = b"d8:intervali60e5:peersld2:ip9:127.0.0.27:peer id20:aaaaaaaaaaaaaaaaaaaa4:porti7000eed2:ip11:example.org4:porti1eed2:ip3:::14:porti7001eee6:peers618:".to_vec();
        body.extend_from_slice(&Ipv6Addr::LOCALHOST.octets());
        body.extend_from_slice(&7002u16.to_be_bytes());
        body.extend_from_slice(b"10:tracker id3:xyz15:warning message6:bewaree");
        let r = parse_http_response(&body).unwrap();
        assert_eq!(
            r.peers,
            vec![
                v4("127.0.0.2:7000"),
                "[::1]:7001".parse().unwrap(),
                "[::1]:7002".parse().unwrap()
            ]
        );
        assert_eq!(r.tracker_id.as_deref(), Some(&b"xyz"[..]));
        assert_eq!(r.warning.as_deref(), Some("beware"));
    }

    #[test]
    fn failure_reason_is_its_own_error() {
        match parse_http_response(b"d14:failure reason12:unregisterede") {
            Err(TrackerError::Failure(r)) => assert_eq!(r, "unregistered"),
            other => panic!("unexpected {other:?}"),
        }
        // Still reported when the dictionary is broken after it.
        match parse_http_response(b"d14:failure reason3:bad8:intervalie") {
            Err(TrackerError::Failure(r)) => assert_eq!(r, "bad"),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn garbage_is_a_clear_error() {
        for body in [
            &b""[..],
            b"<html>502 Bad Gateway</html>",
            b"i42e",
            b"d3:fooi1ee",
            b"d8:intervali-5ee",
            b"d5:peersi3ee",
            b"d8:intervali60e5:peers999999999:abce",
        ] {
            assert!(
                matches!(parse_http_response(body), Err(TrackerError::Garbage(_))),
                "{:?}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn peer_list_is_capped() {
        let n = MAX_PEERS + 500;
        let mut body = format!("d8:intervali60e5:peers{}:", n * 6).into_bytes();
        for i in 0..n {
            body.extend_from_slice(&[10, 0, (i >> 8) as u8, i as u8, 0, 1]);
        }
        body.push(b'e');
        let r = parse_http_response(&body).unwrap();
        assert_eq!(r.peers.len(), MAX_PEERS);
    }

    #[test]
    fn compact_round_trip() {
        let addrs = [v4("1.2.3.4:5"), "[2001:db8::1]:6881".parse().unwrap()];
        let mut bytes = Vec::new();
        push_compact(addrs[0], &mut bytes);
        let mut out = Vec::new();
        parse_compact_v4(&bytes, &mut out);
        bytes.clear();
        push_compact(addrs[1], &mut bytes);
        parse_compact_v6(&bytes, &mut out);
        assert_eq!(out, addrs);
    }
}
