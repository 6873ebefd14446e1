//! The `api` imports: what a plugin can ask of the host, with API.md's checks and semantics.
//!
//! Arguments are checked here (client ids, names, limits) and become typed bus messages;
//! the gateways do the rest. Errors a plugin can act on come back as WIT `error` values.

use std::sync::Arc;

use super::bindings::switchboard::plugin::{api, types};
use super::bindings::{wit, wit_session};
use super::state::InstanceState;
use super::timers::TimerError;
use crate::bus::{
    self, AppName, BusError, ClientFilter, ClientId, Command, Gateways, Group, Query, Reply,
    Target, Uid,
};

/// Largest message a plugin may send.
pub const MAX_SEND_BYTES: usize = 16 * 1024 * 1024;

/// Longest page of a list call.
const MAX_PAGE: u32 = 1000;

type ApiResult<T> = Result<T, wit::Error>;

fn client_id(id: &str) -> ApiResult<ClientId> {
    id.parse()
        .map_err(|e: bus::InvalidClientId| wit::Error::InvalidClientId(e.to_string()))
}

fn client_ids(ids: &[String]) -> ApiResult<Vec<ClientId>> {
    ids.iter().map(|id| client_id(id)).collect()
}

fn uid(name: String) -> ApiResult<Uid> {
    Uid::new(name).map_err(|e| wit::Error::InvalidName(e.to_string()))
}

fn group(name: String) -> ApiResult<Group> {
    Group::new(name).map_err(|e| wit::Error::InvalidName(e.to_string()))
}

fn message(m: wit::Message) -> ApiResult<bus::Message> {
    let m = bus::Message::from(m);
    if m.len() > MAX_SEND_BYTES {
        return Err(wit::Error::TooLarge(format!(
            "message of {} bytes is above the limit of {MAX_SEND_BYTES} bytes",
            m.len()
        )));
    }
    Ok(m)
}

fn session(pairs: wit::Session) -> ApiResult<bus::Session> {
    bus::Session::new(pairs).map_err(|e| wit::Error::TooLarge(e.to_string()))
}

fn page_limit(limit: u32) -> ApiResult<u32> {
    if (1..=MAX_PAGE).contains(&limit) {
        Ok(limit)
    } else {
        Err(wit::Error::InvalidArgument(format!(
            "limit must be 1..={MAX_PAGE}, got {limit}"
        )))
    }
}

impl From<BusError> for wit::Error {
    fn from(e: BusError) -> Self {
        match e {
            BusError::Timeout(what) => wit::Error::Timeout(what),
            BusError::SessionTooLarge(e) => wit::Error::TooLarge(e.to_string()),
            // A malformed reply is the host's fault, but the plugin can only retry or give up.
            e @ BusError::UnexpectedReply { .. } => wit::Error::Timeout(e.to_string()),
        }
    }
}

fn unexpected(query: &Query, reply: Reply) -> wit::Error {
    BusError::UnexpectedReply {
        query: format!("{query:?}"),
        reply: format!("{reply:?}"),
    }
    .into()
}

/// The typed calls of one app on top of the bus, each expecting one shape of reply. It owns
/// its handles so no borrow of the (non-`Sync`) instance state is held across an await.
struct Ask {
    gateways: Arc<dyn Gateways>,
    app: AppName,
}

impl Ask {
    async fn command(&self, command: Command) -> ApiResult<()> {
        Ok(self.gateways.command(&self.app, command).await?)
    }

    async fn reply(&self, query: Query) -> ApiResult<(Query, Reply)> {
        let reply = self.gateways.query(&self.app, query.clone()).await?;
        Ok((query, reply))
    }

    async fn bool(&self, query: Query) -> ApiResult<bool> {
        match self.reply(query).await? {
            (_, Reply::Bool(b)) => Ok(b),
            (query, other) => Err(unexpected(&query, other)),
        }
    }

    async fn count(&self, query: Query) -> ApiResult<u64> {
        match self.reply(query).await? {
            (_, Reply::Count(n)) => Ok(n),
            (query, other) => Err(unexpected(&query, other)),
        }
    }

    async fn clients(&self, query: Query) -> ApiResult<Vec<String>> {
        match self.reply(query).await? {
            (_, Reply::Clients(ids)) => Ok(ids.iter().map(ClientId::to_string).collect()),
            (query, other) => Err(unexpected(&query, other)),
        }
    }

