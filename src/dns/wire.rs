//! DNS messages (RFC 1035 §4): an A or AAAA query written into a caller buffer, and the answer to it
//! read from a borrowed datagram. Pure: no socket, clock or allocation.
//!
//! Read this first: RFC 1035 §4.1 (message layout), §4.1.4 (name compression), §2.3.4 (size limits);
//! RFC 2181 §10.1 (CNAME); RFC 4343 (names compare without regard to ASCII case).
//!
//! A UDP datagram is a whole message, so there is no "partial" answer here: a datagram that ends before
//! its counts say is [`Error::Ends`], distinct from every other fault. [`parse_answer`] reads every
//! record of all three sections before it trusts any, so any cut datagram is an error, never a shorter
//! answer.
//!
//! Invariants: every index into the message is checked (`get`) first, so arbitrary bytes give a clean
//! error, never a panic. Compression pointers must point before the start of the name piece that
//! holds them, which makes every name walk end (see `Labels`); names longer than 255 bytes are
//! refused (RFC 1035 §2.3.4).
//!
//! Policy when full: an answer keeps its first [`ANSWER_ADDR_MAX_COUNT`] addresses, in the server's
//! order, and drops the rest. A CNAME chain longer than [`CNAME_CHAIN_MAX_COUNT`] is an error.
//!
//! Not here, on purpose: EDNS (RFC 6891; we send no OPT record, so servers keep to 512 bytes), DNSSEC
//! (no validation; the agent trusts its LAN resolver as glibc does), and TCP (a truncated answer is
//! [`Error::Truncated`]; the names the agent looks up have a few addresses, far below 512 bytes).
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::ops::Range;

/// Fixed header of every message (RFC 1035 §4.1.1).
pub const HEADER_BYTES: usize = 12;
/// Longest host name in text, without a final dot: 255 wire bytes (RFC 1035 §2.3.4) less the first
/// length byte and the final root byte.
pub const NAME_MAX_BYTES: usize = 253;
/// Longest label (RFC 1035 §2.3.4): the length byte has 6 bits.
pub const LABEL_MAX_BYTES: usize = 63;
/// Longest name on the wire, length bytes and root included (RFC 1035 §2.3.4).
pub const WIRE_NAME_MAX_BYTES: usize = 255;
/// The largest query we build: header, one question name, QTYPE and QCLASS.
pub const QUERY_MAX_BYTES: usize = HEADER_BYTES + WIRE_NAME_MAX_BYTES + 4;
/// Addresses kept from one answer. A DockMon server has one or two; round-robin names rarely have more
/// than four per family, and the agent tries them in order.
pub const ANSWER_ADDR_MAX_COUNT: usize = 4;
/// CNAME hops followed inside one answer. Real chains (CDNs, service aliases) are two or three long;
/// a longer one is a loop or a misconfiguration (RFC 1034 §3.6.2 asks resolvers to catch loops).
pub const CNAME_CHAIN_MAX_COUNT: usize = 8;

/// Header flag: this message is a response (RFC 1035 §4.1.1).
const FLAG_QR: u16 = 0x8000;
/// Header flag: the message was truncated to fit the transport.
const FLAG_TC: u16 = 0x0200;
/// Header flag: recursion desired; we ask the resolver to do the work.
const FLAG_RD: u16 = 0x0100;
/// QCLASS and CLASS IN, the Internet.
const CLASS_IN: u16 = 1;
/// TYPE CNAME (RFC 1035 §3.2.2).
const TYPE_CNAME: u16 = 5;

/// The record types we ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Qtype {
    /// An IPv4 address (RFC 1035 §3.4.1).
    A,
    /// An IPv6 address (RFC 3596 §2.1).
    Aaaa,
}

impl Qtype {
    /// The TYPE code on the wire.
    pub fn code(self) -> u16 {
        match self {
            Qtype::A => 1,
            Qtype::Aaaa => 28,
        }
    }

    /// `A` or `AAAA`, for messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Qtype::A => "A",
            Qtype::Aaaa => "AAAA",
        }
    }
}

/// Why a host name cannot be put in a query. Checked before any socket is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameError {
    /// Nothing, or only a dot.
    Empty,
    /// Longer than [`NAME_MAX_BYTES`] (not counting a final dot).
    TooLong {
        /// The length.
        len: usize,
    },
    /// Two dots in a row, or a dot first.
    EmptyLabel,
    /// A label longer than [`LABEL_MAX_BYTES`].
    LabelTooLong {
        /// The label's length.
        len: usize,
    },
    /// A character other than a letter, digit, `-` or `_`.
    BadChar(char),
}

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NameError::Empty => write!(f, "empty host name"),
            NameError::TooLong { len } => write!(
                f,
                "host name of {len} bytes is longer than {NAME_MAX_BYTES} (RFC 1035 §2.3.4)"
            ),
            NameError::EmptyLabel => write!(f, "host name has an empty label (two dots in a row)"),
            NameError::LabelTooLong { len } => write!(
                f,
                "host name has a label of {len} bytes, longer than {LABEL_MAX_BYTES} (RFC 1035 §2.3.4)"
            ),
            NameError::BadChar(c) => write!(
                f,
                "host name has {c:?}; only letters, digits, '-' and '_' are allowed"
            ),
        }
    }
}

