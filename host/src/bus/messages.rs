//! The messages between gateways and workers.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::data::{Bound, ClientInfo, Context, HttpRequest, InfoFields, Message, Session};
use super::ids::{ClientId, Group, Uid};

/// The name of an app: the file stem of its plugin, named by listeners.
pub type AppName = Arc<str>;

/// Gateway → worker: something happened to a client of `app`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// The app that serves the client's listener.
    pub app: AppName,
    /// The client and its state when the event left the gateway.
    pub ctx: Context,
    /// What happened.
    pub kind: EventKind,
}

/// What happened to a client.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum EventKind {
    /// A TCP client was accepted, or a WebSocket handshake completed.
    Connect,
    /// A complete message arrived.
    Message(Message),
    /// The client is gone; it was bound to this.
    Close(Bound),
}

/// Gateway → worker: a WebSocket handshake waiting for the app's verdict.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Handshake {
    /// The app that serves the listener.
    pub app: AppName,
    /// The client that would be created.
    pub ctx: Context,
    /// The upgrade request.
    pub request: HttpRequest,
}

/// Who a send reaches.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Target {
    /// One client.
    Client(ClientId),
    /// Every client bound to the uid.
    Uid(Uid),
    /// Every member of the group.
    Group(Group),
    /// Every client that finished its handshake.
    All,
    /// Each listed client, once.
    Clients(Vec<ClientId>),
    /// Every client bound to any of the uids, once.
    Uids(Vec<Uid>),
    /// Every member of any of the groups, once.
    Groups(Vec<Group>),
}

/// Worker → gateway: change something. Applied in the order one instance issues them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Command {
    /// Queue `message` to the target, skipping `without`.
    Send {
        /// Who receives it.
        to: Target,
        /// What to send.
        message: Message,
        /// Clients to skip.
        without: Vec<ClientId>,
    },
    /// Close a client, after flushing its queue unless `force`.
    Close {
        /// The client.
        client: ClientId,
        /// Drop at once instead of flushing.
        force: bool,
    },
    /// Bind a client to a uid (moving it from any other).
    BindUid {
        /// The client.
        client: ClientId,
        /// The uid.
        uid: Uid,
    },
    /// Clear a client's uid.
    UnbindUid {
        /// The client.
        client: ClientId,
    },
    /// Add a client to a group.
    JoinGroup {
        /// The client.
        client: ClientId,
        /// The group.
        group: Group,
    },
    /// Remove a client from a group.
    LeaveGroup {
        /// The client.
        client: ClientId,
        /// The group.
        group: Group,
    },
    /// Remove every membership of a group.
    Ungroup {
        /// The group.
        group: Group,
    },
    /// Replace a client's session.
    SetSession {
        /// The client.
        client: ClientId,
        /// The new session.
        session: Session,
    },
    /// Shallow-merge into a client's session.
    UpdateSession {
        /// The client.
        client: ClientId,
        /// The keys to overwrite.
        session: Session,
    },
}

/// Which clients a list or count is about.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClientFilter {
    /// All connected clients.
    All,
    /// Members of a group.
    Group(Group),
    /// Clients bound to a uid.
    Uid(Uid),
}

