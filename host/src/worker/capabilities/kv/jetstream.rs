//! The cluster's backend: one NATS JetStream key-value bucket per app, shared by every
//! worker connected to the same NATS, so any instance anywhere sees the same keys.
//!
//! Keys are stored hex-encoded (JetStream keys allow only a few characters; hex of the UTF-8
//! bytes keeps their order), values as [`Entry`] bytes like the embedded store. `increment`
//! is a compare-and-set on the key's revision, retried on conflict.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use async_nats::jetstream::{self, kv};
use async_trait::async_trait;
use futures_util::StreamExt;

use super::{Entry, KvError, KvStore, MAX_VALUE_BYTES, now_ms};

/// How long one operation may wait for the NATS server.
const TIMEOUT: Duration = Duration::from_secs(5);

/// Compare-and-set attempts of one `increment` before it gives up.
const INCREMENT_TRIES: usize = 64;

/// The JetStream store of every app, a bucket each, opened on first use.
pub struct JetStreamKv {
    js: jetstream::Context,
    prefix: String,
    buckets: Mutex<HashMap<String, kv::Store>>,
}

/// `text` with every character a bucket name does not allow replaced by `_`.
fn bucket_name(prefix: &str, app: &str) -> String {
    format!("{prefix}_kv_{app}")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// A key as stored: its UTF-8 bytes in lowercase hex.
fn encode_key(key: &str) -> String {
    key.bytes().map(|b| format!("{b:02x}")).collect()
}

/// The key a stored name stands for, if it is one of ours.
fn decode_key(stored: &str) -> Option<String> {
    if !stored.len().is_multiple_of(2) {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..stored.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(stored.get(i..i + 2)?, 16).ok())
        .collect();
    String::from_utf8(bytes?).ok()
}

fn unavailable(what: &str, e: impl std::fmt::Display) -> KvError {
    KvError::Unavailable(format!("the JetStream store failed to {what}: {e}"))
}

/// Runs `op` with the store's timeout.
async fn timed<T>(what: &str, op: impl Future<Output = Result<T, KvError>>) -> Result<T, KvError> {
    tokio::time::timeout(TIMEOUT, op)
        .await
        .unwrap_or_else(|_| Err(unavailable(what, format!("no answer within {TIMEOUT:?}"))))
}

impl JetStreamKv {
    /// A store over `client`; buckets are named `PREFIX_kv_APP`.
    pub fn new(client: async_nats::Client, prefix: &str) -> Self {
        Self {
            js: jetstream::new(client),
            prefix: prefix.to_owned(),
            buckets: Mutex::default(),
        }
    }

    /// The bucket of `app`, created if it does not exist yet.
    async fn bucket(&self, app: &str) -> Result<kv::Store, KvError> {
        let cached = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(app)
            .cloned();
        if let Some(store) = cached {
            return Ok(store);
        }
        let name = bucket_name(&self.prefix, app);
        let store = match self.js.get_key_value(name.as_str()).await {
            Ok(store) => store,
            Err(_) => {
                let config = kv::Config {
                    bucket: name.clone(),
                    history: 1,
                    // The stored form adds 8 bytes of expiry to the largest value.
                    max_value_size: i32::try_from(MAX_VALUE_BYTES + 8).unwrap_or(i32::MAX),
                    ..Default::default()
                };
                match self.js.create_key_value(config).await {
                    Ok(store) => store,
                    // Another worker may have created it meanwhile.
                    Err(e) => self
                        .js
                        .get_key_value(name.as_str())
                        .await
                        .map_err(|_| unavailable("open its bucket", e))?,
                }
            }
        };
        self.buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(app.to_owned(), store.clone());
        Ok(store)
    }

    /// The live entry of `key` and its revision (0 if none, for `create`).
    async fn current(store: &kv::Store, key: &str) -> Result<(Option<Entry>, u64), KvError> {
        let entry = store.entry(key).await.map_err(|e| unavailable("read", e))?;
        Ok(match entry {
            Some(e) if e.operation == kv::Operation::Put => {
                (Entry::live(&e.value, now_ms()), e.revision)
            }
            Some(e) => (None, e.revision),
            None => (None, 0),
        })
    }
}

#[async_trait]
impl KvStore for JetStreamKv {
    async fn get(&self, app: &str, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        timed("read", async {
            let store = self.bucket(app).await?;
            let value = store
                .get(encode_key(key))
                .await
                .map_err(|e| unavailable("read", e))?;
            Ok(value
                .and_then(|v| Entry::live(&v, now_ms()))
                .map(|e| e.value))
        })
        .await
    }

    async fn set(&self, app: &str, key: &str, entry: Entry) -> Result<(), KvError> {
        timed("write", async {
            let store = self.bucket(app).await?;
            store
                .put(encode_key(key), entry.encode().into())
                .await
                .map_err(|e| unavailable("write", e))?;
            Ok(())
        })
        .await
    }

    async fn delete(&self, app: &str, key: &str) -> Result<(), KvError> {
        timed("delete", async {
            let store = self.bucket(app).await?;
            // A purge keeps no tombstone history beyond the marker.
            store
                .purge(encode_key(key))
                .await
                .map_err(|e| unavailable("delete", e))
        })
        .await
    }

    async fn list_keys(
        &self,
        app: &str,
        prefix: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<String>, KvError> {
        timed("list keys", async {
            let store = self.bucket(app).await?;
            let mut names = match store.keys().await {
                Ok(keys) => keys,
                Err(e) => return Err(unavailable("list keys", e)),
            };
            let mut keys = Vec::new();
            while let Some(name) = names.next().await {
                let name = name.map_err(|e| unavailable("list keys", e))?;
                if let Some(key) = decode_key(&name)
                    && key.starts_with(prefix)
                    && after.is_none_or(|a| key.as_str() > a)
                {
                    keys.push(key);
                }
            }
            keys.sort_unstable();
            // Expired entries are skipped: reading each costs a round trip, so only as many
            // as the page needs.
            let now = now_ms();
            let mut page = Vec::new();
            for key in keys {
                if page.len() >= limit as usize {
                    break;
                }
                let value = store
                    .get(encode_key(&key))
                    .await
                    .map_err(|e| unavailable("list keys", e))?;
                if value.is_some_and(|v| Entry::live(&v, now).is_some()) {
                    page.push(key);
                }
            }
            Ok(page)
        })
        .await
    }

    async fn increment(&self, app: &str, key: &str, delta: i64) -> Result<i64, KvError> {
        timed("increment", async {
            let store = self.bucket(app).await?;
            let stored = encode_key(key);
            let mut last_error = String::new();
            for _ in 0..INCREMENT_TRIES {
                let (current, revision) = Self::current(&store, &stored).await?;
                let (entry, new) = Entry::incremented(current, delta)?;
                let bytes = entry.encode().into();
                let written = if revision == 0 {
                    store
                        .create(&stored, bytes)
                        .await
                        .map(|_| ())
                        .map_err(|e| e.to_string())
                } else {
                    store
                        .update(&stored, bytes, revision)
                        .await
                        .map(|_| ())
                        .map_err(|e| e.to_string())
                };
                match written {
                    Ok(()) => return Ok(new),
                    // Another writer got there first: read again.
                    Err(e) => last_error = e,
                }
            }
            Err(unavailable(
                "increment",
                format!("{INCREMENT_TRIES} conflicting writes in a row; last: {last_error}"),
            ))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_stored_as_order_keeping_hex() {
        for key in ["a", "a/b c", "ключ", "z"] {
            assert_eq!(decode_key(&encode_key(key)).as_deref(), Some(key));
        }
        assert!(encode_key("a") < encode_key("b"));
        assert!(encode_key("ab") < encode_key("b"));
        assert!(encode_key("b1").starts_with(&encode_key("b")));
        assert_eq!(decode_key("abc"), None);
        assert_eq!(decode_key("zz"), None);
    }

    #[test]
    fn bucket_names_keep_only_allowed_characters() {
        assert_eq!(bucket_name("sb.prod", "chat-1"), "sb_prod_kv_chat-1");
    }
}
