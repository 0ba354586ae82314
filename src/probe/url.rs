//! `http://` and `https://` URLs (RFC 3986 §3) as far as an outbound check needs them, and redirect
//! targets resolved against the URL that answered (RFC 9110 §10.2.2, RFC 3986 §5.2). Pure: no I/O;
//! parsing borrows the input, resolving writes into a caller `String`.
//!
//! Refused rather than guessed at: other schemes, user info (`user:pass@host`: a check's credentials go
//! in `auth_config_json`), an empty host, a bad port, and any space, control or non-ASCII byte (a URL
//! from the network must not be able to split the request head). A fragment is dropped, as clients do.
use crate::limits::HEALTH_URL_MAX_BYTES;
use std::borrow::Cow;
use std::fmt;

/// A parsed URL: where to connect and what to ask for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url<'a> {
    /// `https`.
    pub tls: bool,
    /// The host as written: a name, an IPv4 literal or a bracketed IPv6 literal.
    pub host: &'a str,
    /// The port (80 or 443 when none is written).
    pub port: u16,
    /// The authority without user info (`host[:port]`): the `Host` header (RFC 9110 §7.2).
    pub authority: &'a str,
    /// Path and query in origin form (RFC 9112 §3.2.1): `/` when the URL has no path.
    pub target: Cow<'a, str>,
}

/// Why a URL was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// Not `http://` or `https://`.
    Scheme,
    /// `scheme://` followed by no host.
    NoHost,
    /// The port is not a number from 1 to 65535.
    Port,
    /// `user:pass@` in the authority.
    UserInfo,
    /// A space, control or non-ASCII byte.
    Byte,
    /// Longer than `HEALTH_URL_MAX_BYTES`.
    TooLong {
        /// Its length.
        len: usize,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Scheme => write!(f, "only http:// and https:// URLs are supported"),
            Error::NoHost => write!(f, "no host"),
            Error::Port => write!(f, "the port is not a number from 1 to 65535"),
            Error::UserInfo => write!(
                f,
                "user info in the URL is not supported (use the check's authentication)"
            ),
            Error::Byte => write!(f, "a space, control or non-ASCII character"),
            Error::TooLong { len } => write!(
                f,
                "{len} bytes, longer than {HEALTH_URL_MAX_BYTES} (HEALTH_URL_MAX_BYTES)"
            ),
        }
    }
}

/// Splits `scheme://rest` when `scheme` is a valid scheme name (RFC 3986 §3.1).
fn split_scheme(s: &str) -> Option<(&str, &str)> {
    let (scheme, rest) = s.split_once("://")?;
    let mut bytes = scheme.bytes();
    let first_ok = bytes.next().is_some_and(|b| b.is_ascii_alphabetic());
    (first_ok && bytes.all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b)))
        .then_some((scheme, rest))
}

/// Parses an absolute `http://` or `https://` URL.
pub fn parse(s: &str) -> Result<Url<'_>, Error> {
    let s = s.trim();
    if s.len() > HEALTH_URL_MAX_BYTES {
        return Err(Error::TooLong { len: s.len() });
    }
    if !s.bytes().all(|b| (0x21..0x7f).contains(&b)) {
        return Err(Error::Byte);
    }
    let (scheme, rest) = split_scheme(s).ok_or(Error::Scheme)?;
    let tls = if scheme.eq_ignore_ascii_case("https") {
        true
    } else if scheme.eq_ignore_ascii_case("http") {
        false
    } else {
        return Err(Error::Scheme);
    };
    let rest = rest.split_once('#').map_or(rest, |(before, _)| before);
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, target) = rest.split_at(end);
    if authority.contains('@') {
        return Err(Error::UserInfo);
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let close = v6.find(']').ok_or(Error::NoHost)?;
        let host = &authority[..close + 2];
        match &authority[close + 2..] {
            "" => (host, None),
            p => (host, Some(p.strip_prefix(':').ok_or(Error::Port)?)),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty() || host == "[]" {
        return Err(Error::NoHost);
    }
    let default = if tls { 443 } else { 80 };
    let port = match port {
        None | Some("") => default,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 && p.bytes().all(|b| b.is_ascii_digit()) => n,
            _ => return Err(Error::Port),
        },
    };
    let target = if target.starts_with('/') {
        Cow::Borrowed(target)
    } else if target.is_empty() {
        Cow::Borrowed("/")
    } else {
        // Only a query: `http://h?x` asks for `/?x` (RFC 3986 §6.2.3).
        Cow::Owned(format!("/{target}"))
    };
    Ok(Url {
        tls,
        host,
        port,
        authority,
        target,
    })
}

