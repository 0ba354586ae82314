//! Frame headers, masking and control frames (RFC 6455 §5). Read RFC 6455 §5.2 (base framing) first.
//!
//! Direction matters: parsing is for frames *from the server*, emitting for frames *from the client*.
//! [`try_parse_header`] enforces every §5.2 rule a client owes the server's frames: no mask (§5.1), no
//! RSV bit (we negotiate no extension), no reserved opcode, control frames unfragmented and at most 125
//! bytes (§5.5), a 64-bit length with its top bit clear, and a payload no longer than the caller's cap,
//! all decided from the header alone, before one payload byte is read. [`emit_header`] always writes a
//! masked header (§5.3: a client masks every frame); [`emit_unmasked_header`] exists for test peers
//! that play the server.
//!
//! What this module does not do: hold payloads, reassemble fragments (see [`super::message`]) or
//! choose masking keys (the connection draws them from a random source, §10.3).
//!
//! Indexing: the parser reads only through `get`, the emitters write into fixed-size arrays whose
//! lengths are the §5.2 maxima, so no input can make them panic.
use super::{
    Error, WS_CONTROL_FRAME_MAX_BYTES, WS_CONTROL_PAYLOAD_MAX_BYTES, WS_FRAME_HEADER_MAX_BYTES,
};

/// The opcodes RFC 6455 defines (§5.2, §11.8). The reserved values 0x3–0x7 and 0xB–0xF have no variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opcode {
    /// 0x0: continues a fragmented message (§5.4).
    Continuation,
    /// 0x1: a UTF-8 text message, or its first fragment.
    Text,
    /// 0x2: a binary message, or its first fragment.
    Binary,
    /// 0x8: close (§5.5.1).
    Close,
    /// 0x9: ping (§5.5.2).
    Ping,
    /// 0xA: pong (§5.5.3).
    Pong,
}

impl Opcode {
    /// The opcode for the 4-bit value `bits`, or `None` for a reserved or out-of-range value.
    pub fn from_bits(bits: u8) -> Option<Opcode> {
        match bits {
            0x0 => Some(Opcode::Continuation),
            0x1 => Some(Opcode::Text),
            0x2 => Some(Opcode::Binary),
            0x8 => Some(Opcode::Close),
            0x9 => Some(Opcode::Ping),
            0xA => Some(Opcode::Pong),
            _ => None,
        }
    }

    /// The 4-bit wire value.
    pub fn bits(self) -> u8 {
        match self {
            Opcode::Continuation => 0x0,
            Opcode::Text => 0x1,
            Opcode::Binary => 0x2,
            Opcode::Close => 0x8,
            Opcode::Ping => 0x9,
            Opcode::Pong => 0xA,
        }
    }

    /// Close, ping and pong: opcodes with the high bit set (§5.5).
    pub fn is_control(self) -> bool {
        self.bits() & 0x8 != 0
    }
}

/// A server frame header that passed every check of [`try_parse_header`]. Server frames carry no
/// masking key (§5.1), so there is none here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// FIN: this is the final fragment of a message (always set on control frames).
    pub fin: bool,
    /// What the payload is.
    pub opcode: Opcode,
    /// Payload length in bytes; at most the cap given to [`try_parse_header`].
    pub payload_len: usize,
}

