//! The peer threads: one TCP connection, two OS threads, no shared state.
//!
//! ```text
//!            socket (blocking std::net)
//!   reader thread ──► Event ──► coordinator        (frames decoded with crate::wire)
//!   writer thread ◄── Command ◄── coordinator      (requests, have, choke, blocks to serve)
//! ```
//!
//! The reader thread connects (or takes an accepted socket), does the BEP 3 handshake, starts the
//! writer thread, then turns every frame it reads into an [`Event`] for the coordinator; frames
//! already buffered are sent together as one [`EventKind::Many`]. Piece payloads are read into
//! the block's own buffer (recycled through `bufpool`), never into a shared one and copied.
//! The writer thread drains every command queued for it, encodes them into one buffer and
//! writes it with a single syscall; blocks to upload are copied from storage straight into that
//! buffer.
//!
//! Lifetimes are tied to channels, not flags: the writer ends when the coordinator drops the
//! peer's command sender, and shuts the socket down, which ends the reader; the reader ends on
//! any socket or protocol error and reports [`EventKind::Gone`] with the reason.
//!
//! An async client would run both loops as tasks on one event loop; here each costs a small
//! stack (see [`PEER_STACK_SIZE`]) and the kernel does the scheduling. Threads whose
//! connection ended wait for the next one (see [`crate::spare_threads`]).

use crate::bitfield::Bitfield;
use crate::bufpool::BlockPool;
use crate::ids::{InfoHash, PeerId};
use crate::ratelimit::RateLimit;
use crate::spare_threads::SpareThreads;
use crate::storage::Storage;
use crate::wire::{self, BlockRequest, Handshake, Limits, Message};
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use std::io::{self, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

/// Stack size of each peer thread: the threads keep their buffers on the heap, so a small stack
/// keeps a swarm of hundreds of peers cheap.
pub const PEER_STACK_SIZE: usize = 128 * 1024;

/// Reader (and writer) threads kept parked for the next connections; more end.
pub const MAX_SPARE_THREADS: usize = 8;

/// How long a connect may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// A peer that sends nothing at all (not even a keep-alive) for this long is dropped. BEP 3
/// keep-alives come every two minutes.
pub const READ_TIMEOUT: Duration = Duration::from_secs(150);
/// A frame must arrive whole within this long of its first byte (slowloris defence); the
/// session may set a shorter one ([`PeerContext::frame_timeout`]).
pub const FRAME_TIMEOUT: Duration = Duration::from_secs(60);
/// More keep-alives than this in a row, faster than one a second, is a flood: dropped.
const KEEPALIVE_FLOOD: u32 = 100;
/// We send a keep-alive after this much silence.
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(90);
/// Socket buffer for reading frames.
const READ_BUFFER: usize = 64 * 1024;

/// The coordinator's handle on a peer.
pub type PeerKey = usize;

/// Everything a peer thread needs, shared by all of them.
pub struct PeerContext {
    pub info_hash: InfoHash,
    pub our_id: PeerId,
    pub limits: Limits,
    pub num_pieces: u32,
    pub storage: Arc<Storage>,
    pub events: Sender<Event>,
    /// Longest time a frame may take to arrive once its first byte has (slowloris defence).
    pub frame_timeout: Duration,
    /// Recycled block buffers (returned by the verifiers).
    pub pool: Arc<BlockPool>,
    pub upload_limit: Option<Arc<RateLimit>>,
    pub download_limit: Option<Arc<RateLimit>>,
    /// Where connections find their reader and writer threads.
    pub readers: SpareThreads,
    pub writers: SpareThreads,
}

/// What a peer thread reports to the coordinator.
#[derive(Debug)]
pub struct Event {
    pub peer: PeerKey,
    pub kind: EventKind,
}

#[derive(Debug)]
pub enum EventKind {
    /// The handshake is done; the writer thread is running.
    Connected {
        peer_id: PeerId,
        reserved: [u8; 8],
    },
    Bitfield(Bitfield),
    Have(u32),
    Choke,
    Unchoke,
    Interested,
    NotInterested,
    /// A block of a piece, in its own buffer.
    Block {
        req: BlockRequest,
        data: Vec<u8>,
    },
    /// The peer asks us for a block.
    Request(BlockRequest),
    Cancel(BlockRequest),
    /// BEP 10 extended message.
    Extended {
        id: u8,
        payload: Vec<u8>,
    },
    /// The writer sent a block of this many bytes (upload accounting).
    Uploaded(u32),
    /// The connection is over.
    Gone(PeerError),
    /// Several events that arrived together, in order (never nested, never `Gone`).
    Many(Vec<EventKind>),
}

/// Why a connection ended. Each variant names the rule that was broken, if any.
#[derive(Debug)]
pub enum PeerError {
    /// TCP connect failed or timed out.
    Connect(io::Error),
    /// The socket failed or closed (includes the read timeout).
    Io(io::Error),
    /// BEP 3: the handshake must carry the protocol string and our info hash.
    Handshake(String),
    /// We connected to ourselves (the peer id is ours).
    OurSelf,
    /// A frame broke the wire format (bad length, unknown layout, …).
    Protocol(wire::WireError),
    /// The peer is wasting our time: a frame trickling in, or a flood of keep-alives.
    Abuse(&'static str),
}

impl std::fmt::Display for PeerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PeerError::Connect(e) => write!(f, "connect failed: {e}"),
            PeerError::Io(e) => write!(f, "connection lost: {e}"),
            PeerError::Handshake(why) => write!(f, "bad handshake: {why}"),
            PeerError::OurSelf => f.write_str("connected to ourselves"),
            PeerError::Protocol(e) => write!(f, "protocol error: {e}"),
            PeerError::Abuse(what) => write!(f, "dropped: {what}"),
        }
    }
}

