//! The opening handshake, client side (RFC 6455 §4.1, §4.2.2). Read RFC 6455 §4.1 first.
//!
//! [`emit_request`] writes the upgrade request into a caller buffer; [`try_parse_response`] checks the
//! server's answer with httparse and says where the head ends, because the bytes after it already
//! belong to the WebSocket stream (a server may send its first frame in the same segment as its 101).
//! [`Key`] holds the `Sec-WebSocket-Key` and the `Sec-WebSocket-Accept` it implies.
//!
//! What this module does not do: draw the 16 random bytes (the connection does, §4.1 asks for a fresh
//! nonce per connection), follow redirects, or negotiate subprotocols or extensions: we offer none, so a
//! server that selects one fails the handshake (§4.1 points 5 and 6).
//!
//! Policy when full: the request is refused with [`Error::BufferTooSmall`] if it does not fit; a
//! response head over [`WS_HANDSHAKE_HEAD_MAX_BYTES`] or with more than
//! [`WS_HANDSHAKE_HEADER_MAX_COUNT`] headers is an error naming the cap.
//!
//! Secrets: header values passed in `extra` (an `Authorization: Bearer` token) are written to the
//! request only; no error carries them.
use super::sha1::{Sha1, DIGEST_BYTES};
use super::{
    base64, Error, WS_HANDSHAKE_HEADER_MAX_COUNT, WS_HANDSHAKE_HEAD_MAX_BYTES, WS_KEY_NONCE_BYTES,
};

/// The GUID every server appends to the key before hashing (RFC 6455 §1.3, §4.2.2).
const ACCEPT_GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
/// Characters of `Sec-WebSocket-Key`: base64 of the 16-byte nonce.
const KEY_TEXT_BYTES: usize = base64::encoded_len(WS_KEY_NONCE_BYTES);
/// Characters of `Sec-WebSocket-Accept`: base64 of a 20-byte SHA-1 digest.
const ACCEPT_TEXT_BYTES: usize = base64::encoded_len(DIGEST_BYTES);
/// Headers the handshake writes itself, or that would negotiate what this client does not support.
/// `extra` may not repeat them (compared case-insensitively; `sec-websocket-` is a prefix).
const RESERVED_HEADER_NAMES: [&str; 4] = ["host", "upgrade", "connection", "sec-websocket-"];

/// A `Sec-WebSocket-Key` and the `Sec-WebSocket-Accept` a server must answer with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    key: [u8; KEY_TEXT_BYTES],
    accept: [u8; ACCEPT_TEXT_BYTES],
}

impl Key {
    /// The key for a 16-byte nonce; draw it fresh and at random for each connection (§4.1).
    pub fn new(nonce: &[u8; WS_KEY_NONCE_BYTES]) -> Key {
        let mut key = [0u8; KEY_TEXT_BYTES];
        // KEY_TEXT_BYTES is encoded_len(16), so encode always fits.
        let _ = base64::encode(nonce, &mut key);
        Key {
            key,
            accept: accept_for(&key),
        }
    }

    /// The `Sec-WebSocket-Key` value (24 base64 characters).
    pub fn as_str(&self) -> &str {
        // base64 output is ASCII, so this cannot fail; "" would only hide a broken encoder.
        std::str::from_utf8(&self.key).unwrap_or_default()
    }

    /// The `Sec-WebSocket-Accept` value the server must send (28 base64 characters).
    pub fn accept(&self) -> &str {
        // As above: ASCII by construction.
        std::str::from_utf8(&self.accept).unwrap_or_default()
    }
}

/// base64(SHA-1(key + GUID)) (§4.2.2 step 5.4).
fn accept_for(key: &[u8]) -> [u8; ACCEPT_TEXT_BYTES] {
    let mut sha = Sha1::new();
    sha.update(key);
    sha.update(ACCEPT_GUID);
    let mut accept = [0u8; ACCEPT_TEXT_BYTES];
    // ACCEPT_TEXT_BYTES is encoded_len(20), so encode always fits.
    let _ = base64::encode(&sha.finish(), &mut accept);
    accept
}

