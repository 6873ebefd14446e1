//! `switchboard deploy FILE.wasm [--app NAME]`: makes a plugin file the running version of
//! its app and says how it went. In a cluster the file goes to the release store and every
//! live worker reports; in the embedded process it goes into the plugin folder and the
//! running server's status tells the outcome.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;

use super::Failure;
use super::socket::{self, Request, Response};
use crate::bus::nats::releases::{Outcome, Releases};
use crate::bus::nats::{self, Node, peers};
use crate::bus::sha256_hex;
use crate::config::{ClusterConfig, Config, app_of_file};

/// How long a deploy waits for every worker (or the local server) to report: compiling a
/// large plugin takes seconds on a small machine.
const REPORT_TIMEOUT: Duration = Duration::from_secs(180);

/// Deploys `file` as app `app` (default: the file's stem).
pub(super) fn run(config: &Config, file: &Path, app: Option<&str>) -> Result<(), Failure> {
    let app = app_of_file(file, app).map_err(|name| {
        Failure::usage(format!(
            "{name:?} is not an app name (letters, digits, '-' and '_'); name it with --app"
        ))
    })?;
    let bytes = std::fs::read(file)
        .map_err(|e| Failure::usage(format!("cannot read {}: {e}", file.display())))?;
    if !bytes.starts_with(b"\0asm") {
        return Err(Failure::usage(format!(
            "{} is not a WebAssembly file",
            file.display()
        )));
    }
    match &config.cluster {
        Some(cluster) => {
            let runtime = tokio::runtime::Runtime::new()
                .map_err(|e| Failure::other(format!("cannot start the async runtime: {e}")))?;
            runtime.block_on(to_cluster(cluster, &app, &bytes))
        }
        None => to_folder(config, &app, &bytes),
    }
}

/// Publishes the version and waits until every live worker ran or refused it.
async fn to_cluster(cluster: &ClusterConfig, app: &str, bytes: &[u8]) -> Result<(), Failure> {
    let events = Arc::new(nats::ConnectionEvents::default());
    let client = nats::connect(cluster, "switchboard deploy", events)
        .await
        .map_err(Failure::usage)?;
    let releases = Releases::open(client.clone(), &cluster.prefix)
        .await
        .map_err(Failure::other)?;
    let mut reports = Box::pin(releases.reports().await.map_err(Failure::other)?);
    // Listen to heartbeats for one period and a half: every live worker beats in that time.
    let node = Node::new(client, cluster, None, None);
    let heartbeats = node.start_heartbeats().await.map_err(Failure::other)?;
    tokio::time::sleep(peers::PERIOD * 3 / 2).await;
    let workers: Vec<u32> = node.live_workers().into_iter().map(|(w, _)| w).collect();
    heartbeats.abort();

    let sha = releases.publish(app, bytes).await.map_err(Failure::other)?;
    let version = &sha[..12];
    println!(
        "released app {app} version {version} ({} bytes) to {} live workers",
        bytes.len(),
        workers.len()
    );
    if workers.is_empty() {
        println!("no worker is live: each worker runs it when it starts");
        return Ok(());
    }
    let mut outcomes: BTreeMap<u32, Outcome> = BTreeMap::new();
    let deadline = Instant::now() + REPORT_TIMEOUT;
    while outcomes.len() < workers.len() {
        let report = tokio::time::timeout_at(deadline.into(), reports.next()).await;
        let Ok(Some(report)) = report else { break };
        if &*report.app != app || report.sha256 != sha || !workers.contains(&report.worker) {
            continue;
        }
        match &report.outcome {
            Outcome::Running => println!("  worker {:08x}: running {version}", report.worker),
            Outcome::Refused { reason } => {
                println!("  worker {:08x}: refused: {reason}", report.worker)
            }
        }
        outcomes.insert(report.worker, report.outcome);
    }
    let refused = outcomes
        .values()
        .any(|o| matches!(o, Outcome::Refused { .. }));
    if refused {
        return Err(Failure::other(format!(
            "version {version} of app {app} was refused: every worker returns to the previous version"
        )));
    }
    let silent: Vec<String> = workers
        .iter()
        .filter(|w| !outcomes.contains_key(w))
        .map(|w| format!("{w:08x}"))
        .collect();
    if !silent.is_empty() {
        return Err(Failure::other(format!(
            "no report within {} s from workers {}: see their logs",
            REPORT_TIMEOUT.as_secs(),
            silent.join(", ")
        )));
    }
    println!("deployed: every worker runs version {version} of app {app}");
    Ok(())
}

/// Puts the version into the plugin folder (whole, by rename) and, if the server runs,
/// waits until its status shows the version running or refused.
fn to_folder(config: &Config, app: &str, bytes: &[u8]) -> Result<(), Failure> {
    let dir = &config.worker.plugins_dir;
    let path = dir.join(format!("{app}.wasm"));
    let previous = std::fs::read(&path).ok();
    let write = |bytes: &[u8]| {
        let partial = dir.join(format!(".{app}.wasm.partial"));
        std::fs::write(&partial, bytes)
            .and_then(|()| std::fs::rename(&partial, &path))
            .map_err(|e| Failure::other(format!("cannot write {}: {e}", path.display())))
    };
    write(bytes)?;
    let version = &sha256_hex(bytes)[..12];
    println!("wrote {} (version {version})", path.display());
    if super::process::running(&config.run).is_none() {
        println!("the server is not running: it loads this version when it starts");
        return Ok(());
    }
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let deadline = Instant::now() + REPORT_TIMEOUT;
    while Instant::now() < deadline {
        let status = match socket::call(&config.run.socket(), &Request::Status) {
            Ok(Response::Status(status)) => status,
            Ok(other) => return Err(super::unexpected(other)),
            Err(e) => return Err(Failure::other(e)),
        };
        if let Some(view) = status.apps.iter().find(|a| a.name == app) {
            if view.version == version {
                println!("deployed: the server runs version {version} of app {app}");
                return Ok(());
            }
            if let Some(rejected) = &view.last_rejected
                && rejected.at >= since
                && Path::new(&rejected.path) == path
            {
                // The running version's file goes back, so the next start does not refuse
                // the folder.
                if let Some(previous) = &previous {
                    write(previous)?;
                }
                return Err(Failure::other(format!(
                    "version {version} of app {app} was refused, {} keeps serving: {}",
                    view.version, rejected.reason
                )));
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(Failure::other(format!(
        "the server did not take version {version} within {} s: see its log",
        REPORT_TIMEOUT.as_secs()
    )))
}
