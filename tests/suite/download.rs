//! End-to-end downloads on loopback: minibt seeders, the built-in tracker, one minibt leecher,
//! and peers that misbehave on purpose. Every download is compared byte for byte.

use crate::rogue::{Mode, Rogue};
use crate::support::*;
use minibt::tracker_server::TrackerServer;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(120);

/// Downloads `torrent` into `out` with minibt and returns the exit status and the log.
fn download(
    dir: &Path,
    torrent: &Path,
    out: &Path,
    extra: &[&str],
) -> (std::process::ExitStatus, String) {
    let port = free_port().to_string();
    let mut args = vec![
        torrent.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--port",
        &port,
        "--bind-ip",
        "127.0.0.1",
        "-q",
    ];
    if !extra.contains(&"--timeout") {
        args.extend_from_slice(&["--timeout", "60"]);
    }
    args.extend_from_slice(extra);
    let log = dir.join("leecher.log");
    let mut p = minibt("leecher", &args, &log);
    let status = p.wait_for(LIMIT).expect("download did not finish in time");
    (status, std::fs::read_to_string(&log).unwrap_or_default())
}

/// Content + torrent through the built-in tracker, two seeders, one leecher.
fn swarm_case(name: &str, files: &[(&str, usize)], piece_length: u64) {
    let dir = scratch_dir(&format!("download-{name}"));
    let src = dir.join("src");
    let root = src.join(name);
    if files.len() == 1 && files[0].0.is_empty() {
        std::fs::create_dir_all(&src).unwrap();
        std::fs::write(&root, pseudo_random_bytes(3, files[0].1)).unwrap();
    } else {
        write_content(&root, files);
    }
    let tracker = TrackerServer::start("127.0.0.1:0".parse().unwrap()).unwrap();
    let torrent = dir.join("t.torrent");
    make_torrent(
        &root,
        &[tracker.http_announce_url()],
        piece_length,
        &torrent,
    );
    let _s1 = start_seed(&dir, "seed1", &torrent, &src, "127.0.0.1", &[]);
    let _s2 = start_seed(&dir, "seed2", &torrent, &src, "127.0.0.1", &[]);
    let out = dir.join("out");
    let (status, log) = download(&dir, &torrent, &out, &[]);
    assert!(status.success(), "download failed: {log}");
    assert_same_tree(&root, &out.join(name));
}

#[test]
fn download_single_file_16k_pieces_short_last_piece() {
    swarm_case("single16k", &[("", 300_001)], 16 * 1024);
}

#[test]
fn download_single_file_256k_pieces() {
    swarm_case("single256k", &[("", 3 * 1024 * 1024 + 12_345)], 256 * 1024);
}

#[test]
fn download_single_file_16m_piece_larger_than_file() {
    swarm_case("single16m", &[("", 5 * 1024 * 1024 + 7)], 16 * 1024 * 1024);
}

#[test]
fn download_multi_file_awkward_sizes_with_empty_file() {
    swarm_case(
        "multi",
        &[
            ("a.bin", 1),
            ("empty.txt", 0),
            ("sub/b.bin", 16_383),
            ("sub/deeper/c.bin", 700_000),
            ("z.bin", 5),
        ],
        32 * 1024,
    );
}

/// A fault case: one good minibt seeder plus a rogue peer, dialled directly.
fn fault_case(name: &str, mode: Mode, extra: &[&str]) -> Rogue {
    let dir = scratch_dir(&format!("fault-{name}"));
    let src = dir.join("src");
    std::fs::create_dir_all(&src).unwrap();
    let content = pseudo_random_bytes(11, 2 * 1024 * 1024 + 999);
    std::fs::write(src.join(name), &content).unwrap();
    let torrent = dir.join("t.torrent");
    let piece_length = 64 * 1024;
    let meta = make_torrent(
        &src.join(name),
        &["http://127.0.0.1:9/announce".into()],
        piece_length,
        &torrent,
    );
    let rogue = Rogue::start(mode, meta.info_hash, Arc::new(content), piece_length);
    // The good seed is throttled so the rogue is sure to be asked for blocks too.
    let (_seed, port) = start_seed(
        &dir,
        "seed",
        &torrent,
        &src,
        "127.0.0.1",
        &["--no-tracker", "--max-upload-rate", "4M"],
    );
    let out = dir.join("out");
    let rogue_addr = rogue.addr.to_string();
    let seed_addr = format!("127.0.0.1:{port}");
    let mut args = vec!["--no-tracker", "--peer", &rogue_addr, "--peer", &seed_addr];
    args.extend_from_slice(extra);
    let (status, log) = download(&dir, &torrent, &out, &args);
    assert!(status.success(), "download failed: {log}");
    assert_same_tree(&src.join(name), &out.join(name));
    assert!(
        rogue.connections.load(Ordering::SeqCst) >= 1,
        "the rogue was never contacted"
    );
    rogue
}

