//! The permanent token file `$DATA_PATH/permanent_token` (DockMon spec §1.2) and the token format check
//! (spec §2.4 rule 7).
//!
//! Read this first: spec §1.2 (`permanent_token`: the token only, no newline, mode 0600, rewritten after
//! every successful registration, read whitespace-trimmed at startup) and §9 note 2.
//!
//! Owns: [`load`], [`store`] and [`check_token`].
//!
//! Must not: put the token in any error or log text (errors carry paths, steps, uids and lengths, never
//! the value or a piece of it; `Debug` of [`Error`] holds nothing else either); follow a stale temp
//! file's permissions; leave a half-written token where [`load`] would find it.
//!
//! Invariants:
//! - [`store`] is atomic: the token is written to a temp file of its own in the same directory
//!   (`.permanent_token.<pid>-<random>.tmp`, [`temp_file_name`]: two agents sharing one data directory,
//!   a cloned identity or two containers on one volume where both are PID 1, never write or rename
//!   each other's file, which once failed with `rename ... ENOENT`), created new (`O_EXCL`, so nothing
//!   left there is followed) with mode 0600 and `fchmod`ed to 0600 before any byte is written (so the
//!   umask cannot widen it), synced, renamed over `permanent_token`, and then the
//!   directory is synced so the rename survives a power cut (a Pi's SD card loses unsynced metadata).
//!   A reader sees the old token or the new one, never a mix. The rename replaces the inode, so the
//!   final mode is 0600 whatever an older file had.
//! - [`load`] reads at most [`TOKEN_FILE_MAX_BYTES`]; a larger file is an error, not a token.
//!
//! When full: nothing is buffered beyond one token. A full disk is reported as `ENOSPC` with the
//! directory to free space in; the old token file stays as it was.
//!
//! Errors say what to do: a read-only `/data` asks for a writable volume or `DATA_PATH`; permission
//! problems name the agent's uid and the directory's owner and mode (from metadata: the uid is the owner
//! of `/proc/self`, which is the process's effective uid; no libc).
//!
//! Caps stay here rather than in `limits`: the backend's token length (spec 2.4) and the one file this
//! module reads.

use core::fmt;
use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The file name under `$DATA_PATH` (spec §1.2).
pub const TOKEN_FILE_NAME: &str = "permanent_token";
/// The temp file older versions wrote before renaming, one name for every process. [`store`] removes
/// one left by a crash of such a version; its own temp files are named by [`temp_file_name`].
pub const TEMP_FILE_NAME: &str = ".permanent_token.tmp";

/// The temp file [`store`] writes before renaming: a dot file in the same directory, so the rename stays
/// on one file system, named for this process (PID) and this call (64 random bits), so two agents
/// writing into one directory at the same moment each rename their own file.
pub fn temp_file_name(pid: u32, random: u64) -> String {
    format!(".permanent_token.{pid}-{random:016x}.tmp")
}
/// Longest token the backend accepts (spec §2.4 rule 6: `token` ≤ 255).
pub const TOKEN_MAX_BYTES: usize = 255;
/// Most bytes [`load`] reads: a token is at most [`TOKEN_MAX_BYTES`] (a UUID is 36); the rest is slack
/// for whitespace an editor may add. A bigger file is not a token file.
pub const TOKEN_FILE_MAX_BYTES: usize = 4 * 1024;
/// The token file's mode (spec §1.2): readable and writable by its owner only.
pub const TOKEN_FILE_MODE: u32 = 0o600;

// Linux errno values (`include/uapi/asm-generic/errno-base.h`, `errno.h`); identical on x86_64, arm and
// aarch64. Named here because `io::ErrorKind` has no stable kind for all of them at our MSRV (1.80).
const EPERM: i32 = 1;
const ENOENT: i32 = 2;
const EACCES: i32 = 13;
const ENOTDIR: i32 = 20;
const EISDIR: i32 = 21;
const EINVAL: i32 = 22;
const ENOSPC: i32 = 28;
const EROFS: i32 = 30;
const EDQUOT: i32 = 122;

/// What is wrong with a token's form (spec §2.4 rule 7). Holds no part of the token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Invalid {
    /// Empty.
    Empty,
    /// Longer than [`TOKEN_MAX_BYTES`].
    TooLong {
        /// Its length in bytes.
        len: usize,
    },
    /// A character outside `A-Z a-z 0-9 _ : -`.
    BadChar {
        /// Byte offset of the first such character.
        at: usize,
    },
}