/// Parses a frame header from the start of `buf`, the bytes read from the server.
///
/// - `Ok(Some((header, n)))`: the header is the first `n` bytes (2, 4 or 10); the payload follows and is
///   `header.payload_len` bytes, which is at most `payload_max`.
/// - `Ok(None)`: partial; `buf` is a valid beginning of a header, read more and call again with the
///   longer buffer.
/// - `Err`: the frame breaks RFC 6455 or the cap; fail the connection with [`Error::close_code`]. Rules
///   visible in the first two bytes (RSV, opcode, mask, fragmented control) fail as soon as those two
///   bytes are in.
///
/// A length written with more bytes than needed (a 16-bit length below 126) is accepted: §5.2 binds the
/// sender to the minimal form but asks nothing of the receiver.
pub fn try_parse_header(buf: &[u8], payload_max: usize) -> Result<Option<(Header, usize)>, Error> {
    let (b0, b1) = match buf {
        [b0, b1, ..] => (*b0, *b1),
        _ => return Ok(None),
    };
    // §5.2: "MUST be 0 unless an extension is negotiated that defines meanings for non-zero values".
    let rsv = (b0 >> 4) & 0b111;
    if rsv != 0 {
        return Err(Error::ReservedBits { bits: rsv });
    }
    // §5.2: "If an unknown opcode is received, the receiving endpoint MUST _Fail the WebSocket Connection_".
    let bits = b0 & 0x0F;
    let opcode = Opcode::from_bits(bits).ok_or(Error::UnknownOpcode { opcode: bits })?;
    let fin = b0 & 0x80 != 0;
    // §5.1: "A client MUST close a connection if it detects a masked frame."
    if b1 & 0x80 != 0 {
        return Err(Error::MaskedFrame);
    }
    check_control(opcode, fin, None)?;
    let (len, header_len) = match b1 & 0x7F {
        126 => match buf.get(2..4) {
            Some(&[hi, lo]) => (u64::from(u16::from_be_bytes([hi, lo])), 4),
            _ => return Ok(None),
        },
        127 => match buf.get(2..10).and_then(|b| <[u8; 8]>::try_from(b).ok()) {
            Some(be) => (u64::from_be_bytes(be), 10),
            None => return Ok(None),
        },
        n => (u64::from(n), 2),
    };
    // §5.2: "the most significant bit MUST be 0".
    if len >> 63 != 0 {
        return Err(Error::LengthOverflow { len });
    }
    check_control(opcode, fin, Some(len))?;
    let too_large = Error::FrameTooLarge {
        len,
        max: payload_max,
    };
    if len > payload_max as u64 {
        return Err(too_large);
    }
    // len <= payload_max, a usize, so the conversion cannot fail; the error arm is unreachable.
    let payload_len = usize::try_from(len).map_err(|_| too_large)?;
    Ok(Some((
        Header {
            fin,
            opcode,
            payload_len,
        },
        header_len,
    )))
}

/// The §5.5 rules for control frames: FIN set, and (when the length is known) at most 125 bytes.
/// Data opcodes pass.
pub(crate) fn check_control(opcode: Opcode, fin: bool, len: Option<u64>) -> Result<(), Error> {
    if !opcode.is_control() {
        return Ok(());
    }
    if !fin {
        return Err(Error::FragmentedControl {
            opcode: opcode.bits(),
        });
    }
    match len {
        Some(len) if len > WS_CONTROL_PAYLOAD_MAX_BYTES as u64 => Err(Error::ControlTooLarge {
            len,
            max: WS_CONTROL_PAYLOAD_MAX_BYTES,
        }),
        _ => Ok(()),
    }
}

/// Writes a client frame header (masked, §5.3) into `out` and returns its length (6, 8 or 14). The
/// payload, masked with the same key through [`apply_mask`], follows it on the wire.
///
/// The caller keeps control frames at `fin = true` and at most 125 bytes (§5.5); [`emit_close`],
/// [`emit_ping`] and [`emit_pong`] check that and are the way to write control frames.
pub fn emit_header(
    out: &mut [u8; WS_FRAME_HEADER_MAX_BYTES],
    opcode: Opcode,
    fin: bool,
    payload_len: usize,
    mask_key: [u8; 4],
) -> usize {
    emit(out, opcode, fin, payload_len, Some(mask_key))
}

/// Writes an unmasked frame header, as a server sends it, and returns its length (2, 4 or 10).
///
/// For fake servers in tests and fuzz seeds only: a client must never send an unmasked frame (§5.1).
pub fn emit_unmasked_header(
    out: &mut [u8; WS_FRAME_HEADER_MAX_BYTES],
    opcode: Opcode,
    fin: bool,
    payload_len: usize,
) -> usize {
    emit(out, opcode, fin, payload_len, None)
}