/// Worker → gateway: a question; answered by a [`Reply`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Query {
    /// Is the client connected? → `Bool`.
    IsOnline(ClientId),
    /// Is any client bound to the uid? → `Bool`.
    IsUidOnline(Uid),
    /// How many clients match? → `Count`.
    ClientCount(ClientFilter),
    /// Distinct bound uids, among a group's members if given. → `Count`.
    ///
    /// Each gateway answers its own distinct count; `exact` tells a cluster transport to
    /// count the union instead of summing.
    UidCount {
        /// Only among this group's members.
        group: Option<Group>,
        /// Count each uid once across gateways.
        exact: bool,
    },
    /// One page of matching clients, sorted, strictly after `after`. → `Clients`.
    ClientList {
        /// Which clients.
        filter: ClientFilter,
        /// The cursor.
        after: Option<ClientId>,
        /// Page size, 1..=1000.
        limit: u32,
    },
    /// Bound uids, sorted, among a group's members if given. → `Uids`.
    ///
    /// Each gateway answers its own sorted, duplicate-free list; `unique` tells a cluster
    /// transport to merge them instead of concatenating.
    UidList {
        /// Only among this group's members.
        group: Option<Group>,
        /// Each uid once across gateways.
        unique: bool,
    },
    /// Groups with members, sorted. → `Groups`. `unique` as for `UidList`.
    GroupList {
        /// Each group once across gateways.
        unique: bool,
    },
    /// Facts about a client. → `Info`.
    ClientInfo {
        /// The client.
        client: ClientId,
        /// Which facts.
        fields: InfoFields,
    },
    /// A client's session. → `Session`.
    Session(ClientId),
    /// One page of names, sorted and unique, strictly after `after`. → `Uids`.
    UidPage {
        /// Only among this group's members.
        group: Option<Group>,
        /// The cursor.
        after: Option<Uid>,
        /// Page size, 1..=1000.
        limit: u32,
    },
    /// One page of groups with members, sorted, strictly after `after`. → `Groups`.
    GroupPage {
        /// The cursor.
        after: Option<Group>,
        /// Page size, 1..=1000.
        limit: u32,
    },
    /// One page of clients with their sessions, sorted by id, strictly after `after`.
    /// → `Sessions`.
    Sessions {
        /// All clients (`None`) or a group's members.
        group: Option<Group>,
        /// The cursor.
        after: Option<ClientId>,
        /// Page size, 1..=1000.
        limit: u32,
    },
    /// Members of each group, in the order given (sorted, unique). → `Counts`, one per group.
    GroupCounts(Vec<Group>),
    /// Clients bound to each uid, in the order given (sorted, unique). → `ClientsOfUids`,
    /// one sorted list per uid.
    ClientsOfUids(Vec<Uid>),
}

/// A gateway's answer to a [`Query`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Reply {
    /// A yes/no answer.
    Bool(bool),
    /// A count.
    Count(u64),
    /// Sorted client ids.
    Clients(Vec<ClientId>),
    /// Sorted uids.
    Uids(Vec<Uid>),
    /// Sorted groups.
    Groups(Vec<Group>),
    /// Client facts, `None` if the client is unknown.
    Info(Option<Box<ClientInfo>>),
    /// A session, `None` if the client is unknown.
    Session(Option<Session>),
    /// Clients with their sessions, sorted by id.
    Sessions {
        /// The page.
        page: Vec<(ClientId, Session)>,
        /// The page stopped at the gateway's byte budget before `limit`: more may follow
        /// right after its last id, so a merge must not go past it.
        cut: bool,
    },
    /// Counts, one per name asked, in the same order.
    Counts(Vec<u64>),
    /// Sorted client ids, one list per uid asked, in the same order.
    ClientsOfUids(Vec<Vec<ClientId>>),
}

impl Reply {
    /// The answer of a gateway with no client at all: false, zero, empty or unknown.
    pub fn nobody(query: &Query) -> Self {
        match query {
            Query::IsOnline(_) | Query::IsUidOnline(_) => Self::Bool(false),
            Query::ClientCount(_) | Query::UidCount { .. } => Self::Count(0),
            Query::ClientList { .. } => Self::Clients(Vec::new()),
            Query::UidList { .. } | Query::UidPage { .. } => Self::Uids(Vec::new()),
            Query::GroupList { .. } | Query::GroupPage { .. } => Self::Groups(Vec::new()),
            Query::Sessions { .. } => Self::Sessions {
                page: Vec::new(),
                cut: false,
            },
            Query::GroupCounts(groups) => Self::Counts(vec![0; groups.len()]),
            Query::ClientsOfUids(uids) => Self::ClientsOfUids(vec![Vec::new(); uids.len()]),
            Query::ClientInfo { .. } => Self::Info(None),
            Query::Session(_) => Self::Session(None),
        }
    }
}
