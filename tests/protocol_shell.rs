//! The web shell (spec 3.8.6, issue 14) against the protocol test server and the real engine:
//! a session's round trip, resize, a container without /bin/sh, the session cap, sessions ending with
//! the DockMon connection (and their exec processes with them), complete large output, and RSS
//! back to its level once sessions end.
#[path = "support/dockmon_server.rs"]
#[allow(dead_code)]
mod dockmon_server;
#[path = "support/shell.rs"]
mod shell_support;
mod support;

use dockmon_server::{DockmonServer, Options};
use shell_support::*;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::*;

const T: Duration = Duration::from_secs(15);
/// The agent's `SHELL_SESSIONS_MAX_COUNT`.
const CAP: usize = dockmon_agent::limits::SHELL_SESSIONS_MAX_COUNT;

fn server() -> DockmonServer {
    DockmonServer::start(Options::default().with_token(TOKEN, None, None))
}

/// A running busybox container and an agent registered with a fresh server.
fn setup(tag: &str) -> (Containers, String, DockmonServer, Agent) {
    let mut cs = Containers::new(&format!("shell-{tag}"));
    let id = cs.run("box", &["--network", "none"], &["sleep", "3600"]);
    let server = server();
    let agent = Agent::start(&server.url(), &[]);
    let info = server.wait_for_agent(T);
    assert_eq!(info.register["capabilities"]["shell_access"], true);
    (cs, id, server, agent)
}

/// `sh` processes in the container (`docker top`), other than PID 1's `sleep`.
fn shells_in(container: &str) -> usize {
    docker(&["top", container, "-o", "pid,comm"])
        .lines()
        .skip(1)
        .filter(|l| {
            l.split_whitespace()
                .nth(1)
                .is_some_and(|c| c == "sh" || c == "bash")
        })
        .count()
}

