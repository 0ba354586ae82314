//! `self_update` of a native (systemd) install end to end (issue 15, spec 3.8.3): the agent runs from
//! a copy of the test binary in a temp folder under a restart-on-exit loop standing in for systemd's
//! `Restart=always`, against the protocol test server; a small HTTP(S) server on 127.0.0.1 serves the
//! release folder (`SELF_UPDATE_URL`), with a GitHub-like redirect of the binary to a long signed URL.
//!
//! - v2 (the x86_64 musl release binary built with `VERSION=0.0.2-v2`): after `self_update` the
//!   supervisor's next start tries v2, which registers with the same permanent token and installs
//!   itself (`<exe>.old` kept, lock gone).
//! - over HTTPS with a self-signed certificate given through `SSL_CERT_FILE`: a wrong checksum and a
//!   missing release are refused with the reason; the old binary keeps running, connected.
//! - a v2 that cannot connect (it answers `--version` and exits otherwise) is dropped on the
//!   following start, and the old binary reconnects.
//! - a full disk (the executable's folder on a small tmpfs) refuses the update; the partial download
//!   is deleted.
//!
//! Needs root (the tmpfs mount), a running dockerd (the agent reads the engine's facts), openssl, and the x86_64 musl target
//! (scripts/dist's toolchain); the v2 binary is built on first use, as tests/engine_selfupdate.rs
//! does: `VERSION=0.0.2-v2 COMMIT=selfupd-v2 cargo build --release --locked --target
//! x86_64-unknown-linux-musl --bin dockmon-agent`.
#[path = "support/dockmon_server.rs"]
#[allow(dead_code)]
mod dockmon_server;
#[path = "support/health.rs"]
mod health;
mod support;

use dockmon_server::{DockmonServer, Options};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};
use support::*;

const TOKEN: &str = "reg-token-native-selfupdate";
const V2: &str = "0.0.2-v2";
const ASSET: &str = "dockmon-agent-linux-amd64";

/// One scenario at a time: each runs an agent, and two cores are shared.
static SERIAL: Mutex<()> = Mutex::new(());

/// The v2 binary: the x86_64 musl release build with `VERSION=0.0.2-v2` (cargo rebuilds it when the
/// sources changed).
fn v2_binary() -> Vec<u8> {
    let root = env!("CARGO_MANIFEST_DIR");
    let mut cargo = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    // Without the CARGO_PKG_* and friends `cargo test` sets for this process: build scripts (ring's)
    // that watch them would otherwise rebuild whenever this and a shell build take turns.
    for (k, _) in std::env::vars() {
        if k.starts_with("CARGO_") && k != "CARGO_HOME" && k != "CARGO_TARGET_DIR" {
            cargo.env_remove(k);
        }
    }
    let status = cargo
        .args([
            "build",
            "--release",
            "--locked",
            "--target",
            "x86_64-unknown-linux-musl",
        ])
        .args(["--bin", "dockmon-agent"])
        .current_dir(root)
        .env("VERSION", V2)
        .env("COMMIT", "selfupd-v2")
        .status()
        .expect("run cargo");
    assert!(status.success(), "cargo build of {V2} failed");
    std::fs::read(format!(
        "{root}/target/x86_64-unknown-linux-musl/release/dockmon-agent"
    ))
    .unwrap()
}

fn sha256_hex(bytes: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, bytes)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

// ---- the release server --------------------------------------------------------------------------

#[derive(Clone)]
enum Answer {
    File(Arc<Vec<u8>>),
    Redirect(String),
}

/// Serves `files` (path → answer) over HTTP or HTTPS; anything else is 404. Records request paths.
struct Releases {
    port: u16,
    files: Arc<Mutex<HashMap<String, Answer>>>,
    paths: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
}

