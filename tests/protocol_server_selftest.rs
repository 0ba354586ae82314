//! Proves that the DockMon test server (`tests/support/dockmon_server.rs`) models the backend:
//! each rule of spec 2.4-2.7, 3.2-3.4 and 7 is driven by a scripted tungstenite client (not our
//! agent) and checked against the exact texts and close codes. Every wait has a deadline.

#[path = "support/dockmon_server.rs"]
mod dockmon_server;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use dockmon_server::{
    check_registration, wire, AuthFault, BackendVersion, BreakerState, DockmonServer, EventKind,
    Frame, ListSchedule, Options, Outcome, Rejection, Route,
};
use serde_json::{json, Value};
use tungstenite::{Message, WebSocket};

const TOKEN: &str = "tok-1";
const WAIT: Duration = Duration::from_secs(5);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// The minimal message of spec 2.4 (7.3).
fn minimal(token: &str, engine_id: &str) -> String {
    json!({"type":"register","token":token,"engine_id":engine_id,"version":"0.1.0","proto_version":"1.1","capabilities":{}})
        .to_string()
}

/// The minimal message plus members.
fn with(token: &str, engine_id: &str, extra: Value) -> String {
    let mut v: Value =
        serde_json::from_str(&minimal(token, engine_id)).expect("minimal message is JSON");
    for (k, x) in extra.as_object().expect("extra is an object") {
        v[k] = x.clone();
    }
    v.to_string()
}

/// A server with one multi-use token and no poller (most tests want a quiet socket).
fn quiet() -> Options {
    Options::default()
        .with_token(TOKEN, None, None)
        .with_list_containers(None)
}

/// A scripted agent: a tungstenite client on a plain TCP socket.
struct Client {
    ws: WebSocket<TcpStream>,
}

impl Client {
    fn connect(server: &DockmonServer) -> Client {
        let stream =
            TcpStream::connect(("127.0.0.1", server.port())).expect("connect to the test server");
        stream
            .set_read_timeout(Some(WAIT))
            .expect("set read timeout");
        stream
            .set_write_timeout(Some(WAIT))
            .expect("set write timeout");
        let (ws, _) =
            tungstenite::client::client(server.ws_url(), stream).expect("WebSocket handshake");
        // Short reads from here on: `next` polls against its own deadline.
        ws.get_ref()
            .set_read_timeout(Some(ms(20)))
            .expect("set read timeout");
        Client { ws }
    }

    fn send(&mut self, text: &str) {
        self.ws
            .send(Message::Text(text.to_owned()))
            .expect("send a text frame");
    }

    /// The next message within `timeout` (`Ok(None)` on timeout).
    #[allow(clippy::result_large_err)] // tungstenite's own error type, matched on by the tests.
    fn next(&mut self, timeout: Duration) -> Result<Option<Message>, tungstenite::Error> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.ws.read() {
                Ok(m) => return Ok(Some(m)),
                Err(tungstenite::Error::Io(e))
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    if Instant::now() >= deadline {
                        return Ok(None);
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The next text frame as JSON, skipping control frames; `None` on timeout.
    fn try_json(&mut self, timeout: Duration) -> Option<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next(left).expect("read from the test server") {
                None => return None,
                Some(Message::Text(t)) => {
                    return Some(serde_json::from_str(&t).expect("server sent JSON"))
                }
                Some(Message::Ping(_) | Message::Pong(_)) => {}
                Some(other) => panic!("expected a text frame, got {other:?}"),
            }
        }
    }

    fn json(&mut self, timeout: Duration) -> Value {
        self.try_json(timeout)
            .unwrap_or_else(|| panic!("no text frame within {timeout:?}"))
    }

    /// Reads until the server's close frame and returns its code and reason.
    fn expect_close(&mut self, timeout: Duration) -> (u16, String) {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next(left) {
                Ok(Some(Message::Close(Some(cf)))) => {
                    return (u16::from(cf.code), cf.reason.into_owned())
                }
                Ok(Some(Message::Close(None))) => return (1005, String::new()),
                Ok(Some(_)) => {}
                Ok(None) => panic!("no close frame within {timeout:?}"),
                Err(e) => panic!("socket ended without a close frame: {e}"),
            }
        }
    }

    /// Sends a registration frame: `Ok(auth_success)`, or `Err(error)` after checking the close
    /// 1008 `Authentication failed` that must follow an `auth_error` (spec 2.5).
    fn register(&mut self, frame: &str) -> Result<Value, String> {
        self.send(frame);
        let reply = self.json(WAIT);
        match reply["type"].as_str() {
            Some("auth_success") => Ok(reply),
            Some("auth_error") => {
                let error = reply["error"]
                    .as_str()
                    .expect("auth_error has a string error")
                    .to_owned();
                assert_eq!(
                    reply.as_object().map(|o| o.len()),
                    Some(2),
                    "auth_error is flat: {reply}"
                );
                assert_eq!(
                    self.expect_close(WAIT),
                    (1008, "Authentication failed".to_owned())
                );
                Err(error)
            }
            _ => panic!("unexpected registration reply {reply}"),
        }
    }
}

/// Registers on a fresh connection; panics on rejection.
fn registered(server: &DockmonServer, token: &str, engine_id: &str) -> (Client, Value) {
    let mut client = Client::connect(server);
    let reply = client
        .register(&minimal(token, engine_id))
        .expect("registration accepted");
    (client, reply)
}

/// Registers on a fresh connection and returns the rejection text.
fn rejected(server: &DockmonServer, frame: &str) -> String {
    Client::connect(server)
        .register(frame)
        .expect_err("registration must be rejected")
}

