//! The verifier pool: SHA-1 of finished pieces, off the coordinator's thread.
//!
//! The coordinator sends each piece whose blocks have all arrived as a [`HashJob`] (the blocks in
//! their own buffers, never copied into one). A worker hashes them in order, and only when the
//! digest matches the metainfo does it write the blocks to storage; either way it reports a
//! [`HashResult`]. Hashing runs on as many threads as the machine has cores, so SHA-1 (the
//! largest single cost of a download) never queues behind the coordinator's event loop.
//!
//! Workers end when the job channel disconnects.

use crate::bufpool::BlockPool;
use crate::sha1::Sha1;
use crate::storage::Storage;
use crossbeam_channel::{Receiver, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A complete piece to check and, if good, write.
pub struct HashJob {
    pub piece: u32,
    /// The piece's blocks in order; their lengths add up to the piece length.
    pub blocks: Vec<Vec<u8>>,
    pub expected: [u8; 20],
}

/// What became of a [`HashJob`].
#[derive(Debug)]
pub struct HashResult {
    pub piece: u32,
    pub outcome: HashOutcome,
    pub hash_time: Duration,
    pub write_time: Duration,
}

#[derive(Debug)]
pub enum HashOutcome {
    /// Matched and written to storage.
    Written,
    /// The digest did not match: nothing was written. The digest of each block lets the
    /// coordinator find, once the piece does verify, which peer sent the bad block.
    Mismatch { block_digests: Vec<[u8; 20]> },
    /// Matched, but storage refused the write (disk full, …).
    WriteFailed(String),
}

/// Starts `workers` verifier threads.
pub fn spawn_verifiers(
    workers: usize,
    storage: Arc<Storage>,
    pool: Arc<BlockPool>,
    jobs: Receiver<HashJob>,
    results: Sender<HashResult>,
) -> std::io::Result<()> {
    for i in 0..workers.max(1) {
        let (storage, jobs, results) = (storage.clone(), jobs.clone(), results.clone());
        let pool = pool.clone();
        std::thread::Builder::new()
            .name(format!("verify-{i}"))
            .stack_size(256 * 1024)
            .spawn(move || {
                for mut job in jobs {
                    let blocks = std::mem::take(&mut job.blocks);
                    let result = verify_and_write(&storage, &job.expected, job.piece, &blocks);
                    for block in blocks {
                        pool.give(block);
                    }
                    if results.send(result).is_err() {
                        break;
                    }
                }
            })?;
    }
    Ok(())
}

/// Hashes the blocks; writes them only if they match.
pub fn verify_and_write(
    storage: &Storage,
    expected: &[u8; 20],
    piece: u32,
    blocks: &[Vec<u8>],
) -> HashResult {
    let started = Instant::now();
    let mut hasher = Sha1::new();
    for block in blocks {
        hasher.update(block);
    }
    let matched = hasher.digest() == *expected;
    let hash_time = started.elapsed();
    let mut outcome = HashOutcome::Written;
    if !matched {
        outcome = HashOutcome::Mismatch {
            block_digests: blocks.iter().map(|b| crate::sha1::sha1(b)).collect(),
        };
    } else {
        let mut begin = 0u32;
        for block in blocks {
            if let Err(e) = storage.write(piece, begin, block) {
                outcome = HashOutcome::WriteFailed(e.to_string());
                break;
            }
            begin += block.len() as u32;
        }
    }
    HashResult {
        piece,
        outcome,
        hash_time,
        write_time: started.elapsed() - hash_time,
    }
}

/// Hashes one piece as it stands on disk (resume and `seed` checks).
pub fn piece_on_disk_matches(
    storage: &Storage,
    piece: u32,
    expected: &[u8; 20],
    buf: &mut Vec<u8>,
) -> bool {
    let len = storage.layout().piece_len(piece) as usize;
    buf.resize(len, 0);
    if storage.read(piece, 0, buf).is_err() {
        return false;
    }
    crate::sha1::sha1(buf) == *expected
}
