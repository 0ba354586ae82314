//! The server's answer to the WebSocket upgrade (`ws::handshake::try_parse_response`). The key is
//! fixed (nonce 0..16); every `@@` in the input is replaced by its accept value, so the fuzzer can
//! reach the success path and what follows it.
//!
//! Checks: a success lies inside the buffer and the head alone gives the same answer; a strict
//! prefix of a successful head is never a success; partial only below the head cap.
use dockmon_agent::ws::handshake::{try_parse_response, Key};
use dockmon_agent::ws::WS_HANDSHAKE_HEAD_MAX_BYTES;

pub fn run(data: &[u8]) {
    let nonce: [u8; 16] = std::array::from_fn(|i| i as u8);
    let key = Key::new(&nonce);
    let mut buf = Vec::with_capacity(data.len() + 32);
    let mut rest = data;
    while let Some(at) = rest.windows(2).position(|w| w == b"@@") {
        buf.extend_from_slice(&rest[..at]);
        buf.extend_from_slice(key.accept().as_bytes());
        rest = &rest[at + 2..];
    }
    buf.extend_from_slice(rest);
    match try_parse_response(&buf, &key) {
        Ok(Some(n)) => {
            assert!(
                n <= buf.len() && n <= WS_HANDSHAKE_HEAD_MAX_BYTES,
                "head length {n}"
            );
            assert!(matches!(try_parse_response(&buf[..n], &key), Ok(Some(m)) if m == n));
            for cut in [n - 1, n / 2] {
                assert!(!matches!(
                    try_parse_response(&buf[..cut], &key),
                    Ok(Some(_))
                ));
            }
        }
        Ok(None) => assert!(buf.len() < WS_HANDSHAKE_HEAD_MAX_BYTES),
        Err(_) => {}
    }
}
