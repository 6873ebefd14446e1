//! The client registry: who is connected and what each client is bound to.
//!
//! Plain data, no I/O and no clock: the gateway feeds it times and handles. Every index is a
//! sorted map or set, so lists come out sorted and a cursor (`after`) stays valid while
//! clients come and go. A uid or group entry exists exactly while it has clients.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::ops::Bound as Edge;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::bus::{
    Bound, ClientFilter, ClientId, ClientInfo, Command, Context, GatewayId, Group, InfoFields,
    Protocol, Query, Reply, Session, SessionTooLarge, SystemInfo, Target, Uid,
};

/// What the registry keeps about one client; `H` is how the gateway reaches its connection.
#[derive(Debug)]
pub struct Entry<H> {
    /// Index of the listener that accepted the client.
    pub listener: usize,
    /// The client's address.
    pub remote_addr: SocketAddr,
    /// How the client is connected.
    pub protocol: Protocol,
    /// Its uid, if bound.
    pub uid: Option<Uid>,
    /// Its groups.
    pub groups: BTreeSet<Group>,
    /// Its session.
    pub session: Session,
    /// Connect time, ms since the Unix epoch.
    pub connected_at_ms: u64,
    /// What the client sent and was sent; its connection counts into it without this
    /// registry's lock.
    pub traffic: Arc<Traffic>,
    /// The connection's handle.
    pub handle: H,
}

/// A client's traffic: counted by its connection as it reads and writes, read by
/// `get-client-info`. Atomics, so counting never takes the registry's lock, which every
/// message of the app needs too.
#[derive(Debug, Default)]
pub struct Traffic {
    last_active_ms: AtomicU64,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
}

impl Traffic {
    /// The client sent something at `now_ms` (ms since the Unix epoch).
    pub fn active(&self, now_ms: u64) {
        self.last_active_ms.store(now_ms, Ordering::Relaxed);
    }

    /// The client sent a message of `bytes` at `now_ms`.
    pub fn received(&self, bytes: u64, now_ms: u64) {
        self.bytes_in.fetch_add(bytes, Ordering::Relaxed);
        self.active(now_ms);
    }

    /// `bytes` of messages were written to the client.
    pub fn sent(&self, bytes: u64) {
        self.bytes_out.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Last time the client sent anything, ms since the Unix epoch.
    pub fn last_active_ms(&self) -> u64 {
        self.last_active_ms.load(Ordering::Relaxed)
    }

    /// Message bytes received.
    pub fn bytes_in(&self) -> u64 {
        self.bytes_in.load(Ordering::Relaxed)
    }

    /// Message bytes sent.
    pub fn bytes_out(&self) -> u64 {
        self.bytes_out.load(Ordering::Relaxed)
    }
}

impl<H> Entry<H> {
    /// A fresh client: no uid, no groups, an empty session.
    pub fn new(
        listener: usize,
        remote_addr: SocketAddr,
        protocol: Protocol,
        now_ms: u64,
        handle: H,
    ) -> Self {
        Self {
            listener,
            remote_addr,
            protocol,
            uid: None,
            groups: BTreeSet::new(),
            session: Session::default(),
            connected_at_ms: now_ms,
            traffic: Arc::new(Traffic {
                last_active_ms: AtomicU64::new(now_ms),
                ..Traffic::default()
            }),
            handle,
        }
    }
}

/// What [`Registry::remove`] hands back about a client that left.
#[derive(Debug)]
pub struct Removed<H> {
    /// The uid and groups it had.
    pub bound: Bound,
    /// Its context as it was just before removal.
    pub ctx: Context,
    /// The connection's handle.
    pub handle: H,
}

/// Every connected client (handshake finished) of one gateway, with its uid and group indexes.
#[derive(Debug)]
pub struct Registry<H> {
    clients: BTreeMap<ClientId, Entry<H>>,
    uids: BTreeMap<Uid, BTreeSet<ClientId>>,
    groups: BTreeMap<Group, BTreeSet<ClientId>>,
}

impl<H> Default for Registry<H> {
    fn default() -> Self {
        Self {
            clients: BTreeMap::new(),
            uids: BTreeMap::new(),
            groups: BTreeMap::new(),
        }
    }
}

impl<H> Registry<H> {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Connected clients.
    pub fn len(&self) -> usize {
        self.clients.len()
    }

