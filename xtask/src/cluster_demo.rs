//! `cargo xtask cluster-demo`: the chat demo served by a cluster on this machine: a NATS
//! server, two gateways (127.0.0.1:8080 and :8081) and two workers, each its own process
//! with its own config and log under `target/cluster-demo/`.

use std::fs;
use std::path::Path;
use std::process::{Child, Command, ExitCode, Stdio};

use anyhow::{Context as _, Result};

/// Where the NATS server of the demo listens.
const NATS_ADDR: &str = "127.0.0.1:4222";

/// The members: name, role, the gateway's address.
const MEMBERS: [(&str, &str, &str); 4] = [
    ("gateway-1", "gateway", "127.0.0.1:8080"),
    ("gateway-2", "gateway", "127.0.0.1:8081"),
    ("worker-1", "worker", "127.0.0.1:8080"),
    ("worker-2", "worker", "127.0.0.1:8080"),
];

/// The config of one member. Workers name the same listener (never bound by them) so they
/// know which app to load.
fn config(root: &Path, role: &str, addr: &str) -> String {
    let plugins = root.join(super::DEMO_PLUGINS);
    let cache = root.join("target/plugin-cache");
    format!(
        "[[listener]]\naddr = \"{addr}\"\nprotocol = \"websocket\"\napp = \"chat\"\n\n\
         [worker]\nplugins_dir = {:?}\ncache_dir = {:?}\n\n\
         [cluster]\nnats_url = \"nats://{NATS_ADDR}\"\nrole = \"{role}\"\n",
        plugins.display().to_string(),
        cache.display().to_string(),
    )
}

/// Starts everything, then waits: Ctrl-C reaches every process of the terminal's group, and
/// each stops cleanly.
pub fn run(root: &Path, nats_server: &Path, switchboard: &Path) -> Result<ExitCode> {
    let dir = root.join("target/cluster-demo");
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let log = |name: &str| -> Result<fs::File> {
        let path = dir.join(format!("{name}.log"));
        fs::File::create(&path).with_context(|| format!("creating {}", path.display()))
    };
    let (host, port) = NATS_ADDR.split_once(':').context("NATS address")?;
    let mut children: Vec<(String, Child)> = Vec::new();
    let nats_log = log("nats-server")?;
    // JetStream holds the cluster's plugin releases (`switchboard deploy`).
    let nats = Command::new(nats_server)
        .args(["-a", host, "-p", port, "-js", "-sd"])
        .arg(dir.join("jetstream"))
        .stdin(Stdio::null())
        .stdout(nats_log.try_clone()?)
        .stderr(nats_log)
        .spawn()
        .with_context(|| format!("cannot run {}", nats_server.display()))?;
    children.push(("nats-server".into(), nats));
    for (name, role, addr) in MEMBERS {
        let member_dir = dir.join(name);
        fs::create_dir_all(&member_dir)?;
        let path = member_dir.join("switchboard.toml");
        fs::write(&path, config(root, role, addr))
            .with_context(|| format!("writing {}", path.display()))?;
        let out = log(name)?;
        let child = Command::new(switchboard)
            .arg("start")
            .arg("-c")
            .arg(&path)
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .with_context(|| format!("cannot run {}", switchboard.display()))?;
        children.push((name.into(), child));
    }
    println!();
    println!("The chat demo runs on a cluster: NATS on {NATS_ADDR}, gateways on");
    println!("ws://127.0.0.1:8080 and ws://127.0.0.1:8081, two workers; logs and configs in");
    println!(
        "{}. Open {} twice, point one",
        dir.display(),
        root.join("plugins/chat/web/index.html").display()
    );
    println!("page at each gateway, `/join lobby` in both and chat across gateways.");
    println!("Ctrl-C stops every process.");
    for (name, child) in &mut children {
        pid_line(name, child);
    }
    let mut failed = false;
    for (name, mut child) in children {
        let status = child
            .wait()
            .with_context(|| format!("waiting for {name}"))?;
        if !status.success() {
            eprintln!("{name} ended: {status}; see its log in {}", dir.display());
            failed = true;
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn pid_line(name: &str, child: &Child) {
    println!("  {name:<12} pid {}", child.id());
}