    async fn names(&self, query: Query) -> ApiResult<Vec<String>> {
        match self.reply(query).await? {
            (_, Reply::Uids(uids)) => Ok(uids.into_iter().map(String::from).collect()),
            (_, Reply::Groups(groups)) => Ok(groups.into_iter().map(String::from).collect()),
            (query, other) => Err(unexpected(&query, other)),
        }
    }

    async fn send(&self, to: Target, m: wit::Message, without: Vec<String>) -> ApiResult<()> {
        let command = Command::Send {
            to,
            message: message(m)?,
            without: client_ids(&without)?,
        };
        self.command(command).await
    }

    async fn client_page(
        &self,
        filter: ClientFilter,
        after: Option<String>,
        limit: u32,
    ) -> ApiResult<Vec<String>> {
        let query = Query::ClientList {
            filter,
            after: after.as_deref().map(client_id).transpose()?,
            limit: page_limit(limit)?,
        };
        self.clients(query).await
    }
}

impl InstanceState {
    fn ask(&self) -> Ask {
        Ask {
            gateways: self.gateways.clone(),
            app: self.app.clone(),
        }
    }
}

impl types::Host for InstanceState {}

impl api::Host for InstanceState {
    async fn send_to_client(&mut self, client: String, m: wit::Message) -> ApiResult<()> {
        self.ask()
            .send(Target::Client(client_id(&client)?), m, Vec::new())
            .await
    }

    async fn send_to_uid(
        &mut self,
        u: String,
        m: wit::Message,
        without: Vec<String>,
    ) -> ApiResult<()> {
        self.ask().send(Target::Uid(uid(u)?), m, without).await
    }

    async fn send_to_group(
        &mut self,
        g: String,
        m: wit::Message,
        without: Vec<String>,
    ) -> ApiResult<()> {
        self.ask().send(Target::Group(group(g)?), m, without).await
    }

    async fn send_to_all(&mut self, m: wit::Message, without: Vec<String>) -> ApiResult<()> {
        self.ask().send(Target::All, m, without).await
    }

    async fn is_online(&mut self, client: String) -> ApiResult<bool> {
        self.ask().bool(Query::IsOnline(client_id(&client)?)).await
    }

    async fn is_uid_online(&mut self, u: String) -> ApiResult<bool> {
        self.ask().bool(Query::IsUidOnline(uid(u)?)).await
    }

    async fn get_client_count(&mut self) -> ApiResult<u64> {
        self.ask()
            .count(Query::ClientCount(ClientFilter::All))
            .await
    }

    async fn get_client_count_by_group(&mut self, g: String) -> ApiResult<u64> {
        let query = Query::ClientCount(ClientFilter::Group(group(g)?));
        self.ask().count(query).await
    }

    async fn get_uid_count_by_group(&mut self, g: String) -> ApiResult<u64> {
        let query = Query::UidCount {
            group: Some(group(g)?),
            exact: true,
        };
        self.ask().count(query).await
    }

    async fn get_uid_count(&mut self, unique_percent: Option<f32>) -> ApiResult<u64> {
        let Some(percent) = unique_percent else {
            let query = Query::UidCount {
                group: None,
                exact: true,
            };
            return self.ask().count(query).await;
        };
        if !percent.is_finite() || percent < 0.0 {
            return Err(wit::Error::InvalidArgument(format!(
                "unique-percent must be a finite number >= 0, got {percent}"
            )));
        }
        let query = Query::UidCount {
            group: None,
            exact: false,
        };
        let sum = self.ask().count(query).await?;
        Ok((sum as f64 * f64::from(percent)).round() as u64)
    }

    async fn get_client_list(
        &mut self,
        after: Option<String>,
        limit: u32,
    ) -> ApiResult<Vec<String>> {
        self.ask()
            .client_page(ClientFilter::All, after, limit)
            .await
    }

    async fn get_client_list_by_group(
        &mut self,
        g: String,
        after: Option<String>,
        limit: u32,
    ) -> ApiResult<Vec<String>> {
        self.ask()
            .client_page(ClientFilter::Group(group(g)?), after, limit)
            .await
    }

    async fn get_client_list_by_uid(
        &mut self,
        u: String,
        after: Option<String>,
        limit: u32,
    ) -> ApiResult<Vec<String>> {
        self.ask()
            .client_page(ClientFilter::Uid(uid(u)?), after, limit)
            .await
    }

    async fn get_uid_list(&mut self, unique: bool) -> ApiResult<Vec<String>> {
        let query = Query::UidList {
            group: None,
            unique,
        };
        self.ask().names(query).await
    }

