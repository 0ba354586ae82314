//! `HOST_STACKS_DIR` autodiscovery (spec 1.1, the env-var table: "If empty the compose library
//! tries to auto-discover it from `/proc/self/mountinfo`"), pure.
//!
//! Why: in a containerised agent, `AGENT_STACKS_DIR` is a path inside the container, but relative
//! bind sources (`./data`) are handed to the engine, which resolves them on the host. When the
//! stacks directory is a bind mount of a host directory, mountinfo names that directory: its
//! `root` field is the source path inside the source filesystem, and the host's root filesystem
//! (where `/var/lib/docker` and most bind sources live) is mounted at `/` on the host.
//!
//! Rule: the mount whose mount point is the longest prefix of the stacks directory (the last one
//! listed wins, as it is mounted on top); host path = its `root` + the rest of the path. No answer
//! when that mount is not a bind of a subdirectory (`root` is `/`: the container's own root
//! filesystem, or a whole filesystem whose host mount point mountinfo does not tell). Limit: a bind
//! from a host filesystem other than the host's `/` (a separate `/srv` partition, say) gives that
//! filesystem's inner path; `HOST_STACKS_DIR` then has to be set (README).
use std::path::{Path, PathBuf};

/// Undoes mountinfo's octal escapes (`\040` space, `\011` tab, `\012` newline, `\134` backslash).
fn unescape(field: &str) -> String {
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() {
            let oct = &b[i + 1..i + 4];
            if oct.iter().all(|c| (b'0'..=b'7').contains(c)) {
                let v = (u32::from(oct[0] - b'0') << 6)
                    | (u32::from(oct[1] - b'0') << 3)
                    | u32::from(oct[2] - b'0');
                if let Ok(byte) = u8::try_from(v) {
                    out.push(byte);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The host path of `path` (absolute, as the agent sees it) from the text of
/// `/proc/self/mountinfo`, or `None` (see the module doc).
pub fn host_path(mountinfo: &str, path: &Path) -> Option<PathBuf> {
    let mut finder = Finder::new(path)?;
    for line in mountinfo.lines() {
        finder.line(line);
    }
    finder.finish()
}

/// [`host_path`] fed one mountinfo line at a time, so the caller can stream the file: a host with
/// many containers has a mountinfo of hundreds of KiB (551 KB, 1,574 mounts, on a CI machine), and
/// holding it whole made it the largest allocation of a deployment.
pub struct Finder<'a> {
    path: &'a str,
    /// The mount point and root of the best mount so far.
    best: Option<(String, String)>,
}

impl<'a> Finder<'a> {
    /// `None` when `path` is not UTF-8 (mountinfo's fields are compared as text).
    pub fn new(path: &'a Path) -> Option<Finder<'a>> {
        Some(Finder {
            path: path.to_str()?,
            best: None,
        })
    }

    /// One line of mountinfo, without its newline.
    pub fn line(&mut self, line: &str) {
        let path = self.path;
        let mut f = line.split(' ');
        let (Some(_id), Some(_parent), Some(_dev), Some(root), Some(point)) =
            (f.next(), f.next(), f.next(), f.next(), f.next())
        else {
            return;
        };
        let point = unescape(point);
        let covers = point == "/"
            || path == point
            || path
                .strip_prefix(point.as_str())
                .is_some_and(|r| r.starts_with('/'));
        if !covers {
            return;
        }
        if self
            .best
            .as_ref()
            .map_or(true, |(p, _)| point.len() >= p.len())
        {
            self.best = Some((point, unescape(root)));
        }
    }

    /// The host path, once every line was given.
    pub fn finish(self) -> Option<PathBuf> {
        let path = self.path;
        let (point, root) = self.best?;
        if root == "/" || !root.starts_with('/') {
            return None;
        }
        let rest = if point == "/" {
            path
        } else {
            &path[point.len()..]
        };
        Some(
            PathBuf::from(format!(
                "{}/{}",
                root.trim_end_matches('/'),
                rest.trim_start_matches('/')
            ))
            .components()
            .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INFO: &str = "\
812 700 0:45 / / rw,relatime master:300 - overlay overlay rw,lowerdir=/x,upperdir=/y,workdir=/z
813 812 0:48 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw
820 812 254:1 /srv/dock\\040mon/stacks /data/stacks rw,relatime - ext4 /dev/vda1 rw
821 812 254:1 /var/lib/docker/volumes/agent/_data /data rw,relatime - ext4 /dev/vda1 rw
822 812 0:60 / /whole rw,relatime - ext4 /dev/vdb1 rw
823 812 254:1 /old /over rw - ext4 /dev/vda1 rw
824 812 254:1 /new /over rw - ext4 /dev/vda1 rw
";

    #[test]
    fn bind_mounts_map_to_their_host_directory() {
        let h = |p: &str| host_path(INFO, Path::new(p));
        assert_eq!(
            h("/data/stacks"),
            Some(PathBuf::from("/srv/dock mon/stacks"))
        );
        assert_eq!(
            h("/data/stacks/site"),
            Some(PathBuf::from("/srv/dock mon/stacks/site"))
        );
        // The longest mount point wins; a named volume is a bind of its _data directory.
        assert_eq!(
            h("/data/other"),
            Some(PathBuf::from("/var/lib/docker/volumes/agent/_data/other"))
        );
        assert_eq!(
            h("/data"),
            Some(PathBuf::from("/var/lib/docker/volumes/agent/_data"))
        );
        // Not a prefix on a component boundary.
        assert_eq!(
            h("/data/stacksx"),
            Some(PathBuf::from("/var/lib/docker/volumes/agent/_data/stacksx"))
        );
        // The container's own root, a whole filesystem: unknown.
        assert_eq!(h("/var/lib/dockmon-agent/stacks"), None);
        assert_eq!(h("/whole/stacks"), None);
        // Mounted on top: the last line wins.
        assert_eq!(h("/over/s"), Some(PathBuf::from("/new/s")));
        assert_eq!(host_path("garbage\n\n1 2", Path::new("/a")), None);
    }
}
