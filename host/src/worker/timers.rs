//! Timers a plugin instance sets: tokio tasks that report back to the instance's own task.
//!
//! A timer has at most one firing waiting for the instance: a repeating timer whose instance
//! is busy skips the periods it missed instead of piling them up.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::mpsc::UnboundedSender;
use tokio::task::JoinHandle;

/// Longest timer period: one day.
const MAX_AFTER_MS: u64 = 86_400_000;

/// Most timers one instance may have at once.
const MAX_TIMERS: usize = 10_000;

/// A timer of instance incarnation `generation` fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fired {
    /// Which incarnation of the instance set it; a replaced instance's timers are stale.
    pub generation: u64,
    /// The timer.
    pub id: u64,
}

/// Why a timer cannot be set.
#[derive(Debug, thiserror::Error)]
pub enum TimerError {
    /// The period is out of range.
    #[error("after-ms must be 1..={MAX_AFTER_MS}, got {0}")]
    Period(u64),
    /// Too many timers are active.
    #[error("an instance may have at most {MAX_TIMERS} timers")]
    TooMany,
}

struct Timer {
    task: JoinHandle<()>,
    repeat: bool,
    /// A firing is waiting for the instance.
    pending: Arc<AtomicBool>,
}

/// The timers of one instance incarnation; dropping it cancels them all.
pub struct Timers {
    fired: UnboundedSender<Fired>,
    generation: u64,
    next_id: u64,
    active: HashMap<u64, Timer>,
}

impl Timers {
    /// Timers that report to `fired`, tagged with `generation`.
    pub fn new(fired: UnboundedSender<Fired>, generation: u64) -> Self {
        Self {
            fired,
            generation,
            next_id: 1,
            active: HashMap::new(),
        }
    }

    /// Starts a timer; returns its id.
    pub fn set(&mut self, after_ms: u64, repeat: bool) -> Result<u64, TimerError> {
        if !(1..=MAX_AFTER_MS).contains(&after_ms) {
            return Err(TimerError::Period(after_ms));
        }
        if self.active.len() >= MAX_TIMERS {
            return Err(TimerError::TooMany);
        }
        let id = self.next_id;
        self.next_id += 1;
        let fired = self.fired.clone();
        let tag = Fired {
            generation: self.generation,
            id,
        };
        let period = Duration::from_millis(after_ms);
        let pending = Arc::new(AtomicBool::new(false));
        let waiting = pending.clone();
        let task = tokio::spawn(async move {
            let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                if !waiting.swap(true, Ordering::AcqRel) && fired.send(tag).is_err() {
                    break;
                }
                if !repeat {
                    break;
                }
            }
        });
        self.active.insert(
            id,
            Timer {
                task,
                repeat,
                pending,
            },
        );
        Ok(id)
    }

    /// Cancels a timer; unknown ids are ignored.
    pub fn clear(&mut self, id: u64) {
        if let Some(timer) = self.active.remove(&id) {
            timer.task.abort();
        }
    }

    /// Whether a fired timer is still live (and so its event is due); a one-shot timer is
    /// done once it has fired.
    pub fn take_fired(&mut self, fired: Fired) -> bool {
        if fired.generation != self.generation {
            return false;
        }
        match self.active.get(&fired.id) {
            None => false,
            Some(timer) if timer.repeat => {
                // Taken: the next period may queue a firing again.
                timer.pending.store(false, Ordering::Release);
                true
            }
            Some(_) => {
                self.active.remove(&fired.id);
                true
            }
        }
    }
}

impl Drop for Timers {
    fn drop(&mut self) {
        for timer in self.active.values() {
            timer.task.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::mpsc::unbounded_channel;

    #[tokio::test(start_paused = true)]
    async fn one_shot_fires_once_and_repeat_keeps_firing() {
        let (tx, mut rx) = unbounded_channel();
        let mut timers = Timers::new(tx, 7);
        let once = timers.set(10, false).expect("valid");
        let every = timers.set(25, true).expect("valid");
        let mut seen = Vec::new();
        for _ in 0..3 {
            let fired = rx.recv().await.expect("fires");
            if timers.take_fired(fired) {
                seen.push(fired.id);
            }
        }
        assert_eq!(seen, [once, every, every]);
        assert!(!timers.take_fired(Fired {
            generation: 7,
            id: once
        }));
        assert!(!timers.take_fired(Fired {
            generation: 6,
            id: every
        }));
        timers.clear(every);
        assert!(!timers.take_fired(Fired {
            generation: 7,
            id: every
        }));
    }

    #[tokio::test(start_paused = true)]
    async fn a_busy_instance_gets_one_firing_per_timer_not_one_per_period() {
        let (tx, mut rx) = unbounded_channel();
        let mut timers = Timers::new(tx, 1);
        let every = timers.set(10, true).expect("valid");
        // The instance is busy for 100 periods.
        tokio::time::sleep(Duration::from_millis(1005)).await;
        let fired = rx.recv().await.expect("fired");
        assert!(rx.try_recv().is_err(), "one firing waits, not a hundred");
        assert!(timers.take_fired(fired));
        assert_eq!(fired.id, every);
        // Once taken, the next period fires again.
        let again = rx.recv().await.expect("fires again");
        assert!(timers.take_fired(again));
    }

    #[tokio::test]
    async fn bad_periods_are_refused() {
        let (tx, _rx) = unbounded_channel();
        let mut timers = Timers::new(tx, 1);
        assert!(timers.set(0, false).is_err());
        assert!(timers.set(MAX_AFTER_MS + 1, true).is_err());
    }
}