impl std::error::Error for NameError {}

/// Why a datagram is not a usable answer to our query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// Shorter than a header. Foreign (see [`Error::is_foreign`]).
    TooShort {
        /// The datagram's length.
        len: usize,
    },
    /// The ID is not the one we sent. Foreign.
    IdMismatch {
        /// The ID of our query.
        sent: u16,
        /// The ID in the datagram.
        got: u16,
    },
    /// QR is 0: a query, not a response. Foreign.
    NotResponse,
    /// The question is not ours (name, type or class), or there is not exactly one. Foreign.
    QuestionMismatch,
    /// TC is set: the server cut the answer to fit 512 bytes. We do not retry over TCP.
    Truncated,
    /// RCODE 3, NXDOMAIN: the name does not exist.
    NoSuchName,
    /// RCODE 2, SERVFAIL: the resolver could not get an answer (upstream down, DNSSEC failure).
    ServerFailure,
    /// Any other non-zero RCODE (1 FORMERR, 4 NOTIMP, 5 REFUSED, ...).
    Rcode(u8),
    /// The datagram ends before its header counts say it should.
    Ends {
        /// The section being read: "question", "answer section", ...
        at: &'static str,
    },
    /// A name breaks RFC 1035 §4.1.4 or §2.3.4.
    BadName(&'static str),
    /// Anything else that breaks RFC 1035 §4.1.
    Malformed(&'static str),
    /// The CNAME chain is longer than [`CNAME_CHAIN_MAX_COUNT`] or loops.
    CnameChain,
}

impl Error {
    /// True when the datagram cannot be the answer to our query at all (too short for a header, another
    /// ID, not a response, another question). The caller ignores it and keeps waiting, as glibc does,
    /// so a stray or forged datagram cannot end a lookup.
    pub fn is_foreign(&self) -> bool {
        matches!(
            self,
            Error::TooShort { .. }
                | Error::IdMismatch { .. }
                | Error::NotResponse
                | Error::QuestionMismatch
        )
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::TooShort { len } => write!(
                f,
                "datagram of {len} bytes is shorter than a DNS header ({HEADER_BYTES})"
            ),
            Error::IdMismatch { sent, got } => {
                write!(f, "answer id {got:#06x} is not the {sent:#06x} we sent")
            }
            Error::NotResponse => write!(f, "datagram is a query, not a response"),
            Error::QuestionMismatch => write!(f, "answer is to another question"),
            Error::Truncated => write!(
                f,
                "truncated answer (TC bit); this resolver does not retry over TCP"
            ),
            Error::NoSuchName => write!(f, "no such name (NXDOMAIN)"),
            Error::ServerFailure => write!(f, "server failure (SERVFAIL)"),
            Error::Rcode(code) => write!(f, "error {} (RCODE {code})", rcode_name(*code)),
            Error::Ends { at } => write!(f, "message ends inside the {at}"),
            Error::BadName(what) => write!(f, "bad name in answer: {what}"),
            Error::Malformed(what) => write!(f, "malformed answer: {what}"),
            Error::CnameChain => write!(
                f,
                "CNAME chain longer than {CNAME_CHAIN_MAX_COUNT} hops or looping"
            ),
        }
    }
}

impl std::error::Error for Error {}

/// The mnemonic of an RCODE (RFC 1035 §4.1.1, RFC 6895 §2.3).
fn rcode_name(code: u8) -> &'static str {
    match code {
        1 => "FORMERR",
        2 => "SERVFAIL",
        3 => "NXDOMAIN",
        4 => "NOTIMP",
        5 => "REFUSED",
        _ => "unknown",
    }
}

/// Addresses of one answer, in the server's order, at most [`ANSWER_ADDR_MAX_COUNT`]. Empty means
/// NODATA: the name exists but has no record of the type asked (RFC 2308 §2.2).
pub type AnswerAddrs = heapless::Vec<IpAddr, ANSWER_ADDR_MAX_COUNT>;

/// Checks that `name` can be sent in a query and returns it without a final dot.
///
/// Allowed: labels of 1 to 63 letters, digits, `-` or `_` (RFC 1123 §2.1 host names, plus `_` for
/// service-style names Docker and mDNS tools use), 253 bytes in all, one optional final dot.
pub fn check_name(name: &str) -> Result<&str, NameError> {
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if name.len() > NAME_MAX_BYTES {
        return Err(NameError::TooLong { len: name.len() });
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Err(NameError::EmptyLabel);
        }
        if label.len() > LABEL_MAX_BYTES {
            return Err(NameError::LabelTooLong { len: label.len() });
        }
        if let Some(c) = label
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
        {
            return Err(NameError::BadChar(c));
        }
    }
    Ok(name)
}