/// The step of [`store`] that failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Opening (creating) the temp file.
    CreateTemp,
    /// Setting mode 0600 on the temp file.
    SetMode,
    /// Writing the token.
    Write,
    /// `fsync` of the temp file.
    SyncFile,
    /// Renaming the temp file over the token file.
    Rename,
    /// `fsync` of the directory.
    SyncDir,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Step::CreateTemp => "creating the temp file",
            Step::SetMode => "setting mode 0600 on the temp file",
            Step::Write => "writing the temp file",
            Step::SyncFile => "syncing the temp file",
            Step::Rename => "renaming the temp file over the token file",
            Step::SyncDir => "syncing the directory",
        })
    }
}

/// Who may write where, for a permission error: taken from metadata when the error happens.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Access {
    /// The agent's effective uid (owner of `/proc/self`), if known.
    pub uid: Option<u32>,
    /// The directory's owner uid, if known.
    pub dir_owner: Option<u32>,
    /// The directory's permission bits, if known.
    pub dir_mode: Option<u32>,
}

impl Access {
    fn of(dir: &Path) -> Access {
        let meta = fs::metadata(dir).ok();
        Access {
            uid: fs::metadata("/proc/self").ok().map(|m| m.uid()),
            dir_owner: meta.as_ref().map(|m| m.uid()),
            dir_mode: meta.as_ref().map(|m| m.mode() & 0o7777),
        }
    }
}

/// Errors of this module. None carries the token or any part of it.
#[derive(Debug)]
pub enum Error {
    /// The token file exists but could not be read.
    Read {
        /// The token file.
        path: PathBuf,
        /// Why.
        source: io::Error,
        /// Filled for permission errors.
        access: Access,
    },
    /// The token file is larger than [`TOKEN_FILE_MAX_BYTES`].
    TooLarge {
        /// The token file.
        path: PathBuf,
    },
    /// The token file is not UTF-8 text.
    NotText {
        /// The token file.
        path: PathBuf,
    },
    /// Writing the token file failed.
    Write {
        /// The token file.
        path: PathBuf,
        /// The step that failed.
        step: Step,
        /// Why.
        source: io::Error,
        /// Filled for permission errors.
        access: Access,
    },
    /// The token does not have the form the backend accepts.
    Invalid(Invalid),
}

impl Error {
    fn write(dir: &Path, step: Step, source: io::Error) -> Error {
        let access = if is_permission(&source) {
            Access::of(dir)
        } else {
            Access::default()
        };
        Error::Write {
            path: dir.join(TOKEN_FILE_NAME),
            step,
            source,
            access,
        }
    }
}

fn is_permission(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(EACCES | EPERM))
}

