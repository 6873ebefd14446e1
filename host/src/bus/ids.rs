//! The identities both sides of the bus share: gateway and client ids, uids and group names.

use std::fmt;
use std::num::NonZeroU32;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// The largest connection sequence a client id can hold (48 bits).
const MAX_SEQ: u64 = (1 << 48) - 1;

/// The sequence's top bit: the client reads newline-delimited lines (a `text` listener), so a
/// message holding a newline cannot reach it as one message. In the id, every sender can
/// refuse such a message at once, without asking the gateway that holds the client.
const READS_LINES: u64 = 1 << 47;

/// Longest uid or group name, in bytes.
pub const MAX_NAME_BYTES: usize = 256;

/// A gateway process's id: random, non-zero, chosen at start so client ids are never reused.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct GatewayId(NonZeroU32);

impl GatewayId {
    /// A fresh random id.
    pub fn random() -> Self {
        Self(rand::random())
    }

    /// The id with this value, if it is not zero.
    pub fn new(value: u32) -> Option<Self> {
        NonZeroU32::new(value).map(Self)
    }

    /// The numeric value.
    pub fn get(self) -> u32 {
        self.0.get()
    }
}

impl fmt::Display for GatewayId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:08x}", self.0)
    }
}

impl fmt::Debug for GatewayId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "GatewayId({self})")
    }
}

/// A client's globally unique id: its gateway's id and that gateway's connection sequence.
///
/// Written as 20 lowercase hex characters; the derived order is the order of that text, which
/// is what makes list cursors stable.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ClientId {
    gateway: GatewayId,
    seq: u64,
}

impl ClientId {
    /// The id of connection `seq` (1..2^48) of `gateway`.
    pub fn new(gateway: GatewayId, seq: u64) -> Option<Self> {
        (1..=MAX_SEQ)
            .contains(&seq)
            .then_some(Self { gateway, seq })
    }

    /// The id of the `n`th connection (1..2^47) of `gateway`, marked if its client reads
    /// newline-delimited lines.
    pub fn of_connection(gateway: GatewayId, n: u64, reads_lines: bool) -> Option<Self> {
        let mark = if reads_lines { READS_LINES } else { 0 };
        (1..READS_LINES).contains(&n).then_some(Self {
            gateway,
            seq: n | mark,
        })
    }

    /// Whether the client reads newline-delimited lines, where a newline in a message would
    /// split it.
    pub fn reads_lines(self) -> bool {
        self.seq & READS_LINES != 0
    }

    /// The gateway that holds the client.
    pub fn gateway(self) -> GatewayId {
        self.gateway
    }

    /// The connection sequence within its gateway.
    pub fn seq(self) -> u64 {
        self.seq
    }

    /// The id as text, as `Display` writes it, on the stack: every event carries its client's
    /// id as a string, and `to_string` allocates and costs several times this.
    pub fn text(self) -> ClientIdText {
        ClientIdText(self.hex())
    }

    /// The 20 lowercase hex digits, written by hand.
    fn hex(self) -> [u8; 20] {
        let value = (u128::from(self.gateway.get()) << 48) | u128::from(self.seq);
        let mut text = [0u8; 20];
        for (i, digit) in text.iter_mut().rev().enumerate() {
            *digit = b"0123456789abcdef"[(value >> (4 * i)) as usize & 0xf];
        }
        text
    }
}

/// A client id's 20 hex digits, as [`ClientId::text`] writes them.
#[derive(Clone, Copy)]
pub struct ClientIdText([u8; 20]);

impl ClientIdText {
    /// The digits as a string.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).expect("hex digits are ASCII")
    }
}

/// Why a string is not a client id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid client id {0:?}: expected 20 lowercase hex characters")]
pub struct InvalidClientId(pub String);

impl FromStr for ClientId {
    type Err = InvalidClientId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = || InvalidClientId(s.chars().take(64).collect());
        if s.len() != 20 {
            return Err(invalid());
        }
        // One pass by hand, like `Display`: every API call that names a client parses its id.
        let mut value = 0u128;
        for &b in s.as_bytes() {
            let digit = match b {
                b'0'..=b'9' => b - b'0',
                b'a'..=b'f' => b - b'a' + 10,
                _ => return Err(invalid()),
            };
            value = (value << 4) | u128::from(digit);
        }
        let (gateway, seq) = ((value >> 48) as u32, value as u64 & MAX_SEQ);
        GatewayId::new(gateway)
            .and_then(|gateway| Self::new(gateway, seq))
            .ok_or_else(invalid)
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(std::str::from_utf8(&self.hex()).map_err(|_| fmt::Error)?)
    }
}

impl fmt::Debug for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ClientId({self})")
    }
}

