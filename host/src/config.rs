//! The configuration file (`switchboard.toml`): its keys, their defaults, and their checks.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::bus::Protocol;

mod apps;
mod cluster;
mod web;
pub use apps::{OutboundHost, OutboundPolicy, VariableSource, resolve_variables};
pub use cluster::{ClusterConfig, NatsUrls, Role};
pub use web::{ApiConfig, MIN_TOKEN_BYTES, TlsFiles, parse_token_file};

/// The whole configuration.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The listeners clients connect to.
    #[serde(rename = "listener", default)]
    pub listeners: Vec<ListenerConfig>,
    /// The worker host.
    #[serde(default)]
    pub worker: WorkerConfig,
    /// Per-app settings, by app name (`[apps.chat]`).
    #[serde(default)]
    pub apps: BTreeMap<String, AppConfig>,
    /// Where a running server keeps its pid file, log and control socket.
    #[serde(default)]
    pub run: RunConfig,
    /// The admin HTTP listener (metrics, health); off unless `addr` is set.
    #[serde(default)]
    pub admin: AdminConfig,
    /// The HTTP server API for other backends; off unless the table is present.
    #[serde(default)]
    pub api: Option<ApiConfig>,
    /// Logging.
    #[serde(default)]
    pub log: LogConfig,
    /// Cluster mode over NATS; absent, the process is the embedded single process.
    #[serde(default)]
    pub cluster: Option<ClusterConfig>,
}

/// The `[run]` table; relative paths are relative to the config file.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    /// The pid file of a running server; its control socket is beside it.
    #[serde(default = "defaults::pid_file")]
    pub pid_file: PathBuf,
    /// Where a daemon writes its log.
    #[serde(default = "defaults::log_file")]
    pub log_file: PathBuf,
    /// How long a graceful stop may take before clients are dropped, ms.
    #[serde(default = "defaults::stop_timeout_ms")]
    pub stop_timeout_ms: u64,
    /// A daemon's log file is rotated past this size, MiB; 0 never rotates.
    #[serde(default = "defaults::log_max_mib")]
    pub log_max_mib: u64,
    /// Rotated log files kept (`switchboard.log.1` is the newest).
    #[serde(default = "defaults::log_keep")]
    pub log_keep: u32,
}

impl Default for RunConfig {
    fn default() -> Self {
        Self {
            pid_file: defaults::pid_file(),
            log_file: defaults::log_file(),
            stop_timeout_ms: defaults::stop_timeout_ms(),
            log_max_mib: defaults::log_max_mib(),
            log_keep: defaults::log_keep(),
        }
    }
}

impl RunConfig {
    /// The control socket: next to the pid file.
    pub fn socket(&self) -> PathBuf {
        self.pid_file.with_extension("sock")
    }

    /// Where a cluster worker keeps the plugin versions it fetched, one folder per version.
    pub fn releases_dir(&self) -> PathBuf {
        self.pid_file.with_extension("releases")
    }
}

/// The `[admin]` table.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    /// Address of the HTTP listener serving `/metrics` and `/health`.
    pub addr: Option<SocketAddr>,
    /// TLS for the admin listener: the certificate chain (PEM).
    pub tls_cert: Option<PathBuf>,
    /// TLS for the admin listener: the private key (PEM).
    pub tls_key: Option<PathBuf>,
}

impl AdminConfig {
    /// Its TLS files.
    pub fn tls(&self) -> TlsFiles {
        TlsFiles::of(&self.tls_cert, &self.tls_key)
    }
}

/// The `[log]` table.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// A tracing filter such as `info` or `switchboard=debug`; `RUST_LOG` overrides it.
    pub level: Option<String>,
}

/// An `[apps.<name>]` table: settings of one app.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppConfig {
    /// Replace an instance after it has handled this many events (for guests whose memory
    /// only grows, such as some Python builds).
    pub recycle_after_events: Option<u64>,
    /// Replace an instance once its linear memory exceeds this many MiB.
    pub recycle_above_memory_mib: Option<u64>,
    /// Strings the plugin reads with `variables.get`; `{ env = "NAME" }` reads the host's
    /// environment (`[apps.NAME.variables]`).
    #[serde(default)]
    pub variables: BTreeMap<String, VariableSource>,
    /// Where the plugin may send HTTP requests: `scheme://host[:port]` entries, such as
    /// `http://127.0.0.1:8000` or `https://*.example.com`. Empty: nowhere.
    #[serde(default)]
    pub allowed_outbound_hosts: Vec<String>,
    /// How long one outbound HTTP request may take (connect, then each wait for data), ms.
    #[serde(default = "defaults::outbound_timeout_ms")]
    pub outbound_timeout_ms: u64,
}