fn is_uuid4(s: &str) -> bool {
    let b = s.as_bytes();
    s.len() == 36
        && [8, 13, 18, 23].iter().all(|i| b[*i] == b'-')
        && b[14] == b'4'
        && matches!(b[19], b'8' | b'9' | b'a' | b'b')
        && s.chars()
            .filter(|c| *c != '-')
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
}

// --- registration: the schema (spec 2.4 rules 2-13) --------------------------------------------

#[test]
fn registration_table_matches_the_fixture() {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/dockmon/registration_cases.tsv");
    let table = std::fs::read_to_string(&path).expect("read registration_cases.tsv");
    let mut checked = 0;
    for (n, line) in table.lines().enumerate() {
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let cols: Vec<&str> = line.splitn(4, '\t').collect();
        assert_eq!(cols.len(), 4, "line {}: four tab-separated columns", n + 1);
        let version = match cols[0] {
            "V2_2_0" => BackendVersion::V2_2_0,
            "V2_2_1" => BackendVersion::V2_2_1,
            "V2_2_11" => BackendVersion::V2_2_11,
            "V2_4_1" => BackendVersion::V2_4_1,
            other => panic!("line {}: unknown version {other}", n + 1),
        };
        let got = match check_registration(cols[3], version) {
            Ok(_) => "ok".to_owned(),
            Err(Rejection::Internal) => "CLOSE 1011".to_owned(),
            Err(Rejection::AuthError(e)) => e,
        };
        assert_eq!(
            got,
            cols[1],
            "line {} ({}, {}): {}",
            n + 1,
            cols[0],
            cols[2],
            cols[3]
        );
        checked += 1;
    }
    assert!(checked > 300, "only {checked} cases read");
}

#[test]
fn sanitisers_clean_without_rejecting() {
    let frame = with(
        TOKEN,
        "e",
        json!({"hostname":" <b>vm</b>\u{7} ","daemon_started_at":"<x>2026","host_ips":[" <192.0.2.1> ","","bad"]}),
    );
    let reg = check_registration(&frame, BackendVersion::HEAD).expect("accepted");
    assert_eq!(reg.hostname.as_deref(), Some("bvm/b"));
    assert_eq!(reg.fields["daemon_started_at"], json!("x2026"));
    assert_eq!(reg.fields["host_ips"], json!(["192.0.2.1"]));
    assert_eq!(reg.fields["force_unique_registration"], json!(false));
    assert_eq!(reg.fields["total_memory"], Value::Null);
}

#[test]
fn minimal_register_message_gets_a_flat_auth_success() {
    let server = DockmonServer::start(quiet());
    let mut client = Client::connect(&server);
    let reply = client
        .register(&minimal(TOKEN, "engine-1"))
        .expect("minimal message accepted");
    let keys: Vec<&str> = reply
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys.len(), 4, "flat reply, no envelope: {reply}");
    let agent_id = reply["agent_id"].as_str().expect("agent_id");
    assert!(is_uuid4(agent_id), "agent_id is a UUIDv4: {agent_id}");
    assert!(is_uuid4(reply["host_id"].as_str().expect("host_id")));
    assert_eq!(reply["permanent_token"], reply["agent_id"]);
    // Written in the backend's member order.
    let sent = server.sent();
    let Some(Frame::Text(text)) = sent
        .iter()
        .map(|s| &s.frame)
        .find(|f| matches!(f, Frame::Text(_)))
    else {
        panic!("no text frame sent")
    };
    assert!(
        text.starts_with(r#"{"type":"auth_success","agent_id":""#),
        "{text}"
    );
    let info = server.wait_for_agent(WAIT);
    assert_eq!(info.agent_id, agent_id);
    assert!(!info.reconnect);
    assert_eq!(info.register["engine_id"], json!("engine-1"));
    assert_eq!(
        server.host_name(agent_id).as_deref(),
        Some("Agent-engine-1")
    );
    assert!(server.agent_online(agent_id));
}

#[test]
fn schema_rejections_send_auth_error_then_close_1008() {
    let server = DockmonServer::start(quiet());
    let cases = [
        (with(TOKEN, "e", json!({"bogus_field":1})), "Invalid registration data: Extra inputs are not permitted (field: bogus_field)"),
        (with(TOKEN, "e", json!({"num_cpus":0})), "Invalid registration data: Input should be greater than 0 (field: num_cpus)"),
        (with(TOKEN, "e", json!({"total_memory":0})), "Invalid registration data: Input should be greater than 0 (field: total_memory)"),
        (with(TOKEN, "e", json!({"version":1})), "Invalid registration data: Input should be a valid string (field: version)"),
        (with(TOKEN, "e", json!({"type":"reconnect"})), "Invalid authentication type: reconnect"),
        (with("bad token", "e", json!({})), "Invalid registration data: Value error, ID must contain only alphanumeric characters, hyphens, underscores, and colons (field: token)"),
        (with(TOKEN, "e", json!({"hostname_source":"manual"})), "Invalid registration data: Input should be 'agent_name', 'daemon', 'os' or 'engine_id' (field: hostname_source)"),
    ];
    for (frame, expected) in cases {
        assert_eq!(rejected(&server, &frame), expected);
    }
    assert_eq!(server.auth_errors().len(), 7);
    assert!(server.wait_connections(0, WAIT));
    assert!(server.registrations().is_empty());
}

