//! Health-check helpers for the protocol tests (spec 3.6): the backend's configuration frames, the
//! agent's `health_check_result` events as the protocol test server received them, and small HTTP
//! and HTTPS servers on 127.0.0.1 for the checks to hit.
//!
//! Built on the public face of `dockmon_server.rs` (`send_text`, `frames`), so that file is not
//! touched. The HTTP server is a thread per connection with a read deadline on every socket; its
//! answer depends on the path:
//! - `/status`: the status set with [`HttpServer::set_status`] (200 at first);
//! - `/slow`: nothing until the client gives up (for timeouts);
//! - `/redirect`: `302` to `/status`;
//! - anything else: `200`.
//!
//! Every request head is recorded ([`HttpServer::requests`]). HTTPS uses a self-signed certificate
//! for 127.0.0.1 made by `openssl req -x509` (package openssl).
#![allow(dead_code)]

use super::dockmon_server::{DockmonServer, Frame, Route};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// A config with the spec 3.6.1 example's values for `url`: enabled, GET, `200`, 5 s timeout,
/// 10 s interval, redirects followed, TLS verified, no headers or auth. Override with [`with`].
pub fn config(container_id: &str, url: &str) -> Value {
    json!({
        "container_id": container_id,
        "host_id": "60d2c5d3-f864-4485-9d9a-8266acdd1a95",
        "enabled": true,
        "url": url,
        "method": "GET",
        "expected_status_codes": "200",
        "timeout_seconds": 5,
        "check_interval_seconds": 10,
        "follow_redirects": true,
        "verify_ssl": true,
        "headers_json": null,
        "auth_config_json": null
    })
}

/// `config` with some fields replaced.
pub fn with(mut config: Value, fields: Value) -> Value {
    for (k, v) in fields.as_object().expect("an object of fields") {
        config[k] = v.clone();
    }
    config
}

/// Sends `{"type":"health_check_configs_sync","payload":{"configs":[…]}}` on the newest socket.
pub fn sync(server: &DockmonServer, configs: &[Value]) {
    let frame = json!({"type": "health_check_configs_sync", "payload": {"configs": configs}});
    assert!(
        server.send_text(&frame.to_string()),
        "no agent socket to send the sync on"
    );
}

/// Sends `{"type":"health_check_config","payload":<config>}`.
pub fn add(server: &DockmonServer, config: &Value) {
    let frame = json!({"type": "health_check_config", "payload": config});
    assert!(server.send_text(&frame.to_string()));
}

/// Sends `{"type":"health_check_config_remove","payload":{"container_id":…}}`.
pub fn remove(server: &DockmonServer, container_id: &str) {
    let frame =
        json!({"type": "health_check_config_remove", "payload": {"container_id": container_id}});
    assert!(server.send_text(&frame.to_string()));
}

/// One `health_check_result` as received: the whole frame (`payload` inside) and when it arrived.
#[derive(Clone, Debug)]
pub struct Received {
    pub frame: Value,
    pub at: Instant,
    pub connection: u64,
}

impl Received {
    pub fn payload(&self) -> &Value {
        &self.frame["payload"]
    }
}

/// Every `health_check_result` received so far, oldest first.
pub fn results(server: &DockmonServer) -> Vec<Received> {
    server
        .frames()
        .into_iter()
        .filter_map(|f| {
            let Frame::Text(text) = &f.frame else {
                return None;
            };
            match &f.route {
                Some(Route::Event { name, known: true }) if name == "health_check_result" => {
                    Some(Received {
                        frame: serde_json::from_str(text).ok()?,
                        at: f.at,
                        connection: f.connection,
                    })
                }
                _ => None,
            }
        })
        .collect()
}

/// Results of one container.
pub fn results_for(server: &DockmonServer, container_id: &str) -> Vec<Received> {
    results(server)
        .into_iter()
        .filter(|r| r.payload()["container_id"] == container_id)
        .collect()
}

