//! Metainfo against the outside world: torrents made by mktorrent, transmission-create and
//! libtorrent (tests/fixtures, hashes recorded by those tools), `minibt create` reproducing
//! mktorrent's info hash, hostile paths refused (also through the CLI), and a randomized
//! mutation test that the parser never panics.

use std::path::{Component, Path, PathBuf};
use std::process::Command;

use minibt::create::{create_torrent, CreateOptions};
use minibt::metainfo::Metainfo;

use crate::support::scratch_dir;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// (file, hex hash, total size, files, pieces) from tests/fixtures/hashes.txt.
fn recorded() -> Vec<(String, String, u64, usize, u32)> {
    let text = std::fs::read_to_string(fixtures().join("hashes.txt")).unwrap();
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            assert_eq!(f.len(), 5, "bad line in hashes.txt: {l}");
            (
                f[0].to_string(),
                f[1].to_string(),
                f[2].parse().unwrap(),
                f[3].parse().unwrap(),
                f[4].parse().unwrap(),
            )
        })
        .collect()
}

fn recorded_hash(file: &str) -> String {
    recorded()
        .into_iter()
        .find(|r| r.0 == file)
        .unwrap_or_else(|| panic!("{file} not in hashes.txt"))
        .1
}

/// The content formula of tests/fixtures/make-fixtures.sh.
fn content(n: usize, seed: usize) -> Vec<u8> {
    (0..n)
        .map(|i| ((i * 31 + seed + (i >> 8)) & 0xff) as u8)
        .collect()
}

