//! Timers a plugin instance sets: tokio tasks that report back to the instance's own task, or
//! entries of a [`ManualClock`] that a test advances.
//!
//! A timer has at most one firing waiting for the instance: a repeating timer whose instance
//! is busy skips the periods it missed instead of piling them up.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
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

/// What timers count time on.
#[derive(Clone, Default)]
pub enum Clock {
    /// Tokio's clock: timers fire on their own.
    #[default]
    Real,
    /// A clock that moves only when a test advances it.
    Manual(Arc<ManualClock>),
}

/// A clock for tests: a timer fires only when [`ManualClock::advance`] moves past its due time.
#[derive(Default)]
pub struct ManualClock {
    state: Mutex<ManualState>,
}

#[derive(Default)]
struct ManualState {
    /// Time since the clock was made.
    now: Duration,
    /// Timers by due time (ties in the order they were set).
    due: BTreeMap<(Duration, u64), Scheduled>,
    next_seq: u64,
}

/// A timer on a manual clock; it is gone once its [`Timers`] drops its firing.
struct Scheduled {
    firing: Weak<Firing>,
    period: Duration,
    repeat: bool,
}

impl ManualClock {
    /// Moves the clock forward by `by`, queueing an `on-timer` for every timer due by then;
    /// returns how many were queued. Each timer fires at most once per call: while its firing
    /// waits for the instance, the periods it misses are skipped, as on the real clock.
    pub fn advance(&self, by: Duration) -> usize {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let target = state.now.saturating_add(by);
        let mut queued = 0;
        let mut again = Vec::new();
        while let Some(entry) = state.due.first_entry() {
            if entry.key().0 > target {
                break;
            }
            let ((at, _), timer) = entry.remove_entry();
            state.now = at;
            let Some(firing) = timer.firing.upgrade() else {
                continue;
            };
            if firing.fire() {
                queued += 1;
            }
            if timer.repeat {
                // The first period after the target: the rest were missed while it waited.
                let missed = (target - at).as_nanos() / timer.period.as_nanos();
                let next = timer.period.as_nanos() * (missed + 1);
                again.push((at + duration_from_nanos(next), timer));
            }
        }
        state.now = target;
        for (at, timer) in again {
            state.schedule(at, timer);
        }
        queued
    }

    fn add(&self, after: Duration, timer: Scheduled) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let at = state.now.saturating_add(after);
        state.schedule(at, timer);
    }
}

impl ManualState {
    fn schedule(&mut self, at: Duration, timer: Scheduled) {
        self.next_seq += 1;
        self.due.insert((at, self.next_seq), timer);
    }
}

/// Saturates at `Duration::MAX`, far beyond any period a timer may have.
fn duration_from_nanos(nanos: u128) -> Duration {
    u64::try_from(nanos).map_or(Duration::MAX, Duration::from_nanos)
}

/// What a timer sends when it is due.
struct Firing {
    tag: Fired,
    fired: UnboundedSender<Fired>,
    /// A firing is waiting for the instance.
    pending: Arc<AtomicBool>,
}

impl Firing {
    /// Queues the firing unless one is waiting already; false if nothing was queued.
    fn fire(&self) -> bool {
        !self.pending.swap(true, Ordering::AcqRel) && self.fired.send(self.tag).is_ok()
    }

    /// Whether the instance is gone, so the timer can stop.
    fn orphaned(&self) -> bool {
        self.fired.is_closed()
    }
}

/// How a timer is kept ticking: a task on the real clock, or its firing on a manual one.
enum Ticking {
    Task(JoinHandle<()>),
    /// Holds the only strong reference: dropping it takes the timer off the manual clock.
    Manual {
        _firing: Arc<Firing>,
    },
}

struct Timer {
    ticking: Ticking,
    repeat: bool,
    /// A firing is waiting for the instance.
    pending: Arc<AtomicBool>,
}

impl Drop for Timer {
    fn drop(&mut self) {
        if let Ticking::Task(task) = &self.ticking {
            task.abort();
        }
    }
}