impl Default for AppConfig {
    fn default() -> Self {
        Self {
            recycle_after_events: None,
            recycle_above_memory_mib: None,
            variables: BTreeMap::new(),
            allowed_outbound_hosts: Vec::new(),
            outbound_timeout_ms: defaults::outbound_timeout_ms(),
        }
    }
}

impl AppConfig {
    /// The variables' values; those from the environment were checked when the file was
    /// loaded, so one unset since then is left out.
    pub fn variable_values(&self) -> BTreeMap<String, String> {
        let env = |name: &str| std::env::var(name).ok();
        self.variables
            .iter()
            .filter_map(|(name, source)| Some((name.clone(), source.resolve(env)?)))
            .collect()
    }

    /// The destinations the plugin may call (entries were checked when the file was loaded).
    pub fn outbound_policy(&self) -> OutboundPolicy {
        OutboundPolicy::parse(&self.allowed_outbound_hosts).unwrap_or_default()
    }
}

/// One `[[listener]]`: an address, a protocol and the app that serves it.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerConfig {
    /// Address to listen on.
    pub addr: SocketAddr,
    /// How clients talk.
    #[serde(deserialize_with = "protocol")]
    pub protocol: Protocol,
    /// The app (plugin file stem) that handles this listener's clients.
    pub app: String,
    /// Heartbeat period in ms; 0 turns the heartbeat off.
    #[serde(default = "defaults::ping_interval_ms")]
    pub ping_interval_ms: u64,
    /// Periods a client may stay silent before it is closed; 0 never closes.
    #[serde(default = "defaults::ping_not_responding_limit")]
    pub ping_not_responding_limit: u32,
    /// Sent to the client every period if not empty.
    #[serde(default)]
    pub ping_data: String,
    /// Largest message a client may send, in bytes.
    #[serde(default = "defaults::max_message_bytes")]
    pub max_message_bytes: usize,
    /// Most clients connected at once on this listener.
    #[serde(default = "defaults::max_connections")]
    pub max_connections: usize,
    /// Messages queued to one client before it counts as too slow and is closed.
    #[serde(default = "defaults::send_queue")]
    pub send_queue: usize,
    /// A write to a client that makes no progress for this long closes it, ms; never more
    /// than the heartbeat's silence limit (see [`ListenerConfig::write_timeout`]).
    #[serde(default = "defaults::write_timeout_ms")]
    pub write_timeout_ms: u64,
    /// TLS (`wss://` for WebSocket, TLS under text and frame): the certificate chain (PEM).
    pub tls_cert: Option<PathBuf>,
    /// TLS: the private key (PEM).
    pub tls_key: Option<PathBuf>,
    /// WebSocket only: a folder whose files plain HTTP GETs (no Upgrade) are answered with.
    pub static_dir: Option<PathBuf>,
    /// Open connections one client address may hold on this listener; 0: no limit.
    #[serde(default = "defaults::max_connections_per_ip")]
    pub max_connections_per_ip: usize,
    /// How long a connection may take to become a client (TLS, the WebSocket request, the
    /// app's verdict and the answer together), ms.
    #[serde(default = "defaults::handshake_timeout_ms")]
    pub handshake_timeout_ms: u64,
    /// Messages a second one client may send on average (bursts of one second's worth);
    /// 0: no limit.
    #[serde(default = "defaults::max_messages_per_second")]
    pub max_messages_per_second: u32,
    /// What happens to a client over its message rate: its excess is dropped (and counted),
    /// or it is closed.
    #[serde(default)]
    pub throttle: Throttle,
}

/// What happens to a client over `max_messages_per_second`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Throttle {
    /// Its excess messages are dropped and counted; it stays connected.
    #[default]
    Drop,
    /// It is closed (WebSocket 1008).
    Close,
}

