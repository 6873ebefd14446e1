//! `switchboard deploy` and cluster-wide releases (issue 9, point 8): one deploy swaps every
//! worker under traffic, a version refused anywhere is refused everywhere, and a file dropped
//! into one worker's folder is released to all of them.

use std::path::Path;
use std::process::Output;

use serde_json::Value;

use crate::support::load::{Load, until_echo_answers};
use crate::support::nats::NatsServer;
use crate::support::{
    Server, Setup, deploy_by_rename, eventually, fixture_bytes, plugin_bytes, plugin_folder,
    retagged,
};

/// A member in `role` serving the bench app on WebSocket, its plugins in `plugins`.
fn member(nats: &NatsServer, role: &str, plugins: &Path) -> Server {
    let mut setup = Setup::one("websocket", "bench");
    setup.plugins_dir = Some(plugins.to_owned());
    let text = format!(
        "{}\n[cluster]\nnats_url = \"{}\"\nrole = \"{role}\"\n",
        setup.toml(),
        nats.url
    );
    Server::start(&text)
}

/// `switchboard deploy ARGS… -c CONFIG`, run to its exit off the async threads.
async fn deploy(config: &Path, args: &[&str]) -> Output {
    let config = config.to_owned();
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
            .arg("deploy")
            .args(&args)
            .arg("-c")
            .arg(&config)
            .output()
            .expect("deploy runs")
    })
    .await
    .expect("deploy finished")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The first 12 hex digits of a file's SHA-256: its version as status shows it.
fn version_of(bytes: &[u8]) -> String {
    switchboard::bus::sha256_hex(bytes)[..12].to_owned()
}

/// `status --json` of a member.
fn status(server: &Server) -> Value {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["status", "--json", "-c"])
        .arg(server.config_path())
        .output()
        .expect("status runs");
    assert!(out.status.success(), "{}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("JSON")
}

/// The version of `bench` each live worker runs, as `server` hears it.
fn worker_versions(server: &Server) -> Vec<String> {
    let status = status(server);
    status["cluster"]["workers"]
        .as_array()
        .expect("workers")
        .iter()
        .map(|w| w["versions"]["bench"].as_str().unwrap_or("none").to_owned())
        .collect()
}

/// A NATS server with JetStream, two gateways and two workers serving bench.
struct Cluster {
    gateways: [Server; 2],
    workers: [Server; 2],
    _plugins: tempfile::TempDir,
    nats: NatsServer,
}