/// Writes the upgrade request (§4.1) into `out` and returns its length:
///
/// ```text
/// GET <path> HTTP/1.1
/// Host: <host>
/// Upgrade: websocket
/// Connection: Upgrade
/// Sec-WebSocket-Key: <key>
/// Sec-WebSocket-Version: 13
/// <extra headers, in order>
/// ```
///
/// `host` is the `Host` value: the host, in brackets for an IPv6 literal, with `:port` when the port is
/// not the scheme's default (RFC 9110 §7.2). `path` starts with `/` and may carry a query. `extra` adds
/// headers such as `Authorization` or `User-Agent`; none may repeat one the handshake writes or start
/// with `Sec-WebSocket-`. Refused with [`Error::BadRequest`] (naming the field, never its value): an
/// empty host, a path without its leading `/`, a space, control or non-ASCII byte in the host or path,
/// a header name that is not an RFC 9110 token, a control byte in a header value. Refused with
/// [`Error::BufferTooSmall`] when `out` is too short; its contents are then unspecified.
pub fn emit_request(
    out: &mut [u8],
    host: &str,
    path: &str,
    key: &Key,
    extra: &[(&str, &str)],
) -> Result<usize, Error> {
    if host.is_empty() || !host.bytes().all(is_visible) {
        return Err(Error::BadRequest(
            "host is empty or has a space, control or non-ascii byte",
        ));
    }
    if !path.starts_with('/') || !path.bytes().all(is_visible) || path.contains('#') {
        return Err(Error::BadRequest(
            "path must start with / and have no space, control, non-ascii byte or fragment",
        ));
    }
    for (name, value) in extra {
        if name.is_empty() || !name.bytes().all(is_token) {
            return Err(Error::BadRequest("extra header name is not an http token"));
        }
        let lower = |reserved: &&str| {
            name.len() >= reserved.len()
                && name.as_bytes()[..reserved.len()].eq_ignore_ascii_case(reserved.as_bytes())
        };
        if RESERVED_HEADER_NAMES.iter().any(|r| {
            if r.ends_with('-') {
                lower(r)
            } else {
                name.eq_ignore_ascii_case(r)
            }
        }) {
            return Err(Error::BadRequest(
                "extra header repeats one the handshake sets",
            ));
        }
        if !value
            .bytes()
            .all(|b| b == b'\t' || is_visible(b) || b == b' ')
        {
            return Err(Error::BadRequest(
                "extra header value has a control or non-ascii byte",
            ));
        }
    }
    let mut w = Writer { out, at: 0 };
    w.put(b"GET ");
    w.put(path.as_bytes());
    w.put(b" HTTP/1.1\r\nHost: ");
    w.put(host.as_bytes());
    w.put(b"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ");
    w.put(&key.key);
    w.put(b"\r\nSec-WebSocket-Version: 13\r\n");
    for (name, value) in extra {
        w.put(name.as_bytes());
        w.put(b": ");
        w.put(value.as_bytes());
        w.put(b"\r\n");
    }
    w.put(b"\r\n");
    w.finish()
}

/// Writes into a slice, counting what did not fit so the error can say how much was needed.
struct Writer<'a> {
    out: &'a mut [u8],
    at: usize,
}

impl Writer<'_> {
    fn put(&mut self, bytes: &[u8]) {
        let end = self.at + bytes.len();
        if let Some(dst) = self.out.get_mut(self.at..end) {
            dst.copy_from_slice(bytes);
        }
        self.at = end;
    }

    fn finish(self) -> Result<usize, Error> {
        if self.at > self.out.len() {
            return Err(Error::BufferTooSmall {
                need: self.at,
                have: self.out.len(),
            });
        }
        Ok(self.at)
    }
}

/// Visible ASCII, `!` to `~` (RFC 5234 VCHAR).
fn is_visible(b: u8) -> bool {
    (0x21..=0x7E).contains(&b)
}