impl ListenerConfig {
    /// Its TLS files.
    pub fn tls(&self) -> TlsFiles {
        TlsFiles::of(&self.tls_cert, &self.tls_key)
    }

    /// The write deadline in force: `write_timeout_ms`, clamped to the heartbeat's silence
    /// limit (`ping_interval_ms` × `ping_not_responding_limit`) when that is set, since a
    /// client that takes no bytes for that long is as dead as a silent one.
    pub fn write_timeout(&self) -> std::time::Duration {
        let silence = self
            .ping_interval_ms
            .saturating_mul(u64::from(self.ping_not_responding_limit));
        let ms = match silence {
            0 => self.write_timeout_ms,
            limit => self.write_timeout_ms.min(limit),
        };
        std::time::Duration::from_millis(ms)
    }
}

/// The `[worker]` table.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerConfig {
    /// Folder of `*.wasm` plugins; relative paths are relative to the config file.
    #[serde(default = "defaults::plugins_dir")]
    pub plugins_dir: PathBuf,
    /// Instances per app.
    #[serde(default = "defaults::instances")]
    pub instances: usize,
    /// Threads that run plugin code, apart from the threads that serve sockets.
    #[serde(default = "defaults::threads")]
    pub threads: usize,
    /// Memory cap per instance, MiB.
    #[serde(default = "defaults::memory_limit_mib")]
    pub memory_limit_mib: u64,
    /// CPU deadline per event, ms.
    #[serde(default = "defaults::event_deadline_ms")]
    pub event_deadline_ms: u64,
    /// Whether every app a listener names must have its plugin at start; if false, such a
    /// listener refuses clients until the plugin file lands in `plugins_dir`.
    #[serde(default = "defaults::require_plugins")]
    pub require_plugins: bool,
    /// Where compiled plugins are cached by content hash; relative to the config file.
    #[serde(default = "defaults::cache_dir")]
    pub cache_dir: PathBuf,
    /// Where the plugins' key-value store keeps its file; relative to the config file.
    #[serde(default = "defaults::data_dir")]
    pub data_dir: PathBuf,
    /// A new plugin version is judged on this many first events...
    #[serde(default = "defaults::rollback_window")]
    pub rollback_window: u32,
    /// ...and rolled back if more than this share of them fail (0 turns rollback off).
    #[serde(default = "defaults::rollback_failure_ratio")]
    pub rollback_failure_ratio: f64,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            plugins_dir: defaults::plugins_dir(),
            instances: defaults::instances(),
            threads: defaults::threads(),
            memory_limit_mib: defaults::memory_limit_mib(),
            event_deadline_ms: defaults::event_deadline_ms(),
            require_plugins: defaults::require_plugins(),
            cache_dir: defaults::cache_dir(),
            data_dir: defaults::data_dir(),
            rollback_window: defaults::rollback_window(),
            rollback_failure_ratio: defaults::rollback_failure_ratio(),
        }
    }
}

mod defaults {
    use std::path::PathBuf;

    pub fn ping_interval_ms() -> u64 {
        25_000
    }
    pub fn ping_not_responding_limit() -> u32 {
        2
    }
    pub fn max_message_bytes() -> usize {
        1024 * 1024
    }
    pub fn max_connections() -> usize {
        100_000
    }
    pub fn send_queue() -> usize {
        1024
    }
    pub fn write_timeout_ms() -> u64 {
        30_000
    }
    pub fn max_connections_per_ip() -> usize {
        1000
    }
    pub fn handshake_timeout_ms() -> u64 {
        10_000
    }
    pub fn max_messages_per_second() -> u32 {
        10_000
    }
    pub fn plugins_dir() -> PathBuf {
        PathBuf::from("plugins")
    }
    pub fn instances() -> usize {
        std::thread::available_parallelism().map_or(2, usize::from)
    }
    pub fn threads() -> usize {
        std::thread::available_parallelism().map_or(2, usize::from)
    }
    pub fn memory_limit_mib() -> u64 {
        64
    }
    pub fn event_deadline_ms() -> u64 {
        1000
    }
    pub fn require_plugins() -> bool {
        true
    }
    pub fn pid_file() -> PathBuf {
        PathBuf::from("run/switchboard.pid")
    }
    pub fn log_file() -> PathBuf {
        PathBuf::from("run/switchboard.log")
    }
    pub fn stop_timeout_ms() -> u64 {
        10_000
    }
    pub fn log_max_mib() -> u64 {
        64
    }
    pub fn log_keep() -> u32 {
        5
    }
    pub fn cache_dir() -> PathBuf {
        PathBuf::from("run/cache")
    }
    pub fn data_dir() -> PathBuf {
        PathBuf::from("run/data")
    }
    pub fn outbound_timeout_ms() -> u64 {
        10_000
    }
    pub fn rollback_window() -> u32 {
        100
    }
    pub fn rollback_failure_ratio() -> f64 {
        0.5
    }
}

