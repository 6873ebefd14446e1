//! The harness: builds the plugins once, runs the real `switchboard` binary on free ports,
//! and talks to it with real clients.

#![allow(dead_code)] // Each topic file uses a different part of the harness.

pub mod cdp;
pub mod clients;
pub mod http;
pub mod load;
pub mod nats;
pub mod probe;
pub mod process;
pub mod web;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long a server may take to become ready: an 18 MiB Python plugin compiles in 15-30 s
/// alone, much longer while the whole suite shares the 2 cores.
const START_TIMEOUT: Duration = Duration::from_secs(240);

/// How long to wait for something that must happen (a log line, a state): generous, since a
/// loaded machine is slow and a passing test never waits this long.
pub const WAIT: Duration = Duration::from_secs(60);

/// Polls `check` until it holds, failing the test after [`WAIT`]: the way to wait for a state
/// that has no event to wait on.
pub async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !check().await {
        assert!(Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The repository root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("host/ has a parent")
        .to_owned()
}

/// The folder of built plugins, building them (once per test run) with `cargo xtask plugins`,
/// unless `cargo xtask test` built them already (it says so in `SWITCHBOARD_PLUGINS_BUILT`).
pub fn plugins_dir() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        if std::env::var_os("SWITCHBOARD_PLUGINS_BUILT").is_some() {
            return root().join("target/plugins");
        }
        let status = Command::new(env!("CARGO"))
            .args(["xtask", "plugins"])
            .current_dir(root())
            .status()
            .expect("cargo runs");
        assert!(status.success(), "cargo xtask plugins failed");
        root().join("target/plugins")
    })
}

/// `setup` with a compile cache shared by the tests and kept between runs: the JS, Python and
/// Go components take seconds each to compile, then milliseconds to load from the cache.
pub fn cached(setup: Setup) -> Setup {
    let cache = plugins_dir().join(".e2e/cache");
    setup.worker(&format!("cache_dir = {:?}", cache.display().to_string()))
}

