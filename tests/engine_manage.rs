//! DockMon's Images, Networks and Volumes pages against the real engine (issue 13): each command sent
//! through the protocol test server exactly as DockMon sends it (spec 3.3), each reply's shape
//! checked (spec 3.7.3-3.7.5), and Docker checked to have changed as asked. Objects on the shared
//! engine are named `dmt-mgmt-<pid>-…` and removed at the end; the prune tests run against a
//! private dockerd the test starts, since a prune removes everything unused on its engine.
#[path = "support/dockmon_server.rs"]
#[allow(dead_code)]
mod dockmon_server;
#[path = "support/mgmt.rs"]
mod mgmt;
mod support;

use dockmon_server::{BreakerState, DockmonServer, Options, Outcome};
use mgmt::*;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use support::*;

const TOKEN: &str = "reg-token-mgmt";
/// Longest wait for one reply (the backend's own timeouts are 30-120 s).
const REPLY: Duration = Duration::from_secs(60);

fn prefix() -> String {
    format!("dmt-mgmt-{}", std::process::id())
}

/// A server and an agent registered with it (on `docker_host`, else the shared engine). With
/// `errors_expected` the server's breaker forgets failures at once, so a test of error replies can
/// send more than five.
fn connect(docker_host: Option<&str>, errors_expected: bool) -> (DockmonServer, Agent, String) {
    let mut options = Options::default().with_token(TOKEN, None, None);
    if errors_expected {
        options = options.with_breaker(Duration::from_millis(1), Duration::from_millis(1));
    }
    let server = DockmonServer::start(options);
    let agent = Agent::start(&server.url(), TOKEN, docker_host);
    let info = server
        .try_wait_for_agent(Duration::from_secs(15))
        .unwrap_or_else(|| panic!("the agent did not register: {}", agent.log()));
    (server, agent, info.agent_id)
}

/// Sends a command, checks the reply frame's envelope and returns its outcome.
fn ask(server: &DockmonServer, name: &str, payload: Value) -> Outcome {
    let id = server.send_command(name, payload);
    let reply = server.wait_reply(&id, REPLY);
    assert_eq!(reply["type"], "response", "{reply}");
    assert_eq!(reply["id"], id.as_str(), "{reply}");
    assert!(reply.get("timestamp").is_some(), "{reply}");
    server.outcome(&id)
}

fn ok(server: &DockmonServer, name: &str, payload: Value) -> Value {
    match ask(server, name, payload.clone()) {
        Outcome::Success(v) => v,
        other => panic!("{name} {payload}: {other:?}"),
    }
}

fn err(server: &DockmonServer, name: &str, payload: Value) -> String {
    match ask(server, name, payload.clone()) {
        Outcome::Failed(e) => e,
        other => panic!("{name} {payload} should fail: {other:?}"),
    }
}

#[test]
fn images_are_listed_with_their_users_and_removed_unless_in_use() {
    let mut objects = Objects::default();
    ensure_image();
    let tag = format!("{}-img:1", prefix());
    build_derived(None, &tag);
    objects.images.push(tag.clone());
    let image_id = docker(&["image", "inspect", "-f", "{{.Id}}", &tag])
        .trim()
        .to_string();
    let short = &image_id["sha256:".len().."sha256:".len() + 12];
    let cname = format!("{}-img-user", prefix());
    let cid = docker(&["create", "--name", &cname, &tag, "true"])
        .trim()
        .to_string();
    objects.containers.push(cname.clone());

    let (server, _agent, _) = connect(None, true);
    let images = ok(&server, "list_images", json!({}));
    for image in images.as_array().expect("an array") {
        check_image(image);
    }
    let mine = find(&images, "id", short).unwrap_or_else(|| panic!("{short} in {images}"));
    assert_eq!(mine["tags"], json!([tag]));
    assert_eq!(mine["in_use"], true);
    assert_eq!(mine["dangling"], false);
    assert_eq!(
        mine["containers"],
        json!([{"id": &cid[..12], "name": cname}])
    );
    let size: u64 = docker(&["image", "inspect", "-f", "{{.Size}}", &tag])
        .trim()
        .parse()
        .unwrap();
    assert_eq!(mine["size"], size);

    // In use: the engine's refusal, worded as the Go agent words it; the image stays.
    let e = err(
        &server,
        "remove_image",
        json!({"image_id": short, "force": false}),
    );
    assert!(
        e.starts_with(
            "failed to remove image: Error response from daemon: conflict: unable to delete"
        ),
        "{e}"
    );
    assert!(e.contains("image is being used"), "{e}");
    assert!(exists(None, "image", &tag));

    docker(&["rm", &cname]);
    let done = ok(
        &server,
        "remove_image",
        json!({"image_id": short, "force": false}),
    );
    assert_eq!(done, json!({"success": true}));
    assert!(!exists(None, "image", &image_id), "removed");
    let e = err(
        &server,
        "remove_image",
        json!({"image_id": short, "force": false}),
    );
    assert!(e.contains("No such image"), "{e}");
    assert_eq!(
        err(
            &server,
            "remove_image",
            json!({"image_id": "", "force": true})
        ),
        "image_id is required"
    );
}

