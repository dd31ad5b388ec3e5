//! Hostile input: a scripted peer talks raw bytes to a minibt seeder (or is dialled by a minibt
//! leecher) on 127.0.0.1 and breaks one rule; minibt must drop it, stay up, and keep serving a
//! well-behaved peer afterwards. Also hostile tracker responses and torrent paths.

use crate::rogue::{Mode, Rogue};
use crate::support::*;
use minibt::ids::{InfoHash, PeerId};
use minibt::wire::{self, BlockRequest, Handshake, Message};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

const PIECE: u64 = 16 * 1024;
/// 13 pieces: a 2-byte bitfield with 3 spare bits.
const SIZE: usize = 13 * PIECE as usize - 100;

struct Seeder {
    _proc: Proc,
    addr: SocketAddr,
    info_hash: InfoHash,
    content: Vec<u8>,
    dir: PathBuf,
}

fn seeder(name: &str, extra: &[&str]) -> Seeder {
    let dir = scratch_dir(&format!("hostile-{name}"));
    let src = dir.join("src");
    std::fs::create_dir_all(&src).unwrap();
    let content = pseudo_random_bytes(99, SIZE);
    std::fs::write(src.join("data"), &content).unwrap();
    let torrent = dir.join("t.torrent");
    let meta = make_torrent(
        &src.join("data"),
        &["http://127.0.0.1:9/a".into()],
        PIECE,
        &torrent,
    );
    let mut args = vec!["--no-tracker"];
    args.extend_from_slice(extra);
    let (proc, port) = start_seed(&dir, "seeder", &torrent, &src, "127.0.0.1", &args);
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    Seeder {
        _proc: proc,
        addr,
        info_hash: meta.info_hash,
        content,
        dir,
    }
}

fn peer_id(tag: u8) -> PeerId {
    let mut id = *b"-HX0001-000000000000";
    id[19] = tag;
    PeerId(id)
}

/// Connects and completes a correct handshake.
fn handshaken(s: &Seeder, tag: u8) -> TcpStream {
    let mut t = TcpStream::connect(s.addr).unwrap();
    t.write_all(&Handshake::new(s.info_hash, peer_id(tag)).encode())
        .unwrap();
    let mut theirs = [0u8; 68];
    t.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    t.read_exact(&mut theirs).unwrap();
    t
}

fn frame(msg: &Message<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    wire::encode(msg, &mut out);
    out
}

/// True when the other side closes the connection within `limit` (reading and discarding
/// whatever it sends meanwhile).
fn dropped_within(t: &mut TcpStream, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    t.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        match t.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return true, // reset
        }
    }
    false
}

/// A well-behaved peer fetches block 0 of the last piece and checks it.
fn good_peer_still_served(s: &Seeder) {
    let mut t = handshaken(s, b'g');
    t.write_all(&frame(&Message::Interested)).unwrap();
    let last = (SIZE as u64).div_ceil(PIECE) as u32 - 1;
    let len = (SIZE as u64 - last as u64 * PIECE) as u32;
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut requested = false;
    while Instant::now() < deadline {
        let mut prefix = [0u8; 4];
        t.read_exact(&mut prefix).expect("seeder still talks");
        let n = u32::from_be_bytes(prefix) as usize;
        assert!(n <= 1 << 20, "absurd frame from the seeder");
        let mut body = vec![0u8; n];
        t.read_exact(&mut body).unwrap();
        match wire::decode_frame(&body).unwrap() {
            Message::Unchoke if !requested => {
                let req = BlockRequest {
                    index: last,
                    begin: 0,
                    length: len,
                };
                t.write_all(&frame(&Message::Request(req))).unwrap();
                requested = true;
            }
            Message::Piece { index, begin, data } => {
                assert_eq!((index, begin), (last, 0));
                let start = (last as u64 * PIECE) as usize;
                assert!(data == &s.content[start..], "wrong block served");
                return;
            }
            _ => {}
        }
    }
    panic!("the seeder never served a good peer");
}

fn assert_dropped_then_good_served(s: &Seeder, mut t: TcpStream, what: &str) {
    assert!(
        dropped_within(&mut t, Duration::from_secs(10)),
        "{what}: the peer was not dropped"
    );
    good_peer_still_served(s);
    let log = std::fs::read_to_string(s.dir.join("seeder.log")).unwrap_or_default();
    assert!(!log.contains("panicked"), "{log}");
}

#[test]
fn length_prefix_of_4_gib_drops_the_peer() {
    let s = seeder("huge-prefix", &[]);
    let mut t = handshaken(&s, 1);
    t.write_all(&[0xff, 0xff, 0xff, 0xff, 7]).unwrap();
    assert_dropped_then_good_served(&s, t, "4 GiB prefix");
}

