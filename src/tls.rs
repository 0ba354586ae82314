//! TLS client configuration for `wss://` DockMon servers: rustls with the ring provider.
//!
//! Trust: Mozilla's roots compiled in (webpki-roots), so a `FROM scratch` image needs no CA bundle,
//! plus every certificate in `SSL_CERT_FILE` (PEM), which is how a user trusts a private CA or a
//! self-signed DockMon certificate while keeping verification on. The system bundle is not read: it
//! is the same Mozilla list, and loading it twice would only cost memory.
//!
//! `INSECURE_SKIP_VERIFY=true` accepts any certificate (the server is then unauthenticated: the agent
//! logs a warning at startup). Signatures in the handshake are still checked, so the session keys
//! belong to whoever holds the certificate's key.
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Why a TLS configuration could not be built.
#[derive(Debug)]
pub enum Error {
    /// `SSL_CERT_FILE` could not be read or holds no certificate.
    CertFile {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        problem: String,
    },
    /// rustls refused the configuration.
    Config(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::CertFile { path, problem } => write!(
                f,
                "SSL_CERT_FILE={}: {problem}; it must be a PEM file with one or more certificates",
                path.display()
            ),
            Error::Config(e) => write!(f, "tls configuration: {e}"),
        }
    }
}

impl std::error::Error for Error {}

/// The provider every TLS object of the agent uses: ring's cipher suites, key exchange groups,
/// signature verification and private-key loader. The key loader (RSA, ECDSA and Ed25519 signing
/// keys) had been left out to save 29 KB of the aarch64 binary (issue #6); it is back for the client
/// certificate of a `tcp://` engine with `DOCKER_TLS_VERIFY` (issue 12, src/docker/stream.rs).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Builds the client configuration. Returns it and how many extra roots `SSL_CERT_FILE` added.
pub fn client_config(
    ssl_cert_file: Option<&Path>,
    insecure_skip_verify: bool,
) -> Result<(Arc<ClientConfig>, usize), Error> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Config(e.to_string()))?;
    if insecure_skip_verify {
        let config = builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
            .with_no_client_auth();
        return Ok((Arc::new(config), 0));
    }
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let mut added = 0;
    if let Some(path) = ssl_cert_file {
        let cert_err = |problem: String| Error::CertFile {
            path: path.to_path_buf(),
            problem,
        };
        let iter = CertificateDer::pem_file_iter(path).map_err(|e| cert_err(e.to_string()))?;
        for cert in iter {
            let cert = cert.map_err(|e| cert_err(e.to_string()))?;
            roots
                .add(cert)
                .map_err(|e| cert_err(format!("a certificate was refused: {e}")))?;
            added += 1;
        }
        if added == 0 {
            return Err(cert_err("no certificate found".to_string()));
        }
    }
    let config = builder.with_root_certificates(roots).with_no_client_auth();
    Ok((Arc::new(config), added))
}

/// The server name to verify for `host` (a DNS name or an IP literal).
pub fn server_name(host: &str) -> Result<ServerName<'static>, Error> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(bare.to_string()).map_err(|e| Error::Config(format!("server name: {e}")))
}

/// `INSECURE_SKIP_VERIFY`: any certificate chain is accepted; handshake signatures are still checked.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Fills `buf` from the operating system's random source (through the TLS provider, so no second
/// dependency). Used for WebSocket keys and masks and for backoff jitter.
pub fn random_bytes(buf: &mut [u8]) {
    if provider().secure_random.fill(buf).is_err() {
        // getrandom(2) does not fail on Linux once the pool is initialised; fall back to the clock so
        // a mask is still unpredictable enough for its purpose (RFC 6455 §10.3).
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        for (i, b) in buf.iter_mut().enumerate() {
            *b = (nanos >> ((i % 16) * 8)) as u8 ^ (i as u8).wrapping_mul(151);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_with_compiled_in_roots_and_insecure() {
        assert!(client_config(None, false).is_ok());
        assert!(client_config(None, true).is_ok());
    }

    #[test]
    fn a_bad_cert_file_is_a_clear_error() {
        let err = client_config(Some(Path::new("/nonexistent.pem")), false).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("SSL_CERT_FILE=/nonexistent.pem"),
            "{err}"
        );
        let dir = std::env::temp_dir().join(format!("tls-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let err = client_config(Some(&empty), false).unwrap_err();
        assert!(err.to_string().contains("no certificate found"), "{err}");
    }

    #[test]
    fn server_names_accept_hosts_and_ip_literals() {
        assert!(server_name("dockmon.example.com").is_ok());
        assert!(server_name("192.0.2.1").is_ok());
        assert!(server_name("[::1]").is_ok());
    }

    #[test]
    fn the_provider_is_rings_and_loads_private_keys() {
        let ours = provider();
        let ring = rustls::crypto::ring::default_provider();
        let suites = |p: &CryptoProvider| {
            p.cipher_suites
                .iter()
                .map(|s| s.suite())
                .collect::<Vec<_>>()
        };
        assert_eq!(suites(&ours), suites(&ring));
        let groups = |p: &CryptoProvider| p.kx_groups.iter().map(|g| g.name()).collect::<Vec<_>>();
        assert_eq!(groups(&ours), groups(&ring));
        assert_eq!(
            ours.signature_verification_algorithms.supported_schemes(),
            ring.signature_verification_algorithms.supported_schemes()
        );
        // A malformed key is refused with an error, not a panic.
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(vec![0x30, 0x00].into());
        assert!(ours.key_provider.load_private_key(key).is_err());
    }

    #[test]
    fn random_bytes_are_not_all_zero() {
        let mut a = [0u8; 32];
        random_bytes(&mut a);
        assert_ne!(a, [0u8; 32]);
    }
}
