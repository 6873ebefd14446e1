//! What an `[apps.NAME]` table grants a plugin beyond the API: variables (`variables`) and
//! the destinations of outbound HTTP (`allowed_outbound_hosts`). Pure parsing and matching,
//! tested without I/O; the worker applies them.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;

/// Longest variable name, in bytes.
const MAX_VARIABLE_NAME: usize = 256;

/// A variable as written in `[apps.NAME.variables]`: a string, or `{ env = "NAME" }` to read
/// it from the host's environment.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum VariableSource {
    /// `name = "value"`.
    Value(String),
    /// `name = { env = "ENV_NAME" }`.
    Env(EnvVariable),
}

/// `{ env = "NAME" }`: the value is the host's environment variable `NAME`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvVariable {
    /// The environment variable.
    pub env: String,
}

impl VariableSource {
    /// The value, reading the environment through `env`; `None` if that variable is unset.
    pub fn resolve(&self, env: impl Fn(&str) -> Option<String>) -> Option<String> {
        match self {
            VariableSource::Value(value) => Some(value.clone()),
            VariableSource::Env(EnvVariable { env: var }) => env(var),
        }
    }
}

/// Whether `name` can name a variable: 1..=256 bytes of letters, digits, `_`, `-` and `.`.
pub fn is_variable_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_VARIABLE_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// The values of `variables`, those from the environment looked up with `env`; the first
/// that cannot be resolved is an error naming it (variable name, problem).
pub fn resolve_variables(
    variables: &BTreeMap<String, VariableSource>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<BTreeMap<String, String>, (String, String)> {
    let mut values = BTreeMap::new();
    for (name, source) in variables {
        if !is_variable_name(name) {
            return Err((
                name.clone(),
                "a variable name is 1 to 256 letters, digits, '_', '-' or '.'".into(),
            ));
        }
        let value = source.resolve(&env).ok_or_else(|| {
            let var = match source {
                VariableSource::Env(EnvVariable { env }) => env.as_str(),
                VariableSource::Value(_) => "",
            };
            (
                name.clone(),
                format!("the environment variable {var} is not set (or not UTF-8)"),
            )
        })?;
        values.insert(name.clone(), value);
    }
    Ok(values)
}

/// Which scheme an allowed destination admits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SchemePattern {
    Http,
    Https,
    Any,
}

/// Which hosts an allowed destination admits.
#[derive(Clone, Debug, PartialEq, Eq)]
enum HostPattern {
    /// `*`: every host.
    Any,
    /// One host name or IP address, lowercase (IPv6 without brackets).
    Exact(String),
    /// `*.example.com`: subdomains of `example.com` (not `example.com` itself), stored as
    /// `.example.com`.
    Subdomains(String),
}

/// Which ports an allowed destination admits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PortPattern {
    /// No port given: the scheme's default (80 for http, 443 for https).
    Default,
    /// `:*`: every port.
    Any,
    /// `:8000`.
    Exact(u16),
}

/// One entry of `allowed_outbound_hosts`, such as `https://auth.example.com`,
/// `http://127.0.0.1:8000`, `https://*.example.com` or `*://localhost:*`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboundHost {
    scheme: SchemePattern,
    host: HostPattern,
    port: PortPattern,
    text: String,
}

impl fmt::Display for OutboundHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// The default port of a scheme.
fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

