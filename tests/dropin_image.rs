//! Issue 12: the image runs with exactly the `docker run` line DockMon's UI generates (only the image
//! swapped, plus `--network host` to reach the protocol test server on 127.0.0.1): it registers,
//! lists containers, runs as uid 1000 with the socket's group once started, and takes over a data
//! volume that DockMon's Go agent left root-owned (`permanent_token` 0600) without registering anew.
//!
//! The image is FROM scratch, so it needs the static amd64 binary: the test builds it with
//! `scripts/dist --targets amd64` in `target/dropin-dist` (a few minutes the first time), or takes
//! `DROPIN_DIST/dockmon-agent-linux-amd64`.
#[path = "support/dockmon_server.rs"]
#[allow(dead_code)]
mod dockmon_server;
mod support;

use dockmon_server::{DockmonServer, Options};
use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};
use support::*;

const TOKEN: &str = "reg-token-dropin";

/// Docker objects this test made, removed when dropped (also on failure).
struct Objects {
    containers: Vec<String>,
    volumes: Vec<String>,
    images: Vec<String>,
}

impl Drop for Objects {
    fn drop(&mut self) {
        let quiet = |args: &[&str]| {
            let _ = Command::new("docker").args(args).output();
        };
        for c in &self.containers {
            quiet(&["rm", "-f", c]);
        }
        for v in &self.volumes {
            quiet(&["volume", "rm", "-f", v]);
        }
        for i in &self.images {
            quiet(&["image", "rm", "-f", i]);
        }
    }
}

