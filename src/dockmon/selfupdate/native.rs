//! `self_update` of a native (systemd) install (spec 3.8.3, issue 15), and its startup half.
//!
//! DockMon's `binary_url` (and its `checksum`) name DockMon's Go agent, a different program: they are
//! ignored, with a log line. This agent downloads its own release instead: the asset for the
//! architecture it was built for and `SHA256SUMS` from the same folder ([`release::folder`]:
//! `SELF_UPDATE_URL`, else this project's GitHub release of the payload's `version`, or the latest).
//!
//! The command (the reply is `self_update_started` once the staging file could be created next to
//! the executable; a failure before that is an error reply):
//! - `download`: `SHA256SUMS` (capped) into memory, then the binary streamed to `<exe>.new` while its
//!   SHA-256 is computed ([`fetch`], within `SELF_UPDATE_DOWNLOAD_TIMEOUT_MS`, at most
//!   `SELF_UPDATE_BINARY_MAX_BYTES`); nothing of it is held in memory beyond one read buffer.
//! - `verify`: the SHA-256 against `SHA256SUMS`; then the binary's version mark
//!   ([`release::MARK`], read from the file rather than by running it, which would bring std's
//!   process spawning into the binary) must name a version, the one asked for when the folder is that
//!   version's. The same version as ours ends the update as `complete` without a restart. Whether it
//!   runs on this machine is what the trial finds out.
//! - `prepare`: `update.lock` in `DATA_PATH` ([`lock`]).
//! - `complete`: then SIGTERM to ourselves; the agent shuts down as for any SIGTERM and systemd's
//!   `Restart=always` starts it again.
//!
//! Any failure (an HTTP error, a checksum mismatch, a full disk, a file without the version mark) deletes
//! `<exe>.new` and the lock and is reported as a `selfupdate_progress` error with the reason; the
//! running binary is never touched.
//!
//! At startup ([`at_startup`], before the executor exists) and once connected ([`spawn_trial`]) the
//! lock is carried out as [`lock`] describes: the old binary re-execs into `<exe>.new`, which installs
//! itself (backup `<exe>.old`, atomic rename, [`move_file`]'s copy when the rename crosses file
//! systems) only once it has registered with DockMon, within `SELF_UPDATE_TRIAL_CONNECT_S`; otherwise
//! the next start runs the old binary again and deletes the new one.
//!
//! Needs write access to the executable's folder: install.sh installs the binary into
//! `/usr/local/lib/dockmon-agent/`, owned by the agent's user and listed in the unit's
//! `ReadWritePaths=`.
use super::lock::{self, Lock, Startup, Trial};
use super::{fetch, msg, progress, release, Failed, Payload, BUSY};
use crate::dockmon::context::{Context, Sink};
use crate::limits::*;
use async_io::Timer;
use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// ENOSPC and EXDEV (Linux, every architecture we build for).
const ENOSPC: i32 = 28;
const EXDEV: i32 = 18;

/// The executable this process runs from (`/proc/self/exe`, without the " (deleted)" Linux appends
/// when the file was replaced under us).
fn own_exe() -> std::io::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let s = exe.to_string_lossy();
    Ok(match s.strip_suffix(" (deleted)") {
        Some(p) => PathBuf::from(p),
        None => exe,
    })
}

/// Answers `self_update` in native mode into `out` and starts the download on `ctx.ex`.
pub fn start(ctx: &Context, p: &Payload, id: &str, out: &mut Vec<u8>, now: &crate::rfc3339::Stamp) {
    if let Some(url) = &p.binary_url {
        log::warn!("self_update: ignoring binary_url {url}: it points at DockMon's Go agent, a different program; downloading this agent's own release");
    }
    let setup = || -> Result<Job, String> {
        let asset = release::asset()
            .ok_or("no dockmon-agent release is built for this machine's architecture")?;
        let version = release::check_version(p.version.as_deref())?.map(str::to_string);
        let setting = ctx.config.self_update_url.as_deref();
        let folder = release::folder(setting, version.as_deref())?;
        let version = release::pinned(setting, version.as_deref()).map(str::to_string);
        let exe = own_exe().map_err(|e| format!("cannot find this agent's executable: {e}"))?;
        let staged = lock::with_suffix(&exe, ".new");
        let file = create_staged(&staged).map_err(|e| {
            format!(
                "cannot write {}: {e}; the agent's user needs write access to the executable's folder (install.sh installs into /usr/local/lib/dockmon-agent/ for this)",
                staged.display()
            )
        })?;
        Ok(Job {
            sink: ctx.sink.clone(),
            data_path: ctx.config.data_path.clone(),
            cert_file: ctx.config.ssl_cert_file.clone(),
            asset,
            version,
            folder,
            exe,
            staged,
            file: Some(file),
        })
    };
    if BUSY.with(|b| b.replace(true)) {
        return msg::write_response_error(out, id, "a self-update is already in progress", now);
    }
    let job = match setup() {
        Ok(job) => job,
        Err(text) => {
            BUSY.with(|b| b.set(false));
            log::error!("self_update refused: {text}");
            return msg::write_response_error(out, id, &text, now);
        }
    };
    log::info!(
        "self_update: downloading {} ({}) from {}",
        job.asset,
        job.version.as_deref().unwrap_or("any version"),
        job.folder
    );
    ctx.ex
        .spawn(async move {
            job.run().await;
            BUSY.with(|b| b.set(false));
        })
        .detach();
    msg::begin_response(out, id);
    out.extend_from_slice(br#"{"status":"self_update_started"}"#);
    msg::end_response(out, now);
}

/// `<exe>.new`, created (or truncated) with mode 0755 so it can run.
fn create_staged(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o755)
        .open(path)
}

