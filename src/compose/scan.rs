//! `scan_compose_dirs` and `read_compose_file` (spec 3.8.5) over the local file system.
//!
//! Scan: the fixed roots ([`default_roots`]) plus requested paths, depth-first, at most
//! `max_depth` directories deep (default 5), never into hidden directories, the skip list, or
//! the system trees of [`SYSTEM_PREFIXES`]; symlinked directories are not followed (a loop or a
//! way out of the roots). A compose file counts when its name is one of [`COMPOSE_NAMES`] (any
//! case) and its YAML has a non-empty `services` map. Bounded by `COMPOSE_SCAN_MAX_FILES` results
//! and `COMPOSE_SCAN_MAX_ENTRIES` directory entries visited; past either the scan stops.
//!
//! Read: the path must be absolute and (after resolving `..` and symlinks in its directories)
//! under an allowed root and outside the system trees; the file itself must not be a symlink.
//! Env files: `.env` beside it and every `env_file` its services name, read when they resolve
//! inside the compose file's directory; others are listed as skipped.
use super::yaml::{self, Node};
use crate::limits::{
    COMPOSE_FILE_MAX_BYTES, COMPOSE_SCAN_DEPTH_DEFAULT, COMPOSE_SCAN_DEPTH_MAX,
    COMPOSE_SCAN_MAX_ENTRIES, COMPOSE_SCAN_MAX_FILES,
};
use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

/// Trees never scanned nor read (spec 3.8.5).
pub const SYSTEM_PREFIXES: [&str; 12] = [
    "/proc",
    "/sys",
    "/dev",
    "/run",
    "/boot",
    "/bin",
    "/sbin",
    "/lib",
    "/lib64",
    "/usr/bin",
    "/usr/sbin",
    "/usr/lib",
];
/// Also skipped: `/etc` (kept apart because it is the one a user is most likely to ask for).
pub const ETC: &str = "/etc";
/// Directory names never entered (besides hidden ones).
pub const SKIP_DIRS: [&str; 10] = [
    "node_modules",
    "vendor",
    "__pycache__",
    ".git",
    ".svn",
    "venv",
    ".venv",
    "dist",
    "build",
    "target",
];
/// Recognised file names (compared case-insensitively).
pub const COMPOSE_NAMES: [&str; 4] = [
    "docker-compose.yml",
    "docker-compose.yaml",
    "compose.yml",
    "compose.yaml",
];

/// One compose file found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// Its path.
    pub path: PathBuf,
    /// The directory's name.
    pub project_name: String,
    /// Its services.
    pub services: Vec<String>,
    /// Bytes.
    pub size: u64,
    /// Modification time: seconds and nanoseconds since the epoch.
    pub modified: (i64, u32),
}

/// The roots every scan visits: `/opt`, `/srv`, `/var/lib/docker-compose`,
/// `/var/lib/docker/volumes`, `home`, and whichever of `/stacks`, `/docker`, `/mnt`, `/data`,
/// `/compose` exist, plus `extra` (the agent's stacks directory).
pub fn default_roots(home: Option<&Path>, extra: &[PathBuf]) -> Vec<PathBuf> {
    let mut roots: Vec<PathBuf> = [
        "/opt",
        "/srv",
        "/var/lib/docker-compose",
        "/var/lib/docker/volumes",
    ]
    .iter()
    .map(PathBuf::from)
    .collect();
    if let Some(h) = home {
        roots.push(h.to_path_buf());
    }
    for r in ["/stacks", "/docker", "/mnt", "/data", "/compose"] {
        if Path::new(r).is_dir() {
            roots.push(PathBuf::from(r));
        }
    }
    roots.extend(extra.iter().cloned());
    roots
}

/// Whether `path` (absolute, clean) lies in a system tree.
pub fn is_system(path: &Path) -> bool {
    SYSTEM_PREFIXES
        .iter()
        .chain(std::iter::once(&ETC))
        .any(|p| path.starts_with(p))
}

/// Whether `name` is a compose file name.
pub fn is_compose_name(name: &str) -> bool {
    COMPOSE_NAMES.iter().any(|n| n.eq_ignore_ascii_case(name))
}

/// `path` with `.` and `..` resolved lexically; `None` when relative.
pub fn clean(path: &Path) -> Option<PathBuf> {
    if !path.is_absolute() {
        return None;
    }
    let mut out = PathBuf::from("/");
    for c in path.components() {
        match c {
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(n) => out.push(n),
        }
    }
    Some(out)
}