/// RFC 9110 §5.6.2 `tchar`.
fn is_token(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Checks the server's answer to the upgrade request sent with `key`, from the start of `buf`.
///
/// - `Ok(Some(n))`: the head is the first `n` bytes and the upgrade succeeded; `buf[n..]` is the start
///   of the WebSocket stream.
/// - `Ok(None)`: partial; read more and call again with the longer buffer.
/// - `Err`: invalid. [`Error::Status`] carries the code of any answer but 101 (DockMon answers 403 or
///   404 to a wrong path); [`Error::BadUpgrade`] and [`Error::AcceptMismatch`] a 101 that breaks §4.1;
///   [`Error::HeadTooLarge`] once `buf` holds [`WS_HANDSHAKE_HEAD_MAX_BYTES`] bytes without the end of
///   the head, or when the complete head is longer than that.
///
/// Checks, in order (§4.1 "the client MUST validate the server's response"): HTTP/1.1, status 101, an
/// `Upgrade` header equal to `websocket`, a `Connection` header listing `upgrade`, exactly one
/// `Sec-WebSocket-Accept` equal to [`Key::accept`], and no `Sec-WebSocket-Extensions` or
/// `Sec-WebSocket-Protocol` (we offered none). Header names and the `Upgrade`/`Connection` values are
/// compared case-insensitively; the accept value exactly.
pub fn try_parse_response(buf: &[u8], key: &Key) -> Result<Option<usize>, Error> {
    let mut headers = [httparse::EMPTY_HEADER; WS_HANDSHAKE_HEADER_MAX_COUNT];
    let mut response = httparse::Response::new(&mut headers);
    let head_len = match response.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() >= WS_HANDSHAKE_HEAD_MAX_BYTES => {
            return Err(Error::HeadTooLarge {
                len: buf.len(),
                max: WS_HANDSHAKE_HEAD_MAX_BYTES,
            });
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(Error::TooManyHeaders {
                max: WS_HANDSHAKE_HEADER_MAX_COUNT,
            })
        }
        Err(e) => return Err(Error::MalformedResponse(httparse_reason(e))),
    };
    if head_len > WS_HANDSHAKE_HEAD_MAX_BYTES {
        return Err(Error::HeadTooLarge {
            len: head_len,
            max: WS_HANDSHAKE_HEAD_MAX_BYTES,
        });
    }
    // §4.1: "the server's response ... HTTP/1.1 or higher". httparse knows 1.0 and 1.1 only.
    if response.version != Some(1) {
        return Err(Error::MalformedResponse("not an http/1.1 response"));
    }
    // A complete head always has a code; 0 would be refused below like any other non-101.
    let status = response.code.unwrap_or(0);
    if status != 101 {
        return Err(Error::Status { status });
    }
    check_upgrade_headers(response.headers, key)?;
    Ok(Some(head_len))
}

fn check_upgrade_headers(headers: &[httparse::Header<'_>], key: &Key) -> Result<(), Error> {
    let named = |name: &'static str| {
        headers
            .iter()
            .filter(move |h| h.name.eq_ignore_ascii_case(name))
    };
    // §4.1 point 2.
    if !named("upgrade").any(|h| trim(h.value).eq_ignore_ascii_case(b"websocket")) {
        return Err(Error::BadUpgrade("no upgrade: websocket header"));
    }
    // §4.1 point 3; `Connection` is a comma-separated token list (RFC 9110 §7.6.1).
    let lists_upgrade = |h: &httparse::Header<'_>| {
        h.value
            .split(|&b| b == b',')
            .any(|t| trim(t).eq_ignore_ascii_case(b"upgrade"))
    };
    if !named("connection").any(lists_upgrade) {
        return Err(Error::BadUpgrade("connection header does not list upgrade"));
    }
    // §4.1 point 4.
    let mut accepts = named("sec-websocket-accept");
    let accept = match (accepts.next(), accepts.next()) {
        (Some(one), None) => one,
        (None, _) => return Err(Error::BadUpgrade("no sec-websocket-accept header")),
        (Some(_), Some(_)) => {
            return Err(Error::BadUpgrade(
                "more than one sec-websocket-accept header",
            ))
        }
    };
    if trim(accept.value) != key.accept {
        return Err(Error::AcceptMismatch);
    }
    // §4.1 points 5 and 6: we asked for no extension and no subprotocol.
    if named("sec-websocket-extensions").any(|h| !trim(h.value).is_empty()) {
        return Err(Error::BadUpgrade(
            "server selected an extension the client did not offer",
        ));
    }
    if named("sec-websocket-protocol").any(|h| !trim(h.value).is_empty()) {
        return Err(Error::BadUpgrade(
            "server selected a subprotocol the client did not offer",
        ));
    }
    Ok(())
}