struct Job {
    sink: Rc<dyn Sink>,
    data_path: PathBuf,
    cert_file: Option<PathBuf>,
    asset: &'static str,
    /// The version asked for, when the folder is that version's; `None`: whatever the folder holds.
    version: Option<String>,
    folder: String,
    exe: PathBuf,
    staged: PathBuf,
    file: Option<File>,
}

/// How a successful update ends.
enum Done {
    /// Staged and locked: restart into it.
    Restart(String),
    /// The release is the version we run: nothing to do.
    Current(String),
}

fn fail(stage: &'static str) -> impl Fn(String) -> Failed {
    move |text| Failed { stage, text }
}

impl Job {
    async fn run(mut self) {
        match self.steps().await {
            Ok(Done::Restart(v)) => {
                progress(
                    &*self.sink,
                    "complete",
                    &format!("Version {v} is staged; the agent restarts into it"),
                    None,
                );
                log::info!(
                    "self_update: {} {v} staged; exiting so systemd restarts the agent into it",
                    self.asset
                );
                Timer::after(Duration::from_millis(SELF_UPDATE_RETIRE_DELAY_MS)).await;
                restart();
            }
            Ok(Done::Current(v)) => {
                let _ = std::fs::remove_file(&self.staged);
                progress(
                    &*self.sink,
                    "complete",
                    &format!("This agent already runs version {v}"),
                    None,
                );
                log::info!(
                    "self_update: the release is version {v}, which this agent runs already"
                );
            }
            Err(f) => {
                self.file = None;
                let _ = std::fs::remove_file(&self.staged);
                let _ = std::fs::remove_file(self.data_path.join(lock::FILE));
                log::error!(
                    "self_update failed at {}: {}; the running binary is unchanged",
                    f.stage,
                    f.text
                );
                progress(&*self.sink, f.stage, "Error occurred", Some(&f.text));
            }
        }
    }

    async fn steps(&mut self) -> Result<Done, Failed> {
        progress(
            &*self.sink,
            "download",
            &format!("Downloading {} from {}", self.asset, self.folder),
            None,
        );
        let work = self.download();
        let timeout = async {
            Timer::after(Duration::from_millis(SELF_UPDATE_DOWNLOAD_TIMEOUT_MS)).await;
            Err(Failed {
                stage: "download",
                text: format!(
                    "the download took longer than {} s",
                    SELF_UPDATE_DOWNLOAD_TIMEOUT_MS / 1000
                ),
            })
        };
        let (want, got, len) = smol::future::or(work, timeout).await?;

        progress(
            &*self.sink,
            "verify",
            "Verifying the SHA-256 checksum",
            None,
        );
        if want != got {
            return Err(Failed {
                stage: "verify",
                text: format!(
                    "checksum mismatch for {}: {} lists {}, the download ({len} bytes) has {}",
                    self.asset,
                    release::SUMS,
                    release::hex(&want),
                    release::hex(&got)
                ),
            });
        }
        let version = mark_of(&self.staged).map_err(fail("verify"))?;
        if let Some(asked) = &self.version {
            if *asked != version {
                return Err(Failed {
                    stage: "verify",
                    text: format!("the release asked for is {asked}, but the downloaded binary is version {version}"),
                });
            }
        }
        if version == crate::VERSION {
            return Ok(Done::Current(version));
        }

        progress(&*self.sink, "prepare", "Writing update.lock", None);
        let lock = Lock {
            version: version.clone(),
            from: crate::VERSION.to_string(),
            exe: self.exe.clone(),
            staged: self.staged.clone(),
            sha256: release::hex(&got),
            trial_pid: None,
        };
        write_lock(&self.data_path, &lock).map_err(|e| Failed {
            stage: "prepare",
            text: disk_text(&self.data_path.join(lock::FILE), &e),
        })?;
        Ok(Done::Restart(version))
    }

