//! A token bucket shared by the peer threads of one session (`--max-upload-rate`,
//! `--max-download-rate`).
//!
//! Writer threads take tokens before sending a block, reader threads after receiving one; a
//! thread that finds the bucket empty sleeps until enough tokens have accrued. The bucket is the
//! one piece of state peer threads share, so it sits behind a `parking_lot` mutex held only for
//! the arithmetic, never while sleeping.

use parking_lot::Mutex;
use std::time::{Duration, Instant};

pub struct RateLimit {
    bytes_per_sec: f64,
    state: Mutex<Bucket>,
}

struct Bucket {
    tokens: f64,
    updated: Instant,
}

impl RateLimit {
    /// A limit of `bytes_per_sec` with a burst of a quarter second (at least one 16 KiB block).
    pub fn new(bytes_per_sec: u64) -> RateLimit {
        RateLimit {
            bytes_per_sec: bytes_per_sec.max(1) as f64,
            state: Mutex::new(Bucket {
                tokens: 0.0,
                updated: Instant::now(),
            }),
        }
    }

    fn burst(&self) -> f64 {
        (self.bytes_per_sec / 4.0).max(16.0 * 1024.0)
    }

    /// Takes `bytes` tokens, sleeping as long as the rate requires.
    pub fn take(&self, bytes: u64) {
        let wait = {
            let mut b = self.state.lock();
            let now = Instant::now();
            let accrued = now.duration_since(b.updated).as_secs_f64() * self.bytes_per_sec;
            b.tokens = (b.tokens + accrued).min(self.burst());
            b.updated = now;
            b.tokens -= bytes as f64;
            if b.tokens >= 0.0 {
                Duration::ZERO
            } else {
                Duration::from_secs_f64(-b.tokens / self.bytes_per_sec)
            }
        };
        if !wait.is_zero() {
            std::thread::sleep(wait);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debt_turns_into_a_proportional_wait() {
        let limit = RateLimit::new(1_000_000);
        let started = Instant::now();
        // 200 KB at 1 MB/s with no burst saved up: about 0.2 s of waiting in total.
        for _ in 0..10 {
            limit.take(20_000);
        }
        let elapsed = started.elapsed();
        assert!(elapsed >= Duration::from_millis(150), "{elapsed:?}");
    }
}
