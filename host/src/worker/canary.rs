//! The trial a new version passes before it serves: one throwaway instance runs
//! `on-worker-start` and `on-worker-stop` on the plugin threads, against a stand-in for the
//! gateways that records what it is asked and discards it, so a refused version never
//! reached a client, and an accepted one greets them only from its real instances. Its
//! key-value store is a scratch one, empty and thrown away with it, for the same reason.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;

use super::capabilities::kv::Scratch;
use super::capabilities::{Grants, KvBackend};
use super::instance::Instance;
use super::plugin::{PluginError, Version};
use super::pool::PoolEnv;
use super::timers::Timers;
use crate::bus::{AppName, BusError, Command, Gateways, Query, Reply};

/// Runs the trial of `version` for `app`; any trap, overrun or failed instantiation refuses it.
pub async fn rehearse(
    app: AppName,
    version: Arc<Version>,
    env: Arc<PoolEnv>,
) -> Result<(), PluginError> {
    let path = version.path.clone();
    let refuse = |reason: String| PluginError::Canary {
        path: path.clone(),
        reason,
    };
    let guests = env.guests.clone();
    let trial = guests.spawn(async move {
        let stage = Arc::new(Stage::new(app.clone()));
        let (fired, _) = tokio::sync::mpsc::unbounded_channel();
        let gateways: Arc<dyn Gateways> = stage.clone();
        let grants = Grants {
            kv: KvBackend::custom(Arc::new(Scratch::default())),
            ..env.grants.clone()
        };
        let timers = Timers::new(fired, 0, env.clock.clone());
        let mut canary = Instance::new(&version, app, &env.limits, gateways, timers, &grants)
            .await
            .map_err(|e| format!("cannot instantiate: {e:#}"))?;
        canary
            .start(0)
            .await
            .map_err(|e| format!("on-worker-start failed: {e}"))?;
        canary
            .stop(0)
            .await
            .map_err(|e| format!("on-worker-stop failed: {e}"))?;
        stage.report();
        Ok::<(), String>(())
    });
    match trial.await {
        Ok(outcome) => outcome.map_err(refuse),
        Err(e) => Err(refuse(format!("the trial did not finish: {e}"))),
    }
}

/// The gateways as a canary sees them: nobody is connected, and every command is counted
/// and dropped.
struct Stage {
    app: AppName,
    commands: AtomicU64,
}

impl Stage {
    fn new(app: AppName) -> Self {
        Self {
            app,
            commands: AtomicU64::new(0),
        }
    }

    fn report(&self) {
        let commands = self.commands.load(Ordering::Relaxed);
        if commands > 0 {
            tracing::debug!(
                app = &*self.app,
                commands,
                "the canary's commands were discarded"
            );
        }
    }
}

#[async_trait]
impl Gateways for Stage {
    async fn command(&self, _app: &str, command: Command) -> Result<(), BusError> {
        self.commands.fetch_add(1, Ordering::Relaxed);
        tracing::trace!(app = &*self.app, ?command, "canary command discarded");
        Ok(())
    }

    async fn query(&self, _app: &str, query: Query) -> Result<Reply, BusError> {
        Ok(Reply::nobody(&query))
    }
}