fn protocol<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Protocol, D::Error> {
    let name = String::deserialize(d)?;
    [Protocol::WebSocket, Protocol::Text, Protocol::Frame]
        .into_iter()
        .find(|p| p.name() == name)
        .ok_or_else(|| {
            serde::de::Error::custom(format!(
                "unknown protocol {name:?}, expected websocket, text or frame"
            ))
        })
}

/// Why a configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML for this schema.
    #[error("config file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message, naming the key and line.
        message: String,
    },
    /// A value is out of its range.
    #[error("config file {path}: {key}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The key, such as `listener[0].max_message_bytes`.
        key: String,
        /// What is wrong.
        message: String,
    },
}

impl Config {
    /// The demo served when there is no config file: the chat app and its page on
    /// 127.0.0.1:8080, from the folders `cargo xtask demo` fills (run from the repository root).
    pub fn demo() -> Self {
        let mut config: Config = toml::from_str(
            r#"
            [[listener]]
            addr = "127.0.0.1:8080"
            protocol = "websocket"
            app = "chat"
            "#,
        )
        .expect("the built-in demo config parses");
        config.worker.plugins_dir = PathBuf::from("target/demo-plugins");
        // The chat page, served from the listener's own origin.
        config.listeners[0].static_dir = Some(PathBuf::from("plugins/chat/web"));
        config.worker.cache_dir = PathBuf::from("target/plugin-cache");
        config.worker.data_dir = PathBuf::from("target/demo-data");
        config
    }

