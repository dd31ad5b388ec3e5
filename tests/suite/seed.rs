//! Seeding: a minibt swarm where leechers share with each other, and a seed that refuses
//! hostile requests while it keeps serving everyone else.

use crate::support::*;
use minibt::bitfield::Bitfield;
use minibt::ids::{InfoHash, PeerId};
use minibt::tracker_server::TrackerServer;
use minibt::wire::{self, BlockRequest, Handshake, Limits, Message};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// Bytes a leecher's report says it got from peers whose address starts with `ip`.
fn bytes_from(report: &str, ip: &str) -> u64 {
    report
        .lines()
        .filter(|l| l.contains(&format!("\"addr\": \"{ip}:")))
        .filter_map(|l| {
            let at = l.find("\"downloaded\": ")? + "\"downloaded\": ".len();
            l[at..].split(',').next()?.trim().parse::<u64>().ok()
        })
        .sum()
}

#[test]
fn seed_swarm_leechers_share_with_each_other() {
    let dir = scratch_dir("seed-swarm");
    let src = dir.join("src");
    std::fs::create_dir_all(&src).unwrap();
    let size = 6 * 1024 * 1024;
    std::fs::write(src.join("movie.bin"), pseudo_random_bytes(21, size)).unwrap();
    let tracker = TrackerServer::start("127.0.0.1:0".parse().unwrap()).unwrap();
    let torrent = dir.join("t.torrent");
    make_torrent(
        &src.join("movie.bin"),
        &[tracker.http_announce_url()],
        64 * 1024,
        &torrent,
    );

    // The seeder uploads at most 1.5 MB/s in total: three leechers fed by it alone would need
    // 3 × 6 MiB from it; sharing among themselves they need far less.
    let _seeder = start_seed(
        &dir,
        "seeder",
        &torrent,
        &src,
        "127.0.0.2",
        &["--max-upload-rate", "1500K"],
    );

    let mut leechers = Vec::new();
    for i in 3..6 {
        let ip = format!("127.0.0.{i}");
        let out = dir.join(format!("out{i}"));
        let report = dir.join(format!("report{i}.json"));
        let port = free_port().to_string();
        let args = [
            torrent.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--port",
            &port,
            "--bind-ip",
            &ip,
            "--report",
            report.to_str().unwrap(),
            "--timeout",
            "60",
            "-q",
        ];
        leechers.push((
            minibt(
                &format!("leecher{i}"),
                &args,
                &dir.join(format!("leecher{i}.log")),
            ),
            out,
            report,
        ));
    }
    let (mut from_seeder, mut from_leechers) = (0u64, 0u64);
    for (proc_, out, report) in leechers.iter_mut() {
        let status = proc_
            .wait_for(Duration::from_secs(120))
            .expect("leecher finished in time");
        assert!(status.success(), "leecher failed");
        assert_same_tree(&src.join("movie.bin"), &out.join("movie.bin"));
        let report = std::fs::read_to_string(report).unwrap();
        from_seeder += bytes_from(&report, "127.0.0.2");
        for i in 3..6 {
            from_leechers += bytes_from(&report, &format!("127.0.0.{i}"));
        }
    }
    let total = 3 * size as u64;
    eprintln!("from the seeder {from_seeder} B, between leechers {from_leechers} B, of {total} B");
    assert!(
        from_leechers > 0,
        "the leechers never uploaded to each other"
    );
    assert!(
        from_seeder < 2 * size as u64,
        "the seeder uploaded {from_seeder} B: well below 3 × {size} expected"
    );
}

/// A raw BEP 3 client for poking at a seed.
struct RawPeer {
    s: TcpStream,
    limits: Limits,
}

impl RawPeer {
    fn connect(addr: SocketAddr, info_hash: InfoHash, num_pieces: u32) -> RawPeer {
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        // Distinct ids: the seed keeps one connection per peer id.
        let mut id = [b'x'; 20];
        id[..8].copy_from_slice(b"-RP0001-");
        minibt::ids::random_bytes(&mut id[8..]);
        s.write_all(&Handshake::new(info_hash, PeerId(id)).encode())
            .unwrap();
        let mut theirs = [0u8; 68];
        s.read_exact(&mut theirs).unwrap();
        assert_eq!(Handshake::decode(&theirs).unwrap().info_hash, info_hash);
        let mut p = RawPeer {
            s,
            limits: Limits::for_torrent(num_pieces),
        };
        p.send(&Message::Interested);
        p
    }

    fn send(&mut self, m: &Message) {
        let mut out = Vec::new();
        wire::encode(m, &mut out);
        self.s.write_all(&out).unwrap();
    }

    /// Next frame's body, or None when the seed closed the connection.
    fn next(&mut self) -> Option<Vec<u8>> {
        let mut prefix = [0u8; 4];
        self.s.read_exact(&mut prefix).ok()?;
        let len = wire::check_frame_len(u32::from_be_bytes(prefix), &self.limits).ok()?;
        let mut body = vec![0u8; len];
        self.s.read_exact(&mut body).ok()?;
        Some(body)
    }

    /// Reads until a frame matching `want` arrives (bounded), returning it.
    fn wait_for(&mut self, want: impl Fn(&Message) -> bool) -> Option<Vec<u8>> {
        for _ in 0..10_000 {
            let body = self.next()?;
            if wire::decode_frame(&body).map(|m| want(&m)).unwrap_or(false) {
                return Some(body);
            }
        }
        None
    }

    /// True when the seed hangs up within the read timeout.
    fn is_dropped(&mut self) -> bool {
        for _ in 0..10_000 {
            if self.next().is_none() {
                return true;
            }
        }
        false
    }
}

