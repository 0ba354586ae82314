//! Issue 12: `DOCKER_HOST=tcp://` engines, plain and with TLS client certificates
//! (`DOCKER_TLS_VERIFY`, `DOCKER_CERT_PATH` with ca.pem, cert.pem, key.pem made by openssl here).
//! socat puts the real engine's socket on 127.0.0.1: `TCP-LISTEN` for plain TCP, `OPENSSL-LISTEN`
//! with `verify=1` (it demands our client certificate) for TLS. `snapshot` and agent mode work over
//! both; a wrong CA and a missing folder are clear errors naming the variable to fix.
#[path = "support/dockmon_server.rs"]
#[allow(dead_code)]
mod dockmon_server;
#[path = "support/dropin.rs"]
mod dropin;
mod support;

use dockmon_server::{DockmonServer, Options};
use serde_json::Value;
use std::time::Duration;
use support::*;

const TOKEN: &str = "reg-token-tcp";
const SOCK: &str = "/var/run/docker.sock";

fn target(name: &str) -> (Containers, String) {
    let mut cs = Containers::new("dropin-tcp");
    let id = cs.run(name, &["--network", "none"], &["sleep", "600"]);
    (cs, id)
}

/// `snapshot` over `env`, which must list `id`.
fn snapshot_lists(env: &[(&str, &str)], id: &str) {
    let (ok, out, err) = dropin::run_once(&["snapshot"], env, Duration::from_secs(60));
    assert!(ok, "snapshot failed: {err}");
    assert!(
        out.contains(id),
        "container {id} not in the snapshot:\n{out}\n{err}"
    );
}

/// Agent mode over `env`: registers and lists `id`.
fn agent_lists(env: &[(&str, &str)], id: &str) {
    let server = DockmonServer::start(Options::default().with_token(TOKEN, None, None));
    let mut env = env.to_vec();
    let url = server.url();
    env.push(("DOCKMON_URL", &url));
    env.push(("REGISTRATION_TOKEN", TOKEN));
    let agent = dropin::Agent::start(&[], &env, "tcp-agent");
    server
        .try_wait_for_agent(Duration::from_secs(30))
        .unwrap_or_else(|| panic!("no registration:\n{}", agent.log()));
    let list_id = server.send_command("list_containers", Value::Null);
    let reply = server.wait_reply(&list_id, Duration::from_secs(20));
    let listed = reply["payload"]
        .as_array()
        .unwrap_or_else(|| panic!("list_containers: {reply}\n{}", agent.log()));
    assert!(listed.iter().any(|c| c["Id"] == id), "not listed");
}

#[test]
fn plain_tcp_engine() {
    require_engine();
    let (_cs, id) = target("plain");
    let port = dropin::free_port();
    let _relay = dropin::socat(
        &format!("TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork"),
        &format!("UNIX-CONNECT:{SOCK}"),
        "127.0.0.1",
        port,
    );
    let host = format!("tcp://127.0.0.1:{port}");
    let env = [("DOCKER_HOST", host.as_str())];
    snapshot_lists(&env, &id);
    agent_lists(&env, &id);

    // Nothing listening: the error names DOCKER_HOST.
    let closed = format!("tcp://127.0.0.1:{}", dropin::free_port());
    let (ok, _, err) = dropin::run_once(
        &["snapshot"],
        &[("DOCKER_HOST", &closed)],
        Duration::from_secs(30),
    );
    assert!(!ok);
    assert!(
        err.contains(&format!(
            "cannot reach Docker at {closed}: connection refused"
        )) && err.contains("DOCKER_HOST"),
        "{err}"
    );
}

#[test]
fn tls_tcp_engine_with_client_certificates() {
    require_engine();
    let (_cs, id) = target("tls");
    let pki = tempdir("tcp-pki");
    dropin::pki(&pki, "engine");
    let port = dropin::free_port();
    let _relay = dropin::socat(
        &format!(
            "OPENSSL-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork,cert={},cafile={},verify=1",
            pki.join("server.pem").display(),
            pki.join("ca.pem").display()
        ),
        &format!("UNIX-CONNECT:{SOCK}"),
        "127.0.0.1",
        port,
    );
    let host = format!("tcp://127.0.0.1:{port}");
    let certs = pki.to_str().unwrap();
    let env = [
        ("DOCKER_HOST", host.as_str()),
        ("DOCKER_TLS_VERIFY", "1"),
        ("DOCKER_CERT_PATH", certs),
    ];
    snapshot_lists(&env, &id);
    agent_lists(&env, &id);

    // check names the engine as TLS.
    let (_, out, _) = dropin::run_once(&["check"], &env, Duration::from_secs(30));
    assert!(
        out.lines()
            .any(|l| l.starts_with("OK") && l.contains(&format!("{host} (TLS): Docker"))),
        "{out}"
    );

    // A CA that did not sign the engine's certificate: a clear handshake error.
    let other = tempdir("tcp-pki-other");
    dropin::pki(&other, "other");
    let wrong = tempdir("tcp-pki-wrong");
    std::fs::copy(other.join("ca.pem"), wrong.join("ca.pem")).unwrap();
    std::fs::copy(pki.join("cert.pem"), wrong.join("cert.pem")).unwrap();
    std::fs::copy(pki.join("key.pem"), wrong.join("key.pem")).unwrap();
    let (ok, _, err) = dropin::run_once(
        &["snapshot"],
        &[
            ("DOCKER_HOST", &host),
            ("DOCKER_TLS_VERIFY", "1"),
            ("DOCKER_CERT_PATH", wrong.to_str().unwrap()),
        ],
        Duration::from_secs(30),
    );
    assert!(!ok);
    assert!(
        err.contains("TLS handshake failed")
            && err.contains("UnknownIssuer")
            && err.contains("DOCKER_CERT_PATH"),
        "{err}"
    );

    // A folder without the files.
    let (ok, _, err) = dropin::run_once(
        &["snapshot"],
        &[
            ("DOCKER_HOST", &host),
            ("DOCKER_TLS_VERIFY", "1"),
            ("DOCKER_CERT_PATH", "/nonexistent-dmt"),
        ],
        Duration::from_secs(30),
    );
    assert!(!ok);
    assert!(
        err.contains("DOCKER_CERT_PATH=/nonexistent-dmt: ca.pem:")
            && err.contains("DOCKER_TLS_VERIFY"),
        "{err}"
    );

    // TLS off (DOCKER_TLS_VERIFY unset) against the TLS listener fails instead of hanging.
    let (ok, _, _) = dropin::run_once(
        &["snapshot"],
        &[("DOCKER_HOST", &host)],
        Duration::from_secs(40),
    );
    assert!(!ok);
}
