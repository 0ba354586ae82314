//! Dropping root: the image starts as root so that DockMon's own `docker run` line (no `--user`, no
//! `--group-add`, spec 8.1) reaches a `root:docker 0660` socket, then gives root up before the agent
//! does anything else.
//!
//! Read this first: DockMon's Go image runs as root for exactly this reason (spec 8.3); we keep only
//! what the agent needs: an unprivileged uid, the socket's group as a supplementary group, and the
//! data directory (whose files a Go agent left root-owned, `permanent_token` mode 0600, spec 1.2).
//!
//! Owns: [`plan`] (pure: who we are, what `AGENT_UID` asks, who owns the socket → what to do),
//! [`parse_status`] (pure: the ids, capabilities and thread count in `/proc/self/status`) and
//! [`apply`] (the syscalls, through rustix's thin wrappers).
//!
//! Policy:
//! - Not root (`--user 1000 --group-add <gid>`, the systemd unit's own user): nothing changes.
//! - Root and `AGENT_UID` unset or empty: stay root. The image sets `AGENT_UID=1000`; a root process
//!   outside a container is the systemd install run as root on purpose (`DOCKMON_AGENT_USER=root`),
//!   so it is only dropped when asked. `AGENT_UID=0` keeps root in the image too.
//! - Root and `AGENT_UID=<n>`: become uid n, gid n, with the socket's group as the only
//!   supplementary group when the socket grants its group read-write and not its other users. A
//!   socket owned by n needs no group; a socket that grants neither its group nor others read-write
//!   would be out of reach, so the agent stays root and says why.
//!
//! Invariants of [`apply`]: it runs while the process has one thread (checked in
//! `/proc/self/status`: Linux's set*id syscalls act on the calling thread only, and async-io starts
//! its reactor thread on first use, which is after this); groups, then gid, then uid, all three ids
//! of each (real, effective, saved); afterwards `setresuid(0, 0, 0)` must fail and the effective
//! capability set must be empty, else it is an error and the agent does not run. The data directory
//! is handed over before the drop: entries owned by root are given to the new uid (without following
//! symlinks), at most `DATA_TAKEOVER_MAX_ENTRIES` of them.
use crate::limits::DATA_TAKEOVER_MAX_ENTRIES;
use std::fmt;
use std::path::{Path, PathBuf};

/// Owner and mode of the engine's socket (`stat(2)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner {
    /// Owner uid.
    pub uid: u32,
    /// Group gid.
    pub gid: u32,
    /// Permission bits.
    pub mode: u32,
}

/// What [`plan`] decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// The process is not root: nothing to drop.
    NotRoot,
    /// Root, and root it stays, for the reason given (logged once).
    StayRoot(String),
    /// Become `uid`/`gid` with these supplementary groups.
    Drop {
        /// The new real, effective and saved uid.
        uid: u32,
        /// The new real, effective and saved gid.
        gid: u32,
        /// Supplementary groups (the socket's group, or none).
        groups: heapless::Vec<u32, 1>,
    },
}

/// Why dropping failed.
#[derive(Debug)]
pub enum Error {
    /// `AGENT_UID` is not a uid.
    BadUid(String),
    /// More than one thread exists, so set*id would leave the others root.
    Threads(u32),
    /// A syscall failed.
    Syscall {
        /// Which one.
        call: &'static str,
        /// The error.
        source: std::io::Error,
    },
    /// After the drop the process could still be root: it is not allowed to run.
    NotDropped(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::BadUid(v) => write!(
                f,
                "AGENT_UID={v:?} is not a uid; use a number such as 1000, or 0 to keep running as root"
            ),
            Error::Threads(n) => write!(
                f,
                "cannot drop root: the process already has {n} threads (set*id acts on one thread)"
            ),
            Error::Syscall { call, source } => write!(f, "cannot drop root: {call}: {source}"),
            Error::NotDropped(why) => write!(f, "root was not dropped: {why}"),
        }
    }
}

impl std::error::Error for Error {}

/// Decides what to do. `euid` is the effective uid, `agent_uid` the value of `AGENT_UID`, `socket`
/// the owner of the engine's unix socket (`None` for a TCP engine or a socket not there yet).
pub fn plan(euid: u32, agent_uid: Option<&str>, socket: Option<Owner>) -> Result<Plan, Error> {
    if euid != 0 {
        return Ok(Plan::NotRoot);
    }
    let uid = match agent_uid.map(str::trim).filter(|v| !v.is_empty()) {
        None => return Ok(Plan::StayRoot("AGENT_UID is not set".into())),
        Some("root") => return Ok(Plan::StayRoot("AGENT_UID=root".into())),
        Some(v) => match v.parse::<u32>() {
            Ok(0) => return Ok(Plan::StayRoot("AGENT_UID=0".into())),
            // u32::MAX is (uid_t)-1, "no change" to setresuid(2).
            Ok(n) if n != u32::MAX => n,
            _ => return Err(Error::BadUid(v.to_string())),
        },
    };
    let mut groups = heapless::Vec::new();
    if let Some(s) = socket {
        let group_rw = s.mode & 0o060 == 0o060;
        let other_rw = s.mode & 0o006 == 0o006;
        let owner_rw = s.uid == uid && s.mode & 0o600 == 0o600;
        if !owner_rw && !other_rw {
            if !group_rw {
                return Ok(Plan::StayRoot(format!(
                    "the docker socket ({}:{} mode {:o}) grants its group no read-write access",
                    s.uid, s.gid, s.mode
                )));
            }
            if s.gid != uid {
                // Capacity 1, empty: cannot fail.
                let _ = groups.push(s.gid);
            }
        }
    }
    Ok(Plan::Drop {
        uid,
        gid: uid,
        groups,
    })
}