    /// Whether no client is connected.
    pub fn is_empty(&self) -> bool {
        self.clients.is_empty()
    }

    /// Distinct bound uids.
    pub fn uid_count(&self) -> usize {
        self.uids.len()
    }

    /// Groups that have members.
    pub fn group_count(&self) -> usize {
        self.groups.len()
    }

    /// Adds a client; an id already present is left untouched and `false` returned.
    pub fn insert(&mut self, id: ClientId, entry: Entry<H>) -> bool {
        if self.clients.contains_key(&id) {
            return false;
        }
        // An entry may arrive pre-bound (tests, or a future transfer); index what it holds.
        if let Some(uid) = &entry.uid {
            self.uids.entry(uid.clone()).or_default().insert(id);
        }
        for group in &entry.groups {
            self.groups.entry(group.clone()).or_default().insert(id);
        }
        self.clients.insert(id, entry);
        true
    }

    /// The client's entry.
    pub fn get(&self, id: ClientId) -> Option<&Entry<H>> {
        self.clients.get(&id)
    }

    /// The client's entry, to change its counters.
    pub fn get_mut(&mut self, id: ClientId) -> Option<&mut Entry<H>> {
        self.clients.get_mut(&id)
    }

    /// The context an event about the client carries: its uid and a session snapshot.
    pub fn context(&self, id: ClientId) -> Option<Context> {
        self.clients.get(&id).map(|e| context(id, e))
    }

    /// Removes a client from every index and reports what it was bound to.
    pub fn remove(&mut self, id: ClientId) -> Option<Removed<H>> {
        let entry = self.clients.remove(&id)?;
        let ctx = context(id, &entry);
        if let Some(uid) = &entry.uid {
            remove_member(&mut self.uids, uid, id);
        }
        for group in &entry.groups {
            remove_member(&mut self.groups, group, id);
        }
        Some(Removed {
            bound: Bound {
                uid: entry.uid,
                groups: entry.groups.into_iter().collect(),
            },
            ctx,
            handle: entry.handle,
        })
    }

    /// Binds the client to `uid`, moving it from any other uid; `false` if it is unknown.
    pub fn bind_uid(&mut self, id: ClientId, uid: Uid) -> bool {
        let Some(entry) = self.clients.get_mut(&id) else {
            return false;
        };
        if entry.uid.as_ref() == Some(&uid) {
            return true;
        }
        if let Some(old) = entry.uid.replace(uid.clone()) {
            remove_member(&mut self.uids, &old, id);
        }
        self.uids.entry(uid).or_default().insert(id);
        true
    }

    /// Clears the client's uid; `false` if the client is unknown.
    pub fn unbind_uid(&mut self, id: ClientId) -> bool {
        let Some(entry) = self.clients.get_mut(&id) else {
            return false;
        };
        if let Some(old) = entry.uid.take() {
            remove_member(&mut self.uids, &old, id);
        }
        true
    }

    /// Makes the client a member of `group`; `false` if the client is unknown.
    pub fn join_group(&mut self, id: ClientId, group: Group) -> bool {
        let Some(entry) = self.clients.get_mut(&id) else {
            return false;
        };
        if entry.groups.insert(group.clone()) {
            self.groups.entry(group).or_default().insert(id);
        }
        true
    }

    /// Removes the client from `group`; `false` if the client is unknown.
    pub fn leave_group(&mut self, id: ClientId, group: &Group) -> bool {
        let Some(entry) = self.clients.get_mut(&id) else {
            return false;
        };
        if entry.groups.remove(group) {
            remove_member(&mut self.groups, group, id);
        }
        true
    }

    /// Removes every membership of `group`; its clients stay connected.
    pub fn ungroup(&mut self, group: &Group) {
        for id in self.groups.remove(group).unwrap_or_default() {
            if let Some(entry) = self.clients.get_mut(&id) {
                entry.groups.remove(group);
            }
        }
    }

    /// Replaces the client's session; `false` if the client is unknown.
    pub fn set_session(&mut self, id: ClientId, session: Session) -> bool {
        self.clients
            .get_mut(&id)
            .map(|e| e.session = session)
            .is_some()
    }