#[test]
fn fault_corrupt_peer_is_dropped_and_file_is_right() {
    let rogue = fault_case("corrupt", Mode::Corrupt, &[]);
    assert!(
        rogue.blocks_sent.load(Ordering::SeqCst) > 0,
        "the rogue sent no bad data"
    );
    // The client hung up on the peer that sent bad pieces (ban after repeated failures).
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while rogue.closed_by_client.load(Ordering::SeqCst) == 0 && std::time::Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(rogue.closed_by_client.load(Ordering::SeqCst) >= 1);
    // Banned: never reconnected.
    assert_eq!(rogue.connections.load(Ordering::SeqCst), 1);
}

#[test]
fn fault_peer_disconnecting_mid_piece() {
    let rogue = fault_case("midpiece", Mode::DisconnectMidPiece, &[]);
    assert!(rogue.blocks_sent.load(Ordering::SeqCst) >= 3);
}

#[test]
fn fault_peer_that_never_unchokes() {
    fault_case("nounchoke", Mode::NeverUnchoke, &[]);
}

#[test]
fn fault_peer_that_stops_sending_without_closing() {
    let rogue = fault_case("stall", Mode::Stall, &["--snub-timeout", "2"]);
    assert!(rogue.blocks_sent.load(Ordering::SeqCst) >= 1);
}

#[test]
fn download_fails_cleanly_when_no_peer_answers() {
    let dir = scratch_dir("download-nopeer");
    let src = dir.join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("f"), pseudo_random_bytes(5, 100_000)).unwrap();
    let torrent = dir.join("t.torrent");
    make_torrent(
        &src.join("f"),
        &["http://127.0.0.1:9/announce".into()],
        16384,
        &torrent,
    );
    let dead = format!("127.0.0.1:{}", free_port());
    let (status, log) = download(
        &dir,
        &torrent,
        &dir.join("out"),
        &["--peer", &dead, "--timeout", "3"],
    );
    assert!(!status.success());
    assert!(
        log.contains("no piece could be downloaded within 3 s"),
        "{log}"
    );
}

#[test]
fn sequential_mode_fetches_pieces_in_order() {
    let dir = scratch_dir("download-sequential");
    let src = dir.join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(
        src.join("movie.bin"),
        pseudo_random_bytes(9, 4 * 1024 * 1024),
    )
    .unwrap();
    let torrent = dir.join("t.torrent");
    let meta = make_torrent(
        &src.join("movie.bin"),
        &["http://127.0.0.1:9/announce".into()],
        16 * 1024,
        &torrent,
    );
    // A slow seed, so the download is caught half way.
    let (_seed, port) = start_seed(
        &dir,
        "seed",
        &torrent,
        &src,
        "127.0.0.1",
        &["--no-tracker", "--max-upload-rate", "1M"],
    );
    let out = dir.join("out");
    let peer = format!("127.0.0.1:{port}");
    let args = [
        torrent.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--port",
        "0",
        "--no-tracker",
        "--peer",
        &peer,
        "--sequential",
        "-q",
    ];
    let mut leecher = minibt("leecher", &args, &dir.join("leecher.log"));
    std::thread::sleep(std::time::Duration::from_millis(1500));
    // SAFETY: signalling a child we started and still own.
    unsafe { libc::kill(leecher.child.id() as libc::pid_t, libc::SIGINT) };
    let status = leecher.wait_for(std::time::Duration::from_secs(10));
    assert!(status.is_some(), "the leecher did not stop");
    let state_file = minibt::resume_store::state_path(&out, "movie.bin");
    let bytes = std::fs::read(&state_file).expect("resume state saved");
    let state = minibt::resume::ResumeState::decode(&bytes, meta.num_pieces(), 1).unwrap();
    let done: Vec<u32> = state.pieces.iter_set().collect();
    assert!(
        !done.is_empty() && done.len() < meta.num_pieces() as usize,
        "caught mid-way: {} of {} pieces",
        done.len(),
        meta.num_pieces()
    );
    // In order, give or take the requests in flight (one peer: at most 32 blocks = 32 pieces);
    // rarest-first on the same download gets far ahead of the count (checked by hand: 254).
    let highest = *done.last().unwrap() as usize;
    assert!(
        highest < done.len() + 48,
        "{} pieces done but the highest is {highest}: not sequential",
        done.len()
    );
}
