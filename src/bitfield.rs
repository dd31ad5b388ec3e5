//! The set of pieces a peer (or we) have, in the BEP 3 `bitfield` message's bit order.
//!
//! BEP 3: "The high bit in the first byte corresponds to piece index 0. Bits that are cleared
//! indicate a missing piece, and set bits indicate a valid and available piece. Spare bits at
//! the end are set to zero." [`Bitfield::from_bytes`] enforces both the exact length
//! (`ceil(num_pieces / 8)` bytes) and the zero spare bits, so a peer thread can turn a received
//! `bitfield` payload into a [`Bitfield`] or drop the connection with a clear [`WireError`].
//!
//! Used by the wire code (parsing / sending `bitfield`), the picker (availability, our own
//! pieces) and the coordinator. Pure: no I/O. Indices out of range never panic: `has` answers
//! false and `set`/`clear` do nothing.

use crate::wire::WireError;

/// A fixed-size set of piece indices `0..len()`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Bitfield {
    bytes: Vec<u8>,
    num_pieces: u32,
    /// Number of set bits, kept up to date so `count`/`is_complete` are O(1).
    ones: u32,
}

/// The mask selecting piece `i`'s bit inside its byte (high bit first, BEP 3).
fn mask(i: u32) -> u8 {
    0x80 >> (i % 8)
}

/// Bytes needed for `num_pieces` bits.
pub fn byte_len(num_pieces: u32) -> usize {
    (num_pieces as usize).div_ceil(8)
}

impl Bitfield {
    /// An empty set able to hold pieces `0..num_pieces`.
    pub fn new(num_pieces: u32) -> Bitfield {
        Bitfield {
            bytes: vec![0; byte_len(num_pieces)],
            num_pieces,
            ones: 0,
        }
    }

    /// A set holding every piece `0..num_pieces` (a seeder's bitfield).
    pub fn full(num_pieces: u32) -> Bitfield {
        let mut b = Bitfield::new(num_pieces);
        for i in 0..num_pieces {
            b.set(i);
        }
        b
    }

    /// Parses a `bitfield` payload for a torrent of `num_pieces` pieces.
    ///
    /// Errors: [`WireError::BadBitfieldLength`] unless `bytes.len() == ceil(num_pieces/8)`;
    /// [`WireError::BitfieldSpareBits`] when a bit past the last piece is set (BEP 3 says
    /// spare bits are zero; a peer that sets them is broken or lying).
    pub fn from_bytes(bytes: &[u8], num_pieces: u32) -> Result<Bitfield, WireError> {
        let expected = byte_len(num_pieces);
        if bytes.len() != expected {
            return Err(WireError::BadBitfieldLength {
                len: bytes.len(),
                expected,
            });
        }
        let spare = (expected * 8) as u64 - num_pieces as u64;
        if spare > 0 {
            let last = bytes[expected - 1];
            let spare_mask = (1u8 << spare) - 1; // spare < 8 here
            if last & spare_mask != 0 {
                return Err(WireError::BitfieldSpareBits);
            }
        }
        let ones = bytes.iter().map(|b| b.count_ones()).sum();
        Ok(Bitfield {
            bytes: bytes.to_vec(),
            num_pieces,
            ones,
        })
    }

    /// True when piece `i` is in the set (false for `i >= len()`).
    pub fn has(&self, i: u32) -> bool {
        i < self.num_pieces && self.bytes[(i / 8) as usize] & mask(i) != 0
    }

    /// Adds piece `i`; returns true if it was not already set. Ignores `i >= len()`.
    pub fn set(&mut self, i: u32) -> bool {
        if i >= self.num_pieces || self.has(i) {
            return false;
        }
        self.bytes[(i / 8) as usize] |= mask(i);
        self.ones += 1;
        true
    }

    /// Removes piece `i`; returns true if it was set. Ignores `i >= len()`.
    pub fn clear(&mut self, i: u32) -> bool {
        if !self.has(i) {
            return false;
        }
        self.bytes[(i / 8) as usize] &= !mask(i);
        self.ones -= 1;
        true
    }

    /// Number of pieces in the set.
    pub fn count(&self) -> u32 {
        self.ones
    }

    /// Number of pieces the set can hold (the torrent's piece count).
    pub fn len(&self) -> u32 {
        self.num_pieces
    }

    /// True for a torrent with no pieces.
    pub fn is_empty(&self) -> bool {
        self.num_pieces == 0
    }

    /// True when every piece is set (a seeder).
    pub fn is_complete(&self) -> bool {
        self.ones == self.num_pieces
    }

    /// True when no piece is set.
    pub fn none_set(&self) -> bool {
        self.ones == 0
    }

    /// The wire form: `ceil(len()/8)` bytes, spare bits zero (BEP 3 `bitfield` payload).
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// True when this set has a piece that `other` lacks (a byte at a time, not a bit).
    /// Both sets must be for the same torrent (same length).
    pub fn has_any_not_in(&self, other: &Bitfield) -> bool {
        debug_assert_eq!(self.num_pieces, other.num_pieces);
        self.bytes
            .iter()
            .zip(&other.bytes)
            .any(|(mine, theirs)| mine & !theirs != 0)
    }

