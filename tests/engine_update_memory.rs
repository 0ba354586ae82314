//! Heap during an update whose pull streams 10,000 progress lines (issue 13 budget): at most the
//! agent's steady high-water plus 64 KiB, so the pull's stream is read line by line, never held.
//!
//! A real registry cannot easily be made to send 10,000 progress lines, so the agent talks to the real
//! engine through a small proxy on a unix socket (a fake only for what a real server cannot be made
//! to do): every request is forwarded to the engine on its own connection, except
//! `POST /images/create`, which the proxy answers itself with 10,000 progress lines. The image the
//! update goes to is a local tag of the test image, so everything after the pull is real.
//!
//! Builds the count-alloc release binary like tests/engine_memory.rs (`target/count-alloc`).
#![cfg(all(target_os = "linux", target_arch = "x86_64"))]

#[path = "support/dockmon_server.rs"]
#[allow(dead_code)]
mod dockmon_server;
#[path = "support/memory.rs"]
mod memory;
mod support;

use dockmon_server::{DockmonServer, Options};
use memory::{count_alloc_build, Agent};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::*;

const TOKEN: &str = "reg-token-update-memory";
const PROGRESS_LINES: usize = 10_000;
const BUDGET_BYTES: u64 = 64 * 1024;
const ENGINE: &str = "/var/run/docker.sock";

/// The 10,000 lines: 20 layers downloading in 1 % steps, then extracting and completing.
fn progress_body() -> Vec<u8> {
    let mut body = Vec::new();
    let layers = 20;
    let per_layer = PROGRESS_LINES / layers;
    let total = 10_000_000u64;
    body.extend_from_slice(b"{\"status\":\"Pulling from dmt/app\",\"id\":\"v2\"}\r\n");
    for l in 0..layers {
        let id = format!("{:012x}", 0xabc000 + l);
        for i in 0..per_layer {
            let current = total * (i as u64 + 1) / per_layer as u64;
            let (status, current) = if i + 2 == per_layer {
                ("Extracting", total)
            } else if i + 1 == per_layer {
                ("Pull complete", 0)
            } else {
                ("Downloading", current)
            };
            body.extend_from_slice(
                format!(
                    "{{\"status\":\"{status}\",\"progressDetail\":{{\"current\":{current},\"total\":{total}}},\"progress\":\"[==================>                                ]  {current}B/{total}B\",\"id\":\"{id}\"}}\r\n"
                )
                .as_bytes(),
            );
        }
    }
    body.extend_from_slice(b"{\"status\":\"Status: Downloaded newer image for dmt/app:v2\"}\r\n");
    body
}

/// Reads one request head (and its Content-Length body) from the agent.
fn read_request(s: &mut UnixStream) -> Option<Vec<u8>> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = s.read(&mut byte).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&byte[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_lowercase();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + len {
        let n = s.read(&mut byte).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&byte[..n]);
    }
    Some(buf)
}

/// One agent connection: one request, answered by the fake pull or relayed to the engine with
/// `Connection: close` (so the agent never reuses a connection for a second request).
fn serve(mut client: UnixStream, body: &[u8]) {
    let Some(req) = read_request(&mut client) else {
        return;
    };
    let first_line =
        String::from_utf8_lossy(&req[..req.iter().position(|&b| b == b'\r').unwrap_or(0)])
            .to_string();
    if first_line.starts_with("POST ") && first_line.contains("/images/create?") {
        let _ = client.write_all(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n",
        );
        for chunk in body.chunks(8 * 1024) {
            if client.write_all(chunk).is_err() {
                return;
            }
        }
        return;
    }
    let Ok(mut engine) = UnixStream::connect(ENGINE) else {
        return;
    };
    // Insert `Connection: close` after the request line.
    let split = req.windows(2).position(|w| w == b"\r\n").unwrap() + 2;
    let mut out = req[..split].to_vec();
    out.extend_from_slice(b"Connection: close\r\n");
    out.extend_from_slice(&req[split..]);
    if engine.write_all(&out).is_err() {
        return;
    }
    let mut buf = [0u8; 16 * 1024];
    loop {
        match engine.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if client.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
        }
    }
}