#[test]
fn colons_in_ids_depend_on_the_backend_version() {
    let legacy = "IFO2:3MUH:VFNQ:HHBS:6AHF:4QO6:44YY:KEHL:BR3S:SSCZ:MZVF:4HJM";
    let old = DockmonServer::start(quiet().with_version(BackendVersion::V2_2_0));
    assert_eq!(
        rejected(&old, &minimal(TOKEN, legacy)),
        "Invalid registration data: Value error, ID must contain only alphanumeric characters, hyphens, and \
         underscores (field: engine_id)"
    );
    let fixed = DockmonServer::start(quiet().with_version(BackendVersion::V2_2_1));
    registered(&fixed, TOKEN, legacy);
    let head = DockmonServer::start(quiet());
    registered(&head, TOKEN, legacy);
}

#[test]
fn extra_keys_depend_on_the_backend_version() {
    let ips = json!({"host_ips":["192.0.2.2"],"host_ip":"192.0.2.2"});
    let named =
        json!({"hostname":"vm","hostname_source":"agent_name","force_unique_registration":false});
    for (version, ips_ok, named_ok) in [
        (BackendVersion::V2_2_0, false, false),
        (BackendVersion::V2_2_1, false, false),
        (BackendVersion::V2_2_11, true, false),
        (BackendVersion::V2_4_1, true, true),
    ] {
        let server = DockmonServer::start(quiet().with_version(version));
        let mut c = Client::connect(&server);
        match c.register(&with(TOKEN, "e1", ips.clone())) {
            Ok(_) => assert!(ips_ok, "{version:?} accepted host_ips"),
            Err(e) => {
                assert!(!ips_ok, "{version:?}: {e}");
                assert_eq!(
                    e,
                    "Invalid registration data: Extra inputs are not permitted (field: host_ips)"
                );
            }
        }
        let mut c = Client::connect(&server);
        match c.register(&with(TOKEN, "e2", named.clone())) {
            Ok(_) => assert!(named_ok, "{version:?} accepted hostname_source"),
            Err(e) => {
                assert!(!named_ok, "{version:?}: {e}");
                // serde_json writes keys sorted: force_unique_registration comes first.
                assert_eq!(
                    e,
                    "Invalid registration data: Extra inputs are not permitted (field: force_unique_registration)"
                );
            }
        }
        // host_ip alone is in every version's key set.
        registered(&server, TOKEN, &format!("e3{version:?}"));
        let mut c = Client::connect(&server);
        c.register(&with(TOKEN, "e4", json!({"host_ip":"192.0.2.9"})))
            .expect("host_ip accepted");
    }
}

// --- registration: the business rules (spec 2.4 rules 14-17) ----------------------------------

#[test]
fn registration_tokens_are_checked_for_uses_and_expiry() {
    let past = SystemTime::now() - Duration::from_secs(1);
    let future = SystemTime::now() + Duration::from_secs(900);
    let server = DockmonServer::start(
        Options::default()
            .with_list_containers(None)
            .with_token("single", Some(1), Some(future))
            .with_token("expired", None, Some(past))
            .with_token("used-and-expired", Some(0), Some(past)),
    );
    assert_eq!(
        rejected(&server, &minimal("unknown", "e1")),
        "Invalid registration token"
    );
    assert_eq!(
        rejected(&server, &minimal("expired", "e1")),
        "Registration token has expired"
    );
    assert_eq!(
        rejected(&server, &minimal("used-and-expired", "e1")),
        "Registration token has reached maximum uses",
        "exhaustion is checked before expiry"
    );
    registered(&server, "single", "e1");
    assert_eq!(server.token_uses("single"), Some(1));
    assert_eq!(
        rejected(&server, &minimal("single", "e2")),
        "Registration token has reached maximum uses"
    );
}

#[test]
fn permanent_token_reconnects_with_the_same_ids_and_checks_engine_id() {
    let server = DockmonServer::start(quiet().with_token("once", Some(1), None));
    let (mut first, reply) = registered(&server, "once", "engine-a");
    let agent_id = reply["agent_id"].as_str().expect("agent_id").to_owned();
    first.ws.close(None).expect("close");
    assert!(server.wait_connections(0, WAIT));
    assert!(!server.agent_online(&agent_id));

    let (_again, again) = registered(&server, &agent_id, "engine-a");
    assert_eq!(again, reply, "same agent_id, host_id and permanent_token");
    server.wait_for_agent(WAIT);
    assert!(server.wait_for_agent(WAIT).reconnect);
    assert_eq!(
        server.token_uses("once"),
        Some(1),
        "a reconnect does not use the registration token"
    );

    assert_eq!(
        rejected(&server, &minimal(&agent_id, "engine-b")),
        "Permanent token does not match engine_id"
    );
}

#[test]
fn engine_id_is_unique_unless_force_unique_with_agent_name() {
    let server = DockmonServer::start(quiet());
    registered(&server, TOKEN, "clone");
    assert_eq!(
        rejected(&server, &minimal(TOKEN, "clone")),
        "Agent with this engine_id is already registered. If this is a cloned VM, either: (a) delete \
         /var/lib/docker/engine-id (or /etc/docker/key.json on older systems) and restart Docker to generate a \
         unique engine ID, then reinstall the agent; or (b) set FORCE_UNIQUE_REGISTRATION=true and \
         AGENT_NAME=<unique-name> on the agent."
    );
    let force = |source: Value| {
        with(
            TOKEN,
            "clone",
            json!({"force_unique_registration":true,"hostname":"clone-2","hostname_source":source}),
        )
    };
    let expected = |shown: &str| {
        format!(
            "FORCE_UNIQUE_REGISTRATION=true requires AGENT_NAME to be set on the agent. The agent reported its \
             hostname source as {shown}; cloned-VM registration needs AGENT_NAME so each clone has a unique display \
             name in DockMon."
        )
    };
    assert_eq!(
        rejected(&server, &force(json!("daemon"))),
        expected("'daemon'")
    );
    assert_eq!(rejected(&server, &force(Value::Null)), expected("None"));
    let mut c = Client::connect(&server);
    let ok = c
        .register(&force(json!("agent_name")))
        .expect("a named clone registers");
    assert_eq!(
        server
            .host_name(ok["agent_id"].as_str().expect("id"))
            .as_deref(),
        Some("clone-2")
    );
}

