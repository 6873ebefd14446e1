//! The host side of the WIT world `plugin`, and conversions between its types and the bus's.

use std::net::SocketAddr;

use crate::bus;

wasmtime::component::bindgen!({
    path: "../wit",
    world: "plugin",
    imports: { default: async },
    exports: { default: async },
});

pub use self::switchboard::plugin::types as wit;

impl From<&bus::Message> for wit::Message {
    fn from(m: &bus::Message) -> Self {
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
            client: ctx.client.text(),
            remote_addr: addr_text(ctx.remote_addr),
            gateway_id: ctx.client.gateway().get(),
            uid: ctx.uid.as_ref().map(|u| u.to_string()),
            session: wit_session(&ctx.session),
        }
    }
}

/// A socket address as text. Every event carries one: IPv4 is written by hand, since the
/// formatting machinery costs several times this.
fn addr_text(addr: SocketAddr) -> String {
    let SocketAddr::V4(v4) = addr else {
        return addr.to_string();
    };
    let mut text = String::with_capacity(21);
    for (i, octet) in v4.ip().octets().into_iter().enumerate() {
        if i > 0 {
            text.push('.');
        }
        push_decimal(&mut text, octet.into());
    }
    text.push(':');
    push_decimal(&mut text, v4.port());
    text
}

/// Appends `n` in decimal.
fn push_decimal(text: &mut String, mut n: u16) {
    let mut digits = [0u8; 5];
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    text.extend(digits[start..].iter().map(|&d| char::from(d)));
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
            client: i.client.text(),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_read_as_the_standard_library_writes_them() {
        for addr in [
            "0.0.0.0:0",
            "127.0.0.1:8080",
            "10.20.3.4:65535",
            "255.255.255.255:1",
            "[::1]:443",
            "[2001:db8::8a2e:370:7334]:9",
        ] {
            let addr: SocketAddr = addr.parse().expect("an address");
            assert_eq!(addr_text(addr), addr.to_string());
        }
    }
}
