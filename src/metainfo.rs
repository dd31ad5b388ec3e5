//! Torrent metainfo (BEP 3, BEP 12, BEP 27, BEP 47 padding, BEP 52 hybrid): `.torrent` bytes →
//! a validated [`Metainfo`].
//!
//! Called by the CLI (`info`, download) and by `create` to check what it wrote. Parsing is pure;
//! only [`Metainfo::load`] reads a file (with a size cap). The info hash is the SHA-1 of the
//! `info` value's bytes exactly as they stand in the file (decoded by `crate::bencode`, which
//! keeps raw spans), so torrents with unsorted keys keep their real identity.
//!
//! Validation refuses anything that could make the downloader write outside its output
//! directory (`..`, `.`, absolute or empty components, separators or NUL inside a component,
//! drive prefixes like `C:`, duplicate paths) and anything inconsistent (piece hashes vs. total
//! size). Every error names the field at fault. Hybrid v1+v2 torrents (BEP 52) load as v1;
//! v2-only torrents are refused.

use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::bencode::{self, Item};
use crate::ids::InfoHash;
use crate::layout::Layout;

/// Largest `.torrent` file [`Metainfo::load`] reads.
pub const MAX_TORRENT_FILE: u64 = 64 * 1024 * 1024;

/// Largest piece length accepted: the downloader holds whole pieces in memory.
pub const MAX_PIECE_LENGTH: u64 = 256 * 1024 * 1024;

/// A parsed and validated `.torrent` file.
#[derive(Debug, Clone)]
pub struct Metainfo {
    /// SHA-1 of the `info` value's bytes exactly as they stand in the file.
    pub info_hash: InfoHash,
    /// The raw bencoded `info` dictionary (served to peers by BEP 9 metadata exchange).
    pub info_bytes: Vec<u8>,
    pub announce: Option<String>,
    /// BEP 12 tiers, as listed in the file (not shuffled).
    pub announce_list: Vec<Vec<String>>,
    pub creation_date: Option<i64>,
    pub comment: Option<String>,
    pub created_by: Option<String>,
    pub info: Info,
}

/// The `info` dictionary.
#[derive(Debug, Clone)]
pub struct Info {
    pub name: String,
    pub piece_length: u64,
    pub piece_hashes: Vec<[u8; 20]>,
    /// One entry for a single-file torrent (path = `[name]`), else the `files` list.
    pub files: Vec<FileInfo>,
    /// True when the torrent had a `files` list (content goes under a directory `name`).
    pub multi_file: bool,
    /// BEP 27 private flag.
    pub private: bool,
}

/// One file of the torrent, with its validated path components.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileInfo {
    pub path: Vec<String>,
    pub length: u64,
    /// BEP 47 padding file (`attr` contains `p`): zeros that only align the next file to a
    /// piece boundary (hybrid torrents have them). Its bytes count in the piece layout, but
    /// storage need not write it to disk.
    pub padding: bool,
}

/// Why a torrent file was refused; the message names the field at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetainfoError(pub String);

impl std::fmt::Display for MetainfoError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for MetainfoError {}

fn err<T>(msg: impl Into<String>) -> Result<T, MetainfoError> {
    Err(MetainfoError(msg.into()))
}

fn wrong_type<T>(field: &str, want: &str, got: &Item) -> Result<T, MetainfoError> {
    err(format!("{field}: expected {want}, found {}", got.kind()))
}

impl Metainfo {
    /// Reads and parses a `.torrent` file of at most [`MAX_TORRENT_FILE`] bytes.
    pub fn load(path: &Path) -> Result<Metainfo, MetainfoError> {
        let shown = path.display();
        let file = std::fs::File::open(path).map_err(|e| MetainfoError(format!("{shown}: {e}")))?;
        let mut bytes = Vec::new();
        file.take(MAX_TORRENT_FILE + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| MetainfoError(format!("{shown}: {e}")))?;
        if bytes.len() as u64 > MAX_TORRENT_FILE {
            return err(format!(
                "{shown}: larger than {} MiB, not a torrent file",
                MAX_TORRENT_FILE >> 20
            ));
        }
        Metainfo::from_bytes(&bytes).map_err(|e| MetainfoError(format!("{shown}: {e}")))
    }

