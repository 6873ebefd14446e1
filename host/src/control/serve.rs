//! The embedded host: gateway and worker host in one process, joined by direct calls.

use std::sync::Arc;
use std::time::Duration;

use crate::bus::{GatewayId, Gateways, Workers};
use crate::config::Config;
use crate::gateway::{Gateway, GatewayError};
use crate::worker::{WorkerError, WorkerHost};

/// How long clients get to close after a stop is requested.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Why the server stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// It could not start; the user must fix something (exit code 2).
    #[error(transparent)]
    Start(StartError),
    /// Waiting for a stop signal failed.
    #[error("cannot listen for stop signals: {0}")]
    Signal(std::io::Error),
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A listener could not be bound.
    #[error(transparent)]
    Gateway(#[from] GatewayError),
    /// The plugins could not be loaded.
    #[error(transparent)]
    Worker(#[from] WorkerError),
}

/// Serves until Ctrl-C or SIGTERM, then stops cleanly: clients get close frames, instances
/// get `on-worker-stop`.
pub async fn run(config: Config) -> Result<(), ServeError> {
    let start = |e: StartError| ServeError::Start(e);
    let gateway = Gateway::new(GatewayId::random());
    // Bind first so a port in use is reported before plugins are compiled; connections wait
    // in the backlog until the workers are ready.
    let listeners = gateway
        .bind(&config.listeners)
        .await
        .map_err(|e| start(e.into()))?;
    let gateways: Arc<dyn Gateways> = gateway.clone();
    let workers = WorkerHost::start(&config, gateways)
        .await
        .map_err(|e| start(e.into()))?;
    let addrs: Vec<_> = listeners.iter().map(|l| l.local_addr()).collect();
    gateway.serve(listeners, workers.clone() as Arc<dyn Workers>);
    for (addr, l) in addrs.iter().zip(&config.listeners) {
        tracing::info!("listening on {addr} ({}, app {})", l.protocol.name(), l.app);
    }
    tracing::info!(gateway = %gateway.id(), "switchboard ready");

    stop_signal().await.map_err(ServeError::Signal)?;
    tracing::info!("stopping: closing clients");
    gateway.shutdown(SHUTDOWN_GRACE).await;
    tracing::info!("stopping: retiring plugin instances");
    workers.shutdown().await;
    tracing::info!("stopped");
    Ok(())
}

/// Waits for Ctrl-C or SIGTERM.
async fn stop_signal() -> std::io::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result,
        _ = term.recv() => Ok(()),
    }
}
