//! The coordinator thread: the one owner of the download's state.
//!
//! It owns the picker, every connected peer's state, the pieces being assembled and the list of
//! known peer addresses. Everything else talks to it over crossbeam channels:
//!
//! ```text
//! peer reader threads ──Event──────────┐
//! verifier threads ─────HashResult─────┤
//! announcer thread ─────Vec<SocketAddr>┼──► coordinator ──Command──► peer writer threads
//! listener thread ──────TcpStream──────┤                 ──HashJob──► verifier threads
//! ticker (1 s) ────────────────────────┤                 ──AnnouncerCommand──► announcer
//! signal thread ────────stop───────────┘                 ──Bitfield (≤ 1/s)──► resume saver
//! ```
//!
//! Because only this thread changes piece and peer state, neither the picker nor the peer table
//! needs a lock. Its work per block is small (bookkeeping and a few channel sends): hashing and
//! writing happen on the verifier threads.

use crate::bitfield::Bitfield;
use crate::choker;
use crate::layout::BLOCK_LEN;
use crate::metainfo::Metainfo;
use crate::peer::{self, Command, Event, EventKind, Origin, PeerContext, PeerError, PeerKey};
use crate::picker::{PickMode, Picker};
use crate::progress::{Progress, RateMeter, Snapshot};
use crate::storage::Storage;
use crate::tracker::{AnnouncerCommand, TransferStats};
use crate::verify::{HashJob, HashOutcome, HashResult, JobSender};
use crate::wire::BlockRequest;
use crossbeam_channel::{never, select, tick, unbounded, Receiver, Sender};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// When a running download stops.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SeedPolicy {
    /// Exit as soon as every piece is verified (like wget).
    No,
    /// Keep seeding until interrupted.
    Forever,
    /// Seed until uploaded / size reaches the ratio.
    Ratio(f64),
    /// Seed for this long after completion.
    Time(Duration),
}

/// Tunables of the coordinator.
#[derive(Debug, Clone)]
pub struct CoordinatorConfig {
    pub max_peers: usize,
    pub mode: PickMode,
    /// Give up when nothing was verified for this long.
    pub timeout: Duration,
    /// A peer with requests outstanding and no block for this long is snubbed.
    pub snub_timeout: Duration,
    pub seed: SeedPolicy,
    pub bind_ip: Option<IpAddr>,
    /// Our own listening address, never dialled.
    pub listen_addr: Option<SocketAddr>,
    /// Upload slots (the optimistic one comes on top).
    pub upload_slots: usize,
    /// msync every map before reporting completion. Off where the resume state records the
    /// boot id instead (`crate::resume_store`): the kernel writes the pages back.
    pub flush_on_complete: bool,
}

/// Channels the coordinator listens on.
pub struct Inputs {
    pub events: Receiver<Event>,
    pub hash_results: Receiver<HashResult>,
    pub new_peers: Receiver<Vec<SocketAddr>>,
    pub incoming: Receiver<TcpStream>,
    /// A signal number when the user asks us to stop (SIGINT, SIGTERM).
    pub stop: Receiver<i32>,
}

/// Channels the coordinator sends on.
pub struct Outputs {
    pub hash_jobs: JobSender,
    pub announcer: Option<Sender<AnnouncerCommand>>,
    /// The resume saver: offered the verified pieces at most once a second.
    pub resume: Option<Sender<Bitfield>>,
}

/// How the run ended.
#[derive(Debug)]
pub enum Outcome {
    Complete,
    /// Nothing was verified within the timeout.
    TimedOut,
    /// Storage refused a verified piece.
    StorageFailed(String),
    /// Stopped by this signal.
    Interrupted(i32),
}

/// Figures for the end-of-run summary.
#[derive(Debug, Default, Clone)]
pub struct RunStats {
    pub downloaded: u64,
    pub uploaded: u64,
    pub wasted: u64,
    pub pieces_failed: u32,
    pub hash_time: Duration,
    pub write_time: Duration,
    pub peers_seen: usize,
    pub per_peer: Vec<PeerSummary>,
    /// Largest private (anonymous) resident memory seen, bytes (Linux /proc).
    pub peak_rss_anon: u64,
    /// Most OS threads seen at once.
    pub peak_threads: u64,
    /// The verified pieces when the run ended (for the final resume save).
    pub verified: Option<Bitfield>,
    /// Pieces were still at the verifiers (possibly being written) when the run ended.
    pub writes_pending: bool,
}

#[derive(Debug, Clone)]
pub struct PeerSummary {
    pub addr: Option<SocketAddr>,
    pub client: String,
    pub downloaded: u64,
    pub uploaded: u64,
    pub blocks: u64,
    pub connected_for: Duration,
}

