//! The piece picker: which blocks to request from which peer (BEP 3 leaves the strategy to
//! the client; this is the usual rarest-first with random first pieces and an endgame).
//!
//! Owned by the coordinator thread (no locks, no I/O). The coordinator tells it what peers have
//! ([`Picker::peer_bitfield`], [`Picker::peer_have`], [`Picker::peer_gone`]), asks it for
//! requests ([`Picker::pick`]), and reports what happened to them
//! ([`Picker::block_received`], [`Picker::requests_returned`], [`Picker::piece_verified`],
//! [`Picker::piece_failed`]). Peers are named by a [`PeerKey`] the coordinator chooses.
//!
//! # Piece states
//!
//! Every piece is in exactly one [`PieceState`]:
//!
//! ```text
//!            pick() starts it            last block received        hash ok
//!  Missing ─────────────────► Partial ─────────────────► Complete ─────────► Verified
//!     ▲                          │                           │
//!     │   all its requests       │                           │ piece_failed (hash bad)
//!     └── returned, none received┘                           │
//!     └──────────────────────────────────────────────────────┘
//! ```
//!
//! - `Missing`: we have no block of it and none is requested. Only these sit in the
//!   availability buckets used by rarest-first.
//! - `Partial`: it has a block map; each block is free, requested (by one peer, or by up to
//!   [`ENDGAME_MAX_REQUESTERS`] in endgame) or received, and not all are received.
//! - `Complete`: every block received; the coordinator is hashing it.
//! - `Verified`: hashed and stored; it is in [`Picker::have`]. A failed hash (or any
//!   [`Picker::piece_failed`]) sends a piece back to `Missing` with all its blocks.
//!
//! # Strategy of [`Picker::pick`]
//!
//! 1. Finish `Partial` pieces the peer has (lowest index first).
//! 2. Start a new piece the peer has: while fewer than [`RANDOM_FIRST_PIECES`] are verified, a
//!    random one (to get something to trade quickly); then the rarest, ties broken by extent
//!    affinity and otherwise at random ([`PickMode::RarestFirst`]); or the lowest index
//!    ([`PickMode::Sequential`]).
//! 3. Endgame: when no block anywhere is free, a peer with fewer than [`ENDGAME_QUEUE`] blocks
//!    in flight requests blocks already requested from other peers;
//!    [`Picker::block_received`] then names the peers to send `cancel` to.
//!
//! Rarest-first keeps `Missing` pieces in buckets indexed by availability (number of
//! connected peers that have the piece), updated incrementally in O(1) per change, so a pick
//! scans the rarest buckets only until it finds a piece the peer has; no per-call sort.
//! Seeds are not counted piece by piece: a peer whose first bitfield is complete only adds one
//! to a seed count that every piece shares, so it joins and leaves in O(1) instead of touching
//! every piece twice (200 seeds of a 4,096-piece torrent were 1.6 million bucket moves). The
//! buckets then hold availability minus the seed count, which orders pieces the same way.
//!
//! Extent affinity: among pieces that are equally rare, one in an extent (an aligned
//! [`EXTENT_BYTES`] run of pieces) that was recently started wins. Small pieces are then
//! written to disk a few MiB at a time in order instead of scattered at random, which the
//! kernel's page cache handles with fewer, larger pages and faults (and a spinning disk with
//! fewer seeks). Rarity always comes first. An extent is opened at a random piece (the rarest
//! pick) and continues in order from there, wrapping round to the extent's start; a `have`
//! from any peer for a piece of an open extent closes it. Leechers of one swarm that open the
//! same extent would otherwise catch up with each other and fetch the same pieces in
//! lockstep, with nothing left to trade; with one seeder, or only seeds, no `have` ever
//! arrives and the extents stay open.

use crate::bitfield::Bitfield;
use crate::ids::random_below;
use crate::layout::{Layout, BLOCK_LEN};
use crate::wire::BlockRequest;
use std::collections::{BTreeMap, HashMap, HashSet};

/// The coordinator's name for a peer connection.
pub type PeerKey = usize;

/// Until this many pieces are verified, new pieces are chosen at random, not rarest-first.
pub const RANDOM_FIRST_PIECES: u32 = 4;

/// In endgame a block is requested from at most this many peers at once (two duplicates).
pub const ENDGAME_MAX_REQUESTERS: usize = 3;

/// In endgame a peer is given duplicate requests only while it has fewer than this many blocks
/// in flight. Duplicates are for blocks held up at a slow peer, and a peer that is about to
/// run dry is the one to fetch them; a peer still busy with its own queue would only fetch
/// again what is already on its way (at the start of endgame that is the whole in-flight
/// window: up to 16 MiB).
pub const ENDGAME_QUEUE: usize = 16;

/// Extent affinity groups pieces into aligned runs of this many bytes (one piece when pieces
/// are this large or larger).
pub const EXTENT_BYTES: u64 = 4 << 20;

/// Recently started extents remembered for affinity: enough for a few peers starting pieces
/// at once, few enough that a scan is a handful of pieces.
const OPEN_EXTENTS: usize = 4;

/// How new pieces are chosen once partial pieces are served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PickMode {
    /// Random first pieces, then rarest-first with random tie-breaks (the swarm-friendly default).
    RarestFirst,
    /// Lowest missing index first (streaming; no random first pieces).
    Sequential,
}

/// Where a piece is in its life; see the module documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PieceState {
    Missing,
    Partial,
    Complete,
    Verified,
}

/// What [`Picker::block_received`] learned about a received block.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BlockOutcome {
    /// True when this peer had this exact block requested and it was still needed: store it.
    /// False for unrequested, misaligned, wrongly sized or duplicate blocks: drop the data.
    pub expected: bool,
    /// Other peers that also had the block requested (endgame): send each a `cancel`.
    /// Their requests are already forgotten by the picker.
    pub cancel: Vec<PeerKey>,
    /// True when this block was the piece's last missing one: the piece is now
    /// [`PieceState::Complete`] and ready to hash.
    pub piece_complete: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Block {
    Free,
    /// Requested from these peers (one outside endgame), no duplicates.
    Requested(Vec<PeerKey>),
    Received,
}

/// The block map of a `Partial` piece.
#[derive(Debug, Clone)]
struct Progress {
    blocks: Vec<Block>,
    free: u32,
    received: u32,
}

