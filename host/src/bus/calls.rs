//! The functions of the WIT `api` interface on top of the bus: the one mapping from such a
//! call to commands and queries, with API.md's argument checks.
//!
//! Both callers go through here: the worker (a plugin's imports, `worker::host_api`) and the
//! HTTP server API (`crate::api`). Each converts its own argument types to these and maps
//! [`CallError`] to its own error shape, so the two cannot drift apart.

use std::sync::Arc;

use super::{
    AppName, BusError, ClientFilter, ClientId, ClientInfo, Command, Gateways, Group, InfoFields,
    InvalidClientId, Message, Query, Reply, Session, Target, Uid,
};

/// Largest message that may be sent.
pub const MAX_SEND_BYTES: usize = 16 * 1024 * 1024;

/// Longest page of a list call.
pub const MAX_PAGE: u32 = 1000;

/// Most names (uids, groups or client ids) one list-form call takes: a bus message stays
/// well under NATS's default 1 MiB payload even with names of 256 bytes.
pub const MAX_LIST: usize = 1000;

/// An error the caller can act on: the cases of the WIT `error` variant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// A client id that is not 20 lowercase hex characters.
    #[error("{0}")]
    InvalidClientId(String),
    /// A uid or group that is empty or longer than 256 bytes.
    #[error("{0}")]
    InvalidName(String),
    /// A message or session above the host's limit.
    #[error("{0}")]
    TooLarge(String),
    /// Another argument out of its range.
    #[error("{0}")]
    InvalidArgument(String),
    /// A cluster query that did not complete in time.
    #[error("{0}")]
    Timeout(String),
}

impl CallError {
    /// The WIT case name, in kebab-case.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::InvalidClientId(_) => "invalid-client-id",
            Self::InvalidName(_) => "invalid-name",
            Self::TooLarge(_) => "too-large",
            Self::InvalidArgument(_) => "invalid-argument",
            Self::Timeout(_) => "timeout",
        }
    }
}

impl From<BusError> for CallError {
    fn from(e: BusError) -> Self {
        match e {
            BusError::Timeout(what) => Self::Timeout(what),
            BusError::SessionTooLarge(e) => Self::TooLarge(e.to_string()),
            // A malformed reply is the host's fault, but the caller can only retry or give up.
            e @ BusError::UnexpectedReply { .. } => Self::Timeout(e.to_string()),
        }
    }
}

type CallResult<T> = Result<T, CallError>;

/// Checks a client id.
pub fn client_id(id: &str) -> CallResult<ClientId> {
    id.parse()
        .map_err(|e: InvalidClientId| CallError::InvalidClientId(e.to_string()))
}

fn client_ids(ids: &[String]) -> CallResult<Vec<ClientId>> {
    ids.iter().map(|id| client_id(id)).collect()
}

/// Checks a list argument's length; `what` names it in the error.
fn list_len<T>(items: &[T], what: &str) -> CallResult<()> {
    if items.len() > MAX_LIST {
        return Err(CallError::InvalidArgument(format!(
            "at most {MAX_LIST} {what} per call, got {}",
            items.len()
        )));
    }
    Ok(())
}

/// Checks names and returns them sorted, each once: the order list queries answer in.
fn names<T: Ord>(
    names: Vec<String>,
    what: &str,
    check: fn(String) -> CallResult<T>,
) -> CallResult<Vec<T>> {
    list_len(&names, what)?;
    let set: std::collections::BTreeSet<T> =
        names.into_iter().map(check).collect::<CallResult<_>>()?;
    Ok(set.into_iter().collect())
}

fn uid(name: String) -> CallResult<Uid> {
    Uid::new(name).map_err(|e| CallError::InvalidName(e.to_string()))
}

fn group(name: String) -> CallResult<Group> {
    Group::new(name).map_err(|e| CallError::InvalidName(e.to_string()))
}

fn message(m: Message) -> CallResult<Message> {
    if m.len() > MAX_SEND_BYTES {
        return Err(CallError::TooLarge(format!(
            "message of {} bytes is above the limit of {MAX_SEND_BYTES} bytes",
            m.len()
        )));
    }
    Ok(m)
}