/// Strips optional whitespace (space and tab, RFC 9110 §5.6.3) from both ends.
fn trim(mut value: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = value {
        value = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = value {
        value = rest;
    }
    value
}

fn httparse_reason(e: httparse::Error) -> &'static str {
    match e {
        httparse::Error::HeaderName => "invalid header name",
        httparse::Error::HeaderValue => "invalid header value",
        httparse::Error::NewLine => "invalid line ending",
        httparse::Error::Status => "invalid status line",
        httparse::Error::Token => "invalid token",
        httparse::Error::TooManyHeaders => "too many headers",
        httparse::Error::Version => "invalid http version",
    }
}

#[cfg(test)]
mod tests {
    use super::super::WS_HANDSHAKE_REQUEST_MAX_BYTES;
    use super::*;

    /// RFC 6455 §1.3: the nonce "the sample nonce", its key and the accept the server computes.
    const SAMPLE_NONCE: &[u8; 16] = b"the sample nonce";
    const SAMPLE_KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
    const SAMPLE_ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

    fn show<T: std::fmt::Debug>(value: &T) -> String {
        format!("{value:?}")
    }

    #[test]
    fn rfc6455_section_1_3_key_and_accept() {
        let key = Key::new(SAMPLE_NONCE);
        assert_eq!(key.as_str(), SAMPLE_KEY);
        assert_eq!(key.accept(), SAMPLE_ACCEPT);
        // Another nonce, checked against an independent computation (Python hashlib + base64).
        let key = Key::new(&[0u8; 16]);
        assert_eq!(key.as_str(), "AAAAAAAAAAAAAAAAAAAAAA==");
        assert_eq!(key.accept(), "ICX+Yqv66kxgM0FcWaLWlFLwTAI=");
    }

    #[test]
    fn request_bytes() {
        let key = Key::new(SAMPLE_NONCE);
        let mut out = [0u8; WS_HANDSHAKE_REQUEST_MAX_BYTES];
        let n = emit_request(
            &mut out,
            "dockmon.lan:8443",
            "/dockmon/api/agent/ws",
            &key,
            &[],
        )
        .expect("fits");
        assert_eq!(
            std::str::from_utf8(&out[..n]).expect("ascii"),
            "GET /dockmon/api/agent/ws HTTP/1.1\r\n\
             Host: dockmon.lan:8443\r\n\
             Upgrade: websocket\r\n\
             Connection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
             Sec-WebSocket-Version: 13\r\n\
             \r\n"
        );
        let extra = [
            ("Authorization", "Bearer c2c5e9b1-e4d7"),
            ("User-Agent", "dockmon-agent/0.1.0"),
        ];
        let n =
            emit_request(&mut out, "[::1]", "/api/stats/ws/ingest", &key, &extra).expect("fits");
        let text = std::str::from_utf8(&out[..n]).expect("ascii");
        assert!(text.starts_with("GET /api/stats/ws/ingest HTTP/1.1\r\nHost: [::1]\r\n"));
        assert!(text.ends_with(
            "Sec-WebSocket-Version: 13\r\nAuthorization: Bearer c2c5e9b1-e4d7\r\nUser-Agent: dockmon-agent/0.1.0\r\n\r\n"
        ));
        // The request parses as HTTP with httparse, as a server would read it.
        let mut headers = [httparse::EMPTY_HEADER; 16];
        let mut req = httparse::Request::new(&mut headers);
        assert_eq!(req.parse(&out[..n]), Ok(httparse::Status::Complete(n)));
        assert_eq!(req.method, Some("GET"));
        assert_eq!(req.headers.len(), 7);
    }