/// What the coordinator asks a peer's writer to do.
#[derive(Debug)]
pub enum Command {
    Choke,
    Unchoke,
    Interested,
    NotInterested,
    Have(u32),
    Bitfield(Vec<u8>),
    Request(BlockRequest),
    /// Several requests at once (one wake-up of the writer).
    Requests(Vec<BlockRequest>),
    Cancel(BlockRequest),
    /// Read this block from storage and send it (we have verified the piece).
    Serve(BlockRequest),
    /// Withdraw a queued [`Command::Serve`] if it has not been sent yet (BEP 3 cancel).
    Unserve(BlockRequest),
    Extended {
        id: u8,
        payload: Vec<u8>,
    },
}

/// Where the connection comes from.
pub enum Origin {
    Outgoing(SocketAddr, Option<std::net::IpAddr>),
    Incoming(TcpStream),
}

/// Starts the reader thread of a new connection; the writer follows after the handshake.
pub fn spawn(
    key: PeerKey,
    origin: Origin,
    ctx: Arc<PeerContext>,
    commands: Receiver<Command>,
) -> io::Result<()> {
    let threads = ctx.clone();
    threads.readers.run(move || {
        let reason = run_reader(key, origin, &ctx, commands);
        let _ = ctx.events.send(Event {
            peer: key,
            kind: EventKind::Gone(reason),
        });
    })
}

fn connect(addr: SocketAddr, bind_ip: Option<std::net::IpAddr>) -> io::Result<TcpStream> {
    match bind_ip {
        None => TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT),
        Some(ip) => crate::net::connect_from(ip, addr, CONNECT_TIMEOUT),
    }
}

/// Runs a connection until it ends; returns why it ended.
fn run_reader(
    key: PeerKey,
    origin: Origin,
    ctx: &PeerContext,
    commands: Receiver<Command>,
) -> PeerError {
    let stream = match origin {
        Origin::Outgoing(addr, bind_ip) => match connect(addr, bind_ip) {
            Ok(s) => s,
            Err(e) => return PeerError::Connect(e),
        },
        Origin::Incoming(s) => s,
    };
    let _ = stream.set_nodelay(true);
    // The socket wakes the reader often enough to enforce the frame deadline; idle peers are
    // timed out by [`TimedStream`] after READ_TIMEOUT.
    let tick = (ctx.frame_timeout / 2).clamp(Duration::from_millis(100), READ_TIMEOUT);
    if let Err(e) = stream.set_read_timeout(Some(tick)) {
        return PeerError::Io(e);
    }
    let _ = stream.set_write_timeout(Some(READ_TIMEOUT));

    // BEP 3 handshake.
    let ours = Handshake::new(ctx.info_hash, ctx.our_id);
    let mut writer = match stream.try_clone() {
        Ok(s) => s,
        Err(e) => return PeerError::Io(e),
    };
    if let Err(e) = writer.write_all(&ours.encode()) {
        return PeerError::Io(e);
    }
    let mut reader =
        BufReader::with_capacity(READ_BUFFER, TimedStream::new(stream, ctx.frame_timeout));
    // The handshake is a frame like any other: it must arrive whole in time.
    reader.get_mut().frame_started();
    let mut theirs = [0u8; 68];
    if let Err(e) = reader.read_exact(&mut theirs) {
        return io_error(e);
    }
    reader.get_mut().frame_done(false);
    let theirs = match Handshake::decode(&theirs) {
        Ok(h) => h,
        Err(e) => return PeerError::Handshake(e.to_string()),
    };
    if theirs.info_hash != ctx.info_hash {
        return PeerError::Handshake(format!("wrong info hash {}", theirs.info_hash));
    }
    if theirs.peer_id == ctx.our_id {
        return PeerError::OurSelf;
    }

    let events = ctx.events.clone();
    let storage = ctx.storage.clone();
    let limit = ctx.upload_limit.clone();
    let writer_started = ctx
        .writers
        .run(move || run_writer(key, writer, commands, &storage, &events, limit.as_deref()));
    if let Err(e) = writer_started {
        return PeerError::Io(e);
    }
    let connected = EventKind::Connected {
        peer_id: theirs.peer_id,
        reserved: theirs.reserved,
    };
    if ctx
        .events
        .send(Event {
            peer: key,
            kind: connected,
        })
        .is_err()
    {
        return PeerError::Io(io::Error::other("client shutting down"));
    }
    read_frames(key, &mut reader, ctx)
}

