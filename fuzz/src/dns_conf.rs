//! The resolver's files: resolv.conf (`dns::conf::ResolvConf::parse`), /etc/hosts
//! (`dns::conf::lookup_host`) and address literals (`dns::parse_literal`). Input: a name, a NUL, the
//! file's text.
//!
//! Checks: hosts names compare without ASCII case and a final dot on the name is ignored; no address
//! is listed twice; a literal written back parses to itself (the round trip).
use dockmon_agent::dns::conf::{lookup_host, ResolvConf};
use dockmon_agent::dns::parse_literal;

pub fn run(data: &[u8]) {
    let [name, file] = crate::fields::<2>(data);
    let (name, text) = (crate::text(name), crate::text(file));
    let conf = ResolvConf::parse(&text);
    assert_eq!(ResolvConf::parse(&text), conf);
    let found = lookup_host(&text, &name);
    for (i, a) in found.iter().enumerate() {
        assert!(!found[..i].contains(a), "{a} listed twice");
    }
    assert_eq!(
        lookup_host(&text, &name.to_ascii_uppercase()),
        found,
        "case matters"
    );
    if !name.ends_with('.') {
        assert_eq!(
            lookup_host(&text, &format!("{name}.")),
            found,
            "a final dot matters"
        );
    }
    for word in text.split_whitespace().take(64).chain([&*name]) {
        if let Some(ip) = parse_literal(word) {
            let written = ip.to_string();
            assert_eq!(parse_literal(&written), Some(ip), "{word:?} → {written:?}");
        }
    }
}