struct PeerState {
    addr: Option<SocketAddr>,
    peer_id: Option<crate::ids::PeerId>,
    /// We dialled it (rather than it dialling us).
    outgoing: bool,
    commands: Sender<Command>,
    handshaken: bool,
    client: String,
    bitfield: Bitfield,
    got_bitfield: bool,
    peer_choking: bool,
    am_interested: bool,
    peer_interested: bool,
    am_choking: bool,
    /// When `am_choking` last changed (the choker's round robin while seeding).
    choke_changed: Instant,
    optimistic: bool,
    down: RateMeter,
    up: RateMeter,
    blocks: u64,
    last_block: Instant,
    connected_at: Instant,
    snubbed: bool,
    /// Blocks that arrived though we had not (or no longer) asked this peer for them.
    unexpected_blocks: u32,
    /// Requests we withdrew from this peer (cancels, choke, snub): blocks it may still send.
    withdrawn: u32,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum AddrState {
    Idle,
    Connecting,
    Connected,
    Banned,
    /// A seed, seen while we were one too: nothing to trade, never dialled again.
    Seed,
}

struct KnownAddr {
    state: AddrState,
    failures: u32,
    retry_at: Instant,
}

/// Requests in flight across all peers (16 KiB each: 16 MiB). Received blocks wait in memory
/// for the rest of their piece, so this bounds private memory whatever the swarm size. It is
/// also the budget the active peers' queues share (see [`Coordinator::fill_requests`]).
const MAX_BLOCKS_IN_FLIGHT: usize = 1024;
/// A peer's queue holds about a second of its download rate, within these bounds (BEP 3
/// pipelining: requests must be waiting at the peer while earlier blocks travel back).
const MIN_QUEUE_DEPTH: usize = 4;
const MAX_QUEUE_DEPTH: usize = 256;
/// The queue of a peer whose rate is not known yet (until the next tick measures it): deep
/// enough that a fast peer is not held back, and only 8 such peers fit in the budget, so a
/// swarm of hundreds starts with a few peers in large batches rather than 32 in small ones.
const NEW_PEER_QUEUE_DEPTH: usize = 128;
/// Connection attempts (connect + handshake) under way at once. Dialling a few hundred
/// addresses at the same moment makes every one of them slow to answer; the first peers to
/// answer start sending while the next attempts go out.
const MAX_CONNECTING: usize = 32;
/// How often the slowest active peer gives its place to a waiting one, so that a faster peer
/// can be found.
const ROTATE_EVERY: Duration = Duration::from_secs(3);

/// Who sent one block of a failed piece, and the digest of what they sent.
type BlockWitness = (Option<SocketAddr>, [u8; 20]);

/// A piece whose blocks are arriving.
struct Assembly {
    blocks: Vec<Option<Vec<u8>>>,
    /// Who sent each block.
    senders: Vec<Option<SocketAddr>>,
}

pub struct Coordinator {
    meta: Arc<Metainfo>,
    ctx: Arc<PeerContext>,
    cfg: CoordinatorConfig,
    picker: Picker,
    peers: HashMap<PeerKey, PeerState>,
    known: HashMap<SocketAddr, KnownAddr>,
    assembling: HashMap<u32, Assembly>,
    /// Pieces at the verifiers, with the peer (by address) that sent each block.
    hashing: HashMap<u32, Vec<Option<SocketAddr>>>,
    /// Failed pieces: who sent each block, and its digest, to compare once the piece verifies.
    suspects: HashMap<u32, Vec<BlockWitness>>,
    /// Blocks proven bad, by sender.
    strikes: HashMap<SocketAddr, u32>,
    next_key: PeerKey,
    stats: Arc<TransferStats>,
    run: RunStats,
    down: RateMeter,
    up: RateMeter,
    last_progress: Instant,
    /// When the coordinator started (average rates on the last progress line).
    started: Instant,
    completed_at: Option<Instant>,
    progress: Progress,
    optimistic_rotated: Instant,
    last_choke: Instant,
    storage: Arc<Storage>,
    requests: Vec<BlockRequest>,
    /// True while a batch of events from one peer is handled (requests are topped up after).
    batching: Option<PeerKey>,
    /// Peers we currently request from: as many as their queues fit in the in-flight budget.
    active: std::collections::HashSet<PeerKey>,
    /// When the slowest active peer last made room for a waiting one.
    last_rotation: Instant,
    hash_jobs: JobSender,
    announcer: Option<Sender<AnnouncerCommand>>,
    resume: Option<Sender<Bitfield>>,
    /// Pieces verified since the resume saver last took a snapshot.
    resume_dirty: bool,
    /// Bytes down, bytes up and peers at the last memory sample.
    sampled_at: Option<(u64, u64, usize)>,
}

/// Unrequested blocks tolerated from a peer beyond those we withdrew from it (races with
/// our cancels are normal; a stream of unrequested data is not).
const UNEXPECTED_SLACK: u32 = 4;

/// How long, after a stop signal, verified pieces still at the verifiers are waited for.
const STOP_DRAIN: Duration = Duration::from_millis(500);

impl Coordinator {
    pub fn new(
        meta: Arc<Metainfo>,
        ctx: Arc<PeerContext>,
        cfg: CoordinatorConfig,
        have: &Bitfield,
        stats: Arc<TransferStats>,
        progress: Progress,
        outputs: Outputs,
    ) -> Coordinator {
        let layout = ctx.storage.layout().clone();
        let picker = Picker::new(&layout, have, cfg.mode);
        let now = Instant::now();
        Coordinator {
            storage: ctx.storage.clone(),
            meta,
            ctx,
            cfg,
            picker,
            peers: HashMap::new(),
            known: HashMap::new(),
            assembling: HashMap::new(),
            hashing: HashMap::new(),
            suspects: HashMap::new(),
            strikes: HashMap::new(),
            next_key: 0,
            stats,
            run: RunStats::default(),
            down: RateMeter::default(),
            up: RateMeter::default(),
            last_progress: now,
            started: now,
            completed_at: None,
            progress,
            optimistic_rotated: now,
            last_choke: now - Duration::from_secs(60),
            requests: Vec::new(),
            batching: None,
            last_rotation: Instant::now(),
            active: std::collections::HashSet::new(),
            hash_jobs: outputs.hash_jobs,
            announcer: outputs.announcer,
            resume: outputs.resume,
            resume_dirty: false,
            sampled_at: None,
        }
    }

