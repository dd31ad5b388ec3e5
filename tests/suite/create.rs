//! `minibt create` end to end: the built binary writes a torrent, `minibt info` reads it back,
//! and transmission-show and libtorrent (when installed; required when CI=true) load it with
//! the same info hash.

use std::path::Path;
use std::process::Command;

use minibt::metainfo::Metainfo;

use crate::support::{in_ci, scratch_dir};

fn minibt(args: &[&std::ffi::OsStr]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_minibt"))
        .args(args)
        .output()
        .unwrap()
}

/// A directory with awkward sizes; returns (content dir, torrent path) after `minibt create`.
fn make_torrent(name: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let dir = scratch_dir(name);
    let content = dir.join("payload");
    std::fs::create_dir_all(content.join("sub/deeper")).unwrap();
    let sizes = [
        ("empty", 0usize),
        ("one", 1),
        ("sub/block-minus-one", 16383),
        ("sub/deeper/block-plus-one", 16385),
        ("z-large", 70001),
    ];
    for (i, (rel, n)) in sizes.iter().enumerate() {
        let bytes: Vec<u8> = (0..*n).map(|j| (j * 7 + i * 13 + (j >> 9)) as u8).collect();
        std::fs::write(content.join(rel), bytes).unwrap();
    }
    let torrent = dir.join("payload.torrent");
    let out = minibt(&[
        "create".as_ref(),
        content.as_os_str(),
        "-t".as_ref(),
        "http://127.0.0.1:6969/announce".as_ref(),
        "-t".as_ref(),
        "udp://127.0.0.1:6969".as_ref(),
        "--comment".as_ref(),
        "round trip".as_ref(),
        "-l".as_ref(),
        "16K".as_ref(),
        "--private".as_ref(),
        "-o".as_ref(),
        torrent.as_os_str(),
    ]);
    assert!(
        out.status.success(),
        "create failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (content, torrent)
}

#[test]
fn info_reads_back_what_create_wrote() {
    let (_content, torrent) = make_torrent("create-info-roundtrip");
    let m = Metainfo::load(&torrent).unwrap();
    let out = minibt(&["info".as_ref(), torrent.as_os_str()]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for want in [
        "name:          payload".to_string(),
        format!("info hash:     {}", m.info_hash),
        "(102770 bytes)".to_string(),
        format!(
            "pieces:        {} x 16.00 KiB (16384 bytes)",
            m.num_pieces()
        ),
        "private:       yes".to_string(),
        "comment:       round trip".to_string(),
        format!("created by:    minibt/{}", env!("CARGO_PKG_VERSION")),
        "  tier 1: http://127.0.0.1:6969/announce".to_string(),
        "  tier 2: udp://127.0.0.1:6969".to_string(),
        "files (5):".to_string(),
        "payload/sub/deeper/block-plus-one".to_string(),
        " UTC".to_string(),
    ] {
        assert!(text.contains(&want), "missing {want:?} in:\n{text}");
    }
    assert_eq!(m.num_pieces(), 102770u64.div_ceil(16384) as u32);

    // refuses to overwrite without --force, one-line error
    let again = minibt(&[
        "create".as_ref(),
        torrent.as_os_str(),
        "-t".as_ref(),
        "http://127.0.0.1:1/a".as_ref(),
        "-o".as_ref(),
        torrent.as_os_str(),
    ]);
    assert!(!again.status.success());
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(
        err.starts_with("minibt: ") && err.contains("already exists"),
        "{err}"
    );
    assert_eq!(Metainfo::load(&torrent).unwrap().info_hash, m.info_hash);
}

/// Runs `tool` if installed; `None` means absent (a failure in CI, a printed skip locally).
fn run_tool(cmd: &mut Command, what: &str) -> Option<String> {
    match cmd.output() {
        Ok(out) => {
            assert!(
                out.status.success(),
                "{what} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            Some(String::from_utf8_lossy(&out.stdout).into_owned())
        }
        Err(e) => {
            assert!(!in_ci(), "{what} is required in CI: {e}");
            eprintln!("skipping {what} check: {e}");
            None
        }
    }
}

fn libtorrent_hash(torrent: &Path) -> Option<String> {
    let script = "import sys, libtorrent as lt\n\
                  ti = lt.torrent_info(sys.argv[1])\n\
                  print(ti.info_hashes().v1, ti.num_files(), ti.total_size())";
    let python = if Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    };
    let out = Command::new(python)
        .arg("-c")
        .arg(script)
        .arg(torrent)
        .output();
    match out {
        Ok(o) if o.status.success() => Some(String::from_utf8_lossy(&o.stdout).into_owned()),
        Ok(o) => {
            let err = String::from_utf8_lossy(&o.stderr).into_owned();
            let missing = err.contains("No module named");
            assert!(missing && !in_ci(), "libtorrent check failed: {err}");
            eprintln!("skipping libtorrent check: python3-libtorrent not installed");
            None
        }
        Err(e) => {
            assert!(!in_ci(), "python3 is required in CI: {e}");
            eprintln!("skipping libtorrent check: {e}");
            None
        }
    }
}

#[test]
fn other_clients_agree_on_the_info_hash() {
    let (_content, torrent) = make_torrent("create-interop");
    let m = Metainfo::load(&torrent).unwrap();
    let hash = m.info_hash.hex();

    if let Some(text) = run_tool(
        Command::new("transmission-show").arg(&torrent),
        "transmission-show",
    ) {
        let shown = text
            .lines()
            .find_map(|l| l.trim().strip_prefix("Hash:"))
            .map(str::trim)
            .unwrap_or_else(|| panic!("no Hash line in:\n{text}"));
        assert_eq!(shown, hash, "transmission-show");
        assert!(text.contains("payload/sub/deeper/block-plus-one"), "{text}");
    }
    if let Some(line) = libtorrent_hash(&torrent) {
        let f: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(f, vec![hash.as_str(), "5", "102770"], "libtorrent");
    }
}
