//! Gives the binary's code pages that a steady agent does not use back to the kernel (issue 18).
//!
//! Most of this agent's resident memory would otherwise be its own text: the kernel maps file pages
//! around each fault in 64 KiB windows, and once a page is mapped it stays in the process's RSS until
//! memory runs short. Start-up code, registration and every rare command (an update, a compose
//! deployment, a shell session, the management pages) would each leave their windows resident for
//! good. The release build packs the functions of a steady agent together (link/hot-text.ld, made by
//! scripts/hot-text), so what a steady agent touches is a few contiguous windows; [`release`] unmaps
//! the rest after start-up and then every 30 s (`limits::TEXT_RELEASE_EVERY_S`), and the steady code
//! faults its windows straight back in from the page cache. The pages stay in the page cache, shared
//! and reclaimable; only this process's mapping of them goes.
//!
//! Only the static musl binary does this: there no loader writes to a read-only segment (no
//! relocations are applied to them; `-C relocation-model=static`, and musl applies no RELRO in a static
//! executable), so dropping a page of one and reading it back from the file gives the same bytes. A glibc
//! build (the test harnesses, the armv7 gnueabihf binary) maps RELRO data read-only after relocating it,
//! and dropping such a page would lose the relocations: there [`release`] does nothing.
#![allow(unsafe_code)]

use std::fs::File;
use std::io::Read;

use crate::limits::TEXT_MAPS_READ_BYTES;

/// What one [`release`] did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Released {
    /// Read-only mappings of the executable given back.
    pub mappings: u32,
    /// Their length in bytes (mapped length, not resident pages).
    pub bytes: u64,
}

/// Unmaps the executable's read-only pages (text and constants); they fault back in on use.
///
/// Returns what was released; a build where this is not safe (see the module doc) releases nothing.
/// Errors only come from reading `/proc/self/maps` or from `madvise`, and leave memory as it was.
///
/// The executable's mappings are found by the one holding this function's own code, not by
/// `stat("/proc/self/exe")`: under qemu-user (the ARM tests, an ARM image run through binfmt) that
/// names the emulator, while the emulated maps list the guest binary at guest addresses.
pub fn release() -> std::io::Result<Released> {
    if !cfg!(target_env = "musl") {
        return Ok(Released::default());
    }
    let here = release as *const () as usize as u64;
    let mut ours = None;
    for_each_mapping(|m| {
        if ours.is_none() && m.inode != 0 && (m.start..m.end).contains(&here) {
            ours = Some((m.dev, m.inode));
        }
        Ok(())
    })?;
    let Some(ours) = ours else {
        return Ok(Released::default());
    };
    let mut done = Released::default();
    for_each_mapping(|m| {
        if (m.dev, m.inode) == ours && (m.perms == *b"r-xp" || m.perms == *b"r--p") {
            dont_need(m.start, m.end)?;
            done.mappings += 1;
            done.bytes += m.end - m.start;
        }
        Ok(())
    })?;
    Ok(done)
}

/// Calls `f` with each well-formed line of /proc/self/maps, read through a fixed stack buffer.
fn for_each_mapping(mut f: impl FnMut(Mapping) -> std::io::Result<()>) -> std::io::Result<()> {
    let mut maps = File::open("/proc/self/maps")?;
    let mut buf = [0u8; TEXT_MAPS_READ_BYTES];
    let mut len = 0;
    loop {
        let n = maps.read(&mut buf[len..])?;
        len += n;
        // Whole lines only; a line longer than the buffer (a path of kilobytes) is not one of ours.
        let end = match buf[..len].iter().rposition(|&b| b == b'\n') {
            Some(i) => i + 1,
            None if n == 0 || len == buf.len() => {
                len = 0;
                if n == 0 {
                    return Ok(());
                }
                continue;
            }
            None => continue,
        };
        for line in buf[..end].split(|&b| b == b'\n') {
            if let Some(m) = parse_map_line(line) {
                f(m)?;
            }
        }
        buf.copy_within(end..len, 0);
        len -= end;
        if n == 0 {
            return Ok(());
        }
    }
}

fn dont_need(start: u64, end: u64) -> std::io::Result<()> {
    let (Ok(addr), Ok(len)) = (usize::try_from(start), usize::try_from(end - start)) else {
        return Ok(());
    };
    // SAFETY: [start, end) is a whole mapping of our own executable file, private and read-only
    // (`r-xp`/`r--p`), in a static musl binary where nothing has written to it (module doc).
    // MADV_DONTNEED on such a mapping drops page table entries only; the next access reads the same
    // bytes back from the file. No Rust object lives in it as mutable memory, so no reference is
    // invalidated.
    unsafe {
        rustix::mm::madvise(
            addr as *mut core::ffi::c_void,
            len,
            rustix::mm::Advice::LinuxDontNeed,
        )
        .map_err(std::io::Error::from)
    }
}

/// One line of /proc/PID/maps: `start-end perms offset major:minor inode path`.
#[derive(Debug, PartialEq, Eq)]
struct Mapping {
    start: u64,
    end: u64,
    perms: [u8; 4],
    dev: (u32, u32),
    inode: u64,
}

fn parse_map_line(line: &[u8]) -> Option<Mapping> {
    let mut f = line.split(|&b| b == b' ').filter(|s| !s.is_empty());
    let range = f.next()?;
    let perms = f.next()?;
    let _offset = f.next()?;
    let dev = f.next()?;
    let inode = f.next()?;
    let dash = range.iter().position(|&b| b == b'-')?;
    let start = hex(&range[..dash])?;
    let end = hex(&range[dash + 1..])?;
    let colon = dev.iter().position(|&b| b == b':')?;
    let dev = (hex(&dev[..colon])? as u32, hex(&dev[colon + 1..])? as u32);
    let inode = std::str::from_utf8(inode).ok()?.parse().ok()?;
    (end > start && perms.len() == 4).then(|| Mapping {
        start,
        end,
        perms: [perms[0], perms[1], perms[2], perms[3]],
        dev,
        inode,
    })
}

fn hex(s: &[u8]) -> Option<u64> {
    u64::from_str_radix(std::str::from_utf8(s).ok()?, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_lines() {
        let m = parse_map_line(
            b"00401000-005e1000 r-xp 00001000 fe:00 6275075                            /work/dockmon-agent",
        )
        .unwrap();
        assert_eq!(
            m,
            Mapping {
                start: 0x401000,
                end: 0x5e1000,
                perms: *b"r-xp",
                dev: (0xfe, 0),
                inode: 6275075
            }
        );
        let anon = parse_map_line(b"7feaf0fca000-7feaf0fd9000 rw-p 00000000 00:00 0 ").unwrap();
        assert_eq!(anon.inode, 0);
        for bad in [
            &b""[..],
            b"zz-10 r-xp 0 fe:00 1",
            b"10-5 r-xp 0 fe:00 1",
            b"10-20 r-xp 0 fe00 1",
            b"10-20",
        ] {
            assert_eq!(
                parse_map_line(bad),
                None,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn release_is_safe_to_call() {
        // A glibc test build releases nothing; a musl one (cargo test --target …-musl) releases its
        // text and keeps running, which is the point of calling code right after.
        let r = release().unwrap();
        if cfg!(target_env = "musl") {
            assert!(r.mappings >= 1 && r.bytes > 0, "{r:?}");
        } else {
            assert_eq!(r, Released::default());
        }
        assert_eq!(map_lines_again(), 3);
    }

    fn map_lines_again() -> usize {
        // Runs code that was just released.
        [1, 2, 3].iter().filter(|&&x| x > 0).count()
    }
}
