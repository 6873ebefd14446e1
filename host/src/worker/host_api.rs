//! The `api` imports: what a plugin can ask of the host, with API.md's checks and semantics.
//!
//! The mapping to bus commands and queries, with its argument checks, is `bus::calls`, shared
//! with the HTTP server API; here WIT types are converted to it, and errors a plugin can act
//! on come back as WIT `error` values. Timers and logs are the instance's own.

use super::bindings::switchboard::plugin::{api, types};
use super::bindings::{wit, wit_session};
use super::state::InstanceState;
use super::timers::TimerError;
use crate::bus::calls::{CallError, Calls};

type ApiResult<T> = Result<T, wit::Error>;

impl From<CallError> for wit::Error {
    fn from(e: CallError) -> Self {
        match e {
            CallError::InvalidClientId(d) => wit::Error::InvalidClientId(d),
            CallError::InvalidName(d) => wit::Error::InvalidName(d),
            CallError::TooLarge(d) => wit::Error::TooLarge(d),
            CallError::InvalidArgument(d) => wit::Error::InvalidArgument(d),
            CallError::Timeout(d) => wit::Error::Timeout(d),
        }
    }
}

/// Names as the WIT strings they are.
fn strings<T: Into<String>>(names: Vec<T>) -> Vec<String> {
    names.into_iter().map(Into::into).collect()
}

fn client_strings(ids: Vec<crate::bus::ClientId>) -> Vec<String> {
    ids.iter().map(ToString::to_string).collect()
}

fn session_pairs(
    page: Vec<(crate::bus::ClientId, crate::bus::Session)>,
) -> Vec<(String, wit::Session)> {
    page.iter()
        .map(|(id, session)| (id.to_string(), wit_session(session)))
        .collect()
}

impl InstanceState {
    /// The API of this instance's app; owns its handles, so no borrow of the (non-`Sync`)
    /// instance state is held across an await.
    fn calls(&self) -> Calls {
        Calls::new(self.gateways.clone(), self.app.clone())
    }
}

impl types::Host for InstanceState {}

impl api::Host for InstanceState {
    async fn send_to_client(&mut self, client: String, m: wit::Message) -> ApiResult<()> {
        Ok(self.calls().send_to_client(&client, m.into()).await?)
    }

    async fn send_to_uid(
        &mut self,
        u: String,
        m: wit::Message,
        without: Vec<String>,
    ) -> ApiResult<()> {
        Ok(self.calls().send_to_uid(u, m.into(), &without).await?)
    }

    async fn send_to_group(
        &mut self,
        g: String,
        m: wit::Message,
        without: Vec<String>,
    ) -> ApiResult<()> {
        Ok(self.calls().send_to_group(g, m.into(), &without).await?)
    }

    async fn send_to_all(&mut self, m: wit::Message, without: Vec<String>) -> ApiResult<()> {
        Ok(self.calls().send_to_all(m.into(), &without).await?)
    }

    async fn send_to_uids(
        &mut self,
        uids: Vec<String>,
        m: wit::Message,
        without: Vec<String>,
    ) -> ApiResult<()> {
        Ok(self.calls().send_to_uids(uids, m.into(), &without).await?)
    }

    async fn send_to_groups(
        &mut self,
        groups: Vec<String>,
        m: wit::Message,
        without: Vec<String>,
    ) -> ApiResult<()> {
        Ok(self
            .calls()
            .send_to_groups(groups, m.into(), &without)
            .await?)
    }

    async fn send_to_clients(&mut self, clients: Vec<String>, m: wit::Message) -> ApiResult<()> {
        Ok(self.calls().send_to_clients(&clients, m.into()).await?)
    }

    async fn is_online(&mut self, client: String) -> ApiResult<bool> {
        Ok(self.calls().is_online(&client).await?)
    }

    async fn is_uid_online(&mut self, u: String) -> ApiResult<bool> {
        Ok(self.calls().is_uid_online(u).await?)
    }

    async fn get_client_count(&mut self) -> ApiResult<u64> {
        Ok(self.calls().get_client_count().await?)
    }

    async fn get_client_count_by_group(&mut self, g: String) -> ApiResult<u64> {
        Ok(self.calls().get_client_count_by_group(g).await?)
    }

    async fn get_uid_count_by_group(&mut self, g: String) -> ApiResult<u64> {
        Ok(self.calls().get_uid_count_by_group(g).await?)
    }

    async fn get_uid_count(&mut self, unique_percent: Option<f32>) -> ApiResult<u64> {
        Ok(self.calls().get_uid_count(unique_percent).await?)
    }

    async fn get_client_list(
        &mut self,
        after: Option<String>,
        limit: u32,
    ) -> ApiResult<Vec<String>> {
        let page = self.calls().get_client_list(after.as_deref(), limit).await;
        Ok(client_strings(page?))
    }

    async fn get_client_list_by_group(
        &mut self,
        g: String,
        after: Option<String>,
        limit: u32,
    ) -> ApiResult<Vec<String>> {
        let page = self
            .calls()
            .get_client_list_by_group(g, after.as_deref(), limit)
            .await;
        Ok(client_strings(page?))
    }