/// Refuses a message holding a newline when one of `to` reads newline-delimited lines: it would
/// reach that client as several lines, letting its author inject lines. A send to a uid, a
/// group or everyone cannot know its clients' framing here; their gateways drop it instead.
fn expressible(to: &[ClientId], m: &Message) -> CallResult<()> {
    let has_newline = || m.data().contains(&b'\n');
    match to.iter().find(|id| id.reads_lines()) {
        Some(id) if has_newline() => Err(CallError::InvalidArgument(format!(
            "client {id} reads newline-delimited lines (a `text` listener): a message \
             containing a newline would reach it as several lines"
        ))),
        _ => Ok(()),
    }
}

fn session(pairs: Vec<(String, String)>) -> CallResult<Session> {
    Session::new(pairs).map_err(|e| CallError::TooLarge(e.to_string()))
}

fn page_limit(limit: u32) -> CallResult<u32> {
    if (1..=MAX_PAGE).contains(&limit) {
        Ok(limit)
    } else {
        Err(CallError::InvalidArgument(format!(
            "limit must be 1..={MAX_PAGE}, got {limit}"
        )))
    }
}

fn unexpected(query: &Query, reply: Reply) -> CallError {
    BusError::UnexpectedReply {
        query: format!("{query:?}"),
        reply: format!("{reply:?}"),
    }
    .into()
}

/// The API functions of one app, each named after its WIT function. Cheap to clone; it
/// owns its handles, so no borrow of the caller is held across an await.
#[derive(Clone)]
pub struct Calls {
    gateways: Arc<dyn Gateways>,
    app: AppName,
}

impl Calls {
    /// The calls of `app` over these gateways.
    pub fn new(gateways: Arc<dyn Gateways>, app: AppName) -> Self {
        Self { gateways, app }
    }

    async fn command(&self, command: Command) -> CallResult<()> {
        Ok(self.gateways.command(&self.app, command).await?)
    }

    async fn reply(&self, query: Query) -> CallResult<(Query, Reply)> {
        let reply = self.gateways.query(&self.app, query.clone()).await?;
        Ok((query, reply))
    }

    async fn bool(&self, query: Query) -> CallResult<bool> {
        match self.reply(query).await? {
            (_, Reply::Bool(b)) => Ok(b),
            (query, other) => Err(unexpected(&query, other)),
        }
    }

    async fn count(&self, query: Query) -> CallResult<u64> {
        match self.reply(query).await? {
            (_, Reply::Count(n)) => Ok(n),
            (query, other) => Err(unexpected(&query, other)),
        }
    }

    async fn uids(&self, query: Query) -> CallResult<Vec<Uid>> {
        match self.reply(query).await? {
            (_, Reply::Uids(uids)) => Ok(uids),
            (query, other) => Err(unexpected(&query, other)),
        }
    }

    async fn send(&self, to: Target, m: Message, without: &[String]) -> CallResult<()> {
        match &to {
            Target::Client(id) => expressible(std::slice::from_ref(id), &m)?,
            Target::Clients(ids) => expressible(ids, &m)?,
            _ => {}
        }
        let command = Command::Send {
            to,
            message: message(m)?,
            without: client_ids(without)?,
        };
        self.command(command).await
    }

    async fn client_page(
        &self,
        filter: ClientFilter,
        after: Option<&str>,
        limit: u32,
    ) -> CallResult<Vec<ClientId>> {
        let query = Query::ClientList {
            filter,
            after: after.map(client_id).transpose()?,
            limit: page_limit(limit)?,
        };
        match self.reply(query).await? {
            (_, Reply::Clients(ids)) => Ok(ids),
            (query, other) => Err(unexpected(&query, other)),
        }
    }

    /// `send-to-client`.
    pub async fn send_to_client(&self, client: &str, m: Message) -> CallResult<()> {
        self.send(Target::Client(client_id(client)?), m, &[]).await
    }

    /// `send-to-uid`.
    pub async fn send_to_uid(&self, u: String, m: Message, without: &[String]) -> CallResult<()> {
        self.send(Target::Uid(uid(u)?), m, without).await
    }

    /// `send-to-group`.
    pub async fn send_to_group(&self, g: String, m: Message, without: &[String]) -> CallResult<()> {
        self.send(Target::Group(group(g)?), m, without).await
    }

