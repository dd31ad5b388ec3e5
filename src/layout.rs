//! Piece, block and file arithmetic: the one place that maps (piece, offset) to file spans.
//!
//! A torrent's content is one logical byte string: the files of the torrent laid end to end in
//! the order of the metainfo (BEP 3). Pieces cut that string into `piece_length` chunks (the last
//! one may be short) and blocks cut pieces into 16 KiB requests. Storage, `create`, the picker
//! and the wire code all ask this module, so the arithmetic lives in one place.

use std::path::PathBuf;

/// The request size every client uses (BEP 3 recommends 2^14).
pub const BLOCK_LEN: u32 = 16 * 1024;

/// One file's place in the logical byte string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSlot {
    /// Relative path below the output directory (already validated as safe).
    pub path: PathBuf,
    pub length: u64,
    /// Offset of the file's first byte in the logical byte string.
    pub offset: u64,
    /// A BEP 47 padding file: all zeros, part of the piece layout but never stored on disk.
    pub padding: bool,
}

/// A contiguous run of bytes that lies inside one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileSpan {
    /// Index into [`Layout::files`].
    pub file: usize,
    /// Where the run starts inside that file.
    pub file_offset: u64,
    /// Where the run starts inside the caller's buffer (relative to the requested range).
    pub buf_offset: usize,
    pub len: usize,
}

/// The shape of a torrent's content.
#[derive(Debug, Clone)]
pub struct Layout {
    piece_length: u64,
    total_length: u64,
    num_pieces: u32,
    files: Vec<FileSlot>,
}

impl Layout {
    /// Builds a layout; `piece_length` must be positive and the piece count fit in a u32.
    pub fn new(piece_length: u64, files: Vec<(PathBuf, u64)>) -> Result<Layout, String> {
        if piece_length == 0 || piece_length > u32::MAX as u64 {
            return Err(format!("piece length {piece_length} is out of range"));
        }
        let mut offset = 0u64;
        let mut slots = Vec::with_capacity(files.len());
        for (path, length) in files {
            slots.push(FileSlot {
                path,
                length,
                offset,
                padding: false,
            });
            offset = offset
                .checked_add(length)
                .ok_or_else(|| "total length overflows".to_string())?;
        }
        let num_pieces = offset.div_ceil(piece_length);
        if num_pieces > u32::MAX as u64 {
            return Err(format!("{num_pieces} pieces is too many"));
        }
        Ok(Layout {
            piece_length,
            total_length: offset,
            num_pieces: num_pieces as u32,
            files: slots,
        })
    }

    /// Marks the files whose flag is set as BEP 47 padding files.
    pub fn with_padding(mut self, padding: impl IntoIterator<Item = bool>) -> Layout {
        for (slot, pad) in self.files.iter_mut().zip(padding) {
            slot.padding = pad;
        }
        self
    }

    pub fn piece_length(&self) -> u64 {
        self.piece_length
    }

    pub fn total_length(&self) -> u64 {
        self.total_length
    }

    pub fn num_pieces(&self) -> u32 {
        self.num_pieces
    }

    pub fn files(&self) -> &[FileSlot] {
        &self.files
    }

    /// Offset of the piece's first byte in the logical byte string.
    pub fn piece_offset(&self, piece: u32) -> u64 {
        piece as u64 * self.piece_length
    }

    /// Length of `piece` in bytes (the last piece may be short); 0 for an index out of range.
    pub fn piece_len(&self, piece: u32) -> u32 {
        if piece >= self.num_pieces {
            return 0;
        }
        let start = self.piece_offset(piece);
        (self.total_length - start).min(self.piece_length) as u32
    }

    /// The largest piece (what a piece buffer must hold).
    pub fn max_piece_len(&self) -> u32 {
        if self.num_pieces == 0 {
            0
        } else {
            self.piece_len(0)
        }
    }

    /// Number of 16 KiB blocks in `piece`.
    pub fn blocks_in_piece(&self, piece: u32) -> u32 {
        self.piece_len(piece).div_ceil(BLOCK_LEN)
    }

    /// Length of block `block` of `piece` (the last block of a piece may be short).
    pub fn block_len(&self, piece: u32, block: u32) -> u32 {
        let piece_len = self.piece_len(piece);
        let begin = block.saturating_mul(BLOCK_LEN);
        piece_len.saturating_sub(begin).min(BLOCK_LEN)
    }

    /// True when `[begin, begin+len)` lies inside `piece` and `len > 0`.
    pub fn range_in_piece(&self, piece: u32, begin: u32, len: u32) -> bool {
        let piece_len = self.piece_len(piece) as u64;
        len > 0 && (begin as u64 + len as u64) <= piece_len
    }

