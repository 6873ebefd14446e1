//! Events that wait for a live worker: per app, in arrival order, bounded in number and in
//! age. Plain data fed with the time, so the bounds are tested without a clock.
//!
//! While an app has waiting events, its later events wait behind them, so a client's events
//! still reach the worker in the order they happened.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use crate::bus::AppName;

/// The waiting events of every app.
#[derive(Debug)]
pub struct Backlog<T> {
    queues: BTreeMap<AppName, VecDeque<(Instant, T)>>,
    len: usize,
    max_events: usize,
    max_age: Duration,
    dropped: u64,
}

impl<T> Backlog<T> {
    /// An empty backlog with these bounds.
    pub fn new(max_events: usize, max_age: Duration) -> Self {
        Self {
            queues: BTreeMap::new(),
            len: 0,
            max_events,
            max_age,
            dropped: 0,
        }
    }

    /// Whether events of `app` are waiting: a new one must wait behind them.
    pub fn is_waiting(&self, app: &str) -> bool {
        self.queues.get(app).is_some_and(|q| !q.is_empty())
    }

    /// Queues an event of `app` that arrived at `now`; a full backlog drops it (counted).
    pub fn push(&mut self, app: &AppName, event: T, now: Instant) -> bool {
        if self.len >= self.max_events {
            self.dropped += 1;
            return false;
        }
        self.queues
            .entry(app.clone())
            .or_default()
            .push_back((now, event));
        self.len += 1;
        true
    }

    /// Drops (and counts) the events that waited longer than the bound; returns how many.
    pub fn expire(&mut self, now: Instant) -> u64 {
        let mut expired = 0;
        for queue in self.queues.values_mut() {
            while queue
                .front()
                .is_some_and(|(at, _)| now.saturating_duration_since(*at) > self.max_age)
            {
                queue.pop_front();
                expired += 1;
            }
        }
        self.queues.retain(|_, q| !q.is_empty());
        self.len -= expired as usize;
        self.dropped += expired;
        expired
    }

    /// The apps with waiting events.
    pub fn apps(&self) -> Vec<AppName> {
        self.queues.keys().cloned().collect()
    }

    /// Takes every waiting event of `app`, oldest first.
    pub fn take(&mut self, app: &str) -> Vec<T> {
        let queue = self.queues.remove(app).unwrap_or_default();
        self.len -= queue.len();
        queue.into_iter().map(|(_, event)| event).collect()
    }

    /// Events waiting now.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Events dropped so far: the backlog was full, or they waited too long.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_wait_in_order_per_app() {
        let t0 = Instant::now();
        let mut b = Backlog::new(10, Duration::from_secs(5));
        let (chat, echo): (AppName, AppName) = ("chat".into(), "echo".into());
        assert!(!b.is_waiting("chat"));
        b.push(&chat, 1, t0);
        b.push(&echo, 2, t0);
        b.push(&chat, 3, t0);
        assert!(b.is_waiting("chat"));
        assert_eq!(b.apps(), [chat.clone(), echo.clone()]);
        assert_eq!(b.take("chat"), [1, 3]);
        assert!(!b.is_waiting("chat"));
        assert_eq!(b.len(), 1);
        assert_eq!(b.take("echo"), [2]);
        assert!(b.is_empty());
        assert_eq!(b.dropped(), 0);
    }

    #[test]
    fn the_backlog_is_bounded_in_number_and_in_age_and_counts_what_it_drops() {
        let t0 = Instant::now();
        let mut b = Backlog::new(2, Duration::from_secs(5));
        let app: AppName = "echo".into();
        assert!(b.push(&app, 1, t0));
        assert!(b.push(&app, 2, t0 + Duration::from_secs(3)));
        assert!(!b.push(&app, 3, t0 + Duration::from_secs(3)), "full");
        assert_eq!(b.dropped(), 1);
        assert_eq!(
            b.expire(t0 + Duration::from_secs(5)),
            0,
            "5 s is not above 5 s"
        );
        assert_eq!(b.expire(t0 + Duration::from_secs(6)), 1);
        assert_eq!(b.dropped(), 2);
        assert!(b.push(&app, 4, t0 + Duration::from_secs(6)));
        assert_eq!(b.take("echo"), [2, 4]);
        assert_eq!(b.expire(t0 + Duration::from_secs(60)), 0);
    }
}
