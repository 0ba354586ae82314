//! Shared helpers for the real-engine and fault suites: the docker CLI, the FROM-scratch busybox
//! test image, containers that clean up after themselves, and running the agent binary with a
//! watchdog.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Once;
use std::time::{Duration, Instant};

/// The test image: Debian's static busybox in an otherwise empty image.
pub const IMAGE: &str = "dmtest/busybox:local";

/// Runs `docker args…` and returns stdout; panics with stderr on failure.
pub fn docker(args: &[&str]) -> String {
    let out = Command::new("docker")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run the docker CLI ({e}); install docker.io"));
    if !out.status.success() {
        panic!(
            "docker {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Fails the test (never skips it) when no engine answers, saying how to start one.
pub fn require_engine() {
    let ok = Command::new("docker")
        .args(["version", "--format", "{{.Server.Version}}"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "these tests need a running Docker engine and the docker CLI: `apt-get install docker.io` \
         and start it (`dockerd &`), or run .ci/run"
    );
}

/// Builds the test image once per test binary (FROM scratch + /bin/busybox, no registry needed).
pub fn ensure_image() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        require_engine();
        let have = Command::new("docker")
            .args(["image", "inspect", IMAGE])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if have {
            return;
        }
        let dir = tempdir("image");
        std::fs::copy(busybox(), dir.join("busybox")).unwrap();
        std::fs::write(
            dir.join("Dockerfile"),
            "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\nCMD [\"/bin/sh\"]\n",
        )
        .unwrap();
        docker_build(None, IMAGE, &dir);
    });
}

/// Debian's static busybox (`busybox-static`), the one binary of the test images.
pub fn busybox() -> &'static str {
    ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("the test images need a static busybox: apt-get install busybox-static")
}

