//! One HTTP(S) `GET` of a release file, streamed to the caller, for the native self-update: the only
//! socket code of `selfupdate::native`.
//!
//! Built from what the agent already has: the request writer, head parser and chunked decoder of
//! [`crate::http`], the URL parser and redirect resolver of [`crate::probe::url`], the non-blocking
//! resolver [`crate::dns`], the proxy rules and `CONNECT` tunnel of [`crate::proxy`] (as for the
//! DockMon connection: `HTTPS_PROXY` for https, `HTTP_PROXY` for http, `NO_PROXY`; both through a
//! tunnel), and rustls with Mozilla's roots plus `SSL_CERT_FILE` ([`crate::tls`]). The certificate is
//! always verified, whatever `INSECURE_SKIP_VERIFY` says about DockMon: the binary and its checksum
//! come from the same server, so TLS is what authenticates them.
//!
//! Why not [`crate::probe`]: it keeps redirect targets in the head parser's 128-byte captured values,
//! and GitHub answers a release asset with a redirect to a signed URL of about 1 KB. Here the head is
//! read into this download's own buffer (`SELF_UPDATE_READ_BYTES`, freed afterwards) and `Location`
//! is taken from it directly.
//!
//! Bounds: at most `SELF_UPDATE_REDIRECTS_MAX_COUNT` redirects; a head larger than `HEAD_MAX_BYTES` is
//! an error; a body over the caller's cap is refused, before any byte of it when `Content-Length`
//! says so. The caller races the whole request against its deadline. One connection per hop
//! (`Connection: close`).
use crate::http::body::{Chunk, Chunked};
use crate::http::head::{self, Framing, Parsed};
use crate::limits::{SELF_UPDATE_READ_BYTES, SELF_UPDATE_REDIRECTS_MAX_COUNT};
use crate::probe::url::{self, Url};
use crate::proxy;
use crate::ws::conn::Transport;
use async_io::Async;
use rustls::ClientConfig;
use smol::io::{AsyncReadExt, AsyncWriteExt};
use std::fmt;
use std::net::TcpStream;
use std::sync::Arc;

/// Why a download failed. The texts name the URL without its query (signed URLs are long).
#[derive(Debug)]
pub enum Error {
    /// A URL (or redirect target) was refused.
    Url(String, url::Error),
    /// The proxy settings or the tunnel failed.
    Proxy(String),
    /// No address of the host answered.
    Connect(String),
    /// The TLS configuration (a bad `SSL_CERT_FILE`) or handshake failed.
    Tls(String),
    /// The HTTP exchange failed.
    Http(String, crate::http::Error),
    /// The server answered with another status than 200.
    Status(String, u16),
    /// More than `SELF_UPDATE_REDIRECTS_MAX_COUNT` redirects.
    Redirects(String),
    /// The body is larger than the cap.
    TooLarge {
        /// The URL.
        url: String,
        /// Bytes announced or received.
        len: u64,
        /// The cap.
        max: u64,
    },
    /// The caller's sink failed (the disk is full).
    Sink(std::io::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Url(u, e) => write!(f, "invalid URL {u}: {e}"),
            Error::Proxy(e) | Error::Connect(e) => write!(f, "{e}"),
            Error::Tls(e) => write!(f, "tls: {e}"),
            Error::Http(u, e) => write!(f, "GET {u}: {e}"),
            Error::Status(u, s) => write!(f, "GET {u}: HTTP {s}"),
            Error::Redirects(u) => write!(
                f,
                "GET {u}: more than {SELF_UPDATE_REDIRECTS_MAX_COUNT} redirects"
            ),
            Error::TooLarge { url, len, max } => {
                write!(f, "GET {url}: {len} bytes, more than the cap of {max}")
            }
            Error::Sink(e) => write!(f, "{e}"),
        }
    }
}

/// The URL up to its query, for messages.
fn short(u: &str) -> String {
    u.split('?').next().unwrap_or(u).to_string()
}

/// Connections for downloads: the TLS configuration and the proxy settings, read once.
pub struct Client {
    tls: Arc<ClientConfig>,
    proxies: proxy::Settings,
}

impl Client {
    /// Trusts Mozilla's roots and `cert_file` (`SSL_CERT_FILE`); proxies from the environment.
    pub fn new(cert_file: Option<&std::path::Path>) -> Result<Client, Error> {
        let (tls, _) =
            crate::tls::client_config(cert_file, false).map_err(|e| Error::Tls(e.to_string()))?;
        let proxies = proxy::Settings::from_env(|k| std::env::var(k).ok())
            .map_err(|e| Error::Proxy(e.to_string()))?;
        Ok(Client { tls, proxies })
    }