/// The piece picker; see the module documentation.
#[derive(Debug, Clone)]
pub struct Picker {
    layout: Layout,
    mode: PickMode,
    state: Vec<PieceState>,
    /// Number of connected peers that have each piece, not counting the seeds in `seeds`.
    avail: Vec<u32>,
    /// Peers registered as seeds by [`Picker::peer_bitfield`]: each has every piece.
    seeds: HashSet<PeerKey>,
    /// `buckets[a]` holds the `Missing` pieces with availability `a` (seeds aside), in no
    /// particular order.
    buckets: Vec<Vec<u32>>,
    /// Position of each `Missing` piece inside its bucket.
    bucket_pos: Vec<u32>,
    /// Number of `Missing` pieces (the sum of bucket sizes).
    missing: u32,
    /// Block maps of the `Partial` pieces.
    partial: BTreeMap<u32, Progress>,
    /// Each peer's outstanding requests; mirrors the `Requested` lists of the block maps.
    outstanding: HashMap<PeerKey, HashSet<BlockRequest>>,
    /// Verified pieces.
    have: Bitfield,
    /// No `Missing` piece has an index below this (sequential mode's scan start).
    seq_hint: u32,
    /// Pieces per extent for extent affinity (1 disables it).
    extent_pieces: u32,
    /// Recently started extents, newest last, each as the piece it was opened at; see the
    /// module documentation.
    open_extents: Vec<u32>,
}

impl Picker {
    /// A picker for `layout` where the pieces set in `have` are already verified.
    pub fn new(layout: &Layout, have: &Bitfield, mode: PickMode) -> Picker {
        let n = layout.num_pieces();
        let mut p = Picker {
            layout: layout.clone(),
            mode,
            state: vec![PieceState::Missing; n as usize],
            avail: vec![0; n as usize],
            seeds: HashSet::new(),
            buckets: vec![Vec::new()],
            bucket_pos: vec![0; n as usize],
            missing: 0,
            partial: BTreeMap::new(),
            outstanding: HashMap::new(),
            have: Bitfield::new(n),
            seq_hint: 0,
            extent_pieces: (EXTENT_BYTES / layout.piece_length().max(1)).clamp(1, 1 << 16) as u32,
            open_extents: Vec::new(),
        };
        for piece in 0..n {
            if have.has(piece) {
                p.state[piece as usize] = PieceState::Verified;
                p.have.set(piece);
            } else {
                p.bucket_insert(piece);
            }
        }
        p
    }

    // ---- availability ---------------------------------------------------------------------

    /// A peer's `bitfield` arrived (or a new peer with a known bitfield): every piece it has
    /// becomes one more available. Call once per peer, before any [`Picker::peer_have`] of it.
    pub fn peer_bitfield(&mut self, peer: PeerKey, peer_has: &Bitfield) {
        if peer_has.is_complete() && self.seeds.insert(peer) {
            return;
        }
        for piece in peer_has.iter_set() {
            self.change_avail(piece, true);
        }
    }

    /// A peer sent `have` for `piece`. Call only when the piece is new for that peer
    /// (i.e. when the coordinator's `Bitfield::set` for the peer returned true).
    pub fn peer_have(&mut self, piece: u32) {
        self.change_avail(piece, true);
        // Another leecher is fetching this extent too: leave it, or the two of us would walk
        // it in lockstep and fetch the same pieces from the same seeds (see the module doc).
        let per = self.extent_pieces;
        self.open_extents
            .retain(|&anchor| anchor / per != piece / per);
    }

    /// A peer disconnected: its pieces (`peer_has`, its bitfield including every `have`)
    /// become one less available and its outstanding requests return to the pool.
    pub fn peer_gone(&mut self, peer: PeerKey, peer_has: &Bitfield) {
        if !self.seeds.remove(&peer) {
            for piece in peer_has.iter_set() {
                self.change_avail(piece, false);
            }
        }
        self.requests_returned(peer);
        self.outstanding.remove(&peer);
    }

    /// How many connected peers have `piece` (0 for an index out of range).
    pub fn availability(&self, piece: u32) -> u32 {
        self.avail
            .get(piece as usize)
            .map_or(0, |&a| a + self.seeds.len() as u32)
    }

    fn change_avail(&mut self, piece: u32, up: bool) {
        let Some(&a) = self.avail.get(piece as usize) else {
            return;
        };
        let new = if up {
            a.saturating_add(1)
        } else {
            a.saturating_sub(1)
        };
        if new == a {
            return;
        }
        let missing = self.state[piece as usize] == PieceState::Missing;
        if missing {
            self.bucket_remove(piece);
        }
        self.avail[piece as usize] = new;
        if missing {
            self.bucket_insert(piece);
        }
    }

    fn bucket_insert(&mut self, piece: u32) {
        let a = self.avail[piece as usize] as usize;
        if self.buckets.len() <= a {
            self.buckets.resize_with(a + 1, Vec::new);
        }
        self.bucket_pos[piece as usize] = self.buckets[a].len() as u32;
        self.buckets[a].push(piece);
        self.missing += 1;
        self.seq_hint = self.seq_hint.min(piece);
    }

    fn bucket_remove(&mut self, piece: u32) {
        let bucket = &mut self.buckets[self.avail[piece as usize] as usize];
        let pos = self.bucket_pos[piece as usize] as usize;
        bucket.swap_remove(pos);
        if let Some(&moved) = bucket.get(pos) {
            self.bucket_pos[moved as usize] = pos as u32;
        }
        self.missing -= 1;
    }

    // ---- picking --------------------------------------------------------------------------

    /// Appends up to `max` new requests for `peer` (which has the pieces in `peer_has`) to
    /// `out` and records them as requested by that peer. Never picks a piece we have, a piece
    /// being hashed, or a block this peer already has requested. May add nothing (the peer
    /// has nothing we need that is not already requested from others outside endgame).
    pub fn pick(
        &mut self,
        peer: PeerKey,
        peer_has: &Bitfield,
        max: usize,
        out: &mut Vec<BlockRequest>,
    ) {
        let mut left = max;
        if left == 0 {
            return;
        }
        let set = self.outstanding.entry(peer).or_default();
        // 1. Finish partial pieces.
        for (&piece, prog) in self.partial.iter_mut() {
            if left == 0 {
                break;
            }
            if prog.free > 0 && peer_has.has(piece) {
                assign_free(&self.layout, piece, prog, peer, set, &mut left, out);
            }
        }
        // 2. Start new pieces.
        while left > 0 {
            let Some(piece) = self.choose_new(peer, peer_has) else {
                break;
            };
            self.bucket_remove(piece);
            self.state[piece as usize] = PieceState::Partial;
            let blocks = self.layout.blocks_in_piece(piece);
            let mut prog = Progress {
                blocks: vec![Block::Free; blocks as usize],
                free: blocks,
                received: 0,
            };
            let set = self.outstanding.entry(peer).or_default();
            assign_free(&self.layout, piece, &mut prog, peer, set, &mut left, out);
            self.partial.insert(piece, prog);
        }
        // 3. Endgame: duplicate requests, fewest requesters first.
        if left > 0 && self.in_endgame() {
            let set = self.outstanding.entry(peer).or_default();
            let mut left = left.min(ENDGAME_QUEUE.saturating_sub(set.len()));
            for round in 1..ENDGAME_MAX_REQUESTERS {
                for (&piece, prog) in self.partial.iter_mut() {
                    if !peer_has.has(piece) {
                        continue;
                    }
                    for (i, block) in prog.blocks.iter_mut().enumerate() {
                        if left == 0 {
                            return;
                        }
                        if let Block::Requested(peers) = block {
                            if peers.len() == round && !peers.contains(&peer) {
                                peers.push(peer);
                                let req = request_for(&self.layout, piece, i as u32);
                                set.insert(req);
                                out.push(req);
                                left -= 1;
                            }
                        }
                    }
                }
            }
        }
    }

