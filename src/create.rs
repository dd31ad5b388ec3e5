//! `minibt create`: makes a v1 `.torrent` (BEP 3, BEP 12 trackers, BEP 27 private flag) from a
//! file or a directory.
//!
//! Called by the CLI and by tests/demo through [`create_torrent`]. Files are walked in sorted
//! byte order of their path components (deterministic), pieces are hashed with SHA-1 across file
//! boundaries using [`Layout`] spans, and the metainfo is encoded with `bendy` (sorted keys).
//! Trackers: the first is `announce`; with several, `announce-list` holds one tier per tracker
//! in the order given (BEP 12: tiers are tried in order, so they act as fallbacks).
//!
//! Symlinks to files inside the source directory are followed; a symlink that points outside it
//! or at a directory is refused (no escaping, no loops). The result is parsed back with
//! [`Metainfo::from_bytes`] before it is returned, so `create` never writes a torrent that
//! minibt itself would refuse.

use std::fmt;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use bendy::encoding::{Encoder, Error as BendyError, SingleItemEncoder};

use crate::layout::Layout;
use crate::metainfo::{check_component, Metainfo, MAX_PIECE_LENGTH};

pub const MIN_AUTO_PIECE_LENGTH: u64 = 16 * 1024;
pub const MAX_AUTO_PIECE_LENGTH: u64 = 16 * 1024 * 1024;

/// What to put in the torrent.
#[derive(Debug, Clone)]
pub struct CreateOptions {
    /// A file (single-file torrent) or a directory (multi-file torrent named after it).
    pub path: PathBuf,
    /// Announce URLs; the first is `announce`, all of them form `announce-list` when > 1.
    pub trackers: Vec<String>,
    /// Power of two, at least 16 KiB; `None` picks one by size ([`auto_piece_length`]).
    pub piece_length: Option<u64>,
    pub private: bool,
    pub comment: Option<String>,
    /// Seconds since the Unix epoch; `None` leaves the field out (reproducible output).
    pub creation_date: Option<i64>,
}

impl CreateOptions {
    /// Options for `path` with no trackers, automatic piece length, and the current time.
    pub fn new(path: impl Into<PathBuf>) -> CreateOptions {
        CreateOptions {
            path: path.into(),
            trackers: Vec::new(),
            piece_length: None,
            private: false,
            comment: None,
            creation_date: Some(now_unix()),
        }
    }
}

/// Why a torrent could not be created.
#[derive(Debug)]
pub struct CreateError(pub String);

impl fmt::Display for CreateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CreateError {}

fn fail<T>(msg: impl Into<String>) -> Result<T, CreateError> {
    Err(CreateError(msg.into()))
}

/// Seconds since the Unix epoch (0 if the clock is before it).
pub fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// A power of two giving 1000–2000 pieces, clamped to 16 KiB ..= 16 MiB.
pub fn auto_piece_length(total: u64) -> u64 {
    (total / 2000)
        .max(1)
        .next_power_of_two()
        .clamp(MIN_AUTO_PIECE_LENGTH, MAX_AUTO_PIECE_LENGTH)
}

/// Checks a user-chosen piece length: a power of two from 16 KiB to the loader's maximum.
pub fn check_piece_length(n: u64) -> Result<(), CreateError> {
    if !n.is_power_of_two() || !(MIN_AUTO_PIECE_LENGTH..=MAX_PIECE_LENGTH).contains(&n) {
        return fail(format!(
            "piece length {n}: must be a power of two from 16 KiB to {} MiB",
            MAX_PIECE_LENGTH >> 20
        ));
    }
    Ok(())
}

/// One regular file to include: where it is on disk and its path components in the torrent.
struct Source {
    disk: PathBuf,
    components: Vec<String>,
    length: u64,
}