    /// `SHA256SUMS`, then the binary into the staging file. Returns the listed and the computed
    /// SHA-256 and the binary's length.
    async fn download(&mut self) -> Result<([u8; 32], [u8; 32], u64), Failed> {
        let stage = "download";
        let client = fetch::Client::new(self.cert_file.as_deref())
            .map_err(|e| fail(stage)(e.to_string()))?;
        let mut sums = Vec::new();
        let url = format!("{}/{}", self.folder, release::SUMS);
        client
            .get(&url, SELF_UPDATE_SUMS_MAX_BYTES as u64, &mut |b| {
                sums.extend_from_slice(b);
                Ok(())
            })
            .await
            .map_err(|e| fail(stage)(e.to_string()))?;
        let want = release::find_sum(&sums, self.asset).map_err(fail(stage))?;
        drop(sums);

        let url = format!("{}/{}", self.folder, self.asset);
        let staged = self.staged.clone();
        let Some(file) = self.file.as_mut() else {
            return Err(fail(stage)("no staging file".into()));
        };
        let mut sha = ring::digest::Context::new(&ring::digest::SHA256);
        let len = client
            .get(&url, SELF_UPDATE_BINARY_MAX_BYTES, &mut |b| {
                sha.update(b);
                file.write_all(b)
            })
            .await
            .map_err(|e| match e {
                fetch::Error::Sink(io) => fail(stage)(disk_text(&staged, &io)),
                e => fail(stage)(e.to_string()),
            })?;
        file.sync_all()
            .map_err(|e| fail(stage)(disk_text(&staged, &e)))?;
        self.file = None;
        let mut got = [0u8; 32];
        got.copy_from_slice(sha.finish().as_ref());
        Ok((want, got, len))
    }
}

/// A write error, with the reason a full disk gets.
fn disk_text(path: &Path, e: &std::io::Error) -> String {
    if e.raw_os_error() == Some(ENOSPC) {
        format!("not enough disk space for {}: {e}", path.display())
    } else {
        format!("cannot write {}: {e}", path.display())
    }
}

/// The version mark ([`release::MARK`]) in the file at `path`: read in windows that overlap, so a
/// mark across two reads is found. A binary without one is not dockmon-agent (or is one older than
/// the mark, which has no native self-update to finish the job).
fn mark_of(path: &Path) -> Result<String, String> {
    let read_err = |e: std::io::Error| format!("cannot read {}: {e}", path.display());
    let mut f = File::open(path).map_err(read_err)?;
    let mut buf = vec![0u8; SELF_UPDATE_READ_BYTES];
    let mut kept = 0;
    loop {
        let n = f.read(&mut buf[kept..]).map_err(read_err)?;
        if n == 0 {
            return Err(format!(
                "{} is not a dockmon-agent build with self-update: it has no version mark ({}…)",
                path.display(),
                &release::MARK[..22]
            ));
        }
        let end = kept + n;
        if let Some(v) = release::find_mark(&buf[..end]) {
            return Ok(v.to_string());
        }
        kept = end.min(release::MARK_OVERLAP);
        buf.copy_within(end - kept..end, 0);
    }
}

/// SIGTERM to ourselves: the agent shuts down as for systemd's stop, and `Restart=always` starts it
/// again (spec 3.8.3).
fn restart() {
    let _ = rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::TERM);
}

/// Writes `update.lock` with mode 0600 (temp file, then rename).
pub fn write_lock(dir: &Path, lock: &Lock) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = dir.join(".update.lock.tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    let text = lock::emit(lock).ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "a path holds a line break",
        )
    })?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, dir.join(lock::FILE))
}

/// Reads `update.lock` (`None` when there is none or it is not ours; a bad one is deleted).
fn read_lock(path: &Path) -> Option<Lock> {
    let mut bytes = Vec::new();
    File::open(path)
        .ok()?
        .take(SELF_UPDATE_LOCK_MAX_BYTES as u64)
        .read_to_end(&mut bytes)
        .ok()?;
    match lock::parse(&bytes) {
        Ok(l) => Some(l),
        Err(e) => {
            log::warn!("{e}; deleting it");
            let _ = std::fs::remove_file(path);
            None
        }
    }
}

