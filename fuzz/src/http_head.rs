//! HTTP response heads (`http::head::try_parse`): the first byte holds the flags (HEAD request, which
//! headers to capture), the rest is the buffer.
//!
//! Checks: a complete head lies inside the buffer and the head cap; the head alone parses the same
//! (the answer does not depend on what follows it); no strict prefix of it is complete; `Partial`
//! only below the cap; a body-less answer is framed `Empty`.
use dockmon_agent::http::head::{try_parse, Framing, Parsed};
use dockmon_agent::limits::HEAD_MAX_BYTES;

const CAPTURES: [&[&str]; 4] = [
    &[],
    &["location"],
    &[
        "content-type",
        "docker-experimental",
        "api-version",
        "ostype",
    ],
    &["Sec-WebSocket-Accept", "server"],
];

pub fn run(data: &[u8]) {
    let (flags, buf) = crate::split_first(data);
    let head_request = flags & 1 != 0;
    let capture = CAPTURES[usize::from(flags >> 1) % CAPTURES.len()];
    match try_parse(buf, head_request, capture) {
        Ok(Parsed::Complete(head, len)) => {
            assert!(
                len <= buf.len() && len <= HEAD_MAX_BYTES,
                "head length {len}"
            );
            match try_parse(&buf[..len], head_request, capture) {
                Ok(Parsed::Complete(again, n)) => assert_eq!((again, n), (head.clone(), len)),
                other => panic!("the head alone parses differently: {other:?}"),
            }
            for cut in [len - 1, len / 2] {
                if let Ok(Parsed::Complete(_, n)) = try_parse(&buf[..cut], head_request, capture) {
                    panic!("a {cut}-byte prefix of a {len}-byte head is complete at {n}");
                }
            }
            let bodyless = head_request
                || (100..200).contains(&head.status)
                || head.status == 204
                || head.status == 304;
            if bodyless {
                assert_eq!(head.framing, Framing::Empty);
            }
            if head.status == 101 {
                assert!(!head.keep_alive);
            }
            for (value, _) in head.captured.iter().zip(capture) {
                if let Some(v) = value {
                    assert_eq!(v.as_str(), v.trim());
                }
            }
        }
        Ok(Parsed::Partial) => assert!(buf.len() < HEAD_MAX_BYTES),
        Err(_) => {}
    }
}