    /// Parses and validates a whole `.torrent` file.
    pub fn from_bytes(bytes: &[u8]) -> Result<Metainfo, MetainfoError> {
        // Lenient: bytes after the top-level dictionary (seen in the wild) are ignored.
        let (root, _end) =
            bencode::decode_prefix(bytes).map_err(|e| MetainfoError(format!("torrent: {e}")))?;
        if root.as_dict().is_none() {
            return wrong_type("torrent", "a dictionary", &root);
        }
        let info_item = match root.get("info") {
            Some(i) if i.as_dict().is_some() => i,
            Some(i) => return wrong_type("info", "a dictionary", i),
            None => return err("info: missing"),
        };
        let info = parse_info(info_item)?;

        let announce = match root.get("announce") {
            None => None,
            Some(a) => Some(text(a, "announce")?),
        };
        let announce_list = match root.get("announce-list") {
            None => Vec::new(),
            Some(list) => parse_tiers(list)?,
        };
        // Informational fields: a wrong type is ignored rather than refusing the torrent.
        let creation_date = root.get("creation date").and_then(Item::as_int);
        let comment = root.get("comment").and_then(lossy);
        let created_by = root.get("created by").and_then(lossy);

        Ok(Metainfo {
            info_hash: InfoHash(sha1_smol::Sha1::from(info_item.raw).digest().bytes()),
            info_bytes: info_item.raw.to_vec(),
            announce,
            announce_list,
            creation_date,
            comment,
            created_by,
            info,
        })
    }

    /// Trackers by tier: `announce-list` when present, else `[[announce]]`.
    pub fn tracker_tiers(&self) -> Vec<Vec<String>> {
        if !self.announce_list.is_empty() {
            return self.announce_list.clone();
        }
        self.announce.iter().map(|a| vec![a.clone()]).collect()
    }

    pub fn total_length(&self) -> u64 {
        self.info.files.iter().map(|f| f.length).sum()
    }

    pub fn num_pieces(&self) -> u32 {
        self.info.piece_hashes.len() as u32
    }

    /// Relative path of every file below the output directory: `name` alone for a single-file
    /// torrent, `name/<path...>` for a multi-file one.
    pub fn file_paths(&self) -> Vec<PathBuf> {
        self.info
            .files
            .iter()
            .map(|f| {
                if self.info.multi_file {
                    let mut p = PathBuf::from(&self.info.name);
                    p.extend(&f.path);
                    p
                } else {
                    PathBuf::from(&self.info.name)
                }
            })
            .collect()
    }

    /// The piece/file arithmetic for this torrent.
    pub fn layout(&self) -> Layout {
        let files = self
            .file_paths()
            .into_iter()
            .zip(&self.info.files)
            .map(|(p, f)| (p, f.length))
            .collect();
        // from_bytes checked piece length, total size and piece count, so this cannot fail.
        Layout::new(self.info.piece_length, files)
            .expect("metainfo validated piece length and total size")
            .with_padding(self.info.files.iter().map(|f| f.padding))
    }
}

/// A string field; bytes that are not UTF-8 are replaced (the torrent stays usable).
fn lossy(item: &Item) -> Option<String> {
    item.as_bytes()
        .map(|b| String::from_utf8_lossy(b).into_owned())
}

fn text(item: &Item, field: &str) -> Result<String, MetainfoError> {
    match lossy(item) {
        Some(s) => Ok(s),
        None => wrong_type(field, "a byte string", item),
    }
}

/// BEP 12 `announce-list`: a list of tiers, each a list of URLs. Empty tiers are dropped.
fn parse_tiers(list: &Item) -> Result<Vec<Vec<String>>, MetainfoError> {
    let Some(tiers) = list.as_list() else {
        return wrong_type("announce-list", "a list of tiers", list);
    };
    let mut out = Vec::new();
    for (t, tier) in tiers.iter().enumerate() {
        let Some(urls) = tier.as_list() else {
            return wrong_type(&format!("announce-list[{t}]"), "a list of URLs", tier);
        };
        let mut urls_out = Vec::new();
        for (u, url) in urls.iter().enumerate() {
            urls_out.push(text(url, &format!("announce-list[{t}][{u}]"))?);
        }
        if !urls_out.is_empty() {
            out.push(urls_out);
        }
    }
    Ok(out)
}

