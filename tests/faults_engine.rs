//! Faults a real engine cannot be made to produce, from a scripted fake on a temporary unix socket:
//! garbage, truncation, oversized heads and bodies, malformed JSON, stalls. Each must end in a clear
//! error and exit code 1: no panic, no hang past the call deadline. Plus the endpoint errors a user
//! meets first (no socket, permission denied, tcp://, not a socket).
mod support;

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::time::Duration;
use support::*;

/// What the fake does with one request.
#[derive(Clone)]
enum Act {
    /// Write these bytes and close.
    Send(Vec<u8>),
    /// Write these bytes and keep the connection open, silent.
    SendAndStall(Vec<u8>),
}

const PING_OK: &[u8] = b"HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\nContent-Length: 2\r\n\r\nOK";
const INFO_OK: &str = r#"{"ID":"FAKE:ENGINE","Name":"fake","ServerVersion":"0.0-fake","OperatingSystem":"FakeOS","OSType":"linux","KernelVersion":"6.0","NCPU":2,"MemTotal":1000000}"#;

fn ok_json(body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Serves `route(path)` for each request on a fresh socket; returns the socket path.
fn fake_engine(route: impl Fn(&str) -> Act + Send + 'static) -> PathBuf {
    let dir = tempdir("fake");
    let path = dir.join("docker.sock");
    let listener = UnixListener::bind(&path).unwrap();
    std::thread::spawn(move || {
        let mut held: Vec<UnixStream> = Vec::new();
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { return };
            s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
            // One request per connection is enough for these scripts: read the head, answer, close.
            let mut buf = [0u8; 4096];
            let mut got = Vec::new();
            while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                }
            }
            let line = String::from_utf8_lossy(&got);
            let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
            match route(&path) {
                Act::Send(bytes) => {
                    let _ = s.write_all(&bytes);
                }
                Act::SendAndStall(bytes) => {
                    let _ = s.write_all(&bytes);
                    held.push(s);
                }
            }
        }
    });
    path
}

/// Runs `snapshot` against the fake; asserts exit 1, no panic, and that stderr names `needle`.
fn snapshot_fails_with(
    route: impl Fn(&str) -> Act + Send + 'static,
    needle: &str,
    limit: Duration,
) {
    let sock = fake_engine(route);
    let host = format!("unix://{}", sock.display());
    let (out, _) = run_agent(&["snapshot"], &[("DOCKER_HOST", &host)], limit);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(stderr.contains(needle), "expected {needle:?} in: {stderr}");
    assert!(out.stdout.is_empty(), "no partial document on stdout");
}

fn route_info(info: Act) -> impl Fn(&str) -> Act + Send + 'static {
    move |path| {
        if path == "/_ping" {
            Act::Send(PING_OK.to_vec())
        } else {
            info.clone()
        }
    }
}

#[test]
fn garbage_instead_of_http_is_a_clear_error() {
    snapshot_fails_with(
        |_| Act::Send(b"SSH-2.0-OpenSSH_9.2p1 Debian\r\n\r\n".to_vec()),
        "malformed response head",
        Duration::from_secs(15),
    );
}

#[test]
fn a_body_cut_short_is_a_clear_error() {
    snapshot_fails_with(
        route_info(Act::Send(
            b"HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\n{\"ID\":\"x\"".to_vec(),
        )),
        "GET /info: connection closed in the middle of the body",
        Duration::from_secs(15),
    );
}

