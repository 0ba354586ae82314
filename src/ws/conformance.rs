//! RFC 6455 client conformance, in the spirit of the Autobahn testsuite's client cases, without the
//! image: a table of server byte streams (optionally preceded by the upgrade answer) is run through the
//! client's pure pieces — [`try_parse_response`], [`try_parse_header`], [`Reassembler`] — the way a
//! connection drives them, and the results are diffed against the committed
//! `tests/fixtures/ws-conformance.txt`.
//!
//! Each stream is also fed whole, one byte per read and split in two at every index; all answers must
//! agree before the result is compared.
//!
//! After a deliberate change, regenerate the file with
//! `WS_CONFORMANCE_BLESS=1 cargo test --lib ws::conformance` and review the diff line by line.
use super::frame::{try_parse_header, Close};
use super::handshake::{try_parse_response, Key};
use super::message::{Event, Reassembler};
use super::{Error, WS_HANDSHAKE_HEADER_MAX_COUNT, WS_HANDSHAKE_HEAD_MAX_BYTES};

/// Frame and message cap of the client under test: 64 KiB, so a 65536-byte message passes and a
/// 65537-byte one fails.
const CAP: usize = 65_536;
/// The committed expected results.
const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/ws-conformance.txt"
);
/// Accept for the RFC 6455 §1.3 sample nonce, used by every handshake case.
const SAMPLE_ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

const CONT: u8 = 0x0;
const TEXT: u8 = 0x1;
const BIN: u8 = 0x2;
const CLOSE: u8 = 0x8;
const PING: u8 = 0x9;
const PONG: u8 = 0xA;

