//! The plugins' key-value store: one namespace per app, behind one trait ([`KvStore`]) with
//! two backends: an embedded on-disk database (redb, one file in `[worker] data_dir`) for
//! the single process, and a NATS JetStream bucket per app for a cluster ([`jetstream`]).
//!
//! The checks (key and value sizes, ranges) and the stored form of an entry (its value and
//! its expiry) are here, the same for every backend; a backend only stores bytes.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

pub mod jetstream;
mod writer;

/// Longest key, in bytes.
pub const MAX_KEY_BYTES: usize = 1024;

/// Largest value, in bytes: 1 MB, so that a value with its 8 bytes of expiry fits NATS's
/// default message size (1 MiB) in a cluster.
pub const MAX_VALUE_BYTES: usize = 1_000_000;

/// Longest time to live: a year, in ms.
pub const MAX_TTL_MS: u64 = 365 * 24 * 3600 * 1000;

/// Longest page of `list-keys`.
pub const MAX_PAGE: u32 = 1000;

/// Why a store operation failed; the cases are the WIT `kv-error`'s.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KvError {
    /// A key that is empty or too long.
    #[error("invalid key: {0}")]
    InvalidKey(String),
    /// A value above the limit.
    #[error("too large: {0}")]
    TooLarge(String),
    /// `increment` of something that is not a decimal i64, or an overflow.
    #[error("not a number: {0}")]
    NotANumber(String),
    /// Another argument out of range.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The store failed or did not answer in time.
    #[error("unavailable: {0}")]
    Unavailable(String),
}

/// Checks a key.
pub fn check_key(key: &str) -> Result<(), KvError> {
    if key.is_empty() {
        return Err(KvError::InvalidKey("a key cannot be empty".into()));
    }
    if key.len() > MAX_KEY_BYTES {
        return Err(KvError::InvalidKey(format!(
            "key of {} bytes is above the limit of {MAX_KEY_BYTES} bytes",
            key.len()
        )));
    }
    Ok(())
}

/// Checks a value.
pub fn check_value(value: &[u8]) -> Result<(), KvError> {
    if value.len() > MAX_VALUE_BYTES {
        return Err(KvError::TooLarge(format!(
            "value of {} bytes is above the limit of {MAX_VALUE_BYTES} bytes",
            value.len()
        )));
    }
    Ok(())
}

/// Checks a time to live.
pub fn check_ttl(ttl_ms: Option<u64>) -> Result<Option<Duration>, KvError> {
    match ttl_ms {
        None => Ok(None),
        Some(ms) if (1..=MAX_TTL_MS).contains(&ms) => Ok(Some(Duration::from_millis(ms))),
        Some(ms) => Err(KvError::InvalidArgument(format!(
            "ttl-ms must be 1..={MAX_TTL_MS} (a year), got {ms}"
        ))),
    }
}

/// Checks a page limit.
pub fn check_limit(limit: u32) -> Result<u32, KvError> {
    if (1..=MAX_PAGE).contains(&limit) {
        Ok(limit)
    } else {
        Err(KvError::InvalidArgument(format!(
            "limit must be 1..={MAX_PAGE}, got {limit}"
        )))
    }
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// A value as stored: 8 bytes of expiry (ms since the Unix epoch, big-endian; 0 for none),
/// then the value. Expiry travels with the value, so every backend honours it alike.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// When the entry expires, ms since the Unix epoch.
    pub expires_at_ms: Option<u64>,
    /// The value.
    pub value: Vec<u8>,
}

impl Entry {
    /// An entry set now for `ttl`.
    pub fn new(value: Vec<u8>, ttl: Option<Duration>, now_ms: u64) -> Self {
        let expires_at_ms =
            ttl.map(|t| now_ms.saturating_add(u64::try_from(t.as_millis()).unwrap_or(u64::MAX)));
        Self {
            expires_at_ms,
            value,
        }
    }

