//! Every board profile runs the agent against the real engine and the protocol test server: it
//! registers, says which profile it uses, and sends stats for a running container under that budget.
#[path = "support/dockmon_server.rs"]
mod dockmon_server;
mod support;

use dockmon_server::{DockmonServer, EventKind, Options};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::*;

const BOARDS: [&str; 7] = [
    "rpi-zero-2w",
    "rpi3",
    "rpi4",
    "rpi5",
    "graviton2",
    "graviton3",
    "amd64",
];

#[test]
fn every_board_profile_drives_the_agent_against_the_real_engine() {
    require_engine();
    // The compiled-in list and this test agree.
    let names: Vec<&str> = dockmon_agent::board::profiles()
        .iter()
        .map(|p| p.name.as_str())
        .collect();
    assert_eq!(names.len(), BOARDS.len());
    for b in BOARDS {
        assert!(names.contains(&b), "{b}");
    }

    let mut cs = Containers::new("boards");
    let id = cs.run("c", &[], &["sleep", "100000"]);
    let runs: Vec<_> = BOARDS
        .iter()
        .map(|board| {
            let server = DockmonServer::start(
                Options::default()
                    .with_token("board-token", None, None)
                    .with_list_containers(None),
            );
            let data = tempdir(board);
            let log = data.with_extension("log");
            let child = Command::new(agent_bin())
                .env_clear()
                .env("DOCKMON_URL", server.url())
                .env("REGISTRATION_TOKEN", "board-token")
                .env("DATA_PATH", &data)
                .env("DOCKMON_BOARD", board)
                .env("LOG_JSON", "false")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log).unwrap())
                .spawn()
                .unwrap();
            (board, server, child, log)
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    for (board, server, mut child, log) in runs {
        let left = deadline.saturating_duration_since(Instant::now());
        let registered = server.try_wait_for_agent(left.max(Duration::from_secs(1)));
        let got_stats = server.wait_until(
            deadline
                .saturating_duration_since(Instant::now())
                .max(Duration::from_secs(1)),
            |s| {
                s.events(EventKind::ContainerStats)
                    .iter()
                    .any(|e| e["container_id"] == id.as_str())
            },
        );
        let _ = child.kill();
        let _ = child.wait();
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        assert!(registered.is_some(), "{board}: not registered; log: {text}");
        assert!(got_stats, "{board}: no container_stats; log: {text}");
        assert!(
            text.contains(&format!("board profile {board} (")),
            "{board}: profile not announced; log: {text}"
        );
        let p = dockmon_agent::board::profiles()
            .iter()
            .find(|p| p.name == *board)
            .unwrap();
        assert!(
            text.contains(&format!(
                "stats every {} ms, {} calls/s, {} in flight, {} containers",
                p.stats_interval_ms, p.stats_calls_per_sec, p.stats_in_flight, p.containers_max
            )),
            "{board}: budget not in use; log: {text}"
        );
    }
}

#[test]
fn an_unknown_board_is_a_startup_error_listing_the_names() {
    let out = Command::new(agent_bin())
        .env_clear()
        .env("DOCKMON_URL", "http://127.0.0.1:9")
        .env("REGISTRATION_TOKEN", "t")
        .env("DATA_PATH", tempdir("badboard"))
        .env("DOCKMON_BOARD", "pdp11")
        .env("LOG_JSON", "false")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("rpi-zero-2w") && stderr.contains("amd64"),
        "{stderr}"
    );
}