    /// Runs until the download (and any seeding) is over; returns why it ended.
    pub fn run(mut self, inputs: Inputs, extra_peers: Vec<SocketAddr>) -> (Outcome, RunStats) {
        let Inputs {
            events,
            mut hash_results,
            mut new_peers,
            mut incoming,
            mut stop,
        } = inputs;
        let ticker = tick(Duration::from_secs(1));
        let mut last_tick = Instant::now();
        self.add_known(extra_peers);
        self.connect_more();
        if self.picker.is_complete() {
            self.on_complete();
        }
        let outcome = loop {
            if let Some(outcome) = self.finished() {
                break outcome;
            }
            select! {
                recv(events) -> ev => {
                    let Ok(ev) = ev else { break Outcome::TimedOut };
                    self.on_event(ev);
                    // Drain what is already queued before looking at timers again.
                    for ev in events.try_iter().take(256) {
                        self.on_event(ev);
                    }
                }
                recv(hash_results) -> r => match r {
                    Ok(r) => {
                        if let Some(outcome) = self.on_hash_result(r) {
                            break outcome;
                        }
                    }
                    // No verifiers (a seed that started complete): stop listening.
                    Err(_) => hash_results = never(),
                },
                recv(new_peers) -> addrs => match addrs {
                    Ok(addrs) => { self.add_known(addrs); self.connect_more(); }
                    Err(_) => new_peers = never(),
                },
                recv(incoming) -> stream => match stream {
                    Ok(stream) => self.accept(stream),
                    Err(_) => incoming = never(),
                },
                recv(ticker) -> _ => {
                    let elapsed = last_tick.elapsed();
                    last_tick = Instant::now();
                    self.on_tick(elapsed);
                }
                recv(stop) -> signal => match signal {
                    Ok(signal) => {
                        log::info!("signal {signal}: stopping");
                        break Outcome::Interrupted(signal);
                    }
                    Err(_) => stop = never(),
                },
            }
        };
        if matches!(outcome, Outcome::Interrupted(_)) {
            // Pieces already hashed are worth keeping: wait briefly for their results.
            let deadline = Instant::now() + STOP_DRAIN;
            while !self.hashing.is_empty() {
                let Ok(r) = hash_results.recv_deadline(deadline) else {
                    break;
                };
                if self.on_hash_result(r).is_some() {
                    break;
                }
            }
        }
        // The last line shows the run's average rates rather than the last second's.
        let mut last = self.snapshot();
        let secs = self.started.elapsed().as_secs_f64().max(1e-3);
        last.down_rate = self.down.total() as f64 / secs;
        last.up_rate = self.up.total() as f64 / secs;
        self.progress.update(&last);
        self.progress.finish();
        self.run.downloaded = self.down.total();
        self.run.uploaded = self.up.total();
        self.run.peers_seen = self.known.len();
        self.run.verified = Some(self.picker.have().clone());
        self.run.writes_pending = !self.hashing.is_empty();
        let peers: Vec<PeerKey> = self.peers.keys().copied().collect();
        for key in peers {
            self.drop_peer(key, "shutting down");
        }
        (outcome, self.run)
    }

    fn finished(&self) -> Option<Outcome> {
        if self.stalled() {
            return Some(Outcome::TimedOut);
        }
        let done_at = self.completed_at?;
        let total = self.storage.layout().total_length().max(1) as f64;
        match self.cfg.seed {
            SeedPolicy::No => Some(Outcome::Complete),
            SeedPolicy::Forever => None,
            SeedPolicy::Ratio(r) => {
                (self.up.total() as f64 / total >= r).then_some(Outcome::Complete)
            }
            SeedPolicy::Time(t) => (done_at.elapsed() >= t).then_some(Outcome::Complete),
        }
    }

    // ----- peers: connecting, accepting, dropping -------------------------------------------

    fn add_known(&mut self, addrs: Vec<SocketAddr>) {
        let now = Instant::now();
        for addr in addrs {
            if Some(addr) == self.cfg.listen_addr || self.is_our_listener(addr) {
                continue;
            }
            self.known.entry(addr).or_insert(KnownAddr {
                state: AddrState::Idle,
                failures: 0,
                retry_at: now,
            });
        }
    }

    fn is_our_listener(&self, addr: SocketAddr) -> bool {
        let Some(listen) = self.cfg.listen_addr else {
            return false;
        };
        addr.port() == listen.port()
            && (listen.ip().is_unspecified() && addr.ip().is_loopback()
                || Some(addr.ip()) == self.cfg.bind_ip)
    }

    fn connect_more(&mut self) {
        if self.completed_at.is_some() && self.cfg.seed == SeedPolicy::No {
            return;
        }
        let now = Instant::now();
        let mut candidates: Vec<SocketAddr> = self
            .known
            .iter()
            .filter(|(_, k)| k.state == AddrState::Idle && k.retry_at <= now)
            .map(|(a, _)| *a)
            .collect();
        crate::ids::shuffle(&mut candidates);
        let connecting = self
            .known
            .values()
            .filter(|k| k.state == AddrState::Connecting)
            .count();
        let room = MAX_CONNECTING.saturating_sub(connecting);
        for addr in candidates.into_iter().take(room) {
            if self.peers.len() >= self.cfg.max_peers {
                break;
            }
            let key = self.new_peer(Some(addr));
            let (tx, rx) = unbounded();
            let p = self.peers.get_mut(&key).expect("just added");
            p.commands = tx;
            p.outgoing = true;
            if let Some(k) = self.known.get_mut(&addr) {
                k.state = AddrState::Connecting;
            }
            let origin = Origin::Outgoing(addr, self.cfg.bind_ip);
            if let Err(e) = peer::spawn(key, origin, self.ctx.clone(), rx) {
                log::warn!("cannot start a peer thread: {e}");
                self.peers.remove(&key);
                break;
            }
        }
    }