/// A test-only plugin of `tests/plugins/NAME` (one that misbehaves on purpose, so it is no
/// example and never lands in target/plugins), built once per test run: with cargo, or with
/// `switchboard build` when the folder has a `package.json`, a `pyproject.toml` or a `go.mod`.
pub fn fixture_bytes(name: &str) -> Vec<u8> {
    static BUILT: Mutex<Vec<String>> = Mutex::new(Vec::new());
    plugins_dir(); // the toolchains are installed, the plugin profile's deps are built
    let source = root().join("tests/plugins").join(name);
    let other = ["package.json", "pyproject.toml", "go.mod"]
        .into_iter()
        .find(|manifest| source.join(manifest).is_file());
    let target_dir = root().join("target/wasm");
    let path = match other {
        Some("go.mod") => target_dir.join(format!("go/{name}.wasm")),
        Some("pyproject.toml") => target_dir.join(format!("python/{name}.wasm")),
        Some(_) => target_dir.join(format!("js/{name}.wasm")),
        None => target_dir.join(format!("wasm32-wasip2/plugin/{name}.wasm")),
    };
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if !built.iter().any(|n| n == name) {
        let mut build = if other.is_some() {
            let mut switchboard = Command::new(env!("CARGO_BIN_EXE_switchboard"));
            switchboard.arg("build").arg(&source).arg("-o").arg(&path);
            switchboard
        } else {
            let mut cargo = Command::new(env!("CARGO"));
            cargo
                .args(["build", "--quiet", "--profile", "plugin"])
                .args(["--target", "wasm32-wasip2", "--target-dir"])
                .arg(&target_dir)
                .arg("-p")
                .arg(format!("switchboard-plugin-{name}"));
            cargo
        };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("the fixtures' folder");
        }
        let status = build.current_dir(root()).status().expect("the build runs");
        assert!(
            status.success(),
            "building the fixture plugin {name} failed"
        );
        built.push(name.to_owned());
    }
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A folder of the built plugins holding only `apps` (shared by the servers that serve the
/// same apps): the host compiles every file of its folder at start, and target/plugins also
/// holds the 2–18 MiB JavaScript, Python and Go plugins, which take seconds each to compile.
/// Each folder is brought up to date once per test run, under a lock, before any server
/// uses it, and a file is only replaced when its content changed: servers watch their
/// folder, and a replaced file would be a hot swap in the middle of a test.
pub fn apps_folder(apps: &[&str]) -> PathBuf {
    static READY: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
    let built = plugins_dir();
    let dir = built.join(".e2e").join(apps.join("+"));
    let mut ready = READY.lock().unwrap_or_else(|e| e.into_inner());
    if ready.contains(&dir) {
        return dir;
    }
    std::fs::create_dir_all(&dir).expect("apps folder");
    for app in apps {
        let name = format!("{app}.wasm");
        let (src, dest) = (built.join(&name), dir.join(&name));
        let Ok(bytes) = std::fs::read(&src) else {
            continue; // a missing plugin: the server reports it
        };
        if std::fs::read(&dest).ok().as_deref() != Some(bytes.as_slice()) {
            // Another test process (the load bench, a second run) may update the same folder.
            let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
            std::fs::write(&tmp, &bytes).expect("copy plugin");
            std::fs::rename(&tmp, &dest).expect("rename plugin");
        }
    }
    ready.push(dir.clone());
    dir
}

/// One `[[listener]]` of a test server; the address is always a free loopback port.
#[derive(Clone, Debug)]
pub struct Listener {
    /// websocket, text or frame.
    pub protocol: &'static str,
    /// The app serving it.
    pub app: String,
    /// Extra TOML lines for this listener (limits, heartbeat).
    pub extra: String,
}

impl Listener {
    /// A listener with defaults.
    pub fn new(protocol: &'static str, app: &str) -> Self {
        Self {
            protocol,
            app: app.to_owned(),
            extra: String::new(),
        }
    }

    /// Adds a TOML line such as `max_message_bytes = 10`.
    pub fn with(mut self, line: &str) -> Self {
        self.extra.push_str(line);
        self.extra.push('\n');
        self
    }
}

/// A test server's configuration.
#[derive(Clone, Debug, Default)]
pub struct Setup {
    /// Its listeners.
    pub listeners: Vec<Listener>,
    /// Extra TOML lines of `[worker]`.
    pub worker: String,
    /// Plugin folder; default: the built plugins.
    pub plugins_dir: Option<PathBuf>,
}

impl Setup {
    /// One listener.
    pub fn one(protocol: &'static str, app: &str) -> Self {
        Self::default().listener(Listener::new(protocol, app))
    }

    /// Adds a listener.
    pub fn listener(mut self, listener: Listener) -> Self {
        self.listeners.push(listener);
        self
    }

    /// Adds a `[worker]` line.
    pub fn worker(mut self, line: &str) -> Self {
        self.worker.push_str(line);
        self.worker.push('\n');
        self
    }

    /// The TOML text.
    pub fn toml(&self) -> String {
        let mut text = String::new();
        for l in &self.listeners {
            text.push_str(&format!(
                "[[listener]]\naddr = \"127.0.0.1:0\"\nprotocol = \"{}\"\napp = \"{}\"\n{}\n",
                l.protocol, l.app, l.extra
            ));
        }
        let dir = match &self.plugins_dir {
            Some(dir) => dir.clone(),
            None => {
                let mut apps: Vec<&str> = self.listeners.iter().map(|l| l.app.as_str()).collect();
                apps.sort_unstable();
                apps.dedup();
                apps_folder(&apps)
            }
        };
        let instances = if self.worker.contains("instances") {
            String::new()
        } else {
            "instances = 2\n".to_owned()
        };
        // One compile cache for the whole run: every server loads every built plugin, and
        // the JavaScript and Python ones take seconds to compile.
        let cache = if self.worker.contains("cache_dir") {
            String::new()
        } else {
            let dir = root().join("target/test-plugin-cache");
            format!("cache_dir = {:?}\n", dir.display().to_string())
        };
        text.push_str(&format!(
            "[worker]\nplugins_dir = {:?}\n{instances}{cache}{}",
            dir.display().to_string(),
            self.worker
        ));
        text
    }

    /// Starts a server and waits until it is ready.
    pub fn start(&self) -> Server {
        Server::start(&self.toml())
    }
}

/// A place in a server's log: what was logged before it is old news to a wait.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct LogMark(usize);

/// A line of a server's log, and where it starts.
#[derive(Clone, Debug)]
pub struct LogLine {
    /// The line, without its newline.
    pub text: String,
    /// Where it starts: everything before it was logged first.
    pub at: LogMark,
}

/// A running `switchboard start` process.
pub struct Server {
    child: Child,
    /// The listeners' addresses, in config order.
    pub addrs: Vec<SocketAddr>,
    log: Arc<Mutex<String>>,
    /// Signalled when the reader has taken the last line of the server's stderr.
    /// (In a mutex so that a `&Server` can be shared with spawned tasks.)
    log_done: Mutex<std::sync::mpsc::Receiver<()>>,
    /// Set at the same moment: nothing more will be logged, so a wait can fail at once.
    log_ended: Arc<std::sync::atomic::AtomicBool>,
    _dir: tempfile::TempDir,
}

impl Server {
    /// Starts the binary with this config text and waits for "switchboard ready".
    pub fn start(config: &str) -> Self {
        Self::start_with_args(config, &[])
    }

    /// Starts `switchboard start -c FILE ARGS…` and waits for "switchboard ready".
    pub fn start_with_args(config: &str, args: &[&str]) -> Self {
        Self::start_with_env(config, args, &[])
    }

    /// Like [`Server::start_with_args`], with these variables added to its environment.
    pub fn start_with_env(config: &str, args: &[&str], env: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("switchboard.toml");
        std::fs::write(&path, config).expect("config written");
        let mut cmd = process::server_command(env!("CARGO_BIN_EXE_switchboard"));
        cmd.args(["start", "-c"])
            .arg(&path)
            .args(args)
            .envs(env.iter().copied());
        Self::spawn(cmd, dir)
    }

    /// Runs `cmd` (a `switchboard` command that ends up serving, such as `start` or `dev`),
    /// logging at info, and waits for "switchboard ready"; `dir` lives as long as the server.
    pub fn spawn(mut cmd: Command, dir: tempfile::TempDir) -> Self {
        let mut child = cmd
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("switchboard starts");
        let log = Arc::new(Mutex::new(String::new()));
        let stderr = child.stderr.take().expect("piped");
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (done_tx, log_done) = std::sync::mpsc::channel();
        let log_ended = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let ended = log_ended.clone();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.split("listening on ").nth(1) {
                    let addr = rest.split_whitespace().next().unwrap_or_default();
                    let _ = ready_tx.send(Some(addr.parse::<SocketAddr>().expect("an address")));
                }
                if line.contains("switchboard ready") {
                    let _ = ready_tx.send(None);
                }
                let mut log = sink.lock().expect("log lock");
                log.push_str(&line);
                log.push('\n');
            }
            ended.store(true, std::sync::atomic::Ordering::SeqCst);
            let _ = done_tx.send(());
        });
        let deadline = Instant::now() + START_TIMEOUT;
        let mut addrs = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match ready_rx.recv_timeout(left) {
                Ok(Some(addr)) => addrs.push(addr),
                Ok(None) => break,
                Err(_) => {
                    let _ = child.kill();
                    panic!(
                        "switchboard did not become ready; its log:\n{}",
                        log.lock().expect("log lock")
                    );
                }
            }
        }
        Server {
            child,
            addrs,
            log,
            log_done: Mutex::new(log_done),
            log_ended,
            _dir: dir,
        }
    }

    /// Its config file.
    pub fn config_path(&self) -> PathBuf {
        self._dir.path().join("switchboard.toml")
    }

    /// `switchboard status --json` of the running server.
    pub fn status_json(&self) -> serde_json::Value {
        let path = self.config_path();
        let out = Command::new(env!("CARGO_BIN_EXE_switchboard"))
            .args(["status", "--json", "-c"])
            .arg(&path)
            .current_dir(std::env::temp_dir())
            .output()
            .expect("status runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("JSON")
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The first listener's address.
    pub fn addr(&self) -> SocketAddr {
        self.addrs[0]
    }

    /// The first listener's WebSocket URL.
    pub fn url(&self) -> String {
        format!("ws://{}/", self.addrs[0])
    }

    /// Everything the server logged so far.
    pub fn log(&self) -> String {
        self.log.lock().expect("log lock").clone()
    }

    /// Whether the server's stderr has ended: it exited, and its log is complete.
    pub fn has_exited(&self) -> bool {
        self.log_ended.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The end of the log so far: a wait from here sees only what is logged after.
    pub fn mark(&self) -> LogMark {
        LogMark(self.log.lock().expect("log lock").len())
    }

    /// The log from its start up to `mark`.
    pub fn log_until(&self, mark: LogMark) -> String {
        self.log.lock().expect("log lock")[..mark.0].to_owned()
    }

    /// The log from `mark` on.
    pub fn log_since(&self, mark: LogMark) -> String {
        self.log.lock().expect("log lock")[mark.0..].to_owned()
    }

    /// Waits for the first line logged after `since` that contains `needle`, and returns it.
    /// Taking the mark before the action that logs it is what makes the wait mean something:
    /// a line that is already in the log from earlier never satisfies it.
    pub async fn wait_for_log_since(&self, since: LogMark, needle: &str) -> LogLine {
        self.wait_for_line_since(since, needle, |line| line.contains(needle))
            .await
    }

    /// Waits for the first line logged after `since` for which `matches` holds; `what`
    /// describes it in the failure.
    pub async fn wait_for_line_since(
        &self,
        since: LogMark,
        what: &str,
        matches: impl Fn(&str) -> bool,
    ) -> LogLine {
        let deadline = Instant::now() + WAIT;
        loop {
            // Read before the scan: if the server had exited, the scan saw its last line.
            let ended = self.has_exited();
            {
                let log = self.log.lock().expect("log lock");
                let mut at = since.0;
                // Marks fall between lines: the reader adds whole lines only.
                for line in log[since.0..].split_inclusive('\n') {
                    let text = line.trim_end_matches('\n');
                    if matches(text) {
                        return LogLine {
                            text: text.to_owned(),
                            at: LogMark(at),
                        };
                    }
                    at += line.len();
                }
            }
            assert!(
                !ended && Instant::now() < deadline,
                "no line logged after the mark is {what:?} (server exited: {ended}):\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until the log holds at least `n` occurrences of `needle`; returns how many.
    pub async fn wait_for_count(&self, needle: &str, n: usize) -> usize {
        let deadline = Instant::now() + WAIT;
        loop {
            let ended = self.has_exited();
            let count = self.log().matches(needle).count();
            if count >= n {
                return count;
            }
            assert!(
                !ended && Instant::now() < deadline,
                "the log showed {needle:?} {count} times, never {n} (server exited: {ended}):\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Sends SIGTERM and waits for the exit status; the log stays readable.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                // The reader thread takes the last lines once it sees the end of stderr.
                let done = self.log_done.lock().unwrap_or_else(|e| e.into_inner());
                let _ = done.recv_timeout(WAIT);
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "switchboard did not stop on SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs the binary to completion with these arguments, in `dir`; returns (code, stderr).
pub fn run_to_exit(args: &[&str], dir: &Path) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect("switchboard runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The bytes of a built plugin.
pub fn plugin_bytes(name: &str) -> Vec<u8> {
    std::fs::read(plugins_dir().join(format!("{name}.wasm"))).expect("plugin built")
}

/// A plugin folder of its own, holding copies of these built plugins.
pub fn plugin_folder(names: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    for name in names {
        std::fs::write(dir.path().join(format!("{name}.wasm")), plugin_bytes(name)).expect("copy");
    }
    dir
}

/// The same component with a custom section appended: identical behaviour, another hash,
/// so it counts as a new version.
pub fn retagged(mut component: Vec<u8>, tag: &str) -> Vec<u8> {
    let name = b"switchboard-test";
    let mut body = vec![name.len() as u8];
    body.extend_from_slice(name);
    body.extend_from_slice(tag.as_bytes());
    component.push(0); // custom section id
    let mut size = body.len();
    loop {
        let byte = (size & 0x7f) as u8;
        size >>= 7;
        component.push(if size == 0 { byte } else { byte | 0x80 });
        if size == 0 {
            break;
        }
    }
    component.extend_from_slice(&body);
    component
}

/// Deploys `bytes` as `dir/name` the recommended way: write a temporary file, then rename.
/// `dir` must be the test's own folder ([`plugin_folder`]): the folders of [`apps_folder`] are
/// shared by every server of the run, and a file written there would hot-swap them all.
pub fn deploy_by_rename(dir: &Path, name: &str, bytes: &[u8]) {
    assert!(
        !dir.starts_with(plugins_dir()),
        "{} is shared by the whole run: deploy into a plugin_folder() of the test's own",
        dir.display()
    );
    let temp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&temp, bytes).expect("write temp");
    std::fs::rename(&temp, dir.join(name)).expect("rename");
}

/// `GET path` from an HTTP server at `addr` (the admin listener): (status code, body).
pub async fn http_get(addr: &str, path: &str) -> (u16, String) {
    let response = http::request(addr, "GET", path, &[], b"").await;
    (response.status, response.body)
}
