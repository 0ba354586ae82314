//! `update.lock` (in `DATA_PATH`), the state the native self-update keeps across restarts, and what a
//! starting agent does with it. Pure: the caller reads and writes the file and passes its own pid and
//! the time elapsed.
//!
//! Life of a lock: the running agent downloads and verifies `<exe>.new`, writes the lock without a
//! `trial_pid` and exits; systemd starts `<exe>` (still the old binary), which finds the lock
//! ([`Startup::Try`]), records its pid as `trial_pid` and re-execs into `<exe>.new` (same pid). The new
//! binary sees its own pid ([`Startup::OnTrial`]) and, once registered with DockMon, installs itself
//! (`<exe>` → `<exe>.old`, `<exe>.new` → `<exe>`) and deletes the lock. If it exits or is stopped
//! before that (it gives up after `SELF_UPDATE_TRIAL_CONNECT_S`, [`trial_step`]), the next start is a
//! new process with another pid running the old `<exe>` ([`Startup::Failed`]): it deletes
//! `<exe>.new` and the lock and carries on. The old binary is only replaced by a new one that has
//! connected, so a new binary that crashes at once, before any code of its own could roll back, is
//! rolled back too.
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The lock's file name in `DATA_PATH`.
pub const FILE: &str = "update.lock";

/// `update.lock`: one `key=value` line per field (written by [`emit`], read by [`parse`]; no serde
/// derive, which costs more of the binary than these twenty lines).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lock {
    /// The version being installed (from its `--version`).
    pub version: String,
    /// The version that staged it.
    pub from: String,
    /// The executable to replace.
    pub exe: PathBuf,
    /// The verified new binary (`<exe>.new`).
    pub staged: PathBuf,
    /// Its SHA-256, hex (checked again before it is started).
    pub sha256: String,
    /// The pid that started the staged binary, once it has.
    pub trial_pid: Option<u32>,
}

/// What a starting agent does with a lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Startup {
    /// Never tried: record our pid and exec the staged binary.
    Try,
    /// We are the staged binary on trial: register within the bound, then install.
    OnTrial,
    /// A trial ended without installing: delete the staged binary and the lock.
    Failed,
}

/// What to do with `lock` in the process `own_pid`.
pub fn decide(lock: &Lock, own_pid: u32) -> Startup {
    match lock.trial_pid {
        None => Startup::Try,
        Some(pid) if pid == own_pid => Startup::OnTrial,
        Some(_) => Startup::Failed,
    }
}

/// One look of the trial watch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trial {
    /// Look again later.
    Wait,
    /// Registered: install the new binary.
    Install,
    /// Not registered within `bound`: exit, so the next start goes back to the old binary.
    GiveUp,
}

/// Registered (`connected`) installs; otherwise waiting until `elapsed` reaches `bound`.
pub fn trial_step(connected: bool, elapsed: Duration, bound: Duration) -> Trial {
    if connected {
        Trial::Install
    } else if elapsed >= bound {
        Trial::GiveUp
    } else {
        Trial::Wait
    }
}

/// The lock file's text; `None` when a field holds a line break (a path no install has).
pub fn emit(l: &Lock) -> Option<String> {
    let mut out = String::new();
    let pid = l.trial_pid.map(|p| p.to_string()).unwrap_or_default();
    for (k, v) in [
        ("version", l.version.as_str()),
        ("from", &l.from),
        ("exe", &l.exe.to_string_lossy()),
        ("staged", &l.staged.to_string_lossy()),
        ("sha256", &l.sha256),
        ("trial_pid", &pid),
    ] {
        if v.contains('\n') {
            return None;
        }
        out.push_str(k);
        out.push('=');
        out.push_str(v);
        out.push('\n');
    }
    Some(out)
}

/// Parses the lock file: every field but `trial_pid` must be there and not empty.
pub fn parse(bytes: &[u8]) -> Result<Lock, String> {
    let bad = |why: &str| format!("invalid {FILE}: {why}");
    let text = std::str::from_utf8(bytes).map_err(|_| bad("not text"))?;
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix('='))
            .filter(|v| !v.is_empty())
            .ok_or_else(|| bad(&format!("no {name}")))
    };
    let trial_pid = match field("trial_pid") {
        Ok(p) => Some(p.parse().map_err(|_| bad("trial_pid is not a number"))?),
        Err(_) => None,
    };
    Ok(Lock {
        version: field("version")?.to_string(),
        from: field("from")?.to_string(),
        exe: field("exe")?.into(),
        staged: field("staged")?.into(),
        sha256: field("sha256")?.to_string(),
        trial_pid,
    })
}

/// `path` with `suffix` appended to its file name (`/x/agent` → `/x/agent.new`).
pub fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = OsString::from(path.as_os_str());
    s.push(suffix);
    PathBuf::from(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lock(trial_pid: Option<u32>) -> Lock {
        Lock {
            version: "0.3.0".into(),
            from: "0.2.0".into(),
            exe: "/usr/local/lib/dockmon-agent/dockmon-agent".into(),
            staged: "/usr/local/lib/dockmon-agent/dockmon-agent.new".into(),
            sha256: "ab".repeat(32),
            trial_pid,
        }
    }

    #[test]
    fn startup_follows_the_trial_pid() {
        assert_eq!(decide(&lock(None), 7), Startup::Try);
        assert_eq!(decide(&lock(Some(7)), 7), Startup::OnTrial);
        assert_eq!(decide(&lock(Some(7)), 8), Startup::Failed);
        let text = emit(&lock(Some(7))).unwrap();
        assert!(
            text.starts_with("version=0.3.0\nfrom=0.2.0\nexe=/usr/"),
            "{text}"
        );
        assert_eq!(parse(text.as_bytes()).unwrap(), lock(Some(7)));
        let text = emit(&lock(None)).unwrap();
        assert!(text.ends_with("\ntrial_pid=\n"), "{text}");
        assert_eq!(parse(text.as_bytes()).unwrap(), lock(None));
        assert!(parse(text.replace("from=0.2.0\n", "").as_bytes()).is_err());
        assert!(parse(b"trial_pid=x\n").is_err());
        let mut odd = lock(None);
        odd.exe = "/a\nb".into();
        assert_eq!(emit(&odd), None);
        assert!(parse(b"{}").is_err());
    }

    #[test]
    fn the_trial_installs_once_registered_and_gives_up_at_the_bound() {
        let bound = Duration::from_secs(120);
        assert_eq!(trial_step(false, Duration::ZERO, bound), Trial::Wait);
        assert_eq!(
            trial_step(false, Duration::from_secs(119), bound),
            Trial::Wait
        );
        assert_eq!(
            trial_step(true, Duration::from_secs(119), bound),
            Trial::Install
        );
        assert_eq!(trial_step(false, bound, bound), Trial::GiveUp);
        assert_eq!(
            with_suffix(Path::new("/a/dockmon-agent"), ".new"),
            PathBuf::from("/a/dockmon-agent.new")
        );
    }
}