#[test]
fn host_names_are_unique_and_a_reconnect_rename_skips_taken_names() {
    let server = DockmonServer::start(quiet());
    let mut a = Client::connect(&server);
    let a_reply = a
        .register(&with(TOKEN, "ea", json!({"hostname":"vm"})))
        .expect("a");
    assert_eq!(
        rejected(&server, &with(TOKEN, "eb", json!({"hostname":"vm"}))),
        "A host named 'vm' already exists in DockMon. Set AGENT_NAME to a unique value and retry."
    );
    let mut b = Client::connect(&server);
    let b_reply = b
        .register(&with(TOKEN, "eb", json!({"hostname":"  other  "})))
        .expect("b");
    let b_id = b_reply["agent_id"].as_str().expect("id").to_owned();
    assert_eq!(
        server.host_name(&b_id).as_deref(),
        Some("other"),
        "hostname is trimmed"
    );
    // Reconnect of b as "vm": taken by a, so b keeps its name; as "renamed": free, so it is renamed.
    let mut b2 = Client::connect(&server);
    b2.register(&with(&b_id, "eb", json!({"hostname":"vm"})))
        .expect("reconnect");
    assert_eq!(server.host_name(&b_id).as_deref(), Some("other"));
    let mut b3 = Client::connect(&server);
    b3.register(&with(&b_id, "eb", json!({"hostname":"renamed"})))
        .expect("reconnect");
    assert_eq!(server.host_name(&b_id).as_deref(), Some("renamed"));
    assert_eq!(
        server
            .host_name(a_reply["agent_id"].as_str().expect("id"))
            .as_deref(),
        Some("vm")
    );
}

#[test]
fn a_local_docker_engine_cannot_register_an_agent() {
    let mut options = quiet();
    options.local_engine_ids.push("local-engine".to_owned());
    let server = DockmonServer::start(options);
    assert_eq!(
        rejected(&server, &with(TOKEN, "local-engine", json!({"force_unique_registration":true,"hostname_source":"agent_name"}))),
        "Migration not supported for local Docker connections. Agents are only for remote hosts. Local Docker \
         monitoring via socket is the preferred method for localhost."
    );
}

#[test]
fn a_deleted_agents_token_becomes_invalid() {
    let server = DockmonServer::start(quiet());
    let (mut client, reply) = registered(&server, TOKEN, "e1");
    let agent_id = reply["agent_id"].as_str().expect("id");
    assert!(server.delete_agent(agent_id));
    // Spec 2.10: the socket is not closed.
    assert!(client.next(ms(300)).expect("socket open").is_none());
    assert_eq!(
        rejected(&server, &minimal(agent_id, "e1")),
        "Invalid registration token"
    );
}

// --- connections (spec 2.2, 2.4/1-2, 2.6) ------------------------------------------------------

#[test]
fn a_second_connection_of_the_same_agent_closes_the_first_with_1000() {
    let server = DockmonServer::start(quiet());
    let (mut first, reply) = registered(&server, TOKEN, "e1");
    let agent_id = reply["agent_id"].as_str().expect("id");
    let (mut second, again) = registered(&server, agent_id, "e1");
    assert_eq!(again["agent_id"], reply["agent_id"]);
    assert_eq!(
        first.expect_close(WAIT),
        (1000, "New connection established".to_owned())
    );
    assert!(server.wait_connections(1, WAIT));
    assert!(
        server.agent_online(agent_id),
        "the old socket's end does not take the agent offline"
    );
    let id = server.send_command("list_images", json!({}));
    assert_eq!(
        second.json(WAIT)["id"],
        json!(id),
        "commands go to the new socket"
    );
}

#[test]
fn binary_or_non_json_frames_close_1011_during_auth_and_after() {
    let server = DockmonServer::start(quiet());
    let internal = (1011, "Internal error".to_owned());

    let mut c = Client::connect(&server);
    c.ws.send(Message::Binary(minimal(TOKEN, "e1").into_bytes()))
        .expect("send");
    assert_eq!(c.expect_close(WAIT), internal, "binary registration frame");
    for text in [r#"{"type":"register","#, r#"["register"]"#, "42"] {
        let mut c = Client::connect(&server);
        c.send(text);
        assert_eq!(c.expect_close(WAIT), internal, "registration frame {text}");
    }
    assert!(
        server.auth_errors().is_empty(),
        "no auth_error before a 1011"
    );

    let (_, reply) = registered(&server, TOKEN, "e1");
    let agent_id = reply["agent_id"].as_str().expect("id").to_owned();
    let live = [
        "not json",
        "[1,2]",
        "null",
        r#"{"correlation_id":["unhashable"],"success":true}"#,
        r#"{"type":"event","command":"container_stats","payload":null}"#,
    ];
    for text in live {
        let (mut c, _) = registered(&server, &agent_id, "e1");
        c.send(text);
        assert_eq!(c.expect_close(WAIT), internal, "after auth: {text}");
    }
    let (mut c, _) = registered(&server, &agent_id, "e1");
    c.ws.send(Message::Binary(b"{}".to_vec())).expect("send");
    assert_eq!(c.expect_close(WAIT), internal, "binary frame after auth");
    let fatal = server
        .frames()
        .iter()
        .filter(|f| f.route == Some(Route::Fatal))
        .count();
    assert_eq!(fatal, 10);
}

