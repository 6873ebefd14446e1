//! The WebSocket handshake's request-head parser: any bytes give a request, a wait for more,
//! or a refusal with an HTTP answer, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard::gateway::handshake::parse;

fuzz_target!(|data: &[u8]| {
    match parse(data) {
        Ok(Some(upgrade)) => {
            assert!(upgrade.response.starts_with(b"HTTP/1.1 101"));
            assert!(upgrade.leftover.len() < data.len());
        }
        Ok(None) => {}
        Err(refusal) => assert!(refusal.response().starts_with(b"HTTP/1.1 4")),
    }
});
