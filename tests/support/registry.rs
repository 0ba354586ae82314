//! A real image registry for tests: Debian's `docker-registry` (the Distribution registry 2.8,
//! package `docker-registry`) on `127.0.0.1:<free port>`, with a temporary config file and storage
//! directory, optionally behind htpasswd auth (`htpasswd -Bbn`, package `apache2-utils`). Docker pulls
//! from and pushes to 127.0.0.0/8 over plain HTTP without any daemon setting.
//!
//! API (use with `#[path = "support/registry.rs"] mod registry;` beside `mod support;`):
//! - [`Registry::start`] / [`Registry::start_with_auth`]: a running registry, stopped on drop (the
//!   process killed, its directory removed, and every image reference pushed through it removed from
//!   the local engine);
//! - [`Registry::reference`] gives `127.0.0.1:<port>/<repo>:<tag>`;
//! - [`Registry::build_and_push`]: builds a FROM-scratch busybox image from an [`ImageSpec`] (command,
//!   labels, env, healthcheck), pushes it, and by default removes the local tag so that the next
//!   use of the reference is a real pull.
//!
//! The docker CLI runs with `DOCKER_CONFIG` pointing into the registry's own directory, so the
//! `docker login` a push behind auth needs never touches the user's `~/.docker/config.json`.
#![allow(dead_code)]

use crate::support::{docker, ensure_image, tempdir, IMAGE};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The registry binary of Debian's `docker-registry` package.
pub const REGISTRY_BIN: &str = "/usr/bin/docker-registry";

/// One image to build: what differs between the versions of a test image.
#[derive(Debug, Clone, Default)]
pub struct ImageSpec {
    /// `CMD` in exec form, e.g. `["sleep", "3600"]`.
    pub cmd: Vec<String>,
    /// `LABEL`s.
    pub labels: Vec<(String, String)>,
    /// `ENV`s.
    pub env: Vec<(String, String)>,
    /// The `HEALTHCHECK` line after the keyword, e.g. `--interval=1s --retries=1 CMD ["true"]`.
    pub healthcheck: Option<String>,
}

