//! Logging of librdkafka's client errors without flooding: while a broker is down librdkafka
//! reports the same error many times a second, from every client.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rdkafka::ClientContext;
use rdkafka::error::KafkaError;

/// How often the same error is logged at most.
const EVERY: Duration = Duration::from_secs(10);

/// Logs each distinct client error at most once every 10 s, with how often it repeated.
#[derive(Debug, Default)]
pub struct QuietErrors {
    seen: Mutex<HashMap<String, (Instant, u64)>>,
}

impl QuietErrors {
    /// Logs `error` unless the same error was logged recently.
    pub fn report(&self, client: &str, error: &KafkaError, reason: &str) {
        let key = error.to_string();
        let Ok(mut seen) = self.seen.lock() else {
            return;
        };
        let now = Instant::now();
        let entry = seen.entry(key).or_insert((now - EVERY, 0));
        entry.1 += 1;
        if now.duration_since(entry.0) >= EVERY {
            let repeats = entry.1;
            *entry = (now, 0);
            tracing::warn!(client, %error, reason, repeats, "kafka client error");
        }
    }
}

/// A client context that logs errors through [`QuietErrors`] (for producers and the metadata
/// lookups).
#[derive(Debug, Default)]
pub struct QuietContext {
    errors: QuietErrors,
}

impl ClientContext for QuietContext {
    fn error(&self, error: KafkaError, reason: &str) {
        self.errors.report("client", &error, reason);
    }
}

impl rdkafka::consumer::ConsumerContext for QuietContext {}