    /// `GET url`, following redirects; hands the body to `sink` slice by slice and returns its
    /// length. A body over `max` bytes is [`Error::TooLarge`]. No deadline of its own: the caller
    /// races it against one.
    pub async fn get(
        &self,
        url: &str,
        max: u64,
        sink: &mut dyn FnMut(&[u8]) -> std::io::Result<()>,
    ) -> Result<u64, Error> {
        let mut current = url.to_string();
        let mut next = String::new();
        let mut req = Vec::new();
        let mut buf = vec![0u8; SELF_UPDATE_READ_BYTES];
        for _ in 0..=SELF_UPDATE_REDIRECTS_MAX_COUNT {
            let u = url::parse(&current).map_err(|e| Error::Url(short(&current), e))?;
            let http = |e| Error::Http(short(&current), e);
            let mut io = self.connect(&u).await?;
            // Written here rather than with `http::request::emit`, whose targets stop at
            // REQUEST_TARGET_MAX_BYTES (Docker's); `url::parse` already refused spaces and control
            // bytes in both parts and bounds them at HEALTH_URL_MAX_BYTES.
            req.clear();
            for part in [
                "GET ",
                &u.target,
                " HTTP/1.1\r\nHost: ",
                u.authority,
                // The version mark of this build (`release::MARK`) as the User-Agent: what
                // keeps it in the binary for the next one's check.
                "\r\nUser-Agent: ",
                super::release::MARK,
                "\r\nConnection: close\r\n\r\n",
            ] {
                req.extend_from_slice(part.as_bytes());
            }
            io.write_all(&req).await.map_err(|e| http(e.into()))?;
            io.flush().await.map_err(|e| http(e.into()))?;
            let mut filled = 0;
            let (head, head_len) = loop {
                match head::try_parse(&buf[..filled], false, &[]).map_err(http)? {
                    Parsed::Complete(h, n) => break (h, n),
                    Parsed::Partial => {
                        let n = io
                            .read(&mut buf[filled..])
                            .await
                            .map_err(|e| http(e.into()))?;
                        if n == 0 {
                            return Err(http(if filled == 0 {
                                crate::http::Error::Closed
                            } else {
                                crate::http::Error::Truncated { what: "head" }
                            }));
                        }
                        filled += n;
                    }
                }
            };
            if matches!(head.status, 301 | 302 | 303 | 307 | 308) {
                let location = header(&buf[..head_len], "location").ok_or_else(|| {
                    http(crate::http::Error::Malformed("redirect without Location"))
                })?;
                url::resolve(&u, location, &mut next)
                    .map_err(|e| Error::Url(short(location), e))?;
                std::mem::swap(&mut current, &mut next);
                continue;
            }
            if head.status != 200 {
                return Err(Error::Status(short(&current), head.status));
            }
            let too_large = |len| Error::TooLarge {
                url: short(&current),
                len,
                max,
            };
            let mut remaining = match head.framing {
                Framing::Length(n) if n > max => return Err(too_large(n)),
                Framing::Length(n) => Some(n),
                Framing::Empty => Some(0),
                Framing::Chunked | Framing::UntilClose => None,
            };
            let mut chunked = matches!(head.framing, Framing::Chunked).then(Chunked::new);
            let (mut start, mut end) = (head_len, filled);
            let mut total = 0u64;
            loop {
                while start < end && remaining != Some(0) {
                    let data = if let Some(dec) = chunked.as_mut() {
                        let base = start;
                        let (n, chunk) = dec.next(&buf[start..end]).map_err(http)?;
                        start += n;
                        match chunk {
                            Chunk::Data(r) => base + r.start..base + r.end,
                            Chunk::NeedMore => continue,
                            Chunk::Done => return Ok(total),
                        }
                    } else if let Some(left) = remaining.as_mut() {
                        let n = (*left).min((end - start) as u64) as usize;
                        *left -= n as u64;
                        start += n;
                        start - n..start
                    } else {
                        let r = start..end;
                        start = end;
                        r
                    };
                    total += data.len() as u64;
                    if total > max {
                        return Err(too_large(total));
                    }
                    sink(&buf[data]).map_err(Error::Sink)?;
                }
                if remaining == Some(0) {
                    return Ok(total);
                }
                start = 0;
                end = io.read(&mut buf).await.map_err(|e| http(e.into()))?;
                if end == 0 {
                    return match (&chunked, remaining) {
                        (None, None) => Ok(total),
                        _ => Err(http(crate::http::Error::Truncated { what: "body" })),
                    };
                }
            }
        }
        Err(Error::Redirects(short(url)))
    }