#[test]
fn seed_drops_hostile_requests_and_keeps_serving_others() {
    let dir = scratch_dir("seed-hostile");
    let src = dir.join("src");
    std::fs::create_dir_all(&src).unwrap();
    let piece_length = 32 * 1024u64;
    let mut content = pseudo_random_bytes(31, 10 * piece_length as usize + 100);
    std::fs::write(src.join("f.bin"), &content).unwrap();
    let torrent = dir.join("t.torrent");
    let meta = make_torrent(
        &src.join("f.bin"),
        &["http://127.0.0.1:9/announce".into()],
        piece_length,
        &torrent,
    );
    // Damage piece 3 on the seed's disk: the seed then does not have it.
    content[3 * piece_length as usize] ^= 0xff;
    std::fs::write(src.join("f.bin"), &content).unwrap();
    let (_seed, port) = start_seed(&dir, "seed", &torrent, &src, "127.0.0.1", &["--no-tracker"]);
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let n = meta.num_pieces();

    let bad_requests = [
        (
            "offset past the piece",
            BlockRequest {
                index: 0,
                begin: piece_length as u32 - 100,
                length: 16384,
            },
        ),
        (
            "index past the last piece",
            BlockRequest {
                index: n,
                begin: 0,
                length: 16384,
            },
        ),
        (
            "a block of 1 MiB",
            BlockRequest {
                index: 0,
                begin: 0,
                length: 1 << 20,
            },
        ),
        (
            "a piece the seed does not have",
            BlockRequest {
                index: 3,
                begin: 0,
                length: 16384,
            },
        ),
    ];
    for (what, req) in bad_requests {
        let mut bad = RawPeer::connect(addr, meta.info_hash, n);
        let bits = bad
            .wait_for(|m| matches!(m, Message::Bitfield(_)))
            .expect("bitfield");
        let have = Bitfield::from_bytes(&bits[1..], n).unwrap();
        assert!(
            !have.has(3) && have.has(0),
            "the seed should lack only piece 3"
        );
        bad.wait_for(|m| matches!(m, Message::Unchoke))
            .expect("unchoked");
        bad.send(&Message::Request(req));
        assert!(bad.is_dropped(), "{what}: the seed kept the connection");

        // Meanwhile a well-behaved peer is served.
        let mut good = RawPeer::connect(addr, meta.info_hash, n);
        good.wait_for(|m| matches!(m, Message::Unchoke))
            .expect("unchoked");
        let req = BlockRequest {
            index: 1,
            begin: 16384,
            length: 16384,
        };
        good.send(&Message::Request(req));
        let body = good
            .wait_for(|m| matches!(m, Message::Piece { .. }))
            .expect("a block");
        let start = piece_length as usize + 16384;
        assert_eq!(&body[9..], &content[start..start + 16384], "after {what}");
    }
}

#[test]
fn two_seeds_do_not_keep_a_connection_to_each_other() {
    let dir = scratch_dir("seed-seed");
    let src = dir.join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("f.bin"), pseudo_random_bytes(41, 300_000)).unwrap();
    let tracker = TrackerServer::start("127.0.0.1:0".parse().unwrap()).unwrap();
    let torrent = dir.join("t.torrent");
    make_torrent(
        &src.join("f.bin"),
        &[tracker.http_announce_url()],
        32 * 1024,
        &torrent,
    );
    let _a = start_seed(&dir, "seedA", &torrent, &src, "127.0.0.2", &[]);
    let _b = start_seed(&dir, "seedB", &torrent, &src, "127.0.0.3", &[]);
    // The later seed learns the earlier one from the tracker, dials it, and both hang up.
    let logs = || {
        ["seedA", "seedB"]
            .map(|n| std::fs::read_to_string(dir.join(format!("{n}.log"))).unwrap_or_default())
            .join("\n")
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !logs().contains("both of us are seeds") && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(logs().contains("both of us are seeds"), "{}", logs());
    // ... and nobody dials again.
    std::thread::sleep(Duration::from_secs(3));
    let connects = logs().matches("connected: Some").count();
    assert!(
        connects <= 2,
        "seeds kept reconnecting: {connects} connections"
    );
}

#[test]
fn seed_refuses_a_directory_without_the_data() {
    let dir = scratch_dir("seed-no-data");
    let src = dir.join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("movie.bin"), pseudo_random_bytes(5, 300_000)).unwrap();
    let torrent = dir.join("t.torrent");
    make_torrent(
        &src.join("movie.bin"),
        &["http://127.0.0.1:9/announce".to_string()],
        32 * 1024,
        &torrent,
    );
    // A mistyped --from: an error naming the directory, and nothing created there.
    let wrong = dir.join("typo");
    let log = dir.join("seed.log");
    let args = [
        "seed",
        torrent.to_str().unwrap(),
        "--from",
        wrong.to_str().unwrap(),
        "--no-tracker",
        "-q",
    ];
    let mut seed = minibt("seed", &args, &log);
    let status = seed.wait_for(Duration::from_secs(10));
    let stderr = std::fs::read_to_string(&log).unwrap();
    assert!(
        status.is_some_and(|s| !s.success()),
        "seeding nothing did not fail: {status:?} {stderr}"
    );
    let looked_for = wrong.join("movie.bin").display().to_string();
    assert!(
        stderr.contains("none of movie.bin's files") && stderr.contains(&looked_for),
        "unclear error: {stderr}"
    );
    assert!(!wrong.exists(), "the wrong directory was created");
}