/// Writes a query for `name`'s `qtype` records into `buf` and returns its length: one question,
/// class IN, RD set (RFC 1035 §4.1.1), the caller's `id`. `name` is checked by [`check_name`] first.
pub fn emit_query(
    buf: &mut [u8; QUERY_MAX_BYTES],
    id: u16,
    name: &str,
    qtype: Qtype,
) -> Result<usize, NameError> {
    let name = check_name(name)?;
    buf[0..2].copy_from_slice(&id.to_be_bytes());
    buf[2..4].copy_from_slice(&FLAG_RD.to_be_bytes());
    buf[4..6].copy_from_slice(&1u16.to_be_bytes()); // QDCOUNT
    buf[6..12].fill(0); // ANCOUNT, NSCOUNT, ARCOUNT
    let mut at = HEADER_BYTES;
    // check_name bounds the name to 253 bytes, so labels, root, QTYPE and QCLASS fit QUERY_MAX_BYTES.
    for label in name.split('.') {
        buf[at] = label.len() as u8; // at most 63, checked above
        buf[at + 1..at + 1 + label.len()].copy_from_slice(label.as_bytes());
        at += 1 + label.len();
    }
    buf[at] = 0;
    buf[at + 1..at + 3].copy_from_slice(&qtype.code().to_be_bytes());
    buf[at + 3..at + 5].copy_from_slice(&CLASS_IN.to_be_bytes());
    Ok(at + 5)
}

/// Reads the answer `msg` to the query with `id` for `name`'s `qtype` records.
///
/// Checks in order: the header, the ID, QR, the question (one, ours, name compared without case per
/// RFC 4343; a reply with no question is accepted only with a non-zero RCODE, as some servers send
/// FORMERR and REFUSED), TC, RCODE, then every record of every section. Then follows CNAMEs from the
/// question name through the answer section (RFC 1034 §3.6.2: an alias has no other data, so only
/// records owned by the end of the chain count) and returns the addresses of type `qtype`, class IN,
/// owned by that name. Other records (other types, other owners, authority and additional data) are
/// ignored.
pub fn parse_answer(msg: &[u8], id: u16, name: &str, qtype: Qtype) -> Result<AnswerAddrs, Error> {
    let header = msg
        .get(..HEADER_BYTES)
        .ok_or(Error::TooShort { len: msg.len() })?;
    let got = u16::from_be_bytes([header[0], header[1]]);
    if got != id {
        return Err(Error::IdMismatch { sent: id, got });
    }
    let flags = u16::from_be_bytes([header[2], header[3]]);
    if flags & FLAG_QR == 0 {
        return Err(Error::NotResponse);
    }
    let count = |i: usize| u16::from_be_bytes([header[i], header[i + 1]]);
    let (qdcount, ancount, nscount, arcount) = (count(4), count(6), count(8), count(10));
    let rcode = (flags & 0x000f) as u8;

    let mut at = HEADER_BYTES;
    match qdcount {
        1 => at = check_question(msg, name, qtype)?,
        0 if rcode != 0 => {}
        _ => return Err(Error::QuestionMismatch),
    }
    if flags & FLAG_TC != 0 {
        return Err(Error::Truncated);
    }
    match rcode {
        0 => {}
        2 => return Err(Error::ServerFailure),
        3 => return Err(Error::NoSuchName),
        code => return Err(Error::Rcode(code)),
    }
    if (flags >> 11) & 0xf != 0 {
        return Err(Error::Malformed("opcode is not QUERY"));
    }

    // Walk every record once so that a cut or broken datagram fails here, before we use any of it.
    let answers_at = at;
    for (n, section) in [
        (ancount, "answer section"),
        (nscount, "authority section"),
        (arcount, "additional section"),
    ] {
        for _ in 0..n {
            at = read_record(msg, at, section)?.next;
        }
    }

    let answers = || Records {
        msg,
        at: answers_at,
        left: ancount,
    };
    // The question name sits right after the header when qdcount is 1, which it is past the RCODE check.
    let mut target = HEADER_BYTES;
    let mut hops = 0;
    'chain: loop {
        for record in answers() {
            // Records were all read once above, so this cannot fail now; stay defensive anyway.
            let record = record?;
            if record.rtype == TYPE_CNAME
                && record.class == CLASS_IN
                && names_equal(msg, record.owner, target)?
            {
                let end = Labels::new(msg, record.rdata.start, "answer section").end()?;
                if end > record.rdata.end {
                    return Err(Error::Malformed("CNAME name runs past its RDLENGTH"));
                }
                hops += 1;
                if hops > CNAME_CHAIN_MAX_COUNT {
                    return Err(Error::CnameChain);
                }
                target = record.rdata.start;
                continue 'chain;
            }
        }
        break;
    }

    let mut addrs = AnswerAddrs::new();
    for record in answers() {
        let record = record?;
        if record.rtype != qtype.code()
            || record.class != CLASS_IN
            || !names_equal(msg, record.owner, target)?
        {
            continue;
        }
        let data = &msg[record.rdata.clone()]; // read_record checked the range
        let addr = match (qtype, data.len()) {
            (Qtype::A, 4) => IpAddr::V4(Ipv4Addr::new(data[0], data[1], data[2], data[3])),
            (Qtype::Aaaa, 16) => {
                let mut octets = [0u8; 16];
                octets.copy_from_slice(data);
                IpAddr::V6(Ipv6Addr::from(octets))
            }
            (Qtype::A, _) => return Err(Error::Malformed("A record RDLENGTH is not 4")),
            (Qtype::Aaaa, _) => return Err(Error::Malformed("AAAA record RDLENGTH is not 16")),
        };
        // Policy when full: keep the first ANSWER_ADDR_MAX_COUNT, drop the rest.
        if addrs.push(addr).is_err() {
            break;
        }
    }
    Ok(addrs)
}