    /// The next `Missing` piece to start for a peer that has `peer_has`, per the mode.
    fn choose_new(&mut self, peer: PeerKey, peer_has: &Bitfield) -> Option<u32> {
        if self.missing == 0 {
            return None;
        }
        let n = self.state.len() as u32;
        let wanted =
            |s: &Self, p: u32| s.state[p as usize] == PieceState::Missing && peer_has.has(p);
        match self.mode {
            PickMode::Sequential => {
                while self.seq_hint < n && self.state[self.seq_hint as usize] != PieceState::Missing
                {
                    self.seq_hint += 1;
                }
                (self.seq_hint..n).find(|&p| wanted(self, p))
            }
            PickMode::RarestFirst if self.have.count() < RANDOM_FIRST_PIECES => {
                // A random piece the peer has: scan circularly from a random start.
                let start = random_below(n as usize) as u32;
                (start..n).chain(0..start).find(|&p| wanted(self, p))
            }
            PickMode::RarestFirst => {
                let p = self.rarest_random(peer, peer_has)?;
                let rarity = self.avail[p as usize];
                if let Some(near) = self.open_extent_piece(peer_has, rarity) {
                    return Some(near);
                }
                if self.extent_pieces > 1 {
                    self.open_extents.push(p);
                    if self.open_extents.len() > OPEN_EXTENTS {
                        self.open_extents.remove(0);
                    }
                }
                Some(p)
            }
        }
    }

    /// A random piece from the rarest bucket holding a `Missing` piece the peer has.
    fn rarest_random(&self, peer: PeerKey, peer_has: &Bitfield) -> Option<u32> {
        // Bucket 0 holds the pieces only seeds have (or nobody): a seed's rarest, so a seed
        // scans it first. Any other registered peer's pieces are never there, so for them it
        // comes last (it matters only for a peer the picker was never told about).
        let (skip, last) = if self.seeds.contains(&peer) {
            (0, None)
        } else {
            (1, self.buckets.first())
        };
        for bucket in self.buckets.iter().skip(skip).chain(last) {
            if bucket.is_empty() {
                continue;
            }
            let start = random_below(bucket.len());
            let (after, before) = bucket.split_at(start);
            if let Some(&p) = before.iter().chain(after).find(|&&p| peer_has.has(p)) {
                return Some(p);
            }
        }
        None
    }

    /// The next `Missing` piece the peer has, of availability `rarity`, in a recently opened
    /// extent (newest first): scanning in order from the piece the extent was opened at,
    /// wrapping round to its start. Forgets extents with nothing left to start.
    fn open_extent_piece(&mut self, peer_has: &Bitfield, rarity: u32) -> Option<u32> {
        let per = self.extent_pieces;
        if per == 1 {
            return None;
        }
        let n = self.state.len() as u32;
        let extent_of = |anchor: u32| {
            let start = anchor / per * per;
            let end = start.saturating_add(per).min(n);
            (anchor..end).chain(start..anchor)
        };
        self.open_extents.retain(|&anchor| {
            extent_of(anchor).any(|p| self.state[p as usize] == PieceState::Missing)
        });
        self.open_extents.iter().rev().find_map(|&anchor| {
            extent_of(anchor).find(|&p| {
                self.state[p as usize] == PieceState::Missing
                    && self.avail[p as usize] == rarity
                    && peer_has.has(p)
            })
        })
    }

    /// True when nothing is left to request normally: no `Missing` piece remains and every
    /// block of every `Partial` piece is requested or received (and some piece is still
    /// `Partial`). Then [`Picker::pick`] hands out duplicate requests.
    pub fn in_endgame(&self) -> bool {
        self.missing == 0 && !self.partial.is_empty() && self.partial.values().all(|p| p.free == 0)
    }

    // ---- results --------------------------------------------------------------------------

    /// A `piece` message's block arrived from `peer`; see [`BlockOutcome`]. Build `req` from
    /// the message: `index`, `begin`, and `length = data.len()`, so a block of the wrong size
    /// matches no request and is reported unexpected. Forgets the peer's request either way.
    pub fn block_received(&mut self, peer: PeerKey, req: BlockRequest) -> BlockOutcome {
        let mut outcome = BlockOutcome::default();
        let was_outstanding = self
            .outstanding
            .get_mut(&peer)
            .is_some_and(|set| set.remove(&req));
        if !was_outstanding {
            return outcome; // unrequested (or already cancelled/returned): drop it
        }
        // An outstanding request always names a block of a Partial piece that this peer has
        // requested (the picker built it), so the lookups below succeed.
        let Some(prog) = self.partial.get_mut(&req.index) else {
            return outcome;
        };
        let i = (req.begin / BLOCK_LEN) as usize;
        let Some(block) = prog.blocks.get_mut(i) else {
            return outcome;
        };
        let peers = match std::mem::replace(block, Block::Received) {
            Block::Requested(peers) => peers,
            other => {
                *block = other; // unreachable by construction; leave the map untouched
                return outcome;
            }
        };
        prog.received += 1;
        for &other in peers.iter().filter(|&&p| p != peer) {
            if let Some(set) = self.outstanding.get_mut(&other) {
                set.remove(&req);
            }
            outcome.cancel.push(other);
        }
        outcome.expected = true;
        if prog.received as usize == prog.blocks.len() {
            self.partial.remove(&req.index);
            self.state[req.index as usize] = PieceState::Complete;
            outcome.piece_complete = true;
        }
        outcome
    }

