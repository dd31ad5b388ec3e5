//! The built-in tracker's HTTP front end: `GET /announce` (BEP 3, compact BEP 23, `peers6`
//! BEP 7) on a hand-written HTTP/1.x reader.
//!
//! Called by `crate::tracker_server` once per accepted connection (its own thread). Requests
//! are capped at [`MAX_REQUEST`] bytes and read with timeouts; errors are answered as
//! bencoded `failure reason`s. Query parsing and response encoding are pure functions.

use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use bendy::encoding::{Encoder, SingleItemEncoder};
use parking_lot::Mutex;

use super::swarm::{PeerAnnounce, SwarmReply, Swarms};
use super::ServerConfig;
use crate::ids::{InfoHash, PeerId};
use crate::tracker::response::push_compact;
use crate::tracker::udp_codec::canonical;
use crate::tracker::Event;

/// Longest request head we read.
pub const MAX_REQUEST: usize = 8 * 1024;
/// Per-read timeout and whole-request deadline.
const READ_TIMEOUT: Duration = Duration::from_secs(5);
const REQUEST_DEADLINE: Duration = Duration::from_secs(10);

/// Decodes `%XX` escapes (and `+` as space) into raw bytes; `None` on a broken escape.
pub fn percent_decode(s: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'%' => {
                let hex = s.get(i + 1..i + 3)?;
                let hi = (hex[0] as char).to_digit(16)?;
                let lo = (hex[1] as char).to_digit(16)?;
                out.push((hi * 16 + lo) as u8);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    Some(out)
}

/// A parsed `/announce` query.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpAnnounce {
    pub info_hash: InfoHash,
    pub peer_id: PeerId,
    pub port: u16,
    pub left: u64,
    pub event: Event,
    pub compact: bool,
    pub no_peer_id: bool,
    pub numwant: Option<u32>,
    /// The optional `ip` parameter.
    pub ip: Option<IpAddr>,
}

fn twenty(bytes: &[u8], what: &'static str) -> Result<[u8; 20], &'static str> {
    bytes.try_into().map_err(|_| what)
}

/// Parses the query string of an announce.
pub fn parse_announce_query(query: &[u8]) -> Result<HttpAnnounce, &'static str> {
    let (mut info_hash, mut peer_id, mut port) = (None, None, None);
    let mut a = HttpAnnounce {
        info_hash: InfoHash([0; 20]),
        peer_id: PeerId([0; 20]),
        port: 0,
        left: 0,
        event: Event::None,
        compact: true,
        no_peer_id: false,
        numwant: None,
        ip: None,
    };
    for pair in query.split(|&b| b == b'&').filter(|p| !p.is_empty()) {
        let (key, value) = match pair.iter().position(|&b| b == b'=') {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (pair, &b""[..]),
        };
        let value = percent_decode(value).ok_or("malformed percent-encoding")?;
        let number = || -> Option<u64> { std::str::from_utf8(&value).ok()?.parse().ok() };
        match key {
            b"info_hash" => info_hash = Some(twenty(&value, "info_hash must be 20 bytes")?),
            b"peer_id" => peer_id = Some(twenty(&value, "peer_id must be 20 bytes")?),
            b"port" => {
                port = Some(
                    number()
                        .and_then(|p| u16::try_from(p).ok())
                        .filter(|&p| p != 0)
                        .ok_or("invalid port")?,
                )
            }
            b"left" => a.left = number().ok_or("invalid left")?,
            b"event" => a.event = Event::from_http_name(&value),
            b"compact" => a.compact = value != b"0",
            b"no_peer_id" => a.no_peer_id = value == b"1",
            b"numwant" => a.numwant = number().map(|n| n.min(u32::MAX as u64) as u32),
            b"ip" => {
                a.ip = std::str::from_utf8(&value)
                    .ok()
                    .and_then(|s| s.parse().ok())
            }
            _ => {}
        }
    }
    a.info_hash = InfoHash(info_hash.ok_or("missing info_hash")?);
    a.peer_id = PeerId(peer_id.ok_or("missing peer_id")?);
    a.port = port.ok_or("missing port")?;
    Ok(a)
}

