//! Operations against a real daemon: start -d, status, reload, stop, the console, metrics.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::support::clients::Ws;
use crate::support::{WAIT, plugin_bytes, plugin_folder};

/// A config in a folder of its own, with its own plugins and run directory. Its listener and
/// admin ports are chosen by the OS (port 0) and read back from `status --json` once it runs.
struct Site {
    dir: tempfile::TempDir,
    plugins: tempfile::TempDir,
}

impl Site {
    fn new() -> Self {
        let site = Self {
            dir: tempfile::tempdir().expect("temp dir"),
            plugins: plugin_folder(&["echo"]),
        };
        site.write_config("ping_interval_ms = 25000");
        site
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("switchboard.toml")
    }

    fn write_config(&self, extra_listener_line: &str) {
        let text = format!(
            "[[listener]]\naddr = \"127.0.0.1:0\"\nprotocol = \"websocket\"\napp = \"echo\"\n{extra_listener_line}\n\
             [worker]\nplugins_dir = {:?}\ninstances = 2\n\
             [admin]\naddr = \"127.0.0.1:0\"\n",
            self.plugins.path().display().to_string(),
        );
        std::fs::write(self.config(), text).expect("config written");
    }

    /// The running daemon's WebSocket URL, as it reports its bound listener.
    fn url(&self) -> String {
        let status = self.status();
        let addr = status["listeners"][0]["addr"].as_str().expect("a listener");
        format!("ws://{addr}/")
    }

    /// The running daemon's admin address.
    fn admin(&self) -> String {
        let status = self.status();
        status["admin_addr"].as_str().expect("admin on").to_owned()
    }