/// One raw server frame. `b0_extra` ORs RSV bits into the first byte; `mask` sets the mask bit and
/// key (and masks the payload). The length uses the minimal encoding.
fn raw(fin: bool, opcode: u8, b0_extra: u8, mask: Option<[u8; 4]>, payload: &[u8]) -> Vec<u8> {
    let mut v = vec![if fin { 0x80 } else { 0 } | b0_extra | opcode];
    let m = if mask.is_some() { 0x80 } else { 0 };
    match payload.len() {
        n @ 0..=125 => v.push(m | n as u8),
        n @ 126..=65_535 => {
            v.push(m | 126);
            v.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            v.push(m | 127);
            v.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    match mask {
        Some(key) => {
            v.extend_from_slice(&key);
            v.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
        }
        None => v.extend_from_slice(payload),
    }
    v
}

fn fr(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    raw(fin, opcode, 0, None, payload)
}

/// A frame whose length field is written by hand: `len7` is 126 or 127 and `ext` the extended bytes.
fn with_length(b0: u8, len7: u8, ext: &[u8], payload: &[u8]) -> Vec<u8> {
    [&[b0, len7][..], ext, payload].concat()
}

fn close_body(code: u16, reason: &[u8]) -> Vec<u8> {
    [&code.to_be_bytes()[..], reason].concat()
}

fn text_of(len: usize) -> Vec<u8> {
    (0..len).map(|i| b'a' + (i % 26) as u8).collect()
}

fn cat(frames: &[Vec<u8>]) -> Vec<u8> {
    frames.concat()
}

/// The upgrade answer every handshake case starts from.
fn head_101(extra: &str) -> String {
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {SAMPLE_ACCEPT}\r\n{extra}\r\n"
    )
}

/// One case: an id (group number and a slug), whether the stream starts with the upgrade answer, bytes.
struct Case {
    id: String,
    handshake: bool,
    bytes: Vec<u8>,
}

fn frames_case(id: &str, bytes: Vec<u8>) -> Case {
    Case {
        id: id.to_string(),
        handshake: false,
        bytes,
    }
}

fn session_case(id: &str, bytes: Vec<u8>) -> Case {
    Case {
        id: id.to_string(),
        handshake: true,
        bytes,
    }
}

fn cases() -> Vec<Case> {
    let mut c = Vec::new();
    let hello = fr(true, TEXT, b"Hello");

    // 1: frame sizes at each length encoding boundary, text and binary.
    for (kind, op) in [(1, TEXT), (2, BIN)] {
        let name = if op == TEXT { "text" } else { "binary" };
        for (i, len) in [0usize, 125, 126, 127, 65_535, 65_536, 65_537]
            .into_iter()
            .enumerate()
        {
            let id = format!("1.{kind}.{}-{name}-{len}", i + 1);
            c.push(frames_case(&id, fr(true, op, &text_of(len))));
        }
    }
    c.push(frames_case(
        "1.3.1-two-messages-one-read",
        cat(&[hello.clone(), fr(true, BIN, &[1, 2, 3])]),
    ));
    c.push(frames_case(
        "1.3.2-payload-is-json",
        fr(
            true,
            TEXT,
            br#"{"type":"command","command":"list_containers"}"#,
        ),
    ));

    // 2: pings and pongs (RFC 6455 §5.5.2, §5.5.3).
    c.push(frames_case("2.1-ping-empty", fr(true, PING, b"")));
    c.push(frames_case(
        "2.2-ping-text-payload",
        fr(true, PING, b"Hello, world"),
    ));
    c.push(frames_case(
        "2.3-ping-binary-payload",
        fr(true, PING, &[0x00, 0xff, 0xfe, 0xfd, 0xfc, 0xfb]),
    ));
    c.push(frames_case("2.4-ping-125", fr(true, PING, &[0xfe; 125])));
    c.push(frames_case("2.5-ping-126", fr(true, PING, &[0xfe; 126])));
    c.push(frames_case("2.6-pong-unsolicited", fr(true, PONG, b"")));
    c.push(frames_case(
        "2.7-pong-unsolicited-then-ping",
        cat(&[fr(true, PONG, b"u"), fr(true, PING, b"p")]),
    ));
    c.push(frames_case(
        "2.8-ten-pings",
        cat(&vec![fr(true, PING, b"x"); 10]),
    ));
    c.push(frames_case(
        "2.9-ping-fragmented",
        cat(&[fr(false, PING, b"a"), fr(true, CONT, b"b")]),
    ));
    c.push(frames_case("2.10-pong-126", fr(true, PONG, &[0; 126])));
    c.push(frames_case(
        "2.11-ping-126-in-64-bit-field",
        with_length(0x89, 127, &126u64.to_be_bytes(), &[0; 126]),
    ));

    // 3: reserved bits (§5.2; no extension negotiated).
    c.push(frames_case(
        "3.1-text-rsv1",
        raw(true, TEXT, 0x40, None, b"Hello"),
    ));
    c.push(frames_case(
        "3.2-text-rsv2",
        raw(true, TEXT, 0x20, None, b"Hello"),
    ));
    c.push(frames_case(
        "3.3-text-rsv3",
        raw(true, TEXT, 0x10, None, b"Hello"),
    ));
    c.push(frames_case(
        "3.4-binary-rsv1-rsv3",
        raw(true, BIN, 0x50, None, &[1]),
    ));
    c.push(frames_case(
        "3.5-ping-rsv2",
        raw(true, PING, 0x20, None, b""),
    ));
    c.push(frames_case(
        "3.6-close-rsv-all",
        raw(true, CLOSE, 0x70, None, &close_body(1000, b"")),
    ));
    c.push(frames_case(
        "3.7-text-then-rsv",
        cat(&[hello.clone(), raw(true, TEXT, 0x40, None, b"x")]),
    ));

    // 4: reserved opcodes (§5.2).
    for (i, op) in [3u8, 4, 5, 6, 7].into_iter().enumerate() {
        c.push(frames_case(
            &format!("4.1.{}-opcode-{op:x}", i + 1),
            fr(true, op, b""),
        ));
    }
    for (i, op) in [0xBu8, 0xC, 0xD, 0xE, 0xF].into_iter().enumerate() {
        c.push(frames_case(
            &format!("4.2.{}-opcode-{op:x}", i + 1),
            fr(true, op, b"x"),
        ));
    }
    c.push(frames_case(
        "4.3-text-then-opcode-3",
        cat(&[hello.clone(), fr(true, 3, b"")]),
    ));

    // 5: fragmentation (§5.4).
    c.push(frames_case(
        "5.1-text-two-fragments",
        cat(&[fr(false, TEXT, b"fragment1"), fr(true, CONT, b"fragment2")]),
    ));
    c.push(frames_case(
        "5.2-binary-two-fragments",
        cat(&[fr(false, BIN, &[1; 7]), fr(true, CONT, &[2; 7])]),
    ));
    c.push(frames_case(
        "5.3-text-with-empty-fragments",
        cat(&[
            fr(false, TEXT, b""),
            fr(false, CONT, b"ab"),
            fr(false, CONT, b""),
            fr(true, CONT, b""),
        ]),
    ));
    c.push(frames_case(
        "5.4-ping-between-fragments",
        cat(&[
            fr(false, TEXT, b"frag1"),
            fr(true, PING, b"ping!"),
            fr(true, CONT, b"frag2"),
        ]),
    ));
    c.push(frames_case(
        "5.5-pong-between-fragments",
        cat(&[
            fr(false, TEXT, b"frag1"),
            fr(true, PONG, b""),
            fr(true, CONT, b"frag2"),
        ]),
    ));
    c.push(frames_case(
        "5.6-ping-and-pong-between-each-fragment",
        cat(&[
            fr(false, BIN, b"1"),
            fr(true, PING, b""),
            fr(false, CONT, b"2"),
            fr(true, PONG, b""),
            fr(false, CONT, b"3"),
            fr(true, PING, b""),
            fr(true, CONT, b"4"),
        ]),
    ));
    c.push(frames_case(
        "5.7-close-between-fragments",
        cat(&[
            fr(false, TEXT, b"frag1"),
            fr(true, CLOSE, &close_body(1000, b"")),
            fr(true, CONT, b"frag2"),
        ]),
    ));
    c.push(frames_case(
        "5.8-continuation-without-start",
        fr(false, CONT, b"x"),
    ));
    c.push(frames_case(
        "5.9-final-continuation-without-start",
        fr(true, CONT, b"x"),
    ));
    c.push(frames_case(
        "5.10-text-inside-fragmented-text",
        cat(&[fr(false, TEXT, b"a"), fr(true, TEXT, b"b")]),
    ));
    c.push(frames_case(
        "5.11-binary-inside-fragmented-text",
        cat(&[fr(false, TEXT, b"a"), fr(false, BIN, b"b")]),
    ));
    c.push(frames_case(
        "5.12-continuation-after-finished-message",
        cat(&[
            fr(false, TEXT, b"a"),
            fr(true, CONT, b"b"),
            fr(true, CONT, b"c"),
        ]),
    ));
    let mut ten = vec![fr(false, TEXT, b"0")];
    ten.extend((1..9).map(|i| fr(false, CONT, &[b'0' + i])));
    ten.push(fr(true, CONT, b"9"));
    c.push(frames_case("5.13-ten-one-byte-fragments", cat(&ten)));
    c.push(frames_case(
        "5.14-fragments-at-cap",
        cat(&[fr(false, BIN, &[7; 32_768]), fr(true, CONT, &[7; 32_768])]),
    ));
    c.push(frames_case(
        "5.15-fragments-over-cap",
        cat(&[fr(false, BIN, &[7; 32_768]), fr(true, CONT, &[7; 32_769])]),
    ));
    c.push(frames_case(
        "5.16-two-fragmented-messages",
        cat(&[
            fr(false, TEXT, b"a"),
            fr(true, CONT, b"b"),
            fr(false, BIN, b"c"),
            fr(true, CONT, b"d"),
        ]),
    ));

    // 6: UTF-8 (§8.1), including sequences split across fragments.
    c.push(frames_case(
        "6.1-valid-multibyte",
        fr(true, TEXT, "κόσμε €𝄞".as_bytes()),
    ));
    c.push(frames_case(
        "6.2-bom-and-noncharacter",
        fr(true, TEXT, "\u{feff}\u{ffff}".as_bytes()),
    ));
    c.push(frames_case("6.3-invalid-ff", fr(true, TEXT, b"ab\xff")));
    c.push(frames_case(
        "6.4-overlong-slash",
        fr(true, TEXT, b"\xc0\xaf"),
    ));
    c.push(frames_case(
        "6.5-surrogate",
        fr(true, TEXT, b"x\xed\xa0\x80"),
    ));
    c.push(frames_case(
        "6.6-above-u10ffff",
        fr(true, TEXT, b"\xf4\x90\x80\x80"),
    ));
    let euro = "€".as_bytes();
    c.push(frames_case(
        "6.7-code-point-split-across-fragments",
        cat(&[
            fr(false, TEXT, &euro[..1]),
            fr(false, CONT, &euro[1..2]),
            fr(true, CONT, &euro[2..]),
        ]),
    ));
    // Only the first fragment arrives: a client that fails fast reports the error, not an open message.
    c.push(frames_case(
        "6.8-invalid-fails-fast-in-first-fragment",
        fr(false, TEXT, b"ok\xce\xba\xf4\x90"),
    ));
    c.push(frames_case(
        "6.9-invalid-split-across-fragments",
        cat(&[
            fr(false, TEXT, b"ok\xf0\x9f"),
            fr(false, CONT, b"\x28"),
            fr(true, CONT, b""),
        ]),
    ));
    c.push(frames_case(
        "6.10-incomplete-at-end-of-message",
        cat(&[fr(false, TEXT, b"a\xe2"), fr(true, CONT, b"\x82")]),
    ));
    c.push(frames_case(
        "6.11-incomplete-at-end-of-frame",
        fr(true, TEXT, b"a\xe2\x82"),
    ));
    c.push(frames_case(
        "6.12-invalid-utf8-in-binary",
        fr(true, BIN, b"\xff\xfe"),
    ));
    c.push(frames_case(
        "6.13-incomplete-then-complete-in-middle",
        cat(&[
            fr(false, TEXT, &euro[..2]),
            fr(false, CONT, &euro[2..]),
            fr(true, CONT, b"!"),
        ]),
    ));

    // 7: close frames (§5.5.1, §7.4).
    c.push(frames_case("7.1-close-empty", fr(true, CLOSE, b"")));
    c.push(frames_case(
        "7.2-close-1000",
        fr(true, CLOSE, &close_body(1000, b"")),
    ));
    c.push(frames_case(
        "7.3-close-1000-reason",
        fr(true, CLOSE, &close_body(1000, b"bye")),
    ));
    c.push(frames_case("7.4-close-one-byte", fr(true, CLOSE, &[0x03])));
    c.push(frames_case(
        "7.5-close-reason-invalid-utf8",
        fr(
            true,
            CLOSE,
            &close_body(
                1000,
                b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80",
            ),
        ),
    ));
    c.push(frames_case(
        "7.6-close-reason-123",
        fr(true, CLOSE, &close_body(1000, &[b'r'; 123])),
    ));
    c.push(frames_case(
        "7.7-close-reason-124",
        with_length(
            0x88,
            126,
            &126u16.to_be_bytes(),
            &close_body(1000, &[b'r'; 124]),
        ),
    ));
    for (i, code) in [
        1000u16, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999,
        4000, 4999,
    ]
    .into_iter()
    .enumerate()
    {
        c.push(frames_case(
            &format!("7.8.{}-close-code-{code}", i + 1),
            fr(true, CLOSE, &close_body(code, b"")),
        ));
    }
    for (i, code) in [
        0u16, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65_535,
    ]
    .into_iter()
    .enumerate()
    {
        c.push(frames_case(
            &format!("7.9.{}-close-code-{code}", i + 1),
            fr(true, CLOSE, &close_body(code, b"")),
        ));
    }
    c.push(frames_case(
        "7.10-dockmon-auth-failed",
        fr(true, CLOSE, &close_body(1008, b"Authentication failed")),
    ));
    c.push(frames_case(
        "7.11-frames-after-close-are-not-read",
        cat(&[
            fr(true, CLOSE, &close_body(1000, b"")),
            hello.clone(),
            fr(true, 3, b""),
        ]),
    ));
    c.push(frames_case(
        "7.12-close-fragmented",
        fr(false, CLOSE, &close_body(1000, b"")),
    ));

    // 8: framing errors and length encodings (§5.1, §5.2).
    c.push(frames_case(
        "8.1-masked-text",
        raw(true, TEXT, 0, Some([1, 2, 3, 4]), b"Hello"),
    ));
    c.push(frames_case(
        "8.2-masked-ping",
        raw(true, PING, 0, Some([0; 4]), b""),
    ));
    c.push(frames_case(
        "8.3-masked-close",
        raw(true, CLOSE, 0, Some([9; 4]), &close_body(1000, b"")),
    ));
    c.push(frames_case(
        "8.4-text-then-masked",
        cat(&[hello.clone(), raw(true, TEXT, 0, Some([1; 4]), b"x")]),
    ));
    c.push(frames_case(
        "8.5-length-msb-set",
        with_length(0x82, 127, &(1u64 << 63).to_be_bytes(), b""),
    ));
    c.push(frames_case(
        "8.6-length-all-ones",
        with_length(0x82, 127, &u64::MAX.to_be_bytes(), b""),
    ));
    c.push(frames_case(
        "8.7-non-minimal-16-bit-length",
        with_length(0x81, 126, &5u16.to_be_bytes(), b"Hello"),
    ));
    c.push(frames_case(
        "8.8-non-minimal-64-bit-length",
        with_length(0x81, 127, &5u64.to_be_bytes(), b"Hello"),
    ));
    c.push(frames_case(
        "8.9-huge-length-refused-before-payload",
        with_length(0x82, 127, &(1u64 << 40).to_be_bytes(), b""),
    ));

    // 9: the stream ends (clean EOF, EOF inside a frame, EOF inside a fragmented message).
    c.push(frames_case("9.1-empty-stream", Vec::new()));
    c.push(frames_case("9.2-eof-in-first-header-byte", vec![0x81]));
    c.push(frames_case(
        "9.3-eof-in-extended-length",
        vec![0x82, 127, 0, 0],
    ));
    c.push(frames_case("9.4-eof-in-payload", hello[..4].to_vec()));
    c.push(frames_case(
        "9.5-eof-in-fragmented-message",
        fr(false, TEXT, b"frag1"),
    ));
    c.push(frames_case(
        "9.6-eof-after-ping-inside-message",
        cat(&[fr(false, TEXT, b"a"), fr(true, PING, b"")]),
    ));
    c.push(frames_case("9.7-message-then-eof", hello.clone()));

    // hs: the upgrade answer (§4.1), then the stream behind it.
    c.push(session_case(
        "hs.1-rfc6455-1.3-answer",
        head_101("").into_bytes(),
    ));
    c.push(session_case(
        "hs.2-nginx-answer",
        head_101("Server: nginx\r\nDate: Sat, 29 Nov 2026 00:14:00 GMT\r\n").into_bytes(),
    ));
    c.push(session_case(
        "hs.3-first-frame-in-same-read",
        [head_101("").into_bytes(), hello.clone()].concat(),
    ));
    c.push(session_case(
        "hs.4-auth-error-then-close-1008",
        [
            head_101("").into_bytes(),
            fr(
                true,
                TEXT,
                br#"{"type":"auth_error","error":"Invalid registration token"}"#,
            ),
            fr(true, CLOSE, &close_body(1008, b"Authentication failed")),
        ]
        .concat(),
    ));
    c.push(session_case(
        "hs.5-403",
        b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n".to_vec(),
    ));
    c.push(session_case(
        "hs.6-404",
        b"HTTP/1.1 404 Not Found\r\nContent-Length: 22\r\n\r\n{\"detail\":\"Not Found\"}".to_vec(),
    ));
    c.push(session_case(
        "hs.7-200",
        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n".to_vec(),
    ));
    c.push(session_case(
        "hs.8-502-from-proxy",
        b"HTTP/1.1 502 Bad Gateway\r\nServer: nginx\r\n\r\n".to_vec(),
    ));
    let without = |line: &str| head_101("").replacen(line, "", 1).into_bytes();
    c.push(session_case(
        "hs.9-no-upgrade",
        without("Upgrade: websocket\r\n"),
    ));
    c.push(session_case(
        "hs.10-upgrade-h2c",
        head_101("")
            .replacen("Upgrade: websocket", "Upgrade: h2c", 1)
            .into_bytes(),
    ));
    c.push(session_case(
        "hs.11-no-connection",
        without("Connection: Upgrade\r\n"),
    ));
    c.push(session_case(
        "hs.12-connection-list",
        head_101("")
            .replacen("Connection: Upgrade", "Connection: keep-alive, upgrade", 1)
            .into_bytes(),
    ));
    c.push(session_case(
        "hs.13-names-and-values-in-other-cases",
        format!(
            "HTTP/1.1 101 Switching Protocols\r\nupgrade: WebSocket\r\nCONNECTION: UPGRADE\r\n\
             sec-websocket-accept: {SAMPLE_ACCEPT}\r\n\r\n"
        )
        .into_bytes(),
    ));
    c.push(session_case(
        "hs.14-no-accept",
        without(&format!("Sec-WebSocket-Accept: {SAMPLE_ACCEPT}\r\n")),
    ));
    c.push(session_case(
        "hs.15-wrong-accept",
        head_101("")
            .replacen(SAMPLE_ACCEPT, "FpYBVfh7hR6jA8DDIon7Kcd7onU=", 1)
            .into_bytes(),
    ));
    c.push(session_case(
        "hs.16-two-accepts",
        head_101(&format!("Sec-WebSocket-Accept: {SAMPLE_ACCEPT}\r\n")).into_bytes(),
    ));
    c.push(session_case(
        "hs.17-extension-selected",
        head_101("Sec-WebSocket-Extensions: permessage-deflate\r\n").into_bytes(),
    ));
    c.push(session_case(
        "hs.18-subprotocol-selected",
        head_101("Sec-WebSocket-Protocol: chat\r\n").into_bytes(),
    ));
    c.push(session_case(
        "hs.19-http-1.0",
        head_101("")
            .replacen("HTTP/1.1", "HTTP/1.0", 1)
            .into_bytes(),
    ));
    c.push(session_case(
        "hs.20-not-http",
        b"SSH-2.0-OpenSSH_9.6\r\n".to_vec(),
    ));
    let many: String = (0..=WS_HANDSHAKE_HEADER_MAX_COUNT)
        .map(|i| format!("X-{i}: v\r\n"))
        .collect();
    c.push(session_case(
        "hs.21-too-many-headers",
        head_101(&many).into_bytes(),
    ));
    let pad = format!("X-Pad: {}\r\n", "p".repeat(WS_HANDSHAKE_HEAD_MAX_BYTES));
    c.push(session_case(
        "hs.22-head-too-large",
        head_101(&pad).into_bytes(),
    ));
    c.push(session_case(
        "hs.23-eof-in-head",
        head_101("").as_bytes()[..40].to_vec(),
    ));
    c.push(session_case(
        "hs.24-masked-first-frame",
        [
            head_101("").into_bytes(),
            raw(true, TEXT, 0, Some([1; 4]), b"x"),
        ]
        .concat(),
    ));
    c
}

/// The client under test: what a connection does with the bytes it reads, minus the socket.
struct Client {
    key: Key,
    in_head: bool,
    stream: Vec<u8>,
    pos: usize,
    reassembler: Reassembler,
    buf: Vec<u8>,
    seen: Vec<String>,
    end: Option<String>,
}

impl Client {
    fn new(handshake: bool) -> Client {
        Client {
            key: Key::new(b"the sample nonce"),
            in_head: handshake,
            stream: Vec::new(),
            pos: 0,
            reassembler: Reassembler::new(),
            buf: vec![0; CAP],
            seen: Vec::new(),
            end: None,
        }
    }

    /// One read's worth of bytes.
    fn feed(&mut self, chunk: &[u8]) {
        if self.end.is_some() {
            return;
        }
        self.stream.extend_from_slice(chunk);
        if self.in_head {
            match try_parse_response(&self.stream, &self.key) {
                Ok(None) => return,
                Ok(Some(n)) => {
                    self.seen.push(format!("upgraded({n})"));
                    self.pos = n;
                    self.in_head = false;
                }
                Err(e) => return self.fail(&e),
            }
        }
        loop {
            let available = &self.stream[self.pos..];
            let (header, n) = match try_parse_header(available, CAP) {
                Ok(Some(parsed)) => parsed,
                Ok(None) => return,
                Err(e) => return self.fail(&e),
            };
            // Refuse what the header alone condemns before waiting for the payload.
            if let Err(e) = self.reassembler.check_header(&header, self.buf.len()) {
                return self.fail(&e);
            }
            let Some(payload) = available.get(n..n + header.payload_len) else {
                return;
            };
            match self.reassembler.push(&mut self.buf, &header, payload) {
                Ok(None) => {}
                Ok(Some(event)) => {
                    let closed = matches!(event, Event::Close(_));
                    self.seen.push(describe(&event));
                    if closed {
                        // §5.5.1: after a close the client answers and reads no more frames.
                        self.end = Some(String::new());
                        return;
                    }
                }
                Err(e) => return self.fail(&e),
            }
            self.pos += n + header.payload_len;
        }
    }

    fn fail(&mut self, e: &Error) {
        let code = e.close_code().map_or("-".to_string(), |c| c.to_string());
        self.end = Some(format!("fail({code},{})", tag(e)));
    }

    fn outcome(mut self) -> String {
        let end = match self.end.take() {
            Some(end) => end,
            None if self.in_head => "eof-in-head".into(),
            None if self.pos < self.stream.len() => "eof-mid-frame".into(),
            None if self.reassembler.is_open() => "eof-mid-message".into(),
            None => "eof".into(),
        };
        if !end.is_empty() {
            self.seen.push(end);
        }
        self.seen.join(",")
    }
}

fn describe(event: &Event<'_>) -> String {
    match event {
        Event::Text(s) => format!("text({})", s.len()),
        Event::Binary(b) => format!("binary({})", b.len()),
        Event::Ping(p) => format!("ping({})", p.len()),
        Event::Pong(p) => format!("pong({})", p.len()),
        Event::Close(Close { code: None, .. }) => "close(none)".into(),
        Event::Close(Close {
            code: Some(code),
            reason,
        }) => format!("close({code},{})", reason.len()),
    }
}

/// A short name for each error, with the value that matters.
fn tag(e: &Error) -> String {
    match e {
        Error::MaskedFrame => "masked".into(),
        Error::ReservedBits { bits } => format!("rsv{bits}"),
        Error::UnknownOpcode { opcode } => format!("opcode-{opcode:x}"),
        Error::FragmentedControl { opcode } => format!("fragmented-control-{opcode:x}"),
        Error::ControlTooLarge { len, .. } => format!("control-len-{len}"),
        Error::LengthOverflow { .. } => "length-msb".into(),
        Error::FrameTooLarge { len, .. } => format!("frame-len-{len}"),
        Error::UnexpectedContinuation => "continuation-without-start".into(),
        Error::UnfinishedMessage { opcode } => format!("data-{opcode:x}-inside-message"),
        Error::MessageTooLarge { len, .. } => format!("message-len-{len}"),
        Error::InvalidUtf8 { what, at } => {
            format!(
                "{}-utf8-at-{at}",
                if *what == "close reason" {
                    "reason"
                } else {
                    "text"
                }
            )
        }
        Error::CloseTooShort => "close-one-byte".into(),
        Error::InvalidCloseCode { code } => format!("close-code-{code}"),
        Error::BufferTooSmall { .. } | Error::BadRequest(_) => "local".into(),
        Error::HeadTooLarge { .. } => "head-too-large".into(),
        Error::TooManyHeaders { .. } => "too-many-headers".into(),
        Error::MalformedResponse(_) => "malformed-head".into(),
        Error::Status { status } => format!("status-{status}"),
        Error::BadUpgrade(_) => "bad-upgrade".into(),
        Error::AcceptMismatch => "accept-mismatch".into(),
    }
}

fn run(case: &Case, chunks: &mut dyn Iterator<Item = &[u8]>) -> String {
    let mut client = Client::new(case.handshake);
    for chunk in chunks {
        client.feed(chunk);
    }
    client.outcome()
}

/// Whole, one byte per read, and split in two at every index: the same outcome.
fn outcome_every_split(case: &Case) -> String {
    let bytes = &case.bytes;
    let whole = run(case, &mut std::iter::once(&bytes[..]));
    let bytewise = run(case, &mut bytes.chunks(1));
    assert_eq!(bytewise, whole, "{}: one byte per read", case.id);
    for i in 0..=bytes.len() {
        let (a, b) = bytes.split_at(i);
        let split = run(case, &mut [a, b].into_iter());
        assert_eq!(split, whole, "{}: split at {i}", case.id);
    }
    whole
}

fn render(results: &[(String, String)]) -> String {
    let mut out = String::from(
        "# RFC 6455 client conformance of dockmon-agent's ws layer; produced by src/ws/conformance.rs.\n\
         # One case per line: `id outcome`. The outcome lists what the client saw, comma-separated:\n\
         # upgraded(head bytes), text(bytes), binary(bytes), ping(bytes), pong(bytes), close(code,reason\n\
         # bytes) or close(none); then how the stream ended: eof (clean), eof-mid-frame, eof-mid-message,\n\
         # eof-in-head, or fail(close code the client sends or -, reason). Nothing follows a close.\n\
         # Client caps: 65536-byte frames and messages. Regenerate with\n\
         # WS_CONFORMANCE_BLESS=1 cargo test --lib ws::conformance, then review the diff by hand.\n",
    );
    for (id, outcome) in results {
        out.push_str(id);
        out.push(' ');
        out.push_str(outcome);
        out.push('\n');
    }
    out
}

#[test]
fn rfc6455_client_conformance_matches_fixture() {
    let cases = cases();
    let mut ids = std::collections::HashSet::new();
    for case in &cases {
        assert!(ids.insert(case.id.clone()), "duplicate id {}", case.id);
        assert!(!case.id.contains(' '), "space in id {}", case.id);
    }
    let results: Vec<(String, String)> = cases
        .iter()
        .map(|c| (c.id.clone(), outcome_every_split(c)))
        .collect();
    let actual = render(&results);
    if std::env::var_os("WS_CONFORMANCE_BLESS").is_some() {
        std::fs::write(FIXTURE, &actual).expect("write the conformance fixture");
        return;
    }
    let expected = std::fs::read_to_string(FIXTURE).unwrap_or_else(|e| {
        panic!("cannot read {FIXTURE}: {e}; create it with WS_CONFORMANCE_BLESS=1 and review it")
    });
    let lines = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .map(str::to_string)
            .collect()
    };
    let (want, got) = (lines(&expected), lines(&actual));
    let mut diff = String::new();
    for line in &want {
        if !got.contains(line) {
            diff.push_str(&format!("- {line}\n"));
        }
    }
    for line in &got {
        if !want.contains(line) {
            diff.push_str(&format!("+ {line}\n"));
        }
    }
    assert!(
        diff.is_empty() && want == got,
        "conformance results differ from {FIXTURE} (- expected, + actual):\n{diff}\
         if the change is intended, rerun with WS_CONFORMANCE_BLESS=1 and review the file"
    );
}

/// Arbitrary bytes (a fixed-seed generator, no dependency) give a clean outcome, never a panic, and
/// the same outcome however they are split.
#[test]
fn arbitrary_streams_end_cleanly_and_split_alike() {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        // xorshift64*
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_F491_4F6C_DD1D)
    };
    for round in 0..3_000 {
        let len = (next() % 48) as usize;
        let mut bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        // Bias towards plausible headers: a valid first byte and a small unmasked length.
        if round % 2 == 0 && len >= 2 {
            bytes[0] = [0x81, 0x82, 0x01, 0x00, 0x80, 0x89, 0x8A, 0x88][(next() % 8) as usize];
            bytes[1] &= 0x7F;
            bytes[1] %= 40;
        }
        let case = Case {
            id: format!("random-{round}"),
            handshake: round % 7 == 0,
            bytes,
        };
        let outcome = outcome_every_split(&case);
        assert!(!outcome.is_empty(), "{}", case.id);
    }
}
