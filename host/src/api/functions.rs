//! The table of API functions: for each, its WIT name, its arguments and result (which the
//! OpenAPI document is generated from) and the handler that decodes them and makes the call
//! through [`Calls`], the mapping the worker uses too.

use futures_util::future::BoxFuture;
use serde_json::{Value, json};

pub use super::args::Args;
use crate::bus::calls::{CallError, Calls};
use crate::bus::{ClientId, ClientInfo, Session};

/// The JSON type of an argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ty {
    /// A client id string.
    ClientId,
    /// A uid or group name string.
    Name,
    /// `{"text": "…"}` or `{"binary": "BASE64"}`.
    Message,
    /// An array of client ids.
    ClientIds,
    /// An array of uids or group names.
    Names,
    /// A page size, 1..=1000.
    Limit,
    /// A boolean.
    Bool,
    /// A non-negative number.
    Percent,
    /// An array of info field names.
    Fields,
    /// An object of string values.
    Session,
}

/// One argument of a function.
#[derive(Clone, Copy, Debug)]
pub struct Param {
    /// Its name, the WIT name in snake_case.
    pub name: &'static str,
    /// Its JSON type.
    pub ty: Ty,
    /// Whether it must be given; if not, `default` says what absence means.
    pub required: bool,
    /// What it means, and its default when optional.
    pub doc: &'static str,
}

const fn req(name: &'static str, ty: Ty, doc: &'static str) -> Param {
    Param {
        name,
        ty,
        required: true,
        doc,
    }
}

const fn opt(name: &'static str, ty: Ty, doc: &'static str) -> Param {
    Param {
        name,
        ty,
        required: false,
        doc,
    }
}

const CLIENT: Param = req(
    "client",
    Ty::ClientId,
    "A client id: 20 lowercase hex characters.",
);
const UID: Param = req("uid", Ty::Name, "A uid: 1 to 256 bytes of UTF-8.");
const GROUP: Param = req("group", Ty::Name, "A group: 1 to 256 bytes of UTF-8.");
const MESSAGE: Param = req(
    "message",
    Ty::Message,
    "{\"text\": \"…\"} for a text message, {\"binary\": \"BASE64\"} for a binary one.",
);
const WITHOUT: Param = opt(
    "without",
    Ty::ClientIds,
    "Client ids to skip; default none.",
);
const AFTER: Param = opt(
    "after",
    Ty::ClientId,
    "The cursor: the last client id of the previous page; default: from the start.",
);
const LIMIT: Param = opt("limit", Ty::Limit, "Page size, 1..=1000; default 100.");
const UNIQUE: Param = opt(
    "unique",
    Ty::Bool,
    "Each name once across the cluster (true, the default), or each gateway's list concatenated (false, cheaper).",
);
const FORCE: Param = opt(
    "force",
    Ty::Bool,
    "Drop at once (true) or flush what is queued, then close cleanly (false, the default).",
);
const PERCENT: Param = opt(
    "unique_percent",
    Ty::Percent,
    "Absent: the exact count. A number p: the sum of each gateway's count times p, a cheap estimate.",
);
const FIELDS: Param = opt(
    "fields",
    Ty::Fields,
    "Which facts: any of remote_ip, remote_port, uid, session, groups, system; default all.",
);
const SESSION: Param = req("session", Ty::Session, "String keys to string values.");
const UIDS: Param = req(
    "uids",
    Ty::Names,
    "Uids, at most 1000; each counts once however often it is given.",
);
const GROUPS: Param = req(
    "groups",
    Ty::Names,
    "Groups, at most 1000; each counts once however often it is given.",
);
const CLIENTS: Param = req(
    "clients",
    Ty::ClientIds,
    "Client ids, at most 1000; each gets the message once.",
);
const AFTER_UID: Param = opt(
    "after",
    Ty::Name,
    "The cursor: the last uid of the previous page; default: from the start.",
);
const AFTER_GROUP: Param = opt(
    "after",
    Ty::Name,
    "The cursor: the last group of the previous page; default: from the start.",
);

/// What a function answers inside `{"ok": …}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Out {
    /// `null`.
    Null,
    /// A boolean.
    Bool,
    /// A non-negative integer.
    Count,
    /// Client ids, sorted.
    ClientIds,
    /// Uids or groups, sorted.
    Names,
    /// Client facts, or `null` for an unknown client.
    ClientInfo,
    /// A session object, or `null` for an unknown client.
    Session,
    /// `[{"client": id, "session": {…}}, …]`, sorted by client id.
    Sessions,
    /// An object of name → count.
    Counts,
    /// An object of uid → sorted client ids.
    ClientIdsByName,
}