    /// Reads and checks a config file; relative paths in it become relative to its folder.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let mut config = Self::parse(&text, path)?;
        let base = path.parent().unwrap_or(Path::new("."));
        let paths = [
            &mut config.worker.plugins_dir,
            &mut config.worker.cache_dir,
            &mut config.worker.data_dir,
            &mut config.run.pid_file,
            &mut config.run.log_file,
        ];
        for dir in paths {
            if dir.is_relative() {
                *dir = base.join(&*dir);
            }
        }
        if let Some(cluster) = &mut config.cluster {
            cluster.resolve_paths(base);
        }
        let web_paths = config
            .listeners
            .iter_mut()
            .flat_map(|l| [&mut l.tls_cert, &mut l.tls_key, &mut l.static_dir])
            .chain([&mut config.admin.tls_cert, &mut config.admin.tls_key])
            .flatten()
            .chain(config.api.iter_mut().flat_map(ApiConfig::paths_mut));
        for path in web_paths {
            if path.is_relative() {
                *path = base.join(&*path);
            }
        }
        Ok(config)
    }

    /// Parses and checks config text; `path` only names the file in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.to_string().trim_end().replace('\n', " "),
        })?;
        config.check(path)?;
        Ok(config)
    }

    fn check(&self, path: &Path) -> Result<(), ConfigError> {
        let invalid = |key: String, message: &str| ConfigError::Invalid {
            path: path.to_owned(),
            key,
            message: message.to_owned(),
        };
        if self.listeners.is_empty() {
            return Err(invalid(
                "listener".into(),
                "at least one [[listener]] is needed",
            ));
        }
        for (i, l) in self.listeners.iter().enumerate() {
            let key = |name: &str| format!("listener[{i}].{name}");
            if !is_app_name(&l.app) {
                return Err(invalid(
                    key("app"),
                    "must be a plugin file stem: letters, digits, '-' and '_'",
                ));
            }
            if l.max_message_bytes == 0 || l.max_message_bytes > u32::MAX as usize {
                return Err(invalid(key("max_message_bytes"), "must be 1..=4294967295"));
            }
            if l.max_connections == 0 {
                return Err(invalid(key("max_connections"), "must be at least 1"));
            }
            if !(1..=1_000_000).contains(&l.send_queue) {
                return Err(invalid(key("send_queue"), "must be 1..=1000000"));
            }
            // Beyond a day a heartbeat means nothing, and a huge period overflows the clock.
            if l.ping_interval_ms > 86_400_000 {
                return Err(invalid(
                    key("ping_interval_ms"),
                    "must be at most 86400000 (a day); 0 turns the heartbeat off",
                ));
            }
            if l.ping_not_responding_limit > 1_000_000 {
                return Err(invalid(
                    key("ping_not_responding_limit"),
                    "must be at most 1000000; 0 never closes a silent client",
                ));
            }
            if !(1..=3_600_000).contains(&l.write_timeout_ms) {
                return Err(invalid(key("write_timeout_ms"), "must be 1..=3600000"));
            }
            if !(100..=600_000).contains(&l.handshake_timeout_ms) {
                return Err(invalid(key("handshake_timeout_ms"), "must be 100..=600000"));
            }
            if l.max_connections_per_ip > 10_000_000 {
                return Err(invalid(
                    key("max_connections_per_ip"),
                    "must be at most 10000000; 0 is no limit",
                ));
            }
            if let Some((name, message)) = l.tls().problem() {
                return Err(invalid(key(name), message));
            }
            if l.static_dir.is_some() && l.protocol != Protocol::WebSocket {
                return Err(invalid(
                    key("static_dir"),
                    "only a websocket listener serves files",
                ));
            }
            // Port 0 asks the system for a free port, so only fixed ports can clash.
            let same = |o: &ListenerConfig| o.addr == l.addr && l.addr.port() != 0;
            if let Some(j) = self.listeners[..i].iter().position(same) {
                return Err(invalid(
                    key("addr"),
                    &format!("{} is already used by listener[{j}]", l.addr),
                ));
            }
        }
        for (name, app) in &self.apps {
            let key = |field: &str| format!("apps.{name}.{field}");
            if !is_app_name(name) {
                return Err(invalid(
                    format!("apps.{name}"),
                    "must be a plugin file stem: letters, digits, '-' and '_'",
                ));
            }
            if app.recycle_after_events == Some(0) {
                return Err(invalid(key("recycle_after_events"), "must be at least 1"));
            }
            if app.recycle_above_memory_mib == Some(0) {
                return Err(invalid(
                    key("recycle_above_memory_mib"),
                    "must be at least 1",
                ));
            }
            let env = |var: &str| std::env::var(var).ok();
            if let Err((var, message)) = resolve_variables(&app.variables, env) {
                return Err(invalid(key(&format!("variables.{var}")), &message));
            }
            if let Err((i, message)) = OutboundPolicy::parse(&app.allowed_outbound_hosts) {
                return Err(invalid(
                    key(&format!("allowed_outbound_hosts[{i}]")),
                    &message,
                ));
            }
            if !(1..=300_000).contains(&app.outbound_timeout_ms) {
                return Err(invalid(key("outbound_timeout_ms"), "must be 1..=300000"));
            }
        }
        if !(100..=3_600_000).contains(&self.run.stop_timeout_ms) {
            return Err(invalid(
                "run.stop_timeout_ms".into(),
                "must be 100..=3600000",
            ));
        }
        if self.run.log_max_mib > 1 << 20 {
            return Err(invalid(
                "run.log_max_mib".into(),
                "must be at most 1048576 (1 TiB); 0 never rotates",
            ));
        }
        if self.run.log_keep > 1000 {
            return Err(invalid("run.log_keep".into(), "must be at most 1000"));
        }
        if let Some(level) = &self.log.level
            && tracing_subscriber::EnvFilter::try_new(level).is_err()
        {
            return Err(invalid(
                "log.level".into(),
                "must be a level (error, warn, info, debug, trace) or a tracing filter",
            ));
        }
        let w = &self.worker;
        if !(1..=256).contains(&w.instances) {
            return Err(invalid("worker.instances".into(), "must be 1..=256"));
        }
        if !(1..=256).contains(&w.threads) {
            return Err(invalid("worker.threads".into(), "must be 1..=256"));
        }
        if !(1..=4096).contains(&w.memory_limit_mib) {
            return Err(invalid(
                "worker.memory_limit_mib".into(),
                "must be 1..=4096",
            ));
        }
        if !(10..=600_000).contains(&w.event_deadline_ms) {
            return Err(invalid(
                "worker.event_deadline_ms".into(),
                "must be 10..=600000",
            ));
        }
        if !(1..=1_000_000).contains(&w.rollback_window) {
            return Err(invalid(
                "worker.rollback_window".into(),
                "must be 1..=1000000",
            ));
        }
        if !(0.0..1.0).contains(&w.rollback_failure_ratio) {
            return Err(invalid(
                "worker.rollback_failure_ratio".into(),
                "must be at least 0 and below 1 (0 turns rollback off)",
            ));
        }
        if let Some((name, message)) = self.admin.tls().problem() {
            return Err(invalid(format!("admin.{name}"), message));
        }
        if let Some((name, message)) = self.api.as_ref().and_then(ApiConfig::problem) {
            return Err(invalid(format!("api.{name}"), &message));
        }
        if let Some((key, message)) = self.cluster.as_ref().and_then(ClusterConfig::problem) {
            return Err(invalid(key.into(), &message));
        }
        Ok(())
    }

    /// Sets the role from the command line, which overrides `cluster.role`. Without a
    /// `[cluster]` table only `all` (the embedded process) exists.
    pub fn set_role(&mut self, role: Role, path: &Path) -> Result<(), ConfigError> {
        match &mut self.cluster {
            Some(cluster) => cluster.role = role,
            None if role == Role::All => {}
            None => {
                return Err(ConfigError::Invalid {
                    path: path.to_owned(),
                    key: "--role".into(),
                    message: format!("role {} needs a [cluster] table", role.name()),
                });
            }
        }
        Ok(())
    }

    /// This process's role: `all` unless `[cluster]` says otherwise.
    pub fn role(&self) -> Role {
        self.cluster.as_ref().map_or(Role::All, |c| c.role)
    }

    /// The apps the listeners name, each once, sorted.
    pub fn apps(&self) -> Vec<&str> {
        let mut apps: Vec<&str> = self.listeners.iter().map(|l| l.app.as_str()).collect();
        apps.sort_unstable();
        apps.dedup();
        apps
    }
}

