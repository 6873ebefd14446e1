//! The wire encoding of bus messages: a version byte, then postcard.

use serde::Serialize;
use serde::de::DeserializeOwned;

/// The version of the encoding; bumped whenever a message's shape changes.
pub const WIRE_VERSION: u8 = 3;

/// Why bytes from the network are not a bus message.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// Nothing at all.
    #[error("empty bus message")]
    Empty,
    /// Another version of the encoding: peers must run compatible releases.
    #[error("bus message of wire version {found}, this build speaks {WIRE_VERSION}")]
    Version {
        /// The version found.
        found: u8,
    },
    /// Malformed content.
    #[error("malformed bus message: {0}")]
    Malformed(#[from] postcard::Error),
}

/// Encodes a message for the wire.
pub fn encode<T: Serialize>(message: &T) -> Vec<u8> {
    let mut out = vec![WIRE_VERSION];
    // Serialising plain data into a Vec cannot fail: postcard errors only on full buffers
    // and on types serde cannot represent, and ours are all representable.
    postcard::to_io(message, &mut out).expect("bus messages always serialise");
    out
}

/// Decodes a message from the wire.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, DecodeError> {
    match bytes.split_first() {
        None => Err(DecodeError::Empty),
        Some((&WIRE_VERSION, body)) => Ok(postcard::from_bytes(body)?),
        Some((&found, _)) => Err(DecodeError::Version { found }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::*;

    fn client(seq: u64) -> ClientId {
        ClientId::new(GatewayId::new(7).expect("non-zero"), seq).expect("valid")
    }

    #[test]
    fn messages_round_trip() {
        let event = Event {
            app: "chat".into(),
            ctx: Context {
                client: client(1),
                remote_addr: "127.0.0.1:9".parse().expect("addr"),
                uid: Some(Uid::new("alice").expect("uid")),
                session: Session::new([("nick".into(), "al".into())]).expect("session"),
            },
            kind: EventKind::Message(Message::binary(vec![0, 1, 2])),
        };
        assert_eq!(decode::<Event>(&encode(&event)).expect("decodes"), event);

        let command = Command::Send {
            to: Target::Group(Group::new("room").expect("group")),
            message: Message::text("hi"),
            without: vec![client(2)],
        };
        assert_eq!(
            decode::<Command>(&encode(&command)).expect("decodes"),
            command
        );

        let reply = Reply::Clients(vec![client(1), client(3)]);
        assert_eq!(decode::<Reply>(&encode(&reply)).expect("decodes"), reply);
    }

    #[test]
    fn bad_input_is_an_error() {
        assert!(matches!(decode::<Command>(&[]), Err(DecodeError::Empty)));
        assert!(matches!(
            decode::<Command>(&[9, 0]),
            Err(DecodeError::Version { found: 9 })
        ));
        assert!(matches!(
            decode::<Command>(&[WIRE_VERSION, 200, 1]),
            Err(DecodeError::Malformed(_))
        ));
        // An empty uid and invalid UTF-8 in a text message are refused by decoding.
        let bind = encode(&Command::BindUid {
            client: client(1),
            uid: Uid::new("u").expect("uid"),
        });
        let mut empty_uid = bind.clone();
        let len_at = empty_uid.len() - 2;
        empty_uid.truncate(len_at);
        empty_uid.push(0);
        assert!(decode::<Command>(&empty_uid).is_err());
        let mut text = encode(&Command::Send {
            to: Target::All,
            message: Message::text("a"),
            without: vec![],
        });
        let at = text.iter().rposition(|&b| b == b'a').expect("payload");
        text[at] = 0xff;
        assert!(decode::<Command>(&text).is_err());
    }
}
