//! The peer wire protocol codec: handshake and length-prefixed messages (BEP 3), plus the
//! `port` message (BEP 5) and the `extended` message id 20 (BEP 10).
//!
//! Pure: no I/O. The peer thread owns the socket and does the `read_exact` calls; this module
//! only turns bytes into [`Message`]s and back. A reader thread decodes like this, reusing one
//! buffer for the whole connection so no message allocates:
//!
//! ```
//! # use minibt::wire::{check_frame_len, decode_frame, Limits, Message, WireError};
//! # fn read_one<'b>(sock: &mut impl std::io::Read, limits: &Limits, buf: &'b mut Vec<u8>)
//! #     -> Result<Message<'b>, Box<dyn std::error::Error>> {
//! let mut prefix = [0u8; 4];
//! sock.read_exact(&mut prefix)?;
//! // Refuse absurd prefixes BEFORE growing the buffer (a peer may claim 4 GiB).
//! let len = check_frame_len(u32::from_be_bytes(prefix), limits)?;
//! buf.resize(len, 0);
//! sock.read_exact(buf)?;
//! match decode_frame(buf) {
//!     Err(WireError::UnknownMessage(_id)) => Ok(Message::KeepAlive), // ignorable, see below
//!     other => Ok(other?),
//! }
//! # }
//! ```
//!
//! Frames (BEP 3): `<length: u32 BE><id: u8><payload>`; a length of 0 is a keep-alive.
//! [`decode_frame`] checks the exact payload length of every fixed-size message and the minimum
//! length of variable ones; it does not know the torrent, so the caller checks piece indices,
//! block ranges (see [`crate::layout::Layout::range_in_piece`] and [`Limits::check_request`])
//! and bitfield contents ([`crate::bitfield::Bitfield::from_bytes`]).
//!
//! Senders append whole messages with [`encode`], or for `piece` write the 13-byte header from
//! [`encode_piece_header`] and then the block straight from storage, with no copy.

use crate::ids::{InfoHash, PeerId};
use std::fmt;

/// The protocol string of the BEP 3 handshake, preceded on the wire by its length, 19.
pub const PROTOCOL: &[u8; 19] = b"BitTorrent protocol";

/// Length of a handshake: 1 + 19 + 8 reserved + 20 info hash + 20 peer id.
pub const HANDSHAKE_LEN: usize = 68;

/// Largest block we request or serve, and the largest `piece` payload we accept. 16 KiB is the
/// norm (BEP 3); some clients request up to 128 KiB, so we accept that much.
pub const MAX_BLOCK_LEN: u32 = 128 * 1024;

/// Largest `extended` (BEP 10) payload accepted, including the extended-message id byte.
/// BEP 10 handshakes are small dictionaries and BEP 9 metadata pieces are 16 KiB plus a small
/// dictionary, so 1 MiB is generous while still bounding what one peer can make us buffer.
pub const MAX_EXTENDED_LEN: usize = 1024 * 1024;

/// Message ids (BEP 3; `PORT` from BEP 5; `EXTENDED` from BEP 10).
pub mod id {
    pub const CHOKE: u8 = 0;
    pub const UNCHOKE: u8 = 1;
    pub const INTERESTED: u8 = 2;
    pub const NOT_INTERESTED: u8 = 3;
    pub const HAVE: u8 = 4;
    pub const BITFIELD: u8 = 5;
    pub const REQUEST: u8 = 6;
    pub const PIECE: u8 = 7;
    pub const CANCEL: u8 = 8;
    pub const PORT: u8 = 9;
    pub const EXTENDED: u8 = 20;
}