    fn accept(&mut self, stream: TcpStream) {
        // A little slack above max_peers so a full client still accepts a few newcomers.
        if self.peers.len() > self.cfg.max_peers + self.cfg.max_peers / 4 {
            return;
        }
        let addr = stream.peer_addr().ok();
        if let Some(k) = addr.and_then(|a| self.known.get(&a)) {
            if k.state == AddrState::Banned {
                return;
            }
        }
        let key = self.new_peer(addr);
        let (tx, rx) = unbounded();
        self.peers.get_mut(&key).expect("just added").commands = tx;
        if peer::spawn(key, Origin::Incoming(stream), self.ctx.clone(), rx).is_err() {
            self.peers.remove(&key);
        }
    }

    fn new_peer(&mut self, addr: Option<SocketAddr>) -> PeerKey {
        let key = self.next_key;
        self.next_key += 1;
        let now = Instant::now();
        let (placeholder, _) = unbounded();
        self.peers.insert(
            key,
            PeerState {
                addr,
                peer_id: None,
                outgoing: false,
                commands: placeholder,
                handshaken: false,
                client: String::new(),
                bitfield: Bitfield::new(self.storage.layout().num_pieces()),
                got_bitfield: false,
                peer_choking: true,
                am_interested: false,
                peer_interested: false,
                am_choking: true,
                choke_changed: now,
                optimistic: false,
                down: RateMeter::default(),
                up: RateMeter::default(),
                blocks: 0,
                last_block: now,
                connected_at: now,
                snubbed: false,
                unexpected_blocks: 0,
                withdrawn: 0,
            },
        );
        key
    }

    /// Forgets a peer: its requests go back to the pool, and dropping its command sender ends
    /// its writer thread, which closes the socket and so ends its reader.
    fn drop_peer(&mut self, key: PeerKey, why: &str) {
        let Some(p) = self.peers.remove(&key) else {
            return;
        };
        log::debug!("peer {key} {:?} dropped: {why}", p.addr);
        let was_active = self.active.remove(&key);
        let had_requests = self.picker.outstanding(key) > 0;
        self.picker.peer_gone(key, &p.bitfield);
        if p.handshaken {
            self.run.per_peer.push(PeerSummary {
                addr: p.addr,
                client: p.client.clone(),
                downloaded: p.down.total(),
                uploaded: p.up.total(),
                blocks: p.blocks,
                connected_for: p.connected_at.elapsed(),
            });
        }
        if let Some(k) = p.addr.and_then(|a| self.known.get_mut(&a)) {
            if k.state != AddrState::Banned {
                k.state = AddrState::Idle;
                if !p.handshaken {
                    k.failures += 1;
                }
                let backoff = 5u64 << k.failures.min(6);
                k.retry_at = Instant::now() + Duration::from_secs(backoff);
            }
        }
        // Its requests (and its place in the active set) are free again: hand them to the
        // others. Only if it had either: dropping 200 idle seeds on completion or at shutdown
        // would otherwise refill every remaining peer once per drop (40,000 calls for nothing).
        if (had_requests || was_active) && self.completed_at.is_none() {
            let keys: Vec<PeerKey> = self.peers.keys().copied().collect();
            for other in keys {
                self.fill_requests(other);
            }
        }
    }

    fn ban(&mut self, key: PeerKey, why: &str) {
        if let Some(addr) = self.peers.get(&key).and_then(|p| p.addr) {
            log::warn!("banning peer {addr}: {why}");
            if let Some(k) = self.known.get_mut(&addr) {
                k.state = AddrState::Banned;
            } else {
                self.known.insert(
                    addr,
                    KnownAddr {
                        state: AddrState::Banned,
                        failures: 0,
                        retry_at: Instant::now(),
                    },
                );
            }
        }
        self.drop_peer(key, why);
    }

    fn send(&mut self, key: PeerKey, cmd: Command) {
        if let Some(p) = self.peers.get(&key) {
            let _ = p.commands.send(cmd);
        }
    }

    // ----- events from peer threads --------------------------------------------------------

    fn on_event(&mut self, ev: Event) {
        let key = ev.peer;
        if !self.peers.contains_key(&key) {
            return; // a peer we already dropped; its threads are winding down
        }
        match ev.kind {
            EventKind::Many(kinds) => {
                // A burst from one peer: handle each, then top up its requests once.
                self.batching = Some(key);
                for kind in kinds {
                    self.on_event(Event { peer: key, kind });
                }
                self.batching = None;
                self.fill_requests(key);
            }
            EventKind::Connected { peer_id, .. } => self.on_connected(key, peer_id),
            EventKind::Gone(err) => self.on_gone(key, err),
            EventKind::Bitfield(bf) => {
                let p = self.peers.get_mut(&key).expect("checked");
                if !p.got_bitfield && p.bitfield.count() == 0 {
                    p.got_bitfield = true;
                    self.picker.peer_bitfield(key, &bf);
                    p.bitfield = bf;
                } else {
                    // BEP 3 allows a bitfield only first, but aria2 sends one mid-connection
                    // once it has pieces: treat it as a batch of `have`s.
                    for piece in bf.iter_set() {
                        if p.bitfield.set(piece) {
                            self.picker.peer_have(piece);
                        }
                    }
                }
                if self.drop_if_both_seeds(key) {
                    return;
                }
                self.update_interest(key);
                self.fill_requests(key);
            }
            EventKind::Have(piece) => {
                if piece >= self.storage.layout().num_pieces() {
                    self.drop_peer(key, "have index out of range");
                    return;
                }
                let p = self.peers.get_mut(&key).expect("checked");
                p.got_bitfield = true;
                if p.bitfield.set(piece) {
                    self.picker.peer_have(piece);
                }
                if self.drop_if_both_seeds(key) {
                    return;
                }
                self.update_interest(key);
                self.fill_requests(key);
            }
            EventKind::Choke => {
                let p = self.peers.get_mut(&key).expect("checked");
                p.peer_choking = true;
                p.withdrawn = p
                    .withdrawn
                    .saturating_add(self.picker.outstanding(key) as u32);
                // Outstanding requests are void once choked (BEP 3): back to the pool.
                self.picker.requests_returned(key);
                self.active.remove(&key);
                self.fill_all_but(key);
            }
            EventKind::Unchoke => {
                let p = self.peers.get_mut(&key).expect("checked");
                p.peer_choking = false;
                p.last_block = Instant::now();
                self.fill_requests(key);
            }
            EventKind::Interested => {
                self.peers.get_mut(&key).expect("checked").peer_interested = true;
                // A free upload slot goes to the newcomer at once rather than at the next round.
                let unchoked = self
                    .peers
                    .values()
                    .filter(|p| !p.am_choking && !p.optimistic)
                    .count();
                if unchoked < self.cfg.upload_slots {
                    let p = self.peers.get_mut(&key).expect("checked");
                    if p.am_choking {
                        p.am_choking = false;
                        p.choke_changed = Instant::now();
                        let _ = p.commands.send(Command::Unchoke);
                    }
                }
            }
            EventKind::NotInterested => {
                self.peers.get_mut(&key).expect("checked").peer_interested = false;
            }
            EventKind::Block { req, data } => self.on_block(key, req, data),
            EventKind::Request(req) => self.on_request(key, req),
            EventKind::Cancel(req) => self.send(key, Command::Unserve(req)),
            EventKind::Uploaded(bytes) => {
                self.up.add(bytes as u64);
                self.stats
                    .uploaded
                    .fetch_add(bytes as u64, Ordering::Relaxed);
                if let Some(p) = self.peers.get_mut(&key) {
                    p.up.add(bytes as u64);
                }
            }
            EventKind::Extended { .. } => {}
        }
    }