    /// The file spans covering `len` bytes at `begin` inside `piece`, in order.
    /// Zero-length files never appear. The caller checks the range with [`range_in_piece`].
    ///
    /// [`range_in_piece`]: Layout::range_in_piece
    pub fn spans(&self, piece: u32, begin: u32, len: u32) -> Vec<FileSpan> {
        let start = self.piece_offset(piece) + begin as u64;
        let end = (start + len as u64).min(self.total_length);
        let mut out = Vec::new();
        // First file whose end lies past `start`.
        let first = self.files.partition_point(|f| f.offset + f.length <= start);
        for (index, file) in self.files.iter().enumerate().skip(first) {
            if file.offset >= end {
                break;
            }
            if file.length == 0 {
                continue;
            }
            let lo = start.max(file.offset);
            let hi = end.min(file.offset + file.length);
            out.push(FileSpan {
                file: index,
                file_offset: lo - file.offset,
                buf_offset: (lo - start) as usize,
                len: (hi - lo) as usize,
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(piece: u64, sizes: &[u64]) -> Layout {
        let files = sizes
            .iter()
            .enumerate()
            .map(|(i, s)| (PathBuf::from(format!("f{i}")), *s))
            .collect();
        Layout::new(piece, files).unwrap()
    }

    #[test]
    fn short_last_piece_and_blocks() {
        let l = layout(32 * 1024, &[100_000]);
        assert_eq!(l.num_pieces(), 4);
        assert_eq!(l.piece_len(0), 32768);
        assert_eq!(l.piece_len(3), 100_000 - 3 * 32768);
        assert_eq!(l.piece_len(4), 0);
        assert_eq!(l.blocks_in_piece(3), 1);
        assert_eq!(l.block_len(3, 0), 1696);
        assert_eq!(l.block_len(0, 1), BLOCK_LEN);
        assert_eq!(l.block_len(0, 2), 0);
    }

    #[test]
    fn piece_crossing_several_files_with_empty_and_tiny_files() {
        // files: 10 bytes, 0 bytes, 3 bytes, 0 bytes, 40 bytes; piece length 16
        let l = layout(16, &[10, 0, 3, 0, 40]);
        assert_eq!(l.total_length(), 53);
        assert_eq!(l.num_pieces(), 4);
        let spans = l.spans(0, 0, 16);
        assert_eq!(
            spans,
            vec![
                FileSpan {
                    file: 0,
                    file_offset: 0,
                    buf_offset: 0,
                    len: 10
                },
                FileSpan {
                    file: 2,
                    file_offset: 0,
                    buf_offset: 10,
                    len: 3
                },
                FileSpan {
                    file: 4,
                    file_offset: 0,
                    buf_offset: 13,
                    len: 3
                },
            ]
        );
        // the short last piece: bytes 48..53 of the last file
        assert_eq!(l.piece_len(3), 5);
        assert_eq!(
            l.spans(3, 0, 5),
            vec![FileSpan {
                file: 4,
                file_offset: 35,
                buf_offset: 0,
                len: 5
            }]
        );
        // a range in the middle of a piece
        assert_eq!(
            l.spans(0, 9, 3),
            vec![
                FileSpan {
                    file: 0,
                    file_offset: 9,
                    buf_offset: 0,
                    len: 1
                },
                FileSpan {
                    file: 2,
                    file_offset: 0,
                    buf_offset: 1,
                    len: 2
                },
            ]
        );
    }

    #[test]
    fn spans_cover_every_byte_exactly_once() {
        let sizes = [0, 1, 16383, 16385, 0, 7, 100_000, 0];
        let l = layout(16384, &sizes);
        let mut covered = vec![0u8; l.total_length() as usize];
        for p in 0..l.num_pieces() {
            let mut at = 0;
            for s in l.spans(p, 0, l.piece_len(p)) {
                assert_eq!(s.buf_offset, at);
                at += s.len;
                let f = &l.files()[s.file];
                assert!(s.file_offset + s.len as u64 <= f.length);
                for b in 0..s.len as u64 {
                    covered[(f.offset + s.file_offset + b) as usize] += 1;
                }
            }
            assert_eq!(at, l.piece_len(p) as usize);
        }
        assert!(covered.iter().all(|&c| c == 1));
    }

    #[test]
    fn all_empty_files_have_no_pieces() {
        let l = layout(16384, &[0, 0]);
        assert_eq!(l.num_pieces(), 0);
        assert_eq!(l.max_piece_len(), 0);
    }

    #[test]
    fn range_checks() {
        let l = layout(16384, &[20000]);
        assert!(l.range_in_piece(1, 0, 3616));
        assert!(!l.range_in_piece(1, 0, 3617));
        assert!(!l.range_in_piece(0, 0, 0));
        assert!(!l.range_in_piece(2, 0, 1));
        assert!(!l.range_in_piece(0, u32::MAX, 2));
    }
}