impl Releases {
    fn start(tls: Option<(&Path, &Path)>) -> Releases {
        let config = tls.map(|(cert, key)| {
            use rustls::pki_types::pem::PemObject;
            use rustls::pki_types::{CertificateDer, PrivateKeyDer};
            let certs = CertificateDer::pem_file_iter(cert)
                .unwrap()
                .collect::<Result<Vec<_>, _>>()
                .unwrap();
            let key = PrivateKeyDer::from_pem_file(key).unwrap();
            Arc::new(
                rustls::ServerConfig::builder_with_provider(Arc::new(
                    rustls::crypto::ring::default_provider(),
                ))
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(certs, key)
                .unwrap(),
            )
        });
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let r = Releases {
            port: listener.local_addr().unwrap().port(),
            files: Arc::default(),
            paths: Arc::default(),
            stop: Arc::default(),
        };
        let (files, paths, stop) = (r.files.clone(), r.paths.clone(), r.stop.clone());
        thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                let Ok((s, _)) = listener.accept() else {
                    thread::sleep(Duration::from_millis(5));
                    continue;
                };
                let (files, paths, config) = (files.clone(), paths.clone(), config.clone());
                thread::spawn(move || {
                    let _ = s.set_nonblocking(false);
                    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
                    let _ = s.set_write_timeout(Some(Duration::from_secs(10)));
                    match config {
                        None => answer(s, &files, &paths),
                        Some(c) => {
                            if let Ok(conn) = rustls::ServerConnection::new(c) {
                                answer(rustls::StreamOwned::new(conn, s), &files, &paths)
                            }
                        }
                    }
                });
            }
        });
        r
    }

    fn base(&self, scheme: &str) -> String {
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    fn put(&self, path: &str, answer: Answer) {
        self.files.lock().unwrap().insert(path.to_string(), answer);
    }

    fn paths(&self) -> Vec<String> {
        self.paths.lock().unwrap().clone()
    }
}

