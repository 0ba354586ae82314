//! HTTP proxies for the DockMon connection: `HTTP_PROXY`, `HTTPS_PROXY`, `NO_PROXY` (and their
//! lower-case names), as the Go agent's WebSocket dialer reads them (spec 1.1: gorilla/websocket
//! with Go's `httpproxy.FromEnvironment`), and the `CONNECT` tunnel (RFC 9110 §9.3.6).
//!
//! Read this first: Go's `golang.org/x/net/http/httpproxy` is the model, rule for rule:
//! - the upper-case name wins when set and non-empty, else the lower-case one;
//! - `wss://` (https) uses `HTTPS_PROXY`, `ws://` (http) uses `HTTP_PROXY`;
//! - a proxy value without a scheme is read as `http://`; only `http://` proxies are spoken here
//!   (a `https://` or `socks5://` proxy is a clear error naming the variable);
//! - `localhost` and loopback IPs never use a proxy;
//! - `NO_PROXY` is a comma list: `*` (no proxy at all), IP addresses and CIDR ranges (optionally
//!   `ip:port`, `[v6]:port`), domain names that match themselves and their subdomains (`example.com`),
//!   leading-dot or `*.` names that match subdomains only (`.example.com`), each optionally `:port`;
//!   domain rules never match an IP literal.
//!
//! Both kinds of DockMon URL go through a `CONNECT` tunnel (as gorilla's dialer does); TLS to DockMon
//! then runs inside the tunnel, so the proxy sees only the host name and port. Credentials come from
//! the proxy URL's userinfo and go out as `Proxy-Authorization: Basic`; they are never part of any
//! text this module returns ([`Proxy`]'s `Display` and `Debug` leave them out).
//!
//! Pure parts: [`Settings::from_env`], [`Settings::select`], [`emit_connect`], [`check_answer`].
//! I/O: [`connect`] (one request head out, one bounded answer head in; the answer must end where
//! the head ends, since the client speaks first in both TLS and WebSocket).
use crate::http::head::{self, Parsed};
use crate::limits::PROXY_ANSWER_MAX_BYTES;
use smol::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use std::fmt;
use std::net::IpAddr;

/// An HTTP proxy to tunnel through.
#[derive(Clone, PartialEq, Eq)]
pub struct Proxy {
    /// Host name or IP literal (IPv6 without brackets).
    pub host: String,
    /// Port (80 when the URL names none).
    pub port: u16,
    /// `user:password` already base64-encoded for `Proxy-Authorization: Basic`.
    auth: Option<String>,
    /// Which variable named it (for messages).
    pub from: &'static str,
}

impl Proxy {
    /// Whether the URL carried credentials (their value is never shown).
    pub fn has_auth(&self) -> bool {
        self.auth.is_some()
    }
}

impl fmt::Display for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let creds = if self.auth.is_some() { "***@" } else { "" };
        if self.host.contains(':') {
            write!(f, "http://{creds}[{}]:{}", self.host, self.port)
        } else {
            write!(f, "http://{creds}{}:{}", self.host, self.port)
        }
    }
}

impl fmt::Debug for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Proxy({self} from {})", self.from)
    }
}

/// Why the proxy settings or the tunnel failed.
#[derive(Debug)]
pub enum Error {
    /// A proxy variable holds a URL we cannot use.
    BadUrl {
        /// The variable.
        var: &'static str,
        /// What is wrong (never the credentials).
        why: String,
    },
    /// Talking to the proxy failed.
    Io(std::io::Error),
    /// The proxy's answer was not HTTP or was too long.
    Answer(String),
    /// The proxy refused the tunnel.
    Refused {
        /// Its status code.
        status: u16,
        /// Whether we sent credentials.
        sent_auth: bool,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::BadUrl { var, why } => write!(f, "{var}: {why}"),
            Error::Io(e) => write!(f, "proxy: {e}"),
            Error::Answer(why) => write!(f, "proxy: {why}"),
            Error::Refused {
                status: 407,
                sent_auth,
            } => write!(
                f,
                "proxy: 407 proxy authentication required{}",
                if *sent_auth {
                    "; the user or password in the proxy URL was refused"
                } else {
                    "; put user:password@ in the proxy URL"
                }
            ),
            Error::Refused { status, .. } => {
                write!(f, "proxy: CONNECT refused with HTTP {status}")
            }
        }
    }
}

impl std::error::Error for Error {}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Io(e)
    }
}

