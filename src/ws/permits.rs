//! How many WebSocket streams may be open: at most so many in the process, and so many from one
//! client address. A stream holds a [`Permit`] for its life; dropping it frees the place.
//!
//! A permit is taken before the upgrade is answered, so a client over a limit gets an HTTP
//! error (`503` for the process, `429` for its address) rather than an upgrade that is then
//! closed. If the upgrade never completes, the permit is dropped with the upgrade callback.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

use crate::config::WsLimits;
use crate::error::ApiError;

/// Seconds a client refused for the process limit is told to wait (`Retry-After`).
const RETRY_AFTER_SECONDS: u64 = 5;

/// Counts open streams, in total and per client address. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Permits {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    max: usize,
    max_per_address: usize,
    open: Mutex<Open>,
}

#[derive(Debug, Default)]
struct Open {
    total: usize,
    /// Only addresses with open streams are kept.
    by_address: HashMap<IpAddr, usize>,
}

/// A place for one open stream, freed when dropped.
#[derive(Debug)]
pub struct Permit {
    inner: Arc<Inner>,
    address: Option<IpAddr>,
}

impl Permits {
    /// Places for `limits.connections` streams, `limits.connections_per_ip` per address.
    pub fn new(limits: &WsLimits) -> Permits {
        Permits {
            inner: Arc::new(Inner {
                max: limits.connections,
                max_per_address: limits.connections_per_ip,
                open: Mutex::new(Open::default()),
            }),
        }
    }

    /// A place for a stream from `address` (`None` when not over TCP: only the total counts).
    pub fn take(&self, address: Option<IpAddr>) -> Result<Permit, ApiError> {
        let mut open = self.inner.lock();
        if open.total >= self.inner.max {
            return Err(ApiError::Busy {
                message: format!(
                    "the server has {} WebSocket streams open, its limit; retry later",
                    open.total
                ),
                retry_after: RETRY_AFTER_SECONDS,
            });
        }
        if let Some(address) = address {
            let from = open.by_address.entry(address).or_insert(0);
            if *from >= self.inner.max_per_address {
                let message = format!(
                    "{from} WebSocket streams are open from {address}, the limit per client address; close one first"
                );
                return Err(ApiError::TooManyRequests {
                    message,
                    retry_after: None,
                });
            }
            *from += 1;
        }
        open.total += 1;
        Ok(Permit {
            inner: self.inner.clone(),
            address,
        })
    }

    /// Streams open now.
    pub fn open(&self) -> usize {
        self.inner.lock().total
    }
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, Open> {
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut open = self.inner.lock();
        open.total = open.total.saturating_sub(1);
        if let Some(address) = self.address
            && let Some(from) = open.by_address.get_mut(&address)
        {
            *from = from.saturating_sub(1);
            if *from == 0 {
                open.by_address.remove(&address);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn permits(total: usize, per_address: usize) -> Permits {
        Permits::new(&WsLimits {
            connections: total,
            connections_per_ip: per_address,
            ..WsLimits::default()
        })
    }

    #[test]
    fn limits_per_address_then_in_total() {
        let permits = permits(3, 2);
        let a: IpAddr = "10.0.0.1".parse().expect("ip");
        let b: IpAddr = "10.0.0.2".parse().expect("ip");
        let first = permits.take(Some(a)).expect("first from a");
        let _second = permits.take(Some(a)).expect("second from a");
        let refused = permits.take(Some(a)).expect_err("third from a");
        assert_eq!(refused.status().as_u16(), 429);
        let _third = permits.take(Some(b)).expect("first from b");
        let full = permits.take(Some(b)).expect_err("over the total");
        assert_eq!(full.status().as_u16(), 503);
        assert_eq!(full.retry_after(), Some(RETRY_AFTER_SECONDS));
        drop(first);
        assert_eq!(permits.open(), 2);
        permits.take(Some(a)).expect("a place freed");
    }

    #[test]
    fn addresses_without_streams_are_forgotten() {
        let permits = permits(10, 1);
        let a: IpAddr = "::1".parse().expect("ip");
        drop(permits.take(Some(a)).expect("taken"));
        assert!(permits.inner.lock().by_address.is_empty());
        assert_eq!(permits.open(), 0);
    }
}