/// The hint after an I/O error: what the operator can do about it.
fn hint(f: &mut fmt::Formatter<'_>, dir: &Path, source: &io::Error, access: Access) -> fmt::Result {
    let d = dir.display();
    match source.raw_os_error() {
        Some(EROFS) => write!(
            f,
            "read-only file system (EROFS); mount a writable volume at {d} or set DATA_PATH to a writable directory"
        ),
        Some(ENOSPC) => write!(
            f,
            "no space left on device (ENOSPC); free space on the file system that holds {d}"
        ),
        Some(EDQUOT) => write!(
            f,
            "disk quota exceeded (EDQUOT); free space or raise the quota on the file system that holds {d}"
        ),
        Some(EACCES | EPERM) => {
            f.write_str("permission denied")?;
            match access {
                Access {
                    uid: Some(uid),
                    dir_owner: Some(owner),
                    dir_mode: Some(mode),
                } if uid == owner => write!(
                    f,
                    ": the agent runs as uid {uid}, which owns {d}, but its mode {mode:04o} does not let the owner write; chmod u+w {d} or set DATA_PATH to a writable directory"
                ),
                Access {
                    uid: Some(uid),
                    dir_owner: Some(owner),
                    dir_mode: Some(mode),
                } => write!(
                    f,
                    ": the agent runs as uid {uid} and {d} is owned by uid {owner} with mode {mode:04o}; chown {d} to uid {uid}, run the agent as uid {owner}, or set DATA_PATH to a directory uid {uid} can write"
                ),
                Access { uid: Some(uid), .. } => write!(
                    f,
                    ": the agent runs as uid {uid}; make {d} writable for it or set DATA_PATH"
                ),
                _ => write!(f, "; make {d} writable for the agent's user or set DATA_PATH"),
            }
        }
        Some(ENOENT) => write!(
            f,
            "no such file or directory (ENOENT); create {d}, mount a volume at {d}, or set DATA_PATH"
        ),
        Some(ENOTDIR) => write!(
            f,
            "not a directory (ENOTDIR): a component of {d} is a file; set DATA_PATH to a directory"
        ),
        Some(EISDIR) => write!(
            f,
            "is a directory (EISDIR); remove the directory {d}/{TOKEN_FILE_NAME}"
        ),
        _ => write!(f, "{source}"),
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Read {
                path,
                source,
                access,
            } => {
                write!(f, "cannot read the permanent token from {}: ", path.display())?;
                hint(f, parent(path), source, *access)
            }
            Error::TooLarge { path } => write!(
                f,
                "{} is larger than {TOKEN_FILE_MAX_BYTES} bytes, so it is not a token file; delete it (the agent then registers again with REGISTRATION_TOKEN)",
                path.display()
            ),
            Error::NotText { path } => write!(
                f,
                "{} is not text, so it is not a token file; delete it (the agent then registers again with REGISTRATION_TOKEN)",
                path.display()
            ),
            Error::Write {
                path,
                step,
                source,
                access,
            } => {
                write!(
                    f,
                    "cannot store the permanent token in {}: {step} failed: ",
                    path.display()
                )?;
                hint(f, parent(path), source, *access)
            }
            Error::Invalid(Invalid::Empty) => f.write_str("the token is empty"),
            Error::Invalid(Invalid::TooLong { len }) => write!(
                f,
                "the token is {len} bytes, more than the {TOKEN_MAX_BYTES} the server accepts"
            ),
            Error::Invalid(Invalid::BadChar { at }) => write!(
                f,
                "the token has a character other than A-Z a-z 0-9 _ : - at byte {at}; the server accepts only those"
            ),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Read { source, .. } | Error::Write { source, .. } => Some(source),
            _ => None,
        }
    }
}

fn parent(path: &Path) -> &Path {
    path.parent().unwrap_or(Path::new("."))
}

/// Checks a token's form as the backend does (spec §2.4 rules 6 and 7): `^[A-Za-z0-9_:-]+$`, at most
/// [`TOKEN_MAX_BYTES`] bytes. The error says what is wrong without the value.
pub fn check_token(token: &str) -> Result<(), Error> {
    if token.is_empty() {
        return Err(Error::Invalid(Invalid::Empty));
    }
    if token.len() > TOKEN_MAX_BYTES {
        return Err(Error::Invalid(Invalid::TooLong { len: token.len() }));
    }
    match token
        .bytes()
        .position(|b| !(b.is_ascii_alphanumeric() || matches!(b, b'_' | b':' | b'-')))
    {
        Some(at) => Err(Error::Invalid(Invalid::BadChar { at })),
        None => Ok(()),
    }
}

/// Reads `<dir>/permanent_token`, whitespace-trimmed (spec §1.2).
///
/// `Ok(None)` when the file does not exist or holds only whitespace. The value is not checked: the
/// caller decides what an ill-formed token means ([`check_token`]).
pub fn load(dir: &Path) -> Result<Option<String>, Error> {
    let path = dir.join(TOKEN_FILE_NAME);
    let file = match fs::File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(read_error(path, source)),
    };
    let mut bytes = Vec::new();
    if let Err(source) = file
        .take(TOKEN_FILE_MAX_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
    {
        return Err(read_error(path, source));
    }
    if bytes.len() > TOKEN_FILE_MAX_BYTES {
        return Err(Error::TooLarge { path });
    }
    let Ok(text) = core::str::from_utf8(&bytes) else {
        return Err(Error::NotText { path });
    };
    let token = text.trim();
    Ok((!token.is_empty()).then(|| token.to_owned()))
}

fn read_error(path: PathBuf, source: io::Error) -> Error {
    let access = if is_permission(&source) {
        Access::of(parent(&path))
    } else {
        Access::default()
    };
    Error::Read {
        path,
        source,
        access,
    }
}