    /// Shallow-merges into the client's session; `Ok(false)` if the client is unknown.
    pub fn update_session(
        &mut self,
        id: ClientId,
        update: &Session,
    ) -> Result<bool, SessionTooLarge> {
        match self.clients.get_mut(&id) {
            Some(entry) => entry.session.merge(update).map(|()| true),
            None => Ok(false),
        }
    }

    /// Applies a command that only changes what is kept here (uids, groups, sessions) and
    /// gives back the others (sends and closes), which must reach the clients' connections.
    pub fn apply_state(&mut self, command: Command) -> Result<Option<Command>, SessionTooLarge> {
        match command {
            Command::BindUid { client, uid } => {
                self.bind_uid(client, uid);
            }
            Command::UnbindUid { client } => {
                self.unbind_uid(client);
            }
            Command::JoinGroup { client, group } => {
                self.join_group(client, group);
            }
            Command::LeaveGroup { client, group } => {
                self.leave_group(client, &group);
            }
            Command::Ungroup { group } => self.ungroup(&group),
            Command::SetSession { client, session } => {
                self.set_session(client, session);
            }
            Command::UpdateSession { client, session } => {
                self.update_session(client, &session)?;
            }
            io @ (Command::Send { .. } | Command::Close { .. }) => return Ok(Some(io)),
        }
        Ok(None)
    }

    /// Empties the client's session; `false` if the client is unknown.
    pub fn delete_session(&mut self, id: ClientId) -> bool {
        self.set_session(id, Session::default())
    }

    /// Calls `f` for every client `to` reaches, in id order, skipping `without`.
    pub fn for_each_target(
        &self,
        to: &Target,
        without: &[ClientId],
        mut f: impl FnMut(ClientId, &Entry<H>),
    ) {
        // Sorted once, so a long `without` list costs log n per client, not n.
        let mut skip = without.to_vec();
        skip.sort_unstable();
        let mut visit = |id: ClientId, entry: &Entry<H>| {
            if skip.binary_search(&id).is_err() {
                f(id, entry);
            }
        };
        match to {
            Target::Client(id) => {
                if let Some(entry) = self.clients.get(id) {
                    visit(*id, entry);
                }
            }
            Target::Uid(uid) => self.each_member(self.uids.get(uid), visit),
            Target::Group(group) => self.each_member(self.groups.get(group), visit),
            Target::All => self.clients.iter().for_each(|(id, e)| visit(*id, e)),
            Target::Clients(ids) => self.each_listed(ids, visit),
            Target::Uids(uids) => {
                self.each_member_of_any(uids.iter().map(|u| self.uids.get(u)), visit)
            }
            Target::Groups(groups) => {
                self.each_member_of_any(groups.iter().map(|g| self.groups.get(g)), visit);
            }
        }
    }

    fn each_member(
        &self,
        members: Option<&BTreeSet<ClientId>>,
        mut f: impl FnMut(ClientId, &Entry<H>),
    ) {
        for id in members.into_iter().flatten() {
            if let Some(entry) = self.clients.get(id) {
                f(*id, entry);
            }
        }
    }

    /// Answers a query as API.md defines it; `gateway` fills the system facts.
    pub fn answer(&self, query: &Query, gateway: GatewayId) -> Reply {
        match query {
            Query::IsOnline(id) => Reply::Bool(self.clients.contains_key(id)),
            Query::IsUidOnline(uid) => Reply::Bool(self.uids.contains_key(uid)),
            Query::ClientCount(filter) => Reply::Count(self.client_count(filter) as u64),
            // One gateway's list is already unique, so `exact`/`unique` change nothing here;
            // they tell a cluster transport how to merge gateways' answers.
            Query::UidCount { group, .. } => {
                // Counted without copying a uid.
                let count = match group {
                    None => self.uids.len(),
                    Some(group) => self.group_uids(group).len(),
                };
                Reply::Count(count as u64)
            }
            Query::ClientList {
                filter,
                after,
                limit,
            } => Reply::Clients(self.client_list(filter, *after, *limit)),
            Query::UidList { group, .. } => Reply::Uids(self.uid_list(group.as_ref())),
            Query::GroupList { .. } => Reply::Groups(self.groups.keys().cloned().collect()),
            Query::ClientInfo { client, fields } => {
                Reply::Info(self.client_info(*client, *fields, gateway).map(Box::new))
            }
            Query::Session(id) => Reply::Session(self.clients.get(id).map(|e| e.session.clone())),
            Query::UidPage {
                group,
                after,
                limit,
            } => Reply::Uids(self.uid_page(group.as_ref(), after.as_ref(), *limit)),
            Query::GroupPage { after, limit } => {
                Reply::Groups(self.group_page(after.as_ref(), *limit))
            }
            Query::Sessions {
                group,
                after,
                limit,
            } => {
                let (page, cut) = self.session_page(group.as_ref(), *after, *limit);
                Reply::Sessions { page, cut }
            }
            Query::GroupCounts(groups) => Reply::Counts(self.group_counts(groups)),
            Query::ClientsOfUids(uids) => Reply::ClientsOfUids(self.clients_of_uids(uids)),
        }
    }

