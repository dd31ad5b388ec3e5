//! The choker (BEP 3 "choking algorithm", in the spirit of the reference clients).
//!
//! Every [`INTERVAL`] the coordinator asks [`decide`] who may download from us:
//! - while downloading, the `slots` interested peers that upload to us fastest (reciprocation);
//! - while seeding, round robin: a peer keeps its slot for [`SEED_TURN`], then yields it to
//!   the interested peer that has waited longest, so every downloader gets a fair share;
//! - plus one optimistic unchoke, a random interested peer outside those slots, rotated every
//!   [`OPTIMISTIC_INTERVAL`], so newcomers get a chance to prove themselves.
//!
//! Pure: no I/O, no clock; the caller passes rates and whether to rotate.

use crate::peer::PeerKey;
use std::time::Duration;

pub const INTERVAL: Duration = Duration::from_secs(10);
pub const OPTIMISTIC_INTERVAL: Duration = Duration::from_secs(30);
/// How long a seeding slot lasts before it rotates to a waiting peer.
pub const SEED_TURN: Duration = Duration::from_secs(30);

/// What the choker knows about one connected peer.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub key: PeerKey,
    pub interested: bool,
    /// Bytes per second we receive from it.
    pub download_rate: f64,
    /// Bytes per second we send to it.
    pub upload_rate: f64,
    /// It holds the optimistic slot now.
    pub optimistic: bool,
    pub unchoked: bool,
    /// How long it has been in its current state (unchoked, or choked).
    pub since: Duration,
}

#[derive(Debug, Default, PartialEq)]
pub struct Decision {
    /// Every peer to unchoke (regular slots plus the optimistic one).
    pub unchoked: Vec<PeerKey>,
    pub optimistic: Option<PeerKey>,
}

/// Picks the unchoked set. `rotate_optimistic` moves the optimistic slot to a new random peer.
pub fn decide(
    peers: &[Candidate],
    slots: usize,
    seeding: bool,
    rotate_optimistic: bool,
) -> Decision {
    let mut interested: Vec<&Candidate> = peers.iter().filter(|p| p.interested).collect();
    if seeding {
        // Round robin: peers mid-turn keep their slot, then those that waited longest, and
        // peers whose turn is over go last.
        let rank = |p: &Candidate| match (p.unchoked && !p.optimistic, p.since < SEED_TURN) {
            (true, true) => (0, std::cmp::Reverse(p.since)),
            (false, _) => (1, std::cmp::Reverse(p.since)),
            (true, false) => (2, std::cmp::Reverse(p.since)),
        };
        interested.sort_by_key(|p| rank(p));
    } else {
        // Fastest uploaders to us first; ties keep peers already unchoked, to avoid churn.
        interested.sort_by(|a, b| {
            b.download_rate
                .partial_cmp(&a.download_rate)
                .unwrap_or(std::cmp::Ordering::Equal)
                .then(b.unchoked.cmp(&a.unchoked))
        });
    }
    let mut unchoked: Vec<PeerKey> = interested.iter().take(slots).map(|p| p.key).collect();
    let rest: Vec<&Candidate> = interested
        .iter()
        .filter(|p| !unchoked.contains(&p.key))
        .copied()
        .collect();
    let current = rest.iter().find(|p| p.optimistic).map(|p| p.key);
    let optimistic = match current {
        Some(k) if !rotate_optimistic => Some(k),
        _ if rest.is_empty() => None,
        _ => Some(rest[crate::ids::random_below(rest.len())].key),
    };
    if let Some(k) = optimistic {
        unchoked.push(k);
    }
    Decision {
        unchoked,
        optimistic,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(key: PeerKey, interested: bool, down: f64, up: f64) -> Candidate {
        Candidate {
            key,
            interested,
            download_rate: down,
            upload_rate: up,
            optimistic: false,
            unchoked: false,
            since: Duration::ZERO,
        }
    }

    #[test]
    fn fastest_uploaders_to_us_win_slots_while_downloading() {
        let peers = vec![
            peer(1, true, 10.0, 0.0),
            peer(2, true, 50.0, 0.0),
            peer(3, false, 99.0, 0.0),
            peer(4, true, 30.0, 0.0),
        ];
        let d = decide(&peers, 2, false, true);
        assert_eq!(&d.unchoked[..2], &[2, 4]);
        // the optimistic slot goes to the remaining interested peer
        assert_eq!(d.optimistic, Some(1));
        assert!(!d.unchoked.contains(&3));
    }

    #[test]
    fn seeding_rotates_slots_so_every_peer_gets_a_turn() {
        let mut peers: Vec<Candidate> = (0..6).map(|k| peer(k, true, 0.0, 0.0)).collect();
        let mut served = std::collections::HashSet::new();
        // Twelve rounds of ten seconds with two regular slots, no optimistic rotation.
        for _ in 0..12 {
            let d = decide(&peers, 2, true, false);
            let regular: Vec<PeerKey> = d
                .unchoked
                .iter()
                .copied()
                .filter(|k| Some(*k) != d.optimistic)
                .collect();
            assert_eq!(regular.len(), 2);
            served.extend(regular.iter().copied());
            for p in peers.iter_mut() {
                let now_unchoked = d.unchoked.contains(&p.key);
                p.since = if now_unchoked == p.unchoked {
                    p.since + INTERVAL
                } else {
                    INTERVAL
                };
                p.unchoked = now_unchoked;
                p.optimistic = d.optimistic == Some(p.key);
            }
        }
        assert_eq!(
            served.len(),
            6,
            "every interested peer had a regular slot: {served:?}"
        );
    }

    #[test]
    fn a_seeding_slot_is_kept_for_its_turn() {
        let mut peers: Vec<Candidate> = (0..3).map(|k| peer(k, true, 0.0, 0.0)).collect();
        peers[2].unchoked = true;
        peers[2].since = Duration::from_secs(10);
        peers[0].since = Duration::from_secs(100);
        let d = decide(&peers, 1, true, false);
        assert_eq!(d.unchoked[0], 2);
        peers[2].since = SEED_TURN;
        let d = decide(&peers, 1, true, false);
        assert_eq!(
            d.unchoked[0], 0,
            "the turn is over: the longest-waiting peer is next"
        );
    }

    #[test]
    fn optimistic_slot_is_kept_until_rotation_and_moves_between_peers() {
        let mut peers: Vec<Candidate> = (0..6).map(|k| peer(k, true, 0.0, 0.0)).collect();
        peers[0].download_rate = 100.0;
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200 {
            let d = decide(&peers, 1, false, true);
            let o = d.optimistic.unwrap();
            assert_ne!(o, 0);
            seen.insert(o);
            for p in peers.iter_mut() {
                p.optimistic = p.key == o;
            }
            assert_eq!(decide(&peers, 1, false, false).optimistic, Some(o));
        }
        assert!(seen.len() > 1);
    }
}
