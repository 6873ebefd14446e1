//! The two TCP message framings: newline-delimited lines and u32 length-prefixed frames.
//!
//! Both are byte-exact: a line is everything before its `\n` (a `\r` stays, UTF-8 is not
//! required), a frame is exactly its payload. Both refuse a message above the listener's
//! limit as soon as the limit is known to be exceeded, before buffering it.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

/// Why a stream of bytes cannot be framed.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// A message above the limit.
    #[error("message of at least {len} bytes is above the limit of {max} bytes")]
    TooLarge {
        /// The size seen so far, or announced.
        len: u64,
        /// The limit.
        max: usize,
    },
    /// An outgoing message that the framing cannot express: above 4 GiB for frames, or
    /// holding a newline for lines (it would reach the client as several lines).
    #[error("outgoing message of {0} bytes cannot be framed")]
    Unframable(usize),
    /// The socket failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Newline-delimited messages; the `\n` is not part of the message.
#[derive(Clone, Copy, Debug)]
pub struct LineCodec {
    max: usize,
    /// How far the buffer is known to hold no `\n`, so a slow line is not rescanned.
    scanned: usize,
}

impl LineCodec {
    /// Lines of at most `max` bytes, newline excluded.
    pub fn new(max: usize) -> Self {
        Self { max, scanned: 0 }
    }
}

impl Decoder for LineCodec {
    type Item = Bytes;
    type Error = CodecError;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, CodecError> {
        let start = self.scanned.min(buf.len());
        match buf[start..].iter().position(|&b| b == b'\n') {
            Some(offset) => {
                let len = start + offset;
                self.scanned = 0;
                if len > self.max {
                    return Err(self.too_large(len));
                }
                let line = buf.split_to(len).freeze();
                buf.advance(1);
                Ok(Some(line))
            }
            None if buf.len() > self.max => Err(self.too_large(buf.len())),
            None => {
                self.scanned = buf.len();
                Ok(None)
            }
        }
    }
}

impl LineCodec {
    fn too_large(&self, len: usize) -> CodecError {
        CodecError::TooLarge {
            len: len as u64,
            max: self.max,
        }
    }
}

impl Encoder<Bytes> for LineCodec {
    type Error = CodecError;

    fn encode(&mut self, data: Bytes, buf: &mut BytesMut) -> Result<(), CodecError> {
        // A newline inside would let whoever wrote the message inject lines into what a
        // text client reads.
        if data.contains(&b'\n') {
            return Err(CodecError::Unframable(data.len()));
        }
        buf.reserve(data.len() + 1);
        buf.put_slice(&data);
        buf.put_u8(b'\n');
        Ok(())
    }
}

/// Messages prefixed by their length as a big-endian u32.
#[derive(Clone, Copy, Debug)]
pub struct FrameCodec {
    max: usize,
}

/// Bytes in a frame's length prefix.
const PREFIX: usize = 4;

impl FrameCodec {
    /// Frames of at most `max` payload bytes.
    pub fn new(max: usize) -> Self {
        Self { max }
    }
}

impl Decoder for FrameCodec {
    type Item = Bytes;
    type Error = CodecError;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, CodecError> {
        let Some(prefix) = buf.get(..PREFIX) else {
            return Ok(None);
        };
        let announced = u32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]);
        let len = usize::try_from(announced).unwrap_or(usize::MAX);
        if len > self.max {
            return Err(CodecError::TooLarge {
                len: u64::from(announced),
                max: self.max,
            });
        }
        if buf.len() < PREFIX + len {
            // The buffer grows as the bytes arrive, never ahead of them: four bytes of prefix
            // must not buy a client `max` bytes of memory.
            return Ok(None);
        }
        buf.advance(PREFIX);
        Ok(Some(buf.split_to(len).freeze()))
    }
}

impl Encoder<Bytes> for FrameCodec {
    type Error = CodecError;