/// The fields of `/proc/self/status` the drop checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Status {
    /// `Uid:` real, effective, saved, filesystem.
    pub uid: [u32; 4],
    /// `Gid:` the same four.
    pub gid: [u32; 4],
    /// `CapEff:` the effective capability set.
    pub cap_eff: u64,
    /// `Threads:`.
    pub threads: u32,
}

/// Parses `/proc/self/status` (proc(5)). `None` when a field is missing or malformed.
pub fn parse_status(text: &str) -> Option<Status> {
    let mut st = Status::default();
    let (mut uid, mut gid, mut cap, mut threads) = (false, false, false, false);
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match key {
            "Uid" => uid = ids(value, &mut st.uid),
            "Gid" => gid = ids(value, &mut st.gid),
            "CapEff" => {
                st.cap_eff = u64::from_str_radix(value, 16).ok()?;
                cap = true;
            }
            "Threads" => {
                st.threads = value.parse().ok()?;
                threads = true;
            }
            _ => {}
        }
    }
    (uid && gid && cap && threads).then_some(st)
}

fn ids(value: &str, out: &mut [u32; 4]) -> bool {
    let mut n = 0;
    for (slot, word) in out.iter_mut().zip(value.split_whitespace()) {
        match word.parse() {
            Ok(v) => *slot = v,
            Err(_) => return false,
        }
        n += 1;
    }
    n == 4
}

/// The owner of `path` when it is there (follows symlinks, as `connect(2)` does).
pub fn owner_of(path: &Path) -> Option<Owner> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| Owner {
        uid: m.uid(),
        gid: m.gid(),
        mode: m.mode() & 0o7777,
    })
}

/// What [`apply`] did, for the mode's log line.
#[derive(Debug, Default)]
pub struct Applied {
    /// Entries of the data directory handed to the new uid.
    pub taken_over: usize,
    /// Why the data directory could not be (wholly) taken over, if so.
    pub data_problem: Option<String>,
}

/// Carries out a [`Plan::Drop`] (other plans do nothing): hands `data_dir` to the new uid, then
/// drops. Must be called before any thread is started (checked).
pub fn apply(plan: &Plan, data_dir: Option<&Path>) -> Result<Applied, Error> {
    let Plan::Drop { uid, gid, groups } = plan else {
        return Ok(Applied::default());
    };
    let status = read_status()?;
    if status.threads != 1 {
        return Err(Error::Threads(status.threads));
    }
    let mut applied = Applied::default();
    if let Some(dir) = data_dir {
        if let Err(why) = take_over(dir, *uid, *gid, &mut applied.taken_over) {
            applied.data_problem = Some(why);
        }
    }
    use rustix::process::{Gid, Uid};
    use rustix::thread;
    let sys = |call: &'static str| {
        move |e: rustix::io::Errno| Error::Syscall {
            call,
            source: e.into(),
        }
    };
    let gids: heapless::Vec<Gid, 1> = groups.iter().map(|g| Gid::from_raw(*g)).collect();
    thread::set_thread_groups(&gids).map_err(sys("setgroups"))?;
    let g = Gid::from_raw(*gid);
    thread::set_thread_res_gid(g, g, g).map_err(sys("setresgid"))?;
    let u = Uid::from_raw(*uid);
    thread::set_thread_res_uid(u, u, u).map_err(sys("setresuid"))?;
    // No later exec may gain privileges (there is no setuid binary in the image; belt and braces).
    thread::set_no_new_privs(true).map_err(sys("prctl(PR_SET_NO_NEW_PRIVS)"))?;

    if thread::set_thread_res_uid(Uid::ROOT, Uid::ROOT, Uid::ROOT).is_ok() {
        return Err(Error::NotDropped("setresuid(0, 0, 0) succeeded".into()));
    }
    let after = read_status()?;
    if after.uid != [*uid; 4] || after.gid != [*gid; 4] {
        return Err(Error::NotDropped(format!(
            "uids {:?} gids {:?}",
            after.uid, after.gid
        )));
    }
    if after.cap_eff != 0 {
        return Err(Error::NotDropped(format!(
            "effective capabilities {:x}",
            after.cap_eff
        )));
    }
    Ok(applied)
}

fn read_status() -> Result<Status, Error> {
    let text = std::fs::read_to_string("/proc/self/status").map_err(|e| Error::Syscall {
        call: "reading /proc/self/status",
        source: e,
    })?;
    parse_status(&text).ok_or_else(|| Error::Syscall {
        call: "reading /proc/self/status",
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, "unexpected format"),
    })
}