/// Whether `name` can be an app name (and so a plugin file stem).
pub fn is_app_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The app a plugin file is for: `app` if given, else the file's stem; the refused name if
/// that is no app name.
pub fn app_of_file(file: &std::path::Path, app: Option<&str>) -> Result<String, String> {
    let app = app
        .or_else(|| file.file_stem().and_then(|s| s.to_str()))
        .unwrap_or_default();
    if is_app_name(app) {
        Ok(app.to_owned())
    } else {
        Err(app.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("test.toml"))
    }

    const MINIMAL: &str = r#"
        [[listener]]
        addr = "127.0.0.1:0"
        protocol = "text"
        app = "echo"
    "#;

    #[test]
    fn defaults_fill_what_is_missing() {
        let c = parse(MINIMAL).expect("valid");
        let l = &c.listeners[0];
        assert_eq!(l.protocol, Protocol::Text);
        assert_eq!(l.ping_interval_ms, 25_000);
        assert_eq!(l.ping_not_responding_limit, 2);
        assert_eq!(l.max_message_bytes, 1 << 20);
        assert_eq!(c.worker.memory_limit_mib, 64);
        assert_eq!(c.worker.event_deadline_ms, 1000);
    }

    #[test]
    fn the_demo_config_is_valid() {
        let demo = Config::demo();
        demo.check(Path::new("demo")).expect("valid");
        assert_eq!(demo.apps(), ["chat"]);
    }

    #[test]
    fn errors_name_the_key() {
        let err = parse(&format!("{MINIMAL}\ncolour = 1")).expect_err("unknown key");
        assert!(err.to_string().contains("colour"), "{err}");

        let err = parse(&MINIMAL.replace("\"text\"", "\"udp\"")).expect_err("bad protocol");
        assert!(err.to_string().contains("udp"), "{err}");

        let err = parse(&format!("{MINIMAL}\nmax_message_bytes = 0")).expect_err("zero");
        assert!(
            err.to_string().contains("listener[0].max_message_bytes"),
            "{err}"
        );

        for (line, key) in [
            (
                "ping_interval_ms = 18446744073709551615",
                "ping_interval_ms",
            ),
            (
                "ping_not_responding_limit = 4294967295",
                "ping_not_responding_limit",
            ),
            ("send_queue = 18446744073709551615", "send_queue"),
        ] {
            let err = parse(&format!("{MINIMAL}\n{line}")).expect_err(line);
            assert!(
                err.to_string().contains(&format!("listener[0].{key}")),
                "{line}: {err}"
            );
        }

        let err = parse(&format!("{MINIMAL}\n[worker]\ninstances = 0")).expect_err("zero");
        assert!(err.to_string().contains("worker.instances"), "{err}");
        let err = parse(&format!("{MINIMAL}\n[worker]\nthreads = 0")).expect_err("zero");
        assert!(err.to_string().contains("worker.threads"), "{err}");

        let err = parse(&MINIMAL.replace("echo", "../x")).expect_err("path in app");
        assert!(err.to_string().contains("listener[0].app"), "{err}");

        let fixed = MINIMAL.replace(":0", ":9000");
        let err = parse(&format!("{fixed}{fixed}")).expect_err("same address twice");
        assert!(err.to_string().contains("listener[1].addr"), "{err}");

        let err =
            parse(&format!("{MINIMAL}\n[apps.echo]\nrecycle_after_events = 0")).expect_err("zero");
        assert!(
            err.to_string().contains("apps.echo.recycle_after_events"),
            "{err}"
        );

        let err = parse(&format!("{MINIMAL}\n[apps.echo]\nrecycle = 1")).expect_err("unknown");
        assert!(err.to_string().contains("recycle"), "{err}");

        for (table, key) in [
            (
                "allowed_outbound_hosts = [\"ftp://x\"]",
                "allowed_outbound_hosts[0]",
            ),
            ("outbound_timeout_ms = 0", "outbound_timeout_ms"),
            (
                "[apps.echo.variables]\nt = { env = \"SWITCHBOARD_SURELY_UNSET_VAR\" }",
                "variables.t",
            ),
        ] {
            let err = parse(&format!("{MINIMAL}\n[apps.echo]\n{table}")).expect_err(table);
            assert!(
                err.to_string().contains(&format!("apps.echo.{key}")),
                "{table}: {err}"
            );
        }

        let err = parse("").expect_err("no listener");
        assert!(err.to_string().contains("listener"), "{err}");
    }

    #[test]
    fn bad_web_keys_name_the_key() {
        let api = "[api]\naddr = \"127.0.0.1:0\"";
        let cases = [
            (api.to_string(), "api.tokens"),
            (format!("{api}\ntokens = [\"short\"]"), "api.tokens"),
            (
                format!("{api}\ntokens = [\"0123456789abcdef\"]\ntoken_file = \"t\""),
                "api.token_file",
            ),
            (
                format!("{api}\ntokens = [\"0123456789abcdef\"]\ntls_cert = \"c.pem\""),
                "api.tls_key",
            ),
            (
                format!("{api}\ntokens = [\"0123456789abcdef\"]\ncolour = 1"),
                "colour",
            ),
            ("[admin]\ntls_key = \"k.pem\"".into(), "admin.tls_cert"),
        ];
        for (table, key) in cases {
            let err = parse(&format!("{MINIMAL}\n{table}")).expect_err(&table);
            assert!(err.to_string().contains(key), "{table}: {err}");
        }
        let err = parse(&format!("{MINIMAL}\nstatic_dir = \"web\"")).expect_err("text");
        assert!(err.to_string().contains("listener[0].static_dir"), "{err}");
        let err = parse(&format!("{MINIMAL}\ntls_cert = \"c.pem\"")).expect_err("no key");
        assert!(err.to_string().contains("listener[0].tls_key"), "{err}");
        let c = parse(&format!(
            "{api}\ntokens = [\"0123456789abcdef\"]\n{MINIMAL}"
        ))
        .expect("valid");
        assert!(c.api.is_some());
    }

    #[test]
    fn the_write_timeout_never_exceeds_the_heartbeats_silence_limit() {
        let c = parse(MINIMAL).expect("valid");
        let l = &c.listeners[0];
        assert_eq!(l.write_timeout_ms, 30_000);
        // 25 s × 2 silent periods = 50 s: the default 30 s stands.
        assert_eq!(l.write_timeout().as_millis(), 30_000);
        let strict = ListenerConfig {
            ping_interval_ms: 1000,
            ping_not_responding_limit: 3,
            ..l.clone()
        };
        assert_eq!(strict.write_timeout().as_millis(), 3000, "clamped");
        let no_limit = ListenerConfig {
            ping_not_responding_limit: 0,
            ..strict.clone()
        };
        assert_eq!(no_limit.write_timeout().as_millis(), 30_000);
        let off = ListenerConfig {
            ping_interval_ms: 0,
            ..strict
        };
        assert_eq!(off.write_timeout().as_millis(), 30_000);
        let err = parse(&format!("{MINIMAL}\nwrite_timeout_ms = 0")).expect_err("zero");
        assert!(
            err.to_string().contains("listener[0].write_timeout_ms"),
            "{err}"
        );
    }

    #[test]
    fn no_cluster_table_is_the_embedded_process() {
        let mut c = parse(MINIMAL).expect("valid");
        assert_eq!(c.cluster, None);
        assert_eq!(c.role(), Role::All);
        c.set_role(Role::All, Path::new("test.toml")).expect("all");
        let err = c
            .set_role(Role::Worker, Path::new("test.toml"))
            .expect_err("no cluster");
        assert!(err.to_string().contains("--role"), "{err}");
    }

    #[test]
    fn cluster_table_defaults_and_lists() {
        let c = parse(&format!(
            "{MINIMAL}\n[cluster]\nnats_url = \"nats://127.0.0.1:4222\""
        ))
        .expect("valid");
        let cluster = c.cluster.as_ref().expect("cluster");
        assert_eq!(cluster.prefix, "switchboard");
        assert_eq!(cluster.role, Role::All);
        assert_eq!(cluster.nats_url.list(), ["nats://127.0.0.1:4222"]);

        let mut c = parse(&format!(
            "{MINIMAL}\n[cluster]\nnats_url = [\"nats://a:4222\", \"b:4223\"]\nprefix = \"eu-1\"\nrole = \"worker\"\ncredentials = \"sb.creds\""
        ))
        .expect("valid");
        assert_eq!(c.role(), Role::Worker);
        c.set_role(Role::Gateway, Path::new("x")).expect("override");
        assert_eq!(c.role(), Role::Gateway);
        let cluster = c.cluster.as_mut().expect("cluster");
        assert_eq!(cluster.nats_url.list().len(), 2);
        cluster.resolve_paths(Path::new("/etc/sb"));
        assert_eq!(
            cluster.credentials.as_deref(),
            Some(Path::new("/etc/sb/sb.creds"))
        );
    }

    #[test]
    fn bad_cluster_values_name_the_key() {
        let cases = [
            ("nats_url = []", "cluster.nats_url"),
            ("nats_url = \"http://x:1\"", "cluster.nats_url"),
            ("nats_url = 4222", "nats_url"),
            ("nats_url = \"n:1\"\nprefix = \"a.b\"", "cluster.prefix"),
            ("nats_url = \"n:1\"\nprefix = \"\"", "cluster.prefix"),
            ("nats_url = \"n:1\"\nrole = \"boss\"", "role"),
            (
                "nats_url = \"n:1\"\ncredentials = \"a\"\nnkey_seed = \"b\"",
                "cluster.nkey_seed",
            ),
            (
                "nats_url = \"n:1\"\ntls_cert = \"c.pem\"",
                "cluster.tls_cert",
            ),
            ("nats_url = \"n:1\"\ncolour = 1", "colour"),
            ("prefix = \"x\"", "nats_url"),
        ];
        for (table, key) in cases {
            let err = parse(&format!("{MINIMAL}\n[cluster]\n{table}")).expect_err(table);
            assert!(err.to_string().contains(key), "{table}: {err}");
        }
    }
}