/// `docker [-H host] build -q -t tag dir` with the classic builder (no buildx here); panics with
/// the builder's error.
pub fn docker_build(host: Option<&str>, tag: &str, dir: &Path) {
    let mut cmd = Command::new("docker");
    if let Some(h) = host {
        cmd.args(["-H", h]);
    }
    let out = cmd
        .args(["build", "-q", "-t", tag, dir.to_str().unwrap()])
        .env("DOCKER_BUILDKIT", "0")
        .output()
        .unwrap_or_else(|e| panic!("cannot run the docker CLI ({e}); install docker.io"));
    assert!(
        out.status.success(),
        "building {tag}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A fresh directory under the system temp dir.
pub fn tempdir(tag: &str) -> PathBuf {
    static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let dir = std::env::temp_dir().join(format!("dmtest-{tag}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Containers created by one test, removed (forcibly) when dropped.
pub struct Containers {
    prefix: String,
    names: Vec<String>,
}

impl Containers {
    /// Names start with `dmtest-<tag>-<pid>-`.
    pub fn new(tag: &str) -> Self {
        ensure_image();
        Containers {
            prefix: format!("dmtest-{tag}-{}-", std::process::id()),
            names: Vec::new(),
        }
    }

    /// `docker run -d --name <prefix><name> <flags…> IMAGE <cmd…>`; returns the full ID.
    pub fn run(&mut self, name: &str, flags: &[&str], cmd: &[&str]) -> String {
        self.run_image(name, flags, IMAGE, cmd)
    }

    /// `docker run -d --name <prefix><name> <flags…> <image> <cmd…>`; returns the full ID.
    pub fn run_image(&mut self, name: &str, flags: &[&str], image: &str, cmd: &[&str]) -> String {
        let full = format!("{}{name}", self.prefix);
        let mut args = vec!["run", "-d", "--name", &full];
        args.extend_from_slice(flags);
        args.push(image);
        args.extend_from_slice(cmd);
        let id = docker(&args).trim().to_string();
        self.names.push(full);
        id
    }

    /// `docker create` (a container that never ran).
    pub fn create(&mut self, name: &str, cmd: &[&str]) -> String {
        let full = format!("{}{name}", self.prefix);
        let mut args = vec!["create", "--name", &full, IMAGE];
        args.extend_from_slice(cmd);
        let id = docker(&args).trim().to_string();
        self.names.push(full);
        id
    }

    /// The full name given to `name`.
    pub fn name(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }
}

impl Drop for Containers {
    fn drop(&mut self) {
        if let Err(e) = remove_containers(None, &self.names) {
            eprintln!("cleanup: {e}");
        }
    }
}

/// How long one `docker rm -f` may take before the engine counts as hung.
const REMOVE_WITHIN: Duration = Duration::from_secs(60);

/// `docker [-H host] rm -f` of `names`, one container at a time.
///
/// Docker 20.10.24 (Debian 12's docker.io, the engine of CI) can deadlock when two running
/// containers on one network exit at the same moment: an exiting container's `sbLeave` holds the
/// network's lock and waits for the controller's, while libnetwork's watch loop holds the
/// controller's and waits for the network's (moby/moby#46661, fixed in libnetwork's 20.10 branch
/// after Debian's release). `docker rm -f a b c…` removes in parallel and hung dockerd here three
/// times in a day; one at a time, each exit's cleanup is over before the next container is killed.
/// A removal that still takes longer than `REMOVE_WITHIN` is an error naming the container, so a
/// hung engine fails the test instead of stalling CI. A container that is already gone is not an
/// error.
pub fn remove_containers(host: Option<&str>, names: &[String]) -> Result<(), String> {
    for name in names {
        let mut cmd = Command::new("docker");
        if let Some(h) = host {
            cmd.args(["-H", h]);
        }
        let mut child = cmd
            .args(["rm", "-f", name])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot run the docker CLI ({e}); install docker.io"))?;
        let end = Instant::now() + REMOVE_WITHIN;
        while child.try_wait().map_err(|e| e.to_string())?.is_none() {
            if Instant::now() >= end {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "`docker rm -f {name}` did not return within {REMOVE_WITHIN:?}: the engine \
                     hangs (send dockerd SIGUSR1 for its goroutine stacks; moby/moby#46661 is one \
                     known cause)"
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    Ok(())
}

/// The agent binary built for this test run.
pub fn agent_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_dockmon-agent"))
}

/// The agent as the protocol suites run it: a clean environment (`PATH` only), the server's URL and
/// token, its own data directory, debug text logs, and quick reconnects so that a server restart in a
/// test costs a fraction of a second; stderr goes to `log`. `cmd` is the agent binary or a wrapper
/// around it. Callers add their own environment afterwards; a later `env` of the same name wins.
pub fn agent_command(mut cmd: Command, url: &str, token: &str, data: &Path, log: &Path) -> Command {
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DOCKMON_URL", url)
        .env("REGISTRATION_TOKEN", token)
        .env("DATA_PATH", data)
        .env("LOG_JSON", "false")
        .env("LOG_LEVEL", "debug")
        .env("RECONNECT_INITIAL", "200ms")
        .env("RECONNECT_MAX", "2s")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap());
    cmd
}

/// Whether the file at `log` holds `needle` within `timeout` (read every 50 ms).
pub fn wait_for_log(log: &Path, needle: &str, timeout: Duration) -> bool {
    let end = Instant::now() + timeout;
    loop {
        if std::fs::read_to_string(log).is_ok_and(|l| l.contains(needle)) {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs the agent with `args` and extra environment; kills it after `limit` (a watchdog, so a hang
/// fails the test instead of stalling CI). Returns its output and how long it ran.
pub fn run_agent(args: &[&str], env: &[(&str, &str)], limit: Duration) -> (Output, Duration) {
    let mut cmd = Command::new(agent_bin());
    cmd.args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env_remove("DOCKER_HOST")
        .env("LOG_LEVEL", "info");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let start = Instant::now();
    let child = cmd.spawn().expect("spawn agent");
    let pid = child.id();
    let watchdog = std::thread::spawn(move || {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
            if !PathBuf::from(format!("/proc/{pid}")).exists() {
                return;
            }
        }
        let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
    });
    let out = child.wait_with_output().expect("wait agent");
    let elapsed = start.elapsed();
    let _ = watchdog.join();
    assert!(
        elapsed < limit,
        "agent {args:?} ran past its {limit:?} watchdog; stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (out, elapsed)
}

/// Parses go-units strings as the docker CLI prints them (`1.5MiB`, `8.39MB`, `0B`) back to bytes.
pub fn parse_size(s: &str) -> f64 {
    let s = s.trim();
    let split = s.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().unwrap_or_else(|_| panic!("size {s:?}"));
    let mul = match unit {
        "B" => 1.0,
        "kB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        "KiB" => 1024.0,
        "MiB" => 1024.0 * 1024.0,
        "GiB" => 1024.0 * 1024.0 * 1024.0,
        other => panic!("unit {other:?} in {s:?}"),
    };
    n * mul
}

/// The block device holding Docker's data root, e.g. `/dev/vda`. Since Linux 6.10 cgroup v1 counts
/// block I/O bytes only on devices some cgroup throttles, so block I/O tests throttle this disk.
pub fn data_root_device() -> String {
    use std::os::unix::fs::MetadataExt;
    let root = docker(&["info", "--format", "{{.DockerRootDir}}"]);
    let dev = std::fs::metadata(root.trim()).unwrap().dev();
    let (major, minor) = ((dev >> 8) & 0xfff, (dev & 0xff) | ((dev >> 12) & 0xfff00));
    let sys =
        std::fs::canonicalize(format!("/sys/dev/block/{major}:{minor}")).unwrap_or_else(|e| {
            panic!("no block device {major}:{minor} under Docker's data root: {e}")
        });
    let uevent = std::fs::read_to_string(sys.join("uevent")).unwrap();
    // Throttles apply to whole disks: for a partition, take its disk (the parent in sysfs).
    let disk = if uevent.contains("DEVTYPE=partition") {
        sys.parent().unwrap().to_path_buf()
    } else {
        sys
    };
    format!("/dev/{}", disk.file_name().unwrap().to_string_lossy())
}
