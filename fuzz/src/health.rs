//! Agent-side health checks (spec 3.6.1): the `<config>` object (`dockmon::health::config::parse`),
//! the expected-status list (`Expected::parse`) and the check URL with its redirects
//! (`probe::url::parse`, `probe::url::resolve`). The first byte picks the parser.
//!
//! Checks: an accepted config stays within its caps and carries no CR or LF into a request header
//! (no header injection from DockMon's JSON); an expected list is never empty and holds what it
//! parsed; a parsed URL written again as `scheme://authority target` parses to the same URL (the
//! round trip), with a port and an origin-form target.
use dockmon_agent::dockmon::health::config::{parse, Expected};
use dockmon_agent::limits::*;
use dockmon_agent::probe::url;

pub fn run(data: &[u8]) {
    let (selector, rest) = crate::split_first(data);
    let text = crate::text(rest);
    match selector % 3 {
        0 => {
            if let Ok(p) = parse(&text) {
                let c = &p.check;
                assert!(!c.container_id.is_empty());
                assert!(
                    (1..=HEALTH_TIMEOUT_MAX_S).contains(&c.timeout_s),
                    "{}",
                    c.timeout_s
                );
                assert!((1..=HEALTH_INTERVAL_MAX_S).contains(&c.interval_s));
                assert!(c.url.len() <= HEALTH_URL_MAX_BYTES);
                let mut n = 0;
                for (name, value) in c.headers() {
                    n += 1;
                    assert!(!name.is_empty());
                    for s in [name, value] {
                        assert!(!s.contains(['\r', '\n']), "CR/LF in a header: {s:?}");
                    }
                }
                assert!(n <= HEALTH_HEADER_MAX_COUNT);
                if let Some(auth) = c.authorization() {
                    assert!(!auth.contains(['\r', '\n']), "CR/LF in Authorization");
                }
            }
        }
        1 => {
            let e = Expected::parse(&text);
            assert!(
                (0..=u16::MAX).any(|s| e.contains(s)),
                "an empty expected list"
            );
            let t = text.trim();
            if t.bytes().all(|b| b.is_ascii_digit()) {
                if let Ok(code) = t.parse::<u16>() {
                    assert!(e.contains(code), "{code} parsed but not expected");
                }
            }
            assert_eq!(Expected::parse(&text), e, "not deterministic");
        }
        _ => {
            let (base, location) = text.split_once('\n').unwrap_or((&text, ""));
            let Ok(u) = url::parse(base) else { return };
            assert!(u.port >= 1);
            assert!(u.target.starts_with('/'), "target {:?}", u.target);
            let again = format!(
                "{}://{}{}",
                if u.tls { "https" } else { "http" },
                u.authority,
                u.target
            );
            let v = url::parse(&again).expect("a written URL does not parse");
            assert_eq!(
                (v.tls, v.host, v.port, v.authority, &*v.target),
                (u.tls, u.host, u.port, u.authority, &*u.target),
                "round trip of {base:?} through {again:?}"
            );
            let mut out = String::new();
            if url::resolve(&u, location, &mut out).is_ok() {
                let _ = url::parse(&out);
            }
        }
    }
}
