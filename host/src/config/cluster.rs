//! The `[cluster]` table: how this process joins a cluster over NATS, and in which role.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use serde::Deserialize;

/// What a process does in a cluster.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Serves the listeners; events go to workers over the bus.
    Gateway,
    /// Runs the plugins; commands and queries go to gateways over the bus.
    Worker,
    /// Both: without `[cluster]`, the embedded single process; with it, both roles on NATS.
    #[default]
    All,
}

impl Role {
    /// The name used in the config file and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Self::Gateway => "gateway",
            Self::Worker => "worker",
            Self::All => "all",
        }
    }

    /// Whether this process serves the listeners.
    pub fn is_gateway(self) -> bool {
        matches!(self, Self::Gateway | Self::All)
    }

    /// Whether this process runs the plugins.
    pub fn is_worker(self) -> bool {
        matches!(self, Self::Worker | Self::All)
    }
}

/// One NATS server address or several.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum NatsUrls {
    /// `nats_url = "nats://host:4222"`.
    One(String),
    /// `nats_url = ["nats://a:4222", "nats://b:4222"]`.
    Many(Vec<String>),
}

impl NatsUrls {
    /// The addresses, in the order given.
    pub fn list(&self) -> Vec<&str> {
        match self {
            Self::One(url) => vec![url.as_str()],
            Self::Many(urls) => urls.iter().map(String::as_str).collect(),
        }
    }
}

/// The `[cluster]` table; file paths are relative to the config file.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// The NATS server (or servers) to connect to.
    pub nats_url: NatsUrls,
    /// First token of every subject, so several clusters can share one NATS.
    #[serde(default = "default_prefix")]
    pub prefix: String,
    /// A NATS credentials file (JWT and NKEY seed).
    pub credentials: Option<PathBuf>,
    /// A file holding an NKEY seed, instead of `credentials`.
    pub nkey_seed: Option<PathBuf>,
    /// CA certificates to verify the NATS server with; turns TLS on.
    pub tls_ca: Option<PathBuf>,
    /// Client certificate for mutual TLS (with `tls_key`).
    pub tls_cert: Option<PathBuf>,
    /// Client key for mutual TLS (with `tls_cert`).
    pub tls_key: Option<PathBuf>,
    /// What this process does; `switchboard start --role` overrides it.
    #[serde(default)]
    pub role: Role,
    /// How long a query waits for every live gateway before it fails with `timeout`.
    #[serde(default = "default_query_timeout_ms")]
    pub query_timeout_ms: u64,
    /// Most events a gateway holds while no live worker serves their app, all apps together.
    #[serde(default = "default_backlog_events")]
    pub backlog_events: usize,
    /// Longest such an event waits before it is dropped (and counted).
    #[serde(default = "default_backlog_ms")]
    pub backlog_ms: u64,
}

impl ClusterConfig {
    /// `query_timeout_ms` as a duration.
    pub fn query_timeout(&self) -> Duration {
        Duration::from_millis(self.query_timeout_ms)
    }

    /// `backlog_ms` as a duration.
    pub fn backlog_age(&self) -> Duration {
        Duration::from_millis(self.backlog_ms)
    }
}

fn default_query_timeout_ms() -> u64 {
    2000
}

fn default_backlog_events() -> usize {
    10_000
}

fn default_backlog_ms() -> u64 {
    5000
}

fn default_prefix() -> String {
    "switchboard".to_owned()
}

/// Longest subject prefix, in bytes.
const MAX_PREFIX_BYTES: usize = 64;

impl ClusterConfig {
    /// The first key whose value cannot be used, and why.
    pub(super) fn problem(&self) -> Option<(&'static str, String)> {
        let urls = self.nats_url.list();
        if urls.is_empty() {
            return Some(("cluster.nats_url", "at least one server is needed".into()));
        }
        for url in urls {
            if let Err(e) = async_nats::ServerAddr::from_str(url) {
                return Some((
                    "cluster.nats_url",
                    format!("{url:?} is not a NATS server address: {e}"),
                ));
            }
        }
        if !is_subject_token(&self.prefix) {
            return Some((
                "cluster.prefix",
                format!(
                    "must be one NATS subject token: 1..={MAX_PREFIX_BYTES} letters, digits, '-' and '_'"
                ),
            ));
        }
        if self.credentials.is_some() && self.nkey_seed.is_some() {
            return Some((
                "cluster.nkey_seed",
                "give either credentials or nkey_seed, not both".into(),
            ));
        }
        if !(10..=60_000).contains(&self.query_timeout_ms) {
            return Some((
                "cluster.query_timeout_ms",
                "must be between 10 and 60000".into(),
            ));
        }
        if self.backlog_events > 1_000_000 {
            return Some((
                "cluster.backlog_events",
                "must be at most 1000000 (0 holds no events)".into(),
            ));
        }
        if self.backlog_ms > 600_000 {
            return Some((
                "cluster.backlog_ms",
                "must be at most 600000 (10 minutes)".into(),
            ));
        }
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return Some((
                "cluster.tls_cert",
                "tls_cert and tls_key go together (mutual TLS)".into(),
            ));
        }
        None
    }

    /// Makes relative file paths relative to `base`, the config file's folder.
    pub(super) fn resolve_paths(&mut self, base: &Path) {
        let paths = [
            &mut self.credentials,
            &mut self.nkey_seed,
            &mut self.tls_ca,
            &mut self.tls_cert,
            &mut self.tls_key,
        ];
        for path in paths.into_iter().flatten() {
            if path.is_relative() {
                *path = base.join(&*path);
            }
        }
    }
}

/// Whether `token` can stand between two dots of a subject, with no wildcard meaning.
fn is_subject_token(token: &str) -> bool {
    !token.is_empty()
        && token.len() <= MAX_PREFIX_BYTES
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subject_tokens() {
        for good in ["switchboard", "prod-eu_1", "A"] {
            assert!(is_subject_token(good), "{good}");
        }
        for bad in ["", "a.b", "*", ">", "a b", "é", &"x".repeat(65)] {
            assert!(!is_subject_token(bad), "{bad}");
        }
    }
}