    /// The set pieces in increasing order.
    pub fn iter_set(&self) -> impl Iterator<Item = u32> + '_ {
        self.bytes
            .iter()
            .enumerate()
            .filter(|(_, &b)| b != 0)
            .flat_map(|(byte_index, &b)| {
                (0..8u32).filter_map(move |bit| {
                    if b & (0x80 >> bit) != 0 {
                        Some(byte_index as u32 * 8 + bit)
                    } else {
                        None
                    }
                })
            })
    }
}

impl std::fmt::Debug for Bitfield {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Bitfield({}/{} ", self.ones, self.num_pieces)?;
        // Short sets print fully; long ones only the first 64 bits.
        for i in 0..self.num_pieces.min(64) {
            f.write_str(if self.has(i) { "1" } else { "0" })?;
        }
        if self.num_pieces > 64 {
            f.write_str("…")?;
        }
        f.write_str(")")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bit_order_is_high_bit_first() {
        let mut b = Bitfield::new(10);
        assert!(b.set(0));
        assert!(b.set(9));
        // piece 0 -> 0x80 of byte 0; piece 9 -> 0x40 of byte 1
        assert_eq!(b.as_bytes(), &[0x80, 0x40]);
        assert!(b.has(0) && b.has(9) && !b.has(1) && !b.has(8));
        assert_eq!(b.count(), 2);
        assert!(!b.set(0), "setting twice reports no change");
        assert_eq!(b.count(), 2);
        assert!(b.clear(0));
        assert!(!b.clear(0));
        assert_eq!(b.as_bytes(), &[0x00, 0x40]);
        assert_eq!(b.count(), 1);
    }

    #[test]
    fn out_of_range_is_harmless() {
        let mut b = Bitfield::new(3);
        assert!(!b.set(3));
        assert!(!b.set(u32::MAX));
        assert!(!b.has(3));
        assert!(!b.clear(100));
        assert_eq!(b.count(), 0);
        assert_eq!(b.as_bytes(), &[0]);
    }

    #[test]
    fn from_bytes_checks_length_and_spare_bits() {
        // 10 pieces need 2 bytes; the low 6 bits of byte 1 are spare.
        let b = Bitfield::from_bytes(&[0xff, 0xc0], 10).unwrap();
        assert!(b.is_complete());
        assert_eq!(b.count(), 10);
        assert_eq!(
            Bitfield::from_bytes(&[0xff], 10),
            Err(WireError::BadBitfieldLength {
                len: 1,
                expected: 2
            })
        );
        assert_eq!(
            Bitfield::from_bytes(&[0xff, 0xc0, 0], 10),
            Err(WireError::BadBitfieldLength {
                len: 3,
                expected: 2
            })
        );
        assert_eq!(
            Bitfield::from_bytes(&[0xff, 0xe0], 10),
            Err(WireError::BitfieldSpareBits)
        );
        assert_eq!(
            Bitfield::from_bytes(&[0xff, 0x01], 10),
            Err(WireError::BitfieldSpareBits)
        );
        // A multiple of 8 has no spare bits: every bit may be set.
        assert!(Bitfield::from_bytes(&[0xff], 8).unwrap().is_complete());
        // Zero pieces: zero bytes.
        let empty = Bitfield::from_bytes(&[], 0).unwrap();
        assert!(empty.is_empty() && empty.is_complete());
    }

    #[test]
    fn iter_set_lists_pieces_in_order() {
        let b = Bitfield::from_bytes(&[0b1010_0000, 0, 0b0000_0001], 24).unwrap();
        assert_eq!(b.iter_set().collect::<Vec<_>>(), vec![0, 2, 23]);
        assert_eq!(Bitfield::new(17).iter_set().count(), 0);
        let full = Bitfield::full(17);
        assert_eq!(
            full.iter_set().collect::<Vec<_>>(),
            (0..17).collect::<Vec<_>>()
        );
        assert_eq!(full.as_bytes(), &[0xff, 0xff, 0x80]);
        assert!(full.is_complete());
    }

    #[test]
    fn has_any_not_in_compares_whole_sets() {
        let a = Bitfield::from_bytes(&[0b1010_0000, 0b1000_0000], 9).unwrap();
        let b = Bitfield::from_bytes(&[0b1110_0000, 0], 9).unwrap();
        assert!(a.has_any_not_in(&b)); // piece 8
        assert!(b.has_any_not_in(&a)); // piece 1
        assert!(!a.has_any_not_in(&Bitfield::full(9)));
        assert!(!Bitfield::new(9).has_any_not_in(&a));
        assert!(!a.has_any_not_in(&a));
    }

    #[test]
    fn round_trip_through_bytes() {
        let mut b = Bitfield::new(13);
        for i in [1, 4, 7, 12] {
            b.set(i);
        }
        let back = Bitfield::from_bytes(b.as_bytes(), 13).unwrap();
        assert_eq!(back, b);
        assert_eq!(back.count(), 4);
    }
}