    fn on_connected(&mut self, key: PeerKey, peer_id: crate::ids::PeerId) {
        // Two peers that dial each other at once end up with two connections. Both sides keep
        // the one opened by the peer with the lower id, so they agree without talking.
        let existing = self
            .peers
            .iter()
            .find(|(k, p)| **k != key && p.peer_id == Some(peer_id))
            .map(|(k, p)| (*k, p.outgoing));
        if let Some((other, other_outgoing)) = existing {
            let keep_ours = self.ctx.our_id.0 < peer_id.0;
            let new_outgoing = self.peers[&key].outgoing;
            if new_outgoing == keep_ours && other_outgoing != keep_ours {
                self.drop_peer(other, "duplicate connection");
            } else {
                self.drop_peer(key, "duplicate connection");
                return;
            }
        }
        let have = self.picker.have().clone();
        let p = self.peers.get_mut(&key).expect("checked");
        p.handshaken = true;
        p.peer_id = Some(peer_id);
        p.connected_at = Instant::now();
        p.client = client_name(&peer_id.0);
        if let Some(k) = p.addr.and_then(|a| self.known.get_mut(&a)) {
            k.state = AddrState::Connected;
            k.failures = 0;
        }
        log::info!("peer {key} connected: {:?} ({})", p.addr, p.client);
        if have.count() > 0 {
            let _ = p.commands.send(Command::Bitfield(have.as_bytes().to_vec()));
        }
        self.connect_more(); // its place among the connection attempts is free
    }

    fn on_gone(&mut self, key: PeerKey, err: PeerError) {
        if matches!(err, PeerError::OurSelf) {
            self.ban(key, "that is us");
            return;
        }
        if let PeerError::Handshake(_) | PeerError::Protocol(_) = err {
            log::info!("peer {key}: {err}");
        } else {
            log::debug!("peer {key}: {err}");
        }
        self.drop_peer(key, &err.to_string());
        self.connect_more();
    }

    /// Two seeds have nothing to trade: drop the connection, and (if we dialled its address)
    /// never dial it again. Without this, a swarm of N seeds announcing to one tracker would
    /// hold N² connections (two threads each) doing nothing.
    fn drop_if_both_seeds(&mut self, key: PeerKey) -> bool {
        let Some(p) = self.peers.get(&key) else {
            return false;
        };
        if self.completed_at.is_none() || !p.bitfield.is_complete() {
            return false;
        }
        let addr = p.addr;
        self.drop_peer(key, "both of us are seeds");
        if let Some(k) = addr.and_then(|a| self.known.get_mut(&a)) {
            k.state = AddrState::Seed;
        }
        true
    }

    /// Tells the peer whether we want something it has.
    fn update_interest(&mut self, key: PeerKey) {
        let p = self.peers.get_mut(&key).expect("checked");
        // Called for every `have` a peer sends: O(1) for a seed, bytewise otherwise.
        let wanted = self.picker.wants_any(&p.bitfield);
        if wanted != p.am_interested {
            p.am_interested = wanted;
            let cmd = if wanted {
                Command::Interested
            } else {
                Command::NotInterested
            };
            let _ = p.commands.send(cmd);
        }
    }

    /// How many requests to keep in flight with a peer: about a second of its current rate,
    /// within [`MIN_QUEUE_DEPTH`]..=[`MAX_QUEUE_DEPTH`].
    fn queue_depth(p: &PeerState) -> usize {
        if p.snubbed {
            return 1;
        }
        if p.down.rate() == 0.0 {
            return NEW_PEER_QUEUE_DEPTH;
        }
        ((p.down.rate() / BLOCK_LEN as f64) as usize).clamp(MIN_QUEUE_DEPTH, MAX_QUEUE_DEPTH)
    }

    /// The queue depths of the active peers, summed: what they may have in flight.
    fn active_demand(&self) -> usize {
        self.active
            .iter()
            .filter_map(|k| self.peers.get(k))
            .map(Self::queue_depth)
            .sum()
    }

