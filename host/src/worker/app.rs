//! One app: the version it runs, the versions it can fall back to, and its pool.
//!
//! The current [`Deployment`] is published on a `watch` channel that every instance task
//! follows: a swap is one `send`, and each task moves to the new version between two events,
//! so a client's queued events keep their order across the swap.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use tokio::sync::{RwLock, watch};

use super::plugin::Version;
use super::pool::{Job, Pool, PoolEnv};
use super::stats::AppStats;
use super::unhandled::Unhandled;
use crate::bus::{AppName, ClientId, Event};

/// When a new version is rolled back: more than `max_failures` of its first `window` events
/// failed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RollbackPolicy {
    /// Events a new version is judged on.
    pub window: u32,
    /// Share of them that may fail; 0 turns rollback off.
    pub failure_ratio: f64,
}

/// A version as deployed, with its probation record.
pub struct Deployment {
    /// The code.
    pub version: Arc<Version>,
    probation: Option<Probation>,
}

struct Probation {
    window: u32,
    max_failures: u32,
    seen: AtomicU32,
    failed: AtomicU32,
    tripped: AtomicBool,
}

impl Probation {
    /// Probation under `policy`, or none if rollback is off.
    fn new(policy: RollbackPolicy) -> Option<Self> {
        (policy.failure_ratio > 0.0).then(|| Self {
            window: policy.window,
            max_failures: (f64::from(policy.window) * policy.failure_ratio).floor() as u32,
            seen: AtomicU32::new(0),
            failed: AtomicU32::new(0),
            tripped: AtomicBool::new(false),
        })
    }

    fn record(&self, ok: bool) -> bool {
        if self.seen.fetch_add(1, Ordering::Relaxed) >= self.window || ok {
            return false;
        }
        let failed = self.failed.fetch_add(1, Ordering::Relaxed) + 1;
        failed > self.max_failures && !self.tripped.swap(true, Ordering::Relaxed)
    }
}

impl Deployment {
    /// A version that is not judged: the first one, or one restored by a rollback.
    pub fn trusted(version: Arc<Version>) -> Arc<Self> {
        Arc::new(Self {
            version,
            probation: None,
        })
    }

    /// A new version on probation under `policy`.
    pub fn on_probation(version: Arc<Version>, policy: RollbackPolicy) -> Arc<Self> {
        let probation = Probation::new(policy);
        Arc::new(Self { version, probation })
    }

    /// Records one event's outcome; true exactly once: when the version has failed too often
    /// within its window and must be rolled back.
    pub fn record(&self, ok: bool) -> bool {
        self.probation.as_ref().is_some_and(|p| p.record(ok))
    }

    fn failures(&self) -> (u32, u32) {
        self.probation.as_ref().map_or((0, 0), |p| {
            (
                p.failed.load(Ordering::Relaxed),
                p.seen.load(Ordering::Relaxed),
            )
        })
    }
}

/// A plugin file that was refused, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejected {
    /// The file.
    pub path: PathBuf,
    /// Why it was refused (or rolled back).
    pub reason: String,
    /// When.
    pub at: SystemTime,
}

/// The deployment history of an app; changed only by swaps, rollbacks and rejections.
#[derive(Default)]
struct History {
    previous: Option<Arc<Version>>,
    last_rejected: Option<Rejected>,
}

/// What every instance task of an app can reach: the current deployment and its history.
pub struct AppControl {
    /// The app.
    pub name: AppName,
    /// The app's counters.
    pub stats: AppStats,
    current: watch::Sender<Arc<Deployment>>,
    /// The current version's record of handlers left to the SDK, copied here so that each
    /// event's dispatch reads one atomic instead of taking the deployment's lock.
    unhandled: Unhandled,
    history: Mutex<History>,
    swaps: AtomicU64,
    rollbacks: AtomicU64,
}

impl AppControl {
    /// An app running `version`.
    pub fn new(name: AppName, version: Arc<Version>) -> Self {
        let unhandled = Unhandled::default();
        unhandled.copy(&version.unhandled);
        Self {
            name,
            stats: AppStats::default(),
            unhandled,
            current: watch::Sender::new(Deployment::trusted(version)),
            history: Mutex::default(),
            swaps: AtomicU64::new(0),
            rollbacks: AtomicU64::new(0),
        }
    }

    /// The deployment running now.
    pub fn current(&self) -> Arc<Deployment> {
        self.current.borrow().clone()
    }

    /// What the current version leaves to the SDK's default handlers.
    pub fn unhandled(&self) -> &Unhandled {
        &self.unhandled
    }

    /// Publishes what `deployment`'s instances reported since, if it is still current.
    pub fn publish_unhandled(&self, deployment: &Arc<Deployment>) {
        let _history = self.history();
        if Arc::ptr_eq(&self.current.borrow(), deployment) {
            self.unhandled.copy(&deployment.version.unhandled);
        }
    }