    fn encode(&mut self, data: Bytes, buf: &mut BytesMut) -> Result<(), CodecError> {
        let len = u32::try_from(data.len()).map_err(|_| CodecError::Unframable(data.len()))?;
        buf.reserve(PREFIX + data.len());
        buf.put_u32(len);
        buf.put_slice(&data);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all<D: Decoder<Item = Bytes, Error = CodecError>>(
        codec: &mut D,
        buf: &mut BytesMut,
    ) -> Result<Vec<Bytes>, CodecError> {
        let mut out = Vec::new();
        while let Some(item) = codec.decode(buf)? {
            out.push(item);
        }
        Ok(out)
    }

    #[test]
    fn lines_are_byte_exact() {
        let mut codec = LineCodec::new(100);
        let mut buf = BytesMut::from(&b"a\r\n\n \xff\xfe \nrest"[..]);
        let lines = decode_all(&mut codec, &mut buf).expect("valid");
        assert_eq!(lines, [&b"a\r"[..], b"", b" \xff\xfe "]);
        assert_eq!(&buf[..], b"rest", "an unterminated line waits");
    }

    #[test]
    fn lines_split_across_reads_are_joined() {
        let mut codec = LineCodec::new(100);
        let mut buf = BytesMut::new();
        for chunk in [&b"hel"[..], b"lo", b" world\nx"] {
            buf.extend_from_slice(chunk);
            if let Some(line) = codec.decode(&mut buf).expect("valid") {
                assert_eq!(line, &b"hello world"[..]);
                assert_eq!(&buf[..], b"x");
                return;
            }
        }
        panic!("no line decoded");
    }

    #[test]
    fn line_limit_excludes_the_newline() {
        let mut codec = LineCodec::new(3);
        let mut buf = BytesMut::from(&b"abc\n"[..]);
        assert_eq!(
            decode_all(&mut codec, &mut buf).expect("fits"),
            [&b"abc"[..]]
        );

        let mut buf = BytesMut::from(&b"abcd\n"[..]);
        assert!(matches!(
            codec.decode(&mut buf),
            Err(CodecError::TooLarge { len: 4, max: 3 })
        ));

        // Refused as soon as the buffered part exceeds the limit, without waiting for `\n`.
        let mut codec = LineCodec::new(3);
        let mut buf = BytesMut::from(&b"abc"[..]);
        assert!(codec.decode(&mut buf).expect("fits so far").is_none());
        buf.extend_from_slice(b"d");
        assert!(matches!(
            codec.decode(&mut buf),
            Err(CodecError::TooLarge { .. })
        ));
    }

    #[test]
    fn lines_are_encoded_with_a_newline() {
        let mut buf = BytesMut::new();
        let mut codec = LineCodec::new(1);
        codec
            .encode(Bytes::from_static(b"hi\r"), &mut buf)
            .expect("encodes");
        codec.encode(Bytes::new(), &mut buf).expect("encodes");
        assert_eq!(&buf[..], b"hi\r\n\n");
    }

    #[test]
    fn a_message_with_a_newline_is_never_sent_as_several_lines() {
        let mut buf = BytesMut::new();
        let mut codec = LineCodec::new(100);
        assert!(matches!(
            codec.encode(Bytes::from_static(b"hi\nadmin: yes"), &mut buf),
            Err(CodecError::Unframable(13))
        ));
        assert!(buf.is_empty());
    }

    #[test]
    fn a_frame_prefix_reserves_no_memory_ahead_of_its_payload() {
        let mut codec = FrameCodec::new(64 << 20);
        let mut buf = BytesMut::with_capacity(16);
        buf.extend_from_slice(&(60u32 << 20).to_be_bytes());
        assert!(codec.decode(&mut buf).expect("allowed").is_none());
        assert!(buf.capacity() < 4096, "reserved {} bytes", buf.capacity());
    }

    #[test]
    fn frames_round_trip() {
        let mut codec = FrameCodec::new(10);
        let mut buf = BytesMut::new();
        for data in [&b"abc"[..], b"", b"\x00\xff\n"] {
            codec
                .encode(Bytes::copy_from_slice(data), &mut buf)
                .expect("encodes");
        }
        assert_eq!(&buf[..7], b"\x00\x00\x00\x03abc");
        let frames = decode_all(&mut codec, &mut buf).expect("valid");
        assert_eq!(frames, [&b"abc"[..], b"", b"\x00\xff\n"]);
        assert!(buf.is_empty());
    }

    #[test]
    fn partial_frames_wait() {
        let mut codec = FrameCodec::new(10);
        let mut buf = BytesMut::from(&b"\x00\x00"[..]);
        assert!(codec.decode(&mut buf).expect("valid").is_none());
        buf.extend_from_slice(b"\x00\x02a");
        assert!(codec.decode(&mut buf).expect("valid").is_none());
        buf.extend_from_slice(b"b");
        assert_eq!(
            codec.decode(&mut buf).expect("valid"),
            Some(Bytes::from_static(b"ab"))
        );
    }

    #[test]
    fn oversized_frames_are_refused_from_the_prefix() {
        let mut codec = FrameCodec::new(10);
        let mut buf = BytesMut::from(&b"\x00\x00\x00\x0b"[..]);
        assert!(matches!(
            codec.decode(&mut buf),
            Err(CodecError::TooLarge { len: 11, max: 10 })
        ));
        let mut buf = BytesMut::from(&b"\xff\xff\xff\xff"[..]);
        assert!(matches!(
            codec.decode(&mut buf),
            Err(CodecError::TooLarge { .. })
        ));
        let mut buf = BytesMut::from(&b"\x00\x00\x00\x0a0123456789"[..]);
        assert_eq!(
            decode_all(&mut codec, &mut buf)
                .expect("at the limit")
                .len(),
            1
        );
    }
}
