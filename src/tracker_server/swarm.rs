//! The built-in tracker's memory: which peers announced which torrent, and when.
//!
//! Pure state (the caller passes the clock), shared by the HTTP and UDP front ends of
//! `crate::tracker_server` behind one mutex. Peers are keyed by peer id per info hash; a
//! `stopped` event removes one, silence longer than the time-to-live expires it. Sizes are
//! capped so announces from strangers cannot grow memory without bound.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::ids::{random_below, InfoHash, PeerId};
use crate::tracker::Event;

/// At most this many torrents are tracked.
pub const MAX_TORRENTS: usize = 10_000;
/// At most this many peers per torrent.
pub const MAX_PEERS_PER_TORRENT: usize = 10_000;
/// Upper bound on the peers returned by one announce, whatever `numwant` says.
pub const MAX_NUMWANT: usize = 200;
/// Peers returned when the request does not say.
pub const DEFAULT_NUMWANT: usize = 50;

/// One announce as the tracker sees it.
#[derive(Clone, Debug)]
pub struct PeerAnnounce {
    pub info_hash: InfoHash,
    pub peer_id: PeerId,
    /// Where other peers should connect to.
    pub addr: SocketAddr,
    pub left: u64,
    pub event: Event,
    pub numwant: Option<u32>,
}

/// The answer to an announce.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SwarmReply {
    /// Other peers (never the asker), at most numwant.
    pub peers: Vec<(PeerId, SocketAddr)>,
    /// Seeders.
    pub complete: u32,
    /// Leechers.
    pub incomplete: u32,
}

#[derive(Debug)]
struct Peer {
    addr: SocketAddr,
    left: u64,
    last_seen: Instant,
}

#[derive(Debug, Default)]
struct Torrent {
    peers: HashMap<PeerId, Peer>,
    /// How many `completed` events were seen (scrape's "downloaded").
    completed: u32,
}

impl Torrent {
    fn expire(&mut self, now: Instant, ttl: Duration) {
        self.peers
            .retain(|_, p| now.saturating_duration_since(p.last_seen) <= ttl);
    }

    fn counts(&self) -> (u32, u32) {
        let seeds = self.peers.values().filter(|p| p.left == 0).count() as u32;
        (seeds, self.peers.len() as u32 - seeds)
    }
}

/// All torrents the tracker knows about.
#[derive(Debug)]
pub struct Swarms {
    torrents: HashMap<InfoHash, Torrent>,
    ttl: Duration,
    last_sweep: Option<Instant>,
}

impl Swarms {
    /// `ttl`: how long a peer stays listed after its last announce.
    pub fn new(ttl: Duration) -> Swarms {
        Swarms {
            torrents: HashMap::new(),
            ttl,
            last_sweep: None,
        }
    }

    /// Drops expired peers of every torrent and empty torrents; at most once per ttl.
    fn sweep(&mut self, now: Instant) {
        if self
            .last_sweep
            .is_some_and(|t| now.saturating_duration_since(t) < self.ttl)
        {
            return;
        }
        self.last_sweep = Some(now);
        let ttl = self.ttl;
        self.torrents.retain(|_, t| {
            t.expire(now, ttl);
            !t.peers.is_empty()
        });
    }

