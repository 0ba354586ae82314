//! WebSocket frames from the server (`ws::frame::try_parse_header`, `ws::message::Reassembler`,
//! `ws::frame::parse_close`): the first byte picks the caps, the rest is the byte stream, frame after
//! frame, as the connection reads it.
//!
//! Checks: a header is 2, 4 or 10 bytes inside the buffer and its payload within the cap; emitting the
//! parsed header again parses to the same header (the round trip); a shorter prefix is partial; the
//! payload taken is exactly the declared length; `check_header` refuses whatever `push` refuses;
//! reassembled messages equal the concatenated fragments (a model kept here); a close frame's code and
//! reason survive `emit_close` → unmask → `parse_close`.
use dockmon_agent::ws::frame::{
    apply_mask, emit_close, emit_unmasked_header, parse_close, try_parse_header, Opcode,
};
use dockmon_agent::ws::message::{Event, Reassembler};
use dockmon_agent::ws::{WS_CONTROL_FRAME_MAX_BYTES, WS_FRAME_HEADER_MAX_BYTES};

pub fn run(data: &[u8]) {
    let (flags, mut rest) = crate::split_first(data);
    let payload_max = if flags & 1 == 0 { 200 } else { 70_000 };
    let message_max = if flags & 2 == 0 { 64 } else { 4096 };
    let mut buf = vec![0u8; message_max];
    let mut r = Reassembler::new();
    // The open message as the fragments so far make it (the model).
    let mut model: Option<Vec<u8>> = None;
    loop {
        let (header, n) = match try_parse_header(rest, payload_max) {
            Ok(Some(h)) => h,
            Ok(None) => {
                assert!(rest.len() < 10, "partial with {} bytes", rest.len());
                break;
            }
            Err(_) => break,
        };
        assert!(
            matches!(n, 2 | 4 | 10) && n <= rest.len(),
            "header length {n}"
        );
        assert!(header.payload_len <= payload_max);
        assert!(matches!(
            try_parse_header(&rest[..n - 1], payload_max),
            Ok(None)
        ));
        let mut out = [0u8; WS_FRAME_HEADER_MAX_BYTES];
        let m = emit_unmasked_header(&mut out, header.opcode, header.fin, header.payload_len);
        assert!(m <= n, "minimal header {m} longer than {n}");
        assert_eq!(
            try_parse_header(&out[..m], payload_max).ok(),
            Some(Some((header, m))),
            "emitted header parses differently"
        );
        let Some(payload) = rest.get(n..n + header.payload_len) else {
            break;
        };
        let checked = r.check_header(&header, buf.len());
        let was_open = r.is_open();
        match r.push(&mut buf, &header, payload) {
            Ok(None) => {
                assert!(checked.is_ok());
                match header.opcode {
                    Opcode::Text | Opcode::Binary => model = Some(payload.to_vec()),
                    Opcode::Continuation => model
                        .as_mut()
                        .expect("a fragment stored with no message open")
                        .extend_from_slice(payload),
                    other => panic!("{other:?} stored as a fragment"),
                }
                assert!(r.is_open());
                assert_eq!(Some(r.buffered()), model.as_ref().map(Vec::len));
                assert!(r.buffered() <= message_max);
            }
            Ok(Some(event)) => {
                assert!(checked.is_ok());
                let whole = |model: &mut Option<Vec<u8>>| match header.opcode {
                    Opcode::Continuation => {
                        let mut m = model.take().expect("a message ended with none open");
                        m.extend_from_slice(payload);
                        m
                    }
                    _ => payload.to_vec(),
                };
                match event {
                    Event::Text(s) => assert_eq!(s.as_bytes(), whole(&mut model)),
                    Event::Binary(b) => assert_eq!(b, whole(&mut model)),
                    Event::Ping(p) | Event::Pong(p) => assert_eq!(p, payload),
                    Event::Close(close) => {
                        if let Some(code) = close.code {
                            let mut frame = [0u8; WS_CONTROL_FRAME_MAX_BYTES];
                            let key = [flags, 0x5a, 0xa5, 0x3c];
                            let len = emit_close(&mut frame, Some((code, close.reason)), key)
                                .expect("a received close does not emit");
                            let body = &mut frame[6..len];
                            apply_mask(body, key, 0);
                            let again = parse_close(body).expect("an emitted close does not parse");
                            assert_eq!(again, close);
                        }
                    }
                }
                if header.opcode.is_control() {
                    assert_eq!(r.is_open(), was_open, "a control frame changed the message");
                } else {
                    assert!(!r.is_open());
                }
            }
            Err(_) => {
                assert!(
                    !r.is_open() && r.buffered() == 0,
                    "not reset after an error"
                );
                model = None;
            }
        }
        rest = &rest[n + header.payload_len..];
    }
}
