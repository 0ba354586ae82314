//! Which engine to talk to, like DockMon's Go agent and the docker CLI. Pure: the environment and
//! the file checks are passed in.
//!
//! `DOCKER_HOST` set and non-empty wins: `unix:///path` is used as given; `tcp://host:port` is a TCP
//! engine, with TLS when `DOCKER_TLS_VERIFY` is non-empty (the docker CLI's rule): the engine's
//! certificate is verified against `ca.pem` and the agent presents `cert.pem`/`key.pem`, all three
//! from `DOCKER_CERT_PATH` (default `~/.docker`). `ssh://`, `npipe://`, `fd://` and `http(s)://` are a
//! clear "not supported". Otherwise the first of [`CANDIDATES`] that exists and is a socket; if none
//! does, `/var/run/docker.sock` (so the error names the usual path).
use super::Error;
use std::fmt;
use std::path::{Path, PathBuf};

/// Sockets probed, in order, when `DOCKER_HOST` is unset (DockMon spec 1.1).
pub const CANDIDATES: [&str; 3] = [
    "/var/run/docker.sock",
    "/run/docker.sock",
    "/run/podman/podman.sock",
];

/// The engine's address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// A unix socket path.
    Unix(PathBuf),
    /// `tcp://host:port`, with the folder of TLS files when `DOCKER_TLS_VERIFY` is set.
    Tcp {
        /// Host name or IP literal (IPv6 without brackets).
        host: String,
        /// Port.
        port: u16,
        /// `DOCKER_CERT_PATH` (ca.pem, cert.pem, key.pem) when TLS is on.
        tls: Option<PathBuf>,
    },
}

impl Endpoint {
    /// The socket path of a unix endpoint.
    pub fn unix_path(&self) -> Option<&Path> {
        match self {
            Endpoint::Unix(p) => Some(p),
            Endpoint::Tcp { .. } => None,
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Unix(p) => write!(f, "unix://{}", p.display()),
            Endpoint::Tcp { host, port, tls } => {
                if host.contains(':') {
                    write!(f, "tcp://[{host}]:{port}")?;
                } else {
                    write!(f, "tcp://{host}:{port}")?;
                }
                if tls.is_some() {
                    write!(f, " (TLS)")?;
                }
                Ok(())
            }
        }
    }
}

/// Chooses the endpoint from `DOCKER_HOST` alone (no TLS). `is_socket` says whether a path exists and
/// is a socket.
pub fn select(
    docker_host: Option<&str>,
    is_socket: impl Fn(&Path) -> bool,
) -> Result<Endpoint, Error> {
    select_env(
        |k| (k == "DOCKER_HOST").then(|| docker_host.map(str::to_string))?,
        is_socket,
    )
}

/// Chooses the endpoint from `DOCKER_HOST`, `DOCKER_TLS_VERIFY`, `DOCKER_CERT_PATH` and `HOME`, read
/// through `env`.
pub fn select_env(
    env: impl Fn(&str) -> Option<String>,
    is_socket: impl Fn(&Path) -> bool,
) -> Result<Endpoint, Error> {
    let host = env("DOCKER_HOST");
    match host.as_deref().map(str::trim).filter(|h| !h.is_empty()) {
        Some(host) => parse_host(host, &env),
        None => {
            let path = CANDIDATES
                .iter()
                .map(Path::new)
                .find(|p| is_socket(p))
                .unwrap_or(Path::new(CANDIDATES[0]));
            Ok(Endpoint::Unix(path.to_path_buf()))
        }
    }
}

/// The real environment and file checks.
pub fn from_env() -> Result<Endpoint, Error> {
    select_env(|k| std::env::var(k).ok(), is_socket)
}

