//! Recycled block buffers.
//!
//! Every block arrives in a buffer of its own (no copy from a shared read buffer), and those
//! buffers die at the verifier once the piece is written. Without recycling, the allocator
//! keeps returning that memory to the kernel and asking for it back, and every round trip costs
//! page faults and zeroed pages. The pool is a bounded channel of empty buffers: readers take
//! from it, verifiers give back to it, and its bound caps the memory it can hold.

use crate::layout::BLOCK_LEN;
use crossbeam_channel::{bounded, Receiver, Sender};

pub struct BlockPool {
    tx: Sender<Vec<u8>>,
    rx: Receiver<Vec<u8>>,
}

impl BlockPool {
    /// A pool keeping at most `buffers` spare 16 KiB buffers.
    pub fn new(buffers: usize) -> BlockPool {
        let (tx, rx) = bounded(buffers.max(1));
        BlockPool { tx, rx }
    }

    /// An empty buffer with room for `len` bytes.
    pub fn take(&self, len: usize) -> Vec<u8> {
        match self.rx.try_recv() {
            Ok(mut buf) => {
                buf.clear();
                buf.reserve(len);
                buf
            }
            Err(_) => Vec::with_capacity(len.max(BLOCK_LEN as usize)),
        }
    }

    /// Returns a buffer for reuse; odd-sized ones and any beyond the bound are freed.
    pub fn give(&self, buf: Vec<u8>) {
        if buf.capacity() == BLOCK_LEN as usize {
            let _ = self.tx.try_send(buf);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_come_back_and_the_bound_holds() {
        let pool = BlockPool::new(2);
        let a = pool.take(100);
        let ptr = a.as_ptr();
        pool.give(a);
        let b = pool.take(BLOCK_LEN as usize);
        assert_eq!(b.as_ptr(), ptr, "the same allocation is reused");
        assert!(b.is_empty());
        for _ in 0..5 {
            pool.give(vec![0; BLOCK_LEN as usize]);
        }
        assert_eq!(pool.rx.len(), 2);
        pool.give(Vec::with_capacity(7));
        assert_eq!(pool.rx.len(), 2);
    }
}
