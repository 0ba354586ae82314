//! Issue 12: the DockMon connection through an HTTP CONNECT proxy started by the test, with and
//! without basic auth, to the protocol test server over plain `ws://` and over `wss://` (socat
//! terminates TLS in front of the server with a certificate made by openssl); `NO_PROXY` bypasses it;
//! `check` names the proxy without its credentials.
//!
//! DockMon is addressed as `dockmon.test`, a name that does not resolve: the agent can only reach it
//! through the proxy (which maps it to 127.0.0.1), so a registration proves the tunnel was used.
#[path = "support/dockmon_server.rs"]
#[allow(dead_code)]
mod dockmon_server;
#[path = "support/dropin.rs"]
mod dropin;
mod support;

use dockmon_server::{DockmonServer, Options};
use dropin::{Agent, Proxy};
use std::time::Duration;
use support::*;

const TOKEN: &str = "reg-token-proxy";

fn server() -> DockmonServer {
    DockmonServer::start(Options::default().with_token(TOKEN, None, None))
}

#[test]
fn plain_ws_through_a_connect_proxy_with_and_without_auth() {
    require_engine();
    let server = server();
    let url = format!("http://dockmon.test:{}", server.port());

    // No auth.
    let proxy = Proxy::start(None);
    let agent = Agent::start(
        &[],
        &[
            ("DOCKMON_URL", &url),
            ("REGISTRATION_TOKEN", TOKEN),
            ("HTTP_PROXY", &proxy.url()),
        ],
        "proxy-plain",
    );
    let reg = server
        .try_wait_for_agent(Duration::from_secs(20))
        .unwrap_or_else(|| panic!("no registration through the proxy:\n{}", agent.log()));
    assert!(!reg.reconnect);
    {
        let seen = proxy.seen.lock().unwrap();
        let want = format!("CONNECT dockmon.test:{} HTTP/1.1", server.port());
        assert_eq!(seen.requests.first(), Some(&want), "{seen:?}");
        assert_eq!(seen.auth.first(), Some(&None));
    }
    drop(agent);

    // Basic auth from the URL's userinfo (percent-decoded), never logged.
    let proxy = Proxy::start(Some("dXNlcjpwQHNz")); // "user:p@ss"
    let with_auth = format!("http://user:p%40ss@127.0.0.1:{}", proxy.port);
    let before = server.registrations().len();
    let agent = Agent::start(
        &[],
        &[
            ("DOCKMON_URL", &url),
            ("REGISTRATION_TOKEN", TOKEN),
            ("http_proxy", &with_auth),
        ],
        "proxy-auth",
    );
    assert!(
        server.wait_until(Duration::from_secs(20), |s| s.registrations().len()
            > before),
        "no registration through the authenticating proxy:\n{}",
        agent.log()
    );
    assert_eq!(proxy.seen.lock().unwrap().answers.first(), Some(&200));
    assert!(!agent.log().contains("p@ss") && !agent.log().contains("dXNlcjpwQHNz"));
    drop(agent);

    // Wrong password: a clear 407 error, retried, and no secret in the log.
    let wrong = format!("http://user:nope@127.0.0.1:{}", proxy.port);
    let agent = Agent::start(
        &[],
        &[
            ("DOCKMON_URL", &url),
            ("REGISTRATION_TOKEN", TOKEN),
            ("HTTP_PROXY", &wrong),
        ],
        "proxy-wrong",
    );
    assert!(
        agent.wait_log(
            "407 proxy authentication required; the user or password in the proxy URL was refused",
            Duration::from_secs(10)
        ),
        "{}",
        agent.log()
    );
    assert!(!agent.log().contains("nope"), "{}", agent.log());
    assert!(
        agent.log().contains("http://***@127.0.0.1"),
        "{}",
        agent.log()
    );
}