    /// `send-to-all`.
    pub async fn send_to_all(&self, m: Message, without: &[String]) -> CallResult<()> {
        self.send(Target::All, m, without).await
    }

    /// `send-to-uids`: one command, so one bus message per gateway.
    pub async fn send_to_uids(
        &self,
        uids: Vec<String>,
        m: Message,
        without: &[String],
    ) -> CallResult<()> {
        let uids = names(uids, "uids", uid)?;
        if uids.is_empty() {
            return Ok(());
        }
        self.send(Target::Uids(uids), m, without).await
    }

    /// `send-to-groups`: one command, so one bus message per gateway.
    pub async fn send_to_groups(
        &self,
        groups: Vec<String>,
        m: Message,
        without: &[String],
    ) -> CallResult<()> {
        let groups = names(groups, "groups", group)?;
        if groups.is_empty() {
            return Ok(());
        }
        self.send(Target::Groups(groups), m, without).await
    }

    /// `send-to-clients`: one command, split by the cluster transport into one bus message
    /// per gateway holding some of the clients.
    pub async fn send_to_clients(&self, clients: &[String], m: Message) -> CallResult<()> {
        list_len(clients, "client ids")?;
        let mut ids = client_ids(clients)?;
        ids.sort_unstable();
        ids.dedup();
        if ids.is_empty() {
            return Ok(());
        }
        self.send(Target::Clients(ids), m, &[]).await
    }

    /// `is-online`.
    pub async fn is_online(&self, client: &str) -> CallResult<bool> {
        self.bool(Query::IsOnline(client_id(client)?)).await
    }

    /// `is-uid-online`.
    pub async fn is_uid_online(&self, u: String) -> CallResult<bool> {
        self.bool(Query::IsUidOnline(uid(u)?)).await
    }

    /// `get-client-count`.
    pub async fn get_client_count(&self) -> CallResult<u64> {
        self.count(Query::ClientCount(ClientFilter::All)).await
    }

    /// `get-client-count-by-group`.
    pub async fn get_client_count_by_group(&self, g: String) -> CallResult<u64> {
        let query = Query::ClientCount(ClientFilter::Group(group(g)?));
        self.count(query).await
    }

    /// `get-uid-count-by-group`.
    pub async fn get_uid_count_by_group(&self, g: String) -> CallResult<u64> {
        let query = Query::UidCount {
            group: Some(group(g)?),
            exact: true,
        };
        self.count(query).await
    }

    /// `get-uid-count`.
    pub async fn get_uid_count(&self, unique_percent: Option<f32>) -> CallResult<u64> {
        let Some(percent) = unique_percent else {
            let query = Query::UidCount {
                group: None,
                exact: true,
            };
            return self.count(query).await;
        };
        if !percent.is_finite() || percent < 0.0 {
            return Err(CallError::InvalidArgument(format!(
                "unique-percent must be a finite number >= 0, got {percent}"
            )));
        }
        let query = Query::UidCount {
            group: None,
            exact: false,
        };
        let sum = self.count(query).await?;
        Ok((sum as f64 * f64::from(percent)).round() as u64)
    }

    /// `get-client-list`.
    pub async fn get_client_list(
        &self,
        after: Option<&str>,
        limit: u32,
    ) -> CallResult<Vec<ClientId>> {
        self.client_page(ClientFilter::All, after, limit).await
    }

    /// `get-client-list-by-group`.
    pub async fn get_client_list_by_group(
        &self,
        g: String,
        after: Option<&str>,
        limit: u32,
    ) -> CallResult<Vec<ClientId>> {
        self.client_page(ClientFilter::Group(group(g)?), after, limit)
            .await
    }

    /// `get-client-list-by-uid`.
    pub async fn get_client_list_by_uid(
        &self,
        u: String,
        after: Option<&str>,
        limit: u32,
    ) -> CallResult<Vec<ClientId>> {
        self.client_page(ClientFilter::Uid(uid(u)?), after, limit)
            .await
    }

    /// `get-uid-list`.
    pub async fn get_uid_list(&self, unique: bool) -> CallResult<Vec<Uid>> {
        let query = Query::UidList {
            group: None,
            unique,
        };
        self.uids(query).await
    }