/// Gives `dir` and every entry below it that root owns to `uid:gid` (lchown: a symlink is changed,
/// never followed). Stops after `DATA_TAKEOVER_MAX_ENTRIES` entries.
fn take_over(dir: &Path, uid: u32, gid: u32, count: &mut usize) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let mut pending: Vec<PathBuf> = vec![dir.to_path_buf()];
    while let Some(path) = pending.pop() {
        let meta = match std::fs::symlink_metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && path == dir => return Ok(()),
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        if *count >= DATA_TAKEOVER_MAX_ENTRIES {
            return Err(format!(
                "more than {DATA_TAKEOVER_MAX_ENTRIES} entries (DATA_TAKEOVER_MAX_ENTRIES); the rest keep their owner"
            ));
        }
        if meta.uid() == 0 {
            std::os::unix::fs::lchown(&path, Some(uid), Some(gid))
                .map_err(|e| format!("chown {}: {e}", path.display()))?;
            *count += 1;
        }
        if meta.is_dir() {
            let entries =
                std::fs::read_dir(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            for entry in entries {
                let entry = entry.map_err(|e| format!("{}: {e}", path.display()))?;
                pending.push(entry.path());
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOCKER: Owner = Owner {
        uid: 0,
        gid: 999,
        mode: 0o660,
    };

    fn dropped(groups: &[u32]) -> Plan {
        Plan::Drop {
            uid: 1000,
            gid: 1000,
            groups: groups.iter().copied().collect(),
        }
    }

    #[test]
    fn plans() {
        let cases: &[(u32, Option<&str>, Option<Owner>, Plan)] = &[
            (1000, Some("1000"), Some(DOCKER), Plan::NotRoot),
            (
                0,
                None,
                Some(DOCKER),
                Plan::StayRoot("AGENT_UID is not set".into()),
            ),
            (
                0,
                Some(" "),
                None,
                Plan::StayRoot("AGENT_UID is not set".into()),
            ),
            (
                0,
                Some("0"),
                Some(DOCKER),
                Plan::StayRoot("AGENT_UID=0".into()),
            ),
            (
                0,
                Some("root"),
                None,
                Plan::StayRoot("AGENT_UID=root".into()),
            ),
            (0, Some("1000"), Some(DOCKER), dropped(&[999])),
            (0, Some("1000"), None, dropped(&[])),
            // Podman's root:root 0660 socket: group 0, which is not uid 0.
            (
                0,
                Some("1000"),
                Some(Owner { gid: 0, ..DOCKER }),
                dropped(&[0]),
            ),
            (
                0,
                Some("1000"),
                Some(Owner {
                    mode: 0o666,
                    ..DOCKER
                }),
                dropped(&[]),
            ),
            (
                0,
                Some("1000"),
                Some(Owner {
                    uid: 1000,
                    mode: 0o600,
                    ..DOCKER
                }),
                dropped(&[]),
            ),
            (
                0,
                Some("1000"),
                Some(Owner {
                    gid: 1000,
                    ..DOCKER
                }),
                dropped(&[]),
            ),
        ];
        for (euid, want, socket, expect) in cases {
            assert_eq!(
                &plan(*euid, *want, *socket).unwrap(),
                expect,
                "{want:?} {socket:?}"
            );
        }
        let stay = plan(
            0,
            Some("1000"),
            Some(Owner {
                mode: 0o600,
                ..DOCKER
            }),
        )
        .unwrap();
        assert!(
            matches!(stay, Plan::StayRoot(ref w) if w.contains("mode 600")),
            "{stay:?}"
        );
        for bad in ["abc", "-1", "4294967295", "1000:1000"] {
            let err = plan(0, Some(bad), None).unwrap_err();
            assert!(err.to_string().starts_with("AGENT_UID="), "{err}");
        }
    }

    #[test]
    fn status_fields() {
        let text = "Name:\tdockmon-agent\nUmask:\t0022\nState:\tS (sleeping)\nUid:\t1000\t1000\t1000\t1000\n\
                    Gid:\t1000\t1000\t1000\t1000\nGroups:\t999 \nThreads:\t1\nCapInh:\t0000000000000000\n\
                    CapEff:\t0000000000000000\n";
        let st = parse_status(text).unwrap();
        assert_eq!(st.uid, [1000; 4]);
        assert_eq!(st.gid, [1000; 4]);
        assert_eq!(st.threads, 1);
        assert_eq!(st.cap_eff, 0);
        let root = text.replace("CapEff:\t0000000000000000", "CapEff:\t000001ffffffffff");
        assert_eq!(parse_status(&root).unwrap().cap_eff, 0x1ff_ffff_ffff);
        assert!(parse_status("Uid:\t1 2 3\nGid:\t1 1 1 1\nThreads:\t1\nCapEff:\t0\n").is_none());
        assert!(parse_status("").is_none());
        assert!(parse_status(&text.replace("Threads:\t1", "Threads:\tx")).is_none());
    }

    #[test]
    fn this_process_status_parses() {
        let text = std::fs::read_to_string("/proc/self/status").unwrap();
        assert!(parse_status(&text).is_some());
    }
}
