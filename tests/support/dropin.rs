//! Test-side helpers for issue 12 (proxies and tcp:// engines): certificates made with openssl, a
//! CONNECT proxy (optionally with basic auth) on a thread, socat relays (plain, TLS, unix → TCP), and
//! the agent binary started with a clean environment and killed when dropped.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A CA, a server certificate (DNS dockmon.test, localhost; IP 127.0.0.1) and a client certificate,
/// named as the docker CLI expects in `DOCKER_CERT_PATH`: ca.pem, cert.pem, key.pem; plus
/// server-cert.pem and server-key.pem.
pub fn pki(dir: &Path, tag: &str) {
    let sh = format!(
        "set -e
openssl req -x509 -newkey rsa:2048 -nodes -keyout ca-key.pem -out ca.pem -days 2 -subj '/CN=dmt {tag} CA' \
  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
openssl req -newkey rsa:2048 -nodes -keyout server-key.pem -out server.csr -subj '/CN=dockmon.test' 2>/dev/null
printf 'subjectAltName=DNS:dockmon.test,DNS:localhost,IP:127.0.0.1\\nextendedKeyUsage=serverAuth\\nbasicConstraints=CA:FALSE\\n' > server.ext
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -out server-cert.pem -days 2 -extfile server.ext 2>/dev/null
openssl ecparam -name prime256v1 -genkey -noout -out client-ec.pem
openssl pkcs8 -topk8 -nocrypt -in client-ec.pem -out key.pem
openssl req -new -key key.pem -out client.csr -subj '/CN=dmt-client' 2>/dev/null
printf 'extendedKeyUsage=clientAuth\\nbasicConstraints=CA:FALSE\\n' > client.ext
openssl x509 -req -in client.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -out cert.pem -days 2 -extfile client.ext 2>/dev/null
cat server-cert.pem server-key.pem > server.pem
"
    );
    let out = Command::new("sh")
        .args(["-c", &sh])
        .current_dir(dir)
        .output()
        .expect("openssl (apt: openssl)");
    assert!(
        out.status.success(),
        "openssl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A free TCP port on 127.0.0.1 (bound then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A child process (socat), killed when dropped.
pub struct Child_ {
    child: Child,
}

impl Drop for Child_ {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `socat <listen> <connect>`, waiting until `port` on `host` accepts (unix listeners: `port` 0, the
/// caller waits).
pub fn socat(listen: &str, connect: &str, host: &str, port: u16) -> Child_ {
    let child = Command::new("socat")
        .args([listen, connect])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("socat (apt: socat)");
    let guard = Child_ { child };
    if port != 0 {
        let end = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect((host, port)).is_err() {
            assert!(Instant::now() < end, "socat {listen} does not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    guard
}

/// What the proxy saw.
#[derive(Default, Debug)]
pub struct Seen {
    /// Request lines (`CONNECT host:port HTTP/1.1`).
    pub requests: Vec<String>,
    /// `Proxy-Authorization` values.
    pub auth: Vec<Option<String>>,
    /// Answers given (status codes).
    pub answers: Vec<u16>,
}

/// A CONNECT proxy on 127.0.0.1: `dockmon.test` is mapped to 127.0.0.1, other hosts are connected
/// as named. With `basic` set, requests without that exact `Proxy-Authorization: Basic` value get 407.
pub struct Proxy {
    pub port: u16,
    pub seen: Arc<Mutex<Seen>>,
}

impl Proxy {
    pub fn start(basic: Option<&str>) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Seen::default()));
        let s = seen.clone();
        let basic = basic.map(str::to_string);
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { break };
                let s = s.clone();
                let basic = basic.clone();
                std::thread::spawn(move || serve(conn, &s, basic.as_deref()));
            }
        });
        Proxy { port, seen }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn connects(&self) -> usize {
        self.seen.lock().unwrap().requests.len()
    }
}

fn serve(mut conn: TcpStream, seen: &Mutex<Seen>, basic: Option<&str>) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match conn.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return,
        }
        if head.len() > 8192 {
            return;
        }
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    let first = text.lines().next().unwrap_or("").to_string();
    let auth = text.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case("proxy-authorization")
            .then(|| v.trim().to_string())
    });
    let mut seen_now = seen.lock().unwrap();
    seen_now.requests.push(first.clone());
    seen_now.auth.push(auth.clone());
    let answer = |code: u16, seen_now: &mut Seen, conn: &mut TcpStream, text: &str| {
        seen_now.answers.push(code);
        let _ = conn.write_all(text.as_bytes());
    };
    if let Some(want) = basic {
        if auth.as_deref() != Some(&format!("Basic {want}")) {
            answer(
                407,
                &mut seen_now,
                &mut conn,
                "HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"dmt\"\r\nContent-Length: 0\r\n\r\n",
            );
            return;
        }
    }
    let mut parts = first.split(' ');
    let (Some("CONNECT"), Some(target)) = (parts.next(), parts.next()) else {
        answer(
            405,
            &mut seen_now,
            &mut conn,
            "HTTP/1.1 405 Method Not Allowed\r\n\r\n",
        );
        return;
    };
    let target = target.replace("dockmon.test:", "127.0.0.1:");
    let Ok(upstream) = TcpStream::connect(&target) else {
        answer(
            502,
            &mut seen_now,
            &mut conn,
            "HTTP/1.1 502 Bad Gateway\r\n\r\n",
        );
        return;
    };
    answer(
        200,
        &mut seen_now,
        &mut conn,
        "HTTP/1.1 200 Connection established\r\nProxy-Agent: dmt\r\n\r\n",
    );
    drop(seen_now);
    let (mut a, mut b) = (conn.try_clone().unwrap(), upstream.try_clone().unwrap());
    let (mut c, mut d) = (conn, upstream);
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut a, &mut b);
        let _ = b.shutdown(std::net::Shutdown::Write);
    });
    let _ = std::io::copy(&mut d, &mut c);
    let _ = c.shutdown(std::net::Shutdown::Write);
}