    /// `get-uid-list-by-group`.
    pub async fn get_uid_list_by_group(&self, g: String, unique: bool) -> CallResult<Vec<Uid>> {
        let query = Query::UidList {
            group: Some(group(g)?),
            unique,
        };
        self.uids(query).await
    }

    /// `get-group-list`.
    pub async fn get_group_list(&self, unique: bool) -> CallResult<Vec<Group>> {
        match self.reply(Query::GroupList { unique }).await? {
            (_, Reply::Groups(groups)) => Ok(groups),
            (query, other) => Err(unexpected(&query, other)),
        }
    }

    /// `get-uid-list-paged`.
    pub async fn get_uid_list_paged(
        &self,
        after: Option<String>,
        limit: u32,
    ) -> CallResult<Vec<Uid>> {
        let query = Query::UidPage {
            group: None,
            after: after.map(uid).transpose()?,
            limit: page_limit(limit)?,
        };
        self.uids(query).await
    }

    /// `get-uid-list-by-group-paged`.
    pub async fn get_uid_list_by_group_paged(
        &self,
        g: String,
        after: Option<String>,
        limit: u32,
    ) -> CallResult<Vec<Uid>> {
        let query = Query::UidPage {
            group: Some(group(g)?),
            after: after.map(uid).transpose()?,
            limit: page_limit(limit)?,
        };
        self.uids(query).await
    }

    /// `get-group-list-paged`.
    pub async fn get_group_list_paged(
        &self,
        after: Option<String>,
        limit: u32,
    ) -> CallResult<Vec<Group>> {
        let query = Query::GroupPage {
            after: after.map(group).transpose()?,
            limit: page_limit(limit)?,
        };
        match self.reply(query).await? {
            (_, Reply::Groups(groups)) => Ok(groups),
            (query, other) => Err(unexpected(&query, other)),
        }
    }

    async fn sessions(
        &self,
        group: Option<Group>,
        after: Option<&str>,
        limit: u32,
    ) -> CallResult<Vec<(ClientId, Session)>> {
        let query = Query::Sessions {
            group,
            after: after.map(client_id).transpose()?,
            limit: page_limit(limit)?,
        };
        match self.reply(query).await? {
            (_, Reply::Sessions { page, .. }) => Ok(page),
            (query, other) => Err(unexpected(&query, other)),
        }
    }

    /// `get-client-sessions`.
    pub async fn get_client_sessions(
        &self,
        after: Option<&str>,
        limit: u32,
    ) -> CallResult<Vec<(ClientId, Session)>> {
        self.sessions(None, after, limit).await
    }

    /// `get-client-sessions-by-group`.
    pub async fn get_client_sessions_by_group(
        &self,
        g: String,
        after: Option<&str>,
        limit: u32,
    ) -> CallResult<Vec<(ClientId, Session)>> {
        self.sessions(Some(group(g)?), after, limit).await
    }

    /// `get-client-count-by-groups`: one query, so one bus message per gateway.
    pub async fn get_client_count_by_groups(
        &self,
        groups: Vec<String>,
    ) -> CallResult<Vec<(Group, u64)>> {
        let groups = names(groups, "groups", group)?;
        if groups.is_empty() {
            return Ok(Vec::new());
        }
        match self.reply(Query::GroupCounts(groups)).await? {
            (Query::GroupCounts(groups), Reply::Counts(counts)) if counts.len() == groups.len() => {
                Ok(groups.into_iter().zip(counts).collect())
            }
            (query, other) => Err(unexpected(&query, other)),
        }
    }

    /// `get-client-ids-by-uids`: one query, so one bus message per gateway.
    pub async fn get_client_ids_by_uids(
        &self,
        uids: Vec<String>,
    ) -> CallResult<Vec<(Uid, Vec<ClientId>)>> {
        let uids = names(uids, "uids", uid)?;
        if uids.is_empty() {
            return Ok(Vec::new());
        }
        match self.reply(Query::ClientsOfUids(uids)).await? {
            (Query::ClientsOfUids(uids), Reply::ClientsOfUids(lists))
                if lists.len() == uids.len() =>
            {
                Ok(uids.into_iter().zip(lists).collect())
            }
            (query, other) => Err(unexpected(&query, other)),
        }
    }

