//! Fails a WebSocket text message at the first byte that cannot be UTF-8, as bytes arrive.
//!
//! tungstenite checks UTF-8 once a frame is complete; RFC 6455 (8.1) and the Autobahn
//! testsuite want the connection failed as soon as the text is known to be invalid, even in
//! the middle of a frame. [`Utf8Scan`] follows the client's frames over the raw bytes read
//! from the socket, before tungstenite parses them, and says when a text message went bad.
//! It has no I/O and only watches: anything else wrong with a frame is tungstenite's to
//! report, so on a frame it does not understand it stops watching.

/// The longest frame header: 2 bytes, 8 of extended length, 4 of mask.
const MAX_HEADER: usize = 14;

/// Bytes unmasked and checked at a time.
const CHUNK: usize = 256;

/// The message a data frame belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Text,
    Binary,
}

/// Where in the stream of frames the scan is.
#[derive(Clone, Copy, Debug)]
enum State {
    /// Reading a frame header; `len` bytes of it so far.
    Header { len: u8 },
    /// Inside a frame's payload.
    Payload {
        remaining: u64,
        mask: [u8; 4],
        /// Payload bytes seen so far, for the mask's phase.
        offset: u64,
        /// Checked as text (a text frame or a continuation of a text message).
        text: bool,
        /// The frame ends its message.
        fin: bool,
    },
    /// Something tungstenite will refuse: nothing more to watch.
    Off,
}

/// The scan of one connection's incoming bytes.
#[derive(Clone, Debug)]
pub struct Utf8Scan {
    state: State,
    header: [u8; MAX_HEADER],
    /// The data message in progress, if any.
    message: Option<Kind>,
    /// The start of a UTF-8 sequence cut by a chunk or fragment boundary.
    carry: [u8; 3],
    carry_len: u8,
}

/// A text message holds bytes that are not UTF-8.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("a text message is not valid UTF-8")]
pub struct InvalidUtf8;

impl Default for Utf8Scan {
    fn default() -> Self {
        Self {
            state: State::Header { len: 0 },
            header: [0; MAX_HEADER],
            message: None,
            carry: [0; 3],
            carry_len: 0,
        }
    }
}

impl Utf8Scan {
    /// Feeds bytes as read from the client (masked frames, server side).
    pub fn feed(&mut self, mut bytes: &[u8]) -> Result<(), InvalidUtf8> {
        while !bytes.is_empty() {
            match self.state {
                State::Off => return Ok(()),
                State::Header { len } => {
                    let len = usize::from(len);
                    let take = (self.header_len(len) - len).min(bytes.len());
                    self.header[len..len + take].copy_from_slice(&bytes[..take]);
                    bytes = &bytes[take..];
                    self.header_bytes(len + take)?;
                }
                State::Payload {
                    remaining,
                    mask,
                    offset,
                    text,
                    fin,
                } => {
                    let n = usize::try_from(remaining).map_or(bytes.len(), |r| r.min(bytes.len()));
                    if text {
                        self.check(&bytes[..n], mask, offset)?;
                    }
                    bytes = &bytes[n..];
                    let remaining = remaining - n as u64;
                    self.state = State::Payload {
                        remaining,
                        mask,
                        offset: offset + n as u64,
                        text,
                        fin,
                    };
                    if remaining == 0 {
                        self.frame_done()?;
                    }
                }
            }
        }
        Ok(())
    }

    /// How long the header is, as far as its first `len` bytes tell (at most [`MAX_HEADER`]).
    fn header_len(&self, len: usize) -> usize {
        if len < 2 {
            return 2;
        }
        2 + extended_len(self.header[1]) + if self.header[1] & 0x80 != 0 { 4 } else { 0 }
    }

    /// Takes in the header's first `len` bytes; starts the payload once the header is whole.
    fn header_bytes(&mut self, len: usize) -> Result<(), InvalidUtf8> {
        let whole = self.header_len(len);
        if len < whole {
            self.state = State::Header { len: len as u8 };
            return Ok(());
        }
        let h = &self.header;
        let masked = h[1] & 0x80 != 0;
        let extended = extended_len(h[1]);
        let payload_len = match extended {
            0 => u64::from(h[1] & 0x7f),
            2 => u64::from(u16::from_be_bytes([h[2], h[3]])),
            _ => u64::from_be_bytes([h[2], h[3], h[4], h[5], h[6], h[7], h[8], h[9]]),
        };
        let mut mask = [0u8; 4];
        if masked {
            mask.copy_from_slice(&h[2 + extended..whole]);
        }
        let fin = h[0] & 0x80 != 0;
        let reserved = h[0] & 0x70 != 0;
        let text = match (h[0] & 0x0f, self.message) {
            // Control frames interleave with a fragmented message and never change it.
            (0x8..=0xa, _) => false,
            (0x0, Some(kind)) => kind == Kind::Text,
            (0x1, None) => {
                self.message = Some(Kind::Text);
                true
            }
            (0x2, None) => {
                self.message = Some(Kind::Binary);
                false
            }
            // A reserved opcode, a continuation of nothing, a new message inside another:
            // tungstenite fails the connection on this frame.
            _ => {
                self.state = State::Off;
                return Ok(());
            }
        };
        if reserved || !masked {
            self.state = State::Off;
            return Ok(());
        }
        let is_control = h[0] & 0x08 != 0;
        self.state = State::Payload {
            remaining: payload_len,
            mask,
            offset: 0,
            text,
            fin: fin && !is_control,
        };
        if payload_len == 0 {
            self.frame_done()?;
        }
        Ok(())
    }

