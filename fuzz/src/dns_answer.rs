//! DNS answers (`dns::wire::parse_answer`). Input: a flags byte (bit 0: AAAA instead of A), the
//! question name, a NUL, then the answer datagram; the ID asked is the answer's own (so the checks
//! past the ID are reached).
//!
//! Checks: the addresses are of the family asked; the name compares without ASCII case (RFC 4343):
//! the answer is the same for the name in upper case.
use dockmon_agent::dns::wire::{parse_answer, Qtype};
use std::net::IpAddr;

pub fn run(data: &[u8]) {
    let (flags, rest) = crate::split_first(data);
    let [name, msg] = crate::fields::<2>(rest);
    let name = crate::text(name);
    let qtype = if flags & 1 == 0 {
        Qtype::A
    } else {
        Qtype::Aaaa
    };
    let id = match msg {
        [a, b, ..] => u16::from_be_bytes([*a, *b]),
        _ => 0,
    };
    let answer = parse_answer(msg, id, &name, qtype);
    if let Ok(addrs) = &answer {
        for a in addrs {
            match (qtype, a) {
                (Qtype::A, IpAddr::V4(_)) | (Qtype::Aaaa, IpAddr::V6(_)) => {}
                _ => panic!("{a} answered for {qtype:?}"),
            }
        }
    }
    let upper = name.to_ascii_uppercase();
    assert_eq!(
        parse_answer(msg, id, &upper, qtype),
        answer,
        "the answer depends on the name's case"
    );
}