/// Everything that can be wrong with bytes a peer sent. Every variant is a protocol
/// violation that should end the connection, except [`WireError::UnknownMessage`]
/// (see [`WireError::is_ignorable`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WireError {
    /// Handshake: the first byte is not 19 or the next 19 bytes are not
    /// `BitTorrent protocol` (BEP 3). Nothing else speaks this protocol.
    BadProtocol,
    /// A length prefix larger than any legal frame for this torrent (see
    /// [`Limits::max_frame_len`]). Raised before anything is allocated.
    FrameTooLong { len: u32, max: usize },
    /// The payload length does not fit message `id`: fixed-size messages must match exactly
    /// (`have` 4 bytes, `request`/`cancel` 12, `port` 2, choke..not-interested 0) and
    /// `piece` needs at least its 8-byte header, `extended` at least its 1-byte id.
    /// `len` is the payload length (the frame body without the id byte).
    BadLength { id: u8, len: usize },
    /// An id this codec does not know. BEP 3 asks clients to ignore messages they do not
    /// understand only when an extension negotiated them, but dropping unknown ids is the
    /// common, forward-compatible practice: the frame was well formed and fully read, so the
    /// caller may skip it and carry on.
    UnknownMessage(u8),
    /// A `bitfield` whose length is not `ceil(num_pieces / 8)` bytes (BEP 3).
    BadBitfieldLength { len: usize, expected: usize },
    /// A `bitfield` with one of the spare bits past the last piece set (BEP 3: spare bits
    /// are zero).
    BitfieldSpareBits,
    /// A `request` or `piece` block longer than [`Limits::max_block_len`].
    BlockTooLong { len: u32, max: u32 },
}

impl WireError {
    /// True for errors a peer thread may skip over rather than drop the peer for
    /// (currently only [`WireError::UnknownMessage`]).
    pub fn is_ignorable(&self) -> bool {
        matches!(self, WireError::UnknownMessage(_))
    }
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::BadProtocol => f.write_str("handshake is not the BitTorrent protocol"),
            WireError::FrameTooLong { len, max } => {
                write!(f, "message length {len} exceeds the limit of {max} bytes")
            }
            WireError::BadLength { id, len } => {
                write!(f, "message id {id} has an invalid payload length {len}")
            }
            WireError::UnknownMessage(id) => write!(f, "unknown message id {id}"),
            WireError::BadBitfieldLength { len, expected } => {
                write!(f, "bitfield is {len} bytes, expected {expected}")
            }
            WireError::BitfieldSpareBits => f.write_str("bitfield has spare bits set"),
            WireError::BlockTooLong { len, max } => {
                write!(f, "block of {len} bytes exceeds the limit of {max}")
            }
        }
    }
}

impl std::error::Error for WireError {}

// ---------------------------------------------------------------------------------------------
// Handshake

/// The BEP 3 handshake: `<19><"BitTorrent protocol"><reserved: 8><info_hash: 20><peer_id: 20>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Handshake {
    /// Extension bits (BEP 4 lists the allocations); see the `supports_*`/`with_*` helpers.
    pub reserved: [u8; 8],
    pub info_hash: InfoHash,
    pub peer_id: PeerId,
}

/// BEP 10 extension protocol: `reserved[5] & 0x10`.
const EXTENSION_BYTE: usize = 5;
const EXTENSION_MASK: u8 = 0x10;
/// BEP 5 DHT: `reserved[7] & 0x01`.
const DHT_BYTE: usize = 7;
const DHT_MASK: u8 = 0x01;

impl Handshake {
    /// A handshake with all reserved bits clear.
    pub fn new(info_hash: InfoHash, peer_id: PeerId) -> Handshake {
        Handshake {
            reserved: [0; 8],
            info_hash,
            peer_id,
        }
    }

    /// Sets or clears the BEP 10 extension-protocol bit.
    pub fn with_extension_protocol(mut self, on: bool) -> Handshake {
        set_bit(&mut self.reserved[EXTENSION_BYTE], EXTENSION_MASK, on);
        self
    }

    /// Sets or clears the BEP 5 DHT bit (the peer may then send `port`).
    pub fn with_dht(mut self, on: bool) -> Handshake {
        set_bit(&mut self.reserved[DHT_BYTE], DHT_MASK, on);
        self
    }

    /// True when the sender supports BEP 10 extended messages.
    pub fn supports_extension_protocol(&self) -> bool {
        self.reserved[EXTENSION_BYTE] & EXTENSION_MASK != 0
    }

    /// True when the sender runs a BEP 5 DHT node.
    pub fn supports_dht(&self) -> bool {
        self.reserved[DHT_BYTE] & DHT_MASK != 0
    }

    /// The 68 bytes to send.
    pub fn encode(&self) -> [u8; HANDSHAKE_LEN] {
        let mut out = [0u8; HANDSHAKE_LEN];
        out[0] = PROTOCOL.len() as u8;
        out[1..20].copy_from_slice(PROTOCOL);
        out[20..28].copy_from_slice(&self.reserved);
        out[28..48].copy_from_slice(&self.info_hash.0);
        out[48..68].copy_from_slice(&self.peer_id.0);
        out
    }

