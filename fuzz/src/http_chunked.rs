//! The chunked transfer coding (`http::body::Chunked`): the first byte seeds the read sizes, the rest
//! is the body.
//!
//! Checks: every answer stays inside the input given; the decoded data and the outcome (done, needs
//! more, error) are the same whether the body arrives whole or in pieces; data never follows the end;
//! the decoded data, encoded again as one chunk, decodes to itself (the round trip).
use dockmon_agent::http::body::{Chunk, Chunked};

/// How a decode ended.
#[derive(Debug, PartialEq, Eq)]
enum End {
    /// The body ended after this many input bytes.
    Done(usize),
    NeedMore,
    Error,
}

/// Decodes `reads` in order; the data and how it ended.
fn decode<'a>(reads: impl Iterator<Item = &'a [u8]>) -> (Vec<u8>, End) {
    let mut d = Chunked::new();
    let mut data = Vec::new();
    let mut offset = 0;
    for read in reads {
        let mut at = 0;
        loop {
            let rest = &read[at..];
            match d.next(rest) {
                Ok((used, chunk)) => {
                    assert!(used <= rest.len(), "consumed {used} of {}", rest.len());
                    match chunk {
                        Chunk::Data(r) => {
                            assert!(r.start <= r.end && r.end == used, "data {r:?} used {used}");
                            assert!(!r.is_empty(), "empty data piece");
                            data.extend_from_slice(&rest[r]);
                            at += used;
                        }
                        Chunk::NeedMore => {
                            assert_eq!(used, rest.len(), "NeedMore left bytes unread");
                            assert!(!d.is_done());
                            break;
                        }
                        Chunk::Done => {
                            assert!(d.is_done());
                            return (data, End::Done(offset + at + used));
                        }
                    }
                }
                Err(_) => return (data, End::Error),
            }
        }
        offset += read.len();
    }
    (data, End::NeedMore)
}

pub fn run(input: &[u8]) {
    let (seed, body) = crate::split_first(input);
    let (whole, end) = decode(std::iter::once(body));
    let (split, split_end) = decode(crate::pieces(body, seed));
    // An error may be found at a different byte when the input is split, but not a different outcome.
    assert_eq!(end, split_end, "whole and split outcomes differ");
    if end != End::Error {
        assert_eq!(whole, split, "whole and split data differ");
    }
    if let End::Done(_) = end {
        let mut again = format!("{:x}\r\n", whole.len()).into_bytes();
        again.extend_from_slice(&whole);
        if !whole.is_empty() {
            again.extend_from_slice(b"\r\n0\r\n");
        }
        again.extend_from_slice(b"\r\n");
        let (data, end) = decode(std::iter::once(&again[..]));
        assert_eq!(end, End::Done(again.len()));
        assert_eq!(data, whole, "re-encoded body decodes differently");
    }
}