/// Checks the one question against ours; returns the offset after it.
fn check_question(msg: &[u8], name: &str, qtype: Qtype) -> Result<usize, Error> {
    let at = "question";
    let mut labels = Labels::new(msg, HEADER_BYTES, at);
    // The caller passes the name it queried; a final dot is not on the wire.
    let name = name.strip_suffix('.').unwrap_or(name);
    let mut ours = name.split('.');
    let mut same = true;
    while let Some(label) = labels.next_label()? {
        match ours.next() {
            Some(want) if label.eq_ignore_ascii_case(want.as_bytes()) => {}
            _ => same = false,
        }
    }
    if ours.next().is_some() {
        same = false;
    }
    let end = labels.end()?;
    let fixed = msg.get(end..end + 4).ok_or(Error::Ends { at })?;
    let rtype = u16::from_be_bytes([fixed[0], fixed[1]]);
    let class = u16::from_be_bytes([fixed[2], fixed[3]]);
    if !same || rtype != qtype.code() || class != CLASS_IN {
        return Err(Error::QuestionMismatch);
    }
    Ok(end + 4)
}

/// One resource record (RFC 1035 §4.1.3), as offsets into the message.
#[derive(Debug)]
struct Record {
    /// Where the owner name starts.
    owner: usize,
    rtype: u16,
    class: u16,
    /// RDATA, inside the message.
    rdata: Range<usize>,
    /// Where the next record starts.
    next: usize,
}

/// Reads the record at `at`, checking its owner name and that its RDATA is inside the message.
fn read_record(msg: &[u8], at: usize, section: &'static str) -> Result<Record, Error> {
    let end = Labels::new(msg, at, section).end()?;
    // TYPE, CLASS, TTL (4 bytes, unused: nothing is cached), RDLENGTH.
    let fixed = msg.get(end..end + 10).ok_or(Error::Ends { at: section })?;
    let rtype = u16::from_be_bytes([fixed[0], fixed[1]]);
    let class = u16::from_be_bytes([fixed[2], fixed[3]]);
    let rdlength = u16::from_be_bytes([fixed[8], fixed[9]]) as usize;
    let rdata = end + 10..end + 10 + rdlength;
    if rdata.end > msg.len() {
        return Err(Error::Ends { at: section });
    }
    Ok(Record {
        owner: at,
        rtype,
        class,
        next: rdata.end,
        rdata,
    })
}

/// The records of one section, read one after another.
struct Records<'a> {
    msg: &'a [u8],
    at: usize,
    left: u16,
}

impl Iterator for Records<'_> {
    type Item = Result<Record, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let record = read_record(self.msg, self.at, "answer section");
        if let Ok(r) = &record {
            self.at = r.next;
        } else {
            self.left = 0;
        }
        Some(record)
    }
}

/// True when the names at offsets `a` and `b` are the same, ignoring ASCII case (RFC 4343).
fn names_equal(msg: &[u8], a: usize, b: usize) -> Result<bool, Error> {
    if a == b {
        return Ok(true);
    }
    let mut left = Labels::new(msg, a, "answer section");
    let mut right = Labels::new(msg, b, "answer section");
    loop {
        match (left.next_label()?, right.next_label()?) {
            (None, None) => return Ok(true),
            (Some(x), Some(y)) if x.eq_ignore_ascii_case(y) => {}
            _ => return Ok(false),
        }
    }
}

/// Walks the labels of the name at an offset, following compression pointers (RFC 1035 §4.1.4).
///
/// Loop protection: a pointer must point before `floor`, the start of the piece of name that holds
/// it (the name's own start, then each pointer's target). `floor` falls with every jump, so a walk
/// takes at most one jump per byte of the message; the 255-byte name limit bounds the labels read.
/// Encoders only point back at names written earlier, so real messages pass.
struct Labels<'a> {
    msg: &'a [u8],
    /// The next length byte or pointer.
    at: usize,
    floor: usize,
    /// Wire bytes of the name so far: length bytes and label bytes.
    len: usize,
    /// The offset just past the name where it was written (after its root byte or first pointer).
    end: Option<usize>,
    done: bool,
    section: &'static str,
}

impl<'a> Labels<'a> {
    fn new(msg: &'a [u8], at: usize, section: &'static str) -> Self {
        Labels {
            msg,
            at,
            floor: at,
            len: 0,
            end: None,
            done: false,
            section,
        }
    }