#[test]
fn the_first_frame_must_arrive_within_the_auth_timeout() {
    let server = DockmonServer::start(quiet().with_auth_timeout(ms(300)));
    let mut c = Client::connect(&server);
    let started = Instant::now();
    assert_eq!(
        c.json(WAIT),
        json!({"type":"auth_error","error":"Authentication timeout"})
    );
    assert!(started.elapsed() >= ms(250), "not before the timeout");
    assert_eq!(
        c.expect_close(WAIT),
        (1008, "Authentication timeout".to_owned())
    );
}

#[test]
fn list_containers_arrives_0_1_to_2_s_after_auth_then_at_irregular_intervals() {
    let schedule = ListSchedule {
        every: (ms(200), ms(600)),
        ..ListSchedule::default()
    };
    let server = DockmonServer::start(
        Options::default()
            .with_token(TOKEN, None, None)
            .with_list_containers(Some(schedule)),
    );
    let (mut c, _) = registered(&server, TOKEN, "e1");
    let authed = Instant::now();
    let first = c.json(Duration::from_secs(3));
    let delay = authed.elapsed();
    assert!(
        delay >= ms(80) && delay <= ms(2300),
        "first list_containers after {delay:?}"
    );
    let keys: Vec<&str> = first
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys.len(), 4, "no payload: {first}");
    assert_eq!(first["type"], json!("command"));
    assert_eq!(first["command"], json!("list_containers"));
    assert_eq!(first["id"], first["correlation_id"]);
    let mut gaps = Vec::new();
    let mut cmd = first;
    for _ in 0..3 {
        let id = cmd["id"].as_str().expect("id").to_owned();
        c.send(&json!({"type":"response","id":id,"payload":[]}).to_string());
        let replied = Instant::now();
        assert_eq!(server.wait_outcome(&id, WAIT), Outcome::Success(json!([])));
        cmd = c.json(WAIT);
        gaps.push(replied.elapsed());
        assert_eq!(cmd["command"], json!("list_containers"));
    }
    for gap in &gaps {
        assert!(*gap >= ms(180) && *gap <= ms(900), "poll interval {gap:?}");
    }
    assert!(gaps.windows(2).any(|w| w[0] != w[1]), "irregular: {gaps:?}");
    assert!(server.breaker_failures().is_empty());
}

#[test]
fn the_server_pings_and_drops_a_socket_whose_pong_is_late() {
    let server = DockmonServer::start(quiet().with_keepalive(ms(200), ms(300)));
    let (mut c, _) = registered(&server, TOKEN, "e1");
    // A client that reads answers every ping (tungstenite pongs automatically) and stays.
    let mut pings = 0;
    let until = Instant::now() + ms(1200);
    while Instant::now() < until {
        if let Some(Message::Ping(p)) = c.next(ms(50)).expect("read") {
            assert_eq!(p.len(), 4);
            pings += 1;
        }
    }
    assert!(pings >= 3, "{pings} pings in 1.2 s at a 200 ms interval");
    assert_eq!(server.connections(), 1);
    assert!(server.server_closes().is_empty());
    // Stop reading: no pong, the socket is closed with websockets' keepalive close, at most one
    // interval plus one timeout later.
    let stopped = Instant::now();
    assert!(
        server.wait_until(Duration::from_secs(3), |s| !s.server_closes().is_empty()),
        "socket closed"
    );
    let close = server.server_closes().remove(0);
    let after = close.at.duration_since(stopped);
    assert!(after <= ms(800), "closed after {after:?}");
    assert_eq!(
        (close.code, close.reason.as_str()),
        (Some(1011), "keepalive ping timeout")
    );
    assert!(
        server.wait_connections(0, Duration::from_secs(3)),
        "socket dropped"
    );
}

// --- commands, routing, breaker (spec 2.7, 3.2-3.4) -------------------------------------------

