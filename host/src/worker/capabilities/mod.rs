//! What a plugin may reach beyond the API, each only as its app's `[apps.NAME]` table
//! grants: its variables, its own key-value store, and outbound HTTP to allowed hosts.
//! The `variables` and `kv` imports are implemented here; `wasi:http` is wasmtime's, with
//! our checks in its send hook ([`http`]).

pub mod http;
pub mod kv;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

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

/// One store operation, its time added to the event's wall-time limit: a plugin that makes
/// many calls to a slow store is waiting, not stuck.
struct KvCall {
    store: Arc<dyn kv::KvStore>,
    app: AppName,
    wall: WallBudget,
    started: Instant,
}

impl KvCall {
    /// Ends the call with its outcome.
    fn done<T>(self, outcome: Result<T, KvError>) -> KvResult<T> {
        self.wall.grant(self.started.elapsed());
        Ok(outcome?)
    }
}

impl InstanceState {
    /// A store call, owning what it needs, so no borrow of the state is held across an await.
    fn kv(&self) -> KvCall {
        KvCall {
            store: self.grants.kv.store().clone(),
            app: self.app.clone(),
            wall: self.wall.clone(),
            started: Instant::now(),
        }
    }
}

impl wit_kv::Host for InstanceState {
    async fn get(&mut self, key: String) -> KvResult<Option<Vec<u8>>> {
        kv::check_key(&key)?;
        let call = self.kv();
        let outcome = call.store.get(&call.app, &key).await;
        call.done(outcome)
    }

    async fn set(&mut self, key: String, value: Vec<u8>, ttl_ms: Option<u64>) -> KvResult<()> {
        kv::check_key(&key)?;
        kv::check_value(&value)?;
        let ttl = kv::check_ttl(ttl_ms)?;
        let entry = kv::Entry::new(value, ttl, kv::now_ms());
        let call = self.kv();
        let outcome = call.store.set(&call.app, &key, entry).await;
        call.done(outcome)
    }

    async fn delete(&mut self, key: String) -> KvResult<()> {
        kv::check_key(&key)?;
        let call = self.kv();
        let outcome = call.store.delete(&call.app, &key).await;
        call.done(outcome)
    }

    async fn list_keys(
        &mut self,
        prefix: String,
        after: Option<String>,
        limit: u32,
    ) -> KvResult<Vec<String>> {
        let limit = kv::check_limit(limit)?;
        let call = self.kv();
        let outcome = (call.store)
            .list_keys(&call.app, &prefix, after.as_deref(), limit)
            .await;
        call.done(outcome)
    }

    async fn increment(&mut self, key: String, delta: i64) -> KvResult<i64> {
        kv::check_key(&key)?;
        let call = self.kv();
        let outcome = call.store.increment(&call.app, &key, delta).await;
        call.done(outcome)
    }
}
