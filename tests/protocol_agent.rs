//! The agent against the protocol test server (a model of DockMon's backend, tests/support) and the
//! real engine: registration, reconnection, rejections, commands and operations on real containers,
//! events, keepalive failures and hostile frames.
#[path = "support/dockmon_server.rs"]
#[allow(dead_code)]
mod dockmon_server;
mod support;

use dockmon_server::{BackendVersion, DockmonServer, EventKind, Options, Outcome};
use serde_json::{json, Value};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};
use support::*;

const TOKEN: &str = "reg-token-1";

/// The agent binary running against a server, its stderr in a file, killed when dropped.
struct Agent {
    child: Child,
    log: PathBuf,
    data: PathBuf,
}

impl Agent {
    fn start(server: &DockmonServer, env: &[(&str, &str)]) -> Agent {
        let data = tempdir("agent-data");
        Self::start_with_data(server, env, data)
    }

    fn start_with_data(server: &DockmonServer, env: &[(&str, &str)], data: PathBuf) -> Agent {
        require_engine();
        let log = data.with_extension("log");
        let mut cmd = agent_command(Command::new(agent_bin()), &server.url(), TOKEN, &data, &log);
        for (k, v) in env {
            cmd.env(k, v);
        }
        Agent {
            child: cmd.spawn().expect("spawn the agent"),
            log,
            data,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn wait_log(&self, needle: &str, timeout: Duration) -> bool {
        wait_for_log(&self.log, needle, timeout)
    }

    /// SIGTERM, then the exit code (killed after 10 s).
    fn terminate(&mut self) -> Option<i32> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let end = Instant::now() + Duration::from_secs(10);
        while Instant::now() < end {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn server() -> DockmonServer {
    DockmonServer::start(Options::default().with_token(TOKEN, None, None))
}

#[test]
fn registers_within_a_second_persists_the_token_and_reconnects_with_it() {
    let server = server();
    let started = Instant::now();
    let mut agent = Agent::start(&server, &[]);
    let first = server.wait_for_agent(Duration::from_secs(10));
    assert!(
        first.at.duration_since(started) < Duration::from_secs(1),
        "registered after {:?}",
        first.at.duration_since(started)
    );
    assert!(!first.reconnect);
    let reg = &first.register;
    assert_eq!(reg["token"], TOKEN);
    assert_eq!(reg["capabilities"]["container_operations"], true);
    assert_eq!(reg["capabilities"]["self_update"], false);
    assert!(reg["engine_id"].as_str().is_some_and(|s| !s.is_empty()));
    assert!(["amd64", "arm64", "arm"].contains(&reg["agent_arch"].as_str().unwrap()));
    for key in ["hostname_source", "force_unique_registration", "host_ips"] {
        assert!(
            reg.get(key).is_none() || key == "host_ips",
            "{key} sent without need"
        );
    }

    let token_file = agent.data.join("permanent_token");
    assert!(server.wait_until(Duration::from_secs(5), |_| token_file.exists()));
    assert_eq!(
        std::fs::read_to_string(&token_file).unwrap(),
        first.permanent_token
    );
    let mode = std::fs::metadata(&token_file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert!(
        !agent.log().contains(TOKEN) && !agent.log().contains(&first.permanent_token),
        "tokens in the log"
    );

    // A server restart: the agent comes back with the permanent token.
    server.restart();
    let again = server.wait_for_agent(Duration::from_secs(15));
    assert!(again.reconnect, "reconnected with the permanent token");
    assert_eq!(again.register["token"], first.permanent_token.as_str());
    assert_eq!(again.agent_id, first.agent_id);

    // A restarted agent reads the token file: no registration token needed.
    assert_eq!(agent.terminate(), Some(0), "SIGTERM exits 0");
    assert!(server.server_closes().iter().all(|c| c.code != Some(1011)));
    let data = agent.data.clone();
    drop(agent);
    let agent2 = Agent::start_with_data(&server, &[("REGISTRATION_TOKEN", "")], data);
    let third = server.wait_for_agent(Duration::from_secs(10));
    assert!(third.reconnect);
    assert_eq!(third.agent_id, first.agent_id);
    drop(agent2);
    assert!(
        server.breaker_failures().is_empty(),
        "{:?}",
        server.breaker_failures()
    );
}

#[test]
fn an_unknown_registration_token_is_a_clear_error_and_retried_with_backoff() {
    let server = server();
    let agent = Agent::start(&server, &[("REGISTRATION_TOKEN", "not-a-known-token")]);
    assert!(
        agent.wait_log(
            "rejected the registration: Invalid registration token",
            Duration::from_secs(10)
        ),
        "{}",
        agent.log()
    );
    std::thread::sleep(Duration::from_secs(3));
    let attempts = server.auth_errors().len();
    // 200 ms doubling to 2 s with jitter: a handful of tries in 3 s, not hundreds.
    assert!((2..=12).contains(&attempts), "{attempts} attempts");
    // The same failure is logged once, not once per attempt.
    assert_eq!(
        agent.log().matches("Invalid registration token").count(),
        1,
        "{}",
        agent.log()
    );
    // Adding the token lets the next attempt through.
    server.add_token("not-a-known-token", None, None);
    server.wait_for_agent(Duration::from_secs(10));
}

#[test]
fn an_older_server_gets_only_the_keys_it_knows() {
    // v2.2.1 refuses force_unique_registration and hostname_source; the agent drops them and retries.
    let server = DockmonServer::start(
        Options::default()
            .with_token(TOKEN, None, None)
            .with_version(BackendVersion::V2_2_1),
    );
    let agent = Agent::start(
        &server,
        &[
            ("AGENT_NAME", "edge-1"),
            ("FORCE_UNIQUE_REGISTRATION", "true"),
        ],
    );
    let info = server.wait_for_agent(Duration::from_secs(15));
    assert!(info.register.get("hostname_source").is_none());
    assert!(info.register.get("force_unique_registration").is_none());
    assert_eq!(info.register["hostname"], "edge-1");
    assert!(
        agent.wait_log("registering without it", Duration::from_secs(1)),
        "{}",
        agent.log()
    );
}

#[test]
fn a_v2_2_0_server_refusing_colons_is_reported_clearly() {
    // Docker 20.10's engine ID has colons, which v2.2.0 refused (fixed in v2.2.1).
    let engine_id = docker(&["info", "--format", "{{.ID}}"]);
    if !engine_id.contains(':') {
        return; // a UUID engine ID passes v2.2.0's pattern; nothing to show here
    }
    let server = DockmonServer::start(
        Options::default()
            .with_token(TOKEN, None, None)
            .with_version(BackendVersion::V2_2_0),
    );
    let agent = Agent::start(&server, &[]);
    assert!(
        agent.wait_log(
            "rejected the registration: Invalid registration data",
            Duration::from_secs(10)
        ),
        "{}",
        agent.log()
    );
}

#[test]
fn commands_and_operations_work_on_real_containers() {
    let server = server();
    let _agent = Agent::start(&server, &[]);
    server.wait_for_agent(Duration::from_secs(10));
    let mut cs = Containers::new("proto-ops");
    let id = cs.run(
        "target",
        &[],
        &["sh", "-c", "echo out-line; echo err-line >&2; sleep 100000"],
    );
    let short = &id[..12];

    // list_containers: Docker's objects plus the three agent keys.
    let list_id = server.send_command("list_containers", Value::Null);
    let reply = server.wait_reply(&list_id, Duration::from_secs(20));
    let list = reply["payload"].as_array().expect("payload array");
    let ours = list
        .iter()
        .find(|c| c["Id"] == id.as_str())
        .expect("our container listed");
    assert!(ours["RepoDigests"].is_array());
    assert!(ours["StartedAt"].is_string());
    assert!(ours["Env"].is_object());

    // get_logs: stdout lines, then stderr lines, each with an RFC 3339 nano time stamp.
    let logs_id = server.container_operation("get_logs", short, json!({"tail": 50}));
    let logs = server.wait_reply(&logs_id, Duration::from_secs(20));
    assert_eq!(logs["success"], true, "{logs}");
    let text = logs["logs"].as_str().unwrap();
    let out_at = text.find("out-line").expect("stdout line");
    let err_at = text.find("err-line").expect("stderr line");
    assert!(out_at < err_at);
    assert!(
        text.lines()
            .all(|l| l.len() > 30 && &l[4..5] == "-" && l.contains('T')),
        "{text}"
    );

    // stop through the server (it inspects first, as DockMon does): Docker shows it stopped.
    let stop_id = server.container_operation("stop", short, json!({"timeout": 1}));
    let stopped = server.wait_reply(&stop_id, Duration::from_secs(30));
    assert_eq!(stopped["success"], true, "{stopped}");
    assert_eq!(stopped["status"], "stopped");
    assert_eq!(
        docker(&["inspect", "-f", "{{.State.Running}}", &id]).trim(),
        "false"
    );

    let start_id = server.container_operation("start", short, json!({}));
    assert_eq!(
        server.wait_reply(&start_id, Duration::from_secs(20))["status"],
        "started"
    );
    assert_eq!(
        docker(&["inspect", "-f", "{{.State.Running}}", &id]).trim(),
        "true"
    );

    let new_name = cs.name("renamed");
    let rename_id = server.container_operation("rename", short, json!({"new_name": new_name}));
    assert_eq!(
        server.wait_reply(&rename_id, Duration::from_secs(20))["status"],
        "renamed"
    );
    assert_eq!(
        docker(&["inspect", "-f", "{{.Name}}", &id]).trim(),
        format!("/{new_name}")
    );

    let kill_id = server.container_operation("kill", short, json!({}));
    assert_eq!(
        server.wait_reply(&kill_id, Duration::from_secs(20))["status"],
        "killed"
    );

    let rm_id = server.container_operation("remove", short, json!({"force": true}));
    assert_eq!(
        server.wait_reply(&rm_id, Duration::from_secs(20))["removed"],
        true
    );
    assert!(docker(&["ps", "-aq", "--no-trunc"])
        .lines()
        .all(|l| l != id));

    // Unknown actions and commands: answered, never silent.
    let bad_op = server.container_operation("explode", "0000deadbeef", json!({}));
    assert_eq!(
        server.wait_reply(&bad_op, Duration::from_secs(10))["error"],
        "unknown action: explode"
    );
    let bad_cmd = server.send_command("create_volume", json!({}));
    assert_eq!(
        server.wait_outcome(&bad_cmd, Duration::from_secs(10)),
        Outcome::Failed("unknown command: create_volume".into())
    );
    let missing = server.container_operation("inspect", "0000deadbeef", json!({}));
    let reply = server.wait_reply(&missing, Duration::from_secs(10));
    assert_eq!(reply["success"], false);
    assert!(
        reply["error"]
            .as_str()
            .unwrap()
            .contains("No such container"),
        "{reply}"
    );
}

#[test]
fn events_arrive_within_two_seconds_and_stats_flow() {
    let server = server();
    let _agent = Agent::start(&server, &[]);
    server.wait_for_agent(Duration::from_secs(10));
    let mut cs = Containers::new("proto-events");
    let id = cs.run("ev", &[], &["sleep", "100000"]);
    // Stats for the running container (every 5 s).
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline
        && !server
            .events(EventKind::ContainerStats)
            .iter()
            .any(|s| s["container_id"] == id.as_str())
    {
        std::thread::sleep(Duration::from_millis(100));
    }
    let stats = server.events(EventKind::ContainerStats);
    let s = stats
        .iter()
        .find(|s| s["container_id"] == id.as_str())
        .expect("container_stats for our container");
    for key in [
        "cpu_percent",
        "memory_usage",
        "memory_limit",
        "memory_percent",
        "network_rx",
        "network_tx",
        "disk_read",
        "disk_write",
        "timestamp",
        "container_name",
    ] {
        assert!(s.get(key).is_some(), "{key} in {s}");
    }
    assert!(s.get("pids").is_none(), "exactly the payload of spec 4.2");
    assert!(
        !server.events(EventKind::HostStats).is_empty(),
        "host stats from /proc"
    );

    let before = server.events(EventKind::ContainerEvent).len();
    let t = Instant::now();
    docker(&["stop", "-t", "0", &id]);
    let stopped_at = Instant::now();
    let ok = server.wait_until(Duration::from_secs(10), |s| {
        s.events(EventKind::ContainerEvent)[before..]
            .iter()
            .any(|e| e["container_id"] == id.as_str() && e["action"] == "die")
    });
    assert!(ok, "no die event");
    let took = stopped_at.elapsed().max(t.elapsed()) - stopped_at.duration_since(t);
    assert!(
        took < Duration::from_secs(2),
        "die event {took:?} after docker stop"
    );
    let die = server
        .events(EventKind::ContainerEvent)
        .into_iter()
        .find(|e| e["container_id"] == id.as_str() && e["action"] == "die")
        .unwrap();
    assert_eq!(die["container_name"], cs.name("ev"));
    assert!(die["attributes"]["exitCode"].is_string());
}

#[test]
fn a_half_open_server_is_left_after_the_read_deadline() {
    let server = server();
    let agent = Agent::start(&server, &[]);
    server.wait_for_agent(Duration::from_secs(10));
    server.set_half_open(true);
    // Ping at 30 s, nothing back, deadline at 40 s: a new connection follows.
    let again = server.try_wait_for_agent(Duration::from_secs(60));
    assert!(again.is_some(), "no reconnection; log: {}", agent.log());
    assert!(
        agent.log().contains("nothing received for 40 s"),
        "{}",
        agent.log()
    );
}

#[test]
fn hostile_frames_are_survived_with_a_log_line() {
    let server = server();
    let agent = Agent::start(&server, &[]);
    server.wait_for_agent(Duration::from_secs(10));
    let answered = |server: &DockmonServer| {
        let id = server.send_command("list_containers", Value::Null);
        server
            .wait_outcome(&id, Duration::from_secs(20))
            .is_success()
    };

    assert!(server.send_bad_json());
    assert!(
        agent.wait_log("not a JSON object", Duration::from_secs(5)),
        "{}",
        agent.log()
    );
    assert!(server.send_unknown_type());
    assert!(
        agent.wait_log("unknown type", Duration::from_secs(5)),
        "{}",
        agent.log()
    );
    assert!(server.send_binary_frame());
    assert!(
        agent.wait_log("binary frame", Duration::from_secs(5)),
        "{}",
        agent.log()
    );
    assert!(server.send_ping_with_payload(b"are you there"));
    assert!(
        answered(&server),
        "still answering after bad JSON, unknown type, binary, ping"
    );

    // Frames that break the protocol end the connection (RFC 6455 §7.1.7), and the agent reconnects.
    for (what, inject) in [
        (
            "oversized",
            DockmonServer::send_oversized_text_frame as fn(&DockmonServer) -> bool,
        ),
        ("invalid utf-8", DockmonServer::send_invalid_utf8_text),
        (
            "close mid-message",
            DockmonServer::send_fragmented_text_with_close,
        ),
    ] {
        assert!(inject(&server), "{what}: no socket");
        let back = server.try_wait_for_agent(Duration::from_secs(15));
        assert!(
            back.is_some(),
            "{what}: no reconnection; log: {}",
            agent.log()
        );
        assert!(
            answered(&server),
            "{what}: not answering after reconnecting"
        );
    }
    assert!(
        agent.log().contains("connection to DockMon lost"),
        "{}",
        agent.log()
    );
    assert!(!agent.log().contains("panicked"));
}