    async fn get_client_list_by_uid(
        &mut self,
        u: String,
        after: Option<String>,
        limit: u32,
    ) -> ApiResult<Vec<String>> {
        let page = self
            .calls()
            .get_client_list_by_uid(u, after.as_deref(), limit)
            .await;
        Ok(client_strings(page?))
    }

    async fn get_uid_list(&mut self, unique: bool) -> ApiResult<Vec<String>> {
        Ok(strings(self.calls().get_uid_list(unique).await?))
    }

    async fn get_uid_list_by_group(&mut self, g: String, unique: bool) -> ApiResult<Vec<String>> {
        Ok(strings(
            self.calls().get_uid_list_by_group(g, unique).await?,
        ))
    }

    async fn get_group_list(&mut self, unique: bool) -> ApiResult<Vec<String>> {
        Ok(strings(self.calls().get_group_list(unique).await?))
    }

    async fn get_uid_list_paged(
        &mut self,
        after: Option<String>,
        limit: u32,
    ) -> ApiResult<Vec<String>> {
        Ok(strings(
            self.calls().get_uid_list_paged(after, limit).await?,
        ))
    }

    async fn get_uid_list_by_group_paged(
        &mut self,
        g: String,
        after: Option<String>,
        limit: u32,
    ) -> ApiResult<Vec<String>> {
        let calls = self.calls();
        Ok(strings(
            calls.get_uid_list_by_group_paged(g, after, limit).await?,
        ))
    }

    async fn get_group_list_paged(
        &mut self,
        after: Option<String>,
        limit: u32,
    ) -> ApiResult<Vec<String>> {
        Ok(strings(
            self.calls().get_group_list_paged(after, limit).await?,
        ))
    }

    async fn get_client_sessions(
        &mut self,
        after: Option<String>,
        limit: u32,
    ) -> ApiResult<Vec<(String, wit::Session)>> {
        let calls = self.calls();
        let page = calls.get_client_sessions(after.as_deref(), limit).await?;
        Ok(session_pairs(page))
    }

    async fn get_client_sessions_by_group(
        &mut self,
        g: String,
        after: Option<String>,
        limit: u32,
    ) -> ApiResult<Vec<(String, wit::Session)>> {
        let calls = self.calls();
        let page = calls
            .get_client_sessions_by_group(g, after.as_deref(), limit)
            .await?;
        Ok(session_pairs(page))
    }

    async fn get_client_count_by_groups(
        &mut self,
        groups: Vec<String>,
    ) -> ApiResult<Vec<(String, u64)>> {
        let counts = self.calls().get_client_count_by_groups(groups).await?;
        Ok(counts.into_iter().map(|(g, n)| (g.into(), n)).collect())
    }

    async fn get_client_ids_by_uids(
        &mut self,
        uids: Vec<String>,
    ) -> ApiResult<Vec<(String, Vec<String>)>> {
        let lists = self.calls().get_client_ids_by_uids(uids).await?;
        Ok(lists
            .into_iter()
            .map(|(u, ids)| (u.into(), client_strings(ids)))
            .collect())
    }

    async fn get_client_info(
        &mut self,
        client: String,
        fields: wit::ClientInfoFields,
    ) -> ApiResult<Option<wit::ClientInfo>> {
        let info = self.calls().get_client_info(&client, fields.into()).await?;
        Ok(info.map(Into::into))
    }

    async fn close_client(&mut self, client: String, force: bool) -> ApiResult<()> {
        Ok(self.calls().close_client(&client, force).await?)
    }

    async fn close_client_with(&mut self, client: String, m: wit::Message) -> ApiResult<()> {
        Ok(self.calls().close_client_with(&client, m.into()).await?)
    }

    async fn bind_uid(&mut self, client: String, u: String) -> ApiResult<()> {
        Ok(self.calls().bind_uid(&client, u).await?)
    }

    async fn unbind_uid(&mut self, client: String) -> ApiResult<()> {
        Ok(self.calls().unbind_uid(&client).await?)
    }

    async fn join_group(&mut self, client: String, g: String) -> ApiResult<()> {
        Ok(self.calls().join_group(&client, g).await?)
    }

    async fn leave_group(&mut self, client: String, g: String) -> ApiResult<()> {
        Ok(self.calls().leave_group(&client, g).await?)
    }

    async fn ungroup(&mut self, g: String) -> ApiResult<()> {
        Ok(self.calls().ungroup(g).await?)
    }

    async fn set_session(&mut self, client: String, s: wit::Session) -> ApiResult<()> {
        Ok(self.calls().set_session(&client, s).await?)
    }

    async fn update_session(&mut self, client: String, s: wit::Session) -> ApiResult<()> {
        Ok(self.calls().update_session(&client, s).await?)
    }

    async fn delete_session(&mut self, client: String) -> ApiResult<()> {
        Ok(self.calls().delete_session(&client).await?)
    }

    async fn get_session(&mut self, client: String) -> ApiResult<Option<wit::Session>> {
        let session = self.calls().get_session(&client).await?;
        Ok(session.as_ref().map(wit_session))
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

    async fn unhandled(&mut self, handler: api::ClientHandler) {
        if self.unhandled.insert(handler) {
            let (app, version) = (&*self.app, &*self.version);
            let handler = super::unhandled::name(handler);
            tracing::info!(
                app,
                version,
                "{handler} is left to the SDK's default: no longer called for this version"
            );
        }
    }
}
