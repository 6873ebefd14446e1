//! The bus codec, as a gateway or a worker reads what arrives from NATS: any bytes decode or
//! are refused, never panic, and what decodes encodes back to the same message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard::bus::codec::{decode, encode};
use switchboard::bus::nats::wire::{Heartbeat, ToGateway, ToWorker};

fuzz_target!(|data: &[u8]| {
    if let Ok(message) = decode::<ToGateway>(data) {
        assert_eq!(decode::<ToGateway>(&encode(&message)).ok(), Some(message));
    }
    if let Ok(message) = decode::<ToWorker>(data) {
        assert_eq!(decode::<ToWorker>(&encode(&message)).ok(), Some(message));
    }
    if let Ok(beat) = decode::<Heartbeat>(data) {
        assert_eq!(decode::<Heartbeat>(&encode(&beat)).ok(), Some(beat));
    }
});