    /// The peer choked us, was snubbed, or is going away: all its outstanding requests return
    /// to the pool at once (a piece with nothing requested or received goes back to
    /// `Missing`). Returns those requests, sorted, in case the caller wants to `cancel` them.
    pub fn requests_returned(&mut self, peer: PeerKey) -> Vec<BlockRequest> {
        let Some(set) = self.outstanding.get_mut(&peer) else {
            return Vec::new();
        };
        let mut reqs: Vec<BlockRequest> = set.drain().collect();
        reqs.sort_unstable();
        for req in &reqs {
            let Some(prog) = self.partial.get_mut(&req.index) else {
                continue;
            };
            let i = (req.begin / BLOCK_LEN) as usize;
            if let Some(Block::Requested(peers)) = prog.blocks.get_mut(i) {
                peers.retain(|&p| p != peer);
                if peers.is_empty() {
                    prog.blocks[i] = Block::Free;
                    prog.free += 1;
                }
            }
            if prog.received == 0 && prog.free as usize == prog.blocks.len() {
                self.partial.remove(&req.index);
                self.state[req.index as usize] = PieceState::Missing;
                self.bucket_insert(req.index);
            }
        }
        reqs
    }

    /// `piece` hashed correctly and is stored: it becomes `Verified` and joins [`Self::have`].
    /// Accepted from any state (any outstanding requests for it are forgotten).
    pub fn piece_verified(&mut self, piece: u32) {
        let Some(&state) = self.state.get(piece as usize) else {
            return;
        };
        match state {
            PieceState::Verified => return,
            PieceState::Missing => self.bucket_remove(piece),
            PieceState::Partial => self.drop_progress(piece),
            PieceState::Complete => {}
        }
        self.state[piece as usize] = PieceState::Verified;
        self.have.set(piece);
    }

    /// `piece` failed its hash (or could not be stored): it goes back to `Missing`, all blocks
    /// to be downloaded again. Accepted from any state; a no-op for a `Missing` piece.
    pub fn piece_failed(&mut self, piece: u32) {
        let Some(&state) = self.state.get(piece as usize) else {
            return;
        };
        match state {
            PieceState::Missing => return,
            PieceState::Partial => self.drop_progress(piece),
            PieceState::Complete => {}
            PieceState::Verified => {
                self.have.clear(piece);
            }
        }
        self.state[piece as usize] = PieceState::Missing;
        self.bucket_insert(piece);
    }

    /// Removes a `Partial` piece's block map and every peer's requests for it.
    fn drop_progress(&mut self, piece: u32) {
        let Some(prog) = self.partial.remove(&piece) else {
            return;
        };
        for (i, block) in prog.blocks.iter().enumerate() {
            if let Block::Requested(peers) = block {
                let req = request_for(&self.layout, piece, i as u32);
                for p in peers {
                    if let Some(set) = self.outstanding.get_mut(p) {
                        set.remove(&req);
                    }
                }
            }
        }
    }

    // ---- queries --------------------------------------------------------------------------

    /// Number of requests `peer` has outstanding.
    pub fn outstanding(&self, peer: PeerKey) -> usize {
        self.outstanding.get(&peer).map_or(0, HashSet::len)
    }

    /// Requests outstanding across all peers.
    pub fn total_outstanding(&self) -> usize {
        self.outstanding.values().map(HashSet::len).sum()
    }

    /// True when every piece is verified.
    pub fn is_complete(&self) -> bool {
        self.have.is_complete()
    }

    /// Number of verified pieces.
    pub fn verified_count(&self) -> u32 {
        self.have.count()
    }

    /// The verified pieces (what we announce in our `bitfield` and `have` messages).
    pub fn have(&self) -> &Bitfield {
        &self.have
    }

    /// The state of `piece` (`None` for an index out of range).
    pub fn state(&self, piece: u32) -> Option<PieceState> {
        self.state.get(piece as usize).copied()
    }

    /// True when the peer has some piece we have not verified: we should be `interested`.
    pub fn wants_any(&self, peer_has: &Bitfield) -> bool {
        !self.have.is_complete() && peer_has.has_any_not_in(&self.have)
    }
}

/// The request for block `i` of `piece` (the last block of the last piece may be short).
fn request_for(layout: &Layout, piece: u32, i: u32) -> BlockRequest {
    BlockRequest {
        index: piece,
        begin: i * BLOCK_LEN,
        length: layout.block_len(piece, i),
    }
}