#[test]
fn the_breaker_opens_after_five_error_replies_and_closes_after_two_probes() {
    let server = DockmonServer::start(quiet().with_breaker(Duration::from_secs(60), ms(300)));
    let (mut c, reply) = registered(&server, TOKEN, "e1");
    let agent_id = reply["agent_id"].as_str().expect("id").to_owned();
    let answer = |c: &mut Client, reply: Value| {
        let cmd = c.json(WAIT);
        let id = cmd["id"].as_str().expect("id").to_owned();
        let mut reply = reply;
        reply["id"] = json!(id);
        c.send(&reply.to_string());
        id
    };
    // A success while closed clears the failures: 4 errors, 1 success, 4 errors stay closed.
    for round in 0..2 {
        for _ in 0..4 {
            server.send_command("list_images", json!({}));
            let id = answer(&mut c, json!({"type":"response","error":"boom"}));
            assert_eq!(
                server.wait_outcome(&id, WAIT),
                Outcome::Failed("boom".to_owned())
            );
        }
        assert_eq!(server.breaker_state(&agent_id), BreakerState::Closed);
        if round == 0 {
            server.send_command("list_images", json!({}));
            let id = answer(&mut c, json!({"type":"response","payload":[]}));
            assert!(server.wait_outcome(&id, WAIT).is_success());
        }
    }
    server.send_command("list_images", json!({}));
    let id = answer(&mut c, json!({"type":"response","error":"boom"}));
    assert_eq!(
        server.wait_outcome(&id, WAIT),
        Outcome::Failed("boom".to_owned())
    );
    assert_eq!(server.breaker_state(&agent_id), BreakerState::Open);
    assert_eq!(server.breaker_failures().len(), 9);

    let refused = server.send_command("list_images", json!({}));
    assert_eq!(
        server.outcome(&refused),
        Outcome::Failed(format!("Circuit breaker is open for agent {agent_id}"))
    );
    assert!(c.try_json(ms(200)).is_none(), "nothing is sent while open");
    assert_eq!(
        server.breaker_failures().len(),
        9,
        "rejections are not failures"
    );

    thread::sleep(ms(350));
    for expected in [BreakerState::HalfOpen, BreakerState::Closed] {
        server.send_command("list_images", json!({}));
        let id = answer(&mut c, json!({"type":"response","payload":[]}));
        assert!(server.wait_outcome(&id, WAIT).is_success());
        assert_eq!(server.breaker_state(&agent_id), expected);
    }
}

#[test]
fn timeouts_count_as_failures_and_late_replies_are_unknown() {
    // 30 s * 0.01 = 0.3 s for list_images.
    let server = DockmonServer::start(quiet().with_timeout_scale(0.01));
    let (mut c, reply) = registered(&server, TOKEN, "e1");
    let agent_id = reply["agent_id"].as_str().expect("id").to_owned();
    let ids: Vec<String> = (0..5)
        .map(|_| server.send_command("list_images", json!({})))
        .collect();
    for id in &ids {
        assert_eq!(
            server.wait_outcome(id, WAIT),
            Outcome::Failed("Command timeout after 0.3 seconds".to_owned())
        );
    }
    assert_eq!(server.breaker_state(&agent_id), BreakerState::Open);
    assert_eq!(server.breaker_failures().len(), 5);
    c.send(&json!({"type":"response","id":ids[0],"payload":[]}).to_string());
    let line = format!("Received response for unknown correlation_id: {}", ids[0]);
    assert!(
        server.wait_until(WAIT, |s| s.log().contains(&line)),
        "{:?}",
        server.log()
    );
    // A container operation is refused too, after its inspect was.
    let stop = server.container_operation("stop", "abc123def456", json!({"timeout":5}));
    assert_eq!(
        server.wait_outcome(&stop, WAIT),
        Outcome::Failed(format!("Circuit breaker is open for agent {agent_id}"))
    );
}

