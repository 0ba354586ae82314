//! The byte stream to the engine: a unix socket (the usual case), TCP, or TLS over TCP
//! (`DOCKER_HOST=tcp://…` with `DOCKER_TLS_VERIFY`). One enum, so `http::Conn` and the client stay
//! one non-generic type; the unix path costs one match per read or write. The TLS stream is boxed
//! (about 1 KiB of rustls state) so that unix and TCP connections stay small.
//!
//! TLS as the docker CLI does it: the engine's certificate must chain to `ca.pem` alone (not the
//! web roots) and name the host of `DOCKER_HOST`; the agent presents `cert.pem` with `key.pem`.
use crate::limits::ENGINE_CONNECT_TIMEOUT_MS;
use async_io::{Async, Timer};
use futures_rustls::client::TlsStream;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use smol::io::{AsyncRead, AsyncWrite};
use std::io;
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

/// A connection to the engine.
pub enum Stream {
    /// `unix://`
    Unix(Async<UnixStream>),
    /// `tcp://` without TLS.
    Tcp(Async<TcpStream>),
    /// `tcp://` with `DOCKER_TLS_VERIFY`.
    Tls(Box<TlsStream<Async<TcpStream>>>),
}

impl std::fmt::Debug for Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Stream::Unix(_) => "Stream::Unix",
            Stream::Tcp(_) => "Stream::Tcp",
            Stream::Tls(_) => "Stream::Tls",
        })
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Unix(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Unix(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Unix(s) => Pin::new(s).poll_flush(cx),
            Stream::Tcp(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Unix(s) => Pin::new(s).poll_close(cx),
            Stream::Tcp(s) => Pin::new(s).poll_close(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_close(cx),
        }
    }
}

/// The rustls configuration for a TLS engine from `dir` (`DOCKER_CERT_PATH`): trust `ca.pem` only,
/// present `cert.pem` with `key.pem`. Errors say which file is wrong.
pub fn tls_config(dir: &Path) -> Result<Arc<rustls::ClientConfig>, String> {
    let read_certs = |name: &str| -> Result<Vec<CertificateDer<'static>>, String> {
        let path = dir.join(name);
        let certs = CertificateDer::pem_file_iter(&path)
            .map_err(|e| format!("{name}: {e}"))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("{name}: {e}"))?;
        if certs.is_empty() {
            return Err(format!("{name}: no certificate in it"));
        }
        Ok(certs)
    };
    let mut roots = rustls::RootCertStore::empty();
    for ca in read_certs("ca.pem")? {
        roots
            .add(ca)
            .map_err(|e| format!("ca.pem: a certificate was refused: {e}"))?;
    }
    let chain = read_certs("cert.pem")?;
    let key =
        PrivateKeyDer::from_pem_file(dir.join("key.pem")).map_err(|e| format!("key.pem: {e}"))?;
    let mut config = rustls::ClientConfig::builder_with_provider(crate::tls::provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .map_err(|e| format!("cert.pem/key.pem: {e}"))?;
    // No session resumption: connections to the engine are few and pooled, so it saves little, and
    // an OpenSSL server that verifies client certificates without a session id context (socat, stunnel
    // setups in front of a socket) answers a resumption attempt with an internal_error alert.
    config.resumption = rustls::client::Resumption::disabled();
    Ok(Arc::new(config))
}

/// What went wrong dialling TCP, for the client's error.
pub enum DialError {
    /// connect(2) failed or timed out (`None`).
    Io(Option<io::Error>),
    /// The TLS handshake failed.
    Handshake(String),
    /// The host name did not resolve.
    Resolve(String),
}

async fn timeout<T>() -> Option<T> {
    Timer::after(Duration::from_millis(ENGINE_CONNECT_TIMEOUT_MS)).await;
    None
}

/// Connects to `host:port`, and runs the TLS handshake when `tls` is given; within
/// `ENGINE_CONNECT_TIMEOUT_MS` for each stage.
pub async fn dial_tcp(
    host: &str,
    port: u16,
    tls: Option<&Arc<rustls::ClientConfig>>,
) -> Result<Stream, DialError> {
    let addrs = crate::dns::resolve(host, port)
        .await
        .map_err(|e| DialError::Resolve(e.to_string()))?;
    let mut last = DialError::Io(None);
    let mut tcp = None;
    for addr in addrs.iter() {
        let connect = async { Some(Async::<TcpStream>::connect(*addr).await) };
        match smol::future::or(connect, timeout()).await {
            Some(Ok(s)) => {
                tcp = Some(s);
                break;
            }
            Some(Err(e)) => last = DialError::Io(Some(e)),
            None => last = DialError::Io(None),
        }
    }
    let tcp = tcp.ok_or(last)?;
    let _ = tcp.get_ref().set_nodelay(true);
    let Some(config) = tls else {
        return Ok(Stream::Tcp(tcp));
    };
    let name = crate::tls::server_name(host).map_err(|e| DialError::Handshake(e.to_string()))?;
    let connector = futures_rustls::TlsConnector::from(config.clone());
    let handshake = async { Some(connector.connect(name, tcp).await) };
    match smol::future::or(handshake, timeout()).await {
        Some(Ok(s)) => Ok(Stream::Tls(Box::new(s))),
        Some(Err(e)) => Err(DialError::Handshake(e.to_string())),
        None => Err(DialError::Handshake(format!(
            "no handshake within {ENGINE_CONNECT_TIMEOUT_MS} ms"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_files_are_named_in_errors() {
        let e = tls_config(Path::new("/nonexistent-dmt")).unwrap_err();
        assert!(e.starts_with("ca.pem: "), "{e}");
        let dir = std::env::temp_dir().join(format!("dmt-stream-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("ca.pem"), "no certificate here\n").unwrap();
        let e = tls_config(&dir).unwrap_err();
        assert!(e.starts_with("ca.pem: no certificate"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