#[test]
fn networks_are_created_listed_and_deleted_as_dockmon_asks() {
    let mut objects = Objects::default();
    ensure_image();
    let (server, _agent, _) = connect(None, true);
    let name = format!("{}-net", prefix());
    objects.networks.push(name.clone());
    // A /24 of our own, unlikely to collide with another test's.
    let third = std::process::id() % 250;
    let subnet = format!("10.231.{third}.0/24");
    let gateway = format!("10.231.{third}.1");
    let created = ok(
        &server,
        "create_network",
        json!({"name": name, "driver": "", "subnet": subnet, "gateway": gateway, "internal": true}),
    );
    check_network(&created);
    assert_eq!(created["name"], name.as_str());
    assert_eq!(created["driver"], "bridge");
    assert_eq!(created["subnet"], subnet.as_str());
    assert_eq!(created["internal"], true);
    assert_eq!(created["is_builtin"], false);
    assert_eq!(created["container_count"], 0);
    let inspect = docker(&[
        "network",
        "inspect",
        "-f",
        "{{.Internal}} {{range .IPAM.Config}}{{.Subnet}} {{.Gateway}}{{end}}",
        &name,
    ]);
    assert_eq!(inspect.trim(), format!("true {subnet} {gateway}"));
    let full_id = docker(&["network", "inspect", "-f", "{{.Id}}", &name]);
    assert!(full_id.starts_with(created["id"].as_str().unwrap()));

    assert_eq!(
        err(
            &server,
            "create_network",
            json!({"name": "", "driver": "", "subnet": "", "gateway": "", "internal": false})
        ),
        "network name is required"
    );
    let e = err(
        &server,
        "create_network",
        json!({"name": name, "driver": "bridge", "subnet": "", "gateway": "", "internal": false}),
    );
    assert!(
        e.starts_with("failed to create network: Error response from daemon:"),
        "{e}"
    );

    for builtin in ["bridge", "host", "none"] {
        assert_eq!(
            err(
                &server,
                "delete_network",
                json!({"network_id": builtin, "force": true})
            ),
            format!("cannot delete built-in network '{builtin}'")
        );
    }

    // A running container attached: listed, refused without force, disconnected with it.
    let cname = format!("{}-net-user", prefix());
    let cid = docker(&[
        "run",
        "-d",
        "--name",
        &cname,
        "--network",
        &name,
        IMAGE,
        "sleep",
        "300",
    ])
    .trim()
    .to_string();
    objects.containers.push(cname.clone());
    let networks = ok(&server, "list_networks", json!({}));
    for n in networks.as_array().expect("an array") {
        check_network(n);
    }
    let listed = find(&networks, "name", &name).expect("listed");
    assert_eq!(
        listed["containers"],
        json!([{"id": &cid[..12], "name": cname}])
    );
    assert_eq!(listed["internal"], true);
    assert!(find(&networks, "name", "bridge").unwrap()["is_builtin"] == true);

    let net_id = created["id"].as_str().unwrap();
    assert_eq!(
        err(
            &server,
            "delete_network",
            json!({"network_id": net_id, "force": false})
        ),
        "network has 1 connected container(s), use force to disconnect and delete"
    );
    assert!(exists(None, "network", &name));
    let done = ok(
        &server,
        "delete_network",
        json!({"network_id": net_id, "force": true}),
    );
    assert_eq!(done, json!({"success": true}));
    assert!(!exists(None, "network", &name), "deleted");
    let state = docker(&["inspect", "-f", "{{.State.Running}}", &cname]);
    assert_eq!(
        state.trim(),
        "true",
        "the container keeps running, disconnected"
    );
}

