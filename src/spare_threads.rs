//! Spare threads: peer threads kept parked between connections.
//!
//! Every connection still runs on threads of its own (a reader and a writer), but a thread
//! whose connection has ended waits here for the next connection instead of exiting, like the
//! spare workers of a pre-forking web server, and a few are started before the first peer
//! arrives. Starting and ending a thread is not free: `clone3`, the signal stack Rust maps and
//! unmaps for each thread, and glibc returning the old stack's pages at exit, which fault back
//! in on the next thread — about 0.08 ms of CPU per thread on the benchmark VM, and a large
//! part of what an idle connection costs a seeder in a swarm of 200 on two cores.

use parking_lot::{Condvar, Mutex};
use std::io;
use std::sync::Arc;

type Job = Box<dyn FnOnce() + Send>;

/// Threads of one kind ("peer-r", "peer-w"), each running one job at a time.
pub struct SpareThreads {
    shared: Arc<Shared>,
}

struct Shared {
    name: String,
    stack_size: usize,
    /// More spares than this exit when their job ends.
    max_spares: usize,
    parked: Mutex<Parked>,
}

struct Parked {
    spares: Vec<Arc<Slot>>,
    /// The owner is gone: spares end, and no thread parks any more.
    closed: bool,
}

/// Where a parked thread waits for its next job.
struct Slot {
    handoff: Mutex<Handoff>,
    ready: Condvar,
}

enum Handoff {
    Waiting,
    Run(Job),
    End,
}

impl SpareThreads {
    pub fn new(name: &str, stack_size: usize, max_spares: usize) -> SpareThreads {
        SpareThreads {
            shared: Arc::new(Shared {
                name: name.to_string(),
                stack_size,
                max_spares,
                parked: Mutex::new(Parked {
                    spares: Vec::new(),
                    closed: false,
                }),
            }),
        }
    }

    /// Runs `job` on a parked thread, or on a new one when none is parked.
    pub fn run(&self, job: impl FnOnce() + Send + 'static) -> io::Result<()> {
        let spare = self.shared.parked.lock().spares.pop();
        match spare {
            Some(slot) => {
                slot.hand(Handoff::Run(Box::new(job)));
                Ok(())
            }
            None => self.start(Some(Box::new(job))),
        }
    }

    /// Starts up to `n` threads that park at once, so the first connections find them ready.
    pub fn prestart(&self, n: usize) {
        for _ in 0..n.min(self.shared.max_spares) {
            if let Err(e) = self.start(None) {
                log::warn!("cannot start a spare {} thread: {e}", self.shared.name);
                break;
            }
        }
    }

    /// Threads parked right now.
    pub fn parked(&self) -> usize {
        self.shared.parked.lock().spares.len()
    }

    fn start(&self, job: Option<Job>) -> io::Result<()> {
        let shared = self.shared.clone();
        std::thread::Builder::new()
            .name(self.shared.name.clone())
            .stack_size(self.shared.stack_size)
            .spawn(move || serve(&shared, job))
            .map(|_| ())
    }
}

impl Drop for SpareThreads {
    fn drop(&mut self) {
        let spares = {
            let mut parked = self.shared.parked.lock();
            parked.closed = true;
            std::mem::take(&mut parked.spares)
        };
        for slot in spares {
            slot.hand(Handoff::End);
        }
    }
}

/// A thread's life: run the job it was started with, then park and run each job it is
/// handed, until there are spares enough or the owner is gone.
fn serve(shared: &Shared, mut job: Option<Job>) {
    let slot = Arc::new(Slot {
        handoff: Mutex::new(Handoff::Waiting),
        ready: Condvar::new(),
    });
    loop {
        if let Some(job) = job.take() {
            job(); // drops the job's captures (sockets, channels) before parking
        }
        {
            let mut parked = shared.parked.lock();
            if parked.closed || parked.spares.len() >= shared.max_spares {
                return;
            }
            parked.spares.push(slot.clone());
        }
        match slot.wait() {
            Handoff::Run(next) => job = Some(next),
            Handoff::Waiting | Handoff::End => return,
        }
    }
}

impl Slot {
    fn hand(&self, handoff: Handoff) {
        *self.handoff.lock() = handoff;
        self.ready.notify_one();
    }

    fn wait(&self) -> Handoff {
        let mut handoff = self.handoff.lock();
        while matches!(*handoff, Handoff::Waiting) {
            self.ready.wait(&mut handoff);
        }
        std::mem::replace(&mut *handoff, Handoff::Waiting)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::{Duration, Instant};

    const WAIT: Duration = Duration::from_secs(5);

    fn thread_id_of(pool: &SpareThreads) -> std::thread::ThreadId {
        let (tx, rx) = mpsc::channel();
        pool.run(move || tx.send(std::thread::current().id()).unwrap())
            .unwrap();
        rx.recv_timeout(WAIT).unwrap()
    }

    fn wait_parked(pool: &SpareThreads, n: usize) {
        let deadline = Instant::now() + WAIT;
        while pool.parked() != n {
            assert!(
                Instant::now() < deadline,
                "{} parked, not {n}",
                pool.parked()
            );
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn a_thread_whose_job_ended_runs_the_next_job() {
        let pool = SpareThreads::new("test", 64 * 1024, 2);
        let first = thread_id_of(&pool);
        wait_parked(&pool, 1);
        let second = thread_id_of(&pool);
        assert_eq!(first, second);
    }

    #[test]
    fn jobs_at_the_same_time_get_threads_of_their_own_and_extra_spares_end() {
        let pool = SpareThreads::new("test", 64 * 1024, 1);
        let (release_tx, release_rx) = crossbeam_channel::unbounded::<()>();
        let (ids_tx, ids_rx) = mpsc::channel();
        for _ in 0..3 {
            let (release, ids) = (release_rx.clone(), ids_tx.clone());
            pool.run(move || {
                ids.send(std::thread::current().id()).unwrap();
                let _ = release.recv_timeout(WAIT);
            })
            .unwrap();
        }
        let ids: std::collections::HashSet<_> =
            (0..3).map(|_| ids_rx.recv_timeout(WAIT).unwrap()).collect();
        assert_eq!(ids.len(), 3, "three concurrent jobs, three threads");
        drop(release_tx);
        wait_parked(&pool, 1);
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(pool.parked(), 1, "only max_spares stay");
    }

    #[test]
    fn prestarted_threads_are_parked_before_any_job() {
        let pool = SpareThreads::new("test", 64 * 1024, 4);
        pool.prestart(2);
        wait_parked(&pool, 2);
        thread_id_of(&pool);
        wait_parked(&pool, 2);
    }

    #[test]
    fn dropping_the_owner_ends_the_spares() {
        let pool = SpareThreads::new("test", 64 * 1024, 4);
        thread_id_of(&pool);
        wait_parked(&pool, 1);
        let shared = Arc::downgrade(&pool.shared);
        drop(pool);
        // The parked thread holds the shared state until it ends.
        let deadline = Instant::now() + WAIT;
        while shared.upgrade().is_some() {
            assert!(Instant::now() < deadline, "a spare outlived its owner");
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}