impl Drop for Releases {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn answer(
    mut s: impl Read + Write,
    files: &Mutex<HashMap<String, Answer>>,
    paths: &Mutex<Vec<String>>,
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
    let path = head.split(' ').nth(1).unwrap_or("/").to_string();
    paths.lock().unwrap().push(path.clone());
    let found = files.lock().unwrap().get(&path).cloned();
    let _ = match found {
        Some(Answer::File(bytes)) => s
            .write_all(
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    bytes.len()
                )
                .as_bytes(),
            )
            .and_then(|_| s.write_all(&bytes)),
        Some(Answer::Redirect(to)) => s.write_all(
            format!("HTTP/1.1 302 Found\r\nLocation: {to}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        ),
        None => s.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\nConnection: close\r\n\r\nNot Found"),
    };
    let _ = s.flush();
}

/// Publishes `binary` as version `version` at `/download/v<version>/`, the binary behind a redirect
/// to a long signed-looking URL (as GitHub's object store). `sums` overrides the SHA256SUMS line.
fn publish(r: &Releases, version: &str, binary: Vec<u8>, sums: Option<String>) {
    let dir = format!("/download/v{version}");
    let sums = sums.unwrap_or_else(|| {
        format!(
            "{}  dockmon-agent-linux-arm64\n{}  {ASSET}\n",
            "0".repeat(64),
            sha256_hex(&binary)
        )
    });
    r.put(
        &format!("{dir}/SHA256SUMS"),
        Answer::File(Arc::new(sums.into_bytes())),
    );
    let object = format!(
        "/objects/{version}?X-Sig={}&response-content-type=application%2Foctet-stream",
        "a1b2".repeat(250)
    );
    r.put(
        &format!("{dir}/{ASSET}"),
        Answer::Redirect(format!(
            "{}{object}",
            r.base("http").replace("http://", "//")
        )),
    );
    r.put(&object, Answer::File(Arc::new(binary)));
}

// ---- the supervisor ------------------------------------------------------------------------------

/// Runs `<dir>/bin/dockmon-agent` and starts it again 300 ms after every exit (systemd's
/// `Restart=always`, `RestartSec=10`, faster). Output of every run goes to `<dir>/agent.log`.
struct Supervisor {
    stop: Arc<AtomicBool>,
    exits: Arc<Mutex<Vec<String>>>,
    log: PathBuf,
    thread: Option<thread::JoinHandle<()>>,
}

impl Supervisor {
    fn start(dir: &Path, env: Vec<(String, String)>) -> Supervisor {
        let exe = dir.join("bin/dockmon-agent");
        let log = dir.join("agent.log");
        let s = Supervisor {
            stop: Arc::default(),
            exits: Arc::default(),
            log: log.clone(),
            thread: None,
        };
        let (stop, exits) = (s.stop.clone(), s.exits.clone());
        let thread = thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                let out = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&log)
                    .unwrap();
                let mut cmd = Command::new(&exe);
                cmd.env_remove("DOCKER_HOST")
                    .envs(env.iter().map(|(k, v)| (k, v)))
                    .stdin(Stdio::null())
                    .stdout(out.try_clone().unwrap())
                    .stderr(out);
                let mut child = match cmd.spawn() {
                    Ok(c) => c,
                    Err(e) => {
                        exits.lock().unwrap().push(format!("spawn: {e}"));
                        thread::sleep(Duration::from_millis(300));
                        continue;
                    }
                };
                let status = loop {
                    if let Ok(Some(st)) = child.try_wait() {
                        break st;
                    }
                    if stop.load(Ordering::SeqCst) {
                        let _ = Command::new("kill")
                            .args(["-TERM", &child.id().to_string()])
                            .status();
                        let end = Instant::now() + Duration::from_secs(5);
                        while Instant::now() < end {
                            if let Ok(Some(_)) = child.try_wait() {
                                return;
                            }
                            thread::sleep(Duration::from_millis(50));
                        }
                        let _ = child.kill();
                        let _ = child.wait();
                        return;
                    }
                    thread::sleep(Duration::from_millis(50));
                };
                exits.lock().unwrap().push(status.to_string());
                thread::sleep(Duration::from_millis(300));
            }
        });
        let mut s = s;
        s.thread = Some(thread);
        s
    }

    fn exits(&self) -> Vec<String> {
        self.exits.lock().unwrap().clone()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A temp folder with `bin/dockmon-agent` (a copy of the test binary: the test never replaces
/// target/ files) and `data/`.
fn install(tag: &str) -> PathBuf {
    let dir = tempdir(&format!("native-selfupdate-{tag}"));
    std::fs::create_dir_all(dir.join("bin")).unwrap();
    std::fs::create_dir_all(dir.join("data")).unwrap();
    std::fs::copy(agent_bin(), dir.join("bin/dockmon-agent")).unwrap();
    dir
}

fn env(
    dir: &Path,
    server: &DockmonServer,
    update_url: &str,
    extra: &[(&str, String)],
) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = vec![
        ("DOCKMON_URL".into(), server.url()),
        ("REGISTRATION_TOKEN".into(), TOKEN.into()),
        ("DATA_PATH".into(), dir.join("data").display().to_string()),
        ("SELF_UPDATE_URL".into(), update_url.into()),
        ("LOG_LEVEL".into(), "debug".into()),
        ("LOG_JSON".into(), "false".into()),
        // Not 12 hex digits: native mode (spec 1.5), whatever this host is called.
        ("HOSTNAME".into(), "dmt-native-selfupdate".into()),
    ];
    v.extend(extra.iter().map(|(k, val)| (k.to_string(), val.clone())));
    v
}

fn progress(server: &DockmonServer) -> Vec<Value> {
    server.event_payloads("selfupdate_progress")
}

fn wait_progress(server: &DockmonServer, skip: usize, timeout: Duration, stage: &str) -> Value {
    let end = Instant::now() + timeout;
    loop {
        if let Some(v) = progress(server)
            .into_iter()
            .skip(skip)
            .find(|v| v["stage"] == stage || v.get("error").is_some())
        {
            return v;
        }
        assert!(
            Instant::now() < end,
            "no selfupdate_progress {stage} within {timeout:?}: {:?}",
            progress(server)
        );
        thread::sleep(Duration::from_millis(100));
    }
}

fn self_update(server: &DockmonServer, version: &str) {
    let id = server.send_command(
        "self_update",
        json!({
            "image": "ghcr.io/darthnorse/dockmon-agent:1.1.2",
            "version": version,
            "binary_url": "https://github.com/darthnorse/dockmon/releases/download/agent-v1.1.2/dockmon-agent-linux-amd64",
            "checksum": null
        }),
    );
    let reply = server.wait_reply(&id, Duration::from_secs(10));
    assert_eq!(reply["payload"]["status"], "self_update_started", "{reply}");
}

fn len(p: &Path) -> u64 {
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

#[test]
fn native_self_update_installs_v2_which_reconnects_with_the_same_token() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    require_engine();
    assert_eq!(
        std::env::consts::ARCH,
        "x86_64",
        "the v2 binary is built for x86_64"
    );
    let watchdog = Instant::now();
    let v2 = v2_binary();
    let v2_len = v2.len() as u64;
    let releases = Releases::start(None);
    publish(&releases, V2, v2, None);
    let server = DockmonServer::start(Options::default().with_token(TOKEN, None, None));
    let dir = install("v2");
    let exe = dir.join("bin/dockmon-agent");
    let v1_len = len(&exe);
    let url = format!("{}/download/v{{version}}", releases.base("http"));
    let sup = Supervisor::start(&dir, env(&dir, &server, &url, &[]));

    let first = server.wait_for_agent(Duration::from_secs(60));
    let v1 = first.register["version"].as_str().unwrap().to_string();
    assert_ne!(v1, V2);
    assert_eq!(
        first.register["capabilities"]["self_update"], false,
        "native mode"
    );
    self_update(&server, V2);
    let done = wait_progress(&server, 0, Duration::from_secs(60), "complete");
    assert_eq!(done["stage"], "complete", "{done}\n{}", sup.log());
    let stages: Vec<String> = progress(&server)
        .iter()
        .map(|v| v["stage"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(
        stages,
        ["download", "verify", "prepare", "complete"],
        "{stages:?}"
    );

    let ok = server.wait_until(Duration::from_secs(60), |s| {
        s.registrations()
            .iter()
            .any(|a| a.register["version"] == V2)
    });
    assert!(
        ok,
        "no v2 registration; exits {:?}\n{}",
        sup.exits(),
        sup.log()
    );
    let again = server
        .registrations()
        .into_iter()
        .find(|a| a.register["version"] == V2)
        .unwrap();
    assert_eq!(again.agent_id, first.agent_id, "same agent");
    assert_eq!(
        again.register["token"], first.permanent_token,
        "same permanent token"
    );
    assert!(again.reconnect, "no re-registration");

    // v2 installs itself once registered: the old binary kept as .old, the lock gone.
    let end = Instant::now() + Duration::from_secs(20);
    while dir.join("data/update.lock").exists() && Instant::now() < end {
        thread::sleep(Duration::from_millis(100));
    }
    assert!(!dir.join("data/update.lock").exists(), "{}", sup.log());
    assert_eq!(len(&exe), v2_len, "v2 installed as the executable");
    assert_eq!(len(&dir.join("bin/dockmon-agent.old")), v1_len, "v1 kept");
    assert!(!dir.join("bin/dockmon-agent.new").exists());
    let log = sup.log();
    assert!(log.contains("ignoring binary_url"), "{log}");
    assert!(
        log.contains(&format!("self-update to version {V2} complete")),
        "{log}"
    );
    // One exit (the old agent's SIGTERM to itself); the restart re-exec'd into v2 in place.
    assert_eq!(sup.exits(), ["exit status: 0"], "{log}");
    let paths = releases.paths();
    assert!(
        paths.iter().any(|p| p.ends_with("/SHA256SUMS")),
        "{paths:?}"
    );
    assert!(
        paths.iter().any(|p| p.starts_with("/objects/")),
        "redirect followed: {paths:?}"
    );
    assert!(server.agent_online(&first.agent_id));
    assert!(
        watchdog.elapsed() < Duration::from_secs(600),
        "took {:?}",
        watchdog.elapsed()
    );
    drop(sup);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn native_self_update_refuses_a_wrong_checksum_and_a_missing_release_over_https() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    require_engine();
    let dir = install("https");
    let (cert, key) = health::self_signed(&dir);
    let releases = Releases::start(Some((&cert, &key)));
    let fake = b"#!/bin/sh\necho 'dockmon-agent 0.0.9-evil (x)'\n".to_vec();
    publish(
        &releases,
        "0.0.9",
        fake,
        Some(format!("{}  {ASSET}\n", "1".repeat(64))),
    );
    let server = DockmonServer::start(Options::default().with_token(TOKEN, None, None));
    let exe = dir.join("bin/dockmon-agent");
    let before = len(&exe);
    let url = format!("{}/download/v{{version}}", releases.base("https"));
    let sup = Supervisor::start(
        &dir,
        env(
            &dir,
            &server,
            &url,
            &[("SSL_CERT_FILE", cert.display().to_string())],
        ),
    );
    let first = server.wait_for_agent(Duration::from_secs(60));

    self_update(&server, "0.0.9");
    let err = wait_progress(&server, 0, Duration::from_secs(30), "complete");
    assert_eq!(err["stage"], "verify", "{err}");
    assert_eq!(err["message"], "Error occurred");
    let text = err["error"].as_str().unwrap();
    assert!(
        text.contains("checksum mismatch") && text.contains(&"1".repeat(64)),
        "{err}"
    );

    let seen = progress(&server).len();
    self_update(&server, "7.7.7");
    let err = wait_progress(&server, seen, Duration::from_secs(30), "complete");
    assert_eq!(err["stage"], "download", "{err}");
    let text = err["error"].as_str().unwrap();
    assert!(
        text.contains("HTTP 404") && text.contains("/download/v7.7.7/SHA256SUMS"),
        "{err}"
    );

    thread::sleep(Duration::from_secs(1));
    assert!(server.agent_online(&first.agent_id), "still connected");
    assert!(sup.exits().is_empty(), "never restarted: {:?}", sup.exits());
    assert_eq!(len(&exe), before, "the running binary is untouched");
    assert!(!dir.join("bin/dockmon-agent.new").exists());
    assert!(!dir.join("data/update.lock").exists());
    let paths = releases.paths();
    assert!(
        paths.iter().any(|p| p.starts_with("/objects/0.0.9")),
        "downloaded over TLS: {paths:?}"
    );
    assert!(sup.log().contains("checksum mismatch"), "logged");
    drop(sup);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn native_self_update_goes_back_when_v2_cannot_connect() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    require_engine();
    // Carries a version mark as a real build does (release::MARK), answers `--version`, and exits at
    // once otherwise.
    let dead = b"#!/bin/sh\n# dockmon-agent-version=0.0.3-dead;\nif [ \"$1\" = --version ]; then echo 'dockmon-agent 0.0.3-dead (test)'; exit 0; fi\necho 'dead v2: cannot connect' >&2\nexit 1\n".to_vec();
    let releases = Releases::start(None);
    publish(&releases, "0.0.3-dead", dead, None);
    let server = DockmonServer::start(Options::default().with_token(TOKEN, None, None));
    let dir = install("dead");
    let exe = dir.join("bin/dockmon-agent");
    let before = len(&exe);
    let url = format!("{}/download/v{{version}}", releases.base("http"));
    let sup = Supervisor::start(&dir, env(&dir, &server, &url, &[]));
    let first = server.wait_for_agent(Duration::from_secs(60));
    let regs = server.registrations().len();

    self_update(&server, "0.0.3-dead");
    let done = wait_progress(&server, 0, Duration::from_secs(30), "complete");
    assert_eq!(done["stage"], "complete", "{done}");
    let ok = server.wait_until(Duration::from_secs(60), |s| s.registrations().len() > regs);
    assert!(
        ok,
        "the old agent did not come back; exits {:?}\n{}",
        sup.exits(),
        sup.log()
    );
    let back = server.registrations().into_iter().nth(regs).unwrap();
    assert_eq!(
        back.register["version"], first.register["version"],
        "the old version"
    );
    assert_eq!(
        back.register["token"], first.permanent_token,
        "same permanent token"
    );
    let log = sup.log();
    assert!(
        log.contains("dead v2: cannot connect"),
        "v2 was tried: {log}"
    );
    assert!(log.contains("going back to version"), "{log}");
    // The old agent's own exit, then v2's failure.
    assert_eq!(sup.exits(), ["exit status: 0", "exit status: 1"], "{log}");
    assert_eq!(len(&exe), before, "the old binary stays");
    assert!(!dir.join("bin/dockmon-agent.new").exists());
    assert!(!dir.join("bin/dockmon-agent.old").exists());
    assert!(!dir.join("data/update.lock").exists());
    drop(sup);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A tmpfs mounted over a folder, unmounted on drop.
struct Tmpfs(PathBuf);

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn native_self_update_refuses_when_the_disk_is_full() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    require_engine();
    let dir = install("full");
    // The executable's folder on a tmpfs with 1 MiB free: the 4 MiB download cannot fit.
    let exe_len = len(&agent_bin());
    let size_kib = exe_len / 1024 + 1024 + 4;
    let bin = dir.join("bin");
    let out = Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={size_kib}k"), "tmpfs"])
        .arg(&bin)
        .output()
        .expect("run mount");
    assert!(
        out.status.success(),
        "this test mounts a small tmpfs (needs root): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _mount = Tmpfs(bin.clone());
    std::fs::copy(agent_bin(), bin.join("dockmon-agent")).unwrap();
    let exe = bin.join("dockmon-agent");
    let releases = Releases::start(None);
    publish(&releases, "0.0.4-big", vec![0x7f; 4 << 20], None);
    let server = DockmonServer::start(Options::default().with_token(TOKEN, None, None));
    let url = format!("{}/download/v{{version}}", releases.base("http"));
    let sup = Supervisor::start(&dir, env(&dir, &server, &url, &[]));
    let first = server.wait_for_agent(Duration::from_secs(60));

    self_update(&server, "0.0.4-big");
    let err = wait_progress(&server, 0, Duration::from_secs(30), "complete");
    assert_eq!(err["stage"], "download", "{err}");
    let text = err["error"].as_str().unwrap();
    assert!(text.contains("not enough disk space"), "{err}");
    thread::sleep(Duration::from_secs(1));
    assert!(server.agent_online(&first.agent_id), "still connected");
    assert!(sup.exits().is_empty(), "never restarted: {:?}", sup.exits());
    assert_eq!(len(&exe), exe_len, "the running binary is untouched");
    assert!(
        !bin.join("dockmon-agent.new").exists(),
        "the partial download is gone"
    );
    assert!(!dir.join("data/update.lock").exists());
    drop(sup);
    drop(_mount);
    let _ = std::fs::remove_dir_all(&dir);
}
