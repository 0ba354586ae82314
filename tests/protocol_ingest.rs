//! The stats-service dual-send (spec 4.5, issue 14): the same sample values on the main socket and
//! on `/api/stats/ws/ingest`, the Bearer token on the upgrade, a 401 logged once per backoff step,
//! and a stalled ingest socket that changes nothing on the main one.
#[path = "support/dockmon_server.rs"]
#[allow(dead_code)]
mod dockmon_server;
#[path = "support/shell.rs"]
mod shell_support;
mod support;

use dockmon_server::{DockmonServer, EventKind, Options};
use serde_json::{json, Value};
use shell_support::*;
use std::time::{Duration, Instant};
use support::*;

const T: Duration = Duration::from_secs(15);

fn setup(tag: &str, mode: IngestMode) -> (Containers, String, DockmonServer, IngestFront, Agent) {
    let mut cs = Containers::new(&format!("ingest-{tag}"));
    let id = cs.run("box", &["--network", "none"], &["sleep", "3600"]);
    let server = DockmonServer::start(Options::default().with_token(TOKEN, None, None));
    let front = IngestFront::start(server.port(), mode);
    let agent = Agent::start(&front.url(), &[("STATS_INTERVAL", "1s")]);
    server.wait_for_agent(T);
    (cs, id, server, front, agent)
}

#[test]
fn the_same_values_arrive_on_both_sockets() {
    let (_cs, id, server, front, agent) = setup("same", IngestMode::Accept);
    let info = server.registrations().remove(0);
    let end = Instant::now() + T;
    let mine = |v: &Value| v["container_id"] == id.as_str();
    while front.frames().iter().filter(|v| mine(v)).count() < 3 && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(100));
    }
    let ingest: Vec<Value> = front.frames().into_iter().filter(mine).collect();
    assert!(
        ingest.len() >= 3,
        "ingest got {ingest:?}; log:\n{}",
        agent.log()
    );
    let hello = &front.hellos()[0];
    assert_eq!(hello.path, "/api/stats/ws/ingest");
    assert_eq!(
        hello.authorization.as_deref(),
        Some(format!("Bearer {}", info.permanent_token).as_str())
    );
    let main: Vec<Value> = server
        .events(EventKind::ContainerStats)
        .into_iter()
        .filter(mine)
        .collect();
    let keys = [
        "container_id",
        "container_name",
        "cpu_percent",
        "memory_usage",
        "memory_limit",
        "memory_percent",
        "network_rx",
        "network_tx",
        "disk_read",
        "disk_write",
        "timestamp",
    ];
    for frame in &ingest {
        let obj = frame.as_object().unwrap();
        let mut got: Vec<&str> = obj.keys().map(String::as_str).collect();
        got.sort_unstable();
        let mut want = keys.to_vec();
        want.sort_unstable();
        assert_eq!(got, want, "no envelope, no host_id: {frame}");
        assert!(
            main.contains(frame),
            "ingest frame {frame} not among the main socket's payloads {main:?}"
        );
    }
    assert!(!agent.log().contains("HTTP 401"));
}

#[test]
fn a_401_is_logged_once_per_backoff_step() {
    let (_cs, _id, server, front, agent) = setup("401", IngestMode::Unauthorized);
    // Attempts at about 0, 1, 3, 7 s after the first (1 s doubling).
    std::thread::sleep(Duration::from_millis(7_600));
    let hellos = front.hellos();
    let lines = agent
        .log()
        .lines()
        .filter(|l| l.contains("stats ingest") && l.contains("HTTP 401"))
        .count();
    assert!(
        hellos.len() >= 3,
        "{} attempts:\n{}",
        hellos.len(),
        agent.log()
    );
    // The last attempt may be logged just after the count.
    assert!(
        lines == hellos.len() || lines + 1 == hellos.len(),
        "{lines} log lines for {} attempts:\n{}",
        hellos.len(),
        agent.log()
    );
    let gaps: Vec<f64> = hellos
        .windows(2)
        .map(|w| w[1].at.duration_since(w[0].at).as_secs_f64())
        .collect();
    for (i, gap) in gaps.iter().enumerate() {
        let want = f64::from(1u32 << i);
        assert!(
            *gap >= want * 0.9 && *gap < want + 1.0,
            "gap {i} was {gap:.2} s, want about {want} s: {gaps:?}"
        );
    }
    // The main socket is unaffected.
    assert_eq!(server.registrations().len(), 1);
    assert!(!server.events(EventKind::ContainerStats).is_empty());
}

#[test]
fn a_stalled_ingest_socket_changes_nothing_on_the_main_one() {
    let (_cs, id, server, front, agent) = setup("stall", IngestMode::Stall);
    let end = Instant::now() + T;
    while front.hellos().is_empty() && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(front.hellos().len(), 1, "{}", agent.log());
    let mine = |v: &Value| v["container_id"] == id.as_str();
    let count = || {
        server
            .events(EventKind::ContainerStats)
            .iter()
            .filter(|v| mine(v))
            .count()
    };
    let start = count();
    std::thread::sleep(Duration::from_secs(5));
    let got = count() - start;
    assert!(got >= 3, "{got} samples in 5 s at a 1 s interval");
    for _ in 0..5 {
        let t = Instant::now();
        let cmd = server.send_command("list_containers", json!(null));
        server.wait_reply(&cmd, Duration::from_secs(5));
        assert!(
            t.elapsed() < Duration::from_millis(500),
            "list_containers took {:?}",
            t.elapsed()
        );
    }
    assert_eq!(server.registrations().len(), 1, "{}", agent.log());
    assert!(!agent.log().contains("connection to DockMon lost"));
}

#[test]
fn a_permanent_token_known_at_start_opens_the_ingest_socket_at_once() {
    let server = DockmonServer::start(Options::default().with_token(TOKEN, None, None));
    let front = IngestFront::start(server.port(), IngestMode::Accept);
    // A permanent token the server does not know: registration keeps failing, the ingest socket
    // is opened anyway (the Go agent starts it at process start, spec 4.5).
    let agent = Agent::start(&front.url(), &[("PERMANENT_TOKEN", "perm-token-1")]);
    let end = Instant::now() + T;
    while front.hellos().is_empty() && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(50));
    }
    let hellos = front.hellos();
    assert!(!hellos.is_empty(), "{}", agent.log());
    assert_eq!(
        hellos[0].authorization.as_deref(),
        Some("Bearer perm-token-1")
    );
    assert!(server.registrations().is_empty());
    assert!(
        !agent.log().contains("perm-token-1"),
        "the token is never logged"
    );
}