#[test]
fn echo_hi_then_exit_gives_hi_and_closed() {
    let (_cs, id, server, agent) = setup("echo");
    shell_start(&server, "s-echo", &id);
    assert!(
        wait_action(&server, "s-echo", "started", T).is_some(),
        "no started; agent log:\n{}",
        agent.log()
    );
    shell_input(&server, "s-echo", "echo hi; exit\n");
    assert!(
        wait_action(&server, "s-echo", "closed", T).is_some(),
        "no closed: {:?}",
        shell_data(&server, "s-echo")
    );
    let out = shell_output(&server, "s-echo");
    assert!(out.lines().any(|l| l.trim() == "hi"), "output {out:?}");
    let actions: Vec<_> = shell_data(&server, "s-echo")
        .iter()
        .map(|p| p["action"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(actions.first().map(String::as_str), Some("started"));
    assert_eq!(actions.last().map(String::as_str), Some("closed"));
    assert!(!agent.log().contains("still runs"), "{}", agent.log());
}

#[test]
fn resize_changes_stty_size() {
    let (_cs, id, server, _agent) = setup("resize");
    shell_start(&server, "s-rs", &id);
    assert!(wait_action(&server, "s-rs", "started", T).is_some());
    shell_resize(&server, "s-rs", 37, 111);
    // The resize goes over its own Docker connection: give it a moment before asking.
    std::thread::sleep(Duration::from_millis(300));
    shell_input(&server, "s-rs", "stty size\n");
    assert!(
        wait_output(&server, "s-rs", "37 111", T),
        "output {:?}",
        shell_output(&server, "s-rs")
    );
    shell_resize(&server, "s-rs", 50, 200);
    std::thread::sleep(Duration::from_millis(300));
    shell_input(&server, "s-rs", "stty size\n");
    assert!(wait_output(&server, "s-rs", "50 200", T));
    shell_close(&server, "s-rs");
    assert!(wait_action(&server, "s-rs", "closed", T).is_some());
}

/// An image with only a static binary at /busybox: no /bin/sh to start.
fn ensure_nosh_image() -> &'static str {
    const IMAGE: &str = "dmt-shell/nosh:local";
    ensure_image();
    let have = Command::new("docker")
        .args(["image", "inspect", IMAGE])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !have {
        let dir = tempdir("nosh");
        std::fs::copy(busybox(), dir.join("busybox")).unwrap();
        std::fs::write(
            dir.join("Dockerfile"),
            "FROM scratch\nCOPY busybox /busybox\nCMD [\"/busybox\", \"sleep\", \"3600\"]\n",
        )
        .unwrap();
        docker_build(None, IMAGE, &dir);
    }
    IMAGE
}

/// Removes a container on drop.
struct Removed(String);
impl Drop for Removed {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["rm", "-f", &self.0])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

#[test]
fn a_container_without_bin_sh_gives_error() {
    let image = ensure_nosh_image();
    let name = format!("dmt-shell-nosh-{}", std::process::id());
    let id = docker(&["run", "-d", "--network", "none", "--name", &name, image])
        .trim()
        .to_string();
    let _guard = Removed(name);
    let server = server();
    let agent = Agent::start(&server.url(), &[]);
    server.wait_for_agent(T);
    shell_start(&server, "s-nosh", &id);
    let err = wait_action(&server, "s-nosh", "error", T).unwrap_or_else(|| {
        panic!(
            "no error: {:?}\n{}",
            shell_data(&server, "s-nosh"),
            agent.log()
        )
    });
    let text = err["error"].as_str().unwrap();
    assert!(text.starts_with("Failed to create shell: "), "{text}");
    assert!(text.contains("/bin/sh"), "{text}");
    assert!(wait_action(&server, "s-nosh", "closed", Duration::from_millis(300)).is_none());

    // A container that does not exist: the exec create fails.
    shell_start(&server, "s-none", "dmt-shell-no-such-container");
    let err = wait_action(&server, "s-none", "error", T).unwrap();
    assert!(
        err["error"]
            .as_str()
            .unwrap()
            .starts_with("Failed to create shell: Error response from daemon: "),
        "{err}"
    );
}

#[test]
fn sessions_up_to_the_cap_and_one_past_it() {
    let (_cs, id, server, agent) = setup("cap");
    for i in 0..CAP {
        shell_start(&server, &format!("s-cap-{i}"), &id);
    }
    for i in 0..CAP {
        assert!(
            wait_action(&server, &format!("s-cap-{i}"), "started", T).is_some(),
            "session {i}: {}",
            agent.log()
        );
    }
    shell_start(&server, "s-cap-past", &id);
    let err = wait_action(&server, "s-cap-past", "error", T).expect("the session past the cap");
    assert!(
        err["error"]
            .as_str()
            .unwrap()
            .contains("too many shell sessions"),
        "{err}"
    );
    assert!(wait_action(&server, "s-cap-past", "started", Duration::from_millis(300)).is_none());
    // Every session inside the cap works.
    for i in 0..CAP {
        shell_input(
            &server,
            &format!("s-cap-{i}"),
            &format!("echo cap$((40+{i}))\n"),
        );
    }
    for i in 0..CAP {
        assert!(wait_output(
            &server,
            &format!("s-cap-{i}"),
            &format!("cap{}", 40 + i),
            T
        ));
    }
    // Closing one makes room for another.
    shell_close(&server, "s-cap-0");
    assert!(wait_action(&server, "s-cap-0", "closed", T).is_some());
    shell_start(&server, "s-cap-again", &id);
    assert!(wait_action(&server, "s-cap-again", "started", T).is_some());
}

#[test]
fn after_a_disconnect_the_exec_processes_are_gone() {
    let (cs, id, server, agent) = setup("drop");
    let log = disconnect_ends_the_execs(cs, id, server, agent);
    assert!(!log.contains("by DOCKMON_SHELL="), "{log}");
}

/// The same in container mode without /host/proc: the agent in a PID namespace of its own (its
/// /proc does not show the exec processes), so only the Docker API can find and hang up the shells.
#[test]
fn after_a_disconnect_the_exec_processes_are_gone_without_the_hosts_proc() {
    let mut cs = Containers::new("shell-drop-nsproc");
    let id = cs.run("box", &["--network", "none"], &["sleep", "3600"]);
    let server = server();
    let agent = Agent::start_in_own_pid_namespace(&server.url(), &[]);
    server.wait_for_agent(T);
    let log = disconnect_ends_the_execs(cs, id, server, agent);
    assert!(
        log.contains("kill -HUP by DOCKMON_SHELL="),
        "the shells were not hung up by their marker:\n{log}"
    );
}

/// Two sessions (one running `sleep 1000` in the foreground), the DockMon connection dropped: both
/// exec processes end within 10 s, the agent never warns that one still runs, and a session works
/// on the next connection.
/// Returns the agent's log.
fn disconnect_ends_the_execs(
    _cs: Containers,
    id: String,
    server: DockmonServer,
    agent: Agent,
) -> String {
    assert_eq!(shells_in(&id), 0);
    for i in 0..2 {
        shell_start(&server, &format!("s-drop-{i}"), &id);
        assert!(wait_action(&server, &format!("s-drop-{i}"), "started", T).is_some());
    }
    // A long-running foreground command in one of them, too.
    shell_input(&server, "s-drop-1", "sleep 1000\n");
    let end = Instant::now() + T;
    while shells_in(&id) < 2 && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(shells_in(&id), 2, "{}", docker(&["top", &id]));
    server.disconnect_all();
    let end = Instant::now() + Duration::from_secs(10);
    let gone = loop {
        let top = docker(&["top", &id, "-o", "pid,comm"]);
        if top.lines().skip(1).count() == 1 {
            break true;
        }
        if Instant::now() > end {
            break false;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        gone,
        "left behind:\n{}\nagent log:\n{}",
        docker(&["top", &id]),
        agent.log()
    );
    // The agent comes back, and sessions work on the new connection.
    server.wait_for_agent(T);
    assert!(!agent.log().contains("still runs"), "{}", agent.log());
    shell_start(&server, "s-drop-again", &id);
    assert!(wait_action(&server, "s-drop-again", "started", T).is_some());
    agent.log()
}

#[test]
fn large_output_arrives_complete_and_in_order() {
    let (_cs, id, server, _agent) = setup("big");
    shell_start(&server, "s-big", &id);
    assert!(wait_action(&server, "s-big", "started", T).is_some());
    // 100000 lines, about 590 KB: some 150 frames at 4 KiB, far more than the outbox's event cap.
    shell_input(&server, "s-big", "seq 1 100000; exit\n");
    assert!(wait_action(&server, "s-big", "closed", Duration::from_secs(60)).is_some());
    let out = shell_output(&server, "s-big");
    let numbers: Vec<u64> = out.lines().filter_map(|l| l.trim().parse().ok()).collect();
    let want: Vec<u64> = (1..=100_000).collect();
    assert!(
        numbers == want,
        "got {} numbers, first gap near {:?}",
        numbers.len(),
        numbers.iter().zip(&want).position(|(a, b)| a != b)
    );
}

#[test]
fn rss_returns_to_its_level_once_sessions_end() {
    let (_cs, id, server, agent) = setup("rss");
    // Warm up: one full session, so that lazily grown buffers (outbox, pools) exist before the
    // baseline.
    let round = |tag: &str, n: usize| {
        for i in 0..n {
            let s = format!("s-{tag}-{i}");
            shell_start(&server, &s, &id);
            assert!(wait_action(&server, &s, "started", T).is_some());
            shell_input(&server, &s, "seq 1 20000; exit\n");
        }
        for i in 0..n {
            let s = format!("s-{tag}-{i}");
            assert!(wait_action(&server, &s, "closed", Duration::from_secs(30)).is_some());
        }
    };
    round("warm", CAP);
    std::thread::sleep(Duration::from_secs(4));
    let before = agent.rss_kib();
    round("measured", CAP);
    // Sessions end; their exit checks end too.
    std::thread::sleep(Duration::from_secs(4));
    let after = agent.rss_kib();
    eprintln!("agent RSS before the sessions {before} KiB, after {after} KiB");
    assert!(
        after <= before + 64,
        "RSS grew from {before} KiB to {after} KiB over {CAP} shell sessions"
    );
}

#[test]
fn output_is_held_back_not_dropped_while_the_server_does_not_read() {
    let mut cs = Containers::new("shell-pressure");
    let id = cs.run("box", &["--network", "none"], &["sleep", "3600"]);
    let server = server();
    let agent = Agent::start(&server.url(), &[("LOG_LEVEL", "trace")]);
    server.wait_for_agent(T);
    shell_start(&server, "s-p", &id);
    assert!(wait_action(&server, "s-p", "started", T).is_some());
    // About 6.9 MB of output, 9 MB framed: more than the loopback socket buffers hold while the
    // server stops reading, so the outbox fills and the session must stop reading its TTY.
    shell_input(&server, "s-p", "seq 1 1000000; exit\n");
    std::thread::sleep(Duration::from_millis(300));
    server.set_half_open(true);
    std::thread::sleep(Duration::from_secs(4));
    server.set_half_open(false);
    assert!(
        wait_action(&server, "s-p", "closed", Duration::from_secs(60)).is_some(),
        "{}",
        agent.log()
    );
    let out = shell_output(&server, "s-p");
    let numbers: Vec<u64> = out.lines().filter_map(|l| l.trim().parse().ok()).collect();
    let want: Vec<u64> = (1..=1_000_000).collect();
    assert!(
        numbers == want,
        "got {} numbers, first gap near {:?}",
        numbers.len(),
        numbers.iter().zip(&want).position(|(a, b)| a != b)
    );
    assert!(!agent.log().contains("outbox full"), "{}", agent.log());
    assert!(
        agent.log().contains("output held back"),
        "the outbox never filled: the test proved nothing"
    );
    assert_eq!(server.registrations().len(), 1, "the connection stayed up");
}