/// SHA-256 of a file, hex.
fn file_sha256(path: &Path) -> std::io::Result<String> {
    let mut f = File::open(path)?;
    let mut sha = ring::digest::Context::new(&ring::digest::SHA256);
    let mut buf = vec![0u8; SELF_UPDATE_READ_BYTES];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        sha.update(&buf[..n]);
    }
    let mut sum = [0u8; 32];
    sum.copy_from_slice(sha.finish().as_ref());
    Ok(release::hex(&sum))
}

/// Startup half (call once, before the executor exists): carries out `DATA_PATH/update.lock` as
/// [`lock`] describes. Returns only when this process goes on as it is; on [`Startup::Try`] it
/// re-execs into the staged binary and does not return unless that fails.
pub fn at_startup(data_path: &Path) {
    let path = data_path.join(lock::FILE);
    let Some(mut l) = read_lock(&path) else {
        return;
    };
    let drop_staged = |l: &Lock| {
        let _ = std::fs::remove_file(&l.staged);
        let _ = std::fs::remove_file(&path);
    };
    match lock::decide(&l, std::process::id()) {
        Startup::OnTrial => log::info!(
            "self-update: version {} (from {}) on trial: it must register with DockMon within {SELF_UPDATE_TRIAL_CONNECT_S} s, or the next start goes back to {}",
            l.version, l.from, l.exe.display()
        ),
        Startup::Failed => {
            if l.staged.exists() {
                log::error!(
                    "self-update to {} failed: the new binary stopped before it registered with DockMon; going back to version {} ({})",
                    l.version, l.from, l.exe.display()
                );
            }
            drop_staged(&l);
        }
        Startup::Try => {
            match file_sha256(&l.staged) {
                Ok(sum) if sum == l.sha256 => {}
                Ok(sum) => {
                    log::error!("self-update: {} changed since it was verified (SHA-256 {sum}, expected {}); not starting it", l.staged.display(), l.sha256);
                    return drop_staged(&l);
                }
                Err(e) => {
                    log::error!("self-update: cannot read {}: {e}; staying at version {}", l.staged.display(), crate::VERSION);
                    return drop_staged(&l);
                }
            }
            l.trial_pid = Some(std::process::id());
            if let Err(e) = write_lock(data_path, &l) {
                log::error!("self-update: cannot update {}: {e}; staying at version {}", path.display(), crate::VERSION);
                return drop_staged(&l);
            }
            log::info!(
                "self-update: starting version {} from {} on trial",
                l.version,
                l.staged.display()
            );
            let e = Command::new(&l.staged)
                .args(std::env::args_os().skip(1))
                .exec();
            log::error!(
                "self-update: cannot start {}: {e}; staying at version {}",
                l.staged.display(),
                crate::VERSION
            );
            drop_staged(&l);
        }
    }
}

/// Connected half: if this process is a new binary on trial, waits until it is registered with
/// DockMon and installs it, or gives up after `SELF_UPDATE_TRIAL_CONNECT_S` and exits (the next start
/// goes back to the old binary).
pub fn spawn_trial(ctx: &Context) {
    let path = ctx.config.data_path.join(lock::FILE);
    let Some(l) = read_lock(&path) else {
        return;
    };
    if lock::decide(&l, std::process::id()) != Startup::OnTrial {
        return;
    }
    let link = ctx.link.clone();
    ctx.ex
        .spawn(async move {
            let started = Instant::now();
            let bound = Duration::from_secs(SELF_UPDATE_TRIAL_CONNECT_S);
            loop {
                match lock::trial_step(link.is_connected(), started.elapsed(), bound) {
                    Trial::Wait => {
                        Timer::after(Duration::from_millis(UPDATE_HEALTH_POLL_MS)).await;
                    }
                    Trial::Install => return install(&l, &path),
                    Trial::GiveUp => {
                        log::error!("self-update: version {} did not register with DockMon within {SELF_UPDATE_TRIAL_CONNECT_S} s; exiting so that the next start goes back to version {}", l.version, l.from);
                        return restart();
                    }
                }
            }
        })
        .detach();
}