/// One `NO_PROXY` rule.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Rule {
    /// An IP network (a plain IP is a /32 or /128), with an optional port.
    Net {
        addr: IpAddr,
        prefix: u8,
        port: Option<u16>,
    },
    /// `.suffix` (with its dot), with an optional port; `exact` when the name itself matches too.
    Domain {
        suffix: String,
        exact: bool,
        port: Option<u16>,
    },
}

/// The proxy environment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    http: Option<Proxy>,
    https: Option<Proxy>,
    /// `NO_PROXY=*`.
    none: bool,
    rules: Vec<Rule>,
}

impl Settings {
    /// Reads the variables through `env` (a missing and an empty value are the same).
    pub fn from_env(env: impl Fn(&str) -> Option<String>) -> Result<Settings, Error> {
        let any = |upper: &'static str, lower: &'static str| {
            env(upper)
                .filter(|v| !v.is_empty())
                .map(|v| (upper, v))
                .or_else(|| env(lower).filter(|v| !v.is_empty()).map(|v| (lower, v)))
        };
        let mut s = Settings::default();
        if let Some((var, v)) = any("HTTP_PROXY", "http_proxy") {
            s.http = Some(parse_proxy(var, &v)?);
        }
        if let Some((var, v)) = any("HTTPS_PROXY", "https_proxy") {
            s.https = Some(parse_proxy(var, &v)?);
        }
        if let Some((_, v)) = any("NO_PROXY", "no_proxy") {
            for item in v.split(',') {
                let item = item.trim().to_ascii_lowercase();
                if item.is_empty() {
                    continue;
                }
                if item == "*" {
                    s.none = true;
                    s.rules.clear();
                    break;
                }
                if let Some(rule) = parse_rule(&item) {
                    s.rules.push(rule);
                }
            }
        }
        Ok(s)
    }

    /// The proxy for a DockMon URL (`secure` = `wss://`) at `host:port`, or `None` to connect
    /// directly.
    pub fn select(&self, secure: bool, host: &str, port: u16) -> Option<&Proxy> {
        let proxy = if secure { &self.https } else { &self.http }.as_ref()?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if self.none || host.eq_ignore_ascii_case("localhost") {
            return None;
        }
        let ip = host.parse::<IpAddr>().ok();
        if ip.is_some_and(|ip| ip.is_loopback()) {
            return None;
        }
        let lower = host.to_ascii_lowercase();
        let port_ok = |p: &Option<u16>| p.map_or(true, |p| p == port);
        let bypass = self.rules.iter().any(|rule| match (rule, ip) {
            (
                Rule::Net {
                    addr,
                    prefix,
                    port: p,
                },
                Some(ip),
            ) => in_net(ip, *addr, *prefix) && port_ok(p),
            (
                Rule::Domain {
                    suffix,
                    exact,
                    port: p,
                },
                None,
            ) => {
                (lower.ends_with(suffix.as_str()) || (*exact && lower == suffix[1..])) && port_ok(p)
            }
            _ => false,
        });
        (!bypass).then_some(proxy)
    }
}

fn parse_proxy(var: &'static str, value: &str) -> Result<Proxy, Error> {
    let bad = |why: &str| Error::BadUrl {
        var,
        why: why.to_string(),
    };
    let value = value.trim();
    let rest = match value.split_once("://") {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http") => rest,
        Some((scheme, _)) => {
            return Err(bad(&format!(
                "{scheme}:// proxies are not supported; use an http:// proxy (CONNECT)"
            )))
        }
        None => value,
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    let (host, port) = split_host_port(hostport).ok_or_else(|| {
        bad("the proxy URL needs a host (http://host:port or http://user:password@host:port)")
    })?;
    let port = match port {
        None => 80,
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| bad("the proxy URL's port is not a number from 1 to 65535"))?,
    };
    if !host
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-._:".contains(&b))
    {
        return Err(bad(
            "the proxy URL's host holds characters a host name cannot have",
        ));
    }
    let auth = match userinfo {
        None => None,
        Some(u) => {
            let decoded = percent_decode(u)
                .ok_or_else(|| bad("the proxy URL's user or password has a bad %-escape"))?;
            let mut out = vec![0u8; crate::ws::base64::encoded_len(decoded.len())];
            // `out` is exactly encoded_len long: cannot fail.
            let n = crate::ws::base64::encode(&decoded, &mut out).unwrap_or(0);
            out.truncate(n);
            Some(String::from_utf8_lossy(&out).into_owned())
        }
    };
    Ok(Proxy {
        host: host.to_string(),
        port,
        auth,
        from: var,
    })
}