impl OutboundHost {
    /// Parses one entry; the error says what is wrong with it.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (scheme, rest) = text
            .split_once("://")
            .ok_or("must start with http://, https:// or *://")?;
        let scheme = match scheme {
            "http" => SchemePattern::Http,
            "https" => SchemePattern::Https,
            "*" => SchemePattern::Any,
            other => return Err(format!("scheme {other:?} is not http, https or *")),
        };
        // A trailing slash is harmless; any other path is not something we can enforce.
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains(['/', '?', '#', '@']) {
            return Err("only scheme://host[:port] is allowed: no path, query or user".into());
        }
        let (host, port) = split_host_port(rest)?;
        let port = match port {
            None => PortPattern::Default,
            Some("*") => PortPattern::Any,
            Some(p) => match p.parse::<u16>() {
                Ok(n) if n > 0 => PortPattern::Exact(n),
                _ => return Err(format!("port {p:?} is not 1..=65535 or *")),
            },
        };
        let host = host.to_ascii_lowercase();
        let host = if host == "*" {
            HostPattern::Any
        } else if let Some(domain) = host.strip_prefix("*.") {
            check_host(domain)?;
            HostPattern::Subdomains(format!(".{domain}"))
        } else {
            check_host(&host)?;
            HostPattern::Exact(host)
        };
        Ok(Self {
            scheme,
            host,
            port,
            text: text.to_owned(),
        })
    }

    /// Whether a request to `scheme://host:port` is allowed by this entry. `host` is as the
    /// request names it (any case; IPv6 with or without brackets).
    pub fn allows(&self, scheme: &str, host: &str, port: u16) -> bool {
        let scheme_ok = match self.scheme {
            SchemePattern::Http => scheme == "http",
            SchemePattern::Https => scheme == "https",
            SchemePattern::Any => scheme == "http" || scheme == "https",
        };
        let port_ok = match self.port {
            PortPattern::Default => default_port(scheme) == Some(port),
            PortPattern::Any => true,
            PortPattern::Exact(p) => p == port,
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        let host_ok = match &self.host {
            HostPattern::Any => true,
            HostPattern::Exact(h) => *h == host,
            HostPattern::Subdomains(suffix) => host.ends_with(suffix.as_str()),
        };
        scheme_ok && port_ok && host_ok
    }
}

/// `host[:port]`, with IPv6 hosts in brackets.
fn split_host_port(text: &str) -> Result<(&str, Option<&str>), String> {
    if let Some(inner) = text.strip_prefix('[') {
        let (host, after) = inner
            .split_once(']')
            .ok_or("an IPv6 address needs its closing ']'")?;
        return match after {
            "" => Ok((host, None)),
            _ => match after.strip_prefix(':') {
                Some(port) => Ok((host, Some(port))),
                None => Err(format!("unexpected {after:?} after the IPv6 address")),
            },
        };
    }
    Ok(match text.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (text, None),
    })
}

/// A host name or address: letters, digits, '-', '.' (and ':' for IPv6), not empty.
fn check_host(host: &str) -> Result<(), String> {
    let ok = !host.is_empty()
        && host.len() <= 253
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b':'));
    if ok {
        Ok(())
    } else {
        Err(format!("{host:?} is not a host name or address"))
    }
}

/// The destinations an app may call, in the order configured.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OutboundPolicy {
    allowed: Vec<OutboundHost>,
}

impl fmt::Display for OutboundPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let entries: Vec<&str> = self.allowed.iter().map(|a| a.text.as_str()).collect();
        write!(f, "{entries:?}")
    }
}

impl OutboundPolicy {
    /// Parses `allowed_outbound_hosts`; an error is (index, problem).
    pub fn parse(entries: &[String]) -> Result<Self, (usize, String)> {
        let allowed = entries
            .iter()
            .enumerate()
            .map(|(i, e)| OutboundHost::parse(e).map_err(|m| (i, m)))
            .collect::<Result<_, _>>()?;
        Ok(Self { allowed })
    }

    /// Whether a request to `scheme://host:port` may go out.
    pub fn allows(&self, scheme: &str, host: &str, port: u16) -> bool {
        self.allowed.iter().any(|a| a.allows(scheme, host, port))
    }