    /// Follows the current deployment.
    pub fn subscribe(&self) -> watch::Receiver<Arc<Deployment>> {
        self.current.subscribe()
    }

    fn history(&self) -> std::sync::MutexGuard<'_, History> {
        self.history.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Makes `version` current; the one it replaces is kept for a rollback.
    pub fn swap(&self, version: Arc<Version>, policy: RollbackPolicy) {
        let mut history = self.history();
        self.unhandled.copy(&version.unhandled);
        let old = self
            .current
            .send_replace(Deployment::on_probation(version, policy));
        history.previous = Some(old.version.clone());
        self.swaps.fetch_add(1, Ordering::Relaxed);
    }

    /// Restores the previous version if `failed` is still current.
    pub fn roll_back(&self, failed: &Arc<Deployment>) {
        let mut history = self.history();
        if !Arc::ptr_eq(&self.current.borrow(), failed) {
            return;
        }
        let (failures, seen) = failed.failures();
        let bad = &failed.version;
        let Some(previous) = history.previous.take() else {
            tracing::error!(
                app = &*self.name,
                version = &*bad.hash,
                "version fails {failures} of its first {seen} events and there is no previous version to roll back to"
            );
            return;
        };
        tracing::error!(
            app = &*self.name,
            version = &*bad.hash,
            restored = &*previous.hash,
            "ROLLBACK: version {} failed {failures} of its first {seen} events; restored version {}",
            bad.hash,
            previous.hash
        );
        self.unhandled.copy(&previous.unhandled);
        self.current.send_replace(Deployment::trusted(previous));
        history.last_rejected = Some(Rejected {
            path: bad.path.clone(),
            reason: format!(
                "rolled back: version {} failed {failures} of its first {seen} events",
                bad.hash
            ),
            at: SystemTime::now(),
        });
        self.rollbacks.fetch_add(1, Ordering::Relaxed);
    }

    /// Records a refused file.
    pub fn reject(&self, rejected: Rejected) {
        self.history().last_rejected = Some(rejected);
    }

    /// The last refused file.
    pub fn last_rejected(&self) -> Option<Rejected> {
        self.history().last_rejected.clone()
    }

    /// Swaps so far.
    pub fn swaps(&self) -> u64 {
        self.swaps.load(Ordering::Relaxed)
    }

    /// Rollbacks so far.
    pub fn rollbacks(&self) -> u64 {
        self.rollbacks.load(Ordering::Relaxed)
    }
}

/// A running app.
pub struct App {
    /// Its deployments and counters.
    pub control: Arc<AppControl>,
    pool: RwLock<Pool>,
}

impl App {
    /// Starts `size` instances of the current version.
    pub fn start(control: Arc<AppControl>, env: Arc<PoolEnv>, size: usize) -> Self {
        let pool = Pool::start(control.clone(), env, size);
        Self {
            control,
            pool: RwLock::new(pool),
        }
    }

    /// Queues a job on the instance that owns `client`.
    pub async fn dispatch(&self, client: ClientId, job: Job) {
        self.pool.read().await.dispatch(client, job).await;
    }

    /// Runs an event at once if its instance is idle and the pool is not being replaced;
    /// else hands it back, for [`App::dispatch`].
    pub fn try_run(&self, event: Event) -> Option<Event> {
        match self.pool.try_read() {
            Ok(pool) => pool.try_run(event),
            Err(_) => Some(event),
        }
    }

    /// Instances in the pool.
    pub async fn instances(&self) -> usize {
        self.pool.read().await.size()
    }

    /// Replaces the pool with one of another size or other limits. New events wait while
    /// the old pool finishes what it has queued, so no client's events are reordered.
    pub async fn restart_pool(&self, env: Arc<PoolEnv>, size: usize) {
        let mut pool = self.pool.write().await;
        pool.stop().await;
        *pool = Pool::start(self.control.clone(), env, size);
    }

    /// Lets every instance finish its queue and run `on-worker-stop`.
    pub async fn stop(&self) {
        self.pool.read().await.stop().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probation(window: u32, failure_ratio: f64) -> Probation {
        Probation::new(RollbackPolicy {
            window,
            failure_ratio,
        })
        .expect("rollback on")
    }

    #[test]
    fn more_than_half_of_the_window_trips_once() {
        let p = probation(100, 0.5);
        let trips: Vec<bool> = (0..60).map(|_| p.record(false)).collect();
        assert_eq!(trips.iter().filter(|&&t| t).count(), 1);
        assert!(trips[50], "the 51st failure trips");
    }

    #[test]
    fn a_zero_ratio_turns_rollback_off() {
        let policy = RollbackPolicy {
            window: 100,
            failure_ratio: 0.0,
        };
        assert!(Probation::new(policy).is_none());
    }

    #[test]
    fn failures_after_the_window_or_at_half_do_not_trip() {
        let p = probation(100, 0.5);
        for i in 0..100 {
            assert!(!p.record(i % 2 == 0));
        }
        for _ in 0..100 {
            assert!(!p.record(false));
        }
    }
}