fn non_negative(item: Option<&Item>, field: &str) -> Result<u64, MetainfoError> {
    match item {
        None => err(format!("{field}: missing")),
        Some(i) => match i.as_int() {
            Some(n) if n >= 0 => Ok(n as u64),
            Some(n) => err(format!("{field}: must not be negative, found {n}")),
            None => wrong_type(field, "an integer", i),
        },
    }
}

/// `key.utf-8` when present and valid UTF-8 (some clients write it next to `key`), else `key`.
fn utf8_variant<'i, 'a>(dict: &'i Item<'a>, key: &str) -> Option<&'i Item<'a>> {
    let alt = dict.get(&format!("{key}.utf-8"));
    alt.filter(|a| a.as_str().is_some() || a.as_list().is_some())
        .or_else(|| dict.get(key))
}

fn parse_info(info: &Item) -> Result<Info, MetainfoError> {
    // BEP 52: `meta version` 2 without v1 `pieces` is a v2-only torrent.
    let v2 = info.get("meta version").and_then(Item::as_int) == Some(2);
    let pieces = info.get("pieces");
    if pieces.is_none() && (v2 || info.get("file tree").is_some()) {
        return err(
            "info: v2-only torrents (BEP 52) are not supported; only v1 and hybrid v1+v2 are",
        );
    }

    let name_item =
        utf8_variant(info, "name").ok_or_else(|| MetainfoError("info.name: missing".into()))?;
    let name = text(name_item, "info.name")?;
    check_component(&name, "info.name")?;

    let piece_length = non_negative(info.get("piece length"), "info.piece length")?;
    if piece_length == 0 {
        return err("info.piece length: must be positive");
    }
    if piece_length > MAX_PIECE_LENGTH {
        return err(format!(
            "info.piece length: {piece_length} is larger than the supported {} MiB",
            MAX_PIECE_LENGTH >> 20
        ));
    }

    let pieces = match pieces {
        None => return err("info.pieces: missing"),
        Some(p) => match p.as_bytes() {
            Some(b) => b,
            None => return wrong_type("info.pieces", "a byte string", p),
        },
    };
    if pieces.len() % 20 != 0 {
        return err(format!(
            "info.pieces: length {} is not a multiple of 20",
            pieces.len()
        ));
    }
    let piece_hashes: Vec<[u8; 20]> = pieces
        .chunks_exact(20)
        .map(|c| {
            let mut h = [0u8; 20];
            h.copy_from_slice(c);
            h
        })
        .collect();

    let private = match info.get("private") {
        None => false,
        Some(p) => match p.as_int() {
            Some(v) => v == 1,
            None => return wrong_type("info.private", "an integer", p),
        },
    };

    let (files, multi_file) = match (info.get("length"), info.get("files")) {
        (Some(_), Some(_)) => return err("info: has both length and files"),
        (None, None) => return err("info: has neither length nor files"),
        (Some(len), None) => {
            let length = non_negative(Some(len), "info.length")?;
            let file = FileInfo {
                path: vec![name.clone()],
                length,
                padding: false,
            };
            (vec![file], false)
        }
        (None, Some(list)) => (parse_files(list)?, true),
    };

    let mut total: u64 = 0;
    for f in &files {
        total = total
            .checked_add(f.length)
            .ok_or_else(|| MetainfoError("info.files: total length overflows".into()))?;
    }
    let expected = total.div_ceil(piece_length);
    if piece_hashes.len() as u64 != expected {
        return err(format!(
            "info.pieces: {} hashes, but {total} bytes in pieces of {piece_length} need {expected}",
            piece_hashes.len()
        ));
    }

    Ok(Info {
        name,
        piece_length,
        piece_hashes,
        files,
        multi_file,
        private,
    })
}

