//! The built-in tracker's UDP front end (BEP 15): connect, announce and scrape.
//!
//! Run by `crate::tracker_server` on its own thread until the shutdown channel disconnects.
//! Connection ids are a keyed hash of the client's address and the current minute, so they
//! need no table and stay valid for one to two minutes. Announces only return peers of the
//! asker's address family, as BEP 15 requires.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossbeam_channel::{Receiver, TryRecvError};
use parking_lot::Mutex;

use super::swarm::{PeerAnnounce, Swarms};
use super::ServerConfig;
use crate::tracker::udp_codec::{self, canonical, Family, UdpRequest, MAX_PACKET};

/// How often the loop checks for shutdown while idle.
const POLL: Duration = Duration::from_millis(100);

struct ConnectionIds {
    key: RandomState,
}

impl ConnectionIds {
    fn minute() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() / 60)
            .unwrap_or(0)
    }

    fn make(&self, client: SocketAddr, minute: u64) -> u64 {
        self.key.hash_one((client, minute))
    }

    fn issue(&self, client: SocketAddr) -> u64 {
        self.make(client, Self::minute())
    }

    fn valid(&self, client: SocketAddr, id: u64) -> bool {
        let now = Self::minute();
        id == self.make(client, now) || id == self.make(client, now.wrapping_sub(1))
    }
}

/// Answers one datagram; `None` when it deserves no answer.
fn handle(
    packet: &[u8],
    from: SocketAddr,
    ids: &ConnectionIds,
    swarms: &Mutex<Swarms>,
    config: &ServerConfig,
) -> Option<Vec<u8>> {
    let request = match udp_codec::decode_request(packet) {
        Ok(r) => r,
        Err((Some(tid), why)) => return Some(udp_codec::encode_error(tid, why)),
        Err((None, _)) => return None,
    };
    match request {
        UdpRequest::Connect { transaction_id } => Some(udp_codec::encode_connect_response(
            transaction_id,
            ids.issue(from),
        )),
        UdpRequest::Announce {
            connection_id,
            transaction_id,
            info_hash,
            peer_id,
            left,
            event,
            ip,
            num_want,
            port,
            ..
        } => {
            if !ids.valid(from, connection_id) {
                return Some(udp_codec::encode_error(transaction_id, "bad connection id"));
            }
            if port == 0 {
                return Some(udp_codec::encode_error(transaction_id, "invalid port"));
            }
            let source = canonical(from);
            let family = Family::of(&source);
            let peer_ip = match ip {
                Some(v4) if source.ip().is_loopback() && family == Family::V4 => v4.into(),
                _ => source.ip(),
            };
            let announce = PeerAnnounce {
                info_hash,
                peer_id,
                addr: SocketAddr::new(peer_ip, port),
                left,
                event,
                numwant: num_want,
            };
            let reply = swarms
                .lock()
                .announce(&announce, Instant::now(), |a| Family::of(a) == family);
            Some(match reply {
                Ok(r) => {
                    let peers: Vec<SocketAddr> = r.peers.iter().map(|p| p.1).collect();
                    udp_codec::encode_announce_response(
                        transaction_id,
                        config.interval,
                        r.incomplete,
                        r.complete,
                        &peers,
                    )
                }
                Err(why) => udp_codec::encode_error(transaction_id, why),
            })
        }
        UdpRequest::Scrape {
            connection_id,
            transaction_id,
            info_hashes,
        } => {
            if !ids.valid(from, connection_id) {
                return Some(udp_codec::encode_error(transaction_id, "bad connection id"));
            }
            let now = Instant::now();
            let mut swarms = swarms.lock();
            let stats: Vec<(u32, u32, u32)> =
                info_hashes.iter().map(|h| swarms.scrape(h, now)).collect();
            Some(udp_codec::encode_scrape_response(transaction_id, &stats))
        }
    }
}

/// Serves datagrams until `shutdown` disconnects.
pub fn serve(
    socket: UdpSocket,
    swarms: &Mutex<Swarms>,
    config: &ServerConfig,
    shutdown: Receiver<()>,
) -> io::Result<()> {
    socket.set_read_timeout(Some(POLL))?;
    let ids = ConnectionIds {
        key: RandomState::new(),
    };
    let mut buf = vec![0u8; MAX_PACKET];
    while let Err(TryRecvError::Empty) = shutdown.try_recv() {
        let (n, from) = match socket.recv_from(&mut buf) {
            Ok(x) => x,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) =>
            {
                continue
            }
            // e.g. ICMP errors from an earlier send to a vanished client: not fatal.
            Err(e) => {
                log::debug!("tracker udp: {e}");
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        if let Some(reply) = handle(&buf[..n], from, &ids, swarms, config) {
            if let Err(e) = socket.send_to(&reply, from) {
                log::debug!("tracker udp: reply to {from}: {e}");
            }
        }
    }
    Ok(())
}