    /// A frame's payload ended: the message ends with it if it was final.
    fn frame_done(&mut self) -> Result<(), InvalidUtf8> {
        if let State::Payload { fin: true, .. } = self.state {
            let text = self.message == Some(Kind::Text);
            self.message = None;
            // A text message may not end inside a UTF-8 sequence.
            if text && std::mem::take(&mut self.carry_len) > 0 {
                return Err(InvalidUtf8);
            }
        }
        self.state = State::Header { len: 0 };
        Ok(())
    }

    /// Unmasks and checks text payload bytes, carrying a cut sequence to the next call.
    fn check(&mut self, masked: &[u8], mask: [u8; 4], offset: u64) -> Result<(), InvalidUtf8> {
        if self.carry_len == 0 && is_ascii(masked, mask, offset) {
            return Ok(());
        }
        let mut buf = [0u8; 3 + CHUNK];
        for (i, chunk) in masked.chunks(CHUNK).enumerate() {
            let carried = usize::from(self.carry_len);
            buf[..carried].copy_from_slice(&self.carry[..carried]);
            let start = offset + (i * CHUNK) as u64;
            for (j, b) in chunk.iter().enumerate() {
                buf[carried + j] = b ^ mask[((start + j as u64) % 4) as usize];
            }
            let text = &buf[..carried + chunk.len()];
            self.carry_len = 0;
            if let Err(e) = std::str::from_utf8(text) {
                if e.error_len().is_some() {
                    return Err(InvalidUtf8);
                }
                // Cut short, not wrong: keep the start of the sequence (at most 3 bytes).
                let tail = &text[e.valid_up_to()..];
                self.carry[..tail.len()].copy_from_slice(tail);
                self.carry_len = tail.len() as u8;
            }
        }
        Ok(())
    }
}

/// Bytes of extended payload length that a header's second byte announces.
fn extended_len(second: u8) -> usize {
    match second & 0x7f {
        126 => 2,
        127 => 8,
        _ => 0,
    }
}

/// Whether the payload bytes unmask to ASCII, which is UTF-8 and leaves nothing to carry:
/// most text, checked four bytes at a time with no copy.
fn is_ascii(masked: &[u8], mask: [u8; 4], offset: u64) -> bool {
    let phase = (offset % 4) as usize;
    let mask: [u8; 4] = std::array::from_fn(|i| mask[(phase + i) % 4]);
    let mut high = 0u8;
    let mut words = masked.chunks_exact(4);
    for word in &mut words {
        high |=
            (word[0] ^ mask[0]) | (word[1] ^ mask[1]) | (word[2] ^ mask[2]) | (word[3] ^ mask[3]);
    }
    for (b, m) in words.remainder().iter().zip(mask) {
        high |= b ^ m;
    }
    high < 0x80
}

#[cfg(test)]
mod tests {
    use super::*;

    const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