#[test]
fn volumes_are_listed_with_their_users_and_deleted_unless_in_use() {
    let mut objects = Objects::default();
    ensure_image();
    let name = format!("{}-vol", prefix());
    docker(&["volume", "create", &name]);
    objects.volumes.push(name.clone());
    let cname = format!("{}-vol-user", prefix());
    let cid = docker(&[
        "create",
        "--name",
        &cname,
        "-v",
        &format!("{name}:/data"),
        IMAGE,
        "true",
    ])
    .trim()
    .to_string();
    objects.containers.push(cname.clone());

    let (server, _agent, _) = connect(None, true);
    let volumes = ok(&server, "list_volumes", json!({}));
    for v in volumes.as_array().expect("an array") {
        check_volume(v);
    }
    let mine = find(&volumes, "name", &name).expect("listed");
    assert_eq!(mine["driver"], "local");
    assert_eq!(mine["in_use"], true);
    assert_eq!(
        mine["containers"],
        json!([{"id": &cid[..12], "name": cname}])
    );
    let mountpoint = docker(&["volume", "inspect", "-f", "{{.Mountpoint}}", &name]);
    assert_eq!(mine["mountpoint"], mountpoint.trim());

    let e = err(
        &server,
        "delete_volume",
        json!({"volume_name": name, "force": false}),
    );
    assert!(
        e.starts_with("failed to remove volume: Error response from daemon:")
            && e.contains("in use"),
        "{e}"
    );
    assert!(exists(None, "volume", &name));
    assert_eq!(
        err(
            &server,
            "delete_volume",
            json!({"volume_name": "", "force": false})
        ),
        "volume name cannot be empty"
    );
    docker(&["rm", &cname]);
    let done = ok(
        &server,
        "delete_volume",
        json!({"volume_name": name, "force": false}),
    );
    assert_eq!(done, json!({"success": true}));
    assert!(!exists(None, "volume", &name), "deleted");
}

#[test]
fn prunes_remove_what_is_unused_on_a_private_engine() {
    let d = PrivateDockerd::start("mgmt");
    let h = Some(d.host.as_str());
    // Used: the test image (a container), one volume (mounted), no network (none can be in use
    // without running a container). Unused: a derived image, a volume, a network.
    build_derived(h, "dmt-mgmt/unused:1");
    d.docker(&["volume", "create", "dmt-mgmt-used"]);
    d.docker(&["volume", "create", "dmt-mgmt-free"]);
    d.docker(&["network", "create", "dmt-mgmt-free-net"]);
    d.docker(&[
        "create",
        "--name",
        "dmt-mgmt-user",
        "-v",
        "dmt-mgmt-used:/data",
        IMAGE,
        "true",
    ]);

    let (server, _agent, agent_id) = connect(h, false);
    let images = ok(&server, "list_images", json!({}));
    assert_eq!(images.as_array().unwrap().len(), 2, "{images}");
    images.as_array().unwrap().iter().for_each(check_image);

    let pruned = ok(&server, "prune_images", json!({}));
    assert_eq!(
        {
            let mut k: Vec<_> = pruned.as_object().unwrap().keys().cloned().collect();
            k.sort();
            k
        },
        ["removed_count", "space_reclaimed"],
        "{pruned}"
    );
    assert!(pruned["removed_count"].as_u64().unwrap() >= 1, "{pruned}");
    assert!(pruned["space_reclaimed"].is_u64(), "{pruned}");
    assert!(docker_on(h, &["image", "inspect", "dmt-mgmt/unused:1"]).is_err());
    assert!(
        docker_on(h, &["image", "inspect", IMAGE]).is_ok(),
        "in use: kept"
    );
    let images = ok(&server, "list_images", json!({}));
    assert_eq!(images.as_array().unwrap().len(), 1, "{images}");
    assert_eq!(images[0]["container_count"], 1);

    let pruned = ok(&server, "prune_networks", json!({}));
    assert_eq!(
        pruned,
        json!({"removed_count": 1, "networks_removed": ["dmt-mgmt-free-net"]})
    );
    assert!(docker_on(h, &["network", "inspect", "dmt-mgmt-free-net"]).is_err());
    let pruned = ok(&server, "prune_networks", json!({}));
    assert_eq!(pruned, json!({"removed_count": 0, "networks_removed": []}));

    let pruned = ok(&server, "prune_volumes", json!({}));
    assert_eq!(pruned["removed_count"], 1, "{pruned}");
    assert_eq!(pruned["volumes_removed"], json!(["dmt-mgmt-free"]));
    assert!(pruned["space_reclaimed"].is_u64(), "{pruned}");
    assert!(docker_on(h, &["volume", "inspect", "dmt-mgmt-free"]).is_err());
    assert!(
        docker_on(h, &["volume", "inspect", "dmt-mgmt-used"]).is_ok(),
        "in use: kept"
    );
    let volumes = ok(&server, "list_volumes", json!({}));
    assert_eq!(volumes.as_array().unwrap().len(), 1, "{volumes}");
    check_volume(&volumes[0]);

    // Absent payloads are taken as `{}` too.
    let pruned = ok(&server, "prune_volumes", Value::Null);
    assert_eq!(pruned["removed_count"], 0, "{pruned}");
    assert!(
        server.breaker_failures().is_empty(),
        "{:?}",
        server.breaker_failures()
    );
    assert_eq!(server.breaker_state(&agent_id), BreakerState::Closed);
}

