//! The `text` protocol's line codec, fed the input in chunks whose sizes the input chooses:
//! it never panics, every line it yields is within the limit and holds no newline, and the
//! buffer never holds more than was fed.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use switchboard::gateway::codec::LineCodec;
use tokio_util::codec::Decoder;

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let max = usize::from(first) * 4;
    let chunk = usize::from(first % 13) + 1;
    let mut codec = LineCodec::new(max);
    let mut buf = BytesMut::new();
    let mut fed = 0;
    for piece in rest.chunks(chunk) {
        buf.extend_from_slice(piece);
        fed += piece.len();
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(line)) => {
                    assert!(line.len() <= max);
                    assert!(!line.contains(&b'\n'));
                }
                Ok(None) => break,
                Err(_) => return,
            }
        }
        assert!(buf.len() <= fed);
    }
});