#[test]
fn bitfield_of_wrong_size_or_with_spare_bits_drops_the_peer() {
    let s = seeder("bitfield", &[]);
    for (tag, bits) in [
        (1u8, vec![0u8; 3]),
        (2, vec![0u8; 1]),
        (3, vec![0x00, 0x01]),
    ] {
        let mut t = handshaken(&s, tag);
        // Bypass the encoder's checks: raw frame.
        let mut raw = ((1 + bits.len()) as u32).to_be_bytes().to_vec();
        raw.push(wire::id::BITFIELD);
        raw.extend_from_slice(&bits);
        t.write_all(&raw).unwrap();
        assert_dropped_then_good_served(&s, t, &format!("bitfield {bits:?}"));
    }
}

#[test]
fn have_request_and_piece_out_of_range_drop_the_peer() {
    let s = seeder("range", &[]);
    let n = (SIZE as u64).div_ceil(PIECE) as u32;
    let req = |index, begin, length| BlockRequest {
        index,
        begin,
        length,
    };
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("have past the end", frame(&Message::Have(n))),
        ("have u32::MAX", frame(&Message::Have(u32::MAX))),
        (
            "request past the end",
            frame(&Message::Request(req(n, 0, 16384))),
        ),
        (
            "request beyond the piece",
            frame(&Message::Request(req(0, 16000, 16384))),
        ),
        (
            "request in the short last piece",
            frame(&Message::Request(req(n - 1, 0, 16384))),
        ),
        (
            "piece past the end",
            frame(&Message::Piece {
                index: n + 5,
                begin: 0,
                data: &[1; 64],
            }),
        ),
        (
            "piece beyond its piece",
            frame(&Message::Piece {
                index: 0,
                begin: u32::MAX - 10,
                data: &[1; 64],
            }),
        ),
    ];
    for (i, (what, bytes)) in cases.into_iter().enumerate() {
        let mut t = handshaken(&s, i as u8);
        if what.starts_with("request") {
            // Requests only count once unchoked: be interested and wait for it.
            t.write_all(&frame(&Message::Interested)).unwrap();
            std::thread::sleep(Duration::from_millis(300));
        }
        t.write_all(&bytes).unwrap();
        assert_dropped_then_good_served(&s, t, what);
    }
}

#[test]
fn pieces_never_requested_drop_the_peer() {
    let s = seeder("unrequested", &[]);
    let mut t = handshaken(&s, 1);
    let data = vec![0u8; 16384];
    for i in 0..8u32 {
        let m = Message::Piece {
            index: i % 13,
            begin: 0,
            data: &data,
        };
        t.write_all(&frame(&m)).unwrap();
    }
    assert_dropped_then_good_served(&s, t, "unrequested pieces");
    // The seeder's data is untouched.
    assert!(std::fs::read(s.dir.join("src/data")).unwrap() == s.content);
}

#[test]
fn handshake_with_wrong_info_hash_or_protocol_is_refused() {
    let s = seeder("handshake", &[]);
    let mut wrong_hash = Handshake::new(InfoHash([0x55; 20]), peer_id(1)).encode();
    let mut t = TcpStream::connect(s.addr).unwrap();
    t.write_all(&wrong_hash).unwrap();
    assert_dropped_then_good_served(&s, t, "wrong info hash");
    wrong_hash = Handshake::new(s.info_hash, peer_id(2)).encode();
    wrong_hash[1..20].copy_from_slice(b"BitTorrent protocoX");
    let mut t = TcpStream::connect(s.addr).unwrap();
    t.write_all(&wrong_hash).unwrap();
    assert_dropped_then_good_served(&s, t, "wrong protocol string");
    let mut t = TcpStream::connect(s.addr).unwrap();
    t.write_all(&[0xff; 68]).unwrap();
    assert_dropped_then_good_served(&s, t, "garbage handshake");
}