/// Waits for a result of `container_id` received after `since` that `ok` accepts; panics with
/// every result of that container on timeout.
pub fn wait_result(
    server: &DockmonServer,
    container_id: &str,
    since: Instant,
    timeout: Duration,
    ok: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + timeout;
    loop {
        let all = results_for(server, container_id);
        if let Some(r) = all.iter().find(|r| r.at >= since && ok(r.payload())) {
            return r.payload().clone();
        }
        if Instant::now() >= deadline {
            panic!(
                "no matching health_check_result for {container_id} within {timeout:?}; got: {:#?}",
                all.iter().map(|r| r.payload()).collect::<Vec<_>>()
            );
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// A certificate and key for 127.0.0.1 and localhost, self-signed, in `dir`.
pub fn self_signed(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "2", "-subj", "/CN=dmt-health"])
        .args(["-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"])
        // A leaf, as most self-signed server certificates: else webpki reports CaUsedAsEndEntity.
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("run openssl (apt-get install openssl)");
    assert!(
        out.status.success(),
        "openssl req -x509: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (cert, key)
}

/// A small HTTP/1.1 server for checks to hit; stops accepting when dropped.
pub struct HttpServer {
    port: u16,
    status: Arc<AtomicU16>,
    requests: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
}

/// How long a `/slow` request is held before the server gives up on it.
const SLOW_HOLD: Duration = Duration::from_secs(30);

impl HttpServer {
    /// Plain HTTP.
    pub fn start() -> HttpServer {
        Self::start_with(None)
    }

    /// HTTPS with the certificate and key in these PEM files.
    pub fn start_tls(cert: &Path, key: &Path) -> HttpServer {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let certs = CertificateDer::pem_file_iter(cert)
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_file(key).unwrap();
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
        Self::start_with(Some(Arc::new(config)))
    }

    fn start_with(tls: Option<Arc<rustls::ServerConfig>>) -> HttpServer {
        // A blocking accept: a polling one (sleeping between tries) made every check wait up to the
        // poll interval, so 200 checks kept the agent's 4 slots busy many times longer than needed.
        // Drop wakes it with a connection of its own.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = HttpServer {
            port,
            status: Arc::new(AtomicU16::new(200)),
            requests: Arc::new(Mutex::new(Vec::new())),
            stop: Arc::new(AtomicBool::new(false)),
        };
        let (status, requests, stop) = (
            server.status.clone(),
            server.requests.clone(),
            server.stop.clone(),
        );
        thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok(_) if stop.load(Ordering::SeqCst) => break,
                    Ok((s, _)) => {
                        let (status, requests, tls, stop) =
                            (status.clone(), requests.clone(), tls.clone(), stop.clone());
                        thread::spawn(move || {
                            let _ = s.set_nonblocking(false);
                            let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
                            let _ = s.set_write_timeout(Some(Duration::from_secs(10)));
                            match tls {
                                None => serve(s, &status, &requests, &stop),
                                Some(config) => {
                                    let Ok(conn) = rustls::ServerConnection::new(config) else {
                                        return;
                                    };
                                    serve(
                                        rustls::StreamOwned::new(conn, s),
                                        &status,
                                        &requests,
                                        &stop,
                                    )
                                }
                            }
                        });
                    }
                    Err(_) => thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        server
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT<path>` (or `https://`).
    pub fn url(&self, scheme: &str, path: &str) -> String {
        format!("{scheme}://127.0.0.1:{}{path}", self.port)
    }

    /// What `/status` answers from now on.
    pub fn set_status(&self, status: u16) {
        self.status.store(status, Ordering::SeqCst);
    }

    /// Every request head so far.
    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }

    /// Waits until a request head contains `needle`.
    pub fn wait_request(&self, needle: &str, timeout: Duration) -> Option<String> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(r) = self.requests().into_iter().find(|r| r.contains(needle)) {
                return Some(r);
            }
            thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the blocking accept, which then sees `stop`.
        let _ = std::net::TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// Reads one request head and answers it; a failed read or write just ends the connection.
fn serve(
    mut s: impl Read + Write,
    status: &AtomicU16,
    requests: &Mutex<Vec<String>>,
    stop: &AtomicBool,
) {
    let mut buf = vec![0u8; 8192];
    let mut n = 0;
    while !buf[..n].windows(4).any(|w| w == b"\r\n\r\n") {
        if n == buf.len() {
            return;
        }
        match s.read(&mut buf[n..]) {
            Ok(0) | Err(_) => return,
            Ok(m) => n += m,
        }
    }
    let head = String::from_utf8_lossy(&buf[..n]).into_owned();
    requests.lock().unwrap().push(head.clone());
    let path = head.split(' ').nth(1).unwrap_or("/").to_string();
    let response = match path.as_str() {
        "/slow" => {
            let until = Instant::now() + SLOW_HOLD;
            while Instant::now() < until && !stop.load(Ordering::SeqCst) {
                // The client closing shows as EOF (or an error) on a read.
                let mut byte = [0u8; 1];
                match s.read(&mut byte) {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
            }
            return;
        }
        "/redirect" => {
            "HTTP/1.1 302 Found\r\nLocation: /status\r\nContent-Length: 5\r\nConnection: close\r\n\r\nmoved"
                .to_string()
        }
        "/status" => {
            let code = status.load(Ordering::SeqCst);
            format!("HTTP/1.1 {code} Whatever\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
        }
        _ => "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok".to_string(),
    };
    let _ = s.write_all(response.as_bytes());
    let _ = s.flush();
}

/// A TCP port on 127.0.0.1 with nothing listening (bound, then released).
pub fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}