#[test]
fn wss_inside_the_tunnel_and_check_reports_the_proxy() {
    require_engine();
    let server = server();
    let dir = tempdir("proxy-pki");
    dropin::pki(&dir, "proxy");
    let tls_port = dropin::free_port();
    let _tls = dropin::socat(
        &format!(
            "OPENSSL-LISTEN:{tls_port},bind=127.0.0.1,reuseaddr,fork,cert={},verify=0",
            dir.join("server.pem").display()
        ),
        &format!("TCP:127.0.0.1:{}", server.port()),
        "127.0.0.1",
        tls_port,
    );
    let url = format!("https://dockmon.test:{tls_port}");
    let ca = dir.join("ca.pem");
    let proxy = Proxy::start(Some("YWdlbnQ6czNjcmV0")); // "agent:s3cret"
    let proxy_url = format!("http://agent:s3cret@127.0.0.1:{}", proxy.port);
    let env = [
        ("DOCKMON_URL", url.as_str()),
        ("REGISTRATION_TOKEN", TOKEN),
        ("HTTPS_PROXY", &proxy_url),
        // Only HTTPS_PROXY matters for wss://; this one would fail if it were used.
        ("HTTP_PROXY", "http://127.0.0.1:9"),
        ("SSL_CERT_FILE", ca.to_str().unwrap()),
    ];

    // check: the proxy line names it without credentials, and /health answers through the tunnel.
    let data = tempdir("proxy-check");
    let mut check_env = env.to_vec();
    check_env.push(("DATA_PATH", data.to_str().unwrap()));
    let (ok, out, err) = dropin::run_once(&["check"], &check_env, Duration::from_secs(30));
    assert!(ok, "check failed:\n{out}{err}");
    let line = out.lines().find(|l| l.contains("proxy")).unwrap_or("");
    assert!(
        line.starts_with("OK")
            && line.contains(&format!(
                "http://***@127.0.0.1:{} (from HTTPS_PROXY) with basic auth",
                proxy.port
            )),
        "{out}"
    );
    assert!(!out.contains("s3cret"), "{out}");
    assert!(out.contains("answered 200 (certificate verified)"), "{out}");

    let agent = Agent::start(&[], &env, "proxy-wss");
    server
        .try_wait_for_agent(Duration::from_secs(20))
        .unwrap_or_else(|| {
            panic!(
                "no registration over wss through the proxy:\n{}",
                agent.log()
            )
        });
    let seen = proxy.seen.lock().unwrap();
    assert!(
        seen.requests
            .iter()
            .all(|r| r == &format!("CONNECT dockmon.test:{tls_port} HTTP/1.1")),
        "{seen:?}"
    );
    assert!(
        seen.requests.len() >= 2,
        "check and agent both tunnelled: {seen:?}"
    );
}

#[test]
fn no_proxy_bypasses_the_proxy() {
    require_engine();
    let server = server();
    // A non-loopback address of this host (loopback is never proxied, as in Go), relayed to the
    // server by socat.
    let ip = std::process::Command::new("hostname")
        .arg("-I")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .split_whitespace()
                .find(|a| {
                    a.parse::<std::net::Ipv4Addr>()
                        .is_ok_and(|ip| !ip.is_loopback())
                })
                .map(str::to_string)
        })
        .expect("this test needs a non-loopback IPv4 address on the host (hostname -I)");
    let port = dropin::free_port();
    let _relay = dropin::socat(
        &format!("TCP-LISTEN:{port},bind={ip},reuseaddr,fork"),
        &format!("TCP:127.0.0.1:{}", server.port()),
        &ip,
        port,
    );
    let url = format!("http://{ip}:{port}");
    let proxy = Proxy::start(None);
    for (no_proxy, proxied) in [
        ("", true),
        (&*format!("example.com, {ip}"), false),
        (&*format!("{}/24", ip), false),
        (&*format!("{ip}:{port}"), false),
        (&*format!("{ip}:1"), true),
        ("*", false),
    ] {
        let before_connects = proxy.connects();
        let before = server.registrations().len();
        let agent = Agent::start(
            &[],
            &[
                ("DOCKMON_URL", &url),
                ("REGISTRATION_TOKEN", TOKEN),
                ("HTTP_PROXY", &proxy.url()),
                ("no_proxy", no_proxy),
            ],
            "proxy-bypass",
        );
        assert!(
            server.wait_until(Duration::from_secs(20), |s| s.registrations().len()
                > before),
            "NO_PROXY={no_proxy:?}: no registration:\n{}",
            agent.log()
        );
        assert_eq!(
            proxy.connects() > before_connects,
            proxied,
            "NO_PROXY={no_proxy:?}"
        );
    }
}