#[test]
fn slowloris_frame_trickling_in_is_dropped_at_the_frame_deadline() {
    // Deadline shortened to 2 s for the test (60 s by default).
    let s = seeder("slowloris", &["--frame-timeout", "2"]);
    let mut t = handshaken(&s, 1);
    t.set_write_timeout(Some(Duration::from_secs(1))).unwrap();
    // A 13-byte request frame, one byte every 500 ms: each read succeeds, the frame never ends
    // in time.
    let bytes = frame(&Message::Interested);
    let mut trickle = bytes.clone();
    trickle.extend(frame(&Message::Request(BlockRequest {
        index: 0,
        begin: 0,
        length: 16384,
    })));
    let started = Instant::now();
    let mut closed = false;
    for b in trickle.iter().cycle().take(40) {
        if t.write_all(&[*b]).is_err() {
            closed = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
        if started.elapsed() > Duration::from_secs(15) {
            break;
        }
    }
    assert!(
        closed || dropped_within(&mut t, Duration::from_secs(5)),
        "a frame trickling in was never cut off"
    );
    // The slow handshake variant: half a handshake, then nothing.
    let mut t = TcpStream::connect(s.addr).unwrap();
    t.write_all(&Handshake::new(s.info_hash, peer_id(2)).encode()[..30])
        .unwrap();
    assert_dropped_then_good_served(&s, t, "half a handshake");
}

#[test]
fn keepalive_flood_is_dropped_with_bounded_work() {
    let s = seeder("keepalive", &[]);
    let mut t = handshaken(&s, 1);
    t.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
    let flood = vec![0u8; 4 * 100_000]; // 100k keep-alives in one burst
    let _ = t.write_all(&flood); // may fail once the seeder hangs up
    assert_dropped_then_good_served(&s, t, "keep-alive flood");
}

/// A leecher dials a hostile peer that sends blocks it never asked for (junk data) next to a
/// slow good seeder: the hostile peer is dropped for it, nothing of it is written, and the
/// file is right.
#[test]
fn leecher_drops_a_peer_sending_pieces_it_never_requested() {
    let s = seeder("leecher-side", &[]);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let hostile_addr = listener.local_addr().unwrap();
    let info_hash = s.info_hash;
    let hostile = std::thread::spawn(move || -> bool {
        listener.set_nonblocking(true).unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut conn = loop {
            match listener.accept() {
                Ok((c, _)) => break c,
                Err(_) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                Err(_) => return false,
            }
        };
        conn.set_nonblocking(false).unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut theirs = [0u8; 68];
        if conn.read_exact(&mut theirs).is_err() {
            return false;
        }
        let _ = conn.write_all(&Handshake::new(info_hash, peer_id(9)).encode());
        let junk = vec![0xAAu8; 16384];
        for i in 0..8u32 {
            let m = Message::Piece {
                index: i,
                begin: 0,
                data: &junk,
            };
            if conn.write_all(&frame(&m)).is_err() {
                break;
            }
        }
        dropped_within(&mut conn, Duration::from_secs(10))
    });
    // The good peer sends a block every 50 ms: the hostile one gets its say first.
    let good = Rogue::start(Mode::Slow, s.info_hash, Arc::new(s.content.clone()), PIECE);
    let out = s.dir.join("out");
    let torrent = s.dir.join("t.torrent");
    let port = free_port().to_string();
    let (h, g) = (hostile_addr.to_string(), good.addr.to_string());
    let args = [
        torrent.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--port",
        &port,
        "--bind-ip",
        "127.0.0.1",
        "--no-tracker",
        "--peer",
        &h,
        "--peer",
        &g,
        "--timeout",
        "30",
        "-q",
    ];
    let log = s.dir.join("leecher.log");
    let mut p = minibt("leecher", &args, &log);
    let status = p.wait_for(Duration::from_secs(60)).expect("leecher ends");
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(status.success(), "{text}");
    assert!(std::fs::read(out.join("data")).unwrap() == s.content);
    assert!(hostile.join().unwrap(), "the hostile peer was not dropped");
    assert!(text.contains("sent blocks we never requested"), "{text}");
}

#[test]
fn tracker_responses_with_a_million_peers_or_garbage_are_bounded_or_refused() {
    use minibt::tracker::response::parse_http_response;
    // 600k compact peers (3.6 MB, under the body cap): at most MAX_PEERS kept.
    let mut body = b"d8:intervali60e5:peers3600000:".to_vec();
    body.extend(std::iter::repeat_n([127u8, 0, 0, 1, 0x1a, 0xe1], 600_000).flatten());
    body.push(b'e');
    let r = parse_http_response(&body).expect("valid response");
    assert!(r.peers.len() <= minibt::tracker::MAX_PEERS);
    // A million peers as dictionaries, and assorted garbage: errors or bounded, no panic.
    let mut dicts = b"d8:intervali60e5:peersl".to_vec();
    for _ in 0..1_000_000 {
        dicts.extend_from_slice(b"d2:ip9:127.0.0.14:porti1ee");
    }
    dicts.extend_from_slice(b"ee");
    if let Ok(r) = parse_http_response(&dicts) {
        assert!(r.peers.len() <= minibt::tracker::MAX_PEERS);
    }
    for garbage in [
        &b""[..],
        b"<html>502 Bad Gateway</html>",
        b"d8:intervali60e5:peers99999999999:",
        b"d5:peersi5ee",
        b"d8:intervali-5e5:peers0:e",
        &[0xff; 1000],
    ] {
        assert!(parse_http_response(garbage).is_err(), "{garbage:?}");
    }
    // The UDP decoder too: a datagram claiming many peers yields what it holds.
    let mut pkt = vec![0, 0, 0, 1, 0, 0, 0, 7];
    pkt.extend_from_slice(&[0, 0, 0, 60, 0, 0, 0, 0, 0, 0, 0, 0]);
    pkt.extend(std::iter::repeat_n([127u8, 0, 0, 1, 0, 1], 100_000).flatten());
    if let Ok(Some(r)) = minibt::tracker::udp_codec::decode_announce_response(
        &pkt,
        7,
        minibt::tracker::udp_codec::Family::V4,
    ) {
        assert!(r.peers.len() <= minibt::tracker::MAX_PEERS);
    }
}

/// A torrent with `name` and (multi-file) `path` components, hashes unchecked.
fn crafted_torrent(name: &str, path: Option<&[&str]>) -> Vec<u8> {
    let bstr = |s: &str| format!("{}:{s}", s.len());
    let files = match path {
        None => "6:lengthi5e".to_string(),
        Some(p) => format!(
            "5:filesld6:lengthi5e4:pathl{}eee",
            p.iter().map(|c| bstr(c)).collect::<String>()
        ),
    };
    format!(
        "d8:announce12:http://x/ann4:infod{files}4:name{}12:piece lengthi16384e6:pieces20:{}ee",
        bstr(name),
        "h".repeat(20)
    )
    .into_bytes()
}

fn refused_before_anything_is_created(dir: &Path, label: &str, torrent: &[u8]) {
    let t = dir.join(format!("{label}.torrent"));
    std::fs::write(&t, torrent).unwrap();
    assert!(
        minibt::metainfo::Metainfo::from_bytes(torrent).is_err(),
        "{label}: accepted"
    );
    let out = dir.join(format!("out-{label}"));
    let log = dir.join(format!("{label}.log"));
    let args = [
        t.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--no-tracker",
        "--bind-ip",
        "127.0.0.1",
        "--port",
        &free_port().to_string(),
        "-q",
    ];
    let mut p = minibt(label, &args, &log);
    let status = p.wait_for(Duration::from_secs(20)).expect("exits");
    let text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(status.code(), Some(1), "{label}: {text}");
    assert!(
        text.contains("unsafe path") || text.contains("name"),
        "{label}: {text}"
    );
    assert!(!out.exists(), "{label}: output directory created");
}

#[test]
fn torrent_paths_escaping_the_output_or_naming_devices_are_refused() {
    let dir = scratch_dir("hostile-paths");
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("dotdot-name", crafted_torrent("..", None)),
        ("slash-name", crafted_torrent("/dev/null", None)),
        (
            "dotdot-path",
            crafted_torrent("t", Some(&["..", "..", "x"])),
        ),
        ("abs-path", crafted_torrent("t", Some(&["/etc", "passwd"]))),
        ("sep-path", crafted_torrent("t", Some(&["a/../../b"]))),
        (
            "dev-path",
            crafted_torrent("t", Some(&["dev", "..", "..", "sda"])),
        ),
        ("drive", crafted_torrent("t", Some(&["C:", "x"]))),
        ("empty", crafted_torrent("t", Some(&["", "x"]))),
    ];
    for (label, bytes) in &cases {
        refused_before_anything_is_created(&dir, label, bytes);
    }
    assert!(!dir.join("x").exists() && !dir.parent().unwrap().join("x").exists());

    // A valid torrent whose file already exists in the output as a link to a device: refused,
    // the device untouched.
    let src = dir.join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("dev"), b"hello").unwrap();
    let torrent = dir.join("dev.torrent");
    make_torrent(
        &src.join("dev"),
        &["http://127.0.0.1:9/a".into()],
        PIECE,
        &torrent,
    );
    let out = dir.join("out-devlink");
    std::fs::create_dir_all(&out).unwrap();
    std::os::unix::fs::symlink("/dev/null", out.join("dev")).unwrap();
    let log = dir.join("devlink.log");
    let args = [
        torrent.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--no-tracker",
        "--bind-ip",
        "127.0.0.1",
        "--port",
        &free_port().to_string(),
        "-q",
    ];
    let mut p = minibt("devlink", &args, &log);
    let status = p.wait_for(Duration::from_secs(20)).expect("exits");
    let text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(status.code(), Some(1), "{text}");
    assert!(text.contains("not a regular file"), "{text}");
}
