//! WebSocket wire format, client side (RFC 6455). Read RFC 6455 §4 (handshake) and §5 (framing) first.
//!
//! Owns the protocol and nothing above it: no DockMon, no Docker. The codecs are pure functions over
//! borrowed bytes (no socket, no clock, no allocation), so the one file that touches the socket
//! ([`conn`]) stays a thin loop over them.
//!
//! - [`handshake`]: the client upgrade request written into a caller buffer, and the check of the
//!   server's answer (status 101, `Upgrade`, `Connection`, `Sec-WebSocket-Accept`; RFC 6455 §4.1).
//! - [`frame`]: frame headers parsed from server bytes with every §5.2 rule a client must enforce, frame
//!   headers emitted for the client (always masked, §5.3), masking, and close/ping/pong frames (§5.5).
//! - [`message`]: a reassembler that turns (header, payload) pairs into whole messages and control
//!   events (§5.4 fragmentation, §8.1 UTF-8).
//! - [`conn`]: the connection, the layer's only I/O: handshake, whole messages up to the cap, ping and
//!   pong, close, with its buffers allocated once.
//! - `base64`, `sha1`: the two encodings the handshake needs (crate-private; also used by the web
//!   shell, health-check and proxy Basic auth (base64) and compose's config hash (sha1)).
//! - `conformance` (tests only): our RFC 6455 client case list, diffed against a committed results file.
//!
//! Invariants: a parser answers complete, partial (`Ok(None)`: give it more bytes) or invalid (`Err`),
//! and the answer for a given byte stream does not depend on how the stream was split into reads.
//! Lengths announced by the peer are compared with the caller's cap before any payload is read.
//!
//! Policy when full: nothing here grows. A frame over the caller's frame cap, a message over the
//! reassembly buffer, a response head over [`WS_HANDSHAKE_HEAD_MAX_BYTES`] or with more than
//! [`WS_HANDSHAKE_HEADER_MAX_COUNT`] headers, or output that does not fit the caller's buffer is refused
//! with an error carrying the value and the limit. Errors met while reading tell the caller which close
//! code to send when it fails the connection ([`Error::close_code`], RFC 6455 §7.1.7).
//!
//! Capacities (`WS_*` below) stay here rather than in `limits`: most are RFC 6455 facts (§5.2 header,
//! §5.5 control payload), and the rest size this layer's own buffers, beside the rules they serve.
pub mod conn;
pub mod frame;
pub mod handshake;
pub mod message;

pub(crate) mod base64;
pub(crate) mod sha1;

#[cfg(test)]
mod conformance;

use std::fmt;

// ---- Capacities (beside the rules they serve; the module doc says why not in `crate::limits`) -------

/// Longest frame header: 2 fixed bytes, 8 bytes of 64-bit length, 4 bytes of masking key (RFC 6455 §5.2).
pub const WS_FRAME_HEADER_MAX_BYTES: usize = 14;
/// Longest control frame payload (RFC 6455 §5.5: "125 bytes or less").
pub const WS_CONTROL_PAYLOAD_MAX_BYTES: usize = 125;
/// A whole client control frame: a 2-byte header (length ≤ 125 fits the 7-bit field), a 4-byte masking
/// key (§5.3) and the largest control payload. The buffer `frame::emit_close`/`emit_ping`/`emit_pong`
/// write into.
pub const WS_CONTROL_FRAME_MAX_BYTES: usize = 2 + 4 + WS_CONTROL_PAYLOAD_MAX_BYTES;
/// Longest close reason: the control payload minus the 2-byte status code (RFC 6455 §5.5.1).
pub const WS_CLOSE_REASON_MAX_BYTES: usize = WS_CONTROL_PAYLOAD_MAX_BYTES - 2;
/// Largest message the agent accepts from DockMon, and so the size of the reassembly buffer and the
/// frame payload cap (a message may arrive as one frame). The largest backend → agent message is a
/// `deploy_compose` command carrying a compose file and its env files (DockMon spec §3.8.4); DockMon's
/// own compose reader refuses files over 1 MB (§3.8.5), and JSON escaping can nearly double that. Every
/// other command is a few hundred bytes. Uvicorn would allow 16 MiB; we size for a Pi Zero 2 W.
pub const WS_MESSAGE_MAX_BYTES: usize = 2 * 1024 * 1024;
/// Largest frame payload accepted: one frame may carry a whole message.
pub const WS_FRAME_PAYLOAD_MAX_BYTES: usize = WS_MESSAGE_MAX_BYTES;
/// Largest upgrade response head. A DockMon 101 through nginx is about 250 bytes; 8 KiB is the common
/// server default (nginx `large_client_header_buffers`) and leaves room for proxies that add headers.
pub const WS_HANDSHAKE_HEAD_MAX_BYTES: usize = 8 * 1024;
/// Header slots handed to httparse for the upgrade response (a stack array). A 101 from uvicorn behind
/// nginx carries about 6 headers; reverse proxies and CDNs add a dozen at most.
pub const WS_HANDSHAKE_HEADER_MAX_COUNT: usize = 32;
/// Buffer for the upgrade request: about 150 fixed bytes, a path prefix and host from `DOCKMON_URL`
/// and, for the stats-ingest socket, an `Authorization: Bearer` header with a token of at most 255
/// bytes (DockMon spec §2.1, §2.4 rule 6).
pub const WS_HANDSHAKE_REQUEST_MAX_BYTES: usize = 2 * 1024;
/// Random bytes behind `Sec-WebSocket-Key` (RFC 6455 §4.1: "a randomly selected 16-byte value").
pub const WS_KEY_NONCE_BYTES: usize = 16;