    /// The next label, or `None` after the root.
    fn next_label(&mut self) -> Result<Option<&'a [u8]>, Error> {
        if self.done {
            return Ok(None);
        }
        loop {
            let ends = Error::Ends { at: self.section };
            let byte = *self.msg.get(self.at).ok_or(ends)?;
            match byte >> 6 {
                0b00 => {
                    let n = byte as usize;
                    self.len += 1 + n;
                    if self.len > WIRE_NAME_MAX_BYTES {
                        return Err(Error::BadName("name longer than 255 bytes"));
                    }
                    if n == 0 {
                        self.done = true;
                        self.end.get_or_insert(self.at + 1);
                        return Ok(None);
                    }
                    let label = self.msg.get(self.at + 1..self.at + 1 + n).ok_or(ends)?;
                    self.at += 1 + n;
                    return Ok(Some(label));
                }
                0b11 => {
                    let low = *self.msg.get(self.at + 1).ok_or(ends)?;
                    let target = (((byte & 0x3f) as usize) << 8) | low as usize;
                    if target >= self.floor {
                        return Err(Error::BadName(
                            "compression pointer does not point back before its name",
                        ));
                    }
                    self.end.get_or_insert(self.at + 2);
                    self.floor = target;
                    self.at = target;
                }
                // 0b01 was EDNS extended labels (RFC 6891 §5, deprecated); 0b10 is reserved.
                _ => return Err(Error::BadName("label type 01 or 10")),
            }
        }
    }

    /// Walks to the end of the name and returns the offset just past it where it was written.
    fn end(mut self) -> Result<usize, Error> {
        while self.next_label()?.is_some() {}
        // next_label sets `end` before it reports the root.
        self.end.ok_or(Error::Malformed("name without end"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A recorded pair from tests/fixtures/dns (see its README for the origin).
    struct Fixture {
        case: &'static str,
        query: &'static [u8],
        answer: &'static [u8],
        id: u16,
        name: &'static str,
        qtype: Qtype,
        expect: Result<&'static [&'static str], Error>,
    }

    macro_rules! fixture {
        ($case:literal, $id:expr, $name:expr, $qtype:expr, $expect:expr) => {
            Fixture {
                case: $case,
                query: include_bytes!(concat!("../../tests/fixtures/dns/", $case, ".query.bin")),
                answer: include_bytes!(concat!("../../tests/fixtures/dns/", $case, ".answer.bin")),
                id: $id,
                name: $name,
                qtype: $qtype,
                expect: $expect,
            }
        };
    }

    fn fixtures() -> [Fixture; 11] {
        use Qtype::*;
        [
            fixture!("a-single", 0x1a2b, "one.test", A, Ok(&["192.0.2.1"])),
            fixture!(
                "a-two",
                0x2233,
                "two.test",
                A,
                Ok(&["192.0.2.21", "192.0.2.22"])
            ),
            fixture!("aaaa-one", 0x3344, "two.test", Aaaa, Ok(&["2001:db8::22"])),
            fixture!("aaaa-nodata", 0x4455, "one.test", Aaaa, Ok(&[])),
            fixture!("a-cname", 0x5566, "alias.test", A, Ok(&["192.0.2.1"])),
            fixture!(
                "a-cname-chain",
                0x6677,
                "alias2.test",
                A,
                Ok(&["192.0.2.1"])
            ),
            fixture!(
                "a-nxdomain",
                0x7788,
                "missing.test",
                A,
                Err(Error::NoSuchName)
            ),
            fixture!("a-truncated", 0x8899, "big.test", A, Err(Error::Truncated)),
            fixture!("a-mixed-case", 0x99aa, "OnE.TeSt", A, Ok(&["192.0.2.1"])),
            fixture!("a-servfail", 0xaabb, "x.fail", A, Err(Error::ServerFailure)),
            fixture!("a-refused", 0xbbcc, "x.example", A, Err(Error::Rcode(5))),
        ]
    }

    fn parse(msg: &[u8], id: u16, name: &str, qtype: Qtype) -> Result<Vec<String>, Error> {
        parse_answer(msg, id, name, qtype).map(|a| a.iter().map(|ip| ip.to_string()).collect())
    }

    /// A small PRNG (xorshift64*) so the arbitrary-bytes tests need no dependency; seeds are printed.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    #[test]
    fn recorded_answers_parse_to_their_addresses_or_errors() {
        for f in fixtures() {
            let want = f.expect.map(|a| a.iter().map(|s| s.to_string()).collect());
            assert_eq!(parse(f.answer, f.id, f.name, f.qtype), want, "{}", f.case);
        }
    }

    #[test]
    fn our_queries_match_the_recorded_ones_byte_for_byte() {
        for f in fixtures() {
            let mut buf = [0u8; QUERY_MAX_BYTES];
            let n = emit_query(&mut buf, f.id, f.name, f.qtype).unwrap();
            assert_eq!(&buf[..n], f.query, "{}", f.case);
        }
    }

    #[test]
    fn question_is_compared_without_case_and_with_a_final_dot() {
        let f = &fixtures()[0];
        assert_eq!(
            parse(f.answer, f.id, "ONE.test.", Qtype::A).unwrap(),
            ["192.0.2.1"]
        );
    }

    #[test]
    fn foreign_datagrams_are_told_apart() {
        let f = &fixtures()[0];
        // Another id; other names (longer, shorter, different); another type.
        let foreign = [
            parse(f.answer, 0x1a2c, f.name, f.qtype),
            parse(f.answer, f.id, "two.test", f.qtype),
            parse(f.answer, f.id, "one.test.x", f.qtype),
            parse(f.answer, f.id, "one", f.qtype),
            parse(f.answer, f.id, f.name, Qtype::Aaaa),
        ];
        for (i, got) in foreign.into_iter().enumerate() {
            let err = got.expect_err("a foreign datagram parsed");
            assert!(err.is_foreign(), "case {i}: {err}");
        }
        // What our query's answer can say is never foreign.
        for f in fixtures() {
            if let Err(e) = f.expect {
                assert!(!e.is_foreign(), "{}", f.case);
            }
        }
        assert_eq!(
            parse(f.answer, 0x1a2c, f.name, f.qtype),
            Err(Error::IdMismatch {
                sent: 0x1a2c,
                got: 0x1a2b
            })
        );
        // Our own query coming back (QR = 0) is not an answer.
        assert_eq!(
            parse(f.query, f.id, f.name, f.qtype),
            Err(Error::NotResponse)
        );
        assert_eq!(
            parse(&f.answer[..11], f.id, f.name, f.qtype),
            Err(Error::TooShort { len: 11 })
        );
        // Class CH in the question.
        let mut chaos = f.answer.to_vec();
        chaos[12 + 10 + 3] = 3;
        assert_eq!(
            parse(&chaos, f.id, f.name, f.qtype),
            Err(Error::QuestionMismatch)
        );
    }

    #[test]
    fn reply_without_question_is_accepted_only_with_an_error_code() {
        // REFUSED, no question: some servers answer FORMERR and REFUSED this way.
        let refused = [0xbb, 0xcc, 0x81, 0x85, 0, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(
            parse(&refused, 0xbbcc, "x.example", Qtype::A),
            Err(Error::Rcode(5))
        );
        let noerror = [0xbb, 0xcc, 0x81, 0x80, 0, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(
            parse(&noerror, 0xbbcc, "x.example", Qtype::A),
            Err(Error::QuestionMismatch)
        );
    }

    #[test]
    fn every_truncation_of_every_recorded_answer_is_an_error() {
        for f in fixtures() {
            for len in 0..f.answer.len() {
                let cut = &f.answer[..len];
                let got = parse_answer(cut, f.id, f.name, f.qtype);
                match got {
                    Err(Error::TooShort { .. }) => assert!(len < HEADER_BYTES, "{} {len}", f.case),
                    Err(Error::Ends { .. }) => {}
                    // The error codes and TC come before the records are read.
                    Err(e) if f.expect == Err(e) => {}
                    other => panic!("{} cut to {len} bytes: {other:?}", f.case),
                }
            }
        }
    }

    #[test]
    fn every_one_byte_change_of_every_recorded_answer_is_clean() {
        // Not a panic, whatever the result: 256 values at every offset.
        for f in fixtures() {
            let mut msg = f.answer.to_vec();
            for i in 0..msg.len() {
                let keep = msg[i];
                for v in 0..=255u8 {
                    msg[i] = v;
                    let _ = parse_answer(&msg, f.id, f.name, f.qtype);
                }
                msg[i] = keep;
            }
        }
    }

    #[test]
    fn arbitrary_bytes_give_a_clean_result() {
        let seed = 0x0d0c_6d0e_u64;
        let mut rng = Rng(seed);
        let f = &fixtures()[5]; // the CNAME chain: the most pointers
        for round in 0..20_000 {
            let len = rng.below(600);
            let mut msg: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            if round % 2 == 0 && len >= HEADER_BYTES {
                // Our id and QR, so the parse goes past the header checks.
                msg[0..2].copy_from_slice(&f.id.to_be_bytes());
                msg[2] |= 0x80;
                msg[3] &= 0xf0;
                msg[4..6].copy_from_slice(&1u16.to_be_bytes());
            }
            if round % 4 == 0 && len > f.answer.len() {
                // A real question and header, random records after it.
                msg[..f.answer.len()].copy_from_slice(f.answer);
                msg[7] = rng.next() as u8 % 8;
            }
            let _ = parse_answer(&msg, f.id, f.name, f.qtype);
        }
        // Random splices of the recorded answers.
        for _ in 0..20_000 {
            let f = &fixtures()[rng.below(11)];
            let mut msg = f.answer.to_vec();
            for _ in 0..1 + rng.below(4) {
                let i = rng.below(msg.len());
                msg[i] = rng.next() as u8;
            }
            let _ = parse_answer(&msg, f.id, f.name, f.qtype);
        }
    }

    /// Builds an answer to a query for `one.test` A (id 0x0101) with `records` after the question.
    fn answer(ancount: u16, records: &[u8]) -> Vec<u8> {
        let mut m = vec![0x01, 0x01, 0x81, 0x80, 0, 1];
        m.extend_from_slice(&ancount.to_be_bytes());
        m.extend_from_slice(&[0, 0, 0, 0]);
        m.extend_from_slice(b"\x03one\x04test\x00\x00\x01\x00\x01");
        m.extend_from_slice(records);
        m
    }

    /// Type, class IN, TTL 60, and RDATA with its length.
    fn rr(rtype: u16, rdata: &[u8]) -> Vec<u8> {
        let mut r = rtype.to_be_bytes().to_vec();
        r.extend_from_slice(&[0, 1, 0, 0, 0, 60]);
        r.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        r.extend_from_slice(rdata);
        r
    }

    #[test]
    fn pointer_loops_and_forward_pointers_are_refused() {
        // Owner name is a pointer to itself (offset 26), then to the next byte.
        for owner in [&[0xc0, 26][..], &[0xc0, 27], &[0xc0, 0xff]] {
            let mut records = owner.to_vec();
            records.extend(rr(1, &[192, 0, 2, 9]));
            let msg = answer(1, &records);
            assert!(
                matches!(
                    parse(&msg, 0x0101, "one.test", Qtype::A),
                    Err(Error::BadName(_))
                ),
                "{owner:?}"
            );
        }
        // Two names pointing at each other: record 1 owner "\x01a" + ptr→record 2, record 2 → record 1.
        let mut records = b"\x01a\xc0\x2f".to_vec(); // at 26; its pointer targets 47, ahead of it
        records.extend(rr(1, &[192, 0, 2, 9])); // 30..44
        records.extend(b"\x01b\xc0\x1a"); // at 44, pointing back at 26
        records.extend(rr(1, &[192, 0, 2, 9]));
        let msg = answer(2, &records);
        assert!(matches!(
            parse(&msg, 0x0101, "one.test", Qtype::A),
            Err(Error::BadName(_))
        ));
    }

    #[test]
    fn long_names_through_pointers_are_refused() {
        // Names of a 63-byte label and a pointer to the name before: the fourth passes 255 bytes.
        let mut records = Vec::new();
        let mut prev = 12usize; // the question name
        let base = answer(0, &[]).len();
        for _ in 0..5 {
            let here = base + records.len();
            records.push(63);
            records.extend([b'x'; 63]);
            records.extend([0xc0 | (prev >> 8) as u8, prev as u8]);
            records.extend(rr(16, b"\x00")); // TXT, ignored
            prev = here;
        }
        let msg = answer(5, &records);
        assert_eq!(
            parse(&msg, 0x0101, "one.test", Qtype::A),
            Err(Error::BadName("name longer than 255 bytes"))
        );
    }

    #[test]
    fn cname_loops_and_long_chains_are_errors() {
        // one.test CNAME one.test: a loop of one.
        let mut records = vec![0xc0, 12];
        records.extend(rr(TYPE_CNAME, &[0xc0, 12]));
        let msg = answer(1, &records);
        assert_eq!(
            parse(&msg, 0x0101, "one.test", Qtype::A),
            Err(Error::CnameChain)
        );
    }

    #[test]
    fn cname_chains_up_to_the_limit_are_followed() {
        // one.test CNAME h1, h1 CNAME h2, ..., then an A for the last name.
        let chain = |hops: usize| {
            let mut records = vec![0xc0, 12];
            records.extend(rr(TYPE_CNAME, b"\x02h1\x00"));
            for i in 1..hops {
                records.extend(format!("\x02h{i}\x00").as_bytes());
                records.extend(rr(TYPE_CNAME, format!("\x02h{}\x00", i + 1).as_bytes()));
            }
            records.extend(format!("\x02h{hops}\x00").as_bytes());
            records.extend(rr(1, &[192, 0, 2, hops as u8]));
            answer(hops as u16 + 1, &records)
        };
        let longest = chain(CNAME_CHAIN_MAX_COUNT);
        assert_eq!(
            parse(&longest, 0x0101, "one.test", Qtype::A).unwrap(),
            ["192.0.2.8"]
        );
        let too_long = chain(CNAME_CHAIN_MAX_COUNT + 1);
        assert_eq!(
            parse(&too_long, 0x0101, "one.test", Qtype::A),
            Err(Error::CnameChain)
        );
    }

    #[test]
    fn cname_followed_in_any_order_and_other_owners_ignored() {
        // A for the target first, then an A for an unrelated name, then the CNAME.
        let mut records = b"\x06target\x00".to_vec(); // at 26
        records.extend(rr(1, &[192, 0, 2, 7]));
        records.extend(b"\x05other\x00");
        records.extend(rr(1, &[192, 0, 2, 66]));
        records.extend([0xc0, 12]);
        records.extend(rr(TYPE_CNAME, &[0xc0, 26]));
        // An A for the alias itself is not data of the chain's end (RFC 1034 §3.6.2).
        records.extend([0xc0, 12]);
        records.extend(rr(1, &[192, 0, 2, 99]));
        let msg = answer(4, &records);
        assert_eq!(
            parse(&msg, 0x0101, "one.test", Qtype::A).unwrap(),
            ["192.0.2.7"]
        );
    }

    #[test]
    fn cname_without_data_is_nodata() {
        let mut records = vec![0xc0, 12];
        records.extend(rr(TYPE_CNAME, b"\x06target\x00"));
        let msg = answer(1, &records);
        assert_eq!(
            parse(&msg, 0x0101, "one.test", Qtype::A).unwrap(),
            Vec::<String>::new()
        );
    }

    #[test]
    fn bad_rdata_is_malformed() {
        let mut records = vec![0xc0, 12];
        records.extend(rr(1, &[192, 0, 2]));
        let msg = answer(1, &records);
        assert!(matches!(
            parse(&msg, 0x0101, "one.test", Qtype::A),
            Err(Error::Malformed(_))
        ));
        // A CNAME whose name runs past its RDLENGTH.
        let mut records = vec![0xc0, 12];
        records.extend(rr(TYPE_CNAME, b"\x06tar"));
        records.extend(b"get\x00");
        let msg = answer(1, &records);
        assert!(matches!(
            parse(&msg, 0x0101, "one.test", Qtype::A),
            Err(Error::Malformed(_))
        ));
    }

    #[test]
    fn only_the_first_addresses_are_kept() {
        let mut records = Vec::new();
        for i in 0..10u8 {
            records.extend([0xc0, 12]);
            records.extend(rr(1, &[192, 0, 2, i]));
        }
        let msg = answer(10, &records);
        let got = parse(&msg, 0x0101, "one.test", Qtype::A).unwrap();
        assert_eq!(got, ["192.0.2.0", "192.0.2.1", "192.0.2.2", "192.0.2.3"]);
    }

    #[test]
    fn other_classes_and_types_are_ignored() {
        let mut records = vec![0xc0, 12];
        let mut chaos = rr(1, &[192, 0, 2, 1]);
        chaos[3] = 3; // class CH
        records.extend(chaos);
        records.extend([0xc0, 12]);
        records.extend(rr(28, &[0; 16])); // AAAA in an A answer
        records.extend([0xc0, 12]);
        records.extend(rr(1, &[192, 0, 2, 2]));
        let msg = answer(3, &records);
        assert_eq!(
            parse(&msg, 0x0101, "one.test", Qtype::A).unwrap(),
            ["192.0.2.2"]
        );
    }

    #[test]
    fn names_are_checked_before_a_query_is_built() {
        let long_label = "a".repeat(64);
        let long_name = [
            "a".repeat(63),
            "b".repeat(63),
            "c".repeat(63),
            "d".repeat(62),
        ]
        .join(".");
        assert_eq!(long_name.len(), 254);
        let cases: &[(&str, Result<&str, NameError>)] = &[
            ("dockmon.lan", Ok("dockmon.lan")),
            ("dockmon.lan.", Ok("dockmon.lan")),
            ("DockMon-1_x", Ok("DockMon-1_x")),
            ("", Err(NameError::Empty)),
            (".", Err(NameError::Empty)),
            ("a..b", Err(NameError::EmptyLabel)),
            (".a", Err(NameError::EmptyLabel)),
            ("a.b..", Err(NameError::EmptyLabel)),
            (&long_label, Err(NameError::LabelTooLong { len: 64 })),
            (&long_name, Err(NameError::TooLong { len: 254 })),
            ("dock mon", Err(NameError::BadChar(' '))),
            ("dockmon.lan:8080", Err(NameError::BadChar(':'))),
            ("dóckmon", Err(NameError::BadChar('ó'))),
            ("a/b", Err(NameError::BadChar('/'))),
        ];
        for (name, want) in cases {
            assert_eq!(check_name(name), *want, "{name:?}");
        }
        // The longest allowed name fills the buffer exactly.
        let longest = &long_name[..253];
        let mut buf = [0u8; QUERY_MAX_BYTES];
        assert_eq!(
            emit_query(&mut buf, 7, longest, Qtype::Aaaa),
            Ok(QUERY_MAX_BYTES)
        );
        assert_eq!(
            emit_query(&mut buf, 7, "a b", Qtype::A),
            Err(NameError::BadChar(' '))
        );
    }

    #[test]
    fn error_texts_are_one_line_and_name_the_values() {
        let texts = [
            Error::IdMismatch { sent: 1, got: 2 }.to_string(),
            Error::Truncated.to_string(),
            Error::Rcode(5).to_string(),
            Error::Ends {
                at: "answer section",
            }
            .to_string(),
            NameError::LabelTooLong { len: 64 }.to_string(),
        ];
        assert_eq!(texts[0], "answer id 0x0002 is not the 0x0001 we sent");
        assert!(texts[1].contains("TCP"), "{}", texts[1]);
        assert_eq!(texts[2], "error REFUSED (RCODE 5)");
        assert_eq!(texts[3], "message ends inside the answer section");
        assert!(texts[4].contains("64") && texts[4].contains("63"));
        assert!(texts.iter().all(|t| !t.contains('\n')));
    }
}
