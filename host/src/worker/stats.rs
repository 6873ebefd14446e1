//! Counters of an app, read by status and metrics.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the event latency buckets, in microseconds.
const BUCKETS_US: [u64; 12] = [
    50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 100_000, 500_000, 1_000_000,
];

/// A latency histogram with fixed buckets, updated without locks.
#[derive(Debug, Default)]
pub struct Latency {
    /// Count of events at or below each bound of [`BUCKETS_US`] (not cumulative).
    buckets: [AtomicU64; BUCKETS_US.len()],
    /// Events above the last bound.
    overflow: AtomicU64,
    /// Sum of all latencies, microseconds.
    sum_us: AtomicU64,
}

/// A snapshot of a [`Latency`] histogram in Prometheus's shape.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LatencySnapshot {
    /// (upper bound in seconds, cumulative count), ascending; `+Inf` is `count`.
    pub buckets: Vec<(f64, u64)>,
    /// Number of events.
    pub count: u64,
    /// Sum of latencies in seconds.
    pub sum_seconds: f64,
}

impl Latency {
    /// Records one event's latency.
    pub fn record(&self, took: Duration) {
        let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        match BUCKETS_US.iter().position(|&bound| us <= bound) {
            Some(i) => self.buckets[i].fetch_add(1, Ordering::Relaxed),
            None => self.overflow.fetch_add(1, Ordering::Relaxed),
        };
        self.sum_us.fetch_add(us, Ordering::Relaxed);
    }

    /// The histogram now.
    pub fn snapshot(&self) -> LatencySnapshot {
        let mut cumulative = 0;
        let buckets = BUCKETS_US
            .iter()
            .zip(&self.buckets)
            .map(|(&bound, count)| {
                cumulative += count.load(Ordering::Relaxed);
                (bound as f64 / 1e6, cumulative)
            })
            .collect();
        LatencySnapshot {
            buckets,
            count: cumulative + self.overflow.load(Ordering::Relaxed),
            sum_seconds: self.sum_us.load(Ordering::Relaxed) as f64 / 1e6,
        }
    }
}

/// Counters of an app, across its versions.
#[derive(Debug, Default)]
pub struct AppStats {
    /// Events handled without error.
    pub events: AtomicU64,
    /// Events lost to a trap, a deadline or the memory cap.
    pub failures: AtomicU64,
    /// Events not delivered because the plugin leaves their handler to its SDK's default
    /// (handshakes accepted that way included).
    pub skipped: AtomicU64,
    /// Instances created.
    pub instantiations: AtomicU64,
    /// Healthy instances replaced by the recycling policy.
    pub recycles: AtomicU64,
    /// The most linear memory one instance has used, in bytes.
    pub peak_memory_bytes: AtomicU64,
    /// Time each event took in the plugin.
    pub latency: Latency,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_is_cumulative_with_overflow_in_count() {
        let latency = Latency::default();
        latency.record(Duration::from_micros(40));
        latency.record(Duration::from_micros(300));
        latency.record(Duration::from_secs(3));
        let s = latency.snapshot();
        assert_eq!(s.count, 3);
        assert_eq!(s.buckets[0], (0.00005, 1));
        assert_eq!(s.buckets[3], (0.0005, 2));
        assert_eq!(s.buckets.last().map(|b| b.1), Some(2));
        assert!((s.sum_seconds - 3.00034).abs() < 1e-9);
    }
}