/// Builds the `.torrent` bytes for `opts`.
pub fn create_torrent(opts: &CreateOptions) -> Result<Vec<u8>, CreateError> {
    let shown = opts.path.display().to_string();
    let meta =
        std::fs::symlink_metadata(&opts.path).map_err(|e| CreateError(format!("{shown}: {e}")))?;
    let canonical = opts
        .path
        .canonicalize()
        .map_err(|e| CreateError(format!("{shown}: {e}")))?;
    let name = match canonical.file_name().and_then(|n| n.to_str()) {
        Some(n) => n.to_string(),
        None => return fail(format!("{shown}: has no usable UTF-8 file name")),
    };
    check_component(&name, "name").map_err(|e| CreateError(format!("{shown}: {e}")))?;

    let multi_file = canonical.is_dir();
    let sources = if multi_file {
        let mut out = Vec::new();
        walk(&canonical, &canonical, &mut Vec::new(), &mut out)?;
        if out.is_empty() {
            return fail(format!("{shown}: contains no files"));
        }
        out
    } else if meta.is_file() || canonical.is_file() {
        let length = std::fs::metadata(&canonical)
            .map_err(|e| CreateError(format!("{shown}: {e}")))?
            .len();
        vec![Source {
            disk: canonical.clone(),
            components: vec![name.clone()],
            length,
        }]
    } else {
        return fail(format!("{shown}: not a regular file or directory"));
    };

    let total: u64 = sources.iter().map(|s| s.length).sum();
    let piece_length = match opts.piece_length {
        Some(n) => {
            check_piece_length(n)?;
            n
        }
        None => auto_piece_length(total),
    };
    let layout = Layout::new(
        piece_length,
        sources.iter().map(|s| (s.disk.clone(), s.length)).collect(),
    )
    .map_err(CreateError)?;
    log::info!(
        "hashing {total} bytes in {} files, {} pieces of {piece_length}",
        sources.len(),
        layout.num_pieces()
    );
    let pieces = hash_pieces(&layout)?;

    let bytes = encode(opts, &name, multi_file, &sources, piece_length, &pieces)
        .map_err(|e| CreateError(format!("encoding the torrent: {e}")))?;
    // Never hand out a torrent our own loader would refuse.
    Metainfo::from_bytes(&bytes).map_err(|e| CreateError(format!("created torrent: {e}")))?;
    Ok(bytes)
}

/// Appends the regular files below `dir` in sorted order; `rel` is `dir`'s path below `root`.
fn walk(
    root: &Path,
    dir: &Path,
    rel: &mut Vec<String>,
    out: &mut Vec<Source>,
) -> Result<(), CreateError> {
    let shown = dir.display();
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| CreateError(format!("{shown}: {e}")))?
        .collect::<Result<_, _>>()
        .map_err(|e| CreateError(format!("{shown}: {e}")))?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let disk = entry.path();
        let shown = disk.display().to_string();
        let Some(name) = entry.file_name().to_str().map(str::to_string) else {
            return fail(format!("{shown}: file name is not valid UTF-8"));
        };
        check_component(&name, "path").map_err(|e| CreateError(format!("{shown}: {e}")))?;
        let kind = entry
            .file_type()
            .map_err(|e| CreateError(format!("{shown}: {e}")))?;
        rel.push(name);
        if kind.is_dir() {
            walk(root, &disk, rel, out)?;
        } else if kind.is_file() {
            let length = entry
                .metadata()
                .map_err(|e| CreateError(format!("{shown}: {e}")))?
                .len();
            out.push(Source {
                disk,
                components: rel.clone(),
                length,
            });
        } else if kind.is_symlink() {
            let target = disk
                .canonicalize()
                .map_err(|e| CreateError(format!("{shown}: broken symlink: {e}")))?;
            if !target.starts_with(root) {
                return fail(format!(
                    "{shown}: symlink points outside {}",
                    root.display()
                ));
            }
            if !target.is_file() {
                return fail(format!("{shown}: symlink to something other than a file"));
            }
            let length = std::fs::metadata(&target)
                .map_err(|e| CreateError(format!("{shown}: {e}")))?
                .len();
            out.push(Source {
                disk: target,
                components: rel.clone(),
                length,
            });
        } else {
            return fail(format!("{shown}: not a regular file or directory"));
        }
        rel.pop();
    }
    Ok(())
}