    /// A masked client frame.
    fn frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![if fin { 0x80 } else { 0 } | opcode];
        match payload.len() {
            n if n < 126 => f.push(0x80 | n as u8),
            n if n <= 0xffff => {
                f.push(0x80 | 126);
                f.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                f.push(0x80 | 127);
                f.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        f.extend_from_slice(&MASK);
        f.extend(payload.iter().enumerate().map(|(i, b)| b ^ MASK[i % 4]));
        f
    }

    /// Feeds `bytes` one at a time; the index of the byte that failed, if one did.
    fn failing_byte(bytes: &[u8]) -> Option<usize> {
        let mut scan = Utf8Scan::default();
        bytes
            .iter()
            .position(|b| scan.feed(std::slice::from_ref(b)).is_err())
    }

    #[test]
    fn valid_text_in_any_split_passes() {
        let text = "κόσμε, hello, 😀".repeat(40);
        let mut bytes = frame(false, 0x1, &text.as_bytes()[..7]);
        bytes.extend(frame(true, 0x9, b"ping"));
        bytes.extend(frame(true, 0x0, &text.as_bytes()[7..]));
        bytes.extend(frame(true, 0x2, &[0xff, 0xfe]));
        assert_eq!(failing_byte(&bytes), None);
        for cut in [1, 3, 100, 300, bytes.len()] {
            let mut scan = Utf8Scan::default();
            for chunk in bytes.chunks(cut) {
                assert_eq!(scan.feed(chunk), Ok(()), "chunks of {cut}");
            }
        }
    }

    #[test]
    fn invalid_text_fails_at_the_byte_inside_the_frame() {
        // "κόσμε" then 0xf4 0x90: above U+10FFFF, invalid as soon as the 0x90 is seen.
        let mut payload = "κόσμε".as_bytes().to_vec();
        let bad = payload.len() + 1;
        payload.extend_from_slice(&[0xf4, 0x90, 0x80, 0x80, b'x', b'y']);
        let bytes = frame(true, 0x1, &payload);
        let header = bytes.len() - payload.len();
        assert_eq!(failing_byte(&bytes), Some(header + bad));
    }

    #[test]
    fn invalid_text_fails_at_the_fragment_that_holds_it() {
        let mut bytes = frame(false, 0x1, "ok".as_bytes());
        let start = bytes.len();
        bytes.extend(frame(false, 0x0, &[0xc0, 0xaf]));
        let failed = failing_byte(&bytes).expect("fails");
        assert!(failed > start, "not in the valid fragment");
        assert!(failed < bytes.len(), "before the message ends");
    }

    #[test]
    fn a_sequence_cut_between_fragments_is_joined() {
        let euro = "€".as_bytes();
        let mut bytes = frame(false, 0x1, &euro[..1]);
        bytes.extend(frame(false, 0x0, &euro[1..2]));
        bytes.extend(frame(true, 0x0, &euro[2..]));
        assert_eq!(failing_byte(&bytes), None);
    }

    #[test]
    fn a_message_ending_inside_a_sequence_fails() {
        let bytes = frame(true, 0x1, &"€".as_bytes()[..2]);
        assert_eq!(failing_byte(&bytes), Some(bytes.len() - 1));
    }

    #[test]
    fn binary_and_close_payloads_are_not_checked() {
        let mut bytes = frame(true, 0x2, &[0xff; 300]);
        bytes.extend(frame(false, 0x2, &[0xc0]));
        bytes.extend(frame(true, 0x0, &[0xaf]));
        assert_eq!(failing_byte(&bytes), None);
    }

    #[test]
    fn frames_tungstenite_refuses_stop_the_scan() {
        // A reserved opcode, then text that would be invalid: tungstenite fails the first.
        let mut bytes = frame(true, 0x3, b"");
        bytes.extend(frame(true, 0x1, &[0xff]));
        assert_eq!(failing_byte(&bytes), None);
        // Reserved bits likewise.
        let mut rsv = frame(true, 0x1, &[0xff]);
        rsv[0] |= 0x40;
        assert_eq!(failing_byte(&rsv), None);
    }

    #[test]
    fn ascii_checked_a_word_at_a_time_passes_and_fails_at_any_cut() {
        let text = b"echo:0123456789abcdef";
        let whole = frame(true, 0x1, text);
        for cut in 0..=whole.len() {
            let mut scan = Utf8Scan::default();
            assert_eq!(scan.feed(&whole[..cut]), Ok(()));
            assert_eq!(scan.feed(&whole[cut..]), Ok(()), "cut at {cut}");
        }
        for bad in 0..text.len() {
            let mut payload = text.to_vec();
            payload[bad] = 0xff;
            let bytes = frame(true, 0x1, &payload);
            let header = bytes.len() - payload.len();
            assert_eq!(failing_byte(&bytes), Some(header + bad));
            for cut in 0..=bytes.len() {
                let mut scan = Utf8Scan::default();
                let fed = scan
                    .feed(&bytes[..cut])
                    .and_then(|()| scan.feed(&bytes[cut..]));
                assert_eq!(fed, Err(InvalidUtf8), "byte {bad} bad, cut at {cut}");
            }
        }
    }

    #[test]
    fn long_frames_use_extended_lengths() {
        let text = "a".repeat(70_000);
        let mut payload = text.into_bytes();
        payload.push(0xff);
        let bytes = frame(true, 0x1, &payload);
        assert_eq!(bytes[1] & 0x7f, 127);
        let mut scan = Utf8Scan::default();
        assert_eq!(scan.feed(&bytes[..bytes.len() - 1]), Ok(()));
        assert_eq!(scan.feed(&bytes[bytes.len() - 1..]), Err(InvalidUtf8));
    }
}