/// The timers of one instance incarnation; dropping it cancels them all.
pub struct Timers {
    fired: UnboundedSender<Fired>,
    generation: u64,
    next_id: u64,
    active: HashMap<u64, Timer>,
    clock: Clock,
}

impl Timers {
    /// Timers that report to `fired`, tagged with `generation`, counting time on `clock`.
    pub fn new(fired: UnboundedSender<Fired>, generation: u64, clock: Clock) -> Self {
        Self {
            fired,
            generation,
            next_id: 1,
            active: HashMap::new(),
            clock,
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
        let pending = Arc::new(AtomicBool::new(false));
        let firing = Arc::new(Firing {
            tag: Fired {
                generation: self.generation,
                id,
            },
            fired: self.fired.clone(),
            pending: pending.clone(),
        });
        let period = Duration::from_millis(after_ms);
        let ticking = match &self.clock {
            Clock::Real => Ticking::Task(tokio::spawn(async move {
                let start = tokio::time::Instant::now() + period;
                let mut ticks = tokio::time::interval_at(start, period);
                ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    ticks.tick().await;
                    firing.fire();
                    if !repeat || firing.orphaned() {
                        break;
                    }
                }
            })),
            Clock::Manual(clock) => {
                let timer = Scheduled {
                    firing: Arc::downgrade(&firing),
                    period,
                    repeat,
                };
                clock.add(period, timer);
                Ticking::Manual { _firing: firing }
            }
        };
        self.active.insert(
            id,
            Timer {
                ticking,
                repeat,
                pending,
            },
        );
        Ok(id)
    }

    /// Cancels a timer; unknown ids are ignored.
    pub fn clear(&mut self, id: u64) {
        self.active.remove(&id);
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

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::mpsc::unbounded_channel;

    #[tokio::test(start_paused = true)]
    async fn one_shot_fires_once_and_repeat_keeps_firing() {
        let (tx, mut rx) = unbounded_channel();
        let mut timers = Timers::new(tx, 7, Clock::Real);
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
        let mut timers = Timers::new(tx, 1, Clock::Real);
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
    async fn a_manual_clock_fires_only_when_advanced_past_the_due_time() {
        let clock = Arc::new(ManualClock::default());
        let (tx, mut rx) = unbounded_channel();
        let mut timers = Timers::new(tx, 3, Clock::Manual(clock.clone()));
        let once = timers.set(1000, false).expect("valid");
        let every = timers.set(300, true).expect("valid");
        let gone = timers.set(100, true).expect("valid");
        timers.clear(gone);

        assert_eq!(clock.advance(Duration::from_millis(299)), 0);
        assert!(rx.try_recv().is_err());
        assert_eq!(clock.advance(Duration::from_millis(1)), 1);
        let fired = rx.try_recv().expect("due at 300 ms");
        assert_eq!(fired.id, every);
        // Not taken yet: the periods at 600 and 900 ms are skipped, the one-shot fires.
        assert_eq!(clock.advance(Duration::from_millis(700)), 1);
        assert_eq!(rx.try_recv().map(|f| f.id).ok(), Some(once));
        assert!(timers.take_fired(fired));
        // The repeating timer's next period is the first after 1000 ms: 1200.
        assert_eq!(clock.advance(Duration::from_millis(199)), 0);
        assert_eq!(clock.advance(Duration::from_millis(1)), 1);
        let fired = rx.try_recv().expect("due at 1200 ms");
        assert!(timers.take_fired(fired));
        // Dropping the timers takes them off the clock.
        drop(timers);
        assert_eq!(clock.advance(Duration::from_secs(3600)), 0);
    }

    #[tokio::test]
    async fn bad_periods_are_refused() {
        let (tx, _rx) = unbounded_channel();
        let mut timers = Timers::new(tx, 1, Clock::Real);
        assert!(timers.set(0, false).is_err());
        assert!(timers.set(MAX_AFTER_MS + 1, true).is_err());
    }
}
