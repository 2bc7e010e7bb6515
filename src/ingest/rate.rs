//! The ingest rate limit: a token bucket of events per ingest token, or per client IP address
//! when ingest is open.
//!
//! A bucket holds at most `burst` events and refills at `per_second`. A request of `n` events
//! is let through when the bucket holds `min(n, burst)`, and takes all `n`: a request larger
//! than the burst is never refused for its size alone, and the bucket's debt then holds back the
//! requests after it, so the long-run rate stays `per_second`. A refused request takes nothing
//! and is told how many whole seconds until it would pass (`Retry-After`).
//!
//! With open ingest every client address gets a bucket. At most [`MAX_BUCKETS`] are kept: when
//! full, the buckets that have refilled (and so hold no debt) are dropped, and if that is not
//! enough, the fullest ones.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};

use tokio::time::Instant;

use crate::config::Rate;

/// Most buckets kept at once (client addresses, with open ingest).
pub const MAX_BUCKETS: usize = 100_000;

/// Whose bucket a request draws from.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum RateKey {
    /// The bearer token the request was let in with.
    Token(String),
    /// The client's address (ingest is open).
    Address(IpAddr),
    /// Neither is known (not over TCP): one shared bucket.
    Unknown,
}

/// Token buckets by [`RateKey`].
#[derive(Debug)]
pub struct RateLimiter {
    rate: Rate,
    buckets: Mutex<HashMap<RateKey, Bucket>>,
}

#[derive(Clone, Copy, Debug)]
struct Bucket {
    /// Events that may be sent now; negative after a request larger than the burst.
    events: f64,
    /// When `events` was computed.
    at: Instant,
}

impl Bucket {
    fn refilled(self, rate: &Rate, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        (self.events + elapsed * rate.per_second).min(rate.burst)
    }
}

impl RateLimiter {
    /// Buckets refilled at `rate`.
    pub fn new(rate: Rate) -> RateLimiter {
        RateLimiter {
            rate,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes `events` from `key`'s bucket at `now`, or answers the whole seconds (at least 1)
    /// after which they could be taken.
    pub fn take(&self, key: &RateKey, events: usize, now: Instant) -> Result<(), u64> {
        let rate = &self.rate;
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        if !buckets.contains_key(key) && buckets.len() >= MAX_BUCKETS {
            make_room(&mut buckets, rate, now);
        }
        let bucket = buckets.entry(key.clone()).or_insert(Bucket {
            events: rate.burst,
            at: now,
        });
        let available = bucket.refilled(rate, now);
        let wanted = events as f64;
        let needed = wanted.min(rate.burst);
        if available >= needed {
            *bucket = Bucket {
                events: available - wanted,
                at: now,
            };
            Ok(())
        } else {
            let seconds = ((needed - available) / rate.per_second).ceil();
            Err((seconds as u64).max(1))
        }
    }

    /// Buckets kept now.
    pub fn tracked(&self) -> usize {
        self.buckets
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

/// Drops the buckets that refilled; if that frees nothing, the fullest tenth.
fn make_room(buckets: &mut HashMap<RateKey, Bucket>, rate: &Rate, now: Instant) {
    buckets.retain(|_, bucket| bucket.refilled(rate, now) < rate.burst);
    if buckets.len() >= MAX_BUCKETS {
        let mut fullness: Vec<(f64, RateKey)> = buckets
            .iter()
            .map(|(key, bucket)| (bucket.refilled(rate, now), key.clone()))
            .collect();
        fullness.sort_by(|a, b| b.0.total_cmp(&a.0));
        for (_, key) in fullness.into_iter().take(MAX_BUCKETS / 10) {
            buckets.remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn limiter(per_second: f64, burst: f64) -> RateLimiter {
        RateLimiter::new(Rate { per_second, burst })
    }

    #[test]
    fn a_bucket_lets_a_burst_through_then_the_rate() {
        let limiter = limiter(10.0, 20.0);
        let key = RateKey::Token("t".into());
        let t0 = Instant::now();
        assert_eq!(limiter.take(&key, 20, t0), Ok(()));
        assert_eq!(limiter.take(&key, 1, t0), Err(1));
        // 0.5 s refills 5 events.
        let later = t0 + Duration::from_millis(500);
        assert_eq!(limiter.take(&key, 5, later), Ok(()));
        assert_eq!(limiter.take(&key, 10, later), Err(1));
        // Waiting longer than the burst needs does not overfill it.
        let much_later = later + Duration::from_secs(60);
        assert_eq!(limiter.take(&key, 20, much_later), Ok(()));
        assert_eq!(limiter.take(&key, 1, much_later), Err(1));
    }

    #[test]
    fn requests_larger_than_the_burst_pass_and_leave_a_debt() {
        let limiter = limiter(10.0, 20.0);
        let key = RateKey::Unknown;
        let t0 = Instant::now();
        assert_eq!(limiter.take(&key, 100, t0), Ok(()));
        // 80 events of debt plus one: 8.1 s.
        assert_eq!(limiter.take(&key, 1, t0), Err(9));
        assert_eq!(limiter.take(&key, 1, t0 + Duration::from_secs(9)), Ok(()));
    }

    #[test]
    fn keys_have_their_own_buckets() {
        let limiter = limiter(1.0, 1.0);
        let t0 = Instant::now();
        let a = RateKey::Address("10.0.0.1".parse().expect("ip"));
        let b = RateKey::Address("10.0.0.2".parse().expect("ip"));
        assert_eq!(limiter.take(&a, 1, t0), Ok(()));
        assert_eq!(limiter.take(&b, 1, t0), Ok(()));
        assert_eq!(limiter.take(&a, 1, t0), Err(1));
    }

    #[test]
    fn buckets_are_bounded() {
        let limiter = limiter(1.0, 1.0);
        let t0 = Instant::now();
        for i in 0..MAX_BUCKETS as u32 {
            let key = RateKey::Address(IpAddr::from(i.to_be_bytes()));
            assert_eq!(limiter.take(&key, 1, t0), Ok(()));
        }
        assert_eq!(limiter.tracked(), MAX_BUCKETS);
        // None has refilled: the fullest tenth goes.
        let newcomer = RateKey::Token("new".into());
        assert_eq!(limiter.take(&newcomer, 1, t0), Ok(()));
        assert!(limiter.tracked() <= MAX_BUCKETS - MAX_BUCKETS / 10 + 1);
        // Two seconds later every old bucket refilled: all go at the next newcomer.
        let later = t0 + Duration::from_secs(2);
        for i in 0..MAX_BUCKETS as u32 {
            let key = RateKey::Token(i.to_string());
            let _ = limiter.take(&key, 0, later);
        }
        assert!(limiter.tracked() <= MAX_BUCKETS);
    }
}