/// Marks up to `*left` free blocks of `piece` as requested by `peer`.
fn assign_free(
    layout: &Layout,
    piece: u32,
    prog: &mut Progress,
    peer: PeerKey,
    set: &mut HashSet<BlockRequest>,
    left: &mut usize,
    out: &mut Vec<BlockRequest>,
) {
    for (i, block) in prog.blocks.iter_mut().enumerate() {
        if *left == 0 || prog.free == 0 {
            return;
        }
        if *block == Block::Free {
            *block = Block::Requested(vec![peer]);
            prog.free -= 1;
            let req = request_for(layout, piece, i as u32);
            set.insert(req);
            out.push(req);
            *left -= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn layout(piece_len: u64, total: u64) -> Layout {
        Layout::new(piece_len, vec![(PathBuf::from("f"), total)]).unwrap()
    }

    fn bits(n: u32, set: &[u32]) -> Bitfield {
        let mut b = Bitfield::new(n);
        for &i in set {
            b.set(i);
        }
        b
    }

    impl Picker {
        /// Every internal structure agrees with every other.
        fn check_invariants(&self) {
            let mut requested_pairs = 0;
            for piece in 0..self.state.len() as u32 {
                let st = self.state[piece as usize];
                let a = self.avail[piece as usize] as usize;
                let in_bucket = self.buckets.get(a).is_some_and(|b| {
                    b.get(self.bucket_pos[piece as usize] as usize) == Some(&piece)
                });
                assert_eq!(in_bucket, st == PieceState::Missing, "piece {piece} {st:?}");
                assert_eq!(self.partial.contains_key(&piece), st == PieceState::Partial);
                assert_eq!(self.have.has(piece), st == PieceState::Verified);
                if st == PieceState::Missing {
                    assert!(piece >= self.seq_hint);
                }
            }
            let bucket_total: usize = self.buckets.iter().map(Vec::len).sum();
            assert_eq!(bucket_total, self.missing as usize);
            for (&piece, prog) in &self.partial {
                let free = prog.blocks.iter().filter(|b| **b == Block::Free).count();
                let recv = prog
                    .blocks
                    .iter()
                    .filter(|b| **b == Block::Received)
                    .count();
                assert_eq!(free, prog.free as usize);
                assert_eq!(recv, prog.received as usize);
                assert!(recv < prog.blocks.len());
                assert!(
                    !(recv == 0 && free == prog.blocks.len()),
                    "idle partial {piece}"
                );
                for (i, b) in prog.blocks.iter().enumerate() {
                    if let Block::Requested(peers) = b {
                        assert!(!peers.is_empty() && peers.len() <= ENDGAME_MAX_REQUESTERS);
                        let req = request_for(&self.layout, piece, i as u32);
                        for p in peers {
                            assert!(self.outstanding[p].contains(&req));
                            requested_pairs += 1;
                        }
                    }
                }
            }
            let total: usize = self.outstanding.values().map(HashSet::len).sum();
            assert_eq!(total, requested_pairs);
        }
    }

    /// A picker for `n` one-block pieces with `verified` already verified.
    fn one_block_pieces(n: u32, verified: &[u32], mode: PickMode) -> Picker {
        let l = layout(BLOCK_LEN as u64, n as u64 * BLOCK_LEN as u64);
        Picker::new(&l, &bits(n, verified), mode)
    }

    fn pick(p: &mut Picker, peer: PeerKey, has: &Bitfield, max: usize) -> Vec<BlockRequest> {
        let mut out = Vec::new();
        p.pick(peer, has, max, &mut out);
        p.check_invariants();
        out
    }

    #[test]
    fn rarest_first_picks_the_rarest_piece() {
        // 10 pieces, 0..4 verified so random-first is over.
        let mut p = one_block_pieces(10, &[0, 1, 2, 3], PickMode::RarestFirst);
        let all = Bitfield::full(10);
        p.peer_bitfield(0, &all);
        p.peer_bitfield(1, &bits(10, &[4, 5, 6, 8, 9])); // piece 7 only on `all`
        p.peer_bitfield(2, &bits(10, &[4, 5, 6, 7, 9])); // piece 8 on two peers
        assert_eq!(p.availability(7), 2);
        assert_eq!(p.availability(8), 2);
        p.peer_have(8); // now 8 is on three peers, 7 the rarest
        assert_eq!(p.availability(8), 3);
        let got = pick(&mut p, 0, &all, 1);
        assert_eq!(got.iter().map(|r| r.index).collect::<Vec<_>>(), vec![7]);
        // The rest all have availability 3.
        let got = pick(&mut p, 0, &all, 5);
        assert_eq!(got.len(), 5);
        let mut idx: Vec<u32> = got.iter().map(|r| r.index).collect();
        idx.sort();
        assert_eq!(idx, vec![4, 5, 6, 8, 9]);
        // Never a verified piece; nothing left.
        assert!(pick(&mut p, 1, &all, 5).iter().all(|r| r.index >= 4));
    }

    #[test]
    fn rarest_among_pieces_the_peer_has() {
        let mut p = one_block_pieces(8, &[0, 1, 2, 3], PickMode::RarestFirst);
        p.peer_bitfield(9, &bits(8, &[4])); // 4 is rarest (1)
        p.peer_bitfield(10, &bits(8, &[5, 6, 7]));
        p.peer_bitfield(11, &bits(8, &[5, 6, 7]));
        p.peer_bitfield(12, &bits(8, &[6, 7]));
        let got = pick(&mut p, 9, &bits(8, &[5, 6]), 1);
        assert_eq!(got[0].index, 5, "5 (avail 2) is rarer than 6 (avail 3)");
    }

    #[test]
    fn unregistered_peer_still_gets_pieces_but_registered_rarity_wins() {
        let mut p = one_block_pieces(8, &[0, 1, 2, 3], PickMode::RarestFirst);
        // No bitfield registered: every piece has availability 0, yet the peer is served.
        let has = bits(8, &[6]);
        assert_eq!(pick(&mut p, 0, &has, 1)[0].index, 6);
        // Registered pieces (bucket >= 1) are preferred over unregistered ones (bucket 0).
        p.peer_bitfield(0, &bits(8, &[5]));
        assert_eq!(pick(&mut p, 1, &bits(8, &[4, 5, 7]), 1)[0].index, 5);
    }

    #[test]
    fn ties_are_broken_randomly() {
        let mut seen = HashSet::new();
        for _ in 0..60 {
            let mut p = one_block_pieces(10, &[0, 1, 2, 3], PickMode::RarestFirst);
            let all = Bitfield::full(10);
            p.peer_bitfield(0, &all);
            seen.insert(pick(&mut p, 0, &all, 1)[0].index);
        }
        assert!(seen.len() > 1, "always picked {seen:?}");
        assert!(seen.iter().all(|&i| i >= 4));
    }

    /// A picker for 256 KiB pieces (16 to an extent), `n` of them, the first four verified
    /// (random-first over), one peer with everything registered.
    fn extent_picker(n: u32) -> (Picker, Bitfield) {
        let l = layout(256 << 10, n as u64 * (256 << 10));
        let mut p = Picker::new(&l, &bits(n, &[0, 1, 2, 3]), PickMode::RarestFirst);
        let all = Bitfield::full(n);
        p.peer_bitfield(0, &all);
        (p, all)
    }

    /// The pieces `pick` starts, in order, one piece's worth of blocks at a time.
    fn started_pieces(p: &mut Picker, all: &Bitfield, count: usize) -> Vec<u32> {
        let blocks = (256 << 10) / BLOCK_LEN as usize;
        (0..count)
            .map(|_| pick(p, 0, all, blocks)[0].index)
            .collect()
    }

    #[test]
    fn equally_rare_pieces_are_started_an_extent_at_a_time_in_order() {
        let (mut p, all) = extent_picker(160);
        let order = started_pieces(&mut p, &all, 40);
        p.check_invariants();
        // The first piece opens an extent; the rest of that extent follows in order from
        // there, wrapping round to the extent's start.
        let first = order[0];
        let extent = first / 16;
        let rest: Vec<u32> = (first + 1..extent * 16 + 16)
            .chain(extent * 16..first)
            .filter(|&i| i >= 4)
            .collect();
        assert_eq!(&order[1..1 + rest.len()], &rest[..], "order {order:?}");
        // Every extent is finished before the next one starts (apart from the first's start).
        let mut extents: Vec<u32> = order[1..].iter().map(|i| i / 16).collect();
        extents.dedup();
        let mut unique = extents.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(extents.len(), unique.len(), "extents revisited: {order:?}");
    }

    #[test]
    fn extents_are_chosen_and_opened_at_random() {
        // Leechers of one swarm must not walk an extent in lockstep: both the extent and the
        // piece it is opened at vary from picker to picker.
        let firsts: Vec<u32> = (0..40)
            .map(|_| {
                let (mut p, all) = extent_picker(160);
                started_pieces(&mut p, &all, 1)[0]
            })
            .collect();
        let extents: HashSet<u32> = firsts.iter().map(|i| i / 16).collect();
        let offsets: HashSet<u32> = firsts.iter().map(|i| i % 16).collect();
        assert!(extents.len() > 1, "always extent {extents:?}");
        assert!(offsets.len() > 1, "always opened at offset {offsets:?}");
    }

    #[test]
    fn extent_affinity_never_beats_rarity() {
        let (mut p, all) = extent_picker(160);
        let first = started_pieces(&mut p, &all, 1)[0];
        // Another peer brings every piece but one far from the open extent: the one it
        // lacks is now the rarest and must come next, not the open extent's next piece.
        let far = (first / 16 * 16 + 88) % 160; // another extent, never a verified piece
        let mut others = Bitfield::full(160);
        others.clear(far);
        p.peer_bitfield(5, &others);
        assert_eq!(started_pieces(&mut p, &all, 1), vec![far]);
        p.check_invariants();
    }

    #[test]
    fn a_have_from_another_peer_closes_the_extent() {
        let (mut p, all) = extent_picker(160);
        let first = started_pieces(&mut p, &all, 2)[0];
        assert_eq!(p.open_extents, vec![first]);
        // A leecher announces a piece of another extent: ours stays open.
        let other_extent = (first / 16 * 16 + 40) % 160;
        p.peer_have(other_extent);
        assert_eq!(p.open_extents, vec![first]);
        // It announces a piece of ours: it is walking the same extent, so we leave it.
        let ours = first / 16 * 16 + (first + 8) % 16;
        p.peer_have(ours);
        assert!(p.open_extents.is_empty());
        p.check_invariants();
    }

    #[test]
    fn pieces_of_an_extent_or_larger_have_no_affinity() {
        let l = layout(4 << 20, 64 * (4 << 20));
        let p = Picker::new(&l, &Bitfield::new(64), PickMode::RarestFirst);
        assert_eq!(p.extent_pieces, 1);
        let l = layout(16 << 10, 64 * (16 << 10));
        let p = Picker::new(&l, &Bitfield::new(64), PickMode::RarestFirst);
        assert_eq!(p.extent_pieces, 256);
    }

    #[test]
    fn seeds_are_counted_once_not_piece_by_piece() {
        let mut p = one_block_pieces(8, &[0, 1, 2, 3], PickMode::RarestFirst);
        let all = Bitfield::full(8);
        p.peer_bitfield(1, &all);
        p.peer_bitfield(2, &all);
        p.peer_bitfield(3, &bits(8, &[5]));
        assert_eq!(p.seeds.len(), 2);
        assert_eq!((p.availability(4), p.availability(5)), (2, 3));
        assert_eq!(p.avail[4], 0, "a seed does not touch the per-piece counts");
        p.check_invariants();
        // A seed's rarest pieces are the ones only seeds have (bucket 0): never 5.
        let got = pick(&mut p, 1, &all, 3);
        assert!(got.iter().all(|r| r.index != 5), "{got:?}");
        p.peer_gone(1, &all);
        p.peer_gone(3, &bits(8, &[5]));
        assert_eq!((p.availability(4), p.availability(5)), (1, 1));
        assert_eq!(p.outstanding(1), 0);
        p.check_invariants();
    }

    #[test]
    fn a_peer_that_completes_by_haves_stays_counted_piece_by_piece() {
        let mut p = one_block_pieces(3, &[], PickMode::RarestFirst);
        let mut has = bits(3, &[0, 1]);
        p.peer_bitfield(1, &has);
        has.set(2);
        p.peer_have(2);
        assert!(p.seeds.is_empty());
        assert_eq!(p.availability(2), 1);
        p.peer_gone(1, &has);
        assert_eq!((0..3).map(|i| p.availability(i)).sum::<u32>(), 0);
        p.check_invariants();
    }

    #[test]
    fn first_pieces_are_random_not_rarest() {
        let mut seen = HashSet::new();
        for _ in 0..60 {
            let mut p = one_block_pieces(10, &[], PickMode::RarestFirst);
            let all = Bitfield::full(10);
            p.peer_bitfield(0, &all);
            for k in 1..=3 {
                p.peer_bitfield(k, &bits(10, &[1, 2, 3, 4, 5, 6, 7, 8, 9])); // piece 0 rarest
            }
            seen.insert(pick(&mut p, 0, &all, 1)[0].index);
        }
        assert!(seen.len() > 1, "random first pieces, got {seen:?}");
    }

    #[test]
    fn partial_pieces_are_finished_first() {
        // 4 pieces of 4 blocks.
        let l = layout(4 * BLOCK_LEN as u64, 16 * BLOCK_LEN as u64);
        let mut p = Picker::new(&l, &Bitfield::new(4), PickMode::RarestFirst);
        let all = Bitfield::full(4);
        p.peer_bitfield(1, &all);
        p.peer_bitfield(2, &all);
        let first = pick(&mut p, 1, &all, 1);
        assert_eq!(first.len(), 1);
        let piece = first[0].index;
        assert_eq!(p.state(piece), Some(PieceState::Partial));
        // Another peer continues that piece before starting any other.
        let next = pick(&mut p, 2, &all, 3);
        assert_eq!(next.len(), 3);
        assert!(next.iter().all(|r| r.index == piece));
        let begins: Vec<u32> = next.iter().map(|r| r.begin).collect();
        assert_eq!(begins, vec![BLOCK_LEN, 2 * BLOCK_LEN, 3 * BLOCK_LEN]);
        // Now the piece is fully requested: a new piece starts.
        let other = pick(&mut p, 2, &all, 1);
        assert_ne!(other[0].index, piece);
    }

    #[test]
    fn sequential_mode_goes_in_index_order() {
        let l = layout(2 * BLOCK_LEN as u64, 5 * 2 * BLOCK_LEN as u64);
        let mut p = Picker::new(&l, &bits(5, &[0]), PickMode::Sequential);
        let has = bits(5, &[0, 2, 3, 4]); // peer lacks piece 1
        p.peer_bitfield(0, &has);
        let got = pick(&mut p, 0, &has, 5);
        let order: Vec<(u32, u32)> = got.iter().map(|r| (r.index, r.begin)).collect();
        assert_eq!(
            order,
            vec![(2, 0), (2, BLOCK_LEN), (3, 0), (3, BLOCK_LEN), (4, 0)]
        );
        // A peer with piece 1 gets it (the hint did not skip past it).
        let got = pick(&mut p, 1, &bits(5, &[1]), 2);
        assert_eq!(got[0], request_for(&l, 1, 0));
        assert_eq!(got[1], request_for(&l, 1, 1));
        // A failed earlier piece comes first among new pieces, after the partial piece 4.
        p.piece_failed(0);
        let got = pick(&mut p, 2, &Bitfield::full(5), 3);
        let order: Vec<(u32, u32)> = got.iter().map(|r| (r.index, r.begin)).collect();
        assert_eq!(order, vec![(4, BLOCK_LEN), (0, 0), (0, BLOCK_LEN)]);
    }

    #[test]
    fn nothing_is_picked_twice_outside_endgame() {
        let l = layout(4 * BLOCK_LEN as u64, 40 * BLOCK_LEN as u64 - 100);
        let n = l.num_pieces();
        let total_blocks: u32 = (0..n).map(|i| l.blocks_in_piece(i)).sum();
        let mut p = Picker::new(&l, &Bitfield::new(n), PickMode::RarestFirst);
        let peers: Vec<Bitfield> = (0..5)
            .map(|k| bits(n, &(0..n).filter(|i| (i + k) % 3 != 0).collect::<Vec<_>>()))
            .collect();
        for (k, b) in peers.iter().enumerate() {
            p.peer_bitfield(k, b);
        }
        let mut all = HashSet::new();
        'rounds: for _round in 0..1000 {
            for (k, b) in peers.iter().enumerate() {
                if all.len() == total_blocks as usize {
                    break 'rounds;
                }
                assert!(!p.in_endgame());
                // One block per call so a call never runs from the last fresh block into
                // endgame duplicates (which a larger `max` legitimately does).
                for r in pick(&mut p, k, b, 1) {
                    assert!(all.insert(r), "{r:?} picked twice");
                    assert!(b.has(r.index));
                }
            }
        }
        assert_eq!(all.len(), total_blocks as usize);
        assert!(p.in_endgame());
        let sum: usize = (0..5).map(|k| p.outstanding(k)).sum();
        assert_eq!(sum, total_blocks as usize);
    }

    #[test]
    fn choke_returns_requests_to_the_pool() {
        let l = layout(4 * BLOCK_LEN as u64, 4 * BLOCK_LEN as u64);
        let mut p = Picker::new(&l, &Bitfield::new(1), PickMode::RarestFirst);
        let all = Bitfield::full(1);
        p.peer_bitfield(1, &all);
        p.peer_bitfield(2, &all);
        let a = pick(&mut p, 1, &all, 2);
        assert_eq!(p.outstanding(1), 2);
        let returned = p.requests_returned(1);
        p.check_invariants();
        assert_eq!(returned, a);
        assert_eq!(p.outstanding(1), 0);
        assert_eq!(p.state(0), Some(PieceState::Missing));
        // B now gets the same blocks first.
        let b = pick(&mut p, 2, &all, 4);
        assert_eq!(&b[..2], &a[..]);
        // A block received from A after its requests were returned is not expected.
        assert!(!p.block_received(1, a[0]).expected);
        // Returning with a block received keeps the piece partial.
        assert!(p.block_received(2, b[0]).expected);
        p.requests_returned(2);
        p.check_invariants();
        assert_eq!(p.state(0), Some(PieceState::Partial));
        let again = pick(&mut p, 1, &all, 4);
        assert_eq!(again, b[1..].to_vec());
    }

    #[test]
    fn peer_gone_updates_availability_and_returns_requests() {
        let mut p = one_block_pieces(6, &[0, 1, 2, 3], PickMode::RarestFirst);
        let a = bits(6, &[4, 5]);
        let b = bits(6, &[5]);
        p.peer_bitfield(7, &a);
        p.peer_bitfield(8, &b);
        assert_eq!((p.availability(4), p.availability(5)), (1, 2));
        let got = pick(&mut p, 7, &a, 1);
        assert_eq!(got[0].index, 4, "rarest");
        p.peer_gone(7, &a);
        p.check_invariants();
        assert_eq!((p.availability(4), p.availability(5)), (0, 1));
        assert_eq!(p.outstanding(7), 0);
        assert_eq!(p.state(4), Some(PieceState::Missing));
        // A new peer with the same pieces gets 4 again (still the rarest).
        p.peer_bitfield(9, &a);
        assert_eq!(pick(&mut p, 8, &a, 1)[0].index, 4);
    }

    #[test]
    fn endgame_duplicates_go_only_to_peers_about_to_run_dry() {
        // One piece of 40 blocks, requested half by peer 1 and half by peer 2: endgame.
        let l = layout(40 * BLOCK_LEN as u64, 40 * BLOCK_LEN as u64);
        let mut p = Picker::new(&l, &Bitfield::new(1), PickMode::RarestFirst);
        let all = Bitfield::full(1);
        for k in 1..=3 {
            p.peer_bitfield(k, &all);
        }
        assert_eq!(pick(&mut p, 1, &all, 20).len(), 20);
        assert_eq!(pick(&mut p, 2, &all, 20).len(), 20);
        assert!(p.in_endgame());
        // Peer 2 still has 20 blocks on their way: nothing more for it.
        assert!(pick(&mut p, 2, &all, 100).is_empty());
        // Peer 3 has none: duplicates, but only up to ENDGAME_QUEUE in flight.
        assert_eq!(pick(&mut p, 3, &all, 100).len(), ENDGAME_QUEUE);
        assert!(pick(&mut p, 3, &all, 100).is_empty());
        p.check_invariants();
    }

    #[test]
    fn endgame_duplicates_across_peers_and_reports_cancels() {
        // One piece of two blocks; all peers have it.
        let l = layout(2 * BLOCK_LEN as u64, 2 * BLOCK_LEN as u64);
        let mut p = Picker::new(&l, &Bitfield::new(1), PickMode::RarestFirst);
        let all = Bitfield::full(1);
        for k in 1..=5 {
            p.peer_bitfield(k, &all);
        }
        let a = pick(&mut p, 1, &all, 10);
        assert_eq!(a.len(), 2);
        assert!(p.in_endgame());
        // A gets no duplicates of its own requests.
        assert!(pick(&mut p, 1, &all, 10).is_empty());
        // B and C duplicate both blocks; D gets nothing (ENDGAME_MAX_REQUESTERS = 3).
        assert_eq!(pick(&mut p, 2, &all, 10), a);
        assert_eq!(pick(&mut p, 3, &all, 10), a);
        assert!(pick(&mut p, 4, &all, 10).is_empty());
        // B delivers block 0: A and C get cancels.
        let out = p.block_received(2, a[0]);
        p.check_invariants();
        assert!(out.expected && !out.piece_complete);
        let mut cancel = out.cancel.clone();
        cancel.sort();
        assert_eq!(cancel, vec![1, 3]);
        assert_eq!(
            (p.outstanding(1), p.outstanding(2), p.outstanding(3)),
            (1, 1, 1)
        );
        // A's late copy is a duplicate.
        let late = p.block_received(1, a[0]);
        assert!(!late.expected && late.cancel.is_empty());
        // C delivers block 1: piece complete, A and B cancelled.
        let out = p.block_received(3, a[1]);
        assert!(out.expected && out.piece_complete);
        let mut cancel = out.cancel;
        cancel.sort();
        assert_eq!(cancel, vec![1, 2]);
        assert_eq!(p.state(0), Some(PieceState::Complete));
        assert!(!p.in_endgame());
        assert_eq!((0..5).map(|k| p.outstanding(k)).sum::<usize>(), 0);
        p.piece_verified(0);
        p.check_invariants();
        assert!(p.is_complete());
        assert_eq!(p.verified_count(), 1);
        assert!(pick(&mut p, 4, &all, 10).is_empty());
    }

    #[test]
    fn endgame_starts_only_when_no_block_is_free() {
        let mut p = one_block_pieces(2, &[], PickMode::RarestFirst);
        let all = Bitfield::full(2);
        p.peer_bitfield(1, &all);
        p.peer_bitfield(2, &all);
        let a = pick(&mut p, 1, &all, 1);
        assert!(!p.in_endgame());
        // B gets the other piece, not a duplicate.
        let b = pick(&mut p, 2, &all, 5);
        assert_eq!(b.len(), 2, "one fresh block, then one endgame duplicate");
        assert_ne!(b[0], a[0]);
        assert_eq!(b[1], a[0]);
        assert!(p.in_endgame());
    }

    #[test]
    fn failed_piece_is_picked_again() {
        let l = layout(2 * BLOCK_LEN as u64, 2 * BLOCK_LEN as u64);
        let mut p = Picker::new(&l, &Bitfield::new(1), PickMode::RarestFirst);
        let all = Bitfield::full(1);
        p.peer_bitfield(1, &all);
        let reqs = pick(&mut p, 1, &all, 5);
        for r in &reqs {
            assert!(p.block_received(1, *r).expected);
        }
        assert_eq!(p.state(0), Some(PieceState::Complete));
        assert!(
            pick(&mut p, 1, &all, 5).is_empty(),
            "hashing pieces are not picked"
        );
        p.piece_failed(0);
        p.check_invariants();
        assert_eq!(p.state(0), Some(PieceState::Missing));
        assert!(!p.have().has(0));
        assert_eq!(pick(&mut p, 2, &all, 5), reqs);
        // Failing a partial piece forgets its requests too.
        p.piece_failed(0);
        p.check_invariants();
        assert_eq!(p.outstanding(2), 0);
        assert!(!p.block_received(2, reqs[0]).expected);
    }

    #[test]
    fn completion_with_short_last_piece_and_block() {
        // Pieces of 2 blocks; total 50,000 bytes: piece 1 is 17,232 bytes = 16,384 + 848.
        let l = layout(2 * BLOCK_LEN as u64, 50_000);
        let mut p = Picker::new(&l, &Bitfield::new(2), PickMode::Sequential);
        let all = Bitfield::full(2);
        p.peer_bitfield(1, &all);
        let reqs = pick(&mut p, 1, &all, 10);
        let shape: Vec<(u32, u32, u32)> =
            reqs.iter().map(|r| (r.index, r.begin, r.length)).collect();
        assert_eq!(
            shape,
            vec![
                (0, 0, BLOCK_LEN),
                (0, BLOCK_LEN, BLOCK_LEN),
                (1, 0, BLOCK_LEN),
                (1, BLOCK_LEN, 848)
            ]
        );
        // A wrongly sized or misplaced block is unexpected and changes nothing.
        let wrong = BlockRequest {
            length: 849,
            ..reqs[3]
        };
        assert!(!p.block_received(1, wrong).expected);
        let misplaced = BlockRequest {
            begin: 1,
            ..reqs[0]
        };
        assert!(!p.block_received(1, misplaced).expected);
        assert_eq!(p.outstanding(1), 4);
        // Last block first: piece 1 is not complete until block 0 arrives.
        assert!(!p.block_received(1, reqs[3]).piece_complete);
        assert!(p.block_received(1, reqs[2]).piece_complete);
        assert_eq!(p.state(1), Some(PieceState::Complete));
        assert!(!p.block_received(1, reqs[0]).piece_complete);
        assert!(p.block_received(1, reqs[1]).piece_complete);
        p.piece_verified(0);
        assert!(!p.is_complete());
        p.piece_verified(1);
        p.check_invariants();
        assert!(p.is_complete());
        assert!(!p.wants_any(&all));
    }

    #[test]
    fn picker_never_picks_what_we_have_and_tracks_interest() {
        let mut p = one_block_pieces(5, &[0, 2, 4], PickMode::RarestFirst);
        let all = Bitfield::full(5);
        p.peer_bitfield(0, &all);
        assert!(p.wants_any(&all));
        assert!(!p.wants_any(&bits(5, &[0, 2])));
        let got = pick(&mut p, 0, &all, 10);
        let mut idx: Vec<u32> = got.iter().map(|r| r.index).collect();
        idx.sort();
        assert_eq!(idx, vec![1, 3]);
    }

    #[test]
    fn large_torrent_downloads_to_completion_with_random_events() {
        // 65,000 one-block pieces, 20 peers with random-ish bitfields; drive the picker
        // through picks, receipts, chokes, departures and failures; check invariants often.
        let n = 65_000;
        let mut p = one_block_pieces(n, &[], PickMode::RarestFirst);
        let mut seed = 0x1234_5678_9abc_def0u64;
        let mut rnd = move |m: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % m
        };
        let mut peers: Vec<Bitfield> = (0..20)
            .map(|_| {
                let mut b = Bitfield::new(n);
                for i in 0..n {
                    if rnd(4) != 0 {
                        b.set(i);
                    }
                }
                b
            })
            .collect();
        peers[0] = Bitfield::full(n); // a seeder so completion is possible
        for (k, b) in peers.iter().enumerate() {
            p.peer_bitfield(k, b);
        }
        let mut step = 0u32;
        let mut buf = Vec::new();
        while !p.is_complete() && step < 200_000 {
            step += 1;
            let k = rnd(peers.len() as u64) as usize;
            buf.clear();
            p.pick(k, &peers[k], 8, &mut buf);
            match rnd(100) {
                0 => {
                    p.requests_returned(k);
                    continue;
                }
                1 if k != 0 => {
                    p.peer_gone(k, &peers[k]);
                    p.peer_bitfield(k, &peers[k]); // reconnects
                    continue;
                }
                _ => {}
            }
            for r in buf.drain(..) {
                let out = p.block_received(k, r);
                assert!(out.expected);
                if out.piece_complete {
                    if rnd(50) == 0 {
                        p.piece_failed(r.index);
                    } else {
                        p.piece_verified(r.index);
                    }
                }
            }
            if step % 5000 == 0 {
                p.check_invariants();
            }
        }
        p.check_invariants();
        assert!(p.is_complete(), "stopped after {step} steps");
        assert_eq!(p.verified_count(), n);
    }
}
