//! Torrent metainfo (BEP 3, BEP 12, BEP 27): `.torrent` bytes → [`Metainfo`].
//!
//! TODO(foundation): parser, validation, info hash from the raw `info` bytes.

use crate::ids::InfoHash;
use crate::layout::Layout;

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
    /// One entry for a single-file torrent (path = [name]), else the `files` list.
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

impl Metainfo {
    /// Parses and validates a whole `.torrent` file.
    pub fn from_bytes(_bytes: &[u8]) -> Result<Metainfo, MetainfoError> {
        Err(MetainfoError("not implemented yet".into()))
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

    /// The piece/file arithmetic for this torrent.
    pub fn layout(&self) -> Layout {
        todo!("foundation")
    }
}