/// Everything that can go wrong on the WebSocket wire. The connection adds which socket it was.
///
/// Errors met while reading server bytes map to the close code a client sends when it fails the
/// connection ([`Error::close_code`]). No variant carries peer bytes beyond numbers, and none carries
/// header values the caller passed in (an `Authorization` value must not reach a log).
#[derive(Debug)]
pub enum Error {
    /// A server frame with the mask bit set (RFC 6455 §5.1: the client must close the connection).
    MaskedFrame,
    /// RSV1, RSV2 or RSV3 set although no extension was negotiated (§5.2).
    ReservedBits {
        /// The three RSV bits, RSV1 as 4, RSV2 as 2, RSV3 as 1.
        bits: u8,
    },
    /// An opcode RFC 6455 reserves for future use (§5.2: 0x3–0x7 and 0xB–0xF).
    UnknownOpcode {
        /// The 4-bit opcode.
        opcode: u8,
    },
    /// A control frame without FIN (§5.5: control frames must not be fragmented).
    FragmentedControl {
        /// The 4-bit opcode.
        opcode: u8,
    },
    /// A control frame payload over 125 bytes (§5.5).
    ControlTooLarge {
        /// Announced or requested payload length.
        len: u64,
        /// The limit, [`WS_CONTROL_PAYLOAD_MAX_BYTES`].
        max: usize,
    },
    /// A 64-bit payload length with its most significant bit set (§5.2).
    LengthOverflow {
        /// The announced length.
        len: u64,
    },
    /// A frame payload longer than the caller's cap; found before any payload byte is read.
    FrameTooLarge {
        /// The announced length.
        len: u64,
        /// The caller's cap.
        max: usize,
    },
    /// A continuation frame with no fragmented message in progress (§5.4).
    UnexpectedContinuation,
    /// A text or binary frame while a fragmented message is still open (§5.4).
    UnfinishedMessage {
        /// The opcode of the offending frame.
        opcode: u8,
    },
    /// A message longer than the reassembly buffer.
    MessageTooLarge {
        /// The length the message would reach with this frame.
        len: u64,
        /// The buffer size.
        max: usize,
    },
    /// Text that is not UTF-8 (§5.6, §8.1): a text message or a close reason.
    InvalidUtf8 {
        /// "text message" or "close reason".
        what: &'static str,
        /// Offset of the first byte that cannot start or continue a valid sequence.
        at: usize,
    },
    /// A close payload of exactly one byte (§5.5.1: a body starts with a 2-byte status code).
    CloseTooShort,
    /// A close status code that must not appear in a close frame (§7.4.1, §7.4.2).
    InvalidCloseCode {
        /// The code.
        code: u16,
    },
    /// The caller's output buffer cannot hold what was to be written.
    BufferTooSmall {
        /// Bytes needed.
        need: usize,
        /// Bytes available.
        have: usize,
    },
    /// The upgrade request cannot be written: the value named would break the request head.
    BadRequest(&'static str),
    /// The upgrade response head is larger than [`WS_HANDSHAKE_HEAD_MAX_BYTES`].
    HeadTooLarge {
        /// Bytes of head buffered (or the whole head, when complete).
        len: usize,
        /// The cap.
        max: usize,
    },
    /// The upgrade response has more headers than [`WS_HANDSHAKE_HEADER_MAX_COUNT`].
    TooManyHeaders {
        /// The cap.
        max: usize,
    },
    /// The upgrade response head is not HTTP/1.1.
    MalformedResponse(&'static str),
    /// The server answered the upgrade with another status than 101 (DockMon: 403, 404 on a wrong path).
    Status {
        /// The HTTP status code.
        status: u16,
    },
    /// A 101 answer that breaks RFC 6455 §4.1 (missing or wrong `Upgrade`, `Connection`, an extension).
    BadUpgrade(&'static str),
    /// `Sec-WebSocket-Accept` is not base64(SHA-1(key + GUID)) of the key we sent (§4.1, §4.2.2).
    AcceptMismatch,
}

impl Error {
    /// The status code a client sends in its close frame when it fails the connection because of this
    /// error (RFC 6455 §7.1.7, §7.4.1): 1002 for a protocol violation, 1007 for bad UTF-8, 1009 for a
    /// frame or message over the cap. `None` for errors with no open WebSocket to close (handshake,
    /// emission).
    pub fn close_code(&self) -> Option<u16> {
        match self {
            Error::MaskedFrame
            | Error::ReservedBits { .. }
            | Error::UnknownOpcode { .. }
            | Error::FragmentedControl { .. }
            | Error::ControlTooLarge { .. }
            | Error::LengthOverflow { .. }
            | Error::UnexpectedContinuation
            | Error::UnfinishedMessage { .. }
            | Error::CloseTooShort
            | Error::InvalidCloseCode { .. } => Some(1002),
            Error::InvalidUtf8 { .. } => Some(1007),
            Error::FrameTooLarge { .. } | Error::MessageTooLarge { .. } => Some(1009),
            Error::BufferTooSmall { .. }
            | Error::BadRequest(_)
            | Error::HeadTooLarge { .. }
            | Error::TooManyHeaders { .. }
            | Error::MalformedResponse(_)
            | Error::Status { .. }
            | Error::BadUpgrade(_)
            | Error::AcceptMismatch => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::MaskedFrame => f.write_str("server sent a masked frame (rfc 6455 §5.1)"),
            Error::ReservedBits { bits } => {
                write!(f, "frame has reserved bits {bits:#05b} set without an extension")
            }
            Error::UnknownOpcode { opcode } => write!(f, "frame has reserved opcode {opcode:#x}"),
            Error::FragmentedControl { opcode } => {
                write!(f, "control frame with opcode {opcode:#x} is fragmented (fin not set)")
            }
            Error::ControlTooLarge { len, max } => {
                write!(f, "control frame payload of {len} bytes exceeds {max} bytes")
            }
            Error::LengthOverflow { len } => {
                write!(f, "frame length {len:#x} has the most significant bit set")
            }
            Error::FrameTooLarge { len, max } => {
                write!(f, "frame payload of {len} bytes exceeds the cap of {max} bytes")
            }
            Error::UnexpectedContinuation => {
                f.write_str("continuation frame without a fragmented message in progress")
            }
            Error::UnfinishedMessage { opcode } => write!(
                f,
                "data frame with opcode {opcode:#x} while a fragmented message is unfinished"
            ),
            Error::MessageTooLarge { len, max } => {
                write!(f, "message of {len} bytes exceeds the cap of {max} bytes")
            }
            Error::InvalidUtf8 { what, at } => write!(f, "{what} is not utf-8 at byte {at}"),
            Error::CloseTooShort => f.write_str("close frame payload of 1 byte has no status code"),
            Error::InvalidCloseCode { code } => write!(f, "close status code {code} is not allowed"),
            Error::BufferTooSmall { need, have } => {
                write!(f, "output needs {need} bytes but the buffer holds {have}")
            }
            Error::BadRequest(what) => write!(f, "cannot write upgrade request: {what}"),
            Error::HeadTooLarge { len, max } => write!(
                f,
                "upgrade response head exceeds {max} bytes (WS_HANDSHAKE_HEAD_MAX_BYTES) with {len} bytes"
            ),
            Error::TooManyHeaders { max } => write!(
                f,
                "upgrade response has more than {max} headers (WS_HANDSHAKE_HEADER_MAX_COUNT)"
            ),
            Error::MalformedResponse(what) => write!(f, "malformed upgrade response: {what}"),
            Error::Status { status } => {
                write!(f, "server answered the upgrade with http status {status} instead of 101")
            }
            Error::BadUpgrade(what) => write!(f, "server refused the websocket upgrade: {what}"),
            Error::AcceptMismatch => {
                f.write_str("sec-websocket-accept does not match the key sent (rfc 6455 §4.1)")
            }
        }
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_one_lowercase_line_with_values() {
        let cases: &[(Error, &str, Option<u16>)] = &[
            (
                Error::MaskedFrame,
                "server sent a masked frame (rfc 6455 §5.1)",
                Some(1002),
            ),
            (
                Error::ReservedBits { bits: 4 },
                "frame has reserved bits 0b100 set without an extension",
                Some(1002),
            ),
            (
                Error::UnknownOpcode { opcode: 0xb },
                "frame has reserved opcode 0xb",
                Some(1002),
            ),
            (
                Error::ControlTooLarge { len: 126, max: 125 },
                "control frame payload of 126 bytes exceeds 125 bytes",
                Some(1002),
            ),
            (
                Error::FrameTooLarge {
                    len: 70000,
                    max: 65536,
                },
                "frame payload of 70000 bytes exceeds the cap of 65536 bytes",
                Some(1009),
            ),
            (
                Error::MessageTooLarge { len: 9, max: 8 },
                "message of 9 bytes exceeds the cap of 8 bytes",
                Some(1009),
            ),
            (
                Error::InvalidUtf8 {
                    what: "text message",
                    at: 3,
                },
                "text message is not utf-8 at byte 3",
                Some(1007),
            ),
            (
                Error::InvalidCloseCode { code: 1005 },
                "close status code 1005 is not allowed",
                Some(1002),
            ),
            (
                Error::Status { status: 404 },
                "server answered the upgrade with http status 404 instead of 101",
                None,
            ),
            (
                Error::BufferTooSmall {
                    need: 200,
                    have: 100,
                },
                "output needs 200 bytes but the buffer holds 100",
                None,
            ),
        ];
        for (error, text, code) in cases {
            assert_eq!(error.to_string(), *text);
            assert_eq!(error.close_code(), *code, "{error}");
            assert!(!text.contains('\n'));
        }
    }
}