/// The frame loop: bounded lengths, piece payloads read into their own buffer, each frame
/// whole within the frame deadline.
fn read_frames(key: PeerKey, reader: &mut BufReader<TimedStream>, ctx: &PeerContext) -> PeerError {
    let mut body = Vec::new();
    let mut keepalives = 0u32;
    let mut keepalives_since = std::time::Instant::now();
    // Events wait here while the next frame is already in our buffer, then go to the
    // coordinator together: one wake-up for a burst of blocks instead of one per block.
    let mut batch: Vec<EventKind> = Vec::new();
    loop {
        if !batch.is_empty() && (batch.len() >= MAX_BATCH || !whole_frame_buffered(reader.buffer()))
        {
            let kind = if batch.len() == 1 {
                batch.pop().expect("one event")
            } else {
                EventKind::Many(std::mem::take(&mut batch))
            };
            if ctx.events.send(Event { peer: key, kind }).is_err() {
                return PeerError::Io(io::Error::other("client shutting down"));
            }
        }
        let buffered = !reader.buffer().is_empty();
        reader.get_mut().frame_done(buffered);
        let mut prefix = [0u8; 4];
        if let Err(e) = reader.read_exact(&mut prefix) {
            return io_error(e);
        }
        let len = match wire::check_frame_len(u32::from_be_bytes(prefix), &ctx.limits) {
            Ok(len) => len,
            Err(e) => return PeerError::Protocol(e),
        };
        if len == 0 {
            // Keep-alive: cheap, but a stream of them is a flood (bounded work either way).
            if keepalives == 0 {
                keepalives_since = std::time::Instant::now();
            }
            keepalives += 1;
            if keepalives > KEEPALIVE_FLOOD {
                if keepalives_since.elapsed() < Duration::from_secs(KEEPALIVE_FLOOD as u64) {
                    return PeerError::Abuse("flood of keep-alives");
                }
                keepalives = 0;
            }
            continue;
        }
        keepalives = 0;
        let mut id = [0u8; 1];
        if let Err(e) = reader.read_exact(&mut id) {
            return io_error(e);
        }
        let kind = if id[0] == wire::id::PIECE && len > 9 {
            if let Some(limit) = &ctx.download_limit {
                limit.take(len as u64 - 9);
                // Our own throttling is not the peer's slowness: the frame clock restarts.
                reader.get_mut().frame_started();
            }
            match read_piece(reader, len - 9, &ctx.pool) {
                Ok(kind) => kind,
                Err(e) => return io_error(e),
            }
        } else {
            body.clear();
            body.push(id[0]);
            body.resize(len, 0);
            if let Err(e) = reader.read_exact(&mut body[1..]) {
                return io_error(e);
            }
            match wire::decode_frame(&body) {
                Ok(msg) => match to_event(msg, ctx.num_pieces) {
                    Ok(Some(kind)) => kind,
                    Ok(None) => continue,
                    Err(e) => return e,
                },
                Err(wire::WireError::UnknownMessage(_)) => continue, // ignore extensions we lack
                Err(e) => return PeerError::Protocol(e),
            }
        };
        batch.push(kind);
    }
}

