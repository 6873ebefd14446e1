//! The app's key-value store: shared by every instance of the app (on every worker of a
//! cluster), invisible to other apps, kept across restarts and hot swaps.
//!
//! Keys are non-empty strings of at most 1024 bytes; values are bytes, at most 1 000 000.
//!
//! ```ignore
//! use switchboard_sdk::kv;
//! use std::time::Duration;
//!
//! kv::set("greeting", "hello")?;
//! assert_eq!(kv::get_string("greeting")?.as_deref(), Some("hello"));
//! kv::set_with_ttl("session:abc", "uid-1", Duration::from_secs(3600))?;
//! let visits = kv::increment("visits", 1)?;
//! for key in kv::keys("session:") {
//!     let key = key?;
//! }
//! ```

use std::fmt;
use std::time::Duration;

use crate::bindings::switchboard::plugin::kv as raw;

/// Why a store operation failed; each case carries the host's detail.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum KvError {
    /// A key that is empty or longer than 1024 bytes.
    InvalidKey(String),
    /// A value above 1 000 000 bytes.
    TooLarge(String),
    /// `increment` of a value that is not a decimal 64-bit integer, or an overflow.
    NotANumber(String),
    /// Another argument out of its range (a time to live, a page limit).
    InvalidArgument(String),
    /// The store failed or did not answer in time; the operation may be retried.
    Unavailable(String),
}

impl KvError {
    /// The WIT name of the case: `invalid-key`, `too-large`, `not-a-number`,
    /// `invalid-argument` or `unavailable`.
    pub fn kind(&self) -> &'static str {
        match self {
            KvError::InvalidKey(_) => "invalid-key",
            KvError::TooLarge(_) => "too-large",
            KvError::NotANumber(_) => "not-a-number",
            KvError::InvalidArgument(_) => "invalid-argument",
            KvError::Unavailable(_) => "unavailable",
        }
    }

    /// The human-readable detail.
    pub fn detail(&self) -> &str {
        match self {
            KvError::InvalidKey(d)
            | KvError::TooLarge(d)
            | KvError::NotANumber(d)
            | KvError::InvalidArgument(d)
            | KvError::Unavailable(d) => d,
        }
    }
}

impl fmt::Display for KvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind(), self.detail())
    }
}

impl std::error::Error for KvError {}

impl From<raw::KvError> for KvError {
    fn from(e: raw::KvError) -> Self {
        match e {
            raw::KvError::InvalidKey(d) => KvError::InvalidKey(d),
            raw::KvError::TooLarge(d) => KvError::TooLarge(d),
            raw::KvError::NotANumber(d) => KvError::NotANumber(d),
            raw::KvError::InvalidArgument(d) => KvError::InvalidArgument(d),
            raw::KvError::Unavailable(d) => KvError::Unavailable(d),
        }
    }
}

/// The result of a store operation.
pub type Result<T> = std::result::Result<T, KvError>;

/// The value of `key`, or `None` if it is not set (or has expired).
pub fn get(key: &str) -> Result<Option<Vec<u8>>> {
    Ok(raw::get(key)?)
}

/// The value of `key` as text (invalid UTF-8 replaced), or `None`.
pub fn get_string(key: &str) -> Result<Option<String>> {
    Ok(get(key)?.map(|v| String::from_utf8_lossy(&v).into_owned()))
}

/// Sets `key` to `value`, to stay until deleted.
pub fn set(key: &str, value: impl AsRef<[u8]>) -> Result<()> {
    Ok(raw::set(key, value.as_ref(), None)?)
}

/// Sets `key` to `value` for `ttl` (1 ms to a year), after which it disappears.
pub fn set_with_ttl(key: &str, value: impl AsRef<[u8]>, ttl: Duration) -> Result<()> {
    let ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
    Ok(raw::set(key, value.as_ref(), Some(ms))?)
}

/// Removes `key`; a key that is not set is no error.
pub fn delete(key: &str) -> Result<()> {
    Ok(raw::delete(key)?)
}

/// Whether `key` is set.
pub fn exists(key: &str) -> Result<bool> {
    Ok(get(key)?.is_some())
}

/// Adds `delta` to the integer at `key` (a missing key counts as 0) atomically, across every
/// instance, and returns the new value.
pub fn increment(key: &str, delta: i64) -> Result<i64> {
    Ok(raw::increment(key, delta)?)
}

/// One page of the keys that start with `prefix`, sorted, after `after`, at most `limit`
/// (1..=1000). An empty page means the end.
pub fn list_keys(prefix: &str, after: Option<&str>, limit: u32) -> Result<Vec<String>> {
    Ok(raw::list_keys(prefix, after, limit)?)
}

/// Every key that starts with `prefix`, sorted, fetched a page at a time.
pub fn keys(prefix: &str) -> Keys {
    Keys {
        prefix: prefix.to_owned(),
        after: None,
        page: Vec::new().into_iter(),
        done: false,
    }
}

/// The iterator of [`keys`].
#[derive(Debug)]
pub struct Keys {
    prefix: String,
    after: Option<String>,
    page: std::vec::IntoIter<String>,
    done: bool,
}

/// Keys fetched per call.
const PAGE: u32 = 500;

impl Iterator for Keys {
    type Item = Result<String>;

    fn next(&mut self) -> Option<Result<String>> {
        if let Some(key) = self.page.next() {
            self.after = Some(key.clone());
            return Some(Ok(key));
        }
        if self.done {
            return None;
        }
        match list_keys(&self.prefix, self.after.as_deref(), PAGE) {
            Ok(page) if page.is_empty() => {
                self.done = true;
                None
            }
            Ok(page) => {
                self.page = page.into_iter();
                self.next()
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}
