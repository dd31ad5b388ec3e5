//! Test content and the torrents for it, made by each tool: mktorrent, transmission-create,
//! libtorrent (hybrid v1+v2, BEP 52) and `minibt create`. Also the info hashes a tracker
//! whitelist needs (v1, plus the truncated v2 hash for hybrids).
//!
//! Called by the interop tests. BEP 3 metainfo; BEP 52 for libtorrent's hybrids.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::harness::{lt_script, PYTHON};
use crate::support::pseudo_random_bytes;

/// Which program makes the .torrent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Maker {
    Mktorrent,
    TransmissionCreate,
    /// libtorrent 2.0's default: hybrid v1+v2.
    LibtorrentHybrid,
    Minibt,
}

/// Piece length used everywhere: 32 KiB, so a few MiB make ~100 pieces.
pub const PIECE_LENGTH: u64 = 32 * 1024;

/// One file of a bit over 2 MiB (last piece short).
pub fn single_file(src: &Path) -> PathBuf {
    std::fs::create_dir_all(src).unwrap();
    let path = src.join("single.bin");
    std::fs::write(&path, pseudo_random_bytes(41, 2 * 1024 * 1024 + 12_345)).unwrap();
    path
}

/// A directory with awkward sizes: a 0-byte file, a file smaller than one 16 KiB block,
/// pieces that cross file boundaries, nested directories.
pub fn multi_file(src: &Path) -> PathBuf {
    let root = src.join("multi");
    let files: &[(&str, usize)] = &[
        ("a-empty.txt", 0),
        ("b-tiny.bin", 1000),
        ("c/d.bin", 700_001),
        ("c/e/f.bin", 16_385),
        ("z.bin", 1_500_000),
    ];
    for (i, (rel, size)) in files.iter().enumerate() {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, pseudo_random_bytes(100 + i as u64, *size)).unwrap();
    }
    root
}

/// Makes `out` from `content` with `maker`, announcing to `tracker`; panics with the tool's
/// output on failure.
pub fn make(maker: Maker, content: &Path, tracker: &str, out: &Path) {
    let _ = std::fs::remove_file(out);
    let mut cmd;
    match maker {
        Maker::Mktorrent => {
            cmd = Command::new("mktorrent");
            cmd.args(["-l", "15", "-a", tracker, "-o"])
                .arg(out)
                .arg(content);
        }
        Maker::TransmissionCreate => {
            cmd = Command::new("transmission-create");
            cmd.args(["-s", "32", "-t", tracker, "-o"])
                .arg(out)
                .arg(content);
        }
        Maker::LibtorrentHybrid => {
            cmd = Command::new(PYTHON);
            cmd.arg(lt_script()).arg("create").arg(content).arg(out);
            cmd.args([
                "--tracker",
                tracker,
                "--piece-length",
                &PIECE_LENGTH.to_string(),
            ]);
        }
        Maker::Minibt => {
            cmd = Command::new(env!("CARGO_BIN_EXE_minibt"));
            cmd.arg("create")
                .arg(content)
                .args(["-t", tracker, "-l", "32K", "-o"]);
            cmd.arg(out);
        }
    }
    let o = cmd.output().unwrap_or_else(|e| panic!("{maker:?}: {e}"));
    assert!(
        o.status.success() && out.exists(),
        "{maker:?} failed to make {}: {}{}",
        out.display(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// The hashes to whitelist at the tracker: the v1 info hash (as minibt computes it) and, for
/// hybrids, the SHA-256 info hash truncated to 20 bytes (as libtorrent reports it).
pub fn whitelist_hashes(maker: Maker, torrent: &Path) -> Vec<String> {
    let meta = minibt::metainfo::Metainfo::load(torrent).expect("minibt loads the torrent");
    let mut out = vec![meta.info_hash.hex()];
    if maker == Maker::LibtorrentHybrid {
        let o = Command::new(PYTHON)
            .arg(lt_script())
            .arg("hashes")
            .arg(torrent)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&o.stdout).to_string();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "hybrid has v1 and v2 hashes: {text}");
        assert_eq!(
            lines[0], out[0],
            "libtorrent and minibt agree on the v1 hash"
        );
        out.push(lines[1].to_string());
    }
    out
}
