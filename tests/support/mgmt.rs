//! Helpers of the image/network/volume management suite (tests/engine_manage.rs): the agent binary
//! against the protocol test server, a private dockerd for the prune tests (pruning the shared
//! engine would remove other people's objects), objects that clean up after themselves, and the
//! reply shapes of spec 3.7.3-3.7.5.
#![allow(dead_code)]

use crate::support::{
    agent_bin, agent_command, docker, docker_build, ensure_image, require_engine, tempdir, IMAGE,
};
use serde_json::Value;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The agent binary running against a server, its stderr in a file, killed when dropped.
pub struct Agent {
    child: Child,
    pub log: PathBuf,
}

impl Agent {
    /// Starts the agent for `url` with `token`; `docker_host` points it at a private engine.
    pub fn start(url: &str, token: &str, docker_host: Option<&str>) -> Agent {
        require_engine();
        let data = tempdir("mgmt-agent");
        let log = data.with_extension("log");
        let mut cmd = agent_command(Command::new(agent_bin()), url, token, &data, &log);
        if let Some(host) = docker_host {
            cmd.env("DOCKER_HOST", host);
        }
        Agent {
            child: cmd.spawn().expect("spawn the agent"),
            log,
        }
    }

    /// Sends it a signal (`USR1`: the heap report of a `count-alloc` build).
    pub fn signal(&self, name: &str) {
        let _ = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status();
    }