/// Writes into `out` (cleared first) the absolute URL that `location` (a `Location` header value)
/// names relative to `base` (RFC 3986 §5.2: absolute, network-path, absolute-path, query-only and
/// relative-path references; dot segments removed). The result is checked with [`parse`] by the caller.
pub fn resolve(base: &Url<'_>, location: &str, out: &mut String) -> Result<(), Error> {
    out.clear();
    let location = location.trim();
    let location = location.split_once('#').map_or(location, |(l, _)| l);
    if split_scheme(location).is_some() {
        out.push_str(location);
    } else {
        out.push_str(if base.tls { "https:" } else { "http:" });
        if location.starts_with("//") {
            out.push_str(location);
        } else {
            out.push_str("//");
            out.push_str(base.authority);
            let (base_path, _) = base.target.split_once('?').unwrap_or((&base.target, ""));
            let (path, query) = match location.split_once('?') {
                Some((p, q)) => (p, Some(q)),
                None => (location, None),
            };
            let mut merged = String::new();
            let path = if path.starts_with('/') {
                path
            } else if path.is_empty() {
                // `?q` (or an empty reference): the base path with the new query (§5.2.2).
                base_path
            } else {
                // A relative path: after the base path's last `/` (§5.2.3).
                let dir = base_path.rfind('/').map_or("/", |i| &base_path[..=i]);
                merged.push_str(dir);
                merged.push_str(path);
                &merged
            };
            remove_dot_segments(path, out);
            if let Some(q) = query {
                out.push('?');
                out.push_str(q);
            }
        }
    }
    if out.len() > HEALTH_URL_MAX_BYTES {
        return Err(Error::TooLong { len: out.len() });
    }
    Ok(())
}

/// Appends `path` with `.` and `..` segments removed (RFC 3986 §5.2.4); `..` never climbs above `/`.
fn remove_dot_segments(path: &str, out: &mut String) {
    let root = out.len();
    let mut segments = path.split('/').skip(1).peekable();
    if path.is_empty() {
        out.push('/');
        return;
    }
    while let Some(seg) = segments.next() {
        let last = segments.peek().is_none();
        match seg {
            "." => {
                if last {
                    out.push('/');
                }
            }
            ".." => {
                let cut = out[root..].rfind('/').map_or(root, |i| root + i);
                out.truncate(cut);
                if last {
                    out.push('/');
                }
            }
            s => {
                out.push('/');
                out.push_str(s);
            }
        }
    }
    if out.len() == root {
        out.push('/');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_checks_use() {
        let u = parse("http://127.0.0.1:9/health").unwrap();
        assert_eq!(
            (u.tls, u.host, u.port, u.authority, &*u.target),
            (false, "127.0.0.1", 9, "127.0.0.1:9", "/health")
        );
        let u = parse(" HTTPS://Example.com ").unwrap();
        assert_eq!(
            (u.tls, u.host, u.port, &*u.target),
            (true, "Example.com", 443, "/")
        );
        let u = parse("http://[::1]:8080/a?b=c#frag").unwrap();
        assert_eq!((u.host, u.port, &*u.target), ("[::1]", 8080, "/a?b=c"));
        let u = parse("http://[::1]/").unwrap();
        assert_eq!((u.host, u.port, u.authority), ("[::1]", 80, "[::1]"));
        let u = parse("http://h:/x").unwrap();
        assert_eq!(u.port, 80);
        let u = parse("http://h?x=1").unwrap();
        assert_eq!(&*u.target, "/?x=1");
    }

    #[test]
    fn refuses_what_it_cannot_send() {
        let cases: &[(&str, Error)] = &[
            ("ftp://h/", Error::Scheme),
            ("127.0.0.1:80/health", Error::Scheme),
            ("", Error::Scheme),
            ("http:///x", Error::NoHost),
            ("http://:80/x", Error::NoHost),
            ("http://[]/", Error::NoHost),
            ("http://[::1/", Error::NoHost),
            ("http://h:0/", Error::Port),
            ("http://h:65536/", Error::Port),
            ("http://h:+80/", Error::Port),
            ("http://h:x/", Error::Port),
            ("http://[::1]x/", Error::Port),
            ("http://u:p@h/", Error::UserInfo),
            ("http://h/a b", Error::Byte),
            ("http://h/\r\nX: y", Error::Byte),
            ("http://h/\u{e9}", Error::Byte),
        ];
        for (url, want) in cases {
            assert_eq!(parse(url), Err(*want), "{url:?}");
        }
        let long = format!("http://h/{}", "a".repeat(HEALTH_URL_MAX_BYTES));
        assert!(matches!(parse(&long), Err(Error::TooLong { .. })));
    }

    #[test]
    fn resolves_redirect_targets() {
        let base = parse("http://h:8080/a/b/c?q=1").unwrap();
        let cases = [
            ("https://other/x", "https://other/x"),
            ("//other:81/y", "http://other:81/y"),
            ("/top", "http://h:8080/top"),
            ("/top?z#f", "http://h:8080/top?z"),
            ("d", "http://h:8080/a/b/d"),
            ("./d/", "http://h:8080/a/b/d/"),
            ("../d", "http://h:8080/a/d"),
            ("../../../../d", "http://h:8080/d"),
            ("..", "http://h:8080/a/"),
            ("?n=2", "http://h:8080/a/b/c?n=2"),
            ("/a/./b/../c", "http://h:8080/a/c"),
        ];
        let mut out = String::new();
        for (location, want) in cases {
            resolve(&base, location, &mut out).unwrap();
            assert_eq!(out, want, "{location:?}");
            assert!(parse(&out).is_ok(), "{out}");
        }
        let root = parse("https://h").unwrap();
        resolve(&root, "x", &mut out).unwrap();
        assert_eq!(out, "https://h/x");
        let long = "/".repeat(HEALTH_URL_MAX_BYTES);
        assert!(matches!(
            resolve(&root, &long, &mut out),
            Err(Error::TooLong { .. })
        ));
    }
}
