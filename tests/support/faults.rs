//! Helpers of the agent-mode fault matrix (tests/faults_agent.rs) and of the soak (`bench/soak`):
//! a private dockerd that can be stopped, restarted and have its socket taken away, and the agent
//! process with what a fault case reads from it (its log, RSS, heap, open descriptors).
//!
//! Why a private dockerd: the shared engine must never be stopped or restarted (other suites run
//! on it), and a prune or a thousand containers on it would disturb them. The private one runs in
//! a network namespace of its own (`unshare --net`), because a dockerd with `--bridge=none` deletes
//! the host's `docker0` at startup, and in containerd namespaces of its own, because dockerd uses the
//! system containerd when `/run/containerd/containerd.sock` exists.
#![allow(dead_code)]

use crate::support::{
    agent_bin, agent_command, docker, ensure_image, remove_containers, require_engine, tempdir,
    IMAGE,
};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a private dockerd may take to answer after it is started.
const DOCKERD_UP: Duration = Duration::from_secs(40);

/// A dockerd of our own; stopped (SIGTERM, then SIGKILL) and its files removed when dropped.
pub struct PrivateDockerd {
    child: Option<Child>,
    pub dir: PathBuf,
    ns: String,
    /// `unix:///tmp/…/d.sock`.
    pub host: String,
    starts: u32,
}

