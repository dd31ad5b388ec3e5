//! Resume state: which pieces were verified, and what the files looked like when we said so.
//!
//! Pure (no I/O): the [`ResumeState`] record, its bencoded form, and [`plan`], which decides on
//! start-up which recorded pieces can be trusted and which must be hashed again. Reading and
//! writing the state file is `resume_store`'s job; the session calls both.
//!
//! The file is one bencoded dictionary (BEP 3 bencode, keys sorted):
//!
//! ```text
//! d 4:boot <boot id, only when the data was not flushed>
//!   5:files l d 5:mtime i<ns since epoch, -1 = unknown> e 4:size i<bytes> e ... e
//!   9:info_hash 20:<SHA-1 of the info dict>
//!   6:pieces <verified pieces, BEP 3 bitfield bit order>
//!   7:version i1e e
//! ```
//!
//! A piece recorded as done is trusted only while every file it touches still has the recorded
//! size and modification time; anything else is hashed from disk. An mtime of -1 means "not
//! known to be stable" (a save taken while writes were still landing), which forces a check.
//!
//! Durability without a flush: where the kernel gives the machine a boot id, minibt does not
//! msync the data before recording it (the page cache holds it, the kernel writes it back, as
//! for any program that writes files). Only a machine crash can lose such data, and a crash
//! means a new boot id: a record whose `boot` differs from the running kernel's is not trusted
//! at all, every piece is hashed again. Records without `boot` were flushed first.

use crate::bitfield::Bitfield;
use crate::ids::InfoHash;
use crate::layout::Layout;

/// Format version written and accepted.
pub const VERSION: i64 = 2;

/// Size and modification time of one file of the torrent, as recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileStamp {
    pub size: u64,
    /// Nanoseconds since the Unix epoch; `None` when not known to be stable.
    pub mtime_ns: Option<i64>,
}

/// What a state file holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResumeState {
    pub info_hash: InfoHash,
    pub pieces: Bitfield,
    /// One per file of the torrent, in metainfo order.
    pub files: Vec<FileStamp>,
    /// Set when the pieces were recorded before their data was flushed: the boot id of the
    /// machine then (see the module doc).
    pub unflushed_boot: Option<String>,
}

/// Why a state file was not usable (the session then checks the data from scratch).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResumeError(pub String);

impl std::fmt::Display for ResumeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl ResumeState {
    /// The bencoded form (keys in sorted order, as BEP 3 wants).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + self.pieces.as_bytes().len() + 40 * self.files.len());
        out.push(b'd');
        if let Some(boot) = &self.unflushed_boot {
            out.extend_from_slice(format!("4:boot{}:{boot}", boot.len()).as_bytes());
        }
        out.extend_from_slice(b"5:filesl");
        for f in &self.files {
            let mtime = f.mtime_ns.unwrap_or(-1);
            out.extend_from_slice(format!("d5:mtimei{mtime}e4:sizei{}ee", f.size).as_bytes());
        }
        out.extend_from_slice(b"e9:info_hash20:");
        out.extend_from_slice(&self.info_hash.0);
        let bits = self.pieces.as_bytes();
        out.extend_from_slice(format!("6:pieces{}:", bits.len()).as_bytes());
        out.extend_from_slice(bits);
        out.extend_from_slice(format!("7:versioni{VERSION}ee").as_bytes());
        out
    }

    /// Parses a state file for a torrent of `num_pieces` pieces and `num_files` files.
    /// Anything malformed or for another shape of torrent is an error, never a panic.
    pub fn decode(
        bytes: &[u8],
        num_pieces: u32,
        num_files: usize,
    ) -> Result<ResumeState, ResumeError> {
        let bad = |why: &str| ResumeError(format!("unusable resume state: {why}"));
        let item = crate::bencode::decode(bytes).map_err(|e| bad(&e.to_string()))?;
        if item.get("version").and_then(|v| v.as_int()) != Some(VERSION) {
            return Err(bad("unknown version"));
        }
        let hash = item
            .get("info_hash")
            .and_then(|v| v.as_bytes())
            .filter(|b| b.len() == 20)
            .ok_or_else(|| bad("no info_hash"))?;
        let mut info_hash = [0u8; 20];
        info_hash.copy_from_slice(hash);
        let pieces = item
            .get("pieces")
            .and_then(|v| v.as_bytes())
            .ok_or_else(|| bad("no pieces"))?;
        let pieces = Bitfield::from_bytes(pieces, num_pieces).map_err(|e| bad(&e.to_string()))?;
        let list = item
            .get("files")
            .and_then(|v| v.as_list())
            .ok_or_else(|| bad("no files"))?;
        if list.len() != num_files {
            return Err(bad("file count differs from the torrent"));
        }
        let mut files = Vec::with_capacity(list.len());
        for f in list {
            let size = f
                .get("size")
                .and_then(|v| v.as_int())
                .filter(|&s| s >= 0)
                .ok_or_else(|| bad("file without size"))?;
            let mtime = f
                .get("mtime")
                .and_then(|v| v.as_int())
                .ok_or_else(|| bad("file without mtime"))?;
            files.push(FileStamp {
                size: size as u64,
                mtime_ns: (mtime >= 0).then_some(mtime),
            });
        }
        let unflushed_boot = match item.get("boot") {
            None => None,
            Some(v) => Some(
                v.as_bytes()
                    .and_then(|b| std::str::from_utf8(b).ok())
                    .ok_or_else(|| bad("boot id is not text"))?
                    .to_string(),
            ),
        };
        Ok(ResumeState {
            info_hash: InfoHash(info_hash),
            pieces,
            files,
            unflushed_boot,
        })
    }
}