#[test]
fn fixtures_have_the_info_hashes_other_tools_computed() {
    let rows = recorded();
    assert!(rows.len() >= 7, "hashes.txt lists {} torrents", rows.len());
    for (file, hash, total, files, pieces) in rows {
        let m = Metainfo::load(&fixtures().join(&file)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(m.info_hash.hex(), hash, "{file}");
        assert_eq!(m.total_length(), total, "{file}");
        assert_eq!(m.info.files.len(), files, "{file}");
        assert_eq!(m.num_pieces(), pieces, "{file}");
        assert_eq!(m.layout().num_pieces(), pieces, "{file}");
        assert_eq!(
            m.announce.as_deref(),
            Some("http://127.0.0.1:6969/announce"),
            "{file}"
        );
    }
}

#[test]
fn fixture_details() {
    let m = Metainfo::load(&fixtures().join("mktorrent-multi.torrent")).unwrap();
    assert_eq!(
        m.tracker_tiers(),
        vec![
            vec!["http://127.0.0.1:6969/announce"],
            vec!["http://127.0.0.1:6970/announce"]
        ]
    );
    assert_eq!(m.comment.as_deref(), Some("made by mktorrent"));
    let paths: Vec<PathBuf> = m.layout().files().iter().map(|f| f.path.clone()).collect();
    assert_eq!(paths[0], PathBuf::from("multi/a-empty.txt"));
    assert_eq!(paths[4], PathBuf::from("multi/d/f/g.bin"));

    let t = Metainfo::load(&fixtures().join("transmission-multi.torrent")).unwrap();
    assert!(t.info.private);
    assert!(t.created_by.unwrap().starts_with("Transmission"));

    // Hybrid v1+v2 loads as v1, its BEP 47 padding files marked.
    let h = Metainfo::load(&fixtures().join("libtorrent-hybrid-multi.torrent")).unwrap();
    assert!(h.info.multi_file);
    let pads = h.info.files.iter().filter(|f| f.padding).count();
    assert!(pads >= 1);
    assert!(h
        .info
        .files
        .iter()
        .filter(|f| f.padding)
        .all(|f| f.path[0] == ".pad"));
    let real: u64 = h
        .info
        .files
        .iter()
        .filter(|f| !f.padding)
        .map(|f| f.length)
        .sum();
    assert_eq!(real, 72776);

    let u = Metainfo::load(&fixtures().join("unsorted-keys.torrent")).unwrap();
    assert_eq!(u.comment.as_deref(), Some("unsorted keys"));
}

#[test]
fn v2_only_torrents_are_refused_with_a_clear_message() {
    let e = Metainfo::load(&fixtures().join("libtorrent-v2-only.torrent.refused")).unwrap_err();
    assert!(
        e.0.contains("v2-only torrents (BEP 52) are not supported"),
        "{e}"
    );
}

#[test]
fn create_reproduces_mktorrents_info_hash() {
    let dir = scratch_dir("metainfo-create-vs-mktorrent");
    let single = dir.join("single.bin");
    std::fs::write(&single, content(100_000, 1)).unwrap();
    let multi = dir.join("multi");
    std::fs::create_dir_all(multi.join("d/f")).unwrap();
    for (rel, n, seed) in [
        ("a-empty.txt", 0, 2),
        ("b.bin", 1, 3),
        ("c.bin", 16383, 4),
        ("d/e.bin", 16385, 5),
        ("d/f/g.bin", 7, 6),
        ("z.bin", 40000, 7),
    ] {
        std::fs::write(multi.join(rel), content(n, seed)).unwrap();
    }
    for (path, fixture) in [
        (&single, "mktorrent-single.torrent"),
        (&multi, "mktorrent-multi.torrent"),
    ] {
        let mut opts = CreateOptions::new(path);
        opts.trackers = vec!["http://127.0.0.1:6969/announce".into()];
        opts.piece_length = Some(32768);
        let m = Metainfo::from_bytes(&create_torrent(&opts).unwrap()).unwrap();
        assert_eq!(m.info_hash.hex(), recorded_hash(fixture), "{fixture}");
    }
}

/// A torrent whose `files` list has the given path (components as raw strings).
fn torrent_with_path(components: &[&str]) -> Vec<u8> {
    let comps: String = components
        .iter()
        .map(|c| format!("{}:{c}", c.len()))
        .collect();
    let pieces = "x".repeat(20);
    format!(
        "d8:announce22:http://127.0.0.1:1/ann4:infod5:filesld6:lengthi5e4:pathl{comps}eee4:name4:evil12:piece lengthi16384e6:pieces20:{pieces}ee"
    )
    .into_bytes()
}

#[test]
fn traversal_and_absolute_paths_are_refused() {
    for comps in [
        &["..", "..", "etc", "passwd"][..],
        &["/etc", "passwd"],
        &["", "etc"],
        &["a", ".", "b"],
        &["..\\..\\x"],
        &["C:", "x"],
        &["a\0b"],
    ] {
        let e = Metainfo::from_bytes(&torrent_with_path(comps)).unwrap_err();
        assert!(
            e.0.starts_with("info.files[0].path: unsafe path component"),
            "{comps:?}: {e}"
        );
    }
    assert!(Metainfo::from_bytes(&torrent_with_path(&["ok", "file"])).is_ok());
}

#[test]
fn cli_refuses_a_traversal_torrent_and_creates_nothing() {
    let dir = scratch_dir("metainfo-cli-evil");
    let torrent = dir.join("evil.torrent");
    std::fs::write(&torrent, torrent_with_path(&["..", "escaped.txt"])).unwrap();
    let work = dir.join("work");
    std::fs::create_dir_all(&work).unwrap();
    for args in [vec!["info", "../evil.torrent"], vec!["../evil.torrent"]] {
        let out = Command::new(env!("CARGO_BIN_EXE_minibt"))
            .args(&args)
            .current_dir(&work)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?} succeeded");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.starts_with("minibt: "), "{stderr}");
        assert!(stderr.contains("info.files[0].path"), "{stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    }
    assert_eq!(std::fs::read_dir(&work).unwrap().count(), 0);
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    assert_eq!(names, vec!["evil.torrent", "work"]);
}

/// xorshift64*: deterministic, seeded.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn mutate(rng: &mut Rng, t: &mut Vec<u8>) {
    for _ in 0..1 + rng.below(3) {
        if t.is_empty() {
            return;
        }
        let at = rng.below(t.len());
        match rng.below(6) {
            0 => t[at] ^= 1 << rng.below(8),
            1 => t.insert(at, rng.next() as u8),
            2 => {
                t.remove(at);
            }
            3 => t.truncate(at),
            // digits: length prefixes and integers
            _ => {
                let digits: Vec<usize> = (0..t.len()).filter(|&i| t[i].is_ascii_digit()).collect();
                if digits.is_empty() {
                    continue;
                }
                let d = digits[rng.below(digits.len())];
                match rng.below(3) {
                    0 => t[d] = b'0' + rng.below(10) as u8,
                    1 => t.insert(d, b'0' + rng.below(10) as u8),
                    _ => t.insert(d, b'9'),
                }
            }
        }
    }
}

#[test]
fn mutated_and_truncated_torrents_never_panic() {
    let mut seeds: Vec<Vec<u8>> = recorded()
        .iter()
        .map(|r| std::fs::read(fixtures().join(&r.0)).unwrap())
        .collect();
    seeds.push(torrent_with_path(&["a", "b"]));
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let (mut ok, mut refused) = (0usize, 0usize);
    const RUNS: usize = 100_000;
    for _ in 0..RUNS {
        let mut t = seeds[rng.below(seeds.len())].clone();
        mutate(&mut rng, &mut t);
        match Metainfo::from_bytes(&t) {
            Ok(m) => {
                ok += 1;
                // whatever loads must be internally consistent and safe to lay out
                let layout = m.layout();
                assert_eq!(layout.num_pieces(), m.num_pieces());
                assert_eq!(layout.total_length(), m.total_length());
                for f in layout.files() {
                    assert!(f
                        .path
                        .components()
                        .all(|c| matches!(c, Component::Normal(_))));
                }
            }
            Err(e) => {
                refused += 1;
                assert!(!e.0.is_empty());
            }
        }
    }
    eprintln!("mutated torrents: {ok} loaded, {refused} refused");
    assert_eq!(ok + refused, RUNS);
    // both outcomes must be exercised for the test to mean anything
    assert!(ok > 1000 && refused > 1000, "ok {ok}, refused {refused}");
}