    /// TCP to the host (or a tunnel through its proxy), then TLS for `https`.
    async fn connect(&self, u: &Url<'_>) -> Result<Transport, Error> {
        let host = u.host.trim_start_matches('[').trim_end_matches(']');
        let tcp = match self.proxies.select(u.tls, host, u.port) {
            None => tcp(host, u.port).await?,
            Some(p) => {
                let mut s = tcp(&p.host, p.port)
                    .await
                    .map_err(|e| Error::Proxy(format!("proxy {p} (from {}): {e}", p.from)))?;
                proxy::connect(&mut s, p, host, u.port)
                    .await
                    .map_err(|e| Error::Proxy(format!("{e} (proxy {p} from {})", p.from)))?;
                s
            }
        };
        if !u.tls {
            return Ok(Transport::Plain(tcp));
        }
        let name = crate::tls::server_name(u.host).map_err(|e| Error::Tls(e.to_string()))?;
        let s = futures_rustls::TlsConnector::from(self.tls.clone())
            .connect(name, tcp)
            .await
            .map_err(|e| Error::Tls(format!("{}: {e}", u.host)))?;
        Ok(Transport::Tls(Box::new(s)))
    }
}

/// Resolves `host` without blocking and connects to the first address that accepts.
async fn tcp(host: &str, port: u16) -> Result<Async<TcpStream>, Error> {
    let addrs = crate::dns::resolve(host, port)
        .await
        .map_err(|e| Error::Connect(e.to_string()))?;
    let mut last = None;
    for addr in addrs.iter() {
        match Async::<TcpStream>::connect(*addr).await {
            Ok(s) => return Ok(s),
            Err(e) => last = Some(format!("tcp {addr}: {e}")),
        }
    }
    Err(Error::Connect(
        last.unwrap_or_else(|| format!("{host}: no address")),
    ))
}

/// The value of header `name` in a complete response head (the first one; `None` when absent or
/// not UTF-8).
pub fn header<'a>(head: &'a [u8], name: &str) -> Option<&'a str> {
    head.split(|&b| b == b'\n').skip(1).find_map(|line| {
        let colon = line.iter().position(|&b| b == b':')?;
        let (n, v) = line.split_at(colon);
        if !n.eq_ignore_ascii_case(name.as_bytes()) {
            return None;
        }
        std::str::from_utf8(&v[1..]).ok().map(str::trim)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpListener;

    #[test]
    fn headers_are_found_case_insensitively() {
        let head =
            b"HTTP/1.1 302 Found\r\nContent-Length: 0\r\nlocation:  https://x/y?a=b \r\n\r\n";
        assert_eq!(header(head, "Location"), Some("https://x/y?a=b"));
        assert_eq!(header(head, "etag"), None);
    }

    /// Serves each accepted connection the next canned response.
    fn serve(responses: Vec<Vec<u8>>) -> u16 {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for r in responses {
                let (mut s, _) = l.accept().unwrap();
                let mut b = [0u8; 4096];
                let _ = s.read(&mut b);
                let r = String::from_utf8_lossy(&r).replace("{port}", &port.to_string());
                let _ = s.write_all(r.as_bytes());
            }
        });
        port
    }

    fn get(url: &str, max: u64) -> Result<Vec<u8>, Error> {
        let c = Client::new(None).unwrap();
        let mut got = Vec::new();
        async_io::block_on(c.get(url, max, &mut |b| {
            got.extend_from_slice(b);
            Ok(())
        }))?;
        Ok(got)
    }

    #[test]
    fn follows_long_redirects_and_decodes_bodies() {
        let long = "x".repeat(1200);
        let port = serve(vec![
            format!("HTTP/1.1 302 Found\r\nLocation: http://localhost:{{port}}/o?sig={long}\r\nContent-Length: 0\r\n\r\n").into_bytes(),
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n".to_vec(),
            b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nwxyz".to_vec(),
            b"HTTP/1.1 200 OK\r\n\r\nuntil close".to_vec(),
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_vec(),
            b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n".to_vec(),
            b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc".to_vec(),
        ]);
        let base = format!("http://127.0.0.1:{port}");
        assert_eq!(get(&format!("{base}/a"), 100).unwrap(), b"abcde");
        assert_eq!(get(&format!("{base}/b"), 100).unwrap(), b"wxyz");
        assert_eq!(get(&format!("{base}/c"), 100).unwrap(), b"until close");
        let e = get(&format!("{base}/d?q=1"), 100).unwrap_err();
        assert_eq!(e.to_string(), format!("GET {base}/d: HTTP 404"));
        let e = get(&format!("{base}/e"), 10).unwrap_err();
        assert!(
            matches!(
                e,
                Error::TooLarge {
                    len: 100,
                    max: 10,
                    ..
                }
            ),
            "{e}"
        );
        let e = get(&format!("{base}/f"), 100).unwrap_err();
        assert!(e.to_string().contains("middle of the body"), "{e}");
    }

    #[test]
    fn endless_redirects_stop() {
        let hop = b"HTTP/1.1 301 Moved\r\nLocation: /again\r\n\r\n".to_vec();
        let port = serve(vec![hop; SELF_UPDATE_REDIRECTS_MAX_COUNT + 1]);
        let e = get(&format!("http://127.0.0.1:{port}/"), 10).unwrap_err();
        assert!(matches!(e, Error::Redirects(_)), "{e}");
    }
}