#[test]
fn container_operations_inspect_first_and_refuse_dockmon_itself() {
    let server = DockmonServer::start(quiet());
    let (mut c, _) = registered(&server, TOKEN, "e1");
    let inspected = |c: &mut Client, container: Value| {
        let inspect = c.json(WAIT);
        assert_eq!(inspect["type"], json!("container_operation"));
        assert_eq!(
            inspect["payload"],
            json!({"action":"inspect","container_id":"abc123def456"})
        );
        let id = inspect["id"].as_str().expect("id").to_owned();
        c.send(&json!({"correlation_id":id,"success":true,"container":container}).to_string());
    };

    let op = server.container_operation("stop", "abc123def456", json!({}));
    inspected(&mut c, json!({"Name":"/web","Config":{"Labels":{}}}));
    let stop = c.json(WAIT);
    assert_eq!(stop["id"], json!(op));
    assert_eq!(
        stop["payload"],
        json!({"action":"stop","container_id":"abc123def456","timeout":10})
    );
    let text = server
        .sent()
        .into_iter()
        .filter_map(|s| match s.frame {
            Frame::Text(t) if t.contains(&op) => Some(t),
            _ => None,
        })
        .next()
        .expect("stop frame sent");
    assert!(
        text.starts_with(r#"{"type":"container_operation","payload":{"action":"stop","container_id":"abc123def456","timeout":10},"id":""#),
        "{text}"
    );
    let done = json!({"correlation_id":op,"success":true,"container_id":"abc123def456","status":"stopped"});
    c.send(&done.to_string());
    assert_eq!(
        server.wait_outcome(&op, WAIT),
        Outcome::Success(done.clone())
    );
    assert_eq!(server.wait_reply(&op, WAIT), done);

    for (action, container, refusal) in [
        (
            "restart",
            json!({"Name":"/DockMon-agent"}),
            "Cannot restart DockMon itself. Please restart manually via Docker CLI.",
        ),
        (
            "stop",
            json!({"Name":"/dockmon"}),
            "Cannot stop DockMon itself. Please stop manually via Docker CLI.",
        ),
        (
            "remove",
            json!({"Name":"/x","Config":{"Labels":{"app":"dockmon"}}}),
            "Cannot remove DockMon itself.",
        ),
    ] {
        let op = server.container_operation(action, "abc123def456", json!({}));
        inspected(&mut c, container);
        assert_eq!(
            server.wait_outcome(&op, WAIT),
            Outcome::Failed(refusal.to_owned())
        );
        assert!(c.try_json(ms(150)).is_none(), "{action} not sent");
    }

    // A failed inspect does not block the action (the backend fails open) but counts as a failure.
    let op = server.container_operation("kill", "abc123def456", json!({}));
    let inspect = c.json(WAIT);
    c.send(
        &json!({"correlation_id":inspect["id"],"success":false,"error":"No such container"})
            .to_string(),
    );
    let kill = c.json(WAIT);
    assert_eq!(
        (kill["id"].clone(), kill["payload"]["action"].clone()),
        (json!(op), json!("kill"))
    );
    assert_eq!(server.breaker_failures().len(), 1);

    // start and get_logs are not inspected; get_logs gets a clamped tail.
    let start = server.container_operation("start", "abc123def456", json!({}));
    assert_eq!(c.json(WAIT)["id"], json!(start));
    server.container_operation("get_logs", "abc123def456", json!({"tail":0}));
    assert_eq!(
        c.json(WAIT)["payload"],
        json!({"action":"get_logs","container_id":"abc123def456","tail":1})
    );
    server.container_operation("remove", "abc123def456", json!({}));
    inspected(&mut c, json!({"Name":"/web"}));
    assert_eq!(
        c.json(WAIT)["payload"],
        json!({"action":"remove","container_id":"abc123def456","force":false})
    );
}

#[test]
fn incoming_frames_are_routed_as_the_backend_does() {
    let server = DockmonServer::start(quiet());
    let (mut c, reply) = registered(&server, TOKEN, "e1");
    let agent_id = reply["agent_id"].as_str().expect("id").to_owned();
    let event = json!({"container_id":"b1","container_name":"web","action":"die","attributes":{"exitCode":"0"}});
    let stats = json!({"container_id":"b1","cpu_percent":1.5});
    let frames = [
        json!({"type":"event","command":"container_event","payload":event,"timestamp":"t"}),
        json!({"type":"event","command":"container_stats","payload":stats}),
        json!({"type":"stats","stats":{"cpu_percent":12.5}}),
        json!({"type":"heartbeat"}),
        json!({"type":"progress"}),
        json!({"type":"error","error":"x"}),
        json!({"type":"event","command":"mystery"}),
        json!({"type":"whatever"}),
        json!({"type":"response","id":"nope","payload":1}),
        json!({"correlation_id":"","success":true}),
        json!({"id":"not-a-reply","type":"event","command":"container_event","payload":{}}),
    ];
    for f in &frames {
        c.send(&f.to_string());
    }
    let n = frames.len();
    assert!(
        server.wait_until(WAIT, |s| s.frames().len() > n),
        "frames arrived"
    );
    let routes: Vec<Route> = server
        .frames()
        .into_iter()
        .skip(1)
        .filter_map(|f| f.route)
        .collect();
    let event_route = |name: &str, known: bool| Route::Event {
        name: name.to_owned(),
        known,
    };
    assert_eq!(
        routes,
        vec![
            event_route("container_event", true),
            event_route("container_stats", true),
            Route::HostStats,
            Route::Heartbeat,
            Route::Progress,
            Route::ErrorReport,
            event_route("mystery", false),
            Route::Unknown,
            Route::Reply {
                id: "nope".to_owned(),
                matched: false
            },
            Route::Reply {
                id: String::new(),
                matched: false
            },
            event_route("container_event", true),
        ]
    );
    assert_eq!(
        server.events(EventKind::ContainerEvent),
        vec![event, json!({})]
    );
    assert_eq!(server.events(EventKind::ContainerStats), vec![stats]);
    assert_eq!(
        server.events(EventKind::HostStats),
        vec![json!({"cpu_percent":12.5})]
    );
    let log = server.log();
    for line in [
        format!("Unknown event type from agent {agent_id}: mystery"),
        format!("Unknown message type from agent {agent_id}: whatever"),
        "Received response for unknown correlation_id: nope".to_owned(),
        "Received agent message without correlation_id, ignoring".to_owned(),
    ] {
        assert!(log.contains(&line), "{line} not in {log:?}");
    }
    // Reply interpretation: a reply with neither success nor payload is invalid.
    let id = server.send_command("list_volumes", Value::Null);
    let cmd = c.json(WAIT);
    assert!(cmd.get("payload").is_none(), "null payload omitted: {cmd}");
    c.send(&json!({"type":"response","id":id,"data":[]}).to_string());
    assert_eq!(
        server.wait_outcome(&id, WAIT),
        Outcome::Failed("Invalid response: missing 'success' or 'payload' field".to_owned())
    );
    assert_eq!(server.connections(), 1, "none of these closes the socket");
}

// --- restart, half-open, hostile frames, HTTP ---------------------------------------------------

#[test]
fn restart_keeps_the_port_and_the_database() {
    let server = DockmonServer::start(quiet().with_token("once", Some(1), None));
    let url = server.url();
    let (mut c, reply) = registered(&server, "once", "e1");
    let agent_id = reply["agent_id"].as_str().expect("id").to_owned();
    let port = server.port();
    thread::scope(|s| {
        let restarting = s.spawn(|| server.restart_after(ms(800)));
        assert_eq!(
            c.expect_close(WAIT),
            (1012, String::new()),
            "uvicorn's shutdown close"
        );
        thread::sleep(ms(200));
        assert!(
            TcpStream::connect(("127.0.0.1", port)).is_err(),
            "not listening during the restart"
        );
        restarting.join().expect("restart");
    });
    assert_eq!(server.url(), url);
    let (_c, again) = registered(&server, &agent_id, "e1");
    assert_eq!(again, reply);
    assert_eq!(
        rejected(&server, &minimal("once", "e2")),
        "Registration token has reached maximum uses"
    );
}

#[test]
fn half_open_keeps_tcp_but_stops_reading_and_answering_pings() {
    let server = DockmonServer::start(
        quiet()
            .with_keepalive(ms(300), ms(300))
            .with_timeout_scale(0.01),
    );
    let (mut c, _) = registered(&server, TOKEN, "e1");
    server.set_half_open(true);
    c.ws.send(Message::Ping(b"x".to_vec())).expect("ping");
    let id = server.send_command("list_images", json!({}));
    let until = Instant::now() + ms(600);
    while Instant::now() < until {
        match c.next(ms(50)).expect("socket stays open") {
            None => {}
            Some(m) => panic!("half-open server sent {m:?}"),
        }
    }
    assert_eq!(server.connections(), 1, "TCP kept");
    assert_eq!(
        server.wait_outcome(&id, WAIT),
        Outcome::Failed("Command timeout after 0.3 seconds".to_owned())
    );
    // A new connection is served normally.
    let mut other = Client::connect(&server);
    other
        .register(&minimal(TOKEN, "e2"))
        .expect("a later connection works");
    server.set_half_open(false);
    let deadline = Instant::now() + WAIT;
    loop {
        match c.next(ms(50)).expect("read") {
            Some(Message::Pong(p)) if p == b"x" => break,
            _ => assert!(Instant::now() < deadline, "no pong after resuming"),
        }
    }
}

#[test]
fn hostile_frames_arrive_byte_exact() {
    let server = DockmonServer::start(quiet());
    let (_first, reply) = registered(&server, TOKEN, "e1");
    let agent_id = reply["agent_id"].as_str().expect("id").to_owned();
    let fresh = || registered(&server, &agent_id, "e1").0;

    let mut c = fresh();
    assert!(server.send_ping_with_payload(b"hello"));
    assert_eq!(
        c.next(WAIT).expect("read"),
        Some(Message::Ping(b"hello".to_vec()))
    );
    let _ = c.next(ms(100)); // flushes tungstenite's automatic pong
    assert!(server.wait_until(WAIT, |s| s
        .frames()
        .iter()
        .any(|f| f.frame == Frame::Pong(b"hello".to_vec()))));

    assert!(server.send_binary_frame());
    assert!(
        matches!(c.next(WAIT).expect("read"), Some(Message::Binary(b)) if b.starts_with(b"{\"type\":\"command\""))
    );
    assert!(server.send_unknown_type());
    assert_eq!(c.json(WAIT)["type"], json!("no_such_type"));
    assert!(server.send_bad_json());
    assert_eq!(
        c.next(WAIT).expect("read"),
        Some(Message::Text(r#"{"type":"command","command":"#.to_owned()))
    );

    let mut c = fresh();
    assert!(server.send_invalid_utf8_text());
    assert!(matches!(c.next(WAIT), Err(tungstenite::Error::Utf8)));

    let mut c = fresh();
    assert!(server.send_oversized_text_frame());
    assert!(
        matches!(c.next(WAIT), Err(tungstenite::Error::Capacity(_))),
        "20 MiB announced"
    );

    let mut c = fresh();
    assert!(server.send_fragmented_text_with_close());
    assert_eq!(c.expect_close(WAIT), (1000, "bye".to_owned()));

    // A raw reply to registration instead of auth_success.
    server.set_auth_fault(Some(AuthFault::Raw(wire::frame(
        true,
        wire::OP_BINARY,
        b"garbage",
    ))));
    let mut c = Client::connect(&server);
    c.send(&minimal(&agent_id, "e1"));
    assert_eq!(
        c.next(WAIT).expect("read"),
        Some(Message::Binary(b"garbage".to_vec()))
    );
}

#[test]
fn health_answers_200_and_other_paths_404() {
    let server = DockmonServer::start(quiet());
    let http = |request: &str| {
        let mut s = TcpStream::connect(("127.0.0.1", server.port())).expect("connect");
        s.set_read_timeout(Some(WAIT)).expect("timeout");
        s.write_all(request.as_bytes()).expect("write");
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    };
    let health = http("GET /health HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(health.starts_with("HTTP/1.1 200 OK\r\n"), "{health}");
    assert!(
        health.ends_with("\r\n\r\n{\"status\":\"healthy\"}"),
        "{health}"
    );
    let plain = http("GET /api/agent/ws HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(
        plain.starts_with("HTTP/1.1 404 Not Found\r\n")
            && plain.ends_with("{\"detail\":\"Not Found\"}"),
        "{plain}"
    );
    let big = format!(
        "GET /health HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(20_000)
    );
    assert!(http(&big).starts_with("HTTP/1.1 431 "));

    let stream = TcpStream::connect(("127.0.0.1", server.port())).expect("connect");
    let url = format!("ws://127.0.0.1:{}/api/stats/ws/ingest", server.port());
    match tungstenite::client::client(url, stream) {
        Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Http(resp))) => {
            assert_eq!(resp.status(), 404)
        }
        Err(e) => panic!("expected HTTP 404 at the upgrade, got {e}"),
        Ok(_) => panic!("expected HTTP 404 at the upgrade, got a WebSocket"),
    }
    assert_eq!(server.connections(), 0);
}

#[test]
fn dropping_the_server_closes_sockets_and_stops_listening() {
    let server = DockmonServer::start(quiet());
    let port = server.port();
    let (mut c, _) = registered(&server, TOKEN, "e1");
    let dropping = Instant::now();
    drop(server);
    assert!(
        dropping.elapsed() < Duration::from_secs(3),
        "drop took {:?}",
        dropping.elapsed()
    );
    assert_eq!(c.expect_close(WAIT).0, 1012);
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
}