/// The agent binary with a clean environment (`PATH` only, plus `env`), stderr to a file, killed when
/// dropped.
pub struct Agent {
    child: Child,
    pub log: PathBuf,
    pub data: PathBuf,
}

impl Agent {
    pub fn start(args: &[&str], env: &[(&str, &str)], tag: &str) -> Agent {
        let data = super::tempdir(tag);
        let log = data.with_extension("log");
        let mut cmd = Command::new(super::agent_bin());
        cmd.args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("DATA_PATH", &data)
            .env("LOG_JSON", "false")
            .env("LOG_LEVEL", "debug")
            .env("RECONNECT_INITIAL", "200ms")
            .env("RECONNECT_MAX", "1s")
            // One engine registers several times with the same server: each agent is its own host.
            .env("FORCE_UNIQUE_REGISTRATION", "true")
            .env(
                "AGENT_NAME",
                data.file_name().unwrap().to_string_lossy().into_owned(),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        for (k, v) in env {
            cmd.env(k, v);
        }
        Agent {
            child: cmd.spawn().expect("spawn the agent"),
            log,
            data,
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn wait_log(&self, needle: &str, timeout: Duration) -> bool {
        crate::support::wait_for_log(&self.log, needle, timeout)
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs the agent binary once (`check`, `snapshot`) with a clean environment; killed after `limit`.
pub fn run_once(args: &[&str], env: &[(&str, &str)], limit: Duration) -> (bool, String, String) {
    let mut cmd = Command::new(super::agent_bin());
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let dir = super::tempdir("run-once");
    let (out_path, err_path) = (dir.join("stdout"), dir.join("stderr"));
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .unwrap();
    let end = Instant::now() + limit;
    let ok = loop {
        if let Ok(Some(status)) = child.try_wait() {
            break status.success();
        }
        if Instant::now() > end {
            let _ = child.kill();
            let _ = child.wait();
            break false;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
    let result = (ok, read(&out_path), read(&err_path));
    let _ = std::fs::remove_dir_all(&dir);
    result
}
