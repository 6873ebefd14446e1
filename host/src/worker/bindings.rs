//! The host side of the WIT world `plugin`, and conversions between its types and the bus's.

use crate::bus;

wasmtime::component::bindgen!({
    path: "../wit",
    world: "plugin",
    imports: { default: async },
    exports: { default: async },
});

pub use self::switchboard::plugin::types as wit;

impl From<bus::Message> for wit::Message {
    fn from(m: bus::Message) -> Self {
        match m.as_text() {
            Some(text) => wit::Message::Text(text.to_owned()),
            None => wit::Message::Binary(m.data().to_vec()),
        }
    }
}

impl From<wit::Message> for bus::Message {
    fn from(m: wit::Message) -> Self {
        match m {
            wit::Message::Text(text) => bus::Message::text(text),
            wit::Message::Binary(data) => bus::Message::binary(data),
        }
    }
}

/// A session as the WIT sees it: sorted pairs.
pub fn wit_session(session: &bus::Session) -> wit::Session {
    session
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

impl From<&bus::Context> for wit::Context {
    fn from(ctx: &bus::Context) -> Self {
        wit::Context {
            client: ctx.client.to_string(),
            remote_addr: ctx.remote_addr.to_string(),
            gateway_id: ctx.client.gateway().get(),
            uid: ctx.uid.as_ref().map(|u| u.to_string()),
            session: wit_session(&ctx.session),
        }
    }
}

impl From<bus::Bound> for wit::Bound {
    fn from(b: bus::Bound) -> Self {
        wit::Bound {
            uid: b.uid.map(String::from),
            groups: b.groups.into_iter().map(String::from).collect(),
        }
    }
}

impl From<bus::HttpRequest> for wit::HttpRequest {
    fn from(r: bus::HttpRequest) -> Self {
        wit::HttpRequest {
            path: r.path,
            query: r.query,
            headers: r.headers,
        }
    }
}

impl From<wit::Rejection> for bus::Rejection {
    fn from(r: wit::Rejection) -> Self {
        let status = if (400..=599).contains(&r.status) {
            r.status
        } else {
            403
        };
        bus::Rejection {
            status,
            reason: r.reason,
        }
    }
}

impl From<wit::ClientInfoFields> for bus::InfoFields {
    fn from(f: wit::ClientInfoFields) -> Self {
        use wit::ClientInfoFields as F;
        bus::InfoFields {
            remote_ip: f.contains(F::REMOTE_IP),
            remote_port: f.contains(F::REMOTE_PORT),
            uid: f.contains(F::UID),
            session: f.contains(F::SESSION),
            groups: f.contains(F::GROUPS),
            system: f.contains(F::SYSTEM),
        }
    }
}

impl From<bus::Protocol> for wit::Protocol {
    fn from(p: bus::Protocol) -> Self {
        match p {
            bus::Protocol::WebSocket => wit::Protocol::Websocket,
            bus::Protocol::Text => wit::Protocol::Text,
            bus::Protocol::Frame => wit::Protocol::Frame,
        }
    }
}

impl From<bus::ClientInfo> for wit::ClientInfo {
    fn from(i: bus::ClientInfo) -> Self {
        wit::ClientInfo {
            client: i.client.to_string(),
            remote_ip: i.remote_ip.map(|ip| ip.to_string()),
            remote_port: i.remote_port,
            uid: i.uid.map(String::from),
            session: i.session.as_ref().map(wit_session),
            groups: i
                .groups
                .map(|groups| groups.into_iter().map(String::from).collect()),
            system: i.system.map(|s| wit::SystemInfo {
                protocol: s.protocol.into(),
                connected_at_ms: s.connected_at_ms,
                last_active_ms: s.last_active_ms,
                bytes_in: s.bytes_in,
                bytes_out: s.bytes_out,
                gateway_id: s.gateway.get(),
            }),
        }
    }
}