    /// Whether nothing is allowed.
    pub fn is_empty(&self) -> bool {
        self.allowed.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allows(entry: &str, scheme: &str, host: &str, port: u16) -> bool {
        OutboundHost::parse(entry)
            .unwrap_or_else(|e| panic!("{entry}: {e}"))
            .allows(scheme, host, port)
    }

    #[test]
    fn scheme_host_and_port_must_all_match() {
        let entry = "http://127.0.0.1:8000";
        assert!(allows(entry, "http", "127.0.0.1", 8000));
        assert!(!allows(entry, "https", "127.0.0.1", 8000));
        assert!(!allows(entry, "http", "127.0.0.1", 8001));
        assert!(!allows(entry, "http", "127.0.0.2", 8000));
    }

    #[test]
    fn no_port_means_the_default_port_of_the_scheme() {
        assert!(allows(
            "https://auth.example.com",
            "https",
            "auth.example.com",
            443
        ));
        assert!(!allows(
            "https://auth.example.com",
            "https",
            "auth.example.com",
            8443
        ));
        assert!(allows("http://example.com/", "http", "EXAMPLE.com", 80));
        assert!(allows("*://example.com", "http", "example.com", 80));
        assert!(allows("*://example.com", "https", "example.com", 443));
        assert!(!allows("*://example.com", "https", "example.com", 80));
    }

    #[test]
    fn wildcards_cover_subdomains_and_ports() {
        let entry = "https://*.example.com";
        assert!(allows(entry, "https", "api.example.com", 443));
        assert!(allows(entry, "https", "a.b.example.com", 443));
        assert!(!allows(entry, "https", "example.com", 443));
        assert!(!allows(entry, "https", "badexample.com", 443));
        assert!(allows("http://localhost:*", "http", "localhost", 1234));
        assert!(allows("*://*:*", "https", "anything", 1));
        assert!(allows("http://[::1]:8080", "http", "[::1]", 8080));
        assert!(allows("http://[::1]:8080", "http", "::1", 8080));
    }

    #[test]
    fn malformed_entries_are_refused_with_a_reason() {
        for entry in [
            "example.com",
            "ftp://example.com",
            "http://example.com/path",
            "http://user@example.com",
            "http://example.com:0",
            "http://example.com:99999",
            "http://",
            "http://exa mple.com",
            "http://[::1",
        ] {
            assert!(OutboundHost::parse(entry).is_err(), "{entry} was accepted");
        }
        let (index, _) =
            OutboundPolicy::parse(&["http://a".into(), "b".into()]).expect_err("second is bad");
        assert_eq!(index, 1);
    }

    #[test]
    fn an_empty_policy_allows_nothing() {
        let policy = OutboundPolicy::default();
        assert!(policy.is_empty());
        assert!(!policy.allows("http", "127.0.0.1", 80));
    }

    #[test]
    fn variables_come_from_the_file_or_the_environment() {
        let vars: BTreeMap<String, VariableSource> = toml::from_str(
            r#"
            greeting = "hello"
            token = { env = "SECRET" }
            "#,
        )
        .expect("parses");
        let env = |name: &str| (name == "SECRET").then(|| "s3cret".to_owned());
        let values = resolve_variables(&vars, env).expect("resolves");
        assert_eq!(values["greeting"], "hello");
        assert_eq!(values["token"], "s3cret");

        let (name, message) = resolve_variables(&vars, |_| None).expect_err("unset");
        assert_eq!(name, "token");
        assert!(message.contains("SECRET"), "{message}");
    }

    #[test]
    fn bad_variable_names_and_shapes_are_refused() {
        let mut vars = BTreeMap::new();
        vars.insert("has space".to_owned(), VariableSource::Value("x".into()));
        assert!(resolve_variables(&vars, |_| None).is_err());
        let shape: Result<BTreeMap<String, VariableSource>, _> =
            toml::from_str("x = { envv = \"A\" }");
        assert!(shape.is_err());
        let number: Result<BTreeMap<String, VariableSource>, _> = toml::from_str("x = 1");
        assert!(number.is_err());
    }
}