impl PrivateDockerd {
    /// Starts it and waits until it answers; loads the test image into it.
    pub fn start(tag: &str) -> PrivateDockerd {
        ensure_image();
        let pid = std::process::id();
        // Short paths: a unix socket path has at most 107 bytes.
        let dir = PathBuf::from(format!("/tmp/dmt-faults-{tag}-{pid}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let host = format!("unix://{}", dir.join("d.sock").display());
        let mut d = PrivateDockerd {
            child: None,
            dir,
            ns: format!("dmt-faults-{tag}-{pid}"),
            host,
            starts: 0,
        };
        d.launch();
        let tar = d.dir.join("image.tar");
        docker(&["save", "-o", tar.to_str().unwrap(), IMAGE]);
        d.docker(&["load", "-q", "-i", tar.to_str().unwrap()]);
        let _ = std::fs::remove_file(tar);
        d
    }

    fn launch(&mut self) {
        self.starts += 1;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("dockerd.log"))
            .unwrap();
        let child = Command::new("unshare")
            .args(["--net", "dockerd"])
            .arg("--data-root")
            .arg(self.dir.join("data"))
            .arg("--exec-root")
            .arg(self.dir.join("exec"))
            .arg("--pidfile")
            .arg(self.dir.join("d.pid"))
            .args(["-H", &self.host, "--bridge=none", "--iptables=false"])
            .args(["--ip6tables=false", "--shutdown-timeout=2"])
            .args(["--containerd-namespace", &self.ns])
            .args([
                "--containerd-plugins-namespace",
                &format!("{}-plugins", self.ns),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("dockerd and unshare (apt-get install docker.io util-linux) must be on PATH");
        self.child = Some(child);
        let end = Instant::now() + DOCKERD_UP;
        while self.try_docker(&["version"]).is_err() {
            assert!(
                Instant::now() < end,
                "the private dockerd did not answer within {DOCKERD_UP:?}: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// SIGTERM and wait for it to exit (containers stop; they get `die` events).
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let end = Instant::now() + Duration::from_secs(30);
        while Instant::now() < end {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Starts it again after [`stop`](Self::stop), on the same data root and socket.
    pub fn start_again(&mut self) {
        self.launch();
    }

    /// Stops it and starts it again on the same data root and socket (a `systemctl restart docker`).
    pub fn restart(&mut self) {
        self.stop();
        self.launch();
    }

    /// The socket path.
    pub fn socket(&self) -> PathBuf {
        self.dir.join("d.sock")
    }

    /// Its log so far (all its starts).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("dockerd.log")).unwrap_or_default()
    }

    /// `docker -H <this> args…`: stdout, or stderr as the error.
    pub fn try_docker(&self, args: &[&str]) -> Result<String, String> {
        let out = Command::new("docker")
            .args(["-H", &self.host])
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run the docker CLI ({e}); install docker.io"));
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    /// `docker -H <this> args…`, panicking on failure.
    pub fn docker(&self, args: &[&str]) -> String {
        self.try_docker(args)
            .unwrap_or_else(|e| panic!("docker -H {} {}: {e}", self.host, args.join(" ")))
    }

    /// Starts `names` as `sleep` containers without a network, `workers` `docker run`s at a time.
    pub fn run_sleepers(&self, names: &[String], workers: usize) {
        let host = self.host.clone();
        let chunks: Vec<Vec<String>> = names
            .chunks(names.len().div_ceil(workers.max(1)).max(1))
            .map(<[String]>::to_vec)
            .collect();
        let threads: Vec<_> = chunks
            .into_iter()
            .map(|chunk| {
                let host = host.clone();
                std::thread::spawn(move || {
                    for name in chunk {
                        let _ = Command::new("docker")
                            .args(["-H", &host, "run", "-d", "--network", "none"])
                            .args(["--log-driver", "none", "--name", &name, IMAGE])
                            .args(["sleep", "1000000"])
                            .stdout(Stdio::null())
                            .stderr(Stdio::null())
                            .status();
                    }
                })
            })
            .collect();
        for t in threads {
            let _ = t.join();
        }
    }

    /// `docker rm -f` of `names`, one at a time (`support::remove_containers` says why).
    pub fn remove(&self, names: &[String]) {
        if let Err(e) = remove_containers(Some(&self.host), names) {
            panic!("{e}");
        }
    }
}

impl Drop for PrivateDockerd {
    fn drop(&mut self) {
        if self.child.is_some() {
            // Everything on it is ours; `rm -f` is faster than letting dockerd stop each one.
            if let Ok(ids) = self.try_docker(&["ps", "-aq"]) {
                let ids: Vec<String> = ids.lines().map(str::to_owned).collect();
                // A hung engine is stopped below all the same.
                let _ = remove_containers(Some(&self.host), &ids);
            }
        }
        self.stop();
        // Mounts under the exec root go with dockerd; what is left is plain files.
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The agent binary in agent mode, its stderr in a file; SIGKILLed when dropped.
pub struct Agent {
    child: Child,
    pub log: PathBuf,
    pub data: PathBuf,
}

impl Agent {
    /// Starts `bin` (the test build when `None`) for `url` with `token`; `env` adds or overrides.
    /// Defaults: debug log, plain text, reconnect 200 ms to 2 s, the shared engine.
    pub fn start(bin: Option<&Path>, url: &str, token: &str, env: &[(&str, &str)]) -> Agent {
        require_engine();
        let data = tempdir("faults-agent");
        Self::start_in(bin, url, token, env, data)
    }

    /// As [`start`](Self::start), with a given data directory.
    pub fn start_in(
        bin: Option<&Path>,
        url: &str,
        token: &str,
        env: &[(&str, &str)],
        data: PathBuf,
    ) -> Agent {
        let log = data.with_extension("log");
        let bin = bin.map_or_else(agent_bin, Path::to_path_buf);
        let mut cmd = agent_command(Command::new(bin), url, token, &data, &log);
        for (k, v) in env {
            cmd.env(k, v);
        }
        Agent {
            child: cmd.spawn().expect("spawn the agent"),
            log,
            data,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends it a signal by name (`STOP`, `CONT`, `USR1`, …).
    pub fn signal(&self, name: &str) {
        let _ = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status();
    }

    /// Its log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Lines of the log containing `needle`.
    pub fn count(&self, needle: &str) -> usize {
        self.log().lines().filter(|l| l.contains(needle)).count()
    }

    /// Waits until the log has at least `n` lines containing `needle`.
    pub fn wait_log(&self, needle: &str, n: usize, timeout: Duration) -> bool {
        let end = Instant::now() + timeout;
        loop {
            if self.count(needle) >= n {
                return true;
            }
            if Instant::now() >= end {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Whether the process still runs (not exited, not a zombie).
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    fn status_kib(&self, key: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("the agent is running");
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{key} in /proc/<pid>/status"))
    }

    pub fn rss_kib(&self) -> u64 {
        self.status_kib("VmRSS:")
    }

    /// Anonymous RSS (heap, stacks), where a leak shows; the file-backed rest is the binary's own
    /// pages, which the agent's periodic text release (`textmem`) swings by a few hundred KiB.
    pub fn anon_kib(&self) -> u64 {
        self.status_kib("RssAnon:")
    }

    pub fn hwm_kib(&self) -> u64 {
        self.status_kib("VmHWM:")
    }

    /// Open file descriptors, with what each points to (`socket:[…]`, `anon_inode:[eventfd]`, …).
    pub fn fds(&self) -> Vec<String> {
        let dir = format!("/proc/{}/fd", self.child.id());
        let mut fds: Vec<String> = std::fs::read_dir(&dir)
            .map(|rd| {
                rd.filter_map(|e| {
                    let e = e.ok()?;
                    let target = std::fs::read_link(e.path()).ok()?;
                    Some(format!(
                        "{} -> {}",
                        e.file_name().to_string_lossy(),
                        target.display()
                    ))
                })
                .collect()
            })
            .unwrap_or_default();
        fds.sort();
        fds
    }

    /// Heap in use and high-water from the line a `count-alloc` build logs on SIGUSR1; `None` for
    /// a build without it.
    pub fn heap(&self) -> Option<(u64, u64)> {
        let before = self.count("heap in use ");
        self.signal("USR1");
        if !self.wait_log("heap in use ", before + 1, Duration::from_secs(5)) {
            return None;
        }
        let log = self.log();
        let line = log.lines().rev().find(|l| l.contains("heap in use "))?;
        let nums: Vec<u64> = line
            .split_whitespace()
            .filter_map(|w| w.parse().ok())
            .collect();
        (nums.len() == 2).then(|| (nums[0], nums[1]))
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `cargo build --release --features count-alloc --target x86_64-unknown-linux-musl` into
/// `target/count-alloc` (the folder `bench/heap` and tests/engine_memory.rs use): the agent as users
/// run it, plus the heap counter.
pub fn count_alloc_build() -> PathBuf {
    const TARGET: &str = "x86_64-unknown-linux-musl";
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let target_dir = root.join("target/count-alloc");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .current_dir(root)
        .env("CARGO_TARGET_DIR", &target_dir)
        .args(["build", "--release", "--quiet", "--features", "count-alloc"])
        .args(["--target", TARGET])
        .output()
        .expect("run cargo");
    assert!(
        out.status.success(),
        "building the count-alloc release agent failed (needs `rustup target add {TARGET}`):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    target_dir.join(TARGET).join("release/dockmon-agent")
}

/// A duration from the environment in seconds (`name=90`), or `default`.
pub fn env_secs(name: &str, default: u64) -> Duration {
    Duration::from_secs(
        std::env::var(name)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(default),
    )
}

/// A name prefix unique to this case and this run of the test binary.
pub fn tag(case: &str) -> String {
    format!("dmt-faults-{case}-{}", std::process::id())
}

/// Waits until `f` is true, polling every 100 ms.
pub fn wait_for(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Containers on the shared engine, by full name, removed when dropped.
#[derive(Default)]
pub struct Named(pub Vec<String>);

impl Drop for Named {
    fn drop(&mut self) {
        if let Err(e) = remove_containers(None, &self.0) {
            eprintln!("cleanup: {e}");
        }
    }
}

/// A CONNECT proxy on 127.0.0.1 whose tunnels can all be cut at once (`drop_tunnels`), the way a
/// proxy restart or an idle-timeout cuts them: both TCP connections are shut down, no close frame.
pub struct CuttingProxy {
    pub port: u16,
    tunnels: std::sync::Arc<std::sync::Mutex<Vec<std::net::TcpStream>>>,
    connects: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl CuttingProxy {
    pub fn start() -> CuttingProxy {
        use std::io::{Read, Write};
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let tunnels = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let connects = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (t, c) = (tunnels.clone(), connects.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { break };
                let (t, c) = (t.clone(), c.clone());
                std::thread::spawn(move || {
                    let mut head = Vec::new();
                    let mut byte = [0u8; 1];
                    while !head.ends_with(b"\r\n\r\n") && head.len() < 8192 {
                        match conn.read(&mut byte) {
                            Ok(1) => head.push(byte[0]),
                            _ => return,
                        }
                    }
                    let text = String::from_utf8_lossy(&head).into_owned();
                    // `dockmon.test` (the agent would resolve it itself without a proxy) is us.
                    let target = text
                        .split(' ')
                        .nth(1)
                        .unwrap_or("")
                        .replace("dockmon.test:", "127.0.0.1:");
                    let Ok(upstream) = std::net::TcpStream::connect(&target) else {
                        let _ = conn.write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n");
                        return;
                    };
                    c.fetch_add(1, Ordering::SeqCst);
                    let _ = conn.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n");
                    {
                        let mut t = t.lock().unwrap();
                        t.push(conn.try_clone().unwrap());
                        t.push(upstream.try_clone().unwrap());
                    }
                    let (mut a, mut b) = (conn.try_clone().unwrap(), upstream.try_clone().unwrap());
                    let (mut c2, mut d) = (conn, upstream);
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut a, &mut b);
                        let _ = b.shutdown(std::net::Shutdown::Both);
                    });
                    let _ = std::io::copy(&mut d, &mut c2);
                    let _ = c2.shutdown(std::net::Shutdown::Both);
                });
            }
        });
        CuttingProxy {
            port,
            tunnels,
            connects,
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Tunnels opened so far.
    pub fn connects(&self) -> usize {
        self.connects.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Shuts down every open tunnel (both sides).
    pub fn drop_tunnels(&self) {
        for s in self.tunnels.lock().unwrap().drain(..) {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
    }
}

/// A server on 127.0.0.1 that accepts connections, reads what comes and answers `reply` one byte
/// a second (a slowloris peer); counts the connections it accepted.
pub struct Slowloris {
    pub port: u16,
    accepted: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    open: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Slowloris {
    pub fn start(reply: &'static [u8]) -> Slowloris {
        use std::io::{Read, Write};
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let open = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (a, o) = (accepted.clone(), open.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { break };
                a.fetch_add(1, Ordering::SeqCst);
                let o = o.clone();
                std::thread::spawn(move || {
                    o.fetch_add(1, Ordering::SeqCst);
                    let _ = conn.set_read_timeout(Some(Duration::from_millis(900)));
                    let mut buf = [0u8; 4096];
                    for b in reply.iter().cycle() {
                        // Drain what the client sends (a read that times out is fine), then one byte.
                        match conn.read(&mut buf) {
                            Ok(0) => break,
                            Ok(_) => {}
                            Err(e)
                                if matches!(
                                    e.kind(),
                                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                                ) => {}
                            Err(_) => break,
                        }
                        if conn.write_all(std::slice::from_ref(b)).is_err() {
                            break;
                        }
                    }
                    o.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        Slowloris {
            port,
            accepted,
            open,
        }
    }

    pub fn accepted(&self) -> usize {
        self.accepted.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Connections still open on the server side.
    pub fn open(&self) -> usize {
        self.open.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// `socat <listen> <connect>` in a process group of its own (`setsid`), so that stopping it also
/// stops the children it forked for open connections (an engine or server that goes away, not
/// only its listener). Waits until `port` accepts; stopped when dropped.
pub struct Relay {
    child: Child,
}

impl Relay {
    pub fn start(listen: &str, connect: &str, port: u16) -> Relay {
        let child = Command::new("setsid")
            .args(["socat", listen, connect])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("socat (apt: socat) and setsid (util-linux)");
        let relay = Relay { child };
        let end = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < end, "socat {listen} does not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        relay
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        // setsid execs socat directly (a spawned child is no group leader): its pid is the group.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .status();
        let _ = self.child.wait();
    }
}