    /// Records an announce and picks peers for the asker among those `wanted` accepts
    /// (the UDP front end wants only the asker's address family).
    pub fn announce(
        &mut self,
        a: &PeerAnnounce,
        now: Instant,
        wanted: impl Fn(&SocketAddr) -> bool,
    ) -> Result<SwarmReply, &'static str> {
        self.sweep(now);
        if !self.torrents.contains_key(&a.info_hash) {
            if a.event == Event::Stopped {
                return Ok(SwarmReply::default());
            }
            if self.torrents.len() >= MAX_TORRENTS {
                return Err("tracker is full (too many torrents)");
            }
        }
        let ttl = self.ttl;
        let torrent = self.torrents.entry(a.info_hash).or_default();
        torrent.expire(now, ttl);
        if a.event == Event::Stopped {
            torrent.peers.remove(&a.peer_id);
        } else {
            if !torrent.peers.contains_key(&a.peer_id)
                && torrent.peers.len() >= MAX_PEERS_PER_TORRENT
            {
                return Err("tracker is full (too many peers in this swarm)");
            }
            if a.event == Event::Completed {
                torrent.completed = torrent.completed.saturating_add(1);
            }
            torrent.peers.insert(
                a.peer_id,
                Peer {
                    addr: a.addr,
                    left: a.left,
                    last_seen: now,
                },
            );
        }
        let (complete, incomplete) = torrent.counts();
        let mut peers: Vec<(PeerId, SocketAddr)> = if a.event == Event::Stopped {
            Vec::new()
        } else {
            torrent
                .peers
                .iter()
                .filter(|(id, p)| **id != a.peer_id && p.addr != a.addr && wanted(&p.addr))
                .map(|(id, p)| (*id, p.addr))
                .collect()
        };
        let want = a
            .numwant
            .map_or(DEFAULT_NUMWANT, |n| n as usize)
            .min(MAX_NUMWANT);
        // Partial Fisher–Yates: a random `want`-subset at the front.
        let take = want.min(peers.len());
        for i in 0..take {
            let j = i + random_below(peers.len() - i);
            peers.swap(i, j);
        }
        peers.truncate(take);
        if torrent.peers.is_empty() {
            self.torrents.remove(&a.info_hash);
        }
        Ok(SwarmReply {
            peers,
            complete,
            incomplete,
        })
    }

    /// (seeders, completed, leechers) of one torrent, for scrape.
    pub fn scrape(&mut self, info_hash: &InfoHash, now: Instant) -> (u32, u32, u32) {
        let ttl = self.ttl;
        match self.torrents.get_mut(info_hash) {
            Some(t) => {
                t.expire(now, ttl);
                let (s, l) = t.counts();
                (s, t.completed, l)
            }
            None => (0, 0, 0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ann(id: u8, port: u16, event: Event) -> PeerAnnounce {
        PeerAnnounce {
            info_hash: InfoHash([1; 20]),
            peer_id: PeerId([id; 20]),
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            left: 10,
            event,
            numwant: None,
        }
    }

    #[test]
    fn peers_see_each_other_not_themselves_and_stopped_removes() {
        let mut s = Swarms::new(Duration::from_secs(60));
        let now = Instant::now();
        let r = s
            .announce(&ann(1, 1001, Event::Started), now, |_| true)
            .unwrap();
        assert!(r.peers.is_empty());
        let r = s
            .announce(&ann(2, 1002, Event::Started), now, |_| true)
            .unwrap();
        assert_eq!(
            r.peers,
            vec![(PeerId([1; 20]), "127.0.0.1:1001".parse().unwrap())]
        );
        assert_eq!((r.complete, r.incomplete), (0, 2));
        s.announce(&ann(1, 1001, Event::Stopped), now, |_| true)
            .unwrap();
        let r = s
            .announce(&ann(2, 1002, Event::None), now, |_| true)
            .unwrap();
        assert!(r.peers.is_empty());
        assert_eq!(r.incomplete, 1);
    }

    #[test]
    fn silent_peers_expire_and_numwant_is_respected() {
        let mut s = Swarms::new(Duration::from_secs(10));
        let t0 = Instant::now();
        for i in 1..=20u8 {
            s.announce(&ann(i, 1000 + i as u16, Event::Started), t0, |_| true)
                .unwrap();
        }
        let mut a = ann(100, 2000, Event::None);
        a.numwant = Some(5);
        let r = s.announce(&a, t0, |_| true).unwrap();
        assert_eq!(r.peers.len(), 5);
        // 11 s later only the asker itself has announced recently.
        let r = s
            .announce(&a, t0 + Duration::from_secs(11), |_| true)
            .unwrap();
        assert!(r.peers.is_empty());
        assert_eq!(r.incomplete, 1);
        assert_eq!(
            s.scrape(&InfoHash([1; 20]), t0 + Duration::from_secs(11)),
            (0, 0, 1)
        );
    }
}