/// Puts the binary on trial in place of the old one: `<exe>` → `<exe>.old`, `<exe>.new` → `<exe>`;
/// then deletes the lock.
fn install(l: &Lock, lock_path: &Path) {
    let backup = lock::with_suffix(&l.exe, ".old");
    let result = match move_file(&l.exe, &backup) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(format!(
            "cannot keep the old binary as {}: {e}",
            backup.display()
        )),
        _ => move_file(&l.staged, &l.exe).map_err(|e| {
            let _ = move_file(&backup, &l.exe);
            format!(
                "cannot move {} to {}: {e}",
                l.staged.display(),
                l.exe.display()
            )
        }),
    };
    let _ = std::fs::remove_file(lock_path);
    if let Some(dir) = l.exe.parent() {
        let _ = File::open(dir).and_then(|d| d.sync_all());
    }
    match result {
        Ok(()) => log::info!(
            "self-update to version {} complete: {} replaced (the previous binary is kept as {})",
            l.version,
            l.exe.display(),
            backup.display()
        ),
        Err(e) => {
            let _ = std::fs::remove_file(&l.staged);
            log::error!(
                "self-update: {e}; the next start runs version {} again",
                l.from
            );
        }
    }
}

/// Renames `from` to `to` (atomic); across file systems (EXDEV) copies to `<to>.tmp` beside `to`,
/// syncs, renames that into place and deletes `from`.
pub fn move_file(from: &Path, to: &Path) -> std::io::Result<()> {
    match std::fs::rename(from, to) {
        Err(e) if e.raw_os_error() == Some(EXDEV) => {
            let tmp = lock::with_suffix(to, ".tmp");
            // A plain loop: `std::fs::copy` brings std's copy_file_range/sendfile/splice fallbacks
            // into the binary, for a copy that happens once per update at most.
            let copied = (|| {
                use std::os::unix::fs::OpenOptionsExt;
                let mut src = File::open(from)?;
                let mut dst = std::fs::OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .mode(0o755)
                    .open(&tmp)?;
                let mut buf = vec![0u8; SELF_UPDATE_READ_BYTES];
                loop {
                    let n = src.read(&mut buf)?;
                    if n == 0 {
                        break;
                    }
                    dst.write_all(&buf[..n])?;
                }
                dst.sync_all()?;
                std::fs::rename(&tmp, to)
            })();
            if copied.is_err() {
                let _ = std::fs::remove_file(&tmp);
            }
            copied?;
            std::fs::remove_file(from)
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn dir(tag: &str, base: &Path) -> PathBuf {
        let d = base.join(format!("dmt-native-unit-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn files_move_within_and_across_file_systems() {
        let a = dir("a", &std::env::temp_dir());
        std::fs::write(a.join("x"), b"one").unwrap();
        move_file(&a.join("x"), &a.join("y")).unwrap();
        assert_eq!(std::fs::read(a.join("y")).unwrap(), b"one");
        assert!(!a.join("x").exists());
        // /dev/shm is a tmpfs of its own on most hosts: the copy path.
        let shm = Path::new("/dev/shm");
        if shm.is_dir() {
            let b = dir("b", shm);
            let cross =
                std::fs::metadata(&a).unwrap().dev() != std::fs::metadata(&b).unwrap().dev();
            std::fs::write(b.join("z"), b"two").unwrap();
            move_file(&b.join("z"), &a.join("y")).unwrap();
            assert_eq!(std::fs::read(a.join("y")).unwrap(), b"two");
            assert!(!b.join("z").exists(), "cross-device: {cross}");
            assert!(!a.join("y.tmp").exists());
            let _ = std::fs::remove_dir_all(&b);
        }
        assert!(move_file(&a.join("missing"), &a.join("y")).is_err());
        let _ = std::fs::remove_dir_all(&a);
    }

    #[test]
    fn locks_round_trip_with_mode_0600_and_sums_match() {
        use std::os::unix::fs::PermissionsExt;
        let d = dir("lock", &std::env::temp_dir());
        std::fs::write(d.join("bin"), b"abc").unwrap();
        let l = Lock {
            version: "2".into(),
            from: "1".into(),
            exe: d.join("bin"),
            staged: d.join("bin.new"),
            sha256: file_sha256(&d.join("bin")).unwrap(),
            trial_pid: None,
        };
        assert_eq!(
            l.sha256,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        write_lock(&d, &l).unwrap();
        let meta = std::fs::metadata(d.join(lock::FILE)).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert_eq!(read_lock(&d.join(lock::FILE)), Some(l));
        std::fs::write(d.join(lock::FILE), b"garbage").unwrap();
        assert_eq!(read_lock(&d.join(lock::FILE)), None);
        assert!(!d.join(lock::FILE).exists(), "a bad lock is deleted");
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn full_disks_say_so() {
        let e = std::io::Error::from_raw_os_error(ENOSPC);
        assert!(
            disk_text(Path::new("/x/a.new"), &e).starts_with("not enough disk space for /x/a.new")
        );
    }
}