fn start_proxy(path: &Path) {
    let listener = UnixListener::bind(path).unwrap();
    let body: &'static [u8] = Box::leak(progress_body().into_boxed_slice());
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { return };
            std::thread::spawn(move || serve(conn, body));
        }
    });
}

/// A local tag of the test image, removed on drop.
struct Tag(String);

impl Drop for Tag {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["rmi", &self.0])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

#[test]
fn heap_during_a_10000_line_pull_stays_within_64_kib_of_steady() {
    require_engine();
    ensure_image();
    let bin = count_alloc_build();
    let pid = std::process::id();
    let dir = tempdir("update-memory");
    let sock = dir.join("engine.sock");
    start_proxy(&sock);

    let new_image = Tag(format!("dmt-update-mem{pid}/app:v2"));
    docker(&["tag", IMAGE, &new_image.0]);
    let net = format!("dmt-update-{pid}-memnet");
    docker(&["network", "create", &net]);
    struct Net(String);
    impl Drop for Net {
        fn drop(&mut self) {
            let _ = Command::new("docker")
                .args(["network", "rm", &self.0])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
    let _net = Net(net.clone());
    let mut containers = Containers::new("update-mem");
    let old_id = containers.run("app", &["--network", &net], &["sleep", "3600"]);

    let server = DockmonServer::start(Options::default().with_token(TOKEN, None, None));
    let engine = format!("unix://{}", sock.display());
    let env = [("DOCKER_HOST", engine.as_str()), ("STATS_INTERVAL", "5s")];
    let agent = Agent::start(&bin, &server.url(), TOKEN, &dir.join("data"), &env);
    server.wait_for_agent(Duration::from_secs(20));

    // Steady: registration, container lists, stats of the running containers, for a while.
    for _ in 0..2 {
        let id = server.send_command("list_containers", Value::Null);
        server.wait_reply(&id, Duration::from_secs(30));
    }
    std::thread::sleep(Duration::from_secs(12));
    let (steady_in_use, steady_high) = agent.heap();

    let id = server.send_command(
        "update_container",
        json!({"container_id": &old_id[..12], "new_image": &new_image.0, "stop_timeout": 1,
               "health_timeout": 4, "registry_auth": null}),
    );
    assert_eq!(
        server.wait_reply(&id, Duration::from_secs(20))["payload"]["status"],
        "update_started"
    );
    let end = Instant::now() + Duration::from_secs(120);
    let complete = loop {
        if let Some(c) = server.event_payloads("update_complete").pop() {
            break c;
        }
        if let Some(p) = server.event_payloads("update_progress").last() {
            assert!(
                !matches!(p["stage"].as_str(), Some("failed" | "rollback")),
                "update failed: {p}\n{}",
                agent.log()
            );
        }
        assert!(
            Instant::now() < end,
            "no update_complete within 120 s\n{}",
            agent.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let (after_in_use, after_high) = agent.heap();
    let layer_events = server.event_payloads("update_layer_progress");
    eprintln!(
        "steady: in use {steady_in_use} B, high-water {steady_high} B; after a {PROGRESS_LINES}-line pull and the update: in use {after_in_use} B, high-water {after_high} B (+{} B); {} update_layer_progress events",
        after_high.saturating_sub(steady_high),
        layer_events.len()
    );
    assert_eq!(complete["old_container_id"], old_id[..12]);
    let last = layer_events.last().expect("layer progress was reported");
    assert_eq!(last["total_layers"], 20);
    assert_eq!(last["overall_progress"], 100);
    // Rate-limited (spec 3.8.1): far fewer events than lines: 20 completions plus 5-point steps.
    assert!(
        layer_events.len() < 200,
        "{} layer events",
        layer_events.len()
    );
    assert!(
        after_high <= steady_high + BUDGET_BYTES,
        "heap high-water {after_high} B > steady {steady_high} B + {BUDGET_BYTES} B"
    );
    // The recreated container has the old one's name: remove it with the guard.
    drop(agent);
}