    #[test]
    fn request_refusals() {
        let key = Key::new(SAMPLE_NONCE);
        let secret = "Bearer s3cr3t\r\nX: y";
        /// (name, host, path, extra headers, expected error text)
        type Case<'a> = (&'a str, &'a str, &'a str, Vec<(&'a str, &'a str)>, &'a str);
        let cases: Vec<Case<'_>> = vec![
            ("empty host", "", "/", vec![], "host is empty"),
            ("space in host", "a b", "/", vec![], "host is empty"),
            ("crlf in host", "a\r\nb", "/", vec![], "host is empty"),
            ("relative path", "h", "api", vec![], "path must start"),
            ("space in path", "h", "/a b", vec![], "path must start"),
            ("fragment", "h", "/a#b", vec![], "path must start"),
            ("non-ascii path", "h", "/é", vec![], "path must start"),
            (
                "bad name",
                "h",
                "/",
                vec![("Bad Name", "v")],
                "not an http token",
            ),
            ("empty name", "h", "/", vec![("", "v")], "not an http token"),
            (
                "host repeated",
                "h",
                "/",
                vec![("HOST", "x")],
                "repeats one",
            ),
            (
                "connection repeated",
                "h",
                "/",
                vec![("connection", "close")],
                "repeats one",
            ),
            (
                "subprotocol asked",
                "h",
                "/",
                vec![("Sec-WebSocket-Protocol", "x")],
                "repeats one",
            ),
            (
                "extension asked",
                "h",
                "/",
                vec![("sec-websocket-extensions", "x")],
                "repeats one",
            ),
            (
                "crlf in value",
                "h",
                "/",
                vec![("Authorization", secret)],
                "control or non-ascii",
            ),
        ];
        for (name, host, path, extra, expect) in cases {
            let mut out = [0u8; WS_HANDSHAKE_REQUEST_MAX_BYTES];
            match emit_request(&mut out, host, path, &key, &extra) {
                Err(e) => {
                    let text = e.to_string();
                    assert!(text.contains(expect), "{name}: {text}");
                    assert!(
                        !text.contains("s3cr3t") && !format!("{e:?}").contains("s3cr3t"),
                        "{name}"
                    );
                }
                Ok(_) => panic!("{name}: accepted"),
            }
        }
        // Names that merely start like reserved ones are fine.
        let mut out = [0u8; WS_HANDSHAKE_REQUEST_MAX_BYTES];
        assert!(emit_request(
            &mut out,
            "h",
            "/",
            &key,
            &[("Hostname-Hint", "x"), ("Upgraded", "y")]
        )
        .is_ok());
    }

    #[test]
    fn request_buffer_too_small_names_the_need() {
        let key = Key::new(SAMPLE_NONCE);
        let mut big = [0u8; WS_HANDSHAKE_REQUEST_MAX_BYTES];
        let need = emit_request(&mut big, "h", "/api/agent/ws", &key, &[]).expect("fits");
        for have in [0, 1, need / 2, need - 1] {
            let mut small = vec![0u8; have];
            assert_eq!(
                show(&emit_request(&mut small, "h", "/api/agent/ws", &key, &[])),
                show(&Err::<usize, _>(Error::BufferTooSmall { need, have }))
            );
        }
        let mut exact = vec![0u8; need];
        assert_eq!(
            emit_request(&mut exact, "h", "/api/agent/ws", &key, &[]).ok(),
            Some(need)
        );
        assert_eq!(exact[..], big[..need]);
    }

    /// A 101 from uvicorn behind nginx, in the shape DockMon serves it.
    fn ok_head() -> String {
        format!(
            "HTTP/1.1 101 Switching Protocols\r\n\
             Server: nginx\r\n\
             Date: Sat, 29 Nov 2026 00:14:00 GMT\r\n\
             Connection: upgrade\r\n\
             Upgrade: websocket\r\n\
             Sec-WebSocket-Accept: {SAMPLE_ACCEPT}\r\n\r\n"
        )
    }

    type Expect = Result<Option<usize>, Error>;

    fn response_cases() -> Vec<(&'static str, Vec<u8>, Expect)> {
        let ok = ok_head();
        let with = |from: &str, to: &str| {
            assert!(ok.contains(from), "{from}");
            ok.replacen(from, to, 1).into_bytes()
        };
        let len = |v: &[u8]| Ok(Some(v.len()));
        let accepted = |name, v: Vec<u8>| {
            let n = v.len();
            (name, v, Ok(Some(n)))
        };
        let many_headers = {
            let mut s = String::from("HTTP/1.1 101 Switching Protocols\r\n");
            for i in 0..=WS_HANDSHAKE_HEADER_MAX_COUNT {
                s.push_str(&format!("X-{i}: v\r\n"));
            }
            s.push_str("\r\n");
            s.into_bytes()
        };
        let big_head = {
            let mut s = ok.trim_end_matches("\r\n").to_string();
            s.push_str(&format!(
                "\r\nX-Pad: {}\r\n\r\n",
                "p".repeat(WS_HANDSHAKE_HEAD_MAX_BYTES)
            ));
            s.into_bytes()
        };
        let big_len = big_head.len();
        let minimal = format!(
            "HTTP/1.1 101 Switching Protocols\r\nupgrade: WebSocket\r\nCONNECTION: Upgrade\r\nsec-websocket-accept: {SAMPLE_ACCEPT}\r\n\r\n"
        )
        .into_bytes();
        let rfc_example = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {SAMPLE_ACCEPT}\r\n\r\n"
        )
        .into_bytes();
        vec![
            ("nginx 101", ok.clone().into_bytes(), len(ok.as_bytes())),
            (
                "rfc 6455 §1.3 answer",
                rfc_example.clone(),
                len(&rfc_example),
            ),
            (
                "names and values in other cases",
                minimal.clone(),
                len(&minimal),
            ),
            accepted(
                "connection list",
                with("Connection: upgrade", "Connection: keep-alive, Upgrade"),
            ),
            accepted(
                "empty extensions header",
                with("Server: nginx", "Sec-WebSocket-Extensions:"),
            ),
            accepted(
                "padded accept",
                with(SAMPLE_ACCEPT, &format!(" {SAMPLE_ACCEPT}\t")),
            ),
            (
                "403",
                b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n".to_vec(),
                Err(Error::Status { status: 403 }),
            ),
            (
                "404",
                b"HTTP/1.1 404 Not Found\r\nContent-Length: 22\r\n\r\n".to_vec(),
                Err(Error::Status { status: 404 }),
            ),
            (
                "200",
                with("101 Switching Protocols", "200 OK"),
                Err(Error::Status { status: 200 }),
            ),
            (
                "http/1.0",
                with("HTTP/1.1 101", "HTTP/1.0 101"),
                Err(Error::MalformedResponse("not an http/1.1 response")),
            ),
            (
                "no upgrade",
                with("Upgrade: websocket\r\n", ""),
                Err(Error::BadUpgrade("no upgrade: websocket header")),
            ),
            (
                "wrong upgrade",
                with("Upgrade: websocket", "Upgrade: h2c"),
                Err(Error::BadUpgrade("no upgrade: websocket header")),
            ),
            (
                "no connection",
                with("Connection: upgrade\r\n", ""),
                Err(Error::BadUpgrade("connection header does not list upgrade")),
            ),
            (
                "connection keep-alive",
                with("Connection: upgrade", "Connection: keep-alive"),
                Err(Error::BadUpgrade("connection header does not list upgrade")),
            ),
            (
                "no accept",
                with(&format!("Sec-WebSocket-Accept: {SAMPLE_ACCEPT}\r\n"), ""),
                Err(Error::BadUpgrade("no sec-websocket-accept header")),
            ),
            (
                "wrong accept",
                with(SAMPLE_ACCEPT, "dGhlIHNhbXBsZSBub25jZQ=="),
                Err(Error::AcceptMismatch),
            ),
            (
                "accept in other case",
                with(SAMPLE_ACCEPT, &SAMPLE_ACCEPT.to_lowercase()),
                Err(Error::AcceptMismatch),
            ),
            (
                "two accepts",
                with(
                    "Server: nginx",
                    &format!("Sec-WebSocket-Accept: {SAMPLE_ACCEPT}"),
                ),
                Err(Error::BadUpgrade(
                    "more than one sec-websocket-accept header",
                )),
            ),
            (
                "extension selected",
                with(
                    "Server: nginx",
                    "Sec-WebSocket-Extensions: permessage-deflate",
                ),
                Err(Error::BadUpgrade(
                    "server selected an extension the client did not offer",
                )),
            ),
            (
                "subprotocol selected",
                with("Server: nginx", "Sec-WebSocket-Protocol: chat"),
                Err(Error::BadUpgrade(
                    "server selected a subprotocol the client did not offer",
                )),
            ),
            (
                "garbage",
                b"SSH-2.0-OpenSSH_9.6\r\n\r\n".to_vec(),
                Err(Error::MalformedResponse("invalid http version")),
            ),
            (
                "too many headers",
                many_headers,
                Err(Error::TooManyHeaders {
                    max: WS_HANDSHAKE_HEADER_MAX_COUNT,
                }),
            ),
            (
                "head too large",
                big_head,
                Err(Error::HeadTooLarge {
                    len: big_len,
                    max: WS_HANDSHAKE_HEAD_MAX_BYTES,
                }),
            ),
            ("empty", vec![], Ok(None)),
            (
                "status line only",
                b"HTTP/1.1 101 Switching Protocols\r\n".to_vec(),
                Ok(None),
            ),
        ]
    }

    #[test]
    fn response_table() {
        let key = Key::new(SAMPLE_NONCE);
        for (name, bytes, expect) in response_cases() {
            assert_eq!(
                show(&try_parse_response(&bytes, &key)),
                show(&expect),
                "{name}"
            );
        }
    }

    /// Frame bytes right behind the head are not part of it.
    #[test]
    fn bytes_after_the_head_belong_to_the_stream() {
        let key = Key::new(SAMPLE_NONCE);
        let head = ok_head().into_bytes();
        let mut buf = head.clone();
        buf.extend_from_slice(&[0x81, 0x02, b'h', b'i']);
        assert_eq!(try_parse_response(&buf, &key).ok(), Some(Some(head.len())));
        assert_eq!(buf[head.len()..], [0x81, 0x02, b'h', b'i']);
    }

    /// Every prefix of every fixture answers partial until the deciding byte, then the final answer;
    /// this is what a connection sees when the head arrives split at any index, or one byte per read.
    #[test]
    fn response_every_prefix() {
        let key = Key::new(SAMPLE_NONCE);
        for (name, bytes, expect) in response_cases() {
            let want = show(&expect);
            let mut decided = false;
            for k in 0..=bytes.len() {
                let got = try_parse_response(&bytes[..k], &key);
                if matches!(got, Ok(None)) && !decided {
                    continue;
                }
                decided = true;
                // A head that is too large may be called out before its end is seen: same variant.
                if let (Err(Error::HeadTooLarge { .. }), Err(Error::HeadTooLarge { .. })) =
                    (&got, &expect)
                {
                    continue;
                }
                assert_eq!(show(&got), want, "{name}: prefix {k}");
            }
            assert!(
                decided || matches!(expect, Ok(None)),
                "{name}: never decided"
            );
        }
    }

    #[test]
    fn errors_never_echo_header_values() {
        let key = Key::new(SAMPLE_NONCE);
        let head = b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer token=s3cr3t\r\n\r\n";
        let e = try_parse_response(head, &key).expect_err("401");
        assert!(!e.to_string().contains("s3cr3t"));
        assert!(!format!("{e:?}").contains("s3cr3t"));
    }
}