/// Writes `token` to `<dir>/permanent_token` atomically with mode 0600 and no newline (spec §1.2); see
/// the module doc for the steps. The token is checked first ([`check_token`]): the backend would refuse
/// an ill-formed one at the next registration, so it is better not to replace a good file with it.
///
/// The directory must exist; it is not created (a missing `/data` is a configuration error the
/// message names).
pub fn store(dir: &Path, token: &str) -> Result<(), Error> {
    check_token(token)?;
    let mut random = [0u8; 8];
    crate::tls::random_bytes(&mut random);
    let tmp = dir.join(temp_file_name(
        std::process::id(),
        u64::from_le_bytes(random),
    ));
    let target = dir.join(TOKEN_FILE_NAME);
    // A stale temp file of an older version (one shared name): best effort, it may hold a token.
    let _ = fs::remove_file(dir.join(TEMP_FILE_NAME));
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(TOKEN_FILE_MODE)
        .open(&tmp)
        .map_err(|e| Error::write(dir, Step::CreateTemp, e))?;
    let written = (|| {
        // `mode` is narrowed by the umask (never widened); fchmod before writing makes it exactly 0600.
        file.set_permissions(fs::Permissions::from_mode(TOKEN_FILE_MODE))
            .map_err(|e| (Step::SetMode, e))?;
        file.write_all(token.as_bytes())
            .map_err(|e| (Step::Write, e))?;
        file.sync_all().map_err(|e| (Step::SyncFile, e))?;
        fs::rename(&tmp, &target).map_err(|e| (Step::Rename, e))
    })();
    drop(file);
    if let Err((step, e)) = written {
        // Best effort: the temp file holds (part of) a token; do not leave it behind.
        let _ = fs::remove_file(&tmp);
        return Err(Error::write(dir, step, e));
    }
    sync_dir(dir)?;
    log::debug!("stored the permanent token in {}", target.display());
    Ok(())
}