/// What to do with each piece at start-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResumePlan {
    /// Pieces taken as verified without hashing.
    pub trusted: Bitfield,
    /// Pieces to hash from disk (good ones are kept, the rest downloaded).
    pub to_check: Vec<u32>,
}

/// Decides from a recorded state (if any) and the files as they are now what to trust.
///
/// * no usable state, another torrent's state, `recheck`, or a state recorded unflushed under
///   another boot (`boot_id` is the running kernel's, if known): hash every piece;
/// * otherwise a piece is trusted when it is recorded as done and every file it touches has
///   the recorded size and a known, unchanged mtime; a piece touching a changed file is hashed
///   (done or not: a crash may have left verified data the record never saw); a piece in
///   unchanged files that is not recorded is simply downloaded.
pub fn plan(
    layout: &Layout,
    info_hash: InfoHash,
    recorded: Option<&ResumeState>,
    now: &[FileStamp],
    recheck: bool,
    boot_id: Option<&str>,
) -> ResumePlan {
    let n = layout.num_pieces();
    let all = || ResumePlan {
        trusted: Bitfield::new(n),
        to_check: (0..n).collect(),
    };
    let Some(state) = recorded else {
        return all();
    };
    if recheck
        || state.info_hash != info_hash
        || state.pieces.len() != n
        || state.files.len() != now.len()
        || state
            .unflushed_boot
            .as_deref()
            .is_some_and(|then| boot_id != Some(then))
    {
        return all();
    }
    let unchanged: Vec<bool> = state
        .files
        .iter()
        .zip(now)
        .map(|(then, now)| {
            then.size == now.size && then.mtime_ns.is_some() && then.mtime_ns == now.mtime_ns
        })
        .collect();
    let mut trusted = Bitfield::new(n);
    let mut to_check = Vec::new();
    for piece in 0..n {
        let stable = layout
            .spans(piece, 0, layout.piece_len(piece))
            .iter()
            .all(|s| unchanged[s.file]);
        if !stable {
            to_check.push(piece);
        } else if state.pieces.has(piece) {
            trusted.set(piece);
        }
    }
    ResumePlan { trusted, to_check }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn layout() -> Layout {
        // Pieces of 16: piece 0 in a, piece 1 spans a and b, pieces 2-3 in b.
        Layout::new(16, vec![(PathBuf::from("a"), 20), (PathBuf::from("b"), 40)]).unwrap()
    }

    fn state(done: &[u32], files: Vec<FileStamp>) -> ResumeState {
        let mut pieces = Bitfield::new(4);
        for &p in done {
            pieces.set(p);
        }
        ResumeState {
            info_hash: InfoHash([7; 20]),
            pieces,
            files,
            unflushed_boot: None,
        }
    }

    fn stamp(size: u64, mtime: i64) -> FileStamp {
        FileStamp {
            size,
            mtime_ns: Some(mtime),
        }
    }

    #[test]
    fn round_trips_and_rejects_garbage() {
        let s = state(
            &[0, 3],
            vec![
                stamp(20, 5),
                FileStamp {
                    size: 40,
                    mtime_ns: None,
                },
            ],
        );
        let bytes = s.encode();
        assert_eq!(ResumeState::decode(&bytes, 4, 2).unwrap(), s);
        assert!(ResumeState::decode(&bytes, 5, 2).is_ok()); // 4 and 5 pieces share one byte
        assert!(ResumeState::decode(&bytes, 9, 2).is_err());
        assert!(ResumeState::decode(&bytes, 4, 3).is_err());
        for cut in 0..bytes.len() {
            assert!(ResumeState::decode(&bytes[..cut], 4, 2).is_err());
        }
        assert!(ResumeState::decode(b"de", 4, 2).is_err());

        let unflushed = ResumeState {
            unflushed_boot: Some("0b7c-boot".into()),
            ..s
        };
        let bytes = unflushed.encode();
        assert!(bytes.starts_with(b"d4:boot9:0b7c-boot5:files"));
        assert_eq!(ResumeState::decode(&bytes, 4, 2).unwrap(), unflushed);
    }

    #[test]
    fn an_unflushed_record_is_trusted_only_in_the_boot_that_wrote_it() {
        let l = layout();
        let now = vec![stamp(20, 5), stamp(40, 9)];
        let s = ResumeState {
            unflushed_boot: Some("boot-a".into()),
            ..state(&[0, 2], now.clone())
        };
        let same = plan(&l, InfoHash([7; 20]), Some(&s), &now, false, Some("boot-a"));
        assert_eq!(same.trusted.iter_set().collect::<Vec<_>>(), vec![0, 2]);
        assert!(same.to_check.is_empty());
        // After a reboot (or where the boot id cannot be read) the page cache may have lost
        // the data: everything is hashed.
        for boot in [Some("boot-b"), None] {
            let p = plan(&l, InfoHash([7; 20]), Some(&s), &now, false, boot);
            assert_eq!(p.trusted.count(), 0);
            assert_eq!(p.to_check, vec![0, 1, 2, 3]);
        }
        // A flushed record does not depend on the boot.
        let flushed = state(&[0, 2], now.clone());
        let p = plan(
            &l,
            InfoHash([7; 20]),
            Some(&flushed),
            &now,
            false,
            Some("boot-b"),
        );
        assert_eq!(p.trusted.count(), 2);
    }

    #[test]
    fn trusts_only_pieces_in_unchanged_files() {
        let l = layout();
        let now = vec![stamp(20, 5), stamp(40, 9)];
        let s = state(&[0, 1, 2], vec![stamp(20, 5), stamp(40, 8)]);
        let p = plan(&l, InfoHash([7; 20]), Some(&s), &now, false, None);
        assert_eq!(p.trusted.iter_set().collect::<Vec<_>>(), vec![0]);
        assert_eq!(p.to_check, vec![1, 2, 3]);

        let s = state(&[0, 2], now.clone());
        let p = plan(&l, InfoHash([7; 20]), Some(&s), &now, false, None);
        assert_eq!(p.trusted.iter_set().collect::<Vec<_>>(), vec![0, 2]);
        assert!(p.to_check.is_empty());

        // --recheck, another torrent, unknown mtime, no state: check everything.
        for p in [
            plan(&l, InfoHash([7; 20]), Some(&s), &now, true, None),
            plan(&l, InfoHash([8; 20]), Some(&s), &now, false, None),
            plan(&l, InfoHash([7; 20]), None, &now, false, None),
        ] {
            assert_eq!(p.trusted.count(), 0);
            assert_eq!(p.to_check, vec![0, 1, 2, 3]);
        }
        let unknown = FileStamp {
            size: 20,
            mtime_ns: None,
        };
        let s = state(&[0, 2], vec![unknown, stamp(40, 9)]);
        let p = plan(&l, InfoHash([7; 20]), Some(&s), &now, false, None);
        assert_eq!(p.trusted.iter_set().collect::<Vec<_>>(), vec![2]);
        assert_eq!(p.to_check, vec![0, 1]);
    }
}
