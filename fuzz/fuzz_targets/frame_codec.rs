//! The `frame` protocol's length-prefixed codec, fed in chunks: it never panics, every frame
//! is within the limit, and it never reserves memory ahead of the bytes that arrived.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use switchboard::gateway::codec::FrameCodec;
use tokio_util::codec::Decoder;

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let max = (usize::from(first) + 1) << 12;
    let chunk = usize::from(first % 17) + 1;
    let mut codec = FrameCodec::new(max);
    let mut buf = BytesMut::new();
    let mut fed = 0;
    for piece in rest.chunks(chunk) {
        buf.extend_from_slice(piece);
        fed += piece.len();
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(frame)) => assert!(frame.len() <= max),
                Ok(None) => break,
                Err(_) => return,
            }
        }
        assert!(buf.capacity() <= fed.max(64) * 2, "reserved ahead of the bytes");
    }
});