/// `host`, `host:port`, `[v6]`, `[v6]:port`. The host must not be empty.
fn split_host_port(s: &str) -> Option<(&str, Option<&str>)> {
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (h, after) = rest.split_once(']')?;
        match after {
            "" => (h, None),
            p => (h, Some(p.strip_prefix(':')?)),
        }
    } else if s.matches(':').count() > 1 {
        (s, None) // a bare IPv6 address
    } else {
        match s.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    (!host.is_empty()).then_some((host, port))
}

fn percent_decode(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Some(out)
}

/// One `NO_PROXY` item (lower-cased, trimmed, not empty, not `*`); `None` for a malformed one, which
/// Go ignores too.
fn parse_rule(item: &str) -> Option<Rule> {
    if let Some((addr, prefix)) = item.split_once('/') {
        let addr: IpAddr = addr.parse().ok()?;
        let prefix: u8 = prefix.parse().ok()?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        return (prefix <= max).then_some(Rule::Net {
            addr,
            prefix,
            port: None,
        });
    }
    let (host, port) = match split_host_port(item) {
        Some((h, Some(p))) => (h, Some(p.parse::<u16>().ok()?)),
        Some((h, None)) => (h, None),
        None => return None,
    };
    if let Ok(addr) = host.parse::<IpAddr>() {
        let prefix = if addr.is_ipv4() { 32 } else { 128 };
        return Some(Rule::Net { addr, prefix, port });
    }
    let host = host
        .strip_prefix('*')
        .filter(|h| h.starts_with('.'))
        .unwrap_or(host);
    let (suffix, exact) = match host.strip_prefix('.') {
        Some(_) => (host.to_string(), false),
        None => (format!(".{host}"), true),
    };
    (suffix.len() > 1).then_some(Rule::Domain {
        suffix,
        exact,
        port,
    })
}

fn in_net(ip: IpAddr, net: IpAddr, prefix: u8) -> bool {
    let (a, b, bits) = match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(b)) => (u128::from(u32::from(a)), u128::from(u32::from(b)), 32),
        (IpAddr::V6(a), IpAddr::V6(b)) => (u128::from(a), u128::from(b), 128),
        // An IPv4-mapped IPv6 address is compared as IPv4, as Go's net.IP does.
        (IpAddr::V6(a), IpAddr::V4(_)) => match a.to_ipv4_mapped() {
            Some(v4) => return in_net(IpAddr::V4(v4), net, prefix),
            None => return false,
        },
        (IpAddr::V4(a), IpAddr::V6(_)) => {
            return in_net(IpAddr::V6(a.to_ipv6_mapped()), net, prefix)
        }
    };
    let prefix = u32::from(prefix).min(bits);
    if prefix == 0 {
        return true;
    }
    let shift = bits - prefix;
    (a >> shift) == (b >> shift)
}

