//! Identifiers shared by every part of the client: the torrent's info hash and our peer id.
//!
//! Peer ids follow the Azureus style described in BEP 20: `-MB0100-` followed by 12 random
//! bytes. Randomness comes from the standard library's per-process hasher seed plus the clock,
//! so no random-number crate is needed.

use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::{BuildHasher, Hasher};

/// The SHA-1 of a torrent's bencoded `info` dictionary (BEP 3): the torrent's identity.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InfoHash(pub [u8; 20]);

/// The 20-byte id a client announces to trackers and sends in handshakes (BEP 3, BEP 20).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PeerId(pub [u8; 20]);

/// Lowercase hex of any byte string.
pub fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl InfoHash {
    pub fn hex(&self) -> String {
        to_hex(&self.0)
    }

    /// Parses 40 hex digits.
    pub fn from_hex(s: &str) -> Option<InfoHash> {
        let bytes = s.as_bytes();
        if bytes.len() != 40 {
            return None;
        }
        let mut out = [0u8; 20];
        for (i, pair) in bytes.chunks(2).enumerate() {
            let hi = (pair[0] as char).to_digit(16)?;
            let lo = (pair[1] as char).to_digit(16)?;
            out[i] = (hi * 16 + lo) as u8;
        }
        Some(InfoHash(out))
    }
}

impl fmt::Debug for InfoHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "InfoHash({})", self.hex())
    }
}

impl fmt::Display for InfoHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.hex())
    }
}

impl PeerId {
    /// `-MB` + two-digit major + two-digit minor + `-` + 12 random bytes.
    pub fn generate() -> PeerId {
        let mut id = [0u8; 20];
        let major: u32 = env!("CARGO_PKG_VERSION_MAJOR").parse().unwrap_or(0);
        let minor: u32 = env!("CARGO_PKG_VERSION_MINOR").parse().unwrap_or(0);
        let prefix = format!("-MB{:02}{:02}-", major % 100, minor % 100);
        id[..8].copy_from_slice(prefix.as_bytes());
        random_bytes(&mut id[8..]);
        PeerId(id)
    }
}

impl fmt::Debug for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PeerId({})", String::from_utf8_lossy(&self.0))
    }
}

/// Fills `out` with unpredictable bytes (not cryptographic: ids, transaction ids, shuffles).
pub fn random_bytes(out: &mut [u8]) {
    for chunk in out.chunks_mut(8) {
        let word = random_u64().to_le_bytes();
        chunk.copy_from_slice(&word[..chunk.len()]);
    }
}

/// One unpredictable 64-bit value: std's randomly keyed SipHash over a counter and the clock.
pub fn random_u64() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    h.write_u64(nanos);
    h.finish()
}

/// A uniformly distributed index below `n` (n > 0).
pub fn random_below(n: usize) -> usize {
    (random_u64() % n.max(1) as u64) as usize
}

/// Fisher–Yates shuffle using [`random_below`].
pub fn shuffle<T>(items: &mut [T]) {
    for i in (1..items.len()).rev() {
        items.swap(i, random_below(i + 1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_id_has_bep20_prefix_and_random_tail() {
        let a = PeerId::generate();
        let b = PeerId::generate();
        assert_eq!(&a.0[..3], b"-MB");
        assert_eq!(a.0[7], b'-');
        assert!(a.0[3..7].iter().all(u8::is_ascii_digit));
        assert_ne!(a.0[8..], b.0[8..]);
    }

    #[test]
    fn info_hash_hex_round_trip() {
        let h = InfoHash([0xab; 20]);
        assert_eq!(InfoHash::from_hex(&h.hex()), Some(h));
        assert_eq!(InfoHash::from_hex("zz"), None);
    }
}