    /// The active peer with the lowest download rate.
    fn slowest_active(&self) -> Option<PeerKey> {
        self.active
            .iter()
            .filter_map(|k| self.peers.get(k).map(|p| (*k, p.down.rate())))
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(k, _)| k)
    }

    fn fill_requests(&mut self, key: PeerKey) {
        if self.batching == Some(key) {
            return; // done once at the end of the batch
        }
        let Some(p) = self.peers.get(&key) else {
            return;
        };
        if p.peer_choking || !p.am_interested || self.completed_at.is_some() {
            return;
        }
        let depth = Self::queue_depth(p);
        if !self.active.contains(&key) {
            // A peer joins the active set only if its queue fits in the budget beside theirs:
            // a few fast peers with deep queues, or many slow ones with short queues. In a
            // swarm of hundreds this keeps most threads asleep and the requests in large
            // batches, instead of hundreds of peers each woken for a few blocks.
            if self.active_demand() + depth > MAX_BLOCKS_IN_FLIGHT {
                return;
            }
            self.active.insert(key);
        }
        // Refill only once half the queue has drained: requests then leave in batches of half
        // a queue, so the peer's writer thread (and the remote end) wake once per batch
        // instead of once per block that arrives.
        let outstanding = self.picker.outstanding(key);
        if outstanding * 2 > depth {
            return;
        }
        // The hard bound on blocks in flight (and so on memory), whatever the rates did since
        // the last tick.
        let room = MAX_BLOCKS_IN_FLIGHT.saturating_sub(self.picker.total_outstanding());
        let want = (depth - outstanding).min(room);
        if want == 0 {
            return;
        }
        let mut reqs = std::mem::take(&mut self.requests);
        reqs.clear();
        self.picker.pick(key, &p.bitfield, want, &mut reqs);
        if !reqs.is_empty() {
            let _ = p.commands.send(Command::Requests(reqs.clone()));
        }
        self.requests = reqs;
    }

    fn fill_all_but(&mut self, skip: PeerKey) {
        let keys: Vec<PeerKey> = self.peers.keys().copied().filter(|k| *k != skip).collect();
        for k in keys {
            self.fill_requests(k);
        }
    }

    fn on_block(&mut self, key: PeerKey, req: BlockRequest, data: Vec<u8>) {
        let len = data.len() as u64;
        if !self
            .storage
            .layout()
            .range_in_piece(req.index, req.begin, req.length)
        {
            self.drop_peer(key, "sent a block outside the torrent");
            return;
        }
        if self.down.total() == 0 {
            log::debug!("first block, from peer {key}");
        }
        self.down.add(len);
        self.stats.downloaded.fetch_add(len, Ordering::Relaxed);
        {
            let p = self.peers.get_mut(&key).expect("checked");
            p.down.add(len);
            p.blocks += 1;
            p.last_block = Instant::now();
            p.snubbed = false;
        }
        let outcome = self.picker.block_received(key, req);
        if !outcome.expected {
            // A duplicate from the endgame, or a block we withdrew (cancel, choke, snub): BEP 3
            // lets us drop it. A peer sending blocks nobody asked it for is dropped.
            self.run.wasted += len;
            let p = self.peers.get_mut(&key).expect("checked");
            p.unexpected_blocks += 1;
            if p.unexpected_blocks > p.withdrawn.saturating_add(UNEXPECTED_SLACK) {
                self.drop_peer(key, "sent blocks we never requested");
                return;
            }
            self.fill_requests(key);
            return;
        }
        for other in outcome.cancel {
            if let Some(p) = self.peers.get_mut(&other) {
                p.withdrawn = p.withdrawn.saturating_add(1);
            }
            self.send(other, Command::Cancel(req));
            // The cancelled request is no longer outstanding with that peer.
            self.fill_requests(other);
        }
        let layout = self.storage.layout();
        let blocks = layout.blocks_in_piece(req.index) as usize;
        let asm = self
            .assembling
            .entry(req.index)
            .or_insert_with(|| Assembly {
                blocks: vec![None; blocks],
                senders: vec![None; blocks],
            });
        let block = (req.begin / BLOCK_LEN) as usize;
        asm.blocks[block] = Some(data);
        asm.senders[block] = self.peers.get(&key).and_then(|p| p.addr);
        if outcome.piece_complete {
            let asm = self.assembling.remove(&req.index).expect("present");
            self.hashing.insert(req.index, asm.senders);
            let blocks = asm
                .blocks
                .into_iter()
                .map(Option::unwrap_or_default)
                .collect();
            let expected = self.meta.info.piece_hashes[req.index as usize];
            // The verifier pool may be busy: this send is where backpressure reaches the peers.
            let job = HashJob {
                piece: req.index,
                blocks,
                expected,
            };
            if !self.hash_jobs.send(job) {
                // Only if every verifier thread has ended (a bug): nothing can be verified
                // any more, and the stall timeout ends the session.
                log::error!("no verifier thread left: piece {} not checked", req.index);
            }
        }
        self.fill_requests(key);
    }