impl ImageSpec {
    /// An image whose command is `cmd`.
    pub fn cmd(cmd: &[&str]) -> Self {
        ImageSpec {
            cmd: cmd.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    /// Adds a label.
    pub fn label(mut self, k: &str, v: &str) -> Self {
        self.labels.push((k.into(), v.into()));
        self
    }

    /// Adds an environment variable.
    pub fn env(mut self, k: &str, v: &str) -> Self {
        self.env.push((k.into(), v.into()));
        self
    }

    /// Sets the healthcheck.
    pub fn healthcheck(mut self, line: &str) -> Self {
        self.healthcheck = Some(line.into());
        self
    }

    fn dockerfile(&self) -> String {
        let mut d = format!("FROM {IMAGE}\n");
        for (k, v) in &self.labels {
            d.push_str(&format!("LABEL {k:?}={v:?}\n"));
        }
        for (k, v) in &self.env {
            d.push_str(&format!("ENV {k}={v:?}\n"));
        }
        if let Some(h) = &self.healthcheck {
            d.push_str(&format!("HEALTHCHECK {h}\n"));
        }
        d.push_str(&format!(
            "CMD {}\n",
            serde_json::to_string(&self.cmd).unwrap()
        ));
        d
    }
}

/// A running registry; stopped and cleaned up on drop.
pub struct Registry {
    child: Child,
    dir: PathBuf,
    port: u16,
    auth: Option<(String, String)>,
    pushed: Vec<String>,
}

impl Registry {
    /// A registry without auth.
    pub fn start() -> Registry {
        Self::launch(None)
    }

    /// A registry that wants `user`/`password` (htpasswd, bcrypt) for every request.
    pub fn start_with_auth(user: &str, password: &str) -> Registry {
        Self::launch(Some((user.to_string(), password.to_string())))
    }

    fn launch(auth: Option<(String, String)>) -> Registry {
        assert!(
            std::path::Path::new(REGISTRY_BIN).exists(),
            "these tests need Debian's registry: apt-get install docker-registry"
        );
        let dir = tempdir("registry");
        let port = free_port();
        let mut config = format!(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
            dir.join("storage").display()
        );
        if let Some((user, password)) = &auth {
            let out = Command::new("htpasswd")
                .args(["-Bbn", user, password])
                .output()
                .expect("htpasswd: apt-get install apache2-utils");
            assert!(out.status.success(), "htpasswd failed");
            std::fs::write(dir.join("htpasswd"), &out.stdout).unwrap();
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: dmt-registry\n    path: {}\n",
                dir.join("htpasswd").display()
            ));
        }
        let config_path = dir.join("config.yml");
        std::fs::write(&config_path, config).unwrap();
        let child = Command::new(REGISTRY_BIN)
            .arg("serve")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("registry.log")).unwrap())
            .spawn()
            .expect("start docker-registry");
        let mut reg = Registry {
            child,
            dir,
            port,
            auth,
            pushed: Vec::new(),
        };
        reg.wait_ready();
        reg
    }

    fn wait_ready(&mut self) {
        let end = Instant::now() + Duration::from_secs(15);
        while Instant::now() < end {
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "docker-registry exited ({status}): {}",
                    std::fs::read_to_string(self.dir.join("registry.log")).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "docker-registry did not listen on 127.0.0.1:{} within 15 s",
            self.port
        );
    }

    /// `127.0.0.1:<port>`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `127.0.0.1:<port>/<repo>:<tag>`.
    pub fn reference(&self, repo: &str, tag: &str) -> String {
        format!("{}/{repo}:{tag}", self.host())
    }

    /// The docker CLI with this registry's private client config (and login, with auth).
    fn cli(&self, args: &[&str]) -> std::process::Output {
        Command::new("docker")
            .args(args)
            .env("DOCKER_CONFIG", self.dir.join("docker-config"))
            .env("DOCKER_BUILDKIT", "0")
            .output()
            .expect("run the docker CLI")
    }

    fn cli_ok(&self, args: &[&str]) {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "docker {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Builds `spec` as `<repo>:<tag>` of this registry, pushes it, and removes the local tag
    /// (`keep_local == false`) so the next pull fetches it. Returns the reference.
    pub fn build_and_push(
        &mut self,
        repo: &str,
        tag: &str,
        spec: &ImageSpec,
        keep_local: bool,
    ) -> String {
        ensure_image();
        let reference = self.reference(repo, tag);
        let ctx = tempdir("registry-image");
        std::fs::write(ctx.join("Dockerfile"), spec.dockerfile()).unwrap();
        self.cli_ok(&["build", "-q", "-t", &reference, ctx.to_str().unwrap()]);
        let _ = std::fs::remove_dir_all(&ctx);
        self.pushed.push(reference.clone());
        if let Some((user, password)) = self.auth.clone() {
            self.cli_ok(&["login", "-u", &user, "-p", &password, &self.host()]);
        }
        self.cli_ok(&["push", "-q", &reference]);
        if !keep_local {
            self.cli_ok(&["rmi", &reference]);
        }
        reference
    }

    /// Whether the engine holds `reference` locally.
    pub fn is_local(reference: &str) -> bool {
        Command::new("docker")
            .args(["image", "inspect", reference])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// Notes a reference (pulled by the agent, say) to remove from the engine on drop.
    pub fn forget_on_drop(&mut self, reference: &str) {
        self.pushed.push(reference.to_string());
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        for r in &self.pushed {
            let _ = Command::new("docker")
                .args(["rmi", "-f", r])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A port nobody listens on now (bound once by the OS, then released).
fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// The docker CLI helper of `support`, re-exported for tests that only import this module.
pub fn docker_cli(args: &[&str]) -> String {
    docker(args)
}
