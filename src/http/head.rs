//! Response heads (RFC 9112 §4-§6), parsed with httparse from a caller buffer. No I/O, no allocation.
//!
//! Three answers, kept apart: a complete head (with its length, so the body starts right after it),
//! `Partial` (needs more bytes; the caller reads on, up to `HEAD_MAX_BYTES`), or an error.
use super::Error;
use crate::limits::{
    HEADER_CAPTURE_MAX_COUNT, HEADER_MAX_COUNT, HEADER_VALUE_MAX_BYTES, HEAD_MAX_BYTES,
};

/// How the body that follows a head is delimited (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body: a HEAD request, 1xx, 204 or 304.
    Empty,
    /// Exactly this many bytes.
    Length(u64),
    /// The chunked transfer coding.
    Chunked,
    /// Everything until the server closes the connection.
    UntilClose,
}

/// A captured header value.
pub type Value = heapless::String<HEADER_VALUE_MAX_BYTES>;

/// A parsed response head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    /// The status code.
    pub status: u16,
    /// How the body is delimited.
    pub framing: Framing,
    /// Whether the connection may carry another request after this response's body.
    pub keep_alive: bool,
    /// The values of the headers named in the capture list, in its order (the first occurrence).
    pub captured: [Option<Value>; HEADER_CAPTURE_MAX_COUNT],
}

/// The result of [`try_parse`]. `Complete` is large (the captured values live inline, so parsing
/// never allocates); it only ever sits on the stack for one call.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// More bytes are needed.
    Partial,
    /// A whole head, and how many bytes of the buffer it took.
    Complete(Head, usize),
}

/// Parses the response head at the start of `buf`. `head_request` says the request was `HEAD` (so there
/// is no body whatever the headers say). `capture` names up to `HEADER_CAPTURE_MAX_COUNT` headers
/// (case-insensitive) whose values are returned in [`Head::captured`].
///
/// Only the first `HEAD_MAX_BYTES` of `buf` are looked at: a head not complete within them is
/// [`Error::HeadTooLarge`], not `Partial`.
pub fn try_parse(buf: &[u8], head_request: bool, capture: &[&str]) -> Result<Parsed, Error> {
    debug_assert!(capture.len() <= HEADER_CAPTURE_MAX_COUNT);
    let window = &buf[..buf.len().min(HEAD_MAX_BYTES)];
    let mut slots = [httparse::EMPTY_HEADER; HEADER_MAX_COUNT];
    let mut response = httparse::Response::new(&mut slots);
    let len = match response.parse(window) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => {
            if window.len() >= HEAD_MAX_BYTES {
                return Err(Error::HeadTooLarge {
                    len: window.len(),
                    max: HEAD_MAX_BYTES,
                });
            }
            return Ok(Parsed::Partial);
        }
        Err(httparse::Error::TooManyHeaders) => {
            return Err(Error::TooManyHeaders {
                max: HEADER_MAX_COUNT,
            })
        }
        Err(httparse::Error::Status) => return Err(Error::Malformed("invalid status line")),
        Err(httparse::Error::Version) => return Err(Error::Malformed("not an HTTP/1.x response")),
        Err(_) => return Err(Error::Malformed("invalid header syntax")),
    };
    // httparse fills these on Complete.
    let status = response.code.unwrap_or(0);
    let http11 = response.version == Some(1);

    let mut content_length: Option<u64> = None;
    let mut transfer_encoding = false;
    let mut conn_close = false;
    let mut conn_keep_alive = false;
    let mut captured: [Option<Value>; HEADER_CAPTURE_MAX_COUNT] = Default::default();
    for h in response.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            let n = parse_length(h.value)?;
            if content_length.is_some_and(|prev| prev != n) {
                return Err(Error::Malformed("conflicting Content-Length headers"));
            }
            content_length = Some(n);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            transfer_encoding = true;
            // RFC 9112 §6.3: chunked must be the final coding; any coding before it we cannot decode,
            // and Docker never sends one.
            let mut codings = tokens(h.value);
            match (codings.next(), codings.next()) {
                (Some(c), None) if c.eq_ignore_ascii_case(b"chunked") => {}
                _ => {
                    return Err(Error::Malformed(
                        "unsupported transfer coding (only chunked)",
                    ))
                }
            }
        } else if h.name.eq_ignore_ascii_case("connection") {
            for t in tokens(h.value) {
                conn_close |= t.eq_ignore_ascii_case(b"close");
                conn_keep_alive |= t.eq_ignore_ascii_case(b"keep-alive");
            }
        }
        for (slot, name) in captured.iter_mut().zip(capture) {
            if slot.is_none() && h.name.eq_ignore_ascii_case(name) {
                let text = std::str::from_utf8(h.value)
                    .map_err(|_| Error::Malformed("header value is not UTF-8"))?;
                let mut v = Value::new();
                v.push_str(text.trim()).map_err(|_| {
                    Error::Malformed("header value longer than HEADER_VALUE_MAX_BYTES")
                })?;
                *slot = Some(v);
            }
        }
    }

    let mut keep_alive = if http11 {
        !conn_close
    } else {
        conn_keep_alive && !conn_close
    };
    let framing = if head_request || (100..200).contains(&status) || status == 204 || status == 304
    {
        Framing::Empty
    } else if transfer_encoding {
        // RFC 9112 §6.1: with both Transfer-Encoding and Content-Length, the former wins and the
        // connection must not be reused.
        if content_length.is_some() {
            keep_alive = false;
        }
        Framing::Chunked
    } else if let Some(n) = content_length {
        Framing::Length(n)
    } else {
        keep_alive = false;
        Framing::UntilClose
    };
    if status == 101 {
        keep_alive = false;
    }
    Ok(Parsed::Complete(
        Head {
            status,
            framing,
            keep_alive,
            captured,
        },
        len,
    ))
}

