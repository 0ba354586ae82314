//! The management calls (`docker::images`, `docker::networks`, `docker::volumes`, `docker::usage`)
//! against a scripted fake engine on a temporary unix socket: an answer past its cap
//! (`IMAGES_BODY_MAX_BYTES` and the others) or of the wrong shape is a clear error naming the call
//! and the cap, never a panic or a partial answer.
mod support;

use dockmon_agent::docker::{Client, Endpoint};
use dockmon_agent::limits::*;
use std::io::{Read, Write};
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::time::Duration;
use support::tempdir;

/// Answers each request (one per connection) with `route(method, path)`'s bytes, then closes.
fn fake_engine(route: impl Fn(&str, &str) -> Vec<u8> + Send + 'static) -> PathBuf {
    let path = tempdir("fake-manage").join("docker.sock");
    let listener = UnixListener::bind(&path).unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { return };
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let mut buf = [0u8; 4096];
            let mut got = Vec::new();
            while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                }
            }
            let head = String::from_utf8_lossy(&got);
            let mut words = head.split_whitespace();
            let method = words.next().unwrap_or("").to_string();
            let target = words.next().unwrap_or("").to_string();
            let _ = s.write_all(&route(&method, &target));
        }
    });
    path
}

fn answer(len: usize, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: {len}\r\n\r\n{body}"
    )
    .into_bytes()
}

fn json(body: &str) -> Vec<u8> {
    answer(body.len(), body)
}

fn client(route: impl Fn(&str, &str) -> Vec<u8> + Send + 'static) -> Client {
    let sock = fake_engine(route);
    let endpoint = Endpoint { path: sock };
    smol::block_on(Client::connect(endpoint)).expect("the fake answers the ping")
}

#[test]
fn answers_past_their_caps_are_errors_naming_the_call_and_the_cap() {
    let c = client(|_, target| {
        let path = target.split('?').next().unwrap_or("");
        let cap = if path.ends_with("/images/json") {
            IMAGES_BODY_MAX_BYTES
        } else if path.ends_with("/volumes") {
            VOLUMES_BODY_MAX_BYTES
        } else if path.ends_with("/networks/n1") {
            NETWORK_INSPECT_BODY_MAX_BYTES
        } else if path.ends_with("/prune") {
            PRUNE_BODY_MAX_BYTES
        } else if path.ends_with("/containers/json") {
            LIST_BODY_MAX_BYTES
        } else {
            return json("OK");
        };
        // Announced one byte past the cap: refused before a byte of it is read.
        answer(cap + 1, "")
    });
    let mut buf = Vec::new();
    let cases: Vec<(String, usize)> = smol::block_on(async {
        vec![
            (
                c.images(&mut buf).await.unwrap_err().to_string(),
                IMAGES_BODY_MAX_BYTES,
            ),
            (
                c.volumes(&mut buf).await.unwrap_err().to_string(),
                VOLUMES_BODY_MAX_BYTES,
            ),
            (
                c.network("n1", &mut buf).await.unwrap_err().to_string(),
                NETWORK_INSPECT_BODY_MAX_BYTES,
            ),
            (
                c.prune_images(&mut buf).await.unwrap_err().to_string(),
                PRUNE_BODY_MAX_BYTES,
            ),
            (
                c.prune_volumes(&mut buf).await.unwrap_err().to_string(),
                PRUNE_BODY_MAX_BYTES,
            ),
            (
                c.prune_networks(&mut buf).await.unwrap_err().to_string(),
                PRUNE_BODY_MAX_BYTES,
            ),
            (
                c.container_usage(&mut buf).await.unwrap_err().to_string(),
                LIST_BODY_MAX_BYTES,
            ),
        ]
    });
    for (text, cap) in cases {
        assert!(text.starts_with("docker "), "{text}");
        assert!(
            text.contains(&format!("exceeds the cap of {cap} bytes")),
            "{text}"
        );
    }
    assert!(buf.len() <= CONN_BUF_BYTES, "nothing past the cap was kept");
}

#[test]
fn answers_of_the_wrong_shape_are_json_errors() {
    let c = client(|_, target| {
        if target.contains("/_ping") {
            json("OK")
        } else if target.contains("/images/prune") {
            json(r#"{"ImagesDeleted":5}"#)
        } else if target.contains("/networks/create") {
            json(r#"[]"#)
        } else {
            json(r#"{"Volumes":7}"#)
        }
    });
    let mut buf = Vec::new();
    smol::block_on(async {
        let e = c.prune_images(&mut buf).await.unwrap_err().to_string();
        assert!(
            e.starts_with("docker POST /images/prune: unexpected JSON"),
            "{e}"
        );
        let e = c.volumes(&mut buf).await.unwrap_err().to_string();
        assert!(e.starts_with("docker GET /volumes: unexpected JSON"), "{e}");
        let e = c.images(&mut buf).await.unwrap_err().to_string();
        assert!(
            e.starts_with("docker GET /images/json: unexpected JSON"),
            "{e}"
        );
        let req = dockmon_agent::docker::networks::NetworkCreate {
            name: "x",
            driver: "bridge",
            ..Default::default()
        };
        let e = c.create_network(&req).await.unwrap_err().to_string();
        assert!(
            e.starts_with("docker POST /networks/create: unexpected JSON"),
            "{e}"
        );
    });
}
