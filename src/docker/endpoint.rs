//! Which Docker socket to use, like DockMon's Go agent and the docker CLI. Pure: the file checks are
//! passed in.
//!
//! `DOCKER_HOST` set and non-empty wins: `unix:///path` is used as given; `tcp://`, `ssh://` and
//! `npipe://` are a clear "not supported yet". Otherwise the first of [`CANDIDATES`] that exists and is
//! a socket; if none does, `/var/run/docker.sock` (so the error names the usual path).
use super::Error;
use std::fmt;
use std::path::{Path, PathBuf};

/// Sockets probed, in order, when `DOCKER_HOST` is unset (DockMon spec 1.1).
pub const CANDIDATES: [&str; 3] = [
    "/var/run/docker.sock",
    "/run/docker.sock",
    "/run/podman/podman.sock",
];

/// A unix socket path of a Docker-compatible engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The socket file.
    pub path: PathBuf,
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unix://{}", self.path.display())
    }
}

/// Chooses the endpoint. `docker_host` is the value of `DOCKER_HOST`; `is_socket` says whether a path
/// exists and is a socket.
pub fn select(
    docker_host: Option<&str>,
    is_socket: impl Fn(&Path) -> bool,
) -> Result<Endpoint, Error> {
    match docker_host.map(str::trim).filter(|h| !h.is_empty()) {
        Some(host) => parse_host(host),
        None => {
            let path = CANDIDATES
                .iter()
                .map(Path::new)
                .find(|p| is_socket(p))
                .unwrap_or(Path::new(CANDIDATES[0]));
            Ok(Endpoint {
                path: path.to_path_buf(),
            })
        }
    }
}

fn parse_host(host: &str) -> Result<Endpoint, Error> {
    if let Some(path) = host.strip_prefix("unix://") {
        if path.is_empty() || path.contains('\0') {
            return Err(Error::BadHost(host.to_string()));
        }
        return Ok(Endpoint {
            path: PathBuf::from(path),
        });
    }
    if [
        "tcp://", "http://", "https://", "ssh://", "npipe://", "fd://",
    ]
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

    #[test]
    fn docker_host_wins() {
        let e = select(Some("unix:///tmp/d.sock"), |_| true).unwrap();
        assert_eq!(e.path, Path::new("/tmp/d.sock"));
        assert_eq!(e.to_string(), "unix:///tmp/d.sock");
    }

    #[test]
    fn probes_in_order_then_falls_back() {
        let e = select(None, |p| p == Path::new("/run/podman/podman.sock")).unwrap();
        assert_eq!(e.path, Path::new("/run/podman/podman.sock"));
        let e = select(Some("  "), |p| p.starts_with("/run")).unwrap();
        assert_eq!(e.path, Path::new("/run/docker.sock"));
        let e = select(None, |_| false).unwrap();
        assert_eq!(e.path, Path::new("/var/run/docker.sock"));
    }

    #[test]
    fn other_schemes_are_clear_errors() {
        let err = select(Some("tcp://10.0.0.1:2375"), |_| true).unwrap_err();
        assert!(err.to_string().contains("not supported yet"), "{err}");
        let err = select(Some("/var/run/docker.sock"), |_| true).unwrap_err();
        assert!(err.to_string().contains("unix:///path"), "{err}");
        assert!(select(Some("unix://"), |_| true).is_err());
    }
}
