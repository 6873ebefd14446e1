//! The host side of the WIT world `plugin`, and conversions between its types and the bus's.

use std::net::SocketAddr;

use crate::bus;

wasmtime::component::bindgen!({
    path: "../wit",
    world: "plugin",
    imports: { default: async },
    exports: { default: async },
    ownership: Borrowing { duplicate_if_necessary: true },
});

/// The WIT's types. A type the host passes to an export borrows (`Context<'a>`), so an event's
/// strings are copied once, from the bus's event into guest memory; the types the guest passes
/// to the host own their data.
pub mod wit {
    pub use super::switchboard::plugin::api::{Message, Session};
    pub use super::switchboard::plugin::types::*;
}

impl From<wit::Message> for bus::Message {
    fn from(m: wit::Message) -> Self {
        match m {
            wit::Message::Text(text) => bus::Message::text(text),
            wit::Message::Binary(data) => bus::Message::binary(data),
        }
    }
}

/// A message as an export takes it, borrowed.
pub fn wit_message(m: &bus::Message) -> wit::MessageParam<'_> {
    match m.as_text() {
        Some(text) => wit::MessageParam::Text(text),
        None => wit::MessageParam::Binary(m.data()),
    }
}

/// A session as the WIT sees it: sorted pairs.
pub fn wit_session(session: &bus::Session) -> wit::Session {
    session
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// An event's context, ready to lend to an export: the id and the address as text on the
/// stack, the uid and the session borrowed from the event.
pub struct EventContext<'a> {
    client: bus::ClientIdText,
    remote_addr: AddrText,
    gateway_id: u32,
    uid: Option<&'a str>,
    session: Vec<(&'a str, &'a str)>,
}

impl<'a> EventContext<'a> {
    /// The context of an event about `ctx`'s client.
    pub fn new(ctx: &'a bus::Context) -> Self {
        Self {
            client: ctx.client.text(),
            remote_addr: AddrText::new(ctx.remote_addr),
            gateway_id: ctx.client.gateway().get(),
            uid: ctx.uid.as_ref().map(bus::Uid::as_str),
            session: ctx
                .session
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect(),
        }
    }

    /// The WIT record, borrowing from `self`.
    pub fn wit(&self) -> wit::Context<'_> {
        wit::Context {
            client: self.client.as_str(),
            remote_addr: self.remote_addr.as_str(),
            gateway_id: self.gateway_id,
            uid: self.uid,
            session: &self.session,
        }
    }
}

/// A socket address as text, on the stack: every event carries one. IPv4 is written by hand,
/// since the formatting machinery costs several times this.
struct AddrText {
    bytes: [u8; AddrText::CAPACITY],
    len: usize,
}

impl AddrText {
    /// The longest address: `[` 45 characters of IPv6 `%` a 10-digit scope `]:` 5 digits.
    const CAPACITY: usize = 64;

    fn new(addr: SocketAddr) -> Self {
        let mut text = Self {
            bytes: [0; Self::CAPACITY],
            len: 0,
        };
        match addr {
            SocketAddr::V4(v4) => {
                for (i, octet) in v4.ip().octets().into_iter().enumerate() {
                    if i > 0 {
                        text.push(b".");
                    }
                    text.push_decimal(octet.into());
                }
                text.push(b":");
                text.push_decimal(v4.port());
            }
            SocketAddr::V6(v6) => {
                use std::fmt::Write;
                // Cannot fail: the longest address fits.
                let _ = write!(text, "{v6}");
            }
        }
        text
    }

    fn as_str(&self) -> &str {
        std::str::from_utf8(&self.bytes[..self.len]).expect("only whole strs are pushed")
    }

    /// Appends `bytes` if they fit; reports whether they did.
    fn push(&mut self, bytes: &[u8]) -> bool {
        let Some(room) = self.bytes.get_mut(self.len..self.len + bytes.len()) else {
            return false;
        };
        room.copy_from_slice(bytes);
        self.len += bytes.len();
        true
    }

    /// Appends `n` in decimal.
    fn push_decimal(&mut self, mut n: u16) {
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
        self.push(&digits[start..]);
    }
}

impl std::fmt::Write for AddrText {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.push(s.as_bytes()).then_some(()).ok_or(std::fmt::Error)
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
            client: i.client.text().as_str().to_owned(),
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
            assert_eq!(AddrText::new(addr).as_str(), addr.to_string());
        }
        // The longest an address can be written fits.
        let ip = std::net::Ipv6Addr::from([0xffff; 8]);
        let longest = SocketAddr::V6(std::net::SocketAddrV6::new(ip, 65535, 0, u32::MAX));
        assert_eq!(AddrText::new(longest).as_str(), longest.to_string());
    }
}