    async fn get_uid_list_by_group(&mut self, g: String, unique: bool) -> ApiResult<Vec<String>> {
        let query = Query::UidList {
            group: Some(group(g)?),
            unique,
        };
        self.ask().names(query).await
    }

    async fn get_group_list(&mut self, unique: bool) -> ApiResult<Vec<String>> {
        self.ask().names(Query::GroupList { unique }).await
    }

    async fn get_client_info(
        &mut self,
        client: String,
        fields: wit::ClientInfoFields,
    ) -> ApiResult<Option<wit::ClientInfo>> {
        let query = Query::ClientInfo {
            client: client_id(&client)?,
            fields: fields.into(),
        };
        match self.ask().reply(query).await? {
            (_, Reply::Info(info)) => Ok(info.map(|info| (*info).into())),
            (query, other) => Err(unexpected(&query, other)),
        }
    }

    async fn close_client(&mut self, client: String, force: bool) -> ApiResult<()> {
        let client = client_id(&client)?;
        self.ask().command(Command::Close { client, force }).await
    }

    async fn bind_uid(&mut self, client: String, u: String) -> ApiResult<()> {
        let command = Command::BindUid {
            client: client_id(&client)?,
            uid: uid(u)?,
        };
        self.ask().command(command).await
    }

    async fn unbind_uid(&mut self, client: String) -> ApiResult<()> {
        let client = client_id(&client)?;
        self.ask().command(Command::UnbindUid { client }).await
    }

    async fn join_group(&mut self, client: String, g: String) -> ApiResult<()> {
        let command = Command::JoinGroup {
            client: client_id(&client)?,
            group: group(g)?,
        };
        self.ask().command(command).await
    }

    async fn leave_group(&mut self, client: String, g: String) -> ApiResult<()> {
        let command = Command::LeaveGroup {
            client: client_id(&client)?,
            group: group(g)?,
        };
        self.ask().command(command).await
    }

    async fn ungroup(&mut self, g: String) -> ApiResult<()> {
        let command = Command::Ungroup { group: group(g)? };
        self.ask().command(command).await
    }

    async fn set_session(&mut self, client: String, s: wit::Session) -> ApiResult<()> {
        let command = Command::SetSession {
            client: client_id(&client)?,
            session: session(s)?,
        };
        self.ask().command(command).await
    }

    async fn update_session(&mut self, client: String, s: wit::Session) -> ApiResult<()> {
        let command = Command::UpdateSession {
            client: client_id(&client)?,
            session: session(s)?,
        };
        self.ask().command(command).await
    }

    async fn delete_session(&mut self, client: String) -> ApiResult<()> {
        let command = Command::SetSession {
            client: client_id(&client)?,
            session: bus::Session::default(),
        };
        self.ask().command(command).await
    }

    async fn get_session(&mut self, client: String) -> ApiResult<Option<wit::Session>> {
        let query = Query::Session(client_id(&client)?);
        match self.ask().reply(query).await? {
            (_, Reply::Session(session)) => Ok(session.as_ref().map(wit_session)),
            (query, other) => Err(unexpected(&query, other)),
        }
    }

    async fn set_timer(&mut self, after_ms: u64, repeat: bool) -> ApiResult<wit::TimerId> {
        self.timers
            .set(after_ms, repeat)
            .map_err(|e: TimerError| wit::Error::InvalidArgument(e.to_string()))
    }

    async fn clear_timer(&mut self, id: wit::TimerId) {
        self.timers.clear(id);
    }

    async fn log(&mut self, level: wit::LogLevel, mut message: String) {
        let (app, version) = (&*self.app, &*self.version);
        let Some(dropped) = self.log_budget.admit() else {
            return;
        };
        super::log_budget::report_dropped(app, version, dropped);
        if message.len() > super::stdio::MAX_LINE {
            let cut = (0..=super::stdio::MAX_LINE)
                .rev()
                .find(|&i| message.is_char_boundary(i))
                .unwrap_or(0);
            message.truncate(cut);
            message.push_str(" [cut]");
        }
        match level {
            wit::LogLevel::Trace => tracing::trace!(app, version, "{message}"),
            wit::LogLevel::Debug => tracing::debug!(app, version, "{message}"),
            wit::LogLevel::Info => tracing::info!(app, version, "{message}"),
            wit::LogLevel::Warn => tracing::warn!(app, version, "{message}"),
            wit::LogLevel::Error => tracing::error!(app, version, "{message}"),
        }
    }
}