/// SHA-1 of every piece, reading each piece's file spans in order.
fn hash_pieces(layout: &Layout) -> Result<Vec<u8>, CreateError> {
    let mut out = Vec::with_capacity(layout.num_pieces() as usize * 20);
    let mut buf = vec![0u8; layout.max_piece_len() as usize];
    let mut open: Option<(usize, File)> = None;
    for piece in 0..layout.num_pieces() {
        let len = layout.piece_len(piece);
        for span in layout.spans(piece, 0, len) {
            let slot = &layout.files()[span.file];
            if open.as_ref().map(|(i, _)| *i) != Some(span.file) {
                let f = File::open(&slot.path)
                    .map_err(|e| CreateError(format!("{}: {e}", slot.path.display())))?;
                open = Some((span.file, f));
            }
            let Some((_, file)) = open.as_mut() else {
                unreachable!("file opened above")
            };
            let dest = &mut buf[span.buf_offset..span.buf_offset + span.len];
            file.seek(SeekFrom::Start(span.file_offset))
                .and_then(|_| file.read_exact(dest))
                .map_err(|e| {
                    CreateError(format!(
                        "{}: {e} (did the file change while hashing?)",
                        slot.path.display()
                    ))
                })?;
        }
        out.extend_from_slice(&sha1_smol::Sha1::from(&buf[..len as usize]).digest().bytes());
    }
    Ok(out)
}

fn encode(
    opts: &CreateOptions,
    name: &str,
    multi_file: bool,
    sources: &[Source],
    piece_length: u64,
    pieces: &[u8],
) -> Result<Vec<u8>, BendyError> {
    let created_by = concat!("minibt/", env!("CARGO_PKG_VERSION"));
    let mut e = Encoder::new().with_max_depth(8);
    // Keys must be emitted in sorted order (bendy checks).
    e.emit_dict(|mut d| {
        if let Some(first) = opts.trackers.first() {
            d.emit_pair(b"announce", first.as_str())?;
        }
        if opts.trackers.len() > 1 {
            d.emit_pair_with(b"announce-list", |e| {
                e.emit_list(|e| {
                    for t in &opts.trackers {
                        e.emit_list(|e| e.emit_str(t))?;
                    }
                    Ok(())
                })
            })?;
        }
        if let Some(c) = &opts.comment {
            d.emit_pair(b"comment", c.as_str())?;
        }
        d.emit_pair(b"created by", created_by)?;
        if let Some(date) = opts.creation_date {
            d.emit_pair(b"creation date", date)?;
        }
        d.emit_pair_with(b"info", |e| {
            encode_info(e, opts, name, multi_file, sources, piece_length, pieces)
        })
    })?;
    e.get_output()
}