/// Most events sent to the coordinator in one message.
const MAX_BATCH: usize = 64;

/// True when `buf` holds a whole frame (its length prefix and body), so reading it cannot block.
fn whole_frame_buffered(buf: &[u8]) -> bool {
    buf.len() >= 4 && buf.len() - 4 >= u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize
}

/// A read error, with the frame deadline's own error told apart.
fn io_error(e: io::Error) -> PeerError {
    if e.kind() == io::ErrorKind::TimedOut && e.to_string() == SLOW_FRAME {
        PeerError::Abuse("a frame took longer than the frame deadline to arrive")
    } else {
        PeerError::Io(e)
    }
}

const SLOW_FRAME: &str = "frame deadline passed";

/// The socket under the reader's buffer, enforcing two clocks without a syscall per frame:
/// a frame, once its first byte is here, must be complete within `frame_timeout`; between
/// frames a peer may be silent for up to [`READ_TIMEOUT`]. The socket's own read timeout is
/// a fraction of `frame_timeout`, so a blocked read wakes up in time to check.
pub struct TimedStream {
    stream: TcpStream,
    frame_timeout: Duration,
    /// When the current frame's first byte arrived (`None` between frames).
    frame_start: Option<std::time::Instant>,
    /// When we started waiting for the next frame.
    idle_since: std::time::Instant,
}

impl TimedStream {
    fn new(stream: TcpStream, frame_timeout: Duration) -> TimedStream {
        TimedStream {
            stream,
            frame_timeout,
            frame_start: None,
            idle_since: std::time::Instant::now(),
        }
    }

    /// A frame begins now (its bytes are due).
    fn frame_started(&mut self) {
        self.frame_start = Some(std::time::Instant::now());
    }

    /// The last frame is complete; `next_buffered` says the next one's bytes are already here.
    fn frame_done(&mut self, next_buffered: bool) {
        if next_buffered {
            self.frame_started();
        } else {
            self.frame_start = None;
            self.idle_since = std::time::Instant::now();
        }
    }

    fn overdue(&self) -> Option<io::Error> {
        match self.frame_start {
            Some(start) if start.elapsed() > self.frame_timeout => {
                Some(io::Error::new(io::ErrorKind::TimedOut, SLOW_FRAME))
            }
            None if self.idle_since.elapsed() > READ_TIMEOUT => Some(io::Error::new(
                io::ErrorKind::TimedOut,
                "peer silent for too long",
            )),
            _ => None,
        }
    }
}

impl Read for TimedStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if let Some(e) = self.overdue() {
                return Err(e);
            }
            match self.stream.read(buf) {
                Ok(n) => {
                    if n > 0 && self.frame_start.is_none() {
                        self.frame_started();
                    }
                    return Ok(n);
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => return Err(e),
            }
        }
    }
}

