//! Figures: a lock-free latency histogram shared by client tasks, and medians and spread over
//! repeated runs.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

/// Latencies in whole milliseconds, one bucket per millisecond up to [`Histogram::MAX_MS`]
/// (later ones land in the last bucket). Recording is one relaxed atomic add.
pub struct Histogram {
    buckets: Vec<AtomicU64>,
}

impl Histogram {
    /// The largest latency told apart, in milliseconds.
    pub const MAX_MS: usize = 60_000;

    pub fn new() -> Histogram {
        Histogram {
            buckets: (0..=Self::MAX_MS).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    pub fn record(&self, ms: u64) {
        let at = (ms as usize).min(Self::MAX_MS);
        self.buckets[at].fetch_add(1, Ordering::Relaxed);
    }

    pub fn count(&self) -> u64 {
        self.buckets.iter().map(|b| b.load(Ordering::Relaxed)).sum()
    }

    /// The `q` quantile (0..=1), in milliseconds; `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<u64> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
        let mut seen = 0;
        for (ms, bucket) in self.buckets.iter().enumerate() {
            seen += bucket.load(Ordering::Relaxed);
            if seen >= rank {
                return Some(ms as u64);
            }
        }
        Some(Self::MAX_MS as u64)
    }
}

/// Named figures of one run of a scenario.
pub type Figures = BTreeMap<&'static str, f64>;

/// Median, minimum and maximum of one figure over runs.
#[derive(Debug, Clone, Copy)]
pub struct Spread {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

impl Spread {
    pub fn of(values: &[f64]) -> Option<Spread> {
        if values.is_empty() {
            return None;
        }
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        let median = if !n.is_multiple_of(2) {
            sorted[n / 2]
        } else {
            (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
        };
        Some(Spread {
            median,
            min: sorted[0],
            max: sorted[n - 1],
        })
    }

    /// The spread as ± percent of the median: half the range over the median.
    pub fn plus_minus_pct(&self) -> f64 {
        if self.median == 0.0 {
            0.0
        } else {
            (self.max - self.min) / 2.0 / self.median.abs() * 100.0
        }
    }
}

/// Prints the median (min–max) of every figure over `runs`.
pub fn print_summary(scenario: &str, runs: &[Figures]) {
    let mut names: Vec<&'static str> = runs.iter().flat_map(|r| r.keys().copied()).collect();
    names.sort_unstable();
    names.dedup();
    println!(
        "\n== {scenario}: median (min – max, ±%) over {} run(s)",
        runs.len()
    );
    for name in names {
        let values: Vec<f64> = runs.iter().filter_map(|r| r.get(name).copied()).collect();
        if let Some(s) = Spread::of(&values) {
            println!(
                "  {name:<34} {:>14} ({} – {}, ±{:.1}%)",
                human(s.median),
                human(s.min),
                human(s.max),
                s.plus_minus_pct()
            );
        }
    }
    let json: Vec<serde_json::Value> = runs.iter().map(|r| serde_json::json!(r)).collect();
    println!(
        "SUMMARY {}",
        serde_json::json!({ "scenario": scenario, "runs": json })
    );
}

/// A number for people: thousands separated, two decimals under 100.
pub fn human(value: f64) -> String {
    if value.abs() >= 100.0 {
        let whole = value.round() as i64;
        let digits = whole.unsigned_abs().to_string();
        let mut out = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                out.push(',');
            }
            out.push(c);
        }
        if whole < 0 { format!("-{out}") } else { out }
    } else {
        format!("{value:.2}")
    }
}