    fn client_count(&self, filter: &ClientFilter) -> usize {
        match filter {
            ClientFilter::All => self.clients.len(),
            ClientFilter::Group(group) => self.groups.get(group).map_or(0, BTreeSet::len),
            ClientFilter::Uid(uid) => self.uids.get(uid).map_or(0, BTreeSet::len),
        }
    }

    /// One page of matching clients, sorted, strictly after `after`.
    fn client_list(
        &self,
        filter: &ClientFilter,
        after: Option<ClientId>,
        limit: u32,
    ) -> Vec<ClientId> {
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        let range = (
            after.map_or(Edge::Unbounded, Edge::Excluded),
            Edge::Unbounded,
        );
        let page_of = |set: Option<&BTreeSet<ClientId>>| -> Vec<ClientId> {
            set.map(|s| s.range(range).take(limit).copied().collect())
                .unwrap_or_default()
        };
        match filter {
            ClientFilter::All => self
                .clients
                .range(range)
                .take(limit)
                .map(|(id, _)| *id)
                .collect(),
            ClientFilter::Group(group) => page_of(self.groups.get(group)),
            ClientFilter::Uid(uid) => page_of(self.uids.get(uid)),
        }
    }

    /// Bound uids, sorted and unique; among a group's members if given.
    fn uid_list(&self, group: Option<&Group>) -> Vec<Uid> {
        match group {
            None => self.uids.keys().cloned().collect(),
            Some(group) => self.group_uids(group).into_iter().cloned().collect(),
        }
    }

    /// The uids bound by a group's members, sorted and unique.
    fn group_uids(&self, group: &Group) -> BTreeSet<&Uid> {
        let members = self.groups.get(group).into_iter().flatten();
        members
            .filter_map(|id| self.clients.get(id)?.uid.as_ref())
            .collect()
    }

    fn client_info(
        &self,
        id: ClientId,
        fields: InfoFields,
        gateway: GatewayId,
    ) -> Option<ClientInfo> {
        let e = self.clients.get(&id)?;
        Some(ClientInfo {
            client: id,
            remote_ip: fields.remote_ip.then(|| e.remote_addr.ip()),
            remote_port: fields.remote_port.then(|| e.remote_addr.port()),
            uid: e.uid.clone().filter(|_| fields.uid),
            session: fields.session.then(|| e.session.clone()),
            groups: fields.groups.then(|| e.groups.iter().cloned().collect()),
            system: fields.system.then_some(SystemInfo {
                protocol: e.protocol,
                connected_at_ms: e.connected_at_ms,
                last_active_ms: e.traffic.last_active_ms(),
                bytes_in: e.traffic.bytes_in(),
                bytes_out: e.traffic.bytes_out(),
                gateway,
            }),
        })
    }
}

fn context<H>(id: ClientId, entry: &Entry<H>) -> Context {
    Context {
        client: id,
        remote_addr: entry.remote_addr,
        uid: entry.uid.clone(),
        session: entry.session.clone(),
    }
}

/// Removes `id` from the set under `key`, deleting the set once it is empty.
fn remove_member<K: Ord>(index: &mut BTreeMap<K, BTreeSet<ClientId>>, key: &K, id: ClientId) {
    if let Some(set) = index.get_mut(key) {
        set.remove(&id);
        if set.is_empty() {
            index.remove(key);
        }
    }
}

mod bulk;
#[cfg(test)]
mod tests;