    /// The stored bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(8 + self.value.len());
        bytes.extend_from_slice(&self.expires_at_ms.unwrap_or(0).to_be_bytes());
        bytes.extend_from_slice(&self.value);
        bytes
    }

    /// The entry stored as `bytes`; `None` if they are too short to be one.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let (expiry, value) = bytes.split_first_chunk::<8>()?;
        let expiry = u64::from_be_bytes(*expiry);
        Some(Self {
            expires_at_ms: (expiry != 0).then_some(expiry),
            value: value.to_vec(),
        })
    }

    /// Whether the entry has expired at `now_ms`.
    pub fn expired(&self, now_ms: u64) -> bool {
        self.expires_at_ms.is_some_and(|at| at <= now_ms)
    }

    /// The live value stored as `bytes` at `now_ms`, if any.
    pub fn live(bytes: &[u8], now_ms: u64) -> Option<Self> {
        Self::decode(bytes).filter(|e| !e.expired(now_ms))
    }

    /// This entry after `increment` by `delta`: a missing or expired entry counts as 0.
    pub fn incremented(current: Option<Entry>, delta: i64) -> Result<(Entry, i64), KvError> {
        let (old, expires_at_ms) = match &current {
            None => (0, None),
            Some(e) => {
                let text = std::str::from_utf8(&e.value)
                    .map_err(|_| KvError::NotANumber("the value is not decimal text".to_owned()))?;
                let n = text.trim().parse::<i64>().map_err(|_| {
                    KvError::NotANumber(format!(
                        "the value {:?} is not a 64-bit integer",
                        truncate(text, 40)
                    ))
                })?;
                (n, e.expires_at_ms)
            }
        };
        let new = old
            .checked_add(delta)
            .ok_or_else(|| KvError::NotANumber(format!("{old} + {delta} overflows")))?;
        let entry = Entry {
            expires_at_ms,
            value: new.to_string().into_bytes(),
        };
        Ok((entry, new))
    }
}

fn truncate(text: &str, max: usize) -> &str {
    match text.char_indices().nth(max) {
        Some((i, _)) => &text[..i],
        None => text,
    }
}

/// A store of many apps' keys; each call names the app, and an app's keys are invisible to
/// the others. Arguments are already checked.
#[async_trait]
pub trait KvStore: Send + Sync {
    /// The live value of `key`.
    async fn get(&self, app: &str, key: &str) -> Result<Option<Vec<u8>>, KvError>;
    /// Sets `key`.
    async fn set(&self, app: &str, key: &str, entry: Entry) -> Result<(), KvError>;
    /// Removes `key`.
    async fn delete(&self, app: &str, key: &str) -> Result<(), KvError>;
    /// Live keys starting with `prefix`, sorted, after `after`, at most `limit`.
    async fn list_keys(
        &self,
        app: &str,
        prefix: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<String>, KvError>;
    /// Adds `delta` atomically; returns the new value.
    async fn increment(&self, app: &str, key: &str, delta: i64) -> Result<i64, KvError>;
}

/// The store the worker host gives its plugins.
#[derive(Clone)]
pub struct KvBackend(Arc<dyn KvStore>);

impl std::fmt::Debug for KvBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KvBackend")
    }
}

impl KvBackend {
    /// The embedded store: the file `kv.redb` in `data_dir` (created if missing).
    pub fn embedded(data_dir: &Path) -> Result<Self, KvError> {
        Ok(Self(Arc::new(Embedded::open(data_dir)?)))
    }

    /// The cluster's store: one JetStream key-value bucket per app (`PREFIX_kv_APP`), shared
    /// by every worker connected to the same NATS. The server needs JetStream (`-js`).
    pub fn jetstream(client: async_nats::Client, prefix: &str) -> Self {
        Self(Arc::new(jetstream::JetStreamKv::new(client, prefix)))
    }

    /// Any store.
    pub fn custom(store: Arc<dyn KvStore>) -> Self {
        Self(store)
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn KvStore> {
        &self.0
    }
}

/// A store in memory, empty at first and gone when dropped: what a new version's trial
/// instance writes to, so its writes never reach the app's real store.
#[derive(Default)]
pub struct Scratch {
    apps: std::sync::Mutex<std::collections::BTreeMap<(String, String), Entry>>,
}

impl Scratch {
    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::BTreeMap<(String, String), Entry>> {
        self.apps
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait]
impl KvStore for Scratch {
    async fn get(&self, app: &str, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        let entries = self.lock();
        let entry = entries.get(&(app.to_owned(), key.to_owned()));
        Ok(entry
            .filter(|e| !e.expired(now_ms()))
            .map(|e| e.value.clone()))
    }