    /// Its log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `docker -H <host> args…` (the shared engine when `host` is None); stdout, or the error.
pub fn docker_on(host: Option<&str>, args: &[&str]) -> Result<String, String> {
    let mut cmd = Command::new("docker");
    if let Some(h) = host {
        cmd.args(["-H", h]);
    }
    let out = cmd
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run the docker CLI ({e}); install docker.io"));
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// Whether `docker <kind> inspect <name>` finds it.
pub fn exists(host: Option<&str>, kind: &str, name: &str) -> bool {
    docker_on(host, &[kind, "inspect", name]).is_ok()
}

/// Docker objects created by a test on the shared engine, removed when dropped (containers first).
#[derive(Default)]
pub struct Objects {
    pub containers: Vec<String>,
    pub networks: Vec<String>,
    pub volumes: Vec<String>,
    pub images: Vec<String>,
}

impl Drop for Objects {
    fn drop(&mut self) {
        let quiet = |args: &[&str]| {
            let _ = Command::new("docker")
                .args(args)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        };
        for c in &self.containers {
            quiet(&["rm", "-f", c]);
        }
        for n in &self.networks {
            quiet(&["network", "rm", n]);
        }
        for v in &self.volumes {
            quiet(&["volume", "rm", "-f", v]);
        }
        for i in &self.images {
            quiet(&["rmi", "-f", i]);
        }
    }
}

/// Builds `tag` FROM the test image with one label, so it has an ID of its own (on `host`).
pub fn build_derived(host: Option<&str>, tag: &str) {
    let dir = tempdir("mgmt-derived");
    std::fs::write(
        dir.join("Dockerfile"),
        format!("FROM {IMAGE}\nLABEL dmt.mgmt=\"{tag}\"\n"),
    )
    .unwrap();
    docker_build(host, tag, &dir);
}

/// A dockerd of our own (own data root, exec root, pidfile and socket; no bridge, no iptables; its
/// own containerd namespace), for tests that prune: a prune removes everything unused on its
/// engine. Stopped and its files removed when dropped.
pub struct PrivateDockerd {
    child: Child,
    dir: PathBuf,
    /// `unix:///tmp/…sock`.
    pub host: String,
}

impl PrivateDockerd {
    /// Starts it and waits (at most 30 s) until it answers; loads the test image into it.
    pub fn start(tag: &str) -> PrivateDockerd {
        ensure_image();
        let pid = std::process::id();
        // Short paths: a unix socket path has at most 107 bytes.
        let dir = PathBuf::from(format!("/tmp/dmt-{tag}-{pid}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let sock = dir.join("d.sock");
        let host = format!("unix://{}", sock.display());
        let ns = format!("dmt-{tag}-{pid}");
        // In a network namespace of its own: a dockerd with `--bridge=none` deletes the host's
        // `docker0` at startup, which breaks the shared engine's default bridge for every later test.
        let child = Command::new("unshare")
            .args(["--net", "dockerd"])
            .arg("--data-root")
            .arg(dir.join("data"))
            .arg("--exec-root")
            .arg(dir.join("exec"))
            .arg("--pidfile")
            .arg(dir.join("d.pid"))
            .args(["-H", &host, "--bridge=none", "--iptables=false"])
            .args(["--containerd-namespace", &ns])
            .args(["--containerd-plugins-namespace", &format!("{ns}-plugins")])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("dockerd.log")).unwrap())
            .spawn()
            .expect("dockerd (apt-get install docker.io) must be on PATH to run the prune tests");
        let d = PrivateDockerd { child, dir, host };
        let end = Instant::now() + Duration::from_secs(30);
        while docker_on(Some(&d.host), &["version"]).is_err() {
            assert!(
                Instant::now() < end,
                "the private dockerd did not answer within 30 s: {}",
                std::fs::read_to_string(d.dir.join("dockerd.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        // `docker save` of the shared test image, loaded into this one.
        let tar = d.dir.join("image.tar");
        docker(&["save", "-o", tar.to_str().unwrap(), IMAGE]);
        docker_on(Some(&d.host), &["load", "-q", "-i", tar.to_str().unwrap()])
            .unwrap_or_else(|e| panic!("loading {IMAGE} into the private dockerd: {e}"));
        d
    }

    /// `docker -H <this> args…`, panicking on failure.
    pub fn docker(&self, args: &[&str]) -> String {
        docker_on(Some(&self.host), args)
            .unwrap_or_else(|e| panic!("docker -H {} {}: {e}", self.host, args.join(" ")))
    }
}

impl Drop for PrivateDockerd {
    fn drop(&mut self) {
        // Everything on it is ours.
        let _ = docker_on(Some(&self.host), &["system", "prune", "-af", "--volumes"]);
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let end = Instant::now() + Duration::from_secs(15);
        while Instant::now() < end {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn keys(v: &Value) -> Vec<&str> {
    let mut k: Vec<&str> = v
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .map(String::as_str)
        .collect();
    k.sort_unstable();
    k
}

/// `containers` of an object: `[{"id":<≤12>,"name":<str>}]`, and `container_count` its length.
fn check_refs(v: &Value) {
    let refs = v["containers"]
        .as_array()
        .unwrap_or_else(|| panic!("containers never null: {v}"));
    for r in refs {
        assert_eq!(keys(r), ["id", "name"], "{r}");
        assert!(r["id"].as_str().is_some_and(|id| id.len() <= 12), "{r}");
        assert!(r["name"].is_string(), "{r}");
    }
    assert_eq!(
        v["container_count"].as_u64(),
        Some(refs.len() as u64),
        "{v}"
    );
}

/// `YYYY-MM-DDTHH:MM:SS` followed by `Z` or an offset, no fraction (Go's `time.RFC3339`).
fn is_rfc3339_seconds(s: &str) -> bool {
    s.len() >= 20 && s.as_bytes()[10] == b'T' && !s.contains('.')
}

/// An image object of spec 3.7.3.
pub fn check_image(v: &Value) {
    assert_eq!(
        keys(v),
        [
            "container_count",
            "containers",
            "created",
            "dangling",
            "id",
            "in_use",
            "size",
            "tags"
        ],
        "{v}"
    );
    assert_eq!(v["id"].as_str().unwrap().len(), 12, "{v}");
    assert!(!v["id"].as_str().unwrap().starts_with("sha256"), "{v}");
    let tags = v["tags"].as_array().expect("tags never null");
    assert_eq!(v["dangling"], tags.is_empty(), "{v}");
    assert!(v["size"].is_u64(), "{v}");
    let created = v["created"].as_str().unwrap();
    assert!(is_rfc3339_seconds(created) && created.ends_with('Z'), "{v}");
    check_refs(v);
    assert_eq!(
        v["in_use"],
        v["container_count"].as_u64().unwrap() > 0,
        "{v}"
    );
}

/// A network object of spec 3.7.4.
pub fn check_network(v: &Value) {
    assert_eq!(
        keys(v),
        [
            "container_count",
            "containers",
            "created",
            "driver",
            "id",
            "internal",
            "is_builtin",
            "name",
            "scope",
            "subnet"
        ],
        "{v}"
    );
    assert_eq!(v["id"].as_str().unwrap().len(), 12, "{v}");
    for k in ["name", "driver", "scope", "subnet"] {
        assert!(v[k].is_string(), "{k}: {v}");
    }
    assert!(v["internal"].is_boolean(), "{v}");
    assert!(is_rfc3339_seconds(v["created"].as_str().unwrap()), "{v}");
    let builtin = ["bridge", "host", "none"].contains(&v["name"].as_str().unwrap());
    assert_eq!(v["is_builtin"], builtin, "{v}");
    check_refs(v);
}

/// A volume object of spec 3.7.5.
pub fn check_volume(v: &Value) {
    assert_eq!(
        keys(v),
        [
            "container_count",
            "containers",
            "created",
            "driver",
            "in_use",
            "mountpoint",
            "name"
        ],
        "{v}"
    );
    for k in ["name", "driver", "mountpoint", "created"] {
        assert!(v[k].is_string(), "{k}: {v}");
    }
    check_refs(v);
    assert_eq!(
        v["in_use"],
        v["container_count"].as_u64().unwrap() > 0,
        "{v}"
    );
}

/// The element of `list` (an array of objects) whose `key` is `value`.
pub fn find<'v>(list: &'v Value, key: &str, value: &str) -> Option<&'v Value> {
    list.as_array()?.iter().find(|o| o[key] == value)
}
