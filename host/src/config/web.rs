//! The web-facing keys: the `[api]` table, and the TLS and static-file keys that
//! `[[listener]]`, `[api]` and `[admin]` share.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Shortest token accepted: anything shorter can be guessed.
pub const MIN_TOKEN_BYTES: usize = 16;

/// A certificate chain and its private key, PEM files; both or neither. The tables that take
/// TLS have the two keys `tls_cert` and `tls_key` and hand them over as this.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate chain (leaf first).
    pub tls_cert: Option<PathBuf>,
    /// The private key of the leaf certificate.
    pub tls_key: Option<PathBuf>,
}

impl TlsFiles {
    /// The two paths, if TLS is on.
    pub fn paths(&self) -> Option<(&Path, &Path)> {
        Some((self.tls_cert.as_deref()?, self.tls_key.as_deref()?))
    }

    /// What is wrong, as (key, message): one path without the other.
    pub fn problem(&self) -> Option<(&'static str, &'static str)> {
        match (&self.tls_cert, &self.tls_key) {
            (Some(_), None) => Some(("tls_key", "is needed with tls_cert")),
            (None, Some(_)) => Some(("tls_cert", "is needed with tls_key")),
            _ => None,
        }
    }

    /// The pair of a table's `tls_cert` and `tls_key`.
    pub fn of(tls_cert: &Option<PathBuf>, tls_key: &Option<PathBuf>) -> Self {
        Self {
            tls_cert: tls_cert.clone(),
            tls_key: tls_key.clone(),
        }
    }
}

/// The `[api]` table: the HTTP server API for other backends.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiConfig {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Bearer tokens that may call it.
    #[serde(default)]
    pub tokens: Vec<String>,
    /// A file of tokens, one a line (blank lines and `#` comments skipped); read at start.
    pub token_file: Option<PathBuf>,
    /// TLS for the API: the certificate chain (PEM).
    pub tls_cert: Option<PathBuf>,
    /// TLS for the API: the private key (PEM).
    pub tls_key: Option<PathBuf>,
}

impl ApiConfig {
    /// What is wrong, as (key under `api.`, message).
    pub fn problem(&self) -> Option<(&'static str, String)> {
        if let Some((key, message)) = self.tls().problem() {
            return Some((key, message.to_owned()));
        }
        match (&self.token_file, self.tokens.is_empty()) {
            (Some(_), false) => {
                return Some(("token_file", "set tokens or token_file, not both".into()));
            }
            (None, true) => {
                return Some((
                    "tokens",
                    "the API needs at least one token (tokens or token_file)".into(),
                ));
            }
            _ => {}
        }
        self.tokens
            .iter()
            .position(|t| token_problem(t).is_some())
            .map(|i| {
                let why = token_problem(&self.tokens[i]).unwrap_or_default();
                ("tokens", format!("token {i} {why}"))
            })
    }

    /// Its TLS files.
    pub fn tls(&self) -> TlsFiles {
        TlsFiles::of(&self.tls_cert, &self.tls_key)
    }

    /// Its paths, for making them relative to the config file.
    pub fn paths_mut(&mut self) -> impl Iterator<Item = &mut PathBuf> {
        [&mut self.token_file, &mut self.tls_cert, &mut self.tls_key]
            .into_iter()
            .flatten()
    }

    /// The tokens: the configured ones, or those of the token file.
    pub fn load_tokens(&self) -> Result<Vec<String>, String> {
        let Some(path) = &self.token_file else {
            return Ok(self.tokens.clone());
        };
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read api.token_file {}: {e}", path.display()))?;
        let tokens = parse_token_file(&text)
            .map_err(|e| format!("api.token_file {}: {e}", path.display()))?;
        Ok(tokens)
    }
}

/// Why a token cannot be used, if it cannot.
fn token_problem(token: &str) -> Option<String> {
    if token.len() < MIN_TOKEN_BYTES {
        Some(format!("is shorter than {MIN_TOKEN_BYTES} bytes"))
    } else if token.bytes().any(|b| !b.is_ascii_graphic()) {
        Some("holds a space or a character that is not printable ASCII".into())
    } else {
        None
    }
}

/// The tokens of a token file: one a line, blank lines and `#` comments skipped.
pub fn parse_token_file(text: &str) -> Result<Vec<String>, String> {
    let mut tokens = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(why) = token_problem(line) {
            return Err(format!("line {}: the token {why}", n + 1));
        }
        tokens.push(line.to_owned());
    }
    if tokens.is_empty() {
        return Err("holds no token".into());
    }
    Ok(tokens)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_files_skip_comments_and_blank_lines() {
        let text = "# backend tokens\n\n  0123456789abcdef0123  \nabcdefghijklmnopqrstuvwxyz\n";
        assert_eq!(
            parse_token_file(text).expect("valid"),
            ["0123456789abcdef0123", "abcdefghijklmnopqrstuvwxyz"]
        );
        assert!(parse_token_file("# nothing\n").is_err());
        let err = parse_token_file("0123456789abcdef0123\nshort\n").expect_err("short");
        assert!(err.contains("line 2"), "{err}");
    }

    #[test]
    fn tls_needs_both_files() {
        let only_cert = TlsFiles {
            tls_cert: Some("c.pem".into()),
            tls_key: None,
        };
        assert_eq!(only_cert.problem().map(|p| p.0), Some("tls_key"));
        assert_eq!(only_cert.paths(), None);
        assert_eq!(TlsFiles::default().problem(), None);
    }
}