    fn on_hash_result(&mut self, r: HashResult) -> Option<Outcome> {
        self.run.hash_time += r.hash_time;
        self.run.write_time += r.write_time;
        let senders = self.hashing.remove(&r.piece).unwrap_or_default();
        match r.outcome {
            HashOutcome::Written => {
                self.picker.piece_verified(r.piece);
                self.resume_dirty = true;
                self.convict_senders_of_bad_blocks(r.piece);
                self.last_progress = Instant::now();
                let left = self.bytes_left();
                self.stats.left.store(left, Ordering::Relaxed);
                // Have suppression: a peer that has the piece learns nothing from our `have`
                // (the spec allows leaving it out). In a swarm of seeds that is every
                // message: hundreds of peers times thousands of pieces.
                let keys: Vec<PeerKey> = self
                    .peers
                    .iter()
                    .filter(|(_, p)| !p.bitfield.has(r.piece))
                    .map(|(k, _)| *k)
                    .collect();
                for k in keys {
                    self.send(k, Command::Have(r.piece));
                }
                if self.picker.is_complete() && self.hashing.is_empty() {
                    if self.cfg.flush_on_complete {
                        let flush_started = Instant::now();
                        let flushed = self.storage.flush();
                        log::debug!("final flush took {:?}", flush_started.elapsed());
                        if let Err(e) = flushed {
                            return Some(Outcome::StorageFailed(e.to_string()));
                        }
                    }
                    self.on_complete();
                }
                None
            }
            HashOutcome::Mismatch { block_digests } => {
                self.run.pieces_failed += 1;
                self.run.wasted += self.storage.layout().piece_len(r.piece) as u64;
                log::warn!(
                    "piece {} failed its hash check; downloading it again",
                    r.piece
                );
                self.picker.piece_failed(r.piece);
                let mut distinct: Vec<SocketAddr> = senders.iter().flatten().copied().collect();
                distinct.sort();
                distinct.dedup();
                if distinct.len() == 1 {
                    // One peer sent the whole piece: it is to blame.
                    self.strike(distinct[0]);
                } else {
                    // Several peers: remember who sent what, and find out when it verifies.
                    let suspects = senders.into_iter().zip(block_digests).collect();
                    self.suspects.insert(r.piece, suspects);
                }
                let keys: Vec<PeerKey> = self.peers.keys().copied().collect();
                for k in keys {
                    self.fill_requests(k);
                }
                None
            }
            HashOutcome::WriteFailed(e) => Some(Outcome::StorageFailed(e)),
        }
    }

    /// A piece that failed before has now verified: compare each block that was sent then
    /// with the good data, and blame the senders of the blocks that differ.
    fn convict_senders_of_bad_blocks(&mut self, piece: u32) {
        let Some(suspects) = self.suspects.remove(&piece) else {
            return;
        };
        let layout = self.storage.layout().clone();
        let mut good = vec![0u8; BLOCK_LEN as usize];
        for (block, (sender, digest)) in suspects.into_iter().enumerate() {
            let len = layout.block_len(piece, block as u32) as usize;
            let ok = self
                .storage
                .read(piece, block as u32 * BLOCK_LEN, &mut good[..len])
                .is_ok();
            if let (Some(addr), true) = (sender, ok) {
                if crate::sha1::sha1(&good[..len]) != digest {
                    self.strike(addr);
                }
            }
        }
    }

    /// Counts a bad piece against `addr`; a second one bans it (BEP 3 leaves this to clients).
    fn strike(&mut self, addr: SocketAddr) {
        let strikes = self.strikes.entry(addr).or_insert(0);
        *strikes += 1;
        if *strikes < 2 {
            return;
        }
        let key = self
            .peers
            .iter()
            .find(|(_, p)| p.addr == Some(addr))
            .map(|(k, _)| *k);
        match key {
            Some(key) => self.ban(key, "sent data for pieces that failed their hash check"),
            None => {
                if let Some(k) = self.known.get_mut(&addr) {
                    k.state = AddrState::Banned;
                }
            }
        }
    }

    /// Bytes of pieces not yet verified: every piece is `piece_length` long except the last,
    /// so this is O(1) rather than a walk over every piece after each one verifies.
    fn bytes_left(&self) -> u64 {
        let layout = self.storage.layout();
        let n = layout.num_pieces();
        if n == 0 {
            return 0;
        }
        let have = self.picker.have();
        let last = n - 1;
        let full_missing = (n - have.count()) as u64 - u64::from(!have.has(last));
        full_missing * layout.piece_length()
            + if have.has(last) {
                0
            } else {
                layout.piece_len(last) as u64
            }
    }

    fn on_complete(&mut self) {
        if self.completed_at.is_some() {
            return;
        }
        self.completed_at = Some(Instant::now());
        log::debug!("every piece verified");
        self.stats.left.store(0, Ordering::Relaxed);
        if let Some(a) = &self.announcer {
            let _ = a.send(AnnouncerCommand::Completed);
        }
        // Nothing more to want from anyone, and nothing to trade with other seeds.
        let keys: Vec<PeerKey> = self.peers.keys().copied().collect();
        for k in keys {
            if !self.drop_if_both_seeds(k) {
                self.update_interest(k);
            }
        }
    }

    // ----- requests from peers (uploading) -------------------------------------------------

    fn on_request(&mut self, key: PeerKey, req: BlockRequest) {
        let layout = self.storage.layout();
        let valid = req.length <= crate::wire::MAX_BLOCK_LEN
            && layout.range_in_piece(req.index, req.begin, req.length)
            && self.picker.have().has(req.index);
        if !valid {
            self.drop_peer(
                key,
                "requested a block out of range or a piece we do not have",
            );
            return;
        }
        let p = self.peers.get(&key).expect("checked");
        if p.am_choking {
            return; // BEP 3: requests from a choked peer are ignored
        }
        self.send(key, Command::Serve(req));
    }

    // ----- the 1-second tick ---------------------------------------------------------------