fn emit(
    out: &mut [u8; WS_FRAME_HEADER_MAX_BYTES],
    opcode: Opcode,
    fin: bool,
    payload_len: usize,
    mask_key: Option<[u8; 4]>,
) -> usize {
    out[0] = if fin { 0x80 } else { 0 } | opcode.bits();
    let mask_bit = if mask_key.is_some() { 0x80 } else { 0 };
    let len = payload_len as u64;
    // §5.2: the minimal number of bytes must be used to encode the length.
    let mut n = if len <= WS_CONTROL_PAYLOAD_MAX_BYTES as u64 {
        out[1] = mask_bit | len as u8;
        2
    } else if len <= u64::from(u16::MAX) {
        out[1] = mask_bit | 126;
        out[2..4].copy_from_slice(&(len as u16).to_be_bytes());
        4
    } else {
        out[1] = mask_bit | 127;
        out[2..10].copy_from_slice(&len.to_be_bytes());
        10
    };
    if let Some(key) = mask_key {
        out[n..n + 4].copy_from_slice(&key);
        n += 4;
    }
    n
}

/// Masks or unmasks `payload` in place with `mask_key` (§5.3: byte `i` of the payload is XORed with
/// `mask_key[i % 4]`). `offset` is the position of `payload[0]` within the frame's payload, so a payload
/// can be masked in pieces: masking `p[..k]` at offset 0 and `p[k..]` at offset `k` equals masking `p`.
pub fn apply_mask(payload: &mut [u8], mask_key: [u8; 4], offset: usize) {
    let start = offset % 4;
    for (i, byte) in payload.iter_mut().enumerate() {
        *byte ^= mask_key[(start + i) % 4];
    }
}

/// A received close frame body (§5.5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Close<'a> {
    /// The status code, `None` for an empty body (the application sees 1005, "no status", §7.4.1).
    pub code: Option<u16>,
    /// The reason, UTF-8 (§5.5.1); empty when none was given.
    pub reason: &'a str,
}

/// Parses a close frame payload from the server: empty, or a valid status code (§7.4) followed by a
/// UTF-8 reason. A one-byte body, a code that must not be sent (1004–1006, 1015, below 1000, 1016–2999,
/// 5000 and above), a reason that is not UTF-8 or a body over 125 bytes is an error.
pub fn parse_close(payload: &[u8]) -> Result<Close<'_>, Error> {
    if payload.len() > WS_CONTROL_PAYLOAD_MAX_BYTES {
        return Err(Error::ControlTooLarge {
            len: payload.len() as u64,
            max: WS_CONTROL_PAYLOAD_MAX_BYTES,
        });
    }
    match payload {
        [] => Ok(Close {
            code: None,
            reason: "",
        }),
        [_] => Err(Error::CloseTooShort),
        [hi, lo, reason @ ..] => {
            let code = u16::from_be_bytes([*hi, *lo]);
            check_close_code(code)?;
            let reason = std::str::from_utf8(reason).map_err(|e| Error::InvalidUtf8 {
                what: "close reason",
                at: 2 + e.valid_up_to(),
            })?;
            Ok(Close {
                code: Some(code),
                reason,
            })
        }
    }
}

/// Checks that `code` may appear in a close frame, sent or received.
///
/// Allowed: 1000–1003 and 1007–1011 (§7.4.1), 1012–1014 (registered with IANA after RFC 6455: service
/// restart, try again later, bad gateway; servers send 1012 when they restart), 3000–4999 (libraries
/// and applications, §7.4.2). Refused: below 1000 (unused, §7.4.2), 1004 (reserved), 1005, 1006 and 1015
/// ("MUST NOT be set as a status code in a Close control frame", §7.4.1), 1016–2999 (reserved for the
/// protocol, §7.4.2) and 5000 and above (undefined).
pub fn check_close_code(code: u16) -> Result<(), Error> {
    match code {
        1000..=1003 | 1007..=1014 | 3000..=4999 => Ok(()),
        _ => Err(Error::InvalidCloseCode { code }),
    }
}

/// Writes a whole masked client close frame into `out` and returns its length. `None` sends an empty
/// body; `Some((code, reason))` a status code (checked with [`check_close_code`]) and a reason of at
/// most [`super::WS_CLOSE_REASON_MAX_BYTES`] bytes.
pub fn emit_close(
    out: &mut [u8; WS_CONTROL_FRAME_MAX_BYTES],
    close: Option<(u16, &str)>,
    mask_key: [u8; 4],
) -> Result<usize, Error> {
    match close {
        None => emit_control(out, Opcode::Close, &[], &[], mask_key),
        Some((code, reason)) => {
            check_close_code(code)?;
            emit_control(
                out,
                Opcode::Close,
                &code.to_be_bytes(),
                reason.as_bytes(),
                mask_key,
            )
        }
    }
}