fn parse_host(host: &str, env: &impl Fn(&str) -> Option<String>) -> Result<Endpoint, Error> {
    if let Some(path) = host.strip_prefix("unix://") {
        if path.is_empty() || path.contains('\0') {
            return Err(Error::BadHost(host.to_string()));
        }
        return Ok(Endpoint::Unix(PathBuf::from(path)));
    }
    if let Some(rest) = host.strip_prefix("tcp://") {
        let authority = rest.trim_end_matches('/');
        let (h, p) = if let Some(v6) = authority.strip_prefix('[') {
            let (h, after) = v6.split_once(']').ok_or(Error::BadHost(host.to_string()))?;
            (h, after.strip_prefix(':'))
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        let valid = |c: u8| c.is_ascii_alphanumeric() || b"-._:".contains(&c);
        if h.is_empty() || !h.bytes().all(valid) || authority.contains(['/', '@', '?']) {
            return Err(Error::BadHost(host.to_string()));
        }
        let tls = env("DOCKER_TLS_VERIFY").is_some_and(|v| !v.is_empty());
        // The docker CLI's defaults: 2376 with TLS, 2375 without.
        let port = match p {
            None | Some("") => {
                if tls {
                    2376
                } else {
                    2375
                }
            }
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or(Error::BadHost(host.to_string()))?,
        };
        let tls = if tls {
            let dir = env("DOCKER_CERT_PATH")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
                .or_else(|| {
                    env("HOME")
                        .filter(|v| !v.is_empty())
                        .map(|h| Path::new(&h).join(".docker"))
                })
                .ok_or(Error::TlsFiles {
                    dir: PathBuf::new(),
                    problem: "DOCKER_CERT_PATH is not set and there is no HOME for ~/.docker"
                        .into(),
                })?;
            Some(dir)
        } else {
            None
        };
        return Ok(Endpoint::Tcp {
            host: h.to_string(),
            port,
            tls,
        });
    }
    if ["http://", "https://", "ssh://", "npipe://", "fd://"]
        .iter()
        .any(|s| host.starts_with(s))
    {
        return Err(Error::UnsupportedHost(host.to_string()));
    }
    Err(Error::BadHost(host.to_string()))
}

/// The real check for [`select`]: the path exists and is a socket.
pub fn is_socket(path: &Path) -> bool {
    use std::os::unix::fs::FileTypeExt;
    std::fs::metadata(path).is_ok_and(|m| m.file_type().is_socket())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn docker_host_wins() {
        let e = select(Some("unix:///tmp/d.sock"), |_| true).unwrap();
        assert_eq!(e.unix_path(), Some(Path::new("/tmp/d.sock")));
        assert_eq!(e.to_string(), "unix:///tmp/d.sock");
    }

    #[test]
    fn probes_in_order_then_falls_back() {
        let e = select(None, |p| p == Path::new("/run/podman/podman.sock")).unwrap();
        assert_eq!(e.unix_path(), Some(Path::new("/run/podman/podman.sock")));
        let e = select(Some("  "), |p| p.starts_with("/run")).unwrap();
        assert_eq!(e.unix_path(), Some(Path::new("/run/docker.sock")));
        let e = select(None, |_| false).unwrap();
        assert_eq!(e.unix_path(), Some(Path::new("/var/run/docker.sock")));
    }

    #[test]
    fn tcp_hosts_plain_and_tls() {
        let tcp = |host: &str, port: u16, tls: Option<&str>| Endpoint::Tcp {
            host: host.into(),
            port,
            tls: tls.map(PathBuf::from),
        };
        let cases: &[(&[(&str, &str)], Endpoint)] = &[
            (
                &[("DOCKER_HOST", "tcp://10.0.0.1:2375")],
                tcp("10.0.0.1", 2375, None),
            ),
            (
                &[("DOCKER_HOST", "tcp://docker.lan")],
                tcp("docker.lan", 2375, None),
            ),
            (
                &[("DOCKER_HOST", "tcp://[fd00::1]:2375/")],
                tcp("fd00::1", 2375, None),
            ),
            // DOCKER_CERT_PATH alone does not turn TLS on (the CLI's rule).
            (
                &[("DOCKER_HOST", "tcp://h:2375"), ("DOCKER_CERT_PATH", "/c")],
                tcp("h", 2375, None),
            ),
            (
                &[
                    ("DOCKER_HOST", "tcp://h"),
                    ("DOCKER_TLS_VERIFY", "1"),
                    ("DOCKER_CERT_PATH", "/c"),
                ],
                tcp("h", 2376, Some("/c")),
            ),
            (
                &[
                    ("DOCKER_HOST", "tcp://h:2376"),
                    ("DOCKER_TLS_VERIFY", "0"),
                    ("HOME", "/home/u"),
                ],
                tcp("h", 2376, Some("/home/u/.docker")),
            ),
        ];
        for (vars, want) in cases {
            assert_eq!(&select_env(env(vars), |_| true).unwrap(), want, "{vars:?}");
        }
        let e = select_env(
            env(&[("DOCKER_HOST", "tcp://h:2376"), ("DOCKER_TLS_VERIFY", "1")]),
            |_| true,
        )
        .unwrap_err();
        assert!(e.to_string().contains("DOCKER_CERT_PATH"), "{e}");
        assert_eq!(tcp("h", 1, Some("/c")).to_string(), "tcp://h:1 (TLS)");
        for bad in [
            "tcp://",
            "tcp://h:99999",
            "tcp://h:x",
            "tcp://u@h:1",
            "tcp://h:1/path",
            "tcp://[::1",
        ] {
            let e = select(Some(bad), |_| true).unwrap_err();
            assert!(e.to_string().starts_with("DOCKER_HOST="), "{bad}: {e}");
        }
    }

    #[test]
    fn other_schemes_are_clear_errors() {
        let err = select(Some("ssh://me@10.0.0.1"), |_| true).unwrap_err();
        assert!(err.to_string().contains("not supported"), "{err}");
        let err = select(Some("/var/run/docker.sock"), |_| true).unwrap_err();
        assert!(err.to_string().contains("unix:///path"), "{err}");
        assert!(select(Some("unix://"), |_| true).is_err());
    }
}
