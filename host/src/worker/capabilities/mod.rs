//! What a plugin may reach beyond the API, each only as its app's `[apps.NAME]` table
//! grants: its variables, its own key-value store, and outbound HTTP to allowed hosts.
//! The `variables` and `kv` imports are implemented here; `wasi:http` is wasmtime's, with
//! our checks in its send hook ([`http`]).

pub mod http;
pub mod kv;

use std::collections::BTreeMap;
use std::sync::Arc;

use super::bindings::switchboard::plugin::{kv as wit_kv, variables};
use super::state::InstanceState;
use crate::bus::AppName;
pub use http::{Outbound, OutboundHooks, WallBudget};
pub use kv::{KvBackend, KvError};

/// What the instances of one app are granted.
#[derive(Clone, Debug)]
pub struct Grants {
    /// The app's variables, resolved.
    pub variables: Arc<BTreeMap<String, String>>,
    /// Where it may send HTTP requests, and for how long.
    pub outbound: Arc<Outbound>,
    /// The store its keys live in.
    pub kv: KvBackend,
}

impl From<KvError> for wit_kv::KvError {
    fn from(e: KvError) -> Self {
        use wit_kv::KvError as W;
        match e {
            KvError::InvalidKey(d) => W::InvalidKey(d),
            KvError::TooLarge(d) => W::TooLarge(d),
            KvError::NotANumber(d) => W::NotANumber(d),
            KvError::InvalidArgument(d) => W::InvalidArgument(d),
            KvError::Unavailable(d) => W::Unavailable(d),
        }
    }
}

impl variables::Host for InstanceState {
    async fn get(&mut self, name: String) -> Option<String> {
        self.grants.variables.get(&name).cloned()
    }
}

type KvResult<T> = Result<T, wit_kv::KvError>;

impl InstanceState {
    /// The store and the app, owned, so no borrow of the state is held across an await.
    fn kv(&self) -> (Arc<dyn kv::KvStore>, AppName) {
        (self.grants.kv.store().clone(), self.app.clone())
    }
}

impl wit_kv::Host for InstanceState {
    async fn get(&mut self, key: String) -> KvResult<Option<Vec<u8>>> {
        kv::check_key(&key)?;
        let (store, app) = self.kv();
        Ok(store.get(&app, &key).await?)
    }

    async fn set(&mut self, key: String, value: Vec<u8>, ttl_ms: Option<u64>) -> KvResult<()> {
        kv::check_key(&key)?;
        kv::check_value(&value)?;
        let ttl = kv::check_ttl(ttl_ms)?;
        let (store, app) = self.kv();
        let entry = kv::Entry::new(value, ttl, kv::now_ms());
        Ok(store.set(&app, &key, entry).await?)
    }

    async fn delete(&mut self, key: String) -> KvResult<()> {
        kv::check_key(&key)?;
        let (store, app) = self.kv();
        Ok(store.delete(&app, &key).await?)
    }

    async fn list_keys(
        &mut self,
        prefix: String,
        after: Option<String>,
        limit: u32,
    ) -> KvResult<Vec<String>> {
        let limit = kv::check_limit(limit)?;
        let (store, app) = self.kv();
        Ok(store
            .list_keys(&app, &prefix, after.as_deref(), limit)
            .await?)
    }

    async fn increment(&mut self, key: String, delta: i64) -> KvResult<i64> {
        kv::check_key(&key)?;
        let (store, app) = self.kv();
        Ok(store.increment(&app, &key, delta).await?)
    }
}