/// Writes a whole masked client ping frame carrying `payload` (at most 125 bytes) into `out` and
/// returns its length.
pub fn emit_ping(
    out: &mut [u8; WS_CONTROL_FRAME_MAX_BYTES],
    payload: &[u8],
    mask_key: [u8; 4],
) -> Result<usize, Error> {
    emit_control(out, Opcode::Ping, &[], payload, mask_key)
}

/// Writes a whole masked client pong frame into `out` and returns its length. In answer to a ping,
/// `payload` is the ping's payload (§5.5.3: "identical Application data").
pub fn emit_pong(
    out: &mut [u8; WS_CONTROL_FRAME_MAX_BYTES],
    payload: &[u8],
    mask_key: [u8; 4],
) -> Result<usize, Error> {
    emit_control(out, Opcode::Pong, &[], payload, mask_key)
}

/// A control frame: `head` then `body` as payload, masked. Checks the §5.5 size before writing.
fn emit_control(
    out: &mut [u8; WS_CONTROL_FRAME_MAX_BYTES],
    opcode: Opcode,
    head: &[u8],
    body: &[u8],
    mask_key: [u8; 4],
) -> Result<usize, Error> {
    let len = head.len() + body.len();
    if len > WS_CONTROL_PAYLOAD_MAX_BYTES {
        return Err(Error::ControlTooLarge {
            len: len as u64,
            max: WS_CONTROL_PAYLOAD_MAX_BYTES,
        });
    }
    let mut header = [0u8; WS_FRAME_HEADER_MAX_BYTES];
    let n = emit_header(&mut header, opcode, true, len, mask_key);
    // len <= 125, so n == 6 and n + len <= WS_CONTROL_FRAME_MAX_BYTES: every range below is in bounds.
    out[..n].copy_from_slice(&header[..n]);
    out[n..n + head.len()].copy_from_slice(head);
    out[n + head.len()..n + len].copy_from_slice(body);
    apply_mask(&mut out[n..n + len], mask_key, 0);
    Ok(n + len)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAP: usize = 65_536;

    fn h(fin: bool, opcode: Opcode, payload_len: usize) -> Header {
        Header {
            fin,
            opcode,
            payload_len,
        }
    }

    /// Results are compared through `Debug`: `Error` does not implement `PartialEq` (a later I/O
    /// variant could not).
    fn show<T: std::fmt::Debug>(value: &T) -> String {
        format!("{value:?}")
    }

    type Expect = Result<Option<(Header, usize)>, Error>;

    fn header_cases() -> Vec<(&'static str, Vec<u8>, usize, Expect)> {
        let ext16 = |b0: u8, len: u16| {
            let mut v = vec![b0, 126];
            v.extend_from_slice(&len.to_be_bytes());
            v
        };
        let ext64 = |b0: u8, len: u64| {
            let mut v = vec![b0, 127];
            v.extend_from_slice(&len.to_be_bytes());
            v
        };
        vec![
            // RFC 6455 §5.7 examples (headers only).
            (
                "5.7 unmasked hello",
                vec![0x81, 0x05],
                CAP,
                Ok(Some((h(true, Opcode::Text, 5), 2))),
            ),
            (
                "5.7 first fragment",
                vec![0x01, 0x03],
                CAP,
                Ok(Some((h(false, Opcode::Text, 3), 2))),
            ),
            (
                "5.7 last fragment",
                vec![0x80, 0x02],
                CAP,
                Ok(Some((h(true, Opcode::Continuation, 2), 2))),
            ),
            (
                "5.7 ping",
                vec![0x89, 0x05],
                CAP,
                Ok(Some((h(true, Opcode::Ping, 5), 2))),
            ),
            (
                "5.7 256 binary",
                ext16(0x82, 256),
                CAP,
                Ok(Some((h(true, Opcode::Binary, 256), 4))),
            ),
            (
                "5.7 64KiB binary",
                ext64(0x82, 65_536),
                CAP,
                Ok(Some((h(true, Opcode::Binary, 65_536), 10))),
            ),
            (
                "empty text",
                vec![0x81, 0x00],
                CAP,
                Ok(Some((h(true, Opcode::Text, 0), 2))),
            ),
            (
                "125 in 7 bits",
                vec![0x82, 125],
                CAP,
                Ok(Some((h(true, Opcode::Binary, 125), 2))),
            ),
            (
                "126 in 16 bits",
                ext16(0x82, 126),
                CAP,
                Ok(Some((h(true, Opcode::Binary, 126), 4))),
            ),
            (
                "65535 in 16 bits",
                ext16(0x82, 65_535),
                CAP,
                Ok(Some((h(true, Opcode::Binary, 65_535), 4))),
            ),
            (
                "pong 125",
                vec![0x8A, 125],
                CAP,
                Ok(Some((h(true, Opcode::Pong, 125), 2))),
            ),
            (
                "close 2",
                vec![0x88, 0x02],
                CAP,
                Ok(Some((h(true, Opcode::Close, 2), 2))),
            ),
            (
                "non-minimal 16-bit length accepted",
                ext16(0x81, 5),
                CAP,
                Ok(Some((h(true, Opcode::Text, 5), 4))),
            ),
            (
                "non-minimal 64-bit length accepted",
                ext64(0x81, 5),
                CAP,
                Ok(Some((h(true, Opcode::Text, 5), 10))),
            ),
            (
                "length at cap",
                ext16(0x82, 1000),
                1000,
                Ok(Some((h(true, Opcode::Binary, 1000), 4))),
            ),
            (
                "zero cap, empty frame",
                vec![0x81, 0x00],
                0,
                Ok(Some((h(true, Opcode::Text, 0), 2))),
            ),
            // Failures.
            (
                "length over cap",
                ext16(0x82, 1001),
                1000,
                Err(Error::FrameTooLarge {
                    len: 1001,
                    max: 1000,
                }),
            ),
            (
                "64-bit length over cap",
                ext64(0x82, 65_537),
                CAP,
                Err(Error::FrameTooLarge {
                    len: 65_537,
                    max: CAP,
                }),
            ),
            (
                "64-bit msb set",
                ext64(0x82, 1 << 63),
                CAP,
                Err(Error::LengthOverflow { len: 1 << 63 }),
            ),
            (
                "64-bit all ones",
                ext64(0x82, u64::MAX),
                CAP,
                Err(Error::LengthOverflow { len: u64::MAX }),
            ),
            (
                "masked server frame",
                vec![0x81, 0x85, 1, 2, 3, 4],
                CAP,
                Err(Error::MaskedFrame),
            ),
            (
                "masked, first 2 bytes decide",
                vec![0x81, 0x80],
                CAP,
                Err(Error::MaskedFrame),
            ),
            (
                "rsv1",
                vec![0xC1, 0x00],
                CAP,
                Err(Error::ReservedBits { bits: 4 }),
            ),
            (
                "rsv2",
                vec![0xA1, 0x00],
                CAP,
                Err(Error::ReservedBits { bits: 2 }),
            ),
            (
                "rsv3",
                vec![0x91, 0x00],
                CAP,
                Err(Error::ReservedBits { bits: 1 }),
            ),
            (
                "rsv all",
                vec![0xF1, 0x00],
                CAP,
                Err(Error::ReservedBits { bits: 7 }),
            ),
            (
                "opcode 3",
                vec![0x83, 0x00],
                CAP,
                Err(Error::UnknownOpcode { opcode: 3 }),
            ),
            (
                "opcode 7",
                vec![0x87, 0x00],
                CAP,
                Err(Error::UnknownOpcode { opcode: 7 }),
            ),
            (
                "opcode b",
                vec![0x8B, 0x00],
                CAP,
                Err(Error::UnknownOpcode { opcode: 0xB }),
            ),
            (
                "opcode f",
                vec![0x8F, 0x00],
                CAP,
                Err(Error::UnknownOpcode { opcode: 0xF }),
            ),
            (
                "fragmented ping",
                vec![0x09, 0x00],
                CAP,
                Err(Error::FragmentedControl { opcode: 9 }),
            ),
            (
                "fragmented close",
                vec![0x08, 0x00],
                CAP,
                Err(Error::FragmentedControl { opcode: 8 }),
            ),
            (
                "ping 126",
                ext16(0x89, 126),
                CAP,
                Err(Error::ControlTooLarge { len: 126, max: 125 }),
            ),
            (
                "close 64-bit 200",
                ext64(0x88, 200),
                CAP,
                Err(Error::ControlTooLarge { len: 200, max: 125 }),
            ),
            (
                "control limit before frame cap",
                ext16(0x8A, 126),
                10,
                Err(Error::ControlTooLarge { len: 126, max: 125 }),
            ),
            // Partial.
            ("empty input", vec![], CAP, Ok(None)),
            ("one byte", vec![0x81], CAP, Ok(None)),
            ("16-bit length cut", vec![0x82, 126, 0x01], CAP, Ok(None)),
            (
                "64-bit length cut",
                vec![0x82, 127, 0, 0, 0, 0, 0, 1, 0],
                CAP,
                Ok(None),
            ),
        ]
    }

    #[test]
    fn parse_header_table() {
        for (name, bytes, cap, expect) in header_cases() {
            assert_eq!(
                show(&try_parse_header(&bytes, cap)),
                show(&expect),
                "{name}"
            );
        }
    }

    /// Trailing payload bytes do not change the header.
    #[test]
    fn parse_header_ignores_what_follows() {
        for (name, mut bytes, cap, expect) in header_cases() {
            if let Ok(Some(_)) = expect {
                bytes.extend_from_slice(&[0xAA; 16]);
                assert_eq!(
                    show(&try_parse_header(&bytes, cap)),
                    show(&expect),
                    "{name}"
                );
            }
        }
    }

    /// Every prefix of a fixture (the bytes one read at a time, or up to any split point) answers
    /// partial or, once the deciding byte is in, the same final answer.
    #[test]
    fn parse_header_every_prefix() {
        for (name, bytes, cap, expect) in header_cases() {
            let want = show(&expect);
            let mut decided = false;
            for k in 0..=bytes.len() {
                let got = show(&try_parse_header(&bytes[..k], cap));
                if decided {
                    assert_eq!(got, want, "{name}: prefix {k} after decision");
                } else if got != show(&Expect::Ok(None)) {
                    assert_eq!(got, want, "{name}: prefix {k}");
                    decided = true;
                }
            }
            assert!(
                decided || matches!(expect, Ok(None)),
                "{name}: never decided"
            );
        }
    }

    #[test]
    fn every_opcode_value() {
        for bits in 0u8..=0xF {
            let known = matches!(bits, 0x0..=0x2 | 0x8..=0xA);
            let got = try_parse_header(&[0x80 | bits, 0], CAP);
            assert_eq!(got.is_ok(), known, "opcode {bits:#x}");
            if let Some(op) = Opcode::from_bits(bits) {
                assert_eq!(op.bits(), bits);
                assert_eq!(op.is_control(), bits >= 8);
            }
        }
        assert_eq!(Opcode::from_bits(0x10), None);
    }

    #[test]
    fn emitted_headers_parse_back() {
        let lengths = [0usize, 1, 125, 126, 127, 65_535, 65_536, 1 << 20];
        let opcodes = [Opcode::Continuation, Opcode::Text, Opcode::Binary];
        for &len in &lengths {
            for &op in &opcodes {
                for fin in [false, true] {
                    let mut out = [0u8; WS_FRAME_HEADER_MAX_BYTES];
                    let n = emit_unmasked_header(&mut out, op, fin, len);
                    let want = if len <= 125 {
                        2
                    } else if len <= 65_535 {
                        4
                    } else {
                        10
                    };
                    assert_eq!(n, want, "len {len}");
                    let got = try_parse_header(&out[..n], usize::MAX)
                        .expect("valid")
                        .expect("whole");
                    assert_eq!(got, (h(fin, op, len), n));

                    // The client form is the same plus mask bit and key; the server-side parser refuses it.
                    let mut masked = [0u8; WS_FRAME_HEADER_MAX_BYTES];
                    let m = emit_header(&mut masked, op, fin, len, [9, 8, 7, 6]);
                    assert_eq!(m, n + 4);
                    assert_eq!(masked[1] & 0x80, 0x80);
                    assert_eq!(masked[0], out[0]);
                    assert_eq!(masked[1] & 0x7F, out[1]);
                    assert_eq!(masked[2..n], out[2..n]);
                    assert_eq!(masked[n..m], [9, 8, 7, 6]);
                    assert!(matches!(
                        try_parse_header(&masked[..m], usize::MAX),
                        Err(Error::MaskedFrame)
                    ));
                }
            }
        }
    }

    /// RFC 6455 §5.7: "A single-frame masked text message" and "Ping request and masked Pong response".
    #[test]
    fn rfc6455_section_5_7_masked_examples() {
        let key = [0x37, 0xfa, 0x21, 0x3d];
        let mut head = [0u8; WS_FRAME_HEADER_MAX_BYTES];
        let n = emit_header(&mut head, Opcode::Text, true, 5, key);
        let mut payload = *b"Hello";
        apply_mask(&mut payload, key, 0);
        let mut frame = head[..n].to_vec();
        frame.extend_from_slice(&payload);
        assert_eq!(
            frame,
            [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]
        );

        let mut out = [0u8; WS_CONTROL_FRAME_MAX_BYTES];
        let n = emit_pong(&mut out, b"Hello", key).expect("5 bytes fit");
        assert_eq!(
            out[..n],
            [0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]
        );
    }

    #[test]
    fn mask_in_pieces_equals_mask_whole() {
        let key = [0xde, 0xad, 0xbe, 0xef];
        let original: Vec<u8> = (0..37u8).collect();
        let mut whole = original.clone();
        apply_mask(&mut whole, key, 0);
        for split in 0..=original.len() {
            let mut pieces = original.clone();
            let (a, b) = pieces.split_at_mut(split);
            apply_mask(a, key, 0);
            apply_mask(b, key, split);
            assert_eq!(pieces, whole, "split {split}");
        }
        // Masking twice restores the payload; offsets far past 2^32 still only use offset % 4.
        apply_mask(&mut whole, key, 0);
        assert_eq!(whole, original);
        let mut one = [0u8];
        apply_mask(&mut one, key, usize::MAX);
        assert_eq!(one, [key[usize::MAX % 4]]);
    }

    #[test]
    fn close_payload_table() {
        let long_reason = [b'r'; 123];
        let mut max_body = vec![0x03, 0xE8];
        max_body.extend_from_slice(&long_reason);
        let mut over = max_body.clone();
        over.push(b'r');
        let cases: Vec<(&str, Vec<u8>, Result<Close<'_>, Error>)> = vec![
            (
                "empty",
                vec![],
                Ok(Close {
                    code: None,
                    reason: "",
                }),
            ),
            (
                "1000",
                vec![0x03, 0xE8],
                Ok(Close {
                    code: Some(1000),
                    reason: "",
                }),
            ),
            (
                "1000 + reason",
                b"\x03\xE8bye".to_vec(),
                Ok(Close {
                    code: Some(1000),
                    reason: "bye",
                }),
            ),
            (
                "1008 dockmon auth",
                b"\x03\xF0Authentication failed".to_vec(),
                Ok(Close {
                    code: Some(1008),
                    reason: "Authentication failed",
                }),
            ),
            (
                "3000",
                vec![0x0B, 0xB8],
                Ok(Close {
                    code: Some(3000),
                    reason: "",
                }),
            ),
            (
                "4999",
                vec![0x13, 0x87],
                Ok(Close {
                    code: Some(4999),
                    reason: "",
                }),
            ),
            ("one byte", vec![0x03], Err(Error::CloseTooShort)),
            (
                "1005",
                vec![0x03, 0xED],
                Err(Error::InvalidCloseCode { code: 1005 }),
            ),
            ("0", vec![0, 0], Err(Error::InvalidCloseCode { code: 0 })),
            (
                "bad utf-8 reason",
                vec![0x03, 0xE8, b'o', 0xFF],
                Err(Error::InvalidUtf8 {
                    what: "close reason",
                    at: 3,
                }),
            ),
            (
                "truncated utf-8 reason",
                vec![0x03, 0xE8, 0xC3],
                Err(Error::InvalidUtf8 {
                    what: "close reason",
                    at: 2,
                }),
            ),
            (
                "125 bytes",
                max_body.clone(),
                Ok(Close {
                    code: Some(1000),
                    reason: std::str::from_utf8(&long_reason).unwrap_or(""),
                }),
            ),
            (
                "126 bytes",
                over,
                Err(Error::ControlTooLarge { len: 126, max: 125 }),
            ),
        ];
        for (name, body, expect) in &cases {
            assert_eq!(show(&parse_close(body)), show(expect), "{name}");
        }
        // A real UTF-8 reason after a real code.
        let body = [&[0x03, 0xE8][..], "é".as_bytes()].concat();
        assert_eq!(
            parse_close(&body).ok(),
            Some(Close {
                code: Some(1000),
                reason: "é"
            })
        );
    }

    #[test]
    fn close_code_ranges() {
        let allowed = |code: u16| check_close_code(code).is_ok();
        for code in 0..=u16::MAX {
            let want = matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999);
            assert_eq!(allowed(code), want, "code {code}");
        }
        for code in [1004, 1005, 1006, 1015, 999, 1016, 2999, 5000] {
            assert!(!allowed(code), "{code}");
        }
    }

    #[test]
    fn emit_close_table() {
        let key = [1, 2, 3, 4];
        let reason_123 = "x".repeat(123);
        let reason_124 = "x".repeat(124);
        /// (name, what to send, expected frame length or error)
        type Case<'a> = (&'a str, Option<(u16, &'a str)>, Result<usize, Error>);
        let cases: Vec<Case<'_>> = vec![
            ("empty", None, Ok(6)),
            ("normal", Some((1000, "")), Ok(8)),
            ("going away + reason", Some((1001, "shutdown")), Ok(16)),
            ("longest reason", Some((1000, &reason_123)), Ok(131)),
            (
                "reason too long",
                Some((1000, &reason_124)),
                Err(Error::ControlTooLarge { len: 126, max: 125 }),
            ),
            (
                "1005 never sent",
                Some((1005, "")),
                Err(Error::InvalidCloseCode { code: 1005 }),
            ),
            (
                "1006 never sent",
                Some((1006, "")),
                Err(Error::InvalidCloseCode { code: 1006 }),
            ),
            (
                "1015 never sent",
                Some((1015, "")),
                Err(Error::InvalidCloseCode { code: 1015 }),
            ),
        ];
        for (name, close, expect) in cases {
            let mut out = [0u8; WS_CONTROL_FRAME_MAX_BYTES];
            let got = emit_close(&mut out, close, key);
            assert_eq!(show(&got), show(&expect), "{name}");
            if let Ok(n) = got {
                // Unmask what we wrote and read it back as the server would.
                assert_eq!(out[0], 0x88, "{name}");
                assert_eq!(usize::from(out[1] & 0x7F), n - 6, "{name}");
                assert_eq!(out[2..6], key);
                let mut body = out[6..n].to_vec();
                apply_mask(&mut body, key, 0);
                let parsed = parse_close(&body).expect("own close parses");
                assert_eq!(parsed.code, close.map(|c| c.0), "{name}");
                assert_eq!(parsed.reason, close.map_or("", |c| c.1), "{name}");
            }
        }
    }

    #[test]
    fn emit_ping_pong_sizes() {
        let key = [0xA5; 4];
        for len in [0usize, 1, 125, 126, 200] {
            let payload = vec![0x5A; len];
            for (op, emit_fn) in [
                (
                    Opcode::Ping,
                    emit_ping as fn(&mut [u8; WS_CONTROL_FRAME_MAX_BYTES], &[u8], [u8; 4]) -> _,
                ),
                (Opcode::Pong, emit_pong),
            ] {
                let mut out = [0u8; WS_CONTROL_FRAME_MAX_BYTES];
                match emit_fn(&mut out, &payload, key) {
                    Ok(n) => {
                        assert!(len <= 125);
                        assert_eq!(n, 6 + len);
                        assert_eq!(out[0], 0x80 | op.bits());
                        let mut body = out[6..n].to_vec();
                        apply_mask(&mut body, key, 0);
                        assert_eq!(body, payload);
                    }
                    Err(e) => {
                        assert!(len > 125);
                        assert!(
                            matches!(e, Error::ControlTooLarge { len: l, max: 125 } if l == len as u64)
                        );
                    }
                }
            }
        }
    }

    /// Arbitrary two- and three-byte inputs give a clean answer (no panic) for every byte value.
    #[test]
    fn arbitrary_short_inputs_do_not_panic() {
        for b0 in 0..=255u8 {
            for b1 in 0..=255u8 {
                let _ = try_parse_header(&[b0, b1], 100);
                let _ = try_parse_header(&[b0, b1, 0xFF], 100);
                let _ = parse_close(&[b0, b1, b0]);
            }
        }
    }
}