/// Writes the `CONNECT host:port` request head into `out` (cleared first). `host` is a DNS name or
/// IP literal (IPv6 without brackets) as parsed from `DOCKMON_URL`.
pub fn emit_connect(out: &mut Vec<u8>, proxy: &Proxy, host: &str, port: u16) -> Result<(), Error> {
    if host.is_empty()
        || !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._:".contains(&b))
    {
        return Err(Error::Answer(format!(
            "cannot ask for a tunnel to {host:?}: not a host name"
        )));
    }
    let authority = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    out.clear();
    for part in [
        "CONNECT ",
        &authority,
        " HTTP/1.1\r\nHost: ",
        &authority,
        "\r\nUser-Agent: dockmon-agent/",
        crate::VERSION,
        "\r\n",
    ] {
        out.extend_from_slice(part.as_bytes());
    }
    if let Some(auth) = &proxy.auth {
        out.extend_from_slice(b"Proxy-Authorization: Basic ");
        out.extend_from_slice(auth.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    Ok(())
}

/// Checks the proxy's answer in `buf`: `Ok(true)` for a whole 2xx head that ends exactly at the end
/// of `buf`, `Ok(false)` when more bytes are needed, else the error.
pub fn check_answer(buf: &[u8], sent_auth: bool) -> Result<bool, Error> {
    // A CONNECT answer has no body whatever its headers say (RFC 9110 §9.3.6): treat it as a HEAD.
    match head::try_parse(buf, true, &[]) {
        Ok(Parsed::Partial) if buf.len() >= PROXY_ANSWER_MAX_BYTES => Err(Error::Answer(format!(
            "the answer to CONNECT is longer than {PROXY_ANSWER_MAX_BYTES} bytes (PROXY_ANSWER_MAX_BYTES)"
        ))),
        Ok(Parsed::Partial) => Ok(false),
        Ok(Parsed::Complete(h, _)) if !(200..300).contains(&h.status) => Err(Error::Refused {
            status: h.status,
            sent_auth,
        }),
        Ok(Parsed::Complete(_, len)) if len != buf.len() => Err(Error::Answer(
            "the proxy sent bytes after its answer to CONNECT, before we spoke".to_string(),
        )),
        Ok(Parsed::Complete(..)) => Ok(true),
        Err(e) => Err(Error::Answer(format!("bad answer to CONNECT: {e}"))),
    }
}

/// Asks `proxy` (already connected as `io`) for a tunnel to `host:port`. The caller bounds the time.
pub async fn connect<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut S,
    proxy: &Proxy,
    host: &str,
    port: u16,
) -> Result<(), Error> {
    let mut req = Vec::with_capacity(128);
    emit_connect(&mut req, proxy, host, port)?;
    io.write_all(&req).await?;
    io.flush().await?;
    let mut buf = [0u8; PROXY_ANSWER_MAX_BYTES];
    let mut len = 0;
    loop {
        // Byte-sized reads near the end of the head would cost syscalls; reads up to the cap are
        // fine because the tunnel's first bytes come only after we speak.
        let n = io.read(&mut buf[len..]).await?;
        if n == 0 {
            return Err(Error::Answer(
                "the proxy closed the connection before answering CONNECT".to_string(),
            ));
        }
        len += n;
        if check_answer(&buf[..len], proxy.has_auth())? {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(vars: &[(&str, &str)]) -> Result<Settings, Error> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_env(|k| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()))
    }

    #[test]
    fn proxy_urls() {
        let s = settings(&[
            ("HTTP_PROXY", "proxy.lan:3128"),
            ("https_proxy", "http://u%40x:p%3Ass@[fd00::1]:8080/"),
        ])
        .unwrap();
        let p = s.select(false, "dockmon.example.com", 80).unwrap();
        assert_eq!(
            (p.host.as_str(), p.port, p.from),
            ("proxy.lan", 3128, "HTTP_PROXY")
        );
        assert!(!p.has_auth());
        let p = s.select(true, "dockmon.example.com", 443).unwrap();
        assert_eq!(
            (p.host.as_str(), p.port, p.from),
            ("fd00::1", 8080, "https_proxy")
        );
        // "u@x:p:ss" in base64; never shown.
        assert_eq!(p.auth.as_deref(), Some("dUB4OnA6c3M="));
        assert_eq!(p.to_string(), "http://***@[fd00::1]:8080");
        assert!(!format!("{p:?}").contains("dUB4"));

        // Upper case wins over lower case; empty upper falls back to lower.
        let s = settings(&[("HTTP_PROXY", "a:1"), ("http_proxy", "b:2")]).unwrap();
        assert_eq!(s.select(false, "h", 80).unwrap().host, "a");
        let s = settings(&[("HTTP_PROXY", ""), ("http_proxy", "b:2")]).unwrap();
        assert_eq!(s.select(false, "h", 80).unwrap().host, "b");
        // Only HTTPS_PROXY: ws:// goes direct.
        let s = settings(&[("HTTPS_PROXY", "http://p")]).unwrap();
        assert!(s.select(false, "h", 80).is_none());
        assert_eq!(s.select(true, "h", 443).unwrap().port, 80);

        for (bad, want) in [
            ("socks5://p:1080", "socks5:// proxies are not supported"),
            ("https://p:443", "https:// proxies are not supported"),
            ("http://p:99999", "port"),
            ("http://:8080", "needs a host"),
            ("http://us%zzer:pw@p", "%-escape"),
            ("http://p q", "characters"),
        ] {
            let err = settings(&[("HTTPS_PROXY", bad)]).unwrap_err().to_string();
            assert!(
                err.starts_with("HTTPS_PROXY: ") && err.contains(want),
                "{bad}: {err}"
            );
            assert!(!err.contains("pw"), "{err}");
        }
    }

    #[test]
    fn no_proxy_rules_like_go() {
        let s = |no: &str| settings(&[("HTTPS_PROXY", "http://p:3128"), ("NO_PROXY", no)]).unwrap();
        // (NO_PROXY, host, port, proxied?)
        let cases: &[(&str, &str, u16, bool)] = &[
            ("", "dockmon.example.com", 443, true),
            ("", "localhost", 443, false),
            ("", "LOCALHOST", 443, false),
            ("", "127.0.0.1", 443, false),
            ("", "::1", 443, false),
            ("", "[::1]", 443, false),
            ("*", "dockmon.example.com", 443, false),
            ("a.com, *", "x.org", 443, false),
            ("example.com", "example.com", 443, false),
            ("example.com", "dockmon.example.com", 443, false),
            ("example.com", "notexample.com", 443, true),
            (".example.com", "example.com", 443, true),
            (".example.com", "dockmon.example.com", 443, false),
            ("*.example.com", "example.com", 443, true),
            ("*.example.com", "a.b.example.com", 443, false),
            ("EXAMPLE.com", "Dockmon.Example.COM", 443, false),
            ("example.com:8443", "dockmon.example.com", 443, true),
            ("example.com:8443", "dockmon.example.com", 8443, false),
            ("10.0.0.0/8", "10.1.2.3", 443, false),
            ("10.0.0.0/8", "11.1.2.3", 443, true),
            ("10.0.0.0/8", "ten.example", 443, true),
            ("192.168.1.5", "192.168.1.5", 443, false),
            ("192.168.1.5:8443", "192.168.1.5", 443, true),
            ("192.168.1.5:8443", "192.168.1.5", 8443, false),
            ("fd00::/8", "fd12::1", 443, false),
            ("[fd00::1]:443", "fd00::1", 443, false),
            ("fd00::1", "fd00::2", 443, true),
            // Domain rules never match IP literals; IP rules never match names.
            ("1.2.3.4", "one.example", 443, true),
            ("example.com", "93.184.216.34", 443, true),
            // Malformed items are ignored, the rest still apply.
            ("10.0.0.0/99, :80, example.com", "example.com", 443, false),
            ("10.0.0.0/99", "10.0.0.1", 443, true),
            (" , ,", "h.example", 443, true),
        ];
        for (no, host, port, proxied) in cases {
            assert_eq!(
                s(no).select(true, host, *port).is_some(),
                *proxied,
                "NO_PROXY={no:?} host {host}:{port}"
            );
        }
        // Lower-case no_proxy is read too.
        let s = settings(&[("HTTPS_PROXY", "p:1"), ("no_proxy", "example.com")]).unwrap();
        assert!(s.select(true, "example.com", 443).is_none());
    }

    #[test]
    fn connect_request() {
        let s = settings(&[("HTTP_PROXY", "http://user:secret@p:3128")]).unwrap();
        let p = s.select(false, "h", 80).unwrap();
        let mut out = Vec::new();
        emit_connect(&mut out, p, "dockmon.example.com", 443).unwrap();
        let text = String::from_utf8(out.clone()).unwrap();
        assert!(text.starts_with(
            "CONNECT dockmon.example.com:443 HTTP/1.1\r\nHost: dockmon.example.com:443\r\n"
        ));
        assert!(text.contains("\r\nProxy-Authorization: Basic dXNlcjpzZWNyZXQ=\r\n"));
        assert!(text.ends_with("\r\n\r\n"));
        emit_connect(&mut out, p, "fd00::1", 8443).unwrap();
        assert!(out.starts_with(b"CONNECT [fd00::1]:8443 HTTP/1.1\r\n"));
        assert!(emit_connect(&mut out, p, "a b\r\n", 80).is_err());
        assert!(emit_connect(&mut out, p, "", 80).is_err());
    }

    #[test]
    fn connect_answers() {
        let ok = b"HTTP/1.1 200 Connection established\r\nProxy-Agent: x\r\n\r\n";
        assert!(check_answer(ok, false).unwrap());
        for i in 0..ok.len() {
            assert!(!check_answer(&ok[..i], false).unwrap(), "partial at {i}");
        }
        // No body after a 2xx, even with a Content-Length.
        assert!(check_answer(b"HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\n", false).unwrap());
        let mut extra = ok.to_vec();
        extra.extend_from_slice(b"\x16\x03");
        assert!(check_answer(&extra, false)
            .unwrap_err()
            .to_string()
            .contains("after its answer"));
        let e =
            check_answer(b"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n", false).unwrap_err();
        assert!(e.to_string().contains("put user:password@"), "{e}");
        let e =
            check_answer(b"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n", true).unwrap_err();
        assert!(e.to_string().contains("was refused"), "{e}");
        let e = check_answer(b"HTTP/1.1 403 Forbidden\r\n\r\n", false).unwrap_err();
        assert!(e.to_string().contains("HTTP 403"), "{e}");
        assert!(check_answer(b"SSH-2.0-OpenSSH\r\n\r\n", false).is_err());
        let long = vec![b'a'; PROXY_ANSWER_MAX_BYTES];
        assert!(check_answer(&long, false).is_err());
    }
}