    fn on_tick(&mut self, elapsed: Duration) {
        self.down.sample(elapsed);
        self.up.sample(elapsed);
        let now = Instant::now();
        let snub = self.cfg.snub_timeout;
        let mut snubbed = Vec::new();
        for (key, p) in self.peers.iter_mut() {
            p.down.sample(elapsed);
            p.up.sample(elapsed);
            if !p.snubbed
                && now.duration_since(p.last_block) > snub
                && self.picker.outstanding(*key) > 0
            {
                p.snubbed = true;
                snubbed.push(*key);
            }
        }
        for key in snubbed {
            log::info!("peer {key} snubbed us: its requests go to others");
            self.active.remove(&key);
            let outstanding = self.picker.outstanding(key) as u32;
            if let Some(p) = self.peers.get_mut(&key) {
                p.withdrawn = p.withdrawn.saturating_add(outstanding);
            }
            self.picker.requests_returned(key);
            self.fill_all_but(key);
        }
        if now.duration_since(self.last_choke) >= choker::INTERVAL {
            self.run_choker();
        }
        // Rates moved: while the active queues ask for more than the budget, the slowest
        // active peers leave the set (requests already sent to them still arrive).
        while self.active.len() > 1 && self.active_demand() > MAX_BLOCKS_IN_FLIGHT {
            match self.slowest_active() {
                Some(k) => self.active.remove(&k),
                None => break,
            };
        }
        // With peers that unchoke us waiting outside the set, the slowest active one makes
        // room now and then, so a faster peer can show what it can do.
        // A peer never tried goes first, else the one that was fastest.
        let rotation_due = now.duration_since(self.last_rotation) >= ROTATE_EVERY;
        let waiting = if rotation_due {
            self.peers
                .iter()
                .filter(|(k, p)| {
                    !p.peer_choking && p.am_interested && !p.snubbed && !self.active.contains(k)
                })
                .map(|(k, p)| (*k, p.down.rate()))
                .max_by(|a, b| (a.1 == 0.0).cmp(&(b.1 == 0.0)).then(a.1.total_cmp(&b.1)))
                .map(|(k, _)| k)
        } else {
            None
        };
        if let Some(newcomer) = waiting {
            self.last_rotation = now;
            if let Some(k) = self.slowest_active() {
                self.active.remove(&k);
            }
            self.fill_requests(newcomer);
        }
        // A safety net: any peer left with room in its queue gets requests again.
        let keys: Vec<PeerKey> = self.peers.keys().copied().collect();
        for k in keys {
            self.fill_requests(k);
        }
        self.connect_more();
        if self.peers.len() < self.cfg.max_peers / 2 {
            if let Some(a) = &self.announcer {
                let _ = a.try_send(AnnouncerCommand::NeedPeers);
            }
        }
        if self.resume_dirty {
            if let Some(tx) = &self.resume {
                // Busy saver: keep the flag and offer again next second.
                self.resume_dirty = !crate::resume_store::offer(tx, self.picker.have());
            }
        }
        // Memory and threads only: summing switches reads a /proc file per thread (400 of
        // them at 200 peers). And only when data moved or peers came or went since the last
        // sample: an idle seeder (hundreds of them in a bench swarm) reads nothing.
        let activity = (self.down.total(), self.up.total(), self.peers.len());
        if self.sampled_at != Some(activity) {
            self.sampled_at = Some(activity);
            let usage = crate::procstat::memory_and_threads();
            self.run.peak_rss_anon = self.run.peak_rss_anon.max(usage.rss_anon);
            self.run.peak_threads = self.run.peak_threads.max(usage.threads);
        }
        self.progress.update(&self.snapshot());
    }

    /// True when nothing was verified for the configured timeout.
    pub fn stalled(&self) -> bool {
        self.completed_at.is_none() && self.last_progress.elapsed() > self.cfg.timeout
    }

    fn run_choker(&mut self) {
        self.last_choke = Instant::now();
        let rotate = self.optimistic_rotated.elapsed() >= choker::OPTIMISTIC_INTERVAL;
        if rotate {
            self.optimistic_rotated = Instant::now();
        }
        let seeding = self.completed_at.is_some();
        let candidates: Vec<choker::Candidate> = self
            .peers
            .iter()
            .filter(|(_, p)| p.handshaken)
            .map(|(k, p)| choker::Candidate {
                key: *k,
                interested: p.peer_interested,
                download_rate: p.down.rate(),
                upload_rate: p.up.rate(),
                optimistic: p.optimistic,
                unchoked: !p.am_choking,
                since: p.choke_changed.elapsed(),
            })
            .collect();
        let decision = choker::decide(&candidates, self.cfg.upload_slots, seeding, rotate);
        let keys: Vec<PeerKey> = self.peers.keys().copied().collect();
        for k in keys {
            let unchoke = decision.unchoked.contains(&k);
            let p = self.peers.get_mut(&k).expect("present");
            p.optimistic = decision.optimistic == Some(k);
            if unchoke == p.am_choking {
                p.am_choking = !unchoke;
                p.choke_changed = Instant::now();
                let _ = p.commands.send(if unchoke {
                    Command::Unchoke
                } else {
                    Command::Choke
                });
            }
        }
    }

    fn snapshot(&self) -> Snapshot {
        let layout = self.storage.layout();
        Snapshot {
            name: self.meta.info.name.clone(),
            have_bytes: layout.total_length() - self.bytes_left(),
            total_bytes: layout.total_length(),
            pieces_done: self.picker.have().count(),
            pieces_total: layout.num_pieces(),
            down_rate: self.down.rate(),
            up_rate: self.up.rate(),
            peers_connected: self.peers.values().filter(|p| p.handshaken).count(),
            peers_known: self.known.len().max(self.peers.len()),
            seeding: self.completed_at.is_some() && self.cfg.seed != SeedPolicy::No,
        }
    }
}

/// A readable client name from an Azureus-style peer id (`-TR3000-` → `TR 3000`).
pub fn client_name(id: &[u8; 20]) -> String {
    if id[0] == b'-' && id[7] == b'-' && id[1..7].iter().all(|b| b.is_ascii_alphanumeric()) {
        format!(
            "{} {}",
            String::from_utf8_lossy(&id[1..3]),
            String::from_utf8_lossy(&id[3..7])
        )
    } else {
        "unknown".to_string()
    }
}