    async fn set(&self, app: &str, key: &str, entry: Entry) -> Result<(), KvError> {
        self.lock().insert((app.to_owned(), key.to_owned()), entry);
        Ok(())
    }

    async fn delete(&self, app: &str, key: &str) -> Result<(), KvError> {
        self.lock().remove(&(app.to_owned(), key.to_owned()));
        Ok(())
    }

    async fn list_keys(
        &self,
        app: &str,
        prefix: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<String>, KvError> {
        let now = now_ms();
        let entries = self.lock();
        Ok(entries
            .range((app.to_owned(), prefix.to_owned())..)
            .take_while(|((a, k), _)| a == app && k.starts_with(prefix))
            .filter(|((_, k), e)| after.is_none_or(|after| k.as_str() > after) && !e.expired(now))
            .take(limit as usize)
            .map(|((_, k), _)| k.clone())
            .collect())
    }

    async fn increment(&self, app: &str, key: &str, delta: i64) -> Result<i64, KvError> {
        let mut entries = self.lock();
        let id = (app.to_owned(), key.to_owned());
        let current = entries.get(&id).filter(|e| !e.expired(now_ms())).cloned();
        let (entry, new) = Entry::incremented(current, delta)?;
        entries.insert(id, entry);
        Ok(new)
    }
}

/// The embedded backend: a redb database with one table per app.
struct Embedded {
    db: Arc<Database>,
    writer: writer::Writer,
}

fn unavailable(e: impl Into<redb::Error>) -> KvError {
    KvError::Unavailable(format!("the embedded store failed: {}", e.into()))
}

/// The table of `app`'s keys.
fn table_name(app: &str) -> String {
    format!("app:{app}")
}

impl Embedded {
    fn open(data_dir: &Path) -> Result<Self, KvError> {
        let fail = |what: String| KvError::Unavailable(what);
        std::fs::create_dir_all(data_dir)
            .map_err(|e| fail(format!("cannot create {}: {e}", data_dir.display())))?;
        let path = data_dir.join("kv.redb");
        let db = Arc::new(
            Database::create(&path)
                .map_err(|e| fail(format!("cannot open {}: {e}", path.display())))?,
        );
        let writer = writer::Writer::start(db.clone())?;
        Ok(Self { db, writer })
    }

    /// Runs `f` on the blocking pool: redb reads and writes the file (and syncs on commit).
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Database) -> Result<T, KvError> + Send + 'static,
    ) -> Result<T, KvError> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || f(&db))
            .await
            .unwrap_or_else(|e| Err(KvError::Unavailable(format!("store task failed: {e}"))))
    }

    /// Runs `f` on `app`'s table in the writer's next transaction; answers once that
    /// transaction is committed.
    async fn write<T: Send + 'static>(
        &self,
        app: &str,
        f: impl FnOnce(&mut redb::Table<&str, &[u8]>) -> Result<T, KvError> + Send + 'static,
    ) -> Result<T, KvError> {
        let name = table_name(app);
        let (tell, answer) = tokio::sync::oneshot::channel();
        self.writer.submit(Box::new(
            move |tx: Result<&redb::WriteTransaction, KvError>| {
                let out = tx.and_then(|tx| {
                    let mut table = tx
                        .open_table(TableDefinition::<&str, &[u8]>::new(&name))
                        .map_err(unavailable)?;
                    f(&mut table)
                });
                Box::new(move |committed: Result<(), KvError>| {
                    let _ = tell.send(committed.and(out));
                })
            },
        ))?;
        answer.await.unwrap_or_else(|_| {
            Err(KvError::Unavailable(
                "the store's writer has stopped".into(),
            ))
        })
    }

    /// Runs `f` in a read transaction on `app`'s table; `None` if the app has none yet.
    async fn read<T: Send + 'static>(
        &self,
        app: &str,
        f: impl FnOnce(&redb::ReadOnlyTable<&str, &[u8]>) -> Result<T, KvError> + Send + 'static,
    ) -> Result<Option<T>, KvError> {
        let name = table_name(app);
        self.blocking(move |db| {
            let tx = db.begin_read().map_err(unavailable)?;
            match tx.open_table(TableDefinition::<&str, &[u8]>::new(&name)) {
                Ok(table) => f(&table).map(Some),
                Err(redb::TableError::TableDoesNotExist(_)) => Ok(None),
                Err(e) => Err(unavailable(e)),
            }
        })
        .await
    }
}