#[test]
fn a_chunked_body_cut_mid_chunk_is_a_clear_error() {
    snapshot_fails_with(
        route_info(Act::Send(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n40\r\n{\"ID\":".to_vec(),
        )),
        "connection closed in the middle of the chunked body",
        Duration::from_secs(15),
    );
}

#[test]
fn a_malformed_chunk_is_a_clear_error() {
    snapshot_fails_with(
        route_info(Act::Send(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n".to_vec(),
        )),
        "malformed chunked body",
        Duration::from_secs(15),
    );
}

#[test]
fn an_oversized_body_is_refused_before_it_is_read() {
    snapshot_fails_with(
        route_info(Act::SendAndStall(
            b"HTTP/1.1 200 OK\r\nContent-Length: 104857600\r\n\r\n".to_vec(),
        )),
        "exceeds the cap of 65536 bytes",
        Duration::from_secs(15),
    );
}

#[test]
fn an_oversized_head_names_its_cap() {
    let mut head = b"HTTP/1.1 200 OK\r\nX-Filler: ".to_vec();
    head.resize(20_000, b'a');
    snapshot_fails_with(
        route_info(Act::SendAndStall(head)),
        "HEAD_MAX_BYTES",
        Duration::from_secs(15),
    );
}

#[test]
fn malformed_json_is_a_clear_error() {
    snapshot_fails_with(
        route_info(Act::Send(ok_json("{\"ID\": [1, 2"))),
        "GET /info: unexpected JSON",
        Duration::from_secs(15),
    );
}

#[test]
fn a_malformed_container_list_is_a_clear_error() {
    snapshot_fails_with(
        |path| match path {
            "/_ping" => Act::Send(PING_OK.to_vec()),
            p if p.starts_with("/v1.41/info") => Act::Send(ok_json(INFO_OK)),
            _ => Act::Send(ok_json(r#"[{"Names":["/x"]}]"#)),
        },
        "GET /containers/json: unexpected JSON",
        Duration::from_secs(15),
    );
}

#[test]
fn an_engine_error_status_carries_its_message() {
    snapshot_fails_with(
        route_info(Act::Send(
            b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\nContent-Length: 27\r\n\r\n{\"message\":\"disk on fire\"}\n".to_vec(),
        )),
        "GET /info: HTTP 500: disk on fire",
        Duration::from_secs(15),
    );
}

#[test]
fn a_stalled_engine_times_out() {
    // The head never comes: the call deadline (CALL_TIMEOUT_MS, 10 s) ends it.
    snapshot_fails_with(
        route_info(Act::SendAndStall(b"HTTP/1.1 200 OK\r\n".to_vec())),
        "GET /info: timed out after 10000 ms waiting for the response head",
        Duration::from_secs(20),
    );
}

#[test]
fn a_stall_mid_body_times_out() {
    snapshot_fails_with(
        route_info(Act::SendAndStall(
            b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"ID\":".to_vec(),
        )),
        "timed out after 10000 ms waiting for the response body",
        Duration::from_secs(20),
    );
}

#[test]
fn an_old_engine_is_refused_by_version() {
    snapshot_fails_with(
        |_| {
            Act::Send(
                b"HTTP/1.1 200 OK\r\nApi-Version: 1.12\r\nContent-Length: 2\r\n\r\nOK".to_vec(),
            )
        },
        "older than the 1.24 this agent needs",
        Duration::from_secs(15),
    );
}

fn endpoint_error(host: &str, needle: &str) {
    let (out, _) = run_agent(
        &["snapshot"],
        &[("DOCKER_HOST", host)],
        Duration::from_secs(15),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(needle), "expected {needle:?} in: {stderr}");
}

#[test]
fn a_missing_socket_says_how_to_fix_it() {
    endpoint_error(
        "unix:///nonexistent/docker.sock",
        "cannot reach Docker at unix:///nonexistent/docker.sock: no such file; is dockerd running? set DOCKER_HOST",
    );
}

#[test]
fn a_tcp_host_nobody_listens_on_names_docker_host() {
    // tcp:// engines are supported since issue 12; a refused one names the variable to fix.
    endpoint_error("tcp://127.0.0.1:1", "check DOCKER_HOST");
}

#[test]
fn a_file_that_is_not_a_socket_is_named() {
    let dir = tempdir("notsock");
    let file = dir.join("docker.sock");
    std::fs::write(&file, b"").unwrap();
    endpoint_error(&format!("unix://{}", file.display()), "not a socket");
}

#[test]
fn a_socket_nobody_listens_on_is_refused() {
    let dir = tempdir("refused");
    let path = dir.join("docker.sock");
    drop(UnixListener::bind(&path).unwrap());
    endpoint_error(&format!("unix://{}", path.display()), "connection refused");
}

#[test]
fn permission_denied_gives_the_group_add_hint() {
    // As root the kernel would let us in: drop to nobody with setpriv (util-linux).
    let dir = tempdir("perm");
    let path = dir.join("docker.sock");
    let _listener = UnixListener::bind(&path).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o660)).unwrap();
    let bin = agent_bin();
    let out = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(&bin)
        .arg("snapshot")
        .env("DOCKER_HOST", format!("unix://{}", path.display()))
        .output()
        .expect("setpriv (util-linux) is needed for this test");
    let stderr = String::from_utf8_lossy(&out.stderr);
    if stderr.contains("Permission denied") && stderr.contains("setpriv") {
        panic!("setpriv could not run the agent as nobody (is the target dir readable?): {stderr}");
    }
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("permission denied"), "{stderr}");
    assert!(stderr.contains("--group-add $(stat -c %g"), "{stderr}");
}