    /// Runs `switchboard ARGS -c CONFIG`; returns (exit code, stdout, stderr).
    fn run(&self, args: &[&str]) -> (Option<i32>, String, String) {
        let out = Command::new(env!("CARGO_BIN_EXE_switchboard"))
            .args(args)
            .arg("-c")
            .arg(self.config())
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .output()
            .expect("switchboard runs");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn ok(&self, args: &[&str]) -> String {
        let (code, out, err) = self.run(args);
        assert_eq!(code, Some(0), "{args:?}: {out}{err}");
        out
    }

    fn status(&self) -> Value {
        serde_json::from_str(&self.ok(&["status", "--json"])).expect("status JSON")
    }

    fn pid_file(&self) -> PathBuf {
        self.dir.path().join("run/switchboard.pid")
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        let _ = self.run(&["stop", "-f"]);
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.expect("task")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemon_status_reload_and_graceful_stop() {
    let site = std::sync::Arc::new(Site::new());
    let s = site.clone();
    let out = blocking(move || s.ok(&["start", "-d"])).await;
    assert!(out.contains("started (pid"), "{out}");
    let s = site.clone();
    let (url, admin) = blocking(move || (s.url(), s.admin())).await;
    // It accepts clients as soon as start -d returns.
    let mut a = Ws::connect(&url).await;
    let mut b = Ws::connect(&url).await;
    a.send_text("hi").await;
    assert_eq!(a.recv_text().await, "hi");

    let s = site.clone();
    let (code, _, err) = blocking(move || s.run(&["start", "-d"])).await;
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("already running (pid"), "{err}");

    let s = site.clone();
    let status = blocking(move || s.status()).await;
    assert_eq!(status["clients"], 2);
    assert_eq!(status["listeners"][0]["clients"], 2);
    assert_eq!(status["listeners"][0]["protocol"], "websocket");
    assert_eq!(status["apps"][0]["name"], "echo");
    assert_eq!(status["apps"][0]["instances"], 2);
    assert!(status["rss_bytes"].as_u64().is_some_and(|n| n > 0));
    let s = site.clone();
    let human = blocking(move || s.ok(&["status"])).await;
    assert!(
        human.contains("LISTENER") && human.contains("echo"),
        "{human}"
    );

    // /metrics and /health on the admin address.
    let metrics = http_get(&admin, "/metrics").await;
    assert!(
        metrics.contains("# TYPE switchboard_connections gauge"),
        "{metrics}"
    );
    let connections = metrics
        .lines()
        .find(|l| l.starts_with("switchboard_connections{"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<u64>().ok());
    assert_eq!(connections, Some(2), "{metrics}");
    assert!(metrics.contains("switchboard_event_duration_seconds_bucket{app=\"echo\""));
    assert_eq!(http_get(&admin, "/health").await.trim(), "ok");

    // Reload: a new plugin version and a new instance count; clients stay connected.
    std::fs::write(site.plugins.path().join("echo.wasm"), plugin_bytes("bench"))
        .expect("new version");
    let text = std::fs::read_to_string(site.config()).expect("config");
    let text = text
        .replace("instances = 2", "instances = 3")
        .replace("ping_interval_ms = 25000", "ping_interval_ms = 20000");
    std::fs::write(site.config(), text).expect("write");
    let s = site.clone();
    let out = blocking(move || s.ok(&["reload"])).await;
    assert!(out.contains("worker.instances: 2 -> 3"), "{out}");
    assert!(out.contains("ping_interval_ms 25000 -> 20000"), "{out}");
    let s = site.clone();
    let status = blocking(move || s.status()).await;
    assert_eq!(status["apps"][0]["instances"], 3);
    assert_eq!(status["clients"], 2);
    a.send_text("all:everyone").await;
    assert_eq!(a.recv_text().await, "everyone", "the bench version answers");
    assert_eq!(b.recv_text().await, "everyone");

    // A graceful stop sends close frames to connected clients.
    let s = site.clone();
    let out = blocking(move || s.ok(&["stop"])).await;
    assert!(out.contains("stopped"), "{out}");
    assert_eq!(a.closed().await.map(|(code, _)| code), Some(1001));
    assert!(!site.pid_file().exists());
    let s = site.clone();
    let (code, _, err) = blocking(move || s.run(&["status"])).await;
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("not running"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forced_stop_and_stale_pid_file() {
    let site = std::sync::Arc::new(Site::new());
    let s = site.clone();
    blocking(move || s.ok(&["start", "-d"])).await;
    let pid: u32 = std::fs::read_to_string(site.pid_file())
        .expect("pid file")
        .trim()
        .parse()
        .expect("a pid");
    let s = site.clone();
    let out = blocking(move || s.ok(&["stop", "-f"])).await;
    assert!(out.contains("killed"), "{out}");
    // Gone, or a zombie waiting for whichever process adopted the daemon to reap it.
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.trim_start().chars().next());
    assert!(matches!(state, None | Some(Some('Z'))), "{stat}");

    // A pid file whose process is gone is stale: start cleans it and runs.
    std::fs::write(site.pid_file(), "4194305\n").expect("stale pid file");
    let s = site.clone();
    let (code, _, err) = blocking(move || s.run(&["start", "-d"])).await;
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("stale pid file"), "{err}");
    let s = site.clone();
    blocking(move || s.ok(&["stop"])).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_answers_help_status_and_exit() {
    let site = std::sync::Arc::new(Site::new());
    let s = site.clone();
    blocking(move || s.ok(&["start", "-d"])).await;
    let config = site.config();
    let (status, screen) = blocking(move || {
        // `script` gives the console a real terminal, as a person would have.
        let command = format!(
            "{} console -c {}",
            env!("CARGO_BIN_EXE_switchboard"),
            config.display()
        );
        let mut child = Command::new("script")
            .args(["-qfec", &command, "/dev/null"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("script runs");
        let mut stdin = child.stdin.take().expect("piped");
        let mut stdout = child.stdout.take().expect("piped");
        let screen = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let sink = screen.clone();
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .expect("screen lock")
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        // Each line is typed once the console has answered the one before, as a person would.
        for (line, answer) in [
            ("help", "stop [-f]"),
            ("frobnicate", "unknown command `frobnicate`"),
            ("status", "LISTENER"),
        ] {
            writeln!(stdin, "{line}").expect("typed");
            let deadline = std::time::Instant::now() + WAIT;
            while !screen.lock().expect("screen lock").contains(answer) {
                assert!(
                    std::time::Instant::now() < deadline,
                    "the console never answered {line:?} with {answer:?}:\n{}",
                    screen.lock().expect("screen lock")
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        writeln!(stdin, "exit").expect("typed");
        drop(stdin);
        let status = child.wait().expect("console ends");
        reader.join().expect("reader");
        let screen = screen.lock().expect("screen lock").clone();
        (status, screen)
    })
    .await;
    assert!(status.success(), "{screen}");
    assert!(screen.contains("console. Type `help`"), "{screen}");
    assert!(
        screen.contains("stop [-f]"),
        "help lists the commands: {screen}"
    );
    assert!(screen.contains("unknown command `frobnicate`"), "{screen}");
    assert!(screen.contains("LISTENER"), "status printed: {screen}");
    let s = site.clone();
    blocking(move || s.ok(&["stop"])).await;
}

/// `GET path` on the admin listener; it must answer 200.
async fn http_get(addr: &str, path: &str) -> String {
    let (status, body) = crate::support::http_get(addr, path).await;
    assert_eq!(status, 200, "{path}: {body}");
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemons_log_is_rotated_past_its_size_keeping_log_keep_files() {
    let site = std::sync::Arc::new(Site {
        dir: tempfile::tempdir().expect("temp dir"),
        plugins: plugin_folder(&["probe"]),
    });
    let text = format!(
        "[[listener]]\naddr = \"127.0.0.1:0\"\nprotocol = \"websocket\"\napp = \"probe\"\n\
         [worker]\nplugins_dir = {:?}\ninstances = 1\n\
         [run]\nlog_max_mib = 1\nlog_keep = 2\n",
        site.plugins.path().display().to_string(),
    );
    std::fs::write(site.config(), text).expect("config written");
    let s = site.clone();
    blocking(move || s.ok(&["start", "-d"])).await;
    let mut probe = crate::support::probe::Probe::connect(&site.url()).await;
    let log = site.dir.path().join("run/switchboard.log");
    let old = |n: u32| site.dir.path().join(format!("run/switchboard.log.{n}"));
    let line = "x".repeat(8000);
    // Three times over a MiB of plugin log lines, each followed by its rotation: the newest
    // old file is then another file (inode) than before.
    use std::os::unix::fs::MetadataExt;
    let inode = |n: u32| std::fs::metadata(old(n)).ok().map(|m| m.ino());
    for round in 1..=3u32 {
        let before = inode(1);
        for _ in 0..150 {
            probe
                .ok("log", serde_json::json!({"level": "info", "message": line}))
                .await;
        }
        crate::support::eventually("the log is rotated", async || {
            inode(1).is_some() && inode(1) != before
        })
        .await;
        let newest = std::fs::metadata(old(1)).expect("switchboard.log.1").len();
        assert!(newest > 1 << 20, "round {round}: {newest} bytes");
        if round >= 2 {
            assert_eq!(inode(2), before, "round {round}: .1 moved to .2");
        }
    }
    assert!(!old(3).exists(), "log_keep = 2 keeps two old files");
    // The daemon keeps logging into the new file.
    let s = site.clone();
    blocking(move || s.ok(&["stop"])).await;
    assert!(
        std::fs::read_to_string(&log)
            .expect("log")
            .contains("stopped")
    );
}

/// Another local user can neither reach the control socket (its folder is private) nor, if
/// that folder is opened by mistake, command the server: the peer's uid is checked, and the
/// answer says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_local_user_cannot_command_the_server() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    const NOBODY: u32 = 65534;
    if rustix::process::geteuid().as_raw() != 0 {
        // Only root can run a command as another user; CI runs as root.
        assert!(std::env::var_os("CI").is_none(), "CI must run this as root");
        eprintln!("skipped: running a command as another user needs root");
        return;
    }
    let chmod = |path: &std::path::Path, mode: u32| {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod")
    };
    let site = Site::new();
    site.ok(&["start", "-d"]);
    // The other user's config names the same run folder.
    let other = tempfile::tempdir().expect("temp dir");
    chmod(other.path(), 0o755);
    let config = other.path().join("switchboard.toml");
    std::fs::write(
        &config,
        format!(
            "[[listener]]\naddr = \"127.0.0.1:0\"\nprotocol = \"websocket\"\napp = \"echo\"\n[run]\npid_file = {:?}\n",
            site.pid_file().display().to_string()
        ),
    )
    .expect("config");
    chmod(&config, 0o644);
    let as_nobody = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_switchboard"))
            .args(args)
            .arg("-c")
            .arg(&config)
            .current_dir(other.path())
            .uid(NOBODY)
            .gid(NOBODY)
            .stdin(Stdio::null())
            .output()
            .expect("switchboard runs as nobody");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    chmod(site.dir.path(), 0o755);

    // As configured: the run folder is 0700, so nothing of it can be reached.
    let run = site.pid_file().parent().expect("run folder").to_owned();
    assert_eq!(
        std::fs::metadata(&run).expect("run").permissions().mode() & 0o777,
        0o700
    );
    let (code, stderr) = as_nobody(&["stop"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("is not running"), "{stderr}");

    // Opened by mistake: the socket answers, and refuses by the peer's uid.
    chmod(&run, 0o755);
    chmod(&run.join("switchboard.sock"), 0o666);
    for command in ["stop", "status"] {
        let (code, stderr) = as_nobody(&[command]);
        assert_eq!(code, Some(1), "{command}: {stderr}");
        assert!(
            stderr.contains("refused: this server runs as uid 0") && stderr.contains("uid 65534"),
            "{command}: {stderr}"
        );
    }
    let log = std::fs::read_to_string(run.join("switchboard.log")).expect("log");
    assert!(log.contains("refused a process of another user"), "{log}");
    // Still running, and its own user still commands it.
    assert!(site.status()["pid"].as_u64().is_some());
    site.ok(&["stop"]);
}