#[async_trait]
impl KvStore for Embedded {
    async fn get(&self, app: &str, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        let key = key.to_owned();
        let now = now_ms();
        let found = self
            .read(app, move |table| {
                let stored = table.get(key.as_str()).map_err(unavailable)?;
                Ok(stored.and_then(|v| Entry::live(v.value(), now)))
            })
            .await?
            .flatten();
        Ok(found.map(|e| e.value))
    }

    async fn set(&self, app: &str, key: &str, entry: Entry) -> Result<(), KvError> {
        let key = key.to_owned();
        self.write(app, move |table| {
            table
                .insert(key.as_str(), entry.encode().as_slice())
                .map_err(unavailable)?;
            Ok(())
        })
        .await
    }

    async fn delete(&self, app: &str, key: &str) -> Result<(), KvError> {
        let key = key.to_owned();
        self.write(app, move |table| {
            table.remove(key.as_str()).map_err(unavailable)?;
            Ok(())
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
        let prefix = prefix.to_owned();
        let after = after.map(str::to_owned);
        let now = now_ms();
        let keys = self
            .read(app, move |table| {
                let start = match &after {
                    Some(a) if a.as_str() >= prefix.as_str() => a.as_str(),
                    _ => prefix.as_str(),
                };
                let mut keys = Vec::new();
                for item in table.range(start..).map_err(unavailable)? {
                    let (key, value) = item.map_err(unavailable)?;
                    let key = key.value();
                    if !key.starts_with(prefix.as_str()) {
                        break;
                    }
                    if after.as_deref() == Some(key) || Entry::live(value.value(), now).is_none() {
                        continue;
                    }
                    keys.push(key.to_owned());
                    if keys.len() >= limit as usize {
                        break;
                    }
                }
                Ok(keys)
            })
            .await?;
        Ok(keys.unwrap_or_default())
    }

    async fn increment(&self, app: &str, key: &str, delta: i64) -> Result<i64, KvError> {
        let key = key.to_owned();
        let now = now_ms();
        self.write(app, move |table| {
            let current = table
                .get(key.as_str())
                .map_err(unavailable)?
                .and_then(|v| Entry::live(v.value(), now));
            let (entry, new) = Entry::incremented(current, delta)?;
            table
                .insert(key.as_str(), entry.encode().as_slice())
                .map_err(unavailable)?;
            Ok(new)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_round_trips_with_and_without_expiry() {
        let forever = Entry::new(b"v".to_vec(), None, 1000);
        assert_eq!(Entry::decode(&forever.encode()), Some(forever.clone()));
        let brief = Entry::new(b"v".to_vec(), Some(Duration::from_millis(500)), 1000);
        assert_eq!(brief.expires_at_ms, Some(1500));
        assert_eq!(Entry::decode(&brief.encode()), Some(brief.clone()));
        assert!(Entry::live(&brief.encode(), 1499).is_some());
        assert!(Entry::live(&brief.encode(), 1500).is_none());
        assert!(Entry::decode(b"short").is_none());
    }

    #[test]
    fn increment_counts_from_zero_keeps_the_expiry_and_refuses_non_numbers() {
        let (entry, n) = Entry::incremented(None, 5).expect("from nothing");
        assert_eq!((n, entry.value.as_slice()), (5, b"5".as_slice()));
        let timed = Entry {
            expires_at_ms: Some(99),
            value: b"41".to_vec(),
        };
        let (entry, n) = Entry::incremented(Some(timed), 1).expect("adds");
        assert_eq!((n, entry.expires_at_ms), (42, Some(99)));
        let text = Entry::new(b"hello".to_vec(), None, 0);
        assert!(matches!(
            Entry::incremented(Some(text), 1),
            Err(KvError::NotANumber(_))
        ));
        let max = Entry::new(i64::MAX.to_string().into_bytes(), None, 0);
        assert!(matches!(
            Entry::incremented(Some(max), 1),
            Err(KvError::NotANumber(_))
        ));
    }

    #[test]
    fn checks_refuse_what_is_out_of_range() {
        assert!(check_key("").is_err());
        assert!(check_key(&"k".repeat(MAX_KEY_BYTES)).is_ok());
        assert!(check_key(&"k".repeat(MAX_KEY_BYTES + 1)).is_err());
        assert!(matches!(
            check_value(&vec![0; MAX_VALUE_BYTES + 1]),
            Err(KvError::TooLarge(_))
        ));
        assert!(check_ttl(Some(0)).is_err());
        assert!(check_ttl(Some(MAX_TTL_MS + 1)).is_err());
        assert_eq!(check_ttl(Some(5)), Ok(Some(Duration::from_millis(5))));
        assert!(check_limit(0).is_err());
        assert!(check_limit(MAX_PAGE + 1).is_err());
    }

    #[tokio::test]
    async fn the_embedded_store_keeps_apps_apart_and_survives_reopening() {
        let dir = tempfile::tempdir().expect("temp dir");
        {
            let store = Embedded::open(dir.path()).expect("opens");
            store
                .set("a", "k", Entry::new(b"1".to_vec(), None, now_ms()))
                .await
                .expect("set");
            assert_eq!(store.get("b", "k").await, Ok(None));
            assert_eq!(store.increment("a", "n", 2).await, Ok(2));
            assert_eq!(store.increment("a", "n", 3).await, Ok(5));
        }
        let store = Embedded::open(dir.path()).expect("reopens");
        assert_eq!(store.get("a", "k").await, Ok(Some(b"1".to_vec())));
        assert_eq!(store.get("a", "n").await, Ok(Some(b"5".to_vec())));
        store.delete("a", "k").await.expect("delete");
        assert_eq!(store.get("a", "k").await, Ok(None));
    }

    #[tokio::test]
    async fn listing_pages_through_a_prefix_and_skips_expired_keys() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Embedded::open(dir.path()).expect("opens");
        let now = now_ms();
        for key in ["a1", "b1", "b2", "b3", "c1"] {
            let entry = Entry::new(key.as_bytes().to_vec(), None, now);
            store.set("app", key, entry).await.expect("set");
        }
        let gone = Entry {
            expires_at_ms: Some(1),
            value: Vec::new(),
        };
        store.set("app", "b0", gone).await.expect("set");
        let page = store.list_keys("app", "b", None, 2).await.expect("list");
        assert_eq!(page, ["b1", "b2"]);
        let page = store
            .list_keys("app", "b", Some("b2"), 2)
            .await
            .expect("list");
        assert_eq!(page, ["b3"]);
        let page = store
            .list_keys("app", "b", Some("b3"), 2)
            .await
            .expect("list");
        assert!(page.is_empty());
        assert!(
            store
                .list_keys("other", "", None, 10)
                .await
                .expect("list")
                .is_empty()
        );
        assert_eq!(store.get("app", "b0").await, Ok(None));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn writes_side_by_side_share_commits_and_each_gets_its_own_answer() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Arc::new(Embedded::open(dir.path()).expect("opens"));
        let text = Entry::new(b"hello".to_vec(), None, now_ms());
        store.set("app", "text", text).await.expect("set");
        let mut writes = tokio::task::JoinSet::new();
        for i in 0..300 {
            let store = store.clone();
            // Every tenth write fails on its own; the others in its commit must not.
            let key = if i % 10 == 0 { "text" } else { "n" };
            writes.spawn(async move { store.increment("app", key, 1).await });
        }
        let (mut counted, mut refused) = (0, 0);
        while let Some(done) = writes.join_next().await {
            match done.expect("task") {
                Ok(_) => counted += 1,
                Err(KvError::NotANumber(_)) => refused += 1,
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!((counted, refused), (270, 30));
        assert_eq!(store.get("app", "n").await, Ok(Some(b"270".to_vec())));
        assert_eq!(store.get("app", "text").await, Ok(Some(b"hello".to_vec())));
    }
}