impl Cluster {
    async fn start() -> Self {
        let nats = NatsServer::start();
        let plugins = plugin_folder(&["bench"]);
        let workers = [
            member(&nats, "worker", plugins.path()),
            member(&nats, "worker", plugins.path()),
        ];
        let gateways = [
            member(&nats, "gateway", plugins.path()),
            member(&nats, "gateway", plugins.path()),
        ];
        for gateway in &gateways {
            gateway.wait_for_count("serves bench", 2).await;
        }
        Self {
            gateways,
            workers,
            _plugins: plugins,
            nats,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_deploy_swaps_every_worker_under_traffic_and_loses_no_echo() {
    let cluster = Cluster::start().await;
    let urls: Vec<String> = cluster.gateways.iter().map(Server::url).collect();
    let loads = [
        Load::start(&urls[0], 30).await,
        Load::start(&urls[1], 30).await,
    ];
    for load in &loads {
        load.advanced_since(&[0; 30]).await;
    }

    let echo = plugin_bytes("echo");
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("new-echo.wasm");
    std::fs::write(&file, &echo).expect("written");
    let out = deploy(
        &cluster.gateways[0].config_path(),
        &[file.to_str().expect("UTF-8"), "--app", "bench"],
    )
    .await;
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("to 2 live workers"), "{stdout}");
    assert!(
        stdout.contains("deployed: every worker runs version"),
        "{stdout}"
    );

    // Clients of both gateways reach the new version, and none lost or reordered an echo.
    for url in &urls {
        let mut checker = crate::support::clients::Ws::connect(url).await;
        until_echo_answers(&mut checker).await;
    }
    for load in loads {
        load.advanced_since(&load.progress()).await;
        load.finish().await;
    }
    let new = version_of(&echo);
    eventually("every worker shows the new version in status", async || {
        worker_versions(&cluster.gateways[1]) == [new.clone(), new.clone()]
    })
    .await;
    for worker in &cluster.workers {
        assert_eq!(worker.log().matches("swapping in a new version").count(), 1);
    }
}

#[tokio::test]
async fn a_version_refused_by_its_canary_is_refused_on_every_worker() {
    let cluster = Cluster::start().await;
    let old = version_of(&plugin_bytes("bench"));
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("bench.wasm");
    std::fs::write(&file, fixture_bytes("faulty")).expect("written");
    let out = deploy(
        &cluster.workers[1].config_path(),
        &[file.to_str().expect("UTF-8")],
    )
    .await;
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("refused: plugin"), "{stdout}");
    assert!(
        text(&out.stderr).contains("every worker returns to the previous version"),
        "{}",
        text(&out.stderr)
    );
    for worker in &cluster.workers {
        assert!(!worker.log().contains("swapping in"), "{}", worker.log());
    }
    assert_eq!(
        worker_versions(&cluster.gateways[0]),
        [old.clone(), old.clone()]
    );
    let set_back = cluster
        .workers
        .iter()
        .filter(|w| w.log().contains("release rolled back on every worker"))
        .count();
    assert_eq!(set_back, 1, "exactly one worker sets the release back");

    // The release is the old version again: a worker starting now with another version in
    // its folder follows the cluster, not its folder.
    let other = plugin_folder(&[]);
    std::fs::write(
        other.path().join("bench.wasm"),
        retagged(plugin_bytes("bench"), "stale"),
    )
    .expect("written");
    let late = member(&cluster.nats, "worker", other.path());
    eventually("the late worker runs the cluster's release", async || {
        worker_versions(&cluster.gateways[0]) == [old.clone(), old.clone(), old.clone()]
    })
    .await;
    assert!(!late.log().contains("first release of the app"));
}

#[tokio::test]
async fn a_file_dropped_into_one_workers_folder_is_released_to_every_worker() {
    let nats = NatsServer::start();
    let shared = plugin_folder(&["bench"]);
    let own = plugin_folder(&["bench"]);
    let first = member(&nats, "worker", own.path());
    let second = member(&nats, "worker", shared.path());
    let gateway = member(&nats, "gateway", shared.path());
    gateway.wait_for_count("serves bench", 2).await;

    let retagged = retagged(plugin_bytes("bench"), "dropped");
    deploy_by_rename(own.path(), "bench.wasm", &retagged);
    let new = version_of(&retagged);
    eventually("both workers run the dropped version", async || {
        worker_versions(&gateway) == [new.clone(), new.clone()]
    })
    .await;
    assert!(first.log().contains("plugin released to every worker"));
    assert!(second.log().contains("swapping in a new version"));
}

#[tokio::test]
async fn without_a_cluster_deploy_writes_the_folder_and_reports_the_swap() {
    let plugins = plugin_folder(&["bench"]);
    let mut setup = Setup::one("websocket", "bench");
    setup.plugins_dir = Some(plugins.path().to_owned());
    let server = setup.start();
    let dir = tempfile::tempdir().expect("temp dir");
    let good = dir.path().join("bench.wasm");
    let bytes = retagged(plugin_bytes("bench"), "deployed");
    std::fs::write(&good, &bytes).expect("written");
    let out = deploy(&server.config_path(), &[good.to_str().expect("UTF-8")]).await;
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.contains(&format!("the server runs version {}", version_of(&bytes))),
        "{stdout}"
    );
    assert_eq!(
        std::fs::read(plugins.path().join("bench.wasm")).expect("read"),
        bytes
    );

    let bad = dir.path().join("faulty.wasm");
    std::fs::write(&bad, fixture_bytes("faulty")).expect("written");
    let out = deploy(
        &server.config_path(),
        &[bad.to_str().expect("UTF-8"), "--app", "bench"],
    )
    .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("was refused"),
        "{}",
        text(&out.stderr)
    );

    // The refused file does not stay in the folder, where the next start would refuse it.
    assert_eq!(
        std::fs::read(plugins.path().join("bench.wasm")).expect("read"),
        bytes
    );

    let out = deploy(
        &server.config_path(),
        &[good.to_str().expect("UTF-8"), "--app", "no/such"],
    )
    .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("is not an app name"));
}