/// Comma-separated list elements, trimmed, empty ones skipped (RFC 9110 §5.6.1).
fn tokens(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(|t| t.trim_ascii())
        .filter(|t| !t.is_empty())
}

/// Content-Length: one or more digits, nothing else (RFC 9110 §8.6), no overflow.
fn parse_length(value: &[u8]) -> Result<u64, Error> {
    let digits = value.trim_ascii();
    if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
        return Err(Error::Malformed("invalid Content-Length"));
    }
    Ok(digits
        .iter()
        .fold(0u64, |n, d| n * 10 + u64::from(d - b'0')))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn complete(input: &[u8], capture: &[&str]) -> (Head, usize) {
        match try_parse(input, false, capture).unwrap() {
            Parsed::Complete(h, n) => (h, n),
            Parsed::Partial => panic!("partial"),
        }
    }

    const DOCKER_PING: &[u8] = b"HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\nCache-Control: no-cache, no-store, must-revalidate\r\nContent-Length: 2\r\nContent-Type: text/plain; charset=utf-8\r\nDocker-Experimental: false\r\nOstype: linux\r\nPragma: no-cache\r\nServer: Docker/20.10.24+dfsg1 (linux)\r\nDate: Sun, 29 Nov 2026 02:40:00 GMT\r\n\r\nOK";
    const DOCKER_CHUNKED: &[u8] = b"HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\nContent-Type: application/json\r\nDocker-Experimental: false\r\nOstype: linux\r\nServer: Docker/20.10.24+dfsg1 (linux)\r\nDate: Sun, 29 Nov 2026 02:40:00 GMT\r\nTransfer-Encoding: chunked\r\n\r\n";

    #[test]
    fn table() {
        // (input, expected framing, keep-alive)
        let cases: &[(&[u8], Framing, bool)] = &[
            (DOCKER_PING, Framing::Length(2), true),
            (DOCKER_CHUNKED, Framing::Chunked, true),
            (b"HTTP/1.1 204 No Content\r\n\r\n", Framing::Empty, true),
            (
                b"HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n",
                Framing::Empty,
                true,
            ),
            (b"HTTP/1.1 200 OK\r\n\r\n", Framing::UntilClose, false),
            (
                b"HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\n",
                Framing::Length(3),
                false,
            ),
            (
                b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 3\r\n\r\n",
                Framing::Length(3),
                true,
            ),
            (
                b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 3\r\n\r\n",
                Framing::Length(3),
                false,
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
                Framing::Chunked,
                false,
            ),
            (
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n",
                Framing::Empty,
                false,
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\ncontent-length: 5\r\n\r\n",
                Framing::Length(5),
                true,
            ),
        ];
        for (input, framing, keep_alive) in cases {
            let (head, len) = complete(input, &[]);
            assert_eq!(head.framing, *framing, "{}", String::from_utf8_lossy(input));
            assert_eq!(
                head.keep_alive,
                *keep_alive,
                "{}",
                String::from_utf8_lossy(input)
            );
            assert!(len <= input.len());
        }
    }

    #[test]
    fn captures_headers_case_insensitively() {
        let (head, len) = complete(DOCKER_PING, &["api-version", "SERVER", "x-missing"]);
        assert_eq!(head.status, 200);
        assert_eq!(head.captured[0].as_deref(), Some("1.41"));
        assert_eq!(
            head.captured[1].as_deref(),
            Some("Docker/20.10.24+dfsg1 (linux)")
        );
        assert_eq!(head.captured[2], None);
        assert_eq!(&DOCKER_PING[len..], b"OK");
    }

    #[test]
    fn errors() {
        let cases: &[&[u8]] = &[
            b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
            b"SSH-2.0-OpenSSH_9.2\r\n\r\n",
            b"HTTP/1.1 2000 OK\r\n\r\n",
            b"HTTP/2 200 OK\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nBad Header\r\n\r\n",
        ];
        for input in cases {
            assert!(
                try_parse(input, false, &[]).is_err(),
                "{}",
                String::from_utf8_lossy(input)
            );
        }
        let long = format!("HTTP/1.1 200 OK\r\nX: {}\r\n\r\n", "a".repeat(200));
        assert!(try_parse(long.as_bytes(), false, &["x"]).is_err());
    }

    #[test]
    fn too_many_headers_names_the_cap() {
        let mut s = String::from("HTTP/1.1 200 OK\r\n");
        for i in 0..=HEADER_MAX_COUNT {
            s.push_str(&format!("X-{i}: y\r\n"));
        }
        s.push_str("\r\n");
        let err = try_parse(s.as_bytes(), false, &[]).unwrap_err();
        assert!(err.to_string().contains("HEADER_MAX_COUNT"), "{err}");
    }

    #[test]
    fn a_head_without_end_is_too_large_at_the_cap() {
        let s = format!(
            "HTTP/1.1 200 OK\r\nX-Filler: {}\r\n",
            "y".repeat(HEAD_MAX_BYTES)
        );
        let err = try_parse(s.as_bytes(), false, &[]).unwrap_err();
        assert!(
            matches!(
                err,
                Error::HeadTooLarge {
                    max: HEAD_MAX_BYTES,
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("HEAD_MAX_BYTES"));
    }

    #[test]
    fn head_request_has_no_body() {
        let head =
            match try_parse(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n", true, &[]).unwrap() {
                Parsed::Complete(h, _) => h,
                Parsed::Partial => panic!(),
            };
        assert_eq!(head.framing, Framing::Empty);
    }

    /// Every strict prefix is Partial (or, for a prefix that already breaks the grammar, an error),
    /// and the whole input gives the same head whatever was seen before.
    #[test]
    fn every_truncation_is_partial() {
        for input in [DOCKER_PING, DOCKER_CHUNKED] {
            let (whole, len) = complete(input, &["api-version"]);
            for cut in 0..len {
                assert_eq!(
                    try_parse(&input[..cut], false, &["api-version"]).unwrap(),
                    Parsed::Partial,
                    "cut at {cut}"
                );
            }
            for cut in len..=input.len() {
                assert_eq!(
                    try_parse(&input[..cut], false, &["api-version"]).unwrap(),
                    Parsed::Complete(whole.clone(), len)
                );
            }
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let mut x: u32 = 12345;
        let mut buf = Vec::new();
        for _ in 0..2000 {
            buf.clear();
            buf.extend_from_slice(b"HTTP/1.1 ");
            let n = (x % 300) as usize;
            for _ in 0..n {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                const ALPHABET: &[u8] =
                    b"0123456789 :\r\nabcTransfer-EncodingContent-Lengthchunked,";
                buf.push(ALPHABET[x as usize % ALPHABET.len()]);
            }
            let _ = try_parse(&buf, false, &["a"]);
        }
    }
}
