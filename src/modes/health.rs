//! The health endpoint: the agent answers `connected` or `disconnected` on an abstract unix socket, and
//! `dockmon-agent health` (the image's HEALTHCHECK, or a person on a systemd host) asks it.
//!
//! Abstract sockets are one name space per network namespace, so one fixed name let only the first
//! agent of a namespace answer (issue 11 D4: two `--network host` containers, or two agents on one host;
//! the second logged "Address in use" and its `health` reported unhealthy). The name is therefore
//! unique per instance and computable by the asker, without a file (the data directory may be read-only):
//!
//! `dockmon-agent.health.<mount namespace inode>.<FNV-1a of the canonical DATA_PATH, 16 hex>`
//!
//! - The mount namespace tells containers apart: `docker exec` (which runs the HEALTHCHECK) joins the
//!   container's, so the asker computes the same number; two containers never share one, even both
//!   with `--network host` and both PID 1 (which is why the PID is not part of the name).
//! - `DATA_PATH` tells two agents in one mount namespace (a host) apart: each has its own token file.
//!   Two agents sharing one data directory share an identity too, which is wrong on its own; the second
//!   one logs that the name is taken, as before.
//!
//! `health` asks the name its own `DATA_PATH` (default `/data`) gives. When nothing listens there (an
//! agent started with another `DATA_PATH`), it lists the listening health sockets of its mount namespace
//! in `/proc/net/unix` and asks the one there is; with several it says it cannot choose.
//! `PROC_NET_UNIX_MAX_BYTES` stays here rather than in `limits`: it caps the one file only this
//! short-lived command reads.
//!
//! Pure parts ([`socket_name`], [`mount_namespace`], [`listening_names`]) are tested beside the code; the
//! socket itself is tested by `tests/health_sockets.rs` with two agents on one host.
use crate::dockmon::context::Link;
use crate::limits::HEALTH_COMMAND_TIMEOUT_MS;
use async_io::Async;
use smol::LocalExecutor;
use std::io;
use std::path::Path;
use std::rc::Rc;
use std::time::Duration;

/// Every health socket name starts with this (then `.<mount ns>.<data path hash>`).
pub const NAME_PREFIX: &str = "dockmon-agent.health";
/// The most of `/proc/net/unix` `health` reads when it looks for a socket: about 170 bytes a line, so
/// some 6,000 unix sockets. Only the fallback reads it, once, in the short-lived `health` process.
pub const PROC_NET_UNIX_MAX_BYTES: usize = 1024 * 1024;

/// The number in `mnt:[4026531840]` (the target of `/proc/self/ns/mnt`); `None` for anything else.
pub fn mount_namespace(link: &str) -> Option<u64> {
    link.strip_prefix("mnt:[")?.strip_suffix(']')?.parse().ok()
}

/// 64-bit FNV-1a: a short, stable digest of the data path for the socket name (not a security boundary:
/// the socket says only whether the agent is connected).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The abstract socket name (without the leading NUL) for an agent in mount namespace `mnt_ns` whose
/// canonical data path is `data_path`.
pub fn socket_name(mnt_ns: u64, data_path: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    format!(
        "{NAME_PREFIX}.{mnt_ns}.{:016x}",
        fnv1a(data_path.as_os_str().as_bytes())
    )
}

/// The name for this process and `data_path`: the mount namespace from `/proc/self/ns/mnt` (0 when it
/// cannot be read, on both sides alike), the path canonicalized when it exists (so `/data/` and
/// `/data` agree).
pub fn own_socket_name(data_path: &Path) -> String {
    let ns = std::fs::read_link("/proc/self/ns/mnt")
        .ok()
        .and_then(|l| l.to_str().and_then(mount_namespace))
        .unwrap_or(0);
    let path = std::fs::canonicalize(data_path).unwrap_or_else(|_| data_path.to_path_buf());
    socket_name(ns, &path)
}

/// The abstract names in a `/proc/net/unix` text that listen (flag `__SO_ACCEPTCON`, 0x10000) and
/// start with `prefix`, without their `@`.
pub fn listening_names<'a>(proc_net_unix: &'a str, prefix: &str) -> Vec<&'a str> {
    proc_net_unix
        .lines()
        .skip(1)
        .filter_map(|line| {
            let mut cols = line.split_whitespace();
            let flags = cols.nth(3)?;
            let path = cols.nth(3)?;
            let listening = u32::from_str_radix(flags, 16).is_ok_and(|f| f & 0x1_0000 != 0);
            let name = path.strip_prefix('@')?;
            (listening && name.starts_with(prefix)).then_some(name)
        })
        .collect()
}

/// Binds this agent's health socket (named for `data_path`) and answers every connection from `link`'s
/// state, until the task is dropped. `None` (with a warning) when the name is taken.
pub fn serve(
    ex: &LocalExecutor<'static>,
    data_path: &Path,
    link: Rc<Link>,
) -> Option<smol::Task<()>> {
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::net::{SocketAddr, UnixListener};
    let name = own_socket_name(data_path);
    let listener = SocketAddr::from_abstract_name(&name)
        .and_then(|addr| UnixListener::bind_addr(&addr))
        .and_then(Async::new);
    let listener = match listener {
        Ok(l) => l,
        Err(e) => {
            log::warn!(
                "health socket @{name}: {e} (another agent with DATA_PATH {} here?); \
                 `dockmon-agent health` will report unhealthy",
                data_path.display()
            );
            return None;
        }
    };
    log::debug!("health socket @{name}");
    Some(ex.spawn(async move {
        loop {
            if let Ok((mut stream, _)) = listener.accept().await {
                use smol::io::AsyncWriteExt;
                let answer: &[u8] = if link.is_connected() {
                    b"connected\n"
                } else {
                    b"disconnected\n"
                };
                let _ = stream.write_all(answer).await;
            }
        }
    }))
}

