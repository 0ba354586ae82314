//! The backend's side of the web shell (spec 3.8.6) and of the stats ingest socket (spec 4.5), on
//! top of the protocol test server, plus the agent process these suites run.
//!
//! Shell: `shell_session` frames are written with [`DockmonServer::send_text`] (the backend sends
//! them as `{"type":"shell_session","payload":{…}}` without an ID, spec 3.1); `shell_data` events
//! are read back from the received-frame log. Ingest: [`IngestFront`] listens in front of the test
//! server: it serves `/api/stats/ws/ingest` itself (accept and record, answer 401, or accept and
//! never read) and relays every other connection byte for byte to the test server, so the agent's
//! single `DOCKMON_URL` reaches both.
#![allow(dead_code)]

use crate::dockmon_server::{DockmonServer, Frame, Route};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

pub const TOKEN: &str = "reg-token-1";

// ---- base64 (RFC 4648 §4), independent of the agent's -----------------------------------------

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

pub fn b64(input: &[u8]) -> String {
    let mut out = String::new();
    for g in input.chunks(3) {
        let n = (u32::from(g[0]) << 16)
            | (u32::from(*g.get(1).unwrap_or(&0)) << 8)
            | u32::from(*g.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= g.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

pub fn unb64(text: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let vals: Vec<u32> = text
        .bytes()
        .filter(|&c| c != b'=')
        .map(|c| ALPHABET.iter().position(|&a| a == c).expect("base64 byte") as u32)
        .collect();
    for g in vals.chunks(4) {
        let mut n = 0u32;
        for (i, v) in g.iter().enumerate() {
            n |= v << (18 - 6 * i);
        }
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..g.len() - 1]);
    }
    out
}

// ---- the shell, as the backend drives it --------------------------------------------------------

fn shell_session(server: &DockmonServer, payload: Value) {
    let frame = json!({"type": "shell_session", "payload": payload});
    assert!(server.send_text(&frame.to_string()), "no agent socket");
}

pub fn shell_start(server: &DockmonServer, session: &str, container: &str) {
    shell_session(
        server,
        json!({"action": "start", "container_id": container, "session_id": session}),
    );
}

pub fn shell_input(server: &DockmonServer, session: &str, text: &str) {
    shell_session(
        server,
        json!({"action": "data", "session_id": session, "data": b64(text.as_bytes())}),
    );
}

pub fn shell_resize(server: &DockmonServer, session: &str, rows: u32, cols: u32) {
    shell_session(
        server,
        json!({"action": "resize", "session_id": session, "rows": rows, "cols": cols}),
    );
}

pub fn shell_close(server: &DockmonServer, session: &str) {
    shell_session(server, json!({"action": "close", "session_id": session}));
}

/// The `shell_data` payloads received for `session`, oldest first.
pub fn shell_data(server: &DockmonServer, session: &str) -> Vec<Value> {
    server
        .frames()
        .into_iter()
        .filter_map(|f| {
            let Frame::Text(text) = &f.frame else {
                return None;
            };
            match &f.route {
                Some(Route::Event { name, known: true }) if name == "shell_data" => {}
                _ => return None,
            }
            let v: Value = serde_json::from_str(text).ok()?;
            let p = v.get("payload")?.clone();
            (p["session_id"] == session).then_some(p)
        })
        .collect()
}

/// The session's decoded output so far.
pub fn shell_output(server: &DockmonServer, session: &str) -> String {
    let mut bytes = Vec::new();
    for p in shell_data(server, session) {
        if p["action"] == "data" {
            let text = p["data"].as_str().unwrap();
            let chunk = unb64(text);
            assert!(chunk.len() <= 4096, "chunk of {} bytes", chunk.len());
            bytes.extend(chunk);
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Waits until a `shell_data` frame with `action` arrived for `session`; returns it.
pub fn wait_action(
    server: &DockmonServer,
    session: &str,
    action: &str,
    timeout: Duration,
) -> Option<Value> {
    let end = Instant::now() + timeout;
    loop {
        if let Some(p) = shell_data(server, session)
            .into_iter()
            .find(|p| p["action"] == action)
        {
            return Some(p);
        }
        if Instant::now() >= end {
            return None;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until the session's output contains `needle`.
pub fn wait_output(server: &DockmonServer, session: &str, needle: &str, timeout: Duration) -> bool {
    let end = Instant::now() + timeout;
    loop {
        if shell_output(server, session).contains(needle) {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

// ---- the agent ---------------------------------------------------------------------------------

/// The agent binary running against a server, its stderr in a file, killed when dropped.
pub struct Agent {
    pub child: Child,
    pub log: PathBuf,
    pub data: PathBuf,
}

impl Agent {
    pub fn start(url: &str, env: &[(&str, &str)]) -> Agent {
        Self::start_under(&[], url, env)
    }

    /// As [`start`](Self::start), in a PID namespace of its own with its own /proc and no
    /// /host/proc: what the agent sees in container mode as DockMon's `docker run` line starts it
    /// (the exec processes of its sessions are not in its /proc). Needs root and util-linux.
    pub fn start_in_own_pid_namespace(url: &str, env: &[(&str, &str)]) -> Agent {
        Self::start_under(
            &["unshare", "--pid", "--fork", "--kill-child", "--mount-proc"],
            url,
            env,
        )
    }

    /// `wrapper` (a command and its arguments) runs the agent binary; none when empty.
    fn start_under(wrapper: &[&str], url: &str, env: &[(&str, &str)]) -> Agent {
        crate::support::require_engine();
        let data = crate::support::tempdir("shell-agent");
        let log = data.with_extension("log");
        let cmd = match wrapper.split_first() {
            None => Command::new(crate::support::agent_bin()),
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(crate::support::agent_bin());
                c
            }
        };
        let mut cmd = crate::support::agent_command(cmd, url, TOKEN, &data, &log);
        for (k, v) in env {
            cmd.env(k, v);
        }
        Agent {
            child: cmd.spawn().expect("spawn the agent"),
            log,
            data,
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn wait_log(&self, needle: &str, timeout: Duration) -> bool {
        crate::support::wait_for_log(&self.log, needle, timeout)
    }

    /// VmRSS in KiB.
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS")
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---- the stats ingest endpoint (spec 4.5) ------------------------------------------------------

/// How [`IngestFront`] answers `/api/stats/ws/ingest`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IngestMode {
    /// Accept the upgrade and record every text frame.
    Accept,
    /// HTTP 401, as the stats-service does for an unknown token.
    Unauthorized,
    /// Accept the upgrade, then never read (the agent's writes pile up in TCP buffers).
    Stall,
}

/// One ingest upgrade the front saw.
#[derive(Clone, Debug)]
pub struct IngestHello {
    pub at: Instant,
    pub authorization: Option<String>,
    pub path: String,
}

#[derive(Default)]
struct IngestState {
    hellos: Vec<IngestHello>,
    frames: Vec<Value>,
}

/// A listener in front of the test server: ingest upgrades are served here, everything else is
/// relayed to the server.
pub struct IngestFront {
    port: u16,
    mode: Arc<Mutex<IngestMode>>,
    state: Arc<Mutex<IngestState>>,
    stop: Arc<AtomicBool>,
    /// Stalled sockets, kept open until the front is dropped.
    held: Arc<Mutex<Vec<TcpStream>>>,
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

impl IngestFront {
    pub fn start(upstream: u16, mode: IngestMode) -> IngestFront {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let front = IngestFront {
            port,
            mode: Arc::new(Mutex::new(mode)),
            state: Arc::default(),
            stop: Arc::default(),
            held: Arc::default(),
        };
        let (mode, state, stop, held) = (
            front.mode.clone(),
            front.state.clone(),
            front.stop.clone(),
            front.held.clone(),
        );
        thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((s, _)) => {
                        let (mode, state, stop, held) =
                            (mode.clone(), state.clone(), stop.clone(), held.clone());
                        thread::spawn(move || serve(s, upstream, &mode, &state, &stop, &held));
                    }
                    Err(_) => thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        front
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn set_mode(&self, mode: IngestMode) {
        *self.mode.lock().unwrap() = mode;
    }

    pub fn hellos(&self) -> Vec<IngestHello> {
        self.state.lock().unwrap().hellos.clone()
    }

    pub fn frames(&self) -> Vec<Value> {
        self.state.lock().unwrap().frames.clone()
    }
}

impl Drop for IngestFront {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for s in self.held.lock().unwrap().drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }
}

fn serve(
    mut s: TcpStream,
    upstream: u16,
    mode: &Mutex<IngestMode>,
    state: &Mutex<IngestState>,
    stop: &AtomicBool,
    held: &Mutex<Vec<TcpStream>>,
) {
    s.set_nonblocking(false).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    let end = Instant::now() + Duration::from_secs(10);
    let head_len = loop {
        if let Some(i) = find(&head, b"\r\n\r\n") {
            break i + 4;
        }
        if Instant::now() > end || stop.load(Ordering::SeqCst) {
            return;
        }
        match s.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
            Err(_) => {}
        }
    };
    let text = String::from_utf8_lossy(&head[..head_len]).into_owned();
    let path = text
        .lines()
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .unwrap_or("")
        .to_string();
    if !path.starts_with("/api/stats/ws/ingest") {
        relay(s, head, upstream, stop);
        return;
    }
    let header = |name: &str| {
        text.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    };
    state.lock().unwrap().hellos.push(IngestHello {
        at: Instant::now(),
        authorization: header("authorization"),
        path,
    });
    let mode = *mode.lock().unwrap();
    if mode == IngestMode::Unauthorized {
        let body = r#"{"error":"unauthorized"}"#;
        let _ = write!(
            s,
            "HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        return;
    }
    let key = header("sec-websocket-key").unwrap_or_default();
    let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
    let _ = write!(
        s,
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
    );
    if mode == IngestMode::Stall {
        // Never read: keep the socket open until the front is dropped.
        held.lock().unwrap().push(s);
        return;
    }
    let mut ws = tungstenite::WebSocket::from_partially_read(
        s,
        head[head_len..].to_vec(),
        tungstenite::protocol::Role::Server,
        None,
    );
    while !stop.load(Ordering::SeqCst) {
        match ws.read() {
            Ok(tungstenite::Message::Text(t)) => {
                if let Ok(v) = serde_json::from_str::<Value>(&t) {
                    state.lock().unwrap().frames.push(v);
                }
            }
            Ok(tungstenite::Message::Close(_)) => return,
            Ok(_) => {}
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return,
        }
    }
}

/// Relays a connection to the test server byte for byte (the head already read goes first).
fn relay(client: TcpStream, head: Vec<u8>, upstream: u16, stop: &AtomicBool) {
    let Ok(mut up) = TcpStream::connect(("127.0.0.1", upstream)) else {
        return;
    };
    let _ = up.set_nodelay(true);
    let _ = client.set_nodelay(true);
    if up.write_all(&head).is_err() {
        return;
    }
    let _ = up.set_read_timeout(Some(Duration::from_millis(50)));
    let (mut c2, mut u2) = (client.try_clone().unwrap(), up.try_clone().unwrap());
    let done = Arc::new(AtomicBool::new(false));
    let d2 = done.clone();
    let t = thread::spawn(move || {
        let mut buf = [0u8; 16384];
        while !d2.load(Ordering::SeqCst) {
            match u2.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    if c2.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => break,
            }
        }
        d2.store(true, Ordering::SeqCst);
        let _ = c2.shutdown(Shutdown::Both);
    });
    let mut client = client;
    let mut buf = [0u8; 16384];
    while !done.load(Ordering::SeqCst) && !stop.load(Ordering::SeqCst) {
        match client.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if up.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => break,
        }
    }
    done.store(true, Ordering::SeqCst);
    let _ = up.shutdown(Shutdown::Both);
    let _ = t.join();
}
