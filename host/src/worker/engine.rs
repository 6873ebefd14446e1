//! The process's one wasmtime engine, and the clock that enforces event deadlines.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use wasmtime::{Config, Engine};

/// How often the epoch advances; deadlines are counted in these ticks.
pub const EPOCH_TICK: Duration = Duration::from_millis(1);

/// Builds the engine: component model, async host calls, epoch interruption.
pub fn new_engine() -> wasmtime::Result<Engine> {
    let mut config = Config::new();
    config.wasm_component_model(true);
    config.epoch_interruption(true);
    config.cranelift_opt_level(wasmtime::OptLevel::Speed);
    Engine::new(&config)
}

/// Epoch ticks for a deadline, at least one.
pub fn deadline_ticks(deadline: Duration) -> u64 {
    (deadline.as_millis() / EPOCH_TICK.as_millis()).max(1) as u64
}

/// Ticks in a row without guest code after which the ticker slows to [`IDLE_TICK`].
const QUIET_TICKS: u32 = 100;

/// How often the epoch advances while no guest code has run for [`QUIET_TICKS`]: a server
/// at rest wakes 100 times a second, not 1000. The first tick of a call made then may come
/// this late, so its deadline can run one idle tick longer.
const IDLE_TICK: Duration = Duration::from_millis(10);

/// Whether guest code ran since the ticker last looked; calls and the epoch callback note it.
#[derive(Clone, Debug, Default)]
pub struct Activity(Arc<AtomicBool>);

impl Activity {
    /// Notes that guest code runs; a load only, when already noted.
    pub fn note(&self) {
        if !self.0.load(Ordering::Relaxed) {
            self.0.store(true, Ordering::Relaxed);
        }
    }

    fn take(&self) -> bool {
        self.0.swap(false, Ordering::Relaxed)
    }
}

/// Advances the engine's epoch every [`EPOCH_TICK`] on a thread of its own (so a busy async
/// runtime cannot delay a deadline), until dropped.
pub struct EpochTicker {
    _alive: Arc<()>,
    activity: Activity,
}

impl EpochTicker {
    /// Starts ticking `engine`.
    pub fn start(engine: &Engine) -> std::io::Result<Self> {
        let alive = Arc::new(());
        let weak = Arc::downgrade(&alive);
        let engine = engine.clone();
        let activity = Activity::default();
        let seen = activity.clone();
        std::thread::Builder::new()
            .name("epoch-ticker".into())
            .spawn(move || {
                let mut quiet = 0u32;
                while weak.strong_count() > 0 {
                    let pause = if quiet < QUIET_TICKS {
                        EPOCH_TICK
                    } else {
                        IDLE_TICK
                    };
                    std::thread::sleep(pause);
                    engine.increment_epoch();
                    quiet = if seen.take() {
                        0
                    } else {
                        quiet.saturating_add(1)
                    };
                }
            })?;
        Ok(Self {
            _alive: alive,
            activity,
        })
    }

    /// What the instances note their calls in.
    pub fn activity(&self) -> &Activity {
        &self.activity
    }
}