/// The service names of a compose file's text, `None` when it is not YAML with a non-empty
/// `services` map.
pub fn services_of(text: &str) -> Option<Vec<String>> {
    let Node::Map(top) = yaml::parse(text).ok()? else {
        return None;
    };
    let (_, services) = top.iter().find(|(k, _)| k == "services")?;
    match &services.v {
        Node::Map(m) if !m.is_empty() => Some(m.iter().map(|(k, _)| k.clone()).collect()),
        _ => None,
    }
}

/// Scans `roots` (see the module doc). `max_depth` 0 takes the default.
pub fn scan(roots: &[PathBuf], recursive: bool, max_depth: usize) -> Vec<Found> {
    let depth = if max_depth == 0 {
        COMPOSE_SCAN_DEPTH_DEFAULT
    } else {
        max_depth.min(COMPOSE_SCAN_DEPTH_MAX)
    };
    let depth = if recursive { depth } else { 0 };
    let mut found = Vec::new();
    let mut visited: Vec<PathBuf> = Vec::new();
    let mut entries = 0usize;
    for root in roots {
        let Some(root) = clean(root) else { continue };
        if is_system(&root) || visited.iter().any(|v| root.starts_with(v)) {
            continue;
        }
        visited.push(root.clone());
        walk(&root, depth, &mut found, &mut entries);
    }
    found
}

fn walk(dir: &Path, depth: usize, found: &mut Vec<Found>, entries: &mut usize) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let mut subdirs = Vec::new();
    for e in rd.flatten() {
        *entries += 1;
        if *entries > COMPOSE_SCAN_MAX_ENTRIES || found.len() >= COMPOSE_SCAN_MAX_FILES {
            return;
        }
        let Ok(ft) = e.file_type() else { continue };
        let name = e.file_name();
        let name = name.to_string_lossy();
        if ft.is_dir() {
            if !name.starts_with('.') && !SKIP_DIRS.contains(&name.as_ref()) {
                subdirs.push(e.path());
            }
        } else if ft.is_file() && is_compose_name(&name) {
            let Ok(meta) = e.metadata() else { continue };
            if meta.len() > COMPOSE_FILE_MAX_BYTES as u64 {
                continue;
            }
            let Ok(text) = std::fs::read_to_string(e.path()) else {
                continue;
            };
            let Some(services) = services_of(&text) else {
                continue;
            };
            let modified = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map(|d| (d.as_secs() as i64, d.subsec_nanos()))
                .unwrap_or((0, 0));
            found.push(Found {
                path: e.path(),
                project_name: dir
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                services,
                size: meta.len(),
                modified,
            });
        }
    }
    if depth == 0 {
        return;
    }
    super::sort(&mut subdirs);
    for d in subdirs {
        if is_system(&d) {
            continue;
        }
        walk(&d, depth - 1, found, entries);
    }
}

/// What `read_compose_file` answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Read {
    /// The file and its env files.
    Ok {
        /// The compose file.
        content: String,
        /// `.env`'s content ("" when none).
        env_content: String,
        /// Env files read (name relative to the compose file's directory → content).
        env_files: BTreeMap<String, String>,
        /// Env files named but not read (outside the directory, symlinks, too large, missing).
        skipped: Vec<String>,
    },
    /// One of spec 3.8.5's failure texts.
    Refused(&'static str),
}