/// Reads a piece message's index, begin and `data_len` payload bytes into a fresh buffer.
fn read_piece(reader: &mut impl Read, data_len: usize, pool: &BlockPool) -> io::Result<EventKind> {
    let mut header = [0u8; 8];
    reader.read_exact(&mut header)?;
    let index = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
    let begin = u32::from_be_bytes([header[4], header[5], header[6], header[7]]);
    let mut data = pool.take(data_len);
    reader.take(data_len as u64).read_to_end(&mut data)?;
    if data.len() != data_len {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    let req = BlockRequest {
        index,
        begin,
        length: data_len as u32,
    };
    Ok(EventKind::Block { req, data })
}

fn to_event(msg: Message<'_>, num_pieces: u32) -> Result<Option<EventKind>, PeerError> {
    Ok(Some(match msg {
        Message::KeepAlive | Message::Port(_) => return Ok(None),
        Message::Choke => EventKind::Choke,
        Message::Unchoke => EventKind::Unchoke,
        Message::Interested => EventKind::Interested,
        Message::NotInterested => EventKind::NotInterested,
        Message::Have(i) => EventKind::Have(i),
        Message::Bitfield(bytes) => EventKind::Bitfield(
            Bitfield::from_bytes(bytes, num_pieces).map_err(PeerError::Protocol)?,
        ),
        Message::Request(r) => EventKind::Request(r),
        Message::Cancel(r) => EventKind::Cancel(r),
        Message::Piece { index, begin, data } => EventKind::Block {
            req: BlockRequest {
                index,
                begin,
                length: data.len() as u32,
            },
            data: data.to_vec(),
        },
        Message::Extended { id, payload } => EventKind::Extended {
            id,
            payload: payload.to_vec(),
        },
    }))
}

/// The writer loop: batch every queued command into one write.
fn run_writer(
    key: PeerKey,
    mut socket: TcpStream,
    commands: Receiver<Command>,
    storage: &Storage,
    events: &Sender<Event>,
    limit: Option<&RateLimit>,
) {
    let mut out = Vec::with_capacity(64 * 1024);
    let mut batch = Vec::new();
    // Under an upload limit, a few blocks per write: the limiter waits before each write, and
    // a batch of a hundred queued blocks would leave as one burst after a long silence.
    let max_batch = if limit.is_some() { 4 } else { 4096 };
    loop {
        match commands.recv_timeout(KEEPALIVE_INTERVAL) {
            Ok(cmd) => batch.push(cmd),
            Err(RecvTimeoutError::Timeout) => {
                wire::encode(&Message::KeepAlive, &mut out);
            }
            Err(RecvTimeoutError::Disconnected) => break,
        }
        while batch.len() < max_batch {
            match commands.try_recv() {
                Ok(cmd) => batch.push(cmd),
                Err(_) => break,
            }
        }
        let mut uploaded = 0u64;
        if let Err(e) = encode_batch(&mut batch, storage, &mut out, &mut uploaded) {
            log::warn!("peer {key}: cannot read block to serve: {e}");
            break;
        }
        if let (Some(limit), true) = (limit, uploaded > 0) {
            limit.take(uploaded);
        }
        if socket.write_all(&out).is_err() {
            break;
        }
        out.clear();
        if uploaded > 0 {
            let _ = events.send(Event {
                peer: key,
                kind: EventKind::Uploaded(uploaded as u32),
            });
        }
    }
    let _ = socket.shutdown(Shutdown::Both);
}

fn encode_batch(
    batch: &mut Vec<Command>,
    storage: &Storage,
    out: &mut Vec<u8>,
    uploaded: &mut u64,
) -> io::Result<()> {
    // A cancel withdraws a serve queued in the same batch.
    let withdrawn: Vec<BlockRequest> = batch
        .iter()
        .filter_map(|c| match c {
            Command::Unserve(r) => Some(*r),
            _ => None,
        })
        .collect();
    for cmd in batch.drain(..) {
        let msg = match cmd {
            Command::Choke => Message::Choke,
            Command::Unchoke => Message::Unchoke,
            Command::Interested => Message::Interested,
            Command::NotInterested => Message::NotInterested,
            Command::Have(i) => Message::Have(i),
            Command::Request(r) => Message::Request(r),
            Command::Requests(rs) => {
                for r in rs {
                    wire::encode(&Message::Request(r), out);
                }
                continue;
            }
            Command::Cancel(r) => Message::Cancel(r),
            Command::Unserve(_) => continue,
            Command::Bitfield(bytes) => {
                wire::encode(&Message::Bitfield(&bytes), out);
                continue;
            }
            Command::Extended { id, payload } => {
                wire::encode(
                    &Message::Extended {
                        id,
                        payload: &payload,
                    },
                    out,
                );
                continue;
            }
            Command::Serve(r) => {
                if withdrawn.contains(&r) {
                    continue;
                }
                let mut header = [0u8; 13];
                wire::encode_piece_header(r.index, r.begin, r.length, &mut header);
                out.extend_from_slice(&header);
                let start = out.len();
                out.resize(start + r.length as usize, 0);
                storage.read(r.index, r.begin, &mut out[start..])?;
                *uploaded += r.length as u64;
                continue;
            }
        };
        wire::encode(&msg, out);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::whole_frame_buffered;

    #[test]
    fn a_frame_counts_as_buffered_only_when_all_of_it_is_there() {
        assert!(!whole_frame_buffered(&[]));
        assert!(!whole_frame_buffered(&[0, 0, 0]));
        assert!(whole_frame_buffered(&[0, 0, 0, 0])); // keep-alive
        assert!(!whole_frame_buffered(&[0, 0, 0, 5, 4, 0, 0, 0])); // have, one byte short
        assert!(whole_frame_buffered(&[0, 0, 0, 5, 4, 0, 0, 0, 1]));
        assert!(!whole_frame_buffered(&[0xff, 0xff, 0xff, 0xff, 7]));
    }
}