/// Splits a request head into method and target; `None` if it is not HTTP/1.x.
pub fn parse_request_line(head: &[u8]) -> Option<(&[u8], &[u8])> {
    let line_end = head.iter().position(|&b| b == b'\r' || b == b'\n')?;
    let mut parts = head[..line_end].split(|&b| b == b' ');
    let method = parts.next()?;
    let target = parts.next()?;
    let version = parts.next()?;
    version.starts_with(b"HTTP/1.").then_some((method, target))
}

fn encode(f: impl FnOnce(&mut Encoder) -> Result<(), bendy::encoding::Error>) -> Vec<u8> {
    let mut e = Encoder::new();
    match f(&mut e).and_then(|_| e.get_output()) {
        Ok(v) => v,
        // Only reachable through a programming error in the callers below.
        Err(_) => b"d14:failure reason14:encoding errore".to_vec(),
    }
}

/// `d14:failure reason...e`.
pub fn failure_body(reason: &str) -> Vec<u8> {
    encode(|e| e.emit_dict(|mut d| d.emit_pair(b"failure reason", reason)))
}

/// The bencoded announce response (keys in sorted order as bencode requires).
pub fn announce_body(
    reply: &SwarmReply,
    config: &ServerConfig,
    compact: bool,
    no_peer_id: bool,
) -> Vec<u8> {
    let mut v4 = Vec::new();
    let mut v6 = Vec::new();
    for (_, addr) in &reply.peers {
        match addr {
            SocketAddr::V4(_) => push_compact(*addr, &mut v4),
            SocketAddr::V6(_) => push_compact(*addr, &mut v6),
        }
    }
    let peer_list = |e: SingleItemEncoder| {
        e.emit_list(|l| {
            for (id, addr) in &reply.peers {
                l.emit_dict(|mut d| {
                    d.emit_pair(b"ip", addr.ip().to_string())?;
                    if !no_peer_id {
                        d.emit_pair_with(b"peer id", |e| e.emit_bytes(&id.0))?;
                    }
                    d.emit_pair(b"port", addr.port())
                })?;
            }
            Ok(())
        })
    };
    encode(|e| {
        e.emit_dict(|mut d| {
            d.emit_pair(b"complete", reply.complete)?;
            d.emit_pair(b"incomplete", reply.incomplete)?;
            d.emit_pair(b"interval", config.interval.as_secs())?;
            if let Some(min) = config.min_interval {
                d.emit_pair(b"min interval", min.as_secs())?;
            }
            if compact {
                d.emit_pair_with(b"peers", |e| e.emit_bytes(&v4))?;
                if !v6.is_empty() {
                    d.emit_pair_with(b"peers6", |e| e.emit_bytes(&v6))?;
                }
                Ok(())
            } else {
                d.emit_pair_with(b"peers", peer_list)
            }
        })
    })
}

/// Reads the request head (up to the blank line), bounded in size and time.
fn read_head(stream: &mut TcpStream) -> io::Result<Vec<u8>> {
    stream.set_read_timeout(Some(READ_TIMEOUT))?;
    let deadline = Instant::now() + REQUEST_DEADLINE;
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && !head.windows(2).any(|w| w == b"\n\n") {
        if head.len() >= MAX_REQUEST {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "request too large",
            ));
        }
        if Instant::now() >= deadline {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "request too slow"));
        }
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "closed"));
        }
        head.extend_from_slice(&buf[..n]);
    }
    Ok(head)
}

fn respond(stream: &mut TcpStream, status: &str, body: &[u8]) -> io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    stream.flush()
}