/// Why `health` got no answer.
#[derive(Debug)]
pub enum AskError {
    /// No agent listens on the name for this data path, nor on any other of this mount namespace.
    NotRunning {
        /// The name asked first.
        name: String,
        /// Why connecting to it failed.
        source: io::Error,
    },
    /// Several agents of this mount namespace listen, none on this data path's name.
    Ambiguous(Vec<String>),
    /// Connected, but reading the answer failed.
    Read(io::Error),
}

impl std::fmt::Display for AskError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AskError::NotRunning { name, source } => write!(f, "@{name}: {source}"),
            AskError::Ambiguous(names) => write!(
                f,
                "{} agents run here and none with this DATA_PATH; set DATA_PATH to the agent's",
                names.len()
            ),
            AskError::Read(e) => write!(f, "reading the answer: {e}"),
        }
    }
}

/// Asks the agent with `data_path` (blocking, for the `health` command): its answer, trimmed. Falls
/// back to the one health socket of this mount namespace, as the module doc says.
pub fn ask(data_path: &Path) -> Result<String, AskError> {
    use std::io::Read;
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::net::{SocketAddr, UnixStream};
    let connect = |name: &str| {
        SocketAddr::from_abstract_name(name).and_then(|addr| UnixStream::connect_addr(&addr))
    };
    let name = own_socket_name(data_path);
    let mut stream = match connect(&name) {
        Ok(s) => s,
        Err(source) => {
            // Same mount namespace, any data path: the prefix up to the hash.
            let ns_prefix = &name[..name.len() - 16];
            let mut text = Vec::new();
            if let Ok(f) = std::fs::File::open("/proc/net/unix") {
                let _ = f
                    .take(PROC_NET_UNIX_MAX_BYTES as u64)
                    .read_to_end(&mut text);
            }
            let text = String::from_utf8_lossy(&text);
            let names = listening_names(&text, ns_prefix);
            match names.as_slice() {
                [one] => connect(one).map_err(|source| AskError::NotRunning {
                    name: one.to_string(),
                    source,
                })?,
                [] => return Err(AskError::NotRunning { name, source }),
                many => {
                    return Err(AskError::Ambiguous(
                        many.iter().map(|n| n.to_string()).collect(),
                    ))
                }
            }
        }
    };
    stream
        .set_read_timeout(Some(Duration::from_millis(HEALTH_COMMAND_TIMEOUT_MS)))
        .map_err(AskError::Read)?;
    let mut text = String::new();
    stream.read_to_string(&mut text).map_err(AskError::Read)?;
    Ok(text.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn mount_namespace_table() {
        let cases: &[(&str, Option<u64>)] = &[
            ("mnt:[4026531840]", Some(4_026_531_840)),
            ("mnt:[0]", Some(0)),
            ("net:[4026531840]", None),
            ("mnt:[]", None),
            ("mnt:[12", None),
            ("mnt:[-1]", None),
            ("", None),
        ];
        for (link, want) in cases {
            assert_eq!(mount_namespace(link), *want, "{link:?}");
        }
    }

    #[test]
    fn socket_names_differ_per_namespace_and_data_path() {
        let a = socket_name(4_026_531_840, Path::new("/data"));
        assert_eq!(a, "dockmon-agent.health.4026531840.2e61291ce2d9239e");
        assert_ne!(a, socket_name(4_026_531_841, Path::new("/data")));
        assert_ne!(a, socket_name(4_026_531_840, Path::new("/data2")));
        // Abstract names hold 107 bytes; the longest namespace number leaves plenty.
        assert!(socket_name(u64::MAX, &PathBuf::from("/x".repeat(500))).len() < 107);
    }

    #[test]
    fn listening_names_from_proc_net_unix() {
        let text = "\
Num       RefCount Protocol Flags    Type St Inode Path
0000000000000000: 00000002 00000000 00010000 0001 01 20571 @dockmon-agent.health.7.00000000000000aa
0000000000000000: 00000002 00000000 00010000 0001 01 20572 @dockmon-agent.health.8.00000000000000bb
0000000000000000: 00000003 00000000 00000000 0001 03 20573 @dockmon-agent.health.7.00000000000000cc
0000000000000000: 00000002 00000000 00010000 0001 01 20574 /run/docker.sock
0000000000000000: 00000002 00000000 00010000 0001 01 20575 @other
0000000000000000: 00000002 00000000 00000000 0002 01 20576
garbage
";
        assert_eq!(
            listening_names(text, "dockmon-agent.health.7."),
            ["dockmon-agent.health.7.00000000000000aa"]
        );
        assert_eq!(listening_names(text, "dockmon-agent.health.").len(), 2);
        assert!(listening_names("", "x").is_empty());
    }
}