fn parse_files(list: &Item) -> Result<Vec<FileInfo>, MetainfoError> {
    let Some(entries) = list.as_list() else {
        return wrong_type("info.files", "a list", list);
    };
    if entries.is_empty() {
        return err("info.files: empty list, a torrent needs at least one file");
    }
    let mut files = Vec::with_capacity(entries.len());
    for (i, entry) in entries.iter().enumerate() {
        let field = format!("info.files[{i}]");
        if entry.as_dict().is_none() {
            return wrong_type(&field, "a dictionary", entry);
        }
        let length = non_negative(entry.get("length"), &format!("{field}.length"))?;
        let path_field = format!("{field}.path");
        let path_item = utf8_variant(entry, "path")
            .ok_or_else(|| MetainfoError(format!("{path_field}: missing")))?;
        let Some(parts) = path_item.as_list() else {
            return wrong_type(&path_field, "a list of path components", path_item);
        };
        if parts.is_empty() {
            return err(format!("{path_field}: empty path"));
        }
        let mut path = Vec::with_capacity(parts.len());
        for part in parts {
            let c = text(part, &path_field)?;
            check_component(&c, &path_field)?;
            path.push(c);
        }
        let padding = entry
            .get("attr")
            .and_then(Item::as_bytes)
            .is_some_and(|a| a.contains(&b'p'));
        files.push(FileInfo {
            path,
            length,
            padding,
        });
    }
    check_unique(&files)?;
    Ok(files)
}

/// No two files share a path, and no file's path is a directory of another file.
/// BEP 47 padding files may repeat (`.pad/16384` several times) since they are never written.
fn check_unique(files: &[FileInfo]) -> Result<(), MetainfoError> {
    let mut seen: BTreeSet<(&[String], bool)> = BTreeSet::new();
    let mut dirs: BTreeSet<&[String]> = BTreeSet::new();
    for (i, f) in files.iter().enumerate() {
        let p = f.path.as_slice();
        let clash = seen.contains(&(p, false)) || (!f.padding && seen.contains(&(p, true)));
        if clash || dirs.contains(p) {
            return err(format!(
                "info.files[{i}].path: {} is used by another file",
                f.path.join("/")
            ));
        }
        for n in 1..p.len() {
            if seen.contains(&(&p[..n], false)) || seen.contains(&(&p[..n], true)) {
                return err(format!(
                    "info.files[{i}].path: {} lies inside {}, which is a file",
                    f.path.join("/"),
                    p[..n].join("/")
                ));
            }
            dirs.insert(&p[..n]);
        }
        seen.insert((p, f.padding));
    }
    Ok(())
}

/// One path component that is safe to join below the output directory.
pub fn check_component(c: &str, field: &str) -> Result<(), MetainfoError> {
    let bad = |why: &str| err(format!("{field}: unsafe path component {c:?}: {why}"));
    if c.is_empty() {
        return bad("empty");
    }
    if c == "." || c == ".." {
        return bad("relative directory reference");
    }
    if c.contains('/') || c.contains('\\') {
        return bad("contains a path separator");
    }
    if c.contains('\0') {
        return bad("contains NUL");
    }
    let b = c.as_bytes();
    if b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b':' {
        return bad("looks like a drive prefix");
    }
    if cfg!(windows) && is_windows_device(c) {
        return bad("is a Windows device name");
    }
    Ok(())
}

