//! Scenarios of spec 2.5, 2.7 and 2.8 walked through [`Session`], with no socket and no sleep: time
//! is an argument, the random number too.
use super::*;
use crate::dockmon::register::Registration;

const S: fn(u64) -> Duration = Duration::from_secs;

fn settings(permanent: bool) -> Settings {
    Settings {
        url: "ws://d.lan/api/agent/ws".into(),
        token: "reg-token".into(),
        permanent,
        reconnect_initial: S(1),
        reconnect_max: S(60),
        token_file: "/data/permanent_token".into(),
    }
}

fn reg() -> Box<Registration> {
    Box::new(Registration {
        engine_id: "ENGINE:ID".into(),
        hostname: ("pi".into(), "daemon"),
        version: "1.0.0".into(),
        proto_version: "1.0".into(),
        force_unique: false,
        agent_os: "linux",
        agent_arch: "arm64",
        facts: None,
        host_ips: vec![],
        self_update: false,
    })
}

const OK: &str = r#"{"type":"auth_success","agent_id":"A","host_id":"H","permanent_token":"A"}"#;

/// A compact view of the actions, for assertions.
fn names(actions: &Actions) -> Vec<String> {
    actions
        .iter()
        .map(|a| match a {
            Action::GatherFacts => "facts".into(),
            Action::Connect => "connect".into(),
            Action::Send(f) => format!("send {}", String::from_utf8_lossy(f)),
            Action::Ping => "ping".into(),
            Action::Close { code, reason } => format!("close {code} {reason}"),
            Action::Disconnect => "disconnect".into(),
            Action::Up => "up".into(),
            Action::Down => "down".into(),
            Action::WaitUntil(_) => "wait".into(),
            Action::StoreToken(t) => format!("store {t}"),
            Action::Run(r) => format!("run {}", r.id),
            Action::Notice(_) => "notice".into(),
            Action::Log(level, text) => format!("{level} {text}"),
            Action::Exit(why) => format!("exit {why:?}"),
        })
        .collect()
}

fn wait_of(actions: &Actions) -> Option<Instant> {
    actions.iter().rev().find_map(|a| match a {
        Action::WaitUntil(t) => Some(*t),
        _ => None,
    })
}

fn has(actions: &Actions, prefix: &str) -> bool {
    names(actions).iter().any(|n| n.starts_with(prefix))
}