fn docker_ok(args: &[&str]) -> (bool, String) {
    let out = Command::new("docker").args(args).output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Builds the image with scripts/image from a static binary of this tree: `DROPIN_DIST` if set (a
/// folder with `dockmon-agent-linux-amd64`), else `scripts/dist --targets amd64` into
/// `target/dropin-dist` (its own target folder: the `cargo test` running this holds the lock of the
/// usual one; cargo makes it a no-op when nothing changed).
fn build_image(tag: &str) {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dist = match std::env::var("DROPIN_DIST") {
        Ok(d) => PathBuf::from(d),
        Err(_) => {
            let target = repo.join("target/dropin-dist");
            let out = target.join("out");
            let status = Command::new(repo.join("scripts/dist"))
                .args(["--targets", "amd64", "--out", out.to_str().unwrap()])
                .env("CARGO_TARGET_DIR", &target)
                .stdout(std::process::Stdio::null())
                .status()
                .unwrap();
            assert!(
                status.success(),
                "scripts/dist --targets amd64 failed (output above)"
            );
            out
        }
    };
    assert!(
        dist.join("dockmon-agent-linux-amd64").exists(),
        "{}/dockmon-agent-linux-amd64 is missing",
        dist.display()
    );
    let out = Command::new(repo.join("scripts/image"))
        .args([
            "--dist",
            dist.to_str().unwrap(),
            "--arch",
            "amd64",
            "--tag",
            tag,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "scripts/image: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The status of the container's main process as the host sees it.
fn host_status(container: &str) -> String {
    let pid = docker(&["inspect", "-f", "{{.State.Pid}}", container]);
    std::fs::read_to_string(format!("/proc/{}/status", pid.trim())).unwrap()
}

fn field<'a>(status: &'a str, key: &str) -> &'a str {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .unwrap_or("")
        .trim()
}

/// DockMon's UI line (spec 8.1) with our image, a unique name and volume, on the host network (the
/// only change: the test server listens on 127.0.0.1). Helper containers use `--network none`: this
/// machine's engine has no usable default bridge.
fn ui_line(name: &str, volume: &str, url: &str, image: &str) -> Vec<String> {
    [
        "run",
        "-d",
        "--name",
        name,
        "--restart",
        "unless-stopped",
        "--network",
        "host",
        "-v",
        "/var/run/docker.sock:/var/run/docker.sock:ro",
        "-v",
        &format!("{volume}:/data"),
        "-e",
        &format!("DOCKMON_URL={url}"),
        "-e",
        &format!("REGISTRATION_TOKEN={TOKEN}"),
        "-e",
        "TZ=Europe/Berlin",
        image,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn run(args: &[String]) -> String {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    docker(&args)
}

#[test]
fn the_ui_run_line_works_unchanged_drops_root_and_takes_over_a_go_agent_volume() {
    require_engine();
    ensure_image();
    let pid = std::process::id();
    let tag = format!("dmt-dropin-agent:{pid}");
    let mut objects = Objects {
        containers: Vec::new(),
        volumes: Vec::new(),
        images: vec![tag.clone()],
    };
    build_image(&tag);
    // The watchdog counts from here: the first build of the static binary takes minutes.
    let watchdog = Instant::now();
    let sock_gid = {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata("/var/run/docker.sock").unwrap().gid()
    };

    let server = DockmonServer::start(Options::default().with_token(TOKEN, None, None));
    let target = format!("dmt-dropin-{pid}-target");
    objects.containers.push(target.clone());
    let target_id = docker(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        &target,
        IMAGE,
        "sleep",
        "600",
    ])
    .trim()
    .to_string();

    // 1. The UI's line, a fresh named volume.
    let agent = format!("dmt-dropin-{pid}-ui");
    let volume = format!("dmt-dropin-{pid}-data");
    objects.containers.push(agent.clone());
    objects.volumes.push(volume.clone());
    run(&ui_line(&agent, &volume, &server.url(), &tag));
    let first = server
        .try_wait_for_agent(Duration::from_secs(30))
        .unwrap_or_else(|| panic!("no registration; logs:\n{}", docker_ok(&["logs", &agent]).1));
    assert!(!first.reconnect);
    let list_id = server.send_command("list_containers", Value::Null);
    let reply = server.wait_reply(&list_id, Duration::from_secs(20));
    let listed = reply["payload"].as_array().expect("payload array");
    assert!(
        listed.iter().any(|c| c["Id"] == target_id.as_str()),
        "our container is not in the list"
    );

    // Not root once started: uid 1000 everywhere, the socket's group, no capabilities.
    let status = host_status(&agent);
    assert_eq!(
        field(&status, "Uid:")
            .split_whitespace()
            .collect::<Vec<_>>(),
        ["1000"; 4],
        "{status}"
    );
    assert_eq!(
        field(&status, "Gid:")
            .split_whitespace()
            .collect::<Vec<_>>(),
        ["1000"; 4],
        "{status}"
    );
    assert_eq!(field(&status, "Groups:"), sock_gid.to_string(), "{status}");
    assert_eq!(field(&status, "CapEff:"), "0000000000000000", "{status}");
    assert_eq!(field(&status, "NoNewPrivs:"), "1", "{status}");
    let ps = docker(&["top", &agent, "-o", "uid,pid,comm"]);
    assert!(ps.lines().skip(1).all(|l| l.starts_with("1000 ")), "{ps}");
    // The agent logs on stderr: docker_ok keeps both streams.
    let (_, logs) = docker_ok(&["logs", &agent]);
    assert!(logs.contains("dropped root: running as uid 1000"), "{logs}");
    assert!(
        !logs.contains(TOKEN) && !logs.contains(&first.permanent_token),
        "token in the log"
    );
    // The token it stored is its own: uid 1000, 0600.
    let (ok, stat) = docker_ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        &format!("{volume}:/data"),
        IMAGE,
        "stat",
        "-c",
        "%u:%g %a",
        "/data/permanent_token",
    ]);
    assert!(ok && stat.trim() == "1000:1000 600", "{stat}");
    docker(&["rm", "-f", &agent]);

    // 2. A volume as DockMon's Go agent leaves it: root-owned /data and permanent_token 0600.
    let go_volume = format!("dmt-dropin-{pid}-goagent");
    objects.volumes.push(go_volume.clone());
    let fill = format!(
        "printf %s '{}' > /data/permanent_token && chmod 600 /data/permanent_token && \
         echo '{{}}' > /data/cleanup.json.old && mkdir -p /data/stacks/web && echo x > /data/stacks/web/compose.yaml && \
         chown -R 0:0 /data && chmod 755 /data",
        first.permanent_token
    );
    docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        &format!("{go_volume}:/data"),
        IMAGE,
        "sh",
        "-c",
        &fill,
    ]);
    let registrations = server.registrations().len();
    let again_name = format!("dmt-dropin-{pid}-go");
    objects.containers.push(again_name.clone());
    run(&ui_line(&again_name, &go_volume, &server.url(), &tag));
    let end = Instant::now() + Duration::from_secs(30);
    while server.registrations().len() == registrations && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(100));
    }
    let regs = server.registrations();
    let again = regs.get(registrations).unwrap_or_else(|| {
        panic!(
            "no reconnect; logs:\n{}",
            docker_ok(&["logs", &again_name]).1
        )
    });
    assert!(
        again.reconnect,
        "a new registration instead of the Go agent's token"
    );
    assert_eq!(again.agent_id, first.agent_id);
    assert_eq!(again.register["token"], first.permanent_token.as_str());
    let (ok, owners) = docker_ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        &format!("{go_volume}:/data"),
        IMAGE,
        "sh",
        "-c",
        "stat -c '%n %u:%g %a' /data /data/permanent_token /data/stacks/web/compose.yaml",
    ]);
    assert!(ok, "{owners}");
    for line in owners.lines() {
        assert!(line.contains(" 1000:1000 "), "not taken over: {owners}");
    }
    assert!(
        owners.contains("/data/permanent_token 1000:1000 600"),
        "{owners}"
    );
    let status = host_status(&again_name);
    assert!(field(&status, "Uid:").starts_with("1000"), "{status}");
    docker(&["rm", "-f", &again_name]);

    // 3. `--user 1000 --group-add <gid>` (the old way) keeps working; AGENT_UID=0 keeps root.
    for extra in [
        vec![
            "--user".to_string(),
            "1000:1000".into(),
            "--group-add".into(),
            sock_gid.to_string(),
        ],
        vec!["-e".to_string(), "AGENT_UID=0".into()],
    ] {
        let mut args = vec![
            "run".to_string(),
            "--rm".into(),
            "--network".into(),
            "none".into(),
            "-v".into(),
            "/var/run/docker.sock:/var/run/docker.sock:ro".into(),
        ];
        args.extend(extra.iter().cloned());
        args.extend([tag.clone(), "snapshot".into()]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (ok, out) = docker_ok(&args);
        assert!(ok && out.contains(&target_id), "{extra:?}: {out}");
    }
    assert!(
        watchdog.elapsed() < Duration::from_secs(180),
        "took {:?}",
        watchdog.elapsed()
    );
    drop(objects);
}