/// A handler: decodes the arguments, makes the call, encodes the result.
pub type Handler = fn(Calls, Args) -> BoxFuture<'static, Result<Value, CallError>>;

/// One API function.
pub struct Function {
    /// The WIT name, such as `send-to-uid`.
    pub name: &'static str,
    /// What it does.
    pub doc: &'static str,
    /// Its arguments.
    pub params: &'static [Param],
    /// Its result.
    pub out: Out,
    /// The call.
    pub call: Handler,
}

impl std::fmt::Debug for Function {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

/// The function named `name`.
pub fn find(name: &str) -> Option<&'static Function> {
    FUNCTIONS.iter().find(|f| f.name == name)
}

fn done(_: ()) -> Value {
    Value::Null
}

fn ids(ids: Vec<ClientId>) -> Value {
    Value::Array(ids.iter().map(|id| Value::String(id.to_string())).collect())
}

fn names<T: Into<String>>(names: Vec<T>) -> Value {
    Value::Array(names.into_iter().map(|n| Value::String(n.into())).collect())
}

fn session_json(session: &Session) -> Value {
    Value::Object(
        session
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect(),
    )
}

fn sessions_json(page: Vec<(ClientId, Session)>) -> Value {
    Value::Array(
        page.iter()
            .map(|(id, s)| json!({"client": id.to_string(), "session": session_json(s)}))
            .collect(),
    )
}

fn info_json(info: ClientInfo) -> Value {
    json!({
        "client": info.client.to_string(),
        "remote_ip": info.remote_ip.map(|ip| ip.to_string()),
        "remote_port": info.remote_port,
        "uid": info.uid.map(String::from),
        "session": info.session.as_ref().map(session_json),
        "groups": info.groups.map(names),
        "system": info.system.map(|s| json!({
            "protocol": s.protocol.name(),
            "connected_at_ms": s.connected_at_ms,
            "last_active_ms": s.last_active_ms,
            "bytes_in": s.bytes_in,
            "bytes_out": s.bytes_out,
            "gateway_id": s.gateway.get(),
        })),
    })
}