    /// Parses 68 received bytes; [`WireError::BadProtocol`] unless they start with
    /// `19, "BitTorrent protocol"`. Checking the info hash is the caller's job.
    pub fn decode(bytes: &[u8; HANDSHAKE_LEN]) -> Result<Handshake, WireError> {
        if bytes[0] as usize != PROTOCOL.len() || &bytes[1..20] != PROTOCOL {
            return Err(WireError::BadProtocol);
        }
        let mut reserved = [0u8; 8];
        reserved.copy_from_slice(&bytes[20..28]);
        let mut info_hash = [0u8; 20];
        info_hash.copy_from_slice(&bytes[28..48]);
        let mut peer_id = [0u8; 20];
        peer_id.copy_from_slice(&bytes[48..68]);
        Ok(Handshake {
            reserved,
            info_hash: InfoHash(info_hash),
            peer_id: PeerId(peer_id),
        })
    }
}

fn set_bit(byte: &mut u8, mask: u8, on: bool) {
    if on {
        *byte |= mask;
    } else {
        *byte &= !mask;
    }
}

// ---------------------------------------------------------------------------------------------
// Messages

/// One block of a piece: what `request` and `cancel` name (BEP 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BlockRequest {
    /// Piece index.
    pub index: u32,
    /// Byte offset inside the piece.
    pub begin: u32,
    /// Block length in bytes (16 KiB except a piece's short last block).
    pub length: u32,
}

/// One peer wire message. Variable-size payloads borrow from the receive buffer, so decoding
/// never allocates; copy what must outlive the buffer.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Message<'a> {
    /// Length prefix 0, no id: keeps the connection open (BEP 3 suggests one every 2 minutes).
    KeepAlive,
    Choke,
    Unchoke,
    Interested,
    NotInterested,
    /// The sender now has this (verified) piece.
    Have(u32),
    /// Raw `bitfield` payload; validate with [`crate::bitfield::Bitfield::from_bytes`].
    /// Only legal as the first message after the handshake (the caller enforces that).
    Bitfield(&'a [u8]),
    Request(BlockRequest),
    /// A block of data: `data` is `data.len()` bytes at `begin` inside piece `index`.
    Piece {
        index: u32,
        begin: u32,
        data: &'a [u8],
    },
    Cancel(BlockRequest),
    /// BEP 5: the sender's DHT node listens on this UDP port.
    Port(u16),
    /// BEP 10: `id` 0 is the extended handshake, other ids were assigned in it; `payload` is
    /// usually bencoded and is not interpreted here.
    Extended {
        id: u8,
        payload: &'a [u8],
    },
}

impl fmt::Debug for Message<'_> {
    /// Data-carrying messages print lengths, not bytes, so logs stay readable.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Message::KeepAlive => f.write_str("KeepAlive"),
            Message::Choke => f.write_str("Choke"),
            Message::Unchoke => f.write_str("Unchoke"),
            Message::Interested => f.write_str("Interested"),
            Message::NotInterested => f.write_str("NotInterested"),
            Message::Have(i) => write!(f, "Have({i})"),
            Message::Bitfield(b) => write!(f, "Bitfield({} bytes)", b.len()),
            Message::Request(r) => write!(f, "Request({}, {}, {})", r.index, r.begin, r.length),
            Message::Piece { index, begin, data } => {
                write!(f, "Piece({index}, {begin}, {} bytes)", data.len())
            }
            Message::Cancel(r) => write!(f, "Cancel({}, {}, {})", r.index, r.begin, r.length),
            Message::Port(p) => write!(f, "Port({p})"),
            Message::Extended { id, payload } => {
                write!(f, "Extended({id}, {} bytes)", payload.len())
            }
        }
    }
}