fn encode_info(
    e: SingleItemEncoder,
    opts: &CreateOptions,
    name: &str,
    multi_file: bool,
    sources: &[Source],
    piece_length: u64,
    pieces: &[u8],
) -> Result<(), BendyError> {
    e.emit_dict(|mut d| {
        if multi_file {
            d.emit_pair_with(b"files", |e| {
                e.emit_list(|e| {
                    for s in sources {
                        e.emit_dict(|mut f| {
                            f.emit_pair(b"length", s.length)?;
                            f.emit_pair_with(b"path", |e| {
                                e.emit_list(|e| {
                                    for c in &s.components {
                                        e.emit_str(c)?;
                                    }
                                    Ok(())
                                })
                            })
                        })?;
                    }
                    Ok(())
                })
            })?;
        } else {
            d.emit_pair(b"length", sources[0].length)?;
        }
        d.emit_pair(b"name", name)?;
        d.emit_pair(b"piece length", piece_length)?;
        d.emit_pair_with(b"pieces", |e| e.emit_bytes(pieces))?;
        if opts.private {
            d.emit_pair(b"private", 1i64)?;
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("minibt-create-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn content(len: usize, seed: u8) -> Vec<u8> {
        (0..len)
            .map(|i| {
                (i as u8)
                    .wrapping_mul(31)
                    .wrapping_add(seed ^ (i >> 8) as u8)
            })
            .collect()
    }

    #[test]
    fn auto_piece_length_is_a_clamped_power_of_two() {
        assert_eq!(auto_piece_length(0), 16 * 1024);
        assert_eq!(auto_piece_length(5000), 16 * 1024);
        assert_eq!(auto_piece_length(1 << 30), 1 << 20);
        assert_eq!(auto_piece_length(1 << 50), 16 << 20);
        for total in [1u64 << 26, 3 << 28, 12_345_678_901] {
            let pl = auto_piece_length(total);
            assert!(pl.is_power_of_two());
            let n = total.div_ceil(pl);
            assert!((1000..=2000).contains(&n), "{total}: {n} pieces");
        }
        assert!(check_piece_length(16384).is_ok());
        assert!(check_piece_length(1000).is_err());
        assert!(check_piece_length(8192).is_err());
    }

    #[test]
    fn multi_file_hashes_across_boundaries_in_sorted_order() {
        let dir = scratch("multi");
        let root = dir.join("content");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        let b = content(20000, 1);
        let a = content(5, 2);
        let c = content(16384, 3);
        std::fs::write(root.join("b.bin"), &b).unwrap();
        std::fs::write(root.join("a.bin"), &a).unwrap();
        std::fs::write(root.join("empty"), b"").unwrap();
        std::fs::write(root.join("sub").join("c.bin"), &c).unwrap();

        let mut opts = CreateOptions::new(&root);
        opts.trackers = vec!["http://127.0.0.1:1/announce".into(), "udp://x:1".into()];
        opts.piece_length = Some(16384);
        opts.private = true;
        opts.comment = Some("hello".into());
        opts.creation_date = None;
        let bytes = create_torrent(&opts).unwrap();
        let m = Metainfo::from_bytes(&bytes).unwrap();
        assert_eq!(m.info.name, "content");
        let paths: Vec<String> = m.info.files.iter().map(|f| f.path.join("/")).collect();
        assert_eq!(paths, vec!["a.bin", "b.bin", "empty", "sub/c.bin"]);
        assert!(m.info.private);
        assert_eq!(m.comment.as_deref(), Some("hello"));
        assert_eq!(m.creation_date, None);
        assert_eq!(
            m.created_by.as_deref(),
            Some(concat!("minibt/", env!("CARGO_PKG_VERSION")))
        );
        assert_eq!(m.announce.as_deref(), Some("http://127.0.0.1:1/announce"));
        assert_eq!(
            m.announce_list,
            vec![vec!["http://127.0.0.1:1/announce"], vec!["udp://x:1"]]
        );
        // independent hashing of the concatenation
        let all = [a, b, c].concat();
        let want: Vec<[u8; 20]> = all
            .chunks(16384)
            .map(|p| sha1_smol::Sha1::from(p).digest().bytes())
            .collect();
        assert_eq!(m.info.piece_hashes, want);
        // deterministic without a date
        assert_eq!(create_torrent(&opts).unwrap(), bytes);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn single_file_and_symlink_rules() {
        let dir = scratch("single");
        let file = dir.join("one.bin");
        std::fs::write(&file, content(100, 9)).unwrap();
        let mut opts = CreateOptions::new(&file);
        opts.trackers = vec!["http://127.0.0.1:1/a".into()];
        let m = Metainfo::from_bytes(&create_torrent(&opts).unwrap()).unwrap();
        assert!(!m.info.multi_file);
        assert_eq!(m.total_length(), 100);
        assert!(m.announce_list.is_empty());
        assert!(m.creation_date.is_some());

        #[cfg(unix)]
        {
            let root = dir.join("tree");
            std::fs::create_dir_all(&root).unwrap();
            std::fs::write(root.join("real"), b"abc").unwrap();
            std::os::unix::fs::symlink(root.join("real"), root.join("link")).unwrap();
            let m =
                Metainfo::from_bytes(&create_torrent(&CreateOptions::new(&root)).unwrap()).unwrap();
            assert_eq!(m.total_length(), 6);
            std::os::unix::fs::symlink(&file, root.join("escape")).unwrap();
            let e = create_torrent(&CreateOptions::new(&root)).unwrap_err();
            assert!(e.0.contains("outside"), "{e}");
        }
        let empty = dir.join("empty");
        std::fs::create_dir_all(&empty).unwrap();
        assert!(create_torrent(&CreateOptions::new(&empty))
            .unwrap_err()
            .0
            .contains("no files"));
        assert!(create_torrent(&CreateOptions::new(dir.join("missing"))).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