/// Reads `path` if allowed (see the module doc). `roots` are the allowed roots.
pub fn read(path: &str, roots: &[PathBuf]) -> Read {
    let Some(clean_path) = clean(Path::new(path)) else {
        return Read::Refused("Path not allowed");
    };
    let allowed = |p: &Path| {
        !is_system(p)
            && roots
                .iter()
                .filter_map(|r| clean(r))
                .any(|r| p.starts_with(&r))
    };
    if !allowed(&clean_path) {
        return Read::Refused("Path not allowed");
    }
    // Symlinks in the directories must not lead out of the roots either.
    if let Some(parent) = clean_path.parent() {
        if let Ok(real) = std::fs::canonicalize(parent) {
            let real_roots: Vec<PathBuf> = roots
                .iter()
                .map(|r| std::fs::canonicalize(r).unwrap_or_else(|_| r.clone()))
                .collect();
            if is_system(&real) || !real_roots.iter().any(|r| real.starts_with(r)) {
                return Read::Refused("Path not allowed");
            }
        }
    }
    let name = clean_path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let meta = match std::fs::symlink_metadata(&clean_path) {
        Ok(m) => m,
        Err(_) => return Read::Refused("File not found or not accessible"),
    };
    if meta.file_type().is_symlink() {
        return Read::Refused("Compose file is a symlink");
    }
    if meta.is_dir() {
        return Read::Refused("Path is a directory, not a file");
    }
    if !is_compose_name(&name) {
        return Read::Refused("Not a compose file");
    }
    if meta.len() > COMPOSE_FILE_MAX_BYTES as u64 {
        return Read::Refused("File too large (max 1MB)");
    }
    let Ok(content) = std::fs::read_to_string(&clean_path) else {
        return Read::Refused("Failed to read file");
    };
    let dir = clean_path.parent().unwrap_or(Path::new("/")).to_path_buf();
    let mut names: Vec<String> = vec![".env".into()];
    names.extend(env_file_refs(&content));
    let mut env_files = BTreeMap::new();
    let mut skipped = Vec::new();
    for n in names {
        if env_files.contains_key(&n) || skipped.contains(&n) {
            continue;
        }
        let rel = n.trim_start_matches("./");
        let inside = !n.starts_with('/')
            && !Path::new(rel)
                .components()
                .any(|c| c == Component::ParentDir);
        let p = dir.join(rel);
        match std::fs::symlink_metadata(&p) {
            Err(_) if n == ".env" => continue,
            Ok(m) if inside && m.is_file() && m.len() <= COMPOSE_FILE_MAX_BYTES as u64 => {
                match std::fs::read_to_string(&p) {
                    Ok(t) => {
                        env_files.insert(n, t);
                    }
                    Err(_) => skipped.push(n),
                }
            }
            _ => skipped.push(n),
        }
    }
    Read::Ok {
        content,
        env_content: env_files.get(".env").cloned().unwrap_or_default(),
        env_files,
        skipped,
    }
}

/// The `env_file` paths the services of a compose text name (string, list, or `{path}` items).
pub fn env_file_refs(text: &str) -> Vec<String> {
    let Ok(Node::Map(top)) = yaml::parse(text) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let Some((_, services)) = top.iter().find(|(k, _)| k == "services") else {
        return out;
    };
    let Node::Map(services) = &services.v else {
        return out;
    };
    for (_, s) in services {
        let Node::Map(keys) = &s.v else { continue };
        let Some((_, ef)) = keys.iter().find(|(k, _)| k == "env_file") else {
            continue;
        };
        match &ef.v {
            Node::Scalar(p, _) => out.push(p.clone()),
            Node::Seq(items) => {
                for i in items {
                    match &i.v {
                        Node::Scalar(p, _) => out.push(p.clone()),
                        Node::Map(m) => {
                            if let Some((_, l)) = m.iter().find(|(k, _)| k == "path") {
                                if let Node::Scalar(p, _) = &l.v {
                                    out.push(p.clone());
                                }
                            }
                        }
                        Node::Seq(_) => {}
                    }
                }
            }
            Node::Map(_) => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_cleaning() {
        assert!(is_compose_name("Docker-Compose.YML"));
        assert!(!is_compose_name("compose.yml.bak"));
        assert_eq!(
            clean(Path::new("/opt/a/../b/./c")),
            Some(PathBuf::from("/opt/b/c"))
        );
        assert_eq!(
            clean(Path::new("/opt/../../etc")),
            Some(PathBuf::from("/etc"))
        );
        assert_eq!(clean(Path::new("opt")), None);
        assert!(is_system(Path::new("/etc/x")));
        assert!(is_system(Path::new("/usr/lib/x")));
        assert!(!is_system(Path::new("/usr/local/x")));
        assert!(!is_system(Path::new("/libx")));
    }

    #[test]
    fn services_need_a_non_empty_map() {
        assert_eq!(
            services_of("services:\n  a: {}\n  b: {}\n").unwrap(),
            ["a", "b"]
        );
        assert_eq!(services_of("services: {}\n"), None);
        assert_eq!(services_of("version: '3'\n"), None);
        assert_eq!(services_of("{{{"), None);
    }

    #[test]
    fn env_file_references() {
        let t = "services:\n  a:\n    env_file: a.env\n  b:\n    env_file: [../x.env, {path: ./c.env}]\n";
        assert_eq!(env_file_refs(t), ["a.env", "../x.env", "./c.env"]);
    }
}
