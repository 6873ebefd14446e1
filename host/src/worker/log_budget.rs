//! How much a plugin instance may log: a token bucket, so a plugin that logs in a loop can
//! neither fill the disk nor drown the host's own lines. Lines beyond the budget are dropped
//! and counted, and the count is reported with the next line let through.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

/// Lines an instance may log in a burst.
const BURST: f64 = 1000.0;

/// Lines per second an instance may log over time.
const PER_SECOND: f64 = 100.0;

/// The log budget of one instance, shared by its `log` import and its stdout and stderr.
#[derive(Clone, Debug)]
pub struct LogBudget(Arc<Mutex<Bucket>>);

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
    dropped: u64,
}

impl Default for LogBudget {
    fn default() -> Self {
        Self(Arc::new(Mutex::new(Bucket::new(Instant::now()))))
    }
}

impl LogBudget {
    /// Whether a line may be logged now; if so, how many were dropped since the last one.
    pub fn admit(&self) -> Option<u64> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .admit(Instant::now())
    }
}

impl Bucket {
    fn new(now: Instant) -> Self {
        Self {
            tokens: BURST,
            last: now,
            dropped: 0,
        }
    }

    fn admit(&mut self, now: Instant) -> Option<u64> {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * PER_SECOND).min(BURST);
        if self.tokens < 1.0 {
            self.dropped += 1;
            return None;
        }
        self.tokens -= 1.0;
        Some(std::mem::take(&mut self.dropped))
    }
}

/// Logs the count of lines a plugin had dropped, if any.
pub fn report_dropped(app: &str, version: &str, dropped: u64) {
    if dropped > 0 {
        tracing::warn!(
            app,
            version,
            dropped,
            "plugin log lines dropped: more than {PER_SECOND} a second"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_burst_passes_then_lines_are_dropped_counted_and_refilled_over_time() {
        let start = Instant::now();
        let mut bucket = Bucket::new(start);
        for _ in 0..1000 {
            assert_eq!(bucket.admit(start), Some(0));
        }
        for _ in 0..5 {
            assert_eq!(bucket.admit(start), None);
        }
        // A tenth of a second later, ten more lines may pass; the first says what was lost.
        let later = start + Duration::from_millis(100);
        assert_eq!(bucket.admit(later), Some(5));
        for _ in 0..8 {
            assert_eq!(bucket.admit(later), Some(0));
        }
        assert!(bucket.admit(later).is_some_and(|dropped| dropped == 0));
        assert_eq!(bucket.admit(later), None);
    }
}
