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
use crossbeam_channel::Sender;
use parking_lot::{Condvar, Mutex};
use std::collections::VecDeque;
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

/// The queue of pieces waiting for a verifier: bounded, first in first out.
///
/// Not a crossbeam channel, unlike every other link: a crossbeam receiver with nothing to read
/// spins and calls `sched_yield` a few times before it sleeps, and the verifiers wait like that
/// once per piece. On two cores shared with the peers' threads (and a local seeder) those
/// yields were about a sixth of a download's context switches; a condition variable just sleeps.
struct JobQueue {
    state: Mutex<QueueState>,
    /// Signalled when a job arrives or the queue closes.
    filled: Condvar,
    /// Signalled when a job leaves.
    drained: Condvar,
    capacity: usize,
}

struct QueueState {
    jobs: VecDeque<HashJob>,
    closed: bool,
    /// Verifier threads still running (each holds a [`WorkerGuard`]).
    workers: usize,
}

/// Held by each verifier thread; dropping it (the thread ends, even by a panic) counts the
/// worker out and wakes a sender waiting for room that no one is left to make.
struct WorkerGuard(Arc<JobQueue>);

impl WorkerGuard {
    fn new(queue: &Arc<JobQueue>) -> WorkerGuard {
        queue.state.lock().workers += 1;
        WorkerGuard(queue.clone())
    }
}

impl Drop for WorkerGuard {
    fn drop(&mut self) {
        self.0.state.lock().workers -= 1;
        self.0.drained.notify_all();
    }
}

/// The coordinator's end of the job queue. Dropping it closes the queue: the verifiers finish
/// what is queued and end.
pub struct JobSender(Arc<JobQueue>);

impl JobSender {
    /// Queues a job, waiting while the queue is full (this wait is where backpressure from
    /// busy verifiers reaches the coordinator, and through it the peers). Returns false, and
    /// drops the job, when the queue is full and no verifier is left to empty it.
    pub fn send(&self, job: HashJob) -> bool {
        let q = &self.0;
        let mut st = q.state.lock();
        while st.jobs.len() >= q.capacity {
            if st.workers == 0 {
                return false;
            }
            q.drained.wait(&mut st);
        }
        st.jobs.push_back(job);
        q.filled.notify_one();
        true
    }
}

impl Drop for JobSender {
    fn drop(&mut self) {
        self.0.state.lock().closed = true;
        self.0.filled.notify_all();
    }
}

impl JobQueue {
    fn new(capacity: usize) -> Arc<JobQueue> {
        Arc::new(JobQueue {
            state: Mutex::new(QueueState {
                jobs: VecDeque::new(),
                closed: false,
                workers: 0,
            }),
            filled: Condvar::new(),
            drained: Condvar::new(),
            capacity: capacity.max(1),
        })
    }

    /// The next job; `None` once the queue is closed and empty.
    fn next(&self) -> Option<HashJob> {
        let mut st = self.state.lock();
        loop {
            if let Some(job) = st.jobs.pop_front() {
                self.drained.notify_one();
                return Some(job);
            }
            if st.closed {
                return None;
            }
            self.filled.wait(&mut st);
        }
    }
}

/// Starts `workers` verifier threads fed through the returned sender, which holds at most
/// `capacity` jobs waiting. With no workers (a seed that starts complete never hashes), or
/// once every worker has ended, a send to a full queue drops the job instead of waiting.
pub fn spawn_verifiers(
    workers: usize,
    capacity: usize,
    storage: Arc<Storage>,
    pool: Arc<BlockPool>,
    results: Sender<HashResult>,
) -> std::io::Result<JobSender> {
    let queue = JobQueue::new(capacity);
    for i in 0..workers {
        let (storage, jobs, results) = (storage.clone(), queue.clone(), results.clone());
        let pool = pool.clone();
        // Counted before the spawn, so no send sees zero workers while one is starting; if
        // the spawn fails, the closure and this guard are dropped and the count goes back.
        let guard = WorkerGuard::new(&queue);
        std::thread::Builder::new()
            .name(format!("verify-{i}"))
            .stack_size(256 * 1024)
            .spawn(move || {
                let _guard = guard;
                while let Some(mut job) = jobs.next() {
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
    Ok(JobSender(queue))
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn queue(capacity: usize) -> (JobSender, Arc<JobQueue>) {
        let q = JobQueue::new(capacity);
        (JobSender(q.clone()), q)
    }

    fn job(piece: u32) -> HashJob {
        HashJob {
            piece,
            blocks: Vec::new(),
            expected: [0; 20],
        }
    }

    #[test]
    fn jobs_come_out_in_order_and_closing_ends_the_workers_after_the_queue() {
        let (tx, q) = queue(4);
        tx.send(job(1));
        tx.send(job(2));
        drop(tx);
        assert_eq!(q.next().map(|j| j.piece), Some(1));
        assert_eq!(q.next().map(|j| j.piece), Some(2));
        assert!(q.next().is_none());
    }

    #[test]
    fn a_full_queue_holds_the_sender_until_a_worker_takes_a_job() {
        let (tx, q) = queue(1);
        let _worker = WorkerGuard::new(&q);
        tx.send(job(1));
        let sender = std::thread::spawn(move || {
            tx.send(job(2)); // waits: the queue is full
        });
        std::thread::sleep(Duration::from_millis(50));
        assert!(!sender.is_finished(), "send did not wait for room");
        assert_eq!(q.next().map(|j| j.piece), Some(1));
        sender.join().unwrap();
        assert_eq!(q.next().map(|j| j.piece), Some(2));
        assert!(q.next().is_none(), "the sender was dropped: closed");
    }

    #[test]
    fn with_no_worker_left_a_full_queue_drops_the_job_instead_of_waiting() {
        let (tx, q) = queue(1);
        assert!(tx.send(job(1)), "room for one");
        assert!(!tx.send(job(2)), "full and no worker: must not wait");
        // A worker that ends while the sender waits for room wakes it.
        let guard = WorkerGuard::new(&q);
        let sender = std::thread::spawn(move || tx.send(job(3)));
        std::thread::sleep(Duration::from_millis(50));
        assert!(
            !sender.is_finished(),
            "a worker is alive: send waits for room"
        );
        drop(guard);
        assert!(!sender.join().unwrap());
        assert_eq!(q.next().map(|j| j.piece), Some(1));
    }

    #[test]
    fn a_waiting_worker_wakes_for_a_job_and_for_the_close() {
        let (tx, q) = queue(1);
        let worker = std::thread::spawn(move || {
            let mut seen = Vec::new();
            while let Some(j) = q.next() {
                seen.push(j.piece);
            }
            seen
        });
        std::thread::sleep(Duration::from_millis(20));
        tx.send(job(7));
        drop(tx);
        assert_eq!(worker.join().unwrap(), vec![7]);
    }
}
