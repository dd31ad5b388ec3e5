//! A scripted peer that misbehaves on purpose, for the fault tests.
//!
//! It speaks just enough of BEP 3 (through minibt's own wire codec) to be chosen by the client,
//! then does the one wrong thing its [`Mode`] names. It lives on 127.0.0.1, every loop is
//! bounded by a deadline, and it stops when dropped.

use minibt::ids::{InfoHash, PeerId};
use minibt::wire::{self, BlockRequest, Handshake, Limits, Message};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Mode {
    /// Answers every request with garbage of the right length.
    Corrupt,
    /// Serves correct blocks, then closes halfway through a piece message.
    DisconnectMidPiece,
    /// Has everything, never unchokes.
    NeverUnchoke,
    /// Unchokes, takes requests, then goes silent without closing.
    Stall,
    /// Serves correct blocks, one every 50 ms (a slow seeder, to interrupt downloads).
    Slow,
}

pub struct Rogue {
    pub addr: SocketAddr,
    /// Connections accepted.
    pub connections: Arc<AtomicUsize>,
    /// Blocks sent (correct or not).
    pub blocks_sent: Arc<AtomicUsize>,
    /// Payload bytes of the blocks sent.
    pub bytes_sent: Arc<AtomicUsize>,
    /// Connections the client closed on us.
    pub closed_by_client: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl Drop for Rogue {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept so the thread sees `stop`.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
    }
}

impl Rogue {
    pub fn start(
        mode: Mode,
        info_hash: InfoHash,
        content: Arc<Vec<u8>>,
        piece_length: u64,
    ) -> Rogue {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let rogue = Rogue {
            addr,
            connections: Arc::default(),
            blocks_sent: Arc::default(),
            bytes_sent: Arc::default(),
            closed_by_client: Arc::default(),
            stop: Arc::default(),
        };
        let (conns, blocks, bytes, closed, stop) = (
            rogue.connections.clone(),
            rogue.blocks_sent.clone(),
            rogue.bytes_sent.clone(),
            rogue.closed_by_client.clone(),
            rogue.stop.clone(),
        );
        std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(180);
            while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
                match listener.accept() {
                    Ok(_) if stop.load(Ordering::SeqCst) => break,
                    Ok((stream, _)) => {
                        conns.fetch_add(1, Ordering::SeqCst);
                        let (content, blocks, bytes, closed, stop) = (
                            content.clone(),
                            blocks.clone(),
                            bytes.clone(),
                            closed.clone(),
                            stop.clone(),
                        );
                        std::thread::spawn(move || {
                            let r = serve(
                                mode,
                                stream,
                                info_hash,
                                &content,
                                piece_length,
                                (&blocks, &bytes),
                                &stop,
                            );
                            if r.is_err() {
                                closed.fetch_add(1, Ordering::SeqCst);
                            }
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        rogue
    }
}

/// Runs one connection. Err means the client closed it (or it broke).
fn serve(
    mode: Mode,
    mut s: TcpStream,
    info_hash: InfoHash,
    content: &[u8],
    piece_length: u64,
    (blocks, bytes): (&AtomicUsize, &AtomicUsize),
    stop: &AtomicBool,
) -> std::io::Result<()> {
    s.set_read_timeout(Some(Duration::from_millis(200)))?;
    let mut theirs = [0u8; 68];
    read_exact_patient(&mut s, &mut theirs, stop)?;
    let mut id = [0u8; 20];
    id[..8].copy_from_slice(b"-RG0001-");
    s.write_all(&Handshake::new(info_hash, PeerId(id)).encode())?;
    let num_pieces = content.len().div_ceil(piece_length as usize) as u32;
    let bits = minibt::bitfield::Bitfield::full(num_pieces);
    let mut out = Vec::new();
    wire::encode(&Message::Bitfield(bits.as_bytes()), &mut out);
    if mode != Mode::NeverUnchoke {
        wire::encode(&Message::Unchoke, &mut out);
    }
    s.write_all(&out)?;
    let limits = Limits::for_torrent(num_pieces);
    let mut served = 0usize;
    let deadline = Instant::now() + Duration::from_secs(170);
    while Instant::now() < deadline && !stop.load(Ordering::SeqCst) {
        let mut prefix = [0u8; 4];
        read_exact_patient(&mut s, &mut prefix, stop)?;
        let len = wire::check_frame_len(u32::from_be_bytes(prefix), &limits)
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        let mut body = vec![0u8; len];
        read_exact_patient(&mut s, &mut body, stop)?;
        let Ok(Message::Request(BlockRequest {
            index,
            begin,
            length,
        })) = wire::decode_frame(&body)
        else {
            continue;
        };
        let start = index as usize * piece_length as usize + begin as usize;
        let mut data = content[start..start + length as usize].to_vec();
        match mode {
            Mode::Corrupt => data.iter_mut().for_each(|b| *b = !*b),
            Mode::Stall if served >= 2 => continue, // swallow requests, never answer
            Mode::Slow => std::thread::sleep(Duration::from_millis(50)),
            Mode::DisconnectMidPiece if served >= 3 => {
                let mut header = [0u8; 13];
                wire::encode_piece_header(index, begin, length, &mut header);
                s.write_all(&header)?;
                s.write_all(&data[..data.len() / 2])?;
                return Ok(()); // we hung up, not the client
            }
            _ => {}
        }
        let mut header = [0u8; 13];
        wire::encode_piece_header(index, begin, length, &mut header);
        s.write_all(&header)?;
        s.write_all(&data)?;
        served += 1;
        blocks.fetch_add(1, Ordering::SeqCst);
        bytes.fetch_add(data.len(), Ordering::SeqCst);
    }
    Ok(())
}

/// read_exact over a socket with a short read timeout, so the loop can notice `stop`.
fn read_exact_patient(s: &mut TcpStream, buf: &mut [u8], stop: &AtomicBool) -> std::io::Result<()> {
    let mut at = 0;
    let deadline = Instant::now() + Duration::from_secs(170);
    while at < buf.len() {
        if stop.load(Ordering::SeqCst) || Instant::now() > deadline {
            return Ok(()); // treated as our own hang-up by callers' next read
        }
        match s.read(&mut buf[at..]) {
            Ok(0) => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => at += n,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