/// Drives a session to a registered connection at `t0`; returns it.
fn registered(t0: Instant, permanent: bool) -> Session {
    let mut s = Session::new(settings(permanent));
    assert_eq!(names(&s.handle(t0, Event::Start, 0.5)), ["facts"]);
    assert_eq!(
        names(&s.handle(t0, Event::Facts(Ok(reg())), 0.5)),
        ["connect"]
    );
    let a = s.handle(t0, Event::Connected, 0.5);
    let n = names(&a);
    assert!(
        n[0].starts_with(r#"send {"type":"register","token":"#),
        "{n:?}"
    );
    assert_eq!(
        wait_of(&a),
        Some(t0 + S(10)),
        "10 s for the answer (spec 2.7)"
    );
    assert!(s.handle(t0, Event::Sent, 0.5).is_empty());
    let a = s.handle(t0, Event::Text(OK), 0.5);
    let n = names(&a);
    assert!(n.contains(&"store A".to_string()), "{n:?}");
    assert!(n.contains(&"up".to_string()));
    assert!(n
        .iter()
        .any(|l| l == "INFO registered with DockMon at ws://d.lan/api/agent/ws as host H"));
    assert!(
        !n.iter().any(|l| l.starts_with("INFO") && l.contains(" A")),
        "token logged: {n:?}"
    );
    assert_eq!(wait_of(&a), Some(t0 + S(30)), "first ping in 30 s");
    assert!(s.is_serving());
    s
}

#[test]
fn registers_stores_the_permanent_token_and_reconnects_with_it() {
    let t0 = Instant::now();
    let mut s = registered(t0, false);
    assert!(s.is_permanent());
    // Healthy for two minutes, then the server restarts: reconnect at once (spec 2.8).
    let t1 = t0 + S(120);
    let a = s.handle(
        t1,
        Event::Closed {
            code: Some(1001),
            reason: "restart".into(),
        },
        0.5,
    );
    assert_eq!(
        names(&a),
        [
            "disconnect",
            "down",
            "WARN connection to DockMon lost: server closed the connection (1001 restart); reconnecting",
            "facts"
        ]
    );
    s.handle(t1, Event::Facts(Ok(reg())), 0.5);
    let a = s.handle(t1, Event::Connected, 0.5);
    assert!(
        names(&a)[0].contains(r#""token":"A""#),
        "the permanent token: {:?}",
        names(&a)
    );
}

#[test]
fn a_refused_key_is_dropped_and_retried_at_once() {
    let t0 = Instant::now();
    let mut s = Session::new(settings(false));
    s.handle(t0, Event::Start, 0.5);
    s.handle(t0, Event::Facts(Ok(reg())), 0.5);
    s.handle(t0, Event::Connected, 0.5);
    let refusal = r#"{"type":"auth_error","error":"Invalid registration data: Extra inputs are not permitted (field: agent_os)"}"#;
    let a = s.handle(t0, Event::Text(refusal), 0.5);
    assert_eq!(
        names(&a),
        [
            "disconnect",
            "INFO this DockMon server does not know the registration key `agent_os`; registering without it",
            "facts"
        ]
    );
    s.handle(t0, Event::Facts(Ok(reg())), 0.5);
    let a = s.handle(t0, Event::Connected, 0.5);
    let frame = &names(&a)[0];
    assert!(!frame.contains("agent_os"), "{frame}");
    assert!(frame.contains("agent_arch"), "{frame}");
}

#[test]
fn an_unknown_token_is_logged_once_and_backed_off() {
    let t0 = Instant::now();
    let mut s = Session::new(settings(true));
    let mut t = t0;
    let mut delays = Vec::new();
    let mut errors = 0;
    s.handle(t, Event::Start, 0.0);
    for _ in 0..4 {
        s.handle(t, Event::Facts(Ok(reg())), 0.0);
        s.handle(t, Event::Connected, 0.0);
        let a = s.handle(
            t,
            Event::Text(r#"{"type":"auth_error","error":"Invalid registration token"}"#),
            0.0,
        );
        errors += names(&a).iter().filter(|n| n.starts_with("ERROR")).count();
        if delays.is_empty() {
            assert!(has(&a, "ERROR DockMon at ws://d.lan/api/agent/ws rejected the registration: Invalid registration token"));
            assert!(has(
                &a,
                "ERROR the permanent token in /data/permanent_token is no longer known"
            ));
        }
        let until = wait_of(&a).unwrap();
        delays.push(until - t);
        // Early timers change nothing.
        assert!(s.handle(t, Event::Timer, 0.0).is_empty());
        t = until;
        assert_eq!(names(&s.handle(t, Event::Timer, 0.0)), ["facts"]);
    }
    assert_eq!(errors, 2, "the same failure is logged once (with its hint)");
    // A refused permanent token (the host was deleted) waits the longest delay from the first
    // refusal: `reconnect_max` 60 s with jitter 0 is 30 s (issue 17).
    assert_eq!(delays, [S(30), S(30), S(30), S(30)]);
}

#[test]
fn an_unknown_registration_token_keeps_the_doubling_backoff() {
    let mut s = Session::new(settings(false));
    let mut t = Instant::now();
    let mut delays = Vec::new();
    s.handle(t, Event::Start, 0.0);
    for _ in 0..4 {
        s.handle(t, Event::Facts(Ok(reg())), 0.0);
        s.handle(t, Event::Connected, 0.0);
        let a = s.handle(
            t,
            Event::Text(r#"{"type":"auth_error","error":"Invalid registration token"}"#),
            0.0,
        );
        assert!(!has(&a, "ERROR the permanent token"));
        let until = wait_of(&a).unwrap();
        delays.push(until - t);
        t = until;
        s.handle(t, Event::Timer, 0.0);
    }
    // A registration token may be added in DockMon at any moment: keep trying sooner.
    assert_eq!(
        delays,
        [S(0) + Duration::from_millis(500), S(1), S(2), S(4)]
    );
}

#[test]
fn no_answer_within_10_s_and_a_close_during_registration_are_failures() {
    let t0 = Instant::now();
    let mut s = Session::new(settings(false));
    s.handle(t0, Event::Start, 0.0);
    s.handle(t0, Event::Facts(Ok(reg())), 0.0);
    s.handle(t0, Event::Connected, 0.0);
    // A pong while registering is not an answer.
    assert!(s.handle(t0 + S(5), Event::Pong, 0.0).is_empty());
    let a = s.handle(t0 + S(10), Event::Timer, 0.0);
    assert!(has(&a, "ERROR cannot connect to DockMon at ws://d.lan/api/agent/ws: registration: no answer within 10 s"), "{:?}", names(&a));
    let t1 = wait_of(&a).unwrap();
    s.handle(t1, Event::Timer, 0.0);
    s.handle(t1, Event::Facts(Ok(reg())), 0.0);
    s.handle(t1, Event::Connected, 0.0);
    let a = s.handle(
        t1,
        Event::Closed {
            code: Some(1008),
            reason: "Authentication failed".into(),
        },
        0.0,
    );
    assert!(has(&a, "ERROR cannot connect to DockMon at ws://d.lan/api/agent/ws: registration: server closed the connection (1008 Authentication failed)"));
    assert!(!has(&a, "up"));
}

#[test]
fn keepalive_pings_every_30_s_and_gives_up_after_40_s_of_silence() {
    let t0 = Instant::now();
    let mut s = registered(t0, false);
    let a = s.handle(t0 + S(30), Event::Timer, 0.0);
    assert_eq!(names(&a), ["ping", "wait"]);
    assert_eq!(wait_of(&a), Some(t0 + S(40)));
    // Server pings do not count (the executor sends no event); nothing else came: dead at 40 s.
    let a = s.handle(t0 + S(40), Event::Timer, 0.0);
    assert_eq!(
        names(&a)[..3],
        [
            "disconnect",
            "down",
            "WARN connection to DockMon lost: nothing received for 40 s; reconnecting"
        ]
    );
    // A short session: the next attempt waits for the backoff.
    assert!(has(&a, "wait"));
}

#[test]
fn a_pong_or_a_frame_rearms_the_read_deadline() {
    let t0 = Instant::now();
    let mut s = registered(t0, false);
    s.handle(t0 + S(30), Event::Timer, 0.0);
    assert!(s.handle(t0 + S(31), Event::Pong, 0.0).is_empty());
    let a = s.handle(t0 + S(40), Event::Timer, 0.0);
    assert_eq!(names(&a), ["wait"], "alive: the pong came at 31 s");
    let a = s.handle(
        t0 + S(50),
        Event::Text(r#"{"type":"command","command":"list_containers","id":"c1"}"#),
        0.0,
    );
    assert_eq!(names(&a), ["run c1"]);
    let a = s.handle(
        t0 + S(50),
        Event::Text(r#"{"type":"health_check_configs_sync","payload":{"configs":[]}}"#),
        0.0,
    );
    assert_eq!(names(&a), ["notice"]);
    let a = s.handle(t0 + S(50), Event::Text("[1,2]"), 0.0);
    assert!(has(
        &a,
        "WARN ignoring a frame from DockMon that is not a JSON object"
    ));
    let a = s.handle(t0 + S(50), Event::Binary(3), 0.0);
    assert!(has(
        &a,
        "WARN ignoring a binary frame from DockMon (3 bytes)"
    ));
    assert!(s.is_serving());
}

#[test]
fn a_protocol_error_is_closed_with_its_code() {
    let t0 = Instant::now();
    let mut s = registered(t0, false);
    let e = crate::ws::conn::Error::Wire(crate::ws::Error::ReservedBits { bits: 4 });
    let a = s.handle(t0 + S(1), Event::ReadFailed(e), 0.0);
    assert_eq!(names(&a)[0], "close 1002 ");
    assert!(!s.is_serving());
}

#[test]
fn a_server_that_closes_after_auth_gets_a_growing_backoff_not_a_storm() {
    // Issue 11 D1: each short session is followed by the next backoff delay.
    let t0 = Instant::now();
    let mut s = registered(t0, false);
    let mut t = t0;
    let mut connections = 1;
    while t < t0 + S(60) {
        let a = s.handle(
            t,
            Event::Closed {
                code: Some(1000),
                reason: "bye".into(),
            },
            0.0,
        );
        t = wait_of(&a).expect("a short session waits");
        s.handle(t, Event::Timer, 0.0);
        s.handle(t, Event::Facts(Ok(reg())), 0.0);
        s.handle(t, Event::Connected, 0.0);
        assert!(has(&s.handle(t, Event::Text(OK), 0.0), "up"));
        if t < t0 + S(60) {
            connections += 1;
        }
    }
    assert!(connections <= 10, "{connections} connections in 60 s");
    // A connection that stayed up a minute resets the backoff and reconnects at once (spec 2.8).
    let a = s.handle(
        t + S(60),
        Event::Closed {
            code: Some(1000),
            reason: "bye".into(),
        },
        0.0,
    );
    assert_eq!(names(&a).last().unwrap(), "facts");
}

#[test]
fn a_tiny_reconnect_initial_still_keeps_a_second_between_connections() {
    let t0 = Instant::now();
    let mut s = Session::new(Settings {
        reconnect_initial: Duration::from_millis(10),
        ..settings(false)
    });
    s.handle(t0, Event::Start, 0.0);
    s.handle(t0, Event::Facts(Ok(reg())), 0.0);
    s.handle(t0, Event::Connected, 0.0);
    s.handle(t0, Event::Text(OK), 0.0);
    let a = s.handle(
        t0 + Duration::from_millis(20),
        Event::Closed {
            code: Some(1000),
            reason: "bye".into(),
        },
        0.0,
    );
    assert_eq!(wait_of(&a), Some(t0 + S(1)));
}

#[test]
fn another_agent_with_this_identity_is_said_once_and_waits_the_longest_delay() {
    let t0 = Instant::now();
    let mut s = registered(t0, true);
    let displaced = || Event::Closed {
        code: Some(1000),
        reason: DISPLACED_REASON.into(),
    };
    let a = s.handle(t0 + S(1), displaced(), 0.0);
    assert!(
        has(&a, "ERROR another agent is using this agent's identity"),
        "{:?}",
        names(&a)
    );
    assert_eq!(
        wait_of(&a),
        Some(t0 + S(1) + S(30)),
        "half of RECONNECT_MAX at least"
    );
    let t1 = wait_of(&a).unwrap();
    s.handle(t1, Event::Timer, 0.0);
    s.handle(t1, Event::Facts(Ok(reg())), 0.0);
    s.handle(t1, Event::Connected, 0.0);
    s.handle(t1, Event::Text(OK), 0.0);
    let a = s.handle(t1 + S(1), displaced(), 0.0);
    assert!(!has(&a, "ERROR another agent"), "said once");
    assert!(wait_of(&a).unwrap() >= t1 + S(31));
}

#[test]
fn no_engine_facts_no_dialling_retried_with_backoff_and_said_once() {
    // Issue 11 D3.
    let t0 = Instant::now();
    let mut s = Session::new(settings(false));
    s.handle(t0, Event::Start, 0.0);
    let fail = || {
        Event::Facts(Err(crate::docker::Error::Status {
            call: "GET /info".into(),
            status: 500,
            message: "frozen".into(),
        }))
    };
    let a = s.handle(t0, fail(), 0.0);
    assert!(
        has(&a, "WARN cannot read the engine facts"),
        "{:?}",
        names(&a)
    );
    assert!(!has(&a, "connect"));
    let t1 = wait_of(&a).unwrap();
    assert_eq!(names(&s.handle(t1, Event::Timer, 0.0)), ["facts"]);
    let a = s.handle(t1, fail(), 0.0);
    assert_eq!(names(&a), ["wait"], "said once");
    let t2 = wait_of(&a).unwrap();
    assert!(t2 - t1 > t1 - t0, "backs off");
    s.handle(t2, Event::Timer, 0.0);
    let a = s.handle(t2, Event::Facts(Ok(reg())), 0.0);
    assert_eq!(
        names(&a),
        ["INFO engine facts read; connecting to DockMon", "connect"]
    );
}

#[test]
fn sigterm_closes_with_1000_and_exits_in_every_state() {
    let t0 = Instant::now();
    let mut s = registered(t0, false);
    let a = s.handle(t0 + S(5), Event::Signal, 0.0);
    assert_eq!(
        names(&a),
        [
            "INFO signal received; closing the connection",
            "close 1000 agent shutting down",
            "disconnect",
            "down",
            "INFO shut down cleanly",
            "exit None"
        ]
    );
    let mut s = Session::new(settings(false));
    s.handle(t0, Event::Start, 0.0);
    let a = s.handle(t0, Event::Signal, 0.0);
    assert_eq!(
        names(&a),
        [
            "INFO signal received before the connection was up; exiting",
            "disconnect",
            "exit None"
        ]
    );
}

#[test]
fn a_failed_write_or_ping_ends_the_connection() {
    let t0 = Instant::now();
    let mut s = registered(t0, false);
    let a = s.handle(t0, Event::PingFailed(Io::Timeout(S(10))), 0.0);
    assert!(has(
        &a,
        "WARN connection to DockMon lost: ping failed: timed out after 10 s"
    ));
    let mut s = registered(t0, false);
    let a = s.handle(t0, Event::WriteFailed(Io::Timeout(S(10))), 0.0);
    assert!(has(
        &a,
        "WARN connection to DockMon lost: write failed: timed out after 10 s"
    ));
}

#[test]
fn a_connect_failure_backs_off() {
    let t0 = Instant::now();
    let mut s = Session::new(settings(false));
    s.handle(t0, Event::Start, 0.0);
    s.handle(t0, Event::Facts(Ok(reg())), 0.0);
    let a = s.handle(
        t0,
        Event::ConnectFailed(Error::Connect(crate::dockmon::error::Connect::NoAddress)),
        0.0,
    );
    assert_eq!(
        names(&a),
        [
            "disconnect",
            "ERROR cannot connect to DockMon at ws://d.lan/api/agent/ws: no address",
            "INFO retrying in 0.5 s",
            "wait"
        ]
    );
}