/// Every function of the WIT `api` interface but timers and log, in WIT order.
pub static FUNCTIONS: &[Function] = &[
    Function {
        name: "send-to-client",
        doc: "Queues the message to the client. A well-formed id of a client that is gone: nothing is sent, no error.",
        params: &[CLIENT, MESSAGE],
        out: Out::Null,
        call: |c, a| {
            Box::pin(async move {
                let (client, m) = (a.string(&CLIENT)?, a.message(&MESSAGE)?);
                c.send_to_client(&client, m).await.map(done)
            })
        },
    },
    Function {
        name: "send-to-uid",
        doc: "Sends to every client bound to the uid, except those in `without`.",
        params: &[UID, MESSAGE, WITHOUT],
        out: Out::Null,
        call: |c, a| {
            Box::pin(async move {
                let (u, m, without) = (a.string(&UID)?, a.message(&MESSAGE)?, a.ids(&WITHOUT)?);
                c.send_to_uid(u, m, &without).await.map(done)
            })
        },
    },
    Function {
        name: "send-to-group",
        doc: "Sends to every member of the group on every gateway, except those in `without`.",
        params: &[GROUP, MESSAGE, WITHOUT],
        out: Out::Null,
        call: |c, a| {
            Box::pin(async move {
                let (g, m, without) = (a.string(&GROUP)?, a.message(&MESSAGE)?, a.ids(&WITHOUT)?);
                c.send_to_group(g, m, &without).await.map(done)
            })
        },
    },
    Function {
        name: "send-to-all",
        doc: "Sends to every connected client that finished its handshake, except those in `without`.",
        params: &[MESSAGE, WITHOUT],
        out: Out::Null,
        call: |c, a| {
            Box::pin(async move {
                let (m, without) = (a.message(&MESSAGE)?, a.ids(&WITHOUT)?);
                c.send_to_all(m, &without).await.map(done)
            })
        },
    },
    Function {
        name: "send-to-uids",
        doc: "Sends to every client bound to any of the uids, once each, except those in `without`: one bus message per gateway.",
        params: &[UIDS, MESSAGE, WITHOUT],
        out: Out::Null,
        call: |c, a| {
            Box::pin(async move {
                let (u, m, without) = (a.ids(&UIDS)?, a.message(&MESSAGE)?, a.ids(&WITHOUT)?);
                c.send_to_uids(u, m, &without).await.map(done)
            })
        },
    },
    Function {
        name: "send-to-groups",
        doc: "Sends to every member of any of the groups, once each, except those in `without`: one bus message per gateway.",
        params: &[GROUPS, MESSAGE, WITHOUT],
        out: Out::Null,
        call: |c, a| {
            Box::pin(async move {
                let (g, m, without) = (a.ids(&GROUPS)?, a.message(&MESSAGE)?, a.ids(&WITHOUT)?);
                c.send_to_groups(g, m, &without).await.map(done)
            })
        },
    },
    Function {
        name: "send-to-clients",
        doc: "Queues the message to each listed client once: one bus message per gateway holding some of them.",
        params: &[CLIENTS, MESSAGE],
        out: Out::Null,
        call: |c, a| {
            Box::pin(async move {
                let (clients, m) = (a.ids(&CLIENTS)?, a.message(&MESSAGE)?);
                c.send_to_clients(&clients, m).await.map(done)
            })
        },
    },
    Function {
        name: "is-online",
        doc: "Whether the client is connected now.",
        params: &[CLIENT],
        out: Out::Bool,
        call: |c, a| {
            Box::pin(async move {
                let client = a.string(&CLIENT)?;
                c.is_online(&client).await.map(Value::Bool)
            })
        },
    },
    Function {
        name: "is-uid-online",
        doc: "Whether at least one client is bound to the uid.",
        params: &[UID],
        out: Out::Bool,
        call: |c, a| {
            Box::pin(async move { c.is_uid_online(a.string(&UID)?).await.map(Value::Bool) })
        },
    },
    Function {
        name: "get-client-count",
        doc: "The number of connected clients (handshake finished) in the whole cluster.",
        params: &[],
        out: Out::Count,
        call: |c, _| Box::pin(async move { c.get_client_count().await.map(Value::from) }),
    },
    Function {
        name: "get-client-count-by-group",
        doc: "The number of members of the group.",
        params: &[GROUP],
        out: Out::Count,
        call: |c, a| {
            Box::pin(async move {
                c.get_client_count_by_group(a.string(&GROUP)?)
                    .await
                    .map(Value::from)
            })
        },
    },
    Function {
        name: "get-uid-count-by-group",
        doc: "The exact number of distinct uids among the members of the group.",
        params: &[GROUP],
        out: Out::Count,
        call: |c, a| {
            Box::pin(async move {
                c.get_uid_count_by_group(a.string(&GROUP)?)
                    .await
                    .map(Value::from)
            })
        },
    },
    Function {
        name: "get-uid-count",
        doc: "The number of distinct bound uids: exact, or a cheap estimate with `unique_percent`.",
        params: &[PERCENT],
        out: Out::Count,
        call: |c, a| {
            Box::pin(async move { c.get_uid_count(a.percent(&PERCENT)?).await.map(Value::from) })
        },
    },
    Function {
        name: "get-client-list",
        doc: "Connected clients sorted by id, strictly after `after`, at most `limit`. An empty page means the end.",
        params: &[AFTER, LIMIT],
        out: Out::ClientIds,
        call: |c, a| {
            Box::pin(async move {
                let (after, limit) = (a.opt_string(&AFTER)?, a.limit(&LIMIT)?);
                c.get_client_list(after.as_deref(), limit).await.map(ids)
            })
        },
    },
    Function {
        name: "get-client-list-by-group",
        doc: "Like get-client-list, members of the group only.",
        params: &[GROUP, AFTER, LIMIT],
        out: Out::ClientIds,
        call: |c, a| {
            Box::pin(async move {
                let (g, after, limit) =
                    (a.string(&GROUP)?, a.opt_string(&AFTER)?, a.limit(&LIMIT)?);
                c.get_client_list_by_group(g, after.as_deref(), limit)
                    .await
                    .map(ids)
            })
        },
    },
    Function {
        name: "get-client-list-by-uid",
        doc: "Like get-client-list, clients bound to the uid only.",
        params: &[UID, AFTER, LIMIT],
        out: Out::ClientIds,
        call: |c, a| {
            Box::pin(async move {
                let (u, after, limit) = (a.string(&UID)?, a.opt_string(&AFTER)?, a.limit(&LIMIT)?);
                c.get_client_list_by_uid(u, after.as_deref(), limit)
                    .await
                    .map(ids)
            })
        },
    },
    Function {
        name: "get-uid-list",
        doc: "Bound uids, sorted.",
        params: &[UNIQUE],
        out: Out::Names,
        call: |c, a| Box::pin(async move { c.get_uid_list(a.unique(&UNIQUE)?).await.map(names) }),
    },
    Function {
        name: "get-uid-list-by-group",
        doc: "Uids bound to members of the group, sorted.",
        params: &[GROUP, UNIQUE],
        out: Out::Names,
        call: |c, a| {
            Box::pin(async move {
                let (g, unique) = (a.string(&GROUP)?, a.unique(&UNIQUE)?);
                c.get_uid_list_by_group(g, unique).await.map(names)
            })
        },
    },
    Function {
        name: "get-group-list",
        doc: "Groups that have members, sorted.",
        params: &[UNIQUE],
        out: Out::Names,
        call: |c, a| Box::pin(async move { c.get_group_list(a.unique(&UNIQUE)?).await.map(names) }),
    },
    Function {
        name: "get-uid-list-paged",
        doc: "Bound uids, sorted, each once, strictly after `after`, at most `limit`. An empty page means the end.",
        params: &[AFTER_UID, LIMIT],
        out: Out::Names,
        call: |c, a| {
            Box::pin(async move {
                let (after, limit) = (a.opt_string(&AFTER_UID)?, a.limit(&LIMIT)?);
                c.get_uid_list_paged(after, limit).await.map(names)
            })
        },
    },
    Function {
        name: "get-uid-list-by-group-paged",
        doc: "Like get-uid-list-paged, uids bound to members of the group only.",
        params: &[GROUP, AFTER_UID, LIMIT],
        out: Out::Names,
        call: |c, a| {
            Box::pin(async move {
                let (g, after, limit) = (
                    a.string(&GROUP)?,
                    a.opt_string(&AFTER_UID)?,
                    a.limit(&LIMIT)?,
                );
                c.get_uid_list_by_group_paged(g, after, limit)
                    .await
                    .map(names)
            })
        },
    },
    Function {
        name: "get-group-list-paged",
        doc: "Groups that have members, sorted, strictly after `after`, at most `limit`. An empty page means the end.",
        params: &[AFTER_GROUP, LIMIT],
        out: Out::Names,
        call: |c, a| {
            Box::pin(async move {
                let (after, limit) = (a.opt_string(&AFTER_GROUP)?, a.limit(&LIMIT)?);
                c.get_group_list_paged(after, limit).await.map(names)
            })
        },
    },
    Function {
        name: "get-client-sessions",
        doc: "Connected clients with their sessions, sorted by id, strictly after `after`, at most `limit`. An empty page means the end.",
        params: &[AFTER, LIMIT],
        out: Out::Sessions,
        call: |c, a| {
            Box::pin(async move {
                let (after, limit) = (a.opt_string(&AFTER)?, a.limit(&LIMIT)?);
                c.get_client_sessions(after.as_deref(), limit)
                    .await
                    .map(sessions_json)
            })
        },
    },
    Function {
        name: "get-client-sessions-by-group",
        doc: "Like get-client-sessions, members of the group only.",
        params: &[GROUP, AFTER, LIMIT],
        out: Out::Sessions,
        call: |c, a| {
            Box::pin(async move {
                let (g, after, limit) =
                    (a.string(&GROUP)?, a.opt_string(&AFTER)?, a.limit(&LIMIT)?);
                c.get_client_sessions_by_group(g, after.as_deref(), limit)
                    .await
                    .map(sessions_json)
            })
        },
    },
    Function {
        name: "get-client-count-by-groups",
        doc: "The number of members of each group, as an object; a group without members counts 0.",
        params: &[GROUPS],
        out: Out::Counts,
        call: |c, a| {
            Box::pin(async move {
                let counts = c.get_client_count_by_groups(a.ids(&GROUPS)?).await?;
                Ok(Value::Object(
                    counts
                        .into_iter()
                        .map(|(g, n)| (g.into(), Value::from(n)))
                        .collect(),
                ))
            })
        },
    },
    Function {
        name: "get-client-ids-by-uids",
        doc: "The clients bound to each uid, as an object of sorted lists; an offline uid has an empty list.",
        params: &[UIDS],
        out: Out::ClientIdsByName,
        call: |c, a| {
            Box::pin(async move {
                let lists = c.get_client_ids_by_uids(a.ids(&UIDS)?).await?;
                Ok(Value::Object(
                    lists
                        .into_iter()
                        .map(|(u, list)| (u.into(), ids(list)))
                        .collect(),
                ))
            })
        },
    },
    Function {
        name: "get-client-info",
        doc: "The asked facts about the client (fields not asked are null); null if the client is unknown.",
        params: &[CLIENT, FIELDS],
        out: Out::ClientInfo,
        call: |c, a| {
            Box::pin(async move {
                let (client, fields) = (a.string(&CLIENT)?, a.fields(&FIELDS)?);
                let info = c.get_client_info(&client, fields).await?;
                Ok(info.map_or(Value::Null, info_json))
            })
        },
    },
    Function {
        name: "close-client",
        doc: "Closes the client: after flushing what was queued (WebSocket close 1000), or at once with `force`.",
        params: &[CLIENT, FORCE],
        out: Out::Null,
        call: |c, a| {
            Box::pin(async move {
                let (client, force) = (a.string(&CLIENT)?, a.flag(&FORCE)?);
                c.close_client(&client, force).await.map(done)
            })
        },
    },
    Function {
        name: "close-client-with",
        doc: "Sends the message to the client, then closes it cleanly: the message is flushed first.",
        params: &[CLIENT, MESSAGE],
        out: Out::Null,
        call: |c, a| {
            Box::pin(async move {
                let (client, m) = (a.string(&CLIENT)?, a.message(&MESSAGE)?);
                c.close_client_with(&client, m).await.map(done)
            })
        },
    },
    Function {
        name: "bind-uid",
        doc: "Binds the client to the uid; a client bound to another uid is moved.",
        params: &[CLIENT, UID],
        out: Out::Null,
        call: |c, a| {
            Box::pin(async move {
                let (client, u) = (a.string(&CLIENT)?, a.string(&UID)?);
                c.bind_uid(&client, u).await.map(done)
            })
        },
    },
    Function {
        name: "unbind-uid",
        doc: "Clears the client's uid; nothing happens if it has none.",
        params: &[CLIENT],
        out: Out::Null,
        call: |c, a| {
            Box::pin(async move {
                let client = a.string(&CLIENT)?;
                c.unbind_uid(&client).await.map(done)
            })
        },
    },
    Function {
        name: "join-group",
        doc: "Makes the client a member of the group.",
        params: &[CLIENT, GROUP],
        out: Out::Null,
        call: |c, a| {
            Box::pin(async move {
                let (client, g) = (a.string(&CLIENT)?, a.string(&GROUP)?);
                c.join_group(&client, g).await.map(done)
            })
        },
    },
    Function {
        name: "leave-group",
        doc: "Removes the client from the group.",
        params: &[CLIENT, GROUP],
        out: Out::Null,
        call: |c, a| {
            Box::pin(async move {
                let (client, g) = (a.string(&CLIENT)?, a.string(&GROUP)?);
                c.leave_group(&client, g).await.map(done)
            })
        },
    },
    Function {
        name: "ungroup",
        doc: "Removes every membership of the group on every gateway; clients stay connected.",
        params: &[GROUP],
        out: Out::Null,
        call: |c, a| Box::pin(async move { c.ungroup(a.string(&GROUP)?).await.map(done) }),
    },
    Function {
        name: "set-session",
        doc: "Replaces the client's session.",
        params: &[CLIENT, SESSION],
        out: Out::Null,
        call: |c, a| {
            Box::pin(async move {
                let (client, s) = (a.string(&CLIENT)?, a.session(&SESSION)?);
                c.set_session(&client, s).await.map(done)
            })
        },
    },
    Function {
        name: "update-session",
        doc: "Merges into the client's session: given keys overwrite, the others stay.",
        params: &[CLIENT, SESSION],
        out: Out::Null,
        call: |c, a| {
            Box::pin(async move {
                let (client, s) = (a.string(&CLIENT)?, a.session(&SESSION)?);
                c.update_session(&client, s).await.map(done)
            })
        },
    },
    Function {
        name: "delete-session",
        doc: "Empties the client's session.",
        params: &[CLIENT],
        out: Out::Null,
        call: |c, a| {
            Box::pin(async move {
                let client = a.string(&CLIENT)?;
                c.delete_session(&client).await.map(done)
            })
        },
    },
    Function {
        name: "get-session",
        doc: "The client's session: null if the client is unknown, {} if it has none.",
        params: &[CLIENT],
        out: Out::Session,
        call: |c, a| {
            Box::pin(async move {
                let client = a.string(&CLIENT)?;
                let session = c.get_session(&client).await?;
                Ok(session.as_ref().map_or(Value::Null, session_json))
            })
        },
    },
];

#[cfg(test)]
mod tests;