#[test]
fn opening_images_networks_and_volumes_twice_keeps_the_breaker_closed() {
    ensure_image();
    let (server, agent, agent_id) = connect(None, false);
    // With `--features count-alloc` the agent reports its heap on SIGUSR1: the burst's cost.
    let before = heap_report(&agent);
    let started = Instant::now();
    let mut sent = Vec::new();
    for _ in 0..2 {
        for name in ["list_images", "list_networks", "list_volumes"] {
            sent.push((name, server.send_command(name, json!({}))));
        }
    }
    for (name, id) in &sent {
        match server.wait_outcome(id, REPLY) {
            Outcome::Success(v) => {
                let list = v.as_array().unwrap_or_else(|| panic!("{name}: {v}"));
                let check = match *name {
                    "list_images" => check_image,
                    "list_networks" => check_network,
                    _ => check_volume,
                };
                list.iter().for_each(check);
            }
            other => panic!("{name}: {other:?}"),
        }
    }
    assert!(
        server.breaker_failures().is_empty(),
        "{:?}",
        server.breaker_failures()
    );
    assert_eq!(server.breaker_state(&agent_id), BreakerState::Closed);
    eprintln!("six page loads answered in {:?}", started.elapsed());
    if let (Some((_, hw0)), Some((in_use, hw1))) = (before, heap_report(&agent)) {
        eprintln!(
            "heap: high-water {hw0} B before the burst, {hw1} B after (+{} B), {in_use} B in use after",
            hw1.saturating_sub(hw0)
        );
        assert!(
            hw1.saturating_sub(hw0) < 1024 * 1024,
            "six page loads of a small host raised the heap high-water by more than 1 MiB"
        );
    }
}

/// `(in use, high-water)` from the agent's SIGUSR1 report, when it is built with `count-alloc`.
fn heap_report(agent: &Agent) -> Option<(u64, u64)> {
    if !cfg!(feature = "count-alloc") {
        return None;
    }
    let seen = agent.log().matches("heap in use").count();
    agent.signal("USR1");
    let end = Instant::now() + Duration::from_secs(5);
    while Instant::now() < end {
        let log = agent.log();
        if log.matches("heap in use").count() > seen {
            let line = log.lines().rfind(|l| l.contains("heap in use"))?;
            let nums: Vec<u64> = line
                .split_whitespace()
                .filter_map(|w| w.trim_end_matches(',').parse().ok())
                .collect();
            return Some((nums[0], nums[1]));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("no heap report after SIGUSR1: {}", agent.log());
}