    /// `get-client-info`.
    pub async fn get_client_info(
        &self,
        client: &str,
        fields: InfoFields,
    ) -> CallResult<Option<ClientInfo>> {
        let query = Query::ClientInfo {
            client: client_id(client)?,
            fields,
        };
        match self.reply(query).await? {
            (_, Reply::Info(info)) => Ok(info.map(|info| *info)),
            (query, other) => Err(unexpected(&query, other)),
        }
    }

    /// `close-client`.
    pub async fn close_client(&self, client: &str, force: bool) -> CallResult<()> {
        let client = client_id(client)?;
        self.command(Command::Close { client, force }).await
    }

    /// `close-client-with`: the message, then a clean close. Two commands about one client
    /// from one caller, so they are applied in order and the message is flushed first.
    pub async fn close_client_with(&self, client: &str, m: Message) -> CallResult<()> {
        let client = client_id(client)?;
        let message = message(m)?;
        expressible(&[client], &message)?;
        let send = Command::Send {
            to: Target::Client(client),
            message,
            without: Vec::new(),
        };
        self.command(send).await?;
        self.command(Command::Close {
            client,
            force: false,
        })
        .await
    }

    /// `bind-uid`.
    pub async fn bind_uid(&self, client: &str, u: String) -> CallResult<()> {
        let command = Command::BindUid {
            client: client_id(client)?,
            uid: uid(u)?,
        };
        self.command(command).await
    }

    /// `unbind-uid`.
    pub async fn unbind_uid(&self, client: &str) -> CallResult<()> {
        let client = client_id(client)?;
        self.command(Command::UnbindUid { client }).await
    }

    /// `join-group`.
    pub async fn join_group(&self, client: &str, g: String) -> CallResult<()> {
        let command = Command::JoinGroup {
            client: client_id(client)?,
            group: group(g)?,
        };
        self.command(command).await
    }

    /// `leave-group`.
    pub async fn leave_group(&self, client: &str, g: String) -> CallResult<()> {
        let command = Command::LeaveGroup {
            client: client_id(client)?,
            group: group(g)?,
        };
        self.command(command).await
    }

    /// `ungroup`.
    pub async fn ungroup(&self, g: String) -> CallResult<()> {
        let command = Command::Ungroup { group: group(g)? };
        self.command(command).await
    }

    /// `set-session`.
    pub async fn set_session(&self, client: &str, pairs: Vec<(String, String)>) -> CallResult<()> {
        let command = Command::SetSession {
            client: client_id(client)?,
            session: session(pairs)?,
        };
        self.command(command).await
    }

    /// `update-session`.
    pub async fn update_session(
        &self,
        client: &str,
        pairs: Vec<(String, String)>,
    ) -> CallResult<()> {
        let command = Command::UpdateSession {
            client: client_id(client)?,
            session: session(pairs)?,
        };
        self.command(command).await
    }

    /// `delete-session`.
    pub async fn delete_session(&self, client: &str) -> CallResult<()> {
        let command = Command::SetSession {
            client: client_id(client)?,
            session: Session::default(),
        };
        self.command(command).await
    }

    /// `get-session`.
    pub async fn get_session(&self, client: &str) -> CallResult<Option<Session>> {
        let query = Query::Session(client_id(client)?);
        match self.reply(query).await? {
            (_, Reply::Session(session)) => Ok(session),
            (query, other) => Err(unexpected(&query, other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::GatewayId;

    #[test]
    fn a_newline_is_refused_only_for_a_client_that_reads_lines() {
        let gateway = GatewayId::new(3).expect("non-zero");
        let lines = ClientId::of_connection(gateway, 1, true).expect("valid");
        let ws = ClientId::of_connection(gateway, 2, false).expect("valid");
        let forged = Message::text("hi\n{\"forged\":true}");
        let refused = expressible(&[ws, lines], &forged).expect_err("a line client is among them");
        assert_eq!(refused.kind(), "invalid-argument");
        assert!(refused.to_string().contains(&lines.to_string()));
        assert!(expressible(&[ws], &forged).is_ok());
        assert!(expressible(&[lines], &Message::text("one line")).is_ok());
        assert!(expressible(&[lines], &Message::binary(b"a\nb".to_vec())).is_err());
    }
}
