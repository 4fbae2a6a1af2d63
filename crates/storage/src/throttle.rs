//! Bandwidth limits (`--limit-upload`, `--limit-download`, as restic's): a token bucket
//! shared by every thread of one storage, so parallel uploads together keep to the rate.
//! Bytes are charged when they pass; a transfer that overdraws the bucket waits until the
//! rate has paid for it, so over any stretch of time the average stays at the limit.

use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct Throttle {
    bytes_per_second: f64,
    bucket: Mutex<Bucket>,
}

#[derive(Debug)]
struct Bucket {
    /// Bytes that may pass without waiting; negative when a transfer overdrew it.
    available: f64,
    refilled: Instant,
}

impl Throttle {
    /// A limit of `bytes_per_second` (at least 1), with a burst of one second's worth.
    pub fn new(bytes_per_second: u64) -> Throttle {
        let rate = bytes_per_second.max(1) as f64;
        Throttle {
            bytes_per_second: rate,
            bucket: Mutex::new(Bucket {
                available: rate,
                refilled: Instant::now(),
            }),
        }
    }

    /// Charges `bytes` that passed at `now`; returns how long the caller must wait.
    fn charge(&self, bytes: usize, now: Instant) -> Duration {
        let mut bucket = self.bucket.lock().expect("throttle bucket");
        let elapsed = now.saturating_duration_since(bucket.refilled).as_secs_f64();
        bucket.available =
            (bucket.available + elapsed * self.bytes_per_second).min(self.bytes_per_second);
        bucket.refilled = now;
        bucket.available -= bytes as f64;
        if bucket.available >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-bucket.available / self.bytes_per_second)
        }
    }

    /// Charges `bytes` and sleeps as long as the limit asks.
    pub fn pass(&self, bytes: usize) {
        let wait = self.charge(bytes, Instant::now());
        if !wait.is_zero() {
            std::thread::sleep(wait);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transfers_wait_until_the_rate_has_paid_for_them() {
        let throttle = Throttle::new(1000);
        let start = throttle.bucket.lock().unwrap().refilled;
        let at = |ms: u64| start + Duration::from_millis(ms);
        // One second's worth passes at once (the burst); more waits its share.
        assert_eq!(throttle.charge(1000, at(0)), Duration::ZERO);
        assert_eq!(throttle.charge(500, at(0)), Duration::from_millis(500));
        // After waiting it, the bucket is empty: the next 250 bytes wait 250 ms.
        assert_eq!(throttle.charge(250, at(500)), Duration::from_millis(250));
        // A long idle refills it to the burst only, never beyond.
        assert_eq!(throttle.charge(1000, at(60_000)), Duration::ZERO);
        assert_eq!(throttle.charge(1, at(60_000)), Duration::from_millis(1));
    }

    #[test]
    fn over_many_transfers_the_average_is_the_rate() {
        let throttle = Throttle::new(4096);
        let start = throttle.bucket.lock().unwrap().refilled;
        let mut now = start;
        for _ in 0..100 {
            now += throttle.charge(1024, now);
        }
        // 100 KiB at 4 KiB/s, less the one-second burst: 24 s.
        let took = now.duration_since(start).as_secs_f64();
        assert!((took - 24.0).abs() < 0.01, "{took}");
    }
}