/// Why a string is not a uid or group name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidName {
    /// The empty string.
    #[error("a {0} must not be empty")]
    Empty(&'static str),
    /// More than [`MAX_NAME_BYTES`].
    #[error("a {kind} must be at most {MAX_NAME_BYTES} bytes, got {len}")]
    TooLong {
        /// "uid" or "group".
        kind: &'static str,
        /// The length that was given.
        len: usize,
    },
}

/// Defines a validated, cheaply cloned name type.
macro_rules! name_type {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(Arc<str>);

        impl $name {
            /// Checks and wraps a name.
            pub fn new(name: impl Into<String>) -> Result<Self, InvalidName> {
                let name = name.into();
                match name.len() {
                    0 => Err(InvalidName::Empty($kind)),
                    len if len > MAX_NAME_BYTES => Err(InvalidName::TooLong { kind: $kind, len }),
                    _ => Ok(Self(name.into())),
                }
            }

            /// The name as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = InvalidName;

            fn try_from(name: String) -> Result<Self, Self::Error> {
                Self::new(name)
            }
        }

        impl From<$name> for String {
            fn from(name: $name) -> String {
                name.0.to_string()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), &*self.0)
            }
        }
    };
}

name_type!(
    /// A user id bound to clients: non-empty UTF-8, at most 256 bytes.
    Uid,
    "uid"
);
name_type!(
    /// A group name: non-empty UTF-8, at most 256 bytes.
    Group,
    "group"
);

/// The SHA-256 of a plugin file, hex: the full name of a plugin version, as the worker host
/// and the cluster's release store know it.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gw(v: u32) -> GatewayId {
        GatewayId::new(v).expect("non-zero")
    }

    #[test]
    fn client_id_round_trips_through_text() {
        let id = ClientId::new(gw(0xdeadbeef), 0x1234).expect("valid");
        assert_eq!(id.to_string(), "deadbeef000000001234");
        assert_eq!(id.text().as_str(), id.to_string());
        assert_eq!("deadbeef000000001234".parse::<ClientId>(), Ok(id));
        let last = ClientId::new(gw(u32::MAX), MAX_SEQ).expect("valid");
        assert_eq!(last.to_string(), "ffffffffffffffffffff");
        assert_eq!("ffffffffffffffffffff".parse::<ClientId>(), Ok(last));
        assert_eq!(format!("{id:>22}"), "  deadbeef000000001234");
    }

    #[test]
    fn client_id_rejects_malformed_text() {
        for bad in [
            "",
            "deadbeef00000000123",
            "deadbeef0000000012345",
            "DEADBEEF000000001234",
            "deadbeef00000000123g",
            "00000000000000001234",
            "deadbeef000000000000",
            "+eadbeef000000001234",
            "deadbeef0000000012é",
        ] {
            assert!(bad.parse::<ClientId>().is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn client_id_order_is_text_order() {
        let ids = [
            ClientId::new(gw(1), 0xffff).expect("valid"),
            ClientId::new(gw(2), 1).expect("valid"),
            ClientId::new(gw(1), 2).expect("valid"),
        ];
        let mut by_value = ids.to_vec();
        by_value.sort();
        let mut by_text = ids.to_vec();
        by_text.sort_by_key(|id| id.to_string());
        assert_eq!(by_value, by_text);
    }

    #[test]
    fn sequence_is_limited_to_48_bits() {
        assert!(ClientId::new(gw(1), 0).is_none());
        assert!(ClientId::new(gw(1), MAX_SEQ).is_some());
        assert!(ClientId::new(gw(1), MAX_SEQ + 1).is_none());
    }

    #[test]
    fn a_connection_id_says_whether_its_client_reads_lines() {
        let text = ClientId::of_connection(gw(9), 5, true).expect("valid");
        let ws = ClientId::of_connection(gw(9), 5, false).expect("valid");
        assert!(text.reads_lines() && !ws.reads_lines());
        assert_ne!(text, ws);
        assert_eq!(text.to_string(), "00000009800000000005");
        assert_eq!(text.to_string().parse::<ClientId>(), Ok(text));
        assert!(ClientId::of_connection(gw(9), 0, false).is_none());
        assert!(ClientId::of_connection(gw(9), READS_LINES, false).is_none());
    }

    #[test]
    fn names_are_checked() {
        assert_eq!(Uid::new(""), Err(InvalidName::Empty("uid")));
        assert!(Group::new("x".repeat(256)).is_ok());
        assert_eq!(
            Group::new("x".repeat(257)),
            Err(InvalidName::TooLong {
                kind: "group",
                len: 257
            })
        );
        assert_eq!(Uid::new("ünï").expect("valid").as_str(), "ünï");
    }
}