impl Message<'_> {
    /// The message id byte, or `None` for a keep-alive.
    pub fn id(&self) -> Option<u8> {
        Some(match self {
            Message::KeepAlive => return None,
            Message::Choke => id::CHOKE,
            Message::Unchoke => id::UNCHOKE,
            Message::Interested => id::INTERESTED,
            Message::NotInterested => id::NOT_INTERESTED,
            Message::Have(_) => id::HAVE,
            Message::Bitfield(_) => id::BITFIELD,
            Message::Request(_) => id::REQUEST,
            Message::Piece { .. } => id::PIECE,
            Message::Cancel(_) => id::CANCEL,
            Message::Port(_) => id::PORT,
            Message::Extended { .. } => id::EXTENDED,
        })
    }

    /// Bytes after the length prefix (id + payload); what the prefix will say.
    pub fn body_len(&self) -> usize {
        match self {
            Message::KeepAlive => 0,
            Message::Choke | Message::Unchoke | Message::Interested | Message::NotInterested => 1,
            Message::Have(_) => 5,
            Message::Bitfield(b) => 1 + b.len(),
            Message::Request(_) | Message::Cancel(_) => 13,
            Message::Piece { data, .. } => 9 + data.len(),
            Message::Port(_) => 3,
            Message::Extended { payload, .. } => 2 + payload.len(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Limits and framing

/// Per-torrent bounds on what a peer may send, so a length prefix never makes us allocate
/// more than a legal message needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Exact `bitfield` payload length for this torrent: `ceil(num_pieces / 8)`.
    pub max_bitfield_len: usize,
    /// Largest block accepted in `request` and `piece` ([`MAX_BLOCK_LEN`]).
    pub max_block_len: u32,
}

impl Limits {
    /// The limits for a torrent with `num_pieces` pieces.
    pub fn for_torrent(num_pieces: u32) -> Limits {
        Limits {
            max_bitfield_len: crate::bitfield::byte_len(num_pieces),
            max_block_len: MAX_BLOCK_LEN,
        }
    }

    /// The largest legal frame body (bytes after the length prefix): the biggest of
    /// a `piece` (1 id + 8 header + `max_block_len`), a `bitfield` (1 + `max_bitfield_len`),
    /// an `extended` message (1 + [`MAX_EXTENDED_LEN`]) and the fixed 13-byte messages.
    pub fn max_frame_len(&self) -> usize {
        let piece = 9 + self.max_block_len as usize;
        let bitfield = 1 + self.max_bitfield_len;
        let extended = 1 + MAX_EXTENDED_LEN;
        piece.max(bitfield).max(extended).max(13)
    }

    /// Checks that a `request` (or `cancel`) asks for at most `max_block_len` bytes. Whether
    /// the range lies inside the piece is [`crate::layout::Layout::range_in_piece`]'s job.
    pub fn check_request(&self, req: &BlockRequest) -> Result<(), WireError> {
        if req.length > self.max_block_len {
            return Err(WireError::BlockTooLong {
                len: req.length,
                max: self.max_block_len,
            });
        }
        Ok(())
    }

    /// Checks the per-message bounds [`decode_frame`] cannot know: `bitfield` length exactly
    /// `max_bitfield_len`, `piece` data and `request`/`cancel` lengths at most `max_block_len`,
    /// `extended` payload at most [`MAX_EXTENDED_LEN`].
    pub fn check_message(&self, msg: &Message<'_>) -> Result<(), WireError> {
        match msg {
            Message::Bitfield(b) if b.len() != self.max_bitfield_len => {
                Err(WireError::BadBitfieldLength {
                    len: b.len(),
                    expected: self.max_bitfield_len,
                })
            }
            Message::Request(r) | Message::Cancel(r) => self.check_request(r),
            Message::Piece { data, .. } if data.len() > self.max_block_len as usize => {
                Err(WireError::BlockTooLong {
                    len: data.len().min(u32::MAX as usize) as u32,
                    max: self.max_block_len,
                })
            }
            Message::Extended { payload, .. } if 1 + payload.len() > MAX_EXTENDED_LEN => {
                Err(WireError::FrameTooLong {
                    len: (2 + payload.len()).min(u32::MAX as usize) as u32,
                    max: 1 + MAX_EXTENDED_LEN,
                })
            }
            _ => Ok(()),
        }
    }
}

/// Validates a received length prefix and returns it as the body length to read.
/// [`WireError::FrameTooLong`] when `len > limits.max_frame_len()`; call this before
/// resizing any buffer.
pub fn check_frame_len(len: u32, limits: &Limits) -> Result<usize, WireError> {
    let max = limits.max_frame_len();
    if len as u64 > max as u64 {
        return Err(WireError::FrameTooLong { len, max });
    }
    Ok(len as usize)
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

fn block_request(p: &[u8]) -> BlockRequest {
    BlockRequest {
        index: u32_at(p, 0),
        begin: u32_at(p, 4),
        length: u32_at(p, 8),
    }
}

/// Decodes one frame body: the bytes after the 4-byte length prefix. An empty body is a
/// keep-alive. Errors: [`WireError::BadLength`] for a payload of the wrong size,
/// [`WireError::UnknownMessage`] for an id we do not know (ignorable, see
/// [`WireError::is_ignorable`]). Never panics on any input.
pub fn decode_frame(body: &[u8]) -> Result<Message<'_>, WireError> {
    let Some((&msg_id, p)) = body.split_first() else {
        return Ok(Message::KeepAlive);
    };
    let exact = |n: usize| {
        if p.len() == n {
            Ok(())
        } else {
            Err(WireError::BadLength {
                id: msg_id,
                len: p.len(),
            })
        }
    };
    let at_least = |n: usize| {
        if p.len() >= n {
            Ok(())
        } else {
            Err(WireError::BadLength {
                id: msg_id,
                len: p.len(),
            })
        }
    };
    Ok(match msg_id {
        id::CHOKE => exact(0).map(|_| Message::Choke)?,
        id::UNCHOKE => exact(0).map(|_| Message::Unchoke)?,
        id::INTERESTED => exact(0).map(|_| Message::Interested)?,
        id::NOT_INTERESTED => exact(0).map(|_| Message::NotInterested)?,
        id::HAVE => {
            exact(4)?;
            Message::Have(u32_at(p, 0))
        }
        id::BITFIELD => Message::Bitfield(p),
        id::REQUEST => {
            exact(12)?;
            Message::Request(block_request(p))
        }
        id::PIECE => {
            at_least(8)?;
            Message::Piece {
                index: u32_at(p, 0),
                begin: u32_at(p, 4),
                data: &p[8..],
            }
        }
        id::CANCEL => {
            exact(12)?;
            Message::Cancel(block_request(p))
        }
        id::PORT => {
            exact(2)?;
            Message::Port(u16::from_be_bytes([p[0], p[1]]))
        }
        id::EXTENDED => {
            at_least(1)?;
            Message::Extended {
                id: p[0],
                payload: &p[1..],
            }
        }
        other => return Err(WireError::UnknownMessage(other)),
    })
}

/// Appends the length prefix and body of `msg` to `out`.
pub fn encode(msg: &Message<'_>, out: &mut Vec<u8>) {
    let body_len = msg.body_len();
    out.reserve(4 + body_len);
    out.extend_from_slice(&(body_len as u32).to_be_bytes());
    let Some(msg_id) = msg.id() else {
        return; // keep-alive: the prefix alone
    };
    out.push(msg_id);
    let push_request = |out: &mut Vec<u8>, r: &BlockRequest| {
        out.extend_from_slice(&r.index.to_be_bytes());
        out.extend_from_slice(&r.begin.to_be_bytes());
        out.extend_from_slice(&r.length.to_be_bytes());
    };
    match msg {
        Message::KeepAlive
        | Message::Choke
        | Message::Unchoke
        | Message::Interested
        | Message::NotInterested => {}
        Message::Have(i) => out.extend_from_slice(&i.to_be_bytes()),
        Message::Bitfield(b) => out.extend_from_slice(b),
        Message::Request(r) | Message::Cancel(r) => push_request(out, r),
        Message::Piece { index, begin, data } => {
            out.extend_from_slice(&index.to_be_bytes());
            out.extend_from_slice(&begin.to_be_bytes());
            out.extend_from_slice(data);
        }
        Message::Port(port) => out.extend_from_slice(&port.to_be_bytes()),
        Message::Extended { id, payload } => {
            out.push(*id);
            out.extend_from_slice(payload);
        }
    }
}

/// Writes the 13 bytes that precede a `piece` message's block: length prefix (`9 + data_len`),
/// id 7, index, begin. The sender writes these and then the `data_len` block bytes straight
/// from storage, so the block is never copied into a message buffer.
pub fn encode_piece_header(index: u32, begin: u32, data_len: u32, out: &mut [u8; 13]) {
    out[0..4].copy_from_slice(&(9u32.saturating_add(data_len)).to_be_bytes());
    out[4] = id::PIECE;
    out[5..9].copy_from_slice(&index.to_be_bytes());
    out[9..13].copy_from_slice(&begin.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    /// Encodes `msg`, compares with `bytes`, and decodes `bytes` (after its prefix) back.
    fn round_trip(msg: Message<'_>, bytes: &[u8]) {
        let mut out = Vec::new();
        encode(&msg, &mut out);
        assert_eq!(out, bytes, "encoding of {msg:?}");
        let prefix = u32::from_be_bytes(bytes[..4].try_into().unwrap());
        let limits = Limits::for_torrent(100);
        assert_eq!(check_frame_len(prefix, &limits), Ok(bytes.len() - 4));
        assert_eq!(decode_frame(&bytes[4..]), Ok(msg), "decoding of {bytes:?}");
        assert_eq!(msg.body_len(), bytes.len() - 4);
    }

    /// Every message with its exact bytes, field by field.
    fn samples() -> Vec<(Message<'static>, Vec<u8>)> {
        vec![
            (Message::KeepAlive, vec![0, 0, 0, 0]),        // len 0, no id
            (Message::Choke, vec![0, 0, 0, 1, 0]),         // len 1, id 0
            (Message::Unchoke, vec![0, 0, 0, 1, 1]),       // len 1, id 1
            (Message::Interested, vec![0, 0, 0, 1, 2]),    // len 1, id 2
            (Message::NotInterested, vec![0, 0, 0, 1, 3]), // len 1, id 3
            (
                Message::Have(0x0102_0304),
                vec![
                    0, 0, 0, 5, // len 5
                    4, // id 4 have
                    1, 2, 3, 4, // piece index
                ],
            ),
            (
                Message::Bitfield(&[0xa0, 0x01]),
                vec![
                    0, 0, 0, 3, // len 3
                    5, // id 5 bitfield
                    0xa0, 0x01, // bits
                ],
            ),
            (
                Message::Request(BlockRequest {
                    index: 7,
                    begin: 0x4000,
                    length: 0x4000,
                }),
                vec![
                    0, 0, 0, 13, // len 13
                    6,  // id 6 request
                    0, 0, 0, 7, // index
                    0, 0, 0x40, 0, // begin 16384
                    0, 0, 0x40, 0, // length 16384
                ],
            ),
            (
                Message::Piece {
                    index: 1,
                    begin: 2,
                    data: b"abc",
                },
                vec![
                    0, 0, 0, 12, // len 9 + 3
                    7,  // id 7 piece
                    0, 0, 0, 1, // index
                    0, 0, 0, 2, // begin
                    b'a', b'b', b'c', // block
                ],
            ),
            (
                Message::Cancel(BlockRequest {
                    index: 0xffff_ffff,
                    begin: 0,
                    length: 1,
                }),
                vec![
                    0, 0, 0, 13, // len 13
                    8,  // id 8 cancel
                    0xff, 0xff, 0xff, 0xff, // index
                    0, 0, 0, 0, // begin
                    0, 0, 0, 1, // length
                ],
            ),
            (
                Message::Port(6881),
                vec![
                    0, 0, 0, 3, // len 3
                    9, // id 9 port (BEP 5)
                    0x1a, 0xe1, // 6881
                ],
            ),
            (
                Message::Extended {
                    id: 0,
                    payload: b"de",
                },
                vec![
                    0, 0, 0, 4,  // len 4
                    20, // id 20 extended (BEP 10)
                    0,  // extended id 0: handshake
                    b'd', b'e', // bencoded {}
                ],
            ),
        ]
    }

    #[test]
    fn every_message_round_trips_byte_for_byte() {
        for (msg, bytes) in samples() {
            round_trip(msg, &bytes);
        }
    }

    #[test]
    fn handshake_bytes_and_bits() {
        let hs = Handshake::new(InfoHash([0xaa; 20]), PeerId([0xbb; 20]))
            .with_extension_protocol(true)
            .with_dht(true);
        let bytes = hs.encode();
        assert_eq!(bytes[0], 19); // pstrlen
        assert_eq!(&bytes[1..20], PROTOCOL); // pstr
        assert_eq!(&bytes[20..28], &[0, 0, 0, 0, 0, 0x10, 0, 0x01]); // reserved: BEP 10, BEP 5
        assert_eq!(&bytes[28..48], &[0xaa; 20]); // info hash
        assert_eq!(&bytes[48..68], &[0xbb; 20]); // peer id
        let back = Handshake::decode(&bytes).unwrap();
        assert_eq!(back, hs);
        assert!(back.supports_extension_protocol() && back.supports_dht());
        let plain = hs.with_extension_protocol(false).with_dht(false);
        assert!(!plain.supports_extension_protocol() && !plain.supports_dht());
        assert_eq!(plain.reserved, [0; 8]);

        let mut bad_len = bytes;
        bad_len[0] = 18;
        assert_eq!(Handshake::decode(&bad_len), Err(WireError::BadProtocol));
        let mut bad_name = bytes;
        bad_name[1] = b'b';
        assert_eq!(Handshake::decode(&bad_name), Err(WireError::BadProtocol));
    }

    #[test]
    fn wrong_payload_lengths_are_refused() {
        let cases: &[(&[u8], u8, usize)] = &[
            (&[0, 1], 0, 1),                   // choke with payload
            (&[2, 0, 0], 2, 2),                // interested with payload
            (&[4, 0, 0, 0], 4, 3),             // have needs 4
            (&[4, 0, 0, 0, 0, 0], 4, 5),       // have needs exactly 4
            (&[6, 0, 0, 0, 0], 6, 4),          // request needs 12
            (&[8; 14], 8, 13),                 // cancel needs exactly 12
            (&[7, 0, 0, 0, 0, 0, 0, 0], 7, 7), // piece needs its 8-byte header
            (&[9, 1], 9, 1),                   // port needs 2
            (&[20], 20, 0),                    // extended needs its id byte
        ];
        for &(body, id, len) in cases {
            assert_eq!(
                decode_frame(body),
                Err(WireError::BadLength { id, len }),
                "{body:?}"
            );
        }
        let unknown = decode_frame(&[13, 1, 2]);
        assert_eq!(unknown, Err(WireError::UnknownMessage(13)));
        assert!(unknown.unwrap_err().is_ignorable());
        assert!(!WireError::BadProtocol.is_ignorable());
    }

    #[test]
    fn oversized_prefixes_are_refused_before_allocation() {
        let limits = Limits::for_torrent(65_000);
        assert_eq!(limits.max_bitfield_len, 8125);
        let max = limits.max_frame_len();
        assert_eq!(max, 1 + MAX_EXTENDED_LEN);
        assert_eq!(check_frame_len(max as u32, &limits), Ok(max));
        assert_eq!(
            check_frame_len(max as u32 + 1, &limits),
            Err(WireError::FrameTooLong {
                len: max as u32 + 1,
                max
            })
        );
        assert!(check_frame_len(u32::MAX, &limits).is_err());
        // A piece with the largest block fits; a huge torrent's bitfield raises the bound.
        assert!(max >= 9 + MAX_BLOCK_LEN as usize);
        let huge = Limits::for_torrent(100_000_000);
        assert_eq!(huge.max_frame_len(), 1 + 12_500_000);
        // Message-level checks the frame bound cannot make.
        let small = Limits::for_torrent(10);
        assert_eq!(small.check_message(&Message::Bitfield(&[0, 0])), Ok(()));
        assert_eq!(
            small.check_message(&Message::Bitfield(&[0; 3])),
            Err(WireError::BadBitfieldLength {
                len: 3,
                expected: 2
            })
        );
        let big = BlockRequest {
            index: 0,
            begin: 0,
            length: MAX_BLOCK_LEN + 1,
        };
        assert!(small.check_message(&Message::Request(big)).is_err());
        assert!(small.check_message(&Message::Cancel(big)).is_err());
        let data = vec![0u8; MAX_BLOCK_LEN as usize + 1];
        let piece = Message::Piece {
            index: 0,
            begin: 0,
            data: &data,
        };
        assert!(small.check_message(&piece).is_err());
        let ok = Message::Piece {
            index: 0,
            begin: 0,
            data: &data[1..],
        };
        assert_eq!(small.check_message(&ok), Ok(()));
    }

    #[test]
    fn piece_header_matches_full_encoding() {
        let data = vec![7u8; 1000];
        let mut full = Vec::new();
        encode(
            &Message::Piece {
                index: 42,
                begin: 16384,
                data: &data,
            },
            &mut full,
        );
        let mut header = [0u8; 13];
        encode_piece_header(42, 16384, 1000, &mut header);
        assert_eq!(&full[..13], &header);
        assert_eq!(&full[13..], &data[..]);
    }

    /// A reader that hands out at most `chunk` bytes per call, after first splitting at `split`.
    struct Trickle<'a> {
        data: &'a [u8],
        pos: usize,
        split: usize,
        chunk: usize,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let left = self.data.len() - self.pos;
            let mut n = left.min(buf.len()).min(self.chunk);
            if self.pos < self.split {
                n = n.min(self.split - self.pos);
            }
            buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
            self.pos += n;
            Ok(n)
        }
    }

    /// Reads frames the way a peer thread does and returns their re-encoded bytes.
    fn read_all(r: &mut impl Read, limits: &Limits) -> Vec<Vec<u8>> {
        let mut buf = Vec::new();
        let mut out = Vec::new();
        loop {
            let mut prefix = [0u8; 4];
            match r.read_exact(&mut prefix) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return out,
                Err(e) => panic!("{e}"),
            }
            let len = check_frame_len(u32::from_be_bytes(prefix), limits).unwrap();
            buf.resize(len, 0);
            r.read_exact(&mut buf).unwrap();
            let msg = decode_frame(&buf).unwrap();
            let mut again = Vec::new();
            encode(&msg, &mut again);
            out.push(again);
        }
    }

    #[test]
    fn frames_split_at_every_point_decode_the_same() {
        let samples = samples();
        let stream: Vec<u8> = samples.iter().flat_map(|(_, b)| b.clone()).collect();
        let expected: Vec<Vec<u8>> = samples.iter().map(|(_, b)| b.clone()).collect();
        let limits = Limits::for_torrent(100);
        // One byte at a time.
        let mut one = Trickle {
            data: &stream,
            pos: 0,
            split: 0,
            chunk: 1,
        };
        assert_eq!(read_all(&mut one, &limits), expected);
        // Split once at every position, then large reads.
        for split in 0..=stream.len() {
            let mut r = Trickle {
                data: &stream,
                pos: 0,
                split,
                chunk: usize::MAX,
            };
            assert_eq!(read_all(&mut r, &limits), expected, "split at {split}");
        }
    }

    /// Deterministic xorshift64* so the randomized test is reproducible.
    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            self.0 = x;
            x.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    #[test]
    fn random_and_mutated_frames_never_panic_and_reencode_exactly() {
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        let limits = Limits::for_torrent(1000);
        let samples: Vec<Vec<u8>> = samples().into_iter().map(|(_, b)| b).collect();
        let (mut ok, mut refused) = (0u32, 0u32);
        let mut frame = Vec::new();
        let mut round = 0u32;
        // Bounded: stop after 110,000 decoded frames or a million attempts.
        while ok + refused < 110_000 && round < 1_000_000 {
            round += 1;
            frame.clear();
            match round % 3 {
                // A valid frame with a few random byte flips, insertions or truncations.
                0 | 1 => {
                    frame.extend_from_slice(&samples[rng.below(samples.len() as u64) as usize]);
                    for _ in 0..rng.below(4) {
                        let at = rng.below(frame.len() as u64 + 1) as usize;
                        match rng.below(3) {
                            0 if at < frame.len() => frame[at] = rng.next() as u8,
                            1 => frame.insert(at, rng.next() as u8),
                            _ => frame.truncate(at),
                        }
                    }
                }
                // Random bytes with a random (often small) id.
                _ => {
                    let n = 4 + rng.below(40) as usize;
                    frame.extend((0..n).map(|_| rng.next() as u8));
                    if frame.len() > 4 && rng.below(2) == 0 {
                        frame[4] = rng.below(22) as u8;
                    }
                }
            }
            if frame.len() < 4 {
                continue;
            }
            let prefix = u32::from_be_bytes(frame[..4].try_into().unwrap());
            let Ok(len) = check_frame_len(prefix, &limits) else {
                refused += 1;
                continue;
            };
            // A real reader would block for missing bytes; here take what is there.
            let body = &frame[4..(4 + len).min(frame.len())];
            match decode_frame(body) {
                Ok(msg) => {
                    ok += 1;
                    let mut again = Vec::new();
                    encode(&msg, &mut again);
                    assert_eq!(&again[4..], body, "{msg:?} re-encodes to its input");
                    let _ = limits.check_message(&msg);
                }
                Err(e) => {
                    refused += 1;
                    assert!(!e.to_string().is_empty());
                }
            }
        }
        // The generator must exercise both paths for the test to mean anything.
        assert!(ok > 10_000, "ok = {ok}");
        assert!(refused > 10_000, "refused = {refused}");
        assert!(ok + refused >= 100_000);
    }
}