/// `fsync` of the directory, so the rename is on disk. Some file systems (older 9p, vboxsf, some FUSE)
/// refuse `fsync` on a directory with `EINVAL`; the rename has happened, so that is not an error.
fn sync_dir(dir: &Path) -> Result<(), Error> {
    let synced = fs::File::open(dir).and_then(|d| d.sync_all());
    match synced {
        Ok(()) => Ok(()),
        Err(e) if e.raw_os_error() == Some(EINVAL) => {
            log::debug!("{}: directory fsync not supported; skipped", dir.display());
            Ok(())
        }
        Err(e) => Err(Error::write(dir, Step::SyncDir, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A distinctive token: any error or log text containing it is a leak.
    const SECRET: &str = "0ab5864a-cf8a-4666-a3dd-b400526f783d";

    /// A fresh directory under the system temp dir, removed (after restoring write permission) on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> TempDir {
            static N: AtomicUsize = AtomicUsize::new(0);
            let path = std::env::temp_dir().join(format!(
                "dockmon-token-{}-{}-{name}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            let _ = fs::remove_dir_all(&path);
            fs::create_dir_all(&path).unwrap();
            TempDir(path)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::set_permissions(&self.0, fs::Permissions::from_mode(0o700));
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().mode() & 0o777
    }

    fn assert_no_leak(e: &Error) {
        let display = e.to_string();
        let debug = format!("{e:?}");
        assert!(!display.contains(SECRET), "token in Display: {display}");
        assert!(!debug.contains(SECRET), "token in Debug: {debug}");
        // Not even a piece of it.
        assert!(!display.contains("cf8a-4666"), "{display}");
        assert!(!debug.contains("cf8a-4666"), "{debug}");
    }

    fn running_as_root() -> bool {
        fs::metadata("/proc/self")
            .map(|m| m.uid() == 0)
            .unwrap_or(false)
    }

    #[test]
    fn check_token_table() {
        let long = "a".repeat(256);
        let max = "a".repeat(255);
        let cases: &[(&str, Result<(), Invalid>)] = &[
            (SECRET, Ok(())),
            ("IFO2:3MUH:VFNQ:HHBS", Ok(())),
            ("a_b-c:D9", Ok(())),
            (&max, Ok(())),
            ("", Err(Invalid::Empty)),
            (&long, Err(Invalid::TooLong { len: 256 })),
            ("abc def", Err(Invalid::BadChar { at: 3 })),
            ("abc\n", Err(Invalid::BadChar { at: 3 })),
            ("tök", Err(Invalid::BadChar { at: 1 })),
            ("a/b", Err(Invalid::BadChar { at: 1 })),
            ("a.b", Err(Invalid::BadChar { at: 1 })),
        ];
        for (token, want) in cases {
            let got = check_token(token).map_err(|e| match e {
                Error::Invalid(i) => i,
                other => panic!("{other:?}"),
            });
            assert_eq!(got, *want, "{token:?}");
        }
        // The error text never echoes the value.
        for bad in [format!("{SECRET} "), format!("{SECRET}{}", "x".repeat(300))] {
            assert_no_leak(&check_token(&bad).unwrap_err());
        }
    }

    #[test]
    fn load_table() {
        let cases: &[(&str, &[u8], Option<&str>)] = &[
            ("plain", SECRET.as_bytes(), Some(SECRET)),
            ("newline", b"tok-123\n", Some("tok-123")),
            ("padded", b"  \t tok-123 \r\n\n", Some("tok-123")),
            ("empty", b"", None),
            ("whitespace", b" \n\t\n", None),
        ];
        for (what, content, want) in cases {
            let dir = TempDir::new(what);
            fs::write(dir.0.join(TOKEN_FILE_NAME), content).unwrap();
            assert_eq!(load(&dir.0).unwrap().as_deref(), *want, "{what}");
        }
        let dir = TempDir::new("missing");
        assert_eq!(load(&dir.0).unwrap(), None);
    }

    #[test]
    fn load_errors_do_not_leak() {
        // Too large: the token followed by kilobytes of padding.
        let dir = TempDir::new("large");
        let mut content = SECRET.as_bytes().to_vec();
        content.resize(TOKEN_FILE_MAX_BYTES + 1, b'x');
        fs::write(dir.0.join(TOKEN_FILE_NAME), &content).unwrap();
        let e = load(&dir.0).unwrap_err();
        assert!(matches!(e, Error::TooLarge { .. }), "{e:?}");
        assert_no_leak(&e);
        // Exactly the cap is still read.
        content.truncate(TOKEN_FILE_MAX_BYTES);
        fs::write(dir.0.join(TOKEN_FILE_NAME), &content).unwrap();
        assert!(load(&dir.0).unwrap().is_some());

        // Not text.
        let dir = TempDir::new("binary");
        let mut content = SECRET.as_bytes().to_vec();
        content.push(0xff);
        fs::write(dir.0.join(TOKEN_FILE_NAME), &content).unwrap();
        let e = load(&dir.0).unwrap_err();
        assert!(matches!(e, Error::NotText { .. }), "{e:?}");
        assert_no_leak(&e);

        // The token file is a directory.
        let dir = TempDir::new("isdir");
        fs::create_dir(dir.0.join(TOKEN_FILE_NAME)).unwrap();
        let e = load(&dir.0).unwrap_err();
        assert!(matches!(e, Error::Read { .. }), "{e:?}");
        assert!(e.to_string().contains("EISDIR"), "{e}");

        // DATA_PATH under a regular file: a real ENOTDIR, even as root.
        let dir = TempDir::new("notdir");
        let file = dir.0.join("a-file");
        fs::write(&file, b"").unwrap();
        let e = load(&file).unwrap_err();
        assert!(e.to_string().contains("ENOTDIR"), "{e}");
        assert!(e.to_string().contains("a-file/permanent_token"), "{e}");
    }

    #[test]
    fn store_then_load_round_trip() {
        let dir = TempDir::new("roundtrip");
        store(&dir.0, SECRET).unwrap();
        let path = dir.0.join(TOKEN_FILE_NAME);
        // The token only: no trailing newline.
        assert_eq!(fs::read(&path).unwrap(), SECRET.as_bytes());
        assert_eq!(mode(&path), 0o600);
        assert!(!dir.0.join(TEMP_FILE_NAME).exists());
        assert_eq!(load(&dir.0).unwrap().as_deref(), Some(SECRET));
        // Rewritten on every registration: a shorter token replaces it whole.
        store(&dir.0, "short").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"short");
    }

    #[test]
    fn store_narrows_wider_old_files() {
        let dir = TempDir::new("modes");
        let path = dir.0.join(TOKEN_FILE_NAME);
        let tmp = dir.0.join(TEMP_FILE_NAME);
        // An older token file readable by everyone, and a stale temp file from a crash, also wide.
        fs::write(&path, b"old-token").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        fs::write(&tmp, b"stale stale stale stale stale stale stale").unwrap();
        fs::set_permissions(&tmp, fs::Permissions::from_mode(0o666)).unwrap();
        store(&dir.0, SECRET).unwrap();
        assert_eq!(mode(&path), 0o600);
        assert_eq!(fs::read(&path).unwrap(), SECRET.as_bytes());
        assert!(!tmp.exists());
    }

    #[test]
    fn temp_file_names_differ_per_process_and_call() {
        assert_eq!(
            temp_file_name(1, 0xab),
            ".permanent_token.1-00000000000000ab.tmp"
        );
        assert_ne!(temp_file_name(1, 1), temp_file_name(2, 1));
        assert_ne!(temp_file_name(1, 1), temp_file_name(1, 2));
        assert_ne!(temp_file_name(1, 1), TEMP_FILE_NAME);
    }

    /// Issue 11 D1: two agents sharing one data directory stored at the same moment and one failed
    /// with `rename ... ENOENT` (the other had renamed the shared temp file away).
    #[test]
    fn issue11_concurrent_stores_into_one_directory_all_succeed() {
        let dir = TempDir::new("concurrent");
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let d = dir.0.clone();
                std::thread::spawn(move || {
                    for _ in 0..50 {
                        store(&d, SECRET).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(
            fs::read(dir.0.join(TOKEN_FILE_NAME)).unwrap(),
            SECRET.as_bytes()
        );
        let left: Vec<_> = fs::read_dir(&dir.0)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .filter(|n| n != TOKEN_FILE_NAME)
            .collect();
        assert!(left.is_empty(), "temp files left behind: {left:?}");
    }

    #[test]
    fn store_refuses_an_ill_formed_token() {
        let dir = TempDir::new("invalid");
        let e = store(&dir.0, &format!("{SECRET}\n")).unwrap_err();
        assert!(
            matches!(e, Error::Invalid(Invalid::BadChar { at: 36 })),
            "{e:?}"
        );
        assert_no_leak(&e);
        assert!(!dir.0.join(TOKEN_FILE_NAME).exists());
        assert!(!dir.0.join(TEMP_FILE_NAME).exists());
    }

    #[test]
    fn store_into_read_only_directory() {
        let dir = TempDir::new("readonly");
        fs::set_permissions(&dir.0, fs::Permissions::from_mode(0o555)).unwrap();
        let result = store(&dir.0, SECRET);
        if running_as_root() {
            // Root bypasses file permission checks (CAP_DAC_OVERRIDE): the write succeeds. The next
            // test gets a real error another way.
            result.unwrap();
            return;
        }
        let e = result.unwrap_err();
        assert_no_leak(&e);
        let text = e.to_string();
        assert!(
            matches!(
                e,
                Error::Write {
                    step: Step::CreateTemp,
                    ..
                }
            ),
            "{e:?}"
        );
        assert!(text.contains("permission denied"), "{text}");
        assert!(text.contains("runs as uid"), "{text}");
        assert!(text.contains("mode 0555"), "{text}");
        assert!(text.contains(&*dir.0.to_string_lossy()), "{text}");
    }

    #[test]
    fn store_under_a_regular_file_fails_even_as_root() {
        let dir = TempDir::new("notdir");
        let file = dir.0.join("a-file");
        fs::write(&file, b"").unwrap();
        let e = store(&file, SECRET).unwrap_err();
        assert_no_leak(&e);
        assert!(
            matches!(
                e,
                Error::Write {
                    step: Step::CreateTemp,
                    ..
                }
            ),
            "{e:?}"
        );
        let text = e.to_string();
        assert!(text.contains("a-file/permanent_token"), "{text}");
        assert!(text.contains("ENOTDIR"), "{text}");
        assert!(text.contains("DATA_PATH"), "{text}");

        // A directory that does not exist.
        let e = store(&dir.0.join("nope"), SECRET).unwrap_err();
        assert_no_leak(&e);
        assert!(e.to_string().contains("create "), "{e}");
    }

    #[test]
    fn write_error_texts_say_what_to_do() {
        let dir = Path::new("/data");
        let cases: &[(i32, Access, &[&str])] = &[
            (
                EROFS,
                Access::default(),
                &[
                    "/data/permanent_token",
                    "read-only",
                    "mount a writable volume at /data or set DATA_PATH",
                ],
            ),
            (
                ENOSPC,
                Access::default(),
                &["ENOSPC", "free space", "/data"],
            ),
            (EDQUOT, Access::default(), &["EDQUOT"]),
            (
                EACCES,
                Access {
                    uid: Some(1000),
                    dir_owner: Some(0),
                    dir_mode: Some(0o755),
                },
                &[
                    "permission denied",
                    "uid 1000",
                    "owned by uid 0",
                    "mode 0755",
                    "chown /data to uid 1000",
                ],
            ),
            (
                EPERM,
                Access {
                    uid: Some(1000),
                    ..Access::default()
                },
                &["permission denied", "uid 1000", "DATA_PATH"],
            ),
            (
                EACCES,
                Access::default(),
                &["permission denied", "DATA_PATH"],
            ),
            (ENOENT, Access::default(), &["create /data", "DATA_PATH"]),
            (5, Access::default(), &["os error 5"]),
        ];
        for (errno, access, wants) in cases {
            let e = Error::Write {
                path: dir.join(TOKEN_FILE_NAME),
                step: Step::Rename,
                source: io::Error::from_raw_os_error(*errno),
                access: *access,
            };
            let text = e.to_string();
            assert!(text.contains("renaming the temp file"), "{text}");
            for want in *wants {
                assert!(text.contains(want), "errno {errno}: {want:?} not in {text}");
            }
            assert!(!text.contains('\n'), "{text}");
        }
        // Reads get the same hints.
        let e = Error::Read {
            path: dir.join(TOKEN_FILE_NAME),
            source: io::Error::from_raw_os_error(EACCES),
            access: Access {
                uid: Some(1000),
                dir_owner: Some(0),
                dir_mode: Some(0o700),
            },
        };
        assert!(
            e.to_string().contains("owned by uid 0 with mode 0700"),
            "{e}"
        );
    }

    /// Captures the log lines of this module (target `dockmon_agent::token`) for the leak test.
    struct Capture(std::sync::Mutex<Vec<String>>);

    impl log::Log for Capture {
        fn enabled(&self, _: &log::Metadata<'_>) -> bool {
            true
        }
        fn log(&self, record: &log::Record<'_>) {
            if record
                .target()
                .starts_with(module_path!().trim_end_matches("::tests"))
            {
                let line = format!("{} {}", record.level(), record.args());
                self.0.lock().unwrap().push(line);
            }
        }
        fn flush(&self) {}
    }

    static CAPTURE: Capture = Capture(std::sync::Mutex::new(Vec::new()));

    #[test]
    fn log_lines_never_contain_the_token() {
        static INSTALL: std::sync::Once = std::sync::Once::new();
        INSTALL.call_once(|| {
            log::set_logger(&CAPTURE).expect(
                "another test installed a global logger; this test needs to capture the log",
            );
            log::set_max_level(log::LevelFilter::Trace);
        });
        let dir = TempDir::new("log");
        store(&dir.0, SECRET).unwrap();
        assert_eq!(load(&dir.0).unwrap().as_deref(), Some(SECRET));
        let file = dir.0.join("a-file");
        fs::write(&file, b"").unwrap();
        assert!(store(&file, SECRET).is_err());
        let _ = check_token(&format!("{SECRET}!"));
        let lines = CAPTURE.0.lock().unwrap().clone();
        assert!(
            lines
                .iter()
                .any(|l| l.contains("stored the permanent token in")),
            "the store was not logged, so the capture saw nothing: {lines:?}"
        );
        for line in &lines {
            assert!(
                !line.contains(SECRET) && !line.contains("cf8a-4666"),
                "{line}"
            );
        }
    }

    #[test]
    fn access_reads_the_directory_owner() {
        let dir = TempDir::new("access");
        fs::set_permissions(&dir.0, fs::Permissions::from_mode(0o750)).unwrap();
        let a = Access::of(&dir.0);
        assert_eq!(a.dir_mode, Some(0o750));
        assert_eq!(a.dir_owner, a.uid, "we created the directory");
    }
}