/// Serves one connection: one request, one response, close.
pub fn serve_connection(mut stream: TcpStream, swarms: &Mutex<Swarms>, config: &ServerConfig) {
    let _ = stream.set_write_timeout(Some(READ_TIMEOUT));
    let source = match stream.peer_addr() {
        Ok(a) => canonical(a),
        Err(_) => return,
    };
    let head = match read_head(&mut stream) {
        Ok(h) => h,
        Err(e) => {
            log::debug!("tracker: {source}: {e}");
            let _ = respond(&mut stream, "400 Bad Request", &failure_body("bad request"));
            return;
        }
    };
    let result = match parse_request_line(&head) {
        Some((b"GET", target)) => {
            let (path, query) = match target.iter().position(|&b| b == b'?') {
                Some(i) => (&target[..i], &target[i + 1..]),
                None => (target, &b""[..]),
            };
            if path == b"/announce" {
                Ok(handle_announce(query, source, swarms, config))
            } else {
                Err("404 Not Found")
            }
        }
        Some(_) => Err("405 Method Not Allowed"),
        None => Err("400 Bad Request"),
    };
    let _ = match result {
        Ok(body) => respond(&mut stream, "200 OK", &body),
        Err(status) => respond(&mut stream, status, &failure_body(status)),
    };
}

fn handle_announce(
    query: &[u8],
    source: SocketAddr,
    swarms: &Mutex<Swarms>,
    config: &ServerConfig,
) -> Vec<u8> {
    let a = match parse_announce_query(query) {
        Ok(a) => a,
        Err(reason) => return failure_body(reason),
    };
    // The announcing connection's address, unless a loopback client names another one.
    let ip = match a.ip {
        Some(ip) if source.ip().is_loopback() => ip,
        _ => source.ip(),
    };
    let peer = PeerAnnounce {
        info_hash: a.info_hash,
        peer_id: a.peer_id,
        addr: canonical(SocketAddr::new(ip, a.port)),
        left: a.left,
        event: a.event,
        numwant: a.numwant,
    };
    let reply = swarms.lock().announce(&peer, Instant::now(), |_| true);
    match reply {
        Ok(reply) => announce_body(&reply, config, a.compact, a.no_peer_id),
        Err(reason) => failure_body(reason),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tracker::response::parse_http_response;

    #[test]
    fn query_parsing_decodes_binary_fields() {
        let q = b"info_hash=%01%02%03%04%05%06%07%08%09%0a%0b%0c%0d%0e%0f%10%11%12%13%14&peer_id=-MB0100-abcdefghijkl&port=6881&left=5&event=started&compact=0&numwant=7&ip=127.0.0.9";
        let a = parse_announce_query(q).unwrap();
        assert_eq!(a.info_hash.0[19], 0x14);
        assert_eq!(&a.peer_id.0, b"-MB0100-abcdefghijkl");
        assert_eq!((a.port, a.left, a.event), (6881, 5, Event::Started));
        assert_eq!((a.compact, a.numwant), (false, Some(7)));
        assert_eq!(a.ip, Some("127.0.0.9".parse().unwrap()));
        assert_eq!(
            parse_announce_query(b"info_hash=abc&peer_id=x&port=1"),
            Err("info_hash must be 20 bytes")
        );
        assert!(parse_announce_query(b"info_hash=%zz").is_err());
    }

    #[test]
    fn request_line() {
        assert_eq!(
            parse_request_line(b"GET /announce?x=1 HTTP/1.1\r\nHost: a\r\n\r\n"),
            Some((&b"GET"[..], &b"/announce?x=1"[..]))
        );
        assert_eq!(parse_request_line(b"GET / SPDY\r\n\r\n"), None);
    }

    #[test]
    fn bodies_parse_with_the_client_parser() {
        let config = ServerConfig::default();
        let reply = SwarmReply {
            peers: vec![
                (PeerId([1; 20]), "127.0.0.1:10".parse().unwrap()),
                (PeerId([2; 20]), "[::1]:11".parse().unwrap()),
            ],
            complete: 1,
            incomplete: 2,
        };
        for compact in [true, false] {
            let r = parse_http_response(&announce_body(&reply, &config, compact, false)).unwrap();
            let want: Vec<SocketAddr> = reply.peers.iter().map(|p| p.1).collect();
            assert_eq!(r.peers, want);
            assert_eq!((r.complete, r.incomplete), (Some(1), Some(2)));
            assert_eq!(r.interval, config.interval);
        }
        assert!(matches!(
            parse_http_response(&failure_body("nope")),
            Err(crate::tracker::TrackerError::Failure(m)) if m == "nope"
        ));
    }
}