/// CON, PRN, AUX, NUL, COM1-9, LPT1-9, with or without an extension (only refused on Windows,
/// where opening them reaches a device instead of a file).
fn is_windows_device(c: &str) -> bool {
    let stem = c.split('.').next().unwrap_or("").to_ascii_uppercase();
    matches!(stem.as_str(), "CON" | "PRN" | "AUX" | "NUL")
        || ((stem.starts_with("COM") || stem.starts_with("LPT"))
            && stem.len() == 4
            && matches!(stem.as_bytes()[3], b'1'..=b'9'))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A hand-written torrent; `info` is inserted verbatim.
    fn torrent(info: &str) -> Vec<u8> {
        format!("d8:announce19:http://t.example/an4:info{info}e").into_bytes()
    }

    fn pieces(n: usize) -> String {
        format!("{}:{}", n * 20, "x".repeat(n * 20))
    }

    fn single(name: &str, length: i64, piece_length: i64, n: usize) -> Vec<u8> {
        torrent(&format!(
            "d6:lengthi{length}e4:name{}:{name}12:piece lengthi{piece_length}e6:pieces{}e",
            name.len(),
            pieces(n)
        ))
    }

    fn multi(paths: &[&[&str]], lengths: &[i64], n: usize) -> Vec<u8> {
        let mut files = String::from("l");
        for (p, len) in paths.iter().zip(lengths) {
            let comps: String = p.iter().map(|c| format!("{}:{c}", c.len())).collect();
            files += &format!("d6:lengthi{len}e4:pathl{comps}ee");
        }
        files += "e";
        torrent(&format!(
            "d5:files{files}4:name3:dir12:piece lengthi16384e6:pieces{}e",
            pieces(n)
        ))
    }

    fn error(bytes: &[u8]) -> String {
        Metainfo::from_bytes(bytes).unwrap_err().0
    }

    #[test]
    fn single_file_parses_and_lays_out() {
        let m = Metainfo::from_bytes(&single("a.bin", 40000, 16384, 3)).unwrap();
        assert_eq!(m.info.name, "a.bin");
        assert!(!m.info.multi_file);
        assert_eq!(m.total_length(), 40000);
        assert_eq!(m.announce.as_deref(), Some("http://t.example/an"));
        assert_eq!(m.tracker_tiers(), vec![vec!["http://t.example/an"]]);
        let l = m.layout();
        assert_eq!(l.num_pieces(), 3);
        assert_eq!(l.files()[0].path, PathBuf::from("a.bin"));
        // the info hash is over the raw info bytes
        let raw = &m.info_bytes;
        assert_eq!(
            m.info_hash.0,
            sha1_smol::Sha1::from(&raw[..]).digest().bytes()
        );
        assert!(single("a.bin", 40000, 16384, 3)
            .windows(raw.len())
            .any(|w| w == &raw[..]));
    }

    #[test]
    fn multi_file_paths_go_under_name() {
        let m = Metainfo::from_bytes(&multi(&[&["a"], &["sub", "b"]], &[0, 20000], 2)).unwrap();
        assert!(m.info.multi_file);
        let l = m.layout();
        assert_eq!(l.files()[0].path, PathBuf::from("dir/a"));
        assert_eq!(l.files()[1].path, PathBuf::from("dir/sub/b"));
        assert_eq!(l.files()[1].offset, 0);
    }

    #[test]
    fn tiers_and_optional_fields() {
        let info = format!(
            "d6:lengthi1e4:name1:a12:piece lengthi16384e6:pieces{}7:privatei1ee",
            pieces(1)
        );
        let bytes = format!(
            "d8:announce3:t/113:announce-listll3:t/13:t/2elel3:t/3ee7:comment2:hi10:created by3:me!13:creation datei1700000000e4:info{info}e"
        );
        let m = Metainfo::from_bytes(bytes.as_bytes()).unwrap();
        assert_eq!(m.announce_list, vec![vec!["t/1", "t/2"], vec!["t/3"]]);
        assert_eq!(m.tracker_tiers(), m.announce_list);
        assert_eq!(m.comment.as_deref(), Some("hi"));
        assert_eq!(m.created_by.as_deref(), Some("me!"));
        assert_eq!(m.creation_date, Some(1_700_000_000));
        assert!(m.info.private);
    }

    #[test]
    fn validation_errors_name_the_field() {
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (b"i1e".to_vec(), "torrent"),
            (b"d8:announce1:xe".to_vec(), "info: missing"),
            (b"d4:infoi1ee".to_vec(), "info: expected a dictionary"),
            (single("a", 40000, 16384, 2), "info.pieces"),
            (single("a", 40000, 0, 0), "info.piece length"),
            (single("a", 40000, -5, 0), "info.piece length"),
            (single("a", -1, 16384, 0), "info.length"),
            (single("..", 1, 16384, 1), "info.name"),
            (single("a/b", 1, 16384, 1), "info.name"),
            (single("C:x", 1, 16384, 1), "info.name"),
            (
                torrent("d6:lengthi1e4:name1:a12:piece lengthi16384e6:pieces3:abce"),
                "multiple of 20",
            ),
            (multi(&[], &[], 0), "info.files: empty"),
            (multi(&[&["..", "etc"]], &[1], 1), "info.files[0].path"),
            (multi(&[&["", "etc"]], &[1], 1), "info.files[0].path"),
            (multi(&[&["/etc"]], &[1], 1), "info.files[0].path"),
            (multi(&[&["a\\..\\b"]], &[1], 1), "info.files[0].path"),
            (
                multi(&[&["ok"], &["a", "."]], &[1, 1], 1),
                "info.files[1].path",
            ),
            (multi(&[&["a"], &["a"]], &[1, 1], 1), "info.files[1].path"),
            (
                multi(&[&["a"], &["a", "b"]], &[1, 1], 1),
                "info.files[1].path",
            ),
            (
                multi(&[&["a", "b"], &["a"]], &[1, 1], 1),
                "info.files[1].path",
            ),
            (multi(&[&["a"]], &[-1], 0), "info.files[0].length"),
            (
                torrent(&format!(
                    "d5:filesle6:lengthi1e4:name1:a12:piece lengthi16384e6:pieces{}e",
                    pieces(1)
                )),
                "both length and files",
            ),
            (
                torrent("d4:name1:a12:meta versioni2e9:file treede12:piece lengthi16384ee"),
                "v2-only",
            ),
            (
                b"d8:announcei1e4:infod6:lengthi0e4:name1:a12:piece lengthi1e6:pieces0:ee".to_vec(),
                "announce",
            ),
        ];
        for (bytes, want) in cases {
            let e = error(&bytes);
            assert!(e.contains(want), "{e:?} should mention {want:?}");
        }
    }

    #[test]
    fn padding_files_may_repeat_but_real_files_may_not() {
        let info = format!(
            "d5:filesld6:lengthi1e4:pathl1:aeed4:attr1:p6:lengthi16383e4:pathl4:.pad5:16383eed6:lengthi1e4:pathl1:beed4:attr1:p6:lengthi16383e4:pathl4:.pad5:16383eed6:lengthi1e4:pathl1:ceee4:name1:d12:piece lengthi16384e6:pieces{}e",
            pieces(3)
        );
        let m = Metainfo::from_bytes(&torrent(&info)).unwrap();
        let pads: Vec<bool> = m.info.files.iter().map(|f| f.padding).collect();
        assert_eq!(pads, vec![false, true, false, true, false]);
        assert_eq!(m.layout().files()[2].offset, 16384);
    }

    #[test]
    fn trailing_bytes_after_the_torrent_are_ignored() {
        let mut bytes = single("a", 1, 16384, 1);
        let plain = Metainfo::from_bytes(&bytes).unwrap();
        bytes.extend_from_slice(b"\n\0garbage");
        assert_eq!(
            Metainfo::from_bytes(&bytes).unwrap().info_hash,
            plain.info_hash
        );
    }

    #[test]
    fn unsorted_keys_keep_their_raw_hash() {
        let info = format!(
            "d6:pieces{}4:name1:z12:piece lengthi16384e6:lengthi5ee",
            pieces(1)
        );
        let m = Metainfo::from_bytes(&torrent(&info)).unwrap();
        assert_eq!(m.info_bytes, info.as_bytes());
        assert_eq!(
            m.info_hash.0,
            sha1_smol::Sha1::from(info.as_bytes()).digest().bytes()
        );
    }

    #[test]
    fn windows_device_names() {
        assert!(is_windows_device("CON"));
        assert!(is_windows_device("nul.txt"));
        assert!(is_windows_device("com1"));
        assert!(!is_windows_device("console"));
        assert!(!is_windows_device("com0"));
    }

    #[test]
    fn utf8_variants_are_preferred() {
        // `name` is not UTF-8; `name.utf-8` is.
        let mut raw = b"d6:lengthi1e4:name3:\xff\xfe!10:name.utf-83:\xc3\xa9!12:piece lengthi16384e6:pieces20:".to_vec();
        raw.extend_from_slice(&[b'x'; 20]);
        raw.push(b'e');
        let mut bytes = b"d4:info".to_vec();
        bytes.extend_from_slice(&raw);
        bytes.push(b'e');
        let m = Metainfo::from_bytes(&bytes).unwrap();
        assert_eq!(m.info.name, "é!");
    }
}
